//! The npm package (`web/package`, `@altafinex/js`) in a merchant page, in headless Chromium:
//! `react.html` of the demo merchant renders `<CardElement>` from the package's React binding
//! under `React.StrictMode` (React's UMD development builds, the package as ES modules from
//! `/pkg/`, no bundler), with the loader pinned by its versioned URL and SRI.
//!
//! Checks: StrictMode's mount → unmount → mount created two iframes and left exactly one, and
//! one `message` listener; a test card tokenizes; unmounting the React root leaves no iframe and
//! no listener; no console error.
//!
//! `react-split.html` does the same with split fields: `<CardFields>` and one component per field
//! (number, expiry, CVC), each mounted twice by StrictMode on one card and left once, in one
//! group; per-field events reach the props (the group's `onFocus`, the number field's
//! `onBrand`); the fields are disabled with `update()` while the payment runs (no new iframe, the
//! typed card stays) and the group's `tokenize()` makes a token; with `?postal=1`,
//! `<CardPostalCodeField>` is a fourth frame of the same group and part of the token.
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

/// Opens one of the demo merchant's React pages with the iframe and listener counters
/// (`INSTRUMENT`) installed first, waits for its status to say `Ready.`, and returns the counts.
async fn open_instrumented(env: &Env, b: &Browser, page: &str, what: &str) -> anyhow::Result<Value> {
    b.cdp("Page.enable", json!({})).await?;
    b.cdp("Page.addScriptToEvaluateOnNewDocument", json!({ "source": INSTRUMENT })).await?;
    b.client.goto(&format!("{}/{page}", env.merchant_url)).await?;
    b.wait_js(
        what,
        "var s = document.getElementById('status'); return s && s.textContent === 'Ready.';",
        Duration::from_secs(20),
    )
    .await?;
    counts(b).await
}

async fn scenario(env: &Env, b: &Browser) -> anyhow::Result<()> {
    let c = open_instrumented(env, b, "react.html", "the card element to be ready").await?;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_package_react_split_fields_strict_mode() {
    let logs = run_scenario(Duration::from_secs(90), |env, b| Box::pin(split_scenario(env, b)))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(logs.is_empty(), "browser console errors: {logs:#?}");
}

const SPLIT_FIELDS: [&str; 3] = ["number", "expiry", "cvc"];

async fn split_scenario(env: &Env, b: &Browser) -> anyhow::Result<()> {
    let c = open_instrumented(env, b, "react-split.html", "the card fields to be ready").await?;
    eprintln!("after StrictMode mount: {c}");
    ensure!(c["created"] == json!(6), "StrictMode did not mount each field twice (iframes created): {c}");
    ensure!(c["inDom"] == json!(3), "not exactly one iframe per field after mount, unmount, mount: {c}");
    ensure!(c["listeners"] == json!(3), "not exactly one message listener per field: {c}");
    let srcs = b
        .js(
            "return ['number', 'expiry', 'cvc'].map(function (f) { var i = document.querySelectorAll('#card-' + f + ' iframe'); return i.length === 1 ? i[0].src : null; });",
            vec![],
        )
        .await?;
    let mut groups = Vec::new();
    for (field, src) in SPLIT_FIELDS.iter().zip(srcs.as_array().cloned().unwrap_or_default()) {
        let src = src.as_str().unwrap_or_default();
        ensure!(src.starts_with(&format!("{}/v1/frame?key=", env.vault_url)), "{field} frame from {src:?}");
        let group = src.split_once(&format!("&field={field}&group=")).map(|(_, g)| g.to_owned());
        groups.push(group.with_context(|| format!("the {field} frame's URL has no field and group: {src}"))?);
    }
    ensure!(groups.iter().all(|g| g == &groups[0]), "one group for the card: {groups:?}");

    // A test card, one field frame after the other, like a cardholder clicking each.
    type_split_card(b, &[("number", "4242424242424242"), ("expiry", "1230"), ("cvc", "737")]).await?;
    // The number field's own onBrand prop.
    b.wait_js(
        "the brand from the number field's prop",
        "return document.getElementById('brand').textContent === 'visa';",
        Duration::from_secs(5),
    )
    .await?;
    let status = pay_for_token(b).await?;
    ensure!(status.starts_with("visa •••• 4242 → tok_"), "unexpected result: {status}");
    // `disabled` went true and back to false through update(): the same frames, no remount.
    let c = counts(b).await?;
    ensure!(c["created"] == json!(6) && c["inDom"] == json!(3), "a field remounted on update(): {c}");
    // The number frame, after disabled: true then false: enabled, with the number still typed.
    b.enter_split_field("number").await?;
    let number = b
        .wait_js(
            "the number field enabled again",
            "var n = document.getElementById('number'); return n && !n.disabled ? n.value : null;",
            Duration::from_secs(5),
        )
        .await?;
    ensure!(number.as_str().is_some_and(|v| v.ends_with("4242")), "the typed number went: {number}");
    b.leave_frame().await?;

    b.js("window.__checkout.unmount();", vec![]).await?;
    let c = b
        .wait_js(
            "the unmount to remove the frames",
            "var c = window.__counts(); return c.inDom === 0 ? c : null;",
            Duration::from_secs(5),
        )
        .await?;
    ensure!(c["listeners"] == json!(0), "a message listener leaked after unmount: {c}");
    eprintln!("after unmount: {c}");

    // With <CardPostalCodeField> (`?postal=1`): a fourth frame in the same group, required.
    b.client.goto(&format!("{}/react-split.html?postal=1", env.merchant_url)).await?;
    b.wait_js(
        "the card fields with a postal code to be ready",
        "var s = document.getElementById('status'); return s && s.textContent === 'Ready.';",
        Duration::from_secs(20),
    )
    .await?;
    let c = counts(b).await?;
    ensure!(
        c["created"] == json!(8) && c["inDom"] == json!(4) && c["listeners"] == json!(4),
        "with a postal code: {c}"
    );
    let groups = b
        .js(
            "return Array.prototype.map.call(document.querySelectorAll('iframe'), function (i) { return i.src.split('&group=')[1]; });",
            vec![],
        )
        .await?;
    ensure!(groups.as_array().is_some_and(|g| g.len() == 4 && g.iter().all(|x| x == &g[0])), "one group: {groups}");
    type_split_card(b, &[("number", "4242424242424242"), ("expiry", "1230"), ("cvc", "737"), ("postalCode", "10115")])
        .await?;
    let status = pay_for_token(b).await?;
    ensure!(status.starts_with("visa •••• 4242 → tok_"), "unexpected result with a postal code: {status}");
    Ok(())
}

/// Clicks each field's input in its frame (the group's `onFocus` prop must report it to the
/// page) and types its keys.
async fn type_split_card(b: &Browser, fields: &[(&str, &str)]) -> anyhow::Result<()> {
    for (field, keys) in fields {
        b.enter_split_field(field).await?;
        b.client.find(Locator::Id(field)).await.with_context(|| format!("no #{field} in its frame"))?.click().await?;
        b.leave_frame().await?;
        let script = format!("return document.getElementById('checkout').dataset.focused === '{field}';");
        b.wait_js(&format!("the {field} focus in the page"), &script, Duration::from_secs(5)).await?;
        b.enter_split_field(field).await?;
        b.type_keys(keys).await?;
    }
    b.leave_frame().await?;
    Ok(())
}

/// Waits for Pay to be enabled, clicks it and returns the status once it shows a token.
async fn pay_for_token(b: &Browser) -> anyhow::Result<String> {
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
    Ok(status.as_str().context("status text")?.to_owned())
}
