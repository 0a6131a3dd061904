//! The SDK from the outside: against a scripted fake vault (real TCP and TLS) for retries,
//! idempotency keys and errors, and against the real vault for tokens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod fake;
mod payments_e2e;
mod requests;
mod retries;
mod secrets;
mod vault_e2e;
mod webhooks;
