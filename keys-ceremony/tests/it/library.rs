//! The library API: revoking targets and bins keys, re-signing, thresholds, consistency checks
//! and the offline verifier.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp as Time;
use tufa_ceremony::{
    Ceremony, CeremonyError, ExpiryDays, Holders, InitOptions, KdfParams, KeySelector, KeySource, Passphrase,
    PassphraseSource, PendingSelector, PublicKeyFile, ResignTargetsOptions, RotateRootOptions, Threshold,
    generate_key_file,
};
use tufa_tuf::Ed25519Signer;
use tufa_tuf::Signer as _;

struct Keys {
    dir: PathBuf,
    public: BTreeMap<String, PublicKeyFile>,
}

impl Keys {
    fn new(dir: &Path, holders: &[&str]) -> Self {
        let mut keys = Self {
            dir: dir.to_owned(),
            public: BTreeMap::new(),
        };
        for h in holders {
            keys.add(h);
        }
        keys
    }

    fn add(&mut self, holder: &str) -> PublicKeyFile {
        let g = generate_key_file(
            &self.dir.join(format!("{holder}.key")),
            &holder.parse().unwrap(),
            &Passphrase::new(format!("{holder} passphrase")),
            KdfParams::default(),
        )
        .unwrap();
        self.public.insert(holder.to_owned(), g.public.clone());
        g.public
    }

    fn source(&self, holder: &str) -> KeySource {
        KeySource::File {
            path: self.dir.join(format!("{holder}.key")),
            passphrase: PassphraseSource::Value(Passphrase::new(format!("{holder} passphrase"))),
        }
    }

    fn get(&self, holder: &str) -> PublicKeyFile {
        self.public[holder].clone()
    }
}

fn t(n: u32) -> Threshold {
    Threshold::new(n).unwrap()
}

fn days(n: u32) -> ExpiryDays {
    ExpiryDays::new(n).unwrap()
}

fn role(s: &str) -> PendingSelector {
    s.parse().unwrap()
}

fn key(s: &str) -> KeySelector {
    s.parse().unwrap()
}

fn setup(dir: &Path, expires_days: u32) -> (Ceremony, Keys, Ed25519Signer) {
    let keys = Keys::new(dir, &["r1", "r2", "t1", "b1"]);
    let online = Ed25519Signer::generate();
    let opts = InitOptions {
        root_keys: vec![keys.get("r1"), keys.get("r2")],
        root_threshold: t(2),
        targets_keys: vec![keys.get("t1")],
        targets_threshold: t(1),
        bins_keys: vec![keys.get("b1")],
        bins_threshold: t(1),
        online_key: PublicKeyFile::new("online", online.key().clone()),
        bins_layout: tufa_tuf::BinLayout::new(14).unwrap(),
        expires_days: days(expires_days),
    };
    let (c, report) = Ceremony::init(&dir.join("c"), &opts, Time::now()).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    (c, keys, online)
}

fn sign(c: &Ceremony, keys: &Keys, which: &str, holders: &[&str]) {
    for h in holders {
        c.sign(role(which), &keys.source(h)).unwrap();
    }
}

