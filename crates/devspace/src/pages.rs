//! The HTML of every page (maud: escaped by construction). No inline script or style: the CSP
//! allows only `/assets/devspace.css` and `/assets/devspace.js`. Every page has a skip link,
//! one `main` landmark with one `h1`, labelled navigation, and every input a `label`; errors
//! are tied to their field with `aria-describedby` and summarised in a `role="alert"` box.

use maud::{DOCTYPE, Markup, html};

use crate::backend::{
    AlertRecord, AuditRow, EndpointView, EventView, KeyView, PaymentView, RefundView, TokenView, UserRecord,
};
use crate::policy::{Action, Role, allows};

/// The signed-in user, as the page chrome needs it.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    /// Email.
    pub email: &'a str,
    /// Role.
    pub role: Role,
    /// CSRF token for the forms on the page.
    pub csrf: &'a str,
}

const NAV: &[(&str, &str)] = &[
    ("/keys", "API keys"),
    ("/payments", "Payments"),
    ("/tokens", "Tokens"),
    ("/webhooks", "Webhooks"),
    ("/audit", "Audit log"),
    ("/alerts", "Security alerts"),
    ("/users", "People"),
];

/// Wraps `body` in the page chrome. `path` marks the current navigation entry.
pub fn layout(title: &str, path: &str, viewer: Option<Viewer<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Altafinex Dev Space" }
                link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/assets/devspace.css";
                script src="/assets/devspace.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    p.brand { "Altafinex Dev Space" }
                    @if let Some(v) = viewer {
                        nav aria-label="Main" {
                            ul {
                                @for (href, label) in NAV {
                                    li { a href=(href) aria-current=[(path == *href).then_some("page")] { (label) } }
                                }
                            }
                        }
                        div.who {
                            span { (v.email) " · " (v.role.as_str()) }
                            form method="post" action="/sign-out" {
                                input type="hidden" name="csrf" value=(v.csrf);
                                button type="submit" { "Sign out" }
                            }
                            form method="post" action="/sign-out-everywhere" {
                                input type="hidden" name="csrf" value=(v.csrf);
                                button type="submit" { "Sign out everywhere" }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A labelled input with its error message.
pub fn field(label: &str, name: &str, kind: &str, value: &str, autocomplete: &str, error: Option<&str>) -> Markup {
    let err_id = format!("{name}-error");
    html! {
        div.field {
            label for=(name) { (label) }
            input id=(name) name=(name) type=(kind) value=(value) autocomplete=(autocomplete)
                aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| err_id.as_str())];
            @if let Some(e) = error { p.error id=(err_id) { (e) } }
        }
    }
}

/// A summary of the form's errors, announced to screen readers.
pub fn error_box(errors: &[(&str, String)]) -> Markup {
    html! {
        @if !errors.is_empty() {
            div.errors role="alert" {
                p { "Please fix the following:" }
                ul { @for (name, msg) in errors { li { a href={ "#" (name) } { (msg) } } } }
            }
        }
    }
}

fn err<'a>(errors: &'a [(&str, String)], name: &str) -> Option<&'a str> {
    errors.iter().find(|(n, _)| *n == name).map(|(_, m)| m.as_str())
}

/// A value shown once (a new secret, an invitation link) with a copy button.
fn shown_once(heading: &str, note: &str, value: &str) -> Markup {
    html! {
        section.created aria-labelledby="shown-once-h" {
            h2 id="shown-once-h" { (heading) }
            p { (note) }
            p { code.secret id="new-secret" { (value) } " " button type="button" data-copy="new-secret" { "Copy" } }
        }
    }
}

/// The mode choice of a create form (live only when `live` is allowed).
fn mode_choice(live: bool) -> Markup {
    html! {
        fieldset {
            legend { "Mode" }
            label { input type="radio" name="mode" value="test" checked; " Test" }
            @if live { label.live { input type="radio" name="mode" value="live"; " Live" } }
        }
    }
}

