//! Integration tests: a real TLS server on port 0, a real SQLite file, a controllable clock.
//! One test binary (see `helpers::spawn_app`).

// Test helpers are not `#[test]` functions, so clippy.toml's in-test allowances do not reach
// them; a failed unwrap or index in a helper is a failed test with a clear location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod helpers;

mod admin;
mod cli;
mod cluster;
mod devspace;
mod faults;
mod findings;
mod fonts;
mod frame;
mod lifecycle;
mod payments;
mod security;
mod store_conformance;
mod tls;
mod tokens;
mod webhooks;
