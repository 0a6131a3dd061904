//! The sandbox acquirer: deterministic outcomes chosen by the card number, and a ledger of
//! what it charged, so tests can prove "charged exactly once".
//!
//! | card number | outcome |
//! |---|---|
//! | `4000000000000002` | declined, `generic_decline` |
//! | `4000000000009995` | declined, `insufficient_funds` |
//! | `5105105105105100` | declined, `lost_card` |
//! | `5200828282828210` | declined, `stolen_card` |
//! | `2223003122003222` | declined, `expired_card` |
//! | `6011000990139424` | declined, `incorrect_cvc` (only when a CVC is sent) |
//! | `3566002020360505` | declined, `processing_error` |
//! | `4012888888881881` | authorisation times out: **charged**, but the answer is lost (the payment goes `processing` until the reconciler asks [`Processor::status`]); its refunds too are **made** with their answer lost (the refund stays `processing` until a retry or the reconciler asks [`Processor::refund_status`]) |
//! | any other published test card | approved |
//!
//! All of them are in `card::TEST_CARDS`, so test-mode tokens accept them.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{
    Authorization, AuthorizeRequest, DeclineCode, Processor, ProcessorError, ProcessorFuture, ProcessorStatus,
};

/// The card whose authorisation times out after charging.
pub const TIMEOUT_CARD: &str = "4012888888881881";

/// Outcome cards (see the module table).
pub const OUTCOME_CARDS: &[(&str, DeclineCode)] = &[
    ("4000000000000002", DeclineCode::GenericDecline),
    ("4000000000009995", DeclineCode::InsufficientFunds),
    ("5105105105105100", DeclineCode::LostCard),
    ("5200828282828210", DeclineCode::StolenCard),
    ("2223003122003222", DeclineCode::ExpiredCard),
    ("6011000990139424", DeclineCode::IncorrectCvc),
    ("3566002020360505", DeclineCode::ProcessingError),
];

/// One reference in the sandbox's ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Authorised amount.
    pub amount: i64,
    /// Currency.
    pub currency: String,
    /// Current state.
    pub status: ProcessorStatus,
    /// Captured amount.
    pub captured: i64,
    /// Refunded amount, by refund id.
    pub refunds: HashMap<String, i64>,
    /// How many authorisations reached the card network for this reference (must stay 1).
    pub authorizations: u32,
    /// Charged with [`TIMEOUT_CARD`]: every answer about this reference is lost after the fact.
    pub answers_lost: bool,
}

/// The sandbox processor.
#[derive(Debug, Default)]
pub struct SandboxProcessor {
    ledger: Mutex<HashMap<String, LedgerEntry>>,
}

fn poisoned<T>(_: T) -> ProcessorError {
    ProcessorError::Unavailable("sandbox ledger lock poisoned".into())
}

impl SandboxProcessor {
    /// An empty sandbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// The ledger entry of a reference.
    pub fn entry(&self, reference: &str) -> Option<LedgerEntry> {
        self.ledger.lock().ok().and_then(|l| l.get(reference).cloned())
    }

    /// Total number of authorisations sent to the card network (each charges once).
    pub fn authorizations(&self) -> u64 {
        self.ledger.lock().map(|l| l.values().map(|e| u64::from(e.authorizations)).sum()).unwrap_or(0)
    }

    /// Captured amount over the whole ledger.
    pub fn total_captured(&self) -> i64 {
        self.ledger.lock().map(|l| l.values().map(|e| e.captured).sum()).unwrap_or(0)
    }

    /// Refunded amount over the whole ledger.
    pub fn total_refunded(&self) -> i64 {
        self.ledger.lock().map(|l| l.values().flat_map(|e| e.refunds.values()).sum()).unwrap_or(0)
    }

    fn decide(request: &AuthorizeRequest) -> Result<Authorization, ProcessorError> {
        let number = request.pan.expose();
        for (card, code) in OUTCOME_CARDS {
            if *card == number {
                if *code == DeclineCode::IncorrectCvc && request.cvc.is_none() {
                    break;
                }
                return Ok(Authorization::Declined(*code));
            }
        }
        Ok(Authorization::Approved { captured: request.capture })
    }

