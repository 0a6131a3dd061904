//! One conformance suite for the `Store` trait, run against both engines: every semantic the
//! trait documents, on SQLite (a fresh file per test) and on Postgres (a fresh schema per test
//! in the database named by `VAULT_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). If Postgres cannot be reached the Postgres half
//! fails and says why; it never skips.

use std::sync::Arc;

use serde_json::json;

use vault::keys::{ApiKeyRecord, KeyKind, Mode, Role};
use vault::store::postgres::PostgresStore;
use vault::store::sqlite::SqliteStore;
use vault::store::{
    AttemptRecord, AuditEvent, AuditFilter, CipherRow, CreateOutcome, DeliveryNext, EventRecord, IdempotencyRecord,
    KeyPurpose, ListFilter, MerchantRecord, PaymentRecord, RefundRecord, RefundReservation, Store, StoreError,
    TokenRecord, WebhookEndpointRecord, WebhookSecretRecord, WrappedKeyRecord,
};

const NOW: i64 = 1_795_132_800;

/// A fresh SQLite store (the directory lives as long as the store).
async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("vault.db")).unwrap();
    (Arc::new(store), dir)
}

/// The base URL of the test database.
pub fn postgres_url() -> String {
    std::env::var("VAULT_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh Postgres schema, migrated, as a store.
pub async fn postgres() -> Arc<dyn Store> {
    let url = postgres_url();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap_or_else(|e| {
        panic!("Postgres is required for these tests and is not reachable at {url}: {e} (set VAULT_TEST_DATABASE_URL)")
    });
    tokio::spawn(conn);
    let schema = format!("vt_{}", vault::crypto::random_base62(12).unwrap().to_lowercase());
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    Arc::new(PostgresStore::connect(&scoped, 8).await.unwrap())
}

fn merchant(id: &str) -> MerchantRecord {
    MerchantRecord { id: id.into(), name: format!("Shop {id}"), created: NOW }
}

fn audit(event: &str, merchant: Option<&str>) -> AuditEvent {
    AuditEvent {
        id: 0,
        ts: NOW,
        event: event.into(),
        outcome: "success".into(),
        merchant_id: merchant.map(str::to_owned),
        mode: Some(Mode::Test),
        key_id: Some("key_x".into()),
        ip: Some("127.0.0.1".into()),
        request_id: Some("req_x".into()),
        detail: json!({ "n": 1 }),
    }
}

fn token(id: &str, merchant: &str, version: u32) -> TokenRecord {
    TokenRecord {
        id: id.into(),
        merchant_id: merchant.into(),
        mode: Mode::Test,
        brand: "visa".into(),
        last4: "4242".into(),
        exp_month: 12,
        exp_year: 2030,
        fingerprint: "fp_x".into(),
        key_version: version,
        card_ct: vec![1, 2, 3, 4],
        cvc_ct: Some(vec![5, 6, 7]),
        cvc_expires_at: Some(NOW + 3540),
        created: NOW,
        expires_at: NOW + 86_400,
    }
}

fn idem(scope: &str, response: &str) -> IdempotencyRecord {
    IdempotencyRecord {
        scope: scope.into(),
        body_hash: "h".into(),
        status: 201,
        response: response.into(),
        created: NOW,
    }
}

fn wrapped(merchant: &str, purpose: KeyPurpose, version: u32) -> WrappedKeyRecord {
    WrappedKeyRecord {
        merchant_id: merchant.into(),
        mode: Mode::Test,
        purpose,
        version,
        wrapped: vec![9; 60],
        created: NOW,
    }
}

fn api_key(id: &str, merchant: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        merchant_id: merchant.into(),
        kind: KeyKind::Secret,
        mode: Mode::Live,
        role: Some(Role::ReadOnly),
        hash: [id.len() as u8; 32],
        prefix: "sk_live_AbCd…".into(),
        label: "label".into(),
        created: NOW,
        expires_at: None,
        revoked_at: None,
        allowed_origins: vec!["https://shop.example".into()],
        ip_allowlist: vec!["10.1.2.0/24".parse().unwrap()],
    }
}

async fn meta_and_merchants(s: Arc<dyn Store>) {
    assert_eq!(s.get_meta("k").await.unwrap(), None);
    s.set_meta("k", "1").await.unwrap();
    s.set_meta("k", "2").await.unwrap();
    assert_eq!(s.get_meta("k").await.unwrap().as_deref(), Some("2"));
    s.create_merchant(merchant("mer_a")).await.unwrap();
    let mut dup = merchant("mer_b");
    dup.name = "Shop mer_a".into();
    assert_eq!(s.create_merchant(dup).await, Err(StoreError::Conflict));
    assert_eq!(s.list_merchants().await.unwrap(), vec![merchant("mer_a")]);
}

async fn wrapped_keys_rewrap_and_retire(s: Arc<dyn Store>) {
    s.create_merchant(merchant("mer_a")).await.unwrap();
    for v in [1, 2, 3] {
        s.insert_wrapped_key(wrapped("mer_a", KeyPurpose::Data, v)).await.unwrap();
    }
    s.insert_wrapped_key(wrapped("mer_a", KeyPurpose::Fingerprint, 1)).await.unwrap();
    assert_eq!(s.insert_wrapped_key(wrapped("mer_a", KeyPurpose::Data, 2)).await, Err(StoreError::Conflict));
    assert_eq!(s.list_wrapped_keys().await.unwrap().len(), 4);
    // Rewrap is all or nothing.
    let mut changed = wrapped("mer_a", KeyPurpose::Data, 1);
    changed.wrapped = vec![7; 60];
    let missing = wrapped("mer_a", KeyPurpose::Data, 9);
    assert!(s.rewrap_keys(vec![changed.clone(), missing], vec![("check".into(), "new".into())]).await.is_err());
    assert!(s.list_wrapped_keys().await.unwrap().iter().all(|w| w.wrapped == vec![9; 60]));
    assert_eq!(s.get_meta("check").await.unwrap(), None);
    s.rewrap_keys(vec![changed], vec![("check".into(), "new".into())]).await.unwrap();
    assert!(s.list_wrapped_keys().await.unwrap().iter().any(|w| w.wrapped == vec![7; 60]));
    assert_eq!(s.get_meta("check").await.unwrap().as_deref(), Some("new"));
    // Retire: never the current version, never one a token uses.
    s.create_token(token("tok_1", "mer_a", 2), None, audit("token.created", Some("mer_a"))).await.unwrap();
    assert!(!s.retire_data_key("mer_a", Mode::Test, 3).await.unwrap(), "current version retired");
    assert!(!s.retire_data_key("mer_a", Mode::Test, 2).await.unwrap(), "version in use retired");
    assert!(s.retire_data_key("mer_a", Mode::Test, 1).await.unwrap());
    assert!(!s.retire_data_key("mer_a", Mode::Test, 1).await.unwrap());
}

async fn api_keys_round_trip(s: Arc<dyn Store>) {
    s.create_merchant(merchant("mer_a")).await.unwrap();
    let mut k = api_key("key_one", "mer_a");
    s.insert_api_key(k.clone(), audit("key.created", Some("mer_a"))).await.unwrap();
    assert_eq!(s.list_api_keys().await.unwrap(), vec![k.clone()]);
    k.revoked_at = Some(NOW + 5);
    k.expires_at = Some(NOW + 10);
    k.label = "new".into();
    k.allowed_origins = vec![];
    k.ip_allowlist = vec!["2001:db8::/48".parse().unwrap()];
    s.update_api_key(k.clone(), audit("key.updated", Some("mer_a"))).await.unwrap();
    assert_eq!(s.list_api_keys().await.unwrap(), vec![k.clone()]);
    // The hash is unique.
    let mut same_hash = api_key("key_two", "mer_a");
    same_hash.hash = k.hash;
    assert_eq!(s.insert_api_key(same_hash, audit("key.created", None)).await, Err(StoreError::Conflict));
    let events = s.list_audit(AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(events.len(), 2, "the failed insert left no audit event");
}

async fn tokens_are_scoped_and_expire(s: Arc<dyn Store>) {
    s.create_token(token("tok_1", "mer_a", 1), None, audit("token.created", Some("mer_a"))).await.unwrap();
    let got = s.get_token("tok_1", "mer_a", Mode::Test, NOW).await.unwrap().unwrap();
    assert_eq!(got, token("tok_1", "mer_a", 1));
    assert_eq!(s.get_token("tok_1", "mer_b", Mode::Test, NOW).await.unwrap(), None);
    assert_eq!(s.get_token("tok_1", "mer_a", Mode::Live, NOW).await.unwrap(), None);
    assert_eq!(s.get_token("tok_1", "mer_a", Mode::Test, NOW + 86_400).await.unwrap(), None);
    assert!(!s.delete_token("tok_1", "mer_b", Mode::Test, NOW).await.unwrap());
    assert!(s.delete_token("tok_1", "mer_a", Mode::Test, NOW).await.unwrap());
    assert!(!s.delete_token("tok_1", "mer_a", Mode::Test, NOW).await.unwrap());
    // Expired rows and old idempotency records are purged.
    s.create_token(token("tok_2", "mer_a", 1), Some(idem("k:old", "{}")), audit("t", None)).await.unwrap();
    let counts = s.purge_expired(NOW + 86_400, NOW + 1).await.unwrap();
    assert_eq!((counts.tokens, counts.idempotency), (1, 1));
}

async fn idempotency_is_decided_by_the_store(s: Arc<dyn Store>) {
    let first =
        s.create_token(token("tok_1", "mer_a", 1), Some(idem("key:abc", "first")), audit("t", None)).await.unwrap();
    assert_eq!(first, CreateOutcome::Created);
    let second =
        s.create_token(token("tok_2", "mer_a", 1), Some(idem("key:abc", "second")), audit("t", None)).await.unwrap();
    assert_eq!(second, CreateOutcome::IdempotencyExists(idem("key:abc", "first")));
    assert_eq!(s.get_token("tok_2", "mer_a", Mode::Test, NOW).await.unwrap(), None, "no second token");
    assert_eq!(s.get_idempotency("key:abc").await.unwrap(), Some(idem("key:abc", "first")));
    // Concurrent requests with one scope: exactly one token.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            s.create_token(
                token(&format!("tok_c{i}"), "mer_a", 1),
                Some(idem("key:race", &i.to_string())),
                audit("t", None),
            )
            .await
        }));
    }
    let mut created = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() == CreateOutcome::Created {
            created += 1;
        }
    }
    assert_eq!(created, 1);
}

