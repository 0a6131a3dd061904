//! SQLite implementation of [`Store`].
//!
//! - One **writer thread** owns the only write connection. Writes are closures queued on a
//!   channel; the thread drains up to [`MAX_BATCH`] of them into one transaction (each in its
//!   own savepoint, so one failing write does not undo the others), commits once with
//!   `synchronous=FULL`, then answers every waiter. This group commit is what makes durable
//!   inserts fast: one fsync covers a whole batch.
//! - A small pool of **reader connections** serves reads on the blocking thread pool; in WAL
//!   mode readers never wait for the writer.
//! - `secure_delete=ON` overwrites deleted content (expired tokens, destroyed CVCs).
//! - Migrations are numbered SQL scripts tracked with `PRAGMA user_version`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use ipnet::IpNet;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use tokio::sync::oneshot;

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

/// Maximum writes per transaction.
pub const MAX_BATCH: usize = 2048;

fn db_err(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(code, _) = &e {
        if code.code == rusqlite::ErrorCode::ConstraintViolation {
            return StoreError::Conflict;
        }
        // A full disk is a condition of the moment, not a bug: the write was rolled back
        // whole, and it succeeds again once space is freed (503 with Retry-After, not 500).
        if code.code == rusqlite::ErrorCode::DiskFull {
            return StoreError::Unavailable(e.to_string());
        }
    }
    StoreError::Database(e.to_string())
}

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type WriteJob = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

/// The SQLite store.
pub struct SqliteStore {
    writer: Mutex<Option<mpsc::Sender<WriteJob>>>,
    writer_thread: Mutex<Option<thread::JoinHandle<()>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
    /// A CVC ciphertext was destroyed since the last WAL truncation.
    cvc_destroyed: Arc<AtomicBool>,
    /// The writer truncates the WAL after its next commit.
    truncate_wal: Arc<AtomicBool>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Page cache of the writer connection, KiB (SQLite's default size, written down).
const WRITER_CACHE_KIB: u32 = 2048;
/// Page cache of each pooled reader connection, KiB: reads are point lookups and short index
/// ranges, and the operating system caches the file anyway.
const READER_CACHE_KIB: u32 = 512;
/// Reader connections kept open for reuse.
const MAX_POOLED_READERS: usize = 8;
/// SQLite's own allocations in the whole process (page caches, schemas, statements) are kept
/// under this: past it, SQLite recycles cache pages instead of allocating more (a soft limit).
/// With the caches above the sum stays well under it; it bounds what nothing else does.
const SOFT_HEAP_LIMIT_BYTES: u64 = 16 << 20;

/// The part a connection plays, which sizes its page cache.
#[derive(Clone, Copy)]
enum ConnRole {
    Writer,
    Reader,
}

fn open_conn(path: &Path, role: ConnRole) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db_err)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;
         PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
    )
    .map_err(db_err)?;
    let cache_kib = match role {
        ConnRole::Writer => WRITER_CACHE_KIB,
        ConnRole::Reader => READER_CACHE_KIB,
    };
    // A negative cache size is in KiB. The heap limit is process-wide; setting it again is
    // harmless.
    conn.execute_batch(&format!("PRAGMA cache_size = -{cache_kib}; PRAGMA soft_heap_limit = {SOFT_HEAP_LIMIT_BYTES};"))
        .map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db_err)?;
    if version > super::migrations::latest() {
        return Err(StoreError::SchemaTooNew(version));
    }
    for (i, m) in super::migrations::MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
        let tx = conn.transaction().map_err(db_err)?;
        tx.execute_batch(m.sqlite).map_err(db_err)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1)).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        tracing::info!(version = i + 1, name = m.name, "applied database migration");
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies migrations and starts the
    /// writer thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = open_conn(path, ConnRole::Writer)?;
        migrate(&mut conn)?;
        // Nothing deleted before (or by a migration) lingers in the WAL.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").map_err(db_err)?;
        let truncate_wal = Arc::new(AtomicBool::new(false));
        let cvc_destroyed = Arc::new(AtomicBool::new(false));
        let (wal_flag, dirty_flag) = (Arc::clone(&truncate_wal), Arc::clone(&cvc_destroyed));
        // WAL checkpoints stay on the writer (SQLite's automatic checkpoint every 1000 pages):
        // measured faster here than a separate checkpointing connection, whose WAL restarts
        // make the writer drop its page cache. Not more pages: 8,000 (32 MB of WAL) measured
        // faster under the payments load, but a WAL that size filled the 24 MB disk of
        // `faults.sh disk-full`, and the vault could then not restart (its checkpoint at open
        // needs room in the database file): the WAL's size is disk the vault must have free.
        let (tx, rx) = mpsc::channel::<WriteJob>();
        let handle = thread::Builder::new()
            .name("vault-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, &wal_flag, &dirty_flag))
            .map_err(|e| StoreError::Database(e.to_string()))?;
        Ok(Self {
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            readers: Arc::new(Mutex::new(Vec::new())),
            path: path.to_owned(),
            cvc_destroyed,
            truncate_wal,
        })
    }

    /// Stops the writer thread after it has committed every queued write.
    pub fn close(&self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        let handle = self.writer_thread.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        self.writer_handle().write(f)
    }

    /// A handle that queues writes from a future (for a write that depends on a read).
    fn writer_handle(&self) -> WriterHandle {
        WriterHandle(self.writer.lock().ok().and_then(|w| w.clone()))
    }

    /// Runs `f` on a pooled reader connection on the blocking thread pool (a read that may scan:
    /// lists, counts, exports).
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        let readers = Arc::clone(&self.readers);
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || with_reader(&readers, &path, f))
                .await
                .map_err(|_| StoreError::Closed)?
        })
    }

    /// Runs `f` on a pooled reader connection in the calling task, when first polled: for a
    /// read of a few rows by key (tens of microseconds from the page cache), where the hand-off
    /// to the blocking pool and back (two thread wake-ups) costs more than the read. WAL
    /// readers never wait for the writer, so this does not block on other work (only when the
    /// pool is empty does it open a connection, a few file operations, here too).
    fn read_point<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        let readers = Arc::clone(&self.readers);
        let path = self.path.clone();
        Box::pin(async move { with_reader(&readers, &path, f) })
    }
}

/// Runs `f` on a reader connection from `readers` (opened on `path` if none is free), then
/// returns the connection to the pool.
fn with_reader<T>(
    readers: &Mutex<Vec<Connection>>,
    path: &Path,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let pooled = readers.lock().ok().and_then(|mut r| r.pop());
    let conn = match pooled {
        Some(c) => c,
        None => open_conn(path, ConnRole::Reader)?,
    };
    let result = f(&conn);
    if let Ok(mut r) = readers.lock() {
        if r.len() < MAX_POOLED_READERS {
            r.push(conn);
        }
    }
    result
}

/// A clone of the writer's queue.
struct WriterHandle(Option<mpsc::Sender<WriteJob>>);

impl WriterHandle {
    /// Queues `f` on the writer thread; resolves once its batch is committed.
    fn write<T: Send + 'static>(
        self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        self.queue(f, true)
    }

    /// Like [`WriterHandle::write`], but resolves as soon as `f` has run in its batch, before
    /// the batch commits. Only for a write that is a lock, not an acknowledgement: every later
    /// write of the same caller goes to the same or a later batch, which commits after this
    /// one, so once the caller acknowledges anything (after a durable write of its own) this
    /// write is durable too; if the process dies first, nothing the caller did was durable.
    /// Writes queued meanwhile by others run on the same connection after it and see it.
    fn write_before_commit<T: Send + 'static>(
        self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        self.queue(f, false)
    }

    fn queue<T: Send + 'static>(
        self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        after_commit: bool,
    ) -> StoreFuture<T> {
        let (tx, rx) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let completion: Completion = if after_commit {
                Box::new(move |commit| {
                    let _ = tx.send(commit.and(result));
                })
            } else {
                let _ = tx.send(result);
                Box::new(|_| {})
            };
            (ok, completion)
        });
        let sent = self.0.is_some_and(|s| s.send(job).is_ok());
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// Copies the WAL into the database and truncates it to zero bytes, so that the page images of
/// deleted rows (destroyed CVC ciphertexts) are no longer in any file. `secure_delete` has
/// zeroed them in the database pages themselves. Returns whether the truncation completed
/// (readers holding old snapshots can make it give up; the caller retries later).
fn truncate_wal(conn: &Connection) -> bool {
    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0)) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(error = %db_err(e), "WAL truncation failed");
            false
        }
    }
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<WriteJob>, truncate: &AtomicBool, cvc_destroyed: &AtomicBool) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
        let began = conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err);
        if let Err(e) = began {
            tracing::error!(error = %e, "could not begin a write transaction");
            for job in batch.drain(..) {
                let (_, done) = job(&conn);
                done(Err(e.clone()));
            }
            let _ = conn.execute_batch("ROLLBACK");
            continue;
        }
        for job in batch.drain(..) {
            let _ = exec_cached(&conn, "SAVEPOINT job");
            let (ok, done) = job(&conn);
            if !ok {
                let _ = exec_cached(&conn, "ROLLBACK TO job");
            }
            let _ = exec_cached(&conn, "RELEASE job");
            completions.push(done);
        }
        let committed = conn.execute_batch("COMMIT").map_err(db_err);
        if let Err(e) = &committed {
            tracing::error!(error = %e, "group commit failed");
            let _ = conn.execute_batch("ROLLBACK");
        }
        if truncate.swap(false, Ordering::AcqRel) && !truncate_wal(&conn) {
            cvc_destroyed.store(true, Ordering::Release);
        }
        for done in completions {
            done(committed.clone());
        }
    }
    // Channel closed: checkpoint so the WAL does not linger.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
}

