//! The card number: the secret [`Pan`] type, as-you-type validation and masking.

#[allow(unused_imports)]
use crate::prelude::*;

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::brand::{Brand, Detected, LuhnPolicy, MAX_PAN_LENGTH, MIN_PAN_LENGTH, detect};
use crate::state::{FieldState, Reason};

/// Characters a cardholder may use to group digits.
fn is_separator(c: char) -> bool {
    c == ' ' || c == '-'
}

/// The ASCII digits of `input`, in order, ignoring everything else.
///
/// # Example
/// ```
/// assert_eq!(card::digits("4111 1111-1111"), "411111111111");
/// ```
pub fn digits(input: &str) -> String {
    input.chars().filter(char::is_ascii_digit).collect()
}

/// Why a string is not an acceptable card number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PanError {
    /// A character other than a digit, space or dash, at this char index. The character itself
    /// is not kept: it could be part of card data.
    InvalidCharacter {
        /// Char index of the first offending character.
        position: usize,
    },
    /// Fewer than 12 digits, or fewer than the brand's shortest length.
    TooShort,
    /// More than 19 digits, or more than the brand's longest length.
    TooLong,
    /// No supported brand issues numbers starting like this.
    UnsupportedBrand,
    /// The brand does not issue numbers of this length.
    InvalidLength,
    /// The Luhn check digit is wrong.
    LuhnCheckFailed,
}

impl PanError {
    /// The reason code for this error.
    pub fn reason(self) -> Reason {
        match self {
            PanError::InvalidCharacter { .. } => Reason::InvalidCharacters,
            PanError::TooShort => Reason::IncompleteNumber,
            PanError::UnsupportedBrand => Reason::UnsupportedBrand,
            PanError::TooLong | PanError::InvalidLength | PanError::LuhnCheckFailed => Reason::InvalidNumber,
        }
    }
}

impl fmt::Display for PanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PanError::InvalidCharacter { position } => {
                write!(f, "card number has an invalid character at position {position}")
            }
            PanError::TooShort => f.write_str("card number is too short"),
            PanError::TooLong => f.write_str("card number is too long"),
            PanError::UnsupportedBrand => f.write_str("card brand is not supported"),
            PanError::InvalidLength => f.write_str("card number length is not valid for its brand"),
            PanError::LuhnCheckFailed => f.write_str("card number fails the Luhn check"),
        }
    }
}

impl core::error::Error for PanError {}

/// A primary account number that passed every check: digits only, supported brand, valid
/// length for that brand, Luhn (where the brand requires it).
///
/// It is a secret: the digits are zeroized on drop, `Debug` and `Display` show only the masked
/// form, equality is constant-time, and it does not implement `Serialize`. Reading the digits
/// takes an explicit [`Pan::expose`].
#[derive(Clone)]
pub struct Pan {
    digits: Zeroizing<String>,
    brand: Brand,
}

