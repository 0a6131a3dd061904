//! The HTTPS client: authentication, `Idempotency-Key`s, retries, error decoding.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, Url};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{ApiError, ConfigError, DecodeError, Error, NetworkError};
use crate::idempotency::IdempotencyKey;
use crate::retry::{self, Decision, Outcome, RetryConfig, Safety, Sleep, TokioSleep};
use crate::secret::{Mode, SecretKey};

/// Largest answer read (the API's objects and pages are far smaller).
const MAX_RESPONSE_BYTES: usize = 1 << 20;
const USER_AGENT: &str = concat!("altafinex-rust/", env!("CARGO_PKG_VERSION"));

/// The API client. Cheap to clone (clones share one connection pool); build one per process.
///
/// # Example
/// ```no_run
/// # async fn run() -> Result<(), altafinex::Error> {
/// use altafinex::{Client, Currency, payments::CreatePayment};
/// let client = Client::builder(std::env::var("ALTAFINEX_SECRET_KEY").unwrap_or_default())
///     .base_url("https://vault.example.com")
///     .build()?;
/// let payment = client.payments().create(&CreatePayment::new(1999, Currency::USD, "tok_123")).await?;
/// println!("{} {}", payment.id, payment.status);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    key: SecretKey,
    auth: HeaderValue,
    retry: RetryConfig,
    sleep: Arc<dyn Sleep>,
    rng: SystemRandom,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base.as_str())
            .field("secret_key", &self.inner.key)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// Per-call options.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    idempotency_key: Option<IdempotencyKey>,
}

impl RequestOptions {
    /// No options: a random `Idempotency-Key` is generated for POSTs.
    pub fn new() -> RequestOptions {
        RequestOptions::default()
    }

    /// Use this `Idempotency-Key` instead of a random one (see [`IdempotencyKey`]).
    #[must_use]
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> RequestOptions {
        self.idempotency_key = Some(key);
        self
    }
}

/// Configures a [`Client`]. Created by [`Client::builder`].
pub struct ClientBuilder {
    key: Result<SecretKey, ConfigError>,
    base_url: Option<String>,
    root_certificates: Vec<Vec<u8>>,
    resolve: Vec<(String, SocketAddr)>,
    retry: RetryConfig,
    timeout: Duration,
    connect_timeout: Duration,
    sleep: Arc<dyn Sleep>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("secret_key", &self.key.as_ref().map_err(|_| "invalid"))
            .field("base_url", &self.base_url)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts configuring a client with the merchant's secret key (`sk_test_…` or `sk_live_…`).
    /// The key is checked by [`ClientBuilder::build`]; it is held zeroized-on-drop and never
    /// shown by `Debug` or in errors.
    pub fn builder(secret_key: impl AsRef<str>) -> ClientBuilder {
        ClientBuilder {
            key: SecretKey::parse(secret_key.as_ref()),
            base_url: None,
            root_certificates: Vec::new(),
            resolve: Vec::new(),
            retry: RetryConfig::default(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            sleep: Arc::new(TokioSleep),
        }
    }

    /// The key's mode (test or live).
    pub fn mode(&self) -> Mode {
        self.inner.key.mode()
    }
}

impl ClientBuilder {
    /// The vault's base URL, `https://` only (`https://vault.example.com`, or
    /// `https://localhost:8443` in development). A path prefix is kept (`https://host/vault`).
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> ClientBuilder {
        self.base_url = Some(url.into());
        self
    }

    /// Also trusts the certificates in this PEM (for development: the vault's self-signed
    /// certificate, `DATA_DIR/tls/cert.pem`; or a private CA). The public roots stay trusted
    /// and nothing else about TLS is relaxed.
    #[must_use]
    pub fn add_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> ClientBuilder {
        self.root_certificates.push(pem.into());
        self
    }

    /// Resolves `host` to `addr` instead of asking DNS (tests, pinned deployments).
    #[must_use]
    pub fn resolve(mut self, host: impl Into<String>, addr: SocketAddr) -> ClientBuilder {
        self.resolve.push((host.into(), addr));
        self
    }

    /// Retry policy (default: 3 retries, see [`RetryConfig`]).
    #[must_use]
    pub fn retry(mut self, retry: RetryConfig) -> ClientBuilder {
        self.retry = retry;
        self
    }

    /// Time allowed for one attempt, from sending to the end of the answer (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.timeout = timeout;
        self
    }

