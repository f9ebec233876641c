//! `sign`: one key holder adds one signature to a pending file, in two steps.
//!
//! 1. [`Ceremony::prepare_sign`] loads the file, checks that the key may sign it (for a key
//!    file, from its public part, before any secret is typed) and returns a [`SignPlan`]: the
//!    summary the holder checks (file, role, version, expiry, payload sha256, signatures so
//!    far, changes since the previous published version) and the confirmation question.
//! 2. [`SignPlan::sign`], once the holder confirmed, unlocks the key (passphrase or PIN), signs,
//!    and writes the file, refusing if it changed since the summary was made.

use std::fmt;

use jiff::Timestamp as Time;
use tufa_tuf::{KeyId, Signature, TufError, format_expires};

use super::changes::changes;
use super::doc::Doc;
use super::evaluate::{Evaluation, Requirement, evaluate};
use super::{Ceremony, Holders, Report};
use crate::error::{CeremonyError, Result};
use crate::fsutil;
use crate::source::{KeySource, short};
use crate::types::{OfflineRole, PendingSelector};

/// The key that will sign, as known before unlocking it.
#[derive(Debug, Clone)]
enum PlannedKey {
    /// A key file: its public key is in the clear, authorisation already checked.
    Known {
        keyid: KeyId,
        holder: Option<String>,
        source: String,
    },
    /// A token key: known only after logging in.
    Token(String),
}

/// What `sign` is about to do, for the holder to check before confirming.
#[derive(Debug, Clone)]
pub struct SignPlan {
    doc: Doc,
    reqs: Vec<Requirement>,
    key: PlannedKey,
    evaluations: Vec<Evaluation>,
    /// The previous published version and what changed since, `None` for a first version.
    changes: Option<(u64, Vec<String>)>,
    holders: Holders,
    /// Existing signatures that no longer verify, and the like.
    pub warnings: Vec<String>,
}

impl SignPlan {
    /// `pending/2.root.json`.
    pub fn file(&self) -> &str {
        &self.doc.label
    }

    pub fn role(&self) -> OfflineRole {
        self.doc.role
    }

    pub fn version(&self) -> u64 {
        self.doc.version
    }

    pub fn expires(&self) -> Time {
        self.doc.expires
    }

    /// The sha256 of the canonical signed bytes (the value `status` prints).
    pub fn payload_sha256(&self) -> String {
        self.doc.payload_sha256()
    }

    /// The thresholds and who signed so far, before this signature.
    pub fn evaluations(&self) -> &[Evaluation] {
        &self.evaluations
    }

    /// The previous published version and the changes since it; `None` for a first version.
    pub fn changes(&self) -> Option<(u64, &[String])> {
        self.changes.as_ref().map(|(v, c)| (*v, c.as_slice()))
    }

    /// `Sign root v2 with key 0123456789abcdef (alice)? Type "yes": `
    pub fn question(&self) -> String {
        let key = match &self.key {
            PlannedKey::Known { keyid, holder, .. } => {
                let holder = self
                    .holders
                    .get(keyid)
                    .map(str::to_owned)
                    .or_else(|| holder.clone());
                match holder {
                    Some(h) => format!("key {} ({h})", short(keyid)),
                    None => format!("key {}", short(keyid)),
                }
            }
            PlannedKey::Token(t) => t.clone(),
        };
        format!(
            "Sign {} v{} with {key}? Type \"yes\": ",
            self.doc.role, self.doc.version
        )
    }

    /// Unlocks the key (asking for the passphrase or PIN), signs, and writes the file. Call it
    /// once the holder confirmed the summary.
    pub fn sign(self, ceremony: &Ceremony, source: &KeySource) -> Result<Report> {
        let state = ceremony.load()?;
        let current = ceremony.find_pending(
            &state,
            PendingSelector::File {
                role: self.doc.role,
                version: self.doc.version,
            },
        )?;
        if current.bytes != self.doc.bytes {
            return Err(ceremony.error(format!(
                "`{}` changed since its summary was shown (another signature?); run sign again",
                self.doc.label
            )));
        }
        let signer = source.open()?;
        let keyid = signer.keyid();
        match &self.key {
            PlannedKey::Known { keyid: planned, .. } if *planned != keyid => {
                return Err(CeremonyError::Keys(format!(
                    "{}: the unlocked key `{keyid}` differs from the public key `{planned}` the file advertises",
                    source.describe()
                )));
            }
            PlannedKey::Known { .. } => {}
            PlannedKey::Token(_) => {
                ceremony.authorise(&self.doc, &self.reqs, &keyid, None)?;
            }
        }
        let holder = holder_suffix(&self.holders, &keyid, None);
        let raw = signer.sign(&self.doc.payload)?;
        if !signer.key().verify(&keyid, &self.doc.payload, &raw)? {
            return Err(CeremonyError::Tuf(TufError::Signing {
                keyid: keyid.to_string(),
                reason: "the new signature does not verify".into(),
            }));
        }
        let mut updated = self.doc.clone();
        updated.push_signature(Signature {
            keyid,
            sig: hex::encode(&raw),
        })?;
        fsutil::write_atomic(&self.doc.path, &updated.to_bytes()?)?;
        let mut report = Report::default();
        report.line(format!(
            "added the signature of key {keyid}{holder} to {}",
            self.doc.label
        ));
        for r in &self.reqs {
            let e = evaluate(&updated, r, &self.holders);
            let names: Vec<String> = e.missing.iter().map(|k| self.holders.name(k)).collect();
            report.line(format!(
                "{}: {} of {} required signature(s){}",
                e.label,
                e.valid(),
                e.threshold,
                if e.met {
                    " — threshold met".to_owned()
                } else if names.is_empty() {
                    String::new()
                } else {
                    format!(" — not yet signed by {}", names.join(", "))
                }
            ));
        }
        Ok(report)
    }
}

