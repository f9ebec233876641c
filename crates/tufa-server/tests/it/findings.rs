//! Regression tests of the security review's serve-side findings (issue #9: F4, F5, F6, F13),
//! each named after its finding.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tufa_pypi::{DistFilename, Sha256Digest};
use tufa_server::{AppState, ServerLimits, router};
use tufa_tree::{BlobRef, file_path};

use crate::fixture::{Fixture, SDIST, WHEEL, publish};
use crate::server::{Running, client};
use crate::{get, head};

/// A TCP connection to `addr` from the loopback address `source` (Linux routes all of 127/8
/// to `lo`), with a small receive buffer when `rcvbuf` is given.
pub async fn connect_from(source: &str, addr: SocketAddr, rcvbuf: Option<u32>) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(n) = rcvbuf {
        socket.set_recv_buffer_size(n)?;
    }
    socket.bind(format!("{source}:0").parse().unwrap())?;
    socket.connect(addr).await
}

/// The value of one metric line (`name` with its labels) in a Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
        .parse()
        .unwrap()
}

pub async fn metrics_of(server: &Running) -> String {
    client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A published project `big` with one file of `len` bytes; its URL path.
pub async fn publish_big(f: &Fixture, len: usize) -> (String, Bytes) {
    let data: Bytes = (0..len).map(|i| (i % 253) as u8).collect::<Vec<u8>>().into();
    let name = "big-1.0.tar.gz";
    let digests = publish(&f.store, "big", &[(name, &data)], BTreeMap::new(), false).await;
    let url = format!("/{}", file_path(&digests[0], &DistFilename::parse(name).unwrap()));
    (url, data)
}

/// A raw HTTP/1.1 GET written to `stream` (the response is not read).
pub async fn send_get(stream: &mut TcpStream, path: &str) {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
}

/// Reads until the server closes the connection (EOF or reset); the bytes read. Panics when
/// the connection is still open after `within`.
pub async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> usize {
    let mut total = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    })
    .await
    .expect("the server closed the connection");
    total
}

fn hostile_limits() -> ServerLimits {
    ServerLimits {
        max_connections: 4,
        max_connections_per_ip: 2,
        send_idle_timeout_secs: 1,
        idle_timeout_secs: 3,
        request_timeout_secs: 3,
        ..ServerLimits::default()
    }
}

