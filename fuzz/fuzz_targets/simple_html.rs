//! PEP 503 HTML from upstream (`tufa_pypi::simple::parse_project_html`, the root list, the
//! anchor reader).
//!
//! Asserts: no panic on any text (the reader slices strings by byte offsets); one file per
//! anchor; hash algorithm names come out lowercase; every URL resolves or is refused cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tufa_pypi::simple::{parse_anchors, parse_project_html, parse_project_list_html};
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Ok(html) = std::str::from_utf8(data) else {
        return;
    };
    let anchors = parse_anchors(html);
    let page = parse_project_html(html, "demo");
    assert_eq!(page.files.len(), anchors.len());
    assert_eq!(page.name, "demo");
    let _ = page.meta.check_api_version();
    let Ok(base) = Url::parse("https://pypi.example/simple/demo/") else {
        return;
    };
    for f in &page.files {
        for algo in f.hashes.keys() {
            assert_eq!(algo, &algo.to_ascii_lowercase());
        }
        let _ = f.resolved_url(&base);
        let _ = tufa_pypi::DistFilename::parse(&f.filename);
    }
    let list = parse_project_list_html(html);
    assert_eq!(list.projects.len(), anchors.len());
    for p in &list.projects {
        let _ = tufa_pypi::ProjectName::new(&p.name);
    }
    // The page also goes through the JSON model tufa keeps.
    let json = serde_json::to_string(&page).unwrap_or_else(|e| panic!("{e}"));
    let back: tufa_pypi::simple::ProjectPage =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(back, page);
});
