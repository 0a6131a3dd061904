//! Findings of the fuzz targets, written as the behaviour we want. F1, F2 and F3 are fixed and
//! run every time; any still open is `#[ignore]`d; run them with
//! `cargo test --manifest-path fuzz/Cargo.toml --no-default-features --test known_findings -- --ignored`.
//! When a fix lands, drop the `#[ignore]` and the matching exclusion in fuzz/src (see RELIABILITY.md).

use card::{FieldKind, digits, edit, reformat};

/// F1 (card_format, fixed): `reformat` with the caret at the end treated a complete expiry
/// whose month is 13-19 as typing and padded it: "13 / 30" became "01 / 33", silently replacing
/// the digits. `edit` itself produces such a value (a month digit typed over in the middle).
#[test]
fn f1_reformat_keeps_the_digits_of_a_displayed_expiry() {
    let shown = edit(FieldKind::Expiry, "12 / 30", 1..2, card::Edit::Insert("3"));
    assert_eq!((shown.text.as_str(), shown.caret), ("13 / 30", 5));
    let again = reformat(FieldKind::Expiry, &shown.text, shown.text.len());
    assert_eq!(digits(&again.text), "1330", "reformat turned {:?} into {:?}", shown.text, again.text);
}

/// F2 (vault_url): `url_has_card_number` decodes `%XY` with `u8::from_str_radix`, which accepts
/// a leading `+`: `%+4` becomes the byte 0x04 (a separator), and the `4` is gone from the digit
/// run. A card number passes the check when enough of its digits are written `%+D` to leave
/// fewer than `card::MIN_PAN_LENGTH` (12) digits: five for a 16-digit number.
#[test]
fn f2_percent_plus_does_not_hide_a_digit() {
    assert!(vault::api::url_has_card_number("/v1/tokens/%+4%+2%+4%+2%+4242424242"));
    assert!(vault::api::url_has_card_number("/v1/tokens?n=%+4%+2%+4%+2%+4242424242"));
}

/// F3 (card_parse; appeared with main's `Pan::parse` change "separators may not come first"):
/// the browser's `validate_number` still calls a number with a leading space or dash valid,
/// the server's `Pan::parse` refuses it (`invalid_characters`), so the two disagree, against
/// ARCHITECTURE.md's invariant 1.
#[test]
fn f3_browser_and_server_agree_on_a_leading_separator() {
    for input in [" 6062826786276634", "-4242424242424242"] {
        assert_eq!(card::validate_number(input).state.is_valid(), card::Pan::parse(input).is_ok(), "{input:?}");
    }
}
