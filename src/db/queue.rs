//! The leased queue: one engine under the three tables of things waiting to be sent — the
//! outbox (Webmentions and mails), webhook deliveries and newsletter copies. Each row is
//! `queued` until an attempt settles it (`sent`, `no_endpoint`, `failed`, `gave_up`), and
//! carries `attempts`, `next_attempt_at`, `last_error`, `created_at` and `updated_at`.
//!
//! A sender [`claim`]s due rows for a lease (it moves `next_attempt_at` forward: no other
//! sender takes them while it holds them, and a sender that dies loses them when the lease
//! runs out), sends them, and [`settle`]s each attempt, with the retry time [`retry_schedule`]
//! gives: a minute doubling up to six hours, `Retry-After` honoured up to a day, given up two
//! days after the row was queued. Which rows are due is each table's own query (they join
//! different tables); claiming, settling and the schedule are here, once.
//!
//! Time is passed in: nothing here reads the clock.

use diesel::prelude::*;

use super::{StoreResult, write_tx};

super::stored::stored_enum! {
    /// Where a row of any queue is; each table's own status names the same words.
    pub enum State {
        /// Waiting for its next attempt (`next_attempt_at`), or leased to a sender.
        Queued = "queued",
        Sent = "sent",
        /// Nothing to send (a post that advertises no Webmention endpoint); not an error.
        NoEndpoint = "no_endpoint",
        /// Refused for good; not retried.
        Failed = "failed",
        /// Still failing when the retry period ran out.
        GaveUp = "gave_up",
    }
}

/// How long delivery is retried before giving up.
pub const GIVE_UP_AFTER_SECS: i64 = 48 * 3600;
/// Longest wait between attempts, whatever the backoff says.
pub const MAX_BACKOFF_SECS: i64 = 6 * 3600;
/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER_SECS: u64 = 24 * 3600;

/// How long to wait after attempt number `attempts` (1 for the first) failed: doubling from a
/// minute, at most six hours, and at least what the receiver asked for with `Retry-After`
/// (honoured up to a day).
pub fn backoff_secs(attempts: i64, retry_after: Option<u64>) -> u64 {
    let backoff = (60i64 << (attempts - 1).clamp(0, 12)).min(MAX_BACKOFF_SECS) as u64;
    backoff.max(retry_after.unwrap_or(0).min(MAX_RETRY_AFTER_SECS))
}

/// When attempt number `attempts` (1 for the first) failed at `now` and may be retried: the
/// next attempt time ([`backoff_secs`]), or [`State::GaveUp`] once that would pass
/// [`GIVE_UP_AFTER_SECS`] from `created_at`.
pub fn retry_schedule(attempts: i64, retry_after: Option<u64>, created_at: i64, now: i64) -> (State, i64) {
    let wait = backoff_secs(attempts, retry_after) as i64;
    let state = if now + wait - created_at > GIVE_UP_AFTER_SECS { State::GaveUp } else { State::Queued };
    (state, now + wait)
}

/// How one attempt ended, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing more to do: [`State::Sent`] or [`State::NoEndpoint`].
    Done(State),
    /// Refused for good.
    Failed(String),
    /// Try again at `next_attempt_at` ([`State::Queued`]), or give up ([`State::GaveUp`]).
    Retry { state: State, error: String, next_attempt_at: i64 },
}

impl Outcome {
    /// The outcome of attempt number `attempts` of a row queued at `created_at`, failed at
    /// `now` with an error that may go away: retried on [`retry_schedule`].
    pub fn retry(error: String, attempts: i64, retry_after: Option<u64>, created_at: i64, now: i64) -> Outcome {
        let (state, next_attempt_at) = retry_schedule(attempts, retry_after, created_at, now);
        Outcome::Retry { state, error, next_attempt_at }
    }
}

/// One attempt at a claimed row: its id, the attempt's number (1 for the first) and how it
/// ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub id: i64,
    pub number: i64,
    pub outcome: Outcome,
}

/// A table that holds a leased queue. Implemented once per table by `leased!`, with the same
/// statements; the functions of this module are what the rest of the crate calls.
pub trait Leased {
    /// The table's name, for logs.
    const TABLE: &'static str;

    /// Moves `next_attempt_at` of those of `ids` that are queued and due at `now` to
    /// `until`; returns the ids moved.
    fn lease(conn: &mut SqliteConnection, ids: &[i64], now: i64, until: i64) -> QueryResult<Vec<i64>>;

    /// Records a last attempt (not retried) on each of `ids`; `next_attempt_at` keeps the lease.
    fn finish(
        conn: &mut SqliteConnection,
        ids: &[i64],
        state: State,
        attempts: i64,
        error: Option<&str>,
        now: i64,
    ) -> QueryResult<usize>;

    /// Records a failed attempt to be retried at `next_attempt_at` (or given up).
    fn reschedule(
        conn: &mut SqliteConnection,
        id: i64,
        state: State,
        attempts: i64,
        next_attempt_at: i64,
        error: &str,
        now: i64,
    ) -> QueryResult<usize>;
}

