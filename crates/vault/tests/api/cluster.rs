//! Several vault instances on one Postgres database (a fresh schema per test): what one
//! instance does, the others see. Each instance has its own connection pool, key caches,
//! limiters and background tasks, as separate processes would.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;
use crate::store_conformance::postgres_url;
use vault::bootstrap::{self, InitOptions};
use vault::crypto::{MasterKey, random_key};
use vault::keys::{self, Mode};
use vault::store::Store;
use vault::store::postgres::PostgresStore;

struct Cluster {
    instances: Vec<vault::Running>,
    client: reqwest::Client,
    init: bootstrap::InitOutput,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn url(&self, i: usize, path: &str) -> String {
        format!("https://localhost:{}{path}", self.instances[i].addr.port())
    }
}

async fn cluster(n: usize) -> Cluster {
    cluster_with(n, |_| {}).await
}

async fn cluster_with(n: usize, tweak: impl Fn(&mut vault::config::Config)) -> Cluster {
    cluster_via(n, tweak, |url| url.to_owned()).await
}

/// `instance_url` maps the database URL each instance connects with (e.g. through a proxy).
async fn cluster_via(
    n: usize,
    tweak: impl Fn(&mut vault::config::Config),
    instance_url: impl Fn(&str) -> String,
) -> Cluster {
    let base = postgres_url();
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("Postgres is required and not reachable at {base}: {e}"));
    tokio::spawn(conn);
    let schema = format!("vc_{}", vault::crypto::random_base62(12).unwrap().to_lowercase());
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    let url = format!("{base}?options=-c%20search_path%3D{schema}");

    let dir = tempfile::tempdir().unwrap();
    let mut master = MasterKey::from_key(&random_key().unwrap()).unwrap();
    let opts = InitOptions {
        data_dir: dir.path().to_owned(),
        merchant: "Cluster Shop".into(),
        allowed_origins: vec![SHOP.into()],
        detokenize_ips: vec![keys::parse_cidr("127.0.0.1/32").unwrap()],
        mode: Mode::Test,
        database_url: Some(url.clone()),
    };
    let init = bootstrap::init(&opts, &master, START).await.unwrap();
    let tls = vault::tls::load(dir.path(), None, None).unwrap();
    let cert = std::fs::read(&tls.cert_path).unwrap();
    let mut instances = Vec::new();
    let mut shared_master = None;
    for _ in 0..n {
        let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&instance_url(&url), 8).await.unwrap());
        let master = match &shared_master {
            Some(m) => Arc::clone(m),
            None => {
                bootstrap::adopt_hashing_keys(store.as_ref(), &mut master).await.unwrap();
                let m = Arc::new(std::mem::replace(&mut master, MasterKey::from_key(&random_key().unwrap()).unwrap()));
                shared_master = Some(Arc::clone(&m));
                m
            }
        };
        let mut config = vault::config::Config {
            // Only the change notifications can make another instance see a change in time.
            refresh_interval: Duration::from_secs(3600),
            redis_prefix: format!("vault-test:{schema}"),
            ..fast_config()
        };
        tweak(&mut config);
        let running = vault::start(
            store,
            master,
            Arc::new(vault::clock::ManualClock::new(START)),
            config,
            vault::tls::server_config(&tls).unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        instances.push(running);
    }
    // Let every instance's LISTEN connection come up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Cluster { instances, client: client_for(&cert), init, _dir: dir }
}

