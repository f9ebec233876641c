//! The single-writer lease: one object, [`LEASE_KEY`] (`lease/writer.json`), that a writer
//! (`tufa sync`, `refresh`, `import-metadata`) holds while it publishes, so two writers never
//! interleave their manifests and TUF versions in one store, even from different hosts with
//! different indexes.
//!
//! ```json
//! {"holder": {"host": "writer-1", "pid": 4242, "started_at": "…"},
//!  "token": "<32 hex, random>", "acquired_at": "…", "expires_at": "…"}
//! ```
//!
//! # Protocol
//!
//! - **Acquire**: a create-if-absent put ([`PutMode::Create`]). If the object exists and has not
//!   expired (`expires_at` is in the future by the acquirer's clock), the acquirer is refused
//!   with [`LeaseError::Held`], naming the holder. If it has expired, the acquirer replaces it
//!   with a put conditional on the ETag/version it read ([`PutMode::Update`]): of two writers
//!   racing for one expired lease, exactly one wins; the other sees the precondition fail and
//!   reads the winner's lease.
//! - **Renew**: every `renew` interval a background task rewrites the record with a new
//!   `expires_at` (now + ttl), conditional on the ETag of its last write. A failed precondition
//!   means someone else replaced or removed the object: the lease is lost.
//! - **Lost**: [`Lease::ensure_held`] (and the [`LeaseFence`] a [`BlobStore`] checks before
//!   every named write, see [`BlobStore::with_lease_fence`]) fails once the renewal task saw the
//!   lease taken, or once no renewal has succeeded for three quarters of the ttl (measured on
//!   the holder's monotonic clock from before the last successful write), so the holder stops
//!   a quarter ttl before anyone else may take over.
//! - **Release**: deletes the object, only if it still holds our token and our lease has not
//!   run out locally (the delete itself is not conditional: object stores have no
//!   delete-if-match; while our lease is valid nobody else can have replaced it).
//!
//! Expiry compares wall clocks of different hosts: keep them synchronised (NTP); the skew must
//! stay well below `ttl - renew`.
//!
//! # Stores
//!
//! S3 (`If-None-Match: *`, `If-Match`), GCS (generation preconditions), Azure Blob (ETag
//! preconditions) and memory do the conditional puts natively. object_store's local
//! file system does create-if-absent (a hard link) but not replace-if-unchanged, so on local disk
//! every lease operation runs under an exclusive `flock` of `lease/writer.json.lock` beside
//! the object: check the ETag, then write, with no other tufa process in between. (This holds
//! for processes on one host, and on network file systems whose locks work across hosts.)
//!
//! A store whose client reports the conditional modes as not implemented gets
//! [`LeaseError::Unsupported`]. A store that accepts the conditional headers but ignores them
//! (an old S3-compatible server) is caught on acquire by two probes that must fail: a second
//! create-if-absent of the lease and a replace with a wrong ETag.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use jiff::Timestamp;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::{Backend, BlobStore};

/// The key of the lease object.
pub const LEASE_KEY: &str = "lease/writer.json";
/// On local disk: the lock file serialising lease operations, relative to the store's root.
const LOCAL_LOCK: &str = "lease/writer.json.lock";
/// Acquire attempts when the object keeps changing under us (released, taken over).
const ACQUIRE_ATTEMPTS: usize = 5;
/// Shortest wait before retrying a renewal that failed for a transient reason.
const MIN_RETRY: Duration = Duration::from_millis(100);

/// Who holds the lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// The holder's host name.
    pub host: String,
    /// The holder's process id on that host.
    pub pid: u32,
    /// When the holding process started its command.
    pub started_at: Timestamp,
    /// The kernel boot and pid namespace the pid belongs to (Linux: `<boot_id>/pid:[<inode>]`),
    /// so that a writer on the same host and namespace can tell the holder's process is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_namespace: Option<String>,
}

impl LeaseHolder {
    /// This process on this host, started at `started_at`.
    pub fn this_process(started_at: Timestamp) -> Self {
        Self {
            host: host_name(),
            pid: std::process::id(),
            started_at,
            pid_namespace: pid_namespace(),
        }
    }

    /// Whether this holder is certainly gone: it ran on this host, in this kernel boot and pid
    /// namespace, is not this process, and no process has its pid any more. Anything unsure
    /// (another host or namespace, a pid in use again, no permission to ask) says no.
    pub fn is_gone(&self) -> bool {
        let here = pid_namespace();
        here.is_some()
            && self.pid_namespace == here
            && self.host == host_name()
            && self.pid != std::process::id()
            && !process_exists(self.pid)
    }
}

/// `<boot_id>/pid:[<inode>]` of this process, where Linux says.
fn pid_namespace() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), ns.display()))
}

