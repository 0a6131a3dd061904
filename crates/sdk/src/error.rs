//! Errors: what the API answered ([`ApiError`]), or why no usable answer came.
//!
//! No error ever carries the secret key: it is only ever in the `Authorization` header, which
//! no error reads. Decoding errors never quote the response body (it may hold card data), only
//! where in it the problem is.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

string_enum! {
    /// The API's error `type`.
    ErrorType {
        /// `invalid_request_error`: the request is wrong (a parameter, a missing resource).
        InvalidRequest = "invalid_request_error",
        /// `authentication_error`: missing, invalid, revoked or expired key.
        Authentication = "authentication_error",
        /// `permission_error`: the key's role, IP allowlist or origin does not allow this.
        Permission = "permission_error",
        /// `card_error`: the card was declined or is invalid (see `decline_code`).
        Card = "card_error",
        /// `idempotency_error`: the `Idempotency-Key` is in flight or was used with another body.
        Idempotency = "idempotency_error",
        /// `rate_limit_error`: too many requests (429).
        RateLimit = "rate_limit_error",
        /// `api_error`: a problem on the API's side (5xx).
        Api = "api_error",
    }
}

string_enum! {
    /// Why the processor declined a card (`decline_code` on a 402 and on failed payments).
    DeclineCode {
        /// The issuer declined without a reason.
        GenericDecline = "generic_decline",
        /// Not enough funds.
        InsufficientFunds = "insufficient_funds",
        /// The card was reported lost.
        LostCard = "lost_card",
        /// The card was reported stolen.
        StolenCard = "stolen_card",
        /// The card has expired.
        ExpiredCard = "expired_card",
        /// The CVC did not match.
        IncorrectCvc = "incorrect_cvc",
        /// The processor failed; a later attempt may succeed.
        ProcessingError = "processing_error",
    }
}

/// Everything that can go wrong with a call.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The API answered with an error (after any retries).
    Api(Box<ApiError>),
    /// No answer arrived: the connection failed, TLS failed, or the request timed out (after any
    /// retries). A payment request may still have been processed: retry it with the same
    /// `Idempotency-Key` (the client did so already, up to its retry limit).
    Network(NetworkError),
    /// An answer arrived that is not what the API documents (not JSON, another shape, too big).
    Decode(DecodeError),
    /// The client or the request was set up wrongly; nothing was sent.
    Config(ConfigError),
}

impl Error {
    /// The API's error, when the API answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The API's error `code` (`card_declined`, `resource_missing`, …), when it answered with one.
    pub fn code(&self) -> Option<&str> {
        self.api().map(|e| e.code.as_str())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api(e) => e.fmt(f),
            Error::Network(e) => e.fmt(f),
            Error::Decode(e) => e.fmt(f),
            Error::Config(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Network(e) => Some(&e.source),
            _ => None,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Error::Config(e)
    }
}

/// An error answer of the API: `{"error":{"type","code","message","param"?,"decline_code"?}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status (400, 402, 404, 429, 500, …).
    pub status: u16,
    /// The error `type`.
    pub error_type: ErrorType,
    /// The stable error `code` (`parameter_invalid`, `card_declined`, `rate_limited`, …). For an
    /// answer without the API's error body (a proxy's 502, say) this is `unexpected_response`.
    pub code: String,
    /// A human-readable message; may change, do not match on it.
    pub message: String,
    /// The request parameter at fault, if any (`amount`, `card.number`, …).
    pub param: Option<String>,
    /// For a declined card: why.
    pub decline_code: Option<DeclineCode>,
    /// For a declined card: the failed payment's id (it is stored and readable).
    pub payment: Option<String>,
    /// The `Request-Id` header, to quote to support.
    pub request_id: Option<String>,
    /// The `Retry-After` header (429, 503), in seconds.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// True for a `card_error` with code `card_declined` (HTTP 402).
    pub fn is_card_declined(&self) -> bool {
        self.error_type == ErrorType::Card && self.code == "card_declined"
    }