fn exec_cached(conn: &Connection, sql: &str) -> Result<usize, StoreError> {
    conn.prepare_cached(sql).and_then(|mut s| s.execute([])).map_err(db_err)
}

fn mode_of(s: &str) -> Result<Mode, StoreError> {
    Mode::parse(s).ok_or(StoreError::Corrupt("mode"))
}

fn u32_of(v: i64, what: &'static str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(what))
}

fn api_key_from_row(row: &Row<'_>) -> rusqlite::Result<(ApiKeyRecordRaw, ())> {
    Ok((
        ApiKeyRecordRaw {
            id: row.get(0)?,
            merchant_id: row.get(1)?,
            kind: row.get(2)?,
            mode: row.get(3)?,
            role: row.get(4)?,
            hash: row.get(5)?,
            prefix: row.get(6)?,
            label: row.get(7)?,
            created: row.get(8)?,
            expires_at: row.get(9)?,
            revoked_at: row.get(10)?,
            allowed_origins: row.get(11)?,
            ip_allowlist: row.get(12)?,
        },
        (),
    ))
}

struct ApiKeyRecordRaw {
    id: String,
    merchant_id: String,
    kind: String,
    mode: String,
    role: Option<String>,
    hash: Vec<u8>,
    prefix: String,
    label: String,
    created: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    allowed_origins: String,
    ip_allowlist: String,
}

impl ApiKeyRecordRaw {
    fn decode(self) -> Result<ApiKeyRecord, StoreError> {
        let hash: [u8; 32] = self.hash.as_slice().try_into().map_err(|_| StoreError::Corrupt("key hash"))?;
        let origins: Vec<String> =
            serde_json::from_str(&self.allowed_origins).map_err(|_| StoreError::Corrupt("origins"))?;
        let ips: Vec<String> = serde_json::from_str(&self.ip_allowlist).map_err(|_| StoreError::Corrupt("ips"))?;
        let ip_allowlist = ips
            .iter()
            .map(|s| s.parse::<IpNet>().map_err(|_| StoreError::Corrupt("cidr")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ApiKeyRecord {
            id: self.id,
            merchant_id: self.merchant_id,
            kind: KeyKind::parse(&self.kind).ok_or(StoreError::Corrupt("key kind"))?,
            mode: mode_of(&self.mode)?,
            role: match self.role {
                Some(r) => Some(Role::parse(&r).ok_or(StoreError::Corrupt("role"))?),
                None => None,
            },
            hash,
            prefix: self.prefix,
            label: self.label,
            created: self.created,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            allowed_origins: origins,
            ip_allowlist,
        })
    }
}

fn json_list<T: ToString>(items: &[T]) -> String {
    serde_json::to_string(&items.iter().map(ToString::to_string).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".to_owned())
}

fn insert_audit(conn: &Connection, e: &AuditEvent) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_events (ts, event, outcome, merchant_id, mode, key_id, ip, request_id, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            e.ts,
            e.event,
            e.outcome,
            e.merchant_id,
            e.mode.map(Mode::as_str),
            e.key_id,
            e.ip,
            e.request_id,
            e.detail.to_string()
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

const TOKEN_COLS: &str = "id, merchant_id, mode, brand, last4, exp_month, exp_year, fingerprint, key_version, \
                          card_ct, cvc_ct, cvc_expires_at, created, expires_at";

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<TokenRaw> {
    Ok(TokenRaw {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        mode: row.get(2)?,
        brand: row.get(3)?,
        last4: row.get(4)?,
        exp_month: row.get(5)?,
        exp_year: row.get(6)?,
        fingerprint: row.get(7)?,
        key_version: row.get(8)?,
        card_ct: row.get(9)?,
        cvc_ct: row.get(10)?,
        cvc_expires_at: row.get(11)?,
        created: row.get(12)?,
        expires_at: row.get(13)?,
    })
}

struct TokenRaw {
    id: String,
    merchant_id: String,
    mode: String,
    brand: String,
    last4: String,
    exp_month: i64,
    exp_year: i64,
    fingerprint: String,
    key_version: i64,
    card_ct: Vec<u8>,
    cvc_ct: Option<Vec<u8>>,
    cvc_expires_at: Option<i64>,
    created: i64,
    expires_at: i64,
}

impl TokenRaw {
    fn decode(self) -> Result<TokenRecord, StoreError> {
        Ok(TokenRecord {
            id: self.id,
            merchant_id: self.merchant_id,
            mode: mode_of(&self.mode)?,
            brand: self.brand,
            last4: self.last4,
            exp_month: u8::try_from(self.exp_month).map_err(|_| StoreError::Corrupt("exp_month"))?,
            exp_year: u16::try_from(self.exp_year).map_err(|_| StoreError::Corrupt("exp_year"))?,
            fingerprint: self.fingerprint,
            key_version: u32_of(self.key_version, "key_version")?,
            card_ct: self.card_ct,
            cvc_ct: self.cvc_ct,
            cvc_expires_at: self.cvc_expires_at,
            created: self.created,
            expires_at: self.expires_at,
        })
    }
}

fn select_token(
    conn: &Connection,
    id: &str,
    merchant_id: &str,
    mode: Mode,
    now: UnixSeconds,
) -> Result<Option<TokenRecord>, StoreError> {
    let sql =
        format!("SELECT {TOKEN_COLS} FROM tokens WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3 AND expires_at > ?4");
    let raw = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row(params![id, merchant_id, mode.as_str(), now], token_from_row).optional())
        .map_err(db_err)?;
    raw.map(TokenRaw::decode).transpose()
}

fn idempotency_from_row(row: &Row<'_>) -> rusqlite::Result<(String, String, i64, String, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
}

fn select_idempotency(conn: &Connection, scope: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT scope, body_hash, status, response, created FROM idempotency WHERE scope = ?1 AND status <> 0",
        )
        .and_then(|mut s| s.query_row([scope], idempotency_from_row).optional())
        .map_err(db_err)?;
    row.map(|(scope, body_hash, status, response, created)| {
        Ok(IdempotencyRecord {
            scope,
            body_hash,
            status: u16::try_from(status).map_err(|_| StoreError::Corrupt("status"))?,
            response,
            created,
        })
    })
    .transpose()
}

/// Completes a pending idempotency claim with the response (or inserts the record).
fn complete_idempotency(c: &Connection, rec: &IdempotencyRecord) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO idempotency (scope, body_hash, status, response, created) VALUES (?1,?2,?3,?4,?5)
         ON CONFLICT (scope) DO UPDATE SET body_hash = excluded.body_hash, status = excluded.status,
         response = excluded.response, created = excluded.created WHERE idempotency.status = 0",
    )
    .and_then(|mut s| s.execute(params![rec.scope, rec.body_hash, rec.status, rec.response, rec.created]))
    .map_err(db_err)?;
    Ok(())
}

/// [`Store::claim_idempotency`] on the writer's connection.
fn claim_scope(
    c: &Connection,
    scope: &str,
    body_hash: &str,
    now: UnixSeconds,
    lease_before: UnixSeconds,
) -> Result<Claim, StoreError> {
    let claimed = c
        .prepare_cached(
            "INSERT INTO idempotency (scope, body_hash, status, response, created) VALUES (?1, ?2, 0, '', ?3)
             ON CONFLICT (scope) DO UPDATE SET body_hash = excluded.body_hash, created = excluded.created
             WHERE idempotency.status = 0 AND idempotency.created <= ?4",
        )
        .and_then(|mut s| s.execute(params![scope, body_hash, now, lease_before]))
        .map_err(db_err)?;
    if claimed > 0 {
        return Ok(Claim::Claimed);
    }
    Ok(match select_idempotency(c, scope)? {
        Some(done) => Claim::Done(done),
        None => Claim::InFlight,
    })
}

macro_rules! insert_payment_sql {
    () => {
        "INSERT INTO payments (id, merchant_id, mode, status, amount, currency, amount_capturable,
         amount_captured, amount_refunded, created, data) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,0,?9,?10)"
    };
}

/// Inserts a payment row. An existing id is an error ([`StoreError::Conflict`]), or with
/// `skip_existing` nothing is inserted. Returns the number of rows inserted. `data` is
/// `p.data` as JSON text, written by the caller before it queues the write (the writer thread
/// is every write's serial path: it does no work a caller can do).
fn insert_payment_row(c: &Connection, p: &PaymentRecord, data: &str, skip_existing: bool) -> Result<usize, StoreError> {
    c.prepare_cached(if skip_existing {
        concat!(insert_payment_sql!(), " ON CONFLICT (id) DO NOTHING")
    } else {
        insert_payment_sql!()
    })
    .and_then(|mut s| {
        s.execute(params![
            p.id,
            p.merchant_id,
            p.mode.as_str(),
            p.status,
            p.amount,
            p.currency,
            p.amount_capturable,
            p.amount_captured,
            p.created,
            data
        ])
    })
    .map_err(db_err)
}

/// Destroys a token's CVC ciphertext; `true` if there was one (see [`Store::destroy_cvc`]).
fn destroy_cvc_row(c: &Connection, id: &str, dirty: &AtomicBool) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached("UPDATE tokens SET cvc_ct = NULL, cvc_expires_at = NULL WHERE id = ?1 AND cvc_ct IS NOT NULL")
        .and_then(|mut s| s.execute([id]))
        .map_err(db_err)?;
    if n > 0 {
        // The WAL must be truncated so that no copy of the ciphertext survives in it.
        dirty.store(true, Ordering::Release);
    }
    Ok(n > 0)
}

