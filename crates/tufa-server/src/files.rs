//! `/files/<h0h1>/<h2h3>/<rest of sha256>/<filename>` and its PEP 658 `.metadata`, each also in
//! the hash-prefixed form `…/<sha256>.<filename>` TUF clients request (see the crate docs).
//!
//! See the crate docs for how file bodies are verified while streaming (the last chunk is held
//! back until the digest is checked) and how range requests are cut only from verified blobs.

use std::io::{self, SeekFrom};
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header, response::Builder};
use axum::response::Response;
use futures::stream::{self, BoxStream};
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::{GetOptions, GetRange, GetResult, GetResultPayload, ObjectStoreExt as _};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio_util::io::ReaderStream;
use tufa_pypi::{Sha256Digest, Sha256Hasher};
use tufa_store::BlobStore;
use tufa_tree::{FilePath, ProjectManifest, parse_file_path};

use crate::error::ApiError;
use crate::local::{self, Piece};
use crate::pages::{etag_of, if_none_match, split_hash_prefix, verified_small};
use crate::verify::{BlobVersion, Outcome, hash_chunk};
use crate::{AppState, FileVerification};

/// `Cache-Control` of content-addressed responses: the URL names the content.
pub(crate) const IMMUTABLE: &str = "max-age=31536000, public, immutable";
/// Read size for files on the local disk (object_store's own reader uses 8 KiB).
const READ_CHUNK: usize = 256 * 1024;

/// `Content-Type` by filename. Never a compression type and never with `Content-Encoding`:
/// a client would decompress a `.tar.gz` and then fail its hash check.
fn content_type(filename: &str) -> &'static str {
    if filename.ends_with(".whl") || filename.ends_with(".zip") {
        "application/zip"
    } else if filename.ends_with(".tar.gz") || filename.ends_with(".tgz") {
        "application/x-tar"
    } else {
        "application/octet-stream"
    }
}

fn http_date(time: SystemTime) -> String {
    httpdate::fmt_http_date(time)
}

pub(crate) async fn file(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Ok(Path(rest)) = path else {
        return Err(ApiError::NotFound);
    };
    let (file, prefix) = parse_any_file_path(&rest).ok_or(ApiError::NotFound)?;
    // The hash-prefixed form of a file names its digest twice; both must agree.
    if !file.metadata && prefix.is_some_and(|p| p != file.sha256) {
        return Err(ApiError::NotFound);
    }
    // Only a (digest, filename) pair that a published project page lists is answered: not
    // any stored blob under any name, not a file a later publish removed, not a file of a
    // quarantined project (published without files).
    let manifest = crate::published::publishing_manifest(&state, &file)
        .await?
        .ok_or(ApiError::NotFound)?;
    if file.metadata {
        metadata(&state, &file, &manifest, prefix.as_ref(), &method, &headers).await
    } else {
        distribution(&state, &file, &method, &headers).await
    }
}

/// Parses a `files/…` path in its plain form (`parse_file_path`) or in the hash-prefixed
/// form, whose last segment is `<64 lowercase hex>.<filename>[.metadata]`; the prefix is
/// returned too. A last segment that starts with 64 lowercase hex and a dot is always read as
/// prefixed (no distribution filename begins that way).
fn parse_any_file_path(rest: &str) -> Option<(FilePath, Option<Sha256Digest>)> {
    let (dirs, last) = rest.rsplit_once('/')?;
    match split_hash_prefix(last) {
        Some((prefix, base)) => Some((parse_file_path(&format!("{dirs}/{base}"))?, Some(prefix))),
        None => Some((parse_file_path(rest)?, None)),
    }
}

/// Headers every answer about a file carries, 304 included.
fn file_headers(etag: &str, last_modified: SystemTime) -> Builder {
    Response::builder()
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, IMMUTABLE)
        .header(header::LAST_MODIFIED, http_date(last_modified))
}

fn build(builder: Builder, body: Body) -> Result<Response, ApiError> {
    builder.body(body).map_err(|e| ApiError::Internal(e.to_string()))
}

