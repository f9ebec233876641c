//! A hostile or broken upstream: each fault rejects exactly the bad file or project, stores
//! nothing of it, syncs everything else, and a later clean run converges.

use tufa_fake_upstream::{FakeUpstream, Fault, NUL_FILENAME, ProjectSpec, TRAVERSAL_FILENAME, demo_projects};
use tufa_sync::SyncOptions;

use crate::*;

/// The file the file-level faults target.
const WHL: &str = "demo_lib-1.1-py3-none-any.whl";

/// Demo projects plus `big`, whose files are several KiB.
fn projects_with_big() -> Vec<ProjectSpec> {
    let mut p = demo_projects();
    p.push(ProjectSpec::new("big").release(big_release("1.0", 400)));
    p
}

const ALL: [&str; 5] = ["demo-util", "demo-lib", "demo-app", "Foo.Bar_baz", "big"];

/// What a file fault must leave behind after one sync: one failure naming the project and
/// the file, no blob and no index entry for it, no temporary object, everything else synced.
/// Then, with the fault cleared, a re-sync downloads just that file and converges.
async fn assert_file_fault_rejected(
    up: &FakeUpstream,
    m: &Mirror,
    opts: &SyncOptions,
    project: &str,
    file: &str,
    error_contains: &str,
) {
    let report = m.sync(opts).await;
    assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
    let f = failure(&report, project, Some(file));
    assert!(
        f.error.contains(error_contains),
        "error `{}` lacks `{error_contains}`",
        f.error
    );
    assert!(f.to_string().contains(file), "{f}");

    let sha = up.file_sha256(file).unwrap();
    assert!(!m.has_blob(&sha), "{file} was stored");
    assert!(!m.store.exists(&sha.parse().unwrap()).await.unwrap());
    m.assert_no_temps().await;
    let files = m.files(project);
    assert!(!files.contains_key(file), "{file} indexed");
    let projects: Vec<&str> = opts
        .projects
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.as_str())
        .collect();
    for p in ALL.iter().filter(|p| projects.contains(&name(p).as_str())) {
        if name(p) == name(project) {
            // The project's other files are all there.
            let others: BTreeSet<String> = up.filenames(p).into_iter().filter(|f| f != file).collect();
            assert_eq!(files.keys().cloned().collect::<BTreeSet<_>>(), others);
            for f in &others {
                assert!(m.has_blob(&up.file_sha256(f).unwrap()), "{f} not stored");
            }
        } else {
            m.assert_synced(up, p);
        }
    }
    let mut want: BTreeSet<String> = upstream_files(up, &projects).into_values().collect();
    want.remove(&sha);
    assert_eq!(m.blobs(), want);

    // Converges once the upstream behaves.
    up.clear_faults();
    up.reset_counters();
    let report = m.sync(opts).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(report.files_downloaded, 1);
    assert_eq!(up.file_downloads(), 1, "{:#?}", up.requests());
    assert!(m.has_blob(&sha));
    for p in &projects {
        m.assert_synced(up, p);
    }
    assert_eq!(m.blobs(), upstream_files(up, &projects).into_values().collect());
    m.assert_no_temps().await;
}

/// What a project page fault must leave behind: one failure naming the project (no file),
/// nothing of the project in the store or the index, the other projects synced. Then it
/// converges.
async fn assert_project_fault_rejected(
    up: &FakeUpstream,
    m: &Mirror,
    opts: &SyncOptions,
    error_contains: &str,
) {
    let report = m.sync(opts).await;
    assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
    let f = failure(&report, "demo-lib", None);
    assert!(
        f.error.contains(error_contains),
        "error `{}` lacks `{error_contains}`",
        f.error
    );
    assert!(
        up.requests().iter().all(|r| !r.contains("demo_lib")),
        "a demo-lib file was fetched"
    );
    for file in up.filenames("demo-lib") {
        assert!(!m.has_blob(&up.file_sha256(&file).unwrap()), "{file} stored");
    }
    assert!(m.files("demo-lib").is_empty());
    assert!(m.index.project(&name("demo-lib")).unwrap().is_none());
    for p in DEMO.iter().filter(|p| **p != "demo-lib") {
        m.assert_synced(up, p);
    }
    assert_eq!(m.blobs().len(), 6);
    m.assert_no_temps().await;

    up.clear_faults();
    up.reset_counters();
    let report = m.sync(opts).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(up.file_downloads(), 6);
    for p in DEMO {
        m.assert_synced(up, p);
    }
    assert_eq!(m.blobs().len(), 12);
}

