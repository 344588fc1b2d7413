//! The harvester: finds learners' feeds, polls them politely, and turns their items into
//! Links tied to Tasks by hashtag.
//!
//! Shape (after miniflux): a pass picks the active feeds that are due, fetches them with
//! bounded total concurrency and a per-host limit, parses and stores each (in a savepoint of
//! its own, committed with other feeds' writes), and records the outcome and the next poll
//! time on the feed. All state lives in the database, so a restart resumes where it stopped.
//! A pass reads the time once from the harvester's [`Clock`] and stamps everything it writes
//! with it: the Links, their ties, and each feed's poll record and next poll time.

pub mod authorship;
pub mod discover;
pub mod parse;
pub mod pool;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use reqwest::header;
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::config::HarvestSettings;
use crate::db::feeds::{self, Feed, PollRecord};
use crate::db::group::GroupWriter;
use crate::db::links::{self, StoreStats};
use crate::db::{DbPool, StoreError, StoreResult};
use crate::net::{ACCEPT_FEEDS, FetchConfig, FetchError, Fetched, Fetcher, OutboundPolicy, Validators};
use discover::FeedLink;
use parse::ParsedFeed;
use pool::{BoundedPool, PoolError};

/// Shortest wait after a failure.
const MIN_BACKOFF_SECS: u64 = 60;
/// Longest wait after repeated failures.
const MAX_BACKOFF_SECS: u64 = 24 * 3600;
/// Most feeds whose items (or poll records) one transaction stores: a pass's writes are
/// committed in groups (see [`crate::db::group`]), each feed in a savepoint of its own.
pub const STORE_GROUP: usize = 32;

/// Why a feed could not be read, in words.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("that address returned {status}")]
    Status { status: String, retry_after: Option<u64> },
    #[error("no feed found at {0}: it is a web page that advertises no RSS, Atom or JSON feed")]
    NoFeed(String),
    #[error("{url}: {error}")]
    Parse { url: String, error: parse::ParseError },
    #[error(transparent)]
    Busy(#[from] PoolError),
}

