//! The mirror host's side of the key ceremony, as docs/KEY-CEREMONY.md runs it: a bare host
//! (`tufa init`, `online-key generate`), syncing before the ceremony, the first import, the
//! online key rotation (`online-key generate --next`, promotion at import, a kill between the
//! renames), exports with nothing new, and moving a `--dev-keys` trial mirror to ceremony keys.
//! Ceremony exports are built here with tufa-tuf, as `tufa-ceremony publish` lays them out.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use tufa_fake_upstream::demo_projects;
use tufa_tuf::build::{self, RoleKeySet, RootKeys};
use tufa_tuf::{BinLayout, Ed25519Signer, Key, Signer, sign_metadata};

use crate::{MirrorDir, Upstream, stderr, stdout};

/// Both streams, for assertion messages.
fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

/// Runs and asserts exit 0.
fn ok(out: Output) -> Output {
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    out
}

/// Runs and asserts exit 1.
fn fails(out: Output) -> Output {
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    out
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
}

/// `tufa init` as the runbook runs it (the default `online_key = "keys/online.json"`), with 16
/// hashed bins instead of 16,384 so signing stays fast.
fn operator_mirror(up: &Upstream) -> MirrorDir {
    let m = MirrorDir::init_with_online_key(up, &["demo-lib"]);
    small_bins(&m.config());
    m
}

fn small_bins(config: &Path) {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains("\nbins_bit_length = 14\n"), "{text}");
    std::fs::write(
        config,
        text.replace("bins_bit_length = 14", "bins_bit_length = 4"),
    )
    .unwrap();
}

/// The public key file `online-key generate/show --public-out` wrote: (key id, key).
fn public_key(path: &Path) -> (String, Key) {
    let v = read_json(path);
    let keyid = v["keyid"].as_str().unwrap().to_owned();
    let key: Key = serde_json::from_value(v["key"].clone()).unwrap();
    assert_eq!(key.key_id().to_hex(), keyid);
    (keyid, key)
}

/// `online-key generate [--next] --public-out FILE`; returns the new key's id and key.
fn generate(m: &MirrorDir, next: bool, name: &str) -> (String, Key) {
    let public = m.dir.path().join(name);
    let mut args = vec!["online-key", "generate"];
    if next {
        args.push("--next");
    }
    args.extend(["--public-out", public.to_str().unwrap()]);
    let out = ok(m.tufa(&args).output().unwrap());
    let (keyid, key) = public_key(&public);
    assert!(
        stdout(&out).contains(&format!("online key {keyid}")),
        "{}",
        describe(&out)
    );
    assert!(
        stdout(&out).contains(&format!("wrote the online public key to {}", public.display())),
        "{}",
        describe(&out)
    );
    (keyid, key)
}

/// An offline ceremony: its keys, the published root chain, the newest targets and bins, in
/// the layout `tufa-ceremony publish --out` writes.
struct Ceremony {
    root: Ed25519Signer,
    targets: Ed25519Signer,
    bins: Ed25519Signer,
    /// Every published root, v1 first.
    roots: Vec<Vec<u8>>,
    targets_file: (u64, Vec<u8>),
    bins_file: (u64, Vec<u8>),
}

fn year() -> jiff::Timestamp {
    build::expires_after(jiff::Timestamp::now(), jiff::SignedDuration::from_hours(24 * 365)).unwrap()
}

impl Ceremony {
    /// Root v1 (one root key, one targets key, `online` for snapshot and timestamp), targets
    /// v1 delegating to bins, bins v1 delegating the 16 hashed bins to `online`.
    fn new(online: &Key) -> Self {
        let mut c = Self {
            root: Ed25519Signer::generate(),
            targets: Ed25519Signer::generate(),
            bins: Ed25519Signer::generate(),
            roots: Vec::new(),
            targets_file: (0, Vec::new()),
            bins_file: (0, Vec::new()),
        };
        c.push_root(online);
        let t = build::new_targets_delegating_to_bins(&RoleKeySet::single(c.bins.key().clone()), 1, year())
            .unwrap();
        c.targets_file = (1, sign_metadata(t, &[&c.targets]).unwrap().to_bytes().unwrap());
        c.push_bins(online);
        c
    }

