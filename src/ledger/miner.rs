//! The miner: turns the oldest pending records into a block once there are enough of them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use cairn_chain::{Block, Hash, Record};

use super::{AcceptError, Ledger};
use crate::db::chain as store;
use crate::jobs::Pass;

impl Ledger {
    /// One mining pass, on a blocking thread: [`Pass::More`] when a block was mined (more
    /// records may wait), idle otherwise. [`Ledger::cancel_mining`] ends a search at once.
    pub async fn mine_pass(self: Arc<Self>) -> anyhow::Result<Pass> {
        let now = self.clock.now();
        let mined = tokio::task::spawn_blocking(move || self.mine_once(now)).await??;
        Ok(if mined.is_some() { Pass::More } else { Pass::Idle })
    }

    /// Cancels a search in progress (shutting down, or a competing block arrived).
    pub fn cancel_mining(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Mines one block, stamped `now`, from the oldest pending records, if there are enough.
    /// Blocking.
    pub fn mine_once(&self, now: i64) -> anyhow::Result<Option<Hash>> {
        self.reload()?;
        let mut conn = self.pool.get()?;
        let n = self.params.records_per_block as usize;
        // Oldest first; a record that can no longer enter a block (its signer left the trust
        // list) is passed over rather than holding up every record behind it.
        let members = self.members();
        let pending = store::pending_bytes(&mut conn)?;
        let records: Vec<Record> = pending
            .iter()
            .filter_map(|b| Record::decode(b).ok())
            .filter(|r| members.check_record(r).is_ok())
            .take(n)
            .collect();
        if records.len() < n {
            return Ok(None);
        }
        let template = self.lock().chain.candidate(&records, now, self.key.verifying_key().to_bytes());
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        self.cancel.store(false, Ordering::Relaxed);
        tracing::info!(height = template.height, records = n, bits = self.params.difficulty_bits, "mining a block");
        let Some(header) = cairn_chain::mine(&template, self.params.difficulty_bits, threads, &self.cancel) else {
            return Ok(None);
        };
        let block = Block::seal(header, records, &self.key);
        let hash = block.hash();
        match self.accept(&mut conn, block, now) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;

    /// The miner stamps a block with the ledger's clock, not the machine's: a test (or a replay)
    /// sets the time rather than waiting for it.
    #[tokio::test]
    async fn a_mined_block_carries_the_time_of_the_ledgers_clock() {
        let dir = tempfile::tempdir().unwrap();
        let mut chain = crate::config::Settings::defaults().chain;
        chain.difficulty_bits = 4;
        let (clock, hand) = crate::clock::Clock::manual(1_700_000_000);
        let pool = db::open(&dir.path().join("cairn.db")).unwrap();
        let ledger = Ledger::open_with_clock(pool.clone(), &chain, dir.path(), clock).unwrap();
        let mut conn = pool.get().unwrap();
        hand.advance(3_600);
        for i in 0..chain.records_per_block {
            let url = format!("https://here.example/assertions/{i}");
            let fields = super::super::fields_for(
                cairn_chain::RecordKind::Award,
                "https://here.example",
                &url,
                "https://here.example/badges/el30-data",
                "sha256$00",
                Hash::default(),
                1_700_003_600,
            );
            super::super::pool_record(&mut conn, ledger.key(), fields, None).unwrap();
        }
        assert!(matches!(ledger.clone().mine_pass().await.unwrap(), Pass::More));
        let (_, tip, _) = ledger.lock().chain.tip();
        let block = ledger.lock().chain.block(&tip).unwrap();
        assert_eq!(block.header.timestamp, 1_700_003_600);
    }
}
