//! What an operator meets at a ceremony (issue 15): the summary and confirmation before a
//! signature, warnings for the drill-only passphrase sources, keygen's `--drill`, one exit-code
//! convention, holder order in every list, and messages that name the thing and the fix.
//!
//! Confirmations are typed on a real pseudo-terminal (`script`), as a key holder would.

use std::path::Path;

use crate::support::{Cast, Run, init_standard, passphrase_of, run, run_env, run_ok, run_on_terminal};

const PASS_ENV: &str = "TUFA_CEREMONY_PASSPHRASE";
const ENV_WARNING: &str = "warning: passphrase read from TUFA_CEREMONY_PASSPHRASE (drills and tests only; unset it for a real ceremony)";
const NO_TERMINAL: &str = "error: sign needs a confirmation: run it on a terminal, or pass --yes in drills";

/// The payload sha256 `status` prints for `file`.
fn status_sha(work: &Path, ceremony: &str, file: &str) -> String {
    let status = run(work, &["status", ceremony], None);
    let line = status
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{file}:")))
        .unwrap_or_else(|| panic!("no {file} in status:\n{}", status.stdout));
    let sha = line.rsplit(' ').next().unwrap().to_owned();
    assert_eq!(sha.len(), 64, "{line}");
    sha
}

fn pending_bytes(work: &Path, ceremony: &str) -> Vec<(String, Vec<u8>)> {
    let dir = work.join(ceremony).join("pending");
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn sign_on_terminal(cast: &Cast, holder: &str, typed: &str, passphrase_env: bool) -> Run {
    let key = cast.key(holder);
    let pass = passphrase_of(holder);
    let envs: Vec<(&str, &str)> = if passphrase_env {
        vec![(PASS_ENV, pass.as_str())]
    } else {
        Vec::new()
    };
    run_on_terminal(
        &cast.work,
        &["sign", "ceremony", "root", "--key", &key],
        &envs,
        typed,
    )
}

#[test]
fn sign_shows_the_summary_and_asks_before_the_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let cast = Cast::new(tmp.path());
    let work = &cast.work;
    init_standard(&cast, "ceremony");
    let sha = status_sha(work, "ceremony", "pending/1.root.json");
    let before = pending_bytes(work, "ceremony");

    // Declined: exit 1, nothing written, the passphrase never read.
    let r = sign_on_terminal(&cast, "alice", "no\n", true);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let question = "Sign root v1 with key ";
    let asked = r.stdout.find(question).expect("the question");
    assert!(
        r.stdout[asked..].contains(" (alice)? Type \"yes\": "),
        "{}",
        r.stdout
    );
    let summary = r
        .stdout
        .find(&format!("payload sha256: {sha}"))
        .expect("the sha256 of status");
    assert!(summary < asked, "summary before the question:\n{}", r.stdout);
    assert!(
        r.stdout.contains("error: not signed: confirmation declined"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("passphrase read from"), "{}", r.stdout);
    assert_eq!(pending_bytes(work, "ceremony"), before, "nothing written");

    // Anything but `yes` is a refusal.
    let r = sign_on_terminal(&cast, "alice", "y\n", true);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(pending_bytes(work, "ceremony"), before, "nothing written");

    // `yes`, then the passphrase typed at the prompt (the production path): signed.
    let typed = format!("yes\n{}\n", passphrase_of("alice"));
    let r = sign_on_terminal(&cast, "alice", &typed, false);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let asked = r.stdout.find("Type \"yes\": ").unwrap();
    let prompted = r
        .stdout
        .find("Passphrase for `keys/alice.key` (alice, key ")
        .expect("the prompt");
    assert!(
        asked < prompted,
        "confirmation before the passphrase:\n{}",
        r.stdout
    );
    assert!(r.stdout.contains("added the signature of key"), "{}", r.stdout);
    assert_ne!(pending_bytes(work, "ceremony"), before);
    assert!(
        run(work, &["status", "ceremony"], None)
            .stdout
            .contains("the v1 root keys: 1 of 2")
    );
}

#[test]
fn sign_without_a_terminal_needs_yes() {
    let tmp = tempfile::tempdir().unwrap();
    let cast = Cast::new(tmp.path());
    let work = &cast.work;
    init_standard(&cast, "ceremony");
    let before = pending_bytes(work, "ceremony");
    let r = run(
        work,
        &["sign", "ceremony", "root", "--key", "keys/alice.key"],
        Some(&passphrase_of("alice")),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.stderr.trim(), NO_TERMINAL);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert_eq!(pending_bytes(work, "ceremony"), before);
}

#[test]
fn sign_yes_prints_the_summary_with_the_status_sha256_and_the_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let cast = Cast::new(tmp.path());
    let work = &cast.work;
    init_standard(&cast, "ceremony");

    // A first version.
    let sha = status_sha(work, "ceremony", "pending/1.root.json");
    let out = cast.sign("ceremony", "root", "alice");
    for line in [
        "file:           pending/1.root.json".to_owned(),
        "role:           root".to_owned(),
        "version:        1".to_owned(),
        format!("payload sha256: {sha}"),
        "signatures:     the v1 root keys: 0 of 2 — not yet signed by alice, bob, carol".to_owned(),
        "changes:        first version (no root published before it)".to_owned(),
    ] {
        assert!(out.contains(&line), "{line} in:\n{out}");
    }
    assert!(out.contains("expires:        "), "{out}");
    assert!(out.contains("signing key:    alice "), "{out}");
    let summary = out.find("payload sha256").unwrap();
    let result = out.find("added the signature").unwrap();
    assert!(summary < result, "{out}");
    cast.sign("ceremony", "root", "bob");
    cast.sign("ceremony", "targets", "tgt");
    cast.sign("ceremony", "bins", "binsholder");
    run_ok(work, &["publish", "ceremony", "--out", "out1"], None);

    // rotate-root replaces bob by dave and the online key: the summary lists what changed.
    cast.keygen("dave");
    let (_, online2) = cast.online_key(2);
    let dave = cast.public("dave");
    run_ok(
        work,
        &[
            "rotate-root",
            "ceremony",
            "--add-root-key",
            &dave,
            "--remove-root-key",
            "bob",
            "--online-key",
            &online2,
            "--expires-days",
            "200",
        ],
        None,
    );
    let sha = status_sha(work, "ceremony", "pending/2.root.json");
    let out = cast.sign("ceremony", "root", "alice");
    let id = |file: &str| {
        tufa_ceremony::PublicKeyFile::read(&work.join(file))
            .unwrap()
            .keyid
            .to_hex()[..16]
            .to_owned()
    };
    let (dave_id, online1_id, online2_id) = (id(&dave), id("online-1.pub.json"), id(&online2));
    for line in [
        format!("payload sha256: {sha}"),
        "signatures:     the v1 root keys: 0 of 2 — not yet signed by alice, bob, carol".to_owned(),
        "                the v2 root keys: 0 of 2 — not yet signed by alice, carol, dave".to_owned(),
        "changes since v1:".to_owned(),
        format!("  - root keys: added dave {dave_id}"),
        "  - root keys: removed bob ".to_owned(),
        format!("  - online key (snapshot and timestamp): online {online1_id} → online {online2_id}"),
        "  - expires: ".to_owned(),
    ] {
        assert!(out.contains(&line), "{line} in:\n{out}");
    }
    // The new bins says the hashed bins move to the new online key.
    let out = cast.sign("ceremony", "bins", "binsholder");
    assert!(out.contains("changes since v1:"), "{out}");
    assert!(
        out.contains(&format!(
            "  - online key (hashed bins): online {online1_id} → online {online2_id}"
        )),
        "{out}"
    );
}

