//! The upstream HTTP client: reqwest on rustls (ring), HTTP/2 and keep-alive, retries with
//! exponential backoff and jitter, and size-capped body reads.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::Rng as _;
use reqwest::{Response, StatusCode, header};
use url::Url;

use crate::limits::Limits;

/// The `Accept` header for project pages: PEP 691 JSON preferred, HTML as a fallback.
pub const ACCEPT_SIMPLE: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1";

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("GET {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: {source}")]
    Transport { url: String, source: reqwest::Error },
    #[error("GET {url}: body is larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("GET {url}: no answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("could not build the HTTP client: {0}")]
    Client(reqwest::Error),
}

/// Errors that may go away when the same request is tried again.
pub trait Transient: std::fmt::Display {
    fn is_transient(&self) -> bool;
}

impl Transient for FetchError {
    /// Whether trying again may help: 5xx, 429, timeouts and broken connections.
    fn is_transient(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => *status >= 500 || *status == 429,
            FetchError::Transport { source, .. } => {
                source.is_timeout() || source.is_connect() || source.is_body() || source.is_request()
            }
            FetchError::Timeout { .. } => true,
            FetchError::TooLarge { .. } | FetchError::Client(_) => false,
        }
    }
}

/// A configured upstream client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Upstream {
    http: reqwest::Client,
    limits: Limits,
}

impl Upstream {
    pub fn new(limits: Limits, user_agent: &str) -> Result<Self, FetchError> {
        // rustls needs one process-wide crypto provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(limits.connect_timeout())
            .read_timeout(limits.read_timeout())
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(60))
            .http2_adaptive_window(true)
            .build()
            .map_err(FetchError::Client)?;
        Ok(Self { http, limits })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
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
                    let delay = self.backoff(tries);
                    tracing::warn!(url = %url, error = %e, retry_in_ms = delay.as_millis() as u64, "transient upstream error, retrying");
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
        self.retrying(url, || async {
            let attempt = async {
                let response = build(&self.http)
                    .send()
                    .await
                    .map_err(|source| FetchError::Transport {
                        url: url.to_string(),
                        source,
                    })?;
                document_from(url, response, limit).await
            };
            tokio::time::timeout(timeout, attempt)
                .await
                .map_err(|_| FetchError::Timeout {
                    url: url.to_string(),
                    secs: timeout.as_secs(),
                })?
        })
        .await
    }

    /// Starts one GET for a file download (no body read yet, no retries: the caller retries
    /// the whole download, body included).
    pub async fn get_file_once(&self, url: &Url) -> Result<Response, FetchError> {
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|source| FetchError::Transport {
                url: url.to_string(),
                source,
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        Ok(response)
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
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(FetchError::TooLarge {
            url: url.to_string(),
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
    while let Some(chunk) = response.chunk().await.map_err(|source| FetchError::Transport {
        url: url.to_string(),
        source,
    })? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
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