#[tokio::test]
async fn a_key_revoked_on_one_instance_is_refused_by_the_others_within_a_second() {
    let c = cluster(3).await;
    let ro = c.init.read_only.plaintext.expose();
    let admin = c.init.admin.plaintext.expose();
    for i in 0..3 {
        let r = c.client.get(c.url(i, "/v1/audit_events?limit=1")).bearer_auth(ro).send().await.unwrap();
        assert_eq!(r.status(), 200, "instance {i}");
    }
    let ro_id = &c.init.read_only.record.id;
    let r = c.client.post(c.url(0, &format!("/v1/keys/{ro_id}/revoke"))).bearer_auth(admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let revoked_at = std::time::Instant::now();
    for i in 1..3 {
        loop {
            let r = c.client.get(c.url(i, "/v1/audit_events?limit=1")).bearer_auth(ro).send().await.unwrap();
            if r.status() == 401 {
                break;
            }
            assert!(revoked_at.elapsed() < Duration::from_secs(1), "instance {i} still accepts the revoked key");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn one_idempotency_key_across_instances_makes_one_token() {
    let c = cluster(3).await;
    let pk = c.init.publishable.plaintext.expose().to_owned();
    let mut tasks = Vec::new();
    for i in 0..30 {
        let req = c
            .client
            .post(c.url(i % 3, "/v1/tokens"))
            .bearer_auth(&pk)
            .header("Origin", SHOP)
            .header("Idempotency-Key", "cluster-order-1")
            .json(&card_body(VISA));
        tasks.push(tokio::spawn(async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert!(matches!(status, 201 | 409), "{status} {body}");
        if status == 201 {
            ids.insert(body["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
}

#[tokio::test]
async fn a_cvc_is_returned_once_across_instances() {
    let c = cluster(3).await;
    let pk = c.init.publishable.plaintext.expose();
    let sk = c.init.secret.plaintext.expose().to_owned();
    let r = c.client.post(c.url(0, "/v1/tokens")).bearer_auth(pk).header("Origin", SHOP).json(&card_body(VISA));
    let tok: Value = r.send().await.unwrap().json().await.unwrap();
    let path = format!("/v1/tokens/{}/detokenize", tok["id"].as_str().unwrap());
    let mut tasks = Vec::new();
    for i in 0..21 {
        let req = c.client.post(c.url(i % 3, &path)).bearer_auth(&sk);
        tasks.push(tokio::spawn(async move { req.send().await.unwrap().json::<Value>().await.unwrap() }));
    }
    let mut with_cvc = 0;
    for t in tasks {
        let d = t.await.unwrap();
        assert_eq!(d["card"]["number"], VISA.0);
        if d["cvc_returned"] == true {
            assert_eq!(d["card"]["cvc"], VISA.1);
            with_cvc += 1;
        }
    }
    assert_eq!(with_cvc, 1);
}

/// The Redis the tests use (`VAULT_TEST_REDIS_URL`, default the local one).
fn redis_url() -> String {
    std::env::var("VAULT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[tokio::test]
async fn the_rate_limit_is_shared_through_redis() {
    let c = cluster_with(2, |config| {
        config.redis_url = Some(redis_url());
        config.rate_per_key = vault::ratelimit::Rate { per_second: 0.01, burst: 4.0 };
    })
    .await;
    let ro = c.init.read_only.plaintext.expose();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let r = c.client.get(c.url(i % 2, "/v1/audit_events?limit=1")).bearer_auth(ro).send().await.unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 4, "one bucket of 4 for both instances: {statuses:?}");
    let r = c.client.get(c.url(1, "/v1/audit_events?limit=1")).bearer_auth(ro).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(c.instances[0].state.shared.as_ref().unwrap().failures.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test]
async fn with_redis_down_the_vault_keeps_serving_on_its_own_limits() {
    // Nothing listens on this port.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("redis://{}", l.local_addr().unwrap())
    };
    let c = cluster_with(1, |config| {
        config.redis_url = Some(dead.clone());
        config.rate_per_key = vault::ratelimit::Rate { per_second: 0.01, burst: 3.0 };
    })
    .await;
    let ro = c.init.read_only.plaintext.expose();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = c.client.get(c.url(0, "/v1/audit_events?limit=1")).bearer_auth(ro).send().await.unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429], "local limits apply, never a 500");
    assert!(c.instances[0].state.shared.as_ref().unwrap().failures.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn authentication_failures_add_up_across_instances() {
    let c = cluster_with(3, |config| config.redis_url = Some(redis_url())).await;
    let wrong = format!("sk_test_{}", "F".repeat(32));
    // Five failures spread over three instances: one suspicious-activity event.
    for i in 0..5 {
        let r = c.client.get(c.url(i % 3, "/v1/audit_events")).bearer_auth(&wrong).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = c.instances[0]
        .state
        .store
        .list_audit(vault::store::AuditFilter {
            event: Some("suspicious_activity".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].detail["reason"], "repeated_authentication_failures");
}

/// A TCP proxy in front of Postgres that the test can cut: while down it drops every open
/// connection and refuses new ones, as a stopped or unreachable database would. While paused it
/// keeps every connection open but forwards nothing, as a server stopped with SIGSTOP (or a
/// host that vanished without a reset) would.
struct Proxy {
    port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    paused: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

/// Copies `from` to `to`, holding every chunk while `paused` is set.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    paused: Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while paused.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let paused = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (up2, paused2, conns2) = (Arc::clone(&up), Arc::clone(&paused), Arc::clone(&conns));
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !up2.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: connection refused from the client's point of view
                }
                let paused = Arc::clone(&paused2);
                let task = tokio::spawn(async move {
                    if let Ok(outbound) = tokio::net::TcpStream::connect(target).await {
                        let (ir, iw) = inbound.into_split();
                        let (or, ow) = outbound.into_split();
                        tokio::join!(pump(ir, ow, Arc::clone(&paused)), pump(or, iw, paused));
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        Self { port, up, paused, conns }
    }

    fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn pause(&self, paused: bool) {
        self.paused.store(paused, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The cluster's database reached through a [`Proxy`]; returns both.
async fn cluster_behind_proxy() -> (Cluster, Proxy) {
    let base: tokio_postgres::Config = postgres_url().parse().unwrap();
    let host = match base.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = base.get_ports().first().copied().unwrap_or(5432);
    let target = tokio::net::lookup_host((host.as_str(), port)).await.unwrap().next().unwrap();
    let proxy = Proxy::start(target).await;
    let proxied_port = proxy.port;
    let c =
        cluster_via(1, |_| {}, move |url| url.replacen(&format!(":{port}/"), &format!(":{proxied_port}/"), 1)).await;
    (c, proxy)
}

/// Tokenizes every 100 ms until it gets a 201 (only 503 before it), at most 10 s.
async fn recovers_by_itself(c: &Cluster, pk: &str) {
    let back = std::time::Instant::now();
    loop {
        let r = c.client.post(c.url(0, "/v1/tokens")).bearer_auth(pk).header("Origin", SHOP).json(&card_body(VISA));
        let r = r.send().await.unwrap();
        if r.status() == 201 {
            return;
        }
        assert_eq!(r.status(), 503);
        assert!(back.elapsed() < Duration::from_secs(10), "the vault did not recover by itself");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_paused_database_is_503_with_retry_after_not_a_hang_and_the_vault_recovers() {
    let (c, proxy) = cluster_behind_proxy().await;
    let pk = c.init.publishable.plaintext.expose().to_owned();
    let sk = c.init.secret.plaintext.expose().to_owned();
    let tokenize =
        || c.client.post(c.url(0, "/v1/tokens")).bearer_auth(&pk).header("Origin", SHOP).json(&card_body(VISA)).send();
    let r = tokenize().await.unwrap();
    assert_eq!(r.status(), 201);
    let acknowledged = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    proxy.pause(true);
    let started = std::time::Instant::now();
    let r = tokenize().await.unwrap();
    assert_eq!(r.status(), 503, "a paused database is 503, never a hang or 500");
    assert_eq!(r.headers()["retry-after"], "1");
    let waited = started.elapsed();
    assert!(waited < vault::store::postgres::OP_TIMEOUT + Duration::from_secs(3), "answered after {waited:?}");

    proxy.pause(false);
    recovers_by_itself(&c, &pk).await;
    let r = c.client.get(c.url(0, &format!("/v1/tokens/{acknowledged}"))).bearer_auth(&sk).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_lost_database_is_503_with_retry_after_and_the_vault_recovers_by_itself() {
    let (c, proxy) = cluster_behind_proxy().await;
    let pk = c.init.publishable.plaintext.expose().to_owned();
    let sk = c.init.secret.plaintext.expose().to_owned();
    let tokenize =
        || c.client.post(c.url(0, "/v1/tokens")).bearer_auth(&pk).header("Origin", SHOP).json(&card_body(VISA)).send();
    let mut acknowledged = Vec::new();
    for _ in 0..5 {
        let r = tokenize().await.unwrap();
        assert_eq!(r.status(), 201);
        acknowledged.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }

    proxy.down();
    for _ in 0..3 {
        let r = tokenize().await.unwrap();
        assert_eq!(r.status(), 503, "a lost database is 503, never 500");
        assert_eq!(r.headers()["retry-after"], "1");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_ready");
    }
    let r = c.client.get(c.url(0, "/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);

    proxy.up();
    recovers_by_itself(&c, &pk).await;
    for id in &acknowledged {
        let r = c.client.get(c.url(0, &format!("/v1/tokens/{id}"))).bearer_auth(&sk).send().await.unwrap();
        assert_eq!(r.status(), 200, "{id} lost");
    }
}
