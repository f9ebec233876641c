//! `tufa-server`: the HTTP front end over the published tree.
//!
//! Owns the Simple Repository API as clients see it (`/simple/`, `/simple/<project>/`, with
//! PEP 691 content negotiation), distribution files and their PEP 658 metadata under
//! `/files/…`, and the operational endpoints `/healthz`, `/readyz` and `/metrics`. It reads
//! nothing but the object store: the project manifests and blobs that `tufa-tree` lays out.
//! It keeps no state of its own beyond an in-memory cache of verified small blobs, so any
//! number of replicas can serve the same tree behind a load balancer or a CDN.
//!
//! Must not know about: the sync, the index, signing keys (it does not depend on
//! `tufa-sync`, `tufa-index` or any signing crate).
//!
//! # Only verified bytes are served complete
//!
//! Every blob is stored under its sha256. The server never sends bytes that differ from that
//! address as a successful, complete response:
//!
//! - **Pages and METADATA** (small) are read whole and re-hashed
//!   ([`BlobStore::get_verified`](tufa_store::BlobStore::get_verified)) before the response
//!   starts. Verified bytes are kept in a cache bounded by
//!   [`ServerLimits::page_cache_bytes`], keyed by digest: content-addressed, so an entry is
//!   valid forever and eviction is only about memory. A corrupt blob gives a 500 with a short
//!   body, none of its bytes, an `error!` log naming the digest, and a bump of
//!   `tufa_blob_verification_failures_total`.
//! - **Files** (possibly gigabytes) are streamed from the store while being hashed, and the
//!   **last chunk is held back** until the stream has ended and both the digest and the length
//!   matched. On a mismatch the body ends with an error instead, hyper aborts the connection,
//!   and the client has received fewer bytes than the `Content-Length` it was promised: it can
//!   never mistake the bad content for a complete download (pip and uv then fail or retry).
//!   A blob truncated on disk is caught the same way.
//! - **Range requests** first re-hash the whole blob (streaming, never buffered in full), then
//!   cut the range from a fresh read, whose length is checked. The cost: every range request
//!   reads the whole blob once more than the range itself. Range requests are rare for a
//!   package index (clients fetch PEP 658 metadata instead of ranges of wheels), so safety
//!   wins over speed here.
//! - **HEAD** requests and `304 Not Modified` answers send no content, so they verify nothing.
//!
//! # Limits
//!
//! [`ServerLimits`] bounds what a client can make the server hold: request-target length
//! (414), header bytes (hyper's HTTP/1 read buffer and HTTP/2 header-list limit at the
//! connection, then 431 from a middleware), time to receive request headers (the connection is
//! closed; this also ends idle keep-alive connections), time to produce response headers (503;
//! streaming a body is not timed, but a range request's full verification is), and concurrent
//! connections (the accept loop waits for a free slot). Paths cannot traverse anything: the
//! router maps only fixed route shapes, project names go through
//! [`ProjectName::new`](tufa_pypi::ProjectName::new) and file paths through
//! [`tufa_tree::parse_file_path`], so a store key is only ever built from a digest or a
//! normalised name.

mod cache;
mod error;
mod files;
mod metrics;
mod middleware;
mod negotiate;
mod pages;
mod serve;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt as _;
use serde::Deserialize;
use tufa_store::BlobStore;

pub use error::ServerError;
pub use serve::{SHUTDOWN_GRACE, TlsFiles, serve, shutdown_signal};

use crate::cache::PageCache;
use crate::metrics::Metrics;

/// Limits on what one client can make the server do. Every field has a default; in a config
/// file, unknown fields are an error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerLimits {
    /// Longest request target (path plus query) accepted; longer ones get 414. Default 1024.
    pub max_path_len: usize,
    /// Most header bytes accepted in one request. Default 16 KiB. (HTTP/1's read buffer cannot
    /// be smaller than 8 KiB, so values below that act as 8 KiB at the connection level.)
    pub max_header_bytes: usize,
    /// Seconds allowed to read a request's headers and to produce the response headers;
    /// streaming a response body is not limited. Default 30.
    pub request_timeout_secs: u64,
    /// Most connections served at once; further clients wait in the listen backlog. Default
    /// 1024.
    pub max_connections: usize,
    /// Bytes of verified small blobs (pages, METADATA) kept in memory. Default 64 MiB.
    pub page_cache_bytes: u64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_path_len: 1024,
            max_header_bytes: 16 * 1024,
            request_timeout_secs: 30,
            max_connections: 1024,
            page_cache_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What every request handler shares: the store, the limits, the cache of verified pages and
/// the metrics. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: BlobStore,
    limits: ServerLimits,
    cache: PageCache,
    metrics: Metrics,
}

impl AppState {
    pub fn new(store: BlobStore, limits: ServerLimits) -> Self {
        let cache = PageCache::new(limits.page_cache_bytes);
        Self {
            inner: Arc::new(Inner {
                store,
                limits,
                cache,
                metrics: Metrics::default(),
            }),
        }
    }

    /// The limits this state was built with.
    pub fn limits(&self) -> &ServerLimits {
        &self.inner.limits
    }

    pub(crate) fn store(&self) -> &BlobStore {
        &self.inner.store
    }

    pub(crate) fn cache(&self) -> &PageCache {
        &self.inner.cache
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

/// All routes with their middleware: metrics and access log (outermost), request-target and
/// header limits, and the time-to-headers timeout.
pub fn router(state: AppState) -> Router {
    use axum::middleware::from_fn_with_state;
    Router::new()
        .route("/simple/", get(pages::root))
        .route("/simple", get(pages::root_without_slash))
        .route("/simple/{project}/", get(pages::project))
        .route("/simple/{project}", get(pages::project_without_slash))
        .route("/files/{*rest}", get(files::file))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), middleware::timeout))
        .layer(from_fn_with_state(state.clone(), middleware::limits))
        .layer(from_fn_with_state(state.clone(), middleware::observe))
        .with_state(state)
}

async fn not_found() -> Response {
    error::ApiError::NotFound.into_response()
}

async fn healthz() -> Response {
    plain(StatusCode::OK, "ok\n")
}

async fn readyz(State(state): State<AppState>) -> Response {
    match readiness_checks(&state).await {
        Ok(()) => plain(StatusCode::OK, "ready\n"),
        Err(reason) => {
            tracing::warn!(reason = %reason, "not ready");
            plain(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
        }
    }
}

/// Everything `/readyz` checks; `Err` carries the reason for the log (never sent to clients).
///
/// Today: the object store answers a listing of the published manifests (an empty tree is
/// fine). The TUF checks (timestamp present and not expired) go here once the server serves
/// `/tuf/`.
async fn readiness_checks(state: &AppState) -> Result<(), String> {
    let mut listing = state.store().list_named(tufa_tree::MANIFEST_DIR);
    match listing.next().await {
        None | Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(format!("object store listing failed: {e}")),
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics().render(),
    )
        .into_response()
}

/// A short plain-text response.
pub(crate) fn plain(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}
