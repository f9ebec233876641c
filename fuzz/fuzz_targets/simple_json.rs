//! PEP 691 JSON from upstream: project pages and the project list (`tufa_pypi::simple`).
//!
//! Asserts: a page that parses serialises and parses back to the same value; every file URL
//! either resolves against the page URL or is refused with an error (no panic); rendering the
//! page as PEP 503 HTML and reading that HTML back gives the same files (filenames, URLs,
//! sha256, requires-python, yanked, core metadata, provenance) — the HTML escaping holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tufa_pypi::DistFilename;
use tufa_pypi::render::render_html;
use tufa_pypi::simple::{ProjectList, ProjectPage, parse_project_html};
use url::Url;

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

fn check_page(page: &ProjectPage) {
    let _ = page.meta.check_api_version();
    let json = serde_json::to_string(page).unwrap_or_else(|e| panic!("serialising a parsed page: {e}"));
    let back: ProjectPage = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(&back, page, "JSON round trip changed the page");

    let Ok(base) = Url::parse("https://pypi.example/simple/demo/") else {
        return;
    };
    for f in &page.files {
        let _ = f.resolved_url(&base);
    }

    // What tufa publishes: files with valid names. URLs with a `#` would carry two fragments.
    let mut published = page.clone();
    published
        .files
        .retain(|f| DistFilename::parse(&f.filename).is_ok() && !f.url.contains('#'));
    let html = render_html(&published);
    let read = parse_project_html(&html, &published.name);
    assert_eq!(
        read.files.len(),
        published.files.len(),
        "HTML has another number of links:\n{html}"
    );
    for (want, got) in published.files.iter().zip(&read.files) {
        assert_eq!(got.filename, want.filename, "{html}");
        assert_eq!(got.url, want.url, "{html}");
        assert_eq!(got.sha256(), want.sha256(), "{html}");
        assert_eq!(
            nonempty(got.requires_python.as_deref()),
            nonempty(want.requires_python.as_deref()),
            "{html}"
        );
        assert_eq!(got.yanked.is_yanked(), want.yanked.is_yanked(), "{html}");
        assert_eq!(
            nonempty(got.yanked.reason()),
            nonempty(want.yanked.reason()),
            "{html}"
        );
        let present = |f: &tufa_pypi::simple::File| f.core_metadata.as_ref().is_some_and(|m| m.is_present());
        assert_eq!(present(got), present(want), "{html}");
        if present(want) {
            assert_eq!(
                got.core_metadata.as_ref().and_then(|m| m.sha256()),
                want.core_metadata.as_ref().and_then(|m| m.sha256()),
                "{html}"
            );
        }
        assert_eq!(got.provenance, want.provenance, "{html}");
    }
}

fn check_list(list: &ProjectList) {
    let json = serde_json::to_string(list).unwrap_or_else(|e| panic!("serialising a parsed list: {e}"));
    let back: ProjectList = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(&back, list);
    for p in &list.projects {
        let _ = tufa_pypi::ProjectName::new(&p.name);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(page) = serde_json::from_slice::<ProjectPage>(data) {
        check_page(&page);
    }
    if let Ok(list) = serde_json::from_slice::<ProjectList>(data) {
        check_list(&list);
    }
});
