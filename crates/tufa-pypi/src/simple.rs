//! Simple Repository API models: PEP 691 JSON (with PEP 592 yanking, PEP 658/714 core
//! metadata, PEP 700 versions/size/upload-time, PEP 740 provenance, PEP 792 project status)
//! and a tolerant reader for PEP 503 HTML pages, for upstreams that speak only HTML.
//!
//! These are wire models: strings from upstream stay strings here (a hostile filename must
//! reject one file, not the whole page); the sync turns each file into typed values.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::name::truncate_for_error;

/// The API version tufa reads. PEP 691: a client must refuse a different major version.
pub const SUPPORTED_MAJOR_API_VERSION: u32 = 1;

/// `meta` of every PEP 691 response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    #[serde(rename = "api-version")]
    pub api_version: String,
    /// PyPI's change serial of this response (a PyPI extension, used for incremental sync).
    /// PyPI sends it as a string in project pages and as a number elsewhere; both are read.
    #[serde(
        rename = "_last-serial",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "serial_from_number_or_string"
    )]
    pub last_serial: Option<u64>,
}

impl Meta {
    /// Checks the major API version is one this code understands.
    pub fn check_api_version(&self) -> Result<(), SimpleApiError> {
        let major = self
            .api_version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok());
        if major == Some(SUPPORTED_MAJOR_API_VERSION) {
            Ok(())
        } else {
            Err(SimpleApiError::UnsupportedApiVersion(truncate_for_error(
                &self.api_version,
            )))
        }
    }
}

fn serial_from_number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Number(n)) => Ok(Some(n)),
        Some(Raw::Text(t)) => t.trim().parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!(
                "`_last-serial` `{}` is not a number",
                truncate_for_error(&t)
            ))
        }),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimpleApiError {
    #[error("unsupported Simple API version `{0}` (tufa reads 1.x)")]
    UnsupportedApiVersion(String),
    #[error("file URL `{url}` cannot be resolved against `{base}`: {reason}")]
    BadUrl {
        url: String,
        base: String,
        reason: String,
    },
    #[error("project page lists more than {max} files, the limit (sync.limits.max_files_per_project)")]
    TooManyFiles { max: usize },
}

/// The root `/simple/` list (PEP 691).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectList {
    pub meta: Meta,
    pub projects: Vec<ProjectListEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectListEntry {
    pub name: String,
    #[serde(
        rename = "_last-serial",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "serial_from_number_or_string"
    )]
    pub last_serial: Option<u64>,
}

/// One project's page (PEP 691).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectPage {
    pub meta: Meta,
    pub name: String,
    pub files: Vec<File>,
    /// PEP 700.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<String>>,
    /// PEP 792.
    #[serde(rename = "project-status", default, skip_serializing_if = "Option::is_none")]
    pub project_status: Option<ProjectStatus>,
}

/// PEP 792 project status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectStatus {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One file entry of a project page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    pub filename: String,
    pub url: String,
    pub hashes: BTreeMap<String, String>,
    #[serde(rename = "requires-python", default, skip_serializing_if = "Option::is_none")]
    pub requires_python: Option<String>,
    #[serde(default, skip_serializing_if = "Yanked::is_not_yanked")]
    pub yanked: Yanked,
    /// PEP 700.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// PEP 700: ISO 8601 with `Z`.
    #[serde(rename = "upload-time", default, skip_serializing_if = "Option::is_none")]
    pub upload_time: Option<String>,
    /// PEP 714 name of the PEP 658 key.
    #[serde(rename = "core-metadata", default, skip_serializing_if = "Option::is_none")]
    pub core_metadata: Option<CoreMetadata>,
    /// PEP 658's original key. Written as `data-dist-info-metadata`, the spelling PyPI sends
    /// and older pip reads: PEP 714 explains that pip up to 23.1 fails hard on the spec's
    /// `dist-info-metadata`, so that spelling is only ever read, never written.
    #[serde(
        rename = "data-dist-info-metadata",
        alias = "dist-info-metadata",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dist_info_metadata: Option<CoreMetadata>,
    #[serde(rename = "gpg-sig", default, skip_serializing_if = "Option::is_none")]
    pub gpg_sig: Option<bool>,
    /// PEP 740: URL of the provenance object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
}

impl File {
    /// The metadata availability, preferring PEP 714's key over the legacy one.
    pub fn metadata(&self) -> Option<&CoreMetadata> {
        self.core_metadata.as_ref().or(self.dist_info_metadata.as_ref())
    }

