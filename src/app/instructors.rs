//! Instructor accounts: creating one, and replacing a password, which always signs the
//! instructor out of every session (whoever held one must now know the new password).

use diesel::SqliteConnection;

use crate::db::instructors::{self, Instructor};
use crate::db::{StoreError, StoreResult, write_tx};

/// Creates an instructor; refuses an existing email or a short password.
pub fn create(conn: &mut SqliteConnection, email: &str, password: &str) -> StoreResult<Instructor> {
    instructors::create(conn, email, password)
}

/// Stores a new password hash (made off the database connection) and ends every session of
/// the instructor; returns how many ended.
pub fn replace_password(conn: &mut SqliteConnection, instructor_id: i64, hash: &str) -> StoreResult<usize> {
    write_tx(conn, |c| {
        instructors::set_password_hash(c, instructor_id, hash)?;
        crate::db::sessions::revoke_all(c, instructor_id)
    })
}

/// Sets a new password for the instructor with `email` (an administrator's reset); returns
/// the instructor and how many sessions ended.
pub fn reset_password(conn: &mut SqliteConnection, email: &str, password: &str) -> StoreResult<(Instructor, usize)> {
    let instructor = instructors::find_by_email(conn, email)?.ok_or(StoreError::NotFound("instructor"))?;
    crate::domain::check_password(password).map_err(|e| StoreError::field("password", e))?;
    let ended = replace_password(conn, instructor.id, &instructors::hash_password(password))?;
    Ok((instructor, ended))
}
