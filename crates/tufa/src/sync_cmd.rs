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
    options.pins = loaded.pins();
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
        let synced = sync_and_publish(loaded, &store, &index, &publishing, &options, bar).await?;
        return Ok(synced.code);
    }
    follow_dependencies(loaded, &store, &index, &publishing, options, bar).await
}

/// `[sync] follow_dependencies`: the allowlist and, from what is mirrored, everything it needs;
/// synced, then resolved again from what the new distributions need, until nothing new is
/// needed or `max_projects` is reached. The resolution is stored for `tufa policy explain`,
/// and every project in it that ends up with nothing mirrored is reported with the reason.
async fn follow_dependencies(
    loaded: &Loaded,
    store: &tufa_store::BlobStore,
    index: &tufa_index::Index,
    publishing: &crate::tuf_cmd::Publishing,
    mut options: SyncOptions,
    bar: bool,
) -> anyhow::Result<ExitCode> {
    let c = &loaded.config;
    let roots = loaded.roots();
    let mut resolver =
        tufa::deps::Resolver::new(store, Some(index), &loaded.environments, c.sync.max_projects);
    let mut resolution = resolver.resolve(&roots).await?;
    let mut code = ExitCode::SUCCESS;
    let mut failures = Vec::new();
    for round in 0..MAX_DEPENDENCY_ROUNDS {
        // The whole allowlist (what is not in it leaves the index); after the first round,
        // only the pages of the projects the last resolution added are read.
        options.projects = Some(resolution.names());
        let synced = sync_and_publish(loaded, store, index, publishing, &options, bar).await?;
        if synced.code != ExitCode::SUCCESS {
            code = ExitCode::from(1);
        }
        failures.extend(synced.failures);
        let next = resolver.resolve(&roots).await?;
        let added: Vec<_> = next
            .projects
            .iter()
            .filter(|(name, _)| !resolution.projects.contains_key(*name))
            .collect();
        if added.is_empty() {
            resolution = next;
            break;
        }
        options.only = Some(added.iter().map(|(name, _)| (*name).clone()).collect());
        println!(
            "following dependencies: adding {}",
            added
                .iter()
                .map(|(name, e)| match &e.needed_by {
                    Some((by, _)) => format!("{name} (needed by {by})"),
                    None => name.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        resolution = next;
        if round + 1 == MAX_DEPENDENCY_ROUNDS {
            eprintln!(
                "warning: dependencies still being found after {MAX_DEPENDENCY_ROUNDS} rounds; the next sync goes on"
            );
        }
    }
    if !resolution.not_followed.is_empty() {
        eprintln!(
            "warning: not following {} more dependencies: the allowlist reached sync.max_projects = {}: {}",
            resolution.not_followed.len(),
            c.sync.max_projects,
            resolution
                .not_followed
                .iter()
                .map(|(dep, by)| format!("{dep} (needed by {by})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for (project, sdists) in &resolution.unknown {
        eprintln!(
            "note: {project}: {} has no wheel and its sdist does not declare its dependencies statically (metadata 2.2+, PEP 643); list what it needs in a requirements file",
            sdists.join(", ")
        );
    }
    not_mirrored(loaded, store, index, &options.policy, &failures, &mut resolution).await?;
    for (name, entry) in &resolution.projects {
        if let Some(why) = &entry.not_mirrored {
            let role = match &entry.needed_by {
                Some((by, _)) => format!("dependency {name} (needed by {by})"),
                None => format!("listed project {name}"),
            };
            eprintln!("warning: {role} is not mirrored: {why}");
        }
    }
    let followed = resolution.followed().count();
    println!(
        "mirrored {} project(s): {} listed, {followed} followed as dependencies{}",
        resolution.projects.len(),
        resolution.projects.len() - followed,
        match resolution
            .projects
            .values()
            .filter(|e| e.not_mirrored.is_some())
            .count()
        {
            0 => String::new(),
            n => format!(", {n} of them with nothing mirrored (see the warnings)"),
        }
    );
    resolution.save(store).await?;
    Ok(code)
}

/// Marks the projects of `resolution` that have no file in the index, with why: a policy
/// rule on the whole project, every file blocked, a sync failure, or nothing upstream.
async fn not_mirrored(
    loaded: &Loaded,
    store: &tufa_store::BlobStore,
    index: &tufa_index::Index,
    policy: &tufa_policy::Policy,
    failures: &[tufa_sync::SyncFailure],
    resolution: &mut tufa::deps::Resolution,
) -> anyhow::Result<()> {
    let report = crate::policy_cmd::stored_report(store).await;
    for (name, entry) in resolution.projects.iter_mut() {
        let idx = index.clone();
        let project = name.clone();
        if !tokio::task::spawn_blocking(move || idx.files(&project))
            .await??
            .is_empty()
        {
            continue;
        }
        let blocked = report
            .as_ref()
            .and_then(|r| r.download.get(name.as_str()))
            .filter(|b| !b.is_empty());
        entry.not_mirrored = Some(
            if let Some(tufa_policy::Verdict::Block { rule, reason }) = policy.project(name) {
                format!("policy rule {rule}: {reason}")
            } else if let Some(blocked) = blocked {
                format!(
                    "policy keeps out all {} of its file(s), first: {} ({}); `{}` says more",
                    blocked.len(),
                    blocked[0].reason,
                    blocked[0].rule,
                    loaded.command(&format!("policy explain {name}"))
                )
            } else if let Some(failure) = failures.iter().find(|f| f.project == name.as_str()) {
                format!("its sync failed: {}", failure.error)
            } else {
                "upstream lists no files for it that this mirror takes".to_owned()
            },
        );
    }
    Ok(())
}

/// Rounds of "sync, then look for what the new distributions need" in one `tufa sync` at most.
const MAX_DEPENDENCY_ROUNDS: usize = 20;

/// What one sync and its publish did.
struct Synced {
    code: ExitCode,
    failures: Vec<tufa_sync::SyncFailure>,
}

async fn sync_and_publish(
    loaded: &Loaded,
    store: &tufa_store::BlobStore,
    index: &tufa_index::Index,
    publishing: &crate::tuf_cmd::Publishing,
    options: &SyncOptions,
    bar: bool,
) -> anyhow::Result<Synced> {
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
        return Ok(Synced {
            code: ExitCode::SUCCESS,
            failures: report.failures,
        });
    }
    let problems = report.failures.len() + published.failures.len();
    eprintln!("error: {problems} problem(s); everything else was synced and published:");
    for f in &report.failures {
        eprintln!("  {f}");
    }
    for (project, e) in &published.failures {
        eprintln!("  {project}: publishing failed: {e}");
    }
    Ok(Synced {
        code: ExitCode::from(1),
        failures: report.failures,
    })
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
