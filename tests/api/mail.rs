//! The learner's mails, read at a real SMTP listener: the award mail (course, badge, comment,
//! post, links, greeting, the badge shown inline) and the revocation mail.

use std::time::{Duration, Instant};

use diesel::prelude::*;

use crate::badges::{LEARNER, award_post};
use crate::feedserver::{FeedServer, Reply, fixture};
use crate::helpers::TestApp;

/// One MIME part: its headers (as written) and its decoded body.
struct Part {
    headers: String,
    body: Vec<u8>,
}

impl Part {
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

/// The leaf parts of a MIME message, bodies decoded (base64 or quoted-printable).
fn parts(mail: &str) -> Vec<Part> {
    let mail = mail.replace("\r\n", "\n");
    let boundaries: Vec<String> = mail
        .match_indices("boundary=\"")
        .map(|(i, m)| {
            let rest = &mail[i + m.len()..];
            format!("--{}", &rest[..rest.find('"').unwrap()])
        })
        .collect();
    assert!(!boundaries.is_empty(), "not a multipart message: {mail}");
    let mut chunks = vec![mail.clone()];
    for b in &boundaries {
        chunks = chunks.iter().flat_map(|c| c.split(b.as_str()).map(str::to_string).collect::<Vec<_>>()).collect();
    }
    chunks
        .into_iter()
        .filter_map(|c| {
            let c = c.trim_start_matches('\n');
            let (headers, body) = c.split_once("\n\n")?;
            let lower = headers.to_ascii_lowercase();
            if !lower.contains("content-type:") || lower.contains("multipart/") || lower.contains("\nto:") {
                return None;
            }
            let body = if lower.contains("content-transfer-encoding: base64") {
                use base64::Engine as _;
                let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
                base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
            } else if lower.contains("content-transfer-encoding: quoted-printable") {
                quoted_printable(body)
            } else {
                body.as_bytes().to_vec()
            };
            Some(Part { headers: headers.to_string(), body })
        })
        .collect()
}

fn quoted_printable(body: &str) -> Vec<u8> {
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn part<'a>(parts: &'a [Part], content_type: &str) -> &'a Part {
    parts
        .iter()
        .find(|p| p.headers.to_ascii_lowercase().contains(&format!("content-type: {content_type}")))
        .unwrap_or_else(|| panic!("no {content_type} part"))
}