impl FeedError {
    fn retry_after(&self) -> Option<u64> {
        match self {
            FeedError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Builds the outbound client the harvester (and discovery) use.
pub fn fetcher(settings: &HarvestSettings, allow_origins: &[String], base_url: &str) -> anyhow::Result<Fetcher> {
    Fetcher::new(FetchConfig {
        user_agent: format!("Cairn/{} (+{base_url}; feed harvester)", env!("CARGO_PKG_VERSION")),
        connect_timeout: Duration::from_secs(settings.timeout_secs.min(10)),
        total_timeout: Duration::from_secs(settings.timeout_secs),
        max_body: settings.max_bytes,
        policy: OutboundPolicy::new(allow_origins).map_err(anyhow::Error::msg)?,
    })
}

fn charset_of(f: &Fetched) -> Option<String> {
    let ct = f.header(header::CONTENT_TYPE)?.to_ascii_lowercase();
    ct.split(';').find_map(|p| p.trim().strip_prefix("charset=").map(|c| c.trim_matches('"').to_string()))
}

fn status_error(f: &Fetched) -> FeedError {
    let status = f.status;
    FeedError::Status {
        status: format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")).trim().to_string(),
        retry_after: f.retry_after(),
    }
}

/// A feed found from an address a person typed: the feed itself, or one a page advertises.
#[derive(Debug)]
pub struct Resolved {
    /// The feed's address (after permanent redirects).
    pub feed_url: String,
    pub feed: ParsedFeed,
    /// Every feed the page advertised (empty when the address was a feed).
    pub alternatives: Vec<FeedLink>,
}

/// A fetched document, read.
enum Document {
    Feed(ParsedFeed),
    /// An HTML page, with the feeds it advertises.
    Page(Vec<FeedLink>),
}

fn read_document(body: &[u8], charset: Option<&str>, final_url: &url::Url) -> Result<Document, parse::ParseError> {
    match parse::parse(body, charset, final_url) {
        Ok(feed) => Ok(Document::Feed(feed)),
        Err(parse::ParseError::Html) => {
            Ok(Document::Page(discover::feed_links(&crate::html::decode::decode(body, charset), final_url)))
        }
        Err(e) => Err(e),
    }
}

/// Runs CPU work on a document off the async runtime: in `pool` when the request is
/// anonymous, else on the runtime's blocking threads.
async fn off_runtime<T: Send + 'static>(
    pool: Option<&BoundedPool>,
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PoolError> {
    match pool {
        Some(pool) => pool.run(job).await,
        None => tokio::task::spawn_blocking(job).await.map_err(|_| PoolError::Failed),
    }
}

/// Fetches `url`; if it is a page, discovers its feeds and reads the first that parses.
/// Used by `cairn feed check` and the instructor's "add feed"; the Join page goes through
/// [`Harvester::resolve_untrusted`].
pub async fn resolve(fetcher: &Fetcher, url: &str) -> Result<Resolved, FeedError> {
    resolve_in(fetcher, url, None).await
}

async fn resolve_in(fetcher: &Fetcher, url: &str, pool: Option<&BoundedPool>) -> Result<Resolved, FeedError> {
    let fetched = fetcher.get(url, &Validators::default(), ACCEPT_FEEDS).await?;
    if !fetched.status.is_success() {
        return Err(status_error(&fetched));
    }
    let final_url = fetched.final_url.clone();
    let charset = charset_of(&fetched);
    let (body, at) = (fetched.body, final_url.clone());
    let document = off_runtime(pool, move || read_document(&body, charset.as_deref(), &at)).await?;
    match document {
        Ok(Document::Feed(feed)) => Ok(Resolved { feed_url: final_url.to_string(), feed, alternatives: Vec::new() }),
        Ok(Document::Page(candidates)) => {
            if candidates.is_empty() {
                return Err(FeedError::NoFeed(url.to_string()));
            }
            let mut last_error = None;
            for c in &candidates {
                match fetch_feed_in(fetcher, &c.url, pool).await {
                    Ok((feed_url, feed)) => return Ok(Resolved { feed_url, feed, alternatives: candidates.clone() }),
                    Err(e @ FeedError::Busy(_)) => return Err(e),
                    Err(e) => last_error = Some(e),
                }
            }
            Err(last_error.unwrap_or_else(|| FeedError::NoFeed(url.to_string())))
        }
        Err(error) => Err(FeedError::Parse { url: final_url.to_string(), error }),
    }
}

/// Fetches and parses a feed address (no discovery).
pub async fn fetch_feed(fetcher: &Fetcher, url: &str) -> Result<(String, ParsedFeed), FeedError> {
    fetch_feed_in(fetcher, url, None).await
}

async fn fetch_feed_in(
    fetcher: &Fetcher,
    url: &str,
    pool: Option<&BoundedPool>,
) -> Result<(String, ParsedFeed), FeedError> {
    let fetched = fetcher.get(url, &Validators::default(), ACCEPT_FEEDS).await?;
    if !fetched.status.is_success() {
        return Err(status_error(&fetched));
    }
    let charset = charset_of(&fetched);
    let final_url = fetched.final_url.clone();
    let (body, at) = (fetched.body, final_url.clone());
    let feed = off_runtime(pool, move || parse::parse(&body, charset.as_deref(), &at))
        .await?
        .map_err(|error| FeedError::Parse { url: final_url.to_string(), error })?;
    Ok((final_url.to_string(), feed))
}

/// Sanitises again, with the current policy, every stored summary that holds a link scheme
/// the policy no longer allows (summaries stored by earlier versions could keep a
/// `javascript:` link made from a feed's base). Returns how many were rewritten.
pub fn resanitize_unsafe_summaries(conn: &mut diesel::SqliteConnection) -> StoreResult<usize> {
    let suspects = links::suspect_summaries(conn)?;
    let fallback = url::Url::parse("https://invalid.example/").map_err(|e| StoreError::Internal(e.into()))?;
    let mut changed = 0;
    for (id, url, html) in suspects {
        let base = url.and_then(|u| url::Url::parse(&u).ok()).unwrap_or_else(|| fallback.clone());
        let clean = crate::html::sanitize::sanitize_html(&html, &base);
        if clean != html {
            links::set_summary(conn, id, &clean)?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// What one poll did.
#[derive(Debug, Clone)]
pub enum PollOutcome {
    Stored(StoreStats),
    NotModified,
    Gone,
    Failed(String),
}

/// Totals of a pass.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct PassSummary {
    pub feeds: usize,
    pub not_modified: usize,
    pub failed: usize,
    pub gone: usize,
    pub added: i64,
    pub updated: i64,
}

/// The harvester. Cheap to clone.
#[derive(Clone)]
pub struct Harvester {
    pool: DbPool,
    fetcher: Fetcher,
    settings: HarvestSettings,
    /// Where a pass reads its `now`.
    clock: Clock,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    /// Reads documents fetched for anonymous visitors (see [`pool`]).
    untrusted: BoundedPool,
}

impl Harvester {
    pub fn new(pool: DbPool, fetcher: Fetcher, settings: HarvestSettings, clock: Clock) -> Harvester {
        Harvester { pool, fetcher, settings, clock, hosts: Arc::default(), untrusted: BoundedPool::for_untrusted() }
    }

    /// The same harvester (sharing its limits), reading the time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Harvester {
        self.clock = clock;
        self
    }

    /// The clock the harvester's passes read.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// [`resolve`] for an address an anonymous visitor typed: the documents are read in the
    /// bounded pool, and `FeedError::Busy` comes back when it is full.
    pub async fn resolve_untrusted(&self, url: &str) -> Result<Resolved, FeedError> {
        resolve_in(&self.fetcher, url, Some(&self.untrusted)).await
    }

    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut diesel::SqliteConnection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        crate::db::run(&self.pool, f).await
    }

    fn host_limit(&self, url: &str) -> Arc<Semaphore> {
        let host = url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.entry(host).or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_host))).clone()
    }

