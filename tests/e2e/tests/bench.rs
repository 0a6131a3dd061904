//! Browser benchmark (not a timed test; ignored by default):
//!
//! ```text
//! cargo build -p vault -p demo-merchant
//! cargo test -p e2e --test bench -- --ignored --nocapture
//! ```
//!
//! 1. `mount()` → ready: median over `E2E_BENCH_RUNS` (default 30) mounts of the card frame,
//!    alternated in the same page with a bare cross-origin iframe holding one plain `<input>`
//!    that posts "ready" from its script (static/demo/bench.html). Cold (the browser cache
//!    cleared through the DevTools Protocol before the mount, as on a first visit; the TLS
//!    connection to the vault may be reused, as it is after the loader's own download) and
//!    warm (the frame's content-hashed assets in the browser cache, as for a returning
//!    customer). Chromium trusts the vault's development certificate by its key
//!    (`--ignore-certificate-errors-spki-list`), so caching behaves as with a real one.
//!    Split fields likewise: a card of three field frames (number, expiry, CVC) until all three
//!    are ready, next to three bare iframes mounted at once.
//! 2. Per-keystroke handling inside the frame: for each key, the time from a capture listener on
//!    the frame's `window` to a bubble listener on it, summed over keydown, beforeinput, input
//!    and keyup, i.e. the frame's own handlers for that key. Plus the latency from keydown in the
//!    frame to the `change` event on the merchant page (absolute `performance.timeOrigin +
//!    now()` on both sides).
//!
//! 0. Bytes on the wire for a cold mount (HTTP cache cleared): Resource Timing `transferSize`
//!    (headers + body as received) of the frame page and everything it fetched, read inside the
//!    frame, plus the loader's on the merchant page.
//!
//! Figures are printed and written to `artifacts/bench-browser.json`.
#![allow(clippy::print_stderr, reason = "a benchmark prints its figures")]
#![allow(clippy::indexing_slicing, reason = "serde_json::Value[\"key\"] yields Null instead of panicking")]

use std::time::Duration;

use anyhow::{Context as _, ensure};
use e2e::{Env, artifacts_dir};
use serde_json::{Value, json};

const INSTRUMENT_FRAME: &str = r#"
var rec = window.__ks = { keys: [] };
var cur = null;
['keydown', 'beforeinput', 'input', 'keyup'].forEach(function (type) {
  window.addEventListener(type, function () {
    if (type === 'keydown') { cur = { downAt: performance.timeOrigin + performance.now(), handling: 0 }; rec.keys.push(cur); }
    if (cur) cur['start_' + type] = performance.now();
  }, true);
  window.addEventListener(type, function () {
    if (cur && cur['start_' + type] !== undefined) {
      var d = performance.now() - cur['start_' + type];
      cur.handling += d;
      cur['ms_' + type] = d;
    }
  }, false);
});
return true;
"#;

