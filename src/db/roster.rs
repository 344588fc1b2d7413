//! The learner roster: every learner of the institution or of one course, searched, sorted and
//! paged, with their counts; a course's progress grid (learners × tasks); and one learner's
//! page. Each page is a fixed, small number of queries whatever the number of learners.
//!
//! A learner "is in" a course when one of their posts is tied to a task of the course, or they
//! hold an award of one of its tasks: the store has no enrolment of its own.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::feeds::FeedStatus;
use super::learners::{NameShown, public_name};
use super::schema::{awards, feeds, link_tasks, links, tasks};
use super::{StoreError, StoreResult};

/// Learners per roster or grid page.
pub const PER_PAGE: i64 = 50;
/// Longest search text taken (characters).
pub const MAX_SEARCH: usize = 200;

/// How the roster is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// By name, A to Z.
    #[default]
    Name,
    /// Most posts first.
    Posts,
    /// Most awards first.
    Awards,
    /// Latest post first; learners who never posted last.
    LastPost,
}

impl Sort {
    pub const ALL: [Sort; 4] = [Sort::Name, Sort::Posts, Sort::Awards, Sort::LastPost];

    /// The word in the URL (`?sort=posts`).
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::Posts => "posts",
            Sort::Awards => "awards",
            Sort::LastPost => "last",
        }
    }

    pub fn parse(word: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// What people read in the sort menu.
    pub fn label(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::Posts => "posts (most first)",
            Sort::Awards => "awards (most first)",
            Sort::LastPost => "last post (latest first)",
        }
    }

    fn order_by(self) -> &'static str {
        match self {
            Sort::Name => "lower(a.name), a.id",
            Sort::Posts => "posts DESC, lower(a.name), a.id",
            Sort::Awards => "awards DESC, lower(a.name), a.id",
            Sort::LastPost => "last_post IS NULL, last_post DESC, lower(a.name), a.id",
        }
    }
}

/// What the roster asks for.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only the learners of this course (and only its tasks counted for ties and awards).
    pub course: Option<i64>,
    /// Text found in the name, the email or an address of a feed (no case).
    pub search: String,
    pub sort: Sort,
    /// 1-based.
    pub page: i64,
    /// Only learners with no post for any task of this module (the progress grid's filter).
    pub not_posted_module: Option<i64>,
}

/// One learner's line of the roster.
#[derive(Debug, Clone, QueryableByName)]
pub struct Row {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub email: Option<String>,
    #[diesel(sql_type = Text)]
    name_shown: String,
    #[diesel(sql_type = Nullable<Text>)]
    pseudonym: Option<String>,
    /// Posts harvested from their feeds.
    #[diesel(sql_type = BigInt)]
    pub posts: i64,
    /// Posts tied to a task (of the course, on a course roster).
    #[diesel(sql_type = BigInt)]
    pub tied: i64,
    /// Awards neither revoked nor withdrawn (of the course's tasks, on a course roster).
    #[diesel(sql_type = BigInt)]
    pub awards: i64,
    /// When their latest post was published (or harvested, when it gives no date).
    #[diesel(sql_type = Nullable<BigInt>)]
    pub last_post: Option<i64>,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

impl Row {
    /// The name the public sees (the learner's own choice).
    pub fn public_name(&self) -> String {
        let shown = NameShown::parse(&self.name_shown).unwrap_or(NameShown::Given);
        public_name(&self.name, shown, self.pseudonym.as_deref())
    }
}

/// A feed as the roster shows it.
#[derive(Debug, Clone, Queryable)]
pub struct FeedLine {
    pub id: i64,
    pub author_id: i64,
    pub url: String,
    pub site_url: Option<String>,
    pub status: FeedStatus,
    pub last_polled_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub error_count: i64,
}

impl FeedLine {
    /// The state in a word: an active feed that has never been read, or whose last polls
    /// failed, is not called "active".
    pub fn state(&self) -> &'static str {
        super::feeds::state_word(self.status, self.last_polled_at, self.last_success_at, self.error_count)
    }

