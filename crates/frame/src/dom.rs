//! The browser edge: finds the frame's elements, wires their events to the [`Model`],
//! renders state (values, caret, brand icon, errors, ARIA, merchant styles) and talks to the
//! parent page over postMessage.
//!
//! Re-entrancy rule: nothing that dispatches events synchronously (`focus()`) runs while the
//! frame is borrowed; handlers return the field to focus and [`with_frame`] focuses it after
//! the borrow ends.

#[allow(unused_imports)]
use crate::prelude::*;

use alloc::rc::Rc;
use core::cell::RefCell;

use card::{Brand, Edit};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{
    BroadcastChannel, CssStyleDeclaration, CssStyleRule, CssStyleSheet, Document, Element, Event, EventTarget,
    HtmlElement, HtmlInputElement, InputEvent, KeyboardEvent, MessageEvent, ResizeObserver, Window,
};
use zeroize::Zeroizing;

use crate::js::AsDom;
use crate::locale::{Locale, Text};
use crate::model::{Check, Model};
use crate::protocol::{
    ChangeState, Command, Field, FieldOptions, FieldTexts, FrameEvent, FrameParams, Init, MAX_MESSAGE_CHARS, Messages,
    Update,
};
use crate::split::{Collect, Peer};
use crate::style::{Style, ThemeValue, Variant};

/// Brands with their own icon in `static/frame/brands.svg` (`#b-<id>`); others use the inline `#b-generic`.
const ICONS: [Brand; 8] = [
    Brand::Visa,
    Brand::Mastercard,
    Brand::Maestro,
    Brand::Amex,
    Brand::Discover,
    Brand::Diners,
    Brand::Jcb,
    Brand::Unionpay,
];

/// Why the frame could not start.
#[derive(Debug)]
pub enum FrameError {
    /// No `window`/`document` (not running in a browser page).
    NoDocument,
    /// An element the frame needs is missing from the document.
    MissingElement(&'static str),
    /// The URL fragment lacks a valid version, channel or parent origin.
    BadParams,
    /// A browser API call failed.
    Js(JsValue),
}

impl From<JsValue> for FrameError {
    fn from(value: JsValue) -> FrameError {
        FrameError::Js(value)
    }
}

pub(crate) type Shared = Rc<RefCell<Frame>>;

#[wasm_bindgen]
extern "C" {
    /// The frame document's `window`. Not `web_sys::window()`, which looks for the global object
    /// under four names in turn: code the frame, always in a window, does not need.
    #[wasm_bindgen(thread_local_v2, js_name = window)]
    static WINDOW: Window;
}

/// One field's elements.
pub(crate) struct FieldEls {
    pub(crate) input: HtmlInputElement,
    wrapper: HtmlElement,
    label: Element,
    /// Bit set of the style variants last applied (to skip unchanged renders).
    applied: u16,
    /// The properties the merchant's style last set on the input, the only ones a new render
    /// has to remove (a default mount sets none).
    inline: Vec<&'static str>,
    /// ARIA state last written: bit 0 `aria-invalid`, bit 1 `aria-describedby="error"`.
    aria: u8,
}

/// The frame's state and elements.
pub struct Frame {
    pub(crate) window: Window,
    pub(crate) params: FrameParams,
    pub(crate) key: String,
    pub(crate) els: Vec<FieldEls>,
    document: Document,
    form: HtmlElement,
    brand_icon: Element,
    /// URL of the brand icon sprite: `/v1/frame/` + the icon's `data-icons` (`brands-<hash>.svg`
    /// in a release build, named by `scripts/hash-sprite.py`; `brands.svg` in the sources).
    icons: String,
    error: HtmlElement,
    pub(crate) model: Model,
    pub(crate) locale: Locale,
    style: Style,
    /// Theme variables set on the document element (`appearance.variables`).
    theme: Vec<ThemeValue>,
    /// The field under the pointer (`hover` variant).
    hovered: Option<Field>,
    /// Every input disabled (`disabled: true`).
    disabled: bool,
    placeholder_rule: Option<CssStyleDeclaration>,
    placeholders: FieldTexts,
    /// Label texts (`label`), shown above the inputs with `show_labels`, else for screen readers.
    labels: FieldTexts,
    /// Accessible names (`ariaLabel`) that replace the labels' for screen readers.
    aria_labels: FieldTexts,
    show_labels: bool,
    last_state: Option<ChangeState>,
    last_brand: Option<&'static str>,
    /// Per field (by [`Field::index`]): the input shows a mask, the value is in the model only.
    masked: [bool; 5],
    /// Merchant overrides of error messages.
    messages: Messages,
    initialized: bool,
    /// An `init` arrived (later ones are ignored).
    init_received: bool,
    /// What `init` could not apply, reported after `ready` once the locale table is in.
    pending_warning: Vec<String>,
    /// `ready` waits for the locale table `init` asked for, and for the web fonts to load.
    locale_pending: bool,
    fonts_pending: bool,
    last_height: u32,
    /// The Idempotency-Key of the current submission; reused by retries until the card data
    /// changes or the vault answers definitively.
    pub(crate) idempotency_key: Option<String>,
    pub(crate) tokenizing: bool,
    /// Split fields: the group's `BroadcastChannel` (`af-<group>`, the vault's origin only).
    peers: Option<BroadcastChannel>,
    /// Split fields, the leader while it tokenizes: the values collected so far.
    pub(crate) collect: Option<Collect>,
    /// Split fields, the leader: the request body of the submission whose Idempotency-Key is
    /// kept after a network failure; the key is reused only for the very same body (the other
    /// fields' edits happen in other frames, so "unchanged" is decided here). Zeroized.
    pub(crate) kept_body: Option<Zeroizing<String>>,
}

/// An event listener (one closure for one or more event types) removed when dropped.
struct Listener {
    target: EventTarget,
    kinds: &'static [&'static str],
    closure: Closure<dyn Fn(Event)>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        for kind in self.kinds {
            self.target.dom().remove_event_listener(kind, self.closure.as_ref());
        }
    }
}

