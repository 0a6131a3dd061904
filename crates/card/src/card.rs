//! A whole card as submitted for tokenization: number, expiry and security code, checked
//! together (the security code's length depends on the number's brand).

#[allow(unused_imports)]
use crate::prelude::*;

use core::fmt;

use serde::Serialize;

use crate::brand::Brand;
use crate::cvc::Cvc;
use crate::expiry::{Expiry, YearMonth};
use crate::number::Pan;
use crate::state::Reason;

/// Which field of a card an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CardField {
    /// The card number.
    Number,
    /// The expiry date (in the HTTP API: `exp_month` / `exp_year`).
    Expiry,
    /// The security code.
    Cvc,
}

impl CardField {
    /// The lower-case field name used in public contracts.
    pub const fn name(self) -> &'static str {
        match self {
            CardField::Number => "number",
            CardField::Expiry => "expiry",
            CardField::Cvc => "cvc",
        }
    }
}

/// The first problem found with a card, and in which field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardError {
    /// The field at fault.
    pub field: CardField,
    /// What is wrong with it.
    pub reason: Reason,
}

impl CardError {
    /// The reason code, e.g. `invalid_number`.
    pub fn code(self) -> &'static str {
        self.reason.code()
    }
}

impl fmt::Display for CardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field.name(), self.reason.message())
    }
}

impl core::error::Error for CardError {}

/// A card whose every field passed validation against a reference month. Holds secrets:
/// `Debug` is masked, nothing is `Serialize`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    pan: Pan,
    expiry: Expiry,
    cvc: Option<Cvc>,
}

impl Card {
    /// Checks a card given as the HTTP API receives it. `exp_year` may have two or four digits;
    /// the security code is optional (some flows, such as recurring payments, have none).
    ///
    /// # Errors
    /// [`CardError`] for the first invalid field, in the order number, expiry, security code.
    ///
    /// # Example
    /// ```
    /// use card::{Card, CardField, Reason, YearMonth};
    /// let today = YearMonth::new(2026, 11).unwrap();
    /// let card = Card::validate("4242 4242 4242 4242", 12, 2030, Some("123"), today)?;
    /// assert_eq!(card.pan().last4(), "4242");
    /// let err = Card::validate("378282246310005", 12, 30, Some("123"), today).unwrap_err();
    /// assert_eq!((err.field, err.reason), (CardField::Cvc, Reason::IncompleteCvc));
    /// # Ok::<(), card::CardError>(())
    /// ```
    pub fn validate(
        number: &str,
        exp_month: u8,
        exp_year: u16,
        cvc: Option<&str>,
        today: YearMonth,
    ) -> Result<Card, CardError> {
        let pan = Pan::parse(number).map_err(|e| CardError { field: CardField::Number, reason: e.reason() })?;
        let expiry =
            Expiry::new(exp_month, exp_year).map_err(|e| CardError { field: CardField::Expiry, reason: e.reason() })?;
        let cvc = cvc
            .map(|cvc| Cvc::parse(cvc, Some(pan.brand())))
            .transpose()
            .map_err(|e| CardError { field: CardField::Cvc, reason: e.reason() })?;
        Card::new(pan, expiry, cvc, today)
    }

    /// Combines already parsed fields, checking the expiry against `today` and the security
    /// code's length against the brand.
    ///
    /// # Errors
    /// [`CardError`] if the card expired, expires implausibly far out, or the security code
    /// has the wrong length for the brand.
    pub fn new(pan: Pan, expiry: Expiry, cvc: Option<Cvc>, today: YearMonth) -> Result<Card, CardError> {
        expiry.check(today).map_err(|e| CardError { field: CardField::Expiry, reason: e.reason() })?;
        if let Some(code) = &cvc {
            Cvc::parse(code.expose(), Some(pan.brand()))
                .map_err(|e| CardError { field: CardField::Cvc, reason: e.reason() })?;
        }
        Ok(Card { pan, expiry, cvc })
    }

    /// The card number.
    pub fn pan(&self) -> &Pan {
        &self.pan
    }

    /// The brand.
    pub fn brand(&self) -> Brand {
        self.pan.brand()
    }

    /// The expiry date.
    pub fn expiry(&self) -> Expiry {
        self.expiry
    }

    /// The security code, if one was given.
    pub fn cvc(&self) -> Option<&Cvc> {
        self.cvc.as_ref()
    }

    /// Takes the security code out, so it can be used once and then dropped (zeroized).
    pub fn take_cvc(&mut self) -> Option<Cvc> {
        self.cvc.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> YearMonth {
        YearMonth::new(2026, 11).unwrap()
    }

    type Case<'a> = (&'a str, u8, u16, Option<&'a str>, Option<(CardField, Reason)>);

    #[test]
    fn reports_the_first_bad_field() {
        let table: &[Case<'_>] = &[
            ("4242424242424242", 12, 2030, Some("123"), None),
            ("4242424242424242", 12, 2030, None, None),
            ("4242424242424241", 12, 2030, Some("123"), Some((CardField::Number, Reason::InvalidNumber))),
            ("4242424242424242", 13, 2030, Some("123"), Some((CardField::Expiry, Reason::InvalidExpiryMonth))),
            ("4242424242424242", 10, 2026, Some("123"), Some((CardField::Expiry, Reason::Expired))),
            ("4242424242424242", 12, 2030, Some("1234"), Some((CardField::Cvc, Reason::InvalidCvc))),
            ("378282246310005", 12, 2030, Some("1234"), None),
            ("378282246310005", 12, 2030, Some("12x4"), Some((CardField::Cvc, Reason::InvalidCvc))),
        ];
        for &(number, month, year, cvc, expected) in table {
            let got = Card::validate(number, month, year, cvc, today()).err().map(|e| (e.field, e.reason));
            assert_eq!(got, expected, "{number} {month}/{year} {cvc:?}");
        }
    }

    #[test]
    fn debug_is_masked_and_cvc_can_be_taken_once() {
        let mut card = Card::validate("4000056655665556", 12, 30, Some("987"), today()).unwrap();
        let shown = format!("{card:?}");
        assert!(!shown.contains("55665556") && !shown.contains("987"), "{shown}");
        assert!(card.take_cvc().is_some());
        assert!(card.take_cvc().is_none());
    }
}
