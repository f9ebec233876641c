//! Integration tests of `tufa-tuf`: conformance with python-tuf (the reference client) and the
//! repository verifier against tampered repositories.

// Test helpers outside #[test] functions panic on broken fixtures by design.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

mod canonical;
mod conformance;
mod fixture;
mod key_types;
mod python;
mod verify;
