//! Middleware: metrics and access log, request limits, time-to-headers timeout.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

use crate::metrics::Route;
use crate::{AppState, plain};

/// Longest path written to the access log.
const MAX_LOGGED_PATH: usize = 256;

/// Records metrics and writes one access-log line per request, when the response body has
/// been sent (or dropped), so `bytes` and `duration_ms` cover the whole response.
pub(crate) async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let path = truncate(request.uri().path());
    let route = Route::classify(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    let (parts, body) = response.into_parts();
    // hyper stops polling a body once `Content-Length` bytes went out, so its end is never
    // seen as such: a body that delivered all the bytes it announced is complete.
    let announced = if method == Method::HEAD {
        None
    } else {
        parts
            .headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let body = ObservedBody {
        inner: body,
        announced,
        record: Some(Record {
            state,
            route,
            method,
            path,
            status,
            start,
            bytes: 0,
            ended: false,
        }),
    };
    Response::from_parts(parts, Body::new(body))
}

fn truncate(path: &str) -> String {
    if path.len() <= MAX_LOGGED_PATH {
        return path.to_owned();
    }
    let mut end = MAX_LOGGED_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", path.get(..end).unwrap_or_default())
}

struct Record {
    state: AppState,
    route: Route,
    method: Method,
    path: String,
    status: StatusCode,
    start: Instant,
    bytes: u64,
    ended: bool,
}

impl Record {
    fn finish(self) {
        let duration = self.start.elapsed();
        self.state
            .metrics()
            .record(self.route, self.status.as_u16(), duration, self.bytes);
        tracing::info!(
            method = %self.method,
            path = %self.path,
            status = self.status.as_u16(),
            bytes = self.bytes,
            duration_ms = duration.as_secs_f64() * 1000.0,
            complete = self.ended,
            "request"
        );
    }
}

/// A response body that counts what it yields and reports when it ends (all announced bytes
/// sent, or the end of the stream) or is dropped.
struct ObservedBody {
    inner: Body,
    /// `Content-Length`, when the response has one.
    announced: Option<u64>,
    record: Option<Record>,
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(record)) = (frame.data_ref(), this.record.as_mut()) {
                    record.bytes += data.len() as u64;
                    if this.announced == Some(record.bytes)
                        && let Some(mut record) = this.record.take()
                    {
                        record.ended = true;
                        record.finish();
                    }
                }
            }
            Poll::Ready(None) => {
                if let Some(mut record) = this.record.take() {
                    record.ended = true;
                    record.finish();
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.ended = http_body::Body::is_end_stream(&self.inner);
            record.finish();
        }
    }
}

/// Rejects over-long request targets (414) and oversized headers (431) before any work.
pub(crate) async fn limits(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limits = state.limits();
    let target_len = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len > limits.max_path_len {
        return plain(StatusCode::URI_TOO_LONG, "request target too long\n");
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > limits.max_header_bytes {
        return plain(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large\n",
        );
    }
    next.run(request).await
}

/// Answers 503 when the response headers are not ready within the request timeout. Streaming
/// the body afterwards is not limited (a large file on a slow link takes what it takes).
pub(crate) async fn timeout(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = Duration::from_secs(state.limits().request_timeout_secs);
    let path = truncate(request.uri().path());
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(path = %path, timeout_secs = limit.as_secs(), "request timed out before its response headers");
            plain(StatusCode::SERVICE_UNAVAILABLE, "request timed out\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_long_paths_on_char_boundaries() {
        assert_eq!(truncate("/simple/"), "/simple/");
        let long = format!("/{}", "é".repeat(300));
        let t = truncate(&long);
        assert!(t.len() <= MAX_LOGGED_PATH + '…'.len_utf8());
        assert!(t.ends_with('…'));
    }
}
