//! `tufa-bench-tuf`: how long signing PEP 458 hashed-bin metadata takes at PyPI scale, with
//! the builders the publisher uses (`tufa_tuf::build`, `sign_metadata`, `Signed::to_bytes`).
//!
//! 1. Setup (untimed): N synthetic targets with PyPI-like paths and deterministic pseudo-random
//!    lengths and sha256 values (nothing is hashed), plus the offline roles (`1.root.json`,
//!    `1.targets.json`, `1.bins.json`).
//! 2. Initial signing: split the targets into 16,384 bins, build, sign, serialise and write
//!    every `1.bin-XXXX.json`, then `1.snapshot.json` (listing targets.json, bins.json and
//!    every bin) and `timestamp.json`.
//! 3. Incremental publish: one new target; re-sign its bin at version 2, a new snapshot, a new
//!    timestamp; write those three files.
//!
//! The generator (SplitMix64, same call order) and the online key seed are the same as in
//! `bench/python_tuf_bins.py`, so with the same `--expires` both write byte-identical files.
//!
//! Usage: `tufa-bench-tuf [--targets N] [--threads T] [--out DIR] [--expires TIME] [--verify]`

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp as Time};
use tufa_tuf::build::{
    RoleKeySet, RootKeys, expires_after, new_bin, new_bins_delegator, new_root, new_snapshot,
    new_targets_delegating_to_bins, new_timestamp, snapshot_meta, split_into_bins,
};
use tufa_tuf::{
    BinLayout, Ed25519Signer, RoleName, Signed, Signer, TargetFile, TargetPath, Targets, VerifyOptions,
    format_expires, metadata_file_name, parse_expires, sign_metadata, verify_repository,
};

type Res<T> = Result<T, Box<dyn Error>>;

const USAGE: &str = "usage: tufa-bench-tuf [--targets N] [--threads T] [--out DIR] \
                     [--expires YYYY-MM-DDTHH:MM:SSZ] [--verify]

  --targets N   synthetic targets (default 1000000)
  --threads T   threads building/signing/writing bins (default 1)
  --out DIR     write metadata here (must not exist yet) and keep it; default: a temp dir
  --expires T   expiry of bins, snapshot and timestamp (default: now + 1 day)
  --verify      afterwards, walk the written repository with tufa_tuf::verify_repository";

/// Seed of the online key (bin-n, snapshot, timestamp). Benchmark only; `python_tuf_bins.py`
/// uses the same bytes 0, 1, …, 31 so both sign identically (ed25519 is deterministic).
const ONLINE_SEED: [u8; 32] = {
    let mut s = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        s[i] = i as u8;
        i += 1;
    }
    s
};

#[derive(Debug)]
struct Args {
    targets: usize,
    threads: usize,
    out: Option<PathBuf>,
    expires: Option<String>,
    verify: bool,
}

fn parse_args() -> Res<Args> {
    let mut args = Args {
        targets: 1_000_000,
        threads: 1,
        out: None,
        expires: None,
        verify: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--targets" => args.targets = value("--targets")?.replace(['_', ','], "").parse()?,
            "--threads" => args.threads = value("--threads")?.parse()?,
            "--out" => args.out = Some(PathBuf::from(value("--out")?)),
            "--expires" => args.expires = Some(value("--expires")?),
            "--verify" => args.verify = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}").into()),
        }
    }
    if args.targets == 0 || args.threads == 0 {
        return Err("--targets and --threads must be at least 1".into());
    }
    Ok(args)
}

/// SplitMix64: tiny, deterministic, and easy to reproduce exactly in Python.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// 64 lowercase hex characters.
    fn hex256(&mut self) -> String {
        (0..4).map(|_| format!("{:016x}", self.next())).collect()
    }
}

const SYLLABLES: [&str; 32] = [
    "py", "req", "flask", "django", "data", "net", "ml", "tensor", "cloud", "json", "yaml", "http", "async",
    "test", "auth", "db", "sql", "web", "api", "cli", "log", "geo", "img", "text", "sci", "num", "plot",
    "crypto", "aws", "azure", "tool", "kit",
];

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn target(path: String, length: u64, sha256: String) -> Res<(TargetPath, TargetFile)> {
    Ok((
        TargetPath::new(&path)?,
        TargetFile {
            length,
            hashes: BTreeMap::from([("sha256".to_owned(), sha256)]),
            custom: None,
        },
    ))
}

fn wheel(rng: &mut Rng, dist: &str, version: &str) -> Res<(TargetPath, TargetFile)> {
    let blake = rng.hex256();
    let length = 10_000 + rng.below(50_000_000);
    let sha = rng.hex256();
    let path = format!(
        "files/{}/{}/{}/{dist}-{version}-py3-none-any.whl",
        &blake[..2],
        &blake[2..4],
        &blake[4..]
    );
    target(path, length, sha)
}

