//! Data directory set-up and opening: master key resolution, `init`, merchants and their keys.
//!
//! Layout of a data directory:
//! - `vault.db` (+ `-wal`, `-shm`): the SQLite store;
//! - `tls/cert.pem`, `tls/key.pem` (0600): the development certificate, when none is configured;
//! - `master.key` (0600): a development master key, only when `init` generated one.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;

use crate::clock::UnixSeconds;
use crate::crypto::{CryptoError, MasterKey, random_base62, random_key, wrap_context};
use crate::keys::{self, KeyKind, KeySpec, Mode, NewKey, Role};
use crate::secret::SecretString;
use crate::store::sqlite::SqliteStore;
use crate::store::{AuditEvent, KeyPurpose, MerchantRecord, Store, StoreError, WrappedKeyRecord};

/// Environment variable holding the base64 master key.
pub const MASTER_KEY_ENV: &str = "VAULT_MASTER_KEY";
/// Name of the development master-key file in a data directory.
pub const DEV_MASTER_KEY_FILE: &str = "master.key";

/// Errors setting up or opening a data directory.
#[derive(Debug)]
#[non_exhaustive]
pub enum BootstrapError {
    /// File-system error.
    Io(PathBuf, std::io::Error),
    /// Storage error.
    Store(StoreError),
    /// Crypto error (bad master key encoding, RNG).
    Crypto(CryptoError),
    /// No master key was given and the data directory has no development key.
    NoMasterKey,
    /// The master key does not match the one the data directory was initialised with.
    WrongMasterKey,
    /// `init` on a directory that already holds a vault.
    AlreadyInitialized(PathBuf),
    /// The directory was never initialised.
    NotInitialized(PathBuf),
    /// Invalid key attribute (origin, CIDR).
    Key(keys::KeyError),
    /// Unknown merchant.
    UnknownMerchant(String),
    /// Live keys exist (or are being created) while the master key is the development file.
    DevMasterKeyWithLiveData,
    /// Only an active key can be rotated.
    KeyInactive(String),
    /// A rotation overlap outside 0–604800 seconds.
    BadOverlap(i64),
    /// A merchant name that looks like a card number, is empty or too long.
    BadMerchantName,
    /// A Dev Space user's email address is malformed (the text says how).
    BadEmail(&'static str),
    /// A Dev Space user with this email address exists.
    UserExists,
}

impl fmt::Display for BootstrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Self::Store(e) => write!(f, "{e}"),
            Self::Crypto(e) => write!(f, "{e}"),
            Self::NoMasterKey => {
                write!(f, "no master key: set {MASTER_KEY_ENV} (base64 of 32 bytes) or pass --master-key-file")
            }
            Self::WrongMasterKey => f.write_str("the master key does not match this data directory"),
            Self::AlreadyInitialized(p) => write!(f, "{} already holds an initialised vault", p.display()),
            Self::BadEmail(why) => write!(f, "--email: {why}"),
            Self::UserExists => f.write_str("a Dev Space user with this email address exists"),
            Self::NotInitialized(p) => write!(f, "{} is not an initialised vault (run `vault init`)", p.display()),
            Self::Key(e) => write!(f, "{e}"),
            Self::UnknownMerchant(m) => write!(f, "unknown merchant {m:?}"),
            Self::DevMasterKeyWithLiveData => write!(
                f,
                "live keys need a production master key: the development key file {DEV_MASTER_KEY_FILE} in the data \
                 directory sits next to the data it protects. Set {MASTER_KEY_ENV} or --master-key-file, and move \
                 existing data to it with `vault master-key rotate --new-master-key-file FILE`"
            ),
            Self::KeyInactive(id) => write!(f, "key {id} is revoked or expired; only an active key can be rotated"),
            Self::BadOverlap(s) => write!(f, "overlap of {s} s is outside 0–{MAX_OVERLAP_SECS} s"),
            Self::BadMerchantName => {
                f.write_str("merchant names are 1–100 characters, without control characters or card numbers")
            }
        }
    }
}

