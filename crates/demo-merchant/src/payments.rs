//! The demo merchant's payments, as a merchant's server does them with the SDK (`altafinex`):
//!
//! - `POST /api/pay` `{ "token": "tok_…" }` charges the order total to the token the page got
//!   from the card frame, with a fresh `Idempotency-Key` for this logical request (the SDK
//!   reuses it on its own retries, so a lost answer never charges twice);
//! - `POST /api/refund` `{ "payment": "pay_…" }` refunds what is left of a payment;
//! - `POST /webhooks` receives the vault's deliveries and keeps only those whose signatures
//!   verify: the Standard Webhooks signature and timestamp (`construct_event`), and
//!   `X-Altafinex-Signature` on its own (what the merchant docs' Node.js snippet checks);
//! - `GET /api/webhooks` lists the verified deliveries, newest first, for the page to show.
//!
//! The page only ever sees display data: ids, amounts, statuses, brand and last four digits.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use altafinex::payments::{CreatePayment, Payment};
use altafinex::refunds::{CreateRefund, Refund, RefundReason};
use altafinex::webhook::{self, Scheme, Secret as WebhookSecret};
use altafinex::webhook_endpoints::CreateEndpoint;
use altafinex::{Client, Currency, IdempotencyKey, RequestOptions};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

/// The order on the demo page: € 24.00.
pub const ORDER_AMOUNT: u64 = 2400;
/// Its currency.
pub const ORDER_CURRENCY: Currency = Currency::EUR;
/// How many verified deliveries the page can list.
const KEEP_DELIVERIES: usize = 50;

/// What `/api/pay`, `/api/refund` and `/webhooks` share.
pub struct Payments {
    /// SDK client with the merchant's payments-role secret key.
    client: Client,
    /// The signing secret of this server's webhook endpoint, once registered.
    webhook_secret: RwLock<Option<WebhookSecret>>,
    /// Verified deliveries, newest first, at most [`KEEP_DELIVERIES`].
    received: Mutex<VecDeque<Value>>,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments").field("client", &self.client).finish_non_exhaustive()
    }
}

impl Payments {
    /// Payments through `client` (a payments-role key); webhooks are refused until
    /// [`Payments::set_webhook_secret`].
    pub fn new(client: Client) -> Arc<Payments> {
        Arc::new(Payments { client, webhook_secret: RwLock::new(None), received: Mutex::new(VecDeque::new()) })
    }

    /// The secret `/webhooks` verifies deliveries with.
    pub fn set_webhook_secret(&self, secret: WebhookSecret) {
        *self.webhook_secret.write().unwrap_or_else(PoisonError::into_inner) = Some(secret);
    }

    fn record(&self, delivery: Value) {
        let mut received = self.received.lock().unwrap_or_else(PoisonError::into_inner);
        // Delivery is at least once: a redelivered event replaces nothing, it is dropped.
        let id = delivery.get("id").cloned();
        if received.iter().any(|d| d.get("id") == id.as_ref()) {
            return;
        }
        received.push_front(delivery);
        received.truncate(KEEP_DELIVERIES);
    }

    fn deliveries(&self) -> Vec<Value> {
        self.received.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }
}

/// Registers `url` as this merchant's webhook endpoint for every event type, with an admin-role
/// client, and returns its signing secret (shown by the vault only in this answer). Endpoints
/// left at the same URL by an earlier run are deleted first: their secrets are lost with that
/// run, so their deliveries could no longer be verified.
///
/// # Errors
/// The SDK's error when the vault refuses or cannot be reached.
pub async fn register_webhook(admin: &Client, url: &str) -> Result<WebhookSecret, altafinex::Error> {
    let endpoints = admin.webhook_endpoints();
    for old in endpoints.list().await?.data.into_iter().filter(|e| e.url == url) {
        endpoints.delete(&old.id).await?;
    }
    let created =
        endpoints.create(&CreateEndpoint::new(url).description("demo merchant checkout (scripts/demo.sh)")).await?;
    Ok(created.secret)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PayRequest {
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefundRequest {
    payment: String,
}

/// `tok_…` / `pay_…` ids as the vault makes them: a prefix, then letters and digits.
fn is_id(value: &str, prefix: &str) -> bool {
    value.len() <= 128
        && value
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}

/// The page's view of an SDK error: the API's status, code and message, or a gateway error
/// when no answer came.
fn sdk_error(e: &altafinex::Error) -> Response {
    match e {
        altafinex::Error::Api(api) => {
            let status = StatusCode::from_u16(api.status).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, Json(json!({ "error": { "code": api.code, "message": api.message } }))).into_response()
        }
        other => {
            tracing::warn!(error = %other, "vault call failed");
            error(StatusCode::BAD_GATEWAY, "vault_unreachable", "the vault did not answer; try again")
        }
    }
}

fn payment_view(p: &Payment) -> Value {
    json!({
        "id": p.id,
        "status": p.status.as_str(),
        "amount": p.amount,
        "amountRefunded": p.amount_refunded,
        "currency": p.currency.code(),
        "display": p.currency.format_minor(p.amount),
        "card": p.card.as_ref().map(|c| json!({
            "brand": c.brand, "last4": c.last4, "expMonth": c.exp_month, "expYear": c.exp_year,
        })),
        "declineCode": p.decline_code.as_ref().map(|d| d.as_str().to_owned()),
        "livemode": p.livemode,
    })
}

fn refund_view(r: &Refund) -> Value {
    json!({
        "id": r.id,
        "payment": r.payment,
        "status": r.status.as_str(),
        "amount": r.amount,
        "currency": r.currency.code(),
        "display": r.currency.format_minor(r.amount),
    })
}

fn not_configured() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "payments_not_configured",
        "this demo merchant was started without a payments key (--payments-key)",
    )
}

