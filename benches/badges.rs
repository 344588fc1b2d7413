//! Badge benchmarks against the real server on 127.0.0.1:
//! 1. award latency: 1,000 awards through the Reader's form (POST to response, the
//!    assertion and both baked images stored), median and p99 as seen by the client;
//! 2. serving: assertion JSON and the verification page under 64 connections from `wrk`,
//!    with 10,000 assertions stored;
//! 3. the Reader with 100,000 Links: first page and page 500 (keyset).
//!
//! Run: `bash scripts/bench.sh badges` (installs wrk if needed) or `cargo bench --bench badges`.
//! Mining is off during this benchmark (it has its own), so the figures are the web path's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests and benchmarks fail loudly by design

mod common;
use common::percentile;

use std::time::{Duration, Instant};

use cairn::config::Settings;
use cairn::db::schema::{authors, feeds, link_tasks, links};
use cairn::startup::Application;
use diesel::prelude::*;

/// Inserts `n` posts by `n` authors with emails, each tied to `task_id`.
fn seed_links(conn: &mut SqliteConnection, n: usize, task_id: i64, with_email: bool) -> anyhow::Result<Vec<i64>> {
    let t = cairn::clock::system_now();
    cairn::db::write_tx(conn, |conn| -> anyhow::Result<Vec<i64>> {
        let author =
            cairn::db::feeds::find_or_create_author(conn, "Bench feed owner", None, cairn::clock::system_now())?;
        let feed_id: i64 = diesel::insert_into(feeds::table)
            .values((
                feeds::author_id.eq(author.id),
                feeds::url.eq(format!("https://bench.example.org/{t}-{n}.xml")),
                feeds::status.eq("paused"),
                feeds::created_at.eq(t),
                feeds::updated_at.eq(t),
            ))
            .returning(feeds::id)
            .get_result(conn)?;
        let mut ids = Vec::with_capacity(n);
        for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
            let author_rows: Vec<_> = chunk
                .iter()
                .map(|i| {
                    (
                        authors::name.eq(format!("Learner {i}")),
                        authors::email.eq(with_email.then(|| format!("learner{i}-{n}@example.edu"))),
                        authors::created_at.eq(t),
                    )
                })
                .collect();
            let author_ids: Vec<i64> =
                diesel::insert_into(authors::table).values(author_rows).returning(authors::id).get_results(conn)?;
            let rows: Vec<_> = chunk
                .iter()
                .zip(&author_ids)
                .map(|(i, a)| {
                    (
                        links::feed_id.eq(feed_id),
                        links::author_id.eq(*a),
                        links::item_key.eq(format!("id:{i}")),
                        links::url.eq(Some(format!("https://learner{i}.example.org/post"))),
                        links::title.eq(format!("Post {i}: a reflection on networked learning")),
                        links::summary_html.eq("<p>A paragraph of reflection about the week's readings, with a <a href=\"https://example.org/\">link</a>.</p>"),
                        links::harvested_at.eq(t),
                        links::changed_at.eq(t),
                        links::content_hash.eq("x"),
                    )
                })
                .collect();
            let link_ids: Vec<i64> =
                diesel::insert_into(links::table).values(rows).returning(links::id).get_results(conn)?;
            let ties: Vec<_> = link_ids
                .iter()
                .map(|l| {
                    (
                        link_tasks::link_id.eq(*l),
                        link_tasks::task_id.eq(task_id),
                        link_tasks::source.eq("hashtag"),
                        link_tasks::tied.eq(true),
                        link_tasks::created_at.eq(t),
                    )
                })
                .collect();
            diesel::insert_into(link_tasks::table).values(ties).execute(conn)?;
            ids.extend(link_ids);
        }
        Ok(ids)
    })
}

