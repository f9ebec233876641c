//! Where a key file's passphrase comes from.
//!
//! Production: the interactive prompt (nothing lands in shell history, the environment or a
//! file). Drills and tests only: `--passphrase-file FILE` or `TUFA_CEREMONY_PASSPHRASE`. Those
//! two are dangerous in a real ceremony (a variable left exported from a drill gives every key
//! holder the same passphrase, silently), so each use is announced ([`PassphraseSource::warning`],
//! printed by the binary every time) and `keygen` refuses them without `--drill`.
//!
//! A passphrase file holds the passphrase followed by at most one line break: the passphrase is
//! the file's content minus ONE trailing `\n` or `\r\n`. Everything else counts, spaces
//! included; a wrong-passphrase error says so when the passphrase starts or ends with
//! whitespace ([`PassphraseSource::whitespace_hint`]).

use std::fmt;
use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::error::{CeremonyError, Result};

/// The environment variable read when no passphrase file is given (drills and tests only).
pub const PASSPHRASE_ENV: &str = "TUFA_CEREMONY_PASSPHRASE";

/// Shortest passphrase `keygen` accepts.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// Passphrase files are one line.
const MAX_PASSPHRASE_FILE: u64 = 4096;

/// A passphrase, wiped from memory when dropped.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(…)")
    }
}

