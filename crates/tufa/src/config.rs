//! `tufa.toml`: the one configuration file, with environment overrides.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use tufa_pypi::ProjectName;
use tufa_sync::{Concurrency, Limits};
use url::Url;

pub const DEFAULT_UPSTREAM: &str = "https://pypi.org/simple/";

/// The whole configuration file. Unknown keys are errors, so a typo never silently does
/// nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Simple API root of the upstream index.
    #[serde(default = "default_upstream")]
    pub upstream: Url,
    /// XML-RPC endpoint for the changelog (full mode). Default: `/pypi` on the upstream host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmlrpc: Option<Url>,
    /// Verifying replica: the upstream is another PEP 458 mirror, and this is its first root
    /// (path relative to the config file). `tufa sync` then copies the upstream's signed tree,
    /// verifying everything through TUF, and republishes its metadata unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_root: Option<PathBuf>,
    /// Allowlist: sync exactly these projects. Absent: mirror everything upstream has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projects: Option<Vec<ProjectName>>,
    /// Requirements files (pip format, relative to this file) whose projects join the
    /// allowlist; their version specifiers and `--hash` pins limit what is mirrored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<PathBuf>,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub sync: Sync,
    #[serde(default)]
    pub serve: Serve,
    #[serde(default)]
    pub tuf: crate::tuf_cmd::TufConfig,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub lease: crate::lease_cmd::LeaseConfig,
    /// What may enter the mirror (`tufa-policy`).
    #[serde(default)]
    pub policy: tufa_policy::PolicyConfig,
}

fn default_upstream() -> Url {
    #[allow(clippy::expect_used)]
    Url::parse(DEFAULT_UPSTREAM).expect("the default upstream is a valid URL")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// Where blobs and the published tree live: `file:///path`, `s3://bucket/prefix`,
    /// `gs://bucket/prefix`, `az://container/prefix` or `memory://`. Absent: the local
    /// directory `blobs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Directory of a local store, relative to the config file's directory (when `url` is
    /// absent).
    #[serde(default = "default_blobs")]
    pub blobs: PathBuf,
    /// S3-compatible (or Azure) endpoint; overrides `AWS_ENDPOINT_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// S3 region; overrides `AWS_REGION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Allow a plain-HTTP endpoint; overrides `AWS_ALLOW_HTTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_http: Option<bool>,
    /// The writer's redb index file. Relative to the config file's directory. Readers
    /// (`tufa serve`) need none.
    #[serde(default = "default_index")]
    pub index: PathBuf,
}

fn default_blobs() -> PathBuf {
    PathBuf::from("data/store")
}
fn default_index() -> PathBuf {
    PathBuf::from("data/index.redb")
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            url: None,
            blobs: default_blobs(),
            endpoint: None,
            region: None,
            allow_http: None,
            index: default_index(),
        }
    }
}

impl Storage {
    /// Where the store is: `url` when set, else the `blobs` directory under `base`.
    pub fn location(&self, base: &Path) -> anyhow::Result<tufa_store::StoreLocation> {
        match &self.url {
            Some(url) => {
                if self.blobs != default_blobs() {
                    bail!("storage.url and storage.blobs both name the store: keep one");
                }
                Ok(tufa_store::StoreLocation::parse(url)?)
            }
            None => Ok(tufa_store::StoreLocation::File(base.join(&self.blobs))),
        }
    }

