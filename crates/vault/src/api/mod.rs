//! HTTP API v1: router, cross-cutting middleware and handlers.

pub mod admin;
pub mod error;
pub mod frame;
pub mod tokens;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::crypto::random_base62;
use crate::keys::Permission;
use crate::ratelimit::Decision;
use crate::state::{AppState, Principal, RequestCtx};
use error::ApiError;

/// The TCP peer of a connection, inserted by the server for every request.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The OpenAPI document served at `GET /v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// Content-Security-Policy of API responses.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Builds the router. Tests can drive it without a socket (`tower::ServiceExt::oneshot`).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/tokens", post(tokens::create).options(tokens::preflight))
        .route("/v1/tokens/{id}", get(tokens::retrieve).delete(tokens::delete))
        .route("/v1/tokens/{id}/detokenize", post(tokens::detokenize))
        .route("/v1/keys", get(admin::list_keys).post(admin::create_key))
        .route("/v1/keys/{id}", post(admin::update_key))
        .route("/v1/keys/{id}/revoke", post(admin::revoke_key))
        .route("/v1/keys/{id}/rotate", post(admin::rotate_key))
        .route("/v1/audit_events", get(admin::list_audit))
        .route("/v1/loader.js", get(frame::loader))
        .route("/v1/frame", get(frame::page))
        .route("/v1/frame/{file}", get(frame::file))
        .fallback(|| async { ApiError::no_route() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.get_meta("master_check").await {
        Ok(Some(_)) => axum::Json(json!({ "status": "ready" })).into_response(),
        Ok(None) => ApiError::unavailable().into_response(),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            ApiError::unavailable().into_response()
        }
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// `RateLimit-*` and `Retry-After` headers for a decision.
pub fn rate_headers(d: &Decision) -> Vec<(HeaderName, HeaderValue)> {
    let mut h = vec![
        (HeaderName::from_static("ratelimit-limit"), HeaderValue::from(d.limit)),
        (HeaderName::from_static("ratelimit-remaining"), HeaderValue::from(d.remaining)),
        (HeaderName::from_static("ratelimit-reset"), HeaderValue::from(d.reset)),
    ];
    if !d.allowed {
        h.push((header::RETRY_AFTER, HeaderValue::from(d.retry_after)));
    }
    h
}

/// Whether a URL (path and query, percent-decoded) contains something that looks like a card
/// number: a run of 13 or more digits, possibly broken up by spaces, dashes or `+`.
pub fn url_has_card_number(path_and_query: &str) -> bool {
    let bytes = path_and_query.as_bytes();
    let mut run = 0usize;
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        let (c, advance) = if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => (v, 3),
                None => (b, 1),
            }
        } else {
            (b, 1)
        };
        if c.is_ascii_digit() {
            run += 1;
            if run >= 13 {
                return true;
            }
        } else if !matches!(c, b' ' | b'-' | b'+') {
            run = 0;
        }
        i += advance;
    }
    false
}

/// Adds the headers every response carries (`Cache-Control: no-store` unless the handler set a
/// cache policy, which only content-hashed frame assets do). API responses get `default-src 'none'` and
/// `X-Frame-Options: DENY`; a handler that set its own CSP (the frame page) keeps it.
pub fn security_headers(headers: &mut HeaderMap) {
    headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000; includeSubDomains"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // `no-store` unless a handler chose otherwise: only the frame's content-hashed assets do.
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(API_CSP));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
}

/// Request ids: a random per-process prefix and a counter. They only need to be unique (they
/// correlate logs, audit events and answers), not unpredictable, so no syscall per request.
fn next_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| random_base62(10).unwrap_or_default());
    format!("req_{prefix}{:010}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Outermost middleware: request id, card-number-in-URL refusal, per-IP rate limit, security
/// headers and the access log (which records the route template, never the raw URL).
async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let ip: IpAddr = req
        .extensions()
        .get::<ClientAddr>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| crate::keys::canonical_ip(c.0.ip()));
    let request_id = next_request_id();
    let route = req.extensions().get::<MatchedPath>().map_or("-", |m| m.as_str()).to_owned();
    let method = req.method().clone();
    let ctx = RequestCtx { ip, request_id: request_id.clone() };
    let url = req.uri().path_and_query().map_or("", |p| p.as_str());
    let mut response = if url_has_card_number(url) {
        let mut e = state.event("request.rejected", "denied", &ctx, None);
        e.detail = json!({ "code": "card_number_in_url" });
        state.audit(e);
        ApiError::invalid("card_number_in_url", "Card numbers must never be sent in a URL.").into_response()
    } else {
        let d = state.ip_limiter.check(&ip.to_string());
        if d.allowed {
            req.extensions_mut().insert(ctx);
            next.run(req).await
        } else {
            let mut e = state.event("rate_limited", "denied", &ctx, None);
            e.detail = json!({ "limit": "ip" });
            state.log_audit(&e);
            ApiError::rate_limited("rate_limited").with_headers(rate_headers(&d)).into_response()
        }
    };
    let headers = response.headers_mut();
    security_headers(headers);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static("request-id"), v);
    }
    let status = response.status();
    tracing::debug!(
        target: "vault::http",
        method = %method,
        route = %route,
        status = status.as_u16(),
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        ip = %ip,
        request_id = %request_id,
        "request"
    );
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::warn!(target: "vault::http", route = %route, request_id = %request_id, "request failed with 500");
    }
    response
}

/// A JSON response with a status.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    (status, axum::Json(value)).into_response()
}

/// Reads a request body with the configured size limit and timeout.
pub async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.config.body_limit;
    if let Some(len) =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(ApiError::too_large());
        }
    }
    match tokio::time::timeout(state.config.body_timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(ApiError::timeout()),
        Ok(Err(_)) => Err(ApiError::too_large()),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

/// Requires `Content-Type: application/json`.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
    if ok { Ok(()) } else { Err(ApiError::media_type()) }
}

/// The `Authorization` header as text.
pub fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// Authenticates the request's key and checks that its role grants `permission`.
fn principal(
    state: &AppState,
    ctx: &RequestCtx,
    headers: &HeaderMap,
    permission: Permission,
) -> Result<Principal, ApiError> {
    let p = state.authenticate(authorization(headers), ctx)?;
    state.authorize(&p, permission)?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_in_urls() {
        let table = [
            ("/v1/tokens/tok_abc", false),
            ("/v1/tokens/4242424242424242", true),
            ("/v1/tokens?n=4242%204242%204242%204242", true),
            ("/v1/tokens?n=4242-4242-4242-4242", true),
            ("/v1/tokens?n=4242+4242+4242+4242", true),
            ("/v1/x?a=123456789012", false),
            ("/v1/x?a=1234567890123", true),
            ("/v1/x?a=123456/789012345", false),
            ("/v1/x?a=%34%32%34%32%34%32%34%32%34%32%34%32%34", true),
        ];
        for (url, expected) in table {
            assert_eq!(url_has_card_number(url), expected, "{url}");
        }
    }
}
