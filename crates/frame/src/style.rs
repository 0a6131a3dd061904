//! Merchant styling: an allowlist of CSS properties per variant and value rejection.
//!
//! The parent page sends `style: { base: { color: "#333", fontSize: "16px" }, invalid: {...} }`.
//! Only allowlisted properties survive, and any value that could escape a declaration or
//! load a resource (`url(`, `@`, `;`, braces, angle brackets, backslashes, control
//! characters) is dropped. The DOM layer applies the survivors through the CSSOM
//! (`style.setProperty`) on the frame's own elements: no CSS text is ever parsed from a
//! merchant string, so the sanitiser is defence in depth, not the only wall.

#[allow(unused_imports)]
use crate::prelude::*;

use core::fmt;
use core::marker::PhantomData;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

/// The entries of a JSON object, in order. A plain `Vec` instead of a map type: the frame
/// only iterates them, and map code would cost WASM size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pairs<V>(pub Vec<(String, V)>);

impl<V> Default for Pairs<V> {
    fn default() -> Pairs<V> {
        Pairs(Vec::new())
    }
}

impl<V> Pairs<V> {
    /// The value of the first entry named `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Pairs<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Pairs<V>, D::Error> {
        struct PairsVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for PairsVisitor<V> {
            type Value = Pairs<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, V>()? {
                    out.push(entry);
                }
                Ok(Pairs(out))
            }
        }
        deserializer.deserialize_map(PairsVisitor(PhantomData))
    }
}

/// What the parent sends: variant name → property → value.
pub type RawStyle = Pairs<Pairs<String>>;

/// The state of a field a set of declarations applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Always applied.
    Base,
    /// The field is empty.
    Empty,
    /// The field is complete and valid.
    Complete,
    /// The browser's autofill wrote the value (until the cardholder edits it).
    Autofilled,
    /// The field holds an invalid value.
    Invalid,
    /// The pointer is over the field.
    Hover,
    /// The field has focus.
    Focus,
    /// The element is disabled (`disabled: true`).
    Disabled,
    /// The field's placeholder text (`::placeholder`).
    Placeholder,
}

impl Variant {
    /// Every variant, in the order they are layered (later wins); the bit of a variant in a
    /// field's state set is its position here.
    pub const ALL: [Variant; 9] = [
        Variant::Base,
        Variant::Empty,
        Variant::Complete,
        Variant::Autofilled,
        Variant::Invalid,
        Variant::Hover,
        Variant::Focus,
        Variant::Disabled,
        Variant::Placeholder,
    ];

    fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The name merchants use (`style.hover`).
    pub fn name(self) -> &'static str {
        match self {
            Variant::Base => "base",
            Variant::Empty => "empty",
            Variant::Complete => "complete",
            Variant::Autofilled => "autofilled",
            Variant::Invalid => "invalid",
            Variant::Hover => "hover",
            Variant::Focus => "focus",
            Variant::Disabled => "disabled",
            Variant::Placeholder => "placeholder",
        }
    }

    /// Position in [`Variant::ALL`], also the variant's bit in a field's state set.
    pub fn index(self) -> usize {
        match self {
            Variant::Base => 0,
            Variant::Empty => 1,
            Variant::Complete => 2,
            Variant::Autofilled => 3,
            Variant::Invalid => 4,
            Variant::Hover => 5,
            Variant::Focus => 6,
            Variant::Disabled => 7,
            Variant::Placeholder => 8,
        }
    }

    /// The variant's bit in a field's state set.
    pub fn bit(self) -> u16 {
        1 << self.index()
    }
}

/// Properties any variant may set (kebab-case, as `setProperty` wants them): text, and the
/// input box itself (border, radius, background, shadow, focus ring, height, padding,
/// transition). Nothing that moves the input out of its box (`position`, `margin`,
/// `transform`, `z-index`), hides it (`display`, `visibility`, `clip-path`) or loads
/// anything (`background-image`, `content`, `cursor` with a URL): `background` and the
/// others still pass [`value_is_safe`], which refuses `url(`, `image(` and the like.
pub const ALLOWED: &[&str] = &[
    "background",
    "background-color",
    "border",
    "border-bottom",
    "border-color",
    "border-left",
    "border-radius",
    "border-right",
    "border-style",
    "border-top",
    "border-width",
    "box-shadow",
    "caret-color",
    "color",
    "font-family",
    "font-size",
    "font-style",
    "font-variant",
    "font-weight",
    "height",
    "letter-spacing",
    "line-height",
    "min-height",
    "opacity",
    "outline",
    "outline-color",
    "outline-offset",
    "outline-style",
    "outline-width",
    "padding",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "padding-top",
    "text-align",
    "text-decoration",
    "text-shadow",
    "text-transform",
    "transition",
    "-webkit-font-smoothing",
    "-moz-osx-font-smoothing",
];

