//! python-tuf's `ngclient` against the real `tufa serve`: the first root as trust anchor,
//! `metadata_base_url=<root>/tuf/`, `target_base_url=<root>/`, and every page, file and
//! METADATA file verified — before and after a new release is synced into the running mirror.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use tufa_fake_upstream::ReleaseSpec;
use tufa_tuf::{Role, Signed, Snapshot, TargetFile, Targets, Timestamp};

use crate::harness::{Mirror, PROJECTS, check};
use crate::http;
use crate::tuf_client::TufClient;

pub const HTML_PAGE: &str = "simple/demo-lib/index.html";
pub const JSON_PAGE: &str = "simple/demo-lib/index.json";

/// Parses metadata file `what`, panicking with its name when it is not valid.
pub fn parse<T: Role>(what: &str, bytes: &[u8]) -> T {
    Signed::<T>::from_bytes(what, bytes)
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .metadata
        .signed
}

/// Every target the current metadata in `tuf_dir` signs: timestamp → snapshot → each bin at the
/// version the snapshot lists.
pub fn current_targets(tuf_dir: &Path) -> BTreeMap<String, TargetFile> {
    let read = |name: &str| std::fs::read(tuf_dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let ts: Timestamp = parse("timestamp.json", &read("timestamp.json"));
    let name = format!("{}.snapshot.json", ts.snapshot_meta().unwrap().version);
    let snapshot: Snapshot = parse(&name, &read(&name));
    let mut out = BTreeMap::new();
    for (meta, file) in &snapshot.meta {
        if meta.starts_with("bin-") {
            let name = format!("{}.{meta}", file.version);
            let bin: Targets = parse(&name, &read(&name));
            out.extend(bin.targets.into_iter().map(|(p, f)| (p.to_string(), f)));
        }
    }
    out
}

/// The TUF target path of `filename` as the signed JSON page links it (`../../files/…`,
/// relative to `simple/demo-lib/`), and the sha256 of its METADATA file (PEP 714).
pub fn linked_file(json_page: &[u8], filename: &str) -> (String, String) {
    let page: Value = serde_json::from_slice(json_page).unwrap();
    let file = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == filename)
        .unwrap_or_else(|| panic!("{filename} is not on the page: {page}"));
    let metadata_sha = file["core-metadata"]["sha256"]
        .as_str()
        .unwrap_or_else(|| panic!("{filename} has no core-metadata: {file}"));
    (link_target(file), metadata_sha.to_owned())
}

/// The TUF target paths of everything the server at `simple_url` (`…/simple/`) links for
/// [`PROJECTS`]: both pages of each project, each file, and each file's METADATA. Sorted.
pub fn served_targets(simple_url: &str) -> Vec<String> {
    let mut expected: Vec<String> = Vec::new();
    for project in PROJECTS {
        let name = project.to_lowercase().replace(['.', '_'], "-");
        expected.push(format!("simple/{name}/index.html"));
        expected.push(format!("simple/{name}/index.json"));
        let json = http::get(
            &format!("{simple_url}{name}/"),
            &[("Accept", "application/vnd.pypi.simple.v1+json")],
        );
        assert_eq!(json.status, 200, "{name} from {simple_url}");
        let v: Value = serde_json::from_slice(&json.body).unwrap();
        for file in v["files"].as_array().unwrap() {
            let path = link_target(file);
            if file["core-metadata"].is_object() {
                expected.push(format!("{path}.metadata"));
            }
            expected.push(path);
        }
    }
    expected.sort();
    expected
}

/// The TUF target path of one `files` entry of a project's JSON page.
fn link_target(file: &Value) -> String {
    let url = file["url"].as_str().unwrap();
    let path = url
        .split('#')
        .next()
        .unwrap()
        .strip_prefix("../../")
        .unwrap_or_else(|| panic!("unexpected file URL {url}"));
    assert!(path.starts_with("files/"), "{url}");
    path.to_owned()
}

