//! Feeds an instructor adds: one by hand, or many from an OPML file. Such feeds are active at
//! once (no confirmation: the instructor vouches for them).

use diesel::SqliteConnection;

use crate::db::feeds::{self, Feed, FeedStatus, NewFeed};
use crate::db::{DbPool, StoreError, StoreResult};
use crate::domain::{Email, FieldErrors};
use crate::harvest::{self, FeedError, Harvester, Resolved};
use crate::opml;

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

/// Adds a feed by hand: the author is found by email (or made), the feed is found and read
/// once, then stored active. Broken rules come back as `StoreError::Invalid`, by field.
pub async fn add(pool: &DbPool, harvester: &Harvester, input: &AddFeed, now: i64) -> StoreResult<Feed> {
    let mut errors = FieldErrors::new();
    let name = input.name.trim().to_string();
    if name.is_empty() {
        errors.add("name", "give the author's name");
    }
    let email = if input.email.trim().is_empty() { None } else { errors.check("email", Email::parse(&input.email)) };
    if !errors.is_empty() {
        return Err(StoreError::Invalid(errors));
    }
    let r = resolve(harvester, &input.url).await.map_err(|e| StoreError::field("url", e.to_string()))?;
    let email = email.map(|e| e.to_string());
    crate::db::run(pool, move |c| {
        let author = feeds::find_or_create_author(c, &name, email.as_deref())?;
        feeds::create_feed_at(
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
        )
    })
    .await
}

/// What an OPML import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub added: usize,
    /// Feeds already subscribed, left as they were.
    pub skipped: usize,
}

/// Adds the feeds of an OPML file (read by [`opml::parse`]); each outline's text names the
/// author. Feeds already present are skipped, so importing the same file twice adds nothing.
pub fn import_opml(conn: &mut SqliteConnection, entries: &[opml::Entry], now: i64) -> StoreResult<Imported> {
    let mut out = Imported::default();
    for e in entries {
        if feeds::find_by_url(conn, &e.url)?.is_some() {
            out.skipped += 1;
            continue;
        }
        let author = feeds::find_or_create_author(conn, &e.author, None)?;
        feeds::create_feed_at(
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
            ],
        );
        let entries = opml::parse(doc.as_bytes()).unwrap();
        let then = 1_600_000_000;
        assert_eq!(import_opml(&mut c, &entries, then).unwrap(), Imported { added: 2, skipped: 0 });
        assert_eq!(import_opml(&mut c, &entries, then + 60).unwrap(), Imported { added: 0, skipped: 2 });
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
