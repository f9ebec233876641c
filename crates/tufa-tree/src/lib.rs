//! `tufa-tree`: the layout of the published tree, the contract between the writer (`tufa
//! sync`'s publish step) and any number of stateless readers (`tufa serve`).
//!
//! Everything published lives in the object store:
//! - blobs (files, rendered pages, extracted METADATA) under their sha256 (`tufa-store`);
//! - one **manifest** per project, the named object `published/projects/<name>.json`, pointing
//!   at the blobs of the project's current HTML and JSON pages (each with gzip and zstd variants) and
//!   at the METADATA blob of each wheel. Replacing a manifest is atomic, and it is written only
//!   after every blob it names, so a reader never finds a dangling pointer.
//!
//! URL paths (relative to the server root) are fixed here too: pages at
//! `simple/<project>/`, distribution files at `files/<h0h1>/<h2h3>/<rest of sha256>/<filename>`
//! (content-addressed: the path alone names the blob), PEP 658 metadata at the file's path plus
//! `.metadata`.
//!
//! Must not know about: HTTP servers, the sync, signing keys.

use std::collections::BTreeMap;

use std::io::Write as _;

use bytes::Bytes;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use tufa_pypi::{DistFilename, ProjectName, Sha256Digest};
use tufa_store::{BlobStore, StoreError};

/// Folder of the project manifests.
pub const MANIFEST_DIR: &str = "published/projects";
/// Folder of the TUF metadata files (`1.root.json`, `timestamp.json`, `N.bin-XXXX.json`, …),
/// served under `/tuf/`.
pub const TUF_DIR: &str = "published/tuf";

/// The publish pointer: one small object every publish rewrites last, after everything it
/// published is in place. Readers poll it to learn that the tree changed (see
/// [`PublishPointer`]).
pub const POINTER_KEY: &str = "published/current.json";

/// The content of [`POINTER_KEY`]. Readers compare it byte for byte: any change means "a new
/// publish is complete"; the fields are for people and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishPointer {
    /// Format version ([`MANIFEST_VERSION`]'s sibling; readers ignore unknown fields).
    pub version: u32,
    /// Unique per publish (time and writer process).
    pub publish_id: String,
    /// RFC 3339, UTC.
    pub published_at: String,
    /// The TUF timestamp version this publish ends with (absent when unsigned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_version: Option<u64>,
}

/// Writes the publish pointer; call it last, after every object of the publish is stored.
pub async fn write_pointer(store: &BlobStore, pointer: &PublishPointer) -> Result<(), TreeError> {
    let data = serde_json::to_vec(pointer).map_err(TreeError::Pointer)?;
    Ok(store.put_named(POINTER_KEY, Bytes::from(data)).await?)
}

/// Reads the publish pointer; `None` before the first publish that wrote one.
pub async fn read_pointer(store: &BlobStore) -> Result<Option<PublishPointer>, TreeError> {
    let Some(data) = store.get_named(POINTER_KEY).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(TreeError::Pointer)
}

/// Object name of a TUF metadata file.
pub fn tuf_key(file: &str) -> String {
    format!("{TUF_DIR}/{file}")
}

/// Manifest format version; readers refuse other versions.
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("manifest of project `{project}` is corrupt: {source}")]
    Corrupt {
        project: String,
        source: serde_json::Error,
    },
    #[error("the publish pointer `{POINTER_KEY}` is corrupt: {0}")]
    Pointer(serde_json::Error),
    #[error("manifest of project `{project}` has version {found}, expected {MANIFEST_VERSION}")]
    Version { project: String, found: u32 },
    #[error("cannot {coding}-compress a {len}-byte page: {source}")]
    Compress {
        coding: &'static str,
        len: usize,
        source: std::io::Error,
    },
    #[error("background task failed: {0}")]
    Task(String),
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// A blob with its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub sha256: Sha256Digest,
    pub len: u64,
}

