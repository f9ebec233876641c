//! Conformance with python-tuf: bin assignment, key ids, signed payloads, and a real
//! `ngclient.Updater` refreshing and downloading from a repository built by this crate.

use std::path::Path;

use tufa_pypi::Sha256Digest;
use tufa_tuf::{BinLayout, Metadata, Signer};

use crate::fixture::{DEFAULT_TARGETS, Repo};
use crate::python;

const SUCCINCT_SCRIPT: &str = r#"
import json, sys
from tuf.api.metadata import SuccinctRoles
cases = json.load(open(sys.argv[1], encoding="utf-8"))
for bits in cases["bit_lengths"]:
    roles = SuccinctRoles(keyids=[], threshold=1, bit_length=bits, name_prefix="bin")
    names = list(roles.get_roles())
    print(json.dumps({"bits": bits, "count": len(names), "first": names[0], "last": names[-1],
                      "for": [roles.get_role_for_target(p) for p in cases["paths"]]}))
"#;

#[test]
fn bins_match_python_tuf_succinct_roles() {
    let python = python::require();
    let paths = [
        "simple/demo/index.html",
        "simple/demo/index.json",
        "simple/requests/index.html",
        "files/2c/26/b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae/demo-1.0-py3-none-any.whl",
        "files/2c/26/b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae/demo-1.0-py3-none-any.whl.metadata",
        "files/9f/86/d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08/demo-1.0.tar.gz",
        "a",
        "ünïcödé/päth ☃",
    ];
    let bit_lengths = [1u8, 2, 3, 4, 5, 8, 10, 13, 14, 15, 16];
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.json");
    std::fs::write(
        &cases,
        serde_json::to_vec(&serde_json::json!({"bit_lengths": bit_lengths, "paths": paths})).unwrap(),
    )
    .unwrap();
    let out = python::run_ok(&python, SUCCINCT_SCRIPT, &[cases.to_str().unwrap()]);
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), bit_lengths.len());
    for (bits, line) in bit_lengths.iter().zip(&lines) {
        let layout = BinLayout::new(*bits).unwrap();
        assert_eq!(line["bits"], u64::from(*bits));
        assert_eq!(line["count"], u64::from(layout.bin_count()));
        assert_eq!(line["first"], layout.role_name(0).as_str());
        assert_eq!(line["last"], layout.role_name(layout.bin_count() - 1).as_str());
        for (i, p) in paths.iter().enumerate() {
            let ours = layout.role_name(layout.bin_for_str(p));
            assert_eq!(line["for"][i], ours.as_str(), "bit_length {bits}, path {p}");
        }
    }
    // The default layout's names, as the design fixes them.
    assert_eq!(lines[8]["first"], "bin-0000");
    assert_eq!(lines[8]["last"], "bin-3fff");
}

const INSPECT_SCRIPT: &str = r#"
import hashlib, json, os, sys
from securesystemslib.formats import encode_canonical
from tuf.api.metadata import Metadata
from tuf.api.serialization.json import CanonicalJSONSerializer
tuf_dir = sys.argv[1]
out = {"payload_sha256": {}, "keyids": {}}
loaded = {}
for name in sorted(os.listdir(tuf_dir)):
    with open(os.path.join(tuf_dir, name), "rb") as f:
        md = Metadata.from_bytes(f.read())
    loaded[name] = md
    out["payload_sha256"][name] = hashlib.sha256(CanonicalJSONSerializer().serialize(md.signed)).hexdigest()
root = loaded["1.root.json"]
for keyid, key in root.signed.keys.items():
    d = {"keytype": key.keytype, "scheme": key.scheme, "keyval": key.keyval}
    out["keyids"][keyid] = hashlib.sha256(encode_canonical(d).encode("utf-8")).hexdigest()
# Signature thresholds as python-tuf's own verify_delegate sees them.
root.verify_delegate("root", root)
snap_version = loaded["timestamp.json"].signed.snapshot_meta.version
root.verify_delegate("timestamp", loaded["timestamp.json"])
snapshot = loaded[f"{snap_version}.snapshot.json"]
root.verify_delegate("snapshot", snapshot)
targets = loaded[f"{snapshot.signed.meta['targets.json'].version}.targets.json"]
root.verify_delegate("targets", targets)
bins = loaded[f"{snapshot.signed.meta['bins.json'].version}.bins.json"]
targets.verify_delegate("bins", bins)
checked = 0
for role in bins.signed.delegations.succinct_roles.get_roles():
    md = loaded[f"{snapshot.signed.meta[role + '.json'].version}.{role}.json"]
    bins.verify_delegate(role, md)
    checked += 1
