//! Tokenization: re-validate, `POST /v1/tokens` on the frame's own origin with `window.fetch`,
//! retry with exponential backoff, zeroize, answer the parent.
//!
//! The request body is the only place the PAN and CVC leave Rust memory (into the browser's
//! fetch); the Rust copies are zeroized as soon as the request has been handed over. The JS
//! string the body becomes cannot be wiped from Rust and is left to the garbage collector.

#[allow(unused_imports)]
use crate::prelude::*;

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, ReferrerPolicy, RequestCache, RequestCredentials, RequestInit, Response};

use crate::dom::{Shared, today, with_frame};
use crate::jsread::{Bad, Obj};
use crate::model::Model;
use crate::protocol::{CardMeta, ErrorInfo, Field, FieldOptions, FrameEvent};
use crate::split::{COLLECT_TIMEOUT_MS, Collect, Peer};

/// Delays before the retries: 0.3 s, 0.6 s, 1.2 s, 2.4 s (five attempts in all).
const BACKOFF_MS: [i32; 4] = [300, 600, 1200, 2400];

/// Longest `Retry-After` honoured, in milliseconds.
const MAX_RETRY_AFTER_MS: i32 = 10_000;

/// What the frame reads of the vault's token (`docs/http-api.md`).
struct VaultToken {
    id: String,
    card: CardMeta,
    expires_at: Timestamp,
}

impl VaultToken {
    fn read(value: JsValue) -> Result<VaultToken, Bad> {
        let o = Obj::new(value)?;
        let card = o.opt_object("card")?.ok_or(Bad)?;
        let expires_at = o.value("expires_at").ok_or(Bad)?;
        let expires_at = match (expires_at.as_f64(), expires_at.as_string()) {
            (Some(seconds), _) => Timestamp::Seconds(seconds),
            (None, Some(text)) => Timestamp::Text(text),
            (None, None) => return Err(Bad),
        };
        let month = card.opt_uint("exp_month", u32::from(u8::MAX))?.ok_or(Bad)?;
        let year = card.opt_uint("exp_year", u32::from(u16::MAX))?.ok_or(Bad)?;
        Ok(VaultToken {
            id: o.string("id")?,
            card: CardMeta {
                brand: card.string("brand")?,
                last4: card.string("last4")?,
                exp_month: u8::try_from(month).map_err(|_| Bad)?,
                exp_year: u16::try_from(year).map_err(|_| Bad)?,
            },
            expires_at,
        })
    }
}

/// The vault's error body: `{"error": {code?, message?, param?}}`.
struct VaultError {
    code: Option<String>,
    message: Option<String>,
    param: Option<String>,
}

impl VaultError {
    fn read(value: JsValue) -> Result<VaultError, Bad> {
        let error = Obj::new(value)?.opt_object("error")?.ok_or(Bad)?;
        Ok(VaultError {
            code: error.opt_string("code")?,
            message: error.opt_string("message")?,
            param: error.opt_string("param")?,
        })
    }
}