/// `n` targets: per project `simple/<p>/index.html`, `simple/<p>/index.json` and 1 to 11
/// wheels (about 6 on average) under `files/<aa>/<bb>/<60 hex>/`.
fn generate(n: usize) -> Res<Vec<(TargetPath, TargetFile)>> {
    let mut rng = Rng(0x7475_6661_6265_6e63); // "tufabenc"
    let mut out = Vec::with_capacity(n);
    let mut project = 0u64;
    while out.len() < n {
        let a = SYLLABLES[rng.below(32) as usize];
        let b = SYLLABLES[rng.below(32) as usize];
        let name = format!("{a}-{b}-{}", base36(project));
        let dist = name.replace('-', "_");
        project += 1;
        let len = 300 + rng.below(20_000);
        out.push(target(format!("simple/{name}/index.html"), len, rng.hex256())?);
        if out.len() == n {
            break;
        }
        let len = 400 + rng.below(40_000);
        out.push(target(format!("simple/{name}/index.json"), len, rng.hex256())?);
        let files = 1 + rng.below(11);
        for j in 0..files {
            if out.len() == n {
                break;
            }
            let version = format!("{}.{}.{}", j / 4, j % 4, rng.below(10));
            out.push(wheel(&mut rng, &dist, &version)?);
        }
    }
    Ok(out)
}

/// Peak resident set size so far, in KiB (`VmHWM` in /proc/self/status).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Time spent per phase, and what was written.
#[derive(Debug, Default, Clone)]
struct Work {
    sign: Duration,
    serialize: Duration,
    write: Duration,
    files: u64,
    bytes: u64,
}

impl Work {
    fn add(&mut self, o: &Work) {
        self.sign += o.sign;
        self.serialize += o.serialize;
        self.write += o.write;
        self.files += o.files;
        self.bytes += o.bytes;
    }
}

/// Serialises `signed`, writes it as `name` under `dir`, and accounts for both.
fn emit<T: serde::Serialize>(signed: &Signed<T>, dir: &Path, name: &str, work: &mut Work) -> Res<Vec<u8>> {
    let t = Instant::now();
    let bytes = signed.to_bytes()?;
    work.serialize += t.elapsed();
    let t = Instant::now();
    std::fs::write(dir.join(name), &bytes)?;
    work.write += t.elapsed();
    work.files += 1;
    work.bytes += bytes.len() as u64;
    Ok(bytes)
}

