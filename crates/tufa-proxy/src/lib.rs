//! `tufa-proxy`: a Simple API on the developer's machine (or CI runner) in front of a tufa
//! mirror, which hands pip and uv only what TUF verified.
//!
//! pip and uv do not verify TUF metadata. The proxy does it for them: every project page,
//! `.metadata` file and distribution they ask for is looked up as a TUF target through
//! [`tufa_client::Updater`] (root chain, timestamp, snapshot, targets, the hashed bin), fetched
//! from the mirror, and answered only once its length and hashes match the signed target.
//! The bytes answered are the signed target's bytes. A refusal answers an error whose status
//! line, body and log name the attack class (`rollback`, `freeze`, `bad-signature`,
//! `hash-mismatch`, `target-not-signed`), so pip's own error message shows it.
//!
//! URL mapping (the mirror's TUF target paths, docs/ARCHITECTURE.md): `/simple/<project>/`
//! is the target `simple/<project>/index.html` or `index.json` by content negotiation
//! (PEP 691, the same rules as `tufa serve`); `/files/…` and `/files/….metadata` are the
//! targets of the same path. Page links are relative, so files are asked of the proxy too.
//!
//! Cache (`--cache DIR`): `DIR/metadata` holds the client's trusted metadata, `DIR/targets`
//! every verified target by sha256. A target is re-hashed when read from the cache, and
//! looked up in fresh metadata first, so the cache never answers something the current
//! metadata does not sign. When the mirror cannot be reached (connection refused, time-out,
//! an HTTP 5xx), the cached metadata is used as long as it verifies and has not expired:
//! what was installed once installs offline. A verification failure never falls back.
//!
//! Must not know about: the mirror's store, publishing, keys.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::Mutex;
use tufa_client::{ClientError, Http, HttpOptions, Updater, UpdaterConfig, write_atomic};
use tufa_pypi::ProjectName;
use tufa_server::negotiate::{Format, choose};
use tufa_tuf::{AttackClass, TargetFile};
use url::Url;

/// How the proxy is set up.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// The mirror's server root: metadata under `<mirror>/tuf/`, targets under `<mirror>/`.
    pub mirror: Url,
    /// The mirror's trusted root (its first `1.root.json`, distributed out of band).
    pub trusted_root: PathBuf,
    /// Where verified metadata and targets are kept.
    pub cache: PathBuf,
    /// How long one verified view of the mirror is used before the timestamp is fetched
    /// again. New releases on the mirror show up within this time.
    pub refresh_interval: Duration,
    pub http: HttpOptions,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0}")]
    Setup(String),
    #[error("`{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// The proxy's shared state.
#[derive(Debug, Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    mirror: Url,
    metadata_url: Url,
    metadata_dir: PathBuf,
    targets_dir: PathBuf,
    refresh_interval: Duration,
    http: Http,
    session: Mutex<Option<Session>>,
}

/// One verified view of the mirror, used for `refresh_interval`.
#[derive(Debug)]
struct Session {
    updater: Updater,
    started: Instant,
}

/// A target the proxy answers: its verified bytes.
enum Verified {
    /// Small targets (and targets without a sha256, which are not cached), in memory.
    Bytes(Bytes),
    /// A verified file of the cache, streamed.
    File { file: tokio::fs::File, len: u64 },
}

/// Targets up to this size are answered from memory; larger ones are streamed from the cache.
const IN_MEMORY_MAX: u64 = 1 << 20;