impl Passphrase {
    pub fn new(s: impl Into<String>) -> Self {
        Self(Zeroizing::new(s.into()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// `starts with a space`, `ends with a tab`, … when the passphrase has leading or trailing
    /// whitespace.
    fn surrounding_whitespace(&self) -> Option<String> {
        let name = |c: char| match c {
            ' ' => "a space",
            '\t' => "a tab",
            '\r' => "a carriage return",
            '\n' => "a line break",
            _ => "whitespace",
        };
        let first = self.0.chars().next().filter(|c| c.is_whitespace());
        let last = self.0.chars().last().filter(|c| c.is_whitespace());
        match (first, last) {
            (None, None) => None,
            (Some(f), None) => Some(format!("starts with {}", name(f))),
            (None, Some(l)) => Some(format!("ends with {}", name(l))),
            (Some(f), Some(l)) => Some(format!("starts with {} and ends with {}", name(f), name(l))),
        }
    }
}

/// How to obtain a passphrase.
#[derive(Debug, Clone)]
pub enum PassphraseSource {
    /// Ask on the terminal (twice for a new key). The production path.
    Prompt,
    /// A file: its content minus one trailing line break. Drills and tests only.
    File(PathBuf),
    /// The value of [`PASSPHRASE_ENV`]. Drills and tests only.
    Env,
    /// A value the caller already holds (library use, tests).
    Value(Passphrase),
}

impl PassphraseSource {
    /// `--passphrase-file` when given, else [`PASSPHRASE_ENV`] when set, else the prompt.
    pub fn from_cli(file: Option<PathBuf>) -> Self {
        match file {
            Some(f) => Self::File(f),
            None if std::env::var_os(PASSPHRASE_ENV).is_some() => Self::Env,
            None => Self::Prompt,
        }
    }

    /// The file or the variable: sources for drills and tests, never for a real ceremony.
    pub fn is_drill_only(&self) -> bool {
        matches!(self, Self::File(_) | Self::Env)
    }

    /// Names the source in messages: `` `FILE` ``, `TUFA_CEREMONY_PASSPHRASE`, …
    pub fn describe(&self) -> String {
        match self {
            Self::Prompt => "the terminal prompt".into(),
            Self::File(path) => format!("`{}`", path.display()),
            Self::Env => PASSPHRASE_ENV.into(),
            Self::Value(_) => "the caller".into(),
        }
    }

    /// The warning to print each time the passphrase comes from a drill-only source.
    pub fn warning(&self) -> Option<String> {
        match self {
            Self::Env => Some(format!(
                "passphrase read from {PASSPHRASE_ENV} (drills and tests only; unset it for a real ceremony)"
            )),
            Self::File(path) => Some(format!(
                "passphrase read from file `{}` (drills and tests only; a real ceremony types it at the prompt)",
                path.display()
            )),
            Self::Prompt | Self::Value(_) => None,
        }
    }

    /// For a passphrase from the file or the variable with leading or trailing whitespace:
    /// `the passphrase from `FILE` ends with a space; it counts as part of the passphrase`.
    pub fn whitespace_hint(&self, passphrase: &Passphrase) -> Option<String> {
        if !self.is_drill_only() {
            return None;
        }
        let what = passphrase.surrounding_whitespace()?;
        Some(format!(
            "the passphrase from {} {what}; it counts as part of the passphrase",
            self.describe()
        ))
    }

    /// The passphrase of an existing key (`what` names the key in the prompt).
    pub fn existing(&self, what: &str) -> Result<Passphrase> {
        self.obtain(what, false)
    }

    /// The passphrase for a new key: confirmed when prompted, at least
    /// [`MIN_PASSPHRASE_CHARS`] characters, and one line (so it can be typed at a prompt).
    pub fn new_key(&self, what: &str) -> Result<Passphrase> {
        let p = self.obtain(what, true)?;
        if p.0.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(CeremonyError::Passphrase(format!(
                "a new key's passphrase must have at least {MIN_PASSPHRASE_CHARS} characters"
            )));
        }
        if p.0.contains(['\n', '\r']) {
            return Err(CeremonyError::Passphrase(format!(
                "the passphrase from {} has a line break inside; a passphrase is one line (a file may end with one line break)",
                self.describe()
            )));
        }
        Ok(p)
    }

    fn obtain(&self, what: &str, confirm: bool) -> Result<Passphrase> {
        let p = match self {
            Self::Value(p) => p.clone(),
            Self::Env => Passphrase::new(std::env::var(PASSPHRASE_ENV).map_err(|_| {
                CeremonyError::Passphrase(format!("{PASSPHRASE_ENV} is not set or not UTF-8"))
            })?),
            Self::File(path) => {
                let bytes = Zeroizing::new(crate::fsutil::read_limited(path, MAX_PASSPHRASE_FILE).map_err(
                    |e| CeremonyError::Passphrase(format!("cannot read the passphrase file: {e}")),
                )?);
                let text = std::str::from_utf8(&bytes).map_err(|_| {
                    CeremonyError::Passphrase(format!("`{}` is not UTF-8 text", path.display()))
                })?;
                let text = text
                    .strip_suffix("\r\n")
                    .or_else(|| text.strip_suffix('\n'))
                    .unwrap_or(text);
                Passphrase::new(text)
            }
            Self::Prompt => {
                let prompt_err = |e: std::io::Error| {
                    CeremonyError::NoTerminal(format!(
                        "passphrase: cannot read it from the terminal ({e}); run on a terminal (drills and tests: --passphrase-file or {PASSPHRASE_ENV})"
                    ))
                };
                let first = Passphrase::new(
                    rpassword::prompt_password(format!("Passphrase for {what}: ")).map_err(prompt_err)?,
                );
                if confirm {
                    let again = Passphrase::new(
                        rpassword::prompt_password(format!("Repeat the passphrase for {what}: "))
                            .map_err(prompt_err)?,
                    );
                    if first.as_bytes() != again.as_bytes() {
                        return Err(CeremonyError::Passphrase("the two entries differ".into()));
                    }
                }
                first
            }
        };
        if p.0.is_empty() {
            return Err(CeremonyError::Passphrase(format!(
                "the passphrase from {} is empty",
                self.describe()
            )));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_file(content: &[u8]) -> Result<Passphrase> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        std::fs::write(&path, content).unwrap();
        PassphraseSource::File(path).existing("k")
    }

    #[test]
    fn a_file_loses_exactly_one_trailing_line_break() {
        for (content, expected) in [
            (&b"secret\n"[..], &b"secret"[..]),
            (b"secret\r\n", b"secret"),
            (b"secret", b"secret"),
            (b"secret \n", b"secret "),
            (b"secret\n\n", b"secret\n"),
            (b" secret", b" secret"),
        ] {
            assert_eq!(from_file(content).unwrap().as_bytes(), expected, "{content:?}");
        }
        assert!(from_file(b"\n").is_err());
    }

    #[test]
    fn whitespace_is_named() {
        let src = PassphraseSource::File("alice.pass".into());
        let hint = src.whitespace_hint(&Passphrase::new("secret ")).unwrap();
        assert_eq!(
            hint,
            "the passphrase from `alice.pass` ends with a space; it counts as part of the passphrase"
        );
        let hint = PassphraseSource::Env
            .whitespace_hint(&Passphrase::new("\tsecret"))
            .unwrap();
        assert!(
            hint.starts_with("the passphrase from TUFA_CEREMONY_PASSPHRASE starts with a tab"),
            "{hint}"
        );
        assert!(src.whitespace_hint(&Passphrase::new("secret")).is_none());
        assert!(
            PassphraseSource::Prompt
                .whitespace_hint(&Passphrase::new("secret "))
                .is_none()
        );
    }
}
