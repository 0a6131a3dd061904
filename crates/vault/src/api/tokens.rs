//! `/v1/tokens…`: create (publishable key, from an allowed origin), retrieve metadata, delete,
//! detokenize (secret key with the detokenize permission, from an allowlisted IP).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::{authorization, json_response, principal, read_body, require_json};
use crate::clock::year_month;
use crate::crypto::Binding;
use crate::keys::{self, KeyKind, Permission};
use crate::secret::{SecretBytes, SecretString};
use crate::state::{AppState, Principal, RequestCtx};
use crate::store::{CreateOutcome, IdempotencyRecord, TokenRecord};

/// Maximum length of an `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The request's idempotency scope and body hash, if it sent an `Idempotency-Key` (400 if the
/// header is malformed). The key is kept only as a keyed hash: a card number sent as the key
/// never reaches the disk.
pub(crate) fn idempotency_scope(
    state: &AppState,
    p: &Principal,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<(String, String)>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else { return Ok(None) };
    let key = v
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY && k.bytes().all(|b| (0x21..0x7f).contains(&b)))
        .ok_or_else(|| {
            ApiError::invalid("invalid_idempotency_key", "Idempotency-Key must be 1–255 visible ASCII characters.")
        })?;
    let scope = state.master.idempotency_scope(&p.key.id, key);
    let hash = state.master.hash_body(&scope, body);
    Ok(Some((scope, hash)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    card: Option<CardInput>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CardInput {
    number: Option<SecretString>,
    exp_month: Option<NumberOrString>,
    exp_year: Option<NumberOrString>,
    cvc: Option<SecretString>,
    name: Option<SecretString>,
    postal_code: Option<SecretString>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(u64),
    Text(String),
}

impl NumberOrString {
    fn value(&self) -> Option<u64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(s) if !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
            Self::Text(_) => None,
        }
    }
}

/// What is encrypted under the data key (besides the CVC, which is separate so that it can be
/// destroyed on its own).
#[derive(Serialize, Deserialize)]
struct CardPayload<'a> {
    number: &'a str,
    exp_month: u8,
    exp_year: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postal_code: Option<&'a str>,
}

/// A token's decrypted card (zeroized on drop).
#[derive(Deserialize)]
pub(crate) struct CardPayloadOwned {
    /// The card number.
    pub(crate) number: SecretString,
    /// Expiry month.
    pub(crate) exp_month: u8,
    /// Expiry year.
    pub(crate) exp_year: u16,
    /// Cardholder name.
    pub(crate) name: Option<SecretString>,
    /// Billing postal code (absent in payloads written before it was collected).
    #[serde(default)]
    pub(crate) postal_code: Option<SecretString>,
}

/// The public token object. The keyed fingerprint goes only to secret keys: with a card's BIN
/// and last 4 (public on the token) a fingerprint narrows the PAN to ~10⁵ candidates, so a
/// publishable key (public by design) must never see it.
fn token_json(t: &TokenRecord, with_fingerprint: bool) -> serde_json::Value {
    let mut v = json!({
        "id": t.id,
        "object": "token",
        "card": {
            "brand": t.brand,
            "last4": t.last4,
            "exp_month": t.exp_month,
            "exp_year": t.exp_year,
            "fingerprint": t.fingerprint,
        },
        "created": t.created,
        "expires_at": t.expires_at,
        "livemode": t.mode == crate::keys::Mode::Live,
    });
    if !with_fingerprint {
        if let Some(card) = v.get_mut("card").and_then(serde_json::Value::as_object_mut) {
            card.remove("fingerprint");
        }
    }
    v
}

/// `tok_` + 6 base62 characters of the creation second + 18 random base62 characters
/// (≈107 bits). The time prefix keeps index inserts local (tokens are created in time order);
/// it reveals nothing the token's `created` field does not ([`crate::crypto::time_ordered_base62`]).
fn new_token_id(now: i64) -> Result<String, crate::crypto::CryptoError> {
    Ok(format!("tok_{}", crate::crypto::time_ordered_base62(u64::try_from(now).unwrap_or(0), 6, 24)?))
}

