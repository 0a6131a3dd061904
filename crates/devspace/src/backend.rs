//! What Dev Space needs from the vault: storage for its own records (users, sessions, links,
//! alerts) and the vault operations its pages show and perform. The vault implements
//! [`Backend`] over its store (`vault::devspace`), on SQLite and Postgres alike, so a session
//! made on one instance of a cluster is valid on every other.

use core::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::policy::Role;
use crate::secret::Secret;
use crate::session::SessionRecord;
use crate::totp::TotpSecret;

/// A boxed backend future.
pub type BackendFuture<T> = Pin<Box<dyn Future<Output = Result<T, BackendError>> + Send + 'static>>;

/// Backend failures. Only [`BackendError::Invalid`]'s text is shown to users.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendError {
    /// Storage cannot be reached right now (retry later).
    Unavailable,
    /// A record with this identity exists (e.g. the email is taken).
    Conflict,
    /// No such record for this merchant.
    NotFound,
    /// The request is invalid; the text says why, for the form (no secrets in it).
    Invalid(String),
    /// The change needs a fresh re-authentication (it widens an IP allowlist).
    NeedsReauth,
    /// Anything else (logged by the backend, shown as a generic error).
    Internal,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable => f.write_str("storage unavailable"),
            Self::Conflict => f.write_str("already exists"),
            Self::NotFound => f.write_str("not found"),
            Self::Invalid(m) => f.write_str(m),
            Self::NeedsReauth => f.write_str("re-authentication required"),
            Self::Internal => f.write_str("internal error"),
        }
    }
}

impl std::error::Error for BackendError {}

/// A Dev Space user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// `usr_…`.
    pub id: String,
    /// The merchant the user belongs to.
    pub merchant_id: String,
    /// Lower-case email address, unique.
    pub email: String,
    /// Role.
    pub role: Role,
    /// argon2id PHC string, once set.
    pub password_hash: Option<String>,
    /// TOTP secret encrypted by the backend ([`Backend::seal_totp`]), once generated.
    pub totp_sealed: Option<Vec<u8>>,
    /// Whether a code has confirmed the TOTP secret.
    pub totp_enrolled: bool,
    /// Last accepted TOTP step (replay protection).
    pub totp_last_step: i64,
    /// SHA-256 hashes of unused recovery codes.
    pub recovery_hashes: Vec<String>,
    /// Addresses the user signed in from (newest last, bounded).
    pub known_ips: Vec<String>,
    /// Failed sign-ins since the last success.
    pub failed_signins: u32,
    /// Creation time.
    pub created: i64,
    /// Optimistic-concurrency version: [`Backend::update_user`] writes only if the stored
    /// version still equals this one, and stores this plus one.
    pub version: i64,
}

/// What a one-time link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Set the first password (first owner, invitations).
    SetPassword,
}

impl LinkPurpose {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SetPassword => "set_password",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        (s == "set_password").then_some(Self::SetPassword)
    }
}

/// A one-time link (only the token's hash is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRecord {
    /// SHA-256 of the token, hex.
    pub hash: String,
    /// The user it is for.
    pub user_id: String,
    /// What it does.
    pub purpose: LinkPurpose,
    /// Creation time.
    pub created: i64,
    /// It stops working at this time.
    pub expires_at: i64,
}

/// A security alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    /// `alr_…`.
    pub id: String,
    /// Merchant.
    pub merchant_id: String,
    /// Time.
    pub ts: i64,
    /// Kind, e.g. `signin.new_ip`, `signin.failures`, `allowlist.widened`.
    pub kind: String,
    /// One sentence for people.
    pub message: String,
    /// Structured detail (user id, address…; never a secret).
    pub detail: serde_json::Value,
}

/// Who does something, from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// User id.
    pub user_id: String,
    /// Email.
    pub email: String,
    /// Merchant.
    pub merchant_id: String,
    /// Role.
    pub role: Role,
    /// Client address.
    pub ip: String,
}

