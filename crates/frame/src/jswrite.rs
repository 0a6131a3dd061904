//! Builds the frame → parent messages as JS objects, by hand with `Reflect`.
//!
//! Why not serde: serde-wasm-bindgen's serializer and the `Serialize` code serde derives cost
//! several KB of WASM (BENCHMARKS.md). The protocol types keep their serde derives: the native
//! tests pin the documented JSON shapes with them, and a DOM test checks that these objects
//! stringify to exactly the same JSON (same keys, same order) for every kind of message.

#[allow(unused_imports)]
use crate::prelude::*;

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::JsValue;

use crate::protocol::{ChangeState, ErrorInfo, FieldStatus, FrameEvent, VERSION};

fn set(object: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

fn text(value: &str) -> JsValue {
    JsValue::from_str(value)
}

fn opt_text(value: Option<&str>) -> JsValue {
    value.map_or(JsValue::NULL, JsValue::from_str)
}

/// `{v, channel, type, ...fields}`: the envelope and the event, as `Envelope` serialises.
pub fn message(channel: &str, event: &FrameEvent) -> JsValue {
    let o = Object::new();
    set(&o, "v", &JsValue::from(VERSION));
    set(&o, "channel", &text(channel));
    let kind = match event {
        FrameEvent::Hello => "hello",
        FrameEvent::Ready { .. } => "ready",
        FrameEvent::Resize { .. } => "resize",
        FrameEvent::Change { .. } => "change",
        FrameEvent::Focus { .. } => "focus",
        FrameEvent::Blur { .. } => "blur",
        FrameEvent::Submit => "submit",
        FrameEvent::Escape { .. } => "escape",
        FrameEvent::Autofill { .. } => "autofill",
        FrameEvent::Brand { .. } => "brand",
        FrameEvent::Tokenized { .. } => "tokenized",
        FrameEvent::TokenizeFailed { .. } => "tokenizeFailed",
        FrameEvent::Warning { .. } => "warning",
    };
    set(&o, "type", &text(kind));
    match event {
        FrameEvent::Hello | FrameEvent::Submit => {}
        FrameEvent::Ready { height, state } => {
            set(&o, "height", &JsValue::from(*height));
            set(&o, "state", &change_state(state));
        }
        FrameEvent::Resize { height } => set(&o, "height", &JsValue::from(*height)),
        FrameEvent::Change { state } => set(&o, "state", &change_state(state)),
        FrameEvent::Focus { field }
        | FrameEvent::Blur { field }
        | FrameEvent::Escape { field }
        | FrameEvent::Autofill { field } => set(&o, "field", &text(field.id())),
        FrameEvent::Brand { brand } => set(&o, "brand", &opt_text(*brand)),
        FrameEvent::Tokenized { id, token, card, expires_at } => {
            set(&o, "id", &text(id));
            set(&o, "token", &text(token));
            let c = Object::new();
            set(&c, "brand", &text(&card.brand));
            set(&c, "last4", &text(&card.last4));
            set(&c, "expMonth", &JsValue::from(card.exp_month));
            set(&c, "expYear", &JsValue::from(card.exp_year));
            set(&o, "card", &c);
            set(&o, "expiresAt", &text(expires_at));
        }
        FrameEvent::TokenizeFailed { id, error } => {
            set(&o, "id", &text(id));
            set(&o, "error", &error_info(error));
        }
        FrameEvent::Warning { code, message, properties } => {
            set(&o, "code", &text(code));
            set(&o, "message", &text(message));
            let list = Array::new();
            for p in properties {
                list.push(&text(p));
            }
            set(&o, "properties", &list);
        }
    }
    o.into()
}

fn error_info(error: &ErrorInfo) -> JsValue {
    let o = Object::new();
    if let Some(field) = error.field {
        set(&o, "field", &text(field.id()));
    }
    set(&o, "code", &text(&error.code));
    set(&o, "message", &text(&error.message));
    o.into()
}

fn field_status(status: &FieldStatus) -> JsValue {
    let o = Object::new();
    set(&o, "empty", &JsValue::from_bool(status.empty));
    set(&o, "valid", &JsValue::from_bool(status.valid));
    set(&o, "potentiallyValid", &JsValue::from_bool(status.potentially_valid));
    set(&o, "focused", &JsValue::from_bool(status.focused));
    set(&o, "autofilled", &JsValue::from_bool(status.autofilled));
    o.into()
}

fn change_state(state: &ChangeState) -> JsValue {
    let o = Object::new();
    set(&o, "brand", &opt_text(state.brand));
    set(&o, "bin", &opt_text(state.bin.as_deref()));
    set(&o, "last4", &opt_text(state.last4.as_deref()));
    set(&o, "complete", &JsValue::from_bool(state.complete));
    set(&o, "empty", &JsValue::from_bool(state.empty));
    let fields = Object::new();
    set(&fields, "number", &field_status(&state.fields.number));
    set(&fields, "expiry", &field_status(&state.fields.expiry));
    set(&fields, "cvc", &field_status(&state.fields.cvc));
    if let Some(name) = &state.fields.name {
        set(&fields, "name", &field_status(name));
    }
    if let Some(postal_code) = &state.fields.postal_code {
        set(&fields, "postalCode", &field_status(postal_code));
    }
    set(&o, "fields", &fields);
    set(&o, "error", &state.error.as_ref().map_or(JsValue::NULL, error_info));
    o.into()
}

/// A message to the other field frames of the same split card: `{t, n?, f?, x?}` (type, nonce,
/// field, text; [`crate::split::Peer::parts`]).
pub(crate) fn peer(peer: &crate::split::Peer) -> JsValue {
    let (kind, nonce, field, value) = peer.parts();
    let o = Object::new();
    set(&o, "t", &JsValue::from(kind));
    if let Some(nonce) = nonce {
        set(&o, "n", &text(nonce));
    }
    if let Some(field) = field {
        set(&o, "f", &text(field.id()));
    }
    if let Some(value) = value {
        set(&o, "x", &text(value));
    }
    o.into()
}
