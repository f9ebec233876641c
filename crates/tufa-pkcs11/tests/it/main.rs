//! Integration tests against SoftHSM2. Each test runs in its own child process with its own
//! token directory (see `softhsm`).

// Test helpers outside #[test] functions panic on a broken setup by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod softhsm;

mod errors;
mod protection;
mod relabel;
mod signing;
