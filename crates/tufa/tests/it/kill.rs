//! `kill -9` in the middle of `tufa sync`: the next run converges, downloading only what is
//! missing, and `tufa verify` passes.

use std::process::{Child, Stdio};
use std::time::Instant;

use tufa_fake_upstream::{Fault, ProjectSpec, demo_projects};

use crate::*;

const ALL: [&str; 6] = [
    "demo-util",
    "demo-lib",
    "demo-app",
    "Foo.Bar_baz",
    "big",
    "bigger",
];

/// Kills the child when dropped, so a failing test never leaves a process behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn projects() -> Vec<ProjectSpec> {
    let mut p = demo_projects();
    p.push(ProjectSpec::new("big").release(big_release("1.0", 300)));
    p.push(
        ProjectSpec::new("bigger")
            .release(big_release("2.0", 500))
            .release(big_release("2.1", 200)),
    );
    p
}

/// Starts a full-mode `tufa sync` with two stalled files, SIGKILLs it once one blob is on
/// disk (`wait_for_all` false) or every blob of the projects without a stalled file (true),
/// then checks that a re-run converges.
fn killed_sync_converges(wait_for_all: bool) {
    let up = Upstream::start(projects());
    // No --project: full mirror, so the pending set is exercised too.
    let m = MirrorDir::init(&up, &[]);
    let files = upstream_files(&up, &ALL);
    let stalled = [
        up.filenames("big")
            .into_iter()
            .find(|f| f.ends_with(".whl"))
            .unwrap(),
        up.filenames("bigger")
            .into_iter()
            .find(|f| f.ends_with("2.1.tar.gz"))
            .unwrap(),
    ];
    for f in &stalled {
        assert!(up.file_bytes(f).unwrap().len() > 2048, "{f} fits in one chunk");
        up.set_file_fault(f, Fault::SlowBody { delay_ms: 30_000 });
    }
    // Blobs reach their addresses when their project's batch commits, so with two projects
    // stalled, every file of the others is the most that can be there (the stalled projects'
    // finished files are staged in tmp/, written but not committed, when the kill comes).
    let blobs_before_kill = if wait_for_all {
        files.len() - upstream_files(&up, &["big", "bigger"]).len()
    } else {
        1
    };

    let mut cmd = crate::tufa_process();
    cmd.arg("--config").arg(m.config()).arg("sync");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = KillOnDrop(cmd.spawn().unwrap());

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("tufa sync ended ({status}) although two files never finish");
        }
        if m.stored(&files) >= blobs_before_kill {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tufa sync stored only {} blobs",
            m.stored(&files)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.0.kill().unwrap(); // SIGKILL
    let status = child.0.wait().unwrap();
    assert!(!status.success());

    let present = survivors(&m, &up, &files);
    for f in &stalled {
        assert!(!m.blob_path(&up.file_sha256(f).unwrap()).exists(), "{f} stored");
    }
    let missing = files.len() - present.len();
    assert!(missing >= stalled.len());

    up.clear_faults();
    resync_fetches_only(&m, &up, &files, missing);

    let output = m.tufa(&["verify"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(verified_count(&output) >= files.len(), "{output:?}");
    assert!(
        stdout(&output).contains("all blobs present and intact"),
        "{output:?}"
    );

    // Converged: another run fetches nothing but the changelog.
    up.reset_counters();
    m.tufa(&["sync"]).assert().success();
    assert_eq!(up.requests(), ["POST /pypi"]);
}

#[test]
fn kill_9_after_the_first_blob_then_resync_converges() {
    killed_sync_converges(false);
}

/// The window between a batch's store commit (its blobs durable at their addresses) and its
/// index transaction: killed there, the re-run fetches none of those blobs again (only what
/// was still staged in tmp/) and records everything.
#[test]
fn kill_9_between_the_blob_commit_and_the_index_commit_then_resync_converges() {
    let up = Upstream::start(projects());
    let m = MirrorDir::init(&up, &[]);
    let files = upstream_files(&up, &ALL);
    let mut cmd = crate::tufa_process();
    cmd.arg("--config").arg(m.config()).arg("sync");
    cmd.env("TUFA_TEST_COMMIT_DELAY_MS", "60000");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    // The first batch's blobs are durable at their addresses, and the committer holds back
    // its index transaction (the other projects' blobs wait in tmp/ for the next batch).
    let deadline = Instant::now() + Duration::from_secs(30);
    while m.stored(&files) == 0 {
        assert!(child.0.try_wait().unwrap().is_none(), "tufa sync ended early");
        assert!(Instant::now() < deadline, "tufa sync stored no blob");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Let the whole batch land (its links are made one after the other).
    std::thread::sleep(Duration::from_millis(300));
    child.0.kill().unwrap();
    assert!(!child.0.wait().unwrap().success());
    let present = survivors(&m, &up, &files);

    // Durable but not recorded: found present, not fetched again; the rest fetched once.
    resync_fetches_only(&m, &up, &files, files.len() - present.len());
    let output = m.tufa(&["verify"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(verified_count(&output) >= files.len(), "{output:?}");
    up.reset_counters();
    m.tufa(&["sync"]).assert().success();
    assert_eq!(up.requests(), ["POST /pypi"], "converged");
}

#[test]
fn kill_9_with_downloads_in_flight_then_resync_converges() {
    // All but the two stalled files are stored; those two are half-way when killed.
    killed_sync_converges(true);
}

/// What survived a kill: complete, verified blobs of distribution files only (the publish
/// step, which adds page blobs, runs after the sync, which never finished).
fn survivors<'a>(m: &MirrorDir, up: &Upstream, files: &'a [(String, String)]) -> Vec<&'a (String, String)> {
    let present: Vec<&(String, String)> = files
        .iter()
        .filter(|(_, sha)| m.blob_path(sha).exists())
        .collect();
    for (f, sha) in &present {
        assert_eq!(
            std::fs::read(m.blob_path(sha)).unwrap(),
            up.file_bytes(f).unwrap(),
            "{f}"
        );
    }
    assert_eq!(
        m.blob_count(),
        present.len(),
        "a blob that is not an upstream file"
    );
    present
}

/// A re-run succeeds fetching exactly the `missing` files, and then every file is stored.
fn resync_fetches_only(m: &MirrorDir, up: &Upstream, files: &[(String, String)], missing: usize) {
    up.reset_counters();
    let output = m.tufa(&["sync"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(up.file_downloads(), missing, "{:#?}", up.requests());
    let out = stdout(&output);
    assert!(out.contains(&format!("{missing} files downloaded")), "{out}");
    assert_eq!(m.stored(files), files.len());
}
