//! Where a signing key lives: an encrypted key file, or a PKCS#11 token (YubiKey, HSM) through
//! `tufa-pkcs11`. Everything downstream sees a [`tufa_tuf::Signer`].
//!
//! Secrets (a passphrase, a PIN) are asked for only in [`KeySource::open`], so `sign` can show
//! what is about to be signed and get the holder's confirmation first.

use std::path::{Path, PathBuf};

use tufa_pkcs11::{Pkcs11Config, Pkcs11Signer};
use tufa_tuf::{Key, KeyId, Signer};
use zeroize::Zeroizing;

use crate::error::{CeremonyError, Result};
use crate::keyfile::{EncryptedKey, PublicKeyFile};
use crate::passphrase::PassphraseSource;
use crate::types::HolderName;

/// The environment variable a PKCS#11 PIN is read from when set (otherwise it is prompted for).
pub const PKCS11_PIN_ENV: &str = "TUFA_PKCS11_PIN";

/// A key pair inside a PKCS#11 token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenKey {
    /// The token's PKCS#11 module (shared library).
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// The key pair's label on the token.
    pub key_label: String,
}

impl TokenKey {
    fn config(&self, pin: &PinSource) -> Result<Pkcs11Config> {
        Ok(Pkcs11Config {
            module: self.module.clone(),
            token_label: self.token_label.clone(),
            pin: pin.obtain(&self.token_label)?.to_string(),
            key_label: self.key_label.clone(),
        })
    }

    /// `PKCS#11 key `root-hsm` on token `ceremony``.
    pub fn describe(&self) -> String {
        format!("PKCS#11 key `{}` on token `{}`", self.key_label, self.token_label)
    }
}

/// Where a token's PIN comes from.
#[derive(Debug, Clone)]
pub enum PinSource {
    /// Ask on the terminal. The production path.
    Prompt,
    /// The value of [`PKCS11_PIN_ENV`]. Drills and tests.
    Env,
    /// A value the caller already holds.
    Value(Zeroizing<String>),
}

impl PinSource {
    /// [`PKCS11_PIN_ENV`] when set, else the prompt.
    pub fn from_env() -> Self {
        if std::env::var_os(PKCS11_PIN_ENV).is_some() {
            Self::Env
        } else {
            Self::Prompt
        }
    }

    /// The warning to print each time the PIN comes from the variable.
    pub fn warning(&self) -> Option<String> {
        matches!(self, Self::Env).then(|| {
            format!("PIN read from {PKCS11_PIN_ENV} (drills and tests only; unset it for a real ceremony)")
        })
    }

    fn obtain(&self, token: &str) -> Result<Zeroizing<String>> {
        match self {
            Self::Value(pin) => Ok(pin.clone()),
            Self::Env => std::env::var(PKCS11_PIN_ENV)
                .map(Zeroizing::new)
                .map_err(|_| CeremonyError::Passphrase(format!("{PKCS11_PIN_ENV} is not set or not UTF-8"))),
            Self::Prompt => rpassword::prompt_password(format!("PIN for PKCS#11 token `{token}`: "))
                .map(Zeroizing::new)
                .map_err(|e| {
                    CeremonyError::NoTerminal(format!(
                        "PIN: cannot read it from the terminal ({e}); run on a terminal (drills and tests: {PKCS11_PIN_ENV})"
                    ))
                }),
        }
    }
}

/// A signing key and how to unlock it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum KeySource {
    /// A `tufa-ceremony keygen` key file, decrypted with a passphrase.
    File {
        path: PathBuf,
        passphrase: PassphraseSource,
    },
    /// An ed25519 key inside a PKCS#11 token; signing happens in the token.
    Pkcs11 { token: TokenKey, pin: PinSource },
}

/// The public half of a key source, known before unlocking it.
#[derive(Debug, Clone)]
pub struct PublicPart {
    pub key: Key,
    pub holder: Option<String>,
}

impl KeySource {
    /// The public key, when it can be read without unlocking (a key file's is in the clear),
    /// so authorisation is checked before anyone types a secret. `None` for a token, whose
    /// key is found only after logging in.
    pub fn public_part(&self) -> Result<Option<PublicPart>> {
        match self {
            Self::File { path, .. } => {
                let k = EncryptedKey::read(path)?;
                Ok(Some(PublicPart {
                    key: k.key().clone(),
                    holder: Some(k.holder().to_owned()),
                }))
            }
            Self::Pkcs11 { .. } => Ok(None),
        }
    }

    /// The warning to print before [`KeySource::open`] reads a secret from a drill-only source.
    pub fn warning(&self) -> Option<String> {
        match self {
            Self::File { passphrase, .. } => passphrase.warning(),
            Self::Pkcs11 { pin, .. } => pin.warning(),
        }
    }

    /// Unlocks the key: asks for the passphrase or the PIN.
    pub fn open(&self) -> Result<Box<dyn Signer>> {
        match self {
            Self::File { path, passphrase } => {
                let k = EncryptedKey::read(path)?;
                let what = format!("`{}` ({}, key {})", path.display(), k.holder(), short(&k.keyid()));
                let pass = passphrase.existing(&what)?;
                match k.decrypt(&pass) {
                    Ok(signer) => Ok(Box::new(signer)),
                    Err(CeremonyError::WrongPassphrase { path, .. }) => Err(CeremonyError::WrongPassphrase {
                        path,
                        hint: passphrase.whitespace_hint(&pass),
                    }),
                    Err(e) => Err(e),
                }
            }
            Self::Pkcs11 { token, pin } => Ok(Box::new(Pkcs11Signer::open(&token.config(pin)?)?)),
        }
    }

    /// Names the source in messages.
    pub fn describe(&self) -> String {
        match self {
            Self::File { path, .. } => format!("key file `{}`", path.display()),
            Self::Pkcs11 { token, .. } => token.describe(),
        }
    }
}

/// `keygen` on a token: generates an ed25519 key pair inside the token (not extractable) and
/// writes its public key file to `public_out`. Refuses to overwrite the file, and the token
/// refuses a second key with the same label.
pub fn generate_pkcs11_key(
    token: &TokenKey,
    pin: &PinSource,
    public_out: &Path,
    holder: &HolderName,
) -> Result<PublicKeyFile> {
    if public_out.exists() {
        return Err(CeremonyError::AlreadyExists {
            path: public_out.to_owned(),
        });
    }
    let signer = Pkcs11Signer::generate(&token.config(pin)?)?;
    let public = PublicKeyFile::new(holder.as_str(), signer.key().clone());
    public.write_new(public_out)?;
    Ok(public)
}

/// The first 16 hex digits of a key id, for compact listings.
pub(crate) fn short(keyid: &KeyId) -> String {
    keyid.to_hex()[..16].to_owned()
}

/// The first 8 hex digits of a key id and an ellipsis, for messages: `0123abcd…`.
pub(crate) fn short8(keyid: &KeyId) -> String {
    format!("{}…", &keyid.to_hex()[..8])
}
