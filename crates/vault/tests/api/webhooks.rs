//! Webhooks outside-in: endpoints, signed deliveries with retries, the Node.js check from the
//! merchant docs against a real delivery, redelivery, SSRF refusals, kill -9 survival.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::payments::{pay, payments_key, token_for};
use vault::clock::Clock as _;

/// A receiver on 127.0.0.1 answering the scripted statuses in order, then `then`: plain http
/// (allowed in test mode), or https with its own self-signed certificate
/// ([`Receiver::start_https`]).
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub scheme: &'static str,
    pub hits: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    pub script: Arc<Mutex<VecDeque<u16>>>,
    pub then: Arc<Mutex<u16>>,
    /// How long each answer takes.
    pub delay: Arc<Mutex<Duration>>,
}

impl Receiver {
    pub async fn start(script: &[u16], then: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver::new(listener.local_addr().unwrap(), "http", script, then);
        let router = r.router();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        r
    }

    /// An https receiver answering 200, and its certificate (DER) for `webhook_test_roots`.
    pub async fn start_https() -> (Self, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let tls = vault::tls::load(dir.path(), None, None).unwrap();
        let cert = tls.certs[0].as_ref().to_vec();
        let acceptor = tokio_rustls::TlsAcceptor::from(vault::tls::server_config(&tls).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver::new(listener.local_addr().unwrap(), "https", &[], 200);
        let router = r.router();
        tokio::spawn(async move {
            let _dir = dir;
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, router) = (acceptor.clone(), router.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else { return };
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        tower::ServiceExt::oneshot(router.clone(), req.map(axum::body::Body::new))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (r, cert)
    }

    fn new(addr: SocketAddr, scheme: &'static str, script: &[u16], then: u16) -> Self {
        Receiver {
            addr,
            scheme,
            hits: Arc::default(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            then: Arc::new(Mutex::new(then)),
            delay: Arc::default(),
        }
    }

    fn router(&self) -> axum::Router {
        let me = self.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let me = me.clone();
                async move {
                    let delay = *me.delay.lock().unwrap();
                    tokio::time::sleep(delay).await;
                    me.hits.lock().unwrap().push((headers, body));
                    let next = me.script.lock().unwrap().pop_front();
                    let status = next.unwrap_or(*me.then.lock().unwrap());
                    (StatusCode::from_u16(status).unwrap(), "x".repeat(3000))
                }
            }),
        )
    }

    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}/hook", self.scheme, self.addr.port())
    }

    pub fn count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }
}

