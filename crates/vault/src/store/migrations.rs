//! The numbered schema migrations of both engines, in one place: migration N of SQLite and
//! migration N of Postgres make the same change. Each store applies the ones its database has
//! not seen, in order, at start-up (and `vault migrate` applies them explicitly), and refuses a
//! database whose version is newer than this list ([`super::StoreError::SchemaTooNew`]).

/// One schema change, written for each engine.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// What it does.
    pub name: &'static str,
    /// SQLite statements.
    pub sqlite: &'static str,
    /// Postgres statements.
    pub postgres: &'static str,
}

/// Every migration; the schema version is the number applied (index + 1).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "initial schema",
        sqlite: r"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE merchants (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created INTEGER NOT NULL);
    CREATE TABLE wrapped_keys (
        merchant_id TEXT NOT NULL REFERENCES merchants(id),
        mode TEXT NOT NULL, purpose TEXT NOT NULL, version INTEGER NOT NULL,
        wrapped BLOB NOT NULL, created INTEGER NOT NULL,
        PRIMARY KEY (merchant_id, mode, purpose, version));
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL REFERENCES merchants(id),
        kind TEXT NOT NULL, mode TEXT NOT NULL, role TEXT, hash BLOB NOT NULL UNIQUE,
        prefix TEXT NOT NULL, label TEXT NOT NULL, created INTEGER NOT NULL,
        expires_at INTEGER, revoked_at INTEGER,
        allowed_origins TEXT NOT NULL, ip_allowlist TEXT NOT NULL);
    CREATE TABLE tokens (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
        merchant_id TEXT NOT NULL, mode TEXT NOT NULL,
        brand TEXT NOT NULL, last4 TEXT NOT NULL, exp_month INTEGER NOT NULL, exp_year INTEGER NOT NULL,
        fingerprint TEXT NOT NULL, key_version INTEGER NOT NULL,
        card_ct BLOB NOT NULL, cvc_ct BLOB, cvc_expires_at INTEGER,
        created INTEGER NOT NULL, expires_at INTEGER NOT NULL);
    CREATE INDEX tokens_expires ON tokens (expires_at);
    CREATE INDEX tokens_cvc_expires ON tokens (cvc_expires_at) WHERE cvc_ct IS NOT NULL;
    CREATE TABLE idempotency (
        scope TEXT PRIMARY KEY, body_hash TEXT NOT NULL, status INTEGER NOT NULL,
        response TEXT NOT NULL, created INTEGER NOT NULL);
    CREATE INDEX idempotency_created ON idempotency (created);
    CREATE TABLE audit_events (
        id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, event TEXT NOT NULL, outcome TEXT NOT NULL,
        merchant_id TEXT, mode TEXT, key_id TEXT, ip TEXT, request_id TEXT, detail TEXT NOT NULL);
    CREATE INDEX audit_merchant ON audit_events (merchant_id, id);
    ",
        postgres: r"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE merchants (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created BIGINT NOT NULL);
    CREATE TABLE wrapped_keys (
        merchant_id TEXT NOT NULL REFERENCES merchants(id),
        mode TEXT NOT NULL, purpose TEXT NOT NULL, version BIGINT NOT NULL,
        wrapped BYTEA NOT NULL, created BIGINT NOT NULL,
        PRIMARY KEY (merchant_id, mode, purpose, version));
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL REFERENCES merchants(id),
        kind TEXT NOT NULL, mode TEXT NOT NULL, role TEXT, hash BYTEA NOT NULL UNIQUE,
        prefix TEXT NOT NULL, label TEXT NOT NULL, created BIGINT NOT NULL,
        expires_at BIGINT, revoked_at BIGINT,
        allowed_origins TEXT NOT NULL, ip_allowlist TEXT NOT NULL);
    CREATE TABLE tokens (
        seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE,
        merchant_id TEXT NOT NULL, mode TEXT NOT NULL,
        brand TEXT NOT NULL, last4 TEXT NOT NULL, exp_month BIGINT NOT NULL, exp_year BIGINT NOT NULL,
        fingerprint TEXT NOT NULL, key_version BIGINT NOT NULL,
        card_ct BYTEA NOT NULL, cvc_ct BYTEA, cvc_expires_at BIGINT,
        created BIGINT NOT NULL, expires_at BIGINT NOT NULL);
    CREATE INDEX tokens_expires ON tokens (expires_at);
    CREATE INDEX tokens_cvc_expires ON tokens (cvc_expires_at) WHERE cvc_ct IS NOT NULL;
    CREATE INDEX tokens_version ON tokens (merchant_id, mode, key_version);
    CREATE TABLE idempotency (
        scope TEXT PRIMARY KEY, body_hash TEXT NOT NULL, status BIGINT NOT NULL,
        response TEXT NOT NULL, created BIGINT NOT NULL);
    CREATE INDEX idempotency_created ON idempotency (created);
    CREATE TABLE audit_events (
        id BIGSERIAL PRIMARY KEY, ts BIGINT NOT NULL, event TEXT NOT NULL, outcome TEXT NOT NULL,
        merchant_id TEXT, mode TEXT, key_id TEXT, ip TEXT, request_id TEXT, detail TEXT NOT NULL);
    CREATE INDEX audit_merchant ON audit_events (merchant_id, id);
    ",
    },
    Migration {
        // Idempotency scopes became keyed hashes of the Idempotency-Key: drop the records that
        // stored the header verbatim (a card number sent there would sit on disk for 24 h).
        name: "idempotency scopes hashed",
        sqlite: "DELETE FROM idempotency;",
        postgres: "DELETE FROM idempotency;",
    },
    Migration {
        // One holder at a time for cluster-wide background jobs (re-encryption, retirement).
        name: "job leases",
        sqlite: "CREATE TABLE leases (job TEXT PRIMARY KEY, holder TEXT NOT NULL, until INTEGER NOT NULL);",
        postgres: "CREATE TABLE leases (job TEXT PRIMARY KEY, holder TEXT NOT NULL, until BIGINT NOT NULL);",
    },
    Migration {
        // Payments, refunds, the event outbox (an event row commits with the change it
        // describes), webhook endpoints with their encrypted secrets, and claimable deliveries
        // (a lease: a dead instance's claim expires) with every attempt recorded.
        name: "payments, refunds, events and webhook deliveries",
        sqlite: r"
    CREATE TABLE payments (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, merchant_id TEXT NOT NULL, mode TEXT NOT NULL,
        status TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL,
        amount_capturable INTEGER NOT NULL, amount_captured INTEGER NOT NULL,
        amount_refunded INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL, data TEXT NOT NULL,
        CHECK (amount_refunded >= 0 AND amount_refunded <= amount_captured));
    CREATE INDEX payments_merchant ON payments (merchant_id, mode, seq);
    CREATE INDEX payments_processing ON payments (seq) WHERE status = 'processing';
    CREATE TABLE refunds (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, payment_id TEXT NOT NULL REFERENCES payments(id),
        merchant_id TEXT NOT NULL, mode TEXT NOT NULL, amount INTEGER NOT NULL CHECK (amount > 0),
        status TEXT NOT NULL, created INTEGER NOT NULL, data TEXT NOT NULL);
    CREATE INDEX refunds_merchant ON refunds (merchant_id, mode, seq);
    CREATE INDEX refunds_payment ON refunds (payment_id);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, merchant_id TEXT NOT NULL, mode TEXT NOT NULL,
        type TEXT NOT NULL, created INTEGER NOT NULL, body TEXT NOT NULL);
    CREATE INDEX events_merchant ON events (merchant_id, mode, seq);
    CREATE TABLE webhook_endpoints (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, merchant_id TEXT NOT NULL, mode TEXT NOT NULL,
        url TEXT NOT NULL, enabled_events TEXT NOT NULL, status TEXT NOT NULL, description TEXT,
        created INTEGER NOT NULL, failing_since INTEGER);
    CREATE INDEX webhook_endpoints_merchant ON webhook_endpoints (merchant_id, mode, status);
    CREATE TABLE webhook_secrets (
        endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id), version INTEGER NOT NULL,
        secret_ct BLOB NOT NULL, created INTEGER NOT NULL, expires_at INTEGER,
        PRIMARY KEY (endpoint_id, version));
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY, event_id TEXT NOT NULL REFERENCES events(id),
        endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id), status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, lease_holder TEXT, lease_until INTEGER,
        created INTEGER NOT NULL);
    CREATE INDEX deliveries_due ON deliveries (next_at) WHERE status = 'pending';
    CREATE TABLE delivery_attempts (
        id INTEGER PRIMARY KEY, delivery_id INTEGER NOT NULL, event_id TEXT NOT NULL, endpoint_id TEXT NOT NULL,
        status_code INTEGER, latency_ms INTEGER NOT NULL, error_class TEXT, response_body TEXT NOT NULL,
        created INTEGER NOT NULL);
    CREATE INDEX delivery_attempts_event ON delivery_attempts (event_id, id);
    ",
        postgres: r"
    CREATE TABLE payments (
        seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, merchant_id TEXT NOT NULL, mode TEXT NOT NULL,
        status TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL,
        amount_capturable BIGINT NOT NULL, amount_captured BIGINT NOT NULL,
        amount_refunded BIGINT NOT NULL DEFAULT 0, created BIGINT NOT NULL, data TEXT NOT NULL,
        CHECK (amount_refunded >= 0 AND amount_refunded <= amount_captured));
    CREATE INDEX payments_merchant ON payments (merchant_id, mode, seq);
    CREATE INDEX payments_processing ON payments (seq) WHERE status = 'processing';
    CREATE TABLE refunds (
        seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, payment_id TEXT NOT NULL REFERENCES payments(id),
        merchant_id TEXT NOT NULL, mode TEXT NOT NULL, amount BIGINT NOT NULL CHECK (amount > 0),
        status TEXT NOT NULL, created BIGINT NOT NULL, data TEXT NOT NULL);
    CREATE INDEX refunds_merchant ON refunds (merchant_id, mode, seq);
    CREATE INDEX refunds_payment ON refunds (payment_id);
    CREATE TABLE events (
        seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, merchant_id TEXT NOT NULL, mode TEXT NOT NULL,
        type TEXT NOT NULL, created BIGINT NOT NULL, body TEXT NOT NULL);
    CREATE INDEX events_merchant ON events (merchant_id, mode, seq);
    CREATE TABLE webhook_endpoints (
        seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, merchant_id TEXT NOT NULL, mode TEXT NOT NULL,
        url TEXT NOT NULL, enabled_events TEXT NOT NULL, status TEXT NOT NULL, description TEXT,
        created BIGINT NOT NULL, failing_since BIGINT);
    CREATE INDEX webhook_endpoints_merchant ON webhook_endpoints (merchant_id, mode, status);
    CREATE TABLE webhook_secrets (
        endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id), version BIGINT NOT NULL,
        secret_ct BYTEA NOT NULL, created BIGINT NOT NULL, expires_at BIGINT,
        PRIMARY KEY (endpoint_id, version));
    CREATE TABLE deliveries (
        id BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL REFERENCES events(id),
        endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id), status TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0, next_at BIGINT NOT NULL, lease_holder TEXT, lease_until BIGINT,
        created BIGINT NOT NULL);
    CREATE INDEX deliveries_due ON deliveries (next_at) WHERE status = 'pending';
    CREATE TABLE delivery_attempts (
        id BIGSERIAL PRIMARY KEY, delivery_id BIGINT NOT NULL, event_id TEXT NOT NULL, endpoint_id TEXT NOT NULL,
        status_code BIGINT, latency_ms BIGINT NOT NULL, error_class TEXT, response_body TEXT NOT NULL,
        created BIGINT NOT NULL);
    CREATE INDEX delivery_attempts_event ON delivery_attempts (event_id, id);
    ",
    },
    Migration {
        name: "refunds left processing, for the refund reconciler",
        sqlite: r"
    CREATE INDEX refunds_processing ON refunds (seq) WHERE status = 'processing';
    ",
        postgres: r"
    CREATE INDEX refunds_processing ON refunds (seq) WHERE status = 'processing';
    ",
    },
    Migration {
        // Dev Space (issue 10): its users (password hash, sealed TOTP secret, last TOTP step,
        // recovery-code hashes), sessions and one-time links stored by hash only, and security
        // alerts; an index for the audit log's per-key filter and "last used".
        name: "dev space users, sessions, links and alerts",
        sqlite: r"
    CREATE TABLE devspace_users (
        id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL REFERENCES merchants(id), email TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL, password_hash TEXT, totp_sealed BLOB, totp_enrolled INTEGER NOT NULL DEFAULT 0,
        totp_last_step INTEGER NOT NULL DEFAULT 0, recovery_hashes TEXT NOT NULL, known_ips TEXT NOT NULL,
        failed_signins INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL, version INTEGER NOT NULL);
    CREATE INDEX devspace_users_merchant ON devspace_users (merchant_id);
    CREATE TABLE devspace_sessions (
        hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES devspace_users(id), stage TEXT NOT NULL,
        created INTEGER NOT NULL, last_seen INTEGER NOT NULL, reauth_at INTEGER, ip TEXT NOT NULL);
    CREATE INDEX devspace_sessions_user ON devspace_sessions (user_id);
    CREATE INDEX devspace_sessions_seen ON devspace_sessions (last_seen);
    CREATE TABLE devspace_links (
        hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES devspace_users(id), purpose TEXT NOT NULL,
        created INTEGER NOT NULL, expires_at INTEGER NOT NULL);
    CREATE TABLE devspace_alerts (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, merchant_id TEXT NOT NULL, ts INTEGER NOT NULL,
        kind TEXT NOT NULL, message TEXT NOT NULL, detail TEXT NOT NULL);
    CREATE INDEX devspace_alerts_merchant ON devspace_alerts (merchant_id, seq);
    CREATE INDEX audit_merchant_key ON audit_events (merchant_id, key_id, id);
    ",
        postgres: r"
    CREATE TABLE devspace_users (
        id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL REFERENCES merchants(id), email TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL, password_hash TEXT, totp_sealed BYTEA, totp_enrolled BIGINT NOT NULL DEFAULT 0,
        totp_last_step BIGINT NOT NULL DEFAULT 0, recovery_hashes TEXT NOT NULL, known_ips TEXT NOT NULL,
        failed_signins BIGINT NOT NULL DEFAULT 0, created BIGINT NOT NULL, version BIGINT NOT NULL);
    CREATE INDEX devspace_users_merchant ON devspace_users (merchant_id);
    CREATE TABLE devspace_sessions (
        hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES devspace_users(id), stage TEXT NOT NULL,
        created BIGINT NOT NULL, last_seen BIGINT NOT NULL, reauth_at BIGINT, ip TEXT NOT NULL);
    CREATE INDEX devspace_sessions_user ON devspace_sessions (user_id);
    CREATE INDEX devspace_sessions_seen ON devspace_sessions (last_seen);
    CREATE TABLE devspace_links (
        hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES devspace_users(id), purpose TEXT NOT NULL,
        created BIGINT NOT NULL, expires_at BIGINT NOT NULL);
    CREATE TABLE devspace_alerts (
        seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, merchant_id TEXT NOT NULL, ts BIGINT NOT NULL,
        kind TEXT NOT NULL, message TEXT NOT NULL, detail TEXT NOT NULL);
    CREATE INDEX devspace_alerts_merchant ON devspace_alerts (merchant_id, seq);
    CREATE INDEX audit_merchant_key ON audit_events (merchant_id, key_id, id);
    ",
    },
    Migration {
        // Dev Space, second part: devices a user signed in from (SHA-256 of the device cookie,
        // keyed by the user id; "new device" alerts), the email outbox of alerts (pending,
        // attempts, next attempt: claimed like webhook deliveries, so one instance sends each),
        // windowed counters every instance shares (detokenize volume per key and window), and an
        // index for the tokens page (a merchant's tokens of one mode, newest first).
        name: "dev space devices, alert emails and the tokens index",
        sqlite: r"
    CREATE TABLE devspace_devices (
        user_id TEXT NOT NULL, hash TEXT NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
        PRIMARY KEY (user_id, hash));
    ALTER TABLE devspace_alerts ADD COLUMN email_pending INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE devspace_alerts ADD COLUMN email_attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE devspace_alerts ADD COLUMN email_next INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX devspace_alerts_email ON devspace_alerts (email_next) WHERE email_pending = 1;
    CREATE TABLE devspace_counters (name TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_at INTEGER NOT NULL);
    CREATE INDEX tokens_merchant ON tokens (merchant_id, mode, seq);
    ",
        postgres: r"
    CREATE TABLE devspace_devices (
        user_id TEXT NOT NULL, hash TEXT NOT NULL, first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL,
        PRIMARY KEY (user_id, hash));
    ALTER TABLE devspace_alerts ADD COLUMN email_pending BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE devspace_alerts ADD COLUMN email_attempts BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE devspace_alerts ADD COLUMN email_next BIGINT NOT NULL DEFAULT 0;
    CREATE INDEX devspace_alerts_email ON devspace_alerts (email_next) WHERE email_pending = 1;
    CREATE TABLE devspace_counters (name TEXT PRIMARY KEY, count BIGINT NOT NULL, expires_at BIGINT NOT NULL);
    CREATE INDEX tokens_merchant ON tokens (merchant_id, mode, seq);
    ",
    },
    Migration {
        // Web fonts merchants register for the card frame (issue 12): checked WOFF2 bytes
        // (≤ 256 KiB) with their face (family, weight, style; one per face per merchant and
        // mode) and a content hash, which names the file the vault serves at
        // `/v1/frame/fonts/<hash>.woff2` (looked up by hash).
        name: "web fonts",
        sqlite: r"
    CREATE TABLE fonts (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, merchant_id TEXT NOT NULL, mode TEXT NOT NULL,
        family TEXT NOT NULL, weight INTEGER NOT NULL, style TEXT NOT NULL, hash TEXT NOT NULL,
        size INTEGER NOT NULL, data BLOB NOT NULL, created INTEGER NOT NULL,
        UNIQUE (merchant_id, mode, family, weight, style));
    CREATE INDEX fonts_hash ON fonts (hash);
    ",
        postgres: r"
    CREATE TABLE fonts (
        seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, merchant_id TEXT NOT NULL, mode TEXT NOT NULL,
        family TEXT NOT NULL, weight BIGINT NOT NULL, style TEXT NOT NULL, hash TEXT NOT NULL,
        size BIGINT NOT NULL, data BYTEA NOT NULL, created BIGINT NOT NULL,
        UNIQUE (merchant_id, mode, family, weight, style));
    CREATE INDEX fonts_hash ON fonts (hash);
    ",
    },
];

/// The schema version this binary writes and understands.
pub fn latest() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}
