//! postMessage protocol v1 between the loader (parent page) and the frame.
//!
//! Wire types only, with serde; no I/O. `docs/postmessage.md` is the human-readable
//! catalogue and must change together with this file. Every message is a plain object
//! `{ v: 1, channel, type, ...fields }` (absent options are `null`). The serde derives define
//! the shapes (the tests below pin them; the fuzz targets decode with them); in the browser the
//! frame reads and builds the same shapes by hand (`jsread`, `jswrite`: no serde code in the
//! WASM), and a DOM test checks the built messages against these serde shapes.
//!
//! Trust rules (enforced by the DOM layer, checked by tests): the frame accepts a message
//! only when `event.source === window.parent`, `event.origin` equals the parent origin from
//! the URL fragment, `v == 1` and `channel` equals the fragment's channel; it posts only to
//! that exact origin. Anything else, anything malformed and anything larger than
//! [`MAX_MESSAGE_CHARS`] once serialised is ignored.

#[allow(unused_imports)]
use crate::prelude::*;

use serde::{Deserialize, Serialize};

use crate::style::{Pairs, RawStyle};

/// Protocol version carried in every message as `v`.
pub const VERSION: u32 = 1;

/// Largest accepted message, measured as the length of its JSON text.
pub const MAX_MESSAGE_CHARS: usize = 32 * 1024;

/// Longest placeholder, label or accessible name a merchant may set.
const MAX_FIELD_TEXT_CHARS: usize = 100;

/// Longest tokenize request id.
const MAX_ID_CHARS: usize = 64;

/// Longest error message override.
const MAX_MESSAGE_OVERRIDE_CHARS: usize = 200;

/// An input of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Field {
    /// Card number.
    Number,
    /// Expiry date `MM / YY`.
    Expiry,
    /// Security code.
    Cvc,
    /// Cardholder name (optional field).
    Name,
    /// Postal code (optional field).
    PostalCode,
}

impl Field {
    /// Every field in document order.
    pub const ALL: [Field; 5] = [Field::Number, Field::Expiry, Field::Cvc, Field::Name, Field::PostalCode];

    /// The wire name, also the input's `name` and `id` in the frame document.
    pub fn id(self) -> &'static str {
        match self {
            Field::Number => "number",
            Field::Expiry => "expiry",
            Field::Cvc => "cvc",
            Field::Name => "name",
            Field::PostalCode => "postalCode",
        }
    }

    /// Inverse of [`Field::id`].
    pub fn from_id(id: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.id() == id)
    }

    /// Position in [`Field::ALL`].
    pub fn index(self) -> usize {
        match self {
            Field::Number => 0,
            Field::Expiry => 1,
            Field::Cvc => 2,
            Field::Name => 3,
            Field::PostalCode => 4,
        }
    }
}

/// What the frame learns from its URL fragment
/// (`#v=1&channel=...&origin=...&locale=...`, values percent-encoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameParams {
    /// Random id of this loader instance.
    pub channel: String,
    /// Exact origin of the embedding page (`https://shop.example:8443`).
    pub parent_origin: String,
    /// Requested locale, if any.
    pub locale: Option<String>,
    /// Split fields: this frame's field and the card's group (`field=…&group=…`, both or
    /// neither); `None` for the single frame.
    pub split: Option<crate::split::SplitParams>,
}

