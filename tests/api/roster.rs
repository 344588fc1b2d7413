//! The learner roster: `/admin/learners` and a course's, searched, sorted and paged; a
//! learner's page with the address the instructor adds; a course's progress grid and its
//! "has not posted for this module" filter. Learners, feeds and posts are seeded in the store;
//! the award is made through the Reader's form.

use diesel::connection::SimpleConnection as _;

use crate::helpers::{TestApp, spawn_app};

/// Learners of the course besides Ada and Bob, each with one post tied to the first task.
const FILLERS: i64 = 60;

struct Seeded {
    app: TestApp,
    course: i64,
    week1: i64,
    week2: i64,
    ada: i64,
    bob: i64,
    ada_post: i64,
}

fn author_id(app: &TestApp, name: &str) -> i64 {
    use cairn::db::schema::authors;
    use diesel::prelude::*;
    authors::table.filter(authors::name.eq(name)).select(authors::id).first(&mut app.pool.get().unwrap()).unwrap()
}

/// A course of two modules, one task each; Ada (email, working feed, three posts, one tied to
/// week 1's task and awarded, one naming week 2's task but untied), Bob (imported without an
/// email, a feed that never succeeded, no post), Cy (email, a feed never fetched, a tied post
/// in week 2), and [`FILLERS`] learners with a post tied to week 1's task.
async fn seeded() -> Seeded {
    let app = spawn_app().await;
    app.login().await;
    let course = app.create_course("Open Learning").await;
    let week1 = app.create_module(course, "Week one").await;
    let week2 = app.create_module(course, "Week two").await;
    assert_eq!(app.create_task(week1, "Introduce yourself", "#ro-hello").await.status(), 303);
    assert_eq!(app.create_task(week2, "Map your network", "#ro-map").await.status(), 303);
    let hello = crate::badges::task_id(&app, "ro-hello");
    let map = crate::badges::task_id(&app, "ro-map");
    let now = cairn::clock::system_now();
    app.pool
        .get()
        .unwrap()
        .batch_execute(&format!(
            "INSERT INTO authors (name, email, created_at) VALUES ('Ada Lovelace', 'ada@example.edu', {now}),
                 ('Bob Imported', NULL, {now}), ('Cy Newcomer', 'cy@example.edu', {now});
             UPDATE authors SET name_shown = 'initials' WHERE name = 'Ada Lovelace';
             INSERT INTO feeds (author_id, url, site_url, title, status, next_poll_at, last_polled_at,
                                last_success_at, last_error, error_count, created_at, updated_at)
             SELECT id, 'https://ada.example.org/feed.xml', 'https://ada.example.org/', 'Ada', 'active', {now},
                    {now}, {now}, NULL, 0, {now}, {now} FROM authors WHERE name = 'Ada Lovelace'
             UNION ALL
             SELECT id, 'https://bob.example.org/feed.xml', NULL, 'Bob', 'active', {now}, {now}, NULL,
                    'HTTP 404', 3, {now}, {now} FROM authors WHERE name = 'Bob Imported'
             UNION ALL
             SELECT id, 'https://cy.example.org/feed.xml', NULL, 'Cy', 'active', {now}, NULL, NULL, NULL, 0,
                    {now}, {now} FROM authors WHERE name = 'Cy Newcomer';
             INSERT INTO links (feed_id, author_id, item_key, url, title, published_at, harvested_at, changed_at,
                                content_hash, authorship)
             SELECT f.id, f.author_id, 'id:' || n.i, 'https://ada.example.org/' || n.i, 'Ada post ' || n.i,
                    {now} - 86400 * n.i, {now}, {now}, 'h', 'own'
             FROM feeds f, (SELECT 1 AS i UNION ALL SELECT 2 UNION ALL SELECT 3) n WHERE f.title = 'Ada';
             INSERT INTO links (feed_id, author_id, item_key, url, title, published_at, harvested_at, changed_at,
                                content_hash, authorship)
             SELECT f.id, f.author_id, 'id:1', 'https://cy.example.org/1', 'Cy maps', {now} - 10, {now}, {now},
                    'h', 'own' FROM feeds f WHERE f.title = 'Cy';
             INSERT INTO link_tasks (link_id, task_id, source, tied, created_at)
             SELECT id, {hello}, 'hashtag', 1, {now} FROM links WHERE title = 'Ada post 1'
             UNION ALL SELECT id, {map}, 'hashtag', 0, {now} FROM links WHERE title = 'Ada post 2'
             UNION ALL SELECT id, {map}, 'manual', 1, {now} FROM links WHERE title = 'Cy maps';
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {FILLERS})
             INSERT INTO authors (name, email, created_at)
             SELECT 'Filler ' || printf('%02d', i), 'filler' || i || '@example.org', {now} FROM n;
             INSERT INTO feeds (author_id, url, title, status, next_poll_at, last_polled_at, last_success_at,
                                error_count, created_at, updated_at)
             SELECT id, 'https://filler' || id || '.example.net/feed.xml', name, 'active', {now}, {now}, {now}, 0,
                    {now}, {now} FROM authors WHERE name LIKE 'Filler %';
             INSERT INTO links (feed_id, author_id, item_key, url, title, published_at, harvested_at, changed_at,
                                content_hash, authorship)
             SELECT id, author_id, 'id:1', 'https://filler' || author_id || '.example.net/1', 'Hello', {now} - 5000,
                    {now}, {now}, 'h', 'own' FROM feeds WHERE title LIKE 'Filler %';
             INSERT INTO link_tasks (link_id, task_id, source, tied, created_at)
             SELECT id, {hello}, 'hashtag', 1, {now} FROM links WHERE title = 'Hello';"
        ))
        .unwrap();
    let ada = author_id(&app, "Ada Lovelace");
    let bob = author_id(&app, "Bob Imported");
    let ada_post = {
        use cairn::db::schema::links;
        use diesel::prelude::*;
        links::table
            .filter(links::title.eq("Ada post 1"))
            .select(links::id)
            .first(&mut app.pool.get().unwrap())
            .unwrap()
    };
    crate::badges::award_post(&app, ada_post, "ro-hello").await;
    Seeded { app, course, week1, week2, ada, bob, ada_post }
}

