//! Bounded HTTP GETs: every body is read with a length limit taken from signed metadata (or
//! the client's default for files metadata does not size), so an endless or oversized answer
//! is cut off at the limit instead of filling memory.

use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt as _;
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

impl Http {
    /// GETs the target `path` from `url` into the file `dest`, checking the length and every
    /// hash of `info` as the bytes arrive (never more than `info.length` are read). The bytes
    /// go to a temporary file beside `dest`, which replaces `dest` only once everything
    /// matched; on any failure it is removed. Returns the length. The file is not fsynced:
    /// callers check what they read back (the proxy re-hashes every cached target it answers).
    pub async fn download_target_to(
        &self,
        url: &Url,
        path: &str,
        info: &TargetFile,
        dest: &Path,
    ) -> Result<u64, ClientError> {
        tracing::debug!(%url, target = path, "fetching target to a file");
        let mut verifier = info.verifier(path)?;
        let fetch = |e: reqwest::Error| ClientError::Fetch {
            url: url.to_string(),
            reason: error_chain(&e),
        };
        let mut response = self.client.get(url.clone()).send().await.map_err(fetch)?;
        if !response.status().is_success() {
            return Err(ClientError::Status {
                url: url.to_string(),
                status: response.status().as_u16(),
            });
        }
        if let Some(len) = response.content_length()
            && len > info.length
        {
            return Err(TufError::TooLarge {
                what: path.to_owned(),
                len,
                max: info.length,
            }
            .into());
        }
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dest.with_file_name(format!(".{name}.part-{}", std::process::id()));
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ClientError::Io { path, source }
        };
        let result: Result<u64, ClientError> = async {
            let mut file = tokio::fs::File::create(&tmp).await.map_err(io(&tmp))?;
            let mut len = 0u64;
            while let Some(chunk) = response.chunk().await.map_err(fetch)? {
                verifier.update(&chunk)?;
                file.write_all(&chunk).await.map_err(io(&tmp))?;
                len += chunk.len() as u64;
            }
            verifier.finish()?;
            // Not fsynced: a file torn by a crash fails the length and hash check that every
            // reader of the cache runs, and is fetched again.
            file.flush().await.map_err(io(&tmp))?;
            drop(file);
            tokio::fs::rename(&tmp, dest).await.map_err(io(dest))?;
            Ok(len)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    /// GETs `url` as a stream of chunks, for a caller that checks the bytes as it stores them
    /// (the replica streams targets into its blob store, which bounds the length and checks
    /// the sha256).
    pub async fn get_stream(
        &self,
        url: &Url,
    ) -> Result<futures::stream::BoxStream<'static, Result<Bytes, ClientError>>, ClientError> {
        use futures::StreamExt as _;
        let shown = url.to_string();
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| ClientError::Fetch {
                url: shown.clone(),
                reason: error_chain(&e),
            })?;
        if !response.status().is_success() {
            return Err(ClientError::Status {
                url: shown,
                status: response.status().as_u16(),
            });
        }
        Ok(response
            .bytes_stream()
            .map(move |r| {
                r.map_err(|e| ClientError::Fetch {
                    url: shown.clone(),
                    reason: error_chain(&e),
                })
            })
            .boxed())
    }
}

/// Checks the file at `file` against `info` (length and every hash), reading it in pieces.
/// `Ok(false)` when it is missing or differs.
pub fn file_matches(file: &Path, path: &str, info: &TargetFile) -> Result<bool, ClientError> {
    use std::io::Read as _;
    let mut f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(ClientError::Io {
                path: file.to_owned(),
                source,
            });
        }
    };
    let mut verifier = info.verifier(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|source| ClientError::Io {
            path: file.to_owned(),
            source,
        })?;
        if n == 0 {
            break;
        }
        if verifier.update(&buf[..n]).is_err() {
            return Ok(false);
        }
    }
    Ok(verifier.finish().is_ok())
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
