//! Newsletter benchmark: build one issue and send it to 10,000 confirmed readers through a
//! local SMTP sink (pooled connections, no pacing limit in the way), reporting the total time
//! and messages per second; and the award request's latency while the issue is being sent,
//! against idle.
//!
//! The latency comparison is made in one run, in rounds, so that whatever else loads the
//! machine falls on both sides alike: idle awards, a send of the issue with awards made one
//! after another while it lasts, idle awards, another send, and so on, ending idle. Each award,
//! idle or busy, is followed by the same short pause. The first send builds the issue; the
//! later ones send the same issue again (its copies queued anew), so every round does the same
//! work. Every sample is kept: medians and p99 of all idle and all busy samples, and each
//! round's medians.
//!
//! Run: `cargo bench --bench newsletter`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests and benchmarks fail loudly by design

mod common;
use common::percentile;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cairn::config::Settings;
use cairn::db::schema::{authors, feeds, link_tasks, links, newsletter_deliveries};
use cairn::startup::Application;
use diesel::prelude::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const READERS: usize = 10_000;
/// Sends of the issue, each preceded and the last followed by an idle block.
const ROUNDS: usize = 3;
/// Awards in each idle block (so `(ROUNDS + 1) * IDLE_BLOCK` idle samples).
const IDLE_BLOCK: usize = 70;
/// Awards made before measuring, so that first-use costs (caches, connections) are not counted.
const WARM_UP: usize = 10;
/// Learners with a post to award: enough for every idle and busy award.
const POSTS: usize = 15_000;
/// The pause after each award, idle and busy alike: awards come as an instructor's clicks do,
/// not as a flood that would itself slow the send, and the posts last through every round.
const THINK: std::time::Duration = std::time::Duration::from_millis(20);

