//! The TLS listener: accepts TCP connections (at most so many in all and per client address;
//! beyond that a new connection is closed at once), performs the TLS handshake under a timeout
//! and serves HTTP/1.1 with a header-read timeout, or HTTP/2 when the client asks for it in the
//! handshake (ALPN; [`serve_h2`]). There is no plaintext listener.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
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

/// How many connections may be open at once. Slow clients (slowloris: a head dribbled a byte
/// at a time) each hold a connection for up to the handshake plus header timeouts; these caps
/// keep a crowd of them from using up memory and file descriptors. A connection beyond either
/// cap is closed as soon as it is accepted, before the TLS handshake (shed).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections in all.
    pub total: usize,
    /// Open connections per client address (IPv4 address, IPv6 /64, as the rate limits count).
    pub per_client: usize,
}

/// Open connections, in all and per client address; a [`ConnectionSlot`] gives its place back
/// when dropped.
#[derive(Debug, Default)]
struct ConnectionCount {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One open connection's place in the [`ConnectionCount`].
struct ConnectionSlot {
    count: Arc<Mutex<ConnectionCount>>,
    client: IpAddr,
}

impl ConnectionSlot {
    /// A place for a connection from `client`, or `None` if a cap is reached.
    fn take(count: &Arc<Mutex<ConnectionCount>>, client: IpAddr, limits: ConnectionLimits) -> Option<Self> {
        let mut c = count.lock().ok()?;
        let mine = c.per_client.get(&client).copied().unwrap_or(0);
        if c.total >= limits.total || mine >= limits.per_client {
            return None;
        }
        c.total += 1;
        c.per_client.insert(client, mine + 1);
        Some(Self { count: Arc::clone(count), client })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut c) = self.count.lock() {
            c.total = c.total.saturating_sub(1);
            if let Some(n) = c.per_client.get_mut(&self.client) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.per_client.remove(&self.client);
                }
            }
        }
    }
}

/// The address connections are counted under: IPv6 clients by /64 (one host usually has a
/// whole /64), IPv4 ones by address.
fn client_of(peer: &SocketAddr) -> IpAddr {
    match peer.ip() {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        ip @ IpAddr::V4(_) => ip,
    }
}

/// How long a graceful shutdown waits for in-flight requests before giving up on them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then shuts down
/// gracefully: stops accepting, lets every in-flight request finish (idle keep-alive
/// connections close at once), and returns when all connections are done or after
/// [`DRAIN_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    timeouts: Timeouts,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = TlsAcceptor::from(tls);
    let count = Arc::new(Mutex::new(ConnectionCount::default()));
    let mut shed: u64 = 0;
    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
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
        let Some(slot) = ConnectionSlot::take(&count, client_of(&peer), limits) else {
            shed += 1;
            // Logged on the first and then every 1000th, so a flood does not flood the log.
            if shed == 1 || shed % 1000 == 0 {
                tracing::warn!(target: "vault::http", peer = %peer, shed, "connection limit reached; connection closed");
            }
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let mut drain = drain_rx.clone();
        connections.spawn(async move {
            let _slot = slot;
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
            if tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice()) {
                serve_h2(tls, peer, router, timeouts.header, drain).await;
                return;
            }
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer));
                // Boxed so the connection is `Unpin` and hands its stream back when it ends.
                Box::pin(router.clone().oneshot(req.map(axum::body::Body::new)))
            });
            let mut conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeouts.header)
                .keep_alive(true)
                // Heads are written as one buffer, so `JsonErrors` sees each one whole.
                .writev(false)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(JsonErrors::new(tls)), service);
            let result = tokio::select! {
                result = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => result,
                Ok(()) = drain.changed() => {
                    // Finish the request in flight (if any), then close.
                    std::pin::Pin::new(&mut conn).graceful_shutdown();
                    std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)).await
                }
            };
            if let Err(e) = &result {
                tracing::debug!(target: "vault::http", peer = %peer, error = %e, "connection ended with an error");
            }
            linger_and_close(conn.into_parts().io.into_inner()).await;
        });
    }
    let _ = drain_tx.send(true);
    let open = connections.len();
    if open > 0 {
        tracing::info!(connections = open, "draining connections");
    }
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(connections = connections.len(), "drain timed out; closing the remaining connections");
        connections.abort_all();
    }
}

