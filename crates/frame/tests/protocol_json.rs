//! The protocol's names as the serde derives of `frame::protocol` define them, written to
//! `web/package/protocol.json`: option names the frame accepts, the events it posts with their
//! keys, the payload shapes. The npm package's test (`web/package/test/protocol.test.mjs`)
//! compares them with the TypeScript declarations, so the types cannot drift from the frame.
//!
//! This test fails when the file is stale; `UPDATE_PROTOCOL_JSON=1 cargo test -p frame --test
//! protocol_json` rewrites it (then update `web/loader.d.ts` until the package test passes).
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;
use std::fmt;

use frame::protocol::{
    CardMeta, ChangeState, ErrorInfo, Field, FieldOptions, FieldStatus, FieldStatuses, FieldTexts, FrameEvent,
    ParentMessage,
};
use serde::de::{DeserializeOwned, Visitor};
use serde_json::{Value, json};

/// The error that carries a struct's field names out of [`FieldNames`].
#[derive(Debug)]
struct Names(&'static [&'static str]);

impl fmt::Display for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field names")
    }
}

impl std::error::Error for Names {}

impl serde::de::Error for Names {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Names(&[])
    }
}

/// A deserializer that answers nothing: a derived `Deserialize` asks it for a struct and so
/// names every field it accepts (after `rename`), which is all this test wants.
struct FieldNames;

impl<'de> serde::Deserializer<'de> for FieldNames {
    type Error = Names;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Names> {
        Err(Names(&[]))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Names> {
        Err(Names(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

fn accepted<T: DeserializeOwned>() -> Vec<&'static str> {
    let mut names = match T::deserialize(FieldNames) {
        Err(Names(fields)) => fields.to_vec(),
        Ok(_) => Vec::new(),
    };
    names.sort_unstable();
    names
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    keys.sort_unstable();
    keys
}

/// One value of every frame event. The `match` has no wildcard: a new variant does not compile
/// until it is listed here, and so reaches protocol.json.
fn every_event() -> Vec<FrameEvent> {
    let state = full_state();
    let events = vec![
        FrameEvent::Hello,
        FrameEvent::Ready { height: 1, state: state.clone() },
        FrameEvent::Resize { height: 1 },
        FrameEvent::Change { state },
        FrameEvent::Focus { field: Field::Number },
        FrameEvent::Blur { field: Field::Number },
        FrameEvent::Submit,
        FrameEvent::Escape { field: Field::Number },
        FrameEvent::Autofill { field: Field::Number },
        FrameEvent::Brand { brand: Some("visa") },
        FrameEvent::Tokenized {
            id: "t1".into(),
            token: "tok_1".into(),
            card: card_meta(),
            expires_at: "2030-01-01T00:00:00Z".into(),
        },
        FrameEvent::TokenizeFailed { id: "t1".into(), error: error_info() },
        FrameEvent::Warning { code: "style_rejected", message: String::new(), properties: Vec::new() },
    ];
    for e in &events {
        match e {
            FrameEvent::Hello
            | FrameEvent::Ready { .. }
            | FrameEvent::Resize { .. }
            | FrameEvent::Change { .. }
            | FrameEvent::Focus { .. }
            | FrameEvent::Blur { .. }
            | FrameEvent::Submit
            | FrameEvent::Escape { .. }
            | FrameEvent::Autofill { .. }
            | FrameEvent::Brand { .. }
            | FrameEvent::Tokenized { .. }
            | FrameEvent::TokenizeFailed { .. }
            | FrameEvent::Warning { .. } => {}
        }
    }
    events
}

fn error_info() -> ErrorInfo {
    ErrorInfo { field: Some(Field::Number), code: "invalid_number".into(), message: String::new() }
}

fn card_meta() -> CardMeta {
    CardMeta { brand: "visa".into(), last4: "4242".into(), exp_month: 1, exp_year: 2030 }
}

/// A `change` state with every optional part present.
fn full_state() -> ChangeState {
    ChangeState {
        brand: Some("visa"),
        bin: Some("42424242".into()),
        last4: Some("4242".into()),
        fields: FieldStatuses {
            name: Some(FieldStatus::default()),
            postal_code: Some(FieldStatus::default()),
            ..FieldStatuses::default()
        },
        error: Some(error_info()),
        ..ChangeState::default()
    }
}

fn protocol() -> Value {
    let events: BTreeMap<String, Vec<String>> = every_event()
        .iter()
        .map(|e| {
            let v = serde_json::to_value(e).unwrap_or_default();
            let kind = v.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
            (kind, keys(&v).into_iter().filter(|k| k != "type").collect())
        })
        .collect();
    let state = serde_json::to_value(full_state()).unwrap_or_default();
    json!({
        "comment": "Generated by crates/frame/tests/protocol_json.rs from frame::protocol; checked against web/loader.d.ts by web/package/test/protocol.test.mjs.",
        "fields": Field::ALL.iter().map(|f| f.id()).collect::<Vec<_>>(),
        "parentMessage": accepted::<ParentMessage>(),
        "fieldTexts": accepted::<FieldTexts>(),
        "fieldOptions": accepted::<FieldOptions>(),
        "frameEvents": events,
        "changeState": keys(&state),
        "fieldStatuses": keys(state.get("fields").unwrap_or(&Value::Null)),
        "fieldStatus": keys(&serde_json::to_value(FieldStatus::default()).unwrap_or_default()),
        "errorInfo": keys(&serde_json::to_value(error_info()).unwrap_or_default()),
        "cardMeta": keys(&serde_json::to_value(card_meta()).unwrap_or_default()),
    })
}

#[test]
fn protocol_json_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/package/protocol.json");
    let want = serde_json::to_string_pretty(&protocol()).unwrap() + "\n";
    if std::env::var_os("UPDATE_PROTOCOL_JSON").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "web/package/protocol.json is stale: run `UPDATE_PROTOCOL_JSON=1 cargo test -p frame --test protocol_json`, \
         then make web/loader.d.ts match (web/package: node --test)\n--- want ---\n{want}"
    );
}
