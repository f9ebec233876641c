//! Signature thresholds and the repository verifier against tampered repositories.

use std::collections::BTreeMap;

use jiff::SignedDuration;
use tufa_tuf::metadata::tags::TimestampType;
use tufa_tuf::{
    Ed25519Signer, MetaFile, RoleKeys, SPEC_VERSION, Signature, Signed, Signer, TargetFile, TargetPath,
    Targets, Timestamp, TufError, VerifyFailure, VerifyOptions, sign_metadata, verify_repository,
    verify_signed,
};

use crate::fixture::{DEFAULT_TARGETS, Repo, now};

fn timestamp_meta() -> Timestamp {
    Timestamp {
        type_: TimestampType,
        spec_version: SPEC_VERSION.into(),
        version: 7,
        expires: tufa_tuf::parse_expires("2040-01-01T00:00:00Z").unwrap(),
        meta: BTreeMap::from([("snapshot.json".into(), MetaFile::new(3))]),
    }
}

struct ThreeKeys {
    signers: Vec<Ed25519Signer>,
    keys: BTreeMap<tufa_tuf::KeyId, tufa_tuf::Key>,
    role: RoleKeys,
}

fn two_of_three() -> ThreeKeys {
    let signers: Vec<Ed25519Signer> = (0..3).map(|_| Ed25519Signer::generate()).collect();
    let keys = signers.iter().map(|s| (s.keyid(), s.key().clone())).collect();
    let role = RoleKeys {
        keyids: signers.iter().map(Signer::keyid).collect(),
        threshold: 2,
    };
    ThreeKeys { signers, keys, role }
}

fn threshold_error(r: Result<(), TufError>) -> (usize, String) {
    match r {
        Err(TufError::Threshold { valid, threshold, .. }) => {
            assert_eq!(threshold, 2);
            let msg = r.unwrap_err().to_string();
            (valid, msg)
        }
        Err(e) => panic!("expected a threshold error, got {e}"),
        Ok(()) => panic!("expected a threshold error, got Ok"),
    }
}

#[test]
fn two_of_three_needs_two_distinct_authorised_signatures() {
    let k = two_of_three();
    let [a, b, c] = [&k.signers[0], &k.signers[1], &k.signers[2]];

    let ok = sign_metadata(timestamp_meta(), &[a, b]).unwrap();
    verify_signed("timestamp", &ok, &k.keys, &k.role).unwrap();
    let ok = sign_metadata(timestamp_meta(), &[c, a, b]).unwrap();
    verify_signed("timestamp", &ok, &k.keys, &k.role).unwrap();

    // One valid signature of a 2-of-3 role is not enough; the error names role and version.
    let one = sign_metadata(timestamp_meta(), &[a]).unwrap();
    let err = verify_signed("timestamp", &one, &k.keys, &k.role).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("role `timestamp` v7: 1 valid signature(s)"),
        "{msg}"
    );
    assert!(msg.contains(&format!("no signature by `{}`", b.keyid())), "{msg}");
}

#[test]
fn finding_08_duplicate_signature_key_ids_are_refused_not_counted() {
    let k = two_of_three();
    let a = &k.signers[0];
    let mut dup = sign_metadata(timestamp_meta(), &[a]).unwrap();
    dup.signatures.push(dup.signatures[0].clone());
    // Two signatures by one key id never reach a 2-of-3 threshold: the metadata is refused,
    // as the specification requires (key ids in `signatures` are unique) and python-tuf does.
    match verify_signed("timestamp", &dup, &k.keys, &k.role) {
        Err(TufError::DuplicateSignature { keyid, version, .. }) => {
            assert_eq!(keyid, a.keyid().to_string());
            assert_eq!(version, 7);
        }
        other => panic!("expected a duplicate-signature error, got {other:?}"),
    }
}

/// `key` listed a second time under another id: the same public key with an extension field
/// (whose canonical hash, so its key id, differs).
fn same_key_other_id(key: &tufa_tuf::Key) -> tufa_tuf::Key {
    key.clone()
        .with_field("x-second-listing", serde_json::json!("same public key"))
        .unwrap()
}

