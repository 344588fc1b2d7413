//! The demo blogs while `cairn serve --demo` runs: subscribing the demo learners at this
//! server's address and harvesting them at start-up, publishing a new post now and then, and
//! checking the Webmentions the blogs receive (the source is fetched under the outbound
//! policy, as for the Webmentions Cairn itself receives).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use diesel::SqliteConnection;
use tokio::sync::Notify;

use super::blogs;
use crate::db::demo::{self as store, BLOGS_PATH, Learner, MentionStatus, PendingMention};
use crate::db::feeds::{self, Feed, FeedStatus, NewFeed};
use crate::db::{self, DbPool, StoreResult};
use crate::harvest::Harvester;
use crate::jobs::Pass;
use crate::net::Validators;

/// Pending mentions one pass checks.
const BATCH: i64 = 20;
/// Most mentions waiting to be checked in all; beyond it new ones are refused.
pub const MAX_PENDING: i64 = 200;
/// Most mentions one demo post keeps.
pub const MAX_PER_POST: i64 = 50;
/// Posts the demo blogs hold at most: a demo left running stops publishing there, so it never
/// fills the disk.
pub const MAX_POSTS: i64 = 2000;
/// Longest source address accepted.
pub const MAX_URL_LEN: usize = 2048;

/// The demo blogs of a running server.
#[derive(Clone)]
pub struct DemoBlogs {
    pool: DbPool,
    harvester: Harvester,
    base_url: String,
    post_every_secs: i64,
    /// Wakes the check of received mentions.
    pub wake: Arc<Notify>,
    subscribed: Arc<AtomicBool>,
}

