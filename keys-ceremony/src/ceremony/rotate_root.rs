//! `rotate-root`: root v(N+1) from the newest published root, with the changes asked for and
//! a fresh expiry; the targets and bins versions a key change makes necessary.

use std::collections::BTreeSet;

use jiff::Timestamp as Time;
use tufa_tuf::build::{self, RoleKeySet, RootKeys};
use tufa_tuf::{Key, KeyId, RoleName, format_expires};

use super::doc::Doc;
use super::graph::{bins_delegation, keys_of, online_delegation};
use super::keys::check_threshold;
use super::{Ceremony, Report};
use crate::error::{CeremonyError, Result};
use crate::keyfile::PublicKeyFile;
use crate::source::short8;
use crate::types::{ExpiryDays, KeySelector, OfflineRole, Threshold};

/// Options of `rotate-root`. Added keys are recorded in holder order as given.
#[derive(Debug, Clone, Default)]
pub struct RotateRootOptions {
    pub add_root_keys: Vec<PublicKeyFile>,
    pub remove_root_keys: Vec<KeySelector>,
    pub root_threshold: Option<Threshold>,
    pub add_targets_keys: Vec<PublicKeyFile>,
    pub remove_targets_keys: Vec<KeySelector>,
    pub targets_threshold: Option<Threshold>,
    /// A new online key (snapshot, timestamp, and the hashed bins through a new `bins`).
    pub online_key: Option<PublicKeyFile>,
    pub expires_days: Option<ExpiryDays>,
}

