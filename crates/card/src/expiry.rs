//! Expiry dates. There is no clock here: callers pass "today" as a [`YearMonth`].

#[allow(unused_imports)]
use crate::prelude::*;

use core::fmt;

use crate::state::{FieldState, Reason};

/// Cards are not issued for longer than this; a date further out is a typo.
pub const MAX_YEARS_AHEAD: u16 = 20;

/// A calendar month, the reference point ("today") for expiry checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    year: u16,
    month: u8,
}

impl YearMonth {
    /// # Errors
    /// [`ExpiryError::InvalidMonth`] unless `month` is 1–12, [`ExpiryError::InvalidYear`]
    /// unless `year` is 1000–9999.
    ///
    /// # Example
    /// ```
    /// let today = card::YearMonth::new(2026, 11)?;
    /// assert_eq!(today.year(), 2026);
    /// # Ok::<(), card::ExpiryError>(())
    /// ```
    pub fn new(year: u16, month: u8) -> Result<YearMonth, ExpiryError> {
        if !(1..=12).contains(&month) {
            return Err(ExpiryError::InvalidMonth);
        }
        if !(1000..=9999).contains(&year) {
            return Err(ExpiryError::InvalidYear);
        }
        Ok(YearMonth { year, month })
    }

    /// The four-digit year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month, 1–12.
    pub fn month(self) -> u8 {
        self.month
    }

    fn index(self) -> u32 {
        u32::from(self.year) * 12 + u32::from(self.month) - 1
    }
}

/// Why an expiry date is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpiryError {
    /// Month or year missing.
    Incomplete,
    /// Something other than digits, spaces and one `/` or `-`.
    InvalidCharacters,
    /// The month is not 1–12.
    InvalidMonth,
    /// The year is not two or four digits.
    InvalidYear,
    /// The card expired before the reference month.
    Expired,
    /// More than [`MAX_YEARS_AHEAD`] years after the reference month.
    TooFar,
}

impl ExpiryError {
    /// The reason code for this error.
    pub fn reason(self) -> Reason {
        match self {
            ExpiryError::Incomplete => Reason::IncompleteExpiry,
            ExpiryError::InvalidCharacters | ExpiryError::InvalidMonth => Reason::InvalidExpiryMonth,
            ExpiryError::InvalidYear => Reason::InvalidExpiryYear,
            ExpiryError::Expired => Reason::Expired,
            ExpiryError::TooFar => Reason::ExpiryTooFar,
        }
    }
}

impl fmt::Display for ExpiryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExpiryError::Incomplete => "expiry date is incomplete",
            ExpiryError::InvalidCharacters => "expiry date has invalid characters",
            ExpiryError::InvalidMonth => "expiry month must be 1-12",
            ExpiryError::InvalidYear => "expiry year must have two or four digits",
            ExpiryError::Expired => "card has expired",
            ExpiryError::TooFar => "expiry date is too far in the future",
        })
    }
}

impl core::error::Error for ExpiryError {}

/// A card's expiry month. The card is valid through the last day of that month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Expiry {
    month: YearMonth,
}

impl Expiry {
    /// From numeric fields (as the HTTP API receives them). A year below 100 is read as
    /// 2000 + year.
    ///
    /// # Errors
    /// [`ExpiryError::InvalidMonth`] or [`ExpiryError::InvalidYear`].
    ///
    /// # Example
    /// ```
    /// let expiry = card::Expiry::new(12, 30)?;
    /// assert_eq!((expiry.month(), expiry.year()), (12, 2030));
    /// # Ok::<(), card::ExpiryError>(())
    /// ```
    pub fn new(month: u8, year: u16) -> Result<Expiry, ExpiryError> {
        let year = match year {
            0..=99 => 2000 + year,
            1000..=9999 => year,
            _ => return Err(ExpiryError::InvalidYear),
        };
        YearMonth::new(year, month).map(|month| Expiry { month })
    }

