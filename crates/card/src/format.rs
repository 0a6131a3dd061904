//! Formatting as you type, with caret mapping.
//!
//! Edits are applied in *digit space*: the formatted text is reduced to its digits, the caret
//! and selection become digit indexes, the edit is applied to the digits, and the result is
//! formatted again with the caret placed after the same digit. Separators are therefore never
//! "in the way": backspace right after a gap deletes the digit before the gap, inserting mid
//! number keeps the caret after the inserted digits, and pasting formatted or unformatted
//! numbers gives the same result.
//!
//! Positions are `char` indexes. Every formatted value is ASCII, so they equal the UTF-16
//! indexes a browser's `selectionStart` reports for it.

#[allow(unused_imports)]
use crate::prelude::*;

use core::ops::Range;

use zeroize::Zeroizing;

use crate::brand::{Brand, DEFAULT_GAPS, Detected, detect};
use crate::cvc::MAX_CVC_LENGTH;

/// Which field is being edited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// The card number: grouped by the detected brand's gaps, at most the brand's longest length.
    Number,
    /// The expiry date, shown as `MM / YY`.
    Expiry,
    /// The security code, at most as long as the brand's (4 when the brand is unknown).
    Cvc(Option<Brand>),
}

/// One user edit, as a browser's `beforeinput` event describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit<'a> {
    /// Typed, pasted or dropped text replacing the selection. Non-digits are ignored.
    Insert(&'a str),
    /// Backspace.
    DeleteBackward,
    /// Delete.
    DeleteForward,
}

/// The text to show and where the caret goes.
#[derive(Clone, PartialEq, Eq)]
pub struct Formatted {
    /// The formatted field value.
    pub text: String,
    /// The caret position (char index into `text`).
    pub caret: usize,
}

impl core::fmt::Debug for Formatted {
    /// Only the shape: the text may be a card number.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Formatted").field("len", &self.text.len()).field("caret", &self.caret).finish()
    }
}

type Digits = Zeroizing<Vec<u8>>;

fn digits_of(text: &str) -> Digits {
    Zeroizing::new(text.bytes().filter(u8::is_ascii_digit).collect())
}

/// Number of digits among the first `chars` chars of `text`.
fn digits_before(text: &str, chars: usize) -> usize {
    text.chars().take(chars).filter(char::is_ascii_digit).count()
}

/// The number of `char`s in `text`: its bytes that do not continue a UTF-8 sequence. Not
/// `chars().count()`, whose word-at-a-time version is about 1 KB of the frame's WASM.
fn char_count(text: &str) -> usize {
    text.bytes().filter(|b| !(0x80..0xC0).contains(b)).count()
}

fn as_str(digits: &[u8]) -> &str {
    core::str::from_utf8(digits).unwrap_or_default()
}

/// The brand of a number field's digits (other fields have none). Detection is the costly
/// part of a keystroke, so it runs once per edit and is passed along.
fn detect_for(kind: FieldKind, digits: &[u8]) -> Detected {
    match kind {
        FieldKind::Number => detect(as_str(digits)),
        FieldKind::Expiry | FieldKind::Cvc(_) => Detected::Unknown,
    }
}

/// The longest digit string the field accepts.
fn max_digits(kind: FieldKind, detected: Detected) -> usize {
    match kind {
        FieldKind::Number => detected.max_length(),
        FieldKind::Expiry => 4,
        FieldKind::Cvc(brand) => brand.map_or(MAX_CVC_LENGTH, |b| usize::from(b.security_code().size)),
    }
}

