//! `/v1/webhook_endpoints…` (admin keys) and the delivery worker.
//!
//! - URLs are `https://`; test mode also accepts `http://127.0.0.1`, `http://[::1]` and
//!   `http://localhost` (development). Live mode refuses loopback, private, link-local,
//!   unspecified and metadata addresses, both in the URL and after DNS resolution at every
//!   delivery (the live client's resolver refuses them, so a name cannot be re-pointed
//!   between the check and the connection). Certificates are checked against the public web
//!   PKI; test mode may also trust development roots (`--webhook-test-ca`), live mode never.
//! - The signing secret (`whsec_…`, [`webhook_signature::Secret`]) is shown once, stored
//!   encrypted with the merchant's data key. Rotation keeps the previous secret signing for an
//!   overlap period: `webhook-signature` then carries one `v1,` entry per secret.
//! - The worker (a background task on every instance) claims due deliveries with a lease
//!   ([`crate::store::Store::claim_deliveries`]), POSTs the event's exact bytes with a 10 s
//!   timeout, records every attempt and retries with exponential backoff and jitter for up to
//!   3 days. An endpoint whose deliveries have all failed for 3 days is disabled, with a
//!   `webhook_endpoint.disabled` event and an audit event. A worker killed mid-delivery
//!   leaves a lease that expires; another instance then delivers (at least once).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use webhook_signature::Secret;

use super::error::ApiError;
use super::payments::{EVENT_TYPES, body_object, new_event};
use super::{principal, read_body, require_json};
use crate::crypto::{Binding, random_base62, random_fill};
use crate::keys::{Mode, Permission};
use crate::state::{AppState, RequestCtx};
use crate::store::{AttemptRecord, DeliveryJob, DeliveryNext, WebhookEndpointRecord, WebhookSecretRecord};

/// Retries stop this long after the event (and an endpoint failing this long is disabled).
pub const RETRY_WINDOW_SECS: i64 = 3 * 24 * 3600;
/// Longest delay between two attempts.
pub const MAX_BACKOFF_SECS: u64 = 6 * 3600;
/// Most bytes of a receiver's answer kept with an attempt.
pub const MAX_RECORDED_BODY: usize = 1024;
/// Longest URL accepted.
pub const MAX_URL: usize = 2048;
/// Longest rotation overlap (7 days).
pub const MAX_OVERLAP_SECS: i64 = 7 * 24 * 3600;

fn invalid(param: &'static str) -> ApiError {
    ApiError::invalid("parameter_invalid", "A parameter has an invalid value.").param(param)
}

/// Whether an address may receive live-mode deliveries: not loopback, private, link-local,
/// unspecified, shared (CGNAT), multicast, documentation or a cloud metadata address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments().first().copied().unwrap_or(0);
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments().get(1).copied() == Some(0xdb8)
                || first == 0x0064)
        }
    }
}

/// Why a URL was refused.
fn url_error(code: &'static str, message: &'static str) -> ApiError {
    ApiError::invalid(code, message).param("url")
}

/// Parses and checks an endpoint URL for `mode`.
pub fn check_url(text: &str, mode: Mode) -> Result<reqwest::Url, ApiError> {
    if text.len() > MAX_URL {
        return Err(url_error("url_invalid", "The URL is not valid."));
    }
    let url = reqwest::Url::parse(text).map_err(|_| url_error("url_invalid", "The URL is not valid."))?;
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(url_error("url_invalid", "Webhook URLs carry no credentials or fragment."));
    }
    let host = url.host().ok_or_else(|| url_error("url_invalid", "The URL has no host."))?;
    // Card numbers: the URL rule over path and query, the free-text rule over a host name (an
    // IP address and its port, `203.0.113.10:8443`, are 13 digits but no card number).
    let in_host = matches!(&host, url::Host::Domain(d) if crate::text::looks_like_card_number(d));
    if in_host || crate::text::url_has_card_number(&url[url::Position::BeforePath..]) {
        return Err(ApiError::card_number_in_text("url"));
    }
    let loopback = match &host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    match (url.scheme(), mode) {
        ("https", _) => {}
        ("http", Mode::Test) if loopback => {}
        _ => {
            return Err(url_error(
                "url_not_https",
                "Webhook URLs must be https:// (test mode also allows http://127.0.0.1 and http://localhost).",
            ));
        }
    }
    if mode == Mode::Live {
        let refused = match &host {
            url::Host::Domain(d) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost") || d == "metadata.google.internal"
            }
            url::Host::Ipv4(ip) => !is_public(IpAddr::V4(*ip)),
            url::Host::Ipv6(ip) => !is_public(IpAddr::V6(*ip)),
        };
        if refused {
            return Err(url_error(
                "url_address_refused",
                "Live webhook URLs may not point at loopback, private, link-local or metadata addresses.",
            ));
        }
    }
    Ok(url)
}

