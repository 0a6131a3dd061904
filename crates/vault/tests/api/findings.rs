//! One outside-in test per finding of the security review (issue 7), named after it. Each
//! failed on the main branch before its fix.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// A client whose connections come from `ip` (any 127.0.0.0/8 address works on Linux).
fn client_from(app: &TestApp, ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&app.cert_pem).unwrap())
        .resolve("localhost", app.addr)
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Sends raw bytes over TLS and reads until the server closes. Returns the answer and whether
/// the close was clean (TLS close_notify rather than a bare TCP close).
async fn raw_exchange(app: &TestApp, request: &[u8]) -> (String, bool) {
    let mut s = crate::tls::connect(app, None).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let clean = matches!(read, Ok(Ok(_)));
    (String::from_utf8_lossy(&buf).into_owned(), clean)
}

fn json_body_of(answer: &str) -> Value {
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"))
}

fn header_of<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split_once("\r\n\r\n").map_or(answer, |(h, _)| h);
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

async fn admin_create_key(app: &TestApp, admin: &str, body: Value) -> reqwest::Response {
    app.post("/v1/keys", admin, Some(body)).await
}

#[tokio::test]
async fn finding_01_a_stolen_admin_key_cannot_reach_card_data() {
    let app = spawn_app().await;
    // No new detokenize-capable key through the API…
    let r = admin_create_key(
        &app,
        &app.admin,
        json!({ "kind": "secret", "role": "tokenization", "ip_allowlist": ["127.0.0.1"] }),
    )
    .await;
    assert_eq!(error_code(r).await, (403, "detokenize_grant_requires_cli".into()));
    // …no widening of the existing one's allowlist…
    let sk_path = format!("/v1/keys/{}", app.sk_id);
    let r = app.post(&sk_path, &app.admin, Some(json!({ "ip_allowlist": ["192.0.2.0/24"] }))).await;
    assert_eq!(error_code(r).await, (403, "detokenize_grant_requires_cli".into()));
    // …and no rotation, which would hand the admin a fresh detokenize key.
    let r = app.post(&format!("/v1/keys/{}/rotate", app.sk_id), &app.admin, None).await;
    assert_eq!(error_code(r).await, (403, "detokenize_grant_requires_cli".into()));
    // Narrowing stays possible.
    let r = app.post(&sk_path, &app.admin, Some(json!({ "ip_allowlist": ["127.0.0.1"] }))).await;
    assert_eq!(r.status(), 200);

    // Allowlists: nothing wider than /24 (IPv4) or /48 (IPv6) through the API.
    for wide in ["0.0.0.0/0", "::/0", "10.0.0.0/23", "2001:db8::/47"] {
        let r = admin_create_key(
            &app,
            &app.admin,
            json!({ "kind": "secret", "role": "read_only", "ip_allowlist": [wide] }),
        )
        .await;
        assert_eq!(error_code(r).await, (400, "ip_allowlist_too_wide".into()), "{wide}");
    }
    for ok in ["10.0.0.0/24", "2001:db8::/48", "203.0.113.7"] {
        let r =
            admin_create_key(&app, &app.admin, json!({ "kind": "secret", "role": "read_only", "ip_allowlist": [ok] }))
                .await;
        assert_eq!(r.status(), 201, "{ok}");
    }

    // The audit log names no token: admin and read-only keys cannot harvest ids from it.
    let tok = app.tokenize(VISA).await;
    let id = tok["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/v1/tokens/{id}"), &app.sk).await.status(), 200);
    assert_eq!(app.detokenize(id, &app.sk).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for key in [&app.admin, &app.ro] {
        let body = app.get("/v1/audit_events?limit=1000", key).await.text().await.unwrap();
        assert!(body.contains("token.created") && body.contains("token.detokenized"), "{body}");
        assert!(!body.contains(id), "the audit log holds a token id");
        assert!(!body.contains("tok_"), "the audit log holds a token id");
        assert!(body.contains(&app.master.token_ref(id)), "events carry the token's reference");
    }
    app.assert_no_card_data().await;
}