    fn next_poll(&self, now: i64) -> i64 {
        let interval = self.settings.interval_secs as i64;
        let jitter = rand::rng().random_range(-(interval / 10)..=(interval / 10));
        now + interval + jitter
    }

    fn backoff(&self, now: i64, errors_before: i64, retry_after: Option<u64>) -> i64 {
        let exp = MIN_BACKOFF_SECS.saturating_mul(1u64 << errors_before.clamp(0, 20));
        let wait = exp.min(MAX_BACKOFF_SECS).max(retry_after.unwrap_or(0).min(7 * 24 * 3600));
        now + wait as i64
    }

    /// Polls one feed at the pass's `now`: conditional GET, parse, store, and record the
    /// outcome. The writes go through `writer`, which commits them with other feeds' writes.
    async fn poll(&self, feed: Feed, tags: Arc<HashMap<String, i64>>, writer: &GroupWriter, now: i64) -> PollOutcome {
        let limit = self.host_limit(&feed.url);
        let _permit = limit.acquire_owned().await;
        let validators = Validators { etag: feed.etag.clone(), last_modified: feed.last_modified.clone() };
        let mut record = PollRecord { at: now, ..Default::default() };
        let outcome = match self.fetcher.get(&feed.url, &validators, ACCEPT_FEEDS).await {
            Err(e) => {
                let e = FeedError::from(e);
                record.error = Some(e.to_string());
                record.next_poll_at = self.backoff(now, feed.error_count, None);
                PollOutcome::Failed(e.to_string())
            }
            Ok(f) if f.status == StatusCode::NOT_MODIFIED => {
                record.ok = true;
                record.next_poll_at = self.next_poll(now);
                PollOutcome::NotModified
            }
            Ok(f) if f.status == StatusCode::GONE => {
                record.gone = true;
                record.error = Some("the feed answered 410 Gone; it is no longer polled".into());
                record.next_poll_at = now;
                PollOutcome::Gone
            }
            Ok(f) if !f.status.is_success() => {
                let e = status_error(&f);
                record.error = Some(e.to_string());
                record.next_poll_at = self.backoff(now, feed.error_count, e.retry_after());
                PollOutcome::Failed(e.to_string())
            }
            Ok(mut f) => {
                if f.moved_permanently {
                    record.new_url = Some(f.final_url.to_string());
                }
                let (body, charset, at) = (std::mem::take(&mut f.body), charset_of(&f), f.final_url.clone());
                // Parsing a large feed is CPU work: it must not hold up the async runtime.
                let parsed = tokio::task::spawn_blocking(move || parse::parse(&body, charset.as_deref(), &at))
                    .await
                    .unwrap_or_else(|_| Err(parse::ParseError::Malformed("the parser failed".into())));
                match parsed {
                    Err(error) => {
                        // A broken document never deletes what was harvested before.
                        let e = FeedError::Parse { url: f.final_url.to_string(), error };
                        record.error = Some(e.to_string());
                        record.next_poll_at = self.backoff(now, feed.error_count, None);
                        PollOutcome::Failed(e.to_string())
                    }
                    Ok(parsed) => {
                        record.etag = Some(f.header(header::ETAG).map(str::to_string));
                        record.last_modified = Some(f.header(header::LAST_MODIFIED).map(str::to_string));
                        record.title = Some(parsed.title.clone());
                        record.site_url = parsed.site_url.clone();
                        // The site the document declares now counts as the learner's own.
                        let mut feed_for_store = feed.clone();
                        if parsed.site_url.is_some() {
                            feed_for_store.site_url = parsed.site_url.clone();
                        }
                        match writer
                            .write(move |c| links::store_items(c, &feed_for_store, &parsed.items, &tags, now))
                            .await
                        {
                            Ok(stats) => {
                                record.ok = true;
                                record.items_added = stats.added;
                                record.next_poll_at = self.next_poll(now);
                                PollOutcome::Stored(stats)
                            }
                            Err(e) => {
                                record.error = Some(format!("could not store the items: {e}"));
                                record.next_poll_at = self.backoff(now, feed.error_count, None);
                                PollOutcome::Failed(format!("could not store the items: {e}"))
                            }
                        }
                    }
                }
            }
        };
        let id = feed.id;
        if let Err(e) = writer.write(move |c| feeds::record_poll(c, id, &record)).await {
            tracing::error!(feed = id, error = %e, "could not record a poll");
        }
        match &outcome {
            PollOutcome::Failed(e) => tracing::warn!(feed = id, url = %feed.url, error = %e, "feed poll failed"),
            o => tracing::debug!(feed = id, url = %feed.url, outcome = ?o, "feed polled"),
        }
        outcome
    }

