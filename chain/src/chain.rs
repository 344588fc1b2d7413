//! A chain of blocks from genesis, with membership, finality and fork choice.
//!
//! Only member institutions mine: a block names its miner and carries the miner's Ed25519
//! signature, and the miner must be a member. Among valid branches, the main chain is the one
//! with the most cumulative work, ties going to the lower tip hash, so every instance picks the
//! same tip from the same blocks — except that no branch may remove a *final* block, one
//! buried under `finality_depth` blocks. Side branches are kept only within that window.
//! Switching branches reports the blocks left and joined, so their records can go back to
//! (or leave) the pending pool, and the side blocks pruned, so storage can drop them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::block::{BLOCK_VERSION, Block, BlockHeader, genesis_header};
use crate::record::{Record, verify_batch};
use crate::{ChainError, Hash};

/// How many previous blocks the median-time rule looks at.
pub const MEDIAN_SPAN: usize = 11;

/// A network's parameters, fixed by its genesis (but `max_future_secs` and `finality_depth`,
/// which are local policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub network: String,
    /// Records in every block (5).
    pub records_per_block: u32,
    /// Leading zero bits a block hash needs (16 = hex "0000").
    pub difficulty_bits: u32,
    /// How far ahead of the validator's clock a block's time may be, in seconds (2 hours).
    pub max_future_secs: i64,
    /// Blocks on top of a block that make it final (6).
    pub finality_depth: u64,
}

impl Params {
    /// A network with the standard parameters: five records a block, "0000" proof of work,
    /// two hours of clock tolerance, finality after six blocks.
    pub fn new(network: impl Into<String>) -> Params {
        Params {
            network: network.into(),
            records_per_block: 5,
            difficulty_bits: 16,
            max_future_secs: 2 * 3600,
            finality_depth: 6,
        }
    }

    /// Work a block adds: 2^difficulty expected attempts.
    pub fn block_work(&self) -> u128 {
        1u128 << self.difficulty_bits.min(127)
    }
}

/// Fork choice: true when a tip with `work` and `hash` beats one with `other_work` and
/// `other_hash` (more work wins; equal work goes to the lower hash).
pub fn better_tip(work: u128, hash: &Hash, other_work: u128, other_hash: &Hash) -> bool {
    work > other_work || (work == other_work && hash < other_hash)
}

/// The median of up to [`MEDIAN_SPAN`] timestamps (the upper median for an even count).
pub fn median_time(times: &[i64]) -> i64 {
    let mut t: Vec<i64> = times.iter().rev().take(MEDIAN_SPAN).copied().collect();
    t.sort_unstable();
    t.get(t.len() / 2).copied().unwrap_or(0)
}

/// The member institutions of a network: each one's public key and the base URL under which
/// its assertions live. Only members mine blocks and sign records, and a record's URLs must
/// lie under its signer's base URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// Key → base URL; `None` for a member whose record URLs are not checked.
    by_key: HashMap<[u8; 32], Option<String>>,
}

impl Members {
    pub fn new() -> Members {
        Members::default()
    }

    /// Adds (or replaces) a member; a trailing `/` of the base URL is ignored.
    pub fn insert(&mut self, key: [u8; 32], base_url: &str) {
        self.by_key.insert(key, Some(base_url.trim_end_matches('/').to_string()));
    }