#[test]
fn revoking_targets_and_bins_keys_and_resigning() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut c, mut keys, online) = setup(tmp.path(), 365);
    let now = Time::now();
    sign(&c, &keys, "root", &["r1", "r2"]);
    sign(&c, &keys, "targets", &["t1"]);
    sign(&c, &keys, "bins", &["b1"]);
    let out = tmp.path().join("out");
    c.publish(&out, now).unwrap();

    // Revoke targets key t1 in favour of t2: root v2 and targets v2 (signed by t2).
    let t2 = keys.add("t2");
    let report = c
        .rotate_root(
            &RotateRootOptions {
                add_targets_keys: vec![t2],
                remove_targets_keys: vec![key("t1")],
                ..RotateRootOptions::default()
            },
            now,
        )
        .unwrap();
    assert!(
        report.to_string().contains("created pending/2.targets.json"),
        "{report}"
    );
    let e = c.sign(role("targets"), &keys.source("t1")).unwrap_err();
    assert!(matches!(e, CeremonyError::NotAuthorised { .. }), "{e}");
    assert!(e.to_string().contains("the targets keys of root v2"), "{e}");
    sign(&c, &keys, "root", &["r1", "r2"]);
    let e = c.publish(&out, now).unwrap_err();
    assert!(e.to_string().contains("role `targets` v2"), "{e}");
    sign(&c, &keys, "targets", &["t2"]);
    c.publish(&out, now).unwrap();

    // Revoke bins key b1 in favour of b2: targets v3 and bins v2 (signed by b2).
    let b2 = keys.add("b2");
    let report = c
        .resign_targets(
            &ResignTargetsOptions {
                add_bins_keys: vec![b2],
                remove_bins_keys: vec![key(&keys.get("b1").keyid.to_hex()[..12])],
                ..ResignTargetsOptions::default()
            },
            now,
        )
        .unwrap();
    assert!(
        report.to_string().contains("created pending/2.bins.json"),
        "{report}"
    );
    sign(&c, &keys, "targets", &["t2"]);
    assert!(c.sign(role("bins"), &keys.source("b1")).is_err());
    sign(&c, &keys, "bins", &["b2"]);
    c.publish(&out, now).unwrap();

    // Plain re-signing before expiry.
    c.resign_bins(Some(days(200)), now).unwrap();
    sign(&c, &keys, "bins", &["b2"]);
    // Raise the root threshold to 3 of 3 with a third key.
    let r3 = keys.add("r3");
    c.rotate_root(
        &RotateRootOptions {
            add_root_keys: vec![r3],
            root_threshold: Some(t(3)),
            ..RotateRootOptions::default()
        },
        now,
    )
    .unwrap();
    sign(&c, &keys, "root", &["r1", "r3"]);
    let status = c.status(now).unwrap();
    assert!(!status.ready());
    let text = status.to_string();
    assert!(text.contains("the v2 root keys: 1 of 2"), "{text}");
    assert!(text.contains("the v3 root keys: 2 of 3"), "{text}");
    sign(&c, &keys, "root", &["r2"]);
    assert!(c.status(now).unwrap().ready());
    let report = c.publish(&out, now).unwrap();
    assert_eq!(
        report.files,
        [
            "1.root.json",
            "2.root.json",
            "3.root.json",
            "3.targets.json",
            "3.bins.json"
        ]
    );

    let verified = c.verify(now).unwrap().to_string();
    assert!(verified.contains("root chain: 3 version(s)"), "{verified}");
    assert!(verified.contains("root: threshold 3 of 3"), "{verified}");
    assert!(
        verified.contains(&format!(
            "16384 hashed bins to online {}",
            &online.keyid().to_hex()[..16]
        )),
        "{verified}"
    );
    // The output directory verifies on its own (as the mirror operator would check it).
    tufa_ceremony::verify_metadata_dir(&out, &Holders::default(), now).unwrap();
}

#[test]
fn publish_refuses_an_online_key_that_bins_does_not_delegate_to() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut c, keys, _) = setup(tmp.path(), 365);
    let now = Time::now();
    sign(&c, &keys, "root", &["r1", "r2"]);
    sign(&c, &keys, "targets", &["t1"]);
    sign(&c, &keys, "bins", &["b1"]);
    c.publish(&tmp.path().join("out"), now).unwrap();
    let new_online = Ed25519Signer::generate();
    c.rotate_root(
        &RotateRootOptions {
            online_key: Some(PublicKeyFile::new("online-2", new_online.key().clone())),
            ..RotateRootOptions::default()
        },
        now,
    )
    .unwrap();
    // Dropping the new bins leaves root and bins disagreeing about the online key.
    c.discard(role("2.bins.json")).unwrap();
    sign(&c, &keys, "root", &["r1", "r2"]);
    let e = c.publish(&tmp.path().join("out2"), now).unwrap_err();
    assert!(
        e.to_string().contains("the online key differs between root v2"),
        "{e}"
    );
    assert!(!tmp.path().join("out2").exists());
}

