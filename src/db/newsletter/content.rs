//! What an issue holds: the course's Tasks, the posts harvested in its
//! window and the badges awarded in it.

use diesel::prelude::*;

use super::*;
use crate::db::schema::{awards, course_modules, courses, link_tasks, links, module_tasks, modules, tasks};
use crate::db::{OptionalExt, StoreResult};

/// A harvested post, with the course's Tasks it is tied to.
#[derive(Debug, Clone)]
pub struct Post {
    pub link_id: i64,
    pub url: Option<String>,
    pub title: String,
    pub author: String,
    pub summary_html: String,
    pub published_at: Option<i64>,
    pub task_ids: Vec<i64>,
}

/// A harvested post as loaded: id, URL, title, the item's author, the feed's learner (name,
/// choice of public name, pseudonym), summary, publication time.
type PostRow = (
    i64,
    Option<String>,
    String,
    Option<String>,
    (String, crate::db::learners::NameShown, Option<String>),
    String,
    Option<i64>,
);

/// The ids of a course's Tasks, in course order.
pub fn course_tasks(conn: &mut SqliteConnection, course_id: i64) -> StoreResult<Vec<Task>> {
    Ok(course_modules::table
        .inner_join(modules::table.inner_join(module_tasks::table.inner_join(tasks::table)))
        .filter(course_modules::course_id.eq(course_id))
        .order((course_modules::position, module_tasks::position, tasks::id))
        .select(Task::as_select())
        .load(conn)?)
}

/// Posts harvested in `(since, until]` that are tied to one of the course's Tasks, or come from
/// a feed whose learner has a post tied to one; not the dismissed ones; at most `limit`,
/// oldest first.
pub fn posts_between(
    conn: &mut SqliteConnection,
    course_id: i64,
    since: i64,
    until: i64,
    limit: i64,
) -> StoreResult<Vec<Post>> {
    use crate::db::schema::authors;
    let task_ids: Vec<i64> = course_tasks(conn, course_id)?.iter().map(|t| t.id).collect();
    let tied_links = link_tasks::table
        .filter(link_tasks::task_id.eq_any(task_ids.clone()).and(link_tasks::tied.eq(true)))
        .select(link_tasks::link_id);
    let learner_feeds: Vec<i64> =
        links::table.filter(links::id.eq_any(tied_links)).select(links::feed_id).distinct().load(conn)?;
    let rows: Vec<PostRow> = links::table
        .inner_join(authors::table)
        .filter(links::harvested_at.gt(since).and(links::harvested_at.le(until)))
        .filter(links::dismissed.eq(false))
        .filter(links::feed_id.eq_any(&learner_feeds))
        .order((links::harvested_at, links::id))
        .limit(limit)
        .select((
            links::id,
            links::url,
            links::title,
            links::author_name,
            (authors::name, authors::name_shown, authors::pseudonym),
            links::summary_html,
            links::published_at,
        ))
        .load(conn)?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let ties: Vec<(i64, i64)> = link_tasks::table
        .filter(link_tasks::link_id.eq_any(&ids))
        .filter(link_tasks::task_id.eq_any(&task_ids))
        .filter(link_tasks::tied.eq(true))
        .select((link_tasks::link_id, link_tasks::task_id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(link_id, url, title, item_author, (name, shown, pseudonym), summary_html, published_at)| Post {
            link_id,
            url,
            title,
            // The byline of the learner's own feed, unless they chose initials or a pseudonym:
            // then that choice, which the byline would undo.
            author: item_author
                .filter(|a| !a.trim().is_empty() && shown == crate::db::learners::NameShown::Given)
                .unwrap_or_else(|| crate::db::learners::public_name(&name, shown, pseudonym.as_deref())),
            summary_html,
            published_at,
            task_ids: ties.iter().filter(|(l, _)| *l == link_id).map(|(_, t)| *t).collect(),
        })
        .collect())
}

/// The badges of one Task awarded in an issue's window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadgeTally {
    pub title: String,
    pub count: i64,
    /// The public names of the learners who earned it, as each chose to be shown, sorted and
    /// once each. A recipient with no learner record (an award by address alone) never made
    /// that choice, so is counted but not named.
    pub names: Vec<String>,
}

/// An award as tallied: its Task (id, title) and, when the recipient is a learner, their name,
/// choice of public name and pseudonym.
type AwardRow = (i64, String, Option<String>, Option<crate::db::learners::NameShown>, Option<String>);

/// Badges of the course's Tasks awarded in `(since, until]` and not revoked, per Task.
pub fn badge_counts(
    conn: &mut SqliteConnection,
    course_id: i64,
    since: i64,
    until: i64,
) -> StoreResult<Vec<BadgeTally>> {
    use crate::db::learners::public_name;
    use crate::db::schema::authors;
    let task_ids: Vec<i64> = course_tasks(conn, course_id)?.iter().map(|t| t.id).collect();
    let rows: Vec<AwardRow> = awards::table
        .inner_join(tasks::table)
        .left_join(authors::table)
        .filter(awards::task_id.eq_any(task_ids))
        .filter(awards::issued_on.gt(since).and(awards::issued_on.le(until)))
        .filter(awards::revoked_at.is_null())
        .filter(awards::withdrawn_at.is_null())
        .order((tasks::title, tasks::id))
        .select((
            tasks::id,
            tasks::title,
            authors::name.nullable(),
            authors::name_shown.nullable(),
            authors::pseudonym.nullable(),
        ))
        .load(conn)?;
    let mut out: Vec<(i64, BadgeTally)> = Vec::new();
    for (task, title, name, shown, pseudonym) in rows {
        if out.last().is_none_or(|(t, _)| *t != task) {
            out.push((task, BadgeTally { title, count: 0, names: Vec::new() }));
        }
        let Some((_, tally)) = out.last_mut() else { continue };
        tally.count += 1;
        if let (Some(name), Some(shown)) = (name, shown) {
            tally.names.push(public_name(&name, shown, pseudonym.as_deref()));
        }
    }
    Ok(out
        .into_iter()
        .map(|(_, mut t)| {
            t.names.sort();
            t.names.dedup();
            t
        })
        .collect())
}

/// The course's slug and title.
pub fn course_names(conn: &mut SqliteConnection, course_id: i64) -> StoreResult<(String, String)> {
    courses::table.find(course_id).select((courses::slug, courses::title)).first(conn).found("course")
}
