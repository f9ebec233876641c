//! The upstream HTTP client: reqwest on rustls (ring), HTTP/2 and keep-alive, retries with
//! exponential backoff and jitter (honouring a capped `Retry-After`), size-capped body reads,
//! and the SSRF rule of [`crate::hosts`] on every request and redirect hop. URLs in errors and
//! logs are shown with their userinfo redacted.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::Rng as _;
use reqwest::{Response, StatusCode, header};
use url::Url;

use crate::hosts::{FilteringResolver, HostPolicy, Refused, redact};
use crate::limits::Limits;

/// The `Accept` header for project pages: PEP 691 JSON preferred, HTML as a fallback.
pub const ACCEPT_SIMPLE: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1";

/// A failed request. Every `url` is shown redacted ([`redact`]).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("GET {url}: HTTP {status}")]
    Status {
        url: String,
        status: u16,
        /// The answer's `Retry-After`, when it had one (429, 503).
        retry_after: Option<Duration>,
    },
    /// `reason` is the whole cause chain on one line; `source` has no URL in it.
    #[error("GET {url}: {reason}")]
    Transport {
        url: String,
        reason: String,
        source: reqwest::Error,
    },
    #[error("GET {url}: body is larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("GET {url}: no answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("GET {url}: {refused}")]
    Refused { url: String, refused: Refused },
    #[error(
        "GET {url}: upstream sent `Content-Encoding: {encoding}`, which tufa neither asks for nor decodes"
    )]
    Encoding { url: String, encoding: String },
    #[error("could not build the HTTP client: {0}")]
    Client(reqwest::Error),
}

impl FetchError {
    /// A transport error, without the URL reqwest embeds (it may hold credentials).
    pub(crate) fn transport(url: &Url, e: reqwest::Error) -> Self {
        let source = e.without_url();
        let mut reason = source.to_string();
        let mut cause = std::error::Error::source(&source);
        while let Some(c) = cause {
            let text = c.to_string();
            if !reason.contains(&text) {
                reason.push_str(": ");
                reason.push_str(&text);
            }
            cause = c.source();
        }
        FetchError::Transport {
            url: redact(url),
            reason,
            source,
        }
    }

