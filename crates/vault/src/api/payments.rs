//! `/v1/payments…` and `/v1/refunds…`: charging a token through the mode's [`Processor`],
//! capturing, canceling and refunding, and the reconciler of payments whose processor answer
//! was lost.
//!
//! Exactly-once rules:
//! - Every POST needs an `Idempotency-Key`; the claim is taken in the database (so across
//!   instances) before anything is written or asked of the processor (a payment's claim
//!   commits with its `processing` row and its CVC's destruction: one write), and the stored
//!   answer is replayed afterwards.
//! - The payment id is derived from the idempotency scope, and the payment row is written
//!   (`processing`) *before* the processor is called with that id as its reference. A retry
//!   after a crash finds the row and asks the processor ([`Processor::status`]); it never
//!   authorises again.
//! - The token's CVC is destroyed (one caller wins, [`crate::store::Store::begin_payment`])
//!   *before* it is sent, so it is used at most once.
//! - Every state change is written with its event in one transaction (the outbox).

use std::collections::HashMap;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::tokens::{idempotency_scope, open_card, replay, valid_token_id};
use super::{principal, read_body, require_json};
use crate::keys::{Mode, Permission};
use crate::processor::{Authorization, AuthorizeRequest, DeclineCode, Processor, ProcessorError, ProcessorStatus};
use crate::state::{AppState, ClaimGuard, IDEMPOTENCY_LEASE_SECS, Principal, RequestCtx};
use crate::store::{
    AuditEvent, Claim, EventRecord, IdempotencyRecord, ListFilter, PaymentRecord, PaymentStart, RefundRecord,
    RefundReservation,
};

/// ISO 4217 currencies accepted, with their exponent (minor-unit digits). Amounts are integers in
/// the minor unit: 1000 is USD 10.00, JPY 1000, KWD 1.000.
pub const CURRENCIES: &[(&str, u8)] = &[
    ("aed", 2),
    ("aud", 2),
    ("bhd", 3),
    ("brl", 2),
    ("cad", 2),
    ("chf", 2),
    ("clp", 0),
    ("cny", 2),
    ("czk", 2),
    ("dkk", 2),
    ("eur", 2),
    ("gbp", 2),
    ("hkd", 2),
    ("huf", 2),
    ("idr", 2),
    ("ils", 2),
    ("inr", 2),
    ("iqd", 3),
    ("isk", 0),
    ("jod", 3),
    ("jpy", 0),
    ("krw", 0),
    ("kwd", 3),
    ("lyd", 3),
    ("mxn", 2),
    ("myr", 2),
    ("nok", 2),
    ("nzd", 2),
    ("omr", 3),
    ("php", 2),
    ("pln", 2),
    ("ron", 2),
    ("sar", 2),
    ("sek", 2),
    ("sgd", 2),
    ("thb", 2),
    ("tnd", 3),
    ("try", 2),
    ("twd", 2),
    ("usd", 2),
    ("vnd", 0),
    ("xaf", 0),
    ("xof", 0),
    ("zar", 2),
];

/// The exponent of a currency code (any case), `None` if not accepted.
pub fn currency_exponent(code: &str) -> Option<u8> {
    CURRENCIES.iter().find(|(c, _)| c.eq_ignore_ascii_case(code)).map(|(_, e)| *e)
}

/// Largest amount accepted in any currency (minor units): fits both engines' integers with room.
pub const MAX_AMOUNT: i64 = 99_999_999_999;
/// Longest description (characters).
pub const MAX_DESCRIPTION: usize = 500;
/// Most metadata entries; longest key and value.
pub const MAX_METADATA: (usize, usize, usize) = (20, 40, 500);
/// Event types that exist.
pub const EVENT_TYPES: &[&str] = &[
    "payment.succeeded",
    "payment.failed",
    "payment.captured",
    "payment.canceled",
    "refund.succeeded",
    "refund.failed",
    "security.alert",
    "webhook_endpoint.disabled",
];

/// The stable id of the object a request with this idempotency scope creates, so that a retry
/// after a crash finds what the first attempt wrote: 112 bits of the scope's digest written
/// with the letters `a`–`p`. Letters only: a hex id holds a run of 12+ digits about once in
/// 16 ids, and the vault refuses such a run in any URL as a possible card number.
fn derived_id(prefix: &str, scope: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, scope.as_bytes());
    format!("{prefix}_{}", crate::crypto::letters(digest.as_ref().get(..14).unwrap_or_default()))
}