async fn idempotency_claims_hold_across_callers(s: Arc<dyn Store>) {
    use vault::store::Claim;
    assert_eq!(s.claim_idempotency("k:1", "h", NOW, NOW - 60).await.unwrap(), Claim::Claimed);
    assert_eq!(s.claim_idempotency("k:1", "h", NOW + 1, NOW + 1 - 60).await.unwrap(), Claim::InFlight);
    assert_eq!(s.get_idempotency("k:1").await.unwrap(), None, "a pending claim is no stored answer");
    // The response completes the claim; later claims get it.
    let created =
        s.create_token(token("tok_1", "mer_a", 1), Some(idem("k:1", "first")), audit("t", None)).await.unwrap();
    assert_eq!(created, CreateOutcome::Created);
    assert_eq!(
        s.claim_idempotency("k:1", "h", NOW + 2, NOW + 2 - 60).await.unwrap(),
        Claim::Done(idem("k:1", "first"))
    );
    // A released claim can be claimed again; a stale one (its instance died) is taken over.
    assert_eq!(s.claim_idempotency("k:2", "h", NOW, NOW - 60).await.unwrap(), Claim::Claimed);
    s.release_idempotency("k:2").await.unwrap();
    assert_eq!(s.claim_idempotency("k:2", "h", NOW, NOW - 60).await.unwrap(), Claim::Claimed);
    assert_eq!(s.claim_idempotency("k:2", "h", NOW + 30, NOW + 30 - 60).await.unwrap(), Claim::InFlight);
    assert_eq!(s.claim_idempotency("k:2", "h", NOW + 61, NOW + 1).await.unwrap(), Claim::Claimed);
    // Concurrent claims: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move { s.claim_idempotency("k:race", "h", NOW, NOW - 60).await }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() == Claim::Claimed {
            won += 1;
        }
    }
    assert_eq!(won, 1);
}

