//! `tufa_publish::rebuild`: a new index read back from the published tree must let the next
//! publish continue exactly where the lost index left off.

use std::collections::BTreeMap;
use std::io::Write as _;

use bytes::Bytes;
use tufa_index::{FileRecord, Index, ProjectRecord};
use tufa_publish::rebuild::{RebuildOptions, RebuildReport, rebuild};
use tufa_publish::{PublishOptions, publish};
use tufa_pypi::simple::ProjectStatus;
use tufa_pypi::{DistFilename, ProjectName, Sha256Digest};
use tufa_store::BlobStore;
use tufa_tuf::BinLayout;

use crate::{add_file, options, verify};

fn wheel(project: &str, version: &str) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(
        format!("{project}-{version}.dist-info/METADATA"),
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    write!(w, "Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n").unwrap();
    w.finish().unwrap().into_inner()
}

/// A record with everything a page carries: yanked (with and without reason),
/// requires-python, upload time, provenance; a version without files; a wheel with METADATA.
async fn rich_project(store: &BlobStore, index: &Index) {
    let name = ProjectName::new("rich").unwrap();
    let mut files = Vec::new();
    for (filename, body, yanked) in [
        ("rich-1.0.tar.gz", b"sdist 1.0".to_vec(), Some(String::new())),
        (
            "rich-1.1.tar.gz",
            b"sdist 1.1".to_vec(),
            Some("broken build".to_owned()),
        ),
        ("rich-1.1-py3-none-any.whl", wheel("rich", "1.1"), None),
    ] {
        let sha256 = store.put_bytes(Bytes::from(body.clone())).await.unwrap();
        files.push(FileRecord {
            filename: DistFilename::parse(filename).unwrap(),
            sha256,
            size: body.len() as u64,
            requires_python: Some(">=3.9".into()),
            yanked,
            upload_time: Some("2024-05-01T12:00:00.123456Z".into()),
            core_metadata_sha256: None,
            upstream_url: format!("http://up.invalid/{filename}"),
            provenance: Some(format!("http://up.invalid/{filename}.provenance")),
        });
    }
    let record = ProjectRecord {
        name,
        last_serial: Some(42),
        versions: vec!["0.9".into(), "1.0".into(), "1.1".into()],
        status: None,
    };
    index.replace_project(&record, &files).unwrap();
    let quarantined = ProjectRecord {
        name: ProjectName::new("held").unwrap(),
        last_serial: Some(7),
        versions: vec![],
        status: Some(ProjectStatus {
            status: "quarantined".into(),
            reason: Some("under review".into()),
        }),
    };
    index.replace_project(&quarantined, &[]).unwrap();
}

/// A published mirror: four projects signed over two publishes (so versions are above 1).
async fn published_mirror(dir: &std::path::Path, opts: &PublishOptions) -> (BlobStore, Index) {
    published_mirror_in(BlobStore::memory(), dir, opts).await
}

async fn published_mirror_in(
    store: BlobStore,
    dir: &std::path::Path,
    opts: &PublishOptions,
) -> (BlobStore, Index) {
    let index = Index::open(dir.join("old.redb")).unwrap();
    rich_project(&store, &index).await;
    add_file(&store, &index, "alpha", "alpha-1.0.tar.gz", b"alpha").await;
    publish(&store, &index, opts).await.unwrap();
    add_file(&store, &index, "beta", "beta-1.0.tar.gz", b"beta").await;
    publish(&store, &index, opts).await.unwrap();
    (store, index)
}

async fn rebuild_into(store: &BlobStore, path: &std::path::Path, bits: u8) -> (Index, RebuildReport) {
    let index = Index::open(path).unwrap();
    let options = RebuildOptions {
        layout: BinLayout::new(bits).unwrap(),
        concurrency: 4,
    };
    let report = rebuild(store, &index, &options, &|_| {}).await.unwrap();
    (index, report)
}

