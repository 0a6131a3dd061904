//! Password rules and argon2id hashing.
//!
//! Parameters: argon2id v19, 19 MiB memory, 2 passes, 1 lane, 32-byte output, 16-byte random
//! salt ([`HashParams::OWASP`], the OWASP Password Storage Cheat Sheet's first
//! recommendation). One verification costs about 25–40 ms of one core in a release build;
//! sign-in is rate limited per account and per address, so this bounds an attacker with a
//! stolen database, not the server's load. Hashes are stored as PHC strings
//! (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), so the parameters can be raised later and old
//! hashes still verify.
//!
//! Rules for a new password (NIST SP 800-63B): 12 to 128 characters, any characters, not a
//! well-known password, not the account's email address. No composition rules.

use core::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::secret::{RandomError, Secret, random_fill};

/// Shortest accepted password, in characters.
pub const MIN_CHARS: usize = 12;
/// Longest accepted password, in characters (bounds the hashing input).
pub const MAX_CHARS: usize = 128;

/// Why a new password is refused. The `Display` text is shown next to the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordError {
    /// Fewer than [`MIN_CHARS`] characters.
    TooShort,
    /// More than [`MAX_CHARS`] characters.
    TooLong,
    /// One of the passwords attackers try first.
    Common,
    /// The password contains the account's email address (or its local part).
    ContainsEmail,
    /// The confirmation differs.
    Mismatch,
}

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => write!(f, "Use at least {MIN_CHARS} characters."),
            Self::TooLong => write!(f, "Use at most {MAX_CHARS} characters."),
            Self::Common => f.write_str("This password is too common; choose another."),
            Self::ContainsEmail => f.write_str("The password must not contain your email address."),
            Self::Mismatch => f.write_str("The two passwords differ."),
        }
    }
}

impl std::error::Error for PasswordError {}

/// Passwords attackers try first that are long enough to pass the length rule.
const COMMON: &[&str] = &[
    "123456789012",
    "password1234",
    "password123!",
    "qwertyuiop12",
    "qwertyuiopas",
    "iloveyou1234",
    "administrator",
    "passwordpassword",
    "correcthorsebatterystaple",
    "111111111111",
    "000000000000",
    "abcdefghijkl",
    "letmeinletmein",
    "welcome12345",
];

/// Checks a new password and its confirmation against the rules above.
///
/// # Errors
/// The first rule broken, as a [`PasswordError`].
pub fn check_new(password: &Secret, confirmation: &Secret, email: &str) -> Result<(), PasswordError> {
    let pw = password.expose();
    let chars = pw.chars().count();
    if chars < MIN_CHARS {
        return Err(PasswordError::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(PasswordError::TooLong);
    }
    let lower = Zeroizing::new(pw.to_lowercase());
    if COMMON.iter().any(|c| *c == lower.as_str()) {
        return Err(PasswordError::Common);
    }
    let email = email.to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if lower.contains(email.as_str()) || (local.chars().count() >= 4 && lower.contains(local)) {
        return Err(PasswordError::ContainsEmail);
    }
    if !bool::from(pw.as_bytes().ct_eq(confirmation.expose().as_bytes())) {
        return Err(PasswordError::Mismatch);
    }
    Ok(())
}

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl HashParams {
    /// 19 MiB, 2 passes, 1 lane (OWASP).
    pub const OWASP: Self = Self { m_kib: 19 * 1024, t: 2, p: 1 };
    /// The cheapest parameters argon2 allows: for tests only (hashes still verify, whatever
    /// parameters they were made with).
    pub const TEST_ONLY: Self = Self { m_kib: 8, t: 1, p: 1 };
}

/// Hashing failed (random generator, or parameters argon2 refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashError;

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("password hashing failed")
    }
}

impl std::error::Error for HashError {}

impl From<RandomError> for HashError {
    fn from(_: RandomError) -> Self {
        Self
    }
}

fn argon2(params: HashParams) -> Result<Argon2<'static>, HashError> {
    let p = Params::new(params.m_kib, params.t, params.p, Some(32)).map_err(|_| HashError)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
}

