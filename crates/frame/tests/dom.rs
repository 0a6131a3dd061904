//! Browser tests of the DOM layer (wasm-bindgen-test in headless Chromium):
//!
//! ```sh
//! CHROMEDRIVER=/usr/bin/chromedriver CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!   cargo test -p frame --target wasm32-unknown-unknown --test dom
//! ```
//!
//! Each test puts the frame's real markup (from `static/frame/index.html`) into the test
//! page, mounts the frame with the page itself as "parent" (a top-level window is its own
//! `parent`), drives it with the events a browser sends, and checks the DOM and the messages.
#![cfg(target_arch = "wasm32")]
// Test helpers: a failed unwrap is a failed test with a clear location (as clippy.toml allows in #[test]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::cell::RefCell;
use std::rc::Rc;

use frame::protocol::FrameParams;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_sys::{
    DataTransfer, Document, Event, EventInit, HtmlInputElement, InputEvent, InputEventInit, KeyboardEvent,
    KeyboardEventInit, MessageEvent,
};

wasm_bindgen_test_configure!(run_in_browser);

const CHANNEL: &str = "testchannel-0123456789";

thread_local! {
    /// A channel per fixture: a frame left behind by a failed test (panics abort, so no
    /// destructor runs) then cannot react to the next test's messages.
    static CHANNELS: RefCell<u32> = const { RefCell::new(0) };
}

fn channel() -> String {
    CHANNELS.with(|c| format!("{CHANNEL}-{}", c.borrow()))
}

fn next_channel() {
    CHANNELS.with(|c| *c.borrow_mut() += 1);
}
const PAGE: &str = include_str!("../../../static/frame/index.html");

fn document() -> Document {
    web_sys::window().unwrap().document().unwrap()
}

fn origin() -> String {
    web_sys::window().unwrap().location().origin().unwrap()
}

/// The frame's markup (the form and the icon sprite) placed into the test page's body.
fn markup() -> String {
    let body = PAGE.split("<body>").nth(1).unwrap();
    body.split("</body>").next().unwrap().to_owned()
}

/// Recorded messages posted to this window.
struct Recorder {
    messages: Rc<RefCell<Vec<JsValue>>>,
    _listener: Closure<dyn FnMut(MessageEvent)>,
}

impl Recorder {
    fn new() -> Recorder {
        let messages = Rc::new(RefCell::new(Vec::new()));
        let sink = messages.clone();
        let listener = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            // Only what this fixture's frame sent (not our own commands, not old frames).
            let data = e.data();
            let get = |k: &str| js_sys::Reflect::get(&data, &k.into()).ok().and_then(|v| v.as_string());
            let from_test = js_sys::Reflect::get(&data, &"fromTest".into()).ok().is_some_and(|v| v.is_truthy());
            if get("channel") == Some(channel()) && !from_test {
                sink.borrow_mut().push(data);
                // This page is the frame's own "parent": without this, the frame would also
                // receive what it posts, and take its `focus`/`blur` events for commands. (This
                // listener is added before the frame's, so it runs first.)
                e.stop_immediate_propagation();
            }
        });
        web_sys::window()
            .unwrap()
            .add_event_listener_with_callback("message", listener.as_ref().unchecked_ref())
            .unwrap();
        Recorder { messages, _listener: listener }
    }

    fn json(&self) -> Vec<String> {
        self.messages.borrow().iter().map(|m| String::from(js_sys::JSON::stringify(m).unwrap())).collect()
    }

    fn types(&self) -> Vec<String> {
        self.messages
            .borrow()
            .iter()
            .filter_map(|m| js_sys::Reflect::get(m, &"type".into()).ok()?.as_string())
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = web_sys::window()
            .unwrap()
            .remove_event_listener_with_callback("message", self._listener.as_ref().unchecked_ref());
    }
}

struct Fixture {
    mounted: Option<frame::Mounted>,
    recorder: Recorder,
}

impl Fixture {
    async fn new(locale: Option<&str>) -> Fixture {
        Fixture::with(locale, None).await
    }

    /// A frame of a split card (`split`: its field and group), or the single frame.
    async fn with(locale: Option<&str>, split: Option<frame::split::SplitParams>) -> Fixture {
        // A container of its own: the test runner reports results through the body.
        while let Some(old) = document().get_element_by_id("frame-root") {
            old.remove();
        }
        next_channel();
        let root = document().create_element("div").unwrap();
        root.set_id("frame-root");
        root.set_inner_html(&markup());
        document().body().unwrap().append_child(&root).unwrap();
        let recorder = Recorder::new();
        let params = FrameParams { channel: channel(), parent_origin: origin(), locale: locale.map(Into::into), split };
        let mounted = frame::mount(params, "pk_test_dom".into()).map_err(|e| format!("{e:?}")).unwrap();
        let fixture = Fixture { mounted: Some(mounted), recorder };
        tick().await;
        fixture
    }

