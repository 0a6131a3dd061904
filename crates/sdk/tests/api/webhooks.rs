//! `altafinex::webhook`: deliveries signed with the vault's signing code, verified against the
//! system clock.

use std::time::{SystemTime, UNIX_EPOCH};

use altafinex::webhook::{self, DEFAULT_TOLERANCE, Scheme, Secret, VerifyError, WebhookError};
use http::{HeaderMap, HeaderName, HeaderValue};

const BODY: &str = r#"{"id":"evt_1","object":"event","type":"payment.captured","created":1764000000,"livemode":false,"data":{"object":{"id":"pay_1","object":"payment","amount":500,"currency":"jpy","status":"succeeded","livemode":false,"created":1764000000}}}"#;

fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

fn secret(byte: u8) -> Secret {
    Secret::from_random_bytes(&[byte; 32]).unwrap()
}

/// The headers the vault would send for `BODY` signed with `secret` at `at`.
fn delivery(secret: &Secret, at: i64) -> HeaderMap {
    let signed = webhook_signature::sign(&[secret], "evt_1", at, BODY.as_bytes()).unwrap();
    let mut headers = HeaderMap::new();
    for (name, value) in signed.pairs() {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
    }
    headers
}

#[test]
fn a_genuine_delivery_verifies_and_parses() {
    let headers = delivery(&secret(1), now());
    assert_eq!(webhook::verify(BODY.as_bytes(), &headers, &secret(1), DEFAULT_TOLERANCE), Ok(Scheme::StandardWebhooks));
    let event = webhook::construct_event(BODY.as_bytes(), &headers, &secret(1), DEFAULT_TOLERANCE).unwrap();
    assert_eq!(event.id, "evt_1");
    let altafinex::events::EventObject::Payment(payment) = event.data.object else { panic!() };
    assert_eq!((payment.amount, payment.currency.exponent()), (500, 0));
}

#[test]
fn a_tampered_body_is_refused() {
    let headers = delivery(&secret(1), now());
    let tampered = BODY.replace("\"amount\":500", "\"amount\":5");
    assert_eq!(
        webhook::verify(tampered.as_bytes(), &headers, &secret(1), DEFAULT_TOLERANCE),
        Err(VerifyError::NoMatchingSignature)
    );
    // The timestamp-less scheme alone catches it too.
    let mut only_hex = headers.clone();
    for name in [webhook::WEBHOOK_ID, webhook::WEBHOOK_TIMESTAMP, webhook::WEBHOOK_SIGNATURE] {
        only_hex.remove(name);
    }
    assert_eq!(
        webhook::verify(tampered.as_bytes(), &only_hex, &secret(1), DEFAULT_TOLERANCE),
        Err(VerifyError::NoMatchingSignature)
    );
    assert_eq!(webhook::verify(BODY.as_bytes(), &only_hex, &secret(1), DEFAULT_TOLERANCE), Ok(Scheme::Altafinex));
    assert_eq!(
        webhook::construct_event(BODY.as_bytes(), &only_hex, &secret(1), DEFAULT_TOLERANCE).unwrap_err(),
        WebhookError::ReplayUnprotected
    );
}

#[test]
fn a_wrong_secret_is_refused() {
    let headers = delivery(&secret(1), now());
    assert_eq!(
        webhook::verify(BODY.as_bytes(), &headers, &secret(2), DEFAULT_TOLERANCE),
        Err(VerifyError::NoMatchingSignature)
    );
    let err = webhook::construct_event(BODY.as_bytes(), &headers, &secret(2), DEFAULT_TOLERANCE).unwrap_err();
    assert_eq!(err, WebhookError::Verify(VerifyError::NoMatchingSignature));
}

#[test]
fn a_stale_or_future_timestamp_is_refused() {
    let stale = delivery(&secret(1), now() - 600);
    assert_eq!(
        webhook::verify(BODY.as_bytes(), &stale, &secret(1), DEFAULT_TOLERANCE),
        Err(VerifyError::TimestampTooOld)
    );
    let future = delivery(&secret(1), now() + 600);
    assert_eq!(
        webhook::verify(BODY.as_bytes(), &future, &secret(1), DEFAULT_TOLERANCE),
        Err(VerifyError::TimestampInFuture)
    );
}

#[test]
fn both_secrets_verify_during_a_rotation() {
    let (old, new) = (secret(1), secret(2));
    let signed = webhook_signature::sign(&[&new, &old], "evt_1", now(), BODY.as_bytes()).unwrap();
    let headers: Vec<(&str, &str)> = signed.pairs().to_vec();
    for s in [&old, &new] {
        assert_eq!(webhook::verify(BODY.as_bytes(), &headers, s, DEFAULT_TOLERANCE), Ok(Scheme::StandardWebhooks));
    }
}
