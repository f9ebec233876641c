//! A deterministic, seeded upstream of any size for benchmarks (`fake-upstream --generate …`,
//! [`crate::FakeUpstream::start_generated`]).
//!
//! The same [`GenerateSpec`] always yields the same projects, releases, file names, bytes,
//! serials and changelog. File bytes are not held in memory: every file is
//! `head ‖ random(seed) ‖ tail` ([`crate::body`]), streamed on request; only its sha256 (and a
//! wheel's METADATA) is computed up front.
//!
//! * Projects: `projects` of them, named like `alpha-bravo-17` and, one in five,
//!   `Alpha_bravo.20` (so mirrors normalise). Most have 1–20 files (skewed to few:
//!   `1 + ⌊20·u²⌋`; `max-files=M`: 1–M); `big-projects` of them (default one per 400, at least one) have 500–800
//!   files, as releases of an sdist and 5–15 platform wheels.
//! * Releases `0.<n>.0`: an sdist (85 %) and 0–3 wheels (`py3-none-any` alone, or platform
//!   tags); one in 40 is yanked; a project has no, `>=3.8` or `>=3.9` `Requires-Python`.
//! * Files: 5 KB–200 KB, skewed to the small end (`5 KB · 40^(u²)`, median ≈ 13 KB), and
//!   0.4 % of 1–6 MiB. Wheels are real zip files (stored entries: `<pkg>/__init__.py`, a random
//!   `<pkg>/_payload.bin`, METADATA, WHEEL and a correct RECORD), so PEP 658 metadata can be
//!   extracted and pip could install them; sdists are random bytes.
//! * `big-file-mb=N` adds project `big-file` with one sdist of N MiB.
//! * Each [`mutate`] (`POST /_fake/mutate`) is the next epoch: `changed` percent of the
//!   generated projects (at least one) get a new release; serials and changelog move on.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::ReleaseSpec;
use crate::body::{Body, Generated, RandomStream, Rng, mix};
use crate::dist::{dist_name, metadata_text};
use crate::state::{NewFile, State};
use crate::util::b64_urlsafe_nopad;

/// What to generate: `projects=2000,seed=1,big-projects=5,big-file-mb=0,changed=1,max-files=20`
/// ([`FromStr`]; every key optional).
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateSpec {
    /// Number of generated projects (not counting `big-file`).
    pub projects: usize,
    /// Seed of everything.
    pub seed: u64,
    /// Projects with 500–800 files.
    pub big_projects: usize,
    /// Size of the one file of project `big-file` in MiB; 0: no such project.
    pub big_file_mib: u64,
    /// Percent of the generated projects that get a new release per [`mutate`].
    pub changed_percent: f64,
    /// Most files of a project that is not big (the default 20; 1 makes many projects cheap:
    /// the scale benchmarks).
    pub max_files: usize,
}

impl Default for GenerateSpec {
    fn default() -> Self {
        Self::with_projects(2000)
    }
}

impl GenerateSpec {
    /// The defaults for `projects` projects (one big project per 400).
    pub fn with_projects(projects: usize) -> Self {
        Self {
            projects,
            seed: 1,
            big_projects: default_big(projects),
            big_file_mib: 0,
            changed_percent: 1.0,
            max_files: 20,
        }
    }
}

fn default_big(projects: usize) -> usize {
    projects.div_ceil(400)
}

/// A `--generate` value that does not parse; the message names the bad part and the grammar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerateSpecError(String);

impl fmt::Display for GenerateSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; expected comma-separated KEY=VALUE with keys projects (0-1000000), seed (u64), \
             big-projects (≤ projects), big-file-mb (MiB), changed (percent, >0 and ≤100), \
             max-files (1-20), \
             e.g. `projects=2000,seed=1`",
            self.0
        )
    }
}

impl std::error::Error for GenerateSpecError {}

const MAX_PROJECTS: usize = 1_000_000;

