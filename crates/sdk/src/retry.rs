//! When to retry, and how long to wait.
//!
//! Modelled on smithy-rs's standard retry strategy: a classifier decides from the outcome of an
//! attempt whether another attempt is safe and useful; the wait is capped exponential backoff
//! with *full* jitter (a uniformly random duration between zero and the capped exponential), or
//! exactly what the server's `Retry-After` asks for. Both parts are pure functions (the random
//! number is a parameter), so they are tested without clocks or sockets.
//!
//! Retried: connection failures; timeouts and broken connections when the request is idempotent;
//! `429` (honouring `Retry-After`); `409 idempotency_key_in_use`; `5xx` when the request is
//! idempotent (only `503` otherwise), except `503 processor_not_configured` (live mode without a
//! processor: retrying cannot help). Never retried: any other `4xx`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::NetworkErrorKind;

/// How many times to retry and how long to wait between attempts.
///
/// # Example
/// ```
/// use std::time::Duration;
/// let retries = altafinex::RetryConfig::default()
///     .with_max_retries(5)
///     .with_initial_backoff(Duration::from_millis(200))
///     .with_max_backoff(Duration::from_secs(5));
/// assert_eq!(retries.max_retries(), 5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
}

impl Default for RetryConfig {
    /// 3 retries (4 attempts in all), backoff from 500 ms up to 8 s, `Retry-After` honoured up
    /// to 60 s.
    fn default() -> RetryConfig {
        RetryConfig {
            max_retries: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryConfig {
    /// No retries at all: every call makes exactly one attempt.
    pub fn disabled() -> RetryConfig {
        RetryConfig { max_retries: 0, ..RetryConfig::default() }
    }

    /// Retries after the first attempt (default 3).
    #[must_use]
    pub fn with_max_retries(mut self, max_retries: u32) -> RetryConfig {
        self.max_retries = max_retries;
        self
    }

    /// The backoff ceiling of the first retry; it doubles with each retry (default 500 ms).
    #[must_use]
    pub fn with_initial_backoff(mut self, initial_backoff: Duration) -> RetryConfig {
        self.initial_backoff = initial_backoff;
        self
    }

    /// The largest backoff ceiling (default 8 s).
    #[must_use]
    pub fn with_max_backoff(mut self, max_backoff: Duration) -> RetryConfig {
        self.max_backoff = max_backoff;
        self
    }

    /// The longest `Retry-After` the client waits for; a longer one ends the retries and returns
    /// the `429`/`503` error, so a caller is never parked for minutes (default 60 s).
    #[must_use]
    pub fn with_max_retry_after(mut self, max_retry_after: Duration) -> RetryConfig {
        self.max_retry_after = max_retry_after;
        self
    }

    /// Retries after the first attempt.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }
}

/// Whether sending a request twice can do something twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Safety {
    /// Reads, deletes, and writes the API deduplicates by `Idempotency-Key` (payments, captures,
    /// cancels, refunds): retried whenever the outcome is unknown.
    Idempotent,
    /// Writes the API does not deduplicate (detokenize hands out the CVC once; creating a
    /// webhook endpoint or rotating its secret shows a secret once): retried only when the
    /// request certainly did not run (connection refused, 429, 503).
    NotIdempotent,
}

/// The outcome of one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome<'a> {
    /// No answer.
    Network(NetworkErrorKind),
    /// An error answer.
    Status { status: u16, code: &'a str, retry_after: Option<Duration> },
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Give the error to the caller.
    DontRetry,
    /// Retry after a jittered exponential backoff.
    Backoff,
    /// Retry after exactly this long (the server's `Retry-After`).
    After(Duration),
}

/// The retry classifier.
pub(crate) fn classify(outcome: Outcome<'_>, safety: Safety) -> Decision {
    let idempotent = safety == Safety::Idempotent;
    match outcome {
        Outcome::Network(NetworkErrorKind::Connect) => Decision::Backoff,
        Outcome::Network(_) if idempotent => Decision::Backoff,
        Outcome::Network(_) => Decision::DontRetry,
        Outcome::Status { status: 429, retry_after, .. } => retry_after.map_or(Decision::Backoff, Decision::After),
        Outcome::Status { status: 409, code: "idempotency_key_in_use", .. } => Decision::Backoff,
        // A configuration state, not an outage: live mode without a processor.
        Outcome::Status { status: 503, code: "processor_not_configured", .. } => Decision::DontRetry,
        Outcome::Status { status, retry_after, .. } if status == 503 || (idempotent && status >= 500) => {
            retry_after.map_or(Decision::Backoff, Decision::After)
        }
        Outcome::Status { .. } => Decision::DontRetry,
    }
}

/// The wait before retry number `retry` (0 for the first retry): full jitter over
/// `min(max_backoff, initial_backoff * 2^retry)`, `random` being uniform over `u64`.
pub(crate) fn backoff(config: &RetryConfig, retry: u32, random: u64) -> Duration {
    let ceiling = config.initial_backoff.saturating_mul(2u32.saturating_pow(retry)).min(config.max_backoff);
    let nanos = ceiling.as_nanos().saturating_mul(u128::from(random)) >> 64;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The wait before retry number `retry`, or `None` to stop: the retry budget is spent, the
/// outcome is not retryable, or `Retry-After` asks for longer than the client is willing to wait.
pub(crate) fn delay(config: &RetryConfig, decision: Decision, retry: u32, random: u64) -> Option<Duration> {
    if retry >= config.max_retries {
        return None;
    }
    match decision {
        Decision::DontRetry => None,
        Decision::Backoff => Some(backoff(config, retry, random)),
        Decision::After(wait) if wait <= config.max_retry_after => Some(wait),
        Decision::After(_) => None,
    }
}

/// Parses `Retry-After` as delay-seconds (what the vault sends). An HTTP-date or garbage gives
/// `None`, and the client falls back to its own backoff.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().map(Duration::from_secs)
}

/// How the client waits between attempts. The default uses `tokio::time::sleep`; tests and
/// other runtimes can plug their own in with [`ClientBuilder::sleep`](crate::ClientBuilder::sleep).
pub trait Sleep: Send + Sync + 'static {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleep;

impl Sleep for TokioSleep {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NetworkErrorKind::{Connect, Other, Timeout};
    use Safety::{Idempotent, NotIdempotent};

    fn status(status: u16, code: &str, retry_after: Option<u64>) -> Outcome<'_> {
        Outcome::Status { status, code, retry_after: retry_after.map(Duration::from_secs) }
    }

    #[test]
    fn classifier() {
        let secs = Duration::from_secs;
        let cases = [
            (Outcome::Network(Connect), Idempotent, Decision::Backoff),
            (Outcome::Network(Connect), NotIdempotent, Decision::Backoff),
            (Outcome::Network(Timeout), Idempotent, Decision::Backoff),
            (Outcome::Network(Timeout), NotIdempotent, Decision::DontRetry),
            (Outcome::Network(Other), Idempotent, Decision::Backoff),
            (Outcome::Network(Other), NotIdempotent, Decision::DontRetry),
            (status(429, "rate_limited", Some(7)), Idempotent, Decision::After(secs(7))),
            (status(429, "rate_limited", Some(7)), NotIdempotent, Decision::After(secs(7))),
            (status(429, "rate_limited", None), Idempotent, Decision::Backoff),
            (status(409, "idempotency_key_in_use", None), Idempotent, Decision::Backoff),
            (status(409, "something_else", None), Idempotent, Decision::DontRetry),
            (status(500, "internal_error", None), Idempotent, Decision::Backoff),
            (status(500, "internal_error", None), NotIdempotent, Decision::DontRetry),
            (status(502, "unexpected_response", None), Idempotent, Decision::Backoff),
            (status(503, "not_ready", Some(1)), Idempotent, Decision::After(secs(1))),
            (status(503, "not_ready", None), NotIdempotent, Decision::Backoff),
            (status(503, "processor_not_configured", None), Idempotent, Decision::DontRetry),
            (status(400, "parameter_invalid", None), Idempotent, Decision::DontRetry),
            (status(401, "invalid_api_key", None), Idempotent, Decision::DontRetry),
            (status(402, "card_declined", None), Idempotent, Decision::DontRetry),
            (status(403, "insufficient_permissions", None), Idempotent, Decision::DontRetry),
            (status(404, "resource_missing", None), Idempotent, Decision::DontRetry),
            (status(408, "request_timeout", None), Idempotent, Decision::DontRetry),
            (status(422, "idempotency_key_reused", None), Idempotent, Decision::DontRetry),
        ];
        for (outcome, safety, expected) in cases {
            assert_eq!(classify(outcome, safety), expected, "{outcome:?} {safety:?}");
        }
    }

    #[test]
    fn full_jitter_spans_zero_to_the_capped_exponential() {
        let config = RetryConfig::default()
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_millis(1000));
        let ms = Duration::from_millis;
        // (retry, random, expected): random 0 waits nothing, u64::MAX almost the whole ceiling,
        // half of u64 half of it; the ceiling doubles from 100 ms and stops at 1 s.
        let half = 1u64 << 63;
        let cases = [
            (0, 0, ms(0)),
            (0, half, ms(50)),
            (1, half, ms(100)),
            (2, half, ms(200)),
            (3, half, ms(400)),
            (4, half, ms(500)),
            (10, half, ms(500)),
            (40, half, ms(500)),
            (u32::MAX, half, ms(500)),
        ];
        for (retry, random, expected) in cases {
            assert_eq!(backoff(&config, retry, random), expected, "retry {retry}");
        }
        for retry in 0..50 {
            let ceiling = ms(100).saturating_mul(2u32.saturating_pow(retry)).min(ms(1000));
            let top = backoff(&config, retry, u64::MAX);
            assert!(top < ceiling && ceiling - top <= Duration::from_nanos(1), "retry {retry}: {top:?}");
        }
    }

