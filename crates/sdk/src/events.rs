//! Events: what happened to payments, refunds and endpoints (`/v1/events`), as stored by the
//! vault and delivered to webhook endpoints.

use serde::{Deserialize, Serialize};

use crate::client::{Call, Client, RequestOptions, path_id};
use crate::error::Error;
use crate::list::List;
use crate::payments::Payment;
use crate::refunds::Refund;
use crate::webhook_endpoints::WebhookEndpoint;

string_enum! {
    /// An event's `type`.
    EventType {
        /// A payment was captured at creation, or later.
        PaymentSucceeded = "payment.succeeded",
        /// A payment was declined or failed.
        PaymentFailed = "payment.failed",
        /// An authorised payment was captured.
        PaymentCaptured = "payment.captured",
        /// An authorised payment was cancelled.
        PaymentCanceled = "payment.canceled",
        /// A refund went through.
        RefundSucceeded = "refund.succeeded",
        /// A refund failed.
        RefundFailed = "refund.failed",
        /// Reserved for security notices.
        SecurityAlert = "security.alert",
        /// An endpoint failing for 3 days was disabled.
        WebhookEndpointDisabled = "webhook_endpoint.disabled",
    }
}

/// An event (`evt_…`): the body of every webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// `evt_…`; the same on every delivery attempt (use it to drop duplicates: delivery is at
    /// least once).
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// Unix seconds.
    pub created: i64,
    /// Whether this is a live event.
    pub livemode: bool,
    /// The object, as it was when the event happened.
    pub data: EventData,
}

/// `data` of an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct EventData {
    /// The payment, refund or endpoint the event is about.
    pub object: EventObject,
}

/// The object of an event, by its `object` field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "object")]
#[non_exhaustive]
pub enum EventObject {
    /// `payment.*` events.
    #[serde(rename = "payment")]
    Payment(Payment),
    /// `refund.*` events.
    #[serde(rename = "refund")]
    Refund(Refund),
    /// `webhook_endpoint.*` events.
    #[serde(rename = "webhook_endpoint")]
    WebhookEndpoint(WebhookEndpoint),
    /// An object this version of the SDK does not know.
    #[serde(other)]
    Other,
}

/// One delivery attempt of an event to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct DeliveryAttempt {
    /// The endpoint (`we_…`).
    pub endpoint: String,
    /// The receiver's HTTP status, `None` when no answer came.
    #[serde(default)]
    pub status_code: Option<u16>,
    /// How long the attempt took.
    #[serde(default)]
    pub latency_ms: u64,
    /// Why it failed (`timeout`, `connect`, `tls`, …), if it did.
    #[serde(default)]
    pub error_class: Option<String>,
    /// Unix seconds.
    pub created: i64,
}

/// `GET /v1/events` filter and cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListEvents {
    /// Page size.
    pub limit: Option<u32>,
    /// The cursor: the previous page's [`List::next_cursor`].
    pub starting_after: Option<String>,
    /// Only events of this type.
    pub event_type: Option<EventType>,
}

impl ListEvents {
    /// The first page of all events.
    pub fn new() -> ListEvents {
        ListEvents::default()
    }

    /// Page size.
    #[must_use]
    pub fn limit(mut self, limit: u32) -> ListEvents {
        self.limit = Some(limit);
        self
    }

    /// The page after this id.
    #[must_use]
    pub fn starting_after(mut self, cursor: impl Into<String>) -> ListEvents {
        self.starting_after = Some(cursor.into());
        self
    }

    /// Only events of this type.
    #[must_use]
    pub fn event_type(mut self, event_type: EventType) -> ListEvents {
        self.event_type = Some(event_type);
        self
    }
}

#[derive(Serialize)]
struct Redeliver<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<&'a str>,
}

/// `/v1/events`. Get it with [`Client::events`].
#[derive(Debug, Clone, Copy)]
pub struct Events<'a> {
    client: &'a Client,
}

impl Client {
    /// Events.
    pub fn events(&self) -> Events<'_> {
        Events { client: self }
    }
}

impl Events<'_> {
    /// `GET /v1/events/{id}`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn retrieve(&self, id: &str) -> Result<Event, Error> {
        self.client.execute(Call::get(format!("/v1/events/{}", path_id(id)?))).await
    }

    /// `GET /v1/events`: one page, newest first.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn list(&self, params: &ListEvents) -> Result<List<Event>, Error> {
        let call = Call::get("/v1/events".into())
            .query("limit", params.limit)
            .query("starting_after", params.starting_after.as_deref())
            .query("type", params.event_type.as_ref().map(EventType::as_str));
        self.client.execute(call).await
    }

    /// `POST /v1/events/{id}/redeliver` (admin key): queue the event again, for one endpoint
    /// or (`None`) every endpoint subscribed to it. Receivers drop duplicates by event id, so a
    /// retried redelivery is harmless.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn redeliver(&self, id: &str, endpoint: Option<&str>) -> Result<(), Error> {
        let path = format!("/v1/events/{}/redeliver", path_id(id)?);
        let endpoint = endpoint.map(path_id).transpose()?;
        let call = Call::post(path, Some(&Redeliver { endpoint }), &RequestOptions::new())?;
        self.client.execute::<serde::de::IgnoredAny>(call).await.map(|_| ())
    }

    /// `GET /v1/events/{id}/attempts`: every delivery attempt of the event.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn attempts(&self, id: &str) -> Result<List<DeliveryAttempt>, Error> {
        self.client.execute(Call::get(format!("/v1/events/{}/attempts", path_id(id)?))).await
    }
}
