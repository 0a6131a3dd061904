use std::sync::Arc;

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn happy_path_create_read_detokenize_delete() {
    let app = spawn_app().await;
    let tok = app.tokenize(VISA).await;
    let id = tok["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("tok_") && id.len() == 28, "{id}");
    assert_eq!(tok["object"], "token");
    assert_eq!(tok["card"]["brand"], "visa");
    assert_eq!(tok["card"]["last4"], "4242");
    assert_eq!(tok["card"]["exp_month"], 12);
    assert_eq!(tok["card"]["exp_year"], 2030);
    assert!(tok["card"].get("fingerprint").is_none(), "publishable keys never see the fingerprint: {tok}");
    assert_eq!(tok["created"], START);
    assert_eq!(tok["expires_at"], START + 24 * 3600);
    assert_eq!(tok["livemode"], false);
    assert_eq!(tok.as_object().unwrap().len(), 6, "no extra fields: {tok}");

    // Metadata only, for tokenization and read-only keys.
    for key in [&app.sk, &app.ro] {
        let r = app.get(&format!("/v1/tokens/{id}"), key).await;
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        assert!(!body.contains(VISA.0) && !body.contains(VISA.1), "{body}");
        let mut meta: Value = serde_json::from_str(&body).unwrap();
        assert!(meta["card"]["fingerprint"].as_str().unwrap().starts_with("fp_"));
        meta["card"].as_object_mut().unwrap().remove("fingerprint");
        assert_eq!(meta["card"].as_object_mut().unwrap().remove("postal_code"), Some(Value::Null));
        assert_eq!(meta, tok);
    }

    // Detokenize: full card, CVC exactly once.
    let r = app.detokenize(&id, &app.sk).await;
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["card"]["number"], VISA.0);
    assert_eq!(d["card"]["cvc"], VISA.1);
    assert_eq!(d["card"]["name"], "Ada Lovelace");
    assert_eq!(d["card"]["exp_month"], 12);
    assert_eq!(d["cvc_returned"], true);
    let d: Value = app.detokenize(&id, &app.sk).await.json().await.unwrap();
    assert_eq!(d["card"]["number"], VISA.0);
    assert_eq!(d["card"]["cvc"], Value::Null);
    assert_eq!(d["cvc_returned"], false);
    assert_eq!(app.count("SELECT count(*) FROM tokens WHERE cvc_ct IS NOT NULL"), 0);

    // Delete, then 404 everywhere.
    let r = app.client.delete(app.url(&format!("/v1/tokens/{id}"))).bearer_auth(&app.sk).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["deleted"], true);
    assert_eq!(error_code(app.get(&format!("/v1/tokens/{id}"), &app.sk).await).await, (404, "resource_missing".into()));
    assert_eq!(error_code(app.detokenize(&id, &app.sk).await).await, (404, "resource_missing".into()));
    let r = app.client.delete(app.url(&format!("/v1/tokens/{id}"))).bearer_auth(&app.sk).send().await.unwrap();
    assert_eq!(error_code(r).await, (404, "resource_missing".into()));

    // Audit trail of the key uses.
    for event in ["token.created", "token.read", "token.detokenized", "token.deleted"] {
        assert!(!app.audit_events(event).await.is_empty(), "{event}");
    }
    app.assert_no_card_data().await;
}

#[tokio::test]
async fn fingerprints_are_stable_within_a_merchant() {
    let app = spawn_app().await;
    let a = app.metadata(&app.tokenize(MASTERCARD).await).await;
    let b = app.metadata(&app.tokenize(MASTERCARD).await).await;
    let c = app.metadata(&app.tokenize(AMEX).await).await;
    assert_ne!(a["id"], b["id"]);
    assert_eq!(a["card"]["fingerprint"], b["card"]["fingerprint"]);
    assert_ne!(a["card"]["fingerprint"], c["card"]["fingerprint"]);
    assert_eq!(c["card"]["brand"], "amex");
    // Another vault (other merchant, other fingerprint key) gives another fingerprint.
    let other = spawn_app().await;
    let d = other.metadata(&other.tokenize(MASTERCARD).await).await;
    assert_ne!(a["card"]["fingerprint"], d["card"]["fingerprint"]);
}

