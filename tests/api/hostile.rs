//! Hostile documents against the real server: entity bombs, pages of `<`, script bases,
//! markup hidden in text-only elements and active SVG. Each hostile file is made here, and
//! every request has a bounded time to answer.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;

use crate::badges::{app_with_post, award_post};
use crate::feedserver::{FeedServer, Reply, fixture};
use crate::harvest::{add_feed, app_for, feed, links_of, pass};
use crate::helpers::{TestApp, cairn_cmd, csrf_in};

/// The harvester's default body cap.
const BODY_CAP: usize = 5 * 1024 * 1024;
/// What a hostile document may cost a request, with room for a loaded debug build.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// An RSS feed whose internal DTD declares an entity, referenced until the file is `size`
/// bytes long ("billion laughs" without the nesting, which needs no parser bug to hurt).
fn entity_bomb(size: usize) -> Vec<u8> {
    let head = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE rss [<!ENTITY lol \"{}\">]>\n<rss version=\"2.0\"><channel><title>Bomb</title>\
         <item><title>Boom #el30-data</title><link>/boom</link><description>",
        "lol".repeat(30)
    );
    let tail = "</description></item></channel></rss>";
    let refs = (size - head.len() - tail.len()) / 5;
    format!("{head}{}{tail}", "&lol;".repeat(refs)).into_bytes()
}

/// An HTML page of `size` bytes that is almost entirely `<`.
fn page_of_lt(size: usize) -> Vec<u8> {
    let mut page = b"<html>".to_vec();
    page.resize(size, b'<');
    page
}

