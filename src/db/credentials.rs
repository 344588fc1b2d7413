//! Stored Open Badges 3.0 credentials, their revocation bits and the keys that signed them.

use diesel::prelude::*;

use super::schema::{credential_keys, credentials, status_index_seq};
use super::{OptionalExt, StoreError, StoreResult};

/// Hands out `n` (at least one) consecutive status list indexes, in a transaction of its own,
/// so that credentials can be signed before the awards that carry them are written. An index
/// whose award is then refused stays unused: its bit is never set.
pub fn reserve_indexes(conn: &mut SqliteConnection, n: usize, now: i64) -> StoreResult<std::ops::Range<i64>> {
    let n = i64::try_from(n.max(1)).map_err(|e| StoreError::Internal(e.into()))?;
    super::write_tx(conn, |conn| {
        let latest = || status_index_seq::table.select(diesel::dsl::max(status_index_seq::status_index));
        // The first index AUTOINCREMENT hands out: never one it handed out before.
        diesel::insert_into(status_index_seq::table).values(status_index_seq::reserved_at.eq(now)).execute(conn)?;
        let first: Option<i64> = latest().first(conn)?;
        let first = first.ok_or_else(|| StoreError::Internal(anyhow::anyhow!("no status index was reserved")))?;
        let last = first + n - 1;
        if last > first {
            // Inserting the last one moves AUTOINCREMENT's high-water mark past the whole run.
            diesel::insert_into(status_index_seq::table)
                .values((status_index_seq::status_index.eq(last), status_index_seq::reserved_at.eq(now)))
                .execute(conn)?;
        }
        diesel::delete(status_index_seq::table.filter(status_index_seq::status_index.lt(last))).execute(conn)?;
        Ok(first..last + 1)
    })
}

pub fn insert(conn: &mut SqliteConnection, index: i64, public_id: &str, json: &str, now: i64) -> StoreResult<()> {
    diesel::insert_into(credentials::table)
        .values((
            credentials::status_index.eq(index),
            credentials::public_id.eq(public_id),
            credentials::credential_json.eq(json),
            credentials::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The signed credential of an award (empty once the learner had it withdrawn).
pub fn json_of(conn: &mut SqliteConnection, public_id: &str) -> StoreResult<String> {
    credentials::table
        .filter(credentials::public_id.eq(public_id))
        .select(credentials::credential_json)
        .first(conn)
        .found("credential")
}

/// Withdraws an award's credential at the learner's request: it carried their salt, so it is
/// erased; its status bit stays set, so verifiers holding a copy see it revoked.
pub fn withdraw(conn: &mut SqliteConnection, public_id: &str) -> StoreResult<()> {
    diesel::update(credentials::table.filter(credentials::public_id.eq(public_id)))
        .set((credentials::revoked.eq(true), credentials::credential_json.eq("")))
        .execute(conn)?;
    Ok(())
}

/// Sets the revocation bit of an award's credential (none for awards made before credentials).
pub fn set_revoked(conn: &mut SqliteConnection, public_id: &str) -> StoreResult<()> {
    diesel::update(credentials::table.filter(credentials::public_id.eq(public_id)))
        .set(credentials::revoked.eq(true))
        .execute(conn)?;
    Ok(())
}

/// Revoked status indices in `[from, to)`.
pub fn revoked_between(conn: &mut SqliteConnection, from: i64, to: i64) -> StoreResult<Vec<i64>> {
    credentials::table
        .filter(
            credentials::revoked.eq(true).and(credentials::status_index.ge(from)).and(credentials::status_index.lt(to)),
        )
        .select(credentials::status_index)
        .load(conn)
        .map_err(Into::into)
}

/// The highest status index handed out (0 for none).
pub fn max_index(conn: &mut SqliteConnection) -> StoreResult<i64> {
    let max: Option<i64> = credentials::table.select(diesel::dsl::max(credentials::status_index)).first(conn)?;
    Ok(max.unwrap_or(0))
}

/// Every credential key (multibase), the signing one (unretired) first.
pub fn keys(conn: &mut SqliteConnection) -> StoreResult<Vec<(String, Option<i64>)>> {
    credential_keys::table
        .order((credential_keys::retired_at.is_not_null(), credential_keys::id.desc()))
        .select((credential_keys::public_key, credential_keys::retired_at))
        .load(conn)
        .map_err(Into::into)
}

/// The signing key when it is not the institution's own: (multibase, key file name).
pub fn current_key_file(conn: &mut SqliteConnection) -> StoreResult<Option<(String, String)>> {
    let row: Option<(String, Option<String>)> = credential_keys::table
        .filter(credential_keys::retired_at.is_null())
        .order(credential_keys::id.desc())
        .select((credential_keys::public_key, credential_keys::key_file))
        .first(conn)
        .optional()?;
    Ok(row.and_then(|(k, f)| f.map(|f| (k, f))))
}

/// Records `key` (the institution's own) as a credential key if there is none yet.
pub fn ensure_key(conn: &mut SqliteConnection, key: &str, now: i64) -> StoreResult<()> {
    let any: i64 = credential_keys::table.count().get_result(conn)?;
    if any == 0 {
        diesel::insert_or_ignore_into(credential_keys::table)
            .values((credential_keys::public_key.eq(key), credential_keys::created_at.eq(now)))
            .execute(conn)?;
    }
    Ok(())
}

/// Makes `new` (its secret in `key_file`) the signing key: every other key is retired at
/// `now` and kept. `old` is the institution's key, recorded first if no key was yet.
pub fn rotate_to(conn: &mut SqliteConnection, old: &str, new: &str, key_file: &str, now: i64) -> StoreResult<()> {
    super::write_tx(conn, |conn| {
        ensure_key(conn, old, now)?;
        diesel::update(credential_keys::table.filter(credential_keys::retired_at.is_null()))
            .set(credential_keys::retired_at.eq(now))
            .execute(conn)?;
        diesel::insert_into(credential_keys::table)
            .values((
                credential_keys::public_key.eq(new),
                credential_keys::key_file.eq(key_file),
                credential_keys::created_at.eq(now),
            ))
            .execute(conn)?;
        Ok(())
    })
}

#[derive(diesel::QueryableByName)]
struct DatabaseFile {
    #[diesel(sql_type = diesel::sql_types::Text)]
    file: String,
}

/// The directory of the main database file: the data dir, where key files live.
pub fn database_dir(conn: &mut SqliteConnection) -> StoreResult<std::path::PathBuf> {
    let rows: Vec<DatabaseFile> =
        diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'").load(conn)?;
    let file = rows.into_iter().next().map(|r| r.file).unwrap_or_default();
    std::path::Path::new(&file)
        .parent()
        .filter(|p| !file.is_empty() && !p.as_os_str().is_empty())
        .map(|p| p.to_path_buf())
        .ok_or(super::StoreError::NotFound("database directory"))
}