#[tokio::test]
async fn finding_02_the_fingerprint_goes_only_to_secret_keys() {
    let app = spawn_app().await;
    let body = card_body(MASTERCARD);
    let r = app.tokenize_req(&body).header("Idempotency-Key", "fp-1").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert!(created["card"].get("fingerprint").is_none(), "{created}");
    let r = app.tokenize_req(&body).header("Idempotency-Key", "fp-1").send().await.unwrap();
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let replayed: Value = r.json().await.unwrap();
    assert!(replayed["card"].get("fingerprint").is_none(), "{replayed}");
    assert_eq!(replayed["id"], created["id"]);
    // Secret keys see it.
    assert!(app.metadata(&created).await["card"]["fingerprint"].as_str().unwrap().starts_with("fp_"));

    // A response stored before this fix (with a fingerprint) is replayed without it.
    let pk_id = app.store.list_api_keys().await.unwrap().into_iter().find(|k| k.prefix.starts_with("pk_")).unwrap().id;
    let scope = app.master.idempotency_scope(&pk_id, "legacy-1");
    let bytes = serde_json::to_vec(&body).unwrap();
    let stored = json!({ "id": "tok_000000legacylegacylegacy", "object": "token",
        "card": { "brand": "mastercard", "last4": "4444", "exp_month": 12, "exp_year": 2030, "fingerprint": "fp_legacy" },
        "created": START, "expires_at": START + 86_400, "livemode": false });
    let token = vault::store::TokenRecord {
        id: "tok_000000legacylegacylegacy".into(),
        merchant_id: app.merchant_id.clone(),
        mode: vault::keys::Mode::Test,
        brand: "mastercard".into(),
        last4: "4444".into(),
        exp_month: 12,
        exp_year: 2030,
        fingerprint: "fp_legacy".into(),
        key_version: 1,
        card_ct: vec![1, 2, 3],
        cvc_ct: None,
        cvc_expires_at: None,
        created: START,
        expires_at: START + 86_400,
    };
    let record = vault::store::IdempotencyRecord {
        scope: scope.clone(),
        body_hash: app.master.hash_body(&scope, &bytes),
        status: 201,
        response: stored.to_string(),
        created: START,
    };
    let audit = vault::bootstrap::cli_event("token.created", START, None, None, json!({}));
    app.store.create_token(token, Some(record), audit).await.unwrap();
    let r = app.tokenize_req(&body).header("Idempotency-Key", "legacy-1").send().await.unwrap();
    let replayed: Value = r.json().await.unwrap();
    assert_eq!(replayed["id"], "tok_000000legacylegacylegacy");
    assert!(replayed["card"].get("fingerprint").is_none(), "{replayed}");
}

