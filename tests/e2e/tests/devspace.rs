//! Dev Space in headless Debian Chromium, on its own origin (`vault serve --devspace-listen`):
//! the first owner follows the link printed by `vault users create`, sets a password, enrols
//! TOTP (the code computed from the setup key the page shows), creates a key and sees its
//! secret once, signs out and back in with password + TOTP. Checks the session cookie's flags
//! as the browser stores them, that no page logs a console error (a CSP violation would), that
//! the stylesheet loads under the CSP, that axe-core finds no serious or critical violation,
//! and keyboard access (skip link first); adds, rotates and deletes a webhook endpoint, and
//! opens the tokens page. Screenshots of
//! each main page go to `artifacts/devspace-*.png`.
//!
//! Prerequisites (the test FAILS when one is missing): `cargo build -p vault`, Debian
//! `chromium` and `chromium-driver` (`scripts/setup.sh`). Run: `cargo test -p e2e --test devspace`.
#![allow(clippy::print_stderr, reason = "progress lines of a long test")]
#![allow(clippy::indexing_slicing, reason = "serde_json::Value[\"key\"] yields Null instead of panicking")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use devspace::totp::{self, TotpSecret};
use e2e::{Browser, DevSpaceEnv, Key};
use fantoccini::Locator;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery staple 42";

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

async fn fill(b: &Browser, css: &str, text: &str) -> anyhow::Result<()> {
    let field = b.client.find(Locator::Css(css)).await.with_context(|| format!("no field {css}"))?;
    field.clear().await?;
    field.send_keys(text).await?;
    Ok(())
}

async fn submit(b: &Browser, form_action: &str) -> anyhow::Result<()> {
    let css = format!("form[action='{form_action}'] button[type=submit]");
    b.client.find(Locator::Css(&css)).await.with_context(|| format!("no {css}"))?.click().await?;
    Ok(())
}

async fn wait_path(b: &Browser, path: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let url = b.client.current_url().await?;
        if url.path() == path {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("expected {path}, still at {url}; page:\n{}", b.client.source().await.unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the first `css` element, waiting (up to 15 s) for it to appear: a click on a
/// submit button returns before the next page has loaded.
async fn text_of(b: &Browser, css: &str) -> anyhow::Result<String> {
    wait_css(b, css).await?;
    Ok(b.client.find(Locator::Css(css)).await.with_context(|| format!("no {css}"))?.text().await?)
}

/// Waits (up to 15 s) until the page has an element matching `css`.
async fn wait_css(b: &Browser, css: &str) -> anyhow::Result<()> {
    let script = format!("return document.querySelector({css:?}) ? true : null;");
    b.wait_js(&format!("an element {css}"), &script, Duration::from_secs(15)).await.map(|_| ())
}

/// Checks what every Dev Space page must have in the browser: the stylesheet applied under the
/// CSP, one `main` and one `h1`, and no console error; then saves a screenshot.
async fn check_page(b: &Browser, name: &str) -> anyhow::Result<()> {
    let layout = b
        .js(
            "const h = document.querySelector('header.top');
             return { header: h && getComputedStyle(h).display, mains: document.querySelectorAll('main').length,
                      h1s: document.querySelectorAll('h1').length,
                      unlabelled: [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                         .filter(e => !e.labels || e.labels.length === 0).map(e => e.name) };",
            vec![],
        )
        .await?;
    ensure!(layout["header"] == "flex", "{name}: stylesheet not applied: {layout}");
    ensure!(layout["mains"] == 1 && layout["h1s"] == 1, "{name}: landmarks: {layout}");
    ensure!(layout["unlabelled"].as_array().is_some_and(Vec::is_empty), "{name}: inputs without a label: {layout}");
    let errors = b.severe_logs().await?;
    ensure!(errors.is_empty(), "{name}: console errors: {errors:#?}");
    let violations = axe(b).await?;
    ensure!(violations.is_empty(), "{name}: serious or critical accessibility violations: {violations:#?}");
    let path = b.screenshot(&format!("devspace-{name}")).await?;
    eprintln!("  screenshot {}", path.display());
    Ok(())
}

/// axe-core (npm, pinned in scripts/setup.sh) from `.tools`, injected by WebDriver into the
/// page: the browser never fetches it. Returns the serious and critical violations.
async fn axe(b: &Browser) -> anyhow::Result<Vec<Value>> {
    static SOURCE: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    let source = SOURCE.get_or_init(|| {
        let path = e2e::workspace_root().join(".tools/node_modules/axe-core/axe.min.js");
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e} (run scripts/setup.sh)", path.display()))
    });
    let source = source.as_ref().map_err(|e| anyhow::anyhow!("axe-core missing: {e}"))?;
    b.js(&format!("{source}\n;return typeof axe;"), vec![]).await?;
    let result = b
        .js_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
               .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                                                        nodes: v.nodes.map(n => n.target.join(' ')) }))))
               .catch(e => done([{ id: 'axe-error', impact: 'critical', help: String(e) }]));",
            vec![],
        )
        .await?;
    let all = result.as_array().cloned().unwrap_or_default();
    let ids: Vec<String> = all.iter().map(|v| format!("{}({})", v["id"], v["impact"])).collect();
    eprintln!("  axe: {} violation(s) of any impact {ids:?}", all.len());
    Ok(all.into_iter().filter(|v| v["impact"] == "serious" || v["impact"] == "critical").collect())
}

