//! The one error type of this crate. Every variant names the role, version, key id or target
//! path it is about, so a single line tells an operator what is wrong.

use std::path::PathBuf;

/// Everything that can go wrong while building, signing, parsing or verifying TUF metadata.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TufError {
    /// A value cannot be written as canonical JSON (a float, for instance).
    #[error("canonical JSON: {reason} at `{location}`")]
    Canonical { location: String, reason: String },

    /// Metadata bytes are not valid JSON or do not fit the model.
    #[error("metadata `{what}` is malformed: {reason}")]
    Malformed { what: String, reason: String },

    /// The `_type` of the metadata is not the one expected.
    #[error("metadata `{what}` has _type `{found}`, expected `{expected}`")]
    WrongType {
        what: String,
        expected: &'static str,
        found: String,
    },

    /// The metadata's `spec_version` has a major version other than 1.
    #[error("role `{role}` has unsupported spec_version `{found}` (expected 1.x.y)")]
    SpecVersion { role: String, found: String },

    #[error("`{0}` is not a TUF key id (expected 64 hex characters)")]
    InvalidKeyId(String),

    #[error(
        "`{0}` is not a valid role name (1 to 64 of a-z, A-Z, 0-9, `-`, `_`; starting with a letter or digit)"
    )]
    InvalidRoleName(String),

    #[error("`{path}` is not a valid target path: {reason}")]
    InvalidTargetPath { path: String, reason: &'static str },

    #[error("`{0}` is not a TUF expiry time (expected YYYY-MM-DDTHH:MM:SSZ, whole seconds, UTC)")]
    InvalidExpires(String),

    #[error("hashed-bin bit length {0} is out of range (1..=16)")]
    InvalidBitLength(u32),

    /// A role definition (in root or in a delegation) is unusable.
    #[error("role `{role}`: {reason}")]
    InvalidRole { role: String, reason: String },

    /// A key is malformed or of a type this crate cannot verify.
    #[error("key `{keyid}`: {reason}")]
    InvalidKey { keyid: String, reason: String },

    /// Not enough valid signatures from authorised keys.
    #[error(
        "role `{role}` v{version}: {valid} valid signature(s) from authorised keys, threshold is {threshold}{detail}"
    )]
    Threshold {
        role: String,
        version: u64,
        valid: usize,
        threshold: u32,
        detail: String,
    },

    /// The same key id signs the metadata more than once (python-tuf clients refuse this).
    #[error("role `{role}` v{version}: more than one signature by key `{keyid}`")]
    DuplicateSignature {
        role: String,
        version: u64,
        keyid: String,
    },

    #[error("role `{role}` v{version} expired at {expires}")]
    Expired {
        role: String,
        version: u64,
        expires: String,
    },

    #[error("role `{role}`: expected version {expected}, found version {found}")]
    VersionMismatch { role: String, expected: u64, found: u64 },

    /// A consistent-snapshot file name and the version signed inside the file disagree.
    #[error("`{file}` is signed as version {signed}, but its file name says version {named}")]
    FileVersionMismatch { file: String, named: u64, signed: u64 },

    #[error("`{what}`: length is {found} bytes, expected {expected}")]
    LengthMismatch { what: String, expected: u64, found: u64 },

    #[error("`{what}`: {algorithm} is {found}, expected {expected}")]
    HashMismatch {
        what: String,
        algorithm: String,
        expected: String,
        found: String,
    },

    #[error("`{what}`: unsupported hash algorithm `{algorithm}`")]
    UnsupportedHash { what: String, algorithm: String },

    #[error("`{what}` is {len} bytes, larger than the limit of {max}")]
    TooLarge { what: String, len: u64, max: u64 },

    /// A metadata file the chain needs is not there.
    #[error("metadata file `{0}` is missing")]
    MissingFile(String),

    /// A role is not listed where it must be (in root, in snapshot, in a delegation).
    #[error("role `{role}` is not listed in `{listed_in}`")]
    MissingRole { role: String, listed_in: String },

    /// A target sits in a role that is not trusted for its path.
    #[error("target `{path}` is in role `{role}`, but that role is not delegated this path{hint}")]
    TargetNotDelegated {
        path: String,
        role: String,
        hint: String,
    },

    /// Metadata older than the trusted copy: a rollback attack (or a repository that lost
    /// its state). `what` is the role, or a snapshot entry such as `snapshot's bins.json`.
    #[error("{what}: version {new} is older than the trusted version {trusted} (rollback refused)")]
    Rollback { what: String, trusted: u64, new: u64 },

    /// A new snapshot no longer lists a targets role the trusted snapshot listed.
    #[error(
        "snapshot v{version} no longer lists `{meta}`, which the trusted snapshot listed (rollback refused)"
    )]
    SnapshotDropsRole { version: u64, meta: String },

    /// No trusted targets role lists this target (or none that is delegated its path).
    #[error("target `{path}` is not signed: no trusted targets role lists it")]
    TargetNotFound { path: String },

    /// A client call out of the TUF workflow's order (timestamp before root, …): a bug in the
    /// caller, not in the repository.
    #[error("TUF client workflow: {0}")]
    Workflow(&'static str),

    /// Signing failed (a hardware token refused, for instance).
    #[error("signing with key `{keyid}` failed: {reason}")]
    Signing { keyid: String, reason: String },

    #[error("key file `{path}`: {reason}")]
    KeyFile { path: PathBuf, reason: String },

    #[error("key file `{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// A builder was given arguments that cannot make valid metadata.
    #[error("cannot build `{role}` metadata: {reason}")]
    Build { role: String, reason: String },
}

