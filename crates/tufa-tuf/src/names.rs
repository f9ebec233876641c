//! Typed names: parsed once at the edge, valid everywhere after.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tufa_pypi::Sha256Digest;

use crate::TufError;

/// Longest string echoed back in an error message.
const MAX_ERROR_ECHO: usize = 120;

fn echo(s: &str) -> String {
    if s.len() <= MAX_ERROR_ECHO {
        return s.to_owned();
    }
    let mut end = MAX_ERROR_ECHO;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `urllib.parse.quote(s, safe="")`.
pub fn quote(s: &str) -> std::borrow::Cow<'_, str> {
    let keep = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~');
    if s.bytes().all(keep) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    std::borrow::Cow::Owned(out)
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_ref())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A TUF key id: the sha256 of the key's canonical JSON, 64 lowercase hex characters.
///
/// Uppercase is refused: python-tuf compares key ids as strings, so accepting `ABC…` where it
/// sees a different id than `abc…` would make this crate more lenient than the client.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; 32]);

impl KeyId {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl From<Sha256Digest> for KeyId {
    fn from(d: Sha256Digest) -> Self {
        Self(*d.as_bytes())
    }
}

impl FromStr for KeyId {
    type Err = TufError;
    fn from_str(s: &str) -> Result<Self, TufError> {
        let mut out = [0u8; 32];
        let lower_hex = s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if s.len() != 64 || !lower_hex || hex::decode_to_slice(s, &mut out).is_err() {
            return Err(TufError::InvalidKeyId(echo(s)));
        }
        Ok(Self(out))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The name of a role: a top-level role (`root`, `targets`, `snapshot`, `timestamp`) or a
/// delegated one (`bins`, `bin-0a3f`, …).
///
/// Role names become file names (`<version>.<role>.json`) and URL path segments, so only safe
/// characters are allowed: 1 to 64 of ASCII letters, digits, `-` and `_`, the first a letter or
/// digit. No dots, so `N.<role>.json` always splits unambiguously.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleName(String);

impl RoleName {
    pub const ROOT: &'static str = "root";
    pub const TARGETS: &'static str = "targets";
    pub const SNAPSHOT: &'static str = "snapshot";
    pub const TIMESTAMP: &'static str = "timestamp";
    /// tufa's hashed-bin delegator, delegated from `targets`.
    pub const BINS: &'static str = "bins";
    /// The four roles root metadata lists.
    pub const TOP_LEVEL: [&'static str; 4] = [Self::ROOT, Self::TARGETS, Self::SNAPSHOT, Self::TIMESTAMP];

    pub fn new(name: &str) -> Result<Self, TufError> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if name.len() > 64 || !first_ok || !name.chars().all(ok_char) {
            return Err(TufError::InvalidRoleName(echo(name)));
        }
        Ok(Self(name.to_owned()))
    }

    /// A name known to be valid (the constants above).
    fn known(name: &'static str) -> Self {
        Self(name.to_owned())
    }

    /// For names built from already-validated parts (bin names of a checked layout).
    /// Longest role name accepted from metadata.
    pub const MAX_METADATA_LEN: usize = 1024;

    /// A role name as another repository's metadata may spell it: any string of 1 to
    /// [`RoleName::MAX_METADATA_LEN`] bytes. Use [`RoleName::quoted`] to put it in a URL or a
    /// file name.
    pub fn from_metadata(name: &str) -> Result<Self, TufError> {
        if name.is_empty() || name.len() > Self::MAX_METADATA_LEN {
            return Err(TufError::InvalidRoleName(echo(name)));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name percent-encoded as python's `urllib.parse.quote(name, safe="")` does (what
    /// python-tuf puts in metadata URLs and cache file names): ASCII letters, digits and
    /// `_.-~` stay, every other byte becomes `%XX`. tufa's own names are unchanged by it.
    pub fn quoted(&self) -> std::borrow::Cow<'_, str> {
        quote(&self.0)
    }

    pub(crate) fn new_unchecked(name: String) -> Self {
        Self(name)
    }

    pub fn root() -> Self {
        Self::known(Self::ROOT)
    }
    pub fn targets() -> Self {
        Self::known(Self::TARGETS)
    }
    pub fn snapshot() -> Self {
        Self::known(Self::SNAPSHOT)
    }
    pub fn timestamp() -> Self {
        Self::known(Self::TIMESTAMP)
    }
    pub fn bins() -> Self {
        Self::known(Self::BINS)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// One of the four roles that root metadata lists.
    pub fn is_top_level(&self) -> bool {
        Self::TOP_LEVEL.contains(&self.0.as_str())
    }

    /// The key of this role's entry in snapshot metadata: `<role>.json`.
    pub fn snapshot_meta_key(&self) -> String {
        format!("{}.json", self.0)
    }
}

impl FromStr for RoleName {
    type Err = TufError;
    fn from_str(s: &str) -> Result<Self, TufError> {
        Self::new(s)
    }
}

impl AsRef<str> for RoleName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for RoleName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoleName({})", self.0)
    }
}

impl Serialize for RoleName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Role names read from metadata follow the TUF specification, not tufa's naming rule: any
/// non-empty string (a delegation may be called `?` or `../x`). They are percent-encoded
/// wherever they become part of a URL or a file name ([`RoleName::quoted`]).
impl<'de> Deserialize<'de> for RoleName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        RoleName::from_metadata(&s).map_err(serde::de::Error::custom)
    }
}

/// A TUF target path: a percent-decoded URL path relative to the server root, such as
/// `simple/demo/index.html` or `files/ab/cd/…/demo-1.0-py3-none-any.whl`.
///
/// Refused: empty, longer than [`TargetPath::MAX_LEN`] bytes, a leading `/`, empty segments
/// (`a//b`, a trailing `/`), `.` and `..` segments, `\`, control characters, and `?`/`#` (TUF
/// clients append the path to a base URL verbatim, where those would end the path).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetPath(String);

impl TargetPath {
    pub const MAX_LEN: usize = 2048;

