//! Publishing and incremental TUF signing against a real index and an in-memory store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod rebuild;

use std::sync::Arc;

use bytes::Bytes;
use tufa_index::{FileRecord, Index, ProjectRecord};
use tufa_publish::tuf::{DevOfflineKeys, TufSigning};
use tufa_publish::{PublishOptions, publish};
use tufa_pypi::{DistFilename, ProjectName};
use tufa_store::BlobStore;
use tufa_tuf::build::Expiries;
use tufa_tuf::{BinLayout, Ed25519Signer};

fn options(bits: u8) -> PublishOptions {
    let key = || Arc::new(Ed25519Signer::generate());
    PublishOptions {
        layout: BinLayout::new(bits).unwrap(),
        tuf: Some(TufSigning {
            online: key(),
            insecure_dev_offline: Some(DevOfflineKeys {
                root: key(),
                targets: key(),
                bins: key(),
            }),
            expiries: Expiries::default(),
        }),
        policy: None,
        force_timestamp: false,
        concurrency: 2,
    }
}

/// Stores a file blob and records it in the index as a project's only file.
async fn add_file(store: &BlobStore, index: &Index, project: &str, filename: &str, body: &[u8]) {
    let sha256 = store.put_bytes(Bytes::copy_from_slice(body)).await.unwrap();
    let name = ProjectName::new(project).unwrap();
    let mut files = index.files(&name).unwrap();
    files.push(FileRecord {
        filename: DistFilename::parse(filename).unwrap(),
        sha256,
        size: body.len() as u64,
        requires_python: None,
        yanked: None,
        upload_time: None,
        core_metadata_sha256: None,
        upstream_url: format!("http://up.invalid/{filename}"),
        provenance: None,
    });
    let record = ProjectRecord {
        name,
        last_serial: None,
        versions: vec![],
        status: None,
    };
    index.replace_project(&record, &files).unwrap();
}

/// Walks the published metadata like a client, trusting `1.root.json`.
async fn verify(store: &BlobStore) -> tufa_tuf::VerifiedRepository {
    use futures::StreamExt as _;
    let names: Vec<String> = store
        .list_named(tufa_tree::TUF_DIR)
        .map(|n| n.unwrap())
        .collect()
        .await;
    let mut files = std::collections::BTreeMap::new();
    for name in names {
        let bytes = store
            .get_named(&tufa_tree::tuf_key(&name))
            .await
            .unwrap()
            .unwrap();
        files.insert(name, bytes.to_vec());
    }
    let root = files["1.root.json"].clone();
    tufa_tuf::verify_repository(
        &root,
        &files,
        &tufa_tuf::VerifyOptions::new(jiff::Timestamp::now()),
    )
    .unwrap_or_else(|f| panic!("{:?}", f.problems))
}

#[tokio::test]
async fn one_new_file_resigns_one_bin_then_snapshot_and_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::memory();
    let index = Index::open(dir.path().join("index.redb")).unwrap();
    let opts = options(8);
    for p in ["alpha", "beta", "gamma"] {
        add_file(&store, &index, p, &format!("{p}-1.0.tar.gz"), p.as_bytes()).await;
    }
    let first = publish(&store, &index, &opts).await.unwrap();
    let tuf = first.tuf.unwrap();
    assert!(tuf.bootstrapped);
    assert_eq!(tuf.bins_signed, 256, "the first publish creates every bin");
    let repo = verify(&store).await;
    // Two pages and one file per project.
    assert_eq!(repo.targets.len(), 9);

    // Nothing changed: nothing is written.
    let again = publish(&store, &index, &opts).await.unwrap().tuf.unwrap();
    assert_eq!((again.bins_signed, again.files_written), (0, 0));

    // A new sdist in `beta`: its page pair changes and one file is added. Exactly the bins
    // of those three targets are re-signed, plus one snapshot and one timestamp.
    add_file(&store, &index, "beta", "beta-1.1.tar.gz", b"beta 1.1").await;
    let inc = publish(&store, &index, &opts).await.unwrap().tuf.unwrap();
    assert!(inc.bins_signed >= 1 && inc.bins_signed <= 3, "{inc:?}");
    assert_eq!(inc.files_written, inc.bins_signed + 2);
    assert_eq!(
        (inc.snapshot_version, inc.timestamp_version),
        (tuf.snapshot_version + 1, tuf.timestamp_version + 1)
    );
    let repo = verify(&store).await;
    assert_eq!(repo.targets.len(), 10);
    assert!(
        repo.targets
            .keys()
            .any(|p| p.as_str().ends_with("/beta-1.1.tar.gz"))
    );
}

