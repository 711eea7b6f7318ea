//! A real S3 server on loopback for the object storage tests: `moto_server`
//! (PyPI `moto[server]`, pinned in `tests/python/requirements.txt`) run by
//! the test virtualenv's python on a free port, stopped on drop; and a TCP
//! relay in front of it that a test can cut, to play a server that goes
//! away in the middle of an upload.
//!
//! Missing moto is a failure, never a skip: run `cargo xtask tf-env`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::tf::python;

/// A running `moto_server`.
pub struct MotoServer {
    child: Child,
    port: u16,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl MotoServer {
    /// Starts `python -m moto.server` on a free loopback port and waits
    /// until it answers.
    pub fn start() -> Self {
        Self::start_with(&["-m", "moto.server", "-H", "127.0.0.1", "-p"])
    }

    /// Starts moto behind `tests/python/gcs_xml_moto.py`, which maps the
    /// Google Cloud Storage XML API's dialect (bearer authorization,
    /// `x-goog-if-generation-match: 0`) to S3's, so object_store's GCS
    /// client (`gs://`, pointed at [`Self::endpoint`] by a service account
    /// file's `gcs_base_url`) talks to it.
    pub fn start_gcs_xml() -> Self {
        let script = crate::paths::workspace_root().join("tests/python/gcs_xml_moto.py");
        Self::start_with(&[script.to_str().expect("UTF-8 workspace path")])
    }

    /// Runs the test virtualenv's python with `args` and a free port.
    fn start_with(args: &[&str]) -> Self {
        let python = python();
        let port = free_port();
        let child = Command::new(&python)
            .args(args)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        let mut server = MotoServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(mut pipe) = server.child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                panic!(
                    "moto_server exited ({status}); is moto[server] installed in the test \
                     virtualenv (`cargo xtask tf-env`)?\n{stderr}"
                );
            }
            if http(port, "GET", "/moto-api/data.json").is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Its log is not wanted; a full pipe must not block it.
        if let Some(mut pipe) = server.child.stderr.take() {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            });
        }
        server
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        let status = http(self.port, "PUT", &format!("/{bucket}")).unwrap();
        assert_eq!(status, 200, "creating bucket {bucket}");
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request without a body; returns the status code.
fn http(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:.100}")))
}

/// A TCP relay from a loopback port to the server.
/// [`cut_after`](Self::cut_after) closes every connection and refuses new
/// ones once a number of bytes went upstream (the server, seen from the
/// client, is gone in the middle of an upload);
/// [`restore`](Self::restore) lets connections through again.
pub struct Relay {
    port: u16,
    shared: Arc<RelayState>,
}

/// What the relay's threads share.
struct RelayState {
    open: AtomicBool,
    connections: Mutex<Vec<TcpStream>>,
    /// Bytes relayed from clients to the server.
    upstream: AtomicU64,
    /// Cut when `upstream` reaches this.
    cut_at: AtomicU64,
}

impl RelayState {
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        if let Ok(mut all) = self.connections.lock() {
            for stream in all.drain(..) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Copies `from` to `to` until either closes; counts upstream bytes and
/// cuts the relay at the threshold.
fn pump(mut from: TcpStream, mut to: TcpStream, upstream: bool, state: &RelayState) {
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !state.open.load(Ordering::SeqCst) || to.write_all(&buffer[..n]).is_err() {
            break;
        }
        if upstream {
            let total = state.upstream.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total >= state.cut_at.load(Ordering::SeqCst) {
                state.cut();
                break;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

impl Relay {
    /// Relays a new free port to `target_port`.
    pub fn start(target_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(RelayState {
            open: AtomicBool::new(true),
            connections: Mutex::new(Vec::new()),
            upstream: AtomicU64::new(0),
            cut_at: AtomicU64::new(u64::MAX),
        });
        let state = Arc::clone(&shared);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !state.open.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let (Ok(client2), Ok(server2), Ok(client3), Ok(server3)) = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                ) else {
                    continue;
                };
                if let Ok(mut all) = state.connections.lock() {
                    all.push(client3);
                    all.push(server3);
                }
                let (up, down) = (Arc::clone(&state), Arc::clone(&state));
                std::thread::spawn(move || pump(client, server, true, &up));
                std::thread::spawn(move || pump(server2, client2, false, &down));
            }
        });
        Relay { port, shared }
    }

    /// `http://127.0.0.1:<relay port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Closes every relayed connection and refuses new ones once `bytes`
    /// more bytes went from clients to the server.
    pub fn cut_after(&self, bytes: u64) {
        let now = self.shared.upstream.load(Ordering::SeqCst);
        self.shared
            .cut_at
            .store(now.saturating_add(bytes), Ordering::SeqCst);
    }

    /// Whether the relay was cut.
    pub fn is_cut(&self) -> bool {
        !self.shared.open.load(Ordering::SeqCst)
    }

    /// Relays new connections again (and cuts no more).
    pub fn restore(&self) {
        self.shared.cut_at.store(u64::MAX, Ordering::SeqCst);
        self.shared.open.store(true, Ordering::SeqCst);
    }
}
