//! Serving the card frame: `GET /v1/loader.js` (evergreen), `GET /v1/loader.<hash>.js`
//! (versioned, immutable), `GET /v1/loader-manifest.json` (its SRI hash), `GET /v1/frame?key=pk_…`
//! (index.html with a computed CSP whose `frame-ancestors` are the key's allowed origins) and
//! `GET /v1/frame/{file}` (the frame's static files). Every file is sent Brotli- or
//! gzip-compressed when the client accepts it (precompressed, [`super::assets`]).

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::assets::Asset;
use super::error::ApiError;
use crate::crypto::sha256_b64;
use crate::keys::{self, KeyKind};
use crate::state::AppState;

fn frame_dir(state: &AppState) -> Option<PathBuf> {
    state.config.frame_dir.clone()
}

/// Whether a file name is a plain name inside the frame directory (no traversal, no dotfiles).
pub fn safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Content type by extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A file of the frame directory, precompressed (see [`super::assets`]).
async fn frame_asset(state: &AppState, name: &str) -> Result<Arc<Asset>, ApiError> {
    let dir = frame_dir(state).ok_or_else(ApiError::not_found)?;
    if !safe_file_name(name) {
        return Err(ApiError::not_found());
    }
    state.frame_assets.get(&dir, name).await.ok_or_else(ApiError::not_found)
}

/// An answer with `asset`'s bytes in the best coding `Accept-Encoding` allows: `Content-Encoding`
/// when compressed, and `Vary: Accept-Encoding` whenever a compressed form exists, so caches keep
/// the forms apart. `Content-Length` is the length of the bytes sent.
fn encoded(asset: &Asset, request: &HeaderMap, content_type: &'static str) -> Response {
    let accept = request.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok());
    let (encoding, body) = asset.negotiate(accept);
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    if !content_type.starts_with("text/html") {
        response.extensions_mut().insert(Subresource);
    }
    let headers = response.headers_mut();
    if let Some(coding) = encoding.header() {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    if asset.brotli.is_some() || asset.gzip.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    response
}

/// Marks an answer that is never a document (script, WASM, style, font): `Permissions-Policy`
/// applies only to documents, so the vault leaves it off these answers (≈ 0.8 KB of headers
/// each, on every file of a cold mount).
#[derive(Clone, Copy, Debug)]
pub struct Subresource;

/// Cache policy of the evergreen loader URL and the loader manifest: browsers and CDNs may reuse
/// them for five minutes, so a deploy reaches every page within minutes. Pages that pin the
/// loader with SRI use the versioned URL instead.
pub const EVERGREEN: &str = "public, max-age=300";

