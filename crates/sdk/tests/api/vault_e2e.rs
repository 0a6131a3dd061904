//! Against the real vault over TLS (its self-signed development certificate added as a root):
//! tokens, which the vault serves today. Payments join when the vault's payment routes land.

use std::sync::Arc;

use altafinex::{Client, Error, ErrorType};
use serde_json::json;

use vault::bootstrap::{self, InitOptions};
use vault::clock::SystemClock;
use vault::crypto::{MasterKey, random_key};
use vault::keys::{self, Mode};

const SHOP: &str = "https://shop.example";

pub struct Vault {
    base: String,
    addr: std::net::SocketAddr,
    cert_pem: Vec<u8>,
    pk: String,
    sk: String,
    ro: String,
    pub admin: String,
    _dir: tempfile::TempDir,
    running: Option<vault::Running>,
}

impl Drop for Vault {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            tokio::spawn(running.shutdown());
        }
    }
}

pub async fn spawn_vault() -> Vault {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut master = MasterKey::from_key(&random_key().unwrap()).unwrap();
    let opts = InitOptions {
        data_dir: data_dir.clone(),
        merchant: "SDK Shop".into(),
        allowed_origins: vec![SHOP.into()],
        detokenize_ips: vec![keys::parse_cidr("127.0.0.1/32").unwrap(), keys::parse_cidr("::1").unwrap()],
        mode: Mode::Test,
        database_url: None,
    };
    // The system clock: the vault signs webhook timestamps with it, and the SDK checks them
    // against the system clock.
    let now =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap();
    let init = bootstrap::init(&opts, &master, now).await.unwrap();
    let store = bootstrap::open_database(&data_dir, None, bootstrap::POOL_SIZE, &mut master).await.unwrap();
    let tls = vault::tls::load(&data_dir, None, None).unwrap();
    let cert_pem = std::fs::read(&tls.cert_path).unwrap();
    let running = vault::start(
        store,
        Arc::new(master),
        Arc::new(SystemClock),
        vault::config::Config::default(),
        vault::tls::server_config(&tls).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let addr = running.addr;
    Vault {
        base: format!("https://localhost:{}", addr.port()),
        addr,
        cert_pem,
        pk: init.publishable.plaintext.expose().to_owned(),
        sk: init.secret.plaintext.expose().to_owned(),
        ro: init.read_only.plaintext.expose().to_owned(),
        admin: init.admin.plaintext.expose().to_owned(),
        _dir: dir,
        running: Some(running),
    }
}

impl Vault {
    pub fn client(&self, key: &str) -> Client {
        Client::builder(key)
            .base_url(&self.base)
            .add_root_certificate_pem(self.cert_pem.clone())
            .resolve("localhost", self.addr)
            .build()
            .unwrap()
    }

    /// What the card frame does in the browser: POST /v1/tokens with the publishable key.
    fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.cert_pem).unwrap())
            .resolve("localhost", self.addr)
            .build()
            .unwrap()
    }

    /// A new API key (`POST /v1/keys` with the admin key); its secret.
    pub async fn create_key(&self, body: serde_json::Value) -> String {
        let response = self
            .http()
            .post(format!("{}/v1/keys", self.base))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let key: serde_json::Value = response.json().await.unwrap();
        key["secret"].as_str().unwrap().to_owned()
    }

    pub async fn tokenize(&self, number: &str, cvc: &str) -> String {
        let http = self.http();
        let body =
            json!({"card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": cvc, "name": "Ada Lovelace"}});
        let response = http
            .post(format!("{}/v1/tokens", self.base))
            .bearer_auth(&self.pk)
            .header("Origin", SHOP)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let token: serde_json::Value = response.json().await.unwrap();
        token["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn tokens_retrieve_detokenize_delete_against_the_real_vault() {
    let vault = spawn_vault().await;
    let client = vault.client(&vault.sk);
    let id = vault.tokenize("4242424242424242", "737").await;

    let token = client.tokens().retrieve(&id).await.unwrap();
    assert_eq!((token.card.brand.as_str(), token.card.last4.as_str()), ("visa", "4242"));
    assert!(token.card.fingerprint.is_some(), "secret keys see the fingerprint");
    assert_eq!(token.expires_at, token.created + 86_400);
    assert!(!token.livemode);

    let card = client.tokens().detokenize(&id).await.unwrap();
    assert!(card.cvc_returned);
    assert_eq!(card.card.number.expose(), "4242424242424242");
    assert_eq!(card.card.cvc.as_ref().map(card::Cvc::expose), Some("737"));
    let shown = format!("{card:?}");
    assert!(!shown.contains("4242424242424242") && !shown.contains("737") && !shown.contains("Ada"), "{shown}");
    let again = client.tokens().detokenize(&id).await.unwrap();
    assert!(!again.cvc_returned && again.card.cvc.is_none(), "the CVC is handed out once");

    assert!(client.tokens().delete(&id).await.unwrap().deleted);
    let err = client.tokens().retrieve(&id).await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!((api.status, &api.error_type, api.code.as_str()), (404, &ErrorType::InvalidRequest, "resource_missing"));
    assert!(api.request_id.as_deref().is_some_and(|r| r.starts_with("req_")), "{api:?}");
}

#[tokio::test]
async fn the_vaults_errors_arrive_typed() {
    let vault = spawn_vault().await;
    let id = vault.tokenize("5555555555554444", "918").await;

    // A read-only key may read, not detokenize.
    let read_only = vault.client(&vault.ro);
    assert_eq!(read_only.tokens().retrieve(&id).await.unwrap().card.brand, "mastercard");
    let err = read_only.tokens().detokenize(&id).await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!(
        (api.status, &api.error_type, api.code.as_str()),
        (403, &ErrorType::Permission, "insufficient_permissions")
    );

    // An unknown key.
    let err = vault.client("sk_test_unknownkey000000000000").tokens().retrieve(&id).await.unwrap_err();
    assert_eq!(err.api().unwrap().error_type, ErrorType::Authentication);
    assert!(!err.to_string().contains("unknownkey"), "{err}");

    // Without the vault's certificate, TLS fails: nothing is relaxed by default.
    let untrusted = Client::builder(&vault.sk)
        .base_url(&vault.base)
        .resolve("localhost", vault.addr)
        .retry(altafinex::RetryConfig::disabled())
        .build()
        .unwrap();
    let err = untrusted.tokens().retrieve(&id).await.unwrap_err();
    assert!(matches!(err, Error::Network(_)), "{err:?}");
}
