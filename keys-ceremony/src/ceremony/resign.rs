//! `resign`: the next version of root, targets or bins with a fresh expiry (re-signing before
//! expiry); `resign targets` can also change the keys `bins` is delegated to.

use jiff::Timestamp as Time;
use tufa_tuf::build::{self, RoleKeySet};
use tufa_tuf::format_expires;

use super::doc::Doc;
use super::graph::{bins_delegation, keys_of, online_delegation};
use super::keys::check_threshold;
use super::{Ceremony, Report, RotateRootOptions};
use crate::error::{CeremonyError, Result};
use crate::keyfile::PublicKeyFile;
use crate::types::{ExpiryDays, KeySelector, OfflineRole, Threshold};

/// Options of `resign targets`. Added keys are recorded in holder order as given.
#[derive(Debug, Clone, Default)]
pub struct ResignTargetsOptions {
    pub add_bins_keys: Vec<PublicKeyFile>,
    pub remove_bins_keys: Vec<KeySelector>,
    pub bins_threshold: Option<Threshold>,
    pub expires_days: Option<ExpiryDays>,
}

impl Ceremony {
    /// `resign root`: the next root version with the same keys and a fresh expiry.
    pub fn resign_root(&mut self, expires_days: Option<ExpiryDays>, now: Time) -> Result<Report> {
        self.rotate_root(
            &RotateRootOptions {
                expires_days,
                ..RotateRootOptions::default()
            },
            now,
        )
    }

    /// `resign targets`: the next targets version with a fresh expiry, optionally changing the
    /// keys the `bins` role is delegated to (which also creates the next `bins`, to be signed
    /// by the new bins keys).
    pub fn resign_targets(&mut self, opts: &ResignTargetsOptions, now: Time) -> Result<Report> {
        let state = self.load()?;
        self.ensure_not_pending(&state, OfflineRole::Targets)?;
        let doc = state
            .targets
            .as_ref()
            .ok_or_else(|| self.error("no published targets to re-sign"))?;
        let t = doc
            .targets()
            .ok_or_else(|| self.error(format!("`{}` is not targets metadata", doc.label)))?;
        let (rk, keys) = bins_delegation(t).ok_or_else(|| CeremonyError::Metadata {
            file: doc.label.clone(),
            reason: "does not delegate to `bins`".into(),
        })?;
        let current = keys_of(&keys, &rk.keyids, &doc.label)?;
        let version = t.version + 1;
        let (bins_keys, changed) = self.edit_keys(
            "bins",
            current,
            &opts.add_bins_keys,
            &opts.remove_bins_keys,
            &format!("the bins keys of targets v{}", t.version),
        )?;
        let threshold = opts.bins_threshold.map_or(rk.threshold, Threshold::get);
        check_threshold(
            "bins",
            threshold,
            bins_keys.len(),
            &format!(
                "targets v{version} would have only those; add keys with --add-bins-key or lower --bins-threshold"
            ),
            CeremonyError::Keys,
        )?;
        let changed = changed || threshold != rk.threshold;
        let days = opts.expires_days.unwrap_or(self.config.expires_days);
        let expires = days.expires_from(now)?;
        let new =
            build::new_targets_delegating_to_bins(&RoleKeySet::new(bins_keys, threshold), version, expires)?;
        let mut new_bins = None;
        if changed && !state.pending.contains_key(&OfflineRole::Bins) {
            let b = state
                .bins
                .as_ref()
                .and_then(Doc::targets)
                .ok_or_else(|| self.error("no published bins to carry over to the new bins keys"))?;
            let (online_rk, online_keys, layout) = online_delegation(b)
                .ok_or_else(|| self.error("the published bins has no succinct hashed-bin delegation"))?;
            let online = RoleKeySet::new(
                keys_of(&online_keys, &online_rk.keyids, "bins")?,
                online_rk.threshold,
            );
            new_bins = Some(build::new_bins_delegator(
                &layout,
                &online,
                b.version + 1,
                expires,
            )?);
        }
        let mut report = Report::default();
        let file = self.write_pending(OfflineRole::Targets, version, new)?;
        report.line(format!(
            "created {file}: targets v{version}{}, expires {}",
            if changed { " with new bins keys" } else { "" },
            format_expires(expires)
        ));
        if let Some(b) = new_bins {
            let v = b.version;
            let file = self.write_pending(OfflineRole::Bins, v, b)?;
            report.line(format!(
                "created {file}: bins v{v}, to be signed by the new bins keys"
            ));
        }
        self.save_config()?;
        Ok(report)
    }

    /// `resign bins`: the next bins version (same online key) with a fresh expiry.
    pub fn resign_bins(&mut self, expires_days: Option<ExpiryDays>, now: Time) -> Result<Report> {
        let state = self.load()?;
        self.ensure_not_pending(&state, OfflineRole::Bins)?;
        let doc = state
            .bins
            .as_ref()
            .ok_or_else(|| self.error("no published bins to re-sign"))?;
        let b = doc
            .targets()
            .ok_or_else(|| self.error(format!("`{}` is not bins metadata", doc.label)))?;
        let (rk, keys, layout) = online_delegation(b).ok_or_else(|| CeremonyError::Metadata {
            file: doc.label.clone(),
            reason: "has no succinct hashed-bin delegation".into(),
        })?;
        let online = RoleKeySet::new(keys_of(&keys, &rk.keyids, &doc.label)?, rk.threshold);
        let days = expires_days.unwrap_or(self.config.expires_days);
        let expires = days.expires_from(now)?;
        let version = b.version + 1;
        let new = build::new_bins_delegator(&layout, &online, version, expires)?;
        let file = self.write_pending(OfflineRole::Bins, version, new)?;
        let mut report = Report::default();
        report.line(format!(
            "created {file}: bins v{version}, expires {}",
            format_expires(expires)
        ));
        Ok(report)
    }
}