/// The roster table's row of learner `id`, or "" when it is not on the page.
fn row(html: &str, id: i64) -> String {
    let start = format!("<tr id=\"learner-{id}\">");
    html.find(&start).map_or(String::new(), |i| html[i..i + html[i..].find("</tr>").unwrap()].to_string())
}

/// The learner names of the roster table, in order.
fn names(html: &str) -> Vec<String> {
    html.split("<tr id=\"learner-")
        .skip(1)
        .map(|r| {
            let a = r.find("\">").unwrap();
            let link = &r[a..];
            let start = link.find("/admin/learners/").unwrap();
            let text = &link[start..];
            let s = text.find('>').unwrap() + 1;
            text[s..s + text[s..].find('<').unwrap()].to_string()
        })
        .collect()
}

#[tokio::test]
async fn the_roster_searches_sorts_pages_and_marks_learners_without_email_and_failing_feeds() {
    let s = seeded().await;
    let app = &s.app;
    let all = app.get_html("/admin/learners").await;
    assert!(all.contains("href=\"/admin/learners\""), "the navigation links the roster");
    assert!(all.contains("learners 1–50 of 63"), "{}", &all[all.find("roster-count").unwrap()..][..100]);
    let names_1 = names(&all);
    assert_eq!(names_1.len(), 50);
    assert_eq!(names_1[0], "Ada Lovelace", "sorted by name");
    assert_eq!(names_1[1], "Bob Imported");
    assert!(all.contains("href=\"/admin/learners?page=2\""), "a link to page 2");

    // Ada: email, initials shown publicly, her counts, a working feed.
    let ada = row(&all, s.ada);
    assert!(ada.contains("ada@example.edu") && ada.contains("shown as A. L."), "{ada}");
    assert!(
        ada.contains("<td>3</td><td>1</td><td>1</td>") || ada.contains("<td>3</td>\n  <td>1</td>\n  <td>1</td>"),
        "{ada}"
    );
    assert!(ada.contains("(active)"), "{ada}");
    // Bob: no address, and a feed that never succeeded is not "active".
    let bob = row(&all, s.bob);
    assert!(bob.contains("no email — cannot be awarded"), "{bob}");
    assert!(bob.contains("(failing)") && !bob.contains("(active)"), "{bob}");
    assert!(row(&all, author_id(app, "Cy Newcomer")).contains("(never fetched)"));

    let page2 = app.get_html("/admin/learners?page=2").await;
    assert!(page2.contains("learners 51–63 of 63"));
    assert_eq!(names(&page2).len(), 13);
    assert!(names(&page2).iter().all(|n| !names_1.contains(n)), "page 2 holds the others");
    let past = app.get_html("/admin/learners?page=9").await;
    assert!(past.contains("No learners") && past.contains("href=\"/admin/learners\""), "past the end, a way back");

    // Search by name, email and blog address; a LIKE wildcard is taken literally.
    for (q, who) in [("lovelace", "Ada Lovelace"), ("cy%40example", "Cy Newcomer"), ("bob.example.org", "Bob Imported")]
    {
        let html = app.get_html(&format!("/admin/learners?q={q}")).await;
        assert_eq!(names(&html), vec![who.to_string()], "search {q}");
        assert!(html.contains("learners 1–1 of 1"));
    }
    let none = app.get_html("/admin/learners?q=%25").await;
    assert!(none.contains("No learners match"), "% matches nothing literally");

    // Sorts.
    let by_posts = names(&app.get_html("/admin/learners?sort=posts").await);
    assert_eq!(by_posts[0], "Ada Lovelace");
    let by_awards = names(&app.get_html("/admin/learners?sort=awards").await);
    assert_eq!(by_awards[0], "Ada Lovelace");
    let by_last = names(&app.get_html("/admin/learners?sort=last").await);
    assert_eq!(by_last[0], "Cy Newcomer", "the latest post first");
    let last_page = names(&app.get_html("/admin/learners?sort=last&page=2").await);
    assert_eq!(last_page.last().map(String::as_str), Some("Bob Imported"), "never posted: last");

    // The course's roster: those with a tie or an award in the course (not Bob).
    let course = app.get_html(&format!("/admin/courses/{}/learners", s.course)).await;
    assert!(course.contains("learners 1–50 of 62"), "{}", &course[course.find("roster-count").unwrap()..][..100]);
    assert!(row(&course, s.bob).is_empty());
    let other = app.create_course("Empty Course").await;
    let empty = app.get_html(&format!("/admin/courses/{other}/learners")).await;
    assert!(empty.contains("No learners."));
    assert_eq!(app.get("/admin/courses/999999/learners").await.status(), 404);

    // Signed out: the sign-in page.
    let anon = crate::helpers::client();
    let res = anon.get(app.url("/admin/learners")).send().await.unwrap();
    assert!(res.status().is_redirection() || res.status() == 401, "{}", res.status());
}

