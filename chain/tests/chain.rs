//! The chain crate on its own: validation, fork choice, proofs, and properties.

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

/// Mines a block on the current tip.
fn mine_on(chain: &Chain, recs: Vec<Record>, time: i64, miner: &SigningKey) -> Block {
    let template = chain.candidate(&recs, time, miner.verifying_key().to_bytes());
    let header = mine(&template, chain.params().difficulty_bits, 2, &AtomicBool::new(false)).unwrap();
    Block { header, records: recs }
}

const NOW: i64 = 1_800_000_000;

fn trust_all(_: &[u8; 32]) -> bool {
    true
}

#[test]
fn blocks_of_five_extend_the_chain_and_records_can_be_located_and_proved() {
    let k = key(1);
    let mut chain = Chain::new(params());
    for n in 0..3 {
        let b = mine_on(&chain, records(n * 5, &k), 100 + n as i64, &k);
        assert!(matches!(chain.add(b, NOW, &trust_all).unwrap(), AddOutcome::NewTip(r) if r.removed.is_empty()));
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
    verify_chain(chain.params(), &blocks, NOW, true, 2).unwrap();
}

#[test]
fn the_standard_network_needs_hex_0000() {
    let p = Params::new("el30");
    assert_eq!((p.records_per_block, p.difficulty_bits), (5, 16));
    let k = key(2);
    let mut chain = Chain::new(p);
    let b = mine_on(&chain, records(0, &k), 1, &k);
    assert!(b.hash().to_hex().starts_with("0000"));
    chain.add(b, NOW, &trust_all).unwrap();
}

#[test]
fn bad_blocks_are_refused_with_the_reason() {
    let k = key(1);
    let mut chain = Chain::new(params());
    let good = mine_on(&chain, records(0, &k), 10, &k);

    let mut wrong_count = good.clone();
    wrong_count.records.pop();
    assert!(matches!(chain.add(wrong_count, NOW, &trust_all), Err(ChainError::WrongRecordCount { .. })));

    let mut tampered = good.clone();
    tampered.records[2].fields.recipient_hash.push('0');
    assert!(matches!(
        chain.add(tampered, NOW, &trust_all),
        Err(ChainError::BadMerkleRoot | ChainError::InsufficientWork { .. })
    ));

    let mut lazy = good.clone();
    lazy.header.nonce = lazy.header.nonce.wrapping_add(1);
    while lazy.hash().leading_zero_bits() >= 8 {
        lazy.header.nonce += 1;
    }
    assert!(matches!(chain.add(lazy, NOW, &trust_all), Err(ChainError::InsufficientWork { .. })));

    let future = mine_on(&chain, records(0, &k), NOW + 3 * 3600, &k);
    assert!(matches!(chain.add(future, NOW, &trust_all), Err(ChainError::TimestampInFuture { .. })));

    let stranger = key(9);
    let untrusted = mine_on(&chain, records(0, &stranger), 10, &k);
    let trusted_key = k.verifying_key().to_bytes();
    assert!(matches!(
        chain.add(untrusted, NOW, &|id: &[u8; 32]| *id == trusted_key),
        Err(ChainError::UntrustedSigner(_))
    ));

    // A forged signature with a correct Merkle root and work.
    let mut forged_recs = records(0, &k);
    forged_recs[1].signature[5] ^= 1;
    let forged = mine_on(&chain, forged_recs, 10, &k);
    assert_eq!(chain.add(forged, NOW, &trust_all), Err(ChainError::BadSignature));

    let mut dup_recs = records(0, &k);
    dup_recs[4] = dup_recs[0].clone();
    let dup = mine_on(&chain, dup_recs, 10, &k);
    assert!(matches!(chain.add(dup, NOW, &trust_all), Err(ChainError::DuplicateRecord(_))));

    chain.add(good, NOW, &trust_all).unwrap();
    let replay = mine_on(&chain, records(0, &k), 11, &k);
    assert!(matches!(chain.add(replay, NOW, &trust_all), Err(ChainError::RecordAlreadyInChain(_))));
    assert_eq!(chain.height(), 1);
}

#[test]
fn another_networks_blocks_do_not_link() {
    let k = key(1);
    let theirs = Chain::new(Params { network: "other".into(), ..params() });
    let b = mine_on(&theirs, records(0, &k), 1, &k);
    let mut ours = Chain::new(params());
    assert_ne!(theirs.genesis_hash(), ours.genesis_hash());
    assert!(matches!(ours.add(b, NOW, &trust_all), Err(ChainError::WrongPrevious { .. })));
}

#[test]
fn fork_choice_is_the_same_whatever_the_arrival_order_and_reorgs_report_records() {
    let (a, b) = (key(1), key(2));
    let base = Chain::new(params());
    let from_a = mine_on(&base, records(0, &a), 10, &a);
    let from_b = mine_on(&base, records(100, &b), 10, &b);
    let winner = from_a.hash().min(from_b.hash());

    let mut x = Chain::new(params());
    x.add(from_a.clone(), NOW, &trust_all).unwrap();
    let out = x.add(from_b.clone(), NOW, &trust_all).unwrap();
    let mut y = Chain::new(params());
    y.add(from_b.clone(), NOW, &trust_all).unwrap();
    y.add(from_a.clone(), NOW, &trust_all).unwrap();
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
    side.add(loser.clone(), NOW, &trust_all).unwrap();
    let next = mine_on(&side, records(200, &a), 11, &a);
    let out = x.add(next.clone(), NOW, &trust_all).unwrap();
    let AddOutcome::NewTip(reorg) = out else { panic!("expected a reorganisation") };
    assert_eq!(reorg.removed.iter().map(|b| b.hash()).collect::<Vec<_>>(), vec![winner]);
    assert_eq!(reorg.added.len(), 2);
    assert_eq!(x.tip().1, next.hash());
    // A record of the abandoned block can now be mined again on the new tip.
    let orphan = if winner == from_a.hash() { records(0, &a) } else { records(100, &b) };
    assert!(x.locate(&orphan[0].id()).is_none());
    let again = mine_on(&x, orphan, 12, &a);
    x.add(again, NOW, &trust_all).unwrap();
    assert_eq!(x.height(), 3);
}

#[test]
fn verify_chain_finds_a_tampered_block_and_its_height() {
    let k = key(1);
    let mut chain = Chain::new(params());
    for n in 0..4 {
        let b = mine_on(&chain, records(n * 5, &k), n as i64, &k);
        chain.add(b, NOW, &trust_all).unwrap();
    }
    let mut blocks: Vec<Block> = chain.range(1, 4).iter().map(|b| (**b).clone()).collect();
    blocks[2].records[0].signature[0] ^= 0x80;
    // Headers and roots: the signature is not covered by the root? It is (the leaf hashes
    // the whole record), so the root check already fails.
    assert_eq!(verify_chain(chain.params(), &blocks, NOW, false, 2).unwrap_err().0, 3);
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
                prop_assert!(c.add(b, NOW, &trust_all).is_err(), "byte {} bit {} went unnoticed", i, bit);
            }
        }
    }
}
