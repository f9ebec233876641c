//! Prometheus metrics, kept in atomics and rendered by hand in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The route template a request matched, the `route` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Route {
    SimpleRoot,
    SimpleProject,
    Files,
    Metadata,
    Tuf,
    Health,
    Metrics,
    Other,
}

impl Route {
    const ALL: [Route; 8] = [
        Self::SimpleRoot,
        Self::SimpleProject,
        Self::Files,
        Self::Metadata,
        Self::Tuf,
        Self::Health,
        Self::Metrics,
        Self::Other,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::SimpleRoot => "simple_root",
            Self::SimpleProject => "simple_project",
            Self::Files => "files",
            Self::Metadata => "metadata",
            Self::Tuf => "tuf",
            Self::Health => "health",
            Self::Metrics => "metrics",
            Self::Other => "other",
        }
    }

    /// Classifies a request path (before routing, so 404s are labelled too).
    pub(crate) fn classify(path: &str) -> Self {
        match path {
            "/simple/" | "/simple" => Self::SimpleRoot,
            "/healthz" | "/readyz" => Self::Health,
            "/metrics" => Self::Metrics,
            p if p.starts_with("/simple/") => Self::SimpleProject,
            p if p.starts_with("/files/") && p.ends_with(".metadata") => Self::Metadata,
            p if p.starts_with("/files/") => Self::Files,
            p if p.starts_with("/tuf/") => Self::Tuf,
            _ => Self::Other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why the server closed a connection itself (`tufa_connections_closed_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Nothing read or written for `idle_timeout_secs` (or no first byte in time).
    Idle,
    /// A response write pending without progress for `send_idle_timeout_secs`.
    SendStalled,
    /// The client read a pending response below `min_send_rate_bytes_per_sec`.
    SendTooSlow,
    /// The client address already held `max_connections_per_ip` connections.
    PerClientLimit,
}

impl Closed {
    const ALL: [Closed; 4] = [
        Self::Idle,
        Self::SendStalled,
        Self::SendTooSlow,
        Self::PerClientLimit,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::SendStalled => "send_stalled",
            Self::SendTooSlow => "send_too_slow",
            Self::PerClientLimit => "per_client_limit",
        }
    }
}

/// Upper bounds of the duration histogram's buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, duration: Duration) {
        let secs = duration.as_secs_f64();
        let slot = BUCKETS.iter().position(|&le| secs <= le).unwrap_or(BUCKETS.len());
        if let Some(bucket) = self.buckets.get(slot) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// All counters of one server.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(Route, u16), u64>>,
    durations: [Histogram; Route::ALL.len()],
    response_bytes: [AtomicU64; Route::ALL.len()],
    verification_failures: AtomicU64,
    /// Local-disk file downloads started: hashed while streaming, or trusted (the
    /// `once-per-file` mode, a file identity already verified).
    downloads_hashed: AtomicU64,
    downloads_trusted: AtomicU64,
    closed: [AtomicU64; Closed::ALL.len()],
}

impl Metrics {
    pub(crate) fn record(&self, route: Route, status: u16, duration: Duration, bytes: u64) {
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((route, status))
            .or_default() += 1;
        if let Some(h) = self.durations.get(route.index()) {
            h.observe(duration);
        }
        if let Some(b) = self.response_bytes.get(route.index()) {
            b.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    pub(crate) fn verification_failed(&self) {
        self.verification_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A download of a local file starts, hashed while it streams or `trusted`.
    pub(crate) fn file_download(&self, trusted: bool) {
        let counter = if trusted {
            &self.downloads_trusted
        } else {
            &self.downloads_hashed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self, reason: Closed) {
        if let Some(c) = self.closed.get(reason as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP tufa_http_requests_total HTTP requests answered, by route and status."
        );
        let _ = writeln!(out, "# TYPE tufa_http_requests_total counter");
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for ((route, status), n) in requests {
            let _ = writeln!(
                out,
                "tufa_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                route.label()
            );
        }

        let _ = writeln!(
            out,
            "# HELP tufa_http_request_duration_seconds Time from request to the end of the response body."
        );
        let _ = writeln!(out, "# TYPE tufa_http_request_duration_seconds histogram");
        for (route, h) in Route::ALL.iter().zip(&self.durations) {
            let label = route.label();
            let mut cumulative = 0u64;
            for (le, bucket) in BUCKETS.iter().zip(&h.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "tufa_http_request_duration_seconds_bucket{{route=\"{label}\",le=\"{le}\"}} {cumulative}"
                );
            }
            cumulative += h.buckets.last().map_or(0, |b| b.load(Ordering::Relaxed));
            let _ = writeln!(
                out,
                "tufa_http_request_duration_seconds_bucket{{route=\"{label}\",le=\"+Inf\"}} {cumulative}"
            );
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "tufa_http_request_duration_seconds_sum{{route=\"{label}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "tufa_http_request_duration_seconds_count{{route=\"{label}\"}} {}",
                h.count.load(Ordering::Relaxed)
            );
        }

        let _ = writeln!(
            out,
            "# HELP tufa_http_response_bytes_total Response body bytes sent, by route."
        );
        let _ = writeln!(out, "# TYPE tufa_http_response_bytes_total counter");
        for (route, b) in Route::ALL.iter().zip(&self.response_bytes) {
            let _ = writeln!(
                out,
                "tufa_http_response_bytes_total{{route=\"{}\"}} {}",
                route.label(),
                b.load(Ordering::Relaxed)
            );
        }

        let _ = writeln!(
            out,
            "# HELP tufa_blob_verification_failures_total Stored blobs that did not hash to their address when served."
        );
        let _ = writeln!(out, "# TYPE tufa_blob_verification_failures_total counter");
        let _ = writeln!(
            out,
            "tufa_blob_verification_failures_total {}",
            self.verification_failures.load(Ordering::Relaxed)
        );

        let _ = writeln!(
            out,
            "# HELP tufa_file_downloads_total Downloads of local-disk files started, by how they are verified: hashed while streaming, or trusted (file_verification = \"once-per-file\", a file identity this process has verified)."
        );
        let _ = writeln!(out, "# TYPE tufa_file_downloads_total counter");
        for (how, counter) in [
            ("hashed", &self.downloads_hashed),
            ("trusted", &self.downloads_trusted),
        ] {
            let _ = writeln!(
                out,
                "tufa_file_downloads_total{{verification=\"{how}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }

        let _ = writeln!(
            out,
            "# HELP tufa_connections_closed_total Connections the server closed itself, by rule."
        );
        let _ = writeln!(out, "# TYPE tufa_connections_closed_total counter");
        for (reason, n) in Closed::ALL.iter().zip(&self.closed) {
            let _ = writeln!(
                out,
                "tufa_connections_closed_total{{reason=\"{}\"}} {}",
                reason.label(),
                n.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// Appends `tufa_blob_verifications_total`.
pub(crate) fn render_verifications(out: &mut String, runs: u64) {
    let _ = writeln!(
        out,
        "# HELP tufa_blob_verifications_total Whole-blob hashes run to verify a blob before serving a range of it."
    );
    let _ = writeln!(out, "# TYPE tufa_blob_verifications_total counter");
    let _ = writeln!(out, "tufa_blob_verifications_total {runs}");
}

/// Appends `tufa_tuf_timestamp_expires_in_seconds` (negative once expired).
pub(crate) fn render_timestamp_gauge(out: &mut String, seconds: i64) {
    let _ = writeln!(
        out,
        "# HELP tufa_tuf_timestamp_expires_in_seconds Seconds until the published TUF timestamp expires (negative once expired)."
    );
    let _ = writeln!(out, "# TYPE tufa_tuf_timestamp_expires_in_seconds gauge");
    let _ = writeln!(out, "tufa_tuf_timestamp_expires_in_seconds {seconds}");
}

/// Appends `tufa_policy_blocked_files{rule}`: files `[policy]` keeps out, per rule, as the
/// writer's last sync recorded them (`policy/report.json`).
pub(crate) fn render_policy_gauge(out: &mut String, report: &tufa_policy::Report) {
    let _ = writeln!(
        out,
        "# HELP tufa_policy_blocked_files Files the mirror's [policy] keeps out (in report mode: would keep out), per rule, as of the last sync."
    );
    let _ = writeln!(out, "# TYPE tufa_policy_blocked_files gauge");
    for (rule, n) in report.counts() {
        let _ = writeln!(out, "tufa_policy_blocked_files{{rule=\"{rule}\"}} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_routes() {
        for (path, route) in [
            ("/simple/", Route::SimpleRoot),
            ("/simple/foo/", Route::SimpleProject),
            ("/files/aa/bb/cc/x.whl", Route::Files),
            ("/files/aa/bb/cc/x.whl.metadata", Route::Metadata),
            ("/healthz", Route::Health),
            ("/readyz", Route::Health),
            ("/metrics", Route::Metrics),
            ("/", Route::Other),
            ("/tuf/1.root.json", Route::Tuf),
            ("/tuf/timestamp.json", Route::Tuf),
            ("/tufx", Route::Other),
        ] {
            assert_eq!(Route::classify(path), route, "{path}");
        }
    }

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record(Route::Files, 200, Duration::from_millis(3), 10);
        m.record(Route::Files, 200, Duration::from_secs(60), 5);
        m.record(Route::Other, 404, Duration::from_micros(10), 10);
        m.verification_failed();
        let text = m.render();
        assert!(
            text.contains("tufa_http_requests_total{route=\"files\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("tufa_http_requests_total{route=\"other\",status=\"404\"} 1\n"));
        assert!(
            text.contains("tufa_http_request_duration_seconds_bucket{route=\"files\",le=\"0.0025\"} 0\n")
        );
        assert!(text.contains("tufa_http_request_duration_seconds_bucket{route=\"files\",le=\"0.005\"} 1\n"));
        assert!(text.contains("tufa_http_request_duration_seconds_bucket{route=\"files\",le=\"30\"} 1\n"));
        assert!(text.contains("tufa_http_request_duration_seconds_bucket{route=\"files\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("tufa_http_request_duration_seconds_count{route=\"files\"} 2\n"));
        assert!(text.contains("tufa_http_response_bytes_total{route=\"files\"} 15\n"));
        assert!(text.contains("tufa_blob_verification_failures_total 1\n"));
        assert!(!text.contains("tufa_tuf_timestamp_expires_in_seconds"));
    }

    #[test]
    fn renders_the_timestamp_gauge() {
        let mut text = String::new();
        render_timestamp_gauge(&mut text, -5);
        assert!(text.contains("# TYPE tufa_tuf_timestamp_expires_in_seconds gauge\n"));
        assert!(
            text.ends_with("\ntufa_tuf_timestamp_expires_in_seconds -5\n"),
            "{text}"
        );
    }
}