    pub fn new(path: &str) -> Result<Self, TufError> {
        let bad = |reason: &'static str| TufError::InvalidTargetPath {
            path: echo(&path.escape_debug().to_string()),
            reason,
        };
        if path.is_empty() {
            return Err(bad("it is empty"));
        }
        if path.len() > Self::MAX_LEN {
            return Err(bad("it is longer than 2048 bytes"));
        }
        if path.starts_with('/') {
            return Err(bad("it starts with `/`"));
        }
        if let Some(c) = path
            .chars()
            .find(|&c| c.is_control() || matches!(c, '\\' | '?' | '#'))
        {
            return Err(bad(if c.is_control() {
                "it contains a control character"
            } else {
                "it contains `\\`, `?` or `#`"
            }));
        }
        for segment in path.split('/') {
            match segment {
                "" => return Err(bad("it has an empty segment")),
                "." | ".." => return Err(bad("it has a `.` or `..` segment")),
                _ => {}
            }
        }
        Ok(Self(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory part (`simple/demo` for `simple/demo/index.html`); empty at top level.
    pub fn dirname(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(dir, _)| dir)
    }

    /// The last segment.
    pub fn basename(&self) -> &str {
        self.0.rsplit_once('/').map_or(self.0.as_str(), |(_, name)| name)
    }

    /// The path a TUF client requests under consistent snapshots: `dir/<sha256>.<basename>`.
    pub fn hash_prefixed(&self, sha256: &Sha256Digest) -> String {
        match self.0.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/{sha256}.{name}"),
            None => format!("{sha256}.{}", self.0),
        }
    }

    /// sha256 of the path's UTF-8 bytes: what hashed-bin delegation keys on.
    pub fn path_hash(&self) -> Sha256Digest {
        Sha256Digest::of(self.0.as_bytes())
    }
}

impl FromStr for TargetPath {
    type Err = TufError;
    fn from_str(s: &str) -> Result<Self, TufError> {
        Self::new(s)
    }
}

impl AsRef<str> for TargetPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for TargetPath {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TargetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TargetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TargetPath({})", self.0)
    }
}

string_serde!(TargetPath);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids() {
        let hex = "a".repeat(64);
        let id: KeyId = hex.parse().unwrap();
        assert_eq!(id.to_string(), hex);
        for bad in ["", "ab", &"A".repeat(64), &"g".repeat(64), &"a".repeat(65)] {
            assert!(bad.parse::<KeyId>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<KeyId>(&json).unwrap(), id);
    }

    #[test]
    fn role_names() {
        for ok in ["root", "targets", "bins", "bin-0000", "bin-3fff", "bin_x", "A1"] {
            assert_eq!(RoleName::new(ok).unwrap().as_str(), ok);
        }
        let long = "a".repeat(65);
        for bad in [
            "", "-bin", "_x", "bin.0", "../root", "a/b", "bin 1", "rôle", &long,
        ] {
            assert!(RoleName::new(bad).is_err(), "{bad}");
        }
        for odd in ["?", "#", "/delegatedrole", "../delegatedrole", "rôle"] {
            let role: RoleName = serde_json::from_str(&serde_json::to_string(odd).unwrap()).unwrap();
            assert!(!role.quoted().contains(['/', '?', '#']), "{odd}");
        }
        assert_eq!(RoleName::from_metadata("../x").unwrap().quoted(), "..%2Fx");
        assert_eq!(RoleName::from_metadata("rôle").unwrap().quoted(), "r%C3%B4le");
        assert_eq!(RoleName::new("bin-0a_B").unwrap().quoted(), "bin-0a_B");
        assert!(RoleName::from_metadata("").is_err());
        assert!(RoleName::root().is_top_level());
        assert!(!RoleName::bins().is_top_level());
        assert_eq!(RoleName::bins().snapshot_meta_key(), "bins.json");
    }

    #[test]
    fn target_paths() {
        for ok in [
            "simple/demo/index.html",
            "files/ab/cd/ef/demo-1.0-py3-none-any.whl",
            "top.txt",
            "a/b c/é/x%20y",
            "files/.hidden/x",
        ] {
            assert_eq!(TargetPath::new(ok).unwrap().as_str(), ok);
        }
        let long = "a".repeat(TargetPath::MAX_LEN + 1);
        for bad in [
            "", "/abs", "a//b", "a/", "./a", "a/../b", "..", "a\\b", "a\0b", "a\nb", "a\u{7f}", "a\u{85}b",
            "a?b", "a#b", &long,
        ] {
            assert!(TargetPath::new(bad).is_err(), "{bad:?}");
        }
        let err = serde_json::from_str::<TargetPath>(r#""../etc/passwd""#).unwrap_err();
        assert!(err.to_string().contains("`..`"), "{err}");
    }

    #[test]
    fn hash_prefixed_paths() {
        let d = Sha256Digest::of(b"x");
        let p = TargetPath::new("simple/demo/index.html").unwrap();
        assert_eq!(p.dirname(), "simple/demo");
        assert_eq!(p.basename(), "index.html");
        assert_eq!(p.hash_prefixed(&d), format!("simple/demo/{d}.index.html"));
        let top = TargetPath::new("top.txt").unwrap();
        assert_eq!(top.dirname(), "");
        assert_eq!(top.hash_prefixed(&d), format!("{d}.top.txt"));
    }
}
