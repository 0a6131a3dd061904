//! The frame directory's files held in memory, each precompressed once (Brotli quality 11 and
//! gzip level 9), and the `Accept-Encoding` negotiation that picks which bytes to send.
//!
//! Files are compressed when the vault starts ([`AssetCache::warm`]) and again only when a file's
//! size or modification time changes (a new frame build in place), never per request.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::Bytes;

/// A content coding the vault can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Brotli (`br`).
    Brotli,
    /// gzip.
    Gzip,
    /// The file as it is.
    Identity,
}

impl Encoding {
    /// The `Content-Encoding` value, `None` for identity.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Self::Brotli => Some("br"),
            Self::Gzip => Some("gzip"),
            Self::Identity => None,
        }
    }
}

/// The quality value of `coding` in an `Accept-Encoding` header (RFC 9110, 12.5.3): its own
/// entry, else `*`'s, else `None` (not mentioned).
fn quality(accept: &str, coding: &str) -> Option<f32> {
    let mut star = None;
    for entry in accept.split(',') {
        let mut parts = entry.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding) {
            return Some(q);
        }
        if name == "*" {
            star = Some(q);
        }
    }
    star
}

/// The coding to send for an `Accept-Encoding` header, among those available: Brotli, then gzip
/// (both smaller than the file, else they are not offered), then identity. A coding with `q=0`
/// is refused; no header means identity.
pub fn negotiate(accept: Option<&str>, brotli: bool, gzip: bool) -> Encoding {
    let Some(accept) = accept else { return Encoding::Identity };
    let acceptable = |coding| quality(accept, coding).is_some_and(|q| q > 0.0);
    if brotli && acceptable("br") {
        Encoding::Brotli
    } else if gzip && acceptable("gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// Whether a file of this name is worth compressing (text and WASM; not fonts or images, which
/// are compressed already).
pub fn compressible(name: &str) -> bool {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    matches!(ext, "js" | "mjs" | "wasm" | "css" | "html" | "json" | "map" | "svg" | "txt")
}

/// One file: its bytes, its precompressed forms (only when smaller) and its SHA-384.
#[derive(Debug)]
pub struct Asset {
    /// The file as it is on disk.
    pub identity: Bytes,
    /// Brotli, quality 11.
    pub brotli: Option<Bytes>,
    /// gzip, level 9.
    pub gzip: Option<Bytes>,
    /// SHA-384 of `identity` (SRI hashes, versioned names).
    pub sha384: Vec<u8>,
    stamp: Stamp,
}

type Stamp = (u64, Option<SystemTime>);

impl Asset {
    /// Compresses `bytes` (CPU-bound: call it off the async runtime).
    pub fn new(name: &str, bytes: Vec<u8>) -> Self {
        Self::with_stamp(name, bytes, (0, None))
    }

    fn with_stamp(name: &str, bytes: Vec<u8>, stamp: Stamp) -> Self {
        let (brotli, gzip) = if compressible(name) {
            let smaller = |c: Option<Vec<u8>>| c.filter(|c| c.len() < bytes.len()).map(Bytes::from);
            (smaller(brotli(&bytes)), smaller(gzip(&bytes)))
        } else {
            (None, None)
        };
        let sha384 = ring::digest::digest(&ring::digest::SHA384, &bytes).as_ref().to_vec();
        Self { identity: Bytes::from(bytes), brotli, gzip, sha384, stamp }
    }

    /// The bytes for `encoding` (identity when that form does not exist).
    pub fn body(&self, encoding: Encoding) -> (Encoding, Bytes) {
        match (encoding, &self.brotli, &self.gzip) {
            (Encoding::Brotli, Some(b), _) => (Encoding::Brotli, b.clone()),
            (Encoding::Gzip, _, Some(g)) => (Encoding::Gzip, g.clone()),
            _ => (Encoding::Identity, self.identity.clone()),
        }
    }

    /// The bytes to answer a request with this `Accept-Encoding`.
    pub fn negotiate(&self, accept: Option<&str>) -> (Encoding, Bytes) {
        self.body(negotiate(accept, self.brotli.is_some(), self.gzip.is_some()))
    }

    /// The subresource-integrity value of the file (`sha384-…`).
    pub fn integrity(&self) -> String {
        use base64::Engine as _;
        format!("sha384-{}", base64::engine::general_purpose::STANDARD.encode(&self.sha384))
    }

    /// The version part of versioned names: the first 64 bits of the SHA-384 as 16 letters
    /// `a`–`p` (one per 4 bits, like hex with letters for digits). Letters only, so no version
    /// can contain a digit run the vault's card-number check on URLs would refuse.
    pub fn short_hash(&self) -> String {
        crate::crypto::letters(self.sha384.get(..8).unwrap_or_default())
    }
}

fn brotli(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() / 3);
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 22, ..Default::default() };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).ok()?;
    Some(out)
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 3), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

