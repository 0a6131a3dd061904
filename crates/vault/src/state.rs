//! Shared server state and the operations handlers build on: authentication, authorization,
//! auditing, idempotency bookkeeping and background tasks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::api::error::ApiError;
use crate::clock::{Clock, UnixSeconds};
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::keyring::{ApiKeyCache, Keyring, KeyringError};
use crate::keys::{self, ApiKeyRecord, KeyKind, Permission};
use crate::ratelimit::RateLimiter;
use crate::store::{AuditEvent, Store, StoreError};

/// Shared state (cheap to clone).
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppState")
    }
}

/// The state's contents.
pub struct Inner {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Master key and derived keys.
    pub master: Arc<MasterKey>,
    /// Data and fingerprint keys.
    pub keyring: Keyring,
    /// API keys.
    pub api_keys: ApiKeyCache,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Settings.
    pub config: Config,
    /// Per-key limiter: secret keys per key; publishable keys per key *and* client address
    /// (charged before the body is read) so one client cannot drain a checkout's key.
    pub key_limiter: RateLimiter,
    /// Publishable keys' shared per-key bucket, charged only for requests whose card validated.
    pub shared_limiter: RateLimiter,
    /// Per-client-address limiter (IPv4 address, IPv6 /64).
    pub ip_limiter: RateLimiter,
    /// Buckets shared by every instance (Redis); the local limiters above decide when it is
    /// not configured or does not answer.
    pub shared: Option<crate::ratelimit::SharedLimiter>,
    /// Authentication failures per IP (suspicious-activity detection), at most
    /// `config.limiter_capacity` entries.
    auth_failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// Origins of the vault itself (set once the listener is bound).
    pub public_origins: RwLock<Vec<String>>,
    /// This process's name as a holder of background-job leases.
    pub instance_id: String,
    /// Set when a graceful shutdown begins: `/readyz` answers 503 so load balancers stop
    /// sending new requests while in-flight ones finish.
    pub draining: std::sync::atomic::AtomicBool,
    /// The frame directory's files, precompressed (`api::assets`).
    pub frame_assets: crate::api::assets::AssetCache,
    /// The sandbox acquirer that test-mode payments go to (its ledger is what tests read).
    pub sandbox: Arc<crate::processor::sandbox::SandboxProcessor>,
    /// The live-mode processor: none ships, so live payments are refused with
    /// `processor_not_configured` until one is plugged in here.
    pub live_processor: Option<Arc<dyn crate::processor::Processor>>,
    /// The test-mode webhook client that also trusts [`Config::webhook_test_roots`] (built on
    /// first use; `None` inside: it could not be built).
    pub webhook_test_client: std::sync::OnceLock<Option<reqwest::Client>>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key used.
    pub key: ApiKeyRecord,
    /// Client IP.
    pub ip: IpAddr,
    /// Request id.
    pub request_id: String,
}

/// Request context used before authentication.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// Client IP.
    pub ip: IpAddr,
    /// Request id.
    pub request_id: String,
}

/// How long a pending idempotency claim holds before another request may take it over (its
/// instance died mid-request). Longer than any request can take (body timeout + processing).
pub const IDEMPOTENCY_LEASE_SECS: i64 = 60;

/// A claimed idempotency scope; released (the pending record deleted) when dropped without
/// [`ClaimGuard::complete`], also when the request is cancelled (client gone).
#[derive(Debug)]
pub struct ClaimGuard {
    state: AppState,
    scope: Option<String>,
}

impl ClaimGuard {
    /// The response was stored with the claim: nothing to release.
    pub fn complete(&mut self) {
        self.scope = None;
    }

    /// Ends the request's hold on its claim with its `answer`, whatever it is: unless the
    /// response was stored with the claim ([`ClaimGuard::complete`]), the claim is released
    /// and the release awaited before the answer is returned, so a retry sent the moment the
    /// answer arrives finds the key free (an outcome still unknown, a validation error, a store
    /// error alike). Every handler that claims a key answers through this, once; dropping the
    /// guard instead (a cancelled request) releases it in the background.
    pub async fn answer<T>(mut self, answer: T) -> T {
        if let Some(release) = self.take_release() {
            warn_if_unreleased(release.await);
        }
        answer
    }

