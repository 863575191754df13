//! `facedb-milvus-serve [--data DIR] [--host 127.0.0.1] [--port 19530] [--auth user:password]`
//!
//! Serves the Milvus gRPC API over a facedb data directory until Ctrl-C / SIGTERM; the same as
//! `facedb serve`, without the rest of the CLI (used by the peer comparison script).

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use facedb_milvus::{run, Credentials, ServeConfig};

const USAGE: &str = "usage: facedb-milvus-serve [--data DIR] [--host 127.0.0.1] [--port 19530] [--auth user:password]";

fn parse(args: &[String]) -> Result<ServeConfig, String> {
    let mut config = ServeConfig::new("facedb-data");
    let mut host: IpAddr = [127, 0, 0, 1].into();
    let mut port: u16 = 19530;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--data" => config.data_dir = value("--data")?.into(),
            "--host" => {
                let v = value("--host")?;
                host = v
                    .parse()
                    .map_err(|_| format!("--host: not an IP address: {v}"))?
            }
            "--port" => {
                let v = value("--port")?;
                port = v.parse().map_err(|_| format!("--port: not a port: {v}"))?
            }
            "--auth" => {
                config.auth =
                    Some(Credentials::parse(&value("--auth")?).map_err(|e| e.to_string())?)
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    config.addr = SocketAddr::new(host, port);
    Ok(config)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match parse(&args) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "facedb Milvus service ({}) on {}, data in {}",
        facedb_milvus::server_version(),
        config.addr,
        config.data_dir.display()
    );
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("facedb-milvus-serve: {e}");
            ExitCode::FAILURE
        }
    }
}