    /// Whether the state calls for the instructor's attention.
    pub fn is_bad(&self) -> bool {
        matches!(self.state(), "failing" | "gone")
    }
}

/// One page of the roster.
#[derive(Debug, Clone)]
pub struct Page {
    pub rows: Vec<Row>,
    /// Every feed of the learners on the page, by learner.
    pub feeds: HashMap<i64, Vec<FeedLine>>,
    /// Learners matching the query, on every page.
    pub total: i64,
    /// The page shown (1-based).
    pub page: i64,
}

impl Page {
    pub fn pages(&self) -> i64 {
        ((self.total + PER_PAGE - 1) / PER_PAGE).max(1)
    }

    /// The 1-based positions of the first and last learner shown.
    pub fn span(&self) -> (i64, i64) {
        let first = (self.page - 1) * PER_PAGE;
        if self.rows.is_empty() { (0, 0) } else { (first + 1, first + self.rows.len() as i64) }
    }

    pub fn feeds_of(&self, author: i64) -> &[FeedLine] {
        self.feeds.get(&author).map_or(&[], Vec::as_slice)
    }
}

/// `text` as a LIKE pattern matching it anywhere, its own `%`, `_` and `\` taken literally.
fn like_pattern(text: &str) -> Option<String> {
    let t: String = text.trim().chars().take(MAX_SEARCH).collect();
    if t.is_empty() {
        return None;
    }
    let mut p = String::with_capacity(t.len() + 2);
    p.push('%');
    for c in t.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    Some(p)
}

fn rows(conn: &mut SqliteConnection, q: &Query, limit: i64, offset: i64) -> StoreResult<Vec<Row>> {
    let sql = format!(
        "WITH ct AS (SELECT mt.task_id AS id FROM module_tasks mt
                     JOIN course_modules cm ON cm.module_id = mt.module_id WHERE cm.course_id = ?1),
         p AS (SELECT author_id, COUNT(*) AS posts, MAX(COALESCE(published_at, harvested_at)) AS last_post
               FROM links GROUP BY author_id),
         t AS (SELECT l.author_id, COUNT(DISTINCT lt.link_id) AS tied FROM link_tasks lt
               JOIN links l ON l.id = lt.link_id
               WHERE lt.tied AND (?1 IS NULL OR lt.task_id IN ct) GROUP BY l.author_id),
         w AS (SELECT author_id, COUNT(*) AS awards FROM (
                   SELECT author_id, task_id FROM awards
                   WHERE author_id IS NOT NULL AND revoked_at IS NULL AND withdrawn_at IS NULL
                   UNION ALL
                   SELECT a2.id, aw.task_id FROM awards aw JOIN authors a2 ON a2.email = aw.recipient_email
                   WHERE aw.author_id IS NULL AND aw.revoked_at IS NULL AND aw.withdrawn_at IS NULL)
               WHERE (?1 IS NULL OR task_id IN ct) GROUP BY author_id)
         SELECT a.id, a.name, a.email, a.name_shown, a.pseudonym, COALESCE(p.posts, 0) AS posts,
                COALESCE(t.tied, 0) AS tied, COALESCE(w.awards, 0) AS awards, p.last_post,
                COUNT(*) OVER () AS total
         FROM authors a LEFT JOIN p ON p.author_id = a.id LEFT JOIN t ON t.author_id = a.id
              LEFT JOIN w ON w.author_id = a.id
         WHERE (?1 IS NULL OR t.tied > 0 OR w.awards > 0)
           AND (?2 IS NULL OR a.name LIKE ?2 ESCAPE '\\' OR a.email LIKE ?2 ESCAPE '\\'
                OR EXISTS (SELECT 1 FROM feeds f WHERE f.author_id = a.id
                           AND (f.url LIKE ?2 ESCAPE '\\' OR f.site_url LIKE ?2 ESCAPE '\\'
                                OR f.joined_url LIKE ?2 ESCAPE '\\')))
           AND (?3 IS NULL OR NOT EXISTS (SELECT 1 FROM link_tasks lt JOIN links l ON l.id = lt.link_id
                JOIN module_tasks mt ON mt.task_id = lt.task_id WHERE l.author_id = a.id AND mt.module_id = ?3))
         ORDER BY {}
         LIMIT ?4 OFFSET ?5",
        q.sort.order_by()
    );
    Ok(diesel::sql_query(sql)
        .bind::<Nullable<BigInt>, _>(q.course)
        .bind::<Nullable<Text>, _>(like_pattern(&q.search))
        .bind::<Nullable<BigInt>, _>(q.not_posted_module)
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(offset)
        .load(conn)?)
}

