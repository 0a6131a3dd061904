use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn admin_creates_lists_rotates_and_revokes_keys() {
    let app = spawn_app().await;
    // Create a read-only key; the plaintext is shown once, only a hash is stored.
    let r = app
        .post(
            "/v1/keys",
            &app.admin,
            Some(
                json!({ "kind": "secret", "role": "read_only", "label": "reports", "ip_allowlist": ["127.0.0.1/32"] }),
            ),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk_test_"));
    assert_eq!(created["role"], "read_only");
    let id = created["id"].as_str().unwrap().to_owned();
    let listed = app.get("/v1/keys", &app.admin).await.text().await.unwrap();
    assert!(listed.contains(&id) && !listed.contains(&secret));
    let stored: i64 =
        app.count(&format!("SELECT count(*) FROM api_keys WHERE id = '{id}' AND prefix NOT LIKE '%{secret}%'"));
    assert_eq!(stored, 1);
    assert!(!contains(&std::fs::read(&app.db_path).unwrap_or_default(), secret.as_bytes()));
    assert_eq!(app.get("/v1/audit_events", &secret).await.status(), 200);

    // Bad requests.
    let r = app.post("/v1/keys", &app.admin, Some(json!({ "kind": "secret" }))).await;
    assert_eq!(error_code(r).await, (400, "parameter_invalid".into()));
    let r = app.post("/v1/keys", &app.admin, Some(json!({ "kind": "publishable", "allowed_origins": ["nope"] }))).await;
    assert_eq!(error_code(r).await, (400, "parameter_invalid".into()));
    let r = app.post("/v1/keys/key_missing/revoke", &app.admin, None).await;
    assert_eq!(error_code(r).await, (404, "resource_missing".into()));

    // Rotate with a 60 s overlap: both work, then only the new one.
    let r = app.post(&format!("/v1/keys/{id}/rotate"), &app.admin, Some(json!({ "overlap_seconds": 60 }))).await;
    assert_eq!(r.status(), 201);
    let rotated: Value = r.json().await.unwrap();
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_eq!(rotated["replaces"]["expires_at"], START + 60);
    assert_eq!(app.get("/v1/audit_events", &secret).await.status(), 200);
    assert_eq!(app.get("/v1/audit_events", &new_secret).await.status(), 200);
    app.clock.advance(60);
    assert_eq!(error_code(app.get("/v1/audit_events", &secret).await).await, (401, "api_key_expired".into()));
    assert_eq!(app.get("/v1/audit_events", &new_secret).await.status(), 200);

    // Revoke: immediately refused.
    let new_id = rotated["id"].as_str().unwrap();
    assert_eq!(app.post(&format!("/v1/keys/{new_id}/revoke"), &app.admin, None).await.status(), 200);
    assert_eq!(error_code(app.get("/v1/audit_events", &new_secret).await).await, (401, "api_key_revoked".into()));

    // Allowed origins of a new publishable key drive CORS.
    let r = app
        .post(
            "/v1/keys",
            &app.admin,
            Some(json!({ "kind": "publishable", "allowed_origins": ["https://Other.example"] })),
        )
        .await;
    let pk: Value = r.json().await.unwrap();
    let r = app
        .client
        .post(app.url("/v1/tokens"))
        .bearer_auth(pk["secret"].as_str().unwrap())
        .header("Origin", "https://other.example")
        .json(&card_body(VISA))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://other.example");
    // …but not the first key's origin.
    let r = app
        .client
        .post(app.url("/v1/tokens"))
        .bearer_auth(pk["secret"].as_str().unwrap())
        .header("Origin", SHOP)
        .json(&card_body(VISA))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (403, "origin_not_allowed".into()));

    for e in ["key.created", "key.rotated", "key.revoked"] {
        assert!(!app.audit_events(e).await.is_empty(), "{e}");
    }
}

#[tokio::test]
async fn cli_style_revocation_takes_effect_after_refresh() {
    let app = spawn_app().await;
    assert_eq!(app.get("/v1/keys", &app.admin).await.status(), 200);
    let keys = vault::store::Store::list_api_keys(app.store.as_ref()).await.unwrap();
    let admin = keys.iter().find(|k| k.role == Some(vault::keys::Role::Admin)).unwrap();
    vault::bootstrap::revoke_key(app.store.as_ref(), &admin.id, START).await.unwrap();
    // The server reloads keys periodically (200 ms in tests).
    let mut status = 200;
    for _ in 0..40 {
        status = app.get("/v1/keys", &app.admin).await.status().as_u16();
        if status == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_whole_suite_leaves_no_card_data_in_logs_or_database() {
    // Run a flow touching every path that handles card data, then inspect raw bytes.
    let app = spawn_app().await;
    for card in ALL_CARDS {
        let t = app.tokenize(card).await;
        let id = t["id"].as_str().unwrap();
        app.detokenize(id, &app.sk).await;
        app.tokenize_req(&card_body(card)).header("Idempotency-Key", id).send().await.unwrap();
        let _ = app.client.get(app.url(&format!("/v1/tokens/{}", card.0))).bearer_auth(&app.sk).send().await.unwrap();
        let bad = json!({ "card": { "number": card.0, "exp_month": 1, "exp_year": 2020, "cvc": card.1 } });
        assert_eq!(app.tokenize_req(&bad).send().await.unwrap().status(), 400);
    }
    vault::rotation::rotate_data_keys(app.store.as_ref(), &app.master, START).await.unwrap();
    app.eventually(|a| a.count("SELECT count(*) FROM tokens WHERE key_version = 1") == 0).await;
    app.clock.advance(25 * 3600);
    app.eventually(|a| a.count("SELECT count(*) FROM tokens") == 0).await;
    // Other tests run concurrently in this binary; their logs are in the same buffer.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    app.assert_no_card_data().await;
}
