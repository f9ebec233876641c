//! `verify`: the published chain, offline — a ceremony's `published/` or a `publish --out`
//! directory.

use std::fmt;
use std::path::Path;

use jiff::Timestamp as Time;
use tufa_tuf::{RoleName, format_expires};

use super::doc::{Doc, scan};
use super::graph::{bins_delegation, check_graph, expiry_warning, online_delegation, root_continues};
use super::{Ceremony, Holders, PUBLISHED_DIR};
use crate::error::{CeremonyError, Result};
use crate::types::OfflineRole;

/// `verify`: what the published chain contains.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines.join("\n"))
    }
}

impl Ceremony {
    /// `verify` of the ceremony's published chain.
    pub fn verify(&self, now: Time) -> Result<VerifyReport> {
        let published = self.dir.join(PUBLISHED_DIR);
        let mut report = verify_dir(&published, "published/", &self.config.holders, now)?;
        let state = self.load()?;
        for d in state.pending.values() {
            report.lines.push(format!("pending (not verified): {}", d.label));
        }
        Ok(report)
    }
}

/// Verifies a directory of published metadata (`N.root.json` from 1, `N.targets.json`,
/// `N.bins.json`): a ceremony's `published/` or a `publish --out` directory.
pub fn verify_metadata_dir(dir: &Path, holders: &Holders, now: Time) -> Result<VerifyReport> {
    verify_dir(dir, "", holders, now)
}

fn verify_dir(dir: &Path, label_prefix: &str, holders: &Holders, now: Time) -> Result<VerifyReport> {
    let files = scan(dir, label_prefix)?;
    let mut problems = Vec::new();
    let mut lines = Vec::new();
    let mut warnings = Vec::new();
    let holder = |id: &tufa_tuf::KeyId| holders.who(id);

    let roots_files = files.get(&OfflineRole::Root).cloned().unwrap_or_default();
    if roots_files.is_empty() {
        return Err(CeremonyError::Verify {
            problems: vec![format!("no root metadata in `{}`", dir.display())],
        });
    }
    let mut roots: Vec<Doc> = Vec::new();
    for (i, (v, label, path)) in roots_files.iter().enumerate() {
        if *v != i as u64 + 1 {
            problems.push(format!(
                "the root chain has a gap: expected {}.root.json, found {label}",
                i + 1
            ));
            break;
        }
        match Doc::load(OfflineRole::Root, label.clone(), path.clone(), *v) {
            Ok(d) => roots.push(d),
            Err(e) => {
                problems.push(e.to_string());
                break;
            }
        }
    }
    // Root chain: v1 by its own threshold, each later one by the old and the new threshold.
    let mut trusted: Option<&Doc> = None;
    for doc in &roots {
        if let Err(e) = root_continues(trusted, doc) {
            problems.push(e);
            break;
        }
        trusted = Some(doc);
    }
    let latest_ok = trusted.is_some_and(|t| Some(t.version) == roots.last().map(|r| r.version));
    let mut latest = |role: OfflineRole| -> Option<Doc> {
        let (v, label, path) = files.get(&role)?.last()?.clone();
        Doc::load(role, label, path, v)
            .map_err(|e| problems.push(e.to_string()))
            .ok()
    };
    let targets = latest(OfflineRole::Targets);
    let bins = latest(OfflineRole::Bins);
    if latest_ok {
        problems.extend(check_graph(trusted, targets.as_ref(), bins.as_ref(), now, holder));
    }

    if let Some(root_doc) = roots.last()
        && let Some(root) = root_doc.root()
    {
        lines.push(format!(
            "root chain: {} version(s), v1 … v{}",
            roots.len(),
            root.version
        ));
        for name in RoleName::TOP_LEVEL {
            if let Ok(rk) = root.role_keys(name) {
                let who: Vec<String> = holders
                    .sorted(rk.keyids.iter().copied())
                    .iter()
                    .map(holder)
                    .collect();
                lines.push(format!(
                    "  {name}: threshold {} of {} ({})",
                    rk.threshold,
                    rk.keyids.len(),
                    who.join(", ")
                ));
            }
        }
        lines.push(format!(
            "  root v{} expires {}",
            root.version,
            format_expires(root.expires)
        ));
        warnings.extend(expiry_warning(root_doc, now));
    }
    if let Some(d) = &targets
        && let Some(t) = d.targets()
    {
        let delegation = bins_delegation(t)
            .map(|(rk, _)| format!("bins keys threshold {} of {}", rk.threshold, rk.keyids.len()))
            .unwrap_or_default();
        lines.push(format!(
            "targets v{} ({delegation}) expires {}",
            t.version,
            format_expires(t.expires)
        ));
        warnings.extend(expiry_warning(d, now));
    }
    if let Some(d) = &bins
        && let Some(b) = d.targets()
    {
        let delegation = online_delegation(b)
            .map(|(rk, _, layout)| {
                let who: Vec<String> = rk.keyids.iter().map(holder).collect();
                format!("{} hashed bins to {}", layout.bin_count(), who.join(", "))
            })
            .unwrap_or_default();
        lines.push(format!(
            "bins v{} ({delegation}) expires {}",
            b.version,
            format_expires(b.expires)
        ));
        warnings.extend(expiry_warning(d, now));
    }
    if !problems.is_empty() {
        return Err(CeremonyError::Verify { problems });
    }
    lines.push(format!(
        "OK: the published metadata in {} verifies",
        dir.display()
    ));
    Ok(VerifyReport { lines, warnings })
}
