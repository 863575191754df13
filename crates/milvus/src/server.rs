//! Serving: configuration, the optional Milvus-style authentication, and the tonic server.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine;
use milvus::proto::milvus::milvus_service_server::MilvusServiceServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::bulk::BulkWrites;
use crate::service::MilvusService;
use crate::status::Error;

/// Largest gRPC message accepted or sent (Milvus's default `grpc.serverMaxRecvSize`, 512 MiB).
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

/// HTTP/2 stream and connection flow-control window (bytes).
pub const HTTP2_WINDOW_BYTES: u32 = 16 * 1024 * 1024;

/// Largest HTTP/2 frame the server accepts, in bytes (`SETTINGS_MAX_FRAME_SIZE`; the
/// protocol's default is 16 KiB). A 5 MB insert then arrives in 5 frames instead of 320: the
/// server's CPU to receive and decode a 10,000 × 128 insert went from 5.6 to 3.8 ms.
pub const HTTP2_MAX_FRAME_BYTES: u32 = 1 << 20;

/// User name assumed when `--auth` gives only a password (Milvus's default user).
pub const DEFAULT_USER: &str = "root";

/// Credentials a client must send, Milvus style: the gRPC metadata `authorization` holding
/// base64 of `user:password` (what pymilvus sends for `user=`/`password=` or `token="user:password"`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl Credentials {
    /// Parses the `--auth` value: `user:password`, or `password` alone for user `root`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an empty user or password.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let (user, password) = match s.split_once(':') {
            Some((u, p)) => (u.to_string(), p.to_string()),
            None => (DEFAULT_USER.to_string(), s.to_string()),
        };
        if user.is_empty() || password.is_empty() {
            return Err(Error::InvalidParameter(
                "--auth expects user:password (or a password for user root)".into(),
            ));
        }
        Ok(Self { user, password })
    }

    /// Whether the `authorization` metadata value (base64 of `user:password`) matches.
    pub fn accepts(&self, header: &[u8]) -> bool {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(header.trim_ascii())
        else {
            return false;
        };
        let expected = format!("{}:{}", self.user, self.password);
        constant_time_eq(&decoded, expected.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the `dbname` metadata (only `default` exists) and the `authorization` metadata of every
/// request against the configured credentials
/// (none configured: every request passes, credentials sent are ignored, as Milvus without
/// `common.security.authorizationEnabled`).
#[derive(Debug, Clone)]
pub struct AuthInterceptor(pub Option<Credentials>);

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        // pymilvus sends the database of `connect(db_name=...)` as `dbname` metadata; facedb
        // has the default database only, so any other name is refused rather than ignored.
        if let Some(db) = req.metadata().get("dbname") {
            let db = db.to_str().unwrap_or("?");
            if !(db.is_empty() || db == "default") {
                return Err(tonic::Status::not_found(format!(
                    "database not found[database={db}]: facedb serves the default database only"
                )));
            }
        }
        match &self.0 {
            None => Ok(req),
            Some(c) => match req.metadata().get("authorization") {
                Some(v) if c.accepts(v.as_bytes()) => Ok(req),
                _ => Err(tonic::Status::unauthenticated(
                    "auth check failure, please check username and password are correct",
                )),
            },
        }
    }
}

/// What `facedb serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Data directory of the store (created if missing).
    pub data_dir: PathBuf,
    /// Address to listen on (default `127.0.0.1:19530`).
    pub addr: SocketAddr,
    /// Required credentials; `None` accepts every client (credentials sent are ignored).
    pub auth: Option<Credentials>,
    /// fsync the WAL before acknowledging a write (default true). False acknowledges a write
    /// once it is in the operating system's page cache: safe from a crash of the server, not
    /// from a power loss or a kernel crash. That is Milvus standalone's level: its message
    /// queue (rocksmq) writes with RocksDB's default, unsynced, write options.
    pub fsync: bool,
}

impl ServeConfig {
    /// Defaults: `./facedb-data`, `127.0.0.1:19530`, no authentication, fsync on every write.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 19530)),
            auth: None,
            fsync: true,
        }
    }
}

/// Errors of starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store or its metadata could not be opened.
    #[error("cannot open data directory {dir}")]
    Open {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        source: Error,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The async runtime could not be started.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Completes on Ctrl-C or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Blocking entry point of `facedb serve`: starts a multi-threaded runtime and serves until
/// Ctrl-C or SIGTERM (in-flight requests finish first).
///
/// # Errors
/// [`ServeError`] as [`serve`], and [`ServeError::Runtime`].
pub fn run(config: ServeConfig) -> Result<(), ServeError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("facedb-milvus")
        .build()
        .map_err(ServeError::Runtime)?;
    rt.block_on(serve(config, shutdown_signal()))
}

/// Runs the Milvus gRPC service on `config.addr` until `shutdown` completes.
///
/// # Errors
/// [`ServeError::Open`], [`ServeError::Bind`], [`ServeError::Transport`].
pub async fn serve(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.addr,
            source,
        })?;
    serve_on(listener, config, shutdown).await
}

/// Like [`serve`] on an already bound listener (`config.addr` is ignored); tests bind port 0.
///
/// # Errors
/// [`ServeError::Open`], [`ServeError::Transport`].
pub async fn serve_on(
    listener: TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let dir = config.data_dir.clone();
    let opts = facedb_store::Options {
        fsync: config.fsync,
        ..Default::default()
    };
    let service = tokio::task::spawn_blocking(move || MilvusService::open_with(&dir, opts))
        .await
        .map_err(|e| ServeError::Open {
            dir: config.data_dir.clone(),
            source: Error::Internal(e.to_string()),
        })?
        .map_err(|source| ServeError::Open {
            dir: config.data_dir.clone(),
            source,
        })?;
    let server = MilvusServiceServer::new(service.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    // Authentication first, then Insert / Upsert through the slice decoder (crate::bulk).
    let svc = tonic::service::interceptor::InterceptedService::new(
        BulkWrites::new(server, service),
        AuthInterceptor(config.auth.clone()),
    );
    // TCP_NODELAY: without it a small reply after a large request waits for the client's
    // delayed ACK (~40 ms per insert batch). Large HTTP/2 windows let a multi-megabyte insert
    // or result travel without a window-update round trip every 64 KiB, in large frames.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .initial_stream_window_size(HTTP2_WINDOW_BYTES)
        .initial_connection_window_size(HTTP2_WINDOW_BYTES)
        .max_frame_size(HTTP2_MAX_FRAME_BYTES)
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}