pub(crate) fn valid_token_id(id: &str) -> bool {
    id.strip_prefix("tok_").is_some_and(|r| r.len() == 24 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn cors_headers(origin: &str) -> Vec<(HeaderName, HeaderValue)> {
    let mut h = vec![(header::VARY, HeaderValue::from_static("Origin"))];
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.push((header::ACCESS_CONTROL_ALLOW_ORIGIN, v));
        h.push((
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(
                "Request-Id, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Idempotent-Replayed",
            ),
        ));
    }
    h
}

/// The request's `Origin`, normalised like stored origins (lower case, default port dropped);
/// `None` if absent or not an origin.
fn origin_of(headers: &HeaderMap) -> Option<String> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).and_then(|o| keys::parse_origin(o).ok())
}

/// Whether some active publishable key (or the vault itself) allows `origin`.
fn origin_known(state: &AppState, origin: &str) -> bool {
    state.is_public_origin(origin) || state.api_keys.get().all_origins.contains(origin)
}

/// `OPTIONS /v1/tokens`: CORS preflight. The preflight carries no API key, so any origin
/// allowed by some active publishable key (or the vault's own origin) passes; the real request
/// is then checked against its key's own origins.
pub async fn preflight(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(origin) = origin_of(&headers).filter(|o| origin_known(&state, o)) else {
        return ApiError::forbidden("origin_not_allowed", "This origin may not call this API.").into_response();
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    for (name, value) in cors_headers(&origin) {
        h.insert(name, value);
    }
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, Idempotency-Key"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

/// `POST /v1/tokens`. CORS headers go only to an origin the presented key allows (or the
/// vault's own origin), success or error alike; an unauthenticated request gets none.
pub async fn create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let origin = origin_of(&headers);
    let principal = state.authenticate(authorization(&headers), &ctx);
    let cors_origin = origin.as_deref().filter(|o| {
        state.is_public_origin(o)
            || principal.as_ref().is_ok_and(|p| p.key.kind == KeyKind::Publishable && p.key.origin_allowed(o))
    });
    let cors_origin = cors_origin.map(str::to_owned);
    let result = match principal {
        Ok(p) => create_inner(&state, &ctx, &p, &headers, origin.as_deref(), body).await,
        Err(e) => Err(e),
    };
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.headers_mut().insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(o) = cors_origin {
        for (name, value) in cors_headers(&o) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

async fn create_inner(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    headers: &HeaderMap,
    origin: Option<&str>,
    body: Body,
) -> Result<Response, ApiError> {
    if p.key.kind == KeyKind::Publishable {
        let allowed = origin.is_some_and(|o| p.key.origin_allowed(o) || state.is_public_origin(o));
        if !allowed {
            let raw = headers.get(header::ORIGIN).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let mut e = state.event("origin.denied", "denied", ctx, Some(&p.key));
            e.detail = json!({ "origin": raw.map(|o| crate::text::for_log(&o, 100)) });
            state.audit(e);
            return Err(ApiError::forbidden("origin_not_allowed", "This origin may not use this publishable key."));
        }
    }
    state.authorize(p, Permission::CreateToken).await?;
    require_json(headers)?;
    let body = read_body(state, headers, body).await?;

    let idempotency = idempotency_scope(state, p, headers, body.expose())?;
    let with_fingerprint = p.key.kind == KeyKind::Secret;
    let mut claim = match &idempotency {
        None => None,
        Some((scope, hash)) => match state.claim_idempotency(scope, hash).await? {
            Ok(guard) => Some(guard),
            Err(stored) => return replay(&stored, hash, with_fingerprint),
        },
    };
    let answer = async {
        let request: CreateRequest = serde_json::from_slice(body.expose())
            .map_err(|_| ApiError::invalid("invalid_json", "The request body is not valid JSON for this endpoint."))?;
        drop(body);
        let card_in = request.card.ok_or_else(|| missing("card"))?;
        let number = card_in.number.as_ref().ok_or_else(|| missing("card.number"))?;
        let exp_month = card_in.exp_month.as_ref().ok_or_else(|| missing("card.exp_month"))?;
        let exp_year = card_in.exp_year.as_ref().ok_or_else(|| missing("card.exp_year"))?;
        let cvc = card_in.cvc.as_ref().ok_or_else(|| missing("card.cvc"))?;
        let exp_month =
            exp_month.value().and_then(|m| u8::try_from(m).ok()).ok_or_else(|| invalid_param("card.exp_month"))?;
        let exp_year =
            exp_year.value().and_then(|y| u16::try_from(y).ok()).ok_or_else(|| invalid_param("card.exp_year"))?;
        let name = card_in.name.as_ref().map(SecretString::expose).filter(|n| !n.trim().is_empty());
        if name.is_some_and(|n| n.chars().count() > 200 || n.chars().any(char::is_control)) {
            return Err(invalid_param("card.name"));
        }
        if name.is_some_and(crate::text::looks_like_card_number) {
            return Err(ApiError::card_number_in_text("card.name"));
        }
        let postal_code = card_in.postal_code.as_ref().map(|p| p.expose().trim()).filter(|p| !p.is_empty());
        if postal_code.is_some_and(|p| !valid_postal_code(p)) {
            return Err(invalid_param("card.postal_code"));
        }
        if postal_code.is_some_and(crate::text::looks_like_card_number) {
            return Err(ApiError::card_number_in_text("card.postal_code"));
        }

        let now = state.now();
        let (year, month) = year_month(now);
        let today =
            card::YearMonth::new(u16::try_from(year).unwrap_or(9999), month).map_err(|_| ApiError::internal())?;
        let card =
            card::Card::validate(number.expose(), exp_month, exp_year, Some(cvc.expose()), today).map_err(|e| {
                let param = match (e.field, e.reason) {
                    (card::CardField::Number, _) => "card.number",
                    (card::CardField::Cvc, _) => "card.cvc",
                    (card::CardField::Expiry, card::Reason::InvalidExpiryMonth) => "card.exp_month",
                    (card::CardField::Expiry, _) => "card.exp_year",
                };
                ApiError::card(e.code(), param)
            })?;
        if p.key.mode == crate::keys::Mode::Test && !card::is_test_card(card.pan()) {
            return Err(ApiError::live_card_in_test_mode());
        }
        if p.key.kind == KeyKind::Publishable {
            state.charge_shared(p).await?;
        }

        let merchant = p.key.merchant_id.as_str();
        let mode = p.key.mode;
        let id = new_token_id(now)?;
        let data_key = state.keyring.current(merchant, mode)?;
        let fingerprint = state.keyring.fingerprint(merchant, mode)?.fingerprint(card.pan().expose());
        let binding = Binding { token_id: &id, merchant, mode: mode.as_str(), field: "card" };
        let payload = CardPayload {
            number: card.pan().expose(),
            exp_month: card.expiry().month(),
            exp_year: card.expiry().year(),
            name,
            postal_code,
        };
        let plain = SecretBytes::new(serde_json::to_vec(&payload).map_err(|_| ApiError::internal())?);
        let card_ct = data_key.seal(plain.expose(), &binding)?;
        drop(plain);
        let cvc_ct = match card.cvc() {
            Some(c) => Some(data_key.seal(c.expose().as_bytes(), &Binding { field: "cvc", ..binding })?),
            None => None,
        };
        let token = TokenRecord {
            id: id.clone(),
            merchant_id: merchant.to_owned(),
            mode,
            brand: card.brand().id().to_owned(),
            last4: card.pan().last4().to_owned(),
            exp_month: card.expiry().month(),
            exp_year: card.expiry().year(),
            fingerprint,
            key_version: data_key.version(),
            cvc_expires_at: cvc_ct.as_ref().map(|_| now + state.config.cvc_ttl_secs),
            card_ct,
            cvc_ct,
            created: now,
            expires_at: now + state.config.token_ttl_secs,
        };
        drop(card);
        let response_json = token_json(&token, with_fingerprint);
        let response_text = response_json.to_string();
        let idem_record = idempotency.as_ref().map(|(scope, hash)| IdempotencyRecord {
            scope: scope.clone(),
            body_hash: hash.clone(),
            status: 201,
            response: response_text.clone(),
            created: now,
        });
        let mut audit = state.event("token.created", "success", ctx, Some(&p.key));
        audit.detail = json!({ "token_ref": state.master.token_ref(&id), "brand": token.brand });
        let audit_copy = audit.clone();
        let outcome = state.store.create_token(token, idem_record, audit).await?;
        if let Some(claim) = claim.as_mut() {
            claim.complete();
        }
        match outcome {
            CreateOutcome::Created => {
                state.log_audit(&audit_copy);
                Ok((StatusCode::CREATED, [(header::CONTENT_TYPE, "application/json")], response_text).into_response())
            }
            CreateOutcome::IdempotencyExists(stored) => {
                let hash = idempotency.as_ref().map(|(_, h)| h.as_str()).unwrap_or_default();
                replay(&stored, hash, with_fingerprint)
            }
        }
    }
    .await;
    // A refused request (validation, a store error) releases its claim before it answers.
    match claim {
        Some(claim) => claim.answer(answer).await,
        None => answer,
    }
}

pub(crate) fn replay(
    stored: &IdempotencyRecord,
    body_hash: &str,
    with_fingerprint: bool,
) -> Result<Response, ApiError> {
    if !bool::from(stored.body_hash.as_bytes().ct_eq(body_hash.as_bytes())) {
        return Err(ApiError::idempotency_reused());
    }
    let status = StatusCode::from_u16(stored.status).map_err(|_| ApiError::internal())?;
    // Records stored before fingerprints were withheld from publishable keys still hold one.
    let mut body = stored.response.clone();
    if !with_fingerprint {
        if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&body) {
            if let Some(card) = v.get_mut("card").and_then(serde_json::Value::as_object_mut) {
                if card.remove("fingerprint").is_some() {
                    body = v.to_string();
                }
            }
        }
    }
    Ok((
        status,
        [(header::CONTENT_TYPE, "application/json"), (HeaderName::from_static("idempotent-replayed"), "true")],
        body,
    )
        .into_response())
}

fn missing(param: &'static str) -> ApiError {
    ApiError::invalid("parameter_missing", "A required parameter is missing.").param(param)
}

/// A billing postal code as the frame accepts it, a little wider: at most 16 characters, ASCII
/// letters, digits, spaces and hyphens, at least one letter or digit.
fn valid_postal_code(p: &str) -> bool {
    p.len() <= 16
        && p.bytes().any(|b| b.is_ascii_alphanumeric())
        && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-')
}

fn invalid_param(param: &'static str) -> ApiError {
    ApiError::invalid("parameter_invalid", "A parameter has an invalid value.").param(param)
}

fn audit_token(state: &AppState, ctx: &RequestCtx, p: &Principal, event: &str, id: &str, found: bool) {
    let mut e = state.event(event, if found { "success" } else { "failure" }, ctx, Some(&p.key));
    let token_ref = if valid_token_id(id) { state.master.token_ref(id) } else { "(malformed)".to_owned() };
    e.detail = json!({ "token_ref": token_ref, "found": found });
    state.audit(e);
}

/// What a token's ciphertexts are bound to (`field` "card"; the CVC's is the same with "cvc").
fn card_binding(token: &TokenRecord) -> Binding<'_> {
    Binding { token_id: &token.id, merchant: &token.merchant_id, mode: token.mode.as_str(), field: "card" }
}

/// Decrypts and decodes a token's card payload (wiped on drop).
fn open_payload(key: &crate::crypto::DataKey, token: &TokenRecord) -> Result<CardPayloadOwned, ApiError> {
    let plain = key.open(&token.card_ct, &card_binding(token))?;
    serde_json::from_slice(plain.expose()).map_err(|_| ApiError::internal())
}

/// Decrypts a token's card and, if it still has one, its CVC. Destroys nothing (a key version
/// rotated in by another process is loaded on demand).
pub(crate) async fn open_card(
    state: &AppState,
    token: &TokenRecord,
) -> Result<(CardPayloadOwned, Option<SecretBytes>), ApiError> {
    let key = state.data_key(&token.merchant_id, token.mode, token.key_version).await?;
    let payload = open_payload(&key, token)?;
    let cvc = match &token.cvc_ct {
        Some(ct) => Some(key.open(ct, &Binding { field: "cvc", ..card_binding(token) })?),
        None => None,
    };
    Ok((payload, cvc))
}

/// `GET /v1/tokens/{id}`: metadata, and for secret keys the billing postal code.
pub async fn retrieve(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ReadToken).await?;
    let token = if valid_token_id(&id) {
        state.store.get_token(&id, &p.key.merchant_id, p.key.mode, state.now()).await?
    } else {
        None
    };
    audit_token(&state, &ctx, &p, "token.read", &id, token.is_some());
    let token = token.ok_or_else(ApiError::not_found)?;
    let mut body = token_json(&token, true);
    // The billing postal code lives in the encrypted card payload (re-encrypted with it on key
    // rotation); only it is taken out, the payload is wiped on drop.
    let key = state.data_key(&token.merchant_id, token.mode, token.key_version).await?;
    let payload = open_payload(&key, &token)?;
    if let Some(card) = body.get_mut("card").and_then(serde_json::Value::as_object_mut) {
        let postal = payload.postal_code.as_ref().map(|p| p.expose().to_owned());
        card.insert("postal_code".to_owned(), postal.into());
    }
    Ok(Json(body).into_response())
}

