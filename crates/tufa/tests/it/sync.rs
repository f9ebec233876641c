//! `tufa sync` and `tufa verify`.

use tufa_fake_upstream::{Fault, demo_projects};

use crate::*;

const DEMO: [&str; 4] = ["demo-util", "demo-lib", "demo-app", "Foo.Bar_baz"];

#[test]
fn sync_then_verify_succeed() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &DEMO);

    let output = m.tufa(&["sync"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let out = stdout(&output);
    assert!(out.contains("synced 4 projects from"), "{out}");
    assert!(out.contains("12 files downloaded"), "{out}");
    assert!(out.contains("0 already present"), "{out}");
    let files = upstream_files(&up, &DEMO);
    assert_eq!(m.stored(&files), 12);
    for (f, sha) in &files {
        assert_eq!(
            std::fs::read(m.blob_path(sha)).unwrap(),
            up.file_bytes(f).unwrap(),
            "{f}"
        );
    }
    assert_eq!(up.file_downloads(), 12);

    let output = m.tufa(&["verify"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let out = stdout(&output);
    // Every distribution file, plus the published pages.
    assert!(verified_count(&output) >= 12, "{out}");
    assert!(out.contains("all blobs present and intact"), "{out}");

    // A second run downloads nothing.
    up.reset_counters();
    let output = m.tufa(&["sync"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(
        stdout(&output).contains("0 files downloaded (0 bytes), 12 already present"),
        "{output:?}"
    );
    assert_eq!(up.file_downloads(), 0);
}

#[test]
fn verify_detects_a_corrupt_and_a_missing_blob() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &DEMO);
    m.tufa(&["sync"]).assert().success();

    let corrupt = "demo_lib-1.0-py3-none-any.whl";
    let missing = "demo_util-0.1.tar.gz";
    let corrupt_sha = up.file_sha256(corrupt).unwrap();
    let missing_sha = up.file_sha256(missing).unwrap();
    // Same length, different bytes: only re-hashing notices.
    let mut bytes = std::fs::read(m.blob_path(&corrupt_sha)).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(m.blob_path(&corrupt_sha), &bytes).unwrap();
    std::fs::remove_file(m.blob_path(&missing_sha)).unwrap();

    let output = m.tufa(&["verify"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let err = stderr(&output);
    assert!(err.contains("2 problem(s)"), "{err}");
    let line = |needle: &str| {
        err.lines()
            .find(|l| l.contains(needle) && !l.contains("verification failed"))
            .unwrap_or_else(|| panic!("no line about {needle}: {err}"))
            .to_owned()
    };
    let c = line(&corrupt_sha);
    assert!(
        c.contains(corrupt) && c.contains("corrupt") && c.contains("demo-lib"),
        "{c}"
    );
    let actual = tufa_pypi::Sha256Digest::of(&bytes).to_hex();
    assert!(
        c.contains(&actual),
        "the corrupt line names the actual digest: {c}"
    );
    let m_line = line(&missing_sha);
    assert!(
        m_line.contains(missing) && m_line.contains("missing") && m_line.contains("demo-util"),
        "{m_line}"
    );
    assert!(verified_count(&output) >= 12, "{output:?}");

    // A sync re-fetches the missing blob (the corrupt one is there, so it is not replaced).
    up.reset_counters();
    m.tufa(&["sync"]).assert().success();
    assert_eq!(up.file_downloads(), 1);
    assert!(m.blob_path(&missing_sha).exists());
    let output = m.tufa(&["verify"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let err = stderr(&output);
    assert!(
        err.contains("1 problem(s)") && err.contains(&corrupt_sha),
        "{err}"
    );
}

#[test]
fn sync_with_a_bad_file_exits_1_naming_it_and_syncs_the_rest() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &DEMO);
    let bad = "demo_lib-1.1-py3-none-any.whl";
    up.set_file_fault(bad, Fault::HashMismatch);
    up.set_project_fault("demo-app", Fault::MalformedJson);

    let output = m.tufa(&["sync"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let err = stderr(&output);
    assert!(err.contains("2 problem(s); everything else was synced"), "{err}");
    let file_line = err
        .lines()
        .find(|l| l.trim_start().starts_with("demo-lib: file"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        file_line.contains(bad) && file_line.contains("mismatch"),
        "{file_line}"
    );
    let page_line = err
        .lines()
        .find(|l| l.trim_start().starts_with("demo-app: "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(page_line.contains("malformed"), "{page_line}");
    assert!(stdout(&output).contains("synced 4 projects"), "{output:?}");

    // Everything else is there and intact.
    assert!(!m.blob_path(&up.file_sha256(bad).unwrap()).exists());
    let files = upstream_files(&up, &DEMO);
    for (f, sha) in &files {
        let expected = f != bad && !f.starts_with("demo_app");
        assert_eq!(m.blob_path(sha).exists(), expected, "{f}");
    }
    assert_eq!(m.stored(&files), 9);
    assert_eq!(m.temp_count(), 0);
    m.tufa(&["verify"]).assert().success();

    up.clear_faults();
    up.reset_counters();
    m.tufa(&["sync"]).assert().success();
    assert_eq!(up.file_downloads(), 3);
    assert_eq!(m.stored(&files), 12);
    let output = m.tufa(&["verify"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(verified_count(&output) >= 12, "{output:?}");
}