impl FromStr for GenerateSpec {
    type Err = GenerateSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |m: String| GenerateSpecError(m);
        let mut spec = GenerateSpec::with_projects(2000);
        let mut big = None;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| err(format!("`{part}` is not KEY=VALUE")))?;
            let bad = |e: &dyn fmt::Display| err(format!("invalid {key} `{value}`: {e}"));
            match key {
                "projects" => {
                    spec.projects = value.parse().map_err(|e| bad(&e))?;
                    if spec.projects > MAX_PROJECTS {
                        return Err(bad(&format!("more than {MAX_PROJECTS}")));
                    }
                }
                "seed" => spec.seed = value.parse().map_err(|e| bad(&e))?,
                "big-projects" => big = Some(value.parse::<usize>().map_err(|e| bad(&e))?),
                "big-file-mb" => {
                    spec.big_file_mib = value.parse().map_err(|e| bad(&e))?;
                    if spec.big_file_mib > 1 << 20 {
                        return Err(bad(&"more than 1 TiB"));
                    }
                }
                "changed" => {
                    let v: f64 = value.parse().map_err(|e| bad(&e))?;
                    if !(v > 0.0 && v <= 100.0) {
                        return Err(bad(&"not in (0, 100]"));
                    }
                    spec.changed_percent = v;
                }
                "max-files" => {
                    spec.max_files = value.parse().map_err(|e| bad(&e))?;
                    if !(1..=20).contains(&spec.max_files) {
                        return Err(bad(&"not in 1-20"));
                    }
                }
                other => return Err(err(format!("unknown key `{other}`"))),
            }
        }
        spec.big_projects = big.unwrap_or_else(|| default_big(spec.projects));
        if spec.big_projects > spec.projects {
            return Err(err(format!(
                "big-projects {} is more than projects {}",
                spec.big_projects, spec.projects
            )));
        }
        Ok(spec)
    }
}

/// What one generation step (epoch) produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerationReport {
    /// 1 for the initial upstream, then one more per [`mutate`].
    pub epoch: u32,
    /// Normalised names of the projects that got releases in this epoch, sorted.
    pub projects: Vec<String>,
    /// Distribution files added.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The upstream's last serial afterwards.
    pub last_serial: u64,
}

impl GenerationReport {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "epoch": self.epoch,
            "projects": self.projects,
            "files": self.files,
            "bytes": self.bytes,
            "last_serial": self.last_serial,
        })
    }
}

/// The generator's memory of what it made, for the next epoch.
#[derive(Debug)]
pub(crate) struct Generator {
    spec: GenerateSpec,
    epoch: u32,
    projects: Vec<GenProject>,
}

impl Generator {
    pub fn epoch(&self) -> u32 {
        self.epoch
    }
}

#[derive(Debug)]
struct GenProject {
    display: String,
    norm: String,
    big: bool,
    requires_python: Option<&'static str>,
    /// Releases made so far (the next version is `0.<releases>.0`).
    releases: u32,
}

/// Wheel tags of the platform matrix (a big project's release has the first 5–15 of them).
const PLATFORM_TAGS: [&str; 16] = [
    "cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64",
    "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64",
    "cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64",
    "cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64",
    "cp310-cp310-macosx_11_0_arm64",
    "cp311-cp311-macosx_11_0_arm64",
    "cp312-cp312-macosx_11_0_arm64",
    "cp313-cp313-macosx_11_0_arm64",
    "cp310-cp310-win_amd64",
    "cp311-cp311-win_amd64",
    "cp312-cp312-win_amd64",
    "cp313-cp313-win_amd64",
];

const WORDS: [&str; 16] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
    "lima", "mike", "november", "oscar", "papa",
];

fn display_name(i: usize) -> String {
    let a = WORDS[i % 16];
    let b = WORDS[(i / 16) % 16];
    if i.is_multiple_of(5) {
        let mut cap = a.to_string();
        cap[..1].make_ascii_uppercase();
        format!("{cap}_{b}.{i}")
    } else {
        format!("{a}-{b}-{i}")
    }
}

/// 5 KB–200 KB skewed small, or (0.4 %) 1–6 MiB.
fn file_size(rng: &mut Rng) -> u64 {
    if rng.unit() < 0.004 {
        let mib = 1024.0 * 1024.0;
        (mib * 6f64.powf(rng.unit())) as u64
    } else {
        let u = rng.unit();
        (5_000.0 * 40f64.powf(u * u)) as u64
    }
}

