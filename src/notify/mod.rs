//! Notifications, both ways. Out: when a badge is awarded (or revoked) a Webmention from
//! the verification page to the learner's post, and an email with the baked badge, go
//! into a persisted outbox that a supervised job delivers with retries — the award
//! itself never waits ([`outbox`], [`email`]). In: Webmentions to Cairn's pages are queued
//! (`crate::app::mentions`), their sources fetched and checked for a link to the target, and
//! verified ones shown on the badge page ([`mentions`]).
//!
//! Time comes from the notifier's clock (the system clock unless it is given another), read
//! where a moment matters: when a pass picks what is due, when it claims a row (the lease runs
//! from then), and when an outcome is recorded (a retry waits from the receiver's answer, not
//! from the start of a pass that may have lasted minutes). The store and use cases take that
//! `now` as an argument.

pub mod email;
pub mod mentions;
pub mod newsletter;
pub mod outbox;
pub(crate) mod queue;
mod rate;
pub mod webhooks;

use std::sync::Arc;

use diesel::SqliteConnection;

use crate::clock::Clock;
use crate::db::{DbPool, StoreResult};
use crate::email::Mailer;
use crate::net::Fetcher;

pub use crate::db::mentions::{HeldMention, held_for_moderation, verified_for};
pub use crate::db::outbox::{Notification, for_awards};
pub use outbox::{CONCURRENCY, GIVE_UP_AFTER_SECS};
pub use rate::{MENTIONS_PER_MINUTE, RateLimit, limit_key};

/// Delivers notifications and verifies received Webmentions.
#[derive(Clone)]
pub struct Notifier {
    pool: DbPool,
    clock: Clock,
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
            clock: Clock::system(),
            fetcher,
            mailer,
            base,
            wake: Arc::new(tokio::sync::Notify::new()),
            mentions_wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The same notifier, reading the time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Notifier {
        self.clock = clock;
        self
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        crate::db::run(&self.pool, f).await
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;

    #[tokio::test]
    async fn delivery_reads_the_time_from_the_clock_it_was_given() {
        let (dir, mut conn, award) = crate::db::outbox::tests::db_with_award();
        let t = 1_000_000;
        crate::db::outbox::enqueue(&mut conn, award, "https://cairn.example/assertions/abc", None, true, t).unwrap();
        let mut settings = crate::config::Settings::defaults();
        settings.data_dir = dir.path().to_path_buf();
        let pool = crate::db::open(&dir.path().join("cairn.db")).unwrap();
        let fetcher = crate::harvest::fetcher(&settings.harvest, &[], "https://cairn.example").unwrap();
        let mailer = Mailer::new(&settings.mail, dir.path()).unwrap();
        let clock = Arc::new(AtomicI64::new(t - 1));
        let time = clock.clone();
        let notifier = Notifier::new(pool, fetcher, mailer, "https://cairn.example".into())
            .with_clock(Clock::from_fn(move || time.load(Ordering::SeqCst)));

        assert_eq!(notifier.deliver_due().await.unwrap(), 0, "not due before it was queued");
        clock.store(t + 10, Ordering::SeqCst);
        assert_eq!(notifier.deliver_due().await.unwrap(), 1);
        let row = &crate::db::outbox::for_awards(&mut conn, &[award]).unwrap()[0];
        assert_eq!((row.status, row.attempts, row.updated_at), (crate::db::outbox::Status::Sent, 1, t + 10));
        let mails = std::fs::read_dir(dir.path().join("mail")).unwrap().count();
        assert_eq!(mails, 1, "the badge email was written");
    }

    #[tokio::test]
    async fn a_credential_notice_waits_in_the_outbox_and_is_written_when_delivered() {
        let (dir, mut conn, _) = crate::db::outbox::tests::db_with_award();
        let who =
            crate::db::instructors::create(&mut conn, "ada@example.edu", "$argon2id$not-a-real-hash", true, 0).unwrap();
        let t = 1_000_000;
        let note = email::CredentialNote {
            what: email::Credential::Webhook,
            detail: "https://hooks.example/in (id 1)".into(),
            how: "through the API".into(),
        };
        let payload = serde_json::to_string(&note).unwrap();
        let id = crate::db::outbox::enqueue_credential_notice(&mut conn, who.id, &payload, t).unwrap();
        let mut settings = crate::config::Settings::defaults();
        settings.data_dir = dir.path().to_path_buf();
        let pool = crate::db::open(&dir.path().join("cairn.db")).unwrap();
        let fetcher = crate::harvest::fetcher(&settings.harvest, &[], "https://cairn.example").unwrap();
        let mailer = Mailer::new(&settings.mail, dir.path()).unwrap();
        let notifier = Notifier::new(pool, fetcher, mailer, "https://cairn.example".into())
            .with_clock(Clock::from_fn(move || t + 5));

        assert_eq!(notifier.deliver_now(vec![id]).await.unwrap(), 1);
        assert_eq!(notifier.deliver_now(vec![id]).await.unwrap(), 0, "sent once");
        let row: (String, i64) = {
            use crate::db::schema::outbox;
            use diesel::prelude::*;
            outbox::table.find(id).select((outbox::status, outbox::attempts)).first(&mut conn).unwrap()
        };
        assert_eq!(row, ("sent".to_string(), 1));
        let mails: Vec<String> = std::fs::read_dir(dir.path().join("mail"))
            .unwrap()
            .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
            .collect();
        assert_eq!(mails.len(), 1);
        assert!(
            mails[0].contains("A webhook was created") && mails[0].contains("https://hooks.example/in"),
            "{}",
            mails[0]
        );
        assert!(mails[0].contains("at 1970-01-"), "it tells when it was made, not when it was sent: {}", mails[0]);
    }

    #[tokio::test]
    async fn a_forget_confirmation_is_written_with_a_fresh_link_when_it_is_sent() {
        let (dir, mut conn, _) = crate::db::outbox::tests::db_with_award();
        let ada = crate::db::feeds::find_or_create_author(&mut conn, "Ada", Some("ada@example.edu"), 0).unwrap();
        let t = 1_000_000;
        let id = crate::db::outbox::enqueue_forget_confirmation(&mut conn, ada.id, t).unwrap();
        let mut settings = crate::config::Settings::defaults();
        settings.data_dir = dir.path().to_path_buf();
        let pool = crate::db::open(&dir.path().join("cairn.db")).unwrap();
        let fetcher = crate::harvest::fetcher(&settings.harvest, &[], "https://cairn.example").unwrap();
        let mailer = Mailer::new(&settings.mail, dir.path()).unwrap();
        let notifier = Notifier::new(pool, fetcher, mailer, "https://cairn.example".into())
            .with_clock(Clock::from_fn(move || t + 5));

        assert_eq!(notifier.deliver_now(vec![id]).await.unwrap(), 1);
        let mail = std::fs::read_dir(dir.path().join("mail"))
            .unwrap()
            .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
            .next()
            .unwrap()
            .replace("=\r\n", "")
            .replace("=\n", "");
        assert!(mail.contains("To: ada@example.edu"), "{mail}");
        let at = mail.find("https://cairn.example/forget/").unwrap() + "https://cairn.example/forget/".len();
        let token: String = mail[at..].chars().take_while(char::is_ascii_hexdigit).collect();
        assert_eq!(token.len(), 64, "{mail}");
        let hash = crate::tokens::token_hash(&token);
        assert_eq!(crate::db::learners::forget_request(&mut conn, &hash, t + 10).unwrap(), Some(ada.id));
    }
}
