//! `tufa serve` and `tufa quickstart`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use tufa_pypi::ProjectName;
use tufa_store::BlobStore;
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
    let store = BlobStore::local(&loaded.blobs_dir)
        .with_context(|| format!("cannot open the blob store at `{}`", loaded.blobs_dir.display()))?;
    let listen = listen.unwrap_or(loaded.config.serve.listen);
    let state = tufa_server::AppState::new(store, loaded.config.serve.limits.clone());
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

/// The small allowlist quickstart mirrors: `httpx` and its whole dependency tree, all pure
/// Python, so a trial is a few megabytes.
pub const QUICKSTART_PROJECTS: &[&str] = &[
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "sniffio",
    "idna",
    "certifi",
    "typing-extensions",
    "exceptiongroup",
];

/// `tufa quickstart`: init `dir` (unless it has a config), sync, serve.
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
        let projects = QUICKSTART_PROJECTS
            .iter()
            .map(|p| ProjectName::new(p))
            .collect::<Result<Vec<_>, _>>()
            .context("quickstart allowlist")?;
        let mut config = Config::new(upstream, Some(projects));
        config.sync.latest_releases = Some(2);
        config.serve.listen = listen;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        std::fs::write(&path, config.render_initial())
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        println!(
            "wrote {} (the newest 2 releases of httpx and its dependencies)",
            path.display()
        );
    }
    let loaded = config::load(&path)?;
    println!("syncing from {} …", loaded.config.upstream);
    let code = crate::sync_cmd::run(&loaded, bar).await?;
    if code != ExitCode::SUCCESS {
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
