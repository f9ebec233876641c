//! The ceremony directory and its steps: `init`, `sign`, `status`, `publish`, `rotate-root`,
//! `resign`, `discard`, `verify`.
//!
//! ```text
//! DIR/ceremony.json          layout: format, bins bit length, default expiry, key holders
//! DIR/pending/N.<role>.json  metadata collecting signatures (root, targets, bins)
//! DIR/published/N.<role>.json  everything published so far (the whole root chain)
//! ```
//!
//! The directory lives on removable media and moves between the air-gapped machine and the
//! key holders; every write is atomic. Signature checks are tufa-tuf's
//! ([`tufa_tuf::verify_payload`]), the same code the mirror and its verifier use.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp as Time};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use tufa_tuf::build::{self, RoleKeySet, RootKeys};
use tufa_tuf::{
    BinLayout, Key, KeyId, ParsedMetadata, RoleKeys, RoleName, Root, Signature, Signed, Targets, TufError,
    format_expires, verify_payload,
};

use crate::error::{CeremonyError, Result};
use crate::fsutil;
use crate::keyfile::PublicKeyFile;
use crate::source::{KeySource, short};

pub const CEREMONY_FILE: &str = "ceremony.json";
pub const CEREMONY_FORMAT: &str = "tufa-ceremony/1";
pub const PENDING_DIR: &str = "pending";
pub const PUBLISHED_DIR: &str = "published";
/// python-tuf's ngclient limit for root metadata; targets and bins of tufa are far smaller.
const MAX_METADATA: u64 = 512_000;
/// Offline roles expiring within this many days are flagged by `status` and `verify`.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The offline roles the ceremony signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OfflineRole {
    Root,
    Targets,
    Bins,
}

impl OfflineRole {
    pub const ALL: [Self; 3] = [Self::Root, Self::Targets, Self::Bins];

    pub fn name(self) -> &'static str {
        match self {
            Self::Root => RoleName::ROOT,
            Self::Targets => RoleName::TARGETS,
            Self::Bins => RoleName::BINS,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == s)
    }

    fn file_name(self, version: u64) -> String {
        format!("{version}.{}.json", self.name())
    }
}

impl fmt::Display for OfflineRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `DIR/ceremony.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CeremonyConfig {
    pub format: String,
    /// log2 of the number of hashed bins the `bins` role delegates to.
    pub bins_bit_length: u8,
    /// Default lifetime of new offline metadata, in days.
    pub expires_days: u32,
    /// Who holds each key (for status output; not security relevant).
    pub holders: BTreeMap<KeyId, String>,
}

/// Signed root or targets-type metadata, as loaded from a file.
#[derive(Debug, Clone)]
enum Body {
    Root(Signed<Root>),
    Targets(Signed<Targets>),
}

/// One metadata file of the ceremony (pending or published).
#[derive(Debug, Clone)]
struct Doc {
    role: OfflineRole,
    /// `pending/1.root.json`, `published/2.root.json`, or a bare file name.
    label: String,
    path: PathBuf,
    version: u64,
    expires: Time,
    /// Canonical bytes of `signed` as read: what signatures cover.
    payload: Vec<u8>,
    /// The file as read (for the checks tufa-tuf runs on whole files).
    bytes: Vec<u8>,
    body: Body,
}

impl Doc {
    fn load(role: OfflineRole, label: String, path: PathBuf, expected_version: u64) -> Result<Self> {
        let bytes = fsutil::read_limited(&path, MAX_METADATA)?;
        let (version, expires, payload, body) = match role {
            OfflineRole::Root => {
                let p: ParsedMetadata<Root> = Signed::from_bytes(&label, &bytes)?;
                let s = &p.metadata.signed;
                (s.version, s.expires, p.payload, Body::Root(p.metadata))
            }
            OfflineRole::Targets | OfflineRole::Bins => {
                let p: ParsedMetadata<Targets> = Signed::from_bytes(&label, &bytes)?;
                let s = &p.metadata.signed;
                (s.version, s.expires, p.payload, Body::Targets(p.metadata))
            }
        };
        if version != expected_version {
            return Err(CeremonyError::Metadata {
                file: label,
                reason: format!("the file name says version {expected_version}, the metadata says {version}"),
            });
        }
        Ok(Self {
            role,
            label,
            path,
            version,
            expires,
            payload,
            bytes,
            body,
        })
    }

    fn signatures(&self) -> &[Signature] {
        match &self.body {
            Body::Root(s) => &s.signatures,
            Body::Targets(s) => &s.signatures,
        }
    }

    fn root(&self) -> Option<&Root> {
        match &self.body {
            Body::Root(s) => Some(&s.signed),
            Body::Targets(_) => None,
        }
    }

    fn targets(&self) -> Option<&Targets> {
        match &self.body {
            Body::Targets(s) => Some(&s.signed),
            Body::Root(_) => None,
        }
    }

    fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(match &self.body {
            Body::Root(s) => s.to_bytes()?,
            Body::Targets(s) => s.to_bytes()?,
        })
    }

    fn payload_sha256(&self) -> String {
        hex::encode(sha2::Sha256::digest(&self.payload))
    }

    fn what(&self) -> String {
        format!("{} v{} (`{}`)", self.role, self.version, self.label)
    }
}

/// Keys and threshold one document must satisfy, with a name for messages.
#[derive(Debug, Clone)]
struct Requirement {
    label: String,
    keys: BTreeMap<KeyId, Key>,
    role_keys: RoleKeys,
}

/// How one document stands against one requirement.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// `the v1 root keys`, `the targets keys of root v2`, …
    pub label: String,
    pub threshold: u32,
    /// Authorised keys with a valid signature.
    pub signed: Vec<KeyId>,
    /// Authorised keys without a valid signature.
    pub missing: Vec<KeyId>,
    /// Authorised keys whose signature does not verify (the file changed after they signed).
    pub invalid: Vec<KeyId>,
    /// Authorised key ids with a valid signature by a public key already counted under another
    /// id in `signed`: thresholds count keys, not key ids.
    pub same_key: Vec<KeyId>,
    /// What tufa-tuf's verifier says.
    pub met: bool,
}

impl Evaluation {
    fn valid(&self) -> usize {
        self.signed.len()
    }
}

fn evaluate(doc: &Doc, req: &Requirement) -> Evaluation {
    let mut signed = Vec::new();
    let mut missing = Vec::new();
    let mut invalid = Vec::new();
    let mut same_key = Vec::new();
    let mut counted = BTreeSet::new();
    let ids: BTreeSet<&KeyId> = req.role_keys.keyids.iter().collect();
    for keyid in ids {
        let sigs: Vec<&Signature> = doc.signatures().iter().filter(|s| &s.keyid == keyid).collect();
        let ok = req.keys.get(keyid).is_some_and(|key| {
            sigs.iter().any(|s| {
                hex::decode(&s.sig)
                    .ok()
                    .is_some_and(|raw| key.verify(keyid, &doc.payload, &raw).unwrap_or(false))
            })
        });
        if ok {
            let first_listing = req
                .keys
                .get(keyid)
                .is_none_or(|key| counted.insert(key.identity()));
            if first_listing {
                signed.push(*keyid);
            } else {
                same_key.push(*keyid);
            }
        } else if sigs.is_empty() {
            missing.push(*keyid);
        } else {
            invalid.push(*keyid);
        }
    }
    let met = verify_payload(
        doc.role.name(),
        doc.version,
        &doc.payload,
        doc.signatures(),
        &req.keys,
        &req.role_keys,
    )
    .is_ok();
    Evaluation {
        label: req.label.clone(),
        threshold: req.role_keys.threshold,
        signed,
        missing,
        invalid,
        same_key,
        met,
    }
}

/// The root rotation check the mirror and its verifier run too ([`tufa_tuf::verify_next_root`]):
/// `doc` continues `previous` (signed by its threshold and its own, version and file name the
/// next one); a first root is signed by its own threshold.
fn root_continues(previous: Option<&Doc>, doc: &Doc) -> std::result::Result<(), String> {
    let result = match previous.and_then(Doc::root) {
        Some(old) => tufa_tuf::verify_next_root(old, &doc.label, &doc.bytes),
        None => tufa_tuf::verify_trusted_root(&doc.label, &doc.bytes),
    };
    result.map(drop).map_err(|e| format!("{}: {e}", doc.label))
}

/// What is in the ceremony directory.
#[derive(Debug, Clone)]
struct State {
    /// Published roots, ascending by version.
    roots: Vec<Doc>,
    /// The newest published targets and bins.
    targets: Option<Doc>,
    bins: Option<Doc>,
    pending: BTreeMap<OfflineRole, Doc>,
}

impl State {
    fn latest_root(&self) -> Option<&Doc> {
        self.roots.last()
    }

    /// The root that is current once everything pending is published.
    fn effective(&self, role: OfflineRole) -> Option<&Doc> {
        self.pending.get(&role).or(match role {
            OfflineRole::Root => self.roots.last(),
            OfflineRole::Targets => self.targets.as_ref(),
            OfflineRole::Bins => self.bins.as_ref(),
        })
    }

    fn published_version(&self, role: OfflineRole) -> u64 {
        match role {
            OfflineRole::Root => self.roots.last(),
            OfflineRole::Targets => self.targets.as_ref(),
            OfflineRole::Bins => self.bins.as_ref(),
        }
        .map_or(0, |d| d.version)
    }
}

/// `N.role.json` → (role, N).
fn parse_file_name(name: &str) -> Option<(OfflineRole, u64)> {
    let stem = name.strip_suffix(".json")?;
    let (n, role) = stem.split_once('.')?;
    if n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((OfflineRole::parse(role)?, n.parse().ok()?))
}

/// Metadata files in `dir`, by role, ascending by version. Hidden files (temporary writes)
/// are skipped; anything else unexpected is an error.
/// Metadata files by role: (version, label for messages, path), ascending by version.
type Scanned = BTreeMap<OfflineRole, Vec<(u64, String, PathBuf)>>;

fn scan(dir: &Path, label_prefix: &str) -> Result<Scanned> {
    let mut out: Scanned = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(CeremonyError::io(dir))?;
    for entry in entries {
        let entry = entry.map_err(CeremonyError::io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Some((role, version)) = parse_file_name(&name) else {
            return Err(CeremonyError::Metadata {
                file: format!("{label_prefix}{name}"),
                reason: "unexpected file (expected N.root.json, N.targets.json or N.bins.json)".into(),
            });
        };
        out.entry(role)
            .or_default()
            .push((version, format!("{label_prefix}{name}"), entry.path()));
    }
    for files in out.values_mut() {
        files.sort();
    }
    Ok(out)
}

/// An open ceremony directory.
#[derive(Debug, Clone)]
pub struct Ceremony {
    dir: PathBuf,
    config: CeremonyConfig,
}

fn usage(msg: impl Into<String>) -> CeremonyError {
    CeremonyError::Usage(msg.into())
}

/// Builder errors are about the arguments given (thresholds, duplicate keys).
fn build_err(e: TufError) -> CeremonyError {
    match e {
        TufError::Build { .. } => CeremonyError::Usage(e.to_string()),
        other => CeremonyError::Tuf(other),
    }
}

fn lifetime(days: u32) -> Result<SignedDuration> {
    if !(1..=3650).contains(&days) {
        return Err(usage(format!("expiry of {days} days is not between 1 and 3650")));
    }
    Ok(SignedDuration::from_hours(24 * i64::from(days)))
}

fn expires_in(now: Time, days: u32) -> Result<Time> {
    Ok(build::expires_after(now, lifetime(days)?)?)
}

fn keys_of(root_or_delegation_keys: &BTreeMap<KeyId, Key>, ids: &[KeyId], what: &str) -> Result<Vec<Key>> {
    ids.iter()
        .map(|id| {
            root_or_delegation_keys
                .get(id)
                .cloned()
                .ok_or_else(|| CeremonyError::Metadata {
                    file: what.to_owned(),
                    reason: format!("key `{id}` is listed for a role but not among the keys"),
                })
        })
        .collect()
}

fn bins_delegation(targets: &Targets) -> Option<(RoleKeys, BTreeMap<KeyId, Key>)> {
    let d = targets.delegations.as_ref()?;
    let role = d
        .roles
        .as_ref()?
        .iter()
        .find(|r| r.name.as_str() == RoleName::BINS)?;
    Some((role.role_keys(), d.keys.clone()))
}

fn online_delegation(bins: &Targets) -> Option<(RoleKeys, BTreeMap<KeyId, Key>, BinLayout)> {
    let d = bins.delegations.as_ref()?;
    let s = d.succinct_roles.as_ref()?;
    Some((s.role_keys(), d.keys.clone(), s.layout().ok()?))
}

fn keyset(ids: &[KeyId]) -> BTreeSet<KeyId> {
    ids.iter().copied().collect()
}

/// Options of `init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub root_keys: Vec<PublicKeyFile>,
    pub root_threshold: u32,
    pub targets_keys: Vec<PublicKeyFile>,
    pub targets_threshold: u32,
    pub bins_keys: Vec<PublicKeyFile>,
    pub bins_threshold: u32,
    pub online_key: PublicKeyFile,
    pub bins_bit_length: u8,
    pub expires_days: u32,
}

