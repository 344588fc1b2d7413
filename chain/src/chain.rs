//! A chain of blocks from genesis with fork choice by cumulative work.
//!
//! Every valid block is kept, including those on side branches; the main chain is the
//! branch with the most cumulative work, ties going to the lower tip hash, so every
//! instance picks the same tip from the same blocks. Switching branches reports the
//! blocks left and joined, so their records can go back to (or leave) the pending pool.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::block::{Block, BlockHeader, genesis_header};
use crate::record::{Record, verify_batch};
use crate::{ChainError, Hash};

/// A network's parameters, fixed by its genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub network: String,
    /// Records in every block (5).
    pub records_per_block: u32,
    /// Leading zero bits a block hash needs (16 = hex "0000").
    pub difficulty_bits: u32,
    /// How far ahead of the validator's clock a block's time may be, in seconds.
    pub max_future_secs: i64,
}

impl Params {
    /// A network with the standard parameters: five records a block, "0000" proof of work.
    pub fn new(network: impl Into<String>) -> Params {
        Params { network: network.into(), records_per_block: 5, difficulty_bits: 16, max_future_secs: 2 * 3600 }
    }

    /// Work a block adds: 2^difficulty expected attempts.
    pub fn block_work(&self) -> u128 {
        1u128 << self.difficulty_bits.min(127)
    }
}

#[derive(Debug, Clone)]
struct Node {
    block: Arc<Block>,
    work: u128,
}