/// Builds the upstream of `spec` into the empty `state` (epoch 1).
pub(crate) fn generate(state: &mut State, spec: &GenerateSpec) -> GenerationReport {
    state.pypi_layout = true;
    state.record_requests = false;
    let mut picker = Rng::new(mix(spec.seed, 0xB16));
    let mut big = BTreeSet::new();
    while big.len() < spec.big_projects {
        big.insert(picker.below(spec.projects as u64) as usize);
    }
    let mut generator = Generator {
        spec: spec.clone(),
        epoch: 1,
        projects: Vec::with_capacity(spec.projects),
    };
    let mut report = GenerationReport {
        epoch: 1,
        projects: Vec::new(),
        files: 0,
        bytes: 0,
        last_serial: 0,
    };
    for i in 0..spec.projects {
        let mut rng = Rng::new(mix(spec.seed, i as u64));
        let display = display_name(i);
        let norm = state.ensure_project(&display);
        let is_big = big.contains(&i);
        let mut gp = GenProject {
            display,
            norm,
            big: is_big,
            requires_python: [None, Some(">=3.8"), Some(">=3.9")][rng.below(3) as usize],
            releases: 0,
        };
        let mut left = if is_big {
            rng.range(500, 800) as usize
        } else {
            let u = rng.unit();
            let most = spec.max_files;
            (1 + (most as f64 * u * u) as usize).min(most)
        };
        while left > 0 {
            let added = add_release(state, &mut gp, &mut rng, left, &mut report);
            left = left.saturating_sub(added);
        }
        report.projects.push(gp.norm.clone());
        generator.projects.push(gp);
    }
    if spec.big_file_mib > 0 {
        let norm = state.ensure_project("big-file");
        let size = spec.big_file_mib * 1024 * 1024;
        let file = sdist("big_file", "1.0.0", size, mix(spec.seed, 0xB16F11E));
        report.files += 1;
        report.bytes += size;
        state.push_release(&norm, ReleaseSpec::new("1.0.0").sdist_only(), vec![file]);
        report.projects.push(norm);
    }
    report.projects.sort();
    report.last_serial = state.serial;
    state.generator = Some(generator);
    report
}

/// The next epoch: `changed` percent of the generated projects (at least one, chosen by seed
/// and epoch) get one new release each. `None` if `state` was not generated.
pub(crate) fn mutate(state: &mut State) -> Option<GenerationReport> {
    let mut generator = state.generator.take()?;
    generator.epoch += 1;
    let n = generator.projects.len();
    let mut report = GenerationReport {
        epoch: generator.epoch,
        projects: Vec::new(),
        files: 0,
        bytes: 0,
        last_serial: state.serial,
    };
    if n > 0 {
        let want = ((n as f64 * generator.spec.changed_percent / 100.0).round() as usize).clamp(1, n);
        let epoch_seed = mix(generator.spec.seed ^ 0x5EED, u64::from(generator.epoch));
        let mut picker = Rng::new(epoch_seed);
        let mut chosen = BTreeSet::new();
        while chosen.len() < want {
            chosen.insert(picker.below(n as u64) as usize);
        }
        for i in chosen {
            let mut rng = Rng::new(mix(epoch_seed, i as u64));
            let gp = &mut generator.projects[i];
            add_release(state, gp, &mut rng, usize::MAX, &mut report);
            report.projects.push(gp.norm.clone());
        }
    }
    report.projects.sort();
    report.last_serial = state.serial;
    state.generator = Some(generator);
    Some(report)
}

