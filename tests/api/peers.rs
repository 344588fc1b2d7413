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
    let mut c = crate::helpers::cairn_cmd();
    c.env("CAIRN_DATA_DIR", dir).env("CAIRN_HARVEST_ENABLED", "false").env("CAIRN_CHAIN_NETWORK", "peers-test");
    c
}

/// Starts `cairn serve` on a random port, with extra environment, and reads its URL from the
/// first line.
fn start_with(dir: &Path, env: &[(&str, &str)]) -> Node {
    start_at(dir, "127.0.0.1:0", env)
}

/// Starts `cairn serve` at `bind`.
fn start_at(dir: &Path, bind: &str, env: &[(&str, &str)]) -> Node {
    let mut c = cmd(dir);
    c.envs(env.iter().copied());
    // The log stays in the data dir, for a failing test to be read.
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("serve.log")).unwrap();
    let mut child = c.args(["serve", "--bind", bind]).stdout(Stdio::piped()).stderr(log).spawn().unwrap();
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
    network_with(n, &[]).await
}

async fn network_with(n: usize, env: &[(&str, &str)]) -> (Vec<tempfile::TempDir>, Vec<Node>) {
    let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    for d in &dirs {
        let mut c = cmd(d.path());
        c.arg("demo");
        assert!(tokio::task::spawn_blocking(move || run(c)).await.unwrap().status.success());
    }
    let nodes: Vec<Node> = dirs.iter().map(|d| start_with(d.path(), env)).collect();
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
    let good = blocks_of(&nodes[0]).await.remove(0);
    // A next block whose nonce was not searched (not enough work).
    let mut lazy = good.clone();
    lazy.header.height = 2;
    lazy.header.prev = good.hash();
    while lazy.hash().leading_zero_bits() >= 16 {
        lazy.header.nonce += 1;
    }
    assert_refused(post_block(&nodes[1], &lazy).await, 422, "proof of work");
    // A tampered record in an otherwise well-formed block.
    let mut tampered = good.clone();
    tampered.records[0].fields.recipient_hash.push('0');
    assert_eq!(post_block(&nodes[1], &tampered).await.0, 422);
    // Garbage, bad JSON and a relayed record from a stranger.
    assert_eq!(post_hex(&nodes[1], "blocks", "zz").await.0, 400);
    let res =
        reqwest::Client::new().post(format!("{}/chain/blocks", nodes[1].url)).body("{not json").send().await.unwrap();
    assert_eq!(res.status(), 400);
    let stranger = cairn_chain::SigningKey::from_bytes(&[42; 32]);
    let strangers = records_under(&stranger, "https://forger.example", 0);
    assert_eq!(post_hex(&nodes[1], "records", &cairn_chain::to_hex(&strangers[0].encode())).await.0, 403);
    for n in &nodes {
        assert_eq!(json(&format!("{}/chain/head", n.url)).await["hash"], tip.as_str());
    }
}

/// The institution key of a node, read from its data dir: the test plays that member gone rogue.
fn key_of(node: &Node) -> cairn_chain::SigningKey {
    let bytes: [u8; 32] = std::fs::read(node.dir.join("institution.key")).unwrap().try_into().unwrap();
    cairn_chain::SigningKey::from_bytes(&bytes)
}

