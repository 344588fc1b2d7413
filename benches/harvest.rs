//! Harvest benchmark: 1,000 distinct RSS feeds of 20 items each, served over HTTP on
//! 127.0.0.1, harvested into a fresh database; then a second pass in which every feed
//! answers 304. In the same run the same 1,000 documents are parsed and stored without
//! HTTP, and parsed by Python's feedparser as the baseline: five alternating rounds of Cairn
//! parsing and storing on one core and feedparser parsing, each given in wall and CPU time.
//! Cairn stores as the harvester does: the feeds parsed meanwhile, up to
//! `harvest::STORE_GROUP`, in one transaction, each feed in a savepoint of its own.
//!
//! Run: `bash scripts/bench.sh harvest` (sets up feedparser), or `cargo bench --bench harvest`.
//! The per-host limit is raised to 32 here, because every feed lives on one host
//! (127.0.0.1); with the default of 2 the run measures the politeness limit, not Cairn.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests and benchmarks fail loudly by design

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use cairn::config::HarvestSettings;
use cairn::db::feeds::{self, FeedStatus, NewFeed};

const FEEDS: usize = 1000;
const ITEMS: usize = 20;
const ROUNDS: usize = 5;

fn feed_xml(n: usize) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel><title>Learner {n}'s blog</title>\
         <link>https://learner{n}.example.org/</link><description>Posts by learner {n}</description>\n"
    );
    for i in 0..ITEMS {
        let tag = ["#el30-data", "#el30-cloud", "#el30-graph", "#el30-identity", "none"][(n + i) % 5];
        s.push_str(&format!(
            "<item><title>Post {i} of learner {n}: thinking about networks &amp; learning</title>\
             <link>https://learner{n}.example.org/{i}</link><guid>https://learner{n}.example.org/{i}</guid>\
             <pubDate>Mon, 15 Oct 2018 {:02}:{:02}:00 GMT</pubDate><category>elearning</category>\
             <description>&lt;p&gt;This week I read about distributed learning and wrote this post for {tag}. \
             It links to &lt;a href=\"https://other{n}.example.org/post\"&gt;a classmate&lt;/a&gt; and has an \
             &lt;em&gt;emphasised&lt;/em&gt; idea, a list &lt;ul&gt;&lt;li&gt;one&lt;/li&gt;&lt;li&gt;two&lt;/li&gt;&lt;/ul&gt; \
             and an image &lt;img src=\"/img/{i}.png\" alt=\"chart\"&gt; to sanitise.&lt;/p&gt;</description></item>\n",
            i % 24,
            n % 60
        ));
    }
    s.push_str("</channel></rss>\n");
    s
}

async fn serve_feed(req: HttpRequest, docs: web::Data<Vec<String>>, path: web::Path<usize>) -> HttpResponse {
    let n = path.into_inner();
    let Some(doc) = docs.get(n) else { return HttpResponse::NotFound().finish() };
    let etag = format!("\"f{n}\"");
    if req.headers().get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return HttpResponse::NotModified().insert_header(("ETag", etag)).finish();
    }
    HttpResponse::Ok().content_type("application/rss+xml").insert_header(("ETag", etag)).body(doc.clone())
}

