//! The instructor's Reader: harvested Links newest first, filtered, with keyset
//! pagination (`id < cursor`); and the Posts page's list of the same Links, filtered alike and
//! paged by number.

use std::collections::HashMap;

use diesel::prelude::*;

use super::awards::Award;
use super::courses::Task;
use super::links::{Authorship, Link};
use super::listing::{
    Bind, IdTotal, Listed, PER_PAGE, Scope, Where, bind_all, learners_of_tasks_sql, like_pattern, tasks_of_courses_sql,
};
use super::schema::{authors, feeds, link_tasks, links, tasks};
use super::{StoreError, StoreResult};

/// Links per page.
pub const PAGE: i64 = 25;

super::stored::stored_enum! {
    /// Which Links the Reader shows, as named in its `status` filter.
    pub enum Status {
        /// Neither dismissed nor awarded.
        New = "new",
        Awarded = "awarded",
        Dismissed = "dismissed",
        Starred = "starred",
    }
}

super::stored::stored_enum! {
    /// A flag an instructor sets on a Link, as named in the Reader's forms.
    pub enum LinkFlag {
        /// Hidden from the "new" list.
        Dismissed = "dismissed",
        Starred = "starred",
    }
}

/// The Reader's filters (all optional) and cursor; the Posts page takes the same filters.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct Filter {
    pub course: Option<i64>,
    pub module: Option<i64>,
    pub task: Option<i64>,
    pub author: Option<i64>,
    pub feed: Option<i64>,
    pub status: Option<Status>,
    /// Text found in the post (title, summary, address, the author it names) or its learner's
    /// name or email.
    pub q: Option<String>,
    /// Text found in the learner's name or email, or an address of one of their feeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learner: Option<String>,
    /// "1": only posts tied to no task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untied: Option<String>,
    /// Show Links with ids below this (the next-page cursor).
    pub before: Option<i64>,
    /// Only the posts of these courses (set by the caller from the instructor's roles, never
    /// from a query string): those tied to one of their tasks, and those tied to no task whose
    /// learner is on one of their rosters. `None`: every post.
    #[serde(skip)]
    pub within: Option<Vec<i64>>,
}

impl Filter {
    /// Only posts tied to no task: with a course, module or task, those of its learners (the
    /// roster's rule) or naming one of its tasks.
    pub fn untied(&self) -> bool {
        self.untied.as_deref().is_some_and(|v| !v.is_empty() && v != "0")
    }

    /// The filters as SQL over `links l JOIN authors a`, the cursor left out.
    fn conditions(&self) -> Where {
        let mut w = Where::default();
        if let Some(a) = self.author {
            w.and("l.author_id = ?", [Bind::Int(a)]);
        }
        if let Some(feed) = self.feed {
            w.and("l.feed_id = ?", [Bind::Int(feed)]);
        }
        if let Some(p) = self.q.as_deref().and_then(like_pattern) {
            w.and(
                "l.title LIKE ? ESCAPE '\\' OR l.summary_html LIKE ? ESCAPE '\\' OR l.url LIKE ? ESCAPE '\\' \
                 OR l.author_name LIKE ? ESCAPE '\\' OR a.name LIKE ? ESCAPE '\\' OR a.email LIKE ? ESCAPE '\\'",
                std::iter::repeat_n(Bind::Text(p), 6),
            );
        }
        if let Some(p) = self.learner.as_deref().and_then(like_pattern) {
            w.and(
                "l.author_id IN (SELECT id FROM authors WHERE name LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\' \
                 UNION SELECT author_id FROM feeds WHERE url LIKE ? ESCAPE '\\' OR site_url LIKE ? ESCAPE '\\' \
                 OR joined_url LIKE ? ESCAPE '\\')",
                std::iter::repeat_n(Bind::Text(p), 5),
            );
        }
        let scope = Scope::of(self.course, self.module, self.task);
        if self.untied() {
            w.and("NOT EXISTS (SELECT 1 FROM link_tasks lt WHERE lt.link_id = l.id AND lt.tied)", []);
            if let Some(s) = scope {
                // The unary `+` keeps SQLite from looking up every post of every learner of the
                // scope by index (a "multi-index OR"): scanning the posts and probing the two
                // sets, each built once, costs half as much.
                w.and(
                    format!(
                        "+l.id IN (SELECT lt.link_id FROM link_tasks lt WHERE lt.task_id IN ({})) \
                         OR +l.author_id IN ({})",
                        s.tasks_sql(),
                        s.learners_sql()
                    ),
                    std::iter::once(s.bind()).chain(s.learner_binds()),
                );
            }
        } else if let Some(s) = scope {
            w.and(
                format!(
                    "l.id IN (SELECT lt.link_id FROM link_tasks lt WHERE lt.tied AND lt.task_id IN ({}))",
                    s.tasks_sql()
                ),
                [s.bind()],
            );
        }
        if let Some(courses) = &self.within {
            let (sql, binds) = within_sql(courses);
            w.and(sql, binds);
        }
        let awarded = "EXISTS (SELECT 1 FROM awards aw WHERE aw.link_id = l.id)";
        match self.status {
            Some(Status::New) => w.and(format!("NOT l.dismissed AND NOT {awarded}"), []),
            Some(Status::Awarded) => w.and(awarded, []),
            Some(Status::Dismissed) => w.and("l.dismissed", []),
            Some(Status::Starred) => w.and("l.starred", []),
            None => {}
        }
        w
    }
}

