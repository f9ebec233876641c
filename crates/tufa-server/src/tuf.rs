//! `/tuf/<file>`: the TUF metadata the writer published, and the timestamp's expiry for
//! `/readyz` and `/metrics`.
//!
//! # Not verified here, and why that is fine
//!
//! Metadata files are named objects under [`tufa_tree::TUF_DIR`], not blobs: their names carry a
//! version, not a digest, so the server has nothing to check their bytes against and serves
//! them as stored. TUF metadata is self-verifying: a client checks each file's signatures
//! against the keys of the root it trusts (each new root against the previous one), the
//! timestamp pins the snapshot, and the snapshot pins the version of every targets role. A
//! corrupt or altered file is rejected by the client; the worst a broken store (or server) can
//! do here is deny service or hold back updates until the timestamp expires.
//!
//! # Names and caching
//!
//! Only the names a consistent-snapshot repository publishes are answered:
//! `<N>.root.json`, `<N>.snapshot.json`, `<N>.targets.json`, `<N>.bins.json`,
//! `<N>.bin-<1 to 4 lowercase hex>.json` (N a decimal version without leading zeros) and
//! `timestamp.json`. Anything else is a 404 before the store is asked, so a store key is never
//! built from anything but such a name. A versioned file never changes once published, so it
//! is `immutable`; `timestamp.json` changes with every publish and is `no-cache` (clients and
//! caches revalidate with its `ETag`, the sha256 of its bytes). A versioned file of at least
//! 1 KiB kept in the reader's memory gets gzip and zstd variants, made once (see the `current`
//! module) and chosen by `Accept-Encoding` like a page's (`ETag` `"<sha256>-gzip"` or
//! `-zstd`, `Vary: Accept-Encoding`); clients hash and check the length of the decoded bytes,
//! which are the stored ones. `timestamp.json` (about 500 bytes) is never compressed. A 404
//! is `no-cache` too:
//! clients probe `<N+1>.root.json` for a root rotation, and a cached 404 would hide the next
//! root once it is published.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp as Instant;
use tufa_store::BlobStore;

use crate::AppState;
use crate::error::ApiError;
use crate::negotiate::{Coding, accept_encoding, choose_coding};
use crate::pages::{etag_of, if_none_match};

/// The one metadata file without a version in its name.
const TIMESTAMP_FILE: &str = "timestamp.json";
/// `Cache-Control` of versioned metadata: never rewritten once published.
const VERSIONED_CACHE_CONTROL: &str = "max-age=31536000, public, immutable";
/// `Cache-Control` of `timestamp.json` and of 404s: always revalidate.
const NO_CACHE: &str = "no-cache";
/// Longest version number in a file name: u64 has 20 decimal digits.
const MAX_VERSION_DIGITS: usize = 20;
/// Longest hex suffix of a bin name (`bin-0000` … `bin-ffff`: up to 65,536 bins).
const MAX_BIN_HEX: usize = 4;

/// The kinds of name `/tuf/` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetadataFile {
    /// `timestamp.json`
    Timestamp,
    /// `<N>.<role>.json`
    Versioned,
}

/// Checks a requested file name: exactly `timestamp.json`, or
/// `^[1-9][0-9]{0,19}\.(root|snapshot|targets|bins|bin-[0-9a-f]{1,4})\.json$`.
fn classify(name: &str) -> Option<MetadataFile> {
    if name == TIMESTAMP_FILE {
        return Some(MetadataFile::Timestamp);
    }
    let (version, rest) = name.split_once('.')?;
    let version_ok = (1..=MAX_VERSION_DIGITS).contains(&version.len())
        && version.bytes().all(|b| b.is_ascii_digit())
        && !version.starts_with('0');
    let role = rest.strip_suffix(".json")?;
    let role_ok = match role {
        "root" | "snapshot" | "targets" | "bins" => true,
        other => other.strip_prefix("bin-").is_some_and(|hex| {
            (1..=MAX_BIN_HEX).contains(&hex.len())
                && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        }),
    };
    (version_ok && role_ok).then_some(MetadataFile::Versioned)
}