    #[test]
    fn delay_respects_budget_and_retry_after_cap() {
        let config = RetryConfig::default().with_max_retries(2).with_max_retry_after(Duration::from_secs(30));
        let half = 1u64 << 63;
        assert_eq!(delay(&config, Decision::Backoff, 0, half), Some(Duration::from_millis(250)));
        assert_eq!(delay(&config, Decision::Backoff, 1, half), Some(Duration::from_millis(500)));
        assert_eq!(delay(&config, Decision::Backoff, 2, half), None, "budget spent");
        assert_eq!(delay(&config, Decision::After(Duration::from_secs(30)), 0, 0), Some(Duration::from_secs(30)));
        assert_eq!(delay(&config, Decision::After(Duration::from_secs(31)), 0, 0), None, "too long to wait");
        assert_eq!(delay(&config, Decision::DontRetry, 0, half), None);
        assert_eq!(delay(&RetryConfig::disabled(), Decision::Backoff, 0, half), None);
    }

    #[test]
    fn retry_after_parsing() {
        let cases = [
            ("0", Some(0)),
            ("7", Some(7)),
            (" 12 ", Some(12)),
            ("", None),
            ("-1", None),
            ("1.5", None),
            ("Wed, 21 Oct 2015 07:28:00 GMT", None),
            ("99999999999", None),
        ];
        for (text, secs) in cases {
            assert_eq!(parse_retry_after(text), secs.map(Duration::from_secs), "{text:?}");
        }
    }
}
