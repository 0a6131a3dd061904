//! The card domain: everything the card frame and the vault need to know about payment cards,
//! and nothing about browsers, networks or storage.
//!
//! - [`detect`]: brand detection from IIN ranges, with an explicit "still ambiguous" answer.
//! - [`validate_number`], [`validate_expiry`], [`validate_cvc`]: as-you-type checks with three
//!   states ([`FieldState`]) and stable [`Reason`] codes.
//! - [`Pan`], [`Cvc`], [`Expiry`], [`Card`]: parsed values ("parse, don't validate"). `Pan` and
//!   `Cvc` are secrets: zeroized on drop, masked `Debug`/`Display`, constant-time equality,
//!   no `Serialize`.
//! - [`edit`], [`reformat`]: formatting as you type with caret mapping.
//! - [`mask`], [`Pan::last4`], [`Pan::bin`]: what may be displayed.
//!
//! There is no clock: expiry checks take "today" as a [`YearMonth`] from the caller.
//!
//! # Example
//! ```
//! use card::{edit, validate_number, Brand, Edit, FieldKind};
//! let typed = edit(FieldKind::Number, "4242 4242 4242 424", 18..18, Edit::Insert("2"));
//! assert_eq!(typed.text, "4242 4242 4242 4242");
//! let check = validate_number(&typed.text);
//! assert!(check.state.is_valid());
//! assert_eq!(check.detected.brand(), Some(Brand::Visa));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// `no_std` (with `alloc`) only without the default `std` feature: the frame's WASM build.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

/// What the standard prelude would bring in, for the `no_std` build.
mod prelude {
    pub(crate) use alloc::{borrow::ToOwned, string::String, vec::Vec};
}

mod brand;
mod card;
mod cvc;
mod expiry;
mod format;
mod number;
mod state;
mod test_cards;

pub use crate::brand::{Brand, BrandSet, Detected, LuhnPolicy, MAX_PAN_LENGTH, MIN_PAN_LENGTH, SecurityCode, detect};
pub use crate::card::{Card, CardError, CardField};
pub use crate::cvc::{Cvc, CvcError, MAX_CVC_LENGTH, validate_cvc};
pub use crate::expiry::{Expiry, ExpiryError, MAX_YEARS_AHEAD, YearMonth, validate_expiry};
pub use crate::format::{Edit, FieldKind, Formatted, edit, reformat};
pub use crate::number::{NumberCheck, Pan, PanError, digits, mask, validate_number};
pub use crate::state::{FieldState, Reason};
pub use crate::test_cards::{TEST_CARDS, is_test_card};