fn events_of(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let Some(Value::Array(items)) = v else {
        return Err(ApiError::invalid("parameter_missing", "A required parameter is missing.").param("enabled_events"));
    };
    if items.is_empty() || items.len() > EVENT_TYPES.len() {
        return Err(invalid("enabled_events"));
    }
    let mut out = Vec::new();
    for item in items {
        let Value::String(s) = item else { return Err(invalid("enabled_events")) };
        if s != "*" && !EVENT_TYPES.contains(&s.as_str()) {
            return Err(ApiError::invalid("event_type_unknown", "Unknown event type.").param("enabled_events"));
        }
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    Ok(out)
}

/// The public endpoint object (never the secret).
pub fn endpoint_json(w: &WebhookEndpointRecord) -> Value {
    json!({
        "id": w.id,
        "object": "webhook_endpoint",
        "url": w.url,
        "enabled_events": w.enabled_events,
        "status": w.status,
        "description": w.description,
        "livemode": w.mode == Mode::Live,
        "created": w.created,
    })
}

fn respond(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// A fresh secret, and its ciphertext under the merchant's current data key.
fn new_secret(
    state: &AppState,
    endpoint: &str,
    merchant: &str,
    mode: Mode,
    version: u32,
    now: i64,
) -> Result<(Secret, WebhookSecretRecord), ApiError> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    random_fill(bytes.as_mut())?;
    let secret = Secret::from_random_bytes(bytes.as_ref()).map_err(|_| ApiError::internal())?;
    let key = state.keyring.current(merchant, mode)?;
    let binding = Binding { token_id: endpoint, merchant, mode: mode.as_str(), field: "whsec" };
    let secret_ct = key.seal(secret.expose().as_bytes(), &binding)?;
    Ok((
        secret,
        WebhookSecretRecord { endpoint_id: endpoint.to_owned(), version, secret_ct, created: now, expires_at: None },
    ))
}

/// `POST /v1/webhook_endpoints`.
pub async fn create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ManageWebhooks).await?;
    require_json(&headers)?;
    let body = read_body(&state, &headers, body).await?;
    let map = body_object(body.expose(), &["url", "enabled_events", "description"])?;
    let Some(Value::String(url)) = map.get("url") else {
        return Err(ApiError::invalid("parameter_missing", "A required parameter is missing.").param("url"));
    };
    let description = match map.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(d.as_str()),
        Some(_) => return Err(invalid("description")),
    };
    let mut audit = state.event("webhook_endpoint.created", "success", &ctx, Some(&p.key));
    let (endpoint, secret) =
        create_endpoint(&state, &p.key.merchant_id, p.key.mode, url, map.get("enabled_events"), description, |id| {
            audit.detail = json!({ "endpoint": id });
            audit
        })
        .await?;
    let mut out = endpoint_json(&endpoint);
    if let Value::Object(o) = &mut out {
        o.insert("secret".into(), Value::String(secret.expose().to_owned()));
    }
    Ok(respond(StatusCode::CREATED, &out))
}