/// The frame directory's files by name, compressed once.
#[derive(Debug, Default)]
pub struct AssetCache {
    files: Mutex<HashMap<String, Arc<Asset>>>,
}

async fn stamp_of(path: &Path) -> Option<Stamp> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    meta.is_file().then(|| (meta.len(), meta.modified().ok()))
}

impl AssetCache {
    fn cached(&self, name: &str) -> Option<Arc<Asset>> {
        self.files.lock().ok()?.get(name).cloned()
    }

    fn insert(&self, name: &str, asset: Arc<Asset>) {
        if let Ok(mut files) = self.files.lock() {
            files.insert(name.to_owned(), asset);
        }
    }

    /// The file `name` of `dir` (a plain name, checked by the caller), from memory when it has
    /// not changed on disk since it was compressed; `None` when it does not exist.
    pub async fn get(&self, dir: &Path, name: &str) -> Option<Arc<Asset>> {
        let path = dir.join(name);
        let stamp = stamp_of(&path).await?;
        if let Some(asset) = self.cached(name).filter(|a| a.stamp == stamp) {
            return Some(asset);
        }
        let bytes = tokio::fs::read(&path).await.ok()?;
        let owned = name.to_owned();
        let asset = tokio::task::spawn_blocking(move || Asset::with_stamp(&owned, bytes, stamp)).await.ok()?;
        let asset = Arc::new(asset);
        self.insert(name, Arc::clone(&asset));
        Some(asset)
    }

    /// Compresses every plain file of `dir` (blocking: run it on a blocking thread at start).
    pub fn warm(&self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            let path: PathBuf = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if !meta.is_file() || !super::frame::safe_file_name(&name) {
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else { continue };
            let asset = Asset::with_stamp(&name, bytes, (meta.len(), meta.modified().ok()));
            self.insert(&name, Arc::new(asset));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_accept_encoding() {
        use Encoding::*;
        let cases: &[(Option<&str>, Encoding)] = &[
            (None, Identity),
            (Some(""), Identity),
            (Some("identity"), Identity),
            (Some("gzip, deflate, br, zstd"), Brotli),
            (Some("gzip"), Gzip),
            (Some("GZIP"), Gzip),
            (Some("br;q=0, gzip;q=0.5"), Gzip),
            (Some("br;q=0"), Identity),
            (Some("*"), Brotli),
            (Some("*;q=0, gzip"), Gzip),
            (Some("gzip;q=0, *"), Brotli),
            (Some("deflate"), Identity),
            (Some(" br ; q=1.0 "), Brotli),
        ];
        for &(accept, want) in cases {
            assert_eq!(negotiate(accept, true, true), want, "{accept:?}");
        }
        assert_eq!(negotiate(Some("br, gzip"), false, true), Gzip);
        assert_eq!(negotiate(Some("br, gzip"), false, false), Identity);
    }

    #[test]
    fn compresses_text_and_wasm_only_when_smaller() {
        let text = "export function f() { return 1; }\n".repeat(50).into_bytes();
        let asset = Asset::new("frame.js", text.clone());
        assert!(asset.brotli.as_ref().is_some_and(|b| b.len() < text.len()));
        assert!(asset.gzip.as_ref().is_some_and(|g| g.len() < text.len()));
        let mut unpacked = Vec::new();
        brotli::BrotliDecompress(&mut &asset.brotli.clone().unwrap_or_default()[..], &mut unpacked).unwrap();
        assert_eq!(unpacked, text);
        let tiny = Asset::new("a.js", b"1".to_vec());
        assert!(tiny.brotli.is_none() && tiny.gzip.is_none(), "not smaller: identity only");
        let font = Asset::new("f.woff2", text);
        assert!(font.brotli.is_none() && font.gzip.is_none());
        assert_eq!(font.negotiate(Some("br")).0, Encoding::Identity);
        assert!(asset.short_hash().len() == 16 && asset.short_hash().bytes().all(|b| (b'a'..=b'p').contains(&b)));
        assert!(asset.integrity().starts_with("sha384-") && asset.integrity().len() == 7 + 64);
    }
}
