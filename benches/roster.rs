//! The learner roster at the size of a real course: the real server on 127.0.0.1 over a
//! database seeded with one course of 12 tasks in 3 modules, 200 learners with a feed each
//! (one in ten failing, one in ten without an email), 10,000 posts tied to the course's tasks
//! (one in five only naming it, untied), and 2,000 awards made through the JSON API. Then,
//! signed in, one request after another: `/admin/learners`, `/admin/courses/{id}/learners` and
//! `/admin/courses/{id}/progress` (also filtered by a module), the Reader (`/admin/reader`), the
//! Feeds page and the Posts page (`/admin/links`), each on its first page and searched or
//! filtered: median and p99 of each (goal: median under 100 ms). Then the Reader and the Posts
//! page of a reviewer of the course (not an admin), whose lists are narrowed to the course's
//! posts: those tied to its tasks, and the untied ones of learners on its roster.
//!
//! Run: `cargo bench --bench roster`. Mining and harvesting are off, so nothing else runs while
//! the pages are measured.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests and benchmarks fail loudly by design

mod common;
use common::percentile;

use std::time::Instant;

use cairn::config::Settings;
use cairn::startup::Application;
use diesel::connection::SimpleConnection as _;

const LEARNERS: usize = 200;
const TASKS: usize = 12;
const POSTS: usize = 10_000;
const AWARDS: usize = 2_000;
const BATCH: usize = 500;
const WARM_UP: usize = 10;
const REQUESTS: usize = 100;
const REVIEWER: &str = "reviewer@example.edu";
const GOAL_MS: f64 = 100.0;