/// Whether a process with this pid exists (`kill(pid, 0)`): only "no such process" says no.
#[cfg(unix)]
fn process_exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return true;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

#[cfg(not(unix))]
fn process_exists(_pid: u32) -> bool {
    true
}

/// This host's name: the kernel's (Linux), else `$HOSTNAME`, else `unknown-host`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// The content of the lease object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub holder: LeaseHolder,
    /// Random, new for every acquisition: tells this holding apart from any other, even by
    /// the same host and pid.
    pub token: String,
    /// When the holder took the lease (renewals keep it).
    pub acquired_at: Timestamp,
    /// After this instant (by the reader's clock) another writer may take the lease over.
    pub expires_at: Timestamp,
}

impl LeaseRecord {
    /// Whether the lease has run out at `now`.
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.expires_at <= now
    }

    fn to_bytes(&self) -> Result<Bytes, LeaseError> {
        serde_json::to_vec_pretty(self)
            .map(Bytes::from)
            .map_err(|e| LeaseError::Unreadable {
                detail: format!("cannot encode the lease: {e}"),
            })
    }

    fn parse(bytes: &[u8]) -> Result<Self, LeaseError> {
        serde_json::from_slice(bytes).map_err(|e| LeaseError::Unreadable {
            detail: e.to_string(),
        })
    }
}

/// How long a lease lives without renewal, and how often the holder renews it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    ttl: Duration,
    renew: Duration,
}

impl LeaseTiming {
    /// The defaults: ttl 120 s, renewed every 30 s.
    pub const DEFAULT: Self = Self {
        ttl: Duration::from_secs(120),
        renew: Duration::from_secs(30),
    };

