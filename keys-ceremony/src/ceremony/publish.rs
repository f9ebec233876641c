//! `publish`: checks every threshold and the role graph, then writes the signed metadata for
//! `tufa import-metadata` and moves the pending files to `published/`.

use std::fmt;
use std::path::{Path, PathBuf};

use jiff::Timestamp as Time;

use super::evaluate::evaluate;
use super::graph::{check_graph, root_continues};
use super::{Ceremony, PENDING_DIR, PUBLISHED_DIR};
use crate::error::{CeremonyError, Result};
use crate::fsutil;
use crate::types::OfflineRole;

/// `publish`: what was written.
#[derive(Debug, Clone)]
pub struct PublishReport {
    pub out: PathBuf,
    /// File names written to `out` (the whole root chain, the newest targets and bins).
    pub files: Vec<String>,
    /// Pending files moved to `published/`.
    pub published: Vec<String>,
}

impl fmt::Display for PublishReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "published {}", self.published.join(", "))?;
        write!(
            f,
            "wrote {} to {} (on the mirror host: `tufa-ceremony verify DIR`, then `tufa --config /path/to/tufa.toml import-metadata DIR` with DIR where this directory is mounted there)",
            self.files.join(", "),
            self.out.display(),
        )
    }
}

impl Ceremony {
    /// `publish`: checks every threshold and the role graph, writes the root chain and the
    /// newest targets and bins to `out`, and moves the pending files to `published/`. Writes
    /// nothing when anything is wrong.
    pub fn publish(&self, out: &Path, now: Time) -> Result<PublishReport> {
        let state = self.load()?;
        let holders = &self.config.holders;
        if state.pending.is_empty() {
            return Err(self.error(format!(
                "nothing pending in `{}`: create metadata with `init`, `rotate-root` or `resign` first",
                self.dir.join(PENDING_DIR).display()
            )));
        }
        let mut problems = Vec::new();
        for doc in state.pending.values() {
            for req in self.requirements(&state, doc)? {
                let e = evaluate(doc, &req, holders);
                if !e.met {
                    let missing: Vec<String> = e.missing.iter().map(|k| holders.name(k)).collect();
                    problems.push(format!(
                        "role `{}` v{} (`{}`) has {} of {} required signatures from {}; {} more needed{}",
                        doc.role,
                        doc.version,
                        doc.label,
                        e.valid(),
                        e.threshold,
                        e.label,
                        e.needed(),
                        if missing.is_empty() {
                            String::new()
                        } else {
                            format!(" (not yet signed by: {})", missing.join(", "))
                        }
                    ));
                }
            }
        }
        if problems.is_empty()
            && let Some(doc) = state.pending.get(&OfflineRole::Root)
            && let Err(e) = root_continues(state.latest_root(), doc)
        {
            problems.push(e);
        }
        if problems.is_empty() {
            problems.extend(check_graph(
                state.effective(OfflineRole::Root),
                state.effective(OfflineRole::Targets),
                state.effective(OfflineRole::Bins),
                now,
                |id| holders.who(id),
            ));
        }
        if !problems.is_empty() {
            return Err(CeremonyError::NotPublishable { problems });
        }

        // Everything checks: write the export, then move the pending files.
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for d in state.roots.iter().chain(state.pending.get(&OfflineRole::Root)) {
            files.push((OfflineRole::Root.file_name(d.version), d.to_bytes()?));
        }
        for role in [OfflineRole::Targets, OfflineRole::Bins] {
            if let Some(d) = state.effective(role) {
                files.push((role.file_name(d.version), d.to_bytes()?));
            }
        }
        std::fs::create_dir_all(out).map_err(CeremonyError::io(out))?;
        for (name, bytes) in &files {
            let path = out.join(name);
            match std::fs::read(&path) {
                Ok(existing) if &existing == bytes => {}
                Ok(_) => {
                    return Err(CeremonyError::Metadata {
                        file: path.display().to_string(),
                        reason:
                            "already exists with different content; publish to a new (or empty) directory"
                                .into(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(CeremonyError::io(&path)(e)),
            }
        }
        for (name, bytes) in &files {
            fsutil::write_atomic(&out.join(name), bytes)?;
        }
        let mut published = Vec::new();
        for doc in state.pending.values() {
            let name = doc.role.file_name(doc.version);
            fsutil::rename(&doc.path, &self.dir.join(PUBLISHED_DIR).join(&name))?;
            published.push(format!("{} v{}", doc.role, doc.version));
        }
        Ok(PublishReport {
            out: out.to_owned(),
            files: files.into_iter().map(|(n, _)| n).collect(),
            published,
        })
    }
}
