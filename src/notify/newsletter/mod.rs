//! Sending the newsletter: the copies of an issue queued to its readers go out through the
//! engine every queue shares (`notify::queue`), at the configured pace, each issue rendered
//! once per pass ([`mail::Rendered`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use diesel::SqliteConnection;

use super::queue::{Deliver, Engine, Key, Pace, Sent};
use crate::clock::Clock;
use crate::db::newsletter::{self as store, Due};
use crate::db::queue::{self, Attempt, State};
use crate::db::{DbPool, StoreResult};
use crate::email::{MailError, Mailer};

pub mod content;
pub mod mail;

pub use content::*;
pub use mail::*;

/// How long a sender holds a copy it is sending; longer than [`SEND_TIMEOUT`], so a lease never
/// runs out while its send may still complete.
pub const LEASE_SECS: i64 = 60;

/// The longest one copy's SMTP exchange may take before it is abandoned (and retried).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(40);

/// Copies sent at once, over the SMTP connection pool: as many as the pool keeps
/// connections (lettre's default), so no copy waits on a fresh connection. A copy spends most
/// of its time waiting on the mail server, so this, not the CPU, bounds the sending rate.
pub const CONCURRENCY: usize = 10;

/// Copies one pass claims.
const BATCH: i64 = 500;

/// Most copies one claim takes (fewer when the pace is slow, so the lease outlasts the wait).
const CLAIM_MAX: usize = 200;

/// Sends the newsletter copies that are due. Cheap to clone: clones share the pace and the
/// copies in flight.
#[derive(Clone)]
pub struct Sender {
    mailer: Mailer,
    base: String,
    engine: Engine,
}

impl Sender {
    /// A sender of at most `max_per_minute` copies a minute, [`CONCURRENCY`] at once.
    pub fn new(pool: DbPool, mailer: Mailer, base: String, max_per_minute: u32, clock: Clock) -> Sender {
        let engine = Engine {
            pool,
            clock,
            lease_secs: LEASE_SECS,
            // Shared by every pass of this process (the job's and "send now"), so that together
            // they hold at most CONCURRENCY SMTP exchanges.
            slots: Arc::new(tokio::sync::Semaphore::new(CONCURRENCY)),
            // Claimed a few at a time, just before they are sent: a claim's lease must
            // outlast the wait its copies have for their turn.
            claim_chunk: (max_per_minute as usize / 10).clamp(1, CLAIM_MAX),
            pace: Some(Pace::per_minute(max_per_minute)),
        };
        Sender { mailer, base, engine }
    }

    /// Sends the copies that are due, up to [`CONCURRENCY`] at once and at most
    /// `max_per_minute`; returns how many were attempted. Each issue is rendered once for the
    /// pass, and outcomes are recorded in batches.
    pub async fn deliver_due(&self) -> StoreResult<usize> {
        let (pool, now) = (&self.engine.pool, self.engine.clock.now());
        let due = crate::db::run(pool, move |c| store::due(c, now, BATCH)).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut issues: Vec<i64> = due.iter().map(|d| d.issue_id).collect();
        issues.sort_unstable();
        issues.dedup();
        let base = self.base.clone();
        let (secret, issues) = crate::db::run(pool, move |c| {
            let secret = store::secret(c)?;
            let mut map = HashMap::new();
            for id in issues {
                let content = parse_content(&store::issue(c, id)?)?;
                let rendered = Rendered::new(&content, &base).map_err(|e| e.to_string());
                map.insert(id, (content, rendered));
            }
            Ok((secret, map))
        })
        .await?;
        let copies = Copies { sender: self.clone(), secret: Arc::new(secret), issues: Arc::new(issues) };
        self.engine.each(&copies, due).await
    }
}

/// An issue as one pass sends it: its content and its rendering (or why it could not be rendered).
type Prepared = (Content, Result<Rendered, String>);

/// The copies of one pass, as the engine sends them.
#[derive(Clone)]
struct Copies {
    sender: Sender,
    secret: Arc<String>,
    issues: Arc<HashMap<i64, Prepared>>,
}

impl Deliver for Copies {
    type Queue = queue::NewsletterCopies;
    type Row = Due;
    type Extra = ();

    fn key(copy: &Due) -> Key {
        Key { id: copy.id, attempts: copy.attempts, created_at: copy.created_at }
    }

    async fn send(&self, copy: Due) -> StoreResult<Sent<()>> {
        Ok(match self.issues.get(&copy.issue_id) {
            Some((content, Ok(rendered))) => self.send_copy(&copy, content, rendered).await,
            Some((_, Err(e))) => Sent::Retry { error: e.clone(), after: None },
            None => Sent::Failed("the issue is missing".into(), ()),
        })
    }

    fn record(conn: &mut SqliteConnection, attempts: Vec<(Attempt, ())>, now: i64) -> StoreResult<()> {
        let attempts: Vec<Attempt> = attempts.into_iter().map(|(a, ())| a).collect();
        store::settle_attempts(conn, &attempts, now)
    }
}

impl Copies {
    async fn send_copy(&self, copy: &Due, content: &Content, rendered: &Rendered) -> Sent<()> {
        let base = &self.sender.base;
        let token = unsubscribe_token(&self.secret, copy.subscriber_id);
        let (subject, text, html) = rendered.copy(&token);
        let headers = list_headers(base, content, &unsubscribe_url(base, &token), copy.issue_id, copy.subscriber_id);
        let mail = crate::email::Email {
            to: copy.email.clone(),
            subject,
            text,
            html: Some(html),
            attachments: vec![],
            inline: vec![],
        };
        match tokio::time::timeout(SEND_TIMEOUT, self.sender.mailer.send_list(mail, &headers)).await {
            Ok(Ok(())) => Sent::Done(State::Sent, ()),
            // Refused for good: the reader is marked bounced.
            Ok(Err(e @ (MailError::Rejected(_) | MailError::Address(_)))) => Sent::Failed(e.to_string(), ()),
            Ok(Err(e)) => Sent::Retry { error: e.to_string(), after: None },
            Err(_) => Sent::Retry { error: "timed out".into(), after: None },
        }
    }
}
