//! A webhook receiver fast enough not to be the bottleneck of `crates/vault/bench/payments.sh`
//! (a Python receiver could not take the 2,000+ deliveries a second the payment load makes):
//! answers every `POST /hook` with `200` at once over keep-alive HTTP/1.1 **over TLS** (as a
//! merchant's endpoint must be), and for each delivery of a payment of `PROBE_AMOUNT` (the lag
//! probe's payments, `bench/lag.py`) appends `<payment id> <unix milliseconds of arrival>` to
//! the file named by its first argument. Its certificate is a self-signed one for 127.0.0.1
//! generated in the directory of its second argument (`<dir>/tls/cert.pem`), which the vault
//! must be told to trust (`vault serve --webhook-test-ca <dir>/tls/cert.pem`, test mode only).
//! Without a second argument it serves plain http (for builds of the vault older than
//! `--webhook-test-ca`). Prints `listening on https://ADDR` (or `http://`); on SIGTERM prints
//! how many deliveries came, and exits.
//!
//! ```sh
//! cargo run --release -p vault --example webhook_sink -- /tmp/arrivals.txt /tmp/sink
//! ```

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::routing::post;

/// The amount (minor units) of the probe's payments; the load's payments use others.
const PROBE_AMOUNT: u64 = 100;

struct Sink {
    arrivals: Mutex<std::fs::File>,
    deliveries: AtomicU64,
}

fn unix_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

async fn hook(sink: Arc<Sink>, body: Bytes) -> &'static str {
    let at = unix_ms();
    sink.deliveries.fetch_add(1, Ordering::Relaxed);
    if let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) {
        let object = event.pointer("/data/object");
        let field = |name: &str| object.and_then(|o| o.get(name));
        if field("amount").and_then(serde_json::Value::as_u64) == Some(PROBE_AMOUNT) {
            if let (Some(id), Ok(mut file)) = (field("id").and_then(serde_json::Value::as_str), sink.arrivals.lock()) {
                let _ = writeln!(file, "{id} {at}");
            }
        }
    }
    "ok"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: webhook_sink ARRIVALS_FILE [CERT_DIR]")?;
    let acceptor = match args.next() {
        Some(dir) => {
            let tls = vault::tls::load(std::path::Path::new(&dir), None, None)?;
            Some(tokio_rustls::TlsAcceptor::from(vault::tls::server_config(&tls)?))
        }
        None => None,
    };
    let sink = Arc::new(Sink { arrivals: Mutex::new(std::fs::File::create(path)?), deliveries: AtomicU64::new(0) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let me = sink.clone();
    let app = axum::Router::new().route("/hook", post(move |body: Bytes| hook(me.clone(), body)));
    #[allow(clippy::print_stdout)]
    {
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        println!("listening on {scheme}://{}", listener.local_addr()?);
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = term.recv() => break,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                tower::ServiceExt::oneshot(app.clone(), req.map(axum::body::Body::new))
            });
            let http = hyper::server::conn::http1::Builder::new();
            let _ = match acceptor {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(tcp).await else { return };
                    http.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await
                }
                None => http.serve_connection(hyper_util::rt::TokioIo::new(tcp), service).await,
            };
        });
    }
    #[allow(clippy::print_stdout)]
    {
        println!("deliveries {}", sink.deliveries.load(Ordering::Relaxed));
    }
    Ok(())
}
