//! Card numbers where they must never be: one shared check for URLs, free-text fields
//! (API-key labels, merchant names, card-holder names, later payment descriptions and
//! metadata) and values written to the audit log.
//!
//! A cardholder or a careless integration can put a card number anywhere a string goes. The
//! rule is deliberately broad: a run of at least [`card::MIN_PAN_LENGTH`] ASCII digits, in which
//! any characters other than letters may separate the digits (spaces, `-`, `.`, `_`, `,`, `/`,
//! tabs, `=`, `&`, …), counts as a card number. Letters end a run, so identifiers such as
//! `tok_…` or `limit=10&before=…` do not trip it. No Luhn check: a mistyped card number is
//! still card data.

/// Whether free text contains a card number: a digit run as in the module docs (letters end
/// it, anything else separates) of which some stretch is a valid card number for its brand
/// (length and Luhn, as [`card::Pan::parse`] checks). Free text is stricter than URLs about
/// false alarms: a date and time (`2026-11-26 12:00`, 12 digits) is not refused.
///
/// # Example
/// ```
/// use vault::text::looks_like_card_number;
/// assert!(looks_like_card_number("4242.4242.4242.4242"));
/// assert!(looks_like_card_number("corporate card 5555-5555-5555-4444"));
/// assert!(!looks_like_card_number("rotated 2026-11-26 12:00"));
/// ```
pub fn looks_like_card_number(text: &str) -> bool {
    let mut run = zeroize::Zeroizing::new(String::new());
    for c in text.chars().chain(std::iter::once('x')) {
        if c.is_ascii_digit() {
            run.push(c);
        } else if c.is_alphabetic() || !c.is_ascii() {
            if run_holds_pan(&run) {
                return true;
            }
            run.clear();
        }
    }
    false
}

fn run_holds_pan(run: &str) -> bool {
    let (min, max) = (card::MIN_PAN_LENGTH, card::MAX_PAN_LENGTH);
    (0..run.len())
        .any(|start| (min..=max).any(|len| run.get(start..start + len).is_some_and(|s| card::Pan::parse(s).is_ok())))
}

/// The same rule over a byte stream (URL bytes after percent-decoding).
fn digit_runs_reach(bytes: impl Iterator<Item = u8>, min: usize) -> bool {
    let mut run = 0usize;
    for b in bytes {
        if b.is_ascii_digit() {
            run += 1;
            if run >= min {
                return true;
            }
        } else if b.is_ascii_alphabetic() || b >= 0x80 {
            // Letters (and non-ASCII text) end a run; every other byte is a separator.
            run = 0;
        }
    }
    false
}

/// Whether a URL's path and query, percent-decoded, contain a card number.
///
/// Two rules: the broad one of the module docs over the whole path and query (any
/// non-letter separates digits, so `4242.4242.4242.4242` or `n=4242_4242_4242_4242` is found);
/// and, for numbers split across query parameters (`cc1=4242&cc2=4242&cc3=4242&cc4=4242`,
/// `a=42424242&b=42424242`), the digits of consecutive all-numeric values of at most
/// 8 digits joined and checked with the strict free-text rule (a valid card
/// number for its brand), so that ordinary numeric parameters side by side
/// (`limit=100&before=17951328`, two 10-digit timestamps) are not refused.
pub fn url_has_card_number(path_and_query: &str) -> bool {
    /// Longest piece of a split card number: 8 digits covers 4-4-4-4, 4-6-5, 6-6-4 and halves.
    const MAX_SPLIT_FRAGMENT: usize = 8;
    if digit_runs_reach(PercentDecoded { bytes: path_and_query.as_bytes(), i: 0 }, card::MIN_PAN_LENGTH) {
        return true;
    }
    let Some((_, query)) = path_and_query.split_once('?') else { return false };
    let mut joined = zeroize::Zeroizing::new(String::new());
    for pair in query.split(['&', ';']) {
        let value = pair.split_once('=').map_or("", |(_, v)| v);
        let decoded: Vec<u8> = PercentDecoded { bytes: value.as_bytes(), i: 0 }.collect();
        let digits = decoded.iter().filter(|b| b.is_ascii_digit()).count();
        let numeric = (1..=MAX_SPLIT_FRAGMENT).contains(&digits)
            && decoded.iter().all(|b| b.is_ascii_digit() || b.is_ascii_punctuation() || b.is_ascii_whitespace());
        if numeric {
            joined.extend(decoded.iter().filter(|b| b.is_ascii_digit()).map(|&b| char::from(b)));
        } else {
            if run_holds_pan(&joined) {
                return true;
            }
            joined.clear();
        }
    }
    run_holds_pan(&joined)
}

