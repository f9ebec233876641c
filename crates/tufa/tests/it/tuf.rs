//! Signing from the command line: dev keys, refresh, and importing ceremony metadata.

use std::path::Path;

use tufa_fake_upstream::demo_projects;
use tufa_tuf::build::{self, RoleKeySet, RootKeys};
use tufa_tuf::{BinLayout, Ed25519Signer, Signer, sign_metadata};

use crate::{MirrorDir, Upstream};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Rewrites the `[tuf]` section: a 16-bin layout (fast) and, optionally, an online key.
fn configure_tuf(m: &MirrorDir, online_key: Option<&str>) {
    let text = std::fs::read_to_string(m.config()).unwrap();
    let mut text = text.replace("bins_bit_length = 14", "bins_bit_length = 4");
    if let Some(k) = online_key {
        text = text.replace(
            "# online_key = \"keys/online.json\"",
            &format!("online_key = \"{k}\""),
        );
    }
    std::fs::write(m.config(), text).unwrap();
}

/// What a ceremony would publish: root v1 (root, targets keys; online key for snapshot and
/// timestamp), targets v1 delegating to bins, bins v1 delegating to the online key.
fn ceremony_output(
    out: &Path,
    root: &Ed25519Signer,
    targets: &Ed25519Signer,
    bins: &Ed25519Signer,
    online: &Ed25519Signer,
) {
    std::fs::create_dir_all(out).unwrap();
    let year =
        build::expires_after(jiff::Timestamp::now(), jiff::SignedDuration::from_hours(24 * 365)).unwrap();
    let online_set = RoleKeySet::single(online.key().clone());
    let keys = RootKeys {
        root: RoleKeySet::single(root.key().clone()),
        targets: RoleKeySet::single(targets.key().clone()),
        snapshot: online_set.clone(),
        timestamp: online_set.clone(),
    };
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(out.join(name), bytes).unwrap();
    let r = sign_metadata(build::new_root(&keys, 1, year).unwrap(), &[root]).unwrap();
    write("1.root.json", r.to_bytes().unwrap());
    let t = build::new_targets_delegating_to_bins(&RoleKeySet::single(bins.key().clone()), 1, year).unwrap();
    write(
        "1.targets.json",
        sign_metadata(t, &[targets]).unwrap().to_bytes().unwrap(),
    );
    let b = build::new_bins_delegator(&BinLayout::new(4).unwrap(), &online_set, 1, year).unwrap();
    write(
        "1.bins.json",
        sign_metadata(b, &[bins]).unwrap().to_bytes().unwrap(),
    );
}

