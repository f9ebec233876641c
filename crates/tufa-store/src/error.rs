//! The one error type of the blob store.

use std::path::PathBuf;

use object_store::path::Path as Key;
use tufa_pypi::Sha256Digest;

/// Why a blob store operation failed. Every variant names the digest, key or path involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bytes that arrived do not hash to the digest they were announced with.
    /// Nothing was made visible.
    #[error("sha256 mismatch: expected {expected}, got {actual} ({len} bytes)")]
    Mismatch {
        expected: Sha256Digest,
        actual: Sha256Digest,
        len: u64,
    },
    /// The number of bytes that arrived differs from the announced length. When the stream
    /// ran past the announced length, reading stopped there and `actual` is the count so far.
    /// Nothing was made visible.
    #[error("blob sha256:{digest}: expected {expected} bytes, got {actual}")]
    LengthMismatch {
        digest: Sha256Digest,
        expected: u64,
        actual: u64,
    },
    /// More than `max` bytes arrived (or were announced); reading stopped. Nothing was made
    /// visible.
    #[error("blob sha256:{digest}: larger than the limit of {max} bytes")]
    TooLarge { digest: Sha256Digest, max: u64 },
    /// A stored blob no longer hashes to its address.
    #[error("blob sha256:{digest} is corrupt: its content hashes to {actual}")]
    Corrupt {
        digest: Sha256Digest,
        actual: Sha256Digest,
    },
    /// No blob is stored under this digest.
    #[error("blob sha256:{0} not found")]
    NotFound(Sha256Digest),
    /// The input stream failed (e.g. a truncated upstream body). Nothing was made visible.
    #[error("reading the content of blob sha256:{digest} failed")]
    Source {
        digest: Sha256Digest,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The object store failed on `key`.
    #[error("object store operation on `{key}` failed")]
    Backend {
        key: Key,
        #[source]
        source: object_store::Error,
    },
    /// A local file-system operation failed.
    #[error("I/O error on `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The writer lost its lease ([`crate::lease`]): the named write to `key` was not made.
    #[error("not writing `{key}`: {source}")]
    LeaseLost {
        key: String,
        #[source]
        source: Box<crate::LeaseError>,
    },
    /// A named-object key that is not allowed (see `put_named`).
    #[error("`{0}` is not a valid object name")]
    BadKey(String),
    /// A `[storage] url` that cannot name a store.
    #[error("storage URL `{url}` is not usable: {why}")]
    BadUrl { url: String, why: String },
    /// A cloud store could not be configured or does not answer (endpoint unreachable, bucket
    /// missing, credentials refused).
    #[error("cannot use the store {location}")]
    Connect {
        location: String,
        #[source]
        source: object_store::Error,
    },
    /// The local store's root directory could not be opened as an object store.
    #[error("cannot open a local blob store at `{}`", root.display())]
    Open {
        root: PathBuf,
        #[source]
        source: object_store::Error,
    },
}

impl StoreError {
    pub(crate) fn backend(key: &Key) -> impl FnOnce(object_store::Error) -> Self + '_ {
        move |source| Self::Backend {
            key: key.clone(),
            source,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
