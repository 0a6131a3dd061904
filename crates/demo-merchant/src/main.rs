//! `demo-merchant`: serves the demo checkout on its own origin. See the library docs.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use demo_merchant::{Config, LoaderPin, Secret, app, origin_of, payments, vault_client};

/// Demo merchant checkout server (a different origin from the vault).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port (the chosen URL is printed).
    #[arg(long, env = "DEMO_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// The vault's base URL, e.g. https://localhost:8443.
    #[arg(long, env = "VAULT_URL")]
    vault_url: String,
    /// The merchant's publishable key (pk_...), handed to the browser.
    #[arg(long, env = "DEMO_PUBLISHABLE_KEY")]
    publishable_key: String,
    /// The merchant's secret key (sk_...), used only by this server.
    #[arg(long, env = "DEMO_SECRET_KEY", hide_env_values = true)]
    secret_key: String,
    /// PEM file with the vault's (development) certificate to trust for server-side calls.
    #[arg(long, env = "VAULT_CA_CERT")]
    vault_ca_cert: Option<PathBuf>,
    /// Folder with the checkout page (index.html, demo.js, demo.css).
    #[arg(long, env = "DEMO_STATIC_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../static/demo"))]
    static_dir: PathBuf,
    /// Versioned loader path to pin (`/v1/loader.<version>.js`, the `url` of the vault's
    /// `/v1/loader-manifest.json`); default: read from the manifest once.
    #[arg(long, env = "DEMO_LOADER_URL", requires = "loader_integrity")]
    loader_url: Option<String>,
    /// SRI value of that loader (`sha384-…`, the manifest's `integrity`).
    #[arg(long, env = "DEMO_LOADER_INTEGRITY", requires = "loader_url")]
    loader_integrity: Option<String>,
    /// A secret key with the payments role (sk_...): turns on charging, refunds and webhooks.
    #[arg(long, env = "DEMO_PAYMENTS_KEY", hide_env_values = true)]
    payments_key: Option<String>,
    /// A secret key with the admin role (sk_...), used once at start to register this server's
    /// `/webhooks` as a webhook endpoint (the signing secret stays in memory).
    #[arg(long, env = "DEMO_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Folder served under `/pkg/` for the React checkout `react.html`: web/package/dist plus
    /// React's UMD builds (scripts/demo.sh assembles it).
    #[arg(long, env = "DEMO_PACKAGE_DIR")]
    package_dir: Option<PathBuf>,
    /// The URL the vault delivers webhooks to; default `http://<listen address>/webhooks`
    /// (plain HTTP to loopback is allowed for test-mode endpoints only).
    #[arg(long, env = "DEMO_WEBHOOK_URL")]
    webhook_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "demo_merchant=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();

    let ca_pem = match &args.vault_ca_cert {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    let client = vault_client(ca_pem.as_deref())?;
    let sdk = |key: &str| {
        let mut builder = altafinex::Client::builder(key).base_url(&args.vault_url);
        if let Some(pem) = &ca_pem {
            builder = builder.add_root_certificate_pem(pem.clone());
        }
        builder.build()
    };
    let payments = match &args.payments_key {
        Some(key) => Some(payments::Payments::new(sdk(key).context("the payments key")?)),
        None => None,
    };
    let admin = match &args.admin_key {
        Some(key) => Some(sdk(key).context("the admin key")?),
        None => None,
    };
    let config = Config {
        vault_origin: origin_of(&args.vault_url)?,
        publishable_key: args.publishable_key,
        secret_key: Secret::new(args.secret_key),
        static_dir: args.static_dir,
        package_dir: args.package_dir,
        loader: match (args.loader_url, args.loader_integrity) {
            (Some(path), Some(integrity)) => Some(
                LoaderPin::new(path, integrity)
                    .context("--loader-url must be /v1/loader.<version>.js and --loader-integrity sha384-…")?,
            ),
            _ => None,
        },
    };
    anyhow::ensure!(
        config.static_dir.join("index.html").is_file(),
        "no index.html in {} (set --static-dir)",
        config.static_dir.display()
    );

    let listener =
        tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    if let (Some(payments), Some(admin)) = (&payments, &admin) {
        let url = args.webhook_url.clone().unwrap_or_else(|| format!("http://{addr}/webhooks"));
        let secret = payments::register_webhook(admin, &url)
            .await
            .with_context(|| format!("registering the webhook endpoint {url} with the admin key"))?;
        payments.set_webhook_secret(secret);
        tracing::info!(%url, "webhook endpoint registered");
    }
    // The one line scripts and tests wait for.
    #[allow(clippy::print_stdout)]
    {
        println!("listening on http://{addr}");
    }
    axum::serve(listener, app(config, client, payments)).with_graceful_shutdown(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}