async fn distribution(
    state: &AppState,
    file: &FilePath,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let digest = file.sha256;
    let etag = etag_of(&digest);
    let content_type = content_type(file.filename.as_str());
    let not_modified = if_none_match(headers, &etag);
    let range = requested_range(headers, &etag);

    if *method == Method::HEAD || not_modified || range.is_some() {
        let meta = state
            .store()
            .object_store()
            .head(&BlobStore::key_for(&digest))
            .await
            .map_err(|e| ApiError::from_object_store(&digest, e))?;
        let builder = file_headers(&etag, SystemTime::from(meta.last_modified));
        if not_modified {
            return build(builder.status(StatusCode::NOT_MODIFIED), Body::empty());
        }
        let builder = builder
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT_RANGES, "bytes");
        if *method == Method::HEAD {
            return build(builder.header(header::CONTENT_LENGTH, meta.size), Body::empty());
        }
        if let Some(range) = range {
            return serve_range(state, &digest, range, BlobVersion::of(&meta), builder).await;
        }
    }

    let (version, body) = whole_blob(state, &digest).await?;
    let builder = file_headers(&etag, version.modified)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, version.len);
    build(builder, body)
}

/// The whole blob `digest` as a response body that is only complete when it verified (see
/// `verified_stream` and `local_verified_stream`), with the version that is read.
pub(crate) async fn whole_blob(
    state: &AppState,
    digest: &Sha256Digest,
) -> Result<(BlobVersion, Body), ApiError> {
    if let Some(path) = state.store().local_path(digest) {
        let file = local::open(path)
            .await
            .map_err(|e| ApiError::Unavailable(format!("reading blob sha256:{digest}: {e}")))?
            .ok_or(ApiError::NotFound)?;
        let version = BlobVersion::of_file(&file);
        let body = local_verified_stream(state, *digest, file).boxed();
        return Ok((version, start_body(body, digest).await?));
    }
    let result = state
        .store()
        .object_store()
        .get(&BlobStore::key_for(digest))
        .await
        .map_err(|e| ApiError::from_object_store(digest, e))?;
    let version = BlobVersion::of(&result.meta);
    let body = verified_stream(payload_stream(result), *digest, version, state.clone()).boxed();
    Ok((version, start_body(body, digest).await?))
}

/// The error a verified body ends with when the blob does not match its digest.
fn verification_error() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "blob failed verification")
}

/// A verified body whose first item is awaited before the response starts: a blob whose
/// failure shows by then (every blob that fits in one chunk: its only chunk is checked before
/// it is released) is answered with a clean 500 (or 503 when the store failed), not with a
/// connection closed before the headers. A failure later in the body ends it with an error.
async fn start_body(
    mut body: BoxStream<'static, io::Result<Bytes>>,
    digest: &Sha256Digest,
) -> Result<Body, ApiError> {
    match body.next().await {
        None => Ok(Body::empty()),
        Some(Ok(first)) => Ok(Body::from_stream(stream::once(async { Ok(first) }).chain(body))),
        Some(Err(e)) if e.kind() == io::ErrorKind::InvalidData => Err(ApiError::Corrupt),
        Some(Err(e)) => Err(ApiError::Unavailable(format!(
            "reading blob sha256:{digest}: {e}"
        ))),
    }
}

/// A range request: cut the range from a fresh read of a blob whose whole content this
/// process has verified in this version (hashed once, remembered; see the `verify` module).
async fn serve_range(
    state: &AppState,
    digest: &Sha256Digest,
    range: RangeSpec,
    version: BlobVersion,
    builder: Builder,
) -> Result<Response, ApiError> {
    let stored_len = version.len;
    let Some((start, end)) = range.resolve(stored_len) else {
        return Err(ApiError::RangeNotSatisfiable { len: stored_len });
    };
    match state.verifier().verify(state.store(), *digest, version).await {
        Outcome::Verified(verified) if verified == version => {}
        Outcome::Verified(verified) => {
            return Err(ApiError::Unavailable(format!(
                "blob sha256:{digest} changed while being read ({} bytes → {})",
                stored_len, verified.len
            )));
        }
        Outcome::Missing => return Err(ApiError::NotFound),
        Outcome::Corrupt { actual } => {
            state.metrics().verification_failed();
            tracing::error!(digest = %digest, actual = %actual, "stored blob does not match its digest; range not served");
            return Err(ApiError::Corrupt);
        }
        Outcome::Failed(detail) => return Err(ApiError::Unavailable(detail)),
    }
    let options = GetOptions {
        range: Some(GetRange::Bounded(start..end + 1)),
        ..GetOptions::default()
    };
    let result = state
        .store()
        .object_store()
        .get_opts(&BlobStore::key_for(digest), options)
        .await
        .map_err(|e| ApiError::from_object_store(digest, e))?;
    let want = end + 1 - start;
    let builder = builder
        .status(StatusCode::PARTIAL_CONTENT)
        .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{stored_len}"))
        .header(header::CONTENT_LENGTH, want);
    build(
        builder,
        Body::from_stream(length_checked(payload_stream(result), want, *digest)),
    )
}