impl FrameParams {
    /// Parses the fragment (with or without its leading `#`); `None` when the version is not
    /// 1, the channel is not 16–64 characters of `[A-Za-z0-9_-]`, or the origin is not a
    /// plain `http(s)://host[:port]` origin, or only one of `field` (a field id) and `group`
    /// (like a channel) is given or valid.
    pub fn parse(fragment: &str) -> Option<FrameParams> {
        let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
        let (mut v, mut channel, mut origin, mut locale) = (None, None, None, None);
        let (mut field, mut group) = (None, None);
        for pair in split_ascii(fragment, b'&') {
            let (key, value) = match pair.bytes().position(|b| b == b'=') {
                Some(i) => (pair.get(..i).unwrap_or_default(), pair.get(i + 1..).unwrap_or_default()),
                None => (pair, ""),
            };
            let value = percent_decode(value)?;
            match key {
                "v" => v = Some(value),
                "channel" => channel = Some(value),
                "origin" => origin = Some(value),
                "locale" => locale = Some(value),
                "field" => field = Some(value),
                "group" => group = Some(value),
                _ => {}
            }
        }
        if v.as_deref() != Some("1") {
            return None;
        }
        let channel = channel.filter(|c| channel_is_valid(c))?;
        let parent_origin = origin.filter(|o| origin_is_valid(o))?;
        let locale = locale.filter(|l| {
            !l.is_empty() && l.len() <= 35 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        let split = match (field, group) {
            (None, None) => None,
            (Some(field), Some(group)) if channel_is_valid(&group) => {
                Some(crate::split::SplitParams { field: Field::from_id(&field)?, group })
            }
            _ => return None,
        };
        Some(FrameParams { channel, parent_origin, locale, split })
    }
}

/// `s` split at every `sep` (an ASCII byte), as `str::split` with that `char` would: by hand,
/// because the `char` searcher behind `str::split` costs WASM.
pub fn split_ascii(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    s.as_bytes().split(move |b| *b == sep).map(|part| core::str::from_utf8(part).unwrap_or_default())
}

/// The number of `char`s in `text`: its bytes that do not continue a UTF-8 sequence. Not
/// `chars().count()`, whose word-at-a-time version is about 1 KB of WASM (BENCHMARKS.md).
pub fn char_count(text: &str) -> usize {
    text.bytes().filter(|b| !(0x80..0xC0).contains(b)).count()
}

/// 16–64 characters of `[A-Za-z0-9_-]`.
pub fn channel_is_valid(channel: &str) -> bool {
    (16..=64).contains(&channel.len()) && channel.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A serialised origin: `http` or `https`, a host, an optional port, nothing else.
pub fn origin_is_valid(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")) else {
        return false;
    };
    !rest.is_empty()
        && rest.len() <= 253
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

fn percent_decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            // By hand, not `u8::from_str_radix`: the generic integer parser costs WASM.
            let high = hex_digit(*bytes.get(i + 1)?)?;
            let low = hex_digit(*bytes.get(i + 2)?)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(if b == b'+' { b' ' } else { b });
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The value of one hexadecimal digit (either case).
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A text per field the merchant may set (placeholders, labels, accessible names); `None` keeps
/// the locale's text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldTexts {
    pub number: Option<String>,
    pub expiry: Option<String>,
    pub cvc: Option<String>,
    pub name: Option<String>,
    pub postal_code: Option<String>,
}

impl FieldTexts {
    /// The override for a field, if set and not too long.
    pub fn get(&self, field: Field) -> Option<&str> {
        let value = match field {
            Field::Number => &self.number,
            Field::Expiry => &self.expiry,
            Field::Cvc => &self.cvc,
            Field::Name => &self.name,
            Field::PostalCode => &self.postal_code,
        };
        value.as_deref().filter(|v| char_count(v) <= MAX_FIELD_TEXT_CHARS)
    }
}

/// Optional fields (both off by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldOptions {
    #[serde(default)]
    pub name: bool,
    #[serde(default)]
    pub postal_code: bool,
}

/// Most web fonts one frame loads (`fonts` option).
pub const MAX_FONTS: usize = 8;

/// The font weights the vault accepts, as CSS text.
pub const FONT_WEIGHTS: [&str; 9] = ["100", "200", "300", "400", "500", "600", "700", "800", "900"];

/// A web font the frame loads (`fonts` option): a face the merchant registered with the vault's
/// admin API (`POST /v1/fonts`), served from the vault's own origin (the frame's CSP says
/// `font-src 'self'`). `weight` and `style` are strings (a number `weight` is read as its text).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct FontSource {
    pub family: String,
    /// The font's `url` from the admin API: `/v1/frame/fonts/<32 letters a–p>.woff2`.
    pub src: String,
    pub weight: Option<String>,
    pub style: Option<String>,
}

