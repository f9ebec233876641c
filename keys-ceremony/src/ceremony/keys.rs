//! Key lists of a role: checks that name the offending key, and the edits rotations make.

use std::collections::BTreeSet;

use tufa_tuf::{Key, KeyId};

use super::Ceremony;
use crate::error::{CeremonyError, Result};
use crate::keyfile::PublicKeyFile;
use crate::source::short8;
use crate::types::KeySelector;

/// Refuses a key listed twice for `role`, naming it: the same key id, or the same public key
/// under two key ids (thresholds count keys, so one holder would count twice).
pub(super) fn check_distinct(role: &str, keys: &[PublicKeyFile]) -> Result<()> {
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[..i] {
            if a.keyid == b.keyid {
                let from = match (&a.origin, &b.origin) {
                    (Some(x), Some(y)) if x != y => {
                        format!(", from `{}` and `{}`", y.display(), x.display())
                    }
                    (Some(x), _) | (None, Some(x)) => format!(", from `{}`", x.display()),
                    (None, None) => String::new(),
                };
                return Err(CeremonyError::Keys(format!(
                    "key `{}` (holder `{}`{from}) is listed twice for role `{role}`; give each key once",
                    short8(&a.keyid),
                    b.holder
                )));
            }
            if a.key.identity() == b.key.identity() {
                return Err(CeremonyError::Keys(format!(
                    "key `{}` ({}) is the same public key as key `{}` ({}), listed twice for role `{role}` under two key ids; give each key once",
                    short8(&a.keyid),
                    a.describe(),
                    short8(&b.keyid),
                    b.describe()
                )));
            }
        }
    }
    Ok(())
}

impl Ceremony {
    /// Resolves a key selector among `candidates` (`what` names them: `the root keys of root v2`).
    pub(super) fn resolve_key(
        &self,
        selector: &KeySelector,
        candidates: &[KeyId],
        what: &str,
    ) -> Result<KeyId> {
        let holders = &self.config.holders;
        let by_holder = |name: &str| -> Vec<KeyId> {
            candidates
                .iter()
                .copied()
                .filter(|k| holders.get(k) == Some(name))
                .collect()
        };
        let found: Vec<KeyId> = match selector {
            KeySelector::KeyId(id) => candidates.iter().copied().filter(|k| k == id).collect(),
            KeySelector::KeyIdPrefix(prefix) => {
                let by_prefix: Vec<KeyId> = candidates
                    .iter()
                    .copied()
                    .filter(|k| k.to_hex().starts_with(prefix.as_str()))
                    .collect();
                if by_prefix.is_empty() {
                    by_holder(prefix)
                } else {
                    by_prefix
                }
            }
            KeySelector::Holder(name) => by_holder(name),
            KeySelector::PublicKeyFile(path) => {
                let id = PublicKeyFile::read(path)?.keyid;
                candidates.iter().copied().filter(|k| *k == id).collect()
            }
        };
        match found.as_slice() {
            [one] => Ok(*one),
            [] => {
                let list: Vec<String> = holders
                    .sorted(candidates.iter().copied())
                    .iter()
                    .map(|k| holders.who(k))
                    .collect();
                Err(CeremonyError::Keys(format!(
                    "no key `{selector}` among {what} ({}); name a key by its holder, its key id (or 8+ hex digits of it), or its public key file",
                    list.join(", ")
                )))
            }
            _ => Err(CeremonyError::Keys(format!(
                "`{selector}` matches several of {what}; give the full key id"
            ))),
        }
    }

    /// Applies removals, then additions, to the key list of `role` (`what` names the current
    /// list in messages). New keys' holders are recorded in holder order. Returns the new list
    /// and whether it changed.
    pub(super) fn edit_keys(
        &mut self,
        role: &str,
        current: Vec<Key>,
        add: &[PublicKeyFile],
        remove: &[KeySelector],
        what: &str,
    ) -> Result<(Vec<Key>, bool)> {
        let ids: Vec<KeyId> = current.iter().map(Key::key_id).collect();
        let mut drop = BTreeSet::new();
        for r in remove {
            drop.insert(self.resolve_key(r, &ids, what)?);
        }
        check_distinct(role, add)?;
        let mut keys: Vec<Key> = current
            .into_iter()
            .filter(|k| !drop.contains(&k.key_id()))
            .collect();
        for a in add {
            if let Some(existing) = keys
                .iter()
                .find(|k| k.key_id() == a.keyid || k.identity() == a.key.identity())
            {
                let same = if existing.key_id() == a.keyid {
                    String::new()
                } else {
                    format!(
                        " (the same public key as `{}`, {})",
                        short8(&existing.key_id()),
                        self.config.holders.name(&existing.key_id())
                    )
                };
                return Err(CeremonyError::Keys(format!(
                    "key `{}` ({}) is already one of {what}{same}; add only new keys",
                    short8(&a.keyid),
                    a.describe()
                )));
            }
            keys.push(a.key.clone());
            self.config.holders.insert(a.keyid, &a.holder);
        }
        Ok((keys, !drop.is_empty() || !add.is_empty()))
    }
}

/// A threshold must not exceed the number of keys it counts.
pub(super) fn check_threshold(
    role: &str,
    threshold: u32,
    keys: usize,
    fix: &str,
    error: impl FnOnce(String) -> CeremonyError,
) -> Result<()> {
    if threshold as usize > keys {
        return Err(error(format!(
            "{role} threshold {threshold} is more than the {keys} {role} key(s); {fix}"
        )));
    }
    Ok(())
}
