//! `tufa serve` and `tufa quickstart`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use tufa_pypi::ProjectName;
use url::Url;

use crate::config::{self, Config, Loaded};

/// TLS certificate and key files given on the command line.
#[derive(Debug, Clone)]
pub struct TlsArgs {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub async fn run(
    loaded: &Loaded,
    listen: Option<SocketAddr>,
    tls: Option<TlsArgs>,
) -> anyhow::Result<ExitCode> {
    let store = loaded.open_store_reachable().await?;
    let listen = listen.unwrap_or(loaded.config.serve.listen);
    let state = tufa_server::AppState::with_options(
        store,
        loaded.config.serve.limits.clone(),
        tufa_server::ReaderOptions {
            poll_interval: std::time::Duration::from_millis(loaded.config.serve.poll_interval_ms),
            file_verification: loaded.config.serve.file_verification,
        },
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // One line on stdout that scripts (and the e2e tests) read to find the port.
    println!("serving {scheme}://{addr}/simple/");
    let _ = std::io::stdout().flush();
    tracing::info!(%addr, tls = tls.is_some(), "listening");
    let tls = tls.map(|t| tufa_server::TlsFiles {
        cert: t.cert,
        key: t.key,
    });
    tufa_server::serve(listener, state, tls, tufa_server::shutdown_signal()).await?;
    tracing::info!("shut down");
    Ok(ExitCode::SUCCESS)
}

/// What quickstart mirrors: `httpx`, plus (found by reading the synced wheels' METADATA)
/// every project it depends on.
pub const QUICKSTART_ROOTS: &[&str] = &["httpx"];
/// Releases per project quickstart keeps: a trial mirror of a few megabytes.
const QUICKSTART_RELEASES: usize = 2;
/// Bound on the dependency closure, so a surprising upstream cannot grow the trial unboundedly.
const QUICKSTART_MAX_PROJECTS: usize = 40;

/// `tufa quickstart`: init `dir` (unless it has a config), sync the allowlist and its
/// dependency closure, serve.
pub async fn quickstart(
    dir: &Path,
    upstream: Url,
    listen: SocketAddr,
    bar: bool,
) -> anyhow::Result<ExitCode> {
    let path = dir.join("tufa.toml");
    if path.exists() {
        println!("using existing {}", path.display());
    } else {
        let projects = QUICKSTART_ROOTS
            .iter()
            .map(|p| ProjectName::new(p))
            .collect::<Result<Vec<_>, _>>()
            .context("quickstart allowlist")?;
        let mut config = Config::new(upstream, Some(projects));
        config.sync.latest_releases = Some(QUICKSTART_RELEASES);
        config.sync.follow_dependencies = true;
        config.sync.max_projects = QUICKSTART_MAX_PROJECTS;
        config.serve.listen = listen;
        config.tuf.online_key = Some(PathBuf::from("keys/online.json"));
        config.tuf.insecure_dev_keys = Some(PathBuf::from("keys"));
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        crate::tuf_cmd::write_dev_keys(&dir.join("keys"))?;
        eprintln!(
            "warning: signing with INSECURE development TUF keys in {} (trials only)",
            dir.join("keys").display()
        );
        write_config(&path, &config)?;
        println!(
            "wrote {} (the newest {QUICKSTART_RELEASES} releases of {} and their dependencies)",
            path.display(),
            QUICKSTART_ROOTS.join(", ")
        );
    }
    let loaded = config::load(&path)?;
    println!(
        "syncing {} projects and their dependencies from {} …",
        loaded.config.projects.as_ref().map_or(0, Vec::len),
        tufa_sync::redact(&loaded.config.upstream)
    );
    let ok = crate::sync_cmd::run(&loaded, bar).await? == ExitCode::SUCCESS;
    if !ok {
        eprintln!("warning: some files failed to sync (listed above); serving what did");
    }
    println!();
    println!("try it, in another terminal:");
    println!(
        "  python3 -m venv /tmp/tufa-try && /tmp/tufa-try/bin/pip install --index-url http://{listen}/simple/ httpx"
    );
    println!("  uv pip install --index-url http://{listen}/simple/ httpx");
    println!();
    run(&loaded, Some(listen), None).await
}

fn write_config(path: &Path, config: &Config) -> anyhow::Result<()> {
    std::fs::write(path, config.render_initial())
        .with_context(|| format!("cannot write `{}`", path.display()))
}
