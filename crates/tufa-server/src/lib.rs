//! `tufa-server`: the HTTP front end over the published tree.
//!
//! Owns the Simple Repository API as clients see it (`/simple/`, `/simple/<project>/`, with
//! PEP 691 content negotiation), distribution files and their PEP 658 metadata under
//! `/files/…`, the TUF metadata under `/tuf/`, the hash-prefixed target paths TUF clients
//! request with consistent snapshots, and the operational endpoints `/healthz`, `/readyz` and
//! `/metrics`. It reads nothing but the object store: the project manifests, blobs and TUF
//! metadata that the writer publishes.
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
//!   A blob truncated on disk is caught the same way. On a local store each chunk is read and
//!   hashed in one blocking call, and the last one is checked before it is released (the
//!   `local` module). With [`FileVerification::OncePerFile`] (opt-in), a local file this
//!   process has hashed correctly is streamed again unhashed while its identity on disk
//!   (device, inode, size, mtime, ctime) is unchanged.
//! - **Range requests** are cut (from a fresh read whose length is checked) only from a blob
//!   whose whole content this process has hashed against its digest, in the same stored
//!   version (length and modification time). A digest is hashed once and remembered (blobs are
//!   immutable; a bounded set, see the `verify` module); a complete download, hashed while
//!   streaming, marks its digest verified too. Concurrent verifications are bounded
//!   ([`ServerLimits::max_concurrent_verifications`]) and single-flight per digest, and a
//!   verification stops between chunks once no request waits for it. A mismatch is never
//!   remembered: every range request on a corrupt blob is refused. Hashes run are counted in
//!   `tufa_blob_verifications_total`.
//! - **HEAD** requests and `304 Not Modified` answers send no content, so they verify nothing.
//! - **TUF metadata** (`/tuf/…`) is not content-addressed and is served as stored: it verifies
//!   itself, by signatures the client checks against the root it trusts (see the `tuf` module).
//!
//! # TUF targets (consistent snapshots)
//!
//! A TUF client fetches a target `dir/<name>` as `dir/<sha256>.<name>`, the sha256 taken from
//! signed metadata:
//!
//! - `/simple/<project>/<sha256>.index.html` and `…/<sha256>.index.json`: the page blob with
//!   that sha256, whatever the current manifest says, so a page stays answerable after a newer
//!   one is published, as long as its blob is stored. Always the exact bytes (never a
//!   `Content-Encoding`: the client hashes what it receives), `immutable`. Verified like every
//!   page: small blobs (up to an eighth of the page cache) whole and cached, larger ones
//!   streamed with the last chunk held back. The project name must be normalised (no
//!   redirect: a 404). Besides the project's current pages, only a stored blob that is a page of
//!   that project in the format asked for (small enough to verify whole) is answered, so no
//!   other blob can be fetched under a page's name; the response carries a sandboxing
//!   `Content-Security-Policy` and `nosniff` all the same.
//! - `/files/<h0h1>/<h2h3>/<rest>/<sha256>.<filename>`: the same file as without the prefix,
//!   but only when the prefix is the digest the path names (else 404).
//!
//! # Only published files
//!
//! `/files/…` (plain or hash-prefixed, the file or its `.metadata`) answers only a
//! (digest, filename) pair that a published project's current JSON page lists (see the
//! `published` module): not a stored blob under another name, not a file a later publish
//! removed, not a file of a quarantined project. Anything else is a 404.
//! - `/files/…/<sha256>.<filename>.metadata`: the PEP 658 metadata, only when the prefix is the
//!   digest the project's manifest lists for that wheel's METADATA (else 404).
//!
//! # Limits
//!
//! [`ServerLimits`] bounds what a client can make the server hold: request-target length
//! (414), header bytes (hyper's HTTP/1 read buffer and HTTP/2 header-list limit at the
//! connection, then 431 from a middleware), time to receive request headers (the connection is
//! closed; this also ends idle keep-alive connections), time to produce response headers (503;
//! a range request's full verification counts), concurrent connections (the accept loop waits
//! for a free slot) and connections per client address (closed at once beyond
//! [`ServerLimits::max_connections_per_ip`]). A watchdog on every socket closes (and aborts, so
//! the kernel drops what is queued) a connection whose client sends no first byte in time,
//! leaves it idle, does not read a pending response for
//! [`ServerLimits::send_idle_timeout_secs`] or reads it slower than
//! [`ServerLimits::min_send_rate_bytes_per_sec`]; closes are counted in
//! `tufa_connections_closed_total{reason}`. Paths cannot traverse anything: the
//! router maps only fixed route shapes, project names go through
//! [`ProjectName::new`](tufa_pypi::ProjectName::new) and file paths through
//! [`tufa_tree::parse_file_path`], so a store key is only ever built from a digest or a
//! normalised name.

