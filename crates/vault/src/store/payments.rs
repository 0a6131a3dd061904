//! Records of payments, refunds, events (the transactional outbox), webhook endpoints and their
//! deliveries, as the [`super::Store`] keeps them.
//!
//! The store owns the columns its semantics need (status for conditional transitions, amounts
//! for the refund-sum invariant, lease columns for claiming deliveries); the rest of an object's
//! public shape is an opaque JSON document written by the API layer, so the two engines do not
//! each map a dozen columns.

use crate::clock::UnixSeconds;
use crate::keys::Mode;

/// A payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    /// `pay_…`.
    pub id: String,
    /// Merchant.
    pub merchant_id: String,
    /// Mode.
    pub mode: Mode,
    /// `requires_capture`, `succeeded`, `canceled`, `failed` or `processing`.
    pub status: String,
    /// Authorised amount in the currency's minor unit.
    pub amount: i64,
    /// Lowercase ISO 4217 code.
    pub currency: String,
    /// Amount still capturable.
    pub amount_capturable: i64,
    /// Amount captured.
    pub amount_captured: i64,
    /// Sum of refunds reserved or succeeded (maintained by the store only).
    pub amount_refunded: i64,
    /// Creation time.
    pub created: UnixSeconds,
    /// The rest of the object (card display data, description, metadata, decline code,
    /// processor reference): a JSON object. Never card numbers or CVCs.
    pub data: serde_json::Value,
}

/// A refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    /// `re_…`.
    pub id: String,
    /// The refunded payment.
    pub payment_id: String,
    /// Merchant.
    pub merchant_id: String,
    /// Mode.
    pub mode: Mode,
    /// Amount in the payment's minor unit.
    pub amount: i64,
    /// `processing` (reserved), `succeeded` or `failed`.
    pub status: String,
    /// Creation time.
    pub created: UnixSeconds,
    /// The rest of the object (currency, reason, processor reference).
    pub data: serde_json::Value,
}

/// An event of the outbox. Written in the transaction of the state change it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// `evt_…`.
    pub id: String,
    /// Merchant.
    pub merchant_id: String,
    /// Mode.
    pub mode: Mode,
    /// `payment.succeeded`, …
    pub event_type: String,
    /// Creation time.
    pub created: UnixSeconds,
    /// The event object exactly as it is delivered (the signed bytes).
    pub body: String,
}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpointRecord {
    /// `we_…`.
    pub id: String,
    /// Merchant.
    pub merchant_id: String,
    /// Mode.
    pub mode: Mode,
    /// Target URL.
    pub url: String,
    /// Event types, or `["*"]`.
    pub enabled_events: Vec<String>,
    /// `enabled`, `disabled` or `deleted`.
    pub status: String,
    /// Free text (never a card number).
    pub description: Option<String>,
    /// Creation time.
    pub created: UnixSeconds,
    /// Since when every delivery attempt failed (`None` after a success).
    pub failing_since: Option<UnixSeconds>,
}

/// A signing secret of an endpoint, encrypted with the merchant's data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSecretRecord {
    /// The endpoint.
    pub endpoint_id: String,
    /// 1, 2, … (one per rotation).
    pub version: u32,
    /// AES-256-GCM ciphertext of the `whsec_…` text.
    pub secret_ct: Vec<u8>,
    /// Creation time.
    pub created: UnixSeconds,
    /// After this the secret no longer signs (`None`: current).
    pub expires_at: Option<UnixSeconds>,
}

/// A delivery claimed by a worker, with what it needs to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryJob {
    /// Delivery row id.
    pub id: i64,
    /// Event id (the `webhook-id`).
    pub event_id: String,
    /// Endpoint id.
    pub endpoint_id: String,
    /// Merchant.
    pub merchant_id: String,
    /// Mode.
    pub mode: Mode,
    /// Target URL.
    pub url: String,
    /// The exact event body.
    pub body: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When the delivery was created (retries stop 3 days after).
    pub created: UnixSeconds,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Delivery row id.
    pub delivery_id: i64,
    /// Event id.
    pub event_id: String,
    /// Endpoint id.
    pub endpoint_id: String,
    /// HTTP status, if an answer came.
    pub status_code: Option<u16>,
    /// Time to the answer or the error.
    pub latency_ms: u64,
    /// `timeout`, `connect`, `tls`, `http_status`, `refused_address`, … (`None` on success).
    pub error_class: Option<String>,
    /// At most 1 KB of the response body.
    pub response_body: String,
    /// When the attempt started.
    pub created: UnixSeconds,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryNext {
    /// Delivered (2xx): done.
    Delivered,
    /// Failed: try again at this time.
    RetryAt(UnixSeconds),
    /// Failed for good (retries exhausted).
    GiveUp,
}

/// Result of [`super::Store::reserve_refund`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundReservation {
    /// The refund row exists (status `processing`) and its amount is counted in the payment's
    /// `amount_refunded`.
    Reserved,
    /// The payment is not this merchant's, or not captured.
    NotRefundable,
    /// The refunds would exceed the captured amount.
    Exceeds,
}

/// Filter for listing payments, refunds and events (newest first, cursor pagination).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this merchant's rows (`None`: every merchant, for background jobs).
    pub merchant_id: Option<String>,
    /// Only this mode's rows (with `merchant_id`).
    pub mode: Option<Mode>,
    /// Only this status (payments), payment (refunds) or type (events).
    pub kind: Option<String>,
    /// Only refunds in this status (refunds only; other lists ignore it).
    pub refund_status: Option<String>,
    /// Only rows created at or after.
    pub created_gte: Option<UnixSeconds>,
    /// Only rows created before.
    pub created_lt: Option<UnixSeconds>,
    /// Only rows older than this id (the cursor).
    pub starting_after: Option<String>,
    /// At most this many.
    pub limit: u32,
}

/// Comma-delimited form (`,a,b,`) that both engines search with one substring test.
pub(crate) fn events_column(events: &[String]) -> String {
    format!(",{},", events.join(","))
}

/// The inverse of [`events_column`].
pub(crate) fn events_of_column(column: &str) -> Vec<String> {
    column.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}
