//! `facedb`: the command-line tool. Thin over the library crates.
//!
//! Exit codes: 0 success, 1 error (message on stderr), 2 bad command line (clap).

mod bench;
mod demo;

use clap::{Parser, Subcommand};
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
        Cmd::Bench { what } => bench::run(what),
    };
    if let Err(e) = r {
        eprintln!("facedb: error: {e:#}");
        std::process::exit(1);
    }
}
