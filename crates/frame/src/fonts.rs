//! Web fonts (`fonts` option): each valid face is added to the frame's document as a `FontFace`
//! whose source is the vault's own URL (`font-src 'self'`: nothing from another origin), and
//! `ready` waits until every face loaded or failed, or [`FONT_TIMEOUT_MS`] passed, so a broken
//! or slow font never holds the card form back (the frame then reports a `font_failed` warning
//! and shows the merchant's fallback font).

use alloc::rc::Rc;
use core::cell::Cell;

use js_sys::{Array, Promise};
use wasm_bindgen::JsValue;
use web_sys::{FontFace, FontFaceDescriptors, FontFaceLoadStatus};

use crate::dom::{Shared, with_frame};
use crate::js::AsDom;
use crate::net::Callback;
use crate::prelude::*;
use crate::protocol::{FontSource, MAX_FONTS};

/// How long `ready` waits for the fonts.
pub(crate) const FONT_TIMEOUT_MS: i32 = 3000;

/// Adds and loads `fonts`, then tells the frame (which posts `ready` if it was waiting).
pub(crate) fn load(frame: Shared, fonts: Vec<FontSource>) {
    let Some((window, document)) =
        frame.try_borrow().ok().and_then(|fr| Some((fr.window.clone(), fr.window.document()?)))
    else {
        return;
    };
    let mut failed = Vec::new();
    let mut faces = Vec::new();
    let loads = Array::new();
    for (i, f) in fonts.into_iter().enumerate() {
        let face = (i < MAX_FONTS && f.is_valid()).then(|| {
            let d = FontFaceDescriptors::new();
            d.set_weight(f.weight.as_deref().unwrap_or("400"));
            d.set_style(f.style.as_deref().unwrap_or("normal"));
            let face = FontFace::new_with_str_and_descriptors(&f.family, &["url(", &f.src, ")"].concat(), &d).ok()?;
            document.fonts().add(&face).ok()?;
            let load: JsValue = face.dom().load().into();
            loads.push(&load);
            Some(face)
        });
        match face.flatten() {
            Some(face) => faces.push((face, f.family)),
            None => failed.push(f.family),
        }
    }
    let none = faces.is_empty();
    let done: Callback = Box::new(move |_| {
        failed
            .extend(faces.into_iter().filter(|(face, _)| face.status() != FontFaceLoadStatus::Loaded).map(|(_, f)| f));
        with_frame(&frame, |fr| {
            fr.fonts_loaded(failed);
            None
        });
    });
    if none {
        done(JsValue::UNDEFINED);
    } else {
        // Whichever comes first, every face settled or the timeout, runs `done`; the other finds
        // it gone.
        let done = Rc::new(Cell::new(Some(done)));
        let first = |done: Rc<Cell<Option<Callback>>>| -> Callback {
            Box::new(move |v| {
                if let Some(f) = done.take() {
                    f(v);
                }
            })
        };
        crate::net::then(&Promise::all_settled(&loads), first(done.clone()));
        crate::net::after(&window, FONT_TIMEOUT_MS, first(done));
    }
}
