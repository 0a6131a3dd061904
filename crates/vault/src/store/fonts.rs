//! Web fonts merchants register for the card frame (`/v1/fonts`, migration 8): the record both
//! engines store, without its bytes (read only to serve the file).

use serde::Serialize;

use crate::clock::UnixSeconds;
use crate::keys::Mode;

/// Columns of `fonts` read into a [`FontRecord`], in field order.
pub const FONT_COLUMNS: &str = "id, merchant_id, mode, family, weight, style, hash, size, created";

/// A registered font face (its WOFF2 bytes are stored beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FontRecord {
    /// `font_…`.
    pub id: String,
    /// Owning merchant.
    pub merchant_id: String,
    /// Test or live (the key's mode that registered it).
    pub mode: Mode,
    /// CSS family name (checked: letters, digits, spaces, `-`, `_`).
    pub family: String,
    /// CSS weight, 100–900 in steps of 100.
    pub weight: u16,
    /// `normal` or `italic`.
    pub style: String,
    /// 32 letters `a`–`p` from the SHA-256 of the bytes: the served file's name.
    pub hash: String,
    /// Size of the WOFF2 file in bytes.
    pub size: u32,
    /// Creation time.
    pub created: UnixSeconds,
}
