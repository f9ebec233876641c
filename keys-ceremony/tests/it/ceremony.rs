//! Ceremonies driven through the binary, with python-tuf's ngclient as the judge of what
//! clients accept.

use std::path::Path;

use tufa_tuf::{Ed25519Signer, Signer as _};

use crate::python::{self, assert_verified, run_updater};
use crate::support::{Cast, OnlineRepo, init_standard, passphrase_of, read_targets, run, run_fails, run_ok};

fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Signs and publishes the standard first ceremony (root by alice and bob).
fn first_ceremony(cast: &Cast) -> Ed25519Signer {
    let online = init_standard(cast, "ceremony");
    cast.sign("ceremony", "root", "alice");
    cast.sign("ceremony", "root", "bob");
    cast.sign("ceremony", "targets", "tgt");
    cast.sign("ceremony", "bins", "binsholder");
    run_ok(&cast.work, &["publish", "ceremony", "--out", "out1"], None);
    online
}

#[test]
fn full_two_of_three_root_ceremony() {
    let tmp = tempfile::tempdir().unwrap();
    let cast = Cast::new(tmp.path());
    let online = init_standard(&cast, "ceremony");
    let work = &cast.work;
    assert_eq!(
        list(&work.join("ceremony/pending")),
        ["1.bins.json", "1.root.json", "1.targets.json"]
    );
    // The envelopes start unsigned.
    assert!(
        read_targets(&work.join("ceremony/pending/1.bins.json"))
            .signatures
            .is_empty()
    );

    // Alice types her passphrase into a file here (the prompt in production); bob uses the
    // environment. Each key has its own passphrase.
    std::fs::write(work.join("alice.pass"), format!("{}\n", passphrase_of("alice"))).unwrap();
    let out = run_ok(
        work,
        &[
            "sign",
            "ceremony",
            "root",
            "--key",
            "keys/alice.key",
            "--passphrase-file",
            "alice.pass",
            "--yes",
        ],
        None,
    );
    assert!(out.contains("1 of 2 required signature(s)"), "{out}");
    let wrong = run(
        work,
        &["sign", "ceremony", "root", "--key", "keys/bob.key", "--yes"],
        Some(&passphrase_of("alice")),
    );
    assert_eq!(wrong.code, 1);
    assert!(wrong.stderr.contains("wrong passphrase"), "{}", wrong.stderr);
    let out = cast.sign("ceremony", "1.root.json", "bob");
    assert!(
        out.contains("2 of 2 required signature(s) — threshold met"),
        "{out}"
    );

    // A key of another role, and a second signature by the same key, are refused.
    let err = cast.try_sign("ceremony", "root", "tgt");
    assert_eq!(err.code, 1);
    assert!(
        err.stderr
            .contains("is not authorised to sign `pending/1.root.json`"),
        "{}",
        err.stderr
    );
    assert!(err.stderr.contains("(tgt)"), "{}", err.stderr);
    let err = cast.try_sign("ceremony", "root", "alice");
    assert_eq!(err.code, 1);
    assert!(
        err.stderr.contains("already carries a signature"),
        "{}",
        err.stderr
    );
    let err = cast.try_sign("ceremony", "bins", "tgt");
    assert!(err.stderr.contains("not authorised"), "{}", err.stderr);

    cast.sign("ceremony", "targets", "tgt");
    cast.sign("ceremony", "bins", "binsholder");
    let status = run_ok(work, &["status", "ceremony"], None);
    assert!(
        status.contains("all thresholds met: ready to publish"),
        "{status}"
    );
    assert!(
        status.contains("the v1 root keys: 2 of 2 required signature(s) — threshold met"),
        "{status}"
    );
    for line in [
        "signed   alice",
        "signed   bob",
        "missing  carol",
        "signed   tgt",
        "signed   binsholder",
    ] {
        assert!(status.contains(line), "{line} in:\n{status}");
    }

    let out = run_ok(work, &["publish", "ceremony", "--out", "out"], None);
    assert!(out.contains("published root v1, targets v1, bins v1"), "{out}");
    assert_eq!(
        list(&work.join("out")),
        ["1.bins.json", "1.root.json", "1.targets.json"]
    );
    assert!(list(&work.join("ceremony/pending")).is_empty());
    assert_eq!(
        list(&work.join("ceremony/published")),
        ["1.bins.json", "1.root.json", "1.targets.json"]
    );
    let verified = run_ok(work, &["verify", "ceremony"], None);
    assert!(verified.contains("root: threshold 2 of 3"), "{verified}");
    assert!(verified.contains("OK:"), "{verified}");
    run_ok(work, &["verify", "out"], None);
    // Nothing left to publish: a failure (exit 1) saying what to do.
    let err = run_fails(work, &["publish", "ceremony", "--out", "out"], None);
    assert!(err.contains("nothing pending"), "{err}");

    // The published metadata is what the mirror serves: a python-tuf client trusts it.
    let python = python::require();
    let mut repo = OnlineRepo::new(&work.join("repo"), 4);
    repo.import(&work.join("out"));
    repo.sign_online(&online);
    let paths = repo.paths();
    let client = run_updater(
        &python,
        &repo.dir,
        &work.join("client"),
        Some(&work.join("out/1.root.json")),
        &paths,
    );
    assert_verified(&client, 1, &paths);
}

