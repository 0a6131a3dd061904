//! Verifying webhook deliveries on your endpoint.
//!
//! Every delivery is a `POST` whose body is an [`Event`](crate::events::Event) as JSON, signed
//! two ways (see the `webhook-signature` crate, which the vault signs with and this module
//! verifies with: one implementation for both sides):
//!
//! - Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`): the
//!   signature covers the id, the timestamp and the body, so a delivery replayed after the
//!   tolerance is refused;
//! - `X-Altafinex-Signature`: the hex HMAC-SHA256 of the body (what the merchant docs' Node.js
//!   snippet checks); it has no timestamp.
//!
//! Pass the body **exactly as received** (the raw bytes, not re-serialised JSON), and answer
//! `2xx` quickly: deliveries are retried with backoff for 3 days until one succeeds, so the same
//! event may arrive more than once: drop duplicates by event id.
//!
//! ```
//! use altafinex::webhook;
//! fn handle(body: &[u8], headers: &http::HeaderMap, secret: &webhook::Secret) -> u16 {
//!     match webhook::construct_event(body, headers, secret, webhook::DEFAULT_TOLERANCE) {
//!         Ok(event) => {
//!             // record event.id; act on event.event_type / event.data.object
//!             200
//!         }
//!         Err(_) => 400,
//!     }
//! }
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use webhook_signature::{
    ALTAFINEX_SIGNATURE, DEFAULT_TOLERANCE, Headers, Scheme, Secret, SecretError, VerifyError, WEBHOOK_ID,
    WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP,
};

use crate::error::DecodeError;
use crate::events::Event;

/// Verifies a delivery against the system clock: either signature scheme, compared in constant
/// time; with Standard Webhooks headers the timestamp must be within `tolerance` of now
/// ([`DEFAULT_TOLERANCE`], 5 minutes, is the advised value).
///
/// Returns which scheme verified it. [`Scheme::Altafinex`] means only `X-Altafinex-Signature`
/// was present: the body is authentic but could be a replay. The vault always sends both
/// schemes; [`construct_event`] therefore insists on the Standard Webhooks one.
///
/// # Errors
/// A [`VerifyError`]: a missing or malformed header, a timestamp outside the tolerance, or no
/// matching signature (the body was changed, or the secret is not this endpoint's).
pub fn verify<H: Headers + ?Sized>(
    raw_body: &[u8],
    headers: &H,
    secret: &Secret,
    tolerance: Duration,
) -> Result<Scheme, VerifyError> {
    webhook_signature::verify(raw_body, headers, secret, tolerance, unix_now())
}

/// The system clock in Unix seconds (a clock before 1970 reads as 0, which fails every
/// tolerance check rather than passing one).
fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Why [`construct_event`] refused a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookError {
    /// The signature or timestamp check failed.
    Verify(VerifyError),
    /// Only `X-Altafinex-Signature` was present: authentic, but without a signed timestamp it
    /// could be an old delivery replayed. The vault always sends the Standard Webhooks headers,
    /// so their absence means someone removed them. Use [`verify`] to accept such deliveries.
    ReplayUnprotected,
    /// Verified, but the body is not an event this SDK can read.
    Parse(DecodeError),
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebhookError::Verify(e) => write!(f, "webhook refused: {e}"),
            WebhookError::ReplayUnprotected => {
                f.write_str("webhook refused: no Standard Webhooks signature, so no replay protection")
            }
            WebhookError::Parse(e) => write!(f, "webhook verified but unreadable: {}", e.detail),
        }
    }
}

impl std::error::Error for WebhookError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WebhookError::Verify(e) => Some(e),
            WebhookError::Parse(e) => Some(e),
            WebhookError::ReplayUnprotected => None,
        }
    }
}

/// Verifies a delivery (Standard Webhooks signature and timestamp tolerance, against the system
/// clock), then parses its body as an [`Event`].
///
/// # Errors
/// [`WebhookError`]: verification failed, only the timestamp-less scheme was present, or the
/// body is not an event.
pub fn construct_event<H: Headers + ?Sized>(
    raw_body: &[u8],
    headers: &H,
    secret: &Secret,
    tolerance: Duration,
) -> Result<Event, WebhookError> {
    construct_event_at(raw_body, headers, secret, tolerance, unix_now())
}