/// PEP 658 metadata: the METADATA blob the project's `manifest` lists for this wheel (whose
/// (digest, filename) pair the caller checked is published). With a hash `prefix` (a TUF
/// client's request), only when it is that blob's digest.
async fn metadata(
    state: &AppState,
    file: &FilePath,
    manifest: &ProjectManifest,
    prefix: Option<&Sha256Digest>,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let blob = *manifest
        .metadata
        .get(file.filename.as_str())
        .ok_or(ApiError::NotFound)?;
    if prefix.is_some_and(|p| *p != blob.sha256) {
        return Err(ApiError::NotFound);
    }
    // The URL names the distribution's blob too; answer only for a file that is stored (on
    // the local disk one `stat` on this worker, cheaper than a hand-off to the blocking pool).
    let stored = match state.store().local_path(&file.sha256) {
        Some(path) => path
            .try_exists()
            .map_err(|e| ApiError::Unavailable(format!("checking blob sha256:{}: {e}", file.sha256)))?,
        None => state
            .store()
            .exists(&file.sha256)
            .await
            .map_err(ApiError::from_store)?,
    };
    if !stored {
        return Err(ApiError::NotFound);
    }
    let etag = etag_of(&blob.sha256);
    let builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, IMMUTABLE);
    if if_none_match(headers, &etag) {
        return build(builder.status(StatusCode::NOT_MODIFIED), Body::empty());
    }
    let builder = builder.header(header::CONTENT_TYPE, "application/octet-stream");
    if *method == Method::HEAD {
        return build(builder.header(header::CONTENT_LENGTH, blob.len), Body::empty());
    }
    let data = verified_small(state, &blob).await?;
    build(
        builder.header(header::CONTENT_LENGTH, data.len()),
        Body::from(data),
    )
}

/// One `Range: bytes=…` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSpec {
    /// `a-b`
    FromTo(u64, u64),
    /// `a-`
    From(u64),
    /// `-n`: the last n bytes
    Suffix(u64),
}

impl RangeSpec {
    /// Parses a single byte range. Anything else (other units, several ranges, bad syntax) is
    /// `None`, and the request is served whole, as RFC 9110 allows.
    fn parse(value: &str) -> Option<Self> {
        let (unit, spec) = value.trim().split_once('=')?;
        if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
            return None;
        }
        let number = |s: &str| -> Option<u64> {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let (first, last) = spec.split_once('-')?;
        match (first.trim(), last.trim()) {
            ("", n) => Some(Self::Suffix(number(n)?)),
            (a, "") => Some(Self::From(number(a)?)),
            (a, b) => {
                let (a, b) = (number(a)?, number(b)?);
                (a <= b).then_some(Self::FromTo(a, b))
            }
        }
    }

    /// The inclusive byte positions within a blob of `len` bytes; `None`: unsatisfiable (416).
    fn resolve(self, len: u64) -> Option<(u64, u64)> {
        let last = len.checked_sub(1)?;
        match self {
            Self::FromTo(a, b) => (a <= last).then(|| (a, b.min(last))),
            Self::From(a) => (a <= last).then_some((a, last)),
            Self::Suffix(0) => None,
            Self::Suffix(n) => Some((len - n.min(len), last)),
        }
    }
}

