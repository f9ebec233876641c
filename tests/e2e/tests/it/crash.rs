//! Crash safety at scale: a seeded harness SIGKILLs `tufa sync` (which downloads, commits the
//! index, renders and publishes pages and signs TUF metadata) at random moments, at least 50
//! times, while upstream keeps changing; then one uninterrupted sync must succeed, `tufa verify`
//! must be clean, python-tuf's ngclient must verify every signed target through `tufa serve`,
//! and every file upstream lists must be signed and served, and nothing else.
//!
//! Reproducible: every random choice (kill delays, upstream changes) comes from one seed,
//! `TUFA_CRASH_SEED` (default [`DEFAULT_SEED`]), printed on failure. `TUFA_CRASH_KILLS` raises
//! the number of kills (default and minimum 50). Delays are drawn from
//! `[0, 1.2 × T]`, `T` being a full uninterrupted run's duration measured first on a
//! throw-away mirror, so kills land in every phase: listing, downloads, index commits, page
//! publishing and signing.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tufa_fake_upstream::{FakeUpstream, Fault, ProjectSpec, ReleaseSpec, normalize_name};

use crate::harness::{COMMAND_TIMEOUT, Mirror, check, run_bounded, runtime, tufa_bin, tufa_sync};
use crate::tuf::current_targets;
use crate::tuf_client::TufClient;

/// The seed used when `TUFA_CRASH_SEED` is not set (CI runs this one).
pub const DEFAULT_SEED: u64 = 0x7475_6661_0009;
/// The minimum number of runs that must really be interrupted by SIGKILL.
const MIN_KILLS: usize = 50;
/// Slow files dribble 1 KiB every this many milliseconds, so downloads take a while.
const SLOW_CHUNK_DELAY_MS: u64 = 15;

/// A small, seedable PRNG (splitmix64): the harness must be reproducible from one number, and
/// needs no more than that.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={v:?} is not a number: {e}")))
}

/// Prints how to reproduce the run when the test fails (dropped while panicking).
struct SeedReport {
    seed: u64,
    kills: usize,
}

impl Drop for SeedReport {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "crash harness FAILED with seed {:#x}; reproduce with TUFA_CRASH_SEED={:#x} TUFA_CRASH_KILLS={} \
                 cargo test -p tufa-e2e --test it crash_harness_50_seeded_kills",
                self.seed, self.seed, self.kills
            );
        }
    }
}

/// A release whose wheel and sdist are several KiB (hundreds of hard-to-compress
/// requirements), so a slow body takes several chunks.
pub fn big_release(version: &str, requirements: usize, salt: u64) -> ReleaseSpec {
    let mut r = ReleaseSpec::new(version);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ salt ^ (version.len() as u64).rotate_left(17);
    for i in 0..requirements {
        let mut dep = String::new();
        for _ in 0..12 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            dep.push(char::from(b'a' + ((x >> 33) % 26) as u8));
        }
        r = r.requires(&format!("{dep}>={}.{}", i % 17, (x >> 40) % 100));
    }
    r
}

/// The projects the crash upstream starts with: the demo chain plus a few projects with big
/// files.
fn initial_projects() -> Vec<ProjectSpec> {
    let mut p = tufa_fake_upstream::demo_projects();
    for (i, name) in ["crash-alpha", "crash-beta", "Crash_Gamma", "crash.delta"]
        .into_iter()
        .enumerate()
    {
        p.push(
            ProjectSpec::new(name)
                .release(big_release("1.0", 200, i as u64))
                .release(big_release("1.1", 250, 100 + i as u64)),
        );
    }
    p
}

/// The fake upstream the harness mutates, and what it currently lists.
struct CrashUpstream {
    up: FakeUpstream,
    /// Display names of every project upstream has.
    projects: Vec<String>,
    /// Next minor version per project (mutations add `9.<n>`).
    next_version: BTreeMap<String, u64>,
    new_projects: u64,
    changes: Vec<String>,
}

impl CrashUpstream {
    fn start() -> Self {
        let specs = initial_projects();
        let projects = specs.iter().map(|p| p.name.clone()).collect();
        let up = runtime().block_on(FakeUpstream::start(specs));
        let s = Self {
            up,
            projects,
            next_version: BTreeMap::new(),
            new_projects: 0,
            changes: Vec::new(),
        };
        s.slow_down_big_files();
        s
    }

    /// Every file of the big projects dribbles out slowly (demo files stay fast).
    fn slow_down_big_files(&self) {
        for p in &self.projects {
            if !normalize_name(p).starts_with("crash-") {
                continue;
            }
            for f in self.up.filenames(p) {
                self.up.set_file_fault(
                    &f,
                    Fault::SlowBody {
                        delay_ms: SLOW_CHUNK_DELAY_MS,
                    },
                );
            }
        }
    }

