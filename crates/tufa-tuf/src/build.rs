//! Builders for tufa's PEP 458 role graph.
//!
//! ```text
//! root ──► targets (offline) ──► bins (offline) ──► bin-0000 … bin-3fff (online key)
//!     ├──► snapshot (online): versions of targets.json, bins.json, every bin-XXXX.json
//!     └──► timestamp (online): version, length and sha256 of snapshot
//! ```
//!
//! `targets` delegates everything to `bins` with `path_hash_prefixes` "0" … "f": in path
//! patterns `*` does not match `/`, so no single pattern covers every target path, whereas 16
//! one-digit hash prefixes cover the whole hash space. `bins` delegates through
//! `succinct_roles` to the hashed bins, which list the targets. Consistent snapshots are on.
//!
//! Builders return unsigned metadata; sign with [`crate::sign_metadata`].

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp as Time};

use crate::metadata::tags::{RootType, SnapshotType, TargetsType, TimestampType};
use crate::metadata::{
    DelegatedRole, Delegations, MetaFile, RoleKeys, Root, SPEC_VERSION, Snapshot, TargetFile, Targets,
    Timestamp,
};
use crate::{BinLayout, Key, KeyId, RoleName, TargetPath, TufError};

/// The keys of one role and how many of them must sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleKeySet {
    pub keys: Vec<Key>,
    pub threshold: u32,
}

impl RoleKeySet {
    pub fn new(keys: Vec<Key>, threshold: u32) -> Self {
        Self { keys, threshold }
    }

    /// One key, threshold 1 (the online roles).
    pub fn single(key: Key) -> Self {
        Self {
            keys: vec![key],
            threshold: 1,
        }
    }

    fn keyids(&self) -> Vec<KeyId> {
        self.keys.iter().map(Key::key_id).collect()
    }

    /// At least one key, no key twice, threshold in 1..=number of keys.
    fn check(&self, role: &str) -> Result<RoleKeys, TufError> {
        let bad = |reason: String| TufError::Build {
            role: role.to_owned(),
            reason,
        };
        let keyids = self.keyids();
        let mut unique = keyids.clone();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() != keyids.len() {
            return Err(bad("the same key is listed twice".into()));
        }
        // Thresholds count keys, not key ids: one public key under two ids (one carrying an
        // extension field) would promise a threshold that one holder meets alone.
        let identities: std::collections::BTreeSet<_> = self.keys.iter().map(Key::identity).collect();
        if identities.len() != keyids.len() {
            return Err(bad(
                "the same public key is listed twice (under two key ids)".into()
            ));
        }
        if self.threshold < 1 || self.threshold as usize > keyids.len() {
            return Err(bad(format!(
                "threshold {} is not between 1 and the number of keys ({})",
                self.threshold,
                keyids.len()
            )));
        }
        Ok(RoleKeys {
            keyids,
            threshold: self.threshold,
        })
    }

    fn key_map(&self) -> BTreeMap<KeyId, Key> {
        self.keys.iter().map(|k| (k.key_id(), k.clone())).collect()
    }
}

/// Keys of the four top-level roles.
#[derive(Debug, Clone)]
pub struct RootKeys {
    pub root: RoleKeySet,
    pub targets: RoleKeySet,
    pub snapshot: RoleKeySet,
    pub timestamp: RoleKeySet,
}

/// How long each role's metadata stays valid (PEP 458 / DESIGN.md defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiries {
    pub root: SignedDuration,
    pub targets: SignedDuration,
    pub bins: SignedDuration,
    pub bin_n: SignedDuration,
    pub snapshot: SignedDuration,
    pub timestamp: SignedDuration,
}

impl Default for Expiries {
    /// One year for the offline roles, one day for the online ones.
    fn default() -> Self {
        let day = SignedDuration::from_hours(24);
        let year = SignedDuration::from_hours(24 * 365);
        Self {
            root: year,
            targets: year,
            bins: year,
            bin_n: day,
            snapshot: day,
            timestamp: day,
        }
    }
}

