//! Notifications, both ways. Out: when a badge is awarded (or revoked) a Webmention from
//! the verification page to the learner's post, and an email with the baked badge, go
//! into a persisted outbox that a supervised worker delivers with retries — the award
//! itself never waits. In: Webmentions to Cairn's pages are queued, their sources fetched
//! and checked for a link to the target, and verified ones shown on the badge page.

use std::sync::Arc;

use diesel::prelude::*;

use crate::badges::ob;
use crate::db::schema::{awards, mentions, outbox, tasks};
use crate::db::{DbPool, StoreError, StoreResult};
use crate::email::{Email, Mailer};
use crate::net::{Fetcher, Validators};
use crate::webmention::{self, Outcome};

/// How long delivery is retried before giving up.
pub const GIVE_UP_AFTER_SECS: i64 = 48 * 3600;
/// Notifications delivered at once.
pub const CONCURRENCY: usize = 8;
/// How long a worker holds a notification it is delivering.
const LEASE_SECS: i64 = 300;
/// Most pending received Webmentions; beyond it new ones are refused (429).
pub const MAX_PENDING_MENTIONS: i64 = 1000;

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = outbox)]
pub struct Notification {
    pub id: i64,
    pub kind: String,
    pub award_id: i64,
    pub source: Option<String>,
    pub target: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub endpoint: Option<String>,
    pub location: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Notification {
    /// In words, for the Reader.
    pub fn describe(&self) -> String {
        let what = if self.kind == "email" { "email" } else { "Webmention" };
        match self.status.as_str() {
            "queued" if self.attempts == 0 => format!("{what} queued"),
            "queued" => {
                format!("{what} retrying ({} attempt(s); {})", self.attempts, self.last_error.as_deref().unwrap_or(""))
            }
            "sent" => format!("{what} sent"),
            "no_endpoint" => "no Webmention endpoint on the post".to_string(),
            "failed" => format!("{what} failed: {}", self.last_error.as_deref().unwrap_or("")),
            "gave_up" => format!("{what} given up: {}", self.last_error.as_deref().unwrap_or("")),
            other => other.to_string(),
        }
    }
}

/// Queues the award's notifications, inside the award's transaction.
pub fn enqueue(
    conn: &mut SqliteConnection,
    award_id: i64,
    source: &str,
    evidence: Option<&str>,
    email: bool,
) -> StoreResult<()> {
    let now = crate::db::now();
    if let Some(target) = evidence {
        diesel::insert_into(outbox::table)
            .values((
                outbox::kind.eq("webmention"),
                outbox::award_id.eq(award_id),
                outbox::source.eq(source),
                outbox::target.eq(target),
                outbox::next_attempt_at.eq(now),
                outbox::created_at.eq(now),
                outbox::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    if email {
        diesel::insert_into(outbox::table)
            .values((
                outbox::kind.eq("email"),
                outbox::award_id.eq(award_id),
                outbox::next_attempt_at.eq(now),
                outbox::created_at.eq(now),
                outbox::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Notifications of the given awards.
pub fn for_awards(conn: &mut SqliteConnection, award_ids: &[i64]) -> StoreResult<Vec<Notification>> {
    outbox::table
        .filter(outbox::award_id.eq_any(award_ids))
        .order(outbox::id)
        .select(Notification::as_select())
        .load(conn)
        .map_err(Into::into)
}

/// Delivers notifications and verifies received Webmentions.
#[derive(Clone)]
pub struct Notifier {
    pool: DbPool,
    fetcher: Fetcher,
    mailer: Mailer,
    base: String,
    /// Wakes the delivery loop (an award or revocation queued something).
    pub wake: Arc<tokio::sync::Notify>,
    /// Wakes the verification loop (a Webmention was received).
    pub mentions_wake: Arc<tokio::sync::Notify>,
}

/// Received Webmentions verified at once: each holds one outbound fetch (bounded in time and
/// size by the fetcher) and one blocking scan.
const VERIFY_AT_ONCE: usize = 4;

enum Delivery {
    Done { status: &'static str, endpoint: Option<String>, location: Option<String> },
    Retry { error: String, after: Option<u64> },
    Fail { error: String, endpoint: Option<String> },
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
        f: impl FnOnce(&mut diesel::SqliteConnection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        crate::db::run(&self.pool, f).await
    }

    /// Delivers every notification that is due; returns how many were handled.
    /// Delivers every notification that is due (up to [`CONCURRENCY`] at once); returns
    /// how many were handled.
    pub async fn deliver_due(&self) -> StoreResult<usize> {
        let now = crate::db::now();
        let due: Vec<Notification> = self
            .db(move |c| {
                outbox::table
                    .filter(outbox::status.eq("queued").and(outbox::next_attempt_at.le(now)))
                    .order(outbox::next_attempt_at)
                    .limit(200)
                    .select(Notification::as_select())
                    .load(c)
                    .map_err(Into::into)
            })
            .await?;
        let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut set = tokio::task::JoinSet::new();
        let mut n = 0;
        for note in due {
            // Claim the row with a lease, so that two workers never send the same thing; if
            // this process dies while sending, the lease runs out and it is retried.
            let id = note.id;
            let claimed = self
                .db(move |c| {
                    let now = crate::db::now();
                    diesel::update(outbox::table.filter(
                        outbox::id.eq(id).and(outbox::status.eq("queued")).and(outbox::next_attempt_at.le(now)),
                    ))
                    .set(outbox::next_attempt_at.eq(now + LEASE_SECS))
                    .execute(c)
                    .map_err(Into::into)
                })
                .await?;
            if claimed == 0 {
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
                Ok(Err(e)) => tracing::error!(error = %e, "recording a delivery failed"),
                Err(e) => tracing::error!(error = %e, "a delivery task failed"),
                Ok(Ok(())) => {}
            }
        }
        Ok(n)
    }

    /// Delivers one claimed notification and records the outcome.
    async fn deliver_one(&self, note: Notification) -> StoreResult<()> {
        let delivery = match note.kind.as_str() {
            "webmention" => self.send_webmention(&note).await,
            _ => self.send_email(&note).await,
        };
        let id = note.id;
        let (attempts, created) = (note.attempts + 1, note.created_at);
        self.db(move |c| {
            let now = crate::db::now();
            let target = outbox::table.find(id);
            match delivery {
                Delivery::Done { status, endpoint, location } => diesel::update(target)
                    .set((
                        outbox::status.eq(status),
                        outbox::attempts.eq(attempts),
                        outbox::endpoint.eq(endpoint),
                        outbox::location.eq(location),
                        outbox::last_error.eq(None::<String>),
                        outbox::updated_at.eq(now),
                    ))
                    .execute(c)?,
                Delivery::Fail { error, endpoint } => diesel::update(target)
                    .set((
                        outbox::status.eq("failed"),
                        outbox::attempts.eq(attempts),
                        outbox::endpoint.eq(endpoint),
                        outbox::last_error.eq(error),
                        outbox::updated_at.eq(now),
                    ))
                    .execute(c)?,
                Delivery::Retry { error, after } => {
                    let backoff = (60i64 << (attempts - 1).clamp(0, 12)).min(6 * 3600);
                    let wait = backoff.max(after.unwrap_or(0).min(24 * 3600) as i64);
                    let status = if now + wait - created > GIVE_UP_AFTER_SECS { "gave_up" } else { "queued" };
                    diesel::update(target)
                        .set((
                            outbox::status.eq(status),
                            outbox::attempts.eq(attempts),
                            outbox::next_attempt_at.eq(now + wait),
                            outbox::last_error.eq(error),
                            outbox::updated_at.eq(now),
                        ))
                        .execute(c)?
                }
            };
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn send_webmention(&self, note: &Notification) -> Delivery {
        let (Some(source), Some(target)) = (&note.source, &note.target) else {
            return Delivery::Fail { error: "no source or target".into(), endpoint: None };
        };
        match webmention::send(&self.fetcher, source, target).await {
            Outcome::Sent { endpoint, location, .. } => {
                Delivery::Done { status: "sent", endpoint: Some(endpoint), location }
            }
            Outcome::NoEndpoint => Delivery::Done { status: "no_endpoint", endpoint: None, location: None },
            Outcome::Failed { reason, retry: true, retry_after, .. } => {
                Delivery::Retry { error: reason, after: retry_after }
            }
            Outcome::Failed { reason, endpoint, .. } => Delivery::Fail { error: reason, endpoint },
        }
    }

    async fn send_email(&self, note: &Notification) -> Delivery {
        let id = note.award_id;
        let base = self.base.clone();
        let loaded = self
            .db(move |c| {
                let (email, name, public_id, title, png): (String, Option<String>, String, String, Vec<u8>) =
                    awards::table
                        .inner_join(tasks::table)
                        .filter(awards::id.eq(id))
                        .select((
                            awards::recipient_email,
                            awards::recipient_name,
                            awards::public_id,
                            tasks::title,
                            awards::baked_png,
                        ))
                        .first(c)?;
                let issuer = crate::db::institution::get(c)?.name;
                Ok((email, name, public_id, title, png, issuer))
            })
            .await;
        let (to, name, public_id, title, png, issuer) = match loaded {
            Ok(v) => v,
            Err(e) => return Delivery::Fail { error: e.to_string(), endpoint: None },
        };
        let url = ob::assertion_url(&base, &public_id);
        let hello = name.map(|n| format!("Hello {n},")).unwrap_or_else(|| "Hello,".into());
        let text = format!(
            "{hello}\n\n{issuer} has awarded you the badge \u{201c}{title}\u{201d}.\n\nVerify it, or share it: {url}\n\n\
             The attached image carries the credential itself (an Open Badge); you can add it to a badge backpack.\n"
        );
        let esc = crate::badges::art::xml_escape;
        let html = format!(
            "<p>{}</p><p>{} has awarded you the badge <strong>{}</strong>.</p><p><a href=\"{}\">Verify it, or share it</a>.</p>\
             <p>The attached image carries the credential itself (an Open Badge); you can add it to a badge backpack.</p>",
            esc(&hello),
            esc(&issuer),
            esc(&title),
            esc(&url)
        );
        let email = Email {
            to,
            subject: format!("You earned the badge \u{201c}{title}\u{201d}"),
            text,
            html: Some(html),
            attachments: vec![(format!("badge-{public_id}.png"), "image/png".into(), png)],
        };
        match self.mailer.send(email).await {
            Ok(()) => Delivery::Done { status: "sent", endpoint: None, location: None },
            Err(crate::email::MailError::Address(a)) => {
                Delivery::Fail { error: format!("bad address {a}"), endpoint: None }
            }
            Err(e) => Delivery::Retry { error: e.to_string(), after: None },
        }
    }

    /// Verifies pending received Webmentions (the source must link to the target); returns how
    /// many were settled.
    pub async fn verify_mentions(&self) -> StoreResult<usize> {
        let pending: Vec<(i64, String, String)> = self
            .db(|c| {
                mentions::table
                    .filter(mentions::status.eq("pending"))
                    .order(mentions::received_at)
                    .limit(20)
                    .select((mentions::id, mentions::source, mentions::target))
                    .load(c)
                    .map_err(Into::into)
            })
            .await?;
        let mut done = 0;
        // A few at a time, so one slow source delays only its own slot.
        let mut pending = pending.into_iter();
        let mut set = tokio::task::JoinSet::new();
        loop {
            while set.len() < VERIFY_AT_ONCE {
                let Some((id, source, target)) = pending.next() else { break };
                let me = self.clone();
                set.spawn(async move { me.verify_one(id, source, target).await });
            }
            match set.join_next().await {
                Some(Ok(Err(e))) => tracing::error!(error = %e, "storing a Webmention's verification failed"),
                Some(Err(e)) => tracing::error!(error = %e, "a Webmention verification stopped unexpectedly"),
                Some(Ok(Ok(()))) => done += 1,
                None => break,
            }
        }
        Ok(done)
    }

    async fn verify_one(&self, id: i64, source: String, target: String) -> StoreResult<()> {
        let (status, reason) = match self.fetcher.get(&source, &Validators::default(), "text/html, */*;q=0.5").await {
            Ok(f) if f.status.as_u16() == 410 => ("deleted", Some("the source is gone (410)".to_string())),
            Ok(f) if f.status.is_success() => {
                // Scanning a hostile page is CPU work: off the runtime.
                let (body, at, t) = (f.body, f.final_url, target.clone());
                let scan = move || crate::webmention::links_to(&crate::harvest::parse::decode(&body, None), &at, &t);
                if tokio::task::spawn_blocking(scan).await.unwrap_or(false) {
                    ("verified", None)
                } else {
                    ("rejected", Some("the source does not link to the target".to_string()))
                }
            }
            Ok(f) => ("rejected", Some(format!("the source answered {}", f.status.as_u16()))),
            Err(e) => ("rejected", Some(e.to_string())),
        };
        self.db(move |c| {
            diesel::update(mentions::table.find(id))
                .set((
                    mentions::status.eq(status),
                    mentions::reason.eq(reason),
                    mentions::checked_at.eq(crate::db::now()),
                ))
                .execute(c)?;
            Ok(())
        })
        .await
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

/// Webmentions a client address may send per minute.
pub const MENTIONS_PER_MINUTE: u32 = 30;

/// Counts requests per client address in fixed windows (a minute unless said otherwise).
#[derive(Debug)]
pub struct RateLimit {
    per_window: u32,
    window_secs: i64,
    windows: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (i64, u32)>>,
}

/// The key a per-client limit counts under: an IPv4 address, or an IPv6 address's /64, which
/// one client typically holds whole.
pub fn limit_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip.to_canonical() {
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            std::net::IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Client addresses a [`RateLimit`] remembers at most; past it, finished windows are dropped,
/// then the oldest half.
const RATE_ENTRIES: usize = 10_000;

impl RateLimit {
    pub fn new(per_minute: u32) -> RateLimit {
        Self::per_window(per_minute, 60)
    }

    pub fn per_window(limit: u32, window_secs: i64) -> RateLimit {
        RateLimit { per_window: limit, window_secs: window_secs.max(1), windows: Default::default() }
    }

    /// True when `addr` may make another request now.
    pub fn allow(&self, addr: Option<std::net::IpAddr>, now: i64) -> bool {
        self.check(addr, now).is_ok()
    }

    /// Counts a request; `Err(seconds)` until the window ends when the limit is passed.
    pub fn check(&self, addr: Option<std::net::IpAddr>, now: i64) -> Result<(), u64> {
        let Some(addr) = addr.map(limit_key) else { return Ok(()) };
        let window = self.window_secs;
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() >= RATE_ENTRIES && !w.contains_key(&addr) {
            w.retain(|_, (start, _)| now - *start < window);
            if w.len() >= RATE_ENTRIES {
                let mut starts: Vec<i64> = w.values().map(|(s, _)| *s).collect();
                starts.sort_unstable();
                let cut = starts[starts.len() / 2];
                w.retain(|_, (start, _)| *start > cut);
            }
        }
        let e = w.entry(addr).or_insert((now, 0));
        if now - e.0 >= window {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
        if e.1 <= self.per_window { Ok(()) } else { Err((e.0 + window - now).max(1) as u64) }
    }
}

/// Pending received Webmentions one source page may have; it mentions few of our pages.
pub const MAX_PENDING_PER_SOURCE: i64 = 10;
/// Pending received Webmentions one of our pages may have.
pub const MAX_PENDING_PER_TARGET: i64 = 50;
/// Pending received Webmentions one client address may have, so that no one fills the global cap.
pub const MAX_PENDING_PER_CLIENT: i64 = 20;

/// Whether a received Webmention may be shown publicly.
pub mod moderation {
    /// The source is on the learner's own site: shown once verified.
    pub const OWN_SITE: &str = "own_site";
    /// Waiting for an instructor on /admin/mentions.
    pub const PENDING: &str = "pending";
    pub const APPROVED: &str = "approved";
    pub const REJECTED: &str = "rejected";
}

fn origin_of(url: &str) -> Option<url::Origin> {
    url::Url::parse(url).ok().map(|u| u.origin()).filter(|o| o.is_tuple())
}

/// True when `source` is on the site of the learner whose award `target` is: the origin of
/// the award's evidence, or of one of the learner's feeds or their site.
fn on_learners_site(conn: &mut SqliteConnection, base: &str, source: &url::Url, target: &str) -> StoreResult<bool> {
    use crate::db::schema::feeds;
    let Some(public_id) = target.strip_prefix(&format!("{base}/assertions/")).map(|r| r.split(['/', '?', '#']).next())
    else {
        return Ok(false);
    };
    let Some(public_id) = public_id.filter(|p| !p.is_empty()) else { return Ok(false) };
    let award: Option<(Option<String>, Option<i64>)> = awards::table
        .filter(awards::public_id.eq(public_id))
        .select((awards::evidence_url, awards::author_id))
        .first(conn)
        .optional()?;
    let Some((evidence, author)) = award else { return Ok(false) };
    let mut sites: Vec<String> = evidence.into_iter().collect();
    if let Some(author) = author {
        let rows: Vec<(String, Option<String>)> = feeds::table
            .filter(feeds::author_id.eq(author))
            .filter(feeds::status.ne(crate::db::feeds::FeedStatus::Pending))
            .select((feeds::url, feeds::site_url))
            .load(conn)?;
        for (url, site) in rows {
            sites.push(url);
            sites.extend(site);
        }
    }
    let source = source.origin();
    Ok(sites.iter().filter_map(|s| origin_of(s)).any(|o| o == source))
}

/// Receives a Webmention from `client`: checks it, applies the caps and queues it for
/// verification, noting whether it may be shown without an instructor's approval.
pub fn receive(
    conn: &mut SqliteConnection,
    base: &str,
    source: &str,
    target: &str,
    client: Option<std::net::IpAddr>,
) -> StoreResult<()> {
    let parse = |field: &'static str, v: &str| -> StoreResult<url::Url> {
        match url::Url::parse(v.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && v.len() <= 2048 => Ok(u),
            _ => Err(StoreError::field(field, format!("{field} must be an http(s) URL"))),
        }
    };
    let s = parse("source", source)?;
    let t = parse("target", target)?;
    if s == t {
        return Err(StoreError::field("source", "the source and target must differ"));
    }
    let ours =
        t.as_str().starts_with(&format!("{base}/assertions/")) || t.as_str().starts_with(&format!("{base}/courses/"));
    if !ours {
        return Err(StoreError::field("target", "the target is not a page of this site that accepts Webmentions"));
    }
    let client = client.map(|c| limit_key(c).to_string());
    crate::db::write_tx(conn, |conn| {
        let pending = || mentions::table.filter(mentions::status.eq("pending"));
        let full = |what: &str| StoreError::Busy(format!("too many Webmentions {what} are waiting; try again later"));
        if pending().count().get_result::<i64>(conn)? >= MAX_PENDING_MENTIONS {
            return Err(full("in all"));
        }
        if pending().filter(mentions::source.eq(s.as_str())).count().get_result::<i64>(conn)? >= MAX_PENDING_PER_SOURCE
        {
            return Err(full("from this source"));
        }
        if pending().filter(mentions::target.eq(t.as_str())).count().get_result::<i64>(conn)? >= MAX_PENDING_PER_TARGET
        {
            return Err(full("for this target"));
        }
        if let Some(c) = &client
            && pending().filter(mentions::client.eq(c)).count().get_result::<i64>(conn)? >= MAX_PENDING_PER_CLIENT
        {
            return Err(full("from your address"));
        }
        let shown =
            if on_learners_site(conn, base, &s, t.as_str())? { moderation::OWN_SITE } else { moderation::PENDING };
        diesel::replace_into(mentions::table)
            .values((
                mentions::source.eq(s.as_str()),
                mentions::target.eq(t.as_str()),
                mentions::status.eq("pending"),
                mentions::received_at.eq(crate::db::now()),
                mentions::client.eq(&client),
                mentions::moderation.eq(shown),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Verified mentions of a page that may be shown publicly: from the learner's own site, or
/// approved by an instructor.
pub fn verified_for(conn: &mut SqliteConnection, target: &str) -> StoreResult<Vec<String>> {
    mentions::table
        .filter(mentions::target.eq(target).and(mentions::status.eq("verified")))
        .filter(mentions::moderation.eq_any([moderation::OWN_SITE, moderation::APPROVED]))
        .order(mentions::checked_at.desc())
        .select(mentions::source)
        .load(conn)
        .map_err(Into::into)
}

/// A received Webmention waiting for an instructor.
#[derive(Debug, Clone, Queryable)]
pub struct HeldMention {
    pub id: i64,
    pub source: String,
    pub target: String,
    pub status: String,
    pub received_at: i64,
}

/// Mentions from outside the learners' sites, not yet approved or rejected, newest first.
pub fn held_for_moderation(conn: &mut SqliteConnection, limit: i64) -> StoreResult<Vec<HeldMention>> {
    mentions::table
        .filter(mentions::moderation.eq(moderation::PENDING))
        .filter(mentions::status.eq_any(["pending", "verified"]))
        .order(mentions::received_at.desc())
        .limit(limit)
        .select((mentions::id, mentions::source, mentions::target, mentions::status, mentions::received_at))
        .load(conn)
        .map_err(Into::into)
}

/// Approves (shown once verified) or rejects (never shown) a held mention.
pub fn moderate(conn: &mut SqliteConnection, id: i64, approve: bool) -> StoreResult<()> {
    let decision = if approve { moderation::APPROVED } else { moderation::REJECTED };
    let n = diesel::update(mentions::table.find(id)).set(mentions::moderation.eq(decision)).execute(conn)?;
    if n == 0 { Err(StoreError::NotFound("mention")) } else { Ok(()) }
}
