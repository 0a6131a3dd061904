//! Refunds: full or partial, several per payment (`/v1/refunds`).

use serde::{Deserialize, Serialize};

use crate::client::{Call, Client, RequestOptions, path_id};
use crate::currency::Currency;
use crate::error::Error;
use crate::list::List;

string_enum! {
    /// Where a refund is.
    RefundStatus {
        /// Done.
        Succeeded = "succeeded",
        /// The processor refused it.
        Failed = "failed",
        /// The processor's answer is not known yet.
        Processing = "processing",
    }
}

string_enum! {
    /// Why you refund.
    RefundReason {
        /// The customer was charged twice.
        Duplicate = "duplicate",
        /// The charge was fraudulent.
        Fraudulent = "fraudulent",
        /// The customer asked.
        RequestedByCustomer = "requested_by_customer",
    }
}

/// A refund (`re_…`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Refund {
    /// `re_…`
    pub id: String,
    /// The refunded payment (`pay_…`).
    pub payment: String,
    /// In minor units.
    pub amount: u64,
    /// The payment's currency.
    pub currency: Currency,
    /// Where it is.
    pub status: RefundStatus,
    /// Why.
    #[serde(default)]
    pub reason: Option<RefundReason>,
    /// Whether this is a live refund.
    pub livemode: bool,
    /// Unix seconds.
    pub created: i64,
}

/// `POST /v1/refunds`.
///
/// # Example
/// ```
/// use altafinex::refunds::{CreateRefund, RefundReason};
/// let partial = CreateRefund::new("pay_123").amount(500).reason(RefundReason::RequestedByCustomer);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CreateRefund {
    /// The payment to refund.
    pub payment: String,
    /// Minor units; `None` refunds what is left. The refunds of a payment never add up to more
    /// than was captured (`400 refund_exceeds_captured`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<RefundReason>,
}

impl CreateRefund {
    /// Refund what is left of `payment`.
    pub fn new(payment: impl Into<String>) -> CreateRefund {
        CreateRefund { payment: payment.into(), amount: None, reason: None }
    }

    /// Refund only this much (minor units).
    #[must_use]
    pub fn amount(mut self, amount: u64) -> CreateRefund {
        self.amount = Some(amount);
        self
    }

    /// Why.
    #[must_use]
    pub fn reason(mut self, reason: RefundReason) -> CreateRefund {
        self.reason = Some(reason);
        self
    }
}

/// `GET /v1/refunds` filter and cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListRefunds {
    /// Only this payment's refunds.
    pub payment: Option<String>,
    /// Page size.
    pub limit: Option<u32>,
    /// The cursor: the previous page's [`List::next_cursor`].
    pub starting_after: Option<String>,
}

impl ListRefunds {
    /// The first page of all refunds.
    pub fn new() -> ListRefunds {
        ListRefunds::default()
    }

    /// Only this payment's refunds.
    #[must_use]
    pub fn payment(mut self, payment: impl Into<String>) -> ListRefunds {
        self.payment = Some(payment.into());
        self
    }

    /// Page size.
    #[must_use]
    pub fn limit(mut self, limit: u32) -> ListRefunds {
        self.limit = Some(limit);
        self
    }

    /// The page after this id.
    #[must_use]
    pub fn starting_after(mut self, cursor: impl Into<String>) -> ListRefunds {
        self.starting_after = Some(cursor.into());
        self
    }
}

/// `/v1/refunds`. Get it with [`Client::refunds`].
#[derive(Debug, Clone, Copy)]
pub struct Refunds<'a> {
    client: &'a Client,
}

impl Client {
    /// Refunds.
    pub fn refunds(&self) -> Refunds<'_> {
        Refunds { client: self }
    }
}

impl Refunds<'_> {
    /// `POST /v1/refunds` with a fresh random `Idempotency-Key` (reused on its retries).
    ///
    /// # Errors
    /// `400 refund_exceeds_captured` when the refunds would exceed the captured amount; see
    /// [`Error`].
    pub async fn create(&self, params: &CreateRefund) -> Result<Refund, Error> {
        self.create_with(params, &RequestOptions::new()).await
    }

    /// `POST /v1/refunds` with options (your own `Idempotency-Key`).
    ///
    /// # Errors
    /// As [`Refunds::create`].
    pub async fn create_with(&self, params: &CreateRefund, options: &RequestOptions) -> Result<Refund, Error> {
        self.client.execute(Call::post("/v1/refunds".into(), Some(params), options)?).await
    }

    /// `GET /v1/refunds/{id}`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn retrieve(&self, id: &str) -> Result<Refund, Error> {
        self.client.execute(Call::get(format!("/v1/refunds/{}", path_id(id)?))).await
    }

    /// `GET /v1/refunds`: one page.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn list(&self, params: &ListRefunds) -> Result<List<Refund>, Error> {
        let call = Call::get("/v1/refunds".into())
            .query("payment", params.payment.as_deref())
            .query("limit", params.limit)
            .query("starting_after", params.starting_after.as_deref());
        self.client.execute(call).await
    }
}
