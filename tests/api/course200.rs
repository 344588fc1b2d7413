//! A course of 200 learners walked in headless Chromium: the course roster searched, the
//! progress grid and its "has not posted" view, a bulk award of another course's badge that
//! asks first and names each learner, and a badge revoked and issued again from the Reader,
//! with the revocation mail read at a real SMTP listener.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection as _;
use fantoccini::{Client, Locator};

use crate::helpers::{TestApp, spawn_with};

const LEARNERS: i64 = 200;

struct Course {
    app: TestApp,
    course: i64,
    week2: i64,
    other_task: i64,
}

/// The course "Open Course" (two modules; tasks #oc-intro in week 1 and #oc-map in week 2),
/// a second course with #oc-other, and [`LEARNERS`] learners ("Learner 001"…), each with a
/// feed on their own site and one post tied to #oc-intro; every third learner also posted for
/// #oc-map. `adjust` changes the settings first (SMTP).
async fn course(adjust: impl FnOnce(&mut cairn::config::Settings)) -> Course {
    let app = spawn_with(adjust).await;
    app.login().await;
    let course = app.create_course("Open Course").await;
    let week1 = app.create_module(course, "Week 1").await;
    let week2 = app.create_module(course, "Week 2").await;
    assert_eq!(app.create_task(week1, "Introduce yourself", "#oc-intro").await.status(), 303);
    assert_eq!(app.create_task(week2, "Map your network", "#oc-map").await.status(), 303);
    let second = app.create_course("Second Course").await;
    let elsewhere = app.create_module(second, "Elsewhere").await;
    assert_eq!(app.create_task(elsewhere, "Other task", "#oc-other").await.status(), 303);
    let intro = crate::badges::task_id(&app, "oc-intro");
    let map = crate::badges::task_id(&app, "oc-map");
    let other_task = crate::badges::task_id(&app, "oc-other");
    let now = cairn::clock::system_now();
    app.pool
        .get()
        .unwrap()
        .batch_execute(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {LEARNERS})
             INSERT INTO authors (name, email, created_at)
             SELECT 'Learner ' || printf('%03d', i), 'learner' || i || '@example.org', {now} FROM n;
             INSERT INTO feeds (author_id, url, site_url, title, status, next_poll_at, last_polled_at,
                                last_success_at, error_count, created_at, updated_at)
             SELECT id, 'https://l' || id || '.example.net/feed.xml', 'https://l' || id || '.example.net/', name,
                    'active', {now}, {now}, {now}, 0, {now}, {now} FROM authors WHERE name LIKE 'Learner %';
             INSERT INTO links (feed_id, author_id, item_key, url, title, published_at, harvested_at, changed_at,
                                content_hash, authorship)
             SELECT f.id, f.author_id, 'id:intro', 'https://l' || f.author_id || '.example.net/intro',
                    'Hello from ' || f.title, {now} - 3600 - f.author_id, {now}, {now}, 'h', 'own'
             FROM feeds f WHERE f.title LIKE 'Learner %';
             INSERT INTO links (feed_id, author_id, item_key, url, title, published_at, harvested_at, changed_at,
                                content_hash, authorship)
             SELECT f.id, f.author_id, 'id:map', 'https://l' || f.author_id || '.example.net/map',
                    'The network of ' || f.title, {now} - 60 - f.author_id, {now}, {now}, 'h', 'own'
             FROM feeds f WHERE f.title LIKE 'Learner %' AND f.author_id % 3 = 0;
             INSERT INTO link_tasks (link_id, task_id, source, tied, created_at)
             SELECT id, {intro}, 'hashtag', 1, {now} FROM links WHERE item_key = 'id:intro'
             UNION ALL SELECT id, {map}, 'hashtag', 1, {now} FROM links WHERE item_key = 'id:map';"
        ))
        .unwrap();
    Course { app, course, week2, other_task }
}

