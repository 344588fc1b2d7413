//! Instructor accounts: creating one, and replacing a password, which always signs the
//! instructor out of every session, revokes their API tokens and stops their webhooks
//! (whoever held a session could have made those, and must now know the new password).
//! And the notice an instructor gets whenever a token or webhook is made in their name.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use askama::Template;
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

/// Creates an instructor at `now`; refuses a malformed or existing email or a short password.
pub fn create(conn: &mut SqliteConnection, email: &str, password: &str, now: i64) -> StoreResult<Instructor> {
    let email = Email::parse(email).map_err(|e| StoreError::field("email", e))?;
    check_password(password).map_err(|e| StoreError::field("password", e))?;
    if instructors::find_by_email(conn, email.as_str())?.is_some() {
        return Err(StoreError::field("email", format!("an instructor with email {email} already exists")));
    }
    instructors::create(conn, email.as_str(), &hash_password(password)?, now)
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

/// What was made in an instructor's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    ApiToken,
    Webhook,
}

#[derive(Template)]
#[template(path = "mail/credential_created.txt")]
struct CredentialText<'a> {
    base: &'a str,
    what: &'a str,
    detail: &'a str,
    how: &'a str,
    manage: &'a str,
    when: &'a str,
}

/// The mail that tells an instructor a token or webhook was made in their name: what (the
/// token's name and scopes, or the webhook's URL), when, through which surface, and how to
/// undo it. It never holds the token or the webhook's secret.
pub fn credential_notice(
    to: &str,
    base: &str,
    what: Credential,
    detail: &str,
    how: &str,
    now: i64,
) -> Result<crate::email::Email, askama::Error> {
    let (noun, manage) = match what {
        Credential::ApiToken => ("An API token", format!("{base}/admin/tokens")),
        Credential::Webhook => ("A webhook", format!("{base}/api/v1/webhooks")),
    };
    let when =
        chrono::DateTime::from_timestamp(now, 0).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = CredentialText { base, what: noun, detail, how, manage: &manage, when: &when }.render()?;
    Ok(crate::email::Email {
        to: to.to_string(),
        subject: format!("{noun} was created for your Cairn account"),
        text,
        html: None,
        attachments: vec![],
        inline: vec![],
    })
}

/// Sends [`credential_notice`] to the instructor `instructor_id`. The thing is made already:
/// a mail that cannot be sent is logged (without the address) and does not undo it.
pub async fn send_credential_notice(
    pool: &crate::db::DbPool,
    mailer: &crate::email::Mailer,
    base: &str,
    instructor_id: i64,
    what: Credential,
    detail: String,
    how: &str,
) {
    let now = crate::db::now();
    let found = crate::db::run(pool, move |c| instructors::find(c, instructor_id)).await;
    let email = match found {
        Ok(Some(i)) => i.email,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "looking up the instructor for a credential notice failed");
            return;
        }
    };
    let mail = match credential_notice(&email, base, what, &detail, how, now) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "rendering a credential notice failed");
            return;
        }
    };
    if let Err(e) = mailer.send(mail).await {
        let error = crate::app::learners::mask_addresses(&e.to_string());
        tracing::error!(%error, instructor = instructor_id, "the credential notice could not be sent");
    }
}
