//! The attacks TUF exists to stop, played against python-tuf's `ngclient` with metadata tufa
//! signed.
//!
//! Each test starts a signed mirror and syncs it twice with a new release in between, so two
//! generations of snapshot, timestamp and bins are on disk. It then builds a static fixture tree
//! `DIR/fixture/<attack>/` — `tuf/` with the published metadata, and every target (page, file,
//! METADATA) at the hash-prefixed path a consistent-snapshot client requests — tampers with it
//! the way an attacker who controls the mirror's storage or network (and, in some tests, the
//! online key) could, serves it on loopback, and asserts that the client refuses, naming the
//! python-tuf exception. Every fixture is also shown to verify when it is *not* tampered with,
//! or when the forged piece carries the signature it lacks, so a refusal is the attack's doing.
//! Last, `tufa verify` is shown to reach the same verdicts on the mirror's own published tree.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp as Time};
use serde::Serialize;
use tufa_fake_upstream::ReleaseSpec;
use tufa_pypi::Sha256Digest;
use tufa_tuf::build::{self, RoleKeySet, RootKeys};
use tufa_tuf::{BinLayout, Ed25519Signer, Signer, Snapshot, TargetFile, TargetPath, Targets, Timestamp};

use crate::harness::Mirror;
use crate::http::StaticServer;
use crate::tuf::{HTML_PAGE, current_targets, parse};
use crate::tuf_client::{ClientRun, TufClient, copy_tree};

/// `bins_bit_length = 4` in [`Mirror::start_signed`].
pub(crate) const BIN_BITS: u8 = 4;
pub(crate) const OLD_WHEEL: &str = "demo_lib-1.1-py3-none-any.whl";
pub(crate) const NEW_WHEEL: &str = "demo_lib-1.2-py3-none-any.whl";

/// The metadata file bytes of `signed`, signed by `signers`.
pub(crate) fn sign<T: Serialize>(signed: T, signers: &[&dyn Signer]) -> Vec<u8> {
    tufa_tuf::sign_metadata(signed, signers)
        .unwrap()
        .to_bytes()
        .unwrap()
}

pub(crate) fn from_now(hours: i64) -> Time {
    build::expires_after(Time::now(), SignedDuration::from_hours(hours)).unwrap()
}

fn key(m: &Mirror, name: &str) -> Ed25519Signer {
    Ed25519Signer::read_insecure_plaintext(&m.key_path(name)).unwrap()
}

/// A signed mirror synced twice (demo-lib 1.2 released in between).
pub(crate) struct Scenario {
    pub(crate) m: Mirror,
    /// `timestamp.json` as the first sync published it.
    pub(crate) old_timestamp: Vec<u8>,
    pub(crate) online: Ed25519Signer,
}

impl Scenario {
    pub(crate) fn new() -> Self {
        let m = Mirror::start_signed();
        let old_timestamp = std::fs::read(m.tuf_dir().join("timestamp.json")).unwrap();
        m.upstream.add_release("demo-lib", ReleaseSpec::new("1.2"));
        m.sync();
        let online = key(&m, "online");
        let s = Self {
            m,
            old_timestamp,
            online,
        };
        let (old, new) = (s.old_ts().version, s.published_ts().version);
        assert!(
            new > old,
            "the second sync did not publish a new timestamp ({old} → {new})"
        );
        s
    }

    pub(crate) fn old_ts(&self) -> Timestamp {
        parse("old timestamp.json", &self.old_timestamp)
    }

    pub(crate) fn published_ts(&self) -> Timestamp {
        parse(
            "timestamp.json",
            &std::fs::read(self.m.tuf_dir().join("timestamp.json")).unwrap(),
        )
    }

    pub(crate) fn fixture(&self, name: &str) -> Fixture {
        Fixture::build(&self.m, name)
    }
}

/// A static copy of the published tree, served on loopback.
pub(crate) struct Fixture {
    name: String,
    pub(crate) dir: PathBuf,
    source_tuf: PathBuf,
    clients: PathBuf,
    pub(crate) anchor: PathBuf,
    pub(crate) server: StaticServer,
}