    /// Checks that `renew` is not zero and shorter than half of `ttl`, so that one failed
    /// renewal does not lose the lease.
    pub fn new(ttl: Duration, renew: Duration) -> Result<Self, LeaseError> {
        if renew.is_zero() || renew.saturating_mul(2) >= ttl {
            return Err(LeaseError::Timing { ttl, renew });
        }
        Ok(Self { ttl, renew })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn renew(&self) -> Duration {
        self.renew
    }

    /// The holder stops this long before its lease could be taken over.
    fn margin(&self) -> Duration {
        self.ttl / 4
    }
}

impl Default for LeaseTiming {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why the lease could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another writer holds an unexpired lease.
    #[error(
        "the mirror's store is locked by another writer: host {}, pid {}, since {}, lease expires at {} (if that writer stops renewing it, another writer takes it over after that; lease object {LEASE_KEY})",
        .holder.host, .holder.pid, shown(*.since), shown(*.expires)
    )]
    Held {
        holder: Box<LeaseHolder>,
        since: Timestamp,
        expires: Timestamp,
        /// The holding's token (what `tufa lease break` takes).
        token: String,
    },
    /// This writer no longer holds the lease: it must stop publishing.
    #[error("this writer lost the store's single-writer lease ({LEASE_KEY}): {reason}")]
    Lost { reason: String },
    /// The store cannot do the conditional writes the lease needs.
    #[error(
        "the object store {store} does not support conditional writes ({detail}); the single-writer lease needs create-if-absent and replace-if-unchanged puts: use a store that has them (AWS S3 since 2024, GCS, Azure Blob, recent MinIO and Ceph RGW, a local directory)"
    )]
    Unsupported { store: String, detail: String },
    /// The lease object is not a lease tufa wrote.
    #[error(
        "the lease object {LEASE_KEY} is unreadable ({detail}); once you are sure no tufa writer is running, delete that object from the store"
    )]
    Unreadable { detail: String },
    /// No lease object exists (for [`break_lease`]).
    #[error("no writer holds the store: there is no lease object {LEASE_KEY}")]
    NoLease,
    /// The lease has another token than the one given to [`break_lease`].
    #[error(
        "the lease now has token {}, not {expected}: host {}, pid {} holds it since {} (look again before breaking it)",
        .current.token, .current.holder.host, .current.holder.pid, shown(.current.acquired_at)
    )]
    TokenMismatch {
        expected: String,
        current: Box<LeaseRecord>,
    },
    /// The lease object changed on every attempt.
    #[error(
        "could not take the lease {LEASE_KEY} after {ACQUIRE_ATTEMPTS} attempts: other writers keep changing it"
    )]
    Contended,
    /// Invalid timing.
    #[error(
        "lease renewal interval {renew:?} must be above zero and shorter than half the ttl {ttl:?}, so that one failed renewal does not lose the lease"
    )]
    Timing { ttl: Duration, renew: Duration },
    /// The object store failed.
    #[error("object store operation on the lease {LEASE_KEY} failed")]
    Backend(#[source] object_store::Error),
    /// The local lock file failed.
    #[error("the lease's lock file `{}` failed", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A timestamp to the second, for messages.
fn shown(t: Timestamp) -> String {
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

fn after(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// What a conditional write found.
enum Outcome<T> {
    Done(T),
    /// The object exists (create), or is not the version we expected (update).
    Conflict,
}

/// Conditional operations on the lease object, native or under the local lock.
#[derive(Debug, Clone)]
struct Cas {
    store: Arc<dyn ObjectStore>,
    description: String,
    key: Key,
    kind: CasKind,
}

#[derive(Debug, Clone)]
enum CasKind {
    /// The store does the conditional puts; `probe`: check on acquire that it really does.
    Native { probe: bool },
    /// Local disk: updates are check-then-write under an exclusive lock of this file.
    Local { lock: PathBuf },
}

fn unsupported(description: &str, e: &object_store::Error) -> LeaseError {
    LeaseError::Unsupported {
        store: description.to_owned(),
        detail: e.to_string(),
    }
}

impl Cas {
    fn for_store(store: &BlobStore) -> Self {
        let kind = match &store.backend {
            Backend::Local { root } => CasKind::Local {
                lock: root.join(LOCAL_LOCK),
            },
            Backend::Memory => CasKind::Native { probe: false },
            Backend::Other => CasKind::Native { probe: true },
        };
        Self {
            store: Arc::clone(store.object_store()),
            description: store.describe().to_owned(),
            key: Key::from(LEASE_KEY),
            kind,
        }
    }

    /// On local disk, the exclusive lock (held until the returned file is dropped).
    async fn lock(&self) -> Result<Option<std::fs::File>, LeaseError> {
        let CasKind::Local { lock } = &self.kind else {
            return Ok(None);
        };
        let path = lock.clone();
        let io = |path: &PathBuf| {
            let path = path.clone();
            move |source| LeaseError::Io { path, source }
        };
        let result = tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io(&path))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io(&path))?;
            file.lock().map_err(io(&path))?;
            Ok(file)
        })
        .await;
        match result {
            Ok(r) => r.map(Some),
            Err(join) => Err(LeaseError::Io {
                path: lock.clone(),
                source: std::io::Error::other(join),
            }),
        }
    }

    async fn put(&self, data: Bytes, mode: PutMode) -> object_store::Result<UpdateVersion> {
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        self.store
            .put_opts(&self.key, PutPayload::from(data), opts)
            .await
            .map(UpdateVersion::from)
    }

    /// Create-if-absent.
    async fn create(&self, data: Bytes) -> Result<Outcome<UpdateVersion>, LeaseError> {
        let _lock = self.lock().await?;
        match self.put(data, PutMode::Create).await {
            Ok(v) => Ok(Outcome::Done(v)),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Outcome::Conflict),
            Err(
                e @ (object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. }),
            ) => Err(unsupported(&self.description, &e)),
            Err(e) => Err(LeaseError::Backend(e)),
        }
    }

    /// Replace-if-unchanged: only if the object is still the version `expected`.
    async fn update(
        &self,
        data: Bytes,
        expected: &UpdateVersion,
    ) -> Result<Outcome<UpdateVersion>, LeaseError> {
        let mode = match &self.kind {
            CasKind::Native { .. } => PutMode::Update(expected.clone()),
            CasKind::Local { .. } => PutMode::Overwrite,
        };
        let _lock = self.lock().await?;
        if let CasKind::Local { .. } = self.kind {
            let current = match self.store.head(&self.key).await {
                Ok(meta) => meta.e_tag,
                Err(object_store::Error::NotFound { .. }) => return Ok(Outcome::Conflict),
                Err(e) => return Err(LeaseError::Backend(e)),
            };
            if current.is_none() || current != expected.e_tag {
                return Ok(Outcome::Conflict);
            }
        }
        match self.put(data, mode).await {
            Ok(v) => Ok(Outcome::Done(v)),
            Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
                Ok(Outcome::Conflict)
            }
            Err(
                e @ (object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. }),
            ) => Err(unsupported(&self.description, &e)),
            Err(e) => Err(LeaseError::Backend(e)),
        }
    }

    /// The current record and its version, or `None`.
    async fn read(&self) -> Result<Option<(LeaseRecord, UpdateVersion)>, LeaseError> {
        let result = match self.store.get(&self.key).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(LeaseError::Backend(e)),
        };
        let version = UpdateVersion {
            e_tag: result.meta.e_tag.clone(),
            version: result.meta.version.clone(),
        };
        let bytes = result.bytes().await.map_err(LeaseError::Backend)?;
        Ok(Some((LeaseRecord::parse(&bytes)?, version)))
    }

    /// Deletes the object if it holds `token`; returns what was deleted.
    async fn delete_if(&self, token: &str) -> Result<Result<LeaseRecord, LeaseError>, LeaseError> {
        let _lock = self.lock().await?;
        let Some((record, _)) = self.read().await? else {
            return Ok(Err(LeaseError::NoLease));
        };
        if record.token != token {
            return Ok(Err(LeaseError::TokenMismatch {
                expected: token.to_owned(),
                current: Box::new(record),
            }));
        }
        match self.store.delete(&self.key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(Ok(record)),
            Err(e) => Err(LeaseError::Backend(e)),
        }
    }

    /// Checks that the store refuses what it must refuse (see the module doc). `data` is the
    /// lease we just wrote; the probes rewrite the same bytes if the store lets them through.
    async fn probe(&self, data: &Bytes) -> Result<(), LeaseError> {
        let CasKind::Native { probe: true } = self.kind else {
            return Ok(());
        };
        let ignored = |what: &str| LeaseError::Unsupported {
            store: self.description.clone(),
            detail: format!("it accepted {what}, so it ignores the precondition"),
        };
        match self.put(data.clone(), PutMode::Create).await {
            Ok(_) => return Err(ignored("a create-if-absent put over the existing lease object")),
            Err(e) => tracing::debug!(error = %e, "lease probe: a second create was refused, as it must be"),
        }
        let wrong = UpdateVersion {
            e_tag: Some(format!(
                "\"tufa-lease-probe-{}\"",
                hex::encode(rand::random::<[u8; 8]>())
            )),
            version: Some("1".to_owned()),
        };
        match self.put(data.clone(), PutMode::Update(wrong)).await {
            Ok(_) => Err(ignored(
                "a put conditional on an ETag the lease object does not have",
            )),
            Err(
                e @ (object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. }),
            ) => Err(unsupported(&self.description, &e)),
            Err(e) => {
                tracing::debug!(error = %e, "lease probe: a put with a wrong ETag was refused, as it must be");
                Ok(())
            }
        }
    }
}