/// Adds the next release of `gp` with at most `limit` files; returns how many it has.
fn add_release(
    state: &mut State,
    gp: &mut GenProject,
    rng: &mut Rng,
    limit: usize,
    report: &mut GenerationReport,
) -> usize {
    let version = format!("0.{}.0", gp.releases);
    gp.releases += 1;
    let mut spec = ReleaseSpec::new(&version);
    spec.requires_python = gp.requires_python.map(str::to_string);
    if rng.below(40) == 0 {
        spec.yanked = Some("bench: yanked".to_string());
    }
    let (has_sdist, wheels) = if gp.big {
        (true, rng.range(5, 15) as usize)
    } else {
        let has_sdist = rng.unit() < 0.85;
        let w = [0, 1, 1, 1, 2, 3][rng.below(6) as usize];
        (has_sdist, if !has_sdist && w == 0 { 1 } else { w })
    };
    let tags: Vec<&str> = if wheels == 1 && !gp.big {
        vec!["py3-none-any"]
    } else {
        PLATFORM_TAGS[..wheels].to_vec()
    };
    let dist = dist_name(&gp.display);
    let mut files = Vec::new();
    for tag in tags {
        if files.len() >= limit {
            break;
        }
        let size = file_size(rng);
        let seed = rng.next_u64();
        files.push(wheel(&gp.display, &dist, &spec, tag, size, seed));
    }
    if has_sdist && files.len() < limit {
        let size = file_size(rng);
        let seed = rng.next_u64();
        files.push(sdist(&dist, &version, size, seed));
    }
    spec.wheel = files.iter().any(|f| f.filename.ends_with(".whl"));
    spec.sdist = files.iter().any(|f| f.filename.ends_with(".tar.gz"));
    let count = files.len();
    report.files += count;
    report.bytes += files.iter().map(|f| f.body.len()).sum::<u64>();
    state.push_release(&gp.norm, spec, files);
    count
}

/// The sha256 of a generated body, streamed (a 2 GiB body is never held).
fn sha256_generated(g: &Generated) -> String {
    let mut h = Sha256::new();
    h.update(&g.head);
    let mut random = RandomStream::new(g.seed, g.random_len);
    while let Some(chunk) = random.next_chunk(1 << 20) {
        h.update(&chunk);
    }
    h.update(&g.tail);
    hex::encode(h.finalize())
}

/// An sdist of `size` random bytes (not a real tar.gz: nothing in a mirror opens sdists).
fn sdist(dist: &str, version: &str, size: u64, seed: u64) -> NewFile {
    let g = Generated {
        head: Bytes::new(),
        seed,
        random_len: size,
        tail: Bytes::new(),
    };
    NewFile {
        kind: "source".to_string(),
        filename: format!("{dist}-{version}.tar.gz"),
        sha256: sha256_generated(&g),
        body: Body::Generated(Arc::new(g)),
        metadata: None,
    }
}

/// Fixed bytes of a wheel besides the payload (headers, METADATA, WHEEL, RECORD), about.
const WHEEL_OVERHEAD: u64 = 1_200;

/// A real wheel of about `size` bytes: `<pkg>/__init__.py`, `<pkg>/_payload.bin` (random,
/// streamed), METADATA, WHEEL and RECORD, all stored (uncompressed).
fn wheel(display: &str, dist: &str, spec: &ReleaseSpec, tag: &str, size: u64, seed: u64) -> NewFile {
    let version = &spec.version;
    let dist_info = format!("{dist}-{version}.dist-info");
    let payload_len = size.saturating_sub(WHEEL_OVERHEAD).max(64);
    // Invariant: wheels are at most a few MiB (file_size), far below zip's 4 GiB limit.
    let payload = RandomStream::new(seed, payload_len)
        .next_chunk(usize::MAX)
        .expect("a payload of at least 64 bytes");
    let mut crc = flate2::Crc::new();
    crc.update(&payload);
    let init = format!("__version__ = \"{version}\"\n").into_bytes();
    let metadata = metadata_text(display, spec).into_bytes();
    let wheel_txt =
        format!("Wheel-Version: 1.0\nGenerator: fake-upstream\nRoot-Is-Purelib: false\nTag: {tag}\n")
            .into_bytes();
    let record_line = |path: &str, digest: &[u8], len: usize| {
        format!("{path},sha256={},{len}\n", b64_urlsafe_nopad(digest))
    };
    let init_name = format!("{dist}/__init__.py");
    let payload_name = format!("{dist}/_payload.bin");
    let metadata_name = format!("{dist_info}/METADATA");
    let wheel_name = format!("{dist_info}/WHEEL");
    let record_name = format!("{dist_info}/RECORD");
    let mut record = String::new();
    record.push_str(&record_line(&init_name, &Sha256::digest(&init), init.len()));
    record.push_str(&record_line(
        &payload_name,
        &Sha256::digest(&payload),
        payload.len(),
    ));
    record.push_str(&record_line(
        &metadata_name,
        &Sha256::digest(&metadata),
        metadata.len(),
    ));
    record.push_str(&record_line(
        &wheel_name,
        &Sha256::digest(&wheel_txt),
        wheel_txt.len(),
    ));
    record.push_str(&format!("{record_name},,\n"));

    let mut z = StoredZip::default();
    z.entry(&init_name, &init);
    z.header(&payload_name, crc.sum(), payload.len() as u64);
    let head = z.take_segment();
    z.skip(payload.len() as u64);
    z.entry(&metadata_name, &metadata);
    z.entry(&wheel_name, &wheel_txt);
    z.entry(&record_name, record.as_bytes());
    let tail = z.finish();

    let mut h = Sha256::new();
    h.update(&head);
    h.update(&payload);
    h.update(&tail);
    let python_tag = tag.split('-').next().unwrap_or("py3");
    NewFile {
        kind: python_tag.to_string(),
        filename: format!("{dist}-{version}-{tag}.whl"),
        sha256: hex::encode(h.finalize()),
        body: Body::Generated(Arc::new(Generated {
            head: Bytes::from(head),
            seed,
            random_len: payload_len,
            tail: Bytes::from(tail),
        })),
        metadata: Some(Bytes::from(metadata)),
    }
}