async fn job_leases_have_one_holder_until_they_expire(s: Arc<dyn Store>) {
    assert!(s.try_lease("job", "a", NOW, NOW + 30).await.unwrap());
    assert!(!s.try_lease("job", "b", NOW + 10, NOW + 40).await.unwrap(), "held by a");
    assert!(s.try_lease("job", "a", NOW + 10, NOW + 40).await.unwrap(), "the holder renews");
    assert!(!s.try_lease("job", "b", NOW + 39, NOW + 69).await.unwrap());
    assert!(s.try_lease("job", "b", NOW + 40, NOW + 70).await.unwrap(), "expired: taken over");
    assert!(s.try_lease("other", "a", NOW, NOW + 30).await.unwrap(), "leases are per job");
}

async fn a_cvc_is_handed_out_once(s: Arc<dyn Store>) {
    s.create_token(token("tok_1", "mer_a", 1), None, audit("t", None)).await.unwrap();
    let t = s.get_for_detokenize("tok_1", "mer_a", Mode::Test, NOW).await.unwrap().unwrap();
    assert!(t.cvc_ct.is_some(), "reading does not destroy");
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move { s.destroy_cvc("tok_1").await }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    let t = s.get_for_detokenize("tok_1", "mer_a", Mode::Test, NOW).await.unwrap().unwrap();
    assert_eq!(t.cvc_ct, None);
    // Past its purge time a CVC is not returned, and the purge destroys it.
    s.create_token(token("tok_2", "mer_a", 1), None, audit("t", None)).await.unwrap();
    let late = s.get_for_detokenize("tok_2", "mer_a", Mode::Test, NOW + 3540).await.unwrap().unwrap();
    assert_eq!(late.cvc_ct, None);
    assert_eq!(s.purge_cvcs(NOW + 3539).await.unwrap(), 0);
    assert_eq!(s.purge_cvcs(NOW + 3540).await.unwrap(), 1);
    assert!(!s.destroy_cvc("tok_2").await.unwrap());
}

async fn reencryption_rows_page_and_never_overwrite_newer_data(s: Arc<dyn Store>) {
    for i in 0..5 {
        s.create_token(token(&format!("tok_{i}"), "mer_a", 1), None, audit("t", None)).await.unwrap();
    }
    s.create_token(token("tok_new", "mer_a", 2), None, audit("t", None)).await.unwrap();
    assert_eq!(s.count_below_version("mer_a", Mode::Test, 2).await.unwrap(), 5);
    let page1 = s.rows_to_reencrypt("mer_a", Mode::Test, 2, 0, 3).await.unwrap();
    assert_eq!(page1.len(), 3);
    let page2 = s.rows_to_reencrypt("mer_a", Mode::Test, 2, page1[2].cursor, 3).await.unwrap();
    assert_eq!(page2.len(), 2);
    let mut rows: Vec<(CipherRow, u32)> = page1
        .into_iter()
        .map(|mut r| {
            r.card_ct = vec![42];
            r.cvc_ct = Some(vec![43]);
            (r, 2)
        })
        .collect();
    // One row changed meanwhile (another instance re-encrypted it): skipped.
    let mut stale = rows[0].0.clone();
    stale.key_version = 7;
    rows.push((stale, 2));
    assert_eq!(s.replace_ciphertexts(rows).await.unwrap(), 3);
    assert_eq!(s.count_below_version("mer_a", Mode::Test, 2).await.unwrap(), 2);
    let t = s.get_token("tok_0", "mer_a", Mode::Test, NOW).await.unwrap().unwrap();
    assert_eq!((t.key_version, t.card_ct, t.cvc_ct), (2, vec![42], Some(vec![43])));
}

