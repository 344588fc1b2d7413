//! Instructor sessions kept on the server. The cookie holds a random id; only its SHA-256 is
//! stored, with the instructor, the session's other values and when it was made and last used.

use diesel::prelude::*;

use super::StoreResult;
use super::schema::sessions;
use crate::config::SessionSettings;

/// How often `last_seen_at` is written: idle expiry is this precise, and a busy session does
/// not write on every request.
const TOUCH_EVERY_SECS: i64 = 60;

fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub fn create(
    conn: &mut SqliteConnection,
    id_hash: &str,
    instructor_id: i64,
    state: &str,
    now: i64,
) -> StoreResult<()> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::id_hash.eq(id_hash),
            sessions::instructor_id.eq(instructor_id),
            sessions::state.eq(state),
            sessions::created_at.eq(now),
            sessions::last_seen_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The state of a live session, noting its use; a session past its idle or absolute expiry is
/// deleted and `None` returned, as for an unknown id.
pub fn touch(
    conn: &mut SqliteConnection,
    id_hash: &str,
    life: SessionSettings,
    now: i64,
) -> StoreResult<Option<String>> {
    let row: Option<(String, i64, i64)> = sessions::table
        .find(id_hash)
        .select((sessions::state, sessions::created_at, sessions::last_seen_at))
        .first(conn)
        .optional()?;
    let Some((state, created, seen)) = row else { return Ok(None) };
    let expired =
        now >= created.saturating_add(secs(life.absolute_secs)) || now >= seen.saturating_add(secs(life.idle_secs));
    if expired {
        diesel::delete(sessions::table.find(id_hash)).execute(conn)?;
        return Ok(None);
    }
    if now - seen >= TOUCH_EVERY_SECS {
        diesel::update(sessions::table.find(id_hash)).set(sessions::last_seen_at.eq(now)).execute(conn)?;
    }
    Ok(Some(state))
}

/// Replaces a session's values; false when the session no longer exists (revoked meanwhile).
pub fn set_state(conn: &mut SqliteConnection, id_hash: &str, state: &str) -> StoreResult<bool> {
    let n = diesel::update(sessions::table.find(id_hash).filter(sessions::state.ne(state)))
        .set(sessions::state.eq(state))
        .execute(conn)?;
    if n > 0 {
        return Ok(true);
    }
    Ok(diesel::select(diesel::dsl::exists(sessions::table.find(id_hash))).get_result(conn)?)
}

pub fn delete(conn: &mut SqliteConnection, id_hash: &str) -> StoreResult<()> {
    diesel::delete(sessions::table.find(id_hash)).execute(conn)?;
    Ok(())
}

/// Signs the instructor out everywhere; returns how many sessions ended.
pub fn revoke_all(conn: &mut SqliteConnection, instructor_id: i64) -> StoreResult<usize> {
    Ok(diesel::delete(sessions::table.filter(sessions::instructor_id.eq(instructor_id))).execute(conn)?)
}

/// Deletes sessions past either expiry.
pub fn purge_expired(conn: &mut SqliteConnection, life: SessionSettings, now: i64) -> StoreResult<usize> {
    Ok(diesel::delete(
        sessions::table.filter(
            sessions::last_seen_at
                .le(now.saturating_sub(secs(life.idle_secs)))
                .or(sessions::created_at.le(now.saturating_sub(secs(life.absolute_secs)))),
        ),
    )
    .execute(conn)?)
}

/// Live sessions of an instructor.
pub fn count_for(conn: &mut SqliteConnection, instructor_id: i64) -> StoreResult<i64> {
    Ok(sessions::table.filter(sessions::instructor_id.eq(instructor_id)).count().get_result(conn)?)
}
