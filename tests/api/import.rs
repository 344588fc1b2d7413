//! Roster import by CSV (`POST /admin/feeds/csv`) against real blogs, and a learner claiming
//! the feed an instructor added by joining with the same blog: the confirmation at a real SMTP
//! listener, the claim on the roster, the awards kept; a claim against a learner with another
//! address on file mails that address; a removed feed is joined anew.

use crate::feedserver::{FeedServer, Reply, fixture};
use crate::harvest::{app_for, pass};
use crate::helpers::{TestApp, csrf_in};
use crate::join::confirm_through_page;
use crate::smtp::SmtpSink;

/// Ada's blog page (its feed is `/feeds/rss2.xml`), Grace's Atom feed, Kim's feed.
fn serve_blogs(server: &FeedServer) {
    server.set("/", Reply::typed(fixture("page.html"), "text/html; charset=utf-8"));
    server.set("/feeds/rss2.xml", Reply::xml(fixture("rss2.xml")));
    server.set("/grace.xml", Reply::typed(fixture("atom10.xml"), "application/atom+xml"));
    let kim =
        String::from_utf8(fixture("rss2.xml")).unwrap().replace("/2019/", "/kim/").replace("ada-post", "kim-post");
    server.set("/kim.xml", Reply::xml(kim));
}

/// An app reading `server`'s blogs and sending mail to `smtp`, with a signed-in instructor.
async fn app_with_mail(server: &FeedServer, smtp: &SmtpSink, also_allow: Option<String>) -> TestApp {
    let port = smtp.port;
    let app = app_for(server, |s| {
        s.allow_origins.extend(also_allow);
        s.mail.smtp_host = Some("127.0.0.1".into());
        s.mail.smtp_port = port;
        s.mail.smtp_tls = cairn::config::SmtpTls::None;
    })
    .await;
    app.login().await;
    app
}

async fn import(app: &TestApp, csv: &str) -> reqwest::Response {
    app.post_multipart("/admin/feeds/csv", &[], "csv", Some((csv.as_bytes().to_vec(), "roster.csv"))).await
}

async fn join(app: &TestApp, name: &str, email: &str, url: &str) -> reqwest::Response {
    let csrf = csrf_in(&app.get_html("/join").await);
    let form = [("csrf_token", csrf.as_str()), ("name", name), ("email", email), ("url", url)];
    app.client.post(app.url("/join")).form(&form).send().await.unwrap()
}

/// The first `{base}{prefix}…` link in a mail, with quoted-printable soft breaks undone.
fn link_in(mail: &str, base: &str, prefix: &str) -> String {
    let text = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let start = text.find(&format!("{base}{prefix}")).unwrap_or_else(|| panic!("no {prefix} link in {text}"));
    text[start..].split_whitespace().next().unwrap().trim_end_matches('.').to_string()
}

/// The feed at `url` and its learner.
fn feed_at(app: &TestApp, url: &str) -> (cairn::db::feeds::Feed, cairn::db::feeds::Author) {
    let mut c = app.pool.get().unwrap();
    let feed = cairn::db::feeds::find_by_url(&mut c, url).unwrap().unwrap_or_else(|| panic!("no feed {url}"));
    let author = cairn::db::feeds::get_author(&mut c, feed.author_id).unwrap();
    (feed, author)
}