/// `now + lifetime`, truncated to whole seconds (the only precision TUF expiry has).
pub fn expires_after(now: Time, lifetime: SignedDuration) -> Result<Time, TufError> {
    let t = now.checked_add(lifetime).map_err(|e| TufError::Build {
        role: "(any)".into(),
        reason: format!("expiry out of range: {e}"),
    })?;
    whole_seconds(t)
}

fn whole_seconds(t: Time) -> Result<Time, TufError> {
    Time::from_second(t.as_second()).map_err(|e| TufError::Build {
        role: "(any)".into(),
        reason: format!("expiry out of range: {e}"),
    })
}

fn check_version(role: &str, version: u64) -> Result<(), TufError> {
    if version == 0 {
        return Err(TufError::Build {
            role: role.to_owned(),
            reason: "versions start at 1".into(),
        });
    }
    Ok(())
}

/// Root metadata with consistent snapshots, listing the keys of all four top-level roles.
pub fn new_root(keys: &RootKeys, version: u64, expires: Time) -> Result<Root, TufError> {
    check_version(RoleName::ROOT, version)?;
    let mut all_keys = BTreeMap::new();
    let mut roles = BTreeMap::new();
    for (name, set) in [
        (RoleName::root(), &keys.root),
        (RoleName::targets(), &keys.targets),
        (RoleName::snapshot(), &keys.snapshot),
        (RoleName::timestamp(), &keys.timestamp),
    ] {
        let role_keys = set.check(name.as_str())?;
        all_keys.extend(set.key_map());
        roles.insert(name, role_keys);
    }
    Ok(Root {
        type_: RootType,
        spec_version: SPEC_VERSION.to_owned(),
        version,
        expires: whole_seconds(expires)?,
        consistent_snapshot: true,
        keys: all_keys,
        roles,
    })
}

/// The single delegation from `targets` to `bins`: terminating, covering every path through
/// the 16 one-hex-digit `path_hash_prefixes`.
pub fn bins_delegation(bins_keys: &RoleKeySet) -> Result<(BTreeMap<KeyId, Key>, DelegatedRole), TufError> {
    let role_keys = bins_keys.check(RoleName::BINS)?;
    let role = DelegatedRole {
        name: RoleName::bins(),
        keyids: role_keys.keyids,
        threshold: role_keys.threshold,
        terminating: true,
        paths: None,
        path_hash_prefixes: Some((0..16u8).map(|i| format!("{i:x}")).collect()),
    };
    Ok((bins_keys.key_map(), role))
}

/// Top-level `targets`: no targets of its own, delegates everything to `bins`.
pub fn new_targets_delegating_to_bins(
    bins_keys: &RoleKeySet,
    version: u64,
    expires: Time,
) -> Result<Targets, TufError> {
    check_version(RoleName::TARGETS, version)?;
    let (keys, role) = bins_delegation(bins_keys)?;
    Ok(Targets {
        type_: TargetsType,
        spec_version: SPEC_VERSION.to_owned(),
        version,
        expires: whole_seconds(expires)?,
        targets: BTreeMap::new(),
        delegations: Some(Delegations {
            keys,
            roles: Some(vec![role]),
            succinct_roles: None,
        }),
    })
}

/// `bins`: no targets of its own, delegates to every hashed bin through `succinct_roles`
/// signed by the online key(s).
pub fn new_bins_delegator(
    layout: &BinLayout,
    online_keys: &RoleKeySet,
    version: u64,
    expires: Time,
) -> Result<Targets, TufError> {
    check_version(RoleName::BINS, version)?;
    let role_keys = online_keys.check("bin-n")?;
    Ok(Targets {
        type_: TargetsType,
        spec_version: SPEC_VERSION.to_owned(),
        version,
        expires: whole_seconds(expires)?,
        targets: BTreeMap::new(),
        delegations: Some(Delegations {
            keys: online_keys.key_map(),
            roles: None,
            succinct_roles: Some(layout.succinct_roles(role_keys.keyids, role_keys.threshold)),
        }),
    })
}

