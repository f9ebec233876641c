//! `tufa-pypi`: the Python packaging vocabulary tufa speaks, with no I/O.
//!
//! Owns PEP 503 project-name normalisation ([`ProjectName`]), sha256 content addresses
//! ([`Sha256Digest`]), distribution filename parsing ([`DistFilename`], rejecting anything
//! unsafe to use as a path), PEP 440 versions (re-exported from `pep440_rs`), and the Simple
//! Repository API wire models ([`simple`]). Untrusted strings become typed values here, once.
//!
//! Must not know about: networks, storage, signing.

pub mod attribute;
pub mod digest;
pub mod filename;
pub mod metadata;
pub mod name;
pub mod render;
pub mod simple;

pub use attribute::{InvalidAttribute, check_requires_python, check_text};
pub use digest::{InvalidDigest, Sha256Digest, Sha256Hasher};
pub use filename::{DistFilename, DistKind, InvalidFilename, LegacyFilename, check_safe_component};
pub use name::{InvalidProjectName, ProjectName};
pub use pep440_rs::Version;
