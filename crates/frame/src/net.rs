//! Tokenization: re-validate, `POST /v1/tokens` on the frame's own origin with `window.fetch`,
//! retry with exponential backoff, zeroize, answer the parent. Also the frame's two ways to wait
//! ([`then`] a promise, [`after`] a delay), with callbacks: the frame has no futures.
//!
//! The request body is the only place the PAN and CVC leave Rust memory (into the browser's
//! fetch); the Rust copies are zeroized as soon as the request has been handed over. The JS
//! string the body becomes cannot be wiped from Rust and is left to the garbage collector.

#[allow(unused_imports)]
use crate::prelude::*;

use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Headers, ReferrerPolicy, RequestCache, RequestCredentials, RequestInit, Response};

use crate::dom::{Shared, today, with_frame};
use crate::js::AsDom;
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
///
/// Callbacks, not a future: each wait (the collection, the request, a backoff, the answer's
/// body) hands the rest of the work to [`then`] or [`after`], so the WASM has no executor, no
/// task queue and no state machine with drop code per await (BENCHMARKS.md, third size pass).
pub(crate) fn tokenize(frame: Shared, id: String, fields: Option<FieldOptions>) {
    let split = {
        let Ok(mut fr) = frame.try_borrow_mut() else {
            return;
        };
        if fr.tokenizing {
            fail(&fr, id, Failure::Other("tokenize_in_progress".into(), None, None));
            return;
        }
        match fr.split_field() {
            None => None,
            Some(Field::Number) => {
                fr.tokenizing = true;
                let nonce = new_idempotency_key(&fr.window);
                let collect = Collect::new(nonce, fr.model.value(Field::Number), fields.unwrap_or_default(), today());
                fr.broadcast(&Peer::Collect { nonce: collect.nonce().to_owned() });
                fr.collect = Some(collect);
                Some(fr.window.clone())
            }
            // The page asks the leader; another field frame has no card to tokenize.
            Some(_) => return,
        }
    };
    match split {
        Some(window) => collect(frame, id, window, 0),
        None => submit(frame, id, false),
    }
}

/// Split fields: waits (20 ms at a time, [`COLLECT_TIMEOUT_MS`] at most) until every field
/// frame answered the leader's `collect`, then submits.
fn collect(frame: Shared, id: String, window: web_sys::Window, waited: i32) {
    let done = frame.try_borrow().ok().is_some_and(|fr| fr.collect.as_ref().is_some_and(|c| c.missing().is_none()));
    if done || waited >= COLLECT_TIMEOUT_MS {
        submit(frame, id, true);
    } else {
        let timer = window.clone();
        after(&timer, 20, Box::new(move |_| collect(frame, id, window, waited + 20)));
    }
}

/// One submission on its way: what every attempt sends, and what the answer needs.
struct Submission {
    frame: Shared,
    id: String,
    split: bool,
    /// The request body, with the PAN and CVC (zeroized on drop).
    body: zeroize::Zeroizing<String>,
    idempotency_key: String,
    publishable_key: String,
    window: web_sys::Window,
}

/// Validates and builds the request under a short borrow, then sends the first attempt.
fn submit(frame: Shared, id: String, split: bool) {
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
    match prepared {
        Ok((body, idempotency_key, publishable_key, window)) => {
            let submission = Submission { frame, id, split, body, idempotency_key, publishable_key, window };
            attempt(submission, 0);
        }
        Err((field, code)) => with_frame(&frame, |fr| {
            fail(fr, id, Failure::Invalid(field, code));
            fr.broadcast(&Peer::Failed { field: Some(field) });
            fr.model.enabled(field).then_some(field)
        }),
    }
}

/// Sends attempt `n` (from 0) of the request.
fn attempt(s: Submission, n: usize) {
    match build_request(&s.body, &s.idempotency_key, &s.publishable_key) {
        Some(request) => {
            let sent = s.window.fetch_with_request(&request);
            then(&sent, Box::new(move |answer| answered(s, n, answer.dyn_into::<Response>().ok())));
        }
        None => answered(s, n, None),
    }
}

