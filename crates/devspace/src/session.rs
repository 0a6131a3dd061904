//! Session ids, cookies and CSRF tokens.
//!
//! - A session id is 32 random bytes (base64url), sent only in the `__Host-ds_session` cookie
//!   (`Secure; HttpOnly; SameSite=Strict; Path=/`; the `__Host-` prefix makes the browser
//!   refuse it without `Secure` or with a `Domain`). The database holds its SHA-256 only, so a
//!   read of the sessions table yields nothing usable.
//! - A CSRF token is HMAC-SHA256(session id, purpose) — a synchronizer token that needs no
//!   storage: only the holder of the cookie can compute it, and every state-changing form
//!   carries it in a hidden field. Forms shown before sign-in use a random pre-session cookie
//!   the same way, so the sign-in form cannot be posted from another site either.
//! - Timeouts: [`IDLE_SECONDS`] without a request, [`ABSOLUTE_SECONDS`] after sign-in,
//!   [`PENDING_SECONDS`] for a half-finished sign-in, [`REAUTH_SECONDS`] for the
//!   re-authentication that sensitive actions need.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use subtle::ConstantTimeEq;

use crate::secret::{RandomError, Secret, random_fill, sha256_hex};

/// The session cookie.
pub const SESSION_COOKIE: &str = "__Host-ds_session";
/// The pre-session cookie (CSRF for the forms shown before sign-in).
pub const PRE_COOKIE: &str = "__Host-ds_pre";
/// A session ends after this long without a request.
pub const IDLE_SECONDS: i64 = 30 * 60;
/// A session ends this long after sign-in, however active.
pub const ABSOLUTE_SECONDS: i64 = 12 * 60 * 60;
/// A half-finished sign-in (password accepted, second factor not yet) ends after this long.
pub const PENDING_SECONDS: i64 = 10 * 60;
/// A re-authentication covers sensitive actions for this long.
pub const REAUTH_SECONDS: i64 = 5 * 60;
/// The device cookie: a random id that tells a browser that signed in before from a new one
/// ("new device" alerts). Not a credential: it grants nothing, so it outlives sessions.
pub const DEVICE_COOKIE: &str = "__Host-ds_device";
/// The device cookie's lifetime (400 days, the most browsers keep a cookie).
pub const DEVICE_SECONDS: i64 = 400 * 86_400;

/// A random opaque id (session id, pre-session id, link token).
#[derive(Debug, Clone)]
pub struct OpaqueId(Secret);

impl OpaqueId {
    /// 32 fresh random bytes, base64url.
    ///
    /// # Errors
    /// [`RandomError`] if the system generator fails.
    pub fn generate() -> Result<Self, RandomError> {
        let mut raw = zeroize::Zeroizing::new([0u8; 32]);
        random_fill(raw.as_mut())?;
        Ok(Self(Secret::new(URL_SAFE_NO_PAD.encode(raw.as_ref()))))
    }

    /// Accepts a presented value only if it has the shape of a generated one.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = text.len() == 43 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(Secret::new(text.to_owned())))
    }

    /// The value (cookie, link). Never log it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// What the database stores.
    pub fn hash(&self) -> String {
        sha256_hex(self.0.expose().as_bytes())
    }

    /// The CSRF token of forms shown under this id.
    pub fn csrf_token(&self) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.0.expose().as_bytes());
        URL_SAFE_NO_PAD.encode(hmac::sign(&key, b"altafinex devspace csrf v1").as_ref())
    }

    /// What the database stores for this id as `user_id`'s device: keyed by the user, so one
    /// browser shared by two people is not linkable across their records.
    pub fn device_hash(&self, user_id: &str) -> String {
        sha256_hex(format!("altafinex devspace device v1\n{user_id}\n{}", self.0.expose()).as_bytes())
    }

    /// Whether `presented` is this id's CSRF token (constant time).
    pub fn csrf_ok(&self, presented: &str) -> bool {
        bool::from(self.csrf_token().as_bytes().ct_eq(presented.as_bytes()))
    }
}

