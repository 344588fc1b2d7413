//! Sending Webmentions with `cairn webmention send`, against real receivers on 127.0.0.1.

use std::process::Command;

use crate::feedserver::{FeedServer, Reply};

async fn send(server: &FeedServer, source: &str, target: &str) -> (bool, String) {
    let (origin, source, target) = (server.origin(), source.to_string(), target.to_string());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .env_remove("CAIRN_CONFIG")
            .env("CAIRN_DATA_DIR", std::env::temp_dir().join("cairn-wm-unused"))
            .env("CAIRN_ALLOW_ORIGINS", origin)
            .args(["webmention", "send", &source, &target])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test]
async fn a_webmention_is_discovered_and_posted_with_the_endpoints_query_kept() {
    let server = FeedServer::start().await;
    // The post redirects; its endpoint is relative to the final URL and has a query.
    server.set("/old-post", Reply::Redirect { status: 301, to: "/blog/post".into() });
    server.set("/blog/post", Reply::typed(r#"<html><head><link rel="stylesheet" href="/s.css"><link rel="webmention" href="wm?token=abc"></head><body>Post</body></html>"#, "text/html"));
    server.set(
        "/blog/wm?token=abc",
        Reply::Status { status: 201, headers: vec![("Location".into(), "/blog/wm/status/1".into())], body: vec![] },
    );
    let source = "https://cairn.example.edu/assertions/abc";
    let (ok, out) = send(&server, source, &server.url("/old-post")).await;
    assert!(ok, "{out}");
    assert!(out.contains(&format!("endpoint: {}", server.url("/blog/wm?token=abc"))), "{out}");
    assert!(out.contains("status: 201") && out.contains("/blog/wm/status/1"), "{out}");
    let body = server.last_body("/blog/wm?token=abc").unwrap();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    assert_eq!(pairs, vec![("source".into(), source.to_string()), ("target".into(), server.url("/old-post"))]);
    assert_eq!(
        server.last_header("/blog/wm?token=abc", "content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn no_endpoint_a_failing_endpoint_and_a_private_endpoint_are_reported() {
    let server = FeedServer::start().await;
    server.set("/plain", Reply::typed("<html><body>No endpoint here</body></html>", "text/html"));
    server.set(
        "/busy-post",
        Reply::Status {
            status: 200,
            headers: vec![
                ("Link".into(), "</wm-busy>; rel=\"webmention\"".into()),
                ("Content-Type".into(), "text/html".into()),
            ],
            body: b"<p>hi</p>".to_vec(),
        },
    );
    server.set("/wm-busy", Reply::Status { status: 503, headers: vec![], body: vec![] });
    server.set("/sneaky", Reply::typed(r#"<link rel="webmention" href="http://10.0.0.1/wm">"#, "text/html"));
    let (ok, out) = send(&server, "https://cairn.example.edu/a", &server.url("/plain")).await;
    assert!(!ok && out.contains("advertises no Webmention endpoint"), "{out}");
    let (ok, out) = send(&server, "https://cairn.example.edu/a", &server.url("/busy-post")).await;
    assert!(!ok && out.contains("503") && out.contains("retry"), "{out}");
    let (ok, out) = send(&server, "https://cairn.example.edu/a", &server.url("/sneaky")).await;
    assert!(!ok && out.contains("private, loopback"), "{out}");
    assert_eq!(server.hits("/wm-busy"), 1);
}