/// The sign-in form.
pub fn sign_in(csrf: &str, email: &str, errors: &[(&str, String)]) -> Markup {
    layout(
        "Sign in",
        "/sign-in",
        None,
        html! {
            (error_box(errors))
            form method="post" action="/sign-in" {
                input type="hidden" name="csrf" value=(csrf);
                (field("Email", "email", "email", email, "username", err(errors, "email")))
                (field("Password", "password", "password", "", "current-password", err(errors, "password")))
                button type="submit" { "Continue" }
            }
        },
    )
}

/// The second-factor form (sign-in or re-authentication).
pub fn code_form(title: &str, action: &str, csrf: &str, with_password: bool, errors: &[(&str, String)]) -> Markup {
    layout(
        title,
        action,
        None,
        html! {
            (error_box(errors))
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                @if with_password {
                    (field("Password", "password", "password", "", "current-password", err(errors, "password")))
                }
                (field("Authentication code (6 digits) or a recovery code", "code", "text", "", "one-time-code", err(errors, "code")))
                button type="submit" { "Confirm" }
            }
        },
    )
}

/// The set-password form of a one-time link.
pub fn set_password(csrf: &str, token: &str, email: &str, errors: &[(&str, String)]) -> Markup {
    layout(
        "Choose your password",
        "/welcome",
        None,
        html! {
            p { "For " strong { (email) } ". At least 12 characters; a passphrase works well." }
            (error_box(errors))
            form method="post" action="/welcome" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="token" value=(token);
                (field("New password", "password", "password", "", "new-password", err(errors, "password")))
                (field("Repeat the password", "confirm", "password", "", "new-password", err(errors, "confirm")))
                button type="submit" { "Set password" }
            }
        },
    )
}

/// TOTP enrolment: the secret to type or import, and a code to confirm.
pub fn enrol(csrf: &str, secret_base32: &str, uri: &str, errors: &[(&str, String)]) -> Markup {
    layout(
        "Set up your authenticator",
        "/enrol",
        None,
        html! {
            p { "Add this account to an authenticator app (TOTP, 6 digits, 30 seconds), then type the code it shows." }
            dl {
                dt { "Setup key" } dd { code.secret { (secret_base32) } }
                dt { "Or import this URI" } dd { code.secret { (uri) } }
            }
            (error_box(errors))
            form method="post" action="/enrol" {
                input type="hidden" name="csrf" value=(csrf);
                (field("Authentication code", "code", "text", "", "one-time-code", err(errors, "code")))
                button type="submit" { "Confirm" }
            }
        },
    )
}