fn valid_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .is_some_and(|r| !r.is_empty() && r.len() <= 40 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// 503 for live mode without a processor.
fn processor_not_configured() -> ApiError {
    ApiError::unavailable_with(
        "processor_not_configured",
        "No payment processor is configured for live mode; live payments are refused.",
    )
}

fn invalid(param: &'static str) -> ApiError {
    ApiError::invalid("parameter_invalid", "A parameter has an invalid value.").param(param)
}

fn missing(param: &'static str) -> ApiError {
    ApiError::invalid("parameter_missing", "A required parameter is missing.").param(param)
}

/// The JSON object of a request body (`{}` for an empty body) with only `allowed` keys.
pub(crate) fn body_object(bytes: &[u8], allowed: &[&'static str]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|_| ApiError::invalid("invalid_json", "The request body is not valid JSON."))?;
    let Value::Object(map) = value else {
        return Err(ApiError::invalid("invalid_json", "The request body must be a JSON object."));
    };
    if map.keys().any(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            "parameter_unknown",
            "The request body has a parameter this endpoint does not know.",
        ));
    }
    Ok(map)
}

fn amount_of(map: &Map<String, Value>, param: &'static str) -> Result<Option<i64>, ApiError> {
    match map.get(param) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().filter(|a| (1..=MAX_AMOUNT).contains(a)).map(Some).ok_or_else(|| {
            ApiError::invalid("amount_invalid", "Amounts are positive integers in the currency's minor unit.")
                .param(param)
        }),
    }
}

fn free_text(value: &str, param: &'static str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(invalid(param));
    }
    if crate::text::looks_like_card_number(value) {
        return Err(ApiError::card_number_in_text(param));
    }
    Ok(())
}

fn metadata_of(map: &Map<String, Value>) -> Result<Value, ApiError> {
    let Some(v) = map.get("metadata") else { return Ok(json!({})) };
    if v.is_null() {
        return Ok(json!({}));
    }
    let Value::Object(m) = v else { return Err(invalid("metadata")) };
    let (most, key_len, value_len) = MAX_METADATA;
    if m.len() > most {
        return Err(invalid("metadata"));
    }
    for (k, v) in m {
        if k.is_empty() {
            return Err(invalid("metadata"));
        }
        free_text(k, "metadata", key_len)?;
        let Value::String(s) = v else { return Err(invalid("metadata")) };
        free_text(s, "metadata", value_len)?;
    }
    Ok(v.clone())
}

/// The public payment object: the card only as brand, last 4, expiry and fingerprint.
pub fn payment_json(p: &PaymentRecord) -> Value {
    let d = &p.data;
    json!({
        "id": p.id,
        "object": "payment",
        "amount": p.amount,
        "currency": p.currency,
        "status": p.status,
        "capture": d.get("capture").cloned().unwrap_or(Value::Bool(true)),
        "amount_capturable": p.amount_capturable,
        "amount_captured": p.amount_captured,
        "amount_refunded": p.amount_refunded,
        "description": d.get("description").cloned().unwrap_or(Value::Null),
        "metadata": d.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "card": d.get("card").cloned().unwrap_or(Value::Null),
        "token": d.get("token").cloned().unwrap_or(Value::Null),
        "decline_code": d.get("decline_code").cloned().unwrap_or(Value::Null),
        "failure_message": d.get("failure_message").cloned().unwrap_or(Value::Null),
        "livemode": p.mode == Mode::Live,
        "created": p.created,
    })
}

/// The public refund object.
pub fn refund_json(r: &RefundRecord) -> Value {
    json!({
        "id": r.id,
        "object": "refund",
        "payment": r.payment_id,
        "amount": r.amount,
        "currency": r.data.get("currency").cloned().unwrap_or(Value::Null),
        "status": r.status,
        "reason": r.data.get("reason").cloned().unwrap_or(Value::Null),
        "livemode": r.mode == Mode::Live,
        "created": r.created,
    })
}

/// A new event about `object` (the exact bytes that will be signed and delivered).
pub fn new_event(
    merchant_id: &str,
    mode: Mode,
    event_type: &str,
    object: Value,
    now: i64,
) -> Result<EventRecord, ApiError> {
    // Time-ordered: the events table and the attempts' index grow at their ends.
    let id = format!("evt_{}", crate::crypto::time_ordered_base62(crate::crypto::unix_ms(), 8, 24)?);
    let body = json!({
        "id": id,
        "object": "event",
        "type": event_type,
        "created": now,
        "livemode": mode == Mode::Live,
        "data": { "object": object },
    })
    .to_string();
    Ok(EventRecord {
        id,
        merchant_id: merchant_id.to_owned(),
        mode,
        event_type: event_type.to_owned(),
        created: now,
        body,
    })
}

/// The request's idempotency scope and body hash; the header is required here.
struct Idem {
    scope: String,
    hash: String,
}

/// A write request that may proceed: authenticated, its body read, its idempotency scope
/// claimed.
struct Write {
    p: Principal,
    processor: std::sync::Arc<dyn Processor>,
    body: crate::secret::SecretBytes,
    idem: Idem,
    guard: ClaimGuard,
}

