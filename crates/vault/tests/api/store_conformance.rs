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
    AuditEvent, AuditFilter, CipherRow, CreateOutcome, IdempotencyRecord, KeyPurpose, MerchantRecord, Store,
    StoreError, TokenRecord, WrappedKeyRecord,
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
        })
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    let older =
        s.list_audit(AuditFilter { before_id: Some(all[1].id), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(older.len(), 2);
    assert_eq!(s.list_audit(AuditFilter { limit: 1, ..Default::default() }).await.unwrap().len(), 1);
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
