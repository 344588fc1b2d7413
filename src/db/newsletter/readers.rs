//! The newsletter's readers: the double opt-in, imports, leaving, bounces and complaints, and
//! the secret that keys unsubscribe links.

use diesel::prelude::*;

use super::*;
use crate::db::schema::{newsletter_complaints, newsletter_deliveries, newsletter_secret, newsletter_subscribers};
use crate::db::{OptionalExt, StoreResult, write_tx};

/// What asking to subscribe led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// A confirmation is due to the reader with this id (a new or renewed pending row).
    Pending(i64),
    /// The address already reads the newsletter: no mail.
    AlreadyConfirmed,
}

/// Records a request to subscribe, pending until confirmed by `expires_at`. The link comes
/// with the mail ([`renew_confirmation`]); a link mailed earlier keeps working until then.
pub fn ask(
    conn: &mut SqliteConnection,
    course_id: i64,
    email: &str,
    name: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<Asked> {
    let existing: Option<Subscriber> = newsletter_subscribers::table
        .filter(newsletter_subscribers::course_id.eq(course_id).and(newsletter_subscribers::email.eq(email)))
        .select(Subscriber::as_select())
        .first(conn)
        .optional()?;
    match existing {
        Some(s) if s.status == SubscriberStatus::Confirmed => Ok(Asked::AlreadyConfirmed),
        Some(s) => {
            diesel::update(newsletter_subscribers::table.find(s.id))
                .set((
                    newsletter_subscribers::status.eq(SubscriberStatus::Pending),
                    newsletter_subscribers::name.eq(name),
                    newsletter_subscribers::confirm_expires_at.eq(expires_at),
                    newsletter_subscribers::updated_at.eq(now),
                ))
                .execute(conn)?;
            Ok(Asked::Pending(s.id))
        }
        None => {
            let id = diesel::insert_into(newsletter_subscribers::table)
                .values((
                    newsletter_subscribers::course_id.eq(course_id),
                    newsletter_subscribers::email.eq(email),
                    newsletter_subscribers::name.eq(name),
                    newsletter_subscribers::status.eq(SubscriberStatus::Pending),
                    newsletter_subscribers::confirm_expires_at.eq(expires_at),
                    newsletter_subscribers::created_at.eq(now),
                    newsletter_subscribers::updated_at.eq(now),
                ))
                .returning(newsletter_subscribers::id)
                .get_result(conn)?;
            Ok(Asked::Pending(id))
        }
    }
}

/// Gives a reader still waiting for confirmation at `now` the link whose token hashes to
/// `confirm_hash`, valid until `expires_at`, just before it is mailed; `None` when they no
/// longer wait (confirmed, gone, or their request expired).
pub fn renew_confirmation(
    conn: &mut SqliteConnection,
    id: i64,
    confirm_hash: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<Option<Subscriber>> {
    Ok(diesel::update(
        newsletter_subscribers::table
            .find(id)
            .filter(newsletter_subscribers::status.eq(SubscriberStatus::Pending))
            .filter(newsletter_subscribers::confirm_expires_at.ge(now)),
    )
    .set((
        newsletter_subscribers::confirm_token_hash.eq(confirm_hash),
        newsletter_subscribers::confirm_expires_at.eq(expires_at),
    ))
    .returning(Subscriber::as_returning())
    .get_result(conn)
    .optional()?)
}

/// Confirms the pending reader whose token hashes to `hash`, unless it expired at `now`.
pub fn confirm(conn: &mut SqliteConnection, hash: &str, now: i64) -> StoreResult<Option<Subscriber>> {
    write_tx(conn, |c| {
        let found: Option<Subscriber> = newsletter_subscribers::table
            .filter(newsletter_subscribers::confirm_token_hash.eq(hash))
            .filter(newsletter_subscribers::status.eq(SubscriberStatus::Pending))
            .filter(newsletter_subscribers::confirm_expires_at.ge(now))
            .select(Subscriber::as_select())
            .first(c)
            .optional()?;
        let Some(s) = found else { return Ok(None) };
        diesel::update(newsletter_subscribers::table.find(s.id))
            .set((
                newsletter_subscribers::status.eq(SubscriberStatus::Confirmed),
                newsletter_subscribers::confirm_token_hash.eq(None::<String>),
                newsletter_subscribers::confirmed_at.eq(now),
                newsletter_subscribers::updated_at.eq(now),
            ))
            .execute(c)?;
        Ok(Some(Subscriber { status: SubscriberStatus::Confirmed, confirmed_at: Some(now), ..s }))
    })
}

/// How one imported reader went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    Added,
    /// Already a confirmed reader.
    AlreadySubscribed,
    /// Was pending: now confirmed.
    Confirmed,
    /// Left the list (or bounced) before: an import does not bring them back.
    KeptOut(SubscriberStatus),
}

/// Adds a reader who already consented elsewhere: confirmed at once.
pub fn import(conn: &mut SqliteConnection, course_id: i64, email: &str, name: &str, now: i64) -> StoreResult<Imported> {
    write_tx(conn, |c| {
        let existing: Option<Subscriber> = newsletter_subscribers::table
            .filter(newsletter_subscribers::course_id.eq(course_id).and(newsletter_subscribers::email.eq(email)))
            .select(Subscriber::as_select())
            .first(c)
            .optional()?;
        match existing.map(|s| (s.id, s.status)) {
            Some((_, SubscriberStatus::Confirmed)) => Ok(Imported::AlreadySubscribed),
            Some((_, status @ (SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced))) => {
                Ok(Imported::KeptOut(status))
            }
            Some((id, SubscriberStatus::Pending)) => {
                diesel::update(newsletter_subscribers::table.find(id))
                    .set((
                        newsletter_subscribers::status.eq(SubscriberStatus::Confirmed),
                        newsletter_subscribers::confirm_token_hash.eq(None::<String>),
                        newsletter_subscribers::confirmed_at.eq(now),
                        newsletter_subscribers::updated_at.eq(now),
                    ))
                    .execute(c)?;
                Ok(Imported::Confirmed)
            }
            None => {
                diesel::insert_into(newsletter_subscribers::table)
                    .values((
                        newsletter_subscribers::course_id.eq(course_id),
                        newsletter_subscribers::email.eq(email),
                        newsletter_subscribers::name.eq(name),
                        newsletter_subscribers::status.eq(SubscriberStatus::Confirmed),
                        newsletter_subscribers::created_at.eq(now),
                        newsletter_subscribers::confirmed_at.eq(now),
                        newsletter_subscribers::updated_at.eq(now),
                    ))
                    .execute(c)?;
                Ok(Imported::Added)
            }
        }
    })
}

pub fn subscriber(conn: &mut SqliteConnection, id: i64) -> StoreResult<Subscriber> {
    newsletter_subscribers::table.find(id).select(Subscriber::as_select()).first(conn).found("subscriber")
}

/// Deletes requests to subscribe whose confirmation link expired unused, so that anonymous
/// sign-ups never confirmed do not pile up.
pub fn purge_unconfirmed(conn: &mut SqliteConnection, now: i64) -> StoreResult<usize> {
    Ok(diesel::delete(
        newsletter_subscribers::table
            .filter(newsletter_subscribers::status.eq(SubscriberStatus::Pending))
            .filter(newsletter_subscribers::confirm_expires_at.lt(now)),
    )
    .execute(conn)?)
}

/// Takes a reader off the list; true when they were on it (pending or confirmed).
pub fn unsubscribe(conn: &mut SqliteConnection, id: i64, now: i64) -> StoreResult<bool> {
    let n = diesel::update(
        newsletter_subscribers::table
            .find(id)
            .filter(newsletter_subscribers::status.eq_any([SubscriberStatus::Confirmed, SubscriberStatus::Pending])),
    )
    .set((
        newsletter_subscribers::status.eq(SubscriberStatus::Unsubscribed),
        newsletter_subscribers::confirm_token_hash.eq(None::<String>),
        newsletter_subscribers::updated_at.eq(now),
    ))
    .execute(conn)?;
    // Copies not yet made are not made.
    diesel::delete(
        newsletter_deliveries::table
            .filter(newsletter_deliveries::subscriber_id.eq(id))
            .filter(newsletter_deliveries::status.eq(DeliveryStatus::Queued)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// Confirmed readers of a course.
pub fn count_confirmed(conn: &mut SqliteConnection, course_id: i64) -> StoreResult<i64> {
    Ok(newsletter_subscribers::table
        .filter(newsletter_subscribers::course_id.eq(course_id))
        .filter(newsletter_subscribers::status.eq(SubscriberStatus::Confirmed))
        .count()
        .get_result(conn)?)
}

/// A page of a course's readers, newest first, and how many there are in all.
pub fn list_subscribers(
    conn: &mut SqliteConnection,
    course_id: i64,
    offset: i64,
    limit: i64,
) -> StoreResult<(Vec<Subscriber>, i64)> {
    let all = newsletter_subscribers::table.filter(newsletter_subscribers::course_id.eq(course_id));
    let total = all.count().get_result(conn)?;
    let page = all
        .order(newsletter_subscribers::id.desc())
        .offset(offset)
        .limit(limit)
        .select(Subscriber::as_select())
        .load(conn)?;
    Ok((page, total))
}

/// Readers whose address the mail server refused for good, with the refusal.
pub fn bounces(conn: &mut SqliteConnection, course_id: i64, limit: i64) -> StoreResult<Vec<(String, String)>> {
    Ok(newsletter_deliveries::table
        .inner_join(newsletter_subscribers::table)
        .filter(newsletter_subscribers::course_id.eq(course_id))
        .filter(newsletter_deliveries::status.eq_any([DeliveryStatus::Failed, DeliveryStatus::GaveUp]))
        .order(newsletter_deliveries::updated_at.desc())
        .limit(limit)
        .select((newsletter_subscribers::email, newsletter_deliveries::last_error.assume_not_null()))
        .load(conn)?)
}

/// A reader of a course by address (as [`crate::domain::Email`] stores it, in lower case).
pub fn subscriber_by_email(conn: &mut SqliteConnection, course_id: i64, email: &str) -> StoreResult<Subscriber> {
    newsletter_subscribers::table
        .filter(newsletter_subscribers::course_id.eq(course_id))
        .filter(newsletter_subscribers::email.eq(email))
        .select(Subscriber::as_select())
        .first(conn)
        .found("reader")
}

/// Records that a reader complained and takes them off the list, in one transaction; false
/// when a complaint about them was already recorded (nothing changes then).
pub fn record_complaint(
    conn: &mut SqliteConnection,
    subscriber_id: i64,
    source: ComplaintSource,
    now: i64,
) -> StoreResult<bool> {
    write_tx(conn, |c| {
        let known: i64 = newsletter_complaints::table
            .filter(newsletter_complaints::subscriber_id.eq(subscriber_id))
            .count()
            .get_result(c)?;
        if known > 0 {
            return Ok(false);
        }
        unsubscribe(c, subscriber_id, now)?;
        diesel::insert_into(newsletter_complaints::table)
            .values((
                newsletter_complaints::subscriber_id.eq(subscriber_id),
                newsletter_complaints::source.eq(source),
                newsletter_complaints::created_at.eq(now),
            ))
            .execute(c)?;
        Ok(true)
    })
}

/// A complaint as the instructor's page lists it.
#[derive(Debug, Clone, Queryable)]
pub struct Complaint {
    pub subscriber_id: i64,
    pub email: String,
    pub source: ComplaintSource,
    pub created_at: i64,
}

/// A course's complaints, newest first, at most `limit`.
pub fn complaints(conn: &mut SqliteConnection, course_id: i64, limit: i64) -> StoreResult<Vec<Complaint>> {
    Ok(newsletter_complaints::table
        .inner_join(newsletter_subscribers::table)
        .filter(newsletter_subscribers::course_id.eq(course_id))
        .order((newsletter_complaints::created_at.desc(), newsletter_complaints::id.desc()))
        .limit(limit)
        .select((
            newsletter_complaints::subscriber_id,
            newsletter_subscribers::email,
            newsletter_complaints::source,
            newsletter_complaints::created_at,
        ))
        .load(conn)?)
}

/// The secret unsubscribe links are derived from, made on first use.
pub fn secret(conn: &mut SqliteConnection) -> StoreResult<String> {
    if let Some(s) = newsletter_secret::table.select(newsletter_secret::secret).first(conn).optional()? {
        return Ok(s);
    }
    let fresh = crate::tokens::random_token();
    diesel::insert_into(newsletter_secret::table)
        .values((newsletter_secret::id.eq(1), newsletter_secret::secret.eq(&fresh)))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(newsletter_secret::table.select(newsletter_secret::secret).first(conn)?)
}