impl Fixture {
    pub(crate) fn build(m: &Mirror, name: &str) -> Self {
        let dir = m.dir.path().join("fixture").join(name);
        let source_tuf = m.tuf_dir();
        let fx = Self {
            name: name.to_owned(),
            clients: m.dir.path().join("clients").join(name),
            anchor: source_tuf.join("1.root.json"),
            server: StaticServer::start(&dir),
            source_tuf,
            dir,
        };
        fx.reset();
        // Every target any published bin (of either generation) lists, at `dir/<sha256>.<name>`.
        for entry in std::fs::read_dir(&fx.source_tuf).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if !name.contains(".bin-") {
                continue;
            }
            let bin: Targets = parse(&name, &std::fs::read(fx.source_tuf.join(&name)).unwrap());
            for (path, file) in &bin.targets {
                let sha = file.sha256().unwrap();
                let to = fx.dir.join(path.hash_prefixed(&sha));
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(m.blob_path(&sha.to_hex()), &to).unwrap();
            }
        }
        fx
    }

    /// Puts `tuf/` back as published.
    pub(crate) fn reset(&self) {
        let tuf = self.dir.join("tuf");
        if tuf.exists() {
            std::fs::remove_dir_all(&tuf).unwrap();
        }
        std::fs::create_dir_all(&tuf).unwrap();
        for entry in std::fs::read_dir(&self.source_tuf).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), tuf.join(entry.file_name())).unwrap();
        }
    }

    pub(crate) fn client(&self, name: &str) -> TufClient {
        TufClient::new(&self.clients.join(name), &self.anchor)
    }

    pub(crate) fn run(&self, client: &TufClient, targets: &[&str]) -> ClientRun {
        let base = self.server.url();
        let run = client.run(&format!("{base}tuf/"), &base, targets);
        eprintln!(
            "[{}] client {} → refresh {:?}, targets {:?}",
            self.name,
            client.metadata_dir.display(),
            run.refresh_error,
            run.targets
                .iter()
                .map(|t| (t.path.as_str(), t.error.as_deref()))
                .collect::<Vec<_>>()
        );
        run
    }

    /// A client that has refreshed on the honest tree (and so trusts its timestamp, snapshot,
    /// targets, bins and the bin of `HTML_PAGE`).
    pub(crate) fn trusting_client(&self, name: &str) -> TufClient {
        let client = self.client(name);
        self.run(&client, &[HTML_PAGE]).assert_ok();
        client
    }

    pub(crate) fn tuf(&self, file: &str) -> PathBuf {
        self.dir.join("tuf").join(file)
    }

    pub(crate) fn read_tuf(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.tuf(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    pub(crate) fn write_tuf(&self, file: &str, bytes: &[u8]) {
        std::fs::write(self.tuf(file), bytes).unwrap();
    }

    pub(crate) fn timestamp(&self) -> Timestamp {
        parse("timestamp.json", &self.read_tuf("timestamp.json"))
    }

    /// The current snapshot's file name, bytes and content.
    pub(crate) fn snapshot(&self) -> (String, Vec<u8>, Snapshot) {
        let v = self.timestamp().snapshot_meta().unwrap().version;
        let name = format!("{v}.snapshot.json");
        let bytes = self.read_tuf(&name);
        let snapshot = parse(&name, &bytes);
        (name, bytes, snapshot)
    }

    /// The current bin holding `path`: its role name and version.
    pub(crate) fn bin_of(&self, path: &str) -> (String, u64) {
        let role = BinLayout::new(BIN_BITS)
            .unwrap()
            .role_for(&TargetPath::new(path).unwrap());
        let (_, _, snapshot) = self.snapshot();
        let version = snapshot.meta[&role.snapshot_meta_key()].version;
        (role.to_string(), version)
    }

    /// The signed description of target `path` in the current metadata.
    pub(crate) fn target_info(&self, path: &str) -> TargetFile {
        let (role, version) = self.bin_of(path);
        let name = format!("{version}.{role}.json");
        let bin: Targets = parse(&name, &self.read_tuf(&name));
        bin.targets[&TargetPath::new(path).unwrap()].clone()
    }

    /// The current target whose path ends with `/filename`.
    pub(crate) fn find_target(&self, filename: &str) -> String {
        current_targets(&self.dir.join("tuf"))
            .into_keys()
            .find(|p| p.rsplit('/').next() == Some(filename))
            .unwrap_or_else(|| panic!("no target named {filename}"))
    }

    /// Where the fixture keeps the bytes a client downloads for target `path` now.
    pub(crate) fn target_file(&self, path: &str) -> PathBuf {
        let sha = self.target_info(path).sha256().unwrap();
        self.dir.join(TargetPath::new(path).unwrap().hash_prefixed(&sha))
    }

    /// Flips one byte in the middle of target `path` as served (same length). Returns the
    /// honest bytes and 32 bytes around the flipped one, to look for them in caches.
    pub(crate) fn tamper_target(&self, path: &str) -> (Vec<u8>, Vec<u8>) {
        let file = self.target_file(path);
        let honest = std::fs::read(&file).unwrap();
        let mut evil = honest.clone();
        let mid = evil.len() / 2;
        evil[mid] ^= 0xff;
        std::fs::write(&file, &evil).unwrap();
        (honest, evil[mid - 16..mid + 16].to_vec())
    }

    /// Stores `data` where a client fetches a target with these bytes.
    pub(crate) fn put_target(&self, path: &str, data: &[u8]) {
        let to = self.dir.join(
            TargetPath::new(path)
                .unwrap()
                .hash_prefixed(&Sha256Digest::of(data)),
        );
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, data).unwrap();
    }

    /// Publishes, over `snapshot_meta`, a snapshot one version past the current one and a
    /// timestamp one version past the current one, both signed by `online`.
    pub(crate) fn publish_snapshot(
        &self,
        online: &dyn Signer,
        snapshot_meta: BTreeMap<String, tufa_tuf::MetaFile>,
        snapshot_expires: Time,
    ) {
        let (_, _, current) = self.snapshot();
        let version = current.version + 1;
        let snapshot = build::new_snapshot(snapshot_meta, version, snapshot_expires).unwrap();
        let bytes = sign(snapshot, &[online]);
        self.write_tuf(&format!("{version}.snapshot.json"), &bytes);
        let ts_version = self.timestamp().version + 1;
        let ts = build::new_timestamp(&bytes, version, ts_version, from_now(24)).unwrap();
        self.write_tuf("timestamp.json", &sign(ts, &[online]));
    }
}