#[tokio::test]
async fn finding_03_test_mode_accepts_only_the_published_test_cards() {
    let app = spawn_app().await;
    // Luhn-valid, supported brand, not a published test number.
    let r = app.tokenize_req(&card_body(("4000056655665564", "123"))).send().await.unwrap();
    assert_eq!(error_code(r).await, (400, "live_card_in_test_mode".into()));
    for &(number, brand) in card::TEST_CARDS {
        let cvc = "7".repeat(usize::from(brand.security_code().size));
        let r = app.tokenize_req(&card_body((number, &cvc))).send().await.unwrap();
        assert_eq!(r.status(), 201, "{brand:?} test card refused");
    }
    // Live keys take any valid card.
    let live_pk = live_key(&app, vault::keys::KeyKind::Publishable, None).await;
    let r = app
        .client
        .post(app.url("/v1/tokens"))
        .bearer_auth(&live_pk)
        .header("Origin", SHOP)
        .json(&card_body(("4000056655665564", "123")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn finding_04_garbage_from_one_client_does_not_block_other_checkouts() {
    let app = spawn_app_with(|c| {
        c.rate_per_key = vault::ratelimit::Rate { per_second: 0.01, burst: 5.0 };
    })
    .await;
    let attacker = client_from(&app, "127.0.0.2");
    let garbage = json!({ "card": { "number": "1234", "exp_month": 1, "exp_year": 2030, "cvc": "1" } });
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let r = attacker
            .post(app.url("/v1/tokens"))
            .bearer_auth(&app.pk)
            .header("Origin", SHOP)
            .json(&garbage)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.contains(&429), "the attacker's own bucket empties: {statuses:?}");
    // Real shoppers on other addresses still check out.
    for ip in ["127.0.0.3", "127.0.0.4"] {
        let r = client_from(&app, ip)
            .post(app.url("/v1/tokens"))
            .bearer_auth(&app.pk)
            .header("Origin", SHOP)
            .json(&card_body(VISA))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "checkout from {ip}");
    }
    // The shared per-key bucket still caps valid traffic as a whole.
    let mut last = 0;
    for i in 0..10 {
        let r = client_from(&app, &format!("127.0.1.{}", i + 1))
            .post(app.url("/v1/tokens"))
            .bearer_auth(&app.pk)
            .header("Origin", SHOP)
            .json(&card_body(VISA))
            .send()
            .await
            .unwrap();
        last = r.status().as_u16();
    }
    assert_eq!(last, 429);
    // IPv6 clients are limited per /64.
    assert_eq!(
        vault::keys::client_bucket("2001:db8:1:2:aaaa::1".parse().unwrap()),
        vault::keys::client_bucket("2001:db8:1:2:bbbb::9".parse().unwrap())
    );
    assert_ne!(
        vault::keys::client_bucket("2001:db8:1:2::1".parse().unwrap()),
        vault::keys::client_bucket("2001:db8:1:3::1".parse().unwrap())
    );
}

#[tokio::test]
async fn finding_05_data_key_versions_are_retired_once_unused() {
    // No background re-encryption or retirement racing the steps below.
    let app = spawn_app_with(|c| {
        c.refresh_interval = Duration::from_secs(3600);
        c.sweep_interval = Duration::from_secs(3600);
    })
    .await;
    let old = app.tokenize(VISA).await;
    let now = START + 10;
    vault::rotation::rotate_data_keys(app.store.as_ref(), &app.master, now).await.unwrap();
    // Not re-encrypted yet: test-mode version 1 is still in use and stays (live-mode version 1,
    // which no token uses, goes).
    let test_v1 = |(m, mode, v): &(String, vault::keys::Mode, u32)| {
        *m == app.merchant_id && *mode == vault::keys::Mode::Test && *v == 1
    };
    let retired = vault::bootstrap::retire_data_keys(app.store.as_ref(), now + 3600).await.unwrap();
    assert!(!retired.iter().any(test_v1), "{retired:?}");
    assert!(retired.iter().any(|(_, mode, v)| *mode == vault::keys::Mode::Live && *v == 1), "{retired:?}");
    let keyring = vault::keyring::Keyring::new(std::sync::Arc::clone(&app.master));
    keyring.refresh(app.store.as_ref()).await.unwrap();
    vault::rotation::reencrypt_all(app.store.as_ref(), &keyring, 100, |_| {}).await.unwrap();
    // Within the grace period running servers may still write with version 1: kept.
    assert!(vault::bootstrap::retire_data_keys(app.store.as_ref(), now + 10).await.unwrap().is_empty());
    let retired = vault::bootstrap::retire_data_keys(app.store.as_ref(), now + 301).await.unwrap();
    assert!(retired.iter().any(test_v1), "{retired:?}");
    let versions: Vec<u32> = app
        .store
        .list_wrapped_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|w| w.merchant_id == app.merchant_id && w.purpose == vault::store::KeyPurpose::Data)
        .map(|w| w.version)
        .collect();
    assert!(!versions.contains(&1) && versions.contains(&2), "{versions:?}");
    // The token re-encrypted under version 2 still detokenizes.
    app.state().refresh_keys().await.unwrap();
    let d: Value = app.detokenize(old["id"].as_str().unwrap(), &app.sk).await.json().await.unwrap();
    assert_eq!(d["card"]["number"], VISA.0);
}

