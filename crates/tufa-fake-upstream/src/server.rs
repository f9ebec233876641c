//! HTTP routing and fault-aware response construction.

use std::io;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream;

use crate::state::{FaultCheck, State};
use crate::util::normalize_name;
use crate::{Fault, Shared, lock, pages, xmlrpc};

const JSON_CT: &str = "application/vnd.pypi.simple.v1+json";
const HTML_CT: &str = "text/html; charset=utf-8";
const SERIAL_HEADER: &str = "x-pypi-last-serial";
/// Upper bound for XML-RPC request bodies.
const MAX_XMLRPC_BODY: usize = 1 << 20;

pub(crate) fn router(shared: Shared) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

async fn handle(AxState(shared): AxState<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let wants_json = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(JSON_CT));
    {
        let mut s = lock(&shared);
        s.counters.requests += 1;
        if s.record_requests {
            s.requests.push(format!("{method} {path_and_query}"));
        }
    }
    if let Some(canned) = take_route(&shared, &path) {
        return canned_response(canned);
    }

    if path == "/pypi" {
        if method != Method::POST {
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        let body = match axum::body::to_bytes(req.into_body(), MAX_XMLRPC_BODY).await {
            Ok(b) => b,
            Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        };
        let text = String::from_utf8_lossy(&body);
        let mut s = lock(&shared);
        s.counters.xmlrpc += 1;
        let out = xmlrpc::handle(&s, &text);
        return ([(header::CONTENT_TYPE, "text/xml")], out).into_response();
    }
    if let Some(rest) = path.strip_prefix("/_fake/") {
        return admin(&shared, rest, &method);
    }

    if method != Method::GET && method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }

    if path == "/simple" {
        let serial = lock(&shared).serial;
        return redirect("/simple/", serial);
    }
    if path == "/simple/" {
        return index(&shared, wants_json);
    }
    if let Some(rest) = path.strip_prefix("/simple/") {
        return project(&shared, rest, wants_json);
    }
    if let Some(rest) = path.strip_prefix("/files/") {
        return file(&shared, rest, false, method == Method::GET);
    }
    if let Some(rest) = path.strip_prefix("/packages/") {
        return file(&shared, rest, true, method == Method::GET);
    }
    if let Some(name) = path
        .strip_prefix("/pypi/")
        .and_then(|r| r.strip_suffix("/json"))
        .filter(|n| !n.is_empty() && !n.contains('/'))
    {
        return legacy_json(&shared, name);
    }
    not_found()
}

/// `GET /pypi/<project>/json`: PyPI's legacy JSON API, any spelling of the name.
fn legacy_json(shared: &Shared, name: &str) -> Response {
    let mut s = lock(shared);
    s.counters.legacy_json += 1;
    let norm = normalize_name(name);
    let Some(serial) = s.projects.get(&norm).map(|p| p.last_serial) else {
        return not_found();
    };
    let Some(body) = pages::legacy_json(&s, &norm) else {
        return not_found();
    };
    drop(s);
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(SERIAL_HEADER, HeaderValue::from(serial));
    r
}

/// `/_fake/…`: what a benchmark script needs from the upstream itself.
fn admin(shared: &Shared, rest: &str, method: &Method) -> Response {
    let json = |v: serde_json::Value| ([(header::CONTENT_TYPE, "application/json")], v.to_string());
    let get = method == Method::GET;
    let post = method == Method::POST;
    match rest {
        "stats" if get => {
            let s = lock(shared);
            let c = s.counters;
            json(serde_json::json!({
                "requests": c.requests,
                "simple_pages": c.simple_pages,
                "legacy_json": c.legacy_json,
                "xmlrpc": c.xmlrpc,
                "file_downloads": s.file_downloads,
                "metadata_downloads": c.metadata_downloads,
                "file_bytes": c.file_bytes,
                "last_serial": s.serial,
                "projects": s.projects.len(),
                "files": s.files.len(),
                "epoch": s.generator.as_ref().map(|g| g.epoch()),
            }))
            .into_response()
        }
        "manifest" if get => {
            let mut out = String::new();
            for (path, sha256, size) in lock(shared).manifest() {
                out.push_str(&format!("{sha256} {size} {path}\n"));
            }
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], out).into_response()
        }
        "mutate" if post => match crate::generate::mutate(&mut lock(shared)) {
            Some(report) => json(report.to_json()).into_response(),
            None => (
                StatusCode::CONFLICT,
                "not a generated upstream: start fake-upstream with --generate to mutate it\n",
            )
                .into_response(),
        },
        "stats" | "manifest" | "mutate" => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        _ => not_found(),
    }
}

