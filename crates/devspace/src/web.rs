//! The router and handlers. Every handler that shows account data takes a [`SignedIn`] (the
//! extractor checks a full session on the server) and, for changes, goes through [`checked`]
//! (the CSRF token, then [`SignedIn::require`], the role policy); nothing relies on what the
//! page did or did not show.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;
use serde_json::json;

use crate::backend::{
    Actor, AlertRecord, AttemptBucket, AuditQuery, Backend, BackendError, KeyView, LinkPurpose, LinkRecord,
    NewKeyRequest, UserRecord,
};
use crate::pages::{self, KeysExtras, Viewer};
use crate::password::{self, HashParams};
use crate::policy::{Action, Role, allows};
use crate::recovery;
use crate::secret::{Secret, random_fill};
use crate::session::{
    ABSOLUTE_SECONDS, DEVICE_COOKIE, DEVICE_SECONDS, OpaqueId, PRE_COOKIE, SESSION_COOKIE, SessionRecord, Stage,
    clear_cookie, read_cookie, set_cookie,
};
use crate::totp::{self, TotpSecret};

/// Content-Security-Policy of every Dev Space response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How long a set-password link works.
pub const LINK_SECONDS: i64 = 72 * 60 * 60;
/// Failed sign-ins in a row that raise an alert (and every multiple of it).
pub const FAILURE_ALERT_THRESHOLD: u32 = 5;
/// Keys unused this many days are flagged (and the vault raises `key.unused`).
pub const UNUSED_DAYS: i64 = 30;
/// Addresses remembered per user for "new address" alerts.
pub const KNOWN_IPS: usize = 20;

/// Settings of a Dev Space instance.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Issuer name shown in authenticator apps.
    pub issuer: String,
    /// argon2id cost of new password hashes.
    pub password_params: HashParams,
    /// Keys unused this many days are flagged.
    pub unused_days: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self { issuer: "Altafinex Dev Space".into(), password_params: HashParams::OWASP, unused_days: UNUSED_DAYS }
    }
}

/// The client address of a request: the server inserts it as an extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

#[derive(Clone)]
struct Ctx {
    backend: Arc<dyn Backend>,
    settings: Arc<Settings>,
}

/// The Dev Space router (all paths at the root of its own origin).
pub fn router(backend: Arc<dyn Backend>, settings: Settings) -> Router {
    let ctx = Ctx { backend, settings: Arc::new(settings) };
    Router::new()
        .route("/", get(home))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-in/code", get(code_page).post(code_submit))
        .route("/welcome/{token}", get(welcome_page))
        .route("/welcome", post(welcome_submit))
        .route("/enrol", get(enrol_page).post(enrol_submit))
        .route("/reauth", get(reauth_page).post(reauth_submit))
        .route("/sign-out", post(sign_out))
        .route("/sign-out-everywhere", post(sign_out_everywhere))
        .route("/keys", get(keys_page).post(create_key))
        .route("/keys/{id}/revoke", post(revoke_key))
        .route("/keys/{id}/rotate", post(rotate_key))
        .route("/keys/{id}/allowlist", post(set_allowlist))
        .route("/audit", get(audit_page))
        .route("/audit.csv", get(audit_csv))
        .route("/alerts", get(alerts_page))
        .route("/users", get(users_page).post(invite_user))
        .route("/payments", get(payments_page))
        .route("/webhooks", get(webhooks_page).post(create_webhook))
        .route("/webhooks/events", get(events_page))
        .route("/webhooks/events/{id}/resend", post(resend_event))
        .route("/webhooks/{id}/rotate", post(rotate_webhook))
        .route("/webhooks/{id}/delete", post(delete_webhook))
        .route("/tokens", get(tokens_page))
        .route("/users/{id}/role", post(change_role))
        .route("/users/{id}/remove", post(remove_user))
        .route("/assets/devspace.css", get(css))
        .route("/assets/devspace.js", get(js))
        .route("/assets/favicon.svg", get(favicon))
        .fallback(not_found)
        .layer(middleware::map_response(security_headers))
        .with_state(ctx)
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000; includeSubDomains"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    res
}

/// Why a request failed, rendered as a page that says nothing internal.
#[derive(Debug)]
enum PageError {
    /// No (valid) session: go to the sign-in page.
    SignIn,
    /// The role does not allow it.
    Forbidden,
    /// Missing or wrong CSRF token.
    Csrf,
    /// No such page or record.
    NotFound,
    /// Too many attempts.
    RateLimited,
    /// The link is unknown, used or expired.
    BadLink,
    /// Storage down.
    Unavailable,
    /// Anything else.
    Internal,
}

impl From<BackendError> for PageError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Unavailable => Self::Unavailable,
            BackendError::NotFound => Self::NotFound,
            _ => Self::Internal,
        }
    }
}

impl From<crate::secret::RandomError> for PageError {
    fn from(_: crate::secret::RandomError) -> Self {
        Self::Internal
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            Self::SignIn => return see_other("/sign-in"),
            Self::Forbidden => {
                (StatusCode::FORBIDDEN, "Not allowed", "Your role does not allow this. Ask an owner or admin.")
            }
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was not sent from the page we served (or the page is too old). Go back, reload and try again.",
            ),
            Self::NotFound => (StatusCode::NOT_FOUND, "Not found", "There is nothing here."),
            Self::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "Too many attempts. Wait a few minutes and try again.",
            ),
            Self::BadLink => (
                StatusCode::GONE,
                "Link no longer valid",
                "This link was already used or has expired. Ask an owner or admin for a new one.",
            ),
            Self::Unavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "Try again shortly", "Dev Space cannot reach its storage right now.")
            }
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "The error was logged."),
        };
        html_response(status, pages::message(title, text, Some(("/keys", "Back to Dev Space"))))
    }
}

fn html_response(status: StatusCode, page: Markup) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page.into_string()).into_response()
}