/// One rendered page: the exact bytes (what TUF signs) and pre-compressed variants of them.
/// A variant is optional: manifests written before it existed (no `zstd` before issue 11)
/// still read, and a reader serves the raw bytes or another variant instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub raw: BlobRef,
    /// The raw bytes gzip-compressed (RFC 1952), for `Content-Encoding: gzip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip: Option<BlobRef>,
    /// The raw bytes zstd-compressed (RFC 8878, one frame), for `Content-Encoding: zstd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zstd: Option<BlobRef>,
}

impl Page {
    /// The page's stored compressed variants with their `Content-Encoding` names. Every
    /// place that enumerates the blobs a manifest references goes through this, so a new
    /// variant cannot be forgotten by one of them.
    pub fn variants(&self) -> impl Iterator<Item = (&'static str, &BlobRef)> {
        [("gzip", &self.gzip), ("zstd", &self.zstd)]
            .into_iter()
            .filter_map(|(name, blob)| blob.as_ref().map(|b| (name, b)))
    }
}

/// What is published for one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectManifest {
    pub version: u32,
    pub name: ProjectName,
    /// RFC 3339, whole seconds, UTC: when this manifest was published (HTTP Last-Modified).
    pub published_at: String,
    pub html: Page,
    pub json: Page,
    /// Wheel filename → its extracted METADATA blob (PEP 658).
    #[serde(default)]
    pub metadata: BTreeMap<String, BlobRef>,
}

pub fn manifest_key(name: &ProjectName) -> String {
    format!("{MANIFEST_DIR}/{name}.json")
}

/// URL path of a distribution file, relative to the server root (no leading `/`).
pub fn file_path(sha256: &Sha256Digest, filename: &DistFilename) -> String {
    let hex = sha256.to_hex();
    format!("files/{}/{}/{}/{}", &hex[..2], &hex[2..4], &hex[4..], filename)
}

/// A parsed `files/…` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePath {
    pub sha256: Sha256Digest,
    pub filename: DistFilename,
    /// The path asked for `<file>.metadata` (PEP 658).
    pub metadata: bool,
}

/// Parses the segments after `files/`: exactly `<2 hex>/<2 hex>/<60 hex>/<filename>`. Anything
/// else (traversal, wrong lengths, a hostile filename) is `None`.
pub fn parse_file_path(rest: &str) -> Option<FilePath> {
    let mut parts = rest.split('/');
    let (a, b, c, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || a.len() != 2 || b.len() != 2 || c.len() != 60 {
        return None;
    }
    let sha256: Sha256Digest = format!("{a}{b}{c}").parse().ok()?;
    let (name, metadata) = match name.strip_suffix(".metadata") {
        Some(n) => (n, true),
        None => (name, false),
    };
    let filename = DistFilename::parse(name).ok()?;
    Some(FilePath {
        sha256,
        filename,
        metadata,
    })
}

/// Writes a project's manifest. Call only after every blob it names is stored.
pub async fn write_manifest(store: &BlobStore, manifest: &ProjectManifest) -> Result<(), TreeError> {
    store
        .put_named(&manifest_key(&manifest.name), manifest_bytes(manifest)?)
        .await?;
    Ok(())
}

fn manifest_bytes(manifest: &ProjectManifest) -> Result<Bytes, TreeError> {
    let data = serde_json::to_vec(manifest).map_err(|source| TreeError::Corrupt {
        project: manifest.name.to_string(),
        source,
    })?;
    Ok(Bytes::from(data))
}

/// [`write_manifest`] for a store in group-commit mode: the manifest replaces the published
/// one at the next [`BlobStore::commit_group`], after the blobs staged with it (its pages).
pub async fn stage_manifest(store: &BlobStore, manifest: &ProjectManifest) -> Result<(), TreeError> {
    store
        .put_named_staged(&manifest_key(&manifest.name), manifest_bytes(manifest)?)
        .await?;
    Ok(())
}

/// Reads a project's manifest; `None` when the project is not published.
pub async fn read_manifest(
    store: &BlobStore,
    name: &ProjectName,
) -> Result<Option<ProjectManifest>, TreeError> {
    let Some(data) = store.get_named(&manifest_key(name)).await? else {
        return Ok(None);
    };
    let m: ProjectManifest = serde_json::from_slice(&data).map_err(|source| TreeError::Corrupt {
        project: name.to_string(),
        source,
    })?;
    if m.version != MANIFEST_VERSION {
        return Err(TreeError::Version {
            project: name.to_string(),
            found: m.version,
        });
    }
    Ok(Some(m))
}

/// Unpublishes a project.
pub async fn delete_manifest(store: &BlobStore, name: &ProjectName) -> Result<(), TreeError> {
    Ok(store.delete_named(&manifest_key(name)).await?)
}

/// Streams the names of all published projects in the backend's listing order (lexicographic
/// on S3, directory order on local disk; PEP 503 asks for no order), without holding the list
/// in memory, so the root page stays cheap at 600k projects.
pub fn published_projects(
    store: &BlobStore,
) -> futures::stream::BoxStream<'static, Result<ProjectName, TreeError>> {
    store
        .list_named(MANIFEST_DIR)
        .filter_map(|r| async move {
            match r {
                Ok(name) => name
                    .strip_suffix(".json")
                    .and_then(|n| ProjectName::new(n).ok())
                    .map(Ok),
                Err(e) => Some(Err(TreeError::from(e))),
            }
        })
        .boxed()
}

