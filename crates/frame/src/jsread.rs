//! Reads what the frame receives (parent messages, vault responses) from JS values into the
//! frame's types, by hand with `Reflect`.
//!
//! Why not serde: a `Deserializer` over `JsValue` plus the visitors serde derives for each type
//! cost several KB of WASM in a frame with a 30 KB budget on the wire (BENCHMARKS.md). The
//! protocol types keep their serde derives for the native tests and the fuzz targets, which
//! decode JSON text; in the browser only these readers exist. The rules are the ones serde
//! applied: every known key is read whatever the message type, and a known key of the wrong
//! type (or a field name that is not a field) makes the whole value unreadable, which the
//! frame treats as "ignore it"; unknown keys are never looked at; `null` and a missing key are
//! both "absent" for optional values.

#[allow(unused_imports)]
use crate::prelude::*;

use js_sys::{Array, JsString, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use crate::protocol::{FONT_WEIGHTS, Field, FieldOptions, FieldTexts, FontSource, ParentMessage};
use crate::style::Pairs;

/// The value does not have the expected shape.
pub(crate) struct Bad;

/// A plain object (not `null`, not an array).
pub(crate) struct Obj(Object);

impl Obj {
    /// `value` as an object, if it is one.
    pub(crate) fn new(value: JsValue) -> Result<Obj, Bad> {
        if value.is_object() && !Array::is_array(&value) { Ok(Obj(value.unchecked_into())) } else { Err(Bad) }
    }

    fn get(&self, key: &str) -> Option<JsValue> {
        let value = Reflect::get(&self.0, &JsValue::from_str(key)).ok()?;
        (!value.is_null() && !value.is_undefined()).then_some(value)
    }

    pub(crate) fn opt_string(&self, key: &str) -> Result<Option<String>, Bad> {
        self.get(key).map(|v| v.as_string().ok_or(Bad)).transpose()
    }

    pub(crate) fn string(&self, key: &str) -> Result<String, Bad> {
        self.opt_string(key)?.ok_or(Bad)
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>, Bad> {
        self.get(key).map(|v| v.as_bool().ok_or(Bad)).transpose()
    }

    /// A non-negative integer up to `max`.
    pub(crate) fn opt_uint(&self, key: &str, max: u32) -> Result<Option<u32>, Bad> {
        self.get(key)
            .map(|v| match v.as_f64() {
                // In range and a whole number (`f64::fract` is not in `core`).
                Some(n) if (0.0..=f64::from(max)).contains(&n) && f64::from(n as u32) == n => Ok(n as u32),
                _ => Err(Bad),
            })
            .transpose()
    }

    pub(crate) fn opt_object(&self, key: &str) -> Result<Option<Obj>, Bad> {
        self.get(key).map(Obj::new).transpose()
    }

    /// The raw value of `key`, `None` when absent.
    pub(crate) fn value(&self, key: &str) -> Option<JsValue> {
        self.get(key)
    }

    /// The object's own enumerable entries, in order, each value read by `read`.
    fn pairs<V>(&self, mut read: impl FnMut(JsValue) -> Result<V, Bad>) -> Result<Pairs<V>, Bad> {
        let keys = Object::keys(&self.0);
        let mut out = Vec::with_capacity(keys.length() as usize);
        for key in keys.iter() {
            let value = Reflect::get(&self.0, &key).map_err(|_| Bad)?;
            let key: String = key.dyn_into::<JsString>().map_err(|_| Bad)?.into();
            out.push((key, read(value)?));
        }
        Ok(Pairs(out))
    }
}

fn string_value(value: JsValue) -> Result<String, Bad> {
    value.as_string().ok_or(Bad)
}

/// `{ key: "text" }` (absent → `None`).
fn opt_strings(obj: &Obj, key: &str) -> Result<Option<Pairs<String>>, Bad> {
    obj.opt_object(key)?.map(|o| o.pairs(string_value)).transpose()
}

/// `{ number?, expiry?, cvc?, name?, postalCode? }` of strings (absent → `None`).
///
/// Read into one value, key by key, rather than into a local per key: a bad key then drops one
/// value instead of every local read before it, which costs WASM per key (here and in
/// [`read_parent_message`]).
#[allow(clippy::field_reassign_with_default, reason = "see above: one value to drop on every early return")]
fn field_texts(obj: &Obj, key: &str) -> Result<Option<FieldTexts>, Bad> {
    let Some(p) = obj.opt_object(key)? else { return Ok(None) };
    let mut texts = FieldTexts::default();
    texts.number = p.opt_string("number")?;
    texts.expiry = p.opt_string("expiry")?;
    texts.cvc = p.opt_string("cvc")?;
    texts.name = p.opt_string("name")?;
    texts.postal_code = p.opt_string("postalCode")?;
    Ok(Some(texts))
}

/// `[{ family, src, weight?, style? }]` (absent → `None`). Lenient, unlike the other options:
/// the loader passes the merchant's array as it is, so an entry of the wrong shape becomes an
/// invalid font (reported by the `font_failed` warning) rather than making `init` unreadable, a
/// number `weight` is read as its text, and anything but an array is ignored.
fn fonts(obj: &Obj) -> Option<Vec<FontSource>> {
    let list: Array = obj.value("fonts")?.dyn_into().ok()?;
    let font = |v: JsValue| {
        let f = Obj::new(v).ok();
        let text = |key: &str| f.as_ref().and_then(|f| f.opt_string(key).ok().flatten());
        // A number is looked up, not formatted: integer formatting would link `core::fmt`.
        let weight = f.as_ref().and_then(|f| f.value("weight")).and_then(|w| {
            w.as_string().or_else(|| {
                let i = w.as_f64()? / 100.0 - 1.0;
                // Whole and not negative (no `f64::fract` without std): the cast keeps it.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
                let i = (i >= 0.0 && (i as usize) as f64 == i).then_some(i as usize)?;
                FONT_WEIGHTS.get(i).map(|s| (*s).to_owned())
            })
        });
        FontSource {
            family: text("family").unwrap_or_default(),
            src: text("src").unwrap_or_default(),
            weight,
            style: text("style"),
        }
    };
    Some(list.iter().map(font).collect())
}

/// A parent → frame message; `None` for anything that does not have its shape.
pub(crate) fn parent_message(data: JsValue) -> Option<ParentMessage> {
    read_parent_message(data).ok()
}

#[allow(clippy::field_reassign_with_default, reason = "one value to drop on every early return (field_texts)")]
fn read_parent_message(data: JsValue) -> Result<ParentMessage, Bad> {
    let m = Obj::new(data)?;
    let mut msg = ParentMessage::default();
    msg.field = match m.opt_string("field")? {
        Some(id) => Some(Field::from_id(&id).ok_or(Bad)?),
        None => None,
    };
    msg.style = match m.opt_object("style")? {
        Some(o) => Some(o.pairs(|v| Obj::new(v)?.pairs(string_value))?),
        None => None,
    };
    msg.fields = match m.opt_object("fields")? {
        Some(f) => Some(FieldOptions {
            name: f.opt_bool("name")?.unwrap_or(false),
            postal_code: f.opt_bool("postalCode")?.unwrap_or(false),
        }),
        None => None,
    };
    msg.v = m.opt_uint("v", u32::MAX)?.ok_or(Bad)?;
    msg.channel = m.string("channel")?;
    msg.kind = m.string("type")?;
    msg.id = m.opt_string("id")?;
    msg.locale = m.opt_string("locale")?;
    msg.placeholders = field_texts(&m, "placeholders")?;
    msg.label = field_texts(&m, "label")?;
    msg.aria_label = field_texts(&m, "ariaLabel")?;
    msg.show_labels = m.opt_bool("showLabels")?;
    msg.errors = m.opt_string("errors")?;
    msg.messages = opt_strings(&m, "messages")?;
    msg.appearance = opt_strings(&m, "appearance")?;
    msg.disabled = m.opt_bool("disabled")?;
    msg.fonts = fonts(&m);
    Ok(msg)
}

/// The text keys of a locale table file, in [`crate::locale::Text`] order; then `errors`.
const TEXT_KEYS: [&str; 8] = [
    "number_label",
    "expiry_label",
    "cvc_label",
    "name_label",
    "postal_label",
    "number_placeholder",
    "expiry_placeholder",
    "name_placeholder",
];

/// A locale table as `static/frame/locale-<lang>.json` holds it; `None` unless it is complete and
/// its `lang` is `lang`. Its strings are leaked (see [`crate::locale::register`]), and only once
/// all of them were read, so a bad table leaks nothing.
pub(crate) fn locale_table(value: JsValue, lang: &str) -> Option<crate::locale::Text> {
    let locale = crate::locale::Locale::from_tag(lang)?;
    let o = Obj::new(value).ok()?;
    let errors = o.opt_object("errors").ok()??;
    if o.string("lang").ok()? != locale.lang() {
        return None;
    }
    let mut strings = Vec::with_capacity(TEXT_KEYS.len() + crate::locale::ERROR_CODES.len());
    for (obj, key) in TEXT_KEYS.iter().map(|k| (&o, *k)).chain(crate::locale::ERROR_CODES.iter().map(|k| (&errors, *k)))
    {
        strings.push(obj.string(key).ok().filter(|s| !s.is_empty())?);
    }
    let mut leaked = strings.into_iter().map(|s| -> &'static str { Box::leak(s.into_boxed_str()) });
    let mut next = || leaked.next().unwrap_or_default();
    let mut text = crate::locale::Text {
        lang: locale.lang(),
        number_label: next(),
        expiry_label: next(),
        cvc_label: next(),
        name_label: next(),
        postal_label: next(),
        number_placeholder: next(),
        expiry_placeholder: next(),
        name_placeholder: next(),
        errors: [""; crate::locale::ERROR_CODES.len()],
    };
    for slot in &mut text.errors {
        *slot = next();
    }
    Some(text)
}

/// A message of another field frame of the same split card (`{t, n?, f?, x?}`, see
/// [`crate::split::Peer`]); `None` for anything that does not have that shape.
pub(crate) fn peer_message(data: JsValue) -> Option<crate::split::Peer> {
    let m = Obj::new(data).ok()?;
    let field = m.opt_string("f").ok()?;
    crate::split::Peer::decode(
        m.opt_uint("t", 9).ok()??,
        m.opt_string("n").ok()?,
        field.as_deref(),
        m.opt_string("x").ok()?,
    )
}
