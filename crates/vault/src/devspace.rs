//! Dev Space inside the vault: [`VaultBackend`] implements [`devspace::Backend`] over the
//! vault's store, keys, audit log and event outbox, and [`router`] serves the console (on its
//! own listener: `vault serve --devspace-listen`, see ARCHITECTURE.md).
//!
//! The vault's rules hold here as in the API: detokenize-capable keys are never created or
//! widened from Dev Space (invariant 9), IP allowlist entries are never wider than /24 or /48,
//! live keys accept `https://` origins only, and every change is audited with the person
//! (`detail.actor`) and the address it came from.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use devspace::backend::{
    Actor, AlertRecord, AttemptBucket, AuditQuery, AuditRow, Backend, BackendError, BackendFuture, DeviceSeen,
    EndpointView, EventView, KNOWN_DEVICES, KeyView, LinkRecord, NewKeyRequest, PaymentView, RefundView, TokenView,
    UserRecord,
};
use devspace::session::SessionRecord;
use devspace::totp::TotpSecret;
use devspace::{ClientIp, Secret};
use serde_json::{Value, json};

use crate::api::ClientAddr;
use crate::keys::{self, ApiKeyRecord, KeyError, KeyKind, KeySpec, Mode, Permission, Role};
use crate::ratelimit::{Rate, RateLimiter};
use crate::state::AppState;
use crate::store::{AuditEvent, AuditFilter, ListFilter, PaymentRecord, StoreError};

/// Sign-in attempts per account: a burst of 10, then one a minute.
pub const ACCOUNT_RATE: Rate = Rate { per_second: 1.0 / 60.0, burst: 10.0 };
/// Sign-in attempts per client address: a burst of 30, then one every 10 seconds.
pub const ADDRESS_RATE: Rate = Rate { per_second: 0.1, burst: 30.0 };

/// The vault as Dev Space's backend.
pub struct VaultBackend {
    state: AppState,
    accounts: RateLimiter,
    addresses: RateLimiter,
}

impl std::fmt::Debug for VaultBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultBackend")
    }
}

impl VaultBackend {
    /// A backend over `state`.
    pub fn new(state: AppState) -> Self {
        let capacity = state.config.limiter_capacity;
        Self {
            accounts: RateLimiter::new(ACCOUNT_RATE, capacity),
            addresses: RateLimiter::new(ADDRESS_RATE, capacity),
            state,
        }
    }
}

/// The Dev Space router over the vault, with the client address the vault's server records.
pub fn router(state: AppState, settings: devspace::Settings) -> Router {
    devspace::router(Arc::new(VaultBackend::new(state)), settings).layer(middleware::from_fn(client_ip))
}

async fn client_ip(mut req: Request, next: Next) -> Response {
    if let Some(ClientAddr(addr)) = req.extensions().get::<ClientAddr>().copied() {
        req.extensions_mut().insert(ClientIp(keys::canonical_ip(addr.ip())));
    }
    next.run(req).await
}

fn backend_err(e: StoreError) -> BackendError {
    match e {
        StoreError::Unavailable(_) | StoreError::Closed => BackendError::Unavailable,
        StoreError::Conflict => BackendError::Conflict,
        other => {
            tracing::error!(error = %other, "dev space storage error");
            BackendError::Internal
        }
    }
}

fn boxed<T: Send + 'static>(fut: impl Future<Output = Result<T, StoreError>> + Send + 'static) -> BackendFuture<T> {
    Box::pin(async move { fut.await.map_err(backend_err) })
}

/// The form's message for a key validation error.
fn key_message(e: &KeyError, field: &str) -> String {
    match e {
        KeyError::BadOrigin(_) => {
            "An origin is not scheme://host[:port] (port 1–65535), e.g. https://shop.example.".into()
        }
        KeyError::InsecureOrigin(_) => {
            "Live keys accept only https:// origins (http:// only for localhost, 127.0.0.1 and [::1]).".into()
        }
        KeyError::BadCidr(_) => {
            "An entry is not an IP address or CIDR block (e.g. 203.0.113.7 or 203.0.113.0/24).".into()
        }
        KeyError::CidrTooWide(_) => "IP allowlist entries may not be wider than /24 (IPv4) or /48 (IPv6).".into(),
        KeyError::BadLabel => "Labels are at most 100 characters, without control characters.".into(),
        KeyError::CardNumberInText(_) => format!("The {field} looks like it contains a card number."),
        KeyError::RoleMismatch | KeyError::Crypto(_) => "The key could not be created.".into(),
    }
}

fn view(k: &ApiKeyRecord, now: i64, last: Option<&(String, i64, Option<String>)>) -> KeyView {
    let status = if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|t| t <= now) {
        "expired"
    } else if k.expires_at.is_some() {
        "expiring"
    } else {
        "active"
    };
    KeyView {
        id: k.id.clone(),
        kind: k.kind.as_str().to_owned(),
        mode: k.mode.as_str().to_owned(),
        role: k.role.map(|r| r.as_str().to_owned()),
        prefix: k.prefix.clone(),
        label: k.label.clone(),
        created: k.created,
        last_used: last.map(|l| l.1),
        last_used_ip: last.and_then(|l| l.2.clone()),
        status: status.to_owned(),
        origins: k.allowed_origins.clone(),
        ip_allowlist: k.ip_allowlist.iter().map(ToString::to_string).collect(),
    }
}