    fn push_root(&mut self, online: &Key) {
        let online_set = RoleKeySet::single(online.clone());
        let keys = RootKeys {
            root: RoleKeySet::single(self.root.key().clone()),
            targets: RoleKeySet::single(self.targets.key().clone()),
            snapshot: online_set.clone(),
            timestamp: online_set,
        };
        let version = self.roots.len() as u64 + 1;
        let root = build::new_root(&keys, version, year()).unwrap();
        // One root key: it signs as the old root's key and as the new one's.
        self.roots
            .push(sign_metadata(root, &[&self.root]).unwrap().to_bytes().unwrap());
    }

    fn push_bins(&mut self, online: &Key) {
        let version = self.bins_file.0 + 1;
        let b = build::new_bins_delegator(
            &BinLayout::new(4).unwrap(),
            &RoleKeySet::single(online.clone()),
            version,
            year(),
        )
        .unwrap();
        self.bins_file = (
            version,
            sign_metadata(b, &[&self.bins]).unwrap().to_bytes().unwrap(),
        );
    }

    /// `rotate-root --online-key`: a new root naming `online` for snapshot and timestamp, and
    /// a new bins delegating the hashed bins to it.
    fn rotate_online_key(&mut self, online: &Key) {
        self.push_root(online);
        self.push_bins(online);
    }

    /// Writes the export to `dir`.
    fn export(&self, dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        for (i, bytes) in self.roots.iter().enumerate() {
            std::fs::write(dir.join(format!("{}.root.json", i + 1)), bytes).unwrap();
        }
        let (tv, t) = &self.targets_file;
        std::fs::write(dir.join(format!("{tv}.targets.json")), t).unwrap();
        let (bv, b) = &self.bins_file;
        std::fs::write(dir.join(format!("{bv}.bins.json")), b).unwrap();
        dir.to_path_buf()
    }

    fn root_keyid(&self) -> String {
        self.root.keyid().to_hex()
    }
}

fn tuf_dir(m: &MirrorDir) -> PathBuf {
    m.store().join("published/tuf")
}

