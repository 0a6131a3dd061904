use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response};
use serde_json::{Value, json};
use tempfile::TempDir;

use vault::bootstrap::{self, InitOptions};
use vault::clock::ManualClock;
use vault::config::Config;
use vault::crypto::{MasterKey, random_key};
use vault::keys::{self, Mode};
use vault::ratelimit::Rate;
use vault::store::Store;

/// Test cards (number, cvc). Their numbers, last 8 digits and CVCs must never appear in logs
/// or in the database file.
pub const VISA: (&str, &str) = ("4242424242424242", "737");
pub const MASTERCARD: (&str, &str) = ("5555555555554444", "918");
pub const AMEX: (&str, &str) = ("378282246310005", "7373");
pub const VISA_DEBIT: (&str, &str) = ("4000056655665556", "246");
pub const ALL_CARDS: [(&str, &str); 4] = [VISA, MASTERCARD, AMEX, VISA_DEBIT];

pub const SHOP: &str = "https://shop.example";
/// 2026-11-20T00:00:00Z.
pub const START: i64 = 1_795_132_800;

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INIT_LOGS: Once = Once::new();

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    INIT_LOGS.call_once(|| {
        let filter =
            tracing_subscriber::EnvFilter::new("trace,hyper=debug,hyper_util=debug,reqwest=info,rustls=debug,h2=info");
        tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(|| Capture).init();
    });
}

/// Everything logged so far by every test in this binary.
pub fn captured_logs() -> Vec<u8> {
    LOGS.lock().unwrap().clone()
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: Client,
    pub clock: ManualClock,
    pub dir: TempDir,
    pub db_path: PathBuf,
    pub cert_pem: Vec<u8>,
    pub merchant_id: String,
    /// Publishable key (allowed origin SHOP).
    pub pk: String,
    /// Tokenization key (allowlisted for loopback).
    pub sk: String,
    pub sk_id: String,
    pub admin: String,
    pub ro: String,
    pub store: Arc<dyn Store>,
    /// The Postgres URL (schema-scoped) when the suite runs on Postgres.
    pub database_url: Option<String>,
    pub master: Arc<MasterKey>,
    pub running: Option<vault::Running>,
}

pub fn fast_config() -> Config {
    Config {
        rate_per_key: Rate { per_second: 10_000.0, burst: 10_000.0 },
        rate_per_ip: Rate { per_second: 10_000.0, burst: 10_000.0 },
        sweep_interval: Duration::from_millis(100),
        cvc_purge_interval: Duration::from_millis(100),
        refresh_interval: Duration::from_millis(200),
        ..Config::default()
    }
}

/// Which engine the HTTP suite runs on: `VAULT_TEST_ENGINE=postgres` (the test command runs
/// the suite a second time so) or SQLite (default).
pub fn on_postgres() -> bool {
    std::env::var("VAULT_TEST_ENGINE").is_ok_and(|e| e == "postgres")
}

