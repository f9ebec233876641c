//! The single-writer lease through the real binary: a second writer (another config, its own
//! index, the same store) is refused naming the holder; a writer SIGKILLed mid-run leaves a
//! lease that a new writer takes over after the ttl, with `tufa verify` clean and no TUF
//! version reused; `tufa lease show|break`; a writer whose lease is broken stops (exit 1).
//!
//! The scenarios are functions of a [`LeaseStore`] (the storage URL, the environment, how to
//! read and write an object behind tufa's back), and run on the local disk and on S3 (moto).

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use tufa_fake_upstream::{Fault, ProjectSpec, demo_projects};

use crate::*;

/// Reads an object of the store by key (`published/tuf/timestamp.json`), if it exists.
pub type ReadObject = Box<dyn Fn(&str) -> Option<Vec<u8>>>;
/// Writes an object of the store behind tufa's back.
pub type WriteObject = Box<dyn Fn(&str, &[u8])>;

/// Where both writers' store lives.
pub struct LeaseStore {
    /// `[storage] url`, given to `tufa init --storage`.
    pub url: String,
    /// Environment for every `tufa` command (store credentials, endpoint).
    pub env: Vec<(String, String)>,
    pub read: ReadObject,
    pub write: WriteObject,
}

impl LeaseStore {
    /// A directory on the local disk.
    pub fn local(dir: &Path) -> Self {
        let root = dir.join("shared-store");
        let r = root.clone();
        Self {
            url: format!("file://{}", root.display()),
            env: Vec::new(),
            read: Box::new(move |key| std::fs::read(r.join(key)).ok()),
            write: Box::new(move |key, body| std::fs::write(root.join(key), body).unwrap()),
        }
    }

    /// A fresh bucket on the shared moto S3 server, prefix `mirror`; objects read and written
    /// behind tufa's back with boto3.
    pub fn s3() -> Self {
        let server = tufa_testkit::shared_s3();
        let bucket = tufa_testkit::unique_bucket();
        let url = format!("s3://{bucket}/mirror");
        let b = bucket.clone();
        Self {
            url,
            env: server.env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            read: Box::new(move |key| {
                tufa_testkit::shared_s3().get_object(&bucket, &format!("mirror/{key}"))
            }),
            write: Box::new(move |key, body| {
                tufa_testkit::shared_s3().put_object(&b, &format!("mirror/{key}"), body);
            }),
        }
    }

    fn read_tuf(&self, name: &str) -> Option<Vec<u8>> {
        (self.read)(&format!("published/tuf/{name}"))
    }

    /// Rewrites the lease's holder as a writer on another host (same pid), so that only its
    /// ttl lets the next writer in: what a writer host that died, seen from another, leaves.
    fn move_lease_holder_to_another_host(&self) {
        let bytes = (self.read)("lease/writer.json").expect("a lease object");
        let mut lease: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        lease["holder"]["host"] = "writer-host-that-died".into();
        lease["holder"].as_object_mut().unwrap().remove("pid_namespace");
        (self.write)("lease/writer.json", &serde_json::to_vec(&lease).unwrap());
    }
}

/// A writer: its own directory, config, index and (dev) keys; the store is shared.
struct Writer<'a> {
    m: MirrorDir,
    store: &'a LeaseStore,
}

