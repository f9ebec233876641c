//! What a pending file changes against the previous published version of its role, for the
//! summary `sign` shows before asking for the holder's confirmation.

use std::collections::BTreeSet;

use tufa_tuf::{KeyId, RoleKeys, RoleName, Root, Targets, format_expires};

use super::Holders;
use super::doc::Doc;
use super::graph::{bins_delegation, keyset};

/// The changes from `previous` (the newest published version of the role) to `doc`, one line
/// each; empty when nothing but the version differs.
pub(super) fn changes(previous: &Doc, doc: &Doc, holders: &Holders) -> Vec<String> {
    let mut out = Vec::new();
    match (previous.root(), doc.root(), previous.targets(), doc.targets()) {
        (Some(old), Some(new), _, _) => root_changes(old, new, holders, &mut out),
        (_, _, Some(old), Some(new)) => targets_changes(old, new, holders, &mut out),
        _ => out.push("the metadata changed type".into()),
    }
    if previous.expires != doc.expires {
        out.push(format!(
            "expires: {} → {}",
            format_expires(previous.expires),
            format_expires(doc.expires)
        ));
    }
    out
}

fn names(holders: &Holders, ids: &BTreeSet<KeyId>) -> String {
    let list: Vec<String> = holders
        .sorted(ids.iter().copied())
        .iter()
        .map(|k| holders.who(k))
        .collect();
    if list.is_empty() {
        "(none)".into()
    } else {
        list.join(", ")
    }
}

/// Keys added and removed, and the threshold, of one role.
fn key_changes(what: &str, old: &RoleKeys, new: &RoleKeys, holders: &Holders, out: &mut Vec<String>) {
    let (old_ids, new_ids) = (keyset(&old.keyids), keyset(&new.keyids));
    for id in holders.sorted(new_ids.difference(&old_ids).copied()) {
        out.push(format!("{what} keys: added {}", holders.who(&id)));
    }
    for id in holders.sorted(old_ids.difference(&new_ids).copied()) {
        out.push(format!("{what} keys: removed {}", holders.who(&id)));
    }
    if old.threshold != new.threshold {
        out.push(format!("{what} threshold: {} → {}", old.threshold, new.threshold));
    }
}

fn root_changes(old: &Root, new: &Root, holders: &Holders, out: &mut Vec<String>) {
    let ids = |r: &Root, role: &str| r.roles.get(role).map(|k| keyset(&k.keyids));
    // snapshot and timestamp share the online key: one line when it is replaced for both.
    let online = |r: &Root| {
        let s = ids(r, RoleName::SNAPSHOT);
        (s == ids(r, RoleName::TIMESTAMP)).then_some(s).flatten()
    };
    let shared_online = match (online(old), online(new)) {
        (Some(a), Some(b)) => {
            if a != b {
                out.push(format!(
                    "online key (snapshot and timestamp): {} → {}",
                    names(holders, &a),
                    names(holders, &b)
                ));
            }
            true
        }
        _ => false,
    };
    for role in RoleName::TOP_LEVEL {
        match (old.roles.get(role), new.roles.get(role)) {
            (Some(a), Some(b)) => {
                if shared_online && (role == RoleName::SNAPSHOT || role == RoleName::TIMESTAMP) {
                    if a.threshold != b.threshold {
                        out.push(format!("{role} threshold: {} → {}", a.threshold, b.threshold));
                    }
                } else {
                    key_changes(role, a, b, holders, out);
                }
            }
            (Some(_), None) => out.push(format!("{role} role removed")),
            (None, Some(b)) => out.push(format!(
                "{role} role added (keys {})",
                names(holders, &keyset(&b.keyids))
            )),
            (None, None) => {}
        }
    }
    if old.consistent_snapshot != new.consistent_snapshot {
        out.push(format!(
            "consistent_snapshot: {} → {}",
            old.consistent_snapshot, new.consistent_snapshot
        ));
    }
    if old.spec_version != new.spec_version {
        out.push(format!(
            "spec_version: {} → {}",
            old.spec_version, new.spec_version
        ));
    }
}

fn targets_changes(old: &Targets, new: &Targets, holders: &Holders, out: &mut Vec<String>) {
    // targets → bins.
    match (bins_delegation(old), bins_delegation(new)) {
        (Some((a, _)), Some((b, _))) => key_changes("bins", &a, &b, holders, out),
        (Some(_), None) => out.push("delegation to `bins` removed".into()),
        (None, Some((b, _))) => out.push(format!(
            "delegation to `bins` added (keys {})",
            names(holders, &keyset(&b.keyids))
        )),
        (None, None) => {}
    }
    let delegated = |t: &Targets| {
        t.delegations
            .as_ref()
            .and_then(|d| d.roles.clone())
            .unwrap_or_default()
    };
    let (old_roles, new_roles) = (delegated(old), delegated(new));
    for b in &new_roles {
        match old_roles.iter().find(|a| a.name == b.name) {
            Some(a)
                if (&a.paths, &a.path_hash_prefixes, a.terminating)
                    != (&b.paths, &b.path_hash_prefixes, b.terminating) =>
            {
                out.push(format!(
                    "delegation to `{}`: paths {:?} → {:?}, terminating {} → {}",
                    b.name, a.paths, b.paths, a.terminating, b.terminating
                ));
            }
            Some(_) => {}
            None if b.name.as_str() != RoleName::BINS => {
                out.push(format!("delegation to `{}` added", b.name))
            }
            None => {}
        }
    }
    for a in &old_roles {
        if a.name.as_str() != RoleName::BINS && !new_roles.iter().any(|b| b.name == a.name) {
            out.push(format!("delegation to `{}` removed", a.name));
        }
    }
    // bins → the hashed bins (the online key).
    let succinct = |t: &Targets| t.delegations.as_ref().and_then(|d| d.succinct_roles.clone());
    match (succinct(old), succinct(new)) {
        (Some(a), Some(b)) => {
            let (ka, kb) = (keyset(&a.keyids), keyset(&b.keyids));
            if ka != kb {
                out.push(format!(
                    "online key (hashed bins): {} → {}",
                    names(holders, &ka),
                    names(holders, &kb)
                ));
            }
            if a.threshold != b.threshold {
                out.push(format!(
                    "hashed bins threshold: {} → {}",
                    a.threshold, b.threshold
                ));
            }
            if (a.bit_length, &a.name_prefix) != (b.bit_length, &b.name_prefix) {
                out.push(format!(
                    "hashed bins: bit length {} → {}, name prefix `{}` → `{}`",
                    a.bit_length, b.bit_length, a.name_prefix, b.name_prefix
                ));
            }
        }
        (Some(_), None) => out.push("hashed-bin delegation removed".into()),
        (None, Some(b)) => out.push(format!(
            "hashed-bin delegation added (keys {})",
            names(holders, &keyset(&b.keyids))
        )),
        (None, None) => {}
    }
    if old.targets.len() != new.targets.len() || old.targets.keys().ne(new.targets.keys()) {
        out.push(format!(
            "target entries: {} → {}",
            old.targets.len(),
            new.targets.len()
        ));
    }
}
