//! The TLS listener: accepts TCP connections, performs the TLS handshake under a timeout and
//! serves HTTP/1.1 with a header-read timeout. There is no plaintext listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::api::ClientAddr;

/// Connection-level timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TLS handshake.
    pub handshake: Duration,
    /// Request headers (and keep-alive idle time).
    pub header: Duration,
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = TlsAcceptor::from(tls);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(timeouts.handshake, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(target: "vault::tls", peer = %peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(target: "vault::tls", peer = %peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer));
                router.clone().oneshot(req.map(axum::body::Body::new))
            });
            let result = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeouts.header)
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), service)
                .await;
            if let Err(e) = result {
                tracing::debug!(target: "vault::http", peer = %peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// The vault's own origins for a bound address.
pub fn default_public_origins(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let ip = addr.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        vec![format!("https://127.0.0.1:{port}"), format!("https://localhost:{port}"), format!("https://[::1]:{port}")]
    } else {
        match ip {
            std::net::IpAddr::V4(v4) => vec![format!("https://{v4}:{port}")],
            std::net::IpAddr::V6(v6) => vec![format!("https://[{v6}]:{port}")],
        }
    }
}