/// The blocks left and joined when the main chain switches branch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reorg {
    /// Blocks that left the main chain, highest first.
    pub removed: Vec<Arc<Block>>,
    /// Blocks that joined it, lowest first.
    pub added: Vec<Arc<Block>>,
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

    /// The main-chain height holding record `id`, if any.
    pub fn locate(&self, id: &Hash) -> Option<u64> {
        self.records.get(id).copied()
    }

    /// A header template for the next block on the main chain (nonce 0, to be mined).
    pub fn candidate(&self, records: &[Record], timestamp: i64, miner: [u8; 32]) -> BlockHeader {
        let (height, prev, _) = self.tip();
        let parent_time = self.header_of(&prev).map_or(0, |h| h.timestamp);
        let ids: Vec<Hash> = records.iter().map(Record::id).collect();
        BlockHeader {
            version: 1,
            height: height + 1,
            prev,
            merkle_root: crate::merkle_root(&ids),
            timestamp: timestamp.max(parent_time),
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

    /// Checks `block` against its parent: everything but the signers' trust.
    fn validate(&self, block: &Block, now: i64, trusted: &dyn Fn(&[u8; 32]) -> bool) -> Result<(), ChainError> {
        let h = &block.header;
        let p = &self.params;
        if h.version != 1 {
            return Err(ChainError::WrongVersion(h.version));
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
        if block.records.len() != p.records_per_block as usize {
            return Err(ChainError::WrongRecordCount { expected: p.records_per_block, found: block.records.len() });
        }
        let work = block.hash().leading_zero_bits();
        if work < p.difficulty_bits {
            return Err(ChainError::InsufficientWork { needed: p.difficulty_bits, found: work });
        }
        if h.timestamp > now + p.max_future_secs {
            return Err(ChainError::TimestampInFuture { timestamp: h.timestamp, limit: now + p.max_future_secs });
        }
        if h.timestamp < parent.timestamp {
            return Err(ChainError::TimestampBeforeParent { timestamp: h.timestamp, parent: parent.timestamp });
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
        let (branch, fork_height) = self.branch_records(&h.prev);
        for id in &seen {
            let on_main_below_fork = self.records.get(id).is_some_and(|height| *height <= fork_height);
            if on_main_below_fork || branch.contains(id) {
                return Err(ChainError::RecordAlreadyInChain(*id));
            }
        }
        for r in &block.records {
            if !trusted(&r.institution) {
                return Err(ChainError::UntrustedSigner(crate::to_hex(&r.institution)));
            }
        }
        verify_batch(&block.records.iter().collect::<Vec<_>>())
    }

    /// Validates and adds a block; may switch the main chain (fork choice).
    pub fn add(
        &mut self,
        block: Block,
        now: i64,
        trusted: &dyn Fn(&[u8; 32]) -> bool,
    ) -> Result<AddOutcome, ChainError> {
        let hash = block.hash();
        if self.contains(&hash) {
            // Same header, but the body must still be the one the header commits to.
            if block.computed_root() != block.header.merkle_root {
                return Err(ChainError::BadMerkleRoot);
            }
            return Ok(AddOutcome::Known);
        }
        self.validate(&block, now, trusted)?;
        Ok(self.insert_valid(block))
    }

    /// Adds a block already validated (e.g. read back from this instance's own store).
    /// Its parent must be known.
    pub fn insert_valid(&mut self, block: Block) -> AddOutcome {
        let hash = block.hash();
        let work = self.work_of(&block.header.prev) + self.params.block_work();
        self.nodes.insert(hash, Node { block: Arc::new(block), work });
        let (_, tip, tip_work) = self.tip();
        if work > tip_work || (work == tip_work && hash < tip) {
            AddOutcome::NewTip(self.switch_to(hash))
        } else {
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
            }
        }
        for b in &added {
            self.main.push(b.hash());
            for id in b.record_ids() {
                self.records.insert(id, b.header.height);
            }
        }
        Reorg { removed, added }
    }

    /// Main-chain blocks with heights in `from..=to`.
    pub fn range(&self, from: u64, to: u64) -> Vec<Arc<Block>> {
        (from.max(1)..=to.min(self.height())).filter_map(|h| self.block_at(h)).collect()
    }
}

/// Verifies a whole chain from genesis, block by block, with record signatures checked in
/// batches on `threads` threads. `check_signatures = false` checks headers, links, work and
/// Merkle roots only. Returns the first problem with its height.
pub fn verify_chain(
    params: &Params,
    blocks: &[Block],
    now: i64,
    check_signatures: bool,
    threads: usize,
) -> Result<(), (u64, ChainError)> {
    verify_chain_with_progress(params, blocks, now, check_signatures, threads, &|_| {})
}

/// [`verify_chain`], calling `progress(blocks checked)` every 1,000 blocks of the header pass.
pub fn verify_chain_with_progress(
    params: &Params,
    blocks: &[Block],
    now: i64,
    check_signatures: bool,
    threads: usize,
    progress: &dyn Fn(u64),
) -> Result<(), (u64, ChainError)> {
    let genesis = genesis_header(params);
    let mut prev = genesis;
    let mut prev_hash = genesis.hash();
    let mut seen: HashSet<Hash> = HashSet::with_capacity(blocks.len() * params.records_per_block as usize);
    for b in blocks {
        let h = &b.header;
        let at = h.height;
        let err = |e| Err((at, e));
        if h.version != 1 {
            return err(ChainError::WrongVersion(h.version));
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
        if h.timestamp < prev.timestamp {
            return err(ChainError::TimestampBeforeParent { timestamp: h.timestamp, parent: prev.timestamp });
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
        prev = *h;
        prev_hash = hash;
        if at % 1000 == 0 {
            progress(at);
        }
    }
    if check_signatures {
        verify_signatures(blocks, threads)?;
    }
    Ok(())
}

/// Batch-verifies every record signature, spreading chunks of blocks over `threads`.
fn verify_signatures(blocks: &[Block], threads: usize) -> Result<(), (u64, ChainError)> {
    const CHUNK: usize = 64;
    let chunks: Vec<&[Block]> = blocks.chunks(CHUNK).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failure = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(chunk) = chunks.get(i) else { return };
                    let records: Vec<&Record> = chunk.iter().flat_map(|b| b.records.iter()).collect();
                    if verify_batch(&records).is_err() {
                        // Find the exact block for the report.
                        let bad = chunk.iter().find(|b| verify_batch(&b.records.iter().collect::<Vec<_>>()).is_err());
                        let height = bad.map_or(chunk[0].header.height, |b| b.header.height);
                        let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
                        if f.as_ref().is_none_or(|(h, _)| height < *h) {
                            *f = Some((height, ChainError::BadSignature));
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