#[tokio::test]
async fn the_instructor_adds_an_email_to_an_imported_learner_with_errors_next_to_the_field() {
    let s = seeded().await;
    let app = &s.app;
    let path = format!("/admin/learners/{}", s.bob);
    let page = app.get_html(&path).await;
    assert!(page.contains("no email — cannot be awarded") && page.contains("(failing)"), "learner page");

    // Invalid: 422, the message next to the field, the input kept.
    let res = app.post_form(&format!("{path}/email"), &[("email", "not an address")]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("aria-invalid=\"true\" aria-describedby=\"e-email\""), "field marked");
    assert!(
        html.contains("id=\"e-email\" role=\"alert\">&#39;not an address&#39; is not an email address")
            || html.contains("id=\"e-email\" role=\"alert\">&#x27;not an address&#x27; is not an email address"),
        "{html}"
    );
    assert!(html.contains("value=\"not an address\""));

    // Another learner's address (in another case): refused.
    let res = app.post_form(&format!("{path}/email"), &[("email", "ADA@example.edu")]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("another learner already has this address"));

    // Valid: saved, lower-cased; the roster no longer marks him.
    let res = app.post_form(&format!("{path}/email"), &[("email", " Bob@Example.edu ")]).await;
    assert_eq!(res.status(), 303);
    let page = app.get_html(&path).await;
    assert!(page.contains("<dd id=\"learner-email\">bob@example.edu</dd>"), "saved");
    assert!(!page.contains("cannot be awarded"));
    let author = cairn::db::feeds::get_author(&mut app.pool.get().unwrap(), s.bob).unwrap();
    assert_eq!(author.email.as_deref(), Some("bob@example.edu"));
    let roster = app.get_html("/admin/learners?q=bob").await;
    assert!(!row(&roster, s.bob).contains("no email"));
    assert_eq!(app.post_form("/admin/learners/999999/email", &[("email", "x@example.edu")]).await.status(), 404);

    // Ada's page: her posts with their ties, her award.
    let ada = app.get_html(&format!("/admin/learners/{}", s.ada)).await;
    assert!(ada.contains("Ada post 1") && ada.contains("tied to Introduce yourself"), "ties");
    assert!(ada.contains("not tied to a task"), "untied posts say so");
    assert!(ada.contains("A. L."), "the public name");
    assert!(ada.contains("/admin/awards/") && ada.contains(">valid<"), "the award");
    let _ = s.ada_post;
}