/// One page of the roster: the learners and, in a second query, their feeds.
pub fn page(conn: &mut SqliteConnection, q: &Query) -> StoreResult<Page> {
    let page = q.page.max(1);
    let offset = (page - 1).saturating_mul(PER_PAGE);
    let rows = rows(conn, q, PER_PAGE, offset)?;
    let total = match rows.first() {
        Some(r) => r.total,
        // Past the last page: the count alone.
        None if offset > 0 => rows_total(conn, q)?,
        None => 0,
    };
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let feeds = feeds_of(conn, &ids)?;
    Ok(Page { rows, feeds, total, page })
}

fn rows_total(conn: &mut SqliteConnection, q: &Query) -> StoreResult<i64> {
    Ok(rows(conn, q, 1, 0)?.first().map_or(0, |r| r.total))
}

/// The feeds of these learners, by learner, oldest first.
pub fn feeds_of(conn: &mut SqliteConnection, authors: &[i64]) -> StoreResult<HashMap<i64, Vec<FeedLine>>> {
    let lines: Vec<FeedLine> = feeds::table
        .filter(feeds::author_id.eq_any(authors))
        .order(feeds::id)
        .select((
            feeds::id,
            feeds::author_id,
            feeds::url,
            feeds::site_url,
            feeds::status,
            feeds::last_polled_at,
            feeds::last_success_at,
            feeds::last_error,
            feeds::error_count,
        ))
        .load(conn)?;
    let mut out: HashMap<i64, Vec<FeedLine>> = HashMap::new();
    for f in lines {
        out.entry(f.author_id).or_default().push(f);
    }
    Ok(out)
}

/// Where a learner stands on one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Cell {
    /// No post mentions the task.
    #[default]
    Nothing,
    /// A post mentions the task (its hashtag), but none is tied to it now.
    Posted,
    /// A post is tied to the task.
    Tied,
    /// The learner holds the task's badge.
    Awarded,
}

impl Cell {
    pub fn word(self) -> &'static str {
        match self {
            Cell::Nothing => "not posted",
            Cell::Posted => "posted",
            Cell::Tied => "tied",
            Cell::Awarded => "awarded",
        }
    }
}

/// The cells of a progress grid for these learners ((id, email)): (learner, task) → state;
/// absent means [`Cell::Nothing`].
pub fn cells(
    conn: &mut SqliteConnection,
    emails: &[(i64, Option<String>)],
    task_ids: &[i64],
) -> StoreResult<HashMap<(i64, i64), Cell>> {
    let mut out: HashMap<(i64, i64), Cell> = HashMap::new();
    let authors: Vec<i64> = emails.iter().map(|(id, _)| *id).collect();
    let authors = authors.as_slice();
    if authors.is_empty() || task_ids.is_empty() {
        return Ok(out);
    }
    let posted: Vec<(i64, i64, bool)> = link_tasks::table
        .inner_join(links::table)
        .filter(links::author_id.eq_any(authors))
        .filter(link_tasks::task_id.eq_any(task_ids))
        .select((links::author_id, link_tasks::task_id, link_tasks::tied))
        .load(conn)?;
    for (a, t, tied) in posted {
        let c = out.entry((a, t)).or_default();
        *c = (*c).max(if tied { Cell::Tied } else { Cell::Posted });
    }
    // Awards made by address (the command line, the API) may name no author: matched by email.
    let by_email: HashMap<String, i64> =
        emails.iter().filter_map(|(id, e)| e.as_ref().map(|e| (e.to_lowercase(), *id))).collect();
    let addresses: Vec<&String> = by_email.keys().collect();
    let held: Vec<(Option<i64>, String, i64)> = awards::table
        .filter(
            awards::author_id
                .eq_any(authors)
                .or(awards::author_id.is_null().and(awards::recipient_email.eq_any(addresses))),
        )
        .filter(awards::task_id.eq_any(task_ids))
        .filter(awards::revoked_at.is_null())
        .filter(awards::withdrawn_at.is_null())
        .select((awards::author_id, awards::recipient_email, awards::task_id))
        .load(conn)?;
    for (a, email, t) in held {
        if let Some(a) = a.or_else(|| by_email.get(&email.to_lowercase()).copied()) {
            out.insert((a, t), Cell::Awarded);
        }
    }
    Ok(out)
}

