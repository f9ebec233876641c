//! Rendering project pages: PEP 691 JSON and PEP 503 HTML from one [`ProjectPage`], so the
//! two formats always say the same thing. Output is deterministic (the bytes are signed and
//! content-addressed), so the same input renders the same bytes.

use std::fmt::Write as _;

use crate::simple::{CoreMetadata, Meta, ProjectPage};

/// The Simple API version tufa publishes: PEP 691 (1.0), PEP 700 (1.1), PEP 714 (1.2),
/// PEP 740 (1.3), PEP 792 (1.4).
pub const API_VERSION: &str = "1.4";

/// A fresh `meta` for pages tufa renders.
pub fn meta() -> Meta {
    Meta {
        api_version: API_VERSION.to_owned(),
        last_serial: None,
    }
}

/// PEP 691 JSON.
pub fn render_json(page: &ProjectPage) -> String {
    // Serialising these plain data types cannot fail; fall back to an empty object would
    // hide a bug, so the invariant is stated.
    #[allow(clippy::expect_used)]
    serde_json::to_string(page).expect("ProjectPage serialises: it holds only strings, maps and numbers")
}

fn attr(s: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_double_quoted_attribute(s)
}

fn metadata_attr(m: &CoreMetadata) -> String {
    match m {
        CoreMetadata::Absent => "false".to_owned(),
        CoreMetadata::Present { hashes } => match hashes.get("sha256") {
            Some(h) => format!("sha256={h}"),
            None => "true".to_owned(),
        },
    }
}

/// PEP 503 HTML with PEP 592 (`data-yanked`), PEP 629 (repository version), PEP 658/714
/// (`data-core-metadata`, `data-dist-info-metadata`), PEP 740 (`data-provenance`) and PEP 792
/// (`pypi:project-status` meta tags).
pub fn render_html(page: &ProjectPage) -> String {
    let name = html_escape::encode_text(&page.name);
    let mut out = String::with_capacity(512 + page.files.len() * 300);
    out.push_str("<!DOCTYPE html>\n<html>\n  <head>\n");
    let _ = writeln!(
        out,
        "    <meta name=\"pypi:repository-version\" content=\"{}\">",
        attr(&page.meta.api_version)
    );
    if let Some(status) = &page.project_status {
        let _ = writeln!(
            out,
            "    <meta name=\"pypi:project-status\" content=\"{}\">",
            attr(&status.status)
        );
        if let Some(reason) = &status.reason {
            let _ = writeln!(
                out,
                "    <meta name=\"pypi:project-status-reason\" content=\"{}\">",
                attr(reason)
            );
        }
    }
    let _ = writeln!(
        out,
        "    <title>Links for {name}</title>\n  </head>\n  <body>\n    <h1>Links for {name}</h1>"
    );
    for f in &page.files {
        out.push_str("    <a href=\"");
        out.push_str(&attr(&f.url));
        if let Some(h) = f.sha256() {
            let _ = write!(out, "#sha256={}", attr(h));
        }
        out.push('"');
        if let Some(rp) = &f.requires_python {
            let _ = write!(out, " data-requires-python=\"{}\"", attr(rp));
        }
        if f.yanked.is_yanked() {
            let _ = write!(out, " data-yanked=\"{}\"", attr(f.yanked.reason().unwrap_or("")));
        }
        if let Some(m) = f.core_metadata.as_ref().filter(|m| m.is_present()) {
            let v = metadata_attr(m);
            let _ = write!(out, " data-core-metadata=\"{v}\" data-dist-info-metadata=\"{v}\"");
        }
        if let Some(p) = &f.provenance {
            let _ = write!(out, " data-provenance=\"{}\"", attr(p));
        }
        let _ = writeln!(out, ">{}</a><br />", html_escape::encode_text(&f.filename));
    }
    out.push_str("  </body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::*;
    use crate::simple::{File, ProjectStatus, Yanked, parse_project_html};

    fn page() -> ProjectPage {
        let meta_hash = BTreeMap::from([("sha256".to_owned(), "bb".repeat(32))]);
        ProjectPage {
            meta: meta(),
            name: "demo".into(),
            versions: Some(vec!["1.0".into(), "1.1".into()]),
            project_status: Some(ProjectStatus {
                status: "deprecated".into(),
                reason: Some("use \"other\" <now>".into()),
            }),
            files: vec![
                File {
                    filename: "demo-1.0-py3-none-any.whl".into(),
                    url: "../../files/aa/aa/x/demo-1.0-py3-none-any.whl".into(),
                    hashes: BTreeMap::from([("sha256".to_owned(), "aa".repeat(32))]),
                    requires_python: Some(">=3.8, <4".into()),
                    yanked: Yanked::No,
                    size: Some(1234),
                    upload_time: Some("2024-01-02T03:04:05Z".into()),
                    core_metadata: Some(CoreMetadata::Present {
                        hashes: meta_hash.clone(),
                    }),
                    dist_info_metadata: Some(CoreMetadata::Present { hashes: meta_hash }),
                    gpg_sig: None,
                    provenance: None,
                },
                File {
                    filename: "demo-1.1.tar.gz".into(),
                    url: "../../files/cc/cc/y/demo-1.1.tar.gz".into(),
                    hashes: BTreeMap::from([("sha256".to_owned(), "cc".repeat(32))]),
                    requires_python: None,
                    yanked: Yanked::Yes {
                        reason: Some("broken & <bad>".into()),
                    },
                    size: Some(99),
                    upload_time: None,
                    core_metadata: None,
                    dist_info_metadata: None,
                    gpg_sig: None,
                    provenance: Some("https://up.example/p?a=1&b=2".into()),
                },
            ],
        }
    }

    #[test]
    fn html_snapshot() {
        insta::assert_snapshot!(render_html(&page()));
    }

    #[test]
    fn json_snapshot() {
        let v: serde_json::Value = serde_json::from_str(&render_json(&page())).unwrap();
        insta::assert_json_snapshot!(v);
    }

    #[test]
    fn html_reads_back_to_the_same_files() {
        let p = page();
        let back = parse_project_html(&render_html(&p), "demo");
        assert_eq!(back.meta.api_version, API_VERSION);
        for (a, b) in p.files.iter().zip(&back.files) {
            assert_eq!(a.filename, b.filename);
            assert_eq!(a.url, b.url);
            assert_eq!(a.hashes, b.hashes);
            assert_eq!(a.requires_python, b.requires_python);
            assert_eq!(a.yanked, b.yanked);
            assert_eq!(a.core_metadata, b.core_metadata);
            assert_eq!(a.provenance, b.provenance);
        }
    }
}