#[test]
fn untampered_fixture_verifies() {
    let s = Scenario::new();
    let fx = s.fixture("untampered");
    let wheel = fx.find_target(NEW_WHEEL);
    let metadata = format!("{wheel}.metadata");
    let run = fx.run(&fx.client("fresh"), &[HTML_PAGE, &wheel, &metadata]);
    run.assert_ok();
    assert_eq!(run.timestamp_version, Some(s.published_ts().version));
    assert_eq!(run.snapshot_version, Some(fx.snapshot().2.version));
    assert_eq!(
        run.target(&wheel).bytes(),
        s.m.upstream.file_bytes(NEW_WHEEL).unwrap()
    );
    // The client asked for hash-prefixed targets and versioned metadata, as served.
    let requests = fx.server.requests();
    let sha = fx.target_info(HTML_PAGE).sha256().unwrap();
    assert!(
        requests.contains(&format!("/simple/demo-lib/{sha}.index.html")),
        "{requests:?}"
    );
    assert!(
        requests.contains(&"/tuf/timestamp.json".to_owned()),
        "{requests:?}"
    );
    assert!(requests.contains(&"/tuf/2.root.json".to_owned()), "{requests:?}");
}

#[test]
fn rollback_of_timestamp_is_refused() {
    let s = Scenario::new();
    let fx = s.fixture("rollback");
    let client = fx.trusting_client("client");
    // The attacker replays the previous (validly signed, unexpired) timestamp.
    fx.write_tuf("timestamp.json", &s.old_timestamp);
    fx.run(&client, &[HTML_PAGE])
        .assert_refresh_refused("BadVersionNumberError");
    // The client still trusts the newer timestamp afterwards.
    fx.reset();
    let run = fx.run(&client, &[HTML_PAGE]);
    run.assert_ok();
    assert_eq!(run.timestamp_version, Some(s.published_ts().version));
}