/// A payments write, authenticated, with its body read and its idempotency scope (the
/// `Idempotency-Key` is required), not yet claimed.
async fn accept(
    state: &AppState,
    ctx: &RequestCtx,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Principal, std::sync::Arc<dyn Processor>, crate::secret::SecretBytes, Idem), ApiError> {
    let p = principal(state, ctx, headers, Permission::WritePayments).await?;
    let processor = state.processor(p.key.mode).ok_or_else(processor_not_configured)?;
    require_json(headers)?;
    let body = read_body(state, headers, body).await?;
    let idem = required_idempotency(state, &p, headers, body.expose())?;
    Ok((p, processor, body, idem))
}

/// [`accept`], then claims the `Idempotency-Key`: `Err(response)` replays a stored answer.
async fn begin(
    state: &AppState,
    ctx: &RequestCtx,
    headers: &HeaderMap,
    body: Body,
) -> Result<Result<Write, Response>, ApiError> {
    let (p, processor, body, idem) = accept(state, ctx, headers, body).await?;
    match state.claim_idempotency(&idem.scope, &idem.hash).await? {
        Ok(guard) => Ok(Ok(Write { p, processor, body, idem, guard })),
        Err(stored) => Ok(Err(replay(&stored, &idem.hash, true)?)),
    }
}

/// The request's idempotency scope and body hash; its `Idempotency-Key` is required.
fn required_idempotency(state: &AppState, p: &Principal, headers: &HeaderMap, body: &[u8]) -> Result<Idem, ApiError> {
    let (scope, hash) = idempotency_scope(state, p, headers, body)?.ok_or_else(|| {
        ApiError::invalid(
            "idempotency_key_required",
            "Payment and refund requests need an Idempotency-Key header (a retry reuses it).",
        )
    })?;
    Ok(Idem { scope, hash })
}

/// The answer for a payment's current state: 402 with the card error for a failed one.
fn payment_answer(p: &PaymentRecord, ok: StatusCode) -> (StatusCode, String) {
    if p.status == "failed" {
        let code = p.data.get("decline_code").cloned().unwrap_or(Value::Null);
        let message = p.data.get("failure_message").cloned().unwrap_or(Value::Null);
        let body = json!({ "error": {
            "type": "card_error",
            "code": "card_declined",
            "message": message,
            "decline_code": code,
            "payment": p.id,
        }});
        return (StatusCode::PAYMENT_REQUIRED, body.to_string());
    }
    (ok, payment_json(p).to_string())
}