out["bins_verified"] = checked
print(json.dumps(out))
"#;

#[test]
fn python_tuf_loads_and_verifies_every_role() {
    let python = python::require();
    let repo = Repo::new(4, DEFAULT_TARGETS);
    let dir = tempfile::tempdir().unwrap();
    repo.write_to(dir.path());
    let out = python::run_ok(
        &python,
        INSPECT_SCRIPT,
        &[dir.path().join("tuf").to_str().unwrap()],
    );
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["bins_verified"], 16);

    // Our signed payload is byte-identical to python-tuf's canonical serialisation.
    for (name, bytes) in &repo.meta {
        let parsed = Metadata::from_bytes(name, bytes).unwrap();
        let payload = match &parsed {
            Metadata::Root(m) => &m.payload,
            Metadata::Targets(m) => &m.payload,
            Metadata::Snapshot(m) => &m.payload,
            Metadata::Timestamp(m) => &m.payload,
        };
        assert_eq!(
            report["payload_sha256"][name],
            Sha256Digest::of(payload).to_hex(),
            "payload of {name}"
        );
    }
    // Key ids: ours equal sha256(encode_canonical(key)) as securesystemslib computes it.
    let ids = report["keyids"].as_object().unwrap();
    assert_eq!(
        ids.len(),
        5,
        "3 root keys + 1 targets key + 1 online key (shared by snapshot/timestamp)"
    );
    for (listed, recomputed) in ids {
        assert_eq!(listed, recomputed.as_str().unwrap());
    }
    for signer in repo
        .keys
        .root
        .iter()
        .chain([&repo.keys.targets, &repo.keys.online])
    {
        assert!(ids.contains_key(&signer.keyid().to_string()));
    }
}

const UPDATER_SCRIPT: &str = r#"
import functools, http.server, os, sys, threading
from tuf.ngclient import Updater

repo_dir, client_dir = sys.argv[1], sys.argv[2]
paths = sys.argv[3:]

class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=repo_dir))
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_address[1]}"
metadata_dir = os.path.join(client_dir, "metadata")
target_dir = os.path.join(client_dir, "targets")
os.makedirs(metadata_dir, exist_ok=True)
os.makedirs(target_dir, exist_ok=True)
with open(os.path.join(repo_dir, "tuf", "1.root.json"), "rb") as f:
    trust_anchor = f.read()
failures = 0
try:
    updater = Updater(metadata_dir=metadata_dir, metadata_base_url=f"{base}/tuf/",
                      target_dir=target_dir, target_base_url=f"{base}/targets/",
                      bootstrap=trust_anchor)
    updater.refresh()
    print("REFRESHED root", updater._trusted_set.root.version, flush=True)
    for path in paths:
        try:
            info = updater.get_targetinfo(path)
            if info is None:
                print("NOTFOUND", path, flush=True)
                failures += 1
                continue
            local = updater.download_target(info)
            with open(local, "rb") as f:
                print("OK", path, len(f.read()), flush=True)
        except Exception as e:
            print("ERROR", path, type(e).__name__, str(e).replace("\n", " "), flush=True)
            failures += 1
except Exception as e:
    print("REFRESH-ERROR", type(e).__name__, str(e).replace("\n", " "), flush=True)
    failures += 1
finally:
    server.shutdown()
sys.exit(1 if failures else 0)
"#;

struct UpdaterRun {
    success: bool,
    stdout: String,
}

