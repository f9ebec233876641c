//! A complete small repository built with the crate's builders: root (2-of-3) → targets →
//! bins → hashed bins, snapshot and timestamp, consistent snapshots, plus target files.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::{SignedDuration, Timestamp as Time};
use tufa_pypi::Sha256Digest;
use tufa_tuf::build::{self, RoleKeySet, RootKeys};
use tufa_tuf::{BinLayout, Ed25519Signer, RoleName, Signer, TargetFile, TargetPath, sign_metadata};

pub struct Keys {
    pub root: Vec<Ed25519Signer>,
    pub targets: Ed25519Signer,
    pub bins: Ed25519Signer,
    pub online: Ed25519Signer,
}

impl Keys {
    pub fn generate() -> Self {
        Self {
            root: (0..3).map(|_| Ed25519Signer::generate()).collect(),
            targets: Ed25519Signer::generate(),
            bins: Ed25519Signer::generate(),
            online: Ed25519Signer::generate(),
        }
    }

    pub fn root_keys(&self, root_signers: &[&Ed25519Signer], threshold: u32) -> RootKeys {
        RootKeys {
            root: RoleKeySet::new(root_signers.iter().map(|s| s.key().clone()).collect(), threshold),
            targets: RoleKeySet::single(self.targets.key().clone()),
            snapshot: RoleKeySet::single(self.online.key().clone()),
            timestamp: RoleKeySet::single(self.online.key().clone()),
        }
    }
}

pub struct Repo {
    pub keys: Keys,
    pub layout: BinLayout,
    pub expires_offline: Time,
    pub expires_online: Time,
    /// Metadata files by name (`1.root.json`, `timestamp.json`, …).
    pub meta: BTreeMap<String, Vec<u8>>,
    pub target_data: BTreeMap<TargetPath, Vec<u8>>,
    pub bin_versions: BTreeMap<RoleName, u64>,
    pub targets_version: u64,
    pub bins_version: u64,
    pub snapshot_version: u64,
    pub timestamp_version: u64,
}

pub fn now() -> Time {
    Time::now()
}

pub const DEFAULT_TARGETS: &[(&str, &[u8])] = &[
    (
        "simple/demo/index.html",
        b"<!DOCTYPE html><html><body><a href=\"x\">x</a></body></html>\n",
    ),
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
    (
        "files/9f/86/d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08/demo-1.0.tar.gz",
        b"\x1f\x8b not really a tarball",
    ),
    ("simple/other-project/index.html", b"<!DOCTYPE html><html></html>"),
];

impl Repo {
    /// Version 1 of everything: `2^bit_length` bins holding `targets`.
    pub fn new(bit_length: u8, targets: &[(&str, &[u8])]) -> Self {
        let now = now();
        let mut repo = Self {
            keys: Keys::generate(),
            layout: BinLayout::new(bit_length).unwrap(),
            expires_offline: build::expires_after(now, SignedDuration::from_hours(24 * 365)).unwrap(),
            expires_online: build::expires_after(now, SignedDuration::from_hours(24)).unwrap(),
            meta: BTreeMap::new(),
            target_data: targets
                .iter()
                .map(|(p, d)| (TargetPath::new(p).unwrap(), d.to_vec()))
                .collect(),
            bin_versions: BTreeMap::new(),
            targets_version: 1,
            bins_version: 1,
            snapshot_version: 0,
            timestamp_version: 0,
        };
        let root_signers: Vec<&Ed25519Signer> = repo.keys.root.iter().collect();
        let root = build::new_root(&repo.keys.root_keys(&root_signers, 2), 1, repo.expires_offline).unwrap();
        // Signed by all three root keys; the threshold is two.
        let root_dyn: Vec<&dyn Signer> = repo.keys.root.iter().map(|s| s as &dyn Signer).collect();
        repo.put(
            "1.root.json",
            sign_metadata(root, &root_dyn).unwrap().to_bytes().unwrap(),
        );

        let targets = build::new_targets_delegating_to_bins(
            &RoleKeySet::single(repo.keys.bins.key().clone()),
            1,
            repo.expires_offline,
        )
        .unwrap();
        repo.put(
            "1.targets.json",
            sign_metadata(targets, &[&repo.keys.targets])
                .unwrap()
                .to_bytes()
                .unwrap(),
        );
        let bins = build::new_bins_delegator(
            &repo.layout,
            &RoleKeySet::single(repo.keys.online.key().clone()),
            1,
            repo.expires_offline,
        )
        .unwrap();
        repo.put(
            "1.bins.json",
            sign_metadata(bins, &[&repo.keys.bins])
                .unwrap()
                .to_bytes()
                .unwrap(),
        );
        let files = repo
            .target_data
            .iter()
            .map(|(p, d)| (p.clone(), TargetFile::from_data(d)));
        let split = build::split_into_bins(&repo.layout, files);
        for (n, targets) in split.into_iter().enumerate() {
            repo.put_bin(n as u32, targets, 1);
        }
        repo.publish_snapshot_and_timestamp();
        repo
    }

