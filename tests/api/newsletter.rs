//! The course newsletter: double opt-in through a real SMTP listener, one issue per reader
//! (also across a killed and restarted server), one-click unsubscribe, no empty issues, the
//! command line and the public archive.

use std::process::Stdio;
use std::time::{Duration, Instant};

use cairn::app::newsletter as nl;
use cairn::db::newsletter as store;
use diesel::prelude::*;

use crate::badges::app_with_post;
use crate::helpers::{TestApp, cairn_cmd, client, csrf_in};
use crate::smtp::SmtpSink;

const SLUG: &str = "e-learning-3-0";

fn course_id(app: &TestApp) -> i64 {
    cairn::db::courses::get_course_by_slug(&mut app.pool.get().unwrap(), SLUG).unwrap().id
}

/// Points the app's mail at the sink.
fn smtp_to(sink: &SmtpSink) -> impl FnOnce(&mut cairn::config::Settings) {
    let port = sink.port;
    move |s| {
        s.mail.smtp_host = Some("127.0.0.1".into());
        s.mail.smtp_port = port;
        s.mail.smtp_tls = cairn::config::SmtpTls::None;
        s.newsletter.max_per_minute = 100_000;
    }
}

/// Messages to `to` whose subject starts with `subject`.
fn mails_to<'a>(mails: &'a [String], to: &str, subject: &str) -> Vec<&'a String> {
    mails.iter().filter(|m| m.contains(&format!("To: {to}")) && m.contains(&format!("Subject: {subject}"))).collect()
}

/// The first `{prefix}…` link in a mail, quoted-printable soft breaks undone.
fn link_in(mail: &str, prefix: &str) -> String {
    let text = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let start = text.find(prefix).unwrap_or_else(|| panic!("no {prefix} link in {text}"));
    text[start..].split(|c: char| c.is_whitespace() || c == '>' || c == '"').next().unwrap().to_string()
}

/// The value of a header of a raw message, unfolded.
fn header(mail: &str, name: &str) -> Option<String> {
    let head = mail.split("\r\n\r\n").next().unwrap_or(mail).replace("\r\n ", " ").replace("\r\n\t", " ");
    head.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
}

