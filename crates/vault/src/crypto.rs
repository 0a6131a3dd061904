//! Cryptography: master-key derivations, envelope encryption (AES-256-GCM), keyed hashes.
//!
//! Layout of the key hierarchy:
//! - the **master key** (32 bytes, from `VAULT_MASTER_KEY` or a file; never stored by the vault)
//!   is expanded with HKDF-SHA256 into purpose-specific keys: the key-encryption key (KEK) that
//!   wraps data keys, the API-key hashing key, the idempotency body-hash key and a check value;
//! - each merchant and mode (test/live) has versioned **data keys** wrapped by the KEK, and one
//!   **fingerprint key** (HMAC-SHA256 of the PAN, PCI DSS 3.5.1.1), also wrapped by the KEK.
//!
//! Ciphertext format (version 1): `0x01 | key_version (u32 BE) | nonce (12) | ciphertext | tag (16)`.
//! The associated data binds every ciphertext to its token id, merchant, mode, key version and
//! field, so a ciphertext copied to another row does not decrypt.

use core::fmt;

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};
use zeroize::Zeroizing;

use crate::secret::{Key256, SecretBytes};

/// Current ciphertext format version byte.
pub const FORMAT_V1: u8 = 1;

/// Errors from cryptographic operations. Messages never contain key or plaintext material.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// The operating system random generator failed.
    Random,
    /// A ciphertext was malformed, tampered with, bound to another row, or the key is wrong.
    Decrypt,
    /// Encryption failed (should not happen with valid keys).
    Encrypt,
    /// The master key is not 32 bytes of base64, or does not match this data directory.
    BadMasterKey(&'static str),
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Random => f.write_str("the system random number generator failed"),
            Self::Decrypt => f.write_str("decryption failed (wrong key or tampered ciphertext)"),
            Self::Encrypt => f.write_str("encryption failed"),
            Self::BadMasterKey(why) => write!(f, "bad master key: {why}"),
        }
    }
}

impl std::error::Error for CryptoError {}

fn rng() -> &'static SystemRandom {
    static RNG: std::sync::OnceLock<SystemRandom> = std::sync::OnceLock::new();
    RNG.get_or_init(SystemRandom::new)
}

/// Fills `buf` with secure random bytes.
pub fn random_fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    rng().fill(buf).map_err(|_| CryptoError::Random)
}

/// A fresh random 256-bit key.
pub fn random_key() -> Result<Key256, CryptoError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    random_fill(&mut *bytes)?;
    Ok(Key256::from_bytes(*bytes))
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random base62 string of `len` characters (rejection sampling, no modulo bias).
pub fn random_base62(len: usize) -> Result<String, CryptoError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        random_fill(&mut buf)?;
        for &b in &buf {
            if b < 248 && out.len() < len {
                if let Some(&c) = BASE62.get(usize::from(b % 62)) {
                    out.push(char::from(c));
                }
            }
        }
    }
    Ok(out)
}

/// An id body of `len` base62 characters that sorts by creation time: `time_chars` characters
/// of `time` (big-endian base62, whose alphabet is in ASCII order; a time too large for them
/// keeps its low digits), then random ones. Rows keyed by such ids are appended at the end of
/// their index instead of landing on a random page of it, so a commit writes one page of the
/// index for all the rows it adds, not a page per row. The time it reveals is the object's
/// `created`, already public. Token ids use seconds in 6 characters, event ids milliseconds
/// in 8.
pub fn time_ordered_base62(time: u64, time_chars: u32, len: usize) -> Result<String, CryptoError> {
    let mut out = String::with_capacity(len.max(time_chars as usize));
    for i in (0..time_chars).rev() {
        let digit = 62u64.checked_pow(i).map_or(0, |p| (time / p) % 62);
        if let Some(&c) = BASE62.get(usize::try_from(digit).unwrap_or(0)) {
            out.push(char::from(c));
        }
    }
    out.push_str(&random_base62(len.saturating_sub(out.len()))?);
    Ok(out)
}