fn run_updater(python: &Path, repo_dir: &Path, client_dir: &Path, paths: &[&str]) -> UpdaterRun {
    let mut args = vec![repo_dir.to_str().unwrap(), client_dir.to_str().unwrap()];
    args.extend_from_slice(paths);
    let out = python::run(python, UPDATER_SCRIPT, &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- ngclient stdout:\n{stdout}--- ngclient stderr:\n{stderr}");
    UpdaterRun {
        success: out.status.success(),
        stdout,
    }
}

#[test]
fn ngclient_refreshes_and_downloads_every_target() {
    let python = python::require();
    let mut repo = Repo::new(4, DEFAULT_TARGETS);
    // Exercise root rotation too: 2.root.json with new root keys, signed 2-of-3 by old and new.
    repo.rotate_root(&[0, 2], &[0, 1]);
    let dir = tempfile::tempdir().unwrap();
    repo.write_to(dir.path());
    let paths: Vec<&str> = DEFAULT_TARGETS.iter().map(|(p, _)| *p).collect();

    let run = run_updater(&python, dir.path(), &dir.path().join("client"), &paths);
    assert!(run.success, "ngclient failed:\n{}", run.stdout);
    assert!(run.stdout.contains("REFRESHED root 2"), "{}", run.stdout);
    for (path, data) in DEFAULT_TARGETS {
        assert!(
            run.stdout.contains(&format!("OK {path} {}", data.len())),
            "{path} not downloaded:\n{}",
            run.stdout
        );
    }
    // An unknown target is not found (and is not an error of the repository).
    let run = run_updater(
        &python,
        dir.path(),
        &dir.path().join("client2"),
        &["simple/nope/index.html"],
    );
    assert!(
        run.stdout.contains("NOTFOUND simple/nope/index.html"),
        "{}",
        run.stdout
    );
}

#[test]
fn ngclient_rejects_a_tampered_target() {
    let python = python::require();
    let repo = Repo::new(4, DEFAULT_TARGETS);
    let dir = tempfile::tempdir().unwrap();
    repo.write_to(dir.path());
    let victim = "simple/demo/index.html";
    let file = repo.target_file_on_disk(dir.path(), victim);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 0x20; // same length, different content
    std::fs::write(&file, bytes).unwrap();

    let run = run_updater(
        &python,
        dir.path(),
        &dir.path().join("client"),
        &[victim, "simple/demo/index.json"],
    );
    assert!(!run.success);
    assert!(
        run.stdout
            .contains(&format!("ERROR {victim} LengthOrHashMismatchError")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("OK simple/demo/index.json"), "{}", run.stdout);
}

#[test]
fn ngclient_rejects_a_bin_signed_by_the_wrong_key() {
    let python = python::require();
    let mut repo = Repo::new(4, DEFAULT_TARGETS);
    let victim = tufa_tuf::TargetPath::new("simple/demo/index.html").unwrap();
    let n = repo.layout.bin_for(&victim);
    // An attacker without the online key re-signs the victim's bin with a key of their own.
    let attacker = tufa_tuf::Ed25519Signer::generate();
    let name = repo.layout.role_name(n);
    let file = format!("1.{name}.json");
    let mut parsed = tufa_tuf::Signed::<tufa_tuf::Targets>::from_bytes(&file, &repo.meta[&file])
        .unwrap()
        .metadata;
    parsed.signed.version = 2;
    parsed.signatures.clear();
    parsed.add_signature(&attacker).unwrap();
    repo.put(&format!("2.{name}.json"), parsed.to_bytes().unwrap());
    repo.bin_versions.insert(name, 2);
    repo.publish_snapshot_and_timestamp();
    let dir = tempfile::tempdir().unwrap();
    repo.write_to(dir.path());
    let run = run_updater(
        &python,
        dir.path(),
        &dir.path().join("client"),
        &[victim.as_str()],
    );
    assert!(!run.success);
    assert!(
        run.stdout
            .contains(&format!("ERROR {victim} UnsignedMetadataError")),
        "{}",
        run.stdout
    );
}

const KEYID_SCRIPT: &str = r#"
import hashlib, json, sys
from securesystemslib.formats import encode_canonical
from tuf.api.metadata import Key
# As tuf-conformance's recalculate_keyid: sha256 of the canonical key dict, extensions included.
for line in open(sys.argv[1], encoding="utf-8"):
    key = Key.from_dict("unused", json.loads(line))
    print(hashlib.sha256(encode_canonical(key.to_dict()).encode("utf-8")).hexdigest())
"#;

#[test]
fn finding_08_key_ids_match_securesystemslib_with_extension_fields() {
    let python = python::require();
    let public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let keys = [
        format!(r#"{{"keytype":"ed25519","scheme":"ed25519","keyval":{{"public":"{public}"}}}}"#),
        format!(
            r#"{{"keytype":"ed25519","scheme":"ed25519","keyval":{{"public":"{public}"}},"keyid_hash_algorithms":"md5"}}"#
        ),
        format!(
            r#"{{"keytype":"ed25519","scheme":"ed25519","keyval":{{"public":"{public}"}},"extra-field":{{"a":1,"b":2}},"x-é":"☃\"\\"}}"#
        ),
        format!(
            r#"{{"keytype":"ed25519","scheme":"ed25519","keyval":{{"public":"{public}","x-inner":[true,null,-3]}}}}"#
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("keys.jsonl");
    std::fs::write(&input, keys.join("\n") + "\n").unwrap();
    let out = python::run_ok(&python, KEYID_SCRIPT, &[input.to_str().unwrap()]);
    let theirs: Vec<&str> = out.lines().collect();
    assert_eq!(theirs.len(), keys.len());
    for (json, expected) in keys.iter().zip(theirs) {
        let key: tufa_tuf::Key = serde_json::from_str(json).unwrap();
        assert_eq!(key.key_id().to_string(), expected, "{json}");
    }
}