async fn setup() -> (FakeUpstream, Mirror, SyncOptions) {
    let up = FakeUpstream::start(demo_projects()).await;
    let opts = options(&up, Some(&DEMO));
    (up, Mirror::new(), opts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_mismatch_is_rejected_and_rest_completes() {
    let (up, m, opts) = setup().await;
    up.set_file_fault(WHL, Fault::HashMismatch);
    assert_file_fault_rejected(&up, &m, &opts, "demo-lib", WHL, "mismatch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_advertising_wrong_hashes_stores_nothing_of_the_project() {
    let (up, m, opts) = setup().await;
    up.set_project_fault("demo-lib", Fault::HashMismatch);
    let report = m.sync(&opts).await;
    let files = up.filenames("demo-lib");
    assert_eq!(report.failures.len(), files.len(), "{:#?}", report.failures);
    for f in &files {
        assert!(failure(&report, "demo-lib", Some(f)).error.contains("mismatch"));
        // Neither under the true digest nor under the advertised one.
        assert!(!m.has_blob(&up.file_sha256(f).unwrap()));
    }
    assert_eq!(m.blobs().len(), 6);
    assert!(m.files("demo-lib").is_empty());
    m.assert_no_temps().await;
    up.clear_faults();
    assert!(m.sync(&opts).await.is_success());
    for p in DEMO {
        m.assert_synced(&up, p);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_body_is_retried_then_rejected_and_rest_completes() {
    let (up, m, opts) = setup().await;
    up.set_file_fault(WHL, Fault::Truncated);
    // The failure says why: the body ended early.
    assert_file_fault_rejected(&up, &m, &opts, "demo-lib", WHL, "end of file").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_body_is_tried_retries_plus_one_times() {
    let (up, m, mut opts) = setup().await;
    opts.projects = Some(vec![name("demo-lib")]);
    up.set_file_fault(WHL, Fault::Truncated);
    let report = m.sync(&opts).await;
    assert_eq!(report.failures.len(), 1);
    // 5 good files once, the truncated one 1 + retries times.
    assert_eq!(up.file_downloads(), 5 + 1 + opts.limits.retries as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_burst_within_retries_succeeds() {
    let (up, m, mut opts) = setup().await;
    opts.limits.retries = 3;
    up.set_file_fault(WHL, Fault::ServerErrors { remaining: 2 });
    up.set_project_fault("demo-app", Fault::ServerErrors { remaining: 2 });
    let report = m.sync(&opts).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(report.files_downloaded, 12);
    assert_eq!(up.file_downloads(), 12 + 2);
    assert_eq!(requests_mentioning(&up, "GET /simple/demo-app/").len(), 3);
    for p in DEMO {
        m.assert_synced(&up, p);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_burst_beyond_retries_is_rejected_and_rest_completes() {
    let (up, m, mut opts) = setup().await;
    opts.limits.retries = 2;
    up.set_file_fault(WHL, Fault::ServerErrors { remaining: 5 });
    assert_file_fault_rejected(&up, &m, &opts, "demo-lib", WHL, "HTTP 503").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_page_server_errors_beyond_retries_reject_the_project() {
    let (up, m, opts) = setup().await;
    up.set_project_fault("demo-lib", Fault::ServerErrors { remaining: 10 });
    assert_project_fault_rejected(&up, &m, &opts, "HTTP 503").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_page_is_rejected_and_rest_completes() {
    let (up, m, opts) = setup().await;
    up.set_project_fault("demo-lib", Fault::MalformedJson);
    assert_project_fault_rejected(&up, &m, &opts, "malformed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_json_page_is_rejected_and_rest_completes() {
    let (up, m, mut opts) = setup().await;
    opts.limits.max_page_bytes = 64 * 1024;
    up.set_project_fault("demo-lib", Fault::OversizedJson { bytes: 200 * 1024 });
    assert_project_fault_rejected(&up, &m, &opts, "larger than the limit of 65536 bytes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_type_page_is_rejected_and_rest_completes() {
    let (up, m, opts) = setup().await;
    up.set_project_fault("demo-lib", Fault::WrongContentType);
    assert_project_fault_rejected(&up, &m, &opts, "content type").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_content_type_does_not_matter_when_the_hash_verifies() {
    // A file's Content-Type says nothing about its bytes; the sha256 does. PyPI itself
    // serves files with assorted types, so a verified file is kept whatever its type.
    let (up, m, opts) = setup().await;
    up.set_file_fault(WHL, Fault::WrongContentType);
    let report = m.sync(&opts).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    for p in DEMO {
        m.assert_synced(&up, p);
    }
}

/// The page lists an extra hostile file: only that entry is rejected.
async fn assert_hostile_filename_rejected(up: &FakeUpstream, m: &Mirror, opts: &SyncOptions, shown: &str) {
    let report = m.sync(opts).await;
    assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
    let f = failure(&report, "demo-lib", Some(shown));
    assert!(!f.error.is_empty());
    // Nothing was fetched for it, nothing stored under its advertised digest.
    assert!(
        up.requests().iter().all(|r| !r.contains("evil")),
        "{:#?}",
        up.requests()
    );
    let evil_sha = tufa_pypi::Sha256Digest::of(b"evil").to_hex();
    assert!(!m.has_blob(&evil_sha));
    assert!(m.all_files().keys().all(|(_, f)| !f.contains("evil")));
    for p in DEMO {
        m.assert_synced(up, p);
    }
    assert_eq!(m.blobs().len(), 12);
    m.assert_no_temps().await;
    // No stray file anywhere near the store.
    let root = m.store_root.parent().unwrap();
    assert!(!root.join("evil-1.0-py3-none-any.whl").exists());
    assert!(!root.parent().unwrap().join("evil-1.0-py3-none-any.whl").exists());

    up.clear_faults();
    up.reset_counters();
    let report = m.sync(opts).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(up.file_downloads(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_filename_is_rejected_and_rest_completes() {
    let (up, m, opts) = setup().await;
    up.set_project_fault("demo-lib", Fault::TraversalFilename);
    assert_hostile_filename_rejected(&up, &m, &opts, TRAVERSAL_FILENAME).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_filename_is_rejected_and_rest_completes() {
    let (up, m, opts) = setup().await;
    up.set_project_fault("demo-lib", Fault::NulFilename);
    // Failures show the name escaped, never a raw NUL.
    let shown: String = NUL_FILENAME.escape_debug().collect();
    assert!(!shown.contains('\0'));
    assert_hostile_filename_rejected(&up, &m, &opts, &shown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_size_is_rejected_and_rest_completes() {
    let (up, m, opts) = setup().await;
    up.set_file_fault(WHL, Fault::WrongSize);
    let len = up.file_bytes(WHL).unwrap().len();
    let msg = format!("expected {} bytes, got {len}", len + 1);
    assert_file_fault_rejected(&up, &m, &opts, "demo-lib", WHL, &msg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_but_steady_body_succeeds() {
    let up = FakeUpstream::start(projects_with_big()).await;
    let m = Mirror::new();
    let mut opts = options(&up, Some(&ALL));
    opts.limits.read_timeout_secs = 1;
    let slow = up.filenames("big");
    for f in &slow {
        assert!(
            up.file_bytes(f).unwrap().len() > 3 * 1024,
            "{f} too small to be slow"
        );
        up.set_file_fault(f, Fault::SlowBody { delay_ms: 100 });
    }
    let report = m.sync(&opts).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    for p in ALL {
        m.assert_synced(&up, p);
    }
    assert_eq!(up.file_downloads(), 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_body_times_out_and_rest_completes() {
    let up = FakeUpstream::start(projects_with_big()).await;
    let m = Mirror::new();
    let mut opts = options(&up, Some(&ALL));
    opts.limits.read_timeout_secs = 1;
    opts.limits.retries = 0;
    let whl = up
        .filenames("big")
        .into_iter()
        .find(|f| f.ends_with(".whl"))
        .unwrap();
    // Silent for longer than the read timeout between chunks.
    up.set_file_fault(&whl, Fault::SlowBody { delay_ms: 1500 });
    let started = Instant::now();
    assert_file_fault_rejected(&up, &m, &opts, "big", &whl, "timed out").await;
    assert!(started.elapsed() < Duration::from_secs(10));
}
