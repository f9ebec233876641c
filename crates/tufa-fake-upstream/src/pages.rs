//! Simple Repository API page rendering (PEP 503 HTML, PEP 691/700 JSON).

use serde_json::{Value, json};

use crate::state::State;
use crate::util::{html_escape, sha256_hex};
use crate::{Fault, NUL_FILENAME, TRAVERSAL_FILENAME};

/// One file link on a project page, after faults were applied.
struct Row {
    filename: String,
    /// Path below the server root, e.g. `files/ab/cd/x.whl`.
    path: String,
    sha256: String,
    requires_python: Option<String>,
    yanked: Option<String>,
    size: u64,
    upload_time: String,
    core_metadata: Option<String>,
}

fn rows(state: &State, norm: &str, fault: Option<&Fault>) -> Vec<Row> {
    let mut out = Vec::new();
    let Some(p) = state.projects.get(norm) else {
        return out;
    };
    for r in &p.releases {
        for name in &r.files {
            let Some(f) = state.files.get(name) else {
                continue;
            };
            let mut size = f.body.len();
            let mut sha256 = f.sha256.clone();
            let file_fault = state.file_faults.get(name);
            if matches!(file_fault, Some(Fault::WrongSize)) || matches!(fault, Some(Fault::WrongSize)) {
                size += 1;
            }
            if matches!(fault, Some(Fault::HashMismatch)) {
                sha256 = corrupt_hex(&sha256);
            }
            out.push(Row {
                filename: name.clone(),
                path: state.file_path(name, f),
                sha256,
                requires_python: r.spec.requires_python.clone(),
                yanked: r.spec.yanked.clone(),
                size,
                upload_time: f.upload_time.clone(),
                core_metadata: f.metadata_sha256.clone(),
            });
        }
    }
    let evil = match fault {
        Some(Fault::TraversalFilename) => Some(TRAVERSAL_FILENAME),
        Some(Fault::NulFilename) => Some(NUL_FILENAME),
        _ => None,
    };
    if let Some(evil) = evil {
        let sha = sha256_hex(b"evil");
        out.push(Row {
            filename: evil.to_string(),
            path: format!("files/{}/{}/evil-1.0-py3-none-any.whl", &sha[0..2], &sha[2..4]),
            sha256: sha,
            requires_python: None,
            yanked: None,
            size: 4,
            upload_time: crate::util::upload_time_for_serial(p.last_serial),
            core_metadata: None,
        });
    }
    out
}

/// Changes the last hex digit so the digest is still well-formed but wrong.
fn corrupt_hex(h: &str) -> String {
    let mut s = h.to_string();
    let last = if s.ends_with('0') { "1" } else { "0" };
    s.pop();
    s.push_str(last);
    s
}

pub(crate) fn project_json(state: &State, norm: &str, fault: Option<&Fault>) -> String {
    let Some(p) = state.projects.get(norm) else {
        return String::new();
    };
    let files: Vec<Value> = rows(state, norm, fault)
        .into_iter()
        .map(|r| {
            let mut o = serde_json::Map::new();
            o.insert("filename".into(), json!(r.filename));
            o.insert("url".into(), json!(format!("{}/{}", state.base_url, r.path)));
            o.insert("hashes".into(), json!({ "sha256": r.sha256 }));
            if let Some(rp) = r.requires_python {
                o.insert("requires-python".into(), json!(rp));
            }
            let yanked = match r.yanked {
                None => json!(false),
                Some(reason) if reason.is_empty() => json!(true),
                Some(reason) => json!(reason),
            };
            o.insert("yanked".into(), yanked);
            o.insert("size".into(), json!(r.size));
            o.insert("upload-time".into(), json!(r.upload_time));
            let cm = match r.core_metadata {
                Some(h) => json!({ "sha256": h }),
                None => json!(false),
            };
            o.insert("core-metadata".into(), cm.clone());
            o.insert("data-dist-info-metadata".into(), cm);
            Value::Object(o)
        })
        .collect();
    let versions: Vec<&str> = p.releases.iter().map(|r| r.spec.version.as_str()).collect();
    let doc = json!({
        // PyPI sends the project page serial as a string (and the root list's as numbers).
        "meta": { "api-version": "1.1", "_last-serial": p.last_serial.to_string() },
        "name": norm,
        "versions": versions,
        "files": files,
    });
    let body = doc.to_string();
    apply_body_fault(body, fault, true)
}

pub(crate) fn project_html(state: &State, norm: &str, fault: Option<&Fault>) -> String {
    let mut body = format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.1\">\n    <title>Links for {n}</title>\n  </head>\n  <body>\n    <h1>Links for {n}</h1>\n",
        n = html_escape(norm)
    );
    for r in rows(state, norm, fault) {
        let href = format!("../../{}#sha256={}", r.path, r.sha256);
        body.push_str(&format!("    <a href=\"{}\"", html_escape(&href)));
        if let Some(rp) = &r.requires_python {
            body.push_str(&format!(" data-requires-python=\"{}\"", html_escape(rp)));
        }
        if let Some(y) = &r.yanked {
            body.push_str(&format!(" data-yanked=\"{}\"", html_escape(y)));
        }
        if let Some(cm) = &r.core_metadata {
            body.push_str(&format!(
                " data-core-metadata=\"sha256={cm}\" data-dist-info-metadata=\"sha256={cm}\""
            ));
        }
        body.push_str(&format!(">{}</a><br/>\n", html_escape(&r.filename)));
    }
    body.push_str("  </body>\n</html>\n");
    apply_body_fault(body, fault, false)
}

