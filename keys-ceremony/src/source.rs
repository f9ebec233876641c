//! Where a signing key lives: an encrypted key file, or a PKCS#11 token (YubiKey, HSM) through
//! `tufa-pkcs11`. Everything downstream sees a [`tufa_tuf::Signer`].

use std::path::{Path, PathBuf};

use tufa_pkcs11::{Pkcs11Config, Pkcs11Signer};
use tufa_tuf::{Key, KeyId, Signer};

use crate::error::Result;
use crate::keyfile::{EncryptedKey, PublicKeyFile, check_holder};
use crate::passphrase::PassphraseSource;

/// The environment variable a PKCS#11 PIN is read from when set (otherwise it is prompted for).
pub const PKCS11_PIN_ENV: &str = "TUFA_PKCS11_PIN";

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
    Pkcs11(Pkcs11Config),
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
            Self::Pkcs11(_) => Ok(None),
        }
    }

    /// Unlocks the key.
    pub fn open(&self) -> Result<Box<dyn Signer>> {
        match self {
            Self::File { path, passphrase } => {
                let k = EncryptedKey::read(path)?;
                let what = format!("`{}` ({}, key {})", path.display(), k.holder(), short(&k.keyid()));
                let pass = passphrase.existing(&what)?;
                Ok(Box::new(k.decrypt(&pass)?))
            }
            Self::Pkcs11(cfg) => Ok(Box::new(Pkcs11Signer::open(cfg)?)),
        }
    }

    /// Names the source in messages.
    pub fn describe(&self) -> String {
        match self {
            Self::File { path, .. } => format!("key file `{}`", path.display()),
            Self::Pkcs11(cfg) => format!("PKCS#11 key `{}` on token `{}`", cfg.key_label, cfg.token_label),
        }
    }
}

/// `keygen` on a token: generates an ed25519 key pair inside the token (not extractable) and
/// writes its public key file to `public_out`. Refuses to overwrite the file, and the token
/// refuses a second key with the same label.
pub fn generate_pkcs11_key(cfg: &Pkcs11Config, public_out: &Path, holder: &str) -> Result<PublicKeyFile> {
    check_holder(holder)?;
    if public_out.exists() {
        return Err(crate::CeremonyError::Usage(format!(
            "`{}` already exists; refusing to overwrite a key",
            public_out.display()
        )));
    }
    let signer = Pkcs11Signer::generate(cfg)?;
    let public = PublicKeyFile::new(holder, signer.key().clone());
    public.write_new(public_out)?;
    Ok(public)
}

/// The first 16 hex digits of a key id, for compact listings.
pub(crate) fn short(keyid: &KeyId) -> String {
    keyid.to_hex()[..16].to_owned()
}