#[test]
fn drill_passphrase_sources_warn_every_time() {
    let tmp = tempfile::tempdir().unwrap();
    let cast = Cast::new(tmp.path());
    let work = &cast.work;
    init_standard(&cast, "ceremony");
    // The variable: each signing says so, including one that then fails.
    for holder in ["alice", "bob"] {
        let r = cast.try_sign("ceremony", "root", holder);
        assert!(r.ok(), "{}", r.stderr);
        assert_eq!(r.stderr.trim(), ENV_WARNING);
    }
    let r = run(
        work,
        &["sign", "ceremony", "targets", "--key", "keys/tgt.key", "--yes"],
        Some("not tgt's passphrase"),
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.lines().next(), Some(ENV_WARNING), "{}", r.stderr);
    // The file: named in the warning, every time.
    std::fs::write(work.join("tgt.pass"), format!("{}\n", passphrase_of("tgt"))).unwrap();
    let args = [
        "sign",
        "ceremony",
        "targets",
        "--key",
        "keys/tgt.key",
        "--passphrase-file",
        "tgt.pass",
        "--yes",
    ];
    let file_warning = "warning: passphrase read from file `tgt.pass` (drills and tests only; a real ceremony types it at the prompt)";
    let r = run(work, &args, None);
    assert!(r.ok(), "{}", r.stderr);
    assert_eq!(r.stderr.trim(), file_warning);
    let r = run(work, &args, None);
    assert_eq!(r.code, 1, "already signed");
    assert!(r.stderr.contains("already carries a signature"), "{}", r.stderr);
    // Commands that read no passphrase do not warn.
    let r = run_env(work, &["status", "ceremony"], &[(PASS_ENV, "x")]);
    assert!(!r.stderr.contains("passphrase read from"), "{}", r.stderr);
}

