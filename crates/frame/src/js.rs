//! DOM calls that cannot throw with the arguments the frame gives them, bound without
//! wasm-bindgen's `catch`.
//!
//! web-sys declares most DOM methods `catch`: each call goes through a JS `try`/`catch` wrapper
//! (`handleError` in the glue), and the WASM checks for a stored exception after it and builds
//! a `Result`, which every caller then drops. For the calls below the specifications leave no
//! exception to catch with what the frame passes:
//! - attribute names, class tokens and selectors are constants of this crate, valid by
//!   construction (`setAttribute`, `removeAttribute`, `classList.toggle`, `querySelector`);
//! - style properties are set on inline styles and on a rule of the frame's own sheet, never
//!   on a read-only computed style (`setProperty`, `removeProperty`);
//! - the inputs are `type="text"`, which supports selection (`selectionStart`,
//!   `selectionEnd`, `setSelectionRange`);
//! - listeners are functions; `preventDefault`, `focus`, `blur`, `window.parent`, `getData`,
//!   `setTimeout`, `CSS.supports` and the frame's own `location.hash`/`search` do not throw;
//!   `response.json()` and `fontFace.load()` report failure by rejecting their promise.
//!
//! Calls that can throw on what a page or a browser gives the frame keep web-sys's `catch`
//! binding: `postMessage` (the target origin, a closed channel), `JSON.stringify` and
//! `Reflect` (a parent's message), `matches` (a pseudo-class a browser does not know),
//! `insertRule`, `cssRules`, `FontFaceSet.add`.
//!
//! A JS exception from a binding here would unwind through the WASM without running Rust code
//! (a `RefCell` borrow would stay taken): so nothing that can throw belongs in this module.

#[allow(unused_imports)]
use crate::prelude::*;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// Any DOM object, for calls by name (`this.setAttribute(…)`); reached through [`AsDom`].
    pub(crate) type Dom;

    #[wasm_bindgen(method, js_name = setAttribute)]
    pub(crate) fn set_attribute(this: &Dom, name: &str, value: &str);

    #[wasm_bindgen(method, js_name = removeAttribute)]
    pub(crate) fn remove_attribute(this: &Dom, name: &str);

    /// `element.classList.toggle(token, force)`.
    #[wasm_bindgen(method, js_name = toggle)]
    pub(crate) fn toggle(this: &Dom, token: &str, force: bool) -> bool;

    /// `document.querySelector(selector)`.
    #[wasm_bindgen(method, js_name = querySelector)]
    pub(crate) fn query_selector(this: &Dom, selector: &str) -> Option<web_sys::Element>;

    /// `style.setProperty(property, value)` on an inline style or a rule's style.
    #[wasm_bindgen(method, js_name = setProperty)]
    pub(crate) fn set_property(this: &Dom, property: &str, value: &str);

    #[wasm_bindgen(method, js_name = removeProperty)]
    pub(crate) fn remove_property(this: &Dom, property: &str);

    #[wasm_bindgen(method, js_name = addEventListener)]
    pub(crate) fn add_event_listener(this: &Dom, kind: &str, listener: &JsValue);

    #[wasm_bindgen(method, js_name = removeEventListener)]
    pub(crate) fn remove_event_listener(this: &Dom, kind: &str, listener: &JsValue);

    #[wasm_bindgen(method, js_name = preventDefault)]
    pub(crate) fn prevent_default(this: &Dom);

    #[wasm_bindgen(method)]
    pub(crate) fn focus(this: &Dom);

    #[wasm_bindgen(method)]
    pub(crate) fn blur(this: &Dom);

    /// `window.parent` (null for a top-level window).
    #[wasm_bindgen(method, getter)]
    pub(crate) fn parent(this: &Dom) -> Option<web_sys::Window>;

    /// A text input's `selectionStart` (null when it has no selection API).
    #[wasm_bindgen(method, getter, js_name = selectionStart)]
    pub(crate) fn selection_start(this: &Dom) -> Option<u32>;

    #[wasm_bindgen(method, getter, js_name = selectionEnd)]
    pub(crate) fn selection_end(this: &Dom) -> Option<u32>;

    #[wasm_bindgen(method, js_name = setSelectionRange)]
    pub(crate) fn set_selection_range(this: &Dom, start: u32, end: u32);

    /// `dataTransfer.getData(format)`.
    #[wasm_bindgen(method, js_name = getData)]
    pub(crate) fn get_data(this: &Dom, format: &str) -> String;

    /// `window.setTimeout(f, ms)`.
    #[wasm_bindgen(method, js_name = setTimeout)]
    pub(crate) fn set_timeout(this: &Dom, f: &JsValue, ms: i32) -> i32;

    /// `response.json()`: a body that cannot be read or parsed rejects the promise.
    #[wasm_bindgen(method)]
    pub(crate) fn json(this: &Dom) -> js_sys::Promise;

    /// `fontFace.load()`: a face that fails to load rejects the promise.
    #[wasm_bindgen(method)]
    pub(crate) fn load(this: &Dom) -> js_sys::Promise;

    /// `location.hash` of the frame's own location.
    #[wasm_bindgen(method, getter)]
    pub(crate) fn hash(this: &Dom) -> String;

    /// `location.search` of the frame's own location.
    #[wasm_bindgen(method, getter)]
    pub(crate) fn search(this: &Dom) -> String;

    /// `CSS.supports(property, value)`: false for what the browser cannot parse.
    #[wasm_bindgen(js_namespace = CSS, js_name = supports)]
    pub(crate) fn css_supports(property: &str, value: &str) -> bool;
}

/// Any DOM value seen as [`Dom`], for the bindings above.
pub(crate) trait AsDom: JsCast {
    fn dom(&self) -> &Dom {
        self.unchecked_ref()
    }
}

impl<T: JsCast> AsDom for T {}
