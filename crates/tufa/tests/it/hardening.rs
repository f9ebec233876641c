//! `tufa sync` against a hostile upstream (issue #9): changed files and `tufa accept-change`,
//! credentials never shown.

use tufa_fake_upstream::{Fault, ReleaseSpec, demo_projects};

use crate::*;

const DEMO: [&str; 4] = ["demo-util", "demo-lib", "demo-app", "Foo.Bar_baz"];

#[test]
fn finding_02_changed_file_under_a_known_name_exits_1_until_the_operator_accepts_it() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &DEMO);
    m.tufa(&["sync"]).assert().success();
    let whl = "demo_util-0.1-py3-none-any.whl";
    let old = up.file_sha256(whl).unwrap();

    // Upstream serves new bytes under the same, immutable, filename.
    up.add_release("demo-util", ReleaseSpec::new("0.1").requires("injected"));
    let new = up.file_sha256(whl).unwrap();
    assert_ne!(old, new);
    let output = m.tufa(&["sync"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let err = stderr(&output);
    let line = err
        .lines()
        .find(|l| l.contains(whl) && l.contains("immutable"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(&old) && line.contains(&new), "{line}");
    assert!(!m.blob_path(&new).exists(), "the changed file was stored");
    assert!(m.blob_path(&old).exists());
    // The old file is still what is published and signed.
    m.tufa(&["verify"]).assert().success();

    // Approving another digest changes nothing.
    let other = "ab".repeat(32);
    m.tufa(&["accept-change", "demo-util", whl, "--sha256", &other])
        .assert()
        .success();
    let output = m.tufa(&["sync"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(!m.blob_path(&new).exists());

    // Unknown files and no-op approvals are refused.
    let output = m
        .tufa(&[
            "accept-change",
            "demo-util",
            "demo_util-9.9.tar.gz",
            "--sha256",
            &new,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    m.tufa(&["accept-change", "demo-util", whl, "--sha256", &old])
        .assert()
        .code(1);

    // The operator accepts exactly the new digests (the sdist changed too): the next sync
    // takes them.
    m.tufa(&["accept-change", "demo-util", whl, "--sha256", &new])
        .assert()
        .success();
    let sdist = "demo_util-0.1.tar.gz";
    let new_sdist = up.file_sha256(sdist).unwrap();
    m.tufa(&["accept-change", "demo-util", sdist, "--sha256", &new_sdist])
        .assert()
        .success();
    let output = m.tufa(&["sync"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(m.blob_path(&new).exists());
    m.tufa(&["verify"]).assert().success();

    // The approval was used up: a further change is refused again.
    up.add_release("demo-util", ReleaseSpec::new("0.1").requires("injected-again"));
    let newer = up.file_sha256(whl).unwrap();
    let output = m.tufa(&["sync"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr(&output).contains(&newer), "{output:?}");
    assert!(!m.blob_path(&newer).exists());
}

#[test]
fn finding_09_upstream_credentials_never_appear_in_output() {
    const TOKEN: &str = "s3cr3t-t0ken-do-not-print";
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-lib", "demo-util", "no-such-project"]);
    let text = std::fs::read_to_string(m.config()).unwrap();
    let with_token = up
        .simple_url()
        .replace("http://", &format!("http://mirror-user:{TOKEN}@"));
    let text = text.replace(&up.simple_url(), &with_token);
    assert!(text.contains(TOKEN));
    std::fs::write(m.config(), text).unwrap();
    // Retries (WARN) then a failure (ERROR) on a page, a 404, and the summary line.
    up.set_project_fault("demo-lib", Fault::ServerErrors { remaining: 100 });

    let output = m.tufa(&["sync"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let (out, err) = (stdout(&output), stderr(&output));
    assert!(err.contains("transient upstream error, retrying"), "{err}");
    assert!(
        err.contains("HTTP 503") && err.contains("no-such-project"),
        "{err}"
    );
    assert!(
        out.contains("synced 3 projects from http://***@127.0.0.1"),
        "{out}"
    );
    for (what, text) in [("stdout", &out), ("stderr", &err)] {
        assert!(!text.contains(TOKEN), "{what} shows the token:\n{text}");
        assert!(!text.contains("mirror-user"), "{what} shows the user:\n{text}");
    }
    // The credentials were used, though: the upstream saw the project pages.
    assert!(up.requests().iter().any(|r| r == "GET /simple/demo-util/"));
}

/// Two writers on one index (a `refresh` timer firing during a long `sync`): the second is
/// refused with a message that says what is going on, and the first is not disturbed.
#[test]
fn a_second_writer_is_told_another_tufa_process_holds_the_index() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-lib"]);
    m.tufa(&["sync"]).assert().success();
    // This test process plays the running sync: it holds the index open.
    let held = tufa_index::Index::open(m.dir.path().join("data/index.redb")).unwrap();
    for command in ["sync", "refresh", "verify"] {
        let out = m.tufa(&[command]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "tufa {command}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("is in use by another tufa process") && stderr(&out).contains("index.redb"),
            "tufa {command}: {}",
            stderr(&out)
        );
    }
    drop(held);
    m.tufa(&["sync"]).assert().success();
}
