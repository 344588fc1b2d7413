//! Instructor accounts: creating one, and replacing a password, which always signs the
//! instructor out of every session, revokes their API tokens and stops their webhooks
//! (whoever held a session could have made those, and must now know the new password).
//! And the notice an instructor gets whenever a token or webhook is made in their name.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use diesel::SqliteConnection;

use crate::db::instructors::{self, Instructor};
use crate::db::{StoreError, StoreResult, write_tx};
use crate::domain::{Email, check_password};

/// Hashes a password with argon2id and a fresh random salt (PHC string). Slow by design: the
/// web layer runs it on a bounded pool of blocking threads.
pub fn hash_password(password: &str) -> StoreResult<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h: PasswordHash| h.to_string())
        .map_err(|e| StoreError::Internal(anyhow::anyhow!("cannot hash a password: {e}")))
}

/// Checks `password` against a PHC hash string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordVerifier::<str>::verify_password(&Argon2::default(), password.as_bytes(), phc).is_ok()
}

/// Creates an institution admin at `now` (how `cairn admin create-instructor` starts an
/// instance); refuses a malformed or existing email or a short password.
pub fn create(conn: &mut SqliteConnection, email: &str, password: &str, now: i64) -> StoreResult<Instructor> {
    create_with(conn, email, Some(password), true, now)
}

/// Creates an instructor: an institution admin or not, with a password or (`None`) signing in
/// only through the identity provider.
pub fn create_with(
    conn: &mut SqliteConnection,
    email: &str,
    password: Option<&str>,
    admin: bool,
    now: i64,
) -> StoreResult<Instructor> {
    let email = Email::parse(email).map_err(|e| StoreError::field("email", e))?;
    if let Some(p) = password {
        check_password(p).map_err(|e| StoreError::field("password", e))?;
    }
    if instructors::find_by_email(conn, email.as_str())?.is_some() {
        return Err(StoreError::field("email", format!("an instructor with email {email} already exists")));
    }
    let hash = password.map(hash_password).transpose()?.unwrap_or_default();
    instructors::create(conn, email.as_str(), &hash, admin, now)
}

/// Sets the password of an existing instructor without ending anything (the demo's
/// instructor, whose password is printed anew at each start).
pub fn set_password(conn: &mut SqliteConnection, id: i64, password: &str) -> StoreResult<()> {
    check_password(password).map_err(|e| StoreError::field("password", e))?;
    instructors::set_password_hash(conn, id, &hash_password(password)?)
}

/// What a password change ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ended {
    pub sessions: usize,
    pub tokens: usize,
    pub webhooks: usize,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} session(s) signed out, {} API token(s) revoked, {} webhook(s) disabled",
            self.sessions, self.tokens, self.webhooks
        )
    }
}

/// Stores a new password hash (made off the database connection) at `now` and, in the same
/// transaction, ends every session of the instructor, revokes their live API tokens and
/// disables their webhooks (their queued events are dropped).
pub fn replace_password(conn: &mut SqliteConnection, instructor_id: i64, hash: &str, now: i64) -> StoreResult<Ended> {
    write_tx(conn, |c| {
        instructors::set_password_hash(c, instructor_id, hash)?;
        Ok(Ended {
            sessions: crate::db::sessions::revoke_all(c, instructor_id)?,
            tokens: crate::db::tokens::revoke_all(c, instructor_id, now)?,
            webhooks: crate::db::webhooks::disable_all(c, instructor_id, now)?,
        })
    })
}

/// Sets a new password for the instructor with `email` (an administrator's reset); returns
/// the instructor and what ended.
pub fn reset_password(
    conn: &mut SqliteConnection,
    email: &str,
    password: &str,
    now: i64,
) -> StoreResult<(Instructor, Ended)> {
    let instructor = instructors::find_by_email(conn, email)?.ok_or(StoreError::NotFound("instructor"))?;
    check_password(password).map_err(|e| StoreError::field("password", e))?;
    let ended = replace_password(conn, instructor.id, &hash_password(password)?, now)?;
    Ok((instructor, ended))
}

pub use crate::notify::email::{Credential, CredentialNote, credential_notice};

/// Queues [`credential_notice`] to the instructor `instructor_id` in the outbox (in the
/// caller's transaction, when there is one); the notifier writes and sends it, retrying while
/// the mail server is away. Returns the notification's id: wake the notifier after, or deliver
/// it at once ([`crate::notify::Notifier::deliver_now`]).
pub fn queue_credential_notice(
    conn: &mut SqliteConnection,
    instructor_id: i64,
    what: Credential,
    detail: String,
    how: &str,
    now: i64,
) -> StoreResult<i64> {
    let note = CredentialNote { what, detail, how: how.to_string() };
    let payload = serde_json::to_string(&note).map_err(|e| StoreError::Internal(e.into()))?;
    crate::db::outbox::enqueue_credential_notice(conn, instructor_id, &payload, now)
}
