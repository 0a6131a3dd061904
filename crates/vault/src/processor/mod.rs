//! The payment processor interface the payments API charges through, and its shipped
//! implementation, the [`sandbox::SandboxProcessor`] (test mode; deterministic outcomes by test
//! card, its own ledger).
//!
//! Every call carries the vault's payment id as the processor-side reference, which doubles as
//! the processor's idempotency key: authorising the same reference twice returns the first
//! outcome, never a second charge. When an answer is lost ([`ProcessorError::Timeout`]) the
//! payment stays `processing` and the reconciler asks [`Processor::status`]; it never
//! authorises again. A refund whose answer was lost likewise stays `processing` until a retry
//! or the reconciler asks [`Processor::refund_status`].

pub mod sandbox;

use std::future::Future;
use std::pin::Pin;

use card::{Cvc, Pan};

/// A boxed processor future.
pub type ProcessorFuture<T> = Pin<Box<dyn Future<Output = Result<T, ProcessorError>> + Send + 'static>>;

/// Why a card was declined (the API's `decline_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeclineCode {
    /// The issuer declined without a reason.
    GenericDecline,
    /// Not enough funds.
    InsufficientFunds,
    /// Reported lost.
    LostCard,
    /// Reported stolen.
    StolenCard,
    /// The card has expired.
    ExpiredCard,
    /// The CVC did not match.
    IncorrectCvc,
    /// The processor failed to process the card.
    ProcessingError,
}

impl DeclineCode {
    /// Stable API code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GenericDecline => "generic_decline",
            Self::InsufficientFunds => "insufficient_funds",
            Self::LostCard => "lost_card",
            Self::StolenCard => "stolen_card",
            Self::ExpiredCard => "expired_card",
            Self::IncorrectCvc => "incorrect_cvc",
            Self::ProcessingError => "processing_error",
        }
    }

    /// The message shown with it (safe to show a cardholder).
    pub fn message(self) -> &'static str {
        match self {
            Self::GenericDecline => "The card was declined.",
            Self::InsufficientFunds => "The card has insufficient funds.",
            Self::LostCard | Self::StolenCard => "The card was declined.",
            Self::ExpiredCard => "The card has expired.",
            Self::IncorrectCvc => "The card's security code is incorrect.",
            Self::ProcessingError => "An error occurred while processing the card. Try again.",
        }
    }
}

/// What to authorise. The card data lives only as long as the call (secret types, zeroized).
#[derive(Debug)]
pub struct AuthorizeRequest {
    /// The vault's payment id: the processor's idempotency key.
    pub reference: String,
    /// Amount in minor units.
    pub amount: i64,
    /// Lowercase ISO 4217 code.
    pub currency: String,
    /// The card number.
    pub pan: Pan,
    /// Expiry month.
    pub exp_month: u8,
    /// Expiry year.
    pub exp_year: u16,
    /// The CVC, if the token still has it (used once, then destroyed by the vault).
    pub cvc: Option<Cvc>,
    /// Capture at once (`true`) or only authorise.
    pub capture: bool,
}

/// The outcome of an authorisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorization {
    /// Approved; captured at once if asked.
    Approved {
        /// Whether the amount was captured.
        captured: bool,
    },
    /// Declined.
    Declined(DeclineCode),
}

/// What the processor knows of a reference ([`Processor::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessorStatus {
    /// Never seen: nothing was charged.
    Unknown,
    /// Authorised, not captured.
    Authorized,
    /// Captured.
    Captured,
    /// Authorisation released.
    Canceled,
    /// Declined.
    Declined(DeclineCode),
}

/// Processor failures.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessorError {
    /// The answer was lost (timeout): the outcome is unknown until [`Processor::status`] says.
    Timeout,
    /// The request was refused before anything happened (retry later).
    Unavailable(String),
    /// The operation does not apply (unknown reference, nothing left to capture or refund).
    Invalid(&'static str),
}

impl std::fmt::Display for ProcessorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout => f.write_str("the processor did not answer in time"),
            Self::Unavailable(e) => write!(f, "the processor is unavailable: {e}"),
            Self::Invalid(what) => write!(f, "the processor refused the operation: {what}"),
        }
    }
}

impl std::error::Error for ProcessorError {}

/// A payment processor (acquirer).
pub trait Processor: Send + Sync + 'static {
    /// Authorises (and captures, if asked) `request.amount`. Idempotent per reference.
    fn authorize(&self, request: AuthorizeRequest) -> ProcessorFuture<Authorization>;
    /// Captures `amount` (≤ the authorised amount) of an authorised reference.
    fn capture(&self, reference: &str, amount: i64) -> ProcessorFuture<()>;
    /// Releases an authorisation.
    fn cancel(&self, reference: &str) -> ProcessorFuture<()>;
    /// Refunds `amount` of a captured reference; idempotent per `refund_id`.
    fn refund(&self, reference: &str, refund_id: &str, amount: i64) -> ProcessorFuture<()>;
    /// What the processor knows of a reference.
    fn status(&self, reference: &str) -> ProcessorFuture<ProcessorStatus>;
    /// The amount refunded under `refund_id` of a reference, `None` when that refund never
    /// reached the processor (how a refund whose answer was lost is resolved: by asking).
    fn refund_status(&self, reference: &str, refund_id: &str) -> ProcessorFuture<Option<i64>>;
}
