//! The readers' use cases: subscribing with a confirmation mail queued in the outbox,
//! confirming, leaving, complaints and imports.

use diesel::SqliteConnection;

use super::*;
use crate::db::newsletter::{self as store, Asked, Imported};
use crate::db::{DbPool, StoreError, StoreResult};
use crate::domain::{Email, FieldErrors};
use crate::tokens::token_hash;

/// What subscribing needs besides the request.
pub struct Subscribing<'a> {
    pub pool: &'a DbPool,
    /// Confirmation mails one address may get in a day (shared with `/join`).
    pub mails_per_day: u32,
}

/// Checks an address and name typed into a subscribe form.
pub fn check_reader(email: &str, name: &str) -> Result<(Email, String), FieldErrors> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(email));
    let name: String = name.trim().chars().filter(|c| !c.is_control()).collect();
    if name.chars().count() > 100 {
        errors.add("name", "at most 100 characters");
    }
    match email {
        Some(e) if errors.is_empty() => Ok((e, name)),
        _ => Err(errors),
    }
}

/// Asks a course's newsletter for `email`: a pending reader and, in the same transaction, a
/// confirmation mail queued in the outbox, within the per-address mail limit `/join` also
/// counts against. The notifier writes and sends the mail
/// ([`crate::notify::newsletter::confirmation_mail`]), retrying
/// while the mail server is away, so neither an outage nor a restart loses it; wake it after.
/// An address already reading gets no mail, and the caller cannot tell (the answer is the same).
pub async fn subscribe(
    ctx: &Subscribing<'_>,
    course_id: i64,
    email: &Email,
    name: &str,
    now: i64,
) -> Result<(), NewsletterError> {
    let (addr, who, limit) = (email.to_string(), name.to_string(), ctx.mails_per_day);
    let asked = crate::db::run(ctx.pool, move |c| {
        crate::db::write_tx(c, |c| {
            if let Err(wait) = crate::db::feeds::reserve_join_mail(c, &addr, limit, now)? {
                return Ok(Err(wait));
            }
            let asked = store::ask(c, course_id, &addr, &who, now + CONFIRM_SECS, now)?;
            if let Asked::Pending(id) = asked {
                crate::db::outbox::enqueue_confirmation(c, id, now)?;
            }
            Ok(Ok(()))
        })
    })
    .await?;
    asked.map_err(|wait| NewsletterError::MailLimit { limit, wait })
}

/// Confirms the reader whose emailed token is `token`; the course's slug and title when it worked.
pub fn confirm(conn: &mut SqliteConnection, token: &str, now: i64) -> StoreResult<Option<(String, String)>> {
    match store::confirm(conn, &token_hash(token), now)? {
        Some(s) => Ok(Some(store::course_names(conn, s.course_id)?)),
        None => Ok(None),
    }
}

/// Takes the reader named by an unsubscribe token off the list: the course's title when the
/// token is genuine (also when they had already left).
pub fn unsubscribe(conn: &mut SqliteConnection, token: &str, now: i64) -> StoreResult<Option<String>> {
    let secret = store::secret(conn)?;
    let Some(id) = token_reader(&secret, token) else { return Ok(None) };
    let Ok(reader) = store::subscriber(conn, id) else { return Ok(None) };
    store::unsubscribe(conn, id, now)?;
    tracing::info!(subscriber = id, "newsletter reader unsubscribed");
    Ok(Some(store::course_names(conn, reader.course_id)?.1))
}

/// Records that the reader `subscriber_id` of a course complained about the newsletter (marked
/// it as spam): they are taken off the list, and the complaint is listed on the instructor's
/// page. True when recorded now, false when it already was; `NotFound` when the course has no
/// such reader.
pub fn complain(
    conn: &mut SqliteConnection,
    course_id: i64,
    subscriber_id: i64,
    source: store::ComplaintSource,
    now: i64,
) -> StoreResult<bool> {
    let reader = store::subscriber(conn, subscriber_id)?;
    if reader.course_id != course_id {
        return Err(StoreError::NotFound("reader"));
    }
    let recorded = store::record_complaint(conn, reader.id, source, now)?;
    if recorded {
        tracing::info!(subscriber = reader.id, course = course_id, %source, "newsletter complaint recorded");
    }
    Ok(recorded)
}

/// [`complain`] for the reader with address `email`.
pub fn complain_by_email(
    conn: &mut SqliteConnection,
    course_id: i64,
    email: &Email,
    source: store::ComplaintSource,
    now: i64,
) -> StoreResult<bool> {
    let reader = store::subscriber_by_email(conn, course_id, email.as_str())?;
    complain(conn, course_id, reader.id, source, now)
}

/// One row of an import and how it went.
#[derive(Debug)]
pub struct ImportRow {
    /// 1-based line of the file.
    pub line: usize,
    pub email: String,
    pub outcome: Result<Imported, String>,
}

/// Adds already-consented readers from CSV (`email,name`; a header row is allowed), each row
/// on its own: a bad row is reported and the others are still added.
pub fn import_csv(
    conn: &mut SqliteConnection,
    course_id: i64,
    reader: impl std::io::Read,
    now: i64,
) -> StoreResult<Vec<ImportRow>> {
    let mut rows = Vec::new();
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(reader);
    for (i, record) in csv.records().enumerate() {
        let line = i + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                rows.push(ImportRow { line, email: String::new(), outcome: Err(format!("unreadable row: {e}")) });
                continue;
            }
        };
        let email = record.get(0).unwrap_or("").to_string();
        let name = record.get(1).unwrap_or("");
        if line == 1 && email.eq_ignore_ascii_case("email") {
            continue;
        }
        let outcome = match check_reader(&email, name) {
            Ok((e, n)) => store::import(conn, course_id, e.as_str(), &n, now).map_err(|e| e.to_string()),
            Err(errors) => Err(errors.to_string()),
        };
        rows.push(ImportRow { line, email, outcome });
    }
    Ok(rows)
}
