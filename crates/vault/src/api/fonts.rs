//! Web fonts for the card frame (issue 12): merchants register WOFF2 files through the admin API
//! (`POST /v1/fonts`, `GET /v1/fonts`, `DELETE /v1/fonts/{id}`, admin role), and the vault serves
//! them from its own origin at `GET /v1/frame/fonts/<hash>.woff2`, so the frame's CSP keeps
//! `font-src 'self'` and no third-party font host enters the card page (SAQ-A scope).
//!
//! An upload is checked before it is stored: `Content-Type: font/woff2`, at most
//! [`MAX_FONT_BYTES`], and a WOFF2 header that describes this very file ([`check_woff2`]). The
//! bytes are never decoded here: the browser's WOFF2 decoder and OpenType sanitiser (OTS in
//! Chromium) are what run them, in the sandboxed frame.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::{json_response, principal, read_body_up_to};
use crate::crypto::random_base62;
use crate::keys::Permission;
use crate::state::{AppState, RequestCtx};
use crate::store::{FontRecord, StoreError};

/// Largest font file accepted (a Latin subset of a text face is 15–60 KiB).
pub const MAX_FONT_BYTES: usize = 256 * 1024;

/// Most fonts a merchant may register per mode (8 MiB at most; a checkout uses a few faces).
pub const MAX_FONTS: u32 = 32;

/// Most tables a WOFF2 font may declare (real fonts have 10–30; the format allows 65,535).
pub const MAX_TABLES: u16 = 64;

const WOFF2_HEADER: usize = 48;

/// Why bytes are not an acceptable WOFF2 file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FontError {
    /// Shorter than the 48-byte header, or no `wOF2` signature.
    NotWoff2,
    /// The header's `length` is not the size of the file.
    LengthMismatch,
    /// No table, or more than [`MAX_TABLES`].
    TableCount,
    /// Another header field is impossible (flavor, reserved, sizes or offsets past the end).
    BadHeader,
}

impl FontError {
    /// The API error code.
    pub fn code(self) -> &'static str {
        match self {
            Self::NotWoff2 => "font_not_woff2",
            Self::LengthMismatch | Self::TableCount | Self::BadHeader => "font_header_invalid",
        }
    }
}

/// What the header of a checked WOFF2 file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Woff2Header {
    /// `0x00010000` (TrueType outlines) or `OTTO` (CFF).
    pub flavor: u32,
    /// Number of font tables.
    pub num_tables: u16,
}

fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).and_then(|s| s.try_into().ok()).map_or(0, u32::from_be_bytes)
}

fn be16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2).and_then(|s| s.try_into().ok()).map_or(0, u16::from_be_bytes)
}

/// Checks the WOFF2 header (W3C WOFF2, 3.1) against the file: the `wOF2` signature, a single
/// font's flavor (no collections), `length` equal to the file's size, 1–[`MAX_TABLES`] tables,
/// reserved zero, compressed data and the metadata and private blocks inside the file.
///
/// # Errors
/// [`FontError`].
pub fn check_woff2(bytes: &[u8]) -> Result<Woff2Header, FontError> {
    if bytes.len() < WOFF2_HEADER || !bytes.starts_with(b"wOF2") {
        return Err(FontError::NotWoff2);
    }
    let len = u64::try_from(bytes.len()).map_err(|_| FontError::BadHeader)?;
    if u64::from(be32(bytes, 8)) != len {
        return Err(FontError::LengthMismatch);
    }
    let num_tables = be16(bytes, 12);
    if num_tables == 0 || num_tables > MAX_TABLES {
        return Err(FontError::TableCount);
    }
    let flavor = be32(bytes, 4);
    let within = |offset: u32, size: u32| u64::from(offset) + u64::from(size) <= len;
    let block_ok =
        |offset: u32, size: u32| (offset == 0 && size == 0) || (offset >= 48 && size > 0 && within(offset, size));
    let compressed = be32(bytes, 20);
    let ok = matches!(flavor, 0x0001_0000 | 0x4F54_544F)
        && be16(bytes, 14) == 0
        && be32(bytes, 16) > 0
        && compressed > 0
        && u64::from(compressed) + 48 + u64::from(num_tables) <= len
        && block_ok(be32(bytes, 28), be32(bytes, 32))
        && block_ok(be32(bytes, 40), be32(bytes, 44));
    if ok { Ok(Woff2Header { flavor, num_tables }) } else { Err(FontError::BadHeader) }
}

/// A CSS family name the frame can use unquoted-safe: 1–64 characters, a letter first, then
/// letters, digits, spaces, `-` and `_` (no quotes, commas or semicolons: it goes into a
/// `font-family` list and a `FontFace`).
pub fn parse_family(family: &str) -> Option<&str> {
    let ok = (1..=64).contains(&family.len())
        && family.starts_with(|c: char| c.is_ascii_alphabetic())
        && !family.ends_with(' ')
        && family.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'-' | b'_'));
    ok.then_some(family)
}