/// The recovery codes, shown once after enrolment.
pub fn recovery_codes(viewer: Viewer<'_>, codes: &[&str]) -> Markup {
    layout(
        "Save your recovery codes",
        "/enrol",
        Some(viewer),
        html! {
            p { "Each code signs you in once if you lose your authenticator. They are shown only now: store them somewhere safe." }
            ul.codes { @for c in codes { li { code { (c) } } } }
            p { a href="/keys" { "Continue to API keys" } }
        },
    )
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC`.
pub fn fmt_time(ts: i64) -> String {
    let (days, secs) = (ts.div_euclid(86_400), ts.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", secs / 3600, secs % 3600 / 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What the keys page shows besides the list.
#[derive(Debug, Default)]
pub struct KeysExtras<'a> {
    /// A key just created: its secret, shown this once.
    pub created: Option<(&'a KeyView, &'a str)>,
    /// A confirmation line.
    pub notice: Option<&'a str>,
    /// Form errors.
    pub errors: &'a [(&'a str, String)],
}

fn key_unused(k: &KeyView, now: i64, unused_days: i64) -> bool {
    k.status == "active" && now - k.last_used.unwrap_or(k.created) >= unused_days * 86_400
}

/// The API keys page.
pub fn keys(viewer: Viewer<'_>, list: &[KeyView], now: i64, unused_days: i64, extras: &KeysExtras<'_>) -> Markup {
    let manage = allows(viewer.role, Action::ManageKeys);
    let edit_allowlist = allows(viewer.role, Action::EditAllowlist);
    let create_test = allows(viewer.role, Action::CreateTestKey);
    let create_live = allows(viewer.role, Action::CreateLiveKey);
    layout(
        "API keys",
        "/keys",
        Some(viewer),
        html! {
            @if let Some(n) = extras.notice { p.notice role="status" { (n) } }
            @if let Some((k, secret)) = extras.created {
                (shown_once(&format!("New key {}", k.prefix), "Copy the secret now: it is shown only once and cannot be retrieved later.", secret))
            }
            (error_box(extras.errors))
            table {
                caption { "Keys of this account. Keys unused for " (unused_days) " days or more are flagged." }
                thead { tr {
                    th scope="col" { "Key" } th scope="col" { "Mode" } th scope="col" { "Kind / role" }
                    th scope="col" { "Origins / IP allowlist" } th scope="col" { "Created" }
                    th scope="col" { "Last used" } th scope="col" { "Status" } th scope="col" { "Actions" }
                } }
                tbody {
                    @for k in list {
                        tr class={ "mode-" (k.mode) } {
                            th scope="row" { code { (k.prefix) } br; small { (k.label) } }
                            td { span class={ "badge " (k.mode) } { (k.mode.to_uppercase()) } }
                            td { (k.kind) @if let Some(r) = &k.role { " / " (r) } }
                            td {
                                @if k.kind == "publishable" {
                                    @if k.origins.is_empty() { "no origins" } @else { (k.origins.join(", ")) }
                                } @else {
                                    @if k.ip_allowlist.is_empty() { "any address" } @else { (k.ip_allowlist.join(", ")) }
                                    @if edit_allowlist && k.status == "active" {
                                        details {
                                            summary { "Edit allowlist" }
                                            form method="post" action={ "/keys/" (k.id) "/allowlist" } {
                                                input type="hidden" name="csrf" value=(viewer.csrf);
                                                label for={ "allow-" (k.id) } { "Addresses or CIDR blocks, one per line" }
                                                textarea id={ "allow-" (k.id) } name="entries" rows="3" { (k.ip_allowlist.join("\n")) }
                                                button type="submit" { "Save allowlist" }
                                            }
                                        }
                                    }
                                }
                            }
                            td { (fmt_time(k.created)) }
                            td {
                                @match k.last_used { Some(t) => (fmt_time(t)), None => "never" }
                                @if let Some(ip) = &k.last_used_ip { br; small { "from " (ip) } }
                            }
                            td {
                                (k.status)
                                @if key_unused(k, now, unused_days) { br; span.badge.unused { "unused " (unused_days) "+ days" } }
                            }
                            td {
                                @if manage && k.status == "active" {
                                    form method="post" action={ "/keys/" (k.id) "/revoke" } {
                                        input type="hidden" name="csrf" value=(viewer.csrf);
                                        button type="submit" class={ "danger " (k.mode) } aria-label={ "Disable " (k.prefix) } {
                                            @if key_unused(k, now, unused_days) { "Disable unused key" } @else { "Revoke" }
                                        }
                                    }
                                    details {
                                        summary { "Rotate" }
                                        form method="post" action={ "/keys/" (k.id) "/rotate" } {
                                            input type="hidden" name="csrf" value=(viewer.csrf);
                                            label for={ "overlap-" (k.id) } { "Old key keeps working" }
                                            select id={ "overlap-" (k.id) } name="overlap" {
                                                option value="0" { "stops now" }
                                                option value="3600" selected { "1 hour" }
                                                option value="86400" { "1 day" }
                                                option value="604800" { "7 days" }
                                            }
                                            button type="submit" class=(k.mode) { "Rotate " (k.prefix) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if create_test {
                section aria-labelledby="create-h" {
                    h2 id="create-h" { "Create a key" }
                    p { "You will be asked to confirm your password and code before the secret is shown." }
                    form method="post" action="/keys" {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        (mode_choice(create_live))
                        fieldset {
                            legend { "Kind" }
                            label { input type="radio" name="kind" value="secret" checked; " Secret (server)" }
                            label { input type="radio" name="kind" value="publishable"; " Publishable (checkout page)" }
                        }
                        div.field {
                            label for="role" { "Role (secret keys)" }
                            select id="role" name="role" {
                                option value="read_only" { "read_only" }
                                option value="payments" { "payments" }
                                @if allows(viewer.role, Action::ManageKeys) { option value="admin" { "admin" } }
                            }
                        }
                        (field("Label", "label", "text", "", "off", err(extras.errors, "label")))
                        div.field {
                            label for="origins" { "Allowed origins (publishable keys), one per line" }
                            textarea id="origins" name="origins" rows="2" {}
                        }
                        div.field {
                            label for="ip_allowlist" { "IP allowlist (secret keys), one per line" }
                            textarea id="ip_allowlist" name="ip_allowlist" rows="2" {}
                        }
                        button type="submit" { "Create key" }
                    }
                }
            }
        },
    )
}

/// The audit log page.
pub fn audit(
    viewer: Viewer<'_>,
    filters: &[(&str, &str, String)],
    query_string: &str,
    rows: &[AuditRow],
    errors: &[(&str, String)],
) -> Markup {
    layout(
        "Audit log",
        "/audit",
        Some(viewer),
        html! {
            (error_box(errors))
            form method="get" action="/audit" {
                @for (name, label, value) in filters {
                    (field(label, name, "text", value, "off", err(errors, name)))
                }
                button type="submit" { "Filter" }
            }
            p { a href={ "/audit.csv" (query_string) } download { "Export these rows as CSV" } }
            table {
                caption { "Newest first." }
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "Event" } th scope="col" { "Outcome" }
                    th scope="col" { "Who" } th scope="col" { "Key" } th scope="col" { "Address" } th scope="col" { "Detail" }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            td { (fmt_time(r.ts)) } td { (r.event) } td { (r.outcome) }
                            td { (r.actor.as_deref().unwrap_or("API")) }
                            td { (r.key_id.as_deref().unwrap_or("")) } td { (r.ip.as_deref().unwrap_or("")) }
                            td { code { (r.detail) } }
                        }
                    }
                }
            }
        },
    )
}

/// What the people page shows besides the list.
#[derive(Debug, Default)]
pub struct UsersExtras<'a> {
    /// An invitation just made: (email, link), shown this once.
    pub invited: Option<(&'a str, &'a str)>,
    /// A confirmation line.
    pub notice: Option<&'a str>,
    /// Form errors.
    pub errors: &'a [(&'a str, String)],
}

/// The people page: the merchant's users, invitations and roles.
pub fn users(viewer: Viewer<'_>, list: &[UserRecord], extras: &UsersExtras<'_>) -> Markup {
    let manage = allows(viewer.role, Action::ManageUsers);
    let assignable: Vec<Role> =
        Role::ALL.into_iter().filter(|r| *r != Role::Owner || viewer.role == Role::Owner).collect();
    layout(
        "People",
        "/users",
        Some(viewer),
        html! {
            @if let Some(n) = extras.notice { p.notice role="status" { (n) } }
            @if let Some((email, link)) = extras.invited {
                (shown_once(&format!("Invitation for {email}"), "Send this link to them yourself: it is shown only once, works once and expires in 72 hours.", link))
            }
            (error_box(extras.errors))
            table {
                caption { "People who can sign in to this account." }
                thead { tr {
                    th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Two-step verification" }
                    th scope="col" { "Added" } @if manage { th scope="col" { "Change role" } }
                } }
                tbody {
                    @for u in list {
                        tr {
                            th scope="row" { (u.email) }
                            td { (u.role.as_str()) }
                            td { @if u.totp_enrolled { "on" } @else { "not set up yet" } }
                            td { (fmt_time(u.created)) }
                            @if manage {
                                td {
                                    @if u.role != Role::Owner || viewer.role == Role::Owner {
                                        form method="post" action={ "/users/" (u.id) "/role" } {
                                            input type="hidden" name="csrf" value=(viewer.csrf);
                                            label for={ "role-" (u.id) } { "Role of " (u.email) }
                                            select id={ "role-" (u.id) } name="role" {
                                                @for r in &assignable {
                                                    option value=(r.as_str()) selected[*r == u.role] { (r.as_str()) }
                                                }
                                            }
                                            button type="submit" { "Save" }
                                        }
                                        @if u.email != viewer.email {
                                            form method="post" action={ "/users/" (u.id) "/remove" } {
                                                input type="hidden" name="csrf" value=(viewer.csrf);
                                                button type="submit" class="danger" aria-label={ "Remove " (u.email) } { "Remove access" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if manage {
                section aria-labelledby="invite-h" {
                    h2 id="invite-h" { "Invite someone" }
                    form method="post" action="/users" {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        (field("Email", "email", "email", "", "off", err(extras.errors, "email")))
                        div.field {
                            label for="invite-role" { "Role" }
                            select id="invite-role" name="role" {
                                @for r in &assignable { option value=(r.as_str()) selected[*r == Role::Viewer] { (r.as_str()) } }
                            }
                        }
                        button type="submit" { "Create invitation link" }
                    }
                }
            }
        },
    )
}

/// An amount in minor units with its currency, e.g. `12.50 EUR` (two decimals; zero-decimal
/// currencies are shown in minor units, which is what they are).
pub fn fmt_amount(amount: i64, currency: &str) -> String {
    const ZERO_DECIMAL: &[&str] = &["jpy", "krw", "vnd", "clp", "isk", "xaf", "xof", "ugx", "pyg", "rwf"];
    let code = currency.to_uppercase();
    if ZERO_DECIMAL.contains(&currency) {
        return format!("{amount} {code}");
    }
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    format!("{sign}{}.{:02} {code}", abs / 100, abs % 100)
}

/// The payments page of one mode.
pub fn payments(viewer: Viewer<'_>, mode: &str, list: &[PaymentView], refunds: &[RefundView]) -> Markup {
    layout(
        "Payments",
        "/payments",
        Some(viewer),
        html! {
            (mode_tabs("/payments", mode))
            p { "Cards are shown masked (brand and last 4 digits); Dev Space never holds more." }
            table {
                caption { "Payments, newest first (" (mode) " mode)." }
                thead { tr {
                    th scope="col" { "Payment" } th scope="col" { "Status" } th scope="col" { "Amount" }
                    th scope="col" { "Captured" } th scope="col" { "Refunded" } th scope="col" { "Card" } th scope="col" { "Created" }
                } }
                tbody {
                    @for p in list {
                        tr class={ "mode-" (p.mode) } {
                            th scope="row" { code { (p.id) } }
                            td { (p.status) } td { (fmt_amount(p.amount, &p.currency)) }
                            td { (fmt_amount(p.amount_captured, &p.currency)) } td { (fmt_amount(p.amount_refunded, &p.currency)) }
                            td { (p.card) } td { (fmt_time(p.created)) }
                        }
                    }
                }
            }
            @if list.is_empty() { p { "No payments in " (mode) " mode yet." } }
            h2 { "Refunds" }
            table {
                caption { "Refunds, newest first (" (mode) " mode)." }
                thead { tr {
                    th scope="col" { "Refund" } th scope="col" { "Payment" } th scope="col" { "Status" }
                    th scope="col" { "Amount" } th scope="col" { "Created" }
                } }
                tbody {
                    @for r in refunds {
                        tr {
                            th scope="row" { code { (r.id) } } td { code { (r.payment_id) } } td { (r.status) }
                            td { (fmt_amount(r.amount, &r.currency)) } td { (fmt_time(r.created)) }
                        }
                    }
                }
            }
        },
    )
}

/// What the webhook endpoints page shows besides the list.
#[derive(Debug, Default)]
pub struct WebhooksExtras<'a> {
    /// A secret just made (new endpoint or rotation): heading and secret, shown once.
    pub secret: Option<(&'a str, &'a str)>,
    /// A confirmation.
    pub notice: Option<&'a str>,
    /// Form errors.
    pub errors: &'a [(&'a str, String)],
}

/// The webhook endpoints page.
pub fn webhooks(viewer: Viewer<'_>, list: &[EndpointView], extras: &WebhooksExtras<'_>) -> Markup {
    let manage = allows(viewer.role, Action::ManageWebhooks);
    layout(
        "Webhook endpoints",
        "/webhooks",
        Some(viewer),
        html! {
            p { "Endpoints receive signed events, including " code { "security.alert" } ". Secrets are shown once, when made." }
            p { a href="/webhooks/events" { "Events, delivery attempts and resending" } }
            @if let Some(n) = extras.notice { p.notice role="status" { (n) } }
            @if let Some((heading, secret)) = extras.secret {
                (shown_once(heading, "Copy the signing secret now: it is shown only once.", secret))
            }
            (error_box(extras.errors))
            table {
                caption { "Endpoints of both modes." }
                thead { tr {
                    th scope="col" { "URL" } th scope="col" { "Mode" } th scope="col" { "Events" }
                    th scope="col" { "Status" } th scope="col" { "Created" }
                    @if manage { th scope="col" { "Actions" } }
                } }
                tbody {
                    @for e in list {
                        tr class={ "mode-" (e.mode) } {
                            th scope="row" { code { (e.url) } br; small { (e.id) } }
                            td { span class={ "badge " (e.mode) } { (e.mode.to_uppercase()) } }
                            td { (e.events.join(", ")) }
                            td {
                                (e.status)
                                @if let Some(t) = e.failing_since { br; span.badge.unused { "failing since " (fmt_time(t)) } }
                            }
                            td { (fmt_time(e.created)) }
                            @if manage {
                                td {
                                    details {
                                        summary { "Rotate secret" }
                                        form method="post" action={ "/webhooks/" (e.id) "/rotate" } {
                                            input type="hidden" name="csrf" value=(viewer.csrf);
                                            label for={ "overlap-" (e.id) } { "Old secret keeps signing" }
                                            select id={ "overlap-" (e.id) } name="overlap" {
                                                option value="0" { "stops now" }
                                                option value="3600" { "1 hour" }
                                                option value="86400" selected { "1 day" }
                                                option value="604800" { "7 days" }
                                            }
                                            button type="submit" class=(e.mode) aria-label={ "Rotate the secret of " (e.id) } { "Rotate secret" }
                                        }
                                    }
                                    form method="post" action={ "/webhooks/" (e.id) "/delete" } {
                                        input type="hidden" name="csrf" value=(viewer.csrf);
                                        button type="submit" class={ "danger " (e.mode) } aria-label={ "Delete " (e.id) } { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if list.is_empty() { p { "No webhook endpoints yet." } }
            @if manage {
                section aria-labelledby="create-endpoint-h" {
                    h2 id="create-endpoint-h" { "Add an endpoint" }
                    p { "You will be asked to confirm your password and code before the secret is shown." }
                    form method="post" action="/webhooks" {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        (mode_choice(true))
                        (field("URL (https://)", "url", "url", "", "off", err(extras.errors, "url")))
                        (field("Event types, comma-separated (* for all)", "events", "text", "security.alert", "off", err(extras.errors, "events")))
                        button type="submit" { "Add endpoint" }
                    }
                }
            }
        },
    )
}

/// The tokens page of one mode: metadata only (never a card number). `older` is the link to
/// the next page, when there is one.
pub fn tokens(viewer: Viewer<'_>, mode: &str, list: &[TokenView], now: i64, older: Option<&str>) -> Markup {
    layout(
        "Tokens",
        "/tokens",
        Some(viewer),
        html! {
            (mode_tabs("/tokens", mode))
            p { "Token metadata only: brand, last 4 digits, expiry and fingerprint. Card numbers never leave the vault's encrypted storage." }
            table {
                caption { "Tokens, newest first (" (mode) " mode)." }
                thead { tr {
                    th scope="col" { "Token" } th scope="col" { "Card" } th scope="col" { "Card expiry" }
                    th scope="col" { "Created" } th scope="col" { "Token expires" } th scope="col" { "Fingerprint" }
                } }
                tbody {
                    @for t in list {
                        tr class={ "mode-" (t.mode) } {
                            th scope="row" { code { (t.id) } }
                            td { (t.brand) " •••• " (t.last4) }
                            td { (format!("{:02}/{:04}", t.exp_month, t.exp_year)) }
                            td { (fmt_time(t.created)) }
                            td {
                                (fmt_time(t.expires_at))
                                @if t.expires_at <= now { br; span.badge.unused { "expired" } }
                            }
                            td { code { (t.fingerprint) } }
                        }
                    }
                }
            }
            @if list.is_empty() { p { "No tokens in " (mode) " mode." } }
            @if let Some(href) = older { p { a href=(href) { "Older tokens" } } }
        },
    )
}

/// The events of one mode with their delivery attempts, and a resend button.
pub fn events(viewer: Viewer<'_>, mode: &str, list: &[EventView], notice: Option<&str>) -> Markup {
    let manage = allows(viewer.role, Action::ManageWebhooks);
    layout(
        "Events and deliveries",
        "/webhooks",
        Some(viewer),
        html! {
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            (mode_tabs("/webhooks/events", mode))
            table {
                caption { "Newest events (" (mode) " mode) and every delivery attempt." }
                thead { tr {
                    th scope="col" { "Event" } th scope="col" { "Type" } th scope="col" { "Created" }
                    th scope="col" { "Attempts (endpoint: status)" } @if manage { th scope="col" { "Resend" } }
                } }
                tbody {
                    @for e in list {
                        tr {
                            th scope="row" { code { (e.id) } }
                            td { (e.event_type) } td { (fmt_time(e.created)) }
                            td {
                                @if e.attempts.is_empty() { "none yet" }
                                ul { @for (endpoint, outcome, t) in &e.attempts { li { (endpoint) ": " (outcome) " at " (fmt_time(*t)) } } }
                            }
                            @if manage {
                                td {
                                    form method="post" action={ "/webhooks/events/" (e.id) "/resend?mode=" (mode) } {
                                        input type="hidden" name="csrf" value=(viewer.csrf);
                                        button type="submit" aria-label={ "Resend " (e.id) } { "Resend" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if list.is_empty() { p { "No events in " (mode) " mode yet." } }
        },
    )
}

/// Test / live tabs linking to `path?mode=…`.
fn mode_tabs(path: &str, mode: &str) -> Markup {
    html! {
        nav aria-label="Mode" {
            ul.tabs {
                @for m in ["test", "live"] {
                    li { a href={ (path) "?mode=" (m) } aria-current=[(m == mode).then_some("page")] class={ "badge " (m) } { (m.to_uppercase()) } }
                }
            }
        }
    }
}

/// The alerts page.
pub fn alerts(viewer: Viewer<'_>, list: &[AlertRecord]) -> Markup {
    layout(
        "Security alerts",
        "/alerts",
        Some(viewer),
        html! {
            @if list.is_empty() { p { "No alerts." } }
            @else {
                ul.alerts {
                    @for a in list {
                        li { strong { (a.kind) } " · " (fmt_time(a.ts)) p { (a.message) } }
                    }
                }
            }
        },
    )
}

/// A page for errors and simple messages (leaks nothing internal).
pub fn message(title: &str, text: &str, link: Option<(&str, &str)>) -> Markup {
    layout(
        title,
        "",
        None,
        html! {
            p { (text) }
            @if let Some((href, label)) = link { p { a href=(href) { (label) } } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(fmt_time(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(days_from_civil(2023, 11, 14), 1_700_000_000 / 86_400);
        for d in [-1000, 0, 59, 60, 11_016, 20_000, 100_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn amounts() {
        assert_eq!(fmt_amount(1250, "eur"), "12.50 EUR");
        assert_eq!(fmt_amount(5, "usd"), "0.05 USD");
        assert_eq!(fmt_amount(-1250, "eur"), "-12.50 EUR");
        assert_eq!(fmt_amount(500, "jpy"), "500 JPY");
    }

    #[test]
    fn text_is_escaped() {
        let page = message("<b>", "<script>alert(1)</script>", None).into_string();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
    }
}
