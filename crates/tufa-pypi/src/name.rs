//! Project names, normalised as PEP 503 says.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest project name accepted. PyPI has no formal limit, but nothing real comes close.
pub const MAX_PROJECT_NAME_LEN: usize = 200;

/// A PEP 503-normalised project name: lowercase ASCII letters, digits and single `-`.
///
/// Parsing validates the PEP 508 name grammar (`[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?`) and
/// normalises (`Foo.Bar_baz` → `foo-bar-baz`), so an un-normalised or hostile name cannot exist
/// past the boundary. The normalised form is always a safe single path segment.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProjectName(String);

/// Why a string is not a project name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidProjectName {
    #[error("project name is empty")]
    Empty,
    #[error("project name `{0}` is longer than {MAX_PROJECT_NAME_LEN} characters")]
    TooLong(String),
    #[error(
        "project name `{0}` is not valid: only ASCII letters, digits, `.`, `_` and `-` are allowed, starting and ending with a letter or digit"
    )]
    Grammar(String),
}

impl ProjectName {
    /// Parses and normalises `name`.
    pub fn new(name: &str) -> Result<Self, InvalidProjectName> {
        if name.is_empty() {
            return Err(InvalidProjectName::Empty);
        }
        if name.len() > MAX_PROJECT_NAME_LEN {
            return Err(InvalidProjectName::TooLong(truncate_for_error(name)));
        }
        let bytes = name.as_bytes();
        let edge_ok = |b: u8| b.is_ascii_alphanumeric();
        let inner_ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if !edge_ok(bytes[0]) || !edge_ok(bytes[bytes.len() - 1]) || !bytes.iter().all(|&b| inner_ok(b)) {
            return Err(InvalidProjectName::Grammar(truncate_for_error(name)));
        }
        Ok(Self(normalize_unchecked(name)))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as it appears in wheel filenames (`-` replaced by `_`).
    pub fn as_dist_info_name(&self) -> String {
        self.0.replace('-', "_")
    }
}

/// Lowercases and collapses runs of `-`, `_` and `.` into one `-`, as PEP 503 specifies.
fn normalize_unchecked(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
                in_sep = true;
            }
        } else {
            out.push(c.to_ascii_lowercase());
            in_sep = false;
        }
    }
    out
}

/// Shortens attacker-controlled strings before they go into error messages and logs.
pub(crate) fn truncate_for_error(s: &str) -> String {
    const MAX: usize = 120;
    let escaped: String = s.escape_debug().collect();
    if escaped.chars().count() <= MAX {
        escaped
    } else {
        let mut t: String = escaped.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

impl FromStr for ProjectName {
    type Err = InvalidProjectName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProjectName({:?})", self.0)
    }
}

impl AsRef<str> for ProjectName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for ProjectName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ProjectName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_real_world_names() {
        for (raw, want) in [
            ("Foo.Bar_baz", "foo-bar-baz"),
            ("zope.interface", "zope-interface"),
            ("Django", "django"),
            ("typing_extensions", "typing-extensions"),
            ("a--b__c..d", "a-b-c-d"),
            ("a-_.b", "a-b"),
            ("PyYAML", "pyyaml"),
            ("backports.zoneinfo", "backports-zoneinfo"),
            ("x", "x"),
            ("0", "0"),
        ] {
            assert_eq!(ProjectName::new(raw).unwrap().as_str(), want, "{raw}");
        }
    }

    #[test]
    fn rejects_hostile_and_invalid_names() {
        for bad in [
            "", "-foo", "foo-", ".hidden", "../etc", "a/b", "a\\b", "a\0b", "é", "a b", "foo_", "_",
        ] {
            assert!(ProjectName::new(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = "a".repeat(MAX_PROJECT_NAME_LEN + 1);
        assert!(matches!(
            ProjectName::new(&long),
            Err(InvalidProjectName::TooLong(_))
        ));
    }

    #[test]
    fn error_names_the_bad_value() {
        let err = ProjectName::new("a/b").unwrap_err().to_string();
        assert!(err.contains("`a/b`"), "{err}");
    }

    #[test]
    fn serde_normalises() {
        let n: ProjectName = serde_json::from_str("\"Foo.Bar_baz\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"foo-bar-baz\"");
        assert!(serde_json::from_str::<ProjectName>("\"../x\"").is_err());
    }
}
