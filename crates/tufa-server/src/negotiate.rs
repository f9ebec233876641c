//! PEP 691 content negotiation (`Accept`, `?format=`) and the choice of a pre-compressed
//! variant by `Accept-Encoding` (`choose_coding`). [`choose`] and [`Format`] are public: `tufa
//! proxy` answers pip and uv by the same rules.
//!
//! Each supported format gets the q-value of the most specific `Accept` range that matches it
//! (RFC 9110 §12.5.1; among equally specific ranges the highest q). The best q wins; on a tie
//! the format matched more specifically wins (so `text/html, */*` is HTML for a browser); on a
//! tie of explicitly named types the server prefers JSON v1, then HTML v1, then `text/html`.
//! Formats reached only through `*/*` prefer `text/html`, exactly like a request without
//! `Accept`: old tools that send `Accept: */*` (python-requests' default) expect HTML.
//! `application/*` reaches the two PEP 691 types, JSON first.

use axum::http::{HeaderMap, header};
use percent_encoding::percent_decode_str;

/// A response format of the Simple API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/vnd.pypi.simple.v1+json`
    Json,
    /// `application/vnd.pypi.simple.v1+html`
    Html,
    /// `text/html` (PEP 503, what clients without PEP 691 get)
    TextHtml,
}

impl Format {
    pub fn content_type(self) -> &'static str {
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
        Some((range, q_param(parts)?))
    })
}

/// The q-value among an element's parameters (1 when it has none); `None` when it is
/// malformed, and then the whole element is ignored.
fn q_param<'a>(params: impl Iterator<Item = &'a str>) -> Option<u16> {
    let mut q = 1000;
    for param in params {
        let Some((name, val)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("q") {
            q = parse_q(val.trim())?;
        }
    }
    Some(q)
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
pub fn negotiate(accept: Option<&str>) -> Option<Format> {
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
pub fn choose(accept: Option<&str>, query: Option<&str>) -> Option<Format> {
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

/// A content coding a response can be stored pre-compressed in (`Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    /// `zstd` (RFC 8878).
    Zstd,
    /// `gzip` (RFC 1952); a request's `x-gzip` names it too.
    Gzip,
}

impl Coding {
    /// Every coding, in the server's order of preference when the client's q-values tie:
    /// zstd decodes faster and is smaller at the levels tufa stores.
    pub(crate) const PREFERENCE: [Self; 2] = [Self::Zstd, Self::Gzip];

    /// The `Content-Encoding` value (and the ETag suffix of the variant).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Gzip => "gzip",
        }
    }

    /// The coding an `Accept-Encoding` token names, case-insensitively.
    fn named(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("zstd") {
            Some(Self::Zstd)
        } else if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
            Some(Self::Gzip)
        } else {
            None
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Zstd => 0,
            Self::Gzip => 1,
        }
    }
}

/// Every `Accept-Encoding` value of a request, in order (the header may be repeated); values
/// that are not visible ASCII are skipped.
pub(crate) fn accept_encoding(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
}

