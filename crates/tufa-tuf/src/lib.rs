//! `tufa-tuf`: The Update Framework (TUF 1.0, spec version 1.0.31) as PEP 458 lays it out for
//! a Python package index.
//!
//! Owns:
//! - the metadata model ([`Root`], [`Targets`], [`Snapshot`], [`Timestamp`] inside a
//!   [`Signed`] envelope) with typed names ([`KeyId`], [`RoleName`], [`TargetPath`]);
//! - canonical JSON exactly as securesystemslib's `encode_canonical` writes it ([`canonical`]);
//! - keys and signatures: [`Key`], the [`Signer`] trait and [`Ed25519Signer`];
//! - the succinct hashed-bin layout (TAP 15, as python-tuf's `SuccinctRoles`): [`BinLayout`];
//! - builders for tufa's role graph: `root` → `targets` → `bins` → `bin-XXXX` ([`build`]);
//! - verification: thresholds, expiry, and a client-style walk of a whole repository
//!   ([`verify_repository`]);
//! - a client's trusted metadata, the TUF client workflow without I/O ([`TrustedMetadata`]);
//!   the updater that fetches and caches is `tufa-client`.
//!
//! Conformance target: python-tuf's `ngclient` must accept everything built here; the
//! integration tests prove it against a real python-tuf.
//!
//! Must not know about: HTTP servers, the sync, object stores, the network.

#![forbid(unsafe_code)]

pub mod bins;
pub mod build;
pub mod canonical;
mod error;
mod expires;
pub mod keys;
pub mod metadata;
mod names;
mod pattern;
pub mod trusted;
pub mod verify;

pub use bins::BinLayout;
pub use error::{AttackClass, TufError};
pub use expires::{format_expires, parse_expires};
pub use keys::{Ed25519Signer, Key, KeyVal, Signer, sign_metadata};
pub use metadata::{
    DelegatedRole, Delegations, LengthAndHashes, MetaFile, Metadata, ParsedMetadata, Role, RoleKeys, Root,
    SPEC_VERSION, Signature, Signed, Snapshot, SuccinctRoles, TargetFile, Targets, Timestamp,
    check_file_version, file_name_version,
};
pub use names::{KeyId, RoleName, TargetPath, quote};
pub use trusted::{TimestampUpdate, TrustedMetadata};
pub use verify::{
    MetadataSource, VerifiedRepository, VerifiedTarget, VerifyFailure, VerifyOptions, check_expiry,
    verify_next_root, verify_payload, verify_repository, verify_signed, verify_trusted_root,
};

/// File name of a role's metadata. With consistent snapshots every role but `timestamp` is
/// published as `<version>.<role>.json`; `timestamp.json` never carries a version. The role
/// name is percent-encoded ([`RoleName::quoted`]), so a hostile delegation name cannot name a
/// file elsewhere.
pub fn metadata_file_name(role: &RoleName, version: u64, consistent_snapshot: bool) -> String {
    let quoted = role.quoted();
    if role.as_str() == RoleName::TIMESTAMP || (!consistent_snapshot && role.as_str() != RoleName::ROOT) {
        format!("{quoted}.json")
    } else {
        format!("{version}.{quoted}.json")
    }
}
