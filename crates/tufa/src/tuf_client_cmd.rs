//! `tufa tuf-client`: the tuf-conformance client-under-test CLI over [`tufa_client::Updater`].
//! The protocol (../shared/tuf-conformance/CLIENT-CLI.md): `--metadata-dir D init ROOT`,
//! `--metadata-dir D --metadata-url U refresh`, and `… --target-name T… --target-base-url B
//! --target-dir O download`; exit 0 or 1.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use tufa_client::{Http, HttpOptions, Updater, UpdaterConfig, is_cached, target_file, write_atomic};
use url::Url;

#[derive(Debug, clap::Args)]
pub struct TufClientArgs {
    /// The client's trusted metadata (root.json, timestamp.json, …, non-versioned names).
    #[arg(long, value_name = "DIR")]
    metadata_dir: PathBuf,
    /// The repository's metadata URL (where `1.root.json` and `timestamp.json` are).
    #[arg(long, value_name = "URL")]
    metadata_url: Option<Url>,
    /// A target path to download (repeatable; processed in order, stops at the first failure).
    #[arg(long = "target-name", value_name = "PATH")]
    target_names: Vec<String>,
    /// The repository's targets URL.
    #[arg(long, value_name = "URL")]
    target_base_url: Option<Url>,
    /// Where verified targets are written (each under its path, percent-encoded).
    #[arg(long, value_name = "DIR")]
    target_dir: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Store ROOT as the trust anchor (no request is made).
    Init {
        /// The repository's first (or any trusted) root.json.
        trusted_root: PathBuf,
    },
    /// Update the trusted metadata from --metadata-url.
    Refresh,
    /// Refresh, then download and verify every --target-name.
    Download,
}

fn required<'a, T>(value: &'a Option<T>, flag: &str) -> anyhow::Result<&'a T> {
    value
        .as_ref()
        .with_context(|| format!("{flag} is required for this command"))
}

pub async fn run(args: TufClientArgs) -> anyhow::Result<ExitCode> {
    match &args.action {
        Action::Init { trusted_root } => {
            let bytes = std::fs::read(trusted_root)
                .with_context(|| format!("cannot read the trusted root `{}`", trusted_root.display()))?;
            std::fs::create_dir_all(&args.metadata_dir)
                .with_context(|| format!("cannot create `{}`", args.metadata_dir.display()))?;
            write_atomic(&args.metadata_dir.join("root.json"), &bytes)?;
            println!(
                "tufa tuf-client: trust anchor stored in {}",
                args.metadata_dir.display()
            );
        }
        Action::Refresh => {
            let mut updater = updater(&args)?;
            updater.refresh().await?;
            let root = updater.trusted().root().version;
            println!("tufa tuf-client: refreshed (root v{root})");
        }
        Action::Download => {
            let base = required(&args.target_base_url, "--target-base-url")?;
            let dir = required(&args.target_dir, "--target-dir")?;
            if args.target_names.is_empty() {
                anyhow::bail!("download needs at least one --target-name");
            }
            let mut updater = updater(&args)?;
            for name in &args.target_names {
                let info = updater.target_info(name).await?;
                let file = target_file(dir, name);
                if is_cached(&file, name, &info) {
                    println!("tufa tuf-client: `{name}` is already downloaded");
                    continue;
                }
                let bytes = updater.download_target(base, name, &info).await?;
                write_atomic(&file, &bytes)?;
                println!("tufa tuf-client: downloaded `{name}` ({} bytes)", bytes.len());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn updater(args: &TufClientArgs) -> anyhow::Result<Updater> {
    let url = required(&args.metadata_url, "--metadata-url")?;
    let http = Http::new(&HttpOptions::default())?;
    Ok(Updater::new(
        &args.metadata_dir,
        url,
        http,
        UpdaterConfig::default(),
    )?)
}