/// The range to serve: a parsable single range, unless `If-Range` names another version.
fn requested_range(headers: &HeaderMap, etag: &str) -> Option<RangeSpec> {
    let range = RangeSpec::parse(headers.get(header::RANGE)?.to_str().ok()?)?;
    match headers.get(header::IF_RANGE) {
        None => Some(range),
        Some(v) if v.to_str().is_ok_and(|v| v.trim() == etag) => Some(range),
        Some(_) => None,
    }
}

/// The bytes of a get, in large chunks. object_store reads local files 8 KiB per blocking
/// call; here a local file is read `READ_CHUNK` bytes at a time.
pub(crate) fn payload_stream(result: GetResult) -> BoxStream<'static, io::Result<Bytes>> {
    let GetResult { payload, range, .. } = result;
    match payload {
        GetResultPayload::File(file, _) => stream::once(async move {
            let mut file = tokio::fs::File::from_std(file);
            file.seek(SeekFrom::Start(range.start)).await?;
            let reader = file.take(range.end.saturating_sub(range.start));
            Ok::<_, io::Error>(ReaderStream::with_capacity(reader, READ_CHUNK))
        })
        .try_flatten()
        .boxed(),
        GetResultPayload::Stream(s) => s.map_err(io::Error::other).boxed(),
    }
}

struct Verifying {
    inner: BoxStream<'static, io::Result<Bytes>>,
    hasher: Sha256Hasher,
    held: Option<Bytes>,
    seen: u64,
    len: u64,
    version: BlobVersion,
    digest: Sha256Digest,
    state: AppState,
}

impl Verifying {
    fn fail(&self, actual: Option<Sha256Digest>) -> io::Error {
        self.state.metrics().verification_failed();
        match actual {
            Some(actual) => tracing::error!(
                digest = %self.digest,
                actual = %actual,
                bytes = self.seen,
                "stored blob does not match its digest; response aborted before its last chunk"
            ),
            None => tracing::error!(
                digest = %self.digest,
                expected_len = self.len,
                bytes = self.seen,
                "stored blob is longer than announced; response aborted"
            ),
        }
        verification_error()
    }

    async fn hash(&mut self, chunk: Bytes) -> io::Result<()> {
        let hasher = std::mem::take(&mut self.hasher);
        self.hasher = hash_chunk(hasher, chunk).await?;
        Ok(())
    }
}

/// `inner` as a body that is only ever complete when it hashed to `digest` with exactly
/// `version.len` bytes: each chunk is hashed as it arrives and passed on one chunk late; the
/// last one is released only after the check (which also marks the digest verified in this
/// version, for later range requests), and replaced by an error when it fails.
fn verified_stream(
    inner: BoxStream<'static, io::Result<Bytes>>,
    digest: Sha256Digest,
    version: BlobVersion,
    state: AppState,
) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + 'static {
    let start = Verifying {
        inner,
        hasher: Sha256Hasher::new(),
        held: None,
        seen: 0,
        len: version.len,
        version,
        digest,
        state,
    };
    stream::unfold(Some(start), |st| async move {
        let mut st = st?;
        loop {
            match st.inner.next().await {
                Some(Ok(chunk)) => {
                    // An empty chunk must not push the real last chunk out early.
                    if chunk.is_empty() {
                        continue;
                    }
                    st.seen += chunk.len() as u64;
                    if st.seen > st.len {
                        return Some((Err(st.fail(None)), None));
                    }
                    if let Err(e) = st.hash(chunk.clone()).await {
                        return Some((Err(e), None));
                    }
                    if let Some(previous) = st.held.replace(chunk) {
                        return Some((Ok(previous), Some(st)));
                    }
                }
                Some(Err(e)) => {
                    tracing::error!(digest = %st.digest, error = %e, "reading blob failed mid-response");
                    return Some((Err(e), None));
                }
                None => {
                    let actual = std::mem::take(&mut st.hasher).finish();
                    if actual == st.digest && st.seen == st.len {
                        st.state.verifier().remember(st.digest, st.version);
                        return st.held.take().map(|last| (Ok(last), None));
                    }
                    return Some((Err(st.fail(Some(actual))), None));
                }
            }
        }
    })
}