#[test]
fn finding_08_one_public_key_under_two_key_ids_counts_once() {
    let a = Ed25519Signer::generate();
    let alias = same_key_other_id(a.key());
    assert_ne!(alias.key_id(), a.keyid());
    let keys = BTreeMap::from([(a.keyid(), a.key().clone()), (alias.key_id(), alias.clone())]);
    let role = RoleKeys {
        keyids: vec![a.keyid(), alias.key_id()],
        threshold: 2,
    };
    // One signature, presented under both ids: both verify, but it is one key.
    let mut signed = sign_metadata(timestamp_meta(), &[&a]).unwrap();
    signed.signatures.push(Signature {
        keyid: alias.key_id(),
        sig: signed.signatures[0].sig.clone(),
    });
    let (valid, msg) = threshold_error(verify_signed("timestamp", &signed, &keys, &role));
    assert_eq!(valid, 1);
    assert!(msg.contains("is the same public key as"), "{msg}");

    // A second, really distinct key meets the threshold.
    let b = Ed25519Signer::generate();
    let mut keys = keys;
    keys.insert(b.keyid(), b.key().clone());
    let role = RoleKeys {
        keyids: vec![a.keyid(), alias.key_id(), b.keyid()],
        threshold: 2,
    };
    let both = sign_metadata(timestamp_meta(), &[&a, &b]).unwrap();
    verify_signed("timestamp", &both, &keys, &role).unwrap();
}

/// A root whose root role lists `root_keys` (threshold `threshold`), signed by `signatures`
/// (key id, signer) pairs, as file bytes.
fn hand_made_root(
    root_keys: &[tufa_tuf::Key],
    threshold: u32,
    signatures: &[(tufa_tuf::KeyId, &Ed25519Signer)],
) -> Vec<u8> {
    let online = Ed25519Signer::generate();
    // Built with stand-in keys (the builder refuses a public key listed twice), then the root
    // role is given `root_keys` as a hostile ceremony would write it by hand.
    let stand_ins: Vec<tufa_tuf::Key> = root_keys
        .iter()
        .map(|_| Ed25519Signer::generate().key().clone())
        .collect();
    let keys = tufa_tuf::build::RootKeys {
        root: tufa_tuf::build::RoleKeySet::new(stand_ins.clone(), threshold),
        targets: tufa_tuf::build::RoleKeySet::single(online.key().clone()),
        snapshot: tufa_tuf::build::RoleKeySet::single(online.key().clone()),
        timestamp: tufa_tuf::build::RoleKeySet::single(online.key().clone()),
    };
    let mut root =
        tufa_tuf::build::new_root(&keys, 1, tufa_tuf::parse_expires("2040-01-01T00:00:00Z").unwrap())
            .unwrap();
    for k in &stand_ins {
        root.keys.remove(&k.key_id());
    }
    root.keys
        .extend(root_keys.iter().map(|k| (k.key_id(), k.clone())));
    root.roles.get_mut("root").unwrap().keyids = root_keys.iter().map(tufa_tuf::Key::key_id).collect();
    let mut signed = sign_metadata(root, &[]).unwrap();
    let payload = signed.signed_bytes().unwrap();
    for (keyid, signer) in signatures {
        signed.signatures.push(Signature {
            keyid: *keyid,
            sig: hex::encode(signer.sign(&payload).unwrap()),
        });
    }
    signed.to_bytes().unwrap()
}

#[test]
fn finding_08_a_root_listing_one_key_twice_with_threshold_2_is_not_met_by_one_signature() {
    let a = Ed25519Signer::generate();
    let alias = same_key_other_id(a.key());
    let bytes = hand_made_root(
        &[a.key().clone(), alias.clone()],
        2,
        &[(a.keyid(), &a), (alias.key_id(), &a)],
    );
    let err = tufa_tuf::verify_trusted_root("1.root.json", &bytes).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("role `root` v1: 1 valid signature(s) from authorised keys, threshold is 2"),
        "{msg}"
    );
    assert!(msg.contains("same public key"), "{msg}");
    // The same through the whole-repository walk.
    let meta: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let failure = verify_repository(&bytes, &meta, &options()).unwrap_err();
    assert!(
        failure.problems[0].to_string().contains("threshold is 2"),
        "{failure}"
    );

    // Two distinct keys: the same shape verifies.
    let b = Ed25519Signer::generate();
    let good = hand_made_root(
        &[a.key().clone(), b.key().clone()],
        2,
        &[(a.keyid(), &a), (b.keyid(), &b)],
    );
    tufa_tuf::verify_trusted_root("1.root.json", &good).unwrap();
}

