//! Payments and refunds, outside-in over TLS: idempotency under retry storms, charged exactly
//! once (the sandbox ledger), the refund-sum invariant under concurrency, declines, roles.

use serde_json::{Value, json};

use crate::helpers::*;

/// A secret key with the `payments` role (created through the admin API).
pub async fn payments_key(app: &TestApp) -> String {
    let r =
        app.post("/v1/keys", &app.admin, Some(json!({ "kind": "secret", "role": "payments", "label": "pay" }))).await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    v["secret"].as_str().unwrap().to_owned()
}

pub async fn pay(app: &TestApp, key: &str, idem: &str, body: &Value) -> reqwest::Response {
    post_idempotent(app, "/v1/payments", key, idem, body).await
}

pub async fn refund(app: &TestApp, key: &str, idem: &str, body: &Value) -> reqwest::Response {
    post_idempotent(app, "/v1/refunds", key, idem, body).await
}

async fn post_idempotent(app: &TestApp, path: &str, key: &str, idem: &str, body: &Value) -> reqwest::Response {
    app.client.post(app.url(path)).bearer_auth(key).header("Idempotency-Key", idem).json(body).send().await.unwrap()
}

pub async fn token_for(app: &TestApp, number: &str) -> String {
    let t = app.tokenize((number, "123")).await;
    t["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn fifty_identical_requests_charge_once() {
    let app = spawn_app().await;
    let key = payments_key(&app).await;
    let token = token_for(&app, VISA.0).await;
    let body = json!({ "amount": 1999, "currency": "usd", "token": token, "description": "Order 42" });
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (client, url, key, body) = (app.client.clone(), app.url("/v1/payments"), key.clone(), body.clone());
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .bearer_auth(key)
                    .header("Idempotency-Key", "order-42")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap();
                (status, v)
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (status, v) = t.await.unwrap();
        match status {
            201 => {
                assert_eq!(v["status"], "succeeded");
                ids.insert(v["id"].as_str().unwrap().to_owned());
            }
            409 => assert_eq!(v["error"]["code"], "idempotency_key_in_use"),
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!(ids.len(), 1, "every answer is the same payment");
    assert_eq!(app.state().sandbox.authorizations(), 1, "charged exactly once");
    assert_eq!(app.state().sandbox.total_captured(), 1999);

    // A later retry replays the first answer.
    let r = pay(&app, &key, "order-42", &body).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["card"],
        json!({
            "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030,
            "fingerprint": v["card"]["fingerprint"].clone()
        })
    );
    assert!(v["card"]["fingerprint"].is_string());
    assert_eq!(v["description"], "Order 42");
    // Same key, other body: 422; no key: 400.
    let other = json!({ "amount": 2000, "currency": "usd", "token": token });
    let (status, code) = error_code(pay(&app, &key, "order-42", &other).await).await;
    assert_eq!((status, code.as_str()), (422, "idempotency_key_reused"));
    let r = app.post("/v1/payments", &key, Some(body.clone())).await;
    let (status, code) = error_code(r).await;
    assert_eq!((status, code.as_str()), (400, "idempotency_key_required"));
    assert_eq!(app.state().sandbox.authorizations(), 1);
    app.assert_no_card_data().await;
}

#[tokio::test]
async fn a_lost_answer_is_resolved_by_asking_never_by_charging_again() {
    let app = spawn_app().await;
    let key = payments_key(&app).await;
    // The timeout card: the sandbox charges, then the answer is lost.
    let token = token_for(&app, "4012888888881881").await;
    let body = json!({ "amount": 500, "currency": "eur", "token": token });
    let r = pay(&app, &key, "lost-1", &body).await;
    assert_eq!(r.status(), 201);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["status"], "processing");
    // The client's retry (its answer was lost too): the vault asks the processor.
    let r = pay(&app, &key, "lost-1", &body).await;
    assert_eq!(r.status(), 201);
    let second: Value = r.json().await.unwrap();
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["status"], "succeeded");
    let r = pay(&app, &key, "lost-1", &body).await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(app.state().sandbox.authorizations(), 1, "never a second charge");

    // Without a retry, the reconciler resolves it.
    let token = token_for(&app, "4012888888881881").await;
    let r = pay(&app, &key, "lost-2", &json!({ "amount": 700, "currency": "usd", "token": token })).await;
    let lost: Value = r.json().await.unwrap();
    assert_eq!(lost["status"], "processing");
    app.clock.advance(120);
    vault::api::payments::reconcile(app.state()).await;
    let r = app.get(&format!("/v1/payments/{}", lost["id"].as_str().unwrap()), &key).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "succeeded");
    assert_eq!(app.state().sandbox.authorizations(), 2);
    let events: Value = app.get("/v1/events?type=payment.succeeded", &key).await.json().await.unwrap();
    assert_eq!(events["data"].as_array().unwrap().len(), 2, "one event per payment: {events}");
}