/// A CSS weight: 100–900 in steps of 100 (default 400).
pub fn parse_weight(weight: Option<&str>) -> Option<u16> {
    let w: u16 = weight.unwrap_or("400").parse().ok()?;
    ((100..=900).contains(&w) && w % 100 == 0).then_some(w)
}

/// `normal` (default) or `italic`.
pub fn parse_style(style: Option<&str>) -> Option<&'static str> {
    match style.unwrap_or("normal") {
        "normal" => Some("normal"),
        "italic" => Some("italic"),
        _ => None,
    }
}

/// The served file's name: 32 letters `a`–`p` (128 bits of the SHA-256; letters only, so the
/// URL never holds a digit run the card-number check on URLs would refuse).
pub fn content_name(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    crate::crypto::letters(digest.as_ref().get(..16).unwrap_or_default())
}

/// The path the vault serves a font at.
pub fn font_path(hash: &str) -> String {
    format!("/v1/frame/fonts/{hash}.woff2")
}

fn font_json(f: &FontRecord) -> serde_json::Value {
    json!({
        "id": f.id,
        "object": "font",
        "family": f.family,
        "weight": f.weight,
        "style": f.style,
        "size": f.size,
        "url": font_path(&f.hash),
        "created": f.created,
    })
}

/// Query of `POST /v1/fonts`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    family: Option<String>,
    weight: Option<String>,
    style: Option<String>,
}

/// `POST /v1/fonts?family=…&weight=…&style=…` with the WOFF2 file as the body.
pub async fn upload(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ManageFonts).await?;
    // The body is read before the other checks answer: a refusal that leaves up to 256 KiB
    // unread on the connection would make the server close it while the client still sends.
    let bytes = read_body_up_to(&state, &headers, body, MAX_FONT_BYTES).await?;
    let bytes = bytes.expose().to_vec();
    let woff2 = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("font/woff2"));
    if !woff2 {
        return Err(ApiError::media_type());
    }
    let invalid = |message| ApiError::invalid("parameter_invalid", message);
    let Query(q) = query.map_err(|_| invalid("Only family, weight and style may be given.").param("family"))?;
    let family = q
        .family
        .as_deref()
        .and_then(parse_family)
        .ok_or_else(|| {
            invalid("family is 1–64 letters, digits, spaces, - or _, starting with a letter.").param("family")
        })?
        .to_owned();
    let weight = parse_weight(q.weight.as_deref())
        .ok_or_else(|| invalid("weight is 100–900 in steps of 100.").param("weight"))?;
    let style = parse_style(q.style.as_deref()).ok_or_else(|| invalid("style is normal or italic.").param("style"))?;
    check_woff2(&bytes).map_err(|e| {
        ApiError::invalid(e.code(), "The body is not a WOFF2 font whose header matches the file.").param("body")
    })?;
    let id = format!("font_{}", random_base62(20).map_err(|_| ApiError::internal())?);
    let font = FontRecord {
        id,
        merchant_id: p.key.merchant_id.clone(),
        mode: p.key.mode,
        family,
        weight,
        style: style.to_owned(),
        hash: content_name(&bytes),
        size: u32::try_from(bytes.len()).map_err(|_| ApiError::too_large())?,
        created: state.now(),
    };
    let mut e = state.event("font.created", "success", &ctx, Some(&p.key));
    e.detail = json!({ "font_id": font.id, "family": font.family, "weight": weight, "style": style });
    match state.store.insert_font(font.clone(), bytes, e.clone(), MAX_FONTS).await {
        Ok(true) => {
            // Logged once stored (a refused upload created nothing).
            state.log_audit(&e);
            Ok(json_response(StatusCode::CREATED, &font_json(&font)))
        }
        Ok(false) => Err(ApiError::invalid(
            "font_limit_reached",
            "This account has the most fonts it may register in this mode (32); delete one first.",
        )),
        Err(StoreError::Conflict) => Err(ApiError::font_exists()),
        Err(e) => Err(e.into()),
    }
}

/// `GET /v1/fonts`: the merchant's fonts in the key's mode (at most [`MAX_FONTS`], so one page).
pub async fn list(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ManageFonts).await?;
    let fonts = state.store.list_fonts(&p.key.merchant_id, p.key.mode).await?;
    let data: Vec<_> = fonts.iter().map(font_json).collect();
    Ok(json_response(StatusCode::OK, &json!({ "object": "list", "data": data })))
}

