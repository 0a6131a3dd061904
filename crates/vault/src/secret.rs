//! Secret value types: zeroized on drop, masked in `Debug`, never `Serialize`.
//!
//! Every secret the vault handles in memory (master key, data keys, API key plaintext, card
//! number and security code text from request bodies) lives in one of these types so that a
//! stray `{:?}` or a dropped buffer does not leak it.

use core::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A secret string (API key plaintext, card fields from a request body).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a string; the caller gives up its copy.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret text. Callers must not log or persist it in clear.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(Self(value))
    }
}

/// Secret bytes (plaintext card payloads, unwrapped keys).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps bytes; the caller gives up its copy.
    pub fn new(value: Vec<u8>) -> Self {
        Self(value)
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    fn from(mut value: Zeroizing<Vec<u8>>) -> Self {
        Self(core::mem::take(&mut *value))
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes, ***)", self.0.len())
    }
}

/// A 256-bit symmetric key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key256([u8; 32]);

impl Key256 {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Key256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key256(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_masked() {
        let s = SecretString::new("4242424242424242".to_owned());
        assert_eq!(format!("{s:?}"), "SecretString(***)");
        let b = SecretBytes::new(b"123".to_vec());
        assert!(!format!("{b:?}").contains("123"));
        let k = Key256::from_bytes([7; 32]);
        assert_eq!(format!("{k:?}"), "Key256(***)");
    }
}