/// The holder's view of its lease.
#[derive(Debug)]
struct State {
    record: LeaseRecord,
    version: UpdateVersion,
    /// The lease runs out at this instant on our monotonic clock (measured from before the
    /// last successful write).
    valid_until: Instant,
}

/// Shared by the [`Lease`], its renewal task and its fences.
#[derive(Debug)]
struct Shared {
    cas: Cas,
    timing: LeaseTiming,
    state: Mutex<State>,
    /// `Some(reason)` once the lease is lost (or released).
    lost: watch::Sender<Option<String>>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lease is lost: logged as an error, once.
    fn mark_lost(&self, reason: &str) {
        if self.end(reason) {
            tracing::error!(reason, "writer lease lost");
        }
    }

    /// No more writes under this lease (lost, released or dropped); true the first time.
    fn end(&self, reason: &str) -> bool {
        self.lost.send_if_modified(|lost| {
            if lost.is_some() {
                return false;
            }
            *lost = Some(reason.to_owned());
            true
        })
    }

    /// The instant from which this holder no longer counts on its lease.
    fn deadline(&self) -> Instant {
        self.state()
            .valid_until
            .checked_sub(self.timing.margin())
            .unwrap_or_else(Instant::now)
    }

    fn ensure_held(&self) -> Result<(), LeaseError> {
        if let Some(reason) = self.lost.borrow().clone() {
            return Err(LeaseError::Lost { reason });
        }
        if Instant::now() >= self.deadline() {
            let reason = format!(
                "no renewal succeeded for {:?} of its {:?} ttl",
                self.timing.ttl - self.timing.margin(),
                self.timing.ttl
            );
            self.mark_lost(&reason);
            return Err(LeaseError::Lost { reason });
        }
        Ok(())
    }

    async fn renew(&self) -> Result<(), LeaseError> {
        self.ensure_held()?;
        let (mut record, mut version) = {
            let s = self.state();
            (s.record.clone(), s.version.clone())
        };
        for attempt in 0..2 {
            let started = Instant::now();
            record.expires_at = after(Timestamp::now(), self.timing.ttl);
            let data = record.to_bytes()?;
            match self.cas.update(data, &version).await? {
                Outcome::Done(v) => {
                    let mut s = self.state();
                    s.record = record;
                    s.version = v;
                    s.valid_until = started + self.timing.ttl;
                    tracing::debug!("writer lease renewed");
                    return Ok(());
                }
                Outcome::Conflict if attempt == 0 => {
                    // A renewal whose answer was lost may have landed: if the object still
                    // holds our token, nobody took it over; continue from its version.
                    match self.cas.read().await? {
                        Some((current, v)) if current.token == record.token => version = v,
                        _ => break,
                    }
                }
                Outcome::Conflict => break,
            }
        }
        let reason = "the lease object changed: another writer took it over or it was broken";
        self.mark_lost(reason);
        Err(LeaseError::Lost {
            reason: reason.to_owned(),
        })
    }

