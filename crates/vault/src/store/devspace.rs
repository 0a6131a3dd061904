//! Dev Space records in both engines: the columns and the one conversion between a row's
//! plain values and the records of the `devspace` crate.

use ::devspace::Role;
use ::devspace::backend::{LinkPurpose, UserRecord};
use ::devspace::session::{SessionRecord, Stage};

use super::StoreError;

/// Columns of `devspace_users`, in [`RawUser`] order.
pub const USER_COLUMNS: &str = "id, merchant_id, email, role, password_hash, totp_sealed, totp_enrolled, \
    totp_last_step, recovery_hashes, known_ips, failed_signins, created, version";
/// Columns of `devspace_sessions`, in [`SessionRecord`] field order.
pub const SESSION_COLUMNS: &str = "hash, user_id, stage, created, last_seen, reauth_at, ip";

/// A `devspace_users` row as plain values.
#[derive(Debug, Clone)]
pub struct RawUser {
    pub id: String,
    pub merchant_id: String,
    pub email: String,
    pub role: String,
    pub password_hash: Option<String>,
    pub totp_sealed: Option<Vec<u8>>,
    pub totp_enrolled: i64,
    pub totp_last_step: i64,
    pub recovery_hashes: String,
    pub known_ips: String,
    pub failed_signins: i64,
    pub created: i64,
    pub version: i64,
}

impl RawUser {
    /// The row of `u`.
    pub fn of(u: &UserRecord) -> Self {
        Self {
            id: u.id.clone(),
            merchant_id: u.merchant_id.clone(),
            email: u.email.clone(),
            role: u.role.as_str().to_owned(),
            password_hash: u.password_hash.clone(),
            totp_sealed: u.totp_sealed.clone(),
            totp_enrolled: i64::from(u.totp_enrolled),
            totp_last_step: u.totp_last_step,
            recovery_hashes: serde_json::to_string(&u.recovery_hashes).unwrap_or_else(|_| "[]".into()),
            known_ips: serde_json::to_string(&u.known_ips).unwrap_or_else(|_| "[]".into()),
            failed_signins: i64::from(u.failed_signins),
            created: u.created,
            version: u.version,
        }
    }

    /// The record of this row.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a value no version of the vault writes.
    pub fn decode(self) -> Result<UserRecord, StoreError> {
        Ok(UserRecord {
            role: Role::parse(&self.role).ok_or(StoreError::Corrupt("devspace user role"))?,
            recovery_hashes: serde_json::from_str(&self.recovery_hashes)
                .map_err(|_| StoreError::Corrupt("devspace recovery hashes"))?,
            known_ips: serde_json::from_str(&self.known_ips).map_err(|_| StoreError::Corrupt("devspace known ips"))?,
            failed_signins: u32::try_from(self.failed_signins).unwrap_or(u32::MAX),
            totp_enrolled: self.totp_enrolled != 0,
            id: self.id,
            merchant_id: self.merchant_id,
            email: self.email,
            password_hash: self.password_hash,
            totp_sealed: self.totp_sealed,
            totp_last_step: self.totp_last_step,
            created: self.created,
            version: self.version,
        })
    }
}

/// A session's stage from its column.
///
/// # Errors
/// [`StoreError::Corrupt`].
pub fn stage(text: &str) -> Result<Stage, StoreError> {
    Stage::parse(text).ok_or(StoreError::Corrupt("devspace session stage"))
}

/// A link's purpose from its column.
///
/// # Errors
/// [`StoreError::Corrupt`].
pub fn purpose(text: &str) -> Result<LinkPurpose, StoreError> {
    LinkPurpose::parse(text).ok_or(StoreError::Corrupt("devspace link purpose"))
}

/// A session's column values, in [`SESSION_COLUMNS`] order.
pub fn session_fields(s: &SessionRecord) -> (&str, &str, &str, i64, i64, Option<i64>, &str) {
    (&s.hash, &s.user_id, s.stage.as_str(), s.created, s.last_seen, s.reauth_at, &s.ip)
}
