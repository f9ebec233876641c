//! Integration tests of `tufa-ceremony`: whole ceremonies through the binary, python-tuf's
//! ngclient judging the published metadata, the library API, and the runbook's commands.

// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

mod ceremony;
mod library;
mod pkcs11;
mod python;
mod runbook;
mod support;
