//! Group commit of synced projects: the blobs of many projects made durable at once
//! ([`BlobStore::commit_group`]), then all of those projects recorded in the index in one
//! transaction ([`Index::commit_projects`]).
//!
//! Each project, once its files are stored, asks the committer and waits for the answer. The
//! committer takes every request waiting at that moment (up to [`MAX_BATCH`]) as one batch: it
//! commits the store's staged blobs (two `syncfs` on the local disk), then the batch's index
//! transaction, then answers every request of the batch. While it works, new requests queue
//! and form the next batch, so batches grow with the load and a lone project waits for one
//! commit only. The rule of the crash tests holds by construction: the index transaction that
//! names a blob runs after the store commit that made it durable at its address.

use tokio::sync::{mpsc, oneshot};
use tufa_index::{Index, ProjectChange, ProjectCommit};
use tufa_store::BlobStore;

/// Most projects committed in one transaction.
pub(crate) const MAX_BATCH: usize = 1024;

/// Milliseconds the committer waits between a batch's store commit and its index
/// transaction, for the crash tests: with `TUFA_TEST_COMMIT_DELAY_MS` set, a test can kill
/// `tufa sync` when blobs are durable at their addresses but not yet named by the index. Not
/// a tuning knob.
const DELAY_ENV: &str = "TUFA_TEST_COMMIT_DELAY_MS";

struct Request {
    commit: ProjectCommit,
    reply: oneshot::Sender<Result<ProjectChange, String>>,
}

/// The sending side; the committer task ends when it is dropped.
pub(crate) struct Committer {
    requests: mpsc::Sender<Request>,
}

impl Committer {
    pub(crate) fn start(store: BlobStore, index: Index) -> (Self, tokio::task::JoinHandle<()>) {
        let (requests, receiver) = mpsc::channel(MAX_BATCH);
        let delay = std::env::var(DELAY_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .map(std::time::Duration::from_millis);
        let task = tokio::spawn(run(store, index, receiver, delay));
        (Self { requests }, task)
    }

    /// Queues `commit` (waiting while the queue is full); the answer arrives once it is
    /// recorded durably, with the blobs its project stored. The project's slot is free
    /// meanwhile: the next project downloads while this one waits for its batch.
    pub(crate) async fn submit(&self, commit: ProjectCommit) -> Result<Answer, String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request { commit, reply })
            .await
            .map_err(|_| "the index committer stopped".to_owned())?;
        Ok(Answer(answer))
    }
}

/// What a project's commit changed, once its batch is durable ([`Committer::submit`]).
pub(crate) struct Answer(oneshot::Receiver<Result<ProjectChange, String>>);

impl Answer {
    pub(crate) async fn wait(self) -> Result<ProjectChange, String> {
        self.0
            .await
            .map_err(|_| "the index committer stopped".to_owned())?
    }
}

async fn run(
    store: BlobStore,
    index: Index,
    mut receiver: mpsc::Receiver<Request>,
    delay: Option<std::time::Duration>,
) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let (commits, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|r| (r.commit, r.reply)).unzip();
        let result = commit_batch(&store, &index, commits, delay).await;
        match result {
            Ok(changes) => {
                for (reply, change) in replies.into_iter().zip(changes) {
                    let _ = reply.send(Ok(change));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

async fn commit_batch(
    store: &BlobStore,
    index: &Index,
    commits: Vec<ProjectCommit>,
    delay: Option<std::time::Duration>,
) -> Result<Vec<ProjectChange>, String> {
    let blobs = store
        .commit_group()
        .await
        .map_err(|e| format!("making the downloaded files durable: {e}"))?;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let projects = commits.len();
    let index = index.clone();
    let changes = tokio::task::spawn_blocking(move || index.commit_projects(&commits))
        .await
        .map_err(|e| format!("index task: {e}"))?
        .map_err(|e| format!("index: {e}"))?;
    tracing::debug!(projects, blobs, "group commit");
    Ok(changes)
}
