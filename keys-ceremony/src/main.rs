//! `tufa-ceremony`: the offline key-signing ceremony tool for tufa's root, targets and bins keys.
//!
//! Not yet implemented: the TUF signing issue comes first. This crate must never depend on a
//! network stack (enforced by `deny.toml`).

fn main() {
    eprintln!("tufa-ceremony: not implemented yet; see docs/ARCHITECTURE.md");
    std::process::exit(2);
}