/// Waits (at most ten seconds) until `css` matches an element whose text holds `words`.
async fn text_of(browser: &Client, css: &str, words: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(e) = browser.find(Locator::Css(css)).await {
            let text = e.text().await.unwrap_or_default();
            if text.contains(words) {
                return text;
            }
            assert!(Instant::now() < deadline, "{css} never said {words:?}: {text:?}");
        } else {
            assert!(Instant::now() < deadline, "{css} never appeared");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count_awards(app: &TestApp) -> i64 {
    cairn::db::awards::count(&mut app.pool.get().unwrap()).unwrap()
}

async fn count(browser: &Client, css: &str) -> usize {
    browser.find_all(Locator::Css(css)).await.map(|v| v.len()).unwrap_or(0)
}

#[tokio::test]
async fn the_roster_and_the_progress_grid_of_200_learners_in_a_real_browser() {
    let Course { app, course, week2, .. } = course(|_| {}).await;
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    let result = async {
        crate::browser::sign_in(&browser, &app.url("/login")).await?;
        browser.set_window_size(1280, 900).await?;
        // The course roster: 200 learners, one page of 50 at a time, searched by name.
        browser.goto(&app.url(&format!("/admin/courses/{course}/learners"))).await?;
        let rows = count(&browser, "tbody tr[id^='learner-']").await;
        let body = browser.find(Locator::Css("main")).await?.text().await?;
        let q = browser.find(Locator::Css("input[name=q]")).await?;
        q.send_keys("Learner 137").await?;
        q.send_keys("\u{E007}").await?; // Enter
        text_of(&browser, "tbody", "Learner 137").await;
        let found = count(&browser, "tbody tr[id^='learner-']").await;
        // The progress grid, then the learners who have not posted for week 2.
        browser.goto(&app.url(&format!("/admin/courses/{course}/progress"))).await?;
        let grid = browser.find(Locator::Css("main")).await?.text().await?;
        browser.goto(&app.url(&format!("/admin/courses/{course}/progress?module={week2}"))).await?;
        let silent = browser.find(Locator::Css("main")).await?.text().await?;
        Ok::<_, fantoccini::error::CmdError>((rows, body, found, grid, silent))
    }
    .await;
    let _ = browser.close().await;
    let (rows, body, found, grid, silent) = result.expect("browser flow");
    assert_eq!(rows, 50, "one page of the roster");
    assert!(body.contains("200"), "the roster says how many learners: {body}");
    assert_eq!(found, 1, "the search finds one learner");
    assert!(
        grid.contains("Introduce yourself")
            && grid.contains("Map your network")
            && grid.contains("Learner 001 tied not posted"),
        "{grid}"
    );
    // Learners 3, 6, 9 … posted for week 2; 1, 2, 4 … did not.
    assert!(silent.contains("Learner 001") && silent.contains("Learner 002"), "{silent}");
    assert!(!silent.contains("Learner 003"), "learner 3 posted for week 2: {silent}");
}

#[tokio::test]
async fn a_bulk_award_of_another_courses_badge_asks_first_and_names_each_learner_in_a_real_browser() {
    let Course { app, course, other_task, .. } = course(|_| {}).await;
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    let result = async {
        crate::browser::sign_in(&browser, &app.url("/login")).await?;
        browser.goto(&app.url(&format!("/admin/reader?course={course}"))).await?;
        let boxes = browser.find_all(Locator::Css("#reader article input[type=checkbox][form=bulk]")).await?;
        let mut chosen = Vec::new();
        for b in boxes.iter().take(2) {
            chosen.push(b.attr("value").await?.unwrap_or_default());
            b.click().await?;
        }
        browser.find(Locator::Css("#bulk-task")).await?.select_by_value(&other_task.to_string()).await?;
        browser.find(Locator::Css("#bulk button[type=submit]")).await?.click().await?;
        let asked = text_of(&browser, "main", "Confirm the award").await;
        let doubts = count(&browser, "li.doubt").await;
        let before = count_awards(&app);
        browser.find(Locator::Css("main form.card button[type=submit]")).await?.click().await?;
        let results = text_of(&browser, "main", "Bulk award").await;
        let named = browser.find_all(Locator::Css("ul.bulk-results li.awarded a[href^='/admin/learners/']")).await?;
        let badges = browser.find_all(Locator::Css("ul.bulk-results li.awarded a[href*='/assertions/']")).await?;
        let mut badge_words = Vec::new();
        for b in &badges {
            badge_words.push(b.text().await?);
        }
        Ok::<_, fantoccini::error::CmdError>((chosen, asked, doubts, before, results, named.len(), badge_words))
    }
    .await;
    let _ = browser.close().await;
    let (chosen, asked, doubts, before, results, named, badge_words) = result.expect("browser flow");
    assert_eq!(chosen.len(), 2);
    assert_eq!(before, 0, "nothing is awarded before the confirmation");
    assert_eq!(doubts, 2, "each award is listed with why it is unusual: {asked}");
    assert!(asked.contains("another course") && asked.contains("#oc-other"), "{asked}");
    assert!(results.contains("Awarded 2 badge(s)."), "{results}");
    assert_eq!(named, 2, "each learner is named with a link: {results}");
    assert_eq!(badge_words, ["#oc-other", "#oc-other"], "each badge links its assertion");
    assert_eq!(count_awards(&app), 2);
}

#[tokio::test]
async fn a_badge_is_revoked_with_a_mailed_reason_and_issued_again_in_a_real_browser() {
    let smtp = crate::smtp::SmtpSink::start().await;
    let port = smtp.port;
    let Course { app, course, .. } = course(|s| {
        s.mail.smtp_host = Some("127.0.0.1".into());
        s.mail.smtp_port = port;
        s.mail.smtp_tls = cairn::config::SmtpTls::None;
    })
    .await;
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    let result = async {
        crate::browser::sign_in(&browser, &app.url("/login")).await?;
        browser.goto(&app.url(&format!("/admin/reader?course={course}"))).await?;
        let card = browser.find(Locator::Css("#reader article")).await?;
        let id = card.attr("id").await?.unwrap_or_default();
        let title = browser.find(Locator::Css(&format!("#{id} h2"))).await?.text().await?;
        // Award with a click: the page says what happened, naming badge and learner.
        browser.find(Locator::Css(&format!("#{id} form.award-form button"))).await?.click().await?;
        let awarded = text_of(&browser, "#reader-status", "awarded to").await;
        // Revoke: the button names badge and learner, and asks first.
        browser.find(Locator::Css(&format!("#{id} details summary"))).await?.click().await?;
        browser
            .find(Locator::Css(&format!("#{id} details input[name=reason]")))
            .await?
            .send_keys("Posted twice")
            .await?;
        browser.find(Locator::Css(&format!("#{id} details button.danger"))).await?.click().await?;
        let asked = crate::reader::dialog_text(&browser).await;
        browser.accept_alert().await?;
        let revoked = text_of(&browser, "#reader-status", "revoked from").await;
        // Issue it again from the same card.
        let again = browser.find(Locator::Css(&format!("#{id} form.reissue-form button"))).await?;
        let again_words = again.text().await?;
        again.click().await?;
        let reissued = text_of(&browser, "#reader-status", "awarded to").await;
        Ok::<_, fantoccini::error::CmdError>((title, awarded, asked, revoked, again_words, reissued))
    }
    .await;
    let _ = browser.close().await;
    let (title, awarded, asked, revoked, again_words, reissued) = result.expect("browser flow");
    let learner = title.trim_start_matches("Hello from ").trim_start_matches("The network of ").to_string();
    assert!(learner.starts_with("Learner "), "{title}");
    for said in [&awarded, &asked, &revoked, &again_words, &reissued] {
        assert!(said.contains(&learner), "{said:?} names {learner}");
    }
    assert!(asked.contains("Revoke #oc-"), "{asked}");
    assert!(again_words.starts_with("Re-issue #oc-"), "{again_words}");
    assert_eq!(count_awards(&app), 2, "the revoked award is kept beside the new one");

    // The learner was told why, at the real SMTP listener.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mail = loop {
        app.notifier.deliver_due().await.unwrap();
        if let Some(m) = smtp.messages().into_iter().find(|m| m.contains("Posted twice")) {
            break m;
        }
        assert!(Instant::now() < deadline, "no revocation mail: {:?}", smtp.messages());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(mail.contains("revoked"), "{mail}");
}
