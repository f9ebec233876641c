//! One metadata file of the ceremony (pending or published), parsed, with the exact bytes its
//! signatures cover.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp as Time;
use sha2::Digest as _;
use tufa_tuf::{ParsedMetadata, Root, Signature, Signed, Targets};

use crate::error::{CeremonyError, Result};
use crate::fsutil;
use crate::types::{OfflineRole, parse_file_name};

/// python-tuf's ngclient limit for root metadata; targets and bins of tufa are far smaller.
const MAX_METADATA: u64 = 512_000;

/// Signed root or targets-type metadata, as loaded from a file.
#[derive(Debug, Clone)]
pub(super) enum Body {
    Root(Signed<Root>),
    Targets(Signed<Targets>),
}

/// One metadata file of the ceremony (pending or published).
#[derive(Debug, Clone)]
pub(super) struct Doc {
    pub role: OfflineRole,
    /// `pending/1.root.json`, `published/2.root.json`, or a bare file name.
    pub label: String,
    pub path: PathBuf,
    pub version: u64,
    pub expires: Time,
    /// Canonical bytes of `signed` as read: what signatures cover.
    pub payload: Vec<u8>,
    /// The file as read (for the checks tufa-tuf runs on whole files).
    pub bytes: Vec<u8>,
    pub body: Body,
}

impl Doc {
    pub fn load(role: OfflineRole, label: String, path: PathBuf, expected_version: u64) -> Result<Self> {
        let bytes = fsutil::read_limited(&path, MAX_METADATA)?;
        let (version, expires, payload, body) = match role {
            OfflineRole::Root => {
                let p: ParsedMetadata<Root> = Signed::from_bytes(&label, &bytes)?;
                let s = &p.metadata.signed;
                (s.version, s.expires, p.payload, Body::Root(p.metadata))
            }
            OfflineRole::Targets | OfflineRole::Bins => {
                let p: ParsedMetadata<Targets> = Signed::from_bytes(&label, &bytes)?;
                let s = &p.metadata.signed;
                (s.version, s.expires, p.payload, Body::Targets(p.metadata))
            }
        };
        if version != expected_version {
            return Err(CeremonyError::Metadata {
                file: label,
                reason: format!("the file name says version {expected_version}, the metadata says {version}"),
            });
        }
        Ok(Self {
            role,
            label,
            path,
            version,
            expires,
            payload,
            bytes,
            body,
        })
    }

    pub fn signatures(&self) -> &[Signature] {
        match &self.body {
            Body::Root(s) => &s.signatures,
            Body::Targets(s) => &s.signatures,
        }
    }

    pub fn root(&self) -> Option<&Root> {
        match &self.body {
            Body::Root(s) => Some(&s.signed),
            Body::Targets(_) => None,
        }
    }

    pub fn targets(&self) -> Option<&Targets> {
        match &self.body {
            Body::Targets(s) => Some(&s.signed),
            Body::Root(_) => None,
        }
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(match &self.body {
            Body::Root(s) => s.to_bytes()?,
            Body::Targets(s) => s.to_bytes()?,
        })
    }

    /// The sha256 of the canonical signed bytes: what key holders read aloud.
    pub fn payload_sha256(&self) -> String {
        hex::encode(sha2::Sha256::digest(&self.payload))
    }

    /// `root v2 (`pending/2.root.json`)`.
    pub fn what(&self) -> String {
        format!("{} v{} (`{}`)", self.role, self.version, self.label)
    }

    /// Adds a signature, refusing a file whose typed model would not re-serialise to the bytes
    /// that were signed.
    pub fn push_signature(&mut self, sig: Signature) -> Result<()> {
        match &mut self.body {
            Body::Root(s) => {
                check_payload(&self.label, &s.signed_bytes()?, &self.payload)?;
                s.signatures.push(sig);
            }
            Body::Targets(s) => {
                check_payload(&self.label, &s.signed_bytes()?, &self.payload)?;
                s.signatures.push(sig);
            }
        }
        Ok(())
    }
}

/// The signed bytes of the typed model must equal the bytes as read: a file with fields tufa
/// does not know would lose them on re-writing, breaking every signature.
fn check_payload(file: &str, reserialised: &[u8], payload: &[u8]) -> Result<()> {
    if reserialised != payload {
        return Err(CeremonyError::Metadata {
            file: file.to_owned(),
            reason: "contains fields tufa-ceremony does not know; refusing to re-write it".into(),
        });
    }
    Ok(())
}

/// Metadata files by role: (version, label for messages, path), ascending by version.
pub(super) type Scanned = BTreeMap<OfflineRole, Vec<(u64, String, PathBuf)>>;

/// Metadata files in `dir`, by role, ascending by version. Hidden files (temporary writes)
/// are skipped; anything else unexpected is an error.
pub(super) fn scan(dir: &Path, label_prefix: &str) -> Result<Scanned> {
    let mut out: Scanned = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(CeremonyError::io(dir))?;
    for entry in entries {
        let entry = entry.map_err(CeremonyError::io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Some((role, version)) = parse_file_name(&name) else {
            return Err(CeremonyError::Metadata {
                file: format!("{label_prefix}{name}"),
                reason: "unexpected file (expected N.root.json, N.targets.json or N.bins.json); move it out of the directory".into(),
            });
        };
        out.entry(role)
            .or_default()
            .push((version, format!("{label_prefix}{name}"), entry.path()));
    }
    for files in out.values_mut() {
        files.sort();
    }
    Ok(out)
}
