//! `card::edit` (caret mapping as you type) and `card::reformat` (autofill, IME, drop).
//!
//! Input (text, so seeds can be written by hand from the unit-test tables):
//! `<kind><op><old>` then optionally `\n<inserted>`, where
//! - kind: `N` number, `E` expiry, `C` CVC of unknown brand, `V` Visa CVC, `A` Amex CVC;
//! - op: `i` insert `<inserted>`, `b` backspace, `f` delete, `r` reformat `<old>`;
//! - `<old>` marks the caret with `|` or a selection with `[`…`]`, as in the unit tests
//!   (no marker: caret at the end; `}` marks a caret past the end).

use card::{Brand, Edit, FieldKind, Formatted, detect, edit, reformat};

pub fn run(data: &[u8]) {
    let Ok(s) = core::str::from_utf8(data) else { return };
    let mut chars = s.chars();
    let kind = match chars.next() {
        Some('N') => FieldKind::Number,
        Some('E') => FieldKind::Expiry,
        Some('C') => FieldKind::Cvc(None),
        Some('V') => FieldKind::Cvc(Some(Brand::Visa)),
        Some('A') => FieldKind::Cvc(Some(Brand::Amex)),
        _ => return,
    };
    let Some(op) = chars.next() else { return };
    let rest = chars.as_str();
    let (old, inserted) = rest.split_once('\n').unwrap_or((rest, ""));
    let (text, selection) = selection_of(old);

    let out = match op {
        'i' => edit(kind, &text, selection, Edit::Insert(inserted)),
        'b' => edit(kind, &text, selection, Edit::DeleteBackward),
        'f' => edit(kind, &text, selection, Edit::DeleteForward),
        'r' => {
            let out = reformat(kind, &text, selection.start);
            let (raw, shown) = (card::digits(&text), card::digits(&out.text));
            if kind != FieldKind::Expiry {
                // Reformatting only drops digits from the end, never invents or reorders them.
                assert!(raw.starts_with(&shown), "reformat changed the digits");
            }
            out
        }
        _ => return,
    };
    well_formed(kind, &out);
    let again = reformat(kind, &out.text, out.caret);
    well_formed(kind, &again);
    if kind == FieldKind::Expiry {
        // By design not a fixed point: backspace over the slash shows `12|`, and reformat
        // with the caret at the end treats it as typing and puts the slash back. The digits
        // and the caret's digit index must survive, and reformat itself must be idempotent.
        // Known finding F1 (RELIABILITY.md, fuzz/tests/known_findings.rs), fixed: a displayed
        // month 13-19 was padded as if being typed ("13 / 30" -> "01 / 33").
        assert_eq!(card::digits(&again.text), card::digits(&out.text), "reformat changed expiry digits");
        assert_eq!(digits_before(&again), digits_before(&out), "reformat moved the expiry caret");
        let third = reformat(kind, &again.text, again.caret);
        assert_eq!(third, again, "reformat not idempotent: {:?} caret {}", again.text, again.caret);
    } else {
        // What `edit`/`reformat` show is a fixed point: reformatting it changes nothing, so
        // the frame never rewrites a value it just wrote (the caret stays where it was put).
        assert_eq!(again, out, "not a fixed point of reformat: {:?} caret {}", out.text, out.caret);
    }
}

/// Digits before the caret.
fn digits_before(f: &Formatted) -> usize {
    f.text.get(..f.caret).unwrap_or("").bytes().filter(u8::is_ascii_digit).count()
}

/// The text without markers, and the selection the markers give (char indexes).
fn selection_of(old: &str) -> (String, core::ops::Range<usize>) {
    let text: String = old.chars().filter(|c| !matches!(c, '|' | '[' | ']' | '}')).collect();
    let len = text.chars().count();
    let mut at = 0usize;
    let (mut start, mut end) = (None, None);
    for c in old.chars() {
        match c {
            '|' | '[' => start = start.or(Some(at)),
            ']' => end = end.or(Some(at)),
            '}' => start = start.or(Some(len + 3)),
            _ => at += 1,
        }
    }
    let start = start.unwrap_or(len);
    // A backwards selection (`]` before `[`) is passed as is: `edit` must cope.
    (text, start..end.unwrap_or(start))
}

fn well_formed(kind: FieldKind, out: &Formatted) {
    let text = out.text.as_str();
    assert!(text.is_ascii(), "formatted text is not ASCII");
    assert!(out.caret <= text.len(), "caret {} past the end of {:?}", out.caret, text);
    let digits = card::digits(text);
    match kind {
        FieldKind::Number => {
            assert!(text.bytes().all(|b| b.is_ascii_digit() || b == b' '));
            assert!(!text.starts_with(' ') && !text.ends_with(' ') && !text.contains("  "), "bad gaps: {text:?}");
            assert!(digits.len() <= detect(&digits).max_length().max(1), "too many digits for the brand");
        }
        FieldKind::Expiry => {
            assert!(digits.len() <= 4);
            let (month, tail) = text.split_at(text.len().min(2));
            assert!(month.bytes().all(|b| b.is_ascii_digit()), "bad expiry {text:?}");
            assert!(tail.is_empty() || tail.starts_with(" / "), "bad expiry {text:?}");
            assert!(tail.get(3..).unwrap_or("").bytes().all(|b| b.is_ascii_digit()), "bad expiry {text:?}");
        }
        FieldKind::Cvc(brand) => {
            let max = brand.map_or(card::MAX_CVC_LENGTH, |b| usize::from(b.security_code().size));
            assert!(text.bytes().all(|b| b.is_ascii_digit()) && text.len() <= max);
        }
    }
}
