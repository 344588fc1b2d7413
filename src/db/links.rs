//! Links (harvested posts) and their ties to Tasks.

use std::collections::HashMap;

use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::schema::{authors, feeds, link_tasks, links, tasks};
use super::{OptionalExt, StoreResult};
use crate::db::courses::Task;
use crate::db::feeds::Feed;
use crate::domain::hashtags;
use crate::domain::item::Item;
use crate::domain::sites::Sites;

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

super::stored::stored_enum! {
    /// Whose writing a Link is, stored in `links.authorship` (see [`crate::domain::sites`]
    /// for the site rules).
    pub enum Authorship {
        /// On the learner's own site: tied by hashtag and awarded as usual.
        Own = "own",
        /// On another site ("posted elsewhere"): never tied by hashtag; awarded only with an
        /// explicit confirmation.
        Elsewhere = "elsewhere",
        /// Another learner's feed delivered the same URL first (`duplicate_of`): never tied by
        /// hashtag, never awarded to this learner.
        Duplicate = "duplicate",
        /// Harvested before these rules; classified by the first housekeeping pass after the
        /// upgrade, or by an award that needs it before then.
        Unchecked = "unchecked",
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
    pub authorship: Authorship,
    /// For a duplicate: the learner (author id) whose feed delivered the URL first.
    pub duplicate_of: Option<i64>,
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

/// The first other learner whose own-site Link has each of `urls`: who owns the post. One
/// query per 500 URLs, on the `links_url` index.
pub fn first_owners(conn: &mut SqliteConnection, urls: &[&str], not_author: i64) -> StoreResult<HashMap<String, i64>> {
    let mut owners = HashMap::new();
    for chunk in urls.chunks(500) {
        let rows: Vec<(Option<String>, i64)> = links::table
            .filter(links::url.eq_any(chunk))
            .filter(links::author_id.ne(not_author))
            .filter(links::authorship.eq(Authorship::Own))
            .order(links::id)
            .select((links::url, links::author_id))
            .load(conn)?;
        for (url, author) in rows {
            if let Some(url) = url {
                owners.entry(url).or_insert(author);
            }
        }
    }
    Ok(owners)
}

/// Whose writing a post delivered by a feed is: a duplicate when another learner owns its URL,
/// else own when the URL is on one of the feed's sites, else posted elsewhere.
fn classify(url: Option<&str>, sites: &Sites, owners: &HashMap<String, i64>) -> (Authorship, Option<i64>) {
    match url {
        Some(u) => match owners.get(u) {
            Some(first) => (Authorship::Duplicate, Some(*first)),
            None if sites.contains(u) => (Authorship::Own, None),
            None => (Authorship::Elsewhere, None),
        },
        // Nothing points elsewhere: the post reached Cairn only through the learner's feed.
        None => (Authorship::Own, None),
    }
}

/// The sites a feed speaks for: its address, the site it declares and the address it was
/// added with.
pub fn sites_of(feed: &Feed) -> Sites {
    Sites::of([Some(feed.url.as_str()), feed.site_url.as_deref(), feed.joined_url.as_deref()])
}

/// Stores a feed's items in one transaction: new items become Links (inserted together),
/// changed ones update theirs, and each is classified (own, posted elsewhere, or a duplicate
/// of another learner's) and, when own, tied to the Tasks whose hashtags it carries. An
/// instructor's manual tie or untie is never changed here. The feed's sites are worked out
/// once, and who owns the posts' URLs is read in one query for the whole feed. New Links,
/// changed ones and new ties are stamped with `now`.
pub fn store_items(
    conn: &mut SqliteConnection,
    feed: &Feed,
    items: &[Item],
    tags: &HashMap<String, i64>,
    now: i64,
) -> StoreResult<StoreStats> {
    let t = now;
    let sites = sites_of(feed);
    crate::db::write_tx(conn, |conn| {
        let mut stats = StoreStats::default();
        // One query for what the feed already has, instead of one per item.
        let known: HashMap<String, (i64, String, Authorship)> = links::table
            .filter(links::feed_id.eq(feed.id))
            .select((links::item_key, links::id, links::content_hash, links::authorship))
            .load::<(String, i64, String, Authorship)>(conn)?
            .into_iter()
            .map(|(k, id, h, a)| (k, (id, h, a)))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut fresh: Vec<(&Item, String, String, String)> = Vec::new();
        let mut changed: Vec<(&Item, i64, String, String)> = Vec::new();
        let mut unchecked: Vec<(&Item, i64)> = Vec::new();
        for item in items {
            let key = item_key(item);
            if !seen.insert(key.clone()) {
                continue; // the same item twice in one document
            }
            let hash = content_hash(item);
            match known.get(&key) {
                Some((id, old, Authorship::Unchecked)) if *old == hash => {
                    unchecked.push((item, *id));
                    stats.unchanged += 1;
                }
                Some((_, old, _)) if *old == hash => stats.unchanged += 1,
                Some((id, _, _)) => {
                    let categories = serde_json::to_string(&item.categories).unwrap_or_else(|_| "[]".into());
                    changed.push((item, *id, hash, categories));
                }
                None => {
                    let categories = serde_json::to_string(&item.categories).unwrap_or_else(|_| "[]".into());
                    fresh.push((item, key, hash, categories));
                }
            }
        }
        // Who owns the URLs of the posts to classify: one query for the feed.
        let urls: Vec<&str> = fresh
            .iter()
            .map(|f| f.0)
            .chain(changed.iter().map(|c| c.0))
            .chain(unchecked.iter().map(|u| u.0))
            .filter_map(|i| i.url.as_deref())
            .collect();
        let owners = if urls.is_empty() { HashMap::new() } else { first_owners(conn, &urls, feed.author_id)? };
        for (item, id, hash, categories) in &changed {
            let (authorship, first) = classify(item.url.as_deref(), &sites, &owners);
            diesel::update(links::table.find(id))
                .set((
                    links::url.eq(&item.url),
                    links::title.eq(&item.title),
                    links::author_name.eq(&item.author),
                    links::summary_html.eq(&item.summary_html),
                    links::categories.eq(categories),
                    links::published_at.eq(item.published),
                    links::updated_at.eq(item.updated),
                    links::changed_at.eq(t),
                    links::content_hash.eq(hash),
                    links::authorship.eq(authorship),
                    links::duplicate_of.eq(first),
                ))
                .execute(conn)?;
            stats.updated += 1;
            retie(conn, *id, item, authorship == Authorship::Own, tags, t)?;
        }
        for (item, id) in &unchecked {
            let (authorship, first) = classify(item.url.as_deref(), &sites, &owners);
            diesel::update(links::table.find(id))
                .set((links::authorship.eq(authorship), links::duplicate_of.eq(first)))
                .execute(conn)?;
            retie(conn, *id, item, authorship == Authorship::Own, tags, t)?;
        }
        // New items: inserted together, then their ties. The values are owned, as a statement
        // kept for reuse is keyed by its (static) type.
        let classes: Vec<(Authorship, Option<i64>)> =
            fresh.iter().map(|(item, ..)| classify(item.url.as_deref(), &sites, &owners)).collect();
        let rows: Vec<_> = fresh
            .iter_mut()
            .zip(&classes)
            .map(|((item, key, hash, categories), (authorship, first))| {
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
                    (links::authorship.eq(*authorship), links::duplicate_of.eq(*first)),
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
        for ((item, key, _, _), (authorship, _)) in fresh.iter().zip(&classes) {
            let Some(link_id) = by_key.get(key.as_str()) else { continue };
            if *authorship != Authorship::Own {
                continue; // a post on another site is never tied by hashtag
            }
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

/// Re-ties a changed post: hashtag ties it no longer supports go (all of them when the post
/// is not the learner's own), new ones are added; manual rows stay as they are.
fn retie(
    conn: &mut SqliteConnection,
    link_id: i64,
    item: &Item,
    own: bool,
    tags: &HashMap<String, i64>,
    t: i64,
) -> StoreResult<()> {
    let found = if own { matched_tasks(item, tags) } else { Vec::new() };
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

/// Classifies the Links harvested before the authorship rules (`unchecked`) by the rules a
/// harvest applies, feed by feed, and removes the hashtag ties of those that are not the
/// learner's own (an instructor's manual ties stay). Returns how many were classified.
pub fn classify_unchecked(conn: &mut SqliteConnection) -> StoreResult<usize> {
    classify_unchecked_of(conn, None)
}

/// [`classify_unchecked`] for the feeds of the given Links only (all feeds for `None`).
pub fn classify_unchecked_of(conn: &mut SqliteConnection, link_ids: Option<&[i64]>) -> StoreResult<usize> {
    let mut q = links::table.filter(links::authorship.eq(Authorship::Unchecked)).select(links::feed_id).into_boxed();
    if let Some(ids) = link_ids {
        q = q.filter(links::id.eq_any(ids.to_vec()));
    }
    let feed_ids: Vec<i64> = q.distinct().load(conn)?;
    let mut done = 0;
    for feed_id in feed_ids {
        let feed = crate::db::feeds::get_feed(conn, feed_id)?;
        let sites = sites_of(&feed);
        done += crate::db::write_tx(conn, |conn| -> StoreResult<usize> {
            let rows: Vec<(i64, Option<String>)> = links::table
                .filter(links::feed_id.eq(feed_id).and(links::authorship.eq(Authorship::Unchecked)))
                .order(links::id)
                .select((links::id, links::url))
                .load(conn)?;
            let urls: Vec<&str> = rows.iter().filter_map(|(_, u)| u.as_deref()).collect();
            let owners = first_owners(conn, &urls, feed.author_id)?;
            for (id, url) in &rows {
                let (authorship, first) = classify(url.as_deref(), &sites, &owners);
                diesel::update(links::table.find(id))
                    .set((links::authorship.eq(authorship), links::duplicate_of.eq(first)))
                    .execute(conn)?;
                if authorship != Authorship::Own {
                    diesel::delete(
                        link_tasks::table
                            .filter(link_tasks::link_id.eq(id))
                            .filter(link_tasks::source.eq(TieSource::Hashtag)),
                    )
                    .execute(conn)?;
                }
            }
            Ok(rows.len())
        })?;
    }
    Ok(done)
}

/// A harvested Link with a given URL, with its learner, for deciding whose evidence it is.
#[derive(Debug, Clone)]
pub struct Claim {
    pub link_id: i64,
    pub author_id: i64,
    pub author_name: String,
    pub author_email: Option<String>,
    pub authorship: Authorship,
}

/// Every Link with exactly this URL, oldest first.
pub fn claims(conn: &mut SqliteConnection, url: &str) -> StoreResult<Vec<Claim>> {
    let rows: Vec<(i64, i64, String, Option<String>, Authorship)> = links::table
        .inner_join(authors::table)
        .filter(links::url.eq(url))
        .order(links::id)
        .select((links::id, authors::id, authors::name, authors::email, links::authorship))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(link_id, author_id, author_name, author_email, authorship)| Claim {
            link_id,
            author_id,
            author_name,
            author_email,
            authorship,
        })
        .collect())
}

/// Ties (or unties) a Link and a Task by hand at `now`; later harvests keep this choice.
pub fn set_tie(conn: &mut SqliteConnection, link_id: i64, task_id: i64, tied: bool, now: i64) -> StoreResult<()> {
    get_link(conn, link_id)?;
    crate::db::courses::get_task(conn, task_id)?;
    // An upsert, not REPLACE: REPLACE's implicit delete fires no trigger, and the dashboard's
    // totals are kept by triggers on this table.
    let t = now;
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

/// One of a learner's own posts, as their private page lists it: the Tasks it counts for and,
/// for each, the award it earned, if any.
#[derive(Debug, Clone)]
pub struct OwnPost {
    pub id: i64,
    pub url: Option<String>,
    pub title: String,
    pub published_at: Option<i64>,
    pub harvested_at: i64,
    /// Each Task the post is tied to, with the public id of its award and whether that was
    /// revoked.
    pub tasks: Vec<(Task, Option<(String, bool)>)>,
}

/// A learner's posts, newest first (at most `limit`), with their ties and awards: three
/// queries whatever the number of posts.
pub fn own_posts(conn: &mut SqliteConnection, author_id: i64, limit: i64) -> StoreResult<Vec<OwnPost>> {
    use super::schema::awards;
    type Row = (i64, Option<String>, String, Option<i64>, i64);
    let rows: Vec<Row> = links::table
        .filter(links::author_id.eq(author_id))
        .order((links::published_at.desc(), links::id.desc()))
        .limit(limit)
        .select((links::id, links::url, links::title, links::published_at, links::harvested_at))
        .load(conn)?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let ties: Vec<(i64, Task)> = link_tasks::table
        .inner_join(tasks::table)
        .filter(link_tasks::link_id.eq_any(&ids).and(link_tasks::tied.eq(true)))
        .order(tasks::hashtag)
        .select((link_tasks::link_id, Task::as_select()))
        .load(conn)?;
    let made: Vec<(Option<i64>, i64, String, Option<i64>)> = awards::table
        .filter(awards::link_id.eq_any(&ids).and(awards::withdrawn_at.is_null()))
        .order(awards::id)
        .select((awards::link_id, awards::task_id, awards::public_id, awards::revoked_at))
        .load(conn)?;
    let mut posts: Vec<OwnPost> = rows
        .into_iter()
        .map(|(id, url, title, published_at, harvested_at)| OwnPost {
            id,
            url,
            title,
            published_at,
            harvested_at,
            tasks: Vec::new(),
        })
        .collect();
    let at: HashMap<i64, usize> = posts.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
    for (link, task) in ties {
        if let Some(&i) = at.get(&link) {
            // The latest award of the Task for this post (a re-issue comes after a revocation).
            let award = made
                .iter()
                .rev()
                .find(|(l, t, _, _)| *l == Some(link) && *t == task.id)
                .map(|(_, _, public_id, revoked)| (public_id.clone(), revoked.is_some()));
            posts[i].tasks.push((task, award));
        }
    }
    Ok(posts)
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

/// The stored summaries that may hold a link scheme the sanitiser does not allow (summaries
/// stored by earlier versions could keep a `javascript:` link made from a feed's base): each
/// Link's id, its post's URL and its summary.
pub fn suspect_summaries(conn: &mut SqliteConnection) -> StoreResult<Vec<(i64, Option<String>, String)>> {
    Ok(links::table
        .filter(
            links::summary_html
                .like("%script:%")
                .or(links::summary_html.like("%data:%"))
                .or(links::summary_html.like("%SCRIPT:%")),
        )
        .select((links::id, links::url, links::summary_html))
        .load(conn)?)
}

/// Replaces a Link's summary.
pub fn set_summary(conn: &mut SqliteConnection, id: i64, summary_html: &str) -> StoreResult<()> {
    diesel::update(links::table.find(id)).set(links::summary_html.eq(summary_html)).execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Authorship, TieSource};

    #[test]
    fn tie_sources_round_trip() {
        crate::db::stored::assert_round_trip!(TieSource);
        crate::db::stored::assert_round_trip!(Authorship);
    }
}