#[test]
fn finding_08_key_ids_must_be_the_canonical_hash_of_their_key() {
    let a = Ed25519Signer::generate();
    let b = Ed25519Signer::generate();
    let bytes = hand_made_root(
        &[a.key().clone(), b.key().clone()],
        2,
        &[(a.keyid(), &a), (b.keyid(), &b)],
    );
    tufa_tuf::verify_trusted_root("1.root.json", &bytes).unwrap();
    // The issue's reproduction: key `a` listed a second time, under a made-up id, in the keys
    // map and the root role; both "signatures" are a's.
    let fake = tufa_tuf::KeyId::from(tufa_pypi::Sha256Digest::of(b"not a key"));
    let text = String::from_utf8(bytes).unwrap();
    let forged = text
        .replace(&b.keyid().to_string(), &fake.to_string())
        .replace(&b.key().keyval.public, &a.key().keyval.public);
    let err = tufa_tuf::verify_trusted_root("1.root.json", forged.as_bytes()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "key `{fake}`: the key id is not the sha256 of the key's canonical JSON (that is `{}`)",
            a.keyid()
        )),
        "{msg}"
    );
}

#[test]
fn finding_08_builders_refuse_one_public_key_listed_twice() {
    let a = Ed25519Signer::generate();
    let set = tufa_tuf::build::RoleKeySet::new(vec![a.key().clone(), same_key_other_id(a.key())], 2);
    let keys = tufa_tuf::build::RootKeys {
        root: set,
        targets: tufa_tuf::build::RoleKeySet::single(a.key().clone()),
        snapshot: tufa_tuf::build::RoleKeySet::single(a.key().clone()),
        timestamp: tufa_tuf::build::RoleKeySet::single(a.key().clone()),
    };
    let err = tufa_tuf::build::new_root(&keys, 1, tufa_tuf::parse_expires("2040-01-01T00:00:00Z").unwrap())
        .unwrap_err();
    assert!(
        err.to_string().contains("the same public key is listed twice"),
        "{err}"
    );
}

#[test]
fn finding_08_key_ids_of_keys_with_extension_fields_include_them() {
    // As securesystemslib: the key id is over the whole key object, unknown fields included,
    // and the fields survive a parse and re-serialisation.
    let json = r#"{"keytype":"ed25519","scheme":"ed25519","keyid_hash_algorithms":"md5",
        "keyval":{"public":"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"},
        "x-extra":{"b":2,"a":[1,"x"]}}"#;
    let key: tufa_tuf::Key = serde_json::from_str(json).unwrap();
    let canonical = r#"{"keyid_hash_algorithms":"md5","keytype":"ed25519","keyval":{"public":"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"},"scheme":"ed25519","x-extra":{"a":[1,"x"],"b":2}}"#;
    assert_eq!(
        key.key_id(),
        tufa_tuf::KeyId::from(tufa_pypi::Sha256Digest::of(canonical.as_bytes()))
    );
    assert_eq!(
        tufa_tuf::canonical::to_canonical(&key).unwrap(),
        canonical.as_bytes()
    );
    // A float has no canonical form, so no key id: refused when parsed.
    let float = json.replace(r#""b":2"#, r#""b":2.5"#);
    let err = serde_json::from_str::<tufa_tuf::Key>(&float).unwrap_err();
    assert!(err.to_string().contains("x-extra"), "{err}");
}

