//! The instructor dashboard at scale: the real server on 127.0.0.1 over a database seeded with
//! 2,000 learners and their feeds (200 of them failing, 50 gone), 100,000 posts tied to the demo
//! course's tasks over twelve weeks, and 10,000 awards made through the JSON API (9,000 of them
//! then marked as recorded in a block), with their notifications. Then `GET /admin` for the
//! course, signed in, one request after another: median and p99 (goal: under 50 ms).
//!
//! Run: `bash scripts/bench.sh dashboard` or `cargo bench --bench dashboard`. Mining and
//! harvesting are off, so nothing else runs while the page is measured.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests and benchmarks fail loudly by design

mod common;
use common::percentile;

use std::time::Instant;

use cairn::config::Settings;
use cairn::startup::Application;
use diesel::connection::SimpleConnection as _;

const LEARNERS: usize = 2_000;
const LINKS: usize = 100_000;
const AWARDS: usize = 10_000;
const BATCH: usize = 500;
const WARM_UP: usize = 20;
const REQUESTS: usize = 300;
const GOAL_MS: f64 = 50.0;

/// Learners, feeds, posts and ties in a few statements: the harvest path would take minutes
/// and is measured by its own benchmark.
fn seed_posts(conn: &mut diesel::SqliteConnection, course: i64, now: i64) -> anyhow::Result<()> {
    conn.batch_execute(&format!(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {LEARNERS})
         INSERT INTO authors (name, email, created_at, name_shown)
         SELECT 'Learner ' || i, 'learner' || i || '@example.edu', {now}, 'name' FROM n;
         INSERT INTO feeds (author_id, url, title, status, next_poll_at, error_count, items_harvested, created_at,
                            updated_at)
         SELECT id, 'https://blog' || id || '.example.org/feed.xml', 'Blog ' || id,
                CASE WHEN id % 40 = 0 THEN 'gone' ELSE 'active' END, {now}, CASE WHEN id % 10 = 1 THEN id % 7 + 1 ELSE 0 END,
                0, {now}, {now}
         FROM authors WHERE email LIKE 'learner%@example.edu';
         CREATE TEMP TABLE bench_tasks AS
         SELECT mt.task_id AS id, row_number() OVER (ORDER BY mt.task_id) - 1 AS k
         FROM course_modules cm JOIN module_tasks mt ON mt.module_id = cm.module_id WHERE cm.course_id = {course};
         CREATE TEMP TABLE bench_feeds AS
         SELECT id AS feed_id, author_id, row_number() OVER (ORDER BY id) - 1 AS k FROM feeds;
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {LINKS} - 1)
         INSERT INTO links (feed_id, author_id, item_key, url, title, summary_html, published_at, harvested_at,
                            changed_at, content_hash)
         SELECT f.feed_id, f.author_id, 'id:' || i, 'https://example.org/post/' || i, 'Post ' || i,
                '<p>' || printf('%.400c', 'x') || '</p>', {now} - (i * 7 % (84 * 86400)), {now}, {now}, 'h'
         FROM n JOIN bench_feeds f ON f.k = i % (SELECT count(*) FROM bench_feeds);
         INSERT INTO link_tasks (link_id, task_id, source, tied, created_at)
         SELECT l.id, t.id, 'hashtag', 1, {now} FROM links l
         JOIN bench_tasks t ON t.k = l.id % (SELECT count(*) FROM bench_tasks);
         DROP TABLE bench_tasks;
         DROP TABLE bench_feeds;
         COMMIT;"
    ))?;
    Ok(())
}