    /// Time allowed to set up a connection, TLS included (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// How the client waits between attempts (default `tokio::time::sleep`).
    #[must_use]
    pub fn sleep(mut self, sleep: impl Sleep) -> ClientBuilder {
        self.sleep = Arc::new(sleep);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`Error::Config`]: a malformed secret key, a missing or non-`https` base URL, a PEM
    /// without a certificate, or a TLS set-up failure.
    pub fn build(self) -> Result<Client, Error> {
        let key = self.key?;
        let base = parse_base_url(self.base_url.as_deref())?;
        let mut auth = Zeroizing::new(String::with_capacity(key.expose().len() + 7));
        auth.push_str("Bearer ");
        auth.push_str(key.expose());
        let mut auth = HeaderValue::from_str(&auth)
            .map_err(|_| ConfigError::InvalidSecretKey("a secret key holds only letters, digits and `_`"))?;
        auth.set_sensitive(true);

        let mut http = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(true)
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout);
        for pem in &self.root_certificates {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|_| ConfigError::InvalidCertificate)?;
            if certs.is_empty() {
                return Err(ConfigError::InvalidCertificate.into());
            }
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        for (host, addr) in &self.resolve {
            http = http.resolve(host, *addr);
        }
        let http = http.build().map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                key,
                auth,
                retry: self.retry,
                sleep: self.sleep,
                rng: SystemRandom::new(),
            }),
        })
    }
}

fn parse_base_url(url: Option<&str>) -> Result<Url, ConfigError> {
    let url = url.ok_or(ConfigError::InvalidBaseUrl("set the vault's URL with ClientBuilder::base_url"))?;
    let parsed = Url::parse(url).map_err(|_| ConfigError::InvalidBaseUrl("not an absolute URL"))?;
    if parsed.scheme() != "https" {
        return Err(ConfigError::InvalidBaseUrl("the API is HTTPS only"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ConfigError::InvalidBaseUrl("no user or password in the URL (the key is the credential)"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ConfigError::InvalidBaseUrl("no query or fragment"));
    }
    Ok(parsed)
}

/// Checks an id used as a path segment (`pay_…`, `tok_…`): it can neither leave its segment
/// nor carry anything but an identifier.
pub(crate) fn path_id(id: &str) -> Result<&str, ConfigError> {
    if id.is_empty() || id.len() > 255 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(ConfigError::InvalidId);
    }
    Ok(id)
}

/// One logical request.
pub(crate) struct Call {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    idempotency_key: Option<IdempotencyKey>,
    safety: Safety,
}

impl Call {
    pub(crate) fn get(path: String) -> Call {
        Call {
            method: Method::GET,
            path,
            query: Vec::new(),
            body: None,
            idempotency_key: None,
            safety: Safety::Idempotent,
        }
    }

    pub(crate) fn delete(path: String) -> Call {
        Call { method: Method::DELETE, ..Call::get(path) }
    }

    /// A POST the API deduplicates by `Idempotency-Key`; `body` `None` sends no body.
    pub(crate) fn post<B: Serialize + ?Sized>(
        path: String,
        body: Option<&B>,
        options: &RequestOptions,
    ) -> Result<Call, Error> {
        let body = match body {
            Some(body) => {
                Some(serde_json::to_vec(body).map_err(|_| ConfigError::HttpClient("unserialisable body".into()))?)
            }
            None => None,
        };
        let key = match &options.idempotency_key {
            Some(key) => key.clone(),
            None => IdempotencyKey::random()?,
        };
        Ok(Call {
            method: Method::POST,
            path,
            query: Vec::new(),
            body,
            idempotency_key: Some(key),
            safety: Safety::Idempotent,
        })
    }

    /// Marks a POST the API does not deduplicate (see [`Safety::NotIdempotent`]).
    pub(crate) fn not_idempotent(mut self) -> Call {
        self.safety = Safety::NotIdempotent;
        self
    }

    pub(crate) fn query(mut self, name: &'static str, value: Option<impl ToString>) -> Call {
        if let Some(value) = value {
            self.query.push((name, value.to_string()));
        }
        self
    }
}

/// A complete answer.
struct Answer {
    status: u16,
    body: Zeroizing<Vec<u8>>,
    request_id: Option<String>,
    retry_after: Option<Duration>,
}

enum AttemptError {
    /// No answer: maybe retried.
    Network(NetworkError),
    /// Final (an over-long answer).
    Final(Error),
}

impl Client {
    /// Runs a call with retries and decodes its answer.
    pub(crate) async fn execute<T: DeserializeOwned>(&self, call: Call) -> Result<T, Error> {
        let inner = &self.inner;
        let url = self.url(&call);
        let mut retry = 0u32;
        loop {
            let (error, decision) = match self.attempt(&call, &url).await {
                Ok(answer) if (200..300).contains(&answer.status) => return decode(&answer),
                Ok(answer) => {
                    let api =
                        ApiError::from_response(answer.status, &answer.body, answer.request_id, answer.retry_after);
                    let outcome = Outcome::Status { status: api.status, code: &api.code, retry_after: api.retry_after };
                    let decision = retry::classify(outcome, call.safety);
                    (Error::Api(Box::new(api)), decision)
                }
                Err(AttemptError::Network(e)) => {
                    let decision = retry::classify(Outcome::Network(e.kind()), call.safety);
                    (Error::Network(e), decision)
                }
                Err(AttemptError::Final(e)) => (e, Decision::DontRetry),
            };
            match retry::delay(&inner.retry, decision, retry, self.random_u64()) {
                Some(wait) => {
                    inner.sleep.sleep(wait).await;
                    retry = retry.saturating_add(1);
                }
                None => return Err(error),
            }
        }
    }

    fn url(&self, call: &Call) -> Url {
        let base = &self.inner.base;
        let mut url = base.clone();
        url.set_path(&format!("{}{}", base.path().trim_end_matches('/'), call.path));
        if !call.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &call.query {
                pairs.append_pair(name, value);
            }
        }
        url
    }

    async fn attempt(&self, call: &Call, url: &Url) -> Result<Answer, AttemptError> {
        let inner = &self.inner;
        let mut request = inner
            .http
            .request(call.method.clone(), url.clone())
            .header(AUTHORIZATION, inner.auth.clone())
            .header(ACCEPT, "application/json");
        if let Some(key) = &call.idempotency_key {
            request = request.header("Idempotency-Key", key.as_str());
        }
        if let Some(body) = &call.body {
            request = request.header(CONTENT_TYPE, "application/json").body(body.clone());
        }
        let mut response = request.send().await.map_err(|e| AttemptError::Network(NetworkError::new(e)))?;
        let status = response.status().as_u16();
        let (request_id, retry_after) = answer_headers(response.headers());
        let mut body = Zeroizing::new(Vec::new());
        while let Some(chunk) = response.chunk().await.map_err(|e| AttemptError::Network(NetworkError::new(e)))? {
            // The chunk's buffer is wiped too: an answer may hold a card number or a secret.
            let mut chunk = Vec::from(chunk);
            if body.len().saturating_add(chunk.len()) > MAX_RESPONSE_BYTES {
                chunk.zeroize();
                let detail = format!("answer larger than {MAX_RESPONSE_BYTES} bytes");
                return Err(AttemptError::Final(Error::Decode(DecodeError { status, detail, request_id })));
            }
            body.extend_from_slice(&chunk);
            chunk.zeroize();
        }
        Ok(Answer { status, body, request_id, retry_after })
    }

    /// Uniform over `u64`, for backoff jitter. Should the system RNG fail, the full backoff
    /// ceiling is used: waiting longer is the safe side.
    fn random_u64(&self) -> u64 {
        let mut bytes = [0u8; 8];
        match self.inner.rng.fill(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            Err(_) => u64::MAX,
        }
    }
}