fn see_other(location: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn with_cookie(mut res: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

fn client_ip(ip: Option<axum::Extension<ClientIp>>) -> String {
    ip.map_or_else(|| "unknown".to_owned(), |axum::Extension(ClientIp(a))| a.to_string())
}

/// A fully signed-in request.
struct SignedIn {
    id: OpaqueId,
    csrf: String,
    session: SessionRecord,
    user: UserRecord,
    actor: Actor,
}

impl SignedIn {
    fn viewer(&self) -> Viewer<'_> {
        Viewer { email: &self.user.email, role: self.user.role, csrf: &self.csrf }
    }

    fn require(&self, action: Action) -> Result<(), PageError> {
        if allows(self.user.role, action) { Ok(()) } else { Err(PageError::Forbidden) }
    }

    fn check_csrf(&self, presented: Option<&str>) -> Result<(), PageError> {
        if presented.is_some_and(|p| self.id.csrf_ok(p)) { Ok(()) } else { Err(PageError::Csrf) }
    }
}

/// The session of this request at `stage`, refreshed (idle timeout), with its user.
async fn session_at(ctx: &Ctx, headers: &HeaderMap, ip: String, stage: Stage) -> Result<SignedIn, PageError> {
    let id = read_cookie(headers, SESSION_COOKIE).and_then(OpaqueId::parse).ok_or(PageError::SignIn)?;
    let now = ctx.backend.now();
    let mut session = ctx.backend.session(&id.hash()).await?.ok_or(PageError::SignIn)?;
    if !session.is_live(now) {
        ctx.backend.delete_session(&session.hash).await?;
        return Err(PageError::SignIn);
    }
    if session.stage != stage {
        return Err(PageError::SignIn);
    }
    let user = ctx.backend.user(&session.user_id).await?.ok_or(PageError::SignIn)?;
    // Writing on every request would make each page view a database write: the idle timeout
    // is 30 minutes, a minute of slack is harmless.
    if now - session.last_seen >= 60 {
        session.last_seen = now;
        ctx.backend.update_session(session.clone()).await?;
    }
    let actor = Actor {
        user_id: user.id.clone(),
        email: user.email.clone(),
        merchant_id: user.merchant_id.clone(),
        role: user.role,
        ip,
    };
    Ok(SignedIn { csrf: id.csrf_token(), id, session, user, actor })
}

async fn signed_in(ctx: &Ctx, headers: &HeaderMap, ip: String) -> Result<SignedIn, PageError> {
    session_at(ctx, headers, ip, Stage::Full).await
}

/// The pre-session id of this browser (made if missing) and the cookie to set for it.
fn pre_session(headers: &HeaderMap) -> Result<(OpaqueId, Option<HeaderValue>), PageError> {
    if let Some(id) = read_cookie(headers, PRE_COOKIE).and_then(OpaqueId::parse) {
        return Ok((id, None));
    }
    let id = OpaqueId::generate()?;
    let cookie = set_cookie(PRE_COOKIE, id.expose(), ABSOLUTE_SECONDS);
    Ok((id, cookie))
}

fn check_pre_csrf(headers: &HeaderMap, presented: Option<&str>) -> Result<(), PageError> {
    let id = read_cookie(headers, PRE_COOKIE).and_then(OpaqueId::parse).ok_or(PageError::Csrf)?;
    if presented.is_some_and(|p| id.csrf_ok(p)) { Ok(()) } else { Err(PageError::Csrf) }
}

/// Starts a session for `user` at `stage` and answers with its cookie and a redirect (or
/// `page`).
async fn start_session(
    ctx: &Ctx,
    user: &UserRecord,
    stage: Stage,
    ip: &str,
) -> Result<(OpaqueId, Option<HeaderValue>), PageError> {
    let id = OpaqueId::generate()?;
    let now = ctx.backend.now();
    ctx.backend
        .insert_session(SessionRecord {
            hash: id.hash(),
            user_id: user.id.clone(),
            stage,
            created: now,
            last_seen: now,
            reauth_at: (stage == Stage::Full).then_some(now),
            ip: ip.to_owned(),
        })
        .await?;
    let cookie = set_cookie(SESSION_COOKIE, id.expose(), ABSOLUTE_SECONDS);
    Ok((id, cookie))
}

fn actor_of(user: &UserRecord, ip: &str) -> Actor {
    Actor {
        user_id: user.id.clone(),
        email: user.email.clone(),
        merchant_id: user.merchant_id.clone(),
        role: user.role,
        ip: ip.to_owned(),
    }
}

fn form_or_csrf<T>(form: Result<Form<T>, FormRejection>) -> Result<T, PageError> {
    // A body we cannot read as the form is no form we served: same answer as a bad token.
    form.map(|Form(f)| f).map_err(|_| PageError::Csrf)
}

/// A form that carries a CSRF token.
trait CsrfForm {
    fn csrf(&self) -> Option<&str>;
}

macro_rules! csrf_forms {
    ($($t:ty),*) => { $(impl CsrfForm for $t { fn csrf(&self) -> Option<&str> { self.csrf.as_deref() } })* };
}

csrf_forms!(CodeForm, CsrfOnly, CreateKeyForm, AllowlistForm, RoleForm, RotateForm, WebhookForm);

/// A fully signed-in request, as a handler argument: the session cookie checked on the
/// server (a request without a valid full session is sent to the sign-in page), refreshed for
/// the idle timeout, with its user and the client address.
impl FromRequestParts<Ctx> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, PageError> {
        let ip = parts.extensions.get::<ClientIp>().map_or_else(|| "unknown".to_owned(), |ClientIp(a)| a.to_string());
        signed_in(ctx, &parts.headers, ip).await
    }
}

/// A state-changing request from a full session `s`: the form read, its CSRF token checked,
/// then (when given) the role's permission for `action`, in that order.
fn checked<T: CsrfForm>(
    s: SignedIn,
    form: Result<Form<T>, FormRejection>,
    action: Option<Action>,
) -> Result<(SignedIn, T), PageError> {
    let form = form_or_csrf(form)?;
    s.check_csrf(form.csrf())?;
    if let Some(action) = action {
        s.require(action)?;
    }
    Ok((s, form))
}

async fn home(State(ctx): State<Ctx>, ip: Option<axum::Extension<ClientIp>>, headers: HeaderMap) -> Response {
    match signed_in(&ctx, &headers, client_ip(ip)).await {
        Ok(_) => see_other("/keys"),
        Err(_) => see_other("/sign-in"),
    }
}

async fn sign_in_page(headers: HeaderMap) -> Result<Response, PageError> {
    let (pre, cookie) = pre_session(&headers)?;
    Ok(with_cookie(html_response(StatusCode::OK, pages::sign_in(&pre.csrf_token(), "", &[])), cookie))
}

#[derive(Deserialize)]
struct SignInForm {
    csrf: Option<String>,
    #[serde(default)]
    email: String,
    password: Option<Secret>,
}

/// Longest email address (RFC 5321 path limit).
const MAX_EMAIL: usize = 254;

/// Validates an email address's shape; the text is the field's error.
pub fn parse_email(text: &str) -> Result<String, &'static str> {
    let email = text.trim().to_lowercase();
    if email.is_empty() {
        return Err("Enter your email address.");
    }
    if email.len() > MAX_EMAIL {
        return Err("An email address has at most 254 characters.");
    }
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
    }) && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.matches('@').count() == 1;
    if valid { Ok(email) } else { Err("Enter an email address like name@example.com.") }
}

async fn sign_in(
    State(ctx): State<Ctx>,
    ip: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = form_or_csrf(form)?;
    check_pre_csrf(&headers, form.csrf.as_deref())?;
    let ip = client_ip(ip);
    let csrf = read_cookie(&headers, PRE_COOKIE).and_then(OpaqueId::parse).map(|p| p.csrf_token()).unwrap_or_default();
    let mut errors = Vec::new();
    let email = match parse_email(&form.email) {
        Ok(e) => e,
        Err(m) => {
            errors.push(("email", m.to_owned()));
            String::new()
        }
    };
    let password = form.password.filter(|p| !p.expose().is_empty());
    if password.is_none() {
        errors.push(("password", "Enter your password.".to_owned()));
    }
    let Some(password) = password.filter(|_| errors.is_empty()) else {
        return Ok(html_response(StatusCode::UNPROCESSABLE_ENTITY, pages::sign_in(&csrf, form.email.trim(), &errors)));
    };
    if !ctx.backend.allow_attempt(AttemptBucket::Address, &ip).await?
        || !ctx.backend.allow_attempt(AttemptBucket::Account, &email).await?
    {
        return Err(PageError::RateLimited);
    }
    let user = ctx.backend.user_by_email(&email).await?;
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = match &stored {
        Some(hash) => password::verify(&password, hash),
        None => {
            password::verify_dummy(&password, ctx.settings.password_params);
            false
        }
    };
    let wrong = || {
        let errors = [("password", "The email address or password is incorrect.".to_owned())];
        html_response(StatusCode::UNPROCESSABLE_ENTITY, pages::sign_in(&csrf, &email, &errors))
    };
    let Some(user) = user.filter(|_| ok) else {
        if let Some(u) = ctx.backend.user_by_email(&email).await? {
            record_failure(&ctx, u, &ip).await?;
        }
        return Ok(wrong());
    };
    let stage = if user.totp_enrolled { Stage::Password } else { Stage::Enrol };
    let (_, cookie) = start_session(&ctx, &user, stage, &ip).await?;
    let next = if stage == Stage::Password { "/sign-in/code" } else { "/enrol" };
    Ok(with_cookie(see_other(next), cookie))
}