    fn authorize_now(&self, request: &AuthorizeRequest) -> Result<Authorization, ProcessorError> {
        let mut ledger = self.ledger.lock().map_err(poisoned)?;
        if let Some(existing) = ledger.get(&request.reference) {
            // The reference is the idempotency key: a repeat returns the first outcome.
            return Ok(match existing.status {
                ProcessorStatus::Declined(code) => Authorization::Declined(code),
                ProcessorStatus::Captured => Authorization::Approved { captured: true },
                _ => Authorization::Approved { captured: false },
            });
        }
        if request.amount <= 0 {
            return Err(ProcessorError::Invalid("amount"));
        }
        let outcome = Self::decide(request)?;
        let (status, captured) = match outcome {
            Authorization::Declined(code) => (ProcessorStatus::Declined(code), 0),
            Authorization::Approved { captured: true } => (ProcessorStatus::Captured, request.amount),
            Authorization::Approved { captured: false } => (ProcessorStatus::Authorized, 0),
        };
        ledger.insert(
            request.reference.clone(),
            LedgerEntry {
                amount: request.amount,
                currency: request.currency.clone(),
                status,
                captured,
                refunds: HashMap::new(),
                authorizations: 1,
                answers_lost: request.pan.expose() == TIMEOUT_CARD,
            },
        );
        if request.pan.expose() == TIMEOUT_CARD {
            return Err(ProcessorError::Timeout);
        }
        Ok(outcome)
    }

    fn capture_now(&self, reference: &str, amount: i64) -> Result<(), ProcessorError> {
        let mut ledger = self.ledger.lock().map_err(poisoned)?;
        let entry = ledger.get_mut(reference).ok_or(ProcessorError::Invalid("unknown reference"))?;
        match entry.status {
            ProcessorStatus::Captured if entry.captured == amount => Ok(()),
            ProcessorStatus::Authorized if amount > 0 && amount <= entry.amount => {
                entry.status = ProcessorStatus::Captured;
                entry.captured = amount;
                Ok(())
            }
            _ => Err(ProcessorError::Invalid("not capturable")),
        }
    }

    fn cancel_now(&self, reference: &str) -> Result<(), ProcessorError> {
        let mut ledger = self.ledger.lock().map_err(poisoned)?;
        let entry = ledger.get_mut(reference).ok_or(ProcessorError::Invalid("unknown reference"))?;
        match entry.status {
            ProcessorStatus::Authorized | ProcessorStatus::Canceled => {
                entry.status = ProcessorStatus::Canceled;
                Ok(())
            }
            _ => Err(ProcessorError::Invalid("not cancelable")),
        }
    }

    fn refund_now(&self, reference: &str, refund_id: &str, amount: i64) -> Result<(), ProcessorError> {
        let mut ledger = self.ledger.lock().map_err(poisoned)?;
        let entry = ledger.get_mut(reference).ok_or(ProcessorError::Invalid("unknown reference"))?;
        if entry.refunds.get(refund_id) == Some(&amount) {
            return Ok(());
        }
        let refunded: i64 = entry.refunds.values().sum();
        if entry.status != ProcessorStatus::Captured || amount <= 0 || refunded + amount > entry.captured {
            return Err(ProcessorError::Invalid("not refundable"));
        }
        entry.refunds.insert(refund_id.to_owned(), amount);
        Ok(())
    }
}

impl Processor for SandboxProcessor {
    fn authorize(&self, request: AuthorizeRequest) -> ProcessorFuture<Authorization> {
        let result = self.authorize_now(&request);
        Box::pin(async move { result })
    }

    fn capture(&self, reference: &str, amount: i64) -> ProcessorFuture<()> {
        let result = self.capture_now(reference, amount);
        Box::pin(async move { result })
    }

    fn cancel(&self, reference: &str) -> ProcessorFuture<()> {
        let result = self.cancel_now(reference);
        Box::pin(async move { result })
    }