/// The subset that means something on `::placeholder`.
const PLACEHOLDER_ALLOWED: &[&str] =
    &["color", "font-family", "font-size", "font-style", "font-weight", "letter-spacing", "opacity", "text-transform"];

/// Properties whose bare numbers mean pixels (`fontSize: 16` → `16px`). Others that take a
/// number (`line-height`, `opacity`, `font-weight`) keep it unitless, as CSS reads it.
const PX_PROPERTIES: &[&str] = &[
    "border-radius",
    "border-width",
    "font-size",
    "height",
    "letter-spacing",
    "min-height",
    "outline-offset",
    "outline-width",
    "padding",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "padding-top",
];

/// Longest value accepted; real declarations are far shorter.
const MAX_VALUE_LEN: usize = 200;

/// One accepted declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declaration {
    /// An entry of [`ALLOWED`].
    pub property: &'static str,
    /// A value that passed [`value_is_safe`].
    pub value: String,
}

/// Sanitised styling, ready for the CSSOM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Style {
    variants: [Vec<Declaration>; 9],
}

impl Style {
    /// Keeps the allowlisted, safe declarations of `raw`; returns them with the names of
    /// what was dropped (`"variant.property"`), for the frame to report without values.
    pub fn sanitize(raw: &RawStyle) -> (Style, Vec<String>) {
        let mut style = Style::default();
        let mut rejected = Vec::new();
        for (variant_name, declarations) in &raw.0 {
            let Some(variant) = Variant::from_name(variant_name) else {
                rejected.push(variant_name.clone());
                continue;
            };
            let allowed = if variant == Variant::Placeholder { PLACEHOLDER_ALLOWED } else { ALLOWED };
            for (name, value) in &declarations.0 {
                let property = normalize_property(name).and_then(|p| allowed.iter().copied().find(|a| *a == p));
                let kept = property.filter(|_| value_is_safe(value)).and_then(|property| {
                    let mut value = value.trim().to_owned();
                    if PX_PROPERTIES.contains(&property) && is_bare_number(&value) {
                        value.push_str("px");
                    }
                    // Checked again: the unit must not take a value past the length limit
                    // (the fuzz target frame_style found a 199-digit number kept as 201 bytes).
                    value_is_safe(&value).then_some(Declaration { property, value })
                });
                match (kept, style.variants.get_mut(variant.index())) {
                    (Some(declaration), Some(list)) => list.push(declaration),
                    _ => rejected.push([variant_name.as_str(), ".", name.as_str()].concat()),
                }
            }
        }
        (style, rejected)
    }

    /// The declarations of one variant.
    pub fn get(&self, variant: Variant) -> &[Declaration] {
        self.variants.get(variant.index()).map(Vec::as_slice).unwrap_or_default()
    }

    /// Drops the declarations `keep` refuses (the DOM layer asks the browser's CSS parser) and
    /// returns their names as `"variant.property"`.
    pub fn retain(&mut self, mut keep: impl FnMut(&Declaration) -> bool) -> Vec<String> {
        let mut dropped = Vec::new();
        for (variant, list) in Variant::ALL.iter().zip(self.variants.iter_mut()) {
            list.retain(|d| {
                let ok = keep(d);
                if !ok {
                    dropped.push([variant.name(), ".", d.property].concat());
                }
                ok
            });
        }
        dropped
    }

    /// True when no variant has a declaration.
    pub fn is_empty(&self) -> bool {
        self.variants.iter().all(Vec::is_empty)
    }
}

/// One theme variable of `appearance.variables`: its name, the CSS custom property the
/// frame's stylesheet reads it from, and a real property taking the same kind of value (the
/// DOM layer asks the browser's CSS parser about the value with that property, because a
/// custom property accepts anything).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThemeVariable {
    /// The merchant's name (`colorPrimary`).
    pub name: &'static str,
    /// The custom property in `static/frame/frame.css` (`--af-primary`).
    pub custom_property: &'static str,
    /// The property the value is checked against (`color`).
    pub checked_as: &'static str,
}

