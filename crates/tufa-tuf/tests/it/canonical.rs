//! Canonical JSON against securesystemslib's `encode_canonical`.

use serde_json::{Value, json};
use tufa_tuf::canonical::to_canonical_bytes;

use crate::python;

fn vectors() -> Vec<Value> {
    vec![
        json!(""),
        json!("plain"),
        json!("quote \" backslash \\ both \\\" end"),
        json!("controls \u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1b}\u{1f} del \u{7f} c1 \u{85}"),
        json!("unicode é ü ß ☃ 𝄞 \u{2028}\u{2029} \u{feff} \u{fffd} 中文"),
        json!("slash / and </script> and \u{0}nul"),
        json!([]),
        json!({}),
        json!([1, -1, 0, u64::MAX, i64::MIN, true, false, null]),
        json!({"b": 1, "a": 2, "B": 3, "_type": "x", "é": 4, "e": 5, "\u{10000}": 6, "\u{ffff}": 7, "": 8}),
        json!({"nested": {"z": [{"y": {"x": []}}], "a": "\"\\"}, "list": [[], [[]], {}]}),
        json!({"k\"ey": "v\\al", "k\ney": "\u{1}"}),
        json!({"signed": {"_type": "targets", "version": 12, "targets": {"simple/a/index.html": {"length": 3, "hashes": {"sha512": "b", "sha256": "a"}}}}}),
        json!(1.5),
        json!({"a": [1, {"b": 0.0}]}),
    ]
}

#[test]
fn matches_securesystemslib_encode_canonical() {
    let python = python::require();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("vectors.json");
    std::fs::write(&input, serde_json::to_vec(&vectors()).unwrap()).unwrap();
    let script = r#"
import json, sys
from securesystemslib.formats import encode_canonical
for v in json.load(open(sys.argv[1], encoding="utf-8")):
    try:
        print(encode_canonical(v).encode("utf-8").hex())
    except Exception as e:
        print("ERROR " + type(e).__name__)
"#;
    let out = python::run_ok(&python, script, &[input.to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    let vectors = vectors();
    assert_eq!(lines.len(), vectors.len(), "{out}");
    for (v, line) in vectors.iter().zip(lines) {
        match to_canonical_bytes(v) {
            Ok(bytes) => assert_eq!(hex::encode(&bytes), line, "vector {v}"),
            Err(e) => assert!(
                line.starts_with("ERROR"),
                "we refuse {v} ({e}), python wrote {line}"
            ),
        }
    }
}
