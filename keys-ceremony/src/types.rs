//! Typed values for the ceremony's arguments. The command line parses each argument into one of
//! these before the library sees it (`FromStr`, so clap reports a bad value as a usage error,
//! exit 2); the library takes only these types, so a threshold of 0, an unknown role or an
//! expiry of 0 days cannot reach it.

use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp as Time};
use serde::{Deserialize, Serialize};
use tufa_tuf::{BinLayout, KeyId, RoleName};

use crate::error::Result;

/// The offline roles the ceremony signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OfflineRole {
    Root,
    Targets,
    Bins,
}

impl OfflineRole {
    pub const ALL: [Self; 3] = [Self::Root, Self::Targets, Self::Bins];

    pub fn name(self) -> &'static str {
        match self {
            Self::Root => RoleName::ROOT,
            Self::Targets => RoleName::TARGETS,
            Self::Bins => RoleName::BINS,
        }
    }

    /// `root` → `Root`; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == s)
    }

    /// `N.<role>.json`.
    pub fn file_name(self, version: u64) -> String {
        format!("{version}.{}.json", self.name())
    }
}

impl fmt::Display for OfflineRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OfflineRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s).ok_or_else(|| format!("`{s}` is not an offline role: give root, targets or bins"))
    }
}

/// `N.role.json` → (role, N); `None` for anything else (`01.root.json`, `1.snapshot.json`, …).
pub fn parse_file_name(name: &str) -> Option<(OfflineRole, u64)> {
    let stem = name.strip_suffix(".json")?;
    let (n, role) = stem.split_once('.')?;
    if n.is_empty() || n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((OfflineRole::parse(role)?, n.parse().ok()?))
}

/// Which pending file `sign` and `discard` act on: a role (its one pending file), or a file
/// name (`2.root.json`, optionally as `pending/2.root.json`), which also pins the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingSelector {
    Role(OfflineRole),
    File { role: OfflineRole, version: u64 },
}

impl PendingSelector {
    pub fn role(self) -> OfflineRole {
        match self {
            Self::Role(r) | Self::File { role: r, .. } => r,
        }
    }
}

impl From<OfflineRole> for PendingSelector {
    fn from(role: OfflineRole) -> Self {
        Self::Role(role)
    }
}

impl FromStr for PendingSelector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(role) = OfflineRole::parse(s) {
            return Ok(Self::Role(role));
        }
        let name = s.strip_prefix("pending/").unwrap_or(s);
        parse_file_name(name)
            .map(|(role, version)| Self::File { role, version })
            .ok_or_else(|| {
                format!("`{s}` is neither root, targets, bins nor a pending file name like 2.root.json")
            })
    }
}

impl fmt::Display for PendingSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Role(r) => write!(f, "{r}"),
            Self::File { role, version } => write!(f, "pending/{}", role.file_name(*version)),
        }
    }
}

/// A signature threshold: at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threshold(NonZeroU32);

impl Threshold {
    pub const ONE: Self = Self(NonZeroU32::MIN);

    /// `None` for 0.
    pub fn new(n: u32) -> Option<Self> {
        NonZeroU32::new(n).map(Self)
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let n: u32 = s
            .parse()
            .map_err(|_| format!("`{s}` is not a number of signatures (give 1 or more)"))?;
        Self::new(n)
            .ok_or_else(|| "a threshold of 0 would need no signature at all; give 1 or more".to_owned())
    }
}

/// How long new metadata stays valid: 1 to 3650 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct ExpiryDays(u32);

impl ExpiryDays {
    pub const MAX: u32 = 3650;
    /// The default lifetime of root, targets and bins.
    pub const DEFAULT: Self = Self(365);

    pub fn new(days: u32) -> Result<Self, String> {
        if (1..=Self::MAX).contains(&days) {
            Ok(Self(days))
        } else {
            Err(format!(
                "an expiry of {days} days is not between 1 and {} (ten years)",
                Self::MAX
            ))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }

    pub fn lifetime(self) -> SignedDuration {
        SignedDuration::from_hours(24 * i64::from(self.0))
    }

    /// `now` plus this many days, as TUF metadata states it (whole seconds).
    pub fn expires_from(self, now: Time) -> Result<Time> {
        Ok(tufa_tuf::build::expires_after(now, self.lifetime())?)
    }
}

impl TryFrom<u32> for ExpiryDays {
    type Error = String;
    fn try_from(days: u32) -> Result<Self, String> {
        Self::new(days)
    }
}

impl From<ExpiryDays> for u32 {
    fn from(d: ExpiryDays) -> u32 {
        d.0
    }
}

impl fmt::Display for ExpiryDays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for ExpiryDays {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let days: u32 = s
            .parse()
            .map_err(|_| format!("`{s}` is not a number of days (1 to {})", Self::MAX))?;
        Self::new(days)
    }
}