/// A learner's recent post, with the tasks it is tied to.
#[derive(Debug, Clone)]
pub struct RecentPost {
    pub id: i64,
    pub title: String,
    pub url: Option<String>,
    pub at: i64,
    /// (task id, title, hashtag) of the tasks the post is tied to.
    pub ties: Vec<(i64, String, String)>,
}

/// A post's (id, title, URL, published, harvested).
type PostFields = (i64, String, Option<String>, Option<i64>, i64);

/// A learner's latest posts (at most `limit`), with their ties: two queries.
pub fn recent_posts(conn: &mut SqliteConnection, author: i64, limit: i64) -> StoreResult<Vec<RecentPost>> {
    let list: Vec<PostFields> = links::table
        .filter(links::author_id.eq(author))
        .order((diesel::dsl::sql::<BigInt>("COALESCE(published_at, harvested_at)").desc(), links::id.desc()))
        .limit(limit)
        .select((links::id, links::title, links::url, links::published_at, links::harvested_at))
        .load(conn)?;
    let ids: Vec<i64> = list.iter().map(|l| l.0).collect();
    let ties: Vec<(i64, i64, String, String)> = link_tasks::table
        .inner_join(tasks::table)
        .filter(link_tasks::link_id.eq_any(&ids))
        .filter(link_tasks::tied.eq(true))
        .order(tasks::title)
        .select((link_tasks::link_id, tasks::id, tasks::title, tasks::hashtag))
        .load(conn)?;
    let mut by_link: HashMap<i64, Vec<(i64, String, String)>> = HashMap::new();
    for (l, t, title, tag) in ties {
        by_link.entry(l).or_default().push((t, title, tag));
    }
    Ok(list
        .into_iter()
        .map(|(id, title, url, published, harvested)| RecentPost {
            id,
            title,
            url,
            at: published.unwrap_or(harvested),
            ties: by_link.remove(&id).unwrap_or_default(),
        })
        .collect())
}

/// Sets a learner's address. `Conflict` when another learner already has it.
pub fn set_email(conn: &mut SqliteConnection, author: i64, email: &str) -> StoreResult<()> {
    use super::schema::authors;
    let taken: Option<i64> = authors::table
        .filter(authors::email.eq(email))
        .filter(authors::id.ne(author))
        .select(authors::id)
        .first(conn)
        .optional()?;
    if taken.is_some() {
        return Err(StoreError::field("email", "another learner already has this address"));
    }
    let n = diesel::update(authors::table.find(author)).set(authors::email.eq(email)).execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound("learner"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_taken_literally() {
        assert_eq!(like_pattern("  "), None);
        assert_eq!(like_pattern("a%b_c\\").as_deref(), Some("%a\\%b\\_c\\\\%"));
        assert_eq!(like_pattern(&"x".repeat(500)).map(|p| p.len()), Some(MAX_SEARCH + 2));
    }

    #[test]
    fn sort_words_round_trip() {
        for s in Sort::ALL {
            assert_eq!(Sort::parse(s.as_str()), Some(s));
        }
        assert_eq!(Sort::parse("id; DROP TABLE authors"), None);
    }
}
