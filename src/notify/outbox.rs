//! Delivering queued notifications: claiming what is due, sending it (a Webmention here, the
//! email in [`super::email`]) and recording the outcome with its retry time. The same sending
//! and backoff serve a Webmention sent in the foreground ([`send_in_foreground`]).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::SqliteConnection;

use super::Notifier;
use super::queue::{Deliver, Engine, Key, Sent};
use crate::db::StoreResult;
use crate::db::outbox::{self, Kind, Notification, Reached, Status};
use crate::db::queue::{self, Attempt};
use crate::webmention::{self, Outcome, Sender};

pub use crate::db::queue::{GIVE_UP_AFTER_SECS, MAX_RETRY_AFTER_SECS, backoff_secs, retry_schedule};

/// Notifications delivered at once.
pub const CONCURRENCY: usize = 8;
/// How long a worker holds a notification it is delivering.
pub const LEASE_SECS: i64 = 300;
/// Due notifications one pass looks at.
const BATCH: i64 = 200;

/// How sending went, before it is stored.
pub(super) enum Delivery {
    Done { status: Status, endpoint: Option<String>, location: Option<String> },
    Retry { error: String, after: Option<u64> },
    Fail { error: String, endpoint: Option<String> },
}

/// Most attempts a Webmention sent in the foreground makes by default.
pub const FOREGROUND_ATTEMPTS: u32 = 5;
/// Longest total wait between foreground attempts by default.
pub const FOREGROUND_MAX_WAIT_SECS: u64 = 15 * 60;
/// Longest a foreground send takes in all by default, attempts and waits together: a person
/// waits for the answer.
pub const FOREGROUND_TIMEOUT_SECS: u64 = 30;

/// Bounds on sending in the foreground, where a person waits for the answer. The first one
/// reached ends the send.
#[derive(Debug, Clone, Copy)]
pub struct ForegroundLimits {
    /// Attempts in all (1: send exactly once).
    pub attempts: u32,
    /// Total time spent waiting between attempts.
    pub max_wait_secs: u64,
    /// Total time, attempts and waits together: an attempt still running then is cut short,
    /// and a retry whose wait would reach it is not made.
    pub timeout: Duration,
}

impl Default for ForegroundLimits {
    fn default() -> ForegroundLimits {
        ForegroundLimits {
            attempts: FOREGROUND_ATTEMPTS,
            max_wait_secs: FOREGROUND_MAX_WAIT_SECS,
            timeout: Duration::from_secs(FOREGROUND_TIMEOUT_SECS),
        }
    }
}

/// How long to wait in the foreground after attempt number `attempts` (1 for the first)
/// failed: what the receiver asked for with `Retry-After` (up to a day), else a short backoff
/// of a second doubling. The outbox's minutes ([`backoff_secs`]) suit a queue, not a person
/// waiting.
pub fn foreground_backoff_secs(attempts: u32, retry_after: Option<u64>) -> u64 {
    match retry_after {
        Some(secs) => secs.min(MAX_RETRY_AFTER_SECS),
        None => 1u64 << attempts.saturating_sub(1).min(10),
    }
}

/// A retry about to be made in the foreground.
#[derive(Debug)]
pub struct Retrying<'a> {
    /// The attempt that failed (1 for the first).
    pub failed_attempt: u32,
    pub outcome: &'a Outcome,
    /// The wait before the next attempt ([`foreground_backoff_secs`]).
    pub wait_secs: u64,
}

/// Which bound ended a foreground send whose last failure would have been retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// `attempts` were made.
    Attempts,
    /// The next attempt's wait (seconds) would have passed `max_wait_secs`.
    MaxWait(u64),
    /// The next attempt's wait (seconds) would have reached the timeout.
    Deadline(u64),
    /// The attempt in flight was cut short by the timeout.
    TimedOut,
}

/// How a foreground send ended.
#[derive(Debug)]
pub struct Foreground {
    /// The last attempt's outcome.
    pub outcome: Outcome,
    pub attempts: u32,
    /// When the last failure was one that is retried but a bound stopped it: which.
    pub stopped: Option<Stopped>,
}

/// Sends a Webmention now, retrying timeouts, 429 and 5xx (the same [`webmention::send`] as
/// the outbox), with [`foreground_backoff_secs`] between attempts, within `limits`. Before
/// each retry `wait` is called and must wait the given time: the command line sleeps there and
/// says so.
pub async fn send_in_foreground<W, F>(
    sender: &Sender,
    source: &str,
    target: &str,
    limits: ForegroundLimits,
    mut wait: W,
) -> Foreground
where
    W: FnMut(Retrying<'_>) -> F,
    F: Future<Output = ()>,
{
    let deadline = Instant::now() + limits.timeout;
    let mut waited = 0u64;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(outcome) = tokio::time::timeout(left, webmention::send(sender, source, target)).await else {
            let reason = format!("no answer within the timeout of {} s", limits.timeout.as_secs());
            let outcome = Outcome::Failed { endpoint: None, status: None, reason, retry: true, retry_after: None };
            return Foreground { outcome, attempts, stopped: Some(Stopped::TimedOut) };
        };
        let Outcome::Failed { retry: true, retry_after, .. } = &outcome else {
            return Foreground { outcome, attempts, stopped: None };
        };
        let wait_secs = foreground_backoff_secs(attempts, *retry_after);
        let stopped = if attempts >= limits.attempts {
            Some(Stopped::Attempts)
        } else if waited.saturating_add(wait_secs) > limits.max_wait_secs {
            Some(Stopped::MaxWait(wait_secs))
        } else if Duration::from_secs(wait_secs) >= deadline.saturating_duration_since(Instant::now()) {
            Some(Stopped::Deadline(wait_secs))
        } else {
            None
        };
        if stopped.is_some() {
            return Foreground { outcome, attempts, stopped };
        }
        waited += wait_secs;
        wait(Retrying { failed_attempt: attempts, outcome: &outcome, wait_secs }).await;
    }
}