#[test]
fn rollback_of_snapshot_is_refused() {
    let s = Scenario::new();
    let fx = s.fixture("snapshot-rollback");
    let client = fx.trusting_client("client");
    let old_snapshot_version = s.old_ts().snapshot_meta().unwrap().version;
    let old_name = format!("{old_snapshot_version}.snapshot.json");
    let old_snapshot_bytes = fx.read_tuf(&old_name);

    // A newer timestamp (signed with the online key) pointing at the previous snapshot.
    let ts = build::new_timestamp(
        &old_snapshot_bytes,
        old_snapshot_version,
        fx.timestamp().version + 1,
        from_now(24),
    )
    .unwrap();
    fx.write_tuf("timestamp.json", &sign(ts, &[&s.online]));
    let run = fx.run(&client.fork(&fx.clients.join("a")), &[HTML_PAGE]);
    run.assert_refresh_refused("BadVersionNumberError");
    assert!(
        run.refresh_error.as_ref().unwrap().contains("snapshot version"),
        "{}",
        run.describe()
    );

    // A new snapshot version that lists the previous bin versions.
    fx.reset();
    let old_snapshot: Snapshot = parse(&old_name, &old_snapshot_bytes);
    fx.publish_snapshot(&s.online, old_snapshot.meta, from_now(24));
    let run = fx.run(&client.fork(&fx.clients.join("b")), &[HTML_PAGE]);
    run.assert_refresh_refused("BadVersionNumberError");
    assert!(
        run.refresh_error.as_ref().unwrap().contains("bin-"),
        "{}",
        run.describe()
    );
}

#[test]
fn freeze_with_expired_metadata_is_refused() {
    let s = Scenario::new();
    let fx = s.fixture("freeze");
    let trusting = fx.trusting_client("trusting");

    // A timestamp with the real online key and a newer version, but expired.
    let (_, snapshot_bytes, snapshot) = fx.snapshot();
    let ts = build::new_timestamp(
        &snapshot_bytes,
        snapshot.version,
        fx.timestamp().version + 1,
        from_now(-1),
    )
    .unwrap();
    fx.write_tuf("timestamp.json", &sign(ts, &[&s.online]));
    let run = fx.run(&fx.client("fresh"), &[HTML_PAGE]);
    run.assert_refresh_refused("ExpiredMetadataError");
    assert!(
        run.refresh_error.as_ref().unwrap().contains("timestamp"),
        "{}",
        run.describe()
    );
    fx.run(&trusting.fork(&fx.clients.join("t1")), &[HTML_PAGE])
        .assert_refresh_refused("ExpiredMetadataError");

    // A fresh timestamp over an expired snapshot.
    fx.reset();
    fx.publish_snapshot(&s.online, snapshot.meta.clone(), from_now(-1));
    let run = fx.run(&fx.client("fresh2"), &[HTML_PAGE]);
    run.assert_refresh_refused("ExpiredMetadataError");
    assert!(
        run.refresh_error.as_ref().unwrap().contains("snapshot"),
        "{}",
        run.describe()
    );
    fx.run(&trusting.fork(&fx.clients.join("t2")), &[HTML_PAGE])
        .assert_refresh_refused("ExpiredMetadataError");

    // Control: the same forged snapshot, unexpired, is accepted.
    fx.reset();
    fx.publish_snapshot(&s.online, snapshot.meta, from_now(24));
    fx.run(&trusting.fork(&fx.clients.join("t3")), &[HTML_PAGE])
        .assert_ok();
}

#[test]
fn mix_and_match_is_refused() {
    let s = Scenario::new();
    let fx = s.fixture("mix-and-match");

    // The bin listing demo-lib's page was re-signed by the second sync; serve its previous
    // content (validly signed, listing the previous page, whose bytes are served too) under
    // the name the current snapshot points to.
    let (role, version) = fx.bin_of(HTML_PAGE);
    assert!(version >= 2, "{role} was not re-signed by the second sync");
    let old = fx.read_tuf(&format!("{}.{role}.json", version - 1));
    fx.write_tuf(&format!("{version}.{role}.json"), &old);
    fx.run(&fx.client("fresh"), &[HTML_PAGE])
        .assert_target_refused(HTML_PAGE, "BadVersionNumberError");

    // The previous snapshot under the current snapshot's name: the timestamp pins its hash.
    fx.reset();
    let (name, _, _) = fx.snapshot();
    let old_version = s.old_ts().snapshot_meta().unwrap().version;
    let old = fx.read_tuf(&format!("{old_version}.snapshot.json"));
    fx.write_tuf(&name, &old);
    fx.run(&fx.client("fresh2"), &[HTML_PAGE])
        .assert_refresh_refused("LengthOrHashMismatchError");
}

