//! TOTP (RFC 6238): HMAC-SHA1, 30-second steps, 6 digits, as every authenticator app expects.
//!
//! Verification accepts the current step and one on either side (clock drift), and only a
//! step later than the last one accepted for the account: a code, once used, never works
//! again (the caller stores [`Verified::step`] with a conditional update, so two instances
//! cannot both accept it).

use core::fmt;

use ring::hmac;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::secret::{RandomError, random_fill};

/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Bytes of a generated secret: 160 bits, RFC 4226's recommendation.
pub const SECRET_BYTES: usize = 20;

/// A TOTP shared secret (zeroized, masked `Debug`).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(***)")
    }
}

impl TotpSecret {
    /// A fresh random secret.
    ///
    /// # Errors
    /// [`RandomError`] if the system generator fails.
    pub fn generate() -> Result<Self, RandomError> {
        let mut bytes = vec![0u8; SECRET_BYTES];
        random_fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// Wraps stored bytes (after the backend decrypted them).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Parses the base32 form people type into authenticator apps (case, spaces and padding
    /// ignored); `None` for any other character.
    pub fn from_base32(text: &str) -> Option<Self> {
        let mut out = Vec::new();
        let (mut buffer, mut bits) = (0u32, 0u32);
        for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
            let v = match c.to_ascii_uppercase() {
                u @ 'A'..='Z' => u32::from(u) - u32::from('A'),
                d @ '2'..='7' => u32::from(d) - u32::from('2') + 26,
                _ => return None,
            };
            buffer = (buffer << 5) | v;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push(u8::try_from((buffer >> bits) & 0xff).unwrap_or(0));
            }
            buffer &= (1 << bits) - 1;
        }
        Some(Self(out))
    }

    /// The raw secret, for the backend to encrypt.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32 without padding: what a person types into an authenticator app.
    pub fn base32(&self) -> String {
        base32(&self.0)
    }

    /// The `otpauth://` URI authenticator apps import.
    pub fn uri(&self, issuer: &str, account: &str) -> String {
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            percent(issuer),
            percent(account),
            self.base32(),
            percent(issuer)
        )
    }
}

fn percent(s: &str) -> String {
    use fmt::Write as _;
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// RFC 4648 base32, upper case, no padding.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let i = ((buffer >> bits) & 31) as usize;
            out.extend(ALPHABET.get(i).map(|c| char::from(*c)));
        }
    }
    if bits > 0 {
        let i = ((buffer << (5 - bits)) & 31) as usize;
        out.extend(ALPHABET.get(i).map(|c| char::from(*c)));
    }
    out
}

/// The HOTP value (RFC 4226) of `key` at `counter`, `digits` long.
fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key), &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let word = mac.get(offset..offset + 4).and_then(|w| <[u8; 4]>::try_from(w).ok()).map_or(0, u32::from_be_bytes);
    (word & 0x7fff_ffff) % 10u32.pow(digits)
}

/// The step containing Unix time `now`.
pub fn step_at(now: i64) -> i64 {
    now.div_euclid(STEP_SECONDS)
}

/// The code of `secret` for `step`, zero-padded.
pub fn code(secret: &TotpSecret, step: i64) -> String {
    format!("{:06}", hotp(&secret.0, u64::try_from(step).unwrap_or(0), DIGITS))
}

/// An accepted code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Its step: store it as the account's last used step.
    pub step: i64,
}

/// Checks `presented` (spaces ignored) against steps `now-1..=now+1` later than `last_step`.
pub fn verify(secret: &TotpSecret, presented: &str, now: i64, last_step: i64) -> Option<Verified> {
    let digits: String = presented.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != DIGITS as usize || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_at(now);
    let mut found = None;
    // Every candidate is computed and compared, so timing does not tell which step matched.
    for step in current - 1..=current + 1 {
        let ok = bool::from(code(secret, step).as_bytes().ct_eq(digits.as_bytes()));
        if ok && step > last_step && found.is_none() {
            found = Some(Verified { step });
        }
    }
    found
}

/// Whether `presented` looks like a TOTP code (6 digits, spaces ignored) rather than a
/// recovery code.
pub fn looks_like_code(presented: &str) -> bool {
    let digits: Vec<u8> = presented.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits.len() == DIGITS as usize && digits.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B (SHA1, 8 digits): time -> code.
        let key = b"12345678901234567890";
        let cases: &[(u64, u32)] = &[
            (59, 94_287_082),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ];
        for (t, want) in cases {
            assert_eq!(hotp(key, t / 30, 8), *want, "t={t}");
        }
    }

    #[test]
    fn base32_rfc4648() {
        let cases: &[(&str, &str)] =
            &[("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"), ("foobar", "MZXW6YTBOI")];
        for (input, want) in cases {
            assert_eq!(base32(input.as_bytes()), *want);
            assert_eq!(
                TotpSecret::from_base32(&want.to_lowercase()).map(|s| s.expose().to_vec()),
                Some(input.as_bytes().to_vec())
            );
        }
        assert!(TotpSecret::from_base32("MZ1").is_none());
    }

    #[test]
    fn window_and_replay() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let now = 1_111_111_111;
        let step = step_at(now);
        let current = code(&secret, step);
        assert_eq!(verify(&secret, &current, now, 0), Some(Verified { step }));
        // Same code again once its step is recorded: refused (replay).
        assert_eq!(verify(&secret, &current, now, step), None);
        // Previous and next steps are accepted (drift), two away is not.
        assert!(verify(&secret, &code(&secret, step - 1), now, 0).is_some());
        assert!(verify(&secret, &code(&secret, step + 1), now, 0).is_some());
        assert_eq!(verify(&secret, &code(&secret, step - 2), now, 0), None);
        // Formatting: spaces are ignored, other characters are not.
        let spaced = format!("{} {}", &current[..3], &current[3..]);
        assert!(verify(&secret, &spaced, now, 0).is_some());
        assert_eq!(verify(&secret, "12345a", now, 0), None);
        assert_eq!(verify(&secret, "", now, 0), None);
    }

    #[test]
    fn uri_is_escaped() {
        let secret = TotpSecret::from_bytes(b"foobar".to_vec());
        assert_eq!(
            secret.uri("Altafinex Dev Space", "a+b@example.com"),
            "otpauth://totp/Altafinex%20Dev%20Space:a%2Bb@example.com?secret=MZXW6YTBOI&issuer=Altafinex%20Dev%20Space&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(format!("{secret:?}"), "TotpSecret(***)");
    }
}
