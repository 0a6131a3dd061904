//! In-memory caches of unwrapped data/fingerprint keys and of API key records.
//!
//! Both are refreshed from the store: on start-up, after every change made through this
//! process, and periodically (so changes made by the CLI on the same data directory, such as a
//! key revocation or an encryption-key rotation, take effect within the refresh interval).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use subtle::ConstantTimeEq;

use crate::crypto::{CryptoError, DataKey, FingerprintKey, MasterKey, wrap_context};
use crate::keys::{ApiKeyRecord, Mode};
use crate::store::{KeyPurpose, Store, StoreError};

/// Errors when loading keys.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyringError {
    /// Storage failed.
    Store(StoreError),
    /// A wrapped key did not unwrap (wrong master key or tampering).
    Crypto(CryptoError),
    /// No data key exists for this merchant and mode.
    NoDataKey,
}

impl std::fmt::Display for KeyringError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(e) => write!(f, "{e}"),
            Self::Crypto(e) => write!(f, "{e}"),
            Self::NoDataKey => f.write_str("no data key for this merchant and mode"),
        }
    }
}

impl std::error::Error for KeyringError {}

impl From<StoreError> for KeyringError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<CryptoError> for KeyringError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

type Scope = (String, Mode);

#[derive(Default)]
struct Keys {
    data: HashMap<(String, Mode, u32), Arc<DataKey>>,
    current: HashMap<Scope, u32>,
    fingerprint: HashMap<Scope, Arc<FingerprintKey>>,
}

/// Unwrapped encryption keys.
pub struct Keyring {
    master: Arc<MasterKey>,
    keys: RwLock<Keys>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(***)")
    }
}

impl Keyring {
    /// An empty keyring; call [`Keyring::refresh`].
    pub fn new(master: Arc<MasterKey>) -> Self {
        Self { master, keys: RwLock::new(Keys::default()) }
    }

    /// Reloads every wrapped key from the store.
    pub async fn refresh(&self, store: &dyn Store) -> Result<(), KeyringError> {
        let wrapped = store.list_wrapped_keys().await?;
        let mut next = Keys::default();
        for w in wrapped {
            let ctx = wrap_context(w.purpose.as_str(), &w.merchant_id, w.mode.as_str(), w.version);
            let key = self.master.unwrap_key(&w.wrapped, &ctx)?;
            let scope = (w.merchant_id.clone(), w.mode);
            match w.purpose {
                KeyPurpose::Data => {
                    let dk = DataKey::new(w.version, &key)?;
                    next.data.insert((w.merchant_id.clone(), w.mode, w.version), Arc::new(dk));
                    let cur = next.current.entry(scope).or_insert(0);
                    *cur = (*cur).max(w.version);
                }
                KeyPurpose::Fingerprint => {
                    next.fingerprint.insert(scope, Arc::new(FingerprintKey::new(&key)));
                }
            }
        }
        if let Ok(mut k) = self.keys.write() {
            *k = next;
        }
        Ok(())
    }

    /// The current data key of a merchant and mode.
    pub fn current(&self, merchant: &str, mode: Mode) -> Result<Arc<DataKey>, KeyringError> {
        let keys = self.keys.read().map_err(|_| KeyringError::NoDataKey)?;
        let v = keys.current.get(&(merchant.to_owned(), mode)).ok_or(KeyringError::NoDataKey)?;
        keys.data.get(&(merchant.to_owned(), mode, *v)).cloned().ok_or(KeyringError::NoDataKey)
    }

    /// A specific data-key version.
    pub fn version(&self, merchant: &str, mode: Mode, version: u32) -> Result<Arc<DataKey>, KeyringError> {
        let keys = self.keys.read().map_err(|_| KeyringError::NoDataKey)?;
        keys.data.get(&(merchant.to_owned(), mode, version)).cloned().ok_or(KeyringError::NoDataKey)
    }

    /// Every (merchant, mode, current data-key version).
    pub fn scopes(&self) -> Vec<(String, Mode, u32)> {
        self.keys
            .read()
            .map(|k| k.current.iter().map(|((m, mode), v)| (m.clone(), *mode, *v)).collect())
            .unwrap_or_default()
    }

    /// The fingerprint key of a merchant and mode.
    pub fn fingerprint(&self, merchant: &str, mode: Mode) -> Result<Arc<FingerprintKey>, KeyringError> {
        let keys = self.keys.read().map_err(|_| KeyringError::NoDataKey)?;
        keys.fingerprint.get(&(merchant.to_owned(), mode)).cloned().ok_or(KeyringError::NoDataKey)
    }
}

/// Snapshot of API keys, indexed by keyed hash.
#[derive(Debug, Default)]
pub struct KeySnapshot {
    by_hash: HashMap<[u8; 32], ApiKeyRecord>,
    /// Every allowed origin of every active publishable key (CORS preflight cannot see the key).
    pub all_origins: HashSet<String>,
}

impl KeySnapshot {
    /// Finds the record whose hash equals `hash`. The map lookup narrows the candidate; the
    /// final comparison is constant-time.
    pub fn find(&self, hash: &[u8; 32]) -> Option<&ApiKeyRecord> {
        self.by_hash.get(hash).filter(|r| bool::from(r.hash.ct_eq(hash)))
    }

    /// Finds a record by id.
    pub fn by_id(&self, id: &str) -> Option<&ApiKeyRecord> {
        self.by_hash.values().find(|r| r.id == id)
    }
}

/// Cached API keys.
#[derive(Debug, Default)]
pub struct ApiKeyCache {
    snapshot: RwLock<Arc<KeySnapshot>>,
}

impl ApiKeyCache {
    /// Reloads from the store.
    pub async fn refresh(&self, store: &dyn Store, now: i64) -> Result<(), StoreError> {
        let keys = store.list_api_keys().await?;
        let mut snap = KeySnapshot::default();
        for k in keys {
            if k.is_active(now) {
                snap.all_origins.extend(k.allowed_origins.iter().cloned());
            }
            snap.by_hash.insert(k.hash, k);
        }
        if let Ok(mut s) = self.snapshot.write() {
            *s = Arc::new(snap);
        }
        Ok(())
    }

    /// The current snapshot.
    pub fn get(&self) -> Arc<KeySnapshot> {
        self.snapshot.read().map(|s| Arc::clone(&s)).unwrap_or_default()
    }
}
