//! PEP 458 signing of the published tree, incrementally.
//!
//! Every published page, distribution file and METADATA file is a TUF target (its URL path
//! relative to the server root). The index keeps the targets per hashed bin; a publish
//! re-signs only the bins whose targets changed (plus bins near expiry), then a new snapshot,
//! then a new timestamp — cost grows with the change, not with the mirror.
//!
//! Crash safety: new version numbers are recorded in the index *before* the files are
//! written, and bins stay dirty until everything is written, so a crash never reuses a
//! version number for different content and the next run finishes the job. Files are written
//! bins first, snapshot next, timestamp last: a client that sees the new timestamp finds
//! everything it points to.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use jiff::{SignedDuration, Timestamp as Time};
use serde::Serialize;
use tufa_index::{Index, IndexError};
use tufa_pypi::ProjectName;
use tufa_store::BlobStore;
use tufa_tuf::build::{self, Expiries, RoleKeySet, RootKeys};
use tufa_tuf::{BinLayout, Ed25519Signer, RoleName, Signer, TargetFile, TargetPath, TufError};

use crate::PublishError;

/// Bins signed in one blocking call and written in one (a first publish signs 16,384).
const SIGN_CHUNK: usize = 256;

/// Keys and settings for signing.
#[derive(Clone)]
pub struct TufSigning {
    /// The online key: bin-n, snapshot and timestamp.
    pub online: Arc<dyn Signer>,
    /// INSECURE: offline keys on the mirror host (`tufa init --dev-keys`), used only to create
    /// the first root, targets and bins metadata for a trial. Real deployments import those
    /// from the key ceremony instead.
    pub insecure_dev_offline: Option<DevOfflineKeys>,
    pub expiries: Expiries,
}

impl std::fmt::Debug for TufSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TufSigning")
            .field("online", &self.online.keyid())
            .field("insecure_dev_offline", &self.insecure_dev_offline.is_some())
            .finish()
    }
}

/// The three offline keys of a dev setup.
#[derive(Clone, Debug)]
pub struct DevOfflineKeys {
    pub root: Arc<Ed25519Signer>,
    pub targets: Arc<Ed25519Signer>,
    pub bins: Arc<Ed25519Signer>,
}

/// What a TUF publish did.
#[derive(Debug, Clone, Default)]
pub struct TufReport {
    pub bootstrapped: bool,
    pub bins_signed: usize,
    pub snapshot_version: u64,
    pub timestamp_version: u64,
    /// Bytes of the new snapshot.json.
    pub snapshot_bytes: usize,
    pub files_written: usize,
}

pub const ROLE_ROOT: &str = "root";
pub const ROLE_TARGETS: &str = "targets";
pub const ROLE_BINS: &str = "bins";
pub const ROLE_SNAPSHOT: &str = "snapshot";
pub const ROLE_TIMESTAMP: &str = "timestamp";

fn tuf_err(e: TufError) -> PublishError {
    PublishError::Tuf(e.to_string())
}

fn blocking_err(e: tokio::task::JoinError) -> PublishError {
    PublishError::Join(e)
}

/// The TUF targets of one published project: its two pages, every file, every METADATA.
pub fn project_targets(
    manifest: Option<&tufa_tree::ProjectManifest>,
    files: &[tufa_index::FileRecord],
) -> Result<Vec<(TargetPath, TargetFile)>, PublishError> {
    let Some(m) = manifest else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    let path = |p: String| TargetPath::new(&p).map_err(tuf_err);
    out.push((
        path(format!("simple/{}/index.html", m.name))?,
        TargetFile::new(m.html.raw.len, &m.html.raw.sha256),
    ));
    out.push((
        path(format!("simple/{}/index.json", m.name))?,
        TargetFile::new(m.json.raw.len, &m.json.raw.sha256),
    ));
    for f in files {
        let file_path = tufa_tree::file_path(&f.sha256, &f.filename);
        if let Some(meta) = m.metadata.get(f.filename.as_str()) {
            out.push((
                path(format!("{file_path}.metadata"))?,
                TargetFile::new(meta.len, &meta.sha256),
            ));
        }
        out.push((path(file_path)?, TargetFile::new(f.size, &f.sha256)));
    }
    Ok(out)
}

