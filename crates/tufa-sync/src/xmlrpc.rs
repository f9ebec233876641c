//! The two XML-RPC calls of PyPI's changelog that a full mirror needs, as bandersnatch uses
//! them: `changelog_last_serial()` and `changelog_since_serial(n)`.
//!
//! Only the XML-RPC subset those answers use is read (`int`/`i4`, `string`, bare strings,
//! `array`, `fault`); anything else is an error naming what was found. Nesting is bounded
//! ([`MAX_DEPTH`]): the parser recurses per `<value>`, so an upstream must not choose the
//! depth of its stack.

/// Deepest `<value>` nesting read. A changelog is two levels deep (an array of rows).
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Str(String),
    Array(Vec<Value>),
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlRpcError {
    #[error("malformed XML-RPC answer: {0}")]
    Malformed(String),
    #[error("XML-RPC fault: {0}")]
    Fault(String),
}

/// One changelog entry: `[name, version, timestamp, action, serial]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogEntry {
    pub name: String,
    pub action: String,
    pub serial: u64,
}

pub fn method_call(method: &str, int_params: &[i64]) -> String {
    let mut body = format!("<?xml version='1.0'?><methodCall><methodName>{method}</methodName><params>");
    for p in int_params {
        body.push_str(&format!("<param><value><int>{p}</int></value></param>"));
    }
    body.push_str("</params></methodCall>");
    body
}

/// Parses a `methodResponse`, returning its single value or the fault.
pub fn parse_response(xml: &str) -> Result<Value, XmlRpcError> {
    let mut p = Parser {
        s: xml,
        pos: 0,
        depth: 0,
    };
    p.skip_prolog();
    p.expect_open("methodResponse")?;
    if p.peek_open("fault") {
        p.expect_open("fault")?;
        let v = p.value()?;
        return Err(XmlRpcError::Fault(shown(&v)));
    }
    p.expect_open("params")?;
    p.expect_open("param")?;
    p.value()
}

/// A value for an error message: debug-formatted (escaped), at most 200 characters.
fn shown(v: &Value) -> String {
    let text = format!("{v:?}");
    if text.chars().count() <= 200 {
        return text;
    }
    let mut t: String = text.chars().take(200).collect();
    t.push('…');
    t
}

pub fn parse_int(v: &Value) -> Result<u64, XmlRpcError> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        other => Err(XmlRpcError::Malformed(format!(
            "expected a non-negative int, got {}",
            shown(other)
        ))),
    }
}

