//! PEP 691 content negotiation (`Accept`, `?format=`) and `Accept-Encoding`.
//!
//! Each supported format gets the q-value of the most specific `Accept` range that matches it
//! (RFC 9110 §12.5.1; among equally specific ranges the highest q). The best q wins; on a tie
//! the format matched more specifically wins (so `text/html, */*` is HTML for a browser); on a
//! tie of explicitly named types the server prefers JSON v1, then HTML v1, then `text/html`.
//! Formats reached only through `*/*` prefer `text/html`, exactly like a request without
//! `Accept`: old tools that send `Accept: */*` (python-requests' default) expect HTML.
//! `application/*` reaches the two PEP 691 types, JSON first.

use percent_encoding::percent_decode_str;

/// A response format of the Simple API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `application/vnd.pypi.simple.v1+json`
    Json,
    /// `application/vnd.pypi.simple.v1+html`
    Html,
    /// `text/html` (PEP 503, what clients without PEP 691 get)
    TextHtml,
}

impl Format {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/vnd.pypi.simple.v1+json",
            Self::Html => "application/vnd.pypi.simple.v1+html",
            Self::TextHtml => "text/html; charset=utf-8",
        }
    }
}

/// How specifically an `Accept` range names a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Specificity {
    Any,
    Type,
    Exact,
}

/// The candidates, in the server's order of preference for explicitly named types.
const FORMATS: [Format; 3] = [Format::Json, Format::Html, Format::TextHtml];

/// How `range` (lowercased `type/subtype`) matches `format`, if at all.
fn matches(range: &str, format: Format) -> Option<Specificity> {
    let exact: &[&str] = match format {
        Format::Json => &[
            "application/vnd.pypi.simple.v1+json",
            "application/vnd.pypi.simple.latest+json",
        ],
        Format::Html => &[
            "application/vnd.pypi.simple.v1+html",
            "application/vnd.pypi.simple.latest+html",
        ],
        Format::TextHtml => &["text/html"],
    };
    if exact.contains(&range) {
        return Some(Specificity::Exact);
    }
    let main_type = match format {
        Format::Json | Format::Html => "application/*",
        Format::TextHtml => "text/*",
    };
    if range == main_type {
        return Some(Specificity::Type);
    }
    (range == "*/*").then_some(Specificity::Any)
}

/// One parsed element of an `Accept` header: lowercased media range and its q-value in
/// thousandths.
fn parse_accept(value: &str) -> impl Iterator<Item = (String, u16)> + '_ {
    value.split(',').filter_map(|element| {
        let mut parts = element.split(';');
        let range = parts.next()?.trim().to_ascii_lowercase();
        if range.is_empty() || !range.contains('/') {
            return None;
        }
        let mut q = 1000;
        for param in parts {
            let Some((name, val)) = param.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("q") {
                q = parse_q(val.trim())?;
            }
        }
        Some((range, q))
    })
}

/// A q-value (`0`, `0.5`, `1.000`) in thousandths; `None` when malformed.
fn parse_q(value: &str) -> Option<u16> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: u16 = match int {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        let digit = u16::from(b - b'0');
        thousandths += digit * [100, 10, 1].get(i).copied().unwrap_or(0);
    }
    let q = int * 1000 + thousandths;
    (q <= 1000).then_some(q)
}

/// Chooses the format for an `Accept` header value (`None`: the header was absent).
/// `None` as the result means nothing acceptable (406).
pub(crate) fn negotiate(accept: Option<&str>) -> Option<Format> {
    let accept = match accept.map(str::trim) {
        None | Some("") => return Some(Format::TextHtml),
        Some(accept) => accept,
    };
    // For each format: (q, specificity) of the most specific matching range.
    let mut best: [Option<(u16, Specificity)>; 3] = [None; 3];
    for (range, q) in parse_accept(accept) {
        for (slot, format) in best.iter_mut().zip(FORMATS) {
            let Some(spec) = matches(&range, format) else {
                continue;
            };
            *slot = match *slot {
                Some((old_q, old_spec)) if old_spec > spec || (old_spec == spec && old_q >= q) => {
                    Some((old_q, old_spec))
                }
                _ => Some((q, spec)),
            };
        }
    }
    let rank = |format: Format, spec: Specificity| -> u8 {
        match (spec, format) {
            // Reached only through `*/*`: behave like a request without `Accept`.
            (Specificity::Any, Format::TextHtml) => 2,
            (Specificity::Any, Format::Json) => 1,
            (Specificity::Any, Format::Html) => 0,
            (_, Format::Json) => 2,
            (_, Format::Html) => 1,
            (_, Format::TextHtml) => 0,
        }
    };
    best.iter()
        .zip(FORMATS)
        .filter_map(|(slot, format)| slot.map(|(q, spec)| (q, spec, rank(format, spec), format)))
        .filter(|&(q, ..)| q > 0)
        .max_by_key(|&(q, spec, rank, _)| (q, spec, rank))
        .map(|(.., format)| format)
}

/// The format for a request: `?format=` (PyPI's override, read like a one-element `Accept`)
/// wins over the `Accept` header. `None`: 406.
pub(crate) fn choose(accept: Option<&str>, query: Option<&str>) -> Option<Format> {
    match query.and_then(format_param) {
        Some(format) => negotiate(Some(&format)),
        None => negotiate(accept),
    }
}

