//! A scripted HTTPS server standing in for the vault: it answers the n-th request with the n-th
//! scripted reply (the last one again after that) and records every request.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use altafinex::{Client, ClientBuilder, RetryConfig, Sleep};

pub const KEY: &str = "sk_test_SuperSecretValue123";

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply { status, headers: vec![("content-type", "application/json".into())], body: body.into(), delay: None }
    }

    pub fn error(status: u16, error_type: &str, code: &str) -> Reply {
        Reply::json(status, format!(r#"{{"error":{{"type":"{error_type}","code":"{code}","message":"scripted"}}}}"#))
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = Some(delay);
        self
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub struct Fake {
    pub addr: std::net::SocketAddr,
    pub cert_pem: Vec<u8>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    pub sleeps: RecordingSleep,
    _dir: TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Records the waits the client asks for and returns at once: retries are checked without
/// timing anything.
#[derive(Debug, Clone, Default)]
pub struct RecordingSleep(pub Arc<Mutex<Vec<Duration>>>);

impl RecordingSleep {
    pub fn waits(&self) -> Vec<Duration> {
        self.0.lock().unwrap().clone()
    }
}

impl Sleep for RecordingSleep {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        self.0.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

pub async fn start(replies: Vec<Reply>) -> Fake {
    assert!(!replies.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let tls = vault::tls::load(dir.path(), None, None).unwrap();
    let cert_pem = std::fs::read(&tls.cert_path).unwrap();
    let acceptor = TlsAcceptor::from(vault::tls::server_config(&tls).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let replies = Arc::new(replies);
    let task = {
        let requests = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let acceptor = acceptor.clone();
                let requests = Arc::clone(&requests);
                let replies = Arc::clone(&replies);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service =
                        hyper::service::service_fn(move |req| answer(req, Arc::clone(&requests), Arc::clone(&replies)));
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
                });
            }
        })
    };
    Fake { addr, cert_pem, requests, sleeps: RecordingSleep::default(), _dir: dir, task }
}

async fn answer(
    req: Request<Incoming>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    replies: Arc<Vec<Reply>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("<non-ascii>").to_owned()))
        .collect();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let n = {
        let mut requests = requests.lock().unwrap();
        requests.push(Recorded { method: parts.method.to_string(), path, headers, body });
        requests.len() - 1
    };
    let reply = replies[n.min(replies.len() - 1)].clone();
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = Response::builder().status(reply.status).header("request-id", format!("req_{n}"));
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    Ok(response.body(Full::new(Bytes::from(reply.body))).unwrap())
}

impl Fake {
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// A client for this server: its certificate trusted, `localhost` pinned to it, waits
    /// recorded instead of slept.
    pub fn builder(&self) -> ClientBuilder {
        Client::builder(KEY)
            .base_url(format!("https://localhost:{}", self.addr.port()))
            .add_root_certificate_pem(self.cert_pem.clone())
            .resolve("localhost", self.addr)
            .sleep(self.sleeps.clone())
    }

    pub fn client(&self) -> Client {
        self.builder().build().unwrap()
    }

    pub fn client_with(&self, retry: RetryConfig) -> Client {
        self.builder().retry(retry).build().unwrap()
    }
}

pub const PAYMENT: &str = r#"{"id":"pay_1","object":"payment","amount":1999,"currency":"usd","status":"succeeded","capture":true,"amount_capturable":0,"amount_captured":1999,"amount_refunded":0,"description":null,"metadata":{"order":"1234"},"card":{"brand":"visa","last4":"4242","exp_month":12,"exp_year":2030,"fingerprint":"fp_1"},"token":"tok_1","decline_code":null,"failure_message":null,"livemode":false,"created":1764000000}"#;

pub const REFUND: &str = r#"{"id":"re_1","object":"refund","payment":"pay_1","amount":500,"currency":"usd","status":"succeeded","reason":"requested_by_customer","livemode":false,"created":1764000100}"#;