#[test]
fn keygen_takes_drill_passphrase_sources_only_with_drill() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let pass = "drill passphrase, long enough";
    let r = run(
        work,
        &["keygen", "--out", "a.key", "--holder", "alice"],
        Some(pass),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim(),
        "error: keygen: TUFA_CEREMONY_PASSPHRASE is set, but a real key's passphrase is typed at the terminal prompt: unset it, or pass --drill to make a drill key with it"
    );
    std::fs::write(work.join("p"), pass).unwrap();
    let r = run(
        work,
        &["keygen", "--out", "a.key", "--passphrase-file", "p"],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim(),
        "error: keygen: --passphrase-file `p` is for drills and tests; a real key's passphrase is typed at the terminal prompt. Drop --passphrase-file, or pass --drill to make a drill key"
    );
    assert!(!work.join("a.key").exists() && !work.join("a.key.pub.json").exists());
    // No source and no terminal: a usage error, not a hang.
    let r = run(work, &["keygen", "--out", "a.key"], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot read it from the terminal"),
        "{}",
        r.stderr
    );

    // With --drill: accepted, with the warning.
    let r = run(
        work,
        &["keygen", "--drill", "--out", "a.key", "--holder", "alice"],
        Some(pass),
    );
    assert!(r.ok(), "{}", r.stderr);
    assert_eq!(r.stderr.trim(), ENV_WARNING);
    let r = run(
        work,
        &["keygen", "--drill", "--out", "b.key", "--passphrase-file", "p"],
        None,
    );
    assert!(r.ok(), "{}", r.stderr);
    assert_eq!(
        r.stderr.trim(),
        "warning: passphrase read from file `p` (drills and tests only; a real ceremony types it at the prompt)"
    );
    // Both keys open with the passphrase as given (the file had no line break).
    for k in ["a.key", "b.key"] {
        let key = tufa_ceremony::EncryptedKey::read(&work.join(k)).unwrap();
        assert!(key.decrypt(&tufa_ceremony::Passphrase::new(pass)).is_ok(), "{k}");
    }
}

#[test]
fn a_passphrase_file_loses_one_line_break_and_whitespace_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let cast = Cast::new(tmp.path());
    let work = &cast.work;
    init_standard(&cast, "ceremony");
    let pass = passphrase_of("alice");
    let sign = |file: &str| {
        run(
            work,
            &[
                "sign",
                "ceremony",
                "root",
                "--key",
                "keys/alice.key",
                "--passphrase-file",
                file,
                "--yes",
            ],
            None,
        )
    };
    std::fs::write(work.join("space.pass"), format!("{pass} \n")).unwrap();
    let r = sign("space.pass");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().last().unwrap(),
        "error: wrong passphrase or corrupted key file `keys/alice.key` (the passphrase from `space.pass` ends with a space; it counts as part of the passphrase)"
    );
    // The variable is named the same way.
    let r = run(
        work,
        &["sign", "ceremony", "root", "--key", "keys/alice.key", "--yes"],
        Some(&format!(" {pass}")),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "(the passphrase from TUFA_CEREMONY_PASSPHRASE starts with a space; it counts as part of the passphrase)"
        ),
        "{}",
        r.stderr
    );
    // A wrong passphrase without surrounding whitespace gets no such note.
    std::fs::write(work.join("wrong.pass"), "not it\n").unwrap();
    let r = sign("wrong.pass");
    assert_eq!(
        r.stderr.lines().last().unwrap(),
        "error: wrong passphrase or corrupted key file `keys/alice.key`"
    );
    // One trailing "\r\n" (a file saved on Windows) is not part of the passphrase.
    std::fs::write(work.join("crlf.pass"), format!("{pass}\r\n")).unwrap();
    let r = sign("crlf.pass");
    assert!(r.ok(), "{}", r.stderr);
}