/// The hashed-bin layout from `--bins-bit-length`: log2 of the number of bins (1 to 16).
pub fn parse_bin_layout(s: &str) -> Result<BinLayout, String> {
    let bits: u8 = s.parse().map_err(|_| {
        format!(
            "`{s}` is not a bit length (1 to {}); it must match the mirror's `[tuf] bins_bit_length`",
            BinLayout::MAX_BIT_LENGTH
        )
    })?;
    BinLayout::new(bits).map_err(|e| e.to_string())
}

/// A key holder's name: 1 to 64 printable characters (it labels keys in every listing).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HolderName(String);

impl HolderName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The default holder of a key file: its file name.
    pub fn from_file_name(path: &Path) -> Result<Self, String> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        name.parse()
    }
}

impl fmt::Display for HolderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for HolderName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.chars().count() > 64 || s.chars().any(char::is_control) {
            return Err(format!(
                "holder name `{}` must be 1 to 64 printable characters",
                s.escape_debug()
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

/// A key already in the ceremony, as `--remove-*-key` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySelector {
    /// A full key id (64 hex digits).
    KeyId(KeyId),
    /// 8 to 63 hex digits: the key whose id starts with them. When no key id does, the text is
    /// tried as a holder name (holders may be called `deadbeef`).
    KeyIdPrefix(String),
    /// A holder name, as recorded in the ceremony.
    Holder(String),
    /// A public key file (`*.pub.json`) of the key.
    PublicKeyFile(PathBuf),
}

impl FromStr for KeySelector {
    type Err = String;

    /// An existing file is a public key file; otherwise 64 hex digits are a key id, 8 or more a
    /// key id prefix, and anything else a holder name.
    fn from_str(s: &str) -> Result<Self, String> {
        if Path::new(s).is_file() {
            return Ok(Self::PublicKeyFile(PathBuf::from(s)));
        }
        let lower = s.to_ascii_lowercase();
        let hex = !s.is_empty() && lower.bytes().all(|b| b.is_ascii_hexdigit());
        if hex && lower.len() == 64 {
            return lower
                .parse()
                .map(Self::KeyId)
                .map_err(|e| format!("key id `{s}`: {e}"));
        }
        if hex && lower.len() >= 8 && lower.len() < 64 {
            return Ok(Self::KeyIdPrefix(lower));
        }
        let holder: HolderName = s.parse().map_err(|e| {
            format!("{e}; a key is named by its holder, its key id (or 8+ hex digits of it), or its public key file")
        })?;
        Ok(Self::Holder(holder.0))
    }
}

impl fmt::Display for KeySelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeyId(id) => write!(f, "{id}"),
            Self::KeyIdPrefix(p) => f.write_str(p),
            Self::Holder(h) => f.write_str(h),
            Self::PublicKeyFile(p) => write!(f, "{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(parse_file_name("1.root.json"), Some((OfflineRole::Root, 1)));
        assert_eq!(parse_file_name("12.bins.json"), Some((OfflineRole::Bins, 12)));
        assert_eq!(parse_file_name("3.targets.json"), Some((OfflineRole::Targets, 3)));
        for bad in [
            "01.root.json",
            "1.snapshot.json",
            "timestamp.json",
            "x.root.json",
            "1.root",
            "1.bin-0000.json",
            ".root.json",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
        assert_eq!(OfflineRole::Bins.file_name(4), "4.bins.json");
    }

    #[test]
    fn pending_selectors() {
        assert_eq!("root".parse(), Ok(PendingSelector::Role(OfflineRole::Root)));
        assert_eq!(
            "pending/2.root.json".parse(),
            Ok(PendingSelector::File {
                role: OfflineRole::Root,
                version: 2
            })
        );
        let e = "snapshot".parse::<PendingSelector>().unwrap_err();
        assert!(e.contains("neither root, targets, bins"), "{e}");
    }

    #[test]
    fn thresholds_and_expiry_are_bounded() {
        assert!("0".parse::<Threshold>().unwrap_err().contains("threshold of 0"));
        assert!("-1".parse::<Threshold>().is_err());
        assert_eq!("2".parse::<Threshold>().unwrap().get(), 2);
        assert!("0".parse::<ExpiryDays>().is_err());
        assert!("3651".parse::<ExpiryDays>().is_err());
        assert_eq!(
            "1".parse::<ExpiryDays>().unwrap().lifetime(),
            SignedDuration::from_hours(24)
        );
        assert!(parse_bin_layout("17").is_err());
        assert_eq!(parse_bin_layout("4").unwrap().bin_count(), 16);
    }

    #[test]
    fn key_selectors() {
        let id = "ab".repeat(32);
        assert!(matches!(id.parse(), Ok(KeySelector::KeyId(_))));
        assert_eq!(
            "ABCDEF01".parse(),
            Ok(KeySelector::KeyIdPrefix("abcdef01".into()))
        );
        assert_eq!("bob".parse(), Ok(KeySelector::Holder("bob".into())));
        assert_eq!("abc".parse(), Ok(KeySelector::Holder("abc".into())));
        assert!("".parse::<KeySelector>().is_err());
        assert!("a\tb".parse::<HolderName>().is_err());
    }
}
