use reqwest::Response;

use crate::helpers::*;

fn csp(r: &Response) -> String {
    r.headers()["content-security-policy"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn loader_is_served_cross_origin() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/v1/loader.js")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.headers()["cross-origin-resource-policy"], "cross-origin");
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    assert_eq!(r.headers()["timing-allow-origin"], "*");
    assert_eq!(r.text().await.unwrap(), "window.Vault = {};");
}

#[tokio::test]
async fn frame_page_has_a_computed_csp_and_the_keys_ancestors() {
    let app = spawn_app().await;
    let r = app.client.get(app.url(&format!("/v1/frame?key={}", app.pk))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key("x-frame-options"));
    let policy = csp(&r);
    let script = vault::crypto::sha256_b64(b"import init from '/v1/frame/frame.js'; init();");
    let style = vault::crypto::sha256_b64(b"body{margin:0}");
    assert_eq!(
        policy,
        format!(
            "default-src 'none'; script-src 'self' 'wasm-unsafe-eval' 'sha256-{script}'; style-src 'self' 'sha256-{style}'; \
             img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
             frame-ancestors {SHOP}; sandbox allow-scripts allow-same-origin allow-forms"
        )
    );
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.text().await.unwrap().contains("<script type=\"module\">"));
}

/// Security finding: the frame page was not sandboxed unless the embedder asked for it, and no
/// powerful feature was denied to it.
#[tokio::test]
async fn iframe_is_sandboxed_by_the_frame_pages_csp_and_denies_powerful_features() {
    let app = spawn_app().await;
    let r = app.client.get(app.url(&format!("/v1/frame?key={}", app.pk))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let policy = csp(&r);
    let sandbox: Vec<&str> = policy.split(';').map(str::trim).filter(|d| d.starts_with("sandbox")).collect();
    assert_eq!(sandbox, ["sandbox allow-scripts allow-same-origin allow-forms"], "{policy}");
    for flag in ["allow-top-navigation", "allow-popups", "allow-modals", "allow-downloads"] {
        assert!(!policy.contains(flag), "{flag} in {policy}");
    }
    let permissions = r.headers()["permissions-policy"].to_str().unwrap().to_owned();
    let entries: Vec<&str> = permissions.split(',').map(str::trim).collect();
    for feature in ["camera", "microphone", "geolocation", "payment", "usb", "serial", "hid", "midi"] {
        assert!(entries.contains(&format!("{feature}=()").as_str()), "{feature} not denied: {permissions}");
    }
    // Structured-field syntax: every entry is `name=()`, nothing is allowed.
    for entry in &entries {
        let (name, allowlist) = entry.split_once('=').unwrap();
        assert!(!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "{entry}");
        assert_eq!(allowlist, "()", "{entry}");
    }
}

#[tokio::test]
async fn frame_page_is_refused_for_unknown_secret_or_revoked_keys() {
    let app = spawn_app().await;
    let unknown = format!("pk_test_{}", "C".repeat(32));
    for key in [unknown.as_str(), app.sk.as_str(), "", "pk_live_x"] {
        let r = app.client.get(app.url(&format!("/v1/frame?key={key}"))).send().await.unwrap();
        assert_eq!(r.status(), 403, "{key}");
        assert!(csp(&r).contains("frame-ancestors 'none'"));
    }
    let r = app.client.get(app.url("/v1/frame")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Revoke the publishable key through the admin API: the frame is refused too.
    let keys: serde_json::Value = app.get("/v1/keys", &app.admin).await.json().await.unwrap();
    let pk_id = keys["data"].as_array().unwrap().iter().find(|k| k["kind"] == "publishable").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.post(&format!("/v1/keys/{pk_id}/revoke"), &app.admin, None).await.status(), 200);
    let r = app.client.get(app.url(&format!("/v1/frame?key={}", app.pk))).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn frame_files_have_content_types_and_no_traversal() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/v1/frame/frame_bg.wasm")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/wasm");
    let r = app.client.get(app.url("/v1/frame/frame.js")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/javascript; charset=utf-8");
    std::fs::write(app.dir.path().join("secret.txt"), "top secret").unwrap();
    for path in
        ["/v1/frame/..%2Fsecret.txt", "/v1/frame/%2E%2E%2Fsecret.txt", "/v1/frame/missing.js", "/v1/frame/.hidden"]
    {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert!(!r.text().await.unwrap().contains("top secret"));
    }
}

#[tokio::test]
async fn only_content_hashed_frame_files_may_be_cached() {
    let app = spawn_app().await;
    std::fs::write(app.dir.path().join("frame").join("frame-0123456789abcdef_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let r = app.client.get(app.url("/v1/frame/frame-0123456789abcdef_bg.wasm")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    for path in ["/v1/frame/frame_bg.wasm", "/v1/frame/missing-0123456789abcdef.js"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    }
    let r = app.client.get(app.url(&format!("/v1/frame?key={}", app.pk))).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::BrotliDecompress(&mut &bytes[..], &mut out).unwrap();
    out
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// Issue 12: the frame's files and the loader were sent uncompressed whatever the browser
/// accepted (171 KB on the wire for a cold frame load).
#[tokio::test]
async fn frame_files_are_sent_compressed_as_the_client_accepts() {
    let app = spawn_app().await;
    let js = "export function handler(event) { return event.type === 'input' ? 1 : 0; }\n".repeat(200);
    std::fs::write(app.dir.path().join("frame").join("frame-0123456789abcdef.js"), &js).unwrap();
    let fetch = |accept: Option<&'static str>| {
        let mut request = app.client.get(app.url("/v1/frame/frame-0123456789abcdef.js"));
        if let Some(accept) = accept {
            request = request.header("accept-encoding", accept);
        }
        request.send()
    };
    for (accept, coding) in [
        (Some("gzip, deflate, br, zstd"), Some("br")),
        (Some("gzip"), Some("gzip")),
        (Some("br;q=0, gzip"), Some("gzip")),
        (Some("identity"), None),
        (None, None),
    ] {
        let r = fetch(accept).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers().get("content-encoding").map(|v| v.to_str().unwrap()), coding, "{accept:?}");
        assert_eq!(r.headers()["vary"], "Accept-Encoding");
        assert_eq!(r.headers()["content-type"], "text/javascript; charset=utf-8");
        assert_eq!(r.headers()["cache-control"], "public, max-age=31536000, immutable");
        let length: usize = r.headers()["content-length"].to_str().unwrap().parse().unwrap();
        let body = r.bytes().await.unwrap();
        assert_eq!(length, body.len(), "Content-Length is the length sent");
        let plain = match coding {
            Some("br") => unbrotli(&body),
            Some("gzip") => gunzip(&body),
            _ => body.to_vec(),
        };
        assert_eq!(plain, js.as_bytes(), "{accept:?}");
        if coding.is_some() {
            assert!(body.len() * 10 < js.len(), "{accept:?}: {} B", body.len());
        }
    }
    // The frame page and the loader too.
    let r = app
        .client
        .get(app.url(&format!("/v1/frame?key={}", app.pk)))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "br");
    assert!(String::from_utf8(unbrotli(&r.bytes().await.unwrap())).unwrap().contains("<script type=\"module\">"));
    std::fs::write(app.dir.path().join("frame").join("loader.js"), &js).unwrap();
    let r = app.client.get(app.url("/v1/loader.js")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(gunzip(&r.bytes().await.unwrap()), js.as_bytes(), "a changed file is compressed again");
    // Permissions-Policy only on the document: the frame's files are never documents.
    let r = app.client.get(app.url("/v1/frame/frame-0123456789abcdef.js")).send().await.unwrap();
    assert!(r.headers().get("permissions-policy").is_none());
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let r = app.client.get(app.url(&format!("/v1/frame?key={}", app.pk))).send().await.unwrap();
    assert!(r.headers()["permissions-policy"].to_str().unwrap().contains("camera=()"));
    // Already-compressed types are sent as they are.
    std::fs::write(app.dir.path().join("frame").join("font.woff2"), &js).unwrap();
    let r = app.client.get(app.url("/v1/frame/font.woff2")).header("accept-encoding", "br").send().await.unwrap();
    assert!(r.headers().get("content-encoding").is_none());
}

/// Issue 12: the loader had one `no-store` URL, so SRI pinning broke at every deploy and every
/// page view downloaded it again.
#[tokio::test]
async fn loader_has_a_versioned_immutable_url_and_an_sri_manifest() {
    use base64::Engine as _;
    let app = spawn_app().await;
    let r = app.client.get(app.url("/v1/loader-manifest.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let manifest: serde_json::Value = r.json().await.unwrap();
    let sha384 = ring::digest::digest(&ring::digest::SHA384, b"window.Vault = {};");
    let integrity = format!("sha384-{}", base64::engine::general_purpose::STANDARD.encode(sha384.as_ref()));
    assert_eq!(manifest["integrity"], integrity.as_str());
    assert_eq!(manifest["evergreen"], "/v1/loader.js");
    let version: String =
        sha384.as_ref()[..8].iter().flat_map(|b| [b >> 4, b & 15]).map(|n| char::from(b'a' + n)).collect();
    assert_eq!(manifest["version"], version.as_str());
    let url = format!("/v1/loader.{version}.js");
    assert_eq!(manifest["url"], url.as_str());
    let r = app.client.get(app.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(r.headers()["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.text().await.unwrap(), "window.Vault = {};");
    assert_eq!(app.client.post(app.url(&url)).send().await.unwrap().status(), 405);

    // A deploy: the new loader gets a new version; the old one is still served while its file is
    // kept in the frame directory, and only under its own hash.
    let frame = app.dir.path().join("frame");
    std::fs::write(frame.join(format!("loader.{version}.js")), "window.Vault = {};").unwrap();
    std::fs::write(frame.join("loader.js"), "window.Vault = { v: 2 };").unwrap();
    let manifest: serde_json::Value =
        app.client.get(app.url("/v1/loader-manifest.json")).send().await.unwrap().json().await.unwrap();
    assert_ne!(manifest["version"], version.as_str());
    let new_url = manifest["url"].as_str().unwrap().to_owned();
    assert_eq!(
        app.client.get(app.url(&new_url)).send().await.unwrap().text().await.unwrap(),
        "window.Vault = { v: 2 };"
    );
    assert_eq!(app.client.get(app.url(&url)).send().await.unwrap().text().await.unwrap(), "window.Vault = {};");
    // A file whose content does not match its name, unknown versions and malformed names: 404.
    std::fs::write(frame.join("loader.aaaaaaaadeadbeef.js"), "window.Evil = 1;").unwrap();
    for path in [
        "/v1/loader.aaaaaaaadeadbeef.js",
        "/v1/loader.pppppppppppppppp.js",
        "/v1/loader.0123abcd0123abcd.js",
        "/v1/loader..js",
    ] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
}
