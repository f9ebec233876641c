//! Progress on long work: a bar on a terminal, periodic log lines otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Counts work done; shows it as a bar or as a log line at most every `interval`.
#[derive(Debug)]
pub struct Progress {
    what: &'static str,
    bar: Option<ProgressBar>,
    total: AtomicU64,
    done: AtomicU64,
    bytes: AtomicU64,
    started: Instant,
    last_log_ms: AtomicU64,
    interval: Duration,
}

impl Progress {
    pub fn new(what: &'static str, bar: bool) -> Arc<Self> {
        let bar = bar.then(|| {
            let pb = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} {prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
            ) {
                pb.set_style(style);
            }
            pb.set_prefix(what);
            pb.enable_steady_tick(Duration::from_millis(200));
            pb
        });
        Arc::new(Self {
            what,
            bar,
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            started: Instant::now(),
            last_log_ms: AtomicU64::new(0),
            interval: Duration::from_secs(10),
        })
    }

    pub fn set_total(&self, n: u64) {
        self.total.store(n, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_length(n);
        }
    }

    pub fn add_bytes(&self, n: u64) {
        let bytes = self.bytes.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(b) = &self.bar {
            b.set_message(format!("{} downloaded", indicatif::HumanBytes(bytes)));
        }
    }

    pub fn inc(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.bar {
            Some(b) => b.set_position(done),
            None => self.maybe_log(done),
        }
    }

    fn maybe_log(&self, done: u64) {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_log_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= self.interval.as_millis() as u64
            && self
                .last_log_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::info!(
                what = self.what,
                done,
                total = self.total.load(Ordering::Relaxed),
                bytes = self.bytes.load(Ordering::Relaxed),
                "progress"
            );
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
