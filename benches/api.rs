//! API award benchmark against the real server on 127.0.0.1, with a bearer token:
//! 1. single awards: 500 `POST /api/v1/awards`, one after another, each with an
//!    Idempotency-Key (request to response: the assertion, both baked images, its chain
//!    record, its notifications and the idempotency answer stored), median and p99;
//! 2. batches: 10 `POST /api/v1/awards/batch` of 500 awards each, median and p99 per batch and
//!    the rate in awards per second (goal: at least 2,000).
//!
//! Run: `bash scripts/bench.sh api` or `cargo bench --bench api`. Mining and harvesting are off
//! (they have their own benchmarks), so the figures are the API path's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests and benchmarks fail loudly by design

mod common;
use common::percentile;

use std::time::Instant;

use cairn::config::Settings;
use cairn::startup::Application;

const SINGLE: usize = 500;
const BATCHES: usize = 10;
const BATCH: usize = 500;

fn award(i: usize) -> serde_json::Value {
    serde_json::json!({"task": "#el30-data", "recipient": format!("learner{i}@example.edu"),
        "evidence": format!("https://learner{i}.example.org/data"), "narrative": "A clear map of the course's data."})
}

fn summary(what: &str, mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&ms, 0.5), percentile(&ms, 0.99));
    println!("{what}: {} requests, median {p50:.1} ms, p99 {p99:.1} ms", ms.len());
    (p50, p99)
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::defaults();
    settings.bind = "127.0.0.1:0".parse()?;
    settings.data_dir = dir.path().to_path_buf();
    settings.harvest.enabled = false;
    settings.chain.mining = false;
    settings.api.requests_per_minute = 1_000_000;
    cairn::net::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let app = rt.block_on(async { Application::build(&settings) })?;
    let base = app.base_url().to_string();
    let pool = app.pool();
    rt.spawn(app.run_until_stopped());
    let mut conn = pool.get()?;
    cairn::demo::seed(&mut conn)?;
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
    drop(conn);
    println!("API benchmarks, {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let client = reqwest::Client::new();

    let single = rt.block_on(async {
        let mut lat = Vec::with_capacity(SINGLE);
        for i in 0..SINGLE {
            let t = Instant::now();
            let res = client
                .post(format!("{base}/api/v1/awards"))
                .bearer_auth(&token)
                .header("Idempotency-Key", format!("single-{i}"))
                .json(&award(i))
                .send()
                .await?;
            anyhow::ensure!(res.status() == 201, "award failed: {}", res.status());
            res.bytes().await?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(lat)
    })?;
    let total: f64 = single.iter().sum();
    summary("single awards", single);
    println!("single awards: {:.0} awards/s one at a time", SINGLE as f64 / (total / 1000.0));

    let batches = rt.block_on(async {
        let mut lat = Vec::with_capacity(BATCHES);
        for b in 0..BATCHES {
            let items: Vec<_> = (0..BATCH).map(|i| award(SINGLE + b * BATCH + i)).collect();
            let t = Instant::now();
            let res = client
                .post(format!("{base}/api/v1/awards/batch"))
                .bearer_auth(&token)
                .header("Idempotency-Key", format!("batch-{b}"))
                .json(&serde_json::json!({ "awards": items }))
                .send()
                .await?;
            anyhow::ensure!(res.status() == 200, "batch failed: {}", res.status());
            let out: serde_json::Value = res.json().await?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(out["awarded"] == BATCH, "not every award was made: {}", out["refused"]);
        }
        Ok(lat)
    })?;
    let total: f64 = batches.iter().sum();
    let (p50, _) = summary("batches of 500", batches);
    let rate = (BATCHES * BATCH) as f64 / (total / 1000.0);
    println!(
        "batches of 500: {rate:.0} awards/s overall, {:.0} awards/s at the median batch (goal: at least 2,000) {}",
        BATCH as f64 / (p50 / 1000.0),
        if rate >= 2000.0 { "MET" } else { "NOT MET" }
    );
    let n = cairn::db::awards::count(&mut *pool.get()?)?;
    anyhow::ensure!(n as usize == SINGLE + BATCHES * BATCH, "{n} awards stored");
    Ok(())
}
