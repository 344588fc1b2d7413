//! The chain cache and accepting blocks: the in-memory chain fork choice works on, kept in
//! step with the `blocks` table (another process may add blocks), and every way a block or
//! a relayed record enters the store.

use std::sync::atomic::Ordering;

use cairn_chain::{AddOutcome, Block, Chain, Members, Params, Record};
use diesel::SqliteConnection;

use super::Ledger;
use crate::db::chain::{self as store, MetaKey, StoredKind};
use crate::db::{DbPool, StoreResult, write_tx};

/// The stored chain format; data dirs of the earlier, unsigned format must be upgraded.
const FORMAT: &str = "2";

pub(super) struct Loaded {
    pub(super) chain: Chain,
    /// The newest `blocks` rowid when the chain was loaded (another process may add some).
    rows: i64,
}

impl Loaded {
    pub(super) fn empty(params: Params) -> Loaded {
        Loaded { chain: Chain::new(params), rows: -1 }
    }
}

/// Why a block was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("{0}")]
    Invalid(#[from] cairn_chain::ChainError),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for AcceptError {
    fn from(e: diesel::result::Error) -> Self {
        AcceptError::Store(e.into())
    }
}

/// A record waiting for a block, as the explorer lists it.
#[derive(Debug, Clone)]
pub struct PendingRecord {
    pub assertion_url: String,
    pub kind: StoredKind,
    pub created_at: i64,
}

/// Fixes the network parameters of a new data dir, or refuses settings that differ from the
/// stored ones.
pub(super) fn check_network(conn: &mut SqliteConnection, params: &Params) -> anyhow::Result<()> {
    let wanted = format!("{}|{}|{}", params.network, params.records_per_block, params.difficulty_bits);
    store::init_meta(conn, MetaKey::Network, &wanted)?;
    let stored = store::meta(conn, MetaKey::Network)?.unwrap_or_default();
    if stored != wanted {
        let parts: Vec<&str> = stored.split('|').collect();
        anyhow::bail!(
            "invalid configuration value for `chain` ([chain] / CAIRN_CHAIN_*): this data dir belongs to the network \
             '{}' with {} records a block and {} bits of work; set the same values (they cannot change for an existing network)",
            parts.first().unwrap_or(&"?"),
            parts.get(1).unwrap_or(&"?"),
            parts.get(2).unwrap_or(&"?")
        );
    }
    Ok(())
}

/// Refuses a data dir whose chain is in the earlier, unsigned format, saying what to do; marks
/// a new one with the current format.
pub(super) fn check_format(conn: &mut SqliteConnection) -> anyhow::Result<()> {
    match store::meta(conn, MetaKey::Format)?.as_deref() {
        Some(FORMAT) => Ok(()),
        Some(other) => {
            anyhow::bail!("this data dir holds a chain in format {other}, which this version of Cairn cannot read")
        }
        None => {
            let old_blocks = store::block_count(conn)?;
            if old_blocks > 0 {
                anyhow::bail!(
                    "this data dir holds {old_blocks} block(s) in the earlier chain format (unsigned blocks, \
                     cairn-genesis-v1), which cannot be mixed with signed blocks. Run `cairn chain upgrade` once \
                     (with the server stopped): it keeps every award and signed record, sets the old blocks aside and \
                     mines the records again into the new chain"
                );
            }
            Ok(store::set_meta(conn, MetaKey::Format, FORMAT)?)
        }
    }
}

/// Moves a data dir from the unsigned chain format to the current one, in one transaction:
/// the old blocks are deleted and every record they held goes back to the pending pool, to be
/// mined (and signed) again. Awards, assertions and record signatures are unchanged. Returns
/// the number of blocks set aside and records re-pooled.
pub fn upgrade(pool: &DbPool) -> anyhow::Result<(usize, usize)> {
    let mut conn = pool.get()?;
    write_tx(&mut conn, |c| -> anyhow::Result<(usize, usize)> {
        if store::meta(c, MetaKey::Format)?.as_deref() == Some(FORMAT) {
            return Ok((0, 0));
        }
        let cleared = store::clear_blocks(c)?;
        store::set_meta(c, MetaKey::Format, FORMAT)?;
        Ok(cleared)
    })
}