/// Counts a failed sign-in (password or code) and raises an alert at every
/// [`FAILURE_ALERT_THRESHOLD`] in a row.
async fn record_failure(ctx: &Ctx, mut user: UserRecord, ip: &str) -> Result<(), PageError> {
    user.failed_signins = user.failed_signins.saturating_add(1);
    let count = user.failed_signins;
    let actor = actor_of(&user, ip);
    // A lost race only loses one count of a counter that exists to raise an alert.
    let _ = ctx.backend.update_user(user).await?;
    ctx.backend.audit(&actor, "devspace.sign_in", "denied", None, json!({ "failed_in_a_row": count })).await?;
    if count % FAILURE_ALERT_THRESHOLD == 0 {
        raise(
            ctx,
            &actor,
            "signin.failures",
            format!("{count} failed sign-ins in a row for {}, the last from {ip}.", actor.email),
        )
        .await?;
    }
    Ok(())
}

async fn raise(ctx: &Ctx, actor: &Actor, kind: &str, message: String) -> Result<(), PageError> {
    let mut raw = [0u8; 12];
    random_fill(&mut raw)?;
    let alert = AlertRecord {
        id: format!("alr_{}", crate::secret::hex(&raw)),
        merchant_id: actor.merchant_id.clone(),
        ts: ctx.backend.now(),
        kind: kind.to_owned(),
        message,
        detail: json!({ "user_id": actor.user_id, "email": actor.email, "ip": actor.ip }),
    };
    ctx.backend.raise_alert(alert).await?;
    Ok(())
}

async fn code_page(
    State(ctx): State<Ctx>,
    ip: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let s = session_at(&ctx, &headers, client_ip(ip), Stage::Password).await?;
    Ok(html_response(StatusCode::OK, pages::code_form("Two-step verification", "/sign-in/code", &s.csrf, false, &[])))
}

#[derive(Deserialize)]
struct CodeForm {
    csrf: Option<String>,
    password: Option<Secret>,
    code: Option<Secret>,
}

/// Checks a TOTP or recovery code against `user` and, if it is good, stores what it used up
/// (the TOTP step, the recovery code). Retries on a concurrent change so that the same code
/// is accepted at most once across instances.
async fn use_second_factor(ctx: &Ctx, mut user: UserRecord, code: &str) -> Result<Option<UserRecord>, PageError> {
    for _ in 0..3 {
        let now = ctx.backend.now();
        let sealed = user.totp_sealed.clone().ok_or(PageError::Internal)?;
        let secret = ctx.backend.open_totp(&user.id, &sealed)?;
        let mut updated = user.clone();
        if totp::looks_like_code(code) {
            let Some(v) = totp::verify(&secret, code, now, user.totp_last_step) else {
                return Ok(None);
            };
            updated.totp_last_step = v.step;
        } else if !recovery::consume(&mut updated.recovery_hashes, code) {
            return Ok(None);
        }
        updated.failed_signins = 0;
        if ctx.backend.update_user(updated.clone()).await? {
            updated.version += 1;
            return Ok(Some(updated));
        }
        user = ctx.backend.user(&user.id).await?.ok_or(PageError::SignIn)?;
    }
    Err(PageError::Unavailable)
}

async fn code_submit(
    State(ctx): State<Ctx>,
    ip: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let ip = client_ip(ip);
    let s = session_at(&ctx, &headers, ip.clone(), Stage::Password).await?;
    let form = form_or_csrf(form)?;
    s.check_csrf(form.csrf.as_deref())?;
    let code = form.code.filter(|c| !c.expose().trim().is_empty());
    let Some(code) = code else {
        let errors = [("code", "Enter the 6-digit code from your authenticator app, or a recovery code.".to_owned())];
        let page = pages::code_form("Two-step verification", "/sign-in/code", &s.csrf, false, &errors);
        return Ok(html_response(StatusCode::UNPROCESSABLE_ENTITY, page));
    };
    if !ctx.backend.allow_attempt(AttemptBucket::Account, &s.user.email).await? {
        return Err(PageError::RateLimited);
    }
    let Some(mut user) = use_second_factor(&ctx, s.user.clone(), code.expose()).await? else {
        record_failure(&ctx, s.user.clone(), &ip).await?;
        let errors = [("code", "That code is not valid (or was already used). Try the next one.".to_owned())];
        let page = pages::code_form("Two-step verification", "/sign-in/code", &s.csrf, false, &errors);
        return Ok(html_response(StatusCode::UNPROCESSABLE_ENTITY, page));
    };
    // A new id for the full session: an id seen before sign-in completed is never promoted.
    ctx.backend.delete_session(&s.session.hash).await?;
    let (_, cookie) = start_session(&ctx, &user, Stage::Full, &ip).await?;
    let device = note_sign_in(&ctx, &mut user, &ip, &headers).await?;
    Ok(with_cookie(with_cookie(see_other("/keys"), cookie), device))
}

/// Records a completed sign-in: audit, and an alert when the address or the device is new
/// for this user (never for the first one recorded). Returns the device cookie to set: the
/// browser's own id when it has one (its lifetime renewed), else a new one.
async fn note_sign_in(
    ctx: &Ctx,
    user: &mut UserRecord,
    ip: &str,
    headers: &HeaderMap,
) -> Result<Option<HeaderValue>, PageError> {
    let actor = actor_of(user, ip);
    let device = match read_cookie(headers, DEVICE_COOKIE).and_then(OpaqueId::parse) {
        Some(id) => id,
        None => OpaqueId::generate()?,
    };
    let seen = ctx.backend.note_device(&user.id, &device.device_hash(&user.id), ctx.backend.now()).await?;
    let known = user.known_ips.iter().any(|k| k == ip);
    let first = user.known_ips.is_empty();
    let detail = json!({ "new_address": !known, "new_device": seen.new });
    ctx.backend.audit(&actor, "devspace.sign_in", "success", None, detail).await?;
    if seen.new && !seen.first {
        let message = format!("{} signed in from a new device (a browser not used before), from {ip}.", actor.email);
        raise(ctx, &actor, "signin.new_device", message).await?;
    }
    if !known {
        user.known_ips.push(ip.to_owned());
        if user.known_ips.len() > KNOWN_IPS {
            user.known_ips.remove(0);
        }
        let _ = ctx.backend.update_user(user.clone()).await?;
        if !first {
            raise(ctx, &actor, "signin.new_ip", format!("{} signed in from a new address, {ip}.", actor.email)).await?;
        }
    }
    Ok(set_cookie(DEVICE_COOKIE, device.expose(), DEVICE_SECONDS))
}

async fn welcome_page(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let token = OpaqueId::parse(&token).ok_or(PageError::BadLink)?;
    let link = ctx.backend.link(&token.hash(), ctx.backend.now()).await?.ok_or(PageError::BadLink)?;
    let user = ctx.backend.user(&link.user_id).await?.ok_or(PageError::BadLink)?;
    let (pre, cookie) = pre_session(&headers)?;
    let page = pages::set_password(&pre.csrf_token(), token.expose(), &user.email, &[]);
    Ok(with_cookie(html_response(StatusCode::OK, page), cookie))
}

#[derive(Deserialize)]
struct WelcomeForm {
    csrf: Option<String>,
    token: Option<Secret>,
    password: Option<Secret>,
    confirm: Option<Secret>,
}

