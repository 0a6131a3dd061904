//! Faults and floods (issue 11): clock jumps through the clock seam, the connection caps that
//! shed slow clients, and a flood from many client addresses against the bounded
//! rate-limiter and failure-counter maps. The out-of-process scenarios (Postgres paused and
//! restarted, Redis stopped, disk full, slowloris) are `scripts/reliability/faults.sh`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;

use crate::helpers::*;

fn connector(app: &TestApp) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(&app.cert_pem).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// A TLS connection to the app from the source address `from`.
async fn connect_from(
    app: &TestApp,
    tls: &TlsConnector,
    from: IpAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let tcp = socket.connect(app.addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(Duration::from_secs(10), tls.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

#[tokio::test]
async fn clock_jumps_neither_expire_nor_purge_early_and_resurrect_nothing() {
    let app = spawn_app().await;
    let a = app.tokenize(VISA).await;
    let a_id = a["id"].as_str().unwrap().to_owned();
    // The wall clock is stepped back two hours (an NTP correction).
    app.clock.advance(-2 * 3600);
    let b = app.tokenize(MASTERCARD).await;
    let b_id = b["id"].as_str().unwrap().to_owned();
    assert_eq!(b["expires_at"].as_i64().unwrap() - b["created"].as_i64().unwrap(), 86_400);
    // Nothing expires or is purged early: the sweeps run while the clock is back.
    app.state().sweep().await;
    app.state().purge_cvcs().await;
    let meta = app.metadata(&a).await;
    assert_eq!(meta["expires_at"], a["expires_at"], "expiry moved with the clock");
    let d: Value = app.detokenize(&b_id, &app.sk).await.json().await.unwrap();
    assert_eq!(d["cvc_returned"], true, "the CVC was purged early after the jump back");
    // Forward to B's expiry (24 h after its creation by the clock of then), before A's.
    app.clock.advance(86_400);
    assert_eq!(error_code(app.get(&format!("/v1/tokens/{b_id}"), &app.sk).await).await.0, 404);
    assert_eq!(app.get(&format!("/v1/tokens/{a_id}"), &app.sk).await.status(), 200);
    // A's CVC was never read and is long past its hour: purged.
    app.state().purge_cvcs().await;
    let d: Value = app.detokenize(&a_id, &app.sk).await.json().await.unwrap();
    assert_eq!(d["cvc_returned"], false);
    app.eventually(|t| t.count("SELECT count(*) FROM tokens") == 1).await;
    // A jump back after the sweep brings nothing back, and A is still there.
    app.clock.advance(-86_400);
    assert_eq!(error_code(app.get(&format!("/v1/tokens/{b_id}"), &app.sk).await).await.0, 404);
    assert_eq!(app.get(&format!("/v1/tokens/{a_id}"), &app.sk).await.status(), 200);
    // A expires 24 h after its own creation, whatever the jumps in between.
    app.clock.advance(86_400 + 2 * 3600 - 1);
    assert_eq!(app.get(&format!("/v1/tokens/{a_id}"), &app.sk).await.status(), 200);
    app.clock.advance(1);
    assert_eq!(error_code(app.get(&format!("/v1/tokens/{a_id}"), &app.sk).await).await.0, 404);
}

#[tokio::test]
async fn connections_beyond_the_caps_are_shed_and_their_places_come_back() {
    let app = spawn_app_with(|c| {
        c.max_connections_per_client = 5;
        c.max_connections = 8;
    })
    .await;
    let tls = connector(&app);
    let one = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect_from(&app, &tls, one).await.unwrap());
    }
    // The sixth from the same address is closed before the handshake.
    assert!(connect_from(&app, &tls, one).await.is_err(), "a sixth connection from one address was served");
    // Other addresses still get in, up to the total cap of 8.
    let mut others = Vec::new();
    for i in 0..3 {
        others.push(connect_from(&app, &tls, IpAddr::V4(Ipv4Addr::new(127, 0, 3, 1 + i))).await.unwrap());
    }
    assert!(connect_from(&app, &tls, IpAddr::V4(Ipv4Addr::new(127, 0, 3, 9))).await.is_err(), "a ninth was served");
    // A held connection still works, and a closed one gives its place back.
    let mut s = held.pop().unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    assert!(buf.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf));
    drop(s);
    let mut again = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Ok(c) = connect_from(&app, &tls, one).await {
            again = Some(c);
            break;
        }
    }
    assert!(again.is_some(), "the closed connection's place did not come back");
}

