//! Storage interface and its records.
//!
//! The server talks to storage only through [`Store`]. The default implementation is
//! [`sqlite::SqliteStore`] (embedded, one writer thread with group commit, WAL). A Postgres
//! implementation (N vault instances sharing one database) implements the same trait; the
//! semantics each method must keep are written on the method.

pub mod devspace;
pub mod fonts;
pub mod migrations;
pub mod payments;
pub mod postgres;
pub mod sqlite;

use core::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::clock::UnixSeconds;
use crate::keys::{ApiKeyRecord, Mode};
pub use ::devspace::backend::{AlertRecord, LinkRecord, UserRecord};
pub use ::devspace::session::SessionRecord;
pub use fonts::FontRecord;
pub use payments::{
    AttemptRecord, DeliveryJob, DeliveryNext, EventRecord, ListFilter, PaymentRecord, RefundRecord, RefundReservation,
    WebhookEndpointRecord, WebhookSecretRecord,
};

/// A boxed storage future.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// Storage errors. Messages never contain card data or key material.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (I/O, corruption, constraint). The text is the driver's message.
    Database(String),
    /// The data directory's schema is newer than this binary understands.
    SchemaTooNew(i64),
    /// The store has shut down.
    Closed,
    /// A unique constraint was violated (e.g. a merchant name that already exists).
    Conflict,
    /// A stored value could not be decoded.
    Corrupt(&'static str),
    /// The database cannot be reached right now (connection refused or lost, pool exhausted):
    /// answered `503` with `Retry-After`, never `500`.
    Unavailable(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Database(e) => write!(f, "database error: {e}"),
            Self::SchemaTooNew(v) => write!(f, "database schema version {v} is newer than this binary"),
            Self::Closed => f.write_str("the store is shut down"),
            Self::Conflict => f.write_str("a record with this identity already exists"),
            Self::Corrupt(what) => write!(f, "corrupt stored value: {what}"),
            Self::Unavailable(e) => write!(f, "database unavailable: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MerchantRecord {
    /// `mer_…`.
    pub id: String,
    /// Unique display name.
    pub name: String,
    /// Creation time.
    pub created: UnixSeconds,
}

/// What a wrapped key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Encrypts card data (versioned, rotatable).
    Data,
    /// Computes card fingerprints (never rotated: fingerprints must stay stable).
    Fingerprint,
}

impl KeyPurpose {
    /// `data` / `fingerprint`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Fingerprint => "fingerprint",
        }
    }
}

/// A key wrapped by the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKeyRecord {
    /// Merchant.
    pub merchant_id: String,
    /// Mode.
    pub mode: Mode,
    /// Purpose.
    pub purpose: KeyPurpose,
    /// Version (data keys: 1, 2, …; the highest is current).
    pub version: u32,
    /// AES-256-GCM wrapped key (nonce ‖ ciphertext ‖ tag).
    pub wrapped: Vec<u8>,
    /// Creation time.
    pub created: UnixSeconds,
}

/// Token metadata plus ciphertexts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// `tok_…`.
    pub id: String,
    /// Merchant.
    pub merchant_id: String,
    /// Mode.
    pub mode: Mode,
    /// Brand id (`visa`, …).
    pub brand: String,
    /// Last four digits.
    pub last4: String,
    /// Expiry month.
    pub exp_month: u8,
    /// Expiry year (4 digits).
    pub exp_year: u16,
    /// Keyed fingerprint.
    pub fingerprint: String,
    /// Data-key version of both ciphertexts.
    pub key_version: u32,
    /// Encrypted card payload (number, expiry, name).
    pub card_ct: Vec<u8>,
    /// Encrypted CVC, until it is returned once or purged.
    pub cvc_ct: Option<Vec<u8>>,
    /// When the CVC must be purged even if never used.
    pub cvc_expires_at: Option<UnixSeconds>,
    /// Creation time.
    pub created: UnixSeconds,
    /// Expiry time (created + 24 h).
    pub expires_at: UnixSeconds,
}