#[test]
fn signatures_by_unknown_or_unauthorised_keys_are_ignored() {
    let k = two_of_three();
    let a = &k.signers[0];
    let outsider = Ed25519Signer::generate();

    // The outsider's key is not listed anywhere.
    let signed = sign_metadata(timestamp_meta(), &[a, &outsider]).unwrap();
    let (valid, msg) = threshold_error(verify_signed("timestamp", &signed, &k.keys, &k.role));
    assert_eq!(valid, 1);
    assert!(msg.contains("not authorised"), "{msg}");

    // Listed among the keys, but not one of the role's key ids: still does not count.
    let mut keys = k.keys.clone();
    keys.insert(outsider.keyid(), outsider.key().clone());
    let (valid, _) = threshold_error(verify_signed("timestamp", &signed, &keys, &k.role));
    assert_eq!(valid, 1);

    // Authorised key id, but its key is missing from the key map: does not count.
    let mut role = k.role.clone();
    role.keyids.push(outsider.keyid());
    let (valid, msg) = threshold_error(verify_signed("timestamp", &signed, &k.keys, &role));
    assert_eq!(valid, 1);
    assert!(msg.contains("is not listed"), "{msg}");
}

#[test]
fn a_signature_over_other_bytes_or_by_another_key_does_not_count() {
    let k = two_of_three();
    let [a, b] = [&k.signers[0], &k.signers[1]];
    let mut signed = sign_metadata(timestamp_meta(), &[a, b]).unwrap();
    // b's slot carries a's signature.
    signed.signatures[1] = Signature {
        keyid: b.keyid(),
        sig: signed.signatures[0].sig.clone(),
    };
    let (valid, msg) = threshold_error(verify_signed("timestamp", &signed, &k.keys, &k.role));
    assert_eq!(valid, 1);
    assert!(
        msg.contains(&format!("signature by `{}` does not verify", b.keyid())),
        "{msg}"
    );

    // Changing the signed content invalidates both.
    let mut changed = sign_metadata(timestamp_meta(), &[a, b]).unwrap();
    changed.signed.version = 8;
    let (valid, _) = threshold_error(verify_signed("timestamp", &changed, &k.keys, &k.role));
    assert_eq!(valid, 0);

    // Garbage in `sig` is just an invalid signature.
    let mut garbage = sign_metadata(timestamp_meta(), &[a, b]).unwrap();
    garbage.signatures[1].sig = "zz".into();
    let (valid, _) = threshold_error(verify_signed("timestamp", &garbage, &k.keys, &k.role));
    assert_eq!(valid, 1);
}

fn options() -> VerifyOptions {
    VerifyOptions::new(now())
}

fn verify(repo: &Repo) -> Result<tufa_tuf::VerifiedRepository, VerifyFailure> {
    verify_repository(repo.root_bytes(), &repo.meta, &options())
}

fn problems(repo: &Repo) -> Vec<String> {
    match verify(repo) {
        Ok(_) => panic!("expected problems, the repository verified"),
        Err(f) => {
            eprintln!("{f}");
            f.problems.iter().map(ToString::to_string).collect()
        }
    }
}

#[test]
fn a_good_repository_verifies_with_every_target_in_its_bin() {
    let mut repo = Repo::new(4, DEFAULT_TARGETS);
    repo.rotate_root(&[1, 2], &[0, 2]);
    let verified = verify(&repo).unwrap();
    assert_eq!(verified.root.version, 2);
    assert_eq!(verified.timestamp.version, 1);
    assert_eq!(verified.snapshot.version, 1);
    assert_eq!(verified.roles.len(), 2 + 16, "{:?}", verified.roles.keys());
    assert_eq!(verified.targets.len(), DEFAULT_TARGETS.len());
    for (path, data) in DEFAULT_TARGETS {
        let path = TargetPath::new(path).unwrap();
        let t = &verified.targets[&path];
        assert_eq!(t.role, repo.layout.role_for(&path));
        t.file.verify(path.as_str(), data).unwrap();
    }
}

#[test]
fn the_default_layout_verifies_too() {
    let repo = Repo::new(14, DEFAULT_TARGETS);
    let verified = verify(&repo).unwrap();
    assert_eq!(verified.roles.len(), 2 + 16_384);
    assert!(verified.roles.contains_key("bin-3fff"));
    assert_eq!(verified.targets.len(), DEFAULT_TARGETS.len());
}