/// Milliseconds since the Unix epoch by the system clock (0 before it).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// URL-safe base64 without padding.
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Hex written with the letters `a`–`p` for the digits `0`–`f` (`0x4f` → `"ep"`): the form of
/// every hash the vault shows or puts in a URL (token references, content-addressed file
/// names, derived ids). Letters only, so none can ever contain a digit run that a card-number
/// check (the vault's own on URLs, a merchant's log scanner) reads as a card number.
pub fn letters(bytes: &[u8]) -> String {
    bytes.iter().flat_map(|b| [b >> 4, b & 0x0f]).map(|n| char::from(b'a' + n)).collect()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The master key and the keys derived from it.
///
/// The KEK and the check value always come from the master key. The **hashing keys** (API-key
/// hashes, idempotency hashes, audit references) are derived from it too on a fresh vault, but
/// they must survive a master-key rotation (every stored API-key hash depends on them), so a
/// rotation stores them wrapped under the new KEK (`meta.hashing_keys`) and
/// [`MasterKey::adopt_hashing_keys`] loads them from there.
pub struct MasterKey {
    kek: LessSafeKey,
    hashing: HashingKeys,
    check: [u8; 32],
}

/// The keyed-hash keys: raw (for re-wrapping on rotation) and ready to use.
struct HashingKeys {
    raw: Zeroizing<[u8; 96]>,
    api_key_hash: hmac::Key,
    idempotency_hash: hmac::Key,
    audit_ref: hmac::Key,
}

impl HashingKeys {
    fn from_raw(raw: Zeroizing<[u8; 96]>) -> Self {
        let part = |i: usize| hmac::Key::new(hmac::HMAC_SHA256, raw.get(i * 32..(i + 1) * 32).unwrap_or_default());
        Self { api_key_hash: part(0), idempotency_hash: part(1), audit_ref: part(2), raw }
    }
}

/// Associated data of the wrapped hashing keys.
const HASHING_KEYS_CONTEXT: &str = "vault:hashing-keys:v1";

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

struct HkdfLen(usize);
impl hkdf::KeyType for HkdfLen {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive(prk: &hkdf::Prk, label: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let info = [label];
    let okm = prk.expand(&info, HkdfLen(32)).map_err(|_| CryptoError::Encrypt)?;
    let mut out = Zeroizing::new([0u8; 32]);
    okm.fill(&mut *out).map_err(|_| CryptoError::Encrypt)?;
    Ok(out)
}

impl MasterKey {
    /// Builds the key hierarchy from 32 raw bytes.
    pub fn from_key(key: &Key256) -> Result<Self, CryptoError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"vault master key v1").extract(key.expose());
        let kek = derive(&prk, b"kek")?;
        let check = derive(&prk, b"check")?;
        let mut raw = Zeroizing::new([0u8; 96]);
        for (i, label) in [&b"api-key-hash"[..], b"idempotency-body-hash", b"audit-reference"].iter().enumerate() {
            let k = derive(&prk, label)?;
            if let Some(slot) = raw.get_mut(i * 32..(i + 1) * 32) {
                slot.copy_from_slice(&*k);
            }
        }
        let kek = UnboundKey::new(&AES_256_GCM, &*kek).map_err(|_| CryptoError::Encrypt)?;
        Ok(Self { kek: LessSafeKey::new(kek), hashing: HashingKeys::from_raw(raw), check: *check })
    }

    /// The hashing keys wrapped under `new`'s KEK (master-key rotation stores this).
    pub fn wrap_hashing_keys_for(&self, new: &MasterKey) -> Result<Vec<u8>, CryptoError> {
        seal_with(&new.kek, &*self.hashing.raw, HASHING_KEYS_CONTEXT.as_bytes())
    }

    /// Replaces the derived hashing keys with the ones stored at the last master-key rotation.
    ///
    /// # Errors
    /// [`CryptoError::Decrypt`] if `wrapped` was not wrapped under this master key.
    pub fn adopt_hashing_keys(&mut self, wrapped: &[u8]) -> Result<(), CryptoError> {
        let plain = open_with(&self.kek, wrapped, HASHING_KEYS_CONTEXT.as_bytes())?;
        let raw: [u8; 96] = plain.expose().try_into().map_err(|_| CryptoError::Decrypt)?;
        self.hashing = HashingKeys::from_raw(Zeroizing::new(raw));
        Ok(())
    }

    /// The key of [`MasterKey::seal_durable`]: derived from the hashing keys, which a
    /// master-key rotation carries over, so what it sealed stays readable after a rotation.
    fn durable_key(&self) -> Result<LessSafeKey, CryptoError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"vault durable seal v1").extract(&*self.hashing.raw);
        let key = derive(&prk, b"durable-seal")?;
        Ok(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &*key).map_err(|_| CryptoError::Encrypt)?))
    }

    /// Encrypts a small secret that is not card data (Dev Space TOTP secrets) with AES-256-GCM,
    /// `context` bound as associated data (e.g. the user id, so a row cannot be moved).
    ///
    /// # Errors
    /// [`CryptoError::Encrypt`] or a random-generator failure.
    pub fn seal_durable(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.durable_key()?, plaintext, context.as_bytes())
    }

    /// Opens what [`MasterKey::seal_durable`] sealed with the same `context`.
    ///
    /// # Errors
    /// [`CryptoError::Decrypt`] if it was sealed under another key or context, or altered.
    pub fn open_durable(&self, sealed: &[u8], context: &str) -> Result<SecretBytes, CryptoError> {
        open_with(&self.durable_key()?, sealed, context.as_bytes())
    }

    /// Parses base64 (standard or URL-safe, padding optional) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        for engine in engines {
            if let Ok(bytes) = engine.decode(text) {
                let bytes = Zeroizing::new(bytes);
                let arr: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| CryptoError::BadMasterKey("must decode to exactly 32 bytes"))?;
                return Self::from_key(&Key256::from_bytes(arr));
            }
        }
        Err(CryptoError::BadMasterKey("not valid base64"))
    }

    /// A value stored in the data directory to detect a wrong master key at start-up.
    /// It is an HKDF output, so it reveals nothing about the key.
    pub fn check_value(&self) -> String {
        hex(&self.check)
    }

    /// A stable, non-reversible reference to a token for the audit log: `tref_` + 16 letters
    /// `a`–`p` (the 64-bit prefix of a keyed hash, a nibble a letter). Audit readers (admin,
    /// read-only keys) cannot turn it back into a token id; an operator holding a token id can
    /// compute it (`vault audit list --token`).
    ///
    /// Letters, not hex: hex holds a 13–19 digit Luhn-valid run about once in 1,800 refs,
    /// which a merchant's card-data scanner (and ours) rightly reports as a card number.
    pub fn token_ref(&self, token_id: &str) -> String {
        let tag = hmac::sign(&self.hashing.audit_ref, token_id.as_bytes());
        format!("tref_{}", letters(tag.as_ref().get(..8).unwrap_or_default()))
    }

    /// The same reference as audit events written before 2026-11-27 hold it: `tref_` + 16 hex
    /// characters of the same hash. Only `vault audit list --token` uses it, to find them.
    pub fn legacy_token_ref(&self, token_id: &str) -> String {
        let tag = hmac::sign(&self.hashing.audit_ref, token_id.as_bytes());
        format!("tref_{}", hex(tag.as_ref().get(..8).unwrap_or_default()))
    }

    /// The stored form of an idempotency scope: the API key id and a keyed hash of the
    /// `Idempotency-Key` header (never the header itself: a card number sent there must not
    /// reach the disk).
    pub fn idempotency_scope(&self, key_id: &str, idempotency_key: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.hashing.idempotency_hash);
        ctx.update(b"scope\0");
        ctx.update(key_id.as_bytes());
        ctx.update(&[0]);
        ctx.update(idempotency_key.as_bytes());
        format!("{key_id}:{}", b64url(ctx.sign().as_ref()))
    }

    /// Keyed hash of an API key's plaintext (what the database stores).
    pub fn hash_api_key(&self, plaintext: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.hashing.api_key_hash, plaintext.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Keyed hash of an idempotent request's body (the body contains card data, so the hash
    /// must be keyed).
    pub fn hash_body(&self, scope: &str, body: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(&self.hashing.idempotency_hash);
        ctx.update(scope.as_bytes());
        ctx.update(&[0]);
        ctx.update(body);
        b64url(ctx.sign().as_ref())
    }

    /// Wraps a data or fingerprint key. `context` is bound as associated data.
    pub fn wrap(&self, key: &Key256, context: &str) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.kek, key.expose(), context.as_bytes())
    }

    /// Unwraps a key wrapped by [`MasterKey::wrap`] with the same `context`.
    pub fn unwrap_key(&self, wrapped: &[u8], context: &str) -> Result<Key256, CryptoError> {
        let plain = open_with(&self.kek, wrapped, context.as_bytes())?;
        let arr: [u8; 32] = plain.expose().try_into().map_err(|_| CryptoError::Decrypt)?;
        Ok(Key256::from_bytes(arr))
    }
}