const fn var(name: &'static str, custom_property: &'static str, checked_as: &'static str) -> ThemeVariable {
    ThemeVariable { name, custom_property, checked_as }
}

/// The theme variables, for merchants who would rather not write CSS per variant.
pub const THEME_VARIABLES: &[ThemeVariable] = &[
    var("colorPrimary", "--af-primary", "color"),
    var("colorText", "--af-text", "color"),
    var("colorDanger", "--af-danger", "color"),
    var("colorBackground", "--af-bg", "background-color"),
    var("colorBorder", "--af-border", "border-color"),
    var("colorPlaceholder", "--af-placeholder", "color"),
    var("borderRadius", "--af-radius", "border-radius"),
    var("spacingUnit", "--af-space", "padding"),
    var("fontSizeBase", "--af-font-size", "font-size"),
    var("fontFamily", "--af-font", "font-family"),
];

/// One accepted theme variable value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThemeValue {
    /// An entry of [`THEME_VARIABLES`].
    pub variable: ThemeVariable,
    /// A value that passed [`value_is_safe`] (bare numbers get `px` where the property needs a unit).
    pub value: String,
}

/// Keeps the known, safe entries of `appearance.variables`; returns them with the names of
/// what was dropped (`"appearance.variables.name"`).
pub fn sanitize_appearance(raw: &Pairs<String>) -> (Vec<ThemeValue>, Vec<String>) {
    let mut kept = Vec::new();
    let mut rejected = Vec::new();
    for (name, value) in &raw.0 {
        match THEME_VARIABLES.iter().find(|v| v.name == name) {
            Some(variable) if value_is_safe(value) => {
                let mut value = value.trim().to_owned();
                if PX_PROPERTIES.contains(&variable.checked_as) && is_bare_number(&value) {
                    value.push_str("px");
                }
                kept.push(ThemeValue { variable: *variable, value });
            }
            _ => rejected.push(["appearance.variables.", name.as_str()].concat()),
        }
    }
    (kept, rejected)
}

/// `fontSize` / `font-size` / `WebkitFontSmoothing` → kebab-case; `None` for names with
/// characters a property name never has.
pub fn normalize_property(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 40 {
        return None;
    }
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        match c {
            'a'..='z' | '-' => out.push(c),
            'A'..='Z' => {
                // Also right for a leading capital: a vendor prefix (WebkitX → -webkit-x).
                out.push('-');
                out.push(c.to_ascii_lowercase());
            }
            _ => return None,
        }
    }
    Some(out)
}

/// `16`, `16.5`, `-1`, `.5`: what the loader makes of a JS number.
fn is_bare_number(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    !digits.is_empty()
        && digits.bytes().any(|b| b.is_ascii_digit())
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
}