    /// The `sha256` hash entry, if any.
    pub fn sha256(&self) -> Option<&str> {
        self.hashes.get("sha256").map(String::as_str)
    }

    /// The file URL resolved against the page URL (PEP 691 allows relative URLs).
    pub fn resolved_url(&self, page_url: &Url) -> Result<Url, SimpleApiError> {
        page_url.join(&self.url).map_err(|e| SimpleApiError::BadUrl {
            url: truncate_for_error(&self.url),
            base: page_url.to_string(),
            reason: e.to_string(),
        })
    }
}

/// PEP 592 yanking: `false`, `true`, or a reason string (which means yanked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Yanked {
    #[default]
    No,
    Yes {
        reason: Option<String>,
    },
}

impl Yanked {
    pub fn is_yanked(&self) -> bool {
        matches!(self, Yanked::Yes { .. })
    }
    fn is_not_yanked(&self) -> bool {
        !self.is_yanked()
    }
    pub fn reason(&self) -> Option<&str> {
        match self {
            Yanked::Yes { reason } => reason.as_deref(),
            Yanked::No => None,
        }
    }
}

impl Serialize for Yanked {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Yanked::No => s.serialize_bool(false),
            Yanked::Yes { reason: None } => s.serialize_bool(true),
            Yanked::Yes { reason: Some(r) } => s.serialize_str(r),
        }
    }
}

impl<'de> Deserialize<'de> for Yanked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Reason(String),
        }
        Ok(match Option::<Raw>::deserialize(d)? {
            None | Some(Raw::Bool(false)) => Yanked::No,
            Some(Raw::Bool(true)) => Yanked::Yes { reason: None },
            Some(Raw::Reason(r)) => Yanked::Yes { reason: Some(r) },
        })
    }
}

/// PEP 658/714: `false`, `true`, or a hash dictionary of the metadata file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreMetadata {
    Absent,
    Present { hashes: BTreeMap<String, String> },
}

impl CoreMetadata {
    pub fn is_present(&self) -> bool {
        matches!(self, CoreMetadata::Present { .. })
    }
    pub fn sha256(&self) -> Option<&str> {
        match self {
            CoreMetadata::Present { hashes } => hashes.get("sha256").map(String::as_str),
            CoreMetadata::Absent => None,
        }
    }
}

impl Serialize for CoreMetadata {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CoreMetadata::Absent => s.serialize_bool(false),
            CoreMetadata::Present { hashes } if hashes.is_empty() => s.serialize_bool(true),
            CoreMetadata::Present { hashes } => hashes.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for CoreMetadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Hashes(BTreeMap<String, String>),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Bool(false) => CoreMetadata::Absent,
            Raw::Bool(true) => CoreMetadata::Present {
                hashes: BTreeMap::new(),
            },
            Raw::Hashes(hashes) => CoreMetadata::Present { hashes },
        })
    }
}

// ---------------------------------------------------------------------------------------------
// PEP 503 HTML reading
// ---------------------------------------------------------------------------------------------

/// One `<a>` element of a PEP 503 page, with entities decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Anchor {
    pub href: String,
    pub text: String,
    pub attributes: BTreeMap<String, String>,
}

/// Extracts every anchor from an HTML page. Tolerant of the variations real indexes emit
/// (attribute quoting, case, whitespace), not a full HTML parser.
pub fn parse_anchors(html: &str) -> Vec<Anchor> {
    match anchors(html, usize::MAX) {
        Ok(a) | Err(a) => a,
    }
}

/// Anchors of `html`; stops at anchor `max + 1` and returns `Err` with the first `max`.
fn anchors(html: &str, max: usize) -> Result<Vec<Anchor>, Vec<Anchor>> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(start) = lower[pos..].find("<a").map(|i| i + pos) {
        let after = start + 2;
        // `<a` must be followed by whitespace or `>` (not `<abbr>`).
        if !lower[after..].starts_with(|c: char| c.is_ascii_whitespace() || c == '>') {
            pos = after;
            continue;
        }
        let Some(tag_end) = find_tag_end(html, after) else {
            break;
        };
        let attributes = parse_attributes(&html[after..tag_end]);
        let text_start = tag_end + 1;
        let text_end = lower[text_start..]
            .find("</a")
            .map_or(html.len(), |i| i + text_start);
        let text = html_escape::decode_html_entities(html[text_start..text_end].trim()).into_owned();
        let href = attributes.get("href").cloned().unwrap_or_default();
        if out.len() == max {
            return Err(out);
        }
        out.push(Anchor {
            href,
            text,
            attributes,
        });
        pos = text_end;
    }
    Ok(out)
}