#[test]
fn arbitrary_file_is_refused() {
    let s = Scenario::new();
    let fx = s.fixture("arbitrary-file");
    let wheel = fx.find_target(NEW_WHEEL);
    let metadata = format!("{wheel}.metadata");
    let old_wheel = fx.find_target(OLD_WHEEL);

    // Same length, bytes flipped: the wheel and its METADATA.
    for target in [&wheel, &metadata] {
        let file = fx.target_file(target);
        let mut data = std::fs::read(&file).unwrap();
        let mid = data.len() / 2;
        data[mid] ^= 0xff;
        std::fs::write(&file, data).unwrap();
    }
    // A page linking another file: same length, a different sha256 in a link.
    let page_file = fx.target_file(HTML_PAGE);
    let page = std::fs::read_to_string(&page_file).unwrap();
    let honest_sha = old_wheel.split('/').skip(1).take(3).collect::<String>();
    assert!(page.contains(&honest_sha), "{page}");
    let evil = page.replace(&honest_sha, &"e".repeat(64));
    assert_eq!(evil.len(), page.len());
    std::fs::write(&page_file, evil).unwrap();
    // The JSON page replaced by the previous (shorter, once validly signed) version.
    let json = "simple/demo-lib/index.json";
    let json_file = fx.target_file(json);
    let old_json = std::fs::read_dir(json_file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_str().unwrap().ends_with(".index.json") && *p != json_file)
        .expect("the previous JSON page");
    std::fs::copy(old_json, &json_file).unwrap();

    let run = fx.run(&fx.client("fresh"), &[&wheel, &metadata, HTML_PAGE, json]);
    for target in [wheel.as_str(), &metadata, HTML_PAGE, json] {
        run.assert_target_refused(target, "LengthOrHashMismatchError");
    }
}

#[test]
fn endless_data_is_refused() {
    let s = Scenario::new();
    let fx = s.fixture("endless-data");
    let wheel = fx.find_target(NEW_WHEEL);

    // A target longer than its signed length.
    let file = fx.target_file(&wheel);
    let mut data = std::fs::read(&file).unwrap();
    data.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&file, data).unwrap();
    // A target that never ends.
    let page = fx.target_file(HTML_PAGE);
    let page_url = format!("/{}", page.strip_prefix(&fx.dir).unwrap().to_str().unwrap());
    fx.server.serve_endless(&page_url);
    let run = fx.run(&fx.client("fresh"), &[&wheel, HTML_PAGE]);
    run.assert_target_refused(&wheel, "DownloadLengthMismatchError");
    run.assert_target_refused(HTML_PAGE, "DownloadLengthMismatchError");

    // Metadata that never ends: timestamp.json has no signed length, only the client's cap.
    fx.server.serve_endless("/tuf/timestamp.json");
    fx.run(&fx.client("fresh2"), &[HTML_PAGE])
        .assert_refresh_refused("DownloadLengthMismatchError");
}

/// 2.root.json with the keys of root v1 (from the dev key files) but a new timestamp key,
/// signed by the dev root key.
fn root_with_timestamp_key(m: &Mirror, timestamp: &Ed25519Signer) -> Vec<u8> {
    let root_key = key(m, "root");
    let keys = RootKeys {
        root: RoleKeySet::single(root_key.key().clone()),
        targets: RoleKeySet::single(key(m, "targets").key().clone()),
        snapshot: RoleKeySet::single(key(m, "online").key().clone()),
        timestamp: RoleKeySet::single(timestamp.key().clone()),
    };
    let root = build::new_root(&keys, 2, from_now(24 * 365)).unwrap();
    sign(root, &[&root_key])
}