/// Validates and stores a new endpoint of `merchant` in `mode` with its first secret (returned,
/// to be shown once) and the audit event `audit(endpoint id)`. Shared by the API and Dev Space.
///
/// # Errors
/// The API error of the first invalid field, or a storage error.
pub async fn create_endpoint(
    state: &AppState,
    merchant: &str,
    mode: Mode,
    url: &str,
    enabled_events: Option<&Value>,
    description: Option<&str>,
    audit: impl FnOnce(&str) -> crate::store::AuditEvent,
) -> Result<(WebhookEndpointRecord, Secret), ApiError> {
    let url = check_url(url, mode)?;
    let enabled_events = events_of(enabled_events)?;
    if let Some(d) = description {
        if d.chars().count() > 500 || d.chars().any(char::is_control) {
            return Err(invalid("description"));
        }
        if crate::text::looks_like_card_number(d) {
            return Err(ApiError::card_number_in_text("description"));
        }
    }
    let now = state.now();
    let id = format!("we_{}", random_base62(24)?);
    let (secret, secret_record) = new_secret(state, &id, merchant, mode, 1, now)?;
    let endpoint = WebhookEndpointRecord {
        id: id.clone(),
        merchant_id: merchant.to_owned(),
        mode,
        url: url.to_string(),
        enabled_events,
        status: "enabled".into(),
        description: description.map(str::to_owned),
        created: now,
        failing_since: None,
    };
    let audit = audit(&id);
    state.log_audit(&audit);
    state.store.insert_webhook_endpoint(endpoint.clone(), secret_record, audit).await?;
    Ok((endpoint, secret))
}

fn valid_endpoint_id(id: &str) -> bool {
    id.strip_prefix("we_").is_some_and(|r| r.len() == 24 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `GET /v1/webhook_endpoints`.
pub async fn list(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ManageWebhooks).await?;
    let rows = state.store.list_webhook_endpoints(&p.key.merchant_id, p.key.mode).await?;
    let data: Vec<Value> = rows.iter().map(endpoint_json).collect();
    Ok(respond(StatusCode::OK, &json!({ "object": "list", "data": data, "has_more": false, "next_cursor": null })))
}

/// `GET /v1/webhook_endpoints/{id}`.
pub async fn retrieve(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ManageWebhooks).await?;
    if !valid_endpoint_id(&id) {
        return Err(ApiError::not_found());
    }
    let w =
        state.store.get_webhook_endpoint(&id, &p.key.merchant_id, p.key.mode).await?.ok_or_else(ApiError::not_found)?;
    Ok(respond(StatusCode::OK, &endpoint_json(&w)))
}

/// `DELETE /v1/webhook_endpoints/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ManageWebhooks).await?;
    if !valid_endpoint_id(&id) {
        return Err(ApiError::not_found());
    }
    let mut audit = state.event("webhook_endpoint.deleted", "success", &ctx, Some(&p.key));
    audit.detail = json!({ "endpoint": id });
    if !state.store.delete_webhook_endpoint(&id, &p.key.merchant_id, p.key.mode, audit.clone()).await? {
        return Err(ApiError::not_found());
    }
    state.log_audit(&audit);
    Ok(respond(StatusCode::OK, &json!({ "id": id, "object": "webhook_endpoint", "deleted": true })))
}

/// `POST /v1/webhook_endpoints/{id}/rotate_secret`.
pub async fn rotate_secret(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ManageWebhooks).await?;
    require_json(&headers)?;
    let body = read_body(&state, &headers, body).await?;
    let map = body_object(body.expose(), &["overlap_seconds"])?;
    let overlap = match map.get("overlap_seconds") {
        None | Some(Value::Null) => 86_400,
        Some(v) => {
            v.as_i64().filter(|s| (0..=MAX_OVERLAP_SECS).contains(s)).ok_or_else(|| invalid("overlap_seconds"))?
        }
    };
    let mut audit = state.event("webhook_endpoint.secret_rotated", "success", &ctx, Some(&p.key));
    audit.detail = json!({ "endpoint": id, "overlap_seconds": overlap });
    let (w, secret) = rotate_endpoint_secret(&state, &p.key.merchant_id, p.key.mode, &id, overlap, audit).await?;
    let mut out = endpoint_json(&w);
    if let Value::Object(o) = &mut out {
        o.insert("secret".into(), Value::String(secret.expose().to_owned()));
    }
    Ok(respond(StatusCode::OK, &out))
}