/// An API key as Dev Space shows it (metadata only, never the secret or its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyView {
    /// `key_…`.
    pub id: String,
    /// `publishable` or `secret`.
    pub kind: String,
    /// `test` or `live`.
    pub mode: String,
    /// Secret keys' role.
    pub role: Option<String>,
    /// Display prefix (`sk_test_AbCd…`).
    pub prefix: String,
    /// Label.
    pub label: String,
    /// Creation time.
    pub created: i64,
    /// Last successful use, if known.
    pub last_used: Option<i64>,
    /// Address of the last use, if known.
    pub last_used_ip: Option<String>,
    /// `active`, `expiring`, `revoked` or `expired`.
    pub status: String,
    /// Allowed origins (publishable keys).
    pub origins: Vec<String>,
    /// IP allowlist (secret keys).
    pub ip_allowlist: Vec<String>,
}

/// A key to create, as the form gave it (the backend validates every field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKeyRequest {
    /// `publishable` or `secret`.
    pub kind: String,
    /// `test` or `live`.
    pub mode: String,
    /// Secret keys' role.
    pub role: Option<String>,
    /// Label.
    pub label: String,
    /// Allowed origins, one per entry.
    pub origins: Vec<String>,
    /// IP allowlist entries.
    pub ip_allowlist: Vec<String>,
}

/// Audit-log filters (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Event type.
    pub event: Option<String>,
    /// API key id.
    pub key_id: Option<String>,
    /// Client address.
    pub ip: Option<String>,
    /// Dev Space user (email) who acted.
    pub actor: Option<String>,
    /// From this time (inclusive).
    pub since: Option<i64>,
    /// Until this time (exclusive).
    pub until: Option<i64>,
    /// Older than this event id (paging).
    pub before_id: Option<i64>,
    /// At most this many rows.
    pub limit: u32,
}

/// One audit-log row as shown (no card data ever reaches the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Sequence number.
    pub id: i64,
    /// Time.
    pub ts: i64,
    /// Event type.
    pub event: String,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    /// `test` / `live`, when known.
    pub mode: Option<String>,
    /// API key id, when known.
    pub key_id: Option<String>,
    /// Client address.
    pub ip: Option<String>,
    /// Dev Space user (email), when a person acted.
    pub actor: Option<String>,
    /// Detail, as compact JSON.
    pub detail: String,
}

/// A payment as Dev Space shows it: amounts, status and the masked card (brand and last 4,
/// never more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentView {
    /// `pay_…`.
    pub id: String,
    /// `test` or `live`.
    pub mode: String,
    /// Status.
    pub status: String,
    /// Amount in the currency's minor unit.
    pub amount: i64,
    /// Lowercase ISO 4217 code.
    pub currency: String,
    /// Captured so far.
    pub amount_captured: i64,
    /// Refunded so far.
    pub amount_refunded: i64,
    /// `visa •••• 4242`, or empty.
    pub card: String,
    /// Creation time.
    pub created: i64,
}

/// A refund as Dev Space shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundView {
    /// `re_…`.
    pub id: String,
    /// The refunded payment.
    pub payment_id: String,
    /// Amount.
    pub amount: i64,
    /// Currency.
    pub currency: String,
    /// Status.
    pub status: String,
    /// Creation time.
    pub created: i64,
}

/// A webhook endpoint as Dev Space shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointView {
    /// `we_…`.
    pub id: String,
    /// `test` or `live`.
    pub mode: String,
    /// Target URL.
    pub url: String,
    /// Event types, or `*`.
    pub events: Vec<String>,
    /// `enabled` or `disabled`.
    pub status: String,
    /// Since when every delivery failed.
    pub failing_since: Option<i64>,
    /// Creation time.
    pub created: i64,
}

/// A token as Dev Space shows it: metadata only. The card number never leaves the vault's
/// encrypted column, and nothing here can be turned back into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenView {
    /// `tok_…`.
    pub id: String,
    /// `test` or `live`.
    pub mode: String,
    /// Brand id (`visa`, …).
    pub brand: String,
    /// Last four digits.
    pub last4: String,
    /// Expiry month (1–12).
    pub exp_month: u8,
    /// Expiry year (4 digits).
    pub exp_year: u16,
    /// Keyed fingerprint (the same card gives the same value within the merchant).
    pub fingerprint: String,
    /// Creation time.
    pub created: i64,
    /// The token stops working at this time.
    pub expires_at: i64,
}

