//! Request ids and the log format: `X-Request-Id` generated, replaced when a client that is no
//! trusted proxy forges one, kept from a trusted proxy; and `CAIRN_LOG_FORMAT=json` on the real
//! binary, one JSON object a line with the request id on a request's line.

use crate::helpers::{behind_local_proxy, spawn_app, spawn_with};

fn id_of(res: &reqwest::Response) -> String {
    res.headers().get("x-request-id").expect("an X-Request-Id").to_str().unwrap().to_string()
}

fn generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn every_response_carries_a_new_request_id() {
    let app = spawn_app().await;
    let (a, b) = (app.get("/").await, app.get("/no/such/page").await);
    assert_eq!(b.status(), 404);
    let (a, b) = (id_of(&a), id_of(&b));
    assert!(generated(&a) && generated(&b), "{a} {b}");
    assert_ne!(a, b);
}

#[tokio::test]
async fn an_id_forged_by_a_client_that_is_no_trusted_proxy_is_replaced() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/healthz")).header("x-request-id", "forged-by-client").send().await.unwrap();
    let id = id_of(&res);
    assert_ne!(id, "forged-by-client");
    assert!(generated(&id), "{id}");
}

#[tokio::test]
async fn a_trusted_proxy_s_id_is_kept_unless_it_is_unfit() {
    let app = spawn_with(behind_local_proxy).await;
    let res = app.client.get(app.url("/")).header("x-request-id", "edge-7f3a.42").send().await.unwrap();
    assert_eq!(id_of(&res), "edge-7f3a.42");
    let long = "x".repeat(129);
    let res = app.client.get(app.url("/")).header("x-request-id", long.as_str()).send().await.unwrap();
    assert!(generated(&id_of(&res)), "an id over 128 characters is replaced");
    let res = app.client.get(app.url("/")).header("x-request-id", "two words").send().await.unwrap();
    assert!(generated(&id_of(&res)), "an id with a space is replaced");
}