/// Records a project's targets in the index (marking changed bins dirty).
pub async fn record_project_targets(
    index: &Index,
    layout: &BinLayout,
    project: &ProjectName,
    targets: Vec<(TargetPath, TargetFile)>,
) -> Result<(), PublishError> {
    let rows = target_rows(layout, targets)?;
    let index = index.clone();
    let project = project.clone();
    tokio::task::spawn_blocking(move || index.set_project_targets(&project, &rows))
        .await
        .map_err(blocking_err)??;
    Ok(())
}

/// Targets as the index keeps them: `(bin, path, TargetFile JSON)`.
pub(crate) fn target_rows(
    layout: &BinLayout,
    targets: Vec<(TargetPath, TargetFile)>,
) -> Result<Vec<(u32, String, Vec<u8>)>, PublishError> {
    targets
        .into_iter()
        .map(|(path, file)| {
            let json = serde_json::to_vec(&file).map_err(|e| PublishError::Tuf(e.to_string()))?;
            Ok((layout.bin_for(&path), path.as_str().to_owned(), json))
        })
        .collect()
}

fn unix(t: Time) -> i64 {
    t.as_second()
}

async fn write_file(store: &BlobStore, name: String, bytes: Vec<u8>) -> Result<(), PublishError> {
    store
        .put_named(&tufa_tree::tuf_key(&name), Bytes::from(bytes))
        .await?;
    Ok(())
}

fn signed_bytes<T: Serialize>(signed: T, signers: &[&dyn Signer]) -> Result<Vec<u8>, PublishError> {
    tufa_tuf::sign_metadata(signed, signers)
        .and_then(|s| s.to_bytes())
        .map_err(tuf_err)
}

/// Creates root v1, targets v1 and bins v1 with the dev keys, when no TUF metadata exists.
async fn bootstrap(
    store: &BlobStore,
    layout: &BinLayout,
    signing: &TufSigning,
    dev: &DevOfflineKeys,
    now: Time,
) -> Result<Vec<(String, u64, i64)>, PublishError> {
    let e = &signing.expiries;
    let online = RoleKeySet::single(signing.online.key().clone());
    let keys = RootKeys {
        root: RoleKeySet::single(dev.root.key().clone()),
        targets: RoleKeySet::single(dev.targets.key().clone()),
        snapshot: online.clone(),
        timestamp: online.clone(),
    };
    let root_exp = build::expires_after(now, e.root).map_err(tuf_err)?;
    let targets_exp = build::expires_after(now, e.targets).map_err(tuf_err)?;
    let bins_exp = build::expires_after(now, e.bins).map_err(tuf_err)?;
    let root = build::new_root(&keys, 1, root_exp).map_err(tuf_err)?;
    let targets =
        build::new_targets_delegating_to_bins(&RoleKeySet::single(dev.bins.key().clone()), 1, targets_exp)
            .map_err(tuf_err)?;
    let bins = build::new_bins_delegator(layout, &online, 1, bins_exp).map_err(tuf_err)?;
    write_file(
        store,
        "1.root.json".into(),
        signed_bytes(root, &[dev.root.as_ref()])?,
    )
    .await?;
    write_file(
        store,
        "1.targets.json".into(),
        signed_bytes(targets, &[dev.targets.as_ref()])?,
    )
    .await?;
    write_file(
        store,
        "1.bins.json".into(),
        signed_bytes(bins, &[dev.bins.as_ref()])?,
    )
    .await?;
    tracing::warn!("created TUF root, targets and bins metadata with INSECURE development keys");
    Ok(vec![
        (ROLE_ROOT.into(), 1, unix(root_exp)),
        (ROLE_TARGETS.into(), 1, unix(targets_exp)),
        (ROLE_BINS.into(), 1, unix(bins_exp)),
    ])
}

