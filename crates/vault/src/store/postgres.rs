//! Postgres implementation of [`Store`], for N vault instances sharing one database.
//!
//! - `tokio-postgres` with a `deadpool` connection pool (small, async, no compile-time query
//!   checking to set up; the queries are few and covered by the shared conformance suite).
//! - Every write that must be atomic is one transaction; `synchronous_commit` stays `on`, so
//!   a future resolves only after the commit is durable.
//! - Cross-instance semantics come from the database, not from process memory: the
//!   idempotency record is inserted with `ON CONFLICT DO NOTHING` in the token's transaction,
//!   a CVC is destroyed by a conditional `UPDATE … WHERE cvc_ct IS NOT NULL` whose row lock
//!   lets exactly one instance win, and re-encryption updates only rows still at the old
//!   version.
//! - Token inserts without an Idempotency-Key are group-committed: concurrent requests queue
//!   for a writer that inserts up to [`MAX_BATCH`] tokens and their audit rows in ONE statement
//!   (one round trip, one durable commit), with at most [`WRITE_BATCHES`] batches in flight;
//!   while they are busy the queue grows, so the batch size follows the load. Each request's
//!   future still resolves only after its rows are durable. A batch that fails for a reason
//!   other than the database being unreachable is retried row by row, so one bad row fails
//!   only its own request.
//! - Migrations ([`super::migrations`]) run under a transaction-scoped advisory lock, so
//!   instances starting together apply each one exactly once.

use std::str::FromStr as _;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use ipnet::IpNet;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::devspace::{RawUser, SESSION_COLUMNS, USER_COLUMNS, purpose, session_fields, stage};
use super::fonts::{FONT_COLUMNS, FontRecord};
use super::payments::{events_column, events_of_column};
use super::{
    AlertRecord, AttemptRecord, AuditEvent, AuditFilter, CipherRow, Claim, CreateOutcome, DeliveryJob, DeliveryNext,
    EventRecord, IdempotencyRecord, KeyPurpose, LinkRecord, ListFilter, MerchantRecord, PaymentRecord, PaymentStart,
    PurgeCounts, RefundRecord, RefundReservation, SessionRecord, Store, StoreError, StoreFuture, TokenRecord,
    UserRecord, WebhookEndpointRecord, WebhookSecretRecord, WrappedKeyRecord,
};
use crate::clock::UnixSeconds;
use crate::keys::{ApiKeyRecord, KeyKind, Mode, Role};

/// Advisory-lock key serialising migrations across instances ("vaultmig").
const MIGRATION_LOCK: i64 = 0x7661_756c_746d_6967;

/// The channel key changes are announced on (`NOTIFY vault_keys`, sent in the changing
/// transaction, so it is delivered exactly when the change commits).
const KEY_CHANNEL: &str = "vault_keys";

/// The most tokens one group-commit statement inserts.
const MAX_BATCH: usize = 512;

/// Group-commit statements in flight at once (each holds one pool connection).
const WRITE_BATCHES: usize = 4;

/// One queued token insert and the request waiting for it.
struct PendingToken {
    token: TokenRecord,
    audit: AuditEvent,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// The Postgres store.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// The webhook worker's own connections ([`DELIVERY_CONNECTIONS`]): its claims and records
    /// never queue behind the API's requests for a pooled connection (under load they did,
    /// and deliveries fell seconds behind the payments).
    deliveries: Pool,
    url: String,
    writer: tokio::sync::mpsc::Sender<PendingToken>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresStore")
    }
}

/// Connections of the webhook worker's own pool (besides `--database-pool-size`).
pub const DELIVERY_CONNECTIONS: usize = 4;

/// Keys per statement of [`Store::key_last_uses`] (one branch and one parameter each).
const LAST_USE_KEYS_PER_STATEMENT: usize = 100;

fn pg_err(e: &tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        return StoreError::Conflict;
    }
    match e.as_db_error() {
        // The server is shutting down, restarting or not accepting connections yet (class 08
        // connection exceptions; 57P01-57P03 `admin_shutdown`, `crash_shutdown`,
        // `cannot_connect_now`, as in `pg_ctl restart`): a condition of the moment.
        Some(db) if is_transient(db.code()) => {
            StoreError::Unavailable(format!("{}: {}", db.code().code(), db.message()))
        }
        Some(db) => StoreError::Database(format!("{}: {}", db.code().code(), db.message())),
        None => StoreError::Unavailable(e.to_string()),
    }
}

/// How long one request-path storage operation (pool wait included) may take. A database that
/// is paused, or whose host is gone, answers nothing at all rather than refusing: without a
/// bound the request would hang until it came back. Past it the operation counts as the
/// database being unavailable (`503` with `Retry-After`). Healthy operations take milliseconds.
pub const OP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The same bound for maintenance work that may touch many rows (purges, re-encryption,
/// master-key rotation).
pub const MAINTENANCE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// `op` as a [`StoreFuture`] that gives up after `limit` with [`StoreError::Unavailable`]. An
/// operation given up on may still complete on the server (a commit already sent): callers
/// only ever learn of success from an `Ok`, so nothing is acknowledged that was not committed.
fn bounded<T: Send + 'static>(
    limit: std::time::Duration,
    op: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> StoreFuture<T> {
    Box::pin(async move {
        tokio::time::timeout(limit, op)
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the database did not answer in time".into())))
    })
}

/// Whether `code` says the database is unavailable for now rather than that the statement failed.
fn is_transient(code: &SqlState) -> bool {
    code.code().starts_with("08")
        || [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW].contains(code)
}

fn pool_err(e: &deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn i64_of(v: u32) -> i64 {
    i64::from(v)
}

fn u32_of(v: i64, what: &'static str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(what))
}

fn mode_of(s: &str) -> Result<Mode, StoreError> {
    Mode::parse(s).ok_or(StoreError::Corrupt("mode"))
}

fn json_list<T: ToString>(items: &[T]) -> String {
    serde_json::to_string(&items.iter().map(ToString::to_string).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".to_owned())
}

impl PostgresStore {
    /// Connects (a pool of at most `max_connections`) to `url` and applies migrations.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the database cannot be reached, [`StoreError::SchemaTooNew`]
    /// if it was migrated by a newer binary.
    pub async fn connect(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|_| StoreError::Database("the database URL is not a valid postgres:// URL".into()))?;
        let build = |config: tokio_postgres::Config, size: usize| {
            let manager =
                Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
            Pool::builder(manager).max_size(size).build().map_err(|e| StoreError::Database(e.to_string()))
        };
        let pool = build(config.clone(), max_connections.max(1))?;
        let deliveries = build(config, DELIVERY_CONNECTIONS)?;
        let (writer, queue) = tokio::sync::mpsc::channel(MAX_BATCH * WRITE_BATCHES * 2);
        tokio::spawn(token_writer(pool.clone(), queue));
        let store = Self { pool, deliveries, url: url.to_owned(), writer };
        store.migrate().await?;
        Ok(store)
    }

    /// Listens on [`KEY_CHANNEL`] on a dedicated connection (reconnecting with a back-off when
    /// it drops) and forwards every notification, and a signal after each reconnection (changes
    /// may have been missed meanwhile), to the returned receiver.
    fn listen(url: String) -> tokio::sync::mpsc::Receiver<()> {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let mut backoff = std::time::Duration::from_millis(100);
            loop {
                match tokio_postgres::connect(&url, NoTls).await {
                    Ok((client, mut connection)) => {
                        backoff = std::time::Duration::from_millis(100);
                        let listen_sql = format!("LISTEN {KEY_CHANNEL}");
                        let listen = client.batch_execute(&listen_sql);
                        let pump = async {
                            loop {
                                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                                    Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                                        if tx.send(()).await.is_err() {
                                            return true;
                                        }
                                    }
                                    Some(Ok(_)) => {}
                                    Some(Err(e)) => {
                                        tracing::warn!(error = %e, "key-change listener lost its connection");
                                        return false;
                                    }
                                    None => return false,
                                }
                            }
                        };
                        tokio::pin!(pump);
                        tokio::select! {
                            done = &mut pump => if done { return },
                            listened = listen => {
                                if let Err(e) = listened {
                                    tracing::warn!(error = %e, "LISTEN failed");
                                } else if tx.send(()).await.is_err() {
                                    return;
                                }
                                if pump.await {
                                    return;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "key-change listener cannot connect"),
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
            }
        });
        rx
    }

    /// Applies the migrations this database has not seen, each in its own transaction under a
    /// transaction-scoped advisory lock. Returns the schema version.
    ///
    /// # Errors
    /// As [`PostgresStore::connect`].
    pub async fn migrate(&self) -> Result<i64, StoreError> {
        let mut client = self.pool.get().await.map_err(|e| pool_err(&e))?;
        loop {
            let tx = client.transaction().await.map_err(|e| pg_err(&e))?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(|e| pg_err(&e))?;
            tx.batch_execute(
                "SET LOCAL client_min_messages = warning;
                 CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL, applied BIGINT NOT NULL)",
            )
            .await
            .map_err(|e| pg_err(&e))?;
            let version: i64 = tx
                .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
                .await
                .map_err(|e| pg_err(&e))?
                .get(0);
            if version > super::migrations::latest() {
                return Err(StoreError::SchemaTooNew(version));
            }
            let Some(m) = super::migrations::MIGRATIONS.get(usize::try_from(version).unwrap_or(usize::MAX)) else {
                tx.commit().await.map_err(|e| pg_err(&e))?;
                return Ok(version);
            };
            tx.batch_execute(m.postgres).await.map_err(|e| pg_err(&e))?;
            let next = version + 1;
            tx.execute(
                "INSERT INTO schema_version (version, applied) VALUES ($1, EXTRACT(EPOCH FROM now())::BIGINT)",
                &[&next],
            )
            .await
            .map_err(|e| pg_err(&e))?;
            tx.commit().await.map_err(|e| pg_err(&e))?;
            tracing::info!(version = next, name = m.name, "applied database migration");
        }
    }

    async fn client(pool: &Pool) -> Result<deadpool_postgres::Object, StoreError> {
        pool.get().await.map_err(|e| pool_err(&e))
    }

    async fn execute(
        pool: Pool,
        sql: &'static str,
        params: Vec<Box<dyn ToSql + Sync + Send>>,
    ) -> Result<u64, StoreError> {
        let client = Self::client(&pool).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        client.execute(sql, &refs).await.map_err(|e| pg_err(&e))
    }
}

/// The group-commit writer: takes whatever is queued (up to [`MAX_BATCH`]) once a batch slot
/// is free, and writes it as one statement. Ends when every store handle is dropped.
async fn token_writer(pool: Pool, mut queue: tokio::sync::mpsc::Receiver<PendingToken>) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(WRITE_BATCHES));
    loop {
        let Ok(slot) = std::sync::Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut batch = Vec::with_capacity(MAX_BATCH.min(queue.len() + 1));
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            write_batch(&pool, batch).await;
            drop(slot);
        });
    }
}

/// Inserts a batch's tokens and audit rows in one statement (an implicit transaction), then
/// answers every waiting request.
async fn write_batch(pool: &Pool, batch: Vec<PendingToken>) {
    let result = insert_batch(pool, &batch).await;
    match result {
        Ok(()) => {
            for pending in batch {
                let _ = pending.done.send(Ok(()));
            }
        }
        Err(e @ StoreError::Unavailable(_)) => {
            for pending in batch {
                let _ = pending.done.send(Err(e.clone()));
            }
        }
        Err(_) if batch.len() > 1 => {
            // Find the bad row(s): each request gets its own outcome.
            for pending in batch {
                let one = insert_batch(pool, std::slice::from_ref(&pending)).await;
                let _ = pending.done.send(one);
            }
        }
        Err(e) => {
            for pending in batch {
                let _ = pending.done.send(Err(e.clone()));
            }
        }
    }
}