/// An audit event made by a Dev Space user: the person (`detail.actor`, their role, `via`)
/// and their address are recorded with it.
fn audit_event(
    now: i64,
    actor: &Actor,
    event: &str,
    outcome: &str,
    key: Option<&ApiKeyRecord>,
    detail: Value,
) -> AuditEvent {
    let mut detail = match detail {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    detail.insert("actor".into(), json!(actor.email));
    detail.insert("actor_role".into(), json!(actor.role.as_str()));
    detail.insert("via".into(), json!("devspace"));
    AuditEvent {
        id: 0,
        ts: now,
        event: event.to_owned(),
        outcome: outcome.to_owned(),
        merchant_id: Some(actor.merchant_id.clone()),
        mode: key.map(|k| k.mode),
        key_id: key.map(|k| k.id.clone()),
        ip: Some(actor.ip.clone()),
        request_id: None,
        detail: Value::Object(detail),
    }
}

/// A successful Dev Space event about something of one mode that is not an API key (webhook
/// endpoints, events).
fn mode_event(now: i64, actor: &Actor, event: &str, mode: Mode, detail: Value) -> AuditEvent {
    let mut e = audit_event(now, actor, event, "success", None, detail);
    e.mode = Some(mode);
    e
}

/// Stores a security alert and its `security.alert` events (to both modes' endpoints: webhook
/// endpoints are per mode and an alert is about the whole account), logged at warn level.
/// `Ok(false)` when an alert with this id exists: ids made from what the alert is about (a
/// key and an hour, a key and "unused") raise it once across instances.
///
/// # Errors
/// Storage errors.
pub async fn store_alert(state: &AppState, alert: AlertRecord) -> Result<bool, StoreError> {
    let object = json!({
        "object": "security_alert",
        "id": alert.id,
        "kind": alert.kind,
        "message": alert.message,
        "created": alert.ts,
        "detail": alert.detail,
    });
    let mut events = Vec::new();
    for mode in [Mode::Live, Mode::Test] {
        let e = crate::api::payments::new_event(&alert.merchant_id, mode, "security.alert", object.clone(), alert.ts)
            .map_err(|_| StoreError::Database("could not make an event id".into()))?;
        events.push(e);
    }
    let (kind, merchant, id) = (alert.kind.clone(), alert.merchant_id.clone(), alert.id.clone());
    match state.store.devspace_insert_alert(alert, events).await {
        Ok(()) => {
            tracing::warn!(target: "vault::security", kind = %kind, merchant_id = %merchant, alert_id = %id, "security alert");
            Ok(true)
        }
        Err(StoreError::Conflict) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Stores `alert` in the background (the request that caused it is not delayed).
fn alert_in_background(state: &AppState, alert: AlertRecord) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = store_alert(&state, alert).await {
            tracing::error!(error = %e, "could not store a security alert");
        }
    });
}

/// Raises an alert about `key` at most once per key, `tag` and hour, in the background.
fn hourly_key_alert(state: &AppState, key: &ApiKeyRecord, tag: &str, kind: &str, message: String, detail: Value) {
    let now = state.now();
    alert_in_background(
        state,
        AlertRecord {
            id: format!("alr_{tag}_{}_{}", key.id, now.div_euclid(3600)),
            merchant_id: key.merchant_id.clone(),
            ts: now,
            kind: kind.to_owned(),
            message,
            detail,
        },
    );
}

/// Raises the "key used from a non-allowlisted address" alert, at most once per key and hour.
pub fn alert_non_allowlisted_use(state: &AppState, key: &ApiKeyRecord, ip: std::net::IpAddr) {
    let message = format!("Key {} was used from {ip}, which its IP allowlist does not include.", key.prefix);
    let detail = json!({ "key_id": key.id, "ip": ip.to_string() });
    hourly_key_alert(state, key, "ipdeny", "key.non_allowlisted_ip", message, detail);
}

/// Raises the "authentication-failure burst" alert for a key's merchant, at most once per key
/// and hour.
pub fn alert_auth_failure_burst(state: &AppState, key: &ApiKeyRecord, ip: std::net::IpAddr, failures: u32) {
    let message = format!("{failures} failed authentications within a minute from {ip}, naming key {}.", key.prefix);
    let detail = json!({ "key_id": key.id, "ip": ip.to_string(), "failures": failures });
    hourly_key_alert(state, key, "authburst", "auth.failure_burst", message, detail);
}

/// How often the unused-key check runs (any instance; the alert ids make it idempotent).
pub const UNUSED_CHECK_SECONDS: i64 = 3600;