/// A stored idempotent response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// API key id + idempotency key.
    pub scope: String,
    /// Keyed hash of the request body.
    pub body_hash: String,
    /// HTTP status of the stored response.
    pub status: u16,
    /// JSON body of the stored response (no card data beyond last4/brand).
    pub response: String,
    /// Creation time (kept 24 h).
    pub created: UnixSeconds,
}

/// Result of [`Store::claim_idempotency`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This caller owns the scope now: process the request, then store the response with
    /// [`Store::create_token`] (or [`Store::release_idempotency`] if it fails).
    Claimed,
    /// Another request with this scope is being processed (on any instance): answer 409.
    InFlight,
    /// A response is stored: replay it (or 422 if the body differs).
    Done(IdempotencyRecord),
}

/// Result of [`Store::begin_payment`].
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentStart {
    /// The scope is claimed and the payment recorded (`processing`). `cvc`: this caller
    /// destroyed the token's CVC and so may send it to the processor, once.
    Started {
        /// Whether the CVC was destroyed by this call.
        cvc: bool,
    },
    /// The scope is claimed, but an earlier attempt with it recorded this payment (it stopped
    /// before answering): resume it, never authorise again. The CVC was left alone.
    Recorded(PaymentRecord),
    /// The scope is not claimed ([`Claim::InFlight`] or [`Claim::Done`]); nothing was written.
    NotClaimed(Claim),
}

/// Result of [`Store::create_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The token (and its idempotency record, if any) was committed durably.
    Created,
    /// Another request already stored a response under the same idempotency scope.
    IdempotencyExists(IdempotencyRecord),
}

/// An audit event. `detail` never holds PAN, CVC or key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// Sequence number (assigned by the store; 0 before insertion).
    pub id: i64,
    /// Time.
    pub ts: UnixSeconds,
    /// Event type, e.g. `token.created`, `auth.failed`, `key.revoked`, `suspicious_activity`.
    pub event: String,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    /// Merchant, when known.
    pub merchant_id: Option<String>,
    /// Mode, when known.
    pub mode: Option<Mode>,
    /// API key id (never the key), when known.
    pub key_id: Option<String>,
    /// Client IP.
    pub ip: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Extra structured detail.
    pub detail: serde_json::Value,
}

/// Filter for [`Store::list_audit`].
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this merchant's events (and none of other merchants').
    pub merchant_id: Option<String>,
    /// Only this event type.
    pub event: Option<String>,
    /// Only events with id < this (pagination, newest first).
    pub before_id: Option<i64>,
    /// Maximum number of events.
    pub limit: u32,
    /// Only this API key's events.
    pub key_id: Option<String>,
    /// Only events from this client address.
    pub ip: Option<String>,
    /// Only events a Dev Space user made (`detail.actor`, their email).
    pub actor: Option<String>,
    /// Only events at or after this time.
    pub since: Option<UnixSeconds>,
    /// Only events before this time.
    pub until: Option<UnixSeconds>,
}

/// Counts from [`Store::purge_expired`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PurgeCounts {
    /// Tokens past `expires_at` deleted.
    pub tokens: u64,
    /// CVCs past `cvc_expires_at` destroyed (only [`Store::purge_cvcs`] destroys them).
    pub cvcs: u64,
    /// Idempotency records older than the retention deleted.
    pub idempotency: u64,
}

/// A ciphertext pair to re-encrypt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CipherRow {
    /// Store-internal position for resuming a scan.
    pub cursor: i64,
    /// Token id.
    pub id: String,
    /// Version the ciphertexts are under now.
    pub key_version: u32,
    /// Card ciphertext.
    pub card_ct: Vec<u8>,
    /// CVC ciphertext.
    pub cvc_ct: Option<Vec<u8>>,
}