    fn refund(&self, reference: &str, refund_id: &str, amount: i64) -> ProcessorFuture<()> {
        let result = self.refund_now(reference, refund_id, amount).and_then(|()| {
            let lost = self.ledger.lock().map_err(poisoned)?.get(reference).is_some_and(|e| e.answers_lost);
            if lost { Err(ProcessorError::Timeout) } else { Ok(()) }
        });
        Box::pin(async move { result })
    }

    fn refund_status(&self, reference: &str, refund_id: &str) -> ProcessorFuture<Option<i64>> {
        let result = self
            .ledger
            .lock()
            .map_err(poisoned)
            .map(|l| l.get(reference).and_then(|e| e.refunds.get(refund_id).copied()));
        Box::pin(async move { result })
    }

    fn status(&self, reference: &str) -> ProcessorFuture<ProcessorStatus> {
        let result = self
            .ledger
            .lock()
            .map_err(poisoned)
            .map(|l| l.get(reference).map_or(ProcessorStatus::Unknown, |e| e.status));
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use card::{Cvc, Pan};

    fn request(reference: &str, number: &str, cvc: bool, capture: bool) -> AuthorizeRequest {
        AuthorizeRequest {
            reference: reference.into(),
            amount: 1000,
            currency: "usd".into(),
            pan: Pan::parse(number).unwrap(),
            exp_month: 12,
            exp_year: 2030,
            cvc: if cvc { Some(Cvc::parse("123", Some(card::Brand::Visa)).unwrap()) } else { None },
            capture,
        }
    }

    #[tokio::test]
    async fn test_cards_decide_the_outcome() {
        let p = SandboxProcessor::new();
        for (i, (number, code)) in OUTCOME_CARDS.iter().enumerate() {
            let got = p.authorize(request(&format!("pay_{i}"), number, true, true)).await;
            assert_eq!(got, Ok(Authorization::Declined(*code)), "{number}");
        }
        assert_eq!(
            p.authorize(request("pay_ok", "4242424242424242", true, true)).await,
            Ok(Authorization::Approved { captured: true })
        );
        assert_eq!(
            p.authorize(request("pay_nocvc", "6011000990139424", false, true)).await,
            Ok(Authorization::Approved { captured: true }),
            "without a CVC there is nothing to mismatch"
        );
        assert_eq!(p.total_captured(), 2000);
    }

    #[tokio::test]
    async fn a_reference_is_charged_once_even_when_the_answer_is_lost() {
        let p = SandboxProcessor::new();
        assert_eq!(p.authorize(request("pay_t", TIMEOUT_CARD, true, true)).await, Err(ProcessorError::Timeout));
        assert_eq!(p.status("pay_t").await, Ok(ProcessorStatus::Captured), "it charged");
        assert_eq!(
            p.authorize(request("pay_t", TIMEOUT_CARD, true, true)).await,
            Ok(Authorization::Approved { captured: true }),
            "a repeat returns the first outcome"
        );
        assert_eq!(p.authorizations(), 1);
        assert_eq!(p.status("pay_never").await, Ok(ProcessorStatus::Unknown));
    }

    #[tokio::test]
    async fn capture_cancel_and_refund_follow_the_ledger() {
        let p = SandboxProcessor::new();
        p.authorize(request("pay_a", "4242424242424242", true, false)).await.unwrap();
        assert!(p.capture("pay_a", 1001).await.is_err());
        p.capture("pay_a", 800).await.unwrap();
        p.capture("pay_a", 800).await.unwrap();
        p.refund("pay_a", "re_1", 500).await.unwrap();
        p.refund("pay_a", "re_1", 500).await.unwrap();
        assert!(p.refund("pay_a", "re_2", 301).await.is_err());
        p.refund("pay_a", "re_2", 300).await.unwrap();
        assert_eq!(p.total_refunded(), 800);
        p.authorize(request("pay_b", "4242424242424242", true, false)).await.unwrap();
        p.cancel("pay_b").await.unwrap();
        assert!(p.capture("pay_b", 100).await.is_err());
        assert!(p.cancel("pay_a").await.is_err());
    }
}
