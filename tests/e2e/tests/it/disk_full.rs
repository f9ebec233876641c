//! Disk full during `tufa sync`: the mirror's data directory is a small tmpfs. The sync fails
//! with a clear error naming the full disk and the file, nothing corrupt or half-written is
//! visible (`tufa verify` is clean, `tmp/` is empty, every blob hashes to its name), and once
//! the space returns the next sync completes.
//!
//! Needs root (or CAP_SYS_ADMIN) to mount the tmpfs, as CI and the dev machine have; without it
//! the test fails saying so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tufa_fake_upstream::{FakeUpstream, ProjectSpec};

use crate::crash::{big_release, init_mirror};
use crate::harness::{COMMAND_TIMEOUT, check, run_bounded, runtime, tufa_bin, tufa_sync};

/// A tmpfs mounted on a directory; unmounted when dropped (before the directory is removed).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size_kib: u64) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size_kib}k,mode=0755"))
            .arg("tufa-disk-full")
            .arg(dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run mount: {e}"));
        assert!(
            out.status.success(),
            "this test needs root or CAP_SYS_ADMIN to mount a {size_kib} KiB tmpfs on {}: \
             mount failed with {}: {}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Self { dir: dir.to_owned() }
    }

    fn resize(&self, size_kib: u64) {
        let out = Command::new("mount")
            .args(["-o"])
            .arg(format!("remount,size={size_kib}k"))
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "remount failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy, so a process still holding a file cannot keep the mount alive.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flat_map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() {
                files_under(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// Nothing half-written is visible: no temporary objects remain, and every blob hashes to its
/// name.
fn assert_store_clean(store: &Path) {
    let temps = files_under(&store.join("tmp"));
    assert!(temps.is_empty(), "temporary objects left behind: {temps:?}");
    for blob in files_under(&store.join("blobs")) {
        let name = blob.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&blob).unwrap();
        let sha = tufa_pypi::Sha256Digest::of(&data).to_hex();
        assert_eq!(sha, name, "{} does not hash to its name", blob.display());
    }
}

/// Sets `[sync.concurrency]` to one project and one download at a time. The disk is then full
/// only while a huge file streams, and nothing else writes in that window: with concurrent
/// downloads, an index commit of another project can land in it, and redb refuses every later
/// write of that process after an I/O error (docs/SECURITY.md, "Known limits"), so the run's
/// outcome would depend on timing. Recovery from that case is the next sync, which the tests
/// below check for every outcome.
fn one_at_a_time(config: &Path) {
    let toml = std::fs::read_to_string(config).unwrap();
    let mut in_concurrency = false;
    let mut set = 0;
    let edited: Vec<String> = toml
        .lines()
        .map(|l| {
            if l.starts_with('[') {
                in_concurrency = l == "[sync.concurrency]";
            }
            match l.split_once(" = ") {
                Some((key @ ("# projects" | "# downloads"), _)) if in_concurrency => {
                    set += 1;
                    format!("{} = 1", &key[2..])
                }
                _ => l.to_owned(),
            }
        })
        .collect();
    assert_eq!(set, 2, "`tufa init` no longer writes [sync.concurrency]:\n{toml}");
    std::fs::write(config, edited.join("\n") + "\n").unwrap();
}

/// Syncs a mirror whose data directory is a `size_kib` tmpfs, from an upstream with the demo
/// projects and `huge`, whose four files have `requirements` requirements each (the bigger,
/// the bigger the files). Returns the failed sync's output and verify's, then lets the space
/// return and checks that the next sync completes and verifies clean.
fn fill_the_disk_then_recover(
    size_kib: u64,
    requirements: usize,
    check_failed: impl FnOnce(&FakeUpstream, &[String], &Output, &Output),
) {
    let mut projects = tufa_fake_upstream::demo_projects();
    projects.push(
        ProjectSpec::new("huge")
            .release(big_release("1.0", requirements, 1))
            .release(big_release("2.0", requirements, 2)),
    );
    let up: FakeUpstream = runtime().block_on(FakeUpstream::start(projects));
    let huge: Vec<String> = up.filenames("huge");
    let (dir, config) = init_mirror(&up);
    one_at_a_time(&config);
    let data = dir.path().join("data");
    let fs = Tmpfs::mount(&data, size_kib);

    let out = tufa_sync(&config);
    println!("sync on a {size_kib} KiB disk:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("No space left on device"),
        "the error does not say the disk is full:\n{}",
        text(&out)
    );
    let verify = run_bounded(
        Command::new(tufa_bin())
            .arg("--config")
            .arg(&config)
            .arg("verify"),
        COMMAND_TIMEOUT,
        "tufa verify",
    );
    println!("verify on the full disk:\n{}", text(&verify));
    // Nothing half-written is visible, whatever the sync managed to do.
    assert_store_clean(&data.join("store"));
    check_failed(&up, &huge, &out, &verify);

    // Space returns: the next sync completes and everything is there.
    fs.resize(64 * 1024);
    let out = check(tufa_sync(&config), "tufa sync once space returned");
    println!("sync after the space returned:\n{}", text(&out));
    check(
        run_bounded(
            Command::new(tufa_bin())
                .arg("--config")
                .arg(&config)
                .arg("verify"),
            COMMAND_TIMEOUT,
            "tufa verify",
        ),
        "tufa verify after recovery",
    );
    assert_store_clean(&data.join("store"));
    for project in ["demo-util", "demo-lib", "demo-app", "Foo.Bar_baz", "huge"] {
        for f in up.filenames(project) {
            let sha = up.file_sha256(&f).unwrap();
            let blob = data
                .join("store/blobs/sha256")
                .join(&sha[..2])
                .join(&sha[2..4])
                .join(&sha);
            assert!(blob.exists(), "{f} is not stored after recovery");
        }
    }
    drop(fs);
}

/// Files larger than the disk: each is refused with an error naming it and the full disk,
/// everything else syncs and is published and signed, and `tufa verify` is clean.
#[test]
fn disk_full_during_sync_then_recovers() {
    fill_the_disk_then_recover(640, 60_000, |up, huge, sync, verify| {
        let bytes = huge
            .iter()
            .map(|f| up.file_bytes(f).unwrap().len())
            .min()
            .unwrap();
        assert!(bytes > 640 * 1024, "a huge file ({bytes} bytes) fits on the disk");
        let stderr = String::from_utf8_lossy(&sync.stderr);
        for f in huge {
            assert!(
                stderr
                    .lines()
                    .any(|l| l.contains(&format!("`{f}`")) && l.contains("No space left on device")),
                "no error line names {f} and the full disk:\n{}",
                text(sync)
            );
        }
        assert_eq!(
            verify.status.code(),
            Some(0),
            "verify on the full disk:\n{}",
            text(verify)
        );
    });
}

/// The disk fills while pages, the index and TUF metadata are written: what could not be
/// published (projects, the dev keys' first TUF metadata) is reported as not published, with
/// the sync that publishes it, and nothing is corrupt.
#[test]
fn disk_full_during_publish_then_recovers() {
    fill_the_disk_then_recover(512, 12_000, |_, _, _, verify| {
        let stderr = String::from_utf8_lossy(&verify.stderr);
        let problems: Vec<&str> = stderr.lines().filter(|l| l.starts_with("  ")).collect();
        assert!(
            problems
                .iter()
                .all(|p| p.contains("(run `tufa --config ") && p.ends_with(" sync` to publish it)")),
            "verify found more than unpublished projects:\n{}",
            text(verify)
        );
    });
}
