//! HTTP API v1: router, cross-cutting middleware and handlers.

pub mod admin;
pub mod assets;
pub mod error;
pub mod events;
pub mod fonts;
pub mod frame;
pub mod payments;
pub mod tokens;
pub mod webhooks;

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
use crate::secret::SecretBytes;
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
        .route("/v1/payments", get(payments::list).post(payments::create))
        .route("/v1/payments/{id}", get(payments::retrieve))
        .route("/v1/payments/{id}/capture", post(payments::capture))
        .route("/v1/payments/{id}/cancel", post(payments::cancel))
        .route("/v1/refunds", get(payments::list_refunds).post(payments::create_refund))
        .route("/v1/refunds/{id}", get(payments::retrieve_refund))
        .route("/v1/events", get(events::list))
        .route("/v1/events/{id}", get(events::retrieve))
        .route("/v1/events/{id}/attempts", get(events::attempts))
        .route("/v1/events/{id}/redeliver", post(events::redeliver))
        .route("/v1/webhook_endpoints", get(webhooks::list).post(webhooks::create))
        .route("/v1/webhook_endpoints/{id}", get(webhooks::retrieve).delete(webhooks::delete))
        .route("/v1/webhook_endpoints/{id}/rotate_secret", post(webhooks::rotate_secret))
        .route("/v1/fonts", get(fonts::list).post(fonts::upload))
        .route("/v1/fonts/{id}", axum::routing::delete(fonts::delete))
        .route("/v1/loader.js", get(frame::loader))
        .route("/v1/loader-manifest.json", get(frame::loader_manifest))
        .route("/v1/frame", get(frame::page))
        .route("/v1/frame/{file}", get(frame::file))
        .route("/v1/frame/fonts/{file}", get(fonts::serve))
        .fallback(fallback)
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Paths the router cannot match by whole segments (`/v1/loader.<hash>.js`), else `no_route`.
async fn fallback(
    State(state): State<AppState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    match frame::versioned_loader_hash(uri.path()) {
        Some(hash) if method == axum::http::Method::GET || method == axum::http::Method::HEAD => {
            frame::versioned_loader(&state, hash, &headers).await.into_response()
        }
        Some(_) => ApiError::method_not_allowed().into_response(),
        None => ApiError::no_route().into_response(),
    }
}

async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.draining.load(std::sync::atomic::Ordering::Acquire) {
        return ApiError::unavailable().into_response();
    }
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

pub use crate::text::url_has_card_number;

/// Adds the headers every response carries (`Cache-Control: no-store` unless the handler set a
/// cache policy, which only content-hashed frame assets do). API responses get `default-src 'none'` and
/// `X-Frame-Options: DENY`; a handler that set its own CSP (the frame page) keeps it.
pub fn security_headers(headers: &mut HeaderMap) {
    headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000; includeSubDomains"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Every answer denies the powerful browser features (the frame page sets its own, equal one).
    if !headers.contains_key("permissions-policy") {
        static POLICY: std::sync::OnceLock<Option<HeaderValue>> = std::sync::OnceLock::new();
        if let Some(v) = POLICY.get_or_init(|| HeaderValue::from_str(&frame::frame_permissions_policy()).ok()) {
            headers.insert(HeaderName::from_static("permissions-policy"), v.clone());
        }
    }
    // `no-store` unless a handler chose otherwise: only the frame's content-hashed assets do.
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(API_CSP));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
}

/// Request ids: `req_` + 20 base62 characters from the system CSPRNG (≈119 bits). They appear
/// in answers, logs and audit events; a predictable id would let one client guess another's.
fn next_request_id() -> String {
    format!("req_{}", random_base62(20).unwrap_or_default())
}