#[tokio::test]
async fn finding_06_card_numbers_in_urls_are_refused_whatever_the_separator() {
    let app = spawn_app().await;
    for path in [
        "/v1/tokens/4242.4242.4242.4242",
        "/v1/tokens/4242_4242_4242_4242",
        "/v1/tokens/4242,4242,4242,4242",
        "/v1/tokens/4242%2F4242%2F4242%2F4242",
        "/v1/tokens/4242%094242%094242%094242",
        "/v1/tokens?a=4242;4242;4242;4242",
        "/v1/tokens?cc1=4242&cc2=4242&cc3=4242&cc4=4242",
        "/v1/tokens?n=424242424242",
    ] {
        let r = app.get(path, &app.sk).await;
        assert_eq!(error_code(r).await, (400, "card_number_in_url".into()), "{path}");
    }
    let r = app.get("/v1/audit_events?limit=10&before=1795132", &app.admin).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn finding_08_cvcs_are_purged_within_a_minute_and_leave_nothing_in_the_files() {
    // The sweeper runs hourly; the CVC purge keeps its own, short schedule.
    let app = spawn_app_with(|c| c.sweep_interval = Duration::from_secs(3600)).await;
    let purged = app.tokenize(AMEX).await;
    let used = app.tokenize(MASTERCARD).await;
    let ct_of = |app: &TestApp, id: &str| -> Vec<u8> {
        app.db().query_row("SELECT cvc_ct FROM tokens WHERE id = ?1", [id], |r| r.get(0)).unwrap()
    };
    let purged_ct = ct_of(&app, purged["id"].as_str().unwrap());
    let used_ct = ct_of(&app, used["id"].as_str().unwrap());
    assert_eq!(app.detokenize(used["id"].as_str().unwrap(), &app.sk).await.status(), 200);
    app.clock.advance(3600);
    app.eventually(|a| a.count("SELECT count(*) FROM tokens WHERE cvc_ct IS NOT NULL") == 0).await;
    // Give the purge task one more round to truncate the WAL, then scan every database file.
    tokio::time::sleep(Duration::from_millis(400)).await;
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", app.db_path.display());
        let Ok(bytes) = std::fs::read(&path) else { continue };
        for (what, ct) in [("purged", &purged_ct), ("handed-out", &used_ct)] {
            // The ciphertext's last 16 bytes (the GCM tag) are unique to it.
            let tail = &ct[ct.len() - 16..];
            assert!(!contains(&bytes, tail), "{path} still holds the {what} CVC ciphertext");
        }
    }
    // Whatever is configured, the purge runs at least every 60 s.
    let config =
        vault::config::Config { cvc_purge_interval: Duration::from_secs(3600), ..vault::config::Config::default() };
    assert_eq!(config.effective_cvc_purge_interval(), Duration::from_secs(60));
}

#[tokio::test]
async fn finding_09_detokenize_during_a_key_rotation_keeps_the_cvc() {
    // This server reloads keys rarely and does not re-encrypt in the background; a CLI rotation
    // re-encrypts under a version it does not know. (On Postgres the change notification may
    // load the version first; the CVC must survive either way.)
    let app = spawn_app_with(|c| {
        c.refresh_interval = Duration::from_secs(3600);
        c.sweep_interval = Duration::from_secs(3600);
    })
    .await;
    let tok = app.tokenize(VISA).await;
    vault::rotation::rotate_data_keys(app.store.as_ref(), &app.master, START + 1).await.unwrap();
    let keyring = vault::keyring::Keyring::new(std::sync::Arc::clone(&app.master));
    keyring.refresh(app.store.as_ref()).await.unwrap();
    assert_eq!(vault::rotation::reencrypt_all(app.store.as_ref(), &keyring, 100, |_| {}).await.unwrap(), 1);
    let r = app.detokenize(tok["id"].as_str().unwrap(), &app.sk).await;
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["card"]["cvc"], VISA.1);
    let d: Value = app.detokenize(tok["id"].as_str().unwrap(), &app.sk).await.json().await.unwrap();
    assert_eq!(d["cvc_returned"], false);
}

#[tokio::test]
async fn finding_10_rate_limit_and_failure_maps_stay_bounded() {
    let app = spawn_app_with(|c| c.limiter_capacity = 50).await;
    let wrong = format!("sk_test_{}", "C".repeat(32));
    for i in 0..200u32 {
        let ip = format!("127.0.{}.{}", 2 + i / 200, 1 + i % 200);
        let r = client_from(&app, &ip).get(app.url("/v1/audit_events")).bearer_auth(&wrong).send().await.unwrap();
        assert!(matches!(r.status().as_u16(), 401 | 429), "{}", r.status());
    }
    let state = app.state();
    assert!(state.ip_limiter.len() <= 51, "per-IP buckets: {}", state.ip_limiter.len());
    assert!(state.auth_failure_entries() <= 50, "failure counters: {}", state.auth_failure_entries());
}