impl Notification {
    /// In words, for the Reader.
    pub fn describe(&self) -> String {
        let what = match self.kind {
            Kind::Email
            | Kind::RevocationEmail
            | Kind::NewsletterConfirmation
            | Kind::CredentialNotice
            | Kind::ForgetConfirmation
            | Kind::JoinConfirmation
            | Kind::PrivateLinks => "email",
            Kind::Webmention => "Webmention",
        };
        let error = self.last_error.as_deref().unwrap_or("");
        match self.status {
            Status::Queued if self.attempts == 0 => format!("{what} queued"),
            Status::Queued => format!("{what} retrying ({} attempt(s); {error})", self.attempts),
            Status::Sent => format!("{what} sent"),
            Status::NoEndpoint => "no Webmention endpoint on the post".to_string(),
            Status::Failed => format!("{what} failed: {error}"),
            Status::GaveUp => format!("{what} given up: {error}"),
        }
    }
}

/// The outbox, as the engine sends it.
#[derive(Clone)]
struct Outbox(Notifier);

impl Deliver for Outbox {
    type Queue = queue::Outbox;
    type Row = Notification;
    type Extra = Reached;

    fn key(note: &Notification) -> Key {
        Key { id: note.id, attempts: note.attempts, created_at: note.created_at }
    }

    async fn send(&self, note: Notification) -> StoreResult<Sent<Reached>> {
        let delivery = match note.kind {
            Kind::Webmention => self.0.send_webmention(&note).await,
            Kind::Email | Kind::RevocationEmail => self.0.send_email(&note).await,
            Kind::NewsletterConfirmation => self.0.send_newsletter_confirmation(&note).await,
            Kind::CredentialNotice => self.0.send_credential_notice(&note).await,
            Kind::ForgetConfirmation => self.0.send_forget_confirmation(&note).await,
            Kind::JoinConfirmation => self.0.send_join_confirmation(&note).await,
            Kind::PrivateLinks => self.0.send_private_links(&note).await,
        };
        Ok(match delivery {
            Delivery::Done { status, endpoint, location } => Sent::Done(status.into(), Reached { endpoint, location }),
            Delivery::Fail { error, endpoint } => Sent::Failed(error, Reached { endpoint, location: None }),
            Delivery::Retry { error, after } => Sent::Retry { error, after },
        })
    }

    fn record(conn: &mut SqliteConnection, attempts: Vec<(Attempt, Reached)>, now: i64) -> StoreResult<()> {
        outbox::record(conn, attempts, now)
    }
}

impl Notifier {
    /// The engine of a delivery pass: [`CONCURRENCY`] sends at once, each claimed for
    /// [`LEASE_SECS`] when its turn comes.
    pub(super) fn engine(&self) -> Engine {
        Engine {
            pool: self.pool.clone(),
            clock: self.clock.clone(),
            lease_secs: LEASE_SECS,
            slots: Arc::new(tokio::sync::Semaphore::new(CONCURRENCY)),
            claim_chunk: 1,
            pace: None,
        }
    }

    /// Delivers the notifications `ids` now if they are due (a mail just queued, from the
    /// command line, where no delivery job runs); returns how many were handled. One that
    /// fails stays queued for the delivery job, as any other.
    pub async fn deliver_now(&self, ids: Vec<i64>) -> StoreResult<usize> {
        let now = self.now();
        let due = self.db(move |c| outbox::due_among(c, &ids, now)).await?;
        self.engine().each(&Outbox(self.clone()), due).await
    }

    /// Delivers every notification that is due (up to [`CONCURRENCY`] at once); returns how
    /// many were handled.
    pub async fn deliver_due(&self) -> StoreResult<usize> {
        let now = self.now();
        let due = self.db(move |c| outbox::due(c, now, BATCH)).await?;
        self.engine().each(&Outbox(self.clone()), due).await
    }

    async fn send_webmention(&self, note: &Notification) -> Delivery {
        let (Some(source), Some(target)) = (&note.source, &note.target) else {
            return Delivery::Fail { error: "no source or target".into(), endpoint: None };
        };
        let sender = Sender::new(&self.fetcher, &self.base);
        match webmention::send(&sender, source, target).await {
            Outcome::Sent { endpoint, location, .. } => {
                Delivery::Done { status: Status::Sent, endpoint: Some(endpoint), location }
            }
            Outcome::NoEndpoint => Delivery::Done { status: Status::NoEndpoint, endpoint: None, location: None },
            Outcome::NotATarget { status } => {
                Delivery::Fail { error: webmention::not_a_target(status), endpoint: None }
            }
            Outcome::Failed { reason, retry: true, retry_after, .. } => {
                Delivery::Retry { error: reason, after: retry_after }
            }
            Outcome::Failed { reason, endpoint, .. } => Delivery::Fail { error: reason, endpoint },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_foreground_waits_what_retry_after_asks_or_a_second_doubling() {
        let waits: Vec<u64> = (1..=5).map(|n| foreground_backoff_secs(n, None)).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16]);
        assert_eq!(foreground_backoff_secs(40, None), 1024, "bounded");
        assert_eq!(foreground_backoff_secs(1, Some(1)), 1, "Retry-After: 1 is one second, not a minute");
        assert_eq!(foreground_backoff_secs(3, Some(0)), 0);
        assert_eq!(foreground_backoff_secs(1, Some(u64::MAX)), 24 * 3600, "capped at a day");
    }
}
