use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, pki_types::ServerName};

use crate::helpers::*;

/// A TLS connection to the app, optionally restricted to one protocol version.
pub async fn connect(
    app: &TestApp,
    version: Option<&'static rustls::SupportedProtocolVersion>,
) -> Result<TlsStream<TcpStream>, std::io::Error> {
    let mut roots = RootCertStore::empty();
    let cert = rustls::pki_types::CertificateDer::from_pem_slice(&app.cert_pem).unwrap();
    roots.add(cert).unwrap();
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match version {
        Some(v) => vec![v],
        None => vec![&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(app.addr).await?;
    TlsConnector::from(Arc::new(config)).connect(ServerName::try_from("localhost").unwrap(), tcp).await
}

use rustls::pki_types::pem::PemObject as _;

/// A TLS connection that offers HTTP/2 then HTTP/1.1 in ALPN, as browsers do.
async fn connect_alpn(app: &TestApp) -> TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(&app.cert_pem).unwrap()).unwrap();
    let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(app.addr).await.unwrap();
    TlsConnector::from(Arc::new(config)).connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap()
}

/// An HTTP/2 session on a new connection; the connection runs in its own task, whose handle
/// ends when the server closes the connection.
async fn h2_session(
    app: &TestApp,
) -> (h2::client::SendRequest<bytes::Bytes>, tokio::task::JoinHandle<Result<(), h2::Error>>) {
    let tls = connect_alpn(app).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()), "the vault should choose HTTP/2");
    let (send, conn) = h2::client::handshake(tls).await.unwrap();
    (send, tokio::spawn(conn))
}

/// One request on an HTTP/2 session: status, headers and body.
async fn h2_request(
    send: &h2::client::SendRequest<bytes::Bytes>,
    request: http::Request<()>,
    body: Option<&[u8]>,
) -> Result<(http::StatusCode, http::HeaderMap, Vec<u8>), h2::Error> {
    let mut send = send.clone().ready().await?;
    let (response, mut stream) = send.send_request(request, body.is_none())?;
    if let Some(body) = body {
        stream.send_data(bytes::Bytes::copy_from_slice(body), true)?;
    }
    let (head, mut recv) = response.await?.into_parts();
    let mut out = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk?;
        let _ = recv.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    Ok((head.status, head.headers, out))
}

fn h2_get(app: &TestApp, path: &str) -> http::Request<()> {
    http::Request::get(format!("https://localhost:{}{path}", app.addr.port())).body(()).unwrap()
}

/// Browsers choose HTTP/2: a card frame's page, script and WASM arrive over one connection, at
/// once, with the same headers and the same API behind them as over HTTP/1.1.
#[tokio::test]
async fn http2_serves_the_frame_and_the_api_on_one_connection() {
    let app = spawn_app().await;
    let (send, _conn) = h2_session(&app).await;
    let paths = ["/v1/frame/frame.js", "/v1/frame/frame_bg.wasm", "/healthz", "/v1/loader.js"];
    let answers = futures_util::future::join_all(paths.iter().map(|p| {
        let request = h2_get(&app, p);
        let send = &send;
        async move { h2_request(send, request, None).await.unwrap() }
    }))
    .await;
    for (path, (status, headers, body)) in paths.iter().zip(&answers) {
        assert_eq!(*status, 200, "{path}");
        assert!(headers.contains_key("strict-transport-security"), "{path}: {headers:?}");
        assert!(!body.is_empty(), "{path}");
    }
    let (_, _, wasm) = &answers[1];
    assert_eq!(wasm.as_slice(), b"\0asm\x01\0\0\0");
    // A request with a body, and the API's errors, as over HTTP/1.1.
    let request = http::Request::post(format!("https://localhost:{}/v1/tokens", app.addr.port()))
        .header("authorization", format!("Bearer {}", app.pk))
        .header("origin", SHOP)
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (status, _, body) = h2_request(&send, request, Some(b"{\"card\":{\"number\":\"4242\"}}")).await.unwrap();
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(error["error"]["code"].is_string(), "{error}");
    let (status, _, body) = h2_request(&send, h2_get(&app, "/v1/tokens/tok_nope"), None).await.unwrap();
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
}