impl Pan {
    /// Parses a card number as a cardholder types or pastes it: digits, optionally grouped by
    /// spaces or dashes.
    ///
    /// # Errors
    /// [`PanError`] naming the first rule broken: an invalid character, too short or long,
    /// an unsupported brand, a length the brand does not issue, or a failed Luhn check.
    ///
    /// # Example
    /// ```
    /// use card::{Brand, Pan, PanError};
    /// let pan = Pan::parse("4111 1111-1111 1111")?;
    /// assert_eq!(pan.brand(), Brand::Visa);
    /// assert_eq!(pan.to_string(), "4111 **** **** 1111");
    /// assert_eq!(Pan::parse("4111 1111 1111 1112").unwrap_err(), PanError::LuhnCheckFailed);
    /// # Ok::<(), PanError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Pan, PanError> {
        let mut digits = Zeroizing::new(String::with_capacity(MAX_PAN_LENGTH));
        for (position, c) in input.chars().enumerate() {
            // Separators group digits: they may not come first (`-4242…` is not a number).
            if position == 0 && is_separator(c) {
                return Err(PanError::InvalidCharacter { position });
            }
            if c.is_ascii_digit() {
                if digits.len() == MAX_PAN_LENGTH {
                    return Err(PanError::TooLong);
                }
                digits.push(c);
            } else if !is_separator(c) {
                return Err(PanError::InvalidCharacter { position });
            }
        }
        if digits.len() < MIN_PAN_LENGTH {
            return Err(PanError::TooShort);
        }
        let brand = detect(&digits).brand().ok_or(PanError::UnsupportedBrand)?;
        let len = digits.len();
        if !brand.has_length(len) {
            let shortest = brand.lengths().first().map_or(MIN_PAN_LENGTH, |&l| usize::from(l));
            return Err(if len < shortest {
                PanError::TooShort
            } else if len > brand.max_length() {
                PanError::TooLong
            } else {
                PanError::InvalidLength
            });
        }
        if brand.luhn() == LuhnPolicy::Required && !luhn_valid(&digits) {
            return Err(PanError::LuhnCheckFailed);
        }
        Ok(Pan { digits, brand })
    }

    /// The brand.
    pub fn brand(&self) -> Brand {
        self.brand
    }

    /// The digits. Named so every read of the secret is visible in review.
    pub fn expose(&self) -> &str {
        &self.digits
    }

    /// The last four digits (safe to display and store in clear).
    pub fn last4(&self) -> &str {
        self.digits.get(self.digits.len() - 4..).unwrap_or_default()
    }

    /// The bank identification number: the first 8 digits of a PAN of 16 or more digits, the
    /// first 6 otherwise (PCI DSS allows BIN + last 4 to be shown).
    pub fn bin(&self) -> &str {
        let len = if self.digits.len() >= 16 { 8 } else { 6 };
        self.digits.get(..len).unwrap_or_default()
    }

    /// The number for display: first 4 and last 4 digits, the rest masked, grouped by the
    /// brand's gaps, e.g. `4111 **** **** 1111` or `3782 ****** *0005`.
    pub fn masked(&self) -> String {
        mask(&self.digits, Some(self.brand))
    }
}

/// Masks a digit string for display: first 4 and last 4 digits visible, grouped by the brand's
/// gaps. Non-digits are ignored; fewer than 9 digits are fully masked.
///
/// # Example
/// ```
/// use card::{mask, Brand};
/// assert_eq!(mask("4111111111111111", Some(Brand::Visa)), "4111 **** **** 1111");
/// assert_eq!(mask("378282246310005", Some(Brand::Amex)), "3782 ****** *0005");
/// ```
pub fn mask(input: &str, brand: Option<Brand>) -> String {
    let digits: Vec<u8> = input.bytes().filter(u8::is_ascii_digit).collect();
    let len = digits.len();
    let gaps = brand.map_or(crate::brand::DEFAULT_GAPS, |b| b.gaps(len));
    let mut out = String::with_capacity(len + gaps.len());
    for (i, &d) in digits.iter().enumerate() {
        if gaps.iter().any(|&g| usize::from(g) == i) {
            out.push(' ');
        }
        let visible = len > 8 && (i < 4 || i >= len - 4);
        out.push(if visible { char::from(d) } else { '*' });
    }
    out
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({}, ****{})", self.brand, self.last4())
    }
}

impl fmt::Display for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl PartialEq for Pan {
    fn eq(&self, other: &Pan) -> bool {
        self.digits.as_bytes().ct_eq(other.digits.as_bytes()).into()
    }
}

impl Eq for Pan {}

/// The result of checking a card number as typed so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NumberCheck {
    /// Valid, potentially valid or invalid, with a reason.
    pub state: FieldState,
    /// The brand detected from the digits so far.
    pub detected: Detected,
}

