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
            Self::NotInitialized(p) => write!(f, "{} is not an initialised vault (run `vault init`)", p.display()),
            Self::Key(e) => write!(f, "{e}"),
            Self::UnknownMerchant(m) => write!(f, "unknown merchant {m:?}"),
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

/// Opens an initialised data directory and checks the master key.
pub async fn open_store(data_dir: &Path, master: &MasterKey) -> Result<Arc<SqliteStore>, BootstrapError> {
    let path = db_path(data_dir);
    if !path.exists() {
        return Err(BootstrapError::NotInitialized(data_dir.to_owned()));
    }
    let store = Arc::new(SqliteStore::open(&path)?);
    match store.get_meta("master_check").await? {
        None => Err(BootstrapError::NotInitialized(data_dir.to_owned())),
        Some(check) if check == master.check_value() => Ok(store),
        Some(_) => Err(BootstrapError::WrongMasterKey),
    }
}

/// Creates a merchant with data and fingerprint keys for both modes.
pub async fn create_merchant(
    store: &dyn Store,
    master: &MasterKey,
    name: &str,
    now: UnixSeconds,
) -> Result<MerchantRecord, BootstrapError> {
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
}

/// Initialises a data directory: schema, master-key check value, first merchant and keys.
pub async fn init(opts: &InitOptions, master: &MasterKey, now: UnixSeconds) -> Result<InitOutput, BootstrapError> {
    std::fs::create_dir_all(&opts.data_dir).map_err(|e| BootstrapError::Io(opts.data_dir.clone(), e))?;
    let store = SqliteStore::open(&db_path(&opts.data_dir))?;
    if store.get_meta("master_check").await?.is_some() {
        return Err(BootstrapError::AlreadyInitialized(opts.data_dir.clone()));
    }
    store.set_meta("master_check", &master.check_value()).await?;
    let merchant = create_merchant(&store, master, &opts.merchant, now).await?;
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
        create_key(&store, master, spec(KeyKind::Publishable, None, "initial publishable key", origins, vec![]), now)
            .await?;
    let secret = create_key(
        &store,
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
        create_key(&store, master, spec(KeyKind::Secret, Some(Role::Admin), "initial admin key", vec![], vec![]), now)
            .await?;
    let read_only = create_key(
        &store,
        master,
        spec(KeyKind::Secret, Some(Role::ReadOnly), "initial read-only key", vec![], vec![]),
        now,
    )
    .await?;
    store.close();
    Ok(InitOutput { merchant, publishable, secret, admin, read_only })
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
    let mut old = find_key(store, id).await?;
    let spec = KeySpec::replacing(&old);
    let new = create_key(store, master, spec, now).await?;
    old.expires_at = Some(now + overlap.max(0));
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