    /// Decodes an error answer. Bodies that are not the API's error JSON still give an
    /// `ApiError` (code `unexpected_response`), so the status decides what happens next.
    pub(crate) fn from_response(
        status: u16,
        body: &[u8],
        request_id: Option<String>,
        retry_after: Option<Duration>,
    ) -> ApiError {
        #[derive(Deserialize)]
        struct Envelope {
            error: Body,
        }
        #[derive(Deserialize)]
        struct Body {
            #[serde(rename = "type")]
            error_type: Option<String>,
            code: Option<String>,
            message: Option<String>,
            param: Option<String>,
            decline_code: Option<String>,
            payment: Option<String>,
        }
        match serde_json::from_slice::<Envelope>(body) {
            Ok(Envelope { error }) => ApiError {
                status,
                error_type: error.error_type.as_deref().map_or_else(|| fallback_type(status), ErrorType::from),
                code: error.code.unwrap_or_else(|| "unexpected_response".to_owned()),
                message: error.message.unwrap_or_default(),
                param: error.param,
                decline_code: error.decline_code.as_deref().map(DeclineCode::from),
                payment: error.payment,
                request_id,
                retry_after,
            },
            Err(_) => ApiError {
                status,
                error_type: fallback_type(status),
                code: "unexpected_response".to_owned(),
                message: format!("HTTP {status} without the API's error body"),
                param: None,
                decline_code: None,
                payment: None,
                request_id,
                retry_after,
            },
        }
    }
}

fn fallback_type(status: u16) -> ErrorType {
    match status {
        401 => ErrorType::Authentication,
        403 => ErrorType::Permission,
        429 => ErrorType::RateLimit,
        500.. => ErrorType::Api,
        _ => ErrorType::InvalidRequest,
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (HTTP {})", self.error_type, self.code, self.status)?;
        if let Some(decline) = &self.decline_code {
            write!(f, ", decline_code {decline}")?;
        }
        if let Some(param) = &self.param {
            write!(f, ", param {param}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request {id}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// What kind of network failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetworkErrorKind {
    /// The connection (TCP or TLS) could not be set up: the request was not sent.
    Connect,
    /// No complete answer in time: the request may or may not have been processed.
    Timeout,
    /// The connection broke while sending or receiving: the request may have been processed.
    Other,
}

/// No answer arrived.
#[derive(Debug)]
pub struct NetworkError {
    pub(crate) kind: NetworkErrorKind,
    pub(crate) source: reqwest::Error,
}

impl NetworkError {
    pub(crate) fn new(source: reqwest::Error) -> NetworkError {
        let kind = if source.is_connect() {
            NetworkErrorKind::Connect
        } else if source.is_timeout() {
            NetworkErrorKind::Timeout
        } else {
            NetworkErrorKind::Other
        };
        NetworkError { kind, source }
    }

    /// Connect, timeout or other.
    pub fn kind(&self) -> NetworkErrorKind {
        self.kind
    }
}

impl fmt::Display for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            NetworkErrorKind::Connect => "could not connect to the API",
            NetworkErrorKind::Timeout => "the API did not answer in time",
            NetworkErrorKind::Other => "the connection to the API failed",
        };
        write!(f, "{what}: {}", self.source)
    }
}

impl std::error::Error for NetworkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// An answer that could not be read as the documented JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The HTTP status of the answer.
    pub status: u16,
    /// Where the problem is; never the body's content.
    pub detail: String,
    /// The `Request-Id` header.
    pub request_id: Option<String>,
}

