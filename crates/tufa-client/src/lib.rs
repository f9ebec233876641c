//! `tufa-client`: tufa's TUF client. It runs the client workflow of the TUF specification
//! against a repository over HTTP: root chain, timestamp, snapshot, targets and delegations
//! (listed roles with path patterns, and succinct hashed bins), then verified target
//! downloads. The rules of trust live in [`tufa_tuf::TrustedMetadata`]; this crate fetches,
//! bounds what it reads, and keeps the client's trusted metadata on disk.
//!
//! Used by `tufa tuf-client` (the tuf-conformance client CLI), `tufa proxy` (a verifying
//! Simple API for pip and uv) and the verifying replica's sync.
//!
//! Local state: one directory holding the trusted metadata under non-versioned names
//! (`root.json`, `timestamp.json`, `snapshot.json`, `targets.json`, `<role>.json` with the role
//! name percent-encoded). Each file is replaced atomically (temporary file, fsync, rename,
//! fsync of the directory), so a client killed at any moment leaves either the old or the new
//! copy, never half of one.
//!
//! Must not know about: Simple API pages, the mirror's store, pip.

#![forbid(unsafe_code)]

mod cache;
mod error;
mod http;
mod updater;

pub use cache::{MetadataDir, write_atomic};
pub use error::ClientError;
pub use http::{Http, HttpOptions, file_matches};
pub use updater::{Updater, UpdaterConfig, base_url, is_cached, target_file};
