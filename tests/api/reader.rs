//! The Reader's in-page actions report what really happened: Tie answers JSON with its card,
//! the Tie select starts on the post's own course, unusual awards are confirmed first (alone
//! and in bulk), bulk results name learners and badges, and a revoked badge can be issued again
//! after the learner was told why.

use std::time::{Duration, Instant};

use crate::badges::{LEARNER, task_id};
use crate::feedserver::{FeedServer, Reply, fixture};
use crate::harvest::{app_for, pass};
use crate::helpers::TestApp;

/// The demo course, Ada's feed harvested (her post "Data & me" is tagged #el30-data), the
/// instructor signed in, and a second course whose one task, #aa-other, sorts before every
/// task of the demo course.
async fn course_with_post(adjust: impl FnOnce(&mut cairn::config::Settings)) -> (TestApp, FeedServer, i64, i64) {
    let server = FeedServer::start().await;
    server.set("/f.xml", Reply::xml(fixture("rss2.xml")));
    let app = app_for(&server, adjust).await;
    {
        let mut c = app.pool.get().unwrap();
        let now = cairn::clock::system_now();
        let author = cairn::db::feeds::find_or_create_author(&mut c, "Ada Lovelace", Some(LEARNER), now).unwrap();
        cairn::db::feeds::create_feed(
            &mut c,
            cairn::db::feeds::NewFeed {
                author_id: author.id,
                url: &server.url("/f.xml"),
                title: "",
                site_url: None,
                status: cairn::db::feeds::FeedStatus::Active,
                confirm_token_hash: None,
                manage_token_hash: None,
            },
            now,
        )
        .unwrap();
    }
    pass(&app).await;
    app.login().await;
    let course = app.create_course("Other course").await;
    let module = app.create_module(course, "Elsewhere").await;
    let res = app.create_task(module, "Other task", "#aa-other").await;
    assert!(res.status().is_redirection(), "{}", res.text().await.unwrap());
    let links = cairn::db::links::recent(&mut app.pool.get().unwrap(), None, 10).unwrap();
    let post = links.iter().find(|v| v.link.title == "Data & me").unwrap();
    (app, server, post.link.id, post.link.author_id)
}

async fn post_json(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut body: Vec<(String, String)> = vec![("csrf_token".into(), app.csrf().await)];
    body.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let res = app.client.post(app.url(path)).header("accept", "application/json").form(&body).send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} answered no JSON ({e}): {text}")))
}

fn awards_of(app: &TestApp, post: i64) -> Vec<cairn::db::awards::Award> {
    cairn::db::awards::for_links(&mut app.pool.get().unwrap(), &[post]).unwrap()
}

/// The card of `post` in the Reader's page.
fn card_of(page: &str, post: i64) -> String {
    let start = page.find(&format!("id=\"link-{post}\"")).expect("the post's card");
    let end = page[start..].find("</article>").map_or(page.len(), |e| start + e);
    page[start..end].to_string()
}

/// The Tie select of a card.
fn tie_select(card: &str, post: i64) -> String {
    let start = card.find(&format!("<select id=\"tie-{post}\"")).expect("the Tie select");
    let end = card[start..].find("</select>").unwrap() + start;
    card[start..end].to_string()
}