fn respond(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn same_request(data: &Value, idem: &Idem) -> bool {
    data.get("request_hash").and_then(Value::as_str) == Some(idem.hash.as_str())
}

/// Writes a payment's transition from `from` with its event and the idempotency record (none
/// while the outcome is unknown: a retry then re-enters and asks the processor), and answers.
/// If another writer (the reconciler) moved the payment first, answers with what it wrote.
/// A claim left held (no stored response) is released by the caller's
/// [`ClaimGuard::answer`], before the answer leaves.
#[allow(clippy::too_many_arguments)]
async fn settle_payment(
    state: &AppState,
    next: PaymentRecord,
    from: &str,
    event_type: Option<&str>,
    audit: Option<AuditEvent>,
    idem: &Idem,
    guard: &mut ClaimGuard,
    ok: StatusCode,
) -> Result<Response, ApiError> {
    let now = state.now();
    let record = |p: &PaymentRecord| {
        let (status, body) = payment_answer(p, ok);
        let rec = (p.status != "processing").then(|| IdempotencyRecord {
            scope: idem.scope.clone(),
            body_hash: idem.hash.clone(),
            status: status.as_u16(),
            response: body.clone(),
            created: now,
        });
        (status, body, rec)
    };
    let (status, body, rec) = record(&next);
    let event = match event_type {
        Some(t) => Some(new_event(&next.merchant_id, next.mode, t, payment_json(&next), now)?),
        None => None,
    };
    let stored_idem = rec.is_some();
    // The audit row commits with the transition (one write, not two).
    if let Some(a) = &audit {
        state.log_audit(a);
    }
    let moved = state.store.update_payment(next.clone(), from, event, rec, audit.clone()).await?;
    if moved {
        // Outcome unknown (`processing`): the claim stays held here and is released before
        // the answer leaves, so a retry asks the processor.
        if stored_idem {
            guard.complete();
        }
        return Ok(respond(status, body));
    }
    let current =
        state.store.get_payment(&next.id, &next.merchant_id, next.mode).await?.ok_or_else(ApiError::internal)?;
    let (status, body, rec) = record(&current);
    if rec.is_some() && state.store.update_payment(current.clone(), &current.status, None, rec, audit).await? {
        guard.complete();
    }
    Ok(respond(status, body))
}

/// Applies an authorisation outcome to a `processing` payment; returns its event type.
fn apply_authorization(
    mut p: PaymentRecord,
    outcome: &Result<Authorization, ProcessorError>,
) -> (PaymentRecord, Option<&'static str>) {
    match outcome {
        Ok(Authorization::Approved { captured: true }) => {
            p.status = "succeeded".into();
            p.amount_captured = p.amount;
            p.amount_capturable = 0;
            (p, Some("payment.succeeded"))
        }
        Ok(Authorization::Approved { captured: false }) => {
            p.status = "requires_capture".into();
            p.amount_capturable = p.amount;
            (p, None)
        }
        Ok(Authorization::Declined(code)) => (fail(p, *code), Some("payment.failed")),
        Err(ProcessorError::Timeout) => (p, None),
        Err(e) => {
            tracing::warn!(error = %e, "processor refused an authorisation");
            (fail(p, DeclineCode::ProcessingError), Some("payment.failed"))
        }
    }
}

fn fail(mut p: PaymentRecord, code: DeclineCode) -> PaymentRecord {
    p.status = "failed".into();
    if let Value::Object(d) = &mut p.data {
        d.insert("decline_code".into(), Value::String(code.as_str().into()));
        d.insert("failure_message".into(), Value::String(code.message().into()));
    }
    p
}

/// What the processor says of a `processing` payment, applied to it (`None`: still unknown).
fn apply_status(
    p: PaymentRecord,
    status: ProcessorStatus,
    give_up: bool,
) -> Option<(PaymentRecord, Option<&'static str>)> {
    let outcome = match status {
        ProcessorStatus::Captured => Ok(Authorization::Approved { captured: true }),
        ProcessorStatus::Authorized => Ok(Authorization::Approved { captured: false }),
        ProcessorStatus::Declined(code) => Ok(Authorization::Declined(code)),
        // Never reached the processor (or released): nothing was charged.
        ProcessorStatus::Unknown | ProcessorStatus::Canceled if give_up => {
            Ok(Authorization::Declined(DeclineCode::ProcessingError))
        }
        ProcessorStatus::Unknown | ProcessorStatus::Canceled => return None,
    };
    Some(apply_authorization(p, &outcome))
}

/// `POST /v1/payments`.
///
/// The request is validated and its token read before anything is written; then one durable
/// write claims the `Idempotency-Key`, records the payment (`processing`) and destroys the
/// token's CVC ([`crate::store::Store::begin_payment`]); only then is the processor asked.
pub async fn create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Claimed later, with the payment's first write (`begin_payment`).
    let (p, processor, body, idem) = accept(&state, &ctx, &headers, body).await?;
    let map = body_object(body.expose(), &["amount", "currency", "token", "capture", "description", "metadata"])?;
    drop(body);
    let amount = amount_of(&map, "amount")?.ok_or_else(|| missing("amount"))?;
    let currency = match map.get("currency") {
        None | Some(Value::Null) => return Err(missing("currency")),
        Some(Value::String(c)) if currency_exponent(c).is_some() => c.to_ascii_lowercase(),
        Some(_) => {
            return Err(ApiError::invalid("currency_invalid", "Unknown currency: use a lowercase ISO 4217 code.")
                .param("currency"));
        }
    };
    let token_id = match map.get("token") {
        None | Some(Value::Null) => return Err(missing("token")),
        Some(Value::String(t)) => t.clone(),
        Some(_) => return Err(invalid("token")),
    };
    let capture = match map.get("capture") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("capture")),
    };
    let description = match map.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => {
            free_text(d, "description", MAX_DESCRIPTION)?;
            Some(d.clone())
        }
        Some(_) => return Err(invalid("description")),
    };
    let metadata = metadata_of(&map)?;

    let merchant = p.key.merchant_id.clone();
    let mode = p.key.mode;
    let id = derived_id("pay", &idem.scope);
    let now = state.now();
    let token = if valid_token_id(&token_id) {
        state.store.get_for_detokenize(&token_id, &merchant, mode, now).await?
    } else {
        None
    };
    let Some(token) = token else {
        // A retry of a payment that was answered still gets that answer after its token expired.
        if let Some(stored) = state.store.get_idempotency(&idem.scope).await? {
            return replay(&stored, &idem.hash, true);
        }
        return Err(ApiError::invalid("token_invalid", "No such token (tokens expire after 24 hours).").param("token"));
    };
    let (card, cvc) = open_card(&state, &token).await?;
    let pan = card::Pan::parse(card.number.expose()).map_err(|_| ApiError::internal())?;
    let record = PaymentRecord {
        id: id.clone(),
        merchant_id: merchant.clone(),
        mode,
        status: "processing".into(),
        amount,
        currency: currency.clone(),
        amount_capturable: 0,
        amount_captured: 0,
        amount_refunded: 0,
        created: now,
        data: json!({
            "capture": capture,
            "description": description,
            "metadata": metadata,
            "card": {
                "brand": token.brand,
                "last4": token.last4,
                "exp_month": token.exp_month,
                "exp_year": token.exp_year,
                "fingerprint": token.fingerprint,
            },
            "token": token.id,
            "decline_code": null,
            "failure_message": null,
            "request_hash": idem.hash,
        }),
    };
    let cvc_of = cvc.is_some().then(|| token.id.clone());
    let lease_before = now - IDEMPOTENCY_LEASE_SECS;
    let start = state.store.begin_payment(&idem.scope, &idem.hash, lease_before, record.clone(), cvc_of).await?;
    // The CVC is destroyed before it is sent: whoever wins the destruction may use it, once.
    let destroyed = match start {
        PaymentStart::Started { cvc: destroyed } => destroyed,
        PaymentStart::Recorded(existing) => {
            // A first attempt with this key stopped after recording the payment: ask the
            // processor what happened; never authorise again.
            let mut guard = state.claimed(idem.scope.clone());
            let answer = if same_request(&existing.data, &idem) {
                resume(&state, processor.as_ref(), existing, &idem, &mut guard).await
            } else {
                Err(ApiError::idempotency_reused())
            };
            return guard.answer(answer).await;
        }
        PaymentStart::NotClaimed(Claim::Done(stored)) => return replay(&stored, &idem.hash, true),
        PaymentStart::NotClaimed(_) => return Err(ApiError::idempotency_in_use()),
    };
    let mut guard = state.claimed(idem.scope.clone());
    let answer = async {
        let cvc = match cvc {
            Some(c) if destroyed => {
                let text = std::str::from_utf8(c.expose()).map_err(|_| ApiError::internal())?;
                Some(card::Cvc::parse(text, Some(pan.brand())).map_err(|_| ApiError::internal())?)
            }
            _ => None,
        };
        let outcome = processor
            .authorize(AuthorizeRequest {
                reference: id.clone(),
                amount,
                currency,
                pan,
                exp_month: card.exp_month,
                exp_year: card.exp_year,
                cvc,
                capture,
            })
            .await;
        drop(card);
        let (next, event) = apply_authorization(record, &outcome);
        let mut audit = state.event("payment.created", "success", &ctx, Some(&p.key));
        audit.detail = json!({ "payment": id, "status": next.status, "token_ref": state.master.token_ref(&token.id) });
        settle_payment(&state, next, "processing", event, Some(audit), &idem, &mut guard, StatusCode::CREATED).await
    }
    .await;
    guard.answer(answer).await
}

