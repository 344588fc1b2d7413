//! Links (harvested posts) and their ties to Tasks.

use std::collections::HashMap;

use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::schema::{authors, feeds, link_tasks, links, tasks};
use super::{OptionalExt, StoreResult, now};
use crate::db::courses::Task;
use crate::db::feeds::Feed;
use crate::harvest::hashtags;
use crate::harvest::parse::Item;

super::stored::stored_enum! {
    /// Who tied a Link to a Task, stored in `link_tasks.source`. A harvest changes only its
    /// own ties; an instructor's stay as they are.
    pub enum TieSource {
        /// The post carries the Task's hashtag.
        Hashtag = "hashtag",
        /// An instructor tied or untied it by hand.
        Manual = "manual",
    }
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = links)]
pub struct Link {
    pub id: i64,
    pub feed_id: i64,
    pub author_id: i64,
    pub item_key: String,
    pub url: Option<String>,
    pub title: String,
    pub author_name: Option<String>,
    pub summary_html: String,
    pub categories: String,
    pub published_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub harvested_at: i64,
    pub changed_at: i64,
    pub content_hash: String,
    pub dismissed: bool,
    pub starred: bool,
}

/// How a harvest changed the stored Links of one feed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StoreStats {
    pub added: i64,
    pub updated: i64,
    pub unchanged: i64,
}

/// What identifies an item within its feed: its id, else its URL, else its title.
pub fn item_key(item: &Item) -> String {
    match (&item.id, &item.url) {
        (Some(id), _) => format!("id:{id}"),
        (None, Some(url)) => format!("url:{url}"),
        (None, None) => format!("title:{}", item.title),
    }
}