    /// The store's release of the claim, if it is still held (at most once).
    fn take_release(&mut self) -> Option<crate::store::StoreFuture<()>> {
        self.scope.take().map(|scope| self.state.store.release_idempotency(&scope))
    }
}

fn warn_if_unreleased(result: Result<(), crate::store::StoreError>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not release an idempotency claim (it expires by itself)");
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if let Some(release) = self.take_release() {
            tokio::spawn(async move { warn_if_unreleased(release.await) });
        }
    }
}

impl AppState {
    /// Builds the state and loads key caches.
    pub async fn new(
        store: Arc<dyn Store>,
        master: Arc<MasterKey>,
        clock: Arc<dyn Clock>,
        config: Config,
    ) -> Result<Self, KeyringError> {
        let keyring = Keyring::new(Arc::clone(&master));
        keyring.refresh(store.as_ref()).await?;
        let shared = match &config.redis_url {
            Some(url) => Some(
                crate::ratelimit::SharedLimiter::new(url, &config.redis_prefix)
                    .map_err(|e| KeyringError::Store(StoreError::Database(format!("rate-limit store: {e}"))))?,
            ),
            None => None,
        };
        let api_keys = ApiKeyCache::default();
        api_keys.refresh(store.as_ref(), clock.now()).await?;
        let state = Self(Arc::new(Inner {
            key_limiter: RateLimiter::new(config.rate_per_key, config.limiter_capacity),
            shared_limiter: RateLimiter::new(config.rate_per_key, config.limiter_capacity),
            ip_limiter: RateLimiter::new(config.rate_per_ip, config.limiter_capacity),
            shared,
            public_origins: RwLock::new(config.public_origins.clone()),
            store,
            master,
            keyring,
            api_keys,
            clock,
            config,
            auth_failures: Mutex::new(HashMap::new()),
            draining: std::sync::atomic::AtomicBool::new(false),
            instance_id: format!("inst_{}", crate::crypto::random_base62(12).unwrap_or_default()),
            frame_assets: crate::api::assets::AssetCache::default(),
            sandbox: Arc::new(crate::processor::sandbox::SandboxProcessor::new()),
            live_processor: None,
            webhook_test_client: std::sync::OnceLock::new(),
        }));
        // Compress the frame's files before serving (about a second for a frame build, once),
        // rather than on the first checkout's requests.
        if let Some(dir) = state.config.frame_dir.clone() {
            let warming = state.clone();
            if tokio::task::spawn_blocking(move || warming.frame_assets.warm(&dir)).await.is_err() {
                tracing::warn!("precompressing the frame files failed; they are compressed on first request");
            }
        }
        Ok(state)
    }

    /// Takes one request from bucket `key` of limiter `name`: the shared (Redis) bucket when one
    /// is configured and answers, otherwise `local`.
    pub async fn limit(
        &self,
        local: &RateLimiter,
        name: &str,
        key: &str,
        rate: crate::ratelimit::Rate,
    ) -> crate::ratelimit::Decision {
        if let Some(shared) = &self.shared {
            if let Some(d) = shared.check(name, key, rate).await {
                return d;
            }
        }
        local.check(key)
    }

