//! The card frame: the document the vault serves at `/v1/frame`, built by Trunk.
//!
//! Layout (pure logic first, the browser at the edge):
//! - [`protocol`]: postMessage v1 wire types and the URL-fragment parameters.
//! - [`style`]: the merchant style allowlist and value sanitiser.
//! - [`split`]: split fields (one frame per field): the field frames' messages and the
//!   leader's collection of the values at tokenize time.
//! - [`locale`]: labels, placeholders and error messages in nineteen languages (English built in).
//! - `dom` / `net` (wasm32 only): the inputs, events, CSSOM styling, and `POST /v1/tokens`.
//!
//! Invariant: the PAN and CVC never leave this crate except in the body of the
//! `POST /v1/tokens` request to the frame's own origin; they are never written to a
//! message to the page, a URL, the console or storage. Split fields: a field frame hands its
//! value to the number frame of its group (another instance of this crate, same origin) on the
//! group's `BroadcastChannel`, at tokenize time only ([`split`]); the PAN never leaves the number
//! frame but in the request body.
#![forbid(unsafe_code)]
// Without the default `std` feature (Trunk's build, Cargo.toml) the crate is `no_std` + `alloc`.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

/// What the standard prelude would bring in, for the `no_std` build.
mod prelude {
    #[allow(unused_imports)]
    pub(crate) use alloc::{borrow::ToOwned, boxed::Box, format, string::String, string::ToString, vec, vec::Vec};
}

/// The `no_std` build's allocator: a sorted free list that coalesces neighbours (`lol_alloc`),
/// about a sixth of the code of the dlmalloc `std` uses on this target. The frame allocates
/// little (a few strings and vectors per keystroke), so a search of the free list per
/// allocation costs nothing measurable. The lock is never contended: the frame has one thread.
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

/// The `no_std` build's panic handler: trap, as `panic = "abort"` does, without formatting the
/// message (nothing would show it: the frame writes nothing to the console about a panic).
/// `scripts/build-frame.sh` goes further with `panic = immediate-abort`: a panic traps where it
/// happens and this handler is never reached, but the language still asks for one.
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

pub mod locale;
pub mod model;
pub mod protocol;
pub mod split;
pub mod style;

#[cfg(target_arch = "wasm32")]
mod dom;
#[cfg(target_arch = "wasm32")]
mod fonts;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
mod jsread;
/// The frame → parent messages as JS objects (public for the DOM tests, which compare them
/// with the serde shapes of [`protocol`]).
#[cfg(target_arch = "wasm32")]
pub mod jswrite;
#[cfg(target_arch = "wasm32")]
mod net;

#[cfg(target_arch = "wasm32")]
pub use dom::{FrameError, Mounted, boot, mount};

/// Registers a locale table given as the JSON value of `static/frame/locale-<lang>.json`, as if
/// the frame had fetched it (for the DOM tests, which have no vault to fetch from); false when
/// the value is not a complete table for `lang`.
#[cfg(target_arch = "wasm32")]
pub fn register_locale_table(value: wasm_bindgen::JsValue, lang: &str) -> bool {
    let Some(locale) = locale::Locale::from_tag(lang) else { return false };
    match jsread::locale_table(value, locale.lang()) {
        Some(table) => {
            locale::register(locale, table);
            true
        }
        None => false,
    }
}
