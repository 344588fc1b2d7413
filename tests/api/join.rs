//! Learners subscribe: discovery, confirmation by email (.eml files or a real SMTP
//! listener), the private management link; instructors' feed pages; `cairn feed check`.

use crate::feedserver::{FeedServer, Reply, fixture};
use crate::harvest::{app_for, links_of, pass};
use crate::helpers::{TestApp, csrf_in, location};
use crate::smtp::SmtpSink;

fn serve_blog(server: &FeedServer) {
    server.set("/", Reply::typed(fixture("page.html"), "text/html; charset=utf-8"));
    server.set("/feeds/rss2.xml", Reply::xml(fixture("rss2.xml")));
    server.set("/nofeed", Reply::typed(fixture("page-nofeed.html"), "text/html"));
    server.set("/two", Reply::typed(
        r#"<html><head><link rel="alternate" type="application/rss+xml" title="Posts" href="/feeds/rss2.xml"><link rel="alternate" type="application/atom+xml" title="Notes" href="/feeds/atom.xml"></head></html>"#,
        "text/html",
    ));
    server.set("/feeds/atom.xml", Reply::typed(fixture("atom10.xml"), "application/atom+xml"));
}

/// Follows a confirmation link (join or newsletter) as a person does: the GET shows a page
/// with one labelled button whose form POSTs back to the link; the POST confirms. Returns the
/// POST's answer, or the page's 404 when the link is unknown, used or expired.
pub async fn confirm_through_page(client: &reqwest::Client, link: &str) -> reqwest::Response {
    let page = client.get(link).send().await.unwrap();
    if page.status() == 404 {
        return page;
    }
    assert_eq!(page.status(), 200, "{link}");
    let html = page.text().await.unwrap();
    let action = html
        .split("<form method=\"post\" action=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("the page has a form: {html}"))
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let target = reqwest::Url::parse(link).unwrap().join(&action).unwrap();
    assert_eq!(target.as_str(), link, "the button posts to the link itself");
    assert!(html.contains("<button type=\"submit\">Confirm my subscription</button>"), "{html}");
    client.post(target).send().await.unwrap()
}

async fn join(app: &TestApp, fields: &[(&str, &str)]) -> reqwest::Response {
    join_as(app, fields, None, None).await
}

/// A join, optionally through a proxy that says the client is `forwarded`, or asking for JSON.
async fn join_as(
    app: &TestApp,
    fields: &[(&str, &str)],
    forwarded: Option<&str>,
    accept: Option<&str>,
) -> reqwest::Response {
    let page = app.get_html("/join").await;
    let csrf = csrf_in(&page);
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(fields);
    let mut req = app.client.post(app.url("/join")).form(&all);
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    req.send().await.unwrap()
}

/// Every .eml file's text, oldest first.
fn all_eml(app: &TestApp) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(app.data_dir.join("mail")) else { return vec![] };
    let mut files: Vec<_> = dir.map(|e| e.unwrap().path()).collect();
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
}

fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers().get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap()
}

/// The newest .eml file's text.
fn last_eml(app: &TestApp) -> String {
    let dir = app.data_dir.join("mail");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    std::fs::read_to_string(files.last().expect("an email")).unwrap()
}

/// The first `{base}{prefix}…` link in an email, with quoted-printable soft breaks undone.
pub(crate) fn link_in(mail: &str, base: &str, prefix: &str) -> String {
    let text = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let start = text.find(&format!("{base}{prefix}")).unwrap_or_else(|| panic!("no {prefix} link in {text}"));
    text[start..].split_whitespace().next().unwrap().trim_end_matches('.').to_string()
}