    /// Renews every `renew` interval until the lease is lost; a transient failure is retried
    /// sooner, until the deadline passes.
    async fn renew_loop(self: Arc<Self>) {
        let mut delay = self.timing.renew;
        loop {
            tokio::time::sleep(delay).await;
            let deadline = self.deadline();
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.renew()).await {
                Ok(Ok(())) => delay = self.timing.renew,
                Ok(Err(LeaseError::Lost { .. })) => return,
                Ok(Err(e)) => {
                    if self.ensure_held().is_err() {
                        return;
                    }
                    tracing::warn!(error = %error_chain(&e), "cannot renew the writer lease; retrying");
                    delay = (self.timing.renew / 4).max(MIN_RETRY);
                }
                Err(_elapsed) => {
                    // ensure_held marks it lost: the deadline has passed.
                    if self.ensure_held().is_err() {
                        return;
                    }
                }
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A cheap handle that says whether the lease is still held; a [`BlobStore`] with a fence
/// ([`BlobStore::with_lease_fence`]) checks it before every named write.
#[derive(Clone)]
pub struct LeaseFence(Arc<Shared>);

impl std::fmt::Debug for LeaseFence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseFence")
            .field("token", &self.0.state().record.token)
            .finish()
    }
}

impl LeaseFence {
    /// `Err(Lost)` once the lease is lost, released, or has run out locally.
    pub fn ensure_held(&self) -> Result<(), LeaseError> {
        self.0.ensure_held()
    }
}

/// A held lease. Renewed in the background until [`release`](Self::release)d or dropped
/// (dropping stops the renewal and leaves the object to expire).
#[derive(Debug)]
pub struct Lease {
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Lease {
    /// Takes the lease on `store` for `holder`, or says who holds it
    /// ([`LeaseError::Held`]), and starts renewing it. Must run inside a tokio runtime.
    pub async fn acquire(
        store: &BlobStore,
        holder: LeaseHolder,
        timing: LeaseTiming,
    ) -> Result<Self, LeaseError> {
        Self::acquire_with(store, holder, timing, true).await
    }

    async fn acquire_with(
        store: &BlobStore,
        holder: LeaseHolder,
        timing: LeaseTiming,
        auto_renew: bool,
    ) -> Result<Self, LeaseError> {
        let cas = Cas::for_store(store);
        let token = hex::encode(rand::random::<[u8; 16]>());
        for _ in 0..ACQUIRE_ATTEMPTS {
            let started = Instant::now();
            let now = Timestamp::now();
            let record = LeaseRecord {
                holder: holder.clone(),
                token: token.clone(),
                acquired_at: now,
                expires_at: after(now, timing.ttl),
            };
            let data = record.to_bytes()?;
            if let Outcome::Done(version) = cas.create(data.clone()).await? {
                cas.probe(&data).await?;
                return Ok(Self::held(cas, timing, record, version, started, auto_renew));
            }
            let Some((current, version)) = cas.read().await? else {
                continue; // released in between: create again
            };
            let expired = current.is_expired_at(Timestamp::now());
            if !expired && !current.holder.is_gone() {
                return Err(held_error(current));
            }
            if let Outcome::Done(version) = cas.update(data.clone(), &version).await? {
                tracing::warn!(
                    host = %current.holder.host,
                    pid = current.holder.pid,
                    since = %shown(current.acquired_at),
                    expires = %shown(current.expires_at),
                    "{}",
                    if expired {
                        "took over an expired writer lease"
                    } else {
                        "took over the writer lease of a process on this host that is gone"
                    }
                );
                cas.probe(&data).await?;
                return Ok(Self::held(cas, timing, record, version, started, auto_renew));
            }
        }
        match cas.read().await? {
            Some((current, _)) if !current.is_expired_at(Timestamp::now()) => Err(held_error(current)),
            _ => Err(LeaseError::Contended),
        }
    }

    fn held(
        cas: Cas,
        timing: LeaseTiming,
        record: LeaseRecord,
        version: UpdateVersion,
        started: Instant,
        auto_renew: bool,
    ) -> Self {
        tracing::info!(
            token = %record.token,
            expires = %shown(record.expires_at),
            ttl_secs = timing.ttl.as_secs_f64(),
            "writer lease taken"
        );
        let shared = Arc::new(Shared {
            cas,
            timing,
            state: Mutex::new(State {
                record,
                version,
                valid_until: started + timing.ttl,
            }),
            lost: watch::Sender::new(None),
        });
        let task = auto_renew.then(|| tokio::spawn(Arc::clone(&shared).renew_loop()));
        Self { shared, task }
    }

    /// `Err(Lost)` once the lease was taken over, broken, or has run out locally. A writer
    /// calls it before each step that makes something visible.
    pub fn ensure_held(&self) -> Result<(), LeaseError> {
        self.shared.ensure_held()
    }

    /// A handle that checks the same thing, for [`BlobStore::with_lease_fence`].
    pub fn fence(&self) -> LeaseFence {
        LeaseFence(Arc::clone(&self.shared))
    }

    /// The record as last written.
    pub fn record(&self) -> LeaseRecord {
        self.shared.state().record.clone()
    }

    /// The lease's timing.
    pub fn timing(&self) -> LeaseTiming {
        self.shared.timing
    }

    /// Resolves with the reason once the lease is lost (or runs out locally).
    pub async fn lost(&self) -> LeaseError {
        let mut rx = self.shared.lost.subscribe();
        loop {
            if let Err(e) = self.shared.ensure_held() {
                return e;
            }
            let deadline = tokio::time::Instant::from_std(self.shared.deadline());
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        // The sender lives in `shared`, which we hold: cannot happen.
                        tokio::time::sleep_until(deadline).await;
                    }
                }
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Renews now (the background task does this every `renew` interval).
    pub async fn renew(&self) -> Result<(), LeaseError> {
        self.shared.renew().await
    }

    /// Stops renewing and deletes the lease object if it is still ours. A lease already lost
    /// is left alone (Ok). Afterwards every fence of this lease refuses writes.
    pub async fn release(mut self) -> Result<(), LeaseError> {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        let held = self.shared.ensure_held();
        self.shared.end("the lease was released");
        if let Err(e) = held {
            tracing::debug!(error = %e, "writer lease not released: it was not held any more");
            return Ok(());
        }
        let token = self.shared.state().record.token.clone();
        match self.shared.cas.delete_if(&token).await? {
            Ok(_) => {
                tracing::info!("writer lease released");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "writer lease not released: the object is not ours");
                Ok(())
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.shared.end("the lease was dropped without release");
    }
}

fn held_error(current: LeaseRecord) -> LeaseError {
    LeaseError::Held {
        since: current.acquired_at,
        expires: current.expires_at,
        token: current.token,
        holder: Box::new(current.holder),
    }
}

/// The lease object as it is now, or `None` when no writer holds the store.
pub async fn read_lease(store: &BlobStore) -> Result<Option<LeaseRecord>, LeaseError> {
    Ok(Cas::for_store(store).read().await?.map(|(r, _)| r))
}

/// Deletes the lease object if its token is `token` (what [`read_lease`] showed), and returns
/// it. For a writer that died without waiting for its ttl: make sure the holder's process is
/// gone first, or it keeps publishing until its next renewal fails.
pub async fn break_lease(store: &BlobStore, token: &str) -> Result<LeaseRecord, LeaseError> {
    Cas::for_store(store).delete_if(token).await?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn holder(pid: u32) -> LeaseHolder {
        LeaseHolder {
            host: format!("host-{pid}"),
            pid,
            started_at: Timestamp::now(),
            pid_namespace: None,
        }
    }

    #[test]
    fn a_holder_is_gone_only_when_certain() {
        let me = LeaseHolder::this_process(Timestamp::now());
        assert!(!me.is_gone(), "this process");
        // A child that has exited and been reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        let dead = LeaseHolder {
            pid: child.id(),
            ..me.clone()
        };
        assert!(dead.is_gone());
        // The same pid seen from another host or namespace: not ours to judge.
        assert!(
            !LeaseHolder {
                host: "elsewhere".into(),
                ..dead.clone()
            }
            .is_gone()
        );
        assert!(
            !LeaseHolder {
                pid_namespace: Some("other-boot/pid:[1]".into()),
                ..dead.clone()
            }
            .is_gone()
        );
        assert!(
            !LeaseHolder {
                pid_namespace: None,
                ..dead.clone()
            }
            .is_gone()
        );
        // A live process.
        let mut live = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        assert!(!LeaseHolder { pid: live.id(), ..me }.is_gone());
        live.kill().unwrap();
        live.wait().unwrap();
    }

    #[tokio::test]
    async fn a_gone_holder_on_this_host_is_taken_over_at_once() {
        on_each_store(|store| async move {
            let mut child = std::process::Command::new("true").spawn().unwrap();
            child.wait().unwrap();
            let dead = LeaseHolder {
                pid: child.id(),
                ..LeaseHolder::this_process(Timestamp::now())
            };
            drop(
                Lease::acquire_with(&store, dead, timing(60_000, 20_000), false)
                    .await
                    .unwrap(),
            );
            let next = Lease::acquire(&store, holder(2), timing(60_000, 20_000))
                .await
                .unwrap();
            assert_eq!(
                read_lease(&store).await.unwrap().unwrap().token,
                next.record().token
            );
            next.release().await.unwrap();
        })
        .await;
    }

    fn timing(ttl_ms: u64, renew_ms: u64) -> LeaseTiming {
        LeaseTiming::new(Duration::from_millis(ttl_ms), Duration::from_millis(renew_ms)).unwrap()
    }

    /// Runs `scenario` on memory and on the local disk (the flock fallback).
    async fn on_each_store<F, Fut>(scenario: F)
    where
        F: Fn(BlobStore) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        scenario(BlobStore::memory()).await;
        let dir = tempfile::tempdir().unwrap();
        scenario(BlobStore::local(dir.path()).unwrap()).await;
    }