/// The stage of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Password accepted; the second factor is still due.
    Password,
    /// Password just set from a link; TOTP enrolment is due.
    Enrol,
    /// Fully signed in.
    Full,
}

impl Stage {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Enrol => "enrol",
            Self::Full => "full",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "password" => Some(Self::Password),
            "enrol" => Some(Self::Enrol),
            "full" => Some(Self::Full),
            _ => None,
        }
    }
}

/// A stored session (the id itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the id, hex.
    pub hash: String,
    /// The user.
    pub user_id: String,
    /// Stage.
    pub stage: Stage,
    /// Sign-in time.
    pub created: i64,
    /// Last request.
    pub last_seen: i64,
    /// Last re-authentication (password + code), if any.
    pub reauth_at: Option<i64>,
    /// Client address at sign-in.
    pub ip: String,
}

impl SessionRecord {
    /// Whether the session is still valid at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        let limit = match self.stage {
            Stage::Full => ABSOLUTE_SECONDS,
            Stage::Password | Stage::Enrol => PENDING_SECONDS,
        };
        now - self.created < limit && now - self.last_seen < IDLE_SECONDS
    }

    /// Whether a re-authentication covers a sensitive action at `now`.
    pub fn recently_reauthenticated(&self, now: i64) -> bool {
        self.reauth_at.is_some_and(|t| now - t < REAUTH_SECONDS && now >= t)
    }
}

/// `Set-Cookie` value for `name=value` (max age in seconds).
pub fn set_cookie(name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("{name}={value}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}")).ok()
}

/// `Set-Cookie` value that deletes cookie `name`.
pub fn clear_cookie(name: &str) -> Option<HeaderValue> {
    set_cookie(name, "", 0)
}

/// The value of cookie `name` in the request, if any.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_hash_and_csrf() -> Result<(), RandomError> {
        let id = OpaqueId::generate()?;
        assert_eq!(id.expose().len(), 43);
        let again = OpaqueId::parse(id.expose()).map(|p| p.hash());
        assert_eq!(again, Some(id.hash()));
        assert_eq!(id.hash().len(), 64);
        assert!(id.csrf_ok(&id.csrf_token()));
        let other = OpaqueId::generate()?;
        assert!(!id.csrf_ok(&other.csrf_token()));
        assert!(!id.csrf_ok(""));
        assert!(OpaqueId::parse("short").is_none());
        assert!(OpaqueId::parse(&format!("{}=", "a".repeat(42))).is_none());
        assert!(!format!("{id:?}").contains(id.expose()));
        assert_eq!(id.device_hash("usr_a"), id.device_hash("usr_a"));
        assert_ne!(id.device_hash("usr_a"), id.device_hash("usr_b"));
        assert_ne!(id.device_hash("usr_a"), id.hash());
        Ok(())
    }

    #[test]
    fn cookies() {
        let v = set_cookie(SESSION_COOKIE, "abc", 60).and_then(|v| v.to_str().ok().map(str::to_owned));
        assert_eq!(v.as_deref(), Some("__Host-ds_session=abc; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=60"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; __Host-ds_session=xyz; b=2"));
        assert_eq!(read_cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(read_cookie(&h, PRE_COOKIE), None);
    }

    #[test]
    fn timeouts() {
        let s = SessionRecord {
            hash: String::new(),
            user_id: "u".into(),
            stage: Stage::Full,
            created: 1000,
            last_seen: 1000,
            reauth_at: Some(1000),
            ip: "127.0.0.1".into(),
        };
        assert!(s.is_live(1000 + IDLE_SECONDS - 1));
        assert!(!s.is_live(1000 + IDLE_SECONDS));
        let busy = SessionRecord { last_seen: 1000 + ABSOLUTE_SECONDS - 1, ..s.clone() };
        assert!(!busy.is_live(1000 + ABSOLUTE_SECONDS));
        let pending = SessionRecord { stage: Stage::Password, ..s.clone() };
        assert!(!pending.is_live(1000 + PENDING_SECONDS));
        assert!(s.recently_reauthenticated(1000 + REAUTH_SECONDS - 1));
        assert!(!s.recently_reauthenticated(1000 + REAUTH_SECONDS));
    }
}