fn answer_headers(headers: &HeaderMap) -> (Option<String>, Option<Duration>) {
    let request_id = headers
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        .map(str::to_owned);
    let retry_after = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(retry::parse_retry_after);
    (request_id, retry_after)
}

fn decode<T: DeserializeOwned>(answer: &Answer) -> Result<T, Error> {
    let body: &[u8] = if answer.body.iter().all(u8::is_ascii_whitespace) { b"null" } else { &answer.body };
    serde_json::from_slice(body)
        .map_err(|e| Error::Decode(DecodeError::json(answer.status, &e, answer.request_id.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let cases = [
            ("https://vault.example.com", true),
            ("https://localhost:8443/", true),
            ("https://host/prefix", true),
            ("http://vault.example.com", false),
            ("https://user:pw@vault.example.com", false),
            ("https://vault.example.com/?x=1", false),
            ("vault.example.com", false),
        ];
        for (url, ok) in cases {
            assert_eq!(parse_base_url(Some(url)).is_ok(), ok, "{url}");
        }
        assert!(parse_base_url(None).is_err());
    }

    #[test]
    fn urls_keep_the_prefix_and_encode_queries() {
        let client = Client::builder("sk_test_abc").base_url("https://host/vault/").build().unwrap();
        let call = Call::get("/v1/payments".into()).query("status", Some("succeeded")).query("limit", None::<u32>);
        assert_eq!(client.url(&call).as_str(), "https://host/vault/v1/payments?status=succeeded");
        let call = Call::get("/v1/events".into()).query("type", Some("a&b=c"));
        assert_eq!(client.url(&call).as_str(), "https://host/vault/v1/events?type=a%26b%3Dc");
    }

    #[test]
    fn ids_stay_in_their_segment() {
        for (id, ok) in [
            ("pay_123", true),
            ("we_a-b", true),
            ("", false),
            ("../keys", false),
            ("a/b", false),
            ("a?b", false),
            ("a%2F", false),
        ] {
            assert_eq!(path_id(id).is_ok(), ok, "{id}");
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let client = Client::builder("sk_live_TopSecret123").base_url("https://h").build().unwrap();
        let shown = format!("{client:?}");
        assert!(shown.contains("sk_live_****") && !shown.contains("TopSecret"), "{shown}");
        let builder = Client::builder("sk_live_TopSecret123");
        assert!(!format!("{builder:?}").contains("TopSecret"));
    }

    #[test]
    fn empty_bodies_decode_as_unit() {
        let answer = Answer { status: 202, body: Zeroizing::new(Vec::new()), request_id: None, retry_after: None };
        decode::<()>(&answer).unwrap();
        let answer = Answer {
            status: 202,
            body: Zeroizing::new(b"{\"ok\":true}".to_vec()),
            request_id: None,
            retry_after: None,
        };
        decode::<serde::de::IgnoredAny>(&answer).unwrap();
    }
}