fn targets(index: &Index) -> Vec<(u32, String, Vec<u8>)> {
    let mut out = Vec::new();
    index
        .for_each_target(|b, p, f| out.push((b, p.to_owned(), f.to_vec())))
        .unwrap();
    out
}

/// What the sync records but no page carries.
fn without_upstream_details(mut f: FileRecord) -> FileRecord {
    f.upstream_url = String::new();
    f.core_metadata_sha256 = None;
    f
}

#[tokio::test]
async fn a_rebuilt_index_is_the_lost_one_and_the_next_publish_continues_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(4);
    let (store, old) = published_mirror(dir.path(), &opts).await;
    let (new, report) = rebuild_into(&store, &dir.path().join("new.redb"), 4).await;

    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!((report.projects, report.files, report.metadata_files), (4, 5, 1));
    assert_eq!(report.rendered_differently, 0);
    assert_eq!(report.bins_to_sign, 0);
    // Every role, bin-n included, with the lost index's version and expiry.
    assert_eq!(new.tuf_roles().unwrap(), old.tuf_roles().unwrap());
    assert_eq!(report.roles, old.tuf_roles().unwrap());
    assert_eq!(report.roles.len(), 5 + 16);
    assert!(report.roles["snapshot"].0 >= 2);
    assert_eq!(targets(&new), targets(&old));
    assert_eq!(report.targets, targets(&old).len());
    assert!(new.dirty_bins().unwrap().is_empty());
    assert!(new.dirty_projects().unwrap().is_empty());
    for name in old.project_names().unwrap() {
        let (o, n) = (
            old.project(&name).unwrap().unwrap(),
            new.project(&name).unwrap().unwrap(),
        );
        // Versions come back as the page lists them: the record's and the files' (the page
        // renders the same, as `rendered_differently == 0` shows).
        assert_eq!((&n.name, &n.status), (&o.name, &o.status));
        if name.as_str() == "rich" {
            assert_eq!(
                n.versions,
                ["0.9", "1.0", "1.1"],
                "a version without files is kept"
            );
        }
        assert_eq!(
            n.last_serial, None,
            "the serial is not published and not invented"
        );
        let old_files: Vec<FileRecord> = old
            .files(&name)
            .unwrap()
            .into_iter()
            .map(without_upstream_details)
            .collect();
        if o.status.is_some() {
            // Quarantined: published without files, so restored without them.
            assert!(new.files(&name).unwrap().is_empty());
            continue;
        }
        assert_eq!(new.files(&name).unwrap(), old_files, "{name}");
        for f in &old_files {
            assert_eq!(
                new.extracted_metadata(&f.sha256).unwrap(),
                old.extracted_metadata(&f.sha256).unwrap(),
                "{}",
                f.filename
            );
        }
    }

    // Nothing to do: nothing is written.
    let idle = publish(&store, &new, &opts).await.unwrap().tuf.unwrap();
    assert_eq!(idle.files_written, 0);

    // The next sync records upstream's details again (URL, serial): every project is dirty,
    // but its pages come out identical, so no manifest and no TUF file is written.
    for name in old.project_names().unwrap() {
        let record = old.project(&name).unwrap().unwrap();
        new.replace_project(&record, &old.files(&name).unwrap()).unwrap();
    }
    assert_eq!(new.dirty_projects().unwrap().len(), 4);
    let resync = publish(&store, &new, &opts).await.unwrap();
    assert_eq!((resync.projects_published, resync.projects_unchanged), (0, 4));
    assert_eq!(resync.metadata_extracted, 0, "no wheel is read again");
    assert_eq!(resync.tuf.unwrap().files_written, 0);

    // A new release: what is signed takes versions above everything published.
    let before = old.tuf_roles().unwrap();
    add_file(&store, &new, "alpha", "alpha-2.0.tar.gz", b"alpha 2").await;
    let next = publish(&store, &new, &opts).await.unwrap().tuf.unwrap();
    assert!(next.bins_signed >= 1);
    assert_eq!(next.snapshot_version, before["snapshot"].0 + 1);
    assert_eq!(next.timestamp_version, before["timestamp"].0 + 1);
    let after = new.tuf_roles().unwrap();
    let moved: Vec<&String> = after
        .iter()
        .filter(|(r, v)| r.starts_with("bin-") && before[*r].0 != v.0)
        .map(|(r, _)| r)
        .collect();
    assert_eq!(moved.len(), next.bins_signed);
    for r in moved {
        assert_eq!(after[r].0, before[r].0 + 1, "{r}");
    }
    let repo = verify(&store).await;
    assert!(
        repo.targets
            .keys()
            .any(|p| p.as_str().ends_with("/alpha-2.0.tar.gz"))
    );
}

