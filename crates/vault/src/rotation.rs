//! Encryption-key rotation: new data-key versions and re-encryption of old rows.
//!
//! Rotation adds a new data-key version for every merchant and mode; new tokens use it at once
//! (after the server's next key refresh). Rows under older versions are re-encrypted in batches
//! by [`reencrypt_all`], which the CLI runs with a progress display and the server's sweeper
//! runs in the background, so an interrupted rotation always completes. Old key versions stay
//! stored so that rows not yet re-encrypted remain readable.

use crate::clock::UnixSeconds;
use crate::crypto::{Binding, MasterKey, random_key, wrap_context};
use crate::keyring::{Keyring, KeyringError};
use crate::keys::Mode;
use crate::store::{KeyPurpose, Store, WrappedKeyRecord};

/// Progress of a re-encryption pass.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Merchant.
    pub merchant_id: String,
    /// Mode.
    pub mode: Mode,
    /// Rows re-encrypted so far in this scope.
    pub done: u64,
    /// Rows that needed re-encryption when the pass started.
    pub total: u64,
}

/// Adds a new data-key version for every merchant and mode. Returns the new versions.
pub async fn rotate_data_keys(
    store: &dyn Store,
    master: &MasterKey,
    now: UnixSeconds,
) -> Result<Vec<(String, Mode, u32)>, KeyringError> {
    let wrapped = store.list_wrapped_keys().await?;
    let merchants = store.list_merchants().await?;
    let mut out = Vec::new();
    for m in merchants {
        for mode in Mode::ALL {
            let current = wrapped
                .iter()
                .filter(|w| w.merchant_id == m.id && w.mode == mode && w.purpose == KeyPurpose::Data)
                .map(|w| w.version)
                .max()
                .unwrap_or(0);
            let version = current + 1;
            let key = random_key()?;
            let ctx = wrap_context(KeyPurpose::Data.as_str(), &m.id, mode.as_str(), version);
            store
                .insert_wrapped_key(WrappedKeyRecord {
                    merchant_id: m.id.clone(),
                    mode,
                    purpose: KeyPurpose::Data,
                    version,
                    wrapped: master.wrap(&key, &ctx)?,
                    created: now,
                })
                .await?;
            out.push((m.id.clone(), mode, version));
        }
    }
    Ok(out)
}

/// Re-encrypts every row under an old data-key version with the current version, `batch`
/// rows per transaction. Returns the number of rows re-encrypted.
pub async fn reencrypt_all(
    store: &dyn Store,
    keyring: &Keyring,
    batch: u32,
    mut progress: impl FnMut(&Progress),
) -> Result<u64, KeyringError> {
    let mut total_done = 0;
    for (merchant_id, mode, current) in keyring.scopes() {
        let total = store.count_below_version(&merchant_id, mode, current).await?;
        if total == 0 {
            continue;
        }
        let new_key = keyring.version(&merchant_id, mode, current)?;
        let mut p = Progress { merchant_id: merchant_id.clone(), mode, done: 0, total };
        progress(&p);
        let mut cursor = 0;
        loop {
            let rows = store.rows_to_reencrypt(&merchant_id, mode, current, cursor, batch).await?;
            let Some(last) = rows.last() else { break };
            cursor = last.cursor;
            let mut updated = Vec::with_capacity(rows.len());
            for mut row in rows {
                let old = keyring.version(&merchant_id, mode, row.key_version)?;
                let card = Binding { token_id: &row.id, merchant: &merchant_id, mode: mode.as_str(), field: "card" };
                let cvc = Binding { field: "cvc", ..card };
                let plain = old.open(&row.card_ct, &card)?;
                let new_card = new_key.seal(plain.expose(), &card)?;
                let new_cvc = match &row.cvc_ct {
                    Some(ct) => Some(new_key.seal(old.open(ct, &cvc)?.expose(), &cvc)?),
                    None => None,
                };
                row.card_ct = new_card;
                row.cvc_ct = new_cvc;
                updated.push((row, current));
            }
            let n = store.replace_ciphertexts(updated).await?;
            p.done += n;
            total_done += n;
            progress(&p);
        }
    }
    Ok(total_done)
}
