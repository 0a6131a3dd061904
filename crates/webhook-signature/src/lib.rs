//! Webhook signing and verification, shared by the vault (which signs deliveries) and the
//! merchant SDK (which verifies them), so both sides run the same code.
//!
//! Every delivery carries two signature schemes over the same raw body:
//!
//! - `X-Altafinex-Signature`: the lowercase hex HMAC-SHA256 of the raw body, keyed with the
//!   endpoint secret **as shown** (the whole `whsec_…` string, UTF-8). This is what the merchant
//!   docs' Node.js snippet checks (`crypto.createHmac('sha256', secret)`). It does not cover a
//!   timestamp, so it cannot reject replays on its own.
//! - [Standard Webhooks](https://www.standardwebhooks.com/): `webhook-id`, `webhook-timestamp`
//!   (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
//!   keyed with the base64-decoded part of the secret after `whsec_`. Several space-separated
//!   `v1,` signatures are sent while a rotated secret is still valid.
//!
//! [`verify`] prefers the Standard Webhooks headers (signature and timestamp tolerance) and falls
//! back to `X-Altafinex-Signature` only when they are absent. Comparisons are constant-time
//! (`ring::hmac::verify`). The crate does no I/O and reads no clock: callers pass `now`.
#![forbid(unsafe_code)]

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::hmac;
use zeroize::Zeroizing;

/// Header carrying the hex HMAC-SHA256 of the raw body (the merchant docs' scheme).
pub const ALTAFINEX_SIGNATURE: &str = "x-altafinex-signature";
/// Standard Webhooks: the message id (the event id; the same on every retry).
pub const WEBHOOK_ID: &str = "webhook-id";
/// Standard Webhooks: Unix seconds at which this attempt was signed.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Standard Webhooks: space-separated `v1,<base64>` signatures.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// The tolerance the docs advise: reject deliveries signed more than 5 minutes away from now.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

const SECRET_PREFIX: &str = "whsec_";
const SECRET_MIN_BYTES: usize = 24;
const SECRET_MAX_BYTES: usize = 64;
const MAX_ID_LEN: usize = 128;
const MAX_SIGNATURE_HEADER_LEN: usize = 1024;
const MAX_SIGNATURES: usize = 8;
const TAG_LEN: usize = 32;

/// An endpoint's signing secret (`whsec_` + base64 of 24–64 random bytes).
///
/// Zeroized on drop; `Debug` and `Display` never show it. [`Secret::expose`] is the one way to
/// read it, for showing it once to the merchant.
#[derive(Clone)]
pub struct Secret {
    text: Zeroizing<String>,
    key: Zeroizing<Vec<u8>>,
}

/// Why a secret string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretError {
    /// The string does not start with `whsec_`.
    MissingPrefix,
    /// The part after `whsec_` is not standard base64.
    NotBase64,
    /// The decoded key is shorter than 24 or longer than 64 bytes.
    BadLength,
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretError::MissingPrefix => "a webhook secret starts with `whsec_`",
            SecretError::NotBase64 => "the part of a webhook secret after `whsec_` is not base64",
            SecretError::BadLength => "a webhook secret decodes to 24 to 64 bytes",
        })
    }
}

impl std::error::Error for SecretError {}

impl Secret {
    /// A secret made of the given random bytes (the caller supplies them from a CSPRNG).
    ///
    /// # Errors
    /// [`SecretError::BadLength`] unless 24 to 64 bytes are given.
    pub fn from_random_bytes(bytes: &[u8]) -> Result<Secret, SecretError> {
        if !(SECRET_MIN_BYTES..=SECRET_MAX_BYTES).contains(&bytes.len()) {
            return Err(SecretError::BadLength);
        }
        let mut text = Zeroizing::new(String::from(SECRET_PREFIX));
        BASE64.encode_string(bytes, &mut text);
        Ok(Secret { text, key: Zeroizing::new(bytes.to_vec()) })
    }

    /// Parses a secret as the merchant was shown it.
    ///
    /// # Errors
    /// A [`SecretError`] saying which rule the string breaks.
    pub fn parse(text: &str) -> Result<Secret, SecretError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or(SecretError::MissingPrefix)?;
        if encoded.len() > SECRET_MAX_BYTES * 2 {
            return Err(SecretError::BadLength);
        }
        let key = Zeroizing::new(BASE64.decode(encoded).map_err(|_| SecretError::NotBase64)?);
        if !(SECRET_MIN_BYTES..=SECRET_MAX_BYTES).contains(&key.len()) {
            return Err(SecretError::BadLength);
        }
        Ok(Secret { text: Zeroizing::new(text.to_owned()), key })
    }

    /// The secret as shown to the merchant (`whsec_…`). Show it once; never log it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    fn altafinex_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, self.text.as_bytes())
    }

    fn standard_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.key)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(whsec_****)")
    }
}