    /// Number of authentication-failure counters held (bounded by `limiter_capacity`).
    pub fn auth_failure_entries(&self) -> usize {
        self.auth_failures.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// A data-key version; if this process does not know it yet (another process rotated the
    /// keys since the last refresh), the keys are reloaded once before giving up.
    pub async fn data_key(
        &self,
        merchant: &str,
        mode: keys::Mode,
        version: u32,
    ) -> Result<Arc<crate::crypto::DataKey>, KeyringError> {
        match self.keyring.version(merchant, mode, version) {
            Ok(k) => Ok(k),
            Err(_) => {
                self.keyring.refresh(self.store.as_ref()).await?;
                self.keyring.version(merchant, mode, version)
            }
        }
    }

    /// The processor payments of `mode` go to (`None`: live mode without a processor).
    pub fn processor(&self, mode: keys::Mode) -> Option<Arc<dyn crate::processor::Processor>> {
        match mode {
            keys::Mode::Test => Some(Arc::clone(&self.sandbox) as Arc<dyn crate::processor::Processor>),
            keys::Mode::Live => self.live_processor.clone(),
        }
    }

    /// Current time.
    pub fn now(&self) -> UnixSeconds {
        self.clock.now()
    }

    /// Sets the vault's own origins (after binding the listener).
    pub fn set_public_origins(&self, origins: Vec<String>) {
        if let Ok(mut o) = self.public_origins.write() {
            *o = origins;
        }
    }

    /// Whether `origin` is one of the vault's own origins.
    pub fn is_public_origin(&self, origin: &str) -> bool {
        self.public_origins.read().map(|o| o.iter().any(|x| x == origin)).unwrap_or(false)
    }

    /// Reloads API keys and encryption keys from storage.
    pub async fn refresh_keys(&self) -> Result<(), KeyringError> {
        self.api_keys.refresh(self.store.as_ref(), self.now()).await?;
        self.keyring.refresh(self.store.as_ref()).await
    }

    /// A new audit event skeleton.
    pub fn event(&self, event: &str, outcome: &str, ctx: &RequestCtx, key: Option<&ApiKeyRecord>) -> AuditEvent {
        AuditEvent {
            id: 0,
            ts: self.now(),
            event: event.to_owned(),
            outcome: outcome.to_owned(),
            merchant_id: key.map(|k| k.merchant_id.clone()),
            mode: key.map(|k| k.mode),
            key_id: key.map(|k| k.id.clone()),
            ip: Some(ctx.ip.to_string()),
            request_id: Some(ctx.request_id.clone()),
            detail: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// Writes an audit event to the structured log (target `vault::audit`).
    pub fn log_audit(&self, e: &AuditEvent) {
        tracing::info!(
            target: "vault::audit",
            event = %e.event,
            outcome = %e.outcome,
            merchant_id = e.merchant_id.as_deref().unwrap_or("-"),
            mode = e.mode.map_or("-", keys::Mode::as_str),
            key_id = e.key_id.as_deref().unwrap_or("-"),
            ip = e.ip.as_deref().unwrap_or("-"),
            request_id = e.request_id.as_deref().unwrap_or("-"),
            detail = %e.detail,
            "audit"
        );
    }

    /// Records an audit event in the log and in storage (the write is batched; not awaited).
    pub fn audit(&self, e: AuditEvent) {
        self.log_audit(&e);
        let fut = self.store.append_audit(vec![e]);
        tokio::spawn(async move {
            if let Err(err) = fut.await {
                tracing::error!(error = %err, "could not store audit event");
            }
        });
    }

    /// Records an audit event and waits until it is stored.
    pub async fn audit_durable(&self, e: AuditEvent) -> Result<(), StoreError> {
        self.log_audit(&e);
        self.store.append_audit(vec![e]).await
    }

    fn auth_failed(&self, ctx: &RequestCtx, code: &'static str, key: Option<&ApiKeyRecord>) {
        let mut e = self.event("auth.failed", "denied", ctx, key);
        e.detail = json!({ "code": code });
        self.audit(e);
        if self.shared.is_some() {
            // Counted in Redis, so failures spread over the instances add up; if Redis does not
            // answer, this instance counts on its own.
            let (state, ctx, key) = (self.clone(), ctx.clone(), key.cloned());
            tokio::spawn(async move {
                let bucket = keys::client_bucket(ctx.ip);
                let counted = match &state.shared {
                    Some(shared) => shared.count_failure(&bucket).await,
                    None => None,
                };
                let n = match counted {
                    Some(n) => n,
                    None => state.count_failure_locally(ctx.ip),
                };
                if n == u64::from(state.config.suspicious_auth_failures) {
                    state.raise_repeated_failures(&ctx, key.as_ref());
                }
            });
            return;
        }
        if self.count_failure_locally(ctx.ip) == u64::from(self.config.suspicious_auth_failures) {
            self.raise_repeated_failures(ctx, key);
        }
    }

    /// Counts an authentication failure from `ip` in this process's bounded map; returns the
    /// count within the current minute.
    fn count_failure_locally(&self, ip: IpAddr) -> u64 {
        let Ok(mut map) = self.auth_failures.lock() else { return 0 };
        let now = Instant::now();
        let window = Duration::from_secs(60);
        if !map.contains_key(&ip) && map.len() >= self.config.limiter_capacity.max(1) {
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
            if map.len() >= self.config.limiter_capacity.max(1) {
                // Still full of live counters: drop the oldest window, so the map stays bounded
                // however many addresses fail.
                if let Some(oldest) = map.iter().min_by_key(|(_, (start, _))| *start).map(|(ip, _)| *ip) {
                    map.remove(&oldest);
                }
            }
        }
        let entry = map.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        u64::from(entry.1)
    }

    fn raise_repeated_failures(&self, ctx: &RequestCtx, key: Option<&ApiKeyRecord>) {
        let threshold = self.config.suspicious_auth_failures;
        let mut e = self.event("suspicious_activity", "denied", ctx, key);
        e.detail = json!({ "reason": "repeated_authentication_failures", "failures": threshold, "window_secs": 60 });
        tracing::warn!(target: "vault::audit", ip = %ctx.ip, "suspicious activity: repeated authentication failures");
        self.audit(e);
        // When the failures name a key (revoked, expired, wrong use), its merchant is told.
        if let Some(key) = key {
            crate::devspace::alert_auth_failure_burst(self, key, ctx.ip, threshold);
        }
    }

    /// Authenticates the `Authorization: Bearer …` header.
    pub fn authenticate(&self, authorization: Option<&str>, ctx: &RequestCtx) -> Result<Principal, ApiError> {
        let Some(header) = authorization else {
            self.auth_failed(ctx, "missing_api_key", None);
            return Err(ApiError::auth("missing_api_key", "Send an API key as `Authorization: Bearer <key>`."));
        };
        let presented = header.strip_prefix("Bearer ").map(str::trim).unwrap_or("");
        if keys::classify(presented).is_none() {
            self.auth_failed(ctx, "invalid_api_key", None);
            return Err(ApiError::auth("invalid_api_key", "The API key is not valid."));
        }
        let hash = self.master.hash_api_key(presented);
        let snapshot = self.api_keys.get();
        let Some(key) = snapshot.find(&hash) else {
            self.auth_failed(ctx, "invalid_api_key", None);
            return Err(ApiError::auth("invalid_api_key", "The API key is not valid."));
        };
        let now = self.now();
        if key.revoked_at.is_some() {
            self.auth_failed(ctx, "api_key_revoked", Some(key));
            return Err(ApiError::auth("api_key_revoked", "This API key has been revoked."));
        }
        if !key.is_active(now) {
            self.auth_failed(ctx, "api_key_expired", Some(key));
            return Err(ApiError::auth("api_key_expired", "This API key has expired (rotated)."));
        }
        Ok(Principal { key: key.clone(), ip: ctx.ip, request_id: ctx.request_id.clone() })
    }

    /// Checks role permission, IP allowlist (secret keys) and the per-key rate limit.
    pub async fn authorize(&self, p: &Principal, permission: Permission) -> Result<(), ApiError> {
        let ctx = RequestCtx { ip: p.ip, request_id: p.request_id.clone() };
        if !keys::allows(p.key.kind, p.key.role, permission) {
            let mut e = self.event("permission.denied", "denied", &ctx, Some(&p.key));
            e.detail = json!({ "permission": permission.as_str(), "role": p.key.role.map(keys::Role::as_str) });
            self.audit(e);
            return Err(ApiError::forbidden(
                "insufficient_permissions",
                "This API key's role does not allow this operation.",
            ));
        }
        if p.key.kind == KeyKind::Secret {
            let require_entry = permission == Permission::Detokenize;
            if !p.key.ip_allowed(p.ip, require_entry) {
                let mut e = self.event("ip.denied", "denied", &ctx, Some(&p.key));
                e.detail = json!({ "permission": permission.as_str() });
                self.audit(e);
                let mut s = self.event("suspicious_activity", "denied", &ctx, Some(&p.key));
                s.detail = json!({ "reason": "key_used_from_non_allowlisted_ip" });
                tracing::warn!(target: "vault::audit", ip = %p.ip, key_id = %p.key.id, "suspicious activity: key used from a non-allowlisted IP");
                self.audit(s);
                crate::devspace::alert_non_allowlisted_use(self, &p.key, p.ip);
                return Err(ApiError::forbidden(
                    "ip_not_allowed",
                    "This API key may not be used from this IP address.",
                ));
            }
        }
        let bucket = match p.key.kind {
            KeyKind::Publishable => format!("{}|{}", p.key.id, keys::client_bucket(p.ip)),
            KeyKind::Secret => p.key.id.clone(),
        };
        let d = self.limit(&self.key_limiter, "key", &bucket, self.config.rate_per_key).await;
        if !d.allowed {
            let mut e = self.event("rate_limited", "denied", &ctx, Some(&p.key));
            e.detail = json!({ "limit": "key" });
            self.log_audit(&e);
            return Err(ApiError::rate_limited("rate_limited").with_headers(crate::api::rate_headers(&d)));
        }
        Ok(())
    }

    /// Charges a publishable key's shared bucket, after the request's card validated: invalid
    /// requests (garbage from an attacker) never reach it, so they cannot make real checkouts
    /// from other clients fail.
    pub async fn charge_shared(&self, p: &Principal) -> Result<(), ApiError> {
        let d = self.limit(&self.shared_limiter, "key_shared", &p.key.id, self.config.rate_per_key).await;
        if d.allowed {
            return Ok(());
        }
        let ctx = RequestCtx { ip: p.ip, request_id: p.request_id.clone() };
        let mut e = self.event("rate_limited", "denied", &ctx, Some(&p.key));
        e.detail = json!({ "limit": "key_shared" });
        self.log_audit(&e);
        Err(ApiError::rate_limited("rate_limited").with_headers(crate::api::rate_headers(&d)))
    }

    /// Claims an idempotency scope through the store (so across instances): `Ok(Ok(guard))` to
    /// process the request, `Ok(Err(record))` to replay a stored answer, `Err` 409 while another
    /// request with the scope is in flight anywhere.
    /// The guard of a scope this request has claimed (for claims made as part of a larger
    /// write, such as [`crate::store::Store::begin_payment`]).
    pub fn claimed(&self, scope: String) -> ClaimGuard {
        ClaimGuard { state: self.clone(), scope: Some(scope) }
    }

    pub async fn claim_idempotency(
        &self,
        scope: &str,
        body_hash: &str,
    ) -> Result<Result<ClaimGuard, crate::store::IdempotencyRecord>, ApiError> {
        let now = self.now();
        match self.store.claim_idempotency(scope, body_hash, now, now - IDEMPOTENCY_LEASE_SECS).await? {
            crate::store::Claim::Claimed => Ok(Ok(self.claimed(scope.to_owned()))),
            crate::store::Claim::Done(record) => Ok(Err(record)),
            crate::store::Claim::InFlight => Err(ApiError::idempotency_in_use()),
        }
    }

    /// Spawns the background tasks, each on its own schedule so none waits behind another:
    /// the CVC purge (at least every 60 s), the sweeper (expired tokens, idempotency records,
    /// idle rate-limit buckets), the re-encryption of rows under old data-key versions, and the
    /// key-cache refresher.
    pub fn spawn_background(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let every = |period: std::time::Duration, state: AppState, job: fn(AppState) -> BoxedJob| {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    job(state.clone()).await;
                }
            })
        };
        let mut tasks = Vec::new();
        if let Some(mut changes) = self.store.key_changes() {
            // Other instances' key changes (revocations, rotations, allowlists, data-key
            // versions) arrive as notifications: reload at once, coalescing bursts. The periodic
            // refresh below stays as the fallback.
            let state = self.clone();
            tasks.push(tokio::spawn(async move {
                while changes.recv().await.is_some() {
                    while changes.try_recv().is_ok() {}
                    if let Err(e) = state.refresh_keys().await {
                        tracing::error!(error = %e, "could not refresh keys after a change notification");
                    }
                }
            }));
        }
        tasks.extend([
            every(self.config.effective_cvc_purge_interval(), self.clone(), |s| {
                Box::pin(async move { s.purge_cvcs().await })
            }),
            every(self.config.sweep_interval, self.clone(), |s| Box::pin(async move { s.sweep().await })),
            every(self.config.sweep_interval, self.clone(), |s| Box::pin(async move { s.reencrypt().await })),
            every(self.config.refresh_interval, self.clone(), |s| {
                Box::pin(async move {
                    if let Err(e) = s.refresh_keys().await {
                        tracing::error!(error = %e, "could not refresh keys");
                    }
                })
            }),
            every(self.config.reconcile_interval, self.clone(), |s| {
                Box::pin(async move {
                    crate::api::payments::reconcile(&s).await;
                    crate::api::payments::reconcile_refunds(&s).await;
                })
            }),
            every(self.config.webhook_poll_interval, self.clone(), |s| {
                Box::pin(async move { crate::api::webhooks::deliver_due(&s).await })
            }),
        ]);
        if let Some(smtp) = &self.config.smtp {
            tasks.push(every(smtp.poll_interval, self.clone(), |s| {
                Box::pin(async move { crate::devspace::send_alert_emails(&s).await })
            }));
        }
        tasks
    }

