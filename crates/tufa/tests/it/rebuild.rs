//! `tufa rebuild-index`: a writer that lost its index restores it from the store, and the next
//! sync and publish carry on as if nothing happened.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tufa_fake_upstream::{ReleaseSpec, demo_projects};

use crate::*;

const DEMO: [&str; 4] = ["demo-util", "demo-lib", "demo-app", "Foo.Bar_baz"];

/// `tufa init DIR --dev-keys` (INSECURE keys: TUF metadata from the first sync), 16 bins, fast
/// retries; a full mirror when `projects` is empty.
fn dev_keys_mirror(up: &FakeUpstream, projects: &[&str]) -> MirrorDir {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tufa();
    cmd.arg("init")
        .arg(dir.path())
        .args(["--dev-keys", "--upstream", &up.simple_url()]);
    for p in projects {
        cmd.arg("--project").arg(p);
    }
    cmd.assert().success();
    let m = MirrorDir { dir };
    let text = std::fs::read_to_string(m.config()).unwrap();
    let text = text
        .replace("bins_bit_length = 14", "bins_bit_length = 4")
        .replace("# retries = 4", "retries = 2")
        .replace("# retry_base_delay_ms = 500", "retry_base_delay_ms = 5");
    assert!(text.contains("bins_bit_length = 4") && text.contains("\nretries = 2"));
    std::fs::write(m.config(), text).unwrap();
    m
}

fn index_path(m: &MirrorDir) -> PathBuf {
    m.dir.path().join("data/index.redb")
}