/// Raises `key.unused` once per active key not used for `days` days (never used: since its
/// creation). Runs from the sweeper at most every [`UNUSED_CHECK_SECONDS`].
///
/// # Errors
/// Storage errors.
pub async fn unused_key_alerts(state: &AppState, days: i64) -> Result<u64, StoreError> {
    let now = state.now();
    let last: i64 = state.store.get_meta("devspace_unused_checked").await?.and_then(|v| v.parse().ok()).unwrap_or(0);
    if now - last < UNUSED_CHECK_SECONDS {
        return Ok(0);
    }
    state.store.set_meta("devspace_unused_checked", &now.to_string()).await?;
    let keys = state.store.list_api_keys().await?;
    let mut raised = 0;
    for merchant in state.store.list_merchants().await? {
        let uses = state.store.key_last_uses(&merchant.id).await?;
        for k in keys.iter().filter(|k| k.merchant_id == merchant.id && k.is_active(now)) {
            let last_use = uses.iter().find(|u| u.0 == k.id).map_or(k.created, |u| u.1);
            if now - last_use < days * 86_400 {
                continue;
            }
            let alert = AlertRecord {
                id: format!("alr_unused_{}", k.id),
                merchant_id: k.merchant_id.clone(),
                ts: now,
                kind: "key.unused".into(),
                message: format!(
                    "Key {} ({}) has not been used for {days} days or more: disable it in Dev Space if nobody needs it.",
                    k.prefix, k.label
                ),
                detail: json!({ "key_id": k.id, "last_used": uses.iter().find(|u| u.0 == k.id).map(|u| u.1) }),
            };
            if store_alert(state, alert).await? {
                raised += 1;
            }
        }
    }
    Ok(raised)
}

/// Counts a successful detokenize by `key` in the current window (a counter in the database,
/// shared by every instance) and raises `detokenize.volume` when the count first exceeds
/// [`crate::config::Config::detokenize_alert_threshold`]: once per key and window (the count
/// passes threshold + 1 once, and the alert id is made from the key and the window). In the
/// background: the detokenize answer does not wait for it.
pub fn note_detokenize(state: &AppState, key: &ApiKeyRecord) {
    let threshold = state.config.detokenize_alert_threshold;
    if threshold == 0 {
        return;
    }
    let window = state.config.detokenize_alert_window_secs.max(1);
    let now = state.now();
    let n = now.div_euclid(window);
    let (state, key) = (state.clone(), key.clone());
    tokio::spawn(async move {
        let name = format!("detok:{}:{n}", key.id);
        let count = match state.store.devspace_count(&name, (n + 1) * window).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "could not count a detokenize for the volume alert");
                return;
            }
        };
        if count != threshold + 1 {
            return;
        }
        let minutes = window / 60;
        let alert = AlertRecord {
            id: format!("alr_detokvol_{}_{n}", key.id),
            merchant_id: key.merchant_id.clone(),
            ts: now,
            kind: "detokenize.volume".into(),
            message: format!(
                "Key {} detokenized more than {threshold} cards within {minutes} minutes: check that this is expected.",
                key.prefix
            ),
            detail: json!({ "key_id": key.id, "threshold": threshold, "window_seconds": window, "window_start": n * window }),
        };
        if let Err(e) = store_alert(&state, alert).await {
            tracing::error!(error = %e, "could not store a security alert");
        }
    });
}

/// Alerts older than this are not emailed any more (a vault given `--smtp-url` later does not
/// send its whole history).
pub const EMAIL_MAX_AGE_SECONDS: i64 = 24 * 3600;
/// Attempts per alert email before it is given up (and logged).
pub const EMAIL_MAX_ATTEMPTS: u32 = 10;

/// The email of one alert: its sentence, kind and time, and where to look; never the alert's
/// `detail` (whatever a future alert puts there stays out of mailboxes), a secret or card data.
pub fn alert_email(alert: &AlertRecord, from: &str, to: Vec<String>) -> crate::smtp::Message {
    let body = format!(
        "{}\n\nKind: {}\nTime: {}\nAlert: {}\n\nSee Security alerts in Dev Space for every alert of your account.\n\
         You receive this as an owner or admin of the account.\n",
        alert.message,
        alert.kind,
        devspace::pages::fmt_time(alert.ts),
        alert.id,
    );
    crate::smtp::Message {
        from: from.to_owned(),
        to,
        subject: format!("Security alert: {}", alert.kind),
        id: alert.id.clone(),
        date: alert.ts,
        body,
    }
}

/// One pass of the alert email outbox: claims the due alerts (each claim counts an attempt and
/// makes the alert due again after the retry delay, so a sender that dies leaves it to any
/// instance), emails each to its account's owners and admins, concurrently, and marks the sent
/// ones. A failing server is logged and retried; requests never wait for any of it. The retry
/// delay is at least twice [`crate::smtp::SEND_TIMEOUT`], so a claim outlives its attempt and
/// no two instances send the same email.
pub async fn send_alert_emails(state: &AppState) {
    let Some(smtp) = state.config.smtp.clone() else { return };
    let now = state.now();
    let retry = smtp.retry_after.max(crate::smtp::SEND_TIMEOUT * 2);
    let retry_at = now + i64::try_from(retry.as_secs()).unwrap_or(3600);
    let claimed = match state
        .store
        .devspace_claim_alert_emails(now, retry_at, now - EMAIL_MAX_AGE_SECONDS, EMAIL_MAX_ATTEMPTS, 20)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "could not read the alert email outbox");
            return;
        }
    };
    let mut sends = tokio::task::JoinSet::new();
    for (alert, attempt) in claimed {
        let (state, smtp) = (state.clone(), smtp.clone());
        sends.spawn(async move { email_alert(&state, &smtp, &alert, attempt).await });
    }
    while sends.join_next().await.is_some() {}
}