impl Proxy {
    /// Prepares the cache: `metadata/root.json` is the trusted root when the cache has none
    /// yet (a cache that has one keeps its newer, verified root; a different first root is
    /// refused so one cache never mixes two mirrors).
    pub fn new(options: ProxyOptions) -> Result<Self, ProxyError> {
        let metadata_dir = options.cache.join("metadata");
        let targets_dir = options.cache.join("targets");
        for dir in [&metadata_dir, &targets_dir] {
            std::fs::create_dir_all(dir).map_err(|source| ProxyError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        let anchor = std::fs::read(&options.trusted_root).map_err(|source| ProxyError::Io {
            path: options.trusted_root.clone(),
            source,
        })?;
        // The anchor must be a root signed by its own threshold: a typo in the path should
        // fail here, not on the first install.
        tufa_tuf::verify_trusted_root(&options.trusted_root.display().to_string(), &anchor)
            .map_err(|e| ProxyError::Setup(format!("the trusted root is not usable: {e}")))?;
        let cached_root = metadata_dir.join("root.json");
        let anchor_file = metadata_dir.join("anchor.json");
        match std::fs::read(&anchor_file) {
            Ok(previous) if previous != anchor => {
                return Err(ProxyError::Setup(format!(
                    "the cache `{}` belongs to another trusted root; use another --cache directory",
                    options.cache.display()
                )));
            }
            Ok(_) => {}
            Err(_) => {
                write_atomic(&cached_root, &anchor)?;
                write_atomic(&anchor_file, &anchor)?;
            }
        }
        let mirror = tufa_client::base_url(&options.mirror);
        let metadata_url = mirror
            .join("tuf/")
            .map_err(|e| ProxyError::Setup(format!("bad mirror URL `{}`: {e}", options.mirror)))?;
        Ok(Self {
            inner: Arc::new(Inner {
                mirror,
                metadata_url,
                metadata_dir,
                targets_dir,
                refresh_interval: options.refresh_interval,
                http: Http::new(&options.http)?,
                session: Mutex::new(None),
            }),
        })
    }

    /// The axum application.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok\n" }))
            .fallback(handle)
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Looks `path` up as a TUF target and returns its verified bytes, from the cache or the
    /// mirror.
    async fn target(&self, path: &str) -> Result<Verified, ClientError> {
        let inner = &self.inner;
        let (info, url) = {
            let mut guard = inner.session.lock().await;
            if guard
                .as_ref()
                .is_none_or(|s| s.started.elapsed() >= inner.refresh_interval)
            {
                // A failed refresh leaves no session: the next request tries again.
                *guard = None;
                *guard = Some(self.new_session().await?);
            }
            let Some(session) = guard.as_mut() else {
                return Err(ClientError::Setup("no verified session".into()));
            };
            let info = session.updater.target_info(path).await?;
            let url = session.updater.target_url(&inner.mirror, path, &info)?;
            (info, url)
        };
        let Some(file) = self.cache_file(&info) else {
            // No sha256 to name it by: not cached, fetched into memory (bounded by its length).
            let bytes = inner.http.get_target(&url, path, &info).await?;
            return Ok(Verified::Bytes(bytes));
        };
        if info.length <= IN_MEMORY_MAX {
            // Small: read once and checked against the metadata just looked up; fetched into
            // the cache first when missing or different.
            if let Ok(bytes) = tokio::fs::read(&file).await
                && info.verify(path, &bytes).is_ok()
            {
                tracing::debug!(target = path, "answered from the verified cache");
                return Ok(Verified::Bytes(bytes.into()));
            }
            inner.http.download_target_to(&url, path, &info, &file).await?;
            let bytes = tokio::fs::read(&file).await.map_err(|source| ClientError::Io {
                path: file.clone(),
                source,
            })?;
            // Read again after the download: answer only bytes that verify.
            info.verify(path, &bytes)?;
            return Ok(Verified::Bytes(bytes.into()));
        }
        // Large: the cache is re-checked in pieces, then streamed.
        let (check_file, check_path, check_info) = (file.clone(), path.to_owned(), info.clone());
        let cached = tokio::task::spawn_blocking(move || {
            tufa_client::file_matches(&check_file, &check_path, &check_info)
        })
        .await
        .map_err(|e| ClientError::Setup(format!("cache check failed: {e}")))??;
        if cached {
            tracing::debug!(target = path, "answered from the verified cache");
        } else {
            // Streamed to a temporary file, checked as it arrives, renamed into the cache.
            inner.http.download_target_to(&url, path, &info, &file).await?;
        }
        let handle = tokio::fs::File::open(&file)
            .await
            .map_err(|source| ClientError::Io {
                path: file.clone(),
                source,
            })?;
        Ok(Verified::File {
            file: handle,
            len: info.length,
        })
    }

    /// A new verified view: refresh from the mirror, or, when the mirror cannot be reached,
    /// the cached view if it still verifies.
    async fn new_session(&self) -> Result<Session, ClientError> {
        let inner = &self.inner;
        let updater = || {
            Updater::new(
                &inner.metadata_dir,
                &inner.metadata_url,
                inner.http.clone(),
                UpdaterConfig::default(),
            )
        };
        let mut online = updater()?;
        match online.refresh().await {
            Ok(()) => Ok(Session {
                updater: online,
                started: Instant::now(),
            }),
            Err(e) if is_unreachable(&e) => {
                let mut offline = updater()?;
                match offline.load_cached() {
                    Ok(()) => {
                        tracing::warn!(error = %e, "the mirror cannot be reached: answering from verified, unexpired cached metadata");
                        Ok(Session {
                            updater: offline,
                            started: Instant::now(),
                        })
                    }
                    Err(cached) => {
                        tracing::debug!(error = %cached, "no usable cached metadata");
                        Err(e)
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    fn cache_file(&self, info: &TargetFile) -> Option<PathBuf> {
        info.sha256().map(|d| self.inner.targets_dir.join(d.to_hex()))
    }

    /// The cache directory's metadata (for tests and `tufa proxy` messages).
    pub fn metadata_dir(&self) -> &Path {
        &self.inner.metadata_dir
    }
}

/// A failure to reach the mirror (as opposed to the mirror answering something that does
/// not verify): connection errors and server errors.
fn is_unreachable(e: &ClientError) -> bool {
    match e {
        ClientError::Fetch { .. } => true,
        ClientError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}

/// The one handler: maps the request path to a target and answers it.
async fn handle(State(proxy): State<Proxy>, request: Request) -> Response {
    if request.method() != axum::http::Method::GET && request.method() != axum::http::Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, None, "only GET and HEAD\n".into());
    }
    let uri = request.uri();
    let Ok(path) = percent_encoding::percent_decode_str(uri.path()).decode_utf8() else {
        return plain(StatusCode::BAD_REQUEST, None, "the path is not UTF-8\n".into());
    };
    let path = path.into_owned();
    let (target, content_type) = if let Some(rest) = path.strip_prefix("/simple/") {
        let name = rest.trim_end_matches('/');
        if name.is_empty() || name.contains('/') {
            return plain(
                StatusCode::NOT_FOUND,
                None,
                "tufa proxy: only project pages (/simple/<project>/) are signed; the project list is not\n"
                    .into(),
            );
        }
        let project = match ProjectName::new(name) {
            Ok(p) => p,
            Err(e) => return plain(StatusCode::NOT_FOUND, None, format!("{e}\n")),
        };
        if project.as_str() != name || !rest.ends_with('/') {
            let mut location = format!("/simple/{project}/");
            if let Some(q) = uri.query() {
                location.push('?');
                location.push_str(q);
            }
            return redirect(&location);
        }
        let accept = request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let Some(format) = choose(accept, uri.query()) else {
            return plain(
                StatusCode::NOT_ACCEPTABLE,
                None,
                "supported: application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html, text/html\n"
                    .into(),
            );
        };
        let file = match format {
            Format::Json => "index.json",
            Format::Html | Format::TextHtml => "index.html",
        };
        (format!("simple/{project}/{file}"), Some(format.content_type()))
    } else if let Some(rest) = path.strip_prefix("/files/") {
        (format!("files/{rest}"), None)
    } else {
        return plain(
            StatusCode::NOT_FOUND,
            None,
            "tufa proxy: not found (it answers /simple/<project>/ and /files/…)\n".into(),
        );
    };
    if tufa_tuf::TargetPath::new(&target).is_err() {
        return plain(StatusCode::NOT_FOUND, None, "not a target path\n".into());
    }
    match proxy.target(&target).await {
        Ok(verified) => {
            let content_type = content_type.unwrap_or(if target.ends_with(".metadata") {
                "text/plain; charset=utf-8"
            } else {
                "application/octet-stream"
            });
            let mut response = match verified {
                Verified::Bytes(bytes) => Response::new(Body::from(bytes)),
                Verified::File { file, len } => {
                    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 16));
                    let mut response = Response::new(body);
                    response
                        .headers_mut()
                        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                    response
                }
            };
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if target.starts_with("simple/") {
                headers.insert(header::VARY, HeaderValue::from_static("Accept"));
                headers.insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("max-age=0, must-revalidate"),
                );
            } else {
                headers.insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("max-age=31536000, immutable"),
                );
            }
            response
        }
        Err(e) => refusal(&target, &e),
    }
}

/// The answer to a failed lookup. Refusals (403; 404 for a target nobody signed) name their
/// attack class in the status line's reason phrase (pip prints it), the `X-Tufa-Refused`
/// header, the body and the log; a mirror that cannot be reached is a 502.
fn refusal(target: &str, e: &ClientError) -> Response {
    let class = e.attack_class();
    let (status, reason) = match (class, e) {
        (Some(AttackClass::TargetNotSigned), _) => (
            StatusCode::NOT_FOUND,
            "Not Found (tufa: target-not-signed)".to_owned(),
        ),
        // 403, not a 5xx: pip and uv retry 5xx answers and then report only "too many 502
        // error responses"; a 4xx fails at once with the status line, reason phrase included.
        (Some(class), _) => (
            StatusCode::FORBIDDEN,
            format!("Forbidden (tufa refused: {class})"),
        ),
        (None, ClientError::Setup(_) | ClientError::Io { .. }) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error".to_owned(),
        ),
        (None, _) => (
            StatusCode::BAD_GATEWAY,
            "Bad Gateway (tufa: mirror unreachable)".to_owned(),
        ),
    };
    match class {
        Some(AttackClass::TargetNotSigned) => tracing::info!(target, error = %e, "not a signed target"),
        Some(class) => tracing::error!(target, attack = %class, error = %e, "refused: verification failed"),
        None => tracing::warn!(target, error = %e, "cannot answer"),
    }
    let body = match class {
        Some(class) => format!("tufa proxy refused `{target}` ({class}): {e}\n"),
        None => format!("tufa proxy cannot answer `{target}`: {e}\n"),
    };
    let mut response = plain(status, Some(reason), body);
    if let Some(class) = class
        && let Ok(v) = HeaderValue::from_str(class.as_str())
    {
        response.headers_mut().insert("x-tufa-refused", v);
    }
    response
}

fn plain(status: StatusCode, reason: Option<String>, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(reason) = reason
        && let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason.into_bytes())
    {
        response.extensions_mut().insert(phrase);
    }
    response
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut response = StatusCode::MOVED_PERMANENTLY.into_response();
            response.headers_mut().insert(header::LOCATION, v);
            response
        }
        Err(_) => plain(StatusCode::NOT_FOUND, None, "bad project name\n".into()),
    }
}

/// Binds `listen` and serves until Ctrl-C or SIGTERM.
pub async fn run(proxy: Proxy, listen: SocketAddr) -> Result<(), ProxyError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| ProxyError::Setup(format!("cannot listen on {listen}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| ProxyError::Setup(format!("cannot listen on {listen}: {e}")))?;
    tracing::info!(listen = %local, mirror = %proxy.inner.mirror, "tufa proxy: verifying Simple API at http://{local}/simple/");
    proxy
        .serve(listener, tufa_server::shutdown_signal())
        .await
        .map_err(|e| ProxyError::Setup(format!("serving failed: {e}")))
}