/// Answers a retry whose first attempt recorded the payment.
async fn resume(
    state: &AppState,
    processor: &dyn Processor,
    existing: PaymentRecord,
    idem: &Idem,
    guard: &mut ClaimGuard,
) -> Result<Response, ApiError> {
    if existing.status != "processing" {
        let status = existing.status.clone();
        return settle_payment(state, existing, &status, None, None, idem, guard, StatusCode::CREATED).await;
    }
    let known = match processor.status(&existing.id).await {
        Ok(s) => s,
        Err(_) => ProcessorStatus::Unknown,
    };
    let give_up = state.now() - existing.created >= state.config.reconcile_after_secs;
    match apply_status(existing.clone(), known, give_up) {
        Some((next, event)) => {
            settle_payment(state, next, "processing", event, None, idem, guard, StatusCode::CREATED).await
        }
        None => settle_payment(state, existing, "processing", None, None, idem, guard, StatusCode::CREATED).await,
    }
}

/// Resolves payments left `processing` (the processor's answer was lost, or the instance died
/// between recording and authorising) by asking the processor. Runs on every instance; the
/// conditional update lets one of them write each outcome.
pub async fn reconcile(state: &AppState) {
    let now = state.now();
    let filter = ListFilter {
        kind: Some("processing".into()),
        created_lt: Some(now - state.config.reconcile_after_secs),
        limit: 100,
        ..Default::default()
    };
    let stuck = match state.store.list_payments(filter).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "could not list payments to reconcile");
            return;
        }
    };
    for p in stuck {
        let Some(processor) = state.processor(p.mode) else { continue };
        let known = match processor.status(&p.id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, payment = %p.id, "processor status unavailable");
                continue;
            }
        };
        // Ten reconcile periods without the processor knowing the reference: it never
        // arrived, nothing was charged.
        let give_up = now - p.created >= state.config.reconcile_after_secs * 10;
        let Some((next, event_type)) = apply_status(p, known, give_up) else { continue };
        let event = match event_type {
            Some(t) => match new_event(&next.merchant_id, next.mode, t, payment_json(&next), now) {
                Ok(e) => Some(e),
                Err(_) => continue,
            },
            None => None,
        };
        match state.store.update_payment(next.clone(), "processing", event, None, None).await {
            Ok(true) => tracing::info!(payment = %next.id, status = %next.status, "reconciled a payment"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not store a reconciled payment"),
        }
    }
}