/// The HTTP/1.1 limits hold over HTTP/2: a connection with nothing in flight for the header
/// timeout is closed, also one that never sends a request; a head over the size limit is refused.
#[tokio::test]
async fn http2_connections_keep_the_idle_and_header_limits() {
    let app = spawn_app_with(|c| c.header_timeout = Duration::from_secs(1)).await;
    // Never a request: closed.
    let (_send, conn) = h2_session(&app).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), conn).await;
    assert!(ended.is_ok(), "an HTTP/2 connection without requests stays open");
    // Used, then idle: closed too, after its answers went out.
    let (send, conn) = h2_session(&app).await;
    let (status, _, _) = h2_request(&send, h2_get(&app, "/healthz"), None).await.unwrap();
    assert_eq!(status, 200);
    let ended = tokio::time::timeout(Duration::from_secs(5), conn).await;
    assert!(ended.is_ok(), "an idle HTTP/2 connection stays open");

    let (send, _conn) = h2_session(&app).await;
    let big = "a".repeat(vault::server::MAX_HEAD_BYTES + 1);
    let request = http::Request::get(format!("https://localhost:{}/healthz", app.addr.port()))
        .header("x-big", big)
        .body(())
        .unwrap();
    match h2_request(&send, request, None).await {
        Ok((status, _, _)) => assert_eq!(status, 431, "an oversized head over HTTP/2"),
        Err(e) => assert!(e.is_reset() || e.is_library() || e.is_go_away(), "{e:?}"),
    }
}

#[tokio::test]
async fn tls_1_2_and_1_3_are_accepted() {
    let app = spawn_app().await;
    for (version, expected) in [
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let mut s = connect(&app, Some(version)).await.unwrap();
        assert_eq!(s.get_ref().1.protocol_version(), Some(expected));
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        assert!(buf.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf));
    }
}

/// A TLS 1.1 ClientHello (record and client version 0x0302, no supported_versions extension,
/// TLS 1.0/1.1 cipher suites), built by hand because modern client libraries cannot send one.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&[0x03, 0x02]); // client_version TLS 1.1
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x06, 0xc0, 0x13, 0xc0, 0x14, 0x00, 0x2f]); // cipher suites
    body.extend_from_slice(&[0x01, 0x00]); // compression: null
    let mut ext = Vec::new();
    // server_name: localhost
    let name = b"localhost";
    let mut sni = vec![0x00];
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    let mut sni_list = (sni.len() as u16).to_be_bytes().to_vec();
    sni_list.extend_from_slice(&sni);
    ext.extend_from_slice(&[0x00, 0x00]);
    ext.extend_from_slice(&(sni_list.len() as u16).to_be_bytes());
    ext.extend_from_slice(&sni_list);
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17]); // supported_groups: secp256r1
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]); // ec_point_formats
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut handshake = vec![0x01];
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x02];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

async fn read_some(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_tls_1_1_client_is_refused() {
    let app = spawn_app().await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(&tls11_client_hello()).await.unwrap();
    let answer = read_some(&mut s).await;
    // No ServerHello (handshake record 0x16): either an alert record (0x15) or nothing.
    assert!(answer.first() != Some(&0x16), "server answered a TLS 1.1 ClientHello with a handshake: {answer:02x?}");
    if let Some(&first) = answer.first() {
        assert_eq!(first, 0x15, "expected an alert: {answer:02x?}");
        // protocol_version (70) or handshake_failure (40).
        assert!(matches!(answer.get(6), Some(70) | Some(40)), "{answer:02x?}");
    }
    // The same socket cannot be used for anything else.
    let _ = s.write_all(b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(!read_some(&mut s).await.starts_with(b"HTTP/"));
}

#[tokio::test]
async fn plain_http_gets_no_http_answer() {
    let app = spawn_app().await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let answer = read_some(&mut s).await;
    assert!(!contains(&answer, b"HTTP/"), "plaintext answer: {}", String::from_utf8_lossy(&answer));
    assert!(!contains(&answer, b"ok"));
}

/// Found by the Schemathesis full run: a client that sends its whole request before reading
/// (Python's `requests` does) got a connection reset instead of the `413` for a body over the
/// limit, because the vault closed with the body unread. The vault now closes lingering: it
/// sends `close_notify`, then reads and discards the rest for a moment.
#[tokio::test]
async fn an_oversized_body_sent_whole_before_reading_still_gets_its_413() {
    let app = spawn_app().await;
    for size in [64 * 1024, 4 * 1024 * 1024] {
        let mut s = connect(&app, None).await.unwrap();
        let head = format!(
            "POST /v1/keys HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n",
            app.admin
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let sent = s.write_all(&vec![b' '; size]).await;
        assert!(sent.is_ok(), "{size} B: the body could not be sent whole: {sent:?}");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(matches!(read, Ok(Ok(_))), "{size} B: {read:?}, after {answer:?}");
        assert!(answer.starts_with("HTTP/1.1 413 "), "{size} B: {answer}");
        assert!(answer.contains("body_too_large"), "{size} B: {answer}");
    }
}
