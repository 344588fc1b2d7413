//! Authors and their feeds, with each feed's polling state.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::listing::Listed;
use super::schema::{authors, awards, feed_claims, feeds, join_mails, links};
use super::{OptionalExt, StoreError, StoreResult};

super::stored::stored_enum! {
    /// How a learner's name appears on public pages and in badges, stored in
    /// `authors.name_shown`; instructors always see the name as given.
    pub enum NameShown {
        Given = "given",
        Initials = "initials",
        Pseudonym = "pseudonym",
    }
}

super::stored::stored_enum! {
    /// A feed's lifecycle, stored in `feeds.status`.
    pub enum FeedStatus {
        /// Waiting for the learner to confirm by email; not polled.
        Pending = "pending",
        Active = "active",
        /// Paused by an instructor; not polled.
        Paused = "paused",
        /// The server answered 410 Gone; not polled any more.
        Gone = "gone",
        /// Removed by the learner or an instructor; its Links stay.
        Removed = "removed",
    }
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = authors)]
pub struct Author {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = feeds)]
pub struct Feed {
    pub id: i64,
    pub author_id: i64,
    pub url: String,
    pub site_url: Option<String>,
    pub title: String,
    pub status: FeedStatus,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub next_poll_at: i64,
    pub last_polled_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub error_count: i64,
    pub items_harvested: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The address the feed was added with (a blog page, or the feed itself), when known.
    pub joined_url: Option<String>,
}

/// A feed's state in a word for instructors: an active feed that has never been read says
/// "never fetched", and one that never succeeded or whose last polls failed says "failing",
/// never "active".
pub fn state_word(
    status: FeedStatus,
    last_polled_at: Option<i64>,
    last_success_at: Option<i64>,
    error_count: i64,
) -> &'static str {
    match status {
        FeedStatus::Active if last_polled_at.is_none() => "never fetched",
        FeedStatus::Active if last_success_at.is_none() || error_count > 0 => "failing",
        s => s.as_str(),
    }
}

impl Feed {
    /// See [`state_word`].
    pub fn state_word(&self) -> &'static str {
        state_word(self.status, self.last_polled_at, self.last_success_at, self.error_count)
    }
}

/// The author with `email` (updating the name), or a new one made at `now`. Without an email,
/// a new author is made each time.
pub fn find_or_create_author(
    conn: &mut SqliteConnection,
    name: &str,
    email: Option<&str>,
    now: i64,
) -> StoreResult<Author> {
    if let Some(email) = email
        && let Some(a) =
            authors::table.filter(authors::email.eq(email)).select(Author::as_select()).first(conn).optional()?
    {
        if a.name != name && !name.is_empty() {
            diesel::update(authors::table.find(a.id)).set(authors::name.eq(name)).execute(conn)?;
        }
        return Ok(Author { name: name.to_string(), ..a });
    }
    diesel::insert_into(authors::table)
        .values((authors::name.eq(name), authors::email.eq(email), authors::created_at.eq(now)))
        .returning(Author::as_returning())
        .get_result(conn)
        .map_err(Into::into)
}

pub fn get_author(conn: &mut SqliteConnection, id: i64) -> StoreResult<Author> {
    authors::table.find(id).select(Author::as_select()).first(conn).found("author")
}

/// What a new feed row holds.
pub struct NewFeed<'a> {
    pub author_id: i64,
    pub url: &'a str,
    pub title: &'a str,
    pub site_url: Option<&'a str>,
    pub status: FeedStatus,
    pub confirm_token_hash: Option<&'a str>,
    pub manage_token_hash: Option<&'a str>,
}

/// Stores a new feed made at `t`, due for polling then.
pub fn create_feed(conn: &mut SqliteConnection, f: NewFeed, t: i64) -> StoreResult<Feed> {
    diesel::insert_into(feeds::table)
        .values((
            feeds::author_id.eq(f.author_id),
            feeds::url.eq(f.url),
            feeds::title.eq(f.title),
            feeds::site_url.eq(f.site_url),
            feeds::status.eq(f.status),
            feeds::confirm_token_hash.eq(f.confirm_token_hash),
            feeds::manage_token_hash.eq(f.manage_token_hash),
            feeds::next_poll_at.eq(t),
            feeds::created_at.eq(t),
            feeds::updated_at.eq(t),
        ))
        .returning(Feed::as_returning())
        .get_result(conn)
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                StoreError::field("url", format!("the feed {} is already subscribed", f.url))
            }
            e => e.into(),
        })
}

