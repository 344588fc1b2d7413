//! The newsletter's job: building each course's issue when its local hour comes, and sending
//! what is queued.

use std::sync::Arc;

use super::*;
use crate::clock::Clock;
use crate::config::NewsletterSettings;
use crate::db::newsletter as store;
use crate::db::{DbPool, StoreResult};
use crate::email::Mailer;
use crate::notify::newsletter::Sender;

/// Builds issues on schedule and sends them. Cheap to clone.
#[derive(Clone)]
pub struct Newsletter {
    pool: DbPool,
    base: String,
    settings: NewsletterSettings,
    clock: Clock,
    sender: Sender,
    /// Wakes the sender (an issue was queued).
    pub wake: Arc<tokio::sync::Notify>,
}

impl Newsletter {
    pub fn new(pool: DbPool, mailer: Mailer, base: String, settings: NewsletterSettings) -> Newsletter {
        Newsletter::with_clock(pool, mailer, base, settings, Clock::system())
    }

    /// The same, reading the time from `clock`.
    pub fn with_clock(
        pool: DbPool,
        mailer: Mailer,
        base: String,
        settings: NewsletterSettings,
        clock: Clock,
    ) -> Newsletter {
        let sender = Sender::new(pool.clone(), mailer, base.clone(), settings.max_per_minute, clock.clone());
        Newsletter { pool, base, settings, clock, sender, wake: Arc::new(tokio::sync::Notify::new()) }
    }

    /// Builds the day's issue of every course whose local hour has reached `[newsletter] hour`
    /// and that has none for its local date yet. A course whose first reader arrived that day
    /// waits for the next: its first issue goes out on the day it appears only when the
    /// instructor asks ("Send now").
    pub async fn schedule(&self, now: i64) -> StoreResult<usize> {
        let (hour, base) = (self.settings.hour, self.base.clone());
        let built = crate::db::run(&self.pool, move |c| {
            let mut n = 0;
            for (course, zone) in store::courses_with_readers(c)? {
                let (date, local_hour) = local_day(&zone, now);
                if local_hour < hour || store::issue_on(c, course, &date)?.is_some() {
                    continue;
                }
                if first_reader_day(c, course, &zone)?.as_deref() == Some(date.as_str()) {
                    continue;
                }
                if matches!(build_issue(c, course, &date, &base, now)?, Built::Queued { .. }) {
                    n += 1;
                }
            }
            Ok(n)
        })
        .await?;
        Ok(built)
    }

    /// One pass for the job runner: schedule, then send what is due.
    pub async fn pass(&self) -> anyhow::Result<crate::jobs::Pass> {
        if self.settings.enabled {
            self.schedule(self.clock.now()).await?;
        }
        let sent = self.deliver_due().await?;
        Ok(if sent > 0 { crate::jobs::Pass::More } else { crate::jobs::Pass::Idle })
    }

    /// Sends the copies that are due ([`Sender::deliver_due`]); returns how many were attempted.
    pub async fn deliver_due(&self) -> StoreResult<usize> {
        self.sender.deliver_due().await
    }

    /// The time by this newsletter's clock (the application's).
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The schedule and pace it runs with.
    pub fn settings(&self) -> NewsletterSettings {
        self.settings
    }

    /// Builds and sends the course's issue for a local date now, unless that day's issue
    /// already went out ([`send_requested`]), then sends every copy that is due; for the
    /// command line.
    pub async fn send_now(&self, course_id: i64, date: &str, now: i64) -> StoreResult<Built> {
        let (date, base) = (date.to_string(), self.base.clone());
        let built = crate::db::run(&self.pool, move |c| send_requested(c, course_id, &date, &base, now)).await?;
        while self.deliver_due().await? > 0 {}
        Ok(built)
    }
}
