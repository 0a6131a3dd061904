//! The frame's URL-fragment parser (`frame::protocol::FrameParams::parse`): whatever the
//! fragment, what it accepts is a valid channel, a plain origin, a safe locale and, for a split
//! field frame, a field and a group as valid as a channel.
//!
//! Input: UTF-8 text, the fragment.

use frame::protocol::{FrameParams, channel_is_valid, origin_is_valid};

pub fn run(data: &[u8]) {
    let Ok(fragment) = core::str::from_utf8(data) else { return };
    let Some(p) = FrameParams::parse(fragment) else { return };
    assert!(channel_is_valid(&p.channel), "accepted channel {:?}", p.channel);
    assert!(origin_is_valid(&p.parent_origin), "accepted origin {:?}", p.parent_origin);
    if let Some(locale) = &p.locale {
        assert!(!locale.is_empty() && locale.len() <= 35);
        assert!(locale.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
    if let Some(split) = &p.split {
        assert!(channel_is_valid(&split.group), "accepted group {:?}", split.group);
        assert!(fragment.contains(split.field.id()), "a field the fragment does not name");
    }
}
