//! What is in a ceremony directory: the published chain and the pending files, loaded and
//! checked for order; who may sign each pending file.

use std::collections::BTreeMap;

use serde::Serialize;
use tufa_tuf::{RoleName, Signed};

use super::doc::{Doc, scan};
use super::evaluate::Requirement;
use super::graph::bins_delegation;
use super::{Ceremony, PENDING_DIR, PUBLISHED_DIR};
use crate::error::{CeremonyError, Result};
use crate::fsutil;
use crate::types::{OfflineRole, PendingSelector};

/// What is in the ceremony directory.
#[derive(Debug, Clone)]
pub(super) struct State {
    /// Published roots, ascending by version.
    pub roots: Vec<Doc>,
    /// The newest published targets and bins.
    pub targets: Option<Doc>,
    pub bins: Option<Doc>,
    pub pending: BTreeMap<OfflineRole, Doc>,
}

impl State {
    pub fn latest_root(&self) -> Option<&Doc> {
        self.roots.last()
    }

    /// The newest published version of `role`.
    pub fn published(&self, role: OfflineRole) -> Option<&Doc> {
        match role {
            OfflineRole::Root => self.roots.last(),
            OfflineRole::Targets => self.targets.as_ref(),
            OfflineRole::Bins => self.bins.as_ref(),
        }
    }

    /// The version that is current once everything pending is published.
    pub fn effective(&self, role: OfflineRole) -> Option<&Doc> {
        self.pending.get(&role).or(self.published(role))
    }

    fn published_version(&self, role: OfflineRole) -> u64 {
        self.published(role).map_or(0, |d| d.version)
    }
}

impl Ceremony {
    pub(super) fn load(&self) -> Result<State> {
        let published = scan(&self.dir.join(PUBLISHED_DIR), "published/")?;
        let mut roots = Vec::new();
        for (v, label, path) in published.get(&OfflineRole::Root).into_iter().flatten() {
            roots.push(Doc::load(OfflineRole::Root, label.clone(), path.clone(), *v)?);
        }
        let latest = |role: OfflineRole| -> Result<Option<Doc>> {
            match published.get(&role).and_then(|v| v.last()) {
                Some((v, label, path)) => Ok(Some(Doc::load(role, label.clone(), path.clone(), *v)?)),
                None => Ok(None),
            }
        };
        let targets = latest(OfflineRole::Targets)?;
        let bins = latest(OfflineRole::Bins)?;
        let mut pending = BTreeMap::new();
        for (role, files) in scan(&self.dir.join(PENDING_DIR), "pending/")? {
            if files.len() > 1 {
                let names: Vec<&str> = files.iter().map(|(_, l, _)| l.as_str()).collect();
                return Err(self.error(format!(
                    "more than one pending {role} file ({}); `discard` all but one",
                    names.join(", ")
                )));
            }
            if let Some((v, label, path)) = files.into_iter().next() {
                pending.insert(role, Doc::load(role, label, path, v)?);
            }
        }
        let state = State {
            roots,
            targets,
            bins,
            pending,
        };
        for (role, doc) in &state.pending {
            let expected = state.published_version(*role) + 1;
            if doc.version != expected {
                return Err(CeremonyError::Metadata {
                    file: doc.label.clone(),
                    reason: format!(
                        "version {} does not follow the published version {} (expected {expected}); `discard` it",
                        doc.version,
                        expected - 1
                    ),
                });
            }
        }
        Ok(state)
    }

    /// The thresholds `doc` (pending) must meet.
    pub(super) fn requirements(&self, state: &State, doc: &Doc) -> Result<Vec<Requirement>> {
        let missing = |what: &str| CeremonyError::Metadata {
            file: doc.label.clone(),
            reason: format!("cannot tell who may sign it: {what}"),
        };
        match doc.role {
            OfflineRole::Root => {
                let new = doc.root().ok_or_else(|| missing("not root metadata"))?;
                let mut reqs = Vec::new();
                if doc.version > 1 {
                    let old = state
                        .latest_root()
                        .and_then(Doc::root)
                        .ok_or_else(|| missing("the previous root is not published"))?;
                    reqs.push(Requirement {
                        label: format!("the v{} root keys", old.version),
                        keys: old.keys.clone(),
                        role_keys: old.role_keys(RoleName::ROOT)?.clone(),
                    });
                }
                reqs.push(Requirement {
                    label: format!("the v{} root keys", new.version),
                    keys: new.keys.clone(),
                    role_keys: new.role_keys(RoleName::ROOT)?.clone(),
                });
                Ok(reqs)
            }
            OfflineRole::Targets => {
                let root_doc = state
                    .effective(OfflineRole::Root)
                    .ok_or_else(|| missing("no root"))?;
                let root = root_doc.root().ok_or_else(|| missing("no root"))?;
                Ok(vec![Requirement {
                    label: format!("the targets keys of root v{}", root.version),
                    keys: root.keys.clone(),
                    role_keys: root.role_keys(RoleName::TARGETS)?.clone(),
                }])
            }
            OfflineRole::Bins => {
                let t_doc = state
                    .effective(OfflineRole::Targets)
                    .ok_or_else(|| missing("no targets metadata"))?;
                let t = t_doc.targets().ok_or_else(|| missing("no targets metadata"))?;
                let (role_keys, keys) =
                    bins_delegation(t).ok_or_else(|| missing("targets does not delegate to `bins`"))?;
                Ok(vec![Requirement {
                    label: format!("the bins keys of targets v{}", t.version),
                    keys,
                    role_keys,
                }])
            }
        }
    }

    /// The pending file `which` names.
    pub(super) fn find_pending<'a>(&self, state: &'a State, which: PendingSelector) -> Result<&'a Doc> {
        let role = which.role();
        let doc = state.pending.get(&role).ok_or_else(|| {
            self.error(format!(
                "nothing pending for {role} (create it with `init`, `rotate-root` or `resign`)"
            ))
        })?;
        if let PendingSelector::File { version, .. } = which
            && doc.version != version
        {
            return Err(self.error(format!(
                "`{which}` does not exist; the pending {role} file is `{}`",
                doc.label
            )));
        }
        Ok(doc)
    }

    pub(super) fn ensure_not_pending(&self, state: &State, role: OfflineRole) -> Result<()> {
        if let Some(d) = state.pending.get(&role) {
            return Err(self.error(format!(
                "`{}` is still pending; publish it or `discard` it first",
                d.label
            )));
        }
        Ok(())
    }

    /// Writes an unsigned pending file; returns its label (`pending/N.role.json`).
    pub(super) fn write_pending<T: Serialize>(
        &self,
        role: OfflineRole,
        version: u64,
        signed: T,
    ) -> Result<String> {
        let name = role.file_name(version);
        let unsigned = Signed {
            signatures: Vec::new(),
            signed,
        };
        fsutil::write_new(
            &self.dir.join(PENDING_DIR).join(&name),
            &unsigned.to_bytes()?,
            false,
        )?;
        Ok(format!("{PENDING_DIR}/{name}"))
    }
}
