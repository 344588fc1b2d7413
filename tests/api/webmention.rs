//! Sending Webmentions with `cairn webmention send`, against real receivers on 127.0.0.1.

use crate::feedserver::{FeedServer, Reply};
use diesel::prelude::*;

async fn send(server: &FeedServer, source: &str, target: &str) -> (bool, String) {
    send_with(server, source, target, &["--once"], &[]).await
}

/// Runs `cairn webmention send` with `flags` and `env`; whether it succeeded and what it printed.
async fn send_with(
    server: &FeedServer,
    source: &str,
    target: &str,
    flags: &[&str],
    env: &[(&str, &str)],
) -> (bool, String) {
    let mut cmd = cli(server, source, target, flags, env);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn cli(server: &FeedServer, source: &str, target: &str, flags: &[&str], env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = crate::helpers::cairn_cmd();
    cmd.env("CAIRN_DATA_DIR", std::env::temp_dir().join("cairn-wm-unused"))
        .env("CAIRN_ALLOW_ORIGINS", server.origin())
        .env("CAIRN_BASE_URL", "https://cairn.example.edu")
        .envs(env.iter().copied())
        .args(["webmention", "send", source, target])
        .args(flags);
    cmd
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
    let fetcher = cairn::webmention::Sender::new(&fetcher, "http://127.0.0.1");
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

// ---- the sender's policies, through both the command line and the outbox ----

const SOURCE: &str = "https://cairn.example.edu/assertions/policy";
/// The post "Data & me" of the `rss2.xml` fixture, which the outbox tests award.
const POST: &str = "/2019/data-and-me";

fn html(s: &str) -> Reply {
    Reply::typed(s.to_string(), "text/html; charset=utf-8")
}

fn accepted() -> Reply {
    Reply::Status { status: 202, headers: vec![], body: vec![] }
}

/// The form a receiver got, as pairs.
fn form_at(server: &FeedServer, path: &str) -> Vec<(String, String)> {
    let body = server.last_body(path).unwrap_or_default();
    url::form_urlencoded::parse(body.as_bytes()).into_owned().collect()
}

/// An instance (settings adjusted) that harvested `server`'s feed and awarded its post
/// [`POST`]; returns it with its Webmention once the outbox has recorded the first attempt.
async fn outbox_attempt(
    server: &FeedServer,
    adjust: impl FnOnce(&mut cairn::config::Settings),
) -> (TestApp, cairn::notify::Notification) {
    use diesel::prelude::*;
    server.set("/f.xml", Reply::xml(fixture("rss2.xml")));
    let app = crate::harvest::app_for(server, adjust).await;
    {
        let mut c = app.pool.get().unwrap();
        let author =
            cairn::db::feeds::find_or_create_author(&mut c, "Ada", Some("ada@example.edu"), cairn::clock::system_now())
                .unwrap();
        let feed = cairn::db::feeds::NewFeed {
            author_id: author.id,
            url: &server.url("/f.xml"),
            title: "",
            site_url: None,
            status: cairn::db::feeds::FeedStatus::Active,
            confirm_token_hash: None,
            manage_token_hash: None,
        };
        cairn::db::feeds::create_feed(&mut c, feed, cairn::clock::system_now()).unwrap();
    }
    crate::harvest::pass(&app).await;
    app.login().await;
    let links = cairn::db::links::recent(&mut app.pool.get().unwrap(), None, 10).unwrap();
    let post = links.iter().find(|v| v.link.title == "Data & me").unwrap();
    assert_eq!(post.link.url, Some(server.url(POST)));
    crate::badges::award_post(&app, post.link.id, "el30-data").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.notifier.deliver_due().await.unwrap();
        use cairn::db::schema::outbox::dsl;
        let notes: Vec<cairn::notify::Notification> =
            dsl::outbox.select(cairn::notify::Notification::as_select()).load(&mut app.pool.get().unwrap()).unwrap();
        if let Some(wm) = notes.into_iter().find(|n| n.kind == "webmention" && n.attempts >= 1) {
            return (app, wm);
        }
        assert!(Instant::now() < deadline, "the outbox never tried the Webmention");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn markup_quoted_in_title_or_textarea_is_text_not_an_endpoint() {
    let server = FeedServer::start().await;
    let quoted = r#"<link rel="webmention" href="/wm/quoted"><a rel="webmention" href="/wm/quoted-a">x</a>"#;
    let text_only = format!("<html><head><title>{quoted}</title></head><body><textarea>{quoted}</textarea>");
    server.set("/text-only", html(&text_only));
    let (ok, out) = send(&server, SOURCE, &server.url("/text-only")).await;
    assert!(!ok && out.contains("advertises no Webmention endpoint"), "{out}");

    // The quoted endpoints come first in the document; the real one after them is used.
    server.set(POST, html(&format!(r#"{text_only}<link rel="webmention" href="/wm/real"></body></html>"#)));
    server.set("/wm/real", accepted());
    let (ok, out) = send(&server, SOURCE, &server.url(POST)).await;
    assert!(ok && out.contains(&format!("endpoint: {}", server.url("/wm/real"))), "{out}");
    let (_app, wm) = outbox_attempt(&server, |_| {}).await;
    assert_eq!(wm.status, "sent", "{wm:?}");
    assert_eq!(wm.endpoint.as_deref(), Some(server.url("/wm/real").as_str()));
    assert_eq!(server.hits("/wm/real"), 2, "one POST from each");
    assert_eq!(server.hits("/wm/quoted") + server.hits("/wm/quoted-a"), 0);
}

#[tokio::test]
async fn a_target_answering_404_or_410_is_not_mentioned_even_if_its_error_page_has_an_endpoint() {
    let server = FeedServer::start().await;
    let error_page = |status: u16| Reply::Status {
        status,
        headers: vec![
            ("Content-Type".into(), "text/html".into()),
            ("Link".into(), "</wm/from-header>; rel=\"webmention\"".into()),
        ],
        body: br#"<html><head><link rel="webmention" href="/wm/from-page"></head><body>Not here</body></html>"#
            .to_vec(),
    };
    server.set("/wm/from-header", accepted());
    server.set("/wm/from-page", accepted());
    for (status, words) in [(404, "404 Not Found"), (410, "410 Gone")] {
        server.set("/missing", error_page(status));
        // Even the default, retrying command gives up at once: a missing post is not retried.
        let started = Instant::now();
        let (ok, out) = send_with(&server, SOURCE, &server.url("/missing"), &[], &[]).await;
        assert!(!ok, "{out}");
        assert!(out.contains(&format!("the target answered {words}")) && out.contains("no post to mention"), "{out}");
        assert!(!out.contains("retrying"), "{out}");
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    server.set(POST, error_page(410));
    let (app, wm) = outbox_attempt(&server, |_| {}).await;
    assert_eq!(wm.status, "failed", "refused for good, not retried: {wm:?}");
    assert!(wm.last_error.as_deref().is_some_and(|e| e.contains("410 Gone") && e.contains("no post")), "{wm:?}");
    assert_eq!(wm.attempts, 1);
    assert_eq!(server.hits("/wm/from-header") + server.hits("/wm/from-page"), 0, "nothing was sent");
    // A later pass finds nothing due.
    assert_eq!(app.notifier.deliver_due().await.unwrap(), 0);
}

#[tokio::test]
async fn an_endpoint_answering_307_or_308_gets_the_same_post_at_the_new_address_under_the_policy() {
    let (a, b) = (FeedServer::start().await, FeedServer::start().await);
    let both = format!("{},{}", a.origin(), b.origin());
    let env = [("CAIRN_ALLOW_ORIGINS", both.as_str())];
    let page = |endpoint: &str| html(&format!(r#"<link rel="webmention" href="{endpoint}">"#));

    // 307 to the same server, then 308 to another one.
    a.set("/chain", page("/wm/a"));
    a.set("/wm/a", Reply::Redirect { status: 307, to: "/wm/b".into() });
    a.set("/wm/b", Reply::Redirect { status: 308, to: b.url("/wm/c") });
    b.set("/wm/c", Reply::Status { status: 201, headers: vec![("Location".into(), "/status/9".into())], body: vec![] });
    let target = a.url("/chain");
    let (ok, out) = send_with(&a, SOURCE, &target, &["--once"], &env).await;
    assert!(ok, "{out}");
    assert!(out.contains(&format!("endpoint: {}", b.url("/wm/c"))) && out.contains(&b.url("/status/9")), "{out}");
    let form = vec![("source".to_string(), SOURCE.to_string()), ("target".to_string(), target.clone())];
    assert_eq!((a.hits("/wm/a"), a.hits("/wm/b"), b.hits("/wm/c")), (1, 1, 1));
    for (server, path) in [(&a, "/wm/a"), (&a, "/wm/b"), (&b, "/wm/c")] {
        assert_eq!(form_at(server, path), form, "{path}: the same body each time");
    }

    // The new location is checked against the outbound policy again.
    a.set("/to-private", page("/wm/to-private"));
    a.set("/wm/to-private", Reply::Redirect { status: 307, to: "http://10.0.0.1/wm".into() });
    let (ok, out) = send_with(&a, SOURCE, &a.url("/to-private"), &["--once"], &env).await;
    assert!(!ok && out.contains("private, loopback"), "{out}");
    // ...and only an exact allowed origin is exempt: the same host on another port is not.
    a.set("/to-other-port", page("/wm/to-other-port"));
    a.set("/wm/to-other-port", Reply::Redirect { status: 308, to: b.url("/wm/c") });
    let (ok, out) = send_with(&a, SOURCE, &a.url("/to-other-port"), &["--once"], &[]).await;
    assert!(!ok && out.contains("private, loopback"), "{out}");
    assert_eq!(b.hits("/wm/c"), 1, "nothing reached the address the policy refuses");

    // 301, 302 and 303 are not re-POSTed (nor turned into a GET).
    for status in [301, 302, 303] {
        let (endpoint, moved) = (format!("/wm/{status}"), format!("/wm/{status}/moved"));
        a.set(&format!("/p{status}"), page(&endpoint));
        a.set(&endpoint, Reply::Redirect { status, to: moved.clone() });
        a.set(&moved, accepted());
        let (ok, out) = send_with(&a, SOURCE, &a.url(&format!("/p{status}")), &[], &env).await;
        assert!(!ok && out.contains(&format!("answered {status}")) && out.contains("only 307 and 308"), "{out}");
        assert!(!out.contains("retrying"), "{out}");
        assert_eq!((a.hits(&endpoint), a.hits(&moved)), (1, 0), "{status}");
    }

    // A redirect loop ends after a few hops.
    a.set("/looping", page("/wm/loop"));
    a.set("/wm/loop", Reply::Redirect { status: 307, to: "/wm/loop".into() });
    let (ok, out) = send_with(&a, SOURCE, &a.url("/looping"), &["--once"], &env).await;
    assert!(!ok && out.contains("too many redirects"), "{out}");
    assert_eq!(a.hits("/wm/loop"), 1 + cairn::net::MAX_POST_REDIRECTS);

    // The outbox follows the same way and records where it was accepted.
    a.set(POST, page("/wm/old"));
    a.set("/wm/old", Reply::Redirect { status: 308, to: b.url("/wm/new") });
    b.set("/wm/new", accepted());
    let other = b.origin();
    let (_app, wm) = outbox_attempt(&a, |s| s.allow_origins.push(other)).await;
    assert_eq!(wm.status, "sent", "{wm:?}");
    assert_eq!(wm.endpoint.as_deref(), Some(b.url("/wm/new").as_str()));
    assert_eq!((a.hits("/wm/old"), b.hits("/wm/new")), (1, 1));
    assert_eq!(form_at(&b, "/wm/new")[1], ("target".to_string(), a.url(POST)));
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn gzipped_html(body: Vec<u8>) -> Reply {
    Reply::Status {
        status: 200,
        headers: vec![("Content-Type".into(), "text/html".into()), ("Content-Encoding".into(), "gzip".into())],
        body: gzip(&body),
    }
}

#[tokio::test]
async fn a_target_past_the_body_cap_is_read_up_to_the_cap_and_inflated_gzip_is_capped_the_same() {
    const CAP: usize = 16 * 1024;
    let cap = CAP.to_string();
    let env = [("CAIRN_HARVEST_MAX_BYTES", cap.as_str())];
    let server = FeedServer::start().await;
    let big = |head: &str, tail: &str| {
        let mut page = format!("<html><head><title>Post</title>{head}</head><body>").into_bytes();
        page.resize(page.len() + 8 * 1024 * 1024, b' ');
        page.extend_from_slice(format!("{tail}</body></html>").as_bytes());
        page
    };
    server.set("/wm", accepted());
    server.set("/wm/late", accepted());
    // 8 MiB, sent plainly with its length, and gzipped (about 8 KiB on the wire).
    let plain = big(r#"<link rel="webmention" href="/wm">"#, "");
    server.set("/big", Reply::typed(plain.clone(), "text/html"));
    server.set("/big.gz", gzipped_html(plain));
    for path in ["/big", "/big.gz"] {
        let started = Instant::now();
        let (ok, out) = send_with(&server, SOURCE, &server.url(path), &["--once"], &env).await;
        assert!(ok && out.contains(&format!("endpoint: {}", server.url("/wm"))), "{path}: {out}");
        assert!(started.elapsed() < Duration::from_secs(20), "{path}");
    }
    assert_eq!(server.hits("/wm"), 2);
    // An endpoint past the cap once inflated is not read, although the wire bytes are few.
    let late = gzip(&big("", r#"<link rel="webmention" href="/wm/late">"#));
    assert!(late.len() < CAP, "compressed: {} bytes", late.len());
    server.set("/late.gz", gzipped_html(big("", r#"<link rel="webmention" href="/wm/late">"#)));
    let (ok, out) = send_with(&server, SOURCE, &server.url("/late.gz"), &["--once"], &env).await;
    assert!(!ok && out.contains("advertises no Webmention endpoint"), "{out}");
    assert_eq!(server.hits("/wm/late"), 0);

    // The outbox reads the same way (its feed is far below the cap).
    assert!(fixture("rss2.xml").len() < CAP);
    server.set(POST, gzipped_html(big(r#"<link rel="webmention" href="/wm/outbox">"#, "")));
    server.set("/wm/outbox", accepted());
    let (_app, wm) = outbox_attempt(&server, |s| s.harvest.max_bytes = CAP).await;
    assert_eq!(wm.status, "sent", "{wm:?}");
    assert_eq!(server.hits("/wm/outbox"), 1);
}

#[tokio::test]
async fn the_cli_retries_within_its_bounds_unless_told_to_send_once() {
    let server = FeedServer::start().await;
    server.set("/post", html(r#"<link rel="webmention" href="/wm">"#));
    let busy = |retry_after: Option<&str>| Reply::Status {
        status: 503,
        headers: retry_after.map(|r| ("Retry-After".to_string(), r.to_string())).into_iter().collect(),
        body: vec![],
    };
    let target = server.url("/post");

    let help = crate::helpers::cairn_cmd().args(["webmention", "send", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    assert!(help.contains("--once") && help.contains("Send exactly once"), "{help}");

    // --once: exactly one POST.
    server.set("/wm", busy(None));
    let (ok, out) = send_with(&server, SOURCE, &target, &["--once"], &[]).await;
    assert!(!ok && out.contains("503") && out.contains("sent once"), "{out}");
    assert_eq!(server.hits("/wm"), 1);

    // A Retry-After past what the outbox honours is capped at a day, which is past the
    // command's total wait: it stops after one attempt and says why.
    server.set("/wm", busy(Some("999999999")));
    let (ok, out) = send_with(&server, SOURCE, &target, &[], &[]).await;
    assert!(!ok && out.contains("the next would wait 86400 s") && out.contains("--max-wait"), "{out}");
    assert_eq!(server.hits("/wm"), 2);

    // A Retry-After the --timeout cannot wait for ends the command at once, saying why.
    server.set("/wm", busy(Some("90")));
    let (ok, out) = send_with(&server, SOURCE, &target, &[], &[]).await;
    assert!(!ok && out.contains("the next would wait 90 s, past --timeout 30"), "{out}");
    assert_eq!(server.hits("/wm"), 3);

    // Within the bounds the command retries: it prints the retry with the wait Retry-After
    // asks for, and waits. Stopped once it said so.
    let mut child =
        cli(&server, SOURCE, &target, &["--timeout", "300"], &[]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Waiting off the runtime: the receiver runs on it.
    let line = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(20)))
        .await
        .unwrap()
        .expect("the command announces its retry");
    assert_eq!(line, "attempt 1: the endpoint answered 503 Service Unavailable; retrying in 90 s");
    assert_eq!(server.hits("/wm"), 4, "waiting, not sending");
    child.kill().unwrap();
    child.wait().unwrap();

    // The same loop, with the waits recorded instead of slept: a second after a 503, what
    // Retry-After asks after a 429, then success once the receiver recovers.
    server.set("/wm", busy(None));
    let settings = cairn::config::HarvestSettings { timeout_secs: 5, ..Default::default() };
    let fetcher = cairn::harvest::fetcher(&settings, &[server.origin()], "https://cairn.example.edu").unwrap();
    let sender = cairn::webmention::Sender::new(&fetcher, "https://cairn.example.edu");
    let waits = std::sync::Mutex::new(vec![]);
    let limits = cairn::notify::outbox::ForegroundLimits { timeout: Duration::from_secs(3600), ..Default::default() };
    let done = cairn::notify::outbox::send_in_foreground(&sender, SOURCE, &target, limits, |r| {
        waits.lock().unwrap().push(r.wait_secs);
        let next = if r.failed_attempt == 1 {
            Reply::Status { status: 429, headers: vec![("Retry-After".into(), "200".into())], body: vec![] }
        } else {
            accepted()
        };
        server.set("/wm", next);
        std::future::ready(())
    })
    .await;
    assert!(matches!(done.outcome, cairn::webmention::Outcome::Sent { status: 202, .. }), "{done:?}");
    assert_eq!(done.attempts, 3);
    assert_eq!(*waits.lock().unwrap(), vec![1, 200], "a second, then what Retry-After asks");
    assert_eq!(server.hits("/wm"), 7);
}

/// Runs `cmd` to its end, bounded by `limit` (killed and failed past it): whether it
/// succeeded, what it printed, and how long it took.
async fn run_bounded(mut cmd: std::process::Command, limit: Duration) -> (bool, String, Duration) {
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let started = Instant::now();
        let mut child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("the command was still running after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = started.elapsed();
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        child.stderr.take().unwrap().read_to_string(&mut out).unwrap();
        (status.success(), out, elapsed)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_cli_waits_the_second_retry_after_asks_and_gives_up_on_silence_within_its_timeout() {
    let server = FeedServer::start().await;
    server.set("/post", html(r#"<link rel="webmention" href="/wm">"#));
    let target = server.url("/post");
    // 429 with Retry-After: 1: a second between attempts, not a minute.
    server.set("/wm", Reply::Status { status: 429, headers: vec![("Retry-After".into(), "1".into())], body: vec![] });
    let (ok, out, took) =
        run_bounded(cli(&server, SOURCE, &target, &["--attempts", "3"], &[]), Duration::from_secs(120)).await;
    assert!(!ok && out.contains("(after 3 attempt(s), the most --attempts allows)"), "{out}");
    assert_eq!(out.matches("429 Too Many Requests; retrying in 1 s").count(), 2, "{out}");
    assert_eq!(server.hits("/wm"), 3);
    assert!(took < Duration::from_secs(20), "three attempts a second apart took {took:?}");

    // 5xx without Retry-After: a short backoff, a second doubling.
    server.set("/wm", Reply::Status { status: 502, headers: vec![], body: vec![] });
    let (ok, out, took) =
        run_bounded(cli(&server, SOURCE, &target, &["--attempts", "3"], &[]), Duration::from_secs(120)).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("502 Bad Gateway; retrying in 1 s") && out.contains("502 Bad Gateway; retrying in 2 s"),
        "{out}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");

    // Then success once the receiver accepts.
    server.set("/wm", accepted());
    let (ok, out, _) = run_bounded(cli(&server, SOURCE, &target, &[], &[]), Duration::from_secs(120)).await;
    assert!(ok && out.contains("status: 202 (accepted)"), "{out}");

    // A target, then an endpoint, that never answer: given up at --timeout with the reason,
    // well before the outbound client's own 20 s limit, let alone a minute's backoff.
    let silent = || Reply::Delayed { wait: Duration::from_secs(600), then: Box::new(accepted()) };
    server.set("/silent-post", silent());
    server.set("/quiet", html(r#"<link rel="webmention" href="/silent-wm">"#));
    server.set("/silent-wm", silent());
    for path in ["/silent-post", "/quiet"] {
        let (ok, out, took) =
            run_bounded(cli(&server, SOURCE, &server.url(path), &["--timeout", "3"], &[]), Duration::from_secs(120))
                .await;
        assert!(!ok, "{path}: {out}");
        assert!(
            out.contains("no answer within the timeout of 3 s (gave up during attempt 1, at --timeout 3)"),
            "{path}: {out}"
        );
        assert!(took < Duration::from_secs(15), "{path}: gave up after {took:?}");
    }
    assert_eq!(server.hits("/silent-wm"), 1, "the endpoint was reached once and never answered");
}

#[tokio::test]
async fn webmentions_are_sent_as_a_webmention_sender_while_harvesting_keeps_its_own_user_agent() {
    let server = FeedServer::start().await;
    server.set(POST, html(r#"<link rel="webmention" href="/wm">"#));
    server.set("/wm", accepted());
    let ua = |path: &str| server.last_header(path, "user-agent").unwrap_or_default();
    let (ok, out) = send(&server, SOURCE, &server.url(POST)).await;
    assert!(ok, "{out}");
    let expected = format!("Cairn/{} (Webmention sender; +https://cairn.example.edu)", env!("CARGO_PKG_VERSION"));
    assert_eq!((ua(POST), ua("/wm")), (expected.clone(), expected));

    let (app, wm) = outbox_attempt(&server, |_| {}).await;
    assert_eq!(wm.status, "sent", "{wm:?}");
    let base = app.url("");
    let base = base.trim_end_matches('/');
    for path in [POST, "/wm"] {
        assert!(ua(path).contains("(Webmention sender; +") && ua(path).contains(base), "{path}: {}", ua(path));
        assert!(!ua(path).contains("harvester"), "{path}");
    }
    assert!(ua("/f.xml").contains("feed harvester"), "{}", ua("/f.xml"));
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
        let author =
            cairn::db::feeds::find_or_create_author(&mut c, "Ada", Some("ada@example.edu"), cairn::clock::system_now())
                .unwrap();
        let feed = cairn::db::feeds::NewFeed {
            author_id: author.id,
            url: &learner.url("/f.xml"),
            title: "",
            site_url: None,
            status: cairn::db::feeds::FeedStatus::Active,
            confirm_token_hash: None,
            manage_token_hash: None,
        };
        cairn::db::feeds::create_feed(&mut c, feed, cairn::clock::system_now()).unwrap();
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