/// Gives endpoint `id` of `merchant` in `mode` a new signing secret (returned, to be shown
/// once), the current ones signing too for `overlap` seconds, with the `audit` event. Shared by
/// the API and Dev Space.
///
/// # Errors
/// Not found (no such endpoint of this merchant and mode), a concurrent rotation, or storage.
pub async fn rotate_endpoint_secret(
    state: &AppState,
    merchant: &str,
    mode: Mode,
    id: &str,
    overlap: i64,
    audit: crate::store::AuditEvent,
) -> Result<(WebhookEndpointRecord, Secret), ApiError> {
    if !valid_endpoint_id(id) {
        return Err(ApiError::not_found());
    }
    let w = state.store.get_webhook_endpoint(id, merchant, mode).await?.ok_or_else(ApiError::not_found)?;
    let now = state.now();
    let current = state.store.webhook_secrets(id, now).await?;
    let version = current.iter().map(|s| s.version).max().unwrap_or(0) + 1;
    let (secret, record) = new_secret(state, id, &w.merchant_id, w.mode, version, now)?;
    state.log_audit(&audit);
    state.store.rotate_webhook_secret(record, now + overlap, audit).await.map_err(|e| match e {
        crate::store::StoreError::Conflict => ApiError::idempotency_in_use(),
        e => e.into(),
    })?;
    Ok((w, secret))
}

/// Resolves names for live deliveries, refusing any answer holding a non-public address (so a
/// name checked once cannot be re-pointed at an internal address for the connection).
#[derive(Debug)]
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() || addrs.iter().any(|a| !is_public(a.ip())) {
                return Err(Box::new(std::io::Error::new(std::io::ErrorKind::PermissionDenied, "refused address"))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The delivery client of `mode`: live mode resolves only public addresses and trusts only the
/// public web PKI; test mode also trusts the configured development roots, if any.
fn client(state: &AppState, mode: Mode) -> Option<&reqwest::Client> {
    static TEST: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    static LIVE: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    let build = |live: bool, roots: &[Vec<u8>]| {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Altafinex-Webhooks/1")
            // As many idle connections as deliveries in flight: with fewer, a busy endpoint's
            // deliveries would each open (and over https, handshake) a new connection.
            .pool_max_idle_per_host(IN_FLIGHT);
        if live {
            b = b.dns_resolver(Arc::new(PublicOnly)).https_only(true);
        }
        for der in roots {
            match reqwest::Certificate::from_der(der) {
                Ok(cert) => b = b.add_root_certificate(cert),
                Err(e) => tracing::error!(error = %e, "a configured webhook test root is not a certificate"),
            }
        }
        b.build().map_err(|e| tracing::error!(error = %e, "cannot build the webhook client")).ok()
    };
    match mode {
        Mode::Test if !state.config.webhook_test_roots.is_empty() => {
            state.webhook_test_client.get_or_init(|| build(false, &state.config.webhook_test_roots)).as_ref()
        }
        Mode::Test => TEST.get_or_init(|| build(false, &[])).as_ref(),
        Mode::Live => LIVE.get_or_init(|| build(true, &[])).as_ref(),
    }
}

/// Delay before attempt `attempt + 1`: base × 2^attempt, capped, with jitter (50–100 %).
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let full = base.saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX));
    let capped = full.min(Duration::from_secs(MAX_BACKOFF_SECS));
    let mut r = [0u8; 2];
    let _ = random_fill(&mut r);
    let jitter = 0.5 + f64::from(u16::from_be_bytes(r)) / f64::from(u16::MAX) / 2.0;
    capped.mul_f64(jitter)
}

/// Deliveries claimed per store round trip.
const CLAIM_BATCH: usize = 64;

/// Deliveries in flight at once on one instance (a slow endpoint holds one slot, not the pass).
const IN_FLIGHT: usize = 256;

/// Most attempts recorded in one store transaction.
const RECORD_BATCH: usize = 256;

/// How long an endpoint's decrypted signing secrets are reused by one pass of the worker (one
/// store read per endpoint and second instead of one per delivery). A rotation reaches
/// deliveries within this time: with an overlap of at least this long no receiver notices;
/// with a shorter one, an attempt made in that second may carry only the previous secret's
/// signature, fail at a receiver that already dropped it, and be retried with the new one.
const SECRETS_TTL: Duration = Duration::from_secs(1);