#[tokio::test]
async fn finding_11_live_keys_accept_only_https_origins() {
    let app = spawn_app().await;
    let live_admin = live_key(&app, vault::keys::KeyKind::Secret, Some(vault::keys::Role::Admin)).await;
    let r = admin_create_key(
        &app,
        &live_admin,
        json!({ "kind": "publishable", "allowed_origins": ["http://shop.example"] }),
    )
    .await;
    assert_eq!(error_code(r).await, (400, "insecure_origin".into()));
    for ok in ["https://shop.example", "http://localhost:8080", "http://127.0.0.1:3000"] {
        let r = admin_create_key(&app, &live_admin, json!({ "kind": "publishable", "allowed_origins": [ok] })).await;
        assert_eq!(r.status(), 201, "{ok}");
    }
    // Test keys may use http:// (development).
    let r = admin_create_key(
        &app,
        &app.admin,
        json!({ "kind": "publishable", "allowed_origins": ["http://shop.example"] }),
    )
    .await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn finding_13_cors_only_for_the_keys_origins_and_a_sanitised_origin_in_the_log() {
    let app = spawn_app().await;
    // Another publishable key allows another origin.
    let r = admin_create_key(
        &app,
        &app.admin,
        json!({ "kind": "publishable", "allowed_origins": ["https://other.example"] }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let send = |key: &str, origin: &str| {
        app.client.post(app.url("/v1/tokens")).bearer_auth(key).header("Origin", origin).json(&card_body(VISA)).send()
    };
    let wrong = format!("pk_test_{}", "D".repeat(32));
    for (key, origin) in
        [(wrong.as_str(), "https://other.example"), (wrong.as_str(), SHOP), (app.pk.as_str(), "https://other.example")]
    {
        let r = send(key, origin).await.unwrap();
        assert!(r.status().is_client_error());
        assert!(r.headers().get("access-control-allow-origin").is_none(), "{key} {origin}");
    }
    // The key's own origin gets CORS headers, on errors too.
    let r = app
        .client
        .post(app.url("/v1/tokens"))
        .bearer_auth(&app.pk)
        .header("Origin", SHOP)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["access-control-allow-origin"], SHOP);

    let hostile = format!("https://evil.example/<script>alert(1)</script>{}", "x".repeat(3000));
    let r = send(&app.pk, &hostile).await.unwrap();
    assert_eq!(r.status(), 403);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let events = app.audit_events("origin.denied").await;
    let logged = events.iter().map(|e| e["detail"]["origin"].as_str().unwrap_or_default()).collect::<Vec<_>>();
    assert!(logged.iter().all(|o| !o.contains('<') && o.chars().count() <= 101), "{logged:?}");
    assert!(!contains(&captured_logs(), b"<script>alert(1)"), "the raw Origin reached the log");
}

#[tokio::test]
async fn finding_14_no_card_numbers_through_side_doors() {
    let app = spawn_app().await;
    // A card number as Idempotency-Key: accepted, but never stored as such.
    let r = app.tokenize_req(&card_body(VISA_DEBIT)).header("Idempotency-Key", MASTERCARD.0).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = app.tokenize_req(&card_body(VISA_DEBIT)).header("Idempotency-Key", MASTERCARD.0).send().await.unwrap();
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    // Free-text fields refuse card numbers.
    let r = admin_create_key(&app, &app.admin, json!({ "kind": "publishable", "label": "5555 5555 5555 4444" })).await;
    assert_eq!(error_code(r).await, (400, "card_number_in_text".into()));
    let ro_id = app.key_id_with_role("read_only").await;
    let r = app.post(&format!("/v1/keys/{ro_id}"), &app.admin, Some(json!({ "label": "5555-5555-5555-4444" }))).await;
    assert_eq!(error_code(r).await, (400, "card_number_in_text".into()));
    // So do allowed origins (stored, listed and audited in clear), in the error's param too.
    let origins = json!({ "allowed_origins": ["https://5555-5555-5555-4444.shop.example"] });
    let r = app.post(&format!("/v1/keys/{ro_id}"), &app.admin, Some(origins)).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["error"]["code"].as_str(), v["error"]["param"].as_str()),
        (Some("card_number_in_text"), Some("allowed_origins")),
        "{v}"
    );
    let mut body = card_body(VISA);
    body["card"]["name"] = json!("5555555555554444");
    assert_eq!(error_code(app.tokenize_req(&body).send().await.unwrap()).await, (400, "card_number_in_text".into()));
    assert!(
        vault::bootstrap::create_merchant(app.store.as_ref(), &app.master, "Shop 5555 5555 5555 4444", START)
            .await
            .is_err()
    );
    let r = admin_create_key(&app, &app.admin, json!({ "kind": "publishable", "label": "checkout 2026-11-26 12:00" }))
        .await;
    assert_eq!(r.status(), 201);
    app.assert_no_card_data().await;
}