/// A local file as a body that is only ever complete when it hashed to `digest`: chunks are
/// read and hashed together on the blocking pool (see the `local` module), and the last one is
/// released only after the digest is checked; on a mismatch an error replaces it. In the
/// `once-per-file` mode, a file whose identity this process has seen hash correctly is
/// streamed without hashing.
fn local_verified_stream(
    state: &AppState,
    digest: Sha256Digest,
    file: local::OpenFile,
) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + 'static {
    let identity = file.identity;
    let version = BlobVersion::of_file(&file);
    let trusted = state.file_verification() == FileVerification::OncePerFile
        && state.verifier().is_verified_file(&digest, &identity);
    state.metrics().file_download(trusted);
    let pieces = local::read_chunks(file, !trusted, state.verifier().streams());
    let state = state.clone();
    pieces.map(move |piece| match piece {
        Ok(Piece::Chunk(chunk) | Piece::Last(chunk, None)) => Ok(chunk),
        Ok(Piece::Last(chunk, Some(actual))) if actual == digest => {
            state.verifier().remember(digest, version);
            state.verifier().remember_file(digest, identity);
            Ok(chunk)
        }
        Ok(Piece::Last(_, Some(actual))) => {
            state.metrics().verification_failed();
            tracing::error!(
                digest = %digest,
                actual = %actual,
                bytes = identity.len,
                "stored blob does not match its digest; response aborted before its last chunk"
            );
            Err(verification_error())
        }
        Err(e) => {
            tracing::error!(digest = %digest, error = %e, "reading blob failed mid-response");
            Err(e)
        }
    })
}