/// Whether `timestamp.json` in the store is missing or older than the version the index
/// recorded (a rollback of the store: sign a fresh one). A *newer* one means the index is behind
/// the store (an old backup, or another writer published since): signing from it would reuse
/// version numbers clients already trust, so that is an error.
async fn published_timestamp_is_stale(
    store: &BlobStore,
    roles: &BTreeMap<String, (u64, i64)>,
) -> Result<bool, PublishError> {
    let Some((recorded, _)) = roles.get(ROLE_TIMESTAMP) else {
        return Ok(false);
    };
    let published = match store.get_named(&tufa_tree::tuf_key("timestamp.json")).await {
        Ok(Some(bytes)) => tufa_tuf::Signed::<tufa_tuf::Timestamp>::from_bytes("timestamp", &bytes)
            .map(|p| p.metadata.signed.version)
            .ok(),
        _ => None,
    };
    if let Some(published) = published.filter(|p| p > recorded) {
        return Err(PublishError::Tuf(format!(
            "the published timestamp.json is v{published}, newer than v{recorded}, the last one this index signed: the index is behind the store (restored from an older backup, or another writer published since), and signing from it would reuse versions clients already trust; rebuild the index from the store (`tufa rebuild-index --force`)"
        )));
    }
    if published != Some(*recorded) {
        tracing::error!(
            published = ?published,
            recorded,
            "published timestamp.json is not the one this mirror last signed; signing a new one"
        );
        return Ok(true);
    }
    Ok(false)
}

/// Checks that `online` is a snapshot and a timestamp key of `root`.
pub fn online_key_signs_for_root(root: &tufa_tuf::Root, online: &tufa_tuf::KeyId) -> Result<(), String> {
    for role in ["snapshot", "timestamp"] {
        let listed = root.roles.get(role).is_some_and(|k| k.keyids.contains(online));
        if !listed {
            return Err(format!(
                "the configured online key {online} is not a `{role}` key of root v{}",
                root.version
            ));
        }
    }
    Ok(())
}

/// Checks that `bins` delegates the hashed bins (bin-n) to `online`.
pub fn online_key_signs_for_bins(bins: &tufa_tuf::Targets, online: &tufa_tuf::KeyId) -> Result<(), String> {
    let delegated = bins.delegations.as_ref().and_then(|d| d.succinct_roles.as_ref());
    if delegated.is_some_and(|s| s.keyids.contains(online)) {
        Ok(())
    } else {
        Err(format!(
            "the configured online key {online} is not the bin-n key delegated by bins v{}",
            bins.version
        ))
    }
}

/// Why `online` cannot sign for the published metadata: the published root (snapshot,
/// timestamp) or bins (bin-n) does not list it, and every client would reject what it signs.
/// `None` when it can sign, or when nothing is published yet. This happens between configuring
/// a new online key and importing the ceremony's rotation; callers add how to fix it.
pub async fn online_key_problem(
    store: &BlobStore,
    roles: &BTreeMap<String, (u64, i64)>,
    online: &tufa_tuf::KeyId,
) -> Result<Option<String>, PublishError> {
    let Some((root_version, _)) = roles.get(ROLE_ROOT) else {
        return Ok(None);
    };
    let read = |name: String| async move {
        store
            .get_named(&tufa_tree::tuf_key(&name))
            .await?
            .ok_or_else(|| PublishError::Tuf(format!("published `{name}` is missing")))
    };
    let root_name = format!("{root_version}.root.json");
    let root = tufa_tuf::Signed::<tufa_tuf::Root>::from_file(&root_name, &read(root_name.clone()).await?)
        .map_err(tuf_err)?
        .metadata;
    if let Err(problem) = online_key_signs_for_root(&root.signed, online) {
        return Ok(Some(problem));
    }
    let bins_name = format!("{}.bins.json", roles.get(ROLE_BINS).map_or(1, |(v, _)| *v));
    let bins = tufa_tuf::Signed::<tufa_tuf::Targets>::from_file(&bins_name, &read(bins_name.clone()).await?)
        .map_err(tuf_err)?
        .metadata;
    Ok(online_key_signs_for_bins(&bins.signed, online).err())
}