#[tokio::test]
async fn a_learner_joins_from_a_blog_page_confirms_by_email_and_manages_the_subscription() {
    let server = FeedServer::start().await;
    serve_blog(&server);
    let app = app_for(&server, |_| {}).await;
    let res = join(&app, &[("name", "Ada Lovelace"), ("email", "ada@example.edu"), ("url", &server.url("/"))]).await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains("Check your email") && body.contains("3 post(s)"), "{body}");

    let mail = last_eml(&app);
    assert!(mail.contains("To: ada@example.edu"), "{mail}");
    let confirm = link_in(&mail, &app.address, "/join/confirm/");
    let manage = link_in(&mail, &app.address, "/subscription/");

    // Not polled before confirmation; opening the link (a mail scanner does) confirms nothing.
    assert_eq!(pass(&app).await.feeds, 0);
    for _ in 0..2 {
        let res = app.client.get(&confirm).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("Confirm my subscription"));
    }
    assert_eq!(pass(&app).await.feeds, 0, "still unconfirmed after GETs");
    let feeds = cairn::db::feeds::list_feeds(&mut app.pool.get().unwrap()).unwrap();
    assert_eq!(feeds[0].0.status.as_str(), "pending");
    let res = confirm_through_page(&app.client, &confirm).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("You are subscribed"));
    let again = confirm_through_page(&app.client, &confirm).await;
    assert_eq!(again.status(), 404, "a confirmation link works once");
    assert_eq!(pass(&app).await.added, 3);

    // The private link: change the name, then remove the subscription.
    let page = app.client.get(&manage).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&server.url("/feeds/rss2.xml")));
    let csrf = csrf_in(&page);
    let res = app
        .client
        .post(&manage)
        .form(&[("csrf_token", csrf.as_str()), ("name", "Ada King"), ("url", &server.url("/feeds/rss2.xml"))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let res = app.client.post(format!("{manage}/remove")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.client.get(&manage).send().await.unwrap().status(), 404);
    // Removed: not polled, links kept.
    crate::harvest::make_due(&app);
    assert_eq!(pass(&app).await.feeds, 0);
    let links = cairn::db::links::recent(&mut app.pool.get().unwrap(), None, 100).unwrap();
    assert_eq!(links.len(), 3);
    assert_eq!(links[0].author, "Ada King");
}

#[tokio::test]
async fn joining_with_a_bad_address_explains_what_is_wrong_and_keeps_the_form() {
    let server = FeedServer::start().await;
    serve_blog(&server);
    let app = app_for(&server, |_| {}).await;
    for (url, why) in [
        (server.url("/nofeed"), "no feed found at"),
        (server.url("/missing"), "returned 404"),
        ("http://10.0.0.1/feed".to_string(), "private, loopback"),
        ("ftp://example.org/feed".to_string(), "not a web address"),
    ] {
        let res = join(&app, &[("name", "Ada"), ("email", "ada@example.edu"), ("url", &url)]).await;
        assert_eq!(res.status(), 422, "{url}");
        let body = res.text().await.unwrap();
        assert!(body.contains(why), "{why}: {body}");
        assert!(body.contains("value=\"ada@example.edu\""), "email kept");
    }
    let res = join(&app, &[("name", ""), ("email", "not-an-email"), ("url", "")]).await;
    let body = res.text().await.unwrap();
    for id in ["e-name", "e-email", "e-url"] {
        assert!(body.contains(id), "{id}");
    }
    // A page with two feeds asks which one.
    let res = join(&app, &[("name", "Ada"), ("email", "ada@example.edu"), ("url", &server.url("/two"))]).await;
    let body = res.text().await.unwrap();
    assert!(body.contains("several feeds") && body.contains("type=\"radio\""), "{body}");
    let res = join(
        &app,
        &[
            ("name", "Ada"),
            ("email", "ada@example.edu"),
            ("url", &server.url("/two")),
            ("feed", &server.url("/feeds/atom.xml")),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let feeds = cairn::db::feeds::list_feeds(&mut app.pool.get().unwrap()).unwrap();
    assert_eq!(feeds[0].0.url, server.url("/feeds/atom.xml"));
    // Subscribing the same feed twice is refused.
    let res =
        join(&app, &[("name", "Eve"), ("email", "eve@example.edu"), ("url", &server.url("/feeds/atom.xml"))]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("contact the course"));
}

#[tokio::test]
async fn confirmation_mail_goes_through_a_real_smtp_server_when_configured() {
    let server = FeedServer::start().await;
    serve_blog(&server);
    let smtp = SmtpSink::start().await;
    let app = app_for(&server, |s| {
        s.mail.smtp_host = Some("127.0.0.1".into());
        s.mail.smtp_port = smtp.port;
        s.mail.smtp_tls = cairn::config::SmtpTls::None;
    })
    .await;
    let res =
        join(&app, &[("name", "Grace"), ("email", "grace@example.edu"), ("url", &server.url("/feeds/rss2.xml"))]).await;
    assert_eq!(res.status(), 200);
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("grace@example.edu") && mails[0].contains("/join/confirm/"), "{}", mails[0]);
    assert!(!app.data_dir.join("mail").exists(), "no .eml files when SMTP is set");
}

#[tokio::test]
async fn instructors_add_pause_and_export_feeds_and_see_their_state() {
    let server = FeedServer::start().await;
    serve_blog(&server);
    server.set("/broken.xml", Reply::Status { status: 500, headers: vec![], body: vec![] });
    let app = app_for(&server, |_| {}).await;
    app.login().await;
    let page = app.get_html("/admin/feeds").await;
    assert!(page.contains(".eml"), "the page says mail is written to files");
    let res = app.post_form("/admin/feeds", &[("name", "Ada"), ("email", ""), ("url", &server.url("/"))]).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let res = app.post_form("/admin/feeds", &[("name", "Bob"), ("email", ""), ("url", &server.url("/nofeed"))]).await;
    assert_eq!(res.status(), 422);
    crate::harvest::add_feed(&app, &server.url("/broken.xml"), "Broken");
    pass(&app).await;
    let page = app.get_html("/admin/feeds").await;
    assert!(page.contains("Ada&#39;s learning log") || page.contains("Ada's learning log"), "title shown");
    assert!(page.contains("500 Internal Server Error"), "last error in words");
    assert!(page.contains("<td>failing</td>"), "a feed that never succeeded is not called active: {page}");

    let feeds = cairn::db::feeds::list_feeds(&mut app.pool.get().unwrap()).unwrap();
    let ada = feeds.iter().find(|(_, a)| a.name == "Ada").unwrap().0.clone();
    assert_eq!(links_of(&app, ada.id).len(), 3);
    let res = app.post_form(&format!("/admin/feeds/{}/status", ada.id), &[("status", "paused")]).await;
    assert_eq!(res.status(), 303);
    crate::harvest::make_due(&app);
    assert_eq!(pass(&app).await.feeds, 1, "the paused feed is skipped");

    // OPML out, then into a fresh instance.
    let opml = app.get("/admin/feeds/opml").await.text().await.unwrap();
    assert!(opml.contains(&server.url("/feeds/rss2.xml")) && opml.contains("text=\"Ada\""));
    let other = app_for(&server, |_| {}).await;
    other.login().await;
    let res = other.post_multipart("/admin/feeds/opml", &[], "opml", Some((opml.into_bytes(), "feeds.opml"))).await;
    assert_eq!(res.status(), 303);
    assert_eq!(cairn::db::feeds::list_feeds(&mut other.pool.get().unwrap()).unwrap().len(), 2);
    // OPML carries no email: the instructor is told who cannot be awarded yet, and where to fix it.
    let page = other.get_html("/admin/feeds").await;
    assert!(page.contains("2 of the learners have no email address"), "{page}");
    assert!(page.contains("until you add one: Broken, Ada."), "the learners are named: {page}");
    let res = other.post_multipart("/admin/feeds/opml", &[], "opml", Some((b"<html/>".to_vec(), "x.opml"))).await;
    assert_eq!(res.status(), 400);
}

use crate::helpers::cairn_cmd;

#[tokio::test]
async fn feed_check_prints_what_would_be_stored_as_json() {
    let server = FeedServer::start().await;
    serve_blog(&server);
    let dir = tempfile::tempdir().unwrap();
    // Seed the demo tasks so hashtags can be matched; the check itself writes nothing.
    let pool = cairn::db::open(&dir.path().join("data/cairn.db")).unwrap();
    cairn::demo::seed(&mut pool.get().unwrap()).unwrap();
    let (origin, page) = (server.origin(), server.url("/"));
    let out = tokio::task::spawn_blocking(move || {
        cairn_cmd()
            .current_dir(dir.path())
            .env("CAIRN_ALLOW_ORIGINS", origin)
            .args(["feed", "check", "--json", &page])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"], serde_json::Value::Null);
    assert_eq!(doc["feed"]["url"], server.url("/feeds/rss2.xml"));
    assert_eq!(doc["feed"]["title"], "Ada's learning log");
    let items = doc["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["title"], "Data & me");
    assert_eq!(items[0]["url"], server.url("/2019/data-and-me"));
    assert_eq!(items[0]["id"], "ada-post-1");
    assert_eq!(items[0]["author"], "Ada Lovelace");
    assert_eq!(items[0]["published"], "2018-10-15T10:00:00+00:00");
    assert_eq!(items[0]["hashtags"], serde_json::json!(["#el30-cloud", "#el30-data"]));
    assert_eq!(items[1]["hashtags"], serde_json::json!([]), "#el30-database matches no task");

    // Failure: non-zero exit and the error in words.
    let (origin, missing) = (server.origin(), server.url("/missing"));
    let out = tokio::task::spawn_blocking(move || {
        cairn_cmd().env("CAIRN_ALLOW_ORIGINS", origin).args(["feed", "check", "--json", &missing]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["error"].as_str().unwrap().contains("404"));
    // Without the allow list, loopback is refused.
    let page = server.url("/");
    let out = tokio::task::spawn_blocking(move || cairn_cmd().args(["feed", "check", &page]).output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("private, loopback"));
    let _ = location;
}

/// A join that passes the form checks and then fails fast (a private address), so that it
/// counts against the per-client limit without any outbound request.
const CHEAP: [(&str, &str); 3] = [("name", "Zed"), ("email", "zed@example.edu"), ("url", "http://10.0.0.1/feed")];

#[tokio::test]
async fn forty_joins_to_one_address_send_at_most_three_mails() {
    let server = FeedServer::start().await;
    for i in 0..40 {
        // A feed whose title is an advertisement: none of it may reach the mail.
        let feed = String::from_utf8(fixture("rss2.xml"))
            .unwrap()
            .replace("Ada's learning log", "BUY CHEAP PILLS AT spam.example");
        server.set(&format!("/f{i}.xml"), Reply::xml(feed));
    }
    let smtp = SmtpSink::start().await;
    let app = app_for(&server, |s| {
        s.join.per_client_per_hour = 1000;
        s.mail.smtp_host = Some("127.0.0.1".into());
        s.mail.smtp_port = smtp.port;
        s.mail.smtp_tls = cairn::config::SmtpTls::None;
    })
    .await;
    let run = async {
        let mut statuses = vec![];
        for i in 0..40 {
            let url = server.url(&format!("/f{i}.xml"));
            let accept = (i == 39).then_some("application/json");
            let res =
                join_as(&app, &[("name", "Victim"), ("email", "victim@example.edu"), ("url", &url)], None, accept)
                    .await;
            let status = res.status().as_u16();
            if status == 429 {
                let wait = retry_after(&res);
                assert!((1..=86_400).contains(&wait), "{wait}");
                let body = res.text().await.unwrap();
                if i == 39 {
                    let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON for a JSON client");
                    assert_eq!(doc["error"]["status"], 429);
                    assert!(doc["error"]["message"].as_str().unwrap().contains("confirmation email"));
                } else {
                    assert!(body.contains("already sent 3 confirmation email(s)"), "{body}");
                }
            }
            statuses.push(status);
        }
        statuses
    };
    let statuses = tokio::time::timeout(std::time::Duration::from_secs(120), run).await.expect("40 joins in time");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 37, "{statuses:?}");
    let mails = smtp.wait_for(3).await;
    assert_eq!(mails.len(), 3);
    for m in &mails {
        assert!(!m.contains("PILLS") && !m.contains(&server.origin()), "sender-chosen text in the mail: {m}");
        assert!(m.contains("Hello Victim") && m.contains("/join/confirm/"), "{m}");
    }
    assert_eq!(server.hits("/f3.xml"), 0, "refused joins fetch nothing");
}

#[tokio::test]
async fn the_eleventh_join_from_one_client_is_refused_and_forwarded_for_is_ignored_by_default() {
    let app = crate::helpers::spawn_app().await;
    for i in 0..10 {
        // Each claims another client; without a trusted proxy the header means nothing.
        let res = join_as(&app, &CHEAP, Some(&format!("198.51.100.{i}")), None).await;
        assert_eq!(res.status(), 422, "join {i}");
    }
    let res = join_as(&app, &CHEAP, Some("198.51.100.99"), None).await;
    assert_eq!(res.status(), 429);
    assert!(retry_after(&res) > 0);
    let body = res.text().await.unwrap();
    assert!(body.contains("too many join requests from your address") && body.contains("<html"), "{body}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let app = crate::helpers::spawn_with(crate::helpers::behind_local_proxy).await;
    for i in 0..15 {
        let res = join_as(&app, &CHEAP, Some(&format!("198.51.100.{i}")), None).await;
        assert_eq!(res.status(), 422, "client {i}");
    }
    for i in 0..10 {
        // A spoofed hop on the left changes nothing: the proxy's view is the rightmost.
        let res = join_as(&app, &CHEAP, Some(&format!("10.9.9.{i}, 203.0.113.5")), None).await;
        assert_eq!(res.status(), 422, "join {i}");
    }
    assert_eq!(join_as(&app, &CHEAP, Some("203.0.113.5"), None).await.status(), 429);
    assert_eq!(join_as(&app, &CHEAP, Some("203.0.113.6"), None).await.status(), 422);
}

#[tokio::test]
async fn an_unconfirmed_join_does_not_rename_a_learner() {
    let server = FeedServer::start().await;
    serve_blog(&server);
    let app = app_for(&server, |_| {}).await;
    let res = join(&app, &[("name", "Ada Lovelace"), ("email", "ada@example.edu"), ("url", &server.url("/"))]).await;
    assert_eq!(res.status(), 200);
    let confirm = link_in(&last_eml(&app), &app.address, "/join/confirm/");
    assert_eq!(confirm_through_page(&app.client, &confirm).await.status(), 200);

    // Someone else joins with Ada's address and another name.
    let res = join(
        &app,
        &[("name", "Mallory was here"), ("email", "ada@example.edu"), ("url", &server.url("/feeds/atom.xml"))],
    )
    .await;
    assert_eq!(res.status(), 200);
    let name = |app: &TestApp| {
        cairn::db::feeds::author_by_email(&mut app.pool.get().unwrap(), "ada@example.edu").unwrap().unwrap().name
    };
    assert_eq!(name(&app), "Ada Lovelace", "unchanged before confirmation");
    app.login().await;
    let page = app.get_html("/admin/feeds").await;
    assert!(!page.contains("Mallory") && page.contains("Ada Lovelace"));
    // Only the owner of the address, by confirming, can change it.
    let confirm = link_in(&last_eml(&app), &app.address, "/join/confirm/");
    assert_eq!(confirm_through_page(&app.client, &confirm).await.status(), 200);
    assert_eq!(name(&app), "Mallory was here");
}

#[tokio::test]
async fn a_confirmed_feed_cannot_be_taken_over() {
    let server = FeedServer::start().await;
    serve_blog(&server);
    let app = app_for(&server, |_| {}).await;
    let feed = server.url("/feeds/rss2.xml");
    join(&app, &[("name", "Ada"), ("email", "ada@example.edu"), ("url", &feed)]).await;
    let confirm = link_in(&last_eml(&app), &app.address, "/join/confirm/");
    assert_eq!(confirm_through_page(&app.client, &confirm).await.status(), 200);
    let mails_before = all_eml(&app).len();

    let res = join(&app, &[("name", "Eve"), ("email", "eve@example.edu"), ("url", &feed)]).await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(body.contains("already followed for another learner") && body.contains("contact the course"), "{body}");
    assert_eq!(all_eml(&app).len(), mails_before, "no mail to the taker");
    let feeds = cairn::db::feeds::list_feeds(&mut app.pool.get().unwrap()).unwrap();
    assert_eq!(feeds.len(), 1);
    assert_eq!((feeds[0].0.status.as_str(), feeds[0].1.name.as_str()), ("active", "Ada"));
}

#[tokio::test]
async fn unconfirmed_subscriptions_expire_and_are_purged() {
    use diesel::RunQueryDsl;
    let server = FeedServer::start().await;
    serve_blog(&server);
    let app = app_for(&server, |_| {}).await;
    join(&app, &[("name", "Ada"), ("email", "ada@example.edu"), ("url", &server.url("/feeds/rss2.xml"))]).await;
    let confirm = link_in(&last_eml(&app), &app.address, "/join/confirm/");
    let old = cairn::clock::system_now() - 49 * 3600;
    diesel::sql_query(format!("UPDATE feeds SET updated_at = {old}, created_at = {old}"))
        .execute(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(confirm_through_page(&app.client, &confirm).await.status(), 404, "an expired link does not confirm");

    // The next join sweeps it away, with the learner made only for it.
    let res =
        join(&app, &[("name", "Bob"), ("email", "bob@example.edu"), ("url", &server.url("/feeds/atom.xml"))]).await;
    assert_eq!(res.status(), 200);
    let mut conn = app.pool.get().unwrap();
    let feeds = cairn::db::feeds::list_feeds(&mut conn).unwrap();
    assert_eq!(feeds.len(), 1);
    assert_eq!(feeds[0].1.name, "Bob");
    assert!(cairn::db::feeds::author_by_email(&mut conn, "ada@example.edu").unwrap().is_none());
    // Ada can join again at once.
    drop(conn);
    let res =
        join(&app, &[("name", "Ada"), ("email", "ada@example.edu"), ("url", &server.url("/feeds/rss2.xml"))]).await;
    assert_eq!(res.status(), 200);
}

/// Joining from a course's page: the mail's subject and text name the course and its tasks'
/// hashtags, and the page after confirming names it, says what to do next and gives the
/// learner's private page.
#[tokio::test]
async fn the_mail_and_the_subscribed_page_name_the_course_and_give_next_steps() {
    let server = FeedServer::start().await;
    serve_blog(&server);
    let app = app_for(&server, |_| {}).await;
    cairn::demo::seed(&mut app.pool.get().unwrap()).unwrap();
    let slug = cairn::demo::DEMO_SLUG;
    let res = join(
        &app,
        &[("name", "Ada Lovelace"), ("email", "ada@example.edu"), ("url", &server.url("/")), ("course", slug)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let done = res.text().await.unwrap();
    assert!(done.contains("Check your email") && done.contains("You are joining E-Learning 3.0."), "{done}");
    let mail = last_eml(&app);
    assert!(mail.contains("Subject: Confirm your feed for E-Learning 3.0"), "{mail}");
    let text = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    assert!(text.contains("for the course E-Learning 3.0") && text.contains("#el30-"), "{text}");
    assert!(text.contains(&format!("asked Test University ({}) to collect", app.address)), "the site named: {text}");
    let link = link_in(&mail, &app.address, "/join/confirm/");
    assert!(link.contains(&format!("course={slug}")) && link.contains("&m="), "{link}");
    let confirm = app.client.get(&link).send().await.unwrap().text().await.unwrap();
    assert!(confirm.contains("You are joining E-Learning 3.0."), "the confirm page names the course: {confirm}");

    let res = confirm_through_page(&app.client, &link).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("You are subscribed to E-Learning 3.0"), "{page}");
    assert!(page.contains(&format!("href=\"/courses/{slug}\"")) && page.contains("#el30-"), "{page}");
    let private =
        page.split("href=\"/subscription/").nth(1).and_then(|s| s.split('"').next()).expect("the private page");
    let res = app.client.get(app.url(&format!("/subscription/{private}"))).send().await.unwrap();
    assert_eq!(res.status(), 200, "the private page opens");
    assert!(link.contains(private), "the private page is the one in the mail");
}

/// The `<p role="status">` of a page: what it says, whatever else the page holds.
fn status_of(page: &str) -> String {
    page.split("<p role=\"status\">").nth(1).and_then(|s| s.split("</p>").next()).expect("a status").to_string()
}

/// "Lost your private link?" mails a new private link to a confirmed learner, the old link
/// stops working (the mail says so), an unknown address gets the same answer and no mail, and
/// both the address and the client are bounded.
#[tokio::test]
async fn a_learner_who_lost_the_private_link_gets_a_new_one_by_mail() {
    let server = FeedServer::start().await;
    serve_blog(&server);
    let smtp = SmtpSink::start().await;
    let app = app_for(&server, |s| {
        s.join.mails_per_address_per_day = 2;
        s.join.per_client_per_hour = 5;
        s.mail.smtp_host = Some("127.0.0.1".into());
        s.mail.smtp_port = smtp.port;
        s.mail.smtp_tls = cairn::config::SmtpTls::None;
    })
    .await;
    let res =
        join(&app, &[("name", "Ada"), ("email", "ada@example.edu"), ("url", &server.url("/feeds/rss2.xml"))]).await;
    assert_eq!(res.status(), 200);
    let first = smtp.wait_for(1).await.remove(0);
    let old = link_in(&first, &app.address, "/subscription/");
    assert_eq!(confirm_through_page(&app.client, &link_in(&first, &app.address, "/join/confirm/")).await.status(), 200);

    let form = app.get_html("/subscription").await;
    assert!(form.contains("Lost your private link?") && form.contains("name=\"email\""), "{form}");
    let join_page = app.get_html("/join").await;
    assert!(join_page.contains("<a href=\"/subscription\">Lost your private link?</a>"), "{join_page}");
    let ask = |email: &'static str| {
        let (app, form) = (&app, &form);
        async move {
            let csrf = csrf_in(form);
            app.client
                .post(app.url("/subscription"))
                .form(&[("csrf_token", csrf.as_str()), ("email", email)])
                .send()
                .await
                .unwrap()
        }
    };
    let unknown = ask("nobody@example.edu").await;
    assert_eq!(unknown.status(), 200);
    let unknown = status_of(&unknown.text().await.unwrap()).replace("nobody@example.edu", "ADDRESS");
    let known = ask("Ada@Example.edu").await;
    assert_eq!(known.status(), 200);
    let known = status_of(&known.text().await.unwrap()).replace("ada@example.edu", "ADDRESS");
    assert_eq!(known, unknown, "the same answer whether or not the address is known");

    let mails = smtp.wait_for(2).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    let mail = &mails[1];
    assert!(mail.contains("To: ada@example.edu") && mail.contains("Subject: Your private link on"), "{mail}");
    let text = mail.replace("=\r\n", "").replace("=\n", "");
    assert!(text.contains("no longer works"), "the mail says the old link stops: {text}");
    let new = link_in(mail, &app.address, "/subscription/");
    assert_ne!(new, old);
    assert_eq!(app.client.get(&new).send().await.unwrap().status(), 200, "the new private link opens");
    assert_eq!(app.client.get(&old).send().await.unwrap().status(), 404, "the old one is replaced");

    // The address had its two mails today: a third ask is answered alike and sends nothing.
    let again = ask("ada@example.edu").await;
    assert_eq!(again.status(), 200);
    let queued: Vec<String> = {
        use cairn::db::schema::outbox::dsl;
        use diesel::prelude::*;
        dsl::outbox
            .filter(dsl::kind.eq("private_links"))
            .select(dsl::status)
            .load(&mut app.pool.get().unwrap())
            .unwrap()
    };
    assert_eq!(queued, ["sent"], "one private links mail in all");
    // The join and four asks: the client's fifth request this hour was its last.
    let res = ask("ada@example.edu").await;
    assert_eq!(res.status(), 200);
    let res = ask("ada@example.edu").await;
    assert_eq!(res.status(), 429);
    assert!(retry_after(&res) > 0);
}

/// The private page's posts list says, for each task a post counts for, whether its badge is
/// not awarded yet, awarded or revoked, and links the badge.
#[tokio::test]
async fn the_private_page_lists_each_post_as_not_awarded_yet_awarded_or_revoked() {
    let server = FeedServer::start().await;
    serve_blog(&server);
    let app = app_for(&server, |_| {}).await;
    let res =
        join(&app, &[("name", "Ada"), ("email", "ada@example.edu"), ("url", &server.url("/feeds/rss2.xml"))]).await;
    assert_eq!(res.status(), 200);
    let mail = last_eml(&app);
    let private = link_in(&mail, &app.address, "/subscription/");
    assert_eq!(confirm_through_page(&app.client, &link_in(&mail, &app.address, "/join/confirm/")).await.status(), 200);
    assert_eq!(pass(&app).await.added, 3);
    // The list, and the item of the post "Data & me" (tagged #el30-data and #el30-cloud).
    let posts = |page: &str| {
        let list = page.split("<ul class=\"my-posts\">").nth(1).expect("the posts list").to_string();
        let item = list.split("\n<li>").find(|i| i.contains(">Data &#38; me<")).expect("the post").to_string();
        (list, item)
    };
    let page = app.client.get(&private).send().await.unwrap().text().await.unwrap();
    let (list, item) = posts(&page);
    assert_eq!(item.matches("not awarded yet").count(), 2, "tied to two tasks, neither awarded: {item}");
    assert!(list.contains("Not counted for a task"), "a post with no task's hashtag: {list}");

    app.login().await;
    let links = cairn::db::links::recent(&mut app.pool.get().unwrap(), None, 10).unwrap();
    let post = links.iter().find(|v| v.link.title == "Data & me").unwrap().link.id;
    let data = crate::badges::award_post(&app, post, "el30-data").await;
    let cloud = crate::badges::award_post(&app, post, "el30-cloud").await;
    let cloud_id = cloud.rsplit('/').next().unwrap();
    let res = app.post_form(&format!("/admin/awards/{cloud_id}/revoke"), &[("reason", "Another task's post.")]).await;
    assert_eq!(res.status(), 303);

    let page = app.client.get(&private).send().await.unwrap().text().await.unwrap();
    let (_, item) = posts(&page);
    let data_path = data.trim_start_matches(&app.address);
    let cloud_path = cloud.trim_start_matches(&app.address);
    assert!(item.contains(&format!("<a href=\"{data_path}\">badge awarded</a>")), "{item}");
    assert!(item.contains(&format!("<a href=\"{cloud_path}\">badge revoked</a>")), "{item}");
    assert!(!item.contains("not awarded yet"), "{item}");
}
