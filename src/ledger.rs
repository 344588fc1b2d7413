//! This institution's copy of the recognition chain: its signing key, the pending pool and
//! the blocks (both in SQLite, so each step is one transaction), the in-memory chain used
//! for fork choice, and the miner that turns every five pending records into a block.
//!
//! Crash safety: a record enters the pool in the award's own transaction; a mined block and
//! the marking of its records are stored in one transaction; mining itself keeps no state,
//! so a process killed at any moment restarts with the same pool and chain and mines again.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use cairn_chain::{AddOutcome, Block, Chain, Hash, Members, Params, Record, RecordFields, RecordKind, SigningKey};
use diesel::prelude::*;

use crate::config::ChainSettings;
use crate::db::schema::{blocks, chain_meta, chain_records};
use crate::db::{DbPool, StoreResult, write_tx};

/// Where an award stands on the chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ChainStatus {
    /// Not recorded (awards made before the chain existed).
    None,
    Pending,
    Recorded {
        height: u64,
        hash: String,
        /// Confirmations: 1 for the tip, one more for each block on top.
        depth: u64,
        /// Buried under `finality_depth` blocks: no branch can remove it any more.
        #[serde(rename = "final")]
        is_final: bool,
    },
}

/// The stored chain format; data dirs of the earlier, unsigned format must be upgraded.
const FORMAT: &str = "2";