/// The condition over `links l` of [`Filter::within`]: no course at all matches nothing.
fn within_sql(courses: &[i64]) -> (String, Vec<Bind>) {
    if courses.is_empty() {
        return ("0".into(), Vec::new());
    }
    let tasks = tasks_of_courses_sql(courses.len());
    let sql = format!(
        "l.id IN (SELECT lt.link_id FROM link_tasks lt WHERE lt.tied AND lt.task_id IN ({tasks})) \
         OR (NOT EXISTS (SELECT 1 FROM link_tasks lu WHERE lu.link_id = l.id AND lu.tied) \
             AND l.author_id IN ({}))",
        learners_of_tasks_sql(&tasks)
    );
    let binds = (0..4).flat_map(|_| courses.iter().map(|c| Bind::Int(*c))).collect();
    (sql, binds)
}

/// Whether the Link is one of the posts of these courses, as [`Filter::within`] has it.
pub fn is_within(conn: &mut SqliteConnection, link_id: i64, courses: &[i64]) -> StoreResult<bool> {
    let (cond, binds) = within_sql(courses);
    let mut w = Where::default();
    w.and("l.id = ?", [Bind::Int(link_id)]);
    w.and(cond, binds);
    let sql = format!("SELECT COUNT(*) AS n FROM links l {}", w.sql());
    Ok(bind_all(diesel::sql_query(sql), w.binds()).get_result::<Count>(conn)?.n > 0)
}

/// One Link as the Reader shows it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub link: Link,
    pub author: String,
    pub author_id: i64,
    pub author_email: Option<String>,
    pub feed_title: String,
    pub tasks: Vec<Task>,
    pub awards: Vec<Award>,
    /// For a duplicate: the name of the learner whose feed delivered the post first.
    pub duplicate_of: Option<String>,
}

impl Entry {
    /// True when the post was found elsewhere than on the learner's site (or not yet checked):
    /// an award asks for confirmation.
    pub fn elsewhere(&self) -> bool {
        matches!(self.link.authorship, Authorship::Elsewhere | Authorship::Unchecked)
    }

    /// True when another learner's feed delivered the post first: it is never awarded here.
    pub fn duplicate(&self) -> bool {
        self.link.authorship == Authorship::Duplicate
    }

    /// The award of `task_id` for this Link, if made: the standing one before a revoked one
    /// (a revoked award may have been issued again).
    pub fn award_for(&self, task_id: i64) -> Option<&Award> {
        let mut of_task = self.awards.iter().filter(|a| a.task_id == task_id);
        of_task.clone().find(|a| a.revoked_at.is_none()).or_else(|| of_task.next())
    }
}

/// A page of entries and the cursor of the next page.
pub struct Page {
    pub entries: Vec<Entry>,
    pub next: Option<i64>,
    /// Posts matching the filters, on every page.
    pub total: i64,
    /// Posts matching the filters before this page (newer than the cursor).
    pub skipped: i64,
}