impl std::error::Error for BootstrapError {}

impl From<StoreError> for BootstrapError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}
impl From<CryptoError> for BootstrapError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}
impl From<keys::KeyError> for BootstrapError {
    fn from(e: keys::KeyError) -> Self {
        Self::Key(e)
    }
}

/// Where the master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// The `VAULT_MASTER_KEY` environment variable.
    Env,
    /// A file given on the command line.
    File(PathBuf),
    /// The development file inside the data directory.
    DevFile(PathBuf),
}

/// Longest rotation overlap accepted (7 days), on the API and the CLI.
pub const MAX_OVERLAP_SECS: i64 = 7 * 24 * 3600;

/// Path of the database in a data directory.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("vault.db")
}

fn read_key_file(path: &Path) -> Result<MasterKey, BootstrapError> {
    let text = SecretString::new(std::fs::read_to_string(path).map_err(|e| BootstrapError::Io(path.to_owned(), e))?);
    Ok(MasterKey::from_base64(text.expose())?)
}

/// Finds the master key: `--master-key-file`, else `VAULT_MASTER_KEY`, else the data
/// directory's development key file.
pub fn resolve_master_key(
    data_dir: &Path,
    file: Option<&Path>,
    env: Option<SecretString>,
) -> Result<(MasterKey, MasterKeySource), BootstrapError> {
    if let Some(path) = file {
        return Ok((read_key_file(path)?, MasterKeySource::File(path.to_owned())));
    }
    if let Some(text) = env.filter(|t| !t.expose().trim().is_empty()) {
        return Ok((MasterKey::from_base64(text.expose())?, MasterKeySource::Env));
    }
    let dev = data_dir.join(DEV_MASTER_KEY_FILE);
    if dev.exists() {
        return Ok((read_key_file(&dev)?, MasterKeySource::DevFile(dev)));
    }
    Err(BootstrapError::NoMasterKey)
}

/// Generates a development master key file (0600) in the data directory.
pub fn generate_dev_master_key(data_dir: &Path) -> Result<(MasterKey, PathBuf), BootstrapError> {
    use base64::Engine as _;
    let key = random_key()?;
    let text = SecretString::new(base64::engine::general_purpose::STANDARD.encode(key.expose()));
    let path = data_dir.join(DEV_MASTER_KEY_FILE);
    crate::tls::write_private(&path, format!("{}\n", text.expose()).as_bytes())
        .map_err(|e| BootstrapError::Io(path.clone(), e))?;
    Ok((MasterKey::from_key(&key)?, path))
}

/// Opens an initialised data directory, checks the master key and loads the hashing keys kept
/// across master-key rotations.
pub async fn open_store(data_dir: &Path, master: &mut MasterKey) -> Result<Arc<SqliteStore>, BootstrapError> {
    let path = db_path(data_dir);
    if !path.exists() {
        return Err(BootstrapError::NotInitialized(data_dir.to_owned()));
    }
    let store = Arc::new(SqliteStore::open(&path)?);
    match store.get_meta("master_check").await? {
        None => return Err(BootstrapError::NotInitialized(data_dir.to_owned())),
        Some(check) if check == master.check_value() => {}
        Some(_) => return Err(BootstrapError::WrongMasterKey),
    }
    adopt_hashing_keys(store.as_ref(), master).await?;
    Ok(store)
}

