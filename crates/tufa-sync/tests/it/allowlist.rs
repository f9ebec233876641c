//! Allowlist mode: exactly the configured projects, every page re-read each run.

use tufa_fake_upstream::{FakeUpstream, Fault, ReleaseSpec, demo_projects};

use crate::*;

const ALLOW: [&str; 2] = ["demo-lib", "demo-util"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_sync_stores_exactly_the_listed_projects_files() {
    let up = FakeUpstream::start(demo_projects()).await;
    let m = Mirror::new();
    let report = m.sync(&options(&up, Some(&ALLOW))).await;
    assert!(report.is_success(), "{:#?}", report.failures);

    let expected = upstream_files(&up, &ALLOW);
    assert_eq!(expected.len(), 8);
    assert_eq!(report.projects_processed, 2);
    assert_eq!(report.projects_changed, 2);
    assert_eq!(report.files_downloaded, 8);
    assert_eq!(report.files_already_present, 0);
    let bytes: usize = expected.keys().map(|f| up.file_bytes(f).unwrap().len()).sum();
    assert_eq!(report.bytes_downloaded, bytes as u64);

    // Exactly the expected blobs, with the right bytes, and nothing else.
    let want: BTreeSet<String> = expected.values().cloned().collect();
    assert_eq!(m.blobs(), want);
    m.assert_no_temps().await;

    // The index has exactly those files, with their attributes.
    for p in ALLOW {
        m.assert_synced(&up, p);
    }
    assert_eq!(m.project_names(), ["demo-lib", "demo-util"]);
    assert_eq!(m.all_files().len(), 8);
    let lib = m.files("demo-lib");
    assert_eq!(
        lib["demo_lib-0.9-py3-none-any.whl"].yanked.as_deref(),
        Some("broken")
    );
    assert_eq!(lib["demo_lib-0.9.tar.gz"].yanked.as_deref(), Some("broken"));
    assert_eq!(
        lib["demo_lib-1.1-py3-none-any.whl"].requires_python.as_deref(),
        Some(">=3.8")
    );
    assert!(lib["demo_lib-1.1.tar.gz"].core_metadata_sha256.is_none());
    assert!(lib.values().all(|f| f.upload_time.is_some()));
    let record = m.index.project(&name("demo-lib")).unwrap().unwrap();
    assert_eq!(record.last_serial, up.project_serial("demo-lib"));
    assert_eq!(record.versions, ["0.9", "1.0", "1.1"]);

    // Projects outside the allowlist were never asked for; neither were the root list and
    // the changelog, nor metadata files.
    let requests = up.requests();
    for other in ["demo-app", "demo_app", "foo-bar-baz", "foo_bar_baz", "Foo"] {
        assert!(
            requests_mentioning(&up, other).is_empty(),
            "{other} fetched: {requests:#?}"
        );
    }
    assert!(
        !requests
            .iter()
            .any(|r| r == "GET /simple/" || r.starts_with("POST")),
        "{requests:#?}"
    );
    assert_eq!(up.file_downloads(), 8, "{requests:#?}");
    // Allowlist mode keeps no full-mode state.
    assert!(m.index.pending().unwrap().is_empty());
    assert_eq!(m.index.upstream_serial().unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_sync_downloads_nothing() {
    let up = FakeUpstream::start(demo_projects()).await;
    let m = Mirror::new();
    let opts = options(&up, Some(&DEMO));
    let first = m.sync(&opts).await;
    assert!(first.is_success(), "{:#?}", first.failures);
    assert_eq!(first.files_downloaded, 12);
    let index_before = m.all_files();
    let blobs_before = m.blobs();

    up.reset_counters();
    let second = m.sync(&opts).await;
    assert!(second.is_success(), "{:#?}", second.failures);
    assert_eq!(up.file_downloads(), 0, "{:#?}", up.requests());
    assert_eq!(second.files_downloaded, 0);
    assert_eq!(second.bytes_downloaded, 0);
    assert_eq!(second.files_already_present, 12);
    assert_eq!(second.projects_changed, 0);
    assert_eq!(m.all_files(), index_before);
    assert_eq!(m.blobs(), blobs_before);
    // Only the four pages were read.
    let mut requests = up.requests();
    requests.sort();
    assert_eq!(
        requests,
        [
            "GET /simple/demo-app/",
            "GET /simple/demo-lib/",
            "GET /simple/demo-util/",
            "GET /simple/foo-bar-baz/",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_dropped_from_the_allowlist_leave_the_index_but_keep_their_blobs() {
    let up = FakeUpstream::start(demo_projects()).await;
    let m = Mirror::new();
    assert!(m.sync(&options(&up, Some(&DEMO))).await.is_success());
    let blobs = m.blobs();

    let report = m.sync(&options(&up, Some(&["demo-lib"]))).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(report.projects_removed, 3);
    assert_eq!(m.project_names(), ["demo-lib"]);
    assert_eq!(m.all_files().len(), 6);
    assert_eq!(m.blobs(), blobs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_fault_on_a_synced_project_loses_nothing() {
    let up = FakeUpstream::start(demo_projects()).await;
    let m = Mirror::new();
    let opts = options(&up, Some(&DEMO));
    assert!(m.sync(&opts).await.is_success());
    let index_before = m.all_files();
    let record_before = m.index.project(&name("demo-lib")).unwrap();
    // A new release appears upstream, but the page is broken from now on.
    up.add_release("demo-lib", ReleaseSpec::new("2.0"));

    for fault in [
        Fault::MalformedJson,
        Fault::WrongContentType,
        Fault::OversizedJson { bytes: 128 * 1024 },
        Fault::ServerErrors { remaining: 100 },
    ] {
        up.clear_faults();
        up.set_project_fault("demo-lib", fault.clone());
        let mut opts = opts.clone();
        opts.limits.max_page_bytes = 64 * 1024;
        let report = m.sync(&opts).await;
        assert_eq!(report.failures.len(), 1, "{fault:?}: {:#?}", report.failures);
        let f = failure(&report, "demo-lib", None);
        assert!(!f.error.is_empty());
        assert_eq!(m.all_files(), index_before, "{fault:?}: index changed");
        assert_eq!(
            m.index.project(&name("demo-lib")).unwrap(),
            record_before,
            "{fault:?}"
        );
        assert!(!m.has_blob(&up.file_sha256("demo_lib-2.0.tar.gz").unwrap()));
    }

    up.clear_faults();
    let report = m.sync(&opts).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    m.assert_synced(&up, "demo-lib");
    assert_eq!(m.files("demo-lib").len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_removed_upstream_leaves_the_index_but_its_blobs_stay() {
    let up = FakeUpstream::start(demo_projects()).await;
    let m = Mirror::new();
    let opts = options(&up, Some(&DEMO));
    assert!(m.sync(&opts).await.is_success());
    let gone = up
        .filenames("demo-lib")
        .into_iter()
        .filter(|f| f.contains("-1.0"))
        .collect::<Vec<_>>();
    assert_eq!(gone.len(), 2);
    let gone_shas: Vec<String> = gone.iter().map(|f| up.file_sha256(f).unwrap()).collect();
    let blobs = m.blobs();

    up.remove_release("demo-lib", "1.0");
    up.reset_counters();
    let report = m.sync(&opts).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(report.files_removed, 2);
    assert_eq!(report.projects_changed, 1);
    assert_eq!(up.file_downloads(), 0);
    let lib = m.files("demo-lib");
    assert_eq!(lib.len(), 4);
    for f in &gone {
        assert!(!lib.contains_key(f), "{f} still indexed");
    }
    m.assert_synced(&up, "demo-lib");
    assert_eq!(
        m.index.project(&name("demo-lib")).unwrap().unwrap().versions,
        ["0.9", "1.1"]
    );
    // Blobs stay for a later gc.
    assert_eq!(m.blobs(), blobs);
    for sha in &gone_shas {
        assert!(m.has_blob(sha));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_only_upstream_syncs_the_same_files_as_json() {
    let up = FakeUpstream::start(demo_projects()).await;
    let json = Mirror::new();
    assert!(json.sync(&options(&up, Some(&DEMO))).await.is_success());

    up.set_html_only(true);
    up.reset_counters();
    let html = Mirror::new();
    let report = html.sync(&options(&up, Some(&DEMO))).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(report.files_downloaded, 12);
    assert_eq!(html.blobs(), json.blobs());
    for p in DEMO {
        html.assert_synced(&up, p);
    }
    // HTML pages carry no upload time and no serial; everything else is the same.
    let strip = |files: BTreeMap<(String, String), FileRecord>| {
        files
            .into_iter()
            .map(|(k, mut f)| {
                f.upload_time = None;
                (k, f)
            })
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(strip(html.all_files()), strip(json.all_files()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_allowlisted_project_is_reported_and_the_rest_synced() {
    let up = FakeUpstream::start(demo_projects()).await;
    let m = Mirror::new();
    let report = m
        .sync(&options(&up, Some(&["demo-util", "no-such-project"])))
        .await;
    assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
    assert!(failure(&report, "no-such-project", None).error.contains("404"));
    m.assert_synced(&up, "demo-util");
    assert_eq!(m.project_names(), ["demo-util"]);
}