/// zstd level of the page variants: 1, the fastest and here also the smallest of the usual
/// levels. Measured with `examples/page_compression.rs` on a 5,000-file page (release build,
/// this 2-core machine, mean of 5): HTML 2,422,693 B, gzip -9 (the gzip variant) 0.206 of it
/// in 65 ms, zstd -1 0.165 in 2.8 ms, -3 0.195 in 7.6 ms, -9 0.193 in 30 ms, -12 0.191 in
/// 93 ms, -19 0.173 in 1.4 s; JSON 2,820,470 B, gzip -9 0.212 in 69 ms, zstd -1 0.175 in
/// 5.1 ms, -3 0.195, -9 0.189 in 38 ms, -19 0.158 in 1.6 s. A page is mostly sha256 hex, and
/// the middle levels spend their time on short matches inside it that cost more than the
/// literals they replace; only the optimal parsers (16+) gain, at 300x the time. So the zstd
/// variant adds about 8 ms to the 135 ms gzip takes for such a project, and is 19% smaller.
const ZSTD_LEVEL: i32 = 1;

/// Stores rendered pages and their gzip and zstd variants (compressed off the reactor, all
/// stored at once): the publisher's pages, and the verifying replica's copies of its
/// upstream's signed pages.
pub async fn store_pages<const N: usize>(
    store: &BlobStore,
    raw: [Vec<u8>; N],
) -> Result<[Page; N], TreeError> {
    let variants = tokio::task::spawn_blocking(move || -> Result<Vec<[Bytes; 3]>, TreeError> {
        raw.into_iter()
            .map(|raw| {
                let failed = |coding| {
                    let len = raw.len();
                    move |source| TreeError::Compress { coding, len, source }
                };
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                e.write_all(&raw).map_err(failed("gzip"))?;
                let gz = e.finish().map_err(failed("gzip"))?;
                let zst = zstd::bulk::compress(&raw, ZSTD_LEVEL).map_err(failed("zstd"))?;
                Ok([Bytes::from(raw), Bytes::from(gz), Bytes::from(zst)])
            })
            .collect()
    })
    .await
    .map_err(|e| TreeError::Task(e.to_string()))??;
    let blobs: Vec<Bytes> = variants.iter().flatten().cloned().collect();
    let digests = store.put_many(blobs).await?;
    let mut refs = variants
        .iter()
        .flatten()
        .zip(digests)
        .map(|(data, sha256)| BlobRef {
            sha256,
            len: data.len() as u64,
        });
    let pages: Vec<Page> = (0..N)
        .map(|_| -> Option<Page> {
            Some(Page {
                raw: refs.next()?,
                gzip: Some(refs.next()?),
                zstd: Some(refs.next()?),
            })
        })
        .collect::<Option<_>>()
        .ok_or(TreeError::Internal("the store returned fewer digests than pages"))?;
    pages
        .try_into()
        .map_err(|_| TreeError::Internal("the store returned fewer digests than pages"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn file_paths_round_trip_and_reject_hostile_input() {
        let d = Sha256Digest::of(b"x");
        let f = DistFilename::parse("demo-1.0-py3-none-any.whl").unwrap();
        let path = file_path(&d, &f);
        let rest = path.strip_prefix("files/").unwrap();
        let parsed = parse_file_path(rest).unwrap();
        assert_eq!(
            (parsed.sha256, parsed.filename.as_str(), parsed.metadata),
            (d, f.as_str(), false)
        );
        let meta = parse_file_path(&format!("{rest}.metadata")).unwrap();
        assert!(meta.metadata);
        let hex = d.to_hex();
        for bad in [
            format!("{}/{}/{}/../x.whl", &hex[..2], &hex[2..4], &hex[4..]),
            format!("{}/{}/{}/a/demo-1.0.tar.gz", &hex[..2], &hex[2..4], &hex[4..]),
            format!("{}/{}/{}", &hex[..2], &hex[2..4], &hex[4..]),
            format!("{}/{}/demo-1.0.tar.gz", &hex[..2], &hex[2..]),
            format!("zz/{}/{}/demo-1.0.tar.gz", &hex[2..4], &hex[4..]),
            format!("{}/{}/{}/demo%2F-1.0.tar.gz", &hex[..2], &hex[2..4], &hex[4..]),
        ] {
            assert!(parse_file_path(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn page_without_zstd_reads_and_writes_in_its_old_shape() {
        let blob = |b: &[u8]| BlobRef {
            sha256: Sha256Digest::of(b),
            len: b.len() as u64,
        };
        let (raw, gz, zst) = (blob(b"raw"), blob(b"gz"), blob(b"zst"));
        // A page as manifests before zstd variants have it.
        let old = serde_json::json!({ "raw": raw, "gzip": gz });
        let page: Page = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(page.zstd, None);
        assert_eq!(serde_json::to_value(&page).unwrap(), old);
        assert_eq!(page.variants().collect::<Vec<_>>(), [("gzip", &gz)]);

        let page = Page {
            zstd: Some(zst),
            ..page
        };
        let json = serde_json::to_value(&page).unwrap();
        assert_eq!(json["zstd"], serde_json::json!(zst));
        assert_eq!(serde_json::from_value::<Page>(json).unwrap(), page);
        assert_eq!(
            page.variants().collect::<Vec<_>>(),
            [("gzip", &gz), ("zstd", &zst)]
        );
        let bare = Page {
            raw,
            gzip: None,
            zstd: None,
        };
        assert_eq!(bare.variants().count(), 0);
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            serde_json::json!({ "raw": raw })
        );
    }

    #[tokio::test]
    async fn manifests_round_trip_and_list() {
        let store = BlobStore::memory();
        let r = BlobRef {
            sha256: Sha256Digest::of(b"p"),
            len: 1,
        };
        for n in ["b", "a"] {
            let m = ProjectManifest {
                version: MANIFEST_VERSION,
                name: ProjectName::new(n).unwrap(),
                published_at: "2026-01-01T00:00:00Z".into(),
                html: Page {
                    raw: r,
                    gzip: None,
                    zstd: None,
                },
                json: Page {
                    raw: r,
                    gzip: Some(r),
                    zstd: Some(r),
                },
                metadata: BTreeMap::new(),
            };
            write_manifest(&store, &m).await.unwrap();
            assert_eq!(read_manifest(&store, &m.name).await.unwrap().unwrap(), m);
        }
        let mut names: Vec<String> = published_projects(&store)
            .map(|r| r.unwrap().to_string())
            .collect()
            .await;
        names.sort();
        assert_eq!(names, ["a", "b"]);
        delete_manifest(&store, &ProjectName::new("a").unwrap())
            .await
            .unwrap();
        assert!(
            read_manifest(&store, &ProjectName::new("a").unwrap())
                .await
                .unwrap()
                .is_none()
        );
    }
}
