//! The updater: the TUF client workflow over HTTP, with the trusted metadata kept on disk.
//!
//! The order of fetches and the fallbacks follow python-tuf's `ngclient.Updater` (what the
//! tuf-conformance suite measures): the next roots until the repository answers 403 or 404,
//! the cached timestamp (kept for rollback checks even when it no longer verifies as final),
//! the new timestamp, the cached snapshot if it still matches, otherwise the one timestamp
//! lists, then `targets` and, for a target lookup, a pre-order depth-first search of the
//! delegations (at most [`UpdaterConfig::max_delegations`] roles).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tufa_tuf::{RoleName, TargetFile, TimestampUpdate, TrustedMetadata, TufError, metadata_file_name};
use url::Url;

use crate::http::GetError;
use crate::{ClientError, Http, MetadataDir};

/// Limits of one client. Defaults are python-tuf's `UpdaterConfig`.
#[derive(Debug, Clone)]
pub struct UpdaterConfig {
    /// Most root versions fetched past the trusted one in one refresh.
    pub max_root_rotations: u32,
    /// Most targets roles searched for one target.
    pub max_delegations: u32,
    pub root_max_length: u64,
    pub timestamp_max_length: u64,
    /// Used when timestamp does not list the snapshot's length.
    pub snapshot_max_length: u64,
    /// Used when snapshot does not list a targets role's length.
    pub targets_max_length: u64,
    /// With consistent snapshots, fetch targets as `dir/<hash>.<name>`.
    pub prefix_targets_with_hash: bool,
}

impl Default for UpdaterConfig {
    fn default() -> Self {
        Self {
            max_root_rotations: 256,
            max_delegations: 32,
            root_max_length: 512_000,
            timestamp_max_length: 16_384,
            snapshot_max_length: 2_000_000,
            targets_max_length: 5_000_000,
            prefix_targets_with_hash: true,
        }
    }
}

/// A TUF client session against one repository. Expiry is judged against the time the
/// session started ([`TrustedMetadata::now`]).
#[derive(Debug)]
pub struct Updater {
    dir: MetadataDir,
    metadata_url: Url,
    http: Http,
    config: UpdaterConfig,
    trusted: TrustedMetadata,
    refreshed: bool,
}

