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
];

/// The schema version this binary writes and understands.
pub fn latest() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}