    #[test]
    fn timing_is_validated() {
        assert!(LeaseTiming::new(Duration::from_secs(120), Duration::from_secs(30)).is_ok());
        for (ttl, renew) in [(120, 60), (120, 0), (10, 30)] {
            let e = LeaseTiming::new(Duration::from_secs(ttl), Duration::from_secs(renew)).unwrap_err();
            assert!(e.to_string().contains("half the ttl"), "{e}");
        }
    }

    #[tokio::test]
    async fn second_acquire_is_refused_naming_the_holder() {
        on_each_store(|store| async move {
            let first = Lease::acquire(&store, holder(11), timing(60_000, 20_000))
                .await
                .unwrap();
            let e = Lease::acquire(&store, holder(22), timing(60_000, 20_000))
                .await
                .unwrap_err();
            let LeaseError::Held { holder: h, token, .. } = &e else {
                panic!("{e}")
            };
            assert_eq!(h.pid, 11);
            assert_eq!(*token, first.record().token);
            let text = e.to_string();
            for part in [
                "host host-11",
                "pid 11",
                "since ",
                "expires at ",
                "takes it over after that",
                LEASE_KEY,
            ] {
                assert!(text.contains(part), "{part:?} missing: {text}");
            }
            first.ensure_held().unwrap();
            first.release().await.unwrap();
            assert_eq!(read_lease(&store).await.unwrap(), None, "{}", store.describe());
            // Released: the next writer gets it at once.
            let second = Lease::acquire(&store, holder(22), timing(60_000, 20_000))
                .await
                .unwrap();
            assert_eq!(read_lease(&store).await.unwrap().unwrap().holder.pid, 22);
            second.release().await.unwrap();
        })
        .await;
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_its_old_holder_has_lost_it() {
        on_each_store(|store| async move {
            // The first holder stops renewing (as if frozen or killed).
            let first = Lease::acquire_with(&store, holder(1), timing(300, 100), false)
                .await
                .unwrap();
            let fenced = store.with_lease_fence(first.fence());
            fenced
                .put_named("published/x.json", Bytes::from_static(b"1"))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(400)).await;
            let second = Lease::acquire(&store, holder(2), timing(60_000, 20_000))
                .await
                .unwrap();
            let on_store = read_lease(&store).await.unwrap().unwrap();
            assert_eq!(on_store.holder.pid, 2);
            assert_eq!(on_store.token, second.record().token);
            // The old holder: ran out locally, and its renewal finds the object changed.
            assert!(matches!(first.ensure_held(), Err(LeaseError::Lost { .. })));
            let e = first.renew().await.unwrap_err();
            assert!(matches!(e, LeaseError::Lost { .. }), "{e}");
            let e = fenced
                .put_named("published/x.json", Bytes::from_static(b"2"))
                .await
                .unwrap_err();
            assert!(e.to_string().contains("lost"), "{e}");
            assert_eq!(
                store.get_named("published/x.json").await.unwrap().unwrap(),
                Bytes::from_static(b"1")
            );
            // Its release leaves the new holder's lease alone.
            first.release().await.unwrap();
            assert_eq!(
                read_lease(&store).await.unwrap().unwrap().token,
                second.record().token
            );
            second.ensure_held().unwrap();
            second.release().await.unwrap();
        })
        .await;
    }