/// Every published TUF file, by name.
fn published(m: &MirrorDir) -> std::collections::BTreeMap<String, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(tuf_dir(m)) else {
        return Default::default();
    };
    entries
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// The key that signed the published timestamp.
fn timestamp_signer(m: &MirrorDir) -> String {
    read_json(&tuf_dir(m).join("timestamp.json"))["signatures"][0]["keyid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// timestamp, snapshot and every bin-n version the published timestamp leads to.
fn online_versions(m: &MirrorDir) -> (u64, u64, std::collections::BTreeMap<String, u64>) {
    let ts = read_json(&tuf_dir(m).join("timestamp.json"));
    let snapshot_version = ts["signed"]["meta"]["snapshot.json"]["version"].as_u64().unwrap();
    let snapshot = read_json(&tuf_dir(m).join(format!("{snapshot_version}.snapshot.json")));
    let bins = snapshot["signed"]["meta"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.starts_with("bin-"))
        .map(|(name, file)| (name.clone(), file["version"].as_u64().unwrap()))
        .collect();
    (ts["signed"]["version"].as_u64().unwrap(), snapshot_version, bins)
}

fn import(m: &MirrorDir, dir: &Path) -> Output {
    m.tufa(&["import-metadata", dir.to_str().unwrap()])
        .output()
        .unwrap()
}

#[test]
fn fresh_host_init_then_online_key_generate_works_first_try() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("mirror");
    let config = dir.join("tufa.toml");
    let out = ok(crate::tufa()
        .arg("init")
        .arg(&dir)
        .args(["--project", "demo-lib"])
        .output()
        .unwrap());
    // The next steps name the config, ready to paste.
    let text = stdout(&out);
    let cmd = format!("tufa --config {}", config.display());
    assert!(
        text.contains(&format!("{cmd} online-key generate --public-out online.pub.json")),
        "{text}"
    );
    assert!(text.contains("docs/KEY-CEREMONY.md"), "{text}");
    assert!(text.contains(&format!("{cmd} sync")), "{text}");
    assert!(text.contains(&format!("{cmd} import-metadata DIR")), "{text}");
    let toml = std::fs::read_to_string(&config).unwrap();
    assert!(toml.contains("\nonline_key = \"keys/online.json\"\n"), "{toml}");
    assert_eq!(mode(&dir.join("keys")), 0o700);
    assert!(std::fs::read_dir(dir.join("keys")).unwrap().next().is_none());

    // From another directory, with only --config: the key lands in DIR/keys.
    let public = root.path().join("transfer/online.pub.json");
    std::fs::create_dir_all(public.parent().unwrap()).unwrap();
    let out = ok(crate::tufa()
        .current_dir(root.path())
        .arg("--config")
        .arg(&config)
        .args(["online-key", "generate", "--public-out"])
        .arg(&public)
        .output()
        .unwrap());
    let (keyid, _) = public_key(&public);
    assert_eq!(
        stdout(&out),
        format!(
            "online key {keyid}\nwrote the online public key to {}\n",
            public.display()
        )
    );
    let key_file = dir.join("keys/online.json");
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(
        Ed25519Signer::read_insecure_plaintext(&key_file)
            .unwrap()
            .keyid()
            .to_hex(),
        keyid
    );

    // A key directory that went missing is created again (0700), e.g. a config edited by hand.
    let m = MirrorDir {
        dir: tempfile::tempdir().unwrap(),
    };
    std::fs::write(
        m.config(),
        "[tuf]\nonline_key = \"secrets/tuf/online.json\"\nbins_bit_length = 4\n",
    )
    .unwrap();
    generate(&m, false, "online.pub.json");
    assert_eq!(mode(&m.dir.path().join("secrets/tuf")), 0o700);
    assert_eq!(mode(&m.dir.path().join("secrets")), 0o700);
}

#[test]
fn online_key_generate_never_replaces_a_key_and_next_goes_beside_it() {
    let up = Upstream::start(demo_projects());
    let m = operator_mirror(&up);
    let keys = m.dir.path().join("keys");
    let (current, _) = generate(&m, false, "online.pub.json");
    let before = std::fs::read(keys.join("online.json")).unwrap();

    // Twice: refused, naming the file, the key and how to rotate; the key is untouched.
    let out = fails(m.tufa(&["online-key", "generate"]).output().unwrap());
    let config = m.config().display().to_string();
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "`{}` already holds online key {current}; to rotate, create the next key with `tufa --config {config} online-key generate --next --public-out",
            keys.join("online.json").display()
        )),
        "{err}"
    );
    assert!(err.contains("then import the root that names it"), "{err}");
    assert_eq!(std::fs::read(keys.join("online.json")).unwrap(), before);

    // No next key yet: `show --next` names the file and the command.
    let out = fails(m.tufa(&["online-key", "show", "--next"]).output().unwrap());
    assert!(
        stderr(&out).contains(&format!(
            "`{}` does not exist",
            keys.join("online.next.json").display()
        )) && stderr(&out).contains(&format!("tufa --config {config} online-key generate --next")),
        "{}",
        describe(&out)
    );

    let (next, _) = generate(&m, true, "online-next.pub.json");
    assert_ne!(next, current);
    assert_eq!(mode(&keys.join("online.next.json")), 0o600);
    let out = ok(m.tufa(&["online-key", "show", "--next"]).output().unwrap());
    assert!(
        stdout(&out).starts_with(&format!("online key {next}\n")),
        "{}",
        describe(&out)
    );
    let out = ok(m.tufa(&["online-key", "show"]).output().unwrap());
    assert!(
        stdout(&out).starts_with(&format!("online key {current}\n")),
        "{}",
        describe(&out)
    );

    // A second next key is refused too, pointing at `show --next`.
    let out = fails(m.tufa(&["online-key", "generate", "--next"]).output().unwrap());
    assert!(
        stderr(&out).contains(&format!("already holds the next online key {next}"))
            && stderr(&out).contains(&format!(
                "`tufa --config {config} online-key show --next` shows it"
            )),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_new_mirror_syncs_unsigned_before_its_ceremony_and_verify_says_what_is_missing() {
    let up = Upstream::start(demo_projects());
    let m = operator_mirror(&up);
    let config = m.config().display().to_string();
    let key_file = m.dir.path().join("keys/online.json");

    // The runbook's order: sync first, the online key after. Unsigned, exit 0, one warning.
    let out = ok(m.tufa(&["sync"]).output().unwrap());
    let err = stderr(&out);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("WARN") || l.starts_with("warning:"))
        .collect();
    let expected = format!(
        "warning: the online key `{}` does not exist yet: pages are published unsigned. Create it with `tufa --config {config} online-key generate --public-out online.pub.json`",
        key_file.display()
    );
    assert!(
        warnings.len() == 1 && warnings[0].starts_with(&expected),
        "{}",
        describe(&out)
    );
    assert!(
        warnings[0].contains(&format!("tufa --config {config} import-metadata DIR")),
        "{}",
        warnings[0]
    );
    assert!(published(&m).is_empty());

    // verify: the pages are fine, but a mirror with an online key and no metadata is not.
    let out = fails(m.tufa(&["verify"]).output().unwrap());
    assert!(
        stderr(&out).contains(&format!(
            "no TUF metadata published although [tuf] online_key is set: import the key ceremony's metadata with `tufa --config {config} import-metadata DIR`"
        )),
        "{}",
        describe(&out)
    );
    // refresh has nothing to sign with, and says how to get there.
    let out = fails(m.tufa(&["refresh"]).output().unwrap());
    assert!(
        stderr(&out).contains("nothing to refresh: the online key")
            && stderr(&out).contains("online-key generate"),
        "{}",
        describe(&out)
    );

    // With the key but before the import: still unsigned, the warning names the import.
    generate(&m, false, "online.pub.json");
    let out = ok(m.tufa(&["sync"]).output().unwrap());
    assert!(
        stderr(&out).contains(&format!(
            "warning: no TUF root metadata yet: pages are published unsigned until the key ceremony's metadata is imported with `tufa --config {config} import-metadata DIR`"
        )),
        "{}",
        describe(&out)
    );
    // Nothing to replace on a mirror without metadata.
    let export = Ceremony::new(&public_key(&m.dir.path().join("online.pub.json")).1)
        .export(&m.dir.path().join("transfer/initial"));
    let out = fails(
        m.tufa(&[
            "import-metadata",
            export.to_str().unwrap(),
            "--replace-dev-metadata",
        ])
        .output()
        .unwrap(),
    );
    assert!(
        stderr(&out).contains("--replace-dev-metadata: this mirror publishes no TUF metadata yet"),
        "{}",
        describe(&out)
    );
    assert!(published(&m).is_empty());

    // Once imported, a missing key file is an error, not a silent drop of the signatures.
    ok(import(&m, &export));
    ok(m.tufa(&["verify"]).output().unwrap());
    std::fs::rename(&key_file, m.dir.path().join("online.json.bak")).unwrap();
    let before = published(&m);
    for command in ["sync", "refresh"] {
        let out = fails(m.tufa(&[command]).output().unwrap());
        assert!(
            stderr(&out).contains(&format!(
                "the online key `{}` is missing, but this mirror publishes TUF metadata (root v1",
                key_file.display()
            )),
            "{command}: {}",
            describe(&out)
        );
    }
    assert_eq!(published(&m), before);
}

