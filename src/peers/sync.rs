//! The exchange with peers: each round relays our pending records, announces our tip and
//! fetches the blocks a peer has and we lack, page by page; and the other direction, the
//! blocks and records peers send us.

use cairn_chain::{AddOutcome, Block, ChainError, Hash, Record};
use diesel::SqliteConnection;

use super::wire::{BlockOutcome, Head};
use super::{Peer, Peers};
use crate::db::{self, StoreResult};
use crate::ledger::{AcceptError, Ledger};

/// Pending records offered to one peer in a round.
const RELAY_BATCH: i64 = 1000;

impl Peers {
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        db::run(&self.pool, f).await
    }

    /// One round with every peer that is not backing off: relay, announce, sync.
    pub async fn round(&self) -> StoreResult<()> {
        // The trust list may have been changed by `cairn peer` or the peers page.
        if let Err(e) = self.ledger.refresh_trust() {
            tracing::error!(error = format!("{e:#}"), "cannot read the trust list");
        }
        let now = self.ledger.clock().now();
        let peers: Vec<Peer> =
            self.db(|c| Ok(db::peers::list(c)?)).await?.into_iter().filter(|p| p.next_try_at <= now).collect();
        if peers.is_empty() {
            return Ok(());
        }
        let tip = self.ledger.with_chain(|c| c.block(&c.tip().1).map(|b| (*b).clone()));
        let announce = {
            let mut last = self.announced.lock().unwrap_or_else(|p| p.into_inner());
            match &tip {
                Some(b) if *last != Some(b.hash()) => {
                    *last = Some(b.hash());
                    Some(b.clone())
                }
                _ => None,
            }
        };
        let mut set = tokio::task::JoinSet::new();
        for peer in peers {
            let me = self.clone();
            let announce = announce.clone();
            set.spawn(async move { me.with_peer(peer, announce, now).await });
        }
        while set.join_next().await.is_some() {}
        Ok(())
    }

    async fn with_peer(&self, peer: Peer, announce: Option<Block>, now: i64) {
        let result = self.exchange(&peer, announce.as_ref(), now).await;
        let (id, failures) = (peer.id, peer.failures);
        let stored = self
            .db(move |c| {
                match result {
                    Ok((height, relayed, received)) => {
                        db::peers::record_contact(c, id, height as i64, relayed, received, now)?
                    }
                    Err(e) => {
                        let wait = (2i64 << failures.clamp(0, 8)).min(300);
                        tracing::warn!(peer = id, error = format!("{e:#}"), "peer exchange failed");
                        let words = super::client::in_words(&e);
                        db::peers::record_failure(c, id, &words, failures + 1, now + wait)?
                    }
                };
                Ok(())
            })
            .await;
        if let Err(e) = stored {
            tracing::error!(peer = id, error = %e, "cannot record the state of a peer");
        }
    }

    /// Relays records, announces our tip, then fetches what the peer has and we lack.
    /// Returns (their height, records newly relayed, blocks received).
    async fn exchange(&self, peer: &Peer, announce: Option<&Block>, now: i64) -> anyhow::Result<(u64, i64, i64)> {
        let mut relayed = 0;
        let peer_id = peer.id;
        let pending = self.db(move |c| Ok(db::peers::unrelayed(c, peer_id, RELAY_BATCH)?)).await?;
        let mut answered = Vec::new();
        let mut outcome: anyhow::Result<()> = Ok(());
        for (id, bytes) in pending {
            let status = match self.client.relay(&peer.url, &bytes).await {
                Ok(s) => s,
                Err(e) => {
                    outcome = Err(e.into());
                    break;
                }
            };
            // A busy peer (429, 5xx) gets the rest next round; announcing and syncing go on.
            if status.as_u16() == 429 || status.is_server_error() {
                tracing::debug!(peer = peer.id, %status, "the peer is busy; records wait for the next round");
                break;
            }
            if status.as_u16() == 201 {
                relayed += 1;
            }
            // Taken, known or refused for good: never sent to this peer again.
            answered.push(id);
        }
        if !answered.is_empty() {
            self.db(move |c| Ok(db::peers::mark_relayed(c, peer_id, &answered)?)).await?;
        }
        outcome?;
        if let Some(b) = announce {
            self.client.announce(&peer.url, b).await;
        }
        let head: Head = self.client.head(&peer.url).await?;
        let (our_height, our_hash, our_work) = self.ledger.with_chain(|c| c.tip());
        let their_hash = Hash::from_hex(&head.hash).ok_or_else(|| anyhow::anyhow!("malformed head hash"))?;
        let mut received = 0;
        if cairn_chain::better_tip(u128::from(head.work), &their_hash, our_work, &our_hash) {
            received = self.fetch(peer, our_height.min(head.height), head.height, now).await?;
        }
        Ok((head.height, relayed, received))
    }

    /// Fetches the peer's main chain from a little below `start` to `their_height`, going
    /// further back when the first block does not connect.
    async fn fetch(&self, peer: &Peer, start: u64, their_height: u64, now: i64) -> anyhow::Result<i64> {
        let mut back = 8u64;
        let mut received = 0;
        for _ in 0..24 {
            let mut from = start.saturating_sub(back).max(1);
            let mut connected = true;
            while from <= their_height {
                let page = self.client.blocks(&peer.url, from).await?;
                if page.blocks.is_empty() {
                    break;
                }
                let blocks: Vec<Block> = page
                    .blocks
                    .iter()
                    .map(|h| {
                        cairn_chain::from_hex(h)
                            .ok_or_else(|| anyhow::anyhow!("malformed hex"))
                            .and_then(|b| Block::decode_stored(&b).map_err(|e| anyhow::anyhow!("{e}")))
                    })
                    .collect::<Result<_, _>>()?;
                let ledger = self.ledger.clone();
                let n = blocks.len() as u64;
                match self.db(move |c| accept_page(c, &ledger, blocks, now)).await? {
                    Page::Added(added) => received += added,
                    Page::MissingParent(added) => {
                        received += added;
                        connected = false;
                        break;
                    }
                    Page::Final(reason) => anyhow::bail!("the peer's chain was refused: {reason}"),
                    Page::Invalid(reason) => anyhow::bail!("the peer sent an invalid block: {reason}"),
                }
                from += n;
            }
            if connected {
                return Ok(received);
            }
            if start.saturating_sub(back) <= 1 {
                anyhow::bail!("the peer's chain does not connect to ours (another network?)");
            }
            back *= 4;
        }
        Ok(received)
    }
}

