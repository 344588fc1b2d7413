//! Serving at the framework's speed: the demo server (harvesting, delivery, mining and the
//! other background jobs running, one award made) under 64 keep-alive connections from two
//! client threads, `/health` and then one assertion's JSON-LD, 5 s each, three rounds in one
//! run (alternating, so that other load on the machine falls on both alike). Prints throughput
//! and latency of both per round, each round's ratio and the ratio over all rounds.
//!
//! A second demo server in the same run has the metrics listener on (`[metrics] bind`, so every
//! request is counted by route) and is scraped once a second during its rounds; its rounds
//! alternate with the first's, and the bench prints its throughput against the first's (goal:
//! within 5%).
//!
//! Run: `cargo bench --bench serve`. The load generator shares the machine's cores with the
//! server, as `wrk` would on the same host.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests and benchmarks fail loudly by design

mod common;
use common::percentile;

use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn::config::Settings;
use cairn::startup::Application;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

const CONNECTIONS: usize = 64;
const CLIENT_THREADS: usize = 2;
const SECONDS: u64 = 5;
const ROUNDS: usize = 3;

/// One route's figures.
struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

/// One keep-alive connection sending `GET path` back to back until `until`; latencies in ms.
async fn connection(
    addr: std::net::SocketAddr,
    path: String,
    accept: &'static str,
    until: Instant,
) -> (Vec<f64>, usize) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let (mut lat, mut errors) = (Vec::with_capacity(100_000), 0);
    let host = addr.to_string();
    while Instant::now() < until {
        let req = hyper::Request::get(path.as_str())
            .header("host", host.as_str())
            .header("accept", accept)
            .body(Empty::<Bytes>::new())
            .unwrap();
        let t = Instant::now();
        match sender.send_request(req).await {
            Ok(res) => {
                let ok = res.status() == 200;
                let body = res.into_body().collect().await;
                if ok && body.is_ok() {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                } else {
                    errors += 1;
                }
            }
            Err(_) => {
                errors += 1;
                break;
            }
        }
    }
    (lat, errors)
}

fn load(rt: &tokio::runtime::Runtime, addr: std::net::SocketAddr, path: &str, accept: &'static str) -> Figures {
    let start = Instant::now();
    let until = start + Duration::from_secs(SECONDS);
    let (mut lat, errors) = rt.block_on(async {
        let tasks: Vec<_> =
            (0..CONNECTIONS).map(|_| tokio::spawn(connection(addr, path.to_string(), accept, until))).collect();
        let (mut all, mut errors) = (Vec::new(), 0);
        for t in tasks {
            let (l, e) = t.await.unwrap();
            all.extend(l);
            errors += e;
        }
        (all, errors)
    });
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    assert!(!lat.is_empty(), "no request to {path} succeeded");
    Figures { rps: lat.len() as f64 / elapsed, p50_ms: percentile(&lat, 0.5), p99_ms: percentile(&lat, 0.99), errors }
}

/// A demo server with one award: its address, the award's assertion path, its store, and the
/// metrics listener's address when `metrics` is on.
struct Served {
    addr: std::net::SocketAddr,
    assertion: String,
    pool: cairn::db::DbPool,
    metrics: Option<std::net::SocketAddr>,
}

fn start(
    server_rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    metrics: bool,
) -> anyhow::Result<(Served, Settings)> {
    let mut settings = Settings::defaults();
    settings.bind = "127.0.0.1:0".parse()?;
    settings.data_dir = dir.to_path_buf();
    if metrics {
        settings.metrics.bind = Some("127.0.0.1:0".parse()?);
    }
    // As `cairn serve --demo`: harvesting, notification delivery, Webmention checks, peer
    // exchange, mining and housekeeping all run.
    let pool = cairn::startup::open_store(&settings)?;
    cairn::demo::seed(&mut *pool.get()?)?;
    let app = server_rt.block_on(async { Application::build_with_pool(&settings, pool.clone()) })?;
    let (addr, base, ledger, metrics) = (app.addr(), app.base_url().to_string(), app.ledger(), app.metrics_addr());
    server_rt.spawn(app.run_until_stopped());

    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &base, raster: &raster, signer: ledger.key() };
    let req = cairn::app::award::HashtagAward {
        task: "#el30-data".into(),
        recipient: "bench@example.edu".into(),
        evidence: "https://bench.example.org/data".into(),
        ..Default::default()
    };
    let award = cairn::app::award::award_by_hashtag(&mut *pool.get()?, &issuer, &req, cairn::clock::system_now())?;
    let assertion = format!("/assertions/{}", award.public_id);
    Ok((Served { addr, assertion, pool, metrics }, settings))
}