#[tokio::test]
async fn refresh_signs_only_a_timestamp_over_the_same_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::memory();
    let index = Index::open(dir.path().join("index.redb")).unwrap();
    let mut opts = options(4);
    add_file(&store, &index, "alpha", "alpha-1.0.tar.gz", b"a").await;
    let first = publish(&store, &index, &opts).await.unwrap().tuf.unwrap();
    opts.force_timestamp = true;
    let refreshed = publish(&store, &index, &opts).await.unwrap().tuf.unwrap();
    assert_eq!(refreshed.files_written, 1);
    assert_eq!(refreshed.snapshot_version, first.snapshot_version);
    assert_eq!(refreshed.timestamp_version, first.timestamp_version + 1);
    verify(&store).await;
}

#[tokio::test]
async fn without_keys_pages_are_published_unsigned() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::memory();
    let index = Index::open(dir.path().join("index.redb")).unwrap();
    add_file(&store, &index, "alpha", "alpha-1.0.tar.gz", b"a").await;
    let report = publish(&store, &index, &PublishOptions::default()).await.unwrap();
    assert_eq!(report.projects_published, 1);
    assert!(report.tuf.is_none());
    assert!(
        store
            .get_named(&tufa_tree::tuf_key("1.root.json"))
            .await
            .unwrap()
            .is_none()
    );
    // Targets are tracked all the same, so signing can start later.
    let mut n = 0;
    index.for_each_target(|_, _, _| n += 1).unwrap();
    assert_eq!(n, 3);
}

#[tokio::test]
async fn a_rolled_back_timestamp_in_the_store_is_replaced_at_the_next_publish() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::memory();
    let index = Index::open(dir.path().join("index.redb")).unwrap();
    let mut opts = options(4);
    add_file(&store, &index, "alpha", "alpha-1.0.tar.gz", b"a").await;
    publish(&store, &index, &opts).await.unwrap();
    let key = tufa_tree::tuf_key("timestamp.json");
    let old = store.get_named(&key).await.unwrap().unwrap();
    opts.force_timestamp = true;
    let refreshed = publish(&store, &index, &opts).await.unwrap().tuf.unwrap();
    // Someone puts the old (validly signed, older) timestamp back.
    store.put_named(&key, old).await.unwrap();
    opts.force_timestamp = false;
    let healed = publish(&store, &index, &opts).await.unwrap().tuf.unwrap();
    assert_eq!(healed.timestamp_version, refreshed.timestamp_version + 1);
    assert_eq!(verify(&store).await.timestamp.version, healed.timestamp_version);
}

#[tokio::test]
async fn a_dirty_project_whose_pages_do_not_change_keeps_its_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::memory();
    let index = Index::open(dir.path().join("index.redb")).unwrap();
    let opts = options(4);
    add_file(&store, &index, "alpha", "alpha-1.0.tar.gz", b"a").await;
    let first = publish(&store, &index, &opts).await.unwrap();
    assert_eq!((first.projects_published, first.projects_unchanged), (1, 0));
    let key = tufa_tree::manifest_key(&ProjectName::new("alpha").unwrap());
    let manifest = store.get_named(&key).await.unwrap().unwrap();

    // Upstream moved the file (a new upstream URL): the index changes and the project is
    // dirty, but nothing tufa publishes does.
    let name = ProjectName::new("alpha").unwrap();
    let mut files = index.files(&name).unwrap();
    files[0].upstream_url = "http://elsewhere.invalid/alpha-1.0.tar.gz".into();
    let record = index.project(&name).unwrap().unwrap();
    assert!(!index.replace_project(&record, &files).unwrap().is_empty());
    assert_eq!(index.dirty_projects().unwrap(), vec![name.clone()]);
    // A second later, a rewritten manifest would carry another `published_at`.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = publish(&store, &index, &opts).await.unwrap();
    assert_eq!((again.projects_published, again.projects_unchanged), (0, 1));
    assert_eq!(store.get_named(&key).await.unwrap().unwrap(), manifest);
    assert_eq!(again.tuf.unwrap().files_written, 0);
    assert!(index.dirty_projects().unwrap().is_empty());
}

