//! Experiment, not shipped (BENCHMARKS.md, "How small a Rust/WASM frame can get"): the frame's
//! logic alone (the card crate and the frame's `model`, `style`, `locale`, `protocol` and
//! `split` modules, compiled from their real sources) behind the string API a hand-written JS
//! edge would call. It has no DOM, no event, no message, no fetch, no font and no peer code:
//! its WASM is the floor of a frame whose browser edge is written in JS. `edge.js` is such an
//! edge, a prototype; `measure.sh` sizes both, `dist.py` makes a `dist/` of them for the e2e bench.
#![no_std]
#![forbid(unsafe_code)]
extern crate alloc;
mod prelude {
    #[allow(unused_imports)]
    pub(crate) use alloc::{borrow::ToOwned, boxed::Box, format, string::String, string::ToString, vec, vec::Vec};
}
use prelude::*;
use wasm_bindgen::prelude::*;
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

#[path = "../../../../crates/frame/src/locale.rs"]
pub mod locale;
#[path = "../../../../crates/frame/src/model.rs"]
pub mod model;
#[path = "../../../../crates/frame/src/protocol.rs"]
pub mod protocol;
#[path = "../../../../crates/frame/src/split.rs"]
pub mod split;
#[path = "../../../../crates/frame/src/style.rs"]
pub mod style;
use locale::Locale;
use model::{Check, Model};
use protocol::{ChangeState, Field, FieldOptions, FieldStatus, FrameParams};
use style::{Pairs, Style};

struct Core {
    params: FrameParams,
    model: Model,
    locale: Locale,
    style: Style,
    messages: protocol::Messages,
    collect: Option<split::Collect>,
}
/// The frame's state (the WASM has one thread; the lock is never contended).
static CORE: spin::Mutex<Option<Core>> = spin::Mutex::new(None);
fn with<R>(f: impl FnOnce(&mut Core) -> R) -> Option<R> {
    CORE.lock().as_mut().map(f)
}
fn field(i: u8) -> Option<Field> {
    Field::ALL.get(usize::from(i)).copied()
}
fn ym(y: u16, m: u8) -> card::YearMonth {
    card::YearMonth::new(y, m).unwrap_or_else(|_| unreachable!())
}

/// `n` in decimal, by hand: `usize::to_string` links `core::fmt` (369 B of Brotli here).
fn decimal(mut n: usize) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().map(|&b| char::from(b)).collect()
}
fn esc(out: &mut String, s: &str) {
    model::push_json_string(out, s);
}
fn opt(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => esc(out, s),
        None => out.push_str("null"),
    }
}
fn b(out: &mut String, v: bool) {
    out.push_str(if v { "true" } else { "false" })
}
fn status(out: &mut String, k: &str, s: &FieldStatus) {
    esc(out, k);
    out.push_str(":{\"empty\":");
    b(out, s.empty);
    out.push_str(",\"valid\":");
    b(out, s.valid);
    out.push_str(",\"potentiallyValid\":");
    b(out, s.potentially_valid);
    out.push_str(",\"focused\":");
    b(out, s.focused);
    out.push_str(",\"autofilled\":");
    b(out, s.autofilled);
    out.push('}');
}
fn state_json(s: &ChangeState) -> String {
    let mut o = String::from("{\"brand\":");
    opt(&mut o, s.brand);
    o.push_str(",\"bin\":");
    opt(&mut o, s.bin.as_deref());
    o.push_str(",\"last4\":");
    opt(&mut o, s.last4.as_deref());
    o.push_str(",\"complete\":");
    b(&mut o, s.complete);
    o.push_str(",\"empty\":");
    b(&mut o, s.empty);
    o.push_str(",\"fields\":{");
    status(&mut o, "number", &s.fields.number);
    o.push(',');
    status(&mut o, "expiry", &s.fields.expiry);
    o.push(',');
    status(&mut o, "cvc", &s.fields.cvc);
    if let Some(n) = &s.fields.name {
        o.push(',');
        status(&mut o, "name", n);
    }
    if let Some(n) = &s.fields.postal_code {
        o.push(',');
        status(&mut o, "postalCode", n);
    }
    o.push_str("},\"error\":");
    match &s.error {
        Some(e) => {
            o.push_str("{\"field\":");
            opt(&mut o, e.field.map(Field::id));
            o.push_str(",\"code\":");
            esc(&mut o, &e.code);
            o.push_str(",\"message\":");
            esc(&mut o, &e.message);
            o.push('}');
        }
        None => o.push_str("null"),
    }
    o.push('}');
    o
}
/// Appends one record: `fields` separated by \x1f, ended by \x1e.
fn record(o: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            o.push('\x1f');
        }
        o.push_str(f);
    }
    o.push('\x1e');
}
/// Appends \x1d, then the rejected names as one-field records.
fn rejected_list(o: &mut String, rejected: &[String]) {
    o.push('\x1d');
    for r in rejected {
        record(o, &[r]);
    }
}
/// Splits "a\x1fb\x1fc\x1e..." records.
fn records(s: &str) -> impl Iterator<Item = Vec<&str>> {
    protocol::split_ascii(s, 0x1e).filter(|r| !r.is_empty()).map(|r| protocol::split_ascii(r, 0x1f).collect())
}