/// `url` with a trailing `/`, so file names join below it.
pub fn base_url(url: &Url) -> Url {
    let mut url = url.clone();
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

impl Updater {
    /// Starts from the trusted root stored in `dir` (`root.json`).
    pub fn new(
        dir: &Path,
        metadata_url: &Url,
        http: Http,
        config: UpdaterConfig,
    ) -> Result<Self, ClientError> {
        let dir = MetadataDir::new(dir);
        let root = dir.read(&RoleName::root())?.ok_or_else(|| {
            ClientError::Setup(format!(
                "no trusted root: `{}` is missing (start the client with the repository's first root)",
                dir.file(&RoleName::root()).display()
            ))
        })?;
        let trusted = TrustedMetadata::new(&root, jiff::Timestamp::now())?;
        Ok(Self {
            dir,
            metadata_url: base_url(metadata_url),
            http,
            config,
            trusted,
            refreshed: false,
        })
    }

    /// What this session trusts so far.
    pub fn trusted(&self) -> &TrustedMetadata {
        &self.trusted
    }

    async fn fetch(&self, file: &str, max: u64) -> Result<Bytes, GetError> {
        let url = self.metadata_url.join(file).map_err(|e| {
            GetError::Other(ClientError::Setup(format!("bad metadata URL for `{file}`: {e}")))
        })?;
        tracing::debug!(%url, max, "fetching metadata");
        self.http.get(&url, file, max).await
    }

    async fn fetch_required(&self, file: &str, max: u64) -> Result<Bytes, ClientError> {
        self.fetch(file, max).await.map_err(|e| {
            let url = self
                .metadata_url
                .join(file)
                .unwrap_or_else(|_| self.metadata_url.clone());
            e.into_error(&url)
        })
    }

    /// Updates root, timestamp, snapshot and top-level targets (spec 5.3 to 5.6).
    pub async fn refresh(&mut self) -> Result<(), ClientError> {
        self.load_root().await?;
        self.load_timestamp().await?;
        self.load_snapshot().await?;
        self.load_targets(&RoleName::targets(), &RoleName::root()).await?;
        self.refreshed = true;
        Ok(())
    }

    /// Trusts what the client's own cache holds, without the network: for working offline when
    /// the repository cannot be reached. The cached timestamp, snapshot and targets must all
    /// still verify as final (unexpired, versions agreeing); delegated roles not cached are
    /// fetched when a lookup needs them, and fail without a network.
    pub fn load_cached(&mut self) -> Result<(), ClientError> {
        let cached = |role: &RoleName| -> Result<Vec<u8>, ClientError> {
            self.dir.read(role)?.ok_or_else(|| {
                ClientError::Setup(format!(
                    "nothing verified is cached for offline use: `{}` is missing",
                    self.dir.file(role).display()
                ))
            })
        };
        let (ts, snap, targets) = (
            cached(&RoleName::timestamp())?,
            cached(&RoleName::snapshot())?,
            cached(&RoleName::targets())?,
        );
        self.trusted.update_timestamp(&ts)?;
        self.trusted.update_snapshot("snapshot.json", &snap, true)?;
        self.trusted.update_delegated_targets(
            "targets.json",
            &targets,
            &RoleName::targets(),
            &RoleName::root(),
        )?;
        self.refreshed = true;
        Ok(())
    }

    async fn load_root(&mut self) -> Result<(), ClientError> {
        let lower = self.trusted.root().version.saturating_add(1);
        let upper = lower.saturating_add(u64::from(self.config.max_root_rotations));
        for version in lower..upper {
            let file = format!("{version}.root.json");
            match self.fetch(&file, self.config.root_max_length).await {
                Ok(bytes) => {
                    self.trusted.update_root(&file, &bytes)?;
                    self.dir.write(&RoleName::root(), &bytes)?;
                    tracing::info!(version, "trusted a new root");
                }
                // The repository has no newer root.
                Err(GetError::Status(403 | 404)) => break,
                Err(e) => {
                    let url = self
                        .metadata_url
                        .join(&file)
                        .unwrap_or_else(|_| self.metadata_url.clone());
                    return Err(e.into_error(&url));
                }
            }
        }
        Ok(())
    }

    async fn load_timestamp(&mut self) -> Result<(), ClientError> {
        let role = RoleName::timestamp();
        if let Some(local) = self.dir.read(&role)?
            && let Err(e) = self.trusted.update_timestamp(&local)
        {
            tracing::debug!(error = %e, "cached timestamp is not valid as final");
        }
        let bytes = self
            .fetch_required("timestamp.json", self.config.timestamp_max_length)
            .await?;
        if self.trusted.update_timestamp(&bytes)? == TimestampUpdate::Unchanged {
            return Ok(());
        }
        self.dir.write(&role, &bytes)
    }

    async fn load_snapshot(&mut self) -> Result<(), ClientError> {
        let role = RoleName::snapshot();
        if let Some(local) = self.dir.read(&role)? {
            match self.trusted.update_snapshot("snapshot.json", &local, true) {
                Ok(_) => return Ok(()),
                Err(e) => tracing::debug!(error = %e, "cached snapshot is not valid as final"),
            }
        }
        let meta = self
            .trusted
            .timestamp()
            .ok_or(TufError::Workflow("no trusted timestamp yet"))?
            .snapshot_meta()?
            .clone();
        let consistent = self.trusted.root().consistent_snapshot;
        let file = metadata_file_name(&role, meta.version, consistent);
        let max = meta.length.unwrap_or(self.config.snapshot_max_length);
        let bytes = self.fetch_required(&file, max).await?;
        self.trusted.update_snapshot(&file, &bytes, false)?;
        self.dir.write(&role, &bytes)
    }

    /// Makes `role` (delegated by `delegator`) trusted: already in this session (and trusted
    /// by this delegator too), from the cache if it still matches snapshot, or fetched.
    async fn load_targets(&mut self, role: &RoleName, delegator: &RoleName) -> Result<(), ClientError> {
        if self.trusted_or_cached(role, delegator)? {
            return Ok(());
        }
        let (file, max) = self.role_file(role)?;
        let bytes = self.fetch_required(&file, max).await?;
        self.trust_fetched(role, delegator, &file, &bytes)
    }

    /// Whether `role` is trusted already (and by `delegator` too) or its cached copy is what
    /// snapshot lists; `false` when it must be fetched.
    fn trusted_or_cached(&mut self, role: &RoleName, delegator: &RoleName) -> Result<bool, ClientError> {
        if self.trusted.targets(role).is_some() {
            self.trusted.check_delegator(role, delegator)?;
            return Ok(true);
        }
        if let Some(local) = self.dir.read(role)? {
            let file = format!("{}.json", role.quoted());
            match self
                .trusted
                .update_delegated_targets(&file, &local, role, delegator)
            {
                Ok(_) => return Ok(true),
                Err(e) => tracing::debug!(role = %role, error = %e, "cached targets role is not valid"),
            }
        }
        Ok(false)
    }

    /// The file name `role` is fetched under and the most bytes read for it.
    fn role_file(&self, role: &RoleName) -> Result<(String, u64), ClientError> {
        let meta = self.trusted.snapshot_meta(role)?;
        let file = metadata_file_name(role, meta.version, self.trusted.root().consistent_snapshot);
        Ok((file, meta.length.unwrap_or(self.config.targets_max_length)))
    }

    fn trust_fetched(
        &mut self,
        role: &RoleName,
        delegator: &RoleName,
        file: &str,
        bytes: &[u8],
    ) -> Result<(), ClientError> {
        self.trusted
            .update_delegated_targets(file, bytes, role, delegator)?;
        self.dir.write(role, bytes)
    }

    /// Makes the targets role `role` (delegated by `delegator`, `root` for `targets`) trusted
    /// in this session, fetching it when the cached copy is not what snapshot lists. For tools
    /// that need every role (the verifying replica), not one target's path.
    pub async fn load_role(&mut self, role: &RoleName, delegator: &RoleName) -> Result<(), ClientError> {
        self.load_targets(role, delegator).await
    }

    /// [`Updater::load_role`] for many `(role, delegator)` pairs whose delegators are trusted
    /// already: the roles that must be fetched are fetched up to `concurrency` at once, then
    /// verified and stored one by one, in order. The first failure is returned.
    pub async fn load_roles(
        &mut self,
        roles: &[(RoleName, RoleName)],
        concurrency: usize,
    ) -> Result<(), ClientError> {
        use futures::StreamExt as _;
        let mut wanted = Vec::new();
        for (role, delegator) in roles {
            if !self.trusted_or_cached(role, delegator)? {
                let (file, max) = self.role_file(role)?;
                wanted.push((role, delegator, file, max));
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        tracing::info!(roles = wanted.len(), "fetching targets roles");
        let this = &*self;
        let mut fetched: Vec<(usize, Result<Bytes, ClientError>)> =
            futures::stream::iter(wanted.iter().enumerate())
                .map(|(i, (_, _, file, max))| async move { (i, this.fetch_required(file, *max).await) })
                .buffer_unordered(concurrency.max(1))
                .collect()
                .await;
        fetched.sort_by_key(|(i, _)| *i);
        for ((role, delegator, file, _), (_, bytes)) in wanted.iter().zip(fetched) {
            self.trust_fetched(role, delegator, file, &bytes?)?;
        }
        Ok(())
    }

    /// The bytes of `role` as this client last verified and stored them (the metadata
    /// directory's copy, under its non-versioned name).
    pub fn stored_bytes(&self, role: &RoleName) -> Result<Option<Vec<u8>>, ClientError> {
        self.dir.read(role)
    }

    /// The signed description of `path`: refreshes first if this session has not, then
    /// searches the delegations. A target no trusted role lists is refused
    /// ([`TufError::TargetNotFound`]).
    pub async fn target_info(&mut self, path: &str) -> Result<TargetFile, ClientError> {
        if !self.refreshed {
            self.refresh().await?;
        }
        let mut to_visit = vec![(RoleName::targets(), RoleName::root())];
        let mut visited: HashSet<RoleName> = HashSet::new();
        let mut budget = self.config.max_delegations;
        while budget > 0
            && let Some((role, delegator)) = to_visit.pop()
        {
            if visited.contains(&role) {
                continue;
            }
            self.load_targets(&role, &delegator).await?;
            let targets = self
                .trusted
                .targets(&role)
                .ok_or(TufError::Workflow("targets role vanished"))?;
            if let Some(info) = targets.targets.get(path) {
                return Ok(info.clone());
            }
            budget -= 1;
            let mut children = Vec::new();
            if let Some(delegations) = &targets.delegations {
                for (child, terminating) in delegations.roles_for_target(path) {
                    children.push((child, role.clone()));
                    if terminating {
                        to_visit.clear();
                        break;
                    }
                }
            }
            visited.insert(role);
            to_visit.extend(children.into_iter().rev());
        }
        if budget == 0 && !to_visit.is_empty() {
            tracing::warn!(
                target = path,
                max = self.config.max_delegations,
                "stopped searching delegations at the limit"
            );
        }
        Err(TufError::TargetNotFound {
            path: path.to_owned(),
        }
        .into())
    }

    /// The URL `info` (the target at `path`) is fetched from below `base`: with consistent
    /// snapshots, `dir/<first hash>.<name>`.
    pub fn target_url(&self, base: &Url, path: &str, info: &TargetFile) -> Result<Url, ClientError> {
        let consistent = self.trusted.root().consistent_snapshot && self.config.prefix_targets_with_hash;
        let remote = match info.hashes.values().next() {
            Some(hash) if consistent => match path.rsplit_once('/') {
                Some((dir, name)) => format!("{dir}/{hash}.{name}"),
                None => format!("{hash}.{path}"),
            },
            _ => path.to_owned(),
        };
        let base = base_url(base);
        Url::parse(&format!("{base}{remote}"))
            .map_err(|e| ClientError::Setup(format!("target `{path}` makes no URL below `{base}`: {e}")))
    }

    /// Fetches the target at `path` from below `base` and returns its bytes once its length
    /// and every hash match `info`. Reads at most `info.length` bytes.
    pub async fn download_target(
        &self,
        base: &Url,
        path: &str,
        info: &TargetFile,
    ) -> Result<Bytes, ClientError> {
        let url = self.target_url(base, path, info)?;
        self.http.get_target(&url, path, info).await
    }
}

/// Where a target is kept below a target directory: its path percent-encoded into one file
/// name, as python-tuf does.
pub fn target_file(dir: &Path, path: &str) -> PathBuf {
    dir.join(tufa_tuf::quote(path).as_ref())
}

/// Whether `file` already holds the target `info` describes (length and every hash).
pub fn is_cached(file: &Path, path: &str, info: &TargetFile) -> bool {
    crate::file_matches(file, path, info).unwrap_or(false)
}