#[tokio::test]
async fn an_index_behind_the_store_refuses_to_sign_rather_than_reuse_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::memory();
    let path = dir.path().join("index.redb");
    let backup = dir.path().join("backup.redb");
    let opts = options(4);
    {
        let index = Index::open(&path).unwrap();
        add_file(&store, &index, "alpha", "alpha-1.0.tar.gz", b"a").await;
        publish(&store, &index, &opts).await.unwrap();
    }
    std::fs::copy(&path, &backup).unwrap();
    {
        let index = Index::open(&path).unwrap();
        add_file(&store, &index, "alpha", "alpha-1.1.tar.gz", b"a 1.1").await;
        publish(&store, &index, &opts).await.unwrap();
    }
    let tuf_files = || async {
        use futures::StreamExt as _;
        let mut out = std::collections::BTreeMap::new();
        let names: Vec<String> = store
            .list_named(tufa_tree::TUF_DIR)
            .map(|n| n.unwrap())
            .collect()
            .await;
        for name in names {
            let bytes = store
                .get_named(&tufa_tree::tuf_key(&name))
                .await
                .unwrap()
                .unwrap();
            out.insert(name, bytes);
        }
        out
    };
    let before = tuf_files().await;
    // The old backup put back in place: its snapshot and timestamp are v1, the store's v2.
    let stale = Index::open(&backup).unwrap();
    add_file(&store, &stale, "beta", "beta-1.0.tar.gz", b"b").await;
    let err = publish(&store, &stale, &opts).await.unwrap_err().to_string();
    assert!(
        err.contains("timestamp.json is v2, newer than v1") && err.contains("rebuild-index --force"),
        "{err}"
    );
    assert_eq!(tuf_files().await, before, "nothing was signed");
}

#[tokio::test]
async fn each_page_is_stored_raw_gzip_and_zstd_and_both_variants_decode_to_the_raw_page() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::memory();
    let index = Index::open(dir.path().join("index.redb")).unwrap();
    add_file(&store, &index, "alpha", "alpha-1.0.tar.gz", b"a").await;
    publish(&store, &index, &PublishOptions::default()).await.unwrap();
    let manifest = tufa_tree::read_manifest(&store, &ProjectName::new("alpha").unwrap())
        .await
        .unwrap()
        .unwrap();
    let digests = tufa_publish::page_digests(&manifest);
    for (format, page) in [("html", &manifest.html), ("json", &manifest.json)] {
        let raw = store.get_verified(&page.raw.sha256).await.unwrap();
        assert_eq!(raw.len() as u64, page.raw.len, "{format}");
        assert!(
            String::from_utf8_lossy(&raw).contains("alpha-1.0.tar.gz"),
            "{format}"
        );
        let (gzip, zstd) = (page.gzip.unwrap(), page.zstd.unwrap());
        let gz = store.get_verified(&gzip.sha256).await.unwrap();
        let zst = store.get_verified(&zstd.sha256).await.unwrap();
        assert_eq!(
            (gz.len() as u64, zst.len() as u64),
            (gzip.len, zstd.len),
            "{format}"
        );
        let mut gunzipped = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut gunzipped)
            .unwrap();
        assert_eq!(gunzipped, raw, "{format}: gzip variant");
        // One complete frame: a streaming decoder (what clients use) reads it to the end.
        assert_eq!(zstd::decode_all(&zst[..]).unwrap(), raw, "{format}: zstd variant");
        // `tufa verify` checks every variant.
        for d in [page.raw.sha256, gzip.sha256, zstd.sha256] {
            assert!(digests.contains(&d), "{format}: {d} not in page_digests");
        }
    }
}

/// The report counts METADATA files actually extracted, not wheels tried: a wheel that is not
/// a readable zip is published without PEP 658 metadata and not counted.
#[tokio::test]
async fn the_report_counts_only_metadata_actually_extracted() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::memory();
    let index = Index::open(dir.path().join("index.redb")).unwrap();
    let mut wheel = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    wheel
        .start_file(
            "good-1.0.dist-info/METADATA",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
    wheel
        .write_all(b"Metadata-Version: 2.1\nName: good\nVersion: 1.0\n")
        .unwrap();
    let wheel = wheel.finish().unwrap().into_inner();
    add_file(&store, &index, "good", "good-1.0-py3-none-any.whl", &wheel).await;
    for (project, filename) in [
        ("broken", "broken-1.0-py3-none-any.whl"),
        ("broken", "broken-1.1-py3-none-any.whl"),
        ("other", "other-2.0-py3-none-any.whl"),
    ] {
        add_file(&store, &index, project, filename, b"not a zip archive").await;
    }
    let report = publish(&store, &index, &PublishOptions::default()).await.unwrap();
    assert_eq!(report.projects_published, 3);
    assert_eq!(report.metadata_extracted, 1, "{report:?}");
}