/// Loads the institution's Ed25519 key from the data dir, creating it on first start.
pub fn load_key(data_dir: &Path) -> anyhow::Result<SigningKey> {
    let path = data_dir.join("institution.key");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let seed: [u8; 32] =
                bytes.as_slice().try_into().map_err(|_| anyhow::anyhow!("{} must hold 32 bytes", path.display()))?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use rand::RngCore;
            use std::io::Write;
            std::fs::create_dir_all(data_dir)?;
            let mut seed = [0u8; 32];
            rand::rng().fill_bytes(&mut seed);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            opts.open(&path).with_context(|| format!("cannot create {}", path.display()))?.write_all(&seed)?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Signs a record and puts it in the pending pool, inside the caller's transaction.
pub fn pool_record(
    conn: &mut SqliteConnection,
    key: &SigningKey,
    fields: RecordFields,
    award_id: Option<i64>,
) -> StoreResult<Record> {
    let kind = match fields.kind {
        RecordKind::Award => "award",
        RecordKind::Revocation => "revocation",
    };
    let record = Record::sign(fields, key);
    diesel::insert_into(chain_records::table)
        .values((
            chain_records::record_id.eq(record.id().to_hex()),
            chain_records::bytes.eq(record.encode()),
            chain_records::award_id.eq(award_id),
            chain_records::kind.eq(kind),
            chain_records::created_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
    Ok(record)
}

struct Loaded {
    chain: Chain,
    /// The newest `blocks` rowid when the chain was loaded (another process may add some).
    rows: i64,
}

/// The newest row of `blocks` (rows are never deleted): an index lookup, unlike COUNT(*),
/// which would scan the table on every `with_chain`.
fn stored_marker(conn: &mut SqliteConnection) -> diesel::QueryResult<i64> {
    blocks::table
        .select(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>("max(rowid)"))
        .first::<Option<i64>>(conn)
        .map(|m| m.unwrap_or(0))
}

/// The chain as this instance holds it.
pub struct Ledger {
    pool: DbPool,
    key: SigningKey,
    params: Params,
    loaded: Mutex<Loaded>,
    /// Wakes the miner (an award was made).
    pub wake: Arc<tokio::sync::Notify>,
    /// Signalled when the main chain's tip changes (peers announce it).
    pub tip_changed: Arc<tokio::sync::Notify>,
    cancel: AtomicBool,
    /// The member institutions (this one and the trusted peers), with their base URLs.
    members: std::sync::RwLock<Members>,
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

fn params_of(s: &ChainSettings) -> Params {
    Params {
        records_per_block: s.records_per_block,
        difficulty_bits: s.difficulty_bits,
        finality_depth: s.finality_depth,
        ..Params::new(s.network.clone())
    }
}

impl ChainStatus {
    /// In words, for pages.
    pub fn describe(&self) -> String {
        match self {
            ChainStatus::None => "not on the chain".into(),
            ChainStatus::Pending => "pending: waiting for a block".into(),
            ChainStatus::Recorded { height, hash, depth, is_final } => {
                let standing = match (*is_final, *depth) {
                    (true, _) => "final".to_string(),
                    (false, 1) => "1 confirmation".to_string(),
                    (false, n) => format!("{n} confirmations"),
                };
                format!("recorded in block #{height} ({}…), {standing}", &hash[..16.min(hash.len())])
            }
        }
    }

    /// The block page, when recorded.
    pub fn block_link(&self) -> Option<String> {
        match self {
            ChainStatus::Recorded { hash, .. } => Some(format!("/chain/blocks/{hash}")),
            _ => None,
        }
    }
}

impl Ledger {
    /// Opens the ledger: key, network parameters (fixed once stored), blocks.
    pub fn open(pool: DbPool, settings: &ChainSettings, data_dir: &Path) -> anyhow::Result<Arc<Ledger>> {
        let key = load_key(data_dir)?;
        let params = params_of(settings);
        let wanted = format!("{}|{}|{}", params.network, params.records_per_block, params.difficulty_bits);
        {
            let mut conn = pool.get()?;
            diesel::insert_or_ignore_into(chain_meta::table)
                .values((chain_meta::key.eq("network"), chain_meta::value.eq(&wanted)))
                .execute(&mut conn)?;
            let stored: String = chain_meta::table.find("network").select(chain_meta::value).first(&mut conn)?;
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
        }
        check_format(&mut *pool.get()?)?;
        let ledger = Ledger {
            pool,
            key,
            loaded: Mutex::new(Loaded { chain: Chain::new(params.clone()), rows: -1 }),
            params,
            wake: Arc::new(tokio::sync::Notify::new()),
            tip_changed: Arc::new(tokio::sync::Notify::new()),
            cancel: AtomicBool::new(false),
            members: Default::default(),
        };
        ledger.refresh_trust()?;
        ledger.reload()?;
        Ok(Arc::new(ledger))
    }

    /// Reloads the members: this institution plus every peer in the `peers` table, each
    /// bound to the base URL its identity gave when it was trusted.
    pub fn refresh_trust(&self) -> anyhow::Result<()> {
        use crate::db::schema::peers;
        let rows: Vec<(String, String)> =
            peers::table.select((peers::public_key, peers::base_url)).load(&mut self.pool.get()?)?;
        let mut members = Members::new();
        for (key, base) in rows {
            if let Some(key) = cairn_chain::from_hex(&key).and_then(|k| <[u8; 32]>::try_from(k).ok()) {
                members.insert(key, &base);
            }
        }
        // Our own records are signed only by this code, under whatever base URL it had then.
        members.insert_unbound(self.key.verifying_key().to_bytes());
        *self.members.write().unwrap_or_else(|p| p.into_inner()) = members;
        Ok(())
    }

    /// A copy of the member list.
    pub fn members(&self) -> Members {
        self.members.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// True when `key` belongs to a member institution.
    pub fn trusts(&self, key: &[u8; 32]) -> bool {
        self.members.read().unwrap_or_else(|p| p.into_inner()).contains(key)
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The institution's id on the chain: its public key, in hex.
    pub fn institution_id(&self) -> String {
        cairn_chain::to_hex(&self.key.verifying_key().to_bytes())
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Loaded> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the chain from the database again when another process added blocks.
    pub fn reload(&self) -> anyhow::Result<()> {
        let mut conn = self.pool.get()?;
        let rows = stored_marker(&mut conn)?;
        if rows == self.lock().rows {
            return Ok(());
        }
        // Our own store holds only blocks that passed validation when they arrived.
        let chain = Chain::load(self.params.clone(), &mut SqliteBlocks(&mut conn))?;
        *self.lock() = Loaded { chain, rows };
        Ok(())
    }

    /// A copy of what the chain looks like now.
    pub fn with_chain<T>(&self, f: impl FnOnce(&Chain) -> T) -> T {
        let _ = self.reload();
        f(&self.lock().chain)
    }

    /// The chain status of an award.
    pub fn status(&self, conn: &mut SqliteConnection, award_id: i64) -> StoreResult<ChainStatus> {
        let row: Option<Option<String>> = chain_records::table
            .filter(chain_records::award_id.eq(award_id).and(chain_records::kind.eq("award")))
            .select(chain_records::block_hash)
            .first(conn)
            .optional()?;
        Ok(match row {
            None => ChainStatus::None,
            Some(None) => ChainStatus::Pending,
            Some(Some(hash)) => self.with_chain(|c| {
                let h = Hash::from_hex(&hash).unwrap_or_default();
                match c.block(&h).filter(|_| c.is_main(&h)) {
                    Some(b) => recorded(c, b.header.height, hash),
                    None => ChainStatus::Pending,
                }
            }),
        })
    }

    /// Chain statuses of several awards at once (for the Reader).
    pub fn statuses(
        &self,
        conn: &mut SqliteConnection,
        award_ids: &[i64],
    ) -> StoreResult<std::collections::HashMap<i64, ChainStatus>> {
        let rows: Vec<(Option<i64>, Option<String>)> = chain_records::table
            .filter(chain_records::award_id.eq_any(award_ids).and(chain_records::kind.eq("award")))
            .select((chain_records::award_id, chain_records::block_hash))
            .load(conn)?;
        Ok(self.with_chain(|c| {
            rows.into_iter()
                .filter_map(|(a, h)| {
                    let status = match h.and_then(|h| Hash::from_hex(&h)) {
                        Some(hash) if c.is_main(&hash) => {
                            let height = c.block(&hash).map_or(0, |b| b.header.height);
                            recorded(c, height, hash.to_hex())
                        }
                        _ => ChainStatus::Pending,
                    };
                    a.map(|a| (a, status))
                })
                .collect()
        }))
    }

    /// The proof document of an award (`/assertions/{id}/proof`).
    pub fn proof(&self, conn: &mut SqliteConnection, award_id: i64) -> StoreResult<Option<serde_json::Value>> {
        let row: Option<(Vec<u8>, Option<String>)> = chain_records::table
            .filter(chain_records::award_id.eq(award_id).and(chain_records::kind.eq("award")))
            .select((chain_records::bytes, chain_records::block_hash))
            .first(conn)
            .optional()?;
        let Some((bytes, block_hash)) = row else { return Ok(None) };
        let Ok(record) = Record::decode(&bytes) else { return Ok(None) };
        let rec = record_json(&record);
        let status = self.status(conn, award_id)?;
        let block = block_hash.and_then(|h| Hash::from_hex(&h)).and_then(|h| {
            self.with_chain(|c| {
                c.block(&h).filter(|_| c.is_main(&h)).map(|b| {
                    let height = b.header.height;
                    (b, c.confirmations(height), c.is_final(height))
                })
            })
        });
        Ok(Some(match block {
            Some((b, confirmations, is_final)) => {
                let proof = b.proof(&record.id());
                let path: Vec<serde_json::Value> = proof
                    .map(|p| {
                        p.path
                            .iter()
                            .map(|(side, h)| serde_json::json!({"side": if *side == cairn_chain::Side::Left { "left" } else { "right" }, "hash": h.to_hex()}))
                            .collect()
                    })
                    .unwrap_or_default();
                serde_json::json!({
                    "status": "recorded",
                    "record": rec,
                    "merkle_path": path,
                    "block": {
                        "height": b.header.height,
                        "hash": b.hash().to_hex(),
                        "header_hex": cairn_chain::to_hex(&b.header.encode()),
                        "merkle_root": b.header.merkle_root.to_hex(),
                        "timestamp": b.header.timestamp,
                        "miner": cairn_chain::to_hex(&b.header.miner),
                        "signature": cairn_chain::to_hex(&b.signature),
                    },
                    "depth": confirmations,
                    "confirmations": confirmations,
                    "final": is_final,
                    "finality_depth": self.params.finality_depth,
                    "network": self.params.network,
                    "genesis": self.with_chain(|c| c.genesis_hash().to_hex()),
                })
            }
            None => {
                serde_json::json!({"status": "pending", "record": rec, "merkle_path": [], "block": null, "depth": 0, "confirmations": 0, "final": false, "chain_status": status})
            }
        }))
    }

    /// Mines one block from the oldest pending records, if there are enough. Blocking.
    pub fn mine_once(&self) -> anyhow::Result<Option<Hash>> {
        self.reload()?;
        let mut conn = self.pool.get()?;
        let n = self.params.records_per_block as usize;
        // Oldest first; a record that can no longer enter a block (its signer left the trust
        // list) is passed over rather than holding up every record behind it.
        let members = self.members();
        let pending: Vec<Vec<u8>> = chain_records::table
            .filter(chain_records::block_hash.is_null())
            .order(chain_records::id)
            .select(chain_records::bytes)
            .load(&mut conn)?;
        let records: Vec<Record> = pending
            .iter()
            .filter_map(|b| Record::decode(b).ok())
            .filter(|r| members.check_record(r).is_ok())
            .take(n)
            .collect();
        if records.len() < n {
            return Ok(None);
        }
        let template = self.lock().chain.candidate(&records, crate::db::now(), self.key.verifying_key().to_bytes());
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        self.cancel.store(false, Ordering::Relaxed);
        let Some(header) = cairn_chain::mine(&template, self.params.difficulty_bits, threads, &self.cancel) else {
            return Ok(None);
        };
        let block = Block::seal(header, records, &self.key);
        let hash = block.hash();
        match self.accept(&mut conn, block) {
            Ok(_) => {}
            // A competing block arrived meanwhile and took these records or this height.
            Err(AcceptError::Invalid(e)) => {
                tracing::info!(reason = %e, "mined block no longer fits the chain; mining again");
                return Ok(None);
            }
            Err(AcceptError::Store(e)) => return Err(e),
        }
        tracing::info!(height = header.height, hash = %hash, "block mined");
        Ok(Some(hash))
    }

    /// Validates a block by every rule of `cairn-chain` (membership, signatures, finality,
    /// time, work, records) and stores it with the changes fork choice makes, in one
    /// transaction. Side blocks that fell out of the finality window are deleted.
    pub fn accept(&self, conn: &mut SqliteConnection, block: Block) -> Result<AddOutcome, AcceptError> {
        self.accept_checked(conn, block, false)
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
    pub fn accept_presigned(&self, conn: &mut SqliteConnection, block: Block) -> Result<AddOutcome, AcceptError> {
        self.accept_checked(conn, block, true)
    }

    fn accept_checked(
        &self,
        conn: &mut SqliteConnection,
        block: Block,
        presigned: bool,
    ) -> Result<AddOutcome, AcceptError> {
        let members = self.members();
        let mut loaded = self.lock();
        self.accept_locked(&mut loaded, &members, conn, block, presigned)
    }

    /// Accepts a fetched page of blocks in one database transaction. Like every write here it
    /// locks the in-memory chain first and the database second, so the miner and a sync never
    /// hold one lock each while waiting for the other. Stops at the first block that does not
    /// fit; its refusal is returned with the count of blocks added before it.
    pub fn accept_page(
        &self,
        conn: &mut SqliteConnection,
        blocks: Vec<Block>,
    ) -> anyhow::Result<(i64, Option<(Block, cairn_chain::ChainError)>)> {
        // One batch for the page's signatures instead of one verification per block.
        let presigned = self.verify_page(&blocks);
        let members = self.members();
        let mut loaded = self.lock();
        write_tx(conn, |c| -> anyhow::Result<_> {
            let mut added = 0;
            for b in blocks {
                let kept = b.clone();
                match self.accept_locked(&mut loaded, &members, c, b, presigned) {
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
    ) -> Result<AddOutcome, AcceptError> {
        // The in-memory chain changes first (it validates before it changes anything); if
        // the database write then fails, the next reload brings memory back to the store.
        let now = crate::db::now();
        let outcome = if presigned {
            loaded.chain.add_presigned(block.clone(), now, members)?
        } else {
            loaded.chain.add(block.clone(), now, members)?
        };
        if outcome == AddOutcome::Known {
            return Ok(outcome);
        }
        loaded.rows = -1;
        let hash = block.hash();
        write_tx(conn, |conn| -> anyhow::Result<()> {
            let inserted = diesel::insert_or_ignore_into(blocks::table)
                .values((
                    blocks::hash.eq(hash.to_hex()),
                    blocks::height.eq(block.header.height as i64),
                    blocks::prev.eq(block.header.prev.to_hex()),
                    blocks::bytes.eq(block.encode_stored()),
                    blocks::timestamp.eq(block.header.timestamp),
                    blocks::miner.eq(cairn_chain::to_hex(&block.header.miner)),
                    blocks::received_at.eq(crate::db::now()),
                    // A new tip is on the main chain from the start (no second write below).
                    blocks::on_main.eq(matches!(outcome, AddOutcome::NewTip(_))),
                ))
                .execute(conn)?;
            if let AddOutcome::NewTip(reorg) = &outcome {
                for h in &reorg.pruned {
                    diesel::delete(blocks::table.find(h.to_hex())).execute(conn)?;
                }
                for b in &reorg.removed {
                    let h = b.hash().to_hex();
                    diesel::update(blocks::table.find(&h)).set(blocks::on_main.eq(false)).execute(conn)?;
                    // Back to the pool; the blocks that join may take them again below.
                    diesel::update(chain_records::table.filter(chain_records::block_hash.eq(&h)))
                        .set(chain_records::block_hash.eq(None::<String>))
                        .execute(conn)?;
                }
                for b in &reorg.added {
                    let h = b.hash().to_hex();
                    if b.hash() != hash || inserted == 0 {
                        diesel::update(blocks::table.find(&h)).set(blocks::on_main.eq(true)).execute(conn)?;
                    }
                    // One statement a record: pooled ones take the block, others arrive with it.
                    for r in &b.records {
                        let kind = if r.fields.kind == RecordKind::Award { "award" } else { "revocation" };
                        diesel::insert_into(chain_records::table)
                            .values((
                                chain_records::record_id.eq(r.id().to_hex()),
                                chain_records::bytes.eq(r.encode()),
                                chain_records::kind.eq(kind),
                                chain_records::created_at.eq(crate::db::now()),
                                chain_records::block_hash.eq(&h),
                            ))
                            .on_conflict(chain_records::record_id)
                            .do_update()
                            .set(chain_records::block_hash.eq(&h))
                            .execute(conn)?;
                    }
                }
            }
            Ok(())
        })?;
        loaded.rows = stored_marker(conn)?;
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

    /// One mining pass, on a blocking thread: [`Pass::More`](crate::jobs::Pass) when a block
    /// was mined (more records may wait), idle otherwise. [`Ledger::cancel_mining`] ends a
    /// search at once.
    pub async fn mine_pass(self: Arc<Self>) -> anyhow::Result<crate::jobs::Pass> {
        let mined = tokio::task::spawn_blocking(move || self.mine_once()).await??;
        Ok(if mined.is_some() { crate::jobs::Pass::More } else { crate::jobs::Pass::Idle })
    }

    /// Cancels a search in progress (shutting down, or a competing block arrived).
    pub fn cancel_mining(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Adds a record relayed by a peer to the pool: its signature must verify and its signer
    /// be trusted. Returns false when it is already known (pending or recorded).
    pub fn pool_relayed(&self, conn: &mut SqliteConnection, record: &Record) -> Result<bool, AcceptError> {
        self.members.read().unwrap_or_else(|p| p.into_inner()).check_record(record)?;
        record.verify_signature()?;
        let kind = if record.fields.kind == RecordKind::Award { "award" } else { "revocation" };
        let n = diesel::insert_or_ignore_into(chain_records::table)
            .values((
                chain_records::record_id.eq(record.id().to_hex()),
                chain_records::bytes.eq(record.encode()),
                chain_records::kind.eq(kind),
                chain_records::created_at.eq(crate::db::now()),
            ))
            .execute(conn)?;
        if n > 0 {
            self.wake.notify_one();
        }
        Ok(n > 0)
    }

    /// Pending records' canonical bytes, oldest first.
    pub fn pending_bytes(&self, conn: &mut SqliteConnection) -> StoreResult<Vec<Vec<u8>>> {
        chain_records::table
            .filter(chain_records::block_hash.is_null())
            .order(chain_records::id)
            .select(chain_records::bytes)
            .load(conn)
            .map_err(Into::into)
    }

    /// Pending records: (assertion URL, kind, created).
    pub fn pending(&self, conn: &mut SqliteConnection) -> StoreResult<Vec<(String, String, i64)>> {
        let rows: Vec<(Vec<u8>, String, i64)> = chain_records::table
            .filter(chain_records::block_hash.is_null())
            .order(chain_records::id)
            .select((chain_records::bytes, chain_records::kind, chain_records::created_at))
            .load(conn)?;
        Ok(rows
            .into_iter()
            .filter_map(|(b, k, t)| Record::decode(&b).ok().map(|r| (r.fields.assertion_url, k, t)))
            .collect())
    }

    /// Main-chain blocks in height order.
    pub fn main_blocks(&self) -> Vec<Block> {
        self.with_chain(|c| c.range(1, c.height()).iter().map(|b| (**b).clone()).collect())
    }
}

/// The `blocks` table as a [`cairn_chain::BlockStore`].
struct SqliteBlocks<'a>(&'a mut SqliteConnection);

impl cairn_chain::BlockStore for SqliteBlocks<'_> {
    type Error = anyhow::Error;

    fn load_blocks(&mut self) -> anyhow::Result<Vec<Block>> {
        let stored: Vec<Vec<u8>> = blocks::table.select(blocks::bytes).load(self.0)?;
        stored
            .iter()
            .map(|b| Block::decode_stored(b).map_err(|e| anyhow::anyhow!("a stored block cannot be read: {e}")))
            .collect()
    }
}

/// A record as JSON (all fields, hex for bytes).
pub fn record_json(r: &Record) -> serde_json::Value {
    serde_json::json!({
        "id": r.id().to_hex(),
        "kind": if r.fields.kind == RecordKind::Award { "award" } else { "revocation" },
        "assertion_url": r.fields.assertion_url,
        "badge_class_url": r.fields.badge_class_url,
        "issuer_id": r.fields.issuer_id,
        "recipient_hash": r.fields.recipient_hash,
        "evidence_hash": r.fields.evidence_hash.to_hex(),
        "issued_at": r.fields.issued_at,
        "institution": cairn_chain::to_hex(&r.institution),
        "signature": cairn_chain::to_hex(&r.signature),
        "bytes_hex": cairn_chain::to_hex(&r.encode()),
    })
}

/// The fields of an award's (or revocation's) record.
pub fn fields_for(
    kind: RecordKind,
    base: &str,
    assertion_url: &str,
    badge_class_url: &str,
    identity: &str,
    evidence: Option<&str>,
    at: i64,
) -> RecordFields {
    RecordFields {
        kind,
        assertion_url: assertion_url.to_string(),
        badge_class_url: badge_class_url.to_string(),
        issuer_id: crate::badges::ob::issuer_url(base),
        recipient_hash: identity.to_string(),
        evidence_hash: evidence.map(|e| Hash::of(e.as_bytes())).unwrap_or_default(),
        issued_at: at,
    }
}

const EXPORT_MAGIC: &[u8] = b"CAIRN-CHAIN-1\n";

impl Ledger {
    /// Writes the main chain to `path`: a magic line, the network's parameters, then each
    /// block's canonical bytes (length-prefixed).
    pub fn export(&self, path: &Path) -> anyhow::Result<u64> {
        let blocks = self.main_blocks();
        let mut out = Vec::new();
        out.extend_from_slice(EXPORT_MAGIC);
        let net = self.params.network.as_bytes();
        out.extend_from_slice(&(net.len() as u32).to_be_bytes());
        out.extend_from_slice(net);
        out.extend_from_slice(&self.params.records_per_block.to_be_bytes());
        out.extend_from_slice(&self.params.difficulty_bits.to_be_bytes());
        out.extend_from_slice(&(blocks.len() as u64).to_be_bytes());
        for b in &blocks {
            let bytes = b.encode_stored();
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(&bytes);
        }
        let tmp = path.with_extension("part");
        std::fs::write(&tmp, &out).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path)?;
        Ok(blocks.len() as u64)
    }

    /// Reads an export, verifies it entirely by every rule (membership, miner and record
    /// signatures, work, links, times, Merkle roots) and adds its blocks; fork choice and
    /// finality then decide the main chain. Nothing is stored unless all of it verifies.
    pub fn import(&self, path: &Path, progress: &dyn Fn(u64)) -> anyhow::Result<(u64, u64)> {
        let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let bad = |m: &str| anyhow::anyhow!("{} is not a Cairn chain export: {m}", path.display());
        let rest = data.strip_prefix(EXPORT_MAGIC).ok_or_else(|| bad("wrong header"))?;
        let mut pos = 0usize;
        let mut take = |n: usize| -> anyhow::Result<&[u8]> {
            let s = rest.get(pos..pos + n).ok_or_else(|| bad("truncated"))?;
            pos += n;
            Ok(s)
        };
        let u32_of = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap_or([0; 4]));
        let net_len = u32_of(take(4)?) as usize;
        if net_len > 1000 {
            return Err(bad("network name too long"));
        }
        let network = String::from_utf8(take(net_len)?.to_vec()).map_err(|_| bad("network name"))?;
        let rpb = u32_of(take(4)?);
        let bits = u32_of(take(4)?);
        if (network.as_str(), rpb, bits)
            != (self.params.network.as_str(), self.params.records_per_block, self.params.difficulty_bits)
        {
            anyhow::bail!(
                "{} holds the chain of network '{network}' ({rpb} records a block, {bits} bits); this instance is on '{}' ({}, {})",
                path.display(),
                self.params.network,
                self.params.records_per_block,
                self.params.difficulty_bits
            );
        }
        let count = u64::from_be_bytes(take(8)?.try_into().unwrap_or([0; 8]));
        let mut blocks = Vec::new();
        for _ in 0..count {
            let len = u32_of(take(4)?) as usize;
            blocks.push(Block::decode_stored(take(len)?).map_err(|e| bad(&e.to_string()))?);
        }
        if pos != rest.len() {
            return Err(bad("trailing bytes"));
        }
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        cairn_chain::verify_chain_with_progress(
            &self.params,
            &self.members(),
            &blocks,
            crate::db::now(),
            true,
            threads,
            progress,
        )
        .map_err(|(h, e)| anyhow::anyhow!("block {h} is invalid: {e}; nothing was imported"))?;
        let mut conn = self.pool.get()?;
        let mut added = 0;
        for b in blocks {
            match self.accept(&mut conn, b) {
                Ok(AddOutcome::Known) => {}
                Ok(_) => added += 1,
                Err(AcceptError::Invalid(e)) => anyhow::bail!("a block does not fit this chain: {e}"),
                Err(AcceptError::Store(e)) => return Err(e),
            }
        }
        Ok((count, added))
    }
}

/// A main-chain block's standing for an award recorded in it.
fn recorded(c: &Chain, height: u64, hash: String) -> ChainStatus {
    ChainStatus::Recorded { height, hash, depth: c.confirmations(height), is_final: c.is_final(height) }
}

/// Refuses a data dir whose chain is in the earlier, unsigned format, saying what to do; marks
/// a new one with the current format.
fn check_format(conn: &mut SqliteConnection) -> anyhow::Result<()> {
    let stored: Option<String> = chain_meta::table.find("format").select(chain_meta::value).first(conn).optional()?;
    match stored.as_deref() {
        Some(FORMAT) => Ok(()),
        Some(other) => {
            anyhow::bail!("this data dir holds a chain in format {other}, which this version of Cairn cannot read")
        }
        None => {
            let old_blocks: i64 = blocks::table.count().get_result(conn)?;
            if old_blocks > 0 {
                anyhow::bail!(
                    "this data dir holds {old_blocks} block(s) in the earlier chain format (unsigned blocks, \
                     cairn-genesis-v1), which cannot be mixed with signed blocks. Run `cairn chain upgrade` once \
                     (with the server stopped): it keeps every award and signed record, sets the old blocks aside and \
                     mines the records again into the new chain"
                );
            }
            set_format(conn)
        }
    }
}

fn set_format(conn: &mut SqliteConnection) -> anyhow::Result<()> {
    diesel::replace_into(chain_meta::table)
        .values((chain_meta::key.eq("format"), chain_meta::value.eq(FORMAT)))
        .execute(conn)?;
    Ok(())
}

/// Moves a data dir from the unsigned chain format to the current one, in one transaction:
/// the old blocks are deleted and every record they held goes back to the pending pool, to be
/// mined (and signed) again. Awards, assertions and record signatures are unchanged. Returns
/// the number of blocks set aside and records re-pooled.
pub fn upgrade(pool: &DbPool) -> anyhow::Result<(usize, usize)> {
    let mut conn = pool.get()?;
    write_tx(&mut conn, |c| -> anyhow::Result<(usize, usize)> {
        let stored: Option<String> = chain_meta::table.find("format").select(chain_meta::value).first(c).optional()?;
        if stored.as_deref() == Some(FORMAT) {
            return Ok((0, 0));
        }
        let records = diesel::update(chain_records::table.filter(chain_records::block_hash.is_not_null()))
            .set(chain_records::block_hash.eq(None::<String>))
            .execute(c)?;
        let blocks = diesel::delete(blocks::table).execute(c)?;
        set_format(c)?;
        Ok((blocks, records))
    })
}
