//! The recognition chain inside Cairn: awards pooled and mined into "0000" blocks, proofs
//! anyone can check, the explorer, verify/export/import, and crash safety.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, spawn_app};

/// Awards `n` badges of #el30-data to different learners; returns the assertion ids.
fn award_n(app: &TestApp, n: usize, tag: &str) -> Vec<String> {
    let mut c = app.pool.get().unwrap();
    if cairn::db::courses::get_task_by_slug(&mut c, "el30-data").is_err() {
        cairn::demo::seed(&mut c).unwrap();
    }
    let task = cairn::db::courses::get_task_by_slug(&mut c, "el30-data").unwrap();
    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &app.address, raster: &raster, signer: app.ledger.key() };
    let ids = (0..n)
        .map(|i| {
            let req = cairn::app::award::AwardRequest {
                task_id: task.id,
                recipient_email: format!("{tag}{i}@example.edu"),
                evidence_url: Some(format!("https://blog{i}.example.org/post")),
                ..Default::default()
            };
            cairn::app::award::award(&mut c, &issuer, &req, cairn::clock::system_now()).unwrap().public_id
        })
        .collect();
    app.ledger.wake.notify_one();
    ids
}

/// Waits (at most 60 s) until the chain reaches `height`.
pub(crate) async fn wait_for_height(app: &TestApp, height: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.ledger.with_chain(|c| c.height()) < height {
        assert!(Instant::now() < deadline, "no block at height {height} within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sha256(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[tokio::test]
async fn five_awards_make_a_0000_block_and_each_award_has_a_proof_anyone_can_check() {
    let app = spawn_app().await;
    let ids = award_n(&app, 4, "a");
    // Four are pending: a mining pass finds nothing to do, and there is no block.
    assert_eq!(app.ledger.clone().mine_pass().await.unwrap(), cairn::jobs::Pass::Idle);
    assert_eq!(app.ledger.with_chain(|c| c.height()), 0);
    let proof: serde_json::Value =
        app.client.get(app.url(&format!("/assertions/{}/proof", ids[0]))).send().await.unwrap().json().await.unwrap();
    assert_eq!(proof["status"], "pending");
    let page = app
        .client
        .get(app.url(&format!("/assertions/{}", ids[0])))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Waiting to be recorded on the recognition chain"), "{page}");

    let more = award_n(&app, 1, "b");
    wait_for_height(&app, 1).await;
    for id in ids.iter().chain(&more) {
        let doc: serde_json::Value =
            app.client.get(app.url(&format!("/assertions/{id}/proof"))).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["status"], "recorded", "{id}");
        assert_eq!((doc["depth"].as_u64(), doc["confirmations"].as_u64()), (Some(1), Some(1)));
        assert_eq!(doc["final"], false, "one block is far from final");
        // The block is signed by this institution: its key is the header's miner (bytes 84..116).
        assert_eq!(doc["block"]["miner"], doc["record"]["institution"]);
        assert_eq!(doc["block"]["signature"].as_str().unwrap().len(), 128);
        // sha256(header) == hash, and the hash starts with 0000.
        let header = unhex(doc["block"]["header_hex"].as_str().unwrap());
        assert_eq!(header.len(), 124);
        let hash = doc["block"]["hash"].as_str().unwrap();
        assert_eq!(cairn_chain::to_hex(&sha256(&header)), hash);
        assert!(hash.starts_with("0000"), "{hash}");
        // The Merkle path leads from the record to the root in the header (bytes 44..76).
        let record = unhex(doc["record"]["bytes_hex"].as_str().unwrap());
        let mut acc = sha256(&[&[0u8][..], &record].concat());
        for step in doc["merkle_path"].as_array().unwrap() {
            let sib = unhex(step["hash"].as_str().unwrap());
            acc = match step["side"].as_str().unwrap() {
                "left" => sha256(&[&[1u8][..], &sib, &acc].concat()),
                _ => sha256(&[&[1u8][..], &acc, &sib].concat()),
            };
        }
        assert_eq!(acc, header[44..76].to_vec(), "proof of {id}");
        // The record carries the assertion's salted hash, never the address.
        let assertion: serde_json::Value =
            app.client.get(app.url(&format!("/assertions/{id}"))).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["record"]["recipient_hash"], assertion["recipient"]["identity"]);
        assert!(!doc.to_string().contains("@example.edu"));
    }
    let page = app
        .client
        .get(app.url(&format!("/assertions/{}", ids[0])))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Recorded on the recognition chain, in block 1; 1 confirmation so far."), "{page}");

    // The explorer and the head.
    let head: serde_json::Value = app.client.get(app.url("/chain/head")).send().await.unwrap().json().await.unwrap();
    assert_eq!(head["height"], 1);
    let hash = head["hash"].as_str().unwrap().to_string();
    assert!(hash.starts_with("0000"));
    assert_eq!(head["work"], 65536);
    let explorer = app.get_html("/chain").await;
    assert!(explorer.contains(&hash) && explorer.contains("No records are waiting"));
    let block = app.get_html(&format!("/chain/blocks/{hash}")).await;
    assert!(block.contains(&ids[0]) && block.contains("1 block(s) deep"));
    assert_eq!(app.get("/chain/blocks/zz").await.status(), 404);
    // The block page explains each field, and says its time as people read it.
    for words in [
        "This block's fingerprint: the SHA-256 of its header.",
        "The fingerprint of the block before this one",
        "One fingerprint of all the records below",
        "When the block was made.",
        "The public key of the member institution that made the block and signed it.",
        "The number the maker tried until the block's hash started with enough zeros.",
        "The exact bytes that are hashed",
    ] {
        assert!(block.replace("&#39;", "'").contains(words), "{words}: {block}");
    }
    let time = block.split("<dt>Time</dt><dd>").nth(1).and_then(|s| s.split("<br>").next()).expect("a time");
    assert!(
        chrono::NaiveDateTime::parse_from_str(time, "%d %B %Y, %H:%M UTC").is_ok(),
        "\"7 December 2026, 21:58 UTC\": {time}"
    );

    // The proof's human page, once the award is in a block: which block, its confirmations,
    // whether it is final.
    let proof = app
        .client
        .get(app.url(&format!("/assertions/{}/proof", ids[0])))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(proof.contains("Recorded in block 1, with 1 confirmation(s); final after"), "{proof}");
    assert!(proof.contains(&format!("<a href=\"/chain/blocks/{hash}\">block 1</a>, made {time}")), "{proof}");
    assert!(proof.contains("<dt>Confirmations</dt><dd>1: this block and every block made on top of it"), "{proof}");
    assert!(proof.contains("<dt>Final</dt><dd>Not yet: a block with"), "{proof}");
}

fn cairn_cmd(dir: &std::path::Path) -> Command {
    let mut c = crate::helpers::cairn_cmd();
    c.env("CAIRN_DATA_DIR", dir);
    c
}

async fn run(cmd: Command) -> std::process::Output {
    let mut cmd = cmd;
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

#[tokio::test]
async fn the_chain_verifies_exports_and_imports_into_another_instance_and_tampering_is_refused() {
    let app = spawn_app().await;
    award_n(&app, 10, "c");
    wait_for_height(&app, 2).await;
    let dir = app.data_dir.clone();
    let out = run({
        let mut c = cairn_cmd(&dir);
        c.args(["chain", "verify"]);
        c
    })
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("The chain is valid: 2 block(s)") && text.contains("10 record(s)"), "{text}");

    let file = dir.join("chain.export");
    let out = run({
        let mut c = cairn_cmd(&dir);
        c.arg("chain").arg("export").arg(&file);
        c
    })
    .await;
    assert!(out.status.success());

    // Into a fresh instance of the same network: refused while the miner is not a member,
    // taken whole once the instance trusts it.
    let other = tempfile::tempdir().unwrap();
    let import = || {
        let mut c = cairn_cmd(other.path());
        c.arg("chain").arg("import").arg(&file);
        c
    };
    let out = run(import()).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a member institution"));
    let out = run({
        let mut c = cairn_cmd(other.path());
        c.args(["peer", "add", "--yes", &app.address]);
        c
    })
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(import()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("the chain is at height 2"));

    // A tampered export is refused whole.
    let mut bytes = std::fs::read(&file).unwrap();
    let i = bytes.len() - 200;
    bytes[i] ^= 0x01;
    let bad = dir.join("bad.export");
    std::fs::write(&bad, &bytes).unwrap();
    let third = tempfile::tempdir().unwrap();
    let out = run({
        let mut c = cairn_cmd(third.path());
        c.arg("chain").arg("import").arg(&bad);
        c
    })
    .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing was imported")
            || String::from_utf8_lossy(&out.stderr).contains("not a Cairn chain export")
    );
    // Another network's instance refuses the file.
    let fourth = tempfile::tempdir().unwrap();
    let out = run({
        let mut c = cairn_cmd(fourth.path());
        c.env("CAIRN_CHAIN_NETWORK", "elsewhere").arg("chain").arg("import").arg(&file);
        c
    })
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("network 'cairn'"));
    // And a data dir cannot change network.
    let out = run({
        let mut c = cairn_cmd(&dir);
        c.env("CAIRN_CHAIN_NETWORK", "elsewhere").args(["identity"]);
        c
    })
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`chain`"));
}

