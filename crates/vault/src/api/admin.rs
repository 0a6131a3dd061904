//! Key management (`/v1/keys…`, admin role) and the audit log (`/v1/audit_events`, admin and
//! read-only roles). Every change is an audit event; plaintext keys are returned once, at
//! creation or rotation.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::{json_response, principal, read_body, require_json};
use crate::keys::{self, ApiKeyRecord, KeyKind, KeySpec, Permission, Role};
use crate::state::{AppState, Principal, RequestCtx};
use crate::store::AuditFilter;

pub use crate::bootstrap::MAX_OVERLAP_SECS;

/// Sets a field of a JSON object (no-op on other values).
pub fn set_field(value: &mut serde_json::Value, name: &str, field: serde_json::Value) {
    if let Some(obj) = value.as_object_mut() {
        obj.insert(name.to_owned(), field);
    }
}

type Lists = (Option<Vec<String>>, Option<Vec<ipnet::IpNet>>);

/// Public view of a key record.
pub fn key_json(k: &ApiKeyRecord) -> serde_json::Value {
    json!({
        "id": k.id,
        "object": "api_key",
        "kind": k.kind,
        "mode": k.mode,
        "role": k.role,
        "prefix": k.prefix,
        "label": k.label,
        "created": k.created,
        "expires_at": k.expires_at,
        "revoked_at": k.revoked_at,
        "allowed_origins": k.allowed_origins,
        "ip_allowlist": k.ip_allowlist.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

async fn json_body<T: for<'de> Deserialize<'de>>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    require_json(headers)?;
    let bytes = read_body(state, headers, body).await?;
    serde_json::from_slice(bytes.expose())
        .map_err(|_| ApiError::invalid("invalid_json", "The request body is not valid JSON for this endpoint."))
}

/// Maps a key-attribute error to the API error (the text never echoes the value).
fn key_error(e: &keys::KeyError) -> ApiError {
    match e {
        keys::KeyError::BadOrigin(_) => {
            ApiError::invalid("parameter_invalid", "An origin is not scheme://host[:port] (port 1–65535).")
                .param("allowed_origins")
        }
        keys::KeyError::InsecureOrigin(_) => ApiError::invalid(
            "insecure_origin",
            "Live keys accept only https:// origins (http:// only for localhost, 127.0.0.1 and [::1]).",
        )
        .param("allowed_origins"),
        keys::KeyError::BadCidr(_) => {
            ApiError::invalid("parameter_invalid", "An entry is not an IP address or CIDR block.").param("ip_allowlist")
        }
        keys::KeyError::CidrTooWide(_) => ApiError::invalid(
            "ip_allowlist_too_wide",
            "IP allowlist entries may not be wider than /24 (IPv4) or /48 (IPv6).",
        )
        .param("ip_allowlist"),
        keys::KeyError::BadLabel => {
            ApiError::invalid("parameter_invalid", "Labels are at most 100 characters, without control characters.")
                .param("label")
        }
        keys::KeyError::CardNumberInText(field) => ApiError::card_number_in_text(field),
        keys::KeyError::RoleMismatch | keys::KeyError::Crypto(_) => ApiError::internal(),
    }
}

/// Parses allowed origins (for a key of `mode`) and IP allowlist entries (never wider than the
/// minimum prefixes: only the CLI can force that).
fn parse_lists(origins: Option<Vec<String>>, ips: Option<Vec<String>>, mode: keys::Mode) -> Result<Lists, ApiError> {
    let origins = origins
        .map(|o| o.iter().map(|x| keys::parse_allowed_origin(x, mode)).collect::<Result<Vec<_>, _>>())
        .transpose()
        .map_err(|e| key_error(&e))?;
    let ips = ips
        .map(|o| o.iter().map(|x| keys::parse_allowlist_entry(x, false)).collect::<Result<Vec<_>, _>>())
        .transpose()
        .map_err(|e| key_error(&e))?;
    Ok((origins, ips))
}

/// Whether a key of this kind and role can detokenize. Such keys are only created, rotated
/// and widened on the vault host's command line: a stolen admin key must not turn into card
/// data (security review, finding 1).
fn can_detokenize(kind: KeyKind, role: Option<Role>) -> bool {
    keys::allows(kind, role, Permission::Detokenize)
}

/// `GET /v1/keys`.
pub async fn list_keys(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ManageKeys).await?;
    let keys = state.store.list_api_keys().await?;
    let data: Vec<_> =
        keys.iter().filter(|k| k.merchant_id == p.key.merchant_id && k.mode == p.key.mode).map(key_json).collect();
    state.audit(state.event("keys.listed", "success", &ctx, Some(&p.key)));
    Ok(json_response(StatusCode::OK, &json!({ "object": "list", "data": data })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    kind: String,
    role: Option<String>,
    label: Option<String>,
    allowed_origins: Option<Vec<String>>,
    ip_allowlist: Option<Vec<String>>,
}

/// `POST /v1/keys`: creates a key in the caller's merchant and mode.
pub async fn create_key(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ManageKeys).await?;
    let req: CreateKey = json_body(&state, &headers, body).await?;
    let kind = KeyKind::parse(&req.kind)
        .ok_or_else(|| ApiError::invalid("parameter_invalid", "kind must be publishable or secret.").param("kind"))?;
    let role = req
        .role
        .as_deref()
        .map(|r| Role::parse(r).ok_or_else(|| ApiError::invalid("parameter_invalid", "Unknown role.").param("role")))
        .transpose()?;
    if (kind == KeyKind::Secret) != role.is_some() {
        return Err(ApiError::invalid("parameter_invalid", "Secret keys need a role; publishable keys have none.")
            .param("role"));
    }
    if can_detokenize(kind, role) {
        let mut e = state.event("permission.denied", "denied", &ctx, Some(&p.key));
        e.detail = json!({ "action": "create_detokenize_key" });
        state.audit(e);
        return Err(ApiError::detokenize_grant_forbidden());
    }
    let (origins, ips) = parse_lists(req.allowed_origins, req.ip_allowlist, p.key.mode)?;
    let label = keys::parse_label(req.label.as_deref().unwrap_or_default()).map_err(|e| key_error(&e))?;
    let spec = KeySpec {
        merchant_id: p.key.merchant_id.clone(),
        kind,
        mode: p.key.mode,
        role,
        label,
        allowed_origins: origins.unwrap_or_default(),
        ip_allowlist: ips.unwrap_or_default(),
    };
    let master = state.master.clone();
    let new = keys::generate(spec, state.now(), |k| master.hash_api_key(k)).map_err(|_| ApiError::internal())?;
    let mut e = state.event("key.created", "success", &ctx, Some(&p.key));
    e.detail = json!({ "new_key_id": new.record.id, "kind": kind, "role": role });
    state.log_audit(&e);
    state.store.insert_api_key(new.record.clone(), e).await?;
    state.api_keys.refresh(state.store.as_ref(), state.now()).await?;
    let mut out = key_json(&new.record);
    set_field(&mut out, "secret", json!(new.plaintext.expose()));
    Ok(json_response(StatusCode::CREATED, &out))
}

async fn target_key(state: &AppState, p: &Principal, id: &str) -> Result<ApiKeyRecord, ApiError> {
    let keys = state.store.list_api_keys().await?;
    keys.into_iter()
        .find(|k| k.id == id && k.merchant_id == p.key.merchant_id && k.mode == p.key.mode)
        .ok_or_else(ApiError::not_found)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateKey {
    label: Option<String>,
    allowed_origins: Option<Vec<String>>,
    ip_allowlist: Option<Vec<String>>,
}

/// `POST /v1/keys/{id}`: changes allowed origins, IP allowlist or label.
pub async fn update_key(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ManageKeys).await?;
    let req: UpdateKey = json_body(&state, &headers, body).await?;
    let mut key = target_key(&state, &p, &id).await?;
    let (origins, ips) = parse_lists(req.allowed_origins, req.ip_allowlist, key.mode)?;
    let label = req.label.as_deref().map(keys::parse_label).transpose().map_err(|e| key_error(&e))?;
    if let Some(new_ips) = &ips {
        if can_detokenize(key.kind, key.role) && keys::allowlist_widens(&key.ip_allowlist, new_ips) {
            let mut e = state.event("permission.denied", "denied", &ctx, Some(&p.key));
            e.detail = json!({ "action": "widen_detokenize_allowlist", "target_key_id": key.id });
            state.audit(e);
            return Err(ApiError::detokenize_grant_forbidden());
        }
    }
    let mut e = state.event("key.updated", "success", &ctx, Some(&p.key));
    e.detail = json!({
        "target_key_id": key.id,
        "allowed_origins": origins,
        "ip_allowlist": ips.as_ref().map(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>()),
    });
    if let Some(o) = origins {
        key.allowed_origins = o;
    }
    if let Some(i) = ips {
        key.ip_allowlist = i;
    }
    if let Some(l) = label {
        key.label = l;
    }
    state.log_audit(&e);
    state.store.update_api_key(key.clone(), e).await?;
    state.api_keys.refresh(state.store.as_ref(), state.now()).await?;
    Ok(json_response(StatusCode::OK, &key_json(&key)))
}

/// `POST /v1/keys/{id}/revoke`.
pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ManageKeys).await?;
    let mut key = target_key(&state, &p, &id).await?;
    if key.revoked_at.is_none() {
        key.revoked_at = Some(state.now());
    }
    let mut e = state.event("key.revoked", "success", &ctx, Some(&p.key));
    e.detail = json!({ "target_key_id": key.id });
    state.log_audit(&e);
    state.store.update_api_key(key.clone(), e).await?;
    state.api_keys.refresh(state.store.as_ref(), state.now()).await?;
    Ok(json_response(StatusCode::OK, &key_json(&key)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateKey {
    overlap_seconds: Option<i64>,
}

/// `POST /v1/keys/{id}/rotate`: a new key with the same attributes; the old one keeps working
/// for the overlap period (default 1 hour, 0 = stop now).
pub async fn rotate_key(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ManageKeys).await?;
    let bytes = read_body(&state, &headers, body).await?;
    let req: RotateKey = if bytes.expose().is_empty() {
        RotateKey::default()
    } else {
        require_json(&headers)?;
        serde_json::from_slice(bytes.expose())
            .map_err(|_| ApiError::invalid("invalid_json", "The request body is not valid JSON for this endpoint."))?
    };
    let overlap = req.overlap_seconds.unwrap_or(3600);
    if !(0..=MAX_OVERLAP_SECS).contains(&overlap) {
        return Err(
            ApiError::invalid("parameter_invalid", "overlap_seconds must be 0–604800.").param("overlap_seconds")
        );
    }
    let old = target_key(&state, &p, &id).await?;
    if can_detokenize(old.kind, old.role) {
        let mut e = state.event("permission.denied", "denied", &ctx, Some(&p.key));
        e.detail = json!({ "action": "rotate_detokenize_key", "target_key_id": old.id });
        state.audit(e);
        return Err(ApiError::detokenize_grant_forbidden());
    }
    let (new, old) = rotate(&state, old, overlap, &ctx, &p).await?;
    let mut out = key_json(&new.record);
    set_field(&mut out, "secret", json!(new.plaintext.expose()));
    set_field(&mut out, "replaces", key_json(&old));
    Ok(json_response(StatusCode::CREATED, &out))
}

async fn rotate(
    state: &AppState,
    old: ApiKeyRecord,
    overlap: i64,
    ctx: &RequestCtx,
    p: &Principal,
) -> Result<(keys::NewKey, ApiKeyRecord), ApiError> {
    let events = |new: &ApiKeyRecord, old: &ApiKeyRecord| {
        let mut created = state.event("key.created", "success", ctx, Some(&p.key));
        created.detail = json!({ "new_key_id": new.id, "rotation_of": old.id });
        let mut rotated = state.event("key.rotated", "success", ctx, Some(&p.key));
        rotated.detail = json!({ "target_key_id": old.id, "new_key_id": new.id, "overlap_seconds": overlap });
        (created, rotated)
    };
    match rotate_recorded(state, old, overlap, events).await {
        Ok(done) => Ok(done),
        Err(RotateError::Inactive) => Err(ApiError::invalid("key_inactive", "Only an active key can be rotated.")),
        Err(RotateError::Crypto) => Err(ApiError::internal()),
        Err(RotateError::Store(e)) => Err(e.into()),
    }
}

/// Why a rotation did not happen.
#[derive(Debug)]
pub enum RotateError {
    /// The key is revoked or expired.
    Inactive,
    /// Generating the new key failed.
    Crypto,
    /// Storage failed.
    Store(crate::store::StoreError),
}

/// Rotates `old`: a new key with the same attributes is stored, and `old` stops working after
/// `overlap` seconds (never later than it would have), each write with the audit event
/// `events(new, old)` gives (`key.created`, `key.rotated`); then the key cache is reloaded.
/// Shared by the API and Dev Space.
///
/// # Errors
/// [`RotateError`].
pub async fn rotate_recorded(
    state: &AppState,
    mut old: ApiKeyRecord,
    overlap: i64,
    events: impl FnOnce(&ApiKeyRecord, &ApiKeyRecord) -> (crate::store::AuditEvent, crate::store::AuditEvent),
) -> Result<(keys::NewKey, ApiKeyRecord), RotateError> {
    let now = state.now();
    if !old.is_active(now) {
        return Err(RotateError::Inactive);
    }
    let master = state.master.clone();
    let new =
        keys::generate(KeySpec::replacing(&old), now, |k| master.hash_api_key(k)).map_err(|_| RotateError::Crypto)?;
    let until = now + overlap;
    old.expires_at = Some(old.expires_at.map_or(until, |t| t.min(until)));
    let (created, rotated) = events(&new.record, &old);
    state.log_audit(&created);
    state.log_audit(&rotated);
    state.store.insert_api_key(new.record.clone(), created).await.map_err(RotateError::Store)?;
    state.store.update_api_key(old.clone(), rotated).await.map_err(RotateError::Store)?;
    state.api_keys.refresh(state.store.as_ref(), now).await.map_err(RotateError::Store)?;
    Ok((new, old))
}

/// Largest `limit` of `GET /v1/audit_events`.
pub const MAX_AUDIT_LIMIT: u32 = 1000;

/// Query of `GET /v1/audit_events`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    limit: Option<u32>,
    event: Option<String>,
    before: Option<i64>,
}

/// `GET /v1/audit_events`: the caller's merchant's events, newest first.
pub async fn list_audit(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ReadAudit).await?;
    let Query(q) = query.map_err(|_| ApiError::invalid("parameter_invalid", "Invalid query parameters."))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_AUDIT_LIMIT).contains(&limit) {
        return Err(ApiError::invalid("parameter_invalid", "limit must be 1–1000.").param("limit"));
    }
    if q.event.as_ref().is_some_and(|e| e.is_empty() || e.len() > 64) {
        return Err(ApiError::invalid("parameter_invalid", "event must be 1–64 characters.").param("event"));
    }
    let filter = AuditFilter {
        merchant_id: Some(p.key.merchant_id.clone()),
        event: q.event,
        before_id: q.before,
        limit,
        ..AuditFilter::default()
    };
    let mode = p.key.mode;
    let events: Vec<_> =
        state.store.list_audit(filter).await?.into_iter().filter(|e| e.mode.is_none_or(|m| m == mode)).collect();
    state.audit(state.event("audit.read", "success", &ctx, Some(&p.key)));
    Ok(json_response(StatusCode::OK, &json!({ "object": "list", "data": events })))
}