#[test]
fn dev_keys_sign_and_verify_then_refresh_moves_only_the_timestamp() {
    let up = Upstream::start(demo_projects());
    let dir = tempfile::tempdir().unwrap();
    let out = crate::tufa()
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
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("INSECURE"),
        "dev keys must be loudly marked: {}",
        stderr(&out)
    );
    for k in ["root", "targets", "bins", "online"] {
        let meta = std::fs::metadata(dir.path().join(format!("keys/{k}.json"))).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o600,
            "{k}"
        );
    }
    let m = MirrorDir { dir };
    configure_tuf(&m, None);
    let out = m.tufa(&["sync"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("signed 16 bins, snapshot v1"),
        "{}",
        stdout(&out)
    );
    let out = m.tufa(&["verify"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("TUF: root v1, timestamp v1, snapshot v1"),
        "{}",
        stdout(&out)
    );

    // A timestamp that is gone (a publish that stopped before it, or removed): verify says
    // so and what to run, and the next sync signs a new one.
    let timestamp = m.store().join("published/tuf/timestamp.json");
    let signed = std::fs::read(&timestamp).unwrap();
    std::fs::remove_file(&timestamp).unwrap();
    let out = m.tufa(&["verify"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("TUF: timestamp.json is not published")
            && stderr(&out).contains(" sync` to publish it)"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&timestamp, signed).unwrap();

    let out = m.tufa(&["refresh"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("signed timestamp v2 (snapshot v1 unchanged)"),
        "{}",
        stdout(&out)
    );
    let out = m.tufa(&["verify"]).output().unwrap();
    assert!(
        stdout(&out).contains("timestamp v2, snapshot v1"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn without_keys_sync_warns_and_refresh_refuses() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-lib"]);
    let out = m.tufa(&["sync"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("unsigned"), "{}", stderr(&out));
    let out = m.tufa(&["refresh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("online_key"), "{}", stderr(&out));
}

#[test]
fn import_metadata_from_a_ceremony_then_verify() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-lib", "demo-util"]);
    let online = Ed25519Signer::generate();
    online
        .write_insecure_plaintext(&m.dir.path().join("online.json"))
        .unwrap();
    configure_tuf(&m, Some("online.json"));
    // With an online key but no imported root yet, pages are published unsigned.
    let out = m.tufa(&["sync"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no TUF root metadata yet") && stderr(&out).contains("import-metadata DIR"),
        "{}",
        stderr(&out)
    );

    let (root, targets, bins) = (
        Ed25519Signer::generate(),
        Ed25519Signer::generate(),
        Ed25519Signer::generate(),
    );
    // A ceremony output whose root is signed by the wrong key is refused, naming the file.
    let bad = m.dir.path().join("bad");
    ceremony_output(&bad, &Ed25519Signer::generate(), &targets, &bins, &online);
    let mut forged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bad.join("1.root.json")).unwrap()).unwrap();
    forged["signatures"][0]["keyid"] = serde_json::Value::String(root.keyid().to_hex());
    std::fs::write(bad.join("1.root.json"), serde_json::to_vec(&forged).unwrap()).unwrap();
    let out = m
        .tufa(&["import-metadata", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("1.root.json"), "{}", stderr(&out));

    // A different online key than the root names is refused too.
    let other = m.dir.path().join("other");
    ceremony_output(&other, &root, &targets, &bins, &Ed25519Signer::generate());
    let out = m
        .tufa(&["import-metadata", other.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("online key"), "{}", stderr(&out));

    let good = m.dir.path().join("ceremony-out");
    ceremony_output(&good, &root, &targets, &bins, &online);
    let out = m
        .tufa(&["import-metadata", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("imported root v1 (1 new), targets v1, bins v1"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("signed 16 bins"), "{}", stdout(&out));
    let out = m.tufa(&["verify"]).output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("TUF: root v1"), "{text}");
    // demo-lib's and demo-util's pages and files are all signed targets.
    let targets_line = text.lines().find(|l| l.starts_with("TUF:")).unwrap();
    assert!(!targets_line.contains(" 0 targets"), "{targets_line}");
}

/// A mirror that imported `ceremony_output` (root, targets, bins v1) with its online key.
struct ImportedMirror {
    m: MirrorDir,
    root: Ed25519Signer,
    targets: Ed25519Signer,
    bins: Ed25519Signer,
    online: Ed25519Signer,
    _up: Upstream,
}

fn imported_mirror() -> ImportedMirror {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-lib"]);
    let online = Ed25519Signer::generate();
    online
        .write_insecure_plaintext(&m.dir.path().join("online.json"))
        .unwrap();
    configure_tuf(&m, Some("online.json"));
    let (root, targets, bins) = (
        Ed25519Signer::generate(),
        Ed25519Signer::generate(),
        Ed25519Signer::generate(),
    );
    let first = m.dir.path().join("ceremony-1");
    ceremony_output(&first, &root, &targets, &bins, &online);
    let out = m
        .tufa(&["import-metadata", first.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    ImportedMirror {
        m,
        root,
        targets,
        bins,
        online,
        _up: up,
    }
}

/// The published `tuf/` files of the mirror, by name.
fn published_tuf(m: &MirrorDir) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    for dir in walk_dirs(&m.store()) {
        if dir.file_name().is_some_and(|n| n == "tuf") {
            for e in std::fs::read_dir(&dir).unwrap() {
                let e = e.unwrap();
                files.insert(
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                );
            }
        }
    }
    files
}

fn walk_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.push(p.clone());
            out.extend(walk_dirs(&p));
        }
    }
    out
}

#[test]
fn finding_07_import_metadata_refuses_targets_v1_copied_as_v2() {
    let t = imported_mirror();
    let before = published_tuf(&t.m);
    assert!(before.contains_key("1.targets.json"), "{:?}", before.keys());

    // The reproduction: a ceremony export whose `2.targets.json` is a copy of v1 (and
    // properly signed, as v1 is). Before the fix the mirror accepted it as targets v2.
    let replay = t.m.dir.path().join("replay");
    std::fs::create_dir_all(&replay).unwrap();
    std::fs::write(replay.join("2.targets.json"), &before["1.targets.json"]).unwrap();
    std::fs::write(replay.join("1.bins.json"), &before["1.bins.json"]).unwrap();
    let out =
        t.m.tufa(&["import-metadata", replay.to_str().unwrap()])
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("`2.targets.json` is signed as version 1, but its file name says version 2"),
        "{}",
        stderr(&out)
    );
    // Nothing was published: no `2.targets.json`, no new snapshot or timestamp.
    assert_eq!(published_tuf(&t.m), before);

    // The same for bins, and for a root: `2.root.json` holding root v1.
    let replay = t.m.dir.path().join("replay-bins");
    std::fs::create_dir_all(&replay).unwrap();
    std::fs::write(replay.join("1.targets.json"), &before["1.targets.json"]).unwrap();
    std::fs::write(replay.join("3.bins.json"), &before["1.bins.json"]).unwrap();
    let out =
        t.m.tufa(&["import-metadata", replay.to_str().unwrap()])
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`3.bins.json` is signed as version 1, but its file name says version 3"),
        "{}",
        stderr(&out)
    );
    let replay = t.m.dir.path().join("replay-root");
    std::fs::create_dir_all(&replay).unwrap();
    std::fs::write(replay.join("2.root.json"), &before["1.root.json"]).unwrap();
    std::fs::write(replay.join("1.targets.json"), &before["1.targets.json"]).unwrap();
    std::fs::write(replay.join("1.bins.json"), &before["1.bins.json"]).unwrap();
    let out =
        t.m.tufa(&["import-metadata", replay.to_str().unwrap()])
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`2.root.json` is signed as version 1, but its file name says version 2"),
        "{}",
        stderr(&out)
    );
    assert_eq!(published_tuf(&t.m), before);

    // A real targets v2 goes through.
    let year =
        build::expires_after(jiff::Timestamp::now(), jiff::SignedDuration::from_hours(24 * 365)).unwrap();
    let v2 =
        build::new_targets_delegating_to_bins(&RoleKeySet::single(t.bins.key().clone()), 2, year).unwrap();
    let next = t.m.dir.path().join("next");
    std::fs::create_dir_all(&next).unwrap();
    std::fs::write(
        next.join("2.targets.json"),
        sign_metadata(v2, &[&t.targets]).unwrap().to_bytes().unwrap(),
    )
    .unwrap();
    std::fs::write(next.join("1.bins.json"), &before["1.bins.json"]).unwrap();
    let out =
        t.m.tufa(&["import-metadata", next.to_str().unwrap()])
            .output()
            .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("targets v2"), "{}", stdout(&out));
    let out = t.m.tufa(&["verify"]).output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));

    // `tufa verify` reads versions from the signed content too: v1 put in place of the
    // published `2.targets.json` (which snapshot lists by version only) is reported.
    let tuf_dir = walk_dirs(&t.m.store())
        .into_iter()
        .find(|d| d.file_name().is_some_and(|n| n == "tuf"))
        .unwrap();
    std::fs::write(tuf_dir.join("2.targets.json"), &before["1.targets.json"]).unwrap();
    let out = t.m.tufa(&["verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("`2.targets.json` is signed as version 1, but its file name says version 2"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn finding_08_import_metadata_counts_distinct_keys_not_key_ids() {
    let t = imported_mirror();
    let before = published_tuf(&t.m);
    // Root v2 claims a 2-of-2 root role, but both ids are the v1 root key (the second listing
    // carries an extension field, so it has its own key id); one key signs under both.
    let year =
        build::expires_after(jiff::Timestamp::now(), jiff::SignedDuration::from_hours(24 * 365)).unwrap();
    let alias = t
        .root
        .key()
        .clone()
        .with_field("x-alias", serde_json::json!(1))
        .unwrap();
    // The builder refuses a public key listed twice: build with a stand-in, then list the alias.
    let stand_in = Ed25519Signer::generate();
    let online_set = RoleKeySet::single(t.online.key().clone());
    let keys = RootKeys {
        root: RoleKeySet::new(vec![t.root.key().clone(), stand_in.key().clone()], 2),
        targets: RoleKeySet::single(t.targets.key().clone()),
        snapshot: online_set.clone(),
        timestamp: online_set,
    };
    let mut root = build::new_root(&keys, 2, year).unwrap();
    root.keys.remove(&stand_in.keyid());
    root.keys.insert(alias.key_id(), alias.clone());
    root.roles.get_mut("root").unwrap().keyids = vec![t.root.keyid(), alias.key_id()];
    let mut v2 = sign_metadata(root, &[&t.root]).unwrap();
    let sig = v2.signatures[0].sig.clone();
    v2.signatures.push(tufa_tuf::Signature {
        keyid: alias.key_id(),
        sig,
    });
    let dir = t.m.dir.path().join("alias");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("2.root.json"), v2.to_bytes().unwrap()).unwrap();
    std::fs::write(dir.join("1.targets.json"), &before["1.targets.json"]).unwrap();
    std::fs::write(dir.join("1.bins.json"), &before["1.bins.json"]).unwrap();
    let out =
        t.m.tufa(&["import-metadata", dir.to_str().unwrap()])
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("`2.root.json`")
            && err.contains("1 valid signature(s) from authorised keys, threshold is 2"),
        "{err}"
    );
    assert!(err.contains("same public key"), "{err}");
    assert_eq!(published_tuf(&t.m), before);
}

/// A SoftHSM2 token `mirror` in `dir` (its own config, so nothing global is touched).
fn softhsm_token(dir: &Path) -> (std::path::PathBuf, String) {
    let module = tufa_testkit::softhsm_module();
    let conf = tufa_testkit::softhsm_config(dir);
    tufa_testkit::softhsm_init_token(&conf, "mirror", "1234", "5678");
    (conf, module.display().to_string())
}

#[test]
fn online_key_in_a_pkcs11_token_signs_the_mirror() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-lib"]);
    let (conf, module) = softhsm_token(m.dir.path());
    // Offline keys as dev keys (the HSM holds only the online key here).
    let keys = m.dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    for k in ["root", "targets", "bins"] {
        Ed25519Signer::generate()
            .write_insecure_plaintext(&keys.join(format!("{k}.json")))
            .unwrap();
    }
    configure_tuf(&m, None);
    let mut text = std::fs::read_to_string(m.config()).unwrap();
    text = text.replace(
        "bins_bit_length = 4",
        "insecure_dev_keys = \"keys\"\nbins_bit_length = 4",
    );
    text.push_str(&format!(
        "\n[tuf.online_pkcs11]\nmodule = \"{module}\"\ntoken = \"mirror\"\nkey = \"online\"\n"
    ));
    std::fs::write(m.config(), text).unwrap();
    let with_pin = |args: &[&str], pin: &str| {
        let mut cmd = m.tufa(args);
        cmd.env("SOFTHSM2_CONF", &conf).env("TUFA_PKCS11_PIN", pin);
        cmd.output().unwrap()
    };

    let public = m.dir.path().join("online.pub.json");
    let out = with_pin(
        &["online-key", "generate", "--public-out", public.to_str().unwrap()],
        "5678",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let keyid =
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&public).unwrap()).unwrap()["keyid"]
            .as_str()
            .unwrap()
            .to_owned();
    let out = with_pin(&["online-key", "show"], "5678");
    assert!(stdout(&out).contains(&keyid), "{}", stdout(&out));

    // A wrong PIN is a clear error naming the token, and nothing is published signed.
    let out = with_pin(&["sync"], "0000");
    assert!(!out.status.success());
    // The error line (not the log lines, whose timestamps may hold any digits).
    let err = stderr(&out);
    let error_line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line:\n{err}"));
    assert!(
        error_line.contains("`mirror`") && !error_line.contains("0000"),
        "{error_line}"
    );

    let out = with_pin(&["sync"], "5678");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("signed 16 bins"), "{}", stdout(&out));
    let out = m.tufa(&["verify"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The published root names the token's key as the timestamp key.
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.store().join("published/tuf/1.root.json")).unwrap()).unwrap();
    assert_eq!(root["signed"]["roles"]["timestamp"]["keyids"][0], keyid.as_str());
}
