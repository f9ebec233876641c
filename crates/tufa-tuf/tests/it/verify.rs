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
fn duplicate_signatures_by_one_key_count_once() {
    let k = two_of_three();
    let a = &k.signers[0];
    let mut dup = sign_metadata(timestamp_meta(), &[a]).unwrap();
    dup.signatures.push(dup.signatures[0].clone());
    let (valid, _) = threshold_error(verify_signed("timestamp", &dup, &k.keys, &k.role));
    assert_eq!(valid, 1);
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
fn snapshot_version_must_match_the_bin() {
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
        vec![format!("role `{name}`: expected version 2, found version 1")]
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
fn root_versions_must_follow_one_another() {
    let mut repo = Repo::new(4, DEFAULT_TARGETS);
    let bytes = repo.rotate_root(&[0, 1], &[0, 1]);
    // Serve version 2 as `3.root.json` after a proper 2: the walk wants 3 and finds 2.
    repo.put("3.root.json", bytes);
    assert_eq!(
        problems(&repo),
        vec!["role `root`: expected version 3, found version 2".to_owned()]
    );
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