#[test]
fn status_exits_3_until_thresholds_are_met_and_lists_keys_in_holder_order() {
    let tmp = tempfile::tempdir().unwrap();
    let cast = Cast::new(tmp.path());
    let work = &cast.work;
    for h in ["carol", "alice", "bob", "tgt", "binsholder"] {
        cast.keygen(h);
    }
    let (_, online) = cast.online_key(1);
    // Holder order: carol, alice, bob (neither alphabetical nor, in general, key id order).
    let (c, a, b) = (cast.public("carol"), cast.public("alice"), cast.public("bob"));
    let (t, bins) = (cast.public("tgt"), cast.public("binsholder"));
    run_ok(
        work,
        &[
            "init",
            "ceremony",
            "--root-key",
            &c,
            &a,
            &b,
            "--root-threshold",
            "2",
            "--targets-key",
            &t,
            "--bins-key",
            &bins,
            "--online-key",
            &online,
            "--bins-bit-length",
            "4",
        ],
        None,
    );
    let r = run(work, &["status", "ceremony"], None);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(
        r.stdout.ends_with("not ready to publish: thresholds unmet\n"),
        "{}",
        r.stdout
    );
    let order: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("missing  "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(order, ["carol", "alice", "bob", "tgt", "binsholder"]);

    cast.sign("ceremony", "root", "alice");
    let r = run(work, &["publish", "ceremony", "--out", "out"], None);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("(not yet signed by: carol, bob)"),
        "{}",
        r.stderr
    );
    let out = cast.sign("ceremony", "root", "bob");
    assert!(
        out.contains("the v1 root keys: 1 of 2 — signed by alice; not yet signed by carol, bob"),
        "{out}"
    );
    cast.sign("ceremony", "targets", "tgt");
    let r = run(work, &["status", "ceremony"], None);
    assert_eq!(r.code, 3, "bins still unsigned: {}", r.stdout);
    cast.sign("ceremony", "bins", "binsholder");
    let r = run(work, &["status", "ceremony"], None);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let signed: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("signed   "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(signed, ["alice", "bob", "tgt", "binsholder"]);
    let listed: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("    "))
        .take(3)
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(listed, ["carol", "alice", "bob"], "{}", r.stdout);
    run_ok(work, &["publish", "ceremony", "--out", "out"], None);
    let r = run(work, &["status", "ceremony"], None);
    assert_eq!(r.code, 0, "nothing pending: {}", r.stdout);
    assert!(r.stdout.contains("pending: nothing"), "{}", r.stdout);

    // A ceremony.json of the first format (holders as a key-id map) still opens; keys without
    // a recorded position fall back to holder name order.
    let path = work.join("ceremony/ceremony.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(config["format"], "tufa-ceremony/2");
    let map: serde_json::Map<String, serde_json::Value> = config["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["keyid"].as_str().unwrap().to_owned(), e["holder"].clone()))
        .collect();
    config["holders"] = serde_json::Value::Object(map);
    config["format"] = "tufa-ceremony/1".into();
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    run_ok(work, &["resign", "ceremony", "root"], None);
    let r = run(work, &["status", "ceremony"], None);
    assert_eq!(r.code, 3, "{}", r.stdout);
    let order: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains("the v2 root keys"))
        .collect();
    assert_eq!(order.len(), 1, "{}", r.stdout);
    let missing: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("missing  "))
        .map(|l| l.split_whitespace().next().unwrap())
        .take(3)
        .collect();
    assert_eq!(missing, ["alice", "bob", "carol"], "{}", r.stdout);
}

/// One command and what it must exit with (and say on stderr).
struct Case {
    args: Vec<String>,
    passphrase: bool,
    code: i32,
    says: &'static str,
}

fn case(args: &[&str], code: i32, says: &'static str) -> Case {
    Case {
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        passphrase: false,
        code,
        says,
    }
}

fn check(cast: &Cast, cases: &[Case]) {
    for c in cases {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let pass = passphrase_of("alice");
        let r = run(&cast.work, &args, c.passphrase.then_some(pass.as_str()));
        assert_eq!(
            r.code, c.code,
            "tufa-ceremony {args:?}:\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        assert!(
            r.stderr.contains(c.says),
            "tufa-ceremony {args:?}: stderr should say {:?}:\n{}",
            c.says,
            r.stderr
        );
        if c.code == 1 || (c.code == 2 && !c.says.is_empty()) {
            assert!(r.stderr.contains("error"), "{}", r.stderr);
        }
    }
}