async fn insert_batch(pool: &Pool, batch: &[PendingToken]) -> Result<(), StoreError> {
    const SQL: &str = "WITH t AS (
        INSERT INTO tokens (id, merchant_id, mode, brand, last4, exp_month, exp_year, fingerprint,
                            key_version, card_ct, cvc_ct, cvc_expires_at, created, expires_at)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[],
                             $7::int8[], $8::text[], $9::int8[], $10::bytea[], $11::bytea[], $12::int8[],
                             $13::int8[], $14::int8[]))
      INSERT INTO audit_events (ts, event, outcome, merchant_id, mode, key_id, ip, request_id, detail)
      SELECT * FROM unnest($15::int8[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[],
                           $21::text[], $22::text[], $23::text[])";
    let tokens = batch.iter().map(|p| &p.token);
    let audits = batch.iter().map(|p| &p.audit);
    let ids: Vec<&str> = tokens.clone().map(|t| t.id.as_str()).collect();
    let merchants: Vec<&str> = tokens.clone().map(|t| t.merchant_id.as_str()).collect();
    let modes: Vec<&str> = tokens.clone().map(|t| t.mode.as_str()).collect();
    let brands: Vec<&str> = tokens.clone().map(|t| t.brand.as_str()).collect();
    let last4s: Vec<&str> = tokens.clone().map(|t| t.last4.as_str()).collect();
    let months: Vec<i64> = tokens.clone().map(|t| i64::from(t.exp_month)).collect();
    let years: Vec<i64> = tokens.clone().map(|t| i64::from(t.exp_year)).collect();
    let fingerprints: Vec<&str> = tokens.clone().map(|t| t.fingerprint.as_str()).collect();
    let versions: Vec<i64> = tokens.clone().map(|t| i64_of(t.key_version)).collect();
    let cards: Vec<&[u8]> = tokens.clone().map(|t| t.card_ct.as_slice()).collect();
    let cvcs: Vec<Option<&[u8]>> = tokens.clone().map(|t| t.cvc_ct.as_deref()).collect();
    let cvc_expiries: Vec<Option<i64>> = tokens.clone().map(|t| t.cvc_expires_at).collect();
    let created: Vec<i64> = tokens.clone().map(|t| t.created).collect();
    let expires: Vec<i64> = tokens.map(|t| t.expires_at).collect();
    let ts: Vec<i64> = audits.clone().map(|a| a.ts).collect();
    let events: Vec<&str> = audits.clone().map(|a| a.event.as_str()).collect();
    let outcomes: Vec<&str> = audits.clone().map(|a| a.outcome.as_str()).collect();
    let audit_merchants: Vec<Option<&str>> = audits.clone().map(|a| a.merchant_id.as_deref()).collect();
    let audit_modes: Vec<Option<&str>> = audits.clone().map(|a| a.mode.map(Mode::as_str)).collect();
    let key_ids: Vec<Option<&str>> = audits.clone().map(|a| a.key_id.as_deref()).collect();
    let ips: Vec<Option<&str>> = audits.clone().map(|a| a.ip.as_deref()).collect();
    let request_ids: Vec<Option<&str>> = audits.clone().map(|a| a.request_id.as_deref()).collect();
    let details: Vec<String> = audits.map(|a| a.detail.to_string()).collect();
    let client = pool.get().await.map_err(|e| pool_err(&e))?;
    let statement = client.prepare_cached(SQL).await.map_err(|e| pg_err(&e))?;
    client
        .execute(
            &statement,
            &[
                &ids,
                &merchants,
                &modes,
                &brands,
                &last4s,
                &months,
                &years,
                &fingerprints,
                &versions,
                &cards,
                &cvcs,
                &cvc_expiries,
                &created,
                &expires,
                &ts,
                &events,
                &outcomes,
                &audit_merchants,
                &audit_modes,
                &key_ids,
                &ips,
                &request_ids,
                &details,
            ],
        )
        .await
        .map_err(|e| pg_err(&e))?;
    Ok(())
}

async fn insert_audit(tx: &deadpool_postgres::Transaction<'_>, e: &AuditEvent) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO audit_events (ts, event, outcome, merchant_id, mode, key_id, ip, request_id, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &e.ts,
            &e.event,
            &e.outcome,
            &e.merchant_id,
            &e.mode.map(Mode::as_str),
            &e.key_id,
            &e.ip,
            &e.request_id,
            &e.detail.to_string(),
        ],
    )
    .await
    .map_err(|e| pg_err(&e))?;
    Ok(())
}

const TOKEN_COLS: &str = "id, merchant_id, mode, brand, last4, exp_month, exp_year, fingerprint, key_version, \
                          card_ct, cvc_ct, cvc_expires_at, created, expires_at";

fn token_of(r: &tokio_postgres::Row) -> Result<TokenRecord, StoreError> {
    let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
    Ok(TokenRecord {
        id: r.try_get(0).map_err(get)?,
        merchant_id: r.try_get(1).map_err(get)?,
        mode: mode_of(r.try_get::<_, &str>(2).map_err(get)?)?,
        brand: r.try_get(3).map_err(get)?,
        last4: r.try_get(4).map_err(get)?,
        exp_month: u8::try_from(r.try_get::<_, i64>(5).map_err(get)?).map_err(|_| StoreError::Corrupt("exp_month"))?,
        exp_year: u16::try_from(r.try_get::<_, i64>(6).map_err(get)?).map_err(|_| StoreError::Corrupt("exp_year"))?,
        fingerprint: r.try_get(7).map_err(get)?,
        key_version: u32_of(r.try_get(8).map_err(get)?, "key_version")?,
        card_ct: r.try_get(9).map_err(get)?,
        cvc_ct: r.try_get(10).map_err(get)?,
        cvc_expires_at: r.try_get(11).map_err(get)?,
        created: r.try_get(12).map_err(get)?,
        expires_at: r.try_get(13).map_err(get)?,
    })
}

fn idempotency_of(r: &tokio_postgres::Row) -> Result<IdempotencyRecord, StoreError> {
    let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
    Ok(IdempotencyRecord {
        scope: r.try_get(0).map_err(get)?,
        body_hash: r.try_get(1).map_err(get)?,
        status: u16::try_from(r.try_get::<_, i64>(2).map_err(get)?).map_err(|_| StoreError::Corrupt("status"))?,
        response: r.try_get(3).map_err(get)?,
        created: r.try_get(4).map_err(get)?,
    })
}

fn api_key_of(r: &tokio_postgres::Row) -> Result<ApiKeyRecord, StoreError> {
    let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
    let hash: Vec<u8> = r.try_get(5).map_err(get)?;
    let origins: String = r.try_get(11).map_err(get)?;
    let ips: String = r.try_get(12).map_err(get)?;
    let origins: Vec<String> = serde_json::from_str(&origins).map_err(|_| StoreError::Corrupt("origins"))?;
    let ips: Vec<String> = serde_json::from_str(&ips).map_err(|_| StoreError::Corrupt("ips"))?;
    Ok(ApiKeyRecord {
        id: r.try_get(0).map_err(get)?,
        merchant_id: r.try_get(1).map_err(get)?,
        kind: KeyKind::parse(r.try_get(2).map_err(get)?).ok_or(StoreError::Corrupt("key kind"))?,
        mode: mode_of(r.try_get(3).map_err(get)?)?,
        role: match r.try_get::<_, Option<&str>>(4).map_err(get)? {
            Some(role) => Some(Role::parse(role).ok_or(StoreError::Corrupt("role"))?),
            None => None,
        },
        hash: hash.as_slice().try_into().map_err(|_| StoreError::Corrupt("key hash"))?,
        prefix: r.try_get(6).map_err(get)?,
        label: r.try_get(7).map_err(get)?,
        created: r.try_get(8).map_err(get)?,
        expires_at: r.try_get(9).map_err(get)?,
        revoked_at: r.try_get(10).map_err(get)?,
        allowed_origins: origins,
        ip_allowlist: ips
            .iter()
            .map(|s| s.parse::<IpNet>().map_err(|_| StoreError::Corrupt("cidr")))
            .collect::<Result<Vec<_>, _>>()?,
    })
}

/// Completes a pending idempotency claim with the response (or inserts the record); returns
/// how many rows were written (0: another request's completed record is there).
async fn complete_idempotency(
    tx: &deadpool_postgres::Transaction<'_>,
    rec: &IdempotencyRecord,
) -> Result<u64, StoreError> {
    tx.execute(
        "INSERT INTO idempotency (scope, body_hash, status, response, created)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (scope) DO UPDATE SET body_hash = excluded.body_hash, status = excluded.status,
         response = excluded.response, created = excluded.created WHERE idempotency.status = 0",
        &[&rec.scope, &rec.body_hash, &i64::from(rec.status), &rec.response, &rec.created],
    )
    .await
    .map_err(|e| pg_err(&e))
}

/// Inserts an event and a pending delivery to every enabled endpoint that wants its type.
async fn insert_event(tx: &deadpool_postgres::Transaction<'_>, e: &EventRecord) -> Result<(), StoreError> {
    let mode = e.mode.as_str();
    // Pipelined: both statements are prepared (cached per connection) first, so each execute
    // is sent on its first poll and the two run in the order polled: the event, then its
    // deliveries (a failed event insert fails the transaction, so no delivery survives it).
    let insert_event = tx
        .prepare_cached("INSERT INTO events (id, merchant_id, mode, type, created, body) VALUES ($1,$2,$3,$4,$5,$6)")
        .await
        .map_err(|e| pg_err(&e))?;
    let insert_deliveries = tx
        .prepare_cached(
            "INSERT INTO deliveries (event_id, endpoint_id, status, attempts, next_at, created)
             SELECT $1, id, 'pending', 0, $2, $2 FROM webhook_endpoints
             WHERE merchant_id = $3 AND mode = $4 AND status = 'enabled'
             AND (strpos(enabled_events, ',*,') > 0 OR strpos(enabled_events, ',' || $5::TEXT || ',') > 0)",
        )
        .await
        .map_err(|e| pg_err(&e))?;
    let event_params: [&(dyn ToSql + Sync); 6] = [&e.id, &e.merchant_id, &mode, &e.event_type, &e.created, &e.body];
    let delivery_params: [&(dyn ToSql + Sync); 5] = [&e.id, &e.created, &e.merchant_id, &mode, &e.event_type];
    let event = tx.execute(&insert_event, &event_params);
    let deliveries = tx.execute(&insert_deliveries, &delivery_params);
    tokio::try_join!(event, deliveries).map_err(|e| pg_err(&e))?;
    Ok(())
}

async fn insert_secret(tx: &deadpool_postgres::Transaction<'_>, s: &WebhookSecretRecord) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO webhook_secrets (endpoint_id, version, secret_ct, created, expires_at) VALUES ($1,$2,$3,$4,$5)",
        &[&s.endpoint_id, &i64_of(s.version), &s.secret_ct, &s.created, &s.expires_at],
    )
    .await
    .map_err(|e| pg_err(&e))?;
    Ok(())
}

/// A delivery's status and next time after an attempt (`None`: unchanged).
fn delivery_next(next: DeliveryNext) -> (&'static str, Option<UnixSeconds>) {
    match next {
        DeliveryNext::Delivered => ("delivered", None),
        DeliveryNext::RetryAt(at) => ("pending", Some(at)),
        DeliveryNext::GiveUp => ("failed", None),
    }
}

const PAYMENT_COLS: &str = "id, merchant_id, mode, status, amount, currency, amount_capturable, amount_captured, \
                            amount_refunded, created, data";
const REFUND_COLS: &str = "id, payment_id, merchant_id, mode, amount, status, created, data";
const EVENT_COLS: &str = "id, merchant_id, mode, type, created, body";
const ENDPOINT_COLS: &str = "id, merchant_id, mode, url, enabled_events, status, description, created, failing_since";

fn json_of(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt("json document"))
}

/// Inserts a payment row. An existing id is an error ([`StoreError::Conflict`]), or with
/// `skip_existing` nothing is inserted. Returns the number of rows inserted.
async fn insert_payment_row(
    tx: &tokio_postgres::Transaction<'_>,
    p: &PaymentRecord,
    skip_existing: bool,
) -> Result<u64, StoreError> {
    macro_rules! insert {
        () => {
            "INSERT INTO payments (id, merchant_id, mode, status, amount, currency, amount_capturable,
             amount_captured, amount_refunded, created, data) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,0,$9,$10)"
        };
    }
    tx.execute(
        if skip_existing { concat!(insert!(), " ON CONFLICT (id) DO NOTHING") } else { insert!() },
        &[
            &p.id,
            &p.merchant_id,
            &p.mode.as_str(),
            &p.status,
            &p.amount,
            &p.currency,
            &p.amount_capturable,
            &p.amount_captured,
            &p.created,
            &p.data.to_string(),
        ],
    )
    .await
    .map_err(|e| pg_err(&e))
}