/// `DELETE /v1/fonts/{id}`. The file stops being served unless another face has the same bytes.
pub async fn delete(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ManageFonts).await?;
    let mut e = state.event("font.deleted", "success", &ctx, Some(&p.key));
    e.detail = json!({ "font_id": id });
    if !state.store.delete_font(&id, &p.key.merchant_id, p.key.mode, e.clone()).await? {
        return Err(ApiError::not_found());
    }
    state.log_audit(&e);
    Ok(json_response(StatusCode::OK, &json!({ "id": id, "object": "font", "deleted": true })))
}

/// `GET /v1/frame/fonts/{hash}.woff2`: a registered font's bytes, from the vault's own origin
/// (the frame's `font-src 'self'`). Public like the frame's other files, named by content, so
/// cached for a year; `Cross-Origin-Resource-Policy: same-origin` keeps other sites from using
/// the vault as their font host.
pub async fn serve(State(state): State<AppState>, Path(file): Path<String>) -> Result<Response, ApiError> {
    let hash = file
        .strip_suffix(".woff2")
        .filter(|h| h.len() == 32 && h.bytes().all(|b| matches!(b, b'a'..=b'p')))
        .ok_or_else(ApiError::not_found)?;
    let bytes = state.store.font_data(hash).await?.ok_or_else(ApiError::not_found)?;
    let mut response = ([(header::CONTENT_TYPE, "font/woff2")], bytes).into_response();
    response.extensions_mut().insert(super::frame::Subresource);
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(super::frame::IMMUTABLE));
    h.insert(HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("same-origin"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WOFF2 header (and padding) as a font tool would write it.
    fn woff2(len: usize, tables: u16) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[..4].copy_from_slice(b"wOF2");
        b[4..8].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        b[8..12].copy_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
        b[12..14].copy_from_slice(&tables.to_be_bytes());
        b[16..20].copy_from_slice(&1000u32.to_be_bytes());
        b[20..24].copy_from_slice(&u32::try_from(len - 48 - usize::from(tables)).unwrap().to_be_bytes());
        b
    }

    #[test]
    fn checks_the_woff2_header_against_the_file() {
        assert_eq!(check_woff2(&woff2(200, 3)), Ok(Woff2Header { flavor: 0x0001_0000, num_tables: 3 }));
        let set = |mut b: Vec<u8>, at: usize, v: &[u8]| {
            b[at..at + v.len()].copy_from_slice(v);
            b
        };
        let cases: &[(Vec<u8>, FontError)] = &[
            (vec![], FontError::NotWoff2),
            (b"wOF2".to_vec(), FontError::NotWoff2),
            (set(woff2(200, 3), 0, b"wOFF"), FontError::NotWoff2),
            (set(woff2(200, 3), 8, &201u32.to_be_bytes()), FontError::LengthMismatch),
            (woff2(200, 3)[..199].to_vec(), FontError::LengthMismatch),
            (woff2(200, 0), FontError::TableCount),
            (woff2(200, MAX_TABLES + 1), FontError::TableCount),
            (set(woff2(200, 3), 4, b"ttcf"), FontError::BadHeader),
            (set(woff2(200, 3), 14, &1u16.to_be_bytes()), FontError::BadHeader),
            (set(woff2(200, 3), 20, &200u32.to_be_bytes()), FontError::BadHeader),
            (set(woff2(200, 3), 28, &190u32.to_be_bytes()), FontError::BadHeader),
            (set(set(woff2(200, 3), 40, &190u32.to_be_bytes()), 44, &20u32.to_be_bytes()), FontError::BadHeader),
        ];
        for (i, (bytes, want)) in cases.iter().enumerate() {
            assert_eq!(check_woff2(bytes), Err(*want), "case {i}");
        }
        let real = include_bytes!("../../tests/fixtures/open-sans-regular.woff2");
        assert_eq!(check_woff2(real).map(|h| h.num_tables), Ok(17));
    }

    #[test]
    fn face_names() {
        for ok in ["Inter", "Open Sans", "Font-2_x"] {
            assert_eq!(parse_family(ok), Some(ok));
        }
        for bad in ["", " Inter", "Inter ", "2Font", "A;b", "A,b", "'A'", "A\"", &"a".repeat(65)] {
            assert_eq!(parse_family(bad), None, "{bad}");
        }
        assert_eq!(parse_weight(None), Some(400));
        assert_eq!(parse_weight(Some("700")), Some(700));
        for bad in ["0", "450", "1000", "bold", ""] {
            assert_eq!(parse_weight(Some(bad)), None, "{bad}");
        }
        assert_eq!(parse_style(None), Some("normal"));
        assert_eq!(parse_style(Some("italic")), Some("italic"));
        assert_eq!(parse_style(Some("oblique")), None);
        let name = content_name(b"x");
        assert!(name.len() == 32 && name.bytes().all(|b| (b'a'..=b'p').contains(&b)));
        assert_eq!(font_path(&name), format!("/v1/frame/fonts/{name}.woff2"));
    }
}