/// Index of the `>` closing a tag, skipping quoted attribute values.
fn find_tag_end(html: &str, from: usize) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (i, &b) in html.as_bytes().iter().enumerate().skip(from) {
        match (quote, b) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return Some(i),
            (None, _) => {}
        }
    }
    None
}

fn parse_attributes(s: &str) -> BTreeMap<String, String> {
    let mut attrs = BTreeMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let name_start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        if name_start == i {
            break;
        }
        let name = s[name_start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                let ve = s[vs..].find(q as char).map_or(s.len(), |e| e + vs);
                value = s[vs..ve].to_owned();
                i = (ve + 1).min(b.len());
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = s[vs..i].to_owned();
            }
        }
        attrs
            .entry(name)
            .or_insert_with(|| html_escape::decode_html_entities(&value).into_owned());
    }
    attrs
}

/// Reads a PEP 503 project page into the PEP 691 model (`api-version` from the
/// `pypi:repository-version` meta tag, `1.0` when absent). Hashes come from URL fragments,
/// PEP 592/658/714 from `data-*` attributes. URLs stay as written; resolve them with
/// [`File::resolved_url`] against the page URL.
pub fn parse_project_html(html: &str, name: &str) -> ProjectPage {
    project_html(html, name, parse_anchors(html))
}

/// [`parse_project_html`] that stops reading at anchor `max_files + 1` with
/// [`SimpleApiError::TooManyFiles`], so a hostile page's size in memory is bounded by the
/// limit, not by the page.
pub fn parse_project_html_limited(
    html: &str,
    name: &str,
    max_files: usize,
) -> Result<ProjectPage, SimpleApiError> {
    let anchors = anchors(html, max_files).map_err(|_| SimpleApiError::TooManyFiles { max: max_files })?;
    Ok(project_html(html, name, anchors))
}

fn project_html(html: &str, name: &str, anchors: Vec<Anchor>) -> ProjectPage {
    let files = anchors
        .into_iter()
        .map(|a| {
            let (url, fragment) = match a.href.split_once('#') {
                Some((u, f)) => (u.to_owned(), Some(f.to_owned())),
                None => (a.href.clone(), None),
            };
            let mut hashes = BTreeMap::new();
            if let Some((algo, value)) = fragment.as_deref().and_then(|f| f.split_once('=')) {
                hashes.insert(algo.to_ascii_lowercase(), value.to_owned());
            }
            let metadata = |key: &str| a.attributes.get(key).map(|v| html_metadata(v));
            File {
                filename: a.text.clone(),
                url,
                hashes,
                requires_python: a
                    .attributes
                    .get("data-requires-python")
                    .cloned()
                    .filter(|s| !s.is_empty()),
                yanked: match a.attributes.get("data-yanked") {
                    None => Yanked::No,
                    Some(r) if r.is_empty() => Yanked::Yes { reason: None },
                    Some(r) => Yanked::Yes {
                        reason: Some(r.clone()),
                    },
                },
                size: None,
                upload_time: None,
                core_metadata: metadata("data-core-metadata"),
                dist_info_metadata: metadata("data-dist-info-metadata"),
                gpg_sig: a.attributes.get("data-gpg-sig").map(|v| v == "true"),
                provenance: a.attributes.get("data-provenance").cloned(),
            }
        })
        .collect();
    ProjectPage {
        meta: Meta {
            api_version: repository_version(html).unwrap_or_else(|| "1.0".to_owned()),
            last_serial: None,
        },
        name: name.to_owned(),
        files,
        versions: None,
        project_status: None,
    }
}

/// Reads a PEP 691 project page, counting `files` (and `versions`) entries while parsing:
/// entry `max_files + 1` ends the parse with an error naming the limit, so a hostile page
/// costs at most the limit's worth of memory, not the page's.
pub fn parse_project_page_json(body: &[u8], max_files: usize) -> Result<ProjectPage, serde_json::Error> {
    use serde::de::DeserializeSeed as _;
    let mut de = serde_json::Deserializer::from_slice(body);
    let page = PageSeed { max_files }.deserialize(&mut de)?;
    de.end()?;
    Ok(page)
}