#[test]
fn under_signed_root_is_refused_by_publish_and_by_python_tuf() {
    let python = python::require();
    let tmp = tempfile::tempdir().unwrap();
    let cast = Cast::new(tmp.path());
    let work = &cast.work;
    let online = init_standard(&cast, "ceremony");
    cast.sign("ceremony", "root", "alice");
    cast.sign("ceremony", "targets", "tgt");
    cast.sign("ceremony", "bins", "binsholder");
    let err = run_fails(work, &["publish", "ceremony", "--out", "out"], None);
    assert!(err.contains("role `root` v1"), "{err}");
    assert!(err.contains("1 of 2"), "{err}");
    assert!(err.contains("not yet signed by: "), "{err}");
    assert!(!work.join("out").exists(), "nothing may be written");
    assert_eq!(list(&work.join("ceremony/pending")).len(), 3);

    // The same under-signed root as a client's trust anchor: python-tuf refuses it too.
    let mut bad = OnlineRepo::new(&work.join("bad-repo"), 4);
    bad.import(&work.join("ceremony/pending"));
    bad.sign_online(&online);
    let paths = bad.paths();
    let run = run_updater(
        &python,
        &bad.dir,
        &work.join("bad-client"),
        Some(&bad.tuf().join("1.root.json")),
        &paths,
    );
    assert!(!run.success, "{}", run.stdout);
    assert!(
        run.stdout.contains("REFRESH-ERROR UnsignedMetadataError"),
        "{}",
        run.stdout
    );

    // Properly signed, v1 is published and trusted…
    cast.sign("ceremony", "root", "carol");
    run_ok(work, &["publish", "ceremony", "--out", "out"], None);
    let mut repo = OnlineRepo::new(&work.join("repo"), 4);
    repo.import(&work.join("out"));
    repo.sign_online(&online);
    let client = work.join("client");
    let ok = run_updater(
        &python,
        &repo.dir,
        &client,
        Some(&work.join("out/1.root.json")),
        &paths,
    );
    assert_verified(&ok, 1, &paths);

    // …and an under-signed 2.root.json is refused by publish, and by the client when served.
    run_ok(work, &["rotate-root", "ceremony"], None);
    cast.sign("ceremony", "root", "bob");
    let err = run_fails(work, &["publish", "ceremony", "--out", "out2"], None);
    assert!(err.contains("role `root` v2"), "{err}");
    assert!(err.contains("1 of 2"), "{err}");
    std::fs::copy(
        work.join("ceremony/pending/2.root.json"),
        repo.tuf().join("2.root.json"),
    )
    .unwrap();
    let run = run_updater(&python, &repo.dir, &client, None, &paths);
    assert!(!run.success, "{}", run.stdout);
    assert!(
        run.stdout.contains("REFRESH-ERROR UnsignedMetadataError"),
        "{}",
        run.stdout
    );
}