pub fn get_feed(conn: &mut SqliteConnection, id: i64) -> StoreResult<Feed> {
    feeds::table.find(id).select(Feed::as_select()).first(conn).found("feed")
}

pub fn find_by_url(conn: &mut SqliteConnection, url: &str) -> StoreResult<Option<Feed>> {
    feeds::table.filter(feeds::url.eq(url)).select(Feed::as_select()).first(conn).optional().map_err(Into::into)
}

/// Activates the pending feed whose confirmation token hashes to `hash`, unless its
/// confirmation has expired at `t`. Only now does the name typed when joining reach the learner.
pub fn confirm(conn: &mut SqliteConnection, hash: &str, t: i64) -> StoreResult<Option<Feed>> {
    let Some((feed, pending_name)) = feeds::table
        .filter(feeds::confirm_token_hash.eq(hash))
        .filter(feeds::status.eq(FeedStatus::Pending))
        .filter(feeds::updated_at.gt(t - UNCONFIRMED_SECS))
        .select((Feed::as_select(), feeds::pending_name))
        .first::<(Feed, Option<String>)>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    super::write_tx(conn, |conn| {
        diesel::update(feeds::table.find(feed.id))
            .set((
                feeds::status.eq(FeedStatus::Active),
                feeds::confirm_token_hash.eq(None::<String>),
                feeds::pending_name.eq(None::<String>),
                feeds::next_poll_at.eq(t),
                feeds::updated_at.eq(t),
            ))
            .execute(conn)?;
        if let Some(name) = pending_name.filter(|n| !n.is_empty()) {
            set_author_name(conn, feed.author_id, &name)?;
        }
        get_feed(conn, feed.id).map(Some)
    })
}

/// The feed a confirmation link would confirm at `t`, without confirming it.
pub fn pending_by_confirm_hash(conn: &mut SqliteConnection, hash: &str, t: i64) -> StoreResult<Option<Feed>> {
    Ok(feeds::table
        .filter(feeds::confirm_token_hash.eq(hash))
        .filter(feeds::status.eq(FeedStatus::Pending))
        .filter(feeds::updated_at.gt(t - UNCONFIRMED_SECS))
        .select(Feed::as_select())
        .first(conn)
        .optional()?)
}

/// Gives a subscription still waiting for its confirmation at `t` new token hashes: the
/// confirmation mail about to be sent carries the tokens, and replaces the links of any mail
/// before. Returns the address and the name to greet (as given on the form), or `None` when it
/// no longer waits. Its expiry still runs from the join.
pub fn renew_join_tokens(
    conn: &mut SqliteConnection,
    feed_id: i64,
    confirm_hash: &str,
    manage_hash: &str,
    t: i64,
) -> StoreResult<Option<(String, String)>> {
    super::write_tx(conn, |c| {
        let waiting: Option<(i64, Option<String>)> = feeds::table
            .find(feed_id)
            .filter(feeds::status.eq(FeedStatus::Pending))
            .filter(feeds::updated_at.gt(t - UNCONFIRMED_SECS))
            .select((feeds::author_id, feeds::pending_name))
            .first(c)
            .optional()?;
        let Some((author, pending_name)) = waiting else {
            return renew_claim_tokens(c, feed_id, confirm_hash, manage_hash, t);
        };
        let (name, email): (String, Option<String>) =
            authors::table.find(author).select((authors::name, authors::email)).first(c)?;
        let Some(email) = email else { return Ok(None) };
        diesel::update(feeds::table.find(feed_id))
            .set((feeds::confirm_token_hash.eq(confirm_hash), feeds::manage_token_hash.eq(manage_hash)))
            .execute(c)?;
        Ok(Some((email, pending_name.filter(|n| !n.is_empty()).unwrap_or(name))))
    })
}

/// How long a join waits for its confirmation before it is dropped.
pub const UNCONFIRMED_SECS: i64 = 48 * 3600;
/// Unconfirmed subscriptions dropped in one go.
const PURGE_BATCH: i64 = 500;

