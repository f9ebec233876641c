//! Writing blobs: only verified content becomes visible.

use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream;
use tufa_pypi::{Sha256Digest, Sha256Hasher};
use tufa_store::{PutOutcome, StoreError};

use crate::{assert_nothing_stored, backends, body, content};

#[tokio::test]
async fn correct_digest_is_stored_and_reads_back() {
    for fx in backends() {
        let store = &fx.store;
        let data = content(300_000, 1);
        let digest = Sha256Digest::of(&data);
        let outcome = store
            .put_stream(&digest, Some(data.len() as u64), 1 << 20, body(&data, 4096))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            PutOutcome::Stored { len: 300_000 },
            "{}",
            store.describe()
        );
        assert!(store.exists(&digest).await.unwrap());
        assert_eq!(store.size(&digest).await.unwrap(), Some(300_000));
        assert_eq!(store.get(&digest).await.unwrap(), data);
        assert_eq!(store.get_verified(&digest).await.unwrap(), data);
        assert!(store.temp_objects().await.unwrap().is_empty());
        if let Some(path) = store.local_path(&digest) {
            assert_eq!(std::fs::read(path).unwrap(), data);
        }
    }
}

#[tokio::test]
async fn empty_blob() {
    for fx in backends() {
        let store = &fx.store;
        let digest = Sha256Digest::of(b"");
        let outcome = store
            .put_stream(&digest, Some(0), 0, body(&Bytes::new(), 1))
            .await
            .unwrap();
        assert_eq!(outcome, PutOutcome::Stored { len: 0 }, "{}", store.describe());
        assert_eq!(store.get_verified(&digest).await.unwrap(), Bytes::new());
    }
}

#[tokio::test]
async fn wrong_digest_is_refused_and_leaves_nothing() {
    for fx in backends() {
        let store = &fx.store;
        let data = content(100_000, 2);
        let actual = Sha256Digest::of(&data);
        let claimed = Sha256Digest::of(b"something else");
        let err = store
            .put_stream(&claimed, None, 1 << 20, body(&data, 1000))
            .await
            .unwrap_err();
        match &err {
            StoreError::Mismatch {
                expected,
                actual: got,
                len,
            } => {
                assert_eq!((expected, got, *len), (&claimed, &actual, 100_000));
            }
            other => panic!("{}: expected Mismatch, got {other:?}", store.describe()),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(&claimed.to_hex()) && msg.contains(&actual.to_hex()),
            "{msg}"
        );
        assert_nothing_stored(store, &claimed).await;
        assert_nothing_stored(store, &actual).await;
    }
}

#[tokio::test]
async fn failing_stream_is_a_source_error_and_leaves_nothing() {
    for fx in backends() {
        let store = &fx.store;
        // Larger than one upload part, so parts were already written when the body fails.
        let data = content(6 * 1024 * 1024, 3);
        let digest = Sha256Digest::of(&data);
        let truncated = body(&data.slice(..5_500_000), 64 * 1024).chain(stream::iter([Err(
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"),
        )]));
        let err = store
            .put_stream(&digest, Some(data.len() as u64), 1 << 30, truncated)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Source { digest: d, .. } if *d == digest),
            "{}: {err:?}",
            store.describe()
        );
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("connection closed"), "{source}");
        assert_nothing_stored(store, &digest).await;
    }
}

#[tokio::test]
async fn length_mismatch_is_refused() {
    for fx in backends() {
        let store = &fx.store;
        let data = content(10_000, 4);
        let digest = Sha256Digest::of(&data);

        // Shorter than announced.
        let err = store
            .put_stream(&digest, Some(10_001), 1 << 20, body(&data, 999))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::LengthMismatch {
                    expected: 10_001,
                    actual: 10_000,
                    ..
                }
            ),
            "{}: {err:?}",
            store.describe()
        );
        assert_nothing_stored(store, &digest).await;

        // Longer than announced: reading stops at the first chunk past the announced length.
        let err = store
            .put_stream(&digest, Some(5_000), 1 << 20, body(&data, 1000))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::LengthMismatch {
                    expected: 5_000,
                    actual: 6_000,
                    ..
                }
            ),
            "{}: {err:?}",
            store.describe()
        );
        assert_nothing_stored(store, &digest).await;
    }
}