#[tokio::test]
async fn finding_04_clients_that_never_read_cannot_starve_healthy_clients() {
    let f = Fixture::memory().await;
    let (big_url, big) = publish_big(&f, 24 * 1024 * 1024).await;
    let state = AppState::new(f.store.clone(), hostile_limits());
    let server = Running::start(state, None).await;

    // The attacker, from 127.0.0.2, asks for a large file on more connections than there are
    // slots and never reads a byte.
    let mut hostile = Vec::new();
    for _ in 0..6 {
        let mut s = connect_from("127.0.0.2", server.addr, Some(4096)).await.unwrap();
        send_get(&mut s, &big_url).await;
        hostile.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A healthy client from 127.0.0.1 is still served: health, a page, a whole file.
    let healthy = async {
        let c = client();
        let r = c.get(server.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = c.get(server.url("/simple/demo/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap(), f.html);
        let r = c.get(server.url(&f.wheel_url())).send().await.unwrap();
        assert_eq!(r.bytes().await.unwrap(), f.wheel);
    };
    tokio::time::timeout(Duration::from_secs(15), healthy)
        .await
        .expect("a healthy client is answered while another client holds connections");

    // Every hostile connection is closed: at once beyond the per-client limit, after the
    // send timeout for the ones that were served and never read.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for s in &mut hostile {
        let got = read_until_closed(s, Duration::from_secs(10)).await;
        assert!(
            got < big.len(),
            "a stalled response was closed before its end ({got} bytes)"
        );
    }
    let m = metrics_of(&server).await;
    assert!(
        metric(&m, "tufa_connections_closed_total{reason=\"per_client_limit\"}") >= 4,
        "{m}"
    );
    let stalled = metric(&m, "tufa_connections_closed_total{reason=\"send_stalled\"}")
        + metric(&m, "tufa_connections_closed_total{reason=\"send_too_slow\"}");
    assert!(stalled >= 1, "{m}");
    server.stop().await;
}

#[tokio::test]
async fn finding_04_silent_connections_are_closed_after_the_timeout() {
    let f = Fixture::memory().await;
    let limits = ServerLimits {
        request_timeout_secs: 1,
        ..hostile_limits()
    };
    let server = Running::start(AppState::new(f.store.clone(), limits), None).await;
    // Connects and sends nothing: before the fix, hyper's protocol detection waited forever.
    let mut silent = connect_from("127.0.0.2", server.addr, None).await.unwrap();
    let got = read_until_closed(&mut silent, Duration::from_secs(10)).await;
    assert_eq!(got, 0);
    let m = metrics_of(&server).await;
    assert_eq!(
        metric(&m, "tufa_connections_closed_total{reason=\"idle\"}"),
        1,
        "{m}"
    );
    server.stop().await;
}

#[tokio::test]
async fn finding_04_per_client_limit_must_be_below_max_connections() {
    let f = Fixture::memory().await;
    let limits = ServerLimits {
        max_connections: 8,
        max_connections_per_ip: 8,
        ..ServerLimits::default()
    };
    let err = limits.validate().unwrap_err().to_string();
    assert!(err.contains("max_connections_per_ip (8)"), "{err}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = tufa_server::serve(listener, AppState::new(f.store.clone(), limits), None, async {}).await;
    assert!(refused.is_err());
    assert!(ServerLimits::default().validate().is_ok());
}

fn verifications(text: &str) -> u64 {
    metric(text, "tufa_blob_verifications_total")
}

#[tokio::test]
async fn finding_05_concurrent_range_requests_hash_the_blob_once() {
    let f = Fixture::local().await;
    let (_, app) = f.fresh_app();
    let url = f.wheel_url();
    let ranges: Vec<String> = (0..16)
        .map(|i| format!("bytes={}-{}", i * 1000, i * 1000))
        .collect();
    let answers = futures::future::join_all(ranges.iter().map(|r| {
        let (app, url) = (&app, &url);
        async move { get(app, url, &[("range", r.as_str())]).await }
    }))
    .await;
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(a.body[..], f.wheel[i * 1000..=i * 1000]);
    }
    assert_eq!(verifications(&get(&app, "/metrics", &[]).await.text()), 1);
    // Later ranges of the same blob are cut without hashing it again.
    for r in ["bytes=0-9", "bytes=-5", "bytes=1000-"] {
        assert_eq!(
            get(&app, &url, &[("range", r)]).await.status,
            StatusCode::PARTIAL_CONTENT
        );
    }
    assert_eq!(verifications(&get(&app, "/metrics", &[]).await.text()), 1);
}

#[tokio::test]
async fn finding_05_a_complete_download_marks_the_blob_verified() {
    let f = Fixture::local().await;
    let (_, app) = f.fresh_app();
    assert_eq!(get(&app, &f.wheel_url(), &[]).await.body, f.wheel);
    let a = get(&app, &f.wheel_url(), &[("range", "bytes=5-9")]).await;
    assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(a.body[..], f.wheel[5..10]);
    assert_eq!(verifications(&get(&app, "/metrics", &[]).await.text()), 0);
}

#[tokio::test]
async fn finding_05_a_corrupt_blob_is_still_refused_for_ranges() {
    let f = Fixture::local().await;
    let mut bad = f.wheel.to_vec();
    bad[7] ^= 0xff;
    f.corrupt(&f.wheel_digest, &bad);
    let (_, app) = f.fresh_app();
    let url = f.wheel_url();
    let answers =
        futures::future::join_all((0..8).map(|_| get(&app, &url, &[("range", "bytes=0-99")]))).await;
    for a in &answers {
        assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(a.text(), "internal error\n");
    }
    // A mismatch is never remembered: asked again, hashed again, refused again.
    let a = get(&app, &url, &[("range", "bytes=0-99")]).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    let m = get(&app, "/metrics", &[]).await.text();
    assert!(verifications(&m) >= 2, "{m}");
    assert_eq!(metric(&m, "tufa_blob_verification_failures_total"), 9);
}

/// `/files/…` path of `digest` under `filename`, plain or hash-prefixed.
fn file_url(digest: &Sha256Digest, filename: &str, prefixed: bool) -> String {
    let hex = digest.to_hex();
    let base = if prefixed {
        format!("{hex}.{filename}")
    } else {
        filename.to_owned()
    };
    format!("/files/{}/{}/{}/{base}", &hex[..2], &hex[2..4], &hex[4..])
}

#[tokio::test]
async fn finding_06_a_stored_blob_under_an_unpublished_filename_is_404() {
    let f = Fixture::memory().await;
    for prefixed in [false, true] {
        // The published pairs answer.
        assert_eq!(
            get(&f.app, &file_url(&f.wheel_digest, WHEEL, prefixed), &[])
                .await
                .status,
            StatusCode::OK
        );
        for (digest, name) in [
            (f.wheel_digest, "anything-9.9-py3-none-any.whl"),
            (f.wheel_digest, "demo-9.9-py3-none-any.whl"),
            (f.wheel_digest, SDIST),
            (f.sdist_digest, WHEEL),
            (f.metadata_digest, "demo-1.0.tar.gz"),
            (f.html_digest, "zeta-pkg-1.0.tar.gz"),
        ] {
            let url = file_url(&digest, name, prefixed);
            assert_eq!(
                get(&f.app, &url, &[]).await.status,
                StatusCode::NOT_FOUND,
                "{url}"
            );
            assert_eq!(
                head(&f.app, &url, &[]).await.status,
                StatusCode::NOT_FOUND,
                "{url}"
            );
            let a = get(&f.app, &url, &[("range", "bytes=0-1")]).await;
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{url}");
            let etag = format!("\"{digest}\"");
            let a = get(&f.app, &url, &[("if-none-match", &etag)]).await;
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{url}");
        }
    }
    // METADATA of the published wheel's name under another stored digest.
    let url = format!("{}.metadata", file_url(&f.sdist_digest, WHEEL, false));
    assert_eq!(get(&f.app, &url, &[]).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn finding_06_files_of_a_quarantined_project_are_404() {
    let f = Fixture::memory().await;
    let wheel = Bytes::from_static(b"PK\x03\x04 quarantined wheel");
    let sdist = Bytes::from_static(b"quarantined sdist");
    let meta = f
        .store
        .put_bytes(Bytes::from_static(b"Name: evil\n"))
        .await
        .unwrap();
    let metadata = BTreeMap::from([(
        "evil-1.0-py3-none-any.whl".to_owned(),
        BlobRef {
            sha256: meta,
            len: 11,
        },
    )]);
    let files = [("evil-1.0-py3-none-any.whl", &wheel), ("evil-1.0.tar.gz", &sdist)];
    // Published normally first: served.
    let digests = publish(&f.store, "evil", &files, metadata.clone(), false).await;
    let urls = [
        file_url(&digests[0], files[0].0, false),
        file_url(&digests[1], files[1].0, false),
        format!("{}.metadata", file_url(&digests[0], files[0].0, false)),
        file_url(&digests[0], files[0].0, true),
    ];
    for url in &urls {
        assert_eq!(get(&f.app, url, &[]).await.status, StatusCode::OK, "{url}");
    }
    // Then quarantined (PEP 792): the blobs stay stored, nothing of them is served.
    publish(&f.store, "evil", &files, metadata, true).await;
    for url in &urls {
        assert_eq!(get(&f.app, url, &[]).await.status, StatusCode::NOT_FOUND, "{url}");
        assert_eq!(
            head(&f.app, url, &[]).await.status,
            StatusCode::NOT_FOUND,
            "{url}"
        );
    }
    assert!(f.store.exists(&digests[0]).await.unwrap());
}

#[tokio::test]
async fn finding_06_a_file_removed_by_a_later_publish_is_404() {
    let f = Fixture::memory().await;
    assert_eq!(get(&f.app, &f.sdist_url(), &[]).await.status, StatusCode::OK);
    let metadata_url = format!("{}.metadata", f.wheel_url());
    assert_eq!(get(&f.app, &metadata_url, &[]).await.status, StatusCode::OK);
    // Republished with only the sdist; the manifest even keeps the wheel's METADATA entry
    // (a stale map must not make the METADATA servable).
    let metadata = BTreeMap::from([(
        WHEEL.to_owned(),
        BlobRef {
            sha256: f.metadata_digest,
            len: f.metadata.len() as u64,
        },
    )]);
    publish(&f.store, "demo", &[(SDIST, &f.sdist)], metadata, false).await;
    assert_eq!(get(&f.app, &f.sdist_url(), &[]).await.status, StatusCode::OK);
    for url in [
        f.wheel_url(),
        metadata_url,
        file_url(&f.wheel_digest, WHEEL, true),
    ] {
        assert_eq!(
            get(&f.app, &url, &[]).await.status,
            StatusCode::NOT_FOUND,
            "{url}"
        );
        assert_eq!(
            head(&f.app, &url, &[]).await.status,
            StatusCode::NOT_FOUND,
            "{url}"
        );
    }
    // A router that never saw the old page agrees.
    let fresh = router(AppState::new(f.store.clone(), ServerLimits::default()));
    assert_eq!(
        get(&fresh, &f.wheel_url(), &[]).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn finding_06_stored_blobs_are_not_served_under_a_page_name() {
    let f = Fixture::memory().await;
    // Pages of the project answer, current or not (their content names the project).
    for (digest, kind) in [(f.html_digest, "html"), (f.json_digest, "json")] {
        let url = format!("/simple/demo/{digest}.index.{kind}");
        assert_eq!(get(&f.app, &url, &[]).await.status, StatusCode::OK, "{url}");
    }
    let wheel = Bytes::from_static(b"PK\x03\x04 quarantined wheel");
    let digests = publish(
        &f.store,
        "evil",
        &[("evil-1.0.tar.gz", &wheel)],
        BTreeMap::new(),
        true,
    )
    .await;
    let mut urls = Vec::new();
    for digest in [digests[0], f.wheel_digest, f.sdist_digest, f.metadata_digest] {
        for kind in ["html", "json"] {
            urls.push(format!("/simple/demo/{digest}.index.{kind}"));
            urls.push(format!("/simple/evil/{digest}.index.{kind}"));
        }
    }
    // A page of another project, and a page asked for in the other format.
    urls.push(format!("/simple/zeta-pkg/{}.index.html", f.html_digest));
    urls.push(format!("/simple/demo/{}.index.json", f.html_digest));
    urls.push(format!("/simple/demo/{}.index.html", f.json_digest));
    for url in &urls {
        assert_eq!(get(&f.app, url, &[]).await.status, StatusCode::NOT_FOUND, "{url}");
        assert_eq!(
            head(&f.app, url, &[]).await.status,
            StatusCode::NOT_FOUND,
            "{url}"
        );
    }
}

/// Log lines written while a guard is held, for the current thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn finding_13_access_log_marks_fully_delivered_files_complete() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime is single-threaded: the server's tasks log on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let f = Fixture::local().await;
    let server = Running::start(f.state.clone(), None).await;
    let c = client();
    let r = c.get(server.url(&f.wheel_url())).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), f.wheel);
    let r = c
        .get(server.url(&f.wheel_url()))
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 100);

    let path = f.wheel_url();
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = captured
            .text()
            .lines()
            .filter(|l| l.contains("request") && l.contains(&path))
            .map(str::to_owned)
            .collect();
        if lines.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(lines.len(), 2, "{}", captured.text());
    for line in &lines {
        assert!(line.contains("complete=true"), "{line}");
    }
    let _ = std::io::stderr().flush();
    server.stop().await;
}
