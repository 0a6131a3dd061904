use std::time::Duration;

use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::*;

fn assert_security_headers(r: &Response, api: bool) {
    let h = r.headers();
    assert_eq!(h["strict-transport-security"], "max-age=63072000; includeSubDomains");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h.contains_key("request-id"));
    assert!(h["permissions-policy"].to_str().unwrap().contains("camera=()"));
    if api {
        assert_eq!(h["content-security-policy"], "default-src 'none'; frame-ancestors 'none'");
        assert_eq!(h["x-frame-options"], "DENY");
    }
}

#[tokio::test]
async fn security_headers_on_success_and_error() {
    let app = spawn_app().await;
    let ok = app.tokenize_req(&card_body(VISA)).send().await.unwrap();
    assert_eq!(ok.status(), 201);
    assert_security_headers(&ok, true);
    for r in [
        app.client.get(app.url("/healthz")).send().await.unwrap(),
        app.client.get(app.url("/readyz")).send().await.unwrap(),
        app.client.get(app.url("/v1/nope")).send().await.unwrap(),
        app.get("/v1/tokens/tok_AAAAAAAAAAAAAAAAAAAAAAAA", &app.sk).await,
        app.get("/v1/tokens/tok_AAAAAAAAAAAAAAAAAAAAAAAA", "sk_test_wrong").await,
        app.tokenize_req(&json!({})).send().await.unwrap(),
        app.client.put(app.url("/v1/tokens")).send().await.unwrap(),
    ] {
        assert_security_headers(&r, true);
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        if status >= 400 {
            assert!(body["error"]["code"].is_string(), "{body}");
        }
    }
    let r = app.client.get(app.url("/v1/nope")).send().await.unwrap();
    assert_eq!(error_code(r).await, (404, "route_not_found".into()));
    let r = app.client.put(app.url("/v1/tokens")).send().await.unwrap();
    assert_eq!(error_code(r).await, (405, "method_not_allowed".into()));
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ready");
    let spec: Value = app.client.get(app.url("/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    assert!(spec["paths"]["/v1/tokens"]["post"].is_object());
}

#[tokio::test]
async fn authentication_errors() {
    let app = spawn_app().await;
    let path = "/v1/tokens/tok_AAAAAAAAAAAAAAAAAAAAAAAA";
    let r = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(error_code(r).await, (401, "missing_api_key".into()));
    let r = app.client.get(app.url(path)).header("Authorization", "Basic abc").send().await.unwrap();
    assert_eq!(error_code(r).await, (401, "invalid_api_key".into()));
    let wrong = format!("sk_test_{}", "A".repeat(32));
    assert_eq!(error_code(app.get(path, &wrong).await).await, (401, "invalid_api_key".into()));
    // A key of another vault (other master key) is unknown here.
    let other = spawn_app().await;
    assert_eq!(error_code(app.get(path, &other.sk).await).await, (401, "invalid_api_key".into()));
    assert!(!app.audit_events("auth.failed").await.is_empty());
}

#[tokio::test]
async fn repeated_authentication_failures_raise_a_suspicious_activity_event() {
    let app = spawn_app().await;
    for _ in 0..6 {
        let wrong = format!("sk_test_{}", "B".repeat(32));
        assert_eq!(app.get("/v1/audit_events", &wrong).await.status(), 401);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let events = app.audit_events("suspicious_activity").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail"]["reason"], "repeated_authentication_failures");
    assert_eq!(events[0]["ip"], "127.0.0.1");
    let logs = String::from_utf8_lossy(&captured_logs()).into_owned();
    assert!(logs.contains("suspicious activity: repeated authentication failures"));
}

#[tokio::test]
async fn card_numbers_in_urls_are_refused_and_not_logged() {
    let app = spawn_app().await;
    for path in [
        format!("/v1/tokens/{}", MASTERCARD.0),
        format!("/v1/tokens?number={}", AMEX.0),
        "/v1/tokens/5555%205555%205555%204444".to_owned(),
        "/healthz?pan=5555-5555-5555-4444".to_owned(),
    ] {
        let r = app.client.get(app.url(&path)).bearer_auth(&app.sk).send().await.unwrap();
        assert_security_headers(&r, true);
        assert_eq!(error_code(r).await, (400, "card_number_in_url".into()), "{path}");
    }
    app.assert_no_card_data().await;
}

#[tokio::test]
async fn cors_allows_the_keys_origins_and_the_vault_origin_only() {
    let app = spawn_app().await;
    // Preflight from an allowed origin.
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/tokens"))
        .header("Origin", SHOP)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization, content-type, idempotency-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], SHOP);
    assert_eq!(r.headers()["access-control-allow-methods"], "POST");
    let allowed = r.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    for h in ["authorization", "content-type", "idempotency-key"] {
        assert!(allowed.contains(h));
    }
    // Preflight and request from a foreign origin: refused, no CORS headers.
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/tokens"))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    let r = app
        .client
        .post(app.url("/v1/tokens"))
        .bearer_auth(&app.pk)
        .header("Origin", "https://evil.example")
        .json(&card_body(VISA))
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    assert_eq!(error_code(r).await, (403, "origin_not_allowed".into()));
    // No Origin at all: refused.
    let r = app.client.post(app.url("/v1/tokens")).bearer_auth(&app.pk).json(&card_body(VISA)).send().await.unwrap();
    assert_eq!(error_code(r).await, (403, "origin_not_allowed".into()));
    // Allowed origin: CORS headers on the answer.
    let r = app.tokenize_req(&card_body(VISA)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["access-control-allow-origin"], SHOP);
    // The vault's own origin (the frame) is accepted for any publishable key.
    let own = format!("https://localhost:{}", app.addr.port());
    let r = app
        .client
        .post(app.url("/v1/tokens"))
        .bearer_auth(&app.pk)
        .header("Origin", &own)
        .json(&card_body(VISA))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["access-control-allow-origin"], own.as_str());
    assert_eq!(app.count("SELECT count(*) FROM tokens"), 2);
    assert!(!app.audit_events("origin.denied").await.is_empty());
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.rate_per_key = vault::ratelimit::Rate { per_second: 0.01, burst: 3.0 };
        c.rate_per_ip = vault::ratelimit::Rate { per_second: 0.01, burst: 7.0 };
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.tokenize_req(&card_body(VISA)).send().await.unwrap().status(), 201);
    }
    let r = app.tokenize_req(&card_body(VISA)).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(r.headers()["ratelimit-limit"], "3");
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    assert!(r.headers().contains_key("ratelimit-reset"));
    assert_security_headers(&r, true);
    assert_eq!(error_code(r).await, (429, "rate_limited".into()));
    // Another key still works until the per-IP limit (7 requests) is reached.
    for _ in 0..3 {
        assert_eq!(app.get("/v1/tokens/tok_AAAAAAAAAAAAAAAAAAAAAAAA", &app.sk).await.status(), 404);
    }
    let r = app.get("/v1/tokens/tok_AAAAAAAAAAAAAAAAAAAAAAAA", &app.sk).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn roles_are_enforced() {
    let app = spawn_app().await;
    let tok = app.tokenize(VISA).await;
    let id = tok["id"].as_str().unwrap();
    let read = format!("/v1/tokens/{id}");
    let detok = format!("/v1/tokens/{id}/detokenize");
    let denied = (403, "insufficient_permissions".to_owned());
    // Publishable key: only tokenization.
    assert_eq!(error_code(app.get(&read, &app.pk).await).await, denied);
    assert_eq!(error_code(app.post(&detok, &app.pk, None).await).await, denied);
    // Secret keys cannot tokenize (that is the publishable key's job).
    for key in [&app.sk, &app.admin, &app.ro] {
        let r = app
            .client
            .post(app.url("/v1/tokens"))
            .bearer_auth(key)
            .header("Origin", SHOP)
            .json(&card_body(VISA))
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(r).await, denied);
    }
    // Read-only: metadata and audit, no detokenize, no delete, no keys.
    assert_eq!(app.get(&read, &app.ro).await.status(), 200);
    assert_eq!(app.get("/v1/audit_events", &app.ro).await.status(), 200);
    assert_eq!(error_code(app.post(&detok, &app.ro, None).await).await, denied);
    let r = app.client.delete(app.url(&read)).bearer_auth(&app.ro).send().await.unwrap();
    assert_eq!(error_code(r).await, denied);
    assert_eq!(error_code(app.get("/v1/keys", &app.ro).await).await, denied);
    // Admin: keys and audit, no card data.
    assert_eq!(app.get("/v1/keys", &app.admin).await.status(), 200);
    assert_eq!(app.get("/v1/audit_events", &app.admin).await.status(), 200);
    assert_eq!(error_code(app.get(&read, &app.admin).await).await, denied);
    assert_eq!(error_code(app.post(&detok, &app.admin, None).await).await, denied);
    // Tokenization: tokens, no keys, no audit.
    assert_eq!(error_code(app.get("/v1/keys", &app.sk).await).await, denied);
    assert_eq!(error_code(app.get("/v1/audit_events", &app.sk).await).await, denied);
    assert_eq!(app.post(&detok, &app.sk, None).await.status(), 200);
    assert!(!app.audit_events("permission.denied").await.is_empty());
    app.assert_no_card_data().await;
}

