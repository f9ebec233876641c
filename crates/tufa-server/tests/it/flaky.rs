//! A store that stops answering on demand: timeouts, readiness, store outages.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::http::StatusCode;
use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::{self, BoxStream};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};
use tufa_server::ServerLimits;
use tufa_store::BlobStore;

use crate::fixture::Fixture;
use crate::get;

#[derive(Debug, Default)]
pub struct Flaky {
    inner: InMemory,
    /// Reads never complete.
    hang: AtomicBool,
    /// Reads and listings fail.
    fail: AtomicBool,
    /// Full reads of this object yield their first chunk, then never another.
    pub stall_body: std::sync::Mutex<Option<Path>>,
}

impl fmt::Display for Flaky {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("flaky")
    }
}

fn down() -> object_store::Error {
    object_store::Error::Generic {
        store: "flaky",
        source: "connection refused to s3.internal.example/secret-bucket".into(),
    }
}

#[async_trait]
impl ObjectStore for Flaky {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(down());
        }
        let stall = !options.head && self.stall_body.lock().unwrap().as_ref() == Some(location);
        let mut result = self.inner.get_opts(location, options).await?;
        if stall && let object_store::GetResultPayload::Stream(body) = result.payload {
            result.payload =
                object_store::GetResultPayload::Stream(body.take(1).chain(stream::pending()).boxed());
        }
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if self.fail.load(Ordering::SeqCst) {
            return stream::once(async { Err(down()) }).boxed();
        }
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

pub async fn flaky_fixture(limits: ServerLimits) -> (Arc<Flaky>, Fixture) {
    let flaky = Arc::new(Flaky::default());
    let store = BlobStore::from_object_store(Arc::clone(&flaky) as Arc<dyn ObjectStore>, "flaky".into());
    (flaky, Fixture::build(store, None, limits).await)
}

#[tokio::test]
async fn slow_store_times_out_with_503() {
    let limits = ServerLimits {
        request_timeout_secs: 1,
        ..ServerLimits::default()
    };
    let (flaky, f) = flaky_fixture(limits).await;
    flaky.hang.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let a = get(&f.app, "/simple/demo/", &[]).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.text(), "request timed out\n");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Endpoints that do not read the store still answer.
    assert_eq!(get(&f.app, "/healthz", &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn store_outage_is_503_and_leaks_nothing() {
    let (flaky, f) = flaky_fixture(ServerLimits::default()).await;
    assert_eq!(get(&f.app, "/readyz", &[]).await.status, StatusCode::OK);
    flaky.fail.store(true, Ordering::SeqCst);

    let a = get(&f.app, "/readyz", &[]).await;
    assert_eq!(
        (a.status, a.text().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    );
    for uri in [
        "/simple/demo/".to_owned(),
        "/simple/".to_owned(),
        f.wheel_url(),
        format!("{}.metadata", f.wheel_url()),
    ] {
        let a = get(&f.app, &uri, &[]).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(a.text(), "service unavailable\n", "{uri}");
    }
    // Liveness does not depend on the store.
    assert_eq!(get(&f.app, "/healthz", &[]).await.status, StatusCode::OK);

    // Once the store answers again, so does the server.
    flaky.fail.store(false, Ordering::SeqCst);
    assert_eq!(get(&f.app, "/simple/demo/", &[]).await.status, StatusCode::OK);
    assert_eq!(get(&f.app, "/readyz", &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn finding_05_a_verification_nobody_waits_for_stops_and_frees_its_slot() {
    let limits = ServerLimits {
        request_timeout_secs: 1,
        max_concurrent_verifications: 1,
        ..ServerLimits::default()
    };
    let (flaky, f) = flaky_fixture(limits).await;
    let url = f.wheel_url();
    // Warm the published-file list, so that only the wheel's body stalls below.
    assert_eq!(crate::head(&f.app, &url, &[]).await.status, StatusCode::OK);
    *flaky.stall_body.lock().unwrap() = Some(BlobStore::key_for(&f.wheel_digest));
    // The only verification slot is taken by a hash that never finishes; the request gives up.
    let a = get(&f.app, &url, &[("range", "bytes=0-9")]).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    // Had the abandoned hash kept running, it would hold the only slot forever.
    *flaky.stall_body.lock().unwrap() = None;
    let a = get(&f.app, &url, &[("range", "bytes=0-9")]).await;
    assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(a.body[..], f.wheel[..10]);
    let m = get(&f.app, "/metrics", &[]).await.text();
    assert_eq!(
        crate::findings::metric(&m, "tufa_blob_verifications_total"),
        2,
        "{m}"
    );
}