/// Options of `rotate-root`.
#[derive(Debug, Clone, Default)]
pub struct RotateRootOptions {
    pub add_root_keys: Vec<PublicKeyFile>,
    /// Key ids, unique key id prefixes (8+ hex digits), holder names or public key files.
    pub remove_root_keys: Vec<String>,
    pub root_threshold: Option<u32>,
    pub add_targets_keys: Vec<PublicKeyFile>,
    pub remove_targets_keys: Vec<String>,
    pub targets_threshold: Option<u32>,
    /// A new online key (snapshot, timestamp, and the hashed bins through a new `bins`).
    pub online_key: Option<PublicKeyFile>,
    pub expires_days: Option<u32>,
}

/// Options of `resign targets`.
#[derive(Debug, Clone, Default)]
pub struct ResignTargetsOptions {
    pub add_bins_keys: Vec<PublicKeyFile>,
    pub remove_bins_keys: Vec<String>,
    pub bins_threshold: Option<u32>,
    pub expires_days: Option<u32>,
}

/// What a step created or changed, for the operator's record.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.lines.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            f.write_str(l)?;
        }
        Ok(())
    }
}

impl Report {
    fn line(&mut self, s: impl Into<String>) {
        self.lines.push(s.into());
    }
    fn warn(&mut self, s: impl Into<String>) {
        self.warnings.push(s.into());
    }
}

/// Status of one pending file.
#[derive(Debug, Clone)]
pub struct PendingStatus {
    pub file: String,
    pub role: OfflineRole,
    pub version: u64,
    pub expires: Time,
    pub payload_sha256: String,
    pub evaluations: Vec<Evaluation>,
    /// Signatures by keys no requirement lists.
    pub strays: Vec<KeyId>,
}

impl PendingStatus {
    pub fn ready(&self) -> bool {
        self.evaluations.iter().all(|e| e.met)
    }
}

/// `status`: every pending file and its thresholds.
#[derive(Debug, Clone)]
pub struct StatusReport {
    pub pending: Vec<PendingStatus>,
    pub published: Vec<(OfflineRole, u64, Time)>,
    pub holders: BTreeMap<KeyId, String>,
    pub warnings: Vec<String>,
}