/// Opens the vault's database — Postgres when `database_url` is given, otherwise the SQLite
/// file in the data directory — checks the master key and loads the hashing keys.
pub async fn open_database(
    data_dir: &Path,
    database_url: Option<&str>,
    pool_size: usize,
    master: &mut MasterKey,
) -> Result<Arc<dyn Store>, BootstrapError> {
    let Some(url) = database_url else {
        let store: Arc<dyn Store> = open_store(data_dir, master).await?;
        return Ok(store);
    };
    let store: Arc<dyn Store> = Arc::new(crate::store::postgres::PostgresStore::connect(url, pool_size).await?);
    match store.get_meta("master_check").await? {
        None => return Err(BootstrapError::NotInitialized(PathBuf::from("(the Postgres database)"))),
        Some(check) if check == master.check_value() => {}
        Some(_) => return Err(BootstrapError::WrongMasterKey),
    }
    adopt_hashing_keys(store.as_ref(), master).await?;
    Ok(store)
}

/// Connections per vault process to Postgres, by default (`--database-pool-size`).
pub const POOL_SIZE: usize = 16;

/// Loads the hashing keys stored by the last master-key rotation, if there was one.
pub async fn adopt_hashing_keys(store: &dyn Store, master: &mut MasterKey) -> Result<(), BootstrapError> {
    use base64::Engine as _;
    if let Some(text) = store.get_meta(HASHING_KEYS_META).await? {
        let wrapped = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| BootstrapError::Store(StoreError::Corrupt("hashing_keys")))?;
        master.adopt_hashing_keys(&wrapped)?;
    }
    Ok(())
}

/// Metadata key of the wrapped hashing keys.
pub const HASHING_KEYS_META: &str = "hashing_keys";

/// Refuses a development master key (the file inside the data directory) when the vault holds
/// live keys: `serve` and live key creation call this.
pub async fn refuse_dev_master_key_for_live(
    store: &dyn Store,
    source: &MasterKeySource,
    now: UnixSeconds,
) -> Result<(), BootstrapError> {
    if !matches!(source, MasterKeySource::DevFile(_)) {
        return Ok(());
    }
    let live = store.list_api_keys().await?.into_iter().any(|k| k.mode == Mode::Live && k.is_active(now));
    if live { Err(BootstrapError::DevMasterKeyWithLiveData) } else { Ok(()) }
}

/// Master-key (KEK) rotation: re-wraps every data and fingerprint key under `new`, stores the
/// hashing keys wrapped under `new` and the new check value, all in one transaction, and
/// audits it. Afterwards only `new` opens the data directory. Card ciphertexts are untouched
/// (their data keys do not change). Returns how many keys were re-wrapped.
pub async fn rotate_master_key(
    store: &dyn Store,
    old: &MasterKey,
    new: &mut MasterKey,
    now: UnixSeconds,
) -> Result<usize, BootstrapError> {
    use base64::Engine as _;
    if old.check_value() == new.check_value() {
        return Err(BootstrapError::Crypto(CryptoError::BadMasterKey("the new master key equals the current one")));
    }
    let mut rewrapped = Vec::new();
    for mut w in store.list_wrapped_keys().await? {
        let ctx = wrap_context(w.purpose.as_str(), &w.merchant_id, w.mode.as_str(), w.version);
        let key = old.unwrap_key(&w.wrapped, &ctx)?;
        w.wrapped = new.wrap(&key, &ctx)?;
        rewrapped.push(w);
    }
    let hashing = base64::engine::general_purpose::STANDARD.encode(old.wrap_hashing_keys_for(new)?);
    let n = rewrapped.len();
    store
        .rewrap_keys(
            rewrapped,
            vec![("master_check".to_owned(), new.check_value()), (HASHING_KEYS_META.to_owned(), hashing.clone())],
        )
        .await?;
    let wrapped = base64::engine::general_purpose::STANDARD.decode(hashing).map_err(|_| CryptoError::Decrypt)?;
    new.adopt_hashing_keys(&wrapped)?;
    store
        .append_audit(vec![cli_event(
            "master_key.rotated",
            now,
            None,
            None,
            serde_json::json!({ "keys_rewrapped": n }),
        )])
        .await?;
    Ok(n)
}

