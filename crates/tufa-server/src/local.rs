//! Reading blobs and small named objects straight from the local disk, when the store is a
//! local directory (`BlobStore::local_path`).
//!
//! object_store's local backend reads 8 KiB per blocking call and answers every `get` with two
//! hand-offs to the blocking pool. Here:
//!
//! - **Files** are read in large chunks, each read *and hashed* in one blocking call (one
//!   hand-off per chunk, no copy beyond the read itself). The chunk size adapts to the number
//!   of files being streamed at once, so the memory held in chunks stays near
//!   [`CHUNK_BUDGET`] however many clients download: [`MAX_CHUNK`] for a few streams, down
//!   to [`MIN_CHUNK`] for hundreds. Each stream holds about two chunks (the one being read and
//!   the one hyper is writing).
//! - **Small files** whose content changes in place (`timestamp.json`) are checked with one
//!   `stat` on the async worker, and reread only when the file's identity changed.
//!
//! A file's [`FileIdentity`] is (device, inode, size, mtime, ctime), taken from the open file
//! descriptor (`fstat`), so it describes the very file that is read. The writer replaces
//! objects by renaming a new file over the old one (a new inode), and any write in place
//! changes mtime and ctime (ctime cannot be set back by a user process). What an unchanged
//! identity does not prove, and so what the opt-in `once-per-file` verification mode does not
//! catch: a change below the filesystem (a bit flip on the disk, a write to the block device, a
//! filesystem that does not update ctime, a network filesystem caching stale attributes), and
//! an in-place rewrite of the same length within one tick of the filesystem's timestamp clock
//! (a few milliseconds at worst on Linux) of the previous change.

use std::fs::File;
use std::io::{self, Read as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use futures::Stream;
use tufa_pypi::{Sha256Digest, Sha256Hasher};

/// Bytes of file chunks all streams together aim to hold.
pub(crate) const CHUNK_BUDGET: usize = 16 * 1024 * 1024;
/// The largest chunk read at once (one stream alone).
pub(crate) const MAX_CHUNK: usize = 1024 * 1024;
/// The smallest chunk read at once (many streams).
pub(crate) const MIN_CHUNK: usize = 64 * 1024;

/// What identifies one version of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileIdentity {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) len: u64,
    pub(crate) mtime: (i64, i64),
    pub(crate) ctime: (i64, i64),
}

impl FileIdentity {
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// An open blob file with the identity and modification time of what was opened.
pub(crate) struct OpenFile {
    file: File,
    pub(crate) identity: FileIdentity,
    pub(crate) modified: SystemTime,
}

/// Opens `path` and reads its identity on the blocking pool; `Ok(None)`: no such file.
pub(crate) async fn open(path: PathBuf) -> io::Result<Option<OpenFile>> {
    tokio::task::spawn_blocking(move || match File::open(&path) {
        Ok(file) => {
            let meta = file.metadata()?;
            Ok(Some(OpenFile {
                identity: FileIdentity::of(&meta),
                modified: meta.modified()?,
                file,
            }))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    })
    .await
    .map_err(io::Error::other)?
}

/// The number of file streams reading now, which sets the chunk size.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    active: AtomicUsize,
}

impl Streams {
    fn enter(self: &Arc<Self>) -> StreamGuard {
        self.active.fetch_add(1, Ordering::Relaxed);
        StreamGuard(Arc::clone(self))
    }

