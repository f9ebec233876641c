//! `/simple/`, `/simple/<project>/`, and the hash-prefixed page targets
//! `/simple/<project>/<sha256>.index.html|json` (see the crate docs).

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt as _, stream};
use object_store::ObjectStoreExt as _;
use tufa_pypi::{ProjectName, Sha256Digest};
use tufa_store::BlobStore;
use tufa_tree::{BlobRef, Page};

use crate::AppState;
use crate::error::ApiError;
use crate::files::{IMMUTABLE, whole_blob};
use crate::negotiate::{Coding, Format, accept_encoding, choose, choose_coding};

/// `Cache-Control` of pages and of the root list.
const PAGE_CACHE_CONTROL: &str = "max-age=60, public";
/// Names per chunk of the streamed root list.
const ROOT_BATCH: usize = 512;
/// `Content-Security-Policy` of hash-prefixed pages: any stored blob can be asked for under a
/// page's name, so none may run as a document in a browser. (pip, uv and TUF clients ignore it.)
const HASHED_PAGE_CSP: &str = "default-src 'none'; sandbox";

const ROOT_HTML_HEAD: &str = "<!DOCTYPE html><html><head><meta name=\"pypi:repository-version\" content=\"1.4\">\
<title>Simple index</title></head><body>\n";
const ROOT_HTML_TAIL: &str = "</body></html>\n";
const ROOT_JSON_HEAD: &str = "{\"meta\":{\"api-version\":\"1.4\"},\"projects\":[";
const ROOT_JSON_TAIL: &str = "]}";

fn format_for(headers: &HeaderMap, uri: &Uri) -> Result<Format, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    choose(accept, uri.query()).ok_or(ApiError::NotAcceptable)
}

/// A 301 to `path`, keeping the request's query string.
fn redirect(path: &str, uri: &Uri) -> Response {
    let location = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    match HeaderValue::from_str(&location) {
        Ok(value) => (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, value)]).into_response(),
        Err(_) => {
            let fallback = HeaderValue::from_str(path).unwrap_or(HeaderValue::from_static("/simple/"));
            (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, fallback)]).into_response()
        }
    }
}

pub(crate) async fn root_without_slash(uri: Uri) -> Response {
    redirect("/simple/", &uri)
}