macro_rules! leased {
    ($(#[$meta:meta])* $name:ident => $table:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl Leased for $name {
            const TABLE: &'static str = stringify!($table);

            fn lease(conn: &mut SqliteConnection, ids: &[i64], now: i64, until: i64) -> QueryResult<Vec<i64>> {
                use super::schema::$table as t;
                diesel::update(
                    t::table
                        .filter(t::id.eq_any(ids))
                        .filter(t::status.eq(State::Queued))
                        .filter(t::next_attempt_at.le(now)),
                )
                .set(t::next_attempt_at.eq(until))
                .returning(t::id)
                .get_results(conn)
            }

            fn finish(
                conn: &mut SqliteConnection,
                ids: &[i64],
                state: State,
                attempts: i64,
                error: Option<&str>,
                now: i64,
            ) -> QueryResult<usize> {
                use super::schema::$table as t;
                diesel::update(t::table.filter(t::id.eq_any(ids)))
                    .set((
                        t::status.eq(state),
                        t::attempts.eq(attempts),
                        t::last_error.eq(error),
                        t::updated_at.eq(now),
                    ))
                    .execute(conn)
            }

            fn reschedule(
                conn: &mut SqliteConnection,
                id: i64,
                state: State,
                attempts: i64,
                next_attempt_at: i64,
                error: &str,
                now: i64,
            ) -> QueryResult<usize> {
                use super::schema::$table as t;
                diesel::update(t::table.find(id))
                    .set((
                        t::status.eq(state),
                        t::attempts.eq(attempts),
                        t::next_attempt_at.eq(next_attempt_at),
                        t::last_error.eq(error),
                        t::updated_at.eq(now),
                    ))
                    .execute(conn)
            }
        }
    };
}

leased! {
    /// The outbox: Webmentions and mails (`outbox`).
    Outbox => outbox
}
leased! {
    /// Webhook deliveries (`webhook_deliveries`).
    WebhookDeliveries => webhook_deliveries
}
leased! {
    /// Newsletter copies (`newsletter_deliveries`).
    NewsletterCopies => newsletter_deliveries
}

/// Claims those of `ids` that are still queued and due at `now` for `lease_secs`, in one
/// statement: returns the ids this caller got. Two senders never hold the same row; if the
/// holder dies, the lease runs out and the row is due again.
///
/// This is the one place a row changes hands. On PostgreSQL, with several processes, it
/// becomes `UPDATE … WHERE id IN (SELECT id … FOR UPDATE SKIP LOCKED) RETURNING id`, so
/// that concurrent senders skip each other's rows instead of waiting on them.
pub fn claim<Q: Leased>(conn: &mut SqliteConnection, ids: &[i64], now: i64, lease_secs: i64) -> StoreResult<Vec<i64>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(Q::lease(conn, ids, now, now + lease_secs)?)
}

/// Claims one row: true when this caller got it ([`claim`]).
pub fn claim_one<Q: Leased>(conn: &mut SqliteConnection, id: i64, now: i64, lease_secs: i64) -> StoreResult<bool> {
    Ok(claim::<Q>(conn, &[id], now, lease_secs)?.len() == 1)
}

/// Records the outcomes of claimed rows' attempts in one write transaction (the caller's, when
/// there is one): the sender holds the write lock once per batch, not once per row, so that
/// requests waiting for it are not queued behind every message. Rows that ended alike with the
/// same attempt number (nearly every row is sent at its first attempt) take one statement.
pub fn settle<Q: Leased>(conn: &mut SqliteConnection, attempts: &[Attempt], now: i64) -> StoreResult<()> {
    if attempts.is_empty() {
        return Ok(());
    }
    write_tx(conn, |c| {
        let mut done: Vec<(State, i64, Vec<i64>)> = Vec::new();
        for a in attempts {
            match &a.outcome {
                Outcome::Done(state) => match done.iter_mut().find(|(s, n, _)| s == state && *n == a.number) {
                    Some((_, _, ids)) => ids.push(a.id),
                    None => done.push((*state, a.number, vec![a.id])),
                },
                Outcome::Failed(error) => {
                    Q::finish(c, &[a.id], State::Failed, a.number, Some(error), now)?;
                }
                Outcome::Retry { state, error, next_attempt_at } => {
                    Q::reschedule(c, a.id, *state, a.number, *next_attempt_at, error, now)?;
                }
            }
        }
        for (state, number, ids) in done {
            for chunk in ids.chunks(500) {
                Q::finish(c, chunk, state, number, None, now)?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_a_minute_honour_retry_after_and_give_up_after_two_days() {
        let created = 1_000_000;
        assert_eq!(retry_schedule(1, None, created, created), (State::Queued, created + 60));
        assert_eq!(retry_schedule(3, None, created, created + 10), (State::Queued, created + 10 + 240));
        assert_eq!(retry_schedule(30, None, created, created), (State::Queued, created + MAX_BACKOFF_SECS));
        assert_eq!(retry_schedule(1, Some(120), created, created), (State::Queued, created + 120));
        assert_eq!(retry_schedule(1, Some(u64::MAX), created, created).1, created + 24 * 3600, "Retry-After capped");
        let late = created + GIVE_UP_AFTER_SECS - 30;
        assert_eq!(retry_schedule(1, None, created, late), (State::GaveUp, late + 60));
    }

    #[test]
    fn every_state_round_trips_through_its_stored_string() {
        crate::db::stored::assert_round_trip!(State);
        // Each table's status spells the same words.
        for s in crate::db::outbox::Status::ALL {
            assert_eq!(State::parse(s.as_str()).map(State::as_str), Some(s.as_str()));
        }
        for s in crate::db::webhooks::DeliveryStatus::ALL {
            assert_eq!(State::parse(s.as_str()).map(State::as_str), Some(s.as_str()));
        }
        for s in crate::db::newsletter::DeliveryStatus::ALL {
            assert_eq!(State::parse(s.as_str()).map(State::as_str), Some(s.as_str()));
        }
    }
}