mod cache;
mod conn;
mod current;
mod error;
mod files;
mod local;
mod metrics;
mod middleware;
pub mod negotiate;
mod pages;
mod published;
mod serve;
mod tuf;
mod verify;

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
use crate::current::Current;
use crate::metrics::Metrics;
use crate::published::PublishedFiles;
use crate::verify::Verifier;

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
    /// Most connections one client address (an IPv4 address, an IPv6 /64) may hold at once;
    /// further connections from it are closed as soon as they are accepted, so one client
    /// cannot take every slot. Must be below `max_connections`; 0 disables the rule. Default 64.
    pub max_connections_per_ip: usize,
    /// A connection whose response cannot be written (the client reads nothing) for this many
    /// seconds is closed. Default 30.
    pub send_idle_timeout_secs: u64,
    /// A connection whose client reads a pending response slower than this, on average over
    /// `send_idle_timeout_secs`, is closed. 0 disables the rule. Default 1024 (bytes/s).
    pub min_send_rate_bytes_per_sec: u64,
    /// A connection on which no byte is read or written for this many seconds is closed
    /// (a silent new connection, an idle HTTP/2 connection, an HTTP/2 stream the client stopped
    /// granting flow-control window to). Idle HTTP/1 keep-alive connections are closed sooner,
    /// after `request_timeout_secs`. Default 60.
    pub idle_timeout_secs: u64,
    /// Whole-blob verifications (before a range is served) run at once; more wait. Default 2.
    pub max_concurrent_verifications: usize,
    /// Bytes of verified small blobs (pages, METADATA) kept in memory. Default 64 MiB.
    pub page_cache_bytes: u64,
    /// `/readyz` fails when the published TUF timestamp expires within this many seconds (or
    /// has expired), so a load balancer stops sending clients to a replica whose metadata they
    /// would refuse. Ignored while no TUF metadata is published. Default 3600.
    pub readiness_min_timestamp_validity_secs: u64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_path_len: 1024,
            max_header_bytes: 16 * 1024,
            request_timeout_secs: 30,
            max_connections: 1024,
            max_connections_per_ip: 64,
            send_idle_timeout_secs: 30,
            min_send_rate_bytes_per_sec: 1024,
            idle_timeout_secs: 60,
            max_concurrent_verifications: 2,
            page_cache_bytes: 64 * 1024 * 1024,
            readiness_min_timestamp_validity_secs: 3600,
        }
    }
}

