//! Distribution filenames: wheels (PEP 427 / binary distribution format), sdists (PEP 625 and
//! the older `.zip` form) and legacy kinds.
//!
//! Every filename from an upstream passes through [`DistFilename::parse`] before it is used as
//! part of a path, a URL or an index key. Anything that is not a plausible distribution filename,
//! including path separators, `..`, NUL and control characters, is rejected here, once.

use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::name::{ProjectName, truncate_for_error};

/// Longest filename accepted (most filesystems cap a path component at 255 bytes).
pub const MAX_FILENAME_LEN: usize = 255;

/// Why a string is not a distribution filename.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidFilename {
    #[error(
        "filename `{0}` is unsafe: it must be a single path component without `/`, `\\`, NUL, control characters or a leading `.`"
    )]
    Unsafe(String),
    #[error("filename `{0}` is longer than {MAX_FILENAME_LEN} bytes")]
    TooLong(String),
    #[error("filename `{0}` has no known distribution extension (.whl, .tar.gz, .zip, or a legacy kind)")]
    UnknownExtension(String),
    #[error("wheel filename `{0}` must be `name-version(-build)?-python-abi-platform.whl`")]
    WheelGrammar(String),
    #[error("filename `{filename}`: build tag `{tag}` must start with a digit")]
    BuildTag { filename: String, tag: String },
    #[error("sdist filename `{0}` must be `name-version` plus its extension")]
    SdistGrammar(String),
    #[error(
        "legacy filename `{0}` must be `name-version.ext`, `name-version(-pyX.Y(-platform))?.egg` or `name-version.platform(-pyX.Y)?.exe/.msi`"
    )]
    LegacyGrammar(String),
    #[error("filename `{filename}`: `{version}` is not a PEP 440 version")]
    Version { filename: String, version: String },
    #[error("filename `{filename}`: `{name}` is not a valid project name")]
    Name { filename: String, name: String },
}

/// The kind of a distribution file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DistKind {
    Wheel,
    /// `.tar.gz` (PEP 625) or the older `.zip`.
    Sdist,
    /// Legacy formats PyPI still hosts: `.egg`, `.exe`, `.msi`, `.tar.bz2`, `.tgz`, `.tar.xz`,
    /// `.tar`, `.tar.Z`, `.rpm`, `.dmg`, `.deb`. Modern pip ignores them, but they are mirrored
    /// byte-for-byte (as bandersnatch does) so a mirror is complete. Their project name is
    /// always parsed (so a page cannot list another project's file); their version when the
    /// grammar allows one that parses as PEP 440.
    Legacy,
}

/// A wheel filename, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFilename {
    pub name: ProjectName,
    pub version: Version,
    pub build_tag: Option<String>,
    pub python_tags: Vec<String>,
    pub abi_tags: Vec<String>,
    pub platform_tags: Vec<String>,
}

/// A source distribution filename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdistFilename {
    pub name: ProjectName,
    pub version: Version,
    pub extension: SdistExtension,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdistExtension {
    TarGz,
    Zip,
}

/// A validated distribution filename. Keeps the original string (the bytes upstream used, and
/// the name the file is served under) together with its parsed meaning.
#[derive(Clone, PartialEq, Eq)]
pub struct DistFilename {
    raw: String,
    parsed: Parsed,
}

/// A legacy distribution filename: the project it names, and its version when that parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyFilename {
    pub name: ProjectName,
    pub version: Option<Version>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Parsed {
    Wheel(WheelFilename),
    Sdist(SdistFilename),
    Legacy(LegacyFilename),
}

const LEGACY_EXTENSIONS: &[&str] = &[
    ".egg", ".exe", ".msi", ".tar.bz2", ".tgz", ".tar.xz", ".tar", ".tar.Z", ".rpm", ".dmg", ".deb",
];

impl DistFilename {
    /// Parses an untrusted filename.
    pub fn parse(filename: &str) -> Result<Self, InvalidFilename> {
        check_safe_component(filename)?;
        let parsed = if let Some(stem) = filename.strip_suffix(".whl") {
            Parsed::Wheel(parse_wheel(filename, stem)?)
        } else if let Some(stem) = filename.strip_suffix(".tar.gz") {
            Parsed::Sdist(parse_sdist(filename, stem, SdistExtension::TarGz)?)
        } else if let Some(stem) = filename.strip_suffix(".zip") {
            Parsed::Sdist(parse_sdist(filename, stem, SdistExtension::Zip)?)
        } else if let Some(ext) = LEGACY_EXTENSIONS.iter().find(|ext| filename.ends_with(**ext)) {
            Parsed::Legacy(parse_legacy(
                filename,
                &filename[..filename.len() - ext.len()],
                ext,
            )?)
        } else {
            return Err(InvalidFilename::UnknownExtension(truncate_for_error(filename)));
        };
        Ok(Self {
            raw: filename.to_owned(),
            parsed,
        })
    }

