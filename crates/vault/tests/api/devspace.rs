//! Dev Space through its router (`oneshot`, no socket), on the suite's engine: sign-in with
//! password + TOTP, sessions and cookies, CSRF, roles (including crafted requests past the
//! UI), API keys, re-authentication, the audit log and alerts.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use devspace::Role;
use devspace::totp::{self, TotpSecret};
use serde_json::Value;
use tower::ServiceExt;

use crate::helpers::{TestApp, spawn_app};
use vault::api::ClientAddr;
use vault::store::ListFilter;

const PASSWORD: &str = "a long and unusual passphrase";

/// A browser: its cookies and address.
struct Browser {
    router: Router,
    cookies: HashMap<String, String>,
    ip: SocketAddr,
}

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The CSRF token of the first form on the page.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).unwrap_or_else(|| panic!("no csrf field in {}", self.body)) + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

impl Browser {
    fn new(app: &TestApp, ip: &str) -> Self {
        Self {
            router: vault::devspace::router(app.state().clone(), devspace::Settings::default()),
            cookies: HashMap::new(),
            ip: format!("{ip}:50000").parse().unwrap(),
        }
    }

    async fn send(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut req = Request::builder().method(method).uri(path).header(header::COOKIE, cookie.join("; "));
        let body = match form {
            Some(fields) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish()
            }
            None => String::new(),
        };
        let mut req = req.body(Body::from(body)).unwrap();
        req.extensions_mut().insert(ClientAddr(self.ip));
        let res = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        for c in parts.headers.get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, _) = c.split_once(';').unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        Page { status: parts.status, headers: parts.headers, body: String::from_utf8(bytes.to_vec()).unwrap() }
    }

    /// Another browser of the same person on the same device (its device cookie copied), at
    /// address `ip`.
    fn same_device(&self, app: &TestApp, ip: &str) -> Self {
        let mut b = Self::new(app, ip);
        if let Some(d) = self.cookies.get("__Host-ds_device") {
            b.cookies.insert("__Host-ds_device".into(), d.clone());
        }
        b
    }

    /// Signs `email` in with password and a fresh TOTP code; the code step's answer.
    async fn sign_in(&mut self, app: &TestApp, email: &str) -> Page {
        let page = self.get("/sign-in").await;
        let r = self.post("/sign-in", &[("csrf", &page.csrf()), ("email", email), ("password", PASSWORD)]).await;
        assert_eq!(r.location(), "/sign-in/code", "{}", r.body);
        app.clock.advance(30);
        let code = current_code(app, email).await;
        let page = self.get("/sign-in/code").await;
        let r = self.post("/sign-in/code", &[("csrf", &page.csrf()), ("code", &code)]).await;
        assert_eq!(r.location(), "/keys", "{}", r.body);
        r
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send("POST", path, Some(form)).await
    }
}

/// The user's TOTP secret, read the way the vault reads it.
async fn totp_secret(app: &TestApp, email: &str) -> TotpSecret {
    let user = app.store.devspace_user(email, true).await.unwrap().unwrap();
    let plain =
        app.master.open_durable(user.totp_sealed.as_ref().unwrap(), &format!("devspace:totp:{}", user.id)).unwrap();
    TotpSecret::from_bytes(plain.expose().to_vec())
}

async fn current_code(app: &TestApp, email: &str) -> String {
    totp::code(&totp_secret(app, email).await, totp::step_at(app.state().now()))
}

/// Creates a user the way `vault users create` does and returns the set-password path.
async fn create_user(app: &TestApp, email: &str, role: Role) -> String {
    let merchant = vault::bootstrap::find_merchant(app.store.as_ref(), &app.merchant_id).await.unwrap();
    let (_, token) =
        vault::bootstrap::create_devspace_user(app.store.as_ref(), &merchant, email, role, app.state().now())
            .await
            .unwrap();
    format!("/welcome/{}", token.expose())
}

