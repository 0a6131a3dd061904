//! Property tests: formatting/caret invariants, brand detection of generated Luhn-valid
//! numbers, and no panics on arbitrary input.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // test code: a panic is a failure

use card::{
    Brand, Cvc, Edit, Expiry, FieldKind, Pan, YearMonth, detect, edit, mask, reformat, validate_cvc, validate_expiry,
    validate_number,
};
use proptest::prelude::*;

/// Prefix ranges (inclusive, equal digit counts) that belong to exactly one brand, and the
/// lengths to generate. Deliberately written out here rather than taken from the crate, so the
/// test checks the crate's table and priorities instead of repeating them.
type Ranges = &'static [(u32, u32)];
const UNAMBIGUOUS: &[(Brand, Ranges, &[usize])] = &[
    (Brand::Visa, &[(41, 42), (44, 44), (46, 49)], &[16, 18, 19]),
    (Brand::Mastercard, &[(51, 55), (2221, 2229), (23, 26), (2700, 2720)], &[16]),
    (Brand::Amex, &[(34, 34), (37, 37)], &[15]),
    (Brand::Diners, &[(300, 305), (36, 36), (38, 39)], &[14, 16, 19]),
    (Brand::Discover, &[(6011, 6011), (644, 649), (652, 654), (656, 659)], &[16, 19]),
    (Brand::Jcb, &[(3528, 3589)], &[16, 17, 18, 19]),
    (Brand::Unionpay, &[(623, 626), (810, 810), (8110, 8171)], &[14, 16, 19]),
    (Brand::Maestro, &[(56, 59), (67, 67), (500000, 504174)], &[12, 16, 19]),
    (Brand::Mir, &[(2200, 2204)], &[16, 17, 18, 19]),
    (Brand::Elo, &[(509000, 509999), (650901, 650978), (636368, 636368)], &[16]),
    (Brand::Hiper, &[(637095, 637095), (637568, 637568), (63737423, 63737423)], &[16]),
    (Brand::Hipercard, &[(606282, 606282)], &[16]),
    (Brand::Troy, &[(9792, 9792)], &[16]),
    (Brand::Verve, &[(506099, 506198), (650002, 650027)], &[16, 18, 19]),
];

fn today() -> YearMonth {
    YearMonth::new(2026, 11).unwrap()
}

/// A Luhn-valid number of `brand`: prefix from one of its ranges, random body, check digit
/// from the `luhn` crate.
fn brand_number() -> impl Strategy<Value = (Brand, String)> {
    (0..UNAMBIGUOUS.len(), any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u64>(), any::<u64>())
        .prop_map(|(b, range, len, a, z)| {
            let (brand, ranges, lengths) = UNAMBIGUOUS[b];
            let (lo, hi) = ranges[range.index(ranges.len())];
            let prefix = (lo + (a % u64::from(hi - lo + 1)) as u32).to_string();
            let len = lengths[len.index(lengths.len())];
            let mut body = prefix;
            let mut seed = z;
            while body.len() < len - 1 {
                body.push(char::from(b'0' + (seed % 10) as u8));
                seed = seed / 10 + 7919;
            }
            let check = luhn::checksum(body.as_bytes());
            body.push(char::from(check));
            (brand, body)
        })
}

/// A formatted number field and a selection within it.
fn number_field() -> impl Strategy<Value = (String, usize, usize)> {
    ("[0-9]{0,19}", any::<prop::sample::Index>(), any::<prop::sample::Index>()).prop_map(|(digits, a, b)| {
        let formatted = reformat(FieldKind::Number, &digits, digits.len()).text;
        let n = formatted.chars().count() + 1;
        let (a, b) = (a.index(n), b.index(n));
        (formatted, a.min(b), a.max(b))
    })
}

