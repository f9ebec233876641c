//! `/healthz`, `/readyz`, `/metrics`, and the limits' configuration.

use axum::http::StatusCode;
use tufa_server::ServerLimits;

use crate::fixture::Fixture;
use crate::get;

#[tokio::test]
async fn health_and_readiness() {
    let f = Fixture::local().await;
    let a = get(&f.app, "/healthz", &[]).await;
    assert_eq!((a.status, a.text().as_str()), (StatusCode::OK, "ok\n"));
    let a = get(&f.app, "/readyz", &[]).await;
    assert_eq!(a.status, StatusCode::OK);

    // An empty store is ready too (nothing published yet).
    let empty = tufa_server::router(tufa_server::AppState::new(
        tufa_store::BlobStore::memory(),
        ServerLimits::default(),
    ));
    assert_eq!(get(&empty, "/readyz", &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests() {
    let f = Fixture::memory().await;
    get(&f.app, "/simple/demo/", &[]).await;
    get(&f.app, "/simple/demo/", &[]).await;
    get(&f.app, "/simple/nope/", &[]).await;
    get(&f.app, "/simple/", &[]).await;
    get(&f.app, &f.wheel_url(), &[]).await;
    get(&f.app, &format!("{}.metadata", f.wheel_url()), &[]).await;
    get(&f.app, "/healthz", &[]).await;
    get(&f.app, "/nowhere", &[]).await;
    let a = get(&f.app, "/metrics", &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = a.text();
    for line in [
        "tufa_http_requests_total{route=\"simple_project\",status=\"200\"} 2\n",
        "tufa_http_requests_total{route=\"simple_project\",status=\"404\"} 1\n",
        "tufa_http_requests_total{route=\"simple_root\",status=\"200\"} 1\n",
        "tufa_http_requests_total{route=\"files\",status=\"200\"} 1\n",
        "tufa_http_requests_total{route=\"metadata\",status=\"200\"} 1\n",
        "tufa_http_requests_total{route=\"health\",status=\"200\"} 1\n",
        "tufa_http_requests_total{route=\"other\",status=\"404\"} 1\n",
        "tufa_http_request_duration_seconds_count{route=\"simple_project\"} 3\n",
        "tufa_http_request_duration_seconds_bucket{route=\"files\",le=\"+Inf\"} 1\n",
        "tufa_blob_verification_failures_total 0\n",
        "# TYPE tufa_http_request_duration_seconds histogram\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let files_bytes = format!(
        "tufa_http_response_bytes_total{{route=\"files\"}} {}\n",
        f.wheel.len()
    );
    assert!(text.contains(&files_bytes), "{text}");
    let pages_bytes = format!(
        "tufa_http_response_bytes_total{{route=\"simple_project\"}} {}\n",
        2 * f.html.len() + "not found\n".len()
    );
    assert!(text.contains(&pages_bytes), "{text}");
}

#[test]
fn limits_defaults_and_config() {
    let d = ServerLimits::default();
    assert_eq!(
        (
            d.max_path_len,
            d.max_header_bytes,
            d.request_timeout_secs,
            d.max_connections,
            d.page_cache_bytes
        ),
        (1024, 16 * 1024, 30, 1024, 64 * 1024 * 1024)
    );
    let l: ServerLimits = toml::from_str("max_connections = 10\n").unwrap();
    assert_eq!(
        l,
        ServerLimits {
            max_connections: 10,
            ..ServerLimits::default()
        }
    );
    assert!(toml::from_str::<ServerLimits>("max_conections = 10\n").is_err());
}

/// Captures formatted log output.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn one_access_log_line_per_request() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let f = Fixture::memory().await;
    get(&f.app, "/healthz", &[]).await;
    get(&f.app, &f.wheel_url(), &[]).await;
    get(&f.app, "/simple/nope/", &[]).await;

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(" request ")).collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(
        lines[0].contains("method=GET") && lines[0].contains("path=/healthz"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("status=200") && lines[0].contains("bytes=3"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("duration_ms="), "{}", lines[0]);
    assert!(
        lines[1].contains(&format!("bytes={}", f.wheel.len())),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains("status=404"), "{}", lines[2]);
}