/// Creates a user and takes them through the link, the password and TOTP enrolment.
async fn enrolled(app: &TestApp, email: &str, role: Role, ip: &str) -> Browser {
    let link = create_user(app, email, role).await;
    let mut b = Browser::new(app, ip);
    let page = b.get(&link).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let token = link.trim_start_matches("/welcome/").to_owned();
    let csrf = page.csrf();
    let page =
        b.post("/welcome", &[("csrf", &csrf), ("token", &token), ("password", PASSWORD), ("confirm", PASSWORD)]).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/enrol"), "{}", page.body);
    let page = b.get("/enrol").await;
    assert_eq!(page.status, StatusCode::OK);
    let code = current_code(app, email).await;
    let page = b.post("/enrol", &[("csrf", &page.csrf()), ("code", &code)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Save your recovery codes"));
    b
}

#[tokio::test]
async fn first_owner_sets_password_enrols_totp_and_signs_in_again() {
    let app = spawn_app().await;
    let link = create_user(&app, "Owner@Shop.example", Role::Owner).await;
    let token = link.trim_start_matches("/welcome/").to_owned();
    let mut b = Browser::new(&app, "203.0.113.10");

    // The link shows the form; a weak password is refused with a precise message and the link
    // still works.
    let page = b.get(&link).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("owner@shop.example"));
    let csrf = page.csrf();
    let weak =
        b.post("/welcome", &[("csrf", &csrf), ("token", &token), ("password", "short"), ("confirm", "short")]).await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body.contains("Use at least 12 characters."), "{}", weak.body);
    let ok =
        b.post("/welcome", &[("csrf", &csrf), ("token", &token), ("password", PASSWORD), ("confirm", PASSWORD)]).await;
    assert_eq!((ok.status, ok.location()), (StatusCode::SEE_OTHER, "/enrol"));
    // The link works once.
    assert_eq!(b.get(&link).await.status, StatusCode::GONE);

    // Enrolment: a wrong code is refused, the right one shows ten recovery codes once.
    let page = b.get("/enrol").await;
    let wrong = b.post("/enrol", &[("csrf", &page.csrf()), ("code", "000000")]).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    let code = current_code(&app, "owner@shop.example").await;
    let done = b.post("/enrol", &[("csrf", &page.csrf()), ("code", &code)]).await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(done.body.matches("<li><code>").count(), 10, "{}", done.body);
    assert_eq!(b.get("/keys").await.status, StatusCode::OK);

    // Sign out, then sign in with password + TOTP. The code used at enrolment is refused
    // (replay); the next step's code is accepted.
    let keys = b.get("/keys").await;
    let out = b.post("/sign-out", &[("csrf", &keys.csrf())]).await;
    assert_eq!((out.status, out.location()), (StatusCode::SEE_OTHER, "/sign-in"));
    assert_eq!(b.get("/keys").await.location(), "/sign-in");
    let page = b.get("/sign-in").await;
    let bad = b
        .post("/sign-in", &[("csrf", &page.csrf()), ("email", "owner@shop.example"), ("password", "wrong password!!")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("The email address or password is incorrect."));
    let unknown =
        b.post("/sign-in", &[("csrf", &page.csrf()), ("email", "nobody@shop.example"), ("password", PASSWORD)]).await;
    assert!(unknown.body.contains("The email address or password is incorrect."));
    let empty = b.post("/sign-in", &[("csrf", &page.csrf()), ("email", "not-an-email"), ("password", "")]).await;
    assert!(empty.body.contains("Enter an email address like name@example.com."), "{}", empty.body);
    assert!(empty.body.contains("Enter your password."));
    let step =
        b.post("/sign-in", &[("csrf", &page.csrf()), ("email", "OWNER@shop.example"), ("password", PASSWORD)]).await;
    assert_eq!((step.status, step.location()), (StatusCode::SEE_OTHER, "/sign-in/code"));
    // Half signed in: nothing but the code page.
    assert_eq!(b.get("/keys").await.location(), "/sign-in");
    let page = b.get("/sign-in/code").await;
    let replay = b.post("/sign-in/code", &[("csrf", &page.csrf()), ("code", &code)]).await;
    assert_eq!(replay.status, StatusCode::UNPROCESSABLE_ENTITY, "a used code must not work again");
    app.clock.advance(30);
    let code = current_code(&app, "owner@shop.example").await;
    let signed = b.post("/sign-in/code", &[("csrf", &page.csrf()), ("code", &code)]).await;
    assert_eq!((signed.status, signed.location()), (StatusCode::SEE_OTHER, "/keys"));
    let keys = b.get("/keys").await;
    assert_eq!(keys.status, StatusCode::OK);
    assert!(keys.body.contains("owner@shop.example"));

    // Only hashes are stored: no session id, link token or password in the database.
    let session = b.cookies["__Host-ds_session"].clone();
    if !crate::helpers::on_postgres() {
        for secret in [session.as_str(), token.as_str(), PASSWORD] {
            assert_eq!(app.count(&format!("SELECT count(*) FROM devspace_sessions WHERE hash = '{secret}'")), 0);
            assert!(!app.count_text_in_tokens(secret));
        }
        let stored: i64 = app
            .count("SELECT count(*) FROM devspace_users WHERE password_hash LIKE '$argon2id$v=19$m=19456,t=2,p=1$%'");
        assert_eq!(stored, 1);
    }
}

#[tokio::test]
async fn session_cookie_flags_security_headers_and_timeouts() {
    let app = spawn_app().await;
    let link = create_user(&app, "flags@shop.example", Role::Viewer).await;
    let mut b = Browser::new(&app, "203.0.113.11");
    let page = b.get(&link).await;
    let pre = page.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().to_owned();
    assert!(pre.starts_with("__Host-ds_pre="));
    let token = link.trim_start_matches("/welcome/");
    let set = b
        .post("/welcome", &[("csrf", &page.csrf()), ("token", token), ("password", PASSWORD), ("confirm", PASSWORD)])
        .await;
    let cookie = set.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-ds_session="), "{cookie}");
    for flag in ["; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
        assert!(pre.contains(flag), "{pre} lacks {flag}");
    }
    for page in [b.get("/enrol").await, b.get("/sign-in").await, b.get("/nowhere").await] {
        let h = |n: header::HeaderName| page.headers.get(n).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let csp = h(header::CONTENT_SECURITY_POLICY);
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
        assert!(h(header::STRICT_TRANSPORT_SECURITY).starts_with("max-age="));
        assert_eq!(h(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(h(header::CACHE_CONTROL), "no-store");
        assert!(!page.body.contains("<script>") && !page.body.contains("style="), "no inline script or style");
    }
    // A pending (enrolment) session ends after 10 minutes.
    app.clock.advance(devspace::session::PENDING_SECONDS);
    assert_eq!(b.get("/enrol").await.location(), "/sign-in");

    // A full session ends after 30 idle minutes.
    let mut b = enrolled(&app, "idle@shop.example", Role::Viewer, "203.0.113.12").await;
    app.clock.advance(devspace::session::IDLE_SECONDS - 1);
    assert_eq!(b.get("/keys").await.status, StatusCode::OK);
    app.clock.advance(devspace::session::IDLE_SECONDS);
    assert_eq!(b.get("/keys").await.location(), "/sign-in");
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session_of_the_user() {
    let app = spawn_app().await;
    let mut first = enrolled(&app, "two@shop.example", Role::Admin, "203.0.113.20").await;
    let mut second = Browser::new(&app, "203.0.113.20");
    let page = second.get("/sign-in").await;
    second.post("/sign-in", &[("csrf", &page.csrf()), ("email", "two@shop.example"), ("password", PASSWORD)]).await;
    app.clock.advance(30);
    let code = current_code(&app, "two@shop.example").await;
    let page = second.get("/sign-in/code").await;
    second.post("/sign-in/code", &[("csrf", &page.csrf()), ("code", &code)]).await;
    assert_eq!(second.get("/keys").await.status, StatusCode::OK);
    let keys = first.get("/keys").await;
    let out = first.post("/sign-out-everywhere", &[("csrf", &keys.csrf())]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(second.get("/keys").await.location(), "/sign-in");
    assert_eq!(first.get("/keys").await.location(), "/sign-in");
}

#[tokio::test]
async fn csrf_less_and_cross_session_posts_are_refused() {
    let app = spawn_app().await;
    let mut owner = enrolled(&app, "csrf@shop.example", Role::Owner, "203.0.113.30").await;
    let mut other = enrolled(&app, "other@shop.example", Role::Owner, "203.0.113.31").await;
    let key_id = app.sk_id.clone();
    let path = format!("/keys/{key_id}/revoke");
    assert_eq!(owner.post(&path, &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(owner.post(&path, &[("csrf", "forged")]).await.status, StatusCode::FORBIDDEN);
    // Another session's token does not work in this one.
    let other_csrf = other.get("/keys").await.csrf();
    assert_eq!(owner.post(&path, &[("csrf", &other_csrf)]).await.status, StatusCode::FORBIDDEN);
    // A sign-in form posted without the pre-session cookie's token is refused too.
    let mut fresh = Browser::new(&app, "203.0.113.32");
    let r = fresh.post("/sign-in", &[("email", "csrf@shop.example"), ("password", PASSWORD)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let keys = app.store.list_api_keys().await.unwrap();
    assert!(keys.iter().find(|k| k.id == key_id).unwrap().revoked_at.is_none());
}

/// What each role may do, tried with crafted POSTs (valid session and CSRF token) whatever the
/// page showed.
#[tokio::test]
async fn each_role_can_do_exactly_its_own() {
    let app = spawn_app().await;
    // (role, create test key, create live key, revoke, edit allowlist)
    let table = [
        (Role::Owner, true, true, true, true),
        (Role::Admin, true, true, true, true),
        (Role::Developer, true, false, false, false),
        (Role::Viewer, false, false, false, false),
    ];
    for (i, (role, test_key, live_key, revoke, allowlist)) in table.into_iter().enumerate() {
        let email = format!("{}@shop.example", role.as_str());
        let mut b = enrolled(&app, &email, role, &format!("203.0.113.{}", 40 + i)).await;
        let page = b.get("/keys").await;
        assert_eq!(page.status, StatusCode::OK, "{role:?} reads keys");
        assert_eq!(page.body.contains("Create a key"), test_key, "{role:?} create form shown");
        let csrf = page.csrf();
        let create = |mode: &'static str| {
            [
                ("mode", mode),
                ("kind", "secret"),
                ("role", "read_only"),
                ("label", "crafted"),
                ("origins", ""),
                ("ip_allowlist", ""),
            ]
        };
        let mut form: Vec<(&str, &str)> = create("test").to_vec();
        form.push(("csrf", &csrf));
        let r = b.post("/keys", &form).await;
        assert_eq!(
            r.status == StatusCode::OK && r.body.contains("sk_test_"),
            test_key,
            "{role:?} test key: {}",
            r.status
        );
        let mut form: Vec<(&str, &str)> = create("live").to_vec();
        form.push(("csrf", &csrf));
        let r = b.post("/keys", &form).await;
        assert_eq!(
            r.status == StatusCode::OK && r.body.contains("sk_live_"),
            live_key,
            "{role:?} live key: {}",
            r.status
        );
        if !live_key {
            assert_eq!(r.status, StatusCode::FORBIDDEN);
        }
        // An admin API key (it manages keys) only for those who manage keys.
        let mut form: Vec<(&str, &str)> = create("test").to_vec();
        form.retain(|(k, _)| *k != "role");
        form.extend([("role", "admin"), ("csrf", csrf.as_str())]);
        let r = b.post("/keys", &form).await;
        assert_eq!(
            r.status == StatusCode::OK && r.body.contains("sk_test_"),
            revoke,
            "{role:?} admin key: {}",
            r.status
        );
        // The read-only key of the suite's merchant: allowlist then revoke.
        let ro = app.key_id_with_role("read_only").await;
        let r = b.post(&format!("/keys/{ro}/allowlist"), &[("csrf", &csrf), ("entries", "198.51.100.0/24")]).await;
        assert_eq!(r.status == StatusCode::OK, allowlist, "{role:?} allowlist: {}", r.status);
        if !allowlist {
            assert_eq!(r.status, StatusCode::FORBIDDEN);
        }
        let victim = create_throwaway_key(&app).await;
        let r = b.post(&format!("/keys/{victim}/revoke"), &[("csrf", &csrf)]).await;
        assert_eq!(r.status == StatusCode::OK, revoke, "{role:?} revoke: {}", r.status);
        let revoked = app.store.list_api_keys().await.unwrap().into_iter().find(|k| k.id == victim).unwrap().revoked_at;
        assert_eq!(revoked.is_some(), revoke, "{role:?}");
        // Every role reads the audit log, alerts and tokens' metadata.
        assert_eq!(b.get("/audit").await.status, StatusCode::OK);
        assert_eq!(b.get("/alerts").await.status, StatusCode::OK);
        assert_eq!(b.get("/tokens").await.status, StatusCode::OK);
        // Webhook endpoints are rotated and deleted by those who manage them (a well-formed id
        // of no endpoint: past the role check it is a 404, before it a 403).
        let nobody = format!("/webhooks/we_{}", "x".repeat(24));
        let r = b.post(&format!("{nobody}/delete"), &[("csrf", &csrf)]).await;
        assert_eq!(r.status, if revoke { StatusCode::NOT_FOUND } else { StatusCode::FORBIDDEN }, "{role:?} delete");
        let r = b.post(&format!("{nobody}/rotate"), &[("csrf", &csrf), ("overlap", "0")]).await;
        assert_eq!(r.status, if revoke { StatusCode::NOT_FOUND } else { StatusCode::FORBIDDEN }, "{role:?} rotate");
    }
}

async fn create_throwaway_key(app: &TestApp) -> String {
    let r = app
        .post(
            "/v1/keys",
            &app.admin,
            Some(serde_json::json!({ "kind": "secret", "role": "read_only", "label": "victim" })),
        )
        .await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn new_key_secret_is_shown_once_after_reauthentication_and_never_again() {
    let app = spawn_app().await;
    let mut b = enrolled(&app, "keys@shop.example", Role::Admin, "203.0.113.50").await;
    // Past the re-authentication window, creating a key asks for password + code first.
    app.clock.advance(devspace::session::REAUTH_SECONDS + 1);
    let csrf = b.get("/keys").await.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("mode", "test"),
        ("kind", "publishable"),
        ("label", "checkout"),
        ("origins", "https://shop.example"),
        ("ip_allowlist", ""),
    ];
    let asked = b.post("/keys", &form).await;
    assert!(asked.body.contains("Confirm it is you"), "{}", asked.body);
    assert!(!asked.body.contains("pk_test_"));
    let code = current_code(&app, "keys@shop.example").await;
    let re = b.post("/reauth", &[("csrf", &csrf), ("password", PASSWORD), ("code", &code)]).await;
    assert_eq!((re.status, re.location()), (StatusCode::SEE_OTHER, "/keys"), "{}", re.body);
    let created = b.post("/keys", &form).await;
    assert_eq!(created.status, StatusCode::OK);
    let start = created.body.find("id=\"new-secret\">").unwrap() + "id=\"new-secret\">".len();
    let secret = created.body[start..].split('<').next().unwrap().to_owned();
    assert!(secret.starts_with("pk_test_") && secret.len() > 20, "{secret}");
    // The list never shows it again.
    let list = b.get("/keys").await;
    assert!(!list.body.contains(&secret));
    assert!(list.body.contains("checkout"));
    // Invalid fields get precise messages.
    let bad = [
        ("csrf", csrf.as_str()),
        ("mode", "live"),
        ("kind", "publishable"),
        ("label", "x"),
        ("origins", "http://shop.example"),
        ("ip_allowlist", ""),
    ];
    let r = b.post("/keys", &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Live keys accept only https:// origins"), "{}", r.body);
    let detok = [
        ("csrf", csrf.as_str()),
        ("mode", "test"),
        ("kind", "secret"),
        ("role", "tokenization"),
        ("label", "x"),
        ("origins", ""),
        ("ip_allowlist", ""),
    ];
    let r = b.post("/keys", &detok).await;
    assert!(r.body.contains("only with the vault command line"), "{}", r.body);
    // Audited with who and from where.
    let events = app.audit_events("key.created").await;
    let mine = events.iter().find(|e| e["detail"]["actor"] == "keys@shop.example").unwrap();
    assert_eq!(mine["ip"], "203.0.113.50");
}

#[tokio::test]
async fn widening_an_allowlist_needs_reauthentication_raises_an_alert_and_is_audited() {
    let app = spawn_app().await;
    let mut b = enrolled(&app, "ips@shop.example", Role::Owner, "203.0.113.60").await;
    let ro = app.key_id_with_role("read_only").await;
    let path = format!("/keys/{ro}/allowlist");
    let csrf = b.get("/keys").await.csrf();
    // Fresh sign-in covers it; narrowing later never asks again.
    assert_eq!(b.post(&path, &[("csrf", &csrf), ("entries", "198.51.100.7")]).await.status, StatusCode::OK);
    app.clock.advance(devspace::session::REAUTH_SECONDS + 1);
    let too_wide = b.post(&path, &[("csrf", &csrf), ("entries", "10.0.0.0/8")]).await;
    assert_eq!(too_wide.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(too_wide.body.contains("may not be wider than /24"), "{}", too_wide.body);
    let garbage = b.post(&path, &[("csrf", &csrf), ("entries", "not an address")]).await;
    assert!(garbage.body.contains("is not an IP address or CIDR block"));
    let widen = b.post(&path, &[("csrf", &csrf), ("entries", "198.51.100.7\n203.0.113.0/24")]).await;
    assert!(widen.body.contains("Confirm it is you"), "widening asks for re-authentication");
    let stored = app.store.list_api_keys().await.unwrap().into_iter().find(|k| k.id == ro).unwrap();
    assert_eq!(stored.ip_allowlist.len(), 1, "nothing changed before re-authentication");
    let code = current_code(&app, "ips@shop.example").await;
    b.post("/reauth", &[("csrf", &csrf), ("password", PASSWORD), ("code", &code)]).await;
    assert_eq!(
        b.post(&path, &[("csrf", &csrf), ("entries", "198.51.100.7\n203.0.113.0/24")]).await.status,
        StatusCode::OK
    );
    let narrow = b.post(&path, &[("csrf", &csrf), ("entries", "198.51.100.7")]).await;
    assert_eq!(narrow.status, StatusCode::OK);
    let alerts = b.get("/alerts").await;
    assert!(alerts.body.contains("allowlist.widened"), "{}", alerts.body);
    let updates = app.audit_events("key.updated").await;
    let widened: Vec<_> = updates.iter().filter(|e| e["detail"]["widened"] == true).collect();
    assert_eq!(widened.len(), 2, "{updates:?}");
    assert!(widened.iter().all(|e| e["detail"]["actor"] == "ips@shop.example" && e["ip"] == "203.0.113.60"));
}

#[tokio::test]
async fn sign_in_from_a_new_address_raises_an_alert_and_a_security_alert_event() {
    let app = spawn_app().await;
    let first = enrolled(&app, "travel@shop.example", Role::Developer, "203.0.113.70").await;
    // The same laptop on another network: a new address, not a new device.
    let mut elsewhere = first.same_device(&app, "198.51.100.99");
    let page = elsewhere.get("/sign-in").await;
    elsewhere
        .post("/sign-in", &[("csrf", &page.csrf()), ("email", "travel@shop.example"), ("password", PASSWORD)])
        .await;
    app.clock.advance(30);
    let code = current_code(&app, "travel@shop.example").await;
    let page = elsewhere.get("/sign-in/code").await;
    let r = elsewhere.post("/sign-in/code", &[("csrf", &page.csrf()), ("code", &code)]).await;
    assert_eq!(r.location(), "/keys");
    let alerts = elsewhere.get("/alerts").await;
    assert!(alerts.body.contains("signin.new_ip"), "{}", alerts.body);
    assert!(alerts.body.contains("198.51.100.99"));
    for mode in [vault::keys::Mode::Test, vault::keys::Mode::Live] {
        let events = security_alert_events(&app, mode).await;
        assert_eq!(events.len(), 1, "{mode:?}");
        let body: Value = serde_json::from_str(&events[0].body).unwrap();
        assert_eq!(body["data"]["object"]["kind"], "signin.new_ip");
    }
}

#[tokio::test]
async fn repeated_failed_sign_ins_raise_an_alert_and_are_rate_limited() {
    let app = spawn_app().await;
    let _ = enrolled(&app, "target@shop.example", Role::Viewer, "203.0.113.80").await;
    let mut attacker = Browser::new(&app, "192.0.2.1");
    let page = attacker.get("/sign-in").await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = attacker
            .post(
                "/sign-in",
                &[("csrf", &page.csrf()), ("email", "target@shop.example"), ("password", "guess guess guess")],
            )
            .await;
        statuses.push(r.status);
    }
    assert!(statuses[..10].iter().all(|s| *s == StatusCode::UNPROCESSABLE_ENTITY), "{statuses:?}");
    assert_eq!(statuses[10], StatusCode::TOO_MANY_REQUESTS, "the account's bucket (10) is spent");
    let alerts = app.store.devspace_alerts(&app.merchant_id, 10).await.unwrap();
    assert_eq!(alerts.iter().filter(|a| a.kind == "signin.failures").count(), 2, "at 5 and 10 failures");
}

#[tokio::test]
async fn audit_log_filters_and_csv_export() {
    let app = spawn_app().await;
    let mut b = enrolled(&app, "auditor@shop.example", Role::Viewer, "203.0.113.90").await;
    let page = b.get("/audit?actor=auditor%40shop.example").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("devspace.totp_enrolled"), "{}", page.body);
    assert!(!page.body.contains("key.created"), "the filter keeps only this person's events");
    let by_event = b.get("/audit?event=devspace.password_set").await;
    assert!(by_event.body.contains("devspace.password_set") && !by_event.body.contains("devspace.totp_enrolled"));
    let bad = b.get("/audit?ip=nope&since=2026-13-01").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("Enter one IP address") && bad.body.contains("Enter a date as YYYY-MM-DD."));
    let csv = b.get("/audit.csv?actor=auditor%40shop.example&since=2026-11-20&until=2026-11-20").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers.get(header::CONTENT_TYPE).unwrap(), "text/csv; charset=utf-8");
    let mut lines = csv.body.lines();
    assert_eq!(lines.next(), Some("id,time,event,outcome,mode,actor,key_id,ip,detail"));
    let rows: Vec<&str> = lines.collect();
    assert!(rows.len() >= 3, "{}", csv.body);
    assert!(rows.iter().all(|r| r.contains("\"auditor@shop.example\"")));
    let none = b.get("/audit.csv?since=2026-11-21").await;
    assert_eq!(none.body.lines().count(), 1, "nothing after the day");
}

#[tokio::test]
async fn invitations_by_link_and_role_changes_follow_the_roles() {
    let app = spawn_app().await;
    let mut owner = enrolled(&app, "boss@shop.example", Role::Owner, "203.0.113.100").await;
    let mut admin = enrolled(&app, "ops@shop.example", Role::Admin, "203.0.113.101").await;
    let mut dev = enrolled(&app, "dev@shop.example", Role::Developer, "203.0.113.102").await;

    // A developer sees the people page but cannot invite or change roles, even by crafted POSTs.
    let page = dev.get("/users").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("Invite someone"));
    let csrf = page.csrf();
    assert_eq!(
        dev.post("/users", &[("csrf", &csrf), ("email", "x@shop.example"), ("role", "viewer")]).await.status,
        StatusCode::FORBIDDEN
    );
    let dev_id = app.store.devspace_user("dev@shop.example", true).await.unwrap().unwrap().id;
    let r = dev.post(&format!("/users/{dev_id}/role"), &[("csrf", &csrf), ("role", "admin")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no self-promotion");

    // An admin invites a viewer; the link is shown once and works in another browser.
    let csrf = admin.get("/users").await.csrf();
    let bad = admin.post("/users", &[("csrf", &csrf), ("email", "nope"), ("role", "viewer")]).await;
    assert!(bad.body.contains("Enter an email address like name@example.com."));
    let r = admin.post("/users", &[("csrf", &csrf), ("email", "new@shop.example"), ("role", "owner")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only an owner makes owners");
    let r = admin.post("/users", &[("csrf", &csrf), ("email", "New@shop.example"), ("role", "viewer")]).await;
    assert_eq!(r.status, StatusCode::OK);
    let start = r.body.find("id=\"new-secret\">").unwrap() + "id=\"new-secret\">".len();
    let link = r.body[start..].split('<').next().unwrap().to_owned();
    let path = link.split_once("/welcome/").map(|(_, t)| format!("/welcome/{t}")).unwrap();
    assert!(!admin.get("/users").await.body.contains(&path), "the link is shown once");
    let dup = admin.post("/users", &[("csrf", &csrf), ("email", "new@shop.example"), ("role", "viewer")]).await;
    assert!(dup.body.contains("already has access"));
    let mut invited = Browser::new(&app, "203.0.113.103");
    assert_eq!(invited.get(&path).await.status, StatusCode::OK);
    assert_eq!(app.audit_events("devspace.user_invited").await.len(), 1);

    // Roles: an admin cannot touch the owner; the owner cannot demote the last owner; a role
    // change ends the person's sessions.
    let boss_id = app.store.devspace_user("boss@shop.example", true).await.unwrap().unwrap().id;
    let r = admin.post(&format!("/users/{boss_id}/role"), &[("csrf", &csrf), ("role", "viewer")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let ocsrf = owner.get("/users").await.csrf();
    let r = owner.post(&format!("/users/{boss_id}/role"), &[("csrf", &ocsrf), ("role", "admin")]).await;
    assert!(r.body.contains("at least one owner"), "{}", r.body);
    let r = owner.post(&format!("/users/{dev_id}/role"), &[("csrf", &ocsrf), ("role", "viewer")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("dev@shop.example is now viewer."));
    assert_eq!(dev.get("/keys").await.location(), "/sign-in", "the demoted person signs in again");
    let changed = app.audit_events("devspace.role_changed").await;
    assert_eq!(changed[0]["detail"]["previous_role"], "developer");

    // Removing access: not oneself, not the last owner, owners only by owners; the removed
    // person's sessions end and the email can be invited again.
    let ops_id = app.store.devspace_user("ops@shop.example", true).await.unwrap().unwrap().id;
    let r = admin.post(&format!("/users/{boss_id}/remove"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = owner.post(&format!("/users/{boss_id}/remove"), &[("csrf", &ocsrf)]).await;
    assert!(r.body.contains("You cannot remove yourself"), "{}", r.body);
    let r = owner.post(&format!("/users/{ops_id}/remove"), &[("csrf", &ocsrf)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("ops@shop.example no longer has access"), "{}", r.body);
    assert_eq!(admin.get("/keys").await.location(), "/sign-in");
    assert!(app.store.devspace_user("ops@shop.example", true).await.unwrap().is_none());
    assert_eq!(app.audit_events("devspace.user_removed").await.len(), 1);
}

#[tokio::test]
async fn a_key_used_from_a_non_allowlisted_address_raises_one_alert_per_hour() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/v1/keys",
            &app.admin,
            Some(serde_json::json!({ "kind": "secret", "role": "read_only", "label": "office", "ip_allowlist": ["198.51.100.0/24"] })),
        )
        .await;
    let key = r.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(app.get("/v1/audit_events", &key).await.status(), 403);
    }
    let alerts = || async {
        let all = app.store.devspace_alerts(&app.merchant_id, 50).await.unwrap();
        all.into_iter().filter(|a| a.kind == "key.non_allowlisted_ip").collect::<Vec<_>>()
    };
    for _ in 0..100 {
        if !alerts().await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let found = alerts().await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].message.contains("127.0.0.1"), "{}", found[0].message);
    app.clock.advance(3600);
    assert_eq!(app.get("/v1/audit_events", &key).await.status(), 403);
    for _ in 0..100 {
        if alerts().await.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(alerts().await.len(), 2, "a new hour, a new alert");
}

#[tokio::test]
async fn keys_unused_for_30_days_raise_one_alert_each_and_are_flagged_with_one_click_disable() {
    let app = spawn_app().await;
    app.clock.advance(20 * 86_400);
    // The admin key is used on day 20; the others never.
    assert_eq!(app.get("/v1/keys", &app.admin).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    app.clock.advance(11 * 86_400);
    let unused = || async {
        let all = app.store.devspace_alerts(&app.merchant_id, 50).await.unwrap();
        all.into_iter()
            .filter(|a| a.kind == "key.unused")
            .map(|a| a.detail["key_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    // `vault init` made five keys: publishable, tokenization, admin, read-only and payments.
    for _ in 0..100 {
        if unused().await.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let flagged = unused().await;
    let admin_id = app
        .store
        .list_api_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.role == Some(vault::keys::Role::Admin))
        .unwrap()
        .id;
    assert_eq!(flagged.len(), 4, "{flagged:?}");
    assert!(!flagged.contains(&admin_id));
    // Running the check again raises nothing new.
    app.clock.advance(2 * 3600);
    assert_eq!(vault::devspace::unused_key_alerts(app.state(), 30).await.unwrap(), 0);
    // The keys page flags them and disables one with one click.
    let mut b = enrolled(&app, "tidy@shop.example", Role::Admin, "203.0.113.110").await;
    let page = b.get("/keys").await;
    assert_eq!(page.body.matches("Disable unused key").count(), 4, "{}", page.body);
    let r = b.post(&format!("/keys/{}/revoke", flagged[0]), &[("csrf", &page.csrf())]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.matches("Disable unused key").count(), 3);
}

#[tokio::test]
async fn payments_show_masked_cards_only_and_webhook_endpoints_no_secrets() {
    let app = spawn_app().await;
    let key = crate::payments::payments_key(&app).await;
    let token = crate::payments::token_for(&app, crate::helpers::VISA.0).await;
    let body = serde_json::json!({ "amount": 1999, "currency": "usd", "token": token, "description": "Order 42" });
    let r = crate::payments::pay(&app, &key, "order-42", &body).await;
    assert!(r.status().is_success(), "{}", r.status());
    let endpoint =
        crate::webhooks::create_endpoint(&app, "https://hooks.example.com/h", serde_json::json!(["security.alert"]))
            .await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();

    let mut b = enrolled(&app, "finance@shop.example", Role::Viewer, "203.0.113.120").await;
    let page = b.get("/payments").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("19.99 USD"), "{}", page.body);
    assert!(page.body.contains("visa •••• 4242"), "{}", page.body);
    let pan = crate::helpers::VISA.0;
    for leak in [pan, &pan[..6], &pan[pan.len() - 8..]] {
        assert!(!page.body.contains(leak), "card data {leak} on the payments page");
    }
    let live = b.get("/payments?mode=live").await;
    assert!(live.body.contains("No payments in live mode yet."));
    let hooks = b.get("/webhooks").await;
    assert_eq!(hooks.status, StatusCode::OK);
    assert!(hooks.body.contains("https://hooks.example.com/h") && hooks.body.contains("security.alert"));
    assert!(!hooks.body.contains(&secret) && !hooks.body.contains("whsec_"), "no webhook secret shown");
}

#[tokio::test]
async fn rotating_a_key_shows_the_new_secret_once_and_keeps_the_old_one_for_the_overlap() {
    let app = spawn_app().await;
    let mut b = enrolled(&app, "rotor@shop.example", Role::Admin, "203.0.113.130").await;
    let ro = app.key_id_with_role("read_only").await;
    let csrf = b.get("/keys").await.csrf();
    let bad = b.post(&format!("/keys/{ro}/rotate"), &[("csrf", &csrf), ("overlap", "99")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("Choose how long the old key keeps working"));
    let r = b.post(&format!("/keys/{ro}/rotate"), &[("csrf", &csrf), ("overlap", "3600")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let start = r.body.find("id=\"new-secret\">").unwrap() + "id=\"new-secret\">".len();
    let secret = r.body[start..].split('<').next().unwrap().to_owned();
    assert!(secret.starts_with("sk_test_"), "{secret}");
    // The new key works, the old one until the overlap ends.
    assert_eq!(app.get("/v1/audit_events", &secret).await.status(), 200);
    assert_eq!(app.get("/v1/audit_events", &app.ro).await.status(), 200);
    let old = app.store.list_api_keys().await.unwrap().into_iter().find(|k| k.id == ro).unwrap();
    assert_eq!(old.expires_at, Some(app.state().now() + 3600));
    assert!(!b.get("/keys").await.body.contains(&secret));
    // Detokenize-capable keys are rotated on the CLI only; a viewer cannot rotate at all.
    let r = b.post(&format!("/keys/{}/rotate", app.sk_id), &[("csrf", &csrf), ("overlap", "0")]).await;
    assert!(r.body.contains("only with the vault command line"), "{}", r.body);
    let mut viewer = enrolled(&app, "look@shop.example", Role::Viewer, "203.0.113.131").await;
    let vcsrf = viewer.get("/keys").await.csrf();
    let r = viewer.post(&format!("/keys/{ro}/rotate"), &[("csrf", &vcsrf), ("overlap", "0")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let rotated = app.audit_events("key.rotated").await;
    assert_eq!(rotated[0]["detail"]["actor"], "rotor@shop.example");
}

#[tokio::test]
async fn a_burst_of_failures_with_a_revoked_key_alerts_its_merchant() {
    let app = spawn_app().await;
    let ro = app.key_id_with_role("read_only").await;
    assert_eq!(app.post(&format!("/v1/keys/{ro}/revoke"), &app.admin, None).await.status(), 200);
    for _ in 0..5 {
        assert_eq!(app.get("/v1/audit_events", &app.ro).await.status(), 401);
    }
    let mut found = Vec::new();
    for _ in 0..100 {
        found = app.store.devspace_alerts(&app.merchant_id, 10).await.unwrap();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, "auth.failure_burst");
    assert_eq!(found[0].detail["key_id"], ro.as_str());
}

#[tokio::test]
async fn webhook_endpoints_are_added_with_the_secret_shown_once() {
    let app = spawn_app().await;
    let mut admin = enrolled(&app, "hooks@shop.example", Role::Admin, "203.0.113.140").await;
    let csrf = admin.get("/webhooks").await.csrf();
    let r = add_endpoint(&mut admin, &csrf, ("http://hooks.example.com/h", "security.alert")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("https"), "{}", r.body);
    let r = add_endpoint(&mut admin, &csrf, ("https://hooks.example.com/h", "no.such.event")).await;
    assert!(r.body.contains("Unknown event type."), "{}", r.body);
    let r = add_endpoint(&mut admin, &csrf, ("https://hooks.example.com/h", "security.alert, payment.succeeded")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let start = r.body.find("id=\"new-secret\">").unwrap() + "id=\"new-secret\">".len();
    let secret = r.body[start..].split('<').next().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let list = admin.get("/webhooks").await;
    assert!(list.body.contains("https://hooks.example.com/h") && !list.body.contains(&secret));
    let stored = app.store.list_webhook_endpoints(&app.merchant_id, vault::keys::Mode::Test).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].enabled_events, ["security.alert", "payment.succeeded"]);
    let audited = app.audit_events("webhook_endpoint.created").await;
    assert_eq!(audited[0]["detail"]["actor"], "hooks@shop.example");
    // A developer cannot add one, even by a crafted POST.
    let mut dev = enrolled(&app, "devhooks@shop.example", Role::Developer, "203.0.113.141").await;
    let dcsrf = dev.get("/webhooks").await.csrf();
    let r = add_endpoint(&mut dev, &dcsrf, ("https://hooks.example.com/x", "*")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

async fn add_endpoint(b: &mut Browser, csrf: &str, (url, events): (&str, &str)) -> Page {
    b.post("/webhooks", &[("csrf", csrf), ("mode", "test"), ("url", url), ("events", events)]).await
}

/// The whole path of an alert: a sign-in from a second address shows on `/alerts` and reaches
/// a real webhook receiver as a signed `security.alert` event.
#[tokio::test]
async fn a_new_address_alert_is_delivered_to_a_webhook_receiver() {
    let app = crate::helpers::spawn_app_with(crate::webhooks::fast).await;
    let receiver = crate::webhooks::Receiver::start(&[], 200).await;
    let endpoint = crate::webhooks::create_endpoint(&app, &receiver.url(), serde_json::json!(["security.alert"])).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let mut owner = enrolled(&app, "roam@shop.example", Role::Owner, "203.0.113.150").await;
    let mut elsewhere = owner.same_device(&app, "198.51.100.150");
    let page = elsewhere.get("/sign-in").await;
    elsewhere.post("/sign-in", &[("csrf", &page.csrf()), ("email", "roam@shop.example"), ("password", PASSWORD)]).await;
    app.clock.advance(30);
    let code = current_code(&app, "roam@shop.example").await;
    let page = elsewhere.get("/sign-in/code").await;
    assert_eq!(elsewhere.post("/sign-in/code", &[("csrf", &page.csrf()), ("code", &code)]).await.location(), "/keys");
    assert!(elsewhere.get("/alerts").await.body.contains("198.51.100.150"));
    for _ in 0..200 {
        if receiver.count() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let hits = receiver.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 1, "one security.alert delivered (test-mode endpoint)");
    let (headers, body) = &hits[0];
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["type"], "security.alert");
    assert_eq!(event["data"]["object"]["kind"], "signin.new_ip");
    assert_eq!(event["data"]["object"]["detail"]["ip"], "198.51.100.150");
    // Signed like every delivery: the merchant verifies it with the endpoint's secret.
    let parsed = webhook_signature::Secret::parse(&secret).unwrap();
    let now = app.state().now();
    assert!(webhook_signature::verify(body, headers, &parsed, webhook_signature::DEFAULT_TOLERANCE, now).is_ok());

    // The events page shows the delivery (recorded just after the receiver answered: under
    // load the page can be asked for first); resending delivers it again.
    let mut events = owner.get("/webhooks/events").await;
    for _ in 0..100 {
        if events.body.contains(": 200 at ") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        events = owner.get("/webhooks/events").await;
    }
    assert_eq!(events.status, StatusCode::OK, "{}", events.body);
    assert!(events.body.contains("security.alert") && events.body.contains(": 200 at "), "{}", events.body);
    let event_id = event["id"].as_str().unwrap();
    let r = owner.post(&format!("/webhooks/events/{event_id}/resend?mode=test"), &[("csrf", &events.csrf())]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("1 new delivery(ies) scheduled."), "{}", r.body);
    for _ in 0..200 {
        if receiver.count() > 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(receiver.count(), 2, "resent once");
    assert_eq!(app.audit_events("event.redelivered").await[0]["detail"]["actor"], "roam@shop.example");
}

/// The suite merchant's `security.alert` events of `mode`, newest first.
async fn security_alert_events(app: &TestApp, mode: vault::keys::Mode) -> Vec<vault::store::EventRecord> {
    let filter = ListFilter {
        merchant_id: Some(app.merchant_id.clone()),
        mode: Some(mode),
        kind: Some("security.alert".into()),
        limit: 10,
        ..ListFilter::default()
    };
    app.store.list_events(filter).await.unwrap()
}

/// How many security alerts of the suite's merchant have this kind.
async fn alerts_of_kind(app: &TestApp, kind: &str) -> usize {
    app.store.devspace_alerts(&app.merchant_id, 1000).await.unwrap().iter().filter(|a| a.kind == kind).count()
}

#[tokio::test]
async fn sign_in_from_a_new_device_raises_an_alert_and_the_device_cookie_is_strict() {
    let app = spawn_app().await;
    let email = "device@shop.example";
    let mut laptop = enrolled(&app, email, Role::Developer, "203.0.113.80").await;
    let device = laptop.cookies.get("__Host-ds_device").cloned().expect("a device cookie after enrolment");
    // Signing in again on the same device and address: the cookie is renewed, nothing raised.
    let page = laptop.sign_in(&app, email).await;
    let set: Vec<&str> = page.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
    let cookie = set.iter().find(|c| c.starts_with("__Host-ds_device=")).expect("device cookie renewed");
    assert_eq!(
        *cookie,
        format!("__Host-ds_device={device}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=34560000")
    );
    assert_eq!(alerts_of_kind(&app, "signin.new_device").await, 0);
    // A second browser at the same address: a new device (and no new address).
    let mut phone = Browser::new(&app, "203.0.113.80");
    phone.sign_in(&app, email).await;
    assert_eq!(alerts_of_kind(&app, "signin.new_device").await, 1);
    assert_eq!(alerts_of_kind(&app, "signin.new_ip").await, 0);
    let alerts = phone.get("/alerts").await;
    assert!(
        alerts.body.contains("signin.new_device")
            && alerts.body.contains("device@shop.example signed in from a new device")
    );
    let audited = app.audit_events("devspace.sign_in").await;
    assert_eq!(audited[0]["detail"]["new_device"], true);
    // That browser is known from now on; the laptop still is.
    phone.sign_in(&app, email).await;
    laptop.sign_in(&app, email).await;
    assert_eq!(alerts_of_kind(&app, "signin.new_device").await, 1);
    // The device id is stored keyed and hashed only.
    let phone_id = phone.cookies["__Host-ds_device"].clone();
    assert_ne!(phone_id, device);
    let user = app.store.devspace_user(email, true).await.unwrap().unwrap();
    assert_eq!(app.count(&format!("SELECT count(*) FROM devspace_devices WHERE user_id = '{}'", user.id)), 2);
    for raw in [&phone_id, &device] {
        assert_eq!(app.count(&format!("SELECT count(*) FROM devspace_devices WHERE hash LIKE '%{raw}%'")), 0);
    }
    // The security.alert event went out for it.
    let events = security_alert_events(&app, vault::keys::Mode::Test).await;
    assert!(events.iter().any(|e| e.body.contains("\"signin.new_device\"")));
}

#[tokio::test]
async fn tokens_page_shows_metadata_only_in_pages_for_every_role() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..52 {
        let t = app.tokenize(crate::helpers::ALL_CARDS[i % 4]).await;
        ids.push(t["id"].as_str().unwrap().to_owned());
    }
    let newest = app.metadata(&serde_json::json!({ "id": ids[51] })).await;
    let fingerprint = newest["card"]["fingerprint"].as_str().unwrap().to_owned();
    for (i, role) in Role::ALL.into_iter().enumerate() {
        let mut b = enrolled(&app, &format!("tok{i}@shop.example"), role, &format!("203.0.113.{}", 90 + i)).await;
        let first = b.get("/tokens").await;
        assert_eq!(first.status, StatusCode::OK, "{role:?}");
        assert!(first.body.contains(&ids[51]) && first.body.contains(&ids[2]), "{role:?}");
        assert!(!first.body.contains(&ids[1]) && !first.body.contains(&ids[0]), "50 per page");
        assert!(first.body.contains(&fingerprint));
        assert!(first.body.contains("•••• 4242") && first.body.contains("12/2030"));
        for (pan, cvc) in crate::helpers::ALL_CARDS {
            assert!(!first.body.contains(pan) && !first.body.contains(&pan[..8]), "no card number on the page");
            assert!(!first.body.contains(&format!(">{cvc}<")));
        }
        let marker = "href=\"/tokens?mode=test&amp;before=";
        let start = first.body.find(marker).expect("a link to older tokens") + "href=\"".len();
        let href = first.body[start..].split('"').next().unwrap().replace("&amp;", "&");
        let older = b.get(&href).await;
        assert_eq!(older.status, StatusCode::OK);
        assert!(older.body.contains(&ids[0]) && older.body.contains(&ids[1]) && !older.body.contains(&ids[2]));
        assert!(!older.body.contains("Older tokens"));
        // Live mode has none; a malformed cursor is no page.
        assert!(b.get("/tokens?mode=live").await.body.contains("No tokens in live mode."));
        assert_eq!(b.get("/tokens?before=tok_%3Cscript%3E").await.status, StatusCode::NOT_FOUND);
    }
    // Signed out: no page.
    let mut stranger = Browser::new(&app, "203.0.113.99");
    assert_eq!(stranger.get("/tokens").await.location(), "/sign-in");
}

#[tokio::test]
async fn webhook_secrets_are_rotated_after_reauthentication_and_endpoints_deleted_by_admins() {
    let app = spawn_app().await;
    let endpoint =
        crate::webhooks::create_endpoint(&app, "https://hooks.example.com/r", serde_json::json!(["security.alert"]))
            .await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    let old_secret = endpoint["secret"].as_str().unwrap().to_owned();
    // Those who only read see the endpoint but no action, and crafted posts are refused.
    for (i, role) in [Role::Developer, Role::Viewer].into_iter().enumerate() {
        let mut b = enrolled(&app, &format!("ro{i}@shop.example"), role, &format!("203.0.113.{}", 160 + i)).await;
        let page = b.get("/webhooks").await;
        assert!(page.body.contains(&id) && !page.body.contains("Rotate secret"), "{role:?}");
        let csrf = page.csrf();
        let r = b.post(&format!("/webhooks/{id}/rotate"), &[("csrf", &csrf), ("overlap", "0")]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(b.post(&format!("/webhooks/{id}/delete"), &[("csrf", &csrf)]).await.status, StatusCode::FORBIDDEN);
    }
    let mut admin = enrolled(&app, "hookadmin@shop.example", Role::Admin, "203.0.113.170").await;
    let page = admin.get("/webhooks").await;
    assert!(page.body.contains("Rotate secret"));
    let csrf = page.csrf();
    // No CSRF token, no change; an overlap the form does not offer is refused precisely.
    let r = admin.post(&format!("/webhooks/{id}/rotate"), &[("overlap", "0")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = admin.post(&format!("/webhooks/{id}/rotate"), &[("csrf", &csrf), ("overlap", "99")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Choose how long the old secret keeps signing"), "{}", r.body);
    // Right after signing in (a fresh authentication): the new secret, once.
    let r = admin.post(&format!("/webhooks/{id}/rotate"), &[("csrf", &csrf), ("overlap", "3600")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let start = r.body.find("id=\"new-secret\">").unwrap() + "id=\"new-secret\">".len();
    let secret = r.body[start..].split('<').next().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret != old_secret, "{secret}");
    let now = app.state().now();
    assert_eq!(app.store.webhook_secrets(&id, now).await.unwrap().len(), 2, "the old secret signs for the overlap");
    assert!(!admin.get("/webhooks").await.body.contains(&secret), "shown once");
    let audited = app.audit_events("webhook_endpoint.secret_rotated").await;
    assert_eq!(audited[0]["detail"]["actor"], "hookadmin@shop.example");
    assert_eq!(audited[0]["detail"]["overlap_seconds"], 3600);
    // Minutes later, a new secret needs a re-authentication first.
    app.clock.advance(devspace::session::REAUTH_SECONDS);
    let r = admin.post(&format!("/webhooks/{id}/rotate"), &[("csrf", &csrf), ("overlap", "0")]).await;
    assert!(r.body.contains("Confirm it is you") && !r.body.contains("whsec_"), "{}", r.body);
    assert_eq!(app.audit_events("webhook_endpoint.secret_rotated").await.len(), 1);
    // Delete: gone from the list and the store, audited with the person.
    let r = admin.post(&format!("/webhooks/{id}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("deleted") && !r.body.contains("https://hooks.example.com/r"));
    assert!(app.store.list_webhook_endpoints(&app.merchant_id, vault::keys::Mode::Test).await.unwrap().is_empty());
    let audited = app.audit_events("webhook_endpoint.deleted").await;
    assert_eq!(audited[0]["detail"]["actor"], "hookadmin@shop.example");
    assert_eq!(admin.post(&format!("/webhooks/{id}/delete"), &[("csrf", &csrf)]).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unusual_detokenize_volume_raises_one_alert_per_key_and_window() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.detokenize_alert_threshold = 3;
        c.detokenize_alert_window_secs = 3600;
    })
    .await;
    let token = app.tokenize(crate::helpers::VISA).await;
    let id = token["id"].as_str().unwrap().to_owned();
    for _ in 0..6 {
        assert_eq!(app.detokenize(&id, &app.sk).await.status(), 200);
    }
    for _ in 0..100 {
        if alerts_of_kind(&app, "detokenize.volume").await > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(alerts_of_kind(&app, "detokenize.volume").await, 1, "once per window, not per call");
    let alert = app.store.devspace_alerts(&app.merchant_id, 10).await.unwrap().remove(0);
    assert_eq!(alert.detail["key_id"], app.sk_id.as_str());
    assert!(alert.message.contains("detokenized more than 3 cards within 60 minutes"), "{}", alert.message);
    assert!(!alert.message.contains(&app.sk) && !alert.message.contains("4242424242424242"));
    let mut owner = enrolled(&app, "volume@shop.example", Role::Owner, "203.0.113.180").await;
    assert!(owner.get("/alerts").await.body.contains("detokenize.volume"));
    let events = security_alert_events(&app, vault::keys::Mode::Live).await;
    assert!(events.iter().any(|e| e.body.contains("\"detokenize.volume\"")));
    // The next window counts afresh.
    app.clock.advance(3600);
    for _ in 0..4 {
        assert_eq!(app.detokenize(&id, &app.sk).await.status(), 200);
    }
    for _ in 0..100 {
        if alerts_of_kind(&app, "detokenize.volume").await > 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(alerts_of_kind(&app, "detokenize.volume").await, 2);
}

/// What the sink received: each message's recipients and its data.
type Mails = std::sync::Arc<std::sync::Mutex<Vec<(Vec<String>, String)>>>;

/// A local SMTP sink: enough SMTP to receive messages. The first `refuse` connections are
/// answered `421` at once (a server that is down), the others accepted.
struct SmtpSink {
    port: u16,
    mails: Mails,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SmtpSink {
    async fn start(refuse: usize) -> Self {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails: Mails = std::sync::Arc::default();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (m, n) = (mails.clone(), connections.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                if n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < refuse {
                    let _ = stream.write_all(b"421 4.3.2 sink down for the test\r\n").await;
                    continue;
                }
                let m = m.clone();
                tokio::spawn(async move {
                    let (r, mut w) = stream.into_split();
                    let mut r = BufReader::new(r);
                    w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                    let mut rcpts = Vec::new();
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let upper = line.to_ascii_uppercase();
                        let answer: &[u8] = if upper.starts_with("EHLO") {
                            b"250-sink\r\n250 8BITMIME\r\n"
                        } else if upper.starts_with("MAIL FROM:") {
                            b"250 ok\r\n"
                        } else if upper.starts_with("RCPT TO:") {
                            rcpts.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                            b"250 ok\r\n"
                        } else if upper.starts_with("DATA") {
                            w.write_all(b"354 go ahead\r\n").await.unwrap();
                            let mut data = String::new();
                            loop {
                                let mut l = String::new();
                                if r.read_line(&mut l).await.unwrap_or(0) == 0 || l == ".\r\n" {
                                    break;
                                }
                                data.push_str(&l);
                            }
                            m.lock().unwrap().push((std::mem::take(&mut rcpts), data));
                            b"250 queued\r\n"
                        } else if upper.starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            b"500 what\r\n"
                        };
                        w.write_all(answer).await.unwrap();
                    }
                });
            }
        });
        Self { port, mails, connections }
    }
}

#[tokio::test]
async fn security_alerts_are_emailed_to_owners_and_admins_and_a_failing_server_is_retried() {
    let sink = SmtpSink::start(1).await;
    let target = vault::smtp::SmtpTarget::parse(&format!("smtp://127.0.0.1:{}", sink.port)).unwrap();
    let app = crate::helpers::spawn_app_with(|c| {
        c.smtp = Some(vault::config::SmtpSettings {
            target,
            from: "alerts@vault.example".into(),
            poll_interval: std::time::Duration::from_millis(50),
            retry_after: std::time::Duration::from_secs(60),
        });
    })
    .await;
    // Card data exists in the vault; it must never reach a mailbox.
    let token = app.tokenize(crate::helpers::VISA).await;
    let owner = enrolled(&app, "boss@shop.example", Role::Owner, "203.0.113.190").await;
    let admin = enrolled(&app, "ops@shop.example", Role::Admin, "203.0.113.191").await;
    let dev = enrolled(&app, "coder@shop.example", Role::Developer, "203.0.113.192").await;
    // The developer signs in from a new address: the owner and the admin are told.
    let mut elsewhere = dev.same_device(&app, "198.51.100.7");
    elsewhere.sign_in(&app, "coder@shop.example").await;
    // The server refuses the first attempt; the request path never noticed.
    for _ in 0..100 {
        if sink.connections.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(sink.connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(sink.mails.lock().unwrap().is_empty());
    assert_eq!(elsewhere.get("/alerts").await.status, StatusCode::OK);
    // Not before the retry delay; retried once it has passed.
    app.clock.advance(59);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    app.clock.advance(1);
    for _ in 0..100 {
        if !sink.mails.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mails = sink.mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "one email per alert");
    let (mut rcpts, data) = mails[0].clone();
    rcpts.sort();
    assert_eq!(rcpts, ["boss@shop.example", "ops@shop.example"], "owners and admins only");
    assert!(data.contains("Subject: Security alert: signin.new_ip\r\n"), "{data}");
    assert!(data.contains("From: Altafinex Dev Space <alerts@vault.example>\r\n"), "{data}");
    assert!(data.contains("coder@shop.example signed in from a new address, 198.51.100.7."), "{data}");
    // No secret, session, device id or card data in it.
    let mut secrets: Vec<String> = vec![app.sk.clone(), app.admin.clone(), app.ro.clone(), app.pk.clone()];
    for b in [&owner, &admin, &dev, &elsewhere] {
        secrets.extend(b.cookies.values().cloned());
    }
    secrets.push(token["id"].as_str().unwrap().to_owned());
    for s in &secrets {
        assert!(!data.contains(s.as_str()), "the email holds a secret");
    }
    for (pan, _) in crate::helpers::ALL_CARDS {
        assert!(!data.contains(pan) && !data.contains(&pan[..8]));
    }
    // Sent once: later passes send nothing more.
    app.clock.advance(60);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(sink.mails.lock().unwrap().len(), 1);
    assert_eq!(sink.connections.load(std::sync::atomic::Ordering::SeqCst), 2);
}