/// Emails one claimed alert and marks it sent, or logs why not.
async fn email_alert(state: &AppState, smtp: &crate::config::SmtpSettings, alert: &AlertRecord, attempt: u32) {
    let to: Vec<String> = match state.store.devspace_users(&alert.merchant_id).await {
        Ok(users) => users
            .into_iter()
            .filter(|u| matches!(u.role, devspace::Role::Owner | devspace::Role::Admin))
            .map(|u| u.email)
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, alert_id = %alert.id, "could not read an alert's recipients");
            return;
        }
    };
    let sent =
        if to.is_empty() { Ok(()) } else { crate::smtp::send(&smtp.target, &alert_email(alert, &smtp.from, to)).await };
    match sent {
        Ok(()) => {
            if let Err(e) = state.store.devspace_alert_emailed(&alert.id).await {
                tracing::error!(error = %e, alert_id = %alert.id, "could not mark an alert emailed");
            }
        }
        Err(e) if attempt >= EMAIL_MAX_ATTEMPTS => {
            tracing::error!(error = %e, alert_id = %alert.id, attempt, "giving up emailing a security alert");
        }
        Err(e) => {
            tracing::warn!(error = %e, alert_id = %alert.id, attempt, "could not email a security alert; will retry");
        }
    }
}

/// `visa •••• 4242` from a payment's stored card display data: brand and last 4 only, and only
/// when the last 4 are exactly four digits.
fn masked_card(p: &PaymentRecord) -> String {
    let card = p.data.get("card");
    let brand = card.and_then(|c| c.get("brand")).and_then(Value::as_str).unwrap_or_default();
    let last4 = card.and_then(|c| c.get("last4")).and_then(Value::as_str).unwrap_or_default();
    if last4.len() == 4 && last4.bytes().all(|b| b.is_ascii_digit()) {
        format!("{brand} •••• {last4}")
    } else {
        String::new()
    }
}

/// A webhook endpoint as Dev Space shows it.
fn endpoint_view(e: crate::store::WebhookEndpointRecord) -> EndpointView {
    EndpointView {
        id: e.id,
        mode: e.mode.as_str().to_owned(),
        url: e.url,
        events: e.enabled_events,
        status: e.status,
        failing_since: e.failing_since,
        created: e.created,
    }
}

impl VaultBackend {
    /// The merchant's endpoint `id` (of either mode).
    async fn own_endpoint(
        state: &AppState,
        merchant_id: &str,
        id: &str,
    ) -> Result<crate::store::WebhookEndpointRecord, BackendError> {
        for mode in [Mode::Test, Mode::Live] {
            if let Some(e) = state.store.get_webhook_endpoint(id, merchant_id, mode).await.map_err(backend_err)? {
                return Ok(e);
            }
        }
        Err(BackendError::NotFound)
    }

    async fn own_key(state: &AppState, merchant_id: &str, key_id: &str) -> Result<ApiKeyRecord, BackendError> {
        let keys = state.store.list_api_keys().await.map_err(backend_err)?;
        keys.into_iter().find(|k| k.id == key_id && k.merchant_id == merchant_id).ok_or(BackendError::NotFound)
    }
}

impl Backend for VaultBackend {
    fn now(&self) -> i64 {
        self.state.now()
    }

    fn insert_user(&self, user: UserRecord, link: Option<LinkRecord>) -> BackendFuture<()> {
        boxed(self.state.store.devspace_insert_user(user, link))
    }

    fn user_by_email(&self, email: &str) -> BackendFuture<Option<UserRecord>> {
        boxed(self.state.store.devspace_user(email, true))
    }

    fn user(&self, id: &str) -> BackendFuture<Option<UserRecord>> {
        boxed(self.state.store.devspace_user(id, false))
    }

    fn update_user(&self, user: UserRecord) -> BackendFuture<bool> {
        boxed(self.state.store.devspace_update_user(user))
    }

    fn users(&self, merchant_id: &str) -> BackendFuture<Vec<UserRecord>> {
        boxed(self.state.store.devspace_users(merchant_id))
    }

    fn delete_user(&self, id: &str) -> BackendFuture<bool> {
        boxed(self.state.store.devspace_delete_user(id))
    }

    fn insert_session(&self, session: SessionRecord) -> BackendFuture<()> {
        boxed(self.state.store.devspace_put_session(session))
    }

    fn session(&self, hash: &str) -> BackendFuture<Option<SessionRecord>> {
        boxed(self.state.store.devspace_session(hash))
    }

    fn update_session(&self, session: SessionRecord) -> BackendFuture<()> {
        boxed(self.state.store.devspace_put_session(session))
    }