/// Inserts an event and a pending delivery to every enabled endpoint that wants its type.
fn insert_event(c: &Connection, e: &EventRecord) -> Result<(), StoreError> {
    c.prepare_cached("INSERT INTO events (id, merchant_id, mode, type, created, body) VALUES (?1,?2,?3,?4,?5,?6)")
        .and_then(|mut s| s.execute(params![e.id, e.merchant_id, e.mode.as_str(), e.event_type, e.created, e.body]))
        .map_err(db_err)?;
    c.prepare_cached(
        "INSERT INTO deliveries (event_id, endpoint_id, status, attempts, next_at, created)
         SELECT ?1, id, 'pending', 0, ?2, ?2 FROM webhook_endpoints
         WHERE merchant_id = ?3 AND mode = ?4 AND status = 'enabled'
         AND (instr(enabled_events, ',*,') > 0 OR instr(enabled_events, ',' || ?5 || ',') > 0)",
    )
    .and_then(|mut s| s.execute(params![e.id, e.created, e.merchant_id, e.mode.as_str(), e.event_type]))
    .map_err(db_err)?;
    Ok(())
}

fn insert_secret(c: &Connection, s: &WebhookSecretRecord) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO webhook_secrets (endpoint_id, version, secret_ct, created, expires_at) VALUES (?1,?2,?3,?4,?5)",
        params![s.endpoint_id, s.version, s.secret_ct, s.created, s.expires_at],
    )
    .map_err(db_err)?;
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

/// [`Store::record_attempts`] on the writer's connection: per attempt, its delivery's update
/// (checked against the lease) and its attempt row; per endpoint of the batch, one read of
/// `failing_since` and at most one update of it, whatever the number of its attempts (under
/// load a batch holds hundreds of attempts to the same endpoint, nearly all delivered, which
/// leave a healthy endpoint's row as it was).
fn record_attempts_on(
    c: &Connection,
    attempts: &[(AttemptRecord, DeliveryNext)],
    holder: &str,
) -> Result<Vec<Option<Option<UnixSeconds>>>, StoreError> {
    // Endpoint id → (failing_since when the batch began, after the attempts so far).
    let mut endpoints: std::collections::HashMap<&str, (Option<i64>, Option<i64>)> = std::collections::HashMap::new();
    let mut answers = Vec::with_capacity(attempts.len());
    for (a, next) in attempts {
        let (status, next_at) = delivery_next(*next);
        let n = c
            .prepare_cached(
                "UPDATE deliveries SET attempts = attempts + 1, status = ?3, next_at = COALESCE(?4, next_at),
                 lease_holder = NULL, lease_until = NULL WHERE id = ?1 AND lease_holder = ?2 AND status = 'pending'",
            )
            .and_then(|mut s| s.execute(params![a.delivery_id, holder, status, next_at]))
            .map_err(db_err)?;
        if n == 0 {
            answers.push(None);
            continue;
        }
        c.prepare_cached(
            "INSERT INTO delivery_attempts (delivery_id, event_id, endpoint_id, status_code, latency_ms, error_class,
             response_body, created) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
        )
        .and_then(|mut s| {
            s.execute(params![
                a.delivery_id,
                a.event_id,
                a.endpoint_id,
                a.status_code,
                i64::try_from(a.latency_ms).unwrap_or(i64::MAX),
                a.error_class,
                a.response_body,
                a.created
            ])
        })
        .map_err(db_err)?;
        let since = match endpoints.entry(a.endpoint_id.as_str()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let stored: Option<i64> = c
                    .prepare_cached("SELECT failing_since FROM webhook_endpoints WHERE id = ?1")
                    .and_then(|mut s| s.query_row([&a.endpoint_id], |r| r.get(0)).optional())
                    .map_err(db_err)?
                    .flatten();
                e.insert((stored, stored))
            }
        };
        // A success ends a failing streak; a failure starts one unless one is running.
        since.1 = if *next == DeliveryNext::Delivered { None } else { Some(since.1.unwrap_or(a.created)) };
        answers.push(Some(since.1));
    }
    let mut changed: Vec<(&str, Option<i64>)> =
        endpoints.into_iter().filter(|(_, (was, now))| was != now).map(|(id, (_, now))| (id, now)).collect();
    changed.sort_unstable();
    for (id, since) in changed {
        c.prepare_cached("UPDATE webhook_endpoints SET failing_since = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, since]))
            .map_err(db_err)?;
    }
    Ok(answers)
}

fn json_of(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt("json document"))
}

fn payment_of(r: &Row<'_>) -> Result<PaymentRecord, StoreError> {
    Ok(PaymentRecord {
        id: r.get(0).map_err(db_err)?,
        merchant_id: r.get(1).map_err(db_err)?,
        mode: mode_of(&r.get::<_, String>(2).map_err(db_err)?)?,
        status: r.get(3).map_err(db_err)?,
        amount: r.get(4).map_err(db_err)?,
        currency: r.get(5).map_err(db_err)?,
        amount_capturable: r.get(6).map_err(db_err)?,
        amount_captured: r.get(7).map_err(db_err)?,
        amount_refunded: r.get(8).map_err(db_err)?,
        created: r.get(9).map_err(db_err)?,
        data: json_of(&r.get::<_, String>(10).map_err(db_err)?)?,
    })
}

fn refund_of(r: &Row<'_>) -> Result<RefundRecord, StoreError> {
    Ok(RefundRecord {
        id: r.get(0).map_err(db_err)?,
        payment_id: r.get(1).map_err(db_err)?,
        merchant_id: r.get(2).map_err(db_err)?,
        mode: mode_of(&r.get::<_, String>(3).map_err(db_err)?)?,
        amount: r.get(4).map_err(db_err)?,
        status: r.get(5).map_err(db_err)?,
        created: r.get(6).map_err(db_err)?,
        data: json_of(&r.get::<_, String>(7).map_err(db_err)?)?,
    })
}

fn event_of(r: &Row<'_>) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        id: r.get(0).map_err(db_err)?,
        merchant_id: r.get(1).map_err(db_err)?,
        mode: mode_of(&r.get::<_, String>(2).map_err(db_err)?)?,
        event_type: r.get(3).map_err(db_err)?,
        created: r.get(4).map_err(db_err)?,
        body: r.get(5).map_err(db_err)?,
    })
}

fn endpoint_of(r: &Row<'_>) -> Result<WebhookEndpointRecord, StoreError> {
    Ok(WebhookEndpointRecord {
        id: r.get(0).map_err(db_err)?,
        merchant_id: r.get(1).map_err(db_err)?,
        mode: mode_of(&r.get::<_, String>(2).map_err(db_err)?)?,
        url: r.get(3).map_err(db_err)?,
        enabled_events: events_of_column(&r.get::<_, String>(4).map_err(db_err)?),
        status: r.get(5).map_err(db_err)?,
        description: r.get(6).map_err(db_err)?,
        created: r.get(7).map_err(db_err)?,
        failing_since: r.get(8).map_err(db_err)?,
    })
}

fn font_of(r: &Row<'_>) -> Result<FontRecord, StoreError> {
    Ok(FontRecord {
        id: r.get(0).map_err(db_err)?,
        merchant_id: r.get(1).map_err(db_err)?,
        mode: mode_of(&r.get::<_, String>(2).map_err(db_err)?)?,
        family: r.get(3).map_err(db_err)?,
        weight: r.get(4).map_err(db_err)?,
        style: r.get(5).map_err(db_err)?,
        hash: r.get(6).map_err(db_err)?,
        size: r.get(7).map_err(db_err)?,
        created: r.get(8).map_err(db_err)?,
    })
}

/// Writes what goes with a state change in its transaction: its event (with deliveries) and
/// the request's idempotency record.
fn outbox(
    c: &Connection,
    event: Option<&EventRecord>,
    idempotency: Option<&IdempotencyRecord>,
) -> Result<(), StoreError> {
    if let Some(e) = event {
        insert_event(c, e)?;
    }
    if let Some(rec) = idempotency {
        complete_idempotency(c, rec)?;
    }
    Ok(())
}

/// One row of `table` by id, scoped to a merchant and mode (`extra`: more conditions).
#[allow(clippy::too_many_arguments)]
fn get_scoped<T>(
    c: &Connection,
    table: &str,
    cols: &str,
    extra: &str,
    id: &str,
    merchant_id: &str,
    mode: Mode,
    decode: fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    c.prepare_cached(&format!("SELECT {cols} FROM {table} WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3 {extra}"))
        .and_then(|mut s| s.query_row(params![id, merchant_id, mode.as_str()], |r| Ok(decode(r))).optional())
        .map_err(db_err)?
        .transpose()
}

/// Newest-first page of `table` under `filter` (`kind_col` is what `filter.kind` matches).
fn list_rows<T>(
    c: &Connection,
    table: &str,
    cols: &str,
    kind_col: &str,
    filter: &ListFilter,
    decode: fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    // Only the refunds table is filtered by status besides its kind column (the payment).
    let status = if table == "refunds" { "(?8 IS NULL OR status = ?8)" } else { "(?8 IS NULL OR 1)" };
    let mut s = c
        .prepare_cached(&format!(
            "SELECT {cols} FROM {table} WHERE (?1 IS NULL OR merchant_id = ?1) AND (?2 IS NULL OR mode = ?2)
             AND (?3 IS NULL OR {kind_col} = ?3) AND (?4 IS NULL OR created >= ?4) AND (?5 IS NULL OR created < ?5)
             AND (?6 IS NULL OR seq < (SELECT seq FROM {table} WHERE id = ?6)) AND {status}
             ORDER BY seq DESC LIMIT ?7"
        ))
        .map_err(db_err)?;
    let rows = s
        .query_map(
            params![
                filter.merchant_id,
                filter.mode.map(Mode::as_str),
                filter.kind,
                filter.created_gte,
                filter.created_lt,
                filter.starting_after,
                filter.limit,
                if table == "refunds" { filter.refund_status.as_deref() } else { None }
            ],
            |r| Ok(decode(r)),
        )
        .map_err(db_err)?;
    rows.map(|r| r.map_err(db_err).and_then(|x| x)).collect()
}

