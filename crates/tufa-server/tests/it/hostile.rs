//! The hostile-client suite: a real `serve` on loopback, driven with raw bytes where a
//! well-behaved client library would refuse to send them. Each case: no panic, a short generic
//! answer (or a closed connection), nothing of the store leaked, and a healthy client from
//! another address keeps being served.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tufa_server::{AppState, ServerLimits};

use crate::findings::{connect_from, metric, metrics_of, publish_big, read_until_closed, send_get};
use crate::fixture::{Fixture, WHEEL_LEN};
use crate::server::{Running, client};

/// The bodies the server itself ever sends on an error (hyper's own 400/431 are empty).
const GENERIC_BODIES: [&str; 8] = [
    "",
    "not found\n",
    "request target too long\n",
    "request headers too large\n",
    "range not satisfiable\n",
    "internal error\n",
    "request timed out\n",
    "not acceptable: supported types are application/vnd.pypi.simple.v1+json, \
     application/vnd.pypi.simple.v1+html and text/html\n",
];

/// One raw response: status (0 when the connection closed without one), head, body.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// An error answer must be short and one of the fixed bodies.
    fn assert_generic_error(&self, what: &str) {
        let body = String::from_utf8_lossy(&self.body);
        assert!(
            GENERIC_BODIES.contains(&body.as_ref()),
            "{what}: status {} with a non-generic body {body:?}",
            self.status
        );
    }
}

/// Sends `request` as is on a new connection from `source` and reads until the server closes
/// it (send `connection: close`). Bounded in time.
async fn raw_from(source: &str, server: &Running, request: &[u8]) -> Raw {
    let mut s = connect_from(source, server.addr, None).await.unwrap();
    // The server may close before reading everything (e.g. a 431): a write error is fine.
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server answered and closed within 15 s");
    parse(&out)
}

async fn raw(server: &Running, request: &[u8]) -> Raw {
    raw_from("127.0.0.2", server, request).await
}

fn parse(out: &[u8]) -> Raw {
    let Some(split) = out.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Raw {
            status: 0,
            head: String::from_utf8_lossy(out).into_owned(),
            body: Vec::new(),
        };
    };
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Raw {
        status,
        head,
        body: out[split + 4..].to_vec(),
    }
}

/// A GET of `target` with extra header lines, closing the connection after the answer.
fn get_request(target: &[u8], headers: &[(&str, &[u8])]) -> Vec<u8> {
    let mut r = b"GET ".to_vec();
    r.extend_from_slice(target);
    r.extend_from_slice(b" HTTP/1.1\r\nhost: x\r\nconnection: close\r\n");
    for (name, value) in headers {
        r.extend_from_slice(name.as_bytes());
        r.extend_from_slice(b": ");
        r.extend_from_slice(value);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"\r\n");
    r
}

/// A healthy client from 127.0.0.1: health, a page and a file, within a bound.
async fn assert_healthy(server: &Running, f: &Fixture) {
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
        .expect("a healthy client is served");
}

fn limits() -> ServerLimits {
    ServerLimits {
        max_connections: 16,
        max_connections_per_ip: 8,
        request_timeout_secs: 2,
        send_idle_timeout_secs: 1,
        idle_timeout_secs: 3,
        ..ServerLimits::default()
    }
}

async fn start(f: &Fixture) -> Running {
    Running::start(AppState::new(f.store.clone(), limits()), None).await
}

