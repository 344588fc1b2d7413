//! Chain latency: how long after the fifth record a block holds it, at the default difficulty
//! (16 bits), on 127.0.0.1.
//! 1. Out of process: `cairn serve` on a temporary data dir, and `cairn award` run five times
//!    as separate processes. Timed from the fifth award's exit to the server starting its
//!    search (its log line) and to the block at `/chain/head`.
//! 2. In process, for comparison: awards made by the award use case beside a running server,
//!    waking the miner as the web handler does. Timed from the fifth award to the block.
//!
//! Run: `cargo bench --bench latency`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests and benchmarks fail loudly by design

mod common;
use common::percentile;

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn::config::Settings;
use cairn::startup::Application;

const ROUNDS: usize = 12;
/// How long one round may take before the benchmark gives up.
const BOUND: Duration = Duration::from_secs(60);

/// The `cairn` binary on `data_dir`, with nothing from this environment's `CAIRN_*` variables
/// or working directory.
fn cairn(data_dir: &std::path::Path, cwd: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cairn"));
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("CAIRN_") {
            c.env_remove(var);
        }
    }
    c.current_dir(cwd).env("CAIRN_DATA_DIR", data_dir).env("CAIRN_HARVEST_ENABLED", "false").env("RUST_LOG", "info");
    c
}

/// Kills the server when the benchmark ends, however it ends.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn summary(label: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{label}: median {:.0} ms, worst {:.0} ms, best {:.0} ms ({} rounds)",
        percentile(&ms, 0.5),
        ms.last().copied().unwrap_or(0.0),
        ms.first().copied().unwrap_or(0.0),
        ms.len()
    );
}

fn millis(from: Instant, to: Instant) -> f64 {
    // Signed: the server may start before the awarding process has finished exiting.
    if to >= from { (to - from).as_secs_f64() * 1000.0 } else { -((from - to).as_secs_f64() * 1000.0) }
}

fn out_of_process(rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cwd = tempfile::tempdir()?;
    let seeded = cairn(dir.path(), cwd.path()).arg("demo").output()?;
    anyhow::ensure!(seeded.status.success(), "cairn demo: {}", String::from_utf8_lossy(&seeded.stderr));
    let mut server = Server(
        cairn(dir.path(), cwd.path())
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?,
    );
    let stdout = server.0.stdout.take().expect("piped stdout");
    let stderr = server.0.stderr.take().expect("piped stderr");
    // Each search the server starts, stamped as its log line arrives.
    let (searches, searched) = mpsc::channel::<Instant>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("mining a block") {
                let _ = searches.send(Instant::now());
            }
        }
    });
    let (urls, url) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("Cairn is running at ") {
                let _ = urls.send(rest.split(' ').next().unwrap_or_default().trim_end_matches('/').to_string());
            }
        }
    });
    let base = url.recv_timeout(BOUND)?;
    let client = reqwest::Client::new();
    let height = || -> anyhow::Result<u64> {
        rt.block_on(async {
            let head: serde_json::Value = client.get(format!("{base}/chain/head")).send().await?.json().await?;
            head["height"].as_u64().ok_or_else(|| anyhow::anyhow!("no height in {head}"))
        })
    };

    let (mut to_search, mut to_block) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let target = height()? + 1;
        while searched.try_recv().is_ok() {}
        let mut exited = Instant::now();
        for i in 0..5 {
            let out = cairn(dir.path(), cwd.path())
                .args([
                    "award",
                    "--task",
                    "#el30-data",
                    "--recipient",
                    &format!("r{round}-{i}@example.edu"),
                    "--evidence",
                ])
                .arg(format!("https://blog{i}.example.org/{round}"))
                .output()?;
            exited = Instant::now();
            anyhow::ensure!(out.status.success(), "cairn award: {}", String::from_utf8_lossy(&out.stderr));
        }
        let deadline = exited + BOUND;
        while height()? < target {
            anyhow::ensure!(Instant::now() < deadline, "no block within {BOUND:?} in round {round}");
            std::thread::sleep(Duration::from_millis(2));
        }
        let block = Instant::now();
        let search = searched.recv_timeout(BOUND)?;
        to_search.push(millis(exited, search));
        to_block.push(millis(exited, block));
    }
    summary("out of process: fifth `cairn award` exits → the server starts its search", to_search);
    summary("out of process: fifth `cairn award` exits → the block at /chain/head  (goal: < 1000 ms)", to_block);
    Ok(())
}

fn in_process(rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut s = Settings::defaults();
    s.bind = "127.0.0.1:0".parse()?;
    s.data_dir = dir.path().to_path_buf();
    s.harvest.enabled = false;
    let app = rt.block_on(async { Application::build(&s) })?;
    let (base, pool, ledger) = (app.base_url().to_string(), app.pool(), app.ledger());
    rt.spawn(app.run_until_stopped());
    cairn::demo::seed(&mut *pool.get()?)?;
    let task = cairn::db::courses::get_task_by_slug(&mut *pool.get()?, "el30-data")?.id;
    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &base, raster: &raster, signer: ledger.key() };
    let mut times = Vec::new();
    for round in 0..ROUNDS {
        let target = ledger.with_chain(|c| c.height()) + 1;
        let mut conn = pool.get()?;
        for i in 0..5 {
            let req = cairn::app::award::AwardRequest {
                task_id: task,
                recipient_email: format!("r{round}-{i}@example.edu"),
                evidence_url: Some(format!("https://blog{i}.example.org/{round}")),
                ..Default::default()
            };
            cairn::app::award::award(&mut conn, &issuer, &req, cairn::clock::system_now())?;
        }
        drop(conn);
        let awarded = Instant::now();
        ledger.wake.notify_one();
        let deadline = awarded + BOUND;
        while ledger.with_chain(|c| c.height()) < target {
            anyhow::ensure!(Instant::now() < deadline, "no block within {BOUND:?} in round {round}");
            std::thread::sleep(Duration::from_millis(1));
        }
        times.push(millis(awarded, Instant::now()));
    }
    summary("in process: fifth award → the block", times);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    cairn::net::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    println!(
        "chain latency, difficulty 16 bits, {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    out_of_process(&rt)?;
    in_process(&rt)?;
    Ok(())
}