/// A port on 127.0.0.1 where nothing listens.
async fn closed_origin() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn a_csv_roster_is_imported_with_each_problem_by_line_next_to_the_form() {
    let server = FeedServer::start().await;
    serve_blogs(&server);
    let smtp = SmtpSink::start().await;
    let closed = closed_origin().await;
    let app = app_with_mail(&server, &smtp, Some(closed.clone())).await;
    let page = app.get_html("/admin/feeds").await;
    assert!(page.contains("action=\"/admin/feeds/csv\"") && page.contains("name=\"csv\""), "the form: {page}");
    // Kim is followed already, imported without an email.
    let res = app.post_form("/admin/feeds", &[("name", "Kim"), ("email", ""), ("url", &server.url("/kim.xml"))]).await;
    assert_eq!(res.status(), 303);

    let csv = format!(
        "name,email,blog\r\n\
         \"Lovelace, Ada\",ada@example.edu,{blog}\r\n\
         Grace Hopper,,{grace}\r\n\
         Bob,not-an-email,{grace}\r\n\
         Uma,uma@example.edu,{closed}/\r\n\
         Ada again,ada@example.edu,{blog}\r\n\
         Kim Present,kim@example.edu,{kim}\r\n",
        blog = server.url("/"),
        grace = server.url("/grace.xml"),
        kim = server.url("/kim.xml"),
    );
    let res = import(&app, &csv).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(
            "Read 6 row(s): added 2 feed(s), 2 already present (1 of their learners had no email and got the \
             file's), 3 row(s) with a problem"
        ),
        "{html}"
    );
    let failed =
        html.split("id=\"import-failed\"").nth(1).expect("the rows with a problem").split("</table>").next().unwrap();
    let row = |line: u64| {
        failed.split(&format!("data-line=\"{line}\"")).nth(1).map(|r| r.split("</tr>").next().unwrap().to_string())
    };
    assert!(row(4).unwrap().contains("is not an email address"), "a bad email, by line: {failed}");
    assert!(row(5).unwrap().contains(&format!("cannot reach {closed}/")), "the unreachable blog: {failed}");
    assert!(row(6).unwrap().contains("the same blog is on an earlier line"), "{failed}");
    assert!(row(2).is_none() && row(3).is_none() && row(7).is_none(), "{failed}");
    // The answer is next to the form, and names the learners still without an email.
    assert!(html.contains("id=\"csv-import\""), "the form again");
    let no_email =
        html.split("id=\"import-no-email\"").nth(1).expect("learners without email").split("</div>").next().unwrap();
    assert!(no_email.contains("Grace Hopper") && !no_email.contains("Kim"), "{no_email}");

    let (ada_feed, ada) = feed_at(&app, &server.url("/feeds/rss2.xml"));
    assert_eq!((ada.name.as_str(), ada.email.as_deref()), ("Lovelace, Ada", Some("ada@example.edu")));
    assert_eq!(ada_feed.status.as_str(), "active");
    assert_eq!(ada_feed.joined_url.as_deref(), Some(server.url("/").as_str()));
    let (_, grace) = feed_at(&app, &server.url("/grace.xml"));
    assert_eq!((grace.name.as_str(), grace.email), ("Grace Hopper", None));
    let (_, kim) = feed_at(&app, &server.url("/kim.xml"));
    assert_eq!((kim.name.as_str(), kim.email.as_deref()), ("Kim", Some("kim@example.edu")), "the email added");
    assert_eq!(pass(&app).await.feeds, 3, "the imported feeds are active at once");

    // Again: nothing added, and the blogs already followed are not fetched again.
    let (page_hits, grace_hits) = (server.hits("/"), server.hits("/grace.xml"));
    let html = import(&app, &csv).await.text().await.unwrap();
    assert!(html.contains("added 0 feed(s), 4 already present"), "{html}");
    assert_eq!((server.hits("/"), server.hits("/grace.xml")), (page_hits, grace_hits));

    // A feed removed since is not followed again behind its learner's back.
    let (kim_feed, _) = feed_at(&app, &server.url("/kim.xml"));
    let res = app.post_form(&format!("/admin/feeds/{}/status", kim_feed.id), &[("status", "removed")]).await;
    assert_eq!(res.status(), 303);
    let html = import(&app, &format!("name,email,blog\nKim,,{}\n", server.url("/kim.xml"))).await.text().await.unwrap();
    assert!(
        html.contains("added 0 feed(s), 0 already present")
            && html.contains("was removed; it is followed again when its learner joins"),
        "{html}"
    );
    assert_eq!(feed_at(&app, &server.url("/kim.xml")).0.status.as_str(), "removed");

    // Whole-file problems: said next to the form.
    let res = app.post_multipart("/admin/feeds/csv", &[], "csv", None).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"e-csv\" role=\"alert\">choose a CSV file"), "{html}");
    let long: String = (0..5001).map(|i| format!("L{i},,b{i}.example\n")).collect();
    let res = import(&app, &long).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("more than 5000 rows"));
    assert!(smtp.messages().is_empty(), "an import mails no one");
}