#[tokio::test]
async fn over_limit_is_too_large_and_stops_reading() {
    for fx in backends() {
        let store = &fx.store;
        let data = content(10_000, 5);
        let digest = Sha256Digest::of(&data);
        let err = store
            .put_stream(&digest, None, 4_096, body(&data, 1024))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::TooLarge { max: 4_096, digest: d } if d == digest),
            "{}: {err:?}",
            store.describe()
        );
        assert_nothing_stored(store, &digest).await;

        // An endless body is cut off too.
        let endless = stream::repeat_with(|| Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 65536])));
        let err = store
            .put_stream(&digest, None, 1 << 20, endless)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
        assert_nothing_stored(store, &digest).await;
    }
}

#[tokio::test]
async fn second_put_is_already_present() {
    for fx in backends() {
        let store = &fx.store;
        let data = content(50_000, 6);
        let digest = Sha256Digest::of(&data);
        let first = store
            .put_stream(&digest, None, 1 << 20, body(&data, 7000))
            .await
            .unwrap();
        assert_eq!(first, PutOutcome::Stored { len: 50_000 });
        let second = store
            .put_stream(&digest, Some(50_000), 1 << 20, body(&data, 3000))
            .await
            .unwrap();
        assert_eq!(
            second,
            PutOutcome::AlreadyPresent { len: 50_000 },
            "{}",
            store.describe()
        );
        assert!(store.temp_objects().await.unwrap().is_empty());
        assert_eq!(store.get_verified(&digest).await.unwrap(), data);

        // Bad bytes for a present blob are still refused, and the blob stays intact.
        let err = store
            .put_stream(&digest, None, 1 << 20, body(&content(50_000, 7), 3000))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Mismatch { .. }), "{err:?}");
        assert_eq!(store.get_verified(&digest).await.unwrap(), data);
    }
}

#[tokio::test]
async fn concurrent_puts_of_the_same_blob() {
    for fx in backends() {
        let store = &fx.store;
        let data = content(200_000, 8);
        let digest = Sha256Digest::of(&data);
        let puts = (0..8).map(|_| store.put_stream(&digest, None, 1 << 20, body(&data, 8192)));
        let outcomes = futures::future::try_join_all(puts).await.unwrap();
        let stored = outcomes
            .iter()
            .filter(|o| matches!(o, PutOutcome::Stored { .. }))
            .count();
        assert_eq!(stored, 1, "{}: {outcomes:?}", store.describe());
        assert_eq!(store.get_verified(&digest).await.unwrap(), data);
        assert!(store.temp_objects().await.unwrap().is_empty());
    }
}

