//! Verification: signature thresholds, expiry, and a client-style walk of a whole repository.
//!
//! [`verify_repository`] starts from a trusted root and checks what a python-tuf `ngclient`
//! checks when it refreshes and then looks up every target: root rotation N → N+1 (each new
//! root signed by the old root's threshold *and* its own, version exactly N+1), the final
//! root unexpired, timestamp → snapshot (version, length, hashes), snapshot → every targets
//! role's version, signatures and expiry down the delegation graph, and that every target
//! sits in a role delegated its path (for hashed bins: the target path hashes to that bin).
//! Unlike a client it visits every role, so it reports every problem, not just the first.
//!
//! It keeps no state between runs, so it cannot see rollbacks relative to an earlier visit;
//! that is the client's job (and the attack tests').

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::rc::Rc;

use jiff::Timestamp as Time;

use crate::metadata::{
    MetaFile, ParsedMetadata, Role, RoleKeys, Root, Signature, Signed, Snapshot, TargetFile, Targets,
    Timestamp,
};
use crate::{BinLayout, Key, KeyId, RoleName, TargetPath, TufError, format_expires, metadata_file_name};

/// Checks that `payload` carries at least `authorised.threshold` valid signatures by distinct
/// keys listed in `authorised.keyids` whose key is in `keys`.
///
/// Metadata listing two signatures by one key id is refused ([`TufError::DuplicateSignature`]:
/// the specification says key ids in `signatures` must be unique, and python-tuf refuses it).
/// A signature by a key that is not authorised does not count; a key of an unsupported type
/// never counts; and the threshold counts *keys*, not key ids: one public key listed under two
/// ids (a key with an extension field has another id) counts once.
pub fn verify_payload(
    role: &str,
    version: u64,
    payload: &[u8],
    signatures: &[Signature],
    keys: &BTreeMap<KeyId, Key>,
    authorised: &RoleKeys,
) -> Result<(), TufError> {
    if authorised.threshold < 1 {
        return Err(TufError::InvalidRole {
            role: role.to_owned(),
            reason: "threshold is 0".into(),
        });
    }
    check_unique_signatures(role, version, signatures)?;
    let mut counted: BTreeMap<(String, String, String), &KeyId> = BTreeMap::new();
    let mut notes: Vec<String> = Vec::new();
    let authorised_ids: BTreeSet<&KeyId> = authorised.keyids.iter().collect();
    for keyid in authorised_ids {
        let Some(key) = keys.get(keyid) else {
            notes.push(format!("key `{keyid}` is not listed"));
            continue;
        };
        let Some(sig) = signatures.iter().find(|s| &s.keyid == keyid) else {
            notes.push(format!("no signature by `{keyid}`"));
            continue;
        };
        let ok = match hex::decode(&sig.sig) {
            Err(_) => false,
            Ok(raw) => match key.verify(keyid, payload, &raw) {
                Ok(ok) => ok,
                Err(e) => {
                    notes.push(e.to_string());
                    continue;
                }
            },
        };
        if !ok {
            notes.push(format!("signature by `{keyid}` does not verify"));
            continue;
        }
        match counted.entry(key.identity()) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(keyid);
            }
            std::collections::btree_map::Entry::Occupied(first) => notes.push(format!(
                "key `{keyid}` is the same public key as `{}`: counted once",
                first.get()
            )),
        }
    }
    let valid = counted.len();
    if valid >= authorised.threshold as usize {
        return Ok(());
    }
    let strays = signatures
        .iter()
        .filter(|s| !authorised.keyids.contains(&s.keyid))
        .count();
    if strays > 0 {
        notes.push(format!(
            "{strays} signature(s) by keys not authorised for this role ignored"
        ));
    }
    Err(TufError::Threshold {
        role: role.to_owned(),
        version,
        valid,
        threshold: authorised.threshold,
        detail: if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        },
    })
}

/// [`verify_payload`] over the canonical JSON of `signed.signed`.
pub fn verify_signed<T: Role>(
    role: &str,
    signed: &Signed<T>,
    keys: &BTreeMap<KeyId, Key>,
    authorised: &RoleKeys,
) -> Result<(), TufError> {
    let payload = signed.signed_bytes()?;
    verify_payload(
        role,
        signed.signed.version(),
        &payload,
        &signed.signatures,
        keys,
        authorised,
    )
}

/// Metadata is expired once `now >= expires` (python-tuf's `is_expired`).
pub fn check_expiry(role: &str, version: u64, expires: Time, now: Time) -> Result<(), TufError> {
    if now >= expires {
        return Err(TufError::Expired {
            role: role.to_owned(),
            version,
            expires: format_expires(expires),
        });
    }
    Ok(())
}