/// Runs wrk with 64 connections and the given Accept header: (requests/s, p99).
fn wrk(url: &str, accept: &str, secs: u32) -> Option<(f64, String)> {
    let out = std::process::Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{secs}s"), "--latency", "-H", &format!("Accept: {accept}"), url])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rps = text.lines().find(|l| l.starts_with("Requests/sec:"))?.split_whitespace().nth(1)?.parse().ok()?;
    let p99 = text.lines().find(|l| l.trim_start().starts_with("99%"))?.split_whitespace().nth(1)?.to_string();
    Some((rps, p99))
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::defaults();
    settings.bind = "127.0.0.1:0".parse()?;
    settings.data_dir = dir.path().to_path_buf();
    settings.harvest.enabled = false;
    // Mining has its own benchmark (cargo bench -p cairn-chain); here it would share the cores.
    settings.chain.mining = false;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let app = rt.block_on(async { Application::build(&settings) })?;
    let base = app.base_url().to_string();
    let pool = app.pool();
    let ledger = app.ledger();
    rt.spawn(app.run_until_stopped());
    let mut conn = pool.get()?;
    cairn::demo::seed(&mut conn)?;
    cairn::app::instructors::create(&mut conn, common::EMAIL, common::PASSWORD, 0)?;
    common::complete_profile(&mut conn)?;
    let data = cairn::db::courses::get_task_by_slug(&mut conn, "el30-data")?.id;
    let posts = seed_links(&mut conn, 1000, data, true)?;
    println!("badge benchmarks, {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));

    // 1. Award latency through the Reader's form.
    let client = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
    let latencies = rt.block_on(async {
        let csrf = common::sign_in(&client, &base).await?;
        let mut lat = Vec::with_capacity(posts.len());
        for id in &posts {
            let t = Instant::now();
            let res = client
                .post(format!("{base}/admin/reader/award"))
                .form(&[("csrf_token", csrf.as_str()), ("link_id", &id.to_string()), ("task_id", &data.to_string())])
                .send()
                .await?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(res.status() == 303, "award failed: {}", res.status());
        }
        Ok(lat)
    })?;
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "award latency (1,000 awards, POST to response): median {:.2} ms, p99 {:.2} ms   goal: median < 5 ms",
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99)
    );

    // 2. Serving with 10,000 assertions stored.
    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &base, raster: &raster, signer: ledger.key() };
    let more = seed_links(&mut conn, 9000, data, true)?;
    let t = Instant::now();
    let mut last = String::new();
    for id in more {
        last = cairn::app::award::award_link(&mut conn, &issuer, id, data, None, None, cairn::clock::system_now())?
            .public_id;
    }
    println!(
        "stored 9,000 more awards directly in {:.1} s ({} in all)",
        t.elapsed().as_secs_f64(),
        cairn::db::awards::count(&mut conn)?
    );
    let url = format!("{base}/assertions/{last}");
    match wrk(&url, "application/ld+json", 5) {
        Some((rps, p99)) => {
            println!("assertion JSON, wrk -c64: {rps:.0} requests/s, p99 {p99}   goal: >= 10,000 req/s, p99 < 20 ms")
        }
        None => println!("wrk not found: install it (apt-get install wrk) for the serving figures"),
    }
    if let Some((rps, p99)) = wrk(&url, "text/html", 5) {
        println!("verification page, wrk -c64: {rps:.0} requests/s, p99 {p99}");
    }

    // 3. The Reader with 100,000 Links.
    seed_links(&mut conn, 90_000, data, false)?;
    let total: i64 = links::table.count().get_result(&mut conn)?;
    let cursor: i64 = links::table.select(links::id).order(links::id.desc()).offset(499 * 25).first(&mut conn)?;
    let (first, deep) = rt.block_on(async {
        let mut first = Vec::new();
        let mut deep = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let res = client.get(format!("{base}/admin/reader")).send().await?;
            anyhow::ensure!(res.status() == 200);
            res.bytes().await?;
            first.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            let res = client.get(format!("{base}/admin/reader?before={cursor}")).send().await?;
            anyhow::ensure!(res.status() == 200);
            res.bytes().await?;
            deep.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        first.sort_by(f64::total_cmp);
        deep.sort_by(f64::total_cmp);
        Ok((first, deep))
    })?;
    println!(
        "reader with {total} links: first page median {:.1} ms, page 500 median {:.1} ms (max {:.1} / {:.1})   goal: both < 50 ms",
        percentile(&first, 0.5),
        percentile(&deep, 0.5),
        first.last().unwrap_or(&0.0),
        deep.last().unwrap_or(&0.0)
    );
    let _ = Duration::ZERO;
    Ok(())
}