/// Most requests one HTTP/2 connection may have in flight at once (hyper's default is 200; a
/// card frame's cold mount makes three).
pub const H2_MAX_STREAMS: u32 = 64;

/// Serves one connection whose client chose HTTP/2 in the TLS handshake (ALPN `h2`; browsers
/// do). One connection carries the frame page, its script and its WASM at once, where HTTP/1.1
/// opens a connection, with its own TLS handshake, for each download in parallel.
///
/// The HTTP/1.1 limits, in HTTP/2 terms: request heads up to [`MAX_HEAD_BYTES`] (header list
/// size), at most [`H2_MAX_STREAMS`] requests at once, and a connection with no request in
/// flight for `idle` (the header timeout, which is also HTTP/1.1's keep-alive time), or that
/// never sends one, is closed (`GOAWAY`). Resets and malformed frames are hyper's (`h2`'s)
/// to limit: it bounds pending resets (CVE-2023-44487) and header continuation frames.
/// Requests go through the same router, with the same [`ClientAddr`].
async fn serve_h2(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    peer: SocketAddr,
    router: Router,
    idle: Duration,
    mut drain: tokio::sync::watch::Receiver<bool>,
) {
    /// Requests in flight, and when the last one ended (or the connection began).
    struct Activity {
        in_flight: usize,
        since: tokio::time::Instant,
    }
    /// Counts a request from its start until its answer (head) is ready.
    struct InFlight(Arc<Mutex<Activity>>);
    impl InFlight {
        fn start(activity: &Arc<Mutex<Activity>>) -> Self {
            if let Ok(mut a) = activity.lock() {
                a.in_flight += 1;
            }
            Self(Arc::clone(activity))
        }
    }
    impl Drop for InFlight {
        fn drop(&mut self) {
            if let Ok(mut a) = self.0.lock() {
                a.in_flight = a.in_flight.saturating_sub(1);
                a.since = tokio::time::Instant::now();
            }
        }
    }
    let activity = Arc::new(Mutex::new(Activity { in_flight: 0, since: tokio::time::Instant::now() }));
    let counted = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ClientAddr(peer));
        let guard = InFlight::start(&counted);
        let answer = router.clone().oneshot(req.map(axum::body::Body::new));
        async move {
            let response = answer.await;
            drop(guard);
            response
        }
    });
    let conn = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_header_list_size(u32::try_from(MAX_HEAD_BYTES).unwrap_or(u32::MAX))
        .serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    let mut check = tokio::time::interval(idle.min(Duration::from_secs(1)));
    let mut closing = false;
    let result = loop {
        tokio::select! {
            result = conn.as_mut() => break result,
            Ok(()) = drain.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = check.tick(), if !closing => {
                let quiet = activity.lock().is_ok_and(|a| a.in_flight == 0 && a.since.elapsed() >= idle);
                if quiet {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(target: "vault::http", peer = %peer, error = %e, "HTTP/2 connection ended with an error");
    }
}

/// Lingering close: how long, and how many bytes, a closing connection still reads and
/// discards (see [`linger_and_close`]).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 8 << 20;

/// Closes a connection the way a client can read the last answer: sends TLS `close_notify`
/// and the TCP FIN, then reads and discards what the client still sends, for at most
/// [`LINGER_TIME`] and [`LINGER_BYTES`], before the socket is dropped.
///
/// Without it, an answer given before the request body was read (`413` for a body over the
/// limit, `431`) was often lost: the client was still sending, the kernel answered the unread
/// bytes with a TCP reset, and a client that sends the whole body before reading (Python's
/// `requests`, found by the Schemathesis full run) saw a reset instead of the `413`.
async fn linger_and_close<IO>(mut io: IO)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let linger = async {
        let _ = io.shutdown().await;
        // What is discarded may be a refused request's card data: the buffer is zeroed when
        // dropped, also when the timeout cancels this future.
        let mut sink = zeroize::Zeroizing::new([0u8; 8 * 1024]);
        let mut read = 0;
        while read < LINGER_BYTES {
            match io.read(&mut sink[..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, linger).await;
}

/// Largest request head (request line and headers) hyper reads; larger heads get 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Rewrites hyper's automatic answers to requests it could not parse (`400` for a malformed
/// request line, header or `Content-Length`, `414`, `431`), which carry an empty body, into
/// the documented JSON error with the usual security headers and `Connection: close`.
///
/// Every answer produced by the router carries a `request-id` header (the guard middleware
/// adds it); a head without one is hyper's own. Heads arrive whole because the connection is
/// built with `writev(false)` and heads are a few hundred bytes.
pub struct JsonErrors<IO> {
    inner: IO,
    /// Replacement bytes being written, how many are written, and the length of the original
    /// buffer to report once done.
    replacement: Option<(Vec<u8>, usize, usize)>,
}

impl<IO> JsonErrors<IO> {
    /// Wraps a connection.
    pub fn new(inner: IO) -> Self {
        Self { inner, replacement: None }
    }
}

/// If `buf` starts with hyper's automatic error answer, the status to replace it with.
fn automatic_error(buf: &[u8]) -> Option<axum::http::StatusCode> {
    let rest = buf.strip_prefix(b"HTTP/1.1 ")?;
    let code = std::str::from_utf8(rest.get(..3)?).ok()?.parse::<u16>().ok()?;
    if !matches!(code, 400 | 414 | 431) {
        return None;
    }
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = buf.get(..head_end)?;
    let has_request_id = head.split(|&b| b == b'\n').any(|line| line.to_ascii_lowercase().starts_with(b"request-id:"));
    if has_request_id { None } else { axum::http::StatusCode::from_u16(code).ok() }
}

fn error_answer(status: axum::http::StatusCode) -> Vec<u8> {
    let body = crate::api::error::ApiError::for_status(status).json_body();
    let mut headers = axum::http::HeaderMap::new();
    crate::api::security_headers(&mut headers);
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nrequest-id: req_{}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len(),
        crate::crypto::random_base62(20).unwrap_or_default(),
    )
    .into_bytes();
    for (name, value) in &headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    out
}

impl<IO: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for JsonErrors<IO> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for JsonErrors<IO> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        if self.replacement.is_none() {
            match automatic_error(buf) {
                Some(status) => self.replacement = Some((error_answer(status), 0, buf.len())),
                None => return std::pin::Pin::new(&mut self.inner).poll_write(cx, buf),
            }
        }
        let this = &mut *self;
        while let Some((bytes, written, original)) = this.replacement.as_mut() {
            let Some(rest) = bytes.get(*written..).filter(|r| !r.is_empty()) else {
                let original = *original;
                this.replacement = None;
                return Poll::Ready(Ok(original));
            };
            match std::pin::Pin::new(&mut this.inner).poll_write(cx, rest) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(0))
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_heads_without_a_request_id_are_hyper_errors() {
        assert_eq!(
            automatic_error(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n\r\n"),
            Some(axum::http::StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            automatic_error(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n"),
            Some(axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        assert_eq!(automatic_error(b"HTTP/1.1 400 Bad Request\r\nrequest-id: req_x\r\n\r\n{}"), None);
        assert_eq!(automatic_error(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), None);
        assert_eq!(automatic_error(b"{\"partial\":1}"), None);
        let answer = String::from_utf8(error_answer(axum::http::StatusCode::BAD_REQUEST)).unwrap();
        assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"), "{answer}");
        assert!(answer.ends_with("\"code\":\"malformed_request\",\"message\":\"The request is malformed (request line, headers or path).\"}}"), "{answer}");
    }
}
