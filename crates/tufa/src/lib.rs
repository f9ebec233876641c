//! The parts of the `tufa` CLI other tools need as a library: the configuration file
//! ([`config`], with the `[tuf]` section from [`tuf_cmd`]). The fuzz target `config` parses
//! untrusted `tufa.toml` text through exactly the code the binary uses. The TUF side of the
//! mirror lives here too: the online key and its rotation ([`online_key`]), signing on publish
//! and `tufa online-key` ([`tuf_cmd`]), and importing a key ceremony's export
//! ([`import_cmd`]). The writer lease around every publishing command and `[lease]` are in
//! [`lease_cmd`]. Following dependencies (`[sync] follow_dependencies`, quickstart) is
//! [`deps`].
//!
//! Everything else (subcommands, progress, logging) stays in the binary (`main.rs`).

pub mod config;
pub mod deps;
pub mod import_cmd;
pub mod lease_cmd;
pub mod online_key;
pub mod requirements;
pub mod tuf_cmd;
