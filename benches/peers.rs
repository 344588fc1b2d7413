//! Peer benchmarks, real servers on 127.0.0.1:
//! 1. a new instance syncing a 10,000-block "0000" chain from a peer, with full validation;
//! 2. three instances mining: time from an award (5 in flight) until the block holding it is
//!    the tip on all three, over 20 blocks.
//!
//! Run: `cargo bench --bench peers`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests and benchmarks fail loudly by design

mod common;
use common::percentile;

use std::time::{Duration, Instant};

use cairn::config::Settings;
use cairn::startup::Application;
use cairn_chain::{Block, Record, RecordFields, RecordKind};

struct Node {
    url: String,
    pool: cairn::db::DbPool,
    ledger: std::sync::Arc<cairn::ledger::Ledger>,
    _dir: tempfile::TempDir,
}

fn node(rt: &tokio::runtime::Runtime, network: &str, mining: bool) -> anyhow::Result<Node> {
    let dir = tempfile::tempdir()?;
    let mut s = Settings::defaults();
    s.bind = "127.0.0.1:0".parse()?;
    s.data_dir = dir.path().to_path_buf();
    s.harvest.enabled = false;
    s.chain.mining = mining;
    s.chain.network = network.into();
    let app = rt.block_on(async { Application::build(&s) })?;
    let n = Node { url: app.base_url().to_string(), pool: app.pool(), ledger: app.ledger(), _dir: dir };
    rt.spawn(app.run_until_stopped());
    Ok(n)
}

fn trust(a: &Node, b: &Node) -> anyhow::Result<()> {
    let peer = cairn::app::peers::Candidate {
        url: b.url.clone(),
        public_key: b.ledger.institution_id(),
        name: "peer".into(),
        base_url: String::new(),
    };
    cairn::app::peers::trust(
        &mut *a.pool.get()?,
        &cairn::app::access::Actor::institution(cairn::app::access::Surface::System),
        None,
        &peer,
        cairn::clock::system_now(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    a.ledger.refresh_trust()
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    println!("peer benchmarks, {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));

    // 1. Sync 10,000 blocks.
    const BLOCKS: usize = 10_000;
    let a = node(&rt, "bench-sync", false)?;
    let t = Instant::now();
    {
        let mut conn = a.pool.get()?;
        let key = a.ledger.key().clone();
        for i in 0..BLOCKS {
            let records: Vec<Record> = (0..5)
                .map(|j| {
                    let n = i * 5 + j;
                    Record::sign(
                        RecordFields {
                            kind: RecordKind::Award,
                            assertion_url: format!("{}/assertions/{n:032x}", a.url),
                            badge_class_url: format!("{}/badges/el30-data", a.url),
                            issuer_id: format!("{}/issuer", a.url),
                            recipient_hash: format!("sha256${}", cairn_chain::Hash::of(&n.to_be_bytes()).to_hex()),
                            evidence_hash: cairn_chain::Hash::of(&n.to_le_bytes()),
                            issued_at: 1_700_000_000,
                        },
                        &key,
                    )
                })
                .collect();
            let template = a
                .ledger
                .with_chain(|c| c.candidate(&records, 1_700_000_000 + i as i64, key.verifying_key().to_bytes()));
            let header =
                cairn_chain::mine(&template, 16, 2, &std::sync::atomic::AtomicBool::new(false)).expect("mined");
            a.ledger.accept(&mut conn, Block::seal(header, records, &key), cairn::clock::system_now())?;
        }
    }
    println!("built a {BLOCKS}-block \"0000\" chain at the peer in {:.1} s", t.elapsed().as_secs_f64());
    let b = node(&rt, "bench-sync", false)?;
    trust(&b, &a)?;
    let peers = cairn::peers::Peers::new(b.pool.clone(), b.ledger.clone())?;
    let t = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    while b.ledger.with_chain(|c| c.height()) < BLOCKS as u64 && Instant::now() < deadline {
        rt.block_on(peers.round())?;
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(b.ledger.with_chain(|c| c.tip().1), a.ledger.with_chain(|c| c.tip().1));
    println!(
        "new instance synced {BLOCKS} blocks (full validation) in {secs:.2} s = {:.0} blocks/s   goal: < 5 s",
        BLOCKS as f64 / secs
    );

    // 2. Three mining instances; 5 awards in flight at one of them.
    let nodes: Vec<Node> = (0..3).map(|_| node(&rt, "bench-race", true)).collect::<Result<_, _>>()?;
    for x in &nodes {
        for y in &nodes {
            if x.url != y.url {
                trust(x, y)?;
            }
        }
    }
    for n in &nodes {
        cairn::demo::seed(&mut *n.pool.get()?)?;
    }
    let raster = cairn::badges::bake::RasterCache::default();
    let mut times = Vec::new();
    for round in 0..20 {
        let origin = &nodes[round % 3];
        let task = cairn::db::courses::get_task_by_slug(&mut *origin.pool.get()?, "el30-data")?.id;
        let issuer = cairn::badges::award::Issuer { base: &origin.url, raster: &raster, signer: origin.ledger.key() };
        let start = Instant::now();
        let target = nodes[0]
            .ledger
            .with_chain(|c| c.height())
            .max(nodes[1].ledger.with_chain(|c| c.height()))
            .max(nodes[2].ledger.with_chain(|c| c.height()))
            + 1;
        {
            let mut c = origin.pool.get()?;
            for j in 0..5 {
                let req = cairn::app::award::AwardRequest {
                    task_id: task,
                    recipient_email: format!("r{round}-{j}@example.edu"),
                    evidence_url: Some(format!("https://blog.example.org/{round}/{j}")),
                    ..Default::default()
                };
                cairn::app::award::award(&mut c, &issuer, &req, cairn::clock::system_now())?;
            }
        }
        origin.ledger.wake.notify_one();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let heads: Vec<(u64, cairn_chain::Hash)> =
                nodes.iter().map(|n| n.ledger.with_chain(|c| (c.height(), c.tip().1))).collect();
            if heads.iter().all(|h| h.0 >= target) && heads.windows(2).all(|w| w[0].1 == w[1].1) {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "no convergence in round {round}: {heads:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "award → block at the same height on all three (5 awards in flight, 20 blocks): median {:.0} ms, worst {:.0} ms",
        percentile(&times, 0.5),
        times.last().copied().unwrap_or(0.0)
    );
    Ok(())
}