/// A mirror that imported its first ceremony: (mirror, ceremony, current key id, export dir).
fn imported(up: &Upstream) -> (MirrorDir, Ceremony, String, PathBuf) {
    let m = operator_mirror(up);
    let (keyid, key) = generate(&m, false, "online.pub.json");
    ok(m.tufa(&["sync"]).output().unwrap());
    let ceremony = Ceremony::new(&key);
    let export = ceremony.export(&m.dir.path().join("transfer/initial"));
    let out = ok(import(&m, &export));
    let text = stdout(&out);
    assert!(
        text.contains("imported root v1 (1 new), targets v1, bins v1"),
        "{text}"
    );
    // The first root's fingerprint and key ids, for the ceremony log.
    let sha = tufa_pypi::Sha256Digest::of(&std::fs::read(export.join("1.root.json")).unwrap()).to_hex();
    let expected = format!(
        "first root: 1.root.json sha256 {sha}; root keys {} (threshold 1); targets keys {} (threshold 1); snapshot/timestamp (online) key {keyid} (threshold 1): check these against the ceremony log",
        ceremony.root_keyid(),
        ceremony.targets.keyid().to_hex(),
    );
    assert!(text.lines().any(|l| l == expected), "{text}");
    assert_eq!(timestamp_signer(&m), keyid);
    (m, ceremony, keyid, export)
}