#[tokio::test]
async fn ip_allowlists_are_enforced_and_audited() {
    let app = spawn_app().await;
    let tok = app.tokenize(MASTERCARD).await;
    let id = tok["id"].as_str().unwrap();
    let read = format!("/v1/tokens/{id}");
    let detok = format!("/v1/tokens/{id}/detokenize");
    let ro_id = app.key_id_with_role("read_only").await;
    // Admin moves the read-only key to another network: it stops working from here.
    let r = app.post(&format!("/v1/keys/{ro_id}"), &app.admin, Some(json!({ "ip_allowlist": ["10.0.0.0/24"] }))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(error_code(app.get(&read, &app.ro).await).await, (403, "ip_not_allowed".into()));
    // An empty allowlist allows any IP (for everything but detokenization).
    let r = app.post(&format!("/v1/keys/{ro_id}"), &app.admin, Some(json!({ "ip_allowlist": [] }))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.get(&read, &app.ro).await.status(), 200);
    let r = app.post(&format!("/v1/keys/{ro_id}"), &app.admin, Some(json!({ "ip_allowlist": ["127.0.0.1"] }))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.get(&read, &app.ro).await.status(), 200);

    // The tokenization key's allowlist can only be widened on the vault host; moved away there
    // (as `vault keys` does, through the store), it stops working from here.
    let mut sk = app.store.list_api_keys().await.unwrap().into_iter().find(|k| k.id == app.sk_id).unwrap();
    sk.ip_allowlist = vec![vault::keys::parse_cidr("10.0.0.0/24").unwrap()];
    let e = vault::bootstrap::cli_event("key.updated", START, Some(&app.merchant_id), Some(sk.mode), json!({}));
    app.store.update_api_key(sk, e).await.unwrap();
    app.state().refresh_keys().await.unwrap();
    assert_eq!(error_code(app.post(&detok, &app.sk, None).await).await, (403, "ip_not_allowed".into()));
    assert_eq!(error_code(app.get(&read, &app.sk).await).await, (403, "ip_not_allowed".into()));
    // Narrowing it through the API is allowed: an empty list reads from anywhere, never detokenizes.
    let r = app.post(&format!("/v1/keys/{}", app.sk_id), &app.admin, Some(json!({ "ip_allowlist": [] }))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.get(&read, &app.sk).await.status(), 200);
    assert_eq!(error_code(app.post(&detok, &app.sk, None).await).await, (403, "ip_not_allowed".into()));
    // Audited: the denials, the suspicious use, the allowlist changes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.audit_events("ip.denied").await.len(), 4);
    let suspicious = app.audit_events("suspicious_activity").await;
    assert!(suspicious.iter().any(|e| e["detail"]["reason"] == "key_used_from_non_allowlisted_ip"));
    assert_eq!(app.audit_events("key.updated").await.len(), 5);
    let r = app.post(&format!("/v1/keys/{ro_id}"), &app.admin, Some(json!({ "ip_allowlist": ["nonsense"] }))).await;
    assert_eq!(error_code(r).await, (400, "parameter_invalid".into()));
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|c| {
        c.header_timeout = Duration::from_millis(500);
        c.body_timeout = Duration::from_millis(500);
    })
    .await;
    // Headers never finished: the connection is closed.
    let mut s = crate::tls::connect(&app, None).await.unwrap();
    s.write_all(b"POST /v1/tokens HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "connection still open after the header timeout");
    // Body never finished: 408.
    let mut s = crate::tls::connect(&app, None).await.unwrap();
    let head = format!(
        "POST /v1/tokens HTTP/1.1\r\nHost: localhost\r\nOrigin: {SHOP}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"card\":",
        app.pk
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"));
}

#[tokio::test]
async fn audit_log_lists_events_without_secrets() {
    let app = spawn_app().await;
    let tok = app.tokenize(AMEX).await;
    app.detokenize(tok["id"].as_str().unwrap(), &app.sk).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = app.get("/v1/audit_events?limit=500", &app.ro).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    for secret in [&app.pk, &app.sk, &app.admin, &app.ro] {
        assert!(!text.contains(secret.as_str()), "audit log contains a key");
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    let events: Vec<&str> = v["data"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    for e in ["key.created", "merchant.created", "token.created", "token.detokenized"] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    let detok = v["data"].as_array().unwrap().iter().find(|e| e["event"] == "token.detokenized").unwrap();
    assert_eq!(detok["detail"]["cvc_returned"], true);
    assert_eq!(detok["ip"], "127.0.0.1");
    let r = app.get("/v1/audit_events?limit=x", &app.ro).await;
    assert_eq!(error_code(r).await, (400, "parameter_invalid".into()));
    // Logs carry the same events.
    let logs = String::from_utf8_lossy(&captured_logs()).into_owned();
    assert!(logs.contains("\"event\":\"token.detokenized\""));
    app.assert_no_card_data().await;
}