#[test]
fn fast_forward_recovery_after_timestamp_key_rotation() {
    let s = Scenario::new();
    let fx = s.fixture("fast-forward-recovery");
    let client = fx.trusting_client("client");
    let trusted_ts = fx.timestamp().version;
    assert!(trusted_ts > 1);
    let (_, snapshot_bytes, snapshot) = fx.snapshot();
    let new_key = Ed25519Signer::generate();
    let timestamp_v1 = |signer: &dyn Signer| {
        let ts = build::new_timestamp(&snapshot_bytes, snapshot.version, 1, from_now(24)).unwrap();
        sign(ts, &[signer])
    };

    // Without a root rotation, the new key is not the timestamp key…
    fx.write_tuf("timestamp.json", &timestamp_v1(&new_key));
    fx.run(&client.fork(&fx.clients.join("no-rotation")), &[HTML_PAGE])
        .assert_refresh_refused("UnsignedMetadataError");
    // …and a version-1 timestamp from the real key is a rollback.
    fx.write_tuf("timestamp.json", &timestamp_v1(&s.online));
    fx.run(&client.fork(&fx.clients.join("old-key")), &[HTML_PAGE])
        .assert_refresh_refused("BadVersionNumberError");

    // The root rotates the timestamp key: the client must drop its trusted timestamp and
    // accept version 1 from the new key (TUF 5.3.11, fast-forward attack recovery).
    fx.write_tuf("2.root.json", &root_with_timestamp_key(&s.m, &new_key));
    fx.write_tuf("timestamp.json", &timestamp_v1(&new_key));
    let wheel = fx.find_target(NEW_WHEEL);
    let run = fx.run(&client, &[HTML_PAGE, &wheel]);
    run.assert_ok();
    assert_eq!(run.root_version, Some(2));
    assert_eq!(run.timestamp_version, Some(1));
    assert_eq!(
        run.target(&wheel).bytes(),
        s.m.upstream.file_bytes(NEW_WHEEL).unwrap()
    );
    // After recovery the old key's timestamps no longer count, even with a higher version.
    let (_, snapshot_bytes, snapshot) = fx.snapshot();
    let ts = build::new_timestamp(&snapshot_bytes, snapshot.version, trusted_ts + 1, from_now(24)).unwrap();
    fx.write_tuf("timestamp.json", &sign(ts, &[&s.online]));
    fx.run(&client, &[HTML_PAGE])
        .assert_refresh_refused("UnsignedMetadataError");
}

/// What an attacker holding only the online key would publish to serve `evil` as demo-lib's
/// page: targets v2 listing it (still delegating to bins with the real bins key), a snapshot
/// listing targets v2, and a timestamp; `targets_signer` signs targets v2.
fn forge_targets(s: &Scenario, fx: &Fixture, targets_signer: &dyn Signer, evil: &[u8]) {
    fx.put_target(HTML_PAGE, evil);
    let bins = RoleKeySet::single(key(&s.m, "bins").key().clone());
    let mut targets = build::new_targets_delegating_to_bins(&bins, 2, from_now(24)).unwrap();
    targets
        .targets
        .insert(TargetPath::new(HTML_PAGE).unwrap(), TargetFile::from_data(evil));
    fx.write_tuf("2.targets.json", &sign(targets, &[targets_signer]));
    let (_, _, snapshot) = fx.snapshot();
    let mut meta = snapshot.meta;
    meta.insert("targets.json".into(), tufa_tuf::MetaFile::new(2));
    fx.publish_snapshot(&s.online, meta, from_now(24));
}

const EVIL_PAGE: &[u8] =
    b"<!DOCTYPE html><html><body><a href=\"https://evil.example/demo_lib-6.6-py3-none-any.whl\">demo_lib-6.6-py3-none-any.whl</a></body></html>\n";

#[test]
fn online_key_cannot_sign_targets() {
    let s = Scenario::new();
    let fx = s.fixture("online-key-signs-targets");
    let trusting = fx.trusting_client("trusting");
    forge_targets(&s, &fx, &s.online, EVIL_PAGE);
    let run = fx.run(&fx.client("fresh"), &[HTML_PAGE]);
    run.assert_refresh_refused("UnsignedMetadataError");
    assert!(
        run.refresh_error.as_ref().unwrap().contains("targets"),
        "{}",
        run.describe()
    );
    fx.run(&trusting, &[HTML_PAGE])
        .assert_refresh_refused("UnsignedMetadataError");

    // Control: the same forged chain with targets signed by the real targets key is accepted,
    // so nothing but the signature stopped the attack.
    fx.reset();
    forge_targets(&s, &fx, &key(&s.m, "targets"), EVIL_PAGE);
    let run = fx.run(&fx.client("control"), &[HTML_PAGE]);
    run.assert_ok();
    assert_eq!(run.target(HTML_PAGE).bytes(), EVIL_PAGE);
}

/// Root v2 handing every role to the online key, signed by `signers`, over a forged targets
/// chain serving `EVIL_PAGE`.
fn forge_root(s: &Scenario, fx: &Fixture, signers: &[&dyn Signer]) {
    let online = RoleKeySet::single(s.online.key().clone());
    let keys = RootKeys {
        root: online.clone(),
        targets: online.clone(),
        snapshot: online.clone(),
        timestamp: online,
    };
    let root = build::new_root(&keys, 2, from_now(24 * 365)).unwrap();
    fx.write_tuf("2.root.json", &sign(root, signers));
    forge_targets(s, fx, &s.online, EVIL_PAGE);
}

