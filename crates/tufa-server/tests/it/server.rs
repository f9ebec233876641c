//! A real `serve` on 127.0.0.1: TLS, connection limits, header limits, shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tufa_server::{AppState, ServerError, ServerLimits, TlsFiles, serve};

use crate::fixture::{Fixture, WHEEL_LEN};
use crate::install_crypto_provider;

pub struct Running {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServerError>>,
}

impl Running {
    pub async fn start(state: AppState, tls: Option<TlsFiles>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state, tls, async {
            let _ = stopped.await;
        }));
        Self { addr, stop, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Asks for shutdown and waits for `serve` to return.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

pub fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn serves_over_plain_http_and_shuts_down() {
    let f = Fixture::local().await;
    let server = Running::start(f.state.clone(), None).await;
    let client = client();

    let r = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok\n");

    let r = client.get(server.url(&f.wheel_url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(WHEEL_LEN as u64));
    assert_eq!(r.bytes().await.unwrap(), f.wheel);

    let r = client.head(server.url(&f.wheel_url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("content-length").and_then(|v| v.to_str().ok()),
        Some(WHEEL_LEN.to_string().as_str())
    );

    let addr = server.addr;
    server.stop().await;
    assert!(TcpStream::connect(addr).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn oversized_headers_are_refused_at_the_connection() {
    let f = Fixture::memory().await;
    let server = Running::start(f.state.clone(), None).await;
    let big = "x".repeat(64 * 1024);
    // Either a 431 or a closed connection: refused just the same.
    let refused = client()
        .get(server.url("/healthz"))
        .header("x-padding", big)
        .send()
        .await;
    if let Ok(r) = refused {
        assert_eq!(r.status(), 431);
    }
    // Headers within the limit are fine.
    let r = client()
        .get(server.url("/healthz"))
        .header("x-padding", "x".repeat(4000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let f = Fixture::memory().await;
    let limits = ServerLimits {
        max_connections: 1,
        max_connections_per_ip: 0,
        ..ServerLimits::default()
    };
    let state = AppState::new(f.store.clone(), limits);
    let server = Running::start(state, None).await;

    // An idle connection takes the only slot.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 12];
    idle.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");

    let url = server.url("/healthz");
    let waiting = tokio::spawn(async move { client().get(url).send().await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a second connection is not served while the slot is taken"
    );

    drop(idle);
    let status = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn serves_over_tls() {
    install_crypto_provider();
    let f = Fixture::memory().await;
    let dir = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = generated.cert.pem();
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, &cert_pem).unwrap();
    std::fs::write(&files.key, generated.signing_key.serialize_pem()).unwrap();

    let server = Running::start(f.state.clone(), Some(files)).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap()])
        .resolve("localhost", server.addr)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", server.addr.port());

    let r = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN negotiates HTTP/2");
    assert_eq!(r.text().await.unwrap(), "ok\n");

    let r = client
        .get(format!("{base}{}", f.wheel_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), f.wheel);

    // A client that does not trust the certificate cannot talk to it.
    let untrusting = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([])
        .resolve("localhost", server.addr)
        .build()
        .unwrap();
    assert!(untrusting.get(format!("{base}/healthz")).send().await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn bad_tls_files_are_reported() {
    let f = Fixture::memory().await;
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let missing = TlsFiles {
        cert: dir.path().join("nope.pem"),
        key: dir.path().join("nope.key"),
    };
    let err = serve(listener, f.state.clone(), Some(missing), async {})
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::TlsRead { .. }), "{err}");
    assert!(err.to_string().contains("nope.pem"));

    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let empty = TlsFiles {
        cert: dir.path().join("empty.pem"),
        key: dir.path().join("empty.pem"),
    };
    let err = serve(listener, f.state.clone(), Some(empty), async {})
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::TlsPem { .. }), "{err}");
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed() {
    let f = Fixture::memory().await;
    let limits = ServerLimits {
        request_timeout_secs: 1,
        ..ServerLimits::default()
    };
    let server = Running::start(AppState::new(f.store.clone(), limits), None).await;

    // Never finishes its headers.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(
        read.is_ok(),
        "a connection that never finishes its headers is closed"
    );

    // Idle after one request.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "an idle keep-alive connection is closed");
    assert!(rest.starts_with(b"HTTP/1.1 200"));
    server.stop().await;
}
