//! Long instructor pages end: the Feeds page, the Posts page (`/admin/links`) and the Reader
//! are searched, filtered and paged (50, 50 and 25 a page) with counts, over more learners
//! than a page holds; errors show next to what caused them; and, in headless Chromium at
//! 1280 × 900, no long admin page is taller than a few screens with 200 learners.

use diesel::connection::SimpleConnection as _;

use crate::helpers::{TestApp, spawn_app};

/// Learners of the seeded course, numbered 001 to [`LEARNERS`].
const LEARNERS: i64 = 120;

struct Seeded {
    app: TestApp,
    open: i64,
    other: i64,
    hello: i64,
    map: i64,
    zelda: i64,
    zelda_feed: i64,
    zelda_map_post: i64,
}

/// The page at `path`, its `&` in attributes written `&amp;` however the template escapes it.
async fn html(app: &TestApp, path: &str) -> String {
    app.get_html(path).await.replace("&#38;", "&amp;")
}

fn scalar(app: &TestApp, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct One {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        v: i64,
    }
    use diesel::RunQueryDsl as _;
    diesel::sql_query(sql).get_result::<One>(&mut app.pool.get().unwrap()).unwrap().v
}

/// Two courses: "Open Learning" (tasks #pg-hello in week one, #pg-map in week two) and
/// "Other Course" (#pg-other). Learners 001–120, each with a feed (every tenth from 3 failing,
/// every tenth from 5 never fetched) and a post: 001–080 tied to #pg-hello, 081–120 to
/// #pg-other; 001–060 also have an untied post. Zelda Quill (zq@example.org, blog
/// zelda.example.net) has a post tied to #pg-hello and one naming #pg-map but untied. Paula's
/// feed is paused and Rémi's removed; neither has posts.
async fn seeded() -> Seeded {
    let app = spawn_app().await;
    app.login().await;
    let open = app.create_course("Open Learning").await;
    let week1 = app.create_module(open, "Week one").await;
    let week2 = app.create_module(open, "Week two").await;
    let other = app.create_course("Other Course").await;
    let elsewhere = app.create_module(other, "Elsewhere").await;
    assert_eq!(app.create_task(week1, "Introduce yourself", "#pg-hello").await.status(), 303);
    assert_eq!(app.create_task(week2, "Map your network", "#pg-map").await.status(), 303);
    assert_eq!(app.create_task(elsewhere, "Something else", "#pg-other").await.status(), 303);
    let hello = crate::badges::task_id(&app, "pg-hello");
    let map = crate::badges::task_id(&app, "pg-map");
    let other_task = crate::badges::task_id(&app, "pg-other");
    let now = cairn::clock::system_now();
    app.pool
        .get()
        .unwrap()
        .batch_execute(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {LEARNERS})
             INSERT INTO authors (name, email, created_at)
             SELECT 'Learner ' || printf('%03d', i), 'learner' || i || '@example.edu', {now} FROM n;
             INSERT INTO authors (name, email, created_at) VALUES ('Zelda Quill', 'zq@example.org', {now}),
                 ('Paula Paused', 'paula@example.edu', {now}), ('Rémi Removed', 'remi@example.edu', {now});
             INSERT INTO feeds (author_id, url, site_url, title, status, next_poll_at, last_polled_at,
                                last_success_at, last_error, error_count, created_at, updated_at)
             SELECT id, 'https://blog' || id || '.example.com/feed.xml', 'https://blog' || id || '.example.com/',
                    name || '''s blog', 'active', {now},
                    CASE WHEN CAST(substr(name, 9) AS INTEGER) % 10 = 5 THEN NULL ELSE {now} END,
                    CASE WHEN CAST(substr(name, 9) AS INTEGER) % 10 IN (3, 5) THEN NULL ELSE {now} END,
                    CASE WHEN CAST(substr(name, 9) AS INTEGER) % 10 = 3 THEN 'HTTP 404' END,
                    CASE WHEN CAST(substr(name, 9) AS INTEGER) % 10 = 3 THEN 3 ELSE 0 END, {now}, {now}
             FROM authors WHERE name LIKE 'Learner %';
             INSERT INTO feeds (author_id, url, site_url, title, status, next_poll_at, last_polled_at,
                                last_success_at, error_count, created_at, updated_at)
             SELECT id, 'https://zelda.example.net/feed', 'https://zelda.example.net/', 'Quill notes', 'active',
                    {now}, {now}, {now}, 0, {now}, {now} FROM authors WHERE name = 'Zelda Quill'
             UNION ALL
             SELECT id, 'https://paula.example.net/feed', NULL, 'Paula', 'paused', {now}, {now}, {now}, 0, {now},
                    {now} FROM authors WHERE name = 'Paula Paused'
             UNION ALL
             SELECT id, 'https://remi.example.net/feed', NULL, 'Remi', 'removed', {now}, {now}, {now}, 0, {now},
                    {now} FROM authors WHERE name = 'Rémi Removed';
             INSERT INTO links (feed_id, author_id, item_key, url, title, summary_html, published_at, harvested_at,
                                changed_at, content_hash, authorship)
             SELECT f.id, a.id, 'id:hello', 'https://blog' || a.id || '.example.com/hello',
                    'Hello from ' || lower(a.name), '<p>A first post.</p>',
                    {now} - CAST(substr(a.name, 9) AS INTEGER) * 60, {now}, {now}, 'h', 'own'
             FROM authors a JOIN feeds f ON f.author_id = a.id WHERE a.name LIKE 'Learner %'
             UNION ALL
             SELECT f.id, a.id, 'id:musing', 'https://blog' || a.id || '.example.com/musing',
                    'Untitled musings ' || substr(a.name, 9), '<p>Thinking aloud.</p>',
                    {now} - 86400 - CAST(substr(a.name, 9) AS INTEGER) * 60, {now}, {now}, 'h', 'own'
             FROM authors a JOIN feeds f ON f.author_id = a.id
             WHERE a.name LIKE 'Learner %' AND CAST(substr(a.name, 9) AS INTEGER) <= 60
             UNION ALL
             SELECT f.id, a.id, 'id:z1', 'https://zelda.example.net/hello', 'Saying hello', '<p>Hi.</p>', {now} - 30,
                    {now}, {now}, 'h', 'own' FROM authors a JOIN feeds f ON f.author_id = a.id
             WHERE a.name = 'Zelda Quill'
             UNION ALL
             SELECT f.id, a.id, 'id:z2', 'https://zelda.example.net/map', 'A map of my network', '<p>#pg-map</p>',
                    {now} - 20, {now}, {now}, 'h', 'own' FROM authors a JOIN feeds f ON f.author_id = a.id
             WHERE a.name = 'Zelda Quill';
             INSERT INTO link_tasks (link_id, task_id, source, tied, created_at)
             SELECT l.id, CASE WHEN CAST(substr(a.name, 9) AS INTEGER) <= 80 THEN {hello} ELSE {other_task} END,
                    'hashtag', 1, {now}
             FROM links l JOIN authors a ON a.id = l.author_id WHERE l.item_key = 'id:hello'
             UNION ALL SELECT id, {hello}, 'hashtag', 1, {now} FROM links WHERE title = 'Saying hello'
             UNION ALL SELECT id, {map}, 'hashtag', 0, {now} FROM links WHERE title = 'A map of my network';"
        ))
        .unwrap();
    let zelda = scalar(&app, "SELECT id AS v FROM authors WHERE name = 'Zelda Quill'");
    let zelda_feed = scalar(&app, &format!("SELECT id AS v FROM feeds WHERE author_id = {zelda}"));
    let zelda_map_post = scalar(&app, "SELECT id AS v FROM links WHERE title = 'A map of my network'");
    Seeded { app, open, other, hello, map, zelda, zelda_feed, zelda_map_post }
}

/// The text of the element with `id` (up to its first `<`, tags inside skipped crudely).
fn status_line(html: &str, id: &str) -> String {
    let start = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &html[start..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    rest[..rest.find("</p>").unwrap()].to_string()
}

/// The ids of the rows `<tr id="{prefix}N">` of a table, in order.
fn row_ids(html: &str, prefix: &str) -> Vec<i64> {
    html.split(&format!("<tr id=\"{prefix}")).skip(1).map(|r| r[..r.find('"').unwrap()].parse().unwrap()).collect()
}

/// The row (`<tr>` to `</tr>`) of element id `id`, or "".
fn row<'a>(html: &'a str, id: &str) -> &'a str {
    match html.find(&format!("id=\"{id}\"")) {
        Some(i) => {
            let start = html[..i].rfind("<tr").unwrap();
            &html[start..i + html[i..].find("</tr>").unwrap()]
        }
        None => "",
    }
}

#[tokio::test]
async fn the_feeds_page_is_searched_filtered_by_state_and_course_and_paged() {
    let s = seeded().await;
    let app = &s.app;
    // 120 learners' feeds, Zelda's and Paula's paused one; Rémi's removed feed is left out.
    let first = html(app, "/admin/feeds").await;
    assert_eq!(status_line(&first, "feeds-count"), "Showing 1–50 of 122 feeds");
    let ids1 = row_ids(&first, "feed-");
    assert_eq!(ids1.len(), 50);
    assert!(first.contains("href=\"/admin/feeds?page=2\" rel=\"next\">Next</a>"), "a link to the next page");
    assert!(!first.contains("remi.example.net"), "removed feeds are not listed unless asked for");
    let second = html(app, "/admin/feeds?page=2").await;
    assert_eq!(status_line(&second, "feeds-count"), "Showing 51–100 of 122 feeds");
    let ids2 = row_ids(&second, "feed-");
    assert_eq!(ids2.len(), 50);
    assert!(ids2.iter().all(|id| !ids1.contains(id)), "page 2 holds other feeds");
    assert!(second.contains("href=\"/admin/feeds\" rel=\"prev\">Previous</a>"));
    let third = html(app, "/admin/feeds?page=3").await;
    assert_eq!(status_line(&third, "feeds-count"), "Showing 101–122 of 122 feeds");
    let past = html(app, "/admin/feeds?page=40").await;
    assert!(status_line(&past, "feeds-count").starts_with("No feeds on page 40: there are 122"));
    assert!(past.contains("href=\"/admin/feeds?page=3\" rel=\"prev\""), "past the end, a way back");

    // Search by name, email, site address and feed title; a wildcard is taken literally.
    for q in ["zelda", "ZQ%40example.org", "zelda.example.net", "quill+notes"] {
        let html = html(app, &format!("/admin/feeds?q={q}")).await;
        assert_eq!(row_ids(&html, "feed-"), vec![s.zelda_feed], "search {q}");
        assert_eq!(status_line(&html, "feeds-count"), "Showing 1–1 of 1 feeds");
    }
    assert_eq!(status_line(&html(app, "/admin/feeds?q=%25").await, "feeds-count"), "No feeds match.");
    // One learner's feeds, one feed (the learner's page and the dashboard link to them).
    for path in [format!("/admin/feeds?learner={}", s.zelda), format!("/admin/feeds?feed={}", s.zelda_feed)] {
        assert_eq!(row_ids(&html(app, &path).await, "feed-"), vec![s.zelda_feed], "{path}");
    }
    let zelda = html(app, &format!("/admin/learners/{}", s.zelda)).await;
    assert!(zelda.contains(&format!("href=\"/admin/feeds?learner={}\"", s.zelda)), "the learner's page links them");

    // By state, with the word each row shows: failing, never fetched, paused, removed.
    for (status, n) in [("failing", 12), ("never+fetched", 12), ("paused", 1), ("removed", 1), ("active", 97)] {
        let html = html(app, &format!("/admin/feeds?status={status}")).await;
        let shown = n.min(50);
        assert_eq!(status_line(&html, "feeds-count"), format!("Showing 1–{shown} of {n} feeds"), "{status}");
        let word = status.replace('+', " ");
        assert_eq!(html.matches(&format!("<td>{word}</td>")).count(), shown as usize, "{status} rows say {word}");
        assert!(html.contains(&format!(" selected>{word}</option>")), "the filter stays chosen");
    }
    let failing = html(app, "/admin/feeds?status=failing").await;
    assert!(failing.contains("HTTP 404") && !failing.contains("<td>active</td>"));

    // By course: the learners with a post tied to one of its tasks (80 and Zelda; not Paula).
    let open = html(app, &format!("/admin/feeds?course={}", s.open)).await;
    assert_eq!(status_line(&open, "feeds-count"), "Showing 1–50 of 81 feeds");
    assert!(open.contains(&format!("href=\"/admin/feeds?course={}&amp;page=2\" rel=\"next\"", s.open)));
    let other = html(app, &format!("/admin/feeds?course={}&status=failing&sort=name", s.other)).await;
    // Learners 081–120 failing: 083, 093, 103, 113, by name.
    assert_eq!(status_line(&other, "feeds-count"), "Showing 1–4 of 4 feeds");
    let names: Vec<&str> = other
        .split("<tr id=\"feed-")
        .skip(1)
        .map(|r| {
            let at = r.find("\">Learner ").unwrap() + 10;
            &r[at..at + 3]
        })
        .collect();
    assert_eq!(names, ["083", "093", "103", "113"]);
    // Empty fields of the filter form mean "any".
    let any = html(app, "/admin/feeds?q=&status=&course=&sort=").await;
    assert_eq!(status_line(&any, "feeds-count"), "Showing 1–50 of 122 feeds");
    assert_eq!(app.get("/admin/feeds?course=x").await.status(), 400);

    // The form is labelled for screen readers.
    for id in ["ff-q", "ff-status", "ff-course", "ff-sort"] {
        assert!(first.contains(&format!("<label for=\"{id}\">")), "{id} has a label");
    }

    // A feed refused: the error is next to the form's field, above the list.
    let res = app.post_form("/admin/feeds", &[("name", "Zelda"), ("email", ""), ("url", "ftp://nowhere")]).await;
    assert_eq!(res.status(), 422);
    let refused = res.text().await.unwrap();
    let error = refused.find("id=\"e-url\" role=\"alert\"").expect("the address's error");
    assert!(refused.contains("value=\"ftp://nowhere\""), "the address is kept in the field");
    assert!(error < refused.find("id=\"feeds\"").unwrap(), "the error shows above the list, next to the form");
    assert!(refused.find("id=\"add-feed\"").unwrap() < error);
}

#[tokio::test]
async fn the_posts_page_is_searched_filtered_by_course_task_and_untied_and_paged() {
    let s = seeded().await;
    let app = &s.app;
    // 120 hello posts, 60 musings, Zelda's two.
    let first = html(app, "/admin/links").await;
    assert_eq!(status_line(&first, "posts-count"), "Showing 1–50 of 182 posts");
    assert_eq!(row_ids(&first, "link-").len(), 50);
    assert!(first.matches("action=\"/admin/links/").count() <= 100, "not hundreds of forms");
    let ids1 = row_ids(&first, "link-");
    assert_eq!(ids1[0], s.zelda_map_post, "the latest first");
    let second = html(app, "/admin/links?page=2").await;
    assert_eq!(status_line(&second, "posts-count"), "Showing 51–100 of 182 posts");
    assert!(row_ids(&second, "link-").iter().all(|id| !ids1.contains(id)));
    assert_eq!(status_line(&html(app, "/admin/links?page=4").await, "posts-count"), "Showing 151–182 of 182 posts");

    // Search: the learner's name, the title, the address.
    let by_name = html(app, "/admin/links?q=zelda").await;
    assert_eq!(status_line(&by_name, "posts-count"), "Showing 1–2 of 2 posts");
    let by_title = html(app, "/admin/links?q=musings+007").await;
    assert_eq!(status_line(&by_title, "posts-count"), "Showing 1–1 of 1 posts");
    let by_url = html(app, "/admin/links?q=example.net%2Fmap").await;
    assert_eq!(row_ids(&by_url, "link-"), vec![s.zelda_map_post]);

    // A task or course: the posts tied to it.
    let hello = html(app, &format!("/admin/links?task={}", s.hello)).await;
    assert_eq!(status_line(&hello, "posts-count"), "Showing 1–50 of 81 posts");
    assert!(hello.contains(&format!("href=\"/admin/links?task={}&amp;page=2\" rel=\"next\"", s.hello)));
    let other = html(app, &format!("/admin/links?course={}", s.other)).await;
    assert_eq!(status_line(&other, "posts-count"), "Showing 1–40 of 40 posts");
    // Untied only: the musings and Zelda's map post.
    let untied = html(app, "/admin/links?untied=1").await;
    assert_eq!(status_line(&untied, "posts-count"), "Showing 1–50 of 61 posts");
    assert!(untied.contains("name=\"untied\" value=\"1\" checked"));
    assert!(untied.contains("href=\"/admin/links?untied=1&amp;page=2\""), "the pager keeps the filter");
    // Untied in a course: by its learners, or naming its tasks; none in the other course.
    let open_untied = html(app, &format!("/admin/links?course={}&untied=1", s.open)).await;
    assert_eq!(status_line(&open_untied, "posts-count"), "Showing 1–50 of 61 posts");
    let map_untied = html(app, &format!("/admin/links?task={}&untied=1", s.map)).await;
    assert_eq!(row_ids(&map_untied, "link-"), vec![s.zelda_map_post], "named, not tied");
    let other_untied = html(app, &format!("/admin/links?course={}&untied=1", s.other)).await;
    assert_eq!(status_line(&other_untied, "posts-count"), "No posts match.");

    // A tie without a task: refused next to the post, the list as it was.
    let res = app
        .post_form(
            &format!("/admin/links/{}/tie", s.zelda_map_post),
            &[("task_id", ""), ("tied", "1"), ("back", "/admin/links?q=zelda")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let refused = res.text().await.unwrap();
    let post_row = row(&refused, &format!("link-{}", s.zelda_map_post));
    assert!(post_row.contains("role=\"alert\">choose a task to tie the post to</p>"), "{post_row}");
    assert_eq!(status_line(&refused, "posts-count"), "Showing 1–2 of 2 posts", "the same filtered list");
    // The Tie select starts on a task of the learner's course, and a tie goes back to the list.
    assert!(post_row.contains(&format!("<option value=\"{}\" selected>#pg-hello</option>", s.hello)), "{post_row}");
    let res = app
        .post_form(
            &format!("/admin/links/{}/tie", s.zelda_map_post),
            &[("task_id", &s.map.to_string()), ("tied", "1"), ("back", "/admin/links?q=zelda")],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(crate::helpers::location(&res), "/admin/links?q=zelda");
    let after = html(app, &format!("/admin/links?task={}", s.map)).await;
    assert_eq!(row_ids(&after, "link-"), vec![s.zelda_map_post]);
}

#[tokio::test]
async fn the_readers_search_reads_learners_names_and_a_learner_field_replaces_the_feed_list() {
    let s = seeded().await;
    let app = &s.app;
    let cards = |html: &str| html.matches("class=\"link reader-card").count();
    let all = html(app, "/admin/reader").await;
    assert_eq!(status_line(&all, "reader-count"), "Showing 1–25 of 182 posts");
    assert!(!all.contains("id=\"f-feed\""), "no list of every feed");
    assert!(all.contains("<label for=\"f-learner\">"));
    assert!(!all.contains("Quill notes</option>"), "no option per feed");
    let next = {
        let i = all.find("rel=\"next\"").unwrap();
        let href = &all[..i];
        let href = &href[href.rfind("href=\"").unwrap() + 6..];
        href[..href.find('"').unwrap()].replace("&amp;", "&")
    };
    let page2 = html(app, &next).await;
    assert_eq!(status_line(&page2, "reader-count"), "Showing 26–50 of 182 posts");

    // The text search covers the learner's name and email.
    for q in ["zelda+quill", "zq%40example.org"] {
        let html = html(app, &format!("/admin/reader?q={q}")).await;
        assert_eq!(cards(&html), 2, "q={q}");
        assert_eq!(status_line(&html, "reader-count"), "Showing 1–2 of 2 posts");
    }
    // The learner field: name, email or blog.
    for learner in ["Quill", "zq%40", "zelda.example.net", "learner+007"] {
        let html = html(app, &format!("/admin/reader?learner={learner}")).await;
        assert_eq!(cards(&html), 2, "learner={learner}");
    }
    assert!(html(app, "/admin/reader?learner=quill").await.contains("value=\"quill\""), "kept in the field");
    // The old parameters still work: a feed, a learner by id.
    let by_feed = html(app, &format!("/admin/reader?feed={}", s.zelda_feed)).await;
    assert_eq!(cards(&by_feed), 2);
    assert!(by_feed.contains("Feed: Zelda Quill — Quill notes"), "the feed filter is named");
    let by_author = html(app, &format!("/admin/reader?author={}", s.zelda)).await;
    assert_eq!(cards(&by_author), 2);
    assert!(by_author.contains(&format!("Learner: <a href=\"/admin/learners/{}\">Zelda Quill</a>", s.zelda)));

    // Untied only, alone and in a course or task.
    let untied = html(app, "/admin/reader?untied=1").await;
    assert_eq!(status_line(&untied, "reader-count"), "Showing 1–25 of 61 posts");
    let open = html(app, &format!("/admin/reader?course={}&untied=1", s.open)).await;
    assert_eq!(status_line(&open, "reader-count"), "Showing 1–25 of 61 posts");
    assert!(open.contains("rel=\"next\"") && open.contains("untied=1"), "the next page keeps the filter");
    let other = html(app, &format!("/admin/reader?course={}&untied=1", s.other)).await;
    assert_eq!(cards(&other), 0);
    let map = html(app, &format!("/admin/reader?task={}&untied=1&learner=zelda", s.map)).await;
    assert_eq!(cards(&map), 1);
    assert!(map.contains(&format!("id=\"link-{}\"", s.zelda_map_post)));
    // A course alone: the posts tied to its tasks.
    let tied = html(app, &format!("/admin/reader?course={}", s.other)).await;
    assert_eq!(status_line(&tied, "reader-count"), "Showing 1–25 of 40 posts");
}

/// Seeds `n` learners with a feed and three posts each (one tied to the course's task, with a
/// summary of a few lines), the last `n / 10` of them failing.
async fn crowd(app: &TestApp, n: i64) -> i64 {
    let course = app.create_course("Crowded Course").await;
    let module = app.create_module(course, "Week one").await;
    assert_eq!(app.create_task(module, "Say hello", "#crowd-hello").await.status(), 303);
    let task = crate::badges::task_id(app, "crowd-hello");
    let now = cairn::clock::system_now();
    app.pool
        .get()
        .unwrap()
        .batch_execute(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
             INSERT INTO authors (name, email, created_at)
             SELECT 'Crowd learner ' || i, 'crowd' || i || '@example.edu', {now} FROM n;
             INSERT INTO feeds (author_id, url, site_url, title, status, next_poll_at, last_polled_at, last_success_at,
                                last_error, error_count, created_at, updated_at)
             SELECT id, 'https://crowd' || id || '.example.org/feed.xml', 'https://crowd' || id || '.example.org/',
                    'Crowd blog ' || id, 'active', {now}, {now}, CASE WHEN id % 10 = 0 THEN NULL ELSE {now} END,
                    CASE WHEN id % 10 = 0 THEN 'the server answered 404 Not Found' END,
                    CASE WHEN id % 10 = 0 THEN 2 ELSE 0 END, {now}, {now}
             FROM authors WHERE name LIKE 'Crowd learner %';
             WITH RECURSIVE k(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM k WHERE j < 3)
             INSERT INTO links (feed_id, author_id, item_key, url, title, summary_html, published_at, harvested_at,
                                changed_at, content_hash, authorship)
             SELECT f.id, f.author_id, 'id:' || k.j, 'https://crowd' || f.author_id || '.example.org/' || k.j,
                    'Week one thoughts, part ' || k.j, '<p>' || printf('%.600c', 'x') || '</p>',
                    {now} - f.id * 60 - k.j, {now}, {now}, 'h', 'own'
             FROM feeds f, k WHERE f.title LIKE 'Crowd blog %';
             INSERT INTO link_tasks (link_id, task_id, source, tied, created_at)
             SELECT id, {task}, 'hashtag', 1, {now} FROM links WHERE item_key = 'id:1';"
        ))
        .unwrap();
    course
}

#[tokio::test]
async fn no_long_admin_page_is_taller_than_a_few_screens_at_200_learners() {
    const SCREEN: (u32, u32) = (1280, 900);
    const SCREENS: i64 = 6;
    let app = spawn_app().await;
    app.login().await;
    let course = crowd(&app, 200).await;
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    browser.set_window_size(SCREEN.0, SCREEN.1).await.unwrap();
    // Window decorations, if any, take some of the window: grow it by what is missing.
    let inner: Vec<i64> = serde_json::from_value(
        browser.execute("return [window.innerWidth, window.innerHeight];", vec![]).await.unwrap(),
    )
    .unwrap();
    let (dw, dh) = (i64::from(SCREEN.0) - inner[0], i64::from(SCREEN.1) - inner[1]);
    if dw != 0 || dh != 0 {
        browser.set_window_size((i64::from(SCREEN.0) + dw) as u32, (i64::from(SCREEN.1) + dh) as u32).await.unwrap();
    }
    crate::browser::sign_in(&browser, &app.url("/login")).await.unwrap();
    let height = browser.execute("return window.innerHeight;", vec![]).await.unwrap().as_i64().unwrap();
    assert_eq!(height, i64::from(SCREEN.1), "the window's height");
    let limit = SCREENS * height;
    let pages = [
        "/admin/feeds".to_string(),
        "/admin/links".into(),
        "/admin/reader".into(),
        "/admin/learners".into(),
        format!("/admin/courses/{course}/learners"),
        format!("/admin/courses/{course}/progress"),
    ];
    let mut tall = Vec::new();
    for path in &pages {
        browser.goto(&app.url(path)).await.unwrap();
        let (h, rows) = {
            let v = browser
                .execute(
                    "return [document.scrollingElement.scrollHeight,
                             document.querySelectorAll('tbody tr, article.reader-card').length];",
                    vec![],
                )
                .await
                .unwrap();
            (v[0].as_i64().unwrap(), v[1].as_i64().unwrap())
        };
        assert!(rows >= 25, "{path} lists a page of rows ({rows})");
        eprintln!("{path}: {h} px, {rows} rows");
        if let Some(dir) = std::env::var_os("CAIRN_SHOTS") {
            let png = browser.screenshot().await.unwrap();
            std::fs::write(std::path::Path::new(&dir).join(format!("{}.png", path.replace('/', "_"))), png).unwrap();
        }
        if h > limit {
            tall.push(format!("{path}: {h} px"));
        }
    }
    assert!(tall.is_empty(), "taller than {SCREENS} screens of {height} px:\n{}", tall.join("\n"));
}