/// A fresh, migrated Postgres schema's URL when the suite runs on Postgres.
pub async fn test_database_url() -> Option<String> {
    if !on_postgres() {
        return None;
    }
    let base = crate::store_conformance::postgres_url();
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("Postgres is required and not reachable at {base}: {e}"));
    tokio::spawn(conn);
    let schema = format!("va_{}", vault::crypto::random_base62(12).unwrap().to_lowercase());
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    Some(format!("{base}?options=-c%20search_path%3D{schema}"))
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let frame_dir = dir.path().join("frame");
    std::fs::create_dir_all(&frame_dir).unwrap();
    std::fs::write(
        frame_dir.join("index.html"),
        "<!doctype html><html><head><style>body{margin:0}</style>\
         <script type=\"module\">import init from '/v1/frame/frame.js'; init();</script>\
         <script src=\"/v1/frame/frame.js\"></script></head><body></body></html>",
    )
    .unwrap();
    std::fs::write(frame_dir.join("loader.js"), "window.Vault = {};").unwrap();
    std::fs::write(frame_dir.join("frame.js"), "export default function init() {}").unwrap();
    std::fs::write(frame_dir.join("frame_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();

    let mut master = MasterKey::from_key(&random_key().unwrap()).unwrap();
    let clock = ManualClock::new(START);
    let opts = InitOptions {
        data_dir: data_dir.clone(),
        merchant: "Test Shop".into(),
        allowed_origins: vec![SHOP.into()],
        detokenize_ips: vec![keys::parse_cidr("127.0.0.1/32").unwrap(), keys::parse_cidr("::1").unwrap()],
        mode: Mode::Test,
        database_url: test_database_url().await,
    };
    let init = bootstrap::init(&opts, &master, START).await.unwrap();
    let store = bootstrap::open_database(&data_dir, opts.database_url.as_deref(), bootstrap::POOL_SIZE, &mut master)
        .await
        .unwrap();
    let master = Arc::new(master);
    let tls = vault::tls::load(&data_dir, None, None).unwrap();
    let cert_pem = std::fs::read(&tls.cert_path).unwrap();
    let tls_config = vault::tls::server_config(&tls).unwrap();
    let mut config = fast_config();
    config.frame_dir = Some(frame_dir);
    tweak(&mut config);
    let running = vault::start(
        Arc::clone(&store),
        Arc::clone(&master),
        Arc::new(clock.clone()),
        config,
        tls_config,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let addr = running.addr;
    let client = client_for(&cert_pem);
    TestApp {
        addr,
        base: format!("https://localhost:{}", addr.port()),
        client,
        clock,
        db_path: bootstrap::db_path(&data_dir),
        dir,
        cert_pem,
        merchant_id: init.merchant.id.clone(),
        pk: init.publishable.plaintext.expose().to_owned(),
        sk: init.secret.plaintext.expose().to_owned(),
        sk_id: init.secret.record.id.clone(),
        admin: init.admin.plaintext.expose().to_owned(),
        ro: init.read_only.plaintext.expose().to_owned(),
        store,
        database_url: opts.database_url.clone(),
        master,
        running: Some(running),
    }
}

pub fn client_for(cert_pem: &[u8]) -> Client {
    Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem).unwrap())
        .resolve("localhost", "127.0.0.1:0".parse().unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

pub fn card_body(card: (&str, &str)) -> Value {
    json!({ "card": { "number": card.0, "exp_month": 12, "exp_year": 2030, "cvc": card.1, "name": "Ada Lovelace" } })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn state(&self) -> &vault::AppState {
        &self.running.as_ref().unwrap().state
    }

    /// POST /v1/tokens from SHOP with the publishable key.
    pub fn tokenize_req(&self, body: &Value) -> RequestBuilder {
        self.client.post(self.url("/v1/tokens")).bearer_auth(&self.pk).header("Origin", SHOP).json(body)
    }

    pub async fn tokenize(&self, card: (&str, &str)) -> Value {
        let r = self.tokenize_req(&card_body(card)).send().await.unwrap();
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    }

    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.client.get(self.url(path)).bearer_auth(key).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, key: &str, body: Option<Value>) -> Response {
        let mut r = self.client.post(self.url(path)).bearer_auth(key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.unwrap()
    }

    /// The id of the first key of this merchant with `role` (via the admin API).
    pub async fn key_id_with_role(&self, role: &str) -> String {
        let list: Value = self.get("/v1/keys", &self.admin).await.json().await.unwrap();
        list["data"].as_array().unwrap().iter().find(|k| k["role"] == role).unwrap()["id"].as_str().unwrap().to_owned()
    }

    /// Token metadata as a secret key sees it (with the fingerprint).
    pub async fn metadata(&self, token: &Value) -> Value {
        let r = self.get(&format!("/v1/tokens/{}", token["id"].as_str().unwrap()), &self.sk).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn detokenize(&self, id: &str, key: &str) -> Response {
        self.post(&format!("/v1/tokens/{id}/detokenize"), key, None).await
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(&self.db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
    }

    /// Runs a statement (portable SQL) on whichever engine the suite uses, as an attacker
    /// with database access would.
    pub fn execute(&self, sql: &str) {
        match self.database_url.clone() {
            None => {
                rusqlite::Connection::open(&self.db_path).unwrap().execute(sql, []).unwrap();
            }
            Some(_) => {
                self.count(&format!("WITH changed AS ({sql} RETURNING 1) SELECT count(*) FROM changed"));
            }
        }
    }

    /// Runs a `SELECT count(*) …`-style query (portable SQL) on whichever engine the suite uses.
    /// Whether `text` appears in plain in any stored token's columns (SQLite only; on Postgres
    /// the suite relies on the same code path checked here).
    pub fn count_text_in_tokens(&self, text: &str) -> bool {
        if self.database_url.is_some() {
            return false;
        }
        let db = self.db();
        let mut rows = db.prepare("SELECT * FROM tokens").unwrap();
        let columns = rows.column_count();
        let mut rows = rows.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                let bytes = match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => b.to_vec(),
                    _ => continue,
                };
                if bytes.windows(text.len()).any(|w| w == text.as_bytes()) {
                    return true;
                }
            }
        }
        false
    }

    pub fn count(&self, sql: &str) -> i64 {
        let Some(url) = self.database_url.clone() else {
            return self.db().query_row(sql, [], |r| r.get(0)).unwrap();
        };
        let sql = sql.to_owned();
        // Off the test's runtime: a small runtime of its own on another thread.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                let row = client.query_one(&sql, &[]).await.unwrap();
                row.try_get::<_, i64>(0).unwrap_or_else(|_| i64::from(row.get::<_, i32>(0)))
            })
        })
        .join()
        .unwrap()
    }

    pub async fn audit_events(&self, event: &str) -> Vec<Value> {
        let events = self
            .store
            .list_audit(vault::store::AuditFilter { event: Some(event.into()), limit: 1000, ..Default::default() })
            .await
            .unwrap();
        events.into_iter().map(|e| serde_json::to_value(e).unwrap()).collect()
    }

    /// Waits until `cond` holds (background tasks), at most 5 s.
    pub async fn eventually(&self, mut cond: impl FnMut(&Self) -> bool) {
        for _ in 0..100 {
            if cond(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("condition not reached in time");
    }

    /// The raw bytes of the database files and the captured logs contain no test card number,
    /// no last 8 digits, no CVC.
    pub async fn assert_no_card_data(&self) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut files = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", self.db_path.display()));
            if let Ok(bytes) = std::fs::read(&p) {
                files.push((p.display().to_string(), bytes));
            }
        }
        files.push(("captured logs".into(), captured_logs()));
        for (name, bytes) in &files {
            for (number, cvc) in ALL_CARDS {
                let last8 = &number[number.len() - 8..];
                for needle in [
                    number.to_owned(),
                    last8.to_owned(),
                    format!("\"{cvc}\""),
                    format!("cvc\":\"{cvc}"),
                    format!("cvc={cvc}"),
                    format!("cvc: {cvc}"),
                ] {
                    assert!(
                        !contains(bytes, needle.as_bytes()),
                        "{name} contains test card data ({} bytes searched)",
                        bytes.len()
                    );
                }
            }
        }
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub async fn error_code(r: Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    (status, v["error"]["code"].as_str().unwrap_or_default().to_owned())
}

/// A live-mode key of the test merchant, created as the CLI does.
pub async fn live_key(app: &TestApp, kind: vault::keys::KeyKind, role: Option<vault::keys::Role>) -> String {
    let new = vault::bootstrap::create_key(
        app.store.as_ref(),
        &app.master,
        vault::keys::KeySpec {
            merchant_id: app.merchant_id.clone(),
            kind,
            mode: vault::keys::Mode::Live,
            role,
            label: String::new(),
            allowed_origins: vec![SHOP.into()],
            ip_allowlist: vec![],
        },
        START,
    )
    .await
    .unwrap();
    app.state().refresh_keys().await.unwrap();
    new.plaintext.expose().to_owned()
}