    pub fn cloud_options(&self) -> tufa_store::CloudOptions {
        tufa_store::CloudOptions {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            allow_http: self.allow_http,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sync {
    /// Mirror only the newest N releases of each project. Absent: every release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_releases: Option<usize>,
    /// Hosts files may be downloaded from besides the upstream's (`host` or `host:port`).
    #[serde(default = "default_file_hosts")]
    pub file_hosts: Vec<String>,
    /// Let host names resolve to private, loopback and link-local addresses.
    #[serde(default)]
    pub allow_private_addresses: bool,
    #[serde(default)]
    pub concurrency: Concurrency,
    #[serde(default)]
    pub limits: Limits,
    /// Also mirror what the allowlisted projects need: `Requires-Dist` of their wheels'
    /// METADATA (and of sdists' PKG-INFO where reliable), transitively; a dependency needed
    /// only through an extra is followed when something asks for that extra.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub follow_dependencies: bool,
    /// Most projects the allowlist grows to by following dependencies.
    #[serde(
        default = "default_max_followed",
        skip_serializing_if = "is_default_max_followed"
    )]
    pub max_projects: usize,
    /// Where the organisation installs, as PEP 508 markers (uv's `environments`): a
    /// conditional dependency is followed only if its marker can hold in one of them. Empty:
    /// every conditional dependency is followed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
}

impl Sync {
    /// `environments`, parsed; a bad marker is named.
    pub fn parse_environments(&self) -> anyhow::Result<Vec<pep508_rs::MarkerTree>> {
        self.environments
            .iter()
            .map(|text| {
                tufa_pypi::metadata::parse_marker(text)
                    .map_err(|e| anyhow::anyhow!("sync.environments: `{text}` is not a PEP 508 marker: {e}"))
            })
            .collect()
    }
}

fn default_max_followed() -> usize {
    5000
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_default_max_followed(n: &usize) -> bool {
    *n == default_max_followed()
}

fn default_file_hosts() -> Vec<String> {
    tufa_sync::DEFAULT_FILE_HOSTS
        .iter()
        .map(|h| (*h).to_owned())
        .collect()
}

impl Default for Sync {
    fn default() -> Self {
        Self {
            latest_releases: None,
            file_hosts: default_file_hosts(),
            allow_private_addresses: false,
            concurrency: Concurrency::default(),
            limits: Limits::default(),
            follow_dependencies: false,
            max_projects: default_max_followed(),
            environments: Vec::new(),
        }
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Serve {
    /// Address `tufa serve` listens on (overridden by `--listen`).
    #[serde(default = "default_listen")]
    pub listen: std::net::SocketAddr,
    /// How often (ms) a reader checks the writer's publish pointer; between checks it answers
    /// from memory. 0: read the store on every request.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How often a distribution file on the local disk is hashed when downloaded:
    /// `every-request` (default) or `once-per-file` (again only when the file changed on disk).
    #[serde(default)]
    pub file_verification: tufa_server::FileVerification,
    #[serde(default)]
    pub limits: tufa_server::ServerLimits,
}

pub const DEFAULT_POLL_INTERVAL_MS: u64 = 2000;

fn default_poll_interval_ms() -> u64 {
    DEFAULT_POLL_INTERVAL_MS
}

fn default_listen() -> std::net::SocketAddr {
    #[allow(clippy::expect_used)]
    DEFAULT_LISTEN
        .parse()
        .expect("the default listen address is valid")
}

impl Default for Serve {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
            file_verification: tufa_server::FileVerification::default(),
            limits: tufa_server::ServerLimits::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    #[serde(default)]
    pub format: LogFormat,
}

/// A loaded configuration with paths made absolute.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The config file.
    pub path: PathBuf,
    /// Its directory: relative paths in the config are relative to it.
    pub base_dir: PathBuf,
    /// Where the store is (`[storage] url`, or the `blobs` directory made absolute).
    pub store_location: tufa_store::StoreLocation,
    pub index_path: PathBuf,
    /// The projects `requirements` files name, with their pins and extras (read at load).
    pub requirements: std::collections::BTreeMap<ProjectName, crate::requirements::Listed>,
    /// `[sync] environments`, parsed.
    pub environments: Vec<pep508_rs::MarkerTree>,
}

impl Loaded {
    /// The allowlist: `projects` and every project the requirements files name. `None`: a
    /// full mirror.
    pub fn allowlist(&self) -> Option<Vec<ProjectName>> {
        if self.config.projects.is_none() && self.requirements.is_empty() {
            return None;
        }
        Some(self.roots().into_keys().collect())
    }

    /// The version and hash pins of the requirements files.
    pub fn pins(&self) -> std::collections::BTreeMap<ProjectName, tufa_sync::Pins> {
        self.requirements
            .iter()
            .map(|(name, listed)| (name.clone(), listed.pins.clone()))
            .collect()
    }

    /// The listed projects, each with where it is listed and the extras asked of it.
    pub fn roots(&self) -> std::collections::BTreeMap<ProjectName, crate::deps::Root> {
        let mut roots: std::collections::BTreeMap<ProjectName, crate::deps::Root> = self
            .requirements
            .iter()
            .map(|(name, listed)| {
                let root = crate::deps::Root {
                    sources: listed.sources.clone(),
                    extras: listed.extras.clone(),
                };
                (name.clone(), root)
            })
            .collect();
        for name in self.config.projects.iter().flatten() {
            let sources = &mut roots.entry(name.clone()).or_default().sources;
            let file = self.path.file_name().map_or_else(
                || self.path.display().to_string(),
                |f| f.to_string_lossy().into_owned(),
            );
            sources.insert(0, format!("`projects` in {file}"));
        }
        roots
    }
}

impl Loaded {
    /// `[policy]` with its OSV dump read in (relative paths against the config's directory).
    /// Records that could not be read are logged, once, as a warning.
    pub fn load_policy(&self) -> anyhow::Result<tufa_policy::Policy> {
        let (policy, unreadable) = tufa_policy::Policy::load(&self.config.policy, &self.base_dir)?;
        if let Some(first) = unreadable.first() {
            tracing::warn!(
                unreadable = unreadable.len(),
                first = %first,
                "some OSV records could not be read and were skipped"
            );
        }
        Ok(policy)
    }

    /// The blob store the config names.
    pub fn open_store(&self) -> anyhow::Result<tufa_store::BlobStore> {
        tufa_store::BlobStore::open(&self.store_location, &self.config.storage.cloud_options())
            .with_context(|| format!("cannot open the store {}", self.store_location))
    }

    /// The store, checked to answer: an unreachable endpoint, a missing bucket or refused
    /// credentials are one error now rather than a failure in the middle of the work.
    pub async fn open_store_reachable(&self) -> anyhow::Result<tufa_store::BlobStore> {
        let store = self.open_store()?;
        store.probe().await?;
        Ok(store)
    }

    /// `tufa --config <this config> ARGS`: how every message names a command to run, so it
    /// can be pasted as it is from any directory.
    pub fn command(&self, args: &str) -> String {
        command_for(&self.path, args)
    }

    /// The index the config names (created when missing), opened off the async reactor.
    pub async fn open_index(&self) -> anyhow::Result<tufa_index::Index> {
        let path = self.index_path.clone();
        Ok(tokio::task::spawn_blocking(move || tufa_index::Index::open(&path)).await??)
    }
}

/// Environment variables that override the file (documented in README.md).
pub const ENV_UPSTREAM: &str = "TUFA_UPSTREAM";
pub const ENV_PROJECTS: &str = "TUFA_PROJECTS";
pub const ENV_LOG_FORMAT: &str = "TUFA_LOG_FORMAT";

impl Config {
    pub fn new(upstream: Url, projects: Option<Vec<ProjectName>>) -> Self {
        Self {
            upstream,
            xmlrpc: None,
            upstream_root: None,
            projects,
            requirements: Vec::new(),
            storage: Storage::default(),
            sync: Sync::default(),
            serve: Serve::default(),
            tuf: crate::tuf_cmd::TufConfig::default(),
            log: Log::default(),
            lease: crate::lease_cmd::LeaseConfig::default(),
            policy: tufa_policy::PolicyConfig::default(),
        }
    }

    /// The `[policy]` section, checked.
    pub fn policy(&self) -> anyhow::Result<tufa_policy::Policy> {
        Ok(tufa_policy::Policy::from_config(&self.policy)?)
    }

    /// Parses TOML text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> anyhow::Result<Self> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            // One line: file, line number, the offending line, toml's message.
            let start = e.span().map(|s| s.start.min(text.len()));
            match start {
                Some(start) => {
                    let line_no = text[..start].matches('\n').count() + 1;
                    let line: String = text
                        .lines()
                        .nth(line_no - 1)
                        .unwrap_or("")
                        .trim()
                        .chars()
                        .take(80)
                        .collect();
                    anyhow::anyhow!(
                        "{}:{line_no}: `{line}`: {}",
                        origin.display(),
                        e.message().trim_end()
                    )
                }
                None => anyhow::anyhow!("{}: {}", origin.display(), e.message().trim_end()),
            }
        })
    }

