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

use super::{
    AuditEvent, AuditFilter, CipherRow, Claim, CreateOutcome, IdempotencyRecord, KeyPurpose, MerchantRecord,
    PurgeCounts, Store, StoreError, StoreFuture, TokenRecord, WrappedKeyRecord,
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

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
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
        let mut conn = open_conn(path)?;
        migrate(&mut conn)?;
        // Nothing deleted before (or by a migration) lingers in the WAL.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").map_err(db_err)?;
        let truncate_wal = Arc::new(AtomicBool::new(false));
        let cvc_destroyed = Arc::new(AtomicBool::new(false));
        let (wal_flag, dirty_flag) = (Arc::clone(&truncate_wal), Arc::clone(&cvc_destroyed));
        // WAL checkpoints stay on the writer (SQLite's automatic checkpoint every 1000 pages):
        // measured faster here than a separate checkpointing connection, whose WAL restarts
        // make the writer drop its page cache.
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
        let (tx, rx) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (ok, completion)
        });
        let sent = self.writer.lock().ok().and_then(|w| w.as_ref().map(|s| s.send(job).is_ok())).unwrap_or(false);
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        let readers = Arc::clone(&self.readers);
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let pooled = readers.lock().ok().and_then(|mut r| r.pop());
                let conn = match pooled {
                    Some(c) => c,
                    None => open_conn(&path)?,
                };
                let result = f(&conn);
                if let Ok(mut r) = readers.lock() {
                    if r.len() < 8 {
                        r.push(conn);
                    }
                }
                result
            })
            .await
            .map_err(|_| StoreError::Closed)?
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
                c.prepare_cached(
                    "INSERT INTO idempotency (scope, body_hash, status, response, created) VALUES (?1,?2,?3,?4,?5)
                     ON CONFLICT (scope) DO UPDATE SET body_hash = excluded.body_hash, status = excluded.status,
                     response = excluded.response, created = excluded.created WHERE idempotency.status = 0",
                )
                .and_then(|mut s| s.execute(params![rec.scope, rec.body_hash, rec.status, rec.response, rec.created]))
                .map_err(db_err)?;
            }
            insert_audit(c, &audit)?;
            Ok(CreateOutcome::Created)
        })
    }

    fn get_token(&self, id: &str, merchant_id: &str, mode: Mode, now: UnixSeconds) -> StoreFuture<Option<TokenRecord>> {
        let (id, merchant_id) = (id.to_owned(), merchant_id.to_owned());
        self.read(move |c| select_token(c, &id, &merchant_id, mode, now))
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
        self.read(move |c| {
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
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE tokens SET cvc_ct = NULL, cvc_expires_at = NULL WHERE id = ?1 AND cvc_ct IS NOT NULL",
                )
                .and_then(|mut s| s.execute([&id]))
                .map_err(db_err)?;
            if n > 0 {
                dirty.store(true, Ordering::Release);
            }
            Ok(n > 0)
        })
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
        self.read(move |c| select_idempotency(c, &scope))
    }

    fn claim_idempotency(
        &self,
        scope: &str,
        body_hash: &str,
        now: UnixSeconds,
        lease_before: UnixSeconds,
    ) -> StoreFuture<Claim> {
        let (scope, body_hash) = (scope.to_owned(), body_hash.to_owned());
        self.write(move |c| {
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
            Ok(match select_idempotency(c, &scope)? {
                Some(done) => Claim::Done(done),
                None => Claim::InFlight,
            })
        })
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
                     ORDER BY id DESC LIMIT ?4",
                )
                .map_err(db_err)?;
            let rows = s
                .query_map(params![filter.merchant_id, filter.event, filter.before_id, filter.limit], |r| {
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
}