impl Ceremony {
    /// `rotate-root`: root v(N+1) from the newest published root with the changes asked for and
    /// a fresh expiry. A new online key also creates the next `bins` (delegating the hashed
    /// bins to it); a change of targets keys also creates the next `targets` (which the new
    /// targets keys must sign).
    pub fn rotate_root(&mut self, opts: &RotateRootOptions, now: Time) -> Result<Report> {
        let state = self.load()?;
        self.ensure_not_pending(&state, OfflineRole::Root)?;
        let old_doc = state
            .latest_root()
            .ok_or_else(|| self.error("no published root to rotate from; publish the first root first"))?;
        let old = old_doc
            .root()
            .ok_or_else(|| self.error(format!("`{}` is not root metadata", old_doc.label)))?
            .clone();
        let label = old_doc.label.clone();
        let role_keys = |name: &str| -> Result<(Vec<Key>, u32)> {
            let rk = old.role_keys(name)?;
            Ok((keys_of(&old.keys, &rk.keyids, &label)?, rk.threshold))
        };
        let (root_keys, root_t) = role_keys(RoleName::ROOT)?;
        let (targets_keys, targets_t) = role_keys(RoleName::TARGETS)?;
        let (snapshot_keys, snapshot_t) = role_keys(RoleName::SNAPSHOT)?;
        let (timestamp_keys, timestamp_t) = role_keys(RoleName::TIMESTAMP)?;
        let version = old.version + 1;

        let (root_keys, root_changed) = self.edit_keys(
            RoleName::ROOT,
            root_keys,
            &opts.add_root_keys,
            &opts.remove_root_keys,
            &format!("the root keys of root v{}", old.version),
        )?;
        let (targets_keys, targets_changed) = self.edit_keys(
            RoleName::TARGETS,
            targets_keys,
            &opts.add_targets_keys,
            &opts.remove_targets_keys,
            &format!("the targets keys of root v{}", old.version),
        )?;
        let new_root_threshold = opts.root_threshold.map_or(root_t, Threshold::get);
        let new_targets_threshold = opts.targets_threshold.map_or(targets_t, Threshold::get);
        check_threshold(
            "root",
            new_root_threshold,
            root_keys.len(),
            &format!(
                "root v{version} would have only those; add keys with --add-root-key or lower --root-threshold"
            ),
            CeremonyError::Keys,
        )?;
        check_threshold(
            "targets",
            new_targets_threshold,
            targets_keys.len(),
            &format!(
                "root v{version} would have only those; add keys with --add-targets-key or lower --targets-threshold"
            ),
            CeremonyError::Keys,
        )?;
        let targets_changed = targets_changed || new_targets_threshold != targets_t;
        let offline: BTreeSet<KeyId> = root_keys.iter().chain(&targets_keys).map(Key::key_id).collect();
        let (snapshot, timestamp) = match &opts.online_key {
            Some(k) => {
                if offline.contains(&k.keyid) {
                    return Err(CeremonyError::Keys(format!(
                        "the new online key `{}` ({}) is also an offline key of root v{version}; it must be separate",
                        short8(&k.keyid),
                        k.describe()
                    )));
                }
                if snapshot_keys.iter().any(|s| s.key_id() == k.keyid) {
                    return Err(CeremonyError::Keys(format!(
                        "`{}` ({}) is already the online key; bring the mirror's new online key (`tufa online-key generate --public-out FILE`)",
                        short8(&k.keyid),
                        k.describe()
                    )));
                }
                self.config.holders.insert(k.keyid, &k.holder);
                (
                    RoleKeySet::single(k.key.clone()),
                    RoleKeySet::single(k.key.clone()),
                )
            }
            None => (
                RoleKeySet::new(snapshot_keys, snapshot_t),
                RoleKeySet::new(timestamp_keys, timestamp_t),
            ),
        };
        let keys = RootKeys {
            root: RoleKeySet::new(root_keys, new_root_threshold),
            targets: RoleKeySet::new(targets_keys, new_targets_threshold),
            snapshot,
            timestamp,
        };
        let days = opts.expires_days.unwrap_or(self.config.expires_days);
        let expires = days.expires_from(now)?;
        let root = build::new_root(&keys, version, expires)?;

        // Dependent roles, checked before anything is written.
        let mut new_targets = None;
        if targets_changed && !state.pending.contains_key(&OfflineRole::Targets) {
            let t =
                state.targets.as_ref().and_then(Doc::targets).ok_or_else(|| {
                    self.error("no published targets to carry over to the new targets keys")
                })?;
            let (bins_rk, bins_keys) = bins_delegation(t)
                .ok_or_else(|| self.error("the published targets does not delegate to `bins`"))?;
            let set = RoleKeySet::new(
                keys_of(&bins_keys, &bins_rk.keyids, "targets")?,
                bins_rk.threshold,
            );
            new_targets = Some(build::new_targets_delegating_to_bins(
                &set,
                t.version + 1,
                expires,
            )?);
        }
        let mut new_bins = None;
        if let Some(k) = &opts.online_key {
            self.ensure_not_pending(&state, OfflineRole::Bins)?;
            let b = state
                .bins
                .as_ref()
                .and_then(Doc::targets)
                .ok_or_else(|| self.error("no published bins to carry over to the new online key"))?;
            let (_, _, layout) = online_delegation(b)
                .ok_or_else(|| self.error("the published bins has no succinct hashed-bin delegation"))?;
            new_bins = Some(build::new_bins_delegator(
                &layout,
                &RoleKeySet::single(k.key.clone()),
                b.version + 1,
                expires,
            )?);
        }

        let mut report = Report::default();
        let changes = [
            root_changed.then_some("root keys"),
            (new_root_threshold != root_t).then_some("root threshold"),
            targets_changed.then_some("targets keys"),
            opts.online_key.is_some().then_some("online key"),
        ];
        let changes: Vec<&str> = changes.into_iter().flatten().collect();
        let file = self.write_pending(OfflineRole::Root, version, root)?;
        report.line(format!(
            "created {file}: root v{version} ({}), expires {}",
            if changes.is_empty() {
                "same keys, fresh expiry".to_owned()
            } else {
                format!("changes: {}", changes.join(", "))
            },
            format_expires(expires)
        ));
        report.line(format!(
            "it needs {} signature(s) from the v{} root keys and {} from the v{version} root keys",
            root_t, old.version, new_root_threshold
        ));
        if let Some(t) = new_targets {
            let v = t.version;
            let file = self.write_pending(OfflineRole::Targets, v, t)?;
            report.line(format!(
                "created {file}: targets v{v}, to be signed by the new targets keys"
            ));
        }
        if let Some(b) = new_bins {
            let v = b.version;
            let file = self.write_pending(OfflineRole::Bins, v, b)?;
            report.line(format!(
                "created {file}: bins v{v} delegating the hashed bins to the new online key"
            ));
        }
        self.save_config()?;
        if new_root_threshold < 2 {
            report.warn(
                "root threshold is 1: production roots need at least 2 signatures from separate people",
            );
        }
        Ok(report)
    }
}