async fn audit_is_filtered_newest_first(s: Arc<dyn Store>) {
    s.append_audit(vec![audit("a", Some("mer_a")), audit("b", Some("mer_a")), audit("a", Some("mer_b"))])
        .await
        .unwrap();
    s.append_audit(vec![audit("a", None)]).await.unwrap();
    let all = s.list_audit(AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(all[0].detail, json!({ "n": 1 }));
    let a = s
        .list_audit(AuditFilter {
            merchant_id: Some("mer_a".into()),
            event: Some("a".into()),
            limit: 10,
            before_id: None,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    let older =
        s.list_audit(AuditFilter { before_id: Some(all[1].id), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(older.len(), 2);
    assert_eq!(s.list_audit(AuditFilter { limit: 1, ..Default::default() }).await.unwrap().len(), 1);
}

fn payment(id: &str, status: &str, amount: i64) -> PaymentRecord {
    PaymentRecord {
        id: id.into(),
        merchant_id: "mer_a".into(),
        mode: Mode::Test,
        status: status.into(),
        amount,
        currency: "usd".into(),
        amount_capturable: if status == "requires_capture" { amount } else { 0 },
        amount_captured: if status == "succeeded" { amount } else { 0 },
        amount_refunded: 0,
        created: NOW,
        data: json!({ "card": { "last4": "4242" } }),
    }
}

fn event(id: &str, event_type: &str) -> EventRecord {
    EventRecord {
        id: id.into(),
        merchant_id: "mer_a".into(),
        mode: Mode::Test,
        event_type: event_type.into(),
        created: NOW,
        body: format!(r#"{{"id":"{id}","type":"{event_type}"}}"#),
    }
}

fn refund(id: &str, payment: &str, amount: i64) -> RefundRecord {
    RefundRecord {
        id: id.into(),
        payment_id: payment.into(),
        merchant_id: "mer_a".into(),
        mode: Mode::Test,
        amount,
        status: "processing".into(),
        created: NOW,
        data: json!({ "reason": null }),
    }
}

fn endpoint(id: &str, events: &[&str]) -> (WebhookEndpointRecord, WebhookSecretRecord) {
    (
        WebhookEndpointRecord {
            id: id.into(),
            merchant_id: "mer_a".into(),
            mode: Mode::Test,
            url: format!("https://hooks.example/{id}"),
            enabled_events: events.iter().map(|e| (*e).to_owned()).collect(),
            status: "enabled".into(),
            description: None,
            created: NOW,
            failing_since: None,
        },
        WebhookSecretRecord {
            endpoint_id: id.into(),
            version: 1,
            secret_ct: vec![7; 40],
            created: NOW,
            expires_at: None,
        },
    )
}

fn page(kind: Option<&str>, after: Option<&str>, limit: u32) -> ListFilter {
    ListFilter {
        merchant_id: Some("mer_a".into()),
        mode: Some(Mode::Test),
        kind: kind.map(str::to_owned),
        starting_after: after.map(str::to_owned),
        limit,
        ..Default::default()
    }
}

async fn payments_transition_once_with_their_events(s: Arc<dyn Store>) {
    let (all, secret) = endpoint("we_all", &["*"]);
    s.insert_webhook_endpoint(all.clone(), secret, audit("webhook_endpoint.created", Some("mer_a"))).await.unwrap();
    let (refunds_only, secret) = endpoint("we_ref", &["refund.succeeded"]);
    s.insert_webhook_endpoint(refunds_only, secret, audit("webhook_endpoint.created", Some("mer_a"))).await.unwrap();

    s.insert_payment(payment("pay_1", "requires_capture", 1000), None).await.unwrap();
    s.insert_payment(payment("pay_2", "succeeded", 500), Some(event("evt_2", "payment.succeeded"))).await.unwrap();
    assert_eq!(
        s.insert_payment(payment("pay_1", "requires_capture", 1000), None).await,
        Err(StoreError::Conflict),
        "a retry that inserts the same payment id is refused by the database"
    );
    assert_eq!(s.get_payment("pay_1", "mer_b", Mode::Test).await.unwrap(), None);
    assert_eq!(s.get_payment("pay_1", "mer_a", Mode::Live).await.unwrap(), None);

    // Capture: one of two concurrent transitions from `requires_capture` wins, with its event
    // and idempotency record; the loser writes nothing.
    let mut captured = payment("pay_1", "succeeded", 1000);
    captured.amount_captured = 800;
    let a = s.update_payment(
        captured.clone(),
        "requires_capture",
        Some(event("evt_cap_a", "payment.captured")),
        Some(idem("scope_cap_a", "{}")),
        Some(audit("payment.captured.a", Some("mer_a"))),
    );
    let b = s.update_payment(
        captured.clone(),
        "requires_capture",
        Some(event("evt_cap_b", "payment.captured")),
        Some(idem("scope_cap_b", "{}")),
        Some(audit("payment.captured.b", Some("mer_a"))),
    );
    let (a, b) = tokio::join!(a, b);
    assert!(a.unwrap() ^ b.unwrap(), "exactly one transition wins");
    let winner = if s.get_event("evt_cap_a", "mer_a", Mode::Test).await.unwrap().is_some() { "a" } else { "b" };
    let loser = if winner == "a" { "b" } else { "a" };
    assert!(s.get_event(&format!("evt_cap_{loser}"), "mer_a", Mode::Test).await.unwrap().is_none());
    assert!(s.get_idempotency(&format!("scope_cap_{loser}")).await.unwrap().is_none());
    assert!(s.get_idempotency(&format!("scope_cap_{winner}")).await.unwrap().is_some());
    // The audit event commits with the transition: the winner's, never the loser's.
    let audited = |e: String| AuditFilter { event: Some(e), limit: 10, ..Default::default() };
    assert_eq!(s.list_audit(audited(format!("payment.captured.{winner}"))).await.unwrap().len(), 1);
    assert!(s.list_audit(audited(format!("payment.captured.{loser}"))).await.unwrap().is_empty());
    let stored = s.get_payment("pay_1", "mer_a", Mode::Test).await.unwrap().unwrap();
    assert_eq!((stored.status.as_str(), stored.amount_captured, stored.amount_refunded), ("succeeded", 800, 0));
    assert_eq!(stored.data, json!({ "card": { "last4": "4242" } }));

    // Listing: newest first, by status, with a cursor.
    let listed = s.list_payments(page(None, None, 10)).await.unwrap();
    assert_eq!(listed.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["pay_2", "pay_1"]);
    assert_eq!(s.list_payments(page(None, Some("pay_2"), 10)).await.unwrap().len(), 1);
    assert_eq!(s.list_payments(page(Some("failed"), None, 10)).await.unwrap().len(), 0);
    let other = ListFilter { merchant_id: Some("mer_b".into()), limit: 10, ..Default::default() };
    assert!(s.list_payments(other).await.unwrap().is_empty());

    // The outbox fanned out: the wildcard endpoint got both events, the refunds-only one none.
    let events = s.list_events(page(None, None, 10)).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(s.list_events(page(Some("payment.captured"), None, 10)).await.unwrap().len(), 1);
    let jobs = s.claim_deliveries("inst_a", NOW, NOW + 30, 10).await.unwrap();
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j.endpoint_id == "we_all" && j.url == all.url && j.attempts == 0));
    let evt2 = jobs.iter().find(|j| j.event_id == "evt_2").unwrap();
    assert_eq!(evt2.body, event("evt_2", "payment.succeeded").body, "the exact bytes are kept");
}

async fn a_payment_begins_with_its_claim_and_its_cvc_in_one_write(s: Arc<dyn Store>) {
    use vault::store::{Claim, PaymentStart};
    s.create_token(token("tok_1", "mer_a", 1), None, audit("t", None)).await.unwrap();
    let processing = payment("pay_1", "processing", 1000);
    let start = s.begin_payment("k:1", "h", NOW - 60, processing.clone(), Some("tok_1".into())).await.unwrap();
    assert_eq!(start, PaymentStart::Started { cvc: true });
    assert_eq!(s.get_payment("pay_1", "mer_a", Mode::Test).await.unwrap(), Some(processing.clone()));
    assert_eq!(s.get_for_detokenize("tok_1", "mer_a", Mode::Test, NOW).await.unwrap().unwrap().cvc_ct, None);
    // While the claim is held, another attempt writes nothing.
    let again = s.begin_payment("k:1", "h", NOW - 60, payment("pay_1", "processing", 1000), Some("tok_1".into()));
    assert_eq!(again.await.unwrap(), PaymentStart::NotClaimed(Claim::InFlight));
    // Its instance died: the claim is taken over, and the recorded payment is handed back
    // (to be resumed, never authorised again).
    let taken_over = s.begin_payment("k:1", "h", NOW + 1, payment("pay_1", "processing", 1000), None).await.unwrap();
    assert_eq!(taken_over, PaymentStart::Recorded(processing.clone()));
    // Once answered, a later attempt gets the stored answer.
    let mut done = processing.clone();
    done.status = "succeeded".into();
    assert!(s.update_payment(done, "processing", None, Some(idem("k:1", "paid")), None).await.unwrap());
    let replayed = s.begin_payment("k:1", "h", NOW + 2, payment("pay_1", "processing", 1000), None).await.unwrap();
    assert_eq!(replayed, PaymentStart::NotClaimed(Claim::Done(idem("k:1", "paid"))));
    // Concurrent payments with their own keys on one token: exactly one destroys its CVC.
    s.create_token(token("tok_2", "mer_a", 1), None, audit("t", None)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = Arc::clone(&s);
        let p = payment(&format!("pay_r{i}"), "processing", 100);
        tasks.push(tokio::spawn(async move {
            s.begin_payment(&format!("k:r{i}"), "h", NOW - 60, p, Some("tok_2".into())).await
        }));
    }
    let mut with_cvc = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            PaymentStart::Started { cvc } => with_cvc += usize::from(cvc),
            other => panic!("every key is its own: {other:?}"),
        }
    }
    assert_eq!(with_cvc, 1);
    // Concurrent attempts with one key: one starts, the others write nothing.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = Arc::clone(&s);
        let p = payment("pay_same", "processing", 100);
        tasks.push(tokio::spawn(async move { s.begin_payment("k:same", "h", NOW - 60, p, None).await }));
    }
    let mut started = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            PaymentStart::Started { .. } => started += 1,
            PaymentStart::NotClaimed(Claim::InFlight) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(started, 1);
}

async fn refunds_never_exceed_the_captured_amount(s: Arc<dyn Store>) {
    s.insert_payment(payment("pay_1", "succeeded", 1000), None).await.unwrap();
    s.insert_payment(payment("pay_auth", "requires_capture", 1000), None).await.unwrap();
    assert_eq!(s.reserve_refund(refund("re_x", "pay_auth", 100)).await.unwrap(), RefundReservation::NotRefundable);
    let mut foreign = refund("re_y", "pay_1", 100);
    foreign.merchant_id = "mer_b".into();
    assert_eq!(s.reserve_refund(foreign).await.unwrap(), RefundReservation::NotRefundable);

    // 20 concurrent partial refunds of 100 on 1000 captured: exactly 10 are reserved.
    let tasks: Vec<_> =
        (0..20).map(|i| tokio::spawn(s.reserve_refund(refund(&format!("re_{i}"), "pay_1", 100)))).collect();
    let mut reserved = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            RefundReservation::Reserved => reserved += 1,
            RefundReservation::Exceeds => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(reserved, 10);
    let p = s.get_payment("pay_1", "mer_a", Mode::Test).await.unwrap().unwrap();
    assert_eq!(p.amount_refunded, 1000);
    let refunds = s.list_refunds(page(Some("pay_1"), None, 50)).await.unwrap();
    assert_eq!(refunds.len(), 10);

    // A failed refund gives its amount back; settling twice does nothing the second time.
    let mut failed = refunds.first().unwrap().clone();
    failed.status = "failed".into();
    assert!(s.finish_refund(failed.clone(), Some(event("evt_rf", "refund.failed")), None).await.unwrap());
    assert!(!s.finish_refund(failed.clone(), Some(event("evt_rf2", "refund.failed")), None).await.unwrap());
    assert!(s.get_event("evt_rf2", "mer_a", Mode::Test).await.unwrap().is_none());
    let p = s.get_payment("pay_1", "mer_a", Mode::Test).await.unwrap().unwrap();
    assert_eq!(p.amount_refunded, 900);
    let mut ok = refunds.get(1).unwrap().clone();
    ok.status = "succeeded".into();
    assert!(
        s.finish_refund(ok.clone(), Some(event("evt_rs", "refund.succeeded")), Some(idem("scope_r", "{}")))
            .await
            .unwrap()
    );
    assert_eq!(s.get_refund(&ok.id, "mer_a", Mode::Test).await.unwrap().unwrap().status, "succeeded");
    assert_eq!(s.get_refund(&ok.id, "mer_b", Mode::Test).await.unwrap(), None);
    assert_eq!(s.reserve_refund(refund("re_z", "pay_1", 100)).await.unwrap(), RefundReservation::Reserved);
    assert_eq!(s.reserve_refund(refund("re_w", "pay_1", 1)).await.unwrap(), RefundReservation::Exceeds);
}

async fn deliveries_have_one_holder_and_survive_a_dead_one(s: Arc<dyn Store>) {
    let (ep, secret) = endpoint("we_1", &["payment.succeeded"]);
    s.insert_webhook_endpoint(ep, secret, audit("webhook_endpoint.created", Some("mer_a"))).await.unwrap();
    s.insert_payment(payment("pay_1", "succeeded", 500), Some(event("evt_1", "payment.succeeded"))).await.unwrap();

    let a = s.claim_deliveries("inst_a", NOW, NOW + 30, 10);
    let b = s.claim_deliveries("inst_b", NOW, NOW + 30, 10);
    let (a, b) = tokio::join!(a, b);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 1, "one holder at a time");
    let (holder, job) = if a.is_empty() { ("inst_b", b[0].clone()) } else { ("inst_a", a[0].clone()) };
    let other = if holder == "inst_a" { "inst_b" } else { "inst_a" };
    assert!(s.claim_deliveries(other, NOW + 29, NOW + 60, 10).await.unwrap().is_empty());

    // The holder dies (kill -9): its lease expires and another instance takes the delivery.
    let retaken = s.claim_deliveries(other, NOW + 30, NOW + 60, 10).await.unwrap();
    assert_eq!(retaken.len(), 1);
    let attempt = |code: Option<u16>, at: i64| AttemptRecord {
        delivery_id: job.id,
        event_id: "evt_1".into(),
        endpoint_id: "we_1".into(),
        status_code: code,
        latency_ms: 12,
        error_class: if code == Some(200) { None } else { Some("http_status".into()) },
        response_body: "oops".into(),
        created: at,
    };
    assert_eq!(
        s.record_attempt(attempt(Some(500), NOW + 31), holder, DeliveryNext::RetryAt(NOW + 40)).await.unwrap(),
        None,
        "the dead holder's late answer is not recorded"
    );
    assert_eq!(
        s.record_attempt(attempt(Some(500), NOW + 31), other, DeliveryNext::RetryAt(NOW + 40)).await.unwrap(),
        Some(Some(NOW + 31))
    );
    assert!(s.claim_deliveries(other, NOW + 39, NOW + 70, 10).await.unwrap().is_empty(), "not due yet");
    let again = s.claim_deliveries(other, NOW + 40, NOW + 70, 10).await.unwrap();
    assert_eq!(again.first().map(|j| j.attempts), Some(1));
    assert_eq!(
        s.record_attempt(attempt(Some(200), NOW + 41), other, DeliveryNext::Delivered).await.unwrap(),
        Some(None),
        "a success ends the failure streak"
    );
    assert!(s.claim_deliveries(other, NOW + 1000, NOW + 1030, 10).await.unwrap().is_empty());
    let attempts = s.list_attempts("evt_1").await.unwrap();
    assert_eq!(attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(), [Some(500), Some(200)]);

    // Redelivery schedules a new delivery now.
    assert_eq!(s.redeliver_event("evt_1", "mer_b", Mode::Test, None, NOW + 50).await.unwrap(), 0);
    assert_eq!(s.redeliver_event("evt_1", "mer_a", Mode::Test, None, NOW + 50).await.unwrap(), 1);
    assert_eq!(s.redeliver_event("evt_1", "mer_a", Mode::Test, Some("we_1".into()), NOW + 50).await.unwrap(), 1);
    assert_eq!(s.claim_deliveries(other, NOW + 50, NOW + 80, 10).await.unwrap().len(), 2);

    // A disabled endpoint gets nothing more; the disabling is an event and an audit event.
    assert!(
        s.disable_webhook_endpoint(
            "we_1",
            event("evt_d", "webhook_endpoint.disabled"),
            audit("webhook_endpoint.disabled", Some("mer_a"))
        )
        .await
        .unwrap()
    );
    assert!(
        !s.disable_webhook_endpoint("we_1", event("evt_d2", "webhook_endpoint.disabled"), audit("x", Some("mer_a")))
            .await
            .unwrap()
    );
    assert_eq!(s.get_webhook_endpoint("we_1", "mer_a", Mode::Test).await.unwrap().unwrap().status, "disabled");
    s.insert_payment(payment("pay_2", "succeeded", 500), Some(event("evt_2", "payment.succeeded"))).await.unwrap();
    assert!(s.claim_deliveries(other, NOW + 1000, NOW + 1030, 10).await.unwrap().is_empty());
}