#[tokio::test]
async fn a_lost_refund_answer_is_resolved_by_asking_never_by_refunding_again() {
    let app = spawn_app().await;
    let key = payments_key(&app).await;
    // A timeout-card payment, settled by the client's retry.
    let token = token_for(&app, "4012888888881881").await;
    let body = json!({ "amount": 1000, "currency": "usd", "token": token });
    assert_eq!(pay(&app, &key, "lost-r", &body).await.status(), 201);
    let payment: Value = pay(&app, &key, "lost-r", &body).await.json().await.unwrap();
    assert_eq!(payment["status"], "succeeded");
    let id = payment["id"].as_str().unwrap().to_owned();

    // Its refunds are made, then their answers lost: `processing`.
    let r = refund(&app, &key, "ref-1", &json!({ "payment": id, "amount": 400 })).await;
    assert_eq!(r.status(), 201);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["status"], "processing");
    assert_eq!(app.state().sandbox.total_refunded(), 400, "the refund reached the processor");
    // The client's retry asks and settles it; nothing is refunded twice.
    let second: Value =
        refund(&app, &key, "ref-1", &json!({ "payment": id, "amount": 400 })).await.json().await.unwrap();
    assert_eq!((second["id"].clone(), second["status"].as_str()), (first["id"].clone(), Some("succeeded")));
    assert_eq!(app.state().sandbox.total_refunded(), 400);

    // Without a retry, the reconciler asks, once the refund is old enough.
    let lost: Value = refund(&app, &key, "ref-2", &json!({ "payment": id, "amount": 300 })).await.json().await.unwrap();
    assert_eq!(lost["status"], "processing");
    let lost_id = lost["id"].as_str().unwrap().to_owned();
    vault::api::payments::reconcile_refunds(app.state()).await;
    let v: Value = app.get(&format!("/v1/refunds/{lost_id}"), &key).await.json().await.unwrap();
    assert_eq!(v["status"], "processing", "too young to reconcile: its request may still be running");
    app.clock.advance(120);
    vault::api::payments::reconcile_refunds(app.state()).await;
    let v: Value = app.get(&format!("/v1/refunds/{lost_id}"), &key).await.json().await.unwrap();
    assert_eq!(v["status"], "succeeded");
    assert_eq!(app.state().sandbox.total_refunded(), 700, "asked, never refunded again");

    // A refund reserved but never sent (the instance died in between) fails after ten
    // reconcile periods, and its amount can be refunded again.
    let never = vault::store::payments::RefundRecord {
        id: "re_neversentneversentneversentabcd".into(),
        payment_id: id.clone(),
        merchant_id: app.merchant_id.clone(),
        mode: vault::keys::Mode::Test,
        amount: 300,
        status: "processing".into(),
        created: app.state().now(),
        data: json!({ "currency": "usd", "reason": null, "request_hash": "x" }),
    };
    app.state().store.reserve_refund(never).await.unwrap();
    let p: Value = app.get(&format!("/v1/payments/{id}"), &key).await.json().await.unwrap();
    assert_eq!(p["amount_refunded"], 1000);
    app.clock.advance(120);
    vault::api::payments::reconcile_refunds(app.state()).await;
    let v: Value = app.get("/v1/refunds/re_neversentneversentneversentabcd", &key).await.json().await.unwrap();
    assert_eq!(v["status"], "processing", "not yet ten periods old");
    app.clock.advance(600);
    vault::api::payments::reconcile_refunds(app.state()).await;
    let v: Value = app.get("/v1/refunds/re_neversentneversentneversentabcd", &key).await.json().await.unwrap();
    assert_eq!(v["status"], "failed");
    let p: Value = app.get(&format!("/v1/payments/{id}"), &key).await.json().await.unwrap();
    assert_eq!(p["amount_refunded"], 700, "a failed refund gives its amount back");
    assert_eq!(app.state().sandbox.total_refunded(), 700);

    let events: Value = app.get("/v1/events?type=refund.succeeded", &key).await.json().await.unwrap();
    assert_eq!(events["data"].as_array().unwrap().len(), 2, "one event per settled refund: {events}");
    let events: Value = app.get("/v1/events?type=refund.failed", &key).await.json().await.unwrap();
    assert_eq!(events["data"].as_array().unwrap().len(), 1, "{events}");
}