impl<'a> Writer<'a> {
    /// `tufa init --dev-keys --storage URL`, 16 bins, fast retries, `[lease]` ttl 3 s renewed
    /// every second.
    fn init(up: &FakeUpstream, store: &'a LeaseStore, projects: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = tufa();
        cmd.envs(store.env.iter().map(|(k, v)| (k, v)));
        cmd.arg("init").arg(dir.path()).args([
            "--dev-keys",
            "--upstream",
            &up.simple_url(),
            "--storage",
            &store.url,
        ]);
        for p in projects {
            cmd.args(["--project", p]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let m = MirrorDir { dir };
        let text = std::fs::read_to_string(m.config()).unwrap();
        let text = text
            .replace("bins_bit_length = 14", "bins_bit_length = 4")
            .replace("# retries = 4", "retries = 2")
            .replace("# retry_base_delay_ms = 500", "retry_base_delay_ms = 5")
            .replace("# ttl_secs = 120", "ttl_secs = 3")
            .replace("# renew_secs = 30", "renew_secs = 1");
        assert!(
            text.contains("\nttl_secs = 3") && text.contains("\nrenew_secs = 1"),
            "{text}"
        );
        std::fs::write(m.config(), text).unwrap();
        Self { m, store }
    }

    fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = self.m.tufa(args);
        cmd.envs(self.store.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and expects exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "tufa {args:?}:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// `tufa sync` in the background.
    fn spawn_sync(&self) -> KillOnDrop {
        let mut cmd = crate::tufa_process();
        cmd.arg("--config").arg(self.m.config()).arg("sync");
        cmd.envs(self.store.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        KillOnDrop(Some(cmd.spawn().unwrap()))
    }

    /// Waits until `tufa lease show` names `pid` as the holder; returns the lease's token.
    fn wait_for_holder(&self, pid: u32) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.ok(&["lease", "show"]);
            if out.contains(&format!(", pid {pid}, started ")) {
                let token = out
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("token:"))
                    .unwrap_or_else(|| panic!("no token line: {out}"));
                return token.trim().to_owned();
            }
            assert!(Instant::now() < deadline, "pid {pid} never took the lease: {out}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Kills the child when dropped, so a failing test never leaves a process behind.
struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    /// Waits for the child to end by itself (at most `within`); its output.
    fn wait_output(mut self, within: Duration) -> std::process::Output {
        let mut child = self.0.take().unwrap();
        let deadline = Instant::now() + within;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the writer did not stop within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Upstream: the demo projects and `slow` 1.0, whose 2.0 (added later) has a stalled file.
fn upstream() -> Upstream {
    let mut projects = demo_projects();
    projects.push(ProjectSpec::new("slow").release(big_release("1.0", 50)));
    Upstream::start(projects)
}

const PROJECTS: [&str; 2] = ["demo-lib", "slow"];

/// Adds `slow` 2.0 upstream and stalls its files, so the next sync holds the lease for as
/// long as the test wants.
fn stall_a_new_release(up: &Upstream) -> Vec<String> {
    up.add_release("slow", big_release("2.0", 300));
    let stalled: Vec<String> = up
        .filenames("slow")
        .into_iter()
        .filter(|f| f.contains("2.0"))
        .collect();
    assert!(!stalled.is_empty());
    for f in &stalled {
        assert!(up.file_bytes(f).unwrap().len() > 2048, "{f} fits in one chunk");
        up.set_file_fault(f, Fault::SlowBody { delay_ms: 30_000 });
    }
    stalled
}

/// Waits until upstream has been asked for one of `files` (the writer is mid-download).
fn wait_for_download(up: &Upstream, files: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !up
        .requests()
        .iter()
        .any(|r| files.iter().any(|f| r.contains(f.as_str())))
    {
        assert!(
            Instant::now() < deadline,
            "no download started: {:?}",
            up.requests()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `(timestamp version, snapshot version)` from the published timestamp.json.
fn published_versions(store: &LeaseStore) -> (u64, u64) {
    let bytes = store
        .read_tuf("timestamp.json")
        .expect("timestamp.json is published");
    let ts: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let signed = &ts["signed"];
    (
        signed["version"].as_u64().unwrap(),
        signed["meta"]["snapshot.json"]["version"].as_u64().unwrap(),
    )
}

/// The second-writer, kill and takeover scenario on `store`.
pub fn second_writer_refused_then_takeover_after_kill(store: &LeaseStore) {
    let up = upstream();
    let a = Writer::init(&up, store, &PROJECTS);
    // B: another host's writer, configured on the same store with its own index (so redb's
    // lock on the index cannot be what stops it).
    let b = Writer::init(&up, store, &PROJECTS);
    a.ok(&["sync"]);
    let (ts_before, snap_before) = published_versions(store);
    let snapshot_name = format!("{snap_before}.snapshot.json");
    let snapshot_before = store.read_tuf(&snapshot_name).unwrap();
    assert!(a.ok(&["lease", "show"]).contains("no writer holds the store"));

    let stalled = stall_a_new_release(&up);
    let first = a.spawn_sync();
    let pid = first.pid();
    a.wait_for_holder(pid);
    wait_for_download(&up, &stalled);

    // The second writer is refused, naming the holder, for sync and refresh alike.
    for cmd in ["sync", "refresh"] {
        let out = b.run(&[cmd]);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", stderr(&out));
        let err = stderr(&out);
        let expected_host = tufa_store::lease::host_name();
        for part in [
            "error: the mirror's store is locked by another writer: host ",
            &format!("host {expected_host}, pid {pid}, since "),
            "lease expires at ",
            "takes it over after that",
            "lease object lease/writer.json",
        ] {
            assert!(err.contains(part), "{cmd}: {part:?} missing in {err}");
        }
    }

    // SIGKILL mid-run. On this host a new writer would see at once that the holder's process
    // is gone (`killed_writer_on_this_host_is_replaced_at_once`); as a writer host that died
    // looks from another host, the lease stays until its ttl, and a writer started at once is
    // refused.
    drop(first);
    store.move_lease_holder_to_another_host();
    let out = a.run(&["sync"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("host writer-host-that-died, pid {pid}, since ")),
        "{}",
        stderr(&out)
    );
    up.clear_faults();
    // After the ttl the next writer takes it over (here with the killed writer's index; a
    // new host restores its index first with rebuild-index, which takes the lease too).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !a.ok(&["lease", "show"]).contains("expired") {
        assert!(
            Instant::now() < deadline,
            "the killed writer's lease never expired"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = a.run(&["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("took over an expired writer lease"),
        "{}",
        stderr(&out)
    );
    assert!(
        a.ok(&["lease", "show"]).contains("no writer holds the store"),
        "released"
    );

    // No TUF version reused: both moved on, and the old snapshot file is untouched.
    let (ts_after, snap_after) = published_versions(store);
    assert!(ts_after > ts_before, "timestamp v{ts_before} -> v{ts_after}");
    assert!(
        snap_after > snap_before,
        "snapshot v{snap_before} -> v{snap_after}"
    );
    assert_eq!(
        store.read_tuf(&snapshot_name).unwrap(),
        snapshot_before,
        "{snapshot_name} was rewritten"
    );
    let out = a.ok(&["verify"]);
    assert!(
        out.contains(&format!(
            "TUF: root v1, timestamp v{ts_after}, snapshot v{snap_after}"
        )),
        "{out}"
    );
}

/// `lease show` and `lease break`, and a writer whose lease is broken under it stops.
pub fn broken_lease_stops_the_writer(store: &LeaseStore) {
    let up = upstream();
    let a = Writer::init(&up, store, &PROJECTS);
    a.ok(&["sync"]);
    let (ts_before, _) = published_versions(store);
    let stalled = stall_a_new_release(&up);
    let first = a.spawn_sync();
    let pid = first.pid();
    let token = a.wait_for_holder(pid);
    wait_for_download(&up, &stalled);
    let shown = a.ok(&["lease", "show"]);
    assert!(shown.contains("lease lease/writer.json in "), "{shown}");
    assert!(shown.contains("unless renewed"), "{shown}");

    let out = a.run(&["lease", "break", "0123abcd"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("the lease now has token {token}, not 0123abcd")),
        "{}",
        stderr(&out)
    );
    let out = a.run(&["lease", "break", &token]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "removed the lease of host {}, pid {pid}",
            tufa_store::lease::host_name()
        )),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("had not expired"), "{}", stderr(&out));

    // The running writer's next renewal finds the lease gone: it stops, exit 1, publishing
    // nothing more.
    let out = first.wait_output(Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("error: this writer lost the store's single-writer lease (lease/writer.json)")
            && err.contains("stopped without publishing anything further"),
        "{err}"
    );
    assert_eq!(
        published_versions(store).0,
        ts_before,
        "published after losing the lease"
    );

    let out = a.run(&["lease", "break", &token]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no writer holds the store"),
        "{}",
        stderr(&out)
    );
    up.clear_faults();
    a.ok(&["sync"]);
    assert!(published_versions(store).0 > ts_before);
}

/// A writer SIGKILLed on this host: the next writer here sees its process is gone and takes
/// the lease at once, without waiting for the ttl.
pub fn killed_writer_on_this_host_is_replaced_at_once(store: &LeaseStore) {
    let up = upstream();
    let a = Writer::init(&up, store, &PROJECTS);
    a.ok(&["sync"]);
    let text = std::fs::read_to_string(a.m.config()).unwrap();
    std::fs::write(a.m.config(), text.replace("ttl_secs = 3", "ttl_secs = 600")).unwrap();
    let stalled = stall_a_new_release(&up);
    let first = a.spawn_sync();
    let pid = first.pid();
    a.wait_for_holder(pid);
    wait_for_download(&up, &stalled);
    drop(first); // SIGKILL, reaped
    up.clear_faults();
    let out = a.run(&["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("took over the writer lease of a process on this host that is gone")
            && stderr(&out).contains(&format!("pid={pid}")),
        "{}",
        stderr(&out)
    );
    a.ok(&["verify"]);
}

#[test]
fn lease_killed_writer_on_this_host_is_replaced_at_once_on_local_disk() {
    let dir = tempfile::tempdir().unwrap();
    killed_writer_on_this_host_is_replaced_at_once(&LeaseStore::local(dir.path()));
}

#[test]
fn lease_second_writer_refused_then_takeover_after_kill_on_local_disk() {
    let dir = tempfile::tempdir().unwrap();
    second_writer_refused_then_takeover_after_kill(&LeaseStore::local(dir.path()));
}

#[test]
fn lease_broken_under_a_running_writer_stops_it_on_local_disk() {
    let dir = tempfile::tempdir().unwrap();
    broken_lease_stops_the_writer(&LeaseStore::local(dir.path()));
}

#[test]
fn lease_second_writer_refused_then_takeover_after_kill_on_s3() {
    second_writer_refused_then_takeover_after_kill(&LeaseStore::s3());
}

#[test]
fn lease_broken_under_a_running_writer_stops_it_on_s3() {
    broken_lease_stops_the_writer(&LeaseStore::s3());
}

#[test]
fn lease_timing_is_validated_at_load() {
    let up = upstream();
    let dir = tempfile::tempdir().unwrap();
    let store = LeaseStore::local(dir.path());
    let a = Writer::init(&up, &store, &PROJECTS);
    let text = std::fs::read_to_string(a.m.config()).unwrap();
    std::fs::write(a.m.config(), text.replace("renew_secs = 1", "renew_secs = 2")).unwrap();
    let out = a.run(&["sync"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("lease.renew_secs (2) must be at least 1 and less than half of lease.ttl_secs (3)"),
        "{}",
        stderr(&out)
    );
}