/// The class of attack (or fault) a verification failure stands for, as a client reports it:
/// one word in logs and error pages, so a refused install says *why* in terms an operator can
/// look up (docs/CLIENTS.md lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttackClass {
    /// Metadata older than what the client trusts, or not the version its parent lists.
    Rollback,
    /// Expired metadata: someone may be replaying a stale view of the repository.
    Freeze,
    /// Not signed by a threshold of the keys trusted for the role.
    BadSignature,
    /// Bytes whose length or hash is not what signed metadata says.
    HashMismatch,
    /// A target no trusted role lists (or that a role lists outside its delegation).
    TargetNotSigned,
    /// Metadata that cannot be parsed or is not what its name says.
    Malformed,
    /// Anything else (a missing file, an unsupported key, a limit).
    Other,
}

impl AttackClass {
    /// The stable name used in logs, error bodies and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rollback => "rollback",
            Self::Freeze => "freeze",
            Self::BadSignature => "bad-signature",
            Self::HashMismatch => "hash-mismatch",
            Self::TargetNotSigned => "target-not-signed",
            Self::Malformed => "malformed-metadata",
            Self::Other => "verification-failed",
        }
    }
}

impl std::fmt::Display for AttackClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TufError {
    /// The attack class this failure stands for.
    pub fn attack_class(&self) -> AttackClass {
        match self {
            Self::Rollback { .. }
            | Self::SnapshotDropsRole { .. }
            | Self::VersionMismatch { .. }
            | Self::FileVersionMismatch { .. } => AttackClass::Rollback,
            Self::Expired { .. } => AttackClass::Freeze,
            Self::Threshold { .. } | Self::DuplicateSignature { .. } => AttackClass::BadSignature,
            Self::LengthMismatch { .. } | Self::HashMismatch { .. } | Self::TooLarge { .. } => {
                AttackClass::HashMismatch
            }
            Self::TargetNotFound { .. } | Self::TargetNotDelegated { .. } => AttackClass::TargetNotSigned,
            Self::Malformed { .. }
            | Self::WrongType { .. }
            | Self::SpecVersion { .. }
            | Self::Canonical { .. } => AttackClass::Malformed,
            _ => AttackClass::Other,
        }
    }
}
