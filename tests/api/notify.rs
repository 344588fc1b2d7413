//! Notifications: the award's Webmention and email, retries, revocation, and receiving.

use std::time::{Duration, Instant};

use diesel::prelude::*;

use crate::badges::{app_with_post, award_post};
use crate::feedserver::{FeedServer, Reply};
use crate::helpers::TestApp;

/// The outbox rows of all awards.
fn notes(app: &TestApp) -> Vec<cairn::notify::Notification> {
    use cairn::db::schema::outbox::dsl;
    dsl::outbox
        .select(cairn::notify::Notification::as_select())
        .order(dsl::id)
        .load(&mut app.pool.get().unwrap())
        .unwrap()
}

/// Waits (at most 20 s) until `pred` holds for the outbox.
async fn wait_outbox(
    app: &TestApp,
    pred: impl Fn(&[cairn::notify::Notification]) -> bool,
) -> Vec<cairn::notify::Notification> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.notifier.deliver_due().await.unwrap();
        let n = notes(app);
        if pred(&n) {
            return n;
        }
        assert!(Instant::now() < deadline, "outbox never reached the expected state: {n:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn serve_post_with_endpoint(server: &FeedServer, endpoint_reply: Reply) {
    server.set(
        "/2019/data-and-me",
        Reply::typed(
            r#"<html><head><link rel="webmention" href="/wm"></head><body><p>Data &amp; me</p></body></html>"#,
            "text/html",
        ),
    );
    server.set("/wm", endpoint_reply);
}

#[tokio::test]
async fn an_award_sends_a_webmention_to_the_post_and_an_email_with_the_baked_badge() {
    let (app, server, post) = app_with_post().await;
    serve_post_with_endpoint(&server, Reply::Status { status: 202, headers: vec![], body: vec![] });
    let url = award_post(&app, post, "el30-data").await;
    let n = wait_outbox(&app, |n| n.len() == 2 && n.iter().all(|x| x.status == "sent")).await;
    assert!(n.iter().any(|x| x.kind == "webmention" && x.endpoint.as_deref() == Some(server.url("/wm").as_str())));
    // The receiver got source = the verification page, target = the post.
    let body = server.last_body("/wm").unwrap();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    assert_eq!(pairs, vec![("source".into(), url.clone()), ("target".into(), server.url("/2019/data-and-me"))]);
    // The source page links to the target, as strict receivers require.
    let page = app.client.get(&url).header("accept", "text/html").send().await.unwrap();
    assert!(page.headers()["link"].to_str().unwrap().contains("rel=\"webmention\""));
    let page = page.text().await.unwrap();
    assert!(page.contains(&format!("class=\"u-mention-of\" href=\"{}\"", server.url("/2019/data-and-me"))));

    // The email (.eml, no SMTP configured): text and HTML, and the baked PNG attached.
    let dir = app.data_dir.join("mail");
    let mail = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|m| m.contains("You earned the badge"))
        .expect("badge email");
    assert!(mail.contains("To: ada@example.edu"));
    assert!(mail.contains("text/plain") && mail.contains("text/html") && mail.contains("image/png"), "{mail}");
    assert!(mail.contains("Content-Disposition: attachment") && mail.contains(".png"), "{mail}");
    // The Reader shows both.
    let reader = app.get_html("/admin/reader").await;
    assert!(reader.contains("Webmention sent") && reader.contains("email sent"), "notification state shown");

    // Revoking sends the same pair again.
    let id = url.rsplit('/').next().unwrap();
    app.post_form(&format!("/admin/awards/{id}/revoke"), &[("reason", "mistake")]).await;
    wait_outbox(&app, |n| n.iter().filter(|x| x.kind == "webmention" && x.status == "sent").count() == 2).await;
    assert_eq!(server.hits("/wm"), 2);
}