#[tokio::test]
async fn hostile_client_traversal_in_every_encoding() {
    let f = Fixture::local().await;
    let root = f.dir.as_ref().unwrap().path().to_string_lossy().into_owned();
    let server = start(&f).await;
    let hex = f.wheel_digest.to_hex();
    let file_dir = format!("/files/{}/{}/{}", &hex[..2], &hex[2..4], &hex[4..]);
    let dots: [&[u8]; 16] = [
        b"../",
        b"..%2f",
        b"%2e%2e/",
        b"%2E%2E%2F",
        b"%252e%252e%252f",
        b"..\\",
        b"..%5c",
        b"%2e%2e%5C",
        b"%c0%ae%c0%ae/",
        b"%c0%ae%c0%ae%c0%af",
        b"%e0%80%ae%e0%80%ae/",
        b"..%00/",
        b"%00../",
        b"%e2%80%a4%e2%80%a4/",
        b"%ef%bc%8e%ef%bc%8e%ef%bc%8f",
        b".%2e/",
    ];
    let targets = [
        "etc/passwd",
        "published/projects/demo.json",
        "blobs/sha256/",
        "tufa.toml",
    ];
    let mut tried = 0;
    for prefix in ["/", "/simple/", "/files/", "/tuf/", &format!("{file_dir}/")] {
        for dot in dots {
            for depth in [1, 4] {
                for target in targets {
                    let mut path = prefix.as_bytes().to_vec();
                    for _ in 0..depth {
                        path.extend_from_slice(dot);
                    }
                    path.extend_from_slice(target.as_bytes());
                    let r = raw(&server, &get_request(&path, &[])).await;
                    let shown = String::from_utf8_lossy(&path).into_owned();
                    assert!(
                        matches!(r.status, 400 | 404 | 301),
                        "{shown}: status {}",
                        r.status
                    );
                    if r.status == 301 {
                        // Only ever a redirect to a normalised project page.
                        let location = r.header("location").unwrap_or_default();
                        assert!(
                            location.starts_with("/simple/") && !location.contains(".."),
                            "{shown}: {location}"
                        );
                    }
                    r.assert_generic_error(&shown);
                    let text = String::from_utf8_lossy(&r.body);
                    assert!(
                        !text.contains(&root) && !text.contains("root:"),
                        "{shown} leaked: {text}"
                    );
                    tried += 1;
                }
            }
        }
    }
    assert!(tried >= 500);
    // The published wheel under a traversing name is not the wheel.
    let r = raw(
        &server,
        &get_request(
            format!("{file_dir}/..%2fdemo-1.0-py3-none-any.whl").as_bytes(),
            &[],
        ),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_healthy(&server, &f).await;
    server.stop().await;
}

#[tokio::test]
async fn hostile_client_overlong_paths_are_414_and_overlong_headers_431() {
    let f = Fixture::memory().await;
    let server = start(&f).await;
    for len in [1100, 4000, 12_000] {
        let path = format!("/simple/{}/", "a".repeat(len));
        let r = raw(&server, &get_request(path.as_bytes(), &[])).await;
        // Beyond hyper's read buffer the connection answers 431/400 or just closes.
        assert!(matches!(r.status, 414 | 431 | 400 | 0), "{len}: {}", r.status);
        if len < 8000 {
            assert_eq!(r.status, 414, "{len}");
        }
        r.assert_generic_error("long path");
    }
    let big = "x".repeat(15_000);
    let r = raw(
        &server,
        &get_request(b"/healthz", &[("x-a", big.as_bytes()), ("x-b", big.as_bytes())]),
    )
    .await;
    assert!(matches!(r.status, 431 | 400 | 0), "{}", r.status);
    r.assert_generic_error("big headers");
    // Many small headers: beyond hyper's header count.
    let many: Vec<(String, Vec<u8>)> = (0..200).map(|i| (format!("x-h{i}"), b"v".to_vec())).collect();
    let many: Vec<(&str, &[u8])> = many.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
    let r = raw(&server, &get_request(b"/healthz", &many)).await;
    assert!(matches!(r.status, 431 | 400 | 0), "{}", r.status);
    r.assert_generic_error("many headers");
    // Headers just within the limit are fine.
    let r = raw(
        &server,
        &get_request(b"/healthz", &[("x-a", "y".repeat(4000).as_bytes())]),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_healthy(&server, &f).await;
    server.stop().await;
}

#[tokio::test]
async fn hostile_client_invalid_utf8_in_path_and_headers() {
    let f = Fixture::memory().await;
    let server = start(&f).await;
    let paths: [&[u8]; 8] = [
        b"/simple/\xff\xfe/",
        b"/simple/%ff%fe/",
        b"/simple/demo\xc0\xaf/",
        b"/files/\xff/\xff/\xff/x.whl",
        b"/tuf/\xed\xa0\x80.json",
        b"/\x80",
        b"/simple/%c3%28/",
        b"/simple/demo/?format=\xff",
    ];
    for path in paths {
        let r = raw(&server, &get_request(path, &[])).await;
        assert!(
            matches!(r.status, 400 | 404 | 406 | 200),
            "{path:?}: {}",
            r.status
        );
        if r.status != 200 {
            r.assert_generic_error(&String::from_utf8_lossy(path));
        }
    }
    for (name, value) in [
        ("accept", b"\xff\xfe/\xff" as &[u8]),
        ("accept-encoding", b"gz\xffip"),
        ("range", b"bytes=\xff-\xfe"),
        ("if-none-match", b"\"\xff\""),
        ("x-other", b"\xc0\xaf\xed\xa0\x80"),
    ] {
        for target in ["/simple/demo/".to_owned(), f.wheel_url()] {
            let r = raw(&server, &get_request(target.as_bytes(), &[(name, value)])).await;
            assert!(matches!(r.status, 200 | 400 | 406), "{name}: {}", r.status);
            if r.status != 200 {
                r.assert_generic_error(name);
            }
        }
    }
    assert_healthy(&server, &f).await;
    server.stop().await;
}

#[tokio::test]
async fn hostile_client_odd_accept_headers() {
    let f = Fixture::memory().await;
    let server = start(&f).await;
    let thousands = (0..1400)
        .map(|i| format!("a/{i};q=0"))
        .collect::<Vec<_>>()
        .join(",");
    let zeros = "application/vnd.pypi.simple.v1+json;q=0, application/vnd.pypi.simple.v1+html;q=0, \
                 text/html;q=0, */*;q=0, application/*;q=0, text/*;q=0";
    let cases: Vec<(String, &[u16])> = vec![
        (zeros.to_owned(), &[406]),
        ("*/*;q=0".to_owned(), &[406]),
        (thousands.clone(), &[406, 431]),
        (format!("{thousands},text/html"), &[200, 431]),
        (";;;q=abc,,,/,*/;q=".to_owned(), &[200, 406]),
        ("text/html;q=1e400".to_owned(), &[200, 406]),
        ("text/html;q=-1".to_owned(), &[200, 406]),
        (
            "text/html;q=NaN, application/vnd.pypi.simple.v1+json;q=0.0001".to_owned(),
            &[200, 406],
        ),
        ("text/html;q=1.0000000000000000000001".to_owned(), &[200, 406]),
        ("*/*;q=0.5;q=0;q=1".to_owned(), &[200, 406]),
        ("application/vnd.pypi.simple.v1+json;".repeat(300), &[200, 406]),
        ("\u{0}".to_owned(), &[200, 400, 406]),
        (String::new(), &[200]),
    ];
    for (accept, allowed) in &cases {
        for target in ["/simple/demo/", "/simple/"] {
            let r = raw(
                &server,
                &get_request(target.as_bytes(), &[("accept", accept.as_bytes())]),
            )
            .await;
            let shown: String = accept.chars().take(60).collect();
            assert!(
                allowed.contains(&r.status),
                "{target} Accept {shown:?}: {}",
                r.status
            );
            if r.status != 200 {
                r.assert_generic_error(&shown);
            }
        }
    }
    assert_healthy(&server, &f).await;
    server.stop().await;
}

#[tokio::test]
async fn hostile_client_odd_accept_encoding() {
    let f = Fixture::memory().await;
    let server = start(&f).await;
    let list = (0..1200)
        .map(|i| format!("x{i};q=0.5"))
        .collect::<Vec<_>>()
        .join(", ");
    // Each value with the one coding the answer may have (or none).
    for (value, allowed) in [
        ("gzip;q=0".to_owned(), None),
        ("*;q=0".to_owned(), None),
        ("gzip;q=1.5".to_owned(), Some("gzip")),
        ("gzip;q=abc".to_owned(), Some("gzip")),
        ("zstd;q=0, gzip;q=0".to_owned(), None),
        ("zstd;q=2".to_owned(), Some("zstd")),
        (list.clone(), None),
        (format!("{list}, gzip"), Some("gzip")),
        (format!("{list}, zstd"), Some("zstd")),
        (",,,;;;==".to_owned(), None),
        ("identity;q=0, *;q=0".to_owned(), None),
    ] {
        let r = raw(
            &server,
            &get_request(b"/simple/demo/", &[("accept-encoding", value.as_bytes())]),
        )
        .await;
        let shown: String = value.chars().take(60).collect();
        assert!(matches!(r.status, 200 | 431), "{shown}: {}", r.status);
        if r.status == 200 {
            let encoding = r.header("content-encoding");
            // Never an encoding the client did not accept.
            if encoding.is_some() {
                assert_eq!(encoding.as_deref(), allowed, "{shown}");
            }
            assert_eq!(
                crate::fixture::decoded(encoding.as_deref(), &r.body),
                f.html,
                "{shown}"
            );
        }
        // Files never get a Content-Encoding, whatever is asked.
        let r = raw(
            &server,
            &get_request(f.sdist_url().as_bytes(), &[("accept-encoding", value.as_bytes())]),
        )
        .await;
        if r.status == 200 {
            assert_eq!(r.header("content-encoding"), None);
            assert_eq!(r.body, f.sdist);
        }
    }
    assert_healthy(&server, &f).await;
    server.stop().await;
}

#[tokio::test]
async fn hostile_client_odd_ranges() {
    let f = Fixture::memory().await;
    let server = start(&f).await;
    let len = WHEEL_LEN as u64;
    let many = (0..1500)
        .map(|i| format!("{i}-{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let cases: Vec<(String, u16)> = vec![
        ("bytes=0-1,5-6".to_owned(), 200),
        (format!("bytes={many}"), 200),
        ("bytes=9-1".to_owned(), 200),
        ("bytes=99999999999999999999999-".to_owned(), 200),
        ("bytes=-99999999999999999999999".to_owned(), 200),
        ("bytes=0-99999999999999999999999".to_owned(), 200),
        ("bytes=-0".to_owned(), 416),
        ("bytes=18446744073709551615-".to_owned(), 416),
        ("bytes=18446744073709551614-18446744073709551615".to_owned(), 416),
        ("bytes=0-18446744073709551615".to_owned(), 206),
        ("bytes=-18446744073709551615".to_owned(), 206),
        (format!("bytes={}-", len - 1), 206),
        (format!("bytes={len}-"), 416),
        ("bytes=".to_owned(), 200),
        ("bytes=--1".to_owned(), 200),
        ("bytes=1-2-3".to_owned(), 200),
        ("bytes=0x10-0x20".to_owned(), 200),
        ("bytes= 1 - 2 ".to_owned(), 206),
        ("pages=1-2".to_owned(), 200),
        ("bytes=+1-2".to_owned(), 200),
    ];
    for (range, want) in &cases {
        let r = raw(
            &server,
            &get_request(f.wheel_url().as_bytes(), &[("range", range.as_bytes())]),
        )
        .await;
        let shown: String = range.chars().take(60).collect();
        assert!(
            r.status == *want || r.status == 431,
            "{shown}: {} (want {want})",
            r.status
        );
        match r.status {
            200 => assert_eq!(r.body, f.wheel, "{shown}"),
            206 => {
                let content_range = r.header("content-range").unwrap();
                let (span, total) = content_range
                    .strip_prefix("bytes ")
                    .unwrap()
                    .split_once('/')
                    .unwrap();
                assert_eq!(total, len.to_string());
                let (a, b) = span.split_once('-').unwrap();
                let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                assert_eq!(r.body, f.wheel[a..=b], "{shown}");
            }
            416 => {
                assert_eq!(r.header("content-range"), Some(format!("bytes */{len}")));
                r.assert_generic_error(&shown);
            }
            _ => r.assert_generic_error(&shown),
        }
    }
    assert_healthy(&server, &f).await;
    server.stop().await;
}

#[tokio::test]
async fn hostile_client_odd_if_none_match() {
    let f = Fixture::memory().await;
    let server = start(&f).await;
    let etag = format!("\"{}\"", f.wheel_digest);
    let garbage = (0..600)
        .map(|i| format!("\"g{i}\""))
        .collect::<Vec<_>>()
        .join(", ");
    for (value, want) in [
        ("*".to_owned(), 304),
        (format!("{garbage}, {etag}"), 304),
        (format!("W/{etag}"), 304),
        (garbage.clone(), 200),
        ("\"\"\"\",,,W/,W/\"".to_owned(), 200),
        (",".repeat(5000), 200),
        (etag.to_uppercase(), 200),
        (etag.trim_matches('"').to_owned(), 200),
    ] {
        let r = raw(
            &server,
            &get_request(f.wheel_url().as_bytes(), &[("if-none-match", value.as_bytes())]),
        )
        .await;
        let shown: String = value.chars().take(60).collect();
        assert_eq!(r.status, want, "{shown}");
        if want == 304 {
            assert!(r.body.is_empty());
        } else {
            assert_eq!(r.body, f.wheel);
        }
    }
    assert_healthy(&server, &f).await;
    server.stop().await;
}

#[tokio::test]
async fn hostile_client_slow_reader_below_the_minimum_rate_is_dropped() {
    let f = Fixture::memory().await;
    let (big_url, big) = publish_big(&f, 16 * 1024 * 1024).await;
    let limits = ServerLimits {
        min_send_rate_bytes_per_sec: 4 * 1024 * 1024,
        ..limits()
    };
    let server = Running::start(AppState::new(f.store.clone(), limits), None).await;
    // Reads 8 KiB every 100 ms: about 80 KiB/s, far below the configured 4 MiB/s.
    let mut slow = connect_from("127.0.0.2", server.addr, Some(4096)).await.unwrap();
    send_get(&mut slow, &big_url).await;
    let mut total = 0usize;
    let mut buf = vec![0u8; 8 * 1024];
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "a reader below the minimum rate is disconnected");
    assert!(total < big.len());
    let m = metrics_of(&server).await;
    let dropped = metric(&m, "tufa_connections_closed_total{reason=\"send_too_slow\"}")
        + metric(&m, "tufa_connections_closed_total{reason=\"send_stalled\"}");
    assert!(dropped >= 1, "{m}");
    // A client reading at full speed gets the whole file.
    let r = client().get(server.url(&big_url)).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), big);
    assert_healthy(&server, &f).await;
    server.stop().await;
}