async fn welcome_submit(
    State(ctx): State<Ctx>,
    ip: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
    form: Result<Form<WelcomeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = form_or_csrf(form)?;
    check_pre_csrf(&headers, form.csrf.as_deref())?;
    let ip = client_ip(ip);
    let token = form.token.as_ref().and_then(|t| OpaqueId::parse(t.expose())).ok_or(PageError::BadLink)?;
    let now = ctx.backend.now();
    let link = ctx.backend.link(&token.hash(), now).await?.ok_or(PageError::BadLink)?;
    let user = ctx.backend.user(&link.user_id).await?.ok_or(PageError::BadLink)?;
    let empty = Secret::new(String::new());
    let (password, confirm) = (form.password.as_ref().unwrap_or(&empty), form.confirm.as_ref().unwrap_or(&empty));
    if let Err(e) = password::check_new(password, confirm, &user.email) {
        let name = if e == password::PasswordError::Mismatch { "confirm" } else { "password" };
        let csrf = form.csrf.as_deref().unwrap_or_default();
        let page = pages::set_password(csrf, token.expose(), &user.email, &[(name, e.to_string())]);
        return Ok(html_response(StatusCode::UNPROCESSABLE_ENTITY, page));
    }
    // The link is spent only now that the password is acceptable, and by one request only.
    ctx.backend.take_link(&token.hash(), now).await?.ok_or(PageError::BadLink)?;
    let mut updated = user.clone();
    updated.password_hash =
        Some(password::hash(password, ctx.settings.password_params).map_err(|_| PageError::Internal)?);
    let secret = TotpSecret::generate()?;
    updated.totp_sealed = Some(ctx.backend.seal_totp(&user.id, &secret)?);
    updated.totp_enrolled = false;
    updated.recovery_hashes.clear();
    if !ctx.backend.update_user(updated.clone()).await? {
        return Err(PageError::Unavailable);
    }
    // Any session the account had (a previous owner of the link) ends.
    ctx.backend.delete_user_sessions(&user.id).await?;
    ctx.backend.audit(&actor_of(&user, &ip), "devspace.password_set", "success", None, json!({})).await?;
    let (_, cookie) = start_session(&ctx, &updated, Stage::Enrol, &ip).await?;
    Ok(with_cookie(see_other("/enrol"), cookie))
}

async fn enrol_page(
    State(ctx): State<Ctx>,
    ip: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let s = session_at(&ctx, &headers, client_ip(ip), Stage::Enrol).await?;
    Ok(html_response(StatusCode::OK, enrol_markup(&ctx, &s, &[])?))
}

fn enrol_markup(ctx: &Ctx, s: &SignedIn, errors: &[(&str, String)]) -> Result<Markup, PageError> {
    let sealed = s.user.totp_sealed.as_ref().ok_or(PageError::Internal)?;
    let secret = ctx.backend.open_totp(&s.user.id, sealed)?;
    Ok(pages::enrol(&s.csrf, &secret.base32(), &secret.uri(&ctx.settings.issuer, &s.user.email), errors))
}

async fn enrol_submit(
    State(ctx): State<Ctx>,
    ip: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let ip = client_ip(ip);
    let s = session_at(&ctx, &headers, ip.clone(), Stage::Enrol).await?;
    let form = form_or_csrf(form)?;
    s.check_csrf(form.csrf.as_deref())?;
    let code = form.code.map(|c| c.expose().to_owned()).unwrap_or_default();
    if !totp::looks_like_code(&code) {
        let errors = [("code", "Enter the 6-digit code your authenticator app shows.".to_owned())];
        return Ok(html_response(StatusCode::UNPROCESSABLE_ENTITY, enrol_markup(&ctx, &s, &errors)?));
    }
    if !ctx.backend.allow_attempt(AttemptBucket::Account, &s.user.email).await? {
        return Err(PageError::RateLimited);
    }
    let (codes, hashes) = recovery::generate()?;
    let mut user = s.user.clone();
    user.recovery_hashes = hashes;
    let Some(mut user) = use_second_factor(&ctx, user, &code).await? else {
        let errors = [("code", "That code is not valid. Check the app's clock and try the next code.".to_owned())];
        return Ok(html_response(StatusCode::UNPROCESSABLE_ENTITY, enrol_markup(&ctx, &s, &errors)?));
    };
    user.totp_enrolled = true;
    if !ctx.backend.update_user(user.clone()).await? {
        return Err(PageError::Unavailable);
    }
    user.version += 1;
    ctx.backend.delete_session(&s.session.hash).await?;
    let (id, cookie) = start_session(&ctx, &user, Stage::Full, &ip).await?;
    ctx.backend.audit(&actor_of(&user, &ip), "devspace.totp_enrolled", "success", None, json!({})).await?;
    let device = note_sign_in(&ctx, &mut user, &ip, &headers).await?;
    let csrf = id.csrf_token();
    let viewer = Viewer { email: &user.email, role: user.role, csrf: &csrf };
    let shown: Vec<&str> = codes.iter().map(Secret::expose).collect();
    Ok(with_cookie(with_cookie(html_response(StatusCode::OK, pages::recovery_codes(viewer, &shown)), cookie), device))
}

async fn reauth_page(s: SignedIn) -> Result<Response, PageError> {
    Ok(reauth_response(&s, StatusCode::OK, &[]))
}

fn reauth_response(s: &SignedIn, status: StatusCode, errors: &[(&str, String)]) -> Response {
    html_response(status, pages::code_form("Confirm it is you", "/reauth", &s.csrf, true, errors))
}

async fn reauth_submit(
    State(ctx): State<Ctx>,
    s: SignedIn,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (s, form) = checked(s, form, None)?;
    let ip = s.actor.ip.clone();
    if !ctx.backend.allow_attempt(AttemptBucket::Account, &s.user.email).await? {
        return Err(PageError::RateLimited);
    }
    let password_ok = form.password.as_ref().is_some_and(|p| {
        s.user.password_hash.as_deref().is_some_and(|h| !p.expose().is_empty() && password::verify(p, h))
    });
    let code = form.code.map(|c| c.expose().to_owned()).unwrap_or_default();
    let user = if password_ok { use_second_factor(&ctx, s.user.clone(), &code).await? } else { None };
    if user.is_none() {
        record_failure(&ctx, s.user.clone(), &ip).await?;
        let errors = [("password", "The password or code is incorrect.".to_owned())];
        return Ok(reauth_response(&s, StatusCode::UNPROCESSABLE_ENTITY, &errors));
    }
    let mut session = s.session.clone();
    session.reauth_at = Some(ctx.backend.now());
    ctx.backend.update_session(session).await?;
    ctx.backend.audit(&s.actor, "devspace.reauthenticated", "success", None, json!({})).await?;
    Ok(see_other("/keys"))
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: Option<String>,
}