/// A zip archive of stored entries written in segments, so that an entry's data can live
/// outside (between two segments). Sizes and offsets must stay below 4 GiB (no zip64).
#[derive(Default)]
struct StoredZip {
    segment: Vec<u8>,
    central: Vec<u8>,
    entries: u16,
    /// Bytes of the archive so far, skipped data included.
    offset: u64,
}

/// 1980-01-01 00:00 in MS-DOS form (the zip epoch).
const DOS_DATE: u16 = (1 << 5) | 1;

impl StoredZip {
    fn put(&mut self, bytes: &[u8]) {
        self.segment.extend_from_slice(bytes);
        self.offset += bytes.len() as u64;
    }

    fn u32_of(v: u64) -> [u8; 4] {
        // Invariant: only wheels of a few MiB are built.
        u32::try_from(v).expect("zip sizes below 4 GiB").to_le_bytes()
    }

    /// A local file header for a stored entry whose `size` bytes follow.
    fn header(&mut self, name: &str, crc: u32, size: u64) {
        let offset = self.offset;
        let name_len = u16::try_from(name.len()).expect("short entry name").to_le_bytes();
        let mut h = Vec::with_capacity(30 + name.len());
        h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        h.extend_from_slice(&20u16.to_le_bytes()); // version needed
        h.extend_from_slice(&0u16.to_le_bytes()); // flags
        h.extend_from_slice(&0u16.to_le_bytes()); // stored
        h.extend_from_slice(&0u16.to_le_bytes()); // time
        h.extend_from_slice(&DOS_DATE.to_le_bytes());
        h.extend_from_slice(&crc.to_le_bytes());
        h.extend_from_slice(&Self::u32_of(size)); // compressed
        h.extend_from_slice(&Self::u32_of(size)); // uncompressed
        h.extend_from_slice(&name_len);
        h.extend_from_slice(&0u16.to_le_bytes()); // extra
        h.extend_from_slice(name.as_bytes());
        self.put(&h);

        let c = &mut self.central;
        c.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        c.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes()); // made by: unix
        c.extend_from_slice(&20u16.to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes());
        c.extend_from_slice(&DOS_DATE.to_le_bytes());
        c.extend_from_slice(&crc.to_le_bytes());
        c.extend_from_slice(&Self::u32_of(size));
        c.extend_from_slice(&Self::u32_of(size));
        c.extend_from_slice(&name_len);
        c.extend_from_slice(&0u16.to_le_bytes()); // extra
        c.extend_from_slice(&0u16.to_le_bytes()); // comment
        c.extend_from_slice(&0u16.to_le_bytes()); // disk
        c.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        c.extend_from_slice(&(0o100_644u32 << 16).to_le_bytes()); // external: -rw-r--r--
        c.extend_from_slice(&Self::u32_of(offset));
        c.extend_from_slice(name.as_bytes());
        self.entries += 1;
    }

    fn entry(&mut self, name: &str, data: &[u8]) {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        self.header(name, crc.sum(), data.len() as u64);
        self.put(data);
    }

    /// `len` bytes of entry data that are not part of any segment.
    fn skip(&mut self, len: u64) {
        self.offset += len;
    }

    fn take_segment(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.segment)
    }

    /// The central directory and its end record; returns the last segment.
    fn finish(mut self) -> Vec<u8> {
        let cd_offset = self.offset;
        let central = std::mem::take(&mut self.central);
        self.put(&central);
        let mut end = Vec::with_capacity(22);
        end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        end.extend_from_slice(&self.entries.to_le_bytes());
        end.extend_from_slice(&self.entries.to_le_bytes());
        end.extend_from_slice(&Self::u32_of(central.len() as u64));
        end.extend_from_slice(&Self::u32_of(cd_offset));
        end.extend_from_slice(&0u16.to_le_bytes());
        self.put(&end);
        self.segment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_defaults_and_keys() {
        assert_eq!("".parse::<GenerateSpec>().unwrap(), GenerateSpec::default());
        let s: GenerateSpec = "projects=200,seed=7".parse().unwrap();
        assert_eq!((s.projects, s.seed, s.big_projects), (200, 7, 1));
        assert_eq!(GenerateSpec::default().big_projects, 5);
        let s: GenerateSpec = "projects=10, big-projects=0, big-file-mb=2048, changed=2.5"
            .parse()
            .unwrap();
        assert_eq!(
            (s.big_projects, s.big_file_mib, s.changed_percent),
            (0, 2048, 2.5)
        );
        assert_eq!("projects=0".parse::<GenerateSpec>().unwrap().big_projects, 0);
        assert_eq!("max-files=1".parse::<GenerateSpec>().unwrap().max_files, 1);
        assert_eq!(GenerateSpec::default().max_files, 20);
    }

    #[test]
    fn spec_errors_name_the_bad_part() {
        let e = |s: &str| s.parse::<GenerateSpec>().unwrap_err().to_string();
        assert!(
            e("projects=lots").starts_with("invalid projects `lots`: "),
            "{}",
            e("projects=lots")
        );
        assert!(e("colour=red").starts_with("unknown key `colour`"));
        assert!(e("projects").starts_with("`projects` is not KEY=VALUE"));
        assert!(e("changed=0").starts_with("invalid changed `0`: not in (0, 100]"));
        assert!(e("projects=3,big-projects=4").starts_with("big-projects 4 is more than projects 3"));
        assert!(e("projects=2000000").contains("more than 1000000"));
        assert!(e("seed=-1").contains("e.g. `projects=2000,seed=1`"));
        assert!(e("max-files=0").starts_with("invalid max-files `0`: not in 1-20"));
        assert!(e("max-files=21").starts_with("invalid max-files `21`: not in 1-20"));
    }

    #[test]
    fn max_files_caps_the_projects_that_are_not_big() {
        let spec: GenerateSpec = "projects=60,big-projects=1,max-files=1".parse().unwrap();
        let report = generate(&mut State::new("http://127.0.0.1:1".to_owned()), &spec);
        // 59 projects of one file each, and the big one with 500-800.
        assert!((59 + 500..=59 + 800).contains(&report.files), "{}", report.files);
        let default = generate(
            &mut State::new("http://127.0.0.1:1".to_owned()),
            &"projects=60,big-projects=0".parse().unwrap(),
        );
        assert!(default.files > 120, "{}", default.files);
    }

    #[test]
    fn names_and_sizes() {
        assert_eq!(display_name(17), "bravo-bravo-17");
        assert_eq!(display_name(20), "Echo_bravo.20");
        let mut rng = Rng::new(1);
        let sizes: Vec<u64> = (0..20_000).map(|_| file_size(&mut rng)).collect();
        let small = sizes.iter().filter(|&&s| (5_000..=200_000).contains(&s)).count();
        let big = sizes.iter().filter(|&&s| s >= 1 << 20).count();
        assert!(small > 19_800, "{small} of 20000 in 5-200 KB");
        assert!((40..=130).contains(&big), "{big} of 20000 files of MiBs");
        assert!(sizes.iter().all(|&s| s < 6 << 20));
    }
}
