//! The client's one error type. A refusal carries the [`TufError`] that says what is wrong
//! and which attack it stands for ([`ClientError::attack_class`]).

use std::path::PathBuf;

use tufa_tuf::{AttackClass, TufError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Metadata or a target failed verification.
    #[error("{class}: {source}")]
    Refused {
        class: AttackClass,
        #[source]
        source: TufError,
    },

    /// The repository answered with an HTTP error status.
    #[error("`{url}` answered HTTP {status}")]
    Status { url: String, status: u16 },

    /// The repository could not be reached, or the transfer broke off.
    #[error("fetching `{url}` failed: {reason}")]
    Fetch { url: String, reason: String },

    /// A local file of the client could not be read or written.
    #[error("`{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The client is set up wrong (no trusted root, a bad URL).
    #[error("{0}")]
    Setup(String),
}

impl ClientError {
    /// The attack class of a refusal; `None` for network and local faults.
    pub fn attack_class(&self) -> Option<AttackClass> {
        match self {
            Self::Refused { class, .. } => Some(*class),
            _ => None,
        }
    }
}

impl From<TufError> for ClientError {
    fn from(source: TufError) -> Self {
        Self::Refused {
            class: source.attack_class(),
            source,
        }
    }
}
