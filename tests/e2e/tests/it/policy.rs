//! `[policy]` end to end: with a release denied after it was mirrored, pip and uv resolve to
//! the newest allowed version, and python-tuf verifies the pruned page and finds the denied
//! files no longer signed.

use crate::harness::{Mirror, check, dist_infos, install_uncached};
use crate::tuf::{HTML_PAGE, current_targets};
use crate::tuf_client::TufClient;

#[test]
fn a_denied_release_is_pruned_and_installers_take_the_newest_allowed() {
    let m = Mirror::start_signed();
    let signed_before = current_targets(&m.tuf_dir());
    assert!(
        signed_before
            .keys()
            .any(|p| p.ends_with("demo_lib-1.1-py3-none-any.whl"))
    );

    let toml = std::fs::read_to_string(&m.config).unwrap();
    assert!(toml.contains("\n[policy]\n"), "{toml}");
    std::fs::write(
        &m.config,
        toml.replace("\n[policy]\n", "\n[policy]\ndeny = [\"demo-lib==1.1\"]\n"),
    )
    .unwrap();
    let out = m.sync();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("policy kept out 2 file(s)"), "{summary}");
    // The readers count what is kept out, per rule.
    let metrics = crate::http::get(&format!("{}metrics", m.root_url()), &[]);
    let metrics = String::from_utf8_lossy(&metrics.body);
    assert!(
        metrics.contains("tufa_policy_blocked_files{rule=\"deny\"} 2"),
        "{metrics}"
    );

    // The denied files are no longer TUF targets; the page python-tuf verifies lists 1.0.
    let signed = current_targets(&m.tuf_dir());
    assert!(
        !signed.keys().any(|p| p.contains("demo_lib-1.1")),
        "{:?}",
        signed.keys()
    );
    assert!(
        signed
            .keys()
            .any(|p| p.ends_with("demo_lib-1.0-py3-none-any.whl"))
    );
    let client = TufClient::new(&m.work_dir("tuf-client"), &m.tuf_dir().join("1.root.json"));
    let wheel_1_0 = signed
        .keys()
        .find(|p| p.ends_with("demo_lib-1.0-py3-none-any.whl"))
        .unwrap()
        .to_string();
    let run = client.run(
        &format!("{}tuf/", m.root_url()),
        &m.root_url(),
        &[HTML_PAGE, &wheel_1_0],
    );
    run.assert_ok();
    let page = String::from_utf8(run.target(HTML_PAGE).bytes()).unwrap();
    assert!(
        page.contains("demo_lib-1.0-py3-none-any.whl") && !page.contains("demo_lib-1.1"),
        "{page}"
    );

    // pip and uv take 1.0, the newest allowed.
    for tool in ["pip", "uv"] {
        let site = install_uncached(tool, &m.work_dir(&format!("{tool}-home")), &m.url, "demo-lib");
        assert_eq!(dist_infos(&site), ["demo_lib-1.0.dist-info"], "{tool}");
    }
}

#[test]
fn gc_keeps_what_an_unexpired_snapshot_still_signs() {
    let m = Mirror::start_signed();
    let gone = m.upstream.file_sha256("demo_lib-1.1-py3-none-any.whl").unwrap();
    m.upstream.remove_release("demo-lib", "1.1");
    m.sync();
    assert!(
        !current_targets(&m.tuf_dir())
            .keys()
            .any(|p| p.contains("demo_lib-1.1")),
        "the current snapshot should no longer sign 1.1"
    );
    // The previous snapshot (unexpired) still lists it: a client that fetched it, or a
    // reader serving the old page by its hash, can still ask for the file.
    let out = check(
        m.tufa(&["gc", "--apply", "--min-age-secs", "0"]),
        "tufa gc --apply",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("unexpired snapshot(s)"), "{text}");
    assert!(
        m.blob_path(&gone).exists(),
        "gc deleted a target of an unexpired snapshot: {text}"
    );
    check(m.tufa(&["verify"]), "tufa verify after gc");
}
