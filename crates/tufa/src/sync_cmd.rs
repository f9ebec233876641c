//! `tufa sync`.

use std::process::ExitCode;
use std::sync::Arc;

use tufa_sync::{SyncEvent, SyncOptions};

use crate::config::Loaded;
use crate::progress::Progress;

/// Age after which a temporary upload object is certainly abandoned.
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

pub async fn run(loaded: &Loaded, bar: bool) -> anyhow::Result<ExitCode> {
    let store = loaded.open_store_reachable().await?;
    // The store's writer lease before anything else (the index, the temp sweep): a second
    // writer is refused naming the first, and every publish step checks the lease is held.
    tufa::lease_cmd::as_writer(loaded, &store, |store| run_leased(loaded, store, bar)).await
}

async fn run_leased(loaded: &Loaded, store: tufa_store::BlobStore, bar: bool) -> anyhow::Result<ExitCode> {
    let c = &loaded.config;
    let index = loaded.open_index().await?;
    if let Some(root) = &c.upstream_root {
        drop(index);
        return run_replica(loaded, &store, root).await;
    }
    // Uploads a killed run left behind. A live upload touches its temporary object at least
    // every read timeout, so anything this old is garbage.
    match store.remove_stale_temps(STALE_TEMP_AGE).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            removed = n,
            "removed temporary objects left by an interrupted run"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot clean up temporary objects"),
    }

    // What publishing will sign with, checked before the sync: a missing or wrong online key
    // is better said now than after downloading everything.
    let publishing = crate::tuf_cmd::publishing(loaded, &store, &index).await?;

    let mut options = SyncOptions::new(c.upstream.clone());
    options.xmlrpc = c.xmlrpc.clone();
    options.projects = loaded.allowlist();
    options.pins = loaded.pins.clone();
    options.limits = c.sync.limits.clone();
    options.concurrency = c.sync.concurrency.clone();
    options.latest_releases = c.sync.latest_releases;
    options.file_hosts = c.sync.file_hosts.clone();
    options.allow_private_addresses = c.sync.allow_private_addresses;
    // The policy `publishing` read (with its OSV dump): judged before download by the sync,
    // licence rules at publish.
    options.policy = publishing.options.policy.clone().unwrap_or_default();
    // A full mirror reads only what changed upstream; projects with files min_release_age held
    // back are read again, so those files are admitted once old enough.
    options.recheck = crate::policy_cmd::held_back_projects(&store).await;

    if !c.sync.follow_dependencies {
        return sync_and_publish(loaded, &store, &index, &publishing, &options, bar).await;
    }
    // The allowlist and, from what is published, everything it needs; then, round by round,
    // what the newly synced wheels need, until nothing is missing or the bound is reached.
    let roots = loaded.allowlist().unwrap_or_default();
    let max = c.sync.max_projects;
    let (mut allow, mut why) = tufa::deps::closure(&store, &roots, max).await?;
    let mut code = ExitCode::SUCCESS;
    for _ in 0..MAX_DEPENDENCY_ROUNDS {
        options.projects = Some(allow.iter().cloned().collect());
        if sync_and_publish(loaded, &store, &index, &publishing, &options, bar).await? != ExitCode::SUCCESS {
            code = ExitCode::from(1);
        }
        let missing = tufa::deps::missing_dependencies(&store, &allow).await?;
        if missing.is_empty() {
            break;
        }
        if allow.len() >= max {
            eprintln!(
                "warning: not following {} more dependencies: the allowlist reached sync.max_projects = {max}",
                missing.len()
            );
            break;
        }
        let adding: Vec<_> = missing.into_iter().take(max - allow.len()).collect();
        println!(
            "following dependencies: adding {}",
            adding
                .iter()
                .map(|(dep, by)| format!("{dep} (needed by {by})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (dep, by) in adding {
            allow.insert(dep.clone());
            why.insert(dep, by);
        }
    }
    let added = allow.len() - roots.iter().collect::<std::collections::BTreeSet<_>>().len();
    if added > 0 {
        println!(
            "mirrored {} project(s): {} listed, {added} followed as dependencies",
            allow.len(),
            allow.len() - added
        );
    }
    Ok(code)
}

/// Rounds of "sync, then look for what the new wheels need" in one `tufa sync` at most.
const MAX_DEPENDENCY_ROUNDS: usize = 20;

/// One sync and the publish after it, with their summary.
async fn sync_and_publish(
    loaded: &Loaded,
    store: &tufa_store::BlobStore,
    index: &tufa_index::Index,
    publishing: &crate::tuf_cmd::Publishing,
    options: &SyncOptions,
    bar: bool,
) -> anyhow::Result<ExitCode> {
    let c = &loaded.config;
    let store = store.clone();
    let index = index.clone();
    let progress = Progress::new("sync", bar);
    let p = progress.clone();
    let on_event: tufa_sync::Progress = Arc::new(move |e| match e {
        SyncEvent::Planned { projects } => p.set_total(projects as u64),
        SyncEvent::Downloaded { bytes } => p.add_bytes(bytes),
        SyncEvent::ProjectDone { .. } => p.inc(),
    });
    let report = tufa_sync::sync(options, &store, &index, on_event).await;
    progress.finish();
    let report = report?;
    // Publish what synced, even when some of it failed: good projects should not wait.
    let published = match tufa_publish::publish(&store, &index, &publishing.options).await {
        Ok(published) => published,
        Err(e) => {
            // Name what failed to sync too (say, files that hit a full disk) before the
            // error that stopped publishing.
            if !report.failures.is_empty() {
                eprintln!(
                    "error: {} file(s) or project(s) failed to sync:",
                    report.failures.len()
                );
                for f in &report.failures {
                    eprintln!("  {f}");
                }
            }
            return Err(e.into());
        }
    };

    println!(
        "synced {} projects from {}: {} changed, {} removed; {} files downloaded ({} bytes), {} already present, {} removed from the index",
        report.projects_processed,
        tufa_sync::redact(&c.upstream),
        report.projects_changed,
        report.projects_removed,
        report.files_downloaded,
        report.bytes_downloaded,
        report.files_already_present,
        report.files_removed,
    );
    if report.files_blocked > 0 {
        let verb = match c.policy.mode {
            tufa_policy::Mode::Enforce => "kept out",
            tufa_policy::Mode::Report => "would keep out (report mode)",
        };
        println!(
            "policy {verb} {} file(s); `{}` says why",
            report.files_blocked,
            loaded.command("policy explain NAME")
        );
    }
    println!(
        "published {} projects ({} unpublished, {} unchanged), {} wheel METADATA files extracted",
        published.projects_published,
        published.projects_unpublished,
        published.projects_unchanged,
        published.metadata_extracted
    );
    crate::tuf_cmd::mark_published(&store, &published).await?;
    if let Err(e) = crate::policy_cmd::update_report(&store, c, &options.policy, &report, &published).await {
        tracing::warn!(error = format!("{e:#}"), "cannot update the policy report");
    }
    crate::tuf_cmd::report(loaded, publishing, &published);
    crate::tuf_cmd::after_publish(loaded, &store, publishing).await;
    if report.is_success() && published.failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let problems = report.failures.len() + published.failures.len();
    eprintln!("error: {problems} problem(s); everything else was synced and published:");
    for f in &report.failures {
        eprintln!("  {f}");
    }
    for (project, e) in &published.failures {
        eprintln!("  {project}: publishing failed: {e}");
    }
    Ok(ExitCode::from(1))
}

/// `tufa sync` of a verifying replica (`upstream_root` set): see `tufa_replica`.
async fn run_replica(
    loaded: &Loaded,
    store: &tufa_store::BlobStore,
    root: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    let c = &loaded.config;
    let root_path = loaded.base_dir.join(root);
    let anchor = std::fs::read(&root_path).with_context(|| {
        format!(
            "cannot read the upstream root `{}` (upstream_root)",
            root_path.display()
        )
    })?;
    let metadata_dir = loaded.base_dir.join("data").join("upstream-tuf");
    match std::fs::read(metadata_dir.join(tufa_replica::ANCHOR_FILE)) {
        Ok(existing) if existing != anchor => anyhow::bail!(
            "`{}` holds the TUF state of a replica of another upstream root; move it away to start over",
            metadata_dir.display()
        ),
        Ok(_) => {}
        Err(_) => {
            tufa_replica::init_metadata_dir(&metadata_dir, &anchor)?;
        }
    }
    let options = tufa_replica::ReplicaOptions {
        primary: c.replica_primary()?,
        metadata_dir,
        http: tufa_client::HttpOptions {
            user_agent: concat!("tufa/", env!("CARGO_PKG_VERSION"), " (verifying replica)").to_owned(),
            connect_timeout: std::time::Duration::from_secs(c.sync.limits.connect_timeout_secs),
            read_timeout: std::time::Duration::from_secs(c.sync.limits.read_timeout_secs),
        },
        downloads: c.sync.concurrency.downloads,
    };
    match tufa_replica::sync(store, &options).await {
        Ok(r) => {
            println!(
                "replicated {} from {}: root v{}, snapshot v{}, timestamp v{}; {} targets, {} files downloaded ({} bytes); published {} projects ({} removed), {} metadata files",
                options.primary,
                tufa_sync::redact(&c.upstream),
                r.root_version,
                r.snapshot_version,
                r.timestamp_version,
                r.targets,
                r.downloaded,
                r.bytes_downloaded,
                r.projects_published,
                r.projects_removed,
                r.metadata_files_written
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let class = match &e {
                tufa_replica::ReplicaError::Client(c) => c.attack_class().map(|a| format!(" ({a})")),
                _ => None,
            };
            eprintln!(
                "error: the upstream did not verify{}: {e}",
                class.unwrap_or_default()
            );
            eprintln!("nothing new was published; readers keep serving the last verified copy");
            Ok(ExitCode::from(1))
        }
    }
}
