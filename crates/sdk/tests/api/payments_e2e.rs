//! Payments, refunds, events and a signed delivery against the real vault, through the SDK.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use altafinex::events::{EventObject, EventType};
use altafinex::payments::{CreatePayment, PaymentStatus};
use altafinex::refunds::CreateRefund;
use altafinex::webhook_endpoints::CreateEndpoint;
use altafinex::{Currency, DeclineCode, IdempotencyKey, RequestOptions, webhook};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::vault_e2e::spawn_vault;

type Deliveries = Arc<Mutex<Vec<(http::HeaderMap, Vec<u8>)>>>;

/// A merchant's webhook receiver: plain HTTP on 127.0.0.1 (test mode allows it), recording
/// every delivery.
async fn receiver() -> (String, Deliveries) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/webhooks", listener.local_addr().unwrap().port());
    let deliveries: Deliveries = Arc::default();
    let recorded = Arc::clone(&deliveries);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let recorded = Arc::clone(&recorded);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let recorded = Arc::clone(&recorded);
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
                        recorded.lock().unwrap().push((parts.headers, body));
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    });
    (url, deliveries)
}

#[tokio::test]
async fn payments_e2e_charge_refund_decline_and_a_verified_webhook() {
    let vault = spawn_vault().await;
    let admin = vault.client(&vault.admin);
    let key = vault.create_key(json!({"kind": "secret", "role": "payments", "label": "sdk"})).await;
    let client = vault.client(&key);

    let (url, deliveries) = receiver().await;
    let endpoint = admin.webhook_endpoints().create(&CreateEndpoint::new(url)).await.unwrap();

    // A charge keyed by the order: the same key again replays it, never a second charge.
    let token = vault.tokenize("4242424242424242", "737").await;
    let params = CreatePayment::new(1999, Currency::USD, &token).metadata("order", "1234");
    let options = RequestOptions::new().idempotency_key(IdempotencyKey::new("order-1234").unwrap());
    let payment = client.payments().create_with(&params, &options).await.unwrap();
    assert_eq!((payment.status.clone(), payment.amount_captured), (PaymentStatus::Succeeded, 1999));
    assert_eq!(payment.card.as_ref().unwrap().last4, "4242");
    let replay = client.payments().create_with(&params, &options).await.unwrap();
    assert_eq!(replay.id, payment.id);

    // A partial refund.
    let refund = client.refunds().create(&CreateRefund::new(&payment.id).amount(500)).await.unwrap();
    assert_eq!((refund.amount, refund.currency), (500, Currency::USD));
    assert_eq!(client.payments().retrieve(&payment.id).await.unwrap().amount_refunded, 500);
    let err = client.refunds().create(&CreateRefund::new(&payment.id).amount(5000)).await.unwrap_err();
    assert_eq!(err.code(), Some("refund_exceeds_captured"));

    // A declined card.
    let declined = vault.tokenize("4000000000000002", "123").await;
    let err = client.payments().create(&CreatePayment::new(1000, Currency::JPY, &declined)).await.unwrap_err();
    let api = err.api().unwrap();
    assert!(api.is_card_declined(), "{api:?}");
    assert_eq!(api.decline_code, Some(DeclineCode::GenericDecline));

    // The payment.succeeded event arrives signed; the SDK verifies it with the shown secret.
    let mut verified = None;
    for _ in 0..100 {
        let got = deliveries.lock().unwrap().clone();
        for (headers, body) in got {
            let event =
                webhook::construct_event(&body, &headers, &endpoint.secret, webhook::DEFAULT_TOLERANCE).unwrap();
            if event.event_type == EventType::PaymentSucceeded {
                verified = Some(event);
            }
        }
        if verified.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let event = verified.expect("a payment.succeeded delivery within 10 s");
    assert!(matches!(&event.data.object, EventObject::Payment(p) if p.id == payment.id));
    assert_eq!(client.events().retrieve(&event.id).await.unwrap().id, event.id);
}
