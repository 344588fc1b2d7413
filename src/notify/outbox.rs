//! Delivering queued notifications: claiming what is due, sending it (a Webmention here, the
//! email in [`super::email`]) and recording the outcome with its retry time.

use std::sync::Arc;

use super::Notifier;
use crate::db::outbox::{self, Kind, Notification, Settled, Status};
use crate::db::{StoreError, StoreResult};
use crate::webmention::{self, Outcome};

/// How long delivery is retried before giving up.
pub const GIVE_UP_AFTER_SECS: i64 = 48 * 3600;
/// Notifications delivered at once.
pub const CONCURRENCY: usize = 8;
/// How long a worker holds a notification it is delivering.
pub const LEASE_SECS: i64 = 300;
/// Due notifications one pass looks at.
const BATCH: i64 = 200;
/// Longest wait between attempts, whatever the backoff says.
const MAX_BACKOFF_SECS: i64 = 6 * 3600;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER_SECS: u64 = 24 * 3600;

/// How sending went, before it is stored.
pub(super) enum Delivery {
    Done { status: Status, endpoint: Option<String>, location: Option<String> },
    Retry { error: String, after: Option<u64> },
    Fail { error: String, endpoint: Option<String> },
}

/// When attempt number `attempts` (1 for the first) failed at `now` and may be retried: the
/// next attempt time (doubling from a minute, at most six hours, at least what the receiver
/// asked for with `Retry-After`), or [`Status::GaveUp`] once that would pass
/// [`GIVE_UP_AFTER_SECS`] from `created_at`.
pub fn retry_schedule(attempts: i64, retry_after: Option<u64>, created_at: i64, now: i64) -> (Status, i64) {
    let backoff = (60i64 << (attempts - 1).clamp(0, 12)).min(MAX_BACKOFF_SECS);
    let wait = backoff.max(retry_after.unwrap_or(0).min(MAX_RETRY_AFTER_SECS) as i64);
    let status = if now + wait - created_at > GIVE_UP_AFTER_SECS { Status::GaveUp } else { Status::Queued };
    (status, now + wait)
}

impl Notification {
    /// In words, for the Reader.
    pub fn describe(&self) -> String {
        let what = match self.kind {
            Kind::Email => "email",
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

impl Notifier {
    /// Delivers every notification that is due (up to [`CONCURRENCY`] at once); returns how
    /// many were handled.
    pub async fn deliver_due(&self) -> StoreResult<usize> {
        let now = self.now();
        let due = self.db(move |c| outbox::due(c, now, BATCH)).await?;
        let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut set = tokio::task::JoinSet::new();
        let mut n = 0;
        for note in due {
            // The lease runs from the claim: the pass may have waited for a free slot.
            let (id, at) = (note.id, self.now());
            if !self.db(move |c| outbox::claim(c, id, at, LEASE_SECS)).await? {
                continue;
            }
            n += 1;
            let permit = limit.clone().acquire_owned().await.map_err(|e| StoreError::Internal(e.into()))?;
            let me = self.clone();
            set.spawn(async move {
                let result = me.deliver_one(note).await;
                drop(permit);
                result
            });
        }
        while let Some(done) = set.join_next().await {
            match done {
                Ok(Err(e)) => {
                    tracing::error!(error = format!("{:#}", anyhow::Error::new(e)), "recording a delivery failed")
                }
                Err(e) => tracing::error!(error = %e, "a delivery task failed"),
                Ok(Ok(())) => {}
            }
        }
        Ok(n)
    }

    /// Delivers one claimed notification and records the outcome.
    async fn deliver_one(&self, note: Notification) -> StoreResult<()> {
        let delivery = match note.kind {
            Kind::Webmention => self.send_webmention(&note).await,
            Kind::Email => self.send_email(&note).await,
        };
        let now = self.now();
        let (id, attempts) = (note.id, note.attempts + 1);
        let settled = match delivery {
            Delivery::Done { status, endpoint, location } => Settled::Done { status, endpoint, location },
            Delivery::Fail { error, endpoint } => Settled::Failed { error, endpoint },
            Delivery::Retry { error, after } => {
                let (status, next_attempt_at) = retry_schedule(attempts, after, note.created_at, now);
                Settled::Retry { status, error, next_attempt_at }
            }
        };
        self.db(move |c| outbox::settle(c, id, attempts, settled, now)).await
    }

    async fn send_webmention(&self, note: &Notification) -> Delivery {
        let (Some(source), Some(target)) = (&note.source, &note.target) else {
            return Delivery::Fail { error: "no source or target".into(), endpoint: None };
        };
        match webmention::send(&self.fetcher, source, target).await {
            Outcome::Sent { endpoint, location, .. } => {
                Delivery::Done { status: Status::Sent, endpoint: Some(endpoint), location }
            }
            Outcome::NoEndpoint => Delivery::Done { status: Status::NoEndpoint, endpoint: None, location: None },
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
    fn retries_back_off_from_a_minute_honour_retry_after_and_give_up_after_two_days() {
        let created = 1_000_000;
        assert_eq!(retry_schedule(1, None, created, created), (Status::Queued, created + 60));
        assert_eq!(retry_schedule(3, None, created, created + 10), (Status::Queued, created + 10 + 240));
        assert_eq!(retry_schedule(30, None, created, created), (Status::Queued, created + MAX_BACKOFF_SECS));
        assert_eq!(retry_schedule(1, Some(120), created, created), (Status::Queued, created + 120));
        assert_eq!(retry_schedule(1, Some(u64::MAX), created, created).1, created + 24 * 3600, "Retry-After capped");
        let late = created + GIVE_UP_AFTER_SECS - 30;
        assert_eq!(retry_schedule(1, None, created, late), (Status::GaveUp, late + 60));
    }
}