/// 20 MiB in 64 KiB chunks, generated and hashed on the fly: the store must stream it through
/// multipart parts rather than need it whole.
#[tokio::test]
async fn large_stream() {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 320;
    let chunk_at = |i: usize| content(CHUNK, i as u8);
    let mut hasher = Sha256Hasher::new();
    for i in 0..CHUNKS {
        hasher.update(&chunk_at(i));
    }
    let digest = hasher.finish();
    let total = (CHUNK * CHUNKS) as u64;

    for fx in backends() {
        let store = &fx.store;
        let body = stream::iter(0..CHUNKS).map(move |i| Ok::<_, std::io::Error>(chunk_at(i)));
        let outcome = store.put_stream(&digest, Some(total), total, body).await.unwrap();
        assert_eq!(outcome, PutOutcome::Stored { len: total }, "{}", store.describe());
        assert_eq!(store.size(&digest).await.unwrap(), Some(total));
        assert_eq!(
            store.verify(&digest).await.unwrap(),
            tufa_store::VerifyOutcome::Ok { len: total }
        );
        let (len, mut bytes) = store.stream(&digest).await.unwrap();
        assert_eq!(len, total);
        let mut again = Sha256Hasher::new();
        let mut seen = 0u64;
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk.unwrap();
            seen += chunk.len() as u64;
            again.update(&chunk);
        }
        assert_eq!((seen, again.finish()), (total, digest));
        assert!(store.temp_objects().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn cancelled_put_leaves_nothing() {
    for fx in backends() {
        let store = &fx.store;
        let data = content(8 * 1024 * 1024, 9);
        let digest = Sha256Digest::of(&data);
        // A body that delivers 6 MiB, then never ends.
        let stalled = body(&data.slice(..6 * 1024 * 1024), 64 * 1024).chain(stream::pending());
        let put = store.put_stream(&digest, None, 1 << 30, stalled);
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(300), put).await;
        assert!(timed_out.is_err());
        // The background cleanup runs on the runtime; give it a moment.
        for _ in 0..100 {
            if store.temp_objects().await.unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_nothing_stored(store, &digest).await;
    }
}

#[tokio::test]
async fn stale_temps_are_swept() {
    for fx in backends() {
        let store = &fx.store;
        // Leave an unfinished upload behind by leaking the future mid-stream.
        let data = content(6 * 1024 * 1024, 10);
        let digest = Sha256Digest::of(&data);
        let stalled = body(&data, 64 * 1024).chain(stream::pending());
        let mut put = Box::pin(store.put_stream(&digest, None, 1 << 30, stalled));
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), &mut put).await;
        let leftovers = store.temp_objects().await.unwrap();
        // The local backend writes parts to a staging file as they fill; object stores record
        // the multipart upload they started.
        assert_eq!(leftovers.len(), 1, "{}: {leftovers:?}", store.describe());
        let removed = store.remove_stale_temps(std::time::Duration::ZERO).await.unwrap();
        assert_eq!(removed, leftovers.len());
        assert!(store.temp_objects().await.unwrap().is_empty());
        std::mem::forget(put);
        assert_nothing_stored(store, &digest).await;
    }
}

#[tokio::test]
async fn put_bytes_stores_under_its_digest() {
    for fx in backends() {
        let store = &fx.store;
        let page = Bytes::from_static(b"<!DOCTYPE html><html><body></body></html>");
        let digest = store.put_bytes(page.clone()).await.unwrap();
        assert_eq!(digest, Sha256Digest::of(&page));
        assert_eq!(store.put_bytes(page.clone()).await.unwrap(), digest);
        assert_eq!(store.get_verified(&digest).await.unwrap(), page);
        assert!(store.temp_objects().await.unwrap().is_empty());

        let big = content(2 * 1024 * 1024, 11);
        let digest = store.put_bytes(big.clone()).await.unwrap();
        assert_eq!(store.get(&digest).await.unwrap(), big);
    }
}

/// A writer killed mid-upload leaves an incomplete multipart upload in the bucket, invisible
/// but billed; the next sweep aborts it through the record the upload left under `tmp/`.
#[tokio::test]
async fn a_killed_uploads_parts_are_aborted_on_s3() {
    let (store, bucket) = crate::s3_store_in();
    let server = tufa_testkit::shared_s3();
    let data = content(12 * 1024 * 1024, 11);
    let digest = Sha256Digest::of(&data);
    let stalled = body(&data, 256 * 1024).chain(stream::pending());
    let mut put = Box::pin(store.put_stream(&digest, None, 1 << 30, stalled));
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), &mut put).await;
    // As if the process died: the future is never dropped, nothing runs its cleanup.
    std::mem::forget(put);
    assert_eq!(
        server.multipart_uploads(&bucket),
        ["mirror/blobs/sha256/".to_owned()
            + &digest.to_hex()[..2]
            + "/"
            + &digest.to_hex()[2..4]
            + "/"
            + &digest.to_hex()]
    );
    let records = store.temp_objects().await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0].starts_with("multipart-"), "{records:?}");

    assert_eq!(
        store.remove_stale_temps(std::time::Duration::ZERO).await.unwrap(),
        1
    );
    assert!(server.multipart_uploads(&bucket).is_empty());
    assert_nothing_stored(&store, &digest).await;
}