/// The storage interface.
pub trait Store: Send + Sync + 'static {
    /// Finishes pending writes and releases the database (the SQLite writer thread commits its
    /// queue and truncates the WAL). Further calls fail with [`StoreError::Closed`].
    fn close(&self) {}

    /// A stream of "keys changed" signals from other processes sharing this database (API keys,
    /// wrapped keys), so caches can reload at once rather than at the next periodic refresh.
    /// `None` for engines with a single process (SQLite: the periodic reload covers the CLI).
    fn key_changes(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        None
    }

    /// Reads a metadata value.
    fn get_meta(&self, key: &str) -> StoreFuture<Option<String>>;
    /// Writes a metadata value.
    fn set_meta(&self, key: &str, value: &str) -> StoreFuture<()>;

    /// Creates a merchant. [`StoreError::Conflict`] if the name exists.
    fn create_merchant(&self, merchant: MerchantRecord) -> StoreFuture<()>;
    /// All merchants.
    fn list_merchants(&self) -> StoreFuture<Vec<MerchantRecord>>;

    /// Stores a wrapped key. [`StoreError::Conflict`] if that version exists.
    fn insert_wrapped_key(&self, key: WrappedKeyRecord) -> StoreFuture<()>;
    /// Replaces the wrapping of existing keys (same merchant, mode, purpose, version) and sets
    /// metadata values, all in one transaction: a master-key rotation either happens completely
    /// or not at all.
    fn rewrap_keys(&self, keys: Vec<WrappedKeyRecord>, meta: Vec<(String, String)>) -> StoreFuture<()>;
    /// Deletes a data-key version if it is not the current one and no token uses it (checked
    /// in the same transaction). Returns whether it was deleted.
    fn retire_data_key(&self, merchant_id: &str, mode: Mode, version: u32) -> StoreFuture<bool>;
    /// All wrapped keys (a handful per merchant).
    fn list_wrapped_keys(&self) -> StoreFuture<Vec<WrappedKeyRecord>>;

    /// Stores an API key and its audit event atomically.
    fn insert_api_key(&self, key: ApiKeyRecord, audit: AuditEvent) -> StoreFuture<()>;
    /// Replaces an API key's mutable fields (expiry, revocation, origins, allowlist) and
    /// records the audit event atomically.
    fn update_api_key(&self, key: ApiKeyRecord, audit: AuditEvent) -> StoreFuture<()>;
    /// All API keys.
    fn list_api_keys(&self) -> StoreFuture<Vec<ApiKeyRecord>>;

    /// Inserts a token, its idempotency record (if any) and its audit event in one durable
    /// transaction. The future resolves only after the commit is durable. The idempotency record
    /// completes a pending claim (or is inserted); if the scope already has a completed record,
    /// nothing is written and that record is returned.
    fn create_token(
        &self,
        token: TokenRecord,
        idempotency: Option<IdempotencyRecord>,
        audit: AuditEvent,
    ) -> StoreFuture<CreateOutcome>;
    /// A live (unexpired) token of this merchant and mode.
    fn get_token(&self, id: &str, merchant_id: &str, mode: Mode, now: UnixSeconds) -> StoreFuture<Option<TokenRecord>>;
    /// Deletes a token; `false` if there was no live token.
    fn delete_token(&self, id: &str, merchant_id: &str, mode: Mode, now: UnixSeconds) -> StoreFuture<bool>;
    /// Reads a live token for detokenization, with its CVC ciphertext unless the CVC is past
    /// its purge time. Destroys nothing: the caller decrypts and builds its answer first, then
    /// calls [`Store::destroy_cvc`], so a failure in between never loses the CVC.
    fn get_for_detokenize(
        &self,
        id: &str,
        merchant_id: &str,
        mode: Mode,
        now: UnixSeconds,
    ) -> StoreFuture<Option<TokenRecord>>;
    /// Destroys a token's CVC ciphertext. Returns `true` to exactly one caller per CVC (the one
    /// that may hand it out, PCI DSS 3.3.1); `false` if it was already gone.
    fn destroy_cvc(&self, id: &str) -> StoreFuture<bool>;
    /// Destroys CVCs past their purge time and makes sure no destroyed CVC ciphertext (purged
    /// or handed out) survives in the database files, WAL included. Returns how many were
    /// purged now.
    fn purge_cvcs(&self, now: UnixSeconds) -> StoreFuture<u64>;
    /// Deletes expired tokens and idempotency records created before `idempotency_before`
    /// (CVCs: [`Store::purge_cvcs`], on its own schedule).
    fn purge_expired(&self, now: UnixSeconds, idempotency_before: UnixSeconds) -> StoreFuture<PurgeCounts>;

    /// Up to `limit` rows of this merchant/mode whose key version is below `current`, after
    /// `cursor` (0 to start).
    fn rows_to_reencrypt(
        &self,
        merchant_id: &str,
        mode: Mode,
        current: u32,
        cursor: i64,
        limit: u32,
    ) -> StoreFuture<Vec<CipherRow>>;
    /// Replaces ciphertexts, each only if the row still has the old version (rows deleted or
    /// changed meanwhile are skipped). Returns how many rows were updated.
    fn replace_ciphertexts(&self, rows: Vec<(CipherRow, u32)>) -> StoreFuture<u64>;
    /// Number of live rows of this merchant/mode below `current`.
    fn count_below_version(&self, merchant_id: &str, mode: Mode, current: u32) -> StoreFuture<u64>;

    /// The stored (completed) response for an idempotency scope.
    fn get_idempotency(&self, scope: &str) -> StoreFuture<Option<IdempotencyRecord>>;
    /// Claims an idempotency scope before processing, through the database so that it holds
    /// across instances: a pending record is written (`status` 0) unless one exists. A pending
    /// record older than `lease_before` (its instance died mid-request) is taken over.
    fn claim_idempotency(
        &self,
        scope: &str,
        body_hash: &str,
        now: UnixSeconds,
        lease_before: UnixSeconds,
    ) -> StoreFuture<Claim>;
    /// Drops this scope's pending claim (the request failed before a response was stored).
    fn release_idempotency(&self, scope: &str) -> StoreFuture<()>;

    /// Takes or renews the lease of background job `job` for `holder` until `until`: `true` if
    /// `holder` holds it now (nobody held it, it expired at `now`, or `holder` already held it).
    /// Several instances run the same background jobs; the lease makes one of them do each job
    /// at a time, and a dead holder's lease simply expires.
    fn try_lease(&self, job: &str, holder: &str, now: UnixSeconds, until: UnixSeconds) -> StoreFuture<bool>;

    /// Appends audit events (batched with other writes; the future resolves once durable).
    fn append_audit(&self, events: Vec<AuditEvent>) -> StoreFuture<()>;
    /// Audit events, newest first.
    fn list_audit(&self, filter: AuditFilter) -> StoreFuture<Vec<AuditEvent>>;
    /// Inserts a payment and, when given, its event (with a pending delivery to every enabled
    /// endpoint of the merchant and mode that wants the event type) in one transaction.
    /// [`StoreError::Conflict`] if the id exists (a retry of a request whose first attempt
    /// inserted it).
    fn insert_payment(&self, payment: PaymentRecord, event: Option<EventRecord>) -> StoreFuture<()>;
    /// Moves a payment from status `from` to `payment`'s status, amounts and data (never
    /// `amount_refunded`), with its event, the request's idempotency record and its audit
    /// event, in one transaction. `false` (nothing written) if the payment is no longer in
    /// status `from`: of concurrent transitions exactly one wins.
    fn update_payment(
        &self,
        payment: PaymentRecord,
        from: &str,
        event: Option<EventRecord>,
        idempotency: Option<IdempotencyRecord>,
        audit: Option<AuditEvent>,
    ) -> StoreFuture<bool>;
    /// Starts a payment in one transaction: claims its idempotency scope (as
    /// [`Store::claim_idempotency`]); if claimed, records `payment` unless a payment with its id
    /// exists, and, when it was recorded now and `cvc_of` names a token, destroys that token's
    /// CVC (as [`Store::destroy_cvc`]: `true` to exactly one caller). Durable before it resolves,
    /// so the processor is never asked before the payment can be found by the reconciler.
    fn begin_payment(
        &self,
        scope: &str,
        body_hash: &str,
        lease_before: UnixSeconds,
        payment: PaymentRecord,
        cvc_of: Option<String>,
    ) -> StoreFuture<PaymentStart>;
    /// A payment of this merchant and mode.
    fn get_payment(&self, id: &str, merchant_id: &str, mode: Mode) -> StoreFuture<Option<PaymentRecord>>;
    /// Payments, newest first (`kind` filters by status).
    fn list_payments(&self, filter: ListFilter) -> StoreFuture<Vec<PaymentRecord>>;

    /// Reserves a refund: adds its amount to the payment's `amount_refunded` only if the payment
    /// is this merchant's, `succeeded`, and the sum stays within `amount_captured` (one
    /// conditional update, so concurrent refunds never exceed), and inserts the refund row, in
    /// one transaction.
    fn reserve_refund(&self, refund: RefundRecord) -> StoreFuture<RefundReservation>;
    /// Settles a reserved refund (`processing` → `refund.status`) with its event and idempotency
    /// record; a `failed` refund gives its amount back to the payment. `false` if it was already
    /// settled.
    fn finish_refund(
        &self,
        refund: RefundRecord,
        event: Option<EventRecord>,
        idempotency: Option<IdempotencyRecord>,
    ) -> StoreFuture<bool>;
    /// A refund of this merchant and mode.
    fn get_refund(&self, id: &str, merchant_id: &str, mode: Mode) -> StoreFuture<Option<RefundRecord>>;
    /// Refunds, newest first (`kind` filters by payment id).
    fn list_refunds(&self, filter: ListFilter) -> StoreFuture<Vec<RefundRecord>>;

    /// Inserts an event that goes with no other change (e.g. `webhook_endpoint.disabled` is
    /// written by [`Store::disable_webhook_endpoint`]; this is for reserved types), with its
    /// deliveries.
    fn insert_event(&self, event: EventRecord) -> StoreFuture<()>;
    /// An event of this merchant and mode.
    fn get_event(&self, id: &str, merchant_id: &str, mode: Mode) -> StoreFuture<Option<EventRecord>>;
    /// Events, newest first (`kind` filters by type).
    fn list_events(&self, filter: ListFilter) -> StoreFuture<Vec<EventRecord>>;
    /// Schedules a new delivery of an event now, to one endpoint or to every enabled endpoint
    /// that wants its type. Returns how many deliveries were scheduled.
    fn redeliver_event(
        &self,
        id: &str,
        merchant_id: &str,
        mode: Mode,
        endpoint: Option<String>,
        now: UnixSeconds,
    ) -> StoreFuture<u64>;

    /// Inserts an endpoint, its first secret and the audit event in one transaction.
    fn insert_webhook_endpoint(
        &self,
        endpoint: WebhookEndpointRecord,
        secret: WebhookSecretRecord,
        audit: AuditEvent,
    ) -> StoreFuture<()>;
    /// An endpoint of this merchant and mode (not deleted).
    fn get_webhook_endpoint(
        &self,
        id: &str,
        merchant_id: &str,
        mode: Mode,
    ) -> StoreFuture<Option<WebhookEndpointRecord>>;
    /// The merchant's endpoints in this mode (not deleted), oldest first.
    fn list_webhook_endpoints(&self, merchant_id: &str, mode: Mode) -> StoreFuture<Vec<WebhookEndpointRecord>>;
    /// Marks an endpoint deleted (its attempts stay readable; nothing more is sent) with the
    /// audit event. `false` if there was no such endpoint.
    fn delete_webhook_endpoint(&self, id: &str, merchant_id: &str, mode: Mode, audit: AuditEvent) -> StoreFuture<bool>;
    /// Adds a new current secret; every secret still valid expires at `old_expires_at` (the
    /// overlap), unless it expires sooner. With the audit event, in one transaction.
    fn rotate_webhook_secret(
        &self,
        secret: WebhookSecretRecord,
        old_expires_at: UnixSeconds,
        audit: AuditEvent,
    ) -> StoreFuture<()>;
    /// The endpoint's secrets that still sign at `now`, newest first.
    fn webhook_secrets(&self, endpoint_id: &str, now: UnixSeconds) -> StoreFuture<Vec<WebhookSecretRecord>>;
    /// Disables an enabled endpoint with its `webhook_endpoint.disabled` event and audit
    /// event, in one transaction. `false` if it was not enabled.
    fn disable_webhook_endpoint(&self, id: &str, event: EventRecord, audit: AuditEvent) -> StoreFuture<bool>;

    /// Claims up to `limit` deliveries due at `now` of enabled endpoints for `holder` until
    /// `lease_until`. A delivery whose lease expired (its holder died) is due again. On
    /// Postgres concurrent claimers skip each other's rows (`FOR UPDATE SKIP LOCKED`): a
    /// delivery is never held by two workers at once.
    fn claim_deliveries(
        &self,
        holder: &str,
        now: UnixSeconds,
        lease_until: UnixSeconds,
        limit: u32,
    ) -> StoreFuture<Vec<DeliveryJob>>;
    /// Records an attempt and what follows, only if `holder` still holds the delivery's lease,
    /// and tracks the endpoint's failure streak. `None` if the lease was lost (nothing
    /// written); otherwise the endpoint's `failing_since` after this attempt.
    fn record_attempt(
        &self,
        attempt: AttemptRecord,
        holder: &str,
        next: DeliveryNext,
    ) -> StoreFuture<Option<Option<UnixSeconds>>> {
        let batch = self.record_attempts(vec![(attempt, next)], holder);
        Box::pin(async move { Ok(batch.await?.pop().flatten()) })
    }
    /// [`Store::record_attempt`] for many attempts in one transaction (one commit for the
    /// batch, each attempt checked against its own lease); the answers in the same order.
    fn record_attempts(
        &self,
        attempts: Vec<(AttemptRecord, DeliveryNext)>,
        holder: &str,
    ) -> StoreFuture<Vec<Option<Option<UnixSeconds>>>>;
    /// Every attempt to deliver an event, oldest first.
    fn list_attempts(&self, event_id: &str) -> StoreFuture<Vec<AttemptRecord>>;

    /// The last successful use of each of the merchant's keys that has one: `(key id, time,
    /// client address)`, from the audit log (key management and Dev Space events excluded).
    /// One index walk per key, newest first, stopping at the first use (`audit_merchant_key`),
    /// so its cost does not grow with the audit log.
    fn key_last_uses(&self, merchant_id: &str) -> StoreFuture<Vec<(String, UnixSeconds, Option<String>)>>;

    /// Dev Space: inserts a user and, when given, its one-time link, in one transaction.
    /// [`StoreError::Conflict`] if the email exists.
    fn devspace_insert_user(&self, user: UserRecord, link: Option<LinkRecord>) -> StoreFuture<()>;
    /// Dev Space: a user by id (`by_email` false) or by lower-case email.
    fn devspace_user(&self, key: &str, by_email: bool) -> StoreFuture<Option<UserRecord>>;
    /// Dev Space: writes the user only if its stored version is `user.version`, storing
    /// `version + 1`. `false` (nothing written) if it changed meanwhile.
    fn devspace_update_user(&self, user: UserRecord) -> StoreFuture<bool>;
    /// Dev Space: deletes a user with their sessions and links, in one transaction; `false` if
    /// there was no such user.
    fn devspace_delete_user(&self, id: &str) -> StoreFuture<bool>;
    /// Dev Space: a merchant's users, oldest first.
    fn devspace_users(&self, merchant_id: &str) -> StoreFuture<Vec<UserRecord>>;
    /// Dev Space: inserts or replaces a session (by hash).
    fn devspace_put_session(&self, session: SessionRecord) -> StoreFuture<()>;
    /// Dev Space: a session by id hash.
    fn devspace_session(&self, hash: &str) -> StoreFuture<Option<SessionRecord>>;
    /// Dev Space: deletes one session (`hash`) or every session of a user (`user_id`);
    /// returns how many.
    fn devspace_delete_sessions(&self, hash: Option<String>, user_id: Option<String>) -> StoreFuture<u64>;
    /// Dev Space: deletes sessions idle since before `idle_before` or created before
    /// `created_before`, and links and counters expired at `now`.
    fn devspace_purge(
        &self,
        idle_before: UnixSeconds,
        created_before: UnixSeconds,
        now: UnixSeconds,
    ) -> StoreFuture<u64>;
    /// Dev Space: inserts a one-time link.
    fn devspace_insert_link(&self, link: LinkRecord) -> StoreFuture<()>;
    /// Dev Space: the link with this hash unexpired at `now`; with `take`, it is deleted in the
    /// same statement, so exactly one caller gets it.
    fn devspace_link(&self, hash: &str, now: UnixSeconds, take: bool) -> StoreFuture<Option<LinkRecord>>;
    /// Dev Space: stores an alert and, when given, its `security.alert` events (with their
    /// deliveries), in one transaction.
    fn devspace_insert_alert(&self, alert: AlertRecord, events: Vec<EventRecord>) -> StoreFuture<()>;
    /// Dev Space: a merchant's alerts, newest first.
    fn devspace_alerts(&self, merchant_id: &str, limit: u32) -> StoreFuture<Vec<AlertRecord>>;
    /// Dev Space: records a sign-in of `user_id` from the device `hash` at `now`, keeping the
    /// user's `keep` most recently seen devices; returns whether the device is new for the user
    /// and whether the user had no device before. One statement decides "new", so two
    /// instances cannot both call the same device new.
    fn devspace_note_device(&self, user_id: &str, hash: &str, now: UnixSeconds, keep: u32)
    -> StoreFuture<(bool, bool)>;
    /// Dev Space email outbox: claims up to `limit` alerts whose email is pending and due at
    /// `now` (created at or after `oldest`, fewer than `max_attempts` attempts), counting an
    /// attempt and making each due again at `retry_at`, so a sender that dies leaves them to be
    /// retried; returns them with their attempt number. Claimed rows are skipped by other
    /// instances (`FOR UPDATE SKIP LOCKED` on Postgres, the single writer on SQLite).
    fn devspace_claim_alert_emails(
        &self,
        now: UnixSeconds,
        retry_at: UnixSeconds,
        oldest: UnixSeconds,
        max_attempts: u32,
        limit: u32,
    ) -> StoreFuture<Vec<(AlertRecord, u32)>>;
    /// Adds one to the shared counter `name` (created at 1, kept until `expires_at`, then
    /// deleted by [`Store::devspace_purge`]) and returns its new value: one statement, so
    /// increments from every instance add up and each value is returned once.
    fn devspace_count(&self, name: &str, expires_at: UnixSeconds) -> StoreFuture<u64>;
    /// Dev Space email outbox: the alert's email was sent (nothing more to do).
    fn devspace_alert_emailed(&self, id: &str) -> StoreFuture<()>;
    /// Dev Space: the merchant's tokens in `mode`, newest first, older than token `before` when
    /// given, at most `limit`: metadata only (no ciphertext is read).
    fn token_views(
        &self,
        merchant_id: &str,
        mode: Mode,
        before: Option<String>,
        limit: u32,
    ) -> StoreFuture<Vec<::devspace::backend::TokenView>>;

    /// Stores a font face with its WOFF2 bytes and the audit event, in one transaction, unless
    /// the merchant already has `max` fonts in this mode (`Ok(false)`, nothing written; decided
    /// in the transaction, so concurrent uploads, on any instance, never pass the cap).
    /// [`StoreError::Conflict`] if the merchant already has this face (family, weight and
    /// style) in this mode.
    fn insert_font(&self, font: FontRecord, data: Vec<u8>, audit: AuditEvent, max: u32) -> StoreFuture<bool>;
    /// The merchant's fonts in `mode`, oldest first (without their bytes).
    fn list_fonts(&self, merchant_id: &str, mode: Mode) -> StoreFuture<Vec<FontRecord>>;
    /// The bytes of a font by its content hash (any merchant's: the file is public, named by
    /// its content), or `None`.
    fn font_data(&self, hash: &str) -> StoreFuture<Option<Vec<u8>>>;
    /// Deletes a font of this merchant and mode with the audit event; `false` if there was none.
    fn delete_font(&self, id: &str, merchant_id: &str, mode: Mode, audit: AuditEvent) -> StoreFuture<bool>;
}
