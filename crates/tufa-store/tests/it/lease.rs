//! The single-writer lease on every backend: S3 (moto), Azure Blob (Azurite), memory and the
//! local disk; and a store that accepts conditional headers but ignores them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path as Key;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use tufa_store::lease::{LEASE_KEY, break_lease, read_lease};
use tufa_store::{BlobStore, Lease, LeaseError, LeaseHolder, LeaseTiming, StoreError};

use crate::backends;

fn holder(pid: u32) -> LeaseHolder {
    LeaseHolder {
        host: format!("host-{pid}"),
        pid,
        started_at: jiff::Timestamp::now(),
        pid_namespace: None,
    }
}

fn timing(ttl_ms: u64, renew_ms: u64) -> LeaseTiming {
    LeaseTiming::new(Duration::from_millis(ttl_ms), Duration::from_millis(renew_ms)).unwrap()
}

const LONG: (u64, u64) = (60_000, 20_000);

#[tokio::test]
async fn acquire_refuse_take_over_lose_release() {
    for fx in backends() {
        let store = &fx.store;
        let name = store.describe().to_owned();
        // First writer; ttl 1.5 s, renewing (its renewal keeps a second writer out).
        let first = Lease::acquire(store, holder(1), timing(1_500, 300))
            .await
            .unwrap();
        let fenced = store.with_lease_fence(first.fence());
        fenced
            .put_named("published/current.json", Bytes::from_static(b"one"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        let e = Lease::acquire(store, holder(2), timing(LONG.0, LONG.1))
            .await
            .unwrap_err();
        let LeaseError::Held { holder: h, .. } = &e else {
            panic!("{name}: {e}")
        };
        assert_eq!(h.pid, 1, "{name}");
        assert!(e.to_string().contains("host host-1, pid 1"), "{name}: {e}");

        // The first writer freezes (its renewal stops); after the ttl the second takes over.
        let frozen_token = first.record().token;
        drop(first);
        tokio::time::sleep(Duration::from_millis(1_700)).await;
        let second = Lease::acquire(store, holder(2), timing(LONG.0, LONG.1))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let on_store = read_lease(store).await.unwrap().unwrap();
        assert_eq!(on_store.holder.pid, 2, "{name}");
        assert_ne!(on_store.token, frozen_token, "{name}");
        // The frozen writer's store handle refuses to publish.
        let e = fenced
            .put_named("published/current.json", Bytes::from_static(b"stale"))
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::LeaseLost { .. }), "{name}: {e}");
        assert_eq!(
            store.get_named("published/current.json").await.unwrap().unwrap(),
            Bytes::from_static(b"one"),
            "{name}"
        );
        second.ensure_held().unwrap();
        second.release().await.unwrap();
        assert_eq!(read_lease(store).await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn renewal_after_a_takeover_is_lost() {
    for fx in backends() {
        let store = &fx.store;
        let name = store.describe().to_owned();
        let first = Lease::acquire(store, holder(1), timing(LONG.0, LONG.1))
            .await
            .unwrap();
        first.renew().await.unwrap_or_else(|e| panic!("{name}: {e}"));
        break_lease(store, &first.record().token).await.unwrap();
        let second = Lease::acquire(store, holder(2), timing(LONG.0, LONG.1))
            .await
            .unwrap();
        let e = first.renew().await.unwrap_err();
        assert!(matches!(e, LeaseError::Lost { .. }), "{name}: {e}");
        assert!(first.ensure_held().is_err(), "{name}");
        // Releasing the lost lease leaves the new holder's alone.
        first.release().await.unwrap();
        assert_eq!(read_lease(store).await.unwrap().unwrap().holder.pid, 2, "{name}");
        second.release().await.unwrap();
    }
}

#[tokio::test]
async fn racing_takers_of_an_expired_lease_only_one_wins() {
    for fx in backends() {
        let store = &fx.store;
        let name = store.describe().to_owned();
        drop(Lease::acquire(store, holder(1), timing(600, 200)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(800)).await;
        let attempts = (10..16).map(|pid| {
            let store = store.clone();
            async move { Lease::acquire(&store, holder(pid), timing(LONG.0, LONG.1)).await }
        });
        let results = futures::future::join_all(attempts).await;
        let winners: Vec<&Lease> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "{name}: {results:?}");
        let on_store = read_lease(store).await.unwrap().unwrap();
        assert_eq!(on_store.token, winners[0].record().token, "{name}");
    }
}

/// An object store that turns every conditional put into a plain overwrite, as an old
/// S3-compatible server that ignores `If-None-Match` / `If-Match` would.
#[derive(Debug)]
struct IgnoresPreconditions(object_store::memory::InMemory);

impl std::fmt::Display for IgnoresPreconditions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IgnoresPreconditions")
    }
}

#[async_trait::async_trait]
impl ObjectStore for IgnoresPreconditions {
    async fn put_opts(
        &self,
        location: &Key,
        payload: PutPayload,
        mut opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        opts.mode = PutMode::Overwrite;
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Key,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Key, options: GetOptions) -> object_store::Result<GetResult> {
        self.0.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Key>>,
    ) -> BoxStream<'static, object_store::Result<Key>> {
        self.0.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Key>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.0.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Key>) -> object_store::Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Key, to: &Key, options: CopyOptions) -> object_store::Result<()> {
        self.0.copy_opts(from, to, options).await
    }
}

#[tokio::test]
async fn a_store_that_ignores_conditional_writes_is_refused() {
    let store = BlobStore::from_object_store(
        Arc::new(IgnoresPreconditions(object_store::memory::InMemory::new())),
        "s3://old-server/mirror".into(),
    );
    let e = Lease::acquire(&store, holder(1), timing(LONG.0, LONG.1))
        .await
        .unwrap_err();
    assert!(matches!(e, LeaseError::Unsupported { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("s3://old-server/mirror") && text.contains("ignores the precondition"),
        "{text}"
    );
    assert!(
        text.contains(LEASE_KEY) || text.contains("conditional writes"),
        "{text}"
    );
}
