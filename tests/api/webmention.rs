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

/// Every discovery rule against real receivers, through the outbox's own code
/// (`webmention::send`): exactly one correct POST per case, at the right endpoint.
#[tokio::test]
async fn each_discovery_rule_leads_to_exactly_one_correct_post() {
    let a = FeedServer::start().await;
    let b = FeedServer::start().await; // an endpoint on another port
    let html = |s: &str| Reply::typed(s.to_string(), "text/html; charset=utf-8");
    let ok = || Reply::Status { status: 202, headers: vec![], body: vec![] };
    let cases: Vec<(&str, Reply, String)> = vec![
        // Header beats body.
        (
            "/header",
            Reply::Status {
                status: 200,
                headers: vec![
                    ("Link".into(), "</wm/header>; rel=\"webmention\"".into()),
                    ("Content-Type".into(), "text/html".into()),
                ],
                body: br#"<link rel="webmention" href="/wm/wrong">"#.to_vec(),
            },
            a.url("/wm/header"),
        ),
        // Document order: the <a> comes before the <link>.
        (
            "/order",
            html(r#"<body><a rel="webmention" href="/wm/first">x</a><link rel="webmention" href="/wm/second"></body>"#),
            a.url("/wm/first"),
        ),
        // Relative to the page, after a redirect to another directory.
        ("/moved", Reply::Redirect { status: 302, to: "/dir/page".into() }, a.url("/dir/wm-rel")),
        // Several rel values.
        ("/multi", html(r#"<link rel="nofollow  webmention me" href="/wm/multi">"#), a.url("/wm/multi")),
        // Empty href: the target itself.
        ("/self", html(r#"<link rel="webmention" href="">"#), a.url("/self")),
        // A query string in the endpoint is kept.
        ("/query", html(r#"<link rel="webmention" href="/wm/q?user=ada&amp;x=1">"#), a.url("/wm/q?user=ada&x=1")),
        // An endpoint on another port.
        (
            "/other-port",
            html(&format!(r#"<link rel="webmention" href="{}">"#, b.url("/wm/elsewhere"))),
            b.url("/wm/elsewhere"),
        ),
    ];
    a.set("/dir/page", html(r#"<link rel="webmention" href="wm-rel">"#));
    for (path, reply, endpoint) in &cases {
        a.set(path, reply.clone());
        let ep = url::Url::parse(endpoint).unwrap();
        let server = if ep.port() == Some(b.port) { &b } else { &a };
        let key = match ep.query() {
            Some(q) => format!("{}?{q}", ep.path()),
            None => ep.path().to_string(),
        };
        // The "self" endpoint is the page itself: it answers 202 to the POST too.
        if *path != "/self" {
            server.set(&key, ok());
        }
    }
    // A POST to the page itself returns what the page returns (200): fine for "self".
    let settings = cairn::config::HarvestSettings { timeout_secs: 2, ..Default::default() };
    let fetcher = cairn::harvest::fetcher(&settings, &[a.origin(), b.origin()], "http://127.0.0.1").unwrap();
    let source = "https://cairn.example.edu/assertions/xyz";
    for (path, _, endpoint) in &cases {
        let ep = url::Url::parse(endpoint).unwrap();
        let server = if ep.port() == Some(b.port) { &b } else { &a };
        let key = match ep.query() {
            Some(q) => format!("{}?{q}", ep.path()),
            None => ep.path().to_string(),
        };
        let before = server.hits(&key);
        let target = a.url(path);
        let outcome = cairn::webmention::send(&fetcher, source, &target).await;
        match outcome {
            cairn::webmention::Outcome::Sent { endpoint: got, .. } => assert_eq!(&got, endpoint, "{path}"),
            other => panic!("{path}: {other:?}"),
        }
        // Discovery GETs the page; the POST is exactly one more request at the endpoint
        // (for "self" the page is also the endpoint: one GET + one POST).
        let expected = if *path == "/self" { before + 2 } else { before + 1 };
        assert_eq!(server.hits(&key), expected, "{path}: exactly one POST");
        let body = server.last_body(&key).unwrap();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        assert_eq!(pairs, vec![("source".into(), source.to_string()), ("target".into(), target.clone())], "{path}");
    }
    assert_eq!(a.hits("/wm/wrong") + a.hits("/wm/second"), 0, "only the first endpoint is used");

    // An endpoint that hangs: a timeout the outbox retries; 5xx then success is covered by the
    // notify tests; a target without an endpoint sends nothing.
    a.set("/hang-post", html(r#"<link rel="webmention" href="/wm/hang">"#));
    a.set("/wm/hang", Reply::Delayed { wait: std::time::Duration::from_secs(10), then: Box::new(ok()) });
    let outcome = cairn::webmention::send(&fetcher, source, &a.url("/hang-post")).await;
    assert!(matches!(outcome, cairn::webmention::Outcome::Failed { retry: true, .. }), "{outcome:?}");
    a.set("/none", html("<p>no endpoint</p>"));
    assert_eq!(
        cairn::webmention::send(&fetcher, source, &a.url("/none")).await,
        cairn::webmention::Outcome::NoEndpoint
    );
}
