//! The instructor's edits from the learner roster.

use diesel::SqliteConnection;

use crate::app::access::{Actor, Role};
use crate::db::{StoreError, StoreResult, roster, write_tx};
use crate::domain::Email;

/// The institution's roster and each learner's page: any member of a teaching team.
pub fn may_read(actor: &Actor) -> StoreResult<()> {
    actor.require_some(Role::Reviewer, "see the learner roster")
}

/// A course's roster and progress grid: its reviewers, editors and owners.
pub fn may_read_course(conn: &mut SqliteConnection, actor: &Actor, course: i64) -> StoreResult<()> {
    actor.require_course(conn, course, Role::Reviewer, "see this course's learners")
}

/// Gives learner `author` the address `raw` (an OPML import carries none, and a badge needs
/// one). The address must be valid and belong to no other learner; errors are keyed `email`.
/// A course's owner (or an admin) may.
pub fn set_email(conn: &mut SqliteConnection, actor: &Actor, author: i64, raw: &str) -> StoreResult<Email> {
    actor.require_some(Role::Owner, "change a learner's email address")?;
    let email = Email::parse(raw).map_err(|e| StoreError::field("email", e))?;
    write_tx(conn, |c| roster::set_email(c, author, email.as_str()))?;
    Ok(email)
}