    /// Applies `TUFA_*` environment overrides.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(u) = get(ENV_UPSTREAM) {
            self.upstream = Url::parse(&u).with_context(|| format!("{ENV_UPSTREAM}=`{u}` is not a URL"))?;
        }
        if let Some(list) = get(ENV_PROJECTS) {
            let names = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| ProjectName::new(s).with_context(|| format!("{ENV_PROJECTS}: `{s}`")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            self.projects = Some(names);
        }
        if let Some(f) = get(ENV_LOG_FORMAT) {
            self.log.format = match f.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => bail!("{ENV_LOG_FORMAT}=`{other}`: expected `text` or `json`"),
            };
        }
        Ok(())
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if !matches!(self.upstream.scheme(), "http" | "https") {
            bail!(
                "upstream `{}` must be an http(s) URL",
                tufa_sync::redact(&self.upstream)
            );
        }
        tufa_sync::HostPolicy::new(
            &self.upstream,
            self.xmlrpc.as_ref(),
            &self.sync.file_hosts,
            self.sync.allow_private_addresses,
        )?;
        let c = &self.sync.concurrency;
        for (key, value) in [
            ("projects", c.projects),
            ("downloads", c.downloads),
            ("publish", c.publish),
        ] {
            if value == 0 {
                bail!("sync.concurrency.{key} = 0: it must be at least 1");
            }
        }
        if self.upstream_root.is_some() {
            self.validate_replica()?;
        }
        self.policy()?;
        if self.sync.follow_dependencies && self.projects.is_none() && self.requirements.is_empty() {
            bail!(
                "sync.follow_dependencies needs `projects` or `requirements` (a full mirror has every dependency already)"
            );
        }
        if self.sync.max_projects == 0 {
            bail!("sync.max_projects = 0: it must be at least 1");
        }
        self.tuf.validate()?;
        self.serve.limits.validate()?;
        self.lease.validate()?;
        if self.sync.latest_releases == Some(0) {
            bail!("sync.latest_releases must be at least 1 (remove it to mirror every release)");
        }
        if let Some(p) = &self.projects
            && p.is_empty()
        {
            bail!("`projects` is empty: list projects to mirror, or remove the key to mirror everything");
        }
        Ok(())
    }

    /// A verifying replica copies everything its upstream signs and holds no keys.
    fn validate_replica(&self) -> anyhow::Result<()> {
        if self.projects.is_some() {
            bail!(
                "`projects` with `upstream_root`: a verifying replica copies everything its upstream signs; remove `projects`"
            );
        }
        let t = &self.tuf;
        if t.online_key.is_some() || t.online_pkcs11.is_some() || t.insecure_dev_keys.is_some() {
            bail!(
                "[tuf] keys with `upstream_root`: a verifying replica republishes its upstream's signed metadata and holds no keys; remove them from [tuf]"
            );
        }
        self.replica_primary()?;
        Ok(())
    }

    /// A replica's upstream server root: `upstream` without its final `simple/`.
    pub fn replica_primary(&self) -> anyhow::Result<Url> {
        let path = self.upstream.path();
        let Some(root) = path
            .strip_suffix("simple/")
            .or_else(|| path.strip_suffix("simple"))
        else {
            bail!(
                "upstream `{}` must be the upstream mirror's Simple API root, ending in /simple/ (its TUF metadata is then at /tuf/)",
                tufa_sync::redact(&self.upstream)
            );
        };
        let mut url = self.upstream.clone();
        url.set_path(root);
        url.set_query(None);
        Ok(url)
    }

    /// The file `tufa init` writes: every key shown, documented, defaults commented out.
    pub fn render_initial(&self) -> String {
        let projects = match &self.projects {
            Some(p) => {
                let items: Vec<String> = p.iter().map(|n| format!("\"{n}\"")).collect();
                format!("projects = [{}]", items.join(", "))
            }
            None => "# projects = [\"requests\", \"idna\"]".to_owned(),
        };
        let l = Limits::default();
        let c = Concurrency::default();
        format!(
            r#"# tufa configuration. Every key is optional; commented values are the defaults.
# Environment overrides: TUFA_UPSTREAM, TUFA_PROJECTS (comma-separated), TUFA_LOG_FORMAT.

# Simple API root of the index to mirror.
upstream = {upstream}
{upstream_root}# XML-RPC changelog endpoint used by full mirrors (default: /pypi on the upstream host).
# xmlrpc = "https://pypi.org/pypi"

# Allowlist: mirror exactly these projects (with all their files).
# Remove the key to mirror every project upstream has.
{projects}
# Requirements files (pip format) whose projects join the allowlist, pinned as they say.
# requirements = ["requirements.txt"]

[storage]
# Where blobs and the published tree live: file:///path, s3://bucket/prefix,
# gs://bucket/prefix or az://container/prefix. S3 credentials come from the standard AWS
# environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL,
# AWS_ALLOW_HTTP, profiles, instance roles); the store needs conditional writes.
{storage_url}
# Without url: a local directory (relative paths are relative to this file).
# blobs = "data/store"
# S3-compatible endpoint, region and plain HTTP (override the environment):
# endpoint = "http://127.0.0.1:9000"
# region = "us-east-1"
# allow_http = false
# The writer's index database (readers need none).
# index = "data/index.redb"

[sync]
# Also mirror what the listed projects need (Requires-Dist of their wheels, and of sdists
# that declare it statically), transitively; `tufa policy explain NAME` says why each is in.
{follow}
{max_projects}
# Follow a conditional dependency only if its marker can hold where you install (PEP 508
# markers, as uv's `environments`; default: every conditional dependency is followed).
{environments}
# Mirror only the newest N releases of each project (default: all releases).
{latest}
# Hosts files may be downloaded from besides the upstream's own ("host" for any port, or
# "host:port"). Every other host, and every redirect elsewhere, is refused.
# file_hosts = ["files.pythonhosted.org"]
# Let host names resolve to private, loopback or link-local addresses (IP literals written
# in upstream or file_hosts are always allowed).
# allow_private_addresses = false

[sync.concurrency]
# projects = {cp}
# downloads = {cd}
# Projects the publish after a sync renders and compresses at once (about the core count).
# publish = {cpub}

[sync.limits]
# max_page_bytes = {mpb}
# max_file_bytes = {mfb}
# max_files_per_project = {mfp}
# connect_timeout_secs = {cts}
# read_timeout_secs = {rts}
# page_timeout_secs = {pts}
# retries = {retries}
# retry_base_delay_ms = {rbd}
# max_retry_after_secs = {mra}
# file_min_rate_bytes_per_sec = {fmr}
# file_rate_window_secs = {frw}

[serve]
listen = "{listen}"
# How often (ms) a reader checks for a new publish; between checks it answers from memory.
# 0 reads the store on every request.
# poll_interval_ms = {poll}
# Distribution files are hashed on every download ("every-request"). "once-per-file" streams a
# local-disk file this reader has already verified without hashing it again, until the file's
# identity (device, inode, size, mtime, ctime) changes; a change below the filesystem that
# keeps the identity is not caught (docs/ARCHITECTURE.md, "Verification when serving").
# file_verification = "every-request"

[serve.limits]
# max_path_len = 1024
# max_header_bytes = 16384
# request_timeout_secs = 30
# max_connections = 1024
# Connections one client address (IPv4, or IPv6 /64) may hold; below max_connections, 0 = no limit.
# Behind a reverse proxy every client has the proxy's address: raise it or use 0.
# max_connections_per_ip = 64
# A response the client reads nothing of for this long, or reads slower than the minimum rate
# (bytes/s, averaged over that time; 0 = no rate rule), closes the connection.
# send_idle_timeout_secs = 30
# min_send_rate_bytes_per_sec = 1024
# A connection with nothing read or written for this long is closed.
# idle_timeout_secs = 60
# Whole-blob verifications before serving ranges, at once (each digest hashed once per process).
# max_concurrent_verifications = 2
# page_cache_bytes = 67108864
# /readyz fails when the TUF timestamp expires within this many seconds.
# readiness_min_timestamp_validity_secs = 3600

[lease]
# The single-writer lease (lease/writer.json in the store): sync, refresh, import-metadata and
# rebuild-index hold it while they work, and any other writer is refused. A lease not renewed
# for ttl_secs is taken over by the next writer (sooner on the same host once the holder's
# process is gone); renew_secs must be less than ttl_secs / 2.
# ttl_secs = 120
# renew_secs = 30

[tuf]
# PEP 458 signing. Without online_key, pages are published unsigned.
{tuf}
# log2 of the number of hashed bins: 14 = 16,384 bins (PEP 458). Fixed once published.
bins_bit_length = {bits}
# Lifetime of the online roles, in hours.
# bin_n_expiry_hours = 24
# snapshot_expiry_hours = 24
# timestamp_expiry_hours = 24
{pkcs11}
[log]
# "text" or "json"
# format = "text"

[policy]
# What may enter the mirror, checked before a file is downloaded (docs/POLICY.md).
# "enforce" keeps blocked files out; "report" only logs what would be blocked.
# mode = "enforce"
# Hold back files younger than this (by upstream upload-time): s, m, h, d or w.
# min_release_age = "3d"
# Project names (globs * ?) with optional PEP 440 versions.
# deny = ["typo-*", "somepkg==1.2.3", "other>=2,<3"]
# allow_only = ["requests", "idna"]
# Names never taken from upstream (dependency confusion guard).
# internal = ["acme-*"]
# File filters: pre-releases, yanked files, size, wheel platform tags, Python versions.
# prereleases = true
# yanked = true
# max_file_size = "500MB"
# platforms = ["manylinux*_x86_64", "macosx*_arm64", "win_amd64", "any"]
# python_versions = ["3.11", "3.12"]
# An OSV dump (directory or PyPI all.zip): MAL- records block; vulnerabilities at or above
# block_severity (low, medium, high, critical) too.
# [policy.advisories]
# osv = "osv/all.zip"
# block_severity = "high"
# SPDX licence rules, judged from each wheel's METADATA (License-Expression or classifiers).
# [policy.licenses]
# allow = ["MIT", "Apache-2.0", "BSD-3-Clause"]
# deny = ["AGPL-3.0-only"]
"#,
            upstream = toml_string(self.upstream.as_str()),
            upstream_root = match &self.upstream_root {
                Some(root) => format!(
                    "# Verifying replica: the upstream is another PEP 458 mirror and this is its first root.\n# `tufa sync` verifies everything through TUF and republishes the upstream's metadata as is.\nupstream_root = {}\n",
                    toml_string(&root.display().to_string())
                ),
                None => String::new(),
            },
            listen = self.serve.listen,
            bits = self.tuf.bins_bit_length,
            tuf = {
                let mut lines = Vec::new();
                match &self.tuf.online_key {
                    Some(p) => lines.push(format!("online_key = {}", toml_string(&p.display().to_string()))),
                    None if self.tuf.online_pkcs11.is_some() => lines.push(
                        "# The online key is in a PKCS#11 token: [tuf.online_pkcs11] below.".to_owned(),
                    ),
                    None => lines.push("# online_key = \"keys/online.json\"".to_owned()),
                }
                if let Some(p) = &self.tuf.insecure_dev_keys {
                    lines.push(
                        "# INSECURE: offline keys on this host, for trials only (tufa init --dev-keys)."
                            .to_owned(),
                    );
                    lines.push(format!(
                        "insecure_dev_keys = {}",
                        toml_string(&p.display().to_string())
                    ));
                }
                lines.join("\n")
            },
            pkcs11 = match &self.tuf.online_pkcs11 {
                None => String::new(),
                Some(p) => format!(
                    "\n# The online key inside a PKCS#11 token (HSM, YubiKey, SoftHSM2): the key pair labelled\n\
                     # `key` on the token labelled `token`. The user PIN comes from the environment\n\
                     # variable `pin_env`, never from this file.\n\
                     [tuf.online_pkcs11]\nmodule = {}\ntoken = {}\nkey = {}\n{}\n",
                    toml_string(&p.module.display().to_string()),
                    toml_string(&p.token),
                    toml_string(&p.key),
                    if p.pin_env == crate::tuf_cmd::DEFAULT_PIN_ENV {
                        format!("# pin_env = {}", toml_string(&p.pin_env))
                    } else {
                        format!("pin_env = {}", toml_string(&p.pin_env))
                    },
                ),
            },
            poll = DEFAULT_POLL_INTERVAL_MS,
            storage_url = match &self.storage.url {
                Some(url) => format!("url = {}", toml_string(url)),
                None => "# url = \"s3://my-bucket/pypi\"".to_owned(),
            },
            follow = match self.sync.follow_dependencies {
                true => "follow_dependencies = true".to_owned(),
                false => "# follow_dependencies = false".to_owned(),
            },
            max_projects = match self.sync.max_projects {
                n if n == default_max_followed() => format!("# max_projects = {n}"),
                n => format!("max_projects = {n}"),
            },
            environments = match self.sync.environments.as_slice() {
                [] =>
                    "# environments = [\"sys_platform == 'linux' and python_version >= '3.10'\"]".to_owned(),
                envs => format!(
                    "environments = [{}]",
                    envs.iter().map(|e| toml_string(e)).collect::<Vec<_>>().join(", ")
                ),
            },
            latest = match self.sync.latest_releases {
                Some(n) => format!("latest_releases = {n}"),
                None => "# latest_releases = 3".to_owned(),
            },
            cp = c.projects,
            cd = c.downloads,
            cpub = c.publish,
            mpb = l.max_page_bytes,
            mfb = l.max_file_bytes,
            mfp = l.max_files_per_project,
            cts = l.connect_timeout_secs,
            rts = l.read_timeout_secs,
            pts = l.page_timeout_secs,
            retries = l.retries,
            rbd = l.retry_base_delay_ms,
            mra = l.max_retry_after_secs,
            fmr = l.file_min_rate_bytes_per_sec,
            frw = l.file_rate_window_secs,
        )
    }
}

