//! A small published tree: two projects, their pages (`demo` with gzip and zstd variants), a wheel with its
//! METADATA, and an sdist.

use std::collections::BTreeMap;
use std::io::Write as _;

use axum::Router;
use bytes::Bytes;
use tempfile::TempDir;
use tufa_pypi::{DistFilename, ProjectName, Sha256Digest};
use tufa_server::{AppState, ServerLimits, router};
use tufa_store::BlobStore;
use tufa_tree::{BlobRef, MANIFEST_VERSION, Page, ProjectManifest, file_path, write_manifest};

pub const WHEEL: &str = "demo-1.0-py3-none-any.whl";
pub const SDIST: &str = "demo-1.0.tar.gz";
pub const PUBLISHED_AT: &str = "2026-01-02T03:04:05Z";
pub const PUBLISHED_HTTP_DATE: &str = "Fri, 02 Jan 2026 03:04:05 GMT";
pub const WHEEL_LEN: usize = 1024 * 1024 + 123;

pub struct Fixture {
    pub store: BlobStore,
    /// Keeps a local store's directory alive.
    pub dir: Option<TempDir>,
    pub state: AppState,
    pub app: Router,
    pub html: Bytes,
    pub html_gzip: Bytes,
    pub html_zstd: Bytes,
    pub json: Bytes,
    pub json_gzip: Bytes,
    pub json_zstd: Bytes,
    pub zeta_html: Bytes,
    pub html_digest: Sha256Digest,
    pub json_digest: Sha256Digest,
    pub wheel: Bytes,
    pub wheel_digest: Sha256Digest,
    pub sdist: Bytes,
    pub sdist_digest: Sha256Digest,
    pub metadata: Bytes,
    pub metadata_digest: Sha256Digest,
}

fn gzip(data: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    Bytes::from(encoder.finish().unwrap())
}

fn zstd(data: &[u8]) -> Bytes {
    Bytes::from(zstd::bulk::compress(data, 1).unwrap())
}

/// A zstd body decoded as a client does (streaming, to the end of the frame).
pub fn unzstd(data: &[u8]) -> Vec<u8> {
    zstd::decode_all(data).unwrap()
}

/// A page body as the client reads it, by its `Content-Encoding`.
pub fn decoded(content_encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    match content_encoding {
        None => body.to_vec(),
        Some("gzip") => gunzip(body),
        Some("zstd") => unzstd(body),
        Some(other) => panic!("unexpected Content-Encoding {other}"),
    }
}

pub fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data).read_to_end(&mut out).unwrap();
    out
}

async fn put(store: &BlobStore, data: &Bytes) -> BlobRef {
    let sha256 = store.put_bytes(data.clone()).await.unwrap();
    BlobRef {
        sha256,
        len: data.len() as u64,
    }
}

impl Fixture {
    pub async fn memory() -> Self {
        Self::build(BlobStore::memory(), None, ServerLimits::default()).await
    }

    pub async fn local() -> Self {
        Self::local_with(ServerLimits::default()).await
    }

    pub async fn local_with(limits: ServerLimits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        Self::build(store, Some(dir), limits).await
    }

