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