#[test]
fn online_key_cannot_sign_root() {
    let s = Scenario::new();
    let fx = s.fixture("online-key-signs-root");
    let trusting = fx.trusting_client("trusting");
    forge_root(&s, &fx, &[&s.online]);
    let run = fx.run(&fx.client("fresh"), &[HTML_PAGE]);
    run.assert_refresh_refused("UnsignedMetadataError");
    assert!(
        run.refresh_error.as_ref().unwrap().contains("root"),
        "{}",
        run.describe()
    );
    fx.run(&trusting, &[HTML_PAGE])
        .assert_refresh_refused("UnsignedMetadataError");
    // The client did not take root v2 on.
    assert!(!trusting.metadata_dir.join("root_history/2.root.json").exists());

    // Control: signed by the root key as well, the same root v2 is accepted, and with it the
    // forged targets — the root's signature is all that stood in the way.
    fx.reset();
    forge_root(&s, &fx, &[&key(&s.m, "root"), &s.online]);
    let run = fx.run(&fx.client("control"), &[HTML_PAGE]);
    run.assert_ok();
    assert_eq!(run.root_version, Some(2));
    assert_eq!(run.target(HTML_PAGE).bytes(), EVIL_PAGE);
}

/// `tufa verify` walks the published metadata like a client: put each forgery into the
/// mirror's own published tree and it must fail where ngclient refuses, and pass where ngclient
/// accepts.
#[test]
fn tufa_verify_agrees_with_ngclient() {
    let s = Scenario::new();
    let fx = s.fixture("tufa-verify");
    let published = s.m.tuf_dir();
    let backup = s.m.dir.path().join("published-tuf-backup");
    copy_tree(&published, &backup);
    let verify = |what: &str, ok: bool| {
        std::fs::remove_dir_all(&published).unwrap();
        copy_tree(&fx.dir.join("tuf"), &published);
        let out = s.m.tufa(&["verify"]);
        std::fs::remove_dir_all(&published).unwrap();
        copy_tree(&backup, &published);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("[tufa verify: {what}] {}\n{text}", out.status);
        if ok {
            assert!(out.status.success(), "tufa verify refused {what}:\n{text}");
        } else {
            assert_eq!(out.status.code(), Some(1), "tufa verify accepted {what}:\n{text}");
        }
    };

    verify("the untampered tree", true);

    forge_root(&s, &fx, &[&s.online]);
    verify("a root signed by the online key", false);

    fx.reset();
    forge_targets(&s, &fx, &s.online, EVIL_PAGE);
    verify("targets signed by the online key", false);

    fx.reset();
    let (_, snapshot_bytes, snapshot) = fx.snapshot();
    let ts = build::new_timestamp(
        &snapshot_bytes,
        snapshot.version,
        fx.timestamp().version + 1,
        from_now(-1),
    )
    .unwrap();
    fx.write_tuf("timestamp.json", &sign(ts, &[&s.online]));
    verify("an expired timestamp", false);

    fx.reset();
    let (role, version) = fx.bin_of(HTML_PAGE);
    let old = fx.read_tuf(&format!("{}.{role}.json", version - 1));
    fx.write_tuf(&format!("{version}.{role}.json"), &old);
    verify("an old bin under the current name", false);

    fx.reset();
    let new_key = Ed25519Signer::generate();
    fx.write_tuf("2.root.json", &root_with_timestamp_key(&s.m, &new_key));
    let ts = build::new_timestamp(&snapshot_bytes, snapshot.version, 1, from_now(24)).unwrap();
    fx.write_tuf("timestamp.json", &sign(ts, &[&new_key]));
    verify("a rotated timestamp key (root v2, timestamp v1)", true);

    // A stored page blob that no longer matches its signed hash.
    fx.reset();
    let page = fx.target_info(HTML_PAGE).sha256().unwrap().to_hex();
    let blob = s.m.blob_path(&page);
    let honest = std::fs::read(&blob).unwrap();
    let mut flipped = honest.clone();
    flipped[0] ^= 0x20;
    set_writable(&blob);
    std::fs::write(&blob, &flipped).unwrap();
    verify("a corrupt page blob", false);
    std::fs::write(&blob, &honest).unwrap();
    verify("the restored tree", true);
}

fn set_writable(path: &std::path::Path) {
    let mut perms = std::fs::metadata(path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(path, perms).unwrap();
}