/// An SMTP server on 127.0.0.1 that accepts every message and counts the newsletter's (award
/// emails go through it too).
async fn smtp_sink(count: Arc<AtomicUsize>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                let mut line = String::new();
                w.write_all(b"220 sink ESMTP\r\n").await?;
                loop {
                    line.clear();
                    if r.read_line(&mut line).await? == 0 {
                        return Ok::<(), std::io::Error>(());
                    }
                    let cmd = line.trim_end().to_ascii_uppercase();
                    if cmd.starts_with("EHLO") {
                        w.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?;
                    } else if cmd == "DATA" {
                        w.write_all(b"354 go ahead\r\n").await?;
                        let mut newsletter = false;
                        loop {
                            line.clear();
                            if r.read_line(&mut line).await? == 0 {
                                return Ok(());
                            }
                            if line == ".\r\n" {
                                break;
                            }
                            newsletter |= line.starts_with("To: reader");
                        }
                        if newsletter {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        w.write_all(b"250 queued\r\n").await?;
                    } else if cmd == "QUIT" {
                        w.write_all(b"221 bye\r\n").await?;
                        return Ok(());
                    } else {
                        w.write_all(b"250 OK\r\n").await?;
                    }
                }
            });
        }
    });
    port
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let received = Arc::new(AtomicUsize::new(0));
    let port = rt.block_on(smtp_sink(received.clone()));
    let received_now = received.clone();

    let dir = tempfile::tempdir()?;
    let mut settings = Settings::defaults();
    settings.bind = "127.0.0.1:0".parse()?;
    settings.data_dir = dir.path().to_path_buf();
    settings.harvest.enabled = false;
    settings.chain.mining = false;
    settings.newsletter.enabled = false;
    settings.newsletter.max_per_minute = 1_000_000;
    settings.mail.smtp_host = Some("127.0.0.1".into());
    settings.mail.smtp_port = port;
    settings.mail.smtp_tls = cairn::config::SmtpTls::None;
    let app = rt.block_on(async { Application::build(&settings) })?;
    let base = app.base_url().to_string();
    let pool = app.pool();
    let newsletter = app.newsletter();
    rt.spawn(app.run_until_stopped());
    let mut conn = pool.get()?;
    cairn::demo::seed(&mut conn)?;
    cairn::app::instructors::create(&mut conn, common::EMAIL, common::PASSWORD, 0)?;
    common::complete_profile(&mut conn)?;
    let course = cairn::db::courses::get_course_by_slug(&mut conn, cairn::demo::DEMO_SLUG)?.id;
    let task = cairn::db::courses::get_task_by_slug(&mut conn, "el30-data")?.id;
    let t = cairn::clock::system_now();
    // Learners' posts tied to a task: 30 land in the issue, all serve as awards' evidence.
    let posts: Vec<i64> = cairn::db::write_tx(&mut conn, |c| -> anyhow::Result<Vec<i64>> {
        let owner = cairn::db::feeds::find_or_create_author(c, "Owner", None, cairn::clock::system_now())?;
        let feed: i64 = diesel::insert_into(feeds::table)
            .values((
                feeds::author_id.eq(owner.id),
                feeds::url.eq("http://127.0.0.1:9/feed.xml"),
                feeds::status.eq("paused"),
                feeds::created_at.eq(t),
                feeds::updated_at.eq(t),
            ))
            .returning(feeds::id)
            .get_result(c)?;
        let mut ids = Vec::new();
        for i in 0..POSTS {
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
                    links::url.eq(format!("http://127.0.0.1:9/post/{i}")),
                    links::title.eq(format!("Post {i}")),
                    links::summary_html.eq("<p>What I learned this week, in a few words.</p>"),
                    links::harvested_at.eq(if i < 30 { t } else { t - 7 * 24 * 3600 }),
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
    for i in 0..READERS {
        cairn::db::newsletter::import(&mut conn, course, &format!("reader{i}@example.edu"), "", t)?;
    }
    // Webmentions would go to an unreachable site: off, so only the mail is measured.
    cairn::db::newsletter::save_settings(&mut conn, course, "UTC", "", false, t)?;
    drop(conn);

    let client = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
    let rounds = rt.block_on(async {
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
                let took = t.elapsed().as_secs_f64() * 1000.0;
                tokio::time::sleep(THINK).await;
                Ok::<f64, anyhow::Error>(took)
            }
        };
        for id in posts.iter().rev().take(WARM_UP) {
            award(*id).await?;
        }
        let mut rounds: Vec<Round> = Vec::new();
        // Idle blocks and sends draw on separate posts, so that a long send cannot leave the
        // last idle block without any.
        let idle_posts = (ROUNDS + 1) * IDLE_BLOCK;
        let mut next = posts[..idle_posts].iter().copied();
        let mut busy_posts = posts[idle_posts..posts.len() - WARM_UP].iter().copied();
        let idle_block = async |next: &mut dyn Iterator<Item = i64>| -> anyhow::Result<Vec<f64>> {
            let mut samples = Vec::with_capacity(IDLE_BLOCK);
            for _ in 0..IDLE_BLOCK {
                samples.push(award(next.next().expect("enough posts")).await?);
            }
            Ok(samples)
        };
        for round in 0..ROUNDS {
            let idle = idle_block(&mut next).await?;
            if round > 0 {
                // The same issue again: every copy queued anew.
                let mut c = pool.get()?;
                diesel::update(newsletter_deliveries::table)
                    .set((
                        newsletter_deliveries::status.eq("queued"),
                        newsletter_deliveries::attempts.eq(0),
                        newsletter_deliveries::next_attempt_at.eq(0),
                    ))
                    .execute(&mut c)?;
            }
            let arrived = received_now.load(Ordering::Relaxed);
            let start = Instant::now();
            let nl = newsletter.clone();
            let sending = tokio::spawn(async move {
                if round == 0 {
                    let built = nl.send_now(course, "2026-12-01", cairn::clock::system_now()).await?;
                    anyhow::ensure!(matches!(built, cairn::app::newsletter::Built::Queued { .. }), "{built:?}");
                } else {
                    while nl.deliver_due().await? > 0 {}
                }
                Ok::<(), anyhow::Error>(())
            });
            let mut busy = Vec::new();
            while !sending.is_finished() {
                let Some(id) = busy_posts.next() else { break };
                busy.push(award(id).await?);
            }
            sending.await??;
            // The server's own sending pass may still hold the last copies it claimed: the
            // issue is sent when every copy has arrived (bounded wait).
            let deadline = Instant::now() + std::time::Duration::from_secs(120);
            while received_now.load(Ordering::Relaxed) - arrived < READERS && Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let total = start.elapsed();
            let sent = received_now.load(Ordering::Relaxed) - arrived;
            rounds.push(Round { idle, busy, total, sent });
        }
        let last_idle = idle_block(&mut next).await?;
        Ok::<_, anyhow::Error>((rounds, last_idle))
    })?;
    let (rounds, last_idle) = rounds;

    println!(
        "newsletter benchmark: one issue (30 posts) to {READERS} confirmed readers through a local SMTP sink, \
         {ROUNDS} rounds"
    );
    let mut all_idle: Vec<f64> = last_idle.clone();
    let mut all_busy: Vec<f64> = Vec::new();
    for (i, r) in rounds.iter().enumerate() {
        let what = if i == 0 { "build + send" } else { "send again  " };
        println!(
            "round {}: {what} {:.2} s, {} messages received, {:.0} messages/s; award median idle {:.2} ms, \
             while sending {} ({} awards)",
            i + 1,
            r.total.as_secs_f64(),
            r.sent,
            r.sent as f64 / r.total.as_secs_f64(),
            median(&r.idle),
            if r.busy.is_empty() { "-".to_string() } else { format!("{:.2} ms", median(&r.busy)) },
            r.busy.len()
        );
        all_idle.extend(&r.idle);
        all_busy.extend(&r.busy);
    }
    println!("final idle block: award median {:.2} ms", median(&last_idle));
    let build_send = rounds[0].total.as_secs_f64();
    println!(
        "build + send: {build_send:.2} s, {:.0} messages/s   goal: under 60 s ({})",
        rounds[0].sent as f64 / build_send,
        if build_send < 60.0 { "holds" } else { "does not hold" }
    );
    all_idle.sort_by(f64::total_cmp);
    all_busy.sort_by(f64::total_cmp);
    println!(
        "award latency, idle:            median {:.2} ms, p99 {:.2} ms ({} awards)",
        percentile(&all_idle, 0.5),
        percentile(&all_idle, 0.99),
        all_idle.len()
    );
    if all_busy.is_empty() {
        println!("award latency, while sending:   no award finished during a send");
    } else {
        let ratio = percentile(&all_busy, 0.5) / percentile(&all_idle, 0.5);
        println!(
            "award latency, while sending:   median {:.2} ms, p99 {:.2} ms ({} awards)",
            percentile(&all_busy, 0.5),
            percentile(&all_busy, 0.99),
            all_busy.len()
        );
        println!(
            "award latency while sending / idle (medians): {:.2} ({:+.0}%)   goal: within 20% of idle ({})",
            ratio,
            (ratio - 1.0) * 100.0,
            if ratio <= 1.2 { "holds" } else { "does not hold" }
        );
    }
    for (i, r) in rounds.iter().enumerate() {
        anyhow::ensure!(r.sent == READERS, "round {}: {} of {READERS} messages arrived", i + 1, r.sent);
    }
    Ok(())
}

/// One send of the issue and the idle block before it.
struct Round {
    idle: Vec<f64>,
    busy: Vec<f64>,
    total: std::time::Duration,
    sent: usize,
}

/// The median of unsorted samples.
fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile(&sorted, 0.5)
}