impl FontSource {
    /// Whether it names a vault-served font with a family, weight and style the vault accepts
    /// (the same rules as `POST /v1/fonts`), so it is safe in a `FontFace` and a `url()`.
    pub fn is_valid(&self) -> bool {
        // Byte checks only (no char decoding or substring search: bytes of WASM).
        let f = self.family.as_bytes();
        let family = (1..=64).contains(&f.len())
            && f.first().is_some_and(u8::is_ascii_alphabetic)
            && f.last() != Some(&b' ')
            && f.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'-' | b'_'));
        let src = self.src.as_bytes();
        let hash = src.get(16..48).filter(|_| src.len() == 54);
        let src = src.starts_with(b"/v1/frame/fonts/")
            && src.ends_with(b".woff2")
            && hash.is_some_and(|h| h.iter().all(|b| matches!(b, b'a'..=b'p')));
        let weight = self.weight.as_deref().is_none_or(|w| FONT_WEIGHTS.contains(&w));
        let style = self.style.as_deref().is_none_or(|s| matches!(s, "normal" | "italic"));
        family && src && weight && style
    }
}

/// A parent → frame message as it arrives; turned into a [`Command`] by
/// [`ParentMessage::into_command`]. Unknown keys are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct ParentMessage {
    pub v: u32,
    pub channel: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub field: Option<Field>,
    pub id: Option<String>,
    pub locale: Option<String>,
    pub style: Option<RawStyle>,
    pub placeholders: Option<FieldTexts>,
    /// Label texts per field (`label` option).
    pub label: Option<FieldTexts>,
    /// Accessible names per field (`ariaLabel` option), read instead of the label.
    #[serde(rename = "ariaLabel")]
    pub aria_label: Option<FieldTexts>,
    /// Labels shown above the inputs (`showLabels: true`) instead of for screen readers only.
    #[serde(rename = "showLabels")]
    pub show_labels: Option<bool>,
    pub fields: Option<FieldOptions>,
    pub errors: Option<String>,
    pub messages: Option<Pairs<String>>,
    /// `appearance.variables`, flattened by the loader.
    pub appearance: Option<Pairs<String>>,
    pub disabled: Option<bool>,
    /// Web fonts to load before `ready` (`init` only).
    pub fonts: Option<Vec<FontSource>>,
}

/// Configuration sent once, in answer to `hello`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Init {
    pub locale: Option<String>,
    pub style: RawStyle,
    pub placeholders: FieldTexts,
    pub label: FieldTexts,
    pub aria_label: FieldTexts,
    pub show_labels: bool,
    pub fields: FieldOptions,
    /// Whether the frame shows the error text itself (`errors: "frame"`, the default) or leaves
    /// it to the page (`errors: "none"`: visually hidden, still the inputs' accessible description).
    pub show_errors: bool,
    pub messages: Messages,
    /// Theme variables (`appearance.variables`).
    pub appearance: Pairs<String>,
    /// Every input disabled.
    pub disabled: bool,
    /// Web fonts `ready` waits for (at most [`MAX_FONTS`]; invalid ones are reported).
    pub fonts: Vec<FontSource>,
}

/// `update`: the options to change without remounting; `None` keeps the current one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    pub locale: Option<String>,
    pub style: Option<RawStyle>,
    pub appearance: Option<Pairs<String>>,
    pub placeholders: Option<FieldTexts>,
    pub label: Option<FieldTexts>,
    pub aria_label: Option<FieldTexts>,
    pub show_labels: Option<bool>,
    pub disabled: Option<bool>,
}

impl From<Init> for Update {
    fn from(init: Init) -> Update {
        Update {
            locale: init.locale,
            style: Some(init.style),
            appearance: Some(init.appearance),
            placeholders: Some(init.placeholders),
            label: Some(init.label),
            aria_label: Some(init.aria_label),
            show_labels: Some(init.show_labels),
            disabled: Some(init.disabled),
        }
    }
}

/// Merchant overrides of error messages, by error code (`{ "incomplete_cvc": "…" }`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Messages(Vec<(String, String)>);

impl Messages {
    /// Keeps the overrides whose code is `[a-z_]{1,64}` and whose text is 1–200 characters
    /// without control characters; drops the rest.
    pub fn new(raw: Pairs<String>) -> Messages {
        let code_ok = |c: &str| (1..=64).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        let text_ok = |t: &str| {
            !t.trim().is_empty() && char_count(t) <= MAX_MESSAGE_OVERRIDE_CHARS && !t.chars().any(char::is_control)
        };
        Messages(raw.0.into_iter().filter(|(c, t)| code_ok(c) && text_ok(t)).collect())
    }