async fn webhook_secrets_rotate_with_overlap(s: Arc<dyn Store>) {
    let (ep, secret) = endpoint("we_1", &["*"]);
    s.insert_webhook_endpoint(ep.clone(), secret, audit("webhook_endpoint.created", Some("mer_a"))).await.unwrap();
    assert_eq!(s.list_webhook_endpoints("mer_a", Mode::Test).await.unwrap(), vec![ep.clone()]);
    assert!(s.list_webhook_endpoints("mer_a", Mode::Live).await.unwrap().is_empty());
    let next = WebhookSecretRecord {
        endpoint_id: "we_1".into(),
        version: 2,
        secret_ct: vec![8; 40],
        created: NOW + 10,
        expires_at: None,
    };
    s.rotate_webhook_secret(next, NOW + 100, audit("webhook_endpoint.secret_rotated", Some("mer_a"))).await.unwrap();
    let during = s.webhook_secrets("we_1", NOW + 99).await.unwrap();
    assert_eq!(during.iter().map(|s| s.version).collect::<Vec<_>>(), [2, 1], "both sign during the overlap");
    let after = s.webhook_secrets("we_1", NOW + 100).await.unwrap();
    assert_eq!(after.iter().map(|s| s.version).collect::<Vec<_>>(), [2]);
    assert!(!s.delete_webhook_endpoint("we_1", "mer_b", Mode::Test, audit("x", Some("mer_b"))).await.unwrap());
    assert!(s.delete_webhook_endpoint("we_1", "mer_a", Mode::Test, audit("x", Some("mer_a"))).await.unwrap());
    assert!(s.webhook_secrets("we_1", NOW).await.unwrap().is_empty(), "a deleted endpoint's secrets are gone");
    assert_eq!(s.get_webhook_endpoint("we_1", "mer_a", Mode::Test).await.unwrap(), None);
}