/// The source address of flood client `i`: distinct for i < 250 * 250 * 200 (10 M), inside
/// 127.0.0.0/8 (every address of it reaches this machine's loopback on Linux).
fn flood_address(i: u32) -> IpAddr {
    let b = 16 + i / 62_500;
    let c = (i / 250) % 250 + 1;
    let d = i % 250 + 1;
    IpAddr::V4(Ipv4Addr::new(127, b as u8, c as u8, d as u8))
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Every address sends, on one connection, a tokenize request with the publishable key (charging
/// its per-address bucket and the per-key-and-address bucket) and a request with a wrong secret
/// key (an authentication-failure counter). `VAULT_FLOOD_ADDRESSES` sets how many addresses
/// (default 500; the documented run uses 100,000, see RELIABILITY.md); the maps may hold a
/// tenth of that (at least 100). The limits refill slowly (1/s, burst 100), so no bucket is
/// idle enough to be dropped during the flood: the maps fill up, and newcomers share the
/// overflow bucket (429 once it is empty).
#[tokio::test]
async fn a_flood_from_many_addresses_keeps_the_limiter_and_failure_maps_bounded() {
    let addresses: u32 = std::env::var("VAULT_FLOOD_ADDRESSES").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let capacity = (addresses as usize / 10).max(100);
    let app = Arc::new(
        spawn_app_with(|c| {
            c.limiter_capacity = capacity;
            c.max_connections_per_client = 4;
            c.rate_per_ip = vault::ratelimit::Rate { per_second: 1.0, burst: 100.0 };
            c.rate_per_key = vault::ratelimit::Rate { per_second: 1.0, burst: 100.0 };
        })
        .await,
    );
    let tls = connector(&app);
    let wrong = format!("sk_test_{}", "C".repeat(32));
    let request = Arc::new(format!(
        "POST /v1/tokens HTTP/1.1\r\nHost: localhost\r\nOrigin: {SHOP}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}\
         GET /v1/audit_events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {wrong}\r\nConnection: close\r\n\r\n",
        app.pk
    ));
    let rss_before = rss_kib();
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::<String, u64>::new();
    let mut peak = (0usize, 0usize, 0usize);
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0u32;
    let concurrency = 32;
    let mut done = 0u32;
    let mut unanswered = 0u32;
    while done < addresses {
        while next < addresses && tasks.len() < concurrency {
            let (app, tls, request) = (Arc::clone(&app), tls.clone(), Arc::clone(&request));
            let from = flood_address(next);
            tasks.spawn(async move {
                let mut s = connect_from(&app, &tls, from).await.map_err(|e| format!("connect {from}: {e}"))?;
                s.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
                let mut buf = Vec::new();
                tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
                    .await
                    .map_err(|_| "timed out".to_owned())?
                    .map_err(|e| e.to_string())?;
                let text = String::from_utf8_lossy(&buf).into_owned();
                Ok::<Vec<String>, String>(
                    text.match_indices("HTTP/1.1 ")
                        .filter_map(|(i, _)| text.get(i + 9..i + 12))
                        .map(str::to_owned)
                        .collect(),
                )
            });
            next += 1;
        }
        let Some(joined) = tasks.join_next().await else { break };
        let answers = joined.unwrap().unwrap();
        // A refused first request (429 before its body is read) closes the connection, so the
        // second may go unanswered; every address gets at least one answer.
        if answers.is_empty() {
            unanswered += 1;
        }
        for status in answers {
            *statuses.entry(status).or_default() += 1;
        }
        done += 1;
        if done % 500 == 0 || done == addresses {
            let s = app.state();
            peak =
                (peak.0.max(s.ip_limiter.len()), peak.1.max(s.key_limiter.len()), peak.2.max(s.auth_failure_entries()));
        }
    }
    let s = app.state();
    println!(
        "flood: {addresses} addresses in {:.1} s; answers {statuses:?}; capacity {capacity}; peak map sizes: \
         per-address {} / per-key-and-address {} / failure counters {}; now {} / {} / {}; \
         test process RSS {} -> {} KiB",
        started.elapsed().as_secs_f64(),
        peak.0,
        peak.1,
        peak.2,
        s.ip_limiter.len(),
        s.key_limiter.len(),
        s.auth_failure_entries(),
        rss_before,
        rss_kib()
    );
    assert_eq!(unanswered, 0, "addresses without any answer");
    assert!(statuses.keys().all(|k| matches!(k.as_str(), "400" | "401" | "429")), "{statuses:?}");
    // One overflow bucket may come on top of the capacity.
    assert!(peak.0 <= capacity + 1, "per-address buckets: {}", peak.0);
    assert!(peak.1 <= capacity + 1, "per-key-and-address buckets: {}", peak.1);
    assert!(peak.2 <= capacity, "failure counters: {}", peak.2);
    // The maps were really filled (the flood reached them), and newcomers were limited. Failure
    // counters expire 60 s after their window starts, so a long flood (minutes) keeps them a
    // little under capacity at its peak (9,973 of 10,000 at 100,000 addresses): 90 %.
    assert!(peak.0 >= capacity && peak.2 * 10 >= capacity * 9, "{peak:?}");
    assert!(statuses.get("429").copied().unwrap_or(0) > 0, "{statuses:?}");
}