impl DecodeError {
    /// Describes a serde_json error by its category and position only: its own message may
    /// quote a value from the body, and a body may hold a card number.
    pub(crate) fn json(status: u16, err: &serde_json::Error, request_id: Option<String>) -> DecodeError {
        let category = match err.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "not valid JSON",
            serde_json::error::Category::Data => "JSON of an unexpected shape",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        DecodeError { status, detail: format!("{category} at line {} column {}", err.line(), err.column()), request_id }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unexpected answer from the API (HTTP {}): {}", self.status, self.detail)?;
        if let Some(id) = &self.request_id {
            write!(f, " [request {id}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for DecodeError {}

/// The client or a request was set up wrongly; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The secret key is malformed (the message says which rule; it never repeats the key).
    InvalidSecretKey(&'static str),
    /// The base URL is not an `https://` URL without user, query or fragment.
    InvalidBaseUrl(&'static str),
    /// The root certificate PEM holds no usable certificate.
    InvalidCertificate,
    /// The HTTP client could not be built.
    HttpClient(String),
    /// An `Idempotency-Key` must be 1–255 visible ASCII characters.
    InvalidIdempotencyKey,
    /// An id (path parameter) is empty or holds other characters than `[A-Za-z0-9_-]`.
    InvalidId,
    /// The system's random number generator failed.
    Random,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidSecretKey(why) => write!(f, "invalid secret key: {why}"),
            ConfigError::InvalidBaseUrl(why) => write!(f, "invalid base URL: {why}"),
            ConfigError::InvalidCertificate => f.write_str("the root certificate PEM holds no usable certificate"),
            ConfigError::HttpClient(why) => write!(f, "cannot build the HTTP client: {why}"),
            ConfigError::InvalidIdempotencyKey => {
                f.write_str("an Idempotency-Key is 1 to 255 visible ASCII characters")
            }
            ConfigError::InvalidId => f.write_str("an id is 1 to 255 characters of [A-Za-z0-9_-]"),
            ConfigError::Random => f.write_str("the system random number generator failed"),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_api_errors() {
        let body = br#"{"error":{"type":"card_error","code":"card_declined","message":"Declined.","decline_code":"insufficient_funds","payment":"pay_123"}}"#;
        let e = ApiError::from_response(402, body, Some("req_1".into()), None);
        assert!(e.is_card_declined());
        assert_eq!(e.error_type, ErrorType::Card);
        assert_eq!(e.decline_code, Some(DeclineCode::InsufficientFunds));
        assert_eq!(e.payment.as_deref(), Some("pay_123"));
        assert_eq!(
            e.to_string(),
            "card_error card_declined (HTTP 402), decline_code insufficient_funds: Declined. [request req_1]"
        );

        let body = br#"{"error":{"type":"invalid_request_error","code":"parameter_invalid","message":"Bad.","param":"amount"}}"#;
        let e = ApiError::from_response(400, body, None, None);
        assert_eq!(e.param.as_deref(), Some("amount"));
        assert_eq!(e.to_string(), "invalid_request_error parameter_invalid (HTTP 400), param amount: Bad.");

        // Unknown types and codes are kept, not refused.
        let body =
            br#"{"error":{"type":"brand_new_error","code":"something_new","message":"x","decline_code":"new_reason"}}"#;
        let e = ApiError::from_response(400, body, None, None);
        assert_eq!(e.error_type, ErrorType::Other("brand_new_error".into()));
        assert_eq!(e.decline_code, Some(DeclineCode::Other("new_reason".into())));
    }

    #[test]
    fn non_api_bodies_still_give_a_typed_error() {
        for (status, body, error_type) in [
            (502u16, &b"<html>Bad Gateway</html>"[..], ErrorType::Api),
            (429, b"", ErrorType::RateLimit),
            (401, b"{}", ErrorType::Authentication),
            (404, b"{\"error\":{}}", ErrorType::InvalidRequest),
        ] {
            let e = ApiError::from_response(status, body, None, Some(Duration::from_secs(2)));
            assert_eq!(e.status, status);
            assert_eq!(e.code, "unexpected_response");
            assert_eq!(e.error_type, error_type, "{status}");
            assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
        }
    }

    #[test]
    fn decode_errors_never_quote_the_body() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Card {
            number: u64,
        }
        let err = serde_json::from_slice::<Card>(br#"{"number":"4242424242424242"}"#).unwrap_err();
        assert!(err.to_string().contains("4242424242424242"), "serde_json quotes values: the reason for DecodeError");
        let e = DecodeError::json(200, &err, None);
        assert!(!e.to_string().contains("4242"), "{e}");
        assert_eq!(
            e.to_string(),
            "unexpected answer from the API (HTTP 200): JSON of an unexpected shape at line 1 column 28"
        );
    }
}