fn stats(mut xs: Vec<f64>) -> Value {
    xs.retain(|x| x.is_finite());
    xs.sort_by(f64::total_cmp);
    if xs.is_empty() {
        return json!(null);
    }
    let at = |q: f64| xs.get(((xs.len() - 1) as f64 * q).round() as usize).copied().unwrap_or(f64::NAN);
    json!({ "n": xs.len(), "median": at(0.5), "p95": at(0.95), "min": at(0.0), "max": at(1.0) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --ignored --nocapture"]
async fn browser_bench() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let b = env.browser().await?;
    let runs: u32 = std::env::var("E2E_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);

    // 0. Bytes on the wire for a cold mount of the demo checkout (Resource Timing).
    let wire = b.cold_mount_wire_sizes(&format!("{}/", env.merchant_url)).await?;
    let total = |entries: &Value| -> u64 {
        entries.as_array().map_or(0, |a| a.iter().filter_map(|e| e["transferSize"].as_u64()).sum())
    };
    let (frame_wire, loader_wire) = (total(&wire["frame"]), total(&wire["loader"]));

    // 1. mount() → ready next to a bare iframe, cold and warm, one mount per WebDriver call
    //    (as a checkout mounts once; back-to-back mounts in one script overlap the previous
    //    frame's teardown). Each round: cold card, cold plain (browser cache cleared before
    //    each), then warm card, warm plain (the cold mounts just filled the cache). Round 0 is a
    //    warm-up (first TLS handshake, first renderer processes) and not counted.
    b.client.goto(&format!("{}/bench.html", env.merchant_url)).await?;
    b.wait_js("the bench page", "return !!(window.__bench && window.Altafinex);", Duration::from_secs(10)).await?;
    let once = "var done = arguments[arguments.length - 1]; window.__bench.once(arguments[0]).then(done, function (e) { done({ error: String(e) }); });";
    let mut m: [Vec<f64>; 6] = Default::default();
    let [cold_card, cold_hello, cold_plain, warm_card, warm_hello, warm_plain] = &mut m;
    // Split fields: three field frames of one card vs three bare iframes, mounted at once.
    let mut split: [Vec<f64>; 4] = Default::default();
    let [cold_split, cold_plain3, warm_split, warm_plain3] = &mut split;
    for round in 0..=runs {
        for (cold, kind) in [
            (true, "card"),
            (true, "plain"),
            (false, "card"),
            (false, "plain"),
            (true, "split"),
            (true, "plain3"),
            (false, "split"),
            (false, "plain3"),
        ] {
            if cold {
                b.cdp("Network.clearBrowserCache", json!({})).await?;
            }
            let r = b.js_async(once, vec![json!(kind)]).await?;
            ensure!(r.get("error").is_none(), "{kind} mount failed: {r}");
            if round == 0 {
                continue;
            }
            let ms = r["ms"].as_f64().context("no time")?;
            let hello = r["helloMs"].as_f64().unwrap_or(f64::NAN);
            match (cold, kind) {
                (true, "card") => (cold_card.push(ms), cold_hello.push(hello)),
                (false, "card") => (warm_card.push(ms), warm_hello.push(hello)),
                (true, "split") => (cold_split.push(ms), ()),
                (false, "split") => (warm_split.push(ms), ()),
                (true, "plain3") => (cold_plain3.push(ms), ()),
                (false, "plain3") => (warm_plain3.push(ms), ()),
                (true, _) => (cold_plain.push(ms), ()),
                (false, _) => (warm_plain.push(ms), ()),
            };
        }
    }
    let [cold_card, cold_hello, cold_plain, warm_card, warm_hello, warm_plain] = m;
    let [cold_split, cold_plain3, warm_split, warm_plain3] = split;

    // 2. Keystrokes.
    b.open_demo(&format!("{}/", env.merchant_url)).await?;
    let rounds = 5;
    for round in 0..rounds {
        b.click_field("number").await?;
        if round == 0 {
            b.js(INSTRUMENT_FRAME, vec![]).await?;
        }
        b.type_keys("4242424242424242").await?;
        b.leave_frame().await?;
        b.js("window.__demo.card.clear();", vec![]).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.enter_card_frame().await?;
    let keys = b.js("return window.__ks.keys;", vec![]).await?;
    b.leave_frame().await?;
    let changes = b
        .js("return window.__demo.events.filter(function (e) { return e.type === 'change'; }).map(function (e) { return e.at; });", vec![])
        .await?;
    let keys = keys.as_array().cloned().context("no keystrokes recorded")?;
    let change_at: Vec<f64> =
        changes.as_array().cloned().unwrap_or_default().iter().filter_map(Value::as_f64).collect();
    let handling: Vec<f64> = keys.iter().filter_map(|k| k["handling"].as_f64()).collect();
    let downs: Vec<f64> = keys.iter().filter_map(|k| k["downAt"].as_f64()).collect();
    let mut latency = Vec::new();
    for (i, down) in downs.iter().enumerate() {
        let next = downs.get(i + 1).copied().unwrap_or(f64::INFINITY);
        if let Some(c) = change_at.iter().find(|c| **c >= *down && **c < next) {
            latency.push(c - down);
        }
    }
    ensure!(handling.len() as u32 >= rounds * 16, "only {} keystrokes recorded", handling.len());

    let ua = b.js("return navigator.userAgent;", vec![]).await?;
    let report = json!({
        "userAgent": ua,
        "wire": {
            "frameTransferBytes": frame_wire,
            "loaderTransferBytes": loader_wire,
            "coldMountTransferBytes": frame_wire + loader_wire,
            "entries": wire,
        },
        "mount": {
            "runs": runs,
            "cold": { "card": stats(cold_card), "cardUntilFrameHello": stats(cold_hello), "plainIframe": stats(cold_plain) },
            "warm": { "card": stats(warm_card), "cardUntilFrameHello": stats(warm_hello), "plainIframe": stats(warm_plain) },
            "splitThreeFields": {
                "cold": { "card": stats(cold_split), "threePlainIframes": stats(cold_plain3) },
                "warm": { "card": stats(warm_split), "threePlainIframes": stats(warm_plain3) },
            },
        },
        "keystroke": {
            "handlingInFrameMs": stats(handling),
            "keydownToParentChangeMs": stats(latency),
            "byEventMs": {
                "keydown": stats(keys.iter().filter_map(|k| k["ms_keydown"].as_f64()).collect()),
                "beforeinput": stats(keys.iter().filter_map(|k| k["ms_beforeinput"].as_f64()).collect()),
                "input": stats(keys.iter().filter_map(|k| k["ms_input"].as_f64()).collect()),
                "keyup": stats(keys.iter().filter_map(|k| k["ms_keyup"].as_f64()).collect()),
            },
            "keystrokes": keys.len(),
            "changeEvents": change_at.len(),
        }
    });
    let text = serde_json::to_string_pretty(&report)?;
    eprintln!("{text}");
    std::fs::write(artifacts_dir()?.join("bench-browser.json"), &text)?;
    b.close().await?;
    Ok(())
}