#[tokio::test]
async fn a_learner_claims_the_feed_the_instructor_imported_and_keeps_posts_and_awards() {
    let server = FeedServer::start().await;
    serve_blogs(&server);
    let smtp = SmtpSink::start().await;
    let app = app_with_mail(&server, &smtp, None).await;
    let csv = format!(
        "name,email,blog\nGrace Hopper,,{}\nAda Lovelace,ada@example.edu,{}\n",
        server.url("/grace.xml"),
        server.url("/")
    );
    assert_eq!(import(&app, &csv).await.status(), 200);
    pass(&app).await;
    let (grace_feed, grace) = feed_at(&app, &server.url("/grace.xml"));
    let grace_posts = crate::harvest::links_of(&app, grace_feed.id).len();
    assert!(grace_posts > 0);

    // Grace joins with her blog: the confirmation goes to the address she gives; meanwhile
    // the feed is read as before and nothing about her changes.
    let res = join(&app, "Grace B. Hopper", "grace@example.edu", &server.url("/grace.xml")).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("We sent a confirmation link to grace@example.edu"));
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("To: grace@example.edu"), "{}", mails[0]);
    let confirm = link_in(&mails[0], &app.address, "/join/confirm/");
    let manage = link_in(&mails[0], &app.address, "/subscription/");
    assert_eq!(app.client.get(&manage).send().await.unwrap().status(), 404, "no private link before confirmation");
    let (feed, author) = feed_at(&app, &server.url("/grace.xml"));
    assert_eq!((feed.status.as_str(), author.email), ("active", None));
    let page = app.get_html(&format!("/admin/learners/{}", grace.id)).await;
    assert!(!page.contains("claimed by the learner"));

    let res = confirm_through_page(&app.client, &confirm).await;
    assert_eq!(res.status(), 200);
    let (feed, author) = feed_at(&app, &server.url("/grace.xml"));
    assert_eq!(author.id, grace.id, "the same learner, with her posts");
    assert_eq!((author.name.as_str(), author.email.as_deref()), ("Grace B. Hopper", Some("grace@example.edu")));
    assert_eq!(crate::harvest::links_of(&app, feed.id).len(), grace_posts);
    assert_eq!(app.client.get(&manage).send().await.unwrap().status(), 200, "her private link works");
    let page = app.get_html(&format!("/admin/learners/{}", grace.id)).await;
    assert!(page.contains("<dd id=\"learner-email\">grace@example.edu</dd>"), "{page}");
    assert!(page.contains("claimed by the learner on"), "the instructor sees the claim: {page}");
    // Claimed: nobody else takes it.
    let res = join(&app, "Eve", "eve@example.edu", &server.url("/grace.xml")).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("already followed for another learner"));

    // Ada was awarded before she claims her feed with the address on file: the award stays.
    let post = cairn::db::links::recent(&mut app.pool.get().unwrap(), None, 100)
        .unwrap()
        .into_iter()
        .find(|v| v.link.title == "Data & me")
        .unwrap()
        .link
        .id;
    let assertion = crate::badges::award_post(&app, post, "el30-data").await;
    let (_, ada) = feed_at(&app, &server.url("/feeds/rss2.xml"));
    let sent = smtp.messages().len();
    let res = join(&app, "Ada King", "ADA@example.edu", &server.url("/")).await;
    assert_eq!(res.status(), 200);
    let mail = smtp
        .wait_for_one("confirming Ada's feed", |m| m.contains("/join/confirm/") && m.contains("To: ada@example.edu"))
        .await;
    assert!(smtp.messages().len() > sent);
    let mail = &mail;
    let res = confirm_through_page(&app.client, &link_in(mail, &app.address, "/join/confirm/")).await;
    assert_eq!(res.status(), 200);
    let (_, after) = feed_at(&app, &server.url("/feeds/rss2.xml"));
    assert_eq!((after.id, after.name.as_str()), (ada.id, "Ada King"));
    let page = app.get_html(&format!("/admin/learners/{}", ada.id)).await;
    assert!(page.contains("claimed by the learner on") && page.contains(">valid<"), "the award kept: {page}");
    assert_eq!(app.client.get(&assertion).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_claim_against_a_learner_with_another_address_on_file_mails_that_address_and_takes_nothing() {
    let server = FeedServer::start().await;
    serve_blogs(&server);
    let smtp = SmtpSink::start().await;
    let app = app_with_mail(&server, &smtp, None).await;
    let csv = format!(
        "name,email,blog\nAda Lovelace,ada@example.edu,{}\nGrace Hopper,,{}\n",
        server.url("/"),
        server.url("/grace.xml")
    );
    assert_eq!(import(&app, &csv).await.status(), 200);
    pass(&app).await;
    let (_, ada) = feed_at(&app, &server.url("/feeds/rss2.xml"));

    let res = join(&app, "Eve Hostile", "eve@example.edu", &server.url("/")).await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains("sent the confirmation link to that address, not to eve@example.edu"), "{body}");
    assert!(!body.contains("ada@example.edu"), "the address on file is not shown");
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("To: ada@example.edu") && !mails[0].contains("eve@"), "{}", mails[0]);
    assert!(!mails[0].contains("Eve Hostile"), "nothing typed reaches Ada's mailbox");
    let (feed, author) = feed_at(&app, &server.url("/feeds/rss2.xml"));
    assert_eq!(
        (feed.status.as_str(), author.name.as_str(), author.email.as_deref()),
        ("active", "Ada Lovelace", Some("ada@example.edu"))
    );

    // Ada confirms from her mailbox: hers, under her own name and address.
    let res = confirm_through_page(&app.client, &link_in(&mails[0], &app.address, "/join/confirm/")).await;
    assert_eq!(res.status(), 200);
    let (_, author) = feed_at(&app, &server.url("/feeds/rss2.xml"));
    assert_eq!(
        (author.id, author.name.as_str(), author.email.as_deref()),
        (ada.id, "Ada Lovelace", Some("ada@example.edu"))
    );

    // Grace has no address on file, but the one given is another learner's: refused, by field.
    let res = join(&app, "Grace", "ada@example.edu", &server.url("/grace.xml")).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("is already the address of another learner"));
    assert_eq!(smtp.messages().len(), 1, "no mail for a refused claim");

    // Eve claims Grace's blog with her own address; the instructor gives Grace her address
    // before Eve confirms: Eve's link no longer does anything.
    let res = join(&app, "Eve Hostile", "eve@example.edu", &server.url("/grace.xml")).await;
    assert_eq!(res.status(), 200);
    let mails = smtp.wait_for(2).await;
    assert!(mails[1].contains("To: eve@example.edu"), "{}", mails[1]);
    let (_, grace) = feed_at(&app, &server.url("/grace.xml"));
    let res = app.post_form(&format!("/admin/learners/{}/email", grace.id), &[("email", "grace@example.edu")]).await;
    assert_eq!(res.status(), 303);
    let res = confirm_through_page(&app.client, &link_in(&mails[1], &app.address, "/join/confirm/")).await;
    assert_eq!(res.status(), 404, "the link's page already says it no longer works");
    let (_, after) = feed_at(&app, &server.url("/grace.xml"));
    assert_eq!((after.name.as_str(), after.email.as_deref()), ("Grace Hopper", Some("grace@example.edu")));
    let page = app.get_html(&format!("/admin/learners/{}", grace.id)).await;
    assert!(!page.contains("claimed by the learner"), "{page}");
}

