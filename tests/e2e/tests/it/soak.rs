//! Soak (behind `--ignored`): `tufa serve`, pinned to CPU 0, under 256 concurrent client
//! connections for `TUFA_SOAK_SECS` (default 60) while upstream changes and `tufa sync`
//! publishes about every 20 s. Every response is checked: each page (HTML or JSON, gzip or
//! not) against a signed TUF target (sha256 and length from a bin published during the run),
//! each file against the sha256 its verified JSON page gives, each METADATA file against the
//! page's `core-metadata` sha256. Zero errors, flat RSS; a table of requests, errors and the
//! server's RSS (sampled every 10 s) is printed.
//!
//! ```text
//! cargo build --release -p tufa
//! TUFA_SOAK_SECS=600 cargo test -p tufa-e2e --release --test it -- --ignored soak --nocapture
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tufa_fake_upstream::{ProjectSpec, ReleaseSpec};
use tufa_pypi::Sha256Digest;
use tufa_tuf::{Snapshot, Targets, Timestamp};

use crate::crash::{SplitMix64, big_release, init_mirror};
use crate::harness::{Mirror, check, runtime, tufa_sync};
use crate::tuf::parse;

const CONNECTIONS: usize = 256;
const SYNC_EVERY: Duration = Duration::from_secs(20);
const RSS_EVERY: Duration = Duration::from_secs(10);
/// How long a page that is not (yet) signed may wait for the publish that signs it: pages are
/// visible before the timestamp that signs them is written.
const SIGNING_GRACE: Duration = Duration::from_secs(30);

/// The signed targets seen in any TUF version published during the run: path → (sha256, len).
#[derive(Debug, Default)]
struct Signed {
    targets: HashMap<String, HashSet<(String, u64)>>,
    /// `<version>.<bin>.json` already read (consistent snapshots never change).
    bins_read: HashSet<String>,
    timestamps_seen: HashSet<u64>,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    pages: AtomicU64,
    gzip_pages: AtomicU64,
    files: AtomicU64,
    metadata: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    /// Pages first seen before the publish that signs them finished (then verified).
    signed_late: AtomicU64,
}

struct Shared {
    root: String,
    projects: Mutex<Vec<String>>,
    signed: Mutex<Signed>,
    counters: Counters,
    first_errors: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Shared {
    fn error(&self, e: String) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_errors.lock().unwrap();
        if first.len() < 20 {
            first.push(e);
        }
    }