async fn run(env: &DevSpaceEnv, b: &Browser) -> anyhow::Result<()> {
    // 1. The one-time link: choose a password.
    b.client.goto(&env.owner_link).await?;
    // The checker itself works here: an image without alternative text is reported.
    b.js("const i = document.createElement('img'); i.id = 'axe-probe'; i.src = '/assets/favicon.svg'; document.body.append(i);", vec![]).await?;
    let probe = axe(b).await?;
    ensure!(probe.iter().any(|v| v["id"] == "image-alt"), "axe did not report the probe image: {probe:?}");
    b.js("document.getElementById('axe-probe').remove();", vec![]).await?;
    check_page(b, "set-password").await?;
    fill(b, "#password", PASSWORD).await?;
    fill(b, "#confirm", PASSWORD).await?;
    submit(b, "/welcome").await?;
    wait_path(b, "/enrol").await?;

    // 2. TOTP enrolment with the setup key shown on the page.
    check_page(b, "enrol").await?;
    let setup_key = text_of(b, "code.secret").await?;
    let secret = TotpSecret::from_base32(&setup_key).context("the setup key is not base32")?;
    let enrol_step = totp::step_at(unix_now());
    fill(b, "#code", &totp::code(&secret, enrol_step)).await?;
    submit(b, "/enrol").await?;
    wait_css(b, "ul.codes li").await?;
    let codes = b.js("return document.querySelectorAll('ul.codes li').length", vec![]).await?;
    ensure!(codes == 10, "expected 10 recovery codes, got {codes}");
    check_page(b, "recovery-codes").await?;

    // 3. The session cookie as the browser keeps it; script cannot read it.
    let cookies = b.client.get_all_cookies().await?;
    let session = cookies.iter().find(|c| c.name() == "__Host-ds_session").context("no session cookie")?;
    ensure!(session.secure() == Some(true), "session cookie not Secure: {session}");
    ensure!(session.http_only() == Some(true), "session cookie not HttpOnly: {session}");
    ensure!(format!("{:?}", session.same_site()) == "Some(Strict)", "session cookie SameSite: {session}");
    ensure!(session.path() == Some("/"), "session cookie path: {session}");
    // The device cookie ("new device" alerts) has the same flags and outlives the session.
    let device = cookies.iter().find(|c| c.name() == "__Host-ds_device").context("no device cookie")?;
    ensure!(device.secure() == Some(true) && device.http_only() == Some(true), "device cookie flags: {device}");
    ensure!(format!("{:?}", device.same_site()) == "Some(Strict)", "device cookie SameSite: {device}");
    let visible = b.js("return document.cookie", vec![]).await?;
    let visible = visible.as_str().unwrap_or_default();
    ensure!(!visible.contains("ds_session") && !visible.contains("ds_device"), "script sees a cookie: {visible}");

    // 4. Keys: create one, see the secret once.
    b.client.goto(&format!("{}/keys", env.url)).await?;
    check_page(b, "keys").await?;
    fill(b, "#label", "e2e server").await?;
    submit(b, "/keys").await?;
    let secret_text = text_of(b, "#new-secret").await?;
    ensure!(secret_text.starts_with("sk_test_"), "no secret shown: {secret_text}");
    check_page(b, "key-created").await?;
    b.client.goto(&format!("{}/keys", env.url)).await?;
    let source = b.client.source().await?;
    ensure!(!source.contains(&secret_text), "the secret is shown again");
    ensure!(source.contains("e2e server"), "the new key is not listed");

    // 5. Keyboard: the first Tab reaches the skip link.
    b.press(None, Key::Tab).await?;
    let focused =
        b.js("return document.activeElement.className + '|' + document.activeElement.textContent", vec![]).await?;
    ensure!(focused == "skip|Skip to content", "first Tab focused {focused}");

    // 6. Audit log and alerts.
    b.client.goto(&format!("{}/audit", env.url)).await?;
    check_page(b, "audit").await?;
    ensure!(b.client.source().await?.contains("key.created"), "key creation not in the audit log");
    b.client.goto(&format!("{}/alerts", env.url)).await?;
    check_page(b, "alerts").await?;
    for page in ["users", "payments", "webhooks", "webhooks/events", "tokens"] {
        b.client.goto(&format!("{}/{page}", env.url)).await?;
        check_page(b, &page.replace('/', "-")).await?;
    }
    ensure!(b.client.source().await?.contains("No tokens in test mode."), "tokens page: no empty-state text");

    // 6b. Webhooks: add an endpoint (secret once), rotate its secret, delete it.
    b.client.goto(&format!("{}/webhooks", env.url)).await?;
    fill(b, "#url", "https://hooks.example.com/e2e").await?;
    submit(b, "/webhooks").await?;
    let first = text_of(b, "#new-secret").await?;
    ensure!(first.starts_with("whsec_"), "no endpoint secret shown: {first}");
    b.client.find(Locator::Css("td details summary")).await.context("no rotate disclosure")?.click().await?;
    b.client.find(Locator::Css("form[action$='/rotate'] button")).await.context("no rotate button")?.click().await?;
    wait_css(b, "p.notice").await?;
    let rotated = text_of(b, "#new-secret").await?;
    ensure!(rotated.starts_with("whsec_") && rotated != first, "no new secret after rotation: {rotated}");
    check_page(b, "webhook-rotated").await?;
    b.client.find(Locator::Css("form[action$='/delete'] button")).await.context("no delete button")?.click().await?;
    // The rotation page had a notice too: wait for the deletion's.
    let deleted =
        "const n = document.querySelector('p.notice'); return n && n.textContent.includes('deleted') ? true : null;";
    b.wait_js("the deletion notice", deleted, Duration::from_secs(15)).await?;
    let source = b.client.source().await?;
    ensure!(source.contains("deleted") && !source.contains("https://hooks.example.com/e2e"), "endpoint not deleted");
    check_page(b, "webhook-deleted").await?;

    // 7. Sign out, then in again with password + TOTP (the next step: the enrolment code is spent).
    submit(b, "/sign-out").await?;
    wait_path(b, "/sign-in").await?;
    check_page(b, "sign-in").await?;
    fill(b, "#email", &env.owner_email).await?;
    fill(b, "#password", PASSWORD).await?;
    submit(b, "/sign-in").await?;
    wait_path(b, "/sign-in/code").await?;
    check_page(b, "sign-in-code").await?;
    let next = (enrol_step + 1) * totp::STEP_SECONDS;
    let wait = u64::try_from(next - unix_now() + 1).unwrap_or(0);
    if wait > 0 {
        eprintln!("  waiting {wait} s for the next TOTP step");
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    fill(b, "#code", &totp::code(&secret, totp::step_at(unix_now()))).await?;
    submit(b, "/sign-in/code").await?;
    wait_path(b, "/keys").await?;
    let errors = b.severe_logs().await?;
    ensure!(errors.is_empty(), "console errors: {errors:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devspace_in_a_real_browser() {
    let env = match DevSpaceEnv::start().await {
        Ok(env) => env,
        Err(e) => panic!("dev space browser test cannot run: {e:#}"),
    };
    eprintln!("dev space {}", env.url);
    let b = match env.browser().await {
        Ok(b) => b,
        Err(e) => panic!("no browser session: {e:#}\nchromedriver log:\n{}", env.chromedriver.log_tail(20)),
    };
    let result = tokio::time::timeout(Duration::from_secs(120), run(&env, &b)).await;
    let _ = b.close().await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e:#}\nvault log:\n{}", env.vault.log_tail(30)),
        Err(_) => panic!("timed out after 120 s\nvault log:\n{}", env.vault.log_tail(30)),
    }
}
