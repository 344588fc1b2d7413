//! Feeds an instructor adds: one by hand, or many from an OPML file. Such feeds are active at
//! once (no confirmation: the instructor vouches for them).

use diesel::SqliteConnection;

use crate::app::access::{Actor, Role};
use crate::db::feeds::{self, Feed, FeedStatus, NewFeed};
use crate::db::{DbPool, StoreError, StoreResult};
use crate::domain::{Email, FieldErrors};
use crate::harvest::authorship::own_instance_refusal;
use crate::harvest::{self, FeedError, Harvester, Resolved};
use crate::opml;

/// Learners' feeds serve every course: any member of a teaching team may read the list (and
/// ask for a feed to be read again now).
pub fn may_read(actor: &Actor) -> StoreResult<()> {
    actor.require_some(Role::Reviewer, "see learners' feeds")
}

/// A course's owner, or an admin, adds, changes, pauses, removes, imports and exports
/// learners' feeds.
pub fn may_manage(actor: &Actor) -> StoreResult<()> {
    actor.require_some(Role::Owner, "add, change, pause, remove, import or export learners' feeds")
}

/// A feed to add, as typed.
#[derive(Debug, Clone, Default)]
pub struct AddFeed {
    /// The author's name.
    pub name: String,
    /// The author's email; empty for none.
    pub email: String,
    /// A blog or feed address, perhaps without a scheme.
    pub url: String,
}

/// Finds the feed at an address an instructor typed, with the harvester's own limits.
pub async fn resolve(harvester: &Harvester, typed: &str) -> Result<Resolved, FeedError> {
    harvest::resolve(harvester.fetcher(), &super::subscribe::normalise_address(typed)).await
}

/// Finds a learner's feed at an address an instructor typed, refusing Cairn's own pages and
/// feeds (under `base_url`) before and after the address is followed. The error is said in
/// words, for the `url` field.
pub async fn resolve_learner_feed(harvester: &Harvester, base_url: &str, typed: &str) -> Result<Resolved, String> {
    let address = super::subscribe::normalise_address(typed);
    if let Some(r) = own_instance_refusal(&address, base_url) {
        return Err(r);
    }
    let resolved = resolve(harvester, &address).await.map_err(|e| e.to_string())?;
    match own_instance_refusal(&resolved.feed_url, base_url) {
        Some(r) => Err(r),
        None => Ok(resolved),
    }
}

/// Changes a feed's address, as an instructor typed it (Cairn's own pages and feeds refused).
pub async fn change_url(
    pool: &DbPool,
    harvester: &Harvester,
    base_url: &str,
    feed_id: i64,
    typed: &str,
    now: i64,
) -> StoreResult<()> {
    let r = resolve_learner_feed(harvester, base_url, typed).await.map_err(|e| StoreError::field("url", e))?;
    let joined = super::subscribe::normalise_address(typed);
    crate::db::run(pool, move |c| {
        crate::db::write_tx(c, |c| {
            feeds::set_url(c, feed_id, &r.feed_url, now)?;
            feeds::set_joined_url(c, feed_id, &joined)
        })
    })
    .await
}

/// Adds a feed by hand: the author is found by email (or made), the feed is found and read
/// once, then stored active. Broken rules come back as `StoreError::Invalid`, by field.
pub async fn add(pool: &DbPool, harvester: &Harvester, base_url: &str, input: &AddFeed, now: i64) -> StoreResult<Feed> {
    let mut errors = FieldErrors::new();
    let name = input.name.trim().to_string();
    if name.is_empty() {
        errors.add("name", "give the author's name");
    }
    let email = if input.email.trim().is_empty() { None } else { errors.check("email", Email::parse(&input.email)) };
    if !errors.is_empty() {
        return Err(StoreError::Invalid(errors));
    }
    let r = resolve_learner_feed(harvester, base_url, &input.url).await.map_err(|e| StoreError::field("url", e))?;
    let email = email.map(|e| e.to_string());
    let joined = super::subscribe::normalise_address(&input.url);
    crate::db::run(pool, move |c| {
        let author = feeds::find_or_create_author(c, &name, email.as_deref(), now)?;
        let feed = feeds::create_feed(
            c,
            NewFeed {
                author_id: author.id,
                url: &r.feed_url,
                title: &r.feed.title,
                site_url: r.feed.site_url.as_deref(),
                status: FeedStatus::Active,
                confirm_token_hash: None,
                manage_token_hash: None,
            },
            now,
        )?;
        feeds::set_joined_url(c, feed.id, &joined)?;
        Ok(Feed { joined_url: Some(joined), ..feed })
    })
    .await
}