/// Resolves refunds left `processing` (the processor's answer was lost, or the instance died
/// between reserving and refunding) by asking the processor whether the refund arrived: it is
/// never sent again from here. One that the processor never saw in ten reconcile periods
/// failed, and its amount is refundable again. Runs on every instance; the conditional update
/// lets one of them write each outcome.
pub async fn reconcile_refunds(state: &AppState) {
    let now = state.now();
    let filter = ListFilter {
        refund_status: Some("processing".into()),
        created_lt: Some(now - state.config.reconcile_after_secs),
        limit: 100,
        ..Default::default()
    };
    let stuck = match state.store.list_refunds(filter).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "could not list refunds to reconcile");
            return;
        }
    };
    for r in stuck {
        let Some(processor) = state.processor(r.mode) else { continue };
        let known = match processor.refund_status(&r.payment_id, &r.id).await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, refund = %r.id, "processor refund status unavailable");
                continue;
            }
        };
        let give_up = now - r.created >= state.config.reconcile_after_secs * 10;
        let (status, event_type) = match known {
            Some(_) => ("succeeded", "refund.succeeded"),
            None if give_up => ("failed", "refund.failed"),
            None => continue,
        };
        let mut next = r;
        next.status = status.into();
        let Ok(event) = new_event(&next.merchant_id, next.mode, event_type, refund_json(&next), now) else { continue };
        match state.store.finish_refund(next.clone(), Some(event), None).await {
            Ok(true) => tracing::info!(refund = %next.id, status = %next.status, "reconciled a refund"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not store a reconciled refund"),
        }
    }
}

async fn load_payment(state: &AppState, p: &Principal, id: &str) -> Result<PaymentRecord, ApiError> {
    if !valid_id("pay", id) {
        return Err(ApiError::not_found());
    }
    state.store.get_payment(id, &p.key.merchant_id, p.key.mode).await?.ok_or_else(ApiError::not_found)
}

/// `POST /v1/payments/{id}/capture`.
pub async fn capture(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    transition(state, ctx, headers, id, body, true).await
}

/// `POST /v1/payments/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    transition(state, ctx, headers, id, body, false).await
}

async fn transition(
    state: AppState,
    ctx: RequestCtx,
    headers: HeaderMap,
    id: String,
    body: Body,
    capture: bool,
) -> Result<Response, ApiError> {
    let Write { p, processor, body, idem, mut guard } = match begin(&state, &ctx, &headers, body).await? {
        Ok(w) => w,
        Err(replayed) => return Ok(replayed),
    };
    let answer = async {
        let map = body_object(body.expose(), if capture { &["amount"] } else { &[] })?;
        let payment = load_payment(&state, &p, &id).await?;
        if payment.status != "requires_capture" {
            return Err(if capture {
                ApiError::invalid(
                    "payment_not_capturable",
                    "Only a payment in status requires_capture can be captured.",
                )
            } else {
                ApiError::invalid(
                    "payment_not_cancelable",
                    "Only a payment in status requires_capture can be canceled.",
                )
            });
        }
        let mut next = payment.clone();
        let event = if capture {
            let amount = amount_of(&map, "amount")?.unwrap_or(payment.amount_capturable);
            if amount > payment.amount_capturable {
                return Err(
                    ApiError::invalid("amount_too_large", "The amount exceeds amount_capturable.").param("amount")
                );
            }
            processor.capture(&payment.id, amount).await.map_err(processor_error)?;
            next.status = "succeeded".into();
            next.amount_captured = amount;
            next.amount_capturable = 0;
            "payment.captured"
        } else {
            processor.cancel(&payment.id).await.map_err(processor_error)?;
            next.status = "canceled".into();
            next.amount_capturable = 0;
            "payment.canceled"
        };
        let mut audit = state.event(event, "success", &ctx, Some(&p.key));
        audit.detail = json!({ "payment": payment.id });
        settle_payment(&state, next, "requires_capture", Some(event), Some(audit), &idem, &mut guard, StatusCode::OK)
            .await
    }
    .await;
    guard.answer(answer).await
}

fn processor_error(e: ProcessorError) -> ApiError {
    tracing::warn!(error = %e, "processor call failed");
    ApiError::unavailable_with("processor_unavailable", "The processor did not complete the operation; retry later.")
}

/// `GET /v1/payments/{id}`.
pub async fn retrieve(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ReadPayments).await?;
    let payment = load_payment(&state, &p, &id).await?;
    Ok(respond(StatusCode::OK, payment_json(&payment).to_string()))
}

