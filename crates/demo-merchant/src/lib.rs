//! Demo merchant checkout.
//!
//! A deliberately small merchant web server that lives on its own origin (for example
//! `http://127.0.0.1:8080`) while the card frame lives on the vault's origin. It shows how a
//! merchant integrates:
//!
//! - `GET /` serves `static/demo/index.html` with the vault origin and the publishable key filled
//!   in, under a strict Content-Security-Policy without `'unsafe-inline'`
//!   (`script-src 'self' <vault>; frame-src <vault>; style-src 'self'`).
//! - `GET /<file>` serves the page's external scripts and styles from the same folder.
//! - `GET /pkg/<file>.js` serves the npm package's files (`--package-dir`) for `react.html`, the
//!   React checkout built with `@altafinex/js` without a bundler.
//! - `POST /api/server-view` takes `{ "token": "tok_..." }` from the page and reads that token back
//!   from the vault **server side** with the merchant's secret key (`GET /v1/tokens/{token}`),
//!   trusting the vault's development certificate. The browser never sees the secret key.
//!
//! - Payments (module [`payments`]): `POST /api/pay` charges the token with the merchant SDK and
//!   a payments-role key, `POST /api/refund` refunds it, `POST /webhooks` receives and verifies
//!   the vault's signed webhooks, `GET /api/webhooks` lists them for the page.
//!
//! The loader `<script>` is the versioned, immutable `/v1/loader.<version>.js` with its SRI
//! `integrity` (sha384), as `docs/loader.md` advises, so the page runs exactly the loader the
//! merchant pinned and the pin survives the vault's next deploy: `--loader-url` and
//! `--loader-integrity` when given (production practice: copy both from the published
//! manifest), otherwise read once from the vault's `/v1/loader-manifest.json` (development
//! convenience). Never an SRI hash on the evergreen `/v1/loader.js`, whose bytes change.
//!
//! Invariant: the secret key only ever leaves this process in the `Authorization` header of a
//! request to the configured vault URL.

pub mod payments;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// A secret string whose `Debug` never shows the value.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Everything the demo merchant needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// Origin of the vault, e.g. `https://localhost:8443` (no path).
    pub vault_origin: String,
    /// The merchant's publishable key (`pk_...`): given to the browser.
    pub publishable_key: String,
    /// The merchant's secret key (`sk_...`): used only server side.
    pub secret_key: Secret,
    /// Folder holding `index.html`, `demo.js`, `demo.css`, ...
    pub static_dir: PathBuf,
    /// The loader to pin; `None` reads it from the vault's loader manifest.
    pub loader: Option<LoaderPin>,
    /// Folder served under `/pkg/` (the npm package's `dist/` files and React's UMD builds, for
    /// the React checkout `react.html`, which uses the package without a bundler); `None`: none.
    pub package_dir: Option<PathBuf>,
}

/// A pinned loader: its versioned path and SRI value, as the vault's manifest publishes them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LoaderPin {
    /// `/v1/loader.<version>.js` (the manifest's `url`).
    #[serde(rename = "url")]
    pub path: String,
    /// `sha384-…`.
    pub integrity: String,
}

impl LoaderPin {
    /// A versioned loader path (`/v1/loader.` + 16 letters `a`–`p` + `.js`) and an SRI
    /// `sha384-` value; `None` otherwise (for example the evergreen `/v1/loader.js`).
    pub fn new(path: String, integrity: String) -> Option<LoaderPin> {
        let version = path.strip_prefix("/v1/loader.")?.strip_suffix(".js")?;
        let versioned = version.len() == 16 && version.bytes().all(|b| matches!(b, b'a'..=b'p'));
        let sri = integrity.strip_prefix("sha384-").is_some_and(|h| !h.is_empty() && h.len() <= 64);
        (versioned && sri).then_some(LoaderPin { path, integrity })
    }
}

/// Errors building the application state.
#[derive(Debug)]
#[non_exhaustive]
pub enum SetupError {
    /// The vault URL is not an absolute `http(s)` URL.
    VaultUrl(String),
    /// The vault CA certificate could not be read or parsed.
    VaultCert(String),
    /// The HTTP client could not be built.
    Client(String),
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::VaultUrl(why) => write!(f, "invalid vault URL: {why}"),
            Self::VaultCert(why) => write!(f, "cannot use the vault certificate: {why}"),
            Self::Client(why) => write!(f, "cannot build the HTTP client: {why}"),
        }
    }
}

impl std::error::Error for SetupError {}