impl DemoBlogs {
    pub fn new(pool: DbPool, harvester: Harvester, base_url: &str, post_every_secs: u64) -> DemoBlogs {
        DemoBlogs {
            pool,
            harvester,
            base_url: base_url.trim_end_matches('/').to_string(),
            post_every_secs: i64::try_from(post_every_secs).unwrap_or(i64::MAX),
            wake: Arc::new(Notify::new()),
            subscribed: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// A blog's home page.
    pub fn blog_url(&self, slug: &str) -> String {
        blog_url(&self.base_url, slug)
    }

    /// A post's page.
    pub fn post_url(&self, blog: &str, post: &str) -> String {
        format!("{}{post}/", self.blog_url(blog))
    }

    pub fn feed_url(&self, l: &Learner) -> String {
        format!("{}{}", self.blog_url(&l.slug), l.format.file())
    }

    /// Subscribes every demo learner (confirmed) at this server's address and harvests their
    /// feeds once; returns the posts harvested.
    pub async fn subscribe_and_harvest(&self) -> anyhow::Result<i64> {
        let (base, now) = (self.base_url.clone(), self.harvester.clock().now());
        let feeds = db::run(&self.pool, move |c| subscribe_all(c, &base, now)).await?;
        let summary = self.harvester.poll_all(feeds, &|_, _| {}).await?;
        Ok(summary.added)
    }

    /// The demo job's pass: the first subscribes and harvests the learners; each later one
    /// publishes a post when one is due and harvests it at once.
    pub async fn pass(&self) -> anyhow::Result<Pass> {
        if !self.subscribed.load(Ordering::Acquire) {
            let added = self.subscribe_and_harvest().await?;
            self.subscribed.store(true, Ordering::Release);
            tracing::info!(posts = added, "demo learners subscribed and harvested");
            return Ok(Pass::Idle);
        }
        let (every, now, base) = (self.post_every_secs, self.harvester.clock().now(), self.base_url.clone());
        let due = db::run(&self.pool, move |c| publish_due(c, &base, every, now)).await?;
        if let Some(feed) = due {
            let s = self.harvester.poll_all(vec![feed], &|_, _| {}).await?;
            tracing::info!(added = s.added, "a demo learner published a post");
        }
        Ok(Pass::Idle)
    }

    /// Checks the pending mentions the demo blogs received.
    pub async fn verify_pass(&self) -> anyhow::Result<Pass> {
        let pending = db::run(&self.pool, |c| store::pending_mentions(c, BATCH)).await?;
        if pending.is_empty() {
            return Ok(Pass::Idle);
        }
        for m in pending {
            self.verify_one(m).await?;
        }
        Ok(Pass::More)
    }

    async fn verify_one(&self, m: PendingMention) -> StoreResult<()> {
        let target = self.post_url(&m.blog, &m.post);
        let fetched = self.harvester.fetcher().get(&m.source, &Validators::default(), "text/html, */*;q=0.5").await;
        let (status, title, reason) = match fetched {
            Ok(f) if f.status.is_success() => {
                let (body, at) = (f.body, f.final_url);
                // Reading a hostile page is CPU work: off the runtime.
                let scan = move || {
                    let html = crate::html::decode::decode(&body, None);
                    (crate::webmention::links_to(&html, &at, &target), badge_title(&html))
                };
                match tokio::task::spawn_blocking(scan).await {
                    Ok((true, title)) => (MentionStatus::Verified, title, None),
                    Ok((false, _)) => {
                        (MentionStatus::Rejected, None, Some("the source does not link to the post".into()))
                    }
                    Err(_) => (MentionStatus::Rejected, None, Some("the source could not be read".into())),
                }
            }
            Ok(f) => (MentionStatus::Rejected, None, Some(format!("the source answered {}", f.status.as_u16()))),
            Err(e) => (MentionStatus::Rejected, None, Some(e.to_string())),
        };
        let (id, now) = (m.id, self.harvester.clock().now());
        db::run(&self.pool, move |c| store::settle_mention(c, id, status, title.as_deref(), reason.as_deref(), now))
            .await
    }
}

pub fn blog_url(base: &str, slug: &str) -> String {
    format!("{}{BLOGS_PATH}{slug}/", base.trim_end_matches('/'))
}

/// The badge a Cairn verification page is about: the title its oEmbed link carries.
fn badge_title(html: &str) -> Option<String> {
    crate::html::tokenize::start_tags(html)
        .filter(|t| t.name == "link")
        .find(|t| {
            t.attr("rel").is_some_and(|r| r.split_ascii_whitespace().any(|r| r.eq_ignore_ascii_case("alternate")))
                && t.attr("type").is_some_and(|ty| ty.eq_ignore_ascii_case("application/json+oembed"))
        })
        .and_then(|t| t.attr("title").map(|s| s.trim().chars().take(200).collect::<String>()))
        .filter(|s| !s.is_empty())
}

/// Subscribes each demo learner, confirmed, with the feed at `base` (a feed stored under an
/// earlier address, when the port changed, is moved); returns their feeds.
pub fn subscribe_all(conn: &mut SqliteConnection, base: &str, now: i64) -> StoreResult<Vec<Feed>> {
    db::write_tx(conn, |conn| {
        let mut out = Vec::new();
        for l in store::learners(conn)? {
            let author = feeds::find_or_create_author(conn, &blogs::shown_name(&l.name), Some(&l.email), now)?;
            let url = format!("{}{}", blog_url(base, &l.slug), l.format.file());
            let feed = match crate::db::learners::feeds_of(conn, author.id)?.into_iter().next() {
                Some(f) => {
                    if f.url != url {
                        feeds::set_url(conn, f.id, &url, now)?;
                    }
                    if f.status != FeedStatus::Active {
                        feeds::set_status(conn, f.id, FeedStatus::Active, now)?;
                    }
                    feeds::get_feed(conn, f.id)?
                }
                None => feeds::create_feed(
                    conn,
                    NewFeed {
                        author_id: author.id,
                        url: &url,
                        title: &format!("{} (demo blog)", l.name),
                        site_url: Some(&blog_url(base, &l.slug)),
                        status: FeedStatus::Active,
                        confirm_token_hash: None,
                        manage_token_hash: None,
                    },
                    now,
                )?,
            };
            out.push(feed);
        }
        Ok(out)
    })
}

/// Publishes the next demo post when the newest is `every` seconds old; returns its author's
/// feed to harvest.
pub fn publish_due(conn: &mut SqliteConnection, base: &str, every: i64, now: i64) -> StoreResult<Option<Feed>> {
    db::write_tx(conn, |conn| {
        if store::latest_post_at(conn)?.is_some_and(|t| now.saturating_sub(t) < every) {
            return Ok(None);
        }
        let learners = store::learners(conn)?;
        if learners.is_empty() {
            return Ok(None);
        }
        let count = store::count_posts(conn)?;
        if count >= MAX_POSTS {
            return Ok(None);
        }
        let n = usize::try_from(count).unwrap_or(0);
        let (who, slug, title, body, categories, _) = blogs::post(n);
        let Some(l) = learners.get(who % learners.len()) else { return Ok(None) };
        store::publish(conn, l.id, &blogs::new_post(&slug, &title, &body, &categories, now))?;
        let url = format!("{}{}", blog_url(base, &l.slug), l.format.file());
        feeds::find_by_url(conn, &url)
    })
}