fn payment_of(r: &tokio_postgres::Row) -> Result<PaymentRecord, StoreError> {
    let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
    Ok(PaymentRecord {
        id: r.try_get(0).map_err(get)?,
        merchant_id: r.try_get(1).map_err(get)?,
        mode: mode_of(r.try_get(2).map_err(get)?)?,
        status: r.try_get(3).map_err(get)?,
        amount: r.try_get(4).map_err(get)?,
        currency: r.try_get(5).map_err(get)?,
        amount_capturable: r.try_get(6).map_err(get)?,
        amount_captured: r.try_get(7).map_err(get)?,
        amount_refunded: r.try_get(8).map_err(get)?,
        created: r.try_get(9).map_err(get)?,
        data: json_of(r.try_get(10).map_err(get)?)?,
    })
}

fn refund_of(r: &tokio_postgres::Row) -> Result<RefundRecord, StoreError> {
    let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
    Ok(RefundRecord {
        id: r.try_get(0).map_err(get)?,
        payment_id: r.try_get(1).map_err(get)?,
        merchant_id: r.try_get(2).map_err(get)?,
        mode: mode_of(r.try_get(3).map_err(get)?)?,
        amount: r.try_get(4).map_err(get)?,
        status: r.try_get(5).map_err(get)?,
        created: r.try_get(6).map_err(get)?,
        data: json_of(r.try_get(7).map_err(get)?)?,
    })
}

fn event_of(r: &tokio_postgres::Row) -> Result<EventRecord, StoreError> {
    let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
    Ok(EventRecord {
        id: r.try_get(0).map_err(get)?,
        merchant_id: r.try_get(1).map_err(get)?,
        mode: mode_of(r.try_get(2).map_err(get)?)?,
        event_type: r.try_get(3).map_err(get)?,
        created: r.try_get(4).map_err(get)?,
        body: r.try_get(5).map_err(get)?,
    })
}

fn endpoint_of(r: &tokio_postgres::Row) -> Result<WebhookEndpointRecord, StoreError> {
    let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
    Ok(WebhookEndpointRecord {
        id: r.try_get(0).map_err(get)?,
        merchant_id: r.try_get(1).map_err(get)?,
        mode: mode_of(r.try_get(2).map_err(get)?)?,
        url: r.try_get(3).map_err(get)?,
        enabled_events: events_of_column(r.try_get(4).map_err(get)?),
        status: r.try_get(5).map_err(get)?,
        description: r.try_get(6).map_err(get)?,
        created: r.try_get(7).map_err(get)?,
        failing_since: r.try_get(8).map_err(get)?,
    })
}

/// Writes what goes with a state change in its transaction: its event (with deliveries) and
/// the request's idempotency record.
async fn outbox(
    tx: &deadpool_postgres::Transaction<'_>,
    event: Option<&EventRecord>,
    idempotency: Option<&IdempotencyRecord>,
) -> Result<(), StoreError> {
    // Pipelined (see `update_payment`): independent statements, one round trip.
    let event = async {
        match event {
            Some(e) => insert_event(tx, e).await,
            None => Ok(()),
        }
    };
    let idempotency = async {
        match idempotency {
            Some(rec) => complete_idempotency(tx, rec).await.map(drop),
            None => Ok(()),
        }
    };
    tokio::try_join!(event, idempotency)?;
    Ok(())
}

/// One row of `table` by id, scoped to a merchant and mode (`extra`: more conditions).
#[allow(clippy::too_many_arguments)]
async fn get_scoped<T>(
    pool: &Pool,
    table: &str,
    cols: &str,
    extra: &str,
    id: &str,
    merchant_id: &str,
    mode: Mode,
    decode: fn(&tokio_postgres::Row) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let c = PostgresStore::client(pool).await?;
    let sql = format!("SELECT {cols}, merchant_id, mode FROM {table} WHERE id = $1 {extra}");
    let row = c.query_opt(&sql, &[&id]).await.map_err(|e| pg_err(&e))?;
    let Some(row) = row else { return Ok(None) };
    Ok(if in_scope(&row, cols, merchant_id, mode)? { Some(decode(&row)?) } else { None })
}

/// Whether a row selected as `SELECT {cols}, merchant_id, mode …` belongs to `merchant_id` and
/// `mode`. Lookups by id select on the id alone and compare the scope here: with the scope in
/// the `WHERE` clause, a planner without statistics yet (a table that just grew from empty, before
/// autoanalyze) took the `(merchant_id, mode, …)` index and scanned every row of the merchant:
/// payments on Postgres ran at 200/s with 60,000 tokens in the table.
fn in_scope(row: &tokio_postgres::Row, cols: &str, merchant_id: &str, mode: Mode) -> Result<bool, StoreError> {
    let n = cols.split(',').count();
    let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
    let (m, md): (String, String) = (row.try_get(n).map_err(get)?, row.try_get(n + 1).map_err(get)?);
    Ok(m == merchant_id && md == mode.as_str())
}