#[tokio::test]
async fn hostile_client_slowloris_headers_are_cut_off() {
    let f = Fixture::memory().await;
    let server = start(&f).await;
    let addr = server.addr;
    // More slow header senders than one client may hold connections, one byte at a time.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        tasks.push(tokio::spawn(async move {
            let Ok(mut s) = connect_from("127.0.0.2", addr, None).await else {
                return true;
            };
            let request = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            let mut buf = [0u8; 256];
            for byte in request.iter().cycle().take(200) {
                if s.write_all(&[*byte]).await.is_err() {
                    return true;
                }
                // Closed by the server: a read returns at once.
                if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
                    return true;
                }
            }
            false
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_healthy(&server, &f).await;
    for task in tasks {
        assert!(task.await.unwrap(), "a slowloris connection was closed");
    }
    let m = metrics_of(&server).await;
    assert!(
        metric(&m, "tufa_connections_closed_total{reason=\"per_client_limit\"}") >= 1,
        "{m}"
    );
    server.stop().await;
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn hostile_client_connection_flood_past_the_limit() {
    let f = Fixture::memory().await;
    let server = start(&f).await;
    let before = rss_kib();
    // One address opens far more connections than it may hold, and sends nothing.
    let mut flood = Vec::new();
    for _ in 0..64 {
        if let Ok(s) = connect_from("127.0.0.2", server.addr, None).await {
            flood.push(s);
        }
    }
    // Many addresses take one connection each, together more than every slot.
    for last in 10..40 {
        if let Ok(s) = connect_from(&format!("127.0.0.{last}"), server.addr, None).await {
            flood.push(s);
        }
    }
    // A healthy client is served: at once while slots remain, else once the silent
    // connections are closed (no first byte within the request timeout).
    assert_healthy(&server, &f).await;
    for s in &mut flood {
        read_until_closed(s, Duration::from_secs(15)).await;
    }
    let m = metrics_of(&server).await;
    assert!(
        metric(&m, "tufa_connections_closed_total{reason=\"per_client_limit\"}") >= 40,
        "{m}"
    );
    assert!(
        metric(&m, "tufa_connections_closed_total{reason=\"idle\"}") >= 8,
        "{m}"
    );
    assert_healthy(&server, &f).await;
    let after = rss_kib();
    assert!(
        after.saturating_sub(before) < 256 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    server.stop().await;
}

#[tokio::test]
async fn hostile_client_http2_prior_knowledge_junk() {
    let f = Fixture::memory().await;
    let server = start(&f).await;
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let junk: [&[u8]; 5] = [
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        // A SETTINGS frame with an absurd length.
        b"\xff\xff\xff\x04\x00\x00\x00\x00\x00",
        // HEADERS on stream 0 with garbage HPACK.
        b"\x00\x00\x05\x01\x05\x00\x00\x00\x00\xff\xfe\xfd\xfc\xfb",
        // A frame of unknown type followed by the preface again.
        b"\x00\x00\x00\xee\x00\x00\x00\x00\x01PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"",
    ];
    for j in junk {
        let mut s = connect_from("127.0.0.2", server.addr, None).await.unwrap();
        let mut bytes = preface.to_vec();
        bytes.extend_from_slice(j);
        let _ = s.write_all(&bytes).await;
        // GOAWAY and close, or close after the idle timeout: never held open.
        read_until_closed(&mut s, Duration::from_secs(15)).await;
    }
    // Half a preface, then nothing.
    let mut s = connect_from("127.0.0.2", server.addr, None).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    read_until_closed(&mut s, Duration::from_secs(15)).await;
    // A real HTTP/2 client without TLS (prior knowledge) is served.
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = h2.get(server.url(&f.wheel_url())).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.bytes().await.unwrap(), f.wheel);
    assert_healthy(&server, &f).await;
    server.stop().await;
}