    pub fn put(&mut self, name: &str, bytes: Vec<u8>) {
        self.meta.insert(name.to_owned(), bytes);
    }

    pub fn root_bytes(&self) -> &[u8] {
        &self.meta["1.root.json"]
    }

    /// Signs bin `n` (with the online key, unchecked placement) and records its version.
    pub fn put_bin(&mut self, n: u32, targets: BTreeMap<TargetPath, TargetFile>, version: u64) {
        let name = self.layout.role_name(n);
        let mut bin = build::new_bin(&self.layout, n, BTreeMap::new(), version, self.expires_online).unwrap();
        // Set after building: attack fixtures place targets in the wrong bin on purpose.
        bin.targets = targets;
        let bytes = sign_metadata(bin, &[&self.keys.online])
            .unwrap()
            .to_bytes()
            .unwrap();
        self.put(&format!("{version}.{name}.json"), bytes);
        self.bin_versions.insert(name, version);
    }

    /// A new snapshot (listing the current versions) and a new timestamp pointing at it.
    pub fn publish_snapshot_and_timestamp(&mut self) {
        self.snapshot_version += 1;
        self.timestamp_version += 1;
        let meta = build::snapshot_meta(
            self.targets_version,
            self.bins_version,
            self.bin_versions.iter().map(|(r, v)| (r.clone(), *v)),
        );
        let snapshot = build::new_snapshot(meta, self.snapshot_version, self.expires_online).unwrap();
        let snapshot_bytes = sign_metadata(snapshot, &[&self.keys.online])
            .unwrap()
            .to_bytes()
            .unwrap();
        let timestamp = build::new_timestamp(
            &snapshot_bytes,
            self.snapshot_version,
            self.timestamp_version,
            self.expires_online,
        )
        .unwrap();
        let name = format!("{}.snapshot.json", self.snapshot_version);
        self.put(&name, snapshot_bytes);
        self.put(
            "timestamp.json",
            sign_metadata(timestamp, &[&self.keys.online])
                .unwrap()
                .to_bytes()
                .unwrap(),
        );
    }

    /// Writes `dir/tuf/<metadata>` and `dir/targets/<dir>/<sha256>.<basename>`.
    pub fn write_to(&self, dir: &Path) {
        let tuf = dir.join("tuf");
        std::fs::create_dir_all(&tuf).unwrap();
        for (name, bytes) in &self.meta {
            std::fs::write(tuf.join(name), bytes).unwrap();
        }
        for (path, data) in &self.target_data {
            let file = dir
                .join("targets")
                .join(path.hash_prefixed(&Sha256Digest::of(data)));
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, data).unwrap();
        }
    }

    pub fn target_file_on_disk(&self, dir: &Path, path: &str) -> std::path::PathBuf {
        let path = TargetPath::new(path).unwrap();
        let data = &self.target_data[&path];
        dir.join("targets")
            .join(path.hash_prefixed(&Sha256Digest::of(data)))
    }
}

impl Repo {
    /// Root v(n+1) with three fresh root keys (threshold 2), signed by `old_signers` of the
    /// current root keys and by `new_signers` of the new ones. Returns the new root's bytes.
    pub fn rotate_root(&mut self, old_signers: &[usize], new_signers: &[usize]) -> Vec<u8> {
        let version = self
            .meta
            .keys()
            .filter_map(|n| n.strip_suffix(".root.json")?.parse::<u64>().ok())
            .max()
            .unwrap()
            + 1;
        let new_root_keys: Vec<Ed25519Signer> = (0..3).map(|_| Ed25519Signer::generate()).collect();
        let refs: Vec<&Ed25519Signer> = new_root_keys.iter().collect();
        let root = build::new_root(&self.keys.root_keys(&refs, 2), version, self.expires_offline).unwrap();
        let mut signers: Vec<&dyn Signer> = Vec::new();
        for &i in old_signers {
            signers.push(&self.keys.root[i]);
        }
        for &i in new_signers {
            signers.push(&new_root_keys[i]);
        }
        let bytes = sign_metadata(root, &signers).unwrap().to_bytes().unwrap();
        self.put(&format!("{version}.root.json"), bytes.clone());
        self.keys.root = new_root_keys;
        bytes
    }
}
