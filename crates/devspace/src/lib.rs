//! Dev Space: the merchant's security console, served by the vault on its own listener.
//!
//! This crate holds the pages and handlers ([`web::router`]), the sign-in primitives
//! ([`password`] argon2id hashing, [`totp`] RFC 6238, [`recovery`] codes, [`session`] ids,
//! cookies and CSRF tokens) and the role policy ([`policy`]). It does no storage itself: every
//! record and vault operation goes through the [`backend::Backend`] trait, which the vault
//! implements over its store (`vault::devspace`). The arrow points one way: the vault depends
//! on this crate, never the reverse.
//!
//! Invariants: passwords, TOTP secrets, recovery codes, session ids and API-key secrets live
//! in [`secret::Secret`] types (zeroized, masked `Debug`) and never reach a log line or a URL;
//! only hashes of session ids, link tokens and recovery codes are handed to the backend.
#![forbid(unsafe_code)]

pub mod backend;
pub mod pages;
pub mod password;
pub mod policy;
pub mod recovery;
pub mod secret;
pub mod session;
pub mod totp;
pub mod web;

pub use backend::{Backend, BackendError, BackendFuture};
pub use policy::{Action, Role};
pub use secret::Secret;
pub use web::{ClientIp, Settings, router};
