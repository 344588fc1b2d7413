//! Sending Webmentions with `cairn webmention send`, against real receivers on 127.0.0.1.

use crate::feedserver::{FeedServer, Reply};
use diesel::prelude::*;

async fn send(server: &FeedServer, source: &str, target: &str) -> (bool, String) {
    let (origin, source, target) = (server.origin(), source.to_string(), target.to_string());
    let out = tokio::task::spawn_blocking(move || {
        crate::helpers::cairn_cmd()
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

// ---- receiving: moderation and caps ----

use std::time::{Duration, Instant};

use crate::feedserver::fixture;
use crate::helpers::{TestApp, csrf_in};

/// An instance whose learner blogs on `learner` (feed and posts), with one badge awarded for a
/// post there; `foreign` is another site. Returns the assertion URL.
async fn awarded_on(learner: &FeedServer, foreign: &FeedServer) -> (TestApp, String) {
    learner.set("/f.xml", Reply::xml(fixture("rss2.xml")));
    let other = foreign.origin();
    let app = crate::harvest::app_for(learner, |s| s.allow_origins.push(other)).await;
    {
        let mut c = app.pool.get().unwrap();
        let author = cairn::db::feeds::find_or_create_author(&mut c, "Ada", Some("ada@example.edu")).unwrap();
        let feed = cairn::db::feeds::NewFeed {
            author_id: author.id,
            url: &learner.url("/f.xml"),
            title: "",
            site_url: None,
            status: cairn::db::feeds::FeedStatus::Active,
            confirm_token_hash: None,
            manage_token_hash: None,
        };
        cairn::db::feeds::create_feed(&mut c, feed).unwrap();
    }
    crate::harvest::pass(&app).await;
    app.login().await;
    let links = cairn::db::links::recent(&mut app.pool.get().unwrap(), None, 10).unwrap();
    let post = links.iter().find(|v| v.link.title == "Data & me").unwrap().link.id;
    let url = crate::badges::award_post(&app, post, "el30-data").await;
    (app, url)
}

async fn mention(app: &TestApp, source: &str, target: &str, forwarded: Option<&str>) -> reqwest::Response {
    let mut req = crate::helpers::client().post(app.url("/webmention")).form(&[("source", source), ("target", target)]);
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    req.send().await.unwrap()
}

/// Verifies pending mentions until none is left (at most 20 s).
async fn verify_all(app: &TestApp) {
    use diesel::prelude::*;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.notifier.verify_mentions().await.unwrap();
        let pending: i64 = cairn::db::schema::mentions::table
            .filter(cairn::db::schema::mentions::status.eq("pending"))
            .count()
            .get_result(&mut app.pool.get().unwrap())
            .unwrap();
        if pending == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{pending} mention(s) never verified");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_mention_from_a_foreign_site_is_shown_only_once_an_instructor_approves_it() {
    let (learner, foreign) = (FeedServer::start().await, FeedServer::start().await);
    let (app, url) = awarded_on(&learner, &foreign).await;
    let linking = |text: &str| Reply::typed(format!(r#"<p>{text} <a href="{url}">badge</a></p>"#), "text/html");
    learner.set("/my-badge", linking("I earned this"));
    foreign.set("/praise", linking("Look at this"));
    foreign.set("/spam", linking("Cheap pills"));
    for source in [learner.url("/my-badge"), foreign.url("/praise"), foreign.url("/spam")] {
        assert_eq!(mention(&app, &source, &url, None).await.status(), 202, "{source}");
    }
    verify_all(&app).await;
    let page =
        || async { app.client.get(&url).header("accept", "text/html").send().await.unwrap().text().await.unwrap() };
    let shown = page().await;
    assert!(shown.contains("Mentioned by") && shown.contains(&learner.url("/my-badge")), "own site shown");
    assert!(!shown.contains(&foreign.url("/praise")) && !shown.contains(&foreign.url("/spam")), "foreign held back");

    // The moderation page lists only the foreign ones, with CSRF-protected decisions.
    let list = app.get_html("/admin/mentions").await;
    assert!(list.contains(&foreign.url("/praise")) && list.contains(&foreign.url("/spam")));
    assert!(!list.contains(&learner.url("/my-badge")));
    let id_of = |html: &str, source: &str| -> String {
        let row = &html[..html.find(source).unwrap()];
        let start = row.rfind("id=\"mention-").unwrap() + "id=\"mention-".len();
        row[start..start + row[start..].find('"').unwrap()].to_string()
    };
    let (praise, spam) = (id_of(&list, &foreign.url("/praise")), id_of(&list, &foreign.url("/spam")));
    let res = app.client.post(app.url(&format!("/admin/mentions/{praise}/approve"))).send().await.unwrap();
    assert_eq!(res.status(), 403, "no CSRF token, no decision");
    let csrf = csrf_in(&list);
    let decide = |id: String, what: &'static str| {
        let (app, csrf) = (&app, csrf.clone());
        async move {
            app.client
                .post(app.url(&format!("/admin/mentions/{id}/{what}")))
                .form(&[("csrf_token", csrf.as_str())])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(decide(praise, "approve").await, 303);
    assert_eq!(decide(spam, "reject").await, 303);
    let shown = page().await;
    assert!(shown.contains(&foreign.url("/praise")), "approved: shown");
    assert!(!shown.contains(&foreign.url("/spam")), "rejected: never shown");
    assert!(!app.get_html("/admin/mentions").await.contains(&foreign.url("/praise")));
    // Anonymous visitors cannot moderate.
    let res = crate::helpers::client().get(app.url("/admin/mentions")).send().await.unwrap();
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn one_client_cannot_fill_the_pending_queue() {
    let slow = FeedServer::start().await;
    // Sources that take their time, so that mentions stay pending while the test sends more.
    let app = crate::harvest::app_for(&slow, crate::helpers::behind_local_proxy).await;
    let target = app.url("/courses/el30");
    let source = |i: usize| {
        let path = format!("/slow/{i}");
        slow.set(
            &path,
            Reply::Delayed { wait: Duration::from_secs(120), then: Box::new(Reply::typed("x", "text/html")) },
        );
        slow.url(&path)
    };
    let mut statuses = vec![];
    for i in 0..25 {
        statuses.push(mention(&app, &source(i), &target, Some("203.0.113.7")).await.status().as_u16());
    }
    assert_eq!(&statuses[..20], &[202; 20][..], "{statuses:?}");
    assert_eq!(&statuses[20..], &[429; 5][..], "{statuses:?}");
    // Another client is not affected.
    assert_eq!(mention(&app, &source(100), &target, Some("198.51.100.4")).await.status(), 202);
    // One source cannot name many targets either.
    let one = source(200);
    let mut statuses = vec![];
    for i in 0..11 {
        let res =
            mention(&app, &one, &app.url(&format!("/courses/c{i}")), Some(&format!("198.51.100.{}", 10 + i))).await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[202; 10][..], "{statuses:?}");
    assert_eq!(statuses[10], 429);
    // The limits were reached by mentions still pending: none of the 31 accepted was settled.
    let pending: i64 = cairn::db::schema::mentions::table
        .filter(cairn::db::schema::mentions::status.eq("pending"))
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(pending, 31, "every accepted mention was still pending when the limits answered");
}