    /// The chunk size for the next read: the budget shared by the active streams, within
    /// [`MIN_CHUNK`]..=[`MAX_CHUNK`].
    fn chunk_size(&self) -> usize {
        let active = self.active.load(Ordering::Relaxed).max(1);
        (CHUNK_BUDGET / active).clamp(MIN_CHUNK, MAX_CHUNK)
    }
}

struct StreamGuard(Arc<Streams>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One step of [`read_chunks`].
#[derive(Debug)]
pub(crate) enum Piece {
    /// A chunk before the last.
    Chunk(Bytes),
    /// The last chunk (empty for an empty file) and, when hashing, the sha256 of all of them.
    Last(Bytes, Option<Sha256Digest>),
}

struct Reading {
    file: File,
    hasher: Option<Sha256Hasher>,
    left: u64,
    guard: StreamGuard,
}

/// The first `len` bytes of `file` (its identity's length) from its start, in chunks sized by
/// `streams`, each read (and hashed, when `hash`) in one blocking call. A file that ends
/// before `len` bytes (truncated while being read) ends the stream with an error.
pub(crate) fn read_chunks(
    file: OpenFile,
    hash: bool,
    streams: &Arc<Streams>,
) -> impl Stream<Item = io::Result<Piece>> + Send + 'static {
    let start = Reading {
        file: file.file,
        hasher: hash.then(Sha256Hasher::new),
        left: file.identity.len,
        guard: streams.enter(),
    };
    futures::stream::unfold(Some(start), |state| async move {
        let mut st = state?;
        let want = st.left.min(st.guard.0.chunk_size() as u64);
        let step = tokio::task::spawn_blocking(move || -> io::Result<(Reading, Bytes)> {
            let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(MAX_CHUNK));
            (&st.file).take(want).read_to_end(&mut buf)?;
            if (buf.len() as u64) < want {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("file ended {} bytes early", st.left - buf.len() as u64),
                ));
            }
            if let Some(hasher) = st.hasher.as_mut() {
                hasher.update(&buf);
            }
            st.left -= want;
            Ok((st, Bytes::from(buf)))
        })
        .await
        .map_err(io::Error::other)
        .and_then(|r| r);
        match step {
            Ok((mut st, chunk)) if st.left == 0 => {
                let digest = st.hasher.take().map(Sha256Hasher::finish);
                Some((Ok(Piece::Last(chunk, digest)), None))
            }
            Ok((st, chunk)) => Some((Ok(Piece::Chunk(chunk)), Some(st))),
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// A small file that changes in place, remembered with its identity so that an unchanged file
/// costs one `stat`.
#[derive(Debug, Default)]
pub(crate) struct SmallFile {
    last: std::sync::Mutex<Option<(FileIdentity, Bytes, Sha256Digest)>>,
}

impl SmallFile {
    /// The bytes of `path` (and their sha256), read again only when the file's identity
    /// changed since the last call; `Ok(None)`: no such file. The `stat` and (on a change) the
    /// read of a file of at most `max_len` bytes run on the calling worker: they are small
    /// local-disk operations, cheaper than a hand-off to the blocking pool.
    pub(crate) fn get(&self, path: &Path, max_len: u64) -> io::Result<Option<(Bytes, Sha256Digest)>> {
        let identity = match std::fs::metadata(path) {
            Ok(meta) => FileIdentity::of(&meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        {
            let last = self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((known, data, digest)) = last.as_ref()
                && *known == identity
            {
                return Ok(Some((data.clone(), *digest)));
            }
        }
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        // The identity of what is read is the open file's, not the path's a moment ago.
        let identity = FileIdentity::of(&file.metadata()?);
        if identity.len > max_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is {} bytes, more than the {max_len} allowed",
                    path.display(),
                    identity.len
                ),
            ));
        }
        let mut data = Vec::with_capacity(usize::try_from(identity.len).unwrap_or(0));
        (&file).take(max_len + 1).read_to_end(&mut data)?;
        if data.len() as u64 > max_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} grew past the {max_len} bytes allowed", path.display()),
            ));
        }
        let data = Bytes::from(data);
        let digest = Sha256Digest::of(&data);
        // Remember it only when nothing changed while reading.
        if data.len() as u64 == identity.len {
            *self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((identity, data.clone(), digest));
        }
        Ok(Some((data, digest)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures::StreamExt as _;

    #[test]
    fn chunk_size_shrinks_with_streams() {
        let streams = Arc::new(Streams::default());
        assert_eq!(streams.chunk_size(), MAX_CHUNK);
        let guards: Vec<_> = (0..64).map(|_| streams.enter()).collect();
        assert_eq!(streams.chunk_size(), CHUNK_BUDGET / 64);
        let more: Vec<_> = (0..1000).map(|_| streams.enter()).collect();
        assert_eq!(streams.chunk_size(), MIN_CHUNK);
        drop((guards, more));
        assert_eq!(streams.active.load(Ordering::Relaxed), 0);
    }

    async fn read_all(path: &Path, hash: bool) -> Vec<io::Result<Piece>> {
        let file = open(path.to_owned()).await.unwrap().unwrap();
        read_chunks(file, hash, &Arc::new(Streams::default()))
            .collect()
            .await
    }

    #[tokio::test]
    async fn reads_and_hashes_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..(MAX_CHUNK * 2 + 5)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let pieces = read_all(&path, true).await;
        assert_eq!(pieces.len(), 3);
        let mut got = Vec::new();
        for piece in pieces {
            match piece.unwrap() {
                Piece::Chunk(c) => got.extend_from_slice(&c),
                Piece::Last(c, digest) => {
                    got.extend_from_slice(&c);
                    assert_eq!(digest, Some(Sha256Digest::of(&data)));
                }
            }
        }
        assert_eq!(got, data);

        let unhashed = read_all(&path, false).await;
        assert!(matches!(unhashed.last(), Some(Ok(Piece::Last(_, None)))));

        std::fs::write(&path, b"").unwrap();
        let empty = read_all(&path, true).await;
        assert!(
            matches!(&empty[..], [Ok(Piece::Last(c, Some(d)))] if c.is_empty() && *d == Sha256Digest::of(b""))
        );
        assert!(open(dir.path().join("missing")).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_file_truncated_while_read_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, vec![1u8; MAX_CHUNK * 3]).unwrap();
        let file = open(path.clone()).await.unwrap().unwrap();
        let mut pieces = Box::pin(read_chunks(file, true, &Arc::new(Streams::default())));
        assert!(matches!(pieces.next().await, Some(Ok(Piece::Chunk(_)))));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(MAX_CHUNK as u64 + 10)
            .unwrap();
        let err = pieces.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert!(pieces.next().await.is_none());
    }

    #[test]
    fn small_file_is_reread_when_its_identity_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timestamp.json");
        let small = SmallFile::default();
        assert!(small.get(&path, 100).unwrap().is_none());
        std::fs::write(&path, b"one").unwrap();
        assert_eq!(small.get(&path, 100).unwrap().unwrap().0, "one");
        // Replaced the way the writer does it: a new file renamed over the old one.
        let tmp = dir.path().join("tmp");
        std::fs::write(&tmp, b"two").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let (data, digest) = small.get(&path, 100).unwrap().unwrap();
        assert_eq!((data.as_ref(), digest), (&b"two"[..], Sha256Digest::of(b"two")));
        // Rewritten in place with the same length (after a pause: timestamps have the
        // filesystem's granularity, see the module docs).
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, b"six").unwrap();
        assert_eq!(small.get(&path, 100).unwrap().unwrap().0, "six");
        std::fs::write(&path, vec![b'x'; 101]).unwrap();
        let err = small.get(&path, 100).unwrap_err();
        assert!(err.to_string().contains("101 bytes"), "{err}");
    }
}
