//! Graceful shutdown: a request in flight when the shutdown starts is answered in full.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

#[tokio::test]
async fn shutdown_drains_the_request_in_flight() {
    let mut app = spawn_app().await;
    let body = card_body(VISA).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut s = crate::tls::connect(&app, None).await.unwrap();
    let head = format!(
        "POST /v1/tokens HTTP/1.1\r\nHost: localhost\r\nOrigin: {SHOP}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        app.pk,
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let running = app.running.take().unwrap();
    let state = running.state.clone();
    let stopping = tokio::spawn(running.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(state.draining.load(std::sync::atomic::Ordering::Acquire), "readiness reports draining");
    assert!(!stopping.is_finished(), "shutdown returned with a request in flight");
    s.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201 "), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), stopping).await.unwrap().unwrap();
    // No new connections afterwards.
    assert!(crate::tls::connect(&app, None).await.is_err());
}