/// Decrypted signing secrets per endpoint, for one pass of the worker.
type SecretsCache = std::sync::Mutex<std::collections::HashMap<String, (Instant, Arc<Vec<Secret>>)>>;

/// A finished attempt on its way to the store, holding its in-flight slot until recorded.
struct Finished {
    job: DeliveryJob,
    attempt: AttemptRecord,
    next: DeliveryNext,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// One pass of the worker: claims due deliveries and sends them concurrently, claiming more as
/// slots free up, until a claim comes back short (nothing more is due). Under load a pass keeps
/// going, so delivery keeps pace with the events being written instead of waiting for the next
/// poll; a slow endpoint occupies one slot, never the whole pass. Finished attempts are
/// recorded in batches (one transaction for all the attempts that finished meanwhile), so the
/// store's cost per delivery is a share of a commit, not a commit.
pub async fn deliver_due(state: &AppState) {
    let timeout = i64::try_from(state.config.webhook_timeout.as_secs()).unwrap_or(10);
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let secrets: Arc<SecretsCache> = Arc::default();
    let (finished, inbox) = tokio::sync::mpsc::unbounded_channel();
    let recorder = tokio::spawn(record(state.clone(), inbox));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        // Waits for a free slot (slots come back as attempts are recorded).
        let Ok(first) = Arc::clone(&slots).acquire_owned().await else { break };
        let free = (slots.available_permits() + 1).min(CLAIM_BATCH);
        let now = state.now();
        // Longer than a delivery can take (timeout for the answer, then for its body).
        let lease_until = now + timeout * 2 + 5;
        let jobs = match state
            .store
            .claim_deliveries(&state.instance_id, now, lease_until, u32::try_from(free).unwrap_or(1))
            .await
        {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim webhook deliveries");
                break;
            }
        };
        let more = jobs.len() == free;
        let mut first = Some(first);
        for job in jobs {
            let slot = match first.take() {
                Some(slot) => slot,
                None => match Arc::clone(&slots).acquire_owned().await {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
            };
            let (state, secrets, finished) = (state.clone(), Arc::clone(&secrets), finished.clone());
            tasks.spawn(async move {
                let (attempt, next) = deliver(&state, &secrets, &job).await;
                let _ = finished.send(Finished { job, attempt, next, _slot: slot });
            });
        }
        if !more {
            break;
        }
    }
    while tasks.join_next().await.is_some() {}
    drop(finished);
    let _ = recorder.await;
}

/// Records finished attempts as they come, in batches; disables an endpoint failing for 3 days.
async fn record(state: AppState, mut inbox: tokio::sync::mpsc::UnboundedReceiver<Finished>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while inbox.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let attempts = batch.iter().map(|f: &Finished| (f.attempt.clone(), f.next)).collect();
        match state.store.record_attempts(attempts, &state.instance_id).await {
            Ok(answers) => {
                for (f, answer) in batch.iter().zip(answers) {
                    if let Some(Some(since)) = answer {
                        if state.now() - since >= RETRY_WINDOW_SECS {
                            disable(&state, &f.job).await;
                        }
                    }
                }
            }
            // The leases stay; the deliveries are due again when they expire (at least once).
            Err(e) => tracing::warn!(error = %e, attempts = batch.len(), "could not record webhook attempts"),
        }
        batch.clear();
    }
}

/// What one attempt came to.
struct Outcome {
    status_code: Option<u16>,
    error_class: Option<&'static str>,
    body: String,
}