/// Where [`verify_repository`] reads metadata files, by file name (`1.root.json`,
/// `timestamp.json`, `7.snapshot.json`, `3.bin-0a1f.json`, …). `None` means "not there".
pub trait MetadataSource {
    fn fetch(&self, file_name: &str) -> Option<Vec<u8>>;
}

impl<F: Fn(&str) -> Option<Vec<u8>>> MetadataSource for F {
    fn fetch(&self, file_name: &str) -> Option<Vec<u8>> {
        self(file_name)
    }
}

impl MetadataSource for BTreeMap<String, Vec<u8>> {
    fn fetch(&self, file_name: &str) -> Option<Vec<u8>> {
        self.get(file_name).cloned()
    }
}

impl MetadataSource for HashMap<String, Vec<u8>> {
    fn fetch(&self, file_name: &str) -> Option<Vec<u8>> {
        self.get(file_name).cloned()
    }
}

/// Limits and the reference time. Length limits default to python-tuf `ngclient`'s
/// (`UpdaterConfig`), so metadata that passes here is not too big for a default client.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The time expiry is checked against.
    pub now: Time,
    /// How many root versions past the trusted one to follow (ngclient: 256).
    pub max_root_rotations: u32,
    /// ngclient `root_max_length`: 512,000 bytes.
    pub max_root_length: u64,
    /// ngclient `timestamp_max_length`: 16,384 bytes.
    pub max_timestamp_length: u64,
    /// ngclient `snapshot_max_length` (used when timestamp lists no length): 2,000,000 bytes.
    pub max_snapshot_length: u64,
    /// ngclient `targets_max_length` (used when snapshot lists no length): 5,000,000 bytes.
    pub max_targets_length: u64,
    /// Most targets roles visited in one walk (bounds work on hostile delegation graphs).
    pub max_roles: usize,
}

impl VerifyOptions {
    pub fn new(now: Time) -> Self {
        Self {
            now,
            max_root_rotations: 256,
            max_root_length: 512_000,
            max_timestamp_length: 16_384,
            max_snapshot_length: 2_000_000,
            max_targets_length: 5_000_000,
            max_roles: (1 << 16) + 1024,
        }
    }
}

/// A target found by the walk, and the role that lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedTarget {
    pub file: TargetFile,
    pub role: RoleName,
}

/// Everything [`verify_repository`] verified.
#[derive(Debug, Clone)]
pub struct VerifiedRepository {
    /// The newest root the chain reached.
    pub root: Root,
    pub timestamp: Timestamp,
    pub snapshot: Snapshot,
    /// Every targets role visited, with its version.
    pub roles: BTreeMap<RoleName, u64>,
    /// Every target, in the role a client would find it in.
    pub targets: BTreeMap<TargetPath, VerifiedTarget>,
}

