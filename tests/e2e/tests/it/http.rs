//! A tiny loopback HTTP server for static attack fixtures, and a tiny HTTP GET.
//!
//! The fixture server is plain std (a thread per connection, `Connection: close`) so the tests
//! control every byte: files are read from disk at request time (a test may change the tree
//! between two client runs), and chosen paths can be answered with an endless body.

use std::collections::BTreeSet;
use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// An endless body stops after this many bytes, so a client that never gives up cannot hang the
/// test: far more than any limit a TUF client applies to metadata or these targets.
const ENDLESS_CAP: u64 = 256 << 20;
const IO_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_REQUEST_HEAD: usize = 64 << 10;

#[derive(Debug)]
struct Shared {
    root: PathBuf,
    stop: AtomicBool,
    endless: Mutex<BTreeSet<String>>,
    requests: Mutex<Vec<String>>,
}

/// Serves the files under a directory on `127.0.0.1:<free port>` until dropped.
#[derive(Debug)]
pub struct StaticServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl StaticServer {
    pub fn start(root: &Path) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            root: root.to_owned(),
            stop: AtomicBool::new(false),
            endless: Mutex::new(BTreeSet::new()),
            requests: Mutex::new(Vec::new()),
        });
        let state = shared.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if state.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let state = state.clone();
                std::thread::spawn(move || {
                    let _ = handle(&state, conn);
                });
            }
        });
        Self {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// From now on, answers `url_path` (e.g. `/tuf/timestamp.json`) with the file's bytes
    /// followed by an endless stream of zeros, without a `Content-Length`.
    pub fn serve_endless(&self, url_path: &str) {
        self.shared.endless.lock().unwrap().insert(url_path.to_owned());
    }

    /// Request targets (URL paths) seen so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().clone()
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The file below `root` for a URL path; `None` for anything that could leave `root`.
fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = Path::new(url_path.strip_prefix('/')?);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(rel))
}

fn handle(shared: &Shared, mut conn: TcpStream) -> io::Result<()> {
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk)?;
        if n == 0 || head.len() > MAX_REQUEST_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or_default().split(' ');
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    shared.requests.lock().unwrap().push(target.to_owned());
    let url_path = target.split(['?', '#']).next().unwrap_or_default();
    if method != "GET" {
        return respond(&mut conn, "405 Method Not Allowed", b"method not allowed\n");
    }
    let file = percent_decode(url_path).and_then(|p| resolve(&shared.root, &p));
    let data = match file.filter(|f| f.is_file()).map(std::fs::read) {
        Some(Ok(data)) => data,
        _ => return respond(&mut conn, "404 Not Found", b"not found\n"),
    };
    if shared.endless.lock().unwrap().contains(url_path) {
        conn.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        )?;
        conn.write_all(&data)?;
        let zeros = vec![0u8; 64 << 10];
        let mut sent = data.len() as u64;
        while sent < ENDLESS_CAP {
            conn.write_all(&zeros)?;
            sent += zeros.len() as u64;
        }
        return Ok(());
    }
    respond(&mut conn, "200 OK", &data)
}

fn respond(conn: &mut TcpStream, status: &str, body: &[u8]) -> io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    conn.write_all(body)?;
    conn.flush()
}

/// A response from [`get`].
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET url` (plain `http://127.0.0.1:PORT/...`) with extra request headers, over a fresh
/// connection; no compression is asked for.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Response {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut conn = TcpStream::connect(host).unwrap();
    conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of response head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("no status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if resp
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    Response { body, ..resp }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_line = std::str::from_utf8(&data[..eol]).unwrap();
        let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
