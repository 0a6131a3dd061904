//! `vault`: the command-line entry point. Everything of substance lives in the library.
// One reviewed exception to the workspace's no-unsafe rule: `take_master_key_from_env`.
#![deny(unsafe_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::builder::TypedValueParser as _;
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
    /// Postgres URL (postgres://…) for N instances sharing one database; without it the
    /// embedded SQLite file in the data directory.
    #[arg(long, env = "VAULT_DATABASE_URL")]
    database_url: Option<String>,
    /// Connections this process keeps to Postgres. Commits wait for the WAL flush, so more
    /// connections let more requests share each flush; N instances need N × (this + 1) of the
    /// server's `max_connections`.
    #[arg(long, env = "VAULT_DATABASE_POOL_SIZE", default_value_t = bootstrap::POOL_SIZE,
          value_parser = clap::value_parser!(u16).range(1..=1000).map(usize::from))]
    database_pool_size: usize,
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
        /// Accept --detokenize-ip blocks wider than /24 (IPv4) or /48 (IPv6).
        #[arg(long)]
        force_wide_allowlist: bool,
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
    /// Master-key (key-encryption key) management.
    MasterKey {
        #[command(subcommand)]
        command: MasterKeyCommand,
    },
    /// Delete expired tokens, destroy CVCs past 1 hour and drop idempotency records past 24 hours.
    PurgeExpired {
        #[command(flatten)]
        common: Common,
    },
    /// Apply pending schema migrations (also done on every start) and print the schema version.
    Migrate {
        #[command(flatten)]
        common: Common,
    },
    /// Audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Dev Space users (the merchant console).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a Dev Space user and print a one-time link to set their password (shown once).
    Create {
        #[command(flatten)]
        common: Common,
        /// Merchant id or name.
        #[arg(long)]
        merchant: String,
        /// The person's email address (their sign-in name).
        #[arg(long)]
        email: String,
        /// owner | admin | developer | viewer
        #[arg(long, default_value = "owner")]
        role: String,
        /// Dev Space's public URL, for the printed link.
        #[arg(long, env = "VAULT_DEVSPACE_URL", default_value = "https://127.0.0.1:8444")]
        devspace_url: String,
    },
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// Address to listen on (TLS only). Port 0 picks a free port.
    #[arg(long, env = "VAULT_LISTEN", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Serve Dev Space (the merchant console) on this address, its own origin (TLS only).
    #[arg(long, env = "VAULT_DEVSPACE_LISTEN")]
    devspace_listen: Option<SocketAddr>,
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
    /// Most open connections in all; beyond, new connections are closed at once.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Most open connections per client address (IPv6: per /64).
    #[arg(long, default_value_t = 256)]
    max_connections_per_client: usize,
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
    /// Redis URL (redis://…): rate limits shared by every instance. Without it each instance
    /// limits on its own. Redis down → this instance's own limits apply (never an error).
    #[arg(long, env = "VAULT_REDIS_URL")]
    redis_url: Option<String>,
    /// Seconds between sweeps of expired data.
    #[arg(long, default_value_t = 60)]
    sweep_interval_secs: u64,
    /// First retry delay of a failed webhook delivery, in milliseconds (doubles per attempt,
    /// with jitter, up to 6 hours).
    #[arg(long, env = "VAULT_WEBHOOK_BACKOFF_MS", default_value_t = 30_000)]
    webhook_backoff_ms: u64,
    /// Time allowed for one webhook delivery, in seconds.
    #[arg(long, env = "VAULT_WEBHOOK_TIMEOUT_SECS", default_value_t = 10)]
    webhook_timeout_secs: u64,
    /// A PEM file of CA certificates that TEST-mode webhook deliveries trust besides the
    /// public web PKI, for a development receiver served over https with its own certificate
    /// (e.g. on 127.0.0.1). Live-mode deliveries never trust it.
    #[arg(long, env = "VAULT_WEBHOOK_TEST_CA")]
    webhook_test_ca: Option<PathBuf>,
    /// Email security alerts to each account's owners and admins through this SMTP server:
    /// smtp://127.0.0.1:2525 (plain, loopback relays only), smtp://host:587?tls=required
    /// (STARTTLS) or smtps://user:password@host:465. Without it alerts are not emailed.
    #[arg(long, env = "VAULT_SMTP_URL", requires = "smtp_from")]
    smtp_url: Option<String>,
    /// Sender address of alert emails.
    #[arg(long, env = "VAULT_SMTP_FROM")]
    smtp_from: Option<String>,
    /// A key's detokenize calls within one window above this raise a `detokenize.volume`
    /// security alert (once per key and window); 0 turns it off.
    #[arg(long, env = "VAULT_DETOKENIZE_ALERT_THRESHOLD", default_value_t = 1000)]
    detokenize_alert_threshold: u64,
    /// The window of --detokenize-alert-threshold, in seconds.
    #[arg(long, env = "VAULT_DETOKENIZE_ALERT_WINDOW_SECS", default_value_t = 3600)]
    detokenize_alert_window_secs: i64,
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
        /// Secret keys: admin | tokenization | read_only | payments
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
        /// Accept --ip-allow blocks wider than /24 (IPv4) or /48 (IPv6).
        #[arg(long)]
        force_wide_allowlist: bool,
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
    /// Delete data-key versions that are superseded (for 5 minutes at least) and that no token
    /// uses any more. The server does this by itself after re-encryption; this runs it now.
    Retire {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum MasterKeyCommand {
    /// Re-wrap every data and fingerprint key under a new master key, in one transaction.
    /// Stop the servers first and start them with the new key afterwards.
    Rotate {
        #[command(flatten)]
        common: Common,
        /// File holding the new base64 master key (32 bytes).
        #[arg(long)]
        new_master_key_file: PathBuf,
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
        /// Only events about this token (matched by its audit reference; the log holds no ids).
        #[arg(long)]
        token: Option<String>,
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

/// Reads `VAULT_MASTER_KEY` once and scrubs it from the process: the value bytes in the
/// environment block are overwritten (so `/proc/<pid>/environ` and core dumps no longer show
/// them) and the variable is removed (so child processes do not inherit it).
#[allow(unsafe_code)]
fn take_master_key_from_env() -> Option<SecretString> {
    let value = SecretString::new(std::env::var(MASTER_KEY_ENV).ok()?);
    let name = std::ffi::CString::new(MASTER_KEY_ENV).ok()?;
    // SAFETY: this runs first thing in `main`, before the tokio runtime or any other thread
    // exists, so nothing else reads or writes the environment meanwhile. `getenv` returns
    // either null or a pointer to the NUL-terminated value inside the process's own, writable
    // environment block; we overwrite exactly the `strlen` bytes before that NUL with zeros
    // and then unset the variable. No Rust reference to that memory exists.
    unsafe {
        let ptr = libc::getenv(name.as_ptr());
        if !ptr.is_null() {
            let len = libc::strlen(ptr);
            std::ptr::write_bytes(ptr, 0, len);
        }
        std::env::remove_var(MASTER_KEY_ENV);
    }
    Some(value)
}

fn master_key(common: &Common, env: Option<&SecretString>) -> Result<(MasterKey, MasterKeySource)> {
    let (key, source) =
        bootstrap::resolve_master_key(&common.data_dir, common.master_key_file.as_deref(), env.cloned())?;
    if let MasterKeySource::DevFile(path) = &source {
        note(&format!(
            "WARNING: using the DEVELOPMENT master key file {} (not for production: set {MASTER_KEY_ENV} or --master-key-file)",
            path.display()
        ));
    }
    Ok((key, source))
}

async fn open(common: &Common, env: Option<&SecretString>) -> Result<(Arc<dyn Store>, MasterKey, MasterKeySource)> {
    let (mut master, source) = master_key(common, env)?;
    let store = bootstrap::open_database(
        &common.data_dir,
        common.database_url.as_deref(),
        common.database_pool_size,
        &mut master,
    )
    .await?;
    Ok((store, master, source))
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

fn main() -> Result<()> {
    // Before any thread exists (see `take_master_key_from_env`).
    let env_key = take_master_key_from_env();
    let cli = Cli::parse();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(cli, env_key))
}

async fn run(cli: Cli, env_key: Option<SecretString>) -> Result<()> {
    let env = env_key.as_ref();
    let clock = SystemClock;
    match cli.command {
        Command::Init { common, merchant, allowed_origins, detokenize_ips, mode, force_wide_allowlist } => {
            init_logging("text");
            let mode = Mode::parse(&mode).context("--mode must be test or live")?;
            std::fs::create_dir_all(&common.data_dir)
                .with_context(|| format!("creating {}", common.data_dir.display()))?;
            let (master, generated) = match bootstrap::resolve_master_key(
                &common.data_dir,
                common.master_key_file.as_deref(),
                env.cloned(),
            ) {
                Ok((_, MasterKeySource::DevFile(_))) if mode == Mode::Live => {
                    return Err(bootstrap::BootstrapError::DevMasterKeyWithLiveData.into());
                }
                Ok((k, _)) => (k, None),
                Err(bootstrap::BootstrapError::NoMasterKey) if mode == Mode::Live => {
                    return Err(bootstrap::BootstrapError::DevMasterKeyWithLiveData.into());
                }
                Err(bootstrap::BootstrapError::NoMasterKey) => {
                    let (k, path) = bootstrap::generate_dev_master_key(&common.data_dir)?;
                    note("################################################################################");
                    note(&format!("WARNING: generated a DEVELOPMENT master key in {} (mode 0600).", path.display()));
                    note(&format!("Anyone who can read it can decrypt every card. In production set {MASTER_KEY_ENV}"));
                    note("(base64 of 32 random bytes) or --master-key-file, kept outside the data directory.");
                    note("Live keys are refused while this development key is in use.");
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
            let ips = detokenize_ips
                .iter()
                .map(|c| keys::parse_allowlist_entry(c, force_wide_allowlist))
                .collect::<Result<Vec<_>, _>>()?;
            let allowed_origins =
                allowed_origins.iter().map(|o| keys::parse_allowed_origin(o, mode)).collect::<Result<Vec<_>, _>>()?;
            let opts = InitOptions {
                data_dir: common.data_dir.clone(),
                merchant,
                allowed_origins,
                detokenize_ips: ips,
                mode,
                database_url: common.database_url.clone(),
            };
            let result = bootstrap::init(&opts, &master, clock.now()).await?;
            let tls = vault::tls::load(&common.data_dir, None, None)?;
            out(&json!({
                "merchant": result.merchant,
                "mode": mode,
                "publishable_key": result.publishable.plaintext.expose(),
                "secret_key": result.secret.plaintext.expose(),
                "admin_key": result.admin.plaintext.expose(),
                "read_only_key": result.read_only.plaintext.expose(),
                "payments_key": result.payments.plaintext.expose(),
                "keys": [
                    key_output(&result.publishable),
                    key_output(&result.secret),
                    key_output(&result.admin),
                    key_output(&result.read_only),
                    key_output(&result.payments),
                ],
                "tls": { "cert": tls.cert_path, "fingerprint_sha256": tls.fingerprint, "generated": tls.generated },
                "master_key_file": generated,
                "data_dir": common.data_dir,
            })
            .to_string())?;
        }
        Command::Serve(args) => serve(*args, env).await?,
        Command::Users { command: UsersCommand::Create { common, merchant, email, role, devspace_url } } => {
            init_logging("text");
            let role = devspace::Role::parse(&role).context("--role must be owner, admin, developer or viewer")?;
            let (store, _, _) = open(&common, env).await?;
            let merchant = bootstrap::find_merchant(store.as_ref(), &merchant).await?;
            let (user, token) =
                bootstrap::create_devspace_user(store.as_ref(), &merchant, &email, role, clock.now()).await?;
            let base = devspace_url.trim_end_matches('/');
            out(&json!({
                "user_id": user.id,
                "email": user.email,
                "role": role.as_str(),
                "merchant": merchant.id,
                "set_password_link": format!("{base}/welcome/{}", token.expose()),
                "link_expires_at": clock.now() + devspace::web::LINK_SECONDS,
            })
            .to_string())?;
            store.close();
        }
        Command::Keys { command } => {
            init_logging("text");
            keys_command(command, clock.now(), env).await?;
        }
        Command::EncryptionKey { command: EncryptionKeyCommand::Rotate { common, batch } } => {
            init_logging("text");
            let (store, master, _) = open(&common, env).await?;
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
        Command::EncryptionKey { command: EncryptionKeyCommand::Retire { common } } => {
            init_logging("text");
            let (store, _, _) = open(&common, env).await?;
            let retired = bootstrap::retire_data_keys(store.as_ref(), clock.now()).await?;
            let list: Vec<_> =
                retired.iter().map(|(m, mode, v)| json!({ "merchant_id": m, "mode": mode, "version": v })).collect();
            out(&json!({ "retired": list }).to_string())?;
            store.close();
        }
        Command::MasterKey { command: MasterKeyCommand::Rotate { common, new_master_key_file } } => {
            init_logging("text");
            let (store, old, _) = open(&common, env).await?;
            let text = SecretString::new(
                std::fs::read_to_string(&new_master_key_file)
                    .with_context(|| format!("reading {}", new_master_key_file.display()))?,
            );
            let mut new = MasterKey::from_base64(text.expose())?;
            let n = bootstrap::rotate_master_key(store.as_ref(), &old, &mut new, clock.now()).await?;
            note(&format!(
                "re-wrapped {n} keys under the new master key; start the servers with it ({MASTER_KEY_ENV} or --master-key-file)"
            ));
            out(&json!({ "keys_rewrapped": n }).to_string())?;
            store.close();
        }
        Command::Migrate { common } => {
            init_logging("text");
            let version = match &common.database_url {
                Some(url) => vault::store::postgres::PostgresStore::connect(url, 1).await?.migrate().await?,
                None => {
                    let path = bootstrap::db_path(&common.data_dir);
                    if !path.exists() {
                        bail!("{} holds no vault database (run `vault init`)", common.data_dir.display());
                    }
                    let store = vault::store::sqlite::SqliteStore::open(&path)?;
                    store.close();
                    vault::store::migrations::latest()
                }
            };
            out(&json!({ "schema_version": version }).to_string())?;
        }
        Command::PurgeExpired { common } => {
            init_logging("text");
            let (store, _, _) = open(&common, env).await?;
            let now = clock.now();
            let mut counts = store.purge_expired(now, now - 24 * 3600).await?;
            counts.cvcs = store.purge_cvcs(now).await?;
            store.append_audit(vec![bootstrap::cli_event("purge.expired", now, None, None, json!(counts))]).await?;
            out(&json!(counts).to_string())?;
            store.close();
        }
        Command::Audit { command: AuditCommand::List { common, merchant, event, limit, token } } => {
            init_logging("text");
            let (store, master, _) = open(&common, env).await?;
            let merchant_id = match merchant {
                Some(m) => Some(bootstrap::find_merchant(store.as_ref(), &m).await?.id),
                None => None,
            };
            // Both forms: events written before token references became letters hold hex.
            let token_refs = token.map(|t| [master.token_ref(&t), master.legacy_token_ref(&t)]);
            let scan = if token_refs.is_some() { 100_000 } else { limit };
            let events = store
                .list_audit(AuditFilter { merchant_id, event, before_id: None, limit: scan, ..AuditFilter::default() })
                .await?;
            let matching = events.into_iter().filter(|e| {
                token_refs.as_ref().is_none_or(|refs| {
                    e.detail.get("token_ref").and_then(|v| v.as_str()).is_some_and(|r| refs.iter().any(|x| x == r))
                })
            });
            for e in matching.take(usize::try_from(limit).unwrap_or(usize::MAX)) {
                out(&serde_json::to_string(&e)?)?;
            }
            store.close();
        }
    }
    Ok(())
}

async fn keys_command(command: KeysCommand, now: i64, env: Option<&SecretString>) -> Result<()> {
    match command {
        KeysCommand::Create {
            common,
            merchant,
            kind,
            role,
            mode,
            allowed_origins,
            ip_allowlist,
            label,
            force_wide_allowlist,
        } => {
            let (store, master, source) = open(&common, env).await?;
            let mode = Mode::parse(&mode).context("--mode must be test or live")?;
            if mode == Mode::Live && matches!(source, MasterKeySource::DevFile(_)) {
                return Err(bootstrap::BootstrapError::DevMasterKeyWithLiveData.into());
            }
            let merchant = bootstrap::find_merchant(store.as_ref(), &merchant).await?;
            let kind = KeyKind::parse(&kind).context("--kind must be publishable or secret")?;
            let role = role
                .map(|r| Role::parse(&r).context("--role must be admin, tokenization, read_only or payments"))
                .transpose()?;
            if kind == KeyKind::Secret && role.is_none() {
                bail!("secret keys need --role");
            }
            let spec = KeySpec {
                merchant_id: merchant.id,
                kind,
                mode,
                role,
                label: keys::parse_label(&label)?,
                allowed_origins: allowed_origins
                    .iter()
                    .map(|o| keys::parse_allowed_origin(o, mode))
                    .collect::<Result<_, _>>()?,
                ip_allowlist: ip_allowlist
                    .iter()
                    .map(|c| keys::parse_allowlist_entry(c, force_wide_allowlist))
                    .collect::<Result<_, _>>()?,
            };
            let new = bootstrap::create_key(store.as_ref(), &master, spec, now).await?;
            out(&key_output(&new).to_string())?;
            store.close();
        }
        KeysCommand::List { common } => {
            let (store, _, _) = open(&common, env).await?;
            for k in store.list_api_keys().await? {
                out(&vault::api::admin::key_json(&k).to_string())?;
            }
            store.close();
        }
        KeysCommand::Revoke { common, key_id } => {
            let (store, _, _) = open(&common, env).await?;
            let k = bootstrap::revoke_key(store.as_ref(), &key_id, now).await?;
            out(&vault::api::admin::key_json(&k).to_string())?;
            store.close();
        }
        KeysCommand::Rotate { common, key_id, overlap_secs } => {
            let (store, master, _) = open(&common, env).await?;
            let (new, old) = bootstrap::rotate_key(store.as_ref(), &master, &key_id, overlap_secs, now).await?;
            let mut v = key_output(&new);
            vault::api::admin::set_field(&mut v, "replaces", vault::api::admin::key_json(&old));
            out(&v.to_string())?;
            store.close();
        }
    }
    Ok(())
}

/// The alert-email settings from `--smtp-url` and `--smtp-from`.
fn smtp_settings(url: Option<&str>, from: Option<&str>) -> Result<Option<vault::config::SmtpSettings>> {
    let Some(url) = url else { return Ok(None) };
    let target = vault::smtp::SmtpTarget::parse(url).map_err(|e| anyhow::anyhow!("--smtp-url: {e}"))?;
    let from = devspace::web::parse_email(from.unwrap_or_default()).map_err(|e| anyhow::anyhow!("--smtp-from: {e}"))?;
    Ok(Some(vault::config::SmtpSettings {
        target,
        from,
        poll_interval: std::time::Duration::from_secs(2),
        retry_after: std::time::Duration::from_secs(60),
    }))
}

async fn serve(args: ServeArgs, env: Option<&SecretString>) -> Result<()> {
    init_logging(&args.log_format);
    let (store, master, source) = open(&args.common, env).await?;
    bootstrap::refuse_dev_master_key_for_live(store.as_ref(), &source, SystemClock.now()).await?;
    let master = Arc::new(master);
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
        redis_url: args.redis_url.clone(),
        // CVCs are purged at least every 60 s whatever the sweep interval.
        cvc_purge_interval: std::time::Duration::from_secs(args.sweep_interval_secs.clamp(1, 60)),
        max_connections: args.max_connections.max(1),
        max_connections_per_client: args.max_connections_per_client.max(1),
        rate_per_key: Rate { per_second: args.rate_limit_key, burst: args.rate_limit_key_burst },
        rate_per_ip: Rate { per_second: args.rate_limit_ip, burst: args.rate_limit_ip_burst },
        sweep_interval: std::time::Duration::from_secs(args.sweep_interval_secs.max(1)),
        webhook_backoff_base: std::time::Duration::from_millis(args.webhook_backoff_ms),
        webhook_timeout: std::time::Duration::from_secs(args.webhook_timeout_secs.clamp(1, 10)),
        webhook_test_roots: match &args.webhook_test_ca {
            Some(path) => vault::tls::ca_file(path)?,
            None => Vec::new(),
        },
        devspace_listen: args.devspace_listen,
        smtp: smtp_settings(args.smtp_url.as_deref(), args.smtp_from.as_deref())?,
        detokenize_alert_threshold: args.detokenize_alert_threshold,
        detokenize_alert_window_secs: args.detokenize_alert_window_secs.max(60),
        ..Config::default()
    };
    let running =
        vault::start(Arc::clone(&store), master, Arc::new(SystemClock), config, tls_config, args.listen).await?;
    let shown = match running.addr {
        SocketAddr::V4(a) => format!("https://{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("https://[{}]:{}", a.ip(), a.port()),
    };
    tracing::info!(addr = %running.addr, "listening");
    out(&format!("listening on {shown}"))?;
    if let Some(addr) = running.devspace_addr {
        tracing::info!(addr = %addr, "dev space listening");
        out(&format!("dev space on https://{addr}"))?;
    }
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
