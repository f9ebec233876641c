//! Core metadata from upstream distributions: reading `METADATA` headers and `Requires-Dist`
//! (`tufa_pypi::metadata`, parsed with pep508_rs and judged against extras and environments
//! when following dependencies), extracting `*.dist-info/METADATA` from a wheel zip
//! (`tufa_publish::metadata::extract`, run at publish on every mirrored wheel) and `PKG-INFO`
//! from an sdist (`extract_sdist`, for sdist-only releases when following dependencies).
//!
//! The first byte picks the mode: even = the bytes are METADATA text, 1 mod 4 = a wheel
//! archive, 3 mod 4 = an sdist `.tar.gz`. Asserts: no panic; every dependency is a valid
//! normalised name taken from a header value; extracted metadata is never larger than the
//! limit.
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tufa_publish::metadata::{MAX_METADATA_BYTES, extract, extract_sdist};
use tufa_pypi::DistFilename;
use tufa_pypi::metadata::{header_values, requires_dist};

fn wheel_name() -> &'static DistFilename {
    static NAME: OnceLock<DistFilename> = OnceLock::new();
    NAME.get_or_init(|| {
        DistFilename::parse("demo-1.0-py3-none-any.whl").unwrap_or_else(|e| panic!("fixed wheel name: {e}"))
    })
}

fn environments() -> &'static [pep508_rs::MarkerTree] {
    static ENVS: OnceLock<Vec<pep508_rs::MarkerTree>> = OnceLock::new();
    ENVS.get_or_init(|| {
        ["sys_platform == 'linux' and python_version >= '3.10'"]
            .iter()
            .map(|m| m.parse().unwrap_or_else(|e| panic!("fixed marker: {e}")))
            .collect()
    })
}

fn check_text(text: &str) {
    let values = header_values(text, "Requires-Dist");
    let deps = requires_dist(text);
    assert!(deps.len() <= values.len());
    let environments = environments();
    let asked: std::collections::BTreeSet<String> = ["socks".to_owned()].into_iter().collect();
    for d in &deps {
        assert_eq!(tufa_pypi::ProjectName::new(d.name.as_str()).as_ref(), Ok(&d.name));
        // Deciding never panics; an environment narrows, never widens.
        let anywhere = d.applies(&asked, &[]);
        if d.applies(&asked, environments) {
            assert!(anywhere, "{}", d.text);
        }
    }
    for field in ["Name", "Version", "Requires-Python", "Provides-Extra"] {
        for v in header_values(text, field) {
            // Continuation lines are joined: a value is one line. (Not asserted: that it is
            // trimmed; a folded header whose first line is empty keeps a leading space.)
            assert!(!v.contains(['\n', '\r']) || text.contains('\r'), "{v:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            check_text(text);
        }
        return;
    }
    if mode % 4 == 3 {
        if let Ok(Some(pkg_info)) = extract_sdist(Cursor::new(rest), "demo-1.0.tar.gz") {
            assert!(pkg_info.len() as u64 <= MAX_METADATA_BYTES);
            if let Ok(text) = std::str::from_utf8(&pkg_info) {
                check_text(text);
            }
        }
        return;
    }
    let name = wheel_name();
    let Some(wheel) = name.as_wheel() else { return };
    if let Ok(Some(metadata)) = extract(Cursor::new(rest), wheel, name.as_str()) {
        assert!(metadata.len() as u64 <= MAX_METADATA_BYTES);
        if let Ok(text) = std::str::from_utf8(&metadata) {
            check_text(text);
        }
    }
});