/// Applies `edit` to the field whose current text is `old` with `selection` selected (an
/// empty range is a caret), and returns the new formatted text and caret.
///
/// # Example
/// ```
/// use card::{edit, Edit, FieldKind};
/// // Typing the fifth digit adds a gap before it.
/// let out = edit(FieldKind::Number, "4111", 4..4, Edit::Insert("1"));
/// assert_eq!((out.text.as_str(), out.caret), ("4111 1", 6));
/// // Backspace just after a gap deletes the digit before the gap.
/// let out = edit(FieldKind::Number, "4111 1111", 5..5, Edit::DeleteBackward);
/// assert_eq!((out.text.as_str(), out.caret), ("4111 111", 3));
/// // Typing "3" as an expiry month pads it and adds the slash.
/// let out = edit(FieldKind::Expiry, "", 0..0, Edit::Insert("3"));
/// assert_eq!((out.text.as_str(), out.caret), ("03 / ", 5));
/// ```
pub fn edit(kind: FieldKind, old: &str, selection: Range<usize>, edit: Edit<'_>) -> Formatted {
    let mut digits = digits_of(old);
    let (lo, hi) = (selection.start.min(selection.end), selection.start.max(selection.end));
    let start = digits_before(old, lo);
    let end = digits_before(old, hi).max(start);
    let (caret, detected) = match edit {
        Edit::Insert(text) => {
            if kind == FieldKind::Expiry && start == 0 && end == digits.len() && text.contains(['/', '-']) {
                // A whole expiry pasted or autofilled with a separator: "1/30", "12/2030".
                return reformat(kind, text, char_count(text));
            }
            let inserted = digits_of(text);
            digits.splice(start..end, inserted.iter().copied());
            let caret = start + inserted.len();
            let mut detected = detect_for(kind, &digits);
            let overflow = digits.len().saturating_sub(max_digits(kind, detected));
            // Drop what does not fit from the inserted run first, then from the end.
            let from_inserted = overflow.min(inserted.len());
            if from_inserted > 0 {
                digits.drain(caret - from_inserted..caret);
                detected = detect_for(kind, &digits);
            }
            (caret - from_inserted, detected)
        }
        Edit::DeleteBackward | Edit::DeleteForward => {
            let removed = match edit {
                _ if start != end => start..end,
                Edit::DeleteBackward => start.saturating_sub(1)..start,
                _ => start..(start + 1).min(digits.len()),
            };
            let caret = removed.start;
            digits.drain(removed);
            (caret, detect_for(kind, &digits))
        }
    };
    // An edit can change the brand (deleting the first digit, say), and with it the longest
    // number allowed: the field never holds more digits than its brand issues. Cutting from the
    // end of a number this long does not change its brand.
    digits.truncate(max_digits(kind, detected));
    let caret = caret.min(digits.len());
    let appending = matches!(edit, Edit::Insert(_)) && caret == digits.len();
    render(kind, detected, digits, caret, appending, false)
}

/// Formats a value the browser changed without an edit we saw (autofill, IME, drag and drop),
/// keeping the caret after the same digit it followed in `raw`.
///
/// # Example
/// ```
/// use card::{reformat, FieldKind};
/// let out = reformat(FieldKind::Number, "4111111111111111", 16);
/// assert_eq!((out.text.as_str(), out.caret), ("4111 1111 1111 1111", 19));
/// let out = reformat(FieldKind::Expiry, "12/2030", 7);
/// assert_eq!((out.text.as_str(), out.caret), ("12 / 30", 7));
/// ```
pub fn reformat(kind: FieldKind, raw: &str, caret: usize) -> Formatted {
    let at_end = caret >= char_count(raw);
    let mut digits = match kind {
        FieldKind::Expiry => expiry_digits(raw),
        _ => digits_of(raw),
    };
    let detected = detect_for(kind, &digits);
    digits.truncate(max_digits(kind, detected));
    let caret = if at_end { digits.len() } else { digits_before(raw, caret).min(digits.len()) };
    // A month already closed by a separator ("13 / 30", "13/") is what the field shows, not
    // typing: its digits are kept as they are (an impossible month is then reported invalid)
    // rather than padded into "01 / 33".
    let month_closed =
        kind == FieldKind::Expiry && raw.split_once(['/', '-']).is_some_and(|(month, _)| digits_of(month).len() >= 2);
    render(kind, detected, digits, caret, at_end, month_closed)
}

/// Expiry digits `MMYY` from free-form text: `1/30` → `0130`, `12/2030` → `1230`,
/// `122030` → `1230`; anything else is its digits.
fn expiry_digits(raw: &str) -> Digits {
    if let Some((month, year)) = raw.split_once(['/', '-']) {
        let month = digits_of(month);
        let year = digits_of(year);
        let mut out = Zeroizing::new(Vec::with_capacity(4));
        if month.len() == 1 {
            out.push(b'0');
        }
        out.extend_from_slice(&month);
        let year_digits = if year.len() == 4 { year.get(2..).unwrap_or_default() } else { &year[..] };
        out.extend_from_slice(year_digits);
        return out;
    }
    let digits = digits_of(raw);
    if digits.len() == 6 && digits.get(2..4) == Some(b"20") {
        let mut out = Zeroizing::new(Vec::with_capacity(4));
        out.extend(digits.iter().take(2).chain(digits.iter().skip(4)));
        return out;
    }
    digits
}