/// `GET|HEAD /tuf/<file>`.
pub(crate) async fn metadata_file(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match serve_metadata(&state, path, &method, &headers).await {
        Ok(response) => response,
        Err(ApiError::NotFound) => {
            let mut response = ApiError::NotFound.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn serve_metadata(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let Ok(Path(name)) = path else {
        return Err(ApiError::NotFound);
    };
    let kind = classify(&name).ok_or(ApiError::NotFound)?;
    // The sha256 comes with the bytes: hashed once for a cached versioned file (a 490 KB
    // snapshot.json is not re-hashed per request), per read for timestamp.json.
    let file = state
        .current()
        .tuf_file(state.store(), &name)
        .await?
        .ok_or(ApiError::NotFound)?;
    let variant = |coding: Coding| match coding {
        Coding::Gzip => file.gzip.as_ref(),
        Coding::Zstd => file.zstd.as_ref(),
    };
    let chosen = choose_coding(accept_encoding(headers), |c| variant(c).is_some())
        .and_then(|c| Some((c, variant(c)?)));
    let (data, etag) = match chosen {
        Some((coding, data)) => (data, format!("\"{}-{}\"", file.digest, coding.as_str())),
        None => (&file.data, etag_of(&file.digest)),
    };
    let cache_control = match kind {
        MetadataFile::Timestamp => NO_CACHE,
        MetadataFile::Versioned => VERSIONED_CACHE_CONTROL,
    };
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, cache_control);
    if kind == MetadataFile::Versioned {
        // A variant may appear once the file has been compressed: caches must key on it.
        builder = builder.header(header::VARY, "Accept-Encoding");
    }
    let (builder, body) = if if_none_match(headers, &etag) {
        (builder.status(StatusCode::NOT_MODIFIED), Body::empty())
    } else {
        let mut builder = builder
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, data.len());
        if let Some((coding, _)) = chosen {
            builder = builder.header(header::CONTENT_ENCODING, coding.as_str());
        }
        if *method == Method::HEAD {
            (builder, Body::empty())
        } else {
            (builder, Body::from(data.clone()))
        }
    };
    builder.body(body).map_err(|e| ApiError::Internal(e.to_string()))
}

/// When the published `timestamp.json` expires; `Ok(None)` when there is none (a mirror that
/// publishes unsigned). `Err` says why it could not be read or parsed (for the log).
pub(crate) async fn timestamp_expiry(store: &BlobStore) -> Result<Option<Instant>, String> {
    let key = tufa_tree::tuf_key(TIMESTAMP_FILE);
    let Some(data) = store
        .get_named(&key)
        .await
        .map_err(|e| format!("cannot read {key}: {e}"))?
    else {
        return Ok(None);
    };
    // Only the expiry is needed here, and the server must not link the signing crate
    // (DESIGN.md), so this reads the two fields it needs, strictly: `_type` and `expires` in
    // TUF's whole-second `YYYY-MM-DDTHH:MM:SSZ` form. Signatures are the clients' business.
    let doc: serde_json::Value =
        serde_json::from_slice(&data).map_err(|e| format!("{key}: not JSON: {e}"))?;
    let signed = &doc["signed"];
    if signed["_type"] != "timestamp" {
        return Err(format!("{key}: `signed._type` is not \"timestamp\""));
    }
    let expires = signed["expires"]
        .as_str()
        .ok_or_else(|| format!("{key}: no `signed.expires`"))?;
    let whole_seconds_utc =
        expires.len() == 20 && expires.ends_with('Z') && expires.as_bytes().get(10) == Some(&b'T');
    if !whole_seconds_utc {
        return Err(format!(
            "{key}: `expires` `{expires}` is not YYYY-MM-DDTHH:MM:SSZ"
        ));
    }
    let at: Instant = expires
        .parse()
        .map_err(|e| format!("{key}: `expires` `{expires}`: {e}"))?;
    Ok(Some(at))
}

/// Whole seconds from `now` until `expires`; zero or negative once expired (TUF clients treat
/// metadata as expired from the `expires` instant on).
pub(crate) fn seconds_until(expires: Instant, now: Instant) -> i64 {
    expires.as_second() - now.as_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        for ok in [
            "1.root.json",
            "12.root.json",
            "3.snapshot.json",
            "3.targets.json",
            "1.bins.json",
            "7.bin-0.json",
            "7.bin-3fff.json",
            "18446744073709551615.bin-ffff.json",
            "99999999999999999999.root.json",
        ] {
            assert_eq!(classify(ok), Some(MetadataFile::Versioned), "{ok}");
        }
        assert_eq!(classify("timestamp.json"), Some(MetadataFile::Timestamp));
        for bad in [
            "",
            "root.json",
            "0.root.json",
            "01.root.json",
            "x.root.json",
            "-1.root.json",
            "+1.root.json",
            "1.root.json.bak",
            "1.root.jsonx",
            "1.root",
            "1..root.json",
            "1.timestamp.json",
            "2.timestamp.json",
            "timestamp.json.bak",
            "Timestamp.json",
            "1.ROOT.json",
            "1.bin.json",
            "1.bin-.json",
            "1.bin-zzzz.json",
            "1.bin-3FFF.json",
            "1.bin-00000.json",
            "1.bin-0.json.json",
            "1.other.json",
            "100000000000000000000.root.json",
            "../1.root.json",
            "..",
            "1.root.json/",
            "1.root.json\0",
            "１.root.json",
        ] {
            assert_eq!(classify(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn seconds_until_expiry() {
        let at = |s: i64| Instant::from_second(s).unwrap_or(Instant::UNIX_EPOCH);
        assert_eq!(seconds_until(at(100), at(40)), 60);
        assert_eq!(seconds_until(at(100), at(100)), 0);
        assert_eq!(seconds_until(at(100), at(160)), -60);
    }
}
