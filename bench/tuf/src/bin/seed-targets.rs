//! `seed-targets INDEX COUNT`: adds COUNT synthetic TUF targets to a tufa index (redb file), as
//! 1,000-target projects named `seeded-<k>`, so a benchmark can publish into a mirror that
//! holds a PyPI-sized target set without syncing one (bench/publish-scale.sh). Paths look like
//! tufa's file targets (`files/<aa>/<bb>/<60 hex>/seeded_<k>-1.0.<i>.tar.gz`) with
//! deterministic digests, so they spread over the hashed bins like real ones; every bin they
//! touch is marked dirty, and the next `tufa sync` signs them all. The blobs do not exist: run
//! this on a throwaway mirror only (`tufa verify` would report them).

use std::error::Error;

use tufa_index::Index;
use tufa_pypi::{ProjectName, Sha256Digest};
use tufa_tuf::{BinLayout, TargetFile, TargetPath};

const PER_PROJECT: u64 = 1000;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [index, count] = args.as_slice() else {
        return Err("usage: seed-targets INDEX COUNT".into());
    };
    let count: u64 = count
        .parse()
        .map_err(|e| format!("COUNT `{count}` is not a whole number: {e}"))?;
    let index = Index::open(index)?;
    let deferred = index.with_deferred_durability();
    let layout = BinLayout::default();
    let projects = count.div_ceil(PER_PROJECT);
    for k in 0..projects {
        let name = ProjectName::new(&format!("seeded-{k}"))?;
        let rows = (0..PER_PROJECT.min(count - k * PER_PROJECT))
            .map(|i| {
                let digest = Sha256Digest::of(format!("{k}/{i}").as_bytes());
                let hex = digest.to_hex();
                let path = TargetPath::new(&format!(
                    "files/{}/{}/{}/seeded_{k}-1.0.{i}.tar.gz",
                    &hex[..2],
                    &hex[2..4],
                    &hex[4..]
                ))?;
                let file = TargetFile::new(10_000 + i, &digest);
                Ok((
                    layout.bin_for(&path),
                    path.as_str().to_owned(),
                    serde_json::to_vec(&file)?,
                ))
            })
            .collect::<Result<Vec<_>, Box<dyn Error>>>()?;
        // The last one durable: it makes every earlier (deferred) one durable with it.
        let writer = if k + 1 == projects { &index } else { &deferred };
        writer.set_project_targets(&name, &rows)?;
    }
    println!("seeded {count} targets in {projects} projects");
    Ok(())
}