/// Builds, signs, serialises and writes bins `first..first + chunk.len()`.
fn sign_bins(
    layout: &BinLayout,
    first: u32,
    chunk: Vec<BTreeMap<TargetPath, TargetFile>>,
    signer: &Ed25519Signer,
    expires: Time,
    dir: &Path,
) -> Res<(Vec<Signed<Targets>>, Vec<u64>, Work)> {
    let mut work = Work::default();
    let mut signed_bins = Vec::with_capacity(chunk.len());
    let mut sizes = Vec::with_capacity(chunk.len());
    for (bin, targets) in (first..).zip(chunk) {
        let t = Instant::now();
        let md = new_bin(layout, bin, targets, 1, expires)?;
        let signed = sign_metadata(md, &[signer as &dyn Signer])?;
        work.sign += t.elapsed();
        let name = metadata_file_name(&layout.role_name(bin), 1, true);
        let bytes = emit(&signed, dir, &name, &mut work)?;
        sizes.push(bytes.len() as u64);
        signed_bins.push(signed);
    }
    Ok((signed_bins, sizes, work))
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn mib(kib: u64) -> String {
    format!("{:.0}", kib as f64 / 1024.0)
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Res<()> {
    let args = parse_args()?;
    let layout = BinLayout::default();
    let now = Time::now();
    let expires = match &args.expires {
        Some(s) => parse_expires(s)?,
        None => expires_after(now, SignedDuration::from_hours(24))?,
    };
    let year = expires_after(now, SignedDuration::from_hours(24 * 365))?;

    let (_tmp, dir) = match &args.out {
        Some(d) => {
            std::fs::create_dir(d).map_err(|e| format!("--out {}: {e}", d.display()))?;
            (None, d.clone())
        }
        None => {
            let t = tempfile::Builder::new().prefix("tufa-bench-tuf").tempdir()?;
            let p = t.path().to_owned();
            (Some(t), p)
        }
    };

    // ---- Setup (untimed): targets and the offline roles.
    let t = Instant::now();
    let targets = generate(args.targets)?;
    let gen_secs = t.elapsed();
    let gen_rss = peak_rss_kib();

    let online = Ed25519Signer::from_seed(&ONLINE_SEED);
    let root_signer = Ed25519Signer::from_seed(&[0xA1; 32]);
    let targets_signer = Ed25519Signer::from_seed(&[0xA2; 32]);
    let bins_signer = Ed25519Signer::from_seed(&[0xA3; 32]);
    let online_set = RoleKeySet::single(online.key().clone());
    let root_keys = RootKeys {
        root: RoleKeySet::single(root_signer.key().clone()),
        targets: RoleKeySet::single(targets_signer.key().clone()),
        snapshot: online_set.clone(),
        timestamp: online_set.clone(),
    };
    let mut offline = Work::default();
    let root = sign_metadata(new_root(&root_keys, 1, year)?, &[&root_signer as &dyn Signer])?;
    let root_bytes = emit(&root, &dir, "1.root.json", &mut offline)?;
    let top = new_targets_delegating_to_bins(&RoleKeySet::single(bins_signer.key().clone()), 1, year)?;
    emit(
        &sign_metadata(top, &[&targets_signer as &dyn Signer])?,
        &dir,
        "1.targets.json",
        &mut offline,
    )?;
    let bins_role = new_bins_delegator(&layout, &online_set, 1, year)?;
    emit(
        &sign_metadata(bins_role, &[&bins_signer as &dyn Signer])?,
        &dir,
        "1.bins.json",
        &mut offline,
    )?;

    // ---- Initial signing.
    let start = Instant::now();
    let bins = split_into_bins(&layout, targets);
    let split = start.elapsed();

    let threads = args.threads.min(bins.len());
    let per = bins.len().div_ceil(threads);
    let mut chunks = Vec::with_capacity(threads);
    let mut rest = bins;
    while !rest.is_empty() {
        let tail = rest.split_off(per.min(rest.len()));
        chunks.push(rest);
        rest = tail;
    }
    let results: Vec<Res<_>> = if threads == 1 {
        let mut v = Vec::new();
        for chunk in chunks {
            v.push(sign_bins(&layout, 0, chunk, &online, expires, &dir));
        }
        v
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .into_iter()
                .enumerate()
                .map(|(i, chunk)| {
                    let (layout, online, dir) = (&layout, &online, &dir);
                    let first = u32::try_from(i * per).unwrap_or(u32::MAX);
                    s.spawn(move || {
                        sign_bins(layout, first, chunk, online, expires, dir).map_err(|e| e.to_string())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(r) => r.map_err(Into::into),
                    Err(_) => Err("a signing thread panicked".into()),
                })
                .collect()
        })
    };
    let mut signed_bins: Vec<Signed<Targets>> = Vec::with_capacity(layout.bin_count() as usize);
    let mut bin_sizes = Vec::with_capacity(layout.bin_count() as usize);
    let mut work = Work::default();
    for r in results {
        let (b, sz, w) = r?;
        signed_bins.extend(b);
        bin_sizes.extend(sz);
        work.add(&w);
    }

    let bin_versions = |bins: &[Signed<Targets>]| -> Vec<(RoleName, u64)> {
        (0u32..)
            .zip(bins)
            .map(|(n, b)| (layout.role_name(n), b.signed.version))
            .collect()
    };
    let t = Instant::now();
    let snapshot = new_snapshot(snapshot_meta(1, 1, bin_versions(&signed_bins)), 1, expires)?;
    let snapshot = sign_metadata(snapshot, &[&online as &dyn Signer])?;
    work.sign += t.elapsed();
    let snapshot_bytes = emit(&snapshot, &dir, "1.snapshot.json", &mut work)?;
    let t = Instant::now();
    let timestamp = new_timestamp(&snapshot_bytes, 1, 1, expires)?;
    let timestamp = sign_metadata(timestamp, &[&online as &dyn Signer])?;
    work.sign += t.elapsed();
    let timestamp_bytes = emit(&timestamp, &dir, "timestamp.json", &mut work)?;
    let initial = start.elapsed();
    let initial_rss = peak_rss_kib();
    bin_sizes.sort_unstable();
    let median_bin = bin_sizes.get(bin_sizes.len() / 2).copied().unwrap_or(0);

    // ---- Incremental publish of one new target.
    let mut rng = Rng(0x6e65_7774_6172_6774); // "newtargt"
    let (new_path, new_file) = wheel(&mut rng, "tufa_bench_new", "1.0.0")?;
    let start = Instant::now();
    let mut inc = Work::default();
    let t = Instant::now();
    let n = layout.bin_for(&new_path);
    let old = signed_bins.get(n as usize).ok_or("bin index out of range")?;
    let mut bin_targets = old.signed.targets.clone();
    bin_targets.insert(new_path.clone(), new_file);
    let version = old.signed.version + 1;
    let bin = sign_metadata(
        new_bin(&layout, n, bin_targets, version, expires)?,
        &[&online as &dyn Signer],
    )?;
    inc.sign += t.elapsed();
    let bin_name = metadata_file_name(&layout.role_name(n), version, true);
    let inc_bin_bytes = emit(&bin, &dir, &bin_name, &mut inc)?;
    if let Some(slot) = signed_bins.get_mut(n as usize) {
        *slot = bin;
    }
    let t = Instant::now();
    let snapshot = new_snapshot(snapshot_meta(1, 1, bin_versions(&signed_bins)), 2, expires)?;
    let snapshot = sign_metadata(snapshot, &[&online as &dyn Signer])?;
    inc.sign += t.elapsed();
    let snapshot2_bytes = emit(&snapshot, &dir, "2.snapshot.json", &mut inc)?;
    let t = Instant::now();
    let timestamp = sign_metadata(
        new_timestamp(&snapshot2_bytes, 2, 2, expires)?,
        &[&online as &dyn Signer],
    )?;
    inc.sign += t.elapsed();
    emit(&timestamp, &dir, "timestamp.json", &mut inc)?;
    let incremental = start.elapsed();
    let end_rss = peak_rss_kib();

    // ---- Report.
    let label = if threads == 1 {
        "tufa-tuf (Rust), 1 thread".to_owned()
    } else {
        format!("tufa-tuf (Rust), {threads} threads ¹")
    };
    let n_fmt = args.targets.to_string();
    println!(
        "| implementation | step | targets | wall s | split s | build+sign s | serialize s | write s | files \
         | bytes written | snapshot.json bytes | median bin bytes | peak RSS MiB |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    println!(
        "| {label} | generate targets (setup, untimed) | {n_fmt} | {} | | | | | | | | | {} |",
        secs(gen_secs),
        mib(gen_rss)
    );
    println!(
        "| {label} | initial signing | {n_fmt} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        secs(initial),
        secs(split),
        secs(work.sign),
        secs(work.serialize),
        secs(work.write),
        work.files,
        work.bytes,
        snapshot_bytes.len(),
        median_bin,
        mib(initial_rss)
    );
    println!(
        "| {label} | incremental: 1 new target | {n_fmt} | {} | | {} | {} | {} | {} | {} | {} | {} | {} |",
        secs(incremental),
        secs(inc.sign),
        secs(inc.serialize),
        secs(inc.write),
        inc.files,
        inc.bytes,
        snapshot2_bytes.len(),
        inc_bin_bytes.len(),
        mib(end_rss)
    );
    eprintln!(
        "[rust] targets={} threads={threads} dir={} expires={} timestamp.json={} bytes; offline roles \
         (untimed): {} files, {} bytes; new target {new_path} -> {}",
        args.targets,
        dir.display(),
        format_expires(expires),
        timestamp_bytes.len(),
        offline.files,
        offline.bytes,
        layout.role_for(&new_path),
    );

    // ---- Diagnostic (not in the table): what build+sign is made of, re-done over every bin.
    let (mut rehash, mut canon, mut ed25519, mut signed_len) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0);
    for (n, b) in (0u32..).zip(&signed_bins) {
        let t = Instant::now();
        let misplaced = b.signed.targets.keys().filter(|p| layout.bin_for(p) != n).count();
        rehash += t.elapsed();
        if misplaced != 0 {
            return Err(format!("{misplaced} targets in the wrong bin").into());
        }
        let t = Instant::now();
        let payload = tufa_tuf::canonical::to_canonical(&b.signed)?;
        canon += t.elapsed();
        let t = Instant::now();
        online.sign(&payload)?;
        ed25519 += t.elapsed();
        signed_len += payload.len();
    }
    println!(
        "Breakdown of build+sign, {label} (re-measured over all bins after the run): new_bin's placement \
         check (sha256 of every path) {} s, canonical JSON of `signed` {} s, ed25519 over {} MB {} s.",
        secs(rehash),
        secs(canon),
        signed_len / 1_000_000,
        secs(ed25519)
    );

    if args.verify {
        let t = Instant::now();
        let source = |name: &str| std::fs::read(dir.join(name)).ok();
        let repo = verify_repository(&root_bytes, &source, &VerifyOptions::new(Time::now()))
            .map_err(|e| format!("verification failed: {e}"))?;
        if repo.targets.len() != args.targets + 1 || repo.snapshot.version != 2 {
            return Err(format!(
                "verification: {} targets and snapshot v{}, expected {} and v2",
                repo.targets.len(),
                repo.snapshot.version,
                args.targets + 1
            )
            .into());
        }
        eprintln!(
            "[rust] verify_repository: OK, {} targets in {} roles, {:.1} s",
            repo.targets.len(),
            repo.roles.len(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
