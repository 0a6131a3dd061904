//! API keys: kinds, modes, roles and permissions.
//!
//! Plaintext format: `pk_test_…`, `pk_live_…`, `sk_test_…`, `sk_live_…` followed by 32 random
//! base62 characters (≈190 bits). The database stores only a keyed hash (HMAC-SHA256 with a
//! key derived from the master key) plus a short display prefix; the plaintext is shown once.

use core::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::clock::UnixSeconds;
use crate::crypto::{CryptoError, random_base62};
use crate::secret::SecretString;

/// Test or live data. Test and live keys, tokens, data keys and fingerprint keys never mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Test mode (`*_test_` keys).
    Test,
    /// Live mode (`*_live_` keys).
    Live,
}

impl Mode {
    /// `test` or `live`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Live => "live",
        }
    }

    /// Parses `test` / `live`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "test" => Some(Self::Test),
            "live" => Some(Self::Live),
            _ => None,
        }
    }

    /// Both modes.
    pub const ALL: [Mode; 2] = [Mode::Test, Mode::Live];
}

/// Publishable (browser, tokenization only) or secret (server side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// `pk_…`: may only create tokens, from its allowed origins.
    Publishable,
    /// `sk_…`: has a [`Role`] and an IP allowlist.
    Secret,
}

impl KeyKind {
    /// `publishable` or `secret`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publishable => "publishable",
            Self::Secret => "secret",
        }
    }

    /// Parses `publishable` / `secret`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "publishable" => Some(Self::Publishable),
            "secret" => Some(Self::Secret),
            _ => None,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Publishable => "pk",
            Self::Secret => "sk",
        }
    }
}

/// Role of a secret key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages keys, allowed origins and IP allowlists; reads the audit log.
    Admin,
    /// Reads token metadata, deletes tokens and detokenizes (from an allowlisted IP).
    Tokenization,
    /// Reads token metadata and the audit log.
    ReadOnly,
}

impl Role {
    /// `admin`, `tokenization`, `read_only`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Tokenization => "tokenization",
            Self::ReadOnly => "read_only",
        }
    }

    /// Parses the [`Role::as_str`] form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "tokenization" => Some(Self::Tokenization),
            "read_only" | "read-only" => Some(Self::ReadOnly),
            _ => None,
        }
    }
}

/// Something a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// `POST /v1/tokens` (publishable keys only).
    CreateToken,
    /// `GET /v1/tokens/{id}`.
    ReadToken,
    /// `DELETE /v1/tokens/{id}`.
    DeleteToken,
    /// `POST /v1/tokens/{id}/detokenize`.
    Detokenize,
    /// `/v1/keys…`.
    ManageKeys,
    /// `GET /v1/audit_events`.
    ReadAudit,
}

impl Permission {
    /// Stable name (audit log, error messages).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateToken => "tokens.create",
            Self::ReadToken => "tokens.read",
            Self::DeleteToken => "tokens.delete",
            Self::Detokenize => "tokens.detokenize",
            Self::ManageKeys => "keys.manage",
            Self::ReadAudit => "audit.read",
        }
    }
}

/// The permission matrix. Publishable keys can only create tokens; secret keys can do exactly
/// what their role lists.
pub fn allows(kind: KeyKind, role: Option<Role>, permission: Permission) -> bool {
    use Permission as P;
    match (kind, role) {
        (KeyKind::Publishable, _) => permission == P::CreateToken,
        (KeyKind::Secret, Some(Role::Admin)) => matches!(permission, P::ManageKeys | P::ReadAudit),
        (KeyKind::Secret, Some(Role::Tokenization)) => {
            matches!(permission, P::ReadToken | P::DeleteToken | P::Detokenize)
        }
        (KeyKind::Secret, Some(Role::ReadOnly)) => matches!(permission, P::ReadToken | P::ReadAudit),
        (KeyKind::Secret, None) => false,
    }
}