#[tokio::test]
async fn a_corrupt_page_is_named_and_skipped_and_a_missing_blob_named_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(4);
    let local = BlobStore::local(dir.path().join("store")).unwrap();
    let (store, old) = published_mirror_in(local, dir.path(), &opts).await;
    let manifest = |n: &str| {
        let store = store.clone();
        let name = ProjectName::new(n).unwrap();
        async move { tufa_tree::read_manifest(&store, &name).await.unwrap().unwrap() }
    };
    // Other bytes under alpha's JSON page address.
    let page = manifest("alpha").await.json.raw.sha256;
    std::fs::write(store.local_path(&page).unwrap(), b"{}").unwrap();
    // beta's file is gone, and so is rich's METADATA blob.
    let beta_file = old.files(&ProjectName::new("beta").unwrap()).unwrap()[0].sha256;
    store.delete(&beta_file).await.unwrap();
    let rich_metadata = manifest("rich").await.metadata.values().next().unwrap().sha256;
    store.delete(&rich_metadata).await.unwrap();
    // Not a manifest tufa writes.
    store
        .put_named("published/projects/Not_Normal.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();

    let (new, report) = rebuild_into(&store, &dir.path().join("new.redb"), 4).await;
    let problems = report.problems.join("\n");
    assert_eq!(report.problems.len(), 4, "{problems}");
    assert!(
        problems.contains(&format!("alpha: JSON page: blob {page} is corrupt"))
            && problems.contains("skipped"),
        "{problems}"
    );
    assert!(
        problems.contains(&format!(
            "beta: file `beta-1.0.tar.gz`: blob {beta_file} is missing (the next sync downloads it again)"
        )),
        "{problems}"
    );
    assert!(
        problems.contains(&format!(
            "rich: METADATA of `rich-1.1-py3-none-any.whl`: blob {rich_metadata} is missing (the next publish stores it again)"
        )),
        "{problems}"
    );
    assert!(
        problems.contains("manifest `published/projects/Not_Normal.json`: not a normalised project name"),
        "{problems}"
    );
    let names: Vec<String> = new
        .project_names()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, ["beta", "held", "rich"]);
    assert_eq!(report.projects_to_publish, 1);
    assert_eq!(
        new.dirty_projects().unwrap(),
        vec![ProjectName::new("rich").unwrap()]
    );
    // alpha's targets are gone from the restored bins, so those bins are re-signed.
    assert!(report.bins_to_sign >= 1);
    let alpha_bins: std::collections::BTreeSet<u32> = targets(&old)
        .into_iter()
        .filter(|(_, p, _)| p.contains("alpha"))
        .map(|(b, _, _)| b)
        .collect();
    let dirty: std::collections::BTreeSet<u32> = new.dirty_bins().unwrap().into_iter().collect();
    assert!(alpha_bins.is_subset(&dirty), "{alpha_bins:?} {dirty:?}");

    // The next publish stores rich's METADATA again and re-signs above the published versions.
    let before = old.tuf_roles().unwrap();
    let next = publish(&store, &new, &opts).await.unwrap();
    assert_eq!(next.metadata_extracted, 1);
    assert!(store.exists(&rich_metadata).await.unwrap());
    let tuf = next.tuf.unwrap();
    assert_eq!(tuf.snapshot_version, before["snapshot"].0 + 1);
    verify(&store).await;
}

