//! `tufa rebuild-index`: a writer host restores its index from the object store alone
//! (`tufa_publish::rebuild`), into a new file beside the index that replaces it by a rename
//! only once it is complete and durable.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use tufa_index::{Index, IndexError};
use tufa_publish::rebuild::{RebuildEvent, RebuildOptions, RebuildReport};

use crate::config::Loaded;
use crate::progress::Progress;

/// Projects read at once.
const CONCURRENCY: usize = 16;

/// `<index>.rebuild-`: the prefix of the files a rebuild builds the new index in.
fn temp_prefix(index: &Path) -> String {
    let name = index
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{name}.rebuild-")
}

fn dir_of(index: &Path) -> PathBuf {
    match index.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Removes what an interrupted rebuild left beside the index; refuses while another rebuild
/// still writes one (redb's lock says so).
fn remove_leftovers(index: &Path) -> anyhow::Result<()> {
    let dir = dir_of(index);
    let prefix = temp_prefix(index);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let path = entry.path();
        // Opened (and closed again) or unreadable: either way a leftover.
        if let Err(IndexError::InUse { .. }) = Index::open(&path) {
            anyhow::bail!(
                "another `rebuild-index` is building `{}`: wait for it to finish",
                path.display()
            );
        }
        std::fs::remove_file(&path).with_context(|| {
            format!(
                "cannot remove `{}`, left by an interrupted rebuild",
                path.display()
            )
        })?;
        tracing::info!(path = %path.display(), "removed a file left by an interrupted rebuild");
    }
    Ok(())
}

/// Renames `from` over `to` and makes the rename durable (the directory is fsynced).
fn replace(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::rename(from, to).with_context(|| {
        format!(
            "cannot move the rebuilt index `{}` to `{}`",
            from.display(),
            to.display()
        )
    })?;
    let dir = dir_of(to);
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync the directory `{}`", dir.display()))?;
    Ok(())
}

pub async fn run(loaded: &Loaded, force: bool, bar: bool) -> anyhow::Result<ExitCode> {
    let path = loaded.index_path.clone();
    // The current index stays open (and locked) until it is replaced, so no sync, refresh or
    // import-metadata can write it meanwhile.
    let current = if path.exists() {
        let index = loaded.open_index().await?;
        let idx = index.clone();
        let empty = tokio::task::spawn_blocking(move || idx.has_no_projects()).await??;
        if !empty && !force {
            anyhow::bail!(
                "index `{}` already holds projects: rebuild-index replaces it only with --force (`{}`); the current index stays in use until the rebuilt one is complete",
                path.display(),
                loaded.command("rebuild-index --force")
            );
        }
        Some(index)
    } else {
        None
    };
    let store = loaded.open_store_reachable().await?;
    let options = RebuildOptions {
        layout: loaded.config.tuf.layout()?,
        concurrency: CONCURRENCY,
    };

    let dir = dir_of(&path);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    {
        let path = path.clone();
        tokio::task::spawn_blocking(move || remove_leftovers(&path)).await??;
    }
    let temp = dir.join(format!("{}{}", temp_prefix(&path), std::process::id()));
    let new = {
        let temp = temp.clone();
        tokio::task::spawn_blocking(move || Index::open(&temp)).await??
    };
    let progress = Progress::new("rebuild-index", bar);
    let p = progress.clone();
    let on_event = move |e: RebuildEvent| match e {
        RebuildEvent::Planned { total } => p.set_total(total),
        RebuildEvent::Done => p.inc(),
    };
    let result = tufa_publish::rebuild::rebuild(&store, &new, &options, &on_event).await;
    progress.finish();
    drop(new);
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(anyhow::Error::new(e).context(format!(
                "cannot rebuild the index from {} (`{}` is unchanged)",
                store.describe(),
                path.display()
            )));
        }
    };
    replace(&temp, &path)?;
    drop(current);

    print_summary(loaded, store.describe(), &report);
    if report.problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "error: {} problem(s) in the store; everything else was restored:",
        report.problems.len()
    );
    for p in &report.problems {
        eprintln!("  {p}");
    }
    Ok(ExitCode::from(1))
}

fn print_summary(loaded: &Loaded, store: &str, r: &RebuildReport) {
    println!(
        "rebuilt index `{}` from {store}: {} projects, {} files ({} wheel METADATA files), {} TUF targets",
        loaded.index_path.display(),
        r.projects,
        r.files,
        r.metadata_files,
        r.targets
    );
    let version = |role: &str| {
        r.roles
            .get(role)
            .map_or_else(|| "none".to_owned(), |(v, _)| format!("v{v}"))
    };
    if r.roles.is_empty() {
        println!("TUF: no metadata published");
    } else {
        let bins: Vec<u64> = r
            .roles
            .iter()
            .filter(|(role, _)| role.starts_with("bin-"))
            .map(|(_, (v, _))| *v)
            .collect();
        println!(
            "TUF versions restored: root {}, targets {}, bins {}, snapshot {}, timestamp {}, {} bin-n roles (newest v{}); {} bins to re-sign at the next publish",
            version("root"),
            version("targets"),
            version("bins"),
            version("snapshot"),
            version("timestamp"),
            bins.len(),
            bins.iter().max().copied().unwrap_or(0),
            r.bins_to_sign
        );
    }
    if r.projects_to_publish > 0 {
        println!(
            "{} projects are published again by the next sync (a page variant or METADATA blob is missing)",
            r.projects_to_publish
        );
    }
    if r.rendered_differently > 0 {
        println!(
            "{} projects have pages another tufa version rendered; they are published again with their next upstream change",
            r.rendered_differently
        );
    }
    let mode = if loaded.config.projects.is_some() {
        "allowlist mode reads every listed page at each sync anyway"
    } else {
        "full mode: the next sync lists every upstream project and reads each page once"
    };
    println!(
        "upstream serial: unknown (it is not published; {mode}); files already stored are not downloaded again and unchanged pages are not published again: next, `{}`",
        loaded.command("sync")
    );
}
