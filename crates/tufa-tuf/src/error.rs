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