/// Adds blocks read back from our own store (validated when they arrived) to `chain`, in
/// height order; false, leaving `chain` as it was, when one of them has a parent that is
/// neither in `chain` nor among them (the caller then reads the whole table).
fn extend(chain: &mut Chain, rows: Vec<(i64, Vec<u8>)>) -> anyhow::Result<bool> {
    let mut blocks = rows
        .iter()
        .map(|(_, b)| Block::decode_stored(b).map_err(|e| anyhow::anyhow!("a stored block cannot be read: {e}")))
        .collect::<anyhow::Result<Vec<Block>>>()?;
    blocks.sort_by_key(|b| b.header.height);
    let new: std::collections::HashSet<_> = blocks.iter().map(|b| b.hash()).collect();
    if !blocks.iter().all(|b| chain.contains(&b.header.prev) || new.contains(&b.header.prev)) {
        return Ok(false);
    }
    for b in blocks {
        if !chain.contains(&b.hash()) {
            chain.insert_valid(b);
        }
    }
    Ok(true)
}

/// The `blocks` table as a [`cairn_chain::BlockStore`].
struct SqliteBlocks<'a>(&'a mut SqliteConnection);

impl cairn_chain::BlockStore for SqliteBlocks<'_> {
    type Error = anyhow::Error;

    fn load_blocks(&mut self) -> anyhow::Result<Vec<Block>> {
        store::all_block_bytes(self.0)?
            .iter()
            .map(|b| Block::decode_stored(b).map_err(|e| anyhow::anyhow!("a stored block cannot be read: {e}")))
            .collect()
    }
}

impl Ledger {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Loaded> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Brings the chain cache up to date with the `blocks` table, which another process may
    /// have added to. While the chain watcher runs (`cairn serve`) it has just done so and
    /// this costs nothing; otherwise (a command, a stalled watcher) it asks the store.
    pub fn reload(&self) -> anyhow::Result<()> {
        if self.watch_is_fresh() && self.lock().rows >= 0 {
            return Ok(());
        }
        self.catch_up().map(|_| ())
    }

    /// The main chain's height once the chain is loaded from the store; `None` before.
    pub fn loaded_height(&self) -> Option<u64> {
        let loaded = self.lock();
        (loaded.rows >= 0).then(|| loaded.chain.tip().0)
    }

    /// The newest `blocks` rowid the cache holds (-1 when it must be read whole).
    pub(super) fn cached_rows(&self) -> i64 {
        self.lock().rows
    }

    /// Reads the blocks added since the cache was loaded: only those rows when they extend
    /// the known blocks, the whole table otherwise (the first load, a failed write, a parent
    /// the cache no longer holds). When this moves the main chain's tip, the search in
    /// progress is for a stale parent: it is cancelled, and the miner and the peers are told.
    /// Returns whether the tip moved.
    pub(super) fn catch_up(&self) -> anyhow::Result<bool> {
        // The connection before the lock, as everywhere: the lock is never held waiting for the pool.
        let mut conn = self.pool.get()?;
        let newest = store::newest_block_row(&mut conn)?;
        let mut loaded = self.lock();
        if newest == loaded.rows {
            return Ok(false);
        }
        let known = loaded.rows >= 0;
        let before = loaded.chain.tip().1;
        let extended = known && {
            let rows = store::block_bytes_after(&mut conn, loaded.rows)?;
            extend(&mut loaded.chain, rows)?
        };
        if extended {
            loaded.rows = newest;
        } else {
            // Our own store holds only blocks that passed validation when they arrived.
            let chain = Chain::load(self.params.clone(), &mut SqliteBlocks(&mut conn))?;
            *loaded = Loaded { chain, rows: newest };
        }
        let moved = loaded.chain.tip().1 != before;
        drop(loaded);
        if moved && known {
            self.cancel.store(true, Ordering::Relaxed);
            self.wake.notify_one();
            self.tip_changed.notify_waiters();
            self.tip_changed.notify_one();
        }
        Ok(moved)
    }

    /// Validates a block by every rule of `cairn-chain` (membership, signatures, finality,
    /// time, work, records) against the clock `now` and stores it with the changes fork choice
    /// makes, in one transaction. Side blocks that fell out of the finality window are deleted.
    pub fn accept(&self, conn: &mut SqliteConnection, block: Block, now: i64) -> Result<AddOutcome, AcceptError> {
        self.accept_checked(conn, block, false, now)
    }

    /// Verifies the signatures of a run of blocks (a fetched page) in one batch on every core,
    /// when all their miners are members; returns whether [`Ledger::accept_presigned`] may
    /// then take them. On any doubt the blocks go through [`Ledger::accept`] one by one,
    /// which finds and names the bad one.
    pub fn verify_page(&self, blocks: &[Block]) -> bool {
        let members = self.members();
        if !blocks.iter().all(|b| members.contains(&b.header.miner)) {
            return false;
        }
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        cairn_chain::verify_signatures(blocks, true, threads).is_ok()
    }