/// `DELETE /v1/tokens/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::DeleteToken).await?;
    let deleted =
        valid_token_id(&id) && state.store.delete_token(&id, &p.key.merchant_id, p.key.mode, state.now()).await?;
    audit_token(&state, &ctx, &p, "token.deleted", &id, deleted);
    if !deleted {
        return Err(ApiError::not_found());
    }
    Ok(json_response(StatusCode::OK, &json!({ "id": id, "object": "token", "deleted": true })))
}

#[derive(Serialize)]
struct DetokenizedCard<'a> {
    brand: &'a str,
    last4: &'a str,
    number: &'a str,
    exp_month: u8,
    exp_year: u16,
    name: Option<&'a str>,
    postal_code: Option<&'a str>,
    cvc: Option<&'a str>,
}

#[derive(Serialize)]
struct Detokenized<'a> {
    id: &'a str,
    object: &'static str,
    card: DetokenizedCard<'a>,
    cvc_returned: bool,
    livemode: bool,
}

/// `POST /v1/tokens/{id}/detokenize`: the full card; the CVC at most once.
pub async fn detokenize(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::Detokenize).await?;
    let token = if valid_token_id(&id) {
        state.store.get_for_detokenize(&id, &p.key.merchant_id, p.key.mode, state.now()).await?
    } else {
        None
    };
    let Some(token) = token else {
        audit_token(&state, &ctx, &p, "token.detokenized", &id, false);
        return Err(ApiError::not_found());
    };
    // Everything that can fail happens before the CVC is destroyed: decrypting (a key version
    // rotated in by another process is loaded on demand), decoding, building the answer.
    let (payload, cvc) = open_card(&state, &token).await?;
    let cvc_text = match &cvc {
        Some(c) => Some(std::str::from_utf8(c.expose()).map_err(|_| ApiError::internal())?),
        None => None,
    };
    let render = |cvc: Option<&str>| {
        let body = Detokenized {
            id: &token.id,
            object: "detokenized_card",
            card: DetokenizedCard {
                brand: &token.brand,
                last4: &token.last4,
                number: payload.number.expose(),
                exp_month: payload.exp_month,
                exp_year: payload.exp_year,
                name: payload.name.as_ref().map(SecretString::expose),
                postal_code: payload.postal_code.as_ref().map(SecretString::expose),
                cvc,
            },
            cvc_returned: cvc.is_some(),
            livemode: token.mode == crate::keys::Mode::Live,
        };
        serde_json::to_vec(&body).map(SecretBytes::new).map_err(|_| ApiError::internal())
    };
    let with_cvc = render(cvc_text)?;
    // The answer carrying the CVC exists: now destroy it. Of concurrent callers exactly one
    // wins and sends it; the others answer without it.
    let (bytes, returned) = if cvc_text.is_some() && state.store.destroy_cvc(&token.id).await? {
        (with_cvc, true)
    } else {
        drop(with_cvc);
        (render(None)?, false)
    };
    let mut e = state.event("token.detokenized", "success", &ctx, Some(&p.key));
    e.detail = json!({ "token_ref": state.master.token_ref(&token.id), "cvc_returned": returned });
    state.audit_durable(e).await?;
    crate::devspace::note_detokenize(&state, &p.key);
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes.expose().to_vec()).into_response())
}