impl StatusReport {
    /// Every pending file meets every threshold (and there is something pending).
    pub fn ready(&self) -> bool {
        !self.pending.is_empty() && self.pending.iter().all(PendingStatus::ready)
    }
}

fn holder_of(holders: &BTreeMap<KeyId, String>, id: &KeyId) -> String {
    holders
        .get(id)
        .cloned()
        .unwrap_or_else(|| "(unknown holder)".into())
}

/// `alice 0123456789abcdef`, or just the short key id when the holder is unknown.
fn who(holders: &BTreeMap<KeyId, String>, id: &KeyId) -> String {
    match holders.get(id) {
        Some(h) => format!("{h} {}", short(id)),
        None => short(id),
    }
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.published.is_empty() {
            writeln!(f, "published: nothing yet")?;
        } else {
            let list: Vec<String> = self
                .published
                .iter()
                .map(|(r, v, e)| format!("{r} v{v} (expires {})", format_expires(*e)))
                .collect();
            writeln!(f, "published: {}", list.join(", "))?;
        }
        if self.pending.is_empty() {
            write!(f, "pending: nothing")?;
            return Ok(());
        }
        for p in &self.pending {
            writeln!(
                f,
                "{}: {} v{}, expires {}, payload sha256 {}",
                p.file,
                p.role,
                p.version,
                format_expires(p.expires),
                p.payload_sha256
            )?;
            for e in &p.evaluations {
                writeln!(
                    f,
                    "  {}: {} of {} required signature(s) — {}",
                    e.label,
                    e.valid(),
                    e.threshold,
                    if e.met {
                        "threshold met".to_owned()
                    } else {
                        format!(
                            "threshold NOT met, {} more needed",
                            (e.threshold as usize).saturating_sub(e.valid())
                        )
                    }
                )?;
                for (state, ids) in [
                    ("signed ", &e.signed),
                    ("INVALID", &e.invalid),
                    ("missing", &e.missing),
                    ("SAME KEY (counted once)", &e.same_key),
                ] {
                    for id in ids {
                        writeln!(f, "    {state}  {:<20} {id}", holder_of(&self.holders, id))?;
                    }
                }
            }
            for id in &p.strays {
                writeln!(
                    f,
                    "  ignored: signature by {} {id}, a key not authorised for this file",
                    holder_of(&self.holders, id)
                )?;
            }
        }
        if self.ready() {
            write!(f, "all thresholds met: ready to publish")
        } else {
            write!(f, "not ready to publish: thresholds unmet")
        }
    }
}

/// `verify`: what the published chain contains.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines.join("\n"))
    }
}

/// `publish`: what was written.
#[derive(Debug, Clone)]
pub struct PublishReport {
    pub out: PathBuf,
    /// File names written to `out` (the whole root chain, the newest targets and bins).
    pub files: Vec<String>,
    /// Pending files moved to `published/`.
    pub published: Vec<String>,
}

impl fmt::Display for PublishReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "published {}", self.published.join(", "))?;
        write!(
            f,
            "wrote {} to {} (import on the mirror with `tufa import-metadata {}`)",
            self.files.join(", "),
            self.out.display(),
            self.out.display()
        )
    }
}

impl Ceremony {
    /// Sets up a new ceremony directory with `pending/1.root.json`, `1.targets.json` and
    /// `1.bins.json`, unsigned.
    pub fn init(dir: &Path, opts: &InitOptions, now: Time) -> Result<(Self, Report)> {
        if dir.exists() {
            let mut entries = std::fs::read_dir(dir).map_err(CeremonyError::io(dir))?;
            if entries.next().is_some() {
                return Err(usage(format!(
                    "`{}` exists and is not empty; a ceremony needs a new directory",
                    dir.display()
                )));
            }
        }
        let layout = BinLayout::new(opts.bins_bit_length).map_err(|e| usage(e.to_string()))?;
        let expires = expires_in(now, opts.expires_days)?;
        let online_id = opts.online_key.keyid;
        let offline: Vec<&PublicKeyFile> = opts
            .root_keys
            .iter()
            .chain(&opts.targets_keys)
            .chain(&opts.bins_keys)
            .collect();
        if offline.iter().any(|k| k.keyid == online_id) {
            return Err(usage(format!(
                "the online key `{online_id}` is also given as an offline key; the online key lives on the mirror and must be separate"
            )));
        }
        let set =
            |keys: &[PublicKeyFile], t: u32| RoleKeySet::new(keys.iter().map(|k| k.key.clone()).collect(), t);
        let online = RoleKeySet::single(opts.online_key.key.clone());
        let root_keys = RootKeys {
            root: set(&opts.root_keys, opts.root_threshold),
            targets: set(&opts.targets_keys, opts.targets_threshold),
            snapshot: online.clone(),
            timestamp: online.clone(),
        };
        let root = build::new_root(&root_keys, 1, expires).map_err(build_err)?;
        let targets =
            build::new_targets_delegating_to_bins(&set(&opts.bins_keys, opts.bins_threshold), 1, expires)
                .map_err(build_err)?;
        let bins = build::new_bins_delegator(&layout, &online, 1, expires).map_err(build_err)?;

        let mut holders = BTreeMap::new();
        for k in offline.iter().copied().chain([&opts.online_key]) {
            holders.insert(k.keyid, k.holder.clone());
        }
        let config = CeremonyConfig {
            format: CEREMONY_FORMAT.to_owned(),
            bins_bit_length: opts.bins_bit_length,
            expires_days: opts.expires_days,
            holders,
        };
        std::fs::create_dir_all(dir.join(PENDING_DIR)).map_err(CeremonyError::io(dir))?;
        std::fs::create_dir_all(dir.join(PUBLISHED_DIR)).map_err(CeremonyError::io(dir))?;
        let ceremony = Self {
            dir: dir.to_owned(),
            config,
        };
        ceremony.save_config()?;
        let pending = dir.join(PENDING_DIR);
        let unsigned_root = Signed {
            signatures: Vec::new(),
            signed: root,
        };
        fsutil::write_new(&pending.join("1.root.json"), &unsigned_root.to_bytes()?, false)?;
        for (name, t) in [("1.targets.json", targets), ("1.bins.json", bins)] {
            let unsigned = Signed {
                signatures: Vec::new(),
                signed: t,
            };
            fsutil::write_new(&pending.join(name), &unsigned.to_bytes()?, false)?;
        }

        let mut report = Report::default();
        report.line(format!("created ceremony {}", dir.display()));
        report.line(format!(
            "pending/1.root.json: root keys {} (threshold {}), targets keys {} (threshold {}), online key {} for snapshot and timestamp",
            opts.root_keys.len(),
            opts.root_threshold,
            opts.targets_keys.len(),
            opts.targets_threshold,
            short(&online_id)
        ));
        report.line(format!(
            "pending/1.targets.json: delegates every target to `bins` (keys {}, threshold {})",
            opts.bins_keys.len(),
            opts.bins_threshold
        ));
        report.line(format!(
            "pending/1.bins.json: delegates {} hashed bins (bit length {}) to the online key",
            layout.bin_count(),
            layout.bit_length()
        ));
        report.line(format!("everything expires {}", format_expires(expires)));
        if opts.root_threshold < 2 {
            report.warn(
                "root threshold is 1: production roots need at least 2 signatures from separate people",
            );
        }
        Ok((ceremony, report))
    }