/// Associated-data context of a wrapped key.
pub fn wrap_context(purpose: &str, merchant: &str, mode: &str, version: u32) -> String {
    format!("vault:wrap:v1|{purpose}|{merchant}|{mode}|{version}")
}

fn seal_with(key: &LessSafeKey, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    random_fill(&mut nonce)?;
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
    out.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body)
        .map_err(|_| CryptoError::Encrypt)?;
    out.extend_from_slice(&body);
    // `body` held plaintext before sealing in place; it now holds ciphertext only.
    Ok(out)
}

fn open_with(key: &LessSafeKey, sealed: &[u8], aad: &[u8]) -> Result<SecretBytes, CryptoError> {
    let (nonce, body) = sealed.split_at_checked(NONCE_LEN).ok_or(CryptoError::Decrypt)?;
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Decrypt)?;
    let mut buf = Zeroizing::new(body.to_vec());
    let len = key
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
        .map_err(|_| CryptoError::Decrypt)?
        .len();
    buf.truncate(len);
    Ok(SecretBytes::from(buf))
}

/// An unwrapped data key with its version.
pub struct DataKey {
    version: u32,
    key: LessSafeKey,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey(v{}, ***)", self.version)
    }
}

/// What a ciphertext is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// Token id.
    pub token_id: &'a str,
    /// Merchant id.
    pub merchant: &'a str,
    /// `test` or `live`.
    pub mode: &'a str,
    /// Which field (`card`, `cvc`).
    pub field: &'a str,
}

