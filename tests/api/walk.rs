//! The learner's walk and an employer's look at a badge, in headless Chromium at a desktop's
//! 1280×900 and a phone's 375×667: the join page of a course, the confirmation link from the
//! mail (caught by a real SMTP listener), the page after confirming, the learner's private
//! page with the posts a harvest found; and the public verification page of an award. Each
//! page names what it must, keeps its key elements clear of each other and does not scroll
//! sideways.

use std::path::Path;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::feedserver::{FeedServer, Reply, fixture};
use crate::helpers::TestApp;
use crate::layout::{intersects, screenshot, set_viewport, shots_dir, viewport};
use crate::smtp::SmtpSink;

/// The two windows, with the name their screenshots carry.
const WINDOWS: [(u32, u32, &str); 2] = [(1280, 900, "desktop"), (375, 667, "phone")];
const COURSE: &str = "E-Learning 3.0";
/// How long a page may take to appear after a click.
const PAGE_WAIT: Duration = Duration::from_secs(10);

/// Checks the page shown: each selector of `keys` matches at least one visible element, no two
/// matched elements overlap unless one holds the other, and the page does not scroll sideways.
/// Saves a screenshot as `name`.png in `dir`.
async fn check_layout(browser: &Client, dir: &Path, name: &str, keys: &[(&str, &str)]) {
    std::fs::write(dir.join(format!("{name}.png")), screenshot(browser).await).unwrap();
    let specs: Vec<Value> = keys.iter().map(|(k, s)| json!([k, s])).collect();
    let found = browser
        .execute(
            "const found = [], missing = [];
             for (const [name, sel] of arguments[0]) {
               const els = [...document.querySelectorAll(sel)];
               if (els.length === 0) missing.push(name);
               els.forEach((el, i) => {
                 const b = el.getBoundingClientRect();
                 found.push({name: els.length > 1 ? `${name}[${i}]` : name, el,
                             left: b.left + scrollX, right: b.right + scrollX,
                             top: b.top + scrollY, bottom: b.bottom + scrollY,
                             width: b.width, height: b.height});
               });
             }
             const nested = [];
             for (let i = 0; i < found.length; i++)
               for (let j = i + 1; j < found.length; j++)
                 if (found[i].el.contains(found[j].el) || found[j].el.contains(found[i].el)) nested.push([i, j]);
             const e = document.scrollingElement;
             return {missing, nested, sideways: e.scrollWidth - e.clientWidth,
                     boxes: found.map(({el, ...box}) => box)};",
            vec![Value::Array(specs)],
        )
        .await
        .unwrap();
    assert_eq!(found["missing"], json!([]), "{name}: elements missing");
    assert!(found["sideways"].as_i64().unwrap() <= 0, "{name}: scrolls sideways by {} px", found["sideways"]);
    let boxes = found["boxes"].as_array().unwrap();
    let nested: Vec<(usize, usize)> = serde_json::from_value(found["nested"].clone()).unwrap();
    let mut overlaps = Vec::new();
    for (i, a) in boxes.iter().enumerate() {
        assert!(
            a["width"].as_f64().unwrap() > 0.0 && a["height"].as_f64().unwrap() > 0.0,
            "{name}: {} is not shown: {a}",
            a["name"]
        );
        for (j, b) in boxes.iter().enumerate().skip(i + 1) {
            if !nested.contains(&(i, j)) && intersects(a, b) {
                overlaps.push(format!("{} {a} overlaps {} {b}", a["name"], b["name"]));
            }
        }
    }
    assert!(overlaps.is_empty(), "{name}: key elements overlap:\n{}", overlaps.join("\n"));
}

/// The text of the first element `css` matches.
async fn text(browser: &Client, css: &str) -> String {
    browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}")).text().await.unwrap()
}