/// Drops subscriptions left unconfirmed for [`UNCONFIRMED_SECS`] (a batch at a time), and the
/// learners made only for them. A removed feed taken up again and left unconfirmed goes back
/// to removed, keeping its Links.
pub fn purge_unconfirmed(conn: &mut SqliteConnection, now: i64) -> StoreResult<usize> {
    super::write_tx(conn, |conn| {
        let stale: Vec<(i64, i64)> = feeds::table
            .filter(feeds::status.eq(FeedStatus::Pending))
            .filter(feeds::updated_at.le(now - UNCONFIRMED_SECS))
            .select((feeds::id, feeds::author_id))
            .limit(PURGE_BATCH)
            .load(conn)?;
        for (id, _) in &stale {
            let has_links: bool =
                diesel::select(diesel::dsl::exists(links::table.filter(links::feed_id.eq(id)))).get_result(conn)?;
            if has_links {
                diesel::update(feeds::table.find(id))
                    .set((
                        feeds::status.eq(FeedStatus::Removed),
                        feeds::confirm_token_hash.eq(None::<String>),
                        feeds::manage_token_hash.eq(None::<String>),
                        feeds::pending_name.eq(None::<String>),
                    ))
                    .execute(conn)?;
            } else {
                diesel::delete(feeds::table.find(id)).execute(conn)?;
            }
        }
        // Claims left unconfirmed go too, with the address they hold.
        diesel::delete(
            feed_claims::table
                .filter(feed_claims::confirmed_at.is_null())
                .filter(feed_claims::requested_at.le(now - UNCONFIRMED_SECS)),
        )
        .execute(conn)?;
        for (_, author) in &stale {
            let used: bool = diesel::select(
                diesel::dsl::exists(feeds::table.filter(feeds::author_id.eq(author)))
                    .or(diesel::dsl::exists(links::table.filter(links::author_id.eq(author))))
                    .or(diesel::dsl::exists(awards::table.filter(awards::author_id.eq(author)))),
            )
            .get_result(conn)?;
            if !used {
                diesel::delete(authors::table.find(author)).execute(conn)?;
            }
        }
        Ok(stale.len())
    })
}

/// The window of the per-address limit on confirmation mails.
pub const JOIN_MAIL_WINDOW_SECS: i64 = 24 * 3600;

/// Seconds until `email` may be sent another confirmation mail, when it has had `limit`
/// within the window; `None` when it may now.
pub fn join_mail_wait(conn: &mut SqliteConnection, email: &str, limit: u32, now: i64) -> StoreResult<Option<i64>> {
    let sent: Vec<i64> = join_mails::table
        .filter(join_mails::email.eq(email.to_lowercase()))
        .filter(join_mails::sent_at.gt(now - JOIN_MAIL_WINDOW_SECS))
        .order(join_mails::sent_at.desc())
        .limit(i64::from(limit))
        .select(join_mails::sent_at)
        .load(conn)?;
    Ok((sent.len() >= limit as usize).then(|| {
        let oldest = sent.last().copied().unwrap_or(now);
        (oldest + JOIN_MAIL_WINDOW_SECS - now).max(1)
    }))
}

/// Counts a confirmation mail to `email` if the limit allows it (call inside the transaction
/// that creates the subscription, so parallel joins cannot pass the limit together); otherwise
/// the seconds to wait.
pub fn reserve_join_mail(
    conn: &mut SqliteConnection,
    email: &str,
    limit: u32,
    now: i64,
) -> StoreResult<Result<(), i64>> {
    if let Some(wait) = join_mail_wait(conn, email, limit, now)? {
        return Ok(Err(wait));
    }
    diesel::insert_into(join_mails::table)
        .values((join_mails::email.eq(email.to_lowercase()), join_mails::sent_at.eq(now)))
        .execute(conn)?;
    Ok(Ok(()))
}

/// Drops mail counts older than the window.
pub fn forget_join_mails(conn: &mut SqliteConnection, now: i64) -> StoreResult<usize> {
    Ok(diesel::delete(join_mails::table.filter(join_mails::sent_at.le(now - JOIN_MAIL_WINDOW_SECS))).execute(conn)?)
}

/// The author with this email, if any.
pub fn author_by_email(conn: &mut SqliteConnection, email: &str) -> StoreResult<Option<Author>> {
    Ok(authors::table.filter(authors::email.eq(email)).select(Author::as_select()).first(conn).optional()?)
}

/// Keeps the name typed in an unconfirmed join, to apply on confirmation.
pub fn set_pending_name(conn: &mut SqliteConnection, feed_id: i64, name: &str) -> StoreResult<()> {
    diesel::update(feeds::table.find(feed_id)).set(feeds::pending_name.eq(name)).execute(conn)?;
    Ok(())
}

