//! `deploy/nginx/tufa-cache.conf` for real: nginx, with the example config (only its cache
//! path, listen port and reader addresses rewritten), in front of two real `tufa serve`
//! readers of a synced, signed mirror. Content negotiation stays apart in the cache, immutable
//! things are cached, the timestamp is revalidated by ETag, and cached pages are still served
//! once both readers are gone.
//!
//! Needs nginx (`apt-get install nginx`; .ci/run installs it). Without it the test says so and
//! passes, except in CI (`CI` set), where it fails.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tufa_fake_upstream::demo_projects;

use crate::deploy_yaml::deploy_dir;
use crate::*;

/// The `Accept` header pip sends (uv's differs only in spacing).
pub const PIP_ACCEPT: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
const JSON_TYPE: &str = "application/vnd.pypi.simple.v1+json";
/// The UID nginx runs as when the tests run as root (`nobody`).
const UNPRIVILEGED: u32 = 65534;

// ------------------------------------------------------------------------------------------
// A reader: `tufa serve` on an ephemeral port.
// ------------------------------------------------------------------------------------------

/// `tufa --config CONFIG serve --listen 127.0.0.1:0`, killed on drop.
#[derive(Debug)]
pub struct Reader {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
}

impl Reader {
    pub fn start(config: &Path, log: PathBuf) -> Self {
        let mut cmd = crate::tufa_process();
        let mut child = cmd
            .arg("--config")
            .arg(config)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        // The first stdout line is `serving http://127.0.0.1:PORT/simple/`; read it on a
        // thread so a reader that never prints cannot hang the test.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let port = line
            .trim()
            .strip_prefix("serving http://127.0.0.1:")
            .and_then(|rest| rest.strip_suffix("/simple/"))
            .and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "tufa serve printed {line:?}, not its address:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Self {
            child: Some(child),
            port,
            log,
        }
    }

    /// The reader is lost: SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.kill();
    }
}

// ------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client (one request per connection), so the test sees the exact bytes
// and headers nginx sends: no decoding, no redirects, no caching of its own.
// ------------------------------------------------------------------------------------------

pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Status, headers and the body as text (cut at 300 characters), for assertion messages.
impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.text();
        let body: String = text.chars().take(300).collect();
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &body)
            .finish()
    }
}