/// Waits (bounded) for the page that shows `css`, after a click.
async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser.wait().at_most(PAGE_WAIT).for_element(Locator::Css(css)).await.unwrap_or_else(|e| {
        panic!("{css} did not appear within {PAGE_WAIT:?}: {e}");
    })
}

/// A blog at `/{who}/` whose page advertises its RSS feed (at a long address, as blogs' feeds
/// often are), with the posts of the feed fixture moved to the learner's own site: "Data & me"
/// (#el30-data, in the category el30-cloud), "Not about databases" (no task's hashtag) and an
/// untitled post (#EL30-Graph).
fn serve_blog(server: &FeedServer, who: &str) -> String {
    let feed_path = format!("/{who}/category/e-learning-3-0/feed/rss2-with-every-post-and-comment.xml");
    let feed = String::from_utf8(fixture("rss2.xml"))
        .unwrap()
        .replace("ada.example.org", &format!("{who}.example.org"))
        .replace("ada-post-1", &format!("{who}-post-1"))
        .replace("/2019/data-and-me", &format!("/{who}/2019/data-and-me"));
    server.set(&feed_path, Reply::xml(feed));
    server.set(
        &format!("/{who}/"),
        Reply::typed(
            format!(
                r#"<!DOCTYPE html><html lang="en"><head><title>{who}'s blog</title>
<link rel="alternate" type="application/rss+xml" title="Posts" href="{feed_path}"></head><body></body></html>"#
            ),
            "text/html; charset=utf-8",
        ),
    );
    server.url(&format!("/{who}/"))
}

/// The confirmation mail sent to `email`, quoted-printable undone; waits for it thirty seconds
/// at most.
async fn confirmation_mail(smtp: &SmtpSink, email: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mails = smtp.messages();
        if let Some(mail) = mails.iter().find(|m| m.contains(&format!("To: {email}")) && m.contains("/join/confirm/")) {
            return mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
        }
        assert!(Instant::now() < deadline, "no confirmation mail to {email} among {} mail(s)", mails.len());
        smtp.wait_for(mails.len() + 1).await;
    }
}

