//! The one error type of this crate. Messages name the module, token and key label they are
//! about, and never the PIN.

use std::path::PathBuf;

/// Everything that can go wrong while opening, generating or finding a key on a token.
/// (Signing failures are [`tufa_tuf::TufError::Signing`], as the `Signer` trait requires.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// The PKCS#11 module (shared library) cannot be loaded or initialised.
    #[error("PKCS#11 module `{}`: {source}", path.display())]
    Module {
        path: PathBuf,
        source: cryptoki::error::Error,
    },

    /// No initialised token has this label.
    #[error(
        "no initialised PKCS#11 token is labelled `{label}` (tokens present: {})",
        list(available)
    )]
    TokenNotFound { label: String, available: Vec<String> },

    /// The user login failed: wrong PIN, locked PIN, ...
    #[error("cannot log in to PKCS#11 token `{token}` as user: {reason}")]
    Login { token: String, reason: String },

    /// The token has no ed25519 private key with this label.
    #[error("PKCS#11 token `{token}` has no ed25519 private key labelled `{label}`")]
    KeyNotFound { token: String, label: String },

    /// [`crate::Pkcs11Signer::generate`] found an object with the label already.
    #[error(
        "PKCS#11 token `{token}` already holds an object labelled `{label}`; refusing to generate another key with that label"
    )]
    KeyExists { token: String, label: String },

    /// The token or the key cannot be used the way this crate needs (no `CKM_EDDSA`, a key of
    /// another type under the label, a key that wants a PIN per signature, ...).
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// The configuration cannot work (an empty label, for instance).
    #[error("PKCS#11 configuration: {0}")]
    Config(String),

    /// Any other failure reported by the module, with the operation it was doing.
    #[error("PKCS#11: {0}")]
    Pkcs11(String),
}

fn list(labels: &[String]) -> String {
    if labels.is_empty() {
        "none".to_owned()
    } else {
        labels
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
