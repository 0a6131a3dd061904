//! Harness for the end-to-end browser tests.
//!
//! It builds nothing. It expects, and fails with a clear message when any is missing:
//! - `dist/` (Trunk output: `scripts/setup.sh && scripts/build-frame.sh`),
//! - the `vault` and `demo-merchant` binaries in the target directory
//!   (`cargo build -p vault -p demo-merchant`; `E2E_VAULT_BIN` / `E2E_MERCHANT_BIN` override),
//! - Debian's `/usr/bin/chromium` and `/usr/bin/chromedriver` (`scripts/setup.sh`).
//!
//! [`Env::start`] then makes a fresh vault data directory with a test merchant whose publishable
//! key allows only the demo merchant's origin `http://127.0.0.1:P1`, starts the vault on port 0
//! (`https://…:P2`, its own origin), the demo merchant on `P1` and chromedriver on a free port.
//! The same merchant server is also reachable as `http://localhost:P1`: a second origin that the
//! key does **not** allow. Child processes are killed when [`Env`] is dropped; their output goes
//! to `artifacts/logs/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

pub use fantoccini::key::Key;

/// Debian's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's ChromeDriver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The repository root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// `artifacts/` under the repository root (gitignored), created on demand.
///
/// # Errors
/// When the folder cannot be created.
pub fn artifacts_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("E2E_ARTIFACTS_DIR").map_or_else(|| workspace_root().join("artifacts"), PathBuf::from);
    std::fs::create_dir_all(dir.join("logs")).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// A path from the environment; relative ones are taken from the repository root, since
/// `cargo test` runs tests inside the crate's folder.
fn from_root(path: std::ffi::OsString) -> PathBuf {
    let path = PathBuf::from(path);
    if path.is_absolute() { path } else { workspace_root().join(path) }
}

fn target_debug_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), from_root);
    target.join("debug")
}

fn find_binary(name: &str, env_var: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os(env_var).map_or_else(|| target_debug_dir().join(name), from_root);
    ensure!(
        path.is_file(),
        "missing binary {}: run `cargo build -p vault -p demo-merchant` before the browser tests (or set {env_var})",
        path.display()
    );
    Ok(path)
}

/// Checks everything the tests need up front, so a missing piece is one clear failure.
///
/// # Errors
/// Naming the missing piece and the command that provides it.
pub fn preflight() -> anyhow::Result<Prereqs> {
    let dist = std::env::var_os("E2E_DIST_DIR").map_or_else(|| workspace_root().join("dist"), from_root);
    for file in ["index.html", "loader.js"] {
        ensure!(
            dist.join(file).is_file(),
            "missing {}: build the frame first with `scripts/setup.sh && scripts/build-frame.sh`, \
             or set E2E_DIST_DIR",
            dist.join(file).display()
        );
    }
    for bin in [CHROMIUM, CHROMEDRIVER] {
        ensure!(
            Path::new(bin).is_file(),
            "missing {bin}: run scripts/setup.sh (installs Debian chromium + chromium-driver)"
        );
    }
    Ok(Prereqs {
        dist,
        vault: find_binary("vault", "E2E_VAULT_BIN")?,
        merchant: find_binary("demo-merchant", "E2E_MERCHANT_BIN")?,
    })
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The folder the demo merchant serves under `/pkg/` for `react.html`: the npm package's
/// `web/package/dist/*.js` (built by `node web/package/scripts/build.mjs`) and React's UMD
/// development builds from `.tools` (pinned in scripts/setup.sh; development builds, because
/// only they run StrictMode's double mount). `None` when the package is not built.
///
/// # Errors
/// When the package is built but React is missing, or a copy fails.
pub fn assemble_package_dir(to: &Path) -> anyhow::Result<Option<PathBuf>> {
    let root = workspace_root();
    let dist = root.join("web/package/dist");
    if !dist.join("index.js").is_file() {
        return Ok(None);
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(&dist)? {
        let entry = entry?;
        if entry.path().extension().is_some_and(|e| e == "js") {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    let tools = root.join(".tools/node_modules");
    for (package, file) in [("react", "react.development.js"), ("react-dom", "react-dom.development.js")] {
        let from = tools.join(package).join("umd").join(file);
        std::fs::copy(&from, to.join(file))
            .with_context(|| format!("copying {}: run scripts/setup.sh", from.display()))?;
    }
    Ok(Some(to.to_owned()))
}

/// Paths found by [`preflight`].
#[derive(Debug, Clone)]
pub struct Prereqs {
    /// Trunk output served by the vault.
    pub dist: PathBuf,
    /// The vault binary.
    pub vault: PathBuf,
    /// The demo merchant binary.
    pub merchant: PathBuf,
}

/// A child process killed on drop, with its output captured to a log file.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// The last `n` lines the process printed.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines.iter().skip(lines.len().saturating_sub(n)).copied().collect::<Vec<_>>().join("\n")
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the output goes.
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Spawns `cmd`, tees stdout and stderr into `artifacts/logs/<name>.log` and waits until a line
/// contains `marker`; returns the process and the rest of that line after the marker.
async fn spawn_until(mut cmd: Command, name: &str, marker: &str, timeout: Duration) -> anyhow::Result<(Proc, String)> {
    let log = artifacts_dir()?.join("logs").join(format!("{name}.log"));
    let _ = std::fs::remove_file(&log);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).kill_on_drop(true);
    let mut child = cmd.spawn().with_context(|| format!("spawning {name}"))?;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let stdout = child.stdout.take().context("no stdout")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let writer = std::sync::Arc::new(std::sync::Mutex::new(
        std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?,
    ));
    fn pump<R: AsyncRead + Unpin + Send + 'static>(
        reader: R,
        tx: mpsc::UnboundedSender<String>,
        writer: std::sync::Arc<std::sync::Mutex<std::fs::File>>,
    ) {
        tokio::spawn(async move {
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut f) = writer.lock() {
                    use std::io::Write as _;
                    let _ = writeln!(f, "{line}");
                }
                let _ = tx.send(line);
            }
        });
    }
    pump(stdout, tx.clone(), writer.clone());
    pump(stderr, tx, writer);
    let mut proc = Proc { name: name.to_owned(), child, log };
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        tokio::select! {
            line = rx.recv() => match line {
                Some(line) => {
                    if let Some((_, rest)) = line.split_once(marker) {
                        let value = rest.split_whitespace().next().unwrap_or_default().to_owned();
                        // Keep draining so the child never blocks on a full pipe.
                        tokio::spawn(async move { while rx.recv().await.is_some() {} });
                        return Ok((proc, value));
                    }
                }
                None => {
                    let status = proc.child.wait().await.ok();
                    bail!("{name} exited ({status:?}) before printing {marker:?}; log:\n{}", proc.log_tail(30));
                }
            },
            () = tokio::time::sleep_until(deadline) => {
                bail!("{name} did not print {marker:?} within {timeout:?}; log:\n{}", proc.log_tail(30));
            }
        }
    }
}

