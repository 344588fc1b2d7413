//! What a backup needs from the store: a consistent copy of the database while others write,
//! and the facts a restored copy is checked against.

use std::path::Path;

use diesel::prelude::*;
use diesel::sql_types::Text;

use super::schema::{awards, blocks, chain_records};
use super::{StoreError, StoreResult};

/// Writes a copy of the whole database to `dest` (which must not exist) with `VACUUM INTO`.
/// It reads in one transaction, so the copy holds exactly the commits made before it began,
/// and in WAL mode writers go on meanwhile.
pub fn snapshot(conn: &mut SqliteConnection, dest: &Path) -> StoreResult<()> {
    let dest = dest.to_str().ok_or_else(|| StoreError::Internal(anyhow::anyhow!("backup path is not UTF-8")))?;
    diesel::sql_query("VACUUM INTO ?").bind::<Text, _>(dest).execute(conn)?;
    Ok(())
}

/// (awards, main-chain blocks) in the store.
pub fn counts(conn: &mut SqliteConnection) -> StoreResult<(i64, i64)> {
    let a = awards::table.count().get_result(conn)?;
    let b = blocks::table.filter(blocks::on_main.eq(true)).count().get_result(conn)?;
    Ok((a, b))
}

/// The records this institution made for its own awards and revocations, as stored bytes.
pub fn own_records(conn: &mut SqliteConnection) -> StoreResult<Vec<Vec<u8>>> {
    Ok(chain_records::table.filter(chain_records::award_id.is_not_null()).select(chain_records::bytes).load(conn)?)
}