/// The canned answer for `path`, counting down its `times`.
fn take_route(shared: &Shared, path: &str) -> Option<crate::Canned> {
    let mut s = lock(shared);
    let canned = s.routes.get_mut(path)?;
    let out = canned.clone();
    if let Some(n) = canned.times.as_mut() {
        *n = n.saturating_sub(1);
        if *n == 0 {
            s.routes.remove(path);
        }
    }
    Some(out)
}

fn canned_response(c: crate::Canned) -> Response {
    let body = Bytes::from(c.body);
    let mut r = match c.drip {
        Some((chunk, delay_ms)) => {
            let chunk = chunk.max(1);
            let delay = Duration::from_millis(delay_ms);
            let s = stream::unfold(0usize, move |offset| {
                let body = body.clone();
                async move {
                    if offset >= body.len() {
                        return None;
                    }
                    if offset > 0 {
                        tokio::time::sleep(delay).await;
                    }
                    let end = (offset + chunk).min(body.len());
                    Some((Ok::<Bytes, io::Error>(body.slice(offset..end)), end))
                }
            });
            Response::new(Body::from_stream(s))
        }
        None => Response::new(Body::from(body)),
    };
    *r.status_mut() = StatusCode::from_u16(c.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in &c.headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 Not Found\n").into_response()
}

fn service_unavailable(serial: Option<u64>) -> Response {
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable\n").into_response();
    if let Some(s) = serial {
        r.headers_mut().insert(SERIAL_HEADER, HeaderValue::from(s));
    }
    r
}

fn redirect(location: &str, serial: u64) -> Response {
    let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(SERIAL_HEADER, HeaderValue::from(serial));
    r
}

fn index(shared: &Shared, wants_json: bool) -> Response {
    let s = lock(shared);
    let json = wants_json && !s.html_only;
    let (ct, body) = if json {
        (JSON_CT, pages::index_json(&s))
    } else {
        (HTML_CT, pages::index_html(&s))
    };
    simple_response(ct, Bytes::from(body), s.serial, None)
}

fn project(shared: &Shared, rest: &str, wants_json: bool) -> Response {
    let mut guard = lock(shared);
    let s: &mut State = &mut guard;
    let (name, has_slash) = match rest.strip_suffix('/') {
        Some(n) => (n, true),
        None => (rest, false),
    };
    if name.is_empty() || name.contains('/') {
        let mut r = not_found();
        r.headers_mut().insert(SERIAL_HEADER, HeaderValue::from(s.serial));
        return r;
    }
    let norm = normalize_name(name);
    if !has_slash || name != norm {
        return redirect(&format!("/simple/{norm}/"), s.serial);
    }
    let Some(serial) = s.projects.get(&norm).map(|p| p.last_serial) else {
        let mut r = not_found();
        r.headers_mut().insert(SERIAL_HEADER, HeaderValue::from(s.serial));
        return r;
    };
    let fault = match State::check_fault(&mut s.project_faults, &norm) {
        FaultCheck::ServerError => return service_unavailable(Some(serial)),
        FaultCheck::None => None,
        FaultCheck::Active(f) => Some(f),
    };
    s.counters.simple_pages += 1;
    let json = wants_json && !s.html_only;
    let (mut ct, body) = if json {
        let mut body = pages::project_json(s, &norm, fault.as_ref());
        if let Some(t) = s.page_transforms.get(&norm)
            && let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&body)
        {
            (t.0)(&mut v);
            body = v.to_string();
        }
        (JSON_CT, body)
    } else {
        (HTML_CT, pages::project_html(s, &norm, fault.as_ref()))
    };
    if matches!(fault, Some(Fault::WrongContentType)) {
        ct = "text/plain; charset=utf-8";
    }
    drop(guard);
    simple_response(ct, Bytes::from(body), serial, fault.as_ref())
}