#[tokio::test]
async fn hostile_client_pipelined_requests() {
    let f = Fixture::memory().await;
    let server = start(&f).await;
    let mut batch = Vec::new();
    for path in ["/healthz", "/simple/demo/", "/nope", "/simple/DEMO/"] {
        batch.extend_from_slice(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes());
    }
    batch.extend_from_slice(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let mut s = connect_from("127.0.0.2", server.addr, None).await.unwrap();
    s.write_all(&batch).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &text[at + 9..at + 12])
        .collect();
    assert_eq!(statuses, ["200", "200", "404", "301", "200"], "{text}");

    // Hundreds of pipelined requests from a client that never reads: bounded by the send
    // timeout, the connection is closed and the server goes on.
    let mut greedy = connect_from("127.0.0.2", server.addr, Some(4096)).await.unwrap();
    let request = format!("GET {} HTTP/1.1\r\nhost: x\r\n\r\n", f.wheel_url());
    let flood = request.repeat(300);
    let _ = tokio::time::timeout(Duration::from_secs(10), greedy.write_all(flood.as_bytes())).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    read_until_closed(&mut greedy, Duration::from_secs(15)).await;
    assert_healthy(&server, &f).await;
    server.stop().await;
}

#[tokio::test]
async fn hostile_client_methods_and_bodies() {
    let f = Fixture::memory().await;
    let server = start(&f).await;
    for request in [
        b"POST /simple/demo/ HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello".to_vec(),
        b"PUT /files/x HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".to_vec(),
        b"TRACE / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n".to_vec(),
        b"GET /healthz HTTP/9.9\r\nhost: x\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"\r\n\r\n\r\n".to_vec(),
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 99999999999\r\n\r\n".to_vec(),
    ] {
        let r = raw(&server, &request).await;
        let shown = String::from_utf8_lossy(&request[..request.len().min(40)]).into_owned();
        assert!(matches!(r.status, 0 | 200 | 400 | 404 | 405 | 505), "{shown}: {}", r.status);
        if r.status != 200 {
            let body = String::from_utf8_lossy(&r.body);
            assert!(body.len() < 200, "{shown}: {body}");
        }
    }
    assert_healthy(&server, &f).await;
    server.stop().await;
}

/// Keeps the helper honest: a plain request from 127.0.0.2 is answered like any other.
#[tokio::test]
async fn hostile_client_raw_helper_sees_ordinary_answers() {
    let f = Fixture::memory().await;
    let server = start(&f).await;
    let r = raw(&server, &get_request(b"/healthz", &[])).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok\n");
    let r = raw(&server, &get_request(b"/nothing-here", &[])).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, b"not found\n");
    server.stop().await;
}
