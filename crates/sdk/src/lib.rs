//! The Altafinex merchant server SDK: what a merchant adds to their **server** to charge the
//! tokens their checkout page collected, refund them, and verify the webhooks the vault sends.
//!
//! - [`Client`]: a typed HTTPS client (reqwest + rustls) for tokens, payments, refunds, events and
//!   webhook endpoints, authenticated with the secret key ([`SecretKey`]: zeroized, never shown
//!   by `Debug`, never in an error).
//! - Every POST carries an `Idempotency-Key` ([`IdempotencyKey`]): a random one per call unless
//!   you pass your own in [`RequestOptions`], the same on every retry of that call, so a retry
//!   after a lost answer never charges twice.
//! - Retries ([`RetryConfig`]): connection failures, timeouts, `429` (honouring `Retry-After`),
//!   `409 idempotency_key_in_use` and `5xx`, with capped exponential backoff and full jitter, at
//!   most 3 retries by default; other `4xx` never.
//! - Errors ([`Error`]) carry the API's `type`, `code`, `param`, `message` and, for declined
//!   cards, `decline_code` ([`ApiError`]).
//! - Amounts are integers in the currency's minor unit, with [`Currency`] knowing the ISO 4217
//!   exponents (JPY 0, USD 2, KWD 3). No floats.
//! - [`webhook::verify`] and [`webhook::construct_event`] check deliveries with the same
//!   `webhook-signature` crate the vault signs them with.
//!
//! ```no_run
//! use altafinex::{Client, Currency, IdempotencyKey, RequestOptions};
//! use altafinex::payments::CreatePayment;
//! use altafinex::refunds::CreateRefund;
//!
//! # async fn run() -> Result<(), altafinex::Error> {
//! let client = Client::builder(std::env::var("ALTAFINEX_SECRET_KEY").unwrap_or_default())
//!     .base_url("https://vault.example.com")
//!     .build()?;
//! // Charge $19.99 to the token the checkout page sent, keyed by our order id.
//! let options = RequestOptions::new().idempotency_key(IdempotencyKey::new("order-1234")?);
//! let payment = client
//!     .payments()
//!     .create_with(&CreatePayment::new(1999, Currency::USD, "tok_from_the_page"), &options)
//!     .await?;
//! // Refund $5 of it.
//! let refund = client.refunds().create(&CreateRefund::new(&payment.id).amount(500)).await?;
//! # let _ = refund; Ok(()) }
//! ```
//!
//! See `docs/sdk.md` in the repository for the merchant guide.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// An enum of the string values an API field documents, plus `Other` for values a later API
/// version may add (v1 allows new values; a payment must not become unreadable because of one).
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version of the SDK does not know.
            Other(String),
        }

        impl $name {
            /// The value as the API writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )*
                    $name::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> $name {
                match text {
                    $( $text => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(deserializer)?;
                Ok($name::from(text.as_ref()))
            }
        }
    };
}

mod client;
mod currency;
mod error;
mod idempotency;
mod list;
mod retry;
mod secret;

pub mod events;
pub mod payments;
pub mod refunds;
pub mod tokens;
pub mod webhook;
pub mod webhook_endpoints;

pub use crate::client::{Client, ClientBuilder, RequestOptions};
pub use crate::currency::{Currency, CurrencyError};
pub use crate::error::{
    ApiError, ConfigError, DeclineCode, DecodeError, Error, ErrorType, NetworkError, NetworkErrorKind,
};
pub use crate::idempotency::IdempotencyKey;
pub use crate::list::List;
pub use crate::retry::{RetryConfig, Sleep, TokioSleep};
pub use crate::secret::{Mode, SecretKey};
pub use crate::tokens::CardSummary;