/// The resize observer and its callback.
type Observer = (ResizeObserver, Closure<dyn FnMut(JsValue)>);

/// A running frame; dropping it removes every listener.
pub struct Mounted {
    frame: Shared,
    _listeners: Vec<Listener>,
    observer: Option<Observer>,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some((observer, _)) = &self.observer {
            observer.disconnect();
        }
        if let Some(peers) = self.frame.try_borrow().ok().and_then(|fr| fr.peers.clone()) {
            peers.close();
        }
    }
}

impl Mounted {
    /// The current `change` payload (for tests and diagnostics; holds no card data).
    pub fn state(&self) -> ChangeState {
        self.frame.borrow().state()
    }
}

/// Entry point called by `boot.js` once the module is instantiated: reads the parameters
/// from `location` and mounts on the document's elements.
#[wasm_bindgen]
pub fn boot() -> Result<(), JsValue> {
    let window = WINDOW.with(Window::clone);
    let location = window.location();
    let params = FrameParams::parse(&location.dom().hash()).ok_or("bad frame parameters")?;
    let key = query_param(&location.dom().search(), "key").unwrap_or_default();
    let mounted = mount(params, key).map_err(|e| match e {
        FrameError::Js(v) => v,
        other => JsValue::from_str(match other {
            FrameError::NoDocument => "no document",
            FrameError::MissingElement(id) => id,
            _ => "bad frame parameters",
        }),
    })?;
    // The frame lives as long as the page: its listeners and closures are never dropped.
    core::mem::forget(mounted);
    Ok(())
}

fn query_param(search: &str, name: &str) -> Option<String> {
    let search = search.strip_prefix('?').unwrap_or(search);
    crate::protocol::split_ascii(search, b'&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .filter(|v| v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .map(str::to_owned)
}

/// The current month from the browser clock (the only clock the frame has).
pub(crate) fn today() -> card::YearMonth {
    let now = js_sys::Date::new_0();
    let year = u16::try_from(now.get_full_year()).ok();
    let month = u8::try_from(now.get_month() + 1).ok();
    // Not `Result::expect`: its `Debug` of the error would link the card crate's Debug impls.
    match year.zip(month).and_then(|(y, m)| card::YearMonth::new(y, m).ok()) {
        Some(today) => today,
        None => card::YearMonth::new(2000, 1).unwrap_or_else(|_| unreachable!("2000-01 is a valid month")),
    }
}

/// Mounts the frame on the current document's `#card` form.
///
/// # Errors
/// [`FrameError`] when the document lacks the frame's elements or a browser call fails.
pub fn mount(params: FrameParams, key: String) -> Result<Mounted, FrameError> {
    let window = WINDOW.with(Window::clone);
    let document = window.document().ok_or(FrameError::NoDocument)?;
    let by_id = |id: &'static str| -> Result<Element, FrameError> {
        document.get_element_by_id(id).ok_or(FrameError::MissingElement(id))
    };
    let html = |id: &'static str| -> Result<HtmlElement, FrameError> {
        by_id(id)?.dyn_into::<HtmlElement>().map_err(|_| FrameError::MissingElement(id))
    };
    let mut els = Vec::with_capacity(5);
    for field in Field::ALL {
        let input =
            by_id(field.id())?.dyn_into::<HtmlInputElement>().map_err(|_| FrameError::MissingElement(field.id()))?;
        let wrapper = input
            .parent_element()
            .and_then(|p| p.dyn_into::<HtmlElement>().ok())
            .ok_or(FrameError::MissingElement("field wrapper"))?;
        let label = document
            .dom()
            .query_selector(&["label[for=", field.id(), "]"].concat())
            .ok_or(FrameError::MissingElement("label"))?;
        // `aria` 0: the page's markup has `aria-invalid="false"` and no `aria-describedby`.
        els.push(FieldEls { input, wrapper, label, applied: u16::MAX, inline: Vec::new(), aria: 0 });
    }
    let locale = Locale::negotiate(params.locale.as_deref(), browser_languages(&window).iter().map(String::as_str));
    let frame = Frame {
        form: html("card")?,
        brand_icon: by_id("brand-icon")?,
        icons: {
            let svg = by_id("brand-icon")?.parent_element().ok_or(FrameError::MissingElement("brand icon"))?;
            let name = svg.get_attribute("data-icons").ok_or(FrameError::MissingElement("data-icons"))?;
            ["/v1/frame/", &name].concat()
        },
        error: html("error")?,
        document: document.clone(),
        window: window.clone(),
        params,
        key,
        els,
        model: Model::new(FieldOptions::default(), today()),
        locale,
        style: Style::default(),
        theme: Vec::new(),
        hovered: None,
        disabled: false,
        placeholder_rule: None,
        placeholders: FieldTexts::default(),
        labels: FieldTexts::default(),
        aria_labels: FieldTexts::default(),
        show_labels: false,
        last_state: None,
        last_brand: None,
        masked: [false; 5],
        messages: Messages::default(),
        initialized: false,
        init_received: false,
        pending_warning: Vec::new(),
        locale_pending: false,
        fonts_pending: false,
        last_height: 0,
        idempotency_key: None,
        tokenizing: false,
        peers: None,
        collect: None,
        kept_body: None,
    };
    let split = frame.params.split.clone();
    let shared: Shared = Rc::new(RefCell::new(frame));
    let mut listeners = Vec::new();

    for field in Field::ALL {
        let Some(input) = shared.borrow().els.get(field.index()).map(|e| EventTarget::from(e.input.clone())) else {
            continue;
        };
        let f = shared.clone();
        listeners.push(listen(&input, FIELD_EVENTS, move |e| on_field_event(&f, field, &e)));
    }
    let form: EventTarget = shared.borrow().form.clone().into();
    listeners.push(listen(&form, &["submit"], |e| e.dom().prevent_default()));

    let f = shared.clone();
    let win_target: EventTarget = window.clone().into();
    listeners.push(listen(&win_target, &["message"], move |e| {
        if let Some(command) = e.dyn_ref::<MessageEvent>().and_then(|m| accept(&f, m)) {
            run_command(&f, command);
        }
    }));

    if let Some(split) = split {
        let peers = BroadcastChannel::new(&split.channel_name())?;
        let f = shared.clone();
        let target: EventTarget = peers.clone().into();
        listeners.push(listen(&target, &["message"], move |e| {
            if let Some(peer) = e.dyn_ref::<MessageEvent>().and_then(|m| crate::jsread::peer_message(m.data())) {
                with_frame(&f, |fr| fr.on_peer(peer));
            }
        }));
        let mut fr = shared.borrow_mut();
        fr.model.set_only(Some(split.field));
        fr.peers = Some(peers);
        fr.broadcast(&Peer::Hello);
    }

    let f = shared.clone();
    let on_resize = Closure::<dyn FnMut(JsValue)>::new(move |_| {
        if let Ok(mut fr) = f.try_borrow_mut() {
            fr.report_height();
        }
    });
    let observer = ResizeObserver::new(on_resize.as_ref().unchecked_ref())?;
    observer.observe(&shared.borrow().form);

    // Until `init` the frame shows the page's own markup (English labels and placeholders,
    // optional fields hidden); `init` writes texts and state, once: no render pass here.
    shared.borrow().post(&FrameEvent::Hello);
    Ok(Mounted { frame: shared, _listeners: listeners, observer: Some((observer, on_resize)) })
}

