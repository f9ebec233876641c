//! The one error type of the ceremony library. Every message names the file, role or key it is
//! about and, where there is one, the fix, so the single line the binary prints tells the
//! operator what to do.
//!
//! Exit codes ([`CeremonyError::exit_code`]): 2 for usage (the command line itself is wrong,
//! or a step that needs a terminal has none), 1 for everything found while doing the work.

use std::path::PathBuf;

use tufa_tuf::TufError;

/// Everything that can go wrong in a ceremony step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CeremonyError {
    /// The AEAD tag did not verify: the passphrase is wrong or the file was altered. `hint`
    /// says when a passphrase from a file or the variable has surrounding whitespace.
    #[error("wrong passphrase or corrupted key file `{}`{}", path.display(), hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    WrongPassphrase { path: PathBuf, hint: Option<String> },

    /// A private key file that cannot be used.
    #[error("key file `{}`: {reason}", path.display())]
    KeyFile { path: PathBuf, reason: String },

    /// A public key file that cannot be used.
    #[error("public key file `{}`: {reason}", path.display())]
    PublicKeyFile { path: PathBuf, reason: String },

    /// A private key where a public key file belongs (the message says which file to bring).
    #[error("{0}")]
    NotPublic(String),

    /// A file the step would create exists already; nothing is overwritten.
    #[error("`{}` already exists; refusing to overwrite it", path.display())]
    AlreadyExists { path: PathBuf },

    #[error("`{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    /// No passphrase could be obtained, or it is unacceptable.
    #[error("passphrase: {0}")]
    Passphrase(String),

    /// A prompt (passphrase, PIN or confirmation) is needed and there is no terminal.
    #[error("{0}")]
    NoTerminal(String),

    /// The key holder did not confirm the signature.
    #[error("not signed: confirmation declined")]
    Declined,

    /// The ceremony directory is missing, malformed, or in a state that forbids the step.
    #[error("ceremony `{}`: {reason}", dir.display())]
    Ceremony { dir: PathBuf, reason: String },

    /// Keys given for a role that cannot work together (a key twice, the online key among the
    /// offline keys, a threshold above the number of keys a rotation leaves).
    #[error("{0}")]
    Keys(String),

    /// A metadata file (pending or published) is unusable.
    #[error("`{file}`: {reason}")]
    Metadata { file: String, reason: String },

    /// The key may not sign this file.
    #[error("key `{keyid}`{holder} is not authorised to sign `{file}`: {reason}")]
    NotAuthorised {
        file: String,
        keyid: String,
        holder: String,
        reason: String,
    },

    /// The key already signed this file.
    #[error("`{file}` already carries a signature by key `{keyid}`{holder}")]
    AlreadySigned {
        file: String,
        keyid: String,
        holder: String,
    },

    /// `publish` found thresholds unmet or an inconsistent role graph; nothing was written.
    #[error("cannot publish: {}", problems.join("; "))]
    NotPublishable { problems: Vec<String> },

    /// `verify` found problems in the published chain.
    #[error("verification failed with {} problem(s): {}", problems.len(), problems.join("; "))]
    Verify { problems: Vec<String> },

    /// Building, parsing or verifying TUF metadata failed (the message names the role).
    #[error(transparent)]
    Tuf(#[from] TufError),

    /// A PKCS#11 token (YubiKey, HSM) could not be used (the message names module, token, key).
    #[error(transparent)]
    Pkcs11(#[from] tufa_pkcs11::Pkcs11Error),

    /// The command line itself is wrong: options that conflict, a threshold above the number
    /// of keys given, a drill-only passphrase source for a real key.
    #[error("{0}")]
    Usage(String),
}

impl CeremonyError {
    /// Process exit code: 2 for usage errors (including a missing terminal), 1 for
    /// everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::NoTerminal(_) => 2,
            _ => 1,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

pub type Result<T, E = CeremonyError> = std::result::Result<T, E>;