/// How long a superseded data-key version is kept after its successor was created, so that
/// every running server has picked the successor up (they reload keys every 2 s) before the
/// old version can be retired.
pub const RETIRE_GRACE_SECS: i64 = 300;

/// Retires (deletes) every data-key version that is not current, whose successor is older
/// than [`RETIRE_GRACE_SECS`], and that no token uses any more (checked in the store's
/// transaction). Returns `(merchant, mode, version)` of each retired key; audited.
pub async fn retire_data_keys(store: &dyn Store, now: UnixSeconds) -> Result<Vec<(String, Mode, u32)>, BootstrapError> {
    let wrapped = store.list_wrapped_keys().await?;
    let data: Vec<_> = wrapped.iter().filter(|w| w.purpose == KeyPurpose::Data).collect();
    let mut retired = Vec::new();
    for w in &data {
        let successor_settled = data.iter().any(|n| {
            n.merchant_id == w.merchant_id
                && n.mode == w.mode
                && n.version > w.version
                && n.created + RETIRE_GRACE_SECS <= now
        });
        if successor_settled && store.retire_data_key(&w.merchant_id, w.mode, w.version).await? {
            retired.push((w.merchant_id.clone(), w.mode, w.version));
        }
    }
    if !retired.is_empty() {
        let list: Vec<_> = retired
            .iter()
            .map(|(m, mode, v)| serde_json::json!({ "merchant_id": m, "mode": mode, "version": v }))
            .collect();
        store
            .append_audit(vec![cli_event(
                "encryption_key.retired",
                now,
                None,
                None,
                serde_json::json!({ "keys": list }),
            )])
            .await?;
    }
    Ok(retired)
}

/// Creates a merchant with data and fingerprint keys for both modes.
pub async fn create_merchant(
    store: &dyn Store,
    master: &MasterKey,
    name: &str,
    now: UnixSeconds,
) -> Result<MerchantRecord, BootstrapError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > 100
        || name.chars().any(char::is_control)
        || crate::text::looks_like_card_number(name)
    {
        return Err(BootstrapError::BadMerchantName);
    }
    let merchant = MerchantRecord { id: format!("mer_{}", random_base62(16)?), name: name.to_owned(), created: now };
    store.create_merchant(merchant.clone()).await?;
    for mode in Mode::ALL {
        for purpose in [KeyPurpose::Data, KeyPurpose::Fingerprint] {
            let key = random_key()?;
            let ctx = wrap_context(purpose.as_str(), &merchant.id, mode.as_str(), 1);
            store
                .insert_wrapped_key(WrappedKeyRecord {
                    merchant_id: merchant.id.clone(),
                    mode,
                    purpose,
                    version: 1,
                    wrapped: master.wrap(&key, &ctx)?,
                    created: now,
                })
                .await?;
        }
    }
    Ok(merchant)
}

/// Finds a merchant by id or name.
pub async fn find_merchant(store: &dyn Store, id_or_name: &str) -> Result<MerchantRecord, BootstrapError> {
    store
        .list_merchants()
        .await?
        .into_iter()
        .find(|m| m.id == id_or_name || m.name == id_or_name)
        .ok_or_else(|| BootstrapError::UnknownMerchant(id_or_name.to_owned()))
}

/// An audit event for actions taken from the command line.
pub fn cli_event(
    event: &str,
    now: UnixSeconds,
    merchant_id: Option<&str>,
    mode: Option<Mode>,
    detail: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        id: 0,
        ts: now,
        event: event.to_owned(),
        outcome: "success".to_owned(),
        merchant_id: merchant_id.map(str::to_owned),
        mode,
        key_id: None,
        ip: None,
        request_id: Some("cli".to_owned()),
        detail,
    }
}