/// Parses the fragment, negotiates the locale; returns "channel\x1forigin\x1flang\x1frtl\x1fsplitfield\x1fgroup" or undefined.
#[wasm_bindgen]
pub fn start(hash: &str, langs: &str, y: u16, m: u8) -> Option<String> {
    let params = FrameParams::parse(hash)?;
    let locale = Locale::negotiate(params.locale.as_deref(), protocol::split_ascii(langs, b'\n'));
    let mut model = Model::new(FieldOptions::default(), ym(y, m));
    model.set_only(params.split.as_ref().map(|s| s.field));
    let out = [
        params.channel.as_str(),
        "\x1f",
        &params.parent_origin,
        "\x1f",
        locale.lang(),
        "\x1f",
        if locale.is_rtl() { "1" } else { "" },
        "\x1f",
        params.split.as_ref().map_or("", |s| s.field.id()),
        "\x1f",
        params.split.as_ref().map_or("", |s| s.group.as_str()),
    ]
    .concat();
    *CORE.lock() = Some(Core {
        params,
        model,
        locale,
        style: Style::default(),
        messages: protocol::Messages::default(),
        collect: None,
    });
    Some(out)
}
#[wasm_bindgen]
pub fn options(name: bool, postal: bool, y: u16, m: u8) {
    with(|c| {
        let keep: Vec<(Field, String)> = Field::ALL.into_iter().map(|f| (f, c.model.value(f).to_owned())).collect();
        let pb = c.model.peer_brand();
        c.model = Model::new(FieldOptions { name, postal_code: postal }, ym(y, m));
        c.model.set_only(c.params.split.as_ref().map(|s| s.field));
        c.model.set_peer_brand(pb);
        for (f, v) in keep {
            c.model.set_value(f, v);
        }
    });
}
/// "lang\x1frtl\x1favailable"
#[wasm_bindgen]
pub fn set_locale(tag: &str, langs: &str) -> Option<String> {
    with(|c| {
        c.locale = Locale::negotiate(Some(tag), protocol::split_ascii(langs, b'\n'));
        [
            c.locale.lang(),
            "\x1f",
            if c.locale.is_rtl() { "1" } else { "" },
            "\x1f",
            if c.locale.is_available() { "1" } else { "" },
        ]
        .concat()
    })
}
/// A locale table as records "key\x1ftext"; true when complete.
#[wasm_bindgen]
pub fn register_locale(lang: &str, table: &str) -> bool {
    let Some(loc) = Locale::from_tag(lang) else { return false };
    let mut strings: Vec<&'static str> = Vec::new();
    for r in records(table) {
        if let [_, t] = r.as_slice() {
            if t.is_empty() {
                return false;
            }
            strings.push(Box::leak(String::from(*t).into_boxed_str()));
        }
    }
    if strings.len() != 8 + locale::ERROR_CODES.len() {
        return false;
    }
    let mut it = strings.into_iter();
    let mut n = || it.next().unwrap_or_default();
    let mut text = locale::Text {
        lang: loc.lang(),
        number_label: n(),
        expiry_label: n(),
        cvc_label: n(),
        name_label: n(),
        postal_label: n(),
        number_placeholder: n(),
        expiry_placeholder: n(),
        name_placeholder: n(),
        errors: [""; locale::ERROR_CODES.len()],
    };
    for s in &mut text.errors {
        *s = n();
    }
    locale::register(loc, text);
    true
}
/// Labels and placeholders of the current locale and brand: 10 texts joined by \x1f.
#[wasm_bindgen]
pub fn texts() -> Option<String> {
    with(|c| {
        let t = c.locale.text();
        let cvc = c.model.brand().map_or("CVC", |b| b.security_code().name);
        [
            t.number_label,
            t.expiry_label,
            t.cvc_label,
            t.name_label,
            t.postal_label,
            t.number_placeholder,
            t.expiry_placeholder,
            cvc,
            t.name_placeholder,
            t.postal_label,
        ]
        .join("\x1f")
    })
}
/// An edit: returns "caret\x1ftext\x1fadvance" (advance: field index to focus, or empty).
#[wasm_bindgen]
pub fn edit(f: u8, old: &str, start: usize, end: usize, op: u8, data: &str) -> Option<String> {
    let f = field(f)?;
    with(|c| {
        let kind = c.model.kind(f)?;
        let ins = zeroize::Zeroizing::new(model::normalize_width(data));
        let e = match op {
            0 => card::Edit::Insert(&ins),
            1 => card::Edit::DeleteBackward,
            _ => card::Edit::DeleteForward,
        };
        let mut out = card::edit(kind, old, start..end, e);
        let at_end = out.caret >= out.text.len();
        c.model.set_value(f, out.text.clone());
        c.model.set_autofilled(f, false);
        let adv = if at_end && op == 0 { c.model.advance_from(f).map_or("", Field::id) } else { "" };
        let r = [&decimal(out.caret), "\x1f", &out.text, "\x1f", adv].concat();
        zeroize::Zeroize::zeroize(&mut out.text);
        Some(r)
    })?
}
#[wasm_bindgen]
pub fn input(f: u8, raw: &str, caret: usize, autofill: bool) -> Option<String> {
    let f = field(f)?;
    with(|c| {
        let r = match c.model.kind(f) {
            Some(kind) => {
                let raw = model::normalize_width(raw);
                let mut out = card::reformat(kind, &raw, caret);
                c.model.set_value(f, out.text.clone());
                let r = [&decimal(out.caret), "\x1f", &out.text].concat();
                zeroize::Zeroize::zeroize(&mut out.text);
                r
            }
            None => {
                c.model.set_value(f, raw.to_owned());
                String::new()
            }
        };
        let af = autofill && !c.model.value(f).is_empty();
        let first = af && !c.model.autofilled(f);
        c.model.set_autofilled(f, af);
        [r.as_str(), "\x1f", if first { "1" } else { "" }].concat()
    })
}
#[wasm_bindgen]
pub fn focus(f: u8) -> Option<String> {
    with(|c| {
        c.model.set_focus(field(f));
        field(f).map(|f| c.model.value(f).to_owned())
    })
    .flatten()
}
/// The mask to show on blur, if any.
#[wasm_bindgen]
pub fn mask(f: u8) -> Option<String> {
    let f = field(f)?;
    with(|c| {
        let v = c.model.value(f);
        match f {
            Field::Number if c.model.check(Field::Number) == Check::Valid => Some(card::mask(v, c.model.brand())),
            Field::Cvc if !v.is_empty() => Some("\u{2022}".repeat(protocol::char_count(v))),
            _ => None,
        }
    })?
}
#[wasm_bindgen]
pub fn clear(f: u8) {
    with(|c| match field(f) {
        Some(f) => c.model.clear_field(f),
        None => c.model.clear(),
    });
}
#[wasm_bindgen]
pub fn submitted() {
    with(|c| c.model.mark_submitted());
}
/// The change payload as JSON, with message overrides.
#[wasm_bindgen]
pub fn state() -> Option<String> {
    with(|c| {
        let mut s = c.model.state(c.locale.text());
        if let Some(e) = &mut s.error {
            if let Some(t) = c.messages.get(&e.code) {
                t.clone_into(&mut e.message);
            }
        }
        state_json(&s)
    })
}
/// Per field: bits invalid(1) describedby(2) empty(4) complete(8) autofilled(16) focused(32); then brand id.
#[wasm_bindgen]
pub fn flags() -> Option<String> {
    with(|c| {
        let err = c.model.first_error(c.locale.text()).and_then(|e| e.field);
        let mut o = String::new();
        for f in Field::ALL {
            let v = u32::from(c.model.visible_error(f).is_some())
                | u32::from(err == Some(f)) << 1
                | u32::from(c.model.value(f).is_empty()) << 2
                | u32::from(c.model.check(f) == Check::Valid) << 3
                | u32::from(c.model.autofilled(f)) << 4
                | u32::from(c.model.focused() == Some(f)) << 5
                | u32::from(c.model.enabled(f)) << 6;
            o.push(char::from_u32(0x40 + v).unwrap_or('@'));
        }
        o.push_str(c.model.brand().map_or("", card::Brand::id));
        o
    })
}
/// Style records "variant\x1fproperty\x1fvalue"; returns accepted records then \x1d then rejected names.
#[wasm_bindgen]
pub fn sanitize_style(raw: &str) -> Option<String> {
    let mut rs = style::RawStyle::default();
    for r in records(raw) {
        if let [v, p, val] = r.as_slice() {
            match rs.0.iter_mut().find(|(k, _)| k == v) {
                Some((_, d)) => d.0.push(((*p).to_owned(), (*val).to_owned())),
                None => rs.0.push(((*v).to_owned(), Pairs(vec![((*p).to_owned(), (*val).to_owned())]))),
            }
        }
    }
    let (st, rejected) = Style::sanitize(&rs);
    let mut o = String::new();
    for v in style::Variant::ALL {
        for d in st.get(v) {
            record(&mut o, &[v.name(), d.property, &d.value]);
        }
    }
    rejected_list(&mut o, &rejected);
    with(|c| c.style = st);
    Some(o)
}
#[wasm_bindgen]
pub fn sanitize_appearance(raw: &str) -> String {
    let mut p = Pairs(Vec::new());
    for r in records(raw) {
        if let [k, v] = r.as_slice() {
            p.0.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    let (theme, rejected) = style::sanitize_appearance(&p);
    let mut o = String::new();
    for t in &theme {
        record(&mut o, &[t.variable.custom_property, t.variable.checked_as, &t.value]);
    }
    rejected_list(&mut o, &rejected);
    o
}
#[wasm_bindgen]
pub fn messages(raw: &str) {
    let mut p = Pairs(Vec::new());
    for r in records(raw) {
        if let [k, v] = r.as_slice() {
            p.0.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    with(|c| c.messages = protocol::Messages::new(p));
}
#[wasm_bindgen]
pub fn message(code: &str) -> Option<String> {
    with(|c| c.messages.get(code).unwrap_or_else(|| c.locale.text().message(code)).to_owned())
}
/// Whether `code` has a message of its own (a locale text or the merchant's override), as the
/// frame decides whether to show the vault's message instead.
#[wasm_bindgen]
pub fn known(code: &str) -> bool {
    locale::ERROR_CODES.contains(&code) || with(|c| c.messages.get(code).is_some()).unwrap_or(false)
}
/// The request body, or "\x1ffield\x1fcode" when invalid.
#[wasm_bindgen]
pub fn body(y: u16, m: u8) -> Option<String> {
    with(|c| {
        c.model.set_today(ym(y, m));
        c.model.mark_submitted();
        let m = match c.collect.take() {
            Some(col) => match col.missing() {
                Some(f) => return ["\x1f", f.id(), "\x1f", split::incomplete(f)].concat(),
                None => col.model().card().map(|card| col.model().token_request_body(&card)),
            },
            None => c.model.card().map(|card| c.model.token_request_body(&card)),
        };
        match m {
            Ok(b) => String::from(b.as_str()),
            Err((f, code)) => ["\x1f", f.id(), "\x1f", code].concat(),
        }
    })
}
/// Split fields: the leader starts a collection.
#[wasm_bindgen]
pub fn collect_start(nonce: &str, name: bool, postal: bool, y: u16, m: u8) {
    with(|c| {
        c.collect = Some(split::Collect::new(
            nonce.to_owned(),
            c.model.value(Field::Number),
            FieldOptions { name, postal_code: postal },
            ym(y, m),
        ))
    });
}
#[wasm_bindgen]
pub fn collect_accept(nonce: &str, f: u8, value: String) -> bool {
    let Some(f) = field(f) else { return false };
    with(|c| {
        if let Some(col) = &mut c.collect {
            col.accept(nonce, f, zeroize::Zeroizing::new(value));
        }
        c.collect.as_ref().is_some_and(|c| c.missing().is_none())
    })
    .unwrap_or(false)
}
#[wasm_bindgen]
pub fn value_for_peer(f: u8) -> Option<String> {
    let f = field(f)?;
    with(|c| c.model.value(f).to_owned())
}
#[wasm_bindgen]
pub fn peer_brand(id: &str) {
    with(|c| c.model.set_peer_brand(card::Brand::ALL.iter().copied().find(|b| b.id() == id)));
}
#[wasm_bindgen]
pub fn forget_cvc() {
    with(|c| c.model.clear_field(Field::Cvc));
}

/// Whether a web font entry may be loaded (`protocol::FontSource::is_valid`).
#[wasm_bindgen]
pub fn font_ok(family: String, src: String, weight: String, style: String) -> bool {
    protocol::FontSource { family, src, weight: Some(weight), style: Some(style) }.is_valid()
}
