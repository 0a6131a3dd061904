//! The npm package (`web/package`, `@altafinex/js`) in a merchant page, in headless Chromium:
//! `react.html` of the demo merchant renders `<CardElement>` from the package's React binding
//! under `React.StrictMode` (React's UMD development builds, the package as ES modules from
//! `/pkg/`, no bundler), with the loader pinned by its versioned URL and SRI.
//!
//! Checks: StrictMode's mount → unmount → mount created two iframes and left exactly one, and
//! one `message` listener; a test card tokenizes; unmounting the React root leaves no iframe and
//! no listener; no console error.
//!
//! Prerequisites (fails, never skips): those of `browser.rs` plus the built package
//! (`node web/package/scripts/build.mjs`) and React in `.tools` (`scripts/setup.sh`).
//! Run: `cargo test -p e2e --test package`.
#![allow(clippy::print_stderr, reason = "progress lines of a long test")]
#![allow(clippy::indexing_slicing, reason = "serde_json::Value[\"key\"] yields Null instead of panicking")]

use std::time::Duration;

use anyhow::{Context as _, ensure};
use e2e::{Browser, Env, run_scenario};
use fantoccini::Locator;
use serde_json::{Value, json};

/// Counts, before any page script runs, the `message` listeners on the top window and the
/// iframes created (Chromium runs it in every new document; the frame's own copy is unused).
const INSTRUMENT: &str = "(function () {
  var live = new Set(), add = window.addEventListener, remove = window.removeEventListener;
  window.addEventListener = function (t, f, o) { if (t === 'message') live.add(f); return add.call(this, t, f, o); };
  window.removeEventListener = function (t, f, o) { if (t === 'message') live.delete(f); return remove.call(this, t, f, o); };
  var create = Document.prototype.createElement, iframes = 0;
  Document.prototype.createElement = function (tag) { if (String(tag).toLowerCase() === 'iframe') iframes++; return create.apply(this, arguments); };
  window.__counts = function () { return { listeners: live.size, created: iframes, inDom: document.querySelectorAll('iframe').length }; };
})();";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_package_react_strict_mode() {
    let logs = run_scenario(Duration::from_secs(90), |env, b| Box::pin(scenario(env, b)))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(logs.is_empty(), "browser console errors: {logs:#?}");
}

async fn counts(b: &Browser) -> anyhow::Result<Value> {
    b.js("return window.__counts();", vec![]).await
}

async fn scenario(env: &Env, b: &Browser) -> anyhow::Result<()> {
    b.cdp("Page.enable", json!({})).await?;
    b.cdp("Page.addScriptToEvaluateOnNewDocument", json!({ "source": INSTRUMENT })).await?;
    b.client.goto(&format!("{}/react.html", env.merchant_url)).await?;
    b.wait_js(
        "the card element to be ready",
        "var s = document.getElementById('status'); return s && s.textContent === 'Ready.';",
        Duration::from_secs(20),
    )
    .await?;
    let c = counts(b).await?;
    eprintln!("after StrictMode mount: {c}");
    ensure!(c["created"] == json!(2), "StrictMode did not mount twice (iframes created): {c}");
    ensure!(c["inDom"] == json!(1), "not exactly one iframe after mount, unmount, mount: {c}");
    ensure!(c["listeners"] == json!(1), "not exactly one message listener: {c}");
    let frames = b.client.find_all(Locator::Css("#card-element iframe")).await?;
    ensure!(frames.len() == 1, "the iframe is not in #card-element");

    // A test card, typed like a cardholder.
    b.click_field("number").await?;
    b.type_keys("4242424242424242").await?;
    b.type_keys("1230").await?;
    b.type_keys("737").await?;
    b.leave_frame().await?;
    b.wait_js(
        "Pay to be enabled",
        "var p = document.getElementById('pay'); return p && !p.disabled;",
        Duration::from_secs(10),
    )
    .await?;
    b.client.find(Locator::Id("pay")).await?.click().await?;
    let status = b
        .wait_js(
            "a token",
            "var t = document.getElementById('status').textContent; return /tok_/.test(t) ? t : null;",
            Duration::from_secs(15),
        )
        .await?;
    let status = status.as_str().context("status text")?;
    ensure!(status.starts_with("visa •••• 4242 → tok_"), "unexpected result: {status}");

    b.js("window.__checkout.unmount();", vec![]).await?;
    let c = b
        .wait_js(
            "the unmount to remove the frame",
            "var c = window.__counts(); return c.inDom === 0 ? c : null;",
            Duration::from_secs(5),
        )
        .await?;
    ensure!(c["listeners"] == json!(0), "a message listener leaked after unmount: {c}");
    eprintln!("after unmount: {c}");
    Ok(())
}