#[test]
fn ngclient_verifies_pages_files_and_metadata_from_tufa_serve() {
    let m = Mirror::start_signed();
    check(m.tufa(&["verify"]), "tufa verify");
    let root = m.root_url();
    let metadata_url = format!("{root}tuf/");
    let client = TufClient::new(&m.work_dir("tuf-client"), &m.tuf_dir().join("1.root.json"));

    // The pages, verified.
    let run = client.run(&metadata_url, &root, &[HTML_PAGE, JSON_PAGE]);
    run.assert_ok();
    assert_eq!(run.root_version, Some(1));
    let first_timestamp = run.timestamp_version.unwrap();
    // (Read now: the next download of the same target overwrites the file.)
    let old_html = run.target(HTML_PAGE).bytes();
    let old_html_sha = run.target(HTML_PAGE).sha256.clone().unwrap();
    let json_page = run.target(JSON_PAGE).bytes();

    // What pip and uv get by content negotiation is the signed target, byte for byte.
    let page_url = format!("{}demo-lib/", m.url);
    for (accept, target) in [
        ("application/vnd.pypi.simple.v1+json", JSON_PAGE),
        ("application/vnd.pypi.simple.latest+json", JSON_PAGE),
        ("application/vnd.pypi.simple.v1+html", HTML_PAGE),
        ("text/html", HTML_PAGE),
    ] {
        let resp = http::get(&page_url, &[("Accept", accept)]);
        assert_eq!(resp.status, 200, "{accept}");
        assert_eq!(
            resp.body,
            run.target(target).bytes(),
            "the page served for {accept} is not the signed {target}"
        );
    }

    // A wheel and its METADATA, found through the verified page.
    let wheel = "demo_lib-1.1-py3-none-any.whl";
    let (wheel_path, metadata_sha) = linked_file(&json_page, wheel);
    let metadata_path = format!("{wheel_path}.metadata");
    let run = client.run(&metadata_url, &root, &[&wheel_path, &metadata_path]);
    run.assert_ok();
    assert_eq!(
        run.target(&wheel_path).bytes(),
        m.upstream.file_bytes(wheel).unwrap()
    );
    assert_eq!(
        run.target(&metadata_path).sha256.as_deref(),
        Some(metadata_sha.as_str())
    );
    let served = http::get(&format!("{root}{metadata_path}"), &[]);
    assert_eq!(served.status, 200);
    assert_eq!(served.body, run.target(&metadata_path).bytes());

    // A new release upstream, synced while the server keeps running: the same client (same
    // metadata directory) moves to the new timestamp and verifies the new page and wheel.
    m.upstream.add_release("demo-lib", ReleaseSpec::new("1.2"));
    m.sync();
    let run = client.run(&metadata_url, &root, &[HTML_PAGE, JSON_PAGE]);
    run.assert_ok();
    assert!(
        run.timestamp_version.unwrap() > first_timestamp,
        "timestamp did not move past v{first_timestamp}:\n{}",
        run.describe()
    );
    let html = String::from_utf8(run.target(HTML_PAGE).bytes()).unwrap();
    assert!(html.contains("demo_lib-1.2-py3-none-any.whl"), "{html}");
    assert_ne!(run.target(HTML_PAGE).sha256.as_ref(), Some(&old_html_sha));
    let new_wheel = "demo_lib-1.2-py3-none-any.whl";
    let (new_path, new_metadata_sha) = linked_file(&run.target(JSON_PAGE).bytes(), new_wheel);
    let new_metadata = format!("{new_path}.metadata");
    let run = client.run(&metadata_url, &root, &[&new_path, &new_metadata, &wheel_path]);
    run.assert_ok();
    assert_eq!(
        run.target(&new_path).bytes(),
        m.upstream.file_bytes(new_wheel).unwrap()
    );
    assert_eq!(
        run.target(&new_metadata).sha256.as_deref(),
        Some(new_metadata_sha.as_str())
    );
    assert_eq!(
        run.target(&wheel_path).bytes(),
        m.upstream.file_bytes(wheel).unwrap()
    );

    // A client still on the previous snapshot can fetch the page version that snapshot signed
    // (DESIGN: old page versions stay answerable while an unexpired snapshot references them).
    let resp = http::get(&format!("{root}simple/demo-lib/{old_html_sha}.index.html"), &[]);
    assert_eq!(resp.status, 200, "the previous page version is gone");
    assert_eq!(resp.body, old_html);

    check(m.tufa(&["verify"]), "tufa verify after the second sync");

    // `tufa refresh` signs a new timestamp over the same snapshot; the client follows it.
    let before = run.timestamp_version.unwrap();
    check(m.tufa(&["refresh"]), "tufa refresh");
    let run = client.run(&metadata_url, &root, &[HTML_PAGE]);
    run.assert_ok();
    assert_eq!(run.timestamp_version, Some(before + 1));
    check(m.tufa(&["verify"]), "tufa verify after tufa refresh");
}