#[test]
fn a_target_in_the_wrong_bin_is_rejected() {
    let mut repo = Repo::new(4, DEFAULT_TARGETS);
    let misplaced = TargetPath::new("simple/evil/index.html").unwrap();
    let right = repo.layout.bin_for(&misplaced);
    let wrong = (right + 1) % repo.layout.bin_count();
    // Properly signed with the online key, listed in snapshot: only the placement is wrong.
    let targets = BTreeMap::from([(misplaced.clone(), TargetFile::from_data(b"evil"))]);
    repo.put_bin(wrong, targets, 2);
    repo.publish_snapshot_and_timestamp();
    let problems = problems(&repo);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let expected = format!(
        "target `{misplaced}` is in role `{}`, but that role is not delegated this path (its path hashes to `{}`)",
        repo.layout.role_name(wrong),
        repo.layout.role_name(right)
    );
    assert_eq!(problems[0], expected);
}

#[test]
fn a_bin_modified_without_its_key_is_rejected() {
    let mut repo = Repo::new(4, DEFAULT_TARGETS);
    let victim = TargetPath::new("simple/demo/index.html").unwrap();
    let name = repo.layout.role_for(&victim);
    let file = format!("1.{name}.json");
    let text = String::from_utf8(repo.meta[&file].clone()).unwrap();
    let evil_hash = tufa_pypi::Sha256Digest::of(b"evil").to_hex();
    let parsed = Signed::<Targets>::from_bytes(&file, text.as_bytes()).unwrap();
    let old = parsed.metadata.signed.targets[&victim].hashes["sha256"].clone();
    repo.put(&file, text.replace(&old, &evil_hash).into_bytes());
    let problems = problems(&repo);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!(
            "role `{name}` v1: 0 valid signature(s) from authorised keys, threshold is 1"
        )),
        "{}",
        problems[0]
    );
}

#[test]
fn finding_07_a_bin_copied_under_the_next_version_name_is_refused() {
    let mut repo = Repo::new(4, DEFAULT_TARGETS);
    let name = repo.layout.role_name(3);
    // Snapshot says v2 and `2.bin-3.json` exists, but it is the v1 metadata (a replay).
    let old = repo.meta[&format!("1.{name}.json")].clone();
    repo.put(&format!("2.{name}.json"), old);
    repo.bin_versions.insert(name.clone(), 2);
    repo.publish_snapshot_and_timestamp();
    let problems = problems(&repo);
    assert_eq!(
        problems,
        vec![format!(
            "`2.{name}.json` is signed as version 1, but its file name says version 2"
        )]
    );
}

#[test]
fn a_missing_bin_is_reported_with_its_file_name() {
    let mut repo = Repo::new(4, DEFAULT_TARGETS);
    let name = repo.layout.role_name(0xa);
    repo.meta.remove(&format!("1.{name}.json"));
    assert_eq!(
        problems(&repo),
        vec![format!("metadata file `1.{name}.json` is missing")]
    );
}

#[test]
fn snapshot_must_match_the_hash_in_timestamp() {
    let mut repo = Repo::new(4, DEFAULT_TARGETS);
    let file = "1.snapshot.json".to_owned();
    let mut bytes = repo.meta[&file].clone();
    // Same length, different bytes: one hex digit of the signature changes.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let pos = text.find(r#""sig":""#).unwrap() + 7;
    bytes[pos] = if bytes[pos] == b'0' { b'1' } else { b'0' };
    repo.put(&file, bytes);
    let problems = problems(&repo);
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("`1.snapshot.json`: sha256 is "),
        "{}",
        problems[0]
    );
}

#[test]
fn expired_timestamp_is_rejected() {
    let repo = Repo::new(4, DEFAULT_TARGETS);
    let later = now().checked_add(SignedDuration::from_hours(25)).unwrap();
    let err = verify_repository(repo.root_bytes(), &repo.meta, &VerifyOptions::new(later)).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    let msg = err.problems[0].to_string();
    assert!(msg.starts_with("role `timestamp` v1 expired at "), "{msg}");
}

