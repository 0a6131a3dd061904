//! The published test cards: the only card numbers a vault in test mode accepts.
//!
//! Test-mode keys are often treated as non-secret (they sit in CI configs and front-end
//! repositories), so a test-mode vault must never hold a real card. These numbers are the
//! well-known public test numbers of the card networks and processors (Stripe, Adyen, Braintree
//! publish the same ones); none of them is issued to a cardholder. The list is part of the
//! public contract (`docs/http-api.md`, "Test cards").

#[allow(unused_imports)]
use crate::prelude::*;

use crate::brand::Brand;
use crate::number::Pan;

/// Every accepted test card: digits and the brand they detect as.
pub const TEST_CARDS: &[(&str, Brand)] = &[
    ("4242424242424242", Brand::Visa),
    ("4000056655665556", Brand::Visa),
    ("4111111111111111", Brand::Visa),
    ("4012888888881881", Brand::Visa),
    ("4000000000000002", Brand::Visa),
    ("4000000000009995", Brand::Visa),
    ("5555555555554444", Brand::Mastercard),
    ("2223003122003222", Brand::Mastercard),
    ("5200828282828210", Brand::Mastercard),
    ("5105105105105100", Brand::Mastercard),
    ("378282246310005", Brand::Amex),
    ("371449635398431", Brand::Amex),
    ("6011111111111117", Brand::Discover),
    ("6011000990139424", Brand::Discover),
    ("30569309025904", Brand::Diners),
    ("38520000023237", Brand::Diners),
    ("3056930009020004", Brand::Diners),
    ("3566002020360505", Brand::Jcb),
    ("6200000000000005", Brand::Unionpay),
    ("6759649826438453", Brand::Maestro),
    ("2200000000000004", Brand::Mir),
    ("6362970000457013", Brand::Elo),
    ("6062826786276634", Brand::Hipercard),
    ("6370950000000005", Brand::Hiper),
    ("9792030000000000", Brand::Troy),
    ("5061000000000000007", Brand::Verve),
];

/// Whether `pan` is one of the published [`TEST_CARDS`] (compared in constant time per entry).
///
/// # Example
/// ```
/// use card::{Pan, is_test_card};
/// assert!(is_test_card(&Pan::parse("4242 4242 4242 4242")?));
/// assert!(!is_test_card(&Pan::parse("4000 0566 5566 5564")?)); // Luhn-valid, not published
/// # Ok::<(), card::PanError>(())
/// ```
pub fn is_test_card(pan: &Pan) -> bool {
    let mut found = subtle::Choice::from(0);
    for (digits, _) in TEST_CARDS {
        // Every entry is compared, so the time does not depend on which one matched. The
        // entries are bare digits (a unit test checks it) and a `Pan` holds bare digits, so
        // they compare byte for byte, without parsing the table on every call (which cost
        // about a tenth of the vault's CPU per tokenization).
        found |= subtle::ConstantTimeEq::ct_eq(digits.as_bytes(), pan.expose().as_bytes());
    }
    found.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_test_card_is_valid_and_has_its_brand() {
        for &(digits, brand) in TEST_CARDS {
            let pan = Pan::parse(digits).unwrap_or_else(|e| panic!("{digits}: {e}"));
            assert_eq!(pan.brand(), brand, "{digits}");
            assert_eq!(pan.expose(), digits, "entries are bare digits, compared as bytes");
            assert!(is_test_card(&pan));
            assert!(is_test_card(&Pan::parse(&digits.replace("4", "4 ")).unwrap()), "{digits}, spaced");
        }
        for brand in Brand::ALL {
            assert!(TEST_CARDS.iter().any(|&(_, b)| b == brand), "no test card for {brand:?}");
        }
    }

    #[test]
    fn other_valid_numbers_are_not_test_cards() {
        for digits in ["4000056655665564", "5555555555554477", "4111111111111129"] {
            let pan = Pan::parse(digits).unwrap_or_else(|e| panic!("{digits}: {e}"));
            assert!(!is_test_card(&pan), "{digits}");
        }
    }
}