fn aad(binding: &Binding<'_>, version: u32) -> Vec<u8> {
    format!(
        "vault:tok:v{FORMAT_V1}|{}|{}|{}|{}|{}",
        binding.token_id, binding.merchant, binding.mode, version, binding.field
    )
    .into_bytes()
}

impl DataKey {
    /// Builds a data key (the raw key is dropped and zeroized by the caller's `Key256`).
    pub fn new(version: u32, key: &Key256) -> Result<Self, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| CryptoError::Encrypt)?;
        Ok(Self { version, key: LessSafeKey::new(unbound) })
    }

    /// The key version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Encrypts `plaintext` in the versioned format, bound to `binding`.
    pub fn seal(&self, plaintext: &[u8], binding: &Binding<'_>) -> Result<Vec<u8>, CryptoError> {
        let sealed = seal_with(&self.key, plaintext, &aad(binding, self.version))?;
        let mut out = Vec::with_capacity(5 + sealed.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts a ciphertext produced by [`DataKey::seal`] with this key version.
    pub fn open(&self, ciphertext: &[u8], binding: &Binding<'_>) -> Result<SecretBytes, CryptoError> {
        let version = ciphertext_version(ciphertext)?;
        if version != self.version {
            return Err(CryptoError::Decrypt);
        }
        let rest = ciphertext.get(5..).ok_or(CryptoError::Decrypt)?;
        open_with(&self.key, rest, &aad(binding, version))
    }
}

/// The data-key version a ciphertext was written with.
pub fn ciphertext_version(ciphertext: &[u8]) -> Result<u32, CryptoError> {
    match ciphertext {
        [FORMAT_V1, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(CryptoError::Decrypt),
    }
}

/// The keyed card fingerprint (HMAC-SHA256 of the PAN digits with the merchant's fingerprint key).
pub struct FingerprintKey(hmac::Key);

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintKey(***)")
    }
}

impl FingerprintKey {
    /// Builds the HMAC key.
    pub fn new(key: &Key256) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key.expose()))
    }

    /// `fp_` + 22 characters (first 128 bits of the HMAC, base64url).
    pub fn fingerprint(&self, pan_digits: &str) -> String {
        let tag = hmac::sign(&self.0, pan_digits.as_bytes());
        let bytes = tag.as_ref().get(..16).unwrap_or(tag.as_ref());
        format!("fp_{}", b64url(bytes))
    }
}