/// A port that was free a moment ago (bound to port 0, then released).
///
/// # Errors
/// When binding fails.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Finds the first string in `value` (any depth) that starts with `prefix`.
pub fn find_string_with_prefix(value: &Value, prefix: &str) -> Option<String> {
    match value {
        Value::String(s) if s.starts_with(prefix) => Some(s.clone()),
        Value::Array(items) => items.iter().find_map(|v| find_string_with_prefix(v, prefix)),
        Value::Object(map) => map.values().find_map(|v| find_string_with_prefix(v, prefix)),
        _ => None,
    }
}

/// The running system under test.
pub struct Env {
    /// Vault base URL (`https://…:P2`).
    pub vault_url: String,
    /// Demo merchant on the allowed origin (`http://127.0.0.1:P1`).
    pub merchant_url: String,
    /// The same server on an origin the key does not allow (`http://localhost:P1`).
    pub disallowed_url: String,
    /// The test merchant's publishable key.
    pub publishable_key: String,
    /// The test merchant's secret key.
    pub secret_key: String,
    /// The test merchant's payments-role key (the demo merchant charges with it).
    pub payments_key: String,
    /// The test merchant's admin key (registers web fonts in the fonts test).
    pub admin_key: String,
    /// The vault's development certificate (PEM), to trust in HTTP clients.
    pub vault_cert: Option<PathBuf>,
    /// ChromeDriver's URL.
    pub webdriver_url: String,
    pub vault: Proc,
    pub merchant: Proc,
    pub chromedriver: Proc,
    _data_dir: tempfile::TempDir,
    _profiles: tempfile::TempDir,
}