    /// One random upstream change: mostly a new (big, slow) release, sometimes a new
    /// project, sometimes a removed release.
    fn mutate(&mut self, rng: &mut SplitMix64) {
        let roll = rng.below(10);
        if roll < 6 {
            let project = self.projects[rng.below(self.projects.len() as u64) as usize].clone();
            let n = self.next_version.entry(project.clone()).or_insert(0);
            *n += 1;
            let version = format!("9.{n}");
            let release = if normalize_name(&project).starts_with("crash-") {
                big_release(&version, 150 + rng.below(150) as usize, rng.next_u64())
            } else {
                ReleaseSpec::new(&version)
            };
            self.up.add_release(&project, release);
            self.changes.push(format!("+{project} {version}"));
        } else if roll < 8 {
            self.new_projects += 1;
            let name = format!("crash-new-{}", self.new_projects);
            self.up.add_release(
                &name,
                big_release("0.1", 100 + rng.below(200) as usize, rng.next_u64()),
            );
            self.projects.push(name.clone());
            self.changes.push(format!("+{name}"));
        } else {
            // Remove the oldest release of a project that keeps at least one.
            let candidates: Vec<String> = self
                .projects
                .iter()
                .filter(|p| self.releases(p).len() > 1)
                .cloned()
                .collect();
            if candidates.is_empty() {
                return;
            }
            let project = candidates[rng.below(candidates.len() as u64) as usize].clone();
            let oldest = self.releases(&project)[0].clone();
            self.up.remove_release(&project, &oldest);
            self.changes.push(format!("-{project} {oldest}"));
        }
        self.slow_down_big_files();
    }

    /// Versions of a project, in release order (from its filenames).
    fn releases(&self, project: &str) -> Vec<String> {
        let dist = normalize_name(project).replace('-', "_");
        let mut out: Vec<String> = Vec::new();
        for f in self.up.filenames(project) {
            let rest = f.strip_prefix(&format!("{dist}-")).unwrap_or(&f);
            let version = rest
                .strip_suffix(".tar.gz")
                .or_else(|| rest.split_once("-py3").map(|(v, _)| v))
                .unwrap_or(rest)
                .to_owned();
            if !out.contains(&version) {
                out.push(version);
            }
        }
        out
    }

    /// Every file upstream lists: filename → sha256 hex.
    fn files(&self) -> BTreeMap<String, String> {
        self.projects
            .iter()
            .flat_map(|p| self.up.filenames(p))
            .map(|f| {
                let sha = self.up.file_sha256(&f).unwrap();
                (f, sha)
            })
            .collect()
    }
}

/// `tufa init DIR --upstream URL --dev-keys` (full mode: no allowlist), 16 bins, fast retries.
pub fn init_mirror(up: &FakeUpstream) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut init = Command::new(tufa_bin());
    init.arg("init")
        .arg(dir.path())
        .arg("--upstream")
        .arg(up.simple_url())
        .arg("--dev-keys");
    check(run_bounded(&mut init, COMMAND_TIMEOUT, "tufa init"), "tufa init");
    let config = dir.path().join("tufa.toml");
    let toml = std::fs::read_to_string(&config).unwrap();
    let edited = toml
        .replace("bins_bit_length = 14", "bins_bit_length = 4")
        .replace("# retries = 4", "retries = 2")
        .replace("# retry_base_delay_ms = 500", "retry_base_delay_ms = 5");
    assert!(
        edited.contains("\nbins_bit_length = 4")
            && edited.contains("\nretries = 2")
            && edited.contains("\nretry_base_delay_ms = 5"),
        "`tufa init` no longer writes the expected keys:\n{toml}"
    );
    std::fs::write(&config, edited).unwrap();
    (dir, config)
}

/// Kills the child when dropped, so a failing test leaves no process behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_sync(config: &Path, log: &Path) -> KillOnDrop {
    let mut cmd = Command::new(tufa_bin());
    cmd.arg("--config").arg(config).arg("sync");
    for var in [
        "TUFA_CONFIG",
        "TUFA_UPSTREAM",
        "TUFA_PROJECTS",
        "TUFA_LOG_FORMAT",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

/// When an attempt's SIGKILL is due. Each attempt picks one from the seed, so kills land in
/// every phase of both a first (full) run and the short incremental runs that follow.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// `fraction × 1.2 T` after the start, `T` being a full run's duration.
    FullRun(f64),
    /// `fraction × 1.2 t` after the start, `t` being the last uninterrupted run's duration.
    IncrementalRun(f64),
    /// `fraction × 1.2 p` after the run logs `sync finished` (publishing starts: pages, then
    /// TUF bins, snapshot, timestamp), `p` being the longest publish phase seen so far.
    DuringPublish(f64),
}

