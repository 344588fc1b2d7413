//! Stored Open Badges 3.0 credentials, their revocation bits and the keys that signed them.

use diesel::prelude::*;

use super::schema::{credential_keys, credentials};
use super::{OptionalExt, StoreResult};

/// The status index the next credential gets (inside the caller's write transaction).
pub fn next_index(conn: &mut SqliteConnection) -> StoreResult<i64> {
    let max: Option<i64> = credentials::table.select(diesel::dsl::max(credentials::status_index)).first(conn)?;
    Ok(max.unwrap_or(0) + 1)
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

/// The signed credential of an award.
pub fn json_of(conn: &mut SqliteConnection, public_id: &str) -> StoreResult<String> {
    credentials::table
        .filter(credentials::public_id.eq(public_id))
        .select(credentials::credential_json)
        .first(conn)
        .found("credential")
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

/// Every credential key (multibase), the signing one (newest unretired) first.
pub fn keys(conn: &mut SqliteConnection) -> StoreResult<Vec<(String, Option<i64>)>> {
    credential_keys::table
        .order((credential_keys::retired_at.is_not_null(), credential_keys::id.desc()))
        .select((credential_keys::public_key, credential_keys::retired_at))
        .load(conn)
        .map_err(Into::into)
}

/// Records `key` as a credential key if it is not yet one.
pub fn ensure_key(conn: &mut SqliteConnection, key: &str, now: i64) -> StoreResult<()> {
    diesel::insert_or_ignore_into(credential_keys::table)
        .values((credential_keys::public_key.eq(key), credential_keys::created_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

/// Makes `new` the signing key: every other key is retired at `now` (and kept).
pub fn rotate_to(conn: &mut SqliteConnection, new: &str, now: i64) -> StoreResult<()> {
    super::write_tx(conn, |conn| {
        diesel::update(credential_keys::table.filter(credential_keys::retired_at.is_null()))
            .set(credential_keys::retired_at.eq(now))
            .execute(conn)?;
        diesel::insert_into(credential_keys::table)
            .values((credential_keys::public_key.eq(new), credential_keys::created_at.eq(now)))
            .execute(conn)?;
        Ok(())
    })
}
