//! The chain store: blocks (with which of them are on the main chain), the chain records (the
//! pending pool and the records blocks hold) and the chain's stored parameters.
//!
//! A record is pending while its `block_hash` is null; a block that enters the main chain
//! claims its records, one that leaves it gives them back to the pool.

use cairn_chain::{AddOutcome, Block, Record, RecordKind};
use diesel::prelude::*;

use super::schema::{blocks, chain_meta, chain_records};
use super::write_tx;

/// A record's kind as `chain_records.kind` (and the record JSON) spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredKind(pub RecordKind);

impl StoredKind {
    pub fn as_str(self) -> &'static str {
        match self.0 {
            RecordKind::Award => "award",
            RecordKind::Revocation => "revocation",
        }
    }
}

impl TryFrom<&str> for StoredKind {
    type Error = String;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        match s {
            "award" => Ok(StoredKind(RecordKind::Award)),
            "revocation" => Ok(StoredKind(RecordKind::Revocation)),
            other => Err(format!("'{other}' is not a kind of chain record")),
        }
    }
}

impl std::fmt::Display for StoredKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

super::stored::stored_enum! {
    /// The keys of `chain_meta`.
    pub enum MetaKey {
        /// `network|records per block|difficulty bits`, fixed by the first start.
        Network = "network",
        /// The stored chain format.
        Format = "format",
    }
}

pub fn meta(conn: &mut SqliteConnection, key: MetaKey) -> QueryResult<Option<String>> {
    chain_meta::table.find(key.as_str()).select(chain_meta::value).first(conn).optional()
}

/// Stores `value` unless the key already has one.
pub fn init_meta(conn: &mut SqliteConnection, key: MetaKey, value: &str) -> QueryResult<()> {
    diesel::insert_or_ignore_into(chain_meta::table)
        .values((chain_meta::key.eq(key.as_str()), chain_meta::value.eq(value)))
        .execute(conn)?;
    Ok(())
}

pub fn set_meta(conn: &mut SqliteConnection, key: MetaKey, value: &str) -> QueryResult<()> {
    diesel::replace_into(chain_meta::table)
        .values((chain_meta::key.eq(key.as_str()), chain_meta::value.eq(value)))
        .execute(conn)?;
    Ok(())
}

