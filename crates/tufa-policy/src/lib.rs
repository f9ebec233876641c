//! `tufa-policy`: what may enter the mirror, decided before anything is downloaded or signed,
//! and explained.
//!
//! The `[policy]` section of tufa.toml ([`PolicyConfig`]) becomes a [`Policy`] that judges
//! each upstream file from what the upstream page says about it (project, filename, version,
//! upload time, yanked): a [`Verdict`] naming the rule that admits or blocks it and why.
//! Rules, in the order they are checked (the first that blocks wins):
//!
//! - `internal = ["acme-*"]`: names never taken from upstream (a dependency-confusion guard),
//!   whatever upstream serves under them;
//! - `deny = ["name", "name==1.2.3", "name>=2,<3", "typo-*"]`: project names (with `*` and `?`
//!   globs, matched on normalised names) and, optionally, PEP 440 specifiers per project;
//! - `[policy.advisories]`: an OSV dump ([`Advisories`]); `MAL-` records block the versions
//!   they affect, vulnerabilities when their severity reaches `block_severity`;
//! - `allow_only = [...]` (same syntax): when set, only what matches one entry;
//! - `min_release_age = "3d"`: a file younger than this (by its upstream `upload-time`) is not
//!   admitted yet; it is admitted by the first sync after it is old enough. A file without an
//!   upload time counts as old (PEP 503 HTML pages carry none);
//! - `mode = "report"`: every verdict is computed and reported, nothing is blocked.
//!
//! Pure: no network, no clock of its own (the caller passes `now`), no store.
//!
//! Must not know about: HTTP, the index, TUF.

#![forbid(unsafe_code)]

mod license;
mod osv;

pub use license::LicensesConfig;
pub use osv::{Advisories, Advisory, Severity};

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};
use pep440_rs::VersionSpecifiers;
use serde::{Deserialize, Serialize};
use tufa_pypi::{DistFilename, ProjectName, Version};

/// `[policy]` as written in tufa.toml. Every key is optional; an empty section admits all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// `"enforce"` (default) or `"report"`.
    #[serde(default)]
    pub mode: Mode,
    /// Files younger than this are held back: `"3d"`, `"12h"`, `"90m"`, `"2w"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_release_age: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_only: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub internal: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisories: Option<AdvisoriesConfig>,
    /// Licence rules over each distribution's core metadata (judged when the mirror has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licenses: Option<LicensesConfig>,
    /// `false`: pre-, dev- and release-candidate versions are kept out.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub prereleases: bool,
    /// `false`: yanked files (PEP 592) are kept out instead of served as yanked.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub yanked: bool,
    /// Files larger than this (by the size upstream's page gives; `"500MB"`, `"2GiB"`) are
    /// kept out. A page without sizes (PEP 503 HTML) gives nothing to judge by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_size: Option<String>,
    /// Wheel platform tags to keep (globs: `"manylinux*_x86_64"`, `"win_amd64"`, `"any"`);
    /// a wheel none of whose tags matches is kept out. Sdists are always kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<String>>,
    /// Python versions to keep files for (`["3.11", "3.12"]`): a file whose `Requires-Python`
    /// admits none of them, or a wheel whose Python/ABI tags fit none, is kept out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_versions: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_true(b: &bool) -> bool {
    *b
}

/// Parses `"500MB"`, `"2GiB"`, `"100kB"`, `"1024"` (bytes).
fn parse_size(raw: &str) -> Result<u64, PolicyError> {
    let text = raw.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| {
        bad(
            "max_file_size",
            raw,
            "must start with a whole number (e.g. \"500MB\")",
        )
    })?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(bad(
                "max_file_size",
                raw,
                format!("has unit `{other}`; use B, kB, MB, GB, KiB, MiB or GiB"),
            ));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| bad("max_file_size", raw, "is too large"))
}

/// `[policy.advisories]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvisoriesConfig {
    /// An OSV dump for PyPI: a directory of OSV JSON files or the ecosystem's `all.zip`
    /// (relative to the config file). Read at the start of every sync, so a refreshed dump
    /// takes effect at the next one.
    pub osv: PathBuf,
    /// Vulnerabilities at or above this severity block the versions they affect. Absent: only
    /// malicious-package (`MAL-`) records block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_severity: Option<Severity>,
}

/// Whether verdicts are applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Blocked files are not downloaded, listed or signed.
    #[default]
    Enforce,
    /// Verdicts are logged and reported; nothing is blocked.
    Report,
}

