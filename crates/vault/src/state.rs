//! Shared server state and the operations handlers build on: authentication, authorization,
//! auditing, idempotency bookkeeping and background tasks.

use std::collections::{HashMap, HashSet};
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
    /// Per-key limiter.
    pub key_limiter: RateLimiter,
    /// Per-IP limiter.
    pub ip_limiter: RateLimiter,
    /// Idempotency scopes being processed now.
    pub in_flight: Mutex<HashSet<String>>,
    /// Authentication failures per IP (suspicious-activity detection).
    auth_failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// Origins of the vault itself (set once the listener is bound).
    pub public_origins: RwLock<Vec<String>>,
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

/// Removes an idempotency scope from the in-flight set when dropped (also on cancellation).
#[derive(Debug)]
pub struct InFlightGuard {
    state: AppState,
    scope: String,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Ok(mut set) = self.state.in_flight.lock() {
            set.remove(&self.scope);
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
        let api_keys = ApiKeyCache::default();
        api_keys.refresh(store.as_ref(), clock.now()).await?;
        let state = Self(Arc::new(Inner {
            key_limiter: RateLimiter::new(config.rate_per_key),
            ip_limiter: RateLimiter::new(config.rate_per_ip),
            public_origins: RwLock::new(config.public_origins.clone()),
            store,
            master,
            keyring,
            api_keys,
            clock,
            config,
            in_flight: Mutex::new(HashSet::new()),
            auth_failures: Mutex::new(HashMap::new()),
        }));
        Ok(state)
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
        let threshold = self.config.suspicious_auth_failures;
        let raise = match self.auth_failures.lock() {
            Ok(mut map) => {
                let now = Instant::now();
                if map.len() > 100_000 {
                    map.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
                }
                let entry = map.entry(ctx.ip).or_insert((now, 0));
                if now.duration_since(entry.0) >= Duration::from_secs(60) {
                    *entry = (now, 0);
                }
                entry.1 += 1;
                entry.1 == threshold
            }
            Err(_) => false,
        };
        if raise {
            let mut e = self.event("suspicious_activity", "denied", ctx, key);
            e.detail =
                json!({ "reason": "repeated_authentication_failures", "failures": threshold, "window_secs": 60 });
            tracing::warn!(target: "vault::audit", ip = %ctx.ip, "suspicious activity: repeated authentication failures");
            self.audit(e);
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
    pub fn authorize(&self, p: &Principal, permission: Permission) -> Result<(), ApiError> {
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
                return Err(ApiError::forbidden(
                    "ip_not_allowed",
                    "This API key may not be used from this IP address.",
                ));
            }
        }
        let d = self.key_limiter.check(&p.key.id);
        if !d.allowed {
            let mut e = self.event("rate_limited", "denied", &ctx, Some(&p.key));
            e.detail = json!({ "limit": "key" });
            self.log_audit(&e);
            return Err(ApiError::rate_limited("rate_limited").with_headers(crate::api::rate_headers(&d)));
        }
        Ok(())
    }

    /// Marks an idempotency scope in flight; `None` if it already is.
    pub fn begin_in_flight(&self, scope: &str) -> Option<InFlightGuard> {
        let mut set = self.in_flight.lock().ok()?;
        if !set.insert(scope.to_owned()) {
            return None;
        }
        Some(InFlightGuard { state: self.clone(), scope: scope.to_owned() })
    }

    /// Spawns the sweeper (expired tokens, CVCs, idempotency records, rate-limit buckets),
    /// the key-cache refresher and the background re-encryption of rows under old key versions.
    pub fn spawn_background(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let sweeper = {
            let state = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(state.config.sweep_interval);
                loop {
                    tick.tick().await;
                    state.sweep().await;
                }
            })
        };
        let refresher = {
            let state = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(state.config.refresh_interval);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if let Err(e) = state.refresh_keys().await {
                        tracing::error!(error = %e, "could not refresh keys");
                    }
                }
            })
        };
        vec![sweeper, refresher]
    }

    /// One sweep.
    pub async fn sweep(&self) {
        let now = self.now();
        match self.store.purge_expired(now, now - self.config.idempotency_ttl_secs).await {
            Ok(c) => {
                if c.tokens + c.cvcs + c.idempotency > 0 {
                    tracing::info!(
                        tokens = c.tokens,
                        cvcs = c.cvcs,
                        idempotency = c.idempotency,
                        "sweeper purged expired data"
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "sweeper failed"),
        }
        self.key_limiter.prune();
        self.ip_limiter.prune();
        match crate::rotation::reencrypt_all(self.store.as_ref(), &self.keyring, 500, |_| {}).await {
            Ok(n) if n > 0 => tracing::info!(rows = n, "re-encrypted rows under the current data key"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "background re-encryption failed"),
        }
    }
}