/// The phase a run had reached, from its log (text format, INFO level, on stderr).
fn phase_of(log: &str) -> &'static str {
    if log.contains("TUF metadata published") || log.contains("publish finished") {
        "after signing"
    } else if log.contains("sync finished") {
        "publish (pages, TUF signing)"
    } else if log.contains("planned") {
        "sync (downloads, index commits)"
    } else {
        "start (open index, changelog or listing)"
    }
}

/// How the attempts ended.
#[derive(Debug, Default)]
struct Tally {
    attempts: usize,
    /// Ended by our SIGKILL while running.
    killed: usize,
    /// Finished (exit 0) before the kill was due.
    completed: usize,
    /// Kills per phase the run had reached.
    killed_in: BTreeMap<&'static str, usize>,
    /// Kills per delay rule.
    killed_by_rule: BTreeMap<&'static str, usize>,
    upstream_changes: usize,
}

#[test]
fn crash_harness_50_seeded_kills() {
    let seed = env_u64("TUFA_CRASH_SEED").unwrap_or(DEFAULT_SEED);
    let kills = env_u64("TUFA_CRASH_KILLS").map_or(MIN_KILLS, |k| (k as usize).max(MIN_KILLS));
    let _report = SeedReport { seed, kills };
    println!("crash harness: seed {seed:#x}, {kills} kills (TUFA_CRASH_SEED / TUFA_CRASH_KILLS)");
    let mut rng = SplitMix64::new(seed);
    let mut upstream = CrashUpstream::start();

    // T: one full uninterrupted run on a throw-away mirror of the same upstream.
    let full_run = {
        let (_dir, config) = init_mirror(&upstream.up);
        let start = Instant::now();
        check(tufa_sync(&config), "the measuring tufa sync");
        start.elapsed()
    };
    let max_delay = full_run.mul_f64(1.2);
    println!(
        "crash harness: a full run takes {full_run:?}; full-run kill delays drawn from [0, {max_delay:?}]"
    );

    let (dir, config) = init_mirror(&upstream.up);
    let log = dir.path().join("attempt.log");
    let mut tally = Tally::default();
    let mut last_run = full_run;
    let mut longest_publish = Duration::from_millis(20);
    let max_attempts = kills * 5;
    while tally.killed < kills {
        assert!(
            tally.attempts < max_attempts,
            "only {} of {} attempts were interrupted by the kill: {tally:?}",
            tally.killed,
            tally.attempts
        );
        tally.attempts += 1;
        // Half the time upstream changes first, so the run has something new to download and
        // publish (incremental index commits, pages, bins, snapshot, timestamp).
        if rng.below(2) == 0 {
            upstream.mutate(&mut rng);
            tally.upstream_changes += 1;
        }
        let fraction = rng.unit();
        let rule = match rng.below(3) {
            0 => KillAt::FullRun(fraction),
            1 => KillAt::IncrementalRun(fraction),
            _ => KillAt::DuringPublish(fraction),
        };
        let start = Instant::now();
        let mut child = spawn_sync(&config, &log);
        let exited = match rule {
            KillAt::FullRun(f) => {
                std::thread::sleep(max_delay.mul_f64(f));
                child.0.try_wait().unwrap()
            }
            KillAt::IncrementalRun(f) => {
                std::thread::sleep(last_run.mul_f64(1.2 * f));
                child.0.try_wait().unwrap()
            }
            KillAt::DuringPublish(f) => loop {
                if let Some(status) = child.0.try_wait().unwrap() {
                    break Some(status);
                }
                if std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("sync finished")
                {
                    // Poll until the kill is due, learning how long publishing lasts: at least
                    // the delay when still running, about the elapsed time when it exited.
                    let publishing = Instant::now();
                    let due = longest_publish.mul_f64(1.2 * f);
                    let exited = loop {
                        if let Some(status) = child.0.try_wait().unwrap() {
                            break Some(status);
                        }
                        if publishing.elapsed() >= due {
                            break None;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    };
                    longest_publish = longest_publish.max(publishing.elapsed());
                    break exited;
                }
                assert!(
                    start.elapsed() < COMMAND_TIMEOUT,
                    "attempt {}: tufa sync never finished syncing:\n{}",
                    tally.attempts,
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(2));
            },
        };
        let status = match exited {
            Some(status) => status,
            None => {
                child.0.kill().unwrap(); // SIGKILL
                child.0.wait().unwrap()
            }
        };
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        match status.signal() {
            Some(9) => {
                tally.killed += 1;
                *tally.killed_in.entry(phase_of(&text)).or_default() += 1;
                let name = match rule {
                    KillAt::FullRun(_) => "full run",
                    KillAt::IncrementalRun(_) => "incremental run",
                    KillAt::DuringPublish(_) => "during publish",
                };
                *tally.killed_by_rule.entry(name).or_default() += 1;
            }
            None if status.code() == Some(0) => {
                // Finished before the kill was due: learn how long a run takes now.
                tally.completed += 1;
                last_run = start.elapsed();
            }
            _ => panic!(
                "attempt {} (seed {seed:#x}): tufa sync ended with {status} after {} kills:\n{text}",
                tally.attempts, tally.killed
            ),
        }
    }
    println!("crash harness: {tally:?}");
    println!("crash harness: upstream changes: {}", upstream.changes.join(", "));
    assert!(tally.killed >= MIN_KILLS, "{tally:?}");

    // Recovery: one uninterrupted sync, then a clean verify.
    upstream.up.clear_faults();
    let out = tufa_sync(&config);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the sync after {} kills failed:\n{}\n{}",
        tally.killed,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let verify = run_bounded(
        Command::new(tufa_bin())
            .arg("--config")
            .arg(&config)
            .arg("verify"),
        COMMAND_TIMEOUT,
        "tufa verify",
    );
    check(verify, "tufa verify after the kills");

    // Nothing upstream is missing, nothing else is signed.
    let upstream_files = upstream.files();
    let m = Mirror::serve(upstream.up, dir, config);
    let signed = current_targets(&m.tuf_dir());
    let mut signed_files: BTreeMap<String, String> = BTreeMap::new();
    let mut signed_metadata = BTreeSet::new();
    let mut signed_pages = BTreeSet::new();
    for (path, target) in &signed {
        let sha = target.sha256().map(|d| d.to_hex()).unwrap();
        if let Some(page) = path.strip_prefix("simple/") {
            signed_pages.insert(page.to_owned());
        } else if let Some(meta) = path.strip_suffix(".metadata") {
            signed_metadata.insert(meta.rsplit('/').next().unwrap().to_owned());
        } else {
            assert!(path.starts_with("files/"), "unexpected target {path}");
            let name = path.rsplit('/').next().unwrap().to_owned();
            assert!(
                signed_files.insert(name.clone(), sha).is_none(),
                "{name} is signed twice"
            );
        }
    }
    assert_eq!(
        signed_files, upstream_files,
        "the signed files are not exactly upstream's (filename → sha256)"
    );
    let wheels: BTreeSet<String> = upstream_files
        .keys()
        .filter(|f| f.ends_with(".whl"))
        .cloned()
        .collect();
    assert_eq!(
        signed_metadata, wheels,
        "METADATA targets are not exactly the wheels'"
    );
    let mut pages = BTreeSet::new();
    for p in &upstream.projects {
        let n = normalize_name(p);
        pages.insert(format!("{n}/index.html"));
        pages.insert(format!("{n}/index.json"));
    }
    assert_eq!(
        signed_pages, pages,
        "signed pages are not exactly upstream's projects"
    );
    for (f, sha) in &upstream_files {
        let blob = std::fs::read(m.blob_path(sha)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(blob, m.upstream.file_bytes(f).unwrap(), "{f}");
    }

    // python-tuf verifies every target through `tufa serve`, from the first root.
    let client = TufClient::new(&m.work_dir("tuf-client"), &m.tuf_dir().join("1.root.json"));
    let root = m.root_url();
    let paths: Vec<&str> = signed.keys().map(String::as_str).collect();
    let run = client.run(&format!("{root}tuf/"), &root, &paths);
    run.assert_ok();
    for path in &paths {
        assert_eq!(
            run.target(path).sha256.as_deref(),
            signed[*path].sha256().map(|d| d.to_hex()).as_deref(),
            "{path}"
        );
    }
    // Each signed JSON page lists exactly its project's upstream files.
    for p in &upstream.projects {
        let n = normalize_name(p);
        let page: serde_json::Value =
            serde_json::from_slice(&run.target(&format!("simple/{n}/index.json")).bytes()).unwrap();
        let listed: BTreeSet<String> = page["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["filename"].as_str().unwrap().to_owned())
            .collect();
        let expected: BTreeSet<String> = m.upstream.filenames(p).into_iter().collect();
        assert_eq!(listed, expected, "page of {p}");
    }
    println!(
        "crash harness: survived {} kills ({} attempts, {} completed runs); {} targets verified by python-tuf",
        tally.killed,
        tally.attempts,
        tally.completed,
        paths.len()
    );
}