/// A `[policy]` value that cannot be used: the key, the value and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy.{key}: `{value}` {reason}")]
pub struct PolicyError {
    pub key: &'static str,
    pub value: String,
    pub reason: String,
}

fn bad(key: &'static str, value: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError {
        key,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// A project-name pattern: a normalised name in which `*` matches any run of characters and
/// `?` one character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern(String);

impl NamePattern {
    fn parse(key: &'static str, raw: &str, text: &str) -> Result<Self, PolicyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(bad(key, raw, "has no project name"));
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*' | '?');
        if let Some(c) = text.chars().find(|&c| !ok(c)) {
            return Err(bad(
                key,
                raw,
                format!(
                    "has `{c}` in its name (names are ASCII letters, digits, `-`, `_`, `.`, with `*` and `?` as wildcards)"
                ),
            ));
        }
        // PEP 503 normalisation, wildcards kept.
        let mut out = String::with_capacity(text.len());
        let mut sep = false;
        for c in text.chars() {
            if matches!(c, '-' | '_' | '.') {
                sep = true;
                continue;
            }
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
        Ok(Self(out))
    }

    /// Whether the normalised `name` matches.
    pub fn matches(&self, name: &ProjectName) -> bool {
        glob(self.0.as_bytes(), name.as_str().as_bytes())
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `*` and `?` matching, iterative (no backtracking blow-up).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// One `deny` or `allow_only` entry: a name pattern and, optionally, versions.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The entry as written, for explanations.
    pub text: String,
    pub name: NamePattern,
    pub versions: Option<VersionSpecifiers>,
}

impl Rule {
    fn parse(key: &'static str, raw: &str) -> Result<Self, PolicyError> {
        let split = raw.find(['=', '<', '>', '!', '~']).unwrap_or(raw.len());
        let (name, spec) = raw.split_at(split);
        let name = NamePattern::parse(key, raw, name)?;
        let versions = if spec.trim().is_empty() {
            None
        } else {
            Some(
                VersionSpecifiers::from_str(spec.trim())
                    .map_err(|e| bad(key, raw, format!("has a bad version specifier: {e}")))?,
            )
        };
        Ok(Self {
            text: raw.trim().to_owned(),
            name,
            versions,
        })
    }

    /// Whether the rule covers `name` at `version` (`None`: a file without a version, which
    /// only a rule without specifiers covers).
    pub fn covers(&self, name: &ProjectName, version: Option<&Version>) -> bool {
        if !self.name.matches(name) {
            return false;
        }
        match (&self.versions, version) {
            (None, _) => true,
            (Some(spec), Some(v)) => spec.contains(v),
            (Some(_), None) => false,
        }
    }

    /// Whether the rule covers every version of `name` (no specifiers).
    fn covers_project(&self, name: &ProjectName) -> bool {
        self.versions.is_none() && self.name.matches(name)
    }
}

/// Parses `"3d"`, `"12h"`, `"90m"`, `"45s"`, `"2w"` (one number, one unit).
fn parse_age(raw: &str) -> Result<SignedDuration, PolicyError> {
    let text = raw.trim();
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| {
        bad(
            "min_release_age",
            raw,
            "needs a unit: s, m, h, d or w (e.g. \"3d\")",
        )
    })?;
    let (number, unit) = text.split_at(unit_at);
    let n: i64 = number.parse().map_err(|_| {
        bad(
            "min_release_age",
            raw,
            "must start with a whole number (e.g. \"3d\")",
        )
    })?;
    let secs = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => {
            return Err(bad(
                "min_release_age",
                raw,
                format!("has unit `{other}`; use s, m, h, d or w"),
            ));
        }
    };
    n.checked_mul(secs)
        .filter(|s| *s <= 10 * 365 * 86_400)
        .map(SignedDuration::from_secs)
        .ok_or_else(|| bad("min_release_age", raw, "is longer than ten years"))
}

/// `"3.12"` → (3, 12).
fn parse_python(raw: &str) -> Result<(u64, u64), PolicyError> {
    let fail = || bad("python_versions", raw, "is not a Python version like \"3.12\"");
    let (major, minor) = raw.trim().split_once('.').ok_or_else(fail)?;
    Ok((
        major.parse().map_err(|_| fail())?,
        minor.parse().map_err(|_| fail())?,
    ))
}

/// Whether one wheel tag set runs on Python `major.minor`: `py3`/`py2` any minor of the major;
/// `py312`, `cp312`, `pp310` exactly; `cp37-abi3` 3.7 and later.
fn tag_fits(python_tag: &str, abi3: bool, (major, minor): (u64, u64)) -> bool {
    let digits = python_tag.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let interpreter = &python_tag[..python_tag.len() - digits.len()];
    let Some(first) = digits.chars().next().and_then(|c| c.to_digit(10)) else {
        return false;
    };
    if u64::from(first) != major {
        return false;
    }
    let rest = &digits[1..];
    if rest.is_empty() {
        return interpreter == "py" || abi3;
    }
    let Ok(tag_minor) = rest.parse::<u64>() else {
        return false;
    };
    if abi3 && interpreter == "cp" {
        tag_minor <= minor
    } else {
        tag_minor == minor
    }
}

/// Why a file fits none of `pythons`, or `None` when it fits one.
fn python_mismatch(facts: &FileFacts<'_>, pythons: &[(u64, u64)]) -> Option<String> {
    let listed = || {
        pythons
            .iter()
            .map(|(a, b)| format!("{a}.{b}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(rp) = facts.requires_python
        && let Ok(spec) = VersionSpecifiers::from_str(rp)
        && !pythons.iter().any(|(a, b)| {
            spec.contains(&Version::new([*a, *b])) || spec.contains(&Version::new([*a, *b, 99]))
        })
    {
        return Some(format!(
            "{} requires Python {rp}, which admits none of python_versions ({})",
            facts.filename,
            listed()
        ));
    }
    let wheel = facts.filename.as_wheel()?;
    let abi3 = wheel.abi_tags.iter().any(|t| t == "abi3");
    let fits = pythons
        .iter()
        .any(|p| wheel.python_tags.iter().any(|t| tag_fits(t, abi3, *p)));
    (!fits).then(|| {
        format!(
            "{} is for {}-{}, which runs on none of python_versions ({})",
            facts.filename,
            wheel.python_tags.join("."),
            wheel.abi_tags.join("."),
            listed()
        )
    })
}

/// The rule a verdict comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Internal,
    Deny,
    Advisory,
    AllowOnly,
    Prereleases,
    Yanked,
    MaxFileSize,
    Platforms,
    PythonVersions,
    MinReleaseAge,
    License,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::Deny => "deny",
            Self::Advisory => "advisories",
            Self::AllowOnly => "allow_only",
            Self::Prereleases => "prereleases",
            Self::Yanked => "yanked",
            Self::MaxFileSize => "max_file_size",
            Self::Platforms => "platforms",
            Self::PythonVersions => "python_versions",
            Self::License => "licenses",
            Self::MinReleaseAge => "min_release_age",
        }
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decision on one file, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Admit { reason: String },
    Block { rule: RuleKind, reason: String },
}

impl Verdict {
    pub fn is_blocked(&self) -> bool {
        matches!(self, Self::Block { .. })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Admit { reason } => write!(f, "admitted: {reason}"),
            Self::Block { rule, reason } => write!(f, "blocked by {rule}: {reason}"),
        }
    }
}

/// What the upstream page says about one file.
#[derive(Debug, Clone, Copy)]
pub struct FileFacts<'a> {
    pub project: &'a ProjectName,
    pub filename: &'a DistFilename,
    /// RFC 3339, as upstream gave it (PEP 700 `upload-time`).
    pub upload_time: Option<&'a str>,
    /// Yanked upstream (PEP 592).
    pub yanked: bool,
    /// Bytes, when the page says (PEP 700 `size`).
    pub size: Option<u64>,
    /// The file's `Requires-Python`, as the page gives it.
    pub requires_python: Option<&'a str>,
}