/// Newest-first page of `table` under `filter` (`kind_col` is what `filter.kind` matches).
async fn list_rows<T>(
    pool: &Pool,
    table: &str,
    cols: &str,
    kind_col: &str,
    filter: &ListFilter,
    decode: fn(&tokio_postgres::Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let c = PostgresStore::client(pool).await?;
    // Only the refunds table is filtered by status besides its kind column (the payment).
    let status = if table == "refunds" { "($8::TEXT IS NULL OR status = $8)" } else { "($8::TEXT IS NULL OR TRUE)" };
    let sql = format!(
        "SELECT {cols} FROM {table} WHERE ($1::TEXT IS NULL OR merchant_id = $1) AND ($2::TEXT IS NULL OR mode = $2)
         AND ($3::TEXT IS NULL OR {kind_col} = $3) AND ($4::BIGINT IS NULL OR created >= $4)
         AND ($5::BIGINT IS NULL OR created < $5)
         AND ($6::TEXT IS NULL OR seq < (SELECT seq FROM {table} WHERE id = $6)) AND {status}
         ORDER BY seq DESC LIMIT $7"
    );
    let refund_status = if table == "refunds" { filter.refund_status.as_deref() } else { None };
    let rows = c
        .query(
            &sql,
            &[
                &filter.merchant_id,
                &filter.mode.map(Mode::as_str),
                &filter.kind,
                &filter.created_gte,
                &filter.created_lt,
                &filter.starting_after,
                &i64::from(filter.limit),
                &refund_status,
            ],
        )
        .await
        .map_err(|e| pg_err(&e))?;
    rows.iter().map(decode).collect()
}

impl Store for PostgresStore {
    fn close(&self) {
        self.pool.close();
        self.deliveries.close();
    }

    fn key_changes(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        Some(Self::listen(self.url.clone()))
    }

    fn get_meta(&self, key: &str) -> StoreFuture<Option<String>> {
        let (pool, key) = (self.pool.clone(), key.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let row = c.query_opt("SELECT value FROM meta WHERE key = $1", &[&key]).await.map_err(|e| pg_err(&e))?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn set_meta(&self, key: &str, value: &str) -> StoreFuture<()> {
        let (pool, key, value) = (self.pool.clone(), key.to_owned(), value.to_owned());
        bounded(OP_TIMEOUT, async move {
            Self::execute(
                pool,
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                vec![Box::new(key), Box::new(value)],
            )
            .await?;
            Ok(())
        })
    }

    fn create_merchant(&self, m: MerchantRecord) -> StoreFuture<()> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            Self::execute(
                pool,
                "INSERT INTO merchants (id, name, created) VALUES ($1, $2, $3)",
                vec![Box::new(m.id), Box::new(m.name), Box::new(m.created)],
            )
            .await?;
            Ok(())
        })
    }

    fn list_merchants(&self) -> StoreFuture<Vec<MerchantRecord>> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let rows = c
                .query("SELECT id, name, created FROM merchants ORDER BY created, id", &[])
                .await
                .map_err(|e| pg_err(&e))?;
            Ok(rows.iter().map(|r| MerchantRecord { id: r.get(0), name: r.get(1), created: r.get(2) }).collect())
        })
    }

    fn insert_wrapped_key(&self, k: WrappedKeyRecord) -> StoreFuture<()> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            Self::execute(
                pool,
                "WITH ins AS (INSERT INTO wrapped_keys (merchant_id, mode, purpose, version, wrapped, created)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING 1) SELECT pg_notify('vault_keys', '') FROM ins",
                vec![
                    Box::new(k.merchant_id),
                    Box::new(k.mode.as_str()),
                    Box::new(k.purpose.as_str()),
                    Box::new(i64_of(k.version)),
                    Box::new(k.wrapped),
                    Box::new(k.created),
                ],
            )
            .await?;
            Ok(())
        })
    }

    fn rewrap_keys(&self, keys: Vec<WrappedKeyRecord>, meta: Vec<(String, String)>) -> StoreFuture<()> {
        let pool = self.pool.clone();
        bounded(MAINTENANCE_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            for k in &keys {
                let n = tx
                    .execute(
                        "UPDATE wrapped_keys SET wrapped = $5
                         WHERE merchant_id = $1 AND mode = $2 AND purpose = $3 AND version = $4",
                        &[&k.merchant_id, &k.mode.as_str(), &k.purpose.as_str(), &i64_of(k.version), &k.wrapped],
                    )
                    .await
                    .map_err(|e| pg_err(&e))?;
                if n != 1 {
                    return Err(StoreError::Database("a wrapped key changed during the master-key rotation".into()));
                }
            }
            tx.execute("SELECT pg_notify($1, '')", &[&KEY_CHANNEL]).await.map_err(|e| pg_err(&e))?;
            for (key, value) in &meta {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[key, value],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            }
            tx.commit().await.map_err(|e| pg_err(&e))
        })
    }

    fn retire_data_key(&self, merchant_id: &str, mode: Mode, version: u32) -> StoreFuture<bool> {
        let (pool, merchant_id) = (self.pool.clone(), merchant_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let n = Self::execute(
                pool,
                "WITH del AS (DELETE FROM wrapped_keys WHERE merchant_id = $1 AND mode = $2 AND purpose = 'data'
                 AND version = $3
                 AND version < (SELECT MAX(version) FROM wrapped_keys
                                WHERE merchant_id = $1 AND mode = $2 AND purpose = 'data')
                 AND NOT EXISTS (SELECT 1 FROM tokens WHERE merchant_id = $1 AND mode = $2 AND key_version = $3)
                 RETURNING 1) SELECT pg_notify('vault_keys', '') FROM del",
                vec![Box::new(merchant_id), Box::new(mode.as_str()), Box::new(i64_of(version))],
            )
            .await?;
            Ok(n > 0)
        })
    }

    fn list_wrapped_keys(&self) -> StoreFuture<Vec<WrappedKeyRecord>> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let rows = c
                .query("SELECT merchant_id, mode, purpose, version, wrapped, created FROM wrapped_keys", &[])
                .await
                .map_err(|e| pg_err(&e))?;
            rows.iter()
                .map(|r| {
                    let purpose = match r.get::<_, &str>(2) {
                        "data" => KeyPurpose::Data,
                        "fingerprint" => KeyPurpose::Fingerprint,
                        _ => return Err(StoreError::Corrupt("key purpose")),
                    };
                    Ok(WrappedKeyRecord {
                        merchant_id: r.get(0),
                        mode: mode_of(r.get(1))?,
                        purpose,
                        version: u32_of(r.get(3), "key version")?,
                        wrapped: r.get(4),
                        created: r.get(5),
                    })
                })
                .collect()
        })
    }

    fn insert_api_key(&self, k: ApiKeyRecord, audit: AuditEvent) -> StoreFuture<()> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            tx.execute(
                "INSERT INTO api_keys (id, merchant_id, kind, mode, role, hash, prefix, label, created, expires_at,
                 revoked_at, allowed_origins, ip_allowlist) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)",
                &[
                    &k.id,
                    &k.merchant_id,
                    &k.kind.as_str(),
                    &k.mode.as_str(),
                    &k.role.map(Role::as_str),
                    &k.hash.as_slice(),
                    &k.prefix,
                    &k.label,
                    &k.created,
                    &k.expires_at,
                    &k.revoked_at,
                    &json_list(&k.allowed_origins),
                    &json_list(&k.ip_allowlist),
                ],
            )
            .await
            .map_err(|e| pg_err(&e))?;
            insert_audit(&tx, &audit).await?;
            tx.execute("SELECT pg_notify($1, '')", &[&KEY_CHANNEL]).await.map_err(|e| pg_err(&e))?;
            tx.commit().await.map_err(|e| pg_err(&e))
        })
    }

    fn update_api_key(&self, k: ApiKeyRecord, audit: AuditEvent) -> StoreFuture<()> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            tx.execute(
                "UPDATE api_keys SET expires_at = $2, revoked_at = $3, allowed_origins = $4, ip_allowlist = $5,
                 label = $6 WHERE id = $1",
                &[
                    &k.id,
                    &k.expires_at,
                    &k.revoked_at,
                    &json_list(&k.allowed_origins),
                    &json_list(&k.ip_allowlist),
                    &k.label,
                ],
            )
            .await
            .map_err(|e| pg_err(&e))?;
            insert_audit(&tx, &audit).await?;
            tx.execute("SELECT pg_notify($1, '')", &[&KEY_CHANNEL]).await.map_err(|e| pg_err(&e))?;
            tx.commit().await.map_err(|e| pg_err(&e))
        })
    }

    fn list_api_keys(&self) -> StoreFuture<Vec<ApiKeyRecord>> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let rows = c
                .query(
                    "SELECT id, merchant_id, kind, mode, role, hash, prefix, label, created, expires_at, revoked_at,
                     allowed_origins, ip_allowlist FROM api_keys ORDER BY created, id",
                    &[],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            rows.iter().map(api_key_of).collect()
        })
    }

    fn create_token(
        &self,
        t: TokenRecord,
        idempotency: Option<IdempotencyRecord>,
        audit: AuditEvent,
    ) -> StoreFuture<CreateOutcome> {
        let (pool, writer) = (self.pool.clone(), self.writer.clone());
        bounded(OP_TIMEOUT, async move {
            let Some(rec) = idempotency else {
                let (done, answer) = tokio::sync::oneshot::channel();
                writer.send(PendingToken { token: t, audit, done }).await.map_err(|_| StoreError::Closed)?;
                answer.await.map_err(|_| StoreError::Closed)??;
                return Ok(CreateOutcome::Created);
            };
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            // Completes this request's pending claim (or inserts the record). A completed
            // record of another request wins: nothing is written and it is returned.
            let stored = complete_idempotency(&tx, &rec).await?;
            if stored == 0 {
                let row = tx
                    .query_one(
                        "SELECT scope, body_hash, status, response, created FROM idempotency WHERE scope = $1",
                        &[&rec.scope],
                    )
                    .await
                    .map_err(|e| pg_err(&e))?;
                return Ok(CreateOutcome::IdempotencyExists(idempotency_of(&row)?));
            }
            tx.execute(
                "INSERT INTO tokens (id, merchant_id, mode, brand, last4, exp_month, exp_year, fingerprint,
                 key_version, card_ct, cvc_ct, cvc_expires_at, created, expires_at)
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)",
                &[
                    &t.id,
                    &t.merchant_id,
                    &t.mode.as_str(),
                    &t.brand,
                    &t.last4,
                    &i64::from(t.exp_month),
                    &i64::from(t.exp_year),
                    &t.fingerprint,
                    &i64_of(t.key_version),
                    &t.card_ct,
                    &t.cvc_ct,
                    &t.cvc_expires_at,
                    &t.created,
                    &t.expires_at,
                ],
            )
            .await
            .map_err(|e| pg_err(&e))?;
            insert_audit(&tx, &audit).await?;
            tx.commit().await.map_err(|e| pg_err(&e))?;
            Ok(CreateOutcome::Created)
        })
    }

    fn get_token(&self, id: &str, merchant_id: &str, mode: Mode, now: UnixSeconds) -> StoreFuture<Option<TokenRecord>> {
        let (pool, id, merchant_id) = (self.pool.clone(), id.to_owned(), merchant_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            // By id alone, the scope compared after (see `in_scope`).
            let sql = format!("SELECT {TOKEN_COLS}, merchant_id, mode FROM tokens WHERE id = $1");
            let row = c.query_opt(&sql, &[&id]).await.map_err(|e| pg_err(&e))?;
            let Some(row) = row else { return Ok(None) };
            if !in_scope(&row, TOKEN_COLS, &merchant_id, mode)? {
                return Ok(None);
            }
            let token = token_of(&row)?;
            Ok((token.expires_at > now).then_some(token))
        })
    }

    fn delete_token(&self, id: &str, merchant_id: &str, mode: Mode, now: UnixSeconds) -> StoreFuture<bool> {
        let (pool, id, merchant_id) = (self.pool.clone(), id.to_owned(), merchant_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let n = Self::execute(
                pool,
                "DELETE FROM tokens WHERE id = $1 AND merchant_id = $2 AND mode = $3 AND expires_at > $4",
                vec![Box::new(id), Box::new(merchant_id), Box::new(mode.as_str()), Box::new(now)],
            )
            .await?;
            Ok(n > 0)
        })
    }

    fn get_for_detokenize(
        &self,
        id: &str,
        merchant_id: &str,
        mode: Mode,
        now: UnixSeconds,
    ) -> StoreFuture<Option<TokenRecord>> {
        let fut = self.get_token(id, merchant_id, mode, now);
        bounded(OP_TIMEOUT, async move {
            let Some(mut t) = fut.await? else { return Ok(None) };
            if t.cvc_expires_at.is_some_and(|at| at <= now) {
                t.cvc_ct = None;
            }
            Ok(Some(t))
        })
    }

    fn destroy_cvc(&self, id: &str) -> StoreFuture<bool> {
        let (pool, id) = (self.pool.clone(), id.to_owned());
        bounded(OP_TIMEOUT, async move {
            // The row lock makes concurrent callers on every instance queue up; after the first
            // commit the condition is false for the others.
            let n = Self::execute(
                pool,
                "UPDATE tokens SET cvc_ct = NULL, cvc_expires_at = NULL WHERE id = $1 AND cvc_ct IS NOT NULL",
                vec![Box::new(id)],
            )
            .await?;
            Ok(n > 0)
        })
    }

    fn purge_cvcs(&self, now: UnixSeconds) -> StoreFuture<u64> {
        let pool = self.pool.clone();
        bounded(MAINTENANCE_TIMEOUT, async move {
            Self::execute(
                pool,
                "UPDATE tokens SET cvc_ct = NULL, cvc_expires_at = NULL WHERE cvc_ct IS NOT NULL AND cvc_expires_at <= $1",
                vec![Box::new(now)],
            )
            .await
        })
    }

    fn purge_expired(&self, now: UnixSeconds, idempotency_before: UnixSeconds) -> StoreFuture<PurgeCounts> {
        let pool = self.pool.clone();
        bounded(MAINTENANCE_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            let tokens =
                tx.execute("DELETE FROM tokens WHERE expires_at <= $1", &[&now]).await.map_err(|e| pg_err(&e))?;
            let idempotency = tx
                .execute("DELETE FROM idempotency WHERE created < $1", &[&idempotency_before])
                .await
                .map_err(|e| pg_err(&e))?;
            tx.commit().await.map_err(|e| pg_err(&e))?;
            Ok(PurgeCounts { tokens, cvcs: 0, idempotency })
        })
    }

    fn rows_to_reencrypt(
        &self,
        merchant_id: &str,
        mode: Mode,
        current: u32,
        cursor: i64,
        limit: u32,
    ) -> StoreFuture<Vec<CipherRow>> {
        let (pool, merchant_id) = (self.pool.clone(), merchant_id.to_owned());
        bounded(MAINTENANCE_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let rows = c
                .query(
                    "SELECT seq, id, key_version, card_ct, cvc_ct FROM tokens
                     WHERE seq > $1 AND merchant_id = $2 AND mode = $3 AND key_version < $4 ORDER BY seq LIMIT $5",
                    &[&cursor, &merchant_id, &mode.as_str(), &i64_of(current), &i64::from(limit)],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            rows.iter()
                .map(|r| {
                    Ok(CipherRow {
                        cursor: r.get(0),
                        id: r.get(1),
                        key_version: u32_of(r.get(2), "key_version")?,
                        card_ct: r.get(3),
                        cvc_ct: r.get(4),
                    })
                })
                .collect()
        })
    }

    fn replace_ciphertexts(&self, rows: Vec<(CipherRow, u32)>) -> StoreFuture<u64> {
        let pool = self.pool.clone();
        bounded(MAINTENANCE_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            let stmt = tx
                .prepare(
                    "UPDATE tokens SET card_ct = $2, cvc_ct = CASE WHEN cvc_ct IS NULL THEN NULL ELSE $3::BYTEA END,
                     key_version = $4 WHERE id = $1 AND key_version = $5",
                )
                .await
                .map_err(|e| pg_err(&e))?;
            let mut n = 0;
            for (row, new_version) in &rows {
                n += tx
                    .execute(
                        &stmt,
                        &[&row.id, &row.card_ct, &row.cvc_ct, &i64_of(*new_version), &i64_of(row.key_version)],
                    )
                    .await
                    .map_err(|e| pg_err(&e))?;
            }
            tx.commit().await.map_err(|e| pg_err(&e))?;
            Ok(n)
        })
    }

    fn count_below_version(&self, merchant_id: &str, mode: Mode, current: u32) -> StoreFuture<u64> {
        let (pool, merchant_id) = (self.pool.clone(), merchant_id.to_owned());
        bounded(MAINTENANCE_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let n: i64 = c
                .query_one(
                    "SELECT count(*) FROM tokens WHERE merchant_id = $1 AND mode = $2 AND key_version < $3",
                    &[&merchant_id, &mode.as_str(), &i64_of(current)],
                )
                .await
                .map_err(|e| pg_err(&e))?
                .get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn get_idempotency(&self, scope: &str) -> StoreFuture<Option<IdempotencyRecord>> {
        let (pool, scope) = (self.pool.clone(), scope.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let row = c
                .query_opt(
                    "SELECT scope, body_hash, status, response, created FROM idempotency WHERE scope = $1 AND status <> 0",
                    &[&scope],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            row.as_ref().map(idempotency_of).transpose()
        })
    }

    fn claim_idempotency(
        &self,
        scope: &str,
        body_hash: &str,
        now: UnixSeconds,
        lease_before: UnixSeconds,
    ) -> StoreFuture<Claim> {
        let (pool, scope, body_hash) = (self.pool.clone(), scope.to_owned(), body_hash.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            // Concurrent claims on any instance serialise on the primary key: one inserts, the
            // others see its pending row.
            let claimed = c
                .execute(
                    "INSERT INTO idempotency (scope, body_hash, status, response, created) VALUES ($1, $2, 0, '', $3)
                     ON CONFLICT (scope) DO UPDATE SET body_hash = excluded.body_hash, created = excluded.created
                     WHERE idempotency.status = 0 AND idempotency.created <= $4",
                    &[&scope, &body_hash, &now, &lease_before],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            if claimed > 0 {
                return Ok(Claim::Claimed);
            }
            let row = c
                .query_opt(
                    "SELECT scope, body_hash, status, response, created FROM idempotency WHERE scope = $1 AND status <> 0",
                    &[&scope],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            Ok(match row {
                Some(r) => Claim::Done(idempotency_of(&r)?),
                None => Claim::InFlight,
            })
        })
    }

    fn try_lease(&self, job: &str, holder: &str, now: UnixSeconds, until: UnixSeconds) -> StoreFuture<bool> {
        let (pool, job, holder) = (self.pool.clone(), job.to_owned(), holder.to_owned());
        bounded(OP_TIMEOUT, async move {
            let n = Self::execute(
                pool,
                "INSERT INTO leases (job, holder, until) VALUES ($1, $2, $4)
                 ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, until = excluded.until
                 WHERE leases.holder = excluded.holder OR leases.until <= $3",
                vec![Box::new(job), Box::new(holder), Box::new(now), Box::new(until)],
            )
            .await?;
            Ok(n > 0)
        })
    }

    fn release_idempotency(&self, scope: &str) -> StoreFuture<()> {
        let (pool, scope) = (self.pool.clone(), scope.to_owned());
        bounded(OP_TIMEOUT, async move {
            Self::execute(pool, "DELETE FROM idempotency WHERE scope = $1 AND status = 0", vec![Box::new(scope)])
                .await?;
            Ok(())
        })
    }

    fn append_audit(&self, events: Vec<AuditEvent>) -> StoreFuture<()> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            for e in &events {
                insert_audit(&tx, e).await?;
            }
            tx.commit().await.map_err(|e| pg_err(&e))
        })
    }

    fn list_audit(&self, filter: AuditFilter) -> StoreFuture<Vec<AuditEvent>> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let rows = c
                .query(
                    "SELECT id, ts, event, outcome, merchant_id, mode, key_id, ip, request_id, detail FROM audit_events
                     WHERE ($1::TEXT IS NULL OR merchant_id = $1) AND ($2::TEXT IS NULL OR event = $2)
                       AND ($3::BIGINT IS NULL OR id < $3)
                       AND ($5::TEXT IS NULL OR key_id = $5) AND ($6::TEXT IS NULL OR ip = $6)
                       AND ($7::TEXT IS NULL OR detail::jsonb ->> 'actor' = $7)
                       AND ($8::BIGINT IS NULL OR ts >= $8) AND ($9::BIGINT IS NULL OR ts < $9)
                     ORDER BY id DESC LIMIT $4",
                    &[
                        &filter.merchant_id,
                        &filter.event,
                        &filter.before_id,
                        &i64::from(filter.limit),
                        &filter.key_id,
                        &filter.ip,
                        &filter.actor,
                        &filter.since,
                        &filter.until,
                    ],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            Ok(rows
                .iter()
                .map(|r| AuditEvent {
                    id: r.get(0),
                    ts: r.get(1),
                    event: r.get(2),
                    outcome: r.get(3),
                    merchant_id: r.get(4),
                    mode: r.get::<_, Option<&str>>(5).and_then(Mode::parse),
                    key_id: r.get(6),
                    ip: r.get(7),
                    request_id: r.get(8),
                    detail: serde_json::from_str(r.get::<_, &str>(9)).unwrap_or(serde_json::Value::Null),
                })
                .collect())
        })
    }

    fn insert_payment(&self, p: PaymentRecord, event: Option<EventRecord>) -> StoreFuture<()> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            insert_payment_row(&tx, &p, false).await?;
            if let Some(e) = &event {
                insert_event(&tx, e).await?;
            }
            tx.commit().await.map_err(|e| pg_err(&e))
        })
    }

    fn begin_payment(
        &self,
        scope: &str,
        body_hash: &str,
        lease_before: UnixSeconds,
        p: PaymentRecord,
        cvc_of: Option<String>,
    ) -> StoreFuture<PaymentStart> {
        let (pool, scope, body_hash) = (self.pool.clone(), scope.to_owned(), body_hash.to_owned());
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            // A concurrent claim of the same scope (any instance) waits on this row until we
            // commit, then finds it pending (409) or completed (replay).
            let claimed = tx
                .execute(
                    "INSERT INTO idempotency (scope, body_hash, status, response, created) VALUES ($1, $2, 0, '', $3)
                     ON CONFLICT (scope) DO UPDATE SET body_hash = excluded.body_hash, created = excluded.created
                     WHERE idempotency.status = 0 AND idempotency.created <= $4",
                    &[&scope, &body_hash, &p.created, &lease_before],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            if claimed == 0 {
                let row = tx
                    .query_opt(
                        "SELECT scope, body_hash, status, response, created FROM idempotency
                         WHERE scope = $1 AND status <> 0",
                        &[&scope],
                    )
                    .await
                    .map_err(|e| pg_err(&e))?;
                let claim = match row {
                    Some(r) => Claim::Done(idempotency_of(&r)?),
                    None => Claim::InFlight,
                };
                tx.commit().await.map_err(|e| pg_err(&e))?;
                return Ok(PaymentStart::NotClaimed(claim));
            }
            let inserted = insert_payment_row(&tx, &p, true).await?;
            let start = if inserted == 0 {
                let sql =
                    format!("SELECT {PAYMENT_COLS} FROM payments WHERE id = $1 AND merchant_id = $2 AND mode = $3");
                let row = tx
                    .query_opt(&sql, &[&p.id, &p.merchant_id, &p.mode.as_str()])
                    .await
                    .map_err(|e| pg_err(&e))?
                    .ok_or(StoreError::Conflict)?;
                PaymentStart::Recorded(payment_of(&row)?)
            } else {
                let cvc = match &cvc_of {
                    // The row lock makes concurrent destroyers queue; one sees the ciphertext.
                    Some(token) => {
                        tx.execute(
                            "UPDATE tokens SET cvc_ct = NULL, cvc_expires_at = NULL WHERE id = $1 AND cvc_ct IS NOT NULL",
                            &[token],
                        )
                        .await
                        .map_err(|e| pg_err(&e))?
                            > 0
                    }
                    None => false,
                };
                PaymentStart::Started { cvc }
            };
            tx.commit().await.map_err(|e| pg_err(&e))?;
            Ok(start)
        })
    }

    fn update_payment(
        &self,
        p: PaymentRecord,
        from: &str,
        event: Option<EventRecord>,
        idempotency: Option<IdempotencyRecord>,
        audit: Option<AuditEvent>,
    ) -> StoreFuture<bool> {
        let (pool, from) = (self.pool.clone(), from.to_owned());
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            // The row lock makes concurrent transitions from the same status serialise; the
            // loser re-reads the row, finds another status and updates nothing.
            let n = tx
                .execute(
                    "UPDATE payments SET status = $2, amount_capturable = $3, amount_captured = $4, data = $5
                     WHERE id = $1 AND status = $6",
                    &[&p.id, &p.status, &p.amount_capturable, &p.amount_captured, &p.data.to_string(), &from],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            if n == 0 {
                return Ok(false);
            }
            // Polled together, the outbox's and the audit's statements go out pipelined: one
            // round trip for all of them, executed in order.
            let audit = async {
                match &audit {
                    Some(a) => insert_audit(&tx, a).await,
                    None => Ok(()),
                }
            };
            tokio::try_join!(outbox(&tx, event.as_ref(), idempotency.as_ref()), audit)?;
            tx.commit().await.map_err(|e| pg_err(&e))?;
            Ok(true)
        })
    }

    fn get_payment(&self, id: &str, merchant_id: &str, mode: Mode) -> StoreFuture<Option<PaymentRecord>> {
        let (pool, id, merchant_id) = (self.pool.clone(), id.to_owned(), merchant_id.to_owned());
        Box::pin(
            async move { get_scoped(&pool, "payments", PAYMENT_COLS, "", &id, &merchant_id, mode, payment_of).await },
        )
    }

    fn list_payments(&self, filter: ListFilter) -> StoreFuture<Vec<PaymentRecord>> {
        let pool = self.pool.clone();
        bounded(
            OP_TIMEOUT,
            async move { list_rows(&pool, "payments", PAYMENT_COLS, "status", &filter, payment_of).await },
        )
    }

    fn reserve_refund(&self, r: RefundRecord) -> StoreFuture<RefundReservation> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            // Concurrent refunds queue on the payment's row lock; each re-checks the sum against
            // the row as the previous one committed it (READ COMMITTED re-evaluates the WHERE).
            let n = tx
                .execute(
                    "UPDATE payments SET amount_refunded = amount_refunded + $4
                     WHERE id = $1 AND merchant_id = $2 AND mode = $3 AND status = 'succeeded'
                     AND amount_refunded + $4 <= amount_captured",
                    &[&r.payment_id, &r.merchant_id, &r.mode.as_str(), &r.amount],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            if n == 0 {
                let row = tx
                    .query_opt(
                        "SELECT status FROM payments WHERE id = $1 AND merchant_id = $2 AND mode = $3",
                        &[&r.payment_id, &r.merchant_id, &r.mode.as_str()],
                    )
                    .await
                    .map_err(|e| pg_err(&e))?;
                let status: Option<String> = row.map(|r| r.get(0));
                return Ok(match status.as_deref() {
                    Some("succeeded") => RefundReservation::Exceeds,
                    _ => RefundReservation::NotRefundable,
                });
            }
            tx.execute(
                "INSERT INTO refunds (id, payment_id, merchant_id, mode, amount, status, created, data)
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
                &[
                    &r.id,
                    &r.payment_id,
                    &r.merchant_id,
                    &r.mode.as_str(),
                    &r.amount,
                    &r.status,
                    &r.created,
                    &r.data.to_string(),
                ],
            )
            .await
            .map_err(|e| pg_err(&e))?;
            tx.commit().await.map_err(|e| pg_err(&e))?;
            Ok(RefundReservation::Reserved)
        })
    }

    fn finish_refund(
        &self,
        r: RefundRecord,
        event: Option<EventRecord>,
        idempotency: Option<IdempotencyRecord>,
    ) -> StoreFuture<bool> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            let row = tx
                .query_opt(
                    "UPDATE refunds SET status = $2, data = $3 WHERE id = $1 AND status = 'processing' RETURNING amount",
                    &[&r.id, &r.status, &r.data.to_string()],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            let Some(row) = row else { return Ok(false) };
            if r.status == "failed" {
                let amount: i64 = row.get(0);
                tx.execute(
                    "UPDATE payments SET amount_refunded = amount_refunded - $2 WHERE id = $1",
                    &[&r.payment_id, &amount],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            }
            outbox(&tx, event.as_ref(), idempotency.as_ref()).await?;
            tx.commit().await.map_err(|e| pg_err(&e))?;
            Ok(true)
        })
    }

    fn get_refund(&self, id: &str, merchant_id: &str, mode: Mode) -> StoreFuture<Option<RefundRecord>> {
        let (pool, id, merchant_id) = (self.pool.clone(), id.to_owned(), merchant_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            get_scoped(&pool, "refunds", REFUND_COLS, "", &id, &merchant_id, mode, refund_of).await
        })
    }

    fn list_refunds(&self, filter: ListFilter) -> StoreFuture<Vec<RefundRecord>> {
        let pool = self.pool.clone();
        bounded(
            OP_TIMEOUT,
            async move { list_rows(&pool, "refunds", REFUND_COLS, "payment_id", &filter, refund_of).await },
        )
    }

    fn insert_event(&self, event: EventRecord) -> StoreFuture<()> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            insert_event(&tx, &event).await?;
            tx.commit().await.map_err(|e| pg_err(&e))
        })
    }

    fn get_event(&self, id: &str, merchant_id: &str, mode: Mode) -> StoreFuture<Option<EventRecord>> {
        let (pool, id, merchant_id) = (self.pool.clone(), id.to_owned(), merchant_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            get_scoped(&pool, "events", EVENT_COLS, "", &id, &merchant_id, mode, event_of).await
        })
    }

    fn list_events(&self, filter: ListFilter) -> StoreFuture<Vec<EventRecord>> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move { list_rows(&pool, "events", EVENT_COLS, "type", &filter, event_of).await })
    }

    fn redeliver_event(
        &self,
        id: &str,
        merchant_id: &str,
        mode: Mode,
        endpoint: Option<String>,
        now: UnixSeconds,
    ) -> StoreFuture<u64> {
        let (pool, id, merchant_id) = (self.pool.clone(), id.to_owned(), merchant_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            Self::execute(
                pool,
                "INSERT INTO deliveries (event_id, endpoint_id, status, attempts, next_at, created)
                 SELECT e.id, w.id, 'pending', 0, $5, $5 FROM events e JOIN webhook_endpoints w
                 ON w.merchant_id = e.merchant_id AND w.mode = e.mode
                 WHERE e.id = $1 AND e.merchant_id = $2 AND e.mode = $3 AND w.status = 'enabled'
                 AND (($4::TEXT IS NULL AND (strpos(w.enabled_events, ',*,') > 0
                                             OR strpos(w.enabled_events, ',' || e.type || ',') > 0))
                      OR w.id = $4::TEXT)",
                vec![Box::new(id), Box::new(merchant_id), Box::new(mode.as_str()), Box::new(endpoint), Box::new(now)],
            )
            .await
        })
    }

    fn insert_webhook_endpoint(
        &self,
        w: WebhookEndpointRecord,
        secret: WebhookSecretRecord,
        audit: AuditEvent,
    ) -> StoreFuture<()> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            tx.execute(
                "INSERT INTO webhook_endpoints (id, merchant_id, mode, url, enabled_events, status, description,
                 created, failing_since) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
                &[
                    &w.id,
                    &w.merchant_id,
                    &w.mode.as_str(),
                    &w.url,
                    &events_column(&w.enabled_events),
                    &w.status,
                    &w.description,
                    &w.created,
                    &w.failing_since,
                ],
            )
            .await
            .map_err(|e| pg_err(&e))?;
            insert_secret(&tx, &secret).await?;
            insert_audit(&tx, &audit).await?;
            tx.commit().await.map_err(|e| pg_err(&e))
        })
    }

    fn get_webhook_endpoint(
        &self,
        id: &str,
        merchant_id: &str,
        mode: Mode,
    ) -> StoreFuture<Option<WebhookEndpointRecord>> {
        let (pool, id, merchant_id) = (self.pool.clone(), id.to_owned(), merchant_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let live = "AND status <> 'deleted'";
            get_scoped(&pool, "webhook_endpoints", ENDPOINT_COLS, live, &id, &merchant_id, mode, endpoint_of).await
        })
    }

    fn list_webhook_endpoints(&self, merchant_id: &str, mode: Mode) -> StoreFuture<Vec<WebhookEndpointRecord>> {
        let (pool, merchant_id) = (self.pool.clone(), merchant_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let sql = format!(
                "SELECT {ENDPOINT_COLS} FROM webhook_endpoints
                 WHERE merchant_id = $1 AND mode = $2 AND status <> 'deleted' ORDER BY seq"
            );
            let rows = c.query(&sql, &[&merchant_id, &mode.as_str()]).await.map_err(|e| pg_err(&e))?;
            rows.iter().map(endpoint_of).collect()
        })
    }

    fn delete_webhook_endpoint(&self, id: &str, merchant_id: &str, mode: Mode, audit: AuditEvent) -> StoreFuture<bool> {
        let (pool, id, merchant_id) = (self.pool.clone(), id.to_owned(), merchant_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            let n = tx
                .execute(
                    "UPDATE webhook_endpoints SET status = 'deleted'
                     WHERE id = $1 AND merchant_id = $2 AND mode = $3 AND status <> 'deleted'",
                    &[&id, &merchant_id, &mode.as_str()],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            if n == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM webhook_secrets WHERE endpoint_id = $1", &[&id]).await.map_err(|e| pg_err(&e))?;
            insert_audit(&tx, &audit).await?;
            tx.commit().await.map_err(|e| pg_err(&e))?;
            Ok(true)
        })
    }

    fn rotate_webhook_secret(
        &self,
        secret: WebhookSecretRecord,
        old_expires_at: UnixSeconds,
        audit: AuditEvent,
    ) -> StoreFuture<()> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            tx.execute(
                "UPDATE webhook_secrets SET expires_at = $2
                 WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > $2)",
                &[&secret.endpoint_id, &old_expires_at],
            )
            .await
            .map_err(|e| pg_err(&e))?;
            insert_secret(&tx, &secret).await?;
            insert_audit(&tx, &audit).await?;
            tx.commit().await.map_err(|e| pg_err(&e))
        })
    }

    fn webhook_secrets(&self, endpoint_id: &str, now: UnixSeconds) -> StoreFuture<Vec<WebhookSecretRecord>> {
        let (pool, endpoint_id) = (self.pool.clone(), endpoint_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let rows = c
                .query(
                    "SELECT endpoint_id, version, secret_ct, created, expires_at FROM webhook_secrets
                     WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY version DESC",
                    &[&endpoint_id, &now],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
            rows.iter()
                .map(|r| {
                    Ok(WebhookSecretRecord {
                        endpoint_id: r.try_get(0).map_err(get)?,
                        version: u32_of(r.try_get(1).map_err(get)?, "secret version")?,
                        secret_ct: r.try_get(2).map_err(get)?,
                        created: r.try_get(3).map_err(get)?,
                        expires_at: r.try_get(4).map_err(get)?,
                    })
                })
                .collect()
        })
    }

    fn disable_webhook_endpoint(&self, id: &str, event: EventRecord, audit: AuditEvent) -> StoreFuture<bool> {
        let (pool, id) = (self.pool.clone(), id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            let n = tx
                .execute(
                    "UPDATE webhook_endpoints SET status = 'disabled' WHERE id = $1 AND status = 'enabled'",
                    &[&id],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            if n == 0 {
                return Ok(false);
            }
            insert_event(&tx, &event).await?;
            insert_audit(&tx, &audit).await?;
            tx.commit().await.map_err(|e| pg_err(&e))?;
            Ok(true)
        })
    }

    fn claim_deliveries(
        &self,
        holder: &str,
        now: UnixSeconds,
        lease_until: UnixSeconds,
        limit: u32,
    ) -> StoreFuture<Vec<DeliveryJob>> {
        let (pool, holder) = (self.deliveries.clone(), holder.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            // Instances claiming together skip each other's locked rows instead of waiting, so
            // each due delivery goes to exactly one of them.
            let rows = c
                .query(
                    "WITH due AS (
                       SELECT d.id FROM deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
                       WHERE d.status = 'pending' AND d.next_at <= $3 AND (d.lease_until IS NULL OR d.lease_until <= $3)
                       AND w.status = 'enabled' ORDER BY d.next_at, d.id LIMIT $4 FOR UPDATE OF d SKIP LOCKED)
                     UPDATE deliveries d SET lease_holder = $1, lease_until = $2
                     FROM due, events e, webhook_endpoints w
                     WHERE d.id = due.id AND e.id = d.event_id AND w.id = d.endpoint_id
                     RETURNING d.id, d.event_id, d.endpoint_id, e.merchant_id, e.mode, w.url, e.body, d.attempts,
                               d.created",
                    &[&holder, &lease_until, &now, &i64::from(limit)],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
            let mut out = rows
                .iter()
                .map(|r| {
                    Ok(DeliveryJob {
                        id: r.try_get(0).map_err(get)?,
                        event_id: r.try_get(1).map_err(get)?,
                        endpoint_id: r.try_get(2).map_err(get)?,
                        merchant_id: r.try_get(3).map_err(get)?,
                        mode: mode_of(r.try_get(4).map_err(get)?)?,
                        url: r.try_get(5).map_err(get)?,
                        body: r.try_get(6).map_err(get)?,
                        attempts: u32_of(r.try_get(7).map_err(get)?, "attempts")?,
                        created: r.try_get(8).map_err(get)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            out.sort_by_key(|d| d.id);
            Ok(out)
        })
    }

    fn record_attempts(
        &self,
        attempts: Vec<(AttemptRecord, DeliveryNext)>,
        holder: &str,
    ) -> StoreFuture<Vec<Option<Option<UnixSeconds>>>> {
        let (pool, holder) = (self.deliveries.clone(), holder.to_owned());
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            // Endpoint rows are locked in one order (by endpoint, then delivery) in every batch,
            // so two instances' batches never wait on each other in a cycle.
            let mut order: Vec<(usize, &(AttemptRecord, DeliveryNext))> = attempts.iter().enumerate().collect();
            order.sort_by(|(_, (a, _)), (_, (b, _))| {
                (a.endpoint_id.as_str(), a.delivery_id).cmp(&(b.endpoint_id.as_str(), b.delivery_id))
            });
            // The lease updates and then the attempt rows of the whole batch go out pipelined
            // (one round trip per step, not per attempt) with statements prepared once. Then
            // each endpoint of the batch is updated once, one after another in the order above.
            let release = tx.prepare_cached(RELEASE_DELIVERY).await.map_err(|e| pg_err(&e))?;
            let leased = futures_util::future::try_join_all(
                order.iter().map(|(_, (a, next))| release_delivery(&tx, &release, a, &holder, *next)),
            )
            .await?;
            let insert = tx.prepare_cached(INSERT_ATTEMPT).await.map_err(|e| pg_err(&e))?;
            let recorded: Vec<_> = order.iter().zip(&leased).filter(|(_, ours)| **ours).map(|((_, r), _)| *r).collect();
            futures_util::future::try_join_all(recorded.iter().map(|(a, _)| insert_attempt(&tx, &insert, a))).await?;
            // One or two statements per endpoint of the batch, not one per attempt: under load
            // every sequential round trip waits its turn on a busy runtime, and the batch's
            // slots return only once it is recorded.
            let mut failing = Vec::with_capacity(recorded.len());
            for group in recorded.chunk_by(|(a, _), (b, _)| a.endpoint_id == b.endpoint_id) {
                failing.extend(note_endpoint(&tx, group).await?);
            }
            let mut failing = failing.into_iter();
            let mut answers: Vec<(usize, Option<Option<UnixSeconds>>)> =
                order.iter().zip(leased).map(|((i, _), ours)| (*i, if ours { failing.next() } else { None })).collect();
            answers.sort_by_key(|(i, _)| *i);
            let out = answers.into_iter().map(|(_, answer)| answer).collect();
            tx.commit().await.map_err(|e| pg_err(&e))?;
            Ok(out)
        })
    }

    fn list_attempts(&self, event_id: &str) -> StoreFuture<Vec<AttemptRecord>> {
        let (pool, event_id) = (self.pool.clone(), event_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let rows = c
                .query(
                    "SELECT delivery_id, event_id, endpoint_id, status_code, latency_ms, error_class, response_body, created
                     FROM delivery_attempts WHERE event_id = $1 ORDER BY id",
                    &[&event_id],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
            rows.iter()
                .map(|r| {
                    Ok(AttemptRecord {
                        delivery_id: r.try_get(0).map_err(get)?,
                        event_id: r.try_get(1).map_err(get)?,
                        endpoint_id: r.try_get(2).map_err(get)?,
                        status_code: r
                            .try_get::<_, Option<i64>>(3)
                            .map_err(get)?
                            .map(|s| u16::try_from(s).map_err(|_| StoreError::Corrupt("status code")))
                            .transpose()?,
                        latency_ms: u64::try_from(r.try_get::<_, i64>(4).map_err(get)?).unwrap_or(0),
                        error_class: r.try_get(5).map_err(get)?,
                        response_body: r.try_get(6).map_err(get)?,
                        created: r.try_get(7).map_err(get)?,
                    })
                })
                .collect()
        })
    }

    fn key_last_uses(&self, merchant_id: &str) -> StoreFuture<Vec<(String, UnixSeconds, Option<String>)>> {
        let (pool, merchant_id) = (self.pool.clone(), merchant_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let keys: Vec<String> = c
                .query("SELECT id FROM api_keys WHERE merchant_id = $1 ORDER BY id", &[&merchant_id])
                .await
                .map_err(|e| pg_err(&e))?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()
                .map_err(|e| StoreError::Database(e.to_string()))?;
            // One branch per key, each planned with its own key id (a statement prepared for this
            // call is planned with its parameters' values). Correlated with `api_keys` instead,
            // the planner sees one generic key: when one key holds most of the log it walks the
            // primary key backwards expecting an early hit, which for a key never used reads the
            // whole log (25 ms at 10,000 rows against 0.2 ms this way; BENCHMARKS.md).
            let mut out = Vec::new();
            for chunk in keys.chunks(LAST_USE_KEYS_PER_STATEMENT) {
                let sql = (2..chunk.len() + 2)
                    .map(|n| {
                        format!(
                            "(SELECT u.key_id, u.ts, u.ip FROM audit_events u
                              WHERE u.merchant_id = $1 AND u.key_id = ${n} AND u.outcome = 'success'
                                AND u.event NOT LIKE 'key.%' AND u.event NOT LIKE 'devspace.%'
                              ORDER BY u.id DESC LIMIT 1)"
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" UNION ALL ");
                let mut params: Vec<&(dyn ToSql + Sync)> = vec![&merchant_id];
                params.extend(chunk.iter().map(|k| k as &(dyn ToSql + Sync)));
                let rows = c.query(&sql, &params).await.map_err(|e| pg_err(&e))?;
                let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
                for r in &rows {
                    out.push((r.try_get(0).map_err(get)?, r.try_get(1).map_err(get)?, r.try_get(2).map_err(get)?));
                }
            }
            Ok(out)
        })
    }

    fn devspace_insert_user(&self, user: UserRecord, link: Option<LinkRecord>) -> StoreFuture<()> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let u = RawUser::of(&user);
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            tx.execute(
                &format!(
                    "INSERT INTO devspace_users ({USER_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)"
                ),
                &[
                    &u.id,
                    &u.merchant_id,
                    &u.email,
                    &u.role,
                    &u.password_hash,
                    &u.totp_sealed,
                    &u.totp_enrolled,
                    &u.totp_last_step,
                    &u.recovery_hashes,
                    &u.known_ips,
                    &u.failed_signins,
                    &u.created,
                    &u.version,
                ],
            )
            .await
            .map_err(|e| pg_err(&e))?;
            if let Some(l) = link {
                tx.execute(
                    "INSERT INTO devspace_links (hash, user_id, purpose, created, expires_at) VALUES ($1,$2,$3,$4,$5)",
                    &[&l.hash, &l.user_id, &l.purpose.as_str(), &l.created, &l.expires_at],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            }
            tx.commit().await.map_err(|e| pg_err(&e))
        })
    }

    fn devspace_user(&self, key: &str, by_email: bool) -> StoreFuture<Option<UserRecord>> {
        let (pool, key) = (self.pool.clone(), key.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let sql = if by_email {
                format!("SELECT {USER_COLUMNS} FROM devspace_users WHERE email = $1")
            } else {
                format!("SELECT {USER_COLUMNS} FROM devspace_users WHERE id = $1")
            };
            let row = c.query_opt(&sql, &[&key]).await.map_err(|e| pg_err(&e))?;
            row.map(|r| pg_user(&r).and_then(RawUser::decode)).transpose()
        })
    }

    fn devspace_update_user(&self, user: UserRecord) -> StoreFuture<bool> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let u = RawUser::of(&user);
            let n = Self::execute(
                pool,
                "UPDATE devspace_users SET role = $2, password_hash = $3, totp_sealed = $4, totp_enrolled = $5,
                    totp_last_step = $6, recovery_hashes = $7, known_ips = $8, failed_signins = $9,
                    version = version + 1
                 WHERE id = $1 AND version = $10",
                vec![
                    Box::new(u.id),
                    Box::new(u.role),
                    Box::new(u.password_hash),
                    Box::new(u.totp_sealed),
                    Box::new(u.totp_enrolled),
                    Box::new(u.totp_last_step),
                    Box::new(u.recovery_hashes),
                    Box::new(u.known_ips),
                    Box::new(u.failed_signins),
                    Box::new(u.version),
                ],
            )
            .await?;
            Ok(n == 1)
        })
    }

    fn devspace_delete_user(&self, id: &str) -> StoreFuture<bool> {
        let (pool, id) = (self.pool.clone(), id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            for sql in [
                "DELETE FROM devspace_sessions WHERE user_id = $1",
                "DELETE FROM devspace_links WHERE user_id = $1",
                "DELETE FROM devspace_devices WHERE user_id = $1",
            ] {
                tx.execute(sql, &[&id]).await.map_err(|e| pg_err(&e))?;
            }
            let n = tx.execute("DELETE FROM devspace_users WHERE id = $1", &[&id]).await.map_err(|e| pg_err(&e))?;
            tx.commit().await.map_err(|e| pg_err(&e))?;
            Ok(n == 1)
        })
    }

    fn devspace_users(&self, merchant_id: &str) -> StoreFuture<Vec<UserRecord>> {
        let (pool, merchant_id) = (self.pool.clone(), merchant_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let rows = c
                .query(
                    &format!("SELECT {USER_COLUMNS} FROM devspace_users WHERE merchant_id = $1 ORDER BY created, id"),
                    &[&merchant_id],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            rows.iter().map(|r| pg_user(r).and_then(RawUser::decode)).collect()
        })
    }

    fn devspace_put_session(&self, session: SessionRecord) -> StoreFuture<()> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let (hash, user_id, stage, created, last_seen, reauth_at, ip) = session_fields(&session);
            let c = Self::client(&pool).await?;
            c.execute(
                &format!(
                    "INSERT INTO devspace_sessions ({SESSION_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7)
                     ON CONFLICT (hash) DO UPDATE SET stage = excluded.stage, last_seen = excluded.last_seen,
                     reauth_at = excluded.reauth_at"
                ),
                &[&hash, &user_id, &stage, &created, &last_seen, &reauth_at, &ip],
            )
            .await
            .map_err(|e| pg_err(&e))?;
            Ok(())
        })
    }

    fn devspace_session(&self, hash: &str) -> StoreFuture<Option<SessionRecord>> {
        let (pool, hash) = (self.pool.clone(), hash.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let row = c
                .query_opt(&format!("SELECT {SESSION_COLUMNS} FROM devspace_sessions WHERE hash = $1"), &[&hash])
                .await
                .map_err(|e| pg_err(&e))?;
            let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
            row.map(|r| {
                Ok(SessionRecord {
                    hash: r.try_get(0).map_err(get)?,
                    user_id: r.try_get(1).map_err(get)?,
                    stage: stage(r.try_get(2).map_err(get)?)?,
                    created: r.try_get(3).map_err(get)?,
                    last_seen: r.try_get(4).map_err(get)?,
                    reauth_at: r.try_get(5).map_err(get)?,
                    ip: r.try_get(6).map_err(get)?,
                })
            })
            .transpose()
        })
    }

    fn devspace_delete_sessions(&self, hash: Option<String>, user_id: Option<String>) -> StoreFuture<u64> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            Self::execute(
                pool,
                "DELETE FROM devspace_sessions
                 WHERE ($1::TEXT IS NOT NULL AND hash = $1) OR ($2::TEXT IS NOT NULL AND user_id = $2)",
                vec![Box::new(hash), Box::new(user_id)],
            )
            .await
        })
    }

    fn devspace_purge(
        &self,
        idle_before: UnixSeconds,
        created_before: UnixSeconds,
        now: UnixSeconds,
    ) -> StoreFuture<u64> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let sessions = Self::execute(
                pool.clone(),
                "DELETE FROM devspace_sessions WHERE last_seen < $1 OR created < $2",
                vec![Box::new(idle_before), Box::new(created_before)],
            )
            .await?;
            let links =
                Self::execute(pool.clone(), "DELETE FROM devspace_links WHERE expires_at <= $1", vec![Box::new(now)])
                    .await?;
            Self::execute(pool, "DELETE FROM devspace_counters WHERE expires_at <= $1", vec![Box::new(now)]).await?;
            Ok(sessions + links)
        })
    }

    fn devspace_insert_link(&self, l: LinkRecord) -> StoreFuture<()> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            Self::execute(
                pool,
                "INSERT INTO devspace_links (hash, user_id, purpose, created, expires_at) VALUES ($1,$2,$3,$4,$5)",
                vec![
                    Box::new(l.hash),
                    Box::new(l.user_id),
                    Box::new(l.purpose.as_str()),
                    Box::new(l.created),
                    Box::new(l.expires_at),
                ],
            )
            .await?;
            Ok(())
        })
    }

    fn devspace_link(&self, hash: &str, now: UnixSeconds, take: bool) -> StoreFuture<Option<LinkRecord>> {
        let (pool, hash) = (self.pool.clone(), hash.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let sql = if take {
                "DELETE FROM devspace_links WHERE hash = $1 AND expires_at > $2
                 RETURNING hash, user_id, purpose, created, expires_at"
            } else {
                "SELECT hash, user_id, purpose, created, expires_at FROM devspace_links WHERE hash = $1 AND expires_at > $2"
            };
            let row = c.query_opt(sql, &[&hash, &now]).await.map_err(|e| pg_err(&e))?;
            let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
            row.map(|r| {
                Ok(LinkRecord {
                    hash: r.try_get(0).map_err(get)?,
                    user_id: r.try_get(1).map_err(get)?,
                    purpose: purpose(r.try_get(2).map_err(get)?)?,
                    created: r.try_get(3).map_err(get)?,
                    expires_at: r.try_get(4).map_err(get)?,
                })
            })
            .transpose()
        })
    }

    fn devspace_insert_alert(&self, alert: AlertRecord, events: Vec<EventRecord>) -> StoreFuture<()> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            tx.execute(
                "INSERT INTO devspace_alerts (id, merchant_id, ts, kind, message, detail, email_pending, email_next)
                 VALUES ($1,$2,$3,$4,$5,$6,1,$3)",
                &[&alert.id, &alert.merchant_id, &alert.ts, &alert.kind, &alert.message, &alert.detail.to_string()],
            )
            .await
            .map_err(|e| pg_err(&e))?;
            for e in &events {
                insert_event(&tx, e).await?;
            }
            tx.commit().await.map_err(|e| pg_err(&e))
        })
    }

    fn devspace_alerts(&self, merchant_id: &str, limit: u32) -> StoreFuture<Vec<AlertRecord>> {
        let (pool, merchant_id) = (self.pool.clone(), merchant_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let rows = c
                .query(
                    "SELECT id, merchant_id, ts, kind, message, detail FROM devspace_alerts
                     WHERE merchant_id = $1 ORDER BY seq DESC LIMIT $2",
                    &[&merchant_id, &i64::from(limit)],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            rows.iter().map(pg_alert).collect()
        })
    }

    fn devspace_note_device(
        &self,
        user_id: &str,
        hash: &str,
        now: UnixSeconds,
        keep: u32,
    ) -> StoreFuture<(bool, bool)> {
        let (pool, user_id, hash) = (self.pool.clone(), user_id.to_owned(), hash.to_owned());
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            let before: i64 = tx
                .query_one("SELECT COUNT(*) FROM devspace_devices WHERE user_id = $1", &[&user_id])
                .await
                .map_err(|e| pg_err(&e))?
                .try_get(0)
                .map_err(|e| StoreError::Database(e.to_string()))?;
            // The insert decides "new": of two instances noting the same device, one inserts.
            let new = tx
                .execute(
                    "INSERT INTO devspace_devices (user_id, hash, first_seen, last_seen) VALUES ($1, $2, $3, $3)
                     ON CONFLICT (user_id, hash) DO NOTHING",
                    &[&user_id, &hash, &now],
                )
                .await
                .map_err(|e| pg_err(&e))?
                == 1;
            if !new {
                tx.execute(
                    "UPDATE devspace_devices SET last_seen = $3 WHERE user_id = $1 AND hash = $2",
                    &[&user_id, &hash, &now],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            }
            tx.execute(
                "DELETE FROM devspace_devices WHERE user_id = $1 AND hash NOT IN
                 (SELECT hash FROM devspace_devices WHERE user_id = $1 ORDER BY last_seen DESC, hash LIMIT $2)",
                &[&user_id, &i64::from(keep)],
            )
            .await
            .map_err(|e| pg_err(&e))?;
            tx.commit().await.map_err(|e| pg_err(&e))?;
            Ok((new, before == 0))
        })
    }

    fn devspace_claim_alert_emails(
        &self,
        now: UnixSeconds,
        retry_at: UnixSeconds,
        oldest: UnixSeconds,
        max_attempts: u32,
        limit: u32,
    ) -> StoreFuture<Vec<(AlertRecord, u32)>> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let rows = c
                .query(
                    "UPDATE devspace_alerts SET email_attempts = email_attempts + 1, email_next = $2
                     WHERE seq IN (SELECT seq FROM devspace_alerts
                         WHERE email_pending = 1 AND email_next <= $1 AND ts >= $3 AND email_attempts < $4
                         ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED)
                     RETURNING id, merchant_id, ts, kind, message, detail, email_attempts",
                    &[&now, &retry_at, &oldest, &i64::from(max_attempts), &i64::from(limit)],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            rows.iter()
                .map(|r| {
                    let attempts: i64 = r.try_get(6).map_err(|e| StoreError::Database(e.to_string()))?;
                    Ok((pg_alert(r)?, u32::try_from(attempts).unwrap_or(u32::MAX)))
                })
                .collect()
        })
    }

    fn devspace_count(&self, name: &str, expires_at: UnixSeconds) -> StoreFuture<u64> {
        let (pool, name) = (self.pool.clone(), name.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let row = c
                .query_one(
                    "INSERT INTO devspace_counters (name, count, expires_at) VALUES ($1, 1, $2)
                     ON CONFLICT (name) DO UPDATE SET count = devspace_counters.count + 1 RETURNING count",
                    &[&name, &expires_at],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            let n: i64 = row.try_get(0).map_err(|e| StoreError::Database(e.to_string()))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn devspace_alert_emailed(&self, id: &str) -> StoreFuture<()> {
        let (pool, id) = (self.pool.clone(), id.to_owned());
        bounded(OP_TIMEOUT, async move {
            Self::execute(pool, "UPDATE devspace_alerts SET email_pending = 0 WHERE id = $1", vec![Box::new(id)])
                .await
                .map(|_| ())
        })
    }

    fn insert_font(&self, f: FontRecord, data: Vec<u8>, audit: AuditEvent, max: u32) -> StoreFuture<bool> {
        let pool = self.pool.clone();
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            // Uploads of one merchant and mode take turns (on every instance) from the count to
            // the commit, so two at once cannot both pass the cap.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('fonts|' || $1 || '|' || $2, 0))",
                &[&f.merchant_id, &f.mode.as_str()],
            )
            .await
            .map_err(|e| pg_err(&e))?;
            let count: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM fonts WHERE merchant_id = $1 AND mode = $2",
                    &[&f.merchant_id, &f.mode.as_str()],
                )
                .await
                .map_err(|e| pg_err(&e))?
                .get(0);
            if count >= i64::from(max) {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO fonts (id, merchant_id, mode, family, weight, style, hash, size, data, created)
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                &[
                    &f.id,
                    &f.merchant_id,
                    &f.mode.as_str(),
                    &f.family,
                    &i64::from(f.weight),
                    &f.style,
                    &f.hash,
                    &i64::from(f.size),
                    &data,
                    &f.created,
                ],
            )
            .await
            .map_err(|e| pg_err(&e))?;
            insert_audit(&tx, &audit).await?;
            tx.commit().await.map_err(|e| pg_err(&e))?;
            Ok(true)
        })
    }

    fn list_fonts(&self, merchant_id: &str, mode: Mode) -> StoreFuture<Vec<FontRecord>> {
        let (pool, merchant_id) = (self.pool.clone(), merchant_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let sql = format!("SELECT {FONT_COLUMNS} FROM fonts WHERE merchant_id = $1 AND mode = $2 ORDER BY seq");
            let rows = c.query(&sql, &[&merchant_id, &mode.as_str()]).await.map_err(|e| pg_err(&e))?;
            let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
            rows.iter()
                .map(|r| {
                    Ok(FontRecord {
                        id: r.try_get(0).map_err(get)?,
                        merchant_id: r.try_get(1).map_err(get)?,
                        mode: mode_of(r.try_get(2).map_err(get)?)?,
                        family: r.try_get(3).map_err(get)?,
                        weight: u16::try_from(r.try_get::<_, i64>(4).map_err(get)?)
                            .map_err(|_| StoreError::Corrupt("font weight"))?,
                        style: r.try_get(5).map_err(get)?,
                        hash: r.try_get(6).map_err(get)?,
                        size: u32::try_from(r.try_get::<_, i64>(7).map_err(get)?)
                            .map_err(|_| StoreError::Corrupt("font size"))?,
                        created: r.try_get(8).map_err(get)?,
                    })
                })
                .collect()
        })
    }

    fn font_data(&self, hash: &str) -> StoreFuture<Option<Vec<u8>>> {
        let (pool, hash) = (self.pool.clone(), hash.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let row = c
                .query_opt("SELECT data FROM fonts WHERE hash = $1 LIMIT 1", &[&hash])
                .await
                .map_err(|e| pg_err(&e))?;
            row.map(|r| r.try_get(0).map_err(|e| StoreError::Database(e.to_string()))).transpose()
        })
    }

    fn delete_font(&self, id: &str, merchant_id: &str, mode: Mode, audit: AuditEvent) -> StoreFuture<bool> {
        let (pool, id, merchant_id) = (self.pool.clone(), id.to_owned(), merchant_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let mut c = Self::client(&pool).await?;
            let tx = c.transaction().await.map_err(|e| pg_err(&e))?;
            let n = tx
                .execute(
                    "DELETE FROM fonts WHERE id = $1 AND merchant_id = $2 AND mode = $3",
                    &[&id, &merchant_id, &mode.as_str()],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            if n > 0 {
                insert_audit(&tx, &audit).await?;
            }
            tx.commit().await.map_err(|e| pg_err(&e))?;
            Ok(n > 0)
        })
    }

    fn token_views(
        &self,
        merchant_id: &str,
        mode: Mode,
        before: Option<String>,
        limit: u32,
    ) -> StoreFuture<Vec<::devspace::backend::TokenView>> {
        let (pool, merchant_id) = (self.pool.clone(), merchant_id.to_owned());
        bounded(OP_TIMEOUT, async move {
            let c = Self::client(&pool).await?;
            let rows = c
                .query(
                    "SELECT id, mode, brand, last4, exp_month, exp_year, fingerprint, created, expires_at FROM tokens
                     WHERE merchant_id = $1 AND mode = $2
                       AND ($3::TEXT IS NULL OR seq < (SELECT seq FROM tokens WHERE id = $3 AND merchant_id = $1))
                     ORDER BY seq DESC LIMIT $4",
                    &[&merchant_id, &mode.as_str(), &before, &i64::from(limit)],
                )
                .await
                .map_err(|e| pg_err(&e))?;
            let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
            rows.iter()
                .map(|r| {
                    Ok(::devspace::backend::TokenView {
                        id: r.try_get(0).map_err(get)?,
                        mode: r.try_get(1).map_err(get)?,
                        brand: r.try_get(2).map_err(get)?,
                        last4: r.try_get(3).map_err(get)?,
                        exp_month: u8::try_from(r.try_get::<_, i64>(4).map_err(get)?).unwrap_or(0),
                        exp_year: u16::try_from(r.try_get::<_, i64>(5).map_err(get)?).unwrap_or(0),
                        fingerprint: r.try_get(6).map_err(get)?,
                        created: r.try_get(7).map_err(get)?,
                        expires_at: r.try_get(8).map_err(get)?,
                    })
                })
                .collect()
        })
    }
}