#[test]
fn reimporting_an_export_with_nothing_new_changes_nothing_and_says_so() {
    let up = Upstream::start(demo_projects());
    let (m, mut ceremony, keyid, initial) = imported(&up);
    let before = published(&m);
    let out = ok(import(&m, &initial));
    assert_eq!(
        stdout(&out),
        "nothing to import: the mirror already publishes root v1, targets v1, bins v1\n",
        "{}",
        describe(&out)
    );
    assert_eq!(published(&m), before, "a re-import with nothing new re-signed");

    // After a root v2 (same online key), the first export is older: still nothing to import,
    // and the message says where the export ends.
    ceremony.push_root(&public_key(&m.dir.path().join("online.pub.json")).1);
    let second = ceremony.export(&m.dir.path().join("transfer/root-2"));
    let out = ok(import(&m, &second));
    assert!(
        stdout(&out).contains("imported root v2 (1 new), targets v1, bins v1"),
        "{}",
        describe(&out)
    );
    assert!(!stdout(&out).contains("first root"), "{}", describe(&out));
    let before = published(&m);
    let out = ok(import(&m, &initial));
    assert_eq!(
        stdout(&out),
        "nothing to import: the mirror already publishes root v2, targets v1, bins v1 (this export ends at root v1)\n",
        "{}",
        describe(&out)
    );
    assert_eq!(published(&m), before);
    assert_eq!(timestamp_signer(&m), keyid);

    // Older bins than published is a refusal naming both versions.
    ceremony.push_bins(&public_key(&m.dir.path().join("online.pub.json")).1);
    ok(import(
        &m,
        &ceremony.export(&m.dir.path().join("transfer/bins-2")),
    ));
    let out = fails(import(&m, &second));
    assert!(
        stderr(&out).contains("holds bins v1, older than the bins v2 this mirror publishes"),
        "{}",
        describe(&out)
    );
}

#[test]
fn online_key_rotation_promotes_the_next_key_at_import() {
    let up = Upstream::start(demo_projects());
    let (m, mut ceremony, old, _) = imported(&up);
    let keys = m.dir.path().join("keys");
    let (next, next_key) = generate(&m, true, "online-next.pub.json");
    // Until the rotation is imported, the mirror keeps signing with the current key.
    ok(m.tufa(&["refresh"]).output().unwrap());
    assert_eq!(timestamp_signer(&m), old);

    ceremony.rotate_online_key(&next_key);
    let export = ceremony.export(&m.dir.path().join("transfer/online-key-2"));
    let out = ok(import(&m, &export));
    let retired = keys.join(format!("online.retired-{}.json", &old[..8]));
    let text = stdout(&out);
    assert!(
        text.contains("imported root v2 (1 new), targets v1, bins v2"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "online key rotated: now signing with {next} (previous key kept as `{}`; delete it once no client needs the old timestamp)",
            retired.display()
        )),
        "{text}"
    );
    // The files moved: the next key is the online key, the old one is retired, no next key.
    let keyid_of = |p: &Path| {
        Ed25519Signer::read_insecure_plaintext(p)
            .unwrap()
            .keyid()
            .to_hex()
    };
    assert_eq!(keyid_of(&keys.join("online.json")), next);
    assert_eq!(keyid_of(&retired), old);
    assert!(!keys.join("online.next.json").exists());
    assert_eq!(timestamp_signer(&m), next);
    ok(m.tufa(&["verify"]).output().unwrap());
    let out = ok(m.tufa(&["sync"]).output().unwrap());
    assert!(!stderr(&out).contains("warning"), "{}", describe(&out));
    assert_eq!(timestamp_signer(&m), next);
    // The same export again: nothing to import (the key was promoted already).
    let out = ok(import(&m, &export));
    assert!(
        stdout(&out).starts_with("nothing to import"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_kill_between_the_promotion_renames_is_finished_by_importing_again() {
    let up = Upstream::start(demo_projects());
    let (m, mut ceremony, old, _) = imported(&up);
    let keys = m.dir.path().join("keys");
    let (next, next_key) = generate(&m, true, "online-next.pub.json");
    ceremony.rotate_online_key(&next_key);
    let export = ceremony.export(&m.dir.path().join("transfer/online-key-2"));

    // The state after the first rename: the current key retired, the next not yet promoted.
    let retired = keys.join(format!("online.retired-{}.json", &old[..8]));
    std::fs::rename(keys.join("online.json"), &retired).unwrap();
    let before = published(&m);
    // The timers' sync and refresh refuse, naming the missing key and the way out.
    let out = fails(m.tufa(&["sync"]).output().unwrap());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "the online key `{}` is missing",
            keys.join("online.json").display()
        )) && err.contains(&format!("holds the next key {next}"))
            && err.contains(&format!(
                "tufa --config {} import-metadata DIR",
                m.config().display()
            )),
        "{}",
        describe(&out)
    );
    assert_eq!(published(&m), before);

    let out = ok(import(&m, &export));
    assert!(
        stdout(&out).contains(&format!(
            "online key rotated: now signing with {next} (finished an interrupted rotation"
        )),
        "{}",
        describe(&out)
    );
    assert_eq!(
        Ed25519Signer::read_insecure_plaintext(&keys.join("online.json"))
            .unwrap()
            .keyid()
            .to_hex(),
        next
    );
    assert!(retired.exists() && !keys.join("online.next.json").exists());
    assert_eq!(timestamp_signer(&m), next);
    ok(m.tufa(&["verify"]).output().unwrap());
}

