//! Where a key file's passphrase comes from.
//!
//! Production: the interactive prompt (nothing lands in shell history, the environment or a
//! file). Scripted tests and drills: `--passphrase-file FILE` or `TUFA_CEREMONY_PASSPHRASE`.

use std::fmt;
use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::error::{CeremonyError, Result};

/// The environment variable read when no passphrase file is given (tests and drills only).
pub const PASSPHRASE_ENV: &str = "TUFA_CEREMONY_PASSPHRASE";

/// Shortest passphrase `keygen` accepts.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

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

    fn check_new(&self) -> Result<()> {
        if self.0.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(CeremonyError::Passphrase(format!(
                "a new key's passphrase must have at least {MIN_PASSPHRASE_CHARS} characters"
            )));
        }
        Ok(())
    }
}

/// How to obtain a passphrase.
#[derive(Debug, Clone)]
pub enum PassphraseSource {
    /// Ask on the terminal (twice for a new key). The production path.
    Prompt,
    /// The first line of a file (a trailing newline is dropped).
    File(PathBuf),
    /// The value of [`PASSPHRASE_ENV`].
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

    /// The passphrase of an existing key (`what` names the key in the prompt).
    pub fn existing(&self, what: &str) -> Result<Passphrase> {
        self.obtain(what, false)
    }

    /// The passphrase for a new key: confirmed when prompted, and at least
    /// [`MIN_PASSPHRASE_CHARS`] characters.
    pub fn new_key(&self, what: &str) -> Result<Passphrase> {
        let p = self.obtain(what, true)?;
        p.check_new()?;
        Ok(p)
    }

    fn obtain(&self, what: &str, confirm: bool) -> Result<Passphrase> {
        let p = match self {
            Self::Value(p) => p.clone(),
            Self::Env => Passphrase::new(std::env::var(PASSPHRASE_ENV).map_err(|_| {
                CeremonyError::Passphrase(format!("{PASSPHRASE_ENV} is not set or not UTF-8"))
            })?),
            Self::File(path) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    CeremonyError::Passphrase(format!("cannot read `{}`: {e}", path.display()))
                })?);
                let line = text.lines().next().unwrap_or("");
                Passphrase::new(line)
            }
            Self::Prompt => {
                let prompt_err = |e: std::io::Error| {
                    CeremonyError::Passphrase(format!(
                        "cannot read it from the terminal ({e}); run on a terminal, or use --passphrase-file / {PASSPHRASE_ENV} for scripted drills"
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
            return Err(CeremonyError::Passphrase("empty passphrase".into()));
        }
        Ok(p)
    }
}