/// Scrapes `/metrics` once a second until `until`; returns how many scrapes answered 200.
async fn scrape_until(addr: std::net::SocketAddr, until: Instant) -> usize {
    let mut ok = 0;
    while Instant::now() < until {
        if let Ok(stream) = tokio::net::TcpStream::connect(addr).await
            && let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
        {
            tokio::spawn(conn);
            let req =
                hyper::Request::get("/metrics").header("host", addr.to_string()).body(Empty::<Bytes>::new()).unwrap();
            if let Ok(res) = sender.send_request(req).await
                && res.status() == 200
                && res.into_body().collect().await.is_ok()
            {
                ok += 1;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    ok
}

/// [`load`] on the metrics-on server, scraping its metrics listener meanwhile.
fn load_scraped(rt: &tokio::runtime::Runtime, served: &Served, path: &str, accept: &'static str) -> (Figures, usize) {
    let metrics = served.metrics.expect("the metrics listener is on");
    let scrapes = rt.spawn(scrape_until(metrics, Instant::now() + Duration::from_secs(SECONDS)));
    let f = load(rt, served.addr, path, accept);
    (f, rt.block_on(scrapes).unwrap())
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let on_dir = tempfile::tempdir()?;
    let server_rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (served, settings) = start(&server_rt, dir.path(), false)?;
    let (on, _) = start(&server_rt, on_dir.path(), true)?;
    let (addr, assertion, pool) = (served.addr, served.assertion.clone(), served.pool.clone());

    // What learning whether the store changed costs: paid at most once per `FRESH_FOR` and after
    // this server's own changes, not on every request from memory.
    let watch = cairn::db::documents::Watch::open(&settings.database_path())?;
    let t = Instant::now();
    for _ in 0..100_000 {
        watch.current()?;
    }
    let check_us = t.elapsed().as_secs_f64() * 10.0;
    let mut conn = pool.get()?;
    let t = Instant::now();
    for _ in 0..100_000 {
        cairn::db::documents::generation(&mut conn)?;
    }
    let read_us = t.elapsed().as_secs_f64() * 10.0;
    drop(conn);

    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(CLIENT_THREADS).enable_all().build()?;
    println!(
        "serving benchmark: {CONNECTIONS} keep-alive connections from {CLIENT_THREADS} client threads, {SECONDS} s per route, \
         {} cores shared by the server, its background jobs and the load generator",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!(
        "the check for changes (PRAGMA data_version on its own connection), made at most every {} ms: {check_us:.2} µs \
         (reading the generation row instead: {read_us:.2} µs)",
        cairn::web::FRESH_FOR.as_millis()
    );
    let (mut health_n, mut json_n, mut worst_p99) = (0.0, 0.0, 0.0_f64);
    let (mut on_n, mut scrapes) = (0.0, 0);
    for round in 1..=ROUNDS {
        let health = load(&client_rt, addr, "/health", "application/json");
        let (on_health, s1) = load_scraped(&client_rt, &on, "/health", "application/json");
        let json = load(&client_rt, addr, &assertion, "application/ld+json");
        let (on_json, s2) = load_scraped(&client_rt, &on, &on.assertion, "application/ld+json");
        scrapes += s1 + s2;
        on_n += on_health.rps + on_json.rps;
        for (name, f) in [("metrics on /health", &on_health), ("metrics on JSON-LD", &on_json)] {
            println!(
                "round {round} {name:>18}: {:>8.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                f.rps, f.p50_ms, f.p99_ms, f.errors
            );
        }
        println!(
            "round {round} metrics on / off throughput: /health {:.1}%, JSON-LD {:.1}%",
            on_health.rps / health.rps * 100.0,
            on_json.rps / json.rps * 100.0
        );
        for (name, f) in [("/health", &health), ("assertion JSON-LD", &json)] {
            println!(
                "round {round} {name:>18}: {:>8.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                f.rps, f.p50_ms, f.p99_ms, f.errors
            );
        }
        println!("round {round} assertion JSON / health throughput: {:.0}%", json.rps / health.rps * 100.0);
        (health_n, json_n, worst_p99) = (health_n + health.rps, json_n + json.rps, worst_p99.max(json.p99_ms));
    }
    let ratio = json_n / health_n;
    println!(
        "all rounds: assertion JSON / health throughput {:.0}%, worst assertion p99 {worst_p99:.2} ms   \
         goal: >= 50% and p99 < 20 ms: {}",
        ratio * 100.0,
        if ratio >= 0.5 && worst_p99 < 20.0 { "met" } else { "NOT met" }
    );
    let on_ratio = on_n / (health_n + json_n);
    println!(
        "all rounds: metrics on / metrics off throughput {:.1}% ({scrapes} scrapes of /metrics answered)   \
         goal: >= 95%: {}",
        on_ratio * 100.0,
        if on_ratio >= 0.95 { "met" } else { "NOT met" }
    );
    Ok(())
}