/// The learner's walk at one window: join from the course's page, confirm from the mail, read
/// the next steps, then (after a harvest and an award) the private page's list of posts.
async fn walk(
    app: &TestApp,
    server: &FeedServer,
    smtp: &SmtpSink,
    browser: &Client,
    dir: &Path,
    (w, h, label): (u32, u32, &str),
    who: &str,
) {
    let slug = cairn::demo::DEMO_SLUG;
    let email = format!("{who}@example.edu");
    let blog = serve_blog(server, who);
    set_viewport(browser, w, h).await;

    // The join page names the course and its hashtags.
    browser.goto(&app.url(&format!("/join?course={slug}"))).await.unwrap();
    assert_eq!(viewport(browser).await, i64::from(w), "the viewport at {label}");
    assert_eq!(text(browser, "main h1").await, format!("Join {COURSE}"));
    let tags = text(browser, "main code.hashtag").await;
    assert!(tags.starts_with("#el30-"), "{tags}");
    check_layout(
        browser,
        dir,
        &format!("walk-join-{label}"),
        &[
            ("header", "header.site"),
            ("title", "main h1"),
            ("intro", "main > p"),
            ("field", "#join-form > .field"),
            ("name shown", "#join-form > fieldset"),
            ("choice", "#join-form fieldset label.check"),
            ("pseudonym", "#f-pseudonym"),
            ("newsletter", "#join-form > label.check"),
            ("subscribe", "#join-form button[type=submit]"),
            ("footer", "footer.site"),
        ],
    )
    .await;
    let newsletter = browser.find(Locator::Css("#join-form input[name=newsletter]")).await.unwrap();
    assert_eq!(newsletter.prop("checked").await.unwrap().as_deref(), Some("false"), "the newsletter is not pre-ticked");
    browser.find(Locator::Css("#f-name")).await.unwrap().send_keys(&format!("{who} Learner")).await.unwrap();
    browser.find(Locator::Css("#f-email")).await.unwrap().send_keys(&email).await.unwrap();
    browser.find(Locator::Css("#f-url")).await.unwrap().send_keys(&blog).await.unwrap();
    browser.find(Locator::Css("#join-form button[type=submit]")).await.unwrap().click().await.unwrap();
    let sent = wait_for(browser, "main p[role=status]").await.text().await.unwrap();
    assert!(sent.contains("3 post(s)") && sent.contains(&email), "{sent}");
    let plain = [("header", "header.site"), ("title", "main h1"), ("text", "main > p"), ("footer", "footer.site")];
    check_layout(browser, dir, &format!("walk-sent-{label}"), &plain).await;

    // The mail, caught by the SMTP listener, names the course; its link opens the confirmation.
    let mail = confirmation_mail(smtp, &email).await;
    assert!(mail.contains(&format!("Subject: Confirm your feed for {COURSE}")), "{mail}");
    let confirm = crate::join::link_in(&mail, &app.address, "/join/confirm/");
    browser.goto(&confirm).await.unwrap();
    let button = wait_for(browser, "main form button[type=submit]").await;
    assert_eq!(button.text().await.unwrap(), "Confirm my subscription");
    check_layout(
        browser,
        dir,
        &format!("walk-confirm-{label}"),
        &[&plain[..], &[("button", "main form button")]].concat(),
    )
    .await;
    button.click().await.unwrap();

    // The subscribed page: the course, its hashtags and tasks, its page, the private page.
    wait_for(browser, "ol.next-steps").await;
    assert_eq!(text(browser, "main h1").await, format!("You are subscribed to {COURSE}"));
    let steps = text(browser, "ol.next-steps").await;
    for want in ["#el30-data", "Open up a data source", "#el30-graph", "Map your learning network"] {
        assert!(steps.contains(want), "the next steps name {want}: {steps}");
    }
    let course_link = browser
        .find(Locator::Css(&format!("ol.next-steps a[href='/courses/{slug}']")))
        .await
        .expect("the next steps link the course's page");
    assert!(course_link.text().await.unwrap().contains(COURSE));
    let private = browser.find(Locator::Css("ol.next-steps a#private-page")).await.expect("the private page's link");
    assert!(private.attr("href").await.unwrap().unwrap().starts_with("/subscription/"));
    check_layout(
        browser,
        dir,
        &format!("walk-subscribed-{label}"),
        &[
            ("header", "header.site"),
            ("title", "main h1"),
            ("status", "main p[role=status]"),
            ("next", "main h2"),
            ("step", "ol.next-steps > li"),
            ("task", "ol.next-steps .task-tags > li"),
            ("footer", "footer.site"),
        ],
    )
    .await;

    // A harvest finds the three posts; the instructor awards one of them.
    let summary = crate::harvest::pass(app).await;
    assert_eq!(summary.added, 3, "{summary:?}");
    let post = {
        let links = cairn::db::links::recent(&mut app.pool.get().unwrap(), None, 100).unwrap();
        let name = format!("{who} Learner");
        links.iter().find(|v| v.link.title == "Data & me" && v.author == name).expect("the post is collected").link.id
    };
    let assertion = crate::badges::award_post(app, post, "el30-data").await;
    let assertion_path = assertion.strip_prefix(&app.address).unwrap().to_string();

    // The private page lists the posts: found, tied to which task, awarded or not.
    private.click().await.unwrap();
    wait_for(browser, "ul.my-posts").await;
    assert_eq!(text(browser, "main p.courses").await, format!("Your course: {COURSE}."), "the private page names it");
    browser
        .find(Locator::Css(&format!("main p.courses a[href='/courses/{slug}']")))
        .await
        .expect("the private page links the course's page");
    let posts: Vec<Value> = serde_json::from_value(
        browser
            .execute(
                "return [...document.querySelectorAll('ul.my-posts > li')].map(li => ({
                   text: li.innerText,
                   badges: [...li.querySelectorAll('a[href^=\"/assertions/\"]')].map(a => a.getAttribute('href'))}));",
                vec![],
            )
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(posts.len(), 3, "{posts:?}");
    let post_titled = |title: &str| {
        posts
            .iter()
            .find(|p| p["text"].as_str().unwrap().starts_with(title))
            .unwrap_or_else(|| panic!("no post {title:?} in {posts:?}"))
    };
    let data = post_titled("Data & me");
    let data_text = data["text"].as_str().unwrap();
    assert!(
        data_text.contains("Counts for Open up a data source #el30-data — badge awarded"),
        "the awarded post: {data_text}"
    );
    assert!(data_text.contains("#el30-cloud — not awarded yet"), "the post's other task: {data_text}");
    assert_eq!(data["badges"], json!([assertion_path]), "the award links its badge");
    let other = post_titled("Not about databases")["text"].as_str().unwrap().to_string();
    assert!(other.contains("Not counted for a task"), "{other}");
    check_layout(
        browser,
        dir,
        &format!("walk-private-{label}"),
        &[
            ("header", "header.site"),
            ("title", "main h1"),
            ("course", "main p.courses"),
            ("text", "main > p"),
            ("subscription form", "main > form.card"),
            ("section", "main > h2"),
            ("post", "ul.my-posts > li"),
            ("task", "ul.my-posts > li li"),
            ("badge", "ul.my-badges > li"),
            ("footer", "footer.site"),
        ],
    )
    .await;

    // The award's link opens its verification page.
    browser
        .find(Locator::Css(&format!("ul.my-posts a[href='{assertion_path}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(browser, "section.verified").await;
    assert_eq!(text(browser, "main h1").await, "Open up a data source");
}

#[tokio::test]
async fn a_learner_joins_confirms_and_finds_their_posts_on_a_desktop_and_a_phone() {
    let server = FeedServer::start().await;
    let smtp = SmtpSink::start().await;
    let app = crate::harvest::app_for(&server, |s| {
        s.mail.smtp_host = Some("127.0.0.1".into());
        s.mail.smtp_port = smtp.port;
        s.mail.smtp_tls = cairn::config::SmtpTls::None;
    })
    .await;
    // The instructor awards through the Reader's form, beside the learner's browser.
    app.login().await;
    let (dir, _guard) = shots_dir();
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    // One learner at each width, each from joining to their private page.
    walk(&app, &server, &smtp, &browser, &dir, WINDOWS[0], "ada").await;
    walk(&app, &server, &smtp, &browser, &dir, WINDOWS[1], "bo").await;
    let _ = browser.close().await;
}

/// The comment the instructor writes with the award, in Markdown.
const COMMENT: &str = "A **careful** post: it names the data source and [its licence](https://example.org/licence).";

#[tokio::test]
async fn the_verification_page_leads_with_a_summary_and_plain_checks_on_a_desktop_and_a_phone() {
    // One award makes a block, so the page can say it is recorded on the chain.
    let app = crate::helpers::spawn_with(|s| s.chain.records_per_block = 1).await;
    let url = {
        let mut c = app.pool.get().unwrap();
        cairn::demo::seed(&mut c).unwrap();
        let raster = cairn::badges::bake::RasterCache::default();
        let issuer = cairn::badges::award::Issuer { base: &app.address, raster: &raster, signer: app.ledger.key() };
        let req = cairn::app::award::HashtagAward {
            task: "#el30-data".into(),
            recipient: "lin@example.edu".into(),
            evidence: "https://lin.example.org/2026/11/my-data-post".into(),
            name: Some("Lin E.".into()),
            narrative: Some(COMMENT.into()),
        };
        let award = cairn::app::award::award_by_hashtag(&mut c, &issuer, &req, cairn::clock::system_now()).unwrap();
        app.url(&format!("/assertions/{}", award.public_id))
    };
    app.ledger.wake.notify_one();
    crate::chain::wait_for_height(&app, 1).await;

    let (dir, _guard) = shots_dir();
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    for (w, h, label) in WINDOWS {
        set_viewport(&browser, w, h).await;
        browser.goto(&url).await.unwrap();
        assert_eq!(viewport(&browser).await, i64::from(w), "the viewport at {label}");
        assert_eq!(text(&browser, "main h1").await, "Open up a data source");

        // The summary: to whom, what, in which course, by whom, when.
        let summary: Vec<(String, String)> = serde_json::from_value(
            browser
                .execute(
                    "return [...document.querySelectorAll('dl.summary > dt')]
                       .map(dt => [dt.innerText.trim(), dt.nextElementSibling.innerText.trim()]);",
                    vec![],
                )
                .await
                .unwrap(),
        )
        .unwrap();
        let term = |t: &str| {
            summary
                .iter()
                .find(|(k, _)| k == t)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("the summary has no {t:?}: {summary:?}"))
        };
        assert!(term("Issued to").starts_with("Lin E."), "{summary:?}");
        assert!(term("Badge").contains("Open up a data source"), "{summary:?}");
        assert_eq!(term("Course"), COURSE);
        assert_eq!(term("Issued by"), "Test University");
        let issued = browser.find(Locator::Css("dl.summary time[datetime]")).await.expect("the date as a <time>");
        assert!(!issued.text().await.unwrap().is_empty() && issued.attr("datetime").await.unwrap().is_some());

        // The Verified box: each check in plain words, each passed.
        assert_eq!(text(&browser, "section.verified h2").await, "Verified");
        let checks: Vec<(String, String)> = serde_json::from_value(
            browser
                .execute(
                    "return [...document.querySelectorAll('section.verified ul.checks > li')]
                       .map(li => [li.className, li.innerText]);",
                    vec![],
                )
                .await
                .unwrap(),
        )
        .unwrap();
        let wanted = [
            "Signature valid",
            "Not revoked",
            "Not expired",
            "Recorded on the recognition chain, in block 1; 1 confirmation so far",
        ];
        assert_eq!(checks.len(), wanted.len(), "{checks:?}");
        for ((class, said), want) in checks.iter().zip(wanted) {
            assert_eq!(class, "check-passed", "{said}");
            assert!(said.contains(want), "{said:?} says {want:?}");
        }

        // The instructor's comment, labelled, rendered from Markdown.
        assert_eq!(text(&browser, "section.comment h2").await, "The instructor's comment");
        assert_eq!(text(&browser, "section.comment .narrative strong").await, "careful");
        let licence = browser.find(Locator::Css("section.comment .narrative a")).await.expect("the comment's link");
        assert_eq!(licence.attr("href").await.unwrap().as_deref(), Some("https://example.org/licence"));
        let comment = text(&browser, "section.comment .narrative").await;
        assert!(!comment.contains("**") && !comment.contains("]("), "the comment is rendered: {comment}");

        check_layout(
            &browser,
            &dir,
            &format!("walk-verification-{label}"),
            &[
                ("header", "header.site"),
                ("title", "main h1"),
                ("status", "main .status"),
                ("badge", "img.badge"),
                ("award line", ".award-line"),
                ("achievement", ".achievement"),
                ("term", "dl.summary > dt"),
                ("detail", "dl.summary > dd"),
                ("verified", "section.verified h2"),
                ("check", "section.verified ul.checks > li"),
                ("how", "section.verified p.how"),
                ("comment", "section.comment h2"),
                ("comment text", "section.comment .narrative"),
                ("downloads", "section.downloads dl > *"),
                ("share", "section.share"),
                ("recipient check", "section.check"),
                ("footer", "footer.site"),
            ],
        )
        .await;
    }
    let _ = browser.close().await;
}