/// A range read that must yield exactly `want` bytes.
fn length_checked(
    inner: BoxStream<'static, io::Result<Bytes>>,
    want: u64,
    digest: Sha256Digest,
) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + 'static {
    stream::unfold(Some((inner, 0u64)), move |st| async move {
        let (mut inner, seen) = st?;
        match inner.next().await {
            Some(Ok(chunk)) => {
                let seen = seen + chunk.len() as u64;
                if seen > want {
                    tracing::error!(digest = %digest, want, "range read returned too many bytes");
                    return Some((Err(io::Error::other("range read too long")), None));
                }
                Some((Ok(chunk), Some((inner, seen))))
            }
            Some(Err(e)) => {
                tracing::error!(digest = %digest, error = %e, "range read failed mid-response");
                Some((Err(e), None))
            }
            None if seen == want => None,
            None => {
                tracing::error!(digest = %digest, want, got = seen, "range read ended early");
                Some((Err(io::Error::other("range read too short")), None))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn range_parsing() {
        use RangeSpec::*;
        assert_eq!(RangeSpec::parse("bytes=0-9"), Some(FromTo(0, 9)));
        assert_eq!(RangeSpec::parse("Bytes = 5-"), Some(From(5)));
        assert_eq!(RangeSpec::parse("bytes=-3"), Some(Suffix(3)));
        for bad in [
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
            "bytes 0-1",
        ] {
            assert_eq!(RangeSpec::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn range_resolution() {
        use RangeSpec::*;
        assert_eq!(FromTo(0, 9).resolve(100), Some((0, 9)));
        assert_eq!(FromTo(90, 200).resolve(100), Some((90, 99)));
        assert_eq!(FromTo(100, 200).resolve(100), None);
        assert_eq!(From(99).resolve(100), Some((99, 99)));
        assert_eq!(From(100).resolve(100), None);
        assert_eq!(Suffix(10).resolve(100), Some((90, 99)));
        assert_eq!(Suffix(1000).resolve(100), Some((0, 99)));
        assert_eq!(Suffix(0).resolve(100), None);
        assert_eq!(From(0).resolve(0), None);
    }

    #[test]
    fn hash_prefixed_file_paths() {
        let d = Sha256Digest::of(b"x");
        let m = Sha256Digest::of(b"m");
        let hex = d.to_hex();
        let dirs = format!("{}/{}/{}", &hex[..2], &hex[2..4], &hex[4..]);
        let name = "demo-1.0-py3-none-any.whl";

        let (plain, prefix) = parse_any_file_path(&format!("{dirs}/{name}")).unwrap();
        assert_eq!((plain.sha256, plain.metadata, prefix), (d, false, None));

        let (file, prefix) = parse_any_file_path(&format!("{dirs}/{hex}.{name}")).unwrap();
        assert_eq!(file, plain);
        assert_eq!(prefix, Some(d));

        let (file, prefix) = parse_any_file_path(&format!("{dirs}/{m}.{name}.metadata")).unwrap();
        assert_eq!(
            (file.sha256, file.filename.as_str(), file.metadata),
            (d, name, true)
        );
        assert_eq!(prefix, Some(m));

        for bad in [
            format!("{dirs}/{hex}."),
            format!("{dirs}/{hex}./{name}"),
            format!("{dirs}/{hex}.../x.whl"),
            format!("{hex}.{name}"),
            format!("{dirs}/{hex}.not a filename"),
        ] {
            assert!(parse_any_file_path(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("a-1.0-py3-none-any.whl"), "application/zip");
        assert_eq!(content_type("a-1.0.zip"), "application/zip");
        assert_eq!(content_type("a-1.0.tar.gz"), "application/x-tar");
        assert_eq!(content_type("a-1.0.tgz"), "application/x-tar");
        assert_eq!(content_type("a-1.0.tar.bz2"), "application/octet-stream");
    }

    fn chunks(parts: &[&'static [u8]]) -> BoxStream<'static, io::Result<Bytes>> {
        stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
        .boxed()
    }

    fn v(len: u64) -> BlobVersion {
        BlobVersion {
            len,
            modified: SystemTime::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn verified_stream_releases_the_last_chunk_only_after_the_check() {
        let state = AppState::new(BlobStore::memory(), crate::ServerLimits::default());
        let good = Sha256Digest::of(b"abcdef");
        let out: Vec<io::Result<Bytes>> = verified_stream(
            chunks(&[b"ab", b"", b"cd", b"ef", b""]),
            good,
            v(6),
            state.clone(),
        )
        .collect()
        .await;
        let bytes: Vec<u8> = out.into_iter().flat_map(|r| r.unwrap().to_vec()).collect();
        assert_eq!(bytes, b"abcdef");

        // Wrong content: everything but the last chunk, then an error.
        let out: Vec<io::Result<Bytes>> =
            verified_stream(chunks(&[b"ab", b"cd", b"eX"]), good, v(6), state.clone())
                .collect()
                .await;
        assert_eq!(out.len(), 3);
        assert!(out[..2].iter().all(Result::is_ok));
        assert!(out[2].is_err());

        // Too long: stopped as soon as it shows.
        let out: Vec<io::Result<Bytes>> =
            verified_stream(chunks(&[b"abcdef", b"g"]), good, v(6), state.clone())
                .collect()
                .await;
        assert_eq!(out.len(), 1);
        assert!(out[0].is_err());

        // Too short (a truncated blob that still hashes... to something else).
        let out: Vec<io::Result<Bytes>> = verified_stream(chunks(&[b"abc"]), good, v(6), state.clone())
            .collect()
            .await;
        assert_eq!(out.len(), 1);
        assert!(out[0].is_err());

        // Empty blob.
        let empty = Sha256Digest::of(b"");
        let out: Vec<io::Result<Bytes>> = verified_stream(chunks(&[]), empty, v(0), state.clone())
            .collect()
            .await;
        assert!(out.is_empty());
        assert!(
            state
                .metrics()
                .render()
                .contains("tufa_blob_verification_failures_total 3\n")
        );
    }

    #[tokio::test]
    async fn length_checked_stream() {
        let d = Sha256Digest::of(b"");
        let ok: Vec<_> = length_checked(chunks(&[b"ab", b"c"]), 3, d).collect().await;
        assert!(ok.iter().all(Result::is_ok));
        let short: Vec<_> = length_checked(chunks(&[b"ab"]), 3, d).collect().await;
        assert!(short.last().unwrap().is_err());
        let long: Vec<_> = length_checked(chunks(&[b"abcd"]), 3, d).collect().await;
        assert!(long.last().unwrap().is_err());
    }
}