#[test]
fn verify_finds_tampering_and_expiring_roles() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, keys, _) = setup(tmp.path(), 10);
    let now = Time::now();
    sign(&c, &keys, "root", &["r1", "r2"]);
    sign(&c, &keys, "targets", &["t1"]);
    sign(&c, &keys, "bins", &["b1"]);
    let status = c.status(now).unwrap();
    assert!(status.ready());
    c.publish(&tmp.path().join("out"), now).unwrap();
    let report = c.verify(now).unwrap();
    assert_eq!(report.warnings.len(), 3, "{:?}", report.warnings);
    assert!(report.warnings[0].contains("re-sign it"), "{:?}", report.warnings);
    // Eleven days on, everything has expired.
    let later = now
        .checked_add(jiff::SignedDuration::from_hours(24 * 11))
        .unwrap();
    let e = c.verify(later).unwrap_err().to_string();
    assert!(e.contains("role `root` v1 expired"), "{e}");

    // Change one byte of the published targets: its signature no longer verifies.
    let path = c.dir().join("published/1.targets.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("\"terminating\":true", "\"terminating\":false"),
    )
    .unwrap();
    let e = c.verify(now).unwrap_err().to_string();
    assert!(
        e.contains("published/1.targets.json does not meet the targets threshold"),
        "{e}"
    );
}

#[test]
fn finding_08_one_public_key_under_two_key_ids_is_refused_and_counted_once() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = Keys::new(tmp.path(), &["r1", "t1", "b1"]);
    let r1 = keys.get("r1");
    let alias = r1
        .key
        .clone()
        .with_field("x-alias", serde_json::json!("r1 again"))
        .unwrap();
    // A 2-of-2 root whose two keys are one: init refuses it.
    let online = Ed25519Signer::generate();
    let opts = InitOptions {
        root_keys: vec![
            PublicKeyFile::new("r1", r1.key.clone()),
            PublicKeyFile::new("r1-alias", alias.clone()),
        ],
        root_threshold: t(2),
        targets_keys: vec![keys.get("t1")],
        targets_threshold: t(1),
        bins_keys: vec![keys.get("b1")],
        bins_threshold: t(1),
        online_key: PublicKeyFile::new("online", online.key().clone()),
        bins_layout: tufa_tuf::BinLayout::new(4).unwrap(),
        expires_days: days(30),
    };
    let err = Ceremony::init(&tmp.path().join("c"), &opts, Time::now()).unwrap_err();
    assert!(matches!(err, CeremonyError::Keys(_)), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "key `{}…` (holder `r1-alias`) is the same public key as key `{}…` (holder `r1`), listed twice for role `root` under two key ids; give each key once",
            &alias.key_id().to_hex()[..8],
            &r1.keyid.to_hex()[..8]
        )
    );

    // Written by hand and signed by r1 alone under both ids: the offline verifier counts one key.
    let r1_signer = Ed25519Signer::generate();
    let r1_alias = r1_signer
        .key()
        .clone()
        .with_field("x-alias", serde_json::json!(1))
        .unwrap();
    let stand_in = Ed25519Signer::generate();
    let year =
        tufa_tuf::build::expires_after(Time::now(), jiff::SignedDuration::from_hours(24 * 365)).unwrap();
    let single = |k: &tufa_tuf::Key| tufa_tuf::build::RoleKeySet::single(k.clone());
    let root_keys = tufa_tuf::build::RootKeys {
        root: tufa_tuf::build::RoleKeySet::new(vec![r1_signer.key().clone(), stand_in.key().clone()], 2),
        targets: single(online.key()),
        snapshot: single(online.key()),
        timestamp: single(online.key()),
    };
    let mut root = tufa_tuf::build::new_root(&root_keys, 1, year).unwrap();
    root.keys.remove(&stand_in.keyid());
    root.keys.insert(r1_alias.key_id(), r1_alias.clone());
    root.roles.get_mut("root").unwrap().keyids = vec![r1_signer.keyid(), r1_alias.key_id()];
    let mut signed = tufa_tuf::sign_metadata(root, &[&r1_signer]).unwrap();
    let sig = signed.signatures[0].sig.clone();
    signed.signatures.push(tufa_tuf::Signature {
        keyid: r1_alias.key_id(),
        sig,
    });
    let dir = tmp.path().join("export");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("1.root.json"), signed.to_bytes().unwrap()).unwrap();
    let err = tufa_ceremony::verify_metadata_dir(&dir, &Holders::default(), Time::now())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1 valid signature(s) from authorised keys, threshold is 2")
            && err.contains("same public key"),
        "{err}"
    );
}
