//! `vault::api::url_has_card_number`: the middleware check that refuses card numbers in URLs.
//!
//! Input starting with `P`: a card number is built from the bytes (13–19 digits, Luhn-valid),
//! written into a URL with per-digit encodings (plain, `%3X`, `%3x`) and separators (space,
//! `-`, `+`, `.`, `_`, `/`, `%20`, `%2D`, `%2b`) between arbitrary text; the check must find it.
//! The same number, when it is valid for its brand, must also be found by
//! `vault::text::looks_like_card_number` in free text. Any other input: arbitrary text. Whenever an independent two-pass statement of the broad
//! rule (percent-decode, then look for `card::MIN_PAN_LENGTH` digits that only non-letters
//! separate) finds a number, the check must find it too. (The check may refuse more: it also
//! joins short numeric query values, which the reference does not model.)

use vault::api::url_has_card_number;

pub fn run(data: &[u8]) {
    match data {
        [b'P', len, rest @ ..] => planted(*len, rest),
        _ => {
            let Ok(url) = core::str::from_utf8(data) else { return };
            if reference(url) {
                assert!(url_has_card_number(url), "card number in {url:?} not refused");
            }
        }
    }
}

fn planted(len: u8, rest: &[u8]) {
    let len = 13 + usize::from(len % 7);
    let (digits_src, rest) = rest.split_at(rest.len().min(len));
    let (choices, rest) = rest.split_at(rest.len().min(len));
    let mut body: Vec<u8> = digits_src.iter().map(|b| b'0' + b % 10).collect();
    body.resize(len - 1, b'4');
    let check = luhn::checksum(&body);
    body.push(check);
    let text = String::from_utf8_lossy(rest);
    let (prefix, suffix) = text.split_at(text.find('\u{1}').unwrap_or(text.len()));
    let mut url = format!("/v1/tokens?{prefix}");
    // The prefix and suffix must not end or start with digits that would make the run longer
    // in ways this test does not model; a letter on each side keeps the planted run whole.
    url.push('x');
    for (i, d) in body.iter().enumerate() {
        let c = choices.get(i).copied().unwrap_or(0);
        match c % 3 {
            0 => url.push(char::from(*d)),
            1 => url.push_str(&format!("%3{}", char::from(*d))),
            _ => url.push_str(&format!("%3{}", char::from(*d)).to_ascii_lowercase()),
        }
        if i + 1 < body.len() {
            match (c / 3) % 12 {
                0 => url.push(' '),
                1 => url.push('-'),
                2 => url.push('+'),
                3 => url.push_str("%20"),
                4 => url.push_str("%2D"),
                5 => url.push_str("%2b"),
                6 => url.push('.'),
                7 => url.push('_'),
                8 => url.push('/'),
                _ => {}
            }
        }
    }
    url.push('x');
    url.push_str(suffix);
    assert!(url_has_card_number(&url), "planted card number not found in {url:?}");

    // The same number in free text (labels, names): found whenever it is a valid card number
    // for its brand, whatever non-letters separate its digits.
    if let Ok(digits) = core::str::from_utf8(&body)
        && card::Pan::parse(digits).is_ok()
    {
        let mut text = String::from("card ");
        for (i, d) in body.iter().enumerate() {
            text.push(char::from(*d));
            if i + 1 < body.len() {
                text.push_str(match choices.get(i).copied().unwrap_or(0) % 6 {
                    0 => " ",
                    1 => "-",
                    2 => ".",
                    3 => "/",
                    4 => "",
                    _ => ", ",
                });
            }
        }
        text.push_str(" end");
        assert!(vault::text::looks_like_card_number(&text), "card number not found in free text");
    }
}

/// Two passes: decode `%HH` (two hex digits; anything else stays as it is), then find
/// `card::MIN_PAN_LENGTH` digits that no letter (nor non-ASCII byte) interrupts.
fn reference(url: &str) -> bool {
    let bytes = url.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            decoded.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    let mut run = 0;
    for b in decoded {
        if b.is_ascii_digit() {
            run += 1;
            if run >= card::MIN_PAN_LENGTH {
                return true;
            }
        } else if b.is_ascii_alphabetic() || b >= 0x80 {
            run = 0;
        }
    }
    false
}