/// The feed (and its author) whose management token hashes to `hash`.
pub fn by_manage_token(conn: &mut SqliteConnection, hash: &str) -> StoreResult<Option<(Feed, Author)>> {
    feeds::table
        .inner_join(authors::table)
        .filter(feeds::manage_token_hash.eq(hash))
        .filter(feeds::status.ne(FeedStatus::Removed))
        .select((Feed::as_select(), Author::as_select()))
        .first(conn)
        .optional()
        .map_err(Into::into)
}

/// Feeds (with authors) an instructor sees: all but removed ones, newest first.
pub fn list_feeds(conn: &mut SqliteConnection) -> StoreResult<Vec<(Feed, Author)>> {
    feeds::table
        .inner_join(authors::table)
        .filter(feeds::status.ne(FeedStatus::Removed))
        .order(feeds::id.desc())
        .select((Feed::as_select(), Author::as_select()))
        .load(conn)
        .map_err(Into::into)
}

/// The states the Feeds page filters by: the words of [`state_word`].
pub const STATE_WORDS: [&str; 7] = ["active", "failing", "never fetched", "paused", "pending", "gone", "removed"];

/// The SQL condition on `f` (a feed) of a state word; the same rule as [`state_word`].
fn state_sql(word: &str) -> Option<&'static str> {
    Some(match word {
        "active" => {
            "f.status = 'active' AND f.last_polled_at IS NOT NULL AND f.last_success_at IS NOT NULL \
             AND f.error_count = 0"
        }
        "failing" => {
            "f.status = 'active' AND f.last_polled_at IS NOT NULL AND (f.last_success_at IS NULL OR f.error_count > 0)"
        }
        "never fetched" => "f.status = 'active' AND f.last_polled_at IS NULL",
        "paused" => "f.status = 'paused'",
        "pending" => "f.status = 'pending'",
        "gone" => "f.status = 'gone'",
        "removed" => "f.status = 'removed'",
        _ => return None,
    })
}

/// The state word of a `status` query value ("never-fetched" and "never_fetched" read as
/// "never fetched"), if it is one.
pub fn parse_state(word: &str) -> Option<&'static str> {
    let w = word.trim().to_lowercase().replace(['-', '_', '+'], " ");
    STATE_WORDS.into_iter().find(|s| *s == w)
}

/// How the Feeds page is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeedSort {
    /// The latest added first.
    #[default]
    Newest,
    /// By learner name, A to Z.
    Name,
    /// Most consecutive failed polls first.
    Errors,
}

impl FeedSort {
    pub const ALL: [FeedSort; 3] = [FeedSort::Newest, FeedSort::Name, FeedSort::Errors];

    /// The word in the URL (`?sort=name`).
    pub fn as_str(self) -> &'static str {
        match self {
            FeedSort::Newest => "newest",
            FeedSort::Name => "name",
            FeedSort::Errors => "errors",
        }
    }

    pub fn parse(word: &str) -> Option<FeedSort> {
        FeedSort::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// What people read in the sort menu.
    pub fn label(self) -> &'static str {
        match self {
            FeedSort::Newest => "newest first",
            FeedSort::Name => "learner name",
            FeedSort::Errors => "most failed polls first",
        }
    }

    fn order_by(self) -> &'static str {
        match self {
            FeedSort::Newest => "f.id DESC",
            FeedSort::Name => "lower(a.name), f.id",
            FeedSort::Errors => "f.error_count DESC, f.id DESC",
        }
    }
}

/// What the Feeds page asks for.
#[derive(Debug, Clone, Default)]
pub struct FeedQuery {
    /// Text found in the learner's name or email, or the feed's address, site or title.
    pub search: String,
    /// A word of [`STATE_WORDS`]; none shows every feed but removed ones.
    pub state: Option<&'static str>,
    /// Only the feeds of this course's learners (the roster's rule).
    pub course: Option<i64>,
    /// Only this learner's feeds.
    pub learner: Option<i64>,
    /// Only this feed.
    pub feed: Option<i64>,
    pub sort: FeedSort,
    /// 1-based.
    pub page: i64,
}

