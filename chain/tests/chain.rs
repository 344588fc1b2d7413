//! The chain crate on its own: validation, fork choice, proofs, and properties.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks fail loudly by design

use std::sync::atomic::AtomicBool;

use cairn_chain::*;
use proptest::prelude::*;

/// A fast test network: five records a block, 8 bits of work.
fn params() -> Params {
    Params { difficulty_bits: 8, ..Params::new("test-network") }
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn record(i: u32, signer: &SigningKey) -> Record {
    Record::sign(
        RecordFields {
            kind: RecordKind::Award,
            assertion_url: format!("https://a.example.edu/assertions/{i}"),
            badge_class_url: "https://a.example.edu/badges/el30-data".into(),
            issuer_id: "https://a.example.edu/issuer".into(),
            recipient_hash: format!("sha256${}", Hash::of(&i.to_be_bytes()).to_hex()),
            evidence_hash: Hash::of(format!("https://blog.example.org/{i}").as_bytes()),
            issued_at: 1_700_000_000 + i as i64,
        },
        signer,
    )
}

fn records(from: u32, signer: &SigningKey) -> Vec<Record> {
    (from..from + 5).map(|i| record(i, signer)).collect()
}

/// Mines and signs a block on the current tip.
fn mine_on(chain: &Chain, recs: Vec<Record>, time: i64, miner: &SigningKey) -> Block {
    let template = chain.candidate(&recs, time, miner.verifying_key().to_bytes());
    mine_header(template, recs, chain.params().difficulty_bits, miner)
}

fn mine_header(template: BlockHeader, recs: Vec<Record>, bits: u32, miner: &SigningKey) -> Block {
    let header = mine(&template, bits, 2, &AtomicBool::new(false)).unwrap();
    Block::seal(header, recs, miner)
}

const NOW: i64 = 1_800_000_000;
const BASE: &str = "https://a.example.edu";

/// The test network's members: keys 1 to 4, all at a.example.edu.
fn members() -> Members {
    let mut m = Members::new();
    for seed in 1..=4 {
        m.insert(key(seed).verifying_key().to_bytes(), BASE);
    }
    m
}

/// A chain of `n` blocks mined by key 1, one second apart from `start`.
fn chain_of(n: u32, start: i64) -> Chain {
    let k = key(1);
    let mut chain = Chain::new(params());
    for i in 0..n {
        let b = mine_on(&chain, records(i * 5, &k), start + i as i64, &k);
        chain.add(b, NOW, &members()).unwrap();
    }
    chain
}

#[test]
fn blocks_of_five_extend_the_chain_and_records_can_be_located_and_proved() {
    let k = key(1);
    let mut chain = Chain::new(params());
    for n in 0..3 {
        let b = mine_on(&chain, records(n * 5, &k), 100 + n as i64, &k);
        assert!(matches!(chain.add(b, NOW, &members()).unwrap(), AddOutcome::NewTip(r) if r.removed.is_empty()));
    }
    assert_eq!(chain.height(), 3);
    let r = record(7, &k);
    assert_eq!(chain.locate(&r.id()), Some(2));
    let block = chain.block_at(2).unwrap();
    let proof = block.proof(&r.id()).unwrap();
    assert!(proof.verify(&block.header.merkle_root));
    assert!(block.hash().to_hex().starts_with("00"));
    // Round trip through bytes.
    assert_eq!(Block::decode(&block.encode()).unwrap(), *block);
    let blocks: Vec<Block> = chain.range(1, 3).iter().map(|b| (**b).clone()).collect();
    verify_chain(chain.params(), &members(), &blocks, NOW, true, 2).unwrap();
}

#[test]
fn the_standard_network_needs_hex_0000() {
    let p = Params::new("el30");
    assert_eq!((p.records_per_block, p.difficulty_bits), (5, 16));
    let k = key(2);
    let mut chain = Chain::new(p);
    let b = mine_on(&chain, records(0, &k), 1, &k);
    assert!(b.hash().to_hex().starts_with("0000"));
    chain.add(b, NOW, &members()).unwrap();
}

#[test]
fn bad_blocks_are_refused_with_the_reason() {
    let k = key(1);
    let mut chain = Chain::new(params());
    let good = mine_on(&chain, records(0, &k), 10, &k);

    let mut wrong_count = good.clone();
    wrong_count.records.pop();
    assert!(matches!(chain.add(wrong_count, NOW, &members()), Err(ChainError::WrongRecordCount { .. })));

    let mut tampered = good.clone();
    tampered.records[2].fields.recipient_hash.push('0');
    assert!(matches!(
        chain.add(tampered, NOW, &members()),
        Err(ChainError::BadMerkleRoot | ChainError::InsufficientWork { .. })
    ));

    let mut lazy = good.clone();
    lazy.header.nonce = lazy.header.nonce.wrapping_add(1);
    while lazy.hash().leading_zero_bits() >= 8 {
        lazy.header.nonce += 1;
    }
    assert!(matches!(chain.add(lazy, NOW, &members()), Err(ChainError::InsufficientWork { .. })));

    let future = mine_on(&chain, records(0, &k), NOW + 3 * 3600, &k);
    assert!(matches!(chain.add(future, NOW, &members()), Err(ChainError::TimestampInFuture { .. })));

    let stranger = key(9);
    let untrusted = mine_on(&chain, records(0, &stranger), 10, &k);
    assert!(matches!(chain.add(untrusted, NOW, &members()), Err(ChainError::UntrustedSigner(_))));

    // A forged signature with a correct Merkle root and work.
    let mut forged_recs = records(0, &k);
    forged_recs[1].signature[5] ^= 1;
    let forged = mine_on(&chain, forged_recs, 10, &k);
    assert_eq!(chain.add(forged, NOW, &members()), Err(ChainError::BadSignature));

    let mut dup_recs = records(0, &k);
    dup_recs[4] = dup_recs[0].clone();
    let dup = mine_on(&chain, dup_recs, 10, &k);
    assert!(matches!(chain.add(dup, NOW, &members()), Err(ChainError::DuplicateRecord(_))));

    chain.add(good, NOW, &members()).unwrap();
    let replay = mine_on(&chain, records(0, &k), 11, &k);
    assert!(matches!(chain.add(replay, NOW, &members()), Err(ChainError::RecordAlreadyInChain(_))));
    assert_eq!(chain.height(), 1);
}

#[test]
fn another_networks_blocks_do_not_link() {
    let k = key(1);
    let theirs = Chain::new(Params { network: "other".into(), ..params() });
    let b = mine_on(&theirs, records(0, &k), 1, &k);
    let mut ours = Chain::new(params());
    assert_ne!(theirs.genesis_hash(), ours.genesis_hash());
    assert!(matches!(ours.add(b, NOW, &members()), Err(ChainError::WrongPrevious { .. })));
}

#[test]
fn fork_choice_is_the_same_whatever_the_arrival_order_and_reorgs_report_records() {
    let (a, b) = (key(1), key(2));
    let base = Chain::new(params());
    let from_a = mine_on(&base, records(0, &a), 10, &a);
    let from_b = mine_on(&base, records(100, &b), 10, &b);
    let winner = from_a.hash().min(from_b.hash());

    let mut x = Chain::new(params());
    x.add(from_a.clone(), NOW, &members()).unwrap();
    let out = x.add(from_b.clone(), NOW, &members()).unwrap();
    let mut y = Chain::new(params());
    y.add(from_b.clone(), NOW, &members()).unwrap();
    y.add(from_a.clone(), NOW, &members()).unwrap();
    assert_eq!(x.tip().1, winner);
    assert_eq!(y.tip().1, winner);
    if winner == from_b.hash() {
        let AddOutcome::NewTip(reorg) = out else { panic!("expected a switch") };
        assert_eq!(reorg.removed.len(), 1);
        assert_eq!(reorg.removed[0].hash(), from_a.hash());
    } else {
        assert_eq!(out, AddOutcome::SideBranch);
    }

    // The losing branch grows longer: everyone follows it, and the records of the block
    // it replaces come back for re-pooling.
    let loser = if winner == from_a.hash() { from_b.clone() } else { from_a.clone() };
    let mut side = Chain::new(params());
    side.add(loser.clone(), NOW, &members()).unwrap();
    let next = mine_on(&side, records(200, &a), 11, &a);
    let out = x.add(next.clone(), NOW, &members()).unwrap();
    let AddOutcome::NewTip(reorg) = out else { panic!("expected a reorganisation") };
    assert_eq!(reorg.removed.iter().map(|b| b.hash()).collect::<Vec<_>>(), vec![winner]);
    assert_eq!(reorg.added.len(), 2);
    assert_eq!(x.tip().1, next.hash());
    // A record of the abandoned block can now be mined again on the new tip.
    let orphan = if winner == from_a.hash() { records(0, &a) } else { records(100, &b) };
    assert!(x.locate(&orphan[0].id()).is_none());
    let again = mine_on(&x, orphan, 12, &a);
    x.add(again, NOW, &members()).unwrap();
    assert_eq!(x.height(), 3);
}

#[test]
fn verify_chain_finds_a_tampered_block_and_its_height() {
    let k = key(1);
    let mut chain = Chain::new(params());
    for n in 0..4 {
        let b = mine_on(&chain, records(n * 5, &k), n as i64, &k);
        chain.add(b, NOW, &members()).unwrap();
    }
    let mut blocks: Vec<Block> = chain.range(1, 4).iter().map(|b| (**b).clone()).collect();
    verify_chain(chain.params(), &members(), &blocks, NOW, true, 2).unwrap();
    // A record signature is covered by the Merkle root (the leaf hashes the whole record).
    let mut tampered = blocks.clone();
    tampered[2].records[0].signature[0] ^= 0x80;
    assert_eq!(verify_chain(chain.params(), &members(), &tampered, NOW, false, 2).unwrap_err().0, 3);
    // A miner signature is checked by signature, even without the records' signatures.
    blocks[3].signature[0] ^= 0x01;
    assert_eq!(
        verify_chain(chain.params(), &members(), &blocks, NOW, false, 2).unwrap_err(),
        (4, ChainError::BadBlockSignature)
    );
    // Without key 1 among the members, its blocks are a stranger's.
    let mut others = Members::new();
    others.insert(key(2).verifying_key().to_bytes(), BASE);
    assert!(matches!(
        verify_chain(chain.params(), &others, &blocks[..1], NOW, true, 2).unwrap_err(),
        (1, ChainError::UnknownMiner(_))
    ));
}

/// Mines `template` at successive (back-dated) times until its hash is below `below`, keeping
/// the lowest found; bounded, since a very low `below` may take long to beat.
fn mine_below(mut template: BlockHeader, recs: &[Record], signer: &SigningKey, below: Hash) -> Block {
    let mut best: Option<Block> = None;
    for _ in 0..200 {
        let b = mine_header(template, recs.to_vec(), 8, signer);
        if best.as_ref().is_none_or(|x| b.hash() < x.hash()) {
            best = Some(b);
        }
        if best.as_ref().is_some_and(|x| x.hash() < below) {
            break;
        }
        template.timestamp += 1;
    }
    best.unwrap()
}

#[test]
fn a_strangers_block_is_refused_whatever_its_work_or_hash() {
    let k = key(1);
    let mut chain = chain_of(2, 100);
    let tip = chain.block_at(2).unwrap();
    // An outsider re-packs the tip's records in another order, names its own key, dates the
    // block to 1970 and grinds for a hash lower than the tip's.
    let outsider = key(66);
    let mut recs = tip.records.clone();
    recs.reverse();
    let ids: Vec<Hash> = recs.iter().map(Record::id).collect();
    let template = BlockHeader {
        version: BLOCK_VERSION,
        height: 2,
        prev: tip.header.prev,
        merkle_root: merkle_root(&ids),
        timestamp: 1,
        miner: outsider.verifying_key().to_bytes(),
        nonce: 0,
    };
    let forged = mine_below(template, &recs, &outsider, tip.hash());
    assert!(matches!(chain.add(forged.clone(), NOW, &members()), Err(ChainError::UnknownMiner(_))));
    // The same block claiming a member as its miner, without that member's signature.
    let mut template = forged.header;
    template.timestamp = 1;
    template.miner = k.verifying_key().to_bytes();
    let impostor = mine_below(template, &recs, &outsider, tip.hash());
    assert_eq!(chain.add(impostor, NOW, &members()), Err(ChainError::BadBlockSignature));
    assert_eq!(chain.tip().1, tip.hash());
    assert_eq!(chain.side_blocks(), 0, "nothing refused is kept");
}

#[test]
fn a_member_cannot_remove_a_final_block_even_with_more_work() {
    let (a, b) = (key(1), key(2));
    let mut chain = chain_of(10, 100);
    assert_eq!(chain.final_height(), 4);
    assert!(chain.is_final(4) && !chain.is_final(5));
    assert_eq!(chain.confirmations(4), 7);
    // A branch from height 2 (below the final height 4): its first block is refused.
    let mut branch = Chain::new(params());
    for h in 1..=2 {
        branch.add((*chain.block_at(h).unwrap()).clone(), NOW, &members()).unwrap();
    }
    let first = mine_on(&branch, records(500, &b), 200, &b);
    assert_eq!(
        chain.add(first.clone(), NOW, &members()),
        Err(ChainError::WouldRemoveFinal { fork_height: 2, final_height: 4 })
    );
    // A branch from the final height itself may still compete (it removes no final block).
    let mut near = Chain::new(params());
    for h in 1..=4 {
        near.add((*chain.block_at(h).unwrap()).clone(), NOW, &members()).unwrap();
    }
    let side = mine_on(&near, records(600, &b), 200, &b);
    assert_eq!(chain.add(side.clone(), NOW, &members()), Ok(AddOutcome::SideBranch));
    assert_eq!(chain.side_blocks(), 1);
    // Once the chain grows past it, that side block can never win and is pruned.
    let next = mine_on(&chain, records(700, &a), 300, &a);
    let AddOutcome::NewTip(reorg) = chain.add(next, NOW, &members()).unwrap() else { panic!("expected a new tip") };
    assert_eq!(reorg.pruned, vec![side.hash()]);
    assert_eq!(chain.side_blocks(), 0);
    assert!(!chain.contains(&side.hash()));
}

#[test]
fn block_times_must_pass_the_median_and_not_run_ahead() {
    let k = key(1);
    let mut chain = chain_of(11, 1000);
    // The previous 11 blocks are at 1000..=1010: the median is 1005.
    assert_eq!(chain.median_time_past(&chain.tip().1), 1005);
    let mut at_median = chain.candidate(&records(100, &k), 0, k.verifying_key().to_bytes());
    at_median.timestamp = 1005;
    let b = mine_header(at_median, records(100, &k), 8, &k);
    assert_eq!(
        chain.add(b, NOW, &members()),
        Err(ChainError::TimestampNotAfterMedian { timestamp: 1005, median: 1005 })
    );
    let ahead = mine_on(&chain, records(100, &k), NOW + 3 * 3600, &k);
    assert!(matches!(chain.add(ahead, NOW, &members()), Err(ChainError::TimestampInFuture { .. })));
    let two_hours = mine_on(&chain, records(100, &k), NOW + 2 * 3600, &k);
    chain.add(two_hours, NOW, &members()).unwrap();
    // A slow clock still mines: the candidate's time moves just past the median.
    let behind = chain.candidate(&records(200, &k), 0, k.verifying_key().to_bytes());
    assert_eq!(behind.timestamp, chain.median_time_past(&chain.tip().1) + 1);
}

#[test]
fn a_record_claiming_another_institutions_url_is_refused() {
    let (a, b) = (key(1), key(2));
    let mut m = Members::new();
    m.insert(a.verifying_key().to_bytes(), "https://a.example.edu/");
    m.insert(b.verifying_key().to_bytes(), "https://b.example.edu");
    // b signs records whose URLs are a's.
    let claimed = records(0, &b);
    assert_eq!(
        m.check_record(&claimed[0]),
        Err(ChainError::RecordOutsideIssuer {
            url: "https://a.example.edu/assertions/0".into(),
            base: "https://b.example.edu".into()
        })
    );
    assert_eq!(m.check_record(&records(0, &a)[0]), Ok(()));
    // A prefix that is not a path boundary does not count.
    let mut lookalike = records(0, &a)[0].fields.clone();
    lookalike.assertion_url = "https://a.example.edu.evil/assertions/1".into();
    assert!(m.check_record(&Record::sign(lookalike, &a)).is_err());
    let mut chain = Chain::new(params());
    let block = mine_on(&chain, claimed, 10, &b);
    assert!(matches!(chain.add(block, NOW, &m), Err(ChainError::RecordOutsideIssuer { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn record_encoding_round_trips(url in "[ -~]{0,80}", hash in "[0-9a-f]{64}", t in any::<i64>(), revoke in any::<bool>()) {
        let k = key(3);
        let r = Record::sign(RecordFields {
            kind: if revoke { RecordKind::Revocation } else { RecordKind::Award },
            assertion_url: url.clone(),
            badge_class_url: format!("{url}/b"),
            issuer_id: "https://i".into(),
            recipient_hash: format!("sha256${hash}"),
            evidence_hash: Hash::of(url.as_bytes()),
            issued_at: t,
        }, &k);
        let back = Record::decode(&r.encode()).unwrap();
        prop_assert_eq!(leaf(&r.encode()), r.id());
        prop_assert!(back.verify_signature().is_ok());
        prop_assert_eq!(back, r);
    }

    #[test]
    fn proofs_verify_for_every_leaf_and_fail_for_others(n in 1usize..40, other in any::<u64>()) {
        let leaves: Vec<Hash> = (0..n).map(|i| Hash::of(&(i as u64).to_be_bytes())).collect();
        let root = merkle_root(&leaves);
        for i in 0..n {
            let p = MerkleProof::for_leaf(&leaves, i).unwrap();
            prop_assert!(p.verify(&root));
            let mut wrong = p.clone();
            wrong.leaf = Hash::of(&other.to_le_bytes());
            prop_assert!(!wrong.verify(&root));
        }
    }
}

/// One block at the standard "0000" difficulty, used by the byte-flipping property.
fn sample_block() -> &'static (Chain, Block) {
    static SAMPLE: std::sync::OnceLock<(Chain, Block)> = std::sync::OnceLock::new();
    SAMPLE.get_or_init(|| {
        let k = key(4);
        let chain = Chain::new(Params::new("test-network"));
        let b = mine_on(&chain, records(0, &k), 5, &k);
        (chain, b)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn flipping_any_byte_of_a_stored_block_makes_it_invalid(index in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (chain, block) = sample_block();
        let mut bytes = block.encode_stored();
        let i = index.index(bytes.len());
        bytes[i] ^= 1 << bit;
        match Block::decode_stored(&bytes) {
            Err(_) => {}
            Ok(b) => {
                let mut c = chain.clone();
                prop_assert!(c.add(b, NOW, &members()).is_err(), "byte {} bit {} went unnoticed", i, bit);
            }
        }
    }
}