fn edit_op() -> impl Strategy<Value = Edit<'static>> {
    prop_oneof![
        Just(Edit::DeleteBackward),
        Just(Edit::DeleteForward),
        Just(Edit::Insert("1")),
        Just(Edit::Insert("9")),
        Just(Edit::Insert("42")),
        Just(Edit::Insert("4242 4242 4242 4242")),
        Just(Edit::Insert("x")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn generated_numbers_are_detected_and_valid((brand, number) in brand_number()) {
        prop_assert!(luhn::valid(&number));
        prop_assert_eq!(detect(&number).brand(), Some(brand), "{}", number);
        let pan = Pan::parse(&number).map_err(|e| TestCaseError::fail(format!("{number}: {e}")))?;
        prop_assert_eq!(pan.brand(), brand);
        prop_assert!(validate_number(&number).state.is_valid());
        // Formatting shows every digit, grouped, and is stable.
        let shown = reformat(FieldKind::Number, &number, number.len());
        prop_assert_eq!(card::digits(&shown.text), number.clone());
        prop_assert_eq!(reformat(FieldKind::Number, &shown.text, shown.caret), shown.clone());
        // The mask keeps only the first and last four digits.
        let masked = mask(&number, Some(brand));
        prop_assert_eq!(masked.chars().filter(char::is_ascii_digit).count(), 8);
        prop_assert!(card::digits(&masked).ends_with(pan.last4()));
    }

    #[test]
    fn number_edits_keep_caret_and_format_invariants((old, lo, hi) in number_field(), op in edit_op()) {
        let out = edit(FieldKind::Number, &old, lo..hi, op);
        let digits = card::digits(&out.text);
        // Only digits and single spaces between groups; caret inside the text.
        prop_assert!(out.text.chars().all(|c| c.is_ascii_digit() || c == ' '));
        prop_assert!(!out.text.starts_with(' ') && !out.text.ends_with(' ') && !out.text.contains("  "));
        prop_assert!(out.caret <= out.text.len());
        prop_assert!(digits.len() <= detect(&digits).max_length().max(1));
        // Re-formatting the output changes nothing (no caret jump on the next event).
        prop_assert_eq!(reformat(FieldKind::Number, &out.text, out.caret), out.clone());
        // The caret follows the digits that were before it, plus what was inserted.
        let before = |s: &str, at: usize| s.chars().take(at).filter(char::is_ascii_digit).count();
        let old_digits = card::digits(&old);
        let (start, end) = (before(&old, lo), before(&old, hi));
        let expected = match op {
            Edit::Insert(text) => (start + card::digits(text).len()).min(digits.len()),
            _ if start != end => start,
            Edit::DeleteBackward => start.saturating_sub(1),
            Edit::DeleteForward => start,
        };
        prop_assert!(before(&out.text, out.caret) <= expected);
        if !matches!(op, Edit::Insert(_)) {
            prop_assert_eq!(before(&out.text, out.caret), expected);
            // Digits outside the edit are untouched.
            prop_assert!(digits.starts_with(&old_digits[..expected]));
        }
    }

    #[test]
    fn expiry_edits_stay_well_formed(digits in "[0-9]{0,4}", op in edit_op(), at in any::<prop::sample::Index>()) {
        let old = reformat(FieldKind::Expiry, &digits, digits.len()).text;
        let caret = at.index(old.len() + 1);
        let out = edit(FieldKind::Expiry, &old, caret..caret, op);
        prop_assert!(out.caret <= out.text.len());
        prop_assert!(card::digits(&out.text).len() <= 4);
        let month: String = out.text.chars().take(2).collect();
        prop_assert!(out.text.len() <= 2 || out.text.get(2..5) == Some(" / "), "{:?}", out.text);
        prop_assert!(month.chars().all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn nothing_panics_on_arbitrary_input(input in any::<String>(), a in any::<usize>(), b in any::<usize>()) {
        let _ = validate_number(&input);
        let _ = validate_expiry(&input, today());
        let _ = validate_cvc(&input, None);
        let _ = validate_cvc(&input, Some(Brand::Amex));
        let _ = Pan::parse(&input);
        let _ = Expiry::parse(&input);
        let _ = Cvc::parse(&input, None);
        let _ = detect(&input);
        let _ = mask(&input, Some(Brand::Amex));
        for kind in [FieldKind::Number, FieldKind::Expiry, FieldKind::Cvc(None)] {
            let out = reformat(kind, &input, a);
            prop_assert!(out.caret <= out.text.len());
            for op in [Edit::Insert(&input), Edit::DeleteBackward, Edit::DeleteForward] {
                let out = edit(kind, &input, a..b, op);
                prop_assert!(out.caret <= out.text.len());
            }
        }
    }
}

#[test]
fn huge_and_hostile_inputs_are_rejected_quickly_without_panic() {
    let huge_digits = "4".repeat(1 << 20);
    assert!(Pan::parse(&huge_digits).is_err());
    assert!(!validate_number(&huge_digits).state.is_potentially_valid());
    let out = reformat(FieldKind::Number, &huge_digits, usize::MAX);
    assert_eq!(card::digits(&out.text).len(), 19);
    let unicode = "٤١١١ ４１１１ \u{202e}1111\u{0000} 1111 🃏".repeat(1000);
    assert!(Pan::parse(&unicode).is_err());
    assert!(!validate_number(&unicode).state.is_valid());
    assert!(Expiry::parse(&unicode).is_err());
    // A backwards selection (as a browser can report for a leftward drag) is accepted too.
    let (start, end) = (5, 3);
    let out = edit(FieldKind::Expiry, &unicode, start..end, Edit::Insert(&unicode));
    assert!(out.caret <= out.text.len());
}