#[tokio::test]
async fn a_removed_feed_is_free_to_join_again() {
    let server = FeedServer::start().await;
    serve_blogs(&server);
    let smtp = SmtpSink::start().await;
    let app = app_with_mail(&server, &smtp, None).await;
    // Removed by the instructor.
    let res = app.post_form("/admin/feeds", &[("name", "Kim"), ("email", ""), ("url", &server.url("/kim.xml"))]).await;
    assert_eq!(res.status(), 303);
    pass(&app).await;
    let (feed, kim) = feed_at(&app, &server.url("/kim.xml"));
    let res = app.post_form(&format!("/admin/feeds/{}/status", feed.id), &[("status", "removed")]).await;
    assert_eq!(res.status(), 303);
    let res = join(&app, "Zed", "zed@example.edu", &server.url("/kim.xml")).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let mails = smtp.wait_for(1).await;
    assert!(mails[0].contains("To: zed@example.edu"));
    assert_eq!(
        confirm_through_page(&app.client, &link_in(&mails[0], &app.address, "/join/confirm/")).await.status(),
        200
    );
    let (feed, zed) = feed_at(&app, &server.url("/kim.xml"));
    assert_eq!((feed.status.as_str(), zed.email.as_deref()), ("active", Some("zed@example.edu")));
    assert_ne!(zed.id, kim.id, "a new subscription, not a claim of Kim's");

    // Removed by its learner from the private link.
    let manage = link_in(&mails[0], &app.address, "/subscription/");
    let csrf = csrf_in(&app.client.get(&manage).send().await.unwrap().text().await.unwrap());
    let res = app.client.post(format!("{manage}/remove")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = join(&app, "Yan", "yan@example.edu", &server.url("/kim.xml")).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let mails = smtp.wait_for(2).await;
    assert!(mails[1].contains("To: yan@example.edu"));
    assert_eq!(
        confirm_through_page(&app.client, &link_in(&mails[1], &app.address, "/join/confirm/")).await.status(),
        200
    );
    let (feed, yan) = feed_at(&app, &server.url("/kim.xml"));
    assert_eq!((feed.status.as_str(), yan.name.as_str()), ("active", "Yan"));

    // Yan is forgotten: the feed still holds Kim's earlier posts, so it goes back to Kim,
    // removed, and anyone joins with it anew.
    let res = app.post_form(&format!("/admin/learners/{}/forget", yan.id), &[]).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let (feed, back) = feed_at(&app, &server.url("/kim.xml"));
    assert_eq!((feed.status.as_str(), back.id), ("removed", kim.id));
    assert!(!crate::harvest::links_of(&app, feed.id).is_empty(), "Kim's posts kept");
    let res = join(&app, "Xia", "xia@example.edu", &server.url("/kim.xml")).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let mails = smtp.wait_for(3).await;
    assert!(mails[2].contains("To: xia@example.edu"));
}

/// In Chromium: the instructor imports a roster file from the Feeds page and reads what it did
/// next to the form; a learner of it joins with her blog, confirms from her mail, and her page
/// shows her address and the claim.
#[tokio::test]
async fn csv_import_and_a_claim_in_a_real_browser() {
    use fantoccini::Locator;
    use std::time::Duration;
    let server = FeedServer::start().await;
    serve_blogs(&server);
    let smtp = SmtpSink::start().await;
    let app = app_with_mail(&server, &smtp, None).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("roster.csv");
    let csv = format!(
        "name,email,blog\n\"Hopper, Grace\",,{}\nBob,bob@,{}\n",
        server.url("/grace.xml"),
        server.url("/kim.xml")
    );
    std::fs::write(&file, csv).unwrap();
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    let wait = Duration::from_secs(20);
    let result = async {
        crate::browser::sign_in(&browser, &app.url("/login")).await?;
        browser.goto(&app.url("/admin/feeds")).await?;
        browser.find(Locator::Css("#f-csv")).await?.send_keys(&file.display().to_string()).await?;
        browser.find(Locator::Css("#csv-import button[type=submit]")).await?.click().await?;
        let summary = browser.wait().at_most(wait).for_element(Locator::Id("import-summary")).await?.text().await?;
        let failed = browser.find(Locator::Css("#import-failed tr[data-line='3']")).await?.text().await?;
        let no_email = browser.find(Locator::Id("import-no-email")).await?.text().await?;
        // The learner joins with her blog.
        browser.goto(&app.url("/join")).await?;
        browser.find(Locator::Css("#f-name")).await?.send_keys("Grace Hopper").await?;
        browser.find(Locator::Css("#f-email")).await?.send_keys("grace@example.edu").await?;
        browser.find(Locator::Css("#f-url")).await?.send_keys(&server.url("/grace.xml")).await?;
        browser.find(Locator::Css("#join-form button[type=submit]")).await?.click().await?;
        browser.wait().at_most(wait).for_element(Locator::XPath("//h1[text()='Check your email']")).await?;
        Ok::<_, fantoccini::error::CmdError>((summary, failed, no_email))
    }
    .await;
    let (summary, failed, no_email) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = browser.close().await;
            panic!("browser flow: {e}");
        }
    };
    assert!(summary.contains("Read 2 row(s): added 1 feed(s)"), "{summary}");
    assert!(failed.contains("3") && failed.contains("not an email address"), "{failed}");
    assert!(no_email.contains("Hopper, Grace"), "{no_email}");
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    let confirm = link_in(&mails[0], &app.address, "/join/confirm/");
    let (_, grace) = feed_at(&app, &server.url("/grace.xml"));
    let result = async {
        browser.goto(&confirm).await?;
        browser.find(Locator::Css("main form button[type=submit]")).await?.click().await?;
        browser.wait().at_most(wait).for_element(Locator::XPath("//h1[text()='You are subscribed']")).await?;
        browser.goto(&app.url(&format!("/admin/learners/{}", grace.id))).await?;
        let email = browser.find(Locator::Id("learner-email")).await?.text().await?;
        let claimed = browser.find(Locator::Css(".claimed")).await?.text().await?;
        Ok::<_, fantoccini::error::CmdError>((email, claimed))
    }
    .await;
    let _ = browser.close().await;
    let (email, claimed) = result.expect("browser flow");
    assert_eq!(email, "grace@example.edu");
    assert!(claimed.starts_with("claimed by the learner on"), "{claimed}");
}