    #[tokio::test]
    async fn renewal_after_a_takeover_is_lost_even_before_the_local_deadline() {
        on_each_store(|store| async move {
            let first = Lease::acquire_with(&store, holder(1), timing(60_000, 20_000), false)
                .await
                .unwrap();
            first.renew().await.unwrap();
            // Someone breaks it and another writer takes it.
            let token = first.record().token;
            break_lease(&store, &token).await.unwrap();
            let second = Lease::acquire(&store, holder(2), timing(60_000, 20_000))
                .await
                .unwrap();
            assert!(first.ensure_held().is_ok(), "locally still valid until it renews");
            let e = first.renew().await.unwrap_err();
            assert!(matches!(e, LeaseError::Lost { .. }), "{e}");
            assert!(first.ensure_held().is_err());
            assert!(matches!(first.lost().await, LeaseError::Lost { .. }));
            second.release().await.unwrap();
        })
        .await;
    }

    #[tokio::test]
    async fn the_background_task_keeps_the_lease_and_notices_its_loss() {
        on_each_store(|store| async move {
            // Generous timing: the test machine may be busy.
            let first = Lease::acquire(&store, holder(1), timing(4_000, 300))
                .await
                .unwrap();
            let expires_before = first.record().expires_at;
            tokio::time::sleep(Duration::from_millis(1_000)).await;
            first.ensure_held().unwrap();
            assert!(first.record().expires_at > expires_before, "renewed");
            let e = Lease::acquire(&store, holder(2), timing(4_000, 300))
                .await
                .unwrap_err();
            assert!(matches!(e, LeaseError::Held { .. }), "{e}");
            // Broken under it: the next renewal fails and the loss is signalled.
            break_lease(&store, &first.record().token).await.unwrap();
            let lost = tokio::time::timeout(Duration::from_secs(2), first.lost())
                .await
                .unwrap();
            assert!(lost.to_string().contains("another writer took it over"), "{lost}");
            first.release().await.unwrap();
        })
        .await;
    }