#[test]
fn root_rotation_to_new_keys_keeps_clients_verifying() {
    let python = python::require();
    let tmp = tempfile::tempdir().unwrap();
    let cast = Cast::new(tmp.path());
    let work = &cast.work;
    let online = first_ceremony(&cast);
    let mut repo = OnlineRepo::new(&work.join("repo"), 4);
    repo.import(&work.join("out1"));
    repo.sign_online(&online);
    let paths = repo.paths();
    let client = work.join("client");
    let run1 = run_updater(
        &python,
        &repo.dir,
        &client,
        Some(&work.join("out1/1.root.json")),
        &paths,
    );
    assert_verified(&run1, 1, &paths);

    // Replace bob and carol with dave and erin (alice stays), still 2-of-3.
    cast.keygen("dave");
    cast.keygen("erin");
    let (dave, erin) = (cast.public("dave"), cast.public("erin"));
    let out = run_ok(
        work,
        &[
            "rotate-root",
            "ceremony",
            "--add-root-key",
            &dave,
            "--add-root-key",
            &erin,
            "--remove-root-key",
            "bob",
            "--remove-root-key",
            "carol",
        ],
        None,
    );
    assert!(out.contains("created pending/2.root.json"), "{out}");
    // Only the new keys sign: the new threshold is met, the old one is not.
    cast.sign("ceremony", "root", "dave");
    cast.sign("ceremony", "root", "erin");
    let status = run(work, &["status", "ceremony"], None);
    assert_eq!(status.code, 3, "thresholds unmet: {}", status.stderr);
    let status = status.stdout;
    assert!(
        status.contains("the v1 root keys: 0 of 2 required signature(s) — threshold NOT met"),
        "{status}"
    );
    assert!(
        status.contains("the v2 root keys: 2 of 2 required signature(s) — threshold met"),
        "{status}"
    );
    let err = run_fails(work, &["publish", "ceremony", "--out", "out2"], None);
    assert!(err.contains("role `root` v2"), "{err}");
    assert!(
        err.contains("0 of 2 required signatures from the v1 root keys"),
        "{err}"
    );
    assert!(!work.join("out2").exists());

    // Old keys sign too (carol is being removed but is still a v1 root key).
    cast.sign("ceremony", "root", "carol");
    cast.sign("ceremony", "root", "alice");
    let out = run_ok(work, &["publish", "ceremony", "--out", "out2"], None);
    assert!(out.contains("published root v2"), "{out}");
    assert_eq!(
        list(&work.join("out2")),
        ["1.bins.json", "1.root.json", "1.targets.json", "2.root.json"]
    );
    let verified = run_ok(work, &["verify", "ceremony"], None);
    assert!(verified.contains("root chain: 2 version(s)"), "{verified}");

    // The existing client follows 1 → 2 and keeps verifying targets; so does a new one.
    repo.import(&work.join("out2"));
    repo.sign_online(&online);
    let run2 = run_updater(&python, &repo.dir, &client, None, &paths);
    assert_verified(&run2, 2, &paths);
    let fresh = run_updater(
        &python,
        &repo.dir,
        &work.join("client-new"),
        Some(&work.join("out2/1.root.json")),
        &paths,
    );
    assert_verified(&fresh, 2, &paths);

    // bob is no longer a root key: he cannot sign root v3.
    run_ok(work, &["resign", "ceremony", "root"], None);
    let err = cast.try_sign("ceremony", "root", "bob");
    assert_eq!(err.code, 1);
    assert!(err.stderr.contains("not authorised"), "{}", err.stderr);
    assert!(
        err.stderr.contains("the v2 root keys or the v3 root keys"),
        "{}",
        err.stderr
    );
    run_ok(work, &["discard", "ceremony", "root"], None);
    assert!(list(&work.join("ceremony/pending")).is_empty());
}

