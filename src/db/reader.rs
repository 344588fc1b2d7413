//! The instructor's Reader: harvested Links newest first, filtered, with keyset
//! pagination (`id < cursor`), so page 500 costs what page 1 costs.

use diesel::prelude::*;

use super::awards::Award;
use super::courses::Task;
use super::links::{Authorship, Link};
use super::schema::{authors, awards, course_modules, feeds, link_tasks, links, module_tasks, tasks};
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

/// The Reader's filters (all optional) and cursor.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct Filter {
    pub course: Option<i64>,
    pub module: Option<i64>,
    pub task: Option<i64>,
    pub author: Option<i64>,
    pub feed: Option<i64>,
    pub status: Option<Status>,
    pub q: Option<String>,
    /// Show Links with ids below this (the next-page cursor).
    pub before: Option<i64>,
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
}

fn escape_like(q: &str) -> String {
    let mut s = String::with_capacity(q.len() + 2);
    s.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

/// The Task ids a course/module/task filter selects, or `None` for no such filter.
fn task_scope(conn: &mut SqliteConnection, f: &Filter) -> StoreResult<Option<Vec<i64>>> {
    if let Some(t) = f.task {
        return Ok(Some(vec![t]));
    }
    if let Some(m) = f.module {
        return Ok(Some(
            module_tasks::table.filter(module_tasks::module_id.eq(m)).select(module_tasks::task_id).load(conn)?,
        ));
    }
    if let Some(c) = f.course {
        return Ok(Some(
            module_tasks::table
                .inner_join(course_modules::table.on(course_modules::module_id.eq(module_tasks::module_id)))
                .filter(course_modules::course_id.eq(c))
                .select(module_tasks::task_id)
                .distinct()
                .load(conn)?,
        ));
    }
    Ok(None)
}

/// One page of the Reader.
pub fn page(conn: &mut SqliteConnection, f: &Filter, limit: i64) -> StoreResult<Page> {
    let mut q = links::table
        .inner_join(authors::table)
        .inner_join(feeds::table)
        .select((Link::as_select(), authors::name, authors::id, authors::email, feeds::title))
        .order(links::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(before) = f.before {
        q = q.filter(links::id.lt(before));
    }
    if let Some(ids) = task_scope(conn, f)? {
        let tied = link_tasks::table
            .filter(link_tasks::task_id.eq_any(ids).and(link_tasks::tied.eq(true)))
            .select(link_tasks::link_id);
        q = q.filter(links::id.eq_any(tied));
    }
    if let Some(a) = f.author {
        q = q.filter(links::author_id.eq(a));
    }
    if let Some(feed) = f.feed {
        q = q.filter(links::feed_id.eq(feed));
    }
    if let Some(text) = f.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = escape_like(text);
        q = q
            .filter(links::title.like(pattern.clone()).escape('\\').or(links::summary_html.like(pattern).escape('\\')));
    }
    let awarded = awards::table.filter(awards::link_id.eq(links::id.nullable())).select(awards::id);
    match f.status {
        Some(Status::New) => {
            q = q.filter(links::dismissed.eq(false)).filter(diesel::dsl::not(diesel::dsl::exists(awarded)))
        }
        Some(Status::Awarded) => q = q.filter(diesel::dsl::exists(awarded)),
        Some(Status::Dismissed) => q = q.filter(links::dismissed.eq(true)),
        Some(Status::Starred) => q = q.filter(links::starred.eq(true)),
        None => {}
    }
    let mut rows: Vec<(Link, String, i64, Option<String>, String)> = q.load(conn)?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.0.id)
    } else {
        None
    };
    let ids: Vec<i64> = rows.iter().map(|r| r.0.id).collect();
    let ties: Vec<(i64, Task)> = link_tasks::table
        .inner_join(tasks::table)
        .filter(link_tasks::link_id.eq_any(&ids).and(link_tasks::tied.eq(true)))
        .order(tasks::hashtag)
        .select((link_tasks::link_id, Task::as_select()))
        .load(conn)?;
    let all_awards = super::awards::for_links(conn, &ids)?;
    let firsts: Vec<i64> = rows.iter().filter_map(|r| r.0.duplicate_of).collect();
    let first_names: Vec<(i64, String)> = if firsts.is_empty() {
        Vec::new()
    } else {
        authors::table.filter(authors::id.eq_any(&firsts)).select((authors::id, authors::name)).load(conn)?
    };
    let entries = rows
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
        .collect();
    Ok(Page { entries, next })
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
    let f = Filter { before: Some(link_id + 1), ..Default::default() };
    let p = page(conn, &f, 1)?;
    Ok(p.entries.into_iter().find(|e| e.link.id == link_id))
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
