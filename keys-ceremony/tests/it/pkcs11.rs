//! A root key inside a PKCS#11 token (SoftHSM2 standing in for a YubiKey or an HSM), driven
//! through the binary's `--pkcs11-*` options.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` when the module loads; the binary runs as a child process,
//! so each run gets the test's own config and token directory. Without SoftHSM2 the test fails
//! with the setup hint (`.ci/setup-softhsm.sh`); it never skips.

use std::path::{Path, PathBuf};

use crate::support::{Cast, Run, passphrase_of, run_env, run_ok};

const TOKEN: &str = "ceremony";
const PIN: &str = "5678";

/// A SoftHSM2 config with one initialised token, under `dir`.
fn softhsm(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let conf = tufa_testkit::softhsm_config(dir);
    tufa_testkit::softhsm_init_token(&conf, TOKEN, "1234", PIN);
    conf
}

#[test]
fn root_key_in_a_pkcs11_token_signs_in_the_ceremony() {
    let module = tufa_testkit::softhsm_module();
    let tmp = tempfile::tempdir().unwrap();
    let cast = Cast::new(tmp.path());
    let work = &cast.work;
    let conf = softhsm(&work.join("hsm"));
    let conf = conf.to_str().unwrap();
    let module = module.to_str().unwrap();
    let token_args = |key: &'static str| -> Vec<String> {
        [
            "--pkcs11-module",
            module,
            "--pkcs11-token",
            TOKEN,
            "--pkcs11-key",
            key,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    let hsm = |args: Vec<String>, pin: &str| -> Run {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_env(work, &args, &[("SOFTHSM2_CONF", conf), ("TUFA_PKCS11_PIN", pin)])
    };

    let mut keygen = vec![
        "keygen".to_owned(),
        "--out".into(),
        "keys/hsm.pub.json".into(),
        "--holder".into(),
        "hsm".into(),
    ];
    keygen.extend(token_args("root-hsm"));
    let r = hsm(keygen, PIN);
    assert!(r.ok(), "{}", r.stderr);
    assert!(
        r.stdout
            .contains("inside PKCS#11 token `ceremony` (not extractable)"),
        "{}",
        r.stdout
    );

    for h in ["alice", "tgt", "binsholder"] {
        cast.keygen(h);
    }
    let (_, online) = cast.online_key(1);
    let (alice, tgt, bins) = (
        cast.public("alice"),
        cast.public("tgt"),
        cast.public("binsholder"),
    );
    run_ok(
        work,
        &[
            "init",
            "c",
            "--root-key",
            "keys/hsm.pub.json",
            &alice,
            "--root-threshold",
            "2",
            "--targets-key",
            &tgt,
            "--bins-key",
            &bins,
            "--online-key",
            &online,
            "--bins-bit-length",
            "4",
        ],
        None,
    );

    let sign = |role: &str| {
        let mut v = vec!["sign".to_owned(), "c".into(), role.to_owned(), "--yes".into()];
        v.extend(token_args("root-hsm"));
        v
    };
    // A wrong PIN is a clear error; the token key is not authorised for targets.
    let r = hsm(sign("root"), "0000");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot log in to PKCS#11 token `ceremony`"),
        "{}",
        r.stderr
    );
    let r = hsm(sign("targets"), PIN);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("is not authorised to sign `pending/1.targets.json`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("(hsm)"), "{}", r.stderr);

    let r = hsm(sign("root"), PIN);
    assert!(r.ok(), "{}", r.stderr);
    assert!(r.stdout.contains("(hsm) to pending/1.root.json"), "{}", r.stdout);
    let r = hsm(sign("root"), PIN);
    assert!(r.stderr.contains("already carries a signature"), "{}", r.stderr);

    cast.sign("c", "root", "alice");
    cast.sign("c", "targets", "tgt");
    cast.sign("c", "bins", "binsholder");
    run_ok(work, &["publish", "c", "--out", "out"], None);
    let verified = run_ok(work, &["verify", "c"], None);
    assert!(verified.contains("root: threshold 2 of 2 (hsm "), "{verified}");
    assert_ne!(passphrase_of("alice"), PIN);
}
