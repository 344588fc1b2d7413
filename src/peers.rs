//! Peer institutions sharing the chain (the protocol is documented in docs/peers.md).
//!
//! Each peer is an administrator-given URL and public key (the trust list). A supervised
//! worker relays our pending records to every peer, announces our new tips, and asks each
//! peer for its head, fetching and validating the blocks it lacks; fork choice then decides.
//! Peer URLs are explicit, so they bypass the private-address policy; redirects are never
//! followed and responses are size-capped, so nothing a peer sends makes Cairn contact
//! another address. A failing peer is retried with backoff and never blocks awarding.

use std::sync::Arc;
use std::time::Duration;

use cairn_chain::{Block, Hash, Record};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::{chain_records, peer_relays, peers};
use crate::db::{DbPool, StoreError, StoreResult};
use crate::ledger::{AcceptError, Ledger};

/// Largest response read from a peer.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Blocks per page of `GET /chain/blocks`.
pub const PAGE: u64 = 200;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = peers)]
pub struct Peer {
    pub id: i64,
    pub url: String,
    pub public_key: String,
    pub name: String,
    pub added_at: i64,
    pub last_contact_at: Option<i64>,
    pub last_height: Option<i64>,
    pub records_relayed: i64,
    pub blocks_received: i64,
    pub last_error: Option<String>,
    pub failures: i64,
    pub next_try_at: i64,
    /// The base URL its records' URLs must lie under.
    pub base_url: String,
    /// Blocks it mined that would have removed a final block.
    pub finality_refusals: i64,
    pub last_refusal: Option<String>,
    pub last_refusal_at: Option<i64>,
}

/// `GET /chain/identity`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub institution: String,
    pub public_key: String,
    pub name: String,
    pub network: String,
    pub genesis: String,
    /// The public base URL its assertions live under.
    #[serde(default)]
    pub base_url: String,
}

/// `GET /chain/head`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Head {
    pub height: u64,
    pub hash: String,
    pub work: u64,
}

/// `GET /chain/blocks?from=H&limit=N`: stored blocks (hex) from height H on the main chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlocksPage {
    pub from: u64,
    pub blocks: Vec<String>,
    pub height: u64,
}

/// Body of `POST /chain/blocks` (announce) and `POST /chain/records` (relay).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    /// Canonical bytes in hex: a stored block, or a record.
    pub data: String,
}

pub fn list(conn: &mut SqliteConnection) -> StoreResult<Vec<Peer>> {
    peers::table.order(peers::id).select(Peer::as_select()).load(conn).map_err(Into::into)
}

/// Adds (or updates) a trusted peer: the URL we contact it at, its key, its name and the base
/// URL its records must lie under (empty: the same as `url`).
pub fn add(conn: &mut SqliteConnection, url: &str, public_key: &str, name: &str, base_url: &str) -> StoreResult<()> {
    let url = normalise(url).map_err(|e| StoreError::field("url", e))?;
    let base = if base_url.trim().is_empty() {
        url.clone()
    } else {
        normalise(base_url).map_err(|e| StoreError::field("base_url", e))?
    };
    let key = cairn_chain::from_hex(public_key).filter(|k| k.len() == 32);
    if key.is_none() {
        return Err(StoreError::field("public_key", "a public key is 64 hexadecimal characters"));
    }
    diesel::insert_into(peers::table)
        .values((
            peers::url.eq(&url),
            peers::public_key.eq(public_key.to_ascii_lowercase()),
            peers::name.eq(name),
            peers::base_url.eq(&base),
            peers::added_at.eq(crate::db::now()),
        ))
        .on_conflict(peers::url)
        .do_update()
        .set((peers::public_key.eq(public_key.to_ascii_lowercase()), peers::name.eq(name), peers::base_url.eq(&base)))
        .execute(conn)?;
    Ok(())
}

