//! Idempotency keys and retries, against the scripted server.

use std::time::Duration;

use altafinex::payments::CreatePayment;
use altafinex::refunds::CreateRefund;
use altafinex::webhook_endpoints::CreateEndpoint;
use altafinex::{Currency, Error, ErrorType, IdempotencyKey, NetworkErrorKind, RequestOptions, RetryConfig};

use crate::fake::{self, PAYMENT, REFUND, Reply};

fn charge() -> CreatePayment {
    CreatePayment::new(1999, Currency::USD, "tok_1").metadata("order", "1234")
}

#[tokio::test]
async fn every_retry_of_a_payment_carries_the_same_idempotency_key() {
    let fake = fake::start(vec![
        Reply::error(500, "api_error", "internal_error"),
        Reply::error(503, "api_error", "not_ready"),
        Reply::error(409, "idempotency_error", "idempotency_key_in_use"),
        Reply::json(201, PAYMENT),
    ])
    .await;
    let client = fake.client();
    let payment = client.payments().create(&charge()).await.unwrap();
    assert_eq!(payment.id, "pay_1");

    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    let key = requests[0].header("idempotency-key").unwrap().to_owned();
    assert_eq!(key.len(), 36, "a UUID: {key}");
    for r in &requests {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/payments"));
        assert_eq!(r.header("idempotency-key"), Some(key.as_str()));
        assert_eq!(r.body, requests[0].body, "the same body on every attempt");
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    assert_eq!(
        requests[0].body_json(),
        serde_json::json!({"amount":1999,"currency":"usd","token":"tok_1","capture":true,"metadata":{"order":"1234"}})
    );

    // Three waits, each within its full-jitter range (0 to 0.5 s, 1 s, 2 s by default).
    let waits = fake.sleeps.waits();
    assert_eq!(waits.len(), 3);
    for (wait, ceiling) in waits.iter().zip([500u64, 1000, 2000]) {
        assert!(*wait < Duration::from_millis(ceiling), "{waits:?}");
    }

    // The next logical request gets a new key.
    client.payments().create(&charge()).await.unwrap();
    let next = fake.requests()[4].header("idempotency-key").unwrap().to_owned();
    assert_ne!(next, key);
}

#[tokio::test]
async fn a_callers_own_key_is_sent_and_reused() {
    let fake = fake::start(vec![Reply::error(502, "api_error", "bad_gateway"), Reply::json(201, REFUND)]).await;
    let options = RequestOptions::new().idempotency_key(IdempotencyKey::new("order-1234-refund-1").unwrap());
    let refund = fake.client().refunds().create_with(&CreateRefund::new("pay_1").amount(500), &options).await.unwrap();
    assert_eq!(refund.amount, 500);
    let keys: Vec<_> = fake.requests().iter().map(|r| r.header("idempotency-key").unwrap().to_owned()).collect();
    assert_eq!(keys, ["order-1234-refund-1", "order-1234-refund-1"]);
}

#[tokio::test]
async fn a_429_waits_exactly_retry_after() {
    let fake = fake::start(vec![
        Reply::error(429, "rate_limit_error", "rate_limited").header("retry-after", "7"),
        Reply::json(200, PAYMENT),
    ])
    .await;
    let payment = fake.client().payments().retrieve("pay_1").await.unwrap();
    assert_eq!(payment.amount, 1999);
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(fake.sleeps.waits(), [Duration::from_secs(7)]);
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_returned_not_waited_for() {
    let fake = fake::start(vec![
        Reply::error(429, "rate_limit_error", "rate_limited").header("retry-after", "3600"),
        Reply::json(200, PAYMENT),
    ])
    .await;
    let err = fake.client().payments().retrieve("pay_1").await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!(
        (api.status, &api.error_type, api.retry_after),
        (429, &ErrorType::RateLimit, Some(Duration::from_secs(3600)))
    );
    assert_eq!(fake.requests().len(), 1);
    assert!(fake.sleeps.waits().is_empty());
}

#[tokio::test]
async fn a_500_then_a_200_succeeds() {
    let fake = fake::start(vec![Reply::error(500, "api_error", "internal_error"), Reply::json(200, PAYMENT)]).await;
    let payment = fake.client().payments().retrieve("pay_1").await.unwrap();
    assert_eq!(payment.card.unwrap().last4, "4242");
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(fake.sleeps.waits().len(), 1);
}

#[tokio::test]
async fn a_400_is_never_retried() {
    let invalid = Reply::json(
        400,
        r#"{"error":{"type":"invalid_request_error","code":"parameter_invalid","message":"amount must be positive","param":"amount"}}"#,
    );
    let fake = fake::start(vec![invalid, Reply::json(201, PAYMENT)]).await;
    let err = fake.client().payments().create(&CreatePayment::new(0, Currency::USD, "tok_1")).await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!((api.status, api.code.as_str(), api.param.as_deref()), (400, "parameter_invalid", Some("amount")));
    assert_eq!(api.request_id.as_deref(), Some("req_0"));
    assert_eq!(fake.requests().len(), 1);
    assert!(fake.sleeps.waits().is_empty());
}

#[tokio::test]
async fn a_declined_card_is_a_typed_error_and_not_retried() {
    let declined = Reply::json(
        402,
        r#"{"error":{"type":"card_error","code":"card_declined","message":"Your card has insufficient funds.","decline_code":"insufficient_funds","payment":"pay_9"}}"#,
    );
    let fake = fake::start(vec![declined]).await;
    let err = fake.client().payments().create(&charge()).await.unwrap_err();
    let api = err.api().unwrap();
    assert!(api.is_card_declined());
    assert_eq!(api.decline_code, Some(altafinex::DeclineCode::InsufficientFunds));
    assert_eq!(api.payment.as_deref(), Some("pay_9"));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn retries_stop_at_the_configured_bound() {
    let fake = fake::start(vec![Reply::error(500, "api_error", "internal_error")]).await;
    let err = fake.client().payments().retrieve("pay_1").await.unwrap_err();
    assert_eq!(err.api().unwrap().status, 500);
    assert_eq!(fake.requests().len(), 4, "1 attempt + 3 retries by default");

    let fake = fake::start(vec![Reply::error(500, "api_error", "internal_error")]).await;
    fake.client_with(RetryConfig::default().with_max_retries(1)).payments().retrieve("pay_1").await.unwrap_err();
    assert_eq!(fake.requests().len(), 2);

    let fake = fake::start(vec![Reply::error(500, "api_error", "internal_error")]).await;
    fake.client_with(RetryConfig::disabled()).payments().retrieve("pay_1").await.unwrap_err();
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_timed_out_payment_is_retried_with_its_key() {
    // The first answer comes too late: the vault may have charged. The retry carries the same
    // key, so the vault replays instead of charging again.
    let fake =
        fake::start(vec![Reply::json(201, PAYMENT).delayed(Duration::from_secs(3)), Reply::json(201, PAYMENT)]).await;
    let client = fake.builder().timeout(Duration::from_millis(500)).build().unwrap();
    client.payments().create(&charge()).await.unwrap();
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("idempotency-key"), requests[1].header("idempotency-key"));
}

#[tokio::test]
async fn non_idempotent_calls_are_not_retried_after_a_timeout_or_500() {
    // Detokenize hands the CVC out once: a blind retry could lose it.
    let fake = fake::start(vec![Reply::json(200, "{}").delayed(Duration::from_secs(3))]).await;
    let client = fake.builder().timeout(Duration::from_millis(500)).build().unwrap();
    let err = client.tokens().detokenize("tok_1").await.unwrap_err();
    let Error::Network(network) = &err else { panic!("{err:?}") };
    assert_eq!(network.kind(), NetworkErrorKind::Timeout);
    assert_eq!(fake.requests().len(), 1);

    // A new endpoint's secret is shown once: a 500 is not retried either …
    let fake = fake::start(vec![Reply::error(500, "api_error", "internal_error")]).await;
    fake.client().webhook_endpoints().create(&CreateEndpoint::new("https://shop.example/hooks")).await.unwrap_err();
    assert_eq!(fake.requests().len(), 1);
    // … but a 429 is: the vault refused it before doing anything.
    let fake = fake::start(vec![
        Reply::error(429, "rate_limit_error", "rate_limited").header("retry-after", "1"),
        Reply::error(403, "permission_error", "insufficient_permissions"),
    ])
    .await;
    fake.client().webhook_endpoints().create(&CreateEndpoint::new("https://shop.example/hooks")).await.unwrap_err();
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn connection_failures_are_retried_then_reported() {
    // A port nobody listens on.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let sleeps = fake::RecordingSleep::default();
    let client = altafinex::Client::builder(fake::KEY)
        .base_url(format!("https://localhost:{}", addr.port()))
        .resolve("localhost", addr)
        .sleep(sleeps.clone())
        .build()
        .unwrap();
    let err = client.payments().create(&charge()).await.unwrap_err();
    let Error::Network(network) = &err else { panic!("{err:?}") };
    assert_eq!(network.kind(), NetworkErrorKind::Connect);
    assert_eq!(sleeps.waits().len(), 3);
}