impl Store for SqliteStore {
    fn close(&self) {
        SqliteStore::close(self);
    }

    fn get_meta(&self, key: &str) -> StoreFuture<Option<String>> {
        let key = key.to_owned();
        self.read(move |c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(db_err)
        })
    }

    fn set_meta(&self, key: &str, value: &str) -> StoreFuture<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(db_err)?;
            Ok(())
        })
    }

    fn create_merchant(&self, m: MerchantRecord) -> StoreFuture<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO merchants (id, name, created) VALUES (?1, ?2, ?3)",
                params![m.id, m.name, m.created],
            )
            .map_err(db_err)?;
            Ok(())
        })
    }

    fn list_merchants(&self) -> StoreFuture<Vec<MerchantRecord>> {
        self.read(|c| {
            let mut s = c.prepare("SELECT id, name, created FROM merchants ORDER BY created, id").map_err(db_err)?;
            let rows = s
                .query_map([], |r| Ok(MerchantRecord { id: r.get(0)?, name: r.get(1)?, created: r.get(2)? }))
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
    }

    fn insert_wrapped_key(&self, k: WrappedKeyRecord) -> StoreFuture<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO wrapped_keys (merchant_id, mode, purpose, version, wrapped, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![k.merchant_id, k.mode.as_str(), k.purpose.as_str(), k.version, k.wrapped, k.created],
            )
            .map_err(db_err)?;
            Ok(())
        })
    }

    fn rewrap_keys(&self, keys: Vec<WrappedKeyRecord>, meta: Vec<(String, String)>) -> StoreFuture<()> {
        self.write(move |c| {
            for k in &keys {
                let n = c
                    .execute(
                        "UPDATE wrapped_keys SET wrapped = ?5
                         WHERE merchant_id = ?1 AND mode = ?2 AND purpose = ?3 AND version = ?4",
                        params![k.merchant_id, k.mode.as_str(), k.purpose.as_str(), k.version, k.wrapped],
                    )
                    .map_err(db_err)?;
                if n != 1 {
                    return Err(StoreError::Database("a wrapped key changed during the master-key rotation".into()));
                }
            }
            for (key, value) in &meta {
                c.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![key, value],
                )
                .map_err(db_err)?;
            }
            Ok(())
        })
    }

    fn retire_data_key(&self, merchant_id: &str, mode: Mode, version: u32) -> StoreFuture<bool> {
        let merchant_id = merchant_id.to_owned();
        self.write(move |c| {
            let n = c
                .execute(
                    "DELETE FROM wrapped_keys WHERE merchant_id = ?1 AND mode = ?2 AND purpose = 'data' AND version = ?3
                     AND version < (SELECT MAX(version) FROM wrapped_keys
                                    WHERE merchant_id = ?1 AND mode = ?2 AND purpose = 'data')
                     AND NOT EXISTS (SELECT 1 FROM tokens WHERE merchant_id = ?1 AND mode = ?2 AND key_version = ?3)",
                    params![merchant_id, mode.as_str(), version],
                )
                .map_err(db_err)?;
            Ok(n > 0)
        })
    }

    fn list_wrapped_keys(&self) -> StoreFuture<Vec<WrappedKeyRecord>> {
        self.read(|c| {
            let mut s = c
                .prepare("SELECT merchant_id, mode, purpose, version, wrapped, created FROM wrapped_keys")
                .map_err(db_err)?;
            let rows = s
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                })
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (merchant_id, mode, purpose, version, wrapped, created) = row.map_err(db_err)?;
                let purpose = match purpose.as_str() {
                    "data" => KeyPurpose::Data,
                    "fingerprint" => KeyPurpose::Fingerprint,
                    _ => return Err(StoreError::Corrupt("key purpose")),
                };
                out.push(WrappedKeyRecord {
                    merchant_id,
                    mode: mode_of(&mode)?,
                    purpose,
                    version: u32_of(version, "key version")?,
                    wrapped,
                    created,
                });
            }
            Ok(out)
        })
    }

    fn insert_api_key(&self, k: ApiKeyRecord, audit: AuditEvent) -> StoreFuture<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO api_keys (id, merchant_id, kind, mode, role, hash, prefix, label, created, expires_at,
                 revoked_at, allowed_origins, ip_allowlist) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
                params![
                    k.id,
                    k.merchant_id,
                    k.kind.as_str(),
                    k.mode.as_str(),
                    k.role.map(Role::as_str),
                    k.hash.as_slice(),
                    k.prefix,
                    k.label,
                    k.created,
                    k.expires_at,
                    k.revoked_at,
                    json_list(&k.allowed_origins),
                    json_list(&k.ip_allowlist)
                ],
            )
            .map_err(db_err)?;
            insert_audit(c, &audit)
        })
    }

    fn update_api_key(&self, k: ApiKeyRecord, audit: AuditEvent) -> StoreFuture<()> {
        self.write(move |c| {
            c.execute(
                "UPDATE api_keys SET expires_at = ?2, revoked_at = ?3, allowed_origins = ?4, ip_allowlist = ?5,
                 label = ?6 WHERE id = ?1",
                params![
                    k.id,
                    k.expires_at,
                    k.revoked_at,
                    json_list(&k.allowed_origins),
                    json_list(&k.ip_allowlist),
                    k.label
                ],
            )
            .map_err(db_err)?;
            insert_audit(c, &audit)
        })
    }

    fn list_api_keys(&self) -> StoreFuture<Vec<ApiKeyRecord>> {
        self.read(|c| {
            let mut s = c
                .prepare(
                    "SELECT id, merchant_id, kind, mode, role, hash, prefix, label, created, expires_at, revoked_at,
                     allowed_origins, ip_allowlist FROM api_keys ORDER BY created, id",
                )
                .map_err(db_err)?;
            let rows = s.query_map([], api_key_from_row).map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row.map_err(db_err)?.0.decode()?);
            }
            Ok(out)
        })
    }

    fn create_token(
        &self,
        t: TokenRecord,
        idempotency: Option<IdempotencyRecord>,
        audit: AuditEvent,
    ) -> StoreFuture<CreateOutcome> {
        self.write(move |c| {
            if let Some(rec) = &idempotency {
                if let Some(existing) = select_idempotency(c, &rec.scope)? {
                    return Ok(CreateOutcome::IdempotencyExists(existing));
                }
            }
            c.prepare_cached(
                "INSERT INTO tokens (id, merchant_id, mode, brand, last4, exp_month, exp_year, fingerprint,
                 key_version, card_ct, cvc_ct, cvc_expires_at, created, expires_at)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    t.id,
                    t.merchant_id,
                    t.mode.as_str(),
                    t.brand,
                    t.last4,
                    t.exp_month,
                    t.exp_year,
                    t.fingerprint,
                    t.key_version,
                    t.card_ct,
                    t.cvc_ct,
                    t.cvc_expires_at,
                    t.created,
                    t.expires_at
                ])
            })
            .map_err(db_err)?;
            if let Some(rec) = &idempotency {
                complete_idempotency(c, rec)?;
            }
            insert_audit(c, &audit)?;
            Ok(CreateOutcome::Created)
        })
    }

    fn get_token(&self, id: &str, merchant_id: &str, mode: Mode, now: UnixSeconds) -> StoreFuture<Option<TokenRecord>> {
        let (id, merchant_id) = (id.to_owned(), merchant_id.to_owned());
        self.read_point(move |c| select_token(c, &id, &merchant_id, mode, now))
    }

    fn delete_token(&self, id: &str, merchant_id: &str, mode: Mode, now: UnixSeconds) -> StoreFuture<bool> {
        let (id, merchant_id) = (id.to_owned(), merchant_id.to_owned());
        self.write(move |c| {
            let n = c
                .execute(
                    "DELETE FROM tokens WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3 AND expires_at > ?4",
                    params![id, merchant_id, mode.as_str(), now],
                )
                .map_err(db_err)?;
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
        let (id, merchant_id) = (id.to_owned(), merchant_id.to_owned());
        self.read_point(move |c| {
            let Some(mut t) = select_token(c, &id, &merchant_id, mode, now)? else {
                return Ok(None);
            };
            if t.cvc_expires_at.is_some_and(|at| at <= now) {
                t.cvc_ct = None;
            }
            Ok(Some(t))
        })
    }

    fn destroy_cvc(&self, id: &str) -> StoreFuture<bool> {
        let id = id.to_owned();
        let dirty = Arc::clone(&self.cvc_destroyed);
        // On the single writer: of concurrent callers exactly one sees `true`.
        self.write(move |c| destroy_cvc_row(c, &id, &dirty))
    }

    fn purge_cvcs(&self, now: UnixSeconds) -> StoreFuture<u64> {
        let (dirty, truncate) = (Arc::clone(&self.cvc_destroyed), Arc::clone(&self.truncate_wal));
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE tokens SET cvc_ct = NULL, cvc_expires_at = NULL WHERE cvc_ct IS NOT NULL AND cvc_expires_at <= ?1",
                    [now],
                )
                .map_err(db_err)?;
            if n > 0 || dirty.swap(false, Ordering::AcqRel) {
                truncate.store(true, Ordering::Release);
            }
            Ok(n as u64)
        })
    }

    fn purge_expired(&self, now: UnixSeconds, idempotency_before: UnixSeconds) -> StoreFuture<PurgeCounts> {
        self.write(move |c| {
            let tokens = c.execute("DELETE FROM tokens WHERE expires_at <= ?1", [now]).map_err(db_err)?;
            let idempotency =
                c.execute("DELETE FROM idempotency WHERE created < ?1", [idempotency_before]).map_err(db_err)?;
            Ok(PurgeCounts { tokens: tokens as u64, cvcs: 0, idempotency: idempotency as u64 })
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
        let merchant_id = merchant_id.to_owned();
        self.read(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT seq, id, key_version, card_ct, cvc_ct FROM tokens
                     WHERE seq > ?1 AND merchant_id = ?2 AND mode = ?3 AND key_version < ?4 ORDER BY seq LIMIT ?5",
                )
                .map_err(db_err)?;
            let rows = s
                .query_map(params![cursor, merchant_id, mode.as_str(), current, limit], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (cursor, id, v, card_ct, cvc_ct) = row.map_err(db_err)?;
                out.push(CipherRow { cursor, id, key_version: u32_of(v, "key_version")?, card_ct, cvc_ct });
            }
            Ok(out)
        })
    }

    fn replace_ciphertexts(&self, rows: Vec<(CipherRow, u32)>) -> StoreFuture<u64> {
        self.write(move |c| {
            let mut n = 0u64;
            let mut s = c
                .prepare_cached(
                    "UPDATE tokens SET card_ct = ?2, cvc_ct = CASE WHEN cvc_ct IS NULL THEN NULL ELSE ?3 END,
                     key_version = ?4 WHERE id = ?1 AND key_version = ?5",
                )
                .map_err(db_err)?;
            for (row, new_version) in rows {
                n += s
                    .execute(params![row.id, row.card_ct, row.cvc_ct, new_version, row.key_version])
                    .map_err(db_err)? as u64;
            }
            Ok(n)
        })
    }

    fn count_below_version(&self, merchant_id: &str, mode: Mode, current: u32) -> StoreFuture<u64> {
        let merchant_id = merchant_id.to_owned();
        self.read(move |c| {
            let n: i64 = c
                .query_row(
                    "SELECT count(*) FROM tokens WHERE merchant_id = ?1 AND mode = ?2 AND key_version < ?3",
                    params![merchant_id, mode.as_str(), current],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn get_idempotency(&self, scope: &str) -> StoreFuture<Option<IdempotencyRecord>> {
        let scope = scope.to_owned();
        self.read_point(move |c| select_idempotency(c, &scope))
    }

    fn claim_idempotency(
        &self,
        scope: &str,
        body_hash: &str,
        now: UnixSeconds,
        lease_before: UnixSeconds,
    ) -> StoreFuture<Claim> {
        let (scope, body_hash) = (scope.to_owned(), body_hash.to_owned());
        // A claim is a lock, not an answer: the request answers only after a durable write of
        // its own (its token, payment or refund, with the idempotency record), so it need not
        // wait for this batch's fsync (one fewer on every payment and idempotent tokenize).
        self.writer_handle().write_before_commit(move |c| claim_scope(c, &scope, &body_hash, now, lease_before))
    }

    fn try_lease(&self, job: &str, holder: &str, now: UnixSeconds, until: UnixSeconds) -> StoreFuture<bool> {
        let (job, holder) = (job.to_owned(), holder.to_owned());
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "INSERT INTO leases (job, holder, until) VALUES (?1, ?2, ?4)
                     ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, until = excluded.until
                     WHERE leases.holder = excluded.holder OR leases.until <= ?3",
                )
                .and_then(|mut s| s.execute(params![job, holder, now, until]))
                .map_err(db_err)?;
            Ok(n > 0)
        })
    }

    fn release_idempotency(&self, scope: &str) -> StoreFuture<()> {
        let scope = scope.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM idempotency WHERE scope = ?1 AND status = 0", [scope]).map_err(db_err)?;
            Ok(())
        })
    }

    fn append_audit(&self, events: Vec<AuditEvent>) -> StoreFuture<()> {
        self.write(move |c| {
            for e in &events {
                insert_audit(c, e)?;
            }
            Ok(())
        })
    }

    fn list_audit(&self, filter: AuditFilter) -> StoreFuture<Vec<AuditEvent>> {
        self.read(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT id, ts, event, outcome, merchant_id, mode, key_id, ip, request_id, detail FROM audit_events
                     WHERE (?1 IS NULL OR merchant_id = ?1) AND (?2 IS NULL OR event = ?2) AND (?3 IS NULL OR id < ?3)
                       AND (?5 IS NULL OR key_id = ?5) AND (?6 IS NULL OR ip = ?6)
                       AND (?7 IS NULL OR json_extract(detail, '$.actor') = ?7)
                       AND (?8 IS NULL OR ts >= ?8) AND (?9 IS NULL OR ts < ?9)
                     ORDER BY id DESC LIMIT ?4",
                )
                .map_err(db_err)?;
            let args = params![
                filter.merchant_id,
                filter.event,
                filter.before_id,
                filter.limit,
                filter.key_id,
                filter.ip,
                filter.actor,
                filter.since,
                filter.until
            ];
            let rows = s
                .query_map(args, |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, Option<String>>(7)?,
                        r.get::<_, Option<String>>(8)?,
                        r.get::<_, String>(9)?,
                    ))
                })
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (id, ts, event, outcome, merchant_id, mode, key_id, ip, request_id, detail) =
                    row.map_err(db_err)?;
                out.push(AuditEvent {
                    id,
                    ts,
                    event,
                    outcome,
                    merchant_id,
                    mode: mode.as_deref().and_then(Mode::parse),
                    key_id,
                    ip,
                    request_id,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                });
            }
            Ok(out)
        })
    }

    fn insert_payment(&self, p: PaymentRecord, event: Option<EventRecord>) -> StoreFuture<()> {
        let data = p.data.to_string();
        self.write(move |c| {
            insert_payment_row(c, &p, &data, false)?;
            if let Some(e) = &event {
                insert_event(c, e)?;
            }
            Ok(())
        })
    }

    fn begin_payment(
        &self,
        scope: &str,
        body_hash: &str,
        lease_before: UnixSeconds,
        payment: PaymentRecord,
        cvc_of: Option<String>,
    ) -> StoreFuture<PaymentStart> {
        let (scope, body_hash) = (scope.to_owned(), body_hash.to_owned());
        let dirty = Arc::clone(&self.cvc_destroyed);
        let data = payment.data.to_string();
        // One job on the writer: the claim, the payment and the CVC's destruction commit (or
        // roll back) together, and the answer waits for the batch's fsync.
        self.write(move |c| {
            match claim_scope(c, &scope, &body_hash, payment.created, lease_before)? {
                Claim::Claimed => {}
                other => return Ok(PaymentStart::NotClaimed(other)),
            }
            if insert_payment_row(c, &payment, &data, true)? == 0 {
                let existing = get_scoped(
                    c,
                    "payments",
                    PAYMENT_COLS,
                    "",
                    &payment.id,
                    &payment.merchant_id,
                    payment.mode,
                    payment_of,
                )?
                .ok_or(StoreError::Conflict)?;
                return Ok(PaymentStart::Recorded(existing));
            }
            let cvc = match &cvc_of {
                Some(token) => destroy_cvc_row(c, token, &dirty)?,
                None => false,
            };
            Ok(PaymentStart::Started { cvc })
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
        let from = from.to_owned();
        let data = p.data.to_string();
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE payments SET status = ?2, amount_capturable = ?3, amount_captured = ?4, data = ?5
                     WHERE id = ?1 AND status = ?6",
                )
                .and_then(|mut s| {
                    s.execute(params![p.id, p.status, p.amount_capturable, p.amount_captured, data, from])
                })
                .map_err(db_err)?;
            if n == 0 {
                return Ok(false);
            }
            outbox(c, event.as_ref(), idempotency.as_ref())?;
            if let Some(a) = &audit {
                insert_audit(c, a)?;
            }
            Ok(true)
        })
    }

    fn get_payment(&self, id: &str, merchant_id: &str, mode: Mode) -> StoreFuture<Option<PaymentRecord>> {
        let (id, merchant_id) = (id.to_owned(), merchant_id.to_owned());
        self.read_point(move |c| get_scoped(c, "payments", PAYMENT_COLS, "", &id, &merchant_id, mode, payment_of))
    }

    fn list_payments(&self, filter: ListFilter) -> StoreFuture<Vec<PaymentRecord>> {
        self.read(move |c| list_rows(c, "payments", PAYMENT_COLS, "status", &filter, payment_of))
    }

    fn reserve_refund(&self, r: RefundRecord) -> StoreFuture<RefundReservation> {
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE payments SET amount_refunded = amount_refunded + ?4
                     WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3 AND status = 'succeeded'
                     AND amount_refunded + ?4 <= amount_captured",
                )
                .and_then(|mut s| s.execute(params![r.payment_id, r.merchant_id, r.mode.as_str(), r.amount]))
                .map_err(db_err)?;
            if n == 0 {
                let status: Option<String> = c
                    .query_row(
                        "SELECT status FROM payments WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3",
                        params![r.payment_id, r.merchant_id, r.mode.as_str()],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(db_err)?;
                return Ok(match status.as_deref() {
                    Some("succeeded") => RefundReservation::Exceeds,
                    _ => RefundReservation::NotRefundable,
                });
            }
            c.prepare_cached(
                "INSERT INTO refunds (id, payment_id, merchant_id, mode, amount, status, created, data)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    r.id,
                    r.payment_id,
                    r.merchant_id,
                    r.mode.as_str(),
                    r.amount,
                    r.status,
                    r.created,
                    r.data.to_string()
                ])
            })
            .map_err(db_err)?;
            Ok(RefundReservation::Reserved)
        })
    }

    fn finish_refund(
        &self,
        r: RefundRecord,
        event: Option<EventRecord>,
        idempotency: Option<IdempotencyRecord>,
    ) -> StoreFuture<bool> {
        self.write(move |c| {
            let n = c
                .prepare_cached("UPDATE refunds SET status = ?2, data = ?3 WHERE id = ?1 AND status = 'processing'")
                .and_then(|mut s| s.execute(params![r.id, r.status, r.data.to_string()]))
                .map_err(db_err)?;
            if n == 0 {
                return Ok(false);
            }
            if r.status == "failed" {
                c.prepare_cached(
                    "UPDATE payments SET amount_refunded = amount_refunded - (SELECT amount FROM refunds WHERE id = ?2)
                     WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![r.payment_id, r.id]))
                .map_err(db_err)?;
            }
            outbox(c, event.as_ref(), idempotency.as_ref())?;
            Ok(true)
        })
    }

    fn get_refund(&self, id: &str, merchant_id: &str, mode: Mode) -> StoreFuture<Option<RefundRecord>> {
        let (id, merchant_id) = (id.to_owned(), merchant_id.to_owned());
        self.read_point(move |c| get_scoped(c, "refunds", REFUND_COLS, "", &id, &merchant_id, mode, refund_of))
    }

    fn list_refunds(&self, filter: ListFilter) -> StoreFuture<Vec<RefundRecord>> {
        self.read(move |c| list_rows(c, "refunds", REFUND_COLS, "payment_id", &filter, refund_of))
    }

    fn insert_event(&self, event: EventRecord) -> StoreFuture<()> {
        self.write(move |c| insert_event(c, &event))
    }

    fn get_event(&self, id: &str, merchant_id: &str, mode: Mode) -> StoreFuture<Option<EventRecord>> {
        let (id, merchant_id) = (id.to_owned(), merchant_id.to_owned());
        self.read_point(move |c| get_scoped(c, "events", EVENT_COLS, "", &id, &merchant_id, mode, event_of))
    }

    fn list_events(&self, filter: ListFilter) -> StoreFuture<Vec<EventRecord>> {
        self.read(move |c| list_rows(c, "events", EVENT_COLS, "type", &filter, event_of))
    }

    fn redeliver_event(
        &self,
        id: &str,
        merchant_id: &str,
        mode: Mode,
        endpoint: Option<String>,
        now: UnixSeconds,
    ) -> StoreFuture<u64> {
        let (id, merchant_id) = (id.to_owned(), merchant_id.to_owned());
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "INSERT INTO deliveries (event_id, endpoint_id, status, attempts, next_at, created)
                     SELECT e.id, w.id, 'pending', 0, ?5, ?5 FROM events e JOIN webhook_endpoints w
                     ON w.merchant_id = e.merchant_id AND w.mode = e.mode
                     WHERE e.id = ?1 AND e.merchant_id = ?2 AND e.mode = ?3 AND w.status = 'enabled'
                     AND ((?4 IS NULL AND (instr(w.enabled_events, ',*,') > 0
                                           OR instr(w.enabled_events, ',' || e.type || ',') > 0))
                          OR w.id = ?4)",
                )
                .and_then(|mut s| s.execute(params![id, merchant_id, mode.as_str(), endpoint, now]))
                .map_err(db_err)?;
            Ok(n as u64)
        })
    }

    fn insert_webhook_endpoint(
        &self,
        w: WebhookEndpointRecord,
        secret: WebhookSecretRecord,
        audit: AuditEvent,
    ) -> StoreFuture<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO webhook_endpoints (id, merchant_id, mode, url, enabled_events, status, description,
                 created, failing_since) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
                params![
                    w.id,
                    w.merchant_id,
                    w.mode.as_str(),
                    w.url,
                    events_column(&w.enabled_events),
                    w.status,
                    w.description,
                    w.created,
                    w.failing_since
                ],
            )
            .map_err(db_err)?;
            insert_secret(c, &secret)?;
            insert_audit(c, &audit)
        })
    }

    fn get_webhook_endpoint(
        &self,
        id: &str,
        merchant_id: &str,
        mode: Mode,
    ) -> StoreFuture<Option<WebhookEndpointRecord>> {
        let (id, merchant_id) = (id.to_owned(), merchant_id.to_owned());
        self.read(move |c| {
            let live = "AND status <> 'deleted'";
            get_scoped(c, "webhook_endpoints", ENDPOINT_COLS, live, &id, &merchant_id, mode, endpoint_of)
        })
    }

    fn list_webhook_endpoints(&self, merchant_id: &str, mode: Mode) -> StoreFuture<Vec<WebhookEndpointRecord>> {
        let merchant_id = merchant_id.to_owned();
        self.read(move |c| {
            let mut s = c
                .prepare_cached(&format!(
                    "SELECT {ENDPOINT_COLS} FROM webhook_endpoints
                     WHERE merchant_id = ?1 AND mode = ?2 AND status <> 'deleted' ORDER BY seq"
                ))
                .map_err(db_err)?;
            let rows = s.query_map(params![merchant_id, mode.as_str()], |r| Ok(endpoint_of(r))).map_err(db_err)?;
            rows.map(|r| r.map_err(db_err).and_then(|x| x)).collect()
        })
    }

    fn delete_webhook_endpoint(&self, id: &str, merchant_id: &str, mode: Mode, audit: AuditEvent) -> StoreFuture<bool> {
        let (id, merchant_id) = (id.to_owned(), merchant_id.to_owned());
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE webhook_endpoints SET status = 'deleted'
                     WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3 AND status <> 'deleted'",
                    params![id, merchant_id, mode.as_str()],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Ok(false);
            }
            c.execute("DELETE FROM webhook_secrets WHERE endpoint_id = ?1", [&id]).map_err(db_err)?;
            insert_audit(c, &audit)?;
            Ok(true)
        })
    }

    fn rotate_webhook_secret(
        &self,
        secret: WebhookSecretRecord,
        old_expires_at: UnixSeconds,
        audit: AuditEvent,
    ) -> StoreFuture<()> {
        self.write(move |c| {
            c.execute(
                "UPDATE webhook_secrets SET expires_at = ?2
                 WHERE endpoint_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
                params![secret.endpoint_id, old_expires_at],
            )
            .map_err(db_err)?;
            insert_secret(c, &secret)?;
            insert_audit(c, &audit)
        })
    }

    fn webhook_secrets(&self, endpoint_id: &str, now: UnixSeconds) -> StoreFuture<Vec<WebhookSecretRecord>> {
        let endpoint_id = endpoint_id.to_owned();
        self.read_point(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT endpoint_id, version, secret_ct, created, expires_at FROM webhook_secrets
                     WHERE endpoint_id = ?1 AND (expires_at IS NULL OR expires_at > ?2) ORDER BY version DESC",
                )
                .map_err(db_err)?;
            let rows = s
                .query_map(params![endpoint_id, now], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (endpoint_id, version, secret_ct, created, expires_at) = row.map_err(db_err)?;
                out.push(WebhookSecretRecord {
                    endpoint_id,
                    version: u32_of(version, "secret version")?,
                    secret_ct,
                    created,
                    expires_at,
                });
            }
            Ok(out)
        })
    }

    fn disable_webhook_endpoint(&self, id: &str, event: EventRecord, audit: AuditEvent) -> StoreFuture<bool> {
        let id = id.to_owned();
        self.write(move |c| {
            let n = c
                .execute("UPDATE webhook_endpoints SET status = 'disabled' WHERE id = ?1 AND status = 'enabled'", [&id])
                .map_err(db_err)?;
            if n == 0 {
                return Ok(false);
            }
            insert_event(c, &event)?;
            insert_audit(c, &audit)?;
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
        let holder = holder.to_owned();
        // Most polls find nothing due: a read says so without a write transaction (and its
        // fsync) on the single writer.
        let due = self.read_point(move |c| {
            c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM deliveries WHERE status = 'pending' AND next_at <= ?1
                 AND (lease_until IS NULL OR lease_until <= ?1))",
            )
            .and_then(|mut s| s.query_row([now], |r| r.get::<_, bool>(0)))
            .map_err(db_err)
        });
        let writer = self.writer_handle();
        // On the single writer: the select and the update are one step no other writer sees
        // half done.
        let claim = move |c: &Connection| {
            // The claimed ids come back from the update itself: finding them again by lease
            // holder would scan every pending delivery, and under a backlog that scan is what
            // the single writer would spend its time on.
            let ids = c
                .prepare_cached(
                    "UPDATE deliveries SET lease_holder = ?1, lease_until = ?2 WHERE id IN (
                       SELECT d.id FROM deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
                       WHERE d.status = 'pending' AND d.next_at <= ?3 AND (d.lease_until IS NULL OR d.lease_until <= ?3)
                       AND w.status = 'enabled' ORDER BY d.next_at, d.id LIMIT ?4)
                     RETURNING id",
                )
                .and_then(|mut s| {
                    s.query_map(params![holder, lease_until, now, limit], |r| r.get::<_, i64>(0))?
                        .collect::<rusqlite::Result<Vec<i64>>>()
                })
                .map_err(db_err)?;
            let mut s = c
                .prepare_cached(
                    "SELECT d.id, d.event_id, d.endpoint_id, e.merchant_id, e.mode, w.url, e.body, d.attempts, d.created
                     FROM deliveries d JOIN events e ON e.id = d.event_id JOIN webhook_endpoints w ON w.id = d.endpoint_id
                     WHERE d.id = ?1",
                )
                .map_err(db_err)?;
            let mut rows = Vec::with_capacity(ids.len());
            for id in ids {
                rows.push(s.query_row([id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, i64>(7)?,
                        r.get::<_, i64>(8)?,
                    ))
                }));
            }
            let mut out = Vec::new();
            for row in rows {
                let (id, event_id, endpoint_id, merchant_id, mode, url, body, attempts, created) =
                    row.map_err(db_err)?;
                out.push(DeliveryJob {
                    id,
                    event_id,
                    endpoint_id,
                    merchant_id,
                    mode: mode_of(&mode)?,
                    url,
                    body,
                    attempts: u32_of(attempts, "attempts")?,
                    created,
                });
            }
            out.sort_by_key(|d| d.id);
            Ok(out)
        };
        Box::pin(async move {
            if !due.await? {
                return Ok(Vec::new());
            }
            writer.write(claim).await
        })
    }

    fn record_attempts(
        &self,
        attempts: Vec<(AttemptRecord, DeliveryNext)>,
        holder: &str,
    ) -> StoreFuture<Vec<Option<Option<UnixSeconds>>>> {
        let holder = holder.to_owned();
        self.write(move |c| record_attempts_on(c, &attempts, &holder))
    }

    fn list_attempts(&self, event_id: &str) -> StoreFuture<Vec<AttemptRecord>> {
        let event_id = event_id.to_owned();
        self.read(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT delivery_id, event_id, endpoint_id, status_code, latency_ms, error_class, response_body, created
                     FROM delivery_attempts WHERE event_id = ?1 ORDER BY id",
                )
                .map_err(db_err)?;
            let rows = s
                .query_map([&event_id], |r| {
                    Ok(AttemptRecord {
                        delivery_id: r.get(0)?,
                        event_id: r.get(1)?,
                        endpoint_id: r.get(2)?,
                        status_code: r.get(3)?,
                        latency_ms: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                        error_class: r.get(5)?,
                        response_body: r.get(6)?,
                        created: r.get(7)?,
                    })
                })
                .map_err(db_err)?;
            rows.map(|r| r.map_err(db_err)).collect()
        })
    }

    fn key_last_uses(&self, merchant_id: &str) -> StoreFuture<Vec<(String, UnixSeconds, Option<String>)>> {
        let merchant_id = merchant_id.to_owned();
        self.read(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT a.key_id, a.ts, a.ip FROM audit_events a WHERE a.id IN (
                        SELECT (SELECT u.id FROM audit_events u
                                WHERE u.merchant_id = ?1 AND u.key_id = k.id AND u.outcome = 'success'
                                  AND u.event NOT LIKE 'key.%' AND u.event NOT LIKE 'devspace.%'
                                ORDER BY u.id DESC LIMIT 1)
                        FROM api_keys k WHERE k.merchant_id = ?1)",
                )
                .map_err(db_err)?;
            let rows = s.query_map([&merchant_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(db_err)?;
            rows.map(|r| r.map_err(db_err)).collect()
        })
    }

    fn devspace_insert_user(&self, user: UserRecord, link: Option<LinkRecord>) -> StoreFuture<()> {
        self.write(move |c| {
            let u = RawUser::of(&user);
            c.execute(
                &format!("INSERT INTO devspace_users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
                params![
                    u.id, u.merchant_id, u.email, u.role, u.password_hash, u.totp_sealed, u.totp_enrolled,
                    u.totp_last_step, u.recovery_hashes, u.known_ips, u.failed_signins, u.created, u.version
                ],
            )
            .map_err(db_err)?;
            if let Some(l) = link {
                insert_devspace_link(c, &l)?;
            }
            Ok(())
        })
    }

    fn devspace_user(&self, key: &str, by_email: bool) -> StoreFuture<Option<UserRecord>> {
        let key = key.to_owned();
        self.read(move |c| {
            let column = if by_email { "email" } else { "id" };
            let raw = c
                .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM devspace_users WHERE {column} = ?1"))
                .and_then(|mut s| s.query_row([&key], sqlite_user).optional())
                .map_err(db_err)?;
            raw.map(RawUser::decode).transpose()
        })
    }

    fn devspace_update_user(&self, user: UserRecord) -> StoreFuture<bool> {
        self.write(move |c| {
            let u = RawUser::of(&user);
            let n = c
                .execute(
                    "UPDATE devspace_users SET role = ?2, password_hash = ?3, totp_sealed = ?4, totp_enrolled = ?5,
                        totp_last_step = ?6, recovery_hashes = ?7, known_ips = ?8, failed_signins = ?9,
                        version = version + 1
                     WHERE id = ?1 AND version = ?10",
                    params![
                        u.id,
                        u.role,
                        u.password_hash,
                        u.totp_sealed,
                        u.totp_enrolled,
                        u.totp_last_step,
                        u.recovery_hashes,
                        u.known_ips,
                        u.failed_signins,
                        u.version
                    ],
                )
                .map_err(db_err)?;
            Ok(n == 1)
        })
    }

    fn devspace_delete_user(&self, id: &str) -> StoreFuture<bool> {
        let id = id.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM devspace_sessions WHERE user_id = ?1", [&id]).map_err(db_err)?;
            c.execute("DELETE FROM devspace_links WHERE user_id = ?1", [&id]).map_err(db_err)?;
            c.execute("DELETE FROM devspace_devices WHERE user_id = ?1", [&id]).map_err(db_err)?;
            let n = c.execute("DELETE FROM devspace_users WHERE id = ?1", [&id]).map_err(db_err)?;
            Ok(n == 1)
        })
    }

    fn devspace_users(&self, merchant_id: &str) -> StoreFuture<Vec<UserRecord>> {
        let merchant_id = merchant_id.to_owned();
        self.read(move |c| {
            let mut s = c
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM devspace_users WHERE merchant_id = ?1 ORDER BY created, id"
                ))
                .map_err(db_err)?;
            let rows = s.query_map([&merchant_id], sqlite_user).map_err(db_err)?;
            rows.map(|r| r.map_err(db_err).and_then(RawUser::decode)).collect()
        })
    }

    fn devspace_put_session(&self, session: SessionRecord) -> StoreFuture<()> {
        self.write(move |c| {
            let (hash, user_id, stage, created, last_seen, reauth_at, ip) = session_fields(&session);
            c.execute(
                &format!(
                    "INSERT OR REPLACE INTO devspace_sessions ({SESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![hash, user_id, stage, created, last_seen, reauth_at, ip],
            )
            .map_err(db_err)?;
            Ok(())
        })
    }

    fn devspace_session(&self, hash: &str) -> StoreFuture<Option<SessionRecord>> {
        let hash = hash.to_owned();
        self.read(move |c| {
            let raw = c
                .prepare_cached(&format!("SELECT {SESSION_COLUMNS} FROM devspace_sessions WHERE hash = ?1"))
                .and_then(|mut s| {
                    s.query_row([&hash], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, Option<i64>>(5)?,
                            r.get::<_, String>(6)?,
                        ))
                    })
                    .optional()
                })
                .map_err(db_err)?;
            raw.map(|(hash, user_id, stage_text, created, last_seen, reauth_at, ip)| {
                Ok(SessionRecord { hash, user_id, stage: stage(&stage_text)?, created, last_seen, reauth_at, ip })
            })
            .transpose()
        })
    }

    fn devspace_delete_sessions(&self, hash: Option<String>, user_id: Option<String>) -> StoreFuture<u64> {
        self.write(move |c| {
            let n = c
                .execute(
                    "DELETE FROM devspace_sessions WHERE (?1 IS NOT NULL AND hash = ?1) OR (?2 IS NOT NULL AND user_id = ?2)",
                    params![hash, user_id],
                )
                .map_err(db_err)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn devspace_purge(
        &self,
        idle_before: UnixSeconds,
        created_before: UnixSeconds,
        now: UnixSeconds,
    ) -> StoreFuture<u64> {
        self.write(move |c| {
            let sessions = c
                .execute(
                    "DELETE FROM devspace_sessions WHERE last_seen < ?1 OR created < ?2",
                    params![idle_before, created_before],
                )
                .map_err(db_err)?;
            let links = c.execute("DELETE FROM devspace_links WHERE expires_at <= ?1", [now]).map_err(db_err)?;
            c.execute("DELETE FROM devspace_counters WHERE expires_at <= ?1", [now]).map_err(db_err)?;
            Ok(u64::try_from(sessions + links).unwrap_or(0))
        })
    }

    fn devspace_insert_link(&self, link: LinkRecord) -> StoreFuture<()> {
        self.write(move |c| insert_devspace_link(c, &link))
    }

    fn devspace_link(&self, hash: &str, now: UnixSeconds, take: bool) -> StoreFuture<Option<LinkRecord>> {
        let hash = hash.to_owned();
        let run = move |c: &Connection| {
            let sql = if take {
                "DELETE FROM devspace_links WHERE hash = ?1 AND expires_at > ?2
                 RETURNING hash, user_id, purpose, created, expires_at"
            } else {
                "SELECT hash, user_id, purpose, created, expires_at FROM devspace_links WHERE hash = ?1 AND expires_at > ?2"
            };
            let raw = c
                .prepare_cached(sql)
                .and_then(|mut s| {
                    s.query_row(params![hash, now], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get(3)?,
                            r.get(4)?,
                        ))
                    })
                    .optional()
                })
                .map_err(db_err)?;
            raw.map(|(hash, user_id, p, created, expires_at)| {
                Ok(LinkRecord { hash, user_id, purpose: purpose(&p)?, created, expires_at })
            })
            .transpose()
        };
        if take { self.write(run) } else { self.read(run) }
    }

    fn devspace_insert_alert(&self, alert: AlertRecord, events: Vec<EventRecord>) -> StoreFuture<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO devspace_alerts (id, merchant_id, ts, kind, message, detail, email_pending, email_next)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?3)",
                params![alert.id, alert.merchant_id, alert.ts, alert.kind, alert.message, alert.detail.to_string()],
            )
            .map_err(db_err)?;
            for e in &events {
                insert_event(c, e)?;
            }
            Ok(())
        })
    }

    fn devspace_alerts(&self, merchant_id: &str, limit: u32) -> StoreFuture<Vec<AlertRecord>> {
        let merchant_id = merchant_id.to_owned();
        self.read(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT id, merchant_id, ts, kind, message, detail FROM devspace_alerts
                     WHERE merchant_id = ?1 ORDER BY seq DESC LIMIT ?2",
                )
                .map_err(db_err)?;
            let rows = s.query_map(params![merchant_id, limit], sqlite_alert).map_err(db_err)?;
            rows.map(|r| r.map_err(db_err)).collect()
        })
    }

    fn devspace_note_device(
        &self,
        user_id: &str,
        hash: &str,
        now: UnixSeconds,
        keep: u32,
    ) -> StoreFuture<(bool, bool)> {
        let (user_id, hash) = (user_id.to_owned(), hash.to_owned());
        self.write(move |c| {
            let before: i64 = c
                .query_row("SELECT COUNT(*) FROM devspace_devices WHERE user_id = ?1", [&user_id], |r| r.get(0))
                .map_err(db_err)?;
            let new = c
                .execute(
                    "INSERT INTO devspace_devices (user_id, hash, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT (user_id, hash) DO NOTHING",
                    params![user_id, hash, now],
                )
                .map_err(db_err)?
                == 1;
            if !new {
                c.execute(
                    "UPDATE devspace_devices SET last_seen = ?3 WHERE user_id = ?1 AND hash = ?2",
                    params![user_id, hash, now],
                )
                .map_err(db_err)?;
            }
            c.execute(
                "DELETE FROM devspace_devices WHERE user_id = ?1 AND hash NOT IN
                 (SELECT hash FROM devspace_devices WHERE user_id = ?1 ORDER BY last_seen DESC, hash LIMIT ?2)",
                params![user_id, keep],
            )
            .map_err(db_err)?;
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
        self.write(move |c| {
            let mut s = c
                .prepare_cached(
                    "UPDATE devspace_alerts SET email_attempts = email_attempts + 1, email_next = ?2
                     WHERE seq IN (SELECT seq FROM devspace_alerts
                         WHERE email_pending = 1 AND email_next <= ?1 AND ts >= ?3 AND email_attempts < ?4
                         ORDER BY seq LIMIT ?5)
                     RETURNING id, merchant_id, ts, kind, message, detail, email_attempts",
                )
                .map_err(db_err)?;
            let rows = s
                .query_map(params![now, retry_at, oldest, max_attempts, limit], |r| {
                    Ok((sqlite_alert(r)?, u32::try_from(r.get::<_, i64>(6)?).unwrap_or(u32::MAX)))
                })
                .map_err(db_err)?;
            rows.map(|r| r.map_err(db_err)).collect()
        })
    }

    fn devspace_count(&self, name: &str, expires_at: UnixSeconds) -> StoreFuture<u64> {
        let name = name.to_owned();
        self.write(move |c| {
            let n: i64 = c
                .query_row(
                    "INSERT INTO devspace_counters (name, count, expires_at) VALUES (?1, 1, ?2)
                     ON CONFLICT (name) DO UPDATE SET count = count + 1 RETURNING count",
                    params![name, expires_at],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn devspace_alert_emailed(&self, id: &str) -> StoreFuture<()> {
        let id = id.to_owned();
        self.write(move |c| {
            c.execute("UPDATE devspace_alerts SET email_pending = 0 WHERE id = ?1", [&id]).map_err(db_err)?;
            Ok(())
        })
    }

    fn insert_font(&self, f: FontRecord, data: Vec<u8>, audit: AuditEvent, max: u32) -> StoreFuture<bool> {
        self.write(move |c| {
            // On the single writer: no other upload runs between the count and the insert.
            let count: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM fonts WHERE merchant_id = ?1 AND mode = ?2",
                    params![f.merchant_id, f.mode.as_str()],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            if count >= i64::from(max) {
                return Ok(false);
            }
            c.execute(
                "INSERT INTO fonts (id, merchant_id, mode, family, weight, style, hash, size, data, created)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                params![
                    f.id,
                    f.merchant_id,
                    f.mode.as_str(),
                    f.family,
                    f.weight,
                    f.style,
                    f.hash,
                    f.size,
                    data,
                    f.created
                ],
            )
            .map_err(db_err)?;
            insert_audit(c, &audit)?;
            Ok(true)
        })
    }

    fn list_fonts(&self, merchant_id: &str, mode: Mode) -> StoreFuture<Vec<FontRecord>> {
        let merchant_id = merchant_id.to_owned();
        self.read(move |c| {
            let sql = format!("SELECT {FONT_COLUMNS} FROM fonts WHERE merchant_id = ?1 AND mode = ?2 ORDER BY seq");
            let mut s = c.prepare_cached(&sql).map_err(db_err)?;
            let rows = s.query_map(params![merchant_id, mode.as_str()], |r| Ok(font_of(r))).map_err(db_err)?;
            rows.map(|r| r.map_err(db_err).and_then(|x| x)).collect()
        })
    }

    fn font_data(&self, hash: &str) -> StoreFuture<Option<Vec<u8>>> {
        let hash = hash.to_owned();
        self.read(move |c| {
            c.query_row("SELECT data FROM fonts WHERE hash = ?1 LIMIT 1", [&hash], |r| r.get(0))
                .optional()
                .map_err(db_err)
        })
    }

    fn delete_font(&self, id: &str, merchant_id: &str, mode: Mode, audit: AuditEvent) -> StoreFuture<bool> {
        let (id, merchant_id) = (id.to_owned(), merchant_id.to_owned());
        self.write(move |c| {
            let n = c
                .execute(
                    "DELETE FROM fonts WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3",
                    params![id, merchant_id, mode.as_str()],
                )
                .map_err(db_err)?;
            if n > 0 {
                insert_audit(c, &audit)?;
            }
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
        let merchant_id = merchant_id.to_owned();
        self.read(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT id, mode, brand, last4, exp_month, exp_year, fingerprint, created, expires_at FROM tokens
                     WHERE merchant_id = ?1 AND mode = ?2
                       AND (?3 IS NULL OR seq < (SELECT seq FROM tokens WHERE id = ?3 AND merchant_id = ?1))
                     ORDER BY seq DESC LIMIT ?4",
                )
                .map_err(db_err)?;
            let rows = s
                .query_map(params![merchant_id, mode.as_str(), before, limit], |r| {
                    Ok(::devspace::backend::TokenView {
                        id: r.get(0)?,
                        mode: r.get(1)?,
                        brand: r.get(2)?,
                        last4: r.get(3)?,
                        exp_month: u8::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                        exp_year: u16::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
                        fingerprint: r.get(6)?,
                        created: r.get(7)?,
                        expires_at: r.get(8)?,
                    })
                })
                .map_err(db_err)?;
            rows.map(|r| r.map_err(db_err)).collect()
        })
    }
}

fn sqlite_alert(r: &Row<'_>) -> rusqlite::Result<AlertRecord> {
    Ok(AlertRecord {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        ts: r.get(2)?,
        kind: r.get(3)?,
        message: r.get(4)?,
        detail: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or(serde_json::Value::Null),
    })
}

fn sqlite_user(r: &Row<'_>) -> rusqlite::Result<RawUser> {
    Ok(RawUser {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        email: r.get(2)?,
        role: r.get(3)?,
        password_hash: r.get(4)?,
        totp_sealed: r.get(5)?,
        totp_enrolled: r.get(6)?,
        totp_last_step: r.get(7)?,
        recovery_hashes: r.get(8)?,
        known_ips: r.get(9)?,
        failed_signins: r.get(10)?,
        created: r.get(11)?,
        version: r.get(12)?,
    })
}

fn insert_devspace_link(c: &Connection, l: &LinkRecord) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO devspace_links (hash, user_id, purpose, created, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![l.hash, l.user_id, l.purpose.as_str(), l.created, l.expires_at],
    )
    .map_err(db_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_unavailable_not_a_database_error() {
        // Found by scripts/reliability/faults.sh disk-full: SQLITE_FULL used to be a 500.
        let full = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL), None);
        assert!(matches!(db_err(full), StoreError::Unavailable(_)));
        let corrupt = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT), None);
        assert!(matches!(db_err(corrupt), StoreError::Database(_)));
    }

    /// The soak (scripts/reliability/soak.sh) saw SQLite's caches grow for minutes: every
    /// connection gets its bounded cache, and SQLite a process-wide ceiling.
    #[test]
    fn every_connection_has_a_bounded_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.db");
        for (role, kib) in [(ConnRole::Writer, WRITER_CACHE_KIB), (ConnRole::Reader, READER_CACHE_KIB)] {
            let conn = open_conn(&path, role).unwrap();
            let cache: i64 = conn.query_row("PRAGMA cache_size", [], |r| r.get(0)).unwrap();
            assert_eq!(cache, -i64::from(kib));
            let limit: i64 = conn.query_row("PRAGMA soft_heap_limit", [], |r| r.get(0)).unwrap();
            assert_eq!(limit, i64::try_from(SOFT_HEAP_LIMIT_BYTES).unwrap());
        }
    }
}
