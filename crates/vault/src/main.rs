//! `vault`: the command-line entry point. Everything of substance lives in the library.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use vault::bootstrap::{self, InitOptions, MASTER_KEY_ENV, MasterKeySource};
use vault::clock::{Clock, SystemClock};
use vault::config::Config;
use vault::crypto::MasterKey;
use vault::keys::{self, KeyKind, KeySpec, Mode, Role};
use vault::ratelimit::Rate;
use vault::secret::SecretString;
use vault::store::{AuditFilter, Store};

/// mimalloc: the request path allocates many small buffers; glibc malloc was ~12 % of the
/// profile under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "vault", version, about = "Card tokenization vault (HTTPS API, encrypted SQLite store)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// Data directory (database, development certificate, development master key).
    #[arg(long, env = "VAULT_DATA_DIR")]
    data_dir: PathBuf,
    /// File holding the base64 master key. Otherwise VAULT_MASTER_KEY, otherwise DATA_DIR/master.key.
    #[arg(long, env = "VAULT_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Initialise a data directory: master key check, first merchant, first keys (printed once as JSON).
    Init {
        #[command(flatten)]
        common: Common,
        /// Name of the first merchant.
        #[arg(long)]
        merchant: String,
        /// Origin allowed to use the publishable key and frame the card form (repeatable).
        #[arg(long = "allowed-origin")]
        allowed_origins: Vec<String>,
        /// IP or CIDR allowed to detokenize with the tokenization key (repeatable; default loopback).
        #[arg(long = "detokenize-ip")]
        detokenize_ips: Vec<String>,
        /// Mode of the first keys.
        #[arg(long, default_value = "test")]
        mode: String,
    },
    /// Serve the HTTPS API.
    Serve(Box<ServeArgs>),
    /// API key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Encryption-key management.
    EncryptionKey {
        #[command(subcommand)]
        command: EncryptionKeyCommand,
    },
    /// Delete expired tokens, destroy CVCs past 1 hour and drop idempotency records past 24 hours.
    PurgeExpired {
        #[command(flatten)]
        common: Common,
    },
    /// Audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// Address to listen on (TLS only). Port 0 picks a free port.
    #[arg(long, env = "VAULT_LISTEN", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Directory with the frame build (index.html, loader.js, frame files).
    #[arg(long, env = "VAULT_FRAME_DIR", default_value = "dist")]
    frame_dir: PathBuf,
    /// TLS certificate chain (PEM). Without it a development certificate is used.
    #[arg(long, env = "VAULT_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "VAULT_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Origin the vault is reached at (repeatable); defaults to https://127.0.0.1|localhost:PORT.
    #[arg(long = "public-origin")]
    public_origins: Vec<String>,
    /// Sustained requests per second per API key.
    #[arg(long, default_value_t = 100.0)]
    rate_limit_key: f64,
    /// Burst per API key.
    #[arg(long, default_value_t = 200.0)]
    rate_limit_key_burst: f64,
    /// Sustained requests per second per client IP.
    #[arg(long, default_value_t = 50.0)]
    rate_limit_ip: f64,
    /// Burst per client IP.
    #[arg(long, default_value_t = 100.0)]
    rate_limit_ip_burst: f64,
    /// Seconds between sweeps of expired data.
    #[arg(long, default_value_t = 60)]
    sweep_interval_secs: u64,
    /// Log format.
    #[arg(long, env = "VAULT_LOG_FORMAT", default_value = "json", value_parser = ["json", "text"])]
    log_format: String,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key (the plaintext is printed once).
    Create {
        #[command(flatten)]
        common: Common,
        /// Merchant id or name.
        #[arg(long)]
        merchant: String,
        /// publishable | secret
        #[arg(long)]
        kind: String,
        /// Secret keys: admin | tokenization | read_only
        #[arg(long)]
        role: Option<String>,
        /// test | live
        #[arg(long, default_value = "test")]
        mode: String,
        /// Publishable keys: allowed origin (repeatable).
        #[arg(long = "allowed-origin")]
        allowed_origins: Vec<String>,
        /// Secret keys: allowed client IP or CIDR (repeatable).
        #[arg(long = "ip-allow")]
        ip_allowlist: Vec<String>,
        /// Label.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List API keys (never the plaintext).
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Revoke an API key now.
    Revoke {
        #[command(flatten)]
        common: Common,
        /// Key id (key_…).
        key_id: String,
    },
    /// Replace an API key; the old one keeps working for the overlap period.
    Rotate {
        #[command(flatten)]
        common: Common,
        /// Key id (key_…).
        key_id: String,
        /// Seconds the old key keeps working.
        #[arg(long, default_value_t = 3600)]
        overlap_secs: i64,
    },
}

