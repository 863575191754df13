//! `facedb`: the command-line tool. Thin over the library crates.
//!
//! Exit codes: 0 success, 1 error (message on stderr), 2 bad command line (clap), 3 the run
//! finished but some input files gave a per-file error (enroll, identify).

mod bench;
mod bench_ann;
mod demo;
mod faces;

use clap::{Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "facedb",
    version,
    about = "Find a face among millions, fast; say just as fast when it is not there."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the seed blog post's `people` example through the embedded store and prints its hits.
    Demo {
        /// Database directory (default: a fresh temporary directory).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Serves the Milvus gRPC API (pymilvus and other Milvus clients) over a data directory,
    /// until Ctrl-C or SIGTERM.
    Serve {
        /// Database directory (created if missing).
        #[arg(long, default_value = "facedb-data")]
        data: PathBuf,
        /// Address to listen on (loopback by default).
        #[arg(long, default_value = "127.0.0.1")]
        host: IpAddr,
        /// gRPC port (Milvus's default).
        #[arg(long, default_value_t = 19530)]
        port: u16,
        /// Require Milvus-style credentials `user:password` (a bare password means user
        /// `root`). Without it, credentials sent by clients are accepted and ignored.
        #[arg(long, value_name = "USER:PASSWORD")]
        auth: Option<String>,
        /// Acknowledge writes without waiting for the WAL's fsync: safe from a crash of
        /// facedb, not from a power loss or an OS crash. This is Milvus standalone's
        /// durability (its message queue writes without sync); by default facedb fsyncs.
        #[arg(long)]
        no_fsync: bool,
    },
    /// Benchmarks (speed and memory are measured here, never asserted in tests).
    Bench {
        #[command(subcommand)]
        what: bench::BenchCmd,
    },
    /// Enrolls a folder of people: DIR/<person>/<images>; the largest face of each image.
    Enroll {
        #[command(flatten)]
        args: faces::EnrollArgs,
        #[command(flatten)]
        common: faces::Common,
    },
    /// Identifies every face in images: file,name,distance (unknown_person, no_persons_found).
    Identify {
        #[command(flatten)]
        args: faces::IdentifyArgs,
        #[command(flatten)]
        common: faces::Common,
    },
    /// Compares the largest faces of two images: same person or not, and the distance.
    Verify {
        #[command(flatten)]
        args: faces::VerifyArgs,
        #[command(flatten)]
        common: faces::Common,
    },
    /// Lists the enrolled persons and their sample counts.
    People {
        #[command(flatten)]
        common: faces::Common,
    },
    /// Removes a person (every sample and the mean row).
    Forget {
        #[command(flatten)]
        args: faces::ForgetArgs,
        #[command(flatten)]
        common: faces::Common,
    },
    /// Prints every face of an image: box, 5 landmarks, 128-d encoding.
    Encodings {
        #[command(flatten)]
        args: faces::EncodingsArgs,
        #[command(flatten)]
        common: faces::Common,
    },
    /// Runs the open-set evaluation protocol of a folder with manifest.csv.
    Eval {
        #[command(flatten)]
        args: faces::EvalArgs,
        #[command(flatten)]
        common: faces::Common,
    },
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Demo { data } => demo::run(data).map(|()| 0),
        Cmd::Serve {
            data,
            host,
            port,
            auth,
            no_fsync,
        } => serve(data, SocketAddr::new(host, port), auth, !no_fsync).map(|()| 0),
        Cmd::Bench { what } => bench::run(what).map(|()| 0),
        Cmd::Enroll { args, common } => faces::enroll(&args, &common),
        Cmd::Identify { args, common } => faces::identify(&args, &common),
        Cmd::Verify { args, common } => faces::verify_cmd(&args, &common),
        Cmd::People { common } => faces::people(&common),
        Cmd::Forget { args, common } => faces::forget(&args, &common),
        Cmd::Encodings { args, common } => faces::encodings(&args, &common),
        Cmd::Eval { args, common } => faces::eval_cmd(&args, &common),
    };
    match r {
        Ok(0) => {}
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("facedb: error: {e:#}");
            std::process::exit(1);
        }
    }
}

/// glibc's allocator, tuned for a server receiving multi-megabyte requests. By default glibc
/// serves blocks above 128 KiB (a threshold that adapts up to 32 MiB) with fresh `mmap`s and
/// returns freed heap tops to the system, so each 5 MB insert batch page-faulted its request
/// buffers in again: half of the server's CPU for an insert's transport and decoding. Blocks
/// up to 32 MiB now come from the heap and freed memory is kept for the next request.
fn tune_allocator_for_serving() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

fn serve(data: PathBuf, addr: SocketAddr, auth: Option<String>, fsync: bool) -> anyhow::Result<()> {
    tune_allocator_for_serving();
    let mut config = facedb_milvus::ServeConfig::new(data);
    config.addr = addr;
    config.fsync = fsync;
    config.auth = auth
        .as_deref()
        .map(facedb_milvus::Credentials::parse)
        .transpose()?;
    eprintln!(
        "facedb: starting the Milvus gRPC server ({}) on {addr}, data in {}{}",
        facedb_milvus::server_version(),
        config.data_dir.display(),
        if fsync {
            ""
        } else {
            " (--no-fsync: writes acknowledged before they reach the disk)"
        }
    );
    facedb_milvus::run(config)?;
    Ok(())
}
