//! Fuzz properties for the card, frame and vault crates: one module per libFuzzer target.
//!
//! Each `run(data)` decodes the fuzzer's bytes, calls the public API and asserts properties
//! that must hold for *every* input (a failed assertion is a finding, like a crash). The same
//! functions replay the corpora and the regression inputs in `tests/replay.rs`, without
//! libFuzzer, on the stable toolchain.
#![forbid(unsafe_code)]

pub mod card_format;
pub mod card_parse;
pub mod frame_message;
pub mod frame_params;
pub mod frame_style;
pub mod vault_envelope;
pub mod vault_keys;
pub mod vault_url;

/// The fixed "today" the card checks run against (the unit tests use the same month).
pub fn today() -> card::YearMonth {
    card::YearMonth::new(2026, 11).unwrap_or_else(|_| unreachable!("2026-11 is a valid month"))
}