    pub async fn build(store: BlobStore, dir: Option<TempDir>, limits: ServerLimits) -> Self {
        let wheel: Bytes = (0..WHEEL_LEN)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<u8>>()
            .into();
        let sdist = Bytes::from_static(b"\x1f\x8b\x08\x00 not really a tarball, but bytes all the same");
        let metadata = Bytes::from_static(b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n");
        let wheel_ref = put(&store, &wheel).await;
        let sdist_ref = put(&store, &sdist).await;
        let metadata_ref = put(&store, &metadata).await;
        let wheel_url = file_path(&wheel_ref.sha256, &DistFilename::parse(WHEEL).unwrap());
        let sdist_url = file_path(&sdist_ref.sha256, &DistFilename::parse(SDIST).unwrap());

        let html = Bytes::from(format!(
            "<!DOCTYPE html><html><head><meta name=\"pypi:repository-version\" content=\"1.1\">\
             <title>Links for demo</title></head><body><h1>Links for demo</h1>\n\
             <a href=\"../../{wheel_url}#sha256={}\" data-dist-info-metadata=\"sha256={}\">{WHEEL}</a><br/>\n\
             <a href=\"../../{sdist_url}#sha256={}\">{SDIST}</a><br/>\n</body></html>\n",
            wheel_ref.sha256, metadata_ref.sha256, sdist_ref.sha256
        ));
        let json = Bytes::from(format!(
            "{{\"meta\":{{\"api-version\":\"1.1\"}},\"name\":\"demo\",\"files\":[\
             {{\"filename\":\"{WHEEL}\",\"url\":\"../../{wheel_url}\",\"hashes\":{{\"sha256\":\"{}\"}}}},\
             {{\"filename\":\"{SDIST}\",\"url\":\"../../{sdist_url}\",\"hashes\":{{\"sha256\":\"{}\"}}}}],\
             \"versions\":[\"1.0\"]}}",
            wheel_ref.sha256, sdist_ref.sha256
        ));
        let html_gzip = gzip(&html);
        let json_gzip = gzip(&json);
        let html_zstd = zstd(&html);
        let json_zstd = zstd(&json);
        let demo = ProjectManifest {
            version: MANIFEST_VERSION,
            name: ProjectName::new("demo").unwrap(),
            published_at: PUBLISHED_AT.into(),
            html: Page {
                raw: put(&store, &html).await,
                gzip: Some(put(&store, &html_gzip).await),
                zstd: Some(put(&store, &html_zstd).await),
            },
            json: Page {
                raw: put(&store, &json).await,
                gzip: Some(put(&store, &json_gzip).await),
                zstd: Some(put(&store, &json_zstd).await),
            },
            metadata: BTreeMap::from([(WHEEL.to_owned(), metadata_ref)]),
        };
        write_manifest(&store, &demo).await.unwrap();

        // A second project without compressed variants.
        let zeta_html =
            Bytes::from_static(b"<!DOCTYPE html><html><body><h1>Links for zeta-pkg</h1></body></html>\n");
        let zeta_json =
            Bytes::from_static(b"{\"meta\":{\"api-version\":\"1.1\"},\"name\":\"zeta-pkg\",\"files\":[]}");
        let zeta = ProjectManifest {
            version: MANIFEST_VERSION,
            name: ProjectName::new("zeta-pkg").unwrap(),
            published_at: PUBLISHED_AT.into(),
            html: Page {
                raw: put(&store, &zeta_html).await,
                gzip: None,
                zstd: None,
            },
            json: Page {
                raw: put(&store, &zeta_json).await,
                gzip: None,
                zstd: None,
            },
            metadata: BTreeMap::new(),
        };
        write_manifest(&store, &zeta).await.unwrap();

        let state = AppState::new(store.clone(), limits);
        let app = router(state.clone());
        Self {
            store,
            dir,
            state,
            app,
            html_digest: Sha256Digest::of(&html),
            json_digest: Sha256Digest::of(&json),
            html,
            html_gzip,
            html_zstd,
            json,
            json_gzip,
            json_zstd,
            zeta_html,
            wheel,
            wheel_digest: wheel_ref.sha256,
            sdist,
            sdist_digest: sdist_ref.sha256,
            metadata,
            metadata_digest: metadata_ref.sha256,
        }
    }

    /// `/files/…` URL of the wheel.
    pub fn wheel_url(&self) -> String {
        format!(
            "/{}",
            file_path(&self.wheel_digest, &DistFilename::parse(WHEEL).unwrap())
        )
    }

    pub fn sdist_url(&self) -> String {
        format!(
            "/{}",
            file_path(&self.sdist_digest, &DistFilename::parse(SDIST).unwrap())
        )
    }

    /// A fresh state and router over the same store (an empty page cache).
    pub fn fresh_app(&self) -> (AppState, Router) {
        let state = AppState::new(self.store.clone(), self.state.limits().clone());
        (state.clone(), router(state))
    }

    /// Overwrites a stored blob on disk (local store only).
    pub fn corrupt(&self, digest: &Sha256Digest, data: &[u8]) {
        let path = self.store.local_path(digest).unwrap();
        std::fs::write(path, data).unwrap();
    }
}

/// Publishes project `name` listing `files` (filename, bytes; stored here), with the wheels'
/// METADATA given in `metadata` (filename → METADATA blob, stored by the caller), and the PEP
/// 792 status `quarantined` when asked (then, like tufa-publish, without files). Replaces any
/// earlier manifest of the project. Returns each file's digest, in order.
pub async fn publish(
    store: &BlobStore,
    name: &str,
    files: &[(&str, &Bytes)],
    metadata: BTreeMap<String, BlobRef>,
    quarantined: bool,
) -> Vec<Sha256Digest> {
    let mut digests = Vec::new();
    let mut entries = Vec::new();
    let mut links = String::new();
    for (filename, data) in files {
        let r = put(store, data).await;
        digests.push(r.sha256);
        if quarantined {
            continue;
        }
        let url = file_path(&r.sha256, &DistFilename::parse(filename).unwrap());
        entries.push(serde_json::json!({
            "filename": filename,
            "url": format!("../../{url}"),
            "hashes": {"sha256": r.sha256.to_hex()},
        }));
        links.push_str(&format!(
            "<a href=\"../../{url}#sha256={}\">{filename}</a><br/>\n",
            r.sha256
        ));
    }
    let mut page = serde_json::json!({
        "meta": {"api-version": "1.4"},
        "name": name,
        "files": entries,
    });
    if quarantined {
        page["project-status"] = serde_json::json!({"status": "quarantined"});
    }
    let json = Bytes::from(serde_json::to_vec(&page).unwrap());
    let html = Bytes::from(format!(
        "<!DOCTYPE html><html><body><h1>Links for {name}</h1>\n{links}</body></html>\n"
    ));
    let manifest = ProjectManifest {
        version: MANIFEST_VERSION,
        name: ProjectName::new(name).unwrap(),
        published_at: PUBLISHED_AT.into(),
        html: Page {
            raw: put(store, &html).await,
            gzip: None,
            zstd: None,
        },
        json: Page {
            raw: put(store, &json).await,
            gzip: None,
            zstd: None,
        },
        metadata,
    };
    write_manifest(store, &manifest).await.unwrap();
    digests
}