#[test]
fn online_key_rotation_is_followed_by_clients() {
    let python = python::require();
    let tmp = tempfile::tempdir().unwrap();
    let cast = Cast::new(tmp.path());
    let work = &cast.work;
    let old_online = first_ceremony(&cast);
    let mut repo = OnlineRepo::new(&work.join("repo"), 4);
    repo.import(&work.join("out1"));
    repo.sign_online(&old_online);
    let paths = repo.paths();
    let client = work.join("client");
    let run1 = run_updater(
        &python,
        &repo.dir,
        &client,
        Some(&work.join("out1/1.root.json")),
        &paths,
    );
    assert_verified(&run1, 1, &paths);

    // The mirror generates a new online key; only its public half comes to the ceremony.
    let (new_online, new_pub) = cast.online_key(2);
    let out = run_ok(work, &["rotate-root", "ceremony", "--online-key", &new_pub], None);
    assert!(out.contains("created pending/2.root.json"), "{out}");
    assert!(out.contains("created pending/2.bins.json"), "{out}");
    let bins = read_targets(&work.join("ceremony/pending/2.bins.json"));
    let succinct = bins.signed.delegations.unwrap().succinct_roles.unwrap();
    assert_eq!(succinct.keyids, vec![new_online.keyid()]);
    assert_eq!(succinct.bit_length, 4);

    cast.sign("ceremony", "root", "alice");
    cast.sign("ceremony", "root", "carol");
    // root alone is not enough: the new bins must be signed too.
    let err = run_fails(work, &["publish", "ceremony", "--out", "out2"], None);
    assert!(err.contains("role `bins` v2"), "{err}");
    assert!(err.contains("0 of 1"), "{err}");
    cast.sign("ceremony", "bins", "binsholder");
    run_ok(work, &["publish", "ceremony", "--out", "out2"], None);
    assert_eq!(
        list(&work.join("out2")),
        ["1.root.json", "1.targets.json", "2.bins.json", "2.root.json"]
    );
    repo.import(&work.join("out2"));

    // A mirror still signing with the old key is refused…
    repo.sign_online(&old_online);
    let stale = run_updater(
        &python,
        &repo.dir,
        &work.join("client-stale"),
        Some(&work.join("out2/1.root.json")),
        &paths,
    );
    assert!(!stale.success, "{}", stale.stdout);
    assert!(
        stale
            .stdout
            .contains("REFRESH-ERROR UnsignedMetadataError timestamp"),
        "{}",
        stale.stdout
    );
    // …and once it re-signs with the new one, the old client refreshes and verifies.
    repo.sign_online(&new_online);
    let run2 = run_updater(&python, &repo.dir, &client, None, &paths);
    assert_verified(&run2, 2, &paths);
}

#[test]
fn wrong_passphrase_is_a_clear_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cast = Cast::new(tmp.path());
    let work = &cast.work;
    init_standard(&cast, "ceremony");
    let pending = work.join("ceremony/pending");
    let before: Vec<(String, Vec<u8>)> = list(&pending)
        .into_iter()
        .map(|n| {
            let b = std::fs::read(pending.join(&n)).unwrap();
            (n, b)
        })
        .collect();
    let wrong = run(
        work,
        &["sign", "ceremony", "root", "--key", "keys/alice.key", "--yes"],
        Some("not alice's passphrase"),
    );
    assert_eq!(wrong.code, 1, "{}", wrong.stderr);
    assert_eq!(
        wrong.stderr.lines().last().unwrap(),
        "error: wrong passphrase or corrupted key file `keys/alice.key`"
    );
    // No passphrase source at all, and no terminal: a usage error (exit 2), not a hang.
    let r = run(
        work,
        &["sign", "ceremony", "root", "--key", "keys/alice.key", "--yes"],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: passphrase:"), "{}", r.stderr);

    // A key file whose authenticated header was edited fails the same way.
    let text = std::fs::read_to_string(work.join("keys/alice.key")).unwrap();
    std::fs::write(
        work.join("keys/mallory.key"),
        text.replace("\"holder\": \"alice\"", "\"holder\": \"mallory\""),
    )
    .unwrap();
    let err = run(
        work,
        &["sign", "ceremony", "root", "--key", "keys/mallory.key", "--yes"],
        Some(&passphrase_of("alice")),
    )
    .stderr;
    assert!(
        err.contains("wrong passphrase or corrupted key file `keys/mallory.key`"),
        "{err}"
    );

    let after: Vec<(String, Vec<u8>)> = list(&pending)
        .into_iter()
        .map(|n| {
            let b = std::fs::read(pending.join(&n)).unwrap();
            (n, b)
        })
        .collect();
    assert_eq!(before, after, "pending files unchanged, no temporary files left");

    // The library says the same.
    let key = tufa_ceremony::EncryptedKey::read(&work.join("keys/alice.key")).unwrap();
    let e = key
        .decrypt(&tufa_ceremony::Passphrase::new("wrong one"))
        .unwrap_err();
    assert!(
        matches!(e, tufa_ceremony::CeremonyError::WrongPassphrase { .. }),
        "{e}"
    );
    assert!(
        key.decrypt(&tufa_ceremony::Passphrase::new(passphrase_of("alice")))
            .is_ok()
    );
}

