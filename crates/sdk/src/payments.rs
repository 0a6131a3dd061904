//! Payments: charge a token, capture, cancel, read and list (`/v1/payments`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::client::{Call, Client, RequestOptions, path_id};
use crate::currency::Currency;
use crate::error::{DeclineCode, Error};
use crate::list::List;
use crate::tokens::CardSummary;

string_enum! {
    /// Where a payment is in its lifecycle.
    PaymentStatus {
        /// Authorised, waiting for [`Payments::capture`] or [`Payments::cancel`].
        RequiresCapture = "requires_capture",
        /// Captured: the money moves.
        Succeeded = "succeeded",
        /// Cancelled before capture; the authorisation is released.
        Canceled = "canceled",
        /// Declined (see `decline_code`).
        Failed = "failed",
        /// The processor's answer is not known yet (a timeout); the vault finds out by asking
        /// the processor, never by charging again. Wait for the `payment.*` webhook.
        Processing = "processing",
    }
}

/// A payment (`pay_…`). Amounts are in the currency's minor unit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Payment {
    /// `pay_…`
    pub id: String,
    /// The amount authorised, in minor units.
    pub amount: u64,
    /// The currency.
    pub currency: Currency,
    /// The lifecycle state.
    pub status: PaymentStatus,
    /// Whether it was created to capture at once.
    #[serde(default)]
    pub capture: bool,
    /// What can still be captured.
    #[serde(default)]
    pub amount_capturable: u64,
    /// What was captured.
    #[serde(default)]
    pub amount_captured: u64,
    /// What was refunded so far.
    #[serde(default)]
    pub amount_refunded: u64,
    /// Your description.
    #[serde(default)]
    pub description: Option<String>,
    /// Your metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The card, display data only.
    #[serde(default)]
    pub card: Option<CardSummary>,
    /// The token charged.
    #[serde(default)]
    pub token: Option<String>,
    /// Why it failed, for `failed` payments.
    #[serde(default)]
    pub decline_code: Option<DeclineCode>,
    /// A human-readable reason, for `failed` payments.
    #[serde(default)]
    pub failure_message: Option<String>,
    /// Whether this is a live payment.
    pub livemode: bool,
    /// Unix seconds.
    pub created: i64,
}

/// `POST /v1/payments`: charge a token.
///
/// # Example
/// ```
/// use altafinex::{Currency, payments::CreatePayment};
/// let params = CreatePayment::new(1999, Currency::USD, "tok_123")
///     .capture(false)
///     .description("Order #1234")
///     .metadata("order_id", "1234");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CreatePayment {
    /// In minor units (1999 = $19.99, 500 = ¥500).
    pub amount: u64,
    /// The currency.
    pub currency: Currency,
    /// The token to charge (`tok_…`).
    pub token: String,
    /// `true` (default) captures at once; `false` only authorises (`requires_capture`).
    pub capture: bool,
    /// A description (no card numbers: the API refuses them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Your key-value metadata (no card numbers).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl CreatePayment {
    /// Charge `amount` minor units of `currency` to `token`, captured at once.
    pub fn new(amount: u64, currency: Currency, token: impl Into<String>) -> CreatePayment {
        CreatePayment {
            amount,
            currency,
            token: token.into(),
            capture: true,
            description: None,
            metadata: BTreeMap::new(),
        }
    }

    /// Capture at once (`true`, default) or only authorise (`false`).
    #[must_use]
    pub fn capture(mut self, capture: bool) -> CreatePayment {
        self.capture = capture;
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> CreatePayment {
        self.description = Some(description.into());
        self
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> CreatePayment {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// `POST /v1/payments/{id}/capture`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CapturePayment {
    /// At most `amount_capturable`; `None` captures all of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
}

impl CapturePayment {
    /// Capture everything that was authorised.
    pub fn new() -> CapturePayment {
        CapturePayment::default()
    }

    /// Capture only this much (minor units).
    #[must_use]
    pub fn amount(mut self, amount: u64) -> CapturePayment {
        self.amount = Some(amount);
        self
    }
}

/// `GET /v1/payments` filters and cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListPayments {
    /// Page size.
    pub limit: Option<u32>,
    /// The cursor: the previous page's [`List::next_cursor`].
    pub starting_after: Option<String>,
    /// Only payments in this state.
    pub status: Option<PaymentStatus>,
    /// Created at or after (Unix seconds).
    pub created_gte: Option<i64>,
    /// Created before (Unix seconds).
    pub created_lt: Option<i64>,
}

impl ListPayments {
    /// The first page, default size, no filter.
    pub fn new() -> ListPayments {
        ListPayments::default()
    }

    /// Page size.
    #[must_use]
    pub fn limit(mut self, limit: u32) -> ListPayments {
        self.limit = Some(limit);
        self
    }

    /// The page after this id.
    #[must_use]
    pub fn starting_after(mut self, cursor: impl Into<String>) -> ListPayments {
        self.starting_after = Some(cursor.into());
        self
    }

    /// Only payments in this state.
    #[must_use]
    pub fn status(mut self, status: PaymentStatus) -> ListPayments {
        self.status = Some(status);
        self
    }

    /// Created in `[gte, lt)` (Unix seconds; either bound optional).
    #[must_use]
    pub fn created(mut self, gte: Option<i64>, lt: Option<i64>) -> ListPayments {
        self.created_gte = gte;
        self.created_lt = lt;
        self
    }
}

/// `/v1/payments`. Get it with [`Client::payments`].
#[derive(Debug, Clone, Copy)]
pub struct Payments<'a> {
    client: &'a Client,
}

