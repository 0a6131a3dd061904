//! `/v1/events…`: the stored events (the outbox the webhook worker delivers), their delivery
//! attempts, and redelivery.

use std::collections::HashMap;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::ApiError;
use super::payments::{body_object, list_body, list_filter};
use super::{principal, read_body, require_json};
use crate::keys::Permission;
use crate::state::{AppState, RequestCtx};
use crate::store::EventRecord;

fn valid_event_id(id: &str) -> bool {
    id.strip_prefix("evt_").is_some_and(|r| r.len() == 24 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

async fn load(state: &AppState, merchant: &str, mode: crate::keys::Mode, id: &str) -> Result<EventRecord, ApiError> {
    if !valid_event_id(id) {
        return Err(ApiError::not_found());
    }
    state.store.get_event(id, merchant, mode).await?.ok_or_else(ApiError::not_found)
}

/// `GET /v1/events/{id}`: the event exactly as delivered.
pub async fn retrieve(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ReadPayments).await?;
    let e = load(&state, &p.key.merchant_id, p.key.mode, &id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], e.body).into_response())
}

/// `GET /v1/events`.
pub async fn list(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ReadPayments).await?;
    let mut f = list_filter(&p, &q, &[("limit", "limit"), ("starting_after", "starting_after"), ("type", "type")])?;
    let limit = f.limit;
    f.limit += 1;
    let rows = state.store.list_events(f).await?;
    Ok(list_body(rows.into_iter().map(|e| (e.id, e.body)).collect(), limit))
}

/// `GET /v1/events/{id}/attempts`.
pub async fn attempts(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ReadPayments).await?;
    let e = load(&state, &p.key.merchant_id, p.key.mode, &id).await?;
    let rows = state.store.list_attempts(&e.id).await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|a| {
            json!({
                "object": "delivery_attempt",
                "endpoint": a.endpoint_id,
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error_class": a.error_class,
                "created": a.created,
            })
        })
        .collect();
    let body = json!({ "object": "list", "data": data, "has_more": false, "next_cursor": null });
    Ok(([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

/// `POST /v1/events/{id}/redeliver` `{endpoint?}` (admin): schedules a delivery now.
pub async fn redeliver(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let p = principal(&state, &ctx, &headers, Permission::ManageWebhooks).await?;
    require_json(&headers)?;
    let body = read_body(&state, &headers, body).await?;
    let map = body_object(body.expose(), &["endpoint"])?;
    let endpoint = match map.get("endpoint") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.starts_with("we_") && s.len() <= 40 => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::invalid("parameter_invalid", "A parameter has an invalid value.").param("endpoint"));
        }
    };
    let e = load(&state, &p.key.merchant_id, p.key.mode, &id).await?;
    let n = state.store.redeliver_event(&e.id, &p.key.merchant_id, p.key.mode, endpoint, state.now()).await?;
    let mut audit = state.event("event.redelivered", "success", &ctx, Some(&p.key));
    audit.detail = json!({ "event": e.id, "deliveries": n });
    state.audit(audit);
    let body = json!({ "object": "redelivery", "event": e.id, "deliveries": n });
    Ok((StatusCode::ACCEPTED, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}