#[tokio::test]
async fn tie_in_place_answers_json_with_the_real_outcome_and_starts_on_the_posts_course() {
    let (app, _server, post, _) = course_with_post(|_| {}).await;
    let other = task_id(&app, "aa-other");

    // The Tie select: the post's own course first and one of its tasks selected, not the
    // alphabetically first task (#aa-other); every course is a group.
    let page = app.get_html("/admin/reader").await;
    let select = tie_select(&card_of(&page, post), post);
    let first_group = select.find("<optgroup").unwrap();
    let other_group = select.find("<optgroup label=\"Other course\">").expect("the other course's group");
    assert!(
        select[first_group..].starts_with("<optgroup label=\"E-Learning 3.0 (this post&#x27;s course)\">")
            || select[first_group..first_group + 80].contains("(this post"),
        "{select}"
    );
    assert!(first_group < other_group, "{select}");
    let selected = select.find(" selected>").expect("a task preselected");
    assert!(selected < other_group, "the selected task is in the post's course: {select}");
    assert!(!select[..selected].ends_with(&format!("value=\"{other}\"")), "{select}");

    // Tie with JavaScript: JSON with the outcome and the card drawn again, and it is stored.
    let (status, answer) =
        post_json(&app, &format!("/admin/links/{post}/tie"), &[("task_id", &other.to_string()), ("tied", "1")]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["message"], "Tied to #aa-other.");
    assert!(answer["card"].as_str().unwrap().contains("<code class=\"hashtag\">#aa-other</code>"), "{answer}");
    let tied = cairn::db::links::tasks_of_link(&mut app.pool.get().unwrap(), post).unwrap();
    assert!(tied.iter().any(|t| t.id == other));

    let (status, answer) =
        post_json(&app, &format!("/admin/links/{post}/tie"), &[("task_id", &other.to_string()), ("tied", "0")]).await;
    assert_eq!((status, answer["message"].as_str()), (200, Some("Untied from #aa-other.")), "{answer}");
    let tied = cairn::db::links::tasks_of_link(&mut app.pool.get().unwrap(), post).unwrap();
    assert!(!tied.iter().any(|t| t.id == other));

    // Without JavaScript the same form redirects back, and the next page says what happened.
    let res = app
        .post_form(
            &format!("/admin/links/{post}/tie"),
            &[("task_id", &other.to_string()), ("tied", "1"), ("back", "/admin/reader")],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert!(app.get_html("/admin/reader").await.contains("Tied to #aa-other."));

    // Star and dismiss report their outcome too; a failure is an error in JSON, not a 303.
    let (status, answer) =
        post_json(&app, "/admin/reader/flag", &[("link_id", &post.to_string()), ("flag", "starred"), ("on", "1")])
            .await;
    assert_eq!((status, answer["message"].as_str()), (200, Some("Post starred.")), "{answer}");
    let (status, answer) =
        post_json(&app, "/admin/reader/flag", &[("link_id", "999999"), ("flag", "dismissed"), ("on", "1")]).await;
    assert_eq!(status, 404, "{answer}");
    assert!(answer["error"]["message"].is_string(), "{answer}");
}

#[tokio::test]
async fn an_award_of_another_courses_task_is_confirmed_before_it_is_made() {
    let (app, _server, post, _) = course_with_post(|_| {}).await;
    let other = task_id(&app, "aa-other").to_string();
    let fields = [("link_id", post.to_string()), ("task_id", other.clone()), ("back", "/admin/reader".into())];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // With JavaScript: JSON asking to confirm, naming the post, learner, badge and why.
    let (status, answer) = post_json(&app, "/admin/reader/award", &fields).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["needs_confirmation"], true, "{answer}");
    let doubt = &answer["awards"][0];
    assert_eq!(doubt["learner"], "Ada Lovelace");
    assert_eq!(doubt["badge"], "#aa-other");
    assert_eq!(doubt["post"], "Data & me");
    assert!(doubt["why"].as_str().unwrap().contains("another course"), "{answer}");
    assert!(awards_of(&app, post).is_empty(), "nothing awarded before the confirmation");

    // Without: a page that names them and posts again with confirm=1.
    let res = app.post_form("/admin/reader/award", &fields).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("Confirm the award") && page.contains("Ada Lovelace") && page.contains("#aa-other"),
        "{page}"
    );
    assert!(page.contains(r#"name="confirm" value="1""#), "{page}");
    assert!(awards_of(&app, post).is_empty());

    let mut confirmed = fields.clone();
    confirmed.push(("confirm", "1"));
    let res = app.post_form("/admin/reader/award", &confirmed).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let made = awards_of(&app, post);
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].task_id.to_string(), other);

    // A task the post is tagged for needs no confirmation; the answer names badge and learner.
    let data = task_id(&app, "el30-data").to_string();
    let (status, answer) =
        post_json(&app, "/admin/reader/award", &[("link_id", &post.to_string()), ("task_id", &data)]).await;
    assert_eq!(status, 200, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.starts_with("Badge #el30-data awarded to Ada Lovelace: http"), "{answer}");
    assert!(answer["card"].as_str().unwrap().contains("Revoke #el30-data from Ada Lovelace"), "{answer}");
    assert_eq!(awards_of(&app, post).len(), 2);
}