/// Makes one attempt; returns its record and what follows it.
async fn deliver(state: &AppState, secrets: &SecretsCache, job: &DeliveryJob) -> (AttemptRecord, DeliveryNext) {
    let started_at = state.now();
    let started = Instant::now();
    let outcome = match send(state, secrets, job).await {
        Ok(o) => o,
        Err(class) => Outcome { status_code: None, error_class: Some(class), body: String::new() },
    };
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let delivered = outcome.error_class.is_none();
    let next = if delivered {
        DeliveryNext::Delivered
    } else if state.now() - job.created >= RETRY_WINDOW_SECS {
        DeliveryNext::GiveUp
    } else {
        let wait = backoff(state.config.webhook_backoff_base, job.attempts);
        DeliveryNext::RetryAt(state.now() + i64::try_from(wait.as_secs()).unwrap_or(i64::MAX / 2))
    };
    tracing::debug!(
        event = %job.event_id,
        endpoint = %job.endpoint_id,
        status = outcome.status_code,
        error_class = outcome.error_class.unwrap_or("-"),
        latency_ms,
        "webhook delivery attempt"
    );
    let attempt = AttemptRecord {
        delivery_id: job.id,
        event_id: job.event_id.clone(),
        endpoint_id: job.endpoint_id.clone(),
        status_code: outcome.status_code,
        latency_ms,
        error_class: outcome.error_class.map(str::to_owned),
        response_body: outcome.body,
        created: started_at,
    };
    (attempt, next)
}

/// Disables an endpoint that has failed for 3 days: an event (to the merchant's other
/// endpoints) and an audit event, in one transaction.
async fn disable(state: &AppState, job: &DeliveryJob) {
    let now = state.now();
    let object = match state.store.get_webhook_endpoint(&job.endpoint_id, &job.merchant_id, job.mode).await {
        Ok(Some(mut w)) => {
            w.status = "disabled".into();
            endpoint_json(&w)
        }
        _ => return,
    };
    let Ok(event) = new_event(&job.merchant_id, job.mode, "webhook_endpoint.disabled", object, now) else { return };
    let audit = crate::store::AuditEvent {
        id: 0,
        ts: now,
        event: "webhook_endpoint.disabled".into(),
        outcome: "success".into(),
        merchant_id: Some(job.merchant_id.clone()),
        mode: Some(job.mode),
        key_id: None,
        ip: None,
        request_id: None,
        detail: json!({ "endpoint": job.endpoint_id, "reason": "failing_for_3_days" }),
    };
    state.log_audit(&audit);
    if let Err(e) = state.store.disable_webhook_endpoint(&job.endpoint_id, event, audit).await {
        tracing::warn!(error = %e, "could not disable a failing webhook endpoint");
    }
}

/// The endpoint's signing secrets, decrypted, from the pass's cache when fresh.
async fn secrets_of(
    state: &AppState,
    cache: &SecretsCache,
    job: &DeliveryJob,
) -> Result<Arc<Vec<Secret>>, &'static str> {
    if let Ok(cached) = cache.lock() {
        if let Some((at, secrets)) = cached.get(&job.endpoint_id) {
            if at.elapsed() < SECRETS_TTL {
                return Ok(Arc::clone(secrets));
            }
        }
    }
    let secrets = Arc::new(load_secrets(state, job).await?);
    if let Ok(mut cached) = cache.lock() {
        cached.insert(job.endpoint_id.clone(), (Instant::now(), Arc::clone(&secrets)));
    }
    Ok(secrets)
}

async fn load_secrets(state: &AppState, job: &DeliveryJob) -> Result<Vec<Secret>, &'static str> {
    let records = state.store.webhook_secrets(&job.endpoint_id, state.now()).await.map_err(|_| "internal")?;
    let mut out = Vec::new();
    for r in records {
        let version = crate::crypto::ciphertext_version(&r.secret_ct).map_err(|_| "internal")?;
        let key = state.data_key(&job.merchant_id, job.mode, version).await.map_err(|_| "internal")?;
        let binding =
            Binding { token_id: &job.endpoint_id, merchant: &job.merchant_id, mode: job.mode.as_str(), field: "whsec" };
        let plain = key.open(&r.secret_ct, &binding).map_err(|_| "internal")?;
        let text = std::str::from_utf8(plain.expose()).map_err(|_| "internal")?;
        out.push(Secret::parse(text).map_err(|_| "internal")?);
    }
    Ok(out)
}

