//! Notifications, both ways. Out: when a badge is awarded (or revoked) a Webmention from
//! the verification page to the learner's post, and an email with the baked badge, go
//! into a persisted outbox that a supervised job delivers with retries — the award
//! itself never waits ([`outbox`], [`email`]). In: Webmentions to Cairn's pages are queued
//! (`crate::app::mentions`), their sources fetched and checked for a link to the target, and
//! verified ones shown on the badge page ([`mentions`]).
//!
//! Each pass reads the clock once and hands `now` down, so that claiming, leases, retry times
//! and check times all follow from the time it was given.

pub mod email;
pub mod mentions;
pub mod outbox;
mod rate;

use std::sync::Arc;

use diesel::SqliteConnection;

use crate::db::{DbPool, StoreResult};
use crate::email::Mailer;
use crate::net::Fetcher;

pub use crate::app::mentions::{
    MAX_PENDING_MENTIONS, MAX_PENDING_PER_CLIENT, MAX_PENDING_PER_SOURCE, MAX_PENDING_PER_TARGET,
};
pub use crate::db::mentions::{HeldMention, held_for_moderation, verified_for};
pub use crate::db::outbox::{Notification, for_awards};
pub use outbox::{CONCURRENCY, GIVE_UP_AFTER_SECS};
pub use rate::{MENTIONS_PER_MINUTE, RateLimit, limit_key};

/// Queues the award's notifications at the current time, inside the award's transaction: a
/// Webmention from `source` (the verification page) to `evidence`, and the badge email when
/// `email`. A use case that holds its own `now` calls [`crate::db::outbox::enqueue`].
pub fn enqueue(
    conn: &mut SqliteConnection,
    award_id: i64,
    source: &str,
    evidence: Option<&str>,
    email: bool,
) -> StoreResult<()> {
    crate::db::outbox::enqueue(conn, award_id, source, evidence, email, crate::db::now())
}

/// Delivers notifications and verifies received Webmentions.
#[derive(Clone)]
pub struct Notifier {
    pool: DbPool,
    fetcher: Fetcher,
    mailer: Mailer,
    base: String,
    /// Wakes the delivery job (an award or revocation queued something).
    pub wake: Arc<tokio::sync::Notify>,
    /// Wakes the verification job (a Webmention was received).
    pub mentions_wake: Arc<tokio::sync::Notify>,
}

impl Notifier {
    pub fn new(pool: DbPool, fetcher: Fetcher, mailer: Mailer, base: String) -> Notifier {
        Notifier {
            pool,
            fetcher,
            mailer,
            base,
            wake: Arc::new(tokio::sync::Notify::new()),
            mentions_wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        crate::db::run(&self.pool, f).await
    }

    /// Delivers every notification due now; returns how many were handled.
    pub async fn deliver_due(&self) -> StoreResult<usize> {
        self.deliver_due_at(crate::db::now()).await
    }

    /// Verifies pending received Webmentions now; returns how many were settled.
    pub async fn verify_mentions(&self) -> StoreResult<usize> {
        self.verify_mentions_at(crate::db::now()).await
    }

    /// One pass of Webmention verification for the job runner: more when any was settled.
    /// It runs as its own job, so slow or hostile sources never hold up a notification.
    pub async fn verify_pass(&self) -> anyhow::Result<crate::jobs::Pass> {
        Ok(busy_if(self.verify_mentions().await?))
    }

    /// One delivery pass for the job runner: more when any notification was settled.
    pub async fn deliver_pass(&self) -> anyhow::Result<crate::jobs::Pass> {
        Ok(busy_if(self.deliver_due().await?))
    }
}

fn busy_if(done: usize) -> crate::jobs::Pass {
    if done > 0 { crate::jobs::Pass::More } else { crate::jobs::Pass::Idle }
}