/// Parsed list parameters.
pub(crate) fn list_filter(
    p: &Principal,
    q: &HashMap<String, String>,
    allowed: &[(&str, &'static str)],
) -> Result<ListFilter, ApiError> {
    let mut f = ListFilter {
        merchant_id: Some(p.key.merchant_id.clone()),
        mode: Some(p.key.mode),
        limit: 10,
        ..Default::default()
    };
    for (k, v) in q {
        let Some(&(_, param)) = allowed.iter().find(|(name, _)| name == k) else {
            return Err(ApiError::invalid("parameter_unknown", "Unknown query parameter."));
        };
        match param {
            "limit" => {
                f.limit = v.parse::<u32>().ok().filter(|l| (1..=100).contains(l)).ok_or_else(|| invalid("limit"))?;
            }
            "starting_after" => {
                if v.is_empty() || v.len() > 64 || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(invalid("starting_after"));
                }
                f.starting_after = Some(v.clone());
            }
            "created_gte" => f.created_gte = Some(v.parse().map_err(|_| invalid("created_gte"))?),
            "created_lt" => f.created_lt = Some(v.parse().map_err(|_| invalid("created_lt"))?),
            _ => {
                if v.is_empty() || v.len() > 64 || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.*".contains(&b))
                {
                    return Err(invalid(param));
                }
                f.kind = Some(v.clone());
            }
        }
    }
    Ok(f)
}

/// `{"object":"list","data":[…],"has_more","next_cursor"}` from rows fetched with one extra.
pub(crate) fn list_body(mut items: Vec<(String, String)>, limit: u32) -> Response {
    let has_more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = if has_more { items.last().map(|(id, _)| Value::String(id.clone())) } else { None };
    let data: Vec<&str> = items.iter().map(|(_, body)| body.as_str()).collect();
    let body = format!(
        r#"{{"object":"list","data":[{}],"has_more":{has_more},"next_cursor":{}}}"#,
        data.join(","),
        next.unwrap_or(Value::Null)
    );
    respond(StatusCode::OK, body)
}

/// `GET /v1/payments`.
pub async fn list(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ReadPayments).await?;
    let mut f = list_filter(
        &p,
        &q,
        &[
            ("limit", "limit"),
            ("starting_after", "starting_after"),
            ("status", "status"),
            ("created_gte", "created_gte"),
            ("created_lt", "created_lt"),
        ],
    )?;
    let limit = f.limit;
    f.limit += 1;
    let rows = state.store.list_payments(f).await?;
    Ok(list_body(rows.iter().map(|r| (r.id.clone(), payment_json(r).to_string())).collect(), limit))
}

/// `POST /v1/refunds`.
pub async fn create_refund(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Write { p, processor, body, idem, mut guard } = match begin(&state, &ctx, &headers, body).await? {
        Ok(w) => w,
        Err(replayed) => return Ok(replayed),
    };
    let answer = async {
        let map = body_object(body.expose(), &["payment", "amount", "reason"])?;
        drop(body);
        let payment_id = match map.get("payment") {
            None | Some(Value::Null) => return Err(missing("payment")),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid("payment")),
        };
        let amount = amount_of(&map, "amount")?;
        let reason = match map.get("reason") {
            None | Some(Value::Null) => Value::Null,
            Some(Value::String(r)) if ["duplicate", "fraudulent", "requested_by_customer"].contains(&r.as_str()) => {
                Value::String(r.clone())
            }
            Some(_) => return Err(invalid("reason")),
        };
        let payment = load_payment(&state, &p, &payment_id).await.map_err(|e| e.param("payment"))?;
        let id = derived_id("re", &idem.scope);
        let now = state.now();
        let existing = state.store.get_refund(&id, &p.key.merchant_id, p.key.mode).await?;
        let retried = existing.is_some();
        let refund = match existing {
            Some(existing) => {
                // A first attempt with this key reserved the refund and stopped.
                if !same_request(&existing.data, &idem) {
                    return Err(ApiError::idempotency_reused());
                }
                existing
            }
            None => {
                let amount = amount.unwrap_or(payment.amount_captured - payment.amount_refunded);
                let refund = RefundRecord {
                    id: id.clone(),
                    payment_id: payment.id.clone(),
                    merchant_id: p.key.merchant_id.clone(),
                    mode: p.key.mode,
                    amount,
                    status: "processing".into(),
                    created: now,
                    data: json!({ "currency": payment.currency, "reason": reason, "request_hash": idem.hash }),
                };
                let exceeds = || {
                    ApiError::invalid("refund_exceeds_captured", "Refunds would exceed the captured amount.")
                        .param("amount")
                };
                if amount < 1 {
                    return Err(exceeds());
                }
                match state.store.reserve_refund(refund.clone()).await? {
                    RefundReservation::Reserved => refund,
                    RefundReservation::Exceeds => return Err(exceeds()),
                    RefundReservation::NotRefundable => {
                        return Err(ApiError::invalid(
                            "payment_not_refundable",
                            "Only a succeeded (captured) payment can be refunded.",
                        )
                        .param("payment"));
                    }
                }
            }
        };
        if refund.status != "processing" {
            let body = refund_json(&refund).to_string();
            return finish_refund_answer(&state, refund, None, &idem, &mut guard, body).await;
        }
        // A retry first asks whether the first attempt's refund arrived (its answer may have been
        // lost); only a refund the processor never saw is sent (again: idempotent per refund id).
        let known = if retried { processor.refund_status(&payment.id, &refund.id).await } else { Ok(None) };
        let outcome = match known {
            Ok(Some(_)) => Ok(()),
            Ok(None) => processor.refund(&payment.id, &refund.id, refund.amount).await,
            Err(e) => Err(e),
        };
        let mut next = refund.clone();
        let event = match outcome {
            Ok(()) => {
                next.status = "succeeded".into();
                Some("refund.succeeded")
            }
            Err(ProcessorError::Timeout) => {
                // Unknown: the reservation stays; a retry with the same key asks again, even one
                // sent the moment this answer arrives (the claim, still held, is released before
                // the answer leaves).
                return Ok(respond(StatusCode::CREATED, refund_json(&refund).to_string()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "processor refused a refund");
                next.status = "failed".into();
                Some("refund.failed")
            }
        };
        let mut audit = state.event("refund.created", "success", &ctx, Some(&p.key));
        audit.detail = json!({ "refund": next.id, "payment": payment.id, "status": next.status });
        state.audit(audit);
        let event = match event {
            Some(t) => Some(new_event(&next.merchant_id, next.mode, t, refund_json(&next), now)?),
            None => None,
        };
        let body = refund_json(&next).to_string();
        finish_refund_answer(&state, next, event, &idem, &mut guard, body).await
    }
    .await;
    guard.answer(answer).await
}