/// Creates an API key from the command line (audited).
pub async fn create_key(
    store: &dyn Store,
    master: &MasterKey,
    spec: KeySpec,
    now: UnixSeconds,
) -> Result<NewKey, BootstrapError> {
    let merchant = spec.merchant_id.clone();
    let mode = spec.mode;
    let new = keys::generate(spec, now, |k| master.hash_api_key(k))?;
    let e = cli_event(
        "key.created",
        now,
        Some(&merchant),
        Some(mode),
        serde_json::json!({ "new_key_id": new.record.id, "kind": new.record.kind, "role": new.record.role }),
    );
    store.insert_api_key(new.record.clone(), e).await?;
    Ok(new)
}

/// Options of `vault init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Data directory (created if missing).
    pub data_dir: PathBuf,
    /// First merchant's name.
    pub merchant: String,
    /// Allowed origins of the first publishable key.
    pub allowed_origins: Vec<String>,
    /// IP allowlist of the first tokenization (detokenize) key.
    pub detokenize_ips: Vec<IpNet>,
    /// Mode of the first keys.
    pub mode: Mode,
    /// Postgres URL; `None`: the SQLite file in the data directory.
    pub database_url: Option<String>,
}

/// What `init` created; printed once as JSON.
#[derive(Debug)]
pub struct InitOutput {
    /// Merchant.
    pub merchant: MerchantRecord,
    /// Publishable key.
    pub publishable: NewKey,
    /// Secret key with the tokenization role (detokenize).
    pub secret: NewKey,
    /// Admin key.
    pub admin: NewKey,
    /// Read-only key.
    pub read_only: NewKey,
    /// Secret key with the payments role (charge, capture, cancel, refund).
    pub payments: NewKey,
}

/// Initialises a data directory: schema, master-key check value, first merchant and keys.
pub async fn init(opts: &InitOptions, master: &MasterKey, now: UnixSeconds) -> Result<InitOutput, BootstrapError> {
    std::fs::create_dir_all(&opts.data_dir).map_err(|e| BootstrapError::Io(opts.data_dir.clone(), e))?;
    let store: Arc<dyn Store> = match &opts.database_url {
        Some(url) => Arc::new(crate::store::postgres::PostgresStore::connect(url, 2).await?),
        None => Arc::new(SqliteStore::open(&db_path(&opts.data_dir))?),
    };
    let store = store.as_ref();
    if store.get_meta("master_check").await?.is_some() {
        return Err(BootstrapError::AlreadyInitialized(opts.data_dir.clone()));
    }
    store.set_meta("master_check", &master.check_value()).await?;
    let merchant = create_merchant(store, master, &opts.merchant, now).await?;
    store
        .append_audit(vec![cli_event(
            "merchant.created",
            now,
            Some(&merchant.id),
            None,
            serde_json::json!({ "name": merchant.name }),
        )])
        .await?;
    let origins = opts.allowed_origins.iter().map(|o| keys::parse_origin(o)).collect::<Result<Vec<_>, _>>()?;
    let spec = |kind, role: Option<Role>, label: &str, origins: Vec<String>, ips: Vec<IpNet>| KeySpec {
        merchant_id: merchant.id.clone(),
        kind,
        mode: opts.mode,
        role,
        label: label.to_owned(),
        allowed_origins: origins,
        ip_allowlist: ips,
    };
    let publishable =
        create_key(store, master, spec(KeyKind::Publishable, None, "initial publishable key", origins, vec![]), now)
            .await?;
    let secret = create_key(
        store,
        master,
        spec(
            KeyKind::Secret,
            Some(Role::Tokenization),
            "initial tokenization key",
            vec![],
            opts.detokenize_ips.clone(),
        ),
        now,
    )
    .await?;
    let admin =
        create_key(store, master, spec(KeyKind::Secret, Some(Role::Admin), "initial admin key", vec![], vec![]), now)
            .await?;
    let read_only = create_key(
        store,
        master,
        spec(KeyKind::Secret, Some(Role::ReadOnly), "initial read-only key", vec![], vec![]),
        now,
    )
    .await?;
    let payments = create_key(
        store,
        master,
        spec(KeyKind::Secret, Some(Role::Payments), "initial payments key", vec![], vec![]),
        now,
    )
    .await?;
    store.close();
    Ok(InitOutput { merchant, publishable, secret, admin, read_only, payments })
}