/// What became of a page of fetched blocks.
enum Page {
    /// All fitted; this many were new.
    Added(i64),
    /// A block's parent is unknown (fetch from further back); this many were new before it.
    MissingParent(i64),
    /// A block would have removed a final block: the peer's chain is refused from there.
    Final(String),
    /// A block breaks another rule.
    Invalid(String),
}

/// Accepts a page of fetched blocks in order (one transaction).
fn accept_page(c: &mut SqliteConnection, ledger: &Ledger, blocks: Vec<Block>, now: i64) -> StoreResult<Page> {
    let (added, refused) = ledger.accept_page(c, blocks, now).map_err(db::StoreError::Internal)?;
    Ok(match refused {
        None => Page::Added(added),
        Some((_, ChainError::UnknownParent(_))) => Page::MissingParent(added),
        Some((block, e @ ChainError::WouldRemoveFinal { .. })) => {
            tracing::warn!(reason = %e, "refused a peer's branch that would remove final blocks");
            db::peers::record_refusal(c, &cairn_chain::to_hex(&block.header.miner), &e.to_string(), now)?;
            Page::Final(e.to_string())
        }
        Some((_, e)) => Page::Invalid(e.to_string()),
    })
}

/// Why a block or record a peer sent was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Too many requests from this address for now.
    #[error("too many requests")]
    TooManyRequests,
    /// The body is larger than a block announcement can be.
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// Not JSON, not hex, or not a block or record of this format.
    #[error("{0}")]
    Unreadable(String),
    /// The block's parent is unknown: syncing with the peers may bring it.
    #[error("{0}")]
    UnknownParent(String),
    /// The block's branch would remove a final block.
    #[error("{0}")]
    WouldRemoveFinal(String),
    /// A relayed record is signed by an institution that is not a member.
    #[error("{0}")]
    UntrustedSigner(String),
    /// Any other rule of the chain.
    #[error("{0}")]
    BreaksRule(String),
    /// Our store failed; nothing was decided about the data.
    #[error(transparent)]
    Store(anyhow::Error),
}

/// Handles an announced block, validated against the clock `now`: its outcome, or why it was
/// refused.
pub fn receive_block(
    conn: &mut SqliteConnection,
    ledger: &Ledger,
    hex: &str,
    now: i64,
) -> Result<BlockOutcome, Refusal> {
    let bytes = cairn_chain::from_hex(hex).ok_or_else(|| Refusal::Unreadable("the block is not hexadecimal".into()))?;
    let block = Block::decode_stored(&bytes).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    let miner = block.header.miner;
    match ledger.accept(conn, block, now) {
        Ok(AddOutcome::Known) => Ok(BlockOutcome::Known),
        Ok(AddOutcome::SideBranch) => Ok(BlockOutcome::SideBranch),
        Ok(AddOutcome::NewTip(_)) => Ok(BlockOutcome::NewTip),
        Err(AcceptError::Invalid(e @ ChainError::UnknownParent(_))) => Err(Refusal::UnknownParent(e.to_string())),
        Err(AcceptError::Invalid(e @ ChainError::WouldRemoveFinal { .. })) => {
            let reason = e.to_string();
            if let Err(e) = db::peers::record_refusal(conn, &cairn_chain::to_hex(&miner), &reason, now) {
                tracing::error!(error = %e, "cannot record a refusal");
            }
            Err(Refusal::WouldRemoveFinal(reason))
        }
        Err(AcceptError::Invalid(e)) => Err(Refusal::BreaksRule(e.to_string())),
        Err(AcceptError::Store(e)) => Err(Refusal::Store(e)),
    }
}

/// Handles a relayed record: `Ok(true)` when new to the pool.
pub fn receive_record(conn: &mut SqliteConnection, ledger: &Ledger, hex: &str, now: i64) -> Result<bool, Refusal> {
    let bytes =
        cairn_chain::from_hex(hex).ok_or_else(|| Refusal::Unreadable("the record is not hexadecimal".into()))?;
    let record = Record::decode(&bytes).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    ledger.pool_relayed(conn, &record, now).map_err(|e| match e {
        AcceptError::Invalid(e @ ChainError::UntrustedSigner(_)) => Refusal::UntrustedSigner(e.to_string()),
        AcceptError::Invalid(e) => Refusal::BreaksRule(e.to_string()),
        AcceptError::Store(e) => Refusal::Store(e),
    })
}