/// Hashed bin number `bin`, listing `targets`. Every target must hash to this bin: a target
/// in the wrong bin is invisible to clients.
pub fn new_bin(
    layout: &BinLayout,
    bin: u32,
    targets: BTreeMap<TargetPath, TargetFile>,
    version: u64,
    expires: Time,
) -> Result<Targets, TufError> {
    let name = layout.role_name(bin);
    check_version(name.as_str(), version)?;
    if bin >= layout.bin_count() {
        return Err(TufError::Build {
            role: name.to_string(),
            reason: format!(
                "bin {bin} does not exist in a layout of {} bins",
                layout.bin_count()
            ),
        });
    }
    if let Some(path) = targets.keys().find(|p| layout.bin_for(p) != bin) {
        return Err(TufError::TargetNotDelegated {
            path: path.to_string(),
            role: name.to_string(),
            hint: format!(" (it belongs in `{}`)", layout.role_for(path)),
        });
    }
    // ngclient requests `dir/<first hash>.<basename>`, the first hash in file order; files are
    // written with sorted keys, so sha256 must be the smallest algorithm name listed.
    if let Some((path, _)) = targets
        .iter()
        .find(|(_, f)| f.hashes.keys().next().map(String::as_str) != Some("sha256"))
    {
        return Err(TufError::Build {
            role: name.to_string(),
            reason: format!(
                "target `{path}` must list sha256, and no hash algorithm whose name sorts before it"
            ),
        });
    }
    Ok(Targets {
        type_: TargetsType,
        spec_version: SPEC_VERSION.to_owned(),
        version,
        expires: whole_seconds(expires)?,
        targets,
        delegations: None,
    })
}

/// Splits targets into their bins. Every bin appears, empty ones included.
pub fn split_into_bins(
    layout: &BinLayout,
    targets: impl IntoIterator<Item = (TargetPath, TargetFile)>,
) -> Vec<BTreeMap<TargetPath, TargetFile>> {
    let mut bins = vec![BTreeMap::new(); layout.bin_count() as usize];
    for (path, file) in targets {
        let n = layout.bin_for(&path) as usize;
        if let Some(bin) = bins.get_mut(n) {
            bin.insert(path, file);
        }
    }
    bins
}

/// Snapshot listing `meta` (`targets.json`, `bins.json`, each `bin-XXXX.json` → version).
pub fn new_snapshot(
    meta: BTreeMap<String, MetaFile>,
    version: u64,
    expires: Time,
) -> Result<Snapshot, TufError> {
    check_version(RoleName::SNAPSHOT, version)?;
    if let Some((name, _)) = meta.iter().find(|(_, m)| m.version == 0) {
        return Err(TufError::Build {
            role: RoleName::SNAPSHOT.into(),
            reason: format!("`{name}` has version 0"),
        });
    }
    Ok(Snapshot {
        type_: SnapshotType,
        spec_version: SPEC_VERSION.to_owned(),
        version,
        expires: whole_seconds(expires)?,
        meta,
    })
}

/// The snapshot `meta` map for tufa's graph: `targets.json`, `bins.json`, then every bin with
/// its version.
pub fn snapshot_meta(
    targets_version: u64,
    bins_version: u64,
    bin_versions: impl IntoIterator<Item = (RoleName, u64)>,
) -> BTreeMap<String, MetaFile> {
    let mut meta = BTreeMap::new();
    meta.insert(
        RoleName::targets().snapshot_meta_key(),
        MetaFile::new(targets_version),
    );
    meta.insert(RoleName::bins().snapshot_meta_key(), MetaFile::new(bins_version));
    for (role, version) in bin_versions {
        meta.insert(role.snapshot_meta_key(), MetaFile::new(version));
    }
    meta
}