struct PageSeed {
    max_files: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for PageSeed {
    type Value = ProjectPage;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ProjectPage, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PageSeed {
    type Value = ProjectPage;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a PEP 691 project page object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ProjectPage, A::Error> {
        use serde::de::Error as _;
        let mut meta = None;
        let mut name = None;
        let mut files = None;
        let mut versions = None;
        let mut project_status = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let dup = |field: &'static str| A::Error::duplicate_field(field);
            match key.as_ref() {
                "meta" if meta.is_some() => return Err(dup("meta")),
                "meta" => meta = Some(map.next_value::<Meta>()?),
                "name" if name.is_some() => return Err(dup("name")),
                "name" => name = Some(map.next_value::<String>()?),
                "files" if files.is_some() => return Err(dup("files")),
                "files" => {
                    files = Some(map.next_value_seed(LimitedVec::<File>::new("files", self.max_files))?)
                }
                "versions" if versions.is_some() => return Err(dup("versions")),
                "versions" => {
                    versions = Some(map.next_value_seed(OptionalLimitedVec(LimitedVec::<String>::new(
                        "versions",
                        self.max_files,
                    )))?)
                }
                "project-status" if project_status.is_some() => return Err(dup("project-status")),
                "project-status" => project_status = Some(map.next_value::<Option<ProjectStatus>>()?),
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(ProjectPage {
            meta: meta.ok_or_else(|| A::Error::missing_field("meta"))?,
            name: name.ok_or_else(|| A::Error::missing_field("name"))?,
            files: files.ok_or_else(|| A::Error::missing_field("files"))?,
            versions: versions.flatten(),
            project_status: project_status.flatten(),
        })
    }
}

/// A JSON array read element by element, refused at element `max + 1`.
struct LimitedVec<T> {
    what: &'static str,
    max: usize,
    _t: std::marker::PhantomData<T>,
}

impl<T> LimitedVec<T> {
    fn new(what: &'static str, max: usize) -> Self {
        Self {
            what,
            max,
            _t: std::marker::PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> serde::de::DeserializeSeed<'de> for LimitedVec<T> {
    type Value = Vec<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for LimitedVec<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an array of at most {} {}", self.max, self.what)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max).min(1024));
        while let Some(item) = seq.next_element::<T>()? {
            if out.len() == self.max {
                return Err(serde::de::Error::custom(format!(
                    "project page lists more than {} {}, the limit (sync.limits.max_files_per_project)",
                    self.max, self.what
                )));
            }
            out.push(item);
        }
        Ok(out)
    }
}

/// `null` or a [`LimitedVec`].
struct OptionalLimitedVec<T>(LimitedVec<T>);

impl<'de, T: Deserialize<'de>> serde::de::DeserializeSeed<'de> for OptionalLimitedVec<T> {
    type Value = Option<Vec<T>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Vec<T>>, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for OptionalLimitedVec<T> {
    type Value = Option<Vec<T>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("null or an array")
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        use serde::de::DeserializeSeed as _;
        self.0.deserialize(d).map(Some)
    }
}

fn html_metadata(value: &str) -> CoreMetadata {
    match value.split_once('=') {
        Some((algo, hash)) => CoreMetadata::Present {
            hashes: BTreeMap::from([(algo.to_ascii_lowercase(), hash.to_owned())]),
        },
        None if value == "false" => CoreMetadata::Absent,
        None => CoreMetadata::Present {
            hashes: BTreeMap::new(),
        },
    }
}

/// The PEP 629 `<meta name="pypi:repository-version" content="…">` value.
fn repository_version(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let mut pos = 0;
    while let Some(i) = lower[pos..].find("<meta").map(|i| i + pos) {
        let end = find_tag_end(html, i + 5)?;
        let attrs = parse_attributes(&html[i + 5..end]);
        if attrs.get("name").map(String::as_str) == Some("pypi:repository-version") {
            return attrs.get("content").cloned();
        }
        pos = end;
    }
    None
}

/// Reads the PEP 503 root list: the text of each anchor is a project name.
pub fn parse_project_list_html(html: &str) -> ProjectList {
    ProjectList {
        meta: Meta {
            api_version: repository_version(html).unwrap_or_else(|| "1.0".to_owned()),
            last_serial: None,
        },
        projects: parse_anchors(html)
            .into_iter()
            .map(|a| ProjectListEntry {
                name: a.text,
                last_serial: None,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYPI_JSON: &str = r#"{
      "meta": {"api-version": "1.4", "_last-serial": 2468},
      "name": "demo",
      "versions": ["1.0", "1.1"],
      "files": [
        {"filename": "demo-1.0-py3-none-any.whl", "url": "https://files.example/demo-1.0-py3-none-any.whl",
         "hashes": {"sha256": "aa"}, "requires-python": ">=3.8", "yanked": false, "size": 10,
         "upload-time": "2024-01-02T03:04:05.123456Z", "core-metadata": {"sha256": "bb"},
         "dist-info-metadata": {"sha256": "bb"},
         "provenance": "https://files.example/demo.provenance"},
        {"filename": "demo-1.1.tar.gz", "url": "../../files/demo-1.1.tar.gz", "hashes": {"sha256": "cc"},
         "yanked": "broken build", "core-metadata": false, "size": 20},
        {"filename": "demo-0.9.tar.gz", "url": "/x/demo-0.9.tar.gz", "hashes": {}, "yanked": true}
      ],
      "project-status": {"status": "archived", "reason": "moved"}
    }"#;

    #[test]
    fn json_round_trip() {
        let page: ProjectPage = serde_json::from_str(PYPI_JSON).unwrap();
        page.meta.check_api_version().unwrap();
        assert_eq!(page.meta.last_serial, Some(2468));
        assert_eq!(
            page.files[0].metadata().and_then(CoreMetadata::sha256),
            Some("bb")
        );
        assert_eq!(
            page.files[0].provenance.as_deref(),
            Some("https://files.example/demo.provenance")
        );
        assert_eq!(page.files[1].yanked.reason(), Some("broken build"));
        assert!(!page.files[1].metadata().unwrap().is_present());
        assert_eq!(page.files[2].yanked, Yanked::Yes { reason: None });
        assert_eq!(page.project_status.as_ref().unwrap().status, "archived");
        let again: ProjectPage = serde_json::from_str(&serde_json::to_string(&page).unwrap()).unwrap();
        assert_eq!(again, page);
    }

    #[test]
    fn never_writes_the_key_that_breaks_old_pip() {
        let page: ProjectPage = serde_json::from_str(PYPI_JSON).unwrap();
        assert!(
            page.files[0].dist_info_metadata.is_some(),
            "the PEP 658 spelling is read"
        );
        let out = serde_json::to_string(&page).unwrap();
        assert!(!out.contains("\"dist-info-metadata\""), "{out}");
        assert!(out.contains("\"data-dist-info-metadata\"") && out.contains("\"core-metadata\""));
    }

    #[test]
    fn relative_urls_resolve_against_the_page() {
        let page: ProjectPage = serde_json::from_str(PYPI_JSON).unwrap();
        let base = Url::parse("https://idx.example/simple/demo/").unwrap();
        assert_eq!(
            page.files[1].resolved_url(&base).unwrap().as_str(),
            "https://idx.example/files/demo-1.1.tar.gz"
        );
        assert_eq!(
            page.files[2].resolved_url(&base).unwrap().as_str(),
            "https://idx.example/x/demo-0.9.tar.gz"
        );
    }

    #[test]
    fn last_serial_as_pypi_sends_it() {
        // PyPI's project pages carry the serial as a string; its root list as a number.
        let page: ProjectPage = serde_json::from_str(
            r#"{"meta":{"api-version":"1.4","_last-serial":"22034184"},"name":"x","files":[]}"#,
        )
        .unwrap();
        assert_eq!(page.meta.last_serial, Some(22034184));
        let list: ProjectList = serde_json::from_str(
            r#"{"meta":{"api-version":"1.4","_last-serial":7},"projects":[{"name":"a","_last-serial":5}]}"#,
        )
        .unwrap();
        assert_eq!(
            (list.meta.last_serial, list.projects[0].last_serial),
            (Some(7), Some(5))
        );
        let bad = serde_json::from_str::<Meta>(r#"{"api-version":"1.0","_last-serial":"x1"}"#).unwrap_err();
        assert!(bad.to_string().contains("x1"), "{bad}");
    }

    #[test]
    fn refuses_other_major_versions() {
        for (v, ok) in [
            ("1.0", true),
            ("1.4", true),
            ("2.0", false),
            ("x", false),
            ("", false),
        ] {
            let m = Meta {
                api_version: v.into(),
                last_serial: None,
            };
            assert_eq!(m.check_api_version().is_ok(), ok, "{v}");
        }
    }

    #[test]
    fn reads_pep503_html() {
        let html = r#"<!DOCTYPE html><html><head><meta name="pypi:repository-version" content="1.1">
          <title>Links for demo</title></head><body><h1>Links for demo</h1>
          <a href="../../files/demo-1.0-py3-none-any.whl#sha256=AbC" data-requires-python="&gt;=3.8" data-core-metadata="sha256=dd" data-dist-info-metadata="sha256=dd">demo-1.0-py3-none-any.whl</a><br/>
          <A HREF='https://h.example/demo-1.1.tar.gz#sha256=ee' data-yanked="bad &amp; broken">demo-1.1.tar.gz</A>
          <a href=/plain/demo-0.1.zip data-yanked>demo-0.1.zip</a>
          <abbr>not a link</abbr>
        </body></html>"#;
        let page = parse_project_html(html, "demo");
        assert_eq!(page.meta.api_version, "1.1");
        assert_eq!(page.files.len(), 3);
        let f = &page.files[0];
        assert_eq!(f.filename, "demo-1.0-py3-none-any.whl");
        assert_eq!(f.url, "../../files/demo-1.0-py3-none-any.whl");
        assert_eq!(f.sha256(), Some("AbC"));
        assert_eq!(f.requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(f.metadata().and_then(CoreMetadata::sha256), Some("dd"));
        assert_eq!(page.files[1].yanked.reason(), Some("bad & broken"));
        assert_eq!(page.files[2].url, "/plain/demo-0.1.zip");
        assert_eq!(page.files[2].yanked, Yanked::Yes { reason: None });
        assert!(page.files[2].hashes.is_empty());
    }

    #[test]
    fn limited_json_parse_matches_the_derived_one() {
        let limited = parse_project_page_json(PYPI_JSON.as_bytes(), 3).unwrap();
        let derived: ProjectPage = serde_json::from_str(PYPI_JSON).unwrap();
        assert_eq!(limited, derived);
        let err = parse_project_page_json(PYPI_JSON.as_bytes(), 2).unwrap_err();
        assert!(err.to_string().contains("more than 2 files"), "{err}");
        let dup = r#"{"meta":{"api-version":"1.0"},"name":"x","files":[],"files":[]}"#;
        assert!(parse_project_page_json(dup.as_bytes(), 10).is_err());
        let null_versions = r#"{"meta":{"api-version":"1.0"},"name":"x","files":[],"versions":null}"#;
        assert_eq!(
            parse_project_page_json(null_versions.as_bytes(), 10)
                .unwrap()
                .versions,
            None
        );
    }

    #[test]
    fn finding_11_files_limit_stops_the_json_parse_early() {
        // Entry 3 of a 2-file limit ends the parse: the garbage after it is never read, so
        // the error is the limit's, not a syntax error.
        let file = r#"{"filename":"x-1.0.tar.gz","url":"u","hashes":{}}"#;
        let page = format!(
            r#"{{"meta":{{"api-version":"1.0"}},"name":"x","files":[{file},{file},{file}, THIS IS NOT JSON"#
        );
        let err = parse_project_page_json(page.as_bytes(), 2).unwrap_err();
        assert!(err.to_string().contains("more than 2 files, the limit"), "{err}");
        let versions =
            r#"{"meta":{"api-version":"1.0"},"name":"x","files":[],"versions":["1","2","3", NOT JSON"#;
        let err = parse_project_page_json(versions.as_bytes(), 2).unwrap_err();
        assert!(err.to_string().contains("more than 2 versions"), "{err}");
    }

    #[test]
    fn finding_11_files_limit_stops_the_html_parse_early() {
        let a = r#"<a href="/f/x-1.0.tar.gz#sha256=00">x-1.0.tar.gz</a>"#;
        let html = format!("<html><body>{a}{a}{a}{a}</body></html>");
        assert_eq!(parse_project_html_limited(&html, "x", 4).unwrap().files.len(), 4);
        let err = parse_project_html_limited(&html, "x", 3).unwrap_err();
        assert_eq!(err, SimpleApiError::TooManyFiles { max: 3 });
        assert!(err.to_string().contains("more than 3 files"), "{err}");
        assert_eq!(anchors(&html, 2).unwrap_err().len(), 2);
    }

    #[test]
    fn reads_root_list_html() {
        let list = parse_project_list_html(
            "<html><body><a href=\"/simple/foo/\">Foo</a>\n<a href='/simple/bar-baz/'>bar_baz</a></body></html>",
        );
        let names: Vec<_> = list.projects.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["Foo", "bar_baz"]);
        assert_eq!(list.meta.api_version, "1.0");
    }
}