#[tokio::test]
async fn awards_made_by_the_command_line_while_the_server_runs_are_mined_without_anything_waking_it() {
    let app = spawn_app().await;
    cairn::demo::seed(&mut app.pool.get().unwrap()).unwrap();
    // Five awards from other processes; nothing in this test touches the server's ledger.
    for i in 0..5 {
        let mut c = cairn_cmd(&app.data_dir);
        c.args([
            "award",
            "--task",
            "#el30-data",
            "--recipient",
            &format!("cli{i}@example.edu"),
            "--evidence",
            &format!("https://cli{i}.example.org/post"),
        ]);
        let out = run(c).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // Observed through the server's own view of the chain, as a verifier would see it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let head = loop {
        let head: serde_json::Value =
            app.client.get(app.url("/chain/head")).send().await.unwrap().json().await.unwrap();
        if head["height"] == 1 {
            break head;
        }
        assert!(Instant::now() < deadline, "the command line's awards were not mined within 60 s: {head}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let explorer = app.get_html("/chain").await;
    assert!(explorer.contains(head["hash"].as_str().unwrap()) && explorer.contains("No records are waiting"));
    let mut c = app.pool.get().unwrap();
    use cairn::db::schema::chain_records;
    use diesel::prelude::*;
    let recorded: i64 =
        chain_records::table.filter(chain_records::block_hash.is_not_null()).count().get_result(&mut c).unwrap();
    assert_eq!(recorded, 5);
}

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &std::path::Path, bits: &str) -> Killed {
    Killed(
        cairn_cmd(dir)
            .env("CAIRN_CHAIN_NETWORK", "crash-test")
            .env("CAIRN_CHAIN_DIFFICULTY_BITS", bits)
            .env("CAIRN_HARVEST_ENABLED", "false")
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Waits (at most 60 s) until the server's log says it has started a search.
fn wait_until_mining(stderr: std::process::ChildStderr) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            if line.contains("mining a block") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("the server never started mining");
}

#[tokio::test]
async fn killing_the_server_while_it_mines_loses_no_award() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    // Five awards from the command line, then a server that mines them at 24 bits (slow
    // enough to be killed mid-search).
    for i in 0..5 {
        let mut c = cairn_cmd(&d);
        c.env("CAIRN_CHAIN_NETWORK", "crash-test").env("CAIRN_CHAIN_DIFFICULTY_BITS", "24");
        if i == 0 {
            let mut seed = cairn_cmd(&d);
            seed.env("CAIRN_CHAIN_NETWORK", "crash-test").env("CAIRN_CHAIN_DIFFICULTY_BITS", "24").arg("demo");
            assert!(run(seed).await.status.success());
        }
        c.args([
            "award",
            "--task",
            "#el30-data",
            "--recipient",
            &format!("k{i}@example.edu"),
            "--evidence",
            "https://k.example.org/",
        ]);
        let out = run(c).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut server = serve(&d, "24");
    let log = server.0.stderr.take().expect("piped stderr");
    tokio::task::spawn_blocking(move || wait_until_mining(log)).await.unwrap();
    drop(server); // SIGKILL mid-search (16.7 million attempts are expected)
    // Restart at the same parameters; it mines the same five records.
    let _server = serve(&d, "24");
    let pool = cairn::db::open(&d.join("cairn.db")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut c = pool.get().unwrap();
        use cairn::db::schema::{blocks, chain_records};
        use diesel::prelude::*;
        let n_blocks: i64 = blocks::table.count().get_result(&mut c).unwrap();
        if n_blocks >= 1 {
            let in_block: i64 = chain_records::table
                .filter(chain_records::block_hash.is_not_null())
                .count()
                .get_result(&mut c)
                .unwrap();
            let all: i64 = chain_records::table.count().get_result(&mut c).unwrap();
            assert_eq!((n_blocks, in_block, all), (1, 5, 5), "each award recorded exactly once");
            assert_eq!(cairn::db::awards::count(&mut c).unwrap(), 5);
            break;
        }
        assert!(Instant::now() < deadline, "no block after the restart");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut verify = cairn_cmd(&d);
    verify.env("CAIRN_CHAIN_NETWORK", "crash-test").env("CAIRN_CHAIN_DIFFICULTY_BITS", "24").args(["chain", "verify"]);
    let out = run(verify).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn a_data_dir_of_unsigned_blocks_is_refused_with_what_to_do_and_upgraded_by_command() {
    let dir = tempfile::tempdir().unwrap();
    let identity = || {
        let mut c = cairn_cmd(dir.path());
        c.arg("identity");
        c
    };
    assert!(run(identity()).await.status.success());
    // Make it look like a data dir of the earlier format: a stored block, no format mark.
    {
        use diesel::RunQueryDsl;
        let pool = cairn::db::open(&dir.path().join("cairn.db")).unwrap();
        let mut conn = pool.get().unwrap();
        diesel::sql_query("DELETE FROM chain_meta WHERE key = 'format'").execute(&mut conn).unwrap();
        diesel::sql_query(
            "INSERT INTO blocks (hash, height, prev, bytes, timestamp, miner, received_at, on_main) \
             VALUES ('00ab', 1, '00', x'00', 1, '00', 1, 1)",
        )
        .execute(&mut conn)
        .unwrap();
    }
    let out = run({
        let mut c = cairn_cmd(dir.path());
        c.args(["serve", "--bind", "127.0.0.1:0"]);
        c
    })
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("earlier chain format") && err.contains("cairn chain upgrade"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let out = run({
        let mut c = cairn_cmd(dir.path());
        c.args(["chain", "upgrade"]);
        c
    })
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Set aside 1 unsigned block(s)"));
    let out = run(identity()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