/// What [`Backend::note_device`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSeen {
    /// The device was not known for this user (it is now).
    pub new: bool,
    /// The user had no known device before (the first sign-in recorded one: no alert).
    pub first: bool,
}

/// An event of the outbox with its delivery attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView {
    /// `evt_…`.
    pub id: String,
    /// Event type.
    pub event_type: String,
    /// Creation time.
    pub created: i64,
    /// Attempts, oldest first: (endpoint id, HTTP status or error class, time).
    pub attempts: Vec<(String, String, i64)>,
}

/// Devices remembered per user for "new device" alerts.
pub const KNOWN_DEVICES: u32 = 20;

/// Which sign-in limiter an attempt is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptBucket {
    /// Per account (the email address).
    Account,
    /// Per client address.
    Address,
}

/// The vault, as Dev Space sees it. Every method that takes a merchant id or an [`Actor`]
/// only ever touches that merchant's data.
pub trait Backend: Send + Sync + 'static {
    /// Unix time now.
    fn now(&self) -> i64;

    /// Inserts a user ([`BackendError::Conflict`] if the email exists) and, when given, a link.
    fn insert_user(&self, user: UserRecord, link: Option<LinkRecord>) -> BackendFuture<()>;
    /// A user by (lower-case) email.
    fn user_by_email(&self, email: &str) -> BackendFuture<Option<UserRecord>>;
    /// A user by id.
    fn user(&self, id: &str) -> BackendFuture<Option<UserRecord>>;
    /// Writes `user` if the stored version is still `user.version` (and bumps it): `false` if
    /// another request changed the user meanwhile (nothing written).
    fn update_user(&self, user: UserRecord) -> BackendFuture<bool>;
    /// A merchant's users.
    fn users(&self, merchant_id: &str) -> BackendFuture<Vec<UserRecord>>;
    /// Removes a user with their sessions and links; `false` if there was no such user.
    fn delete_user(&self, id: &str) -> BackendFuture<bool>;

    /// Inserts a session.
    fn insert_session(&self, session: SessionRecord) -> BackendFuture<()>;
    /// A session by id hash.
    fn session(&self, hash: &str) -> BackendFuture<Option<SessionRecord>>;
    /// Updates a session's last-seen time, stage and re-authentication time.
    fn update_session(&self, session: SessionRecord) -> BackendFuture<()>;
    /// Deletes one session.
    fn delete_session(&self, hash: &str) -> BackendFuture<()>;
    /// Deletes every session of a user (sign-out everywhere); returns how many.
    fn delete_user_sessions(&self, user_id: &str) -> BackendFuture<u64>;

    /// Inserts a one-time link.
    fn insert_link(&self, link: LinkRecord) -> BackendFuture<()>;
    /// The link with this hash, unexpired at `now`, without consuming it.
    fn link(&self, hash: &str, now: i64) -> BackendFuture<Option<LinkRecord>>;
    /// Deletes the link and returns it, if it existed unexpired at `now`: exactly one caller
    /// gets it.
    fn take_link(&self, hash: &str, now: i64) -> BackendFuture<Option<LinkRecord>>;

    /// Encrypts a TOTP secret for storage, bound to the user.
    ///
    /// # Errors
    /// [`BackendError::Internal`].
    fn seal_totp(&self, user_id: &str, secret: &TotpSecret) -> Result<Vec<u8>, BackendError>;
    /// Decrypts a stored TOTP secret.
    ///
    /// # Errors
    /// [`BackendError::Internal`] if it does not decrypt for this user.
    fn open_totp(&self, user_id: &str, sealed: &[u8]) -> Result<TotpSecret, BackendError>;

    /// Records that `user_id` completed a sign-in from the device whose cookie hashes to
    /// `device_hash` ([`crate::session::OpaqueId::device_hash`]); the most recent
    /// [`KNOWN_DEVICES`] devices per user are kept. Atomic across instances.
    fn note_device(&self, user_id: &str, device_hash: &str, now: i64) -> BackendFuture<DeviceSeen>;

    /// Takes one sign-in attempt from `key`'s bucket: `false` if the attempt must be refused.
    /// Cluster-wide where the vault shares its limiters.
    fn allow_attempt(&self, bucket: AttemptBucket, key: &str) -> BackendFuture<bool>;

    /// Records an event in the vault's audit log, with the person and address.
    fn audit(
        &self,
        actor: &Actor,
        event: &str,
        outcome: &str,
        key_id: Option<&str>,
        detail: serde_json::Value,
    ) -> BackendFuture<()>;
    /// Stores an alert and emits it as a `security.alert` event (webhooks).
    fn raise_alert(&self, alert: AlertRecord) -> BackendFuture<()>;
    /// A merchant's alerts, newest first.
    fn alerts(&self, merchant_id: &str, limit: u32) -> BackendFuture<Vec<AlertRecord>>;

    /// The merchant's API keys, newest first.
    fn list_keys(&self, merchant_id: &str) -> BackendFuture<Vec<KeyView>>;
    /// Creates a key; returns it and its secret (shown once).
    fn create_key(&self, actor: &Actor, request: NewKeyRequest) -> BackendFuture<(KeyView, Secret)>;
    /// Rotates a key: a new key with the same attributes (returned with its secret, shown
    /// once); the old one keeps working for `overlap_seconds`.
    fn rotate_key(&self, actor: &Actor, key_id: &str, overlap_seconds: i64) -> BackendFuture<(KeyView, Secret)>;
    /// Revokes a key now.
    fn revoke_key(&self, actor: &Actor, key_id: &str) -> BackendFuture<()>;
    /// Replaces a secret key's IP allowlist (validated, audited); returns whether the new list
    /// widens the old one. [`BackendError::NeedsReauth`] (nothing changed) if it widens and
    /// `reauthenticated` is false.
    fn set_ip_allowlist(
        &self,
        actor: &Actor,
        key_id: &str,
        entries: Vec<String>,
        reauthenticated: bool,
    ) -> BackendFuture<bool>;
    /// The merchant's audit log, newest first.
    fn audit_log(&self, merchant_id: &str, query: AuditQuery) -> BackendFuture<Vec<AuditRow>>;
    /// The merchant's payments and refunds in `mode` (`test` or `live`), newest first.
    fn payments(&self, merchant_id: &str, mode: &str, limit: u32)
    -> BackendFuture<(Vec<PaymentView>, Vec<RefundView>)>;
    /// The merchant's webhook endpoints of both modes.
    fn webhook_endpoints(&self, merchant_id: &str) -> BackendFuture<Vec<EndpointView>>;
    /// The merchant's newest events in `mode` with their delivery attempts.
    fn events(&self, merchant_id: &str, mode: &str, limit: u32) -> BackendFuture<Vec<EventView>>;
    /// Schedules a new delivery of an event to every endpoint that wants it; returns how many.
    fn resend_event(&self, actor: &Actor, mode: &str, event_id: &str) -> BackendFuture<u64>;
    /// Creates a webhook endpoint in `mode` for `events` (`*` for all); returns it and its
    /// signing secret (shown once). [`BackendError::Invalid`] says which field is wrong.
    fn create_webhook_endpoint(
        &self,
        actor: &Actor,
        mode: &str,
        url: &str,
        events: Vec<String>,
    ) -> BackendFuture<(EndpointView, Secret)>;
    /// Rotates a webhook endpoint's signing secret: the new secret (shown once) signs from
    /// now on; the old one keeps signing too for `overlap_seconds`. Audited.
    fn rotate_webhook_secret(
        &self,
        actor: &Actor,
        endpoint_id: &str,
        overlap_seconds: i64,
    ) -> BackendFuture<(EndpointView, Secret)>;
    /// Deletes a webhook endpoint (its pending deliveries are dropped). Audited.
    fn delete_webhook_endpoint(&self, actor: &Actor, endpoint_id: &str) -> BackendFuture<()>;
    /// The merchant's tokens in `mode`, newest first, older than token `before` when given
    /// (paging), at most `limit`.
    fn tokens(&self, merchant_id: &str, mode: &str, before: Option<&str>, limit: u32) -> BackendFuture<Vec<TokenView>>;
}