/// The course, its learners, feeds, posts and ties in a few statements (the harvest has its
/// own benchmark); returns the course id and the first module's id.
fn seed(conn: &mut diesel::SqliteConnection, now: i64) -> anyhow::Result<(i64, i64)> {
    conn.batch_execute(&format!(
        "BEGIN;
         INSERT INTO courses (slug, title, description, position, created_at, updated_at)
         VALUES ('roster-bench', 'Roster bench', '', 1, {now}, {now});
         INSERT INTO modules (title, description, created_at, updated_at)
         VALUES ('Week 1', '', {now}, {now}), ('Week 2', '', {now}, {now}), ('Week 3', '', {now}, {now});
         INSERT INTO course_modules (course_id, module_id, position)
         SELECT (SELECT id FROM courses WHERE slug = 'roster-bench'), id, id FROM modules WHERE title LIKE 'Week %';
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {TASKS} - 1)
         INSERT INTO tasks (title, description, criteria, hashtag, created_at, updated_at)
         SELECT 'Task ' || i, '', '', '#rb-task' || i, {now}, {now} FROM n;
         INSERT INTO module_tasks (module_id, task_id, position)
         SELECT (SELECT id FROM modules WHERE title = 'Week ' || (CAST(substr(t.hashtag, 9) AS INTEGER) / 4 + 1)),
                t.id, t.id FROM tasks t WHERE t.hashtag LIKE '#rb-task%';
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {LEARNERS})
         INSERT INTO authors (name, email, created_at)
         SELECT 'Learner ' || i, CASE WHEN i % 10 = 0 THEN NULL ELSE 'learner' || i || '@example.edu' END, {now}
         FROM n;
         INSERT INTO feeds (author_id, url, site_url, title, status, next_poll_at, last_polled_at, last_success_at,
                            last_error, error_count, items_harvested, created_at, updated_at)
         SELECT id, 'https://blog' || id || '.example.org/feed.xml', 'https://blog' || id || '.example.org/',
                'Blog ' || id, 'active', {now}, {now}, CASE WHEN id % 10 = 3 THEN NULL ELSE {now} END,
                CASE WHEN id % 10 = 3 THEN 'HTTP 404' END, CASE WHEN id % 10 = 3 THEN 4 ELSE 0 END, 0, {now}, {now}
         FROM authors;
         CREATE TEMP TABLE bench_tasks AS
         SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM tasks WHERE hashtag LIKE '#rb-task%';
         CREATE TEMP TABLE bench_feeds AS
         SELECT id AS feed_id, author_id, row_number() OVER (ORDER BY id) - 1 AS k FROM feeds;
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {POSTS} - 1)
         INSERT INTO links (feed_id, author_id, item_key, url, title, summary_html, published_at, harvested_at,
                            changed_at, content_hash, authorship)
         SELECT f.feed_id, f.author_id, 'id:' || i, 'https://blog' || f.author_id || '.example.org/post/' || i,
                'Post ' || i, '<p>' || printf('%.400c', 'x') || '</p>', {now} - (i * 61 % (42 * 86400)), {now}, {now},
                'h', 'own'
         FROM n JOIN bench_feeds f ON f.k = i % {LEARNERS};
         INSERT INTO link_tasks (link_id, task_id, source, tied, created_at)
         SELECT l.id, t.id, 'hashtag', l.id % 5 != 0, {now} FROM links l
         JOIN bench_tasks t ON t.k = (l.id / {LEARNERS}) % {TASKS};
         DROP TABLE bench_tasks;
         DROP TABLE bench_feeds;
         COMMIT;"
    ))?;
    use cairn::db::schema::{course_modules, courses};
    use diesel::prelude::*;
    let course: i64 = courses::table.filter(courses::slug.eq("roster-bench")).select(courses::id).first(conn)?;
    let module: i64 = course_modules::table
        .filter(course_modules::course_id.eq(course))
        .order(course_modules::position)
        .select(course_modules::module_id)
        .first(conn)?;
    Ok((course, module))
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::defaults();
    settings.bind = "127.0.0.1:0".parse()?;
    settings.data_dir = dir.path().to_path_buf();
    settings.harvest.enabled = false;
    settings.newsletter.enabled = false;
    settings.chain.mining = false;
    settings.mail.smtp_host = None;
    settings.api.requests_per_minute = 1_000_000;
    cairn::net::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let app = rt.block_on(async { Application::build(&settings) })?;
    let base = app.base_url().to_string();
    let pool = app.pool();
    rt.spawn(app.run_until_stopped());
    let mut conn = pool.get()?;
    let who = cairn::app::instructors::create(&mut conn, common::EMAIL, common::PASSWORD, 0)?;
    common::complete_profile(&mut conn)?;
    let scopes = cairn::app::tokens::parse_scopes("awards:write")?;
    let token = cairn::app::tokens::create(
        &mut conn,
        &cairn::app::access::Actor::institution(cairn::app::access::Surface::Cli),
        who.id,
        "bench",
        &scopes,
        None,
        cairn::clock::system_now(),
    )?
    .secret;
    let t = Instant::now();
    let (course, module) = seed(&mut conn, cairn::clock::system_now())?;
    println!("seeded {LEARNERS} learners and {POSTS} posts in {:.1} s", t.elapsed().as_secs_f64());
    drop(conn);

    // Awards to the learners with an email (180): each (learner, task) pair once.
    let with_email: Vec<usize> = (1..=LEARNERS).filter(|i| i % 10 != 0).collect();
    let client = reqwest::Client::builder().cookie_store(true).build()?;
    let t = Instant::now();
    rt.block_on(async {
        for b in 0..AWARDS / BATCH {
            let items: Vec<_> = (0..BATCH)
                .map(|i| {
                    let n = b * BATCH + i;
                    let (learner, task) = (with_email[n % with_email.len()], n / with_email.len());
                    // One of the learner's own posts as the evidence.
                    let post = (learner - 1) + LEARNERS * task;
                    serde_json::json!({"task": format!("#rb-task{task}"),
                        "recipient": format!("learner{learner}@example.edu"),
                        "evidence": format!("https://blog{learner}.example.org/post/{post}")})
                })
                .collect();
            let res = client
                .post(format!("{base}/api/v1/awards/batch"))
                .bearer_auth(&token)
                .header("Idempotency-Key", format!("batch-{b}"))
                .json(&serde_json::json!({ "awards": items }))
                .send()
                .await?;
            let status = res.status();
            anyhow::ensure!(status == 200, "batch failed: {status}: {}", res.text().await?);
            let out: serde_json::Value = res.json().await?;
            anyhow::ensure!(out["awarded"] == BATCH, "not every award was made: {}", out["refused"]);
        }
        Ok(())
    })?;
    println!("made {AWARDS} awards through the API in {:.1} s", t.elapsed().as_secs_f64());

    let browser = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
    rt.block_on(common::sign_in(&browser, &base))?;
    let pages = [
        ("/admin/learners".to_string(), "learners 1–50 of 200"),
        (format!("/admin/courses/{course}/learners"), "learners 1–50 of "),
        (format!("/admin/courses/{course}/learners?sort=last&page=2"), "learners 51–100 of "),
        (format!("/admin/courses/{course}/progress"), "learners 1–50 of "),
        (format!("/admin/courses/{course}/progress?module={module}&page=2"), "learners"),
        ("/admin/reader".to_string(), "Showing 1–25 of 10000 posts"),
        ("/admin/reader?q=learner+17".to_string(), "Showing 1–25 of "),
        (format!("/admin/reader?course={course}&untied=1"), "Showing 1–25 of "),
        ("/admin/feeds".to_string(), "Showing 1–50 of 200 feeds"),
        ("/admin/feeds?q=learner+17".to_string(), "Showing 1–11 of 11 feeds"),
        ("/admin/feeds?status=failing".to_string(), "Showing 1–20 of 20 feeds"),
        ("/admin/links".to_string(), "Showing 1–50 of 10000 posts"),
        ("/admin/links?q=learner+17".to_string(), "Showing 1–50 of "),
        (format!("/admin/links?course={course}&untied=1&page=3"), "Showing 101–150 of "),
    ];
    let reviewer = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
    {
        let mut conn = pool.get()?;
        cairn::app::instructors::create_with(&mut conn, REVIEWER, Some(common::PASSWORD), false, 0)?;
        let institution = cairn::app::access::Actor::institution(cairn::app::access::Surface::Cli);
        cairn::app::staff::grant(&mut conn, &institution, REVIEWER, course, cairn::app::access::Role::Reviewer, 0)?;
    }
    rt.block_on(common::sign_in_as(&reviewer, &base, REVIEWER))?;
    let as_reviewer = [
        ("/admin/reader".to_string(), "Showing 1–25 of "),
        ("/admin/reader?q=learner+17".to_string(), "Showing 1–25 of "),
        ("/admin/links".to_string(), "Showing 1–50 of "),
    ];
    let mut met = true;
    let all =
        pages.iter().map(|p| (&browser, "", p)).chain(as_reviewer.iter().map(|p| (&reviewer, "as a reviewer: ", p)));
    for (browser, who, (path, expect)) in all {
        let url = format!("{base}{path}");
        let lat = rt.block_on(async {
            let mut lat = Vec::with_capacity(REQUESTS);
            let mut body = String::new();
            for i in 0..WARM_UP + REQUESTS {
                let t = Instant::now();
                let res = browser.get(&url).send().await?;
                anyhow::ensure!(res.status() == 200, "{path}: {}", res.status());
                body = res.text().await?;
                if i >= WARM_UP {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            let said = ["roster-count", "reader-count", "feeds-count", "posts-count"]
                .iter()
                .find_map(|id| body.find(&format!("id=\"{id}\"")))
                .map_or("", |i| &body[i..(i + 120).min(body.len())]);
            anyhow::ensure!(body.contains(expect), "{path} says {expect:?}: {said}");
            anyhow::ensure!(!path.ends_with("progress") || body.contains("awarded"), "{path} shows awards");
            let said = said.split(['<', '>']).nth(1).unwrap_or_default().to_string();
            Ok((lat, body.len(), said))
        })?;
        let (mut ms, size, said) = lat;
        ms.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&ms, 0.5), percentile(&ms, 0.99));
        met &= p50 < GOAL_MS;
        println!(
            "{who}GET {path} ({said}): {} requests, {} KB, median {p50:.1} ms, p99 {p99:.1} ms (goal: median under {GOAL_MS} ms) {}",
            ms.len(),
            size / 1024,
            if p50 < GOAL_MS { "MET" } else { "NOT MET" }
        );
    }
    {
        use diesel::prelude::*;
        let mut conn = pool.get()?;
        let links: i64 = cairn::db::schema::links::table.count().get_result(&mut conn)?;
        let awards = cairn::db::awards::count(&mut conn)?;
        anyhow::ensure!(links as usize == POSTS && awards as usize == AWARDS, "{links} posts, {awards} awards stored");
    }
    println!("{}", if met { "every page MET the goal" } else { "some page did NOT MEET the goal" });
    Ok(())
}