impl ServerLimits {
    /// Checks that the limits fit together; [`serve`] refuses to start otherwise.
    pub fn validate(&self) -> Result<(), ServerError> {
        let invalid = |reason: String| Err(ServerError::InvalidLimits(reason));
        if self.max_connections_per_ip != 0 && self.max_connections_per_ip >= self.max_connections {
            return invalid(format!(
                "max_connections_per_ip ({}) must be below max_connections ({}), or 0 to disable it",
                self.max_connections_per_ip, self.max_connections
            ));
        }
        if self.send_idle_timeout_secs == 0 {
            return invalid("send_idle_timeout_secs must be at least 1".to_owned());
        }
        if self.idle_timeout_secs == 0 {
            return invalid("idle_timeout_secs must be at least 1".to_owned());
        }
        if self.max_concurrent_verifications == 0 {
            return invalid("max_concurrent_verifications must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// How often a distribution file on the local disk is hashed when it is downloaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileVerification {
    /// Every download is hashed while it streams; the last chunk is released only once the
    /// digest matched (the default).
    #[default]
    EveryRequest,
    /// A file this process has already hashed correctly is streamed again without hashing
    /// while its identity on disk (device, inode, size, mtime, ctime) is unchanged; any other
    /// file is hashed as in `every-request`. Stores other than the local disk always hash.
    /// It does not catch a change below the filesystem that leaves the identity as it was (a
    /// bit flip on the disk, a write to the block device): see the `local` module.
    OncePerFile,
}

/// How a reader answers, besides its [`ServerLimits`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderOptions {
    /// How often the writer's publish pointer is checked (zero: read the store on every
    /// request; see [`AppState::with_poll_interval`]).
    pub poll_interval: std::time::Duration,
    pub file_verification: FileVerification,
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
    verifier: Verifier,
    published: PublishedFiles,
    current: Current,
    file_verification: FileVerification,
}

impl AppState {
    /// A state that reads the store on every request (no poll interval): what a reader on
    /// the writer's own disk, and tests that publish between requests, want.
    pub fn new(store: BlobStore, limits: ServerLimits) -> Self {
        Self::with_poll_interval(store, limits, std::time::Duration::ZERO)
    }

    /// A state that answers from memory between publishes, checking the writer's publish
    /// pointer at most once per `poll` (see the `current` module); zero reads the store on
    /// every request.
    pub fn with_poll_interval(store: BlobStore, limits: ServerLimits, poll: std::time::Duration) -> Self {
        Self::with_options(
            store,
            limits,
            ReaderOptions {
                poll_interval: poll,
                ..ReaderOptions::default()
            },
        )
    }

    /// A state with every reader option given.
    pub fn with_options(store: BlobStore, limits: ServerLimits, options: ReaderOptions) -> Self {
        let cache = PageCache::new(limits.page_cache_bytes);
        let verifier = Verifier::new(limits.max_concurrent_verifications);
        let published = PublishedFiles::new(limits.page_cache_bytes);
        Self {
            inner: Arc::new(Inner {
                store,
                limits,
                cache,
                metrics: Metrics::default(),
                verifier,
                published,
                current: Current::new(options.poll_interval),
                file_verification: options.file_verification,
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

    pub(crate) fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }

    pub(crate) fn published(&self) -> &PublishedFiles {
        &self.inner.published
    }

    /// The published manifest of `name` (from the current generation, or the store).
    pub(crate) async fn manifest(
        &self,
        name: &tufa_pypi::ProjectName,
    ) -> Result<Option<Arc<tufa_tree::ProjectManifest>>, crate::error::ApiError> {
        self.inner.current.manifest(&self.inner.store, name).await
    }

    pub(crate) fn current(&self) -> &Current {
        &self.inner.current
    }

    pub(crate) fn file_verification(&self) -> FileVerification {
        self.inner.file_verification
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
        .route("/simple/{project}/{page}", get(pages::hashed_page))
        .route("/files/{*rest}", get(files::file))
        .route("/tuf/{file}", get(tuf::metadata_file))
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
        Err(NotReady { body, reason }) => {
            tracing::warn!(reason = %reason, "not ready");
            plain(StatusCode::SERVICE_UNAVAILABLE, body)
        }
    }
}

/// Why `/readyz` fails: a short fixed body for the client, and the detail for the log.
#[derive(Debug)]
struct NotReady {
    body: &'static str,
    reason: String,
}

/// Everything `/readyz` checks:
/// - the object store answers a listing of the published manifests (an empty tree is fine);
/// - when TUF metadata is published (`timestamp.json` exists): it parses, and it stays valid
///   for at least [`ServerLimits::readiness_min_timestamp_validity_secs`]. A mirror that
///   publishes unsigned has no timestamp and is ready without one.
async fn readiness_checks(state: &AppState) -> Result<(), NotReady> {
    let mut listing = state.store().list_named(tufa_tree::MANIFEST_DIR);
    if let Some(Err(e)) = listing.next().await {
        return Err(NotReady {
            body: "not ready\n",
            reason: format!("object store listing failed: {e}"),
        });
    }
    let expires = match tuf::timestamp_expiry(state.store()).await {
        Ok(None) => return Ok(()),
        Ok(Some(expires)) => expires,
        Err(e) => {
            return Err(NotReady {
                body: "timestamp unreadable\n",
                reason: format!("published TUF timestamp unreadable: {e}"),
            });
        }
    };
    let left = tuf::seconds_until(expires, jiff::Timestamp::now());
    let min = i64::try_from(state.limits().readiness_min_timestamp_validity_secs).unwrap_or(i64::MAX);
    if left <= 0 {
        return Err(NotReady {
            body: "timestamp expired\n",
            reason: format!("published TUF timestamp expired at {expires} ({} s ago)", -left),
        });
    }
    if left < min {
        return Err(NotReady {
            body: "timestamp expires soon\n",
            reason: format!(
                "published TUF timestamp expires at {expires}, in {left} s (< {min} s); is `tufa refresh` running?"
            ),
        });
    }
    Ok(())
}

/// `/metrics`: the counters, plus `tufa_tuf_timestamp_expires_in_seconds`, read from the store
/// at scrape time (omitted while no timestamp is published, or when it cannot be read: the
/// failure is logged).
async fn metrics_text(State(state): State<AppState>) -> Response {
    let mut text = state.metrics().render();
    metrics::render_verifications(&mut text, state.verifier().runs());
    match tuf::timestamp_expiry(state.store()).await {
        Ok(Some(expires)) => {
            metrics::render_timestamp_gauge(&mut text, tuf::seconds_until(expires, jiff::Timestamp::now()));
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the published TUF timestamp for /metrics"),
    }
    match state.store().get_named(tufa_policy::Report::KEY).await {
        Ok(Some(bytes)) => match serde_json::from_slice::<tufa_policy::Report>(&bytes) {
            Ok(report) => metrics::render_policy_gauge(&mut text, &report),
            Err(e) => tracing::warn!(error = %e, "the policy report in the store cannot be read"),
        },
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the policy report for /metrics"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
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