/// Finds a key by id.
pub async fn find_key(store: &dyn Store, id: &str) -> Result<crate::keys::ApiKeyRecord, BootstrapError> {
    store
        .list_api_keys()
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| BootstrapError::UnknownMerchant(format!("no API key with id {id}")))
}

/// Revokes a key (audited).
pub async fn revoke_key(
    store: &dyn Store,
    id: &str,
    now: UnixSeconds,
) -> Result<crate::keys::ApiKeyRecord, BootstrapError> {
    let mut key = find_key(store, id).await?;
    if key.revoked_at.is_none() {
        key.revoked_at = Some(now);
    }
    let e = cli_event(
        "key.revoked",
        now,
        Some(&key.merchant_id),
        Some(key.mode),
        serde_json::json!({ "target_key_id": key.id }),
    );
    store.update_api_key(key.clone(), e).await?;
    Ok(key)
}

/// Rotates a key: a new key with the same attributes; the old one expires after `overlap`
/// seconds (audited).
pub async fn rotate_key(
    store: &dyn Store,
    master: &MasterKey,
    id: &str,
    overlap: i64,
    now: UnixSeconds,
) -> Result<(NewKey, crate::keys::ApiKeyRecord), BootstrapError> {
    if !(0..=MAX_OVERLAP_SECS).contains(&overlap) {
        return Err(BootstrapError::BadOverlap(overlap));
    }
    let mut old = find_key(store, id).await?;
    if !old.is_active(now) {
        return Err(BootstrapError::KeyInactive(old.id));
    }
    let spec = KeySpec::replacing(&old);
    let new = create_key(store, master, spec, now).await?;
    // Never later than the key's own expiry: rotation must not extend an expiring key.
    let until = now + overlap;
    old.expires_at = Some(old.expires_at.map_or(until, |t| t.min(until)));
    let e = cli_event(
        "key.rotated",
        now,
        Some(&old.merchant_id),
        Some(old.mode),
        serde_json::json!({ "target_key_id": old.id, "new_key_id": new.record.id, "overlap_seconds": overlap }),
    );
    store.update_api_key(old.clone(), e).await?;
    Ok((new, old))
}

/// Creates a Dev Space user of `merchant` and its one-time set-password link (valid
/// [`devspace::web::LINK_SECONDS`]), audited as `devspace.user_created`. Returns the user and
/// the link's token: shown once (it is stored hashed only).
///
/// # Errors
/// [`BootstrapError::BadEmail`], [`BootstrapError::UserExists`], storage errors.
pub async fn create_devspace_user(
    store: &dyn Store,
    merchant: &MerchantRecord,
    email: &str,
    role: devspace::Role,
    now: UnixSeconds,
) -> Result<(devspace::backend::UserRecord, devspace::session::OpaqueId), BootstrapError> {
    let email = devspace::web::parse_email(email).map_err(BootstrapError::BadEmail)?;
    if crate::text::looks_like_card_number(&email) {
        return Err(BootstrapError::BadEmail("this looks like it contains a card number"));
    }
    let (user, link, token) = devspace::web::new_user(&merchant.id, &email, role, now)
        .map_err(|_| BootstrapError::Crypto(CryptoError::Random))?;
    match store.devspace_insert_user(user.clone(), Some(link)).await {
        Err(StoreError::Conflict) => return Err(BootstrapError::UserExists),
        other => other?,
    }
    store
        .append_audit(vec![cli_event(
            "devspace.user_created",
            now,
            Some(&merchant.id),
            None,
            serde_json::json!({ "user_id": user.id, "email": user.email, "role": role.as_str(), "via": "cli" }),
        )])
        .await?;
    Ok((user, token))
}