impl Env {
    /// Starts vault, demo merchant and chromedriver. See the module docs.
    ///
    /// # Errors
    /// When a prerequisite is missing or a process does not come up.
    pub async fn start() -> anyhow::Result<Env> {
        let pre = preflight()?;
        let data_dir = tempfile::Builder::new().prefix("e2e-vault-").tempdir()?;
        let profiles = tempfile::Builder::new().prefix("e2e-chromium-").tempdir()?;
        // Serve a snapshot of dist/: a concurrent `trunk build` must not swap files mid-run.
        let dist = data_dir.path().join("dist");
        copy_dir(&pre.dist, &dist)?;
        let merchant_port = free_port()?;
        let merchant_url = format!("http://127.0.0.1:{merchant_port}");
        let disallowed_url = format!("http://localhost:{merchant_port}");

        // 1. A fresh vault with one test merchant that allows only the demo origin.
        let init = Command::new(&pre.vault)
            .arg("init")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--merchant", "e2e-demo", "--allowed-origin", &merchant_url])
            .output()
            .await
            .context("running vault init")?;
        ensure!(
            init.status.success(),
            "vault init failed: {}\n{}",
            String::from_utf8_lossy(&init.stdout),
            String::from_utf8_lossy(&init.stderr)
        );
        let init_out = String::from_utf8_lossy(&init.stdout).into_owned();
        let init_json: Value = serde_json::from_str(init_out.trim())
            .or_else(|_| {
                // Tolerate log lines around the JSON object.
                let start = init_out.find('{').unwrap_or(0);
                let end = init_out.rfind('}').map_or(init_out.len(), |e| e + 1);
                serde_json::from_str(init_out.get(start..end).unwrap_or_default())
            })
            .with_context(|| format!("vault init did not print JSON: {init_out}"))?;
        // `vault init` prints {"publishable_key": "pk_…", "secret_key": "sk_…", "admin_key": …}.
        let named = |k: &str| init_json.get(k).and_then(Value::as_str).map(str::to_owned);
        let publishable_key = named("publishable_key")
            .or_else(|| find_string_with_prefix(&init_json, "pk_"))
            .with_context(|| format!("no pk_ key in vault init output: {init_json}"))?;
        let secret_key = named("secret_key")
            .or_else(|| find_string_with_prefix(&init_json, "sk_"))
            .with_context(|| format!("no sk_ key in vault init output: {init_json}"))?;
        let payments_key =
            named("payments_key").with_context(|| format!("no payments_key in vault init output: {init_json}"))?;
        let admin_key =
            named("admin_key").with_context(|| format!("no admin_key in vault init output: {init_json}"))?;

        // 2. The vault on its own origin.
        let mut cmd = Command::new(&pre.vault);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--listen", "127.0.0.1:0"])
            .arg("--frame-dir")
            .arg(&dist)
            .env("RUST_LOG", std::env::var("E2E_VAULT_LOG").unwrap_or_else(|_| "info".into()));
        let (vault, vault_url) = spawn_until(cmd, "vault", "listening on ", Duration::from_secs(60)).await?;
        let vault_url = vault_url.trim_end_matches('/').to_owned();
        ensure!(vault_url.starts_with("https://"), "vault is not on HTTPS: {vault_url}");
        let cert = data_dir.path().join("tls").join("cert.pem");
        let vault_cert = cert.is_file().then_some(cert);

        // 3. The demo merchant on the reserved port.
        let mut cmd = Command::new(&pre.merchant);
        cmd.args(["--listen", &format!("127.0.0.1:{merchant_port}")])
            .args(["--vault-url", &vault_url])
            .args(["--publishable-key", &publishable_key])
            .args(["--secret-key", &secret_key])
            .args(["--payments-key", &payments_key])
            .args(["--admin-key", admin_key.as_str()])
            .arg("--static-dir")
            .arg(workspace_root().join("static").join("demo"));
        if let Some(cert) = &vault_cert {
            cmd.arg("--vault-ca-cert").arg(cert);
        }
        if let Some(package) = assemble_package_dir(&data_dir.path().join("pkg"))? {
            cmd.arg("--package-dir").arg(package);
        }
        let (merchant, _) = spawn_until(cmd, "demo-merchant", "listening on ", Duration::from_secs(30)).await?;

        // 4. ChromeDriver.
        let port = free_port()?;
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"));
        let (chromedriver, _) =
            spawn_until(cmd, "chromedriver", "ChromeDriver was started successfully", Duration::from_secs(30)).await?;
        let webdriver_url = format!("http://127.0.0.1:{port}");

        Ok(Env {
            vault_url,
            merchant_url,
            disallowed_url,
            publishable_key,
            secret_key,
            payments_key,
            admin_key,
            vault_cert,
            webdriver_url,
            vault,
            merchant,
            chromedriver,
            _data_dir: data_dir,
            _profiles: profiles,
        })
    }

    /// An HTTP client that trusts the vault's development certificate (and nothing less).
    ///
    /// # Errors
    /// When the certificate cannot be read.
    pub fn http(&self) -> anyhow::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder().use_rustls_tls().timeout(Duration::from_secs(15));
        if let Some(cert) = &self.vault_cert {
            for c in reqwest::Certificate::from_pem_bundle(&std::fs::read(cert)?)? {
                builder = builder.add_root_certificate(c);
            }
        }
        Ok(builder.build()?)
    }

    /// A new headless Chromium session with a fresh profile.
    ///
    /// # Errors
    /// When chromedriver refuses the session.
    pub async fn browser(&self) -> anyhow::Result<Browser> {
        open_chromium(&self.webdriver_url, self._profiles.path(), self.vault_cert.as_deref(), &[]).await
    }

    /// Like [`Env::browser`], with more Chromium switches (the split-field autofill test uses
    /// `--disable-site-isolation-trials`; see docs/split-fields.md).
    ///
    /// # Errors
    /// When chromedriver refuses the session.
    pub async fn browser_with_args(&self, extra: &[&str]) -> anyhow::Result<Browser> {
        open_chromium(&self.webdriver_url, self._profiles.path(), self.vault_cert.as_deref(), extra).await
    }
}