fn pg_alert(r: &tokio_postgres::Row) -> Result<AlertRecord, StoreError> {
    let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
    Ok(AlertRecord {
        id: r.try_get(0).map_err(get)?,
        merchant_id: r.try_get(1).map_err(get)?,
        ts: r.try_get(2).map_err(get)?,
        kind: r.try_get(3).map_err(get)?,
        message: r.try_get(4).map_err(get)?,
        detail: serde_json::from_str(r.try_get(5).map_err(get)?).unwrap_or(serde_json::Value::Null),
    })
}

fn pg_user(r: &tokio_postgres::Row) -> Result<RawUser, StoreError> {
    let get = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
    Ok(RawUser {
        id: r.try_get(0).map_err(get)?,
        merchant_id: r.try_get(1).map_err(get)?,
        email: r.try_get(2).map_err(get)?,
        role: r.try_get(3).map_err(get)?,
        password_hash: r.try_get(4).map_err(get)?,
        totp_sealed: r.try_get(5).map_err(get)?,
        totp_enrolled: r.try_get(6).map_err(get)?,
        totp_last_step: r.try_get(7).map_err(get)?,
        recovery_hashes: r.try_get(8).map_err(get)?,
        known_ips: r.try_get(9).map_err(get)?,
        failed_signins: r.try_get(10).map_err(get)?,
        created: r.try_get(11).map_err(get)?,
        version: r.try_get(12).map_err(get)?,
    })
}