#[test]
fn a_root_naming_neither_the_current_nor_the_next_key_is_refused() {
    let up = Upstream::start(demo_projects());
    let (m, mut ceremony, old, _) = imported(&up);
    let stranger = Ed25519Signer::generate();
    ceremony.rotate_online_key(stranger.key());
    let export = ceremony.export(&m.dir.path().join("transfer/stranger"));
    let before = published(&m);
    let s = stranger.keyid().to_hex();
    let keys = m.dir.path().join("keys");

    let out = fails(import(&m, &export));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "root v2 names online key {s} (snapshot) / {s} (timestamp), but this mirror's online key is {old} (`{}`) and its next key is none (`{}`)",
            keys.join("online.json").display(),
            keys.join("online.next.json").display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "tufa --config {} online-key show --public-out",
            m.config().display()
        )),
        "{err}"
    );
    // With a next key that is not the one either: named too.
    let (next, _) = generate(&m, true, "online-next.pub.json");
    let out = fails(import(&m, &export));
    assert!(
        stderr(&out).contains(&format!("its next key is {next}")),
        "{}",
        describe(&out)
    );
    // Nothing changed: files, keys, what signs.
    assert_eq!(published(&m), before);
    assert!(keys.join("online.json").exists() && keys.join("online.next.json").exists());
    assert_eq!(timestamp_signer(&m), old);
}