/// A scenario future borrowing the environment and the browser.
pub type Scenario<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + 'a>>;

/// Runs one scenario in a test binary of its own: starts an [`Env`] and a browser, runs
/// `scenario` for at most `limit`, closes the browser, and returns the browser's severe console
/// lines (page and frames) for the caller to judge.
///
/// # Errors
/// When the environment or the browser does not start, or the scenario fails or times out
/// (with the tails of the vault's and the merchant's logs).
pub async fn run_scenario(
    limit: Duration,
    scenario: impl for<'a> FnOnce(&'a Env, &'a Browser) -> Scenario<'a>,
) -> anyhow::Result<Vec<String>> {
    let env = Env::start().await.context("browser tests cannot run")?;
    let b = env.browser().await.context("no browser session")?;
    let result = tokio::time::timeout(limit, scenario(&env, &b))
        .await
        .unwrap_or_else(|_| Err(anyhow!("timed out after {limit:?}")));
    let logs = b.severe_logs().await;
    let _ = b.close().await;
    result.with_context(|| {
        format!("merchant log:\n{}\nvault log:\n{}", env.merchant.log_tail(20), env.vault.log_tail(20))
    })?;
    logs.context("reading the browser console")
}

/// A new headless Chromium session with a fresh profile under `profiles`, trusting exactly the
/// vault's development certificate `cert` (by its public key), with `extra` switches.
///
/// # Errors
/// When chromedriver refuses the session.
async fn open_chromium(
    webdriver_url: &str,
    profiles: &Path,
    cert: Option<&Path>,
    extra: &[&str],
) -> anyhow::Result<Browser> {
    let profile = profiles.join(format!("p{}", free_port()?));
    std::fs::create_dir_all(&profile)?;
    let mut args = vec![
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--window-size=800,1000".to_owned(),
        "--lang=en-US".to_owned(),
        format!("--user-data-dir={}", profile.display()),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    // Trust exactly the vault's development certificate (by its public key), instead of
    // ignoring certificate errors: with an error, Chromium would refuse to cache anything
    // from the vault, unlike a merchant's customers' browsers facing a real certificate.
    if let Some(cert) = cert {
        args.push(format!("--ignore-certificate-errors-spki-list={}", spki_sha256(cert)?));
    }
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        "goog:loggingPrefs": { "browser": "ALL" },
    });
    let Value::Object(caps) = caps else { bail!("capabilities are not an object") };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(webdriver_url)
        .await
        .map_err(|e| anyhow!("chromedriver refused a session: {e}"))?;
    client
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(30)),
            Some(Duration::from_secs(30)),
            Some(Duration::ZERO),
        ))
        .await?;
    Ok(Browser { client })
}

/// Dev Space on its own origin: a fresh vault (`vault init`), a first owner made with `vault
/// users create` (its one-time link), `vault serve --devspace-listen`, and chromedriver. Needs
/// only the vault binary and Chromium (no frame build, no demo merchant).
pub struct DevSpaceEnv {
    /// Dev Space's base URL (`https://127.0.0.1:P`).
    pub url: String,
    /// The first owner's email.
    pub owner_email: String,
    /// The first owner's one-time set-password link.
    pub owner_link: String,
    /// The vault binary, for more `vault users create` calls.
    pub vault_bin: PathBuf,
    /// The vault's data directory.
    pub data_dir: PathBuf,
    /// The vault's development certificate (PEM).
    pub vault_cert: Option<PathBuf>,
    /// ChromeDriver's URL.
    pub webdriver_url: String,
    pub vault: Proc,
    pub chromedriver: Proc,
    _data_dir: tempfile::TempDir,
    _profiles: tempfile::TempDir,
}