#[derive(Subcommand)]
enum EncryptionKeyCommand {
    /// New data-key version for every merchant and mode, then re-encrypt old rows (progress on stderr).
    Rotate {
        #[command(flatten)]
        common: Common,
        /// Rows per transaction.
        #[arg(long, default_value_t = 500)]
        batch: u32,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// List audit events, newest first, one JSON object per line.
    List {
        #[command(flatten)]
        common: Common,
        /// Merchant id or name.
        #[arg(long)]
        merchant: Option<String>,
        /// Only this event type (e.g. auth.failed, suspicious_activity).
        #[arg(long)]
        event: Option<String>,
        /// Maximum number of events.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

fn out(line: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    Ok(())
}

fn note(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn env_master_key() -> Option<SecretString> {
    std::env::var(MASTER_KEY_ENV).ok().map(SecretString::new)
}

fn master_key(common: &Common) -> Result<MasterKey> {
    let (key, source) =
        bootstrap::resolve_master_key(&common.data_dir, common.master_key_file.as_deref(), env_master_key())?;
    if let MasterKeySource::DevFile(path) = source {
        note(&format!(
            "WARNING: using the DEVELOPMENT master key file {} (not for production: set {MASTER_KEY_ENV} or --master-key-file)",
            path.display()
        ));
    }
    Ok(key)
}

async fn open(common: &Common) -> Result<(Arc<vault::store::sqlite::SqliteStore>, MasterKey)> {
    let master = master_key(common)?;
    let store = bootstrap::open_store(&common.data_dir, &master).await?;
    Ok((store, master))
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

fn key_output(k: &keys::NewKey) -> serde_json::Value {
    let mut v = vault::api::admin::key_json(&k.record);
    vault::api::admin::set_field(&mut v, "secret", json!(k.plaintext.expose()));
    v
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let clock = SystemClock;
    match cli.command {
        Command::Init { common, merchant, allowed_origins, detokenize_ips, mode } => {
            init_logging("text");
            let mode = Mode::parse(&mode).context("--mode must be test or live")?;
            std::fs::create_dir_all(&common.data_dir)
                .with_context(|| format!("creating {}", common.data_dir.display()))?;
            let (master, generated) = match bootstrap::resolve_master_key(
                &common.data_dir,
                common.master_key_file.as_deref(),
                env_master_key(),
            ) {
                Ok((k, _)) => (k, None),
                Err(bootstrap::BootstrapError::NoMasterKey) => {
                    let (k, path) = bootstrap::generate_dev_master_key(&common.data_dir)?;
                    note("################################################################################");
                    note(&format!("WARNING: generated a DEVELOPMENT master key in {} (mode 0600).", path.display()));
                    note(&format!("Anyone who can read it can decrypt every card. In production set {MASTER_KEY_ENV}"));
                    note("(base64 of 32 random bytes) or --master-key-file, kept outside the data directory.");
                    note("################################################################################");
                    (k, Some(path))
                }
                Err(e) => return Err(e.into()),
            };
            let detokenize_ips = if detokenize_ips.is_empty() {
                vec!["127.0.0.1/32".to_owned(), "::1/128".to_owned()]
            } else {
                detokenize_ips
            };
            let ips = detokenize_ips.iter().map(|c| keys::parse_cidr(c)).collect::<Result<Vec<_>, _>>()?;
            let opts =
                InitOptions { data_dir: common.data_dir.clone(), merchant, allowed_origins, detokenize_ips: ips, mode };
            let result = bootstrap::init(&opts, &master, clock.now()).await?;
            let tls = vault::tls::load(&common.data_dir, None, None)?;
            out(&json!({
                "merchant": result.merchant,
                "mode": mode,
                "publishable_key": result.publishable.plaintext.expose(),
                "secret_key": result.secret.plaintext.expose(),
                "admin_key": result.admin.plaintext.expose(),
                "read_only_key": result.read_only.plaintext.expose(),
                "keys": [key_output(&result.publishable), key_output(&result.secret), key_output(&result.admin), key_output(&result.read_only)],
                "tls": { "cert": tls.cert_path, "fingerprint_sha256": tls.fingerprint, "generated": tls.generated },
                "master_key_file": generated,
                "data_dir": common.data_dir,
            })
            .to_string())?;
        }
        Command::Serve(args) => serve(*args).await?,
        Command::Keys { command } => {
            init_logging("text");
            keys_command(command, clock.now()).await?;
        }
        Command::EncryptionKey { command: EncryptionKeyCommand::Rotate { common, batch } } => {
            init_logging("text");
            let (store, master) = open(&common).await?;
            let versions = vault::rotation::rotate_data_keys(store.as_ref(), &master, clock.now()).await?;
            for (m, mode, v) in &versions {
                note(&format!("new data key: merchant {m} {} version {v}", mode.as_str()));
            }
            let keyring = vault::keyring::Keyring::new(Arc::new(master));
            keyring.refresh(store.as_ref()).await?;
            let done = vault::rotation::reencrypt_all(store.as_ref(), &keyring, batch.max(1), |p| {
                let pct = (p.done * 100).checked_div(p.total).unwrap_or(100);
                note(&format!("re-encrypting {} {}: {}/{} ({pct}%)", p.merchant_id, p.mode.as_str(), p.done, p.total));
            })
            .await?;
            store
                .append_audit(vec![bootstrap::cli_event(
                    "encryption_key.rotated",
                    clock.now(),
                    None,
                    None,
                    json!({ "rows_reencrypted": done, "new_versions": versions.len() }),
                )])
                .await?;
            out(&json!({ "rotated": versions.len(), "rows_reencrypted": done }).to_string())?;
            store.close();
        }
        Command::PurgeExpired { common } => {
            init_logging("text");
            let (store, _) = open(&common).await?;
            let now = clock.now();
            let counts = store.purge_expired(now, now - 24 * 3600).await?;
            store.append_audit(vec![bootstrap::cli_event("purge.expired", now, None, None, json!(counts))]).await?;
            out(&json!(counts).to_string())?;
            store.close();
        }
        Command::Audit { command: AuditCommand::List { common, merchant, event, limit } } => {
            init_logging("text");
            let (store, _) = open(&common).await?;
            let merchant_id = match merchant {
                Some(m) => Some(bootstrap::find_merchant(store.as_ref(), &m).await?.id),
                None => None,
            };
            let events = store.list_audit(AuditFilter { merchant_id, event, before_id: None, limit }).await?;
            for e in events {
                out(&serde_json::to_string(&e)?)?;
            }
            store.close();
        }
    }
    Ok(())
}

async fn keys_command(command: KeysCommand, now: i64) -> Result<()> {
    match command {
        KeysCommand::Create { common, merchant, kind, role, mode, allowed_origins, ip_allowlist, label } => {
            let (store, master) = open(&common).await?;
            let merchant = bootstrap::find_merchant(store.as_ref(), &merchant).await?;
            let kind = KeyKind::parse(&kind).context("--kind must be publishable or secret")?;
            let role =
                role.map(|r| Role::parse(&r).context("--role must be admin, tokenization or read_only")).transpose()?;
            if kind == KeyKind::Secret && role.is_none() {
                bail!("secret keys need --role");
            }
            let spec = KeySpec {
                merchant_id: merchant.id,
                kind,
                mode: Mode::parse(&mode).context("--mode must be test or live")?,
                role,
                label,
                allowed_origins: allowed_origins.iter().map(|o| keys::parse_origin(o)).collect::<Result<_, _>>()?,
                ip_allowlist: ip_allowlist.iter().map(|c| keys::parse_cidr(c)).collect::<Result<_, _>>()?,
            };
            let new = bootstrap::create_key(store.as_ref(), &master, spec, now).await?;
            out(&key_output(&new).to_string())?;
            store.close();
        }
        KeysCommand::List { common } => {
            let (store, _) = open(&common).await?;
            for k in store.list_api_keys().await? {
                out(&vault::api::admin::key_json(&k).to_string())?;
            }
            store.close();
        }
        KeysCommand::Revoke { common, key_id } => {
            let (store, _) = open(&common).await?;
            let k = bootstrap::revoke_key(store.as_ref(), &key_id, now).await?;
            out(&vault::api::admin::key_json(&k).to_string())?;
            store.close();
        }
        KeysCommand::Rotate { common, key_id, overlap_secs } => {
            let (store, master) = open(&common).await?;
            let (new, old) = bootstrap::rotate_key(store.as_ref(), &master, &key_id, overlap_secs, now).await?;
            let mut v = key_output(&new);
            vault::api::admin::set_field(&mut v, "replaces", vault::api::admin::key_json(&old));
            out(&v.to_string())?;
            store.close();
        }
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<()> {
    init_logging(&args.log_format);
    let master = Arc::new(master_key(&args.common)?);
    let store = bootstrap::open_store(&args.common.data_dir, &master).await?;
    let tls = vault::tls::load(&args.common.data_dir, args.tls_cert.as_deref(), args.tls_key.as_deref())?;
    if tls.generated {
        note(&format!(
            "generated a development TLS certificate: {} (SHA-256 {})",
            tls.cert_path.display(),
            tls.fingerprint
        ));
    }
    tracing::info!(cert = %tls.cert_path.display(), fingerprint = %tls.fingerprint, "TLS certificate loaded");
    let tls_config = vault::tls::server_config(&tls)?;
    if !args.frame_dir.join("index.html").exists() {
        tracing::warn!(frame_dir = %args.frame_dir.display(), "frame directory has no index.html; /v1/frame will answer 404");
    }
    let config = Config {
        frame_dir: Some(absolute(&args.frame_dir)),
        public_origins: args.public_origins.iter().map(|o| keys::parse_origin(o)).collect::<Result<_, _>>()?,
        rate_per_key: Rate { per_second: args.rate_limit_key, burst: args.rate_limit_key_burst },
        rate_per_ip: Rate { per_second: args.rate_limit_ip, burst: args.rate_limit_ip_burst },
        sweep_interval: std::time::Duration::from_secs(args.sweep_interval_secs.max(1)),
        ..Config::default()
    };
    let store_dyn: Arc<dyn Store> = store.clone();
    let running = vault::start(store_dyn, master, Arc::new(SystemClock), config, tls_config, args.listen).await?;
    let shown = match running.addr {
        SocketAddr::V4(a) => format!("https://{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("https://[{}]:{}", a.ip(), a.port()),
    };
    tracing::info!(addr = %running.addr, "listening");
    out(&format!("listening on {shown}"))?;
    wait_for_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    store.close();
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
