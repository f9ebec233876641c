//! `tufa verify`: re-hash every blob the index references.
//!
//! Runs `jobs` blobs at once, project by project in name order, and writes a checkpoint
//! (next to the index) after each batch of projects, so `--resume` continues an interrupted
//! run instead of starting over. The checkpoint carries the problems found so far, and is
//! removed when a run completes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use tufa_index::Index;
use tufa_pypi::{ProjectName, Sha256Digest};
use tufa_store::{BlobStore, VerifyOutcome};

use crate::config::Loaded;
use crate::progress::Progress;

/// Projects verified between two checkpoint writes.
const CHECKPOINT_EVERY: usize = 100;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Checkpoint {
    /// Every project up to and including this one is verified.
    after: Option<ProjectName>,
    problems: Vec<String>,
}

fn checkpoint_path(index: &Path) -> PathBuf {
    let mut p = index.as_os_str().to_owned();
    p.push(".verify-checkpoint.json");
    PathBuf::from(p)
}

fn write_checkpoint(path: &Path, cp: &Checkpoint) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let data = serde_json::to_vec_pretty(cp)?;
    std::fs::write(&tmp, data).with_context(|| format!("cannot write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// What is wrong with a re-hashed blob, as "`what` blob D is missing" and the like; `None`
/// when it is intact (and has `expected_len` bytes, when given).
fn blob_problem(
    what: &str,
    digest: &Sha256Digest,
    result: &Result<VerifyOutcome, tufa_store::StoreError>,
    expected_len: Option<u64>,
) -> Option<String> {
    match result {
        Ok(VerifyOutcome::Ok { len }) => expected_len
            .filter(|expected| expected != len)
            .map(|expected| format!("{what} blob {digest} has {len} bytes, {expected} were signed")),
        Ok(VerifyOutcome::Missing) => Some(format!("{what} blob {digest} is missing")),
        Ok(VerifyOutcome::Corrupt { actual }) => Some(format!(
            "{what} blob {digest} is corrupt (its content hashes to {actual})"
        )),
        Err(e) => Some(format!("{what} blob {digest} cannot be read: {e}")),
    }
}

/// Checks every project's published manifest and the page and METADATA blobs it names, and
/// that every project in the index is published.
async fn verify_published(
    loaded: &Loaded,
    store: &BlobStore,
    index: &Index,
    problems: &mut Vec<String>,
) -> anyhow::Result<u64> {
    let idx = index.clone();
    let names = tokio::task::spawn_blocking(move || idx.project_names()).await??;
    let mut checked = 0;
    for name in names {
        let manifest = match tufa_tree::read_manifest(store, &name).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                problems.push(format!(
                    "{name}: not published (run `{}` to publish it)",
                    loaded.command("sync")
                ));
                continue;
            }
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        for digest in tufa_publish::page_digests(&manifest) {
            checked += 1;
            let result = store.verify(&digest).await;
            problems.extend(blob_problem(
                &format!("{name}: published page"),
                &digest,
                &result,
                None,
            ));
        }
    }
    Ok(checked)
}

/// Walks the published TUF metadata like a client (trusting the published `1.root.json`),
/// then checks that every signed target's bytes are stored and hash as signed. No metadata is
/// a problem when the config names an online key (the mirror is meant to be signed), and
/// skipped otherwise.
async fn verify_tuf(
    loaded: &Loaded,
    store: &BlobStore,
    index: &Index,
    problems: &mut Vec<String>,
) -> anyhow::Result<u64> {
    let Some(root) = store.get_named(&tufa_tree::tuf_key("1.root.json")).await? else {
        let t = &loaded.config.tuf;
        let setting = if t.online_key.is_some() {
            Some("[tuf] online_key")
        } else if t.online_pkcs11.is_some() {
            Some("[tuf.online_pkcs11]")
        } else {
            None
        };
        match setting {
            // A trial mirror's dev keys create the metadata at the next publish.
            Some(setting) if t.insecure_dev_keys.is_some() => problems.push(format!(
                "no TUF metadata published although {setting} is set: the dev keys (insecure_dev_keys) create it (run `{}` to publish it)",
                loaded.command("sync")
            )),
            Some(setting) => problems.push(format!(
                "no TUF metadata published although {setting} is set: import the key ceremony's metadata with `{}`",
                loaded.command("import-metadata DIR")
            )),
            None => println!("no TUF metadata published: skipping signature checks"),
        }
        return Ok(0);
    };
    // The trust anchor is trusted as `1.root.json`: it must be signed as version 1 (later roots'
    // names are checked against their signed versions by the walk itself).
    if let Err(e) = tufa_tuf::Signed::<tufa_tuf::Root>::from_file("1.root.json", &root) {
        problems.push(format!("TUF: {e}"));
        return Ok(0);
    }
    // Root (and perhaps targets and bins) written by a first publish that stopped before its
    // timestamp (a full disk, a kill), or a timestamp removed since: the next publish signs a
    // new one (a missing timestamp is never left as it is).
    if store
        .get_named(&tufa_tree::tuf_key("timestamp.json"))
        .await?
        .is_none()
    {
        problems.push(format!(
            "TUF: timestamp.json is not published: a publish of TUF metadata did not finish, or the file was removed (run `{}` to publish it)",
            loaded.command("sync")
        ));
        return Ok(0);
    }
    let handle = tokio::runtime::Handle::current();
    let fetch_store = store.clone();
    let verified = tokio::task::spawn_blocking(move || {
        let source = |name: &str| -> Option<Vec<u8>> {
            handle
                .block_on(fetch_store.get_named(&tufa_tree::tuf_key(name)))
                .ok()
                .flatten()
                .map(|b| b.to_vec())
        };
        tufa_tuf::verify_repository(
            &root,
            &source,
            &tufa_tuf::VerifyOptions::new(jiff::Timestamp::now()),
        )
    })
    .await?;
    let repo = match verified {
        Ok(repo) => repo,
        Err(failure) => {
            problems.extend(failure.problems.iter().map(|p| format!("TUF: {p}")));
            return Ok(0);
        }
    };
    // A validly signed but older timestamp or snapshot in the store is a rollback of the
    // published tree: the index remembers what this writer last published.
    let idx = index.clone();
    let recorded = tokio::task::spawn_blocking(move || idx.tuf_roles()).await??;
    // A root newer than the recorded one may have rotated the timestamp or snapshot key, after
    // which versions legitimately start again (TUF fast-forward recovery).
    let same_root = recorded.get("root").is_some_and(|(v, _)| repo.root.version <= *v);
    for (role, published) in [
        ("timestamp", repo.timestamp.version),
        ("snapshot", repo.snapshot.version),
    ] {
        if let Some((want, _)) = recorded.get(role)
            && same_root
            && published < *want
        {
            problems.push(format!(
                "TUF: published {role} v{published} is older than v{want}, the last one this mirror signed (rolled back?)"
            ));
        }
    }
    let mut checked = 0;
    for (path, target) in &repo.targets {
        checked += 1;
        let Some(digest) = target.file.sha256() else {
            problems.push(format!("TUF target `{path}` lists no sha256"));
            continue;
        };
        let result = store.verify(&digest).await;
        problems.extend(blob_problem(
            &format!("TUF target `{path}`:"),
            &digest,
            &result,
            Some(target.file.length),
        ));
    }
    println!(
        "TUF: root v{}, timestamp v{}, snapshot v{}, {} roles, {} targets verified",
        repo.root.version,
        repo.timestamp.version,
        repo.snapshot.version,
        repo.roles.len(),
        repo.targets.len()
    );
    Ok(checked)
}

pub async fn run(loaded: &Loaded, jobs: usize, resume: bool) -> anyhow::Result<ExitCode> {
    let store = loaded.open_store_reachable().await?;
    if !loaded.index_path.exists() {
        anyhow::bail!(
            "no index at `{}`: run `{}` first",
            loaded.index_path.display(),
            loaded.command("sync")
        );
    }
    let index = loaded.open_index().await?;
    let cp_path = checkpoint_path(&loaded.index_path);
    let mut checkpoint = if resume && cp_path.exists() {
        let text = std::fs::read(&cp_path).with_context(|| format!("cannot read `{}`", cp_path.display()))?;
        serde_json::from_slice(&text)
            .with_context(|| format!("checkpoint `{}` is corrupt", cp_path.display()))?
    } else {
        Checkpoint::default()
    };
    if let Some(after) = &checkpoint.after {
        tracing::info!(after = %after, "resuming verification");
    }

    // project → [(filename, digest)], in name order.
    let idx = index.clone();
    let files: BTreeMap<ProjectName, Vec<(String, Sha256Digest)>> = tokio::task::spawn_blocking(move || {
        let mut map: BTreeMap<ProjectName, Vec<(String, Sha256Digest)>> = BTreeMap::new();
        idx.for_each_file(|p, f| {
            map.entry(p.clone())
                .or_default()
                .push((f.filename.to_string(), f.sha256))
        })
        .map(|()| map)
    })
    .await??;
    let todo: Vec<_> = files
        .into_iter()
        .filter(|(p, _)| checkpoint.after.as_ref().is_none_or(|a| p > a))
        .collect();

    let progress = Progress::new("verify", false);
    progress.set_total(todo.iter().map(|(_, f)| f.len() as u64).sum());
    let mut checked = 0u64;
    for batch in todo.chunks(CHECKPOINT_EVERY) {
        let items = batch
            .iter()
            .flat_map(|(p, fs)| fs.iter().map(move |(name, d)| (p, name, *d)));
        let results: Vec<_> = futures::stream::iter(items)
            .map(|(p, name, d)| {
                let store = store.clone();
                let progress = progress.clone();
                async move {
                    let r = store.verify(&d).await;
                    progress.inc();
                    (p, name, d, r)
                }
            })
            .buffer_unordered(jobs)
            .collect()
            .await;
        for (project, name, digest, r) in results {
            checked += 1;
            let Some(problem) = blob_problem(&format!("{project}: file `{name}`:"), &digest, &r, None) else {
                continue;
            };
            tracing::error!(%problem, "verification failed");
            checkpoint.problems.push(problem);
        }
        checkpoint.after = batch.last().map(|(p, _)| p.clone());
        // The checkpoint only saves work for `--resume`: a full disk, when verifying matters
        // most, must not stop the verification itself.
        if let Err(e) = write_checkpoint(&cp_path, &checkpoint) {
            tracing::warn!(
                error = format!("{e:#}"),
                "cannot save the verify checkpoint; continuing"
            );
        }
    }
    progress.finish();
    checked += verify_published(loaded, &store, &index, &mut checkpoint.problems).await?;
    checked += verify_tuf(loaded, &store, &index, &mut checkpoint.problems).await?;
    // A complete run needs no checkpoint.
    let _ = std::fs::remove_file(&cp_path);

    println!("verified {checked} files against {}", store.describe());
    if checkpoint.problems.is_empty() {
        println!("all blobs present and intact");
        return Ok(ExitCode::SUCCESS);
    }
    checkpoint.problems.sort();
    eprintln!("error: {} problem(s):", checkpoint.problems.len());
    for p in &checkpoint.problems {
        eprintln!("  {p}");
    }
    Ok(ExitCode::from(1))
}