    /// Parses `MM/YY`, `MM / YY`, `MMYY`, `M/YY`, `MM/YYYY` (also with `-` instead of `/`).
    ///
    /// # Errors
    /// [`ExpiryError`] for malformed input. Whether the date is in range is a separate
    /// question: see [`Expiry::check`].
    ///
    /// # Example
    /// ```
    /// use card::Expiry;
    /// for input in ["12/30", "12 / 30", "1230", "12/2030"] {
    ///     assert_eq!(Expiry::parse(input)?, Expiry::new(12, 2030)?);
    /// }
    /// assert_eq!(Expiry::parse("1/30")?, Expiry::new(1, 2030)?);
    /// # Ok::<(), card::ExpiryError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Expiry, ExpiryError> {
        let parts = split(input)?;
        let month = parse_month(parts.month)?;
        let year = match parts.year.len() {
            0 | 1 | 3 => return Err(ExpiryError::Incomplete),
            2 | 4 => number(parts.year),
            _ => return Err(ExpiryError::InvalidYear),
        };
        Expiry::new(month, year)
    }

    /// The month, 1–12.
    pub fn month(self) -> u8 {
        self.month.month()
    }

    /// The four-digit year.
    pub fn year(self) -> u16 {
        self.month.year()
    }

    /// Checks the date against the reference month `today`.
    ///
    /// # Errors
    /// [`ExpiryError::Expired`] if the expiry month is before `today`,
    /// [`ExpiryError::TooFar`] if it is more than [`MAX_YEARS_AHEAD`] years after it.
    ///
    /// # Example
    /// ```
    /// use card::{Expiry, ExpiryError, YearMonth};
    /// let today = YearMonth::new(2026, 11)?;
    /// assert_eq!(Expiry::new(11, 2026)?.check(today), Ok(()));
    /// assert_eq!(Expiry::new(10, 2026)?.check(today), Err(ExpiryError::Expired));
    /// assert_eq!(Expiry::new(12, 2046)?.check(today), Err(ExpiryError::TooFar));
    /// # Ok::<(), ExpiryError>(())
    /// ```
    pub fn check(self, today: YearMonth) -> Result<(), ExpiryError> {
        let month = self.month.index();
        if month < today.index() {
            Err(ExpiryError::Expired)
        } else if month > today.index() + u32::from(MAX_YEARS_AHEAD) * 12 {
            Err(ExpiryError::TooFar)
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for Expiry {
    /// `MM / YY`, as the frame shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02} / {:02}", self.month(), self.year() % 100)
    }
}

/// Month and year digit strings of an expiry as typed.
struct Parts<'a> {
    month: &'a str,
    year: &'a str,
    /// The month was given without a separator and normalised (e.g. `3` → `03`).
    normalised: Option<[u8; 2]>,
}

impl Parts<'_> {
    fn month(&self) -> &str {
        match &self.normalised {
            Some(m) => core::str::from_utf8(m).unwrap_or_default(),
            None => self.month,
        }
    }
}