/// The TUF role versions the index recorded (the index must exist; no tufa may be running).
fn roles(m: &MirrorDir) -> BTreeMap<String, (u64, i64)> {
    assert!(index_path(m).exists());
    tufa_index::Index::open(index_path(m))
        .unwrap()
        .tuf_roles()
        .unwrap()
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn tuf_files(m: &MirrorDir) -> BTreeMap<String, Vec<u8>> {
    files_under(&m.store().join("published/tuf"))
}

fn manifests(m: &MirrorDir) -> BTreeMap<String, Vec<u8>> {
    files_under(&m.store().join("published/projects"))
}

/// Role → the highest `N` of the `N.<role>.json` files (and timestamp.json's version).
fn newest_versions(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for (name, bytes) in files {
        if name == "timestamp.json" {
            let ts: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            out.insert("timestamp".into(), ts["signed"]["version"].as_u64().unwrap());
            continue;
        }
        let (v, rest) = name.split_once('.').unwrap();
        let role = rest.strip_suffix(".json").unwrap().to_owned();
        let v: u64 = v.parse().unwrap();
        let n = out.entry(role).or_default();
        *n = (*n).max(v);
    }
    out
}

fn run(m: &MirrorDir, args: &[&str]) -> std::process::Output {
    m.tufa(args).output().unwrap()
}

fn ok(m: &MirrorDir, args: &[&str]) -> String {
    let out = run(m, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "tufa {args:?}\nstdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn a_lost_index_is_rebuilt_then_sync_downloads_nothing_and_tuf_versions_continue() {
    let up = Upstream::start(demo_projects());
    // A full mirror (no allowlist): the upstream serial matters.
    let m = dev_keys_mirror(&up, &[]);
    ok(&m, &["sync"]);
    up.add_release("demo-util", ReleaseSpec::new("0.2"));
    let out = ok(&m, &["sync"]);
    assert!(out.contains("snapshot v2"), "{out}");
    let lost = roles(&m);
    let tuf_before = tuf_files(&m);
    let manifests_before = manifests(&m);

    std::fs::remove_file(index_path(&m)).unwrap();
    // A sync from the empty index would restart every TUF version: refused, naming the fix.
    let out = run(&m, &["sync"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is empty, but the store") && stderr(&out).contains("rebuild-index"),
        "{}",
        stderr(&out)
    );
    assert_eq!(tuf_files(&m), tuf_before, "the refused sync wrote TUF metadata");
    // So are refresh and import-metadata (which would take any export for a first import).
    let some_dir = m.dir.path().join("keys");
    for args in [
        vec!["refresh"],
        vec!["import-metadata", some_dir.to_str().unwrap()],
    ] {
        let out = run(&m, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("rebuild-index"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(tuf_files(&m), tuf_before);

    // The sync left an empty index: no --force needed.
    let out = ok(&m, &["rebuild-index"]);
    assert!(
        out.contains("4 projects, 14 files (7 wheel METADATA files)"),
        "{out}"
    );
    assert!(
        out.contains("TUF versions restored: root v1, targets v1, bins v1, snapshot v2, timestamp v2, 16 bin-n roles (newest v2); 0 bins to re-sign"),
        "{out}"
    );
    assert!(out.contains("upstream serial: unknown"), "{out}");
    assert_eq!(roles(&m), lost, "every role's version and expiry, bin-n included");
    let leftovers: Vec<_> = std::fs::read_dir(m.dir.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".rebuild-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The next sync lists upstream (the serial is unknown), reads every page, downloads
    // nothing and publishes nothing: no manifest and no TUF file changes.
    up.reset_counters();
    let out = ok(&m, &["sync"]);
    assert!(out.contains("synced 4 projects"), "{out}");
    assert!(
        out.contains("0 files downloaded (0 bytes), 14 already present"),
        "{out}"
    );
    assert!(
        out.contains("published 0 projects (0 unpublished, 4 unchanged), 0 wheel METADATA files extracted"),
        "{out}"
    );
    assert!(
        out.contains("TUF metadata unchanged (snapshot v2, timestamp v2)"),
        "{out}"
    );
    assert_eq!(up.file_downloads(), 0);
    assert_eq!(tuf_files(&m), tuf_before);
    assert_eq!(manifests(&m), manifests_before);
    let out = ok(&m, &["verify"]);
    assert!(out.contains("all blobs present and intact"), "{out}");

    // A new upstream release: every role signed now is above its newest version in the
    // store, and no published metadata file gets other bytes.
    up.add_release("demo-lib", ReleaseSpec::new("1.2"));
    let out = ok(&m, &["sync"]);
    assert!(out.contains("2 files downloaded"), "{out}");
    assert!(
        out.contains("snapshot v3") && out.contains("timestamp v3"),
        "{out}"
    );
    let tuf_after = tuf_files(&m);
    for (name, bytes) in &tuf_before {
        if name != "timestamp.json" {
            assert_eq!(&tuf_after[name], bytes, "{name} was rewritten");
        }
    }
    let (newest_before, newest_after) = (newest_versions(&tuf_before), newest_versions(&tuf_after));
    let mut signed = 0;
    for (role, after) in &newest_after {
        let before = newest_before[role];
        if *after != before {
            assert!(*after > before, "{role}: v{after} after v{before}");
            signed += 1;
        }
    }
    assert!(
        signed >= 3,
        "at least a bin, the snapshot and the timestamp: {newest_after:?}"
    );
    let out = ok(&m, &["verify"]);
    assert!(out.contains("TUF: root v1, timestamp v3, snapshot v3"), "{out}");
}

#[test]
fn rebuild_index_refuses_an_index_with_projects_unless_forced() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &DEMO);
    ok(&m, &["sync"]);
    let out = run(&m, &["rebuild-index"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&index_path(&m).display().to_string())
            && err.contains("already holds projects")
            && err.contains("rebuild-index --force"),
        "{err}"
    );

    // A file an interrupted rebuild left is cleaned up.
    let leftover = m.dir.path().join("data/index.redb.rebuild-4242");
    std::fs::write(&leftover, b"half a database").unwrap();
    let out = ok(&m, &["rebuild-index", "--force"]);
    assert!(out.contains("4 projects, 12 files"), "{out}");
    assert!(out.contains("TUF: no metadata published"), "{out}");
    assert!(out.contains("allowlist mode reads every listed page"), "{out}");
    assert!(!leftover.exists());

    // Allowlist mode: each page is read again, its upstream URLs recorded, nothing published.
    let before = manifests(&m);
    let out = ok(&m, &["sync"]);
    assert!(
        out.contains("0 files downloaded (0 bytes), 12 already present"),
        "{out}"
    );
    assert!(
        out.contains("published 0 projects (0 unpublished, 4 unchanged)"),
        "{out}"
    );
    assert_eq!(manifests(&m), before);
}

#[test]
fn rebuild_index_names_a_corrupt_page_and_restores_the_rest() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &DEMO);
    ok(&m, &["sync"]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.store().join("published/projects/demo-lib.json")).unwrap())
            .unwrap();
    let page = manifest["json"]["raw"]["sha256"].as_str().unwrap().to_owned();
    std::fs::write(m.blob_path(&page), b"{\"not\": \"the page\"}").unwrap();

    let out = run(&m, &["rebuild-index", "--force"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("demo-lib: JSON page: blob {page} is corrupt")) && err.contains("skipped"),
        "{err}"
    );
    assert!(err.contains("1 problem(s)"), "{err}");
    assert!(stdout(&out).contains("3 projects"), "{}", stdout(&out));
    let index = tufa_index::Index::open(index_path(&m)).unwrap();
    let names: Vec<String> = index
        .project_names()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, ["demo-app", "demo-util", "foo-bar-baz"]);
}

#[test]
fn rebuild_index_from_an_s3_bucket() {
    let server = tufa_testkit::shared_s3();
    let bucket = tufa_testkit::unique_bucket();
    let env = server.env();
    let with_env = |mut cmd: assert_cmd::Command| {
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd
    };
    let up = Upstream::start(demo_projects());
    let dir = tempfile::tempdir().unwrap();
    let mut init = with_env(tufa());
    init.arg("init").arg(dir.path()).args([
        "--dev-keys",
        "--upstream",
        &up.simple_url(),
        "--storage",
        &format!("s3://{bucket}/mirror"),
    ]);
    for p in DEMO {
        init.args(["--project", p]);
    }
    init.assert().success();
    let m = MirrorDir { dir };
    let text = std::fs::read_to_string(m.config()).unwrap();
    std::fs::write(
        m.config(),
        text.replace("bins_bit_length = 14", "bins_bit_length = 4"),
    )
    .unwrap();
    let s3 = |args: &[&str]| with_env(m.tufa(args)).output().unwrap();
    let ok = |args: &[&str]| {
        let out = s3(args);
        assert_eq!(out.status.code(), Some(0), "tufa {args:?}: {}", stderr(&out));
        stdout(&out)
    };
    ok(&["sync"]);
    let lost = roles(&m);
    assert!(!m.store().exists(), "the blobs are in the bucket, not on disk");

    std::fs::remove_file(index_path(&m)).unwrap();
    let out = ok(&["rebuild-index"]);
    assert!(
        out.contains(&format!("from s3://{bucket}/mirror: 4 projects")),
        "{out}"
    );
    assert!(out.contains("4 projects, 12 files"), "{out}");
    assert_eq!(roles(&m), lost);
    let out = ok(&["sync"]);
    assert!(
        out.contains("0 files downloaded (0 bytes), 12 already present"),
        "{out}"
    );
    assert!(
        out.contains("TUF metadata unchanged (snapshot v1, timestamp v1)"),
        "{out}"
    );
    up.add_release("demo-app", ReleaseSpec::new("1.1"));
    let out = ok(&["sync"]);
    assert!(
        out.contains("snapshot v2") && out.contains("timestamp v2"),
        "{out}"
    );
    let out = ok(&["verify"]);
    assert!(out.contains("TUF: root v1, timestamp v2, snapshot v2"), "{out}");
}