    fn delete_session(&self, hash: &str) -> BackendFuture<()> {
        let fut = self.state.store.devspace_delete_sessions(Some(hash.to_owned()), None);
        boxed(async move { fut.await.map(|_| ()) })
    }

    fn delete_user_sessions(&self, user_id: &str) -> BackendFuture<u64> {
        boxed(self.state.store.devspace_delete_sessions(None, Some(user_id.to_owned())))
    }

    fn insert_link(&self, link: LinkRecord) -> BackendFuture<()> {
        boxed(self.state.store.devspace_insert_link(link))
    }

    fn link(&self, hash: &str, now: i64) -> BackendFuture<Option<LinkRecord>> {
        boxed(self.state.store.devspace_link(hash, now, false))
    }

    fn take_link(&self, hash: &str, now: i64) -> BackendFuture<Option<LinkRecord>> {
        boxed(self.state.store.devspace_link(hash, now, true))
    }

    fn seal_totp(&self, user_id: &str, secret: &TotpSecret) -> Result<Vec<u8>, BackendError> {
        self.state
            .master
            .seal_durable(secret.expose(), &format!("devspace:totp:{user_id}"))
            .map_err(|_| BackendError::Internal)
    }

    fn open_totp(&self, user_id: &str, sealed: &[u8]) -> Result<TotpSecret, BackendError> {
        let plain = self
            .state
            .master
            .open_durable(sealed, &format!("devspace:totp:{user_id}"))
            .map_err(|_| BackendError::Internal)?;
        Ok(TotpSecret::from_bytes(plain.expose().to_vec()))
    }

    fn note_device(&self, user_id: &str, device_hash: &str, now: i64) -> BackendFuture<DeviceSeen> {
        let fut = self.state.store.devspace_note_device(user_id, device_hash, now, KNOWN_DEVICES);
        boxed(async move { fut.await.map(|(new, first)| DeviceSeen { new, first }) })
    }

    fn allow_attempt(&self, bucket: AttemptBucket, key: &str) -> BackendFuture<bool> {
        let state = self.state.clone();
        let (name, rate, key) = match bucket {
            AttemptBucket::Account => ("devspace-account", ACCOUNT_RATE, key.to_owned()),
            AttemptBucket::Address => {
                let bucket = key.parse().map_or_else(|_| key.to_owned(), keys::client_bucket);
                ("devspace-address", ADDRESS_RATE, bucket)
            }
        };
        // The limiters live in `self`; decide locally unless a shared (Redis) limiter answers.
        let local = match bucket {
            AttemptBucket::Account => self.accounts.check(&key),
            AttemptBucket::Address => self.addresses.check(&key),
        };
        Box::pin(async move {
            if let Some(shared) = &state.shared {
                if let Some(d) = shared.check(name, &key, rate).await {
                    return Ok(d.allowed);
                }
            }
            Ok(local.allowed)
        })
    }

    fn audit(
        &self,
        actor: &Actor,
        event: &str,
        outcome: &str,
        key_id: Option<&str>,
        detail: Value,
    ) -> BackendFuture<()> {
        let mut e = audit_event(self.state.now(), actor, event, outcome, None, detail);
        e.key_id = key_id.map(str::to_owned);
        self.state.log_audit(&e);
        boxed(self.state.store.append_audit(vec![e]))
    }

    fn raise_alert(&self, alert: AlertRecord) -> BackendFuture<()> {
        let state = self.state.clone();
        Box::pin(async move { store_alert(&state, alert).await.map(|_| ()).map_err(backend_err) })
    }

    fn alerts(&self, merchant_id: &str, limit: u32) -> BackendFuture<Vec<AlertRecord>> {
        boxed(self.state.store.devspace_alerts(merchant_id, limit))
    }

    fn list_keys(&self, merchant_id: &str) -> BackendFuture<Vec<KeyView>> {
        let (state, merchant_id) = (self.state.clone(), merchant_id.to_owned());
        Box::pin(async move {
            let keys = state.store.list_api_keys().await.map_err(backend_err)?;
            let uses = state.store.key_last_uses(&merchant_id).await.map_err(backend_err)?;
            let now = state.now();
            let mut out: Vec<KeyView> = keys
                .iter()
                .filter(|k| k.merchant_id == merchant_id)
                .map(|k| view(k, now, uses.iter().find(|u| u.0 == k.id)))
                .collect();
            out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
            Ok(out)
        })
    }