/// Counts a refused block that would have removed a final block against the peer whose key
/// mined it, so the peers page shows who tried.
pub fn record_refusal(conn: &mut SqliteConnection, miner: &[u8; 32], reason: &str) -> StoreResult<()> {
    diesel::update(peers::table.filter(peers::public_key.eq(cairn_chain::to_hex(miner))))
        .set((
            peers::finality_refusals.eq(peers::finality_refusals + 1),
            peers::last_refusal.eq(reason),
            peers::last_refusal_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Pending records (id, bytes) the peer has not answered for yet, oldest first.
fn unrelayed(conn: &mut SqliteConnection, peer: i64) -> StoreResult<Vec<(String, Vec<u8>)>> {
    let answered = peer_relays::table.filter(peer_relays::peer_id.eq(peer)).select(peer_relays::record_id);
    chain_records::table
        .filter(chain_records::block_hash.is_null())
        .filter(chain_records::record_id.ne_all(answered))
        .order(chain_records::id)
        .limit(1000)
        .select((chain_records::record_id, chain_records::bytes))
        .load(conn)
        .map_err(Into::into)
}

/// Remembers that the peer answered for these records, and forgets answers about records that
/// have left the pool (a reorganisation that brings one back relays it again).
fn mark_relayed(conn: &mut SqliteConnection, peer: i64, ids: &[String]) -> StoreResult<()> {
    crate::db::write_tx(conn, |c| {
        for id in ids {
            diesel::insert_or_ignore_into(peer_relays::table)
                .values((peer_relays::peer_id.eq(peer), peer_relays::record_id.eq(id)))
                .execute(c)?;
        }
        let pending = chain_records::table.filter(chain_records::block_hash.is_null()).select(chain_records::record_id);
        diesel::delete(peer_relays::table.filter(peer_relays::record_id.ne_all(pending))).execute(c)?;
        Ok(())
    })
}

pub fn remove(conn: &mut SqliteConnection, url: &str) -> StoreResult<()> {
    let url = normalise(url).map_err(|e| StoreError::field("url", e))?;
    let n = diesel::delete(peers::table.filter(peers::url.eq(&url))).execute(conn)?;
    if n == 0 { Err(StoreError::NotFound("peer")) } else { Ok(()) }
}

/// A peer URL without a trailing slash; http(s) only.
pub fn normalise(url: &str) -> Result<String, String> {
    let u = url::Url::parse(url.trim()).map_err(|_| format!("'{url}' is not a URL"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(format!("'{url}' must be an http(s) URL"));
    }
    Ok(u.as_str().trim_end_matches('/').to_string())
}

/// The client for peers: explicit URLs only, no redirects, no proxies, bounded time.
pub fn client() -> anyhow::Result<reqwest::Client> {
    crate::net::install_crypto_provider();
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(15))
        .user_agent(concat!("Cairn/", env!("CARGO_PKG_VERSION"), " (peer)"))
        .build()?)
}

async fn read_json<T: for<'de> Deserialize<'de>>(res: reqwest::Response) -> anyhow::Result<T> {
    let status = res.status();
    if !status.is_success() {
        anyhow::bail!("answered {status}");
    }
    let mut res = res;
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            anyhow::bail!("the response is larger than {MAX_BODY} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| anyhow::anyhow!("malformed JSON: {e}"))
}

/// Fetches a peer's identity.
pub async fn fetch_identity(client: &reqwest::Client, url: &str) -> anyhow::Result<Identity> {
    read_json(client.get(format!("{url}/chain/identity")).send().await?).await
}

/// A short fingerprint of a public key for people to compare: groups of its SHA-256.
pub fn fingerprint(public_key_hex: &str) -> String {
    let h = Hash::of(&cairn_chain::from_hex(public_key_hex).unwrap_or_default()).to_hex();
    h.as_bytes()[..24].chunks(4).map(|c| String::from_utf8_lossy(c).to_string()).collect::<Vec<_>>().join(":")
}

/// The peer worker.
#[derive(Clone)]
pub struct Peers {
    pool: DbPool,
    ledger: Arc<Ledger>,
    client: reqwest::Client,
    pub wake: Arc<tokio::sync::Notify>,
    announced: Arc<std::sync::Mutex<Option<Hash>>>,
}

impl Peers {
    pub fn new(pool: DbPool, ledger: Arc<Ledger>) -> anyhow::Result<Peers> {
        Ok(Peers {
            pool,
            ledger,
            client: client()?,
            wake: Arc::new(tokio::sync::Notify::new()),
            announced: Default::default(),
        })
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut diesel::SqliteConnection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        crate::db::run(&self.pool, f).await
    }

    /// One round with every peer that is not backing off: relay, announce, sync.
    pub async fn round(&self) -> StoreResult<()> {
        // The trust list may have been changed by `cairn peer` or the peers page.
        if let Err(e) = self.ledger.refresh_trust() {
            tracing::error!(error = %e, "cannot read the trust list");
        }
        let now = crate::db::now();
        let peers: Vec<Peer> = self.db(list).await?.into_iter().filter(|p| p.next_try_at <= now).collect();
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
            set.spawn(async move { me.with_peer(peer, announce).await });
        }
        while set.join_next().await.is_some() {}
        Ok(())
    }

    async fn with_peer(&self, peer: Peer, announce: Option<Block>) {
        let result = self.exchange(&peer, announce.as_ref()).await;
        let id = peer.id;
        let failures = peer.failures;
        let _ = self
            .db(move |c| {
                let now = crate::db::now();
                match result {
                    Ok((height, relayed, received)) => diesel::update(peers::table.find(id))
                        .set((
                            peers::last_contact_at.eq(now),
                            peers::last_height.eq(height as i64),
                            peers::records_relayed.eq(peers::records_relayed + relayed),
                            peers::blocks_received.eq(peers::blocks_received + received),
                            peers::last_error.eq(None::<String>),
                            peers::failures.eq(0),
                            peers::next_try_at.eq(0),
                        ))
                        .execute(c)?,
                    Err(e) => {
                        let wait = (2i64 << failures.clamp(0, 8)).min(300);
                        tracing::warn!(peer = id, error = %e, "peer exchange failed");
                        diesel::update(peers::table.find(id))
                            .set((
                                peers::last_error.eq(e.to_string()),
                                peers::failures.eq(failures + 1),
                                peers::next_try_at.eq(now + wait),
                            ))
                            .execute(c)?
                    }
                };
                Ok(())
            })
            .await;
    }

    /// Relays records, announces our tip, then fetches what the peer has and we lack.
    /// Returns (their height, records newly relayed, blocks received).
    async fn exchange(&self, peer: &Peer, announce: Option<&Block>) -> anyhow::Result<(u64, i64, i64)> {
        let mut relayed = 0;
        let peer_id = peer.id;
        let pending = self.db(move |c| unrelayed(c, peer_id)).await?;
        let mut answered = Vec::new();
        let mut outcome: anyhow::Result<()> = Ok(());
        for (id, bytes) in pending {
            let res = self
                .client
                .post(format!("{}/chain/records", peer.url))
                .json(&Payload { data: cairn_chain::to_hex(&bytes) })
                .send()
                .await;
            let status = match res {
                Ok(r) => r.status(),
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
            self.db(move |c| mark_relayed(c, peer_id, &answered)).await?;
        }
        outcome?;
        if let Some(b) = announce {
            // The answer does not matter: a peer lacking the parent will sync from us.
            let _ = self
                .client
                .post(format!("{}/chain/blocks", peer.url))
                .json(&Payload { data: cairn_chain::to_hex(&b.encode_stored()) })
                .send()
                .await;
        }
        let head: Head = read_json(self.client.get(format!("{}/chain/head", peer.url)).send().await?).await?;
        let (our_height, our_hash, our_work) = self.ledger.with_chain(|c| c.tip());
        let their_hash = Hash::from_hex(&head.hash).ok_or_else(|| anyhow::anyhow!("malformed head hash"))?;
        let mut received = 0;
        if cairn_chain::better_tip(u128::from(head.work), &their_hash, our_work, &our_hash) {
            received = self.fetch(peer, our_height.min(head.height), head.height).await?;
        }
        Ok((head.height, relayed, received))
    }

    /// Fetches the peer's main chain from a little below `start` to `their_height`, going
    /// further back when the first block does not connect.
    async fn fetch(&self, peer: &Peer, start: u64, their_height: u64) -> anyhow::Result<i64> {
        let mut back = 8u64;
        let mut received = 0;
        for _ in 0..24 {
            let mut from = start.saturating_sub(back).max(1);
            let mut connected = true;
            while from <= their_height {
                let page: BlocksPage = read_json(
                    self.client.get(format!("{}/chain/blocks?from={from}&limit={PAGE}", peer.url)).send().await?,
                )
                .await?;
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
                let outcome = self.db(move |c| accept_page(c, &ledger, blocks)).await?;
                match outcome {
                    Page::Added(added) => received += added,
                    Page::MissingParent(added) => {
                        received += added;
                        connected = false;
                        break;
                    }
                    Page::Final(reason) => anyhow::bail!("the peer's chain was refused: {reason}"),
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
}

/// Accepts a page of fetched blocks in order (one transaction), or fails on an invalid block.
fn accept_page(c: &mut SqliteConnection, ledger: &Ledger, blocks: Vec<Block>) -> StoreResult<Page> {
    use cairn_chain::ChainError;
    let (added, refused) = ledger.accept_page(c, blocks).map_err(|e| StoreError::Conflict(e.to_string()))?;
    Ok(match refused {
        None => Page::Added(added),
        Some((_, ChainError::UnknownParent(_))) => Page::MissingParent(added),
        Some((block, e @ ChainError::WouldRemoveFinal { .. })) => {
            tracing::warn!(reason = %e, "refused a peer's branch that would remove final blocks");
            record_refusal(c, &block.header.miner, &e.to_string())?;
            Page::Final(e.to_string())
        }
        Some((_, e)) => return Err(StoreError::Conflict(format!("the peer sent an invalid block: {e}"))),
    })
}

/// Why an announced block or relayed record was refused.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub reason: String,
    /// The block's parent is unknown: syncing with the peers may bring it.
    pub missing_parent: bool,
}

impl Refused {
    fn new(status: u16, reason: impl Into<String>) -> Refused {
        Refused { status, reason: reason.into(), missing_parent: false }
    }
}

/// Handles an announced block: its outcome (`known`, `side_branch`, `new_tip`) or why it was
/// refused: 400 unreadable, 409 unknown parent or a branch removing a final block, 422 any
/// other rule (see docs/peers.md).
pub fn receive_block(conn: &mut SqliteConnection, ledger: &Ledger, hex: &str) -> Result<&'static str, Refused> {
    use cairn_chain::ChainError;
    let bytes = cairn_chain::from_hex(hex).ok_or_else(|| Refused::new(400, "the block is not hexadecimal"))?;
    let block = Block::decode_stored(&bytes).map_err(|e| Refused::new(400, e.to_string()))?;
    let miner = block.header.miner;
    match ledger.accept(conn, block) {
        Ok(cairn_chain::AddOutcome::Known) => Ok("known"),
        Ok(cairn_chain::AddOutcome::SideBranch) => Ok("side_branch"),
        Ok(cairn_chain::AddOutcome::NewTip(_)) => Ok("new_tip"),
        Err(AcceptError::Invalid(e @ ChainError::UnknownParent(_))) => {
            Err(Refused { status: 409, reason: e.to_string(), missing_parent: true })
        }
        Err(AcceptError::Invalid(e @ ChainError::WouldRemoveFinal { .. })) => {
            let reason = e.to_string();
            if let Err(e) = record_refusal(conn, &miner, &reason) {
                tracing::error!(error = %e, "cannot record a refusal");
            }
            Err(Refused::new(409, reason))
        }
        Err(AcceptError::Invalid(e)) => Err(Refused::new(422, e.to_string())),
        Err(AcceptError::Store(e)) => Err(Refused::new(500, e.to_string())),
    }
}

/// Handles a relayed record: `Ok(true)` when new to the pool.
pub fn receive_record(conn: &mut SqliteConnection, ledger: &Ledger, hex: &str) -> Result<bool, Refused> {
    let bytes = cairn_chain::from_hex(hex).ok_or_else(|| Refused::new(400, "the record is not hexadecimal"))?;
    let record = Record::decode(&bytes).map_err(|e| Refused::new(400, e.to_string()))?;
    ledger.pool_relayed(conn, &record).map_err(|e| match e {
        AcceptError::Invalid(e @ cairn_chain::ChainError::UntrustedSigner(_)) => Refused::new(403, e.to_string()),
        AcceptError::Invalid(e) => Refused::new(422, e.to_string()),
        AcceptError::Store(e) => Refused::new(500, e.to_string()),
    })
}
