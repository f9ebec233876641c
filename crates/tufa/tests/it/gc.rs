//! `tufa gc`: a dry run deletes nothing; `--apply` deletes exactly the unreferenced blobs (a
//! release removed upstream, on an unsigned mirror) and the mirror still verifies.

use tufa_fake_upstream::demo_projects;

use crate::{MirrorDir, Upstream};

fn run(m: &MirrorDir, args: &[&str]) -> String {
    let out = m.tufa(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn gc_deletes_only_what_nothing_references() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-lib"]);
    run(&m, &["sync"]);
    let gone = up.file_sha256("demo_lib-1.1-py3-none-any.whl").unwrap();
    let kept = up.file_sha256("demo_lib-1.0-py3-none-any.whl").unwrap();
    assert!(m.blob_path(&gone).exists());

    // Nothing is garbage yet (the first pages are the published ones).
    let dry = run(&m, &["gc", "--min-age-secs", "0"]);
    assert!(dry.contains("would delete 0 unreferenced blob(s)"), "{dry}");

    up.remove_release("demo-lib", "1.1");
    run(&m, &["sync"]);
    // A dry run names the garbage and deletes nothing.
    let dry = run(&m, &["gc", "--min-age-secs", "0"]);
    assert!(dry.contains(&gone), "{dry}");
    assert!(m.blob_path(&gone).exists());
    // Too young: kept.
    let young = run(&m, &["gc", "--apply"]);
    assert!(young.contains("deleted 0 unreferenced blob(s)"), "{young}");
    assert!(m.blob_path(&gone).exists());

    let applied = run(&m, &["gc", "--apply", "--min-age-secs", "0"]);
    assert!(applied.contains("deleted"), "{applied}");
    assert!(!m.blob_path(&gone).exists(), "{applied}");
    assert!(m.blob_path(&kept).exists());
    // The published tree and every referenced blob are intact.
    run(&m, &["verify"]);
    let again = run(&m, &["gc", "--min-age-secs", "0"]);
    assert!(again.contains("would delete 0 unreferenced blob(s)"), "{again}");
}
