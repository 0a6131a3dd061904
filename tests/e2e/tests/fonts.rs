//! Web fonts in the card frame, in headless Chromium: a WOFF2 file registered with the admin API
//! (`POST /v1/fonts`) and named in the loader's `fonts` option is loaded by the frame from the
//! vault's origin under the frame's CSP (`font-src 'self'`), the inputs use it, and `ready` came
//! after the font arrived; a font the vault does not serve delays nothing and comes back as a
//! `font_failed` warning.
//!
//! Prerequisites (fails, never skips): those of `browser.rs`. Run: `cargo test -p e2e --test fonts`.
#![allow(clippy::print_stderr, reason = "progress lines of a long test")]
#![allow(clippy::indexing_slicing, reason = "serde_json::Value[\"key\"] yields Null instead of panicking")]

use std::time::Duration;

use anyhow::{Context as _, ensure};
use e2e::{Browser, Env, run_scenario, workspace_root};
use fantoccini::Locator;
use serde_json::{Value, json};

const FAMILY: &str = "Altafinex Test Sans";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_fonts_load_under_the_frame_csp_before_ready() {
    let logs = run_scenario(Duration::from_secs(90), |env, b| Box::pin(scenario(env, b)))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    // The one expected console error is the 404 of the font the vault does not serve.
    let unexpected: Vec<_> = logs.iter().filter(|l| !l.contains("404")).collect();
    assert!(unexpected.is_empty(), "browser console errors: {unexpected:#?}");
}

async fn upload(env: &Env) -> anyhow::Result<String> {
    let font = std::fs::read(workspace_root().join("crates/vault/tests/fixtures/open-sans-regular.woff2"))?;
    let r = env
        .http()?
        .post(format!("{}/v1/fonts", env.vault_url))
        .query(&[("family", FAMILY), ("weight", "400")])
        .bearer_auth(&env.admin_key)
        .header("Content-Type", "font/woff2")
        .body(font)
        .send()
        .await?;
    ensure!(r.status() == 201, "upload: {} {}", r.status(), r.text().await.unwrap_or_default());
    let font: Value = r.json().await?;
    font["url"].as_str().map(str::to_owned).context("no url")
}

async fn scenario(env: &Env, b: &Browser) -> anyhow::Result<()> {
    let url = upload(env).await?;
    b.open_demo(&env.merchant_url).await?;
    let mounted = b
        .js_async(
            "var done = arguments[arguments.length - 1];
             var el = document.createElement('div'); el.id = 'font-card'; document.body.appendChild(el);
             window.__fonts = { warnings: [] };
             var card = Altafinex.card({
               key: arguments[0],
               fonts: [{ family: arguments[1], src: arguments[2], weight: 400 },
                       { family: 'Missing Face', src: '/v1/frame/fonts/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.woff2' }],
               style: { base: { fontFamily: \"'\" + arguments[1] + \"', monospace\" } }
             });
             card.on('warning', function (w) { window.__fonts.warnings.push(w); });
             card.on('ready', function () { window.__fonts.readyAt = performance.timeOrigin + performance.now(); });
             card.mount('#font-card').then(function () { done('ok'); }, function (e) { done(JSON.stringify(e)); });",
            vec![json!(env.publishable_key), json!(FAMILY), json!(url)],
        )
        .await?;
    ensure!(mounted == json!("ok"), "mount failed: {mounted}");
    let warning = b
        .wait_js(
            "the font_failed warning",
            "return (window.__fonts.warnings || []).filter(function (w) { return w.code === 'font_failed'; })[0] || null;",
            Duration::from_secs(10),
        )
        .await?;
    ensure!(warning["properties"] == json!(["Missing Face"]), "warning names the missing face only: {warning}");
    let ready_at = b.js("return window.__fonts.readyAt;", vec![]).await?.as_f64().context("no ready time")?;

    b.client.find(Locator::Css("#font-card iframe")).await?.enter_frame().await?;
    let inside = b
        .js(
            "var family = arguments[0], file = arguments[1];
             var face = Array.from(document.fonts).filter(function (f) { return f.family.replace(/\"/g, '') === family; })[0];
             var entry = performance.getEntriesByType('resource').filter(function (e) { return e.name.indexOf(file) >= 0; })[0];
             return { status: face && face.status, check: document.fonts.check(\"16px '\" + family + \"'\"),
                      computed: getComputedStyle(document.getElementById('number')).fontFamily,
                      fontEnd: entry ? performance.timeOrigin + entry.responseEnd : null,
                      initiator: entry && entry.initiatorType };",
            vec![json!(FAMILY), json!(url)],
        )
        .await?;
    b.client.enter_parent_frame().await?;
    eprintln!("in the frame: {inside}; ready at {ready_at}");
    ensure!(inside["status"] == json!("loaded"), "the font face did not load: {inside}");
    ensure!(inside["check"] == json!(true), "document.fonts.check is false: {inside}");
    ensure!(inside["computed"].as_str().is_some_and(|f| f.contains(FAMILY)), "inputs do not use the font: {inside}");
    let font_end = inside["fontEnd"].as_f64().context("no Resource Timing entry for the font")?;
    ensure!(font_end <= ready_at + 1.0, "ready ({ready_at}) came before the font arrived ({font_end})");

    // Served by the vault's origin: the file, with the font type.
    let r = env.http()?.get(format!("{}{url}", env.vault_url)).send().await?;
    ensure!(r.headers()["content-type"] == "font/woff2", "content type: {:?}", r.headers());
    Ok(())
}