/// A stored API key (never the plaintext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public identifier, `key_…`.
    pub id: String,
    /// Owning merchant.
    pub merchant_id: String,
    /// Publishable or secret.
    pub kind: KeyKind,
    /// Test or live.
    pub mode: Mode,
    /// Role (secret keys only).
    pub role: Option<Role>,
    /// Keyed hash of the plaintext.
    pub hash: [u8; 32],
    /// Display prefix, e.g. `sk_test_AbC…` (first 4 random characters only).
    pub prefix: String,
    /// Free-form label.
    pub label: String,
    /// Creation time.
    pub created: UnixSeconds,
    /// When set, the key stops working at this time (rotation overlap).
    pub expires_at: Option<UnixSeconds>,
    /// When set, the key was revoked.
    pub revoked_at: Option<UnixSeconds>,
    /// Publishable keys: origins allowed to tokenize (CORS) and to frame the card page.
    pub allowed_origins: Vec<String>,
    /// Secret keys: client IPs allowed to use the key (empty: any IP, except detokenization,
    /// which always needs an explicit allowlist entry).
    pub ip_allowlist: Vec<IpNet>,
}

impl ApiKeyRecord {
    /// Whether the key can be used at `now`.
    pub fn is_active(&self, now: UnixSeconds) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| now < t)
    }

    /// Whether `ip` passes this key's allowlist. `require_entry` makes an empty list deny.
    pub fn ip_allowed(&self, ip: IpAddr, require_entry: bool) -> bool {
        if self.ip_allowlist.is_empty() {
            return !require_entry;
        }
        let ip = canonical_ip(ip);
        self.ip_allowlist.iter().any(|net| net.contains(&ip))
    }

    /// Whether `origin` is one of the allowed origins.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == origin)
    }
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Errors from parsing key attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// An allowed origin is not `scheme://host[:port]`.
    BadOrigin(String),
    /// An IP allowlist entry is not an IP address or CIDR block.
    BadCidr(String),
    /// Publishable keys have no role; secret keys need one.
    RoleMismatch,
    /// Random generation failed.
    Crypto(CryptoError),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadOrigin(o) => write!(f, "invalid origin {o:?}: expected scheme://host[:port]"),
            Self::BadCidr(c) => write!(f, "invalid IP or CIDR {c:?}"),
            Self::RoleMismatch => f.write_str("secret keys need a role; publishable keys have none"),
            Self::Crypto(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for KeyError {}

impl From<CryptoError> for KeyError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

/// Validates and normalises an origin (`https://shop.example`, `http://localhost:8080`).
pub fn parse_origin(origin: &str) -> Result<String, KeyError> {
    let bad = || KeyError::BadOrigin(origin.to_owned());
    let lower = origin.trim().to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")).ok_or_else(bad)?;
    if rest.is_empty()
        || rest.len() > 253
        || !rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    {
        return Err(bad());
    }
    Ok(lower)
}

/// Parses an IP address or CIDR block (`10.0.0.0/8`, `::1`, `203.0.113.7`).
pub fn parse_cidr(text: &str) -> Result<IpNet, KeyError> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>().map(IpNet::from).map_err(|_| KeyError::BadCidr(text.to_owned()))
}

/// A freshly generated key: the record to store and the plaintext to show once.
#[derive(Debug)]
pub struct NewKey {
    /// What the store keeps.
    pub record: ApiKeyRecord,
    /// The plaintext, shown once.
    pub plaintext: SecretString,
}

/// Attributes of a key to create.
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// Owning merchant.
    pub merchant_id: String,
    /// Kind.
    pub kind: KeyKind,
    /// Mode.
    pub mode: Mode,
    /// Role (secret only).
    pub role: Option<Role>,
    /// Label.
    pub label: String,
    /// Allowed origins (publishable).
    pub allowed_origins: Vec<String>,
    /// IP allowlist (secret).
    pub ip_allowlist: Vec<IpNet>,
}

impl KeySpec {
    /// The spec of a replacement for `old` (rotation): same merchant, kind, mode, role, label,
    /// origins and IP allowlist.
    pub fn replacing(old: &ApiKeyRecord) -> Self {
        Self {
            merchant_id: old.merchant_id.clone(),
            kind: old.kind,
            mode: old.mode,
            role: old.role,
            label: old.label.clone(),
            allowed_origins: old.allowed_origins.clone(),
            ip_allowlist: old.ip_allowlist.clone(),
        }
    }
}

