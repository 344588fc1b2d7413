//! Instructor accounts: argon2id password hashes, look-up by email.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use diesel::prelude::*;

use super::schema::instructors;
use super::{StoreError, StoreResult};
use crate::domain::{Email, check_password};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = instructors)]
pub struct Instructor {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub created_at: i64,
}

/// Hashes a password with argon2id and a fresh random salt (PHC string).
pub fn hash_password(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h: PasswordHash| h.to_string())
        .unwrap_or_else(|e| panic!("argon2 hashing cannot fail with default parameters: {e}"))
}

/// Checks `password` against a PHC hash string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordVerifier::<str>::verify_password(&Argon2::default(), password.as_bytes(), phc).is_ok()
}

/// Creates an instructor; refuses an existing email or a short password.
pub fn create(conn: &mut SqliteConnection, email: &str, password: &str) -> StoreResult<Instructor> {
    let email = Email::parse(email).map_err(|e| StoreError::field("email", e))?;
    check_password(password).map_err(|e| StoreError::field("password", e))?;
    if find_by_email(conn, email.as_str())?.is_some() {
        return Err(StoreError::field("email", format!("an instructor with email {email} already exists")));
    }
    let hash = hash_password(password);
    diesel::insert_into(instructors::table)
        .values((
            instructors::email.eq(email.as_str()),
            instructors::password_hash.eq(&hash),
            instructors::created_at.eq(super::now()),
        ))
        .returning(Instructor::as_returning())
        .get_result(conn)
        .map_err(Into::into)
}

/// Sets a new password for an existing instructor.
pub fn set_password(conn: &mut SqliteConnection, id: i64, password: &str) -> StoreResult<()> {
    check_password(password).map_err(|e| StoreError::field("password", e))?;
    let n = diesel::update(instructors::table.find(id))
        .set(instructors::password_hash.eq(hash_password(password)))
        .execute(conn)?;
    if n == 0 { Err(StoreError::NotFound("instructor")) } else { Ok(()) }
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

pub fn count(conn: &mut SqliteConnection) -> StoreResult<i64> {
    instructors::table.count().get_result(conn).map_err(Into::into)
}