impl Page {
    /// The 1-based positions of the first and last post shown ((0, 0) when none is).
    pub fn span(&self) -> (i64, i64) {
        if self.entries.is_empty() { (0, 0) } else { (self.skipped + 1, self.skipped + self.entries.len() as i64) }
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// One page of the Reader, newest first, after the cursor: the ids found, filtered and counted
/// in one query, then the entries.
pub fn page(conn: &mut SqliteConnection, f: &Filter, limit: i64) -> StoreResult<Page> {
    let mut w = f.conditions();
    let base = w.clone();
    if let Some(before) = f.before {
        w.and("l.id < ?", [Bind::Int(before)]);
    }
    let sql = format!(
        "SELECT l.id AS id, COUNT(*) OVER () AS total FROM links l JOIN authors a ON a.id = l.author_id {}
         ORDER BY l.id DESC LIMIT {}",
        w.sql(),
        limit.saturating_add(1)
    );
    let mut found: Vec<IdTotal> = bind_all(diesel::sql_query(sql), w.binds()).load(conn)?;
    let after = found.first().map_or(0, |r| r.total);
    let skipped = match f.before {
        Some(before) => {
            let mut w = base;
            w.and("l.id >= ?", [Bind::Int(before)]);
            let sql = format!("SELECT COUNT(*) AS n FROM links l JOIN authors a ON a.id = l.author_id {}", w.sql());
            bind_all(diesel::sql_query(sql), w.binds()).get_result::<Count>(conn)?.n
        }
        None => 0,
    };
    let next = if found.len() as i64 > limit {
        found.truncate(limit.max(0) as usize);
        found.last().map(|r| r.id)
    } else {
        None
    };
    let ids: Vec<i64> = found.iter().map(|r| r.id).collect();
    Ok(Page { entries: entries(conn, &ids)?, next, total: skipped + after, skipped })
}

/// One page of posts (50), latest published first, as the Posts page lists them: filtered,
/// counted and paged in one query, then the entries.
pub fn list(conn: &mut SqliteConnection, f: &Filter, page: i64) -> StoreResult<Listed<Entry>> {
    let w = f.conditions();
    let page = page.clamp(1, super::listing::MAX_PAGE);
    let offset = Listed::<()>::offset(page, PER_PAGE);
    let select = |limit: i64, offset: i64| {
        let sql = format!(
            "SELECT l.id AS id, COUNT(*) OVER () AS total FROM links l JOIN authors a ON a.id = l.author_id {}
             ORDER BY COALESCE(l.published_at, l.harvested_at) DESC, l.id DESC LIMIT {limit} OFFSET {offset}",
            w.sql()
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
    Ok(Listed { rows: entries(conn, &ids)?, total, page, per_page: PER_PAGE })
}

/// The entries of these Links, in the order given (those gone are left out).
pub fn entries(conn: &mut SqliteConnection, ids: &[i64]) -> StoreResult<Vec<Entry>> {
    let mut rows: Vec<(Link, String, i64, Option<String>, String)> = links::table
        .inner_join(authors::table)
        .inner_join(feeds::table)
        .filter(links::id.eq_any(ids))
        .select((Link::as_select(), authors::name, authors::id, authors::email, feeds::title))
        .load(conn)?;
    let at: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    rows.sort_by_key(|r| at.get(&r.0.id).copied().unwrap_or(usize::MAX));
    let ties: Vec<(i64, Task)> = link_tasks::table
        .inner_join(tasks::table)
        .filter(link_tasks::link_id.eq_any(ids).and(link_tasks::tied.eq(true)))
        .order(tasks::hashtag)
        .select((link_tasks::link_id, Task::as_select()))
        .load(conn)?;
    let all_awards = super::awards::for_links(conn, ids)?;
    let firsts: Vec<i64> = rows.iter().filter_map(|r| r.0.duplicate_of).collect();
    let first_names: Vec<(i64, String)> = if firsts.is_empty() {
        Vec::new()
    } else {
        authors::table.filter(authors::id.eq_any(&firsts)).select((authors::id, authors::name)).load(conn)?
    };
    Ok(rows
        .into_iter()
        .map(|(link, author, author_id, author_email, feed_title)| Entry {
            tasks: ties.iter().filter(|(l, _)| *l == link.id).map(|(_, t)| t.clone()).collect(),
            awards: all_awards.iter().filter(|a| a.link_id == Some(link.id)).cloned().collect(),
            duplicate_of: link.duplicate_of.map(|first| {
                first_names
                    .iter()
                    .find(|(id, _)| *id == first)
                    .map_or_else(|| "a learner no longer here".to_string(), |(_, n)| n.clone())
            }),
            link,
            author,
            author_id,
            author_email,
            feed_title,
        })
        .collect())
}

/// The Tasks any post of each of `author_ids` is tied to: (author id, task id), each once.
pub fn tied_tasks_of_authors(conn: &mut SqliteConnection, author_ids: &[i64]) -> StoreResult<Vec<(i64, i64)>> {
    link_tasks::table
        .inner_join(links::table)
        .filter(links::author_id.eq_any(author_ids).and(link_tasks::tied.eq(true)))
        .select((links::author_id, link_tasks::task_id))
        .distinct()
        .load(conn)
        .map_err(Into::into)
}

/// One entry by Link id (for in-place updates).
pub fn entry(conn: &mut SqliteConnection, link_id: i64) -> StoreResult<Option<Entry>> {
    Ok(entries(conn, &[link_id])?.into_iter().next())
}

/// Sets or clears a Link's flag.
pub fn set_flag(conn: &mut SqliteConnection, link_id: i64, flag: LinkFlag, on: bool) -> StoreResult<()> {
    let target = links::table.find(link_id);
    let n = match flag {
        LinkFlag::Dismissed => diesel::update(target).set(links::dismissed.eq(on)).execute(conn)?,
        LinkFlag::Starred => diesel::update(target).set(links::starred.eq(on)).execute(conn)?,
    };
    if n == 0 { Err(StoreError::NotFound("link")) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::{LinkFlag, Status};

    #[test]
    fn reader_words_round_trip() {
        crate::db::stored::assert_round_trip!(Status);
        crate::db::stored::assert_round_trip!(LinkFlag);
    }
}
