//! Three real Cairn processes on 127.0.0.1 sharing one chain.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Node {
    child: std::process::Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cmd(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cairn"));
    c.env("CAIRN_DATA_DIR", dir)
        .env("CAIRN_HARVEST_ENABLED", "false")
        .env("CAIRN_CHAIN_NETWORK", "peers-test")
        .env_remove("CAIRN_CONFIG")
        .env_remove("CAIRN_BASE_URL")
        .env_remove("CAIRN_CHAIN_DIFFICULTY_BITS");
    c
}

/// Starts `cairn serve` on a random port and reads its URL from the first line.
fn start(dir: &Path) -> Node {
    let mut child =
        cmd(dir).args(["serve", "--bind", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("Cairn is running at ") {
                let _ = tx.send(rest.split_whitespace().next().unwrap().trim_end_matches('/').to_string());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(60)).expect("the server printed its URL");
    Node { child, url, dir: dir.to_path_buf() }
}

fn run(mut c: Command) -> std::process::Output {
    c.output().unwrap()
}

async fn json(url: &str) -> serde_json::Value {
    cairn::net::install_crypto_provider();
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// All main-chain record ids of a node (via the public block pages).
async fn records_of(node: &Node) -> Vec<String> {
    let page = json(&format!("{}/chain/blocks?from=1&limit=200", node.url)).await;
    let mut ids = Vec::new();
    for hex in page["blocks"].as_array().unwrap() {
        let bytes = cairn_chain::from_hex(hex.as_str().unwrap()).unwrap();
        let block = cairn_chain::Block::decode_stored(&bytes).unwrap();
        ids.extend(block.records.iter().map(|r| r.id().to_hex()));
    }
    ids
}

/// Seeds the demo tasks in each data dir, starts the nodes and makes them trust each other
/// through `cairn peer add --yes`.
async fn network(n: usize) -> (Vec<tempfile::TempDir>, Vec<Node>) {
    let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    for d in &dirs {
        let mut c = cmd(d.path());
        c.arg("demo");
        assert!(tokio::task::spawn_blocking(move || run(c)).await.unwrap().status.success());
    }
    let nodes: Vec<Node> = dirs.iter().map(|d| start(d.path())).collect();
    for a in &nodes {
        for b in &nodes {
            if a.url != b.url {
                let mut c = cmd(&a.dir);
                c.args(["peer", "add", "--yes", &b.url]);
                let out = tokio::task::spawn_blocking(move || run(c)).await.unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                assert!(String::from_utf8_lossy(&out.stdout).contains("fingerprint"));
            }
        }
    }
    (dirs, nodes)
}

async fn award(node: &Node, i: usize) {
    let mut c = cmd(&node.dir);
    c.env("CAIRN_BASE_URL", &node.url).args([
        "award",
        "--task",
        "#el30-data",
        "--recipient",
        &format!("learner{i}@example.edu"),
        "--evidence",
        &format!("https://blog{i}.example.org/post"),
    ]);
    let out = tokio::task::spawn_blocking(move || run(c)).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Waits (at most 90 s) until every node has the same tip at `height` or more.
async fn converge(nodes: &[Node], height: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut heads = Vec::new();
        for n in nodes {
            heads.push(json(&format!("{}/chain/head", n.url)).await);
        }
        let same = heads.windows(2).all(|w| w[0]["hash"] == w[1]["hash"]);
        if same && heads[0]["height"].as_u64().unwrap() >= height {
            return heads[0]["hash"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no convergence: {heads:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn awards_at_three_institutions_end_up_once_each_in_the_same_chain() {
    let (_dirs, nodes) = network(3).await;
    // 10 awards spread over the three: two blocks of five.
    for i in 0..10 {
        award(&nodes[i % 3], i).await;
    }
    let tip = converge(&nodes, 2).await;
    assert!(tip.starts_with("0000"));
    for n in &nodes {
        let ids = records_of(n).await;
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((ids.len(), unique.len()), (10, 10), "{}: every award exactly once", n.url);
        let mut c = cmd(&n.dir);
        c.args(["chain", "verify"]);
        let out = tokio::task::spawn_blocking(move || run(c)).await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // The peer state (shown by `peer list` and the peers page) follows within a round or two.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut c = cmd(&nodes[0].dir);
        c.args(["peer", "list"]);
        let out = String::from_utf8(tokio::task::spawn_blocking(move || run(c)).await.unwrap().stdout).unwrap();
        if out.lines().filter(|l| l.contains("height 2")).count() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "peer state never showed height 2: {out}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn forged_blocks_and_records_are_refused_and_do_not_spread() {
    let (_dirs, nodes) = network(2).await;
    for i in 0..5 {
        award(&nodes[0], i).await;
    }
    let tip = converge(&nodes, 1).await;
    cairn::net::install_crypto_provider();
    let client = reqwest::Client::new();
    let page = json(&format!("{}/chain/blocks?from=1&limit=1", nodes[0].url)).await;
    let good = cairn_chain::Block::decode_stored(&cairn_chain::from_hex(page["blocks"][0].as_str().unwrap()).unwrap())
        .unwrap();

    let post = |data: String| {
        let client = client.clone();
        let url = format!("{}/chain/blocks", nodes[1].url);
        async move { client.post(url).json(&serde_json::json!({"data": data})).send().await.unwrap().status().as_u16() }
    };
    // A next block whose nonce was not searched (not enough work).
    let mut lazy = good.clone();
    lazy.header.height = 2;
    lazy.header.prev = good.hash();
    while lazy.hash().leading_zero_bits() >= 16 {
        lazy.header.nonce += 1;
    }
    assert_eq!(post(cairn_chain::to_hex(&lazy.encode_stored())).await, 422);
    // A tampered record in an otherwise well-formed block.
    let mut tampered = good.clone();
    tampered.records[0].fields.recipient_hash.push('0');
    assert_eq!(post(cairn_chain::to_hex(&tampered.encode_stored())).await, 422);
    // A properly mined block signed by an institution nobody trusts.
    let stranger = cairn_chain::SigningKey::from_bytes(&[42; 32]);
    let recs: Vec<cairn_chain::Record> = (0..5)
        .map(|i| {
            cairn_chain::Record::sign(
                cairn_chain::RecordFields {
                    kind: cairn_chain::RecordKind::Award,
                    assertion_url: format!("https://forger.example/a/{i}"),
                    badge_class_url: "https://forger.example/b".into(),
                    issuer_id: "https://forger.example/issuer".into(),
                    recipient_hash: "sha256$00".into(),
                    evidence_hash: cairn_chain::Hash::default(),
                    issued_at: 1,
                },
                &stranger,
            )
        })
        .collect();
    let ids: Vec<cairn_chain::Hash> = recs.iter().map(|r| r.id()).collect();
    let template = cairn_chain::BlockHeader {
        version: 1,
        height: 2,
        prev: good.hash(),
        merkle_root: cairn_chain::merkle_root(&ids),
        timestamp: good.header.timestamp,
        miner: stranger.verifying_key().to_bytes(),
        nonce: 0,
    };
    let header = cairn_chain::mine(&template, 16, 2, &std::sync::atomic::AtomicBool::new(false)).unwrap();
    let forged = cairn_chain::Block { header, records: recs.clone() };
    assert_eq!(post(cairn_chain::to_hex(&forged.encode_stored())).await, 422);
    // Garbage and a relayed record from a stranger.
    assert_eq!(post("zz".into()).await, 400);
    let res = client.post(format!("{}/chain/blocks", nodes[1].url)).body("{not json").send().await.unwrap();
    assert_eq!(res.status(), 400);
    let res = client
        .post(format!("{}/chain/records", nodes[1].url))
        .json(&serde_json::json!({"data": cairn_chain::to_hex(&recs[0].encode())}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Nothing spread: both nodes still agree on the honest tip.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for n in &nodes {
        assert_eq!(json(&format!("{}/chain/head", n.url)).await["hash"], tip.as_str());
    }
}

async fn peer_cmd(node: &Node, args: &[&str]) {
    let mut c = cmd(&node.dir);
    c.args(args);
    let out = tokio::task::spawn_blocking(move || run(c)).await.unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn after_a_partition_heals_everyone_converges_with_each_award_once() {
    let (dirs, mut nodes) = network(3).await;
    // Partition: C leaves A and B's lists and they leave C's.
    let (a, b, c) = (nodes[0].url.clone(), nodes[1].url.clone(), nodes[2].url.clone());
    peer_cmd(&nodes[0], &["peer", "remove", &c]).await;
    peer_cmd(&nodes[1], &["peer", "remove", &c]).await;
    peer_cmd(&nodes[2], &["peer", "remove", &a]).await;
    peer_cmd(&nodes[2], &["peer", "remove", &b]).await;
    // Both sides award: A/B build two blocks, C one of its own.
    for i in 0..10 {
        award(&nodes[i % 2], i).await;
    }
    for i in 10..15 {
        award(&nodes[2], i).await;
    }
    converge(&nodes[..2], 2).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while json(&format!("{c}/chain/head")).await["height"].as_u64().unwrap() < 1 {
        assert!(Instant::now() < deadline, "C mined nothing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Kill B (SIGKILL) right after five awards there, most likely while it mines them, and
    // restart it after the heal: it must catch up and lose none of them.
    for i in 15..20 {
        award(&nodes[1], i).await;
    }
    let b_dir = dirs[1].path().to_path_buf();
    nodes.remove(1);
    // Heal: everyone trusts everyone again.
    peer_cmd(&nodes[0], &["peer", "add", "--yes", &c]).await;
    peer_cmd(&nodes[1], &["peer", "add", "--yes", &a]).await;
    let restarted = start(&b_dir);
    let b2 = restarted.url.clone();
    nodes.push(restarted);
    // B's port changed on restart: the others learn its new address.
    peer_cmd(&nodes[0], &["peer", "remove", &b]).await;
    peer_cmd(&nodes[0], &["peer", "add", "--yes", &b2]).await;
    peer_cmd(&nodes[1], &["peer", "add", "--yes", &b2]).await;
    peer_cmd(&nodes[2], &["peer", "add", "--yes", &c]).await;
    // The most-work chain wins; C's five records go back to the pool and are mined again.
    converge(&nodes, 4).await;
    for n in &nodes {
        let ids = records_of(n).await;
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((ids.len(), unique.len()), (20, 20), "{}: every award exactly once", n.url);
    }
}

#[tokio::test]
async fn the_peers_page_shows_state_and_manages_the_trust_list() {
    let a = crate::helpers::spawn_app().await;
    let b = crate::helpers::spawn_app().await;
    let id: serde_json::Value = a.client.get(a.url("/chain/identity")).send().await.unwrap().json().await.unwrap();
    assert_eq!(id["public_key"].as_str().unwrap().len(), 64);
    assert_eq!(id["network"], "cairn");
    a.login().await;
    let res = a.post_form("/admin/peers", &[("url", &b.address)]).await;
    assert_eq!(res.status(), 303);
    let page = a.get_html("/admin/peers").await;
    let key: serde_json::Value = b.client.get(b.url("/chain/identity")).send().await.unwrap().json().await.unwrap();
    assert!(
        page.contains(&b.address) && page.contains(&cairn::peers::fingerprint(key["public_key"].as_str().unwrap()))
    );
    // A wrong address is explained, not added.
    let res = a.post_form("/admin/peers", &[("url", "http://127.0.0.1:9/")]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("cannot fetch"));
    let res = a.post_form("/admin/peers/remove", &[("url", &b.address)]).await;
    assert_eq!(res.status(), 303);
    assert!(cairn::peers::list(&mut a.pool.get().unwrap()).unwrap().is_empty());
}