/// Signs in as the benchmark instructor, saying what the server answered if it refuses.
async fn sign_in(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let page = client.get(format!("{base}/login")).send().await?.text().await?;
    let csrf = common::csrf_in(&page);
    let res = client
        .post(format!("{base}/login"))
        .form(&[("csrf_token", csrf.as_str()), ("email", common::EMAIL), ("password", common::PASSWORD)])
        .send()
        .await?;
    let status = res.status();
    if status != 303 {
        let body = res.text().await?;
        let said = body.find("<main").map_or("", |i| &body[i..(i + 600).min(body.len())]);
        anyhow::bail!("login answered {status}: {said}");
    }
    Ok(())
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
    cairn::demo::seed(&mut conn)?;
    let course = cairn::db::courses::get_course_by_slug(&mut conn, cairn::demo::DEMO_SLUG)?.id;
    let outline = cairn::db::courses::outline(&mut conn, course)?;
    let tags: Vec<String> = outline
        .modules
        .iter()
        .flat_map(|m| m.tasks.iter().map(|t| format!("#{}", t.hashtag.trim_start_matches('#'))))
        .collect();
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
    seed_posts(&mut conn, course, cairn::clock::system_now())?;
    println!("seeded {LINKS} posts of {LEARNERS} learners in {:.1} s", t.elapsed().as_secs_f64());
    drop(conn);

    let client = reqwest::Client::builder().cookie_store(true).build()?;
    let browser = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
    rt.block_on(sign_in(&browser, &base))?;
    let t = Instant::now();
    rt.block_on(async {
        for b in 0..AWARDS / BATCH {
            let items: Vec<_> = (0..BATCH)
                .map(|i| {
                    let n = b * BATCH + i;
                    serde_json::json!({"task": tags[n % tags.len()],
                        "recipient": format!("learner{}@example.edu", n / tags.len() + 1),
                        "evidence": format!("https://example.org/post/{n}")})
                })
                .collect();
            let res = client
                .post(format!("{base}/api/v1/awards/batch"))
                .bearer_auth(&token)
                .header("Idempotency-Key", format!("batch-{b}"))
                .json(&serde_json::json!({ "awards": items }))
                .send()
                .await?;
            anyhow::ensure!(res.status() == 200, "batch failed: {}", res.status());
            let out: serde_json::Value = res.json().await?;
            anyhow::ensure!(out["awarded"] == BATCH, "not every award was made: {}", out["refused"]);
        }
        Ok(())
    })?;
    // Nine in ten awards as if mined: the page reads the same rows whatever the block.
    pool.get()?.batch_execute(
        "UPDATE chain_records SET block_hash = printf('%064d', id / 5) WHERE kind = 'award' AND id % 10 != 0",
    )?;
    println!("made {AWARDS} awards through the API in {:.1} s", t.elapsed().as_secs_f64());

    let page = format!("{base}/admin?course={course}");
    let lat = rt.block_on(async {
        let mut lat = Vec::with_capacity(REQUESTS);
        let mut body = String::new();
        for i in 0..WARM_UP + REQUESTS {
            let t = Instant::now();
            let res = browser.get(&page).send().await?;
            anyhow::ensure!(res.status() == 200, "dashboard: {}", res.status());
            body = res.text().await?;
            if i >= WARM_UP {
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        anyhow::ensure!(body.matches("<svg class=\"chart\"").count() == 6, "the page has its six charts");
        println!("page size {} KB", body.len() / 1024);
        Ok(lat)
    })?;
    let mut conn = pool.get()?;
    {
        use diesel::prelude::*;
        let links: i64 = cairn::db::schema::links::table.count().get_result(&mut conn)?;
        let awards = cairn::db::awards::count(&mut conn)?;
        anyhow::ensure!(links as usize == LINKS && awards as usize == AWARDS, "{links} posts, {awards} awards stored");
    }
    let mut ms = lat;
    ms.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&ms, 0.5), percentile(&ms, 0.99));
    println!(
        "GET /admin (dashboard) at {LINKS} posts and {AWARDS} awards: {} requests, median {p50:.1} ms, p99 {p99:.1} ms \
         (goal: under {GOAL_MS} ms) {}",
        ms.len(),
        if p99 < GOAL_MS { "MET" } else { "NOT MET" }
    );
    Ok(())
}