fn construct_event_at<H: Headers + ?Sized>(
    raw_body: &[u8],
    headers: &H,
    secret: &Secret,
    tolerance: Duration,
    now: i64,
) -> Result<Event, WebhookError> {
    match webhook_signature::verify(raw_body, headers, secret, tolerance, now).map_err(WebhookError::Verify)? {
        Scheme::StandardWebhooks => {}
        _ => return Err(WebhookError::ReplayUnprotected),
    }
    serde_json::from_slice(raw_body).map_err(|e| WebhookError::Parse(DecodeError::json(200, &e, None)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventObject, EventType};

    const EVENT: &str = r#"{"id":"evt_1","object":"event","type":"payment.succeeded","created":1764000000,"livemode":false,"data":{"object":{"id":"pay_1","object":"payment","amount":1000,"currency":"usd","status":"succeeded","capture":true,"amount_capturable":0,"amount_captured":1000,"amount_refunded":0,"description":null,"metadata":{},"card":{"brand":"visa","last4":"4242","exp_month":12,"exp_year":2030,"fingerprint":"fp"},"token":"tok_1","decline_code":null,"failure_message":null,"livemode":false,"created":1764000000}}}"#;
    const NOW: i64 = 1_764_000_000;

    fn secret() -> Secret {
        Secret::from_random_bytes(&[7u8; 32]).unwrap()
    }

    fn signed(body: &str, at: i64) -> Vec<(String, String)> {
        let headers = webhook_signature::sign(&[&secret()], "evt_1", at, body.as_bytes()).unwrap();
        headers.pairs().iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn constructs_a_signed_event() {
        let event =
            construct_event_at(EVENT.as_bytes(), &signed(EVENT, NOW), &secret(), DEFAULT_TOLERANCE, NOW).unwrap();
        assert_eq!(event.event_type, EventType::PaymentSucceeded);
        let EventObject::Payment(payment) = event.data.object else { panic!("not a payment") };
        assert_eq!((payment.amount, payment.currency), (1000, crate::Currency::USD));
    }

    #[test]
    fn refuses_the_timestamp_less_scheme_alone() {
        let only_hex: Vec<_> = signed(EVENT, NOW).into_iter().filter(|(n, _)| n == ALTAFINEX_SIGNATURE).collect();
        assert_eq!(
            webhook_signature::verify(EVENT.as_bytes(), &only_hex, &secret(), DEFAULT_TOLERANCE, NOW),
            Ok(Scheme::Altafinex)
        );
        let err = construct_event_at(EVENT.as_bytes(), &only_hex, &secret(), DEFAULT_TOLERANCE, NOW).unwrap_err();
        assert_eq!(err, WebhookError::ReplayUnprotected);
    }

    #[test]
    fn refuses_tampering_and_staleness() {
        let headers = signed(EVENT, NOW);
        let tampered = EVENT.replace("1000", "9000");
        let cases = [
            (tampered.as_str(), NOW, VerifyError::NoMatchingSignature),
            (EVENT, NOW + 301, VerifyError::TimestampTooOld),
            (EVENT, NOW - 301, VerifyError::TimestampInFuture),
        ];
        for (body, now, expected) in cases {
            let err = construct_event_at(body.as_bytes(), &headers, &secret(), DEFAULT_TOLERANCE, now).unwrap_err();
            assert_eq!(err, WebhookError::Verify(expected));
        }
    }

    #[test]
    fn unreadable_bodies_are_reported_without_content() {
        let body = r#"{"id":"evt_1","secret_stuff":"4242424242424242"}"#;
        let err =
            construct_event_at(body.as_bytes(), &signed(body, NOW), &secret(), DEFAULT_TOLERANCE, NOW).unwrap_err();
        assert!(matches!(err, WebhookError::Parse(_)));
        assert!(!err.to_string().contains("4242"));
    }
}