#[test]
fn root_rotation_needs_the_old_threshold_and_the_new_one() {
    // Only new keys sign: rejected, naming the old root's keys.
    let mut repo = Repo::new(4, DEFAULT_TARGETS);
    repo.rotate_root(&[], &[0, 1, 2]);
    let p = problems(&repo);
    assert!(
        p[0].starts_with("role `root` v2: 0 valid signature(s) from authorised keys, threshold is 2 counting the root keys of v1"),
        "{p:?}"
    );

    // One old key only: still short of the old threshold.
    let mut repo = Repo::new(4, DEFAULT_TARGETS);
    repo.rotate_root(&[0], &[0, 1, 2]);
    assert!(problems(&repo)[0].contains("1 valid signature(s)"));

    // Old keys only: the new root does not meet its own threshold.
    let mut repo = Repo::new(4, DEFAULT_TARGETS);
    repo.rotate_root(&[0, 1, 2], &[1]);
    let p = problems(&repo);
    assert!(
        p[0].contains("threshold is 2 counting the root keys of v2"),
        "{p:?}"
    );
}

#[test]
fn finding_07_a_root_copied_under_the_next_version_name_is_refused() {
    let mut repo = Repo::new(4, DEFAULT_TARGETS);
    let bytes = repo.rotate_root(&[0, 1], &[0, 1]);
    // Serve version 2 as `3.root.json` after a proper 2: the walk wants 3 and finds 2.
    repo.put("3.root.json", bytes.clone());
    assert_eq!(
        problems(&repo),
        vec!["`3.root.json` is signed as version 2, but its file name says version 3".to_owned()]
    );
    // The shared next-root check says the same to every caller.
    let v1 = Signed::<tufa_tuf::Root>::from_bytes("1.root.json", repo.root_bytes())
        .unwrap()
        .metadata
        .signed;
    let err = tufa_tuf::verify_next_root(&v1, "3.root.json", &bytes).unwrap_err();
    assert!(
        matches!(
            err,
            TufError::FileVersionMismatch {
                named: 3,
                signed: 2,
                ..
            }
        ),
        "{err}"
    );
    // Named right, but not the next version after the trusted one.
    let v0 = tufa_tuf::Root {
        version: 0,
        ..v1.clone()
    };
    let err = tufa_tuf::verify_next_root(&v0, "2.root.json", &bytes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "role `root`: expected version 1, found version 2"
    );
    tufa_tuf::verify_next_root(&v1, "2.root.json", &bytes).unwrap();
}

#[test]
fn finding_07_file_name_versions_are_checked_against_signed_versions() {
    let repo = Repo::new(4, DEFAULT_TARGETS);
    let v1 = &repo.meta["1.targets.json"];
    Signed::<Targets>::from_file("1.targets.json", v1).unwrap();
    Signed::<Targets>::from_file("import/1.targets.json", v1).unwrap();
    // Unversioned names carry no claim.
    Signed::<Targets>::from_file("targets.json", v1).unwrap();
    let err = Signed::<Targets>::from_file("export/2.targets.json", v1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`export/2.targets.json` is signed as version 1, but its file name says version 2"
    );
    assert_eq!(tufa_tuf::file_name_version("12.bin-0a1f.json"), Some(12));
    assert_eq!(tufa_tuf::file_name_version("timestamp.json"), None);
    assert_eq!(tufa_tuf::file_name_version("x.12.json"), None);
}

#[test]
fn duplicate_signatures_are_reported_as_python_tuf_refuses_them() {
    let mut repo = Repo::new(4, DEFAULT_TARGETS);
    let name = repo.layout.role_name(5);
    let file = format!("1.{name}.json");
    let mut parsed = Signed::<Targets>::from_bytes(&file, &repo.meta[&file])
        .unwrap()
        .metadata;
    parsed.signatures.push(parsed.signatures[0].clone());
    repo.put(&file, parsed.to_bytes().unwrap());
    let p = problems(&repo);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with(&format!("role `{name}` v1: more than one signature by key")),
        "{p:?}"
    );
}

#[test]
fn formatting_of_the_file_does_not_matter_only_the_signed_content() {
    let repo = Repo::new(4, DEFAULT_TARGETS);
    // python-tuf writes pretty-printed JSON by default; the signatures cover canonical JSON.
    let value: serde_json::Value = serde_json::from_slice(repo.root_bytes()).unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    assert_ne!(pretty, repo.root_bytes());
    let verified = verify_repository(&pretty, &repo.meta, &options()).unwrap();
    assert_eq!(verified.targets.len(), DEFAULT_TARGETS.len());
}
