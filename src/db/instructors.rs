//! Instructor accounts: their rows, password hashes stored as given, look-up by email.

use diesel::prelude::*;

use super::schema::instructors;
use super::{StoreError, StoreResult};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = instructors)]
pub struct Instructor {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub created_at: i64,
    /// An institution admin: the profile, peers, keys, instructors and their roles.
    pub admin: bool,
}

/// Stores a new instructor with a checked email and a password hash (`app::instructors`
/// checks and hashes); an empty hash means no password sign-in.
pub fn create(
    conn: &mut SqliteConnection,
    email: &str,
    password_hash: &str,
    admin: bool,
    now: i64,
) -> StoreResult<Instructor> {
    diesel::insert_into(instructors::table)
        .values((
            instructors::email.eq(email),
            instructors::password_hash.eq(password_hash),
            instructors::created_at.eq(now),
            instructors::admin.eq(admin),
        ))
        .returning(Instructor::as_returning())
        .get_result(conn)
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                StoreError::field("email", format!("an instructor with email {email} already exists"))
            }
            e => e.into(),
        })
}

/// Stores a password hash made elsewhere (off the database connection).
pub fn set_password_hash(conn: &mut SqliteConnection, id: i64, hash: &str) -> StoreResult<()> {
    let n = diesel::update(instructors::table.find(id)).set(instructors::password_hash.eq(hash)).execute(conn)?;
    if n == 0 { Err(StoreError::NotFound("instructor")) } else { Ok(()) }
}

pub fn find_by_email(conn: &mut SqliteConnection, email: &str) -> StoreResult<Option<Instructor>> {
    instructors::table
        .filter(instructors::email.eq(email.trim().to_lowercase()))
        .select(Instructor::as_select())
        .first(conn)
        .optional()
        .map_err(Into::into)
}

pub fn find(conn: &mut SqliteConnection, id: i64) -> StoreResult<Option<Instructor>> {
    instructors::table.find(id).select(Instructor::as_select()).first(conn).optional().map_err(Into::into)
}

/// Makes an instructor an institution admin, or no longer one.
pub fn set_admin(conn: &mut SqliteConnection, id: i64, admin: bool) -> StoreResult<()> {
    let n = diesel::update(instructors::table.find(id)).set(instructors::admin.eq(admin)).execute(conn)?;
    if n == 0 { Err(StoreError::NotFound("instructor")) } else { Ok(()) }
}

/// Every instructor, by email.
pub fn list(conn: &mut SqliteConnection) -> StoreResult<Vec<Instructor>> {
    instructors::table.order(instructors::email).select(Instructor::as_select()).load(conn).map_err(Into::into)
}

/// How many admins there are (the last one cannot be demoted).
pub fn admins(conn: &mut SqliteConnection) -> StoreResult<i64> {
    instructors::table.filter(instructors::admin.eq(true)).count().get_result(conn).map_err(Into::into)
}

pub fn count(conn: &mut SqliteConnection) -> StoreResult<i64> {
    instructors::table.count().get_result(conn).map_err(Into::into)
}
