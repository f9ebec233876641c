//! Explicit limits on everything read from an upstream, and concurrency settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits on untrusted upstream input. Every default is documented in README.md's config
/// reference; all are overridable in `tufa.toml` under `[sync.limits]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest project page (JSON or HTML) or XML-RPC answer read, in bytes. PyPI's largest
    /// project pages are a few MiB.
    pub max_page_bytes: u64,
    /// Largest distribution file accepted, in bytes. PyPI's own upload limit is far below the
    /// default; a bigger body is cut off (endless-data protection).
    pub max_file_bytes: u64,
    /// Most file entries accepted on one project page.
    pub max_files_per_project: usize,
    /// Seconds to wait for a TCP/TLS connection.
    pub connect_timeout_secs: u64,
    /// Seconds a response may stay silent (no bytes) before it is abandoned.
    pub read_timeout_secs: u64,
    /// Seconds one project page request may take in total.
    pub page_timeout_secs: u64,
    /// Retries of a request after a 5xx, 429, timeout or broken connection.
    pub retries: u32,
    /// First retry delay in milliseconds; doubles each retry, with jitter.
    pub retry_base_delay_ms: u64,
    /// Longest `Retry-After` (429, 503) honoured, in seconds; a longer one is cut to this.
    pub max_retry_after_secs: u64,
    /// Slowest file download accepted, in bytes per second, averaged over the last
    /// `file_rate_window_secs` (and checked only once a download is that old). A slower body
    /// is aborted, so a drip-feeding upstream cannot hold a download slot for ever. 0: off.
    pub file_min_rate_bytes_per_sec: u64,
    /// The window (and grace period) of `file_min_rate_bytes_per_sec`, in seconds.
    pub file_rate_window_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_page_bytes: 64 * 1024 * 1024,
            max_file_bytes: 8 * 1024 * 1024 * 1024,
            max_files_per_project: 50_000,
            connect_timeout_secs: 10,
            read_timeout_secs: 60,
            page_timeout_secs: 120,
            retries: 4,
            retry_base_delay_ms: 500,
            max_retry_after_secs: 60,
            file_min_rate_bytes_per_sec: 16 * 1024,
            file_rate_window_secs: 20,
        }
    }
}

impl Limits {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
    pub fn read_timeout(&self) -> Duration {
        Duration::from_secs(self.read_timeout_secs)
    }
    pub fn page_timeout(&self) -> Duration {
        Duration::from_secs(self.page_timeout_secs)
    }
}

/// How much runs at once. The defaults keep a 1 Gbit/s link busy with PyPI-sized files
/// without opening more connections than a polite mirror should.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Concurrency {
    /// Project pages fetched and processed at once.
    pub projects: usize,
    /// File downloads in flight at once, across all projects.
    pub downloads: usize,
    /// Projects published at once by the publish that follows a sync (METADATA extraction,
    /// rendering, compression: CPU work, so about the number of cores). Not used by the sync
    /// itself; kept here so `[sync.concurrency]` holds all of a sync run's knobs.
    pub publish: usize,
}

impl Default for Concurrency {
    fn default() -> Self {
        Self {
            projects: 8,
            downloads: 16,
            publish: 4,
        }
    }
}