impl Client {
    /// Payments.
    pub fn payments(&self) -> Payments<'_> {
        Payments { client: self }
    }
}

impl Payments<'_> {
    /// `POST /v1/payments` with a fresh random `Idempotency-Key` (reused on its retries).
    ///
    /// # Errors
    /// A declined card is [`Error::Api`] with status 402, `card_declined` and a `decline_code`
    /// (the failed payment is stored: its id is in `payment`). See [`Error`].
    pub async fn create(&self, params: &CreatePayment) -> Result<Payment, Error> {
        self.create_with(params, &RequestOptions::new()).await
    }

    /// `POST /v1/payments` with options (your own `Idempotency-Key`).
    ///
    /// # Errors
    /// As [`Payments::create`].
    pub async fn create_with(&self, params: &CreatePayment, options: &RequestOptions) -> Result<Payment, Error> {
        self.client.execute(Call::post("/v1/payments".into(), Some(params), options)?).await
    }

    /// `POST /v1/payments/{id}/capture`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn capture(&self, id: &str, params: &CapturePayment) -> Result<Payment, Error> {
        self.capture_with(id, params, &RequestOptions::new()).await
    }

    /// `POST /v1/payments/{id}/capture` with options.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn capture_with(
        &self,
        id: &str,
        params: &CapturePayment,
        options: &RequestOptions,
    ) -> Result<Payment, Error> {
        let path = format!("/v1/payments/{}/capture", path_id(id)?);
        self.client.execute(Call::post(path, Some(params), options)?).await
    }

    /// `POST /v1/payments/{id}/cancel`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn cancel(&self, id: &str) -> Result<Payment, Error> {
        self.cancel_with(id, &RequestOptions::new()).await
    }

    /// `POST /v1/payments/{id}/cancel` with options.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn cancel_with(&self, id: &str, options: &RequestOptions) -> Result<Payment, Error> {
        let path = format!("/v1/payments/{}/cancel", path_id(id)?);
        let empty = serde_json::Map::new();
        self.client.execute(Call::post(path, Some(&empty), options)?).await
    }

    /// `GET /v1/payments/{id}`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn retrieve(&self, id: &str) -> Result<Payment, Error> {
        self.client.execute(Call::get(format!("/v1/payments/{}", path_id(id)?))).await
    }

    /// `GET /v1/payments`: one page, newest first.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn list(&self, params: &ListPayments) -> Result<List<Payment>, Error> {
        let call = Call::get("/v1/payments".into())
            .query("limit", params.limit)
            .query("starting_after", params.starting_after.as_deref())
            .query("status", params.status.as_ref().map(PaymentStatus::as_str))
            .query("created_gte", params.created_gte)
            .query("created_lt", params.created_lt);
        self.client.execute(call).await
    }
}
