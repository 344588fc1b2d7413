//! Instructor accounts: creating one, and replacing a password, which always signs the
//! instructor out of every session, revokes their API tokens and stops their webhooks
//! (whoever held a session could have made those, and must now know the new password).
//! And the notice an instructor gets whenever a token or webhook is made in their name.

use diesel::SqliteConnection;

use crate::db::instructors::{self, Instructor};
use crate::db::{StoreError, StoreResult, write_tx};

/// Creates an instructor; refuses an existing email or a short password.
pub fn create(conn: &mut SqliteConnection, email: &str, password: &str) -> StoreResult<Instructor> {
    instructors::create(conn, email, password)
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
    crate::domain::check_password(password).map_err(|e| StoreError::field("password", e))?;
    let ended = replace_password(conn, instructor.id, &instructors::hash_password(password), now)?;
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