/// Runs the outbox until the mails whose subject contains `subject` number `n`; returns them.
async fn mails(app: &TestApp, smtp: &crate::smtp::SmtpSink, subject: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.notifier.deliver_due().await.unwrap();
        let found: Vec<String> = smtp.messages().into_iter().filter(|m| m.contains(subject)).collect();
        if found.len() >= n {
            return found;
        }
        assert!(Instant::now() < deadline, "no mail with {subject:?}; got {:?}", smtp.messages());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ada, who joined with her blog (shown publicly by her initials), and her harvested posts,
/// with mail going to a real SMTP listener.
async fn setup() -> (TestApp, FeedServer, crate::smtp::SmtpSink, i64, String) {
    let server = FeedServer::start().await;
    server.set("/f.xml", Reply::xml(fixture("rss2.xml")));
    let smtp = crate::smtp::SmtpSink::start().await;
    let app = crate::harvest::app_for(&server, |s| {
        s.mail.smtp_host = Some("127.0.0.1".into());
        s.mail.smtp_port = smtp.port;
        s.mail.smtp_tls = cairn::config::SmtpTls::None;
    })
    .await;
    let portfolio = {
        let mut c = app.pool.get().unwrap();
        let author =
            cairn::db::feeds::find_or_create_author(&mut c, "Ada Lovelace", Some(LEARNER), cairn::clock::system_now())
                .unwrap();
        cairn::db::learners::set_name_choice(&mut c, author.id, cairn::db::learners::NameShown::Initials, None)
            .unwrap();
        cairn::db::feeds::create_feed(
            &mut c,
            cairn::db::feeds::NewFeed {
                author_id: author.id,
                url: &server.url("/f.xml"),
                title: "",
                site_url: None,
                status: cairn::db::feeds::FeedStatus::Active,
                confirm_token_hash: None,
                manage_token_hash: Some("0".repeat(64).as_str()),
            },
            cairn::clock::system_now(),
        )
        .unwrap();
        cairn::db::portfolios::of_author(&mut c, author.id).unwrap().unwrap().public_id
    };
    crate::harvest::pass(&app).await;
    app.login().await;
    let links = cairn::db::links::recent(&mut app.pool.get().unwrap(), None, 10).unwrap();
    let post = links.iter().find(|v| v.link.title == "Data & me").unwrap().link.id;
    (app, server, smtp, post, portfolio)
}

#[tokio::test]
async fn the_award_mail_names_course_badge_comment_and_post_and_shows_the_badge_inline() {
    let (app, server, smtp, post, portfolio) = setup().await;
    let url = award_post(&app, post, "el30-data").await;
    let mail = mails(&app, &smtp, "You earned the badge", 1).await.remove(0);
    assert!(mail.contains(&format!("To: {LEARNER}")), "{mail}");
    let parts = parts(&mail);
    let (text, html) = (part(&parts, "text/plain").text(), part(&parts, "text/html").text());
    let post_url = server.url("/2019/data-and-me");
    for (what, body) in [("text", &text), ("html", &html)] {
        assert!(body.contains("Hello Ada Lovelace,"), "{what}: greeted by the name given: {body}");
        assert!(!body.contains("A. L."), "{what}: not by the public initials: {body}");
        assert!(body.contains("E-Learning 3.0"), "{what}: the course: {body}");
        assert!(body.contains("Open up a data source"), "{what}: the badge: {body}");
        assert!(body.contains("A thoughtful post."), "{what}: the comment: {body}");
        assert!(body.contains(&post_url) && body.contains("Data &"), "{what}: the post and its title: {body}");
        assert!(body.contains(&url), "{what}: the verification page: {body}");
        assert!(body.contains(&app.url(&format!("/learners/{portfolio}"))), "{what}: the portfolio: {body}");
        assert!(body.contains("private link in the email you received when you joined"), "{what}: {body}");
        assert!(body.contains(&app.url("/subscription")), "{what}: the page that mails the private link: {body}");
    }
    assert!(text.contains("> A thoughtful post."), "{text}");
    assert!(html.contains("<blockquote>A thoughtful post.</blockquote>"), "{html}");

    // The image the HTML shows is a part of the same multipart/related, by its Content-ID.
    let cid = html.split("src=\"cid:").nth(1).and_then(|r| r.split('"').next()).expect("an inline image");
    assert!(mail.contains("multipart/related"), "{mail}");
    let inline = parts
        .iter()
        .find(|p| p.headers.contains(&format!("Content-ID: <{cid}>")))
        .unwrap_or_else(|| panic!("no part with Content-ID <{cid}>: {mail}"));
    assert!(inline.headers.contains("image/png") && inline.headers.contains("inline"), "{}", inline.headers);
    assert!(inline.body.starts_with(b"\x89PNG"));
    // The download is still there, the same baked PNG.
    let attached =
        parts.iter().find(|p| p.headers.contains("Content-Disposition: attachment")).expect("the PNG attachment");
    assert_eq!(attached.body, inline.body);
}

#[tokio::test]
async fn a_revoked_badge_is_mailed_once_with_its_reason() {
    let (app, _server, smtp, post, _) = setup().await;
    let url = award_post(&app, post, "el30-data").await;
    mails(&app, &smtp, "You earned the badge", 1).await;
    let id = url.rsplit('/').next().unwrap();
    let res =
        app.post_form(&format!("/admin/awards/{id}/revoke"), &[("reason", "The post is someone else's <work>.")]).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let mail = mails(&app, &smtp, "was revoked", 1).await.remove(0);
    assert!(mail.contains(&format!("To: {LEARNER}")), "{mail}");
    let parts = parts(&mail);
    let (text, html) = (part(&parts, "text/plain").text(), part(&parts, "text/html").text());
    assert!(text.contains("> The post is someone else's <work>."), "{text}");
    assert!(html.contains("&#60;work&#62;.</blockquote>") && !html.contains("<work>"), "{html}");
    for (what, body) in [("text", &text), ("html", &html)] {
        assert!(body.contains("Hello Ada Lovelace,"), "{what}: {body}");
        assert!(body.contains("Open up a data source") && body.contains("E-Learning 3.0"), "{what}: {body}");
        assert!(body.contains(&url) && body.contains("revoked"), "{what}: {body}");
    }
    // Once: the outbox holds one revocation mail, sent, and nothing else arrives.
    let kinds: Vec<(String, String)> = {
        use cairn::db::schema::outbox::dsl;
        dsl::outbox.select((dsl::kind, dsl::status)).load(&mut app.pool.get().unwrap()).unwrap()
    };
    let revocations: Vec<_> = kinds.iter().filter(|(k, _)| k == "revocation_email").collect();
    assert_eq!(revocations, [&("revocation_email".to_string(), "sent".to_string())], "{kinds:?}");
    app.notifier.deliver_due().await.unwrap();
    assert_eq!(smtp.messages().iter().filter(|m| m.contains("was revoked")).count(), 1);
    // The verification page says so.
    let page = app.client.get(&url).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    assert!(page.to_lowercase().contains("revoked"));
}

#[tokio::test]
async fn a_forgotten_learner_is_not_mailed_about_a_revocation() {
    let (app, _server, smtp, post, _) = setup().await;
    let url = award_post(&app, post, "el30-data").await;
    mails(&app, &smtp, "You earned the badge", 1).await;
    let id = url.rsplit('/').next().unwrap().to_string();
    // The award is withdrawn as forgetting does it; a revocation afterwards queues no mail.
    {
        let mut c = app.pool.get().unwrap();
        let a = cairn::db::awards::by_public_id(&mut c, &id).unwrap();
        cairn::db::learners::withdraw_award(&mut c, a.id, "withdrawn", 1).unwrap();
    }
    app.post_form(&format!("/admin/awards/{id}/revoke"), &[("reason", "mistake")]).await;
    app.notifier.deliver_due().await.unwrap();
    let revocations: i64 = {
        use cairn::db::schema::outbox::dsl;
        dsl::outbox.filter(dsl::kind.eq("revocation_email")).count().get_result(&mut app.pool.get().unwrap()).unwrap()
    };
    assert_eq!(revocations, 0);
    assert_eq!(smtp.messages().iter().filter(|m| m.contains("was revoked")).count(), 0);
}
