//! Dev Space page render time, server side: `GET /keys` and `GET /audit` through the router
//! (`oneshot`, no socket, no TLS) on a SQLite store holding 10,000 audit rows of the merchant,
//! and the cost of one argon2id password verification at the production parameters.
//!
//! Run: `cargo bench -p vault --bench devspace` (release profile). Prints p50/p99/max. On
//! Postgres: `VAULT_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p
//! vault --bench devspace` (a fresh schema of that database, left behind for inspection).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing,
    reason = "a benchmark binary: a failure is a failed run"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use devspace::Role;
use devspace::session::{OpaqueId, SessionRecord, Stage};
use tower::ServiceExt;
use vault::api::ClientAddr;
use vault::bootstrap::{self, InitOptions};
use vault::clock::SystemClock;
use vault::config::Config;
use vault::crypto::{MasterKey, random_key};
use vault::keys::Mode;
use vault::store::AuditEvent;

const AUDIT_ROWS: usize = 10_000;
const RUNS: usize = 1_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A fresh schema of the Postgres database at `VAULT_BENCH_DATABASE_URL`, as a URL whose
/// connections use it; `None` (SQLite) when the variable is not set.
async fn postgres_url() -> Option<String> {
    let base = std::env::var("VAULT_BENCH_DATABASE_URL").ok()?;
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let schema = format!("bench_{}", vault::crypto::random_base62(10).unwrap().to_lowercase());
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    Some(format!("{base}?options=-c%20search_path%3D{schema}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut master = MasterKey::from_key(&random_key().unwrap()).unwrap();
    let now = vault::clock::Clock::now(&SystemClock);
    let opts = InitOptions {
        data_dir: data_dir.clone(),
        merchant: "Bench Shop".into(),
        allowed_origins: vec!["https://shop.example".into()],
        detokenize_ips: Vec::new(),
        mode: Mode::Test,
        database_url: postgres_url().await,
    };
    let init = bootstrap::init(&opts, &master, now).await.unwrap();
    let store = bootstrap::open_database(&data_dir, opts.database_url.as_deref(), bootstrap::POOL_SIZE, &mut master)
        .await
        .unwrap();
    let merchant = init.merchant.clone();
    // 10,000 audit rows of the merchant: API-key uses with addresses, and console events.
    let keys = [&init.publishable, &init.secret, &init.admin, &init.read_only];
    let mut events = Vec::with_capacity(AUDIT_ROWS);
    for i in 0..AUDIT_ROWS {
        let key = keys[i % keys.len()];
        events.push(AuditEvent {
            id: 0,
            ts: now - i64::try_from(AUDIT_ROWS - i).unwrap(),
            event: if i % 10 == 0 { "devspace.sign_in".into() } else { "token.created".into() },
            outcome: "success".into(),
            merchant_id: Some(merchant.id.clone()),
            mode: Some(Mode::Test),
            key_id: Some(key.record.id.clone()),
            ip: Some(format!("203.0.113.{}", i % 250)),
            request_id: Some(format!("req_{i}")),
            detail: serde_json::json!({ "actor": "owner@shop.example", "n": i }),
        });
    }
    for chunk in events.chunks(1000) {
        store.append_audit(chunk.to_vec()).await.unwrap();
    }
    if let Some(url) = &opts.database_url {
        // What autovacuum does after a bulk load: without statistics the planner reads all
        // 10,000 rows and sorts them instead of walking the index (about 10x slower).
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute("ANALYZE").await.unwrap();
    }
    let (user, _, _) = devspace::web::new_user(&merchant.id, "owner@shop.example", Role::Owner, now).unwrap();
    store.devspace_insert_user(user.clone(), None).await.unwrap();
    let sid = OpaqueId::generate().unwrap();
    store
        .devspace_put_session(SessionRecord {
            hash: sid.hash(),
            user_id: user.id.clone(),
            stage: Stage::Full,
            created: now,
            last_seen: now,
            reauth_at: None,
            ip: "203.0.113.1".into(),
        })
        .await
        .unwrap();
    let state = vault::AppState::new(Arc::clone(&store), Arc::new(master), Arc::new(SystemClock), Config::default())
        .await
        .unwrap();
    let router = vault::devspace::router(state, devspace::Settings::default());
    let cookie = format!("__Host-ds_session={}", sid.expose());

    let engine = if opts.database_url.is_some() { "Postgres" } else { "SQLite" };
    println!(
        "Dev Space render on {engine}, server side, {AUDIT_ROWS} audit rows, {RUNS} requests each after 50 warm-up:"
    );
    // The last filter matches nothing: the whole log is scanned (the worst case).
    for path in [
        "/keys",
        "/audit",
        "/audit?actor=owner%40shop.example&event=devspace.sign_in",
        "/audit?actor=nobody%40shop.example",
        "/alerts",
    ] {
        let mut times = Vec::with_capacity(RUNS);
        let mut bytes = 0;
        for i in 0..RUNS + 50 {
            let mut req = Request::builder().uri(path).header(header::COOKIE, &cookie).body(Body::empty()).unwrap();
            req.extensions_mut().insert(ClientAddr("203.0.113.1:40000".parse().unwrap()));
            let t = Instant::now();
            let res = router.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
            let body = axum::body::to_bytes(res.into_body(), 1 << 24).await.unwrap();
            let elapsed = t.elapsed();
            bytes = body.len();
            if i >= 50 {
                times.push(elapsed);
            }
        }
        times.sort();
        println!(
            "  GET {path:<58} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({bytes} bytes)",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            times.last().unwrap().as_secs_f64() * 1e3,
        );
    }

    let password = devspace::Secret::new("a long and unusual passphrase".into());
    let hash = devspace::password::hash(&password, devspace::password::HashParams::OWASP).unwrap();
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        assert!(devspace::password::verify(&password, &hash));
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "argon2id verify (m=19456 KiB, t=2, p=1), 20 runs: p50 {:.1} ms, max {:.1} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3
    );
    store.close();
}