impl DevSpaceEnv {
    /// Starts the vault with Dev Space and chromedriver.
    ///
    /// # Errors
    /// When a prerequisite is missing or a process does not come up.
    pub async fn start() -> anyhow::Result<Self> {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            ensure!(
                Path::new(bin).is_file(),
                "missing {bin}: run scripts/setup.sh (installs Debian chromium + chromium-driver)"
            );
        }
        let vault_bin = find_binary("vault", "E2E_VAULT_BIN")?;
        let dir = tempfile::Builder::new().prefix("e2e-devspace-").tempdir()?;
        let profiles = tempfile::Builder::new().prefix("e2e-chromium-").tempdir()?;
        let data_dir = dir.path().to_owned();
        let run = |args: &[&str]| {
            let mut cmd = Command::new(&vault_bin);
            cmd.args(args).arg("--data-dir").arg(&data_dir);
            cmd
        };
        let init = run(&["init", "--merchant", "e2e-devspace"]).output().await.context("running vault init")?;
        ensure!(init.status.success(), "vault init failed: {}", String::from_utf8_lossy(&init.stderr));
        let port = free_port()?;
        let url = format!("https://127.0.0.1:{port}");
        let owner_email = "owner@shop.example".to_owned();
        let owner_link = users_create(&vault_bin, &data_dir, &url, &owner_email, "owner").await?;
        let frames = data_dir.join("no-frame");
        std::fs::create_dir_all(&frames)?;
        let mut cmd = run(&["serve", "--listen", "127.0.0.1:0", "--devspace-listen", &format!("127.0.0.1:{port}")]);
        cmd.arg("--frame-dir").arg(&frames).env("RUST_LOG", "info");
        let (vault, shown) = spawn_until(cmd, "vault-devspace", "dev space on ", Duration::from_secs(60)).await?;
        ensure!(shown == url, "dev space is on {shown}, expected {url}");
        let cert = data_dir.join("tls").join("cert.pem");
        let vault_cert = cert.is_file().then_some(cert);
        let wd_port = free_port()?;
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={wd_port}"));
        let (chromedriver, _) =
            spawn_until(cmd, "chromedriver-devspace", "ChromeDriver was started successfully", Duration::from_secs(30))
                .await?;
        Ok(Self {
            url,
            owner_email,
            owner_link,
            vault_bin,
            data_dir,
            vault_cert,
            webdriver_url: format!("http://127.0.0.1:{wd_port}"),
            vault,
            chromedriver,
            _data_dir: dir,
            _profiles: profiles,
        })
    }

    /// Another user of the merchant; returns their one-time link.
    ///
    /// # Errors
    /// When `vault users create` fails.
    pub async fn create_user(&self, email: &str, role: &str) -> anyhow::Result<String> {
        users_create(&self.vault_bin, &self.data_dir, &self.url, email, role).await
    }

    /// A new headless Chromium session with a fresh profile.
    ///
    /// # Errors
    /// When chromedriver refuses the session.
    pub async fn browser(&self) -> anyhow::Result<Browser> {
        open_chromium(&self.webdriver_url, self._profiles.path(), self.vault_cert.as_deref(), &[]).await
    }
}