/// SHA-256 of `data`, standard base64 (CSP hashes).
pub fn sha256_b64(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// SHA-256 of `data`, hex with colons (certificate fingerprints).
pub fn sha256_fingerprint(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_ids_sort_by_their_time_and_stay_random_within_it() {
        let ms = 1_795_132_800_123;
        let a = time_ordered_base62(ms, 8, 24).unwrap();
        let b = time_ordered_base62(ms + 1, 8, 24).unwrap();
        let c = time_ordered_base62(ms + 62 * 62, 8, 24).unwrap();
        assert_eq!((a.len(), b.len()), (24, 24));
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(a.bytes().all(|x| x.is_ascii_alphanumeric()));
        // Same millisecond: same prefix, different ids.
        let a2 = time_ordered_base62(ms, 8, 24).unwrap();
        assert_eq!(a[..8], a2[..8]);
        assert_ne!(a, a2);
        // Still sorted across a change of the leading characters, and for u64::MAX.
        assert!(
            time_ordered_base62(62u64.pow(7) - 1, 8, 24).unwrap() < time_ordered_base62(62u64.pow(7), 8, 24).unwrap()
        );
        assert_eq!(time_ordered_base62(u64::MAX, 8, 8).unwrap().len(), 8);
        // Seconds in 6 characters (token ids): the low 6 digits, as token ids always had.
        assert_eq!(&time_ordered_base62(62 * 62 + 1, 6, 24).unwrap()[..6], "000101");
    }

    fn master() -> MasterKey {
        MasterKey::from_key(&Key256::from_bytes([9; 32])).unwrap()
    }

    #[test]
    fn letters_are_hex_with_a_to_p() {
        assert_eq!(letters(&[0x4f, 0x00, 0xff, 0x9a]), "epaappjk");
        assert_eq!(letters(&[]), "");
    }

    #[test]
    fn token_refs_are_letters_and_name_the_same_hash_as_the_legacy_hex() {
        let m = master();
        let mut seen = std::collections::HashSet::new();
        for i in 0..5000 {
            let id = format!("tok_{i:024}");
            let r = m.token_ref(&id);
            let body = r.strip_prefix("tref_").unwrap();
            assert_eq!(body.len(), 16, "{r}");
            // No digit at all, so no reference can ever read as a card number.
            assert!(body.bytes().all(|b| (b'a'..=b'p').contains(&b)), "{r}");
            assert_eq!(m.token_ref(&id), r, "stable");
            assert!(seen.insert(r.clone()), "distinct ids, distinct refs");
            // The legacy form is the same 64 bits in hex: `vault audit list --token` finds both.
            let legacy = m.legacy_token_ref(&id);
            let as_hex: String = body.bytes().map(|b| char::from_digit(u32::from(b - b'a'), 16).unwrap()).collect();
            assert_eq!(legacy, format!("tref_{as_hex}"));
        }
        assert_ne!(
            master().token_ref("tok_a"),
            MasterKey::from_key(&Key256::from_bytes([8; 32])).unwrap().token_ref("tok_a")
        );
    }

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let dk = DataKey::new(3, &random_key().unwrap()).unwrap();
        let b = Binding { token_id: "tok_1", merchant: "m1", mode: "test", field: "card" };
        let ct = dk.seal(b"hello", &b).unwrap();
        assert_eq!(ct[0], FORMAT_V1);
        assert_eq!(ciphertext_version(&ct).unwrap(), 3);
        assert_eq!(dk.open(&ct, &b).unwrap().expose(), b"hello");
        for other in [
            Binding { token_id: "tok_2", ..b },
            Binding { merchant: "m2", ..b },
            Binding { mode: "live", ..b },
            Binding { field: "cvc", ..b },
        ] {
            assert_eq!(dk.open(&ct, &other).unwrap_err(), CryptoError::Decrypt);
        }
        let mut tampered = ct.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(dk.open(&tampered, &b).is_err());
    }

    #[test]
    fn wrap_unwrap() {
        let m = master();
        let k = random_key().unwrap();
        let w = m.wrap(&k, "ctx").unwrap();
        assert_eq!(m.unwrap_key(&w, "ctx").unwrap().expose(), k.expose());
        assert!(m.unwrap_key(&w, "other").is_err());
    }

    #[test]
    fn master_key_parsing() {
        assert!(MasterKey::from_base64("AAAA").is_err());
        let good = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        let m = MasterKey::from_base64(&good).unwrap();
        assert_eq!(m.check_value(), MasterKey::from_base64(&good).unwrap().check_value());
        assert_ne!(m.check_value(), master().check_value());
    }

    #[test]
    fn fingerprint_is_keyed_and_stable() {
        let a = FingerprintKey::new(&Key256::from_bytes([1; 32]));
        let b = FingerprintKey::new(&Key256::from_bytes([2; 32]));
        assert_eq!(a.fingerprint("4242424242424242"), a.fingerprint("4242424242424242"));
        assert_ne!(a.fingerprint("4242424242424242"), b.fingerprint("4242424242424242"));
        assert!(a.fingerprint("4242424242424242").starts_with("fp_"));
    }

    #[test]
    fn base62_ids() {
        let s = random_base62(24).unwrap();
        assert_eq!(s.len(), 24);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