    /// The override for `code`, if any.
    pub fn get(&self, code: &str) -> Option<&str> {
        self.0.iter().find(|(c, _)| c == code).map(|(_, t)| t.as_str())
    }
}

/// What the parent asks the frame to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `{type:"init", locale?, style?, placeholders?, label?, ariaLabel?, showLabels?, fields?, …}`:
    /// configure and render.
    Init(Init),
    /// `{type:"update", locale?, style?, appearance?, placeholders?, label?, ariaLabel?,
    /// showLabels?, disabled?}`: change those
    /// options in place, keeping every value typed.
    Update(Update),
    /// `{type:"focus", field}`.
    Focus(Field),
    /// `{type:"clear", field?}`: empty one field, or every field without `field`.
    Clear(Option<Field>),
    /// `{type:"blur"}`: take focus away from whichever input has it.
    Blur,
    /// `{type:"tokenize", id, fields?}`: validate and tokenize; answered with `tokenized` or
    /// `tokenizeFailed` carrying the same `id`. `fields` (split fields only): the optional fields
    /// the card has, which the number frame collects too.
    Tokenize { id: String, fields: Option<FieldOptions> },
}

impl ParentMessage {
    /// The command, when version and channel match and the message is well formed.
    pub fn into_command(self, channel: &str) -> Option<Command> {
        if self.v != VERSION || self.channel != channel {
            return None;
        }
        match self.kind.as_str() {
            "init" => Some(Command::Init(Init {
                locale: self.locale,
                style: self.style.unwrap_or_default(),
                placeholders: self.placeholders.unwrap_or_default(),
                label: self.label.unwrap_or_default(),
                aria_label: self.aria_label.unwrap_or_default(),
                show_labels: self.show_labels.unwrap_or(false),
                fields: self.fields.unwrap_or_default(),
                show_errors: self.errors.as_deref() != Some("none"),
                messages: Messages::new(self.messages.unwrap_or_default()),
                appearance: self.appearance.unwrap_or_default(),
                disabled: self.disabled.unwrap_or(false),
                fonts: self.fonts.unwrap_or_default(),
            })),
            "update" => Some(Command::Update(Update {
                locale: self.locale,
                style: self.style,
                appearance: self.appearance,
                placeholders: self.placeholders,
                label: self.label,
                aria_label: self.aria_label,
                show_labels: self.show_labels,
                disabled: self.disabled,
            })),
            "focus" => self.field.map(Command::Focus),
            "clear" => Some(Command::Clear(self.field)),
            "blur" => Some(Command::Blur),
            "tokenize" => {
                let fields = self.fields;
                self.id
                    .filter(|id| !id.is_empty() && id.len() <= MAX_ID_CHARS)
                    .map(|id| Command::Tokenize { id, fields })
            }
            _ => None,
        }
    }
}

/// Per-field part of the `change` payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldStatus {
    pub empty: bool,
    pub valid: bool,
    pub potentially_valid: bool,
    pub focused: bool,
    /// The browser's autofill wrote the value (until the cardholder edits the field).
    pub autofilled: bool,
}

/// Statuses of the fields; optional ones only when enabled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldStatuses {
    pub number: FieldStatus,
    pub expiry: FieldStatus,
    pub cvc: FieldStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<FieldStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<FieldStatus>,
}

/// A user-facing error: a stable code, a localised message, the field when there is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<Field>,
    pub code: String,
    pub message: String,
}

/// The `change` payload, also what the loader's `state()` returns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChangeState {
    /// A card crate brand id (`"visa"`) or `null`.
    pub brand: Option<&'static str>,
    /// The number's first 8 digits (16 digits or more) or first 6 (shorter numbers), once the
    /// number is complete and valid; `null` before. PCI DSS allows showing these with the last 4.
    pub bin: Option<String>,
    /// The number's last 4 digits once it is complete and valid; `null` before.
    pub last4: Option<String>,
    /// Every visible field is valid.
    pub complete: bool,
    /// Every visible field is empty.
    pub empty: bool,
    pub fields: FieldStatuses,
    /// The first error to show, or `null`.
    pub error: Option<ErrorInfo>,
}