    /// Destroys CVCs past their purge time (and truncates the WAL after any CVC destruction).
    pub async fn purge_cvcs(&self) {
        match self.store.purge_cvcs(self.now()).await {
            Ok(n) if n > 0 => tracing::info!(cvcs = n, "purged CVCs past their lifetime"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "CVC purge failed"),
        }
    }

    /// One sweep of expired tokens and idempotency records, and idle rate-limit buckets.
    pub async fn sweep(&self) {
        let now = self.now();
        match self.store.purge_expired(now, now - self.config.idempotency_ttl_secs).await {
            Ok(c) => {
                if c.tokens + c.idempotency > 0 {
                    tracing::info!(tokens = c.tokens, idempotency = c.idempotency, "sweeper purged expired data");
                }
            }
            Err(e) => tracing::error!(error = %e, "sweeper failed"),
        }
        // Dev Space sessions past their idle or absolute timeout, and expired one-time links.
        let (idle, absolute) = (devspace::session::IDLE_SECONDS, devspace::session::ABSOLUTE_SECONDS);
        if let Err(e) = self.store.devspace_purge(now - idle, now - absolute, now).await {
            tracing::error!(error = %e, "dev space sweep failed");
        }
        if let Err(e) = crate::devspace::unused_key_alerts(self, devspace::web::UNUSED_DAYS).await {
            tracing::error!(error = %e, "unused-key check failed");
        }
        self.key_limiter.prune();
        self.shared_limiter.prune();
        self.ip_limiter.prune();
    }