    /// Opens an existing ceremony directory.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(CEREMONY_FILE);
        let bad = |reason: String| CeremonyError::Ceremony {
            dir: dir.to_owned(),
            reason,
        };
        if !path.is_file() {
            return Err(bad(format!(
                "no {CEREMONY_FILE}: not a ceremony directory (create one with `tufa-ceremony init`)"
            )));
        }
        let bytes = fsutil::read_limited(&path, 1 << 20)?;
        let config: CeremonyConfig =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("{CEREMONY_FILE} is malformed: {e}")))?;
        if config.format != CEREMONY_FORMAT {
            return Err(bad(format!(
                "unsupported format `{}` in {CEREMONY_FILE}",
                config.format
            )));
        }
        for sub in [PENDING_DIR, PUBLISHED_DIR] {
            if !dir.join(sub).is_dir() {
                return Err(bad(format!("`{sub}/` is missing")));
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            config,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &CeremonyConfig {
        &self.config
    }

    fn save_config(&self) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(&self.config).map_err(|e| CeremonyError::Ceremony {
            dir: self.dir.clone(),
            reason: e.to_string(),
        })?;
        json.push(b'\n');
        fsutil::write_atomic(&self.dir.join(CEREMONY_FILE), &json)
    }

    fn holder(&self, id: &KeyId) -> String {
        holder_of(&self.config.holders, id)
    }

    fn load(&self) -> Result<State> {
        let published_dir = self.dir.join(PUBLISHED_DIR);
        let pending_dir = self.dir.join(PENDING_DIR);
        let published = scan(&published_dir, "published/")?;
        let mut roots = Vec::new();
        for (v, label, path) in published.get(&OfflineRole::Root).into_iter().flatten() {
            roots.push(Doc::load(OfflineRole::Root, label.clone(), path.clone(), *v)?);
        }
        let latest = |role: OfflineRole| -> Result<Option<Doc>> {
            match published.get(&role).and_then(|v| v.last()) {
                Some((v, label, path)) => Ok(Some(Doc::load(role, label.clone(), path.clone(), *v)?)),
                None => Ok(None),
            }
        };
        let targets = latest(OfflineRole::Targets)?;
        let bins = latest(OfflineRole::Bins)?;
        let mut pending = BTreeMap::new();
        for (role, files) in scan(&pending_dir, "pending/")? {
            if files.len() > 1 {
                let names: Vec<&str> = files.iter().map(|(_, l, _)| l.as_str()).collect();
                return Err(CeremonyError::Ceremony {
                    dir: self.dir.clone(),
                    reason: format!(
                        "more than one pending {role} file ({}); discard all but one",
                        names.join(", ")
                    ),
                });
            }
            if let Some((v, label, path)) = files.into_iter().next() {
                pending.insert(role, Doc::load(role, label, path, v)?);
            }
        }
        let state = State {
            roots,
            targets,
            bins,
            pending,
        };
        for (role, doc) in &state.pending {
            let expected = state.published_version(*role) + 1;
            if doc.version != expected {
                return Err(CeremonyError::Metadata {
                    file: doc.label.clone(),
                    reason: format!(
                        "version {} does not follow the published version {} (expected {expected})",
                        doc.version,
                        expected - 1
                    ),
                });
            }
        }
        Ok(state)
    }

    /// The thresholds `doc` (pending) must meet.
    fn requirements(&self, state: &State, doc: &Doc) -> Result<Vec<Requirement>> {
        let missing = |what: &str| CeremonyError::Metadata {
            file: doc.label.clone(),
            reason: format!("cannot tell who may sign it: {what}"),
        };
        match doc.role {
            OfflineRole::Root => {
                let new = doc.root().ok_or_else(|| missing("not root metadata"))?;
                let mut reqs = Vec::new();
                if doc.version > 1 {
                    let old = state
                        .latest_root()
                        .and_then(Doc::root)
                        .ok_or_else(|| missing("the previous root is not published"))?;
                    reqs.push(Requirement {
                        label: format!("the v{} root keys", old.version),
                        keys: old.keys.clone(),
                        role_keys: old.role_keys(RoleName::ROOT)?.clone(),
                    });
                }
                reqs.push(Requirement {
                    label: format!("the v{} root keys", new.version),
                    keys: new.keys.clone(),
                    role_keys: new.role_keys(RoleName::ROOT)?.clone(),
                });
                Ok(reqs)
            }
            OfflineRole::Targets => {
                let root_doc = state
                    .effective(OfflineRole::Root)
                    .ok_or_else(|| missing("no root"))?;
                let root = root_doc.root().ok_or_else(|| missing("no root"))?;
                Ok(vec![Requirement {
                    label: format!("the targets keys of root v{}", root.version),
                    keys: root.keys.clone(),
                    role_keys: root.role_keys(RoleName::TARGETS)?.clone(),
                }])
            }
            OfflineRole::Bins => {
                let t_doc = state
                    .effective(OfflineRole::Targets)
                    .ok_or_else(|| missing("no targets metadata"))?;
                let t = t_doc.targets().ok_or_else(|| missing("no targets metadata"))?;
                let (role_keys, keys) =
                    bins_delegation(t).ok_or_else(|| missing("targets does not delegate to `bins`"))?;
                Ok(vec![Requirement {
                    label: format!("the bins keys of targets v{}", t.version),
                    keys,
                    role_keys,
                }])
            }
        }
    }

    /// Finds the pending file named by `which`: `root`, `targets`, `bins`, or a file name
    /// (`2.root.json`, optionally with `pending/`).
    fn find_pending<'a>(&self, state: &'a State, which: &str) -> Result<&'a Doc> {
        let role = match OfflineRole::parse(which) {
            Some(r) => r,
            None => {
                let name = which.strip_prefix("pending/").unwrap_or(which);
                let (role, version) = parse_file_name(name).ok_or_else(|| {
                    usage(format!(
                        "`{which}` is neither root, targets, bins nor a pending file name like 2.root.json"
                    ))
                })?;
                match state.pending.get(&role) {
                    Some(d) if d.version == version => role,
                    _ => {
                        return Err(usage(format!("`pending/{name}` does not exist")));
                    }
                }
            }
        };
        state.pending.get(&role).ok_or_else(|| {
            usage(format!(
                "nothing pending for {role} (create it with `init`, `rotate-root` or `resign`)"
            ))
        })
    }

    /// `sign`: adds one signature by `source` to the pending file `which`.
    pub fn sign(&self, which: &str, source: &KeySource) -> Result<Report> {
        let state = self.load()?;
        let doc = self.find_pending(&state, which)?;
        let reqs = self.requirements(&state, doc)?;
        let authorised: BTreeSet<KeyId> = reqs.iter().flat_map(|r| r.role_keys.keyids.clone()).collect();
        let describe = |reqs: &[Requirement]| {
            reqs.iter()
                .map(|r| r.label.clone())
                .collect::<Vec<_>>()
                .join(" or ")
        };

        // Authorisation and duplicates are checked on the public key: for a key file before
        // the passphrase is asked for; a token's key is known only once it is opened.
        let (public, signer) = match source.public_part()? {
            Some(p) => (p, None),
            None => {
                let signer = source.open()?;
                let p = crate::source::PublicPart {
                    key: signer.key().clone(),
                    holder: None,
                };
                (p, Some(signer))
            }
        };
        let keyid = public.key.key_id();
        let holder = match (&public.holder, self.config.holders.get(&keyid)) {
            (_, Some(h)) => format!(" ({h})"),
            (Some(h), None) => format!(" ({h})"),
            (None, None) => String::new(),
        };
        if !authorised.contains(&keyid) {
            return Err(CeremonyError::NotAuthorised {
                file: doc.label.clone(),
                keyid: keyid.to_string(),
                holder,
                reason: format!("only {} may sign it", describe(&reqs)),
            });
        }
        if doc.signatures().iter().any(|s| s.keyid == keyid) {
            return Err(CeremonyError::AlreadySigned {
                file: doc.label.clone(),
                keyid: keyid.to_string(),
                holder,
            });
        }
        let mut report = Report::default();
        report.line(format!(
            "signing {} (expires {}), payload sha256 {}",
            doc.what(),
            format_expires(doc.expires),
            doc.payload_sha256()
        ));
        for r in &reqs {
            let e = evaluate(doc, r);
            if !e.invalid.is_empty() {
                report.warn(format!(
                    "{}: {} existing signature(s) do not verify over the current content",
                    doc.label,
                    e.invalid.len()
                ));
            }
        }

        let signer = match signer {
            Some(s) => s,
            None => source.open()?,
        };
        if signer.keyid() != keyid {
            return Err(CeremonyError::Usage(format!(
                "{}: the unlocked key `{}` differs from the public key `{keyid}` it advertises",
                source.describe(),
                signer.keyid()
            )));
        }
        let raw = signer.sign(&doc.payload)?;
        if !public.key.verify(&keyid, &doc.payload, &raw)? {
            return Err(CeremonyError::Tuf(TufError::Signing {
                keyid: keyid.to_string(),
                reason: "the new signature does not verify".into(),
            }));
        }
        let mut updated = doc.clone();
        let sig = Signature {
            keyid,
            sig: hex::encode(&raw),
        };
        match &mut updated.body {
            Body::Root(s) => {
                check_payload(&doc.label, &s.signed_bytes()?, &doc.payload)?;
                s.signatures.push(sig);
            }
            Body::Targets(s) => {
                check_payload(&doc.label, &s.signed_bytes()?, &doc.payload)?;
                s.signatures.push(sig);
            }
        }
        fsutil::write_atomic(&doc.path, &updated.to_bytes()?)?;
        report.line(format!(
            "added the signature of key {keyid}{holder} to {}",
            doc.label
        ));
        for r in &reqs {
            let e = evaluate(&updated, r);
            report.line(format!(
                "{}: {} of {} required signature(s){}",
                e.label,
                e.valid(),
                e.threshold,
                if e.met { " — threshold met" } else { "" }
            ));
        }
        Ok(report)
    }

    /// `status`: signatures present and thresholds per pending file.
    pub fn status(&self, now: Time) -> Result<StatusReport> {
        let state = self.load()?;
        let mut pending = Vec::new();
        let mut warnings = Vec::new();
        for doc in state.pending.values() {
            let reqs = self.requirements(&state, doc)?;
            let evaluations: Vec<Evaluation> = reqs.iter().map(|r| evaluate(doc, r)).collect();
            let listed: BTreeSet<KeyId> = reqs.iter().flat_map(|r| r.role_keys.keyids.clone()).collect();
            let strays = doc
                .signatures()
                .iter()
                .map(|s| s.keyid)
                .filter(|k| !listed.contains(k))
                .collect();
            pending.push(PendingStatus {
                file: doc.label.clone(),
                role: doc.role,
                version: doc.version,
                expires: doc.expires,
                payload_sha256: doc.payload_sha256(),
                evaluations,
                strays,
            });
        }
        let mut published = Vec::new();
        for role in OfflineRole::ALL {
            let doc = match role {
                OfflineRole::Root => state.roots.last(),
                OfflineRole::Targets => state.targets.as_ref(),
                OfflineRole::Bins => state.bins.as_ref(),
            };
            if let Some(d) = doc {
                published.push((role, d.version, d.expires));
                if !state.pending.contains_key(&role) {
                    warnings.extend(expiry_warning(d, now));
                }
            }
        }
        Ok(StatusReport {
            pending,
            published,
            holders: self.config.holders.clone(),
            warnings,
        })
    }

    /// `publish`: checks every threshold and the role graph, writes the root chain and the
    /// newest targets and bins to `out`, and moves the pending files to `published/`. Writes
    /// nothing when anything is wrong.
    pub fn publish(&self, out: &Path, now: Time) -> Result<PublishReport> {
        let state = self.load()?;
        if state.pending.is_empty() {
            return Err(usage(format!(
                "nothing pending in `{}`: create metadata with `init`, `rotate-root` or `resign` first",
                self.dir.join(PENDING_DIR).display()
            )));
        }
        let mut problems = Vec::new();
        for doc in state.pending.values() {
            for req in self.requirements(&state, doc)? {
                let e = evaluate(doc, &req);
                if !e.met {
                    let missing: Vec<String> = e.missing.iter().map(|k| self.holder(k)).collect();
                    problems.push(format!(
                        "role `{}` v{} (`{}`) has {} of {} required signatures from {}; {} more needed{}",
                        doc.role,
                        doc.version,
                        doc.label,
                        e.valid(),
                        e.threshold,
                        e.label,
                        (e.threshold as usize).saturating_sub(e.valid()),
                        if missing.is_empty() {
                            String::new()
                        } else {
                            format!(" (not yet signed by: {})", missing.join(", "))
                        }
                    ));
                }
            }
        }
        if problems.is_empty()
            && let Some(doc) = state.pending.get(&OfflineRole::Root)
            && let Err(e) = root_continues(state.latest_root(), doc)
        {
            problems.push(e);
        }
        if problems.is_empty() {
            let (root, targets, bins) = (
                state.effective(OfflineRole::Root),
                state.effective(OfflineRole::Targets),
                state.effective(OfflineRole::Bins),
            );
            problems.extend(check_graph(root, targets, bins, now, |id| {
                who(&self.config.holders, id)
            }));
        }
        if !problems.is_empty() {
            return Err(CeremonyError::NotPublishable { problems });
        }

        // Everything checks: write the export, then move the pending files.
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut roots: Vec<&Doc> = state.roots.iter().collect();
        roots.extend(state.pending.get(&OfflineRole::Root));
        for d in roots {
            files.push((OfflineRole::Root.file_name(d.version), d.to_bytes()?));
        }
        for role in [OfflineRole::Targets, OfflineRole::Bins] {
            if let Some(d) = state.effective(role) {
                files.push((role.file_name(d.version), d.to_bytes()?));
            }
        }
        std::fs::create_dir_all(out).map_err(CeremonyError::io(out))?;
        for (name, bytes) in &files {
            let path = out.join(name);
            match std::fs::read(&path) {
                Ok(existing) if &existing == bytes => {}
                Ok(_) => {
                    return Err(usage(format!(
                        "`{}` already exists with different content; publish to an empty directory",
                        path.display()
                    )));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(CeremonyError::io(&path)(e)),
            }
        }
        for (name, bytes) in &files {
            fsutil::write_atomic(&out.join(name), bytes)?;
        }
        let mut published = Vec::new();
        for doc in state.pending.values() {
            let name = doc.role.file_name(doc.version);
            fsutil::rename(&doc.path, &self.dir.join(PUBLISHED_DIR).join(&name))?;
            published.push(format!("{} v{}", doc.role, doc.version));
        }
        Ok(PublishReport {
            out: out.to_owned(),
            files: files.into_iter().map(|(n, _)| n).collect(),
            published,
        })
    }

    /// Resolves a key reference (key id, unique key id prefix of 8+ hex digits, holder name,
    /// or public key file) among `candidates`.
    fn resolve_key(&self, reference: &str, candidates: &[KeyId], what: &str) -> Result<KeyId> {
        let list = || {
            candidates
                .iter()
                .map(|k| who(&self.config.holders, k))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let not_found = || usage(format!("no key `{reference}` among the {what} ({})", list()));
        let path = Path::new(reference);
        let found: Vec<KeyId> = if path.is_file() {
            let id = PublicKeyFile::read(path)?.keyid;
            candidates.iter().copied().filter(|k| *k == id).collect()
        } else if let Ok(id) = reference.parse::<KeyId>() {
            candidates.iter().copied().filter(|k| *k == id).collect()
        } else {
            let lower = reference.to_ascii_lowercase();
            let by_prefix: Vec<KeyId> =
                if reference.len() >= 8 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
                    candidates
                        .iter()
                        .copied()
                        .filter(|k| k.to_hex().starts_with(&lower))
                        .collect()
                } else {
                    Vec::new()
                };
            if by_prefix.is_empty() {
                candidates
                    .iter()
                    .copied()
                    .filter(|k| self.config.holders.get(k).is_some_and(|h| h == reference))
                    .collect()
            } else {
                by_prefix
            }
        };
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(not_found()),
            _ => Err(usage(format!(
                "`{reference}` matches several of the {what}; give the full key id"
            ))),
        }
    }

    /// Applies additions and removals to a key list.
    fn edit_keys(
        &mut self,
        current: Vec<Key>,
        add: &[PublicKeyFile],
        remove: &[String],
        what: &str,
    ) -> Result<(Vec<Key>, bool)> {
        let ids: Vec<KeyId> = current.iter().map(Key::key_id).collect();
        let mut drop = BTreeSet::new();
        for r in remove {
            drop.insert(self.resolve_key(r, &ids, what)?);
        }
        let mut keys: Vec<Key> = current
            .into_iter()
            .filter(|k| !drop.contains(&k.key_id()))
            .collect();
        for a in add {
            if keys.iter().any(|k| k.key_id() == a.keyid) {
                return Err(usage(format!(
                    "key `{}` ({}) is already one of the {what}",
                    a.keyid, a.holder
                )));
            }
            keys.push(a.key.clone());
            self.config.holders.insert(a.keyid, a.holder.clone());
        }
        Ok((keys, !drop.is_empty() || !add.is_empty()))
    }

    fn ensure_not_pending(&self, state: &State, role: OfflineRole) -> Result<()> {
        if let Some(d) = state.pending.get(&role) {
            return Err(CeremonyError::Ceremony {
                dir: self.dir.clone(),
                reason: format!("`{}` is still pending; publish it or `discard` it first", d.label),
            });
        }
        Ok(())
    }

    fn write_pending<T: Serialize>(&self, role: OfflineRole, version: u64, signed: T) -> Result<String> {
        let name = role.file_name(version);
        let unsigned = Signed {
            signatures: Vec::new(),
            signed,
        };
        fsutil::write_new(
            &self.dir.join(PENDING_DIR).join(&name),
            &unsigned.to_bytes()?,
            false,
        )?;
        Ok(format!("{PENDING_DIR}/{name}"))
    }

    /// `rotate-root`: root v(N+1) from the newest published root with the changes asked for and
    /// a fresh expiry. A new online key also creates the next `bins` (delegating the hashed
    /// bins to it); a change of targets keys also creates the next `targets` (which the new
    /// targets keys must sign).
    pub fn rotate_root(&mut self, opts: &RotateRootOptions, now: Time) -> Result<Report> {
        let state = self.load()?;
        self.ensure_not_pending(&state, OfflineRole::Root)?;
        let old_doc = state.latest_root().ok_or_else(|| CeremonyError::Ceremony {
            dir: self.dir.clone(),
            reason: "no published root to rotate from; publish the first root first".into(),
        })?;
        let old = old_doc.root().ok_or_else(|| usage("not a root"))?.clone();
        let what = old_doc.label.clone();
        let role_keys = |name: &str| -> Result<(Vec<Key>, u32)> {
            let rk = old.role_keys(name)?;
            Ok((keys_of(&old.keys, &rk.keyids, &what)?, rk.threshold))
        };
        let (root_keys, root_t) = role_keys(RoleName::ROOT)?;
        let (targets_keys, targets_t) = role_keys(RoleName::TARGETS)?;
        let (snapshot_keys, snapshot_t) = role_keys(RoleName::SNAPSHOT)?;
        let (timestamp_keys, timestamp_t) = role_keys(RoleName::TIMESTAMP)?;

        let (root_keys, root_changed) = self.edit_keys(
            root_keys,
            &opts.add_root_keys,
            &opts.remove_root_keys,
            "root keys",
        )?;
        let (targets_keys, targets_changed) = self.edit_keys(
            targets_keys,
            &opts.add_targets_keys,
            &opts.remove_targets_keys,
            "targets keys",
        )?;
        let targets_changed = targets_changed || opts.targets_threshold.is_some_and(|t| t != targets_t);
        let offline_ids: BTreeSet<KeyId> = root_keys.iter().chain(&targets_keys).map(Key::key_id).collect();
        let (snapshot, timestamp) = match &opts.online_key {
            Some(k) => {
                if offline_ids.contains(&k.keyid) {
                    return Err(usage(format!(
                        "the new online key `{}` is also an offline key; it must be separate",
                        k.keyid
                    )));
                }
                if snapshot_keys.iter().any(|s| s.key_id() == k.keyid) {
                    return Err(usage(format!("`{}` is already the online key", k.keyid)));
                }
                self.config.holders.insert(k.keyid, k.holder.clone());
                (
                    RoleKeySet::single(k.key.clone()),
                    RoleKeySet::single(k.key.clone()),
                )
            }
            None => (
                RoleKeySet::new(snapshot_keys, snapshot_t),
                RoleKeySet::new(timestamp_keys, timestamp_t),
            ),
        };
        let new_root_threshold = opts.root_threshold.unwrap_or(root_t);
        let keys = RootKeys {
            root: RoleKeySet::new(root_keys, new_root_threshold),
            targets: RoleKeySet::new(targets_keys.clone(), opts.targets_threshold.unwrap_or(targets_t)),
            snapshot,
            timestamp,
        };
        let days = opts.expires_days.unwrap_or(self.config.expires_days);
        let expires = expires_in(now, days)?;
        let version = old.version + 1;
        let root = build::new_root(&keys, version, expires).map_err(build_err)?;

        // Dependent roles, checked before anything is written.
        let mut new_targets = None;
        if targets_changed && !state.pending.contains_key(&OfflineRole::Targets) {
            let t = state
                .targets
                .as_ref()
                .and_then(Doc::targets)
                .ok_or_else(|| usage("no published targets to carry over"))?;
            let (bins_rk, bins_keys) =
                bins_delegation(t).ok_or_else(|| usage("published targets does not delegate to `bins`"))?;
            let set = RoleKeySet::new(
                keys_of(&bins_keys, &bins_rk.keyids, "targets")?,
                bins_rk.threshold,
            );
            new_targets = Some(
                build::new_targets_delegating_to_bins(&set, t.version + 1, expires_in(now, days)?)
                    .map_err(build_err)?,
            );
        }
        let mut new_bins = None;
        if let Some(k) = &opts.online_key {
            self.ensure_not_pending(&state, OfflineRole::Bins)?;
            let b = state
                .bins
                .as_ref()
                .and_then(Doc::targets)
                .ok_or_else(|| usage("no published bins to carry over"))?;
            let (_, _, layout) = online_delegation(b)
                .ok_or_else(|| usage("published bins has no succinct hashed-bin delegation"))?;
            new_bins = Some(
                build::new_bins_delegator(
                    &layout,
                    &RoleKeySet::single(k.key.clone()),
                    b.version + 1,
                    expires_in(now, days)?,
                )
                .map_err(build_err)?,
            );
        }

        let mut report = Report::default();
        let changes = [
            root_changed.then_some("root keys"),
            (new_root_threshold != root_t).then_some("root threshold"),
            targets_changed.then_some("targets keys"),
            opts.online_key.is_some().then_some("online key"),
        ];
        let changes: Vec<&str> = changes.into_iter().flatten().collect();
        let file = self.write_pending(OfflineRole::Root, version, root)?;
        report.line(format!(
            "created {file}: root v{version} ({}), expires {}",
            if changes.is_empty() {
                "same keys, fresh expiry".to_owned()
            } else {
                format!("changes: {}", changes.join(", "))
            },
            format_expires(expires)
        ));
        report.line(format!(
            "it needs {} signature(s) from the v{} root keys and {} from the v{version} root keys",
            root_t, old.version, new_root_threshold
        ));
        if let Some(t) = new_targets {
            let v = t.version;
            let file = self.write_pending(OfflineRole::Targets, v, t)?;
            report.line(format!(
                "created {file}: targets v{v}, to be signed by the new targets keys"
            ));
        }
        if let Some(b) = new_bins {
            let v = b.version;
            let file = self.write_pending(OfflineRole::Bins, v, b)?;
            report.line(format!(
                "created {file}: bins v{v} delegating the hashed bins to the new online key"
            ));
        }
        self.save_config()?;
        if new_root_threshold < 2 {
            report.warn(
                "root threshold is 1: production roots need at least 2 signatures from separate people",
            );
        }
        Ok(report)
    }

    /// `resign root`: the next root version with the same keys and a fresh expiry.
    pub fn resign_root(&mut self, expires_days: Option<u32>, now: Time) -> Result<Report> {
        self.rotate_root(
            &RotateRootOptions {
                expires_days,
                ..RotateRootOptions::default()
            },
            now,
        )
    }

    /// `resign targets`: the next targets version with a fresh expiry, optionally changing the
    /// keys the `bins` role is delegated to (which also creates the next `bins`, to be signed
    /// by the new bins keys).
    pub fn resign_targets(&mut self, opts: &ResignTargetsOptions, now: Time) -> Result<Report> {
        let state = self.load()?;
        self.ensure_not_pending(&state, OfflineRole::Targets)?;
        let doc = state.targets.as_ref().ok_or_else(|| CeremonyError::Ceremony {
            dir: self.dir.clone(),
            reason: "no published targets to re-sign".into(),
        })?;
        let t = doc.targets().ok_or_else(|| usage("not targets"))?;
        let (rk, keys) = bins_delegation(t).ok_or_else(|| CeremonyError::Metadata {
            file: doc.label.clone(),
            reason: "does not delegate to `bins`".into(),
        })?;
        let current = keys_of(&keys, &rk.keyids, &doc.label)?;
        let (bins_keys, changed) =
            self.edit_keys(current, &opts.add_bins_keys, &opts.remove_bins_keys, "bins keys")?;
        let changed = changed || opts.bins_threshold.is_some_and(|x| x != rk.threshold);
        let days = opts.expires_days.unwrap_or(self.config.expires_days);
        let expires = expires_in(now, days)?;
        let version = t.version + 1;
        let set = RoleKeySet::new(bins_keys, opts.bins_threshold.unwrap_or(rk.threshold));
        let new = build::new_targets_delegating_to_bins(&set, version, expires).map_err(build_err)?;
        let mut new_bins = None;
        if changed && !state.pending.contains_key(&OfflineRole::Bins) {
            let b = state
                .bins
                .as_ref()
                .and_then(Doc::targets)
                .ok_or_else(|| usage("no published bins to carry over"))?;
            let (online_rk, online_keys, layout) = online_delegation(b)
                .ok_or_else(|| usage("published bins has no succinct hashed-bin delegation"))?;
            let online = RoleKeySet::new(
                keys_of(&online_keys, &online_rk.keyids, "bins")?,
                online_rk.threshold,
            );
            new_bins = Some(
                build::new_bins_delegator(&layout, &online, b.version + 1, expires_in(now, days)?)
                    .map_err(build_err)?,
            );
        }
        let mut report = Report::default();
        let file = self.write_pending(OfflineRole::Targets, version, new)?;
        report.line(format!(
            "created {file}: targets v{version}{}, expires {}",
            if changed { " with new bins keys" } else { "" },
            format_expires(expires)
        ));
        if let Some(b) = new_bins {
            let v = b.version;
            let file = self.write_pending(OfflineRole::Bins, v, b)?;
            report.line(format!(
                "created {file}: bins v{v}, to be signed by the new bins keys"
            ));
        }
        self.save_config()?;
        Ok(report)
    }

    /// `resign bins`: the next bins version (same online key) with a fresh expiry.
    pub fn resign_bins(&mut self, expires_days: Option<u32>, now: Time) -> Result<Report> {
        let state = self.load()?;
        self.ensure_not_pending(&state, OfflineRole::Bins)?;
        let doc = state.bins.as_ref().ok_or_else(|| CeremonyError::Ceremony {
            dir: self.dir.clone(),
            reason: "no published bins to re-sign".into(),
        })?;
        let b = doc.targets().ok_or_else(|| usage("not bins"))?;
        let (rk, keys, layout) = online_delegation(b).ok_or_else(|| CeremonyError::Metadata {
            file: doc.label.clone(),
            reason: "has no succinct hashed-bin delegation".into(),
        })?;
        let online = RoleKeySet::new(keys_of(&keys, &rk.keyids, &doc.label)?, rk.threshold);
        let days = expires_days.unwrap_or(self.config.expires_days);
        let expires = expires_in(now, days)?;
        let version = b.version + 1;
        let new = build::new_bins_delegator(&layout, &online, version, expires).map_err(build_err)?;
        let file = self.write_pending(OfflineRole::Bins, version, new)?;
        let mut report = Report::default();
        report.line(format!(
            "created {file}: bins v{version}, expires {}",
            format_expires(expires)
        ));
        Ok(report)
    }

    /// `discard`: deletes a pending file (an abandoned rotation).
    pub fn discard(&self, which: &str) -> Result<Report> {
        let state = self.load()?;
        let doc = self.find_pending(&state, which)?;
        std::fs::remove_file(&doc.path).map_err(CeremonyError::io(&doc.path))?;
        let mut report = Report::default();
        report.line(format!("discarded {}", doc.label));
        Ok(report)
    }

    /// `verify` of the ceremony's published chain.
    pub fn verify(&self, now: Time) -> Result<VerifyReport> {
        let published = self.dir.join(PUBLISHED_DIR);
        let mut report = verify_dir(&published, "published/", &self.config.holders, now)?;
        let state = self.load()?;
        for d in state.pending.values() {
            report.lines.push(format!("pending (not verified): {}", d.label));
        }
        Ok(report)
    }
}

