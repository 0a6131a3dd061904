//! Split fields (`card.field(name).mount(el)`, docs/split-fields.md): one frame per field on the
//! demo's `split.html`, one group, the number frame tokenizing with the values the other field
//! frames hand it on their `BroadcastChannel` (vault origin only).

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use fantoccini::Locator;
use serde_json::{Value, json};

use super::{CVC, Ctx, VISA, assert_no_secrets, tokenize_outcome, value_of};
use e2e::Browser;

const FIELDS: [&str; 3] = ["number", "expiry", "cvc"];

fn split_demo(ctx: &Ctx, query: &str) -> String {
    format!("{}/split.html{query}", ctx.env.merchant_url)
}

/// The field element events the page recorded (`window.__demo.fieldEvents`) of one type, as
/// `[field, payload]` pairs.
async fn field_events(b: &Browser, kind: &str) -> anyhow::Result<Vec<Value>> {
    b.leave_frame().await?;
    let v = b
        .js(
            "var k = arguments[0]; return window.__demo.fieldEvents.filter(function (e) { return e.type === k; }).map(function (e) { return [e.field, e.payload]; });",
            vec![json!(kind)],
        )
        .await?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// Waits until the frame of `field` has the focus, on its own input.
async fn wait_focus_in(b: &Browser, field: &str) -> anyhow::Result<()> {
    b.enter_split_field(field).await?;
    let script =
        format!("return document.hasFocus() && document.activeElement && document.activeElement.id === '{field}';");
    b.wait_js(&format!("the focus in the {field} frame"), &script, Duration::from_secs(5)).await?;
    Ok(())
}

/// Split fields: three frames laid out by the page, each showing only its field; typing moves
/// the focus from frame to frame; per-field events; `tokenize()` on the card gives the same
/// result as the single frame (and the merchant server reads it back); the CVC frame empties
/// after the token; nothing the page received carries card data. Screenshot `split-fields.png`.
pub(super) async fn split_fields_mount_type_events_and_tokenize_like_the_single_frame(ctx: &Ctx) -> anyhow::Result<()> {
    let b = &ctx.b;
    b.open_demo(&split_demo(ctx, "")).await?;
    let srcs = b
        .js(
            "return ['number', 'expiry', 'cvc'].map(function (f) { var i = document.querySelectorAll('#card-' + f + ' iframe'); return i.length === 1 ? i[0].src : null; });",
            vec![],
        )
        .await?;
    let mut groups = Vec::new();
    for (field, src) in FIELDS.iter().zip(srcs.as_array().cloned().unwrap_or_default()) {
        let src = src.as_str().unwrap_or_default();
        ensure!(src.starts_with(&format!("{}/v1/frame?key=", ctx.env.vault_url)), "{field} frame from {src:?}");
        let group = src.split_once(&format!("&field={field}&group=")).map(|(_, g)| g.to_owned());
        groups.push(group.with_context(|| format!("the {field} frame's URL has no field and group: {src}"))?);
    }
    ensure!(groups.iter().all(|g| g == &groups[0] && g.len() == 32), "one group for the card: {groups:?}");
    for field in FIELDS {
        b.enter_split_field(field).await?;
        let shown = b
            .js(
                "return ['number', 'expiry', 'cvc', 'name', 'postalCode'].filter(function (id) { return document.getElementById(id).offsetParent !== null; });",
                vec![],
            )
            .await?;
        ensure!(shown == json!([field]), "the {field} frame shows {shown}");
    }
    let ready = field_events(b, "ready").await?;
    ensure!(ready.len() == 3, "one ready per field element: {ready:?}");

    // One typing run: the focus moves number → expiry → CVC across the frames.
    b.enter_split_field("number").await?;
    b.client.find(Locator::Id("number")).await?.click().await?;
    b.type_keys(VISA).await?;
    wait_focus_in(b, "expiry").await?;
    b.type_keys("1230").await?;
    ensure!(value_of(b, "expiry").await? == "12 / 30", "expiry shown as {:?}", value_of(b, "expiry").await?);
    wait_focus_in(b, "cvc").await?;
    b.type_keys(CVC).await?;
    b.press(None, e2e::Key::Escape).await?;
    b.leave_frame().await?;
    b.client.find(Locator::Id("email")).await?.click().await?;
    let escape = field_events(b, "escape").await?;
    ensure!(escape == [json!(["cvc", { "field": "cvc" }])], "escape events per field element: {escape:?}");
    let state = b
        .wait_change(
            "the merged state of a complete card",
            "s.complete === true && s.brand === 'visa' && s.bin === '42424242' && s.last4 === '4242' && s.fields.expiry.valid && s.fields.cvc.valid && s.error === null",
        )
        .await?;
    ensure!(state["fields"].as_object().map(|f| f.len()) == Some(3), "merged fields: {state}");
    let st = b.js("return window.__demo.card.state();", vec![]).await?;
    ensure!(st["complete"] == true && st["brand"] == "visa", "card.state(): {st}");
    // Per-field events: each field element hears its own field only.
    for kind in ["focus", "blur"] {
        let events = field_events(b, kind).await?;
        for field in FIELDS {
            ensure!(
                events.contains(&json!([field, { "field": field }])),
                "no {kind} on the {field} element: {events:?}"
            );
        }
        ensure!(events.iter().all(|e| e[0] == e[1]["field"]), "{kind} events on the wrong element: {events:?}");
    }
    let changes = field_events(b, "change").await?;
    ensure!(
        changes.iter().any(|e| e[0] == "cvc" && e[1]["fields"]["cvc"]["valid"] == true),
        "the CVC element's change: {changes:?}"
    );
    // The page's container of each field carries that field's state classes.
    let classes = b.js("return ['number', 'expiry', 'cvc'].map(function (f) { return document.getElementById('card-' + f).className; });", vec![]).await?;
    ensure!(
        classes.as_array().is_some_and(|a| a.iter().all(|c| c.as_str().is_some_and(|c| c.contains("is-complete")))),
        "state classes: {classes}"
    );
    b.screenshot("split-fields").await?;

    let r = tokenize_outcome(b, "window.__demo.card").await?;
    let token = r["resolved"]["token"].as_str().unwrap_or_default().to_owned();
    ensure!(token.starts_with("tok_"), "tokenize(): {r}");
    ensure!(
        r["resolved"]["card"] == json!({ "brand": "visa", "last4": "4242", "expMonth": 12, "expYear": 2030 })
            && r["resolved"]["expiresAt"].as_str().is_some_and(|s| !s.is_empty()),
        "the token result is not the single frame's shape: {r}"
    );
    let url = format!("{}/v1/tokens/{token}", ctx.env.vault_url);
    let res = ctx.http.get(&url).bearer_auth(&ctx.env.secret_key).send().await?;
    let body: Value = res.json().await.unwrap_or(Value::Null);
    ensure!(body.to_string().contains("4242") && !body.to_string().contains(VISA), "token read back as {body}");
    // The CVC frame forgot the CVC (the leader told it); a second tokenize needs it again.
    b.enter_split_field("cvc").await?;
    b.wait_js("the CVC to empty", "return document.getElementById('cvc').value === '';", Duration::from_secs(5))
        .await?;
    b.leave_frame().await?;
    let second = tokenize_outcome(b, "window.__demo.card").await?;
    ensure!(
        second["rejected"]["code"] == "incomplete_cvc" && second["rejected"]["field"] == "cvc",
        "a second tokenize without the CVC: {second}"
    );
    let seen = assert_no_secrets(b, VISA, CVC).await?;
    ensure!(seen > 10, "the recorder saw only {seen} messages");
    // The keyboard: Tab and Shift+Tab move between the field frames in the page's order.
    b.enter_split_field("number").await?;
    b.client.find(Locator::Id("number")).await?.click().await?;
    b.press(None, e2e::Key::Tab).await?;
    wait_focus_in(b, "expiry").await?;
    b.press(None, e2e::Key::Tab).await?;
    wait_focus_in(b, "cvc").await?;
    b.press(Some(e2e::Key::Shift), e2e::Key::Tab).await?;
    wait_focus_in(b, "expiry").await?;
    Ok(())
}

/// Split fields, trust: the page cannot listen to or speak on the group's channel (it is the
/// vault origin's), a message the page posts to a field frame in the channel's format is
/// ignored, the public API refuses mixing `mount()` and `field()`, and a card without its
/// CVC field does not tokenize.
pub(super) async fn split_fields_the_page_cannot_join_the_group_or_skip_a_field(ctx: &Ctx) -> anyhow::Result<()> {
    let b = &ctx.b;
    b.open_demo(&split_demo(ctx, "")).await?;
    // The page's own BroadcastChannel of the same name (what a fake field frame of the page's
    // origin would open), and forged peer messages posted into every field frame.
    b.js(
        "var src = document.querySelector('#card-number iframe').src; var g = src.split('&group=')[1]; \
         window.__spy = []; var bc = new BroadcastChannel('af-' + g); bc.onmessage = function (e) { window.__spy.push(JSON.stringify(e.data)); }; \
         bc.postMessage({ t: 2, n: 'page-nonce' }); \
         document.querySelectorAll('iframe').forEach(function (f) { f.contentWindow.postMessage({ t: 2, n: 'page-nonce' }, '*'); \
           f.contentWindow.postMessage({ t: 3, n: 'page-nonce', f: 'cvc', x: '000' }, '*'); }); return g;",
        vec![],
    )
    .await?;
    b.enter_split_field("number").await?;
    b.client.find(Locator::Id("number")).await?.click().await?;
    b.type_keys(VISA).await?;
    wait_focus_in(b, "expiry").await?;
    b.type_keys("1230").await?;
    wait_focus_in(b, "cvc").await?;
    b.type_keys(CVC).await?;
    b.leave_frame().await?;
    b.wait_change("complete", "s.complete === true").await?;
    let r = tokenize_outcome(b, "window.__demo.card").await?;
    ensure!(r["resolved"]["token"].as_str().is_some_and(|t| t.starts_with("tok_")), "tokenize(): {r}");
    let spy = b.js("return window.__spy;", vec![]).await?;
    ensure!(spy == json!([]), "the page's channel of the same name heard the card's frames: {spy}");
    assert_no_secrets(b, VISA, CVC).await?;

    // mount() and field() are exclusive on one card; a missing required field is reported.
    let out = b
        .js(
            "var key = document.querySelector('meta[name=\"altafinex-key\"]').content, out = {}; \
             var a = Altafinex.card({ key: key }); a.field('number'); \
             try { a.mount(document.body); out.mountAfterField = 'ok'; } catch (e) { out.mountAfterField = e.name; } \
             var c = Altafinex.card({ key: key }); c.mount('#nowhere').catch(function () {}); \
             try { c.field('cvc'); out.fieldAfterMount = 'ok'; } catch (e) { out.fieldAfterMount = e.name; } \
             try { a.field('pin'); out.unknown = 'ok'; } catch (e) { out.unknown = e.name; } \
             out.same = a.field('number') === a.field('number'); return out;",
            vec![],
        )
        .await?;
    ensure!(
        out == json!({ "mountAfterField": "TypeError", "fieldAfterMount": "TypeError", "unknown": "TypeError", "same": true }),
        "field()/mount() rules: {out}"
    );
    let r = b
        .js_async(
            "var done = arguments[arguments.length - 1]; var key = document.querySelector('meta[name=\"altafinex-key\"]').content; \
             var host = document.createElement('div'); document.getElementById('checkout').appendChild(host); \
             var c = Altafinex.card({ key: key }); Promise.all([c.field('number').mount(host), c.field('expiry').mount(host)]).then(function () { \
               return c.tokenize(); }).then(function (r) { done({ resolved: r }); }, function (e) { done({ rejected: e }); });",
            vec![],
        )
        .await?;
    ensure!(
        r["rejected"]["code"] == "incomplete_cvc" && r["rejected"]["field"] == "cvc",
        "a card without a CVC field: {r}"
    );
    Ok(())
}

/// Browser autofill across the field frames, driven the closest way a test can: the DevTools
/// Protocol's `Autofill.trigger` (Chromium fills the form as if the cardholder had picked a
/// saved card in the number field's popup). Chromium's own cross-frame filling must fill the
/// expiry and CVC frames too, all at once; every field element reports `autofill`; the card
/// tokenizes; the page received no card data.
///
/// chromedriver sends DevTools commands to the top page's session only, which does not reach
/// into out-of-process frames: this scenario's own Chromium session renders cross-site frames in
/// the page's process (`--disable-site-isolation-trials`), so the number input's node id can be
/// read. Autofill's decisions (one form across the frames, same-origin filling) are made in the
/// browser process either way; `scripts/autofill-probe.py` shows the same filling with site
/// isolation on, over a raw DevTools connection.
pub(super) async fn split_fields_autofill_fills_every_field_frame_at_once(ctx: &Ctx) -> anyhow::Result<()> {
    let b = ctx.env.browser_with_args(&["--disable-site-isolation-trials"]).await?;
    let outcome = autofill_in(ctx, &b).await;
    let _ = b.close().await;
    outcome
}

async fn autofill_in(ctx: &Ctx, b: &Browser) -> anyhow::Result<()> {
    b.open_demo(&split_demo(ctx, "?postal=1")).await?;
    b.leave_frame().await?;
    let (frame_id, node) = autofill_anchor(b, "number").await?;
    let card = json!({ "number": VISA, "name": "Jane Q Doe", "expiryMonth": "12", "expiryYear": "2030", "cvc": CVC });
    b.cdp("Autofill.trigger", json!({ "fieldId": node, "frameId": frame_id, "card": card }))
        .await
        .context("Autofill.trigger on the number frame's input")?;
    let state = b
        .wait_change(
            "every split field filled by one autofill",
            "s.fields.number.autofilled && s.fields.expiry.autofilled && s.fields.cvc.autofilled && s.fields.number.valid && s.fields.expiry.valid && s.fields.cvc.valid",
        )
        .await;
    let autofill = field_events(b, "autofill").await?;
    let state = state.with_context(|| format!("autofill events per field element: {autofill:?}"))?;
    for field in FIELDS {
        ensure!(autofill.contains(&json!([field, { "field": field }])), "no autofill event on {field}: {autofill:?}");
    }
    ensure!(state["brand"] == "visa", "state after autofill: {state}");
    b.enter_split_field("expiry").await?;
    ensure!(value_of(b, "expiry").await? == "12 / 30", "autofilled expiry: {:?}", value_of(b, "expiry").await?);
    b.enter_split_field("cvc").await?;
    ensure!(value_of(b, "cvc").await? == "\u{2022}\u{2022}\u{2022}", "the autofilled CVC is not masked");
    b.leave_frame().await?;
    // The postal code frame (a billing address field) is not part of a card profile.
    b.enter_split_field("postalCode").await?;
    let postal = value_of(b, "postalCode").await?;
    b.leave_frame().await?;
    eprintln!("    autofill: number, expiry, cvc filled across frames; postal code {postal:?}");
    if postal.is_empty() {
        b.enter_split_field("postalCode").await?;
        b.client.find(Locator::Id("postalCode")).await?.click().await?;
        b.type_keys("10115").await?;
        b.leave_frame().await?;
    }
    b.wait_change("complete", "s.complete === true").await?;
    let r = tokenize_outcome(b, "window.__demo.card").await?;
    ensure!(r["resolved"]["card"]["last4"] == "4242", "tokenize after autofill: {r}");
    assert_no_secrets(b, VISA, CVC).await?;
    b.screenshot("split-fields-autofilled").await?;
    Ok(())
}

/// The frame id and the backend node id of a field's input inside its split-field frame, for
/// `Autofill.trigger`: the iframe element's `frameId` from the page's DOM, the input from the
/// frame's document (with `pierce`, which reaches into a frame only when it is rendered in the
/// page's process; see docs/split-fields.md for how the test gets there).
async fn autofill_anchor(b: &Browser, field: &str) -> anyhow::Result<(String, u64)> {
    let doc = b.cdp("DOM.getDocument", json!({ "depth": -1, "pierce": true })).await?;
    let mut iframes = Vec::new();
    collect_iframes(&doc["root"], &mut iframes);
    let host = format!("card-{field}");
    for (parent_id, frame) in iframes {
        if parent_id != host {
            continue;
        }
        let frame_id = frame["frameId"].as_str().unwrap_or_default().to_owned();
        let Some(node) = find_by_id(&frame["contentDocument"], field) else {
            bail!(
                "the {field} frame's document is not in the page's DOM tree (an out-of-process frame?): {}",
                frame.get("contentDocument").is_some()
            );
        };
        return Ok((frame_id, node));
    }
    bail!("no iframe under #{host} in the DevTools DOM")
}

/// Every IFRAME node with the id of the element it sits in.
fn collect_iframes(node: &Value, out: &mut Vec<(String, Value)>) {
    let id = attribute(node, "id");
    for child in node["children"].as_array().into_iter().flatten() {
        if child["nodeName"] == "IFRAME" {
            out.push((id.clone().unwrap_or_default(), child.clone()));
        }
        collect_iframes(child, out);
    }
    if let Some(doc) = node.get("contentDocument") {
        collect_iframes(doc, out);
    }
}

fn attribute(node: &Value, name: &str) -> Option<String> {
    let attrs = node["attributes"].as_array()?;
    attrs
        .chunks(2)
        .find(|kv| kv.first().and_then(Value::as_str) == Some(name))
        .and_then(|kv| kv.get(1)?.as_str().map(str::to_owned))
}

fn find_by_id(node: &Value, id: &str) -> Option<u64> {
    if attribute(node, "id").as_deref() == Some(id) && node["nodeName"] == "INPUT" {
        return node["backendNodeId"].as_u64();
    }
    node["children"].as_array().into_iter().flatten().find_map(|c| find_by_id(c, id))
}

/// Split fields reuse the single frame's files: on a cold cache the three field frames download
/// the glue and the WASM once between them (Chromium's HTTP cache lets the other frames wait
/// for the first download and read it from the cache), and each frame's document is the single
/// frame's page. Prints what each frame downloaded (BENCHMARKS.md).
pub(super) async fn split_fields_download_the_frame_files_once(ctx: &Ctx) -> anyhow::Result<()> {
    let b = &ctx.b;
    b.client.goto("about:blank").await?;
    b.cdp("Network.clearBrowserCache", json!({})).await?;
    b.open_demo(&split_demo(ctx, "")).await?;
    let mut wire = json!({});
    for field in FIELDS {
        b.enter_split_field(field).await?;
        let entries = b
            .js(
                "var pick = function (e) { return [e.name.split('/').pop().split('?')[0].replace(/-[0-9a-f]+(_bg)?\\./, '$1.'), e.transferSize]; }; \
                 return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).map(pick);",
                vec![],
            )
            .await?;
        wire[field] = entries;
    }
    b.leave_frame().await?;
    eprintln!("    split fields, cold: {wire}");
    for kind in ["frame.js", "frame_bg.wasm"] {
        let downloads: Vec<u64> = FIELDS
            .iter()
            .flat_map(|f| wire[*f].as_array().cloned().unwrap_or_default())
            .filter(|e| e[0] == kind)
            .filter_map(|e| e[1].as_u64())
            .filter(|size| *size > 1000)
            .collect();
        ensure!(
            downloads.len() == 1,
            "{kind} was downloaded {} times by the three field frames: {wire}",
            downloads.len()
        );
    }
    Ok(())
}