/// Timestamp pointing at the snapshot file `snapshot_bytes` (its version, length and sha256).
pub fn new_timestamp(
    snapshot_bytes: &[u8],
    snapshot_version: u64,
    version: u64,
    expires: Time,
) -> Result<Timestamp, TufError> {
    check_version(RoleName::TIMESTAMP, version)?;
    check_version(RoleName::SNAPSHOT, snapshot_version)?;
    Ok(Timestamp {
        type_: TimestampType,
        spec_version: SPEC_VERSION.to_owned(),
        version,
        expires: whole_seconds(expires)?,
        meta: BTreeMap::from([(
            Timestamp::SNAPSHOT_META_KEY.to_owned(),
            MetaFile::from_data(snapshot_version, snapshot_bytes),
        )]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ed25519Signer, Signer};

    fn t0() -> Time {
        crate::parse_expires("2030-01-01T00:00:00Z").unwrap()
    }

    #[test]
    fn key_sets_are_checked() {
        let a = Ed25519Signer::generate().key().clone();
        let b = Ed25519Signer::generate().key().clone();
        assert!(RoleKeySet::new(vec![], 1).check("r").is_err());
        assert!(RoleKeySet::new(vec![a.clone()], 0).check("r").is_err());
        assert!(RoleKeySet::new(vec![a.clone()], 2).check("r").is_err());
        assert!(RoleKeySet::new(vec![a.clone(), a.clone()], 1).check("r").is_err());
        assert_eq!(RoleKeySet::new(vec![a, b], 2).check("r").unwrap().keyids.len(), 2);
    }

    #[test]
    fn expiry_is_whole_seconds() {
        let now = Time::new(1_900_000_000, 123_456_789).unwrap();
        let e = expires_after(now, SignedDuration::from_hours(24)).unwrap();
        assert_eq!(e.subsec_nanosecond(), 0);
        assert_eq!(e.as_second(), 1_900_000_000 + 86_400);
    }

    #[test]
    fn new_bin_rejects_misplaced_targets() {
        let layout = BinLayout::new(4).unwrap();
        let path = TargetPath::new("simple/demo/index.html").unwrap();
        let right = layout.bin_for(&path);
        let wrong = (right + 1) % 16;
        let targets = BTreeMap::from([(path, TargetFile::from_data(b"x"))]);
        assert!(new_bin(&layout, right, targets.clone(), 1, t0()).is_ok());
        let mut blake = targets.clone();
        for f in blake.values_mut() {
            f.hashes.insert("blake2b-256".into(), "00".into());
        }
        assert!(new_bin(&layout, right, blake, 1, t0()).is_err());
        let err = new_bin(&layout, wrong, targets, 1, t0()).unwrap_err();
        assert!(
            err.to_string().contains(&layout.role_name(right).to_string()),
            "{err}"
        );
    }

    #[test]
    fn targets_delegation_covers_every_path() {
        let k = RoleKeySet::single(Ed25519Signer::generate().key().clone());
        let t = new_targets_delegating_to_bins(&k, 1, t0()).unwrap();
        let role = &t.delegations.unwrap().roles.unwrap()[0];
        for p in ["a", "simple/x/index.html", "files/ab/cd/ef/x-1.0.tar.gz", "é/ü"] {
            assert!(role.is_delegated_path(p), "{p}");
        }
    }

    #[test]
    fn split_into_bins_places_by_hash() {
        let layout = BinLayout::new(4).unwrap();
        let paths = ["a", "b", "c/d", "simple/x/index.json"];
        let bins = split_into_bins(
            &layout,
            paths
                .iter()
                .map(|p| (TargetPath::new(p).unwrap(), TargetFile::from_data(p.as_bytes()))),
        );
        assert_eq!(bins.len(), 16);
        assert_eq!(bins.iter().map(BTreeMap::len).sum::<usize>(), paths.len());
        for (n, bin) in bins.iter().enumerate() {
            for p in bin.keys() {
                assert_eq!(layout.bin_for(p) as usize, n);
            }
        }
    }
}
