//! Webhook endpoints: where the vault delivers events (`/v1/webhook_endpoints`, admin key).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use webhook_signature::Secret;

use crate::client::{Call, Client, RequestOptions, path_id};
use crate::error::Error;
use crate::events::EventType;
use crate::list::List;
use crate::tokens::Deleted;

string_enum! {
    /// Whether deliveries go out.
    EndpointStatus {
        /// Deliveries go out.
        Enabled = "enabled",
        /// Disabled (after failing for 3 days): no deliveries.
        Disabled = "disabled",
    }
}

/// A webhook endpoint (`we_…`). Never carries the secret, except once, on creation and on
/// rotation ([`EndpointWithSecret`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct WebhookEndpoint {
    /// `we_…`
    pub id: String,
    /// `https://…` (test mode also allows `http://localhost` and `http://127.0.0.1`).
    pub url: String,
    /// Event types delivered (`["*"]` for all).
    pub enabled_events: Vec<String>,
    /// Enabled or disabled.
    pub status: EndpointStatus,
    /// Your description.
    #[serde(default)]
    pub description: Option<String>,
    /// Whether this is a live endpoint.
    pub livemode: bool,
    /// Unix seconds.
    pub created: i64,
}

/// An endpoint with its signing secret: shown once, when created or rotated. Store the secret
/// where your webhook receiver reads it from (a secret manager); it cannot be read again.
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct EndpointWithSecret {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// The signing secret (`whsec_…`), for [`webhook::verify`](crate::webhook::verify).
    #[serde(deserialize_with = "secret")]
    pub secret: Secret,
}

impl fmt::Debug for EndpointWithSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointWithSecret").field("endpoint", &self.endpoint).field("secret", &self.secret).finish()
    }
}

/// Parses the secret straight from the answer's buffer (wiped after use), no `String` between.
fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Secret;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a whsec_ secret")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
            Secret::parse(v).map_err(|_| E::custom("invalid webhook secret"))
        }
    }
    deserializer.deserialize_str(Visitor)
}

/// `POST /v1/webhook_endpoints`.
///
/// # Example
/// ```
/// use altafinex::{events::EventType, webhook_endpoints::CreateEndpoint};
/// let params = CreateEndpoint::new("https://shop.example/webhooks")
///     .event(EventType::PaymentSucceeded)
///     .event(EventType::RefundSucceeded);
/// let everything = CreateEndpoint::new("https://shop.example/webhooks"); // ["*"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CreateEndpoint {
    /// Where to deliver.
    pub url: String,
    /// Event types (`["*"]`, the default, for all).
    pub enabled_events: Vec<String>,
    /// Your description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl CreateEndpoint {
    /// Deliver every event type to `url`.
    pub fn new(url: impl Into<String>) -> CreateEndpoint {
        CreateEndpoint { url: url.into(), enabled_events: vec!["*".to_owned()], description: None }
    }

    /// Deliver this type (the first call replaces the default `*`).
    #[must_use]
    pub fn event(mut self, event_type: EventType) -> CreateEndpoint {
        self.enabled_events.retain(|e| e != "*");
        self.enabled_events.push(event_type.as_str().to_owned());
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> CreateEndpoint {
        self.description = Some(description.into());
        self
    }
}

#[derive(Serialize)]
struct Rotate {
    #[serde(skip_serializing_if = "Option::is_none")]
    overlap_seconds: Option<u64>,
}

/// `/v1/webhook_endpoints`. Get it with [`Client::webhook_endpoints`].
#[derive(Debug, Clone, Copy)]
pub struct WebhookEndpoints<'a> {
    client: &'a Client,
}

impl Client {
    /// Webhook endpoints (admin key).
    pub fn webhook_endpoints(&self) -> WebhookEndpoints<'_> {
        WebhookEndpoints { client: self }
    }
}

impl WebhookEndpoints<'_> {
    /// `POST /v1/webhook_endpoints`: the answer carries the signing secret, once.
    ///
    /// Not retried after a timeout (the API does not promise to deduplicate it, and a second
    /// endpoint would get another secret); list the endpoints to see whether it was created.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn create(&self, params: &CreateEndpoint) -> Result<EndpointWithSecret, Error> {
        let call = Call::post("/v1/webhook_endpoints".into(), Some(params), &RequestOptions::new())?;
        self.client.execute(call.not_idempotent()).await
    }

    /// `GET /v1/webhook_endpoints`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn list(&self) -> Result<List<WebhookEndpoint>, Error> {
        self.client.execute(Call::get("/v1/webhook_endpoints".into())).await
    }

    /// `GET /v1/webhook_endpoints/{id}`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn retrieve(&self, id: &str) -> Result<WebhookEndpoint, Error> {
        self.client.execute(Call::get(format!("/v1/webhook_endpoints/{}", path_id(id)?))).await
    }

    /// `DELETE /v1/webhook_endpoints/{id}`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn delete(&self, id: &str) -> Result<Deleted, Error> {
        self.client.execute(Call::delete(format!("/v1/webhook_endpoints/{}", path_id(id)?))).await
    }

    /// `POST /v1/webhook_endpoints/{id}/rotate_secret`: a new secret (shown once); the old one
    /// stays valid for `overlap` (`None`: the API's default, 24 h), and deliveries carry both
    /// signatures meanwhile. Not retried after a timeout, like [`WebhookEndpoints::create`].
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn rotate_secret(
        &self,
        id: &str,
        overlap: Option<std::time::Duration>,
    ) -> Result<EndpointWithSecret, Error> {
        let path = format!("/v1/webhook_endpoints/{}/rotate_secret", path_id(id)?);
        let body = Rotate { overlap_seconds: overlap.map(|d| d.as_secs()) };
        let call = Call::post(path, Some(&body), &RequestOptions::new())?;
        self.client.execute(call.not_idempotent()).await
    }
}