#[tokio::test]
async fn twenty_concurrent_partial_refunds_never_exceed() {
    let app = spawn_app().await;
    let key = payments_key(&app).await;
    let token = token_for(&app, VISA.0).await;
    let r = pay(&app, &key, "p1", &json!({ "amount": 1000, "currency": "jpy", "token": token })).await;
    let payment: Value = r.json().await.unwrap();
    let id = payment["id"].as_str().unwrap().to_owned();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (client, url, key, id) = (app.client.clone(), app.url("/v1/refunds"), key.clone(), id.clone());
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .bearer_auth(key)
                    .header("Idempotency-Key", format!("refund-{i}"))
                    .json(&json!({ "payment": id, "amount": 150 }))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap();
                (status, v)
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let (status, v) = t.await.unwrap();
        match status {
            201 => {
                assert_eq!(v["status"], "succeeded");
                ok += 1;
            }
            400 => assert_eq!(v["error"]["code"], "refund_exceeds_captured"),
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!(ok, 6, "6 × 150 ≤ 1000 < 7 × 150");
    let p: Value = app.get(&format!("/v1/payments/{id}"), &key).await.json().await.unwrap();
    assert_eq!(p["amount_refunded"], 900);
    assert_eq!(app.state().sandbox.total_refunded(), 900);
    // The rest, in full (no amount), then nothing more.
    let r = app
        .client
        .post(app.url("/v1/refunds"))
        .bearer_auth(&key)
        .header("Idempotency-Key", "rest")
        .json(&json!({ "payment": id, "reason": "requested_by_customer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let rest: Value = r.json().await.unwrap();
    assert_eq!((rest["amount"].as_i64(), rest["currency"].as_str()), (Some(100), Some("jpy")));
    let r = app
        .client
        .post(app.url("/v1/refunds"))
        .bearer_auth(&key)
        .header("Idempotency-Key", "more")
        .json(&json!({ "payment": id }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (400, "refund_exceeds_captured".to_owned()));
    let list: Value = app.get(&format!("/v1/refunds?payment={id}&limit=100"), &key).await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 7);
    let one = list["data"][0]["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/v1/refunds/{one}"), &app.ro).await.status(), 200);
}

#[tokio::test]
async fn declines_capture_cancel_and_validation() {
    let app = spawn_app().await;
    let key = payments_key(&app).await;
    for (number, code) in [
        ("4000000000000002", "generic_decline"),
        ("4000000000009995", "insufficient_funds"),
        ("5105105105105100", "lost_card"),
        ("5200828282828210", "stolen_card"),
        ("2223003122003222", "expired_card"),
        ("6011000990139424", "incorrect_cvc"),
        ("3566002020360505", "processing_error"),
    ] {
        let token = token_for(&app, number).await;
        let r =
            pay(&app, &key, &format!("d-{code}"), &json!({ "amount": 100, "currency": "usd", "token": token })).await;
        assert_eq!(r.status(), 402, "{number}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "card_error");
        assert_eq!(v["error"]["code"], "card_declined");
        assert_eq!(v["error"]["decline_code"], code);
        let p: Value = app
            .get(&format!("/v1/payments/{}", v["error"]["payment"].as_str().unwrap()), &key)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!((p["status"].as_str(), p["decline_code"].as_str()), (Some("failed"), Some(code)), "{p}");
    }

    // Authorise, capture part; the CVC was used once and is gone.
    let token = token_for(&app, MASTERCARD.0).await;
    let r = pay(&app, &key, "auth-1", &json!({ "amount": 5000, "currency": "kwd", "token": token, "capture": false }))
        .await;
    assert_eq!(r.status(), 201);
    let p: Value = r.json().await.unwrap();
    assert_eq!((p["status"].as_str(), p["amount_capturable"].as_i64()), (Some("requires_capture"), Some(5000)));
    let id = p["id"].as_str().unwrap();
    let detok: Value = app.detokenize(&token, &app.sk).await.json().await.unwrap();
    assert_eq!(detok["cvc_returned"], false, "the payment consumed the CVC");
    let capture = |amount: i64, idem: &str| {
        app.client
            .post(app.url(&format!("/v1/payments/{id}/capture")))
            .bearer_auth(&key)
            .header("Idempotency-Key", idem.to_owned())
            .json(&json!({ "amount": amount }))
            .send()
    };
    assert_eq!(error_code(capture(5001, "c0").await.unwrap()).await, (400, "amount_too_large".to_owned()));
    let r = capture(4000, "c1").await.unwrap();
    assert_eq!(r.status(), 200);
    let captured: Value = r.json().await.unwrap();
    assert_eq!((captured["status"].as_str(), captured["amount_captured"].as_i64()), (Some("succeeded"), Some(4000)));
    assert_eq!(error_code(capture(1, "c2").await.unwrap()).await, (400, "payment_not_capturable".to_owned()));

    let token = token_for(&app, VISA_DEBIT.0).await;
    let r =
        pay(&app, &key, "auth-2", &json!({ "amount": 300, "currency": "USD", "token": token, "capture": false })).await;
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["currency"], "usd");
    let r = app
        .client
        .post(app.url(&format!("/v1/payments/{}/cancel", p["id"].as_str().unwrap())))
        .bearer_auth(&key)
        .header("Idempotency-Key", "x1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "canceled");

    // Validation with precise errors.
    let token = token_for(&app, VISA.0).await;
    for (i, (body, status, code)) in [
        (json!({ "amount": 10.5, "currency": "usd", "token": token }), 400, "amount_invalid"),
        (json!({ "amount": 0, "currency": "usd", "token": token }), 400, "amount_invalid"),
        (json!({ "amount": 100, "currency": "xyz", "token": token }), 400, "currency_invalid"),
        (json!({ "currency": "usd", "token": token }), 400, "parameter_missing"),
        (json!({ "amount": 100, "currency": "usd", "token": "tok_nope" }), 400, "token_invalid"),
        (json!({ "amount": 100, "currency": "usd", "token": token, "extra": 1 }), 400, "parameter_unknown"),
        (
            json!({ "amount": 100, "currency": "usd", "token": token, "description": "card 4242 4242 4242 4242" }),
            400,
            "card_number_in_text",
        ),
        (
            json!({ "amount": 100, "currency": "usd", "token": token, "metadata": { "note": "4000056655665556" } }),
            400,
            "card_number_in_text",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let r = pay(&app, &key, &format!("v-{i}"), &body).await;
        assert_eq!(error_code(r).await, (status, code.to_owned()), "{body}");
    }

    // Roles: read-only keys read, never write; the tokenization key has no payments permission;
    // publishable keys never reach these routes.
    let list: Value = app.get("/v1/payments?limit=2&status=failed", &app.ro).await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["has_more"], true);
    let cursor = list["next_cursor"].as_str().unwrap();
    let next: Value = app
        .get(&format!("/v1/payments?limit=100&status=failed&starting_after={cursor}"), &app.ro)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["data"].as_array().unwrap().len(), 5);
    let body = json!({ "amount": 100, "currency": "usd", "token": token });
    for k in [&app.ro, &app.sk, &app.pk] {
        let r = pay(&app, k, "role", &body).await;
        assert_eq!(r.status(), 403);
    }
    assert_eq!(app.get("/v1/payments", &app.pk).await.status(), 403);
    app.assert_no_card_data().await;
}

#[tokio::test]
async fn a_refused_request_frees_its_key_before_it_answers() {
    // Every answer, refusals included, releases an unsaved claim before it leaves: the same
    // request sent again the moment the refusal arrives gets the refusal again, never a 409
    // "in flight" from a release still on its way (it was released in the background).
    let app = spawn_app().await;
    let key = payments_key(&app).await;
    let token = token_for(&app, VISA.0).await;
    let r =
        pay(&app, &key, "held", &json!({ "amount": 700, "currency": "usd", "token": token, "capture": false })).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    for round in 0..20 {
        let idem = format!("too-much-{round}");
        for attempt in 0..3 {
            let r = app
                .client
                .post(app.url(&format!("/v1/payments/{id}/capture")))
                .bearer_auth(&key)
                .header("Idempotency-Key", &idem)
                .json(&json!({ "amount": 701 }))
                .send()
                .await
                .unwrap();
            assert_eq!(error_code(r).await, (400, "amount_too_large".to_owned()), "round {round}, attempt {attempt}");
        }
        let r = refund(&app, &key, &idem, &json!({ "payment": id, "amount": 1 })).await;
        // Another body under the same key is refused as a reuse only once a response is stored;
        // this key holds none, so the refund is judged on its own: not refundable (authorised).
        assert_eq!(error_code(r).await, (400, "payment_not_refundable".to_owned()), "round {round}");
    }
}