    #[tokio::test]
    async fn racing_takers_of_an_expired_lease_only_one_wins() {
        on_each_store(|store| async move {
            let dead = Lease::acquire_with(&store, holder(1), timing(200, 50), false)
                .await
                .unwrap();
            drop(dead);
            tokio::time::sleep(Duration::from_millis(300)).await;
            let attempts = (10..18).map(|pid| {
                let store = store.clone();
                async move { Lease::acquire(&store, holder(pid), timing(60_000, 20_000)).await }
            });
            let results = futures::future::join_all(attempts).await;
            let winners: Vec<&Lease> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(winners.len(), 1, "{}: {results:?}", store.describe());
            for r in &results {
                if let Err(e) = r {
                    assert!(
                        matches!(e, LeaseError::Held { .. } | LeaseError::Contended),
                        "{e}"
                    );
                }
            }
            let on_store = read_lease(&store).await.unwrap().unwrap();
            assert_eq!(on_store.token, winners[0].record().token);
        })
        .await;
    }

    #[tokio::test]
    async fn break_needs_the_current_token() {
        on_each_store(|store| async move {
            assert!(matches!(
                break_lease(&store, "abc").await,
                Err(LeaseError::NoLease)
            ));
            let lease = Lease::acquire(&store, holder(1), timing(60_000, 20_000))
                .await
                .unwrap();
            let e = break_lease(&store, "abc").await.unwrap_err();
            assert!(e.to_string().contains(&lease.record().token), "{e}");
            let broken = break_lease(&store, &lease.record().token).await.unwrap();
            assert_eq!(broken.holder.pid, 1);
            assert_eq!(read_lease(&store).await.unwrap(), None);
        })
        .await;
    }

    #[tokio::test]
    async fn an_unreadable_lease_is_named() {
        let store = BlobStore::memory();
        store
            .object_store()
            .put(&Key::from(LEASE_KEY), PutPayload::from_static(b"not json"))
            .await
            .unwrap();
        let e = Lease::acquire(&store, holder(1), timing(60_000, 20_000))
            .await
            .unwrap_err();
        assert!(matches!(e, LeaseError::Unreadable { .. }), "{e}");
        assert!(e.to_string().contains(LEASE_KEY), "{e}");
    }

    #[tokio::test]
    async fn a_store_without_conditional_updates_is_refused() {
        // object_store's LocalFileSystem used as a generic store (not through
        // BlobStore::local): create-if-absent works, replace-if-unchanged is not implemented.
        let dir = tempfile::tempdir().unwrap();
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let store = BlobStore::from_object_store(Arc::new(fs), "plain-fs".into());
        let e = Lease::acquire(&store, holder(1), timing(60_000, 20_000))
            .await
            .unwrap_err();
        assert!(matches!(e, LeaseError::Unsupported { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("plain-fs") && text.contains("conditional writes"),
            "{text}"
        );
    }
}
