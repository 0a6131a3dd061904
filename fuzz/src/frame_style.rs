//! The merchant-style value check (`frame::style::value_is_safe`), property-name
//! normalisation and `Style::sanitize`, against an independent statement of what an accepted
//! value must never contain.
//!
//! Input: bytes; up to the first NUL is a property name, the rest a value (both UTF-8).

use frame::style::{Pairs, RawStyle, Style, normalize_property, value_is_safe};

pub fn run(data: &[u8]) {
    let (name, value) = match data.iter().position(|&b| b == 0) {
        Some(i) => (data.get(..i).unwrap_or_default(), data.get(i + 1..).unwrap_or_default()),
        None => (data, &[][..]),
    };
    let (Ok(name), Ok(value)) = (core::str::from_utf8(name), core::str::from_utf8(value)) else { return };

    if let Some(p) = normalize_property(name) {
        assert!(!p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "property {p:?}");
        if p.len() <= 40 {
            // (Longer output is refused as input: the 40-byte cap applies to the raw name.)
            assert_eq!(normalize_property(&p).as_deref(), Some(p.as_str()), "normalisation not idempotent");
        }
    }
    if value_is_safe(value) {
        assert_inert(value.trim());
    }
    let mut raw = RawStyle::default();
    for variant in ["base", "placeholder", "invalid", name] {
        raw.0.push((variant.to_owned(), Pairs(vec![(name.to_owned(), value.to_owned())])));
    }
    let (style, _) = Style::sanitize(&raw);
    crate::frame_message::check_style(&style);
}

/// What no accepted value may contain, stated independently of the implementation: no way
/// out of a declaration (`;`, braces, `<`, `>`), no escapes or comments, no at-rules, no
/// control characters, and no function that loads a resource or runs script.
pub fn assert_inert(value: &str) {
    assert!(!value.is_empty() && value.len() <= 200);
    assert!(!value.chars().any(char::is_control), "control character accepted");
    for c in [';', '{', '}', '<', '>', '\\', '@'] {
        assert!(!value.contains(c), "{c:?} accepted");
    }
    let lower = value.to_lowercase();
    for bad in ["url(", "expression(", "image(", "image-set(", "src(", "/*"] {
        assert!(!lower.contains(bad), "{bad:?} accepted");
    }
}
