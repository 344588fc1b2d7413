//! Registered webhooks and their outbox of deliveries (queued by triggers in the changing
//! transaction; see the migration), with each delivery's state.

use diesel::prelude::*;

use super::awards::Award;
use super::courses::Task;
use super::schema::{awards, tasks, webhook_deliveries, webhooks};
use super::{OptionalExt, StoreError, StoreResult, queue};

super::stored::stored_enum! {
    /// What happened, as a webhook's `type` names it.
    pub enum Event {
        Created = "award.created",
        Revoked = "award.revoked",
        /// The award's record entered a block of the main chain.
        Recorded = "award.recorded",
    }
}

super::stored::stored_enum! {
    /// Where a delivery is.
    pub enum DeliveryStatus {
        /// Waiting for its next attempt, or leased to a worker sending it.
        Queued = "queued",
        Sent = "sent",
        /// Refused for good (the receiver answered 4xx other than 408 and 429, or the URL is not allowed).
        Failed = "failed",
        /// Still failing when the retry period ran out.
        GaveUp = "gave_up",
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhooks)]
pub struct Webhook {
    pub id: i64,
    pub instructor_id: i64,
    pub url: String,
    pub secret: String,
    pub created_at: i64,
    pub removed_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event: Event,
    pub award_id: i64,
    pub payload: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn insert(
    conn: &mut SqliteConnection,
    instructor_id: i64,
    url: &str,
    secret: &str,
    now: i64,
) -> StoreResult<Webhook> {
    diesel::insert_into(webhooks::table)
        .values((
            webhooks::instructor_id.eq(instructor_id),
            webhooks::url.eq(url),
            webhooks::secret.eq(secret),
            webhooks::created_at.eq(now),
        ))
        .returning(Webhook::as_returning())
        .get_result(conn)
        .map_err(Into::into)
}

/// An instructor's webhooks in use, oldest first.
pub fn list_for(conn: &mut SqliteConnection, instructor_id: i64) -> StoreResult<Vec<Webhook>> {
    webhooks::table
        .filter(webhooks::instructor_id.eq(instructor_id).and(webhooks::removed_at.is_null()))
        .order(webhooks::id)
        .select(Webhook::as_select())
        .load(conn)
        .map_err(Into::into)
}

pub fn count_for(conn: &mut SqliteConnection, instructor_id: i64) -> StoreResult<i64> {
    webhooks::table
        .filter(webhooks::instructor_id.eq(instructor_id).and(webhooks::removed_at.is_null()))
        .count()
        .get_result(conn)
        .map_err(Into::into)
}

/// Stops a webhook: no new events are queued for it and its queued deliveries are dropped.
pub fn remove(conn: &mut SqliteConnection, instructor_id: i64, id: i64, now: i64) -> StoreResult<()> {
    super::write_tx(conn, |conn| {
        let n = diesel::update(webhooks::table.filter(
            webhooks::id.eq(id).and(webhooks::instructor_id.eq(instructor_id)).and(webhooks::removed_at.is_null()),
        ))
        .set(webhooks::removed_at.eq(now))
        .execute(conn)?;
        if n == 0 {
            return Err(StoreError::NotFound("webhook"));
        }
        diesel::delete(
            webhook_deliveries::table.filter(
                webhook_deliveries::webhook_id.eq(id).and(webhook_deliveries::status.eq(DeliveryStatus::Queued)),
            ),
        )
        .execute(conn)?;
        Ok(())
    })
}

/// Stops every webhook of an instructor at `now`, as [`remove`] stops one (their password
/// changed: whoever registered one with a stolen session must not keep hearing of awards);
/// returns how many.
pub fn disable_all(conn: &mut SqliteConnection, instructor_id: i64, now: i64) -> StoreResult<usize> {
    let live = webhooks::table.filter(webhooks::instructor_id.eq(instructor_id).and(webhooks::removed_at.is_null()));
    let ids: Vec<i64> = live.select(webhooks::id).load(conn)?;
    diesel::update(webhooks::table.filter(webhooks::id.eq_any(&ids)))
        .set(webhooks::removed_at.eq(now))
        .execute(conn)?;
    diesel::delete(webhook_deliveries::table.filter(
        webhook_deliveries::webhook_id.eq_any(&ids).and(webhook_deliveries::status.eq(DeliveryStatus::Queued)),
    ))
    .execute(conn)?;
    Ok(ids.len())
}

/// Queued deliveries due at `now` with their webhooks, earliest first, at most `limit`.
pub fn due(conn: &mut SqliteConnection, now: i64, limit: i64) -> StoreResult<Vec<(Delivery, Webhook)>> {
    webhook_deliveries::table
        .inner_join(webhooks::table)
        .filter(webhook_deliveries::status.eq(DeliveryStatus::Queued).and(webhook_deliveries::next_attempt_at.le(now)))
        .order((webhook_deliveries::next_attempt_at, webhook_deliveries::id))
        .limit(limit)
        .select((Delivery::as_select(), Webhook::as_select()))
        .load(conn)
        .map_err(Into::into)
}

/// Claims a due delivery for `lease_secs`: true when this caller got it
/// ([`super::queue::claim`]).
pub fn claim(conn: &mut SqliteConnection, id: i64, now: i64, lease_secs: i64) -> StoreResult<bool> {
    queue::claim_one::<queue::WebhookDeliveries>(conn, id, now, lease_secs)
}

/// Fixes the body a delivery sends on every attempt.
pub fn set_payload(conn: &mut SqliteConnection, id: i64, payload: &str) -> StoreResult<()> {
    diesel::update(webhook_deliveries::table.find(id)).set(webhook_deliveries::payload.eq(payload)).execute(conn)?;
    Ok(())
}

/// Records the outcome of attempt number `attempts`.
pub fn settle(
    conn: &mut SqliteConnection,
    id: i64,
    attempts: i64,
    outcome: queue::Outcome,
    now: i64,
) -> StoreResult<()> {
    settle_many(conn, &[queue::Attempt { id, number: attempts, outcome }], now)
}

/// Records the outcomes of claimed deliveries' attempts in one write transaction
/// ([`super::queue::settle`]).
pub fn settle_many(conn: &mut SqliteConnection, attempts: &[queue::Attempt], now: i64) -> StoreResult<()> {
    queue::settle::<queue::WebhookDeliveries>(conn, attempts, now)
}

/// (id, event, created_at) of every delivery about an award that has a stored body.
pub fn with_payload_for_award(conn: &mut SqliteConnection, award_id: i64) -> StoreResult<Vec<(i64, Event, i64)>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::award_id.eq(award_id).and(webhook_deliveries::payload.is_not_null()))
        .select((webhook_deliveries::id, webhook_deliveries::event, webhook_deliveries::created_at))
        .load(conn)
        .map_err(Into::into)
}

