//! Chain benchmarks (`cargo bench -p cairn-chain`):
//! 1. the machine's raw SHA-256 rate on a header-sized input (all cores, one hash per
//!    attempt) against Cairn's mining rate, and the time to mine a "0000" block;
//! 2. verifying a 100,000-block chain from genesis by every rule: headers, membership, times,
//!    Merkle roots and the miners' signatures (one Ed25519 verification a block, batched on all
//!    cores), then with every record signature as well; and, in the same run, the machine's raw
//!    batched Ed25519 rate on the same 100,000 signatures, as the baseline.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks fail loudly by design

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cairn_chain::*;
use sha2::{Digest, Sha256};

fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn template(seed: u64) -> BlockHeader {
    BlockHeader {
        version: BLOCK_VERSION,
        height: seed,
        prev: Hash::of(&seed.to_be_bytes()),
        merkle_root: Hash::of(b"root"),
        timestamp: 1_700_000_000,
        miner: [7; 32],
        nonce: 0,
    }
}

/// Plain SHA-256 of a 124-byte header per attempt, on every core, for `secs`.
fn raw_rate(secs: f64) -> f64 {
    let total = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads() {
            let (total, stop) = (&total, &stop);
            s.spawn(move || {
                let mut bytes = template(t as u64).encode();
                let mut n = 0u64;
                let mut sink = 0u8;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..4096 {
                        bytes[116..].copy_from_slice(&n.to_be_bytes());
                        sink ^= Sha256::digest(bytes)[0];
                        n += 1;
                    }
                }
                std::hint::black_box(sink);
                total.fetch_add(n, Ordering::Relaxed);
            });
        }
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
    });
    total.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    println!("chain benchmarks, {} cores", threads());

    // 1. Mining.
    let raw = raw_rate(3.0);
    let never = AtomicBool::new(false);
    let mut times = Vec::new();
    let mut attempts = 0u64;
    let started = Instant::now();
    for i in 0..200u64 {
        let t = Instant::now();
        let h = mine(&template(1000 + i), 16, threads(), &never).expect("found");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(h.hash().to_hex().starts_with("0000"));
        // Threads search interleaved nonces, so about `nonce` attempts were made in all.
        attempts += h.nonce + 1;
    }
    let mining_rate = attempts as f64 / started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!("raw SHA-256 (124-byte header, one hash per attempt, all cores): {:.2} M hashes/s", raw / 1e6);
    println!("Cairn mining (all cores):                                       {:.2} M attempts/s", mining_rate / 1e6);
    println!("ratio mining / raw: {:.2}   goal >= 1.0", mining_rate / raw);
    println!(
        "time to mine a \"0000\" block (200 blocks): mean {mean:.1} ms, p99 {:.1} ms   (about 5 ms per core expected)",
        percentile(&times, 0.99)
    );

    // 2. Validation of a 100,000-block chain. Built at 4 bits so it can be made quickly;
    //    checking a block's work costs the same hash at any difficulty.
    const BLOCKS: u64 = 100_000;
    let params = Params { difficulty_bits: 4, ..Params::new("bench") };
    let key = SigningKey::from_bytes(&[9; 32]);
    let t = Instant::now();
    let records: Vec<Record> = {
        let per = (BLOCKS as usize * 5).div_ceil(threads());
        let mut all = Vec::new();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads())
                .map(|th| {
                    let key = key.clone();
                    s.spawn(move || {
                        (th * per..((th + 1) * per).min(BLOCKS as usize * 5))
                            .map(|i| {
                                Record::sign(
                                    RecordFields {
                                        kind: RecordKind::Award,
                                        assertion_url: format!("https://bench.example.edu/assertions/{i:032x}"),
                                        badge_class_url: "https://bench.example.edu/badges/el30-data".into(),
                                        issuer_id: "https://bench.example.edu/issuer".into(),
                                        recipient_hash: format!("sha256${}", Hash::of(&i.to_be_bytes()).to_hex()),
                                        evidence_hash: Hash::of(&i.to_le_bytes()),
                                        issued_at: 1_700_000_000 + i as i64,
                                    },
                                    &key,
                                )
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                all.extend(h.join().expect("signing thread"));
            }
        });
        all
    };
    let mut members = Members::new();
    members.insert(key.verifying_key().to_bytes(), "https://bench.example.edu");
    let mut chain = Chain::new(params.clone());
    let mut blocks = Vec::with_capacity(BLOCKS as usize);
    for (i, recs) in records.chunks(5).enumerate() {
        let template = chain.candidate(recs, 1_700_000_000 + i as i64, key.verifying_key().to_bytes());
        let header = mine(&template, params.difficulty_bits, 1, &never).expect("found");
        let block = Block::seal(header, recs.to_vec(), &key);
        chain.insert_valid(block.clone());
        blocks.push(block);
    }
    println!("built a {BLOCKS}-block chain ({} records) in {:.1} s", records.len(), t.elapsed().as_secs_f64());

    let now = 1_800_000_000;
    let raw = raw_batched_verify(&blocks);
    let t = Instant::now();
    verify_chain(&params, &members, &blocks, now, false, threads()).expect("valid");
    let signed = t.elapsed().as_secs_f64();
    let t = Instant::now();
    verify_chain(&params, &members, &blocks, now, true, threads()).expect("valid");
    let full = t.elapsed().as_secs_f64();
    let rate = |secs: f64| BLOCKS as f64 / secs;
    println!(
        "raw batched Ed25519 ({} threads, batches of 64), the same {BLOCKS} signatures: {raw:.3} s = {:.0} verifications/s",
        threads(),
        rate(raw)
    );
    println!(
        "verify from genesis, every rule + miner signatures: {signed:.3} s = {:.0} blocks/s   goal >= 40,000   ratio to raw batched Ed25519: {:.2}",
        rate(signed),
        rate(signed) / rate(raw)
    );
    println!(
        "verify from genesis, with every record signature too: {full:.2} s = {:.0} blocks/s   goal >= 10,000   ratio to raw batched Ed25519 (6 signatures a block): {:.2}",
        rate(full),
        rate(full) * 6.0 / rate(raw)
    );
}

/// The baseline: ed25519-dalek's batch verification of the blocks' miner signatures (keys
/// decoded once), chunks of 64 spread over every core, and nothing else.
fn raw_batched_verify(blocks: &[Block]) -> f64 {
    let messages: Vec<Vec<u8>> = blocks.iter().map(|b| [b"cairn-block-v2".as_slice(), &b.hash().0].concat()).collect();
    let sigs: Vec<ed25519_dalek::Signature> =
        blocks.iter().map(|b| ed25519_dalek::Signature::from_bytes(&b.signature)).collect();
    let key = VerifyingKey::from_bytes(&blocks[0].header.miner).expect("key");
    let next = AtomicU64::new(0);
    let chunks = blocks.len().div_ceil(64) as u64;
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads() {
            s.spawn(|| {
                let keys = vec![key; 64];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= chunks {
                        return;
                    }
                    let r = (i as usize * 64)..((i as usize + 1) * 64).min(blocks.len());
                    let msgs: Vec<&[u8]> = messages[r.clone()].iter().map(Vec::as_slice).collect();
                    ed25519_dalek::verify_batch(&msgs, &sigs[r.clone()], &keys[..r.len()]).expect("valid");
                }
            });
        }
    });
    t.elapsed().as_secs_f64()
}