#[tokio::test]
async fn validation_errors_have_precise_codes_and_never_echo_input() {
    let app = spawn_app().await;
    let cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
        (
            json!({ "card": { "number": "4242424242424241", "exp_month": 12, "exp_year": 2030, "cvc": "123" } }),
            400,
            "invalid_number",
            Some("card.number"),
        ),
        (
            json!({ "card": { "number": "4242", "exp_month": 12, "exp_year": 2030, "cvc": "123" } }),
            400,
            "incomplete_number",
            Some("card.number"),
        ),
        (
            json!({ "card": { "number": VISA.0, "exp_month": 13, "exp_year": 2030, "cvc": "123" } }),
            400,
            "invalid_expiry_month",
            Some("card.exp_month"),
        ),
        (
            json!({ "card": { "number": VISA.0, "exp_month": 10, "exp_year": 2026, "cvc": "123" } }),
            400,
            "expired",
            Some("card.exp_year"),
        ),
        (
            json!({ "card": { "number": VISA.0, "exp_month": 12, "exp_year": 2030, "cvc": "1234" } }),
            400,
            "invalid_cvc",
            Some("card.cvc"),
        ),
        (
            json!({ "card": { "number": VISA.0, "exp_month": "12", "exp_year": "30", "cvc": "12" } }),
            400,
            "incomplete_cvc",
            Some("card.cvc"),
        ),
        (
            json!({ "card": { "number": VISA.0, "exp_month": 12, "exp_year": 2030 } }),
            400,
            "parameter_missing",
            Some("card.cvc"),
        ),
        (
            json!({ "card": { "exp_month": 12, "exp_year": 2030, "cvc": "123" } }),
            400,
            "parameter_missing",
            Some("card.number"),
        ),
        (
            json!({ "card": { "number": VISA.0, "exp_month": "ab", "exp_year": 2030, "cvc": "123" } }),
            400,
            "parameter_invalid",
            Some("card.exp_month"),
        ),
        (json!({}), 400, "parameter_missing", Some("card")),
        (
            json!({ "card": { "number": VISA.0, "exp_month": 12, "exp_year": 2030, "cvc": "123", "pin": "1" } }),
            400,
            "invalid_json",
            None,
        ),
    ];
    for (body, status, code, param) in cases {
        let r = app.tokenize_req(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{code}");
        let text = r.text().await.unwrap();
        assert!(!text.contains("4242"), "error echoes input: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], code, "{text}");
        assert_eq!(v["error"]["param"].as_str(), param, "{text}");
        assert!(v["error"]["type"].is_string() && v["error"]["message"].is_string());
    }
    // Not JSON, wrong content type, too large.
    let base = app.client.post(app.url("/v1/tokens")).bearer_auth(&app.pk).header("Origin", SHOP);
    let r = base
        .try_clone()
        .unwrap()
        .header("Content-Type", "application/json")
        .body(format!("{{\"card\": {{\"number\": \"{}\"", VISA.0))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (400, "invalid_json".into()));
    let r = base.try_clone().unwrap().header("Content-Type", "text/plain").body("x").send().await.unwrap();
    assert_eq!(error_code(r).await, (415, "unsupported_media_type".into()));
    let r = base
        .try_clone()
        .unwrap()
        .header("Content-Type", "application/json")
        .body(vec![b' '; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (413, "body_too_large".into()));
    assert_eq!(app.count("SELECT count(*) FROM tokens"), 0);
    app.assert_no_card_data().await;
}

#[tokio::test]
async fn tokens_expire_after_24_hours_and_the_sweeper_deletes_them() {
    let app = spawn_app().await;
    let a = app.tokenize(VISA).await;
    app.clock.advance(12 * 3600);
    let b = app.tokenize(MASTERCARD).await;
    app.clock.advance(12 * 3600 - 1);
    assert_eq!(app.get(&format!("/v1/tokens/{}", a["id"].as_str().unwrap()), &app.sk).await.status(), 200);
    app.clock.advance(1);
    // Expired: 404 on every route, even before the sweeper runs.
    assert_eq!(error_code(app.get(&format!("/v1/tokens/{}", a["id"].as_str().unwrap()), &app.sk).await).await.0, 404);
    assert_eq!(error_code(app.detokenize(a["id"].as_str().unwrap(), &app.sk).await).await.0, 404);
    // The sweeper deletes the row itself (not only lazily on read).
    app.eventually(|a| a.count("SELECT count(*) FROM tokens") == 1).await;
    assert_eq!(app.get(&format!("/v1/tokens/{}", b["id"].as_str().unwrap()), &app.sk).await.status(), 200);
    app.clock.advance(12 * 3600);
    app.eventually(|a| a.count("SELECT count(*) FROM tokens") == 0).await;
}

#[tokio::test]
async fn cvc_is_purged_after_one_hour_even_if_never_used() {
    let app = spawn_app().await;
    let a = app.tokenize(AMEX).await;
    let b = app.tokenize(VISA).await;
    app.clock.advance(3600);
    // Detokenizing at the deadline: card, no CVC.
    let d: Value = app.detokenize(a["id"].as_str().unwrap(), &app.sk).await.json().await.unwrap();
    assert_eq!(d["card"]["number"], AMEX.0);
    assert_eq!(d["card"]["cvc"], Value::Null);
    // The sweeper destroys the other CVC ciphertext.
    app.eventually(|a| a.count("SELECT count(*) FROM tokens WHERE cvc_ct IS NOT NULL") == 0).await;
    let d: Value = app.detokenize(b["id"].as_str().unwrap(), &app.sk).await.json().await.unwrap();
    assert_eq!(d["card"]["number"], VISA.0);
    assert_eq!(d["cvc_returned"], false);
}

#[tokio::test]
async fn fifty_concurrent_requests_with_one_idempotency_key_make_exactly_one_token() {
    let app = spawn_app().await;
    let body = card_body(VISA_DEBIT);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let req = app.tokenize_req(&body).header("Idempotency-Key", "order-42");
        tasks.push(tokio::spawn(async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let (mut created, mut conflicts) = (0, 0);
    for t in tasks {
        let (status, v) = t.await.unwrap();
        match status {
            201 => {
                created += 1;
                ids.insert(v["id"].as_str().unwrap().to_owned());
            }
            409 => {
                conflicts += 1;
                assert_eq!(v["error"]["code"], "idempotency_key_in_use");
            }
            other => panic!("unexpected status {other}: {v}"),
        }
    }
    assert!(created >= 1);
    assert_eq!(created + conflicts, 50);
    assert_eq!(ids.len(), 1, "one token id across all 201 answers");
    assert_eq!(app.count("SELECT count(*) FROM tokens"), 1);

    // Replays return the same token; another body with the same key is 422.
    let r = app.tokenize_req(&body).header("Idempotency-Key", "order-42").send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let v: Value = r.json().await.unwrap();
    assert!(ids.contains(v["id"].as_str().unwrap()));
    let r = app.tokenize_req(&card_body(VISA)).header("Idempotency-Key", "order-42").send().await.unwrap();
    assert_eq!(error_code(r).await, (422, "idempotency_key_reused".into()));
    let r = app.tokenize_req(&body).header("Idempotency-Key", "").send().await.unwrap();
    assert_eq!(error_code(r).await, (400, "invalid_idempotency_key".into()));
    assert_eq!(app.count("SELECT count(*) FROM tokens"), 1);

    // Keys are kept 24 h, then forgotten.
    app.clock.advance(24 * 3600 + 1);
    app.eventually(|a| a.count("SELECT count(*) FROM idempotency") == 0).await;
    let r = app.tokenize_req(&body).header("Idempotency-Key", "order-42").send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert!(!ids.contains(r.json::<Value>().await.unwrap()["id"].as_str().unwrap()));
    app.assert_no_card_data().await;
}

#[tokio::test]
async fn encryption_key_rotation_then_every_token_still_reads_back() {
    // No background re-encryption racing the CLI-style pass below (it is tested on its own).
    let app = spawn_app_with(|c| c.sweep_interval = std::time::Duration::from_secs(3600)).await;
    let mut ids = Vec::new();
    for card in ALL_CARDS.iter().cycle().take(40) {
        ids.push((app.tokenize(*card).await["id"].as_str().unwrap().to_owned(), card.0));
    }
    assert_eq!(app.count("SELECT count(DISTINCT key_version) FROM tokens"), 1);
    let versions = vault::rotation::rotate_data_keys(app.store.as_ref(), &app.master, START).await.unwrap();
    assert_eq!(versions.len(), 2); // test and live of the one merchant
    assert!(versions.iter().all(|v| v.2 == 2));
    // As the CLI does: a keyring of its own, re-encryption with progress.
    let keyring = vault::keyring::Keyring::new(Arc::clone(&app.master));
    keyring.refresh(app.store.as_ref()).await.unwrap();
    let mut progress = Vec::new();
    let n = vault::rotation::reencrypt_all(app.store.as_ref(), &keyring, 7, |p| progress.push((p.done, p.total)))
        .await
        .unwrap();
    assert_eq!(n, 40);
    assert_eq!(progress.last(), Some(&(40, 40)));
    assert_eq!(app.count("SELECT count(*) FROM tokens WHERE key_version = 2"), 40);
    // The running server picks the new key version up and reads everything back.
    app.state().refresh_keys().await.unwrap();
    for (id, number) in &ids {
        let d: Value = app.detokenize(id, &app.sk).await.json().await.unwrap();
        assert_eq!(d["card"]["number"], *number);
    }
    let t = app.tokenize(VISA).await;
    assert_eq!(app.count(&format!("SELECT key_version FROM tokens WHERE id = '{}'", t["id"].as_str().unwrap())), 2);
    // A ciphertext moved to another row does not decrypt (associated data binds the token id).
    app.execute(&format!(
        "UPDATE tokens SET card_ct = (SELECT card_ct FROM tokens WHERE id = '{}') WHERE id = '{}'",
        ids[0].0, ids[1].0
    ));
    assert_eq!(error_code(app.detokenize(&ids[1].0, &app.sk).await).await, (500, "internal_error".into()));
}

#[tokio::test]
async fn background_reencryption_completes_an_interrupted_rotation() {
    let app = spawn_app().await;
    for card in ALL_CARDS {
        app.tokenize(card).await;
    }
    vault::rotation::rotate_data_keys(app.store.as_ref(), &app.master, START).await.unwrap();
    // No explicit re-encryption: the server's refresher loads version 2 and its sweeper re-encrypts.
    app.eventually(|a| a.count("SELECT count(*) FROM tokens WHERE key_version = 2") == 4).await;
}

#[tokio::test]
async fn test_and_live_data_are_separated() {
    let app = spawn_app().await;
    let live_pk = vault::bootstrap::create_key(
        app.store.as_ref(),
        &app.master,
        vault::keys::KeySpec {
            merchant_id: app.merchant_id.clone(),
            kind: vault::keys::KeyKind::Publishable,
            mode: vault::keys::Mode::Live,
            role: None,
            label: String::new(),
            allowed_origins: vec![SHOP.into()],
            ip_allowlist: vec![],
        },
        START,
    )
    .await
    .unwrap();
    let live_sk = vault::bootstrap::create_key(
        app.store.as_ref(),
        &app.master,
        vault::keys::KeySpec {
            merchant_id: app.merchant_id.clone(),
            kind: vault::keys::KeyKind::Secret,
            mode: vault::keys::Mode::Live,
            role: Some(vault::keys::Role::Tokenization),
            label: String::new(),
            allowed_origins: vec![],
            ip_allowlist: vec![vault::keys::parse_cidr("127.0.0.0/8").unwrap()],
        },
        START,
    )
    .await
    .unwrap();
    app.state().refresh_keys().await.unwrap();
    let r = app
        .client
        .post(app.url("/v1/tokens"))
        .bearer_auth(live_pk.plaintext.expose())
        .header("Origin", SHOP)
        .json(&card_body(VISA))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let live: Value = r.json().await.unwrap();
    assert_eq!(live["livemode"], true);
    let test = app.tokenize(VISA).await;
    // Different fingerprint keys per mode, and no cross-mode reads.
    let live_id = live["id"].as_str().unwrap();
    let test_id = test["id"].as_str().unwrap();
    let live_meta: Value =
        app.get(&format!("/v1/tokens/{live_id}"), live_sk.plaintext.expose()).await.json().await.unwrap();
    assert_ne!(live_meta["card"]["fingerprint"], app.metadata(&test).await["card"]["fingerprint"]);
    assert_eq!(app.get(&format!("/v1/tokens/{live_id}"), &app.sk).await.status(), 404);
    assert_eq!(app.get(&format!("/v1/tokens/{test_id}"), live_sk.plaintext.expose()).await.status(), 404);
    assert_eq!(app.get(&format!("/v1/tokens/{live_id}"), live_sk.plaintext.expose()).await.status(), 200);
}

/// Issue 12: the frame collected and validated `postalCode`, then dropped it; the vault had
/// nowhere to keep it.
#[tokio::test]
async fn postal_code_is_stored_encrypted_and_returned_to_secret_keys() {
    let app = spawn_app().await;
    let mut body = card_body(VISA);
    body["card"]["postal_code"] = json!(" SW1A 1AA ");
    let r = app.tokenize_req(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let tok: Value = r.json().await.unwrap();
    assert!(tok["card"].get("postal_code").is_none(), "not to the publishable key: {tok}");
    let id = tok["id"].as_str().unwrap().to_owned();
    for key in [&app.sk, &app.ro] {
        let meta: Value = app.get(&format!("/v1/tokens/{id}"), key).await.json().await.unwrap();
        assert_eq!(meta["card"]["postal_code"], "SW1A 1AA", "{meta}");
    }
    let d: Value = app.detokenize(&id, &app.sk).await.json().await.unwrap();
    assert_eq!(d["card"]["postal_code"], "SW1A 1AA");
    assert_eq!(d["card"]["name"], "Ada Lovelace");
    assert_eq!(app.count("SELECT count(*) FROM tokens WHERE brand = 'visa'"), 1);
    assert!(!app.count_text_in_tokens("SW1A"), "stored encrypted");

    // Without one: null.
    let plain = app.tokenize(VISA).await;
    let meta: Value =
        app.get(&format!("/v1/tokens/{}", plain["id"].as_str().unwrap()), &app.sk).await.json().await.unwrap();
    assert_eq!(meta["card"]["postal_code"], Value::Null);

    // Validated: what the frame accepts, a little wider; never a card number.
    for (bad, code) in [
        (json!("SW1A<1AA"), "parameter_invalid"),
        (json!("12345678901234567"), "parameter_invalid"),
        (json!("-- --"), "parameter_invalid"),
        (json!(7), "invalid_json"),
        (json!("4242424242424242"), "card_number_in_text"),
    ] {
        let mut body = card_body(VISA);
        body["card"]["postal_code"] = bad.clone();
        let r = app.tokenize_req(&body).send().await.unwrap();
        let (status, got) = error_code(r).await;
        assert_eq!((status, got.as_str()), (400, code), "{bad}");
    }
}