pub fn parse_changelog(v: &Value) -> Result<Vec<ChangelogEntry>, XmlRpcError> {
    let Value::Array(rows) = v else {
        return Err(XmlRpcError::Malformed(format!(
            "expected an array of changes, got {}",
            shown(v)
        )));
    };
    rows.iter()
        .map(|row| match row {
            Value::Array(cols) if cols.len() >= 5 => match (&cols[0], &cols[3], &cols[4]) {
                (Value::Str(name), Value::Str(action), serial) => Ok(ChangelogEntry {
                    name: name.clone(),
                    action: action.clone(),
                    serial: parse_int(serial)?,
                }),
                _ => Err(XmlRpcError::Malformed(format!(
                    "unexpected changelog row {}",
                    shown(row)
                ))),
            },
            _ => Err(XmlRpcError::Malformed(format!(
                "unexpected changelog row {}",
                shown(row)
            ))),
        })
        .collect()
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    /// `<value>`s open around the current position.
    depth: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }
    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.s.len() - trimmed.len();
    }
    fn skip_prolog(&mut self) {
        self.skip_ws();
        if self.rest().starts_with("<?")
            && let Some(end) = self.rest().find("?>")
        {
            self.pos += end + 2;
        }
    }
    fn peek_open(&mut self, tag: &str) -> bool {
        self.skip_ws();
        self.rest().starts_with(&format!("<{tag}>"))
    }
    fn expect_open(&mut self, tag: &str) -> Result<(), XmlRpcError> {
        self.skip_ws();
        let open = format!("<{tag}>");
        if self.rest().starts_with(&open) {
            self.pos += open.len();
            Ok(())
        } else {
            Err(self.malformed(&format!("expected <{tag}>")))
        }
    }
    fn expect_close(&mut self, tag: &str) -> Result<(), XmlRpcError> {
        self.skip_ws();
        let close = format!("</{tag}>");
        if self.rest().starts_with(&close) {
            self.pos += close.len();
            Ok(())
        } else {
            Err(self.malformed(&format!("expected </{tag}>")))
        }
    }
    fn malformed(&self, what: &str) -> XmlRpcError {
        let near: String = self.rest().chars().take(40).collect();
        XmlRpcError::Malformed(format!("{what} near `{}`", near.escape_debug()))
    }
    /// Text up to the next `<`, entity-decoded.
    fn text(&mut self) -> String {
        let end = self.rest().find('<').unwrap_or(self.rest().len());
        let raw = self.rest()[..end].to_owned();
        self.pos += end;
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
    }
    fn value(&mut self) -> Result<Value, XmlRpcError> {
        if self.depth >= MAX_DEPTH {
            return Err(XmlRpcError::Malformed(format!(
                "values nested deeper than {MAX_DEPTH} levels at byte {}",
                self.pos
            )));
        }
        self.depth += 1;
        let v = self.value_inner();
        self.depth -= 1;
        v
    }

    fn value_inner(&mut self) -> Result<Value, XmlRpcError> {
        self.expect_open("value")?;
        // A bare string: `<value>text</value>`.
        if !self.rest().trim_start().starts_with('<') || self.rest().starts_with("</value>") {
            let t = self.text();
            self.expect_close("value")?;
            return Ok(Value::Str(t));
        }
        self.skip_ws();
        let v = if self.peek_open("int") || self.peek_open("i4") {
            let tag = if self.peek_open("int") { "int" } else { "i4" };
            self.expect_open(tag)?;
            let t = self.text();
            self.expect_close(tag)?;
            Value::Int(
                t.trim()
                    .parse()
                    .map_err(|_| self.malformed(&format!("bad int `{t}`")))?,
            )
        } else if self.peek_open("string") {
            self.expect_open("string")?;
            let t = self.text();
            self.expect_close("string")?;
            Value::Str(t)
        } else if self.rest().starts_with("<string/>") {
            self.pos += "<string/>".len();
            Value::Str(String::new())
        } else if self.peek_open("array") {
            self.expect_open("array")?;
            let mut items = Vec::new();
            if self.rest().trim_start().starts_with("<data/>") {
                self.skip_ws();
                self.pos += "<data/>".len();
            } else {
                self.expect_open("data")?;
                while self.peek_open("value") {
                    items.push(self.value()?);
                }
                self.expect_close("data")?;
            }
            self.expect_close("array")?;
            Value::Array(items)
        } else if self.peek_open("struct") {
            let end = self
                .rest()
                .find("</struct>")
                .ok_or_else(|| self.malformed("unclosed <struct>"))?;
            let body = self.rest()[..end + "</struct>".len()].to_owned();
            self.pos += end + "</struct>".len();
            Value::Other(body)
        } else {
            // Types this client does not use (double, boolean, dateTime…): keep as text.
            let start = self.pos;
            let end = self
                .rest()
                .find("</value>")
                .ok_or_else(|| self.malformed("unclosed <value>"))?;
            self.pos += end;
            Value::Other(self.s[start..start + end].to_owned())
        };
        self.expect_close("value")?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_changelog() {
        let xml = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n\
            <value><array><data><value><string>Foo</string></value><value><string>1.0</string></value>\
            <value><int>1700000000</int></value><value><string>new release</string></value><value><int>7</int></value></data></array></value>\n\
            <value><array><data><value>b&amp;r</value><value><nil/></value>\
            <value><i4>1700000001</i4></value><value>remove project</value><value><i4>9</i4></value></data></array></value>\n\
            </data></array></value>\n</param>\n</params>\n</methodResponse>";
        let v = parse_response(xml).unwrap();
        let entries = parse_changelog(&v).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0],
            ChangelogEntry {
                name: "Foo".into(),
                action: "new release".into(),
                serial: 7
            }
        );
        assert_eq!(entries[1].name, "b&r");
        assert_eq!(entries[1].serial, 9);
    }

    #[test]
    fn parses_int_and_empty_array() {
        let v = parse_response(
            "<methodResponse><params><param><value><int>42</int></value></param></params></methodResponse>",
        )
        .unwrap();
        assert_eq!(parse_int(&v).unwrap(), 42);
        let v = parse_response("<methodResponse><params><param><value><array><data/></array></value></param></params></methodResponse>").unwrap();
        assert!(parse_changelog(&v).unwrap().is_empty());
    }

    #[test]
    fn reports_faults_and_garbage() {
        let fault = "<methodResponse><fault><value><struct><member><name>faultString</name><value>nope</value></member></struct></value></fault></methodResponse>";
        assert!(matches!(parse_response(fault), Err(XmlRpcError::Fault(_))));
        assert!(matches!(
            parse_response("<html>oops</html>"),
            Err(XmlRpcError::Malformed(_))
        ));
        let v = parse_response(
            "<methodResponse><params><param><value><int>-1</int></value></param></params></methodResponse>",
        )
        .unwrap();
        assert!(parse_int(&v).is_err());
    }

    /// `<value><array><data>` nested `levels` deep.
    pub(crate) fn nested(levels: usize) -> String {
        let mut xml = String::from("<?xml version='1.0'?><methodResponse><params><param>");
        xml.push_str(&"<value><array><data>".repeat(levels));
        xml.push_str(&"</data></array></value>".repeat(levels));
        xml.push_str("</param></params></methodResponse>");
        xml
    }

    #[test]
    fn finding_01_xmlrpc_deep_nesting_does_not_overflow_the_stack() {
        // 50,000 levels (2.3 MB) overflowed the stack before the depth limit.
        let xml = nested(50_000);
        let err = parse_response(&xml).unwrap_err();
        assert!(
            matches!(&err, XmlRpcError::Malformed(m) if m.contains("nested deeper than 32 levels")),
            "{err}"
        );
        // Within the limit it parses.
        assert!(parse_response(&nested(MAX_DEPTH)).is_ok());
        assert!(parse_response(&nested(MAX_DEPTH + 1)).is_err());
        // The same inside a fault.
        let fault = format!(
            "<methodResponse><fault>{}</fault></methodResponse>",
            "<value><array><data>".repeat(10_000)
        );
        assert!(matches!(parse_response(&fault), Err(XmlRpcError::Malformed(_))));
    }

    #[test]
    fn method_call_renders() {
        assert!(
            method_call("changelog_since_serial", &[5]).contains(
                "<methodName>changelog_since_serial</methodName><params><param><value><int>5</int>"
            )
        );
    }
}