    /// [`Ledger::accept`] for a block whose signatures [`Ledger::verify_page`] checked.
    pub fn accept_presigned(
        &self,
        conn: &mut SqliteConnection,
        block: Block,
        now: i64,
    ) -> Result<AddOutcome, AcceptError> {
        self.accept_checked(conn, block, true, now)
    }

    fn accept_checked(
        &self,
        conn: &mut SqliteConnection,
        block: Block,
        presigned: bool,
        now: i64,
    ) -> Result<AddOutcome, AcceptError> {
        let members = self.members();
        let mut loaded = self.lock();
        self.accept_locked(&mut loaded, &members, conn, block, presigned, now)
    }

    /// Accepts a fetched page of blocks in one database transaction. Like every write here it
    /// locks the in-memory chain first and the database second, so the miner and a sync never
    /// hold one lock each while waiting for the other. Stops at the first block that does not
    /// fit; its refusal is returned with the count of blocks added before it.
    pub fn accept_page(
        &self,
        conn: &mut SqliteConnection,
        blocks: Vec<Block>,
        now: i64,
    ) -> anyhow::Result<(i64, Option<(Block, cairn_chain::ChainError)>)> {
        // One batch for the page's signatures instead of one verification per block.
        let presigned = self.verify_page(&blocks);
        let members = self.members();
        let mut loaded = self.lock();
        write_tx(conn, |c| -> anyhow::Result<_> {
            let mut added = 0;
            for b in blocks {
                let kept = b.clone();
                match self.accept_locked(&mut loaded, &members, c, b, presigned, now) {
                    Ok(AddOutcome::Known) => {}
                    Ok(_) => added += 1,
                    Err(AcceptError::Invalid(e)) => return Ok((added, Some((kept, e)))),
                    Err(AcceptError::Store(e)) => return Err(e),
                }
            }
            Ok((added, None))
        })
    }

    fn accept_locked(
        &self,
        loaded: &mut Loaded,
        members: &Members,
        conn: &mut SqliteConnection,
        block: Block,
        presigned: bool,
        now: i64,
    ) -> Result<AddOutcome, AcceptError> {
        // The in-memory chain changes first (it validates before it changes anything); if
        // the database write then fails, the next reload brings memory back to the store.
        let outcome = if presigned {
            loaded.chain.add_presigned(block.clone(), now, members)?
        } else {
            loaded.chain.add(block.clone(), now, members)?
        };
        if outcome == AddOutcome::Known {
            return Ok(outcome);
        }
        loaded.rows = -1;
        store::store_block(conn, &block, &outcome, now)?;
        loaded.rows = store::newest_block_row(conn)?;
        if let AddOutcome::NewTip(_) = &outcome {
            // Someone else's block moved the tip: the search in progress is for a stale parent.
            if block.header.miner != self.key.verifying_key().to_bytes() {
                self.cancel.store(true, Ordering::Relaxed);
                self.wake.notify_one();
            }
            self.tip_changed.notify_waiters();
            self.tip_changed.notify_one();
        }
        Ok(outcome)
    }

    /// Adds a record relayed by a peer to the pool: its signature must verify and its signer
    /// be trusted. Returns false when it is already known (pending or recorded).
    pub fn pool_relayed(&self, conn: &mut SqliteConnection, record: &Record, now: i64) -> Result<bool, AcceptError> {
        self.members.read().unwrap_or_else(|p| p.into_inner()).check_record(record)?;
        record.verify_signature()?;
        let new = store::insert_relayed(conn, record, now)?;
        if new {
            self.wake.notify_one();
        }
        Ok(new)
    }

    /// Pending records' canonical bytes, oldest first.
    pub fn pending_bytes(&self, conn: &mut SqliteConnection) -> StoreResult<Vec<Vec<u8>>> {
        Ok(store::pending_bytes(conn)?)
    }

    /// Pending records, oldest first.
    pub fn pending(&self, conn: &mut SqliteConnection) -> StoreResult<Vec<PendingRecord>> {
        Ok(store::pending(conn)?
            .into_iter()
            .filter_map(|row| {
                Record::decode(&row.bytes).ok().map(|r| PendingRecord {
                    assertion_url: r.fields.assertion_url,
                    kind: row.kind,
                    created_at: row.created_at,
                })
            })
            .collect())
    }

    /// Main-chain blocks in height order.
    pub fn main_blocks(&self) -> Vec<Block> {
        self.with_chain(|c| c.range(1, c.height()).iter().map(|b| (**b).clone()).collect())
    }
}
