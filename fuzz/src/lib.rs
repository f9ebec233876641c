//! Shared pieces of the fuzz targets: a small, deterministic signed TUF repository (fixed
//! keys, fixed expiry, fixed "now") that the `tuf_metadata` target verifies with one file
//! replaced by fuzzed bytes, and that `write_corpus` writes out as seeds.

use std::collections::BTreeMap;

use jiff::Timestamp;
use tufa_tuf::build::{self, RoleKeySet, RootKeys};
use tufa_tuf::{BinLayout, Ed25519Signer, Signer, TargetFile, TargetPath, sign_metadata};

/// The trusted clock of every verification: well before [`EXPIRES`].
pub const NOW: &str = "2030-01-01T00:00:00Z";
/// Expiry of every role of the fixture repository.
pub const EXPIRES: &str = "2100-01-01T00:00:00Z";

/// The targets of the fixture repository (PEP 458 shaped paths).
pub const TARGETS: &[(&str, &[u8])] = &[
    ("simple/demo/index.html", b"<!DOCTYPE html><a href=\"x\">x</a>\n"),
    (
        "simple/demo/index.json",
        b"{\"meta\":{\"api-version\":\"1.1\"},\"name\":\"demo\",\"files\":[]}",
    ),
    (
        "files/2c/26/b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae/demo-1.0-py3-none-any.whl",
        b"PK\x03\x04 not really a wheel",
    ),
    (
        "files/2c/26/b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae/demo-1.0-py3-none-any.whl.metadata",
        b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
    ),
    ("simple/other-project/index.html", b"<!DOCTYPE html>"),
];

/// A signed repository: root (2 of 3) → targets → bins → 4 hashed bins, snapshot, timestamp.
#[derive(Debug, Clone)]
pub struct TufRepo {
    /// Metadata files by name (`1.root.json`, `1.bin-0.json`, `timestamp.json`, …).
    pub files: BTreeMap<String, Vec<u8>>,
    /// Every target with its length and hashes, as signed.
    pub targets: BTreeMap<TargetPath, TargetFile>,
    pub now: Timestamp,
}

/// The fixture is built from constants: failing to build it is a bug in this file.
fn must<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("the fuzz fixture builds: {e}"))
}

fn signer(seed: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed(&[seed; 32])
}

fn bytes<T: serde::Serialize>(value: T, signers: &[&dyn Signer]) -> Vec<u8> {
    sign_metadata(value, signers)
        .and_then(|s| s.to_bytes())
        .unwrap_or_else(|e| panic!("fixture metadata signs: {e}"))
}

/// Builds the fixture (deterministic: ed25519 signatures are, and so is everything else).
pub fn tuf_repo() -> TufRepo {
    let now: Timestamp = must(NOW.parse());
    let expires: Timestamp = must(EXPIRES.parse());
    let root_keys: Vec<Ed25519Signer> = (1..=3).map(signer).collect();
    let (targets_key, bins_key, online) = (signer(4), signer(5), signer(6));
    let layout = must(BinLayout::new(2));
    let mut files = BTreeMap::new();

    let keys = RootKeys {
        root: RoleKeySet::new(root_keys.iter().map(|s| s.key().clone()).collect(), 2),
        targets: RoleKeySet::single(targets_key.key().clone()),
        snapshot: RoleKeySet::single(online.key().clone()),
        timestamp: RoleKeySet::single(online.key().clone()),
    };
    let root = must(build::new_root(&keys, 1, expires));
    let root_signers: Vec<&dyn Signer> = root_keys.iter().take(2).map(|s| s as &dyn Signer).collect();
    files.insert("1.root.json".to_owned(), bytes(root, &root_signers));

    let targets = must(build::new_targets_delegating_to_bins(
        &RoleKeySet::single(bins_key.key().clone()),
        1,
        expires,
    ));
    files.insert("1.targets.json".to_owned(), bytes(targets, &[&targets_key]));
    let bins = must(build::new_bins_delegator(
        &layout,
        &RoleKeySet::single(online.key().clone()),
        1,
        expires,
    ));
    files.insert("1.bins.json".to_owned(), bytes(bins, &[&bins_key]));

    let all: BTreeMap<TargetPath, TargetFile> = TARGETS
        .iter()
        .map(|(p, d)| (must(TargetPath::new(p)), TargetFile::from_data(d)))
        .collect();
    let mut bin_versions = Vec::new();
    for (n, content) in build::split_into_bins(&layout, all.clone())
        .into_iter()
        .enumerate()
    {
        let n = n as u32;
        let bin = must(build::new_bin(&layout, n, content, 1, expires));
        let name = layout.role_name(n);
        files.insert(format!("1.{name}.json"), bytes(bin, &[&online]));
        bin_versions.push((name, 1));
    }
    let meta = build::snapshot_meta(1, 1, bin_versions);
    let snapshot = must(build::new_snapshot(meta, 1, expires));
    let snapshot_bytes = bytes(snapshot, &[&online]);
    let timestamp = must(build::new_timestamp(&snapshot_bytes, 1, 1, expires));
    files.insert("1.snapshot.json".to_owned(), snapshot_bytes);
    files.insert("timestamp.json".to_owned(), bytes(timestamp, &[&online]));
    TufRepo {
        files,
        targets: all,
        now,
    }
}