/// The list of all published projects, streamed straight from the store's listing (never
/// collected, so it stays cheap with hundreds of thousands of projects), in the listing's order:
/// lexicographic on S3 and in memory, directory order on local disk (object_store does not sort
/// local listings). Chunked: there is no `Content-Length`. The first name is read before the response starts, so a store that does
/// not answer gives a 503 rather than a truncated 200; a failure later in the listing aborts
/// the body.
pub(crate) async fn root(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = format_for(&headers, &uri)?;
    let response = Response::builder()
        .header(header::CONTENT_TYPE, format.content_type())
        .header(header::VARY, "Accept")
        .header(header::CACHE_CONTROL, PAGE_CACHE_CONTROL);
    if method == Method::HEAD {
        // A body of unknown length, so no `Content-Length: 0` is invented: GET is chunked.
        let nothing = stream::empty::<Result<Bytes, std::io::Error>>();
        return response
            .body(Body::from_stream(nothing))
            .map_err(|e| ApiError::Internal(e.to_string()));
    }

    // Fused: after an empty listing the rest must not poll the finished stream again.
    // From the current generation's list (memory) when polling, else the store's listing.
    let names = match state.current().projects(state.store()).await? {
        Some(list) => {
            let iter = (0..list.len()).filter_map(move |i| list.get(i).cloned().map(Ok));
            stream::iter(iter).boxed()
        }
        None => tufa_tree::published_projects(state.store()),
    };
    let mut names = names.fuse();
    let first = names.next().await.transpose().map_err(ApiError::from_tree)?;
    let json = format == Format::Json;
    let rest = names
        .ready_chunks(ROOT_BATCH)
        .map(move |batch| {
            let mut chunk = String::with_capacity(batch.len() * 48);
            for name in batch {
                match name {
                    Ok(name) => push_entry(&mut chunk, &name, json, true),
                    Err(e) => {
                        tracing::error!(error = %e, "listing published projects failed mid-stream");
                        return Err(std::io::Error::other("listing published projects failed"));
                    }
                }
            }
            Ok(Bytes::from(chunk))
        })
        .boxed();
    let (head, tail) = if json {
        (ROOT_JSON_HEAD, ROOT_JSON_TAIL)
    } else {
        (ROOT_HTML_HEAD, ROOT_HTML_TAIL)
    };
    let mut start = String::from(head);
    if let Some(first) = &first {
        push_entry(&mut start, first, json, false);
    }
    let body = stream::once(async move { Ok(Bytes::from(start)) })
        .chain(rest)
        .chain(stream::once(
            async move { Ok(Bytes::from_static(tail.as_bytes())) },
        ));
    response
        .body(Body::from_stream(body))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Appends one project to the root list. Normalised names are `[a-z0-9-]` only, so they need
/// no escaping in HTML or JSON.
fn push_entry(out: &mut String, name: &ProjectName, json: bool, comma: bool) {
    let name = name.as_str();
    if json {
        if comma {
            out.push(',');
        }
        out.push_str("{\"name\":\"");
        out.push_str(name);
        out.push_str("\"}");
    } else {
        out.push_str("<a href=\"");
        out.push_str(name);
        out.push_str("/\">");
        out.push_str(name);
        out.push_str("</a><br/>\n");
    }
}

pub(crate) async fn project_without_slash(path: Result<Path<String>, PathRejection>, uri: Uri) -> Response {
    let Ok(Path(raw)) = path else {
        return ApiError::NotFound.into_response();
    };
    match ProjectName::new(&raw) {
        Ok(name) => redirect(&format!("/simple/{name}/"), &uri),
        Err(_) => ApiError::NotFound.into_response(),
    }
}

/// One project's page: the pre-rendered HTML or JSON blob its manifest names, or its zstd or
/// gzip variant as `Accept-Encoding` chooses (see `choose_coding`), verified before sending.
/// The ETag is the raw page's sha256, suffixed `-zstd` or `-gzip` for a variant.
pub(crate) async fn project(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Ok(Path(raw)) = path else {
        return Err(ApiError::NotFound);
    };
    let name = ProjectName::new(&raw).map_err(|_| ApiError::NotFound)?;
    if name.as_str() != raw {
        return Ok(redirect(&format!("/simple/{name}/"), &uri));
    }
    let format = format_for(&headers, &uri)?;
    let manifest = state.manifest(&name).await?.ok_or(ApiError::NotFound)?;
    let page = match format {
        Format::Json => &manifest.json,
        Format::Html | Format::TextHtml => &manifest.html,
    };
    let raw_hex = page.raw.sha256.to_hex();
    let chosen = choose_coding(accept_encoding(&headers), |c| variant(page, c).is_some())
        .and_then(|coding| Some((coding, variant(page, coding)?)));
    let (blob, etag) = match chosen {
        Some((coding, blob)) => (blob, format!("\"{raw_hex}-{}\"", coding.as_str())),
        None => (page.raw, format!("\"{raw_hex}\"")),
    };

    let mut builder = Response::builder()
        .header(header::VARY, "Accept, Accept-Encoding")
        .header(header::CACHE_CONTROL, PAGE_CACHE_CONTROL)
        .header(header::ETAG, &etag);
    match http_date_of(&manifest.published_at) {
        Some(date) => builder = builder.header(header::LAST_MODIFIED, date),
        None => {
            tracing::warn!(project = %name, published_at = %manifest.published_at, "manifest has an unreadable published_at")
        }
    }
    if if_none_match(&headers, &etag) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(|e| ApiError::Internal(e.to_string()));
    }
    builder = builder.header(header::CONTENT_TYPE, format.content_type());
    if let Some((coding, _)) = chosen {
        builder = builder.header(header::CONTENT_ENCODING, coding.as_str());
    }
    let body = if method == Method::HEAD {
        builder = builder.header(header::CONTENT_LENGTH, blob.len);
        Body::empty()
    } else {
        let data = verified_small(&state, &blob).await?;
        builder = builder.header(header::CONTENT_LENGTH, data.len());
        Body::from(data)
    };
    builder.body(body).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The page's stored variant in `coding`, if it has one.
fn variant(page: &Page, coding: Coding) -> Option<BlobRef> {
    match coding {
        Coding::Zstd => page.zstd,
        Coding::Gzip => page.gzip,
    }
}

/// A hash-prefixed page target, `/simple/<project>/<sha256>.index.html` or `….index.json`: the
/// page blob with that sha256, verified, never compressed, immutable. The project's current
/// pages are answered as they are; an older version of a page stays answerable while its blob
/// is stored, but only when it is small enough to verify whole (the page cache's largest entry)
/// and is a page of this project in the format asked for (see `is_page_of`), so no other
/// stored blob (a file of a quarantined project, say) can be fetched under a page's name.
pub(crate) async fn hashed_page(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Ok(Path((raw, file))) = path else {
        return Err(ApiError::NotFound);
    };
    let name = ProjectName::new(&raw).map_err(|_| ApiError::NotFound)?;
    if name.as_str() != raw {
        return Err(ApiError::NotFound);
    }
    let (digest, format) = parse_hashed_page(&file).ok_or(ApiError::NotFound)?;
    let manifest = state.manifest(&name).await?.ok_or(ApiError::NotFound)?;
    let current = match format {
        Format::Json => manifest.json.raw.sha256 == digest,
        Format::Html | Format::TextHtml => manifest.html.raw.sha256 == digest,
    };
    let etag = etag_of(&digest);
    let builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, IMMUTABLE)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, HASHED_PAGE_CSP);
    let mut cached = state.cache().get(&digest);
    let len = match &cached {
        Some(data) => data.len() as u64,
        None => {
            state
                .store()
                .object_store()
                .head(&BlobStore::key_for(&digest))
                .await
                .map_err(|e| ApiError::from_object_store(&digest, e))?
                .size
        }
    };
    if !current {
        let data = match cached {
            Some(data) => data,
            None if len <= state.cache().max_entry_bytes() => {
                verified_small(&state, &BlobRef { sha256: digest, len }).await?
            }
            None => return Err(ApiError::NotFound),
        };
        if !is_page_of(&data, &name, format) {
            return Err(ApiError::NotFound);
        }
        cached = Some(data);
    }
    if if_none_match(&headers, &etag) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(|e| ApiError::Internal(e.to_string()));
    }
    let builder = builder.header(header::CONTENT_TYPE, format.content_type());
    let (len, body) = if method == Method::HEAD {
        (len, Body::empty())
    } else if let Some(data) = cached {
        (data.len() as u64, Body::from(data))
    } else if len <= state.cache().max_entry_bytes() {
        let data = verified_small(&state, &BlobRef { sha256: digest, len }).await?;
        (data.len() as u64, Body::from(data))
    } else {
        // Too large to hold (a huge page, or some other blob asked for by its digest):
        // streamed, the last chunk held back until the digest matched.
        let (version, body) = whole_blob(&state, &digest).await?;
        (version.len, body)
    };
    builder
        .header(header::CONTENT_LENGTH, len)
        .body(body)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Whether `data` is a page of `project` in `format`: a JSON page whose top-level `name`