    async fn init(&self, extra: &str) {
        let json = format!(r#"{{"v":1,"channel":"{CHANNEL}","type":"init"{extra}}}"#);
        post(&json).await;
    }

    async fn update(&self, fields: &str) {
        let json = format!(r#"{{"v":1,"channel":"{CHANNEL}","type":"update"{fields}}}"#);
        post(&json).await;
    }

    /// The messages of one type the frame posted, as JSON text.
    fn posted(&self, kind: &str) -> Vec<String> {
        let needle = format!(r#""type":"{kind}""#);
        self.recorder.json().into_iter().filter(|m| m.contains(&needle)).collect()
    }

    fn state(&self) -> frame::protocol::ChangeState {
        self.mounted.as_ref().unwrap().state()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.mounted.take();
        if let Some(root) = document().get_element_by_id("frame-root") {
            root.remove();
        }
    }
}

/// Posts a command to the frame, marked `fromTest` (an extra key the frame ignores) so that the
/// recorder tells it from the frame's own messages.
async fn post(json: &str) {
    let json = json.replace("testchannel-0123456789", &channel());
    let value = js_sys::JSON::parse(&json).unwrap();
    if value.is_object() {
        js_sys::Reflect::set(&value, &"fromTest".into(), &JsValue::TRUE).unwrap();
    }
    web_sys::window().unwrap().post_message(&value, &origin()).unwrap();
    tick().await;
}

/// Lets queued messages and tasks run.
async fn tick() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 30).unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

/// Hands the frame the German table as if it had fetched it from the vault (no vault here).
fn preload_german() {
    let table = js_sys::JSON::parse(include_str!("../../../static/frame/locale-de.json")).unwrap();
    assert!(frame::register_locale_table(table, "de"));
}

fn input(id: &str) -> HtmlInputElement {
    document().get_element_by_id(id).unwrap().dyn_into().unwrap()
}

fn caret(el: &HtmlInputElement) -> u32 {
    el.selection_start().unwrap().unwrap()
}

/// Sends a `beforeinput` like a browser does for a key press or paste; returns whether the
/// frame cancelled the default action.
fn before_input(el: &HtmlInputElement, input_type: &str, data: Option<&str>, paste: Option<&str>) -> bool {
    let init = InputEventInit::new();
    init.set_input_type(input_type);
    init.set_cancelable(true);
    init.set_bubbles(true);
    init.set_data(data);
    let transfer = paste.map(|text| {
        let dt = DataTransfer::new().unwrap();
        dt.set_data("text/plain", text).unwrap();
        dt
    });
    init.set_data_transfer(transfer.as_ref());
    let event = InputEvent::new_with_event_init_dict("beforeinput", &init).unwrap();
    el.dispatch_event(&event).unwrap();
    event.default_prevented()
}

fn type_text(el: &HtmlInputElement, text: &str) {
    for c in text.chars() {
        let end = el.value().encode_utf16().count() as u32;
        el.set_selection_range(end, end).unwrap();
        assert!(before_input(el, "insertText", Some(&c.to_string()), None));
    }
}

fn fire(el: &HtmlInputElement, kind: &str) {
    let init = EventInit::new();
    init.set_bubbles(kind == "input");
    el.dispatch_event(&Event::new_with_event_init_dict(kind, &init).unwrap()).unwrap();
}

#[wasm_bindgen_test]
async fn formats_as_you_type_detects_brand_and_advances() {
    let fx = Fixture::new(None).await;
    fx.init("").await;
    let number = input("number");
    number.focus().unwrap();
    type_text(&number, "42424");
    assert_eq!((number.value().as_str(), caret(&number)), ("4242 4", 6), "caret at the end while typing at the end");
    type_text(&number, "24242424242");
    // Complete: focus moved on to the expiry, and the number is masked while unfocused.
    assert_eq!(number.value(), "4242 **** **** 4242");
    let icon = document().get_element_by_id("brand-icon").unwrap();
    assert_eq!(icon.get_attribute("href").as_deref(), Some("/v1/frame/brands.svg#b-visa"));
    assert_eq!(document().active_element().unwrap().id(), "expiry", "auto-advance to expiry");

    let expiry = input("expiry");
    type_text(&expiry, "1230");
    assert_eq!(expiry.value(), "12 / 30");
    assert_eq!(document().active_element().unwrap().id(), "cvc", "auto-advance to cvc");
    let cvc = input("cvc");
    type_text(&cvc, "1234");
    assert_eq!(cvc.value(), "123", "visa CVC stops at 3 digits");

    let state = fx.state();
    assert!(state.complete);
    assert_eq!(state.brand, Some("visa"));
    number.focus().unwrap();
    assert_eq!(number.value(), "4242 4242 4242 4242", "unmasked for editing");
    tick().await;
    let types = fx.recorder.types();
    assert!(types.iter().any(|t| t == "brand"), "{types:?}");
    assert!(types.iter().any(|t| t == "change"), "{types:?}");
}

#[wasm_bindgen_test]
async fn mid_number_edit_keeps_the_caret_and_backspace_skips_gaps() {
    let fx = Fixture::new(None).await;
    fx.init("").await;
    let number = input("number");
    number.focus().unwrap();
    type_text(&number, "424242424242424");
    // Insert a digit after "4242 " (char 5): the caret must follow the inserted digit.
    number.set_selection_range(5, 5).unwrap();
    let expected = card::edit(card::FieldKind::Number, &number.value(), 5..5, card::Edit::Insert("9"));
    assert!(before_input(&number, "insertText", Some("9"), None));
    assert_eq!(number.value(), expected.text);
    assert_eq!(caret(&number), expected.caret as u32);
    assert_eq!(number.value(), "4242 9424 2424 2424");
    assert_eq!(caret(&number), 6);

    // Backspace right after a gap deletes the digit before it.
    number.set_selection_range(5, 5).unwrap();
    assert!(before_input(&number, "deleteContentBackward", None, None));
    assert_eq!(number.value(), "4249 4242 4242 424");
    assert_eq!(caret(&number), 3);
    drop(fx);
}

#[wasm_bindgen_test]
async fn paste_and_autofill_are_reformatted() {
    let fx = Fixture::new(None).await;
    fx.init("").await;
    let number = input("number");
    number.focus().unwrap();
    assert!(before_input(&number, "insertFromPaste", None, Some("3782-822463-10005")));
    // Complete: focus moved on, so the number shows masked; focusing it shows the digits.
    assert_eq!(document().active_element().unwrap().id(), "expiry");
    assert_eq!(number.value(), "3782 ****** *0005");
    number.focus().unwrap();
    assert_eq!(number.value(), "3782 822463 10005");
    assert_eq!(fx.state().brand, Some("amex"));

    // Autofill writes the value without beforeinput; the input handler reformats.
    let expiry = input("expiry");
    expiry.set_value("12/2031");
    fire(&expiry, "input");
    assert_eq!(expiry.value(), "12 / 31");
    // Full-width digits from an IME are read as ASCII digits.
    expiry.set_value("１１／３２");
    fire(&expiry, "input");
    assert_eq!(expiry.value(), "11 / 32");
    let cvc = input("cvc");
    cvc.set_value("1234");
    fire(&cvc, "input");
    assert_eq!(cvc.value(), "\u{2022}".repeat(4), "amex takes a 4-digit CID, masked while not focused");
    cvc.focus().unwrap();
    assert_eq!(cvc.value(), "1234");
    assert!(fx.state().complete);
}

#[wasm_bindgen_test]
async fn number_is_masked_on_blur_and_restored_on_focus() {
    let fx = Fixture::new(None).await;
    fx.init("").await;
    let number = input("number");
    number.focus().unwrap();
    type_text(&number, "4111111111111111");
    number.blur().unwrap();
    assert_eq!(number.value(), "4111 **** **** 1111");
    number.focus().unwrap();
    assert_eq!(number.value(), "4111 1111 1111 1111");
    drop(fx);
}

#[wasm_bindgen_test]
async fn invalid_number_sets_aria_and_announced_error() {
    let fx = Fixture::new(None).await;
    fx.init("").await;
    let number = input("number");
    number.focus().unwrap();
    type_text(&number, "378282246310006");
    assert_eq!(number.get_attribute("aria-invalid").as_deref(), Some("true"));
    assert_eq!(number.get_attribute("aria-describedby").as_deref(), Some("error"));
    let error = document().get_element_by_id("error").unwrap();
    assert_eq!(error.get_attribute("role").as_deref(), Some("alert"));
    assert_eq!(error.text_content().as_deref(), Some("Your card number is invalid."));
    let state = fx.state();
    assert_eq!(state.error.map(|e| e.code), Some("invalid_number".to_owned()));

    // A change elsewhere that leaves the error as it is does not rewrite the live region (a
    // screen reader would announce the same error again).
    let text_node = error.first_child().unwrap();
    let expiry = input("expiry");
    expiry.focus().unwrap();
    type_text(&expiry, "1");
    assert_eq!(expiry.value(), "1");
    assert_eq!(fx.state().error.map(|e| e.code), Some("invalid_number".to_owned()));
    assert!(error.first_child().unwrap().is_same_node(Some(&text_node)), "the error text was rewritten");
    number.focus().unwrap();

    // Fixing it clears the error.
    number.set_selection_range(17, 17).unwrap();
    assert!(before_input(&number, "deleteContentBackward", None, None));
    type_text(&number, "5");
    assert_eq!(number.get_attribute("aria-invalid").as_deref(), Some("false"));
    assert_eq!(number.get_attribute("aria-describedby"), None);
}

#[wasm_bindgen_test]
async fn init_applies_locale_fields_placeholders_and_safe_styles_only() {
    preload_german();
    let fx = Fixture::new(None).await;
    fx.init(
        r##","locale":"de","fields":{"name":true},"placeholders":{"cvc":"Prüfziffer"},
        "style":{"base":{"color":"#123456","fontSize":"18px","backgroundImage":"url(https://evil.example/x)","fontFamily":"x;color:red"},
                 "invalid":{"color":"rgb(255, 0, 0)"}}"##,
    )
    .await;
    assert_eq!(document().document_element().unwrap().get_attribute("lang").as_deref(), Some("de"));
    assert_eq!(document().get_element_by_id("number-label").unwrap().text_content().as_deref(), Some("Kartennummer"));
    assert_eq!(input("expiry").placeholder(), "MM / JJ");
    assert_eq!(input("cvc").placeholder(), "Prüfziffer");
    let name_wrapper = input("name").parent_element().unwrap();
    assert!(!name_wrapper.has_attribute("hidden"), "name field enabled");
    assert!(input("postalCode").parent_element().unwrap().has_attribute("hidden"));

    let style = input("number").style();
    assert_eq!(style.get_property_value("color").unwrap(), "rgb(18, 52, 86)");
    assert_eq!(style.get_property_value("font-size").unwrap(), "18px");
    assert_eq!(style.get_property_value("background-image").unwrap(), "");
    assert_eq!(style.get_property_value("font-family").unwrap(), "");
    assert!(!input("number").get_attribute("style").unwrap_or_default().contains("url("));

    let types = fx.recorder.types();
    assert!(types.iter().any(|t| t == "ready"), "{types:?}");
    // The invalid variant is layered on when the field is invalid.
    let number = input("number");
    number.focus().unwrap();
    type_text(&number, "378282246310006");
    assert_eq!(number.style().get_property_value("color").unwrap(), "rgb(255, 0, 0)");
}

#[wasm_bindgen_test]
async fn messages_from_the_wrong_channel_are_ignored_and_commands_work() {
    let fx = Fixture::new(None).await;
    fx.init("").await;
    let number = input("number");
    number.focus().unwrap();
    type_text(&number, "4242");
    post(r#"{"v":1,"channel":"another-channel-000000","type":"clear"}"#).await;
    post(r#"{"v":1,"channel":"testchannel-0123456789","type":"clear"}"#.replace("789", "780").as_str()).await;
    post(r#"{"v":2,"channel":"testchannel-0123456789","type":"clear"}"#).await;
    post(r#"{"v":1,"channel":"testchannel-0123456789","type":"clear","style":{"base":[1,2]}}"#).await;
    post(r#"{"v":1,"channel":"testchannel-0123456789","type":"clear","padding":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#.replace("xxxxxxxx", &"x".repeat(5000)).as_str()).await;
    assert_eq!(number.value(), "4242", "ignored: wrong channel, version, shape, oversized");
    post(r#"{"v":1,"channel":"testchannel-0123456789","type":"focus","field":"pin"}"#).await;
    post(r#"{"v":1,"channel":"testchannel-0123456789","type":"clear","disabled":"no"}"#).await;
    assert_eq!(number.value(), "4242", "ignored: unknown field name, a known key of the wrong type");
    // docs/postmessage.md: unknown extra keys in an otherwise valid message are ignored, whatever
    // their values (arrays included).
    post(r#"{"v":1,"channel":"testchannel-0123456789","type":"clear","extra":[1,2],"more":{"a":[null]}}"#).await;
    assert_eq!(number.value(), "");
    assert!(fx.state().empty);
    // Issue 12: clear(field) empties one field only; blur() leaves the focused input.
    type_text(&number, "4242424242424242");
    let cvc = input("cvc");
    cvc.focus().unwrap();
    type_text(&cvc, "123");
    post(r#"{"v":1,"channel":"testchannel-0123456789","type":"clear","field":"cvc"}"#).await;
    assert_eq!(cvc.value(), "");
    assert_eq!(number.value(), "4242 **** **** 4242", "the other fields keep their values (masked, not focused)");
    let active = || document().active_element().map(|e| e.id());
    input("expiry").focus().unwrap();
    assert_eq!(active(), Some("expiry".to_owned()));
    tick().await;
    assert_eq!(active(), Some("expiry".to_owned()));
    post(r#"{"v":1,"channel":"testchannel-0123456789","type":"blur"}"#).await;
    assert_ne!(active(), Some("expiry".to_owned()), "blurred");
}

#[wasm_bindgen_test]
async fn enter_submits_and_messages_never_carry_card_data() {
    let fx = Fixture::new(None).await;
    fx.init("").await;
    let number = input("number");
    number.focus().unwrap();
    type_text(&number, "4000056655665556");
    number.blur().unwrap();
    let cvc = input("cvc");
    cvc.focus().unwrap();
    type_text(&cvc, "987");
    let init = KeyboardEventInit::new();
    init.set_key("Enter");
    init.set_cancelable(true);
    let enter = KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).unwrap();
    cvc.dispatch_event(&enter).unwrap();
    assert!(enter.default_prevented());
    // Tokenize without an expiry: answered with a validation error, not a request.
    post(r#"{"v":1,"channel":"testchannel-0123456789","type":"tokenize","id":"t1"}"#).await;
    tick().await;
    let messages = fx.recorder.json();
    assert!(fx.recorder.types().iter().any(|t| t == "submit"));
    let failed = messages.iter().find(|m| m.contains("tokenizeFailed")).expect("tokenize answered");
    assert!(failed.contains(r#""code":"incomplete_expiry""#), "{failed}");
    assert!(failed.contains(r#""field":"expiry""#), "{failed}");
    for m in &messages {
        assert!(m.contains(&format!(r#""channel":"{}""#, channel())), "{m}");
        for secret in ["4000056655665556", "4000 0566 5566 5556", "5566", "987"] {
            assert!(!m.contains(secret), "message leaks card data: {m}");
        }
    }
}

#[wasm_bindgen_test]
async fn cvc_is_masked_on_blur_and_restored_on_focus() {
    let fx = Fixture::new(None).await;
    fx.init("").await;
    let cvc = input("cvc");
    cvc.focus().unwrap();
    type_text(&cvc, "12");
    cvc.blur().unwrap();
    assert_eq!(cvc.value(), "\u{2022}\u{2022}", "an incomplete CVC is masked too");
    cvc.focus().unwrap();
    assert_eq!(cvc.value(), "12");
    type_text(&cvc, "3");
    cvc.blur().unwrap();
    assert_eq!(cvc.value(), "\u{2022}\u{2022}\u{2022}");
    assert!(cvc.get_attribute("value").is_none());
    assert!(fx.state().fields.cvc.valid, "the model holds the real CVC");
    // Autofill into the unfocused CVC: masked at once.
    cvc.set_value("987");
    fire(&cvc, "input");
    assert_eq!(cvc.value(), "\u{2022}\u{2022}\u{2022}");
    cvc.focus().unwrap();
    assert_eq!(cvc.value(), "987");
}

#[wasm_bindgen_test]
async fn errors_none_and_message_overrides() {
    let fx = Fixture::new(None).await;
    fx.init(r#","errors":"none","messages":{"invalid_number":"Custom number text."}"#).await;
    let number = input("number");
    number.focus().unwrap();
    type_text(&number, "378282246310006");
    let error = document().get_element_by_id("error").unwrap();
    assert_eq!(error.text_content().as_deref(), Some("Custom number text."));
    assert!(error.class_list().contains("sr"), "visually hidden");
    assert_eq!(error.get_attribute("role"), None, "no second live region");
    assert_eq!(number.get_attribute("aria-describedby").as_deref(), Some("error"));
    assert_eq!(fx.state().error.map(|e| e.message), Some("Custom number text.".to_owned()));
}

#[wasm_bindgen_test]
async fn numeric_styles_get_pixels_and_rejected_ones_are_reported() {
    let fx = Fixture::new(None).await;
    fx.init(r#","style":{"base":{"fontSize":"19","position":"absolute","color":"nonsense"},"active":{"color":"red"}}"#)
        .await;
    assert_eq!(input("number").style().get_property_value("font-size").unwrap(), "19px");
    let warning = fx.recorder.json().into_iter().find(|m| m.contains(r#""type":"warning""#)).expect("a warning");
    assert!(warning.contains(r#""code":"style_rejected""#), "{warning}");
    for name in ["base.position", "base.color", "active"] {
        assert!(warning.contains(&format!("\"{name}\"")), "{name} not reported: {warning}");
    }
}

/// The loader sends `init` when the frame has loaded and again in answer to `hello`: only the
/// first configures the frame (one `ready`, one warning); options change through `update`.
#[wasm_bindgen_test]
async fn only_the_first_init_counts() {
    let fx = Fixture::new(None).await;
    fx.init(r#","style":{"base":{"fontSize":"19","position":"absolute"}}"#).await;
    fx.init(r#","disabled":true,"style":{"base":{"fontSize":"25","zIndex":"1"}}"#).await;
    assert_eq!(fx.posted("ready").len(), 1, "{:?}", fx.recorder.json());
    assert_eq!(fx.posted("warning").len(), 1, "{:?}", fx.posted("warning"));
    assert!(!input("number").disabled(), "a second init changed the options");
    assert_eq!(input("number").style().get_property_value("font-size").unwrap(), "19px");
    fx.update(r#","disabled":true"#).await;
    assert!(input("number").disabled(), "update still changes them");
}

/// A style applied and then replaced leaves none of its properties behind on the inputs (the
/// frame removes what it set, not every allowed property).
#[wasm_bindgen_test]
async fn a_replaced_style_leaves_nothing_behind() {
    let fx = Fixture::new(None).await;
    fx.init(r#","style":{"base":{"fontSize":"19","borderRadius":"9px"},"focus":{"color":"red"}}"#).await;
    let number = input("number");
    number.focus().unwrap();
    tick().await;
    assert_eq!(number.style().get_property_value("color").unwrap(), "red");
    fx.update(r#","style":{"base":{"letterSpacing":"2px"}}"#).await;
    for gone in ["font-size", "border-radius", "color"] {
        assert_eq!(number.style().get_property_value(gone).unwrap(), "", "{gone} left behind");
    }
    assert_eq!(number.style().get_property_value("letter-spacing").unwrap(), "2px");
}

fn computed(el: &HtmlInputElement, property: &str) -> String {
    web_sys::window().unwrap().get_computed_style(el).unwrap().unwrap().get_property_value(property).unwrap()
}

fn mouse(el: &HtmlInputElement, kind: &str) {
    el.dispatch_event(&Event::new(kind).unwrap()).unwrap();
}

/// Issue 12, designable: the input box itself (border, radius, shadow, height) per variant,
/// hover / focus / autofilled / disabled layered in the documented order.
#[wasm_bindgen_test]
async fn box_styles_layer_hover_focus_autofilled_and_disabled() {
    let fx = Fixture::new(None).await;
    fx.init(
        r#","style":{"base":{"border":"1px solid rgb(1, 1, 1)","borderRadius":"9","height":"40"},
           "hover":{"borderColor":"rgb(2, 2, 2)"},"focus":{"borderColor":"rgb(3, 3, 3)"},
           "autofilled":{"boxShadow":"rgb(4, 4, 4) 0px 0px 0px 30px inset"},
           "disabled":{"backgroundColor":"rgb(5, 5, 5)"}}"#,
    )
    .await;
    assert!(fx.posted("warning").is_empty(), "{:?}", fx.posted("warning"));
    let number = input("number");
    let border = |el: &HtmlInputElement| el.style().get_property_value("border-color").unwrap();
    assert_eq!(border(&number), "rgb(1, 1, 1)");
    assert_eq!(number.style().get_property_value("border-radius").unwrap(), "9px");
    assert_eq!(number.style().get_property_value("height").unwrap(), "40px");
    mouse(&number, "mouseenter");
    assert_eq!(border(&number), "rgb(2, 2, 2)", "hover");
    number.focus().unwrap();
    assert_eq!(border(&number), "rgb(3, 3, 3)", "focus wins over hover");
    mouse(&number, "mouseleave");
    number.blur().unwrap();
    assert_eq!(border(&number), "rgb(1, 1, 1)", "back to base");

    // Autofill (a plain `input` Event, no beforeinput): the autofilled variant and flag, an
    // `autofill` message, until the cardholder edits the field.
    let expiry = input("expiry");
    expiry.set_value("12/2031");
    fire(&expiry, "input");
    assert!(fx.state().fields.expiry.autofilled);
    assert_eq!(expiry.style().get_property_value("box-shadow").unwrap(), "rgb(4, 4, 4) 0px 0px 0px 30px inset");
    tick().await;
    let autofill = fx.posted("autofill");
    assert_eq!(autofill.len(), 1, "{autofill:?}");
    assert!(autofill[0].contains(r#""field":"expiry""#), "{autofill:?}");
    expiry.focus().unwrap();
    expiry.set_selection_range(7, 7).unwrap();
    assert!(before_input(&expiry, "deleteContentBackward", None, None));
    assert!(!fx.state().fields.expiry.autofilled, "edited by the cardholder");
    assert_eq!(expiry.style().get_property_value("box-shadow").unwrap(), "");
    // Typing (InputEvents) is not autofill.
    let cvc = input("cvc");
    cvc.focus().unwrap();
    type_text(&cvc, "12");
    assert!(!fx.state().fields.cvc.autofilled);
    cvc.blur().unwrap();

    fx.update(r#","disabled":true"#).await;
    assert!(number.disabled() && expiry.disabled() && cvc.disabled());
    assert_eq!(number.style().get_property_value("background-color").unwrap(), "rgb(5, 5, 5)");
    fx.update(r#","disabled":false"#).await;
    assert!(!number.disabled());
    assert_eq!(number.style().get_property_value("background-color").unwrap(), "");
    assert_eq!(computed(&number, "border-top-left-radius"), "9px");
}

/// Issue 12: `update` changes style, locale, placeholders and `disabled` in place: the values
/// typed, the focus and the caret stay.
#[wasm_bindgen_test]
async fn update_changes_options_without_losing_input() {
    preload_german();
    let fx = Fixture::new(Some("en")).await;
    fx.init(r#","style":{"base":{"color":"rgb(1, 2, 3)"}}"#).await;
    let number = input("number");
    number.focus().unwrap();
    type_text(&number, "424242");
    let label = document().query_selector("label[for=number]").unwrap().unwrap();
    assert_eq!(label.text_content().as_deref(), Some("Card number"));

    fx.update(
        r#","locale":"de","placeholders":{"cvc":"Prüfnr."},"style":{"base":{"color":"rgb(9, 8, 7)","zIndex":"5"}}"#,
    )
    .await;
    assert_eq!(number.value(), "4242 42", "value kept");
    assert_eq!(document().active_element().unwrap().id(), "number", "focus kept");
    assert_eq!(caret(&number), 7, "caret kept");
    assert_eq!(label.text_content().as_deref(), Some("Kartennummer"));
    assert_eq!(input("cvc").get_attribute("placeholder").as_deref(), Some("Prüfnr."));
    assert_eq!(number.style().get_property_value("color").unwrap(), "rgb(9, 8, 7)");
    let warnings = fx.posted("warning");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(r#""base.zIndex""#), "{warnings:?}");
    assert_eq!(fx.posted("ready").len(), 1, "update does not re-announce ready");

    // Typing goes on where it was; an update without a style keeps the style.
    type_text(&number, "4242424242");
    fx.update(r#","disabled":true"#).await;
    fx.update(r#","disabled":false"#).await;
    assert_eq!(number.style().get_property_value("color").unwrap(), "rgb(9, 8, 7)");
    let state = fx.state();
    assert!(state.fields.number.valid);
    assert_eq!(state.brand, Some("visa"));
    assert_eq!(state.last4.as_deref(), Some("4242"));
    // Unknown keys and wrong types: an update with a bad field type is ignored whole.
    fx.update(r#","disabled":"yes""#).await;
    assert!(!number.disabled());
}

/// Issue 12: `appearance.variables` set the frame's theme variables; unknown names and values
/// the browser refuses are reported, never applied.
#[wasm_bindgen_test]
async fn appearance_variables_theme_the_frame_and_bad_ones_are_reported() {
    let fx = Fixture::new(None).await;
    fx.init(
        r##","appearance":{"colorPrimary":"#635bff","borderRadius":"10","colorText":"nonsense","shadow":"1px","fontFamily":"x;y"}"##,
    )
    .await;
    let root: web_sys::HtmlElement = document().document_element().unwrap().dyn_into().unwrap();
    let var = |name: &str| root.style().get_property_value(name).unwrap();
    assert_eq!(var("--af-primary"), "#635bff");
    assert_eq!(var("--af-radius"), "10px");
    assert_eq!(var("--af-text"), "");
    assert_eq!(var("--af-font"), "");
    let warnings = fx.posted("warning");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    for name in ["appearance.variables.colorText", "appearance.variables.shadow", "appearance.variables.fontFamily"] {
        assert!(warnings[0].contains(&format!("\"{name}\"")), "{name} not reported: {warnings:?}");
    }
    fx.update(r#","appearance":{"colorDanger":"rgb(200, 0, 0)"}"#).await;
    assert_eq!(var("--af-primary"), "", "a new appearance replaces the old one");
    assert_eq!(var("--af-danger"), "rgb(200, 0, 0)");
    fx.update(r#","appearance":{}"#).await;
    assert_eq!(var("--af-danger"), "");
}

/// Issue 12: Escape in an input is reported as `escape` with the field.
#[wasm_bindgen_test]
async fn escape_is_reported_with_its_field() {
    let fx = Fixture::new(None).await;
    fx.init("").await;
    let cvc = input("cvc");
    cvc.focus().unwrap();
    let init = KeyboardEventInit::new();
    init.set_key("Escape");
    cvc.dispatch_event(&KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).unwrap()).unwrap();
    tick().await;
    let escape = fx.posted("escape");
    assert_eq!(escape.len(), 1, "{escape:?}");
    assert!(escape[0].contains(r#""field":"cvc""#), "{escape:?}");
}

/// The frame builds its messages by hand (`jswrite`, no serde in the WASM): every kind of
/// message stringifies to exactly the JSON the protocol's serde types define (same keys, same
/// order, `null`s), which the native protocol tests pin against docs/postmessage.md.
#[wasm_bindgen_test]
fn hand_built_messages_match_the_serde_shapes() {
    use frame::protocol::{CardMeta, ChangeState, Envelope, ErrorInfo, Field, FieldStatus, FieldStatuses, FrameEvent};
    let status = |b: bool| FieldStatus { empty: b, valid: !b, potentially_valid: true, focused: b, autofilled: !b };
    let full = ChangeState {
        brand: Some("visa"),
        bin: Some("42424242".into()),
        last4: Some("4242".into()),
        complete: true,
        empty: false,
        fields: FieldStatuses {
            number: status(false),
            expiry: status(true),
            cvc: status(false),
            name: Some(status(true)),
            postal_code: Some(status(false)),
        },
        error: Some(ErrorInfo { field: Some(Field::PostalCode), code: "expired".into(), message: "M \"q\"".into() }),
    };
    let events = [
        FrameEvent::Hello,
        FrameEvent::Ready { height: 48, state: ChangeState::default() },
        FrameEvent::Resize { height: 96 },
        FrameEvent::Change { state: full },
        FrameEvent::Focus { field: Field::Number },
        FrameEvent::Blur { field: Field::PostalCode },
        FrameEvent::Submit,
        FrameEvent::Escape { field: Field::Cvc },
        FrameEvent::Autofill { field: Field::Expiry },
        FrameEvent::Brand { brand: None },
        FrameEvent::Brand { brand: Some("amex") },
        FrameEvent::Tokenized {
            id: "t1".into(),
            token: "tok_1".into(),
            card: CardMeta { brand: "visa".into(), last4: "4242".into(), exp_month: 12, exp_year: 2030 },
            expires_at: "2030-01-01T00:00:00.000Z".into(),
        },
        FrameEvent::TokenizeFailed {
            id: "t2".into(),
            error: ErrorInfo { field: None, code: "network_error".into(), message: "x".into() },
        },
        FrameEvent::Warning { code: "style_rejected", message: "m".into(), properties: vec!["a".into(), "b.c".into()] },
        FrameEvent::Warning { code: "style_rejected", message: "m".into(), properties: vec![] },
    ];
    for event in &events {
        let ours = String::from(js_sys::JSON::stringify(&frame::jswrite::message(CHANNEL, event)).unwrap());
        let serde = serde_json::to_string(&Envelope::new(CHANNEL, event)).unwrap();
        assert_eq!(ours, serde);
    }
}

/// Issue 12: only English is compiled in; another locale's table is fetched from the vault and
/// `ready` waits for it. Here there is no vault (the fetch fails): `ready` still comes, in English.
#[wasm_bindgen_test]
async fn ready_waits_for_a_locale_table_and_falls_back_to_english() {
    let fx = Fixture::new(None).await;
    fx.init(r#","locale":"ja","style":{"base":{"zIndex":"1"}}"#).await;
    for _ in 0..50 {
        if !fx.posted("ready").is_empty() {
            break;
        }
        tick().await;
    }
    assert_eq!(fx.posted("ready").len(), 1, "ready after the failed fetch");
    let types = fx.recorder.types();
    let ready = types.iter().position(|t| t == "ready");
    let warning = types.iter().position(|t| t == "warning");
    assert!(ready.is_some() && warning > ready, "the warning follows ready: {types:?}");
    let label = document().get_element_by_id("number-label").unwrap().text_content();
    assert_eq!(label.as_deref(), Some("Card number"));
}

#[wasm_bindgen_test]
async fn labels_accessible_names_visible_labels_and_right_to_left() {
    let table = js_sys::JSON::parse(include_str!("../../../static/frame/locale-ar.json")).unwrap();
    assert!(frame::register_locale_table(table, "ar"));
    let fx = Fixture::new(None).await;
    fx.init(
        r#","locale":"ar-EG","label":{"expiry":"Valid thru"},"ariaLabel":{"cvc":"Security code, 3 digits","number":" "},
        "placeholders":{"cvc":"123"},"showLabels":true"#,
    )
    .await;
    let root = document().document_element().unwrap();
    assert_eq!(root.get_attribute("dir").as_deref(), Some("rtl"));
    assert_eq!(root.get_attribute("lang").as_deref(), Some("ar"));
    let label = |id: &str| document().get_element_by_id(&format!("{id}-label")).unwrap();
    assert_eq!(label("number").text_content().as_deref(), Some("رقم البطاقة"));
    assert_eq!(label("expiry").text_content().as_deref(), Some("Valid thru"));
    assert!(!label("number").class_list().contains("sr"), "visible labels");
    assert_eq!(input("cvc").get_attribute("aria-label").as_deref(), Some("Security code, 3 digits"));
    assert_eq!(input("number").get_attribute("aria-label"), None, "a blank accessible name is ignored");
    assert_eq!(input("cvc").placeholder(), "123");
    // The card data stays left to right inside the right-to-left document.
    for id in ["number", "expiry", "cvc"] {
        assert_eq!(input(id).get_attribute("dir").as_deref(), Some("ltr"), "{id}");
    }
    assert_eq!(input("name").get_attribute("dir"), None, "a name may be written right to left");
    let number = input("number");
    number.focus().unwrap();
    type_text(&number, "4242424242424242");
    // Complete: focus moved on to the expiry and the number shows masked, still left to right.
    assert_eq!(number.value(), "4242 **** **** 4242");
    assert!(fx.state().fields.number.valid);

    fx.update(r#","locale":"en","showLabels":false,"ariaLabel":{}"#).await;
    assert_eq!(root.get_attribute("dir").as_deref(), Some("ltr"));
    assert!(label("number").class_list().contains("sr"), "labels for screen readers only again");
    assert_eq!(label("number").text_content().as_deref(), Some("Card number"));
    assert_eq!(label("expiry").text_content().as_deref(), Some("Valid thru"), "label kept: update had none");
    assert_eq!(input("cvc").get_attribute("aria-label"), None);
    assert_eq!(number.value(), "4242 **** **** 4242", "typed value kept");
    assert!(fx.state().fields.number.valid);
}

/// The test plays the other field frames of a split card's group: the same `BroadcastChannel`
/// (this test page has the frame's origin), recording what the frame under test broadcasts.
struct Peers {
    channel: web_sys::BroadcastChannel,
    heard: Rc<RefCell<Vec<String>>>,
    _listener: Closure<dyn FnMut(MessageEvent)>,
}

impl Peers {
    fn new(group: &str) -> Peers {
        let channel = web_sys::BroadcastChannel::new(&format!("af-{group}")).unwrap();
        let heard = Rc::new(RefCell::new(Vec::new()));
        let sink = heard.clone();
        let listener = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            sink.borrow_mut().push(String::from(js_sys::JSON::stringify(&e.data()).unwrap()));
        });
        channel.set_onmessage(Some(listener.as_ref().unchecked_ref()));
        Peers { channel, heard, _listener: listener }
    }

    async fn post(&self, json: &str) {
        self.channel.post_message(&js_sys::JSON::parse(json).unwrap()).unwrap();
        tick().await;
    }
}

/// A frame of a split card showing `field`, with the test playing the rest of its group.
async fn split_fixture(field: frame::protocol::Field) -> (Fixture, Peers, String) {
    let group = format!("dom-group-{}-{}", field.id(), channel());
    let peers = Peers::new(&group);
    let fx = Fixture::with(None, Some(frame::split::SplitParams { field, group: group.clone() })).await;
    (fx, peers, group)
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.channel.close();
    }
}

/// Split fields: a CVC field frame shows only its field, takes the brand from the number frame
/// of its group, answers the leader's `collect` on the group's channel and never to the page,
/// ignores the same messages posted to it like a page would, forgets the CVC on `tokenized`, and
/// takes the focus when the expiry before it was completed.
#[wasm_bindgen_test]
async fn a_split_cvc_frame_speaks_to_its_group_only() {
    let (fx, peers, _) = split_fixture(frame::protocol::Field::Cvc).await;
    tick().await;
    assert_eq!(peers.heard.borrow().first().map(String::as_str), Some(r#"{"t":0}"#));
    fx.init(r#","fields":{"name":true}"#).await;
    for id in ["number", "expiry", "name", "postalCode"] {
        let el = input(id);
        assert!(el.parent_element().unwrap().has_attribute("hidden") && el.disabled(), "{id} is shown");
    }
    assert!(!input("cvc").parent_element().unwrap().has_attribute("hidden"));
    let state = fx.state();
    assert!(state.fields.name.is_none() && state.empty, "the frame reports its own field: {state:?}");

    peers.post(r#"{"t":1,"x":"amex"}"#).await;
    let cvc = input("cvc");
    cvc.focus().unwrap();
    type_text(&cvc, "737");
    assert!(!fx.state().fields.cvc.valid, "amex (from the number frame) wants 4 digits");
    assert_eq!(fx.state().brand, Some("amex"));
    type_text(&cvc, "4");
    assert!(fx.state().fields.cvc.valid && fx.state().complete);
    assert!(fx.posted("brand").is_empty(), "only the number frame tells the page the brand");

    // What a page would post: the frame reads peer messages from the channel only.
    post(r#"{"t":2,"n":"page-nonce"}"#).await;
    post(r#"{"v":1,"channel":"testchannel-0123456789","t":2,"n":"page-nonce"}"#).await;
    assert!(
        peers.heard.borrow().iter().all(|m| !m.starts_with(r#"{"t":3"#)),
        "answered a collect posted like a page: {:?}",
        peers.heard.borrow()
    );
    assert!(peers.heard.borrow().iter().any(|m| m == r#"{"t":4,"f":"cvc"}"#), "a complete CVC moves on");

    peers.post(r#"{"t":2,"n":"nonce-1"}"#).await;
    assert_eq!(peers.heard.borrow().last().map(String::as_str), Some(r#"{"t":3,"n":"nonce-1","f":"cvc","x":"7374"}"#));
    assert!(
        fx.recorder.json().iter().all(|m| !m.contains("7374")),
        "the CVC reached the page: {:?}",
        fx.recorder.json()
    );

    peers.post(r#"{"t":4,"f":"number"}"#).await;
    cvc.blur().unwrap();
    peers.post(r#"{"t":4,"f":"expiry"}"#).await;
    assert_eq!(document().active_element().map(|e| e.id()), Some("cvc".to_owned()), "the CVC frame takes the focus");

    peers.post(r#"{"t":6}"#).await;
    assert_eq!(cvc.value(), "");
    assert!(fx.state().fields.cvc.empty, "the CVC left the frame's memory");
}

async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms).unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

/// Split fields: the number frame (the leader) asks its group for the other fields when the page
/// tokenizes; a field that does not answer within 1 s fails the tokenize with its
/// `incomplete_*` code (and the group hears `failed`); with answers, it goes on to the vault
/// (here the test server, which has no `/v1/tokens`: a vault error, not a validation error).
/// No value ever reaches the page.
#[wasm_bindgen_test]
async fn a_split_number_frame_collects_its_group_before_it_tokenizes() {
    let (fx, peers, group) = split_fixture(frame::protocol::Field::Number).await;
    fx.init("").await;
    let number = input("number");
    number.focus().unwrap();
    type_text(&number, "4242424242424242");
    tick().await;
    assert!(peers.heard.borrow().iter().any(|m| m == r#"{"t":4,"f":"number"}"#), "a complete number moves on");
    assert!(fx.state().complete, "the number frame's own field");

    post(r#"{"v":1,"channel":"testchannel-0123456789","type":"tokenize","id":"t1","fields":{}}"#).await;
    sleep_ms(1300).await;
    let failed = fx.posted("tokenizeFailed");
    assert!(
        failed.len() == 1 && failed[0].contains(r#""field":"expiry","code":"incomplete_expiry""#),
        "nobody answered: {failed:?}"
    );
    let heard = peers.heard.borrow().clone();
    assert!(heard.iter().any(|m| m.starts_with(r#"{"t":2,"n":""#)), "no collect: {heard:?}");
    assert!(heard.iter().any(|m| m == r#"{"t":5,"f":"expiry"}"#), "no failed: {heard:?}");

    // The other frames of the group answer each collect with their values.
    let responder = web_sys::BroadcastChannel::new(&format!("af-{group}")).unwrap();
    let reply = responder.clone();
    let on_collect = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        let data = e.data();
        let get = |k: &str| js_sys::Reflect::get(&data, &k.into()).unwrap();
        if get("t").as_f64() == Some(2.0) {
            let nonce = get("n").as_string().unwrap();
            for (field, value) in [("expiry", "12 / 30"), ("cvc", "737")] {
                let json = format!(r#"{{"t":3,"n":"{nonce}","f":"{field}","x":"{value}"}}"#);
                reply.post_message(&js_sys::JSON::parse(&json).unwrap()).unwrap();
            }
        }
    });
    responder.set_onmessage(Some(on_collect.as_ref().unchecked_ref()));
    post(r#"{"v":1,"channel":"testchannel-0123456789","type":"tokenize","id":"t2","fields":{}}"#).await;
    let mut answer = None;
    for _ in 0..150 {
        sleep_ms(50).await;
        answer = fx.recorder.json().into_iter().find(|m| m.contains(r#""id":"t2""#));
        if answer.is_some() {
            break;
        }
    }
    responder.close();
    let answer = answer.expect("no answer to the second tokenize");
    assert!(
        answer.contains("tokenizeFailed") && !answer.contains("incomplete_"),
        "the complete card was not sent: {answer}"
    );
    for m in fx.recorder.json() {
        assert!(
            !m.contains("4242424242424242") && !m.contains("737") && !m.contains("12 / 30"),
            "card data reached the page: {m}"
        );
    }
}

/// Issue 12, web fonts: `ready` goes once the fonts named in `init` loaded or failed (here the
/// test server serves none: a 404), and what did not load, invalid entries included, comes back
/// in one `font_failed` warning after `ready`.
#[wasm_bindgen_test]
async fn fonts_that_fail_do_not_hold_ready_and_are_reported() {
    let fx = Fixture::new(None).await;
    fx.init(
        r#","fonts":[{"family":"Unserved Face","src":"/v1/frame/fonts/abcdefghijklmnopabcdefghijklmnop.woff2","weight":700},
                     {"family":"Bad;Face","src":"https://fonts.example/x.woff2"},"not a font"]"#,
    )
    .await;
    for _ in 0..150 {
        if !fx.posted("warning").is_empty() {
            break;
        }
        tick().await;
    }
    assert_eq!(fx.posted("ready").len(), 1, "ready once");
    let warning = fx.posted("warning");
    assert_eq!(warning.len(), 1, "{warning:?}");
    for part in [r#""code":"font_failed""#, r#""Unserved Face""#, r#""Bad;Face""#] {
        assert!(warning[0].contains(part), "{part} missing: {}", warning[0]);
    }
    let order = fx.recorder.json();
    let at = |kind: &str| order.iter().position(|m| m.contains(&format!(r#""type":"{kind}""#)));
    assert!(at("ready") < at("warning"), "ready first: {order:?}");
}