enum Failure {
    /// The card data failed validation in the frame.
    Invalid(Field, &'static str),
    /// The vault or the network failed; code and optional field.
    Other(String, Option<Field>, Option<String>),
}

/// Handles one `tokenize` command end to end and answers with `tokenized` or
/// `tokenizeFailed` carrying the same `id`. Split fields: only the number frame (the leader)
/// tokenizes; it first collects the other fields' values from their frames (`fields`: the
/// optional ones the card has), then goes on exactly as the single frame.
pub(crate) async fn tokenize(frame: Shared, id: String, fields: Option<FieldOptions>) {
    let split = {
        let Ok(mut fr) = frame.try_borrow_mut() else {
            return;
        };
        if fr.tokenizing {
            fail(&fr, id, Failure::Other("tokenize_in_progress".into(), None, None));
            return;
        }
        match fr.split_field() {
            None => false,
            Some(Field::Number) => {
                fr.tokenizing = true;
                let nonce = new_idempotency_key(&fr.window);
                let collect = Collect::new(nonce, fr.model.value(Field::Number), fields.unwrap_or_default(), today());
                fr.broadcast(&Peer::Collect { nonce: collect.nonce().to_owned() });
                fr.collect = Some(collect);
                true
            }
            // The page asks the leader; another field frame has no card to tokenize.
            Some(_) => return,
        }
    };
    if split {
        let Some(window) = frame.try_borrow().ok().map(|fr| fr.window.clone()) else { return };
        let mut waited = 0;
        while waited < COLLECT_TIMEOUT_MS {
            if frame.try_borrow().ok().is_some_and(|fr| fr.collect.as_ref().is_some_and(|c| c.missing().is_none())) {
                break;
            }
            sleep(&window, 20).await;
            waited += 20;
        }
    }
    // Under a short borrow: validate and build the request.
    let prepared = {
        let Ok(mut fr) = frame.try_borrow_mut() else {
            return;
        };
        fr.tokenizing = false;
        fr.model.set_today(today());
        fr.model.mark_submitted();
        fr.render();
        let body = match fr.collect.take() {
            Some(collect) => match collect.missing() {
                Some(field) => Err((field, crate::split::incomplete(field))),
                None => request_body(collect.model()),
            },
            None => request_body(&fr.model),
        };
        match body {
            Err(invalid) => Err(invalid),
            Ok(body) => {
                // Split fields: the kept key belongs to the kept body only.
                if split && fr.kept_body.as_ref() != Some(&body) {
                    fr.idempotency_key = None;
                }
                let key = match fr.idempotency_key.clone() {
                    Some(key) => key,
                    None => new_idempotency_key(&fr.window),
                };
                fr.idempotency_key = Some(key.clone());
                fr.kept_body = None;
                fr.tokenizing = true;
                Ok((body, key, fr.key.clone(), fr.window.clone()))
            }
        }
    };
    let (body, idempotency_key, publishable_key, window) = match prepared {
        Ok(p) => p,
        Err((field, code)) => {
            with_frame(&frame, |fr| {
                fail(fr, id, Failure::Invalid(field, code));
                fr.broadcast(&Peer::Failed { field: Some(field) });
                fr.model.enabled(field).then_some(field)
            });
            return;
        }
    };

    let mut attempt = 0;
    let outcome = loop {
        let result = match build_request(&body, &idempotency_key, &publishable_key) {
            Some(request) => fetch(&window, &request).await,
            None => None,
        };
        let retry_after = match &result {
            None => Some(0),
            Some(r) if matches!(r.status(), 409 | 429 | 502 | 503 | 504) => Some(retry_after_ms(r)),
            Some(_) => None,
        };
        match (retry_after, BACKOFF_MS.get(attempt)) {
            (Some(hint), Some(&backoff)) => {
                sleep(&window, backoff.max(hint)).await;
                attempt += 1;
            }
            _ => break result,
        }
    };
    // Zeroizing: the PAN and CVC copies are wiped here (split fields after a network failure:
    // kept, zeroized, to recognise the merchant's retry of the same card; see `kept_body`).
    let keep = split && outcome.as_ref().is_none_or(|r| r.status() == 429);

    let answer = match outcome {
        None => Err(Failure::Other("network_error".into(), None, None)),
        Some(response) if response.ok() => match json(&response).await {
            Some(value) => match VaultToken::read(value) {
                Ok(token) => Ok(token),
                Err(_) => Err(Failure::Other("processing_error".into(), None, None)),
            },
            None => Err(Failure::Other("processing_error".into(), None, None)),
        },
        Some(response) => Err(vault_failure(&response).await),
    };
    with_frame(&frame, |fr| {
        fr.tokenizing = false;
        fr.kept_body = keep.then_some(body);
        match answer {
            Ok(token) => {
                fr.idempotency_key = None;
                // Before answering: a `tokenize` the page sends on `tokenized` finds no CVC
                // (split fields: the CVC frame forgets it on `tokenized`).
                fr.forget_cvc();
                fr.broadcast(&Peer::Tokenized);
                let event = FrameEvent::Tokenized {
                    id,
                    token: token.id,
                    card: token.card,
                    expires_at: rfc3339(&token.expires_at),
                };
                fr.post(&event);
                None
            }
            Err(failure) => {
                // A definitive answer ends this submission; network trouble keeps the key
                // so that the merchant's retry is recognised by the vault.
                if !matches!(&failure, Failure::Other(code, _, _) if code == "network_error" || code == "rate_limited")
                {
                    fr.idempotency_key = None;
                }
                let field = match &failure {
                    Failure::Invalid(f, _) | Failure::Other(_, Some(f), _) => Some(*f),
                    Failure::Other(_, None, _) => None,
                };
                fail(fr, id, failure);
                if field.is_some() {
                    fr.broadcast(&Peer::Failed { field });
                }
                field.filter(|f| fr.model.enabled(*f))
            }
        }
    });
}

/// Validates the card with the card crate and builds the `POST /v1/tokens` body (zeroized on
/// drop); the first invalid field with its code otherwise.
fn request_body(model: &Model) -> Result<zeroize::Zeroizing<String>, (Field, &'static str)> {
    let card = model.card()?;
    // `card` (its Pan and Cvc) zeroizes when it goes out of scope, right after this.
    Ok(model.token_request_body(&card))
}

fn fail(fr: &crate::dom::Frame, id: String, failure: Failure) {
    let error = match failure {
        Failure::Invalid(field, code) => {
            ErrorInfo { field: Some(field), code: code.to_owned(), message: fr.message(code) }
        }
        Failure::Other(code, field, vault_message) => {
            let known = crate::locale::ERROR_CODES.contains(&code.as_str()) || fr.overrides(&code);
            let message = match vault_message {
                Some(m) if !known => m,
                _ => fr.message(&code),
            };
            ErrorInfo { field, code, message }
        }
    };
    fr.post(&FrameEvent::TokenizeFailed { id, error });
}

/// `window.fetch(request)`; `None` on a network error. (Not gloo-net: its error conversion links
/// `JsValue`'s `Debug` and a `debugString` JS helper, 1.3 KB gzip of WASM and glue.)
async fn fetch(window: &web_sys::Window, request: &web_sys::Request) -> Option<Response> {
    JsFuture::from(window.fetch_with_request(request)).await.ok()?.dyn_into::<Response>().ok()
}

/// `GET url` on the frame's own origin, the answer parsed as JSON; `None` on any failure.
pub(crate) async fn get_json(window: &web_sys::Window, url: &str) -> Option<JsValue> {
    let response = JsFuture::from(window.fetch_with_str(url)).await.ok()?.dyn_into::<Response>().ok()?;
    if !response.ok() {
        return None;
    }
    json(&response).await
}

/// The `fetch` request, built with web-sys.
fn build_request(body: &str, idempotency_key: &str, publishable_key: &str) -> Option<web_sys::Request> {
    let headers = Headers::new().ok()?;
    headers.set("Authorization", &["Bearer ", publishable_key].concat()).ok()?;
    headers.set("Content-Type", "application/json").ok()?;
    headers.set("Idempotency-Key", idempotency_key).ok()?;
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(body));
    init.set_credentials(RequestCredentials::Omit);
    init.set_cache(RequestCache::NoStore);
    init.set_referrer_policy(ReferrerPolicy::NoReferrer);
    web_sys::Request::new_with_str_and_init("/v1/tokens", &init).ok()
}

