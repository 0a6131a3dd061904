//! Web fonts (`/v1/fonts`, `/v1/frame/fonts/…`): admin-only registration of checked WOFF2 files,
//! served from the vault's origin under a content-hashed, immutable URL. Runs on SQLite and,
//! with `VAULT_TEST_ENGINE=postgres`, on Postgres (the `fonts::` filter in scripts/test.sh).

use serde_json::Value;

use crate::helpers::*;

/// Open Sans Regular (Apache-2.0, `tests/fixtures/OPEN-SANS-LICENSE.txt`), a real WOFF2 file.
const OPEN_SANS: &[u8] = include_bytes!("../fixtures/open-sans-regular.woff2");

impl TestApp {
    async fn upload_font(&self, key: &str, query: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v1/fonts{query}")))
            .bearer_auth(key)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn admin_uploads_lists_serves_and_deletes_a_font() {
    let app = spawn_app().await;
    let r = app
        .upload_font(&app.admin, "?family=Open%20Sans&weight=400&style=normal", "font/woff2", OPEN_SANS.to_vec())
        .await;
    assert_eq!(r.status(), 201);
    let font: Value = r.json().await.unwrap();
    assert_eq!(font["object"], "font");
    assert_eq!(
        (font["family"].as_str(), font["weight"].as_u64(), font["style"].as_str()),
        (Some("Open Sans"), Some(400), Some("normal"))
    );
    assert_eq!(font["size"].as_u64(), Some(OPEN_SANS.len() as u64));
    let id = font["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("font_"));
    let url = font["url"].as_str().unwrap().to_owned();
    let name = url.strip_prefix("/v1/frame/fonts/").and_then(|n| n.strip_suffix(".woff2")).unwrap();
    assert!(name.len() == 32 && name.bytes().all(|b| (b'a'..=b'p').contains(&b)), "{url}");

    // Served from the vault's origin, byte for byte, immutable, as font/woff2, no key needed.
    let served = app.client.get(app.url(&url)).send().await.unwrap();
    assert_eq!(served.status(), 200);
    let h = served.headers().clone();
    assert_eq!(h["content-type"], "font/woff2");
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(h["cross-origin-resource-policy"], "same-origin");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(served.bytes().await.unwrap().as_ref(), OPEN_SANS);

    // The same face again is a conflict; another weight of the same file is fine.
    let again = app.upload_font(&app.admin, "?family=Open%20Sans", "font/woff2", OPEN_SANS.to_vec()).await;
    assert_eq!(error_code(again).await, (409, "font_exists".into()));
    let bold = app.upload_font(&app.admin, "?family=Open%20Sans&weight=700", "font/woff2", OPEN_SANS.to_vec()).await;
    assert_eq!(bold.status(), 201);
    let bold: Value = bold.json().await.unwrap();
    assert_eq!(bold["url"], url.as_str(), "named by content");

    let list: Value = app.get("/v1/fonts", &app.admin).await.json().await.unwrap();
    let ids: Vec<_> = list["data"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [id.as_str(), bold["id"].as_str().unwrap()]);
    assert_eq!(app.audit_events("font.created").await.len(), 2);

    // Delete: gone from the list; the file stays served while another face uses the bytes.
    let r = app.client.delete(app.url(&format!("/v1/fonts/{id}"))).bearer_auth(&app.admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["deleted"], true);
    let r = app.client.delete(app.url(&format!("/v1/fonts/{id}"))).bearer_auth(&app.admin).send().await.unwrap();
    assert_eq!(error_code(r).await, (404, "resource_missing".into()));
    assert_eq!(app.client.get(app.url(&url)).send().await.unwrap().status(), 200);
    let bold_id = bold["id"].as_str().unwrap();
    let r = app.client.delete(app.url(&format!("/v1/fonts/{bold_id}"))).bearer_auth(&app.admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(error_code(app.client.get(app.url(&url)).send().await.unwrap()).await, (404, "resource_missing".into()));
    assert_eq!(app.audit_events("font.deleted").await.len(), 2);
    let list: Value = app.get("/v1/fonts", &app.admin).await.json().await.unwrap();
    assert_eq!(list["data"], Value::Array(vec![]));
    let missing =
        app.client.get(app.url("/v1/frame/fonts/abcdefghijklmnopabcdefghijklmnop.woff2")).send().await.unwrap();
    assert_eq!(error_code(missing).await, (404, "resource_missing".into()));
}

#[tokio::test]
async fn font_uploads_are_checked() {
    let app = spawn_app().await;
    let q = "?family=Inter";
    let woff2 = "font/woff2";
    // Not WOFF2: another format, text, a truncated file.
    let mut woff1 = OPEN_SANS.to_vec();
    woff1[..4].copy_from_slice(b"wOFF");
    for (body, code) in [
        (woff1, "font_not_woff2"),
        (b"<svg></svg>".to_vec(), "font_not_woff2"),
        (OPEN_SANS[..OPEN_SANS.len() - 1].to_vec(), "font_header_invalid"),
    ] {
        assert_eq!(error_code(app.upload_font(&app.admin, q, woff2, body).await).await, (400, code.into()));
    }
    // A header whose length field disagrees, or with too many tables.
    let mut longer = OPEN_SANS.to_vec();
    longer.push(0);
    assert_eq!(
        error_code(app.upload_font(&app.admin, q, woff2, longer).await).await,
        (400, "font_header_invalid".into())
    );
    let mut tables = OPEN_SANS.to_vec();
    tables[12..14].copy_from_slice(&1000u16.to_be_bytes());
    assert_eq!(
        error_code(app.upload_font(&app.admin, q, woff2, tables).await).await,
        (400, "font_header_invalid".into())
    );
    // Too large: refused before it is read whole.
    let mut big = OPEN_SANS.to_vec();
    big.resize(256 * 1024 + 1, 0);
    assert_eq!(app.upload_font(&app.admin, q, woff2, big).await.status(), 413);
    // Wrong media type.
    let r = app.upload_font(&app.admin, q, "application/octet-stream", OPEN_SANS.to_vec()).await;
    assert_eq!(r.status(), 415);
    // Face names.
    for bad in [
        "",
        "?family=",
        "?family=A%3Bb",
        "?family=Inter&weight=450",
        "?family=Inter&style=oblique",
        "?family=Inter&src=x",
    ] {
        let r = app.upload_font(&app.admin, bad, woff2, OPEN_SANS.to_vec()).await;
        assert_eq!(error_code(r).await, (400, "parameter_invalid".into()), "{bad}");
    }
    let list: Value = app.get("/v1/fonts", &app.admin).await.json().await.unwrap();
    assert_eq!(list["data"], Value::Array(vec![]), "nothing stored");
}

#[tokio::test]
async fn only_admin_keys_manage_fonts() {
    let app = spawn_app().await;
    let q = "?family=Inter";
    for key in [&app.pk, &app.sk, &app.ro] {
        let r = app.upload_font(key, q, "font/woff2", OPEN_SANS.to_vec()).await;
        assert_eq!(r.status(), 403, "upload with a non-admin key");
        assert_eq!(app.get("/v1/fonts", key).await.status(), 403);
        let r = app.client.delete(app.url("/v1/fonts/font_x")).bearer_auth(key).send().await.unwrap();
        assert_eq!(r.status(), 403);
    }
    let r = app.upload_font("sk_test_nope", q, "font/woff2", OPEN_SANS.to_vec()).await;
    assert_eq!(r.status(), 401);
    // The same merchant's live-mode admin key sees none of the test-mode fonts, deletes none.
    let r = app.upload_font(&app.admin, q, "font/woff2", OPEN_SANS.to_vec()).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let other = live_key(&app, vault::keys::KeyKind::Secret, Some(vault::keys::Role::Admin)).await;
    let list: Value = app.get("/v1/fonts", &other).await.json().await.unwrap();
    assert_eq!(list["data"], Value::Array(vec![]), "a live-mode admin key sees no test-mode font");
    let r = app.client.delete(app.url(&format!("/v1/fonts/{id}"))).bearer_auth(&other).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_merchant_registers_at_most_32_fonts_per_mode() {
    let app = spawn_app().await;
    let upload = |key: String, family: String| {
        let app = &app;
        async move { app.upload_font(&key, &format!("?family={family}"), "font/woff2", OPEN_SANS.to_vec()).await }
    };
    // Concurrent uploads: the cap is decided in the store's transaction, not by a count read
    // before it, so 40 at once still register exactly 32.
    let results = futures_util::future::join_all((0..40).map(|i| upload(app.admin.clone(), format!("Face{i}")))).await;
    let mut created = 0;
    for r in results {
        match r.status().as_u16() {
            201 => created += 1,
            _ => assert_eq!(error_code(r).await, (400, "font_limit_reached".into())),
        }
    }
    assert_eq!(created, 32);
    let list: Value = app.get("/v1/fonts", &app.admin).await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 32);
    assert!(app.audit_events("font.created").await.len() == 32, "refused uploads are not audited as created");

    // The other mode has its own 32; deleting one frees a place.
    let live_admin = live_key(&app, vault::keys::KeyKind::Secret, Some(vault::keys::Role::Admin)).await;
    assert_eq!(upload(live_admin, "Live".into()).await.status(), 201);
    let id = list["data"][0]["id"].as_str().unwrap();
    let r = app.client.delete(app.url(&format!("/v1/fonts/{id}"))).bearer_auth(&app.admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(upload(app.admin.clone(), "Again".into()).await.status(), 201);
    assert_eq!(
        error_code(upload(app.admin.clone(), "OneTooMany".into()).await).await,
        (400, "font_limit_reached".into())
    );
}
