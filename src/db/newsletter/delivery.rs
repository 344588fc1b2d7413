//! Delivering copies: the copies due, claimed and settled on the leased queue every queue
//! shares ([`crate::db::queue`]); a copy refused for good marks its reader bounced.

use diesel::prelude::*;

use super::*;
use crate::db::schema::{newsletter_deliveries, newsletter_issues, newsletter_subscribers};
use crate::db::{OptionalExt, StoreResult, queue, write_tx};

/// A copy due to be sent.
#[derive(Debug, Clone, Queryable)]
pub struct Due {
    pub id: i64,
    pub issue_id: i64,
    pub subscriber_id: i64,
    pub attempts: i64,
    pub created_at: i64,
    pub email: String,
    pub name: String,
}

/// Queued copies whose next attempt is due at `now`, earliest first, at most `limit`, to
/// readers still confirmed.
pub fn due(conn: &mut SqliteConnection, now: i64, limit: i64) -> StoreResult<Vec<Due>> {
    Ok(newsletter_deliveries::table
        .inner_join(newsletter_subscribers::table)
        .filter(newsletter_deliveries::status.eq(DeliveryStatus::Queued))
        .filter(newsletter_deliveries::next_attempt_at.le(now))
        .filter(newsletter_subscribers::status.eq(SubscriberStatus::Confirmed))
        .order((newsletter_deliveries::next_attempt_at, newsletter_deliveries::id))
        .limit(limit)
        .select((
            newsletter_deliveries::id,
            newsletter_deliveries::issue_id,
            newsletter_deliveries::subscriber_id,
            newsletter_deliveries::attempts,
            newsletter_deliveries::created_at,
            newsletter_subscribers::email,
            newsletter_subscribers::name,
        ))
        .load(conn)?)
}

/// Claims due copies for `lease_secs`, in one statement per batch: returns the ids this caller
/// got ([`crate::db::queue::claim`]). A copy whose sender died is due again when its lease runs out.
pub fn claim(conn: &mut SqliteConnection, ids: &[i64], now: i64, lease_secs: i64) -> StoreResult<Vec<i64>> {
    queue::claim::<queue::NewsletterCopies>(conn, ids, now, lease_secs)
}

/// How one attempt at a copy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Refused for good: the reader is marked bounced.
    Bounced(String),
    /// Try again at `next_attempt_at`, or give up (`status` `Queued` or `GaveUp`).
    Retry {
        status: DeliveryStatus,
        error: String,
        next_attempt_at: i64,
    },
}

impl From<Outcome> for queue::Outcome {
    fn from(o: Outcome) -> queue::Outcome {
        match o {
            Outcome::Sent => queue::Outcome::Done(queue::State::Sent),
            Outcome::Bounced(error) => queue::Outcome::Failed(error),
            Outcome::Retry { status, error, next_attempt_at } => {
                let state = if status == DeliveryStatus::GaveUp { queue::State::GaveUp } else { queue::State::Queued };
                queue::Outcome::Retry { state, error, next_attempt_at }
            }
        }
    }
}

/// Records the outcome of a claimed copy's attempt number `attempts`.
pub fn settle(conn: &mut SqliteConnection, id: i64, attempts: i64, outcome: Outcome, now: i64) -> StoreResult<()> {
    settle_many(conn, vec![(id, attempts, outcome)], now)
}

/// Records the outcomes of several claimed copies' attempts, `(id, attempt number, outcome)`,
/// in one short write transaction ([`crate::db::queue::settle`]); a copy refused for good marks
/// its reader bounced.
pub fn settle_many(conn: &mut SqliteConnection, outcomes: Vec<(i64, i64, Outcome)>, now: i64) -> StoreResult<()> {
    let attempts: Vec<queue::Attempt> = outcomes
        .into_iter()
        .map(|(id, number, outcome)| queue::Attempt { id, number, outcome: outcome.into() })
        .collect();
    settle_attempts(conn, &attempts, now)
}

/// [`settle_many`] for outcomes as every queue stores them.
pub fn settle_attempts(conn: &mut SqliteConnection, attempts: &[queue::Attempt], now: i64) -> StoreResult<()> {
    if attempts.is_empty() {
        return Ok(());
    }
    write_tx(conn, |c| {
        queue::settle::<queue::NewsletterCopies>(c, attempts, now)?;
        let bounced: Vec<i64> =
            attempts.iter().filter(|a| matches!(a.outcome, queue::Outcome::Failed(_))).map(|a| a.id).collect();
        if !bounced.is_empty() {
            let readers = newsletter_deliveries::table
                .filter(newsletter_deliveries::id.eq_any(&bounced))
                .select(newsletter_deliveries::subscriber_id);
            diesel::update(newsletter_subscribers::table.filter(newsletter_subscribers::id.eq_any(readers)))
                .set((
                    newsletter_subscribers::status.eq(SubscriberStatus::Bounced),
                    newsletter_subscribers::updated_at.eq(now),
                ))
                .execute(c)?;
        }
        Ok(())
    })
}

/// An issue by id.
pub fn issue(conn: &mut SqliteConnection, id: i64) -> StoreResult<Issue> {
    newsletter_issues::table.find(id).select(Issue::as_select()).first(conn).found("issue")
}