#[test]
fn key_files_are_private_and_hold_no_plaintext_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let out = run_ok(
        work,
        &[
            "keygen",
            "--drill",
            "--out",
            "root-1.key",
            "--holder",
            "Alice Example",
        ],
        Some("a passphrase of some length"),
    );
    let key = tufa_ceremony::EncryptedKey::read(&work.join("root-1.key")).unwrap();
    assert!(out.contains(&format!("keyid:  {}", key.keyid())), "{out}");
    assert!(out.contains(&key.key().keyval.public), "{out}");
    assert!(out.contains("holder: Alice Example"), "{out}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(work.join("root-1.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let signer = key
        .decrypt(&tufa_ceremony::Passphrase::new("a passphrase of some length"))
        .unwrap();
    let seed = hex::encode(signer.seed().as_slice());
    for file in ["root-1.key", "root-1.key.pub.json"] {
        let text = std::fs::read_to_string(work.join(file))
            .unwrap()
            .to_ascii_lowercase();
        assert!(!text.contains(&seed), "{file} holds the seed in plaintext");
        assert!(!text.contains(&seed[..16]), "{file} holds part of the seed");
    }
    let public = std::fs::read_to_string(work.join("root-1.key.pub.json")).unwrap();
    assert!(
        !public.contains("ciphertext") && !public.contains("private"),
        "{public}"
    );
    let parsed = tufa_ceremony::PublicKeyFile::read(&work.join("root-1.key.pub.json")).unwrap();
    assert_eq!(parsed.keyid, signer.keyid());
    assert_eq!(parsed.holder, "Alice Example");

    // Never overwrites; a short passphrase is refused; the key file is not a public key.
    let err = run(
        work,
        &["keygen", "--drill", "--out", "root-1.key"],
        Some("another passphrase"),
    );
    assert_eq!(err.code, 1, "{}", err.stderr);
    assert!(
        err.stderr.contains("`root-1.key` already exists"),
        "{}",
        err.stderr
    );
    let err = run(work, &["keygen", "--drill", "--out", "short.key"], Some("short"));
    assert_eq!(err.code, 1, "{}", err.stderr);
    assert!(err.stderr.contains("at least 8 characters"), "{}", err.stderr);
    assert!(!work.join("short.key").exists());
    let online = Ed25519Signer::generate();
    online
        .write_insecure_plaintext(&work.join("online.json"))
        .unwrap();
    online.key();
    std::fs::create_dir(work.join("x")).unwrap();
    let err = run_fails(
        work,
        &[
            "init",
            "c",
            "--root-key",
            "root-1.key",
            "--root-threshold",
            "1",
            "--targets-key",
            "root-1.key.pub.json",
            "--bins-key",
            "root-1.key.pub.json",
            "--online-key",
            "online.json",
        ],
        None,
    );
    assert!(
        err.contains("`root-1.key` is an encrypted tufa-ceremony key file (a private key); pass its public key file `root-1.key.pub.json` instead"),
        "{err}"
    );
    assert!(!work.join("c").exists());
}

#[test]
fn usage_errors_exit_2_and_every_command_has_help() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    for cmd in [
        "keygen",
        "export-public",
        "init",
        "sign",
        "status",
        "publish",
        "rotate-root",
        "resign",
        "discard",
        "verify",
    ] {
        let out = run_ok(work, &[cmd, "--help"], None);
        assert!(out.contains("Usage: tufa-ceremony"), "{cmd}: {out}");
    }
    assert_eq!(run(work, &["sign"], None).code, 2);
    assert_eq!(run(work, &["frobnicate"], None).code, 2);
    // A threshold larger than the key count is a usage error too.
    let cast = Cast::new(work);
    cast.keygen("a");
    cast.keygen("t");
    let (_, online) = cast.online_key(1);
    let a = cast.public("a");
    let t = cast.public("t");
    let r = run(
        work,
        &[
            "init",
            "c",
            "--root-key",
            &a,
            "--root-threshold",
            "2",
            "--targets-key",
            &t,
            "--bins-key",
            &t,
            "--online-key",
            &online,
        ],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "root threshold 2 is more than the 1 root key(s); give more --root-key files or a lower --root-threshold"
        ),
        "{}",
        r.stderr
    );
    // Not a ceremony directory: runtime error naming it.
    let err = run_fails(work, &["status", "keys"], None);
    assert!(err.contains("ceremony `keys`: no ceremony.json"), "{err}");
}
