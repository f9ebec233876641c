//! The ceremony directory and its steps, one module per step: [`init`](Ceremony::init),
//! [`sign`](Ceremony::prepare_sign), [`status`](Ceremony::status),
//! [`publish`](Ceremony::publish), [`rotate_root`](Ceremony::rotate_root),
//! [`resign`](Ceremony::resign_targets), [`discard`](Ceremony::discard),
//! [`verify`](Ceremony::verify).
//!
//! ```text
//! DIR/ceremony.json            layout: format, bins bit length, default expiry, key holders
//! DIR/pending/N.<role>.json    metadata collecting signatures (root, targets, bins)
//! DIR/published/N.<role>.json  everything published so far (the whole root chain)
//! ```
//!
//! The directory lives on removable media and moves between the air-gapped machine and the
//! key holders; every write is atomic. Signature checks are tufa-tuf's
//! ([`tufa_tuf::verify_payload`]), the same code the mirror and its verifier use.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CeremonyError, Result};
use crate::fsutil;
use crate::types::ExpiryDays;

mod changes;
mod doc;
mod evaluate;
mod graph;
mod holders;
mod keys;
mod report;
mod state;

mod discard;
mod init;
mod publish;
mod resign;
mod rotate_root;
mod sign;
mod status;
mod verify;

pub use evaluate::Evaluation;
pub use graph::EXPIRY_WARNING_DAYS;
pub use holders::{Holder, Holders};
pub use init::InitOptions;
pub use publish::PublishReport;
pub use report::Report;
pub use resign::ResignTargetsOptions;
pub use rotate_root::RotateRootOptions;
pub use sign::SignPlan;
pub use status::{PendingStatus, StatusReport};
pub use verify::{VerifyReport, verify_metadata_dir};

pub use crate::types::OfflineRole;

pub const CEREMONY_FILE: &str = "ceremony.json";
/// The format `ceremony.json` is written in (holders as an ordered list).
pub const CEREMONY_FORMAT: &str = "tufa-ceremony/2";
/// The first format (holders as a key-id map), still read.
pub const CEREMONY_FORMAT_V1: &str = "tufa-ceremony/1";
pub const PENDING_DIR: &str = "pending";
pub const PUBLISHED_DIR: &str = "published";

/// `DIR/ceremony.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CeremonyConfig {
    pub format: String,
    /// log2 of the number of hashed bins the `bins` role delegates to.
    pub bins_bit_length: u8,
    /// Default lifetime of new offline metadata.
    pub expires_days: ExpiryDays,
    /// Who holds each key, in holder order (for listings; not security relevant).
    pub holders: Holders,
}

/// An open ceremony directory.
#[derive(Debug, Clone)]
pub struct Ceremony {
    dir: PathBuf,
    config: CeremonyConfig,
}

impl Ceremony {
    /// Opens an existing ceremony directory.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(CEREMONY_FILE);
        let bad = |reason: String| CeremonyError::Ceremony {
            dir: dir.to_owned(),
            reason,
        };
        if !path.is_file() {
            return Err(bad(format!(
                "no {CEREMONY_FILE}: not a ceremony directory (create one with `tufa-ceremony init`)"
            )));
        }
        let bytes = fsutil::read_limited(&path, 1 << 20)?;
        let mut config: CeremonyConfig =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("{CEREMONY_FILE} is malformed: {e}")))?;
        match config.format.as_str() {
            CEREMONY_FORMAT => {}
            // Rewritten as the current format on the next change.
            CEREMONY_FORMAT_V1 => CEREMONY_FORMAT.clone_into(&mut config.format),
            other => {
                return Err(bad(format!(
                    "unsupported format `{other}` in {CEREMONY_FILE} (this tufa-ceremony reads {CEREMONY_FORMAT} and {CEREMONY_FORMAT_V1}); use the tufa-ceremony that wrote it"
                )));
            }
        }
        for sub in [PENDING_DIR, PUBLISHED_DIR] {
            if !dir.join(sub).is_dir() {
                return Err(bad(format!("`{sub}/` is missing")));
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            config,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &CeremonyConfig {
        &self.config
    }

    pub fn holders(&self) -> &Holders {
        &self.config.holders
    }

    fn save_config(&self) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(&self.config).map_err(|e| self.error(e.to_string()))?;
        json.push(b'\n');
        fsutil::write_atomic(&self.dir.join(CEREMONY_FILE), &json)
    }

    /// An error about the ceremony directory's state.
    fn error(&self, reason: impl Into<String>) -> CeremonyError {
        CeremonyError::Ceremony {
            dir: self.dir.clone(),
            reason: reason.into(),
        }
    }
}