fn number(digits: &str) -> u16 {
    digits.bytes().fold(0u16, |acc, d| acc.saturating_mul(10).saturating_add(u16::from(d - b'0')))
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// Splits input into month and year digits. With a separator the parts are taken as given;
/// without one, the first two digits are the month (a leading `2`–`9`, or `1` followed by
/// `3`–`9`, is a one-digit month, as the formatter pads it).
fn split(input: &str) -> Result<Parts<'_>, ExpiryError> {
    let input = input.trim();
    if let Some((month, year)) = input.split_once(['/', '-']) {
        let (month, year) = (month.trim(), year.trim());
        if !all_digits(month) || !all_digits(year) {
            return Err(ExpiryError::InvalidCharacters);
        }
        return Ok(Parts { month, year, normalised: None });
    }
    if !all_digits(input) {
        return Err(ExpiryError::InvalidCharacters);
    }
    let bytes = input.as_bytes();
    let one_digit_month = match bytes {
        [b'2'..=b'9', ..] => true,
        [b'1', b'3'..=b'9', ..] => bytes.len() != 2 && bytes.len() != 4 && bytes.len() != 6,
        _ => false,
    };
    if one_digit_month {
        // `split_at_checked`: `input` is all ASCII digits here, and this keeps `str::split_at`'s
        // char-boundary panic (and its formatting) out of callers' binaries.
        let Some((month, year)) = input.split_at_checked(1) else {
            return Err(ExpiryError::InvalidCharacters);
        };
        let padded = [b'0', bytes.first().copied().unwrap_or(b'0')];
        return Ok(Parts { month, year, normalised: Some(padded) });
    }
    let Some((month, year)) = input.split_at_checked(input.len().min(2)) else {
        return Err(ExpiryError::InvalidCharacters);
    };
    Ok(Parts { month, year, normalised: None })
}

fn parse_month(digits: &str) -> Result<u8, ExpiryError> {
    match digits.len() {
        0 => Err(ExpiryError::Incomplete),
        1 | 2 => match number(digits) {
            m @ 1..=12 => Ok(m as u8),
            _ => Err(ExpiryError::InvalidMonth),
        },
        _ => Err(ExpiryError::InvalidMonth),
    }
}

/// Checks an expiry date as typed so far against the reference month `today`.
///
/// # Example
/// ```
/// use card::{validate_expiry, FieldState, Reason, YearMonth};
/// let today = YearMonth::new(2026, 11).unwrap();
/// assert_eq!(validate_expiry("1", today), FieldState::Incomplete(Reason::IncompleteExpiry));
/// assert_eq!(validate_expiry("13", today), FieldState::Invalid(Reason::InvalidExpiryMonth));
/// assert_eq!(validate_expiry("12 / 30", today), FieldState::Valid);
/// assert_eq!(validate_expiry("12 / 25", today), FieldState::Invalid(Reason::Expired));
/// ```
pub fn validate_expiry(input: &str, today: YearMonth) -> FieldState {
    let parts = match split(input) {
        Ok(parts) => parts,
        Err(e) => return FieldState::Invalid(e.reason()),
    };
    let month_digits = parts.month();
    let month = match month_digits {
        "" | "0" | "1" if parts.year.is_empty() => {
            return FieldState::Incomplete(Reason::IncompleteExpiry);
        }
        _ => match parse_month(month_digits) {
            Ok(month) => month,
            Err(e) => return FieldState::Invalid(e.reason()),
        },
    };
    let year = parts.year;
    match year.len() {
        0 => FieldState::Incomplete(Reason::IncompleteExpiry),
        2 | 4 => match Expiry::new(month, number(year)).and_then(|e| e.check(today)) {
            Ok(()) => FieldState::Valid,
            Err(e) => FieldState::Invalid(e.reason()),
        },
        1 | 3 => partial_year(year, today),
        _ => FieldState::Invalid(Reason::InvalidExpiryYear),
    }
}

