//! Field validation states and the reason codes shared by every public contract.

#[allow(unused_imports)]
use crate::prelude::*;

use core::fmt;

use serde::{Deserialize, Serialize};

/// Why a field is not (yet) valid. [`Reason::code`] is the stable, lower-case identifier used in
/// the HTTP API, the postMessage protocol and the JS loader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// The card number contains something other than digits, spaces and dashes.
    InvalidCharacters,
    /// The card number is too short so far.
    IncompleteNumber,
    /// The card number is not valid: wrong length for its brand or it fails the Luhn check.
    InvalidNumber,
    /// No supported brand issues numbers starting like this.
    UnsupportedBrand,
    /// The expiry date is too short so far.
    IncompleteExpiry,
    /// The expiry month is not 1–12.
    InvalidExpiryMonth,
    /// The expiry year is malformed.
    InvalidExpiryYear,
    /// The card expired before the reference month.
    Expired,
    /// The expiry date is further in the future than any card is issued for.
    ExpiryTooFar,
    /// The security code is too short so far.
    IncompleteCvc,
    /// The security code is not valid (non-digits or too long for the brand).
    InvalidCvc,
}

impl Reason {
    /// The stable identifier, e.g. `invalid_number`.
    ///
    /// # Example
    /// ```
    /// assert_eq!(card::Reason::ExpiryTooFar.code(), "expiry_too_far");
    /// ```
    pub const fn code(self) -> &'static str {
        match self {
            Reason::InvalidCharacters => "invalid_characters",
            Reason::IncompleteNumber => "incomplete_number",
            Reason::InvalidNumber => "invalid_number",
            Reason::UnsupportedBrand => "unsupported_brand",
            Reason::IncompleteExpiry => "incomplete_expiry",
            Reason::InvalidExpiryMonth => "invalid_expiry_month",
            Reason::InvalidExpiryYear => "invalid_expiry_year",
            Reason::Expired => "expired",
            Reason::ExpiryTooFar => "expiry_too_far",
            Reason::IncompleteCvc => "incomplete_cvc",
            Reason::InvalidCvc => "invalid_cvc",
        }
    }

    /// An English description for logs and API messages (the frame localises its own).
    pub const fn message(self) -> &'static str {
        match self {
            Reason::InvalidCharacters => "The card number may contain only digits, spaces and dashes.",
            Reason::IncompleteNumber => "The card number is incomplete.",
            Reason::InvalidNumber => "The card number is invalid.",
            Reason::UnsupportedBrand => "This card brand is not supported.",
            Reason::IncompleteExpiry => "The expiry date is incomplete.",
            Reason::InvalidExpiryMonth => "The expiry month is invalid.",
            Reason::InvalidExpiryYear => "The expiry year is invalid.",
            Reason::Expired => "The card has expired.",
            Reason::ExpiryTooFar => "The expiry date is too far in the future.",
            Reason::IncompleteCvc => "The security code is incomplete.",
            Reason::InvalidCvc => "The security code is invalid.",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The state of a field while it is being typed.
///
/// Serialises as `{"state": "valid" | "potentially_valid" | "invalid", "reason": <code> | null}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldState {
    /// Complete and valid.
    Valid,
    /// Not valid yet, but typing more could make it valid. The reason says what is missing
    /// (or, for a number of a brand with several lengths, why it is not valid as it stands).
    Incomplete(Reason),
    /// No amount of further typing can make it valid.
    Invalid(Reason),
}

impl FieldState {
    /// Complete and valid.
    pub fn is_valid(self) -> bool {
        matches!(self, FieldState::Valid)
    }

    /// Valid, or could still become valid by typing more.
    pub fn is_potentially_valid(self) -> bool {
        !matches!(self, FieldState::Invalid(_))
    }

    /// Why the field is not valid, if it is not.
    pub fn reason(self) -> Option<Reason> {
        match self {
            FieldState::Valid => None,
            FieldState::Incomplete(reason) | FieldState::Invalid(reason) => Some(reason),
        }
    }

    fn name(self) -> &'static str {
        match self {
            FieldState::Valid => "valid",
            FieldState::Incomplete(_) => "potentially_valid",
            FieldState::Invalid(_) => "invalid",
        }
    }
}

impl Serialize for FieldState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("FieldState", 2)?;
        s.serialize_field("state", self.name())?;
        s.serialize_field("reason", &self.reason())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_state_and_reason_code() {
        let json = serde_json::to_string(&FieldState::Incomplete(Reason::IncompleteCvc)).unwrap();
        assert_eq!(json, r#"{"state":"potentially_valid","reason":"incomplete_cvc"}"#);
        let json = serde_json::to_string(&FieldState::Valid).unwrap();
        assert_eq!(json, r#"{"state":"valid","reason":null}"#);
        assert_eq!(serde_json::to_string(&Reason::InvalidExpiryMonth).unwrap(), r#""invalid_expiry_month""#);
    }

    #[test]
    fn codes_match_serde_names() {
        let all = [
            Reason::InvalidCharacters,
            Reason::IncompleteNumber,
            Reason::InvalidNumber,
            Reason::UnsupportedBrand,
            Reason::IncompleteExpiry,
            Reason::InvalidExpiryMonth,
            Reason::InvalidExpiryYear,
            Reason::Expired,
            Reason::ExpiryTooFar,
            Reason::IncompleteCvc,
            Reason::InvalidCvc,
        ];
        for reason in all {
            assert_eq!(serde_json::to_string(&reason).unwrap(), format!("\"{}\"", reason.code()));
            assert!(!reason.message().is_empty());
        }
    }
}