#[tokio::test]
async fn a_missing_zstd_page_variant_is_named_and_stored_again_by_the_next_publish() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(4);
    let (store, _old) = published_mirror(dir.path(), &opts).await;
    let name = ProjectName::new("beta").unwrap();
    let manifest = tufa_tree::read_manifest(&store, &name).await.unwrap().unwrap();
    let zstd = manifest.json.zstd.unwrap().sha256;
    store.delete(&zstd).await.unwrap();

    let (new, report) = rebuild_into(&store, &dir.path().join("new.redb"), 4).await;
    let problems = report.problems.join("\n");
    assert!(
        problems.contains(&format!(
            "beta: JSON page (zstd): blob {zstd} is missing (the next publish stores it again)"
        )),
        "{problems}"
    );
    assert_eq!(new.dirty_projects().unwrap(), vec![name]);
    publish(&store, &new, &opts).await.unwrap();
    assert!(store.exists(&zstd).await.unwrap());
    verify(&store).await;
}

#[tokio::test]
async fn a_newer_unreadable_metadata_file_still_counts_so_its_version_is_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(4);
    let (store, old) = published_mirror(dir.path(), &opts).await;
    let roles = old.tuf_roles().unwrap();
    // A writer killed mid-publish left bin-3 at a version no snapshot lists; here it is not
    // even valid metadata.
    let (v, _) = roles["bin-3"];
    let orphan = format!("{}.bin-3.json", v + 4);
    store
        .put_named(&tufa_tree::tuf_key(&orphan), Bytes::from_static(b"not json"))
        .await
        .unwrap();
    let (new, report) = rebuild_into(&store, &dir.path().join("new.redb"), 4).await;
    assert_eq!(report.roles["bin-3"].0, v + 4);
    assert_eq!(new.dirty_bins().unwrap(), [3]);
    assert!(
        report.problems.iter().any(|p| p.contains(&orphan)),
        "{:?}",
        report.problems
    );
    let next = publish(&store, &new, &opts).await.unwrap().tuf.unwrap();
    assert_eq!(next.bins_signed, 1);
    assert_eq!(new.tuf_roles().unwrap()["bin-3"].0, v + 5);
    let repo = verify(&store).await;
    assert_eq!(repo.snapshot.version, roles["snapshot"].0 + 1);
}

#[tokio::test]
async fn another_bin_layout_than_published_is_refused_and_unsigned_mirrors_rebuild_without_tuf() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = published_mirror(dir.path(), &options(4)).await;
    let index = Index::open(dir.path().join("new.redb")).unwrap();
    let options = RebuildOptions {
        layout: BinLayout::new(5).unwrap(),
        concurrency: 1,
    };
    let err = rebuild(&store, &index, &options, &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("16 hashed bins") && err.contains("bins_bit_length = 4"),
        "{err}"
    );

    let unsigned = BlobStore::memory();
    let old = Index::open(dir.path().join("unsigned.redb")).unwrap();
    add_file(&unsigned, &old, "alpha", "alpha-1.0.tar.gz", b"a").await;
    publish(&unsigned, &old, &PublishOptions::default())
        .await
        .unwrap();
    let (new, report) = rebuild_into(&unsigned, &dir.path().join("new-unsigned.redb"), 14).await;
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.roles.is_empty());
    assert_eq!(targets(&new), targets(&old));
    let versions: BTreeMap<String, (u64, i64)> = new.tuf_roles().unwrap();
    assert!(versions.is_empty());
    assert_eq!(
        new.files(&ProjectName::new("alpha").unwrap()).unwrap()[0].sha256,
        Sha256Digest::of(b"a")
    );
}