pub async fn create_endpoint(app: &TestApp, url: &str, events: Value) -> Value {
    let r = app.post("/v1/webhook_endpoints", &app.admin, Some(json!({ "url": url, "enabled_events": events }))).await;
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

pub fn fast(c: &mut vault::config::Config) {
    c.webhook_backoff_base = Duration::ZERO;
    c.webhook_poll_interval = Duration::from_millis(50);
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_event_exactly_as_signed_on_the_third_attempt() {
    let app = spawn_app_with(fast).await;
    let receiver = Receiver::start(&[500, 500], 200).await;
    let endpoint = create_endpoint(&app, &receiver.url(), json!(["payment.succeeded"])).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let shown: Value = app
        .get(&format!("/v1/webhook_endpoints/{}", endpoint["id"].as_str().unwrap()), &app.admin)
        .await
        .json()
        .await
        .unwrap();
    assert!(shown.get("secret").is_none(), "the secret is shown once");
    assert_eq!(shown["status"], "enabled");

    let key = payments_key(&app).await;
    let token = token_for(&app, VISA.0).await;
    let r = pay(&app, &key, "w-1", &json!({ "amount": 1200, "currency": "usd", "token": token })).await;
    assert_eq!(r.status(), 201);
    let payment: Value = r.json().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while receiver.count() < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 3, "500, 500, then 200; nothing after");

    let events: Value = app.get("/v1/events?type=payment.succeeded", &key).await.json().await.unwrap();
    let event_id = events["data"][0]["id"].as_str().unwrap().to_owned();
    let stored = app.get(&format!("/v1/events/{event_id}"), &key).await.bytes().await.unwrap();
    let (headers, body) = receiver.hits.lock().unwrap().last().cloned().unwrap();
    assert_eq!(body, stored, "the delivered bytes are the stored event");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "payment.succeeded");
    assert_eq!(v["data"]["object"]["id"], payment["id"]);
    assert_eq!(headers["webhook-id"], event_id.as_str());

    // Both schemes verify with the shared crate; a tampered body or another secret does not.
    let parsed = webhook_signature::Secret::parse(&secret).unwrap();
    let now = app.clock.now();
    let ok = webhook_signature::verify(&body, &headers, &parsed, webhook_signature::DEFAULT_TOLERANCE, now);
    assert!(ok.is_ok(), "{ok:?}");
    let mut tampered = body.to_vec();
    tampered.push(b' ');
    assert!(
        webhook_signature::verify(&tampered, &headers, &parsed, webhook_signature::DEFAULT_TOLERANCE, now).is_err()
    );

    // The merchant docs' Node.js snippet, unchanged, against this real delivery.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("payload"), &body).unwrap();
    let script = r#"
const crypto = require('crypto');
const fs = require('fs');
const payload = fs.readFileSync(process.argv[2]);
const secret = process.argv[3];
const signature = process.argv[4];
const hmac = crypto.createHmac('sha256', secret);
const computed = hmac.update(payload).digest('hex');
process.exit(crypto.timingSafeEqual(Buffer.from(signature), Buffer.from(computed)) ? 0 : 1);
"#;
    std::fs::write(dir.path().join("check.js"), script).unwrap();
    let signature = headers["x-altafinex-signature"].to_str().unwrap();
    let node = |payload: &str, secret: &str| {
        std::process::Command::new("node")
            .arg(dir.path().join("check.js"))
            .arg(dir.path().join(payload))
            .arg(secret)
            .arg(signature)
            .status()
            .expect("node (Debian's nodejs) is needed for this test")
    };
    assert!(node("payload", &secret).success(), "the Node.js snippet verifies the delivery");
    std::fs::write(dir.path().join("tampered"), &tampered).unwrap();
    assert!(!node("tampered", &secret).success());
    assert!(!node("payload", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").success());

    // Three attempts recorded: status, latency, error class; bodies kept to 1 KB.
    let attempts: Value = app.get(&format!("/v1/events/{event_id}/attempts"), &key).await.json().await.unwrap();
    let codes: Vec<_> = attempts["data"].as_array().unwrap().iter().map(|a| a["status_code"].as_u64()).collect();
    assert_eq!(codes, [Some(500), Some(500), Some(200)]);
    assert_eq!(attempts["data"][0]["error_class"], "http_status");
    assert_eq!(attempts["data"][2]["error_class"], Value::Null);
    let longest = app.count("SELECT COALESCE(MAX(LENGTH(response_body)), 0) FROM delivery_attempts");
    assert_eq!(longest, 1024);

    // Redelivery sends it once more.
    let r = app.post(&format!("/v1/events/{event_id}/redeliver"), &app.admin, Some(json!({}))).await;
    assert_eq!(r.status(), 202);
    app.eventually(|_| receiver.count() == 4).await;
    assert_eq!(app.post(&format!("/v1/events/{event_id}/redeliver"), &key, Some(json!({}))).await.status(), 403);
    app.assert_no_card_data().await;
}

#[tokio::test]
async fn deliveries_reach_an_https_receiver_only_when_its_certificate_is_trusted() {
    let (receiver, cert) = Receiver::start_https().await;
    assert!(receiver.url().starts_with("https://"));

    // A vault that does not trust the receiver's certificate: the attempt fails, nothing arrives.
    let app = spawn_app_with(fast).await;
    create_endpoint(&app, &receiver.url(), json!(["payment.succeeded"])).await;
    let key = payments_key(&app).await;
    let token = token_for(&app, VISA.0).await;
    assert_eq!(
        pay(&app, &key, "t-1", &json!({ "amount": 100, "currency": "usd", "token": token })).await.status(),
        201
    );
    let events: Value = app.get("/v1/events?type=payment.succeeded", &key).await.json().await.unwrap();
    let event_id = events["data"][0]["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let attempts = loop {
        let a: Value = app.get(&format!("/v1/events/{event_id}/attempts"), &key).await.json().await.unwrap();
        if !a["data"].as_array().unwrap().is_empty() || tokio::time::Instant::now() > deadline {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(attempts["data"][0]["status_code"], Value::Null, "{attempts}");
    assert_eq!(attempts["data"][0]["error_class"], "connect", "{attempts}");
    assert_eq!(receiver.count(), 0);

    // Trusted as a test root: delivered over TLS, signed as always.
    let app = spawn_app_with(|c| {
        fast(c);
        c.webhook_test_roots = vec![cert.clone()];
    })
    .await;
    let endpoint = create_endpoint(&app, &receiver.url(), json!(["payment.succeeded"])).await;
    let secret = webhook_signature::Secret::parse(endpoint["secret"].as_str().unwrap()).unwrap();
    let key = payments_key(&app).await;
    let token = token_for(&app, VISA.0).await;
    assert_eq!(
        pay(&app, &key, "t-2", &json!({ "amount": 100, "currency": "usd", "token": token })).await.status(),
        201
    );
    app.eventually(|_| receiver.count() == 1).await;
    let (headers, body) = receiver.hits.lock().unwrap()[0].clone();
    let now = app.clock.now();
    assert!(webhook_signature::verify(&body, &headers, &secret, webhook_signature::DEFAULT_TOLERANCE, now).is_ok());

    // Live mode never trusts the test roots (nor loopback): the URL is refused outright.
    let live_admin = live_key(&app, vault::keys::KeyKind::Secret, Some(vault::keys::Role::Admin)).await;
    let r = app
        .post("/v1/webhook_endpoints", &live_admin, Some(json!({ "url": receiver.url(), "enabled_events": ["*"] })))
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_during_the_overlap() {
    let app = spawn_app_with(fast).await;
    let receiver = Receiver::start(&[], 200).await;
    let endpoint = create_endpoint(&app, &receiver.url(), json!(["*"])).await;
    let id = endpoint["id"].as_str().unwrap();
    let old = webhook_signature::Secret::parse(endpoint["secret"].as_str().unwrap()).unwrap();
    let r = app
        .post(
            &format!("/v1/webhook_endpoints/{id}/rotate_secret"),
            &app.admin,
            Some(json!({ "overlap_seconds": 3600 })),
        )
        .await;
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.unwrap();
    let new = webhook_signature::Secret::parse(rotated["secret"].as_str().unwrap()).unwrap();
    let key = payments_key(&app).await;
    let token = token_for(&app, VISA.0).await;
    pay(&app, &key, "r-1", &json!({ "amount": 100, "currency": "usd", "token": token })).await;
    app.eventually(|_| receiver.count() == 1).await;
    let (headers, body) = receiver.hits.lock().unwrap()[0].clone();
    assert_eq!(headers["webhook-signature"].to_str().unwrap().split(' ').count(), 2);
    let now = app.clock.now();
    for s in [&old, &new] {
        assert!(webhook_signature::verify(&body, &headers, s, webhook_signature::DEFAULT_TOLERANCE, now).is_ok());
    }
    // After the overlap only the new secret signs.
    app.clock.advance(3601);
    let token = token_for(&app, VISA.0).await;
    pay(&app, &key, "r-2", &json!({ "amount": 100, "currency": "usd", "token": token })).await;
    app.eventually(|_| receiver.count() == 2).await;
    let (headers, _) = receiver.hits.lock().unwrap()[1].clone();
    assert_eq!(headers["webhook-signature"].to_str().unwrap().split(' ').count(), 1);

    // Deleted: nothing more is sent.
    assert_eq!(
        app.client
            .delete(app.url(&format!("/v1/webhook_endpoints/{id}")))
            .bearer_auth(&app.admin)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let token = token_for(&app, VISA.0).await;
    pay(&app, &key, "r-3", &json!({ "amount": 100, "currency": "usd", "token": token })).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 2);
}

#[tokio::test]
async fn an_endpoint_failing_for_three_days_is_disabled_and_the_merchant_told() {
    let app = spawn_app_with(fast).await;
    let failing = Receiver::start(&[], 500).await;
    let healthy = Receiver::start(&[], 200).await;
    let bad = create_endpoint(&app, &failing.url(), json!(["payment.succeeded"])).await;
    create_endpoint(&app, &healthy.url(), json!(["webhook_endpoint.disabled"])).await;
    let key = payments_key(&app).await;
    let token = token_for(&app, VISA.0).await;
    pay(&app, &key, "d-1", &json!({ "amount": 100, "currency": "usd", "token": token })).await;
    app.eventually(|_| failing.count() >= 2).await;
    // Three days later the next attempt gives up and the endpoint is disabled.
    app.clock.advance(3 * 24 * 3600 + 1);
    app.eventually(|_| healthy.count() == 1).await;
    let (_, body) = healthy.hits.lock().unwrap()[0].clone();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "webhook_endpoint.disabled");
    assert_eq!(v["data"]["object"]["id"], bad["id"]);
    assert_eq!(v["data"]["object"]["status"], "disabled");
    let shown: Value = app
        .get(&format!("/v1/webhook_endpoints/{}", bad["id"].as_str().unwrap()), &app.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["status"], "disabled");
    assert_eq!(app.audit_events("webhook_endpoint.disabled").await.len(), 1);
    let n = failing.count();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(failing.count(), n, "nothing more is sent to a disabled endpoint");
}

#[tokio::test]
async fn endpoint_urls_are_checked() {
    let app = spawn_app().await;
    for (url, code) in [
        ("http://hooks.example.com/h", "url_not_https"),
        ("ftp://hooks.example.com/h", "url_not_https"),
        ("https://user:pw@hooks.example.com/h", "url_invalid"),
        ("not a url", "url_invalid"),
        ("https://hooks.example/h?card=4242-4242-4242-4242", "card_number_in_text"),
        ("https://4242424242424242.hooks.example/h", "card_number_in_text"),
    ] {
        let r =
            app.post("/v1/webhook_endpoints", &app.admin, Some(json!({ "url": url, "enabled_events": ["*"] }))).await;
        assert_eq!(error_code(r).await, (400, code.to_owned()), "{url}");
    }
    let r = app
        .post(
            "/v1/webhook_endpoints",
            &app.admin,
            Some(json!({ "url": "https://h.example/x", "enabled_events": ["payment.exploded"] })),
        )
        .await;
    assert_eq!(error_code(r).await, (400, "event_type_unknown".to_owned()));
    // Live mode: every internal address is refused (also checked again after DNS resolution
    // at delivery time; see `vault::api::webhooks`).
    for url in [
        "https://127.0.0.1/h",
        "https://localhost/h",
        "https://10.1.2.3/h",
        "https://192.168.0.10/h",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/h",
        "https://[fd12::1]/h",
        "http://127.0.0.1:8080/h",
    ] {
        assert!(vault::api::webhooks::check_url(url, vault::keys::Mode::Live).is_err(), "{url}");
    }
    // Only admin keys manage endpoints.
    let r = app
        .post("/v1/webhook_endpoints", &app.sk, Some(json!({ "url": "https://h.example/x", "enabled_events": ["*"] })))
        .await;
    assert_eq!(r.status(), 403);
}

/// SSRF through the API with a live key: literal internal addresses are refused when the
/// endpoint is made; a name that only resolves to an internal address (here, the host names
/// /etc/hosts maps to loopback, and `localhost.`) is refused after resolution at delivery, so
/// nothing ever connects to the listener standing on loopback.
#[tokio::test]
async fn live_endpoints_never_reach_internal_addresses() {
    let app = spawn_app().await;
    let live_admin = live_key(&app, vault::keys::KeyKind::Secret, Some(vault::keys::Role::Admin)).await;
    for (url, code) in [
        ("https://127.0.0.1/h", "url_address_refused"),
        ("https://localhost/h", "url_address_refused"),
        ("https://10.1.2.3/h", "url_address_refused"),
        // Its 12 digits are an address, not a card number: refused for what it is.
        ("https://169.254.169.254/latest/meta-data/", "url_address_refused"),
        ("https://169.254.1.1/h", "url_address_refused"),
        ("https://metadata.google.internal/h", "url_address_refused"),
        ("https://[::1]/h", "url_address_refused"),
        ("https://[::ffff:127.0.0.1]/h", "url_address_refused"),
        ("https://0.0.0.0/h", "url_address_refused"),
        ("http://127.0.0.1:8080/h", "url_not_https"),
    ] {
        let r =
            app.post("/v1/webhook_endpoints", &live_admin, Some(json!({ "url": url, "enabled_events": ["*"] }))).await;
        assert_eq!(error_code(r).await, (400, code.to_owned()), "{url}");
    }

    // A listener on loopback that counts every connection made to it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = connections.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut names: Vec<String> = hosts
        .lines()
        .filter_map(|l| l.split('#').next())
        .map(str::split_whitespace)
        .filter_map(|mut f| (f.next() == Some("127.0.0.1")).then(|| f.map(str::to_owned).collect::<Vec<_>>()))
        .flatten()
        .filter(|n| n != "localhost")
        .collect();
    names.push("localhost.".into());
    let mut created = Vec::new();
    for name in &names {
        let url = format!("https://{name}:{port}/h");
        let r =
            app.post("/v1/webhook_endpoints", &live_admin, Some(json!({ "url": url, "enabled_events": ["*"] }))).await;
        match r.status().as_u16() {
            201 => created.push(url),
            _ => assert_eq!(error_code(r).await, (400, "url_address_refused".to_owned()), "{url}"),
        }
    }
    assert!(!created.is_empty(), "no loopback name was accepted at creation, nothing to deliver to: {names:?}");

    // A live event for those endpoints; every delivery attempt is refused after resolution.
    let now = app.state().now();
    let event = vault::api::payments::new_event(
        &app.merchant_id,
        vault::keys::Mode::Live,
        "payment.succeeded",
        json!({ "id": "pay_ssrf", "object": "payment" }),
        now,
    )
    .unwrap();
    let event_id = event.id.clone();
    app.state().store.insert_event(event).await.unwrap();
    let r = app.post(&format!("/v1/events/{event_id}/redeliver"), &live_admin, Some(json!({}))).await;
    assert_eq!(r.status(), 202);
    let redelivery: Value = r.json().await.unwrap();
    assert_eq!(redelivery["deliveries"], created.len(), "{redelivery}");
    // The background worker may attempt them too: every endpoint gets at least one attempt.
    vault::api::webhooks::deliver_due(app.state()).await;
    let attempts: Value = app.get(&format!("/v1/events/{event_id}/attempts"), &live_admin).await.json().await.unwrap();
    let attempts = attempts["data"].as_array().unwrap().clone();
    let endpoints: std::collections::HashSet<&str> = attempts.iter().filter_map(|a| a["endpoint"].as_str()).collect();
    assert_eq!(endpoints.len(), created.len(), "{attempts:?}");
    for a in &attempts {
        assert_eq!(a["error_class"], "refused_address", "{a}");
        assert_eq!(a["status_code"], Value::Null, "{a}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0, "a live delivery connected to loopback");
}

/// A `vault serve` child process, killed (SIGKILL) on drop.
struct Child(std::process::Child, String);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `vault` binary, on the suite's engine (`database` is the Postgres URL, if any).
fn vault_cmd(database: Option<&str>) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_vault"));
    for var in ["VAULT_MASTER_KEY", "VAULT_MASTER_KEY_FILE", "VAULT_DATA_DIR", "VAULT_LISTEN", "VAULT_FRAME_DIR"] {
        c.env_remove(var);
    }
    match database {
        Some(url) => c.env("VAULT_DATABASE_URL", url),
        None => c.env_remove("VAULT_DATABASE_URL"),
    };
    c.env("RUST_LOG", "warn");
    c
}

fn start_vault(dir: &std::path::Path, database: Option<&str>) -> Child {
    use std::io::BufRead as _;
    let mut child = vault_cmd(database)
        .args(["serve", "--data-dir", dir.to_str().unwrap(), "--listen", "127.0.0.1:0", "--log-format", "text"])
        // Load, not the limiter, is what these tests are about.
        .args(["--rate-limit-key", "100000", "--rate-limit-key-burst", "100000"])
        .args(["--rate-limit-ip", "100000", "--rate-limit-ip-burst", "100000"])
        // Fast retries, and a short timeout so that a dead instance's lease (2 × timeout + 5 s)
        // expires quickly.
        .env("VAULT_WEBHOOK_BACKOFF_MS", "0")
        .env("VAULT_WEBHOOK_TIMEOUT_SECS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().rsplit(':').next().unwrap().to_owned();
    Child(child, format!("https://localhost:{port}"))
}

/// A `vault serve` child process on the suite's engine, initialised with a payments key and a
/// webhook endpoint (all events) on `receiver`.
struct Process {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    database: Option<String>,
    client: reqwest::Client,
    pk: String,
    pay_key: String,
    vault: Option<Child>,
}

impl Process {
    async fn start(receiver: &Receiver) -> Process {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let database = test_database_url().await;
        let o = vault_cmd(database.as_deref())
            .args(["init", "--data-dir", dir.to_str().unwrap(), "--merchant", "Shop", "--allowed-origin", SHOP])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let keys: Value = serde_json::from_slice(&o.stdout).unwrap();
        let key = |name: &str| keys[name].as_str().unwrap().to_owned();
        let client = client_for(&std::fs::read(dir.join("tls/cert.pem")).unwrap());
        let vault = start_vault(&dir, database.as_deref());
        let r = client
            .post(format!("{}/v1/webhook_endpoints", vault.1))
            .bearer_auth(key("admin_key"))
            .json(&json!({ "url": receiver.url(), "enabled_events": ["*"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        Process {
            _tmp: tmp,
            dir,
            database,
            client,
            pk: key("publishable_key"),
            pay_key: key("payments_key"),
            vault: Some(vault),
        }
    }

    fn url(&self) -> String {
        self.vault.as_ref().map(|v| v.1.clone()).unwrap_or_default()
    }

    /// SIGKILL, then a new instance on the same data (the dead one's leases must expire first).
    fn kill_and_restart(&mut self) {
        drop(self.vault.take());
        self.vault = Some(start_vault(&self.dir, self.database.as_deref()));
    }

    async fn token(&self) -> String {
        let r = self
            .client
            .post(format!("{}/v1/tokens", self.url()))
            .bearer_auth(&self.pk)
            .header("Origin", SHOP)
            .json(&card_body(VISA))
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    fn pay(&self, idem: &str, body: &Value) -> impl std::future::Future<Output = reqwest::Result<reqwest::Response>> {
        self.client
            .post(format!("{}/v1/payments", self.url()))
            .bearer_auth(&self.pay_key)
            .header("Idempotency-Key", idem)
            .json(body)
            .send()
    }
}

/// The ids of the payments whose events `receiver` got after its first `skip` hits.
fn delivered_payments(receiver: &Receiver, skip: usize) -> Vec<String> {
    let hits = receiver.hits.lock().unwrap();
    let mut seen: Vec<String> = hits
        .iter()
        .skip(skip)
        .filter_map(|(_, body)| serde_json::from_slice::<Value>(body).ok())
        .filter_map(|v| v["data"]["object"]["id"].as_str().map(str::to_owned))
        .collect();
    seen.sort();
    seen.dedup();
    seen
}

#[tokio::test]
async fn events_undelivered_when_the_vault_is_killed_are_all_delivered_after_restart() {
    // The receiver is slow (each delivery times out and is retried), so deliveries are in
    // flight, under a lease, when the vault dies.
    let receiver = Receiver::start(&[], 200).await;
    *receiver.delay.lock().unwrap() = Duration::from_secs(3);
    let mut p = Process::start(&receiver).await;
    let mut payments = Vec::new();
    for i in 0..3 {
        let body = json!({ "amount": 100 + i, "currency": "usd", "token": p.token().await });
        let r = p.pay(&format!("k9-{i}"), &body).await.unwrap();
        assert_eq!(r.status(), 201);
        payments.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = receiver.count();
    *receiver.delay.lock().unwrap() = Duration::ZERO;
    p.kill_and_restart(); // SIGKILL, mid-delivery; the receiver now answers at once
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while delivered_payments(&receiver, before).len() < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    payments.sort();
    assert_eq!(delivered_payments(&receiver, before), payments, "every payment's event is delivered after the restart");
}

/// kill -9 under payment load: every payment acknowledged before the kill reads back as it was
/// acknowledged after the restart, and its event arrives; a request whose answer the kill cut
/// off, retried with its Idempotency-Key, gets one answer, the same on every retry.
#[tokio::test]
async fn payments_acknowledged_before_a_kill_9_under_load_read_back_and_their_events_arrive() {
    let receiver = Receiver::start(&[], 200).await;
    let mut p = Process::start(&receiver).await;
    let token = p.token().await;
    let body = json!({ "amount": 1250, "currency": "eur", "token": token });
    let acked = Arc::new(Mutex::new(Vec::<(String, String, String)>::new())); // (key, id, status)
    let cut = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (acked, cut, stop, body) = (acked.clone(), cut.clone(), stop.clone(), body.clone());
            let send = {
                let (client, url, key) = (p.client.clone(), format!("{}/v1/payments", p.url()), p.pay_key.clone());
                move |idem: String, body: Value| {
                    client.post(url.clone()).bearer_auth(key.clone()).header("Idempotency-Key", idem).json(&body).send()
                }
            };
            tokio::spawn(async move {
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let idem = format!("load-{w}-{i}");
                    match send(idem.clone(), body.clone()).await {
                        Ok(r) if r.status() == 201 => {
                            let v: Value = r.json().await.unwrap_or(Value::Null);
                            let (id, status) = (v["id"].as_str(), v["status"].as_str());
                            match (id, status) {
                                (Some(id), Some(status)) => {
                                    acked.lock().unwrap().push((idem, id.to_owned(), status.to_owned()))
                                }
                                _ => cut.lock().unwrap().push(idem), // the body was cut off
                            }
                        }
                        // Refused or cut off: no acknowledgement to keep.
                        Ok(_) | Err(_) => cut.lock().unwrap().push(idem),
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    p.kill_and_restart();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let cut = cut.lock().unwrap().clone();
    assert!(acked.len() >= 10, "too little load before the kill: {} acknowledged", acked.len());

    for (idem, id, status) in &acked {
        let r = p.client.get(format!("{}/v1/payments/{id}", p.url())).bearer_auth(&p.pay_key).send().await.unwrap();
        assert_eq!(r.status(), 200, "acknowledged payment {id} ({idem}) lost");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"].as_str(), Some(status.as_str()), "{id} changed after the restart: {v}");
    }
    // A request the kill cut off in flight keeps its claim until the dead instance's lease
    // (60 s) expires: 409 `idempotency_key_in_use` meanwhile (the SDK retries it); one cut off
    // before or after its claim gets its one answer, the same again.
    let mut in_flight = 0;
    for idem in &cut {
        let first = p.pay(idem, &body).await.unwrap();
        let status = first.status().as_u16();
        let first: Value = first.json().await.unwrap();
        if status == 409 {
            assert_eq!(first["error"]["code"], "idempotency_key_in_use", "{idem}: {first}");
            in_flight += 1;
            continue;
        }
        assert!(status == 201 || status == 402, "retry of {idem}: {status} {first}");
        let again: Value = p.pay(idem, &body).await.unwrap().json().await.unwrap();
        assert_eq!(first["id"], again["id"], "two answers for {idem}");
    }

    let mut succeeded: Vec<String> =
        acked.iter().filter(|(_, _, status)| status == "succeeded").map(|(_, id, _)| id.clone()).collect();
    succeeded.sort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let all_arrived = |seen: &[String]| succeeded.iter().all(|id| seen.binary_search(id).is_ok());
    while !all_arrived(&delivered_payments(&receiver, 0)) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = delivered_payments(&receiver, 0);
    let missing: Vec<&String> = succeeded.iter().filter(|id| seen.binary_search(id).is_err()).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged payments' events never arrived: {missing:?}",
        missing.len(),
        succeeded.len()
    );
    eprintln!(
        "kill -9 under payment load: {} acknowledged before the kill, {} cut off ({in_flight} still claimed by the dead instance)",
        acked.len(),
        cut.len()
    );
}
