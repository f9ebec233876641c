//! Errors: [`ServerError`] for starting and running the server, [`ApiError`] for one request.

use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tufa_pypi::Sha256Digest;
use tufa_store::StoreError;
use tufa_tree::TreeError;

use crate::plain;

/// Why the server could not start or stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A TLS certificate or key file could not be read.
    #[error("cannot read TLS file `{}`", path.display())]
    TlsRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A TLS certificate or key file is not valid PEM of the expected kind.
    #[error("TLS file `{}` is not valid: {reason}", path.display())]
    TlsPem { path: PathBuf, reason: String },
    /// rustls refused the certificate chain and key.
    #[error("the TLS certificate and key cannot be used together")]
    TlsConfig(#[source] rustls::Error),
    /// The configured limits do not fit together.
    #[error("invalid serve.limits: {0}")]
    InvalidLimits(String),
    /// The listener's local address could not be read.
    #[error("cannot use the listening socket")]
    Listener(#[source] std::io::Error),
}

/// What went wrong with one request. The client sees only a status and a short fixed message;
/// the detail (store errors, paths, digests) goes to the log.
#[derive(Debug)]
pub(crate) enum ApiError {
    NotFound,
    NotAcceptable,
    RangeNotSatisfiable {
        len: u64,
    },
    /// A stored blob does not hash to its address. Already counted and logged where detected.
    Corrupt,
    /// The store (or a manifest in it) is broken: a 500.
    Internal(String),
    /// The store did not answer: a 503.
    Unavailable(String),
}

impl ApiError {
    /// A failed read of a blob that the request named (a file): not found is the client's 404.
    pub(crate) fn from_store(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(_) => Self::NotFound,
            StoreError::Corrupt { .. } => Self::Internal(error.to_string()),
            other => Self::Unavailable(other.to_string()),
        }
    }

    /// A failed read of a blob that a manifest points at: missing is the tree's fault.
    pub(crate) fn from_store_dangling(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(digest) => Self::Internal(format!(
                "the published tree points at a missing blob sha256:{digest}"
            )),
            other => Self::from_store(other),
        }
    }

    pub(crate) fn from_tree(error: TreeError) -> Self {
        match error {
            TreeError::Store(e) => Self::from_store(e),
            other => Self::Internal(other.to_string()),
        }
    }

    pub(crate) fn from_object_store(digest: &Sha256Digest, error: object_store::Error) -> Self {
        match error {
            object_store::Error::NotFound { .. } => Self::NotFound,
            other => Self::Unavailable(format!("reading blob sha256:{digest}: {other}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::NotFound => plain(StatusCode::NOT_FOUND, "not found\n"),
            Self::NotAcceptable => plain(
                StatusCode::NOT_ACCEPTABLE,
                "not acceptable: supported types are application/vnd.pypi.simple.v1+json, \
                 application/vnd.pypi.simple.v1+html and text/html\n",
            ),
            Self::RangeNotSatisfiable { len } => {
                let mut response = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                response
            }
            Self::Corrupt => plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
            }
            Self::Unavailable(detail) => {
                tracing::error!(error = %detail, "store unavailable");
                plain(StatusCode::SERVICE_UNAVAILABLE, "service unavailable\n")
            }
        }
    }
}