#[test]
fn a_dev_keys_mirror_is_refused_then_replaced_by_the_ceremony_chain() {
    let up = Upstream::start(demo_projects());
    let dir = tempfile::tempdir().unwrap();
    ok(crate::tufa()
        .arg("init")
        .arg(dir.path())
        .args([
            "--dev-keys",
            "--upstream",
            &up.simple_url(),
            "--project",
            "demo-lib",
        ])
        .output()
        .unwrap());
    let m = MirrorDir { dir };
    let config = m.config().display().to_string();
    small_bins(&m.config());
    assert_eq!(mode(&m.dir.path().join("keys")), 0o700);
    ok(m.tufa(&["sync"]).output().unwrap());
    ok(m.tufa(&["refresh"]).output().unwrap());
    let dev_root1 = published(&m)["1.root.json"].clone();
    let (t0, s0, bins0) = online_versions(&m);
    assert!(
        m.dir
            .path()
            .join("data/index.redb.insecure-dev-root.json")
            .is_file()
    );

    // The dev online key stays the online key: the ceremony takes its public part.
    let public = m.dir.path().join("online.pub.json");
    let out = ok(m
        .tufa(&["online-key", "show", "--public-out", public.to_str().unwrap()])
        .output()
        .unwrap());
    let (online, key) = public_key(&public);
    assert!(stdout(&out).contains(&format!("online key {online}")));
    let ceremony = Ceremony::new(&key);
    let export = ceremony.export(&m.dir.path().join("transfer/initial"));
    let export_arg = export.to_str().unwrap();

    // A plain import is refused with the way out.
    let out = fails(import(&m, &export));
    assert!(
        stderr(&out).contains(&format!(
            "error: this mirror's TUF metadata was made with INSECURE dev keys; the ceremony's 1.root.json starts a new trust chain. To switch: remove `insecure_dev_keys` from {config}, then run `tufa --config {config} import-metadata {export_arg} --replace-dev-metadata`; clients must then pin the ceremony's 1.root.json"
        )),
        "{}",
        describe(&out)
    );
    // --replace-dev-metadata while the config still has the dev keys: refused.
    let replace = ["import-metadata", export_arg, "--replace-dev-metadata"];
    let out = fails(m.tufa(&replace).output().unwrap());
    assert!(
        stderr(&out).contains(&format!(
            "`insecure_dev_keys` is still set in {config}: remove that line first"
        )),
        "{}",
        describe(&out)
    );
    assert_eq!(published(&m)["1.root.json"], dev_root1);

    // The runbook: drop the config line and the dev offline keys, then replace.
    let text = std::fs::read_to_string(m.config()).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("insecure_dev_keys"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(m.config(), text).unwrap();
    for k in ["root", "targets", "bins"] {
        std::fs::remove_file(m.dir.path().join(format!("keys/{k}.json"))).unwrap();
    }
    // Without --replace-dev-metadata the refusal now just says to run it.
    let out = fails(import(&m, &export));
    assert!(
        stderr(&out).contains(&format!(
            "To switch: run `tufa --config {config} import-metadata {export_arg} --replace-dev-metadata`"
        )),
        "{}",
        describe(&out)
    );
    let out = ok(m.tufa(&replace).output().unwrap());
    let sha = tufa_pypi::Sha256Digest::of(&std::fs::read(export.join("1.root.json")).unwrap()).to_hex();
    let text = stdout(&out);
    assert!(
        text.contains("imported root v1 (1 new), targets v1, bins v1"),
        "{text}"
    );
    assert!(
        text.contains(&format!("first root: 1.root.json sha256 {sha}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("clients must re-pin 1.root.json (sha256 {sha})")),
        "{text}"
    );

    // The ceremony's files are published; the online versions only went up.
    let now = published(&m);
    for name in ["1.root.json", "1.targets.json", "1.bins.json"] {
        assert_eq!(now[name], std::fs::read(export.join(name)).unwrap(), "{name}");
    }
    let (t1, s1, bins1) = online_versions(&m);
    assert!(t1 > t0 && s1 > s0, "timestamp {t0} → {t1}, snapshot {s0} → {s1}");
    assert_eq!(bins1.len(), 16);
    for (bin, v) in &bins1 {
        assert!(*v > bins0[bin], "{bin}: v{} → v{v}", bins0[bin]);
    }
    assert_eq!(timestamp_signer(&m), online);
    ok(m.tufa(&["verify"]).output().unwrap());
    assert!(
        !m.dir
            .path()
            .join("data/index.redb.insecure-dev-root.json")
            .exists()
    );

    // It is a ceremony mirror now: the same export is nothing new, and replacing is refused.
    let out = ok(import(&m, &export));
    assert!(
        stdout(&out).starts_with("nothing to import"),
        "{}",
        describe(&out)
    );
    let out = fails(m.tufa(&replace).output().unwrap());
    assert!(
        stderr(&out).contains("was not made with dev keys"),
        "{}",
        describe(&out)
    );
    // An export from another ceremony is another trust chain.
    let other = Ceremony::new(&key).export(&m.dir.path().join("transfer/other"));
    let out = fails(import(&m, &other));
    assert!(
        stderr(&out).contains(
            "differs from the 1.root.json this mirror publishes: the export belongs to another trust chain"
        ),
        "{}",
        describe(&out)
    );
}

/// A SoftHSM2 token `mirror` in `dir` (its own config): (SOFTHSM2_CONF, module path).
fn softhsm_token(dir: &Path) -> (PathBuf, PathBuf) {
    let module = tufa_testkit::softhsm_module();
    let conf = tufa_testkit::softhsm_config(dir);
    tufa_testkit::softhsm_init_token(&conf, "mirror", "1234", "5678");
    (conf, module)
}

#[test]
fn pkcs11_online_key_rotation_relabels_the_keys_in_the_token() {
    let up = Upstream::start(demo_projects());
    let hsm = tempfile::tempdir().unwrap();
    let (conf, module) = softhsm_token(hsm.path());
    let m = MirrorDir {
        dir: tempfile::tempdir().unwrap(),
    };
    let out = ok(crate::tufa()
        .arg("init")
        .arg(m.dir.path())
        .args(["--upstream", &up.simple_url(), "--project", "demo-lib"])
        .arg("--online-pkcs11-module")
        .arg(&module)
        .args(["--online-pkcs11-token", "mirror", "--online-pkcs11-key", "online"])
        .output()
        .unwrap());
    assert!(stdout(&out).contains("TUFA_PKCS11_PIN"), "{}", describe(&out));
    let toml = std::fs::read_to_string(m.config()).unwrap();
    assert!(
        toml.contains("[tuf.online_pkcs11]") && !toml.contains("\nonline_key ="),
        "{toml}"
    );
    assert!(!m.dir.path().join("keys").exists());
    small_bins(&m.config());
    let run = |args: &[&str]| {
        let mut cmd = m.tufa(args);
        cmd.env("SOFTHSM2_CONF", &conf).env("TUFA_PKCS11_PIN", "5678");
        cmd.output().unwrap()
    };
    let public = |name: &str| m.dir.path().join(name).to_str().unwrap().to_owned();

    ok(run(&[
        "online-key",
        "generate",
        "--public-out",
        &public("online.pub.json"),
    ]));
    let (old, old_key) = public_key(Path::new(&public("online.pub.json")));
    let out = fails(run(&["online-key", "generate"]));
    assert!(
        stderr(&out).contains(&format!(
            "PKCS#11 key `online` on token `mirror` already holds online key {old}"
        )),
        "{}",
        describe(&out)
    );
    let mut ceremony = Ceremony::new(&old_key);
    ok(run(&[
        "import-metadata",
        ceremony.export(&m.dir.path().join("initial")).to_str().unwrap(),
    ]));
    assert_eq!(timestamp_signer(&m), old);

    ok(run(&[
        "online-key",
        "generate",
        "--next",
        "--public-out",
        &public("next.pub.json"),
    ]));
    let (next, next_key) = public_key(Path::new(&public("next.pub.json")));
    let out = ok(run(&["online-key", "show", "--next"]));
    assert!(
        stdout(&out).starts_with(&format!("online key {next}")),
        "{}",
        describe(&out)
    );
    ceremony.rotate_online_key(&next_key);
    let export = ceremony.export(&m.dir.path().join("online-key-2"));
    let out = ok(run(&["import-metadata", export.to_str().unwrap()]));
    assert!(
        stdout(&out).contains(&format!(
            "online key rotated: now signing with {next} (previous key kept as PKCS#11 key `online.retired-{}` on token `mirror`",
            &old[..8]
        )),
        "{}",
        describe(&out)
    );
    assert_eq!(timestamp_signer(&m), next);
    // The labels moved: `online` is the new key, no `online.next`, the old key retired.
    let out = ok(run(&["online-key", "show"]));
    assert!(
        stdout(&out).starts_with(&format!("online key {next}")),
        "{}",
        describe(&out)
    );
    let out = fails(run(&["online-key", "show", "--next"]));
    assert!(
        stderr(&out).contains("PKCS#11 key `online.next` on token `mirror` does not exist"),
        "{}",
        describe(&out)
    );
    ok(run(&["refresh"]));
    assert_eq!(timestamp_signer(&m), next);
    ok(m.tufa(&["verify"]).output().unwrap());
}