/// normalises to the project, or an HTML page whose `<title>Links for …</title>` does (both as
/// tufa-publish renders them, PEP 503 / PEP 691).
fn is_page_of(data: &[u8], project: &ProjectName, format: Format) -> bool {
    /// How far into an HTML page its title is looked for.
    const TITLE_WITHIN: usize = 64 * 1024;
    let name = match format {
        Format::Json => {
            #[derive(serde::Deserialize)]
            struct Named {
                name: String,
            }
            match serde_json::from_slice::<Named>(data) {
                Ok(page) => page.name,
                Err(_) => return false,
            }
        }
        Format::Html | Format::TextHtml => {
            let head = data.get(..data.len().min(TITLE_WITHIN)).unwrap_or_default();
            let head = String::from_utf8_lossy(head);
            let Some((_, rest)) = head.split_once("<title>Links for ") else {
                return false;
            };
            let Some((title, _)) = rest.split_once("</title>") else {
                return false;
            };
            title.trim().to_owned()
        }
    };
    ProjectName::new(&name).is_ok_and(|n| n == *project)
}

/// `<sha256>.index.html` or `<sha256>.index.json`.
fn parse_hashed_page(file: &str) -> Option<(Sha256Digest, Format)> {
    let (digest, base) = split_hash_prefix(file)?;
    let format = match base {
        "index.html" => Format::TextHtml,
        "index.json" => Format::Json,
        _ => return None,
    };
    Some((digest, format))
}

