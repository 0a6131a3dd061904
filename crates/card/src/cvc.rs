//! The card security code (CVC, CVV, CID, ...): the secret [`Cvc`] type and validation.

#[allow(unused_imports)]
use crate::prelude::*;

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::brand::Brand;
use crate::state::{FieldState, Reason};

/// The longest security code any brand uses.
pub const MAX_CVC_LENGTH: usize = 4;

/// Why a security code is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CvcError {
    /// Something other than ASCII digits.
    InvalidCharacters,
    /// Fewer digits than the brand's security code has.
    TooShort,
    /// More digits than the brand's security code has.
    TooLong,
}

impl CvcError {
    /// The reason code for this error.
    pub fn reason(self) -> Reason {
        match self {
            CvcError::TooShort => Reason::IncompleteCvc,
            CvcError::InvalidCharacters | CvcError::TooLong => Reason::InvalidCvc,
        }
    }
}

impl fmt::Display for CvcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CvcError::InvalidCharacters => "security code must be digits",
            CvcError::TooShort => "security code is too short",
            CvcError::TooLong => "security code is too long",
        })
    }
}

impl core::error::Error for CvcError {}

/// A card security code. A secret: zeroized on drop, never shown by `Debug`/`Display`,
/// compared in constant time, not `Serialize`. PCI DSS 3.3.1: never stored after use.
#[derive(Clone)]
pub struct Cvc(Zeroizing<String>);

/// The digit counts acceptable for `brand` (3 or 4 when the brand is unknown).
fn lengths(brand: Option<Brand>) -> (usize, usize) {
    match brand {
        Some(brand) => {
            let size = usize::from(brand.security_code().size);
            (size, size)
        }
        None => (3, MAX_CVC_LENGTH),
    }
}

impl Cvc {
    /// Parses a security code for a card of `brand` (3 or 4 digits if the brand is unknown).
    /// Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`CvcError`] for non-digits or a length the brand does not use.
    ///
    /// # Example
    /// ```
    /// use card::{Brand, Cvc, CvcError};
    /// assert!(Cvc::parse("1234", Some(Brand::Amex)).is_ok());
    /// assert_eq!(Cvc::parse("1234", Some(Brand::Visa)).unwrap_err(), CvcError::TooLong);
    /// assert_eq!(format!("{:?}", Cvc::parse("123", None)?), "Cvc(***)");
    /// # Ok::<(), CvcError>(())
    /// ```
    pub fn parse(input: &str, brand: Option<Brand>) -> Result<Cvc, CvcError> {
        let input = input.trim();
        if !input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CvcError::InvalidCharacters);
        }
        let (min, max) = lengths(brand);
        match input.len() {
            len if len < min => Err(CvcError::TooShort),
            len if len > max => Err(CvcError::TooLong),
            _ => Ok(Cvc(Zeroizing::new(input.to_owned()))),
        }
    }

    /// The digits. Named so every read of the secret is visible in review.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvc(***)")
    }
}

impl fmt::Display for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl PartialEq for Cvc {
    fn eq(&self, other: &Cvc) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Cvc {}

/// Checks a security code as typed so far for a card of `brand`.
///
/// # Example
/// ```
/// use card::{validate_cvc, Brand, FieldState, Reason};
/// assert_eq!(validate_cvc("12", Some(Brand::Visa)), FieldState::Incomplete(Reason::IncompleteCvc));
/// assert_eq!(validate_cvc("123", Some(Brand::Amex)), FieldState::Incomplete(Reason::IncompleteCvc));
/// assert_eq!(validate_cvc("1234", Some(Brand::Amex)), FieldState::Valid);
/// assert_eq!(validate_cvc("1234", Some(Brand::Visa)), FieldState::Invalid(Reason::InvalidCvc));
/// ```
pub fn validate_cvc(input: &str, brand: Option<Brand>) -> FieldState {
    match Cvc::parse(input, brand) {
        Ok(_) => FieldState::Valid,
        Err(CvcError::TooShort) => FieldState::Incomplete(Reason::IncompleteCvc),
        Err(e) => FieldState::Invalid(e.reason()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_follows_the_brand() {
        use FieldState::*;
        let table: &[(&str, Option<Brand>, FieldState)] = &[
            ("", Some(Brand::Visa), Incomplete(Reason::IncompleteCvc)),
            ("12", Some(Brand::Visa), Incomplete(Reason::IncompleteCvc)),
            ("123", Some(Brand::Visa), Valid),
            ("1234", Some(Brand::Visa), Invalid(Reason::InvalidCvc)),
            ("123", Some(Brand::Amex), Incomplete(Reason::IncompleteCvc)),
            ("1234", Some(Brand::Amex), Valid),
            ("12345", Some(Brand::Amex), Invalid(Reason::InvalidCvc)),
            ("123", None, Valid),
            ("1234", None, Valid),
            ("12345", None, Invalid(Reason::InvalidCvc)),
            ("12a", None, Invalid(Reason::InvalidCvc)),
            ("１２３", None, Invalid(Reason::InvalidCvc)),
        ];
        for &(input, brand, expected) in table {
            assert_eq!(validate_cvc(input, brand), expected, "{input:?} {brand:?}");
        }
    }

    #[test]
    fn is_secret_in_debug_and_display() {
        let cvc = Cvc::parse("987", None).unwrap();
        assert_eq!(format!("{cvc:?}{cvc}"), "Cvc(***)***");
        assert_eq!(cvc.expose(), "987");
        assert_eq!(cvc, Cvc::parse(" 987 ", None).unwrap());
        assert_ne!(cvc, Cvc::parse("986", None).unwrap());
    }
}