    /// The filename exactly as upstream named it.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn kind(&self) -> DistKind {
        match self.parsed {
            Parsed::Wheel(_) => DistKind::Wheel,
            Parsed::Sdist(_) => DistKind::Sdist,
            Parsed::Legacy(_) => DistKind::Legacy,
        }
    }

    /// The project the file claims to belong to (every kind names one).
    pub fn project(&self) -> Option<&ProjectName> {
        match &self.parsed {
            Parsed::Wheel(w) => Some(&w.name),
            Parsed::Sdist(s) => Some(&s.name),
            Parsed::Legacy(l) => Some(&l.name),
        }
    }

    /// The version the file claims (`None` for a legacy file whose version is not PEP 440).
    pub fn version(&self) -> Option<&Version> {
        match &self.parsed {
            Parsed::Wheel(w) => Some(&w.version),
            Parsed::Sdist(s) => Some(&s.version),
            Parsed::Legacy(l) => l.version.as_ref(),
        }
    }

    pub fn as_legacy(&self) -> Option<&LegacyFilename> {
        match &self.parsed {
            Parsed::Legacy(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_wheel(&self) -> Option<&WheelFilename> {
        match &self.parsed {
            Parsed::Wheel(w) => Some(w),
            _ => None,
        }
    }

    pub fn as_sdist(&self) -> Option<&SdistFilename> {
        match &self.parsed {
            Parsed::Sdist(s) => Some(s),
            _ => None,
        }
    }
}

/// Rejects anything that could escape a directory or confuse a filesystem, shell or URL:
/// separators, `..`, NUL and other control characters, a leading `.` or `-`, and overlong names.
/// Only characters that appear in real distribution filenames are allowed.
pub fn check_safe_component(s: &str) -> Result<(), InvalidFilename> {
    if s.len() > MAX_FILENAME_LEN {
        return Err(InvalidFilename::TooLong(truncate_for_error(s)));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '!');
    if s.is_empty() || s.starts_with('.') || s.starts_with('-') || s.contains("..") || !s.chars().all(allowed)
    {
        return Err(InvalidFilename::Unsafe(truncate_for_error(s)));
    }
    Ok(())
}

fn parse_version(filename: &str, v: &str) -> Result<Version, InvalidFilename> {
    Version::from_str(v).map_err(|_| InvalidFilename::Version {
        filename: truncate_for_error(filename),
        version: truncate_for_error(v),
    })
}

fn parse_name(filename: &str, n: &str) -> Result<ProjectName, InvalidFilename> {
    ProjectName::new(n).map_err(|_| InvalidFilename::Name {
        filename: truncate_for_error(filename),
        name: truncate_for_error(n),
    })
}

fn parse_wheel(filename: &str, stem: &str) -> Result<WheelFilename, InvalidFilename> {
    let parts: Vec<&str> = stem.split('-').collect();
    let (name, version, build, py, abi, plat) = match parts.as_slice() {
        [n, v, p, a, pl] => (n, v, None, p, a, pl),
        [n, v, b, p, a, pl] => (n, v, Some(*b), p, a, pl),
        _ => return Err(InvalidFilename::WheelGrammar(truncate_for_error(filename))),
    };
    let tags = |s: &str| -> Result<Vec<String>, InvalidFilename> {
        let v: Vec<String> = s.split('.').map(str::to_owned).collect();
        if v.iter().any(String::is_empty) {
            return Err(InvalidFilename::WheelGrammar(truncate_for_error(filename)));
        }
        Ok(v)
    };
    if let Some(b) = build
        && !b.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(InvalidFilename::BuildTag {
            filename: truncate_for_error(filename),
            tag: truncate_for_error(b),
        });
    }
    Ok(WheelFilename {
        name: parse_name(filename, name)?,
        version: parse_version(filename, version)?,
        build_tag: build.map(str::to_owned),
        python_tags: tags(py)?,
        abi_tags: tags(abi)?,
        platform_tags: tags(plat)?,
    })
}

/// Splits `name-version`. PEP 625 names have no `-` (normalised with `_`), but older sdists
/// (`python-dateutil-2.8.2.tar.gz`) do, so the split is at the first `-` followed by text that
/// parses as a PEP 440 version.
fn parse_sdist(
    filename: &str,
    stem: &str,
    extension: SdistExtension,
) -> Result<SdistFilename, InvalidFilename> {
    for (i, _) in stem.match_indices('-') {
        let (name, version) = (&stem[..i], &stem[i + 1..]);
        if let (Ok(name), Ok(version)) = (ProjectName::new(name), Version::from_str(version)) {
            return Ok(SdistFilename {
                name,
                version,
                extension,
            });
        }
    }
    Err(InvalidFilename::SdistGrammar(truncate_for_error(filename)))
}

/// Legacy kinds. Their names were never normalised (`python-dateutil-1.0.tar.bz2`,
/// `Foo_Bar-1.0-py2.7.egg`), so ownership follows the sdist rule: the name is the text before a
/// `-` that starts the version, compared after PEP 503 normalisation.
///
/// * sdist-like (`.tar.bz2`, `.tgz`, `.tar.xz`, `.tar`, `.tar.Z`, and `.rpm`/`.dmg`/`.deb`):
///   `name-version.ext`; the split is the first `-` followed by a PEP 440 version, else the
///   first `-` followed by a digit (old non-PEP 440 versions; the version is then unknown).
/// * egg: `name-version(-pyX.Y(-platform))?.egg`; setuptools escapes `-` in the name and the
///   version to `_`, so the name is the first `-`-separated part.
/// * bdist_wininst/msi: `name-version.platform(-pyX.Y)?.exe`: the name as for sdists; the
///   version is the longest `.`-prefix of the rest that parses.
fn parse_legacy(filename: &str, stem: &str, ext: &str) -> Result<LegacyFilename, InvalidFilename> {
    let grammar = || InvalidFilename::LegacyGrammar(truncate_for_error(filename));
    match ext {
        ".egg" => {
            let mut parts = stem.split('-');
            let name = parts.next().filter(|n| !n.is_empty()).ok_or_else(grammar)?;
            let version = parts.next().filter(|v| !v.is_empty()).ok_or_else(grammar)?;
            if let Some(py) = parts.next()
                && !py.starts_with("py")
            {
                return Err(grammar());
            }
            Ok(LegacyFilename {
                name: parse_name(filename, name)?,
                version: Version::from_str(&version.replace('_', "-")).ok(),
            })
        }
        ".exe" | ".msi" => {
            let (name, rest) = split_at_version_dash(stem).ok_or_else(grammar)?;
            // Drop a `-pyX.Y` suffix, then the platform after the version.
            let rest = match rest.rfind("-py") {
                Some(i) => &rest[..i],
                None => rest,
            };
            let version = rest
                .match_indices('.')
                .map(|(i, _)| &rest[..i])
                .chain(std::iter::once(rest))
                .filter_map(|v| Version::from_str(v).ok())
                .next_back();
            Ok(LegacyFilename {
                name: parse_name(filename, name)?,
                version,
            })
        }
        _ => {
            for (i, _) in stem.match_indices('-') {
                let (name, version) = (&stem[..i], &stem[i + 1..]);
                if let (Ok(name), Ok(version)) = (ProjectName::new(name), Version::from_str(version)) {
                    return Ok(LegacyFilename {
                        name,
                        version: Some(version),
                    });
                }
            }
            let (name, _) = split_at_version_dash(stem).ok_or_else(grammar)?;
            Ok(LegacyFilename {
                name: parse_name(filename, name)?,
                version: None,
            })
        }
    }
}

/// Splits `name-rest` at the first `-` followed by an ASCII digit.
fn split_at_version_dash(stem: &str) -> Option<(&str, &str)> {
    stem.match_indices('-')
        .map(|(i, _)| (&stem[..i], &stem[i + 1..]))
        .find(|(name, rest)| !name.is_empty() && rest.starts_with(|c: char| c.is_ascii_digit()))
}

impl fmt::Display for DistFilename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for DistFilename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DistFilename({:?})", self.raw)
    }
}

