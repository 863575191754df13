//! `facedb`: the command-line tool. Thin over the library crates.
//!
//! Exit codes: 0 success, 1 error (message on stderr), 2 bad command line (clap).

mod bench;
mod demo;

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
    },
    /// Benchmarks (speed and memory are measured here, never asserted in tests).
    Bench {
        #[command(subcommand)]
        what: bench::BenchCmd,
    },
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Demo { data } => demo::run(data),
        Cmd::Serve {
            data,
            host,
            port,
            auth,
        } => serve(data, SocketAddr::new(host, port), auth),
        Cmd::Bench { what } => bench::run(what),
    };
    if let Err(e) = r {
        eprintln!("facedb: error: {e:#}");
        std::process::exit(1);
    }
}

fn serve(data: PathBuf, addr: SocketAddr, auth: Option<String>) -> anyhow::Result<()> {
    let mut config = facedb_milvus::ServeConfig::new(data);
    config.addr = addr;
    config.auth = auth
        .as_deref()
        .map(facedb_milvus::Credentials::parse)
        .transpose()?;
    eprintln!(
        "facedb: Milvus gRPC ({}) on {addr}, data in {}",
        facedb_milvus::server_version(),
        config.data_dir.display()
    );
    facedb_milvus::run(config)?;
    Ok(())
}
