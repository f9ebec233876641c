//! `tufa policy explain NAME[==VERSION]`: why the project is in the allowlist (listed, or the
//! chain of dependencies that brought it in), and the policy's verdict on each file upstream
//! lists for it. Reads upstream's page (nothing is downloaded or changed).

use std::process::ExitCode;

use anyhow::Context as _;
use tufa_policy::{FileFacts, Verdict};
use tufa_pypi::{ProjectName, Version};

use crate::config::Loaded;

/// `NAME` or `NAME==VERSION`.
pub fn parse_target(spec: &str) -> anyhow::Result<(ProjectName, Option<Version>)> {
    let (name, version) = match spec.split_once("==") {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    };
    let name = ProjectName::new(name.trim()).with_context(|| format!("`{spec}`"))?;
    let version = version
        .map(|v| {
            v.trim()
                .parse::<Version>()
                .map_err(|e| anyhow::anyhow!("`{spec}`: bad version: {e}"))
        })
        .transpose()?;
    Ok((name, version))
}

fn header(
    name: &ProjectName,
    version: Option<&Version>,
    mode: tufa_policy::Mode,
    at: jiff::Timestamp,
) -> String {
    format!(
        "policy for {name}{} (mode {}, judged at {at})\n",
        version.map(|v| format!("=={v}")).unwrap_or_default(),
        match mode {
            tufa_policy::Mode::Enforce => "enforce",
            tufa_policy::Mode::Report => "report: nothing is blocked",
        }
    )
}

/// The report, as printed (snapshot-tested through the binary).
pub fn render(
    name: &ProjectName,
    version: Option<&Version>,
    mode: tufa_policy::Mode,
    at: jiff::Timestamp,
    why: &[String],
    verdicts: &[(String, Verdict)],
    unreadable: &[String],
) -> String {
    let mut out = header(name, version, mode, at);
    out.push_str(&render_why(why));
    let width = verdicts.iter().map(|(f, _)| f.len()).max().unwrap_or(0);
    for (file, verdict) in verdicts {
        out.push_str(&format!("  {file:<width$}  {verdict}\n"));
    }
    for bad in unreadable {
        out.push_str(&format!("  not a distribution filename, never mirrored: {bad}\n"));
    }
    let blocked = verdicts.iter().filter(|(_, v)| v.is_blocked()).count();
    out.push_str(&format!(
        "{} file(s): {} admitted, {blocked} blocked\n",
        verdicts.len(),
        verdicts.len() - blocked
    ));
    out
}

/// `why: …` lines, the first one labelled.
fn render_why(why: &[String]) -> String {
    why.iter()
        .enumerate()
        .map(|(i, line)| format!("  {} {line}\n", if i == 0 { "why:" } else { "    " }))
        .collect()
}

/// Why `name` is in the allowlist, as lines: how it is listed, or the chain of dependencies
/// from a listed project (as the last sync resolved it with `follow_dependencies`); or why it
/// is not. Nothing for a full mirror, where every project is.
async fn why_mirrored(loaded: &Loaded, name: &ProjectName) -> Vec<String> {
    if loaded.allowlist().is_none() {
        return Vec::new();
    }
    let roots = loaded.roots();
    let resolved = match loaded.config.sync.follow_dependencies {
        true => match loaded.open_store() {
            Ok(store) => tufa::deps::Resolution::load(&store).await,
            Err(_) => None,
        },
        false => None,
    };
    let Some(resolved) = resolved else {
        return match roots.get(name) {
            Some(root) => vec![format!("{name} is listed: {}", root.sources.join("; "))],
            None if loaded.config.sync.follow_dependencies => vec![format!(
                "{name} is not listed, and no sync has resolved the dependencies yet"
            )],
            None => vec![format!(
                "{name} is not in the allowlist (`projects`, `requirements`): never mirrored"
            )],
        };
    };
    if let Some(by) = resolved.not_followed.get(name) {
        return vec![format!(
            "{name} is needed by {by}, but the allowlist reached sync.max_projects = {}: not mirrored",
            loaded.config.sync.max_projects
        )];
    }
    let Some(mut lines) = resolved.why(name) else {
        return vec![format!(
            "{name} is not listed, and nothing mirrored needs it (as of the sync at {}): never mirrored",
            resolved.updated_at
        )];
    };
    if let Some(reason) = resolved.projects.get(name).and_then(|e| e.not_mirrored.as_ref()) {
        lines.push(format!("but nothing of {name} is mirrored: {reason}"));
    }
    lines
}