/// Formats `digits` for `kind` and maps the digit-index caret to a text position.
/// `appending`: the user is typing at the end, so an expiry gets its slash as soon as the month
/// is complete.
/// `month_closed`: the text gave the month with its separator, so it is never padded.
fn render(
    kind: FieldKind,
    detected: Detected,
    mut digits: Digits,
    caret: usize,
    appending: bool,
    month_closed: bool,
) -> Formatted {
    match kind {
        FieldKind::Number => {
            let gaps = match detected.brand() {
                Some(brand) => brand.gaps(digits.len()),
                None => DEFAULT_GAPS,
            };
            let mut text = String::with_capacity(digits.len() + gaps.len());
            for (i, &d) in digits.iter().enumerate() {
                if i > 0 && gaps.iter().any(|&g| usize::from(g) == i) {
                    text.push(' ');
                }
                text.push(char::from(d));
            }
            let caret = caret + gaps.iter().filter(|&&g| usize::from(g) < caret).count();
            Formatted { text, caret }
        }
        FieldKind::Expiry => {
            let caret = if month_closed { caret } else { normalise_month(&mut digits, caret, appending) };
            let (month, year) = digits.split_at(digits.len().min(2));
            let mut text = String::with_capacity(7);
            text.push_str(as_str(month));
            // A two-digit month that typing would have padded (13-19, 20-99) always shows its
            // separator: bare, "13" or "47" would read as typing (month "01" or "04", year
            // "3…" or "7…") the next time the text is reformatted.
            let impossible = matches!(month, [b'1', b'3'..=b'9'] | [b'2'..=b'9', _]);
            let slash = !year.is_empty() || (month.len() == 2 && (appending || impossible));
            if slash {
                text.push_str(" / ");
                text.push_str(as_str(year));
            }
            let caret = if caret < 2 || (caret == 2 && !slash) { caret } else { caret + 3 };
            Formatted { text, caret }
        }
        FieldKind::Cvc(_) => Formatted { text: as_str(&digits).to_owned(), caret },
    }
}