/// The events each input listens to, all handled by one closure ([`on_field_event`]): one
/// closure type instead of six keeps the WASM smaller. The closures are `Fn`, not `FnMut`:
/// `focus()` from a handler re-enters the same closure (blur of the field being left), which
/// wasm-bindgen refuses for `FnMut` closures.
const FIELD_EVENTS: &[&str] =
    &["beforeinput", "input", "compositionend", "focus", "blur", "keydown", "mouseenter", "mouseleave"];

fn listen(target: &EventTarget, kinds: &'static [&'static str], handler: impl Fn(Event) + 'static) -> Listener {
    let closure = Closure::<dyn Fn(Event)>::new(handler);
    for kind in kinds {
        target.dom().add_event_listener(kind, closure.as_ref());
    }
    Listener { target: target.clone(), kinds, closure }
}

/// One input's events, dispatched on the event type.
fn on_field_event(frame: &Shared, field: Field, e: &Event) {
    match e.type_().as_str() {
        "beforeinput" => with_frame(frame, |fr| fr.on_beforeinput(field, e)),
        "input" => {
            let input_event = e.dyn_ref::<InputEvent>();
            if !input_event.is_some_and(InputEvent::is_composing) {
                // Browser autofill fires a plain `Event` named `input` (typing, paste, undo and
                // IME fire `InputEvent`s), and the input then matches `:autofill`.
                let autofill = input_event.is_none() || matches_autofill(e.target());
                with_frame(frame, |fr| fr.on_input(field, autofill));
            }
        }
        "compositionend" => with_frame(frame, |fr| fr.on_input(field, false)),
        "mouseenter" | "mouseleave" => with_frame(frame, |fr| {
            fr.on_hover(field, e.type_() == "mouseenter");
            None
        }),
        "focus" => with_frame(frame, |fr| fr.on_focus(field)),
        "blur" => with_frame(frame, |fr| fr.on_blur(field)),
        "keydown" => match e.dyn_ref::<KeyboardEvent>().map(KeyboardEvent::key).as_deref() {
            Some("Enter") => {
                e.dom().prevent_default();
                with_frame(frame, |fr| {
                    fr.post(&FrameEvent::Submit);
                    None
                });
            }
            Some("Escape") => with_frame(frame, |fr| {
                fr.post(&FrameEvent::Escape { field });
                None
            }),
            _ => {}
        },
        _ => {}
    }
}

fn matches_autofill(target: Option<EventTarget>) -> bool {
    let Some(el) = target.and_then(|t| t.dyn_into::<Element>().ok()) else { return false };
    // `:autofill` is the standard name; Chromium before 110 and WebKit know only the prefixed one.
    el.matches(":autofill").unwrap_or(false) || el.matches(":-webkit-autofill").unwrap_or(false)
}

/// Runs `f` on the frame, then focuses the field it returns (outside the borrow, because
/// `focus()` dispatches focus/blur events synchronously).
pub(crate) fn with_frame(frame: &Shared, f: impl FnOnce(&mut Frame) -> Option<Field>) {
    let target = match frame.try_borrow_mut() {
        Ok(mut fr) => f(&mut fr).and_then(|field| fr.els.get(field.index()).map(|e| e.input.clone())),
        Err(_) => None,
    };
    if let Some(input) = target {
        input.dom().focus();
    }
}

