//! Secret values: zeroized on drop, masked in `Debug`, never `Display` or `Serialize`.

use core::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret string (password, TOTP code, recovery code, session id, link token, API-key
/// secret). Deserializable so form fields land here directly, never in a plain `String`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret(String);

impl Secret {
    /// Wraps a string; the caller gives up its copy.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret text. Callers must not log or persist it in clear.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// Fills `buf` from the system CSPRNG.
///
/// # Errors
/// [`RandomError`] if the operating system's generator fails.
pub fn random_fill(buf: &mut [u8]) -> Result<(), RandomError> {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new().fill(buf).map_err(|_| RandomError)
}

/// The system random generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomError;

impl fmt::Display for RandomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the system random generator failed")
    }
}

impl std::error::Error for RandomError {}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Hex SHA-256 of `data` (how session ids, link tokens and recovery codes are stored: each has
/// at least 128 bits of entropy, so an unkeyed fast hash is enough to make a stolen table
/// useless).
pub fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_masked() {
        assert_eq!(format!("{:?}", Secret::new("hunter2hunter2".into())), "Secret(***)");
    }

    #[test]
    fn hex_and_hash() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