#[test]
fn exit_codes_are_0_ok_1_failure_2_usage_3_status_unmet() {
    let tmp = tempfile::tempdir().unwrap();
    let cast = Cast::new(tmp.path());
    let work = &cast.work;
    init_standard(&cast, "ceremony");
    let (a, b, t) = (cast.public("alice"), cast.public("bob"), cast.public("tgt"));
    let init = |dir: &str, root: &[&str], threshold: &str| -> Vec<String> {
        let mut v = vec!["init".to_owned(), dir.to_owned(), "--root-key".into()];
        v.extend(root.iter().map(|s| (*s).to_owned()));
        v.extend(
            [
                "--root-threshold",
                threshold,
                "--targets-key",
                &t,
                "--bins-key",
                &t,
                "--online-key",
                "online-1.pub.json",
            ]
            .map(str::to_owned),
        );
        v
    };
    let init_case = |root: &[&str], threshold: &str, code: i32, says: &'static str| Case {
        args: init("new", root, threshold),
        passphrase: false,
        code,
        says,
    };
    let signed = |args: &[&str], code: i32, says: &'static str| Case {
        passphrase: true,
        ..case(args, code, says)
    };
    check(
        &cast,
        &[
            // 0: ok.
            case(&["--help"], 0, ""),
            case(&["verify", "--help"], 0, ""),
            // 2: the command line itself.
            case(&["frobnicate"], 2, "unrecognized subcommand"),
            case(&["sign", "ceremony"], 2, "required"),
            case(
                &["sign", "ceremony", "snapshot", "--key", "keys/alice.key", "--yes"],
                2,
                "neither root, targets, bins",
            ),
            case(&["resign", "ceremony", "timestamp"], 2, "not an offline role"),
            case(
                &["resign", "ceremony", "root", "--bins-threshold", "2"],
                2,
                "only apply to `resign targets`",
            ),
            case(
                &["rotate-root", "ceremony", "--root-threshold", "0"],
                2,
                "a threshold of 0",
            ),
            case(
                &["rotate-root", "ceremony", "--expires-days", "0"],
                2,
                "not between 1 and 3650",
            ),
            case(
                &[
                    "sign",
                    "ceremony",
                    "root",
                    "--key",
                    "keys/alice.key",
                    "--pkcs11-module",
                    "x.so",
                    "--pkcs11-token",
                    "t",
                    "--pkcs11-key",
                    "k",
                ],
                2,
                "cannot be used with",
            ),
            init_case(
                &[&a, &b],
                "3",
                2,
                "root threshold 3 is more than the 2 root key(s)",
            ),
            init_case(&[&a], "0", 2, "a threshold of 0"),
            signed(
                &["sign", "ceremony", "root", "--key", "keys/alice.key"],
                2,
                "sign needs a confirmation",
            ),
            // 3: status while signatures are missing.
            case(&["status", "ceremony"], 3, ""),
            // 1: found while working.
            init_case(&[&a, &a], "1", 1, "is listed twice for role `root`"),
            init_case(
                &["keys/alice.key"],
                "1",
                1,
                "is an encrypted tufa-ceremony key file",
            ),
            init_case(&["missing.pub.json"], "1", 1, "missing.pub.json"),
            case(&["status", "nowhere"], 1, "no ceremony.json"),
            signed(
                &["sign", "ceremony", "root", "--key", "keys/tgt.key", "--yes"],
                1,
                "not authorised",
            ),
            signed(
                &[
                    "sign",
                    "ceremony",
                    "2.root.json",
                    "--key",
                    "keys/alice.key",
                    "--yes",
                ],
                1,
                "`pending/2.root.json` does not exist",
            ),
            case(&["publish", "ceremony", "--out", "out"], 1, "cannot publish"),
            case(&["rotate-root", "ceremony"], 1, "still pending"),
            case(&["discard", "ceremony", "3.bins.json"], 1, "does not exist"),
            case(&["verify", "ceremony"], 1, "no root metadata"),
        ],
    );
    assert!(!work.join("new").exists());
    assert!(!work.join("out").exists());

    cast.sign("ceremony", "root", "alice");
    cast.sign("ceremony", "root", "bob");
    cast.sign("ceremony", "targets", "tgt");
    cast.sign("ceremony", "bins", "binsholder");
    check(
        &cast,
        &[
            case(&["status", "ceremony"], 0, ""),
            case(&["publish", "ceremony", "--out", "out"], 0, ""),
            case(&["status", "ceremony"], 0, ""),
            case(&["verify", "ceremony"], 0, ""),
            // Nothing pending: a failure, not a usage error.
            signed(
                &["sign", "ceremony", "root", "--key", "keys/alice.key", "--yes"],
                1,
                "nothing pending for root",
            ),
            case(&["publish", "ceremony", "--out", "out2"], 1, "nothing pending"),
            case(&["discard", "ceremony", "root"], 1, "nothing pending for root"),
            case(
                &["rotate-root", "ceremony", "--remove-root-key", "zoe"],
                1,
                "no key `zoe` among the root keys of root v1",
            ),
            case(
                &["rotate-root", "ceremony", "--root-threshold", "4"],
                1,
                "root threshold 4 is more than the 3 root key(s)",
            ),
            case(
                &[
                    "resign",
                    "ceremony",
                    "targets",
                    "--add-bins-key",
                    &a,
                    "--add-bins-key",
                    &a,
                ],
                1,
                "is listed twice for role `bins`",
            ),
        ],
    );
}