/// One attempt of [`Store::record_attempts`], inside its transaction.
const RELEASE_DELIVERY: &str = "UPDATE deliveries SET attempts = attempts + 1, status = $3,
     next_at = COALESCE($4, next_at), lease_holder = NULL, lease_until = NULL
     WHERE id = $1 AND lease_holder = $2 AND status = 'pending'";

/// Ends this holder's lease of an attempted delivery with its next state (`statement`:
/// [`RELEASE_DELIVERY`]); `false` if the lease was lost meanwhile (the attempt is then not
/// recorded).
async fn release_delivery(
    tx: &deadpool_postgres::Transaction<'_>,
    statement: &tokio_postgres::Statement,
    a: &AttemptRecord,
    holder: &str,
    next: DeliveryNext,
) -> Result<bool, StoreError> {
    let (status, next_at) = delivery_next(next);
    let n = tx.execute(statement, &[&a.delivery_id, &holder, &status, &next_at]).await.map_err(|e| pg_err(&e))?;
    Ok(n > 0)
}

const INSERT_ATTEMPT: &str = "INSERT INTO delivery_attempts (delivery_id, event_id, endpoint_id, status_code,
     latency_ms, error_class, response_body, created) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)";

/// Records an attempt (`statement`: [`INSERT_ATTEMPT`]).
async fn insert_attempt(
    tx: &deadpool_postgres::Transaction<'_>,
    statement: &tokio_postgres::Statement,
    a: &AttemptRecord,
) -> Result<(), StoreError> {
    tx.execute(
        statement,
        &[
            &a.delivery_id,
            &a.event_id,
            &a.endpoint_id,
            &a.status_code.map(i64::from),
            &i64::try_from(a.latency_ms).unwrap_or(i64::MAX),
            &a.error_class,
            &a.response_body,
            &a.created,
        ],
    )
    .await
    .map_err(|e| pg_err(&e))?;
    Ok(())
}