async fn finish_refund_answer(
    state: &AppState,
    refund: RefundRecord,
    event: Option<EventRecord>,
    idem: &Idem,
    guard: &mut ClaimGuard,
    body: String,
) -> Result<Response, ApiError> {
    if event.is_none() {
        // Settled by an earlier attempt: answer with it; the claim stays held here and is
        // released before the answer leaves, so a later retry (even at once) finds the refund.
        return Ok(respond(StatusCode::CREATED, body));
    }
    let rec = IdempotencyRecord {
        scope: idem.scope.clone(),
        body_hash: idem.hash.clone(),
        status: 201,
        response: body.clone(),
        created: state.now(),
    };
    if state.store.finish_refund(refund, event, Some(rec)).await? {
        guard.complete();
    }
    Ok(respond(StatusCode::CREATED, body))
}

/// `GET /v1/refunds/{id}`.
pub async fn retrieve_refund(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ReadPayments).await?;
    if !valid_id("re", &id) {
        return Err(ApiError::not_found());
    }
    let refund = state.store.get_refund(&id, &p.key.merchant_id, p.key.mode).await?.ok_or_else(ApiError::not_found)?;
    Ok(respond(StatusCode::OK, refund_json(&refund).to_string()))
}

/// `GET /v1/refunds`.
pub async fn list_refunds(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ReadPayments).await?;
    let mut f =
        list_filter(&p, &q, &[("limit", "limit"), ("starting_after", "starting_after"), ("payment", "payment")])?;
    let limit = f.limit;
    f.limit += 1;
    let rows = state.store.list_refunds(f).await?;
    Ok(list_body(rows.iter().map(|r| (r.id.clone(), refund_json(r).to_string())).collect(), limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_have_their_iso_exponents() {
        assert_eq!(currency_exponent("usd"), Some(2));
        assert_eq!(currency_exponent("JPY"), Some(0));
        assert_eq!(currency_exponent("kwd"), Some(3));
        assert_eq!(currency_exponent("xyz"), None);
        assert_eq!(currency_exponent(""), None);
    }

    #[test]
    fn derived_ids_never_look_like_card_numbers_in_a_url() {
        for i in 0..2000 {
            let id = derived_id("pay", &format!("scope-{i}"));
            assert_eq!(id.len(), 4 + 28);
            assert!(!crate::text::url_has_card_number(&format!("/v1/payments/{id}")), "{id}");
            assert!(!id.bytes().skip(4).any(|b| b.is_ascii_digit()), "{id}");
        }
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(derived_id("pay", "k:a"), derived_id("pay", "k:a"));
        assert_ne!(derived_id("pay", "k:a"), derived_id("pay", "k:b"));
        assert!(valid_id("pay", &derived_id("pay", "k:a")));
        assert!(!valid_id("pay", "re_abc"));
    }
}