#[test]
fn messages_name_the_key_the_file_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let cast = Cast::new(tmp.path());
    let work = &cast.work;
    for h in ["alice", "tgt"] {
        cast.keygen(h);
    }
    let (_, online) = cast.online_key(1);
    let (a, t) = (cast.public("alice"), cast.public("tgt"));
    let alice_id = tufa_ceremony::PublicKeyFile::read(&work.join(&a)).unwrap().keyid;
    let init = |root: &[&str], online_key: &str| -> Run {
        let mut args = vec!["init", "c", "--root-key"];
        args.extend(root);
        args.extend([
            "--root-threshold",
            "1",
            "--targets-key",
            &t,
            "--bins-key",
            &t,
            "--online-key",
            online_key,
        ]);
        run(work, &args, None)
    };

    // The same key twice: named by key id, holder and file.
    let r = init(&[&a, &a], &online);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        format!(
            "error: key `{}…` (holder `alice`, from `keys/alice.key.pub.json`) is listed twice for role `root`; give each key once",
            &alice_id.to_hex()[..8]
        )
    );

    // The mirror's private online key: bring its public part, made on the mirror host; no
    // `.pub.json` that does not exist is suggested.
    let r = init(&[&a], "mirror/online-1.json");
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        "error: `mirror/online-1.json` is the mirror's private online key (tufa's plaintext key file); the ceremony needs only its public part: on the mirror host run `tufa --config /path/tufa.toml online-key show --public-out online.pub.json` and bring that file"
    );

    // A ceremony key file: its .pub.json when it exists, else how to write one.
    let r = init(&["keys/alice.key"], &online);
    assert!(
        r.stderr
            .contains("pass its public key file `keys/alice.key.pub.json` instead"),
        "{}",
        r.stderr
    );
    std::fs::create_dir(work.join("usb")).unwrap();
    std::fs::copy(work.join("keys/alice.key"), work.join("usb/alice.key")).unwrap();
    let r = init(&["usb/alice.key"], &online);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(
            "`usb/alice.key` is an encrypted tufa-ceremony key file (a private key); write its public key file with `tufa-ceremony export-public usb/alice.key --out usb/alice.key.pub.json` and pass that instead"
        ),
        "{}",
        r.stderr
    );

    // The online key among the offline keys.
    let r = init(&[&a, &online], &online);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("is also given as a root key") && r.stderr.contains("from `online-1.pub.json`"),
        "{}",
        r.stderr
    );
    assert!(!work.join("c").exists());

    // --help says where the online key's public part comes from, and the exit codes.
    let help = run_ok(work, &["init", "--help"], None);
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "tufa --config /path/tufa.toml online-key generate --public-out FILE",
        "tufa --config /path/tufa.toml online-key show --public-out FILE",
    ] {
        assert!(flat.contains(needle), "{needle} in:\n{help}");
    }
    assert!(!flat.contains("export-public"), "{help}");
    let help = run_ok(work, &["--help"], None);
    assert!(
        help.contains("Exit codes: 0 ok, 1 failure, 2 usage, 3 (status only) signatures still missing."),
        "{help}"
    );
    let help = run_ok(work, &["status", "--help"], None);
    assert!(
        help.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains("3 signatures still missing"),
        "{help}"
    );
    let help = run_ok(work, &["sign", "--help"], None);
    assert!(help.contains("--yes"), "{help}");
}