/// The response body parsed as JSON (`None` when it is not JSON).
async fn json(response: &Response) -> Option<JsValue> {
    JsFuture::from(response.json().ok()?).await.ok()
}

async fn vault_failure(response: &Response) -> Failure {
    let status = response.status();
    let parsed = match json(response).await {
        Some(v) => VaultError::read(v).ok(),
        None => None,
    };
    let fallback = match status {
        429 => "rate_limited",
        401 | 403 => "authentication_error",
        _ => "processing_error",
    };
    match parsed {
        Some(error) => {
            let field = error.param.as_deref().and_then(param_field);
            // Never forward a vault message that could echo input; codes are enough.
            let code = error.code.unwrap_or_else(|| fallback.to_owned());
            let message = error.message.filter(|m| !m.bytes().any(|b| b.is_ascii_digit()));
            Failure::Other(code, field, message)
        }
        None => Failure::Other(fallback.into(), None, None),
    }
}

/// `card.number` / `number` / `exp_month` … → the frame field.
fn param_field(param: &str) -> Option<Field> {
    // By bytes, not `str::rsplit`: its `char` searcher costs WASM.
    let start = param.bytes().rposition(|b| b == b'.' || b == b'[').map_or(0, |i| i + 1);
    let name = param.get(start..).unwrap_or_default();
    let end = name.bytes().rposition(|b| b != b']').map_or(0, |i| i + 1);
    let name = name.get(..end).unwrap_or_default();
    match name {
        "number" => Some(Field::Number),
        "exp_month" | "exp_year" | "expiry" => Some(Field::Expiry),
        "cvc" => Some(Field::Cvc),
        "name" => Some(Field::Name),
        "postal_code" => Some(Field::PostalCode),
        _ => None,
    }
}

fn retry_after_ms(response: &Response) -> i32 {
    response
        .headers()
        .get("Retry-After")
        .ok()
        .flatten()
        .and_then(|v| seconds(&v))
        .map_or(0, |s| i32::try_from(s.saturating_mul(1000)).unwrap_or(MAX_RETRY_AFTER_MS).clamp(0, MAX_RETRY_AFTER_MS))
}

/// `Retry-After` in seconds: ASCII digits, surrounding white space ignored (an HTTP date is not
/// read; `None`, as for anything else). By hand, not `str::parse`: the generic integer parser
/// costs WASM.
fn seconds(value: &str) -> Option<u32> {
    let digits = value.trim();
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.bytes().fold(0, |n, b| n * 10 + u32::from(b - b'0')))
}

/// The vault's `expires_at`: Unix seconds (or already a string).
enum Timestamp {
    Seconds(f64),
    Text(String),
}

/// RFC 3339 text of a [`Timestamp`].
fn rfc3339(value: &Timestamp) -> String {
    match value {
        Timestamp::Text(s) => s.clone(),
        Timestamp::Seconds(secs) => {
            let ms = if *secs > 1e11 { *secs } else { secs * 1000.0 };
            String::from(js_sys::Date::new(&JsValue::from_f64(ms)).to_iso_string())
        }
    }
}

fn new_idempotency_key(window: &web_sys::Window) -> String {
    window.crypto().map(|c| c.random_uuid()).unwrap_or_else(|_| hex(js_sys::Date::now() as u64))
}

/// Lower-case hex without leading zeros (no `format!`: it links the formatting machinery).
fn hex(mut n: u64) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(16);
    loop {
        out.push(DIGITS.get((n & 15) as usize).copied().unwrap_or(b'0'));
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.iter().rev().map(|&b| char::from(b)).collect()
}

async fn sleep(window: &web_sys::Window, ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}