    /// Polls the given feeds with bounded concurrency, at the time the clock reads now;
    /// `progress` is called after each.
    pub async fn poll_all(
        &self,
        feeds: Vec<Feed>,
        progress: &(dyn Fn(&Feed, &PollOutcome) + Sync),
    ) -> StoreResult<PassSummary> {
        self.poll_all_at(feeds, self.clock.now(), progress).await
    }

    /// [`Harvester::poll_all`] at `now`: every poll of the pass is stamped with it.
    async fn poll_all_at(
        &self,
        feeds: Vec<Feed>,
        now: i64,
        progress: &(dyn Fn(&Feed, &PollOutcome) + Sync),
    ) -> StoreResult<PassSummary> {
        let tags = Arc::new(self.db(links::task_tags).await?);
        let global = Arc::new(Semaphore::new(self.settings.concurrency));
        // Ends with the pass, once the last poll has dropped its handle.
        let writer = GroupWriter::spawn(self.pool.clone(), STORE_GROUP);
        let mut set = tokio::task::JoinSet::new();
        let mut summary = PassSummary { feeds: feeds.len(), ..Default::default() };
        for feed in feeds {
            let permit = global.clone().acquire_owned().await.map_err(|e| StoreError::Internal(e.into()))?;
            let me = self.clone();
            let (tags, writer) = (tags.clone(), writer.clone());
            set.spawn(async move {
                let f = feed.clone();
                let outcome = me.poll(feed, tags, &writer, now).await;
                drop(permit);
                (f, outcome)
            });
            // Report finished ones as we go.
            while let Some(Ok((f, o))) = set.try_join_next() {
                tally(&mut summary, &o);
                progress(&f, &o);
            }
        }
        while let Some(done) = set.join_next().await {
            if let Ok((f, o)) = done {
                tally(&mut summary, &o);
                progress(&f, &o);
            }
        }
        Ok(summary)
    }

    /// One pass over the feeds due now (or only `feed_id`, due or not). The clock is read
    /// once: the feeds due then are polled, and everything written is stamped, at that time.
    pub async fn run_pass(
        &self,
        feed_id: Option<i64>,
        progress: &(dyn Fn(&Feed, &PollOutcome) + Sync),
    ) -> StoreResult<PassSummary> {
        let now = self.clock.now();
        let due = match feed_id {
            Some(id) => vec![self.db(move |c| feeds::get_feed(c, id)).await?],
            None => self.db(move |c| feeds::due_feeds(c, now, 100_000)).await?,
        };
        self.poll_all_at(due, now, progress).await
    }

    /// One background pass over the feeds due now, logged when it polled any.
    pub async fn pass(&self) -> anyhow::Result<crate::jobs::Pass> {
        let started = std::time::Instant::now();
        let s = self.run_pass(None, &|_, _| {}).await?;
        let stored = s.feeds.saturating_sub(s.not_modified + s.gone + s.failed);
        crate::metrics::harvest_pass(crate::metrics::HarvestPass {
            stored: stored as u64,
            not_modified: s.not_modified as u64,
            gone: s.gone as u64,
            failed: s.failed as u64,
            took: started.elapsed(),
        });
        if s.feeds > 0 {
            tracing::info!(feeds = s.feeds, added = s.added, failed = s.failed, "harvest pass");
        }
        Ok(crate::jobs::Pass::Idle)
    }
}

fn tally(s: &mut PassSummary, o: &PollOutcome) {
    match o {
        PollOutcome::Stored(st) => {
            s.added += st.added;
            s.updated += st.updated;
        }
        PollOutcome::NotModified => s.not_modified += 1,
        PollOutcome::Gone => s.gone += 1,
        PollOutcome::Failed(_) => s.failed += 1,
    }
}