async fn users_create(vault: &Path, data_dir: &Path, url: &str, email: &str, role: &str) -> anyhow::Result<String> {
    let out = Command::new(vault)
        .args([
            "users",
            "create",
            "--merchant",
            "e2e-devspace",
            "--email",
            email,
            "--role",
            role,
            "--devspace-url",
            url,
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .await
        .context("running vault users create")?;
    ensure!(out.status.success(), "vault users create failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let start = text.find('{').unwrap_or(0);
    let json: Value = serde_json::from_str(text.get(start..).unwrap_or_default().trim())
        .with_context(|| format!("vault users create did not print JSON: {text}"))?;
    json.get("set_password_link").and_then(Value::as_str).map(str::to_owned).context("no set_password_link")
}

/// A WebDriver session with helpers for the demo page.
pub struct Browser {
    /// The raw fantoccini client.
    pub client: Client,
}

impl Browser {
    /// Runs `script` (a function body; `arguments` holds `args`) in the current frame.
    ///
    /// # Errors
    /// When the script throws.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.client.execute(script, args).await.with_context(|| format!("script failed: {script}"))
    }

    /// Like [`Browser::js`]; the script calls `arguments[arguments.length - 1](result)`.
    ///
    /// # Errors
    /// When the script throws or times out.
    pub async fn js_async(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.client.execute_async(script, args).await.with_context(|| format!("async script failed: {script}"))
    }

    /// Polls `script` until it returns something truthy; returns that value.
    ///
    /// # Errors
    /// On timeout, with `what` in the message.
    pub async fn wait_js(&self, what: &str, script: &str, timeout: Duration) -> anyhow::Result<Value> {
        let start = Instant::now();
        loop {
            let v = self.js(script, vec![]).await?;
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v.as_str() != Some("") && v.as_f64() != Some(0.0);
            if truthy {
                return Ok(v);
            }
            if start.elapsed() > timeout {
                bail!("timed out after {timeout:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens the demo page at `url` and waits until `mount()` resolved.
    ///
    /// # Errors
    /// When the page or the frame does not come up.
    pub async fn open_demo(&self, url: &str) -> anyhow::Result<()> {
        self.client.goto(url).await?;
        let v = self
            .wait_js(
                "the card to mount",
                "var d = window.__demo; return d && (d.mounted ? 'ok' : (d.mountError ? JSON.stringify(d.mountError) : null));",
                Duration::from_secs(20),
            )
            .await?;
        ensure!(v.as_str() == Some("ok"), "mount failed on {url}: {v}");
        Ok(())
    }

    /// What a cold mount of the demo page downloaded, as Chromium counts it (Resource Timing):
    /// clears the HTTP cache, opens `url`, then reads the frame document's navigation entry and
    /// every resource entry inside the frame, and the loader's entry on the merchant page
    /// (readable cross-origin thanks to the vault's `Timing-Allow-Origin`). Each entry:
    /// `{name, transferSize, encodedBodySize, decodedBodySize}` (`transferSize` = headers +
    /// body on the wire, 0 from the cache) and its waterfall: `protocol` (ALPN), `startTime`,
    /// `connectStart`, `secureConnectionStart`, `connectEnd` (equal to `connectStart` when the
    /// request reused a connection), `requestStart`, `responseStart`, `responseEnd`, in ms of
    /// its document's clock. Returns `{frame: [...], loader: [...]}`.
    ///
    /// # Errors
    /// When the page or the frame does not come up.
    pub async fn cold_mount_wire_sizes(&self, url: &str) -> anyhow::Result<Value> {
        const ENTRIES: &str = "var pick = function (e) { return { name: e.name.split('?')[0], \
            transferSize: e.transferSize, encodedBodySize: e.encodedBodySize, decodedBodySize: e.decodedBodySize, \
            protocol: e.nextHopProtocol, startTime: e.startTime, connectStart: e.connectStart, \
            secureConnectionStart: e.secureConnectionStart, connectEnd: e.connectEnd, requestStart: e.requestStart, \
            responseStart: e.responseStart, responseEnd: e.responseEnd }; };\
            var nav = performance.getEntriesByType('navigation').map(pick);\
            var res = performance.getEntriesByType('resource').map(pick);\
            return arguments[0] ? nav.concat(res) : res.filter(function (e) { return /\\/v1\\/loader/.test(e.name); });";
        self.client.goto("about:blank").await?;
        self.cdp("Network.clearBrowserCache", json!({})).await?;
        self.open_demo(url).await?;
        let loader = self.js(ENTRIES, vec![json!(false)]).await?;
        self.enter_card_frame().await?;
        // The frame's own resources are all fetched before it answers `ready`.
        let frame = self.js(ENTRIES, vec![json!(true)]).await;
        self.leave_frame().await?;
        Ok(json!({ "frame": frame?, "loader": loader }))
    }

    /// Switches into the card iframe.
    ///
    /// # Errors
    /// When there is no card iframe.
    pub async fn enter_card_frame(&self) -> anyhow::Result<()> {
        self.client.enter_parent_frame().await.ok();
        let frame = self.client.find(Locator::Css("#card-element iframe")).await.context("no card iframe")?;
        frame.enter_frame().await?;
        Ok(())
    }

    /// Into the frame of one split field, the one iframe inside the page's `#card-<field>`
    /// (the layout of the split demos), from wherever WebDriver is.
    ///
    /// # Errors
    /// When the page has no such frame.
    pub async fn enter_split_field(&self, field: &str) -> anyhow::Result<()> {
        self.leave_frame().await?;
        let frame = self
            .client
            .find(Locator::Css(&format!("#card-{field} iframe")))
            .await
            .with_context(|| format!("no {field} frame"))?;
        frame.enter_frame().await?;
        Ok(())
    }

    /// Back to the merchant page.
    ///
    /// # Errors
    /// On a WebDriver error.
    pub async fn leave_frame(&self) -> anyhow::Result<()> {
        // Top-level: switch to frame `null`.
        self.client.enter_parent_frame().await?;
        Ok(())
    }

    /// Presses keys one after another on whatever has focus, like a user at a keyboard.
    ///
    /// # Errors
    /// On a WebDriver error.
    pub async fn type_keys(&self, text: &str) -> anyhow::Result<()> {
        let mut actions = KeyActions::new("keyboard".into());
        for c in text.chars() {
            actions = actions.then(KeyAction::Down { value: c }).then(KeyAction::Up { value: c });
        }
        self.client.perform_actions(actions).await?;
        Ok(())
    }

    /// Presses one special key, optionally with a modifier held.
    ///
    /// # Errors
    /// On a WebDriver error.
    pub async fn press(&self, modifier: Option<Key>, key: Key) -> anyhow::Result<()> {
        let mut actions = KeyActions::new("keyboard".into());
        if let Some(m) = modifier {
            actions = actions.then(KeyAction::Down { value: m.into() });
        }
        let k: char = key.into();
        actions = actions.then(KeyAction::Down { value: k }).then(KeyAction::Up { value: k });
        if let Some(m) = modifier {
            actions = actions.then(KeyAction::Up { value: m.into() });
        }
        self.client.perform_actions(actions).await?;
        self.client.release_actions().await?;
        Ok(())
    }

    /// Focuses a field inside the card frame by clicking it, leaving WebDriver in the frame.
    ///
    /// # Errors
    /// When the field is missing.
    pub async fn click_field(&self, id: &str) -> anyhow::Result<()> {
        self.enter_card_frame().await?;
        self.client.find(Locator::Id(id)).await.with_context(|| format!("no #{id} in the frame"))?.click().await?;
        Ok(())
    }

    /// `{ value, selectionStart, selectionEnd, focused, ariaInvalid }` of a frame field
    /// (WebDriver must be inside the frame).
    ///
    /// # Errors
    /// When the field is missing.
    pub async fn field(&self, id: &str) -> anyhow::Result<Value> {
        self.js(
            "var el = document.getElementById(arguments[0]); if (!el) return null; \
             var d = el.getAttribute('aria-describedby'); var dt = d ? d.split(/\\s+/).map(function (i) { var e = document.getElementById(i); return e ? e.textContent : ''; }).join(' ') : null; \
             return { value: el.value, selectionStart: el.selectionStart, selectionEnd: el.selectionEnd, \
                      focused: document.activeElement === el, ariaInvalid: el.getAttribute('aria-invalid'), describedByText: dt };",
            vec![json!(id)],
        )
        .await
    }

    /// Recorded loader events of `kind` (`ready`, `change`, `brand`, ...) on the merchant page
    /// (WebDriver must be on the page).
    ///
    /// # Errors
    /// On a script error.
    pub async fn events(&self, kind: &str) -> anyhow::Result<Vec<Value>> {
        let v = self
            .js(
                "var kind = arguments[0]; return (window.__demo ? window.__demo.events : []).filter(function (e) { return e.type === kind; }).map(function (e) { return e.payload; });",
                vec![json!(kind)],
            )
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Waits until the last recorded `change` payload satisfies `check` (JS expression over `s`).
    ///
    /// # Errors
    /// On timeout, with the last state in the message.
    pub async fn wait_change(&self, what: &str, check: &str) -> anyhow::Result<Value> {
        let script = format!(
            "var ev = (window.__demo ? window.__demo.events : []).filter(function (e) {{ return e.type === 'change'; }}); \
             var s = ev.length ? ev[ev.length - 1].payload : null; return s && ({check}) ? s : null;"
        );
        match self.wait_js(what, &script, Duration::from_secs(10)).await {
            Ok(v) => Ok(v),
            Err(e) => {
                let last = self.events("change").await.unwrap_or_default();
                Err(e.context(format!("last change payload: {}", last.last().cloned().unwrap_or(Value::Null))))
            }
        }
    }

    /// Everything the merchant page's `message` listener recorded.
    ///
    /// # Errors
    /// On a script error.
    pub async fn messages(&self) -> anyhow::Result<Vec<Value>> {
        let v = self.js("return window.__demo ? window.__demo.messages : [];", vec![]).await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Drains the browser's console log (chromedriver's `se/log`) and returns the `SEVERE`
    /// entries: uncaught errors, failed loads, CSP violations, in the page or the frame.
    ///
    /// # Errors
    /// On a WebDriver error.
    pub async fn severe_logs(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.console_logs().await?.into_iter().filter(|(level, _)| level == "SEVERE").map(|(_, m)| m).collect())
    }

    /// Drains the browser's console log and returns every entry as `(level, message)`
    /// (`SEVERE`, `WARNING`, `INFO`, …).
    ///
    /// # Errors
    /// On a WebDriver error.
    pub async fn console_logs(&self) -> anyhow::Result<Vec<(String, String)>> {
        let v = self.client.issue_cmd(BrowserLog).await?;
        Ok(v.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
                        (text("level"), text("message"))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Runs one Chrome DevTools Protocol command through chromedriver's `goog/cdp/execute`
    /// (for example `Network.clearBrowserCache` between cold-cache measurements).
    ///
    /// # Errors
    /// When chromedriver refuses the command.
    pub async fn cdp(&self, cmd: &str, params: Value) -> anyhow::Result<Value> {
        Ok(self.client.issue_cmd(Cdp { cmd: cmd.to_owned(), params }).await?)
    }

    /// Saves a PNG screenshot of the whole viewport to `artifacts/<name>.png`.
    ///
    /// # Errors
    /// When the screenshot or the write fails.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let path = artifacts_dir()?.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Ends the session (closes Chromium).
    ///
    /// # Errors
    /// On a WebDriver error.
    pub async fn close(self) -> anyhow::Result<()> {
        self.client.close().await?;
        Ok(())
    }
}

/// ChromeDriver's log endpoint (not in the W3C protocol, so not in fantoccini).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

/// Base64 of the SHA-256 of a PEM certificate's `SubjectPublicKeyInfo`, the form Chromium's
/// `--ignore-certificate-errors-spki-list` takes.
///
/// # Errors
/// When the file is not a PEM certificate whose DER this minimal reader can walk.
pub fn spki_sha256(cert_pem: &Path) -> anyhow::Result<String> {
    use base64::Engine as _;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;

    /// One DER element at the start of `der`: (tag, whole element, contents).
    fn tlv(der: &[u8]) -> anyhow::Result<(u8, &[u8], &[u8])> {
        let (&tag, rest) = der.split_first().context("DER: empty")?;
        let (&first, rest) = rest.split_first().context("DER: no length")?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            ensure!((1..=4).contains(&n) && rest.len() >= n, "DER: bad length");
            let (bytes, rest) = rest.split_at(n);
            (bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
        };
        ensure!(rest.len() >= len, "DER: truncated");
        let header = der.len() - rest.len();
        Ok((tag, der.get(..header + len).context("DER")?, rest.get(..len).context("DER")?))
    }
    let cert = CertificateDer::from_pem_file(cert_pem).map_err(|e| anyhow!("{}: {e}", cert_pem.display()))?;
    let (_, _, certificate) = tlv(&cert)?;
    let (_, _, mut tbs) = tlv(certificate)?;
    // TBSCertificate: [0] version (optional), serial, signature, issuer, validity, subject, SPKI.
    if tbs.first() == Some(&0xa0) {
        let (_, version, _) = tlv(tbs)?;
        tbs = tbs.get(version.len()..).context("DER")?;
    }
    for _ in 0..5 {
        let (_, skipped, _) = tlv(tbs)?;
        tbs = tbs.get(skipped.len()..).context("DER")?;
    }
    let (tag, spki, _) = tlv(tbs)?;
    ensure!(tag == 0x30, "DER: no SubjectPublicKeyInfo");
    Ok(base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, spki)))
}

/// chromedriver's extension command for the DevTools Protocol.
#[derive(Debug)]
struct Cdp {
    cmd: String,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/goog/cdp/execute", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(serde_json::json!({ "cmd": self.cmd, "params": self.params }).to_string()))
    }
}

/// Checks one recorded message for card secrets: no string in it, once reduced to its digits,
/// contains the PAN; no string or number in it equals the CVC.
pub fn message_leaks(data: &Value, pan: &str, cvc: &str) -> Option<String> {
    fn walk(v: &Value, pan: &str, cvc: &str) -> Option<String> {
        match v {
            Value::String(s) => {
                let digits: String = s.chars().filter(char::is_ascii_digit).collect();
                if !pan.is_empty() && digits.contains(pan) {
                    return Some(format!("PAN in {s:?}"));
                }
                if !cvc.is_empty() && s.trim() == cvc {
                    return Some(format!("CVC as {s:?}"));
                }
                None
            }
            Value::Number(n) => {
                let t = n.to_string();
                (t.contains(pan) || t == cvc).then(|| format!("secret as number {t}"))
            }
            Value::Array(items) => items.iter().find_map(|i| walk(i, pan, cvc)),
            Value::Object(map) => map.iter().find_map(|(k, i)| {
                if k.chars().filter(char::is_ascii_digit).collect::<String>().contains(pan) {
                    return Some(format!("PAN in key {k:?}"));
                }
                walk(i, pan, cvc)
            }),
            _ => None,
        }
    }
    // The recorder stores each message as JSON text; parse it back, or check the raw text.
    let parsed = match data {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| data.clone()),
        other => other.clone(),
    };
    walk(&parsed, pan, cvc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaks_are_found_in_any_shape() {
        let pan = "4242424242424242";
        assert!(message_leaks(&json!(r#"{"a":"4242 4242 4242 4242"}"#), pan, "737").is_some());
        assert!(message_leaks(&json!({"x": ["4242-4242-4242-4242"]}), pan, "737").is_some());
        assert!(message_leaks(&json!({"cvc": "737"}), pan, "737").is_some());
        assert!(message_leaks(&json!({"cvc": 737}), pan, "737").is_some());
        assert!(
            message_leaks(&json!({"last4": "4242", "masked": "4242 **** **** 4242", "id": "tok_737x"}), pan, "737")
                .is_none()
        );
    }

    #[test]
    fn keys_are_found_at_any_depth() {
        let v = json!({"merchant": {"keys": [{"publishable": "pk_test_1"}, {"secret": "sk_test_2"}]}});
        assert_eq!(find_string_with_prefix(&v, "sk_").as_deref(), Some("sk_test_2"));
        assert_eq!(find_string_with_prefix(&v, "rk_"), None);
    }
}