/// The coding to send a response in, given the request's `Accept-Encoding` values (see
/// [`accept_encoding`]) and which codings the response is stored in (`available`). `None`:
/// identity, the bytes as they are (also when the header is absent).
///
/// RFC 9110 §12.5.3: each coding gets the q-value of the elements naming it (the highest, if
/// named more than once), or else that of `*`; q=0 excludes it, and so does `*;q=0` for the
/// codings not named. Among the available codings left, the highest q wins, ties going to the
/// server's preference ([`Coding::PREFERENCE`]). Identity is chosen when no coding is left, or
/// when the client names `identity` with a higher q than the best coding
/// (`gzip;q=0.5, identity`). Elements with a malformed q-value are ignored, as in `Accept`.
/// No allocation: it runs on every page request.
pub(crate) fn choose_coding<'a>(
    values: impl IntoIterator<Item = &'a str>,
    available: impl Fn(Coding) -> bool,
) -> Option<Coding> {
    let mut named: [Option<u16>; Coding::PREFERENCE.len()] = [None; Coding::PREFERENCE.len()];
    let mut any: Option<u16> = None;
    let mut identity: Option<u16> = None;
    for value in values {
        for element in value.split(',') {
            let mut parts = element.split(';');
            let token = parts.next().unwrap_or_default().trim();
            let Some(q) = q_param(parts) else { continue };
            let slot = if token == "*" {
                &mut any
            } else if token.eq_ignore_ascii_case("identity") {
                &mut identity
            } else if let Some(coding) = Coding::named(token) {
                &mut named[coding.index()]
            } else {
                continue;
            };
            *slot = Some(slot.map_or(q, |old| old.max(q)));
        }
    }
    let mut best: Option<(u16, Coding)> = None;
    for coding in Coding::PREFERENCE {
        let Some(q) = named[coding.index()].or(any) else {
            continue;
        };
        // Strictly higher: an earlier (preferred) coding keeps a tie.
        if q > 0 && best.is_none_or(|(best_q, _)| q > best_q) && available(coding) {
            best = Some((q, coding));
        }
    }
    best.filter(|&(q, _)| identity.is_none_or(|identity_q| q >= identity_q))
        .map(|(_, coding)| coding)
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

    /// What pip 26.3 and uv 0.13.9 send (captured from their requests), and what reqwest sends
    /// with all its decoders on.
    const PIP: &str = "gzip, deflate";
    const UV: &str = "gzip, deflate, zstd";
    const REQWEST_ALL: &str = "gzip, br, zstd, deflate";

    #[test]
    fn coding_choice_matrix() {
        use Coding::*;
        let both = |_: Coding| true;
        let gzip_only = |c: Coding| c == Gzip;
        let zstd_only = |c: Coding| c == Zstd;
        let none = |_: Coding| false;
        /// `Accept-Encoding` values, the codings stored, the expected choice.
        type Case<'a> = (&'a [&'a str], &'a dyn Fn(Coding) -> bool, Option<Coding>);
        let cases: &[Case] = &[
            (&[PIP], &both, Some(Gzip)),
            (&[UV], &both, Some(Zstd)),
            (&[REQWEST_ALL], &both, Some(Zstd)),
            (&["gzip, deflate, br, zstd"], &both, Some(Zstd)),
            // A page published before zstd variants existed.
            (&[UV], &gzip_only, Some(Gzip)),
            (&[PIP], &zstd_only, None),
            (&[UV], &none, None),
            // q-values win over the server's preference; ties go to zstd.
            (&["gzip;q=1, zstd;q=0.5"], &both, Some(Gzip)),
            (&["gzip;q=0.5, zstd;q=0.9"], &both, Some(Zstd)),
            (&["zstd;q=0.5, gzip;q=0.5"], &both, Some(Zstd)),
            (&["gzip;q=1, zstd;q=0.5"], &zstd_only, Some(Zstd)),
            (&["x-gzip"], &both, Some(Gzip)),
            // `*` reaches every coding not named.
            (&["*"], &both, Some(Zstd)),
            (&["*"], &gzip_only, Some(Gzip)),
            (&["gzip;q=0.8, *;q=0.5"], &both, Some(Gzip)),
            (&["gzip;q=0.5, *"], &both, Some(Zstd)),
            (&["*;q=0, gzip"], &both, Some(Gzip)),
            (&["*;q=0"], &both, None),
            (&["*, zstd;q=0"], &both, Some(Gzip)),
            (&["*, zstd;q=0"], &zstd_only, None),
            // q=0 excludes.
            (&["gzip;q=0"], &both, None),
            (&["zstd;q=0, gzip"], &both, Some(Gzip)),
            (&["zstd;q=0.000, gzip;q=0.001"], &both, Some(Gzip)),
            // identity: the raw bytes, unless a coding is ranked at least as high.
            (&["identity"], &both, None),
            (&["br, identity"], &both, None),
            (&["gzip;q=0.5, identity"], &both, None),
            (&["gzip, identity;q=0.5"], &both, Some(Gzip)),
            (&["zstd, identity"], &both, Some(Zstd)),
            (&["identity;q=0"], &both, None),
            // Case, spacing, empty and odd input.
            (&["GZIP"], &both, Some(Gzip)),
            (&["Zstd;Q=0.7 ,  GZip ; q=0.6"], &both, Some(Zstd)),
            (&[""], &both, None),
            (&[], &both, None),
            (&[",,,;;;=="], &both, None),
            (&["deflate, br, compress"], &both, None),
            // A malformed q-value drops its element (it is not q=1).
            (&["zstd;q=1.5, gzip"], &both, Some(Gzip)),
            (&["zstd;q=abc"], &both, None),
            (&["zstd;q=-1, gzip;q=0.1"], &both, Some(Gzip)),
            (&["gzip;level=9"], &both, Some(Gzip)),
            // The header repeated: every instance counts, a coding named twice keeps its best q.
            (&["gzip", "zstd"], &both, Some(Zstd)),
            (&["zstd;q=0.1", "gzip;q=0.2"], &both, Some(Gzip)),
            (&["zstd;q=0", "zstd;q=0.5, gzip;q=0.4"], &both, Some(Zstd)),
            (&["*;q=0", PIP], &both, Some(Gzip)),
        ];
        for (values, available, expected) in cases {
            assert_eq!(
                choose_coding(values.iter().copied(), available),
                *expected,
                "Accept-Encoding: {values:?}"
            );
        }
    }

    #[test]
    fn coding_names() {
        assert_eq!(Coding::Zstd.as_str(), "zstd");
        assert_eq!(Coding::Gzip.as_str(), "gzip");
        for coding in Coding::PREFERENCE {
            assert_eq!(Coding::named(coding.as_str()), Some(coding));
        }
        assert_eq!(Coding::PREFERENCE[0], Coding::Zstd);
    }

    #[test]
    fn accept_encoding_reads_every_instance_of_the_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(accept_encoding(&headers).count(), 0);
        headers.append(header::ACCEPT_ENCODING, "gzip".parse().unwrap());
        headers.append(
            header::ACCEPT_ENCODING,
            axum::http::HeaderValue::from_bytes(b"zstd\xff").unwrap(),
        );
        headers.append(header::ACCEPT_ENCODING, "zstd;q=0.5".parse().unwrap());
        assert_eq!(
            accept_encoding(&headers).collect::<Vec<_>>(),
            ["gzip", "zstd;q=0.5"]
        );
        assert_eq!(
            choose_coding(accept_encoding(&headers), |_| true),
            Some(Coding::Gzip)
        );
    }
}
