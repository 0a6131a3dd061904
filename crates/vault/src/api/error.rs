//! The one HTTP error type. Its body is `{"error":{"type","code","message","param"?}}`; the
//! message is fixed text chosen here, never a formatted internal error and never request data.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::keyring::KeyringError;
use crate::store::StoreError;

/// An error answered to an API client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Error type (`invalid_request_error`, `card_error`, …).
    pub kind: &'static str,
    /// Precise, stable code.
    pub code: &'static str,
    /// Human-readable message (static text).
    pub message: &'static str,
    /// The offending parameter, when there is one.
    pub param: Option<&'static str>,
    /// Extra response headers (`Retry-After`, rate-limit headers).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: &'static str) -> Self {
        Self { status, kind, code, message, param: None, headers: Vec::new() }
    }

    /// Sets the offending parameter.
    pub fn param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    /// Adds headers.
    pub fn with_headers(mut self, headers: Vec<(HeaderName, HeaderValue)>) -> Self {
        self.headers.extend(headers);
        self
    }

    /// 400 invalid_request_error.
    pub fn invalid(code: &'static str, message: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", code, message)
    }

    /// 400 card_error with the card crate's reason code.
    pub fn card(code: &'static str, param: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "card_error", code, "The card data is not valid.").param(param)
    }

    /// 401 authentication_error.
    pub fn auth(code: &'static str, message: &'static str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication_error", code, message)
    }

    /// 403 permission_error.
    pub fn forbidden(code: &'static str, message: &'static str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_error", code, message)
    }

    /// 409: the merchant already registered this font face (family, weight, style).
    pub fn font_exists() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "font_exists",
            "A font with this family, weight and style exists; delete it first.",
        )
    }

    /// 404 resource_missing.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", "resource_missing", "No such resource.")
    }

    /// 404 for unknown routes.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", "route_not_found", "Unknown API route.")
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method_not_allowed",
            "This method is not allowed on this route.",
        )
    }

    /// 409 the same idempotency key is being processed.
    pub fn idempotency_in_use() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "idempotency_error",
            "idempotency_key_in_use",
            "A request with this Idempotency-Key is still being processed; retry later.",
        )
    }

    /// 422 the idempotency key was used with another body.
    pub fn idempotency_reused() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_error",
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body.",
        )
    }

    /// 413.
    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "body_too_large",
            "The request body is too large.",
        )
    }

    /// 408.
    pub fn timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "request_timeout",
            "The request body was not received in time.",
        )
    }

    /// 431: a request header is longer than the limit.
    pub fn header_too_large() -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "invalid_request_error",
            "header_too_large",
            "A request header is too large.",
        )
    }

    /// 400: a free-text parameter holds something that looks like a card number.
    pub fn card_number_in_text(param: &'static str) -> Self {
        Self::invalid(
            "card_number_in_text",
            "This text looks like it contains a card number; card numbers are only accepted in card fields.",
        )
        .param(param)
    }

    /// 400: a test-mode key was sent a card that is not one of the published test cards.
    pub fn live_card_in_test_mode() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "card_error",
            "live_card_in_test_mode",
            "Test mode accepts only the documented test cards; use a live key for real cards.",
        )
        .param("card.number")
    }

    /// 403: only the vault host's command line may grant or widen detokenization rights.
    pub fn detokenize_grant_forbidden() -> Self {
        Self::forbidden(
            "detokenize_grant_requires_cli",
            "Keys that can detokenize are created, rotated and widened only with the vault command line on the vault host.",
        )
    }

    /// 415.
    pub fn media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            "unsupported_media_type",
            "The request body must be application/json.",
        )
    }

    /// 429.
    pub fn rate_limited(code: &'static str) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            code,
            "Too many requests; retry after the indicated delay.",
        )
    }

    /// 500. The cause is logged by the caller, never sent.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "internal_error", "An internal error occurred.")
    }

    /// 503 with a precise code (`processor_not_configured`, `processor_unavailable`) and
    /// `Retry-After`.
    pub fn unavailable_with(code: &'static str, message: &'static str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "api_error", code, message)
            .with_headers(vec![(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1"))])
    }

    /// 503.
    pub fn unavailable() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "api_error", "not_ready", "The vault is not ready.")
    }
}

impl ApiError {
    /// The JSON body of this error (for answers written outside axum: the server's rewrite of
    /// hyper's automatic parse-error answers).
    pub fn json_body(&self) -> Vec<u8> {
        let body = Body { error: Inner { kind: self.kind, code: self.code, message: self.message, param: self.param } };
        serde_json::to_vec(&body).unwrap_or_default()
    }

    /// The documented error for a status produced outside our handlers (a framework
    /// rejection, a parse error of the HTTP layer).
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            404 => Self::no_route(),
            405 => Self::method_not_allowed(),
            408 => Self::timeout(),
            413 => Self::too_large(),
            414 => Self::new(status, "invalid_request_error", "uri_too_long", "The request URL is too long."),
            415 => Self::media_type(),
            431 => Self::header_too_large(),
            400..=499 => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "malformed_request",
                "The request is malformed (request line, headers or path).",
            ),
            _ => Self::internal(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body { error: Inner { kind: self.kind, code: self.code, message: self.message, param: self.param } };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers: &mut HeaderMap = response.headers_mut();
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage error");
        match e {
            StoreError::Unavailable(_) => {
                Self::unavailable().with_headers(vec![(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1"))])
            }
            _ => Self::internal(),
        }
    }
}

impl From<KeyringError> for ApiError {
    fn from(e: KeyringError) -> Self {
        tracing::error!(error = %e, "keyring error");
        Self::internal()
    }
}

impl From<crate::crypto::CryptoError> for ApiError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        tracing::error!(error = %e, "crypto error");
        Self::internal()
    }
}