/// The mirror's policy. See the crate docs.
#[derive(Debug, Clone)]
pub struct Policy {
    mode: Mode,
    min_release_age: Option<(SignedDuration, String)>,
    deny: Vec<Rule>,
    allow_only: Option<Vec<Rule>>,
    internal: Vec<NamePattern>,
    advisories: Option<(Advisories, Option<Severity>)>,
    prereleases: bool,
    yanked: bool,
    max_file_size: Option<(u64, String)>,
    platforms: Option<Vec<String>>,
    python_versions: Option<Vec<(u64, u64)>>,
    licenses: Option<license::Licenses>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            min_release_age: None,
            deny: Vec::new(),
            allow_only: None,
            internal: Vec::new(),
            advisories: None,
            prereleases: true,
            yanked: true,
            max_file_size: None,
            platforms: None,
            python_versions: None,
            licenses: None,
        }
    }
}

impl Policy {
    /// Checks every value: a bad one is refused naming the key, the value and the reason.
    pub fn from_config(c: &PolicyConfig) -> Result<Self, PolicyError> {
        let rules = |key: &'static str, list: &[String]| -> Result<Vec<Rule>, PolicyError> {
            list.iter().map(|r| Rule::parse(key, r)).collect()
        };
        Ok(Self {
            mode: c.mode,
            min_release_age: c
                .min_release_age
                .as_deref()
                .map(|raw| parse_age(raw).map(|d| (d, raw.trim().to_owned())))
                .transpose()?,
            deny: rules("deny", &c.deny)?,
            allow_only: c
                .allow_only
                .as_deref()
                .map(|l| rules("allow_only", l))
                .transpose()?,
            internal: c
                .internal
                .iter()
                .map(|raw| {
                    if raw.contains(['=', '<', '>', '!', '~']) {
                        return Err(bad("internal", raw, "is a name pattern; versions do not apply"));
                    }
                    NamePattern::parse("internal", raw, raw)
                })
                .collect::<Result<_, _>>()?,
            advisories: None,
            prereleases: c.prereleases,
            yanked: c.yanked,
            max_file_size: c
                .max_file_size
                .as_deref()
                .map(|raw| parse_size(raw).map(|n| (n, raw.trim().to_owned())))
                .transpose()?,
            platforms: c
                .platforms
                .as_ref()
                .map(|list| {
                    list.iter()
                        .map(|p| {
                            let ok = !p.is_empty()
                                && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '*' | '?'));
                            if ok {
                                Ok(p.to_ascii_lowercase())
                            } else {
                                Err(bad("platforms", p, "is not a wheel platform tag pattern (letters, digits, `_`, `.`, `*`, `?`)"))
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?,
            licenses: c.licenses.as_ref().map(license::Licenses::from_config).transpose()?,
            python_versions: c
                .python_versions
                .as_ref()
                .map(|list| list.iter().map(|v| parse_python(v)).collect::<Result<Vec<_>, _>>())
                .transpose()?,
        })
    }

    /// [`Policy::from_config`], then the OSV dump `[policy.advisories] osv` names (relative
    /// to `base`) read in. Returns the records that could not be read, for the caller to report.
    pub fn load(c: &PolicyConfig, base: &Path) -> Result<(Self, Vec<String>), PolicyError> {
        let mut policy = Self::from_config(c)?;
        let Some(a) = &c.advisories else {
            return Ok((policy, Vec::new()));
        };
        let path = base.join(&a.osv);
        let (advisories, unreadable) = Advisories::load(&path)
            .map_err(|reason| bad("advisories.osv", &a.osv.display().to_string(), reason))?;
        policy.advisories = Some((advisories, a.block_severity));
        Ok((policy, unreadable))
    }

    /// Checks that what [`Policy::load`] would read is there, without reading it.
    pub fn check_paths(c: &PolicyConfig, base: &Path) -> Result<(), PolicyError> {
        if let Some(a) = &c.advisories
            && !base.join(&a.osv).exists()
        {
            return Err(bad(
                "advisories.osv",
                &a.osv.display().to_string(),
                format!("does not exist (looked for `{}`)", base.join(&a.osv).display()),
            ));
        }
        Ok(())
    }

    /// The same policy with these advisories.
    pub fn with_advisories(mut self, advisories: Advisories, block_severity: Option<Severity>) -> Self {
        self.advisories = Some((advisories, block_severity));
        self
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether any rule is set.
    pub fn is_empty(&self) -> bool {
        self.min_release_age.is_none()
            && self.deny.is_empty()
            && self.allow_only.is_none()
            && self.internal.is_empty()
            && self.advisories.is_none()
            && self.prereleases
            && self.yanked
            && self.max_file_size.is_none()
            && self.platforms.is_none()
            && self.python_versions.is_none()
            && self.licenses.is_none()
    }

    /// Whether licence rules are set (they need each distribution's core metadata).
    pub fn has_license_rules(&self) -> bool {
        self.licenses.is_some()
    }

    /// The licence verdict on `filename`, whose core metadata is `metadata` (`None`: not
    /// known, as for an sdist); `None` when no licence rule is set.
    pub fn license(&self, filename: &DistFilename, metadata: Option<&str>) -> Option<Verdict> {
        let rules = self.licenses.as_ref()?;
        Some(match rules.judge(metadata) {
            Ok(reason) => Verdict::Admit { reason },
            Err(reason) => Verdict::Block {
                rule: RuleKind::License,
                reason: format!("{filename}: {reason}"),
            },
        })
    }

    /// A verdict on a whole project, when one applies to all its files (an internal name, a
    /// denied name, a name no `allow_only` entry matches): such a project is not fetched from
    /// upstream at all.
    pub fn project(&self, name: &ProjectName) -> Option<Verdict> {
        if let Some(p) = self.internal.iter().find(|p| p.matches(name)) {
            return Some(Verdict::Block {
                rule: RuleKind::Internal,
                reason: format!("`{name}` matches internal name `{p}`: never taken from upstream"),
            });
        }
        if let Some(r) = self.deny.iter().find(|r| r.covers_project(name)) {
            return Some(Verdict::Block {
                rule: RuleKind::Deny,
                reason: format!("`{name}` matches deny entry `{}`", r.text),
            });
        }
        if let Some(allow) = &self.allow_only
            && !allow.iter().any(|r| r.name.matches(name))
        {
            return Some(Verdict::Block {
                rule: RuleKind::AllowOnly,
                reason: format!("`{name}` matches no allow_only entry"),
            });
        }
        None
    }

    /// The file filters: prereleases, yanked, size, platform tags.
    fn filters(&self, facts: &FileFacts<'_>, shown: &str) -> Option<Verdict> {
        let block = |rule, reason: String| Some(Verdict::Block { rule, reason });
        if !self.prereleases && facts.filename.version().is_some_and(Version::any_prerelease) {
            return block(
                RuleKind::Prereleases,
                format!("{} {shown} is a pre-release (prereleases = false)", facts.project),
            );
        }
        if !self.yanked && facts.yanked {
            return block(
                RuleKind::Yanked,
                format!("{} is yanked upstream (yanked = false)", facts.filename),
            );
        }
        if let (Some((max, raw)), Some(size)) = (&self.max_file_size, facts.size)
            && size > *max
        {
            return block(
                RuleKind::MaxFileSize,
                format!(
                    "{} is {size} bytes, larger than max_file_size {raw}",
                    facts.filename
                ),
            );
        }
        if let (Some(platforms), Some(wheel)) = (&self.platforms, facts.filename.as_wheel())
            && !wheel.platform_tags.iter().any(|t| {
                platforms
                    .iter()
                    .any(|p| glob(p.as_bytes(), t.to_ascii_lowercase().as_bytes()))
            })
        {
            return block(
                RuleKind::Platforms,
                format!(
                    "{} is for {}, which no platforms entry matches",
                    facts.filename,
                    wheel.platform_tags.join(".")
                ),
            );
        }
        if let Some(pythons) = &self.python_versions
            && let Some(reason) = python_mismatch(facts, pythons)
        {
            return block(RuleKind::PythonVersions, reason);
        }
        None
    }

    /// The verdict on one file at time `now`.
    pub fn file(&self, facts: &FileFacts<'_>, now: Timestamp) -> Verdict {
        if let Some(v) = self.project(facts.project) {
            return v;
        }
        let version = facts.filename.version();
        let shown = version.map_or_else(|| "(no version)".to_owned(), ToString::to_string);
        if let Some(r) = self.deny.iter().find(|r| r.covers(facts.project, version)) {
            return Verdict::Block {
                rule: RuleKind::Deny,
                reason: format!("{} {shown} matches deny entry `{}`", facts.project, r.text),
            };
        }
        if let (Some((advisories, threshold)), Some(v)) = (&self.advisories, version) {
            for a in advisories.affecting(facts.project, v) {
                let blocks = a.malicious || matches!((a.severity, threshold), (Some(s), Some(t)) if s >= *t);
                if !blocks {
                    continue;
                }
                let what = if a.malicious {
                    "a malicious-package record".to_owned()
                } else {
                    format!(
                        "severity {}, at or above block_severity {}",
                        a.severity.map_or("?", Severity::as_str),
                        threshold.map_or("?", Severity::as_str)
                    )
                };
                return Verdict::Block {
                    rule: RuleKind::Advisory,
                    reason: format!("{} {shown} is affected by {} ({what})", facts.project, a.id),
                };
            }
        }
        let allowed_by = match &self.allow_only {
            None => None,
            Some(allow) => match allow.iter().find(|r| r.covers(facts.project, version)) {
                Some(r) => Some(r),
                None => {
                    return Verdict::Block {
                        rule: RuleKind::AllowOnly,
                        reason: format!("{} {shown} matches no allow_only entry", facts.project),
                    };
                }
            },
        };
        if let Some(v) = self.filters(facts, &shown) {
            return v;
        }
        if let Some((age, raw)) = &self.min_release_age {
            match facts.upload_time.map(|t| t.parse::<Timestamp>()) {
                Some(Ok(uploaded)) => {
                    let old_enough_at = uploaded.saturating_add(*age).unwrap_or(uploaded);
                    if now < old_enough_at {
                        return Verdict::Block {
                            rule: RuleKind::MinReleaseAge,
                            reason: format!(
                                "uploaded {uploaded}, younger than min_release_age {raw}: admitted from {old_enough_at}"
                            ),
                        };
                    }
                }
                Some(Err(_)) => {
                    return Verdict::Block {
                        rule: RuleKind::MinReleaseAge,
                        reason: format!(
                            "its upload time `{}` cannot be read, so its age is unknown",
                            facts.upload_time.unwrap_or_default()
                        ),
                    };
                }
                None => {}
            }
        }
        let mut why = Vec::new();
        if let Some(r) = allowed_by {
            why.push(format!("allow_only entry `{}`", r.text));
        }
        if let Some((_, raw)) = &self.min_release_age {
            why.push(match facts.upload_time {
                Some(t) => format!("uploaded {t}, older than {raw}"),
                None => "no upload time (counts as old)".to_owned(),
            });
        }
        Verdict::Admit {
            reason: if why.is_empty() {
                "no rule blocks it".to_owned()
            } else {
                why.join("; ")
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(toml_text: &str) -> Policy {
        let c: PolicyConfig = toml::from_str(toml_text).unwrap();
        Policy::from_config(&c).unwrap()
    }

    fn verdict(p: &Policy, project: &str, filename: &str, uploaded: Option<&str>, now: &str) -> Verdict {
        let project = ProjectName::new(project).unwrap();
        let filename = DistFilename::parse(filename).unwrap();
        p.file(
            &FileFacts {
                project: &project,
                filename: &filename,
                upload_time: uploaded,
                yanked: false,
                size: None,
                requires_python: None,
            },
            now.parse().unwrap(),
        )
    }

    const NOW: &str = "2026-12-03T00:00:00Z";

    #[test]
    fn deny_by_name_glob_and_specifier() {
        let p = policy(r#"deny = ["evil", "typo-*", "demo-lib>=2,<3", "Other_Name==1.0"]"#);
        let blocked = |project, file| verdict(&p, project, file, None, NOW).is_blocked();
        assert!(blocked("evil", "evil-1.0.tar.gz"));
        assert!(blocked("typo-requests", "typo_requests-0.1-py3-none-any.whl"));
        assert!(!blocked("requests", "requests-2.0-py3-none-any.whl"));
        assert!(blocked("demo-lib", "demo_lib-2.5-py3-none-any.whl"));
        assert!(!blocked("demo-lib", "demo_lib-3.0-py3-none-any.whl"));
        assert!(!blocked("demo-lib", "demo_lib-1.9-py3-none-any.whl"));
        assert!(blocked("other.name", "other_name-1.0.tar.gz"));
        assert!(!blocked("other-name", "other_name-1.1.tar.gz"));
        // Whole-project verdicts only for rules without versions.
        assert!(p.project(&ProjectName::new("evil").unwrap()).is_some());
        assert!(p.project(&ProjectName::new("demo-lib").unwrap()).is_none());
        let v = verdict(&p, "demo-lib", "demo_lib-2.5-py3-none-any.whl", None, NOW);
        assert_eq!(
            v.to_string(),
            "blocked by deny: demo-lib 2.5 matches deny entry `demo-lib>=2,<3`"
        );
    }

    #[test]
    fn allow_only_admits_only_what_it_lists() {
        let p = policy(r#"allow_only = ["requests", "demo-*<2"]"#);
        assert!(!verdict(&p, "requests", "requests-2.0-py3-none-any.whl", None, NOW).is_blocked());
        assert!(!verdict(&p, "demo-lib", "demo_lib-1.0-py3-none-any.whl", None, NOW).is_blocked());
        let v = verdict(&p, "demo-lib", "demo_lib-2.0-py3-none-any.whl", None, NOW);
        assert!(
            matches!(
                v,
                Verdict::Block {
                    rule: RuleKind::AllowOnly,
                    ..
                }
            ),
            "{v}"
        );
        assert!(p.project(&ProjectName::new("numpy").unwrap()).is_some());
        assert!(p.project(&ProjectName::new("demo-util").unwrap()).is_none());
    }

    #[test]
    fn cooldown_admits_a_file_once_old_enough() {
        let p = policy(r#"min_release_age = "3d""#);
        let file = "demo_lib-1.0-py3-none-any.whl";
        let up = Some("2026-12-01T12:00:00.123456Z");
        let v = verdict(&p, "demo-lib", file, up, "2026-12-03T00:00:00Z");
        assert!(
            matches!(
                v,
                Verdict::Block {
                    rule: RuleKind::MinReleaseAge,
                    ..
                }
            ),
            "{v}"
        );
        assert!(
            v.to_string()
                .contains("admitted from 2026-12-04T12:00:00.123456Z"),
            "{v}"
        );
        assert!(!verdict(&p, "demo-lib", file, up, "2026-12-04T12:00:01Z").is_blocked());
        // No upload time: old. An unreadable one: blocked, said so.
        assert!(!verdict(&p, "demo-lib", file, None, NOW).is_blocked());
        assert!(verdict(&p, "demo-lib", file, Some("yesterday"), NOW).is_blocked());
    }

    #[test]
    fn internal_names_are_never_taken_from_upstream() {
        let p = policy(r#"internal = ["acme-*", "corp.tools"]"#);
        for name in ["acme-billing", "ACME_Billing", "corp-tools"] {
            let v = p.project(&ProjectName::new(name).unwrap());
            assert!(
                matches!(
                    v,
                    Some(Verdict::Block {
                        rule: RuleKind::Internal,
                        ..
                    })
                ),
                "{name}"
            );
        }
        assert!(p.project(&ProjectName::new("acme").unwrap()).is_none());
    }

    #[test]
    fn bad_values_name_key_value_and_reason() {
        for (text, key, needle) in [
            (r#"min_release_age = "3""#, "min_release_age", "needs a unit"),
            (r#"min_release_age = "3y""#, "min_release_age", "has unit `y`"),
            (r#"deny = ["demo>=x"]"#, "deny", "bad version specifier"),
            (r#"deny = ["de mo"]"#, "deny", "has ` ` in its name"),
            (r#"allow_only = ["==1.0"]"#, "allow_only", "has no project name"),
            (r#"internal = ["acme==1"]"#, "internal", "versions do not apply"),
        ] {
            let c: PolicyConfig = toml::from_str(text).unwrap();
            let e = Policy::from_config(&c).unwrap_err();
            assert_eq!(e.key, key, "{text}");
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
        assert!(toml::from_str::<PolicyConfig>(r#"mode = "audit""#).is_err());
        assert!(toml::from_str::<PolicyConfig>(r#"min_age = "3d""#).is_err());
    }

    #[test]
    fn file_filters() {
        let p = policy(
            "prereleases = false\nyanked = false\nmax_file_size = \"1MB\"\nplatforms = [\"manylinux*_x86_64\", \"any\"]",
        );
        let facts = |file: &'static str, yanked, size| {
            let filename = DistFilename::parse(file).unwrap();
            (filename, yanked, size)
        };
        let project = ProjectName::new("demo").unwrap();
        let judge = |(filename, yanked, size): (DistFilename, bool, Option<u64>)| {
            p.file(
                &FileFacts {
                    project: &project,
                    filename: &filename,
                    upload_time: None,
                    yanked,
                    size,
                    requires_python: None,
                },
                NOW.parse().unwrap(),
            )
        };
        let rule = |v: Verdict| match v {
            Verdict::Block { rule, .. } => Some(rule),
            Verdict::Admit { .. } => None,
        };
        assert_eq!(
            rule(judge(facts("demo-2.0rc1.tar.gz", false, None))),
            Some(RuleKind::Prereleases)
        );
        assert_eq!(
            rule(judge(facts("demo-2.0.tar.gz", true, None))),
            Some(RuleKind::Yanked)
        );
        assert_eq!(
            rule(judge(facts("demo-2.0.tar.gz", false, Some(1_000_001)))),
            Some(RuleKind::MaxFileSize)
        );
        assert_eq!(
            rule(judge(facts("demo-2.0.tar.gz", false, Some(1_000_000)))),
            None
        );
        assert_eq!(
            rule(judge(facts("demo-2.0-cp312-cp312-win_amd64.whl", false, None))),
            Some(RuleKind::Platforms)
        );
        assert_eq!(
            rule(judge(facts(
                "demo-2.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                false,
                None
            ))),
            None
        );
        assert_eq!(rule(judge(facts("demo-2.0-py3-none-any.whl", false, None))), None);
        for (text, needle) in [
            ("max_file_size = \"1 TB\"", "has unit `TB`"),
            ("platforms = [\"linux x86\"]", "not a wheel platform tag pattern"),
        ] {
            let c: PolicyConfig = toml::from_str(text).unwrap();
            let e = Policy::from_config(&c).unwrap_err();
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn python_versions_by_requires_python_and_wheel_tags() {
        let p = policy(r#"python_versions = ["3.11", "3.12"]"#);
        let project = ProjectName::new("demo").unwrap();
        let judge = |file: &str, rp: Option<&str>| {
            let filename = DistFilename::parse(file).unwrap();
            p.file(
                &FileFacts {
                    project: &project,
                    filename: &filename,
                    upload_time: None,
                    yanked: false,
                    size: None,
                    requires_python: rp,
                },
                NOW.parse().unwrap(),
            )
            .is_blocked()
        };
        assert!(!judge("demo-1.0.tar.gz", Some(">=3.9")));
        assert!(judge("demo-1.0.tar.gz", Some(">=3.13")));
        assert!(judge("demo-1.0.tar.gz", Some("<3.11")));
        assert!(!judge("demo-1.0.tar.gz", Some("==3.12.*")));
        assert!(!judge("demo-1.0-py3-none-any.whl", None));
        assert!(judge("demo-1.0-py2-none-any.whl", None));
        assert!(!judge("demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", None));
        assert!(judge("demo-1.0-cp310-cp310-manylinux_2_17_x86_64.whl", None));
        assert!(!judge("demo-1.0-cp38-abi3-manylinux_2_17_x86_64.whl", None));
        assert!(judge("demo-1.0-cp313-abi3-manylinux_2_17_x86_64.whl", None));
        assert!(!judge("demo-1.0-py2.py3-none-any.whl", None));
        let c: PolicyConfig = toml::from_str(r#"python_versions = ["3"]"#).unwrap();
        assert!(
            Policy::from_config(&c)
                .unwrap_err()
                .to_string()
                .contains("is not a Python version")
        );
    }

    #[test]
    fn globs() {
        assert!(glob(b"a*", b"abc"));
        assert!(glob(b"*c", b"abc"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"abbc"));
        assert!(glob(b"*", b""));
        assert!(glob(b"a*b*c", b"axxbyyc"));
        assert!(!glob(b"a*b*c", b"axxbyy"));
    }
}

/// One file the policy keeps out, as the report records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    pub file: String,
    pub rule: RuleKind,
    pub reason: String,
}

/// What the policy keeps out of the mirror, project by project, kept up to date by every
/// sync (`policy/report.json` in the store; `tufa policy report` prints it). Rules judged
/// before download and licence rules (judged at publish) are kept apart, since each is
/// brought up to date by a different step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    /// RFC 3339, UTC: the last update.
    pub updated_at: String,
    pub mode: Mode,
    /// Kept out before download (every rule but licences).
    #[serde(default)]
    pub download: std::collections::BTreeMap<String, Vec<Blocked>>,
    /// Left off the pages by licence rules.
    #[serde(default)]
    pub publish: std::collections::BTreeMap<String, Vec<Blocked>>,
}

impl Report {
    pub const KEY: &'static str = "policy/report.json";

    /// Replaces the entries of the projects just judged (`judged`: every such project, with
    /// what was blocked, possibly nothing) in `download` or `publish`.
    pub fn update(
        map: &mut std::collections::BTreeMap<String, Vec<Blocked>>,
        judged: &std::collections::BTreeMap<ProjectName, Vec<Blocked>>,
    ) {
        for (project, blocked) in judged {
            if blocked.is_empty() {
                map.remove(project.as_str());
            } else {
                map.insert(project.to_string(), blocked.clone());
            }
        }
    }

    /// Blocked files per rule, both steps together.
    pub fn counts(&self) -> std::collections::BTreeMap<RuleKind, usize> {
        let mut out = std::collections::BTreeMap::new();
        for b in self.download.values().chain(self.publish.values()).flatten() {
            *out.entry(b.rule).or_insert(0) += 1;
        }
        out
    }
}