/// A request body that records whether it was read to the end. A handler that answers without
/// reading the body (an early 401/403/429) leaves bytes on the connection; the guard then adds
/// `Connection: close`, so the server closes cleanly (TLS close_notify) instead of dropping a
/// keep-alive connection the client believes is still usable.
struct TrackedBody {
    inner: Body,
    finished: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl hyper::body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finished.store(true, std::sync::atomic::Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a response is JSON (our errors) or HTML (the frame's refusal page).
fn is_json_or_html(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        let essence = ct.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("application/json") || essence.eq_ignore_ascii_case("text/html")
    })
}

/// Whether the request announces a body (chunked, or a `Content-Length` that is not 0).
fn has_body(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()).is_none_or(|n| n > 0))
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
    let longest_header = req.headers().iter().map(|(n, v)| n.as_str().len() + v.len()).max().unwrap_or(0);
    let with_body = has_body(req.headers());
    // HTTP/2 ends an unread body with its stream (hyper resets it); `Connection` is HTTP/1 only.
    let http1 = req.version() <= axum::http::Version::HTTP_11;
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut response = if url_has_card_number(url) {
        let mut e = state.event("request.rejected", "denied", &ctx, None);
        e.detail = json!({ "code": "card_number_in_url" });
        state.audit(e);
        ApiError::invalid("card_number_in_url", "Card numbers must never be sent in a URL.").into_response()
    } else if longest_header > state.config.max_header_bytes {
        ApiError::header_too_large().into_response()
    } else {
        let d = state.limit(&state.ip_limiter, "ip", &crate::keys::client_bucket(ip), state.config.rate_per_ip).await;
        if d.allowed {
            req.extensions_mut().insert(ctx);
            let tracked = std::sync::Arc::clone(&finished);
            let req = req.map(|inner| Body::new(TrackedBody { inner, finished: tracked }));
            next.run(req).await
        } else {
            let mut e = state.event("rate_limited", "denied", &ctx, None);
            e.detail = json!({ "limit": "ip" });
            state.log_audit(&e);
            ApiError::rate_limited("rate_limited").with_headers(rate_headers(&d)).into_response()
        }
    };
    // Framework rejections (a path segment that is not UTF-8, a query that does not parse)
    // answer `text/plain`; every error the vault sends is the documented JSON error.
    if response.status().as_u16() >= 400 && !is_json_or_html(response.headers()) {
        let status = response.status();
        response = ApiError::for_status(status).into_response();
    }
    if http1 && with_body && !finished.load(std::sync::atomic::Ordering::Acquire) {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let subresource = response.extensions().get::<frame::Subresource>().is_some();
    let headers = response.headers_mut();
    security_headers(headers);
    if subresource {
        headers.remove("permissions-policy");
    }
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

/// Reads a request body with the configured size limit and timeout into a buffer that is wiped
/// when dropped. The buffer is reserved up front (announced length or the limit), so growing it
/// leaves no unwiped copies behind; each chunk hyper hands over is wiped too when this is its
/// only owner. (Copies inside hyper's and rustls's own connection buffers are out of reach.)
pub async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<SecretBytes, ApiError> {
    read_body_up_to(state, headers, body, state.config.body_limit).await
}

/// [`read_body`] with a limit of its own (font uploads: [`fonts::MAX_FONT_BYTES`]).
pub async fn read_body_up_to(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<SecretBytes, ApiError> {
    let announced =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<usize>().ok());
    if announced.is_some_and(|len| len > limit) {
        return Err(ApiError::too_large());
    }
    let collect = async move {
        use hyper::body::Body as _;
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(announced.unwrap_or(limit).min(limit)));
        let mut body = std::pin::pin!(body);
        while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            let frame =
                frame.map_err(|_| ApiError::invalid("body_unreadable", "The request body could not be read."))?;
            let Ok(data) = frame.into_data() else { continue };
            if out.len() + data.len() > limit {
                wipe(data);
                return Err(ApiError::too_large());
            }
            out.extend_from_slice(&data);
            wipe(data);
        }
        Ok(SecretBytes::from(out))
    };
    match tokio::time::timeout(state.config.body_timeout, collect).await {
        Err(_) => Err(ApiError::timeout()),
        Ok(result) => result,
    }
}

/// Zeroes a body chunk if nobody else holds it.
fn wipe(data: axum::body::Bytes) {
    if let Ok(mut owned) = data.try_into_mut() {
        zeroize::Zeroize::zeroize(owned.as_mut());
    }
}

/// Requires `Content-Type: application/json` exactly (case-insensitive, parameters after `;`
/// allowed, `charset` only `utf-8`): `application/jsonx` or `text/json` are 415.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return Err(ApiError::media_type());
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::media_type());
    }
    for param in parts {
        let (name, val) = param.split_once('=').unwrap_or((param, ""));
        let val = val.trim().trim_matches('"');
        if !name.trim().eq_ignore_ascii_case("charset") || !val.eq_ignore_ascii_case("utf-8") {
            return Err(ApiError::media_type());
        }
    }
    Ok(())
}

/// The `Authorization` header as text.
pub fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// Authenticates the request's key and checks that its role grants `permission`.
async fn principal(
    state: &AppState,
    ctx: &RequestCtx,
    headers: &HeaderMap,
    permission: Permission,
) -> Result<Principal, ApiError> {
    let p = state.authenticate(authorization(headers), ctx)?;
    state.authorize(&p, permission).await?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_type_is_matched_exactly() {
        let ct = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            require_json(&h).is_ok()
        };
        assert!(ct("application/json"));
        assert!(ct("Application/JSON; charset=UTF-8"));
        assert!(ct("application/json;charset=\"utf-8\""));
        assert!(!ct("application/jsonx"));
        assert!(!ct("application/json-patch+json"));
        assert!(!ct("application/json; charset=latin1"));
        assert!(!ct("text/json"));
        assert!(!ct(""));
    }

    #[test]
    fn request_ids_are_random() {
        let a = next_request_id();
        let b = next_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        // No shared prefix beyond `req_` plus chance.
        let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
        assert!(common < 10, "{a} {b}");
    }
}