/// Refuses to sign with an online key the published metadata does not list
/// ([`online_key_problem`]).
async fn check_online_key(
    store: &BlobStore,
    roles: &BTreeMap<String, (u64, i64)>,
    online: &dyn Signer,
) -> Result<(), PublishError> {
    match online_key_problem(store, roles, &online.keyid()).await? {
        None => Ok(()),
        Some(problem) => Err(PublishError::Tuf(format!(
            "{problem}: the key ceremony's metadata naming this key must be imported before it signs"
        ))),
    }
}

/// Signs what changed: dirty bins (and bins within half their lifetime of expiry), a new
/// snapshot and a new timestamp. Creates the first metadata with dev keys when there is none.
/// Returns `None` when TUF cannot run (no metadata yet and no dev keys to create it).
pub async fn publish_tuf(
    store: &BlobStore,
    index: &Index,
    layout: &BinLayout,
    signing: &TufSigning,
    force_timestamp: bool,
) -> Result<Option<TufReport>, PublishError> {
    let now = Time::now();
    let mut report = TufReport::default();
    let idx = index.clone();
    let mut roles = tokio::task::spawn_blocking(move || idx.tuf_roles())
        .await
        .map_err(blocking_err)??;
    if !roles.contains_key(ROLE_ROOT) {
        let Some(dev) = &signing.insecure_dev_offline else {
            return Ok(None);
        };
        let created = bootstrap(store, layout, signing, dev, now).await?;
        let idx = index.clone();
        let all_bins: Vec<u32> = (0..layout.bin_count()).collect();
        let rows = created.clone();
        tokio::task::spawn_blocking(move || -> Result<(), IndexError> {
            idx.record_tuf_roles(&rows, &[])?;
            idx.mark_bins_dirty(all_bins)
        })
        .await
        .map_err(blocking_err)??;
        for (r, v, e) in created {
            roles.insert(r, (v, e));
        }
        report.bootstrapped = true;
        report.files_written += 3;
    }

    check_online_key(store, &roles, signing.online.as_ref()).await?;
    // A published timestamp other than the one this writer last signed (restored from a
    // backup, rolled back by someone with write access to the store): sign a fresh one now
    // rather than leave it until the next change.
    let force_timestamp = force_timestamp || published_timestamp_is_stale(store, &roles).await?;

    // Bins to sign: dirty ones, plus any within half its lifetime of expiry.
    let idx = index.clone();
    let mut bins: Vec<u32> = tokio::task::spawn_blocking(move || idx.dirty_bins())
        .await
        .map_err(blocking_err)??;
    let half_life = signing.expiries.bin_n.as_secs() / 2;
    for n in 0..layout.bin_count() {
        let name = layout.role_name(n);
        match roles.get(name.as_str()) {
            Some((_, exp)) if *exp - unix(now) > half_life => {}
            _ => bins.push(n),
        }
    }
    bins.sort_unstable();
    bins.dedup();

    // Nothing changed and nothing near expiry: leave the published metadata as it is (unless a
    // fresh timestamp is asked for, as `tufa refresh` does).
    let fresh = |role: &str, lifetime: SignedDuration| {
        roles
            .get(role)
            .is_some_and(|(_, exp)| *exp - unix(now) > lifetime.as_secs() / 2)
    };
    let snapshot_fresh = fresh(ROLE_SNAPSHOT, signing.expiries.snapshot);
    report.snapshot_version = roles.get(ROLE_SNAPSHOT).map_or(0, |(v, _)| *v);
    report.timestamp_version = roles.get(ROLE_TIMESTAMP).map_or(0, |(v, _)| *v);
    if bins.is_empty() && snapshot_fresh {
        if !force_timestamp && fresh(ROLE_TIMESTAMP, signing.expiries.timestamp) {
            return Ok(Some(report));
        }
        // Only a new timestamp, over the snapshot already published.
        let name = format!("{}.snapshot.json", report.snapshot_version);
        let snapshot_bytes = store
            .get_named(&tufa_tree::tuf_key(&name))
            .await?
            .ok_or_else(|| PublishError::Tuf(format!("published `{name}` is missing")))?;
        // The timestamp vouches for this snapshot as version `snapshot_version`: make sure the
        // stored file is that version, not another one put under its name.
        tufa_tuf::Signed::<tufa_tuf::Snapshot>::from_file(&name, &snapshot_bytes).map_err(tuf_err)?;
        let ts_exp = build::expires_after(now, signing.expiries.timestamp).map_err(tuf_err)?;
        let version = report.timestamp_version + 1;
        let idx = index.clone();
        let row = vec![(ROLE_TIMESTAMP.to_owned(), version, unix(ts_exp))];
        tokio::task::spawn_blocking(move || idx.record_tuf_roles(&row, &[]))
            .await
            .map_err(blocking_err)??;
        let ts = build::new_timestamp(&snapshot_bytes, report.snapshot_version, version, ts_exp)
            .map_err(tuf_err)?;
        write_file(
            store,
            "timestamp.json".into(),
            signed_bytes(ts, &[signing.online.as_ref()])?,
        )
        .await?;
        report.timestamp_version = version;
        report.files_written += 1;
        tracing::info!(timestamp = version, "TUF timestamp refreshed");
        return Ok(Some(report));
    }

    // Reserve versions first (see the module doc), then build and sign.
    let bin_exp = build::expires_after(now, signing.expiries.bin_n).map_err(tuf_err)?;
    let snap_exp = build::expires_after(now, signing.expiries.snapshot).map_err(tuf_err)?;
    let ts_exp = build::expires_after(now, signing.expiries.timestamp).map_err(tuf_err)?;
    let next = |role: &str| roles.get(role).map_or(1, |(v, _)| v + 1);
    let mut reserved: Vec<(String, u64, i64)> = bins
        .iter()
        .map(|n| {
            let name = layout.role_name(*n);
            let v = next(name.as_str());
            (name.to_string(), v, unix(bin_exp))
        })
        .collect();
    let snapshot_version = next(ROLE_SNAPSHOT);
    let timestamp_version = next(ROLE_TIMESTAMP);
    reserved.push((ROLE_SNAPSHOT.into(), snapshot_version, unix(snap_exp)));
    reserved.push((ROLE_TIMESTAMP.into(), timestamp_version, unix(ts_exp)));
    let idx = index.clone();
    let rows = reserved.clone();
    tokio::task::spawn_blocking(move || idx.record_tuf_roles(&rows, &[]))
        .await
        .map_err(blocking_err)??;
    for (r, v, e) in &reserved {
        roles.insert(r.clone(), (*v, *e));
    }

    // Bins, signed on blocking threads a chunk at a time, written a chunk at a time (staged:
    // see below): one hand-off each way per chunk, not per bin.
    let staged = store.with_group_commit()?;
    let staged = &staged;
    let results: Vec<Result<(), PublishError>> = futures::stream::iter(bins.chunks(SIGN_CHUNK))
        .map(|chunk| {
            let index = index.clone();
            let layout = layout.clone();
            let online = signing.online.clone();
            let chunk: Vec<(u32, u64)> = chunk
                .iter()
                .map(|n| {
                    (
                        *n,
                        roles.get(layout.role_name(*n).as_str()).map_or(1, |(v, _)| *v),
                    )
                })
                .collect();
            async move {
                let signed = tokio::task::spawn_blocking(move || -> Result<_, PublishError> {
                    let mut signed = Vec::with_capacity(chunk.len());
                    for (n, version) in chunk {
                        let mut targets = BTreeMap::new();
                        for (path, json) in index.bin_targets(n)? {
                            let path = TargetPath::new(&path).map_err(tuf_err)?;
                            let file: TargetFile = serde_json::from_slice(&json)
                                .map_err(|e| PublishError::Tuf(e.to_string()))?;
                            targets.insert(path, file);
                        }
                        let bin = build::new_bin(&layout, n, targets, version, bin_exp).map_err(tuf_err)?;
                        let name = tufa_tuf::metadata_file_name(&layout.role_name(n), version, true);
                        let bytes = signed_bytes(bin, &[online.as_ref()])?;
                        signed.push((tufa_tree::tuf_key(&name), Bytes::from(bytes)));
                    }
                    Ok(signed)
                })
                .await
                .map_err(blocking_err)??;
                staged.put_named_staged_many(signed).await?;
                Ok::<(), PublishError>(())
            }
        })
        // Two chunks at once: one signing while the other is written.
        .buffer_unordered(2)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    // The bins are written without an fsync each and made durable together here (two
    // `syncfs` on the local disk), before the snapshot that lists them: a first publish
    // writes 16,384 of them.
    staged.commit_group().await?;
    report.bins_signed = bins.len();
    report.files_written += bins.len();

    // Snapshot lists every role with its current version.
    let version_of = |r: &str| roles.get(r).map_or(1, |(v, _)| *v);
    let bin_versions: Vec<(RoleName, u64)> = (0..layout.bin_count())
        .map(|n| layout.role_name(n))
        .map(|r| {
            let v = version_of(r.as_str());
            (r, v)
        })
        .collect();
    let meta = build::snapshot_meta(version_of(ROLE_TARGETS), version_of(ROLE_BINS), bin_versions);
    let snapshot = build::new_snapshot(meta, snapshot_version, snap_exp).map_err(tuf_err)?;
    let online = signing.online.clone();
    let snapshot_bytes = tokio::task::spawn_blocking(move || signed_bytes(snapshot, &[online.as_ref()]))
        .await
        .map_err(blocking_err)??;
    let ts = build::new_timestamp(&snapshot_bytes, snapshot_version, timestamp_version, ts_exp)
        .map_err(tuf_err)?;
    let ts_bytes = signed_bytes(ts, &[signing.online.as_ref()])?;
    report.snapshot_bytes = snapshot_bytes.len();
    write_file(store, format!("{snapshot_version}.snapshot.json"), snapshot_bytes).await?;
    write_file(store, "timestamp.json".into(), ts_bytes).await?;
    report.files_written += 2;
    report.snapshot_version = snapshot_version;
    report.timestamp_version = timestamp_version;

    // Everything is written: the signed bins are clean now.
    let idx = index.clone();
    tokio::task::spawn_blocking(move || idx.record_tuf_roles(&[], &bins))
        .await
        .map_err(blocking_err)??;
    tracing::info!(
        bins = report.bins_signed,
        snapshot = snapshot_version,
        timestamp = timestamp_version,
        snapshot_bytes = report.snapshot_bytes,
        "TUF metadata published"
    );
    Ok(Some(report))
}

/// Offline roles (root, targets, bins) expiring within `within`: they need the key ceremony.
pub async fn offline_roles_expiring(
    index: &Index,
    within: SignedDuration,
) -> Result<Vec<(String, i64)>, PublishError> {
    let idx = index.clone();
    let roles = tokio::task::spawn_blocking(move || idx.tuf_roles())
        .await
        .map_err(blocking_err)??;
    let limit = unix(Time::now()) + within.as_secs();
    Ok(roles
        .into_iter()
        .filter(|(r, (_, exp))| [ROLE_ROOT, ROLE_TARGETS, ROLE_BINS].contains(&r.as_str()) && *exp < limit)
        .map(|(r, (_, exp))| (r, exp))
        .collect())
}