    /// The `Retry-After` of a 429/503 answer.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Errors that may go away when the same request is tried again.
pub trait Transient: std::fmt::Display {
    fn is_transient(&self) -> bool;
    /// How long the upstream asked to wait before trying again (`Retry-After`).
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

impl Transient for FetchError {
    /// Whether trying again may help: 5xx, 429, timeouts and broken connections.
    fn is_transient(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => *status >= 500 || *status == 429,
            FetchError::Transport { source, .. } => {
                !source.is_redirect()
                    && !refused_by_policy(source)
                    && (source.is_timeout() || source.is_connect() || source.is_body() || source.is_request())
            }
            FetchError::Timeout { .. } => true,
            FetchError::TooLarge { .. }
            | FetchError::Refused { .. }
            | FetchError::Encoding { .. }
            | FetchError::Client(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        FetchError::retry_after(self)
    }
}

/// Whether the SSRF rule (in the resolver) is behind a transport error: trying again cannot
/// help.
fn refused_by_policy(e: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<Refused>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A configured upstream client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Upstream {
    http: reqwest::Client,
    limits: Limits,
    policy: Arc<HostPolicy>,
}

impl Upstream {
    /// A client that contacts only what `policy` allows, on every request and redirect hop.
    pub fn new(limits: Limits, user_agent: &str, policy: HostPolicy) -> Result<Self, FetchError> {
        // rustls needs one process-wide crypto provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let policy = Arc::new(policy);
        let redirects = Arc::clone(&policy);
        let http = reqwest::Client::builder()
            .user_agent(user_agent)
            .redirect(reqwest::redirect::Policy::custom(move |attempt| match redirects
                .check_redirect(attempt.url(), attempt.previous())
            {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }))
            .dns_resolver(FilteringResolver {
                allow_private_addresses: policy.allow_private_addresses(),
            })
            .connect_timeout(limits.connect_timeout())
            .read_timeout(limits.read_timeout())
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(60))
            .http2_adaptive_window(true)
            .build()
            .map_err(FetchError::Client)?;
        Ok(Self { http, limits, policy })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the SSRF rule lets a request to `url` be sent.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        self.policy.check(url)
    }

    /// Runs `attempt` until it succeeds, fails permanently, or retries run out.
    pub async fn retrying<T, E, F, Fut>(&self, url: &Url, mut attempt: F) -> Result<T, E>
    where
        E: Transient,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut tries = 0;
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && tries < self.limits.retries => {
                    let cap = Duration::from_secs(self.limits.max_retry_after_secs);
                    let delay = self
                        .backoff(tries)
                        .max(e.retry_after().map_or(Duration::ZERO, |d| d.min(cap)));
                    tracing::warn!(url = %redact(url), error = %e, retry_in_ms = delay.as_millis() as u64, "transient upstream error, retrying");
                    tokio::time::sleep(delay).await;
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn backoff(&self, tries: u32) -> Duration {
        let base = self.limits.retry_base_delay_ms.saturating_mul(1 << tries.min(10));
        let jitter = rand::rng().random_range(0..=base / 2);
        Duration::from_millis(base + jitter)
    }

    /// GETs a small document (a project page or the root list).
    pub async fn get_document(&self, url: &Url, accept: &str) -> Result<Document, FetchError> {
        self.fetch_document(url, |http| http.get(url.clone()).header(header::ACCEPT, accept))
            .await
    }

    /// POSTs an XML-RPC call and returns the answer.
    pub async fn post_xmlrpc(&self, url: &Url, body: String) -> Result<Document, FetchError> {
        self.fetch_document(url, |http| {
            http.post(url.clone())
                .header(header::CONTENT_TYPE, "text/xml")
                .body(body.clone())
        })
        .await
    }

    /// Sends the request `build` makes, with retries, a total timeout per attempt and a body
    /// size cap; returns the final URL (after redirects), status, content type and body.
    async fn fetch_document(
        &self,
        url: &Url,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Document, FetchError> {
        let limit = self.limits.max_page_bytes;
        let timeout = self.limits.page_timeout();
        self.policy.check(url).map_err(|refused| FetchError::Refused {
            url: redact(url),
            refused,
        })?;
        self.retrying(url, || async {
            let attempt = async {
                let response = build(&self.http)
                    .send()
                    .await
                    .map_err(|e| FetchError::transport(url, e))?;
                document_from(url, response, limit).await
            };
            tokio::time::timeout(timeout, attempt)
                .await
                .map_err(|_| FetchError::Timeout {
                    url: redact(url),
                    secs: timeout.as_secs(),
                })?
        })
        .await
    }

    /// Starts one GET for a file download (no body read yet, no retries: the caller retries
    /// the whole download, body included).
    pub async fn get_file_once(&self, url: &Url) -> Result<Response, FetchError> {
        self.policy.check(url).map_err(|refused| FetchError::Refused {
            url: redact(url),
            refused,
        })?;
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| FetchError::transport(url, e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: redact(url),
                status: status.as_u16(),
                retry_after: retry_after(&response),
            });
        }
        check_identity_encoding(url, &response)?;
        Ok(response)
    }
}

/// tufa sends no `Accept-Encoding`, so an encoded answer is a protocol violation (or a
/// decompression bomb waiting for a client that would decode it): refused.
fn check_identity_encoding(url: &Url, response: &Response) -> Result<(), FetchError> {
    match response.headers().get(header::CONTENT_ENCODING) {
        None => Ok(()),
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"identity") => Ok(()),
        Some(v) => {
            let text: String = String::from_utf8_lossy(v.as_bytes()).chars().take(40).collect();
            Err(FetchError::Encoding {
                url: redact(url),
                encoding: text.escape_debug().collect(),
            })
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let wait = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

impl Upstream {
    /// The policy this client enforces.
    pub fn policy(&self) -> &HostPolicy {
        &self.policy
    }
}

/// A fetched document.
#[derive(Debug, Clone)]
pub struct Document {
    pub final_url: Url,
    pub status: StatusCode,
    pub content_type: String,
    pub body: Bytes,
    /// `X-PyPI-Last-Serial`, when the upstream sends it.
    pub last_serial: Option<u64>,
}

async fn document_from(url: &Url, mut response: Response, limit: u64) -> Result<Document, FetchError> {
    let status = response.status();
    if !status.is_success() && status != StatusCode::NOT_FOUND {
        return Err(FetchError::Status {
            url: redact(url),
            status: status.as_u16(),
            retry_after: retry_after(&response),
        });
    }
    check_identity_encoding(url, &response)?;
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(FetchError::TooLarge {
            url: redact(url),
            limit,
        });
    }
    let final_url = response.url().clone();
    let headers = response.headers();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let last_serial = headers
        .get("x-pypi-last-serial")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let mut body = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::transport(url, e))?
    {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(FetchError::TooLarge {
                url: redact(url),
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Document {
        final_url,
        status,
        content_type,
        body: body.freeze(),
        last_serial,
    })
}