#[tokio::test]
async fn a_busy_receiver_is_retried_with_backoff_and_a_post_without_endpoint_is_noted() {
    let (app, server, post) = app_with_post().await;
    serve_post_with_endpoint(
        &server,
        Reply::Status { status: 503, headers: vec![("Retry-After".into(), "120".into())], body: vec![] },
    );
    award_post(&app, post, "el30-data").await;
    let before = cairn::clock::system_now();
    let n = wait_outbox(&app, |n| n.iter().any(|x| x.kind == "webmention" && x.attempts >= 1)).await;
    let wm = n.iter().find(|x| x.kind == "webmention").unwrap();
    assert_eq!(wm.status, "queued");
    assert!(wm.next_attempt_at >= before + 120, "Retry-After honoured");
    assert!(wm.last_error.as_deref().unwrap().contains("503"));
    // The receiver recovers; the retry (made due now) succeeds.
    server.set("/wm", Reply::Status { status: 202, headers: vec![], body: vec![] });
    {
        use cairn::db::schema::outbox::dsl;
        diesel::update(dsl::outbox).set(dsl::next_attempt_at.eq(0)).execute(&mut app.pool.get().unwrap()).unwrap();
    }
    wait_outbox(&app, |n| n.iter().any(|x| x.kind == "webmention" && x.status == "sent")).await;
    assert_eq!(server.hits("/wm"), 2);

    // A post with no endpoint: noted, not retried.
    let links = cairn::db::links::recent(&mut app.pool.get().unwrap(), None, 10).unwrap();
    let other = links.iter().find(|v| v.link.title == "Not about databases").unwrap().link.id;
    let _ = other;
    server.set("/2019/data-and-me", Reply::typed("<p>no endpoint</p>", "text/html"));
    let url = award_post(&app, post, "el30-cloud").await;
    let n = wait_outbox(&app, |n| {
        n.iter().filter(|x| x.kind == "webmention").count() == 2
            && n.iter().filter(|x| x.kind == "webmention").all(|x| x.status != "queued")
    })
    .await;
    assert!(n.iter().any(|x| x.status == "no_endpoint"), "{n:?}");
    assert!(!url.is_empty());
}