/// Subscribes `email` from the course page as a visitor with no account.
async fn subscribe(app: &TestApp, email: &str) -> reqwest::Response {
    let visitor = client();
    let page = visitor.get(app.url(&format!("/courses/{SLUG}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Subscribe to the newsletter"), "the course page offers the newsletter");
    let csrf = csrf_in(&page);
    visitor
        .post(app.url(&format!("/courses/{SLUG}/newsletter")))
        .form(&[("csrf_token", csrf.as_str()), ("email", email), ("name", "")])
        .send()
        .await
        .unwrap()
}

/// Waits, at most `secs`, until `pred` holds for the sink's messages; returns them.
async fn wait_until(sink: &SmtpSink, secs: u64, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let m = sink.messages();
        if pred(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "the sink never got the expected mail ({} message(s))", m.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn confirmed_readers_get_one_issue_with_list_headers_and_unsubscribe_in_one_click() {
    let sink = SmtpSink::start().await;
    let server = crate::feedserver::FeedServer::start().await;
    server.set("/f.xml", crate::feedserver::Reply::xml(crate::feedserver::fixture("rss2.xml")));
    let app = crate::harvest::app_for(&server, smtp_to(&sink)).await;
    let course = course_id(&app);

    // Ada confirms; Bob never does.
    assert_eq!(subscribe(&app, "ada@example.edu").await.status(), 200);
    assert_eq!(subscribe(&app, "bob@example.edu").await.status(), 200);
    let mails = wait_until(&sink, 10, |m| m.len() >= 2).await;
    let confirm = mails_to(&mails, "ada@example.edu", "Confirm your subscription");
    assert_eq!(confirm.len(), 1);
    let link = link_in(confirm[0], &app.url("/newsletter/confirm/"));
    // Opening the link (a mail scanner does) confirms nothing: only the page's button does.
    for _ in 0..2 {
        let res = client().get(&link).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("Confirm my subscription"));
    }
    assert_eq!(store::count_confirmed(&mut app.pool.get().unwrap(), course).unwrap(), 0);
    assert_eq!(reader(&app, "ada@example.edu").status, store::SubscriberStatus::Pending);
    let res = crate::join::confirm_through_page(&client(), &link).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("You will receive the newsletter"));
    let again = crate::join::confirm_through_page(&client(), &link).await;
    assert_eq!(again.status(), 404, "a confirmation link works once");
    assert_eq!(store::count_confirmed(&mut app.pool.get().unwrap(), course).unwrap(), 1);

    // A day with a note: the instructor sends it now.
    app.login().await;
    let res = app
        .post_form(
            &format!("/admin/courses/{course}/newsletter"),
            &[("note", "Welcome to week <one> & all"), ("time_zone", "Europe/Paris"), ("webmentions", "on")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let admin = app.get_html(&format!("/admin/courses/{course}/newsletter")).await;
    assert!(admin.contains("1 confirmed reader(s)") && admin.contains("Preview of the next issue"), "{admin}");
    assert!(admin.contains("Welcome to week &#60;one&#62; &#38; all"), "the text preview, escaped: {admin}");
    let res = app.post_form(&format!("/admin/courses/{course}/newsletter/send"), &[]).await;
    assert_eq!(res.status(), 303);
    let mails = wait_until(&sink, 20, |m| !mails_to(m, "ada@example.edu", "E-Learning 3.0").is_empty()).await;
    let issue = mails_to(&mails, "ada@example.edu", "E-Learning 3.0")[0].clone();
    assert!(mails_to(&mails, "bob@example.edu", "E-Learning 3.0").is_empty(), "nothing to an unconfirmed reader");

    // Multipart text and HTML, list headers, one-click unsubscribe.
    assert!(issue.contains("multipart/alternative") && issue.contains("text/plain") && issue.contains("text/html"));
    assert!(header(&issue, "List-Id").unwrap().contains("<e-learning-3-0.newsletter.127.0.0.1>"), "{issue}");
    assert_eq!(header(&issue, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    let unsubscribe = header(&issue, "List-Unsubscribe").unwrap();
    assert!(unsubscribe.contains("mailto:"), "{unsubscribe}");
    let unsubscribe = link_in(&unsubscribe, &app.url("/newsletter/unsubscribe/"));
    let body = issue.replace("=\r\n", "");
    assert!(body.contains(&unsubscribe), "the body links the same unsubscribe page");
    assert!(body.contains("Welcome to week <one> & all"), "the text part holds the note as written");

    // The same day is never sent twice.
    let res = app.post_form(&format!("/admin/courses/{course}/newsletter/send"), &[]).await;
    assert_eq!(res.status(), 303);
    assert!(app.get_html(&format!("/admin/courses/{course}/newsletter")).await.contains("not sent twice"));

    // A link scanner's GET changes nothing; the mail program's one-click POST (no cookie, no
    // CSRF token) unsubscribes.
    let page = client().get(&unsubscribe).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<form method=\"post\""), "{page}");
    assert_eq!(store::count_confirmed(&mut app.pool.get().unwrap(), course).unwrap(), 1);
    let res = reqwest::Client::new()
        .post(&unsubscribe)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(store::count_confirmed(&mut app.pool.get().unwrap(), course).unwrap(), 0);
    let forged = format!("{}0", unsubscribe.trim_end_matches(|c: char| c.is_ascii_hexdigit()));
    assert_eq!(reqwest::Client::new().post(&forged).send().await.unwrap().status(), 404);
    let total = sink.messages().len();
    assert_eq!(total, 3, "two confirmations and one issue, nothing else");
}

/// Readers imported on the command line: `lines` is the CSV.
fn import(data_dir: &std::path::Path, lines: &str) -> String {
    let file = data_dir.join("readers.csv");
    std::fs::write(&file, lines).unwrap();
    let out = cairn_cmd()
        .env("CAIRN_DATA_DIR", data_dir)
        .args(["newsletter", "import", "--course", SLUG])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `cairn newsletter send` on a blocking thread, so the sink on this runtime can answer.
async fn send(data_dir: &std::path::Path, sink: &SmtpSink, date: &str) -> String {
    let mut cmd = cairn_cmd();
    cmd.env("CAIRN_DATA_DIR", data_dir)
        .env("CAIRN_SMTP_HOST", "127.0.0.1")
        .env("CAIRN_SMTP_PORT", sink.port.to_string())
        .env("CAIRN_SMTP_TLS", "none")
        .env("CAIRN_NEWSLETTER_MAX_PER_MINUTE", "100000")
        .args(["newsletter", "send", "--course", SLUG, "--date", date]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_command_line_imports_readers_and_an_empty_day_sends_nothing() {
    let sink = SmtpSink::start().await;
    let server = crate::feedserver::FeedServer::start().await;
    let app = crate::harvest::app_for(&server, |_| {}).await;
    let out = import(
        &app.data_dir,
        "email,name\nada@example.edu,Ada\nnot-an-address,Bob\nada@example.edu,Ada again\ngrace@example.edu,\n",
    );
    assert!(out.contains("line 2: ada@example.edu: added"), "{out}");
    assert!(out.contains("line 3: not-an-address: error"), "{out}");
    assert!(out.contains("line 4: ada@example.edu: already subscribed"), "{out}");
    assert!(out.contains("line 5: grace@example.edu: added"), "{out}");

    // Nothing was harvested, nothing awarded, no note: nothing is sent, and the day is done.
    let out = send(&app.data_dir, &sink, "2026-11-30").await;
    assert!(out.contains("nothing new and no note; nothing was sent"), "{out}");
    assert!(sink.messages().is_empty(), "no mail on an empty day");
    let issue = store::issue_on(&mut app.pool.get().unwrap(), course_id(&app), "2026-11-30").unwrap().unwrap();
    assert_eq!(issue.status, store::IssueStatus::Empty);

    // With a note, the next day is sent, to each reader once, however often the command runs.
    store::save_settings(&mut app.pool.get().unwrap(), course_id(&app), "UTC", "A note", true, 0).unwrap();
    let out = send(&app.data_dir, &sink, "2026-12-01").await;
    let errors: Vec<Option<String>> = {
        use cairn::db::schema::newsletter_deliveries::dsl;
        dsl::newsletter_deliveries.select(dsl::last_error).load(&mut app.pool.get().unwrap()).unwrap()
    };
    assert!(out.contains("2 sent"), "{out} {errors:?}");
    let out = send(&app.data_dir, &sink, "2026-12-01").await;
    assert!(out.contains("already had its issue") && out.contains("2 sent"), "{out}");
    assert_eq!(sink.messages().len(), 2);
    let list = cairn_cmd()
        .env("CAIRN_DATA_DIR", &app.data_dir)
        .args(["newsletter", "list", "--course", SLUG])
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.contains("2 confirmed reader(s)") && list.contains("2026-12-01: 0 post(s), 2 sent"), "{list}");
}

#[tokio::test]
async fn an_issue_groups_posts_by_task_is_archived_as_an_h_entry_and_mentions_each_post_once() {
    let (app, server, _post) = app_with_post().await;
    let post_url = server.url("/2019/data-and-me");
    server.set(
        "/2019/data-and-me",
        crate::feedserver::Reply::typed(
            r#"<html><head><link rel="webmention" href="/wm"></head><body><p>Data &amp; me</p></body></html>"#,
            "text/html",
        ),
    );
    server.set("/wm", crate::feedserver::Reply::Status { status: 202, headers: vec![], body: vec![] });
    let course = course_id(&app);
    let issue = {
        let mut c = app.pool.get().unwrap();
        store::import(&mut c, course, "reader@example.edu", "", 0).unwrap();
        match nl::build_issue(&mut c, course, "2026-12-01", &app.address, cairn::clock::system_now()).unwrap() {
            nl::Built::Queued { issue, readers: 1 } => issue,
            other => panic!("{other:?}"),
        }
    };

    // The issue's page sends the post its Webmention through the outbox, once.
    let archive_url = app.url(&format!("/courses/{SLUG}/newsletter/2026-12-01"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let notes = loop {
        app.notifier.deliver_due().await.unwrap();
        let notes = cairn::db::outbox::for_newsletter_issue(&mut app.pool.get().unwrap(), issue.id).unwrap();
        let mine = notes.iter().find(|n| n.target.as_deref() == Some(post_url.as_str()));
        if mine.is_some_and(|n| n.status != cairn::db::outbox::Status::Queued) {
            break notes;
        }
        assert!(Instant::now() < deadline, "the Webmention was never delivered: {notes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let sent: Vec<_> = notes.iter().filter(|n| n.target.as_deref() == Some(post_url.as_str())).collect();
    assert_eq!(sent.len(), 1, "{notes:?}");
    assert_eq!(sent[0].status, cairn::db::outbox::Status::Sent, "{notes:?}");
    let body = server.last_body("/wm").unwrap();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    assert_eq!(pairs, vec![("source".into(), archive_url.clone()), ("target".into(), post_url.clone())]);

    let page = app.get_html(&format!("/courses/{SLUG}/newsletter/2026-12-01")).await;
    assert!(page.contains("class=\"h-entry\"") && page.contains("class=\"e-content\""), "{page}");
    assert!(page.contains(&format!("class=\"u-mention-of\" href=\"{post_url}\"")), "{page}");
    assert!(page.contains("Data &amp; me") || page.contains("Data &#38; me"), "{page}");
    assert!(page.contains("Ada Lovelace"), "the author is named");
    assert!(page.contains("/tasks/el30-data"), "grouped under its task");
    assert!(page.contains("<h1 class=\"p-name\">E-Learning 3.0 — 1 December 2026</h1>"), "the day in words: {page}");
    let archive = app.get_html(&format!("/courses/{SLUG}/newsletter")).await;
    assert!(
        archive.contains("/newsletter/2026-12-01\"><time datetime=\"2026-12-01\">1 December 2026</time></a>"),
        "{archive}"
    );
    let atom = app.get(&format!("/courses/{SLUG}/newsletter.atom")).await.text().await.unwrap();
    let feed = feed_rs::parser::parse(atom.as_bytes()).unwrap();
    assert_eq!(feed.entries.len(), 1);
    assert_eq!(feed.entries[0].links[0].href, app.url(&format!("/courses/{SLUG}/newsletter/2026-12-01")));
    assert_eq!(app.get(&format!("/courses/{SLUG}/newsletter/2026-12-02")).await.status(), 404);
    // Nothing new since: the next day would be empty.
    let next =
        nl::build_issue(&mut app.pool.get().unwrap(), course, "2026-12-02", &app.address, cairn::clock::system_now())
            .unwrap();
    assert!(matches!(next, nl::Built::Empty), "{next:?}");
    let again =
        nl::build_issue(&mut app.pool.get().unwrap(), course, "2026-12-01", &app.address, cairn::clock::system_now())
            .unwrap();
    assert!(matches!(again, nl::Built::Exists(_)), "{again:?}");
    let notes = cairn::db::outbox::for_newsletter_issue(&mut app.pool.get().unwrap(), issue.id).unwrap();
    let mut targets: Vec<_> = notes.iter().map(|n| n.target.clone().unwrap()).collect();
    let included = targets.len();
    targets.dedup();
    assert_eq!((targets.len(), included), (3, 3), "one Webmention per included post, and only one: {notes:?}");
}

/// A `cairn serve` process on `data_dir`, mailing through `sink`; killed when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data_dir: &std::path::Path, sink: &SmtpSink) -> Server {
    Server(
        cairn_cmd()
            .env("CAIRN_DATA_DIR", data_dir)
            .env("CAIRN_BIND", "127.0.0.1:0")
            .env("CAIRN_SMTP_HOST", "127.0.0.1")
            .env("CAIRN_SMTP_PORT", sink.port.to_string())
            .env("CAIRN_SMTP_TLS", "none")
            .env("CAIRN_HARVEST_ENABLED", "false")
            .env("CAIRN_CHAIN_MINING", "false")
            .env("CAIRN_NEWSLETTER_ENABLED", "false")
            .env("CAIRN_NEWSLETTER_MAX_PER_MINUTE", "100000")
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[tokio::test]
async fn a_server_killed_while_sending_to_500_readers_sends_each_exactly_one_copy_after_restart() {
    const READERS: usize = 500;
    let sink = SmtpSink::start().await;
    let server = crate::feedserver::FeedServer::start().await;
    let app = crate::harvest::app_for(&server, |_| {}).await;
    let course = course_id(&app);
    let (data_dir, _keep) = app.stop().await;
    {
        let pool = cairn::db::open(&data_dir.join("cairn.db")).unwrap();
        let mut c = pool.get().unwrap();
        for i in 0..READERS {
            store::import(&mut c, course, &format!("reader{i}@example.edu"), "", 0).unwrap();
        }
        store::import(&mut c, course, "leaver@example.edu", "", 0).unwrap();
        c.transaction::<_, diesel::result::Error, _>(|c| {
            use cairn::db::schema::newsletter_subscribers::dsl;
            diesel::update(dsl::newsletter_subscribers.filter(dsl::email.eq("leaver@example.edu")))
                .set(dsl::status.eq("pending"))
                .execute(c)
        })
        .unwrap();
        store::save_settings(&mut c, course, "UTC", "Today's note", true, 0).unwrap();
        let built =
            nl::build_issue(&mut c, course, "2026-12-01", "http://127.0.0.1:1", cairn::clock::system_now()).unwrap();
        assert!(matches!(built, nl::Built::Queued { readers: 500, .. }), "{built:?}");
    }

    // The server starts sending; after 150 copies the sink stops answering, so some copies are
    // in flight (sent, never acknowledged) when the server is killed.
    sink.hold_after(150);
    let mut first = serve(&data_dir, &sink);
    // Killed once the copies the sink acknowledged are recorded and every sending slot holds a
    // copy in flight (sent, unanswered): the sender is stalled, so no message is half-written.
    let sent_rows = |pool: &cairn::db::DbPool| {
        use cairn::db::schema::newsletter_deliveries::dsl;
        dsl::newsletter_deliveries.filter(dsl::status.eq("sent")).count().get_result::<i64>(&mut pool.get().unwrap())
    };
    let watch = cairn::db::open(&data_dir.join("cairn.db")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(sink.messages().len() == 150 && sink.held() == nl::CONCURRENCY && sent_rows(&watch).unwrap_or(0) == 150) {
        assert!(
            Instant::now() < deadline,
            "the send never reached 150 ({} so far, {} held, {:?} recorded)",
            sink.messages().len(),
            sink.held(),
            sent_rows(&watch)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    sink.release();
    let before = sink.messages().len();
    assert!(before < READERS, "killed mid-send ({before} delivered)");

    // Restarted, it finishes: copies claimed by the dead process are taken again once their
    // lease runs out.
    let _second = serve(&data_dir, &sink);
    let mails = wait_until(&sink, 150, |m| m.len() >= READERS).await;
    let mut seen = std::collections::HashMap::new();
    for m in &mails {
        *seen.entry(header(m, "To").unwrap()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), READERS, "every confirmed reader got the issue");
    assert!(seen.values().all(|n| *n == 1), "nobody got it twice");
    assert!(!seen.contains_key("leaver@example.edu"), "nothing to an unconfirmed reader");
    let pool = cairn::db::open(&data_dir.join("cairn.db")).unwrap();
    let issue = store::issue_on(&mut pool.get().unwrap(), course, "2026-12-01").unwrap().unwrap();
    assert_eq!(store::delivery_counts(&mut pool.get().unwrap(), issue.id).unwrap(), (READERS as i64, 0, 0));
    assert_eq!(sink.messages().len(), READERS, "and no copy after the last");
}

#[tokio::test]
async fn a_learner_joining_from_the_course_page_is_offered_the_newsletter_of_that_course() {
    let sink = SmtpSink::start().await;
    let server = crate::feedserver::FeedServer::start().await;
    server.set("/f.xml", crate::feedserver::Reply::xml(crate::feedserver::fixture("rss2.xml")));
    let app = crate::harvest::app_for(&server, smtp_to(&sink)).await;
    let course = app.get_html(&format!("/courses/{SLUG}")).await;
    assert!(course.contains(&format!("href=\"/join?course={SLUG}\"")), "{course}");
    let visitor = client();
    let page = visitor.get(app.url(&format!("/join?course={SLUG}"))).send().await.unwrap().text().await.unwrap();
    // The page names the course and its hashtags; the newsletter is offered, not ticked for them.
    assert!(
        page.contains("<h1>Join E-Learning 3.0</h1>") && page.contains("<code class=\"hashtag\">#el30-data</code>")
    );
    assert!(
        page.contains(
            r#"<input type="checkbox" name="newsletter" value="on"> Also subscribe to the newsletter of E-Learning 3.0"#
        ),
        "{page}"
    );
    let csrf = csrf_in(&page);
    let res = visitor
        .post(app.url("/join"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "Grace"),
            ("email", "grace@example.edu"),
            ("url", &server.url("/f.xml")),
            ("course", SLUG),
            ("newsletter", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("newsletter of E-Learning 3.0"));
    let mails = wait_until(&sink, 10, |m| m.len() >= 2).await;
    assert_eq!(mails_to(&mails, "grace@example.edu", "Confirm your subscription to E-Learning 3.0").len(), 1);
    assert_eq!(mails.len(), 2, "the feed's confirmation and the newsletter's");
    let pending: i64 = {
        use cairn::db::schema::newsletter_subscribers::dsl;
        dsl::newsletter_subscribers
            .filter(dsl::status.eq("pending"))
            .count()
            .get_result(&mut app.pool.get().unwrap())
            .unwrap()
    };
    assert_eq!(pending, 1, "double opt-in: pending until the link is followed");
}

/// Parse errors of an HTML page, by the WHATWG tokenizer (html5gum).
fn html_errors(html: &str) -> Vec<String> {
    html5gum::Tokenizer::new(html)
        .filter_map(|t| match t {
            Ok(html5gum::Token::Error(e)) => Some(format!("{e:?}")),
            _ => None,
        })
        .collect()
}

/// Accessibility problems a browser sees on the current page: controls without a label,
/// images without alt text, links and buttons without a name, a missing `lang`, not exactly
/// one `h1`, skipped heading levels, and duplicate ids.
const AUDIT: &str = r#"
const problems = [];
if (!document.documentElement.lang) problems.push('no lang');
if (document.querySelectorAll('h1').length !== 1) problems.push('h1 count ' + document.querySelectorAll('h1').length);
let last = 0;
for (const h of document.querySelectorAll('h1,h2,h3,h4,h5,h6')) {
  const level = +h.tagName[1];
  if (last && level > last + 1) problems.push('heading jump to ' + h.tagName);
  last = level;
}
for (const el of document.querySelectorAll('input:not([type=hidden]),select,textarea')) {
  const labelled = (el.id && document.querySelector('label[for="' + el.id + '"]')) || el.closest('label') || el.getAttribute('aria-label');
  if (!labelled) problems.push('unlabelled ' + (el.name || el.outerHTML));
}
for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) problems.push('img without alt');
for (const a of document.querySelectorAll('a,button')) if (!(a.innerText || a.getAttribute('aria-label') || '').trim()) problems.push('nameless ' + a.outerHTML);
const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
for (const id of ids) if (ids.indexOf(id) !== ids.lastIndexOf(id)) problems.push('duplicate id ' + id);
return problems;
"#;

#[tokio::test]
async fn the_archive_pages_are_valid_html_and_accessible_in_a_real_browser() {
    let (app, _server, _post) = app_with_post().await;
    let course = course_id(&app);
    {
        let mut c = app.pool.get().unwrap();
        store::import(&mut c, course, "reader@example.edu", "", 0).unwrap();
        nl::build_issue(&mut c, course, "2026-12-01", &app.address, cairn::clock::system_now()).unwrap();
    }
    let pages = [
        format!("/courses/{SLUG}"),
        format!("/courses/{SLUG}/newsletter"),
        format!("/courses/{SLUG}/newsletter/2026-12-01"),
        format!("/admin/courses/{course}/newsletter"),
        "/newsletter/confirm/t0k3n".to_string(),
    ];
    assert!(!html_errors("<p id=a id=b>x</p>").is_empty(), "the check sees a duplicate attribute");
    for path in &pages {
        let html = app.get_html(path).await;
        assert!(html_errors(&html).is_empty(), "{path}: {:?}", html_errors(&html));
    }
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    crate::browser::sign_in(&browser, &app.url("/login")).await.unwrap();
    for path in &pages {
        browser.goto(&app.url(path)).await.unwrap();
        let problems = browser.execute(AUDIT, vec![]).await.unwrap();
        assert_eq!(problems, serde_json::json!([]), "{path}");
    }
    // The preview of the next issue fills the content column and is tall enough to read.
    browser.set_window_size(1280, 900).await.unwrap();
    browser.goto(&app.url(&format!("/admin/courses/{course}/newsletter"))).await.unwrap();
    let size = browser
        .execute(
            "const f = document.querySelector('iframe.preview'); const r = f.getBoundingClientRect(); \
             return [r.width, r.height, f.parentElement.getBoundingClientRect().width, f.title];",
            vec![],
        )
        .await
        .unwrap();
    let (width, height, column) = (size[0].as_f64().unwrap(), size[1].as_f64().unwrap(), size[2].as_f64().unwrap());
    assert!(width >= 600.0 && width >= column - 2.0, "the preview is {width} px wide in a {column} px column");
    assert!(height >= 400.0, "the preview is {height} px tall");
    assert!(size[3].as_str().unwrap().starts_with("Preview of the next issue"), "{size:?}");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn the_scheduler_builds_each_course_issue_once_at_the_hour_of_its_time_zone() {
    let server = crate::feedserver::FeedServer::start().await;
    let app = crate::harvest::app_for(&server, |_| {}).await;
    let course = course_id(&app);
    store::import(&mut app.pool.get().unwrap(), course, "reader@example.edu", "", 0).unwrap();
    store::save_settings(&mut app.pool.get().unwrap(), course, "Pacific/Auckland", "Kia ora", true, 0).unwrap();
    let mut settings = crate::helpers::settings(&app.data_dir);
    settings.newsletter.hour = 7;
    let mailer = cairn::email::Mailer::new(&settings.mail, &app.data_dir).unwrap();
    let sender = nl::Newsletter::new(app.pool.clone(), mailer, app.address.clone(), settings.newsletter);

    // 2026-12-01 17:30 UTC is 06:30 on the 2nd in Auckland (UTC+13): not yet.
    let before = 1_796_146_200;
    assert_eq!(sender.schedule(before).await.unwrap(), 0);
    assert!(store::issue_on(&mut app.pool.get().unwrap(), course, "2026-12-02").unwrap().is_none());
    // An hour later it is 07:30 there: the issue of the 2nd is built, once.
    assert_eq!(sender.schedule(before + 3600).await.unwrap(), 1);
    assert_eq!(sender.schedule(before + 7200).await.unwrap(), 0, "one issue per course and local date");
    let issue = store::issue_on(&mut app.pool.get().unwrap(), course, "2026-12-02").unwrap().unwrap();
    assert_eq!((issue.status, issue.until), (store::IssueStatus::Sent, before + 3600));
}

#[tokio::test]
async fn sending_keeps_to_the_configured_pace_and_still_sends_each_reader_one_copy() {
    const READERS: usize = 11;
    let sink = SmtpSink::start().await;
    let server = crate::feedserver::FeedServer::start().await;
    let app = crate::harvest::app_for(&server, |_| {}).await;
    let course = course_id(&app);
    // The server is stopped: the sender under test is the only one.
    let (data_dir, _keep) = app.stop().await;
    let pool = cairn::db::open(&data_dir.join("cairn.db")).unwrap();
    for i in 0..READERS {
        store::import(&mut pool.get().unwrap(), course, &format!("reader{i}@example.edu"), "", 0).unwrap();
    }
    store::save_settings(&mut pool.get().unwrap(), course, "UTC", "Today's note", false, 0).unwrap();
    let mut settings = crate::helpers::settings(&data_dir);
    smtp_to(&sink)(&mut settings);
    // One copy every 100 ms: the eleventh cannot start before a second has passed.
    settings.newsletter.max_per_minute = 600;
    let mailer = cairn::email::Mailer::new(&settings.mail, &data_dir).unwrap();
    let sender = nl::Newsletter::new(pool.clone(), mailer, "http://127.0.0.1:1".into(), settings.newsletter);
    let start = Instant::now();
    let built = sender.send_now(course, "2026-12-01", cairn::clock::system_now()).await.unwrap();
    let took = start.elapsed();
    assert!(matches!(built, nl::Built::Queued { readers: 11, .. }), "{built:?}");
    assert!(took >= Duration::from_millis(1000), "{READERS} copies at 600 a minute took only {took:?}");
    let mails = wait_until(&sink, 10, |m| m.len() >= READERS).await;
    let mut to: Vec<String> = mails.iter().filter_map(|m| header(m, "To")).collect();
    to.sort();
    to.dedup();
    assert_eq!((mails.len(), to.len()), (READERS, READERS), "one copy each: {to:?}");
    let issue = store::issue_on(&mut pool.get().unwrap(), course, "2026-12-01").unwrap().unwrap();
    assert_eq!(store::delivery_counts(&mut pool.get().unwrap(), issue.id).unwrap(), (READERS as i64, 0, 0));
}

#[tokio::test]
async fn badges_are_counted_and_name_learners_only_as_each_chose_to_be_shown() {
    let (app, _server, post) = app_with_post().await;
    crate::badges::award_post(&app, post, "el30-data").await;
    // An award by address alone: its recipient never chose how to be shown.
    let mut cmd = cairn_cmd();
    cmd.env("CAIRN_DATA_DIR", &app.data_dir).env("CAIRN_BASE_URL", &app.address).args([
        "award",
        "--task",
        "#el30-data",
        "--recipient",
        "grace@example.edu",
        "--evidence",
        "https://grace.example.org/data",
        "--name",
        "Grace Hopper",
    ]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let course = course_id(&app);
    let content = {
        let mut c = app.pool.get().unwrap();
        let ada = cairn::db::feeds::author_by_email(&mut c, crate::badges::LEARNER).unwrap().unwrap().id;
        cairn::db::learners::set_name_choice(&mut c, ada, cairn::db::learners::NameShown::Pseudonym, Some("Countess"))
            .unwrap();
        store::import(&mut c, course, "reader@example.edu", "", 0).unwrap();
        let built =
            nl::build_issue(&mut c, course, "2026-12-01", &app.address, cairn::clock::system_now() + 1).unwrap();
        assert!(matches!(built, nl::Built::Queued { .. }), "{built:?}");
        nl::archived(&mut c, SLUG, "2026-12-01").unwrap().1
    };
    let data = content.badges.iter().find(|b| b.count == 2).unwrap_or_else(|| panic!("{:?}", content.badges));
    assert_eq!(data.names, ["Countess"], "Ada by her pseudonym; the address-only recipient unnamed");
    let line = format!("{}: 2 (Countess)", data.title);

    let links = nl::Links { base: &app.address, archive_url: "x", unsubscribe_url: "y" };
    let (_, text, html) = nl::render_mail(&content, &links).unwrap();
    let page = app.get_html(&format!("/courses/{SLUG}/newsletter/2026-12-01")).await;
    for (what, body) in [("text", &text), ("html", &html), ("archive page", &page)] {
        let body = body.replace("&#38;", "&").replace("&amp;", "&");
        assert!(body.contains(&line), "{what}: {body}");
        assert!(!body.contains("Grace") && !body.contains("Lovelace"), "{what} names no one otherwise: {body}");
    }
}

/// The reader `email` of the course, as stored.
fn reader(app: &TestApp, email: &str) -> store::Subscriber {
    use cairn::db::schema::newsletter_subscribers::dsl;
    let id: i64 = dsl::newsletter_subscribers
        .filter(dsl::email.eq(email))
        .select(dsl::id)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    store::subscriber(&mut app.pool.get().unwrap(), id).unwrap()
}

#[tokio::test]
async fn a_confirmation_asked_while_the_mail_server_is_down_is_sent_once_it_is_back_after_a_restart() {
    // A port nothing listens on: the mail server is down.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = crate::feedserver::FeedServer::start().await;
    let app = crate::harvest::app_for(&server, move |s| {
        s.mail.smtp_host = Some("127.0.0.1".into());
        s.mail.smtp_port = down;
        s.mail.smtp_tls = cairn::config::SmtpTls::None;
    })
    .await;
    let res = subscribe(&app, "ada@example.edu").await;
    assert_eq!(res.status(), 200, "the visitor is answered without waiting for the mail server");
    let ada = reader(&app, "ada@example.edu").id;

    // The notifier tried, failed, and queued a retry with backoff.
    let deadline = Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let notes = cairn::db::outbox::for_newsletter_reader(&mut app.pool.get().unwrap(), ada).unwrap();
        assert_eq!(notes.len(), 1, "one confirmation queued: {notes:?}");
        if notes[0].attempts >= 1 {
            break notes[0].clone();
        }
        assert!(Instant::now() < deadline, "the confirmation was never tried: {notes:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(failed.kind, cairn::db::outbox::Kind::NewsletterConfirmation);
    assert_eq!(failed.status, cairn::db::outbox::Status::Queued, "{failed:?}");
    assert!(failed.next_attempt_at >= failed.updated_at + 60, "retried after a backoff: {failed:?}");
    assert!(failed.last_error.is_some());
    let (data_dir, _keep) = app.stop().await;

    // The mail server is back and Cairn restarts on the same store; once the backoff has run
    // (the notifier is run at that time), the mail is sent.
    let sink = SmtpSink::start().await;
    let mut settings = crate::helpers::settings(&data_dir);
    smtp_to(&sink)(&mut settings);
    let app = crate::helpers::start_with(&settings).await;
    let at = failed.next_attempt_at;
    let notifier = app.notifier.clone().with_clock(cairn::clock::Clock::from_fn(move || at));
    assert_eq!(notifier.deliver_due().await.unwrap(), 1);
    let mails = wait_until(&sink, 10, |m| !m.is_empty()).await;
    let confirm = mails_to(&mails, "ada@example.edu", "Confirm your subscription to E-Learning 3.0");
    assert_eq!((confirm.len(), mails.len()), (1, 1), "one confirmation, nothing else");
    let row = &cairn::db::outbox::for_newsletter_reader(&mut app.pool.get().unwrap(), ada).unwrap()[0];
    assert_eq!((row.status, row.attempts), (cairn::db::outbox::Status::Sent, 2));

    // The link's token was never stored, only its hash; the link works.
    let link = link_in(confirm[0], &app.url("/newsletter/confirm/"));
    let token = link.rsplit('/').next().unwrap().to_string();
    for file in ["cairn.db", "cairn.db-wal"] {
        let bytes = std::fs::read(data_dir.join(file)).unwrap_or_default();
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "{file} holds the token");
    }
    assert_eq!(crate::join::confirm_through_page(&client(), &link).await.status(), 200);
    assert_eq!(reader(&app, "ada@example.edu").status, store::SubscriberStatus::Confirmed);
}

#[tokio::test]
async fn a_complaint_from_the_command_line_or_the_instructor_unsubscribes_and_is_listed() {
    let server = crate::feedserver::FeedServer::start().await;
    let app = crate::harvest::app_for(&server, |_| {}).await;
    let course = course_id(&app);
    import(&app.data_dir, "ada@example.edu,Ada\nbob@example.edu,Bob\ncyd@example.edu,Cyd\n");
    let complaint = |email: &str| {
        cairn_cmd()
            .env("CAIRN_DATA_DIR", &app.data_dir)
            .args(["newsletter", "complaint", "--course", SLUG, email])
            .output()
            .unwrap()
    };

    // A feedback-loop report, recorded on the command line, once.
    let out = complaint("Ada@Example.edu");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ada@example.edu: complaint recorded; unsubscribed"));
    let out = complaint("ada@example.edu");
    assert!(String::from_utf8_lossy(&out.stdout).contains("already recorded"), "{out:?}");
    let out = complaint("nobody@example.edu");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a reader"), "{out:?}");
    assert_eq!(reader(&app, "ada@example.edu").status, store::SubscriberStatus::Unsubscribed);

    // A complaint forwarded to the instructor: "Mark as complaint" on the reader's row.
    app.login().await;
    let bob = reader(&app, "bob@example.edu").id;
    let action = format!("/admin/courses/{course}/newsletter/readers/{bob}/complaint");
    let page = app.get_html(&format!("/admin/courses/{course}/newsletter")).await;
    assert!(page.contains(&format!("action=\"{action}\"")), "{page}");
    assert_eq!(app.post_form(&action, &[]).await.status(), 303);
    let other = format!("/admin/courses/{course}/newsletter/readers/{}/complaint", bob + 1000);
    assert_eq!(app.post_form(&other, &[]).await.status(), 404, "only a reader of this course");
    assert_eq!(store::count_confirmed(&mut app.pool.get().unwrap(), course).unwrap(), 1);

    let page = app.get_html(&format!("/admin/courses/{course}/newsletter")).await;
    let section = &page[page.find("Bounces and complaints").unwrap()..page.find("Past issues").unwrap()];
    assert!(section.contains("ada@example.edu: complaint, recorded on the command line"), "{section}");
    assert!(section.contains("bob@example.edu: complaint, marked by an instructor"), "{section}");
    assert!(!section.contains("cyd@example.edu"), "{section}");
    assert!(!page.contains(&format!("action=\"{action}\"")), "no second button once recorded");

    // The next issue goes to the one reader left.
    store::save_settings(&mut app.pool.get().unwrap(), course, "UTC", "A note", true, 0).unwrap();
    let built =
        nl::build_issue(&mut app.pool.get().unwrap(), course, "2026-12-01", &app.address, cairn::clock::system_now())
            .unwrap();
    assert!(matches!(built, nl::Built::Queued { readers: 1, .. }), "{built:?}");
}

#[tokio::test]
async fn housekeeping_deletes_sign_ups_whose_confirmation_link_expired_with_their_queued_mail() {
    let server = crate::feedserver::FeedServer::start().await;
    let app = crate::harvest::app_for(&server, |_| {}).await;
    let course = course_id(&app);
    let (data_dir, _keep) = app.stop().await;
    let (expired, waiting) = {
        let pool = cairn::db::open(&data_dir.join("cairn.db")).unwrap();
        let mut c = pool.get().unwrap();
        let now = cairn::clock::system_now();
        let ask = |c: &mut diesel::SqliteConnection, email: &str, expires: i64| match store::ask(
            c, course, email, "", expires, now,
        )
        .unwrap()
        {
            store::Asked::Pending(id) => id,
            other => panic!("{other:?}"),
        };
        let expired = ask(&mut c, "late@example.edu", now - 1);
        cairn::db::outbox::enqueue_confirmation(&mut c, expired, now).unwrap();
        (expired, ask(&mut c, "soon@example.edu", now + 3600))
    };

    // The server's housekeeping runs when it starts, then every ten minutes.
    let app = crate::helpers::start(&data_dir).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while store::subscriber(&mut app.pool.get().unwrap(), expired).is_ok() {
        assert!(Instant::now() < deadline, "the expired sign-up was never deleted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cairn::db::outbox::for_newsletter_reader(&mut app.pool.get().unwrap(), expired).unwrap().is_empty());
    let kept = store::subscriber(&mut app.pool.get().unwrap(), waiting).unwrap();
    assert_eq!(kept.status, store::SubscriberStatus::Pending, "a link still valid is kept");
}

/// The issue of `date` as mailed to `to`, quoted-printable soft breaks undone.
fn issue_mail(mails: &[String], to: &str, date: &str) -> Option<String> {
    mails_to(mails, to, "E-Learning 3.0")
        .into_iter()
        .map(|m| m.replace("=\r\n", "").replace("=\n", ""))
        .find(|m| m.contains(&format!("/newsletter/{date}")))
}

#[tokio::test]
async fn start_dates_and_the_named_current_module_drive_this_module_in_a_sent_newsletter() {
    let sink = SmtpSink::start().await;
    let server = crate::feedserver::FeedServer::start().await;
    let app = crate::harvest::app_for(&server, smtp_to(&sink)).await;
    let course = course_id(&app);
    let module = |title: &str| {
        let outline = cairn::db::courses::outline(&mut app.pool.get().unwrap(), course).unwrap();
        outline.modules.into_iter().find(|m| m.module.title == title).unwrap().module
    };
    // The demo course's nine modules, Data first and Conclusion last: Cloud starts on
    // 2026-11-20, Graph on 2026-12-20, the others have no date.
    for (title, day) in [("Cloud", "2026-11-20"), ("Graph", "2026-12-20")] {
        let m = module(title);
        let form =
            cairn::app::courses::ModuleForm { title: m.title, description: m.description, starts_on: day.into() };
        cairn::app::courses::update_module(&mut app.pool.get().unwrap(), m.id, &form, 0).unwrap();
    }
    store::import(&mut app.pool.get().unwrap(), course, "reader@example.edu", "", 0).unwrap();
    let mut settings = crate::helpers::settings(&app.data_dir);
    smtp_to(&sink)(&mut settings);
    let mailer = cairn::email::Mailer::new(&settings.mail, &app.data_dir).unwrap();
    let sender = nl::Newsletter::new(app.pool.clone(), mailer, app.address.clone(), settings.newsletter);
    let send = |date: &'static str, note: &'static str| {
        let sender = sender.clone();
        let pool = app.pool.clone();
        async move {
            store::save_settings(&mut pool.get().unwrap(), course, "UTC", note, true, 0).unwrap();
            let built = sender.send_now(course, date, cairn::clock::system_now()).await.unwrap();
            assert!(matches!(built, nl::Built::Queued { readers: 1, .. }), "{date}: {built:?}");
        }
    };

    // Before any start date: the first module, not the one added last.
    send("2026-11-10", "One").await;
    let mails = wait_until(&sink, 20, |m| issue_mail(m, "reader@example.edu", "2026-11-10").is_some()).await;
    let mail = issue_mail(&mails, "reader@example.edu", "2026-11-10").unwrap();
    assert!(mail.contains("This module: Data") && !mail.contains("This module: Conclusion"), "{mail}");
    // On 2026-12-01, Cloud has started and Graph has not.
    send("2026-12-01", "Two").await;
    let mails = wait_until(&sink, 20, |m| issue_mail(m, "reader@example.edu", "2026-12-01").is_some()).await;
    let mail = issue_mail(&mails, "reader@example.edu", "2026-12-01").unwrap();
    assert!(mail.contains("This module: Cloud") && mail.contains("/tasks/el30-cloud"), "{mail}");

    // The instructor names Identity on the course's page: it is "This module" whatever the dates.
    app.login().await;
    let identity = module("Identity").id;
    let res = app
        .post_form(&format!("/admin/courses/{course}/current-module"), &[("current_module", &identity.to_string())])
        .await;
    assert_eq!(res.status(), 303);
    send("2026-12-02", "Three").await;
    let mails = wait_until(&sink, 20, |m| issue_mail(m, "reader@example.edu", "2026-12-02").is_some()).await;
    let mail = issue_mail(&mails, "reader@example.edu", "2026-12-02").unwrap();
    assert!(mail.contains("This module: Identity") && !mail.contains("This module: Cloud"), "{mail}");
    let page = app.get_html(&format!("/courses/{SLUG}/newsletter/2026-12-02")).await;
    assert!(page.contains("This module: Identity"), "the archived issue keeps it: {page}");
}

/// Midnight UTC starting 2026-12-01.
const DEC_1: i64 = 1_796_083_200;

#[tokio::test]
async fn the_first_issue_waits_for_the_day_after_the_first_reader_unless_the_instructor_sends_it_now() {
    let sink = SmtpSink::start().await;
    let (clock, hand) = cairn::clock::Clock::manual(DEC_1 + 6 * 3600);
    let temp = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::settings(temp.path());
    smtp_to(&sink)(&mut settings);
    // The scheduler runs in the server, as in production, from 07:00.
    settings.newsletter.hour = 7;
    settings.newsletter.enabled = true;
    let app = crate::helpers::start_with_clock(&settings, clock.clone()).await;
    {
        let mut c = app.pool.get().unwrap();
        let now = cairn::clock::system_now();
        cairn::app::instructors::create(&mut c, crate::helpers::EMAIL, crate::helpers::PASSWORD, now).unwrap();
        cairn::demo::seed(&mut c).unwrap();
    }
    let course = course_id(&app);
    // The server's scheduling pass, run here at known times on the same store and clock.
    let mailer = cairn::email::Mailer::new(&settings.mail, &app.data_dir).unwrap();
    let scheduler =
        nl::Newsletter::with_clock(app.pool.clone(), mailer, app.address.clone(), settings.newsletter, clock.clone());

    // 06:00 on 2026-12-01: the course's first reader subscribes and confirms.
    assert_eq!(subscribe(&app, "ada@example.edu").await.status(), 200);
    let mails =
        wait_until(&sink, 10, |m| !mails_to(m, "ada@example.edu", "Confirm your subscription").is_empty()).await;
    let link =
        link_in(mails_to(&mails, "ada@example.edu", "Confirm your subscription")[0], &app.url("/newsletter/confirm/"));
    assert_eq!(crate::join::confirm_through_page(&client(), &link).await.status(), 200);
    assert_eq!(store::count_confirmed(&mut app.pool.get().unwrap(), course).unwrap(), 1);

    // 07:30, past the hour: no issue goes out by itself on the first reader's day.
    hand.set(DEC_1 + 7 * 3600 + 1800);
    assert_eq!(scheduler.schedule(clock.now()).await.unwrap(), 0);
    assert!(store::issue_on(&mut app.pool.get().unwrap(), course, "2026-12-01").unwrap().is_none());
    app.login().await;
    let admin = app.get_html(&format!("/admin/courses/{course}/newsletter")).await;
    assert!(admin.contains("Today's issue will not go out because the first reader arrived today"), "{admin}");

    // The instructor writes a note for today's issue and sends it now.
    let settings_page = format!("/admin/courses/{course}/newsletter");
    let fields = |note: &'static str| [("note", note), ("time_zone", "UTC"), ("webmentions", "on")];
    assert_eq!(app.post_form(&settings_page, &fields("Welcome, Ada")).await.status(), 303);
    assert_eq!(app.post_form(&format!("/admin/courses/{course}/newsletter/send"), &[]).await.status(), 303);
    let mails = wait_until(&sink, 20, |m| issue_mail(m, "ada@example.edu", "2026-12-01").is_some()).await;
    assert!(issue_mail(&mails, "ada@example.edu", "2026-12-01").unwrap().contains("Welcome, Ada"));
    let admin = app.get_html(&format!("/admin/courses/{course}/newsletter")).await;
    let line = format!(
        "Today's issue went out at 07:30 UTC to 1 reader — <a href=\"/courses/{SLUG}/newsletter/2026-12-01\">view it</a>."
    );
    assert!(admin.contains(&line), "{admin}");
    assert!(admin.contains("tomorrow&#39;s, as today&#39;s has gone out"), "a note now waits for tomorrow: {admin}");
    assert_eq!(app.get(&format!("/courses/{SLUG}/newsletter/2026-12-01")).await.status(), 200, "the link works");
    // Today's issue went out: a second "Send now" sends nothing.
    assert_eq!(app.post_form(&format!("/admin/courses/{course}/newsletter/send"), &[]).await.status(), 303);
    assert!(app.get_html(&format!("/admin/courses/{course}/newsletter")).await.contains("not sent twice"));

    // A note for tomorrow, then 07:05 on 2026-12-02: the day's issue goes out on schedule.
    assert_eq!(app.post_form(&settings_page, &fields("Day two")).await.status(), 303);
    let admin = app.get_html(&settings_page).await;
    assert!(admin.contains("Today&#39;s issue has gone out: the note will be in tomorrow&#39;s."), "{admin}");
    hand.set(DEC_1 + 86_400 + 7 * 3600 + 300);
    scheduler.schedule(clock.now()).await.unwrap();
    let issue = store::issue_on(&mut app.pool.get().unwrap(), course, "2026-12-02").unwrap();
    assert_eq!(
        issue.map(|i| i.status),
        Some(store::IssueStatus::Sent),
        "built by the scheduler (here or in the server)"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mail = loop {
        scheduler.deliver_due().await.unwrap();
        if let Some(mail) = issue_mail(&sink.messages(), "ada@example.edu", "2026-12-02") {
            break mail;
        }
        assert!(Instant::now() < deadline, "the second day's issue never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(mail.contains("Day two"), "{mail}");
    assert_eq!(mails_to(&sink.messages(), "ada@example.edu", "E-Learning 3.0").len(), 2, "one issue a day");
}

#[tokio::test]
async fn send_now_sends_a_day_the_scheduler_found_empty_once_a_note_is_written() {
    let server = crate::feedserver::FeedServer::start().await;
    let app = crate::harvest::app_for(&server, |_| {}).await;
    let course = course_id(&app);
    store::import(&mut app.pool.get().unwrap(), course, "reader@example.edu", "", 0).unwrap();
    let now = cairn::clock::system_now();
    let date = nl::local_day("UTC", now).0;
    // The scheduler found nothing new and no note.
    let built = nl::build_issue(&mut app.pool.get().unwrap(), course, &date, &app.address, now).unwrap();
    assert!(matches!(built, nl::Built::Empty), "{built:?}");
    app.login().await;
    let admin = app.get_html(&format!("/admin/courses/{course}/newsletter")).await;
    assert!(admin.contains("Today's issue has not gone out: at"), "{admin}");
    // The note written since goes in today's issue, not tomorrow's.
    let res = app
        .post_form(&format!("/admin/courses/{course}/newsletter"), &[("note", "Late news"), ("time_zone", "UTC")])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.post_form(&format!("/admin/courses/{course}/newsletter/send"), &[]).await.status(), 303);
    let issue = store::issue_on(&mut app.pool.get().unwrap(), course, &date).unwrap().unwrap();
    assert_eq!(issue.status, store::IssueStatus::Sent);
    assert!(nl::parse_content(&issue).unwrap().note.contains("Late news"));
    assert_eq!(store::settings(&mut app.pool.get().unwrap(), course).unwrap().note, "", "the issue took the note");
}