/// A node's main chain, from its public block pages.
async fn blocks_of(node: &Node) -> Vec<cairn_chain::Block> {
    let page = json(&format!("{}/chain/blocks?from=1&limit=200", node.url)).await;
    page["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| cairn_chain::Block::decode_stored(&cairn_chain::from_hex(h.as_str().unwrap()).unwrap()).unwrap())
        .collect()
}

/// Five award records signed by `key` under `base`.
fn records_under(key: &cairn_chain::SigningKey, base: &str, from: usize) -> Vec<cairn_chain::Record> {
    (from..from + 5)
        .map(|i| {
            cairn_chain::Record::sign(
                cairn_chain::RecordFields {
                    kind: cairn_chain::RecordKind::Award,
                    assertion_url: format!("{base}/assertions/forged{i}"),
                    badge_class_url: format!("{base}/badges/el30-data"),
                    issuer_id: format!("{base}/issuer"),
                    recipient_hash: format!("sha256${}", cairn_chain::Hash::of(&i.to_be_bytes()).to_hex()),
                    evidence_hash: cairn_chain::Hash::default(),
                    issued_at: 1,
                },
                key,
            )
        })
        .collect()
}

/// Mines a header at the standard "0000" difficulty and seals it with `signer` (who may not be
/// the miner the header names).
fn mined(
    template: cairn_chain::BlockHeader,
    records: Vec<cairn_chain::Record>,
    signer: &cairn_chain::SigningKey,
) -> cairn_chain::Block {
    let header = cairn_chain::mine(&template, 16, 2, &std::sync::atomic::AtomicBool::new(false)).unwrap();
    cairn_chain::Block::seal(header, records, signer)
}

fn header_on(
    prev: &cairn_chain::Block,
    records: &[cairn_chain::Record],
    timestamp: i64,
    miner: &cairn_chain::SigningKey,
) -> cairn_chain::BlockHeader {
    let ids: Vec<cairn_chain::Hash> = records.iter().map(|r| r.id()).collect();
    cairn_chain::BlockHeader {
        version: cairn_chain::BLOCK_VERSION,
        height: prev.header.height + 1,
        prev: prev.hash(),
        merkle_root: cairn_chain::merkle_root(&ids),
        timestamp,
        miner: miner.verifying_key().to_bytes(),
        nonce: 0,
    }
}

/// POSTs hex to `/chain/{what}`: the status and the refusal's message.
async fn post_hex(node: &Node, what: &str, hex: &str) -> (u16, String) {
    cairn::net::install_crypto_provider();
    let res = reqwest::Client::new()
        .post(format!("{}/chain/{what}", node.url))
        .header("Accept", "application/json")
        .json(&serde_json::json!({"data": hex}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, body["error"]["message"].as_str().unwrap_or_default().to_string())
}

async fn post_block(node: &Node, block: &cairn_chain::Block) -> (u16, String) {
    post_hex(node, "blocks", &cairn_chain::to_hex(&block.encode_stored())).await
}

#[track_caller]
fn assert_refused((status, reason): (u16, String), expected: u16, words: &str) {
    assert_eq!(status, expected, "{reason}");
    assert!(reason.contains(words), "the reason names the rule ({words}): {reason}");
}

#[tokio::test]
async fn no_outsider_or_rogue_member_can_rewrite_the_chain() {
    // Blocks become final under two others, so a short chain already has final blocks.
    let (_dirs, nodes) = network_with(3, &[("CAIRN_CHAIN_FINALITY_DEPTH", "2")]).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    for i in 0..15 {
        award(a, i).await;
    }
    let tip = converge(&nodes, 3).await;
    let chain = blocks_of(a).await;
    let top = chain.last().unwrap().clone();
    let genesis_hash =
        cairn_chain::Hash::from_hex(json(&format!("{}/chain/identity", a.url)).await["genesis"].as_str().unwrap())
            .unwrap();
    let outsider = cairn_chain::SigningKey::from_bytes(&[66; 32]);
    let mut forged = Vec::new();

    // 1. An outsider re-packs the tip's records in another order, names A as the miner (it
    //    cannot sign as A), dates the block to 1970 and grinds for a lower hash than the tip's.
    let mut recs = top.records.clone();
    recs.reverse();
    let ids: Vec<cairn_chain::Hash> = recs.iter().map(|r| r.id()).collect();
    let mut template = cairn_chain::BlockHeader {
        merkle_root: cairn_chain::merkle_root(&ids),
        timestamp: 1,
        miner: key_of(a).verifying_key().to_bytes(),
        nonce: 0,
        ..top.header
    };
    // The lowest of a bounded number of tries; almost always below the tip's hash.
    let mut repacked = mined(template, recs.clone(), &outsider);
    for _ in 0..50 {
        if repacked.hash() < top.hash() {
            break;
        }
        // Mining starts from nonce 0 again: another (still back-dated) time gives other hashes.
        template.timestamp += 1;
        let next = mined(template, recs.clone(), &outsider);
        if next.hash() < repacked.hash() {
            repacked = next;
        }
    }
    assert_refused(post_block(a, &repacked).await, 422, "signature");
    forged.push(repacked.hash());

    // 2. The outsider re-mines the whole history from genesis under its own key, back-dated.
    let mut prev_hash = genesis_hash;
    let mut history = Vec::new();
    for (i, blk) in chain.iter().enumerate() {
        let template = cairn_chain::BlockHeader {
            prev: prev_hash,
            timestamp: 1 + i as i64,
            miner: outsider.verifying_key().to_bytes(),
            nonce: 0,
            ..blk.header
        };
        let remined = mined(template, blk.records.clone(), &outsider);
        prev_hash = remined.hash();
        history.push(remined);
    }
    for remined in &history {
        // Membership is checked before anything else, parent included.
        assert_refused(post_block(a, remined).await, 422, "not a member");
    }
    forged.extend(history.iter().map(|h| h.hash()));

    // 3. A block with valid work, validly signed, by a key nobody trusts.
    let theirs = records_under(&outsider, "https://outsider.example", 0);
    let untrusted = mined(header_on(&top, &theirs, top.header.timestamp + 1, &outsider), theirs, &outsider);
    assert_refused(post_block(a, &untrusted).await, 422, "not a member");
    forged.push(untrusted.hash());

    // 4. A trusted member (C, whose key the test holds) offers a branch from genesis: it would
    //    remove final blocks whatever work it claims.
    let rogue = key_of(c);
    let c_records = records_under(&rogue, &c.url, 100);
    let ids: Vec<cairn_chain::Hash> = c_records.iter().map(|r| r.id()).collect();
    let branch_template = cairn_chain::BlockHeader {
        version: cairn_chain::BLOCK_VERSION,
        height: 1,
        prev: genesis_hash,
        merkle_root: cairn_chain::merkle_root(&ids),
        timestamp: top.header.timestamp,
        miner: rogue.verifying_key().to_bytes(),
        nonce: 0,
    };
    let branch = mined(branch_template, c_records, &rogue);
    assert_refused(post_block(a, &branch).await, 409, "final");
    forged.push(branch.hash());
    let mut list = cmd(&a.dir);
    list.args(["peer", "list"]);
    let listed = String::from_utf8(tokio::task::spawn_blocking(move || run(list)).await.unwrap().stdout).unwrap();
    let c_line = listed.lines().find(|l| l.starts_with(&c.url)).unwrap();
    assert!(c_line.contains("refused 1 branch"), "{listed}");

    // 5. A member's block timestamped three hours ahead.
    let later = records_under(&rogue, &c.url, 200);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let ahead = mined(header_on(&top, &later, now + 3 * 3600, &rogue), later, &rogue);
    assert_refused(post_block(a, &ahead).await, 422, "future");
    forged.push(ahead.hash());

    // 6. A record signed by C that claims B's assertion URL.
    let claim = records_under(&rogue, &b.url, 300).remove(0);
    assert_refused(post_hex(a, "records", &cairn_chain::to_hex(&claim.encode())).await, 422, "not under");

    // The head never moved.
    for n in &nodes {
        assert_eq!(json(&format!("{}/chain/head", n.url)).await["hash"], tip.as_str(), "{}", n.url);
    }
    // Five honest awards later everyone has moved on together, and no node — above all not the
    // third one, B, which only hears of blocks through A and C — knows any forged block or record.
    for i in 15..20 {
        award(a, i).await;
    }
    converge(&nodes, 4).await;
    cairn::net::install_crypto_provider();
    for n in &nodes {
        for h in &forged {
            let res = reqwest::get(format!("{}/chain/blocks/{}", n.url, h.to_hex())).await.unwrap();
            assert_eq!(res.status(), 404, "{} knows the forged block {h}", n.url);
        }
        assert!(!records_of(n).await.contains(&claim.id().to_hex()));
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
    // B comes back at its address: its records are bound to its base URL.
    let restarted = start_at(&b_dir, b.trim_start_matches("http://"), &[]);
    assert_eq!(restarted.url, b);
    nodes.push(restarted);
    peer_cmd(&nodes[1], &["peer", "add", "--yes", &b]).await;
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
    // Adding shows the peer's fingerprint and trusts nothing until it is confirmed.
    let key: serde_json::Value = b.client.get(b.url("/chain/identity")).send().await.unwrap().json().await.unwrap();
    let key = key["public_key"].as_str().unwrap().to_string();
    let fingerprint = cairn::peers::fingerprint(&key);
    let res = a.post_form("/admin/peers", &[("url", &b.address)]).await;
    assert_eq!(res.status(), 200);
    let confirm = res.text().await.unwrap();
    assert!(confirm.contains("id=\"confirm-peer\"") && confirm.contains(&fingerprint), "{confirm}");
    assert!(cairn::db::peers::list(&mut a.pool.get().unwrap()).unwrap().is_empty());
    let res = a
        .post_form(
            "/admin/peers/confirm",
            &[("url", &b.address), ("public_key", &key), ("name", "B"), ("base_url", &b.address)],
        )
        .await;
    assert_eq!(res.status(), 303);
    let page = a.get_html("/admin/peers").await;
    assert!(page.contains(&b.address) && page.contains(&fingerprint));
    let trusted = cairn::db::peers::list(&mut a.pool.get().unwrap()).unwrap();
    assert_eq!((trusted.len(), trusted[0].public_key.as_str()), (1, key.as_str()));
    // A wrong address is explained, not added.
    let res = a.post_form("/admin/peers", &[("url", "http://127.0.0.1:9/")]).await;
    assert_eq!(res.status(), 422);
    // In a plain sentence: the technical cause goes to the log, not the page.
    let body = res.text().await.unwrap();
    assert!(body.contains("Cairn could not read the identity of http://127.0.0.1:9"), "{body}");
    assert!(!body.contains("cannot fetch") && !body.contains("error sending request"), "{body}");
    let res = a.post_form("/admin/peers/remove", &[("url", &b.address)]).await;
    assert_eq!(res.status(), 303);
    assert!(cairn::db::peers::list(&mut a.pool.get().unwrap()).unwrap().is_empty());
}

/// The peers page says in a sentence why the last exchange with a peer failed (the cause
/// chain goes to the log): a busy peer, and one whose answer is not JSON.
#[tokio::test]
async fn the_peers_page_says_why_an_exchange_failed_in_a_plain_sentence() {
    use crate::feedserver::{FeedServer, Reply};
    let app = crate::helpers::spawn_app().await;
    let (busy, garbled) = (FeedServer::start().await, FeedServer::start().await);
    busy.set("/chain/head", Reply::Status { status: 503, headers: vec![], body: vec![] });
    garbled.set("/chain/head", Reply::typed("<html>not JSON</html>", "application/json"));
    for (seed, server, name) in [(7u8, &busy, "Busy U"), (8, &garbled, "Garbled U")] {
        let key = cairn_chain::SigningKey::from_bytes(&[seed; 32]);
        let candidate = cairn::app::peers::Candidate {
            url: server.origin(),
            public_key: cairn_chain::to_hex(&key.verifying_key().to_bytes()),
            name: name.into(),
            base_url: String::new(),
        };
        cairn::app::peers::trust(
            &mut app.pool.get().unwrap(),
            &cairn::app::access::Actor::institution(cairn::app::access::Surface::Cli),
            None,
            &candidate,
            cairn::clock::system_now(),
        )
        .unwrap();
    }
    let peers = cairn::peers::Peers::new(app.pool.clone(), app.ledger.clone()).unwrap();
    tokio::time::timeout(Duration::from_secs(60), peers.round()).await.expect("a round in time").unwrap();

    app.login().await;
    let page = app.get_html("/admin/peers").await.replace("&#39;", "'");
    assert!(page.contains("The peer answered 503."), "{page}");
    assert!(page.contains("The peer's answer was not valid JSON."), "{page}");
    assert!(!page.contains("Service Unavailable") && !page.contains("malformed JSON"), "no raw error: {page}");
}
