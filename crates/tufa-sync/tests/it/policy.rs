//! `[policy]` at sync time: blocked files are never downloaded, a rule that starts to block a
//! file removes it from the index, a held-back file is admitted once the (injected) clock
//! passes its age, and internal names are never taken from upstream.

use std::sync::Arc;

use tufa_fake_upstream::{FakeUpstream, ProjectSpec, ReleaseSpec, demo_projects};
use tufa_policy::{Policy, PolicyConfig};

use crate::*;

fn with_policy(mut o: SyncOptions, toml_text: &str) -> SyncOptions {
    let c: PolicyConfig = toml::from_str(toml_text).unwrap();
    o.policy = Arc::new(Policy::from_config(&c).unwrap());
    o
}

/// The upload time upstream's JSON page gives `filename`.
fn upload_time(up: &FakeUpstream, project: &str, filename: &str) -> jiff::Timestamp {
    up.project_json(project)["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == filename)
        .unwrap()["upload-time"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn lib_versions(m: &Mirror) -> BTreeSet<String> {
    m.files("demo-lib")
        .values()
        .filter_map(|f| f.filename.version().map(ToString::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_versions_are_never_downloaded_and_a_new_rule_removes_them() {
    let up = FakeUpstream::start(demo_projects()).await;
    let m = Mirror::new();
    let o = with_policy(options(&up, Some(&["demo-lib"])), r#"deny = ["demo-lib==1.1"]"#);
    let report = m.sync(&o).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(report.files_blocked, 2);
    assert_eq!(
        lib_versions(&m),
        BTreeSet::from(["0.9".to_owned(), "1.0".to_owned()])
    );
    // Never fetched from upstream.
    assert!(requests_mentioning(&up, "demo_lib-1.1").is_empty());

    // Without the rule they come; with a wider rule, those already stored leave the index.
    let report = m.sync(&options(&up, Some(&["demo-lib"]))).await;
    assert_eq!(report.files_blocked, 0);
    assert!(lib_versions(&m).contains("1.1"));
    let o = with_policy(options(&up, Some(&["demo-lib"])), r#"deny = ["demo-lib>=1.0"]"#);
    let report = m.sync(&o).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(lib_versions(&m), BTreeSet::from(["0.9".to_owned()]));
    assert_eq!(report.files_removed, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooldown_admits_a_release_once_the_clock_passes_its_age() {
    let up = FakeUpstream::start(demo_projects()).await;
    up.add_release("demo-lib", ReleaseSpec::new("2.0"));
    let m = Mirror::new();
    let upload = upload_time(&up, "demo-lib", "demo_lib-2.0-py3-none-any.whl");
    // The fake upstream uploads one release a minute (by serial): 2.0 came at least three
    // minutes after 1.1.
    let mut o = with_policy(options(&up, Some(&["demo-lib"])), r#"min_release_age = "2m""#);
    // One minute after 2.0 was uploaded: held back (the older releases are admitted).
    o.now = Some(upload + jiff::SignedDuration::from_secs(60));
    let report = m.sync(&o).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(report.files_blocked, 2);
    assert!(!lib_versions(&m).contains("2.0"));
    assert!(requests_mentioning(&up, "demo_lib-2.0").is_empty());
    assert!(lib_versions(&m).contains("1.1"));
    // Two minutes and a second after: admitted by the next sync.
    o.now = Some(upload + jiff::SignedDuration::from_secs(121));
    let report = m.sync(&o).await;
    assert_eq!(report.files_blocked, 0);
    assert!(lib_versions(&m).contains("2.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_name_upstream_also_serves_is_not_taken() {
    let mut projects = demo_projects();
    projects.push(ProjectSpec::new("acme-billing").release(ReleaseSpec::new("99.0")));
    let up = FakeUpstream::start(projects).await;
    let m = Mirror::new();
    // Synced once without the guard (the attack already happened)…
    let allow = ["acme-billing", "demo-util"];
    m.sync(&options(&up, Some(&allow))).await;
    assert!(!m.files("acme-billing").is_empty());
    // …then the guard: its files leave the index, and upstream is not even asked.
    up.reset_counters();
    let o = with_policy(options(&up, Some(&allow)), r#"internal = ["acme-*"]"#);
    let report = m.sync(&o).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert!(m.files("acme-billing").is_empty());
    assert!(requests_mentioning(&up, "acme").is_empty(), "{:?}", up.requests());
    assert!(!m.files("demo-util").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_mode_blocks_nothing_but_counts() {
    let up = FakeUpstream::start(demo_projects()).await;
    let m = Mirror::new();
    let o = with_policy(
        options(&up, Some(&["demo-lib"])),
        "mode = \"report\"\ndeny = [\"demo-lib\"]",
    );
    let report = m.sync(&o).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(report.files_blocked, 6);
    assert_eq!(lib_versions(&m).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_rule_applies_to_projects_a_full_sync_does_not_reread() {
    let up = FakeUpstream::start(demo_projects()).await;
    let m = Mirror::new();
    let report = m.sync(&options(&up, None)).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert!(lib_versions(&m).contains("1.1"));
    // Nothing changed upstream: the next full sync reads no page, yet the new rule applies
    // (from the index's records), and the report says so.
    up.reset_counters();
    let o = with_policy(options(&up, None), r#"deny = ["demo-lib==1.1"]"#);
    let report = m.sync(&o).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert!(
        requests_mentioning(&up, "/simple/demo-lib/").is_empty(),
        "{:?}",
        up.requests()
    );
    assert!(!lib_versions(&m).contains("1.1"));
    assert_eq!(report.files_blocked, 2);
    assert_eq!(report.judged[&name("demo-lib")].len(), 2);
    assert!(report.judged[&name("demo-util")].is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_rereads_projects_with_held_back_files() {
    let up = FakeUpstream::start(demo_projects()).await;
    up.add_release("demo-lib", ReleaseSpec::new("2.0"));
    let m = Mirror::new();
    let upload = upload_time(&up, "demo-lib", "demo_lib-2.0-py3-none-any.whl");
    let mut o = with_policy(options(&up, None), r#"min_release_age = "2m""#);
    o.now = Some(upload + jiff::SignedDuration::from_secs(60));
    m.sync(&o).await;
    assert!(!lib_versions(&m).contains("2.0"));
    // Later, nothing changed upstream: without a recheck the project is not read again…
    o.now = Some(upload + jiff::SignedDuration::from_secs(600));
    m.sync(&o).await;
    assert!(!lib_versions(&m).contains("2.0"));
    // …with it (what `tufa sync` passes from the policy report), the file is admitted.
    o.recheck = vec![name("demo-lib")];
    let report = m.sync(&o).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert!(lib_versions(&m).contains("2.0"));
}