fn browser_languages(window: &Window) -> Vec<String> {
    // By index, not with the array's iterator (less WASM).
    let list = window.navigator().languages();
    (0..list.length()).filter_map(|i| list.get(i).as_string()).collect()
}

/// The trust gate for incoming messages: parent window, exact origin, size, shape, version,
/// channel. Everything else is silently ignored.
fn accept(frame: &Shared, event: &MessageEvent) -> Option<Command> {
    let fr = frame.try_borrow().ok()?;
    let parent = fr.window.dom().parent()?;
    let source = event.source()?;
    if !js_sys::Object::is(&source, &parent) || event.origin() != fr.params.parent_origin {
        return None;
    }
    let data = event.data();
    if !data.is_object() {
        return None;
    }
    let json = js_sys::JSON::stringify(&data).ok()?;
    if json.length() as usize > MAX_MESSAGE_CHARS {
        return None;
    }
    crate::jsread::parent_message(data)?.into_command(&fr.params.channel)
}

fn run_command(frame: &Shared, command: Command) {
    match command {
        Command::Init(mut init) => {
            // Only the document's first `init` counts: the loader sends it when the frame has
            // loaded and again in answer to `hello` (docs/postmessage.md); `update` changes options.
            let fonts = core::mem::take(&mut init.fonts);
            let mut first = false;
            with_frame(frame, |fr| {
                first = !core::mem::replace(&mut fr.init_received, true);
                fr.fonts_pending = first && !fonts.is_empty();
                None
            });
            if !first {
                return;
            }
            configure(frame, |fr| fr.init(init));
            // After `init`: with no valid face, the fonts are "loaded" at once, and `ready` must
            // not go before `init` is applied.
            if !fonts.is_empty() {
                crate::fonts::load(frame.clone(), fonts);
            }
        }
        Command::Update(update) => configure(frame, |fr| fr.update(update)),
        Command::Focus(field) => with_frame(frame, |fr| fr.model.enabled(field).then_some(field)),
        Command::Clear(None) => with_frame(frame, |fr| {
            fr.clear();
            None
        }),
        Command::Clear(Some(field)) => with_frame(frame, |fr| {
            fr.clear_one(field);
            None
        }),
        Command::Blur => {
            // Outside the borrow: blurring runs the input's blur handler, which borrows the frame.
            let active = frame.try_borrow().ok().and_then(|fr| fr.window.document()?.active_element());
            if let Some(el) = active {
                el.dom().blur();
            }
        }
        Command::Tokenize { id, fields } => {
            crate::net::tokenize(frame.clone(), id, fields);
        }
    }
}

/// Runs `init` or `update`, then loads the locale table it asks for, if any.
fn configure(frame: &Shared, f: impl FnOnce(&mut Frame) -> Option<Locale>) {
    let mut load = None;
    with_frame(frame, |fr| {
        load = f(fr);
        None
    });
    if let Some(locale) = load {
        load_locale(frame.clone(), locale);
    }
}

/// Fetches `locale-<lang>.json` from the vault (the frame's own origin, `connect-src 'self'`),
/// registers it, and lets the frame show it; on any failure the frame goes on in English.
fn load_locale(frame: Shared, locale: Locale) {
    let Some(window) = frame.try_borrow().ok().map(|fr| fr.window.clone()) else { return };
    let loaded: crate::net::Callback = Box::new(move |table| {
        if let Some(table) = crate::jsread::locale_table(table, locale.lang()) {
            crate::locale::register(locale, table);
        }
        with_frame(&frame, |fr| {
            fr.locale_loaded();
            None
        });
    });
    if locale.is_available() {
        loaded(JsValue::UNDEFINED);
    } else {
        crate::net::get_json(&window, &["/v1/frame/locale-", locale.lang(), ".json"].concat(), loaded);
    }
}

/// Start of the selection as a char index into `value` (the browser counts UTF-16 units).
fn char_index(value: &str, utf16: u32) -> usize {
    let mut units = 0u32;
    for (i, c) in value.chars().enumerate() {
        if units >= utf16 {
            return i;
        }
        units += c.len_utf16() as u32;
    }
    crate::protocol::char_count(value)
}

fn utf16_index(value: &str, chars: usize) -> u32 {
    value.chars().take(chars).map(|c| c.len_utf16() as u32).sum()
}

impl Frame {
    fn input(&self, field: Field) -> Option<&HtmlInputElement> {
        self.els.get(field.index()).map(|e| &e.input)
    }

    /// Split fields: this frame's field (`None` in the single frame).
    pub(crate) fn split_field(&self) -> Option<Field> {
        self.params.split.as_ref().map(|s| s.field)
    }

    /// Split fields: sends a message to the other field frames of the group (nothing in the
    /// single frame). Never to the page: the channel is the vault origin's own.
    pub(crate) fn broadcast(&self, peer: &Peer) {
        if let Some(peers) = &self.peers {
            let _ = peers.post_message(&crate::jswrite::peer(peer));
        }
    }

    /// A message of another field frame of the group; returns the field to focus, if any.
    fn on_peer(&mut self, peer: Peer) -> Option<Field> {
        let own = self.split_field()?;
        match peer {
            Peer::Hello if own == Field::Number => self.broadcast(&Peer::Brand(self.model.brand())),
            Peer::Brand(brand) if own != Field::Number => {
                self.model.set_peer_brand(brand);
                self.render();
            }
            Peer::Collect { nonce } if own != Field::Number => {
                self.model.mark_submitted();
                self.render();
                let value = Zeroizing::new(self.model.value(own).to_owned());
                self.broadcast(&Peer::Value { nonce, field: own, value });
            }
            Peer::Value { nonce, field, value } => {
                if let Some(collect) = &mut self.collect {
                    collect.accept(&nonce, field, value);
                }
            }
            Peer::Advance { from } if crate::split::next(from) == Some(own) => return Some(own),
            Peer::Failed { field } => {
                self.model.mark_submitted();
                self.render();
                return field.filter(|f| *f == own);
            }
            Peer::Tokenized if own == Field::Cvc => self.forget_cvc(),
            _ => {}
        }
        None
    }