    /// Adds a member whose records' URLs are not checked: an institution validating its own
    /// records, which only it can sign, whatever base URL it had when it signed them.
    pub fn insert_unbound(&mut self, key: [u8; 32]) {
        self.by_key.insert(key, None);
    }

    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.by_key.contains_key(key)
    }

    /// The member's base URL, without a trailing `/` (`None` also for an unbound member).
    pub fn base_url(&self, key: &[u8; 32]) -> Option<&str> {
        self.by_key.get(key)?.as_deref()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The block's miner must be a member.
    pub fn check_miner(&self, header: &BlockHeader) -> Result<(), ChainError> {
        if self.contains(&header.miner) { Ok(()) } else { Err(ChainError::UnknownMiner(crate::to_hex(&header.miner))) }
    }

    /// The record's signer must be a member and its assertion, BadgeClass and issuer URLs must
    /// lie under that member's base URL. The signature itself is not checked here.
    pub fn check_record(&self, record: &Record) -> Result<(), ChainError> {
        let Some(base) = self.by_key.get(&record.institution) else {
            return Err(ChainError::UntrustedSigner(crate::to_hex(&record.institution)));
        };
        let Some(base) = base.as_deref() else { return Ok(()) };
        let f = &record.fields;
        for url in [&f.assertion_url, &f.badge_class_url, &f.issuer_id] {
            let under = url.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'));
            if !under {
                return Err(ChainError::RecordOutsideIssuer { url: url.clone(), base: base.to_string() });
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Node {
    block: Arc<Block>,
    work: u128,
}

/// The blocks left and joined when the main chain switches branch, and the side blocks that
/// fell out of the finality window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reorg {
    /// Blocks that left the main chain, highest first.
    pub removed: Vec<Arc<Block>>,
    /// Blocks that joined it, lowest first.
    pub added: Vec<Arc<Block>>,
    /// Side-branch blocks forgotten because they can no longer win (they fork below the
    /// final height); storage should drop them too.
    pub pruned: Vec<Hash>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// The block was already known.
    Known,
    /// Stored on a side branch; the main chain is unchanged.
    SideBranch,
    /// The main chain changed (for a plain extension, `removed` is empty).
    NewTip(Reorg),
}

/// Where a chain's blocks are kept. The crate does no I/O: the application implements
/// this over its own storage, and [`Chain::load`] rebuilds the chain from it.
pub trait BlockStore {
    type Error;
    /// Every stored block, in any order.
    fn load_blocks(&mut self) -> Result<Vec<Block>, Self::Error>;
}

/// Blocks from genesis, with the main chain and an index of its records.
#[derive(Debug, Clone)]
pub struct Chain {
    params: Params,
    genesis: BlockHeader,
    genesis_hash: Hash,
    nodes: HashMap<Hash, Node>,
    /// Main chain block hashes by height (index 0 = genesis).
    main: Vec<Hash>,
    /// Known blocks that are not on the main chain.
    side: HashSet<Hash>,
    /// Record id → height of the main-chain block holding it.
    records: HashMap<Hash, u64>,
}

impl Chain {
    pub fn new(params: Params) -> Chain {
        let genesis = genesis_header(&params);
        let genesis_hash = genesis.hash();
        Chain {
            params,
            genesis,
            genesis_hash,
            nodes: HashMap::new(),
            main: vec![genesis_hash],
            side: HashSet::new(),
            records: HashMap::new(),
        }
    }

    /// Rebuilds a chain from a store of blocks that were validated when they arrived.
    /// Blocks whose parent is missing are skipped.
    pub fn load<S: BlockStore>(params: Params, store: &mut S) -> Result<Chain, S::Error> {
        let mut blocks = store.load_blocks()?;
        blocks.sort_by_key(|b| b.header.height);
        let mut chain = Chain::new(params);
        for b in blocks {
            if chain.contains(&b.header.prev) && !chain.contains(&b.hash()) {
                chain.insert_valid(b);
            }
        }
        Ok(chain)
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }

    /// (height, hash, cumulative work) of the main chain's tip.
    pub fn tip(&self) -> (u64, Hash, u128) {
        let hash = *self.main.last().unwrap_or(&self.genesis_hash);
        (self.height(), hash, self.work_of(&hash))
    }

    pub fn height(&self) -> u64 {
        (self.main.len() - 1) as u64
    }

    /// The highest final height: blocks at or below it have `finality_depth` blocks on top
    /// and can never leave the main chain. 0 (genesis) while the chain is short.
    pub fn final_height(&self) -> u64 {
        self.height().saturating_sub(self.params.finality_depth)
    }

    /// Blocks on top of the main-chain block at `height`, plus one (the tip has 1).
    pub fn confirmations(&self, height: u64) -> u64 {
        (self.height() + 1).saturating_sub(height)
    }

    /// True when the main-chain block at `height` is final.
    pub fn is_final(&self, height: u64) -> bool {
        height <= self.final_height()
    }

    fn work_of(&self, hash: &Hash) -> u128 {
        self.nodes.get(hash).map_or(0, |n| n.work)
    }

    fn header_of(&self, hash: &Hash) -> Option<BlockHeader> {
        if *hash == self.genesis_hash { Some(self.genesis) } else { self.nodes.get(hash).map(|n| n.block.header) }
    }

    /// The main-chain block at `height` (genesis has no block body).
    pub fn block_at(&self, height: u64) -> Option<Arc<Block>> {
        let hash = self.main.get(height as usize)?;
        self.nodes.get(hash).map(|n| n.block.clone())
    }

    /// Any known block by hash.
    pub fn block(&self, hash: &Hash) -> Option<Arc<Block>> {
        self.nodes.get(hash).map(|n| n.block.clone())
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        *hash == self.genesis_hash || self.nodes.contains_key(hash)
    }

    /// True when `hash` is on the main chain.
    pub fn is_main(&self, hash: &Hash) -> bool {
        self.header_of(hash).is_some_and(|h| self.main.get(h.height as usize) == Some(hash))
    }

    /// Number of known blocks off the main chain.
    pub fn side_blocks(&self) -> usize {
        self.side.len()
    }

    /// The main-chain height holding record `id`, if any.
    pub fn locate(&self, id: &Hash) -> Option<u64> {
        self.records.get(id).copied()
    }

    /// The median time of the [`MEDIAN_SPAN`] blocks ending at `hash` (genesis counts, at 0).
    pub fn median_time_past(&self, hash: &Hash) -> i64 {
        let mut times = Vec::with_capacity(MEDIAN_SPAN);
        let mut cur = self.header_of(hash);
        while let Some(h) = cur {
            times.push(h.timestamp);
            if times.len() == MEDIAN_SPAN || h.height == 0 {
                break;
            }
            cur = self.header_of(&h.prev);
        }
        median_time(&times)
    }

    /// A header template for the next block on the main chain (nonce 0, to be mined). Its time
    /// is `now`, or just past the median of the previous blocks when clocks disagree.
    pub fn candidate(&self, records: &[Record], now: i64, miner: [u8; 32]) -> BlockHeader {
        let (height, prev, _) = self.tip();
        let ids: Vec<Hash> = records.iter().map(Record::id).collect();
        BlockHeader {
            version: BLOCK_VERSION,
            height: height + 1,
            prev,
            merkle_root: crate::merkle_root(&ids),
            timestamp: now.max(self.median_time_past(&prev) + 1),
            miner,
            nonce: 0,
        }
    }

    /// Record ids on the branch ending at `tip` (walking back to the main chain), plus the
    /// height at which that branch meets the main chain.
    fn branch_records(&self, tip: &Hash) -> (HashSet<Hash>, u64) {
        let mut ids = HashSet::new();
        let mut cur = *tip;
        loop {
            if self.is_main(&cur) {
                let h = self.header_of(&cur).map_or(0, |h| h.height);
                return (ids, h);
            }
            let Some(node) = self.nodes.get(&cur) else { return (ids, 0) };
            ids.extend(node.block.record_ids());
            cur = node.block.header.prev;
        }
    }

    /// Checks `block` (whose hash is `hash`) against the chain, cheapest checks first, so a
    /// stranger's block costs a set lookup and a hash, and a forged one one signature check.
    fn validate(
        &self,
        block: &Block,
        hash: &Hash,
        now: i64,
        members: &Members,
        signatures_checked: bool,
    ) -> Result<(), ChainError> {
        let h = &block.header;
        let p = &self.params;
        if h.version != BLOCK_VERSION {
            return Err(ChainError::WrongVersion(h.version));
        }
        members.check_miner(h)?;
        let work = hash.leading_zero_bits();
        if work < p.difficulty_bits {
            return Err(ChainError::InsufficientWork { needed: p.difficulty_bits, found: work });
        }
        if !signatures_checked {
            block.verify_signature()?;
        }
        let Some(parent) = self.header_of(&h.prev) else {
            if h.height == 1 {
                return Err(ChainError::WrongPrevious { expected: self.genesis_hash, found: h.prev });
            }
            return Err(ChainError::UnknownParent(h.prev));
        };
        if h.height != parent.height + 1 {
            return Err(ChainError::WrongHeight { expected: parent.height + 1, found: h.height });
        }
        let (branch, fork_height) = self.branch_records(&h.prev);
        if fork_height < self.final_height() {
            return Err(ChainError::WouldRemoveFinal { fork_height, final_height: self.final_height() });
        }
        if h.timestamp > now + p.max_future_secs {
            return Err(ChainError::TimestampInFuture { timestamp: h.timestamp, limit: now + p.max_future_secs });
        }
        let median = self.median_time_past(&h.prev);
        if h.timestamp <= median {
            return Err(ChainError::TimestampNotAfterMedian { timestamp: h.timestamp, median });
        }
        if block.records.len() != p.records_per_block as usize {
            return Err(ChainError::WrongRecordCount { expected: p.records_per_block, found: block.records.len() });
        }
        if block.computed_root() != h.merkle_root {
            return Err(ChainError::BadMerkleRoot);
        }
        let mut seen = HashSet::new();
        for id in block.record_ids() {
            if !seen.insert(id) {
                return Err(ChainError::DuplicateRecord(id));
            }
        }
        for id in &seen {
            let on_main_below_fork = self.records.get(id).is_some_and(|height| *height <= fork_height);
            if on_main_below_fork || branch.contains(id) {
                return Err(ChainError::RecordAlreadyInChain(*id));
            }
        }
        for r in &block.records {
            members.check_record(r)?;
        }
        if signatures_checked { Ok(()) } else { verify_batch(&block.records.iter().collect::<Vec<_>>()) }
    }

    /// Validates and adds a block; may switch the main chain (fork choice) and prune side
    /// branches that fell out of the finality window.
    pub fn add(&mut self, block: Block, now: i64, members: &Members) -> Result<AddOutcome, ChainError> {
        self.add_checked(block, now, members, false)
    }

    /// [`Chain::add`] for a block whose miner and record signatures the caller has already
    /// verified with [`verify_signatures`] (a page of blocks verified in one batch on every
    /// core): every other rule is checked here.
    pub fn add_presigned(&mut self, block: Block, now: i64, members: &Members) -> Result<AddOutcome, ChainError> {
        self.add_checked(block, now, members, true)
    }

    fn add_checked(
        &mut self,
        block: Block,
        now: i64,
        members: &Members,
        signatures_checked: bool,
    ) -> Result<AddOutcome, ChainError> {
        let hash = block.hash();
        if self.contains(&hash) {
            // The same header is known; the body must still be the one the header commits to.
            if block.computed_root() != block.header.merkle_root {
                return Err(ChainError::BadMerkleRoot);
            }
            return Ok(AddOutcome::Known);
        }
        self.validate(&block, &hash, now, members, signatures_checked)?;
        Ok(self.insert_valid(block))
    }

    /// Adds a block already validated (e.g. read back from this instance's own store).
    /// Its parent must be known.
    pub fn insert_valid(&mut self, block: Block) -> AddOutcome {
        let hash = block.hash();
        let work = self.work_of(&block.header.prev) + self.params.block_work();
        self.nodes.insert(hash, Node { block: Arc::new(block), work });
        let (_, tip, tip_work) = self.tip();
        if better_tip(work, &hash, tip_work, &tip) {
            let mut reorg = self.switch_to(hash);
            reorg.pruned = self.prune();
            AddOutcome::NewTip(reorg)
        } else {
            self.side.insert(hash);
            AddOutcome::SideBranch
        }
    }

    fn switch_to(&mut self, new_tip: Hash) -> Reorg {
        // Walk back from the new tip to the main chain.
        let mut added = Vec::new();
        let mut cur = new_tip;
        while !self.is_main(&cur) {
            let node = &self.nodes[&cur];
            added.push(node.block.clone());
            self.side.remove(&cur);
            cur = node.block.header.prev;
        }
        added.reverse();
        let fork_height = self.header_of(&cur).map_or(0, |h| h.height);
        let mut removed = Vec::new();
        while self.height() > fork_height {
            let h = self.main.pop().unwrap_or(self.genesis_hash);
            if let Some(node) = self.nodes.get(&h) {
                for id in node.block.record_ids() {
                    self.records.remove(&id);
                }
                removed.push(node.block.clone());
                self.side.insert(h);
            }
        }
        for b in &added {
            self.main.push(b.hash());
            for id in b.record_ids() {
                self.records.insert(id, b.header.height);
            }
        }
        Reorg { removed, added, pruned: Vec::new() }
    }

    /// Forgets side blocks at or below the final height, and then those whose parent was
    /// forgotten: none of them can ever join the main chain.
    fn prune(&mut self) -> Vec<Hash> {
        let final_height = self.final_height();
        let mut pruned = Vec::new();
        loop {
            let dead: Vec<Hash> = self
                .side
                .iter()
                .filter(|h| {
                    self.nodes
                        .get(*h)
                        .is_none_or(|n| n.block.header.height <= final_height || !self.contains(&n.block.header.prev))
                })
                .copied()
                .collect();
            if dead.is_empty() {
                return pruned;
            }
            for h in dead {
                self.side.remove(&h);
                self.nodes.remove(&h);
                pruned.push(h);
            }
        }
    }

    /// Main-chain blocks with heights in `from..=to`.
    pub fn range(&self, from: u64, to: u64) -> Vec<Arc<Block>> {
        (from.max(1)..=to.min(self.height())).filter_map(|h| self.block_at(h)).collect()
    }
}

/// Verifies a whole chain from genesis, block by block, by every rule a block must pass when
/// it arrives (but finality, which only concerns competing branches): version, membership of
/// the miner, links, heights, work, the median-time and future-time rules, Merkle roots,
/// record uniqueness, record membership and URLs. The miners' signatures are then checked in
/// batches on `threads` threads, and with `check_record_signatures` every record's as well.
/// Returns the first problem with its height.
pub fn verify_chain(
    params: &Params,
    members: &Members,
    blocks: &[Block],
    now: i64,
    check_record_signatures: bool,
    threads: usize,
) -> Result<(), (u64, ChainError)> {
    verify_chain_with_progress(params, members, blocks, now, check_record_signatures, threads, &|_| {})
}

/// [`verify_chain`], calling `progress(blocks checked)` every 1,000 blocks of the header pass.
pub fn verify_chain_with_progress(
    params: &Params,
    members: &Members,
    blocks: &[Block],
    now: i64,
    check_record_signatures: bool,
    threads: usize,
    progress: &dyn Fn(u64),
) -> Result<(), (u64, ChainError)> {
    let genesis = genesis_header(params);
    let mut prev = genesis;
    let mut prev_hash = genesis.hash();
    // The last MEDIAN_SPAN timestamps, oldest first (genesis included while the chain is short).
    let mut recent: std::collections::VecDeque<i64> = std::collections::VecDeque::from([genesis.timestamp]);
    let mut seen: HashSet<Hash> = HashSet::with_capacity(blocks.len() * params.records_per_block as usize);
    for b in blocks {
        let h = &b.header;
        let at = h.height;
        let err = |e| Err((at, e));
        if h.version != BLOCK_VERSION {
            return err(ChainError::WrongVersion(h.version));
        }
        if let Err(e) = members.check_miner(h) {
            return err(e);
        }
        if h.prev != prev_hash {
            return err(ChainError::WrongPrevious { expected: prev_hash, found: h.prev });
        }
        if h.height != prev.height + 1 {
            return err(ChainError::WrongHeight { expected: prev.height + 1, found: h.height });
        }
        if b.records.len() != params.records_per_block as usize {
            return err(ChainError::WrongRecordCount { expected: params.records_per_block, found: b.records.len() });
        }
        let hash = h.hash();
        if hash.leading_zero_bits() < params.difficulty_bits {
            return err(ChainError::InsufficientWork {
                needed: params.difficulty_bits,
                found: hash.leading_zero_bits(),
            });
        }
        if h.timestamp > now + params.max_future_secs {
            return err(ChainError::TimestampInFuture { timestamp: h.timestamp, limit: now + params.max_future_secs });
        }
        let median = median_time(recent.make_contiguous());
        if h.timestamp <= median {
            return err(ChainError::TimestampNotAfterMedian { timestamp: h.timestamp, median });
        }
        let ids = b.record_ids();
        if crate::merkle_root(&ids) != h.merkle_root {
            return err(ChainError::BadMerkleRoot);
        }
        for id in ids {
            if !seen.insert(id) {
                return err(ChainError::RecordAlreadyInChain(id));
            }
        }
        for r in &b.records {
            if let Err(e) = members.check_record(r) {
                return err(e);
            }
        }
        if recent.len() == MEDIAN_SPAN {
            recent.pop_front();
        }
        recent.push_back(h.timestamp);
        prev = *h;
        prev_hash = hash;
        if at % 1000 == 0 {
            progress(at);
        }
    }
    verify_signatures(blocks, check_record_signatures, threads)
}

/// Batch-verifies every miner signature (and with `records`, every record signature),
/// spreading chunks of blocks over `threads`. Returns the lowest failing height.
pub fn verify_signatures(blocks: &[Block], records: bool, threads: usize) -> Result<(), (u64, ChainError)> {
    const CHUNK: usize = 64;
    let chunks: Vec<&[Block]> = blocks.chunks(CHUNK).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failure = std::sync::Mutex::new(None);
    let check = |bs: &[Block], keys: &mut crate::sig::KeyCache| -> Result<(), ChainError> {
        crate::sig::verify_blocks(bs, keys)?;
        if records {
            let all: Vec<&Record> = bs.iter().flat_map(|b| b.records.iter()).collect();
            crate::sig::verify_records(&all, keys)?;
        }
        Ok(())
    };
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut keys = crate::sig::KeyCache::default();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(chunk) = chunks.get(i) else { return };
                    if let Err(e) = check(chunk, &mut keys) {
                        // Find the exact block for the report.
                        let bad = chunk.iter().find(|b| check(std::slice::from_ref(*b), &mut keys).is_err());
                        let height = bad.map_or(chunk[0].header.height, |b| b.header.height);
                        let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
                        if f.as_ref().is_none_or(|(h, _)| height < *h) {
                            *f = Some((height, e));
                        }
                    }
                }
            });
        }
    });
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(f) => Err(f),
        None => Ok(()),
    }
}
