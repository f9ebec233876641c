//! Measures the page variants' compression: gzip at the level publishing uses and zstd at the
//! levels given, on a project page of N synthetic files rendered by `project_page` (9 wheels
//! and one sdist per version, like a compiled package; random sha256s like real files).
//!
//! `cargo run --release -p tufa-publish --example page_compression -- 5000 1 2 3 6 19`
//!
//! How `ZSTD_LEVEL` in `store_page` was chosen; see the comment there for the numbers.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use tufa_index::{FileRecord, ProjectRecord};
use tufa_pypi::{DistFilename, ProjectName, Sha256Digest, render};
use tufa_tree::BlobRef;

const TAGS: [&str; 9] = [
    "cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp310-cp310-macosx_11_0_arm64",
    "cp311-cp311-macosx_11_0_arm64",
    "cp312-cp312-macosx_11_0_arm64",
    "cp310-cp310-win_amd64",
    "cp311-cp311-win_amd64",
    "cp312-cp312-musllinux_1_2_x86_64",
];

/// The mean time of `runs` calls of `f`, and its last result.
fn timed<T>(runs: u32, mut f: impl FnMut() -> T) -> (Duration, T) {
    let start = Instant::now();
    let mut out = f();
    for _ in 1..runs {
        out = f();
    }
    (start.elapsed() / runs, out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(Ok(5000), |a| a.parse())?;
    let levels = args.map(|a| a.parse::<i32>()).collect::<Result<Vec<_>, _>>()?;

    let mut files = Vec::with_capacity(count);
    let mut metadata = BTreeMap::new();
    let names = (0u64..).flat_map(|v| {
        let version = format!("{}.{}.0", v / 10, v % 10);
        std::iter::once(format!("bigproj-{version}.tar.gz"))
            .chain(TAGS.iter().map(move |tag| format!("bigproj-{version}-{tag}.whl")))
    });
    for (i, name) in (0u64..).zip(names).take(count) {
        if name.ends_with(".whl") {
            let sha256 = Sha256Digest::of(format!("METADATA of {name}").as_bytes());
            metadata.insert(name.clone(), BlobRef { sha256, len: 3000 });
        }
        files.push(FileRecord {
            filename: DistFilename::parse(&name)?,
            sha256: Sha256Digest::of(name.as_bytes()),
            size: 1_000_000 + i * 7919 % 500_000,
            requires_python: Some(">=3.10".into()),
            yanked: None,
            upload_time: Some(format!(
                "2024-{:02}-{:02}T12:{:02}:{:02}.{:06}Z",
                1 + i % 12,
                1 + i % 28,
                i % 60,
                i * 7 % 60,
                i * 31337 % 1_000_000
            )),
            core_metadata_sha256: None,
            upstream_url: String::new(),
            provenance: None,
        });
    }
    let record = ProjectRecord {
        name: ProjectName::new("bigproj")?,
        last_serial: None,
        versions: Vec::new(),
        status: None,
    };
    let page = tufa_publish::project_page(&record, &files, &metadata);
    for (format, raw) in [
        ("html", render::render_html(&page)),
        ("json", render::render_json(&page)),
    ] {
        let raw = raw.into_bytes();
        let (took, gz) = timed(5, || -> std::io::Result<Vec<u8>> {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(&raw)?;
            e.finish()
        });
        let gz = gz?;
        let ratio = |len: usize| len as f64 / raw.len() as f64;
        println!(
            "{format} ({count} files): {} B; gzip -9: {} B ({:.3}) in {took:.1?}",
            raw.len(),
            gz.len(),
            ratio(gz.len())
        );
        for &level in &levels {
            let (took, zst) = timed(5, || zstd::bulk::compress(&raw, level));
            let zst = zst?;
            assert_eq!(zstd::bulk::decompress(&zst, raw.len())?, raw);
            println!(
                "  zstd -{level}: {} B ({:.3}) in {took:.1?}",
                zst.len(),
                ratio(zst.len())
            );
        }
    }
    Ok(())
}