/// Applies a batch's attempts to one endpoint (`group`, in delivery order): a failed attempt
/// marks it failing since the attempt unless it already was, a delivery clears the mark.
/// Returns, per attempt, since when the endpoint is failing after it.
async fn note_endpoint(
    tx: &deadpool_postgres::Transaction<'_>,
    group: &[&(AttemptRecord, DeliveryNext)],
) -> Result<Vec<Option<UnixSeconds>>, StoreError> {
    let Some((first, _)) = group.first() else { return Ok(Vec::new()) };
    let endpoint = &first.endpoint_id;
    if group.iter().all(|(_, next)| *next == DeliveryNext::Delivered) {
        // Only an endpoint that was failing is written: a row lock on the endpoint for every
        // delivery serialised all deliveries (and, holding pooled connections while they
        // queued, the payments) behind one row.
        let clear = tx
            .prepare_cached(
                "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
            )
            .await
            .map_err(|e| pg_err(&e))?;
        tx.execute(&clear, &[endpoint]).await.map_err(|e| pg_err(&e))?;
        return Ok(vec![None; group.len()]);
    }
    let row = tx
        .query_opt("SELECT failing_since FROM webhook_endpoints WHERE id = $1 FOR UPDATE", &[endpoint])
        .await
        .map_err(|e| pg_err(&e))?;
    let Some(row) = row else { return Ok(vec![None; group.len()]) };
    let before: Option<UnixSeconds> = row.try_get(0).map_err(|e| StoreError::Database(e.to_string()))?;
    let mut since = before;
    let answers = group
        .iter()
        .map(|(a, next)| {
            since = if *next == DeliveryNext::Delivered { None } else { since.or(Some(a.created)) };
            since
        })
        .collect();
    if since != before {
        tx.execute("UPDATE webhook_endpoints SET failing_since = $2 WHERE id = $1", &[endpoint, &since])
            .await
            .map_err(|e| pg_err(&e))?;
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_and_connection_errors_are_transient_statement_errors_are_not() {
        // Found by scripts/reliability/faults.sh postgres: `pg_ctl restart` ends the pooled
        // connections with 57P01, which was answered 500.
        for code in [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW] {
            assert!(is_transient(&code), "{}", code.code());
        }
        assert!(is_transient(&SqlState::CONNECTION_FAILURE));
        for code in [SqlState::UNIQUE_VIOLATION, SqlState::SYNTAX_ERROR, SqlState::QUERY_CANCELED] {
            assert!(!is_transient(&code), "{}", code.code());
        }
    }

    #[tokio::test]
    async fn an_operation_that_never_answers_is_unavailable_after_the_limit() {
        let hung = bounded(std::time::Duration::from_millis(50), std::future::pending::<Result<(), StoreError>>());
        assert!(matches!(hung.await, Err(StoreError::Unavailable(_))));
        let quick = bounded(std::time::Duration::from_secs(5), async { Ok::<_, StoreError>(7) });
        assert_eq!(quick.await.ok(), Some(7));
    }
}