    /// Re-encrypts rows still under an old data-key version, then retires data-key versions
    /// nothing uses any more. Only the instance holding the `reencrypt` lease does it (each
    /// step is atomic, so a holder killed mid-pass leaves nothing half done; its lease expires).
    pub async fn reencrypt(&self) {
        let now = self.now();
        let ttl = i64::try_from(self.config.sweep_interval.as_secs()).unwrap_or(60).clamp(1, 3600) * 3;
        match self.store.try_lease("reencrypt", &self.instance_id, now, now + ttl).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not take the re-encryption lease");
                return;
            }
        }
        match crate::rotation::reencrypt_all(self.store.as_ref(), &self.keyring, 500, |_| {}).await {
            Ok(n) if n > 0 => tracing::info!(rows = n, "re-encrypted rows under the current data key"),
            Ok(_) => match crate::bootstrap::retire_data_keys(self.store.as_ref(), self.now()).await {
                Ok(retired) if !retired.is_empty() => {
                    tracing::info!(keys = retired.len(), "retired data-key versions no token uses");
                    if let Err(e) = self.keyring.refresh(self.store.as_ref()).await {
                        tracing::error!(error = %e, "could not refresh keys");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "data-key retirement failed"),
            },
            Err(e) => tracing::error!(error = %e, "background re-encryption failed"),
        }
    }
}

type BoxedJob = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
