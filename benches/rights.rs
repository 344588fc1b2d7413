//! Learners' rights and backups, on an instance with 100,000 harvested posts (10,000 learners
//! with 10 each) and 10,000 awards made by the real award code (baked PNG and SVG, chain
//! records):
//! 1. `cairn backup`'s work (`app::backup::create`, signed manifest with every member's
//!    SHA-256): time and archive size, beside the database's size; then restoring it into a
//!    fresh dir with every check (signature and hashes, schema against a freshly migrated
//!    database, counts, chain, institution and credential keys);
//! 2. forgetting a learner with 1,000 posts and 5 awards (`app::learners::forget`, the code
//!    behind `cairn learner forget` and both buttons), checkpoint included.
//!
//! Run: `bash scripts/bench.sh rights` or `cargo bench --bench rights`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests and benchmarks fail loudly by design

use std::time::Instant;

use cairn::config::Settings;
use cairn::db::schema::{authors, feeds, links};
use diesel::prelude::*;

const LEARNERS: usize = 10_000;
const POSTS_EACH: usize = 10;
const BIG_POSTS: usize = 1_000;

/// A feed owned by `author` with `n` posts; returns the post ids.
fn seed_posts(conn: &mut SqliteConnection, author: i64, n: usize, tag: &str) -> anyhow::Result<Vec<i64>> {
    let t = cairn::clock::system_now();
    let feed: i64 = diesel::insert_into(feeds::table)
        .values((
            feeds::author_id.eq(author),
            feeds::url.eq(format!("https://{tag}.example.org/feed.xml")),
            feeds::site_url.eq(Some(format!("https://{tag}.example.org/"))),
            feeds::status.eq("paused"),
            feeds::created_at.eq(t),
            feeds::updated_at.eq(t),
        ))
        .returning(feeds::id)
        .get_result(conn)?;
    let rows: Vec<_> = (0..n)
        .map(|i| {
            (
                links::feed_id.eq(feed),
                links::author_id.eq(author),
                links::item_key.eq(format!("id:{i}")),
                links::url.eq(Some(format!("https://{tag}.example.org/{i}"))),
                links::title.eq(format!("Post {i}: a reflection on networked learning")),
                links::summary_html.eq("<p>A paragraph of reflection about the week's readings, with a <a href=\"https://example.org/\">link</a>.</p>"),
                links::harvested_at.eq(t),
                links::changed_at.eq(t),
                links::content_hash.eq("x"),
            )
        })
        .collect();
    let mut ids = Vec::with_capacity(n);
    for chunk in rows.chunks(500) {
        ids.extend(diesel::insert_into(links::table).values(chunk).returning(links::id).get_results::<i64>(conn)?);
    }
    Ok(ids)
}

fn author(conn: &mut SqliteConnection, i: usize) -> anyhow::Result<i64> {
    Ok(diesel::insert_into(authors::table)
        .values((
            authors::name.eq(format!("Learner {i}")),
            authors::email.eq(format!("learner{i}@example.edu")),
            authors::created_at.eq(cairn::clock::system_now()),
        ))
        .returning(authors::id)
        .get_result(conn)?)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::defaults();
    settings.data_dir = dir.path().join("data");
    settings.harvest.enabled = false;
    let pool = cairn::startup::open_store(&settings)?;
    let key = cairn::ledger::load_key(&settings.data_dir)?;
    let raster = cairn::badges::bake::RasterCache::default();
    let base = "https://cairn.example.edu";
    let issuer = cairn::badges::award::Issuer { base, raster: &raster, signer: &key };
    let mut conn = pool.get()?;
    cairn::demo::seed(&mut conn)?;
    let tasks: Vec<i64> = ["el30-data", "el30-cloud", "el30-graph", "el30-identity", "el30-recognition"]
        .iter()
        .map(|s| cairn::db::courses::get_task_by_slug(&mut conn, s).map(|t| t.id))
        .collect::<Result<_, _>>()?;
    println!("rights benchmarks, {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));

    let started = Instant::now();
    let mut firsts = Vec::with_capacity(LEARNERS);
    cairn::db::write_tx(&mut conn, |c| -> anyhow::Result<()> {
        for i in 0..LEARNERS {
            let a = author(c, i)?;
            firsts.push(seed_posts(c, a, POSTS_EACH, &format!("learner{i}"))?[0]);
        }
        Ok(())
    })?;
    for (i, link) in firsts.iter().enumerate() {
        cairn::app::award::award_link(&mut conn, &issuer, *link, tasks[i % tasks.len()], None, None, 1_700_000_000)?;
    }
    // The learner to forget: 1,000 posts, five of them awarded.
    let big = author(&mut conn, LEARNERS)?;
    let big_posts = seed_posts(&mut conn, big, BIG_POSTS, "prolific")?;
    for (t, link) in tasks.iter().zip(&big_posts) {
        cairn::app::award::award_link(&mut conn, &issuer, *link, *t, None, None, 1_700_000_000)?;
    }
    // A rotated credential key, so that the archive holds one and the restore checks it.
    cairn::app::credentials::rotate(
        &mut conn,
        &cairn::app::access::Actor::institution(cairn::app::access::Surface::Cli),
        &settings.data_dir,
        &key,
        cairn::clock::system_now(),
    )?;
    let awards = cairn::db::backup::counts(&mut conn)?.awards;
    let posts: i64 = links::table.count().get_result(&mut conn)?;
    drop(conn);
    println!("seeded {posts} posts and {awards} awards in {:.1} s", started.elapsed().as_secs_f64());
    let db_bytes: u64 = ["cairn.db", "cairn.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(settings.data_dir.join(f)).ok())
        .map(|m| m.len())
        .sum();

    // 1. Backup and restore.
    let archive = dir.path().join("backup.tar.gz");
    let t = Instant::now();
    let written = cairn::app::backup::create(&pool, &settings, &archive, cairn::clock::system_now())?;
    let backup_secs = t.elapsed().as_secs_f64();
    println!(
        "backup: {backup_secs:.2} s; archive {:.1} MiB for a database of {:.1} MiB (database + WAL)",
        mib(written.bytes),
        mib(db_bytes)
    );
    let mut fresh = settings.clone();
    fresh.data_dir = dir.path().join("restored");
    let t = Instant::now();
    let restored = cairn::app::backup::restore(&archive, &fresh, Default::default(), cairn::clock::system_now())?;
    println!(
        "restore (files, signature and hashes, schema, counts, migrations, chain of {} blocks and {} own records, \
         keys checked): {:.2} s",
        restored.blocks,
        restored.own_records,
        t.elapsed().as_secs_f64()
    );

    // 2. Forget the learner with 1,000 posts.
    let mut conn = pool.get()?;
    let t = Instant::now();
    let done = cairn::app::learners::forget(
        &mut conn,
        &issuer,
        cairn::app::learners::Who::Author(big),
        cairn::app::learners::Requester::Staff(cairn::app::access::Actor::institution(
            cairn::app::access::Surface::Cli,
        )),
        cairn::clock::system_now(),
    )?;
    println!(
        "forget: {:.3} s for {} posts and {} awards (write-ahead log emptied: {})",
        t.elapsed().as_secs_f64(),
        done.posts_deleted,
        done.awards_withdrawn,
        done.log_emptied
    );
    Ok(())
}