/// Card metadata returned with a token: never the PAN or CVC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CardMeta {
    pub brand: String,
    pub last4: String,
    pub exp_month: u8,
    pub exp_year: u16,
}

/// A frame → parent message body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum FrameEvent {
    /// The frame has booted and waits for `init`.
    Hello,
    /// Rendered after `init`; `mount()` resolves.
    Ready { height: u32, state: ChangeState },
    /// The document's height changed (the loader sizes the iframe).
    Resize { height: u32 },
    /// Any field changed value or validity.
    Change { state: ChangeState },
    /// A field gained focus.
    Focus { field: Field },
    /// A field lost focus.
    Blur { field: Field },
    /// Enter was pressed in a field.
    Submit,
    /// Escape was pressed in a field.
    Escape { field: Field },
    /// The browser's autofill filled a field.
    Autofill { field: Field },
    /// The detected brand changed (`null` when unknown).
    Brand { brand: Option<&'static str> },
    /// Answer to `tokenize` on success.
    Tokenized {
        id: String,
        token: String,
        card: CardMeta,
        /// RFC 3339 time at which the token expires.
        expires_at: String,
    },
    /// Answer to `tokenize` on failure.
    TokenizeFailed { id: String, error: ErrorInfo },
    /// Something the merchant should fix, e.g. style properties that were not applied
    /// (`code: "style_rejected"`, `properties: ["base.position", …]`).
    Warning { code: &'static str, message: String, properties: Vec<String> },
}

/// A frame → parent message: the event plus `v` and `channel`.
///
/// The wire shape of every outgoing message. In the browser `jswrite::message` builds the
/// same object (same keys, same order; checked by the DOM tests); the tests below pin the shape.
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    pub v: u32,
    pub channel: &'a str,
    #[serde(flatten)]
    pub event: &'a FrameEvent,
}

impl<'a> Envelope<'a> {
    /// Wraps an event for a channel.
    pub fn new(channel: &'a str, event: &'a FrameEvent) -> Envelope<'a> {
        Envelope { v: VERSION, channel, event }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CH: &str = "abcdefghijklmnop0123";

    fn parse(value: serde_json::Value) -> Option<Command> {
        serde_json::from_value::<ParentMessage>(value).ok()?.into_command(CH)
    }