#[tokio::test]
async fn a_bulk_award_across_courses_asks_first_and_its_results_name_learners_and_badges() {
    let (app, _server, post, author) = course_with_post(|_| {}).await;
    let other = task_id(&app, "aa-other").to_string();
    let p = post.to_string();
    let res =
        app.post_form("/admin/reader/bulk", &[("link_id", &p), ("task_id", &other), ("back", "/admin/reader")]).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("Confirm the award") && page.contains("Ada Lovelace") && page.contains("another course"),
        "{page}"
    );
    assert!(
        page.contains(r#"action="/admin/reader/bulk""#) && page.contains(&format!(r#"name="link_id" value="{p}""#))
    );
    assert!(awards_of(&app, post).is_empty(), "nothing awarded before the confirmation");

    let res = app
        .post_form(
            "/admin/reader/bulk",
            &[("link_id", &p), ("task_id", &other), ("back", "/admin/reader"), ("confirm", "1")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    let made = awards_of(&app, post);
    assert_eq!(made.len(), 1);
    assert!(page.contains("Awarded 1 badge(s)."), "{page}");
    assert!(page.contains(&format!(r#"<a href="/admin/learners/{author}">Ada Lovelace</a>"#)), "{page}");
    assert!(
        page.contains(&format!(
            r#"<a href="{}">#aa-other</a> awarded"#,
            app.url(&format!("/assertions/{}", made[0].public_id))
        )),
        "{page}"
    );
    assert!(!page.contains(&format!("post {post}")), "{page}");

    // Refusals name the learner and the badge too (JSON alike); a post that is gone is listed
    // as such, without failing the others.
    let (status, answer) = post_json(
        &app,
        "/admin/reader/bulk",
        &[("link_id", &p), ("link_id", "999999"), ("task_id", &other), ("confirm", "1")],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["message"], "Awarded 0 badge(s). Not awarded: 2.");
    assert!(answer["results"][1]["error"].is_string(), "{answer}");
    let r = &answer["results"][0];
    assert_eq!((r["learner"].as_str(), r["badge"].as_str()), (Some("Ada Lovelace"), Some("#aa-other")), "{answer}");
    assert_eq!(r["learner_url"], format!("/admin/learners/{author}"));
    assert!(r["error"].as_str().unwrap().contains("already has the badge"), "{answer}");
}

#[tokio::test]
async fn a_revoked_badge_names_badge_and_learner_mails_the_reason_and_can_be_issued_again() {
    let smtp = crate::smtp::SmtpSink::start().await;
    let port = smtp.port;
    let (app, _server, post, _) = course_with_post(|s| {
        s.mail.smtp_host = Some("127.0.0.1".into());
        s.mail.smtp_port = port;
        s.mail.smtp_tls = cairn::config::SmtpTls::None;
    })
    .await;
    let url = crate::badges::award_post(&app, post, "el30-data").await;
    let public_id = url.rsplit('/').next().unwrap().to_string();
    let card = card_of(&app.get_html("/admin/reader").await, post);
    assert!(card.contains("Revoke #el30-data from Ada Lovelace"), "the confirm prompt names both: {card}");

    let (status, answer) = post_json(
        &app,
        &format!("/admin/awards/{public_id}/revoke"),
        &[("reason", "Copied from a classmate"), ("back", "/admin/reader")],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["message"].as_str().unwrap().starts_with("Badge #el30-data revoked from Ada Lovelace"), "{answer}");
    let card = answer["card"].as_str().unwrap();
    assert!(card.contains("revoked") && card.contains("Re-issue #el30-data to Ada Lovelace"), "{card}");

    // The learner is told, with the reason, at the real SMTP listener.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mail = loop {
        app.notifier.deliver_due().await.unwrap();
        if let Some(m) = smtp.messages().into_iter().find(|m| m.contains("Copied from a classmate")) {
            break m;
        }
        assert!(Instant::now() < deadline, "no revocation mail: {:?}", smtp.messages());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(mail.contains(LEARNER) && mail.contains("revoked") && mail.contains(&public_id), "{mail}");

    // Re-issued from the card: a new award of the same badge, the revoked one kept.
    let data = task_id(&app, "el30-data").to_string();
    let res = app
        .post_form(
            "/admin/reader/award",
            &[("link_id", &post.to_string()), ("task_id", &data), ("back", "/admin/reader")],
        )
        .await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let made = awards_of(&app, post);
    assert_eq!(made.len(), 2);
    assert_eq!(made.iter().filter(|a| a.revoked_at.is_some()).count(), 1);
    let fresh = made.iter().find(|a| a.revoked_at.is_none()).unwrap();
    assert_ne!(fresh.public_id, public_id);
    let card = card_of(&app.get_html("/admin/reader").await, post);
    assert!(card.contains(&fresh.public_id) && card.contains("Revoke #el30-data from Ada Lovelace"), "{card}");
    // A second award while one stands is still refused.
    let (status, answer) =
        post_json(&app, "/admin/reader/award", &[("link_id", &post.to_string()), ("task_id", &data)]).await;
    assert_eq!(status, 409, "{answer}");
}

/// Waits (at most ten seconds) for a JavaScript dialog; returns its text.
pub async fn dialog_text(browser: &fantoccini::Client) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = browser.get_alert_text().await {
            return text;
        }
        assert!(Instant::now() < deadline, "no dialog appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (at most ten seconds) until the Reader's status line holds `words`; returns it.
async fn status_saying(browser: &fantoccini::Client, words: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = browser.find(fantoccini::Locator::Id("reader-status")).await.unwrap().text().await.unwrap();
        if text.contains(words) {
            return text;
        }
        assert!(Instant::now() < deadline, "the status line never said {words:?}: {text:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn tie_and_the_a_key_work_in_place_in_a_real_browser() {
    use fantoccini::Locator;
    let (app, _server, post, _) = course_with_post(|_| {}).await;
    let other = task_id(&app, "aa-other");
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    let result = async {
        crate::browser::sign_in(&browser, &app.url("/login")).await?;
        browser.goto(&app.url("/admin/reader")).await?;
        let card = format!("#link-{post}");
        // Tie with JavaScript on: the page says the tie was made (not "could not be reached").
        let select = browser.find(Locator::Css(&format!("#tie-{post}"))).await?;
        select.select_by_value(&other.to_string()).await?;
        browser.find(Locator::Css(&format!("{card} .actions form[action$='/tie'] button"))).await?.click().await?;
        let status = status_saying(&browser, "Tied to #aa-other.").await;
        assert!(!status.contains("could not be reached"), "{status}");
        let tags = browser.find(Locator::Css(&format!("{card} ul.awards"))).await?.text().await?;
        assert!(tags.contains("#aa-other"), "the card was drawn again: {tags}");

        // The a key asks first, naming badge and learner; dismissing awards nothing.
        browser.execute(&format!("document.querySelector('{card}').focus()"), vec![]).await?;
        browser.active_element().await?.send_keys("a").await?;
        let asked = dialog_text(&browser).await;
        assert!(asked.contains("#aa-other") && asked.contains("Ada Lovelace"), "{asked}");
        browser.dismiss_alert().await?;
        assert!(awards_of(&app, post).is_empty(), "a dismissed confirmation awards nothing");
        browser.execute(&format!("document.querySelector('{card}').focus()"), vec![]).await?;
        browser.active_element().await?.send_keys("a").await?;
        dialog_text(&browser).await;
        browser.accept_alert().await?;
        status_saying(&browser, "Badge #aa-other awarded to Ada Lovelace").await;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    result.expect("browser flow");
    let tied = cairn::db::links::tasks_of_link(&mut app.pool.get().unwrap(), post).unwrap();
    assert!(tied.iter().any(|t| t.id == other));
    assert_eq!(awards_of(&app, post).len(), 1);
}