/// Asserts that the signed targets are exactly the pages (all projects, both formats), files
/// and METADATA files the mirror links, and that ngclient verifies every one through
/// `tufa serve`.
fn assert_everything_served_is_signed(m: &Mirror, client: &TufClient) {
    let signed = current_targets(&m.tuf_dir());
    let expected = served_targets(&m.url);
    let listed: Vec<String> = signed.keys().cloned().collect();
    assert_eq!(
        listed, expected,
        "the signed targets are not exactly what is served"
    );

    let root = m.root_url();
    let paths: Vec<&str> = listed.iter().map(String::as_str).collect();
    let run = client.run(&format!("{root}tuf/"), &root, &paths);
    run.assert_ok();
    for path in &paths {
        assert_eq!(
            run.target(path).sha256.as_deref(),
            signed[*path].sha256().map(|d| d.to_hex()).as_deref(),
            "{path}"
        );
    }
}

#[test]
fn ngclient_verifies_every_signed_target_and_every_link_is_signed() {
    let m = Mirror::start_signed();
    let client = TufClient::new(&m.work_dir("tuf-client"), &m.tuf_dir().join("1.root.json"));
    assert_everything_served_is_signed(&m, &client);

    // A release removed upstream leaves the signed targets too (and a new one joins them).
    let gone = "demo_lib-1.0-py3-none-any.whl";
    let gone_target = current_targets(&m.tuf_dir())
        .into_keys()
        .find(|p| p.ends_with(&format!("/{gone}")))
        .unwrap();
    m.upstream.remove_release("demo-lib", "1.0");
    m.upstream.add_release("demo-util", ReleaseSpec::new("0.2"));
    m.sync();
    assert_everything_served_is_signed(&m, &client);
    let run = client.run(&format!("{}tuf/", m.root_url()), &m.root_url(), &[&gone_target]);
    assert!(
        run.target(&gone_target)
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("LookupError")),
        "{gone} is still signed:\n{}",
        run.describe()
    );
}

#[test]
fn tuf_metadata_is_served_exactly_as_published() {
    let m = Mirror::start_signed();
    let root = m.root_url();
    let mut names: Vec<String> = std::fs::read_dir(m.tuf_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.contains(&"1.root.json".to_owned()), "{names:?}");
    assert!(names.contains(&"timestamp.json".to_owned()), "{names:?}");
    assert!(
        names.contains(&"1.bin-f.json".to_owned()),
        "16 bins expected: {names:?}"
    );
    for name in &names {
        let resp = http::get(&format!("{root}tuf/{name}"), &[]);
        assert_eq!(resp.status, 200, "/tuf/{name}");
        assert_eq!(
            resp.body,
            std::fs::read(m.tuf_dir().join(name)).unwrap(),
            "/tuf/{name} differs from the published file"
        );
    }
    // Clients probe for the next root: it must be a plain 404.
    assert_eq!(http::get(&format!("{root}tuf/2.root.json"), &[]).status, 404);
}