/// Puts a signed record in the pending pool; a record already stored is an error.
pub fn insert_pending(
    conn: &mut SqliteConnection,
    record: &Record,
    award_id: Option<i64>,
    now: i64,
) -> QueryResult<()> {
    diesel::insert_into(chain_records::table)
        .values((
            chain_records::record_id.eq(record.id().to_hex()),
            chain_records::bytes.eq(record.encode()),
            chain_records::award_id.eq(award_id),
            chain_records::kind.eq(StoredKind(record.fields.kind).as_str()),
            chain_records::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Puts a record relayed by a peer in the pending pool: false when it is already known
/// (pending or in a block).
pub fn insert_relayed(conn: &mut SqliteConnection, record: &Record, now: i64) -> QueryResult<bool> {
    let n = diesel::insert_or_ignore_into(chain_records::table)
        .values((
            chain_records::record_id.eq(record.id().to_hex()),
            chain_records::bytes.eq(record.encode()),
            chain_records::kind.eq(StoredKind(record.fields.kind).as_str()),
            chain_records::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

/// An award's record: its bytes and the block holding it (none while pending); `None` when
/// the award has no record.
pub fn award_record(conn: &mut SqliteConnection, award_id: i64) -> QueryResult<Option<(Vec<u8>, Option<String>)>> {
    chain_records::table
        .filter(
            chain_records::award_id.eq(award_id).and(chain_records::kind.eq(StoredKind(RecordKind::Award).as_str())),
        )
        .select((chain_records::bytes, chain_records::block_hash))
        .first(conn)
        .optional()
}

/// The blocks holding the records of these awards (none while pending), by award.
pub fn award_blocks(conn: &mut SqliteConnection, award_ids: &[i64]) -> QueryResult<Vec<(i64, Option<String>)>> {
    let rows: Vec<(Option<i64>, Option<String>)> = chain_records::table
        .filter(
            chain_records::award_id
                .eq_any(award_ids)
                .and(chain_records::kind.eq(StoredKind(RecordKind::Award).as_str())),
        )
        .select((chain_records::award_id, chain_records::block_hash))
        .load(conn)?;
    Ok(rows.into_iter().filter_map(|(a, h)| a.map(|a| (a, h))).collect())
}

/// Pending records' canonical bytes, oldest first.
pub fn pending_bytes(conn: &mut SqliteConnection) -> QueryResult<Vec<Vec<u8>>> {
    chain_records::table
        .filter(chain_records::block_hash.is_null())
        .order(chain_records::id)
        .select(chain_records::bytes)
        .load(conn)
}

/// A record waiting in the pool.
#[derive(Debug, Clone)]
pub struct PendingRow {
    pub bytes: Vec<u8>,
    pub kind: StoredKind,
    pub created_at: i64,
}

/// Pending records, oldest first; a row whose kind this version does not know is left out.
pub fn pending(conn: &mut SqliteConnection) -> QueryResult<Vec<PendingRow>> {
    let rows: Vec<(Vec<u8>, String, i64)> = chain_records::table
        .filter(chain_records::block_hash.is_null())
        .order(chain_records::id)
        .select((chain_records::bytes, chain_records::kind, chain_records::created_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(bytes, kind, created_at)| {
            StoredKind::try_from(kind.as_str()).ok().map(|kind| PendingRow { bytes, kind, created_at })
        })
        .collect())
}

/// The newest row of `blocks`, which tells the chain cache whether another process added
/// blocks: an index lookup, unlike COUNT(*), which would scan the table on every check.
pub fn newest_block_row(conn: &mut SqliteConnection) -> QueryResult<i64> {
    blocks::table
        .select(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>("max(rowid)"))
        .first::<Option<i64>>(conn)
        .map(|m| m.unwrap_or(0))
}

/// What the chain watcher compares between two looks at the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, diesel::QueryableByName)]
pub struct ChainMarks {
    /// The newest `blocks` rowid (see [`newest_block_row`]).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub newest_block: i64,
    /// The newest pending record's id: it moves when a record is pooled.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub newest_pending: i64,
    /// How many records are pending: it moves when a block takes some or gives them back.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub pending: i64,
}

/// The chain's marks in one statement; the pending ones come from the pending pool's partial
/// index, so the cost follows the pool's size, not the table's.
pub fn marks(conn: &mut SqliteConnection) -> QueryResult<ChainMarks> {
    diesel::sql_query(
        "SELECT (SELECT coalesce(max(rowid), 0) FROM blocks) AS newest_block, \
         (SELECT coalesce(max(id), 0) FROM chain_records WHERE block_hash IS NULL) AS newest_pending, \
         (SELECT count(*) FROM chain_records WHERE block_hash IS NULL) AS pending",
    )
    .get_result(conn)
}

/// The blocks stored after rowid `row` (stored form), with their rowids.
pub fn block_bytes_after(conn: &mut SqliteConnection, row: i64) -> QueryResult<Vec<(i64, Vec<u8>)>> {
    blocks::table
        .select((diesel::dsl::sql::<diesel::sql_types::BigInt>("rowid"), blocks::bytes))
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>("rowid > ").bind::<diesel::sql_types::BigInt, _>(row))
        .load(conn)
}

/// Every stored block's bytes (stored form).
pub fn all_block_bytes(conn: &mut SqliteConnection) -> QueryResult<Vec<Vec<u8>>> {
    blocks::table.select(blocks::bytes).load(conn)
}

pub fn block_count(conn: &mut SqliteConnection) -> QueryResult<i64> {
    blocks::table.count().get_result(conn)
}

/// Stores a block that fork choice accepted, with what `outcome` changed, in one transaction:
/// pruned side blocks are deleted, blocks leaving the main chain give their records back to
/// the pool, blocks joining it claim theirs (records that were never pooled here arrive with
/// the block).
pub fn store_block(conn: &mut SqliteConnection, block: &Block, outcome: &AddOutcome, now: i64) -> QueryResult<()> {
    let hash = block.hash();
    write_tx(conn, |conn| {
        let inserted = diesel::insert_or_ignore_into(blocks::table)
            .values((
                blocks::hash.eq(hash.to_hex()),
                blocks::height.eq(block.header.height as i64),
                blocks::prev.eq(block.header.prev.to_hex()),
                blocks::bytes.eq(block.encode_stored()),
                blocks::timestamp.eq(block.header.timestamp),
                blocks::miner.eq(cairn_chain::to_hex(&block.header.miner)),
                blocks::received_at.eq(now),
                // A new tip is on the main chain from the start (no second write below).
                blocks::on_main.eq(matches!(outcome, AddOutcome::NewTip(_))),
            ))
            .execute(conn)?;
        let AddOutcome::NewTip(reorg) = outcome else { return Ok(()) };
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
                diesel::insert_into(chain_records::table)
                    .values((
                        chain_records::record_id.eq(r.id().to_hex()),
                        chain_records::bytes.eq(r.encode()),
                        chain_records::kind.eq(StoredKind(r.fields.kind).as_str()),
                        chain_records::created_at.eq(now),
                        chain_records::block_hash.eq(&h),
                    ))
                    .on_conflict(chain_records::record_id)
                    .do_update()
                    .set(chain_records::block_hash.eq(&h))
                    .execute(conn)?;
            }
        }
        Ok(())
    })
}

/// Sets every block aside and returns every record they held to the pool (the format
/// upgrade): (blocks deleted, records returned).
pub fn clear_blocks(conn: &mut SqliteConnection) -> QueryResult<(usize, usize)> {
    write_tx(conn, |c| {
        let records = diesel::update(chain_records::table.filter(chain_records::block_hash.is_not_null()))
            .set(chain_records::block_hash.eq(None::<String>))
            .execute(c)?;
        let blocks = diesel::delete(blocks::table).execute(c)?;
        Ok((blocks, records))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_kinds_and_meta_keys_round_trip_through_their_stored_names() {
        for kind in [RecordKind::Award, RecordKind::Revocation] {
            let stored = StoredKind(kind);
            assert_eq!(StoredKind::try_from(stored.as_str()), Ok(stored));
            assert_eq!(stored.to_string(), stored.as_str());
        }
        assert_eq!(StoredKind(RecordKind::Award).as_str(), "award");
        assert_eq!(StoredKind(RecordKind::Revocation).as_str(), "revocation");
        assert!(StoredKind::try_from("Award").is_err());
        crate::db::stored::assert_round_trip!(MetaKey);
    }
}
