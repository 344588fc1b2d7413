//! The instructor's edits from the learner roster.

use diesel::SqliteConnection;

use crate::db::{StoreError, StoreResult, roster, write_tx};
use crate::domain::Email;

/// Gives learner `author` the address `raw` (an OPML import carries none, and a badge needs
/// one). The address must be valid and belong to no other learner; errors are keyed `email`.
pub fn set_email(conn: &mut SqliteConnection, author: i64, raw: &str) -> StoreResult<Email> {
    let email = Email::parse(raw).map_err(|e| StoreError::field("email", e))?;
    write_tx(conn, |c| roster::set_email(c, author, email.as_str()))?;
    Ok(email)
}