async fn sign_out(
    State(ctx): State<Ctx>,
    s: SignedIn,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Response, PageError> {
    let (s, _) = checked(s, form, None)?;
    ctx.backend.delete_session(&s.session.hash).await?;
    ctx.backend.audit(&s.actor, "devspace.sign_out", "success", None, json!({})).await?;
    Ok(with_cookie(see_other("/sign-in"), clear_cookie(SESSION_COOKIE)))
}

async fn sign_out_everywhere(
    State(ctx): State<Ctx>,
    s: SignedIn,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Response, PageError> {
    let (s, _) = checked(s, form, None)?;
    let n = ctx.backend.delete_user_sessions(&s.user.id).await?;
    ctx.backend.audit(&s.actor, "devspace.sign_out_everywhere", "success", None, json!({ "sessions": n })).await?;
    Ok(with_cookie(see_other("/sign-in"), clear_cookie(SESSION_COOKIE)))
}

async fn keys_response(
    ctx: &Ctx,
    s: &SignedIn,
    status: StatusCode,
    extras: &KeysExtras<'_>,
) -> Result<Response, PageError> {
    s.require(Action::ViewKeys)?;
    let list = ctx.backend.list_keys(&s.user.merchant_id).await?;
    let page = pages::keys(s.viewer(), &list, ctx.backend.now(), ctx.settings.unused_days, extras);
    Ok(html_response(status, page))
}

async fn keys_page(State(ctx): State<Ctx>, s: SignedIn) -> Result<Response, PageError> {
    keys_response(&ctx, &s, StatusCode::OK, &KeysExtras::default()).await
}

#[derive(Deserialize)]
struct CreateKeyForm {
    csrf: Option<String>,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    mode: String,
    role: Option<String>,
    #[serde(default)]
    label: String,
    #[serde(default)]
    origins: String,
    #[serde(default)]
    ip_allowlist: String,
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

async fn create_key(
    State(ctx): State<Ctx>,
    s: SignedIn,
    form: Result<Form<CreateKeyForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (s, form) = checked(s, form, None)?;
    let mut errors: Vec<(&str, String)> = Vec::new();
    match form.mode.as_str() {
        "test" => s.require(Action::CreateTestKey)?,
        "live" => s.require(Action::CreateLiveKey)?,
        _ => errors.push(("mode", "Choose test or live.".to_owned())),
    }
    // An admin API key manages keys: only people who may manage keys create one (a developer
    // creating one would get, through the API, what their role does not allow here).
    if form.kind == "secret" && form.role.as_deref() == Some("admin") {
        s.require(Action::ManageKeys)?;
    }
    if !matches!(form.kind.as_str(), "secret" | "publishable") {
        errors.push(("kind", "Choose secret or publishable.".to_owned()));
    }
    if form.label.trim().is_empty() {
        errors.push(("label", "Give the key a label, e.g. the server that will use it.".to_owned()));
    }
    if !errors.is_empty() {
        let extras = KeysExtras { errors: &errors, ..KeysExtras::default() };
        return keys_response(&ctx, &s, StatusCode::UNPROCESSABLE_ENTITY, &extras).await;
    }
    if !s.session.recently_reauthenticated(ctx.backend.now()) {
        return Ok(reauth_response(&s, StatusCode::OK, &[]));
    }
    let request = NewKeyRequest {
        role: (form.kind == "secret").then(|| form.role.clone().unwrap_or_default()),
        kind: form.kind,
        mode: form.mode,
        label: form.label,
        origins: lines(&form.origins),
        ip_allowlist: lines(&form.ip_allowlist),
    };
    match ctx.backend.create_key(&s.actor, request).await {
        Ok((key, secret)) => {
            let extras = KeysExtras { created: Some((&key, secret.expose())), ..KeysExtras::default() };
            keys_response(&ctx, &s, StatusCode::OK, &extras).await
        }
        Err(BackendError::Invalid(message)) => {
            let errors = [("label", message)];
            let extras = KeysExtras { errors: &errors, ..KeysExtras::default() };
            keys_response(&ctx, &s, StatusCode::UNPROCESSABLE_ENTITY, &extras).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn own_key(ctx: &Ctx, s: &SignedIn, id: &str) -> Result<KeyView, PageError> {
    let list = ctx.backend.list_keys(&s.user.merchant_id).await?;
    list.into_iter().find(|k| k.id == id).ok_or(PageError::NotFound)
}

async fn revoke_key(
    State(ctx): State<Ctx>,
    s: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Response, PageError> {
    let (s, _) = checked(s, form, Some(Action::ManageKeys))?;
    let key = own_key(&ctx, &s, &id).await?;
    ctx.backend.revoke_key(&s.actor, &key.id).await?;
    let notice = format!("Key {} revoked.", key.prefix);
    keys_response(&ctx, &s, StatusCode::OK, &KeysExtras { notice: Some(&notice), ..KeysExtras::default() }).await
}

#[derive(Deserialize)]
struct RotateForm {
    csrf: Option<String>,
    #[serde(default)]
    overlap: String,
}

/// The overlaps the rotate form offers, in seconds.
pub const ROTATE_OVERLAPS: [i64; 4] = [0, 3600, 86_400, 7 * 86_400];

async fn rotate_key(
    State(ctx): State<Ctx>,
    s: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<RotateForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (s, form) = checked(s, form, Some(Action::ManageKeys))?;
    let key = own_key(&ctx, &s, &id).await?;
    let Some(overlap) = form.overlap.parse::<i64>().ok().filter(|o| ROTATE_OVERLAPS.contains(o)) else {
        let errors =
            [("overlap", "Choose how long the old key keeps working: now, 1 hour, 1 day or 7 days.".to_owned())];
        let extras = KeysExtras { errors: &errors, ..KeysExtras::default() };
        return keys_response(&ctx, &s, StatusCode::UNPROCESSABLE_ENTITY, &extras).await;
    };
    // The new secret is shown: only right after a re-authentication.
    if !s.session.recently_reauthenticated(ctx.backend.now()) {
        return Ok(reauth_response(&s, StatusCode::OK, &[]));
    }
    match ctx.backend.rotate_key(&s.actor, &key.id, overlap).await {
        Ok((new, secret)) => {
            let notice = format!("{} replaced; the old key keeps working for {overlap} seconds.", key.prefix);
            let extras =
                KeysExtras { created: Some((&new, secret.expose())), notice: Some(&notice), ..KeysExtras::default() };
            keys_response(&ctx, &s, StatusCode::OK, &extras).await
        }
        Err(BackendError::Invalid(message)) => {
            let errors = [("overlap", message)];
            let extras = KeysExtras { errors: &errors, ..KeysExtras::default() };
            keys_response(&ctx, &s, StatusCode::UNPROCESSABLE_ENTITY, &extras).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct AllowlistForm {
    csrf: Option<String>,
    #[serde(default)]
    entries: String,
}

async fn set_allowlist(
    State(ctx): State<Ctx>,
    s: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<AllowlistForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (s, form) = checked(s, form, Some(Action::EditAllowlist))?;
    let key = own_key(&ctx, &s, &id).await?;
    let fresh = s.session.recently_reauthenticated(ctx.backend.now());
    match ctx.backend.set_ip_allowlist(&s.actor, &key.id, lines(&form.entries), fresh).await {
        Ok(widened) => {
            if widened {
                let msg = format!("{} widened the IP allowlist of {} from {}.", s.actor.email, key.prefix, s.actor.ip);
                raise(&ctx, &s.actor, "allowlist.widened", msg).await?;
            }
            let notice = format!("IP allowlist of {} saved.", key.prefix);
            keys_response(&ctx, &s, StatusCode::OK, &KeysExtras { notice: Some(&notice), ..KeysExtras::default() })
                .await
        }
        Err(BackendError::NeedsReauth) => Ok(reauth_response(&s, StatusCode::OK, &[])),
        Err(BackendError::Invalid(message)) => {
            let errors = [("entries", message)];
            let extras = KeysExtras { errors: &errors, ..KeysExtras::default() };
            keys_response(&ctx, &s, StatusCode::UNPROCESSABLE_ENTITY, &extras).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
struct AuditParams {
    #[serde(default)]
    event: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    ip: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

/// Parses `YYYY-MM-DD` into the Unix time of that day's start (UTC).
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = pages::days_from_civil(y, m, d);
    (pages::civil_from_days(days) == (y, m, d)).then_some(days * 86_400)
}

fn short_filter(
    value: &str,
    what: &str,
    errors: &mut Vec<(&'static str, String)>,
    name: &'static str,
) -> Option<String> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.chars().count() > 100 || v.chars().any(char::is_control) {
        errors.push((name, format!("{what} is at most 100 characters, without control characters.")));
        return None;
    }
    Some(v.to_owned())
}

fn audit_query(p: &AuditParams, limit: u32) -> (AuditQuery, Vec<(&'static str, String)>) {
    let mut errors = Vec::new();
    let mut q = AuditQuery {
        event: short_filter(&p.event, "An event type", &mut errors, "event"),
        key_id: short_filter(&p.key, "A key id", &mut errors, "key"),
        actor: short_filter(&p.actor, "A person's email", &mut errors, "actor").map(|a| a.to_lowercase()),
        limit,
        ..AuditQuery::default()
    };
    if let Some(ip) = short_filter(&p.ip, "An address", &mut errors, "ip") {
        match ip.parse::<IpAddr>() {
            Ok(a) => q.ip = Some(a.to_string()),
            Err(_) => errors.push(("ip", "Enter one IP address, like 203.0.113.7 or 2001:db8::1.".to_owned())),
        }
    }
    for (name, text, slot, extra) in [("since", &p.since, &mut q.since, 0), ("until", &p.until, &mut q.until, 86_400)] {
        if text.trim().is_empty() {
            continue;
        }
        match parse_date(text) {
            Some(t) => *slot = Some(t + extra),
            None => errors.push((name, "Enter a date as YYYY-MM-DD.".to_owned())),
        }
    }
    (q, errors)
}

fn query_string(p: &AuditParams) -> String {
    let pairs = [
        ("event", &p.event),
        ("key", &p.key),
        ("ip", &p.ip),
        ("actor", &p.actor),
        ("since", &p.since),
        ("until", &p.until),
    ];
    let mut out = String::new();
    for (k, v) in pairs {
        if v.trim().is_empty() {
            continue;
        }
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        for b in v.trim().bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':' | b'@') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// Audit rows per page and per export.
pub const AUDIT_PAGE_ROWS: u32 = 200;
/// Rows in one CSV export.
pub const AUDIT_EXPORT_ROWS: u32 = 10_000;

/// Form errors: (field name, message).
type FieldErrors = Vec<(&'static str, String)>;

type AuditParamsQuery = Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>;

/// A signed-in audit-log request: the role checked, the raw filters, the parsed query with at
/// most `limit` rows, and the filters' errors.
fn audit_request(
    s: &SignedIn,
    params: AuditParamsQuery,
    limit: u32,
) -> Result<(AuditParams, AuditQuery, FieldErrors), PageError> {
    s.require(Action::ViewAudit)?;
    let p = params.map(|Query(p)| p).unwrap_or_default();
    let (q, errors) = audit_query(&p, limit);
    Ok((p, q, errors))
}

async fn audit_page(State(ctx): State<Ctx>, s: SignedIn, params: AuditParamsQuery) -> Result<Response, PageError> {
    let (p, q, errors) = audit_request(&s, params, AUDIT_PAGE_ROWS)?;
    let rows = if errors.is_empty() { ctx.backend.audit_log(&s.user.merchant_id, q).await? } else { Vec::new() };
    let filters = [
        ("event", "Event type", p.event.clone()),
        ("key", "Key id", p.key.clone()),
        ("ip", "Address", p.ip.clone()),
        ("actor", "Person (email)", p.actor.clone()),
        ("since", "From (YYYY-MM-DD)", p.since.clone()),
        ("until", "Until (YYYY-MM-DD, inclusive)", p.until.clone()),
    ];
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(html_response(status, pages::audit(s.viewer(), &filters, &query_string(&p), &rows, &errors)))
}

/// One CSV cell: quoted, quotes doubled, and a leading `= + - @` defused so a spreadsheet
/// never evaluates it as a formula.
pub fn csv_cell(value: &str) -> String {
    let defused =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() };
    format!("\"{}\"", defused.replace('"', "\"\""))
}

async fn audit_csv(State(ctx): State<Ctx>, s: SignedIn, params: AuditParamsQuery) -> Result<Response, PageError> {
    let (_, q, errors) = audit_request(&s, params, AUDIT_EXPORT_ROWS)?;
    if !errors.is_empty() {
        return Ok(html_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::message(
                "Invalid filter",
                "Fix the filters on the audit log page, then export again.",
                Some(("/audit", "Audit log")),
            ),
        ));
    }
    let rows = ctx.backend.audit_log(&s.user.merchant_id, q).await?;
    let mut out = String::from("id,time,event,outcome,mode,actor,key_id,ip,detail\r\n");
    for r in &rows {
        let cells = [
            r.id.to_string(),
            pages::fmt_time(r.ts),
            r.event.clone(),
            r.outcome.clone(),
            r.mode.clone().unwrap_or_default(),
            r.actor.clone().unwrap_or_default(),
            r.key_id.clone().unwrap_or_default(),
            r.ip.clone().unwrap_or_default(),
            r.detail.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    ctx.backend.audit(&s.actor, "devspace.audit_exported", "success", None, json!({ "rows": rows.len() })).await?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"audit-log.csv\""),
        ],
        out,
    )
        .into_response())
}

async fn alerts_page(State(ctx): State<Ctx>, s: SignedIn) -> Result<Response, PageError> {
    s.require(Action::ViewAlerts)?;
    let list = ctx.backend.alerts(&s.user.merchant_id, 200).await?;
    Ok(html_response(StatusCode::OK, pages::alerts(s.viewer(), &list)))
}

#[derive(Deserialize, Default)]
struct ModeParam {
    #[serde(default)]
    mode: String,
}

async fn payments_page(State(ctx): State<Ctx>, s: SignedIn, params: ModeQuery) -> Result<Response, PageError> {
    s.require(Action::ViewPayments)?;
    let mode = mode_of(params);
    let (list, refunds) = ctx.backend.payments(&s.user.merchant_id, mode, AUDIT_PAGE_ROWS).await?;
    Ok(html_response(StatusCode::OK, pages::payments(s.viewer(), mode, &list, &refunds)))
}

type ModeQuery = Result<Query<ModeParam>, axum::extract::rejection::QueryRejection>;

fn mode_of(params: ModeQuery) -> &'static str {
    if params.is_ok_and(|Query(p)| p.mode == "live") { "live" } else { "test" }
}

async fn events_page(State(ctx): State<Ctx>, s: SignedIn, params: ModeQuery) -> Result<Response, PageError> {
    s.require(Action::ViewWebhooks)?;
    let mode = mode_of(params);
    let list = ctx.backend.events(&s.user.merchant_id, mode, 50).await?;
    Ok(html_response(StatusCode::OK, pages::events(s.viewer(), mode, &list, None)))
}

async fn resend_event(
    State(ctx): State<Ctx>,
    s: SignedIn,
    Path(id): Path<String>,
    params: ModeQuery,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Response, PageError> {
    let (s, _) = checked(s, form, Some(Action::ManageWebhooks))?;
    let mode = mode_of(params);
    let valid = id.strip_prefix("evt_").is_some_and(|r| r.len() == 24 && r.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !valid {
        return Err(PageError::NotFound);
    }
    let n = ctx.backend.resend_event(&s.actor, mode, &id).await?;
    let notice = format!("{id}: {n} new delivery(ies) scheduled.");
    let list = ctx.backend.events(&s.user.merchant_id, mode, 50).await?;
    Ok(html_response(StatusCode::OK, pages::events(s.viewer(), mode, &list, Some(&notice))))
}

async fn webhooks_response(
    ctx: &Ctx,
    s: &SignedIn,
    status: StatusCode,
    extras: &pages::WebhooksExtras<'_>,
) -> Result<Response, PageError> {
    s.require(Action::ViewWebhooks)?;
    let list = ctx.backend.webhook_endpoints(&s.user.merchant_id).await?;
    Ok(html_response(status, pages::webhooks(s.viewer(), &list, extras)))
}

/// The page with `errors` for the form (422).
async fn webhooks_errors(ctx: &Ctx, s: &SignedIn, errors: &[(&str, String)]) -> Result<Response, PageError> {
    let extras = pages::WebhooksExtras { errors, ..pages::WebhooksExtras::default() };
    webhooks_response(ctx, s, StatusCode::UNPROCESSABLE_ENTITY, &extras).await
}

async fn webhooks_page(State(ctx): State<Ctx>, s: SignedIn) -> Result<Response, PageError> {
    webhooks_response(&ctx, &s, StatusCode::OK, &pages::WebhooksExtras::default()).await
}

#[derive(Deserialize)]
struct WebhookForm {
    csrf: Option<String>,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    events: String,
}

async fn create_webhook(
    State(ctx): State<Ctx>,
    s: SignedIn,
    form: Result<Form<WebhookForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (s, form) = checked(s, form, Some(Action::ManageWebhooks))?;
    let events: Vec<String> =
        form.events.split([',', ' ', '\n']).map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect();
    let mut errors: Vec<(&str, String)> = Vec::new();
    if form.url.trim().is_empty() {
        errors.push(("url", "Enter the https:// URL that receives the events.".to_owned()));
    }
    if events.is_empty() {
        errors.push(("events", "Name at least one event type, or * for all.".to_owned()));
    }
    if !errors.is_empty() {
        return webhooks_errors(&ctx, &s, &errors).await;
    }
    // The signing secret is shown: only right after a re-authentication.
    if !s.session.recently_reauthenticated(ctx.backend.now()) {
        return Ok(reauth_response(&s, StatusCode::OK, &[]));
    }
    match ctx.backend.create_webhook_endpoint(&s.actor, &form.mode, form.url.trim(), events).await {
        Ok((endpoint, secret)) => {
            let heading = format!("New endpoint {}", endpoint.url);
            let extras =
                pages::WebhooksExtras { secret: Some((heading.as_str(), secret.expose())), ..Default::default() };
            webhooks_response(&ctx, &s, StatusCode::OK, &extras).await
        }
        Err(BackendError::Invalid(message)) => webhooks_errors(&ctx, &s, &[("url", message)]).await,
        Err(e) => Err(e.into()),
    }
}

/// Whether `id` has the shape of a webhook endpoint id (anything else is no endpoint).
fn endpoint_id_ok(id: &str) -> bool {
    id.strip_prefix("we_").is_some_and(|r| r.len() == 24 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

async fn rotate_webhook(
    State(ctx): State<Ctx>,
    s: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<RotateForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (s, form) = checked(s, form, Some(Action::ManageWebhooks))?;
    if !endpoint_id_ok(&id) {
        return Err(PageError::NotFound);
    }
    let Some(overlap) = form.overlap.parse::<i64>().ok().filter(|o| ROTATE_OVERLAPS.contains(o)) else {
        let errors = [(
            "overlap",
            "Choose how long the old secret keeps signing: stops now, 1 hour, 1 day or 7 days.".to_owned(),
        )];
        return webhooks_errors(&ctx, &s, &errors).await;
    };
    // The new secret is shown: only right after a re-authentication.
    if !s.session.recently_reauthenticated(ctx.backend.now()) {
        return Ok(reauth_response(&s, StatusCode::OK, &[]));
    }
    match ctx.backend.rotate_webhook_secret(&s.actor, &id, overlap).await {
        Ok((endpoint, secret)) => {
            let heading = format!("New signing secret of {}", endpoint.url);
            let notice = format!("Secret of {} rotated; the old one keeps signing for {overlap} seconds.", endpoint.id);
            let extras = pages::WebhooksExtras {
                secret: Some((heading.as_str(), secret.expose())),
                notice: Some(&notice),
                ..Default::default()
            };
            webhooks_response(&ctx, &s, StatusCode::OK, &extras).await
        }
        Err(BackendError::Invalid(message)) => webhooks_errors(&ctx, &s, &[("overlap", message)]).await,
        Err(e) => Err(e.into()),
    }
}

async fn delete_webhook(
    State(ctx): State<Ctx>,
    s: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Response, PageError> {
    let (s, _) = checked(s, form, Some(Action::ManageWebhooks))?;
    if !endpoint_id_ok(&id) {
        return Err(PageError::NotFound);
    }
    ctx.backend.delete_webhook_endpoint(&s.actor, &id).await?;
    let notice = format!("Endpoint {id} deleted; it receives no more events.");
    webhooks_response(&ctx, &s, StatusCode::OK, &pages::WebhooksExtras { notice: Some(&notice), ..Default::default() })
        .await
}

/// Tokens per page.
pub const TOKEN_PAGE_ROWS: u32 = 50;

#[derive(Deserialize, Default)]
struct TokensParams {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    before: String,
}

async fn tokens_page(
    State(ctx): State<Ctx>,
    s: SignedIn,
    params: Result<Query<TokensParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    s.require(Action::ViewTokens)?;
    let p = params.map(|Query(p)| p).unwrap_or_default();
    let mode = if p.mode == "live" { "live" } else { "test" };
    let before = match p.before.as_str() {
        "" => None,
        b if b.strip_prefix("tok_").is_some_and(|r| r.len() == 24 && r.bytes().all(|c| c.is_ascii_alphanumeric())) => {
            Some(b)
        }
        _ => return Err(PageError::NotFound),
    };
    let mut list = ctx.backend.tokens(&s.user.merchant_id, mode, before, TOKEN_PAGE_ROWS + 1).await?;
    let more = list.len() > TOKEN_PAGE_ROWS as usize;
    list.truncate(TOKEN_PAGE_ROWS as usize);
    let older = list.last().filter(|_| more).map(|t| format!("/tokens?mode={mode}&before={}", t.id));
    Ok(html_response(StatusCode::OK, pages::tokens(s.viewer(), mode, &list, ctx.backend.now(), older.as_deref())))
}

async fn users_response(
    ctx: &Ctx,
    s: &SignedIn,
    status: StatusCode,
    extras: &pages::UsersExtras<'_>,
) -> Result<Response, PageError> {
    s.require(Action::ViewUsers)?;
    let list = ctx.backend.users(&s.user.merchant_id).await?;
    Ok(html_response(status, pages::users(s.viewer(), &list, extras)))
}

async fn users_page(State(ctx): State<Ctx>, s: SignedIn) -> Result<Response, PageError> {
    users_response(&ctx, &s, StatusCode::OK, &pages::UsersExtras::default()).await
}

#[derive(Deserialize)]
struct RoleForm {
    csrf: Option<String>,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// The role `s` may hand out: any but owner, which only an owner gives.
fn assignable(s: &SignedIn, role: &str) -> Result<Role, PageError> {
    let role = Role::parse(role).ok_or(PageError::Forbidden)?;
    if role == Role::Owner && s.user.role != Role::Owner { Err(PageError::Forbidden) } else { Ok(role) }
}

/// This origin as the browser reached it, for links shown to the person inviting.
fn own_origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')))
        .unwrap_or("localhost");
    format!("https://{host}")
}

async fn invite_user(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    s: SignedIn,
    form: Result<Form<RoleForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (s, form) = checked(s, form, Some(Action::ManageUsers))?;
    let role = assignable(&s, &form.role)?;
    let email = match parse_email(&form.email) {
        Ok(e) => e,
        Err(m) => {
            let errors = [("email", m.to_owned())];
            let extras = pages::UsersExtras { errors: &errors, ..pages::UsersExtras::default() };
            return users_response(&ctx, &s, StatusCode::UNPROCESSABLE_ENTITY, &extras).await;
        }
    };
    let (user, link, token) = new_user(&s.user.merchant_id, &email, role, ctx.backend.now())?;
    match ctx.backend.insert_user(user.clone(), Some(link)).await {
        Ok(()) => {}
        Err(BackendError::Conflict) => {
            let errors = [("email", "Someone with this email address already has access.".to_owned())];
            let extras = pages::UsersExtras { errors: &errors, ..pages::UsersExtras::default() };
            return users_response(&ctx, &s, StatusCode::UNPROCESSABLE_ENTITY, &extras).await;
        }
        Err(e) => return Err(e.into()),
    }
    let detail = json!({ "user_id": user.id, "email": email, "role": role.as_str() });
    ctx.backend.audit(&s.actor, "devspace.user_invited", "success", None, detail).await?;
    let link = format!("{}/welcome/{}", own_origin(&headers), token.expose());
    let extras = pages::UsersExtras { invited: Some((&email, &link)), ..pages::UsersExtras::default() };
    users_response(&ctx, &s, StatusCode::OK, &extras).await
}

async fn change_role(
    State(ctx): State<Ctx>,
    s: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<RoleForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (s, form) = checked(s, form, Some(Action::ManageUsers))?;
    let role = assignable(&s, &form.role)?;
    let mut target = manageable_user(&ctx, &s, &id).await?;
    if target.role == Role::Owner && role != Role::Owner && !has_other_owner(&ctx, &s, &target).await? {
        let errors = [("role", "The account needs at least one owner: make someone else owner first.".to_owned())];
        let extras = pages::UsersExtras { errors: &errors, ..pages::UsersExtras::default() };
        return users_response(&ctx, &s, StatusCode::UNPROCESSABLE_ENTITY, &extras).await;
    }
    let previous = target.role;
    target.role = role;
    if !ctx.backend.update_user(target.clone()).await? {
        return Err(PageError::Unavailable);
    }
    // A changed role takes effect at once: the person signs in again under it.
    ctx.backend.delete_user_sessions(&target.id).await?;
    let detail = json!({ "user_id": target.id, "email": target.email, "role": role.as_str(), "previous_role": previous.as_str() });
    ctx.backend.audit(&s.actor, "devspace.role_changed", "success", None, detail).await?;
    if target.id == s.user.id {
        return Ok(with_cookie(see_other("/sign-in"), clear_cookie(SESSION_COOKIE)));
    }
    let notice = format!("{} is now {}.", target.email, role.as_str());
    users_response(
        &ctx,
        &s,
        StatusCode::OK,
        &pages::UsersExtras { notice: Some(&notice), ..pages::UsersExtras::default() },
    )
    .await
}

/// A user of the signed-in person's merchant whom they may manage (owners only by owners).
async fn manageable_user(ctx: &Ctx, s: &SignedIn, id: &str) -> Result<UserRecord, PageError> {
    let target =
        ctx.backend.user(id).await?.filter(|u| u.merchant_id == s.user.merchant_id).ok_or(PageError::NotFound)?;
    if target.role == Role::Owner && s.user.role != Role::Owner {
        return Err(PageError::Forbidden);
    }
    Ok(target)
}

/// Whether the merchant has an owner besides `target`.
async fn has_other_owner(ctx: &Ctx, s: &SignedIn, target: &UserRecord) -> Result<bool, PageError> {
    let list = ctx.backend.users(&s.user.merchant_id).await?;
    Ok(list.iter().any(|u| u.role == Role::Owner && u.id != target.id))
}

async fn remove_user(
    State(ctx): State<Ctx>,
    s: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Response, PageError> {
    let (s, _) = checked(s, form, Some(Action::ManageUsers))?;
    let target = manageable_user(&ctx, &s, &id).await?;
    let refusal = if target.id == s.user.id {
        Some("You cannot remove yourself: ask another owner or admin.")
    } else if target.role == Role::Owner && !has_other_owner(&ctx, &s, &target).await? {
        Some("The account needs at least one owner.")
    } else {
        None
    };
    if let Some(message) = refusal {
        let errors = [("remove", message.to_owned())];
        let extras = pages::UsersExtras { errors: &errors, ..pages::UsersExtras::default() };
        return users_response(&ctx, &s, StatusCode::UNPROCESSABLE_ENTITY, &extras).await;
    }
    ctx.backend.delete_user(&target.id).await?;
    let detail = json!({ "user_id": target.id, "email": target.email, "role": target.role.as_str() });
    ctx.backend.audit(&s.actor, "devspace.user_removed", "success", None, detail).await?;
    let notice = format!("{} no longer has access; their sessions ended.", target.email);
    users_response(
        &ctx,
        &s,
        StatusCode::OK,
        &pages::UsersExtras { notice: Some(&notice), ..pages::UsersExtras::default() },
    )
    .await
}

/// The stylesheet.
pub const CSS: &str = include_str!("../assets/devspace.css");
/// The only script: copy buttons.
pub const JS: &str = include_str!("../assets/devspace.js");

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=300")], CSS).into_response()
}

async fn js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=300")], JS)
        .into_response()
}

/// The tab icon (a browser asks for one; a 404 would be a console error on every page).
pub const FAVICON: &str = include_str!("../assets/favicon.svg");

async fn favicon() -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "max-age=86400")], FAVICON).into_response()
}

async fn not_found() -> PageError {
    PageError::NotFound
}

/// A new user and the one-time link that lets them set a password: what `vault users create`
/// and invitations store. The token is returned for the link and never stored.
///
/// # Errors
/// [`crate::secret::RandomError`] if the system generator fails.
pub fn new_user(
    merchant_id: &str,
    email: &str,
    role: Role,
    now: i64,
) -> Result<(UserRecord, LinkRecord, OpaqueId), crate::secret::RandomError> {
    let mut raw = [0u8; 12];
    random_fill(&mut raw)?;
    let user = UserRecord {
        id: format!("usr_{}", crate::secret::hex(&raw)),
        merchant_id: merchant_id.to_owned(),
        email: email.to_owned(),
        role,
        password_hash: None,
        totp_sealed: None,
        totp_enrolled: false,
        totp_last_step: 0,
        recovery_hashes: Vec::new(),
        known_ips: Vec::new(),
        failed_signins: 0,
        created: now,
        version: 0,
    };
    let token = OpaqueId::generate()?;
    let link = LinkRecord {
        hash: token.hash(),
        user_id: user.id.clone(),
        purpose: LinkPurpose::SetPassword,
        created: now,
        expires_at: now + LINK_SECONDS,
    };
    Ok((user, link, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(parse_email(" Alice@Example.COM "), Ok("alice@example.com".to_owned()));
        for bad in ["", "alice", "alice@", "@example.com", "a b@example.com", "a@b@example.com", "a@example."] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_and_csv() {
        assert_eq!(parse_date("2023-11-14"), Some(1_699_920_000));
        assert_eq!(parse_date("2023-02-30"), None);
        assert_eq!(parse_date("2023-1-14"), None);
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("plain"), "\"plain\"");
    }
}
