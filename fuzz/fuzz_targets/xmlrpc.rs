//! PyPI's XML-RPC changelog answers (`tufa_sync::xmlrpc::parse_response`, `parse_changelog`).
//!
//! Asserts: no panic; a parsed value made only of ints, strings and arrays, written back as
//! XML-RPC (with entities escaped), parses to the same value.
//!
//! Known finding (fixed by the sync helper, not here): unbounded nesting recursed without a
//! depth limit (issue #9 finding 1). libFuzzer's default `-max_len` (4096) cannot nest deep
//! enough to overflow the stack; the regression test lives in tufa-sync.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tufa_sync::xmlrpc::{Value, parse_changelog, parse_int, parse_response};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `None` when the value holds a type this client keeps as opaque text.
fn render(v: &Value, out: &mut String) -> Option<()> {
    out.push_str("<value>");
    match v {
        Value::Int(i) => out.push_str(&format!("<int>{i}</int>")),
        Value::Str(s) => out.push_str(&format!("<string>{}</string>", escape(s))),
        Value::Array(items) => {
            out.push_str("<array><data>");
            for item in items {
                render(item, out)?;
            }
            out.push_str("</data></array>");
        }
        Value::Other(_) => return None,
    }
    out.push_str("</value>");
    Some(())
}

fuzz_target!(|data: &[u8]| {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(value) = parse_response(xml) else { return };
    let _ = parse_int(&value);
    let _ = parse_changelog(&value);
    let mut body = String::from("<?xml version='1.0'?><methodResponse><params><param>");
    if render(&value, &mut body).is_some() {
        body.push_str("</param></params></methodResponse>");
        let again = parse_response(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(again, value, "{body}");
    }
});
