//! TUF metadata (`tufa_tuf`): parsing every role type, and verifying a repository in which one
//! metadata file is replaced by fuzzed bytes.
//!
//! The first byte picks the mode and the file: the fixture's files (sorted by name), then
//! `2.root.json` (absent in the fixture: a fuzzed root rotation), then "the trusted root
//! itself". Asserts: no panic; parsed metadata written back parses to the same signed payload;
//! and the security property: with the fixture's root trusted, whatever the replaced file
//! holds, a verification that succeeds yields exactly the fixture's targets (lengths and
//! hashes). Nobody without the keys can change what verifies. The same property for the
//! client's state machine (`TrustedMetadata`, driven in the TUF workflow's order over the same
//! files): when every step trusts its file, the roles it trusted list exactly those targets.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tufa_fuzz::{TufRepo, tuf_repo};
use tufa_tuf::{
    Metadata, Role, RoleName, Root, Signed, Snapshot, TargetFile, TargetPath, Targets, Timestamp,
    TrustedMetadata, VerifyOptions, metadata_file_name, verify_repository,
};

fn fixture() -> &'static TufRepo {
    static REPO: OnceLock<TufRepo> = OnceLock::new();
    REPO.get_or_init(|| {
        let repo = tuf_repo();
        // The property below is only worth something if the untouched fixture verifies.
        let root = repo.files.get("1.root.json").cloned().unwrap_or_default();
        let verified = verify_repository(&root, &repo.files, &VerifyOptions::new(repo.now))
            .unwrap_or_else(|e| panic!("the untouched fixture must verify: {e}"));
        assert_eq!(verified.targets.len(), repo.targets.len());
        assert_eq!(
            client_targets(&root, &repo.files, repo.now).as_ref(),
            Some(&repo.targets),
            "the client must trust the untouched fixture's targets"
        );
        repo
    })
}

fn reparse<T: Role + serde::Serialize + serde::de::DeserializeOwned>(bytes: &[u8]) {
    let Ok(parsed) = Signed::<T>::from_bytes("fuzz", bytes) else {
        return;
    };
    let written = parsed
        .metadata
        .to_bytes()
        .unwrap_or_else(|e| panic!("parsed metadata does not serialise: {e}"));
    let again = Signed::<T>::from_bytes("fuzz (rewritten)", &written).unwrap_or_else(|e| {
        panic!(
            "rewritten metadata does not parse: {e}\n{}",
            String::from_utf8_lossy(&written)
        )
    });
    // The model drops fields it does not know (finding: python-tuf keeps them as
    // `unrecognized_fields`), so a rewrite equals the received payload only without them;
    // signatures are always checked over the received payload, never the rewrite.
    let model = parsed.metadata.signed_bytes().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.payload, model, "the signed payload changed when rewritten");
    if parsed.payload != model {
        let received: serde_json::Value = match serde_json::from_slice(&parsed.payload) {
            Ok(received) => received,
            // Canonical JSON (what TUF signs) writes control characters in strings raw; strict
            // JSON refuses them, so such a payload cannot be compared field by field here.
            Err(e) => {
                assert!(
                    std::str::from_utf8(&parsed.payload).is_ok_and(has_raw_control_in_string),
                    "received payload is not JSON for another reason: {e}"
                );
                return;
            }
        };
        assert!(
            has_unknown_field(&received, &serde_json::from_slice(&model).unwrap_or_default()),
            "payload differs from the model without an unknown field"
        );
    }
    assert_eq!(again.metadata.signed.version(), parsed.metadata.signed.version());
}

/// True when a JSON string in `text` holds a raw control character (canonical JSON allows
/// them, strict JSON does not).
fn has_raw_control_in_string(text: &str) -> bool {
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                c if c < ' ' => return true,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        }
    }
    false
}