/// False for any value that could break out of a declaration or fetch something.
pub fn value_is_safe(value: &str) -> bool {
    if value.chars().any(char::is_control) {
        return false;
    }
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_VALUE_LEN {
        return false;
    }
    if value.chars().any(|c| matches!(c, '@' | ';' | '{' | '}' | '<' | '>' | '\\')) {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    // A byte-window search rather than `str::contains(&str)`: the latter links the two-way
    // searcher and its char-boundary panic formatting into the WASM.
    let lower = lower.as_bytes();
    ![&b"url("[..], b"expression(", b"image(", b"image-set(", b"src(", b"/*"]
        .iter()
        .any(|bad| lower.windows(bad.len()).any(|w| w == *bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(entries: &[(&str, &str, &str)]) -> RawStyle {
        let mut raw = RawStyle::default();
        for (variant, property, value) in entries {
            let index = match raw.0.iter().position(|(v, _)| v == variant) {
                Some(i) => i,
                None => {
                    raw.0.push(((*variant).to_owned(), Pairs::default()));
                    raw.0.len() - 1
                }
            };
            raw.0[index].1.0.push(((*property).to_owned(), (*value).to_owned()));
        }
        raw
    }

    #[test]
    fn property_names_normalize() {
        let cases = [
            ("fontSize", Some("font-size")),
            ("font-size", Some("font-size")),
            ("color", Some("color")),
            ("WebkitFontSmoothing", Some("-webkit-font-smoothing")),
            ("MozOsxFontSmoothing", Some("-moz-osx-font-smoothing")),
            ("font size", None),
            ("color:red", None),
            ("", None),
        ];
        for (name, want) in cases {
            assert_eq!(normalize_property(name).as_deref(), want, "{name}");
        }
    }

    #[test]
    fn dangerous_values_are_rejected() {
        let bad = [
            "url(https://evil.example/x.png)",
            "URL(x)",
            "red; background: blue",
            "red}body{color:blue",
            "@import 'x'",
            "</style><script>",
            "\\75 rl(x)",
            "expression(alert(1))",
            "image-set('x.png' 1x)",
            "red\n",
            "",
            "   ",
        ];
        for value in bad {
            assert!(!value_is_safe(value), "{value:?}");
        }
        let long = "1".repeat(MAX_VALUE_LEN + 1);
        assert!(!value_is_safe(&long));
        // A bare number at the limit gains "px" and would pass it: dropped, not kept too long.
        let at_limit = "1".repeat(MAX_VALUE_LEN);
        let (style, rejected) = Style::sanitize(&raw(&[("base", "padding", &at_limit), ("base", "padding-top", "4")]));
        assert_eq!(rejected, vec!["base.padding".to_owned()]);
        let kept: Vec<_> = style.get(Variant::Base).iter().map(|d| d.value.as_str()).collect();
        assert_eq!(kept, vec!["4px"]);
        let good = [
            "#32325d",
            "rgba(0, 0, 0, 0.5)",
            "16px",
            "\"Helvetica Neue\", Helvetica, sans-serif",
            "0.025em",
            "1px 1px 0 #fff",
            "uppercase",
        ];
        for value in good {
            assert!(value_is_safe(value), "{value:?}");
        }
    }

    #[test]
    fn sanitize_keeps_allowlisted_and_reports_the_rest() {
        let raw = raw(&[
            ("base", "color", "#32325d"),
            ("base", "fontSize", "16px"),
            ("base", "position", "absolute"),
            ("base", "backgroundImage", "url(x)"),
            ("invalid", "color", "red; x: y"),
            ("invalid", "color", "#fa755a"),
            ("placeholder", "color", "#aab7c4"),
            ("placeholder", "padding", "4px"),
            ("active", "color", "red"),
        ]);
        let (style, mut rejected) = Style::sanitize(&raw);
        rejected.sort();
        assert_eq!(
            style.get(Variant::Base),
            &[
                Declaration { property: "color", value: "#32325d".into() },
                Declaration { property: "font-size", value: "16px".into() },
            ]
        );
        assert_eq!(style.get(Variant::Invalid), &[Declaration { property: "color", value: "#fa755a".into() }]);
        assert_eq!(style.get(Variant::Placeholder).len(), 1);
        assert!(style.get(Variant::Focus).is_empty());
        assert_eq!(
            rejected,
            ["active", "base.backgroundImage", "base.position", "invalid.color", "placeholder.padding"]
        );
        assert!(!style.is_empty());
        assert!(Style::default().is_empty());
    }

    #[test]
    fn numbers_mean_pixels_where_css_needs_a_unit() {
        let raw = raw(&[
            ("base", "fontSize", "16"),
            ("base", "letterSpacing", "0.5"),
            ("base", "paddingLeft", "-2"),
            ("base", "lineHeight", "1.6"),
            ("base", "opacity", "0.8"),
            ("base", "fontWeight", "600"),
            ("focus", "fontSize", "18px"),
            ("focus", "padding", "1.2.3"),
        ]);
        let (style, rejected) = Style::sanitize(&raw);
        assert!(rejected.is_empty());
        let values: Vec<(&str, &str)> =
            style.get(Variant::Base).iter().map(|d| (d.property, d.value.as_str())).collect();
        assert_eq!(
            values,
            [
                ("font-size", "16px"),
                ("letter-spacing", "0.5px"),
                ("padding-left", "-2px"),
                ("line-height", "1.6"),
                ("opacity", "0.8"),
                ("font-weight", "600"),
            ]
        );
        let focus: Vec<&str> = style.get(Variant::Focus).iter().map(|d| d.value.as_str()).collect();
        assert_eq!(focus, ["18px", "1.2.3"], "only bare numbers get a unit");
    }

    #[test]
    fn box_properties_and_every_variant_are_themable() {
        let raw = raw(&[
            ("base", "border", "1px solid #ccc"),
            ("base", "borderRadius", "8"),
            ("base", "boxShadow", "0 1px 2px rgba(0,0,0,.1)"),
            ("base", "height", "44"),
            ("base", "transition", "border-color .2s"),
            ("base", "background", "linear-gradient(#fff, #eee)"),
            ("hover", "borderColor", "#999"),
            ("focus", "outline", "2px solid #0570de"),
            ("focus", "outlineOffset", "2"),
            ("disabled", "backgroundColor", "#f4f4f4"),
            ("autofilled", "boxShadow", "inset 0 0 0 40px #fffbe6"),
            ("invalid", "borderWidth", "2"),
            ("base", "background", "url(https://evil.example/x.png)"),
            ("base", "backgroundImage", "linear-gradient(red, blue)"),
            ("base", "margin", "0"),
            ("base", "zIndex", "9"),
            ("placeholder", "border", "1px solid red"),
            ("active", "color", "red"),
        ]);
        let (style, mut rejected) = Style::sanitize(&raw);
        rejected.sort();
        assert_eq!(
            rejected,
            ["active", "base.background", "base.backgroundImage", "base.margin", "base.zIndex", "placeholder.border"]
        );
        let base: Vec<(&str, &str)> = style.get(Variant::Base).iter().map(|d| (d.property, d.value.as_str())).collect();
        assert_eq!(
            base,
            [
                ("border", "1px solid #ccc"),
                ("border-radius", "8px"),
                ("box-shadow", "0 1px 2px rgba(0,0,0,.1)"),
                ("height", "44px"),
                ("transition", "border-color .2s"),
                ("background", "linear-gradient(#fff, #eee)"),
            ]
        );
        for (variant, property, value) in [
            (Variant::Hover, "border-color", "#999"),
            (Variant::Focus, "outline", "2px solid #0570de"),
            (Variant::Disabled, "background-color", "#f4f4f4"),
            (Variant::Autofilled, "box-shadow", "inset 0 0 0 40px #fffbe6"),
            (Variant::Invalid, "border-width", "2px"),
        ] {
            assert_eq!(style.get(variant).first(), Some(&Declaration { property, value: value.into() }), "{variant:?}");
        }
        assert_eq!(style.get(Variant::Focus).get(1).map(|d| d.value.as_str()), Some("2px"));
    }

    #[test]
    fn variants_have_distinct_bits_in_layering_order() {
        for (i, v) in Variant::ALL.into_iter().enumerate() {
            assert_eq!(v.index(), i);
            assert_eq!(Variant::from_name(v.name()), Some(v));
        }
        assert_eq!(Variant::from_name("Hover"), None);
    }

    #[test]
    fn appearance_variables_are_checked_and_reported() {
        let raw = Pairs(
            [
                ("colorPrimary", "#635bff"),
                ("borderRadius", "4"),
                ("spacingUnit", "3px"),
                ("fontFamily", "Georgia, serif"),
                ("colorText", "red; x: y"),
                ("colorSecondary", "#000"),
                ("fontSizeBase", "url(x)"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        );
        let (kept, rejected) = sanitize_appearance(&raw);
        let kept: Vec<(&str, &str)> = kept.iter().map(|t| (t.variable.custom_property, t.value.as_str())).collect();
        assert_eq!(
            kept,
            [
                ("--af-primary", "#635bff"),
                ("--af-radius", "4px"),
                ("--af-space", "3px"),
                ("--af-font", "Georgia, serif")
            ]
        );
        assert_eq!(
            rejected,
            [
                "appearance.variables.colorText",
                "appearance.variables.colorSecondary",
                "appearance.variables.fontSizeBase"
            ]
        );
        for v in THEME_VARIABLES {
            assert!(v.custom_property.starts_with("--af-") && ALLOWED.contains(&v.checked_as), "{v:?}");
        }
    }

    #[test]
    fn retain_reports_what_the_browser_refused() {
        let (mut style, _) = Style::sanitize(&raw(&[("base", "color", "#333"), ("invalid", "fontSize", "huge")]));
        let dropped = style.retain(|d| d.value != "huge");
        assert_eq!(dropped, ["invalid.font-size"]);
        assert!(style.get(Variant::Invalid).is_empty());
        assert_eq!(style.get(Variant::Base).len(), 1);
    }
}
