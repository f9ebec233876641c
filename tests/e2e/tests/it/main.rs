//! End-to-end: fake upstream → `tufa sync` → `tufa serve` → real pip and uv.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod pip;
mod uv;