/// One page of feeds (with their learners): two queries, the first filtering, counting and
/// paging in SQL.
pub fn page_feeds(conn: &mut SqliteConnection, q: &FeedQuery) -> StoreResult<Listed<(Feed, Author)>> {
    use super::listing::{Bind, IdTotal, PER_PAGE, Scope, Where, bind_all, like_pattern};
    let mut w = Where::default();
    match q.state.and_then(state_sql) {
        Some(cond) => w.and(cond, []),
        None => w.and("f.status != 'removed'", []),
    }
    if let Some(p) = like_pattern(&q.search) {
        w.and(
            "a.name LIKE ? ESCAPE '\\' OR a.email LIKE ? ESCAPE '\\' OR f.url LIKE ? ESCAPE '\\' \
             OR f.site_url LIKE ? ESCAPE '\\' OR f.title LIKE ? ESCAPE '\\' OR f.joined_url LIKE ? ESCAPE '\\'",
            std::iter::repeat_n(Bind::Text(p), 6),
        );
    }
    if let Some(learner) = q.learner {
        w.and("f.author_id = ?", [Bind::Int(learner)]);
    }
    if let Some(feed) = q.feed {
        w.and("f.id = ?", [Bind::Int(feed)]);
    }
    if let Some(course) = q.course {
        let scope = Scope::Course(course);
        w.and(format!("f.author_id IN ({})", scope.learners_sql()), scope.learner_binds());
    }
    let page = q.page.clamp(1, super::listing::MAX_PAGE);
    let offset = Listed::<()>::offset(page, PER_PAGE);
    let select = |limit: i64, offset: i64| {
        let sql = format!(
            "SELECT f.id AS id, COUNT(*) OVER () AS total FROM feeds f JOIN authors a ON a.id = f.author_id {}
             ORDER BY {} LIMIT {limit} OFFSET {offset}",
            w.sql(),
            q.sort.order_by()
        );
        bind_all(diesel::sql_query(sql), w.binds())
    };
    let found: Vec<IdTotal> = select(PER_PAGE, offset).load(conn)?;
    let total = match found.first() {
        Some(r) => r.total,
        // Past the last page: the count alone.
        None if offset > 0 => select(1, 0).load::<IdTotal>(conn)?.first().map_or(0, |r| r.total),
        None => 0,
    };
    let ids: Vec<i64> = found.iter().map(|r| r.id).collect();
    let mut rows: Vec<(Feed, Author)> = feeds::table
        .inner_join(authors::table)
        .filter(feeds::id.eq_any(&ids))
        .select((Feed::as_select(), Author::as_select()))
        .load(conn)?;
    let at: std::collections::HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    rows.sort_by_key(|(f, _)| at.get(&f.id).copied().unwrap_or(usize::MAX));
    Ok(Listed { rows, total, page, per_page: PER_PAGE })
}

/// Active feeds due for polling at `at`, soonest first.
pub fn due_feeds(conn: &mut SqliteConnection, at: i64, limit: i64) -> StoreResult<Vec<Feed>> {
    feeds::table
        .filter(feeds::status.eq(FeedStatus::Active))
        .filter(feeds::next_poll_at.le(at))
        .order((feeds::next_poll_at, feeds::id))
        .limit(limit)
        .select(Feed::as_select())
        .load(conn)
        .map_err(Into::into)
}

pub fn set_status(conn: &mut SqliteConnection, id: i64, new_status: FeedStatus, now: i64) -> StoreResult<()> {
    let n = diesel::update(feeds::table.find(id))
        .set((feeds::status.eq(new_status), feeds::updated_at.eq(now)))
        .execute(conn)?;
    if new_status == FeedStatus::Active {
        // Resuming polls soon.
        diesel::update(feeds::table.find(id)).set(feeds::next_poll_at.eq(now)).execute(conn)?;
    }
    if n == 0 { Err(StoreError::NotFound("feed")) } else { Ok(()) }
}

/// Changes a feed's address (by hand, or after a permanent redirect).
/// Records the address a feed was added (or its address changed) with: its site counts as
/// the learner's own (see [`crate::domain::sites`]).
pub fn set_joined_url(conn: &mut SqliteConnection, id: i64, joined: &str) -> StoreResult<()> {
    diesel::update(feeds::table.find(id)).set(feeds::joined_url.eq(joined)).execute(conn)?;
    Ok(())
}

pub fn set_url(conn: &mut SqliteConnection, id: i64, url: &str, now: i64) -> StoreResult<()> {
    diesel::update(feeds::table.find(id))
        .set((
            feeds::url.eq(url),
            feeds::etag.eq(None::<String>),
            feeds::last_modified.eq(None::<String>),
            feeds::updated_at.eq(now),
        ))
        .execute(conn)
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                StoreError::field("url", format!("another subscription already uses {url}"))
            }
            e => e.into(),
        })?;
    Ok(())
}