fn loader_headers(mut response: Response, cache: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("cross-origin"));
    // Merchant pages may see the loader's own Resource Timing sizes (`transferSize`): a public
    // file, and how its budget on the wire is measured.
    headers.insert(HeaderName::from_static("timing-allow-origin"), HeaderValue::from_static("*"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

const JS: &str = "text/javascript; charset=utf-8";

/// `GET /v1/loader.js`: the current loader under its evergreen name (short cache).
pub async fn loader(State(state): State<AppState>, request: HeaderMap) -> Result<Response, ApiError> {
    let asset = frame_asset(&state, "loader.js").await?;
    Ok(loader_headers(encoded(&asset, &request, JS), EVERGREEN))
}

/// The version in a versioned loader path, `/v1/loader.<16 letters a–p>.js`
/// (see [`Asset::short_hash`]).
pub fn versioned_loader_hash(path: &str) -> Option<&str> {
    let hash = path.strip_prefix("/v1/loader.")?.strip_suffix(".js")?;
    (hash.len() == 16 && hash.bytes().all(|b| matches!(b, b'a'..=b'p'))).then_some(hash)
}

/// `GET /v1/loader.<hash>.js` (routed from the fallback: the router matches whole path segments).
/// Served when `<hash>` is the current loader's (the first 64 bits of its SHA-384), or a
/// kept earlier loader `loader.<hash>.js` in the frame directory whose content has that hash,
/// so pages pinning an old version with SRI keep working after a deploy that keeps the file.
/// Immutable: the bytes under a hash can never change.
pub async fn versioned_loader(state: &AppState, hash: &str, request: &HeaderMap) -> Result<Response, ApiError> {
    let current = frame_asset(state, "loader.js").await?;
    let asset = if current.short_hash() == hash {
        current
    } else {
        let kept = frame_asset(state, &format!("loader.{hash}.js")).await?;
        if kept.short_hash() != hash {
            return Err(ApiError::not_found());
        }
        kept
    };
    Ok(loader_headers(encoded(&asset, request, JS), IMMUTABLE))
}

/// `GET /v1/loader-manifest.json`: the current loader's versioned URL and SRI hash, for pages and
/// build tools that pin it (`{"version", "url", "integrity", "evergreen"}`).
pub async fn loader_manifest(State(state): State<AppState>) -> Result<Response, ApiError> {
    let asset = frame_asset(&state, "loader.js").await?;
    let version = asset.short_hash();
    let body = serde_json::json!({
        "version": version,
        "url": format!("/v1/loader.{version}.js"),
        "integrity": asset.integrity(),
        "evergreen": "/v1/loader.js",
    });
    Ok(loader_headers(axum::Json(body).into_response(), EVERGREEN))
}

/// Whether a file name carries Trunk's content hash (`frame-1a2b3c4d5e6f7a8b_bg.wasm`,
/// `boot-1a2b3c4d5e6f7a8b.js`): then its bytes can never change under that name.
pub fn content_hashed(name: &str) -> bool {
    let stem = name.split_once('.').map_or(name, |(stem, _)| stem);
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(base, hash)| {
        !base.is_empty()
            && (8..=64).contains(&hash.len())
            && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Cache policy of content-hashed frame assets. They hold no card, merchant or key data, and a
/// new build gets new names (the frame page, which names them, stays `no-store`), so browsers
/// may keep them (and Chromium its compiled WASM) for a year: a repeat mount skips the download.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `GET /v1/frame/{file}`.
pub async fn file(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    let asset = frame_asset(&state, &name).await?;
    let mut response = encoded(&asset, &request, content_type(&name));
    if content_hashed(&name) {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    }
    Ok(response)
}

/// Inline `<script>` and `<style>` bodies of an HTML document (elements with a `src`
/// attribute are skipped: they are covered by `'self'`).
pub fn inline_blocks(html: &str, tag: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let open = format!("<{tag}");
    let close = format!("</{tag}");
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(start) = lower.get(pos..).and_then(|s| s.find(&open)).map(|i| i + pos) {
        let after_name = start + open.len();
        // Must be the tag itself, not e.g. <scripts>.
        if !lower.get(after_name..).is_some_and(|s| s.starts_with(|c: char| c == '>' || c.is_ascii_whitespace())) {
            pos = after_name;
            continue;
        }
        let Some(tag_end) = lower.get(start..).and_then(|s| s.find('>')).map(|i| i + start) else { break };
        let attrs = lower.get(after_name..tag_end).unwrap_or("");
        let Some(body_end) = lower.get(tag_end..).and_then(|s| s.find(&close)).map(|i| i + tag_end) else { break };
        let has_src = attrs.split(|c: char| c.is_ascii_whitespace()).any(|a| a.starts_with("src="));
        if !has_src {
            if let Some(body) = html.get(tag_end + 1..body_end) {
                out.push(body.to_owned());
            }
        }
        pos = body_end + close.len();
    }
    out
}

/// The sandbox the frame page runs in, however it is embedded (the loader also sets the same
/// flags as the iframe's `sandbox` attribute): scripts, its own origin (its `fetch` to
/// `/v1/tokens` and its CSP `'self'`) and forms. Not top navigation, popups, modals, downloads,
/// pointer lock, orientation lock, presentation or storage access.
pub const FRAME_SANDBOX: &str = "sandbox allow-scripts allow-same-origin allow-forms";

/// Powerful features the frame never uses, each denied to the frame page and anything it could
/// embed (`Permissions-Policy`, structured-field syntax). Only names Chromium recognises (an
/// unknown name is a console warning; the browser tests check every name against
/// `document.featurePolicy.features()`, which is how `ambient-light-sensor`, `bluetooth` and
/// `web-share`, unknown to Debian's Chromium 156, were left out). Autofill and paste need none
/// of them (paste is a user action, not the async clipboard API).
pub const FRAME_DENIED_FEATURES: &[&str] = &[
    "accelerometer",
    "autoplay",
    "camera",
    "clipboard-read",
    "clipboard-write",
    "display-capture",
    "encrypted-media",
    "fullscreen",
    "gamepad",
    "geolocation",
    "gyroscope",
    "hid",
    "identity-credentials-get",
    "idle-detection",
    "local-fonts",
    "magnetometer",
    "microphone",
    "midi",
    "otp-credentials",
    "payment",
    "picture-in-picture",
    "publickey-credentials-create",
    "publickey-credentials-get",
    "screen-wake-lock",
    "serial",
    "storage-access",
    "usb",
    "window-management",
    "xr-spatial-tracking",
];

/// The frame page's `Permissions-Policy`: every feature of [`FRAME_DENIED_FEATURES`] with an
/// empty allowlist.
pub fn frame_permissions_policy() -> String {
    FRAME_DENIED_FEATURES.iter().map(|f| format!("{f}=()")).collect::<Vec<_>>().join(", ")
}

/// The frame page's Content-Security-Policy.
pub fn frame_csp(html: &str, ancestors: &[String]) -> String {
    let hashes = |tag: &str| {
        inline_blocks(html, tag).iter().map(|b| format!(" 'sha256-{}'", sha256_b64(b.as_bytes()))).collect::<String>()
    };
    let ancestors = if ancestors.is_empty() { "'none'".to_owned() } else { ancestors.join(" ") };
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'{}; style-src 'self'{}; img-src 'self' data:; \
         font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}; {FRAME_SANDBOX}",
        hashes("script"),
        hashes("style"),
    )
}

#[derive(Deserialize)]
pub struct FrameQuery {
    key: Option<String>,
}

fn refused() -> Response {
    let mut r = (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><title>Forbidden</title><p>This card form is not available for this key.</p>",
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    r.headers_mut().insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// `GET /v1/frame?key=pk_…`.
pub async fn page(
    State(state): State<AppState>,
    query: Result<Query<FrameQuery>, axum::extract::rejection::QueryRejection>,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    let presented = query.ok().and_then(|Query(q)| q.key).unwrap_or_default();
    let key = match keys::classify(&presented) {
        Some((KeyKind::Publishable, _)) => {
            let hash = state.master.hash_api_key(&presented);
            state.api_keys.get().find(&hash).filter(|k| k.is_active(state.now())).cloned()
        }
        _ => None,
    };
    let Some(key) = key else {
        return Ok(refused());
    };
    let asset = frame_asset(&state, "index.html").await?;
    let html = std::str::from_utf8(&asset.identity).map_err(|_| ApiError::internal())?;
    let csp = frame_csp(html, &key.allowed_origins);
    let csp = HeaderValue::from_str(&csp).map_err(|_| ApiError::internal())?;
    let permissions = HeaderValue::from_str(&frame_permissions_policy()).map_err(|_| ApiError::internal())?;
    let mut r = encoded(&asset, &request, "text/html; charset=utf-8");
    r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp);
    r.headers_mut().insert(header::HeaderName::from_static("permissions-policy"), permissions);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_inline_blocks_only() {
        let html = "<html><head><script type=\"module\">import a from './a.js';</script>\
                    <script src=\"x.js\"></script><style>body{margin:0}</style><scripts></scripts></head></html>";
        assert_eq!(inline_blocks(html, "script"), vec!["import a from './a.js';".to_owned()]);
        assert_eq!(inline_blocks(html, "style"), vec!["body{margin:0}".to_owned()]);
        let csp = frame_csp(html, &["https://shop.example".to_owned()]);
        assert!(csp.contains(&format!("'sha256-{}'", sha256_b64(b"import a from './a.js';"))));
        assert!(csp.contains("; frame-ancestors https://shop.example;"));
        assert!(csp.ends_with("; sandbox allow-scripts allow-same-origin allow-forms"));
    }

    #[test]
    fn file_names() {
        assert!(safe_file_name("frame-abc_bg.wasm"));
        for bad in ["", "../x", ".env", "a/b", "a\\b", "%2e%2e"] {
            assert!(!safe_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn content_hashed_names() {
        for hashed in
            ["frame-99a6d0c7d1f2e3b4_bg.wasm", "frame-99a6d0c7d1f2e3b4.js", "boot-0123abcd.js", "frame-deadbeef00.css"]
        {
            assert!(content_hashed(hashed), "{hashed}");
        }
        for plain in [
            "index.html",
            "loader.js",
            "frame.js",
            "frame_bg.wasm",
            "-deadbeef.js",
            "frame-DEADBEEF.js",
            "frame-abc.js",
            "frame-xyz12345.js",
        ] {
            assert!(!content_hashed(plain), "{plain}");
        }
    }
}
