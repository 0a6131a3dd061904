//! Tokens: read, delete and detokenize what the card frame tokenized (`/v1/tokens`).
//!
//! Tokenizing happens in the browser (the card frame, with the publishable key); the server reads
//! tokens with its secret key. Most merchants never need [`Tokens::detokenize`]: charge the token
//! with [`Payments::create`](crate::payments::Payments::create) instead, and the card data never
//! reaches your server (and your PCI DSS scope).

use std::fmt;

use serde::{Deserialize, Deserializer};

use crate::client::{Call, Client, RequestOptions, path_id};
use crate::error::Error;

/// The card as tokens and payments show it: display data, never the number or the CVC.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct CardSummary {
    /// `visa`, `mastercard`, `amex`, …
    pub brand: String,
    /// The last four digits.
    pub last4: String,
    /// 1–12.
    pub exp_month: u8,
    /// Four digits.
    pub exp_year: u16,
    /// Keyed HMAC of the number: the same card gives the same fingerprint within a merchant and
    /// mode (secret keys only).
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// A token (`tok_…`), valid 24 hours after it was created.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Token {
    /// `tok_…`
    pub id: String,
    /// Display data of the card.
    pub card: CardSummary,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds; reads fail with `404 resource_missing` afterwards.
    pub expires_at: i64,
    /// Whether this is a live token.
    pub livemode: bool,
}

/// The answer to deleting a token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Deleted {
    /// The deleted object's id.
    pub id: String,
    /// `true`.
    pub deleted: bool,
}

/// A detokenized card: the number, and the CVC the first time only.
///
/// The number and the CVC are the card crate's secret types: zeroized on drop, masked in
/// `Debug`/`Display`. Handle with care: whoever holds these is in PCI DSS scope.
#[derive(Debug, Deserialize)]
#[non_exhaustive]
pub struct DetokenizedCard {
    /// The token's id.
    pub id: String,
    /// Whether this is a live token.
    pub livemode: bool,
    /// Whether this answer carries the CVC (it is handed out at most once).
    pub cvc_returned: bool,
    /// The card.
    pub card: CardData,
}

/// The card data of a [`DetokenizedCard`].
#[derive(Deserialize)]
#[non_exhaustive]
pub struct CardData {
    /// `visa`, `mastercard`, …
    pub brand: String,
    /// The last four digits.
    pub last4: String,
    /// The full number.
    #[serde(deserialize_with = "pan")]
    pub number: card::Pan,
    /// 1–12.
    pub exp_month: u8,
    /// Four digits.
    pub exp_year: u16,
    /// The cardholder's name, if given.
    #[serde(default)]
    pub name: Option<String>,
    /// The CVC, on the first detokenization within an hour of tokenizing only.
    #[serde(default, deserialize_with = "cvc")]
    pub cvc: Option<card::Cvc>,
}

impl fmt::Debug for CardData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardData")
            .field("brand", &self.brand)
            .field("last4", &self.last4)
            .field("number", &self.number)
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .field("name", &self.name.as_ref().map(|_| "…"))
            .field("cvc", &self.cvc)
            .finish()
    }
}

/// Parses the number straight from the answer's buffer (wiped after use) into a `Pan`, with no
/// intermediate `String`.
fn pan<'de, D: Deserializer<'de>>(deserializer: D) -> Result<card::Pan, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = card::Pan;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a card number")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<card::Pan, E> {
            card::Pan::parse(v).map_err(|_| E::custom("invalid card number"))
        }
    }
    deserializer.deserialize_str(Visitor)
}

fn cvc<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<card::Cvc>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Option<card::Cvc>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a CVC or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Option<card::Cvc>, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Option<card::Cvc>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<card::Cvc>, D::Error> {
            d.deserialize_str(self)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<card::Cvc>, E> {
            card::Cvc::parse(v, None).map(Some).map_err(|_| E::custom("invalid CVC"))
        }
    }
    deserializer.deserialize_option(Visitor)
}

/// `/v1/tokens`. Get it with [`Client::tokens`].
#[derive(Debug, Clone, Copy)]
pub struct Tokens<'a> {
    client: &'a Client,
}

impl Client {
    /// Tokens.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens { client: self }
    }
}

impl Tokens<'_> {
    /// `GET /v1/tokens/{id}` (roles `tokenization`, `read_only`).
    ///
    /// # Errors
    /// [`Error::Api`] with `resource_missing` for an unknown, expired, deleted or other-mode
    /// token; see [`Error`].
    pub async fn retrieve(&self, id: &str) -> Result<Token, Error> {
        self.client.execute(Call::get(format!("/v1/tokens/{}", path_id(id)?))).await
    }

    /// `DELETE /v1/tokens/{id}` (role `tokenization`). A retried delete whose first attempt
    /// went through answers `404 resource_missing`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn delete(&self, id: &str) -> Result<Deleted, Error> {
        self.client.execute(Call::delete(format!("/v1/tokens/{}", path_id(id)?))).await
    }

    /// `POST /v1/tokens/{id}/detokenize` (role `tokenization`, from an allowlisted IP).
    ///
    /// The CVC is handed out at most once, so this call is retried only when it certainly did
    /// not reach the vault (connection refused, 429, 503), never after a timeout.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn detokenize(&self, id: &str) -> Result<DetokenizedCard, Error> {
        let path = format!("/v1/tokens/{}/detokenize", path_id(id)?);
        let call = Call::post::<()>(path, None, &RequestOptions::new())?.not_idempotent();
        self.client.execute(call).await
    }
}
