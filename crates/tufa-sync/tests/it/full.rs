//! Full mode: every upstream project, incremental through the XML-RPC changelog.

use tufa_fake_upstream::{FakeUpstream, Fault, ReleaseSpec, demo_projects};

use crate::*;

fn project_page_gets(up: &FakeUpstream) -> BTreeSet<String> {
    up.requests()
        .into_iter()
        .filter_map(|r| r.strip_prefix("GET /simple/").map(str::to_owned))
        .filter(|p| !p.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_mirror_then_incremental_sync_fetches_only_changed_projects() {
    let up = FakeUpstream::start(demo_projects()).await;
    let m = Mirror::new();
    let opts = options(&up, None);

    let report = m.sync(&opts).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(report.projects_processed, 4);
    assert_eq!(report.files_downloaded, 12);
    for p in DEMO {
        m.assert_synced(&up, p);
    }
    assert_eq!(
        m.project_names(),
        ["demo-app", "demo-lib", "demo-util", "foo-bar-baz"]
    );
    assert_eq!(m.blobs(), upstream_files(&up, &DEMO).into_values().collect());
    assert_eq!(m.index.upstream_serial().unwrap(), Some(up.last_serial()));
    assert!(m.index.pending().unwrap().is_empty());
    for p in DEMO {
        let record = m.index.project(&name(p)).unwrap().unwrap();
        assert_eq!(record.last_serial, up.project_serial(p), "{p}");
    }
    // The first run has no serial yet, so it reads the root list.
    assert!(up.requests().iter().any(|r| r == "GET /simple/"));

    // Upstream changes: a new release, a new project, a removed release.
    up.add_release("demo-util", ReleaseSpec::new("0.2"));
    up.add_release("Fresh_Project", ReleaseSpec::new("3.0").wheel_only());
    up.remove_release("demo-lib", "1.0");
    up.reset_counters();

    let report = m.sync(&opts).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    let requests = up.requests();
    // One changelog call, no root list, and only the changed projects' pages.
    assert_eq!(
        requests.iter().filter(|r| *r == "POST /pypi").count(),
        1,
        "{requests:#?}"
    );
    assert!(!requests.iter().any(|r| r == "GET /simple/"), "{requests:#?}");
    assert_eq!(
        project_page_gets(&up),
        ["demo-lib/", "demo-util/", "fresh-project/"]
            .map(String::from)
            .into(),
        "{requests:#?}"
    );
    // Only the new files were downloaded.
    assert_eq!(up.file_downloads(), 3, "{requests:#?}");
    assert_eq!(report.files_downloaded, 3);
    assert_eq!(report.projects_processed, 3);
    assert_eq!(report.files_removed, 2);
    for p in [
        "demo-util",
        "demo-lib",
        "demo-app",
        "Foo.Bar_baz",
        "Fresh_Project",
    ] {
        m.assert_synced(&up, p);
    }
    assert_eq!(m.files("demo-lib").len(), 4);
    assert_eq!(m.files("fresh-project").len(), 1);
    assert_eq!(m.index.upstream_serial().unwrap(), Some(up.last_serial()));
    assert!(m.index.pending().unwrap().is_empty());
    // The removed release's blobs stay: 12 + 3 new.
    assert_eq!(m.blobs().len(), 15);

    // Nothing changed: only the changelog is asked.
    up.reset_counters();
    let report = m.sync(&opts).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(report.projects_processed, 0);
    assert_eq!(up.requests(), ["POST /pypi"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_project_stays_pending_and_is_retried_without_a_new_changelog_entry() {
    let up = FakeUpstream::start(demo_projects()).await;
    let m = Mirror::new();
    let opts = options(&up, None);
    up.set_project_fault("demo-app", Fault::MalformedJson);

    let report = m.sync(&opts).await;
    assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
    failure(&report, "demo-app", None);
    let pending = m.index.pending().unwrap();
    assert_eq!(
        pending,
        [(name("demo-app"), up.project_serial("demo-app").unwrap())]
    );
    assert!(m.index.project(&name("demo-app")).unwrap().is_none());
    for p in ["demo-util", "demo-lib", "Foo.Bar_baz"] {
        m.assert_synced(&up, p);
    }

    // A file failure keeps its project pending too.
    up.clear_faults();
    up.add_release("demo-lib", ReleaseSpec::new("2.0"));
    up.set_file_fault("demo_lib-2.0.tar.gz", Fault::HashMismatch);
    let report = m.sync(&opts).await;
    assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
    failure(&report, "demo-lib", Some("demo_lib-2.0.tar.gz"));
    let pending: Vec<String> = m
        .index
        .pending()
        .unwrap()
        .into_iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(pending, ["demo-lib"]);
    m.assert_synced(&up, "demo-app");

    // No upstream change since: the changelog is empty, yet the pending project is fetched.
    up.clear_faults();
    up.reset_counters();
    let report = m.sync(&opts).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(
        project_page_gets(&up),
        ["demo-lib/".to_owned()].into(),
        "{:#?}",
        up.requests()
    );
    assert_eq!(up.file_downloads(), 1);
    assert!(m.index.pending().unwrap().is_empty());
    for p in DEMO {
        m.assert_synced(&up, p);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_root_list_full_sync() {
    let up = FakeUpstream::start(demo_projects()).await;
    up.set_html_only(true);
    let m = Mirror::new();
    let report = m.sync(&options(&up, None)).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    for p in DEMO {
        m.assert_synced(&up, p);
    }
    assert_eq!(m.index.upstream_serial().unwrap(), Some(up.last_serial()));
}