    /// Posts an event with `v` and `channel` to the parent's exact origin (the object is built
    /// by [`crate::jswrite`], the same shape as serialising a [`crate::protocol::Envelope`]).
    pub(crate) fn post(&self, event: &FrameEvent) {
        if let Some(parent) = self.window.dom().parent() {
            let message = crate::jswrite::message(&self.params.channel, event);
            let _ = parent.post_message(&message, &self.params.parent_origin);
        }
    }

    /// The `change` payload, with the merchant's message overrides applied.
    pub(crate) fn state(&self) -> ChangeState {
        let mut state = self.model.state(self.locale.text());
        if let Some(error) = &mut state.error {
            if let Some(text) = self.messages.get(&error.code) {
                text.clone_into(&mut error.message);
            }
        }
        state
    }

    /// The message for an error code: the merchant's override, else the locale's text.
    pub(crate) fn message(&self, code: &str) -> String {
        self.messages.get(code).unwrap_or_else(|| self.locale.text().message(code)).to_owned()
    }

    /// Whether the merchant overrides the message of `code`.
    pub(crate) fn overrides(&self, code: &str) -> bool {
        self.messages.get(code).is_some()
    }

    /// `init`; returns the locale whose table must be loaded first (`ready` waits for it).
    fn init(&mut self, mut init: Init) -> Option<Locale> {
        // Option changes keep values of fields that stay.
        let keep: Vec<(Field, String)> = Field::ALL.into_iter().map(|f| (f, self.model.value(f).to_owned())).collect();
        let peer_brand = self.model.peer_brand();
        self.model = Model::new(init.fields, today());
        self.model.set_only(self.split_field());
        self.model.set_peer_brand(peer_brand);
        for (f, v) in keep {
            self.model.set_value(f, v);
        }
        self.messages = core::mem::take(&mut init.messages);
        // `errors: "none"`: the page shows the error; the frame's text stays as the inputs'
        // accessible description (visually hidden, no longer a live region of its own).
        self.error.class_list().dom().toggle("sr", !init.show_errors);
        if init.show_errors {
            self.error.dom().set_attribute("role", "alert");
        } else {
            self.error.dom().remove_attribute("role");
        }
        let rejected = self.configure(Update::from(init));
        self.pending_warning.extend(rejected);
        self.locale_pending = !self.initialized && !self.locale.is_available();
        self.try_ready();
        self.locale_pending.then_some(self.locale)
    }

    /// The web fonts are in, or some failed (not served, invalid, or past the timeout: their
    /// families in `failed`): `ready` may go, then a `font_failed` warning names the failures.
    pub(crate) fn fonts_loaded(&mut self, failed: Vec<String>) {
        self.fonts_pending = false;
        self.report_height();
        self.try_ready();
        if !failed.is_empty() {
            let message = listing("Web fonts not loaded (not registered, invalid or too slow): ", &failed);
            self.post(&FrameEvent::Warning { code: "font_failed", message, properties: failed });
        }
    }

    /// Posts `ready` once nothing it waits for is pending (and the warning about what was not
    /// applied, if anything).
    pub(crate) fn try_ready(&mut self) {
        if !self.locale_pending && !self.fonts_pending {
            let rejected = core::mem::take(&mut self.pending_warning);
            self.announce_ready(rejected);
        }
    }

    /// Posts `ready` (once) and then the warning about what was not applied, if anything.
    fn announce_ready(&mut self, rejected: Vec<String>) {
        if !self.initialized {
            self.initialized = true;
            let height = self.measure_height();
            self.last_height = height;
            // Posted, then kept as the last state: no copy of the state (its `Clone` costs WASM).
            let event = FrameEvent::Ready { height, state: self.state() };
            self.post(&event);
            if let FrameEvent::Ready { state, .. } = event {
                self.last_state = Some(state);
            }
        }
        self.warn(rejected);
    }

    /// A locale table arrived (or could not be loaded: then English stays): show it, and
    /// announce `ready` if `init` was waiting for it.
    pub(crate) fn locale_loaded(&mut self) {
        self.apply_text();
        self.render();
        if !self.initialized {
            self.locale_pending = false;
            self.try_ready();
        }
    }

    /// `update`: changes the given options in place; values, focus and caret stay. Returns the
    /// locale whose table must be loaded (the text switches when it arrives).
    fn update(&mut self, update: Update) -> Option<Locale> {
        let rejected = self.configure(update);
        self.warn(rejected);
        (!self.locale.is_available()).then_some(self.locale)
    }