fn main() -> anyhow::Result<()> {
    let docs: Vec<String> = (0..FEEDS).map(feed_xml).collect();
    let bytes: usize = docs.iter().map(String::len).sum();
    println!(
        "harvest benchmark: {FEEDS} feeds x {ITEMS} items ({:.1} MB of XML), {} cores",
        bytes as f64 / 1e6,
        num_cpus()
    );

    // The feed server runs on its own threads.
    let (tx, rx) = std::sync::mpsc::channel();
    let server_docs = web::Data::new(docs.clone());
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new().app_data(server_docs.clone()).route("/feed/{n}.xml", web::get().to(serve_feed))
            })
            .workers(1)
            .bind("127.0.0.1:0")
            .unwrap();
            tx.send(server.addrs()[0]).unwrap();
            server.run().await.unwrap();
        })
    });
    let addr = rx.recv_timeout(Duration::from_secs(10))?;
    let origin = format!("http://{addr}");

    let dir = tempfile::tempdir()?;
    let pool = cairn::db::open(&dir.path().join("cairn.db"))?;
    cairn::demo::seed(&mut *pool.get()?)?;
    {
        let mut c = pool.get()?;
        cairn::db::write_tx(&mut c, |c| -> anyhow::Result<()> {
            for n in 0..FEEDS {
                let a = feeds::find_or_create_author(c, &format!("Learner {n}"), None, cairn::clock::system_now())?;
                let url = format!("{origin}/feed/{n}.xml");
                feeds::create_feed(
                    c,
                    NewFeed {
                        author_id: a.id,
                        url: &url,
                        title: "",
                        site_url: None,
                        status: FeedStatus::Active,
                        confirm_token_hash: None,
                        manage_token_hash: None,
                    },
                    cairn::clock::system_now(),
                )?;
            }
            Ok(())
        })?;
    }
    let settings = HarvestSettings { per_host: 32, concurrency: 32, ..HarvestSettings::default() };
    let fetcher = cairn::harvest::fetcher(&settings, std::slice::from_ref(&origin), "http://127.0.0.1")?;
    let harvester =
        cairn::harvest::Harvester::new(pool.clone(), fetcher, settings.clone(), cairn::clock::Clock::system());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;

    let t = Instant::now();
    let first = rt.block_on(harvester.run_pass(None, &|_, _| {}))?;
    let first_time = t.elapsed();
    assert_eq!(first.failed, 0, "{first:?}");
    assert_eq!(first.added as usize, FEEDS * ITEMS);
    {
        use cairn::db::schema::feeds::dsl;
        use diesel::prelude::*;
        diesel::update(dsl::feeds).set(dsl::next_poll_at.eq(0)).execute(&mut pool.get()?)?;
    }
    let t = Instant::now();
    let second = rt.block_on(harvester.run_pass(None, &|_, _| {}))?;
    let second_time = t.elapsed();
    assert_eq!(second.not_modified, FEEDS, "{second:?}");
    println!(
        "first pass:  {:>7.2} s  ({:.0} items/s, {:.0} feeds/s)   goal < 5 s",
        first_time.as_secs_f64(),
        (FEEDS * ITEMS) as f64 / first_time.as_secs_f64(),
        FEEDS as f64 / first_time.as_secs_f64()
    );
    println!(
        "second pass: {:>7.2} s  (all {} feeds answered 304)          goal < 1 s",
        second_time.as_secs_f64(),
        second.not_modified
    );

    // Parse and store without HTTP, from files, into a fresh database.
    let files = tempfile::tempdir()?;
    for (n, d) in docs.iter().enumerate() {
        std::fs::write(files.path().join(format!("{n}.xml")), d)?;
    }
    let (_dir2, pool2, _) = fresh_store()?;
    let mut c = pool2.get()?;
    let tags = Arc::new(cairn::db::links::task_tags(&mut c)?);
    let bodies: Vec<Vec<u8>> =
        (0..FEEDS).map(|n| std::fs::read(files.path().join(format!("{n}.xml")))).collect::<Result<_, _>>()?;
    let t = Instant::now();
    for b in &bodies {
        let p = cairn::harvest::parse::parse(b, None, &url::Url::parse("https://learner.example.org/feed.xml")?)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(p.items.len(), ITEMS);
    }
    println!("parse only (from memory):  {:>7.2} s", t.elapsed().as_secs_f64());
    let base = url::Url::parse("https://learner.example.org/feed.xml")?;
    drop(c);
    drop(pool2);
    // The harvester's shape: parsing on every core, one writer storing (a fresh database).
    let (_dir3, pool3, rows3) = fresh_store()?;
    let mut c3 = pool3.get()?;
    let t = Instant::now();
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, cairn::harvest::parse::ParsedFeed)>(64);
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let stored3 = std::thread::scope(|s| -> anyhow::Result<i64> {
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, files, base) = (&next, files.path(), &base);
            s.spawn(move || {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= FEEDS {
                        return;
                    }
                    let body = std::fs::read(files.join(format!("{n}.xml"))).expect("fixture");
                    let parsed = cairn::harvest::parse::parse(&body, None, base).expect("parses");
                    if tx.send((n, parsed)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut stored = 0;
        let mut group = Vec::with_capacity(cairn::harvest::STORE_GROUP);
        while let Ok((n, parsed)) = rx.recv() {
            group.push((&rows3[n], parsed));
            // What else has arrived goes into the same transaction.
            while group.len() < cairn::harvest::STORE_GROUP
                && let Ok((n, parsed)) = rx.try_recv()
            {
                group.push((&rows3[n], parsed));
            }
            stored += store_group(&mut c3, &mut group, &tags)?;
        }
        Ok(stored)
    })?;
    let pipe_time = t.elapsed();
    assert_eq!(stored3 as usize, FEEDS * ITEMS);
    let pipe_rate = FEEDS as f64 / pipe_time.as_secs_f64();
    println!("parse on {workers} cores + one writer: {:>7.2} s  ({pipe_rate:.0} feeds/s)", pipe_time.as_secs_f64());
    drop(c3);

    // One core, Cairn against feedparser: alternating rounds, so that other load on the machine
    // falls on both alike. Wall time and CPU time (of the storing thread; of the Python process).
    let python = std::env::var("CAIRN_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let (mut wall_ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let (_dir, pool, rows) = fresh_store()?;
        let mut c = pool.get()?;
        let (t, cpu) = (Instant::now(), thread_cpu());
        let mut stored = 0;
        let mut group = Vec::with_capacity(cairn::harvest::STORE_GROUP);
        for (n, f) in rows.iter().enumerate() {
            let body = std::fs::read(files.path().join(format!("{n}.xml")))?;
            let parsed = cairn::harvest::parse::parse(&body, None, &base).map_err(|e| anyhow::anyhow!("{e}"))?;
            group.push((f, parsed));
            if group.len() == cairn::harvest::STORE_GROUP || n + 1 == rows.len() {
                stored += store_group(&mut c, &mut group, &tags)?;
            }
        }
        let (wall, cpu) = (t.elapsed().as_secs_f64(), thread_cpu() - cpu);
        assert_eq!(stored as usize, FEEDS * ITEMS);
        println!(
            "round {round} Cairn parse+store from files, one core: {wall:>6.2} s wall, {cpu:>6.2} s CPU  ({:.0} feeds/s)",
            FEEDS as f64 / wall
        );
        match feedparser(&python, files.path()) {
            Ok((py_wall, py_cpu)) => {
                println!(
                    "round {round} feedparser parse only:               {py_wall:>6.2} s wall, {py_cpu:>6.2} s CPU"
                );
                println!("round {round} ratio: {:.1}x wall, {:.1}x CPU", py_wall / wall, py_cpu / cpu);
                wall_ratios.push(py_wall / wall);
                cpu_ratios.push(py_cpu / cpu);
            }
            Err(e) => {
                println!("feedparser baseline skipped: {e} (run scripts/bench.sh to install it)");
                break;
            }
        }
    }
    if !wall_ratios.is_empty() {
        wall_ratios.sort_by(f64::total_cmp);
        cpu_ratios.sort_by(f64::total_cmp);
        println!(
            "ratio (Cairn parse+store / feedparser parse), one core, median of {} rounds: {:.1}x wall, {:.1}x CPU \
             (range {:.1}-{:.1}x wall)   goal >= 10x",
            wall_ratios.len(),
            common::percentile(&wall_ratios, 0.5),
            common::percentile(&cpu_ratios, 0.5),
            wall_ratios[0],
            wall_ratios[wall_ratios.len() - 1]
        );
    }
    Ok(())
}

/// Stores a group of parsed feeds as the harvester's writer does (`db::group`): one
/// transaction, each feed in a savepoint of its own. Returns the number of items added.
fn store_group(
    c: &mut diesel::SqliteConnection,
    group: &mut Vec<(&cairn::db::feeds::Feed, cairn::harvest::parse::ParsedFeed)>,
    tags: &std::collections::HashMap<String, i64>,
) -> anyhow::Result<i64> {
    let now = cairn::clock::system_now();
    let added = cairn::db::write_tx(c, |c| -> cairn::db::StoreResult<i64> {
        let mut added = 0;
        for (feed, parsed) in group.drain(..) {
            // As the harvester does: the site the document declares is the learner's own.
            let feed = cairn::db::feeds::Feed { site_url: parsed.site_url.clone(), ..feed.clone() };
            added +=
                cairn::db::write_tx(c, |c| cairn::db::links::store_items(c, &feed, &parsed.items, tags, now))?.added;
        }
        Ok(added)
    })?;
    Ok(added)
}

/// A fresh database with the demo tasks and one feed row per document.
fn fresh_store() -> anyhow::Result<(tempfile::TempDir, cairn::db::DbPool, Vec<cairn::db::feeds::Feed>)> {
    let dir = tempfile::tempdir()?;
    let pool = cairn::db::open(&dir.path().join("cairn.db"))?;
    let mut c = pool.get()?;
    cairn::demo::seed(&mut c)?;
    let mut rows = Vec::new();
    for n in 0..FEEDS {
        let a = feeds::find_or_create_author(&mut c, &format!("Learner {n}"), None, cairn::clock::system_now())?;
        let url = format!("file:///{n}.xml");
        rows.push(feeds::create_feed(
            &mut c,
            NewFeed {
                author_id: a.id,
                url: &url,
                title: "",
                site_url: None,
                status: FeedStatus::Active,
                confirm_token_hash: None,
                manage_token_hash: None,
            },
            cairn::clock::system_now(),
        )?);
    }
    drop(c);
    Ok((dir, pool, rows))
}

/// feedparser's (wall, CPU) seconds for parsing every document in `dir`, imports excluded.
fn feedparser(python: &str, dir: &std::path::Path) -> anyhow::Result<(f64, f64)> {
    let script = "import sys, time, glob, feedparser\nfiles = sorted(glob.glob(sys.argv[1] + '/*.xml'))\n\
                  t, c = time.perf_counter(), time.process_time()\nn = 0\nfor f in files:\n    d = feedparser.parse(f)\n    \
                  n += len(d.entries)\nprint(len(files), n, time.perf_counter() - t, time.process_time() - c)\n";
    let out = std::process::Command::new(python).arg("-c").arg(script).arg(dir).output()?;
    anyhow::ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
    let text = String::from_utf8_lossy(&out.stdout);
    let parts: Vec<f64> = text.split_whitespace().filter_map(|s| s.parse().ok()).collect();
    let [_, entries, wall, cpu] = parts[..] else { anyhow::bail!("unexpected output: {text}") };
    assert_eq!(entries as usize, FEEDS * ITEMS, "feedparser read every item");
    Ok((wall, cpu))
}

/// CPU seconds the calling thread has run (Linux's per-thread scheduler statistics).
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
