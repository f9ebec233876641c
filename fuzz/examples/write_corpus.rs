//! Writes the generated seeds: the fixture repository's metadata for `tuf_metadata` (one seed
//! per file slot, each the selector byte then the file) and `canonical_json`.
//!
//! `cargo +nightly run --example write_corpus` from `fuzz/` (hand-written seeds of the other
//! targets are committed as they are).

use std::path::Path;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn main() {
    let repo = tufa_fuzz::tuf_repo();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (slot, (name, bytes)) in repo.files.iter().enumerate() {
        let mut seed = vec![slot as u8];
        seed.extend_from_slice(bytes);
        write(&corpus.join("tuf_metadata"), &format!("fixture-{name}"), &seed);
        write(&corpus.join("canonical_json"), &format!("fixture-{name}"), bytes);
    }
    println!("wrote {} fixture files", repo.files.len());
}