fn content_hash(item: &Item) -> String {
    let mut h = Sha256::new();
    for part in
        [item.url.as_deref().unwrap_or(""), &item.title, item.author.as_deref().unwrap_or(""), &item.summary_html]
    {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for c in &item.categories {
        h.update(c.as_bytes());
        h.update([1]);
    }
    h.update(item.published.unwrap_or(0).to_le_bytes());
    h.update(item.updated.unwrap_or(0).to_le_bytes());
    hex::encode(h.finalize())
}

/// Task ids by lower-case hashtag, for matching.
pub fn task_tags(conn: &mut SqliteConnection) -> StoreResult<HashMap<String, i64>> {
    let rows: Vec<(i64, String)> = tasks::table.select((tasks::id, tasks::hashtag)).load(conn)?;
    Ok(rows.into_iter().map(|(id, tag)| (tag.to_lowercase(), id)).collect())
}

/// Runs `$insert` on `$rows` in arrays of 16, 4 and 1 rows. A multi-row INSERT of any other
/// length would be compiled anew for every feed (with the dashboard's triggers on ties);
/// these three shapes are prepared once per connection and kept.
macro_rules! in_fixed_chunks {
    ($rows:expr, |$chunk:ident| $insert:expr) => {{
        let mut rest = $rows;
        loop {
            if let Some($chunk) = take_array::<_, 16>(&mut rest) {
                $insert;
            } else if let Some($chunk) = take_array::<_, 4>(&mut rest) {
                $insert;
            } else if let Some($chunk) = take_array::<_, 1>(&mut rest) {
                $insert;
            } else {
                break;
            }
        }
    }};
}

/// The first `N` elements of `rest`, taken off it, when it has that many.
fn take_array<T, const N: usize>(rest: &mut Vec<T>) -> Option<[T; N]> {
    if rest.len() < N {
        return None;
    }
    let tail = rest.split_off(N);
    std::mem::replace(rest, tail).try_into().ok()
}

/// Stores a feed's items in one transaction: new items become Links (inserted together),
/// changed ones update theirs, and each is tied to the Tasks whose hashtags it carries. An
/// instructor's manual tie or untie is never changed here.
pub fn store_items(
    conn: &mut SqliteConnection,
    feed: &Feed,
    items: &[Item],
    tags: &HashMap<String, i64>,
) -> StoreResult<StoreStats> {
    let t = now();
    crate::db::write_tx(conn, |conn| {
        let mut stats = StoreStats::default();
        // One query for what the feed already has, instead of one per item.
        let known: HashMap<String, (i64, String)> = links::table
            .filter(links::feed_id.eq(feed.id))
            .select((links::item_key, links::id, links::content_hash))
            .load::<(String, i64, String)>(conn)?
            .into_iter()
            .map(|(k, id, h)| (k, (id, h)))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut fresh: Vec<(&Item, String, String, String)> = Vec::new();
        for item in items {
            let key = item_key(item);
            if !seen.insert(key.clone()) {
                continue; // the same item twice in one document
            }
            let hash = content_hash(item);
            let categories = serde_json::to_string(&item.categories).unwrap_or_else(|_| "[]".into());
            match known.get(&key) {
                Some((_, old)) if *old == hash => stats.unchanged += 1,
                Some((id, _)) => {
                    diesel::update(links::table.find(id))
                        .set((
                            links::url.eq(&item.url),
                            links::title.eq(&item.title),
                            links::author_name.eq(&item.author),
                            links::summary_html.eq(&item.summary_html),
                            links::categories.eq(&categories),
                            links::published_at.eq(item.published),
                            links::updated_at.eq(item.updated),
                            links::changed_at.eq(t),
                            links::content_hash.eq(&hash),
                        ))
                        .execute(conn)?;
                    stats.updated += 1;
                    retie(conn, *id, item, tags, t)?;
                }
                None => fresh.push((item, key, hash, categories)),
            }
        }
        // New items: inserted together, then their ties. The values are owned, as a statement
        // kept for reuse is keyed by its (static) type.
        let rows: Vec<_> = fresh
            .iter_mut()
            .map(|(item, key, hash, categories)| {
                (
                    links::feed_id.eq(feed.id),
                    links::author_id.eq(feed.author_id),
                    links::item_key.eq(key.clone()),
                    links::url.eq(item.url.clone()),
                    links::title.eq(item.title.clone()),
                    links::author_name.eq(item.author.clone()),
                    links::summary_html.eq(item.summary_html.clone()),
                    links::categories.eq(std::mem::take(categories)),
                    links::published_at.eq(item.published),
                    links::updated_at.eq(item.updated),
                    links::harvested_at.eq(t),
                    links::changed_at.eq(t),
                    links::content_hash.eq(std::mem::take(hash)),
                )
            })
            .collect();
        let mut ids: Vec<(i64, String)> = Vec::with_capacity(rows.len());
        in_fixed_chunks!(rows, |chunk| ids.extend(
            diesel::insert_into(links::table)
                .values(chunk)
                .returning((links::id, links::item_key))
                .get_results::<(i64, String)>(conn)?
        ));
        let by_key: HashMap<&str, i64> = ids.iter().map(|(id, k)| (k.as_str(), *id)).collect();
        let mut ties = Vec::new();
        for (item, key, _, _) in &fresh {
            let Some(link_id) = by_key.get(key.as_str()) else { continue };
            for task_id in matched_tasks(item, tags) {
                ties.push((
                    link_tasks::link_id.eq(*link_id),
                    link_tasks::task_id.eq(task_id),
                    link_tasks::source.eq(TieSource::Hashtag),
                    link_tasks::tied.eq(true),
                    link_tasks::created_at.eq(t),
                ));
            }
        }
        in_fixed_chunks!(ties, |chunk| diesel::insert_or_ignore_into(link_tasks::table).values(chunk).execute(conn)?);
        stats.added += fresh.len() as i64;
        Ok(stats)
    })
}

/// The Task ids whose hashtags a post carries.
fn matched_tasks(item: &Item, tags: &HashMap<String, i64>) -> Vec<i64> {
    hashtags::of_post(&item.text, &item.categories).iter().filter_map(|tag| tags.get(tag).copied()).collect()
}

/// Re-ties a changed post: hashtag ties it no longer supports go, new ones are added;
/// manual rows stay as they are.
fn retie(
    conn: &mut SqliteConnection,
    link_id: i64,
    item: &Item,
    tags: &HashMap<String, i64>,
    t: i64,
) -> StoreResult<()> {
    let found = matched_tasks(item, tags);
    diesel::delete(
        link_tasks::table
            .filter(link_tasks::link_id.eq(link_id))
            .filter(link_tasks::source.eq(TieSource::Hashtag))
            .filter(link_tasks::task_id.ne_all(&found)),
    )
    .execute(conn)?;
    for task_id in found {
        diesel::insert_or_ignore_into(link_tasks::table)
            .values((
                link_tasks::link_id.eq(link_id),
                link_tasks::task_id.eq(task_id),
                link_tasks::source.eq(TieSource::Hashtag),
                link_tasks::tied.eq(true),
                link_tasks::created_at.eq(t),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Ties (or unties) a Link and a Task by hand; later harvests keep this choice.
pub fn set_tie(conn: &mut SqliteConnection, link_id: i64, task_id: i64, tied: bool) -> StoreResult<()> {
    get_link(conn, link_id)?;
    crate::db::courses::get_task(conn, task_id)?;
    // An upsert, not REPLACE: REPLACE's implicit delete fires no trigger, and the dashboard's
    // totals are kept by triggers on this table.
    let t = now();
    diesel::insert_into(link_tasks::table)
        .values((
            link_tasks::link_id.eq(link_id),
            link_tasks::task_id.eq(task_id),
            link_tasks::source.eq(TieSource::Manual),
            link_tasks::tied.eq(tied),
            link_tasks::created_at.eq(t),
        ))
        .on_conflict((link_tasks::link_id, link_tasks::task_id))
        .do_update()
        .set((link_tasks::source.eq(TieSource::Manual), link_tasks::tied.eq(tied), link_tasks::created_at.eq(t)))
        .execute(conn)?;
    Ok(())
}

pub fn get_link(conn: &mut SqliteConnection, id: i64) -> StoreResult<Link> {
    links::table.find(id).select(Link::as_select()).first(conn).found("link")
}

/// Who wrote a Link, for an award: (the post's URL, author id, name, email).
pub fn poster(conn: &mut SqliteConnection, link_id: i64) -> StoreResult<(Option<String>, i64, String, Option<String>)> {
    links::table
        .inner_join(authors::table)
        .filter(links::id.eq(link_id))
        .select((links::url, authors::id, authors::name, authors::email))
        .first(conn)
        .found("link")
}

/// The Tasks a Link is tied to.
pub fn tasks_of_link(conn: &mut SqliteConnection, link_id: i64) -> StoreResult<Vec<Task>> {
    link_tasks::table
        .inner_join(tasks::table)
        .filter(link_tasks::link_id.eq(link_id).and(link_tasks::tied.eq(true)))
        .order(tasks::hashtag)
        .select(Task::as_select())
        .load(conn)
        .map_err(Into::into)
}

/// A Link with what a listing shows beside it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkView {
    pub link: Link,
    pub author: String,
    pub feed_title: String,
    pub tasks: Vec<Task>,
}

/// Recent Links, newest first, optionally only those tied to one of `task_ids`.
pub fn recent(conn: &mut SqliteConnection, task_ids: Option<&[i64]>, limit: i64) -> StoreResult<Vec<LinkView>> {
    let mut q = links::table
        .inner_join(authors::table)
        .inner_join(feeds::table)
        .order((links::published_at.desc(), links::id.desc()))
        .limit(limit)
        .select((Link::as_select(), authors::name, feeds::title))
        .into_boxed();
    if let Some(ids) = task_ids {
        let tied = link_tasks::table
            .filter(link_tasks::task_id.eq_any(ids.to_vec()).and(link_tasks::tied.eq(true)))
            .select(link_tasks::link_id);
        q = q.filter(links::id.eq_any(tied));
    }
    let rows: Vec<(Link, String, String)> = q.load(conn)?;
    let ids: Vec<i64> = rows.iter().map(|(l, _, _)| l.id).collect();
    let ties: Vec<(i64, Task)> = link_tasks::table
        .inner_join(tasks::table)
        .filter(link_tasks::link_id.eq_any(&ids).and(link_tasks::tied.eq(true)))
        .order(tasks::hashtag)
        .select((link_tasks::link_id, Task::as_select()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(link, author, feed_title)| {
            let tasks = ties.iter().filter(|(l, _)| *l == link.id).map(|(_, t)| t.clone()).collect();
            LinkView { link, author, feed_title, tasks }
        })
        .collect())
}

/// Number of Links of a feed.
pub fn count_for_feed(conn: &mut SqliteConnection, feed_id: i64) -> StoreResult<i64> {
    links::table.filter(links::feed_id.eq(feed_id)).count().get_result(conn).map_err(Into::into)
}

/// Sanitises again, with the current policy, every stored summary that holds a link scheme
/// the policy no longer allows (summaries stored by earlier versions could keep a
/// `javascript:` link made from a feed's base). Returns how many were rewritten.
pub fn resanitize_unsafe_summaries(conn: &mut SqliteConnection) -> StoreResult<usize> {
    let suspects: Vec<(i64, Option<String>, String)> = links::table
        .filter(
            links::summary_html
                .like("%script:%")
                .or(links::summary_html.like("%data:%"))
                .or(links::summary_html.like("%SCRIPT:%")),
        )
        .select((links::id, links::url, links::summary_html))
        .load(conn)?;
    let fallback = url::Url::parse("https://invalid.example/").map_err(|e| super::StoreError::Internal(e.into()))?;
    let mut changed = 0;
    for (id, url, html) in suspects {
        let base = url.and_then(|u| url::Url::parse(&u).ok()).unwrap_or_else(|| fallback.clone());
        let clean = crate::harvest::parse::sanitize_html(&html, &base);
        if clean != html {
            diesel::update(links::table.find(id)).set(links::summary_html.eq(clean)).execute(conn)?;
            changed += 1;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::TieSource;

    #[test]
    fn tie_sources_round_trip() {
        crate::db::stored::assert_round_trip!(TieSource);
    }
}