pub fn set_author_name(conn: &mut SqliteConnection, author_id: i64, name: &str) -> StoreResult<()> {
    diesel::update(authors::table.find(author_id)).set(authors::name.eq(name)).execute(conn)?;
    Ok(())
}

/// A claim of a feed an instructor added: waiting for its mail confirmation, or confirmed.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = feed_claims)]
pub struct Claim {
    pub feed_id: i64,
    /// Where the confirmation goes.
    pub email: String,
    pub name: String,
    pub name_shown: NameShown,
    pub pseudonym: Option<String>,
    /// Whether the name, choice and address given apply on confirmation.
    pub adopt: bool,
    pub manage_token_hash: Option<String>,
    pub requested_at: i64,
    pub confirmed_at: Option<i64>,
}

/// A claim ready to store.
pub struct NewClaim<'a> {
    pub feed_id: i64,
    pub email: &'a str,
    pub name: &'a str,
    pub shown: NameShown,
    pub pseudonym: Option<&'a str>,
    pub adopt: bool,
    pub confirm_hash: &'a str,
    pub manage_hash: &'a str,
}

/// Whether a learner holds the private link of feed `id` (they joined with it, or claimed it):
/// a feed an instructor added has none until its learner claims it.
pub fn learner_owned(conn: &mut SqliteConnection, id: i64) -> StoreResult<bool> {
    let hash: Option<String> = feeds::table.find(id).select(feeds::manage_token_hash).first(conn)?;
    Ok(hash.is_some())
}

/// Stores a claim made at `now`, replacing any claim of the same feed.
pub fn put_claim(conn: &mut SqliteConnection, c: &NewClaim, now: i64) -> StoreResult<()> {
    diesel::replace_into(feed_claims::table)
        .values((
            feed_claims::feed_id.eq(c.feed_id),
            feed_claims::email.eq(c.email),
            feed_claims::name.eq(c.name),
            feed_claims::name_shown.eq(c.shown),
            feed_claims::pseudonym.eq(c.pseudonym),
            feed_claims::adopt.eq(c.adopt),
            feed_claims::confirm_token_hash.eq(c.confirm_hash),
            feed_claims::manage_token_hash.eq(c.manage_hash),
            feed_claims::requested_at.eq(now),
            feed_claims::confirmed_at.eq(None::<i64>),
        ))
        .execute(conn)?;
    Ok(())
}

/// The claim a confirmation link would confirm at `t`: waiting, and not expired.
pub fn claim_by_confirm_hash(conn: &mut SqliteConnection, hash: &str, t: i64) -> StoreResult<Option<Claim>> {
    Ok(feed_claims::table
        .filter(feed_claims::confirm_token_hash.eq(hash))
        .filter(feed_claims::confirmed_at.is_null())
        .filter(feed_claims::requested_at.gt(t - UNCONFIRMED_SECS))
        .select(Claim::as_select())
        .first(conn)
        .optional()?)
}

/// Gives a claim still waiting at `t` new token hashes for the mail about to be sent (see
/// [`renew_join_tokens`]): the address it goes to and the name to greet, the name on file
/// unless the claim's own name applies.
fn renew_claim_tokens(
    conn: &mut SqliteConnection,
    feed_id: i64,
    confirm_hash: &str,
    manage_hash: &str,
    t: i64,
) -> StoreResult<Option<(String, String)>> {
    let waiting: Option<(String, String, bool)> = feed_claims::table
        .find(feed_id)
        .filter(feed_claims::confirmed_at.is_null())
        .filter(feed_claims::requested_at.gt(t - UNCONFIRMED_SECS))
        .select((feed_claims::email, feed_claims::name, feed_claims::adopt))
        .first(conn)
        .optional()?;
    let Some((email, name, adopt)) = waiting else { return Ok(None) };
    let on_file: String =
        feeds::table.inner_join(authors::table).filter(feeds::id.eq(feed_id)).select(authors::name).first(conn)?;
    diesel::update(feed_claims::table.find(feed_id))
        .set((feed_claims::confirm_token_hash.eq(confirm_hash), feed_claims::manage_token_hash.eq(manage_hash)))
        .execute(conn)?;
    Ok(Some((email, if adopt { name } else { on_file })))
}

