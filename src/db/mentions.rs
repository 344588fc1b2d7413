//! Received Webmentions: queued until their source is fetched and found to link to the
//! target, and moderated before foreign ones are shown.

use diesel::prelude::*;

use super::schema::{awards, feeds, mentions};
use super::{StoreError, StoreResult};

super::stored::stored_enum! {
    /// Whether the source was found to link to the target.
    pub enum Status {
        /// Not checked yet.
        Pending = "pending",
        /// The source links to the target.
        Verified = "verified",
        /// The source does not link to the target, or could not be read.
        Rejected = "rejected",
        /// The source is gone (410).
        Deleted = "deleted",
    }
}

super::stored::stored_enum! {
    /// Whether a received Webmention may be shown publicly.
    pub enum Moderation {
        /// The source is on the learner's own site: shown once verified.
        OwnSite = "own_site",
        /// Waiting for an instructor on /admin/mentions.
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
    }
}

/// A received Webmention waiting to be checked.
#[derive(Debug, Clone, Queryable)]
pub struct PendingMention {
    pub id: i64,
    pub source: String,
    pub target: String,
}

/// Pending mentions, oldest first, at most `limit`.
pub fn pending(conn: &mut SqliteConnection, limit: i64) -> StoreResult<Vec<PendingMention>> {
    mentions::table
        .filter(mentions::status.eq(Status::Pending))
        .order(mentions::received_at)
        .limit(limit)
        .select((mentions::id, mentions::source, mentions::target))
        .load(conn)
        .map_err(Into::into)
}

/// Records the check of a mention.
pub fn settle(conn: &mut SqliteConnection, id: i64, status: Status, reason: Option<&str>, now: i64) -> StoreResult<()> {
    diesel::update(mentions::table.find(id))
        .set((mentions::status.eq(status), mentions::reason.eq(reason), mentions::checked_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

/// Which pending mentions to count.
#[derive(Debug, Clone, Copy)]
pub enum PendingOf<'a> {
    All,
    Source(&'a str),
    Target(&'a str),
    Client(&'a str),
}

/// How many mentions are pending, in all or of one source, target or client.
pub fn count_pending(conn: &mut SqliteConnection, of: PendingOf<'_>) -> StoreResult<i64> {
    let pending = mentions::table.filter(mentions::status.eq(Status::Pending));
    let n = match of {
        PendingOf::All => pending.count().get_result(conn)?,
        PendingOf::Source(s) => pending.filter(mentions::source.eq(s)).count().get_result(conn)?,
        PendingOf::Target(t) => pending.filter(mentions::target.eq(t)).count().get_result(conn)?,
        PendingOf::Client(c) => pending.filter(mentions::client.eq(c)).count().get_result(conn)?,
    };
    Ok(n)
}

/// The URLs that make up the site of the learner holding award `public_id`: the award's
/// evidence, and the learner's confirmed feeds and their sites. `None` when there is no such
/// award.
pub fn learner_sites(conn: &mut SqliteConnection, public_id: &str) -> StoreResult<Option<Vec<String>>> {
    let award: Option<(Option<String>, Option<i64>)> = awards::table
        .filter(awards::public_id.eq(public_id))
        .select((awards::evidence_url, awards::author_id))
        .first(conn)
        .optional()?;
    let Some((evidence, author)) = award else { return Ok(None) };
    let mut sites: Vec<String> = evidence.into_iter().collect();
    if let Some(author) = author {
        let rows: Vec<(String, Option<String>)> = feeds::table
            .filter(feeds::author_id.eq(author))
            .filter(feeds::status.ne(super::feeds::FeedStatus::Pending))
            .select((feeds::url, feeds::site_url))
            .load(conn)?;
        for (url, site) in rows {
            sites.push(url);
            sites.extend(site);
        }
    }
    Ok(Some(sites))
}

/// A received Webmention to queue.
#[derive(Debug, Clone)]
pub struct NewMention<'a> {
    pub source: &'a str,
    pub target: &'a str,
    /// The limit key of the client that sent it.
    pub client: Option<&'a str>,
    pub moderation: Moderation,
}

/// Queues a mention for checking; a mention of the same source and target replaces the
/// earlier one (the source may have changed).
pub fn insert(conn: &mut SqliteConnection, m: &NewMention<'_>, now: i64) -> StoreResult<()> {
    diesel::replace_into(mentions::table)
        .values((
            mentions::source.eq(m.source),
            mentions::target.eq(m.target),
            mentions::status.eq(Status::Pending),
            mentions::received_at.eq(now),
            mentions::client.eq(m.client),
            mentions::moderation.eq(m.moderation),
        ))
        .execute(conn)?;
    Ok(())
}

/// Verified mentions of a page that may be shown publicly: from the learner's own site, or
/// approved by an instructor; most recently checked first.
pub fn verified_for(conn: &mut SqliteConnection, target: &str) -> StoreResult<Vec<String>> {
    mentions::table
        .filter(mentions::target.eq(target).and(mentions::status.eq(Status::Verified)))
        .filter(mentions::moderation.eq_any([Moderation::OwnSite, Moderation::Approved]))
        .order(mentions::checked_at.desc())
        .select(mentions::source)
        .load(conn)
        .map_err(Into::into)
}

/// A received Webmention waiting for an instructor.
#[derive(Debug, Clone, Queryable)]
pub struct HeldMention {
    pub id: i64,
    pub source: String,
    pub target: String,
    pub status: Status,
    pub received_at: i64,
}

impl HeldMention {
    /// True once the source was found to link to the target.
    pub fn links_here(&self) -> bool {
        self.status == Status::Verified
    }
}

/// Mentions from outside the learners' sites, not yet approved or rejected (and not found
/// wanting), newest first.
pub fn held_for_moderation(conn: &mut SqliteConnection, limit: i64) -> StoreResult<Vec<HeldMention>> {
    mentions::table
        .filter(mentions::moderation.eq(Moderation::Pending))
        .filter(mentions::status.eq_any([Status::Pending, Status::Verified]))
        .order(mentions::received_at.desc())
        .limit(limit)
        .select((mentions::id, mentions::source, mentions::target, mentions::status, mentions::received_at))
        .load(conn)
        .map_err(Into::into)
}

/// Records an instructor's decision on a mention.
pub fn set_moderation(conn: &mut SqliteConnection, id: i64, decision: Moderation) -> StoreResult<()> {
    let n = diesel::update(mentions::table.find(id)).set(mentions::moderation.eq(decision)).execute(conn)?;
    if n == 0 { Err(StoreError::NotFound("mention")) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_stored_string() {
        crate::db::stored::assert_round_trip!(Status);
        crate::db::stored::assert_round_trip!(Moderation);
        let stored: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(stored, ["pending", "verified", "rejected", "deleted"]);
        let stored: Vec<&str> = Moderation::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(stored, ["own_site", "pending", "approved", "rejected"]);
        assert!("Verified".parse::<Status>().is_err(), "stored strings are exact");
    }
}
