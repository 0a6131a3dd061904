//! What each call sends and how its answer is read.

use std::time::Duration;

use altafinex::events::{EventObject, EventType, ListEvents};
use altafinex::payments::{CapturePayment, ListPayments, PaymentStatus};
use altafinex::refunds::{ListRefunds, RefundReason};
use altafinex::webhook_endpoints::CreateEndpoint;

use crate::fake::{self, PAYMENT, REFUND, Reply};

#[tokio::test]
async fn payments_capture_cancel_and_list_with_a_cursor() {
    let page1 = format!(r#"{{"object":"list","data":[{PAYMENT}],"has_more":true,"next_cursor":"pay_1"}}"#);
    let page2 = format!(r#"{{"object":"list","data":[{PAYMENT}],"has_more":false,"next_cursor":null}}"#);
    let fake = fake::start(vec![
        Reply::json(200, PAYMENT),
        Reply::json(200, PAYMENT),
        Reply::json(200, page1),
        Reply::json(200, page2),
    ])
    .await;
    let client = fake.client();
    client.payments().capture("pay_1", &CapturePayment::new().amount(1500)).await.unwrap();
    client.payments().cancel("pay_1").await.unwrap();

    let mut params = ListPayments::new().limit(1).status(PaymentStatus::Succeeded).created(Some(1_764_000_000), None);
    let mut seen = 0;
    loop {
        let page = client.payments().list(&params).await.unwrap();
        seen += page.data.len();
        match page.next_cursor() {
            Some(cursor) => params = params.starting_after(cursor),
            None => break,
        }
    }
    assert_eq!(seen, 2);

    let requests = fake.requests();
    let lines: Vec<_> = requests.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(
        lines,
        [
            "POST /v1/payments/pay_1/capture",
            "POST /v1/payments/pay_1/cancel",
            "GET /v1/payments?limit=1&status=succeeded&created_gte=1764000000",
            "GET /v1/payments?limit=1&starting_after=pay_1&status=succeeded&created_gte=1764000000",
        ]
    );
    assert_eq!(requests[0].body_json(), serde_json::json!({"amount": 1500}));
    assert_eq!(requests[1].body_json(), serde_json::json!({}));
    assert!(requests[0].header("idempotency-key").is_some() && requests[1].header("idempotency-key").is_some());
    assert_ne!(requests[0].header("idempotency-key"), requests[1].header("idempotency-key"));
    assert!(requests[2].header("idempotency-key").is_none(), "GETs carry no key");
}

#[tokio::test]
async fn refunds_and_events() {
    let event = format!(
        r#"{{"id":"evt_1","object":"event","type":"refund.succeeded","created":1764000100,"livemode":false,"data":{{"object":{REFUND}}}}}"#
    );
    let unknown = r#"{"id":"evt_2","object":"event","type":"something.new","created":1,"livemode":false,"data":{"object":{"object":"novelty","x":1}}}"#;
    let fake = fake::start(vec![
        Reply::json(200, REFUND),
        Reply::json(200, format!(r#"{{"object":"list","data":[{REFUND}],"has_more":false,"next_cursor":null}}"#)),
        Reply::json(200, event.clone()),
        Reply::json(200, format!(r#"{{"object":"list","data":[{event},{unknown}],"has_more":false}}"#)),
        Reply::json(202, ""),
        Reply::json(200, r#"{"object":"list","data":[{"endpoint":"we_1","status_code":500,"latency_ms":12,"error_class":"http_status","created":1}]}"#),
    ])
    .await;
    let client = fake.client();
    let refund = client.refunds().retrieve("re_1").await.unwrap();
    assert_eq!(refund.reason, Some(RefundReason::RequestedByCustomer));
    client.refunds().list(&ListRefunds::new().payment("pay_1")).await.unwrap();

    let event = client.events().retrieve("evt_1").await.unwrap();
    assert_eq!(event.event_type, EventType::RefundSucceeded);
    assert!(matches!(event.data.object, EventObject::Refund(ref r) if r.id == "re_1"));
    let events = client.events().list(&ListEvents::new().event_type(EventType::RefundSucceeded)).await.unwrap();
    assert_eq!(events.data[1].event_type, EventType::Other("something.new".into()));
    assert_eq!(events.data[1].data.object, EventObject::Other);
    client.events().redeliver("evt_1", Some("we_1")).await.unwrap();
    let attempts = client.events().attempts("evt_1").await.unwrap();
    assert_eq!(attempts.data[0].status_code, Some(500));

    let requests = fake.requests();
    let lines: Vec<_> = requests.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(
        lines,
        [
            "GET /v1/refunds/re_1",
            "GET /v1/refunds?payment=pay_1",
            "GET /v1/events/evt_1",
            "GET /v1/events?type=refund.succeeded",
            "POST /v1/events/evt_1/redeliver",
            "GET /v1/events/evt_1/attempts",
        ]
    );
    assert_eq!(requests[4].body_json(), serde_json::json!({"endpoint": "we_1"}));
}

#[tokio::test]
async fn webhook_endpoints_show_the_secret_once_as_a_secret_type() {
    let secret = webhook_signature::Secret::from_random_bytes(&[9u8; 32]).unwrap();
    let endpoint = r#""id":"we_1","object":"webhook_endpoint","url":"https://shop.example/hooks","enabled_events":["payment.succeeded"],"status":"enabled","description":null,"livemode":false,"created":1"#;
    let with_secret = format!(r#"{{{endpoint},"secret":"{}"}}"#, secret.expose());
    let fake = fake::start(vec![
        Reply::json(201, with_secret.clone()),
        Reply::json(200, format!(r#"{{"object":"list","data":[{{{endpoint}}}]}}"#)),
        Reply::json(200, format!("{{{endpoint}}}")),
        Reply::json(200, with_secret),
        Reply::json(200, r#"{"id":"we_1","object":"webhook_endpoint","deleted":true}"#),
    ])
    .await;
    let client = fake.client();
    let created = client
        .webhook_endpoints()
        .create(&CreateEndpoint::new("https://shop.example/hooks").event(EventType::PaymentSucceeded))
        .await
        .unwrap();
    assert_eq!(created.secret.expose(), secret.expose());
    assert!(!format!("{created:?}").contains(&secret.expose()[6..]), "{created:?}");
    assert_eq!(created.endpoint.enabled_events, ["payment.succeeded"]);
    assert_eq!(client.webhook_endpoints().list().await.unwrap().data.len(), 1);
    client.webhook_endpoints().retrieve("we_1").await.unwrap();
    client.webhook_endpoints().rotate_secret("we_1", Some(Duration::from_secs(3600))).await.unwrap();
    assert!(client.webhook_endpoints().delete("we_1").await.unwrap().deleted);

    let requests = fake.requests();
    assert_eq!(
        requests[0].body_json(),
        serde_json::json!({"url":"https://shop.example/hooks","enabled_events":["payment.succeeded"]})
    );
    assert_eq!(requests[3].path, "/v1/webhook_endpoints/we_1/rotate_secret");
    assert_eq!(requests[3].body_json(), serde_json::json!({"overlap_seconds": 3600}));
    assert_eq!(requests[4].method, "DELETE");
}

#[tokio::test]
async fn ids_cannot_leave_their_path_segment() {
    let fake = fake::start(vec![Reply::json(200, PAYMENT)]).await;
    let err = fake.client().payments().retrieve("../keys").await.unwrap_err();
    assert!(matches!(err, altafinex::Error::Config(altafinex::ConfigError::InvalidId)), "{err:?}");
    assert!(fake.requests().is_empty());
}
