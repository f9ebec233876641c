//! Canonical JSON, byte for byte as securesystemslib's `encode_canonical` writes it: the bytes
//! every TUF signature and key id is computed over.
//!
//! The dialect (<http://wiki.laptop.org/go/Canonical_JSON> as securesystemslib implements it):
//! - object keys sorted by code point (equal to UTF-8 byte order), no whitespace anywhere;
//! - strings escape only `\` (as `\\`) and `"` (as `\"`); every other character, control
//!   characters and non-ASCII included, is written raw as UTF-8;
//! - integers only: a float is an error; `true`, `false`, `null` as usual.
//!
//! Raw control characters make canonical JSON invalid JSON, so the bytes of a metadata *file*
//! come from [`to_json_file_bytes`]: the same document with control characters escaped the
//! ordinary JSON way. It is identical to the canonical form whenever no string holds a control
//! character, and any JSON parser reads it back to the same value.
//!
//! Keys are sorted here, explicitly, so the output does not depend on whether serde_json's
//! `preserve_order` feature is switched on somewhere in the build.

use serde::Serialize;
use serde_json::Value;

use crate::TufError;

/// Canonical JSON of a JSON value.
pub fn to_canonical_bytes(value: &Value) -> Result<Vec<u8>, TufError> {
    encode_value(value, Escape::Canonical)
}

/// Canonical JSON of anything serde can turn into JSON.
pub fn to_canonical<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, TufError> {
    to_canonical_bytes(&to_value(value)?)
}

/// The bytes of a metadata file: canonical JSON, except that control characters inside strings
/// are escaped (`\n`, `\u001f`, …) so the file is valid JSON. See the module docs.
pub fn to_json_file_bytes(value: &Value) -> Result<Vec<u8>, TufError> {
    encode_value(value, Escape::Json)
}

/// Serialises to a JSON value, mapping serde failures (non-string map keys, for instance).
pub(crate) fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, TufError> {
    serde_json::to_value(value).map_err(|e| TufError::Canonical {
        location: String::new(),
        reason: e.to_string(),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    Canonical,
    Json,
}

/// Where in the document an encoding error happened, innermost segment first.
struct EncodeError {
    reason: &'static str,
    path_rev: Vec<String>,
}

fn encode_value(value: &Value, escape: Escape) -> Result<Vec<u8>, TufError> {
    let mut out = Vec::with_capacity(256);
    encode(value, escape, &mut out).map_err(|e| {
        let mut location = String::from("$");
        for seg in e.path_rev.iter().rev() {
            location.push_str(seg);
        }
        TufError::Canonical {
            location,
            reason: e.reason.to_owned(),
        }
    })?;
    Ok(out)
}

fn encode(value: &Value, escape: Escape, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                return Err(EncodeError {
                    reason: "floats are not allowed",
                    path_rev: Vec::new(),
                });
            }
        }
        Value::String(s) => write_string(s, escape, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode(item, escape, out).map_err(|mut e| {
                    e.path_rev.push(format!("[{i}]"));
                    e
                })?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // Rust orders `str` by bytes; UTF-8 byte order equals code point order, which is
            // how Python's `sorted()` orders `str` keys.
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, escape, out);
                out.push(b':');
                encode(item, escape, out).map_err(|mut e| {
                    e.path_rev.push(format!(".{key}"));
                    e
                })?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Writes a quoted string. Infallible: every Rust string can be written.
pub(crate) fn write_canonical_string(s: &str, out: &mut Vec<u8>) {
    write_string(s, Escape::Canonical, out);
}

fn write_string(s: &str, escape: Escape, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x00..=0x1f if escape == Escape::Json => match b {
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                _ => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            },
            // Multi-byte UTF-8 sequences never contain bytes below 0x80, so copying byte by
            // byte keeps them intact.
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn canon(v: &Value) -> String {
        String::from_utf8(to_canonical_bytes(v).unwrap()).unwrap()
    }

    #[test]
    fn securesystemslib_doc_vectors() {
        assert_eq!(canon(&json!("")), r#""""#);
        assert_eq!(canon(&json!([1, 2, 3])), "[1,2,3]");
        assert_eq!(canon(&json!([])), "[]");
        assert_eq!(canon(&json!({"A": [99]})), r#"{"A":[99]}"#);
        assert_eq!(canon(&json!({"x": 3, "y": 2})), r#"{"x":3,"y":2}"#);
        assert_eq!(canon(&json!({})), "{}");
    }

    #[test]
    fn scalars() {
        assert_eq!(canon(&json!(null)), "null");
        assert_eq!(canon(&json!(true)), "true");
        assert_eq!(canon(&json!(false)), "false");
        assert_eq!(canon(&json!(0)), "0");
        assert_eq!(canon(&json!(-17)), "-17");
        assert_eq!(canon(&json!(u64::MAX)), "18446744073709551615");
        assert_eq!(canon(&json!(i64::MIN)), "-9223372036854775808");
    }

    #[test]
    fn strings_escape_only_backslash_and_quote() {
        assert_eq!(canon(&json!("a\"b")), r#""a\"b""#);
        assert_eq!(canon(&json!("a\\b")), r#""a\\b""#);
        assert_eq!(canon(&json!("\\\"")), r#""\\\"""#);
        // Control characters, DEL, `/` and non-ASCII are raw.
        assert_eq!(
            canon(&json!("\n\t\u{0}\u{1f}\u{7f}/")),
            "\"\n\t\u{0}\u{1f}\u{7f}/\""
        );
        assert_eq!(canon(&json!("é☃𝄞")), "\"é☃𝄞\"");
        assert_eq!(canon(&json!("\u{2028}\u{feff}")), "\"\u{2028}\u{feff}\"");
    }

    #[test]
    fn keys_sort_by_code_point_nested() {
        let v = json!({
            "b": 1, "a": {"z": [true, null], "y": "x"}, "B": 2, "é": 3, "e": 4, "_type": "t",
            "\u{10000}": 5, "\u{ffff}": 6, "": 7
        });
        assert_eq!(
            canon(&v),
            "{\"\":7,\"B\":2,\"_type\":\"t\",\"a\":{\"y\":\"x\",\"z\":[true,null]},\"b\":1,\"e\":4,\"é\":3,\"\u{ffff}\":6,\"\u{10000}\":5}"
        );
    }

    #[test]
    fn floats_are_errors_with_location() {
        let err = to_canonical_bytes(&json!({"a": [1, {"b": 1.5}]})).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("floats are not allowed"), "{msg}");
        assert!(msg.contains("$.a[1].b"), "{msg}");
        // A float written like an integer is still a float once parsed, as in Python.
        let parsed: Value = serde_json::from_str("1.0").unwrap();
        assert!(to_canonical_bytes(&parsed).is_err());
    }

    #[test]
    fn file_form_escapes_control_characters_and_parses_back() {
        let v = json!({"k": "a\nb\u{1}\"\\é", "n": 3});
        let file = to_json_file_bytes(&v).unwrap();
        assert_eq!(
            String::from_utf8(file.clone()).unwrap(),
            r#"{"k":"a\nb\u0001\"\\é","n":3}"#
        );
        let back: Value = serde_json::from_slice(&file).unwrap();
        assert_eq!(back, v);
        // Without control characters the file form is the canonical form.
        let plain = json!({"z": ["é", 1], "a": null});
        assert_eq!(
            to_json_file_bytes(&plain).unwrap(),
            to_canonical_bytes(&plain).unwrap()
        );
    }
}
