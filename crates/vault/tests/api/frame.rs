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
    for path in ["/v1/frame/frame_bg.wasm", "/v1/loader.js", "/v1/frame/missing-0123456789abcdef.js"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    }
    let r = app.client.get(app.url(&format!("/v1/frame?key={}", app.pk))).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
}