/// Runs a command, killing it if it outlives `limit`; returns its output and how long it took.
fn run_bounded(mut cmd: Command, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start cairn");
    loop {
        match child.try_wait().expect("wait") {
            Some(_) => return (child.wait_with_output().expect("output"), started.elapsed()),
            None if started.elapsed() > limit => {
                let _ = child.kill();
                panic!("the command was still running after {limit:?}");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

async fn feed_check(server: &FeedServer, path: &str) -> (serde_json::Value, bool, Duration) {
    let (origin, url) = (server.origin(), server.url(path));
    let dir = tempfile::tempdir().unwrap();
    let (out, took) = tokio::task::spawn_blocking(move || {
        let mut c = cairn_cmd();
        c.current_dir(dir.path()).env("CAIRN_ALLOW_ORIGINS", origin).args(["feed", "check", "--json", &url]);
        run_bounded(c, ANSWER_WITHIN)
    })
    .await
    .unwrap();
    let doc =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (doc, out.status.success(), took)
}

/// Posts the Join form; the client gives up after `ANSWER_WITHIN`.
async fn join(app: &TestApp, url: &str) -> (u16, String, Duration) {
    let csrf = csrf_in(&app.get_html("/join").await);
    let started = Instant::now();
    let res = app
        .client
        .post(app.url("/join"))
        .timeout(ANSWER_WITHIN)
        .form(&[("csrf_token", csrf.as_str()), ("name", "Mallory"), ("email", "mallory@example.org"), ("url", url)])
        .send()
        .await
        .expect("the join page answers in time");
    let status = res.status().as_u16();
    (status, res.text().await.unwrap(), started.elapsed())
}

#[tokio::test]
async fn an_entity_bomb_is_refused_by_the_harvester_and_the_other_feeds_go_on() {
    let server = FeedServer::start().await;
    server.set("/bomb.xml", Reply::xml(entity_bomb(BODY_CAP - 1024)));
    server.set("/good.xml", Reply::xml(fixture("rss2.xml")));
    let app = app_for(&server, |_| {}).await;
    let bomb = add_feed(&app, &server.url("/bomb.xml"), "Mallory");
    let good = add_feed(&app, &server.url("/good.xml"), "Ada");
    let summary = tokio::time::timeout(ANSWER_WITHIN, pass(&app)).await.expect("the pass ends in time");
    assert_eq!((summary.feeds, summary.failed, summary.added), (2, 1, 3), "{summary:?}");
    let error = feed(&app, bomb.id).last_error.unwrap_or_default();
    assert!(error.contains("declares a DTD"), "{error}");
    assert!(links_of(&app, bomb.id).is_empty());
    assert_eq!(links_of(&app, good.id).len(), 3, "the other feed is harvested");
    assert_eq!(feed(&app, good.id).last_error, None);
}

#[tokio::test]
async fn an_entity_bomb_is_refused_by_join_and_by_feed_check() {
    let server = FeedServer::start().await;
    server.set("/bomb.xml", Reply::xml(entity_bomb(BODY_CAP - 1024)));
    // The same bomb behind a blog page that advertises it.
    server.set(
        "/blog",
        Reply::typed(
            r#"<html><head><link rel="alternate" type="application/rss+xml" href="/bomb.xml"></head></html>"#,
            "text/html",
        ),
    );
    let app = app_for(&server, |_| {}).await;
    for path in ["/bomb.xml", "/blog"] {
        let (status, body, took) = join(&app, &server.url(path)).await;
        assert_eq!(status, 422, "{body}");
        assert!(body.contains("declares a DTD"), "{body}");
        assert!(took < ANSWER_WITHIN, "{took:?}");
    }
    assert_eq!(cairn::db::feeds::list_feeds(&mut app.pool.get().unwrap()).unwrap().len(), 0);

    let (doc, ok, took) = feed_check(&server, "/bomb.xml").await;
    assert!(!ok, "feed check fails");
    assert!(doc["error"].as_str().unwrap().contains("declares a DTD"), "{doc}");
    assert!(took < ANSWER_WITHIN, "{took:?}");
}

#[tokio::test]
async fn a_five_megabyte_page_of_lt_is_scanned_quickly_by_join_and_feed_check() {
    let server = FeedServer::start().await;
    server.set("/lt.html", Reply::typed(page_of_lt(BODY_CAP - 1), "text/html"));
    let app = app_for(&server, |_| {}).await;
    // Pages go on being served while hostile pages are read.
    let attackers: Vec<_> = (0..3)
        .map(|_| {
            // Each attacker has its own session (and so its own CSRF token).
            let (app_url, client, page) = (app.url("/join"), crate::helpers::client(), server.url("/lt.html"));
            let csrf_page = app.url("/join");
            tokio::spawn(async move {
                let page_html = client.get(&csrf_page).send().await.unwrap().text().await.unwrap();
                let csrf = csrf_in(&page_html);
                client
                    .post(app_url)
                    .timeout(ANSWER_WITHIN)
                    .form(&[("csrf_token", csrf.as_str()), ("name", "M"), ("email", "m@example.org"), ("url", &page)])
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    let started = Instant::now();
    let health = app.client.get(app.url("/health")).timeout(Duration::from_secs(5)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    for a in attackers {
        let status = a.await.unwrap().expect("the join page answers in time");
        // 422 (no feed there) or, when the pool is full, 503 (try again).
        assert!(status == 422 || status == 503, "{status}");
    }
    let (status, body, took) = join(&app, &server.url("/lt.html")).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("no feed found"), "{body}");
    assert!(took < ANSWER_WITHIN, "{took:?}");

    let (doc, ok, took) = feed_check(&server, "/lt.html").await;
    assert!(!ok);
    assert!(doc["error"].as_str().unwrap().contains("no feed found"), "{doc}");
    assert!(took < ANSWER_WITHIN, "{took:?}");
}

fn mention_statuses(app: &TestApp) -> Vec<(String, String)> {
    use cairn::db::schema::mentions::dsl;
    dsl::mentions.select((dsl::source, dsl::status)).load(&mut app.pool.get().unwrap()).unwrap()
}

#[tokio::test]
async fn hostile_webmention_sources_are_rejected_quickly_and_text_is_not_markup() {
    let (app, server, post) = app_with_post().await;
    let target = award_post(&app, post, "el30-data").await;
    server.set("/lt.html", Reply::typed(page_of_lt(BODY_CAP - 1), "text/html"));
    // Links to the target only inside elements whose content is text.
    let quoted = format!(r#"<a href="{target}">badge</a>"#);
    server.set(
        "/quoted.html",
        Reply::typed(
            format!(
                "<html><head><title>{quoted}</title><style>{quoted}</style></head><body><textarea>{quoted}</textarea>\
                 <script>var s = '{quoted}';</script></body></html>"
            ),
            "text/html",
        ),
    );
    server.set("/real.html", Reply::typed(format!("<title>t</title><p>{quoted}</p>"), "text/html"));
    let visitor = crate::helpers::client();
    for path in ["/lt.html", "/quoted.html", "/real.html"] {
        let res = visitor
            .post(app.url("/webmention"))
            .form(&[("source", server.url(path)), ("target", target.clone())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202, "{path}");
    }
    let deadline = Instant::now() + ANSWER_WITHIN * 2;
    let statuses = loop {
        tokio::time::timeout(ANSWER_WITHIN, app.notifier.verify_mentions())
            .await
            .expect("verification ends in time")
            .unwrap();
        let statuses = mention_statuses(&app);
        if statuses.iter().all(|(_, s)| s != "pending") {
            break statuses;
        }
        assert!(Instant::now() < deadline, "still pending: {statuses:?}");
    };
    let status_of = |path: &str| statuses.iter().find(|(s, _)| *s == server.url(path)).map(|(_, st)| st.as_str());
    assert_eq!(status_of("/lt.html"), Some("rejected"));
    assert_eq!(status_of("/quoted.html"), Some("rejected"), "a link inside text-only elements is no link");
    assert_ne!(status_of("/real.html"), Some("rejected"), "a real link is found");
}

#[tokio::test]
async fn webmention_discovery_ignores_markup_inside_title_and_textarea() {
    let server = FeedServer::start().await;
    let quoted = r#"<link rel="webmention" href="/from-title"><a rel="webmention" href="/from-text">x</a>"#;
    server.set(
        "/post",
        Reply::typed(
            format!(
                "<html><head><title>{quoted}</title></head><body><textarea>{quoted}</textarea>\
                 <a rel=\"webmention\" href=\"/real?x=1\">endpoint</a></body></html>"
            ),
            "text/html",
        ),
    );
    server.set("/lt", Reply::typed(page_of_lt(BODY_CAP - 1), "text/html"));
    let app = app_for(&server, |_| {}).await;
    let fetcher = app.harvester.fetcher();
    let found = cairn::webmention::discover(fetcher, &server.url("/post")).await.unwrap();
    assert_eq!(found.map(|u| u.to_string()), Some(server.url("/real?x=1")));
    let started = Instant::now();
    let found = tokio::time::timeout(ANSWER_WITHIN, cairn::webmention::discover(fetcher, &server.url("/lt")))
        .await
        .expect("discovery ends in time")
        .unwrap();
    assert_eq!(found, None);
    assert!(started.elapsed() < ANSWER_WITHIN);
}

/// A feed whose `xml:base` is a script address, with relative links in a post.
fn script_base_feed() -> String {
    r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="javascript://x/%0aalert(1)//">
  <title>Mallory</title><link href="site/"/><id>urn:m</id><updated>2026-01-01T00:00:00Z</updated>
  <entry><id>urn:m:1</id><title>Click me #el30-data</title><updated>2026-01-01T00:00:00Z</updated>
    <link href="posts/1"/>
    <summary type="html">&lt;p&gt;Read &lt;a href="relative/page"&gt;this&lt;/a&gt; and
      &lt;a href="JaVaScRiPt:alert(2)"&gt;that&lt;/a&gt; #el30-data&lt;/p&gt;</summary>
  </entry>
</feed>"#
        .to_string()
}

#[tokio::test]
async fn a_script_base_never_puts_a_script_link_in_summaries_or_course_feeds() {
    let server = FeedServer::start().await;
    server.set("/m.xml", Reply::typed(script_base_feed(), "application/atom+xml"));
    let app = app_for(&server, |_| {}).await;
    let f = add_feed(&app, &server.url("/m.xml"), "Mallory");
    assert_eq!(pass(&app).await.added, 1);
    let links = links_of(&app, f.id);
    let summary = links[0].link.summary_html.to_ascii_lowercase();
    assert!(!summary.contains("javascript"), "{summary}");
    assert!(summary.contains(&format!("href=\"{}\"", server.url("/relative/page"))), "{summary}");
    for ext in ["rss", "atom", "json"] {
        let body = app.get_html(&format!("/courses/{}/feed.{ext}", cairn::demo::DEMO_SLUG)).await;
        assert!(body.contains("Click me"), "{ext}: the post is published");
        assert!(!body.to_ascii_lowercase().contains("javascript"), "{ext}: {body}");
    }
    app.login().await;
    let reader = app.get_html("/admin/reader").await;
    assert!(reader.contains("Click me"));
    assert!(!reader.to_ascii_lowercase().contains("javascript:"), "{reader}");
}

#[tokio::test]
async fn summaries_stored_with_a_script_link_by_earlier_versions_are_sanitised_again() {
    use diesel::prelude::*;
    let server = FeedServer::start().await;
    server.set("/m.xml", Reply::typed(script_base_feed(), "application/atom+xml"));
    let app = app_for(&server, |_| {}).await;
    let f = add_feed(&app, &server.url("/m.xml"), "Mallory");
    assert_eq!(pass(&app).await.added, 1);
    let id = links_of(&app, f.id)[0].link.id;
    // What an earlier version could have stored.
    let legacy = r#"<p>kept</p><a href="javascript://x/%0aalert(1)//relative/page">Click me</a>"#;
    let mut conn = app.pool.get().unwrap();
    {
        use cairn::db::schema::links::dsl;
        diesel::update(dsl::links.find(id)).set(dsl::summary_html.eq(legacy)).execute(&mut conn).unwrap();
    }
    assert_eq!(cairn::harvest::resanitize_unsafe_summaries(&mut conn).unwrap(), 1);
    let summary = links_of(&app, f.id)[0].link.summary_html.clone();
    assert!(summary.contains("kept") && summary.contains("Click me"), "{summary}");
    assert!(!summary.to_ascii_lowercase().contains("javascript"), "{summary}");
    // Clean summaries are left alone.
    assert_eq!(cairn::harvest::resanitize_unsafe_summaries(&mut conn).unwrap(), 0);
}

#[tokio::test]
async fn a_script_link_from_a_feed_never_reaches_a_page_in_a_real_browser() {
    let server = FeedServer::start().await;
    server.set("/m.xml", Reply::typed(script_base_feed(), "application/atom+xml"));
    let app = app_for(&server, |_| {}).await;
    add_feed(&app, &server.url("/m.xml"), "Mallory");
    assert_eq!(pass(&app).await.added, 1);
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    let hrefs = "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href);";
    let result = async {
        crate::browser::sign_in(&browser, &app.url("/login")).await?;
        let mut seen = Vec::new();
        for path in ["/admin/reader".to_string(), format!("/courses/{}/feed.atom", cairn::demo::DEMO_SLUG)] {
            // A page opened right after signing in can still be answered for the session
            // before it (bounded poll; the assertion below says what was shown instead).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
            let source = loop {
                browser.goto(&app.url(&path)).await?;
                let source = browser.source().await?;
                if source.contains("Click me") || std::time::Instant::now() > deadline {
                    break source;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            };
            let title = source.split("<title>").nth(1).and_then(|t| t.split("</title>").next()).unwrap_or("");
            assert!(source.contains("Click me"), "{path}: the post is shown; the page was '{title}'");
            let links: Vec<String> = serde_json::from_value(browser.execute(hrefs, vec![]).await?).unwrap_or_default();
            seen.push((path, source, links));
        }
        Ok::<_, fantoccini::error::CmdError>(seen)
    }
    .await;
    let _ = browser.close().await;
    for (path, source, links) in result.expect("browser flow") {
        assert!(
            links.iter().all(|l| l.starts_with("http://") || l.starts_with("https://") || l.starts_with("mailto:")),
            "{path}: {links:?}"
        );
        assert!(!source.to_ascii_lowercase().contains("javascript:"), "{path}");
    }
}

#[tokio::test]
async fn svg_artwork_is_stored_and_served_without_anything_active() {
    let app = crate::helpers::spawn_app().await;
    app.login().await;
    let course = app.create_course("Hostile Art").await;
    let module = app.create_module(course, "Week").await;
    let png = base64_png();
    let attacks = [
        ("script", r#"<script>alert(1)</script><circle r="3"/>"#.to_string()),
        ("style", r#"<style>circle { fill: url(https://evil.example/p.svg#g) } @import url(https://evil.example/s.css);</style><circle r="3"/>"#.to_string()),
        ("url", r#"<circle r="3" style="fill: url('https://evil.example/p.svg#g')" filter="url(https://evil.example/f.svg#f)"/>"#.to_string()),
        ("set", r#"<a href="/ok"><set attributeName="href" to="javascript:alert(1)"/><circle r="3"/></a>"#.to_string()),
        ("animate", r#"<a xlink:href="/ok"><animate attributeName="xlink:href" values="javascript:alert(1)"/><circle r="3"/></a>"#.to_string()),
        ("image", r#"<image href="https://evil.example/track.png" width="9" height="9"/><image xlink:href="file:///etc/passwd" width="9" height="9"/><circle r="3"/>"#.to_string()),
        ("handler", r#"<circle r="3" onclick="alert(1)"/><foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>"#.to_string()),
        ("raster", format!(r#"<image width="9" height="9" href="data:image/png;base64,{png}"/><circle r="3"/>"#)),
    ];
    for (i, (name, inner)) in attacks.iter().enumerate() {
        let svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 10 10">{inner}</svg>"#
        );
        let tag = format!("#art-{name}");
        let res = app
            .post_multipart(
                &format!("/admin/modules/{module}/tasks"),
                &[("title", &format!("Art {i}")), ("hashtag", &tag), ("description", ""), ("criteria", "Draw")],
                "badge",
                Some((svg.into_bytes(), "badge.svg")),
            )
            .await;
        assert_eq!(res.status(), 303, "{name}: {}", res.text().await.unwrap());
        let res = app.get(&format!("/tasks/art-{name}/badge")).await;
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("image/svg+xml"));
        let served = res.text().await.unwrap();
        for gone in [
            "<script",
            "alert",
            "<style",
            "evil.example",
            "<set",
            "<animate",
            "javascript",
            "passwd",
            "onclick",
            "foreignObject",
            "@import",
        ] {
            assert!(!served.contains(gone), "{name}: {gone} survived in {served}");
        }
        assert!(!served.contains("url(h") && !served.contains("url('"), "{name}: {served}");
        assert!(served.contains("<path"), "{name}: the drawing survives: {served}");
        if *name == "raster" {
            assert!(served.contains("data:image/png;base64,"), "an embedded PNG is kept");
        }
    }
    // A file that is not a readable SVG is refused next to its field, with the form kept.
    let bomb = r#"<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><svg xmlns="http://www.w3.org/2000/svg">&b;</svg>"#;
    for (bad, why) in
        [(bomb, "declares a DTD"), (r#"<svg xmlns="http://www.w3.org/2000/svg"><g></svg>"#, "not well-formed")]
    {
        let res = app
            .post_multipart(
                &format!("/admin/modules/{module}/tasks"),
                &[("title", "Broken art"), ("hashtag", "#art-broken"), ("description", ""), ("criteria", "Draw")],
                "badge",
                Some((bad.as_bytes().to_vec(), "badge.svg")),
            )
            .await;
        assert_eq!(res.status(), 422);
        let page = res.text().await.unwrap();
        assert!(page.contains(why) && page.contains("Broken art"), "{page}");
    }
}

fn base64_png() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(crate::helpers::png(32, 32))
}