    #[test]
    fn fragment_parsing() {
        let ok = FrameParams::parse(
            "#v=1&channel=abcdefghijklmnop0123&origin=https%3A%2F%2Fshop.example%3A8443&locale=de-CH",
        );
        assert_eq!(
            ok,
            Some(FrameParams {
                channel: CH.into(),
                parent_origin: "https://shop.example:8443".into(),
                locale: Some("de-CH".into()),
                split: None,
            })
        );
        let split = FrameParams::parse(
            "#v=1&channel=abcdefghijklmnop0123&origin=http%3A%2F%2Fa.example&field=postalCode&group=0123456789abcdef",
        );
        assert_eq!(
            split.and_then(|p| p.split),
            Some(crate::split::SplitParams { field: Field::PostalCode, group: "0123456789abcdef".into() })
        );
        let no_locale = FrameParams::parse("v=1&origin=http://127.0.0.1:3000&channel=abcdefghijklmnop0123");
        assert_eq!(no_locale.map(|p| p.locale), Some(None));
        for bad in [
            "",
            "#v=2&channel=abcdefghijklmnop0123&origin=https%3A%2F%2Fa.example",
            "#v=1&channel=short&origin=https%3A%2F%2Fa.example",
            "#v=1&channel=abcdefghijklmnop0123&origin=*",
            "#v=1&channel=abcdefghijklmnop0123&origin=null",
            "#v=1&channel=abcdefghijklmnop0123&origin=https%3A%2F%2Fa.example%2Fpath",
            "#v=1&channel=abcdefghijklmnop0123&origin=javascript%3Aalert(1)",
            "#v=1&channel=abcdefghijklmnop%20123&origin=https%3A%2F%2Fa.example",
            "#v=1&channel=abcdefghijklmnop0123&origin=https%3A%2F%2Fa.example%ZZ",
            "#v=1&channel=abcdefghijklmnop0123&origin=https%3A%2F%2Fa.example&field=number",
            "#v=1&channel=abcdefghijklmnop0123&origin=https%3A%2F%2Fa.example&group=0123456789abcdef",
            "#v=1&channel=abcdefghijklmnop0123&origin=https%3A%2F%2Fa.example&field=pin&group=0123456789abcdef",
            "#v=1&channel=abcdefghijklmnop0123&origin=https%3A%2F%2Fa.example&field=cvc&group=short",
        ] {
            assert_eq!(FrameParams::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn chars_are_counted_by_hand() {
        for s in ["", "a", "é", "中文", "😀x", "4242 \u{2022}\u{2022}\u{2022}\u{2022}", "\u{FFFD}\u{7F}\u{80}"] {
            assert_eq!(char_count(s), s.chars().count(), "{s}");
        }
    }

    #[test]
    fn percent_decoding_and_splitting_by_hand() {
        for (encoded, decoded) in
            [("a%2Fb%2fc", Some("a/b/c")), ("x+y%20z", Some("x y z")), ("%C3%A9", Some("é")), ("", Some(""))]
        {
            assert_eq!(percent_decode(encoded).as_deref(), decoded, "{encoded}");
        }
        // Not two hex digits (`u8::from_str_radix`, used before, took a sign), cut short, not UTF-8.
        for bad in ["%+1", "%-1", "%4", "%", "%G0", "%C3"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
        for s in ["", "&", "a", "a&b", "&a&&b&", "é&ü", "key=v&x"] {
            assert_eq!(split_ascii(s, b'&').collect::<Vec<_>>(), s.split('&').collect::<Vec<_>>(), "{s}");
        }
    }

    #[test]
    fn parent_messages() {
        assert_eq!(parse(json!({"v":1,"channel":CH,"type":"focus","field":"cvc"})), Some(Command::Focus(Field::Cvc)));
        assert_eq!(parse(json!({"v":1,"channel":CH,"type":"clear","extra":[1,2]})), Some(Command::Clear(None)));
        assert_eq!(
            parse(json!({"v":1,"channel":CH,"type":"clear","field":"cvc"})),
            Some(Command::Clear(Some(Field::Cvc)))
        );
        assert_eq!(parse(json!({"v":1,"channel":CH,"type":"blur"})), Some(Command::Blur));
        assert_eq!(parse(json!({"v":1,"channel":CH,"type":"update"})), Some(Command::Update(Update::default())));
        let update = parse(json!({
            "v":1,"channel":CH,"type":"update","disabled":true,"locale":"de",
            "style":{"hover":{"borderColor":"#999"}},"appearance":{"colorPrimary":"#635bff"},
            "placeholders":{"cvc":"123"},"label":{"number":"Card"},"ariaLabel":{"cvc":"Security code, 3 digits"},
            "showLabels":true
        }));
        let Some(Command::Update(update)) = update else { panic!("update not parsed") };
        assert_eq!(update.disabled, Some(true));
        assert_eq!(update.locale.as_deref(), Some("de"));
        assert_eq!(update.appearance.as_ref().and_then(|a| a.get("colorPrimary")).map(String::as_str), Some("#635bff"));
        assert!(update.style.is_some_and(|s| s.get("hover").is_some()));
        assert_eq!(update.placeholders.as_ref().and_then(|p| p.get(Field::Cvc)), Some("123"));
        assert_eq!(update.label.as_ref().and_then(|l| l.get(Field::Number)), Some("Card"));
        assert_eq!(update.aria_label.as_ref().and_then(|l| l.get(Field::Cvc)), Some("Security code, 3 digits"));
        assert_eq!(update.show_labels, Some(true));
        assert_eq!(
            parse(json!({"v":1,"channel":CH,"type":"tokenize","id":"t1"})),
            Some(Command::Tokenize { id: "t1".into(), fields: None })
        );
        assert_eq!(
            parse(json!({"v":1,"channel":CH,"type":"tokenize","id":"t2","fields":{"name":true}})),
            Some(Command::Tokenize { id: "t2".into(), fields: Some(FieldOptions { name: true, postal_code: false }) })
        );
        let init = parse(json!({
            "v":1,"channel":CH,"type":"init","locale":"fr",
            "style":{"base":{"color":"#333"}},
            "placeholders":{"number":"Numéro","postalCode":"ZIP"},
            "fields":{"postalCode":true}
        }));
        let Some(Command::Init(init)) = init else { panic!("init not parsed") };
        assert_eq!(init.locale.as_deref(), Some("fr"));
        assert_eq!(init.placeholders.get(Field::PostalCode), Some("ZIP"));
        assert!(init.fields.postal_code && !init.fields.name);
        assert_eq!(init.style.get("base").and_then(|b| b.get("color")).map(String::as_str), Some("#333"));
        assert!(init.show_errors, "errors default to the frame's own display");
        assert!(!init.disabled && init.appearance.0.is_empty());
        assert!(!init.show_labels && init.label == FieldTexts::default() && init.aria_label == FieldTexts::default());
        let long = "x".repeat(101);
        let init = parse(json!({"v":1,"channel":CH,"type":"init","label":{"number":long,"expiry":"Valid thru"}}));
        let Some(Command::Init(init)) = init else { panic!("init not parsed") };
        assert_eq!(init.label.get(Field::Number), None, "a label over 100 characters is ignored");
        assert_eq!(init.label.get(Field::Expiry), Some("Valid thru"));
        assert_eq!(parse(json!({"v":1,"channel":CH,"type":"init","showLabels":"yes"})), None);
        let init = parse(json!({
            "v":1,"channel":CH,"type":"init","errors":"none",
            "messages":{"incomplete_cvc":"CVC?","Bad-Code":"x","expired":"","invalid_number":"a\u{7}b"}
        }));
        let Some(Command::Init(init)) = init else { panic!("init not parsed") };
        assert!(!init.show_errors);
        assert_eq!(init.messages.get("incomplete_cvc"), Some("CVC?"));
        for dropped in ["Bad-Code", "expired", "invalid_number"] {
            assert_eq!(init.messages.get(dropped), None, "{dropped}");
        }
        // Ignored: wrong version, wrong channel, unknown type, bad field, missing id,
        // wrong types, not an object.
        for bad in [
            json!({"v":2,"channel":CH,"type":"clear"}),
            json!({"v":1,"channel":"other-channel-123456","type":"clear"}),
            json!({"v":1,"channel":CH,"type":"explode"}),
            json!({"v":1,"channel":CH,"type":"focus","field":"pin"}),
            json!({"v":1,"channel":CH,"type":"focus"}),
            json!({"v":1,"channel":CH,"type":"tokenize"}),
            json!({"v":1,"channel":CH,"type":"tokenize","id":"x".repeat(65)}),
            json!({"v":"1","channel":CH,"type":"clear"}),
            json!({"v":1,"channel":CH,"type":"init","style":{"base":{"color":7}}}),
            json!({"v":1,"channel":CH,"type":"update","disabled":"yes"}),
            json!({"v":1,"channel":CH,"type":"update","appearance":{"colorPrimary":{"x":1}}}),
            json!("clear"),
            json!(null),
        ] {
            assert_eq!(parse(bad.clone()), None, "{bad}");
        }
    }

    #[test]
    fn frame_events_serialize_to_the_documented_shapes() {
        let to_json = |e: &FrameEvent| serde_json::to_value(Envelope::new(CH, e)).unwrap();
        assert_eq!(to_json(&FrameEvent::Hello), json!({"v":1,"channel":CH,"type":"hello"}));
        assert_eq!(
            to_json(&FrameEvent::Brand { brand: None }),
            json!({"v":1,"channel":CH,"type":"brand","brand":null})
        );
        assert_eq!(
            to_json(&FrameEvent::Escape { field: Field::Cvc }),
            json!({"v":1,"channel":CH,"type":"escape","field":"cvc"})
        );
        assert_eq!(
            to_json(&FrameEvent::Autofill { field: Field::Number }),
            json!({"v":1,"channel":CH,"type":"autofill","field":"number"})
        );
        assert_eq!(
            to_json(&FrameEvent::Focus { field: Field::PostalCode }),
            json!({"v":1,"channel":CH,"type":"focus","field":"postalCode"})
        );
        let state = ChangeState {
            brand: Some("visa"),
            bin: Some("42424242".into()),
            last4: Some("4242".into()),
            complete: false,
            empty: false,
            fields: FieldStatuses {
                number: FieldStatus {
                    empty: false,
                    valid: true,
                    potentially_valid: true,
                    focused: true,
                    autofilled: false,
                },
                ..FieldStatuses::default()
            },
            error: Some(ErrorInfo {
                field: Some(Field::Expiry),
                code: "expired".into(),
                message: "Your card has expired.".into(),
            }),
        };
        assert_eq!(
            to_json(&FrameEvent::Change { state }),
            json!({"v":1,"channel":CH,"type":"change","state":{
                "brand":"visa","bin":"42424242","last4":"4242","complete":false,"empty":false,
                "fields":{
                    "number":{"empty":false,"valid":true,"potentiallyValid":true,"focused":true,"autofilled":false},
                    "expiry":{"empty":false,"valid":false,"potentiallyValid":false,"focused":false,"autofilled":false},
                    "cvc":{"empty":false,"valid":false,"potentiallyValid":false,"focused":false,"autofilled":false}
                },
                "error":{"field":"expiry","code":"expired","message":"Your card has expired."}
            }})
        );
        assert_eq!(
            to_json(&FrameEvent::Tokenized {
                id: "t1".into(),
                token: "tok_1".into(),
                card: CardMeta { brand: "visa".into(), last4: "4242".into(), exp_month: 12, exp_year: 2030 },
                expires_at: "2030-01-01T00:00:00Z".into(),
            }),
            json!({"v":1,"channel":CH,"type":"tokenized","id":"t1","token":"tok_1",
                   "card":{"brand":"visa","last4":"4242","expMonth":12,"expYear":2030},
                   "expiresAt":"2030-01-01T00:00:00Z"})
        );
        assert_eq!(
            to_json(&FrameEvent::TokenizeFailed {
                id: "t2".into(),
                error: ErrorInfo { field: None, code: "processing_error".into(), message: "x".into() },
            }),
            json!({"v":1,"channel":CH,"type":"tokenizeFailed","id":"t2",
                   "error":{"code":"processing_error","message":"x"}})
        );
        assert_eq!(
            to_json(&FrameEvent::Warning {
                code: "style_rejected",
                message: "m".into(),
                properties: vec!["base.position".into()],
            }),
            json!({"v":1,"channel":CH,"type":"warning","code":"style_rejected","message":"m",
                   "properties":["base.position"]})
        );
    }

    #[test]
    fn init_fonts() {
        let src = "/v1/frame/fonts/abcdefghijklmnopabcdefghijklmnop.woff2";
        let init = parse(json!({"v":1,"channel":CH,"type":"init","fonts":[
            {"family":"Open Sans","src":src,"weight":"700","style":"italic"},
            {"family":"Inter","src":src}
        ]}));
        let Some(Command::Init(init)) = init else { panic!("init not parsed") };
        assert_eq!(init.fonts.len(), 2);
        assert!(init.fonts.iter().all(FontSource::is_valid));
        let font = |family: &str, src: &str, weight: Option<&str>, style: Option<&str>| FontSource {
            family: family.into(),
            src: src.into(),
            weight: weight.map(Into::into),
            style: style.map(Into::into),
        };
        for bad in [
            font("", src, None, None),
            font("A'b", src, None, None),
            font("A;b", src, None, None),
            font("Inter", "https://fonts.example/x.woff2", None, None),
            font("Inter", "/v1/frame/fonts/x.woff2", None, None),
            font("Inter", "/v1/frame/fonts/ABCDEFGHIJKLMNOPabcdefghijklmnop.woff2", None, None),
            font("Inter", src, Some("bold"), None),
            font("Inter", src, None, Some("oblique")),
        ] {
            assert!(!bad.is_valid(), "{bad:?}");
        }
        let none = parse(json!({"v":1,"channel":CH,"type":"init"}));
        assert!(matches!(none, Some(Command::Init(i)) if i.fonts.is_empty()));
    }
}
