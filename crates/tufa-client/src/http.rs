//! Bounded HTTP GETs: every body is read with a length limit taken from signed metadata (or
//! the client's default for files metadata does not size), so an endless or oversized answer
//! is cut off at the limit instead of filling memory.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tufa_tuf::{TargetFile, TufError};
use url::Url;

use crate::ClientError;

/// Timeouts and identity of the client's HTTP requests.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub user_agent: String,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of an answer.
    pub read_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            user_agent: concat!("tufa-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// An HTTP client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
}

/// A failed GET: either an HTTP status (which callers may treat as "not there") or a fault.
#[derive(Debug)]
pub(crate) enum GetError {
    Status(u16),
    Other(ClientError),
}

impl Http {
    pub fn new(options: &HttpOptions) -> Result<Self, ClientError> {
        // rustls needs one process-wide crypto provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(&options.user_agent)
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .build()
            .map_err(|e| ClientError::Setup(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { client })
    }

    /// GETs `url`, reading at most `max` bytes of body. `what` names the file in errors.
    pub(crate) async fn get(&self, url: &Url, what: &str, max: u64) -> Result<Bytes, GetError> {
        let fetch = |e: reqwest::Error| {
            GetError::Other(ClientError::Fetch {
                url: url.to_string(),
                reason: error_chain(&e),
            })
        };
        let mut response = self.client.get(url.clone()).send().await.map_err(fetch)?;
        let status = response.status();
        if !status.is_success() {
            return Err(GetError::Status(status.as_u16()));
        }
        let too_large = |len: u64| {
            GetError::Other(ClientError::from(TufError::TooLarge {
                what: what.to_owned(),
                len,
                max,
            }))
        };
        if let Some(len) = response.content_length()
            && len > max
        {
            return Err(too_large(len));
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(fetch)? {
            let len = (body.len() + chunk.len()) as u64;
            if len > max {
                return Err(too_large(len));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

impl Http {
    /// GETs `url`, reading at most `max` bytes; an HTTP error status is an error too. `what`
    /// names the file in errors.
    pub async fn get_bounded(&self, url: &Url, what: &str, max: u64) -> Result<Bytes, ClientError> {
        self.get(url, what, max).await.map_err(|e| e.into_error(url))
    }

    /// GETs the target `path` from `url` and returns its bytes once their length and every
    /// hash match `info`. Reads at most `info.length` bytes.
    pub async fn get_target(&self, url: &Url, path: &str, info: &TargetFile) -> Result<Bytes, ClientError> {
        tracing::debug!(%url, target = path, "fetching target");
        let bytes = self
            .get(url, path, info.length)
            .await
            .map_err(|e| e.into_error(url))?;
        info.verify(path, &bytes)?;
        Ok(bytes)
    }
}

impl GetError {
    pub(crate) fn into_error(self, url: &Url) -> ClientError {
        match self {
            Self::Status(status) => ClientError::Status {
                url: url.to_string(),
                status,
            },
            Self::Other(e) => e,
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