async fn devspace_users_sessions_links_and_alerts(s: Arc<dyn Store>) {
    use devspace::Role as UserRole;
    use devspace::session::{SessionRecord, Stage};
    s.create_merchant(merchant("mer_a")).await.unwrap();
    let (user, link, token) = devspace::web::new_user("mer_a", "a@shop.example", UserRole::Admin, NOW).unwrap();
    s.devspace_insert_user(user.clone(), Some(link.clone())).await.unwrap();
    let (dup, _, _) = devspace::web::new_user("mer_a", "a@shop.example", UserRole::Viewer, NOW).unwrap();
    assert_eq!(s.devspace_insert_user(dup, None).await, Err(StoreError::Conflict), "emails are unique");
    assert_eq!(s.devspace_user("a@shop.example", true).await.unwrap(), Some(user.clone()));
    assert_eq!(s.devspace_user(&user.id, false).await.unwrap(), Some(user.clone()));
    assert_eq!(s.devspace_users("mer_a").await.unwrap().len(), 1);

    // Optimistic concurrency: of two writers holding version 0, one wins.
    let mut first = user.clone();
    first.totp_last_step = 7;
    first.recovery_hashes = vec!["h1".into()];
    first.known_ips = vec!["203.0.113.1".into()];
    first.totp_sealed = Some(vec![1, 2, 3]);
    assert!(s.devspace_update_user(first.clone()).await.unwrap());
    assert!(!s.devspace_update_user(user.clone()).await.unwrap(), "stale version");
    let stored = s.devspace_user(&user.id, false).await.unwrap().unwrap();
    assert_eq!(stored, devspace::backend::UserRecord { version: 1, ..first });

    // Links: readable until taken, taken once, never after expiry.
    assert_eq!(s.devspace_link(&link.hash, NOW, false).await.unwrap(), Some(link.clone()));
    assert_eq!(s.devspace_link(&link.hash, link.expires_at, false).await.unwrap(), None);
    let (a, b) = tokio::join!(s.devspace_link(&link.hash, NOW, true), s.devspace_link(&link.hash, NOW, true));
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|l| l.is_some()).count(), 1);
    assert!(!token.expose().is_empty());

    // Sessions: put, update, delete one, delete all of a user, purge by timeouts.
    let session = |hash: &str, seen: i64| SessionRecord {
        hash: hash.into(),
        user_id: user.id.clone(),
        stage: Stage::Full,
        created: NOW,
        last_seen: seen,
        reauth_at: None,
        ip: "203.0.113.1".into(),
    };
    for h in ["s1", "s2", "s3"] {
        s.devspace_put_session(session(h, NOW)).await.unwrap();
    }
    let mut s1 = session("s1", NOW + 5);
    s1.reauth_at = Some(NOW + 5);
    s1.stage = Stage::Password;
    s.devspace_put_session(s1.clone()).await.unwrap();
    assert_eq!(s.devspace_session("s1").await.unwrap(), Some(s1));
    assert_eq!(s.devspace_delete_sessions(Some("s2".into()), None).await.unwrap(), 1);
    assert_eq!(s.devspace_session("s2").await.unwrap(), None);
    assert_eq!(s.devspace_purge(NOW + 1, NOW - 10, NOW).await.unwrap(), 1, "s3 idle since NOW");
    assert_eq!(s.devspace_delete_sessions(None, Some(user.id.clone())).await.unwrap(), 1);
    s.devspace_put_session(session("s4", NOW)).await.unwrap();
    assert!(s.devspace_delete_user(&user.id).await.unwrap(), "with its sessions");
    assert!(!s.devspace_delete_user(&user.id).await.unwrap());
    assert_eq!(s.devspace_session("s4").await.unwrap(), None);
    assert_eq!(s.devspace_user("a@shop.example", true).await.unwrap(), None);

    // Alerts with their events, newest first and per merchant.
    for (i, kind) in ["signin.new_ip", "allowlist.widened"].iter().enumerate() {
        let alert = devspace::backend::AlertRecord {
            id: format!("alr_{i}"),
            merchant_id: "mer_a".into(),
            ts: NOW + i64::try_from(i).unwrap(),
            kind: (*kind).into(),
            message: "m".into(),
            detail: json!({ "i": i }),
        };
        s.devspace_insert_alert(alert, vec![event(&format!("evt_alert{i}"), "security.alert")]).await.unwrap();
    }
    let alerts = s.devspace_alerts("mer_a", 10).await.unwrap();
    assert_eq!(alerts.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>(), ["allowlist.widened", "signin.new_ip"]);
    assert_eq!(alerts[0].detail, json!({ "i": 1 }));
    assert!(s.devspace_alerts("mer_b", 10).await.unwrap().is_empty());
    assert_eq!(s.list_events(page(Some("security.alert"), None, 10)).await.unwrap().len(), 2);
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let (store, _dir) = super::sqlite().await;
                    super::$case(store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::postgres().await).await;
                }
            )*
        }
    };
}