impl FromStr for DistFilename {
    type Err = InvalidFilename;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for DistFilename {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for DistFilename {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> DistFilename {
        DistFilename::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn wheels() {
        let w = p("numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl");
        let w = w.as_wheel().unwrap();
        assert_eq!(w.name.as_str(), "numpy");
        assert_eq!(w.version.to_string(), "1.26.4");
        assert_eq!(w.platform_tags, ["manylinux_2_17_x86_64", "manylinux2014_x86_64"]);
        assert_eq!(w.build_tag, None);

        let w = p("Foo.Bar_baz-2.0-1build-py2.py3-none-any.whl");
        let w = w.as_wheel().unwrap();
        assert_eq!(w.name.as_str(), "foo-bar-baz");
        assert_eq!(w.build_tag.as_deref(), Some("1build"));
        assert_eq!(w.python_tags, ["py2", "py3"]);

        let w = p("torch-2.1.0+cpu-cp311-cp311-linux_x86_64.whl");
        assert_eq!(w.version().unwrap().to_string(), "2.1.0+cpu");
        assert_eq!(
            p("zope.interface-6.1-cp39-cp39-win32.whl")
                .project()
                .unwrap()
                .as_str(),
            "zope-interface"
        );
        assert_eq!(p("pkg-1.0.post1.dev3-py3-none-any.whl").kind(), DistKind::Wheel);
    }

    #[test]
    fn bad_wheels() {
        for bad in [
            "foo-1.0.whl",
            "foo-1.0-py3-none.whl",
            "foo-1.0-b1-py3-none-any.whl", // build tag must start with a digit
            "foo-notaversion-py3-none-any.whl",
            "foo-1.0-py3--any.whl",
            "foo-1.0-x-y-py3-none-any.whl",
        ] {
            assert!(DistFilename::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn sdists() {
        let s = p("python-dateutil-2.8.2.tar.gz");
        assert_eq!(s.project().unwrap().as_str(), "python-dateutil");
        assert_eq!(s.version().unwrap().to_string(), "2.8.2");
        assert_eq!(s.as_sdist().unwrap().extension, SdistExtension::TarGz);
        let s = p("Django-1.0.zip");
        assert_eq!(s.as_sdist().unwrap().extension, SdistExtension::Zip);
        assert_eq!(s.project().unwrap().as_str(), "django");
        assert_eq!(
            p("zope_interface-6.1.tar.gz").project().unwrap().as_str(),
            "zope-interface"
        );
        assert_eq!(p("foo-1.0rc1.tar.gz").version().unwrap().to_string(), "1.0rc1");
        assert!(DistFilename::parse("foo.tar.gz").is_err());
        assert!(DistFilename::parse("foo-bar.tar.gz").is_err());
    }

    #[test]
    fn finding_12_legacy_kinds_name_their_project_and_version() {
        for (f, name, version) in [
            ("foo-1.0-py2.7.egg", "foo", Some("1.0")),
            ("Foo_Bar-2.1-py2.7-linux-x86_64.egg", "foo-bar", Some("2.1")),
            ("foo-1.0.win32.exe", "foo", Some("1.0")),
            (
                "python-dateutil-1.5.win-amd64-py2.7.exe",
                "python-dateutil",
                Some("1.5"),
            ),
            ("foo-1.0.tar.bz2", "foo", Some("1.0")),
            ("python-dateutil-2.8.2.tar.xz", "python-dateutil", Some("2.8.2")),
            ("foo-1.0.tgz", "foo", Some("1.0")),
            ("foo-1.0.msi", "foo", Some("1.0")),
            ("foo-1.0.tar.Z", "foo", Some("1.0")),
            ("foo-1.0-1.noarch.rpm", "foo", None),
            ("foo-0.1dev-r123.tar.bz2", "foo", None),
        ] {
            let d = p(f);
            assert_eq!(d.kind(), DistKind::Legacy, "{f}");
            assert_eq!(d.project().map(ProjectName::as_str), Some(name), "{f}");
            assert_eq!(d.version().map(ToString::to_string).as_deref(), version, "{f}");
        }
        for bad in [
            "foo.tar.bz2",
            "foo-bar.tgz",
            "-1.0.egg",
            "foo.egg",
            "foo-1.0-x86.egg",
            "setup.exe",
        ] {
            assert!(DistFilename::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(matches!(
            DistFilename::parse("foo-1.0.txt"),
            Err(InvalidFilename::UnknownExtension(_))
        ));
    }

    #[test]
    fn hostile_filenames() {
        for bad in [
            "../../evil-1.0-py3-none-any.whl",
            "..\\evil-1.0-py3-none-any.whl",
            "a/b-1.0-py3-none-any.whl",
            "evil\0-1.0-py3-none-any.whl",
            ".hidden-1.0-py3-none-any.whl",
            "-rf-1.0.tar.gz",
            "evil\n-1.0.tar.gz",
            "evil-1.0-py3-none-any.whl%00",
            "",
        ] {
            let err = DistFilename::parse(bad).unwrap_err();
            assert!(matches!(err, InvalidFilename::Unsafe(_)), "{bad:?}: {err}");
        }
        let long = format!("{}-1.0.tar.gz", "a".repeat(300));
        assert!(matches!(
            DistFilename::parse(&long),
            Err(InvalidFilename::TooLong(_))
        ));
        // The error message shows the bad value escaped, so logs stay one line.
        let msg = DistFilename::parse("x\0y.whl").unwrap_err().to_string();
        assert!(msg.contains("x\\0y.whl"), "{msg}");
    }
}
