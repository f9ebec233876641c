//! `status`: each pending file's signatures and thresholds.

use std::collections::BTreeSet;
use std::fmt;

use jiff::Timestamp as Time;
use tufa_tuf::{KeyId, format_expires};

use super::evaluate::{Evaluation, evaluate};
use super::graph::expiry_warning;
use super::{Ceremony, Holders};
use crate::error::Result;
use crate::types::OfflineRole;

/// Status of one pending file.
#[derive(Debug, Clone)]
pub struct PendingStatus {
    pub file: String,
    pub role: OfflineRole,
    pub version: u64,
    pub expires: Time,
    /// The sha256 of the canonical signed bytes (what `sign` shows and holders read aloud).
    pub payload_sha256: String,
    pub evaluations: Vec<Evaluation>,
    /// Signatures by keys no requirement lists.
    pub strays: Vec<KeyId>,
}

impl PendingStatus {
    pub fn ready(&self) -> bool {
        self.evaluations.iter().all(|e| e.met)
    }
}

/// `status`: every pending file and its thresholds.
#[derive(Debug, Clone)]
pub struct StatusReport {
    pub pending: Vec<PendingStatus>,
    pub published: Vec<(OfflineRole, u64, Time)>,
    pub holders: Holders,
    pub warnings: Vec<String>,
}

impl StatusReport {
    /// Every pending file meets every threshold, and there is something pending.
    pub fn ready(&self) -> bool {
        !self.pending.is_empty() && self.thresholds_met()
    }

    /// No pending file is short of signatures (true when nothing is pending): what the exit
    /// code of `status` reports.
    pub fn thresholds_met(&self) -> bool {
        self.pending.iter().all(PendingStatus::ready)
    }
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.published.is_empty() {
            writeln!(f, "published: nothing yet")?;
        } else {
            let list: Vec<String> = self
                .published
                .iter()
                .map(|(r, v, e)| format!("{r} v{v} (expires {})", format_expires(*e)))
                .collect();
            writeln!(f, "published: {}", list.join(", "))?;
        }
        if self.pending.is_empty() {
            return write!(f, "pending: nothing");
        }
        for p in &self.pending {
            writeln!(
                f,
                "{}: {} v{}, expires {}, payload sha256 {}",
                p.file,
                p.role,
                p.version,
                format_expires(p.expires),
                p.payload_sha256
            )?;
            for e in &p.evaluations {
                writeln!(
                    f,
                    "  {}: {} of {} required signature(s) — {}",
                    e.label,
                    e.valid(),
                    e.threshold,
                    if e.met {
                        "threshold met".to_owned()
                    } else {
                        format!("threshold NOT met, {} more needed", e.needed())
                    }
                )?;
                // One list in holder order, each key with its state.
                let mut rows: Vec<(KeyId, &str)> = Vec::new();
                for (state, ids) in [
                    ("signed ", &e.signed),
                    ("INVALID", &e.invalid),
                    ("missing", &e.missing),
                    ("SAME KEY (counted once)", &e.same_key),
                ] {
                    rows.extend(ids.iter().map(|id| (*id, state)));
                }
                let order = self.holders.sorted(rows.iter().map(|(id, _)| *id));
                for id in order {
                    for (_, state) in rows.iter().filter(|(k, _)| *k == id) {
                        writeln!(f, "    {state}  {:<20} {id}", self.holders.name(&id))?;
                    }
                }
            }
            for id in &p.strays {
                writeln!(
                    f,
                    "  ignored: signature by {} {id}, a key not authorised for this file",
                    self.holders.name(id)
                )?;
            }
        }
        if self.thresholds_met() {
            write!(f, "all thresholds met: ready to publish")
        } else {
            write!(f, "not ready to publish: thresholds unmet")
        }
    }
}

impl Ceremony {
    /// `status`: signatures present and thresholds per pending file.
    pub fn status(&self, now: Time) -> Result<StatusReport> {
        let state = self.load()?;
        let holders = &self.config.holders;
        let mut pending = Vec::new();
        let mut warnings = Vec::new();
        for doc in state.pending.values() {
            let reqs = self.requirements(&state, doc)?;
            let evaluations: Vec<Evaluation> = reqs.iter().map(|r| evaluate(doc, r, holders)).collect();
            let listed: BTreeSet<KeyId> = reqs.iter().flat_map(|r| r.role_keys.keyids.clone()).collect();
            let strays = doc
                .signatures()
                .iter()
                .map(|s| s.keyid)
                .filter(|k| !listed.contains(k))
                .collect();
            pending.push(PendingStatus {
                file: doc.label.clone(),
                role: doc.role,
                version: doc.version,
                expires: doc.expires,
                payload_sha256: doc.payload_sha256(),
                evaluations,
                strays,
            });
        }
        let mut published = Vec::new();
        for role in OfflineRole::ALL {
            if let Some(d) = state.published(role) {
                published.push((role, d.version, d.expires));
                if !state.pending.contains_key(&role) {
                    warnings.extend(expiry_warning(d, now));
                }
            }
        }
        Ok(StatusReport {
            pending,
            published,
            holders: holders.clone(),
            warnings,
        })
    }
}