/// The headers one delivery attempt carries, in the order they are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `X-Altafinex-Signature`: hex HMAC of the body with the newest secret.
    pub altafinex_signature: String,
    /// `webhook-id`.
    pub webhook_id: String,
    /// `webhook-timestamp` (Unix seconds).
    pub webhook_timestamp: String,
    /// `webhook-signature`: one `v1,` entry per secret, newest first.
    pub webhook_signature: String,
}

impl SignedHeaders {
    /// `(name, value)` pairs, ready to add to a request.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            (ALTAFINEX_SIGNATURE, &self.altafinex_signature),
            (WEBHOOK_ID, &self.webhook_id),
            (WEBHOOK_TIMESTAMP, &self.webhook_timestamp),
            (WEBHOOK_SIGNATURE, &self.webhook_signature),
        ]
    }
}

/// Why a message could not be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignError {
    /// No secret was given.
    NoSecret,
    /// The message id is empty, longer than 128 bytes, or not `[A-Za-z0-9_-]`.
    BadId,
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignError::NoSecret => "at least one secret is needed to sign",
            SignError::BadId => "a message id is 1 to 128 characters of [A-Za-z0-9_-]",
        })
    }
}

impl std::error::Error for SignError {}

/// Signs one delivery attempt of `body` with every valid secret (newest first).
///
/// `X-Altafinex-Signature` uses only the newest secret (the docs' snippet compares one value);
/// `webhook-signature` carries one `v1,` entry per secret, so receivers still on the previous
/// secret keep verifying during a rotation's overlap.
///
/// # Errors
/// [`SignError`] when no secret is given or the id is not a plain identifier.
pub fn sign(secrets: &[&Secret], msg_id: &str, timestamp: i64, body: &[u8]) -> Result<SignedHeaders, SignError> {
    let newest = secrets.first().ok_or(SignError::NoSecret)?;
    if !valid_id(msg_id) {
        return Err(SignError::BadId);
    }
    let timestamp = timestamp.to_string();
    let altafinex_signature = hex(hmac::sign(&newest.altafinex_key(), body).as_ref());
    let webhook_signature = secrets
        .iter()
        .map(|secret| {
            let tag = standard_tag(secret, msg_id, &timestamp, body);
            format!("v1,{}", BASE64.encode(tag.as_ref()))
        })
        .collect::<Vec<_>>()
        .join(" ");
    Ok(SignedHeaders {
        altafinex_signature,
        webhook_id: msg_id.to_owned(),
        webhook_timestamp: timestamp,
        webhook_signature,
    })
}

fn standard_tag(secret: &Secret, msg_id: &str, timestamp: &str, body: &[u8]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(&secret.standard_key());
    ctx.update(msg_id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body);
    ctx.sign()
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.extend(char::from_digit(u32::from(nibble), 16));
        }
    }
    out
}

fn unhex(text: &str) -> Option<[u8; TAG_LEN]> {
    let bytes = text.as_bytes();
    if bytes.len() != TAG_LEN * 2 {
        return None;
    }
    let mut out = [0u8; TAG_LEN];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let [high, low] = pair else { return None };
        *slot = (nibble(*high)? << 4) | nibble(*low)?;
    }
    Some(out)
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Where [`verify`] reads headers from; implemented for `http::HeaderMap` and for
/// `(name, value)` slices. Names are matched case-insensitively.
pub trait Headers {
    /// The value of header `name` (lowercase), if present and valid UTF-8.
    fn header(&self, name: &str) -> Option<&str>;
}

impl Headers for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|value| value.to_str().ok())
    }
}

impl<N: AsRef<str>, V: AsRef<str>> Headers for [(N, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| n.as_ref().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }
}