pub async fn explain(loaded: &Loaded, spec: &str, at: Option<jiff::Timestamp>) -> anyhow::Result<ExitCode> {
    let (name, version) = parse_target(spec)?;
    let c = &loaded.config;
    let policy = loaded.load_policy()?;
    let at = at.unwrap_or_else(jiff::Timestamp::now);
    let why = why_mirrored(loaded, &name).await;
    if let Some(verdict) = policy.project(&name) {
        print!("{}", header(&name, version.as_ref(), c.policy.mode, at));
        print!("{}", render_why(&why));
        println!("  the whole project: {verdict}");
        println!("  (its upstream page is not read)");
        return Ok(ExitCode::SUCCESS);
    }
    let mut options = tufa_sync::SyncOptions::new(c.upstream.clone());
    options.xmlrpc = c.xmlrpc.clone();
    options.limits = c.sync.limits.clone();
    options.file_hosts = c.sync.file_hosts.clone();
    options.allow_private_addresses = c.sync.allow_private_addresses;
    let Some((files, unreadable)) =
        tufa_sync::list_upstream_files(&options, &name, policy.has_license_rules())
            .await
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?
    else {
        anyhow::bail!("{name}: not found upstream ({})", tufa_sync::redact(&c.upstream));
    };
    let verdicts: Vec<(String, Verdict)> = files
        .iter()
        .filter(|f| version.is_none() || f.filename.version() == version.as_ref())
        .map(|f| {
            let facts = FileFacts {
                project: &name,
                filename: &f.filename,
                upload_time: f.upload_time.as_deref(),
                yanked: f.yanked,
                size: f.size,
                requires_python: f.requires_python.as_deref(),
            };
            let verdict = policy.file(&facts, at);
            // Licence rules, where the page offers the file's METADATA (PEP 658); the mirror
            // judges them at publish from the same METADATA.
            let verdict = match (&verdict, policy.license(&f.filename, f.core_metadata.as_deref())) {
                (tufa_policy::Verdict::Admit { .. }, Some(licence @ tufa_policy::Verdict::Block { .. })) => {
                    licence
                }
                (
                    tufa_policy::Verdict::Admit { reason },
                    Some(tufa_policy::Verdict::Admit { reason: licence }),
                ) => tufa_policy::Verdict::Admit {
                    reason: format!("{reason}; {licence}"),
                },
                _ => verdict,
            };
            (f.filename.to_string(), verdict)
        })
        .collect();
    print!(
        "{}",
        render(
            &name,
            version.as_ref(),
            c.policy.mode,
            at,
            &why,
            &verdicts,
            &unreadable
        )
    );

    Ok(ExitCode::SUCCESS)
}

/// Brings `policy/report.json` up to date after a sync and its publish: the projects each
/// step judged replace their entries; without a policy the report is emptied.
pub async fn update_report(
    store: &tufa_store::BlobStore,
    config: &crate::config::Config,
    policy: &tufa_policy::Policy,
    synced: &tufa_sync::SyncReport,
    published: &tufa_publish::PublishReport,
) -> anyhow::Result<()> {
    let existing = store.get_named(tufa_policy::Report::KEY).await?;
    if policy.is_empty() && existing.is_none() {
        return Ok(());
    }
    let mut report: tufa_policy::Report = match &existing {
        Some(bytes) => serde_json::from_slice(bytes).unwrap_or_default(),
        None => tufa_policy::Report::default(),
    };
    if policy.is_empty() {
        report.download.clear();
        report.publish.clear();
    }
    tufa_policy::Report::update(&mut report.download, &synced.judged);
    if !policy.has_license_rules() {
        report.publish.clear();
    }
    tufa_policy::Report::update(&mut report.publish, &published.license_judged);
    report.version = 1;
    report.mode = config.policy.mode;
    report.updated_at = tufa_tuf::format_expires(jiff::Timestamp::now());
    let bytes = serde_json::to_vec_pretty(&report)?;
    store.put_named(tufa_policy::Report::KEY, bytes.into()).await?;
    Ok(())
}

/// `tufa policy report [--json]`: everything the policy keeps out, as the last sync left it.
pub async fn report(loaded: &Loaded, json: bool) -> anyhow::Result<ExitCode> {
    let store = loaded.open_store_reachable().await?;
    let Some(bytes) = store.get_named(tufa_policy::Report::KEY).await? else {
        println!(
            "no policy report yet: `{}` writes one when [policy] is set",
            loaded.command("sync")
        );
        return Ok(ExitCode::SUCCESS);
    };
    let report: tufa_policy::Report = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "`{}` in the store is not a policy report",
            tufa_policy::Report::KEY
        )
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render_report(&report));
    // Followed dependencies (or listed projects) the last sync could mirror nothing of.
    if let Some(resolution) = tufa::deps::Resolution::load(&store).await {
        let empty: Vec<_> = resolution
            .projects
            .iter()
            .filter_map(|(name, e)| Some((name, e.not_mirrored.as_ref()?)))
            .collect();
        if !empty.is_empty() {
            println!(
                "projects of the allowlist with nothing mirrored (`policy explain NAME` says why each is in):"
            );
            for (name, why) in empty {
                println!("  {name}: {why}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The report as text: one line per blocked file, then the count per rule.
pub fn render_report(report: &tufa_policy::Report) -> String {
    let mode = match report.mode {
        tufa_policy::Mode::Enforce => "kept out",
        tufa_policy::Mode::Report => "would be kept out (report mode)",
    };
    let mut out = format!("policy report, updated {}: files {mode}\n", report.updated_at);
    for (step, map) in [
        ("before download", &report.download),
        ("at publish", &report.publish),
    ] {
        for (project, blocked) in map {
            for b in blocked {
                out.push_str(&format!(
                    "  {project}  {}  [{} {step}] {}\n",
                    b.file, b.rule, b.reason
                ));
            }
        }
    }
    let counts = report.counts();
    if counts.is_empty() {
        out.push_str("nothing is blocked\n");
    }
    for (rule, n) in counts {
        out.push_str(&format!("{rule}: {n} file(s)\n"));
    }
    out
}

/// The policy report the last sync stored, if there is a readable one.
pub async fn stored_report(store: &tufa_store::BlobStore) -> Option<tufa_policy::Report> {
    let bytes = store.get_named(tufa_policy::Report::KEY).await.ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// Projects the last policy report says `min_release_age` held files of back.
pub async fn held_back_projects(store: &tufa_store::BlobStore) -> Vec<ProjectName> {
    let Some(report) = stored_report(store).await else {
        return Vec::new();
    };
    report
        .download
        .iter()
        .filter(|(_, blocked)| {
            blocked
                .iter()
                .any(|b| b.rule == tufa_policy::RuleKind::MinReleaseAge)
        })
        .filter_map(|(project, _)| ProjectName::new(project).ok())
        .collect()
}
