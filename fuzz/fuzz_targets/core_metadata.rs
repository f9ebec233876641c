//! Core metadata from upstream wheels: reading `METADATA` headers and `Requires-Dist`
//! (`tufa_pypi::metadata`, used by quickstart to follow dependencies) and extracting
//! `*.dist-info/METADATA` from a wheel zip (`tufa_publish::metadata::extract`, run at publish
//! on every mirrored wheel).
//!
//! The first byte picks the mode: even = the bytes are METADATA text, odd = a wheel archive.
//! Asserts: no panic; every dependency is a valid normalised name taken from a header value;
//! extracted METADATA is never larger than the limit.
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tufa_publish::metadata::{MAX_METADATA_BYTES, extract};
use tufa_pypi::DistFilename;
use tufa_pypi::metadata::{header_values, requires_dist};

fn wheel_name() -> &'static DistFilename {
    static NAME: OnceLock<DistFilename> = OnceLock::new();
    NAME.get_or_init(|| {
        DistFilename::parse("demo-1.0-py3-none-any.whl").unwrap_or_else(|e| panic!("fixed wheel name: {e}"))
    })
}

fn check_text(text: &str) {
    let values = header_values(text, "Requires-Dist");
    let deps = requires_dist(text);
    assert!(deps.len() <= values.len());
    for d in &deps {
        assert_eq!(tufa_pypi::ProjectName::new(d.name.as_str()).as_ref(), Ok(&d.name));
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
    let name = wheel_name();
    let Some(wheel) = name.as_wheel() else { return };
    if let Ok(Some(metadata)) = extract(Cursor::new(rest), wheel, name.as_str()) {
        assert!(metadata.len() as u64 <= MAX_METADATA_BYTES);
        if let Ok(text) = std::str::from_utf8(&metadata) {
            check_text(text);
        }
    }
});
