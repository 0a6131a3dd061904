//! The secret key goes in the `Authorization` header and nowhere else: not in `Debug`, not in
//! any error.

use altafinex::{Client, Error};

use crate::fake::{self, KEY, Reply};

const SECRET_PART: &str = "SuperSecretValue123";

fn assert_hidden(what: &str, text: &str) {
    assert!(!text.contains(SECRET_PART), "{what} shows the key: {text}");
}

#[tokio::test]
async fn the_key_is_sent_only_as_a_bearer_token() {
    let fake = fake::start(vec![Reply::json(200, fake::PAYMENT)]).await;
    fake.client().payments().retrieve("pay_1").await.unwrap();
    let request = &fake.requests()[0];
    assert_eq!(request.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    for (name, value) in &request.headers {
        if name != "authorization" {
            assert_hidden(name, value);
        }
    }
    assert_hidden("path", &request.path);
}

#[tokio::test]
async fn the_key_never_appears_in_debug_or_errors() {
    let fake = fake::start(vec![
        Reply::error(401, "authentication_error", "invalid_api_key"),
        Reply::json(200, "this is not json"),
        Reply::json(200, r#"{"id":"pay_1"}"#),
    ])
    .await;
    let client = fake.client_with(altafinex::RetryConfig::disabled());
    assert_hidden("Client debug", &format!("{client:?}"));
    assert!(format!("{client:?}").contains("sk_test_****"));
    assert_hidden("ClientBuilder debug", &format!("{:?}", fake.builder()));

    let mut errors: Vec<Error> = Vec::new();
    for _ in 0..3 {
        errors.push(client.payments().retrieve("pay_1").await.unwrap_err());
    }
    assert!(matches!(errors[0], Error::Api(_)));
    assert!(matches!(errors[1], Error::Decode(_)));
    assert!(matches!(errors[2], Error::Decode(_)));

    // A network error (nobody listening) and configuration errors.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let offline = Client::builder(KEY)
        .base_url(format!("https://localhost:{}", addr.port()))
        .resolve("localhost", addr)
        .retry(altafinex::RetryConfig::disabled())
        .build()
        .unwrap();
    errors.push(offline.payments().retrieve("pay_1").await.unwrap_err());
    assert!(matches!(errors[3], Error::Network(_)));
    errors.push(Client::builder(KEY).base_url("http://insecure.example").build().unwrap_err());
    errors.push(Client::builder(format!("{KEY} trailing")).base_url("https://h.example").build().unwrap_err());
    errors.push(
        Client::builder(KEY).add_root_certificate_pem(b"nope".to_vec()).base_url("https://h").build().unwrap_err(),
    );

    for err in &errors {
        assert_hidden("error Display", &err.to_string());
        assert_hidden("error Debug", &format!("{err:?}"));
        let mut source = std::error::Error::source(err);
        while let Some(inner) = source {
            assert_hidden("error source", &inner.to_string());
            source = inner.source();
        }
    }
}