impl fmt::Display for SignPlan {
    /// The summary shown before the confirmation question.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.doc;
        writeln!(f, "file:           {}", d.label)?;
        writeln!(f, "role:           {}", d.role)?;
        writeln!(f, "version:        {}", d.version)?;
        writeln!(f, "expires:        {}", format_expires(d.expires))?;
        writeln!(f, "payload sha256: {}", d.payload_sha256())?;
        match &self.key {
            PlannedKey::Known { keyid, source, .. } => {
                writeln!(f, "signing key:    {} ({source})", self.holders.who(keyid))?;
            }
            PlannedKey::Token(t) => {
                writeln!(
                    f,
                    "signing key:    {t} (its authorisation is checked after the PIN)"
                )?;
            }
        }
        for (i, e) in self.evaluations.iter().enumerate() {
            writeln!(
                f,
                "{}{}: {} of {} — {}",
                if i == 0 {
                    "signatures:     "
                } else {
                    "                "
                },
                e.label,
                e.valid(),
                e.threshold,
                e.who_signed(&self.holders)
            )?;
        }
        match &self.changes {
            None => write!(
                f,
                "changes:        first version (no {} published before it)",
                d.role
            ),
            Some((v, list)) if list.is_empty() => {
                write!(f, "changes since v{v}: none but the version")
            }
            Some((v, list)) => {
                write!(f, "changes since v{v}:")?;
                for c in list {
                    write!(f, "\n  - {c}")?;
                }
                Ok(())
            }
        }
    }
}

/// ` (alice)`: the holder recorded in the ceremony, else the key file's, else nothing.
fn holder_suffix(holders: &Holders, keyid: &KeyId, from_file: Option<&str>) -> String {
    match holders.get(keyid).or(from_file) {
        Some(h) => format!(" ({h})"),
        None => String::new(),
    }
}

impl Ceremony {
    /// Loads the pending file `which` and checks what can be checked before a secret is typed;
    /// returns the summary and question for the holder. Writes nothing.
    pub fn prepare_sign(&self, which: PendingSelector, source: &KeySource) -> Result<SignPlan> {
        let state = self.load()?;
        let doc = self.find_pending(&state, which)?.clone();
        let reqs = self.requirements(&state, &doc)?;
        let holders = self.config.holders.clone();
        let key = match source.public_part()? {
            Some(public) => {
                let keyid = public.key.key_id();
                self.authorise(&doc, &reqs, &keyid, public.holder.as_deref())?;
                PlannedKey::Known {
                    keyid,
                    holder: public.holder,
                    source: source.describe(),
                }
            }
            None => PlannedKey::Token(source.describe()),
        };
        let evaluations: Vec<Evaluation> = reqs.iter().map(|r| evaluate(&doc, r, &holders)).collect();
        let mut warnings = Vec::new();
        for e in &evaluations {
            if !e.invalid.is_empty() {
                warnings.push(format!(
                    "{}: {} existing signature(s) do not verify over the current content",
                    doc.label,
                    e.invalid.len()
                ));
            }
        }
        let changes = state
            .published(doc.role)
            .map(|prev| (prev.version, changes(prev, &doc, &holders)));
        Ok(SignPlan {
            doc,
            reqs,
            key,
            evaluations,
            changes,
            holders,
            warnings,
        })
    }

    /// `sign` without a confirmation step (library use: the caller has confirmed): prepares
    /// and signs.
    pub fn sign(&self, which: PendingSelector, source: &KeySource) -> Result<Report> {
        self.prepare_sign(which, source)?.sign(self, source)
    }

    /// Refuses a key that may not sign `doc`, or that signed it already.
    fn authorise(
        &self,
        doc: &Doc,
        reqs: &[Requirement],
        keyid: &KeyId,
        from_file: Option<&str>,
    ) -> Result<()> {
        let holder = holder_suffix(&self.config.holders, keyid, from_file);
        if !reqs.iter().any(|r| r.role_keys.keyids.contains(keyid)) {
            let labels: Vec<&str> = reqs.iter().map(|r| r.label.as_str()).collect();
            return Err(CeremonyError::NotAuthorised {
                file: doc.label.clone(),
                keyid: keyid.to_string(),
                holder,
                reason: format!("only {} may sign it", labels.join(" or ")),
            });
        }
        if doc.signatures().iter().any(|s| &s.keyid == keyid) {
            return Err(CeremonyError::AlreadySigned {
                file: doc.label.clone(),
                keyid: keyid.to_string(),
                holder,
            });
        }
        Ok(())
    }
}