#[tokio::test]
async fn finding_15_every_error_is_the_documented_json() {
    let app = spawn_app().await;
    let auth = format!("Authorization: Bearer {}\r\n", app.sk);
    let cases: [(String, u16, &str); 4] = [
        (format!("GET /v1/tokens/%FF%FE HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n"), 400, "malformed_request"),
        (
            format!("POST /v1/tokens HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n{auth}\r\n"),
            400,
            "malformed_request",
        ),
        (
            format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000)),
            431,
            "header_too_large",
        ),
        (
            format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n", "a".repeat(9_000)),
            431,
            "header_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let (answer, _) = raw_exchange(&app, request.as_bytes()).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{answer}");
        assert_eq!(header_of(&answer, "content-type"), Some("application/json"), "{answer}");
        assert_eq!(json_body_of(&answer)["error"]["code"], code, "{answer}");
        assert_eq!(header_of(&answer, "x-content-type-options"), Some("nosniff"));
        assert!(header_of(&answer, "request-id").is_some());
    }
}

#[tokio::test]
async fn finding_16_only_application_json_is_accepted() {
    let app = spawn_app().await;
    for ct in ["application/jsonx", "application/json-seq", "text/json", "application/json; charset=latin1"] {
        let r = app
            .client
            .post(app.url("/v1/tokens"))
            .bearer_auth(&app.pk)
            .header("Origin", SHOP)
            .header("Content-Type", ct)
            .body(card_body(VISA).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(r).await, (415, "unsupported_media_type".into()), "{ct}");
    }
}

#[tokio::test]
async fn finding_17_early_answers_close_the_connection_cleanly() {
    let app = spawn_app_with(|c| c.rate_per_ip = vault::ratelimit::Rate { per_second: 0.01, burst: 1.0 }).await;
    let body = card_body(VISA).to_string();
    let request = format!(
        "POST /v1/tokens HTTP/1.1\r\nHost: localhost\r\nOrigin: {SHOP}\r\nAuthorization: Bearer pk_test_{}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        "E".repeat(32),
        body.len()
    );
    // 401 (body unread), then 429 from the per-IP limit (body unread): both say
    // `Connection: close` and end with a TLS close_notify.
    for expected in ["401", "429"] {
        let (answer, clean) = raw_exchange(&app, request.as_bytes()).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {expected} ")), "{answer}");
        assert_eq!(header_of(&answer, "connection"), Some("close"), "{answer}");
        assert!(clean, "connection dropped without close_notify after {expected}");
    }
}

#[tokio::test]
async fn finding_18_validation_gaps_are_closed() {
    let app = spawn_app().await;
    for origin in ["https://shop.example:99999", "https://shop.example:0", "https://-shop.example", "https://a/b"] {
        let r = admin_create_key(&app, &app.admin, json!({ "kind": "publishable", "allowed_origins": [origin] })).await;
        assert_eq!(error_code(r).await, (400, "parameter_invalid".into()), "{origin}");
    }
    let r = app.get("/v1/audit_events?limit=1001", &app.admin).await;
    assert_eq!(error_code(r).await, (400, "parameter_invalid".into()));
    let mut body = card_body(VISA);
    body["card"]["name"] = json!("Ada\u{0}Lovelace");
    assert_eq!(error_code(app.tokenize_req(&body).send().await.unwrap()).await, (400, "parameter_invalid".into()));
    let mut body = card_body(VISA);
    body["card"]["number"] = json!("-4242424242424242");
    assert_eq!(error_code(app.tokenize_req(&body).send().await.unwrap()).await, (400, "invalid_characters".into()));
    // Origins compare case-insensitively, as documented.
    let r = app
        .client
        .post(app.url("/v1/tokens"))
        .bearer_auth(&app.pk)
        .header("Origin", SHOP.to_uppercase())
        .json(&card_body(VISA))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // One header may not be 100 KB.
    let r = app.client.get(app.url("/healthz")).header("X-Big", "a".repeat(100_000)).send().await.unwrap();
    assert_eq!(r.status(), 431);
}

#[tokio::test]
async fn finding_19_request_ids_are_unpredictable() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let r = app.client.get(app.url("/healthz")).send().await.unwrap();
        ids.push(r.headers()["request-id"].to_str().unwrap().to_owned());
    }
    for pair in ids.windows(2) {
        let common = pair[0].chars().zip(pair[1].chars()).take_while(|(a, b)| a == b).count();
        assert!(common < 8, "consecutive request ids share a {common}-character prefix: {pair:?}");
    }
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
}