/// Attempt `n` was answered (`None`: a network error): retries after a backoff, or reads the
/// answer's body and finishes.
fn answered(s: Submission, n: usize, result: Option<Response>) {
    let retry_after = match &result {
        None => Some(0),
        Some(r) if matches!(r.status(), 409 | 429 | 502 | 503 | 504) => Some(retry_after_ms(r)),
        Some(_) => None,
    };
    if let (Some(hint), Some(&backoff)) = (retry_after, BACKOFF_MS.get(n)) {
        let window = s.window.clone();
        after(&window, backoff.max(hint), Box::new(move |_| attempt(s, n + 1)));
        return;
    }
    // Split fields after a network failure: the body is kept, zeroized, to recognise the
    // merchant's retry of the same card (see `kept_body`).
    let keep = s.split && result.as_ref().is_none_or(|r| r.status() == 429);
    let Some(response) = result else {
        finish(s, keep, Err(Failure::Other("network_error".into(), None, None)));
        return;
    };
    let (ok, status) = (response.ok(), response.status());
    // The body read as JSON; one that is not JSON (or cannot be read) is an error object or
    // `undefined`, which no reader accepts: `processing_error`, or the status's code.
    let answer = move |body: JsValue| {
        if ok {
            VaultToken::read(body).map_err(|_| Failure::Other("processing_error".into(), None, None))
        } else {
            Err(vault_failure(status, body))
        }
    };
    then(&response.dom().json(), Box::new(move |body| finish(s, keep, answer(body))));
}

/// Answers the parent with the outcome. The PAN and CVC copies are wiped here (the body drops,
/// zeroized, unless `keep`).
fn finish(s: Submission, keep: bool, answer: Result<VaultToken, Failure>) {
    let Submission { frame, id, body, .. } = s;
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

/// `GET url` on the frame's own origin, then `done` with the answer parsed as JSON (on any
/// failure: `undefined` or an error object, which no reader accepts).
pub(crate) fn get_json(window: &web_sys::Window, url: &str, done: Callback) {
    then(
        &window.fetch_with_str(url),
        Box::new(move |answer| match answer.dyn_into::<Response>().ok().filter(Response::ok) {
            Some(response) => then(&response.dom().json(), done),
            None => done(JsValue::UNDEFINED),
        }),
    );
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

/// The vault's refusal, from the answer's status and body.
fn vault_failure(status: u16, body: JsValue) -> Failure {
    let parsed = VaultError::read(body).ok();
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

#[wasm_bindgen]
extern "C" {
    /// A promise, seen only for `then` with plain JS functions (js-sys's `then` takes a
    /// `Closure`, which is freed only by dropping it; ours free themselves after their call).
    type Thenable;

    /// `promise.then(f, f)`: one function for either outcome.
    #[wasm_bindgen(method)]
    fn then(this: &Thenable, on_fulfilled: &JsValue, on_rejected: &JsValue);
}

/// What runs when a promise settles or a timer fires (with the value, the rejection or nothing).
pub(crate) type Callback = Box<dyn FnOnce(JsValue)>;

/// Calls `f` once with what `promise` settles to: its value, or the reason it was rejected
/// (callers tell them apart by type: a `Response` or not, a string or not). The JS function is
/// freed after its call.
pub(crate) fn then(promise: &js_sys::Promise, f: Callback) {
    let f = Closure::once_into_js(f);
    promise.unchecked_ref::<Thenable>().then(&f, &f);
}

/// Calls `f` after `ms` milliseconds (`setTimeout`).
pub(crate) fn after(window: &web_sys::Window, ms: i32, f: Callback) {
    let f = Closure::once_into_js(f);
    window.dom().set_timeout(&f, ms);
}