/// The first `format` parameter of a query string, percent-decoded. A `+` stays a `+` (the
/// types contain one), and a space, which a form encoder would have made of it, becomes `+`.
fn format_param(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let value = pair.strip_prefix("format=")?;
        let decoded = percent_decode_str(value).decode_utf8().ok()?;
        let value = decoded.replace(' ', "+");
        // An empty override overrides nothing.
        (!value.is_empty()).then_some(value)
    })
}

/// Whether `Accept-Encoding` allows gzip (q > 0, by name or through `*`).
pub(crate) fn accepts_gzip<'a>(values: impl Iterator<Item = &'a str>) -> bool {
    let mut gzip: Option<u16> = None;
    let mut any: Option<u16> = None;
    for value in values {
        for element in value.split(',') {
            let mut parts = element.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = Some(1000);
            for param in parts {
                if let Some((name, val)) = param.split_once('=')
                    && name.trim().eq_ignore_ascii_case("q")
                {
                    q = parse_q(val.trim());
                }
            }
            let Some(q) = q else { continue };
            match coding.as_str() {
                "gzip" | "x-gzip" => gzip = Some(gzip.map_or(q, |old| old.max(q))),
                "*" => any = Some(any.map_or(q, |old| old.max(q))),
                _ => {}
            }
        }
    }
    gzip.or(any).is_some_and(|q| q > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = "application/vnd.pypi.simple.v1+json";
    const HTML: &str = "application/vnd.pypi.simple.v1+html";

    #[test]
    fn q_values() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.01"), Some(10));
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("2"), None);
        assert_eq!(parse_q("0.0001"), None);
        assert_eq!(parse_q("x"), None);
    }

    #[test]
    fn negotiation_matrix() {
        use Format::*;
        let cases: &[(Option<&str>, Option<Format>)] = &[
            (None, Some(TextHtml)),
            (Some(""), Some(TextHtml)),
            (Some(JSON), Some(Json)),
            (Some("application/vnd.pypi.simple.latest+json"), Some(Json)),
            (Some(HTML), Some(Html)),
            (Some("application/vnd.pypi.simple.latest+html"), Some(Html)),
            (Some("text/html"), Some(TextHtml)),
            (Some("TEXT/HTML"), Some(TextHtml)),
            (Some("*/*"), Some(TextHtml)),
            (Some("application/*"), Some(Json)),
            (Some("text/*"), Some(TextHtml)),
            (Some("application/json"), None),
            (Some("image/png, text/plain"), None),
            // pip and uv
            (
                Some(
                    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01",
                ),
                Some(Json),
            ),
            (
                Some("text/html;q=0.9, application/vnd.pypi.simple.v1+json;q=0.5"),
                Some(TextHtml),
            ),
            (Some("application/vnd.pypi.simple.v1+json, text/html"), Some(Json)),
            (Some("text/html, application/vnd.pypi.simple.v1+html"), Some(Html)),
            // a browser
            (
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                Some(TextHtml),
            ),
            (Some("text/html, */*"), Some(TextHtml)),
            (Some("application/vnd.pypi.simple.v1+json, */*"), Some(Json)),
            (Some("*/*, text/html;q=0"), Some(Json)),
            (Some("text/html;q=0"), None),
            (
                Some("application/vnd.pypi.simple.v1+json;q=0, application/*"),
                Some(Html),
            ),
            (
                Some("application/vnd.pypi.simple.v1+json; q=bogus, text/html"),
                Some(TextHtml),
            ),
            (Some("garbage"), None),
        ];
        for (accept, expected) in cases {
            assert_eq!(negotiate(*accept), *expected, "Accept: {accept:?}");
        }
    }

    #[test]
    fn format_parameter_overrides_accept() {
        assert_eq!(
            choose(
                Some("text/html"),
                Some("format=application/vnd.pypi.simple.v1+json")
            ),
            Some(Format::Json)
        );
        assert_eq!(
            choose(
                Some("text/html"),
                Some("format=application%2Fvnd.pypi.simple.v1%2Bjson")
            ),
            Some(Format::Json)
        );
        assert_eq!(
            choose(Some(JSON), Some("x=1&format=text/html")),
            Some(Format::TextHtml)
        );
        assert_eq!(
            choose(Some(JSON), Some("format=application/vnd.pypi.simple.v1 html")),
            Some(Format::Html)
        );
        assert_eq!(choose(Some(JSON), Some("format=application/json")), None);
        assert_eq!(choose(Some(JSON), Some("other=1")), Some(Format::Json));
        assert_eq!(choose(None, Some("format=")), Some(Format::TextHtml));
    }

    #[test]
    fn gzip_acceptance() {
        let ok = |v: &str| accepts_gzip(std::iter::once(v));
        assert!(ok("gzip"));
        assert!(ok("br, gzip;q=0.5, deflate"));
        assert!(ok("*"));
        assert!(ok("x-gzip"));
        assert!(!ok("gzip;q=0"));
        assert!(!ok("*, gzip;q=0"));
        assert!(!ok("br, identity"));
        assert!(!ok(""));
        assert!(ok("GZIP"));
        assert!(!accepts_gzip(std::iter::empty()));
    }
}
