//! How root, targets and bins fit together: the root rotation check, the targets → bins →
//! online key delegations, and expiry. Shared by `publish` (the roles as they will stand) and
//! `verify` (the roles as published).

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp as Time;
use tufa_tuf::{BinLayout, Key, KeyId, RoleKeys, RoleName, Targets, format_expires, verify_payload};

use super::doc::Doc;
use crate::error::{CeremonyError, Result};

/// Offline roles expiring within this many days are flagged by `status` and `verify`.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The root rotation check the mirror and its verifier run too ([`tufa_tuf::verify_next_root`]):
/// `doc` continues `previous` (signed by its threshold and its own, version and file name the
/// next one); a first root is signed by its own threshold.
pub(super) fn root_continues(previous: Option<&Doc>, doc: &Doc) -> std::result::Result<(), String> {
    let result = match previous.and_then(Doc::root) {
        Some(old) => tufa_tuf::verify_next_root(old, &doc.label, &doc.bytes),
        None => tufa_tuf::verify_trusted_root(&doc.label, &doc.bytes),
    };
    result.map(drop).map_err(|e| format!("{}: {e}", doc.label))
}

/// The keys listed for a role, looked up in the key map of the metadata (`what` names it).
pub(super) fn keys_of(keys: &BTreeMap<KeyId, Key>, ids: &[KeyId], what: &str) -> Result<Vec<Key>> {
    ids.iter()
        .map(|id| {
            keys.get(id).cloned().ok_or_else(|| CeremonyError::Metadata {
                file: what.to_owned(),
                reason: format!("key `{id}` is listed for a role but not among the keys"),
            })
        })
        .collect()
}

/// The `bins` delegation of targets: its keys and threshold.
pub(super) fn bins_delegation(targets: &Targets) -> Option<(RoleKeys, BTreeMap<KeyId, Key>)> {
    let d = targets.delegations.as_ref()?;
    let role = d
        .roles
        .as_ref()?
        .iter()
        .find(|r| r.name.as_str() == RoleName::BINS)?;
    Some((role.role_keys(), d.keys.clone()))
}

/// The succinct hashed-bin delegation of bins: the online key(s) and the layout.
pub(super) fn online_delegation(bins: &Targets) -> Option<(RoleKeys, BTreeMap<KeyId, Key>, BinLayout)> {
    let d = bins.delegations.as_ref()?;
    let s = d.succinct_roles.as_ref()?;
    Some((s.role_keys(), d.keys.clone(), s.layout().ok()?))
}

pub(super) fn keyset(ids: &[KeyId]) -> BTreeSet<KeyId> {
    ids.iter().copied().collect()
}

pub(super) fn expiry_warning(doc: &Doc, now: Time) -> Option<String> {
    let left = doc.expires.as_second() - now.as_second();
    (left > 0 && left < EXPIRY_WARNING_DAYS * 86_400).then(|| {
        format!(
            "{} expires {} (in {} day(s)): re-sign it",
            doc.what(),
            format_expires(doc.expires),
            left / 86_400
        )
    })
}

/// Checks root → targets → bins → online key, and expiry, for the roles as they stand (or will
/// stand after a publish). Returns problems, one line each.
pub(super) fn check_graph(
    root: Option<&Doc>,
    targets: Option<&Doc>,
    bins: Option<&Doc>,
    now: Time,
    holder: impl Fn(&KeyId) -> String,
) -> Vec<String> {
    let mut problems = Vec::new();
    let (Some(root_doc), Some(targets_doc), Some(bins_doc)) = (root, targets, bins) else {
        for (role, d) in [("root", root), ("targets", targets), ("bins", bins)] {
            if d.is_none() {
                problems.push(format!(
                    "no {role} metadata: root, targets and bins must all exist"
                ));
            }
        }
        return problems;
    };
    let (Some(root), Some(t), Some(b)) = (root_doc.root(), targets_doc.targets(), bins_doc.targets()) else {
        problems.push("metadata of the wrong type".into());
        return problems;
    };
    for d in [root_doc, targets_doc, bins_doc] {
        if let Err(e) = tufa_tuf::check_expiry(d.role.name(), d.version, d.expires, now) {
            problems.push(format!("{} ({})", e, d.label));
        }
    }
    // targets signed by the root's targets keys.
    match root.role_keys(RoleName::TARGETS) {
        Ok(rk) => {
            if let Err(e) = verify_payload(
                RoleName::TARGETS,
                t.version,
                &targets_doc.payload,
                targets_doc.signatures(),
                &root.keys,
                rk,
            ) {
                problems.push(format!(
                    "{} does not meet the targets threshold of root v{}: {e}; create and sign the next targets with `resign targets`",
                    targets_doc.label, root.version
                ));
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    // bins signed by the keys targets delegates to.
    match bins_delegation(t) {
        Some((rk, keys)) => {
            if let Err(e) = verify_payload(
                RoleName::BINS,
                b.version,
                &bins_doc.payload,
                bins_doc.signatures(),
                &keys,
                &rk,
            ) {
                problems.push(format!(
                    "{} does not meet the bins threshold of targets v{}: {e}; create and sign the next bins with `resign bins`",
                    bins_doc.label, t.version
                ));
            }
        }
        None => problems.push(format!("{} does not delegate to `bins`", targets_doc.label)),
    }
    // One online key: snapshot, timestamp and the hashed bins.
    let snap = root.role_keys(RoleName::SNAPSHOT).map(|r| keyset(&r.keyids));
    let ts = root.role_keys(RoleName::TIMESTAMP).map(|r| keyset(&r.keyids));
    match (snap, ts, online_delegation(b)) {
        (Ok(snap), Ok(ts), Some((bins_rk, _, _))) => {
            let bin_keys = keyset(&bins_rk.keyids);
            let names = |s: &BTreeSet<KeyId>| s.iter().map(&holder).collect::<Vec<_>>().join(", ");
            if snap != ts || snap != bin_keys {
                problems.push(format!(
                    "the online key differs between root v{} (snapshot: {}; timestamp: {}) and bins v{} (hashed bins: {}); rotate it with `rotate-root --online-key`, which updates both",
                    root.version,
                    names(&snap),
                    names(&ts),
                    b.version,
                    names(&bin_keys)
                ));
            }
        }
        (Err(e), _, _) | (_, Err(e), _) => problems.push(e.to_string()),
        (_, _, None) => problems.push(format!(
            "{} has no succinct hashed-bin delegation",
            bins_doc.label
        )),
    }
    problems
}