    /// Applies the options that are present and re-renders; returns the names of the style
    /// entries and theme variables that were not applied.
    fn configure(&mut self, update: Update) -> Vec<String> {
        if let Some(requested) = update.locale.as_deref() {
            let browser = browser_languages(&self.window);
            self.locale = Locale::negotiate(Some(requested), browser.iter().map(String::as_str));
        }
        if let Some(placeholders) = update.placeholders {
            self.placeholders = placeholders;
        }
        if let Some(labels) = update.label {
            self.labels = labels;
        }
        if let Some(aria_labels) = update.aria_label {
            self.aria_labels = aria_labels;
        }
        if let Some(show) = update.show_labels {
            self.show_labels = show;
        }
        if let Some(disabled) = update.disabled {
            self.disabled = disabled;
        }
        let mut rejected = Vec::new();
        if let Some(raw) = &update.style {
            let (mut style, dropped) = Style::sanitize(raw);
            rejected = dropped;
            // Values the browser's CSS parser refuses would be dropped silently by `setProperty`.
            // Vendor-prefixed properties are exempt: they are meant for other engines.
            rejected.extend(style.retain(|d| d.property.starts_with('-') || css_accepts(d.property, &d.value)));
            self.style = style;
            self.apply_placeholder_style();
            for el in &mut self.els {
                el.applied = u16::MAX;
            }
        }
        if let Some(raw) = &update.appearance {
            let (mut theme, dropped) = crate::style::sanitize_appearance(raw);
            rejected.extend(dropped);
            // A custom property takes any value: ask the parser with a property of the same kind.
            theme.retain(|t| {
                let ok = css_accepts(t.variable.checked_as, &t.value);
                if !ok {
                    rejected.push(["appearance.variables.", t.variable.name].concat());
                }
                ok
            });
            self.apply_theme(theme);
        }
        self.apply_text();
        self.render();
        rejected
    }

    /// One `warning` listing what was not applied, if anything.
    fn warn(&self, rejected: Vec<String>) {
        if !rejected.is_empty() {
            let message = listing("Style properties not applied (not allowed, unsafe or invalid values): ", &rejected);
            self.post(&FrameEvent::Warning { code: "style_rejected", message, properties: rejected });
        }
    }

    /// Sets the theme variables on the document element (read by `frame.css`), removing the
    /// previous ones.
    fn apply_theme(&mut self, theme: Vec<ThemeValue>) {
        let Some(root) = self.document.document_element().and_then(|r| r.dyn_into::<HtmlElement>().ok()) else {
            return;
        };
        let style = root.style();
        for t in &self.theme {
            style.dom().remove_property(t.variable.custom_property);
        }
        for t in &theme {
            style.dom().set_property(t.variable.custom_property, &t.value);
        }
        self.theme = theme;
    }

    fn on_hover(&mut self, field: Field, entered: bool) {
        if entered {
            self.hovered = Some(field);
        } else if self.hovered == Some(field) {
            self.hovered = None;
        }
        self.render();
    }

    /// Labels (visible or for screen readers), accessible names, placeholders, `lang` and `dir`,
    /// visibility of optional fields. In a right-to-left locale the document is `dir="rtl"`
    /// (layout, labels, errors); the number, expiry and CVC inputs stay `dir="ltr"` (index.html).
    fn apply_text(&mut self) {
        let text = self.locale.text();
        if let Some(root) = self.document.document_element() {
            root.dom().set_attribute("lang", text.lang);
            root.dom().set_attribute("dir", if self.locale.is_rtl() { "rtl" } else { "ltr" });
        }
        for field in Field::ALL {
            let enabled = self.model.enabled(field);
            let Some(el) = self.els.get(field.index()) else {
                continue;
            };
            el.wrapper.set_hidden(!enabled);
            el.input.set_disabled(!enabled || self.disabled);
            el.label.set_text_content(Some(self.labels.get(field).unwrap_or_else(|| label(text, field))));
            el.label.class_list().dom().toggle("sr", !self.show_labels);
            match self.aria_labels.get(field).filter(|a| !a.trim().is_empty()) {
                Some(name) => {
                    el.input.dom().set_attribute("aria-label", name);
                }
                None => {
                    el.input.dom().remove_attribute("aria-label");
                }
            }
        }
        self.apply_placeholders();
    }

    fn apply_placeholders(&self) {
        let text = self.locale.text();
        let brand = self.model.brand();
        for field in Field::ALL {
            let default = match field {
                Field::Number => text.number_placeholder,
                Field::Expiry => text.expiry_placeholder,
                Field::Cvc => brand.map_or("CVC", |b| b.security_code().name),
                Field::Name => text.name_placeholder,
                Field::PostalCode => text.postal_label,
            };
            let value = self.placeholders.get(field).unwrap_or(default);
            if let Some(input) = self.input(field) {
                input.dom().set_attribute("placeholder", value);
            }
        }
    }

    /// `::placeholder` styles go into one CSSOM rule of the frame's own stylesheet; the
    /// rule text is a constant, the declarations are set property by property.
    fn apply_placeholder_style(&mut self) {
        if self.placeholder_rule.is_none() {
            self.placeholder_rule = self.create_placeholder_rule();
        }
        if let Some(rule) = &self.placeholder_rule {
            for d in crate::style::ALLOWED {
                rule.dom().remove_property(d);
            }
            for d in self.style.get(Variant::Placeholder) {
                rule.dom().set_property(d.property, &d.value);
            }
        }
    }

    fn create_placeholder_rule(&self) -> Option<CssStyleDeclaration> {
        let sheets = self.document.style_sheets();
        let sheet = (0..sheets.length())
            .filter_map(|i| sheets.item(i))
            .find_map(|s| s.dyn_into::<CssStyleSheet>().ok().filter(|s| s.css_rules().is_ok()))?;
        let index = sheet.css_rules().ok()?.length();
        let index = sheet.insert_rule_with_index("form input::placeholder{}", index).ok()?;
        let rule = sheet.css_rules().ok()?.item(index)?;
        Some(rule.dyn_into::<CssStyleRule>().ok()?.style())
    }

    fn clear(&mut self) {
        self.model.clear();
        self.idempotency_key = None;
        self.masked = [false; 5];
        for el in &self.els {
            el.input.set_value("");
        }
        self.render();
    }