/// Whether some completion of a 1- or 3-digit year (to `YY`, or to `YYYY`) can be in range.
fn partial_year(prefix: &str, today: YearMonth) -> FieldState {
    let value = u32::from(number(prefix));
    let first = u32::from(today.year());
    let last = first + u32::from(MAX_YEARS_AHEAD);
    let mut ranges = Vec::with_capacity(2);
    if prefix.len() == 1 {
        ranges.push((2000 + value * 10, 2000 + value * 10 + 9));
    }
    let scale = 10u32.pow(4 - prefix.len() as u32);
    ranges.push((value * scale, value * scale + scale - 1));
    if ranges.iter().any(|&(lo, hi)| lo <= last && hi >= first) {
        FieldState::Incomplete(Reason::IncompleteExpiry)
    } else if ranges.iter().all(|&(_, hi)| hi < first) {
        FieldState::Invalid(Reason::Expired)
    } else {
        FieldState::Invalid(Reason::ExpiryTooFar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> YearMonth {
        YearMonth::new(2026, 11).unwrap()
    }

    #[test]
    fn parses_every_documented_form() {
        type Parsed = Result<(u8, u16), ExpiryError>;
        let table: &[(&str, Parsed)] = &[
            ("12/30", Ok((12, 2030))),
            ("12 / 30", Ok((12, 2030))),
            ("1230", Ok((12, 2030))),
            ("1/30", Ok((1, 2030))),
            ("01/30", Ok((1, 2030))),
            ("12/2030", Ok((12, 2030))),
            ("122030", Ok((12, 2030))),
            ("12-30", Ok((12, 2030))),
            ("330", Ok((3, 2030))),
            ("13/30", Err(ExpiryError::InvalidMonth)),
            ("00/30", Err(ExpiryError::InvalidMonth)),
            ("12/3", Err(ExpiryError::Incomplete)),
            ("12/203", Err(ExpiryError::Incomplete)),
            ("12/20301", Err(ExpiryError::InvalidYear)),
            ("12/", Err(ExpiryError::Incomplete)),
            ("/30", Err(ExpiryError::Incomplete)),
            ("ab/cd", Err(ExpiryError::InvalidCharacters)),
            ("", Err(ExpiryError::Incomplete)),
        ];
        for (input, expected) in table {
            let got = Expiry::parse(input).map(|e| (e.month(), e.year()));
            assert_eq!(&got, expected, "{input:?}");
        }
    }

    #[test]
    fn range_checks_use_the_given_month() {
        let today = today();
        assert_eq!(Expiry::new(11, 26).unwrap().check(today), Ok(()));
        assert_eq!(Expiry::new(10, 26).unwrap().check(today), Err(ExpiryError::Expired));
        assert_eq!(Expiry::new(11, 2046).unwrap().check(today), Ok(()));
        assert_eq!(Expiry::new(12, 2046).unwrap().check(today), Err(ExpiryError::TooFar));
        assert_eq!(Expiry::new(1, 100), Err(ExpiryError::InvalidYear));
        assert_eq!(Expiry::new(0, 30), Err(ExpiryError::InvalidMonth));
    }

    #[test]
    fn partial_states() {
        use FieldState::*;
        let table: &[(&str, FieldState)] = &[
            ("", Incomplete(Reason::IncompleteExpiry)),
            ("0", Incomplete(Reason::IncompleteExpiry)),
            ("1", Incomplete(Reason::IncompleteExpiry)),
            ("3", Incomplete(Reason::IncompleteExpiry)),
            ("12", Incomplete(Reason::IncompleteExpiry)),
            ("12 / ", Incomplete(Reason::IncompleteExpiry)),
            ("12 / 3", Incomplete(Reason::IncompleteExpiry)),
            ("12 / 0", Invalid(Reason::Expired)),
            ("12 / 9", Invalid(Reason::ExpiryTooFar)),
            ("12 / 30", Valid),
            ("12 / 203", Incomplete(Reason::IncompleteExpiry)),
            ("12 / 2030", Valid),
            ("10 / 26", Invalid(Reason::Expired)),
            ("11 / 26", Valid),
            ("00", Invalid(Reason::InvalidExpiryMonth)),
            ("13 / 30", Invalid(Reason::InvalidExpiryMonth)),
            ("12 / 50", Invalid(Reason::ExpiryTooFar)),
            ("1x", Invalid(Reason::InvalidExpiryMonth)),
        ];
        for &(input, expected) in table {
            assert_eq!(validate_expiry(input, today()), expected, "{input:?}");
        }
    }

    #[test]
    fn displays_as_the_frame_formats() {
        assert_eq!(Expiry::new(3, 2031).unwrap().to_string(), "03 / 31");
    }
}
