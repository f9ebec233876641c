//! A minimum average rate on a download body, so an upstream that drip-feeds bytes (each
//! chunk just inside the read timeout) cannot hold a download slot for ever.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::time::Instant;

/// Why a body was abandoned.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Http(reqwest::Error),
    #[error(
        "download too slow: {bytes} bytes in the last {window_secs} s, below the minimum of {min} bytes/s (sync.limits.file_min_rate_bytes_per_sec); aborted"
    )]
    TooSlow { bytes: u64, window_secs: u64, min: u64 },
}

/// Wraps a body stream; after `window` has passed, each chunk checks that at least
/// `min_rate * window` bytes arrived during the last `window`, and ends the stream with
/// [`BodyError::TooSlow`] otherwise. A `min_rate` of 0 turns the check off.
pub struct MinRate<S> {
    inner: S,
    min_rate: u64,
    window: Duration,
    started: Instant,
    total: u64,
    /// (time, total bytes then), oldest first; the first entry is at most `window` old or the
    /// last one before that.
    samples: VecDeque<(Instant, u64)>,
    failed: bool,
}

impl<S> std::fmt::Debug for MinRate<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinRate")
            .field("min_rate", &self.min_rate)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl<S> MinRate<S> {
    pub fn new(inner: S, min_rate: u64, window: Duration) -> Self {
        let started = Instant::now();
        Self {
            inner,
            min_rate,
            window: window.max(Duration::from_secs(1)),
            started,
            total: 0,
            samples: VecDeque::from([(started, 0)]),
            failed: false,
        }
    }

    /// Records `n` bytes now; the error when the last window was too slow.
    fn record(&mut self, n: u64) -> Result<(), BodyError> {
        let now = Instant::now();
        self.total += n;
        self.samples.push_back((now, self.total));
        // Keep one sample at or before the window's start as the baseline.
        while self.samples.len() > 1 && now.duration_since(self.samples[1].0) >= self.window {
            self.samples.pop_front();
        }
        if self.min_rate == 0 || now.duration_since(self.started) < self.window {
            return Ok(());
        }
        let (since, base) = self.samples[0];
        let elapsed = now
            .duration_since(since)
            .as_secs_f64()
            .max(self.window.as_secs_f64());
        let bytes = self.total - base;
        if (bytes as f64) < self.min_rate as f64 * elapsed {
            return Err(BodyError::TooSlow {
                bytes,
                window_secs: elapsed.round() as u64,
                min: self.min_rate,
            });
        }
        Ok(())
    }
}

impl<S> Stream for MinRate<S>
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Unpin,
{
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match self.record(chunk.len() as u64) {
                Ok(()) => Poll::Ready(Some(Ok(chunk))),
                Err(e) => {
                    self.failed = true;
                    Poll::Ready(Some(Err(e)))
                }
            },
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Http(e.without_url())))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures::StreamExt as _;

    fn chunks(
        n: usize,
        size: usize,
        every: Duration,
    ) -> impl Stream<Item = Result<Bytes, reqwest::Error>> + Unpin {
        Box::pin(futures::stream::iter(0..n).then(move |i| async move {
            if i > 0 {
                tokio::time::sleep(every).await;
            }
            Ok(Bytes::from(vec![0u8; size]))
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn finding_10_a_drip_fed_body_is_aborted_after_the_window() {
        // 20 bytes every 1.5 s: inside any read timeout, far below 1 KiB/s.
        let mut s = MinRate::new(
            chunks(100, 20, Duration::from_millis(1500)),
            1024,
            Duration::from_secs(3),
        );
        let mut got = 0;
        let err = loop {
            match s.next().await {
                Some(Ok(c)) => got += c.len(),
                Some(Err(e)) => break e,
                None => panic!("the drip was not stopped"),
            }
        };
        assert!(got < 100, "{got} bytes before the abort");
        assert!(matches!(err, BodyError::TooSlow { min: 1024, .. }), "{err}");
        assert!(err.to_string().contains("too slow"), "{err}");
        assert!(s.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_body_passes_and_zero_turns_the_check_off() {
        let s = MinRate::new(
            chunks(50, 4096, Duration::from_millis(100)),
            16 * 1024,
            Duration::from_secs(1),
        );
        let all: Vec<_> = s.collect().await;
        assert!(all.iter().all(Result::is_ok));
        let s = MinRate::new(chunks(10, 1, Duration::from_secs(2)), 0, Duration::from_secs(1));
        assert!(s.collect::<Vec<_>>().await.iter().all(Result::is_ok));
    }
}
