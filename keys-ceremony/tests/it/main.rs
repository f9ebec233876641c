//! Integration tests of `tufa-ceremony`: whole ceremonies through the binary, python-tuf's
//! ngclient judging the published metadata, the library API, and what operators meet at a
//! ceremony (confirmation, passphrase sources, exit codes, messages). The runbook's commands
//! run in tests/e2e.

// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

mod ceremony;
mod library;
mod operator;
mod pkcs11;
mod python;
mod support;
