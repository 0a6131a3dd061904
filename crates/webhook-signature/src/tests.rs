//! Vectors: the Standard Webhooks reference libraries' test vector, and the same body signed
//! the way the merchant docs' Node.js snippet signs it (computed independently with Python's
//! `hmac`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: i64 = 1_614_265_330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;
const STANDARD_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
const ALTAFINEX_SIG: &str = "80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c";

fn secret() -> Secret {
    Secret::parse(SECRET).unwrap()
}

fn signed() -> Vec<(String, String)> {
    sign(&[&secret()], ID, TS, BODY).unwrap().pairs().iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn signs_the_reference_vectors() {
    let headers = sign(&[&secret()], ID, TS, BODY).unwrap();
    assert_eq!(headers.webhook_signature, STANDARD_SIG);
    assert_eq!(headers.altafinex_signature, ALTAFINEX_SIG);
    assert_eq!(headers.webhook_id, ID);
    assert_eq!(headers.webhook_timestamp, "1614265330");
}

#[test]
fn verifies_a_fresh_delivery_with_the_standard_scheme() {
    let scheme = verify(BODY, &signed(), &secret(), DEFAULT_TOLERANCE, TS + 10).unwrap();
    assert_eq!(scheme, Scheme::StandardWebhooks);
}

#[test]
fn refuses_a_tampered_body_a_wrong_secret_and_stale_or_future_timestamps() {
    let headers = signed();
    let tampered = br#"{"test": 2432232315}"#;
    assert_eq!(verify(tampered, &headers, &secret(), DEFAULT_TOLERANCE, TS), Err(VerifyError::NoMatchingSignature));
    let other = Secret::from_random_bytes(&[7u8; 32]).unwrap();
    assert_eq!(verify(BODY, &headers, &other, DEFAULT_TOLERANCE, TS), Err(VerifyError::NoMatchingSignature));
    assert_eq!(verify(BODY, &headers, &secret(), DEFAULT_TOLERANCE, TS + 301), Err(VerifyError::TimestampTooOld));
    assert_eq!(verify(BODY, &headers, &secret(), DEFAULT_TOLERANCE, TS - 301), Err(VerifyError::TimestampInFuture));
}

#[test]
fn a_changed_id_or_timestamp_breaks_the_standard_signature() {
    let mut headers = signed();
    for (name, value) in &mut headers {
        if name == WEBHOOK_TIMESTAMP {
            *value = (TS + 1).to_string();
        }
    }
    assert_eq!(verify(BODY, &headers, &secret(), DEFAULT_TOLERANCE, TS), Err(VerifyError::NoMatchingSignature));
    let mut headers = signed();
    for (name, value) in &mut headers {
        if name == WEBHOOK_ID {
            value.push('x');
        }
    }
    assert_eq!(verify(BODY, &headers, &secret(), DEFAULT_TOLERANCE, TS), Err(VerifyError::NoMatchingSignature));
}

#[test]
fn falls_back_to_the_altafinex_header_alone() {
    let headers = [("X-Altafinex-Signature", ALTAFINEX_SIG)];
    assert_eq!(verify(BODY, &headers[..], &secret(), DEFAULT_TOLERANCE, 0), Ok(Scheme::Altafinex));
    assert_eq!(verify(b"{}", &headers[..], &secret(), DEFAULT_TOLERANCE, 0), Err(VerifyError::NoMatchingSignature));
    let short = [("x-altafinex-signature", "abc")];
    assert_eq!(
        verify(BODY, &short[..], &secret(), DEFAULT_TOLERANCE, 0),
        Err(VerifyError::MalformedHeader(ALTAFINEX_SIGNATURE))
    );
    let none: [(&str, &str); 0] = [];
    assert_eq!(verify(BODY, &none[..], &secret(), DEFAULT_TOLERANCE, 0), Err(VerifyError::MissingSignature));
}

#[test]
fn during_a_rotation_either_secret_verifies() {
    let old = secret();
    let new = Secret::from_random_bytes(&[42u8; 32]).unwrap();
    let headers: Vec<(String, String)> = sign(&[&new, &old], ID, TS, BODY)
        .unwrap()
        .pairs()
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    assert!(verify(BODY, &headers, &old, DEFAULT_TOLERANCE, TS).is_ok());
    assert!(verify(BODY, &headers, &new, DEFAULT_TOLERANCE, TS).is_ok());
    let sig = &headers.iter().find(|(n, _)| n == WEBHOOK_SIGNATURE).unwrap().1;
    assert_eq!(sig.split(' ').count(), 2);
    assert!(sig.ends_with(STANDARD_SIG));
}

#[test]
fn malformed_headers_get_precise_errors() {
    let cases: [(&str, &str, VerifyError); 4] = [
        (WEBHOOK_TIMESTAMP, "12a", VerifyError::MalformedHeader(WEBHOOK_TIMESTAMP)),
        (WEBHOOK_TIMESTAMP, "9999999999999", VerifyError::MalformedHeader(WEBHOOK_TIMESTAMP)),
        (WEBHOOK_ID, "msg.1", VerifyError::MalformedHeader(WEBHOOK_ID)),
        (WEBHOOK_SIGNATURE, &"v1,a ".repeat(300), VerifyError::MalformedHeader(WEBHOOK_SIGNATURE)),
    ];
    for (name, value, expected) in cases {
        let mut headers = signed();
        for (n, v) in &mut headers {
            if n == name {
                *v = value.to_owned();
            }
        }
        assert_eq!(verify(BODY, &headers, &secret(), DEFAULT_TOLERANCE, TS), Err(expected));
    }
    let missing: Vec<(String, String)> = signed().into_iter().filter(|(n, _)| n != WEBHOOK_ID).collect();
    assert_eq!(verify(BODY, &missing, &secret(), DEFAULT_TOLERANCE, TS), Err(VerifyError::MissingHeader(WEBHOOK_ID)));
}

#[test]
fn secrets_parse_strictly_and_never_print() {
    assert_eq!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").err(), Some(SecretError::MissingPrefix));
    assert_eq!(Secret::parse("whsec_!!!!").err(), Some(SecretError::NotBase64));
    assert_eq!(Secret::parse("whsec_AAAA").err(), Some(SecretError::BadLength));
    assert_eq!(Secret::from_random_bytes(&[0u8; 16]).err(), Some(SecretError::BadLength));
    let generated = Secret::from_random_bytes(&[9u8; 32]).unwrap();
    let reparsed = Secret::parse(generated.expose()).unwrap();
    assert_eq!(reparsed.expose(), generated.expose());
    assert_eq!(format!("{generated:?}"), "Secret(whsec_****)");
    assert!(!format!("{generated:?}").contains(&generated.expose()[6..]));
}

#[test]
fn http_header_maps_work_too() {
    let mut map = http::HeaderMap::new();
    for (name, value) in signed() {
        map.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(&value).unwrap(),
        );
    }
    assert!(verify(BODY, &map, &secret(), DEFAULT_TOLERANCE, TS).is_ok());
}

#[test]
fn ids_are_plain_identifiers() {
    assert_eq!(sign(&[&secret()], "", TS, BODY), Err(SignError::BadId));
    assert_eq!(sign(&[&secret()], "a.b", TS, BODY), Err(SignError::BadId));
    assert_eq!(sign(&[], ID, TS, BODY), Err(SignError::NoSecret));
}