/// `POST /api/pay`.
pub(crate) async fn pay(State(payments): State<Option<Arc<Payments>>>, Json(req): Json<PayRequest>) -> Response {
    let Some(payments) = payments else { return not_configured() };
    let token = req.token.trim();
    if !is_id(token, "tok_") {
        return error(StatusCode::BAD_REQUEST, "invalid_token_format", "token must look like tok_…");
    }
    let Ok(key) = IdempotencyKey::random() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "no_randomness", "cannot make an idempotency key");
    };
    let options = RequestOptions::new().idempotency_key(key.clone());
    let params = CreatePayment::new(ORDER_AMOUNT, ORDER_CURRENCY, token)
        .capture(true)
        .description("Demo order: espresso beans, 1 kg");
    match payments.client.payments().create_with(&params, &options).await {
        Ok(payment) => {
            Json(json!({ "idempotencyKey": key.as_str(), "payment": payment_view(&payment) })).into_response()
        }
        // A decline is an outcome of the checkout, not a failure of this server: 200, and the
        // page tells the cardholder (the vault stored the failed payment).
        Err(altafinex::Error::Api(api)) if api.is_card_declined() => Json(json!({
            "idempotencyKey": key.as_str(),
            "declined": {
                "code": api.code, "message": api.message, "payment": api.payment,
                "declineCode": api.decline_code.as_ref().map(|d| d.as_str().to_owned()),
            },
        }))
        .into_response(),
        Err(e) => sdk_error(&e),
    }
}

/// `POST /api/refund`: refunds what is left of the payment.
pub(crate) async fn refund(State(payments): State<Option<Arc<Payments>>>, Json(req): Json<RefundRequest>) -> Response {
    let Some(payments) = payments else { return not_configured() };
    if !is_id(&req.payment, "pay_") {
        return error(StatusCode::BAD_REQUEST, "invalid_payment_format", "payment must look like pay_…");
    }
    let Ok(key) = IdempotencyKey::random() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "no_randomness", "cannot make an idempotency key");
    };
    let options = RequestOptions::new().idempotency_key(key.clone());
    let params = CreateRefund::new(&req.payment).reason(RefundReason::RequestedByCustomer);
    match payments.client.refunds().create_with(&params, &options).await {
        Ok(refund) => Json(json!({ "idempotencyKey": key.as_str(), "refund": refund_view(&refund) })).into_response(),
        Err(e) => sdk_error(&e),
    }
}

/// `GET /api/webhooks`.
pub(crate) async fn list_webhooks(State(payments): State<Option<Arc<Payments>>>) -> Response {
    let Some(payments) = payments else { return not_configured() };
    Json(json!({ "deliveries": payments.deliveries() })).into_response()
}

/// `POST /webhooks`: 200 for a verified delivery, 400 (and nothing recorded) for any other.
pub(crate) async fn receive_webhook(
    State(payments): State<Option<Arc<Payments>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(payments) = payments else { return not_configured() };
    let Some(secret) = payments.webhook_secret.read().unwrap_or_else(PoisonError::into_inner).clone() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "webhook_not_registered", "no webhook secret yet");
    };
    let event = match webhook::construct_event(&body, &headers, &secret, webhook::DEFAULT_TOLERANCE) {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(error = %e, "webhook refused");
            return error(StatusCode::BAD_REQUEST, "signature_invalid", &e.to_string());
        }
    };
    // The docs' Node.js check on its own: X-Altafinex-Signature over the raw body.
    let mut only_altafinex = HeaderMap::new();
    if let Some(v) = headers.get(webhook::ALTAFINEX_SIGNATURE) {
        only_altafinex.insert(webhook::ALTAFINEX_SIGNATURE, v.clone());
    }
    let altafinex_ok =
        matches!(webhook::verify(&body, &only_altafinex, &secret, webhook::DEFAULT_TOLERANCE), Ok(Scheme::Altafinex));
    if !altafinex_ok {
        return error(StatusCode::BAD_REQUEST, "signature_invalid", "X-Altafinex-Signature does not match the body");
    }
    let object = match &event.data.object {
        altafinex::events::EventObject::Payment(p) => payment_view(p),
        altafinex::events::EventObject::Refund(r) => refund_view(r),
        _ => Value::Null,
    };
    payments.record(json!({
        "id": event.id,
        "type": event.event_type.as_str(),
        "created": event.created,
        "object": object,
        "verified": ["webhook-signature", "x-altafinex-signature"],
        "webhookId": headers.get(webhook::WEBHOOK_ID).and_then(|v| v.to_str().ok()),
    }));
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().insert("cache-control", HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_before_any_vault_call() {
        assert!(is_id("tok_abc123", "tok_"));
        assert!(!is_id("tok_", "tok_"));
        assert!(!is_id("tok_../v1/keys", "tok_"));
        assert!(!is_id("pay_abc", "tok_"));
        assert!(!is_id(&format!("pay_{}", "a".repeat(200)), "pay_"));
    }

    #[test]
    fn deliveries_are_deduplicated_and_bounded() {
        let client =
            Client::builder("sk_test_0123456789abcdefghijklmnop").base_url("https://localhost:1").build().unwrap();
        let p = Payments::new(client);
        for n in 0..(KEEP_DELIVERIES + 10) {
            p.record(json!({ "id": format!("evt_{n}") }));
            p.record(json!({ "id": format!("evt_{n}") }));
        }
        let list = p.deliveries();
        assert_eq!(list.len(), KEEP_DELIVERIES);
        assert_eq!(list[0]["id"], format!("evt_{}", KEEP_DELIVERIES + 9));
    }
}
