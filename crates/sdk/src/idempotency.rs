//! `Idempotency-Key`s: one per logical request, the same on each of its retries.

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};

use crate::error::ConfigError;

/// Longest key the API accepts.
const MAX_LEN: usize = 255;

/// The value of an `Idempotency-Key` header.
///
/// The client generates a random one (a UUID v4) for every POST unless the call's
/// [`RequestOptions`](crate::RequestOptions) carry one, and sends the same key on every retry of
/// that call, so a retry after a lost answer replays the first answer instead of charging again.
/// Pass your own when the same logical operation may be started twice by your own code (a job
/// re-run after a crash, a double-clicked button): derive it from your order id, for example.
///
/// # Example
/// ```
/// use altafinex::IdempotencyKey;
/// let key = IdempotencyKey::new("order-1234-charge").unwrap();
/// assert_eq!(key.as_str(), "order-1234-charge");
/// assert!(IdempotencyKey::new("").is_err());
/// assert_eq!(IdempotencyKey::random().unwrap().as_str().len(), 36);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// A key of your choosing: 1 to 255 visible ASCII characters (what the API accepts).
    ///
    /// # Errors
    /// [`ConfigError::InvalidIdempotencyKey`] otherwise.
    pub fn new(key: impl Into<String>) -> Result<IdempotencyKey, ConfigError> {
        let key = key.into();
        if key.is_empty() || key.len() > MAX_LEN || !key.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Err(ConfigError::InvalidIdempotencyKey);
        }
        Ok(IdempotencyKey(key))
    }

    /// A random UUID v4 (122 random bits from the operating system's CSPRNG).
    ///
    /// # Errors
    /// [`ConfigError::Random`] if the operating system's random number generator fails.
    pub fn random() -> Result<IdempotencyKey, ConfigError> {
        let mut bytes = [0u8; 16];
        SystemRandom::new().fill(&mut bytes).map_err(|_| ConfigError::Random)?;
        Ok(IdempotencyKey(uuid_v4(bytes)))
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Formats 16 random bytes as a UUID v4 (RFC 9562): version nibble 4, variant bits `10`.
fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        for nibble in [b >> 4, b & 0x0f] {
            out.extend(char::from_digit(u32::from(nibble), 16));
        }
    }
    out
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({})", self.0)
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v4_layout() {
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
        assert_eq!(uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let a = IdempotencyKey::random().unwrap();
        let b = IdempotencyKey::random().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().as_bytes()[14], b'4');
    }

    #[test]
    fn validation_matches_the_api() {
        let long = "k".repeat(255);
        let too_long = "k".repeat(256);
        for (key, ok) in [
            ("a", true),
            (long.as_str(), true),
            ("~!@#", true),
            ("", false),
            (too_long.as_str(), false),
            ("a b", false),
            ("é", false),
            ("a\n", false),
        ] {
            assert_eq!(IdempotencyKey::new(key).is_ok(), ok, "{key:?}");
        }
    }
}