conformance!(
    meta_and_merchants,
    wrapped_keys_rewrap_and_retire,
    api_keys_round_trip,
    tokens_are_scoped_and_expire,
    idempotency_is_decided_by_the_store,
    idempotency_claims_hold_across_callers,
    job_leases_have_one_holder_until_they_expire,
    a_cvc_is_handed_out_once,
    reencryption_rows_page_and_never_overwrite_newer_data,
    audit_is_filtered_newest_first,
    payments_transition_once_with_their_events,
    a_payment_begins_with_its_claim_and_its_cvc_in_one_write,
    refunds_never_exceed_the_captured_amount,
    deliveries_have_one_holder_and_survive_a_dead_one,
    webhook_secrets_rotate_with_overlap,
    devspace_users_sessions_links_and_alerts,
);

#[tokio::test]
async fn postgres_refuses_a_schema_newer_than_the_binary() {
    let store = postgres().await;
    drop(store);
    // Pretend a newer binary migrated this database.
    let url = postgres_url();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let schema = format!("vt_{}", vault::crypto::random_base62(12).unwrap().to_lowercase());
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.schema_version (version BIGINT NOT NULL, applied BIGINT NOT NULL);
             INSERT INTO {schema}.schema_version VALUES (999, 0);"
        ))
        .await
        .unwrap();
    let scoped = format!("{url}?options=-c%20search_path%3D{schema}");
    assert_eq!(PostgresStore::connect(&scoped, 2).await.err(), Some(StoreError::SchemaTooNew(999)));
}