/// The signed bytes of the typed model must equal the bytes as read: a file with fields tufa
/// does not know would lose them on re-writing, breaking every signature.
fn check_payload(file: &str, reserialised: &[u8], payload: &[u8]) -> Result<()> {
    if reserialised != payload {
        return Err(CeremonyError::Metadata {
            file: file.to_owned(),
            reason: "contains fields tufa-ceremony does not know; refusing to re-write it".into(),
        });
    }
    Ok(())
}

fn expiry_warning(doc: &Doc, now: Time) -> Option<String> {
    let left = doc.expires.as_second() - now.as_second();
    (left > 0 && left < EXPIRY_WARNING_DAYS * 86_400).then(|| {
        format!(
            "{} expires {} (in {} day(s)): re-sign it",
            doc.what(),
            format_expires(doc.expires),
            left / 86_400
        )
    })
}

/// Checks root → targets → bins → online key, and expiry, for the roles as they stand (or will
/// stand after a publish). Returns problems, one line each.
fn check_graph(
    root: Option<&Doc>,
    targets: Option<&Doc>,
    bins: Option<&Doc>,
    now: Time,
    holder: impl Fn(&KeyId) -> String,
) -> Vec<String> {
    let mut problems = Vec::new();
    let (Some(root_doc), Some(targets_doc), Some(bins_doc)) = (root, targets, bins) else {
        for (role, d) in [("root", root), ("targets", targets), ("bins", bins)] {
            if d.is_none() {
                problems.push(format!(
                    "no {role} metadata: root, targets and bins must all exist"
                ));
            }
        }
        return problems;
    };
    let (Some(root), Some(t), Some(b)) = (root_doc.root(), targets_doc.targets(), bins_doc.targets()) else {
        problems.push("metadata of the wrong type".into());
        return problems;
    };
    for d in [root_doc, targets_doc, bins_doc] {
        if let Err(e) = tufa_tuf::check_expiry(d.role.name(), d.version, d.expires, now) {
            problems.push(format!("{} ({})", e, d.label));
        }
    }
    // targets signed by the root's targets keys.
    match root.role_keys(RoleName::TARGETS) {
        Ok(rk) => {
            if let Err(e) = verify_payload(
                RoleName::TARGETS,
                t.version,
                &targets_doc.payload,
                targets_doc.signatures(),
                &root.keys,
                rk,
            ) {
                problems.push(format!(
                    "{} does not meet the targets threshold of root v{}: {e}; create and sign the next targets with `resign targets`",
                    targets_doc.label, root.version
                ));
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    // bins signed by the keys targets delegates to.
    match bins_delegation(t) {
        Some((rk, keys)) => {
            if let Err(e) = verify_payload(
                RoleName::BINS,
                b.version,
                &bins_doc.payload,
                bins_doc.signatures(),
                &keys,
                &rk,
            ) {
                problems.push(format!(
                    "{} does not meet the bins threshold of targets v{}: {e}; create and sign the next bins with `resign bins`",
                    bins_doc.label, t.version
                ));
            }
        }
        None => problems.push(format!("{} does not delegate to `bins`", targets_doc.label)),
    }
    // One online key: snapshot, timestamp and the hashed bins.
    let snap = root.role_keys(RoleName::SNAPSHOT).map(|r| keyset(&r.keyids));
    let ts = root.role_keys(RoleName::TIMESTAMP).map(|r| keyset(&r.keyids));
    match (snap, ts, online_delegation(b)) {
        (Ok(snap), Ok(ts), Some((bins_rk, _, _))) => {
            let bin_keys = keyset(&bins_rk.keyids);
            let names = |s: &BTreeSet<KeyId>| s.iter().map(&holder).collect::<Vec<_>>().join(", ");
            if snap != ts || snap != bin_keys {
                problems.push(format!(
                    "the online key differs between root v{} (snapshot: {}; timestamp: {}) and bins v{} (hashed bins: {}); rotate it with `rotate-root --online-key`, which updates both",
                    root.version,
                    names(&snap),
                    names(&ts),
                    b.version,
                    names(&bin_keys)
                ));
            }
        }
        (Err(e), _, _) | (_, Err(e), _) => problems.push(e.to_string()),
        (_, _, None) => problems.push(format!(
            "{} has no succinct hashed-bin delegation",
            bins_doc.label
        )),
    }
    problems
}

/// Verifies a directory of published metadata (`N.root.json` from 1, `N.targets.json`,
/// `N.bins.json`): a ceremony's `published/` or a `publish --out` directory.
pub fn verify_metadata_dir(dir: &Path, holders: &BTreeMap<KeyId, String>, now: Time) -> Result<VerifyReport> {
    verify_dir(dir, "", holders, now)
}

fn verify_dir(
    dir: &Path,
    label_prefix: &str,
    holders: &BTreeMap<KeyId, String>,
    now: Time,
) -> Result<VerifyReport> {
    let files = scan(dir, label_prefix)?;
    let mut problems = Vec::new();
    let mut lines = Vec::new();
    let mut warnings = Vec::new();
    let holder = |id: &KeyId| who(holders, id);

    let roots_files = files.get(&OfflineRole::Root).cloned().unwrap_or_default();
    if roots_files.is_empty() {
        return Err(CeremonyError::Verify {
            problems: vec![format!("no root metadata in `{}`", dir.display())],
        });
    }
    let mut roots: Vec<Doc> = Vec::new();
    for (i, (v, label, path)) in roots_files.iter().enumerate() {
        if *v != i as u64 + 1 {
            problems.push(format!(
                "the root chain has a gap: expected {}.root.json, found {label}",
                i + 1
            ));
            break;
        }
        match Doc::load(OfflineRole::Root, label.clone(), path.clone(), *v) {
            Ok(d) => roots.push(d),
            Err(e) => {
                problems.push(e.to_string());
                break;
            }
        }
    }
    // Root chain: v1 by its own threshold, each later one by the old and the new threshold.
    let mut trusted: Option<&Doc> = None;
    for doc in &roots {
        if let Err(e) = root_continues(trusted, doc) {
            problems.push(e);
            break;
        }
        trusted = Some(doc);
    }
    let latest_ok = trusted.is_some_and(|t| Some(t.version) == roots.last().map(|r| r.version));
    let latest = |role: OfflineRole| -> Option<Result<Doc>> {
        let (v, label, path) = files.get(&role)?.last()?.clone();
        Some(Doc::load(role, label, path, v))
    };
    let targets = match latest(OfflineRole::Targets) {
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            problems.push(e.to_string());
            None
        }
        None => None,
    };
    let bins = match latest(OfflineRole::Bins) {
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            problems.push(e.to_string());
            None
        }
        None => None,
    };
    if latest_ok {
        problems.extend(check_graph(trusted, targets.as_ref(), bins.as_ref(), now, holder));
    }

    if let Some(root_doc) = roots.last()
        && let Some(root) = root_doc.root()
    {
        lines.push(format!(
            "root chain: {} version(s), v1 … v{}",
            roots.len(),
            root.version
        ));
        for name in RoleName::TOP_LEVEL {
            if let Ok(rk) = root.role_keys(name) {
                let who: Vec<String> = rk.keyids.iter().map(&holder).collect();
                lines.push(format!(
                    "  {name}: threshold {} of {} ({})",
                    rk.threshold,
                    rk.keyids.len(),
                    who.join(", ")
                ));
            }
        }
        lines.push(format!(
            "  root v{} expires {}",
            root.version,
            format_expires(root.expires)
        ));
        warnings.extend(expiry_warning(root_doc, now));
    }
    if let Some(d) = &targets
        && let Some(t) = d.targets()
    {
        let delegation = bins_delegation(t)
            .map(|(rk, _)| format!("bins keys threshold {} of {}", rk.threshold, rk.keyids.len()))
            .unwrap_or_default();
        lines.push(format!(
            "targets v{} ({delegation}) expires {}",
            t.version,
            format_expires(t.expires)
        ));
        warnings.extend(expiry_warning(d, now));
    }
    if let Some(d) = &bins
        && let Some(b) = d.targets()
    {
        let delegation = online_delegation(b)
            .map(|(rk, _, layout)| {
                let who: Vec<String> = rk.keyids.iter().map(&holder).collect();
                format!("{} hashed bins to {}", layout.bin_count(), who.join(", "))
            })
            .unwrap_or_default();
        lines.push(format!(
            "bins v{} ({delegation}) expires {}",
            b.version,
            format_expires(b.expires)
        ));
        warnings.extend(expiry_warning(d, now));
    }
    if !problems.is_empty() {
        return Err(CeremonyError::Verify { problems });
    }
    let mut summary = String::new();
    let _ = write!(
        summary,
        "OK: the published metadata in {} verifies",
        dir.display()
    );
    lines.push(summary);
    Ok(VerifyReport { lines, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(parse_file_name("1.root.json"), Some((OfflineRole::Root, 1)));
        assert_eq!(parse_file_name("12.bins.json"), Some((OfflineRole::Bins, 12)));
        assert_eq!(parse_file_name("3.targets.json"), Some((OfflineRole::Targets, 3)));
        for bad in [
            "01.root.json",
            "1.snapshot.json",
            "timestamp.json",
            "x.root.json",
            "1.root",
            "1.bin-0000.json",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
        assert_eq!(OfflineRole::Bins.file_name(4), "4.bins.json");
    }

    #[test]
    fn lifetimes_are_bounded() {
        assert!(lifetime(0).is_err());
        assert!(lifetime(3651).is_err());
        assert_eq!(lifetime(1).unwrap(), SignedDuration::from_hours(24));
    }
}