/// Checks a card number as typed so far (spaces and dashes allowed).
///
/// # Example
/// ```
/// use card::{validate_number, Brand, FieldState, Reason};
/// let check = validate_number("4111 1111");
/// assert_eq!(check.state, FieldState::Incomplete(Reason::IncompleteNumber));
/// assert_eq!(check.detected.brand(), Some(Brand::Visa));
/// assert!(validate_number("4111 1111 1111 1111").state.is_valid());
/// assert_eq!(validate_number("7").state, FieldState::Invalid(Reason::UnsupportedBrand));
/// ```
pub fn validate_number(input: &str) -> NumberCheck {
    let mut buf = Zeroizing::new([0u8; MAX_PAN_LENGTH]);
    let mut len = 0;
    for (position, c) in input.chars().enumerate() {
        // As `Pan::parse`: separators group digits and may not come first, so the browser and
        // the server agree on every input.
        if position == 0 && is_separator(c) {
            return NumberCheck { state: FieldState::Invalid(Reason::InvalidCharacters), detected: Detected::Unknown };
        }
        if c.is_ascii_digit() {
            if len == MAX_PAN_LENGTH {
                let detected = detect(core::str::from_utf8(buf.as_ref()).unwrap_or_default());
                return NumberCheck { state: FieldState::Invalid(Reason::InvalidNumber), detected };
            }
            if let Some(slot) = buf.get_mut(len) {
                *slot = c as u8;
            }
            len += 1;
        } else if !is_separator(c) {
            let detected = Detected::Unknown;
            return NumberCheck { state: FieldState::Invalid(Reason::InvalidCharacters), detected };
        }
    }
    let digits = buf.get(..len).and_then(|d| core::str::from_utf8(d).ok()).unwrap_or_default();
    let detected = detect(digits);
    let state = number_state(digits, detected);
    NumberCheck { state, detected }
}

fn number_state(digits: &str, detected: Detected) -> FieldState {
    let len = digits.len();
    match detected {
        _ if len == 0 => FieldState::Incomplete(Reason::IncompleteNumber),
        Detected::Unknown => FieldState::Invalid(Reason::UnsupportedBrand),
        Detected::Ambiguous(_) => {
            if len < detected.max_length() {
                FieldState::Incomplete(Reason::IncompleteNumber)
            } else {
                FieldState::Invalid(Reason::InvalidNumber)
            }
        }
        Detected::Brand(brand) => {
            let max = brand.max_length();
            if len > max {
                return FieldState::Invalid(Reason::InvalidNumber);
            }
            let luhn_ok = brand.luhn() == LuhnPolicy::NotEnforced || luhn_valid(digits);
            match (brand.has_length(len), luhn_ok) {
                (true, true) => FieldState::Valid,
                // A longer length may still come: invalid as it stands, but not hopeless.
                (true, false) if len < max => FieldState::Incomplete(Reason::InvalidNumber),
                (true, false) => FieldState::Invalid(Reason::InvalidNumber),
                (false, _) if len < max => FieldState::Incomplete(Reason::IncompleteNumber),
                (false, _) => FieldState::Invalid(Reason::InvalidNumber),
            }
        }
    }
}

