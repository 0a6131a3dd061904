//! The `vault` binary driven as an operator drives it: findings of the security review that
//! live in the command line and in process start-up.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use crate::helpers::*;

fn vault() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vault"));
    for var in ["VAULT_MASTER_KEY", "VAULT_MASTER_KEY_FILE", "VAULT_DATA_DIR", "VAULT_LISTEN", "VAULT_FRAME_DIR"] {
        c.env_remove(var);
    }
    c.env("RUST_LOG", "warn");
    c
}

fn run(args: &[&str]) -> Output {
    vault().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn init(dir: &Path, extra: &[&str]) -> Value {
    let d = dir.to_str().unwrap();
    let mut args = vec!["init", "--data-dir", d, "--merchant", "Shop", "--allowed-origin", SHOP];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "init failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A running `vault serve` child, killed on drop.
struct Server {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(mut cmd: Command, dir: &Path) -> Result<Server, String> {
    let mut child = cmd
        .args(["serve", "--data-dir", dir.to_str().unwrap(), "--listen", "127.0.0.1:0", "--log-format", "text"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let Some(base) = line.trim().strip_prefix("listening on ") else {
        let status = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        return Err(format!("{status}: {err}"));
    };
    let port = base.rsplit(':').next().unwrap().to_owned();
    let cert = std::fs::read(dir.join("tls/cert.pem")).unwrap();
    Ok(Server { child, base: format!("https://localhost:{port}"), client: client_for(&cert) })
}

impl Server {
    async fn tokenize(&self, pk: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/tokens", self.base))
            .bearer_auth(pk)
            .header("Origin", SHOP)
            .json(&card_body(VISA))
            .send()
            .await
            .unwrap()
    }
}

fn write_key(dir: &Path, name: &str) -> (PathBuf, String) {
    use base64::Engine as _;
    let mut raw = [0u8; 32];
    vault::crypto::random_fill(&mut raw).unwrap();
    let text = base64::engine::general_purpose::STANDARD.encode(raw);
    let path = dir.join(name);
    std::fs::write(&path, format!("{text}\n")).unwrap();
    (path, text)
}

#[tokio::test]
async fn finding_05_the_development_master_key_never_protects_live_data() {
    let tmp = tempfile::tempdir().unwrap();
    // `init --mode live` without a master key: refused, and no development key written.
    let live_dir = tmp.path().join("live");
    let o = run(&["init", "--data-dir", live_dir.to_str().unwrap(), "--merchant", "Shop", "--mode", "live"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("live keys need a production master key"), "{}", stderr(&o));
    assert!(!live_dir.join("master.key").exists());

    // A development vault cannot get live keys…
    let dir = tmp.path().join("dev");
    let out = init(&dir, &[]);
    assert!(dir.join("master.key").exists());
    let d = dir.to_str().unwrap();
    let o = run(&["keys", "create", "--data-dir", d, "--merchant", "Shop", "--kind", "publishable", "--mode", "live"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("live keys need a production master key"), "{}", stderr(&o));

    // …and one that has them (written by an older version) does not serve.
    {
        let (mut master, _) = vault::bootstrap::resolve_master_key(&dir, None, None).unwrap();
        let store = vault::bootstrap::open_store(&dir, &mut master).await.unwrap();
        let merchant = out["merchant"]["id"].as_str().unwrap().to_owned();
        let spec = vault::keys::KeySpec {
            merchant_id: merchant,
            kind: vault::keys::KeyKind::Publishable,
            mode: vault::keys::Mode::Live,
            role: None,
            label: String::new(),
            allowed_origins: vec![SHOP.into()],
            ip_allowlist: vec![],
        };
        vault::bootstrap::create_key(store.as_ref(), &master, spec, START).await.unwrap();
        store.close();
    }
    let err = serve(vault(), &dir).err().expect("serve must refuse");
    assert!(err.contains("live keys need a production master key"), "{err}");

    // Moved to a production key with `master-key rotate`, it serves.
    let (new_key, _) = write_key(tmp.path(), "new.key");
    let o = run(&["master-key", "rotate", "--data-dir", d, "--new-master-key-file", new_key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_file(dir.join("master.key")).unwrap();
    let mut cmd = vault();
    cmd.env("VAULT_MASTER_KEY_FILE", &new_key);
    let server = serve(cmd, &dir).unwrap();
    assert_eq!(server.tokenize(out["publishable_key"].as_str().unwrap()).await.status(), 201);
}

#[tokio::test]
async fn finding_05_master_key_rotation_rewraps_every_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let out = init(&dir, &[]);
    let (pk, sk) = (out["publishable_key"].as_str().unwrap(), out["secret_key"].as_str().unwrap());
    let token = {
        let server = serve(vault(), &dir).unwrap();
        let r = server.tokenize(pk).await;
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    };
    let (new_key, _) = write_key(tmp.path(), "new.key");
    let d = dir.to_str().unwrap();
    let o = run(&["master-key", "rotate", "--data-dir", d, "--new-master-key-file", new_key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["keys_rewrapped"], 4, "data + fingerprint keys for test and live");
    // The old key no longer opens the vault.
    let o = run(&["keys", "list", "--data-dir", d]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("does not match"), "{}", stderr(&o));
    // The new one does: old API keys authenticate, the old token decrypts with its CVC.
    let mut cmd = vault();
    cmd.env("VAULT_MASTER_KEY_FILE", &new_key);
    let server = serve(cmd, &dir).unwrap();
    let r = server
        .client
        .post(format!("{}/v1/tokens/{token}/detokenize", server.base))
        .bearer_auth(sk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["card"]["number"], VISA.0);
    assert_eq!(d["card"]["cvc"], VISA.1);
    assert_eq!(server.tokenize(pk).await.status(), 201);
}

#[tokio::test]
async fn finding_07_cli_rotation_refuses_inactive_keys_and_unbounded_overlaps() {
    let tmp = tempfile::tempdir().unwrap();
    let out = init(tmp.path(), &[]);
    let d = tmp.path().to_str().unwrap();
    let id_of = |role: &str| {
        out["keys"].as_array().unwrap().iter().find(|k| k["role"] == role).unwrap()["id"].as_str().unwrap().to_owned()
    };
    let (ro, admin) = (id_of("read_only"), id_of("admin"));
    assert!(run(&["keys", "revoke", "--data-dir", d, &ro]).status.success());
    let o = run(&["keys", "rotate", "--data-dir", d, &ro]);
    assert!(!o.status.success(), "a revoked key was revived");
    assert!(stderr(&o).contains("only an active key can be rotated"), "{}", stderr(&o));
    for overlap in ["9223372036854775807", "-5", "604801"] {
        let o = run(&["keys", "rotate", "--data-dir", d, &admin, "--overlap-secs", overlap]);
        assert!(!o.status.success(), "overlap {overlap} accepted");
    }
    let o = run(&["keys", "rotate", "--data-dir", d, &admin, "--overlap-secs", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Rotated with no overlap, the old admin key is expired: rotating it again is refused.
    let o = run(&["keys", "rotate", "--data-dir", d, &admin]);
    assert!(!o.status.success(), "an expired key was revived");
}

#[tokio::test]
async fn finding_01_only_the_cli_forces_a_wide_allowlist() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), &[]);
    let d = tmp.path().to_str().unwrap();
    let create = |extra: &[&str]| {
        let mut args =
            vec!["keys", "create", "--data-dir", d, "--merchant", "Shop", "--kind", "secret", "--role", "tokenization"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let o = create(&["--ip-allow", "10.0.0.0/8"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--force-wide-allowlist"), "{}", stderr(&o));
    let o = create(&["--ip-allow", "10.0.0.0/8", "--force-wide-allowlist"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = create(&["--ip-allow", "10.1.2.0/24"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[tokio::test]
async fn finding_12_the_master_key_leaves_the_process_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, key) = write_key(tmp.path(), "unused.key");
    let dir = tmp.path().join("v");
    let o = vault()
        .env("VAULT_MASTER_KEY", &key)
        .args(["init", "--data-dir", dir.to_str().unwrap(), "--merchant", "Shop", "--allowed-origin", SHOP])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["master_key_file"], Value::Null);
    let mut cmd = vault();
    cmd.env("VAULT_MASTER_KEY", &key);
    let server = serve(cmd, &dir).unwrap();
    assert_eq!(server.tokenize(out["publishable_key"].as_str().unwrap()).await.status(), 201);
    let environ = std::fs::read(format!("/proc/{}/environ", server.child.id())).unwrap();
    assert!(!contains(&environ, key.as_bytes()), "the master key is still readable in /proc/PID/environ");
}

/// A fresh Postgres schema's URL (see `store_conformance`).
async fn fresh_postgres_url() -> String {
    let base = crate::store_conformance::postgres_url();
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("Postgres is required and not reachable at {base}: {e}"));
    tokio::spawn(conn);
    let schema = format!("vp_{}", vault::crypto::random_base62(12).unwrap().to_lowercase());
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    format!("{base}?options=-c%20search_path%3D{schema}")
}

#[tokio::test]
async fn three_processes_on_one_postgres_survive_a_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let (key_file, _) = write_key(tmp.path(), "master.key");
    let url = fresh_postgres_url().await;
    let env = |c: &mut Command| {
        c.env("VAULT_MASTER_KEY_FILE", &key_file).env("VAULT_DATABASE_URL", &url);
    };
    let dir = tmp.path().join("d");
    let mut c = vault();
    env(&mut c);
    let o = c
        .args(["init", "--data-dir", dir.to_str().unwrap(), "--merchant", "Shop", "--allowed-origin", SHOP])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    let (pk, sk) =
        (out["publishable_key"].as_str().unwrap().to_owned(), out["secret_key"].as_str().unwrap().to_owned());
    let mut servers = Vec::new();
    for _ in 0..3 {
        let mut c = vault();
        env(&mut c);
        servers.push(serve(c, &dir).unwrap());
    }
    // Tokenize on every instance while the first one is killed (-9) half-way.
    let mut acknowledged = Vec::new();
    let mut failed = 0;
    for i in 0..60 {
        if i == 30 {
            servers[0].child.kill().unwrap();
        }
        let server = &servers[i % 3];
        match server
            .client
            .post(format!("{}/v1/tokens", server.base))
            .bearer_auth(&pk)
            .header("Origin", SHOP)
            .json(&card_body(VISA))
            .send()
            .await
        {
            Ok(r) if r.status() == 201 => {
                acknowledged.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned())
            }
            Ok(r) => panic!("unexpected {}", r.status()),
            Err(_) => failed += 1,
        }
    }
    assert!(failed >= 9, "requests to the killed instance fail: {failed}");
    // Every acknowledged token reads back from the survivors.
    for (n, id) in acknowledged.iter().enumerate() {
        let server = &servers[1 + n % 2];
        let r = server.client.get(format!("{}/v1/tokens/{id}", server.base)).bearer_auth(&sk).send().await.unwrap();
        assert_eq!(r.status(), 200, "{id} lost");
    }
    assert!(acknowledged.len() >= 40, "{}", acknowledged.len());
}

#[tokio::test]
async fn users_create_prints_a_one_time_link_and_stores_only_its_hash() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), &[]);
    let d = tmp.path().to_str().unwrap();
    let create = |email: &str, role: &str| {
        run(&["users", "create", "--data-dir", d, "--merchant", "Shop", "--email", email, "--role", role])
    };
    let o = create("Owner@Shop.example", "owner");
    assert!(o.status.success(), "{}", stderr(&o));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["email"], "owner@shop.example");
    assert_eq!(out["role"], "owner");
    let link = out["set_password_link"].as_str().unwrap();
    let token = link.strip_prefix("https://127.0.0.1:8444/welcome/").unwrap_or_else(|| panic!("{link}"));
    assert_eq!(token.len(), 43);
    // Refusals with a precise reason.
    let o = create("owner@shop.example", "admin");
    assert!(!o.status.success() && stderr(&o).contains("exists"), "{}", stderr(&o));
    let o = create("not-an-email", "admin");
    assert!(stderr(&o).contains("Enter an email address"), "{}", stderr(&o));
    let o = create("dev@shop.example", "superuser");
    assert!(stderr(&o).contains("--role must be owner, admin, developer or viewer"), "{}", stderr(&o));
    // The database holds the token's hash, never the token.
    let db = rusqlite::Connection::open(tmp.path().join("vault.db")).unwrap();
    let (hash, n): (String, i64) =
        db.query_row("SELECT max(hash), count(*) FROM devspace_links", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!(n, 1);
    assert_ne!(hash, token);
    assert_eq!(hash, devspace::secret::sha256_hex(token.as_bytes()));
    let audited: i64 = db
        .query_row("SELECT count(*) FROM audit_events WHERE event = 'devspace.user_created'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn audit_list_by_token_finds_its_events_under_both_forms_of_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let out = init(&dir, &[]);
    let pk = out["publishable_key"].as_str().unwrap();
    let (token, other) = {
        let server = serve(vault(), &dir).unwrap();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let r = server.tokenize(pk).await;
            assert_eq!(r.status(), 201);
            ids.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
        }
        (ids.remove(0), ids.remove(0))
    };
    // An event as vaults before 2026-11-27 wrote it: the same hash in hex, not in letters a-p.
    let db = rusqlite::Connection::open(dir.join("vault.db")).unwrap();
    let rows: Vec<String> = db
        .prepare("SELECT detail FROM audit_events WHERE event = 'token.created'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 2);
    let refs: Vec<String> = rows
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap()["token_ref"].as_str().unwrap().to_owned())
        .collect();
    for r in &refs {
        let body = r.strip_prefix("tref_").unwrap();
        assert!(body.len() == 16 && body.bytes().all(|b| (b'a'..=b'p').contains(&b)), "{r}");
    }
    let legacy: String = refs[0]
        .strip_prefix("tref_")
        .unwrap()
        .bytes()
        .map(|b| char::from_digit(u32::from(b - b'a'), 16).unwrap())
        .collect();
    db.execute(
        "INSERT INTO audit_events (ts, event, outcome, merchant_id, mode, key_id, ip, request_id, detail)
         SELECT ts, 'token.read', outcome, merchant_id, mode, key_id, ip, request_id, ?1
         FROM audit_events WHERE event = 'token.created' LIMIT 1",
        [serde_json::json!({ "token_ref": format!("tref_{legacy}"), "found": true }).to_string()],
    )
    .unwrap();
    drop(db);
    let d = dir.to_str().unwrap();
    let list = |tok: &str| {
        let o = run(&["audit", "list", "--data-dir", d, "--token", tok]);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    // Which of the two tokens the first token.created row belongs to is not known: find it.
    let (first, second) = if list(&token).iter().any(|e| e["detail"]["token_ref"] == refs[0].as_str()) {
        (token, other)
    } else {
        (other, token)
    };
    let events = list(&first);
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["token.read", "token.created"], "{events:?}");
    assert_eq!(events[0]["detail"]["token_ref"], format!("tref_{legacy}"));
    let events = list(&second);
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["token.created"], "{events:?}");
    assert_eq!(events[0]["detail"]["token_ref"], refs[1].as_str());
}