#[tokio::test]
async fn the_progress_grid_shows_each_task_in_words_and_who_has_not_posted_for_a_module() {
    let s = seeded().await;
    let app = &s.app;
    let grid_path = format!("/admin/courses/{}/progress", s.course);
    let grid = app.get_html(&grid_path).await;
    assert!(grid.contains("learners 1–50 of 62"));
    let hello = crate::badges::task_id(app, "ro-hello");
    let map = crate::badges::task_id(app, "ro-map");
    let ada = row(&grid, s.ada);
    assert!(
        ada.contains(&format!(
            "data-task=\"{hello}\" class=\"cell-awarded\"><span class=\"badge-state awarded\">awarded</span>"
        )),
        "{ada}"
    );
    assert!(ada.contains(&format!("data-task=\"{map}\" class=\"cell-posted\">posted")), "{ada}");
    let cy = row(&grid, author_id(app, "Cy Newcomer"));
    assert!(cy.contains(&format!("data-task=\"{map}\" class=\"cell-tied\">tied")), "{cy}");
    assert!(
        cy.contains(&format!("data-task=\"{hello}\" class=\"cell-not-posted\"><span class=\"muted\">not posted")),
        "{cy}"
    );
    assert!(grid.contains(&format!("<option value=\"{}\">who has not posted for Week two</option>", s.week2)));

    // Not posted for week 2: every learner but Ada (posted, untied) and Cy (tied).
    let w2 = app.get_html(&format!("{grid_path}?module={}", s.week2)).await;
    assert!(w2.contains("learners 1–50 of 60"), "{}", &w2[w2.find("roster-count").unwrap()..][..100]);
    assert!(row(&w2, s.ada).is_empty() && w2.contains(" selected>who has not posted for Week two"));
    let w2p2 = app.get_html(&format!("{grid_path}?module={}&page=2", s.week2)).await;
    assert!(w2p2.contains("learners 51–60 of 60"));
    // Not posted for week 1: only Cy.
    let w1 = app.get_html(&format!("{grid_path}?module={}", s.week1)).await;
    assert_eq!(names(&w1), vec!["Cy Newcomer".to_string()]);
    // An award made by address through the API (no author named) counts as Cy's.
    let token = {
        let mut c = app.pool.get().unwrap();
        let who = cairn::db::instructors::find_by_email(&mut c, crate::helpers::EMAIL).unwrap().unwrap();
        let scopes = cairn::app::tokens::parse_scopes("awards:write").unwrap();
        cairn::app::tokens::create(
            &mut c,
            &cairn::app::access::Actor::institution(cairn::app::access::Surface::Cli),
            who.id,
            "roster",
            &scopes,
            None,
            cairn::clock::system_now(),
        )
        .unwrap()
        .secret
    };
    let res = app
        .client
        .post(app.url("/api/v1/awards"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"task": "#ro-hello", "recipient": "CY@example.edu", "evidence": "https://cy.example.org/1"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let cy_id = author_id(app, "Cy Newcomer");
    let grid = app.get_html(&grid_path).await;
    assert!(row(&grid, cy_id).contains(&format!("data-task=\"{hello}\" class=\"cell-awarded\"")));
    let roster = app.get_html(&format!("/admin/courses/{}/learners?q=cy%40", s.course)).await;
    assert!(row(&roster, cy_id).contains("<td>1</td>\n  <td>1</td>\n  <td>1</td>"), "{}", row(&roster, cy_id));

    // A module of another course filters nothing.
    let other = app.create_course("Other").await;
    let foreign = app.create_module(other, "Elsewhere").await;
    let all = app.get_html(&format!("{grid_path}?module={foreign}")).await;
    assert!(all.contains("learners 1–50 of 62"));
}