/// The problems [`verify_repository`] found. A problem in the root, timestamp or snapshot
/// ends the walk; problems in targets roles are collected.
#[derive(Debug)]
pub struct VerifyFailure {
    pub problems: Vec<TufError>,
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TUF verification found {} problem(s)", self.problems.len())?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for VerifyFailure {}

impl From<TufError> for VerifyFailure {
    fn from(e: TufError) -> Self {
        Self { problems: vec![e] }
    }
}

fn fetch_limited(source: &dyn MetadataSource, file: &str, max: u64) -> Result<Vec<u8>, TufError> {
    let bytes = source
        .fetch(file)
        .ok_or_else(|| TufError::MissingFile(file.to_owned()))?;
    if bytes.len() as u64 > max {
        return Err(TufError::TooLarge {
            what: file.to_owned(),
            len: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

/// python-tuf refuses metadata listing two signatures by one key id.
fn check_unique_signatures(role: &str, version: u64, signatures: &[Signature]) -> Result<(), TufError> {
    let mut seen = BTreeSet::new();
    for s in signatures {
        if !seen.insert(s.keyid) {
            return Err(TufError::DuplicateSignature {
                role: role.to_owned(),
                version,
                keyid: s.keyid.to_string(),
            });
        }
    }
    Ok(())
}

/// Parses `bytes` as role `role` and checks its signatures against `keys`/`authorised`.
fn load<T: Role>(
    role: &str,
    file: &str,
    bytes: &[u8],
    keys: &BTreeMap<KeyId, Key>,
    authorised: &RoleKeys,
) -> Result<ParsedMetadata<T>, TufError> {
    let parsed = Signed::<T>::from_file(file, bytes)?;
    let version = parsed.metadata.signed.version();
    verify_payload(
        role,
        version,
        &parsed.payload,
        &parsed.metadata.signatures,
        keys,
        authorised,
    )?;
    Ok(parsed)
}

fn expect_version(role: &str, expected: u64, found: u64) -> Result<(), TufError> {
    if expected != found {
        return Err(TufError::VersionMismatch {
            role: role.to_owned(),
            expected,
            found,
        });
    }
    Ok(())
}

/// A condition on the paths a role may list: one per delegation on the way to it.
enum PathRule {
    Delegated(crate::metadata::DelegatedRole),
    Bin { layout: Rc<BinLayout>, bin: u32 },
}

impl PathRule {
    fn allows(&self, path: &str) -> bool {
        match self {
            PathRule::Delegated(role) => role.is_delegated_path(path),
            PathRule::Bin { layout, bin } => layout.bin_for_str(path) == *bin,
        }
    }

    fn hint(&self, path: &str) -> String {
        match self {
            PathRule::Delegated(role) => format!(" (delegation to `{}` does not cover it)", role.name),
            PathRule::Bin { layout, .. } => format!(
                " (its path hashes to `{}`)",
                layout.role_name(layout.bin_for_str(path))
            ),
        }
    }
}

struct Visit {
    name: RoleName,
    keys: Rc<BTreeMap<KeyId, Key>>,
    authorised: Rc<RoleKeys>,
    rules: Vec<Rc<PathRule>>,
}

/// Walks the repository from `trusted_root` (the bytes of a root the caller trusts, e.g.
/// `1.root.json`) like a TUF client, and returns what it verified or every problem found.
pub fn verify_repository(
    trusted_root: &[u8],
    source: &dyn MetadataSource,
    options: &VerifyOptions,
) -> Result<VerifiedRepository, VerifyFailure> {
    let root = verify_root_chain(trusted_root, source, options)?;
    let (timestamp, snapshot) = verify_timestamp_and_snapshot(&root, source, options)?;
    let mut problems = Vec::new();
    let (roles, targets) = walk_targets(&root, &snapshot, source, options, &mut problems)?;
    if !problems.is_empty() {
        return Err(VerifyFailure { problems });
    }
    Ok(VerifiedRepository {
        root,
        timestamp,
        snapshot,
        roles,
        targets,
    })
}

/// Verifies `N+1.root.json` (`file`, `bytes`) against the trusted root `current` (version N),
/// as a TUF client updates its root: the file name and the signed version must both be N+1,
/// no key id may sign twice, and it must carry the threshold of `current`'s root keys *and*
/// the threshold of its own root keys (counting distinct keys, see [`verify_payload`]).
/// Expiry is not checked here: intermediate roots may have expired, the final one may not.
///
/// The one place a root rotation is checked: the verifier, `tufa import-metadata` and the key
/// ceremony's `publish` all call it.
pub fn verify_next_root(current: &Root, file: &str, bytes: &[u8]) -> Result<ParsedMetadata<Root>, TufError> {
    let root_role = RoleName::ROOT;
    let next = current.version.saturating_add(1);
    let parsed = Signed::<Root>::from_file(file, bytes)?;
    let new = &parsed.metadata.signed;
    if new.version != next {
        return Err(TufError::VersionMismatch {
            role: root_role.to_owned(),
            expected: next,
            found: new.version,
        });
    }
    let with_context = |e: TufError, whose: u64| match e {
        TufError::Threshold {
            role,
            version,
            valid,
            threshold,
            detail,
        } => TufError::Threshold {
            role,
            version,
            valid,
            threshold,
            detail: format!(" counting the root keys of v{whose}{detail}"),
        },
        other => other,
    };
    // Signed by the old root's threshold of old root keys…
    verify_payload(
        root_role,
        new.version,
        &parsed.payload,
        &parsed.metadata.signatures,
        &current.keys,
        current.role_keys(root_role)?,
    )
    .map_err(|e| with_context(e, current.version))?;
    // …and by its own threshold of its own root keys.
    verify_payload(
        root_role,
        new.version,
        &parsed.payload,
        &parsed.metadata.signatures,
        &new.keys,
        new.role_keys(root_role)?,
    )
    .map_err(|e| with_context(e, new.version))?;
    Ok(parsed)
}

/// Verifies a root that is trusted as it is (the trust anchor, e.g. `1.root.json` shipped with
/// a client): well-formed and signed by the threshold of its own root keys, as python-tuf
/// checks its trusted root too.
pub fn verify_trusted_root(what: &str, bytes: &[u8]) -> Result<ParsedMetadata<Root>, TufError> {
    let parsed = Signed::<Root>::from_file(what, bytes)?;
    let root = &parsed.metadata.signed;
    verify_payload(
        RoleName::ROOT,
        root.version,
        &parsed.payload,
        &parsed.metadata.signatures,
        &root.keys,
        root.role_keys(RoleName::ROOT)?,
    )?;
    Ok(parsed)
}

fn verify_root_chain(
    trusted_root: &[u8],
    source: &dyn MetadataSource,
    options: &VerifyOptions,
) -> Result<Root, TufError> {
    let root_role = RoleName::ROOT;
    // The trust anchor must be signed by its own root keys (python-tuf checks this too).
    let mut root = verify_trusted_root("trusted root", trusted_root)?.metadata.signed;

    for _ in 0..options.max_root_rotations {
        let next = root.version.saturating_add(1);
        let file = format!("{next}.root.json");
        let Some(bytes) = source.fetch(&file) else {
            break;
        };
        if bytes.len() as u64 > options.max_root_length {
            return Err(TufError::TooLarge {
                what: file,
                len: bytes.len() as u64,
                max: options.max_root_length,
            });
        }
        root = verify_next_root(&root, &file, &bytes)?.metadata.signed;
    }
    // Intermediate roots may have expired; the final one may not.
    check_expiry(root_role, root.version, root.expires, options.now)?;
    Ok(root)
}

fn verify_timestamp_and_snapshot(
    root: &Root,
    source: &dyn MetadataSource,
    options: &VerifyOptions,
) -> Result<(Timestamp, Snapshot), TufError> {
    let ts_name = RoleName::timestamp();
    let ts_file = metadata_file_name(&ts_name, 0, root.consistent_snapshot);
    let bytes = fetch_limited(source, &ts_file, options.max_timestamp_length)?;
    let timestamp = load::<Timestamp>(
        RoleName::TIMESTAMP,
        &ts_file,
        &bytes,
        &root.keys,
        root.role_keys(RoleName::TIMESTAMP)?,
    )?
    .metadata
    .signed;
    check_expiry(
        RoleName::TIMESTAMP,
        timestamp.version,
        timestamp.expires,
        options.now,
    )?;

    let meta = timestamp.snapshot_meta()?;
    let snap_file = metadata_file_name(&RoleName::snapshot(), meta.version, root.consistent_snapshot);
    let bytes = fetch_limited(
        source,
        &snap_file,
        meta.length.unwrap_or(options.max_snapshot_length),
    )?;
    meta.verify(&snap_file, &bytes)?;
    let snapshot = load::<Snapshot>(
        RoleName::SNAPSHOT,
        &snap_file,
        &bytes,
        &root.keys,
        root.role_keys(RoleName::SNAPSHOT)?,
    )?
    .metadata
    .signed;
    expect_version(RoleName::SNAPSHOT, meta.version, snapshot.version)?;
    check_expiry(
        RoleName::SNAPSHOT,
        snapshot.version,
        snapshot.expires,
        options.now,
    )?;
    Ok((timestamp, snapshot))
}

type Walked = (BTreeMap<RoleName, u64>, BTreeMap<TargetPath, VerifiedTarget>);

/// Pre-order depth-first walk of the delegation graph, in the order a client searches it.
fn walk_targets(
    root: &Root,
    snapshot: &Snapshot,
    source: &dyn MetadataSource,
    options: &VerifyOptions,
    problems: &mut Vec<TufError>,
) -> Result<Walked, VerifyFailure> {
    let mut roles = BTreeMap::new();
    let mut targets: BTreeMap<TargetPath, VerifiedTarget> = BTreeMap::new();
    let mut visited: BTreeSet<RoleName> = BTreeSet::new();
    let mut stack = vec![Visit {
        name: RoleName::targets(),
        keys: Rc::new(root.keys.clone()),
        authorised: Rc::new(root.role_keys(RoleName::TARGETS)?.clone()),
        rules: Vec::new(),
    }];

    while let Some(visit) = stack.pop() {
        if !visited.insert(visit.name.clone()) {
            continue;
        }
        if visited.len() > options.max_roles {
            problems.push(TufError::InvalidRole {
                role: visit.name.to_string(),
                reason: format!("more than {} targets roles; stopped walking", options.max_roles),
            });
            break;
        }
        let loaded = match load_targets_role(&visit, root, snapshot, source, options) {
            Ok(t) => t,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        roles.insert(visit.name.clone(), loaded.version);

        for (path, file) in &loaded.targets {
            if let Some(rule) = visit.rules.iter().find(|r| !r.allows(path.as_str())) {
                problems.push(TufError::TargetNotDelegated {
                    path: path.to_string(),
                    role: visit.name.to_string(),
                    hint: rule.hint(path.as_str()),
                });
                continue;
            }
            targets.entry(path.clone()).or_insert_with(|| VerifiedTarget {
                file: file.clone(),
                role: visit.name.clone(),
            });
        }

        let Some(delegations) = loaded.delegations else {
            continue;
        };
        let keys = Rc::new(delegations.keys);
        let mut children = Vec::new();
        if let Some(list) = delegations.roles {
            for role in list {
                let mut rules = visit.rules.clone();
                let authorised = Rc::new(role.role_keys());
                let name = role.name.clone();
                rules.push(Rc::new(PathRule::Delegated(role)));
                children.push(Visit {
                    name,
                    keys: Rc::clone(&keys),
                    authorised,
                    rules,
                });
            }
        } else if let Some(succinct) = delegations.succinct_roles {
            match succinct.layout() {
                Ok(layout) => {
                    let layout = Rc::new(layout);
                    let authorised = Rc::new(succinct.role_keys());
                    for bin in 0..layout.bin_count() {
                        let mut rules = visit.rules.clone();
                        rules.push(Rc::new(PathRule::Bin {
                            layout: Rc::clone(&layout),
                            bin,
                        }));
                        children.push(Visit {
                            name: layout.role_name(bin),
                            keys: Rc::clone(&keys),
                            authorised: Rc::clone(&authorised),
                            rules,
                        });
                    }
                }
                Err(e) => problems.push(TufError::InvalidRole {
                    role: visit.name.to_string(),
                    reason: format!("succinct_roles: {e}"),
                }),
            }
        }
        // Pushed in reverse so the first delegation is visited first.
        stack.extend(children.into_iter().rev());
    }
    Ok((roles, targets))
}

fn load_targets_role(
    visit: &Visit,
    root: &Root,
    snapshot: &Snapshot,
    source: &dyn MetadataSource,
    options: &VerifyOptions,
) -> Result<Targets, TufError> {
    let name = &visit.name;
    let meta: &MetaFile =
        snapshot
            .meta
            .get(&name.snapshot_meta_key())
            .ok_or_else(|| TufError::MissingRole {
                role: name.to_string(),
                listed_in: format!("snapshot v{}", snapshot.version),
            })?;
    let file = metadata_file_name(name, meta.version, root.consistent_snapshot);
    let bytes = fetch_limited(source, &file, meta.length.unwrap_or(options.max_targets_length))?;
    meta.verify(&file, &bytes)?;
    let targets = load::<Targets>(name.as_str(), &file, &bytes, &visit.keys, &visit.authorised)?
        .metadata
        .signed;
    expect_version(name.as_str(), meta.version, targets.version)?;
    check_expiry(name.as_str(), targets.version, targets.expires, options.now)?;
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::tags::TimestampType;
    use crate::{Ed25519Signer, SPEC_VERSION, Signer, sign_metadata};

    fn ts() -> Timestamp {
        Timestamp {
            type_: TimestampType,
            spec_version: SPEC_VERSION.into(),
            version: 1,
            expires: crate::parse_expires("2030-01-01T00:00:00Z").unwrap(),
            meta: BTreeMap::from([("snapshot.json".into(), MetaFile::new(1))]),
        }
    }

    #[test]
    fn threshold_zero_is_refused() {
        let a = Ed25519Signer::generate();
        let signed = sign_metadata(ts(), &[&a]).unwrap();
        let keys = BTreeMap::from([(a.keyid(), a.key().clone())]);
        let role = RoleKeys {
            keyids: vec![],
            threshold: 0,
        };
        assert!(verify_signed("timestamp", &signed, &keys, &role).is_err());
    }

    #[test]
    fn expiry_boundary() {
        let e = crate::parse_expires("2030-01-01T00:00:00Z").unwrap();
        let before = Time::from_second(e.as_second() - 1).unwrap();
        assert!(check_expiry("timestamp", 3, e, before).is_ok());
        let err = check_expiry("timestamp", 3, e, e).unwrap_err();
        assert_eq!(
            err.to_string(),
            "role `timestamp` v3 expired at 2030-01-01T00:00:00Z"
        );
    }
}