    fn is_signed(&self, path: &str, sha: &str, len: u64) -> bool {
        self.signed
            .lock()
            .unwrap()
            .targets
            .get(path)
            .is_some_and(|s| s.contains(&(sha.to_owned(), len)))
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if resp.status() != 200 {
        return Err(format!("GET {url}: {}", resp.status()));
    }
    Ok(resp
        .bytes()
        .await
        .map_err(|e| format!("GET {url}: body: {e}"))?
        .to_vec())
}

/// Reads the current timestamp → snapshot → bins from `/tuf/` and adds their targets.
async fn refresh_signed(client: &reqwest::Client, shared: &Shared) -> Result<(), String> {
    let tuf = format!("{}tuf/", shared.root);
    let ts: Timestamp = parse(
        "timestamp.json",
        &get(client, &format!("{tuf}timestamp.json")).await?,
    );
    let version = ts.snapshot_meta().map_err(|e| e.to_string())?.version;
    if !shared.signed.lock().unwrap().timestamps_seen.insert(ts.version) {
        return Ok(());
    }
    let name = format!("{version}.snapshot.json");
    let snapshot: Snapshot = parse(&name, &get(client, &format!("{tuf}{name}")).await?);
    for (meta, file) in &snapshot.meta {
        if !meta.starts_with("bin-") {
            continue;
        }
        let name = format!("{}.{meta}", file.version);
        if shared.signed.lock().unwrap().bins_read.contains(&name) {
            continue;
        }
        let bin: Targets = parse(&name, &get(client, &format!("{tuf}{name}")).await?);
        let mut signed = shared.signed.lock().unwrap();
        for (path, target) in bin.targets {
            let sha = target.sha256().map(|d| d.to_hex()).unwrap_or_default();
            signed
                .targets
                .entry(path.to_string())
                .or_default()
                .insert((sha, target.length));
        }
        signed.bins_read.insert(name);
    }
    Ok(())
}

/// Checks a page against the signed targets, waiting for the publish that signs it if need be.
async fn check_page(
    client: &reqwest::Client,
    shared: &Shared,
    target: &str,
    body: &[u8],
) -> Result<(), String> {
    let sha = Sha256Digest::of(body).to_hex();
    let len = body.len() as u64;
    if shared.is_signed(target, &sha, len) {
        return Ok(());
    }
    let start = Instant::now();
    while start.elapsed() < SIGNING_GRACE {
        refresh_signed(client, shared).await?;
        if shared.is_signed(target, &sha, len) {
            shared.counters.signed_late.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!(
        "{target}: the page served (sha256 {sha}, {len} bytes) is not signed by any timestamp within {SIGNING_GRACE:?}"
    ))
}

/// A page: `Accept` for the format, gzip or not; returns the (decoded) body once verified.
async fn fetch_page(
    client: &reqwest::Client,
    shared: &Shared,
    project: &str,
    json: bool,
    gzip: bool,
) -> Result<Vec<u8>, String> {
    let url = format!("{}simple/{project}/", shared.root);
    let accept = if json {
        "application/vnd.pypi.simple.v1+json"
    } else {
        "text/html"
    };
    let mut req = client.get(&url).header("Accept", accept);
    if gzip {
        req = req.header("Accept-Encoding", "gzip");
    }
    let resp = req.send().await.map_err(|e| format!("GET {url}: {e}"))?;
    if resp.status() != 200 {
        return Err(format!("GET {url} ({accept}): {}", resp.status()));
    }
    let gzipped = resp
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip");
    if gzip != gzipped {
        return Err(format!(
            "GET {url}: asked gzip={gzip}, got content-encoding gzip={gzipped}"
        ));
    }
    let raw = resp.bytes().await.map_err(|e| format!("GET {url}: body: {e}"))?;
    shared
        .counters
        .bytes
        .fetch_add(raw.len() as u64, Ordering::Relaxed);
    let body = if gzipped {
        shared.counters.gzip_pages.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("GET {url}: bad gzip: {e}"))?;
        out
    } else {
        raw.to_vec()
    };
    let target = format!("simple/{project}/index.{}", if json { "json" } else { "html" });
    check_page(client, shared, &target, &body).await?;
    shared.counters.pages.fetch_add(1, Ordering::Relaxed);
    Ok(body)
}

/// One client connection's loop: a JSON page, sometimes the HTML page, one of its files and
/// that file's METADATA, each verified.
async fn client_loop(shared: Arc<Shared>, seed: u64) {
    // One connection per client: a pool of one idle connection, reused request after request.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut rng = SplitMix64::new(seed);
    while !shared.stop.load(Ordering::Relaxed) {
        if let Err(e) = one_round(&client, &shared, &mut rng).await {
            shared.error(e);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn one_round(client: &reqwest::Client, shared: &Shared, rng: &mut SplitMix64) -> Result<(), String> {
    let project = {
        let projects = shared.projects.lock().unwrap();
        projects[rng.below(projects.len() as u64) as usize].clone()
    };
    let c = &shared.counters;
    c.requests.fetch_add(1, Ordering::Relaxed);
    let json = fetch_page(client, shared, &project, true, rng.below(2) == 0).await?;
    if rng.below(2) == 0 {
        c.requests.fetch_add(1, Ordering::Relaxed);
        fetch_page(client, shared, &project, false, rng.below(2) == 0).await?;
    }
    let page: Value = serde_json::from_slice(&json).map_err(|e| format!("{project}: JSON page: {e}"))?;
    let files = page["files"].as_array().cloned().unwrap_or_default();
    if files.is_empty() {
        return Ok(());
    }
    let file = &files[rng.below(files.len() as u64) as usize];
    let url = file["url"].as_str().unwrap_or_default();
    let path = url.split('#').next().unwrap_or_default();
    let path = path
        .strip_prefix("../../")
        .ok_or_else(|| format!("{project}: unexpected file URL {url}"))?;
    let file_url = format!("{}{path}", shared.root);
    c.requests.fetch_add(1, Ordering::Relaxed);
    let body = get(client, &file_url).await?;
    c.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    let want = file["hashes"]["sha256"].as_str().unwrap_or_default();
    let got = Sha256Digest::of(&body).to_hex();
    if got != want {
        return Err(format!("{file_url}: sha256 {got}, the signed page says {want}"));
    }
    c.files.fetch_add(1, Ordering::Relaxed);
    if let Some(meta_sha) = file["core-metadata"]["sha256"].as_str() {
        c.requests.fetch_add(1, Ordering::Relaxed);
        let meta_url = format!("{file_url}.metadata");
        let body = get(client, &meta_url).await?;
        c.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        let got = Sha256Digest::of(&body).to_hex();
        if got != meta_sha {
            return Err(format!(
                "{meta_url}: sha256 {got}, the signed page says {meta_sha}"
            ));
        }
        c.metadata.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Open file descriptors of `pid` (its sockets: the listener, the client connections).
fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Pins `pid` (every thread) to `cpu`.
fn pin(pid: u32, cpu: usize) {
    let out = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("taskset: {e}"));
    assert!(
        out.status.success(),
        "taskset: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "soak: minutes long; run with TUFA_SOAK_SECS=600 ... -- --ignored soak"]
fn soak_serve_256_connections_while_syncs_publish() {
    let secs: u64 = std::env::var("TUFA_SOAK_SECS")
        .ok()
        .map_or(60, |v| v.parse().expect("TUFA_SOAK_SECS is a number of seconds"));
    let duration = Duration::from_secs(secs);
    let _ = rustls::crypto::ring::default_provider().install_default();

    // An upstream with the demo chain and 20 more projects (a few KiB per file).
    let mut specs = tufa_fake_upstream::demo_projects();
    for i in 0..20u64 {
        specs.push(
            ProjectSpec::new(&format!("soak-{i}"))
                .release(big_release("1.0", 50, i))
                .release(ReleaseSpec::new("1.1")),
        );
    }
    let names: Vec<String> = specs
        .iter()
        .map(|p| tufa_fake_upstream::normalize_name(&p.name))
        .collect();
    let up = runtime().block_on(tufa_fake_upstream::FakeUpstream::start(specs));
    let (dir, config) = init_mirror(&up);
    // 256 connections come from one address.
    let toml = std::fs::read_to_string(&config).unwrap();
    assert!(toml.contains("\n[serve.limits]\n"), "{toml}");
    std::fs::write(
        &config,
        toml.replace(
            "\n[serve.limits]\n",
            "\n[serve.limits]\nmax_connections_per_ip = 512\n",
        ),
    )
    .unwrap();
    check(tufa_sync(&config), "the first tufa sync");
    let m = Mirror::serve(up, dir, config.clone());
    let server_pid = m.server_pid();
    pin(server_pid, 0);
    pin(std::process::id(), 1);

    let shared = Arc::new(Shared {
        root: m.root_url(),
        projects: Mutex::new(names),
        signed: Mutex::new(Signed::default()),
        counters: Counters::default(),
        first_errors: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let setup = reqwest::Client::builder().no_proxy().build().unwrap();
    rt.block_on(refresh_signed(&setup, &shared)).unwrap();
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|i| rt.spawn(client_loop(shared.clone(), 0x50a6 + i as u64)))
        .collect();

    // Syncs every ~20 s (each after an upstream change), RSS every 10 s, until the end.
    let start = Instant::now();
    let mut rng = SplitMix64::new(0x50a6_0000);
    let mut rows: Vec<(u64, u64, u64, u64, u64)> = Vec::new(); // (secs, requests, errors, RSS KiB, fds)
    let mut syncs = 0u64;
    let mut sync_times = Vec::new();
    let mut next_sync = start + SYNC_EVERY;
    let mut next_rss = start;
    let mut new_projects = 0u64;
    while start.elapsed() < duration {
        let now = Instant::now();
        if now >= next_rss {
            rows.push((
                start.elapsed().as_secs(),
                shared.counters.requests.load(Ordering::Relaxed),
                shared.counters.errors.load(Ordering::Relaxed),
                rss_kib(server_pid),
                open_fds(server_pid),
            ));
            next_rss += RSS_EVERY;
        }
        if now >= next_sync {
            let project = if rng.below(4) == 0 {
                new_projects += 1;
                format!("soak-new-{new_projects}")
            } else {
                let projects = shared.projects.lock().unwrap();
                projects[rng.below(projects.len() as u64) as usize].clone()
            };
            m.upstream
                .add_release(&project, ReleaseSpec::new(&format!("9.{syncs}")));
            let t = Instant::now();
            check(tufa_sync(&config), "a tufa sync during the soak");
            sync_times.push(t.elapsed());
            syncs += 1;
            let mut projects = shared.projects.lock().unwrap();
            if !projects.contains(&project) {
                projects.push(project);
            }
            next_sync += SYNC_EVERY;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    shared.stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for c in clients {
            let _ = tokio::time::timeout(Duration::from_secs(70), c).await;
        }
    });
    rows.push((
        start.elapsed().as_secs(),
        shared.counters.requests.load(Ordering::Relaxed),
        shared.counters.errors.load(Ordering::Relaxed),
        rss_kib(server_pid),
        open_fds(server_pid),
    ));

    let c = &shared.counters;
    let requests = c.requests.load(Ordering::Relaxed);
    let errors = c.errors.load(Ordering::Relaxed);
    println!(
        "soak: {CONNECTIONS} connections for {secs} s; server pinned to CPU 0, clients and syncs to CPU 1"
    );
    println!("| t (s) | requests | errors | server RSS (MiB) | server open fds |");
    println!("|---:|---:|---:|---:|---:|");
    for (t, r, e, rss, fds) in &rows {
        println!("| {t} | {r} | {e} | {:.1} | {fds} |", *rss as f64 / 1024.0);
    }
    let mut summary = BTreeMap::new();
    summary.insert("requests", requests);
    summary.insert("errors", errors);
    summary.insert("pages verified against TUF", c.pages.load(Ordering::Relaxed));
    summary.insert("of which gzip", c.gzip_pages.load(Ordering::Relaxed));
    summary.insert(
        "pages signed after they were served",
        c.signed_late.load(Ordering::Relaxed),
    );
    summary.insert("files verified", c.files.load(Ordering::Relaxed));
    summary.insert("METADATA verified", c.metadata.load(Ordering::Relaxed));
    summary.insert("bytes received", c.bytes.load(Ordering::Relaxed));
    summary.insert("syncs (each publishing)", syncs);
    summary.insert(
        "TUF timestamps seen",
        shared.signed.lock().unwrap().timestamps_seen.len() as u64,
    );
    for (k, v) in &summary {
        println!("soak: {k}: {v}");
    }
    println!("soak: sync durations: {sync_times:?}");
    let first_errors = shared.first_errors.lock().unwrap().clone();
    assert_eq!(
        errors,
        0,
        "errors during the soak, first ones:\n{}",
        first_errors.join("\n")
    );
    assert!(requests > 0);
    assert!(syncs >= secs / 20 - 1, "only {syncs} syncs");
    // Flat RSS: the second half's peak stays within 25% (+16 MiB) of the first half's.
    let rss: Vec<u64> = rows.iter().map(|r| r.3).filter(|&r| r > 0).collect();
    if rss.len() >= 4 {
        let (a, b) = rss.split_at(rss.len() / 2);
        let (a, b) = (*a.iter().max().unwrap(), *b.iter().max().unwrap());
        assert!(
            b <= a + a / 4 + 16 * 1024,
            "server RSS grew from a peak of {a} KiB to {b} KiB"
        );
    }
}