    fn on_beforeinput(&mut self, field: Field, event: &Event) -> Option<Field> {
        let event = event.dyn_ref::<InputEvent>()?;
        let kind = self.model.kind(field)?;
        if event.is_composing() {
            return None;
        }
        let inserted: Zeroizing<String>;
        let edit = match event.input_type().as_str() {
            "insertText" | "insertReplacementText" | "insertFromPaste" | "insertFromDrop" | "insertFromYank" => {
                let raw = Zeroizing::new(
                    event
                        .data()
                        .or_else(|| event.data_transfer().map(|dt| dt.dom().get_data("text/plain")))
                        .unwrap_or_default(),
                );
                inserted = Zeroizing::new(crate::model::normalize_width(&raw));
                Edit::Insert(inserted.as_str())
            }
            "deleteContentBackward"
            | "deleteWordBackward"
            | "deleteSoftLineBackward"
            | "deleteHardLineBackward"
            | "deleteByCut"
            | "deleteContent"
            | "deleteByDrag" => Edit::DeleteBackward,
            "deleteContentForward" | "deleteWordForward" | "deleteSoftLineForward" | "deleteHardLineForward" => {
                Edit::DeleteForward
            }
            // Undo/redo, IME and anything new: let the browser do it, `input` reformats.
            _ => return None,
        };
        event.dom().prevent_default();
        let input = self.input(field)?.clone();
        let old = Zeroizing::new(input.value());
        let start = input.dom().selection_start().unwrap_or(0);
        let end = input.dom().selection_end().unwrap_or(start);
        let range = char_index(&old, start)..char_index(&old, end.max(start));
        let out = card::edit(kind, &old, range, edit);
        let at_end = out.caret >= out.text.len();
        input.set_value(&out.text);
        let caret = utf16_index(&out.text, out.caret);
        input.dom().set_selection_range(caret, caret);
        self.model.set_value(field, out.text.clone());
        self.model.set_autofilled(field, false);
        let mut out = out;
        zeroize::Zeroize::zeroize(&mut out.text);
        self.after_change();
        if !at_end || !matches!(edit, Edit::Insert(_)) {
            return None;
        }
        if self.peers.is_some() {
            // The next field is in another frame of the group: it focuses itself.
            if self.model.complete_to_advance(field) {
                self.broadcast(&Peer::Advance { from: field });
            }
            return None;
        }
        self.model.advance_from(field)
    }

    /// Changes we did not intercept (autofill, IME, undo): reformat what the browser wrote.
    /// `autofill`: the browser's autofill wrote it (posts `autofill` once per fill).
    fn on_input(&mut self, field: Field, autofill: bool) -> Option<Field> {
        let input = self.input(field)?.clone();
        let raw = Zeroizing::new(input.value());
        let focused = self.model.focused() == Some(field);
        match self.model.kind(field) {
            Some(kind) => {
                let shown = raw;
                let raw = Zeroizing::new(crate::model::normalize_width(&shown));
                let caret =
                    input.dom().selection_start().map_or(crate::protocol::char_count(&raw), |s| char_index(&raw, s));
                let mut out = card::reformat(kind, &raw, caret);
                if out.text != *shown {
                    input.set_value(&out.text);
                    if focused {
                        let caret = utf16_index(&out.text, out.caret);
                        input.dom().set_selection_range(caret, caret);
                    }
                }
                self.model.set_value(field, out.text.clone());
                zeroize::Zeroize::zeroize(&mut out.text);
            }
            None => self.model.set_value(field, raw.to_string()),
        }
        let autofill = autofill && !self.model.value(field).is_empty();
        if autofill && !self.model.autofilled(field) {
            self.post(&FrameEvent::Autofill { field });
        }
        self.model.set_autofilled(field, autofill);
        // Autofill writes fields that are not focused: mask those at once.
        self.set_masked(field, false);
        if !focused {
            self.mask(field);
        }
        self.after_change();
        None
    }

    fn on_focus(&mut self, field: Field) -> Option<Field> {
        self.model.set_focus(Some(field));
        if self.masked.get(field.index()).copied().unwrap_or(false) {
            if let Some(input) = self.input(field) {
                input.set_value(self.model.value(field));
            }
            self.set_masked(field, false);
        }
        self.post(&FrameEvent::Focus { field });
        self.render();
        None
    }

    fn on_blur(&mut self, field: Field) -> Option<Field> {
        self.model.set_focus(None);
        self.mask(field);
        self.post(&FrameEvent::Blur { field });
        self.render();
        None
    }

    fn set_masked(&mut self, field: Field, masked: bool) {
        if let Some(m) = self.masked.get_mut(field.index()) {
            *m = masked;
        }
    }

    /// While a field is not focused: a valid number shows as `4242 **** **** 4242`, a CVC of
    /// any length as bullets (`•••`). The real value stays in the model only (the input's
    /// `value` property holds the mask; no attribute ever holds either).
    fn mask(&mut self, field: Field) {
        let value = self.model.value(field);
        let shown = match field {
            Field::Number if self.model.check(Field::Number) == Check::Valid => {
                Zeroizing::new(card::mask(value, self.model.brand()))
            }
            Field::Cvc if !value.is_empty() => Zeroizing::new("\u{2022}".repeat(crate::protocol::char_count(value))),
            _ => return,
        };
        if let Some(input) = self.input(field) {
            input.set_value(&shown);
            self.set_masked(field, true);
        }
    }

    /// After a successful tokenize: the CVC leaves the frame (field and memory, zeroized), so
    /// the page cannot mint another token carrying it.
    pub(crate) fn forget_cvc(&mut self) {
        self.clear_one(Field::Cvc);
    }

