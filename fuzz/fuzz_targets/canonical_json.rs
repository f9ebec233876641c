//! Canonical JSON (`tufa_tuf::canonical`): the bytes every signature and key id covers.
//!
//! Asserts, for any JSON document: canonicalising is deterministic and stable (the file form
//! parsed back canonicalises to the same bytes); the file form is valid JSON that parses back
//! to the same value; without control characters the canonical and file forms are identical;
//! floats are refused, integers never are; object keys come out sorted and unique.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tufa_tuf::canonical::{to_canonical_bytes, to_json_file_bytes};

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_u64().is_none() && n.as_i64().is_none(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

fn has_control(v: &Value) -> bool {
    let ctl = |s: &str| s.chars().any(|c| (c as u32) < 0x20);
    match v {
        Value::String(s) => ctl(s),
        Value::Array(a) => a.iter().any(has_control),
        Value::Object(o) => o.iter().any(|(k, v)| ctl(k) || has_control(v)),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let canonical = to_canonical_bytes(&value);
    let file = to_json_file_bytes(&value);
    if has_float(&value) {
        assert!(canonical.is_err() && file.is_err(), "a float was encoded");
        return;
    }
    let canonical = canonical.unwrap_or_else(|e| panic!("integer-only JSON refused: {e}"));
    let file = file.unwrap_or_else(|e| panic!("integer-only JSON refused: {e}"));
    assert_eq!(
        to_canonical_bytes(&value).ok().as_ref(),
        Some(&canonical),
        "not deterministic"
    );

    let back: Value = serde_json::from_slice(&file)
        .unwrap_or_else(|e| panic!("file form is not JSON ({e}): {}", String::from_utf8_lossy(&file)));
    assert_eq!(back, value, "file form reads back to another value");
    assert_eq!(
        to_canonical_bytes(&back).ok().as_ref(),
        Some(&canonical),
        "canonical form is not stable"
    );
    assert_eq!(
        to_json_file_bytes(&back).ok().as_ref(),
        Some(&file),
        "file form is not stable"
    );
    if !has_control(&value) {
        assert_eq!(
            canonical, file,
            "canonical and file forms differ without control characters"
        );
    }
    if let Value::Object(map) = &value {
        // Sorted keys: the canonical form of the keys alone, in order, is increasing.
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        keys.dedup();
        assert_eq!(keys.len(), map.len());
    }
});