fn simple_response(ct: &str, body: Bytes, serial: u64, fault: Option<&Fault>) -> Response {
    let mut r = body_response(body, fault);
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(ct) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(SERIAL_HEADER, HeaderValue::from(serial));
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

/// A file at `/files/<2 hex>/<2 hex>/<name>` or, `pypi_layout`, at
/// `/packages/<2 hex>/<2 hex>/<60 hex>/<name>` (the directories must match its sha256).
fn file(shared: &Shared, rest: &str, pypi_layout: bool, is_get: bool) -> Response {
    let mut guard = lock(shared);
    let s: &mut State = &mut guard;
    let parts = if pypi_layout { 4 } else { 3 };
    let segments: Vec<&str> = rest.splitn(parts, '/').collect();
    if segments.len() != parts {
        return not_found();
    }
    let filename = segments[parts - 1];
    let dir = format!("{}/", segments[..parts - 1].join("/"));
    let is_metadata = filename.ends_with(".metadata");
    if is_get && !is_metadata {
        s.file_downloads += 1;
    }
    if is_get && is_metadata {
        s.counters.metadata_downloads += 1;
    }
    let fault = match State::check_fault(&mut s.file_faults, filename) {
        FaultCheck::ServerError => return service_unavailable(None),
        FaultCheck::None => None,
        FaultCheck::Active(f) => Some(f),
    };
    let Some((f, body)) = s.lookup(filename) else {
        return not_found();
    };
    let expected_dir = if pypi_layout { f.pypi_dir() } else { f.dir() };
    if expected_dir != dir {
        return not_found();
    }
    let ct = if matches!(fault, Some(Fault::WrongContentType)) {
        "text/html; charset=utf-8"
    } else {
        "application/octet-stream"
    };
    let mut r = match fault {
        None => {
            if is_get && !is_metadata {
                s.counters.file_bytes += body.len();
            }
            drop(guard);
            let len = body.len();
            let mut r = Response::new(body.into_http());
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            r
        }
        Some(fault) => {
            drop(guard);
            let bytes = body.to_bytes();
            let bytes = if matches!(fault, Fault::HashMismatch) && !bytes.is_empty() {
                let mut v = bytes.to_vec();
                let mid = v.len() / 2;
                v[mid] ^= 0xff;
                Bytes::from(v)
            } else {
                bytes
            };
            body_response(bytes, Some(&fault))
        }
    };
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

/// Builds a 200 response for `body`, applying the transport-level faults
/// (`Truncated`, `SlowBody`). `Content-Length` is always the full size.
fn body_response(body: Bytes, fault: Option<&Fault>) -> Response {
    let len = body.len();
    let mut r = match fault {
        Some(Fault::Truncated) => {
            let half = body.slice(..len / 2);
            let s = stream::unfold(0u8, move |step| {
                let half = half.clone();
                async move {
                    match step {
                        0 => Some((Ok::<Bytes, io::Error>(half), 1)),
                        1 => {
                            // Give hyper a moment to flush the first half
                            // before the connection is torn down.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Some((Err(io::Error::other("fake upstream: truncated body (fault)")), 2))
                        }
                        _ => None,
                    }
                }
            });
            Response::new(Body::from_stream(s))
        }
        Some(Fault::SlowBody { delay_ms }) => {
            let delay = Duration::from_millis(*delay_ms);
            let s = stream::unfold(0usize, move |offset| {
                let body = body.clone();
                async move {
                    if offset >= body.len() {
                        return None;
                    }
                    if offset > 0 {
                        tokio::time::sleep(delay).await;
                    }
                    let end = (offset + 1024).min(body.len());
                    Some((Ok::<Bytes, io::Error>(body.slice(offset..end)), end))
                }
            });
            Response::new(Body::from_stream(s))
        }
        _ => Response::new(Body::from(body)),
    };
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}