struct PercentDecoded<'a> {
    bytes: &'a [u8],
    i: usize,
}

impl Iterator for PercentDecoded<'_> {
    type Item = u8;
    fn next(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.i)?;
        if b == b'%' {
            // Exactly two hex digits (`from_str_radix` alone would also take `+4`, hiding a digit).
            let hex = self
                .bytes
                .get(self.i + 1..self.i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                self.i += 3;
                return Some(v);
            }
        }
        self.i += 1;
        Some(b)
    }
}

/// A bounded, printable form of an attacker-controlled value for the audit log: at most `max`
/// characters of `[A-Za-z0-9:/.[]-]`, everything else replaced by `_`, and `(redacted)` if the
/// value has a digit run as long as a card number (the broad URL rule).
pub fn for_log(value: &str, max: usize) -> String {
    if digit_runs_reach(value.bytes(), card::MIN_PAN_LENGTH) {
        return "(redacted)".to_owned();
    }
    let mut out: String = value
        .chars()
        .take(max)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '[' | ']' | '-') { c } else { '_' })
        .collect();
    if value.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_in_urls() {
        let table = [
            ("/v1/tokens/tok_abc", false),
            ("/v1/tokens/4242424242424242", true),
            ("/v1/tokens?n=4242%204242%204242%204242", true),
            ("/v1/tokens?n=4242-4242-4242-4242", true),
            ("/v1/tokens?n=4242+4242+4242+4242", true),
            ("/v1/tokens?n=4242.4242.4242.4242", true),
            ("/v1/tokens?n=4242_4242_4242_4242", true),
            ("/v1/tokens?n=4242,4242,4242,4242", true),
            ("/v1/tokens?n=4242/4242/4242/4242", true),
            ("/v1/tokens?n=4242%094242%094242%094242", true),
            ("/v1/tokens?n=4242;4242;4242;4242", true),
            ("/v1/x?a=4242424242&b=424242", false),
            ("/v1/x?a=42424242&b=42424242", true),
            ("/v1/x?cc1=4242&cc2=4242&cc3=4242&cc4=4242", true),
            ("/v1/x?a=3782&b=822463&c=10005", true),
            ("/v1/x?limit=100&before=1795132800", false),
            ("/v1/x?created_gte=1795132800&created_lte=1795219200", false),
            ("/v1/x?a=123456789012", true),
            ("/v1/x?a=12345678901", false),
            ("/v1/x?a=123456/789012345", true),
            ("/v1/x?a=%34%32%34%32%34%32%34%32%34%32%34%32%34", true),
            ("/v1/tokens/%+4%+2%+4%+2%+4242424242", true),
            ("/v1/audit_events?limit=100&before=17951328", false),
            ("/v1/tokens/tok_1b2C3d4E5f6G7h8I9j0KlMnO", false),
        ];
        for (url, expected) in table {
            assert_eq!(url_has_card_number(url), expected, "{url}");
        }
    }

    #[test]
    fn free_text() {
        assert!(looks_like_card_number("4242 4242 4242 4242"));
        assert!(looks_like_card_number("card: 5555-5555-5555-4444 (corporate)"));
        assert!(!looks_like_card_number("Checkout key for shop 12"));
        assert!(!looks_like_card_number("2026-11-26 12:00"));
        assert!(looks_like_card_number("ref 99 4242424242424242 99"));
        assert!(!looks_like_card_number("4242424242424241"));
    }

    #[test]
    fn log_form_is_bounded_and_printable() {
        assert_eq!(for_log("https://Shop.example:8443", 100), "https://Shop.example:8443");
        assert_eq!(for_log("https://x/<script>\"", 100), "https://x/_script__");
        assert_eq!(for_log(&"a".repeat(500), 10), format!("{}…", "a".repeat(10)));
        assert_eq!(for_log("https://4242424242424242.example", 100), "(redacted)");
    }
}