async fn send(state: &AppState, cache: &SecretsCache, job: &DeliveryJob) -> Result<Outcome, &'static str> {
    // Checked again at every delivery: the rules may have changed since the endpoint was made.
    let url = check_url(&job.url, job.mode).map_err(|_| "refused_address")?;
    if job.mode == Mode::Live {
        if let Some(host) = url.host_str() {
            let port = url.port_or_known_default().unwrap_or(443);
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.trim_matches(['[', ']']), port)).await.map_err(|_| "dns")?.collect();
            if addrs.is_empty() || addrs.iter().any(|a| !is_public(a.ip())) {
                return Err("refused_address");
            }
        }
    }
    let secrets = secrets_of(state, cache, job).await?;
    let refs: Vec<&Secret> = secrets.iter().collect();
    let signed =
        webhook_signature::sign(&refs, &job.event_id, state.now(), job.body.as_bytes()).map_err(|_| "internal")?;
    let client = client(state, job.mode).ok_or("internal")?;
    let mut request = client
        .post(url)
        .timeout(state.config.webhook_timeout)
        .header(header::CONTENT_TYPE, "application/json")
        .body(job.body.clone());
    for (name, value) in signed.pairs() {
        request = request.header(name, value);
    }
    let mut response = request.send().await.map_err(|e| classify(&e))?;
    let status = response.status();
    let mut body = Vec::new();
    let read = tokio::time::timeout(state.config.webhook_timeout, async {
        while body.len() < MAX_RECORDED_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
    })
    .await;
    let _ = read;
    body.truncate(MAX_RECORDED_BODY);
    let body = String::from_utf8_lossy(&body).into_owned();
    Ok(Outcome {
        status_code: Some(status.as_u16()),
        error_class: (!status.is_success()).then_some("http_status"),
        body,
    })
}

fn classify(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_redirect() {
        "redirect"
    } else {
        "network"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_urls_refuse_internal_addresses() {
        for url in [
            "https://127.0.0.1/h",
            "https://10.0.0.5/h",
            "https://172.16.0.1/h",
            "https://192.168.1.1/h",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/h",
            "https://[fe80::1]/h",
            "https://[fd00::1]/h",
            "https://[::ffff:10.0.0.1]/h",
            "https://localhost/h",
            "https://metadata.google.internal/x",
            "https://100.64.0.1/h",
            "https://0.0.0.0/h",
        ] {
            assert!(check_url(url, Mode::Live).is_err(), "{url}");
        }
        assert!(check_url("https://hooks.example.com/h", Mode::Live).is_ok());
        assert!(check_url("https://8.8.8.8/h", Mode::Live).is_ok());
    }

    #[test]
    fn card_numbers_are_refused_in_host_names_paths_and_queries_but_not_in_addresses() {
        for url in [
            "https://4242424242424242.hooks.example/h",
            "https://5555-5555-5555-4444.example/h",
            "https://hooks.example/h/4242424242424242",
            "https://hooks.example/h?n=4242%204242%204242%204242",
            "https://hooks.example/h?a=4242&b=4242&c=4242&d=4242",
        ] {
            let e = check_url(url, Mode::Test).unwrap_err();
            assert_eq!((e.code, e.param), ("card_number_in_text", Some("url")), "{url}");
        }
        for url in
            ["https://93.184.215.14:8443/hook", "https://8.8.8.8:4242/h/2026-11-27", "https://[2001:4860::8888]:8443/h"]
        {
            assert!(check_url(url, Mode::Live).is_ok(), "{url}");
        }
    }

    #[test]
    fn plain_http_only_to_loopback_in_test_mode() {
        assert!(check_url("http://127.0.0.1:9000/h", Mode::Test).is_ok());
        assert!(check_url("http://localhost:9000/h", Mode::Test).is_ok());
        assert!(check_url("http://[::1]:9000/h", Mode::Test).is_ok());
        assert!(check_url("http://hooks.example.com/h", Mode::Test).is_err());
        assert!(check_url("http://127.0.0.1:9000/h", Mode::Live).is_err());
        assert!(check_url("https://user:pw@hooks.example.com/h", Mode::Test).is_err());
        assert!(check_url("ftp://hooks.example.com/h", Mode::Test).is_err());
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_secs(10);
        for attempt in 0..5 {
            let d = backoff(base, attempt);
            let full = base * 2u32.pow(attempt);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
        assert!(backoff(base, 30) <= Duration::from_secs(MAX_BACKOFF_SECS));
        assert_eq!(backoff(Duration::ZERO, 3), Duration::ZERO);
    }
}
