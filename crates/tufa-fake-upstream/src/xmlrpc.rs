//! Minimal XML-RPC endpoint (`POST /pypi`) with PyPI's changelog methods.

use crate::state::State;
use crate::util::xml_escape;

enum XValue {
    Int(i64),
    Str(String),
    Array(Vec<XValue>),
    Struct(Vec<(String, XValue)>),
}

impl XValue {
    fn render(&self, out: &mut String) {
        out.push_str("<value>");
        match self {
            XValue::Int(i) => out.push_str(&format!("<int>{i}</int>")),
            XValue::Str(s) => out.push_str(&format!("<string>{}</string>", xml_escape(s))),
            XValue::Array(items) => {
                out.push_str("<array><data>");
                for v in items {
                    v.render(out);
                }
                out.push_str("</data></array>");
            }
            XValue::Struct(members) => {
                out.push_str("<struct>");
                for (k, v) in members {
                    out.push_str(&format!("<member><name>{}</name>", xml_escape(k)));
                    v.render(out);
                    out.push_str("</member>");
                }
                out.push_str("</struct>");
            }
        }
        out.push_str("</value>");
    }
}

fn int(v: u64) -> XValue {
    XValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

fn success(v: &XValue) -> String {
    let mut out = String::from("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n");
    v.render(&mut out);
    out.push_str("\n</param>\n</params>\n</methodResponse>\n");
    out
}

fn fault(code: i64, msg: &str) -> String {
    let mut out = String::from("<?xml version='1.0'?>\n<methodResponse>\n<fault>\n");
    XValue::Struct(vec![
        ("faultCode".to_string(), XValue::Int(code)),
        ("faultString".to_string(), XValue::Str(msg.to_string())),
    ])
    .render(&mut out);
    out.push_str("\n</fault>\n</methodResponse>\n");
    out
}

/// Text between the first `<tag>` and the following `</tag>`.
fn element<'a>(doc: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = doc.find(&open)? + open.len();
    let end = doc[start..].find(&close)? + start;
    Some(&doc[start..end])
}

/// The first integer parameter (`<int>` or `<i4>`), if any.
fn first_int_param(doc: &str) -> Option<Result<i64, String>> {
    let params = element(doc, "params")?;
    let text = element(params, "int").or_else(|| element(params, "i4"))?;
    Some(
        text.trim()
            .parse::<i64>()
            .map_err(|e| format!("invalid int {text:?}: {e}")),
    )
}

/// Handles one XML-RPC call; returns the response document.
pub(crate) fn handle(state: &State, body: &str) -> String {
    let Some(method) = element(body, "methodName") else {
        return fault(-32600, "invalid XML-RPC request: no methodName");
    };
    match method.trim() {
        "changelog_last_serial" => success(&int(state.serial)),
        "changelog_since_serial" => {
            let since = match first_int_param(body) {
                Some(Ok(i)) => i,
                Some(Err(e)) => return fault(-32602, &e),
                None => return fault(-32602, "changelog_since_serial requires an int parameter"),
            };
            let entries = state
                .changelog
                .iter()
                .filter(|e| i64::try_from(e.serial).unwrap_or(i64::MAX) > since)
                .map(|e| {
                    XValue::Array(vec![
                        XValue::Str(e.name.clone()),
                        XValue::Str(e.version.clone()),
                        XValue::Int(e.timestamp),
                        XValue::Str(e.action.clone()),
                        int(e.serial),
                    ])
                })
                .collect();
            success(&XValue::Array(entries))
        }
        "list_packages_with_serial" => {
            let members = state
                .projects
                .values()
                .map(|p| (p.display.clone(), int(p.last_serial)))
                .collect();
            success(&XValue::Struct(members))
        }
        "list_packages" => {
            let names = state
                .projects
                .values()
                .map(|p| XValue::Str(p.display.clone()))
                .collect();
            success(&XValue::Array(names))
        }
        other => fault(-32601, &format!("method {other:?} is not supported")),
    }
}
