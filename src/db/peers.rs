//! The trust list of peer institutions: each peer's address, key and exchange state, which
//! pending records it has answered for, and the branches of its that were refused.

use diesel::prelude::*;

use super::schema::{chain_records, peer_relays, peers};
use super::write_tx;

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
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

/// A peer as it is trusted: values already checked by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedPeer {
    /// Where it is contacted, without a trailing slash.
    pub url: String,
    /// Its Ed25519 public key, lowercase hex.
    pub public_key: String,
    pub name: String,
    /// The base URL its records must lie under.
    pub base_url: String,
}

pub fn list(conn: &mut SqliteConnection) -> QueryResult<Vec<Peer>> {
    peers::table.order(peers::id).select(Peer::as_select()).load(conn)
}

/// Every trusted key (hex) with the base URL its records must lie under.
pub fn keys(conn: &mut SqliteConnection) -> QueryResult<Vec<(String, String)>> {
    peers::table.select((peers::public_key, peers::base_url)).load(conn)
}

/// Trusts a peer, or updates the key, name and base URL of one already listed at that URL.
pub fn upsert(conn: &mut SqliteConnection, peer: &TrustedPeer, now: i64) -> QueryResult<()> {
    diesel::insert_into(peers::table)
        .values((
            peers::url.eq(&peer.url),
            peers::public_key.eq(&peer.public_key),
            peers::name.eq(&peer.name),
            peers::base_url.eq(&peer.base_url),
            peers::added_at.eq(now),
        ))
        .on_conflict(peers::url)
        .do_update()
        .set((peers::public_key.eq(&peer.public_key), peers::name.eq(&peer.name), peers::base_url.eq(&peer.base_url)))
        .execute(conn)?;
    Ok(())
}

/// Stops trusting the peer at `url`: false when none is listed there.
pub fn remove(conn: &mut SqliteConnection, url: &str) -> QueryResult<bool> {
    Ok(diesel::delete(peers::table.filter(peers::url.eq(url))).execute(conn)? > 0)
}

/// Counts a refused block that would have removed a final block against the peer whose key
/// (hex) mined it.
pub fn record_refusal(conn: &mut SqliteConnection, miner: &str, reason: &str, now: i64) -> QueryResult<()> {
    diesel::update(peers::table.filter(peers::public_key.eq(miner)))
        .set((
            peers::finality_refusals.eq(peers::finality_refusals + 1),
            peers::last_refusal.eq(reason),
            peers::last_refusal_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// A successful exchange: the peer's height and what moved, counted; its backoff is cleared.
pub fn record_contact(
    conn: &mut SqliteConnection,
    peer: i64,
    height: i64,
    relayed: i64,
    received: i64,
    now: i64,
) -> QueryResult<()> {
    diesel::update(peers::table.find(peer))
        .set((
            peers::last_contact_at.eq(now),
            peers::last_height.eq(height),
            peers::records_relayed.eq(peers::records_relayed + relayed),
            peers::blocks_received.eq(peers::blocks_received + received),
            peers::last_error.eq(None::<String>),
            peers::failures.eq(0),
            peers::next_try_at.eq(0),
        ))
        .execute(conn)?;
    Ok(())
}

/// A failed exchange: the error, the count of failures in a row, and when to try again.
pub fn record_failure(
    conn: &mut SqliteConnection,
    peer: i64,
    error: &str,
    failures: i64,
    next_try_at: i64,
) -> QueryResult<()> {
    diesel::update(peers::table.find(peer))
        .set((peers::last_error.eq(error), peers::failures.eq(failures), peers::next_try_at.eq(next_try_at)))
        .execute(conn)?;
    Ok(())
}

/// Pending records (id, bytes) the peer has not answered for yet, oldest first, at most `limit`.
pub fn unrelayed(conn: &mut SqliteConnection, peer: i64, limit: i64) -> QueryResult<Vec<(String, Vec<u8>)>> {
    let answered = peer_relays::table.filter(peer_relays::peer_id.eq(peer)).select(peer_relays::record_id);
    chain_records::table
        .filter(chain_records::block_hash.is_null())
        .filter(chain_records::record_id.ne_all(answered))
        .order(chain_records::id)
        .limit(limit)
        .select((chain_records::record_id, chain_records::bytes))
        .load(conn)
}

/// Remembers that the peer answered for these records, and forgets answers about records that
/// have left the pool (a reorganisation that brings one back relays it again).
pub fn mark_relayed(conn: &mut SqliteConnection, peer: i64, ids: &[String]) -> QueryResult<()> {
    write_tx(conn, |c| {
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