impl<N: AsRef<str>, V: AsRef<str>> Headers for Vec<(N, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

/// Which scheme a delivery was verified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// Standard Webhooks: signature over `id.timestamp.body`, timestamp within tolerance.
    StandardWebhooks,
    /// `X-Altafinex-Signature` only: the body is authentic, but replays cannot be detected.
    Altafinex,
}

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// Neither `webhook-signature` nor `X-Altafinex-Signature` is present.
    MissingSignature,
    /// `webhook-signature` is present but this other Standard Webhooks header is missing.
    MissingHeader(&'static str),
    /// This header is present but malformed (too long, not a number, not an identifier).
    MalformedHeader(&'static str),
    /// The timestamp is older than now minus the tolerance (a replay, or a very late retry).
    TimestampTooOld,
    /// The timestamp is later than now plus the tolerance.
    TimestampInFuture,
    /// No signature matches the secret: a tampered body, or the wrong secret.
    NoMatchingSignature,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::MissingSignature => f.write_str("no webhook-signature or X-Altafinex-Signature header"),
            VerifyError::MissingHeader(name) => write!(f, "the {name} header is missing"),
            VerifyError::MalformedHeader(name) => write!(f, "the {name} header is malformed"),
            VerifyError::TimestampTooOld => f.write_str("the webhook timestamp is too old"),
            VerifyError::TimestampInFuture => f.write_str("the webhook timestamp is too far in the future"),
            VerifyError::NoMatchingSignature => {
                f.write_str("no signature matches: the body was changed or the secret is wrong")
            }
        }
    }
}

impl std::error::Error for VerifyError {}

/// Verifies a delivery: `raw_body` exactly as received, its headers, the endpoint secret, the
/// accepted clock difference, and the receiver's current Unix time in seconds.
///
/// With Standard Webhooks headers present, the timestamp must be within `tolerance` of `now`
/// and one `v1,` signature must match. Otherwise `X-Altafinex-Signature` must match the body
/// (no replay protection: see [`Scheme::Altafinex`]).
///
/// # Errors
/// A [`VerifyError`] naming the first rule the delivery breaks.
pub fn verify<H: Headers + ?Sized>(
    raw_body: &[u8],
    headers: &H,
    secret: &Secret,
    tolerance: Duration,
    now: i64,
) -> Result<Scheme, VerifyError> {
    if let Some(signatures) = headers.header(WEBHOOK_SIGNATURE) {
        verify_standard(raw_body, headers, signatures, secret, tolerance, now)?;
        return Ok(Scheme::StandardWebhooks);
    }
    let signature = headers.header(ALTAFINEX_SIGNATURE).ok_or(VerifyError::MissingSignature)?;
    let tag = unhex(signature.trim()).ok_or(VerifyError::MalformedHeader(ALTAFINEX_SIGNATURE))?;
    hmac::verify(&secret.altafinex_key(), raw_body, &tag).map_err(|_| VerifyError::NoMatchingSignature)?;
    Ok(Scheme::Altafinex)
}

fn verify_standard<H: Headers + ?Sized>(
    raw_body: &[u8],
    headers: &H,
    signatures: &str,
    secret: &Secret,
    tolerance: Duration,
    now: i64,
) -> Result<(), VerifyError> {
    if signatures.len() > MAX_SIGNATURE_HEADER_LEN {
        return Err(VerifyError::MalformedHeader(WEBHOOK_SIGNATURE));
    }
    let msg_id = headers.header(WEBHOOK_ID).ok_or(VerifyError::MissingHeader(WEBHOOK_ID))?;
    if !valid_id(msg_id) {
        return Err(VerifyError::MalformedHeader(WEBHOOK_ID));
    }
    let timestamp_text = headers.header(WEBHOOK_TIMESTAMP).ok_or(VerifyError::MissingHeader(WEBHOOK_TIMESTAMP))?;
    let timestamp = parse_timestamp(timestamp_text)?;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if timestamp < now.saturating_sub(tolerance) {
        return Err(VerifyError::TimestampTooOld);
    }
    if timestamp > now.saturating_add(tolerance) {
        return Err(VerifyError::TimestampInFuture);
    }
    let key = secret.standard_key();
    let mut message = Vec::with_capacity(msg_id.len() + timestamp_text.len() + 2 + raw_body.len());
    message.extend_from_slice(msg_id.as_bytes());
    message.push(b'.');
    message.extend_from_slice(timestamp_text.as_bytes());
    message.push(b'.');
    message.extend_from_slice(raw_body);
    let mut matched = false;
    for entry in signatures.split(' ').filter(|e| !e.is_empty()).take(MAX_SIGNATURES) {
        let Some(encoded) = entry.strip_prefix("v1,") else {
            continue; // other versions (v1a asymmetric) are not ours to check
        };
        let Ok(tag) = BASE64.decode(encoded) else {
            continue;
        };
        // Every entry is checked (no early exit) so timing does not tell which one matched.
        matched |= hmac::verify(&key, &message, &tag).is_ok();
    }
    if matched { Ok(()) } else { Err(VerifyError::NoMatchingSignature) }
}

fn parse_timestamp(text: &str) -> Result<i64, VerifyError> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::MalformedHeader(WEBHOOK_TIMESTAMP));
    }
    text.parse().map_err(|_| VerifyError::MalformedHeader(WEBHOOK_TIMESTAMP))
}

#[cfg(test)]
mod tests;