/// Generates a key. `hash` is the keyed hash function (from the master key).
pub fn generate(spec: KeySpec, now: UnixSeconds, hash: impl Fn(&str) -> [u8; 32]) -> Result<NewKey, KeyError> {
    if (spec.kind == KeyKind::Secret) != spec.role.is_some() {
        return Err(KeyError::RoleMismatch);
    }
    let random = random_base62(32)?;
    let plaintext = SecretString::new(format!("{}_{}_{}", spec.kind.prefix(), spec.mode.as_str(), random));
    let prefix = format!("{}_{}_{}…", spec.kind.prefix(), spec.mode.as_str(), random.get(..4).unwrap_or_default());
    drop(SecretString::new(random));
    let record = ApiKeyRecord {
        id: format!("key_{}", random_base62(20)?),
        merchant_id: spec.merchant_id,
        kind: spec.kind,
        mode: spec.mode,
        role: spec.role,
        hash: hash(plaintext.expose()),
        prefix,
        label: spec.label,
        created: now,
        expires_at: None,
        revoked_at: None,
        allowed_origins: spec.allowed_origins,
        ip_allowlist: spec.ip_allowlist,
    };
    Ok(NewKey { record, plaintext })
}

/// Kind and mode from a presented key's prefix, if it looks like one of ours.
pub fn classify(presented: &str) -> Option<(KeyKind, Mode)> {
    let (kind, rest) = if let Some(r) = presented.strip_prefix("pk_") {
        (KeyKind::Publishable, r)
    } else if let Some(r) = presented.strip_prefix("sk_") {
        (KeyKind::Secret, r)
    } else {
        return None;
    };
    let (mode, random) = if let Some(r) = rest.strip_prefix("test_") {
        (Mode::Test, r)
    } else if let Some(r) = rest.strip_prefix("live_") {
        (Mode::Live, r)
    } else {
        return None;
    };
    (random.len() == 32 && random.chars().all(|c| c.is_ascii_alphanumeric())).then_some((kind, mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_matrix() {
        use Permission as P;
        let all = [P::CreateToken, P::ReadToken, P::DeleteToken, P::Detokenize, P::ManageKeys, P::ReadAudit];
        let table: [(KeyKind, Option<Role>, &[P]); 4] = [
            (KeyKind::Publishable, None, &[P::CreateToken]),
            (KeyKind::Secret, Some(Role::Admin), &[P::ManageKeys, P::ReadAudit]),
            (KeyKind::Secret, Some(Role::Tokenization), &[P::ReadToken, P::DeleteToken, P::Detokenize]),
            (KeyKind::Secret, Some(Role::ReadOnly), &[P::ReadToken, P::ReadAudit]),
        ];
        for (kind, role, allowed) in table {
            for p in all {
                assert_eq!(allows(kind, role, p), allowed.contains(&p), "{kind:?} {role:?} {p:?}");
            }
        }
    }

    #[test]
    fn generate_and_classify() {
        let spec = KeySpec {
            merchant_id: "m".into(),
            kind: KeyKind::Secret,
            mode: Mode::Live,
            role: Some(Role::ReadOnly),
            label: String::new(),
            allowed_origins: vec![],
            ip_allowlist: vec![],
        };
        let k = generate(spec, 0, |_| [0; 32]).unwrap();
        assert!(k.plaintext.expose().starts_with("sk_live_"));
        assert_eq!(classify(k.plaintext.expose()), Some((KeyKind::Secret, Mode::Live)));
        assert!(!k.record.prefix.contains(k.plaintext.expose()));
        assert_eq!(classify("sk_live_short"), None);
        assert_eq!(classify("xx_test_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), None);
    }

    #[test]
    fn origins_and_cidrs() {
        assert_eq!(parse_origin("HTTPS://Shop.example:8443").unwrap(), "https://shop.example:8443");
        assert!(parse_origin("shop.example").is_err());
        assert!(parse_origin("https://a/b").is_err());
        assert!(parse_cidr("10.1.2.3/8").unwrap().contains(&"10.9.9.9".parse::<IpAddr>().unwrap()));
        assert!(parse_cidr("::1").is_ok());
        assert!(parse_cidr("nope").is_err());
    }

    #[test]
    fn ip_allowlist() {
        let mut r = generate(
            KeySpec {
                merchant_id: "m".into(),
                kind: KeyKind::Secret,
                mode: Mode::Test,
                role: Some(Role::Tokenization),
                label: String::new(),
                allowed_origins: vec![],
                ip_allowlist: vec![],
            },
            0,
            |_| [0; 32],
        )
        .unwrap()
        .record;
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(r.ip_allowed(lo, false));
        assert!(!r.ip_allowed(lo, true));
        r.ip_allowlist = vec![parse_cidr("127.0.0.0/8").unwrap()];
        assert!(r.ip_allowed("::ffff:127.0.0.1".parse().unwrap(), true));
        assert!(!r.ip_allowed("10.0.0.1".parse().unwrap(), false));
    }
}