/// Pads one-digit months: a first digit `2`–`9` can only be `02`–`09`; `1` followed by `3`–`9`
/// while typing at the end is month `01` and the start of the year. Returns the moved caret.
fn normalise_month(digits: &mut Digits, caret: usize, appending: bool) -> usize {
    let pad = match digits.as_slice() {
        [b'2'..=b'9', ..] => true,
        [b'1', b'3'..=b'9', ..] => appending,
        _ => false,
    };
    if pad {
        digits.insert(0, b'0');
        digits.truncate(4);
        (if caret > 0 { caret + 1 } else { caret }).min(digits.len())
    } else {
        caret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars_are_counted_by_hand() {
        for s in ["", "4242", "１２", "é/中", "😀 x"] {
            assert_eq!(char_count(s), s.chars().count(), "{s}");
        }
    }

    /// `old` and `expected` mark the caret with `|`; a selection in `old` is `[..]`.
    #[track_caller]
    fn check(kind: FieldKind, old: &str, op: Edit<'_>, expected: &str) {
        let (text, selection) = if let (Some(a), Some(b)) = (old.find('['), old.find(']')) {
            (old.replace(['[', ']'], ""), a..b - 1)
        } else {
            let at = old.find('|').unwrap();
            (old.replace('|', ""), at..at)
        };
        let out = edit(kind, &text, selection, op);
        let mut shown = out.text.clone();
        shown.insert(out.caret, '|');
        assert_eq!(shown, expected, "{old:?} {op:?}");
    }

    use Edit::*;
    use FieldKind::*;

    #[test]
    fn number_typing_and_gaps() {
        check(Number, "|", Insert("4"), "4|");
        check(Number, "4111|", Insert("1"), "4111 1|");
        check(Number, "4111 1111 1111 111|", Insert("1"), "4111 1111 1111 1111|");
        // Visa goes up to 19 digits: 4-4-4-4-3.
        check(Number, "4111 1111 1111 1111|", Insert("123"), "4111 1111 1111 1111 123|");
        check(Number, "4111 1111 1111 1111 123|", Insert("4"), "4111 1111 1111 1111 123|");
        // Amex: 4-6-5, at most 15 digits.
        check(Number, "3782 822463 1000|", Insert("5"), "3782 822463 10005|");
        check(Number, "3782 822463 10005|", Insert("9"), "3782 822463 10005|");
        // Diners 14 digits: 4-6-4.
        check(Number, "|", Insert("30569309025904"), "3056 930902 5904|");
        // Non-digits are ignored.
        check(Number, "4111|", Insert("a"), "4111|");
    }

    #[test]
    fn number_mid_edits_keep_the_caret() {
        check(Number, "4111 |1111 1111 1111", Insert("2"), "4111 2|111 1111 1111 1");
        check(Number, "41|11 1111 1111 111", Insert("9"), "419|1 1111 1111 1111");
        check(Number, "4111 1|111 1111 1111", DeleteBackward, "4111| 1111 1111 111");
        check(Number, "4111 1111 |1111 1111", DeleteBackward, "4111 111|1 1111 111");
        check(Number, "4111| 1111 1111 1111", DeleteForward, "4111| 1111 1111 111");
        check(Number, "|4111", DeleteBackward, "|4111");
        check(Number, "4111|", DeleteForward, "4111|");
    }

    #[test]
    fn number_selections_and_paste() {
        check(Number, "[4111 1111 1111 1111]", Insert("3782-822463-10005"), "3782 822463 10005|");
        check(Number, "4111 [1111] 1111 1111", DeleteBackward, "4111| 1111 1111");
        check(Number, "4111 [1111] 1111 1111", Insert("2222"), "4111 2222| 1111 1111");
        check(Number, "|", Insert("4111 1111 1111 1111"), "4111 1111 1111 1111|");
        // Paste that would overflow keeps the digits already there.
        check(Number, "3782 822463 1000|", Insert("5555"), "3782 822463 10005|");
    }

    #[test]
    fn expiry_typing() {
        check(Expiry, "|", Insert("1"), "1|");
        check(Expiry, "1|", Insert("2"), "12 / |");
        check(Expiry, "12 / |", Insert("3"), "12 / 3|");
        check(Expiry, "12 / 3|", Insert("0"), "12 / 30|");
        check(Expiry, "12 / 30|", Insert("1"), "12 / 30|");
        check(Expiry, "|", Insert("4"), "04 / |");
        check(Expiry, "1|", Insert("3"), "01 / 3|");
        check(Expiry, "0|", Insert("0"), "00 / |");
    }

    #[test]
    fn expiry_deleting_and_pasting() {
        check(Expiry, "12 / |", DeleteBackward, "1|");
        check(Expiry, "12 / 3|", DeleteBackward, "12|");
        check(Expiry, "12 / 30|", DeleteBackward, "12 / 3|");
        check(Expiry, "1|2 / 30", DeleteBackward, "|02 / 30");
        check(Expiry, "|", Insert("12/2030"), "12 / 30|");
        check(Expiry, "|", Insert("1/30"), "01 / 30|");
        check(Expiry, "|", Insert("1230"), "12 / 30|");
        check(Expiry, "[12 / 30]", Insert("0131"), "01 / 31|");
    }

    #[test]
    fn cvc_length_by_brand() {
        check(Cvc(Some(Brand::Visa)), "12|", Insert("3"), "123|");
        check(Cvc(Some(Brand::Visa)), "123|", Insert("4"), "123|");
        check(Cvc(Some(Brand::Amex)), "123|", Insert("4"), "1234|");
        check(Cvc(None), "|", Insert("12345"), "1234|");
    }

    #[test]
    fn reformat_keeps_the_caret_after_the_same_digit() {
        let out = reformat(Number, "41111111", 6);
        assert_eq!((out.text.as_str(), out.caret), ("4111 1111", 7));
        let out = reformat(Expiry, "1/30", 4);
        assert_eq!((out.text.as_str(), out.caret), ("01 / 30", 7));
        let out = reformat(Expiry, "122030", 6);
        assert_eq!(out.text, "12 / 30");
        let out = reformat(Cvc(None), "12a3", 4);
        assert_eq!((out.text.as_str(), out.caret), ("123", 3));
    }

    /// F1 (RELIABILITY.md): a shown month 13-19 keeps its digits when reformatted; it is
    /// reported invalid, never rewritten into "01 / 3…".
    #[test]
    fn an_impossible_month_on_screen_keeps_its_digits() {
        for shown in ["13 / 30", "19 / 2", "13 / ", "13/30", "23 / 30"] {
            let out = reformat(Expiry, shown, shown.len());
            assert_eq!(digits_of(&out.text).as_slice(), digits_of(shown).as_slice(), "{shown:?} -> {:?}", out.text);
            assert_eq!(reformat(Expiry, &out.text, out.caret), out, "{shown:?}");
        }
        // Found by the fuzz smoke run: with the caret inside, a closed month "47" was shown
        // bare and then read as typing ("04 / 7").
        for (raw, caret) in [("Eb47 / x", 4), ("47 / ", 1), ("13 / ", 0)] {
            let out = reformat(Expiry, raw, caret);
            let again = reformat(Expiry, &out.text, out.caret);
            assert_eq!(digits_of(&again.text).as_slice(), digits_of(raw).as_slice(), "{raw:?} -> {out:?} -> {again:?}");
            assert_eq!(again, out, "{raw:?}");
        }
        // Deleting the year leaves the separator up, so the text still reads as a month.
        check(Expiry, "13 / 3|", DeleteBackward, "13 / |");
        check(Expiry, "12 / 3|", DeleteBackward, "12|");
        // Typing is unchanged: a second digit 3-9 after a 1 starts the year.
        check(Expiry, "1|", Insert("3"), "01 / 3|");
        check(Expiry, "12 / 30|", Insert("9"), "12 / 30|");
    }
}
