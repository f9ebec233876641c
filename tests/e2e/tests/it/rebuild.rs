//! `tufa rebuild-index` seen from python-tuf's ngclient: a client that trusted the mirror
//! before the writer lost its index follows the first publish after the rebuild (a version
//! reused or rolled back would be refused), and a new client verifies every signed target.

use tufa_fake_upstream::ReleaseSpec;

use crate::harness::{Mirror, check};
use crate::tuf::{HTML_PAGE, JSON_PAGE, current_targets, linked_file};
use crate::tuf_client::TufClient;

#[test]
fn ngclient_follows_the_mirror_across_a_rebuilt_index() {
    let m = Mirror::start_signed();
    let root = m.root_url();
    let metadata_url = format!("{root}tuf/");
    let client = TufClient::new(&m.work_dir("tuf-client"), &m.tuf_dir().join("1.root.json"));
    let run = client.run(&metadata_url, &root, &[HTML_PAGE, JSON_PAGE]);
    run.assert_ok();
    let (timestamp, snapshot) = (run.timestamp_version.unwrap(), run.snapshot_version.unwrap());

    // The writer's index is lost (the server keeps serving the store meanwhile).
    std::fs::remove_file(m.dir.path().join("data/index.redb")).unwrap();
    check(m.tufa(&["rebuild-index"]), "tufa rebuild-index");
    let out = m.sync();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("0 files downloaded")
            && text.contains(&format!(
                "TUF metadata unchanged (snapshot v{snapshot}, timestamp v{timestamp})"
            )),
        "{text}"
    );

    // The first publish after the rebuild: the client that trusts the old timestamp and
    // snapshot moves on to the new ones.
    m.upstream.add_release("demo-lib", ReleaseSpec::new("1.2"));
    m.sync();
    let run = client.run(&metadata_url, &root, &[HTML_PAGE, JSON_PAGE]);
    run.assert_ok();
    assert_eq!(run.timestamp_version, Some(timestamp + 1), "{}", run.describe());
    assert_eq!(run.snapshot_version, Some(snapshot + 1), "{}", run.describe());
    let wheel = "demo_lib-1.2-py3-none-any.whl";
    let (path, metadata_sha) = linked_file(&run.target(JSON_PAGE).bytes(), wheel);
    let metadata = format!("{path}.metadata");
    let run = client.run(&metadata_url, &root, &[&path, &metadata]);
    run.assert_ok();
    assert_eq!(run.target(&path).bytes(), m.upstream.file_bytes(wheel).unwrap());
    assert_eq!(
        run.target(&metadata).sha256.as_deref(),
        Some(metadata_sha.as_str())
    );

    // A new client, trusting only 1.root.json, verifies every target the mirror signs.
    let signed = current_targets(&m.tuf_dir());
    let paths: Vec<&str> = signed.keys().map(String::as_str).collect();
    assert!(paths.len() > 20, "{paths:?}");
    let fresh = TufClient::new(&m.work_dir("fresh-client"), &m.tuf_dir().join("1.root.json"));
    let run = fresh.run(&metadata_url, &root, &paths);
    run.assert_ok();
    for path in &paths {
        assert_eq!(
            run.target(path).sha256.as_deref(),
            signed[*path].sha256().map(|d| d.to_hex()).as_deref(),
            "{path}"
        );
    }
    check(m.tufa(&["verify"]), "tufa verify after the rebuild and a publish");
}
