//! A sync dropped mid-way (the in-process equivalent of a kill) is resumed by the next run:
//! stored blobs are not downloaded again and the result equals a clean sync.

use tufa_fake_upstream::{FakeUpstream, Fault, ProjectSpec, demo_projects};
use tufa_sync::SyncOptions;

use crate::*;

const ALL: [&str; 6] = [
    "demo-util",
    "demo-lib",
    "demo-app",
    "Foo.Bar_baz",
    "big",
    "bigger",
];

fn projects() -> Vec<ProjectSpec> {
    let mut p = demo_projects();
    p.push(ProjectSpec::new("big").release(big_release("1.0", 300)));
    p.push(
        ProjectSpec::new("bigger")
            .release(big_release("2.0", 500))
            .release(big_release("2.1", 200)),
    );
    p
}

async fn aborted_sync_resumes(full_mode: bool) {
    let up = FakeUpstream::start(projects()).await;
    let opts: SyncOptions = options(&up, (!full_mode).then_some(&ALL[..]));

    // The reference: a clean sync from a well-behaved upstream.
    let clean = Mirror::new();
    assert!(clean.sync(&opts).await.is_success());

    // `big`'s wheel and one `bigger` file stall after their first KiB; everything else
    // arrives at once.
    let stalled = [
        up.filenames("big")
            .into_iter()
            .find(|f| f.ends_with(".whl"))
            .unwrap(),
        up.filenames("bigger")
            .into_iter()
            .find(|f| f.ends_with("2.1.tar.gz"))
            .unwrap(),
    ];
    for f in &stalled {
        assert!(up.file_bytes(f).unwrap().len() > 2048, "{f} fits in one chunk");
        up.set_file_fault(f, Fault::SlowBody { delay_ms: 30_000 });
    }
    let total = upstream_files(&up, &ALL).len();
    let m = Mirror::new();
    {
        let sync = m.sync(&opts);
        tokio::pin!(sync);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            tokio::select! {
                report = &mut sync => panic!("sync finished despite stalled files: {report:#?}"),
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
            // Everything but the stalled files is stored, and the projects without a
            // stalled file are recorded: abort now, with two downloads half-way.
            // (A project's record and its pending mark are two transactions: wait for both.)
            if m.blobs().len() == total - stalled.len()
                && m.project_names().len() == 4
                && (!full_mode || m.index.pending().unwrap().len() == 2)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "sync made no progress: {:?}",
                m.blobs().len()
            );
        }
        // Dropping `sync` here cancels it mid-download.
    }
    for f in &stalled {
        assert!(
            !m.has_blob(&up.file_sha256(f).unwrap()),
            "{f} stored although it never finished"
        );
    }
    assert!(m.index.project(&name("big")).unwrap().is_none());
    assert!(m.index.project(&name("bigger")).unwrap().is_none());
    if full_mode {
        let pending: Vec<String> = m
            .index
            .pending()
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(pending, ["big", "bigger"]);
    }
    // The cancelled puts' temporary objects are removed by their drop guards.
    m.assert_no_temps().await;

    up.clear_faults();
    up.reset_counters();
    let report = m.sync(&opts).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    // Only what was missing is downloaded.
    assert_eq!(up.file_downloads(), stalled.len(), "{:#?}", up.requests());
    assert_eq!(report.files_downloaded, stalled.len() as u64);
    for p in ALL {
        m.assert_synced(&up, p);
    }
    assert_eq!(m.all_files(), clean.all_files());
    assert_eq!(m.blobs(), clean.blobs());
    assert!(m.index.pending().unwrap().is_empty());
    m.assert_no_temps().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_allowlist_sync_resumes_without_downloading_again() {
    aborted_sync_resumes(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_full_sync_resumes_from_the_pending_set() {
    aborted_sync_resumes(true).await;
}