/// The Luhn (mod 10) check over the decimal digits of `s`, other characters skipped; false
/// when there is no digit. The same answers as the `luhn` crate's `valid`, which links `std`.
fn luhn_valid(s: &str) -> bool {
    let mut any = false;
    let mut sum = 0u32;
    for (i, digit) in s.chars().rev().filter_map(|c| c.to_digit(10)).enumerate() {
        any = true;
        sum += if i % 2 == 0 { digit } else { digit / 5 + (2 * digit) % 10 };
    }
    any && sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test numbers published by the schemes and processors for testing.
    const VALID: &[(&str, Brand)] = &[
        ("4111111111111111", Brand::Visa),
        ("4242424242424242", Brand::Visa),
        ("4000056655665556", Brand::Visa),
        ("5555555555554444", Brand::Mastercard),
        ("2223003122003222", Brand::Mastercard),
        ("5105105105105100", Brand::Mastercard),
        ("378282246310005", Brand::Amex),
        ("371449635398431", Brand::Amex),
        ("6011111111111117", Brand::Discover),
        ("6011000990139424", Brand::Discover),
        ("30569309025904", Brand::Diners),
        ("38520000023237", Brand::Diners),
        ("3566002020360505", Brand::Jcb),
        ("6200000000000005", Brand::Unionpay),
        ("6759649826438453", Brand::Maestro),
        ("2200000000000004", Brand::Mir),
        ("6362970000457013", Brand::Elo),
        ("6062826786276634", Brand::Hipercard),
        ("9792030000000000", Brand::Troy),
        ("5061000000000000007", Brand::Verve),
        ("6370950000000005", Brand::Hiper),
    ];

    #[test]
    fn published_test_numbers_parse_with_their_brand() {
        for &(number, brand) in VALID {
            let pan = Pan::parse(number).unwrap_or_else(|e| panic!("{number}: {e}"));
            assert_eq!(pan.brand(), brand, "{number}");
            assert!(validate_number(number).state.is_valid(), "{number}");
        }
    }

    #[test]
    fn parse_rules() {
        let table: &[(&str, PanError)] = &[
            ("4111 1111 1111 111a", PanError::InvalidCharacter { position: 18 }),
            ("4111.1111.1111.1111", PanError::InvalidCharacter { position: 4 }),
            ("-4242424242424242", PanError::InvalidCharacter { position: 0 }),
            (" 4242424242424242", PanError::InvalidCharacter { position: 0 }),
            ("41111111111", PanError::TooShort),
            ("41111111111111111111", PanError::TooLong),
            ("7111111111111111", PanError::UnsupportedBrand),
            ("411111111111111", PanError::TooShort),
            ("41111111111111111", PanError::InvalidLength),
            ("37828224631000", PanError::TooShort),
            ("4111111111111112", PanError::LuhnCheckFailed),
            ("", PanError::TooShort),
        ];
        for &(input, expected) in table {
            assert_eq!(Pan::parse(input).map(|p| p.brand()), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn unionpay_need_not_pass_luhn() {
        let pan = Pan::parse("6212345678901232").unwrap();
        assert_eq!(pan.brand(), Brand::Unionpay);
        assert!(Pan::parse("6212345678901234").is_ok(), "Luhn-invalid UnionPay is accepted");
    }

    #[test]
    fn partial_states() {
        use FieldState::*;
        let table: &[(&str, FieldState)] = &[
            ("", Incomplete(Reason::IncompleteNumber)),
            ("4", Incomplete(Reason::IncompleteNumber)),
            ("4111 1111 1111 111", Incomplete(Reason::IncompleteNumber)),
            ("4111 1111 1111 1111", Valid),
            // 16 digits failing Luhn: Visa also issues 18 and 19 digits.
            ("4111 1111 1111 1112", Incomplete(Reason::InvalidNumber)),
            ("5555 5555 5555 4445", Invalid(Reason::InvalidNumber)),
            ("5555 5555 5555 44441", Invalid(Reason::InvalidNumber)),
            ("3782 822463 10005", Valid),
            ("3782 822463 100051", Invalid(Reason::InvalidNumber)),
            ("7", Invalid(Reason::UnsupportedBrand)),
            ("4111x", Invalid(Reason::InvalidCharacters)),
            (" 4111", Invalid(Reason::InvalidCharacters)),
            ("-4111 1111 1111 1111", Invalid(Reason::InvalidCharacters)),
            ("41111111111111111111", Invalid(Reason::InvalidNumber)),
        ];
        for &(input, expected) in table {
            assert_eq!(validate_number(input).state, expected, "{input:?}");
        }
    }

    #[test]
    fn masks_bin_and_last4() {
        let visa = Pan::parse("4111111111111111").unwrap();
        assert_eq!(visa.masked(), "4111 **** **** 1111");
        assert_eq!(visa.last4(), "1111");
        assert_eq!(visa.bin(), "41111111");
        let amex = Pan::parse("378282246310005").unwrap();
        assert_eq!(amex.masked(), "3782 ****** *0005");
        assert_eq!(amex.bin(), "378282");
        let diners = Pan::parse("30569309025904").unwrap();
        assert_eq!(diners.masked(), "3056 ****** 5904");
        let verve = Pan::parse("5061000000000000007").unwrap();
        assert_eq!(verve.masked(), "5061 **** **** ***0 007");
        assert_eq!(mask("4111", None), "****");
    }

    #[test]
    fn debug_and_display_never_show_the_middle_digits() {
        let pan = Pan::parse("4000056655665556").unwrap();
        let shown = format!("{pan:?} {pan} {pan:#?}");
        assert!(!shown.contains("4000056655665556"));
        assert!(!shown.contains("55665556"), "last 8 digits must not appear: {shown}");
        assert!(shown.contains("5556"));
    }

    #[test]
    fn equality_compares_digits() {
        let a = Pan::parse("4111 1111 1111 1111").unwrap();
        let b = Pan::parse("4111-1111-1111-1111").unwrap();
        let c = Pan::parse("4242424242424242").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