impl Response {
    /// The header's value (the first, if repeated).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// nginx's `X-Cache-Status` (absent where the location does not cache).
    pub fn cache(&self) -> &str {
        self.header("x-cache-status").unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| {
        std::io::Error::other(format!("no header end in {:?}", String::from_utf8_lossy(&raw)))
    })?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// `GET path` with these headers; panics on a connection error.
pub fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    request(port, "GET", path, headers).unwrap_or_else(|e| panic!("GET {path} on port {port}: {e}"))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

// ------------------------------------------------------------------------------------------
// nginx with the example config.
// ------------------------------------------------------------------------------------------

/// The nginx binary, or `None` (with the reason printed) when it is not installed outside CI.
/// In CI a missing nginx is a failure: .ci/run installs it.
fn nginx_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file());
    // /usr/sbin is not on every user's PATH.
    let found = on_path.or_else(|| {
        [
            "/usr/sbin/nginx",
            "/usr/local/sbin/nginx",
            "/usr/local/nginx/sbin/nginx",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx is not installed, and CI must run the nginx test: .ci/run installs it (apt-get install nginx)"
        );
        eprintln!(
            "note: nginx not found; skipping the deploy/nginx test (install it: apt-get install nginx)"
        );
    }
    found
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// nginx running deploy/nginx/tufa-cache.conf in front of two readers, as an unprivileged
/// user, in the foreground (`daemon off`); stopped on drop.
#[derive(Debug)]
struct Nginx {
    child: Option<Child>,
    port: u16,
    binary: PathBuf,
    prefix: tempfile::TempDir,
}

impl Nginx {
    fn start(binary: &Path, readers: [u16; 2]) -> Self {
        let prefix = tempfile::tempdir().unwrap();
        let p = prefix.path().display().to_string();
        let port = free_port();
        let example = std::fs::read_to_string(deploy_dir().join("nginx/tufa-cache.conf")).unwrap();
        // Only what ties the example to its deployment: where the cache lives, the port, the
        // readers. Each must be there exactly once, or the example changed shape.
        let mut conf = example.clone();
        for (from, to) in [
            (
                "proxy_cache_path /var/cache/nginx/tufa ",
                format!("proxy_cache_path {p}/cache "),
            ),
            (
                "server reader-1:8080 ",
                format!("server 127.0.0.1:{} ", readers[0]),
            ),
            (
                "server reader-2:8080 ",
                format!("server 127.0.0.1:{} ", readers[1]),
            ),
            (
                "\n    listen 8080;\n",
                format!("\n    listen 127.0.0.1:{port};\n"),
            ),
        ] {
            assert_eq!(
                example.matches(from).count(),
                1,
                "deploy/nginx/tufa-cache.conf: `{}` should appear exactly once",
                from.trim()
            );
            conf = conf.replace(from, &to);
        }
        std::fs::write(prefix.path().join("tufa-cache.conf"), conf).unwrap();
        // What the distribution's nginx.conf (or the image's) provides around it, all inside
        // the prefix so no system path is written.
        std::fs::write(
            prefix.path().join("nginx.conf"),
            format!(
                "pid {p}/nginx.pid;\nerror_log {p}/error.log info;\nworker_processes 1;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  client_body_temp_path {p}/tmp/body;\n  proxy_temp_path {p}/tmp/proxy;\n\
                 fastcgi_temp_path {p}/tmp/fastcgi;\n  uwsgi_temp_path {p}/tmp/uwsgi;\n\
                 scgi_temp_path {p}/tmp/scgi;\n  include {p}/tufa-cache.conf;\n\
                 access_log {p}/access.log tufa_cache;\n}}\n"
            ),
        )
        .unwrap();
        std::fs::create_dir(prefix.path().join("tmp")).unwrap();

        let mut cmd = Command::new(binary);
        cmd.arg("-p")
            .arg(format!("{p}/"))
            .arg("-c")
            .arg(format!("{p}/nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(prefix.path().join("stderr.log")).unwrap());
        if running_as_root() {
            // Unprivileged, as in a container: the prefix belongs to `nobody`, and so does nginx.
            use std::os::unix::process::CommandExt as _;
            for entry in ["", "nginx.conf", "tufa-cache.conf", "tmp", "stderr.log"] {
                std::os::unix::fs::chown(prefix.path().join(entry), Some(UNPRIVILEGED), Some(UNPRIVILEGED))
                    .unwrap();
            }
            cmd.uid(UNPRIVILEGED).gid(UNPRIVILEGED);
        }
        let child = cmd.spawn().unwrap();
        let mut nginx = Self {
            child: Some(child),
            port,
            binary: binary.to_owned(),
            prefix,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return nginx;
            }
            let exited = nginx.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "nginx did not start ({exited:?}):\n{}",
                nginx.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.prefix.path().join(name)).unwrap_or_default();
        format!(
            "--- stderr\n{}--- error.log\n{}--- access.log\n{}",
            read("stderr.log"),
            read("error.log"),
            read("access.log")
        )
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // `nginx -s stop` signals the master, which stops its workers (a SIGKILL of the master
        // alone would leave them running).
        let p = self.prefix.path().display().to_string();
        let _ = Command::new(&self.binary)
            .arg("-p")
            .arg(format!("{p}/"))
            .arg("-c")
            .arg(format!("{p}/nginx.conf"))
            .args(["-s", "stop"])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

// ------------------------------------------------------------------------------------------

/// A synced mirror signed with dev keys (so `/tuf/` has metadata), 16 bins for speed.
pub fn signed_mirror(up: &Upstream) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    tufa()
        .arg("init")
        .arg(dir.path())
        .args([
            "--dev-keys",
            "--upstream",
            &up.simple_url(),
            "--project",
            "demo-lib",
        ])
        .assert()
        .success();
    let config = dir.path().join("tufa.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("bins_bit_length = 14"), "{text}");
    std::fs::write(
        &config,
        text.replace("bins_bit_length = 14", "bins_bit_length = 4"),
    )
    .unwrap();
    let out = tufa().arg("--config").arg(&config).arg("sync").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

/// Requests `path` every 100 ms until nginx's copy has expired (the first answer that is not a
/// `HIT`), for at most 5 s.
fn wait_for_expiry(port: u16, path: &str) -> Response {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = get(port, path, &[]);
        if r.cache() != "HIT" || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn deploy_nginx_example_caches_negotiated_pages_and_serves_stale_without_readers() {
    let Some(nginx_bin) = nginx_binary() else {
        return;
    };
    let up = Upstream::start(demo_projects());
    let dir = signed_mirror(&up);
    let config = dir.path().join("tufa.toml");
    let mut r1 = Reader::start(&config, dir.path().join("reader-1.log"));
    let mut r2 = Reader::start(&config, dir.path().join("reader-2.log"));
    let nginx = Nginx::start(&nginx_bin, [r1.port, r2.port]);
    let port = nginx.port;
    let page = "/simple/demo-lib/";
    let ctx = |what: &str, r: &Response| format!("{what}: {r:?}\n{}", nginx.logs());

    // PEP 691 JSON, plain: from a reader, then from the cache, byte for byte what a reader sends.
    let json = get(port, page, &[("Accept", PIP_ACCEPT)]);
    assert_eq!(json.status, 200, "{}", ctx("json", &json));
    assert_eq!(
        json.header("content-type"),
        Some(JSON_TYPE),
        "{}",
        ctx("json", &json)
    );
    assert_eq!(json.header("content-encoding"), None);
    assert_eq!(json.cache(), "MISS", "{}", ctx("json", &json));
    assert_eq!(
        json.header("vary"),
        Some("Accept, Accept-Encoding"),
        "Vary is kept for caches further down"
    );
    assert_eq!(json.body, get(r1.port, page, &[("Accept", PIP_ACCEPT)]).body);
    let doc: serde_json::Value = serde_json::from_slice(&json.body).unwrap();
    assert_eq!(doc["name"], "demo-lib", "{doc}");
    let again = get(port, page, &[("Accept", PIP_ACCEPT)]);
    assert_eq!(
        (again.cache(), again.header("content-type")),
        ("HIT", Some(JSON_TYPE))
    );
    assert_eq!(again.body, json.body);

    // text/html for the same URL: its own cache entry, never the JSON one.
    let html = get(port, page, &[("Accept", "text/html")]);
    assert_eq!(html.status, 200, "{}", ctx("html", &html));
    assert_eq!(html.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(html.cache(), "MISS", "{}", ctx("html", &html));
    assert!(html.text().starts_with("<!DOCTYPE html>"), "{}", html.text());
    assert_eq!(html.body, get(r2.port, page, &[("Accept", "text/html")]).body);
    let again = get(port, page, &[("Accept", "text/html")]);
    assert_eq!(
        (again.cache(), again.header("content-type")),
        ("HIT", Some("text/html; charset=utf-8"))
    );
    assert_eq!(again.body, html.body);
    let pep691_html = get(port, page, &[("Accept", "application/vnd.pypi.simple.v1+html")]);
    assert_eq!(
        pep691_html.header("content-type"),
        Some("application/vnd.pypi.simple.v1+html")
    );
    assert_eq!(pep691_html.cache(), "MISS");
    // `?format=` wins over Accept, and the query is part of the key.
    let query = format!("{page}?format=application/vnd.pypi.simple.v1%2Bjson");
    let by_query = get(port, &query, &[("Accept", "text/html")]);
    assert_eq!(
        (by_query.cache(), by_query.header("content-type")),
        ("MISS", Some(JSON_TYPE))
    );
    assert_eq!(by_query.body, json.body);

    // gzip: its own entry; every Accept-Encoding that allows gzip shares it, and one that
    // refuses gzip shares the plain entry.
    let gz = get(
        port,
        page,
        &[("Accept", PIP_ACCEPT), ("Accept-Encoding", "gzip, deflate")],
    );
    assert_eq!(
        gz.header("content-encoding"),
        Some("gzip"),
        "{}",
        ctx("gzip", &gz)
    );
    assert_eq!(gz.cache(), "MISS");
    assert_eq!(gunzip(&gz.body), json.body);
    let gz2 = get(
        port,
        page,
        &[
            ("Accept", PIP_ACCEPT),
            ("Accept-Encoding", "br, gzip;q=0.8, zstd"),
        ],
    );
    assert_eq!(
        (gz2.cache(), gz2.header("content-encoding")),
        ("HIT", Some("gzip"))
    );
    assert_eq!(gz2.body, gz.body);
    let refused = get(
        port,
        page,
        &[("Accept", PIP_ACCEPT), ("Accept-Encoding", "gzip;q=0, br")],
    );
    assert_eq!(
        (refused.cache(), refused.header("content-encoding")),
        ("HIT", None)
    );
    assert_eq!(refused.body, json.body);

    // A distribution file: immutable, cached.
    let file = &doc["files"][0];
    let filename = file["filename"].as_str().unwrap();
    let base = url::Url::parse(&format!("http://127.0.0.1:{port}{page}")).unwrap();
    let file_path = base
        .join(file["url"].as_str().unwrap())
        .unwrap()
        .path()
        .to_owned();
    let first = get(port, &file_path, &[]);
    assert_eq!(
        (first.status, first.cache()),
        (200, "MISS"),
        "{}",
        ctx("file", &first)
    );
    assert_eq!(first.body, up.file_bytes(filename).unwrap());
    assert!(first.header("cache-control").unwrap().contains("immutable"));
    let again = get(port, &file_path, &[]);
    assert_eq!(again.cache(), "HIT");
    assert_eq!(again.body, first.body);

    // Versioned TUF metadata: immutable, cached. A root that does not exist yet (a client's
    // rotation probe) is never stored, so it appears as soon as it is published.
    let root = get(port, "/tuf/1.root.json", &[]);
    assert_eq!(
        (root.status, root.cache()),
        (200, "MISS"),
        "{}",
        ctx("root", &root)
    );
    assert!(root.header("cache-control").unwrap().contains("immutable"));
    assert_eq!(get(port, "/tuf/1.root.json", &[]).cache(), "HIT");
    for _ in 0..2 {
        let next = get(port, "/tuf/2.root.json", &[]);
        assert_eq!(
            (next.status, next.cache()),
            (404, "MISS"),
            "{}",
            ctx("2.root", &next)
        );
    }

    // The timestamp: clients are told no-cache; nginx keeps a copy for a second, then
    // revalidates it by ETag (the reader answers 304, nothing is re-sent).
    let ts = get(port, "/tuf/timestamp.json", &[]);
    assert_eq!(
        (ts.status, ts.cache()),
        (200, "MISS"),
        "{}",
        ctx("timestamp", &ts)
    );
    assert_eq!(ts.header("cache-control"), Some("no-cache"));
    assert!(ts.header("etag").is_some());
    let again = get(port, "/tuf/timestamp.json", &[]);
    assert_ne!(again.cache(), "MISS", "{}", ctx("timestamp again", &again));
    // nginx counts validity in whole seconds: the copy expires 1 to 2 s after it was stored.
    let revalidated = wait_for_expiry(port, "/tuf/timestamp.json");
    assert_eq!(
        revalidated.cache(),
        "REVALIDATED",
        "{}",
        ctx("timestamp", &revalidated)
    );
    assert_eq!(revalidated.body, ts.body);
    assert_eq!(revalidated.header("cache-control"), Some("no-cache"));

    // Operational endpoints are never cached; nothing but GET and HEAD gets through.
    for path in ["/metrics", "/metrics", "/healthz", "/readyz"] {
        let r = get(port, path, &[]);
        assert_eq!((r.status, r.cache()), (200, ""), "{}", ctx(path, &r));
    }
    assert!(get(port, "/metrics", &[]).text().contains("# TYPE"));
    let post = request(port, "POST", "/simple/", &[("Content-Length", "0")]).unwrap();
    assert_eq!(post.status, 405, "{}", ctx("POST", &post));
    assert_eq!(get(port, "/index.php", &[]).status, 404);

    // One reader lost: the other answers everything, also what was never cached.
    r1.kill();
    for _ in 0..4 {
        let r = get(port, "/healthz", &[]);
        assert_eq!(r.status, 200, "{}", ctx("healthz, one reader", &r));
    }
    let list = get(port, "/simple/", &[("Accept", PIP_ACCEPT)]);
    assert_eq!(
        (list.status, list.cache()),
        (200, "MISS"),
        "{}",
        ctx("root list", &list)
    );

    // Both readers lost: cached pages, files and the (now expired) timestamp are still served;
    // what was never cached fails.
    r2.kill();
    let stale = wait_for_expiry(port, "/tuf/timestamp.json");
    assert_eq!(
        (stale.status, stale.cache()),
        (200, "STALE"),
        "{}",
        ctx("stale timestamp", &stale)
    );
    assert_eq!(stale.body, ts.body);
    let cached = get(port, page, &[("Accept", PIP_ACCEPT)]);
    assert_eq!(cached.status, 200, "{}", ctx("page without readers", &cached));
    assert!(
        matches!(cached.cache(), "HIT" | "STALE"),
        "{}",
        ctx("page", &cached)
    );
    assert_eq!(cached.body, json.body);
    let cached_html = get(port, page, &[("Accept", "text/html")]);
    assert_eq!(cached_html.body, html.body);
    assert_eq!(get(port, &file_path, &[]).body, first.body);
    for path in ["/healthz", "/tuf/3.root.json"] {
        let r = get(port, path, &[]);
        assert!(matches!(r.status, 502 | 504), "{}", ctx(path, &r));
    }
    assert!(
        !r1.log().contains("ERROR") && !r2.log().contains("ERROR"),
        "{}\n{}",
        r1.log(),
        r2.log()
    );
}