/// Drops the stored bodies of deliveries settled (sent, failed or given up) before `before`;
/// the rows stay, with their outcome. Returns how many.
pub fn purge_sent_payloads(conn: &mut SqliteConnection, before: i64) -> StoreResult<usize> {
    Ok(diesel::update(
        webhook_deliveries::table.filter(
            webhook_deliveries::status
                .ne(DeliveryStatus::Queued)
                .and(webhook_deliveries::updated_at.lt(before))
                .and(webhook_deliveries::payload.is_not_null()),
        ),
    )
    .set(webhook_deliveries::payload.eq(None::<String>))
    .execute(conn)?)
}

/// The latest attempted delivery of a webhook, if any was attempted.
pub fn last_attempted(conn: &mut SqliteConnection, webhook_id: i64) -> StoreResult<Option<Delivery>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook_id).and(webhook_deliveries::attempts.gt(0)))
        .order((webhook_deliveries::updated_at.desc(), webhook_deliveries::id.desc()))
        .select(Delivery::as_select())
        .first(conn)
        .optional()
        .map_err(Into::into)
}

/// A webhook's latest deliveries, newest first.
pub fn recent(conn: &mut SqliteConnection, webhook_id: i64, limit: i64) -> StoreResult<Vec<Delivery>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
        .order(webhook_deliveries::id.desc())
        .limit(limit)
        .select(Delivery::as_select())
        .load(conn)
        .map_err(Into::into)
}

/// The award an event is about, with its Task.
pub fn award_with_task(conn: &mut SqliteConnection, award_id: i64) -> StoreResult<(Award, Task)> {
    awards::table
        .inner_join(tasks::table)
        .filter(awards::id.eq(award_id))
        .select((Award::as_select(), Task::as_select()))
        .first(conn)
        .found("award")
}

#[cfg(test)]
mod tests {
    #[test]
    fn webhook_words_round_trip() {
        crate::db::stored::assert_round_trip!(super::Event);
        crate::db::stored::assert_round_trip!(super::DeliveryStatus);
    }
}
