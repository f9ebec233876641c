//! How a document stands against the keys and threshold it must meet.

use std::collections::{BTreeMap, BTreeSet};

use tufa_tuf::{Key, KeyId, RoleKeys, Signature, verify_payload};

use super::Holders;
use super::doc::Doc;

/// Keys and threshold one document must satisfy, with a name for messages.
#[derive(Debug, Clone)]
pub(super) struct Requirement {
    /// `the v1 root keys`, `the targets keys of root v2`, …
    pub label: String,
    pub keys: BTreeMap<KeyId, Key>,
    pub role_keys: RoleKeys,
}

/// How one document stands against one requirement. Every key list is in holder order.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// `the v1 root keys`, `the targets keys of root v2`, …
    pub label: String,
    pub threshold: u32,
    /// Authorised keys with a valid signature.
    pub signed: Vec<KeyId>,
    /// Authorised keys without a valid signature.
    pub missing: Vec<KeyId>,
    /// Authorised keys whose signature does not verify (the file changed after they signed).
    pub invalid: Vec<KeyId>,
    /// Authorised key ids with a valid signature by a public key already counted under another
    /// id in `signed`: thresholds count keys, not key ids.
    pub same_key: Vec<KeyId>,
    /// What tufa-tuf's verifier says.
    pub met: bool,
}

impl Evaluation {
    /// Valid signatures by distinct authorised keys.
    pub fn valid(&self) -> usize {
        self.signed.len()
    }

    /// Signatures still needed.
    pub fn needed(&self) -> usize {
        (self.threshold as usize).saturating_sub(self.valid())
    }

    /// `signed by alice; not yet signed by bob, carol` (names in holder order).
    pub fn who_signed(&self, holders: &Holders) -> String {
        let names = |ids: &[KeyId]| ids.iter().map(|k| holders.name(k)).collect::<Vec<_>>().join(", ");
        let mut parts = Vec::new();
        if !self.signed.is_empty() {
            parts.push(format!("signed by {}", names(&self.signed)));
        }
        if !self.missing.is_empty() {
            parts.push(format!("not yet signed by {}", names(&self.missing)));
        }
        if !self.invalid.is_empty() {
            parts.push(format!("INVALID signature by {}", names(&self.invalid)));
        }
        if !self.same_key.is_empty() {
            parts.push(format!("same key counted once: {}", names(&self.same_key)));
        }
        parts.join("; ")
    }
}

pub(super) fn evaluate(doc: &Doc, req: &Requirement, holders: &Holders) -> Evaluation {
    let mut signed = Vec::new();
    let mut missing = Vec::new();
    let mut invalid = Vec::new();
    let mut same_key = Vec::new();
    let mut counted = BTreeSet::new();
    let unique: BTreeSet<KeyId> = req.role_keys.keyids.iter().copied().collect();
    for keyid in holders.sorted(unique) {
        let sigs: Vec<&Signature> = doc.signatures().iter().filter(|s| s.keyid == keyid).collect();
        let ok = req.keys.get(&keyid).is_some_and(|key| {
            sigs.iter().any(|s| {
                hex::decode(&s.sig)
                    .ok()
                    .is_some_and(|raw| key.verify(&keyid, &doc.payload, &raw).unwrap_or(false))
            })
        });
        if ok {
            let first_listing = req
                .keys
                .get(&keyid)
                .is_none_or(|key| counted.insert(key.identity()));
            if first_listing {
                signed.push(keyid);
            } else {
                same_key.push(keyid);
            }
        } else if sigs.is_empty() {
            missing.push(keyid);
        } else {
            invalid.push(keyid);
        }
    }
    let met = verify_payload(
        doc.role.name(),
        doc.version,
        &doc.payload,
        doc.signatures(),
        &req.keys,
        &req.role_keys,
    )
    .is_ok();
    Evaluation {
        label: req.label.clone(),
        threshold: req.role_keys.threshold,
        signed,
        missing,
        invalid,
        same_key,
        met,
    }
}