pub(crate) fn index_json(state: &State) -> String {
    let projects: Vec<Value> = state
        .projects
        .values()
        .map(|p| json!({ "name": p.display, "_last-serial": p.last_serial }))
        .collect();
    json!({
        "meta": { "api-version": "1.1", "_last-serial": state.serial },
        "projects": projects,
    })
    .to_string()
}

pub(crate) fn index_html(state: &State) -> String {
    let mut body = String::from(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.1\">\n    <title>Simple index</title>\n  </head>\n  <body>\n",
    );
    for (norm, p) in &state.projects {
        body.push_str(&format!(
            "    <a href=\"/simple/{}/\">{}</a>\n",
            html_escape(norm),
            html_escape(&p.display)
        ));
    }
    body.push_str("  </body>\n</html>\n");
    body
}

/// Applies `MalformedJson` / `OversizedJson` to a rendered page.
fn apply_body_fault(mut body: String, fault: Option<&Fault>, is_json: bool) -> String {
    match fault {
        Some(Fault::MalformedJson) => {
            if is_json {
                // Drop the closing brace: syntactically broken.
                body.pop();
            } else {
                let mut cut = body.len() * 2 / 3;
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                body.truncate(cut);
            }
            body
        }
        Some(Fault::OversizedJson { bytes }) => {
            if is_json {
                const OVERHEAD: usize = "\"_padding\":\"\",".len();
                let pad = bytes.saturating_sub(body.len() + OVERHEAD);
                format!("{{\"_padding\":\"{}\",{}", " ".repeat(pad), &body[1..])
            } else {
                const OVERHEAD: usize = "<!--  -->\n".len();
                let pad = bytes.saturating_sub(body.len() + OVERHEAD);
                body.push_str(&format!("<!-- {} -->\n", " ".repeat(pad)));
                body
            }
        }
        _ => body,
    }
}

/// PyPI's legacy JSON API (`GET /pypi/<project>/json`), with the fields bandersnatch 6 reads:
/// `info` (`name`, `version`, …), `last_serial`, `releases` (version → files) and `urls` (the
/// newest release's files); each file has `filename`, `url` (always PyPI's `/packages/…`
/// layout: bandersnatch refuses anything else), `size`, `digests.sha256`, `upload_time`,
/// `upload_time_iso_8601`, `requires_python`, `yanked`, `yanked_reason`, `packagetype` and
/// `python_version`. No `md5` or `blake2b_256` digests (nothing that mirrors needs them).
pub(crate) fn legacy_json(state: &State, norm: &str) -> Option<String> {
    let p = state.projects.get(norm)?;
    let file = |name: &str, r: &crate::state::Release| -> Option<Value> {
        let f = state.files.get(name)?;
        let wheel = name.strip_suffix(".whl");
        let python_version = match wheel {
            Some(stem) => stem.rsplit('-').nth(2).unwrap_or("py3").to_string(),
            None => "source".to_string(),
        };
        Some(json!({
            "filename": name,
            "url": format!("{}/{}", state.base_url, State::pypi_path(name, f)),
            "size": f.body.len(),
            "digests": { "sha256": f.sha256 },
            "upload_time": f.upload_time.get(..19).unwrap_or(&f.upload_time),
            "upload_time_iso_8601": f.upload_time,
            "requires_python": r.spec.requires_python,
            "yanked": r.spec.yanked.is_some(),
            "yanked_reason": r.spec.yanked.as_deref().filter(|s| !s.is_empty()),
            "packagetype": if wheel.is_some() { "bdist_wheel" } else { "sdist" },
            "python_version": python_version,
            "has_sig": false,
            "comment_text": "",
        }))
    };
    let mut releases = serde_json::Map::new();
    for r in &p.releases {
        let files: Vec<Value> = r.files.iter().filter_map(|n| file(n, r)).collect();
        releases.insert(r.spec.version.clone(), Value::Array(files));
    }
    let latest = p.releases.last();
    let urls: Vec<Value> = latest
        .map(|r| r.files.iter().filter_map(|n| file(n, r)).collect())
        .unwrap_or_default();
    let doc = json!({
        "info": {
            "name": p.display,
            "version": latest.map(|r| r.spec.version.as_str()),
            "summary": "Fake package generated by tufa-fake-upstream",
            "requires_python": latest.and_then(|r| r.spec.requires_python.as_deref()),
            "requires_dist": latest.map(|r| r.spec.requires_dist.clone()).filter(|d| !d.is_empty()),
            "yanked": false,
            "yanked_reason": null,
            "package_url": format!("{}/project/{norm}/", state.base_url),
            "project_url": format!("{}/project/{norm}/", state.base_url),
        },
        "last_serial": p.last_serial,
        "releases": releases,
        "urls": urls,
        "vulnerabilities": [],
    });
    Some(doc.to_string())
}