/// Hashes `password` with a fresh salt into a PHC string.
///
/// # Errors
/// [`HashError`] if the generator or argon2 fails.
pub fn hash(password: &Secret, params: HashParams) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    random_fill(&mut salt)?;
    let mut out = Zeroizing::new([0u8; 32]);
    argon2(params)?.hash_password_into(password.expose().as_bytes(), &salt, out.as_mut()).map_err(|_| HashError)?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_kib,
        params.t,
        params.p,
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out.as_ref())
    ))
}

fn parse_phc(stored: &str) -> Option<(HashParams, Vec<u8>, Vec<u8>)> {
    let mut parts = stored.strip_prefix("$argon2id$v=19$")?.split('$');
    let (cost, salt, hash) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let mut params = HashParams { m_kib: 0, t: 0, p: 0 };
    for kv in cost.split(',') {
        let (k, v) = kv.split_once('=')?;
        let v: u32 = v.parse().ok()?;
        match k {
            "m" => params.m_kib = v,
            "t" => params.t = v,
            "p" => params.p = v,
            _ => return None,
        }
    }
    Some((params, STANDARD_NO_PAD.decode(salt).ok()?, STANDARD_NO_PAD.decode(hash).ok()?))
}

/// Whether `password` matches the PHC string `stored` (constant-time comparison; a malformed
/// string never matches).
pub fn verify(password: &Secret, stored: &str) -> bool {
    let Some((params, salt, expected)) = parse_phc(stored) else {
        return false;
    };
    if expected.len() != 32 {
        return false;
    }
    let Ok(a) = argon2(params) else {
        return false;
    };
    let mut out = Zeroizing::new([0u8; 32]);
    if a.hash_password_into(password.expose().as_bytes(), &salt, out.as_mut()).is_err() {
        return false;
    }
    bool::from(out.as_slice().ct_eq(&expected))
}

/// Spends the time of one verification on nothing, so an unknown email answers as slowly as a
/// known one with a wrong password.
pub fn verify_dummy(password: &Secret, params: HashParams) {
    let mut out = Zeroizing::new([0u8; 32]);
    if let Ok(a) = argon2(params) {
        let _ = a.hash_password_into(password.expose().as_bytes(), b"devspace-dummy-salt", out.as_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Secret {
        Secret::new(v.to_owned())
    }

    #[test]
    fn rules() {
        let cases: &[(&str, &str, Result<(), PasswordError>)] = &[
            ("short", "short", Err(PasswordError::TooShort)),
            ("password1234", "password1234", Err(PasswordError::Common)),
            ("PassWord1234", "PassWord1234", Err(PasswordError::Common)),
            ("xx-alice-smith-yy", "xx-alice-smith-yy", Err(PasswordError::ContainsEmail)),
            ("a long enough passphrase", "a long enough passphrasf", Err(PasswordError::Mismatch)),
            ("a long enough passphrase", "a long enough passphrase", Ok(())),
        ];
        for (pw, confirm, want) in cases {
            assert_eq!(check_new(&s(pw), &s(confirm), "alice-smith@example.com"), *want, "{pw}");
        }
        let long = "x".repeat(MAX_CHARS + 1);
        assert_eq!(check_new(&s(&long), &s(&long), "a@b.c"), Err(PasswordError::TooLong));
    }

    #[test]
    fn hash_then_verify() -> Result<(), HashError> {
        let stored = hash(&s("correct horse battery"), HashParams::TEST_ONLY)?;
        assert!(stored.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{stored}");
        assert!(verify(&s("correct horse battery"), &stored));
        assert!(!verify(&s("correct horse batterz"), &stored));
        assert!(!verify(&s("correct horse battery"), "$argon2id$v=19$m=8,t=1,p=1$bad"));
        assert!(!verify(&s("x"), ""));
        Ok(())
    }

    #[test]
    fn phc_parsing() {
        let parsed = parse_phc("$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$AAAA");
        assert_eq!(parsed, Some((HashParams { m_kib: 8, t: 1, p: 1 }, b"somesalt".to_vec(), vec![0, 0, 0])));
        assert_eq!(parse_phc("$argon2i$v=19$m=8,t=1,p=1$c29tZXNhbHQ$AAAA"), None);
        assert_eq!(parse_phc("$argon2id$v=19$m=8,t=1,q=1$c29tZXNhbHQ$AAAA"), None);
    }
}
