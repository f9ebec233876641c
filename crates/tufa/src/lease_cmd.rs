//! The writer lease on the command line: the `[lease]` section, [`as_writer`] around every
//! command that publishes (`sync`, `refresh`, `import-metadata`), and `tufa lease show|break`.
//!
//! The lease itself (`lease/writer.json` in the store, conditional puts, renewal) is
//! [`tufa_store::lease`].

use std::future::Future;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::bail;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tufa_store::lease::{LEASE_KEY, break_lease, read_lease};
use tufa_store::{BlobStore, Lease, LeaseError, LeaseHolder, LeaseRecord, LeaseTiming};

use crate::config::Loaded;

/// `[lease]`: how long a writer's lease lives without renewal, and how often it is renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseConfig {
    /// A lease not renewed for this long may be taken over by another writer.
    #[serde(default = "default_ttl")]
    pub ttl_secs: u64,
    /// How often the holder renews it; less than half of `ttl_secs`.
    #[serde(default = "default_renew")]
    pub renew_secs: u64,
}

fn default_ttl() -> u64 {
    LeaseTiming::DEFAULT.ttl().as_secs()
}

fn default_renew() -> u64 {
    LeaseTiming::DEFAULT.renew().as_secs()
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            ttl_secs: default_ttl(),
            renew_secs: default_renew(),
        }
    }
}

impl LeaseConfig {
    /// The timing, checked: `renew_secs` at least 1 and below half of `ttl_secs`.
    pub fn timing(&self) -> anyhow::Result<LeaseTiming> {
        let (ttl, renew) = (self.ttl_secs, self.renew_secs);
        LeaseTiming::new(Duration::from_secs(ttl), Duration::from_secs(renew)).map_err(|_| {
            anyhow::anyhow!(
                "lease.renew_secs ({renew}) must be at least 1 and less than half of lease.ttl_secs ({ttl}), so that one failed renewal does not lose the lease (the defaults are {} and {})",
                default_renew(),
                default_ttl()
            )
        })
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.timing().map(drop)
    }
}

static PROCESS_START: OnceLock<Timestamp> = OnceLock::new();

/// Records when this process started (the `started_at` its lease names); `main` calls it first.
pub fn note_process_start() {
    PROCESS_START.get_or_init(Timestamp::now);
}

/// Takes the store's writer lease, runs `work` with a store whose every named write checks the
/// lease, and releases it at the end, also when `work` fails. A second writer gets the lease
/// error naming the holder (exit 1). If the lease is lost while `work` runs, `work` is stopped
/// where it is (as safe as a kill: every command here is resumable) and the error says so.
pub async fn as_writer<F, Fut>(loaded: &Loaded, store: &BlobStore, work: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(BlobStore) -> Fut,
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    let timing = loaded.config.lease.timing()?;
    let started = *PROCESS_START.get_or_init(Timestamp::now);
    let lease = Lease::acquire(store, LeaseHolder::this_process(started), timing).await?;
    let fenced = store.with_lease_fence(lease.fence());
    let outcome = tokio::select! {
        result = work(fenced) => result,
        lost = lease.lost() => Err(anyhow::anyhow!(
            "{lost}; stopped without publishing anything further (the next run continues from the index)"
        )),
    };
    if let Err(e) = lease.release().await {
        tracing::warn!(error = %e, "cannot release the writer lease; it expires after its ttl");
    }
    outcome
}

/// `tufa lease show`: prints the lease object, or that no writer holds the store.
pub async fn show(loaded: &Loaded) -> anyhow::Result<ExitCode> {
    let store = loaded.open_store_reachable().await?;
    match read_lease(&store).await? {
        None => println!(
            "no writer holds the store: there is no lease object {LEASE_KEY} in {}",
            store.describe()
        ),
        Some(r) => print_record(&r, store.describe()),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_record(r: &LeaseRecord, store: &str) {
    let now = Timestamp::now();
    let expiry = if r.is_expired_at(now) {
        format!(
            "expired {} s ago: the next writer takes it over",
            now.duration_since(r.expires_at).as_secs()
        )
    } else {
        format!(
            "in {} s, unless renewed",
            r.expires_at.duration_since(now).as_secs()
        )
    };
    println!("lease {LEASE_KEY} in {store}:");
    println!(
        "  holder:   host {}, pid {}, started {}",
        r.holder.host,
        r.holder.pid,
        shown(r.holder.started_at)
    );
    println!("  since:    {}", shown(r.acquired_at));
    println!("  expires:  {} ({expiry})", shown(r.expires_at));
    println!("  token:    {}", r.token);
}

fn shown(t: Timestamp) -> String {
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

/// `tufa lease break TOKEN`: removes the lease if it still has `token`.
pub async fn break_cmd(loaded: &Loaded, token: &str) -> anyhow::Result<ExitCode> {
    let store = loaded.open_store_reachable().await?;
    let r = match break_lease(&store, token).await {
        Ok(r) => r,
        Err(e @ (LeaseError::NoLease | LeaseError::TokenMismatch { .. })) => bail!("{e}"),
        Err(e) => return Err(e.into()),
    };
    println!(
        "removed the lease of host {}, pid {} (token {}) from {}",
        r.holder.host,
        r.holder.pid,
        r.token,
        store.describe()
    );
    if !r.is_expired_at(Timestamp::now()) {
        eprintln!(
            "warning: that lease had not expired: if its writer (host {}, pid {}) still runs, it keeps publishing until its next renewal fails (within lease.renew_secs)",
            r.holder.host, r.holder.pid
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c = LeaseConfig::default();
        assert_eq!((c.ttl_secs, c.renew_secs), (120, 30));
        c.validate().unwrap();
        for (ttl, renew) in [(120, 60), (120, 0), (2, 1), (10, 30)] {
            let e = LeaseConfig {
                ttl_secs: ttl,
                renew_secs: renew,
            }
            .validate()
            .unwrap_err()
            .to_string();
            assert!(
                e.contains(&format!("lease.renew_secs ({renew})"))
                    && e.contains(&format!("lease.ttl_secs ({ttl})")),
                "{e}"
            );
        }
        LeaseConfig {
            ttl_secs: 3,
            renew_secs: 1,
        }
        .validate()
        .unwrap();
    }
}
