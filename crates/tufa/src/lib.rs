//! The parts of the `tufa` CLI other tools need as a library: the configuration file
//! ([`config`], with the `[tuf]` section from [`tuf_cmd`]). The fuzz target `config` parses
//! untrusted `tufa.toml` text through exactly the code the binary uses.
//!
//! Everything else (subcommands, progress, logging) stays in the binary (`main.rs`).

pub mod config;
pub mod tuf_cmd;