/// Splits a path segment `<64 lowercase hex>.<rest>` (the form TUF clients request targets in
/// with consistent snapshots) into the digest and a non-empty `rest`.
pub(crate) fn split_hash_prefix(segment: &str) -> Option<(Sha256Digest, &str)> {
    let hex = segment.get(..64)?;
    let rest = segment.get(64..)?.strip_prefix('.')?;
    if rest.is_empty() || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    Some((hex.parse().ok()?, rest))
}

/// A small blob named by the published tree (a page or METADATA), re-hashed before use and
/// cached once verified. A corrupt blob is counted, logged and answered with a 500 carrying
/// none of its bytes.
pub(crate) async fn verified_small(state: &AppState, blob: &BlobRef) -> Result<Bytes, ApiError> {
    if let Some(data) = state.cache().get(&blob.sha256) {
        return Ok(data);
    }
    match state.store().get_verified(&blob.sha256).await {
        Ok(data) => {
            state.cache().insert_verified(blob.sha256, data.clone());
            Ok(data)
        }
        Err(tufa_store::StoreError::Corrupt { digest, actual }) => {
            state.metrics().verification_failed();
            tracing::error!(digest = %digest, actual = %actual, "stored blob does not match its digest; not served");
            Err(ApiError::Corrupt)
        }
        Err(e) => Err(ApiError::from_store_dangling(e)),
    }
}

/// Whether `If-None-Match` names `etag` (weak comparison) or is `*`.
pub(crate) fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// An RFC 3339 timestamp as an HTTP date.
fn http_date_of(rfc3339: &str) -> Option<String> {
    let ts: jiff::Timestamp = rfc3339.parse().ok()?;
    Some(httpdate::fmt_http_date(std::time::SystemTime::from(ts)))
}

/// The strong ETag of a blob.
pub(crate) fn etag_of(digest: &Sha256Digest) -> String {
    format!("\"{}\"", digest.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(
            http_date_of("2026-01-02T03:04:05Z").as_deref(),
            Some("Fri, 02 Jan 2026 03:04:05 GMT")
        );
        assert_eq!(http_date_of("yesterday"), None);
    }

    #[test]
    fn hash_prefixes() {
        let d = Sha256Digest::of(b"x");
        let hex = d.to_hex();
        assert_eq!(split_hash_prefix(&format!("{hex}.a.whl")), Some((d, "a.whl")));
        assert_eq!(
            parse_hashed_page(&format!("{hex}.index.html")),
            Some((d, Format::TextHtml))
        );
        assert_eq!(
            parse_hashed_page(&format!("{hex}.index.json")),
            Some((d, Format::Json))
        );
        for bad in [
            format!("{hex}."),
            format!("{hex}index.html"),
            format!("{}.index.html", hex.to_uppercase()),
            format!("{}.index.html", &hex[1..]),
            format!("{hex}0.index.html"),
            format!("x{}.index.html", &hex[1..]),
            "index.html".to_owned(),
            format!("{}é.index.html", &hex[..63]),
        ] {
            assert_eq!(split_hash_prefix(&bad), None, "{bad}");
            assert_eq!(parse_hashed_page(&bad), None, "{bad}");
        }
        for bad in [
            format!("{hex}.index.htm"),
            format!("{hex}.index.html.bak"),
            format!("{hex}.index.JSON"),
        ] {
            assert_eq!(parse_hashed_page(&bad), None, "{bad}");
        }
    }

    #[test]
    fn etag_matching() {
        let mut headers = HeaderMap::new();
        assert!(!if_none_match(&headers, "\"a\""));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"b\", W/\"a\""));
        assert!(if_none_match(&headers, "\"a\""));
        assert!(!if_none_match(&headers, "\"c\""));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&headers, "\"c\""));
    }
}
