//! Parent → frame messages (`frame::protocol::ParentMessage` → `Command`) and the style
//! sanitiser they feed.
//!
//! Input: JSON text. In the browser the message arrives as a JS object and is read by the
//! frame's own `jsread` module (hand-written `Reflect` reads with the same shape rules), which
//! exists only for wasm32 and is private; here the protocol's serde types are driven by
//! `serde_json`, which exercises every `Deserialize` impl of the protocol (including the
//! hand-written `Pairs`) and all of `into_command`.

use frame::protocol::{Command, Field, ParentMessage, VERSION};
use frame::style::{ALLOWED, Pairs, RawStyle, Style, THEME_VARIABLES, Variant, sanitize_appearance, value_is_safe};

const CHANNEL: &str = "fuzzchannel0123456789";

pub fn run(data: &[u8]) {
    let Ok(message) = serde_json::from_slice::<ParentMessage>(data) else { return };
    let (v, channel) = (message.v, message.channel.clone());
    // A message for another channel or version is ignored.
    let Ok(copy) = serde_json::from_slice::<ParentMessage>(data) else { unreachable!("decoded once") };
    if v != VERSION || channel != CHANNEL {
        assert!(copy.into_command(CHANNEL).is_none(), "accepted a message for another channel or version");
    }
    let Some(command) = message.into_command(&channel) else { return };
    assert_eq!(v, VERSION);
    match command {
        Command::Tokenize { id, .. } => assert!(!id.is_empty() && id.len() <= 64, "tokenize id of {} bytes", id.len()),
        Command::Init(init) => {
            for field in Field::ALL {
                if let Some(text) = init.placeholders.get(field) {
                    assert!(text.chars().count() <= 100);
                }
            }
            check_raw_style(&init.style);
            check_appearance(&init.appearance);
        }
        Command::Update(update) => {
            if let Some(placeholders) = &update.placeholders {
                for field in Field::ALL {
                    if let Some(text) = placeholders.get(field) {
                        assert!(text.chars().count() <= 100);
                    }
                }
            }
            if let Some(style) = &update.style {
                check_raw_style(style);
            }
            if let Some(appearance) = &update.appearance {
                check_appearance(appearance);
            }
        }
        Command::Focus(_) | Command::Clear(_) | Command::Blur => {}
    }
}

fn check_raw_style(raw: &RawStyle) {
    let (style, rejected) = Style::sanitize(raw);
    check_style(&style);
    let kept: usize = Variant::ALL.iter().map(|&v| style.get(v).len()).sum();
    let given: usize = raw.0.iter().map(|(_, d)| d.0.len()).sum();
    assert!(kept <= given && rejected.len() <= given + raw.0.len());
}

/// Every kept theme variable is a known one with a safe value; everything else is reported.
fn check_appearance(raw: &Pairs<String>) {
    let (kept, rejected) = sanitize_appearance(raw);
    assert_eq!(kept.len() + rejected.len(), raw.0.len());
    for t in &kept {
        assert!(THEME_VARIABLES.contains(&t.variable), "unknown theme variable kept");
        assert!(value_is_safe(&t.value), "unsafe value kept for {}", t.variable.name);
        crate::frame_style::assert_inert(&t.value);
    }
}

/// Every surviving declaration is allowlisted and safe.
pub fn check_style(style: &Style) {
    for variant in Variant::ALL {
        for d in style.get(variant) {
            assert!(ALLOWED.contains(&d.property), "property {:?} not allowlisted", d.property);
            assert!(value_is_safe(&d.value), "unsafe value kept for {}", d.property);
            assert_eq!(d.value, d.value.trim());
            crate::frame_style::assert_inert(&d.value);
        }
    }
}
