//! Notification benchmark: 1,000 awards whose posts advertise Webmention endpoints on a
//! local server. Measures the award request's p99 latency with the outbox idle and while
//! it drains, and the time until every Webmention is delivered.
//!
//! Run: `cargo bench --bench notify` (mining off: it has its own benchmark).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests and benchmarks fail loudly by design

mod common;
use common::percentile;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use cairn::config::Settings;
use cairn::db::schema::{authors, feeds, link_tasks, links, outbox};
use cairn::startup::Application;
use diesel::prelude::*;

fn main() -> anyhow::Result<()> {
    // The learners' site: every post advertises /wm; /wm counts POSTs.
    let received = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    let r = received.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                let r = r.clone();
                App::new()
                    .route(
                        "/post/{n}",
                        web::get().to(|| async {
                            HttpResponse::Ok()
                                .content_type("text/html")
                                .body(r#"<link rel="webmention" href="/wm"><p>post</p>"#)
                        }),
                    )
                    .route(
                        "/wm",
                        web::post().to(move || {
                            let r = r.clone();
                            async move {
                                r.fetch_add(1, Ordering::Relaxed);
                                HttpResponse::Accepted().finish()
                            }
                        }),
                    )
            })
            .workers(1)
            .bind("127.0.0.1:0")
            .unwrap();
            tx.send(server.addrs()[0]).unwrap();
            server.run().await.unwrap();
        })
    });
    let site = format!("http://{}", rx.recv_timeout(Duration::from_secs(10))?);

    let dir = tempfile::tempdir()?;
    let mut settings = Settings::defaults();
    settings.bind = "127.0.0.1:0".parse()?;
    settings.data_dir = dir.path().to_path_buf();
    settings.harvest.enabled = false;
    settings.chain.mining = false;
    settings.allow_origins = vec![site.clone()];
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let app = rt.block_on(async { Application::build(&settings) })?;
    let base = app.base_url().to_string();
    let pool = app.pool();
    rt.spawn(app.run_until_stopped());
    let mut conn = pool.get()?;
    cairn::demo::seed(&mut conn)?;
    cairn::app::instructors::create(&mut conn, common::EMAIL, common::PASSWORD, 0)?;
    common::complete_profile(&mut conn)?;
    let task = cairn::db::courses::get_task_by_slug(&mut conn, "el30-data")?.id;
    let t = cairn::clock::system_now();
    let posts: Vec<i64> = cairn::db::write_tx(&mut conn, |c| -> anyhow::Result<Vec<i64>> {
        let owner = cairn::db::feeds::find_or_create_author(c, "Owner", None, cairn::clock::system_now())?;
        let feed: i64 = diesel::insert_into(feeds::table)
            .values((
                feeds::author_id.eq(owner.id),
                feeds::url.eq(format!("{site}/feed.xml")),
                feeds::status.eq("paused"),
                feeds::created_at.eq(t),
                feeds::updated_at.eq(t),
            ))
            .returning(feeds::id)
            .get_result(c)?;
        let mut ids = Vec::new();
        for i in 0..1200 {
            let a: i64 = diesel::insert_into(authors::table)
                .values((
                    authors::name.eq(format!("L{i}")),
                    authors::email.eq(format!("l{i}@example.edu")),
                    authors::created_at.eq(t),
                ))
                .returning(authors::id)
                .get_result(c)?;
            let l: i64 = diesel::insert_into(links::table)
                .values((
                    links::feed_id.eq(feed),
                    links::author_id.eq(a),
                    links::item_key.eq(format!("id:{i}")),
                    links::url.eq(format!("{site}/post/{i}")),
                    links::title.eq(format!("Post {i}")),
                    links::harvested_at.eq(t),
                    links::changed_at.eq(t),
                    links::content_hash.eq("x"),
                ))
                .returning(links::id)
                .get_result(c)?;
            diesel::insert_into(link_tasks::table)
                .values((
                    link_tasks::link_id.eq(l),
                    link_tasks::task_id.eq(task),
                    link_tasks::source.eq("hashtag"),
                    link_tasks::tied.eq(true),
                    link_tasks::created_at.eq(t),
                ))
                .execute(c)?;
            ids.push(l);
        }
        Ok(ids)
    })?;
    let queued = |conn: &mut SqliteConnection| -> i64 {
        outbox::table.filter(outbox::status.eq("queued")).count().get_result(conn).unwrap_or(0)
    };

    let client = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
    let (idle, busy, drain) = rt.block_on(async {
        let csrf = common::sign_in(&client, &base).await?;
        let award = |id: i64| {
            let (client, csrf, base) = (client.clone(), csrf.clone(), base.clone());
            async move {
                let t = Instant::now();
                let res = client
                    .post(format!("{base}/admin/reader/award"))
                    .form(&[
                        ("csrf_token", csrf.as_str()),
                        ("link_id", &id.to_string()),
                        ("task_id", &task.to_string()),
                    ])
                    .send()
                    .await?;
                anyhow::ensure!(res.status() == 303, "award failed: {}", res.status());
                Ok::<f64, anyhow::Error>(t.elapsed().as_secs_f64() * 1000.0)
            }
        };
        // Idle: each award made once the outbox is empty again.
        let mut idle = Vec::new();
        for id in &posts[..200] {
            idle.push(award(*id).await?);
            let deadline = Instant::now() + Duration::from_secs(30);
            while queued(&mut *pool.get()?) > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        // Busy: 1,000 awards back to back while the outbox drains.
        let start = Instant::now();
        let before = received.load(Ordering::Relaxed);
        let mut busy = Vec::new();
        for id in &posts[200..] {
            busy.push(award(*id).await?);
        }
        let deadline = Instant::now() + Duration::from_secs(300);
        while received.load(Ordering::Relaxed) - before < 1000 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok::<_, anyhow::Error>((idle, busy, start.elapsed()))
    })?;
    let (mut idle, mut busy) = (idle, busy);
    idle.sort_by(f64::total_cmp);
    busy.sort_by(f64::total_cmp);
    println!("notify benchmark: 1,000 awards, posts with Webmention endpoints on 127.0.0.1 (emails go to .eml files)");
    println!(
        "award latency, outbox idle:     median {:.2} ms, p99 {:.2} ms",
        percentile(&idle, 0.5),
        percentile(&idle, 0.99)
    );
    println!(
        "award latency, outbox draining: median {:.2} ms, p99 {:.2} ms   goal: p99 within 20% of idle",
        percentile(&busy, 0.5),
        percentile(&busy, 0.99)
    );
    println!(
        "all 1,000 Webmentions delivered {:.2} s after the first of the 1,000 awards ({} received)",
        drain.as_secs_f64(),
        received.load(Ordering::Relaxed)
    );
    Ok(())
}
