//! End-to-end: fake upstream → `tufa sync` → `tufa serve` → real pip, uv and python-tuf's
//! ngclient; TUF attacks against ngclient on static fixtures built from tufa's metadata.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attacks;
mod ceremony;
mod conformance;
mod crash;
mod deps;
mod disk_full;
mod harness;
mod http;
mod pip;
mod policy;
mod proxy;
mod rebuild;
mod replica;
mod runbook;
mod s3;
mod soak;
mod tuf;
mod tuf_client;
mod uv;