#[tokio::test]
async fn two_hundred_rows_are_found_eight_blogs_at_a_time() {
    let server = FeedServer::start().await;
    let feed = fixture("rss2.xml");
    for i in 0..200 {
        let then = Box::new(Reply::xml(feed.clone()));
        server.set(&format!("/b{i}.xml"), Reply::Delayed { wait: std::time::Duration::from_millis(150), then });
    }
    let smtp = SmtpSink::start().await;
    let app = app_with_mail(&server, &smtp, None).await;
    let mut csv = String::from("email,blog,name\n");
    for i in 0..200 {
        csv.push_str(&format!("learner{i}@example.edu,{},Learner {i}\n", server.url(&format!("/b{i}.xml"))));
    }
    let res = import(&app, &csv).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Read 200 row(s): added 200 feed(s), 0 already present, 0 row(s) with a problem"), "{html}");
    let in_flight = server.max_in_flight();
    assert!((2..=8).contains(&in_flight), "blogs are fetched at once, at most eight: {in_flight}");
    let (_, learner) = feed_at(&app, &server.url("/b199.xml"));
    assert_eq!((learner.name.as_str(), learner.email.as_deref()), ("Learner 199", Some("learner199@example.edu")));
}

#[tokio::test]
async fn a_slow_blog_is_cut_at_its_bound_and_the_rest_when_the_import_runs_out_of_time() {
    use cairn::app::import::{self, Limits, Row};
    use std::time::Duration;
    let server = FeedServer::start().await;
    let slow = Reply::Delayed { wait: Duration::from_secs(20), then: Box::new(Reply::xml(fixture("rss2.xml"))) };
    for i in 0..3 {
        server.set(&format!("/slow{i}.xml"), slow.clone());
    }
    let smtp = SmtpSink::start().await;
    let app = app_with_mail(&server, &smtp, None).await;
    let rows: Vec<Row> = (0..3)
        .map(|i| Row {
            line: i + 2,
            name: format!("Slow {i}"),
            email: String::new(),
            blog: server.url(&format!("/slow{i}.xml")),
        })
        .collect();
    let limits = Limits { concurrency: 1, per_row: Duration::from_secs(1), total: Duration::from_millis(1500) };
    let running = import::Running::default();
    let now = cairn::clock::system_now();
    let started = std::time::Instant::now();
    let (done, other) = tokio::join!(
        import::import_csv(&running, &app.pool, &app.harvester, &app.address, rows.clone(), limits, now),
        import::import_csv(&running, &app.pool, &app.harvester, &app.address, rows, limits, now),
    );
    let done = done.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "bounded: {:?}", started.elapsed());
    assert!(other.unwrap_err().to_string().contains("another roster import is running"));
    assert_eq!(done.added, 0);
    let reasons: Vec<(u64, &str)> = done.failed.iter().map(|f| (f.line, f.reason.as_str())).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert_eq!(reasons[0], (2, "the blog did not answer within 1 s"));
    for (_, reason) in &reasons[1..] {
        assert!(reason.starts_with("not done: the import stops after 1.5 s; import the file again"), "{reason}");
    }
}
