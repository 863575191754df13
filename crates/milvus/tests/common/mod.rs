//! Test helpers: a facedb Milvus server on a free loopback port, and the pymilvus venvs.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use facedb_milvus::{serve_on, Credentials, ServeConfig};

/// The repository root (`crates/milvus/../..`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `../shared` beside the repository, if present.
pub fn shared_dir() -> Option<PathBuf> {
    let p = repo_root().join("../shared");
    p.is_dir().then_some(p)
}

/// A server running on its own tokio runtime thread; stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server over `dir` on 127.0.0.1 with a free port.
    pub fn start(dir: &Path, auth: Option<Credentials>) -> TestServer {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut config = ServeConfig::new(dir);
        config.addr = addr;
        config.auth = auth;
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                serve_on(listener, config, async {
                    let _ = rx.await;
                })
                .await
                .expect("server failed");
            });
        });
        // Wait until the port answers.
        let t0 = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TestServer {
            addr,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Interpreters of the two venvs made by `scripts/setup-milvus-tests.sh`
/// (pymilvus 2.2.7, pymilvus 2.3.8), or `None` when `FACEDB_SKIP_PYMILVUS` is set.
pub fn pythons() -> Option<&'static (PathBuf, PathBuf)> {
    static PY: OnceLock<Option<(PathBuf, PathBuf)>> = OnceLock::new();
    PY.get_or_init(|| {
        if std::env::var_os("FACEDB_SKIP_PYMILVUS").is_some() {
            eprintln!("FACEDB_SKIP_PYMILVUS is set: skipping the pymilvus tests");
            return None;
        }
        let script = repo_root().join("scripts/setup-milvus-tests.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .expect("run scripts/setup-milvus-tests.sh");
        assert!(
            out.status.success(),
            "scripts/setup-milvus-tests.sh failed (it installs pymilvus from PyPI; set \
             FACEDB_SKIP_PYMILVUS=1 to skip these tests):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(lines.len() >= 2, "unexpected setup output: {stdout}");
        let p22 = PathBuf::from(lines[lines.len() - 2].trim());
        let p23 = PathBuf::from(lines[lines.len() - 1].trim());
        Some((p22, p23))
    })
    .as_ref()
}

/// Output of a Python run.
pub struct PyRun {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `python script args...` (stdin closed), killing it after `timeout`.
pub fn run_python(python: &Path, script: &Path, args: &[&str], timeout: Duration) -> PyRun {
    let mut child = Command::new(python)
        .arg(script)
        .args(args)
        .env("PYTHONWARNINGS", "ignore")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn python");
    let t0 = Instant::now();
    loop {
        if child.try_wait().expect("wait python").is_some() {
            break;
        }
        if t0.elapsed() > timeout {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("python output");
    PyRun {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
