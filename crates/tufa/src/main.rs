//! `tufa`: the command-line front of the tufa PyPI mirror.
//!
//! Owns configuration, subcommands, progress display and logging; the work itself lives in
//! the library crates. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.

mod gc_cmd;
mod policy_cmd;
mod progress;
mod rebuild_cmd;
mod serve_cmd;
mod sync_cmd;
mod tuf_client_cmd;
mod verify_cmd;

// The config and `[tuf]` section live in the library (src/lib.rs) so the fuzz targets can use
// them; `crate::config` and `crate::tuf_cmd` keep working for the modules here.
use tufa::{config, tuf_cmd};

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tufa_pypi::ProjectName;
use url::Url;

use crate::config::{Config, LogFormat};

/// jemalloc on Linux, as uv does: with glibc's malloc, memory freed by the blocking pool's
/// threads stayed in their arenas, and a sync's peak RSS grew with the number of projects
/// (138 MiB for a 20,000-project allowlist, 82 MiB with `MALLOC_ARENA_MAX=2`, while the live
/// heap peaked at 36 MiB: heaptrack). jemalloc returns unused pages after a few seconds.
/// Measured in docs/PERFORMANCE.md ("Sync at scale").
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A secure, fast mirror of the Python Package Index.
///
/// tufa syncs projects from an upstream index (PyPI by default) over the PEP 691 JSON API,
/// verifies every file's sha256 while storing it content-addressed, publishes the Simple API
/// pages, signs everything with TUF (PEP 458), and serves it to pip and uv. Try `tufa
/// quickstart`; for a real mirror, `tufa init DIR`, then `tufa --config DIR/tufa.toml sync`
/// and `serve`. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
#[derive(Debug, Parser)]
#[command(name = "tufa", version, about, long_about, propagate_version = true)]
struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "TUFA_CONFIG",
        default_value = "tufa.toml",
        value_name = "PATH"
    )]
    config: PathBuf,
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Less log output: errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Log format on stderr (overrides the config file).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum LeaseAction {
    /// Print the lease object: holder (host, pid, start), since, expiry, token. Exit 0, also
    /// when no writer holds the store.
    Show,
    /// Remove the lease if it still has TOKEN (from `lease show`), so a new writer need not
    /// wait for the ttl. Make sure its holder is gone first (host and pid are shown): a live
    /// holder keeps publishing until its next renewal fails. Exit 1 if there is no lease or it
    /// has another token by now.
    Break {
        /// The lease's token, as `tufa lease show` printed it.
        token: String,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyAction {
    /// Read NAME's upstream page and print, for each file, whether `[policy]` admits it and
    /// the rule and reason (deny entry, allow_only, internal name, upload time against
    /// min_release_age). Nothing is downloaded or changed.
    Explain {
        /// A project, or one release of it: `NAME` or `NAME==VERSION`.
        target: String,
        /// Judge as of this time (RFC 3339, e.g. 2026-12-24T00:00:00Z) instead of now: when
        /// will a held-back file be admitted?
        #[arg(long, value_name = "TIME")]
        at: Option<jiff::Timestamp>,
    },
    /// Everything `[policy]` keeps out (every file, the rule and the reason, then the count
    /// per rule), as the last `tufa sync` recorded it in the store (`policy/report.json`).
    Report {
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum OnlineKeyAction {
    /// Create the key the config names: a new key file at `[tuf] online_key` (its directory is
    /// created, mode 0700), or a key pair inside the `[tuf.online_pkcs11]` token (its private
    /// part never leaves the token). Never replaces an existing key: to rotate, use --next.
    Generate,
    /// Print the key's id and public part (the JSON `tufa-ceremony init --online-key` and
    /// `rotate-root --online-key` take).
    Show,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create DIR/tufa.toml with documented defaults, including `[tuf] online_key =
    /// "keys/online.json"` (or `[tuf.online_pkcs11]`) and the key directory DIR/keys (mode
    /// 0700), and print the next steps: the online key, the key ceremony, the first sync.
    Init {
        /// The directory to create (or reuse, if it has no tufa.toml yet).
        dir: PathBuf,
        /// Simple API root of the upstream index.
        #[arg(long, default_value = config::DEFAULT_UPSTREAM, value_name = "URL")]
        upstream: Url,
        /// A project to mirror (repeatable). Without any, tufa mirrors everything upstream has.
        #[arg(long = "project", value_name = "NAME")]
        projects: Vec<ProjectName>,
        /// Where blobs and the published tree live: file:///path, s3://bucket/prefix,
        /// gs://bucket/prefix, az://container/prefix. Default: DIR/data/store on the local disk.
        /// S3 credentials come from the standard AWS environment (AWS_ACCESS_KEY_ID,
        /// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL, AWS_ALLOW_HTTP).
        #[arg(long, value_name = "URL", value_parser = parse_storage_url)]
        storage: Option<String>,
        /// Make DIR a verifying replica of another PEP 458 mirror (a tufa primary): FILE is
        /// that mirror's first root (1.root.json, obtained out of band) and --upstream its
        /// /simple/ URL. `tufa sync` then copies the primary's signed tree, verifying every
        /// piece through TUF, and republishes its metadata unchanged: the replica holds no
        /// keys, and its clients trust the primary's root.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["dev_keys", "projects", "online_pkcs11_module"])]
        upstream_root: Option<PathBuf>,
        /// Overwrite an existing tufa.toml.
        #[arg(long)]
        force: bool,
        /// Also create INSECURE throw-away TUF keys (root, targets, bins, online) in DIR/keys,
        /// so a trial mirror is signed end to end. Never for production: real offline keys
        /// come from the key ceremony.
        #[arg(long)]
        dev_keys: bool,
        /// Keep the online key in a PKCS#11 token (HSM, YubiKey, SoftHSM2) instead of the file
        /// DIR/keys/online.json: the token's module (shared library). Needs
        /// --online-pkcs11-token and --online-pkcs11-key; writes [tuf.online_pkcs11].
        #[arg(
            long,
            value_name = "PATH",
            requires = "online_pkcs11_token",
            conflicts_with = "dev_keys"
        )]
        online_pkcs11_module: Option<PathBuf>,
        /// The label of the token holding the online key (with --online-pkcs11-module).
        #[arg(long, value_name = "LABEL", requires = "online_pkcs11_key")]
        online_pkcs11_token: Option<String>,
        /// The label of the online key pair in the token (with --online-pkcs11-module).
        /// `tufa online-key generate` creates it; the PIN comes from TUFA_PKCS11_PIN.
        #[arg(long, value_name = "LABEL", requires = "online_pkcs11_module")]
        online_pkcs11_key: Option<String>,
    },
    /// Sync from upstream: the allowlisted projects, or everything changed upstream since the
    /// last run. Resumable and safe to kill at any moment. Exits 1 if anything failed, after
    /// syncing everything else.
    ///
    /// Holds the store's writer lease while it works (see `tufa lease`): exits 1 at once,
    /// naming the holder, when another writer has it, and stops (exit 1) if it loses it.
    Sync,
    /// Serve the published tree: the Simple API (PEP 503/691), files, and PEP 658 metadata.
    /// Stateless: any number of replicas can serve one store.
    Serve {
        /// Address to listen on [default: `serve.listen` from the config, 127.0.0.1:8080].
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// PEM certificate chain; serves HTTPS with --tls-key.
        #[arg(long, value_name = "PATH", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long, value_name = "PATH", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// See it work: create ./tufa-data, sync httpx and its dependencies (newest 2 releases)
    /// from PyPI, and serve them on 127.0.0.1:8080. Re-running reuses ./tufa-data.
    Quickstart {
        /// Where to keep the trial mirror.
        #[arg(long, default_value = "tufa-data", value_name = "DIR")]
        dir: PathBuf,
        /// Index to mirror from.
        #[arg(long, default_value = config::DEFAULT_UPSTREAM, value_name = "URL")]
        upstream: Url,
        /// Address to serve on.
        #[arg(long, default_value = config::DEFAULT_LISTEN, value_name = "ADDR")]
        listen: std::net::SocketAddr,
    },
    /// The online signing key (bin-n, snapshot, timestamp): create it, or show its public
    /// part for the key ceremony (`tufa-ceremony init --online-key PUB.json`). Both print
    /// `online key KEYID`.
    ///
    /// Rotation: `online-key generate --next` creates the next key beside the current one
    /// (`keys/online.next.json`, or the label `<key>.next` in the token) while the mirror keeps
    /// signing with the current one; the ceremony's `rotate-root --online-key` names it; `tufa
    /// import-metadata` then makes it the online key and keeps the old one as
    /// `keys/online.retired-<keyid>.json` (label `<key>.retired-<keyid>`).
    OnlineKey {
        #[command(subcommand)]
        action: OnlineKeyAction,
        /// The next key (for a rotation) instead of the current one.
        #[arg(long, global = true)]
        next: bool,
        /// Also write the public key JSON to this file (for the ceremony's transfer medium).
        #[arg(long, global = true, value_name = "PATH")]
        public_out: Option<PathBuf>,
    },
    /// Import the root chain, targets and bins metadata a key ceremony published
    /// (`tufa-ceremony publish --out DIR`), check them against the mirror's trust chain and
    /// online key, and re-sign every bin, the snapshot and the timestamp.
    ///
    /// The first import prints 1.root.json's sha256 and every role's key ids: check them
    /// against the ceremony log. When the imported root names the next online key (`online-key
    /// generate --next`), the mirror switches to it. An export with nothing new changes
    /// nothing and says so. Exit 1 for anything that does not check out, with nothing changed.
    ImportMetadata {
        /// The ceremony's output directory.
        dir: PathBuf,
        /// Replace TUF metadata made with INSECURE dev keys (`tufa init --dev-keys`) by the
        /// ceremony's trust chain, which starts again at its own 1.root.json: clients must
        /// re-pin it. Refused unless the mirror's metadata was made by dev keys and the config
        /// no longer sets `insecure_dev_keys`. Snapshot, timestamp and bin-n versions keep
        /// rising; the dev chain's newer root files are removed from the tree.
        #[arg(long)]
        replace_dev_metadata: bool,
    },
    /// Accept a changed file. PyPI filenames are immutable, so `tufa sync` refuses a file
    /// whose content (sha256) upstream changed and keeps serving the old one (exit 1). After
    /// checking the change is legitimate, record that exactly this new digest is accepted:
    /// the next sync takes it and forgets the approval; any other digest is still refused.
    AcceptChange {
        /// The project the file belongs to.
        project: ProjectName,
        /// The file's name, as `tufa sync` reported it.
        filename: tufa_pypi::DistFilename,
        /// The new sha256 (hex) to accept, as `tufa sync` reported it.
        #[arg(long, value_name = "HEX")]
        sha256: tufa_pypi::Sha256Digest,
    },
    /// Re-sign the TUF timestamp and snapshot (and bins near expiry) without syncing. Run it
    /// from a timer more often than the timestamp lifetime (default 24 h), e.g. hourly.
    /// Holds the store's writer lease, like sync.
    Refresh,
    /// Re-hash every blob the index references and every published page, walk the TUF chain
    /// and check every signed target; report what is missing or corrupt (exit 1).
    Verify {
        /// Blobs hashed at once.
        #[arg(long, default_value_t = 4)]
        jobs: usize,
        /// Continue an interrupted verification from its checkpoint.
        #[arg(long)]
        resume: bool,
    },
    /// Restore this writer's index from the store alone, e.g. on a new host after the old one
    /// was lost: project files from the published pages, extracted METADATA and TUF targets
    /// from the manifests, and every TUF role's newest version from the metadata files, so the
    /// next publish signs each role above the versions in the store (no version reused, no
    /// rollback for clients).
    ///
    /// Stop every other writer first (the old host's timers or CronJobs). The new index is
    /// built beside the current one and replaces it only when complete. Not restored: the
    /// upstream serial (a full mirror's next sync lists upstream and reads every project's
    /// page once; allowlist mode reads them at every sync anyway), files' upstream URLs (the
    /// next sync records them) and pending `accept-change` approvals (run them again). The
    /// next sync downloads nothing already stored and publishes nothing that did not change.
    ///
    /// Refused when the index already holds projects, unless --force. A manifest or page that
    /// does not verify is named and its project skipped (the next sync fetches it again); a
    /// missing blob is named; both exit 1 after restoring everything else.
    RebuildIndex {
        /// Replace an index that already holds projects.
        #[arg(long)]
        force: bool,
    },
    /// The store's single-writer lease (`lease/writer.json`), which sync, refresh,
    /// import-metadata and rebuild-index hold while they work: show it, or break a dead
    /// writer's. A lease not renewed for `[lease] ttl_secs` is taken over by the next writer
    /// anyway.
    Lease {
        #[command(subcommand)]
        action: LeaseAction,
    },
    /// tufa's TUF client, behind the tuf-conformance client CLI: `init ROOT` stores the trust
    /// anchor in --metadata-dir; `refresh` updates root, timestamp, snapshot and targets from
    /// --metadata-url; `download` also fetches each --target-name from --target-base-url into
    /// --target-dir after verifying it. Exit 0 when everything verified, 1 otherwise (the
    /// error names the attack class: rollback, freeze, bad-signature, hash-mismatch,
    /// target-not-signed). Needs no tufa.toml.
    TufClient(tuf_client_cmd::TufClientArgs),
    /// Delete the blobs nothing references any more: not in the index, not on a published
    /// page, not a target of any unexpired published snapshot (files removed upstream or by
    /// `[policy]`, once the last snapshot listing them expired; old page variants; leftovers).
    /// A dry run unless --apply. Safe while readers serve; holds the writer lease.
    Gc {
        /// Delete (without it, only report what would be deleted).
        #[arg(long)]
        apply: bool,
        /// Keep unreferenced blobs younger than this many seconds.
        #[arg(long, default_value_t = 3600, value_name = "SECS")]
        min_age_secs: u64,
    },
    /// The `[policy]` section: what may enter the mirror.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// A verifying local Simple API for pip and uv in front of a tufa mirror: every page,
    /// `.metadata` and file is checked against the mirror's TUF metadata (from the trusted
    /// root on) before pip or uv sees it. Point pip at http://ADDR/simple/ (docs/CLIENTS.md).
    /// A refusal answers 403 (404 for a target nobody signed) naming the attack class:
    /// rollback, freeze, bad-signature, hash-mismatch, target-not-signed. Needs no tufa.toml.
    Proxy {
        /// The mirror's server root (TUF metadata under URL/tuf/, pages under URL/simple/).
        #[arg(long, value_name = "URL")]
        mirror: Url,
        /// The mirror's first root (1.root.json), obtained out of band: the trust anchor.
        #[arg(long, value_name = "FILE")]
        trusted_root: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3141", value_name = "ADDR")]
        listen: std::net::SocketAddr,
        /// Verified metadata and files [default: $XDG_CACHE_HOME/tufa-proxy or
        /// ~/.cache/tufa-proxy].
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
        /// Seconds one verified view of the mirror is used before its timestamp is fetched
        /// again (new releases appear within this time).
        #[arg(long, default_value_t = 60, value_name = "SECS")]
        refresh_secs: u64,
    },
}

fn main() -> ExitCode {
    tufa::lease_cmd::note_process_start();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let usage = e.downcast_ref::<UsageError>().is_some();
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text the line already holds
/// (library errors often name their source in their own message too).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// A configuration or usage problem (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
struct UsageError(anyhow::Error);

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init {
            dir,
            upstream,
            projects,
            storage,
            upstream_root,
            force,
            dev_keys,
            online_pkcs11_module,
            online_pkcs11_token,
            online_pkcs11_key,
        } => {
            init_logging(cli.verbose, cli.quiet, cli.log_format.unwrap_or_default(), false);
            let projects = (!projects.is_empty()).then_some(projects);
            // clap's `requires` makes the three come together.
            let pkcs11 = match (online_pkcs11_module, online_pkcs11_token, online_pkcs11_key) {
                (Some(module), Some(token), Some(key)) => Some(tuf_cmd::Pkcs11Settings {
                    module,
                    token,
                    key,
                    pin_env: tuf_cmd::DEFAULT_PIN_ENV.to_owned(),
                }),
                _ => None,
            };
            match upstream_root {
                Some(root) => init_replica(&dir, upstream, &root, storage, force),
                None => init(&dir, upstream, projects, storage, force, dev_keys, pkcs11),
            }
        }
        Command::OnlineKey {
            action,
            next,
            public_out,
        } => {
            let loaded = load_config_and_log(&cli.config, cli.verbose, cli.quiet, cli.log_format)?;
            not_on_a_replica(&loaded, "online-key")?;
            match action {
                OnlineKeyAction::Generate => {
                    tuf_cmd::online_key_generate(&loaded, next, public_out.as_deref())
                }
                OnlineKeyAction::Show => tuf_cmd::online_key_show(&loaded, next, public_out.as_deref()),
            }
        }
        Command::ImportMetadata {
            dir,
            replace_dev_metadata,
        } => {
            let loaded = load_config_and_log(&cli.config, cli.verbose, cli.quiet, cli.log_format)?;
            not_on_a_replica(&loaded, "import-metadata")?;
            runtime()?.block_on(tufa::import_cmd::import_metadata(
                &loaded,
                &dir,
                replace_dev_metadata,
            ))
        }
        Command::AcceptChange {
            project,
            filename,
            sha256,
        } => {
            let loaded = load_config_and_log(&cli.config, cli.verbose, cli.quiet, cli.log_format)?;
            not_on_a_replica(&loaded, "accept-change")?;
            runtime()?.block_on(accept_change(&loaded, &project, &filename, &sha256))
        }
        Command::Refresh => {
            let loaded = load_config_and_log(&cli.config, cli.verbose, cli.quiet, cli.log_format)?;
            not_on_a_replica(&loaded, "refresh")?;
            runtime()?.block_on(tuf_cmd::refresh(&loaded))
        }
        Command::Sync => {
            let loaded = load_config(&cli.config)?;
            let fmt = cli.log_format.unwrap_or(loaded.config.log.format);
            let bar = std::io::stderr().is_terminal() && fmt == LogFormat::Text && !cli.quiet;
            init_logging(cli.verbose, cli.quiet, fmt, bar);
            runtime()?.block_on(sync_cmd::run(&loaded, bar))
        }
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
        } => {
            let loaded = load_config_and_log(&cli.config, cli.verbose, cli.quiet, cli.log_format)?;
            let tls = tls_cert
                .zip(tls_key)
                .map(|(cert, key)| serve_cmd::TlsArgs { cert, key });
            runtime()?.block_on(serve_cmd::run(&loaded, listen, tls))
        }
        Command::Quickstart {
            dir,
            upstream,
            listen,
        } => {
            let bar = std::io::stderr().is_terminal() && !cli.quiet;
            init_logging(cli.verbose, cli.quiet, cli.log_format.unwrap_or_default(), bar);
            runtime()?.block_on(serve_cmd::quickstart(&dir, upstream, listen, bar))
        }
        Command::Verify { jobs, resume } => {
            let loaded = load_config_and_log(&cli.config, cli.verbose, cli.quiet, cli.log_format)?;
            runtime()?.block_on(verify_cmd::run(&loaded, jobs.max(1), resume))
        }
        Command::RebuildIndex { force } => {
            let loaded = load_config(&cli.config)?;
            not_on_a_replica(&loaded, "rebuild-index")?;
            let fmt = cli.log_format.unwrap_or(loaded.config.log.format);
            let bar = std::io::stderr().is_terminal() && fmt == LogFormat::Text && !cli.quiet;
            init_logging(cli.verbose, cli.quiet, fmt, bar);
            // The lease keeps every other writer out while the index is read back from the
            // store (rebuild-index itself writes only the local index).
            runtime()?.block_on(async {
                let store = loaded.open_store_reachable().await?;
                tufa::lease_cmd::as_writer(&loaded, &store, |_| rebuild_cmd::run(&loaded, force, bar)).await
            })
        }
        Command::Proxy {
            mirror,
            trusted_root,
            listen,
            cache,
            refresh_secs,
        } => {
            init_logging(cli.verbose, cli.quiet, cli.log_format.unwrap_or_default(), false);
            let cache = match cache {
                Some(dir) => dir,
                None => default_proxy_cache().map_err(UsageError)?,
            };
            let proxy = tufa_proxy::Proxy::new(tufa_proxy::ProxyOptions {
                mirror,
                trusted_root,
                cache,
                refresh_interval: std::time::Duration::from_secs(refresh_secs),
                http: tufa_client::HttpOptions::default(),
            })
            .map_err(|e| UsageError(e.into()))?;
            runtime()?.block_on(tufa_proxy::run(proxy, listen))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Gc { apply, min_age_secs } => {
            let loaded = load_config_and_log(&cli.config, cli.verbose, cli.quiet, cli.log_format)?;
            runtime()?.block_on(gc_cmd::run(
                &loaded,
                apply,
                std::time::Duration::from_secs(min_age_secs),
            ))
        }
        Command::Policy { action } => {
            let loaded = load_config_and_log(&cli.config, cli.verbose, cli.quiet, cli.log_format)?;
            match action {
                PolicyAction::Explain { target, at } => {
                    policy_cmd::parse_target(&target).map_err(UsageError)?;
                    runtime()?.block_on(policy_cmd::explain(&loaded, &target, at))
                }
                PolicyAction::Report { json } => runtime()?.block_on(policy_cmd::report(&loaded, json)),
            }
        }
        Command::TufClient(args) => {
            init_logging(cli.verbose, cli.quiet, cli.log_format.unwrap_or_default(), false);
            runtime()?.block_on(tuf_client_cmd::run(args))
        }
        Command::Lease { action } => {
            let loaded = load_config_and_log(&cli.config, cli.verbose, cli.quiet, cli.log_format)?;
            match action {
                LeaseAction::Show => runtime()?.block_on(tufa::lease_cmd::show(&loaded)),
                LeaseAction::Break { token } => {
                    runtime()?.block_on(tufa::lease_cmd::break_cmd(&loaded, &token))
                }
            }
        }
    }
}

/// `tufa accept-change`: records the operator's approval of one changed file's new digest.
async fn accept_change(
    loaded: &config::Loaded,
    project: &ProjectName,
    filename: &tufa_pypi::DistFilename,
    sha256: &tufa_pypi::Sha256Digest,
) -> anyhow::Result<ExitCode> {
    let index = loaded.open_index().await?;
    let (p, f, d) = (project.clone(), filename.clone(), *sha256);
    let current = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let current = index
            .files(&p)?
            .into_iter()
            .find(|r| r.filename == f)
            .map(|r| r.sha256);
        if current.is_some_and(|c| c != d) {
            index.approve_change(&p, &f, &d)?;
        }
        Ok(current)
    })
    .await??;
    match current {
        None => anyhow::bail!("the index has no file `{filename}` in project `{project}`"),
        Some(c) if c == *sha256 => {
            anyhow::bail!("`{filename}` already has sha256 {sha256}: there is no change to accept")
        }
        Some(c) => {
            tracing::warn!(project = %project, file = %filename, old = %c, new = %sha256, "operator accepted a changed file");
            println!(
                "accepted: the next sync replaces `{filename}` of `{project}` (sha256 {c}) with sha256 {sha256}, and only that digest"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads the config and starts logging as it (or the command line) asks, without a bar.
fn load_config_and_log(
    path: &std::path::Path,
    verbose: u8,
    quiet: bool,
    log_format: Option<LogFormat>,
) -> anyhow::Result<config::Loaded> {
    let loaded = load_config(path)?;
    init_logging(
        verbose,
        quiet,
        log_format.unwrap_or(loaded.config.log.format),
        false,
    );
    Ok(loaded)
}

fn load_config(path: &std::path::Path) -> anyhow::Result<config::Loaded> {
    config::load(path).map_err(|e| UsageError(e).into())
}

/// `$XDG_CACHE_HOME/tufa-proxy`, else `$HOME/.cache/tufa-proxy`.
fn default_proxy_cache() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("tufa-proxy"));
    }
    let home = std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .context("neither XDG_CACHE_HOME nor HOME is set: pass --cache DIR")?;
    Ok(PathBuf::from(home).join(".cache").join("tufa-proxy"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `tufa init`: writes DIR/tufa.toml and, for a key file, creates DIR/keys (mode 0700).
/// A bad option value or an existing tufa.toml is a usage error (exit 2); failing to write is
/// exit 1.
/// `--storage URL`: checked now, so a typo is a usage error before anything is written.
fn parse_storage_url(url: &str) -> Result<String, String> {
    tufa_store::StoreLocation::parse(url)
        .map(|_| url.to_owned())
        .map_err(|e| e.to_string())
}

fn init(
    dir: &std::path::Path,
    upstream: Url,
    projects: Option<Vec<ProjectName>>,
    storage: Option<String>,
    force: bool,
    dev_keys: bool,
    pkcs11: Option<tuf_cmd::Pkcs11Settings>,
) -> anyhow::Result<ExitCode> {
    let mut config = Config::new(upstream, projects);
    config.storage.url = storage;
    let pkcs11_token = pkcs11.as_ref().map(|p| p.token.clone());
    match pkcs11 {
        Some(p) => config.tuf.online_pkcs11 = Some(p),
        None => config.tuf.online_key = Some(PathBuf::from("keys/online.json")),
    }
    if dev_keys {
        config.tuf.insecure_dev_keys = Some(PathBuf::from("keys"));
    }
    config.validate().map_err(UsageError)?;
    let path = new_config_path(dir, force)?;
    let keys = dir.join("keys");
    if dev_keys {
        tuf_cmd::write_dev_keys(&keys)?;
        eprintln!(
            "warning: wrote INSECURE development TUF keys to {} (trials only; production offline keys come from a key ceremony)",
            keys.display()
        );
    } else if config.tuf.online_key.is_some() {
        tufa::online_key::create_private_dir(&keys)?;
    }
    std::fs::write(&path, config.render_initial())
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    println!("wrote {}", path.display());
    let cmd = |args: &str| config::command_for(&path, args);
    if dev_keys {
        println!("next: {}", cmd("sync"));
        return Ok(ExitCode::SUCCESS);
    }
    println!("next steps:");
    match pkcs11_token {
        Some(token) => println!(
            "  1. {}   (with the token's user PIN in TUFA_PKCS11_PIN: the key pair is created inside token `{token}`)",
            cmd("online-key generate --public-out online.pub.json")
        ),
        None => println!(
            "  1. {}   (the key goes to {})",
            cmd("online-key generate --public-out online.pub.json"),
            keys.join("online.json").display()
        ),
    }
    println!(
        "     take online.pub.json to the key ceremony (docs/KEY-CEREMONY.md), then import what it publishes: {}",
        cmd("import-metadata DIR")
    );
    println!(
        "  2. {}   (until the import, pages are published unsigned)",
        cmd("sync")
    );
    Ok(ExitCode::SUCCESS)
}

/// Logs go to stderr (stdout is for command output). With a progress bar on a terminal the
/// default level is `warn` so lines do not tear the bar; `-v` brings info back.
/// `tufa init DIR --upstream URL --upstream-root FILE`: a verifying replica. The root is
/// checked (a root signed by its own threshold) and copied to DIR/upstream-root.json.
fn init_replica(
    dir: &std::path::Path,
    upstream: Url,
    root: &std::path::Path,
    storage: Option<String>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let bytes =
        std::fs::read(root).with_context(|| format!("cannot read the upstream root `{}`", root.display()))?;
    let parsed = tufa_tuf::verify_trusted_root(&root.display().to_string(), &bytes)
        .map_err(|e| UsageError(anyhow::anyhow!("the upstream root is not usable: {e}")))?;
    let mut config = Config::new(upstream, None);
    config.storage.url = storage;
    config.upstream_root = Some(PathBuf::from(REPLICA_ROOT_FILE));
    config.validate().map_err(UsageError)?;
    let path = new_config_path(dir, force)?;
    let copy = dir.join(REPLICA_ROOT_FILE);
    std::fs::write(&copy, &bytes).with_context(|| format!("cannot write `{}`", copy.display()))?;
    std::fs::write(&path, config.render_initial())
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    println!("wrote {}", path.display());
    println!(
        "verifying replica of {} (upstream root v{}, sha256 {}: check it against the primary's published digest)",
        tufa_sync::redact(&config.upstream),
        parsed.metadata.signed.version,
        tufa_pypi::Sha256Digest::of(&bytes)
    );
    println!("next: {}", config::command_for(&path, "sync"));
    Ok(ExitCode::SUCCESS)
}

/// A verifying replica (`upstream_root`) is written by `tufa sync` alone: it republishes its
/// upstream's signed metadata and has no keys, index or approvals of its own (exit 2).
fn not_on_a_replica(loaded: &config::Loaded, command: &str) -> anyhow::Result<()> {
    if loaded.config.upstream_root.is_some() {
        return Err(UsageError(anyhow::anyhow!(
            "`tufa {command}` does not apply to a verifying replica (`upstream_root` in {}): it copies its upstream's signed tree; run `{}` to update it",
            loaded.path.display(),
            loaded.command("sync")
        ))
        .into());
    }
    Ok(())
}

/// `DIR/tufa.toml` for `tufa init`, with DIR created: an existing file is a usage error
/// unless `force`.
fn new_config_path(dir: &std::path::Path, force: bool) -> anyhow::Result<PathBuf> {
    let path = dir.join("tufa.toml");
    if path.exists() && !force {
        return Err(UsageError(anyhow::anyhow!(
            "`{}` already exists (use --force to overwrite)",
            path.display()
        ))
        .into());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    Ok(path)
}

/// Where `tufa init --upstream-root` copies the upstream's root.
const REPLICA_ROOT_FILE: &str = "upstream-root.json";

fn init_logging(verbose: u8, quiet: bool, format: LogFormat, bar: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose, bar) {
        (true, _, _) => "error",
        (false, 0, true) => "warn",
        (false, 0, false) => "info",
        (false, 1, _) => "debug",
        _ => "trace",
    };
    // cryptoki logs every mechanism a token lists that it has no name for at ERROR level (dozens
    // of lines on SoftHSM and real HSMs, on every signing run); tufa reports token errors itself.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!(
            "warn,cryptoki=off,tufa={level},tufa_sync={level},tufa_store={level},tufa_index={level},tufa_publish={level},tufa_server={level},tufa_client={level},tufa_proxy={level},tufa_replica={level}"
        )));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
}