    /// Empties one field, input and memory (zeroized); the others keep their values.
    fn clear_one(&mut self, field: Field) {
        self.model.clear_field(field);
        self.idempotency_key = None;
        if let Some(input) = self.input(field) {
            input.set_value("");
        }
        self.set_masked(field, false);
        self.render();
    }

    fn after_change(&mut self) {
        self.idempotency_key = None;
        self.render();
    }

    /// Renders the model: brand icon, ARIA, error text, styles; posts `brand`/`change`.
    pub(crate) fn render(&mut self) {
        let brand = self.model.brand();
        let brand_id = brand.map(Brand::id);
        if brand_id != self.last_brand || self.last_state.is_none() {
            // The generic icon is inline; the brand icons load from the sprite (same origin,
            // `img-src 'self'`) the first time one is needed, not on every cold mount.
            let href = match brand.filter(|b| ICONS.contains(b)) {
                Some(b) => [self.icons.as_str(), "#b-", b.id()].concat(),
                None => "#b-generic".to_owned(),
            };
            self.brand_icon.dom().set_attribute("href", &href);
            self.apply_placeholders();
            // Split fields: the number frame tells the page and the other field frames.
            if self.last_state.is_some() && self.split_field().is_none_or(|f| f == Field::Number) {
                self.post(&FrameEvent::Brand { brand: brand_id });
            }
            if self.split_field() == Some(Field::Number) {
                self.broadcast(&Peer::Brand(brand));
            }
            self.last_brand = brand_id;
        }
        let state = self.state();
        let error_field = state.error.as_ref().and_then(|e| e.field);
        // Only changes touch the DOM: the error element is a live region, and rewriting the same
        // text on every keystroke would make screen readers announce it again each time.
        if self.last_state.as_ref().map(|s| &s.error) != Some(&state.error) {
            self.error.set_text_content(state.error.as_ref().map(|e| e.message.as_str()));
        }
        for field in Field::ALL {
            let invalid = self.model.visible_error(field).is_some();
            let variants = self.variants(field, invalid);
            let Some(el) = self.els.get_mut(field.index()) else {
                continue;
            };
            let aria = u8::from(invalid) | (u8::from(error_field == Some(field)) << 1);
            if aria != el.aria {
                el.aria = aria;
                el.input.dom().set_attribute("aria-invalid", if invalid { "true" } else { "false" });
                if error_field == Some(field) {
                    el.input.dom().set_attribute("aria-describedby", "error");
                } else {
                    el.input.dom().remove_attribute("aria-describedby");
                }
            }
            if variants != el.applied {
                el.applied = variants;
                apply_style(&el.input.style(), &self.style, variants, &mut el.inline);
            }
        }
        if self.last_state.as_ref() != Some(&state) {
            let event = FrameEvent::Change { state };
            if self.initialized {
                self.post(&event);
            }
            if let FrameEvent::Change { state } = event {
                self.last_state = Some(state);
            }
        }
    }

    /// The style variants that apply to `field` now, as a bit set ([`Variant::bit`]).
    fn variants(&self, field: Field, invalid: bool) -> u16 {
        let flags = [
            (Variant::Base, true),
            (Variant::Empty, self.model.value(field).is_empty()),
            (Variant::Complete, self.model.check(field) == Check::Valid),
            (Variant::Autofilled, self.model.autofilled(field)),
            (Variant::Invalid, invalid),
            (Variant::Hover, self.hovered == Some(field)),
            (Variant::Focus, self.model.focused() == Some(field)),
            (Variant::Disabled, self.disabled),
        ];
        flags.into_iter().filter(|(_, on)| *on).fold(0, |bits, (v, _)| bits | v.bit())
    }

    fn measure_height(&self) -> u32 {
        let bottom = self.form.get_bounding_client_rect().bottom();
        // Rounded up (`f64::ceil` is not in `core`); `as` saturates, NaN gives 0.
        let bottom = bottom.max(0.0);
        let whole = bottom as u32;
        if f64::from(whole) < bottom { whole.saturating_add(1) } else { whole }
    }

    fn report_height(&mut self) {
        let height = self.measure_height();
        if self.initialized && height != self.last_height {
            self.last_height = height;
            self.post(&FrameEvent::Resize { height });
        }
    }
}

/// `prefix`, then `items` separated by `, `. By hand: `[String]::join` would link a second copy
/// of the generic join code beside the one `[&str]::concat` uses.
fn listing(prefix: &str, items: &[String]) -> String {
    let mut out = String::from(prefix);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(item);
    }
    out
}

fn label(text: &Text, field: Field) -> &'static str {
    match field {
        Field::Number => text.number_label,
        Field::Expiry => text.expiry_label,
        Field::Cvc => text.cvc_label,
        Field::Name => text.name_label,
        Field::PostalCode => text.postal_label,
    }
}

/// Whether the browser's CSS parser accepts `value` for `property` (`CSS.supports`).
fn css_accepts(property: &str, value: &str) -> bool {
    crate::js::css_supports(property, value)
}

/// Layers the variants whose bits are set (in [`Variant::ALL`] order, later wins) onto an
/// input through the CSSOM.
fn apply_style(target: &CssStyleDeclaration, style: &Style, bits: u16, inline: &mut Vec<&'static str>) {
    for property in inline.drain(..) {
        target.dom().remove_property(property);
    }
    for variant in Variant::ALL {
        if variant != Variant::Placeholder && bits & variant.bit() != 0 {
            for d in style.get(variant) {
                target.dom().set_property(d.property, &d.value);
                inline.push(d.property);
            }
        }
    }
}