/// Turns `https://localhost:8443/anything` into `https://localhost:8443`.
///
/// # Errors
/// When the URL does not parse or is not `http`/`https`.
pub fn origin_of(url: &str) -> Result<String, SetupError> {
    let parsed = url::Url::parse(url).map_err(|e| SetupError::VaultUrl(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(SetupError::VaultUrl(format!("scheme {} is not http or https", parsed.scheme())));
    }
    Ok(parsed.origin().ascii_serialization())
}

/// Builds the client used to talk to the vault. `ca_pem` is the vault's development certificate
/// (or the CA that signed it); it is added to the trusted roots, nothing else is relaxed.
///
/// # Errors
/// When the PEM does not parse or the client cannot be built.
pub fn vault_client(ca_pem: Option<&[u8]>) -> Result<reqwest::Client, SetupError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| SetupError::VaultCert(e.to_string()))?;
        if certs.is_empty() {
            return Err(SetupError::VaultCert("no certificate in the PEM file".into()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| SetupError::Client(e.to_string()))
}

struct AppState {
    config: Config,
    client: reqwest::Client,
    /// The loader to pin once known (given, or read from the vault's manifest).
    loader: tokio::sync::OnceCell<LoaderPin>,
}

/// `sha384-<base64>` of `bytes`, the SRI form.
pub fn sri_sha384(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let digest = ring::digest::digest(&ring::digest::SHA384, bytes);
    format!("sha384-{}", base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
}

impl AppState {
    /// The loader's versioned path and SRI value; `None` when none is given and the vault's
    /// manifest cannot be read (the page then says so instead of loading an unchecked script).
    async fn loader(&self) -> Option<LoaderPin> {
        if let Some(pinned) = &self.config.loader {
            return Some(pinned.clone());
        }
        let url = format!("{}/v1/loader-manifest.json", self.config.vault_origin);
        self.loader
            .get_or_try_init(|| async {
                let res = self.client.get(&url).send().await.map_err(|e| e.to_string())?;
                if !res.status().is_success() {
                    return Err(format!("status {}", res.status()));
                }
                let manifest: LoaderPin = res.json().await.map_err(|e| e.to_string())?;
                LoaderPin::new(manifest.path, manifest.integrity).ok_or_else(|| "not a versioned loader".to_owned())
            })
            .await
            .map_err(|e| tracing::warn!(error = %e, %url, "cannot read the loader manifest"))
            .ok()
            .cloned()
    }
}

/// The router; tests call it without a socket. `payments` is `None` when the demo runs without
/// a payments key: the payment routes then answer `503 payments_not_configured`.
pub fn app(config: Config, client: reqwest::Client, payments: Option<Arc<payments::Payments>>) -> Router {
    let state = Arc::new(AppState { config, client, loader: tokio::sync::OnceCell::new() });
    let payment_routes = Router::new()
        .route("/api/pay", post(payments::pay))
        .route("/api/refund", post(payments::refund))
        .route("/api/webhooks", get(payments::list_webhooks))
        .route("/webhooks", post(payments::receive_webhook))
        .with_state(payments);
    Router::new()
        .route("/", get(index))
        .route("/api/server-view", post(server_view))
        .route("/healthz", get(|| async { "ok" }))
        .route("/{file}", get(static_file))
        .route("/pkg/{file}", get(package_file))
        .with_state(state)
        .merge(payment_routes)
}

/// The merchant page's CSP: no `'unsafe-inline'` anywhere, scripts only from itself and the
/// vault, frames only from the vault. Bench pages additionally frame a plain page from this
/// server's other host name (`localhost` ⇄ `127.0.0.1`).
fn csp(vault_origin: &str, bench: bool) -> String {
    // The benchmark compares the card frame with a bare frame from this server's other host name.
    let (frame_src, ancestors) = if bench {
        (" http://localhost:* http://127.0.0.1:*", "'self' http://localhost:* http://127.0.0.1:*")
    } else {
        ("", "'none'")
    };
    format!(
        "default-src 'self'; script-src 'self' {vault_origin}; frame-src {vault_origin}{frame_src}; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
         frame-ancestors {ancestors}"
    )
}

fn security_headers(headers: &mut HeaderMap, csp_value: &str) {
    if let Ok(v) = HeaderValue::from_str(csp_value) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Minimal HTML attribute escaping for the values we template in.
fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Fills `{{vault_origin}}`, `{{publishable_key}}`, `{{loader_src}}` (the versioned loader URL)
/// and `{{loader_integrity}}` (when unknown, an SRI value that cannot match any file, so the
/// browser refuses the script rather than run it unchecked).
fn render(template: &str, config: &Config, loader: Option<&LoaderPin>) -> String {
    let src = [config.vault_origin.as_str(), loader.map_or("/v1/loader.js", |l| l.path.as_str())].concat();
    template
        .replace("{{vault_origin}}", &escape_html(&config.vault_origin))
        .replace("{{publishable_key}}", &escape_html(&config.publishable_key))
        .replace("{{loader_src}}", &escape_html(&src))
        .replace("{{loader_integrity}}", &escape_html(loader.map_or("sha384-unavailable", |l| &l.integrity)))
}

async fn index(State(state): State<Arc<AppState>>) -> Response {
    serve_html(&state, "index.html").await
}

async fn serve_html(state: &AppState, name: &str) -> Response {
    let path = state.config.static_dir.join(name);
    let Ok(template) = tokio::fs::read_to_string(&path).await else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let loader = if template.contains("{{loader_integrity}}") { state.loader().await } else { None };
    let body = render(&template, &state.config, loader.as_ref());
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    security_headers(response.headers_mut(), &csp(&state.config.vault_origin, name.starts_with("bench")));
    response
}

/// Serves `[a-z0-9-]+.(html|js|css|svg)` from the static folder; anything else is 404, so there is
/// no path traversal to worry about.
async fn static_file(State(state): State<Arc<AppState>>, Path(file): Path<String>) -> Response {
    let Some((stem, ext)) = file.rsplit_once('.') else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let stem_ok = !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let content_type = match ext {
        "html" => return serve_html(&state, &file).await,
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    if !stem_ok {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    match tokio::fs::read(state.config.static_dir.join(&file)).await {
        Ok(bytes) => {
            let mut response = ([(header::CONTENT_TYPE, content_type)], bytes).into_response();
            security_headers(response.headers_mut(), "default-src 'none'");
            response
        }
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// Serves `[a-z0-9.-]+.js` (no leading dot) from the package folder, for `react.html`.
async fn package_file(State(state): State<Arc<AppState>>, Path(file): Path<String>) -> Response {
    let name_ok = file.ends_with(".js")
        && !file.starts_with('.')
        && file.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let Some(dir) = state.config.package_dir.as_ref().filter(|_| name_ok) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    match tokio::fs::read(dir.join(&file)).await {
        Ok(bytes) => {
            let mut response = ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], bytes).into_response();
            security_headers(response.headers_mut(), "default-src 'none'");
            response
        }
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

#[derive(Deserialize)]
struct ServerViewRequest {
    token: String,
}

/// Reads the token back from the vault with the secret key and returns what the merchant's
/// server sees. The vault's answer is passed through with any field that could hold a full card
/// number or security code removed, because this response goes to a browser.
async fn server_view(State(state): State<Arc<AppState>>, Json(req): Json<ServerViewRequest>) -> Response {
    let token = req.token.trim();
    let token_ok = !token.is_empty()
        && token.len() <= 128
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !token_ok {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "invalid_token_format" }))).into_response();
    }
    let url = format!("{}/v1/tokens/{}", state.config.vault_origin, token);
    let sent = state
        .client
        .get(&url)
        .header(header::AUTHORIZATION, format!("Bearer {}", state.config.secret_key.expose()))
        .send()
        .await;
    let upstream = match sent {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "vault request failed");
            return (StatusCode::BAD_GATEWAY, Json(json!({ "error": "vault_unreachable" }))).into_response();
        }
    };
    let status = upstream.status().as_u16();
    let body: Value = upstream.json().await.unwrap_or(Value::Null);
    let body = redact(body);
    Json(json!({ "request": format!("GET /v1/tokens/{token}"), "vaultStatus": status, "vault": body })).into_response()
}

/// Drops fields that could carry a full PAN or CVC before a vault answer is shown in a browser.
fn redact(value: Value) -> Value {
    const SECRET_FIELDS: [&str; 6] = ["number", "pan", "cvc", "cvv", "csc", "security_code"];
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    if SECRET_FIELDS.contains(&k.to_ascii_lowercase().as_str()) {
                        (k, Value::String("[redacted by demo merchant]".into()))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn test_app() -> (Router, tempfile_dir::Dir) {
        let dir = tempfile_dir::Dir::new();
        std::fs::write(
            dir.path.join("index.html"),
            "<meta content=\"{{publishable_key}}\">{{loader_src}} {{loader_integrity}}",
        )
        .unwrap();
        std::fs::write(dir.path.join("demo.js"), "console.log(1)").unwrap();
        let config = Config {
            vault_origin: "https://localhost:8443".into(),
            publishable_key: "pk_test_\"x".into(),
            secret_key: Secret::new("sk_test_y".into()),
            static_dir: dir.path.clone(),
            loader: LoaderPin::new("/v1/loader.abcdefghijklmnop.js".into(), "sha384-pinned".into()),
            package_dir: Some(dir.path.clone()),
        };
        (app(config, vault_client(None).unwrap(), None), dir)
    }

    /// A throwaway folder without pulling in a crate for it.
    mod tempfile_dir {
        pub struct Dir {
            pub path: std::path::PathBuf,
        }
        impl Dir {
            pub fn new() -> Self {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let path = std::env::temp_dir().join(format!("demo-merchant-test-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&path).unwrap();
                Self { path }
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.path);
            }
        }
    }

    async fn get(app: Router, uri: &str) -> (StatusCode, HeaderMap, String) {
        let res = app.oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn index_is_templated_escaped_and_strict() {
        let (app, _dir) = test_app();
        let (status, headers, body) = get(app, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            "<meta content=\"pk_test_&quot;x\">https://localhost:8443/v1/loader.abcdefghijklmnop.js sha384-pinned"
        );
        let csp = headers.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
        assert!(csp.contains("script-src 'self' https://localhost:8443;"), "{csp}");
        assert!(csp.contains("frame-src https://localhost:8443;"), "{csp}");
        assert!(csp.contains("style-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }

    #[test]
    fn only_a_versioned_loader_is_pinned() {
        let pin = |path: &str, sri: &str| LoaderPin::new(path.into(), sri.into());
        assert!(pin("/v1/loader.kfbnaodhbmcpgjle.js", "sha384-abc").is_some());
        for (path, sri) in [
            ("/v1/loader.js", "sha384-abc"),
            ("/v1/loader.kfbnaodhbmcpgjlz.js", "sha384-abc"),
            ("/v1/loader.kfbnaodhbmcpgjl.js", "sha384-abc"),
            ("https://evil.example/v1/loader.kfbnaodhbmcpgjle.js", "sha384-abc"),
            ("/v1/loader.kfbnaodhbmcpgjle.js", "sha256-abc"),
            ("/v1/loader.kfbnaodhbmcpgjle.js", "sha384-"),
        ] {
            assert!(pin(path, sri).is_none(), "{path} {sri}");
        }
    }

    #[tokio::test]
    async fn static_files_are_allowlisted() {
        let (app, _dir) = test_app();
        assert_eq!(get(app.clone(), "/demo.js").await.0, StatusCode::OK);
        assert_eq!(get(app.clone(), "/..%2Fetc%2Fpasswd").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(app.clone(), "/Demo.js").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(app.clone(), "/demo.exe").await.0, StatusCode::NOT_FOUND);
        // The package folder (here the same test folder): `.js` names only, no traversal.
        assert_eq!(get(app.clone(), "/pkg/demo.js").await.0, StatusCode::OK);
        assert_eq!(get(app.clone(), "/pkg/index.html").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(app.clone(), "/pkg/..%2Fdemo.js").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(app, "/pkg/.demo.js").await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn server_view_rejects_odd_tokens_before_calling_the_vault() {
        let (app, _dir) = test_app();
        let req = Request::post("/api/server-view")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"token":"../v1/merchants"}"#))
            .unwrap();
        assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn payment_routes_say_when_payments_are_not_configured() {
        let (app, _dir) = test_app();
        let req = Request::post("/api/pay")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"token":"tok_abc"}"#))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("payments_not_configured"));
        let req = Request::post("/webhooks").body(Body::from("{}")).unwrap();
        assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn redact_removes_card_secrets_at_any_depth() {
        let v =
            json!({ "card": { "number": "4242424242424242", "last4": "4242", "CVC": "123" }, "list": [{"pan": "1"}] });
        let s = redact(v).to_string();
        assert!(!s.contains("4242424242424242") && !s.contains("123") && s.contains("\"last4\":\"4242\""), "{s}");
    }

    #[test]
    fn sri_matches_the_openssl_form() {
        // printf abc | openssl dgst -sha384 -binary | openssl base64 -A
        assert_eq!(sri_sha384(b"abc"), "sha384-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn");
    }

    #[test]
    fn origin_strips_paths_and_rejects_other_schemes() {
        assert_eq!(origin_of("https://localhost:8443/x/y").unwrap(), "https://localhost:8443");
        assert!(origin_of("ftp://x").is_err());
        assert!(format!("{:?}", Secret::new("sk_live".into())).find("sk_live").is_none());
    }
}