/// Records a claim as confirmed at `t`: the feed takes the claim's private link, and the
/// claim keeps only when it was confirmed (what was typed, the address among it, is dropped).
pub fn complete_claim(conn: &mut SqliteConnection, feed_id: i64, manage_hash: &str, t: i64) -> StoreResult<()> {
    diesel::update(feeds::table.find(feed_id))
        .set((feeds::manage_token_hash.eq(manage_hash), feeds::updated_at.eq(t)))
        .execute(conn)?;
    diesel::update(feed_claims::table.find(feed_id))
        .set((
            feed_claims::confirmed_at.eq(t),
            feed_claims::email.eq(""),
            feed_claims::name.eq(""),
            feed_claims::pseudonym.eq(None::<String>),
            feed_claims::confirm_token_hash.eq(None::<String>),
            feed_claims::manage_token_hash.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Drops the claim of a feed, if any.
pub fn drop_claim(conn: &mut SqliteConnection, feed_id: i64) -> StoreResult<()> {
    diesel::delete(feed_claims::table.find(feed_id)).execute(conn)?;
    Ok(())
}

/// When each feed of an author was claimed by the learner: (feed id, confirmed at).
pub fn claims_of_author(conn: &mut SqliteConnection, author_id: i64) -> StoreResult<Vec<(i64, i64)>> {
    let rows: Vec<(i64, Option<i64>)> = feed_claims::table
        .inner_join(feeds::table)
        .filter(feeds::author_id.eq(author_id))
        .filter(feed_claims::confirmed_at.is_not_null())
        .select((feed_claims::feed_id, feed_claims::confirmed_at))
        .load(conn)?;
    Ok(rows.into_iter().filter_map(|(id, at)| at.map(|at| (id, at))).collect())
}

/// The feed added with `address` (its feed address, or the blog address it was added with).
pub fn find_by_address(conn: &mut SqliteConnection, address: &str) -> StoreResult<Option<Feed>> {
    Ok(feeds::table
        .filter(feeds::url.eq(address).or(feeds::joined_url.eq(address)))
        .order(feeds::id)
        .select(Feed::as_select())
        .first(conn)
        .optional()?)
}

/// The outcome of one poll, to be recorded on the feed.
#[derive(Debug, Default)]
pub struct PollRecord {
    pub at: i64,
    pub ok: bool,
    pub error: Option<String>,
    pub next_poll_at: i64,
    pub etag: Option<Option<String>>,
    pub last_modified: Option<Option<String>>,
    pub new_url: Option<String>,
    pub gone: bool,
    pub title: Option<String>,
    pub site_url: Option<String>,
    pub items_added: i64,
}

pub fn record_poll(conn: &mut SqliteConnection, id: i64, r: &PollRecord) -> StoreResult<()> {
    let feed = get_feed(conn, id)?;
    let error_count = if r.ok { 0 } else { feed.error_count + 1 };
    diesel::update(feeds::table.find(id))
        .set((
            feeds::last_polled_at.eq(r.at),
            feeds::next_poll_at.eq(r.next_poll_at),
            feeds::error_count.eq(error_count),
            feeds::last_error.eq(&r.error),
            feeds::items_harvested.eq(feed.items_harvested + r.items_added),
            feeds::updated_at.eq(r.at),
        ))
        .execute(conn)?;
    if r.ok {
        diesel::update(feeds::table.find(id)).set(feeds::last_success_at.eq(r.at)).execute(conn)?;
    }
    if let Some(etag) = &r.etag {
        diesel::update(feeds::table.find(id)).set(feeds::etag.eq(etag)).execute(conn)?;
    }
    if let Some(lm) = &r.last_modified {
        diesel::update(feeds::table.find(id)).set(feeds::last_modified.eq(lm)).execute(conn)?;
    }
    if let Some(title) = r.title.as_ref().filter(|t| !t.is_empty()) {
        diesel::update(feeds::table.find(id))
            .set((feeds::title.eq(title), feeds::site_url.eq(&r.site_url)))
            .execute(conn)?;
    }
    if r.gone {
        diesel::update(feeds::table.find(id)).set(feeds::status.eq(FeedStatus::Gone)).execute(conn)?;
    }
    if let Some(url) = &r.new_url {
        // A permanent redirect: keep the new address unless another feed already has it.
        if find_by_url(conn, url)?.is_none() {
            diesel::update(feeds::table.find(id)).set(feeds::url.eq(url)).execute(conn)?;
        }
    }
    Ok(())
}

/// Takes up a removed feed again for `author_id`, pending confirmation.
pub fn resubscribe(
    conn: &mut SqliteConnection,
    id: i64,
    author_id: i64,
    confirm_hash: &str,
    manage_hash: &str,
    now: i64,
) -> StoreResult<Feed> {
    diesel::update(feeds::table.find(id))
        .set((
            feeds::author_id.eq(author_id),
            feeds::status.eq(FeedStatus::Pending),
            feeds::confirm_token_hash.eq(confirm_hash),
            feeds::manage_token_hash.eq(manage_hash),
            feeds::updated_at.eq(now),
        ))
        .execute(conn)?;
    // A new subscription: an earlier claim of the feed is not this learner's.
    diesel::delete(feed_claims::table.find(id)).execute(conn)?;
    get_feed(conn, id)
}

/// Every feed not removed, with its author, for OPML export.
pub fn export_list(conn: &mut SqliteConnection) -> StoreResult<Vec<(Feed, Author)>> {
    list_feeds(conn)
}

/// The confirmed subscriptions whose private link learner `author_id` holds (joined or
/// claimed, not waiting, not removed), oldest first.
pub fn owned_confirmed(conn: &mut SqliteConnection, author_id: i64) -> StoreResult<Vec<Feed>> {
    feeds::table
        .filter(feeds::author_id.eq(author_id))
        .filter(feeds::manage_token_hash.is_not_null())
        .filter(feeds::status.ne_all([FeedStatus::Pending, FeedStatus::Removed]))
        .order(feeds::id)
        .select(Feed::as_select())
        .load(conn)
        .map_err(Into::into)
}

/// Gives subscription `feed_id` a new private link (its token's hash), replacing the old one.
pub fn replace_manage_hash(conn: &mut SqliteConnection, feed_id: i64, hash: &str, t: i64) -> StoreResult<()> {
    diesel::update(feeds::table.find(feed_id))
        .set((feeds::manage_token_hash.eq(hash), feeds::updated_at.eq(t)))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::FeedStatus;

    #[test]
    fn feed_states_round_trip() {
        crate::db::stored::assert_round_trip!(FeedStatus);
    }

    /// The Feeds page's status filter (SQL) and the word each row shows ([`super::state_word`])
    /// follow one rule: every feed is found under its own word, and only there.
    #[test]
    fn the_status_filter_finds_each_feed_under_the_word_it_shows() {
        use diesel::prelude::*;
        use diesel_migrations::MigrationHarness as _;
        let mut c = diesel::SqliteConnection::establish(":memory:").unwrap();
        c.run_pending_migrations(crate::db::MIGRATIONS).unwrap();
        let a = super::find_or_create_author(&mut c, "Ada", Some("ada@example.edu"), 0).unwrap();
        let mut shown = Vec::new();
        let mut n = 0;
        for status in ["active", "paused", "pending", "gone", "removed"] {
            for (polled, success, errors) in
                [(None, None, 0), (Some(1), None, 1), (Some(1), Some(1), 0), (Some(2), Some(1), 2), (Some(1), None, 0)]
            {
                n += 1;
                diesel::sql_query(
                    "INSERT INTO feeds (author_id, url, title, status, next_poll_at, last_polled_at, last_success_at,
                                        error_count, created_at, updated_at) VALUES (?, ?, '', ?, 0, ?, ?, ?, 0, 0)",
                )
                .bind::<diesel::sql_types::BigInt, _>(a.id)
                .bind::<diesel::sql_types::Text, _>(format!("https://x{n}.example.org/feed"))
                .bind::<diesel::sql_types::Text, _>(status)
                .bind::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>, _>(polled)
                .bind::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>, _>(success)
                .bind::<diesel::sql_types::BigInt, _>(errors)
                .execute(&mut c)
                .unwrap();
                let f = super::find_by_url(&mut c, &format!("https://x{n}.example.org/feed")).unwrap().unwrap();
                shown.push((f.id, f.state_word()));
            }
        }
        for word in super::STATE_WORDS {
            let q = super::FeedQuery { state: Some(word), page: 1, ..Default::default() };
            let mut found: Vec<i64> = super::page_feeds(&mut c, &q).unwrap().rows.iter().map(|(f, _)| f.id).collect();
            found.sort_unstable();
            let want: Vec<i64> = shown.iter().filter(|(_, w)| *w == word).map(|(id, _)| *id).collect();
            assert_eq!(found, want, "{word}");
        }
        assert_eq!(super::parse_state("never-fetched"), Some("never fetched"));
        assert_eq!(super::parse_state("Failing"), Some("failing"));
        assert_eq!(super::parse_state("lost"), None);
    }
}