/// True when `received` holds an object key that `model` lacks at the same place (or a value
/// the model could not keep as is).
fn has_unknown_field(received: &serde_json::Value, model: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (received, model) {
        (Value::Object(r), Value::Object(m)) => r
            .iter()
            .any(|(k, v)| m.get(k).is_none_or(|mv| has_unknown_field(v, mv))),
        (Value::Array(r), Value::Array(m)) => {
            r.len() != m.len() || r.iter().zip(m).any(|(a, b)| has_unknown_field(a, b))
        }
        (r, m) => r != m,
    }
}

/// The client workflow over `files` from `trusted`: root rotation, timestamp, snapshot, then
/// every targets role breadth-first. `None` as soon as a step refuses its file.
fn client_targets(
    trusted: &[u8],
    files: &BTreeMap<String, Vec<u8>>,
    now: jiff::Timestamp,
) -> Option<BTreeMap<TargetPath, TargetFile>> {
    let mut t = TrustedMetadata::new(trusted, now).ok()?;
    let mut next = t.root().version + 1;
    while let Some(bytes) = files.get(&format!("{next}.root.json")) {
        t.update_root(&format!("{next}.root.json"), bytes).ok()?;
        next += 1;
    }
    t.update_timestamp(files.get("timestamp.json")?).ok()?;
    let consistent = t.root().consistent_snapshot;
    let snap = metadata_file_name(
        &RoleName::snapshot(),
        t.timestamp()?.snapshot_meta().ok()?.version,
        consistent,
    );
    t.update_snapshot(&snap, files.get(&snap)?, false).ok()?;
    let mut found = BTreeMap::new();
    let mut queue = vec![(RoleName::targets(), RoleName::root())];
    let mut seen = std::collections::BTreeSet::new();
    while let Some((role, delegator)) = queue.pop() {
        if !seen.insert(role.clone()) || seen.len() > 4096 {
            continue;
        }
        let file = metadata_file_name(&role, t.snapshot_meta(&role).ok()?.version, consistent);
        let targets = t
            .update_delegated_targets(&file, files.get(&file)?, &role, &delegator)
            .ok()?;
        for (path, info) in &targets.targets {
            found.entry(path.clone()).or_insert_with(|| info.clone());
        }
        if let Some(d) = &targets.delegations {
            if let Some(list) = &d.roles {
                queue.extend(list.iter().map(|r| (r.name.clone(), role.clone())));
            } else if let Some(succinct) = &d.succinct_roles {
                let layout = succinct.layout().ok()?;
                queue.extend(layout.all_roles().map(|r| (r, role.clone())));
            }
        }
    }
    Some(found)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, fuzzed)) = data.split_first() else {
        return;
    };
    let _ = Metadata::from_bytes("fuzz", fuzzed);
    reparse::<Root>(fuzzed);
    reparse::<Targets>(fuzzed);
    reparse::<Snapshot>(fuzzed);
    reparse::<Timestamp>(fuzzed);

    let repo = fixture();
    let mut names: Vec<&str> = repo.files.keys().map(String::as_str).collect();
    names.push("2.root.json");
    let slot = selector as usize % (names.len() + 1);
    let mut files: BTreeMap<String, Vec<u8>> = repo.files.clone();
    let mut trusted = repo.files.get("1.root.json").cloned().unwrap_or_default();
    let replaces_trust_anchor = slot == names.len();
    if replaces_trust_anchor {
        trusted = fuzzed.to_vec();
    } else {
        files.insert(names[slot].to_owned(), fuzzed.to_vec());
    }
    let result = verify_repository(&trusted, &files, &VerifyOptions::new(repo.now));
    let client = client_targets(&trusted, &files, repo.now);
    if replaces_trust_anchor {
        return; // Trusting the attacker's root proves nothing; it only must not crash.
    }
    if let Some(found) = client {
        assert_eq!(
            found, repo.targets,
            "replacing `{}` changed what the client trusts",
            names[slot]
        );
    }
    if let Ok(verified) = result {
        let found: BTreeMap<_, _> = verified.targets.into_iter().map(|(p, t)| (p, t.file)).collect();
        assert_eq!(
            found, repo.targets,
            "replacing `{}` changed the verified targets",
            names[slot]
        );
    }
});