    fn create_key(&self, actor: &Actor, request: NewKeyRequest) -> BackendFuture<(KeyView, Secret)> {
        let state = self.state.clone();
        let actor = actor.clone();
        let prepared = (|| {
            let invalid = |m: &str| BackendError::Invalid(m.to_owned());
            let kind = KeyKind::parse(&request.kind).ok_or_else(|| invalid("Choose secret or publishable."))?;
            let mode = Mode::parse(&request.mode).ok_or_else(|| invalid("Choose test or live."))?;
            let role = match (kind, request.role.as_deref()) {
                (KeyKind::Secret, Some(r)) => {
                    Some(Role::parse(r).ok_or_else(|| invalid("Choose a role: read_only, payments or admin."))?)
                }
                (KeyKind::Secret, None) => return Err(invalid("Secret keys need a role.")),
                (KeyKind::Publishable, _) => None,
            };
            if keys::allows(kind, role, Permission::Detokenize) {
                return Err(invalid(
                    "Keys that can detokenize are created only with the vault command line on the vault host.",
                ));
            }
            if kind == KeyKind::Secret && !request.origins.is_empty() {
                return Err(invalid("Allowed origins are for publishable keys; leave them empty for a secret key."));
            }
            if kind == KeyKind::Publishable && !request.ip_allowlist.is_empty() {
                return Err(invalid("IP allowlists are for secret keys; leave it empty for a publishable key."));
            }
            let label =
                keys::parse_label(&request.label).map_err(|e| BackendError::Invalid(key_message(&e, "label")))?;
            let origins = request
                .origins
                .iter()
                .map(|o| keys::parse_allowed_origin(o, mode))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| BackendError::Invalid(key_message(&e, "origin")))?;
            let ips = request
                .ip_allowlist
                .iter()
                .map(|o| keys::parse_allowlist_entry(o, false))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| BackendError::Invalid(key_message(&e, "allowlist")))?;
            let spec = KeySpec {
                merchant_id: actor.merchant_id.clone(),
                kind,
                mode,
                role,
                label,
                allowed_origins: origins,
                ip_allowlist: ips,
            };
            let master = Arc::clone(&state.master);
            let new =
                keys::generate(spec, state.now(), |k| master.hash_api_key(k)).map_err(|_| BackendError::Internal)?;
            let detail = json!({ "new_key_id": new.record.id, "kind": kind, "role": role });
            let e = audit_event(state.now(), &actor, "key.created", "success", Some(&new.record), detail);
            Ok((new, e))
        })();
        Box::pin(async move {
            let (new, e) = prepared?;
            state.log_audit(&e);
            state.store.insert_api_key(new.record.clone(), e).await.map_err(backend_err)?;
            state.api_keys.refresh(state.store.as_ref(), state.now()).await.map_err(backend_err)?;
            let shown = Secret::new(new.plaintext.expose().to_owned());
            Ok((view(&new.record, state.now(), None), shown))
        })
    }

    fn rotate_key(&self, actor: &Actor, key_id: &str, overlap_seconds: i64) -> BackendFuture<(KeyView, Secret)> {
        let state = self.state.clone();
        let (actor, key_id) = (actor.clone(), key_id.to_owned());
        Box::pin(async move {
            if !(0..=crate::api::admin::MAX_OVERLAP_SECS).contains(&overlap_seconds) {
                return Err(BackendError::Invalid("The overlap is between 0 seconds and 7 days.".into()));
            }
            let old = Self::own_key(&state, &actor.merchant_id, &key_id).await?;
            if keys::allows(old.kind, old.role, Permission::Detokenize) {
                return Err(BackendError::Invalid(
                    "Keys that can detokenize are rotated only with the vault command line on the vault host.".into(),
                ));
            }
            let now = state.now();
            let events = |new: &ApiKeyRecord, old: &ApiKeyRecord| {
                let created = json!({ "new_key_id": new.id, "rotation_of": old.id });
                let rotated =
                    json!({ "target_key_id": old.id, "new_key_id": new.id, "overlap_seconds": overlap_seconds });
                (
                    audit_event(now, &actor, "key.created", "success", Some(new), created),
                    audit_event(now, &actor, "key.rotated", "success", Some(old), rotated),
                )
            };
            match crate::api::admin::rotate_recorded(&state, old, overlap_seconds, events).await {
                Ok((new, _)) => Ok((view(&new.record, now, None), Secret::new(new.plaintext.expose().to_owned()))),
                Err(crate::api::admin::RotateError::Inactive) => {
                    Err(BackendError::Invalid("Only an active key can be rotated.".into()))
                }
                Err(crate::api::admin::RotateError::Store(e)) => Err(backend_err(e)),
                Err(crate::api::admin::RotateError::Crypto) => Err(BackendError::Internal),
            }
        })
    }

    fn revoke_key(&self, actor: &Actor, key_id: &str) -> BackendFuture<()> {
        let state = self.state.clone();
        let (actor, key_id) = (actor.clone(), key_id.to_owned());
        Box::pin(async move {
            let mut key = Self::own_key(&state, &actor.merchant_id, &key_id).await?;
            if key.revoked_at.is_none() {
                key.revoked_at = Some(state.now());
            }
            let e = audit_event(
                state.now(),
                &actor,
                "key.revoked",
                "success",
                Some(&key),
                json!({ "target_key_id": key.id }),
            );
            state.log_audit(&e);
            state.store.update_api_key(key, e).await.map_err(backend_err)?;
            state.api_keys.refresh(state.store.as_ref(), state.now()).await.map_err(backend_err)
        })
    }

    fn set_ip_allowlist(
        &self,
        actor: &Actor,
        key_id: &str,
        entries: Vec<String>,
        reauthenticated: bool,
    ) -> BackendFuture<bool> {
        let state = self.state.clone();
        let (actor, key_id) = (actor.clone(), key_id.to_owned());
        Box::pin(async move {
            let mut key = Self::own_key(&state, &actor.merchant_id, &key_id).await?;
            if key.kind != KeyKind::Secret {
                return Err(BackendError::Invalid("Only secret keys have an IP allowlist.".into()));
            }
            let ips = entries
                .iter()
                .map(|o| keys::parse_allowlist_entry(o, false))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| BackendError::Invalid(key_message(&e, "allowlist")))?;
            let widens = keys::allowlist_widens(&key.ip_allowlist, &ips);
            if widens && keys::allows(key.kind, key.role, Permission::Detokenize) {
                return Err(BackendError::Invalid(
                    "The allowlist of a key that can detokenize is widened only with the vault command line.".into(),
                ));
            }
            if widens && !reauthenticated {
                return Err(BackendError::NeedsReauth);
            }
            let old: Vec<String> = key.ip_allowlist.iter().map(ToString::to_string).collect();
            key.ip_allowlist = ips;
            let new: Vec<String> = key.ip_allowlist.iter().map(ToString::to_string).collect();
            let e = audit_event(
                state.now(),
                &actor,
                "key.updated",
                "success",
                Some(&key),
                json!({ "target_key_id": key.id, "ip_allowlist": new, "previous_ip_allowlist": old, "widened": widens }),
            );
            state.log_audit(&e);
            state.store.update_api_key(key, e).await.map_err(backend_err)?;
            state.api_keys.refresh(state.store.as_ref(), state.now()).await.map_err(backend_err)?;
            Ok(widens)
        })
    }

    fn payments(
        &self,
        merchant_id: &str,
        mode: &str,
        limit: u32,
    ) -> BackendFuture<(Vec<PaymentView>, Vec<RefundView>)> {
        let mode = if mode == "live" { Mode::Live } else { Mode::Test };
        let filter =
            ListFilter { merchant_id: Some(merchant_id.to_owned()), mode: Some(mode), limit, ..ListFilter::default() };
        let (payments, refunds) =
            (self.state.store.list_payments(filter.clone()), self.state.store.list_refunds(filter));
        Box::pin(async move {
            let payments = payments.await.map_err(backend_err)?;
            let refunds = refunds.await.map_err(backend_err)?;
            let payments = payments
                .iter()
                .map(|p| PaymentView {
                    id: p.id.clone(),
                    mode: p.mode.as_str().to_owned(),
                    status: p.status.clone(),
                    amount: p.amount,
                    currency: p.currency.clone(),
                    amount_captured: p.amount_captured,
                    amount_refunded: p.amount_refunded,
                    card: masked_card(p),
                    created: p.created,
                })
                .collect();
            let refunds = refunds
                .into_iter()
                .map(|r| RefundView {
                    currency: r.data.get("currency").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    id: r.id,
                    payment_id: r.payment_id,
                    amount: r.amount,
                    status: r.status,
                    created: r.created,
                })
                .collect();
            Ok((payments, refunds))
        })
    }

    fn webhook_endpoints(&self, merchant_id: &str) -> BackendFuture<Vec<EndpointView>> {
        let live = self.state.store.list_webhook_endpoints(merchant_id, Mode::Live);
        let test = self.state.store.list_webhook_endpoints(merchant_id, Mode::Test);
        Box::pin(async move {
            let mut all = live.await.map_err(backend_err)?;
            all.extend(test.await.map_err(backend_err)?);
            Ok(all.into_iter().map(endpoint_view).collect())
        })
    }

    fn events(&self, merchant_id: &str, mode: &str, limit: u32) -> BackendFuture<Vec<EventView>> {
        let mode = if mode == "live" { Mode::Live } else { Mode::Test };
        let state = self.state.clone();
        let filter =
            ListFilter { merchant_id: Some(merchant_id.to_owned()), mode: Some(mode), limit, ..ListFilter::default() };
        Box::pin(async move {
            let events = state.store.list_events(filter).await.map_err(backend_err)?;
            let mut out = Vec::with_capacity(events.len());
            for e in events {
                let attempts = state.store.list_attempts(&e.id).await.map_err(backend_err)?;
                out.push(EventView {
                    attempts: attempts
                        .into_iter()
                        .map(|a| {
                            let outcome =
                                a.status_code.map_or_else(|| a.error_class.unwrap_or_default(), |c| c.to_string());
                            (a.endpoint_id, outcome, a.created)
                        })
                        .collect(),
                    id: e.id,
                    event_type: e.event_type,
                    created: e.created,
                });
            }
            Ok(out)
        })
    }

    fn resend_event(&self, actor: &Actor, mode: &str, event_id: &str) -> BackendFuture<u64> {
        let mode = if mode == "live" { Mode::Live } else { Mode::Test };
        let (state, actor, event_id) = (self.state.clone(), actor.clone(), event_id.to_owned());
        Box::pin(async move {
            let now = state.now();
            let n = state
                .store
                .redeliver_event(&event_id, &actor.merchant_id, mode, None, now)
                .await
                .map_err(backend_err)?;
            let e = mode_event(now, &actor, "event.redelivered", mode, json!({ "event": event_id, "deliveries": n }));
            state.log_audit(&e);
            state.store.append_audit(vec![e]).await.map_err(backend_err)?;
            Ok(n)
        })
    }

    fn create_webhook_endpoint(
        &self,
        actor: &Actor,
        mode: &str,
        url: &str,
        events: Vec<String>,
    ) -> BackendFuture<(EndpointView, Secret)> {
        let state = self.state.clone();
        let (actor, url, mode) = (actor.clone(), url.to_owned(), Mode::parse(mode));
        Box::pin(async move {
            let mode = mode.ok_or_else(|| BackendError::Invalid("Choose test or live.".into()))?;
            let now = state.now();
            let events = Value::from(events);
            let audit = |id: &str| mode_event(now, &actor, "webhook_endpoint.created", mode, json!({ "endpoint": id }));
            let created = crate::api::webhooks::create_endpoint(
                &state,
                &actor.merchant_id,
                mode,
                &url,
                Some(&events),
                None,
                audit,
            )
            .await;
            match created {
                Ok((e, secret)) => Ok((endpoint_view(e), Secret::new(secret.expose().to_owned()))),
                Err(e) if e.status.is_client_error() => Err(BackendError::Invalid(e.message.to_owned())),
                Err(e) if e.status == axum::http::StatusCode::SERVICE_UNAVAILABLE => Err(BackendError::Unavailable),
                Err(_) => Err(BackendError::Internal),
            }
        })
    }

    fn rotate_webhook_secret(
        &self,
        actor: &Actor,
        endpoint_id: &str,
        overlap_seconds: i64,
    ) -> BackendFuture<(EndpointView, Secret)> {
        let (state, actor, id) = (self.state.clone(), actor.clone(), endpoint_id.to_owned());
        Box::pin(async move {
            if !(0..=crate::api::admin::MAX_OVERLAP_SECS).contains(&overlap_seconds) {
                return Err(BackendError::Invalid("The overlap is between 0 seconds and 7 days.".into()));
            }
            let endpoint = Self::own_endpoint(&state, &actor.merchant_id, &id).await?;
            let mode = endpoint.mode;
            let detail = json!({ "endpoint": id, "overlap_seconds": overlap_seconds });
            let audit = mode_event(state.now(), &actor, "webhook_endpoint.secret_rotated", mode, detail);
            match crate::api::webhooks::rotate_endpoint_secret(
                &state,
                &actor.merchant_id,
                mode,
                &id,
                overlap_seconds,
                audit,
            )
            .await
            {
                Ok((e, secret)) => Ok((endpoint_view(e), Secret::new(secret.expose().to_owned()))),
                Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => Err(BackendError::NotFound),
                Err(e) if e.status == axum::http::StatusCode::CONFLICT => {
                    Err(BackendError::Invalid("Another rotation of this endpoint is under way; try again.".into()))
                }
                Err(e) if e.status == axum::http::StatusCode::SERVICE_UNAVAILABLE => Err(BackendError::Unavailable),
                Err(_) => Err(BackendError::Internal),
            }
        })
    }

    fn delete_webhook_endpoint(&self, actor: &Actor, endpoint_id: &str) -> BackendFuture<()> {
        let (state, actor, id) = (self.state.clone(), actor.clone(), endpoint_id.to_owned());
        Box::pin(async move {
            let endpoint = Self::own_endpoint(&state, &actor.merchant_id, &id).await?;
            let audit =
                mode_event(state.now(), &actor, "webhook_endpoint.deleted", endpoint.mode, json!({ "endpoint": id }));
            let deleted = state
                .store
                .delete_webhook_endpoint(&id, &actor.merchant_id, endpoint.mode, audit.clone())
                .await
                .map_err(backend_err)?;
            if !deleted {
                return Err(BackendError::NotFound);
            }
            state.log_audit(&audit);
            Ok(())
        })
    }

    fn tokens(&self, merchant_id: &str, mode: &str, before: Option<&str>, limit: u32) -> BackendFuture<Vec<TokenView>> {
        let mode = if mode == "live" { Mode::Live } else { Mode::Test };
        boxed(self.state.store.token_views(merchant_id, mode, before.map(str::to_owned), limit))
    }

    fn audit_log(&self, merchant_id: &str, query: AuditQuery) -> BackendFuture<Vec<AuditRow>> {
        let filter = AuditFilter {
            merchant_id: Some(merchant_id.to_owned()),
            event: query.event,
            before_id: query.before_id,
            limit: query.limit,
            key_id: query.key_id,
            ip: query.ip,
            actor: query.actor,
            since: query.since,
            until: query.until,
        };
        let fut = self.state.store.list_audit(filter);
        Box::pin(async move {
            let events = fut.await.map_err(backend_err)?;
            Ok(events
                .into_iter()
                .map(|e| AuditRow {
                    id: e.id,
                    ts: e.ts,
                    actor: e.detail.get("actor").and_then(Value::as_str).map(str::to_owned),
                    event: e.event,
                    outcome: e.outcome,
                    mode: e.mode.map(|m| m.as_str().to_owned()),
                    key_id: e.key_id,
                    ip: e.ip,
                    detail: e.detail.to_string(),
                })
                .collect())
        })
    }
}