/// `tufa --config PATH ARGS`, PATH quoted for a shell when it needs to be.
pub fn command_for(config: &Path, args: &str) -> String {
    format!(
        "tufa --config {} {args}",
        shell_word(&config.display().to_string())
    )
}

/// `s` as one shell word: unchanged when it only has characters no shell treats specially,
/// else single-quoted.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,@%=".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `s` as a TOML string literal, quoted and escaped (a URL or path may hold `"` or `\`).
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Reads, overrides, validates, and resolves paths.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read config `{}` (create one with `tufa init DIR`, or pass --config)",
            path.display()
        )
    })?;
    let mut config = Config::parse(&text, path)?;
    config.apply_env(|k| std::env::var(k).ok())?;
    config
        .validate()
        .with_context(|| format!("config `{}`", path.display()))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    tufa_policy::Policy::check_paths(&config.policy, &base)
        .with_context(|| format!("config `{}`", path.display()))?;
    let store_location = config
        .storage
        .location(&base)
        .with_context(|| format!("config `{}`", path.display()))?;
    let requirement_files: Vec<PathBuf> = config.requirements.iter().map(|f| base.join(f)).collect();
    let mut requirements = crate::requirements::read(&requirement_files)
        .with_context(|| format!("config `{}`: requirements", path.display()))?;
    // Where each is listed, relative to the config's directory as the config names the files.
    let prefix = format!("{}/", base.display());
    for listed in requirements.values_mut() {
        for source in &mut listed.sources {
            if let Some(rest) = source.strip_prefix(&prefix) {
                *source = rest.to_owned();
            }
        }
    }
    let environments = config
        .sync
        .parse_environments()
        .with_context(|| format!("config `{}`", path.display()))?;
    Ok(Loaded {
        requirements,
        environments,
        store_location,
        index_path: base.join(&config.storage.index),
        config,
        path: path.to_path_buf(),
        base_dir: base,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn initial_file_parses_back() {
        let c = Config::new(
            Url::parse("http://127.0.0.1:9/simple/").unwrap(),
            Some(vec![ProjectName::new("Foo.Bar").unwrap()]),
        );
        let text = c.render_initial();
        let back = Config::parse(&text, Path::new("t.toml")).unwrap();
        assert_eq!(back.upstream, c.upstream);
        assert_eq!(back.projects.unwrap()[0].as_str(), "foo-bar");
        assert_eq!(back.sync.limits, Limits::default());
        assert_eq!(
            back.serve.file_verification,
            tufa_server::FileVerification::EveryRequest
        );
        // The commented default, uncommented, says the same; the opt-in mode parses.
        let uncommented = text.replace(
            "# file_verification = \"every-request\"",
            "file_verification = \"every-request\"",
        );
        assert_ne!(uncommented, text, "the template shows file_verification");
        Config::parse(&uncommented, Path::new("t.toml")).unwrap();
        let once = Config::parse(
            "[serve]\nfile_verification = \"once-per-file\"",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(
            once.serve.file_verification,
            tufa_server::FileVerification::OncePerFile
        );
    }

    #[test]
    fn typos_and_bad_values_are_named() {
        let err = Config::parse("upstrem = \"x\"", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.toml") && err.contains("upstrem"), "{err}");
        let err = Config::parse("projects = [\"../etc\"]", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("../etc"), "{err}");
        let err = Config::parse("[sync.limits]\nretries = -1", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("retries"), "{err}");
        let err = Config::parse("[sync.concurrency]\npublish = 0", Path::new("t.toml"))
            .and_then(|c| c.validate().map(|()| c))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "sync.concurrency.publish = 0: it must be at least 1");
        let c = Config::parse("[sync.concurrency]\npublish = 2", Path::new("t.toml")).unwrap();
        assert_eq!(c.sync.concurrency.publish, 2);
        let err = Config::parse("[serve]\nfile_verification = \"never\"", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("never") && err.contains("once-per-file"),
            "names the bad value and the choices: {err}"
        );
    }

    #[test]
    fn env_overrides() {
        let mut c = Config::parse("", Path::new("t.toml")).unwrap();
        c.apply_env(|k| match k {
            ENV_PROJECTS => Some("Django, zope.interface".into()),
            ENV_UPSTREAM => Some("http://localhost:1/simple/".into()),
            _ => None,
        })
        .unwrap();
        let names: Vec<_> = c.projects.unwrap().iter().map(|p| p.to_string()).collect();
        assert_eq!(names, ["django", "zope-interface"]);
        assert_eq!(c.upstream.as_str(), "http://localhost:1/simple/");
        let mut c = Config::parse("", Path::new("t.toml")).unwrap();
        assert!(
            c.apply_env(|k| (k == ENV_LOG_FORMAT).then(|| "xml".into()))
                .is_err()
        );
    }

    /// Found by the `config` fuzz target (artifact `config-crash-95875b7c…`): `render_initial`
    /// pasted the upstream URL and key paths between quotes unescaped, so a `\` or `"` in them
    /// wrote a `tufa.toml` that does not parse back, or parses to another value.
    #[test]
    fn fuzz_config_render_initial_escapes_urls_and_paths() {
        let mut c = Config::parse(r#"upstream = "foo://host/in\\\\\\e\"""#, Path::new("t.toml")).unwrap();
        assert!(c.upstream.as_str().contains(r"in\\\e"), "{}", c.upstream);
        c.tuf.online_key = Some(PathBuf::from("keys/on\"line.json"));
        c.tuf.insecure_dev_keys = Some(PathBuf::from(r"C:\mirror\keys"));
        let text = c.render_initial();
        let back = Config::parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{text}\n{e}"));
        assert_eq!(back.upstream, c.upstream);
        assert_eq!(back.tuf.online_key, c.tuf.online_key);
        assert_eq!(back.tuf.insecure_dev_keys, c.tuf.insecure_dev_keys);
    }

    #[test]
    fn initial_file_with_a_pkcs11_online_key_parses_back() {
        let mut c = Config::new(Url::parse("http://127.0.0.1:9/simple/").unwrap(), None);
        c.tuf.online_pkcs11 = Some(crate::tuf_cmd::Pkcs11Settings {
            module: PathBuf::from("/usr/lib/softhsm/lib\"softhsm2.so"),
            token: "mirror token".into(),
            key: "online".into(),
            pin_env: crate::tuf_cmd::DEFAULT_PIN_ENV.into(),
        });
        let text = c.render_initial();
        assert!(!text.contains("\nonline_key"), "{text}");
        let back = Config::parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{text}\n{e}"));
        back.validate().unwrap();
        assert_eq!(back.tuf.online_pkcs11, c.tuf.online_pkcs11);
        assert_eq!(back.tuf.online_key, None);
        assert_eq!(back.tuf.bins_bit_length, 14);
    }

    #[test]
    fn dependency_settings_render_back() {
        // quickstart writes its config with render_initial: the settings must survive it.
        let mut c = Config::new(
            Url::parse("http://127.0.0.1:9/simple/").unwrap(),
            Some(vec![ProjectName::new("httpx").unwrap()]),
        );
        c.sync.follow_dependencies = true;
        c.sync.max_projects = 40;
        c.sync.environments = vec!["sys_platform == 'linux' and python_version >= \"3.10\"".to_owned()];
        let back = Config::parse(&c.render_initial(), Path::new("t.toml")).unwrap();
        assert!(back.sync.follow_dependencies);
        assert_eq!(back.sync.max_projects, 40);
        assert_eq!(back.sync.environments, c.sync.environments);
        back.validate().unwrap();
        let defaults = Config::parse(
            &Config::new(Url::parse("http://127.0.0.1:9/simple/").unwrap(), None).render_initial(),
            Path::new("t.toml"),
        )
        .unwrap();
        assert!(!defaults.sync.follow_dependencies && defaults.sync.environments.is_empty());
        assert_eq!(defaults.sync.max_projects, 5000);
    }

    #[test]
    fn replica_config_renders_back_and_refuses_what_a_replica_cannot_have() {
        let mut c = Config::new(Url::parse("http://primary.example/base/simple/").unwrap(), None);
        c.upstream_root = Some(PathBuf::from("upstream-root.json"));
        c.validate().unwrap();
        assert_eq!(
            c.replica_primary().unwrap().as_str(),
            "http://primary.example/base/"
        );
        let back = Config::parse(&c.render_initial(), Path::new("t.toml")).unwrap();
        assert_eq!(back.upstream_root, c.upstream_root);
        back.validate().unwrap();

        let mut with_projects = c.clone();
        with_projects.projects = Some(vec![ProjectName::new("demo").unwrap()]);
        let err = with_projects.validate().unwrap_err().to_string();
        assert!(err.contains("remove `projects`"), "{err}");
        let mut with_key = c.clone();
        with_key.tuf.online_key = Some(PathBuf::from("keys/online.json"));
        let err = with_key.validate().unwrap_err().to_string();
        assert!(err.contains("holds no keys"), "{err}");
        let mut not_simple = c.clone();
        not_simple.upstream = Url::parse("http://primary.example/tuf/").unwrap();
        let err = not_simple.validate().unwrap_err().to_string();
        assert!(err.contains("ending in /simple/"), "{err}");
    }

    #[test]
    fn storage_url_or_local_directory() {
        let base = Path::new("/srv/m");
        let c = Config::parse("", Path::new("t.toml")).unwrap();
        assert_eq!(
            c.storage.location(base).unwrap(),
            tufa_store::StoreLocation::File(PathBuf::from("/srv/m/data/store"))
        );
        let c = Config::parse(
            "[storage]\nurl = \"s3://bucket/pypi\"\nendpoint = \"http://127.0.0.1:9000\"\nallow_http = true",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.storage.location(base).unwrap().to_string(), "s3://bucket/pypi");
        assert_eq!(c.storage.cloud_options().allow_http, Some(true));
        assert_eq!(
            c.storage.cloud_options().endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        let c = Config::parse("[storage]\nurl = \"s4://bucket\"", Path::new("t.toml")).unwrap();
        let err = format!("{:#}", c.storage.location(base).unwrap_err());
        assert!(
            err.contains("s4://bucket") && err.contains("unknown scheme"),
            "{err}"
        );
        let c = Config::parse(
            "[storage]\nurl = \"s3://b\"\nblobs = \"elsewhere\"",
            Path::new("t.toml"),
        )
        .unwrap();
        let err = c.storage.location(base).unwrap_err().to_string();
        assert!(err.contains("keep one"), "{err}");
        // What `tufa init --storage` writes parses back.
        let mut c = Config::new(Url::parse("http://127.0.0.1:9/simple/").unwrap(), None);
        c.storage.url = Some("gs://bucket/a b".into());
        let back = Config::parse(&c.render_initial(), Path::new("t.toml")).unwrap();
        assert_eq!(back.storage.url.as_deref(), Some("gs://bucket/a b"));
    }

    #[test]
    fn commands_name_the_config_as_one_shell_word() {
        let loaded = |path: &str| Loaded {
            config: Config::new(Url::parse("http://127.0.0.1:9/simple/").unwrap(), None),
            path: PathBuf::from(path),
            base_dir: PathBuf::from("."),
            store_location: tufa_store::StoreLocation::File(PathBuf::from("b")),
            index_path: PathBuf::from("i"),
            requirements: Default::default(),
            environments: Vec::new(),
        };
        assert_eq!(
            loaded("/srv/tufa/tufa.toml").command("sync"),
            "tufa --config /srv/tufa/tufa.toml sync"
        );
        assert_eq!(
            loaded("/srv/my mirror/it's.toml").command("verify"),
            "tufa --config '/srv/my mirror/it'\\''s.toml' verify"
        );
    }

    #[test]
    fn validation() {
        let mut c = Config::parse("projects = []", Path::new("t.toml")).unwrap();
        assert!(c.validate().is_err());
        c.projects = None;
        c.upstream = Url::parse("ftp://x/").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("ftp://x/"));
    }

    #[test]
    fn serve_limits_are_validated() {
        let text = "[serve.limits]\nmax_connections = 8\nmax_connections_per_ip = 8";
        let c = Config::parse(text, Path::new("t.toml")).unwrap();
        let err = format!("{:#}", c.validate().unwrap_err());
        assert!(err.contains("max_connections_per_ip (8)"), "{err}");
        let text = "[serve.limits]\nmax_connections = 8\nmax_connections_per_ip = 4\n\
                    send_idle_timeout_secs = 5\nmin_send_rate_bytes_per_sec = 0\n\
                    idle_timeout_secs = 9\nmax_concurrent_verifications = 1";
        let c = Config::parse(text, Path::new("t.toml")).unwrap();
        c.validate().unwrap();
        assert_eq!(c.serve.limits.max_connections_per_ip, 4);
        assert_eq!(c.serve.limits.send_idle_timeout_secs, 5);
    }
}
