//! Runtime settings of the HTTP service.

use std::path::PathBuf;
use std::time::Duration;

use crate::ratelimit::Rate;

/// The CVC purge runs at least this often (PCI DSS 3.3.1: with the 59-minute CVC lifetime, no
/// CVC outlives one hour).
pub const MAX_CVC_PURGE_INTERVAL: Duration = Duration::from_secs(60);

impl Config {
    /// The CVC purge interval actually used: the configured one, at most 60 s.
    pub fn effective_cvc_purge_interval(&self) -> Duration {
        self.cvc_purge_interval.min(MAX_CVC_PURGE_INTERVAL).max(Duration::from_millis(10))
    }
}

/// Settings of a running vault.
#[derive(Debug, Clone)]
pub struct Config {
    /// Token lifetime (24 h).
    pub token_ttl_secs: i64,
    /// CVC lifetime if never detokenized. 59 minutes by default, so that with the default 60 s
    /// sweep interval the ciphertext is destroyed within 1 hour (PCI DSS 3.3.1).
    pub cvc_ttl_secs: i64,
    /// How long idempotency records are kept (24 h).
    pub idempotency_ttl_secs: i64,
    /// Maximum request body size.
    pub body_limit: usize,
    /// Time allowed to receive a request body.
    pub body_timeout: Duration,
    /// Time allowed to receive request headers (also the keep-alive idle limit).
    pub header_timeout: Duration,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Most connections open at once; more are closed as soon as accepted.
    pub max_connections: usize,
    /// Most connections open at once from one client address (IPv6: one /64).
    pub max_connections_per_client: usize,
    /// Per-API-key limit.
    pub rate_per_key: Rate,
    /// Per-client-IP limit.
    pub rate_per_ip: Rate,
    /// How often the sweeper deletes expired tokens and idempotency records and re-encrypts
    /// rows under old data-key versions.
    pub sweep_interval: Duration,
    /// How often CVCs past their purge time are destroyed. Runs on its own task, never behind
    /// the sweeper or re-encryption, and is capped at [`MAX_CVC_PURGE_INTERVAL`] whatever is
    /// configured.
    pub cvc_purge_interval: Duration,
    /// Most rate-limit buckets (per limiter) and authentication-failure counters kept in memory.
    pub limiter_capacity: usize,
    /// Longest single request header value accepted (longer: 431).
    pub max_header_bytes: usize,
    /// Redis URL for rate limits shared by every instance; `None`: per-instance limits.
    pub redis_url: Option<String>,
    /// Prefix of this vault's Redis keys.
    pub redis_prefix: String,
    /// How often key caches are reloaded from storage (changes made by the CLI).
    pub refresh_interval: Duration,
    /// Authentication failures from one IP within a minute that raise a suspicious-activity event.
    pub suspicious_auth_failures: u32,
    /// Directory with the frame build (index.html, loader.js, …).
    pub frame_dir: Option<PathBuf>,
    /// Origins under which the vault itself is reachable (the frame runs there).
    pub public_origins: Vec<String>,
    /// How often payments whose processor answer was lost (`processing`) are reconciled by
    /// asking the processor.
    pub reconcile_interval: Duration,
    /// A payment is reconciled only once it has been `processing` this long (its request may
    /// still be waiting for the processor).
    pub reconcile_after_secs: i64,
    /// How often the webhook worker looks for due deliveries.
    pub webhook_poll_interval: Duration,
    /// First retry delay of a failed delivery; it doubles per attempt (with jitter) up to
    /// 6 hours, and retries stop 3 days after the event.
    pub webhook_backoff_base: Duration,
    /// Time allowed for a delivery (connect to the end of the answer).
    pub webhook_timeout: Duration,
    /// Certificates (DER) that test-mode deliveries trust besides the public web PKI: the CA
    /// of a development receiver served over https on this machine (`--webhook-test-ca`).
    /// Live-mode deliveries never trust them.
    pub webhook_test_roots: Vec<Vec<u8>>,
    /// Where Dev Space listens (TLS, its own origin); `None`: not served.
    pub devspace_listen: Option<std::net::SocketAddr>,
    /// Security alerts by email (`--smtp-url`); `None`: not emailed.
    pub smtp: Option<SmtpSettings>,
    /// A key's detokenize calls within one window above this raise `detokenize.volume` (once
    /// per key and window); 0 turns the alert off.
    pub detokenize_alert_threshold: u64,
    /// The window of [`Config::detokenize_alert_threshold`], in seconds.
    pub detokenize_alert_window_secs: i64,
}

/// Where and how security alerts are emailed.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// The server.
    pub target: crate::smtp::SmtpTarget,
    /// Sender address.
    pub from: String,
    /// How often the email outbox is looked at.
    pub poll_interval: Duration,
    /// Delay before a failed email is tried again.
    pub retry_after: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            token_ttl_secs: 24 * 3600,
            cvc_ttl_secs: 3540,
            idempotency_ttl_secs: 24 * 3600,
            body_limit: 8 * 1024,
            body_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_connections_per_client: 256,
            rate_per_key: Rate { per_second: 100.0, burst: 200.0 },
            rate_per_ip: Rate { per_second: 50.0, burst: 100.0 },
            sweep_interval: Duration::from_secs(60),
            cvc_purge_interval: MAX_CVC_PURGE_INTERVAL,
            limiter_capacity: 100_000,
            max_header_bytes: 8 * 1024,
            redis_url: None,
            redis_prefix: "vault:rl".to_owned(),
            refresh_interval: Duration::from_secs(2),
            suspicious_auth_failures: 5,
            frame_dir: None,
            public_origins: Vec::new(),
            reconcile_interval: Duration::from_secs(30),
            reconcile_after_secs: 60,
            webhook_poll_interval: Duration::from_millis(250),
            webhook_backoff_base: Duration::from_secs(30),
            webhook_timeout: Duration::from_secs(10),
            webhook_test_roots: Vec::new(),
            devspace_listen: None,
            smtp: None,
            detokenize_alert_threshold: 1000,
            detokenize_alert_window_secs: 3600,
        }
    }
}