/// What an OPML import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub added: usize,
    /// Feeds already subscribed, left as they were.
    pub skipped: usize,
    /// Feeds not added, each with the reason (Cairn's own pages and feeds).
    pub refused: Vec<String>,
    /// Learners of the added feeds who have no email address: OPML carries none, and no badge
    /// can be issued to them until the instructor adds one (on their page under Learners). Their
    /// names, in file order.
    pub without_email: Vec<String>,
}

/// Adds the feeds of an OPML file (read by [`opml::parse`]); each outline's text names the
/// author. Feeds already present are skipped, so importing the same file twice adds nothing;
/// Cairn's own pages and feeds (under `base_url`) are refused.
pub fn import_opml(
    conn: &mut SqliteConnection,
    base_url: &str,
    entries: &[opml::Entry],
    now: i64,
) -> StoreResult<Imported> {
    let mut out = Imported::default();
    for e in entries {
        if let Some(r) = own_instance_refusal(&e.url, base_url) {
            out.refused.push(r);
            continue;
        }
        if feeds::find_by_url(conn, &e.url)?.is_some() {
            out.skipped += 1;
            continue;
        }
        let author = feeds::find_or_create_author(conn, &e.author, None, now)?;
        if author.email.is_none() && !out.without_email.contains(&author.name) {
            out.without_email.push(author.name.clone());
        }
        feeds::create_feed(
            conn,
            NewFeed {
                author_id: author.id,
                url: &e.url,
                title: &e.title,
                site_url: e.site_url.as_deref(),
                status: FeedStatus::Active,
                confirm_token_hash: None,
                manage_token_hash: None,
            },
            now,
        )?;
        out.added += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opml_import_adds_active_feeds_once_at_the_time_given() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&dir.path().join("cairn.db")).unwrap();
        let mut c = pool.get().unwrap();
        let doc = opml::export(
            "Feeds",
            &[
                ("Ada", "Ada's blog", "https://ada.example.org/feed", None),
                ("Grace", "Grace's blog", "https://grace.example.org/feed", Some("https://grace.example.org/")),
                ("Eve", "The course", "https://cairn.example.edu/courses/el30/feed.rss", None),
            ],
        );
        let entries = opml::parse(doc.as_bytes()).unwrap();
        let then = 1_600_000_000;
        let base = "https://cairn.example.edu";
        let first = import_opml(&mut c, base, &entries, then).unwrap();
        assert_eq!((first.added, first.skipped, first.without_email.len()), (2, 0, 2));
        assert_eq!(first.refused.len(), 1);
        assert!(first.refused[0].contains("/courses/el30/feed.rss is a page or feed of this Cairn site"));
        let again = import_opml(&mut c, base, &entries, then + 60).unwrap();
        assert_eq!((again.added, again.skipped, again.refused.len()), (0, 2, 1));
        let listed = feeds::list_feeds(&mut c).unwrap();
        assert_eq!(listed.len(), 2);
        for (f, _) in &listed {
            assert_eq!((f.status, f.created_at, f.next_poll_at), (FeedStatus::Active, then, then));
        }
        let mut authors: Vec<&str> = listed.iter().map(|(_, a)| a.name.as_str()).collect();
        authors.sort();
        assert_eq!(authors, ["Ada", "Grace"]);
    }
}