#[tokio::test]
async fn received_webmentions_are_verified_and_shown_on_the_badge_page() {
    let (app, server, post) = app_with_post().await;
    serve_post_with_endpoint(&server, Reply::Status { status: 202, headers: vec![], body: vec![] });
    let url = award_post(&app, post, "el30-data").await;
    server.set(
        "/i-earned-it",
        Reply::typed(format!(r#"<article>I earned <a href="{url}">this badge</a>!</article>"#), "text/html"),
    );
    server.set("/unrelated", Reply::typed("<p>nothing</p>", "text/html"));
    let visitor = crate::helpers::client();
    let send = |source: String, target: String| {
        let visitor = visitor.clone();
        let endpoint = app.url("/webmention");
        async move { visitor.post(endpoint).form(&[("source", source), ("target", target)]).send().await.unwrap() }
    };
    assert_eq!(send(server.url("/i-earned-it"), url.clone()).await.status(), 202);
    assert_eq!(send(server.url("/unrelated"), url.clone()).await.status(), 202);
    // Bad requests are refused at once.
    assert_eq!(send(server.url("/x"), "https://elsewhere.example/".into()).await.status(), 400);
    assert_eq!(send(url.clone(), url.clone()).await.status(), 400);
    assert_eq!(send("not a url".into(), url.clone()).await.status(), 400);

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.notifier.verify_mentions().await.unwrap();
        let page = app.client.get(&url).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
        if page.contains("Mentioned by") {
            assert!(page.contains(&server.url("/i-earned-it")));
            assert!(!page.contains(&server.url("/unrelated")), "a source without a link is rejected");
            break;
        }
        assert!(Instant::now() < deadline, "the mention was never verified");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A flood from one address is slowed down (30 a minute).
    let mut statuses = Vec::new();
    for i in 0..40 {
        statuses.push(send(server.url(&format!("/flood/{i}")), url.clone()).await.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn the_badge_email_goes_through_a_real_smtp_server() {
    let server = FeedServer::start().await;
    server.set("/f.xml", Reply::xml(crate::feedserver::fixture("rss2.xml")));
    let smtp = crate::smtp::SmtpSink::start().await;
    let app = crate::harvest::app_for(&server, |s| {
        s.mail.smtp_host = Some("127.0.0.1".into());
        s.mail.smtp_port = smtp.port;
        s.mail.smtp_tls = cairn::config::SmtpTls::None;
    })
    .await;
    let out = {
        let (dir, base) = (app.data_dir.clone(), app.address.clone());
        tokio::task::spawn_blocking(move || {
            crate::helpers::cairn_cmd()
                .env("CAIRN_DATA_DIR", dir)
                .env("CAIRN_BASE_URL", base)
                .args([
                    "award",
                    "--task",
                    "#el30-graph",
                    "--recipient",
                    "lin@example.edu",
                    "--evidence",
                    "https://lin.example.org/graph",
                    "--name",
                    "Lin",
                ])
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The award was made by another process: the worker finds it in the outbox.
    wait_outbox(&app, |n| n.iter().any(|x| x.kind == "email" && x.status == "sent")).await;
    let mails = smtp.wait_for(1).await;
    let mail = mails.iter().find(|m| m.contains("You earned the badge")).expect("badge email over SMTP");
    assert!(mail.contains("lin@example.edu") && mail.contains("image/png") && mail.contains("Hello,"), "{mail}");

    // The attachment is the baked PNG, and the official validator accepts it for Lin.
    let png = attachment(mail).expect("a PNG attachment");
    assert!(png.starts_with(b"\x89PNG"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("attached.png");
    std::fs::write(&path, &png).unwrap();
    let (verdict, code) = crate::badges::validate(path.to_str().unwrap(), Some("lin@example.edu")).await;
    assert_eq!((verdict.as_str(), code), ("VALID", 0));
}

/// The base64 body of the image/png part of a MIME message.
fn attachment(mail: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let start = mail.find("Content-Type: image/png")?;
    let part = &mail[start..];
    let body_start = part.find("\r\n\r\n").map(|i| i + 4).or_else(|| part.find("\n\n").map(|i| i + 2))?;
    let body = &part[body_start..];
    let end = body.find("--").unwrap_or(body.len());
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

#[tokio::test]
async fn slow_webmention_sources_never_hold_up_notifications() {
    let (app, server, post) = app_with_post().await;
    serve_post_with_endpoint(&server, Reply::Status { status: 202, headers: vec![], body: vec![] });
    let url = award_post(&app, post, "el30-data").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !notes(&app).iter().any(|n| n.kind == "webmention" && n.status == "sent") {
        assert!(Instant::now() < deadline, "the award's Webmention was never sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Sources that take 15 s to answer keep the running server's verifier busy...
    let visitor = crate::helpers::client();
    for i in 0..6 {
        let path = format!("/slow/{i}");
        server.set(
            &path,
            Reply::Delayed {
                wait: Duration::from_secs(15),
                then: Box::new(Reply::typed(format!(r#"<a href="{url}">badge</a>"#), "text/html")),
            },
        );
        let res = visitor.post(app.url("/webmention")).form(&[("source", server.url(&path)), ("target", url.clone())]);
        assert_eq!(res.send().await.unwrap().status(), 202);
    }
    // ...while a revocation's Webmention goes out at once, from the same running server.
    let id = url.rsplit('/').next().unwrap();
    app.post_form(&format!("/admin/awards/{id}/revoke"), &[("reason", "mistake")]).await;
    let deadline = Instant::now() + Duration::from_secs(8);
    while notes(&app).iter().filter(|n| n.kind == "webmention" && n.status == "sent").count() < 2 {
        assert!(Instant::now() < deadline, "a slow Webmention source held up the outbox");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    use cairn::db::schema::mentions::dsl;
    let pending: i64 =
        dsl::mentions.filter(dsl::status.eq("pending")).count().get_result(&mut app.pool.get().unwrap()).unwrap();
    assert_eq!(pending, 6, "the slow sources were still being read when the revocation went out");
}
