//! A learner's personal data across the store, as the right to erasure needs it: finding it,
//! erasing it, and the audit of erasures (which records that one happened, never whom).

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use super::awards::Award;
use super::feeds::Author;
use super::schema::{
    authors, awards, feeds, forget_events, forget_requests, join_mails, links, mentions, newsletter_issues,
    newsletter_subscribers, outbox,
};
use super::{StoreError, StoreResult};

super::stored::stored_enum! {
    /// Who asked for a learner to be forgotten, stored in `forget_events.actor`.
    pub enum ForgetActor {
        /// `cairn learner forget` on the institution's machine.
        Cli = "cli",
        /// An instructor, on the learner's page.
        Instructor = "instructor",
        /// The learner, from their private link and the emailed confirmation.
        Learner = "learner",
    }
}

pub use super::feeds::NameShown;

/// The name the public sees for `name` under a choice: the name, its initials ("Grace Hopper"
/// → "G. H."), or the pseudonym (the name when none is stored).
pub fn public_name(name: &str, shown: NameShown, pseudonym: Option<&str>) -> String {
    match (shown, pseudonym) {
        (NameShown::Initials, _) => {
            let initials: Vec<String> = name
                .split_whitespace()
                .filter_map(|w| w.chars().next())
                .map(|c| format!("{}.", c.to_uppercase()))
                .collect();
            initials.join(" ")
        }
        (NameShown::Pseudonym, Some(p)) => p.to_string(),
        _ => name.to_string(),
    }
}

/// An author's choice of public name: (how, pseudonym).
pub fn name_choice(conn: &mut SqliteConnection, author_id: i64) -> StoreResult<(NameShown, Option<String>)> {
    Ok(authors::table.find(author_id).select((authors::name_shown, authors::pseudonym)).first(conn)?)
}

/// The name the public sees for an author now.
pub fn public_name_of(conn: &mut SqliteConnection, author_id: i64) -> StoreResult<String> {
    let (name, shown, pseudonym): (String, NameShown, Option<String>) =
        authors::table.find(author_id).select((authors::name, authors::name_shown, authors::pseudonym)).first(conn)?;
    Ok(public_name(&name, shown, pseudonym.as_deref()))
}

/// Sets how an author's name appears publicly from now on.
pub fn set_name_choice(
    conn: &mut SqliteConnection,
    author_id: i64,
    shown: NameShown,
    pseudonym: Option<&str>,
) -> StoreResult<()> {
    diesel::update(authors::table.find(author_id))
        .set((authors::name_shown.eq(shown), authors::pseudonym.eq(pseudonym)))
        .execute(conn)?;
    Ok(())
}

/// What the store holds about one learner.
#[derive(Debug, Clone)]
pub struct Holdings {
    /// The harvested author, when the learner has one (awards from the command line may not).
    pub author: Option<Author>,
    /// The learner's address, when known.
    pub email: Option<String>,
    /// Every award to them not yet withdrawn (by author, or by address).
    pub awards: Vec<Award>,
    /// Their feeds: (id, url, site url).
    pub feeds: Vec<(i64, String, Option<String>)>,
    /// Their harvested posts' URLs.
    pub post_urls: Vec<String>,
    /// Their harvested posts' ids.
    pub post_ids: Vec<i64>,
    pub posts: i64,
}

/// The learner who is author `id`.
pub fn holdings_of_author(conn: &mut SqliteConnection, id: i64) -> StoreResult<Holdings> {
    let author = super::feeds::get_author(conn, id)?;
    let email = author.email.clone();
    holdings(conn, Some(author), email)
}

/// The learner with address `email` (compared without case), whether or not they have a feed.
/// `NotFound` when the store holds nothing of that address.
pub fn holdings_of_email(conn: &mut SqliteConnection, email: &str) -> StoreResult<Holdings> {
    let author = super::feeds::author_by_email(conn, email)?;
    let h = holdings(conn, author, Some(email.to_string()))?;
    let mails: i64 = join_mails::table.filter(join_mails::email.eq(email)).count().get_result(conn)?;
    let readers = newsletter_subscriptions(conn, email)?;
    if h.author.is_none() && h.awards.is_empty() && mails == 0 && readers == 0 {
        return Err(StoreError::NotFound("learner"));
    }
    Ok(h)
}

fn holdings(conn: &mut SqliteConnection, author: Option<Author>, email: Option<String>) -> StoreResult<Holdings> {
    let author_id = author.as_ref().map(|a| a.id);
    let mut q = awards::table.filter(awards::withdrawn_at.is_null()).into_boxed();
    q = match (author_id, email.as_deref()) {
        (Some(id), Some(e)) => q.filter(awards::author_id.eq(id).or(awards::recipient_email.eq(e.to_string()))),
        (Some(id), None) => q.filter(awards::author_id.eq(id)),
        (None, Some(e)) => q.filter(awards::recipient_email.eq(e.to_string())),
        (None, None) => q.filter(sql::<Bool>("0")),
    };
    let awards = q.order(awards::id).select(Award::as_select()).load(conn)?;
    let (feeds, post_urls, posts) = match author_id {
        Some(id) => {
            let feeds = feeds::table
                .filter(feeds::author_id.eq(id))
                .select((feeds::id, feeds::url, feeds::site_url))
                .load(conn)?;
            let rows: Vec<(i64, Option<String>)> =
                links::table.filter(links::author_id.eq(id)).select((links::id, links::url)).load(conn)?;
            let posts = rows.len() as i64;
            let ids = rows.iter().map(|(id, _)| *id).collect();
            (feeds, (rows.into_iter().filter_map(|(_, u)| u).collect(), ids), posts)
        }
        None => (Vec::new(), (Vec::new(), Vec::new()), 0),
    };
    let (post_urls, post_ids) = post_urls;
    Ok(Holdings { author, email, awards, feeds, post_urls, post_ids, posts })
}

/// Turns an award into a withdrawn one: revoked with the reason "withdrawn", and without its
/// salt, recipient, evidence, narrative, documents or images. The recipient column keeps a
/// placeholder that no address can equal, so the (task, recipient) uniqueness still holds.
pub fn withdraw_award(conn: &mut SqliteConnection, id: i64, reason: &str, now: i64) -> StoreResult<()> {
    diesel::update(awards::table.find(id))
        .set((
            awards::withdrawn_at.eq(now),
            awards::revoked_at.eq(sql::<diesel::sql_types::Nullable<BigInt>>("coalesce(revoked_at, ")
                .bind::<BigInt, _>(now)
                .sql(")")),
            awards::revocation_reason.eq(reason),
            awards::recipient_email.eq(sql::<diesel::sql_types::Text>("'withdrawn:' || public_id")),
            awards::recipient_name.eq(None::<String>),
            awards::salt.eq(""),
            awards::evidence_url.eq(None::<String>),
            awards::narrative.eq(None::<String>),
            awards::link_id.eq(None::<i64>),
            awards::author_id.eq(None::<i64>),
            awards::assertion_json.eq(""),
            awards::baked_svg.eq(Vec::<u8>::new()),
            awards::baked_png.eq(Vec::<u8>::new()),
            awards::art_sha256.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes the notifications of these awards, sent or not.
pub fn delete_notifications(conn: &mut SqliteConnection, award_ids: &[i64]) -> StoreResult<usize> {
    Ok(diesel::delete(outbox::table.filter(outbox::award_id.eq_any(award_ids))).execute(conn)?)
}

/// Deletes received Webmentions whose target starts with one of `targets` or whose source
/// starts with one of `sources` (compared as text, so no character is a wildcard).
pub fn delete_mentions(conn: &mut SqliteConnection, targets: &[String], sources: &[String]) -> StoreResult<usize> {
    let mut n = 0;
    for (column, prefixes) in [("target", targets), ("source", sources)] {
        for p in prefixes.iter().filter(|p| !p.is_empty()) {
            let cond = sql::<Bool>(&format!("substr({column}, 1, length("))
                .bind::<diesel::sql_types::Text, _>(p)
                .sql(")) = ")
                .bind::<diesel::sql_types::Text, _>(p);
            n += diesel::delete(mentions::table.filter(cond)).execute(conn)?;
        }
    }
    Ok(n)
}

/// Deletes an author's harvested posts (their ties go with them), first unhooking any award
/// that points at one; returns how many posts.
pub fn delete_posts(conn: &mut SqliteConnection, author_id: i64) -> StoreResult<usize> {
    let theirs = links::table.filter(links::author_id.eq(author_id)).select(links::id.nullable());
    diesel::update(awards::table.filter(awards::link_id.eq_any(theirs)))
        .set(awards::link_id.eq(None::<i64>))
        .execute(conn)?;
    Ok(diesel::delete(links::table.filter(links::author_id.eq(author_id))).execute(conn)?)
}

/// Deletes an author with their feeds (their posts must be gone first). A feed they took up
/// after its removal may still hold the posts of the learner before them: it goes back to that
/// learner, removed, rather than leave those posts without their feed.
pub fn delete_author(conn: &mut SqliteConnection, author_id: i64) -> StoreResult<()> {
    let earlier: Vec<(i64, i64)> = links::table
        .inner_join(feeds::table)
        .filter(feeds::author_id.eq(author_id))
        .filter(links::author_id.ne(author_id))
        .select((links::feed_id, links::author_id))
        .distinct()
        .load(conn)?;
    for (feed, other) in earlier {
        diesel::update(feeds::table.find(feed))
            .set((
                feeds::author_id.eq(other),
                feeds::status.eq(super::feeds::FeedStatus::Removed),
                feeds::confirm_token_hash.eq(None::<String>),
                feeds::manage_token_hash.eq(None::<String>),
                feeds::pending_name.eq(None::<String>),
                feeds::joined_url.eq(None::<String>),
            ))
            .execute(conn)?;
    }
    diesel::delete(feeds::table.filter(feeds::author_id.eq(author_id))).execute(conn)?;
    diesel::delete(authors::table.find(author_id)).execute(conn)?;
    Ok(())
}

/// How many newsletter subscriptions (any course, any state) an address has, compared
/// without case.
pub fn newsletter_subscriptions(conn: &mut SqliteConnection, email: &str) -> StoreResult<i64> {
    Ok(newsletter_subscribers::table
        .filter(sql::<Bool>("lower(email) = lower(").bind::<diesel::sql_types::Text, _>(email).sql(")"))
        .count()
        .get_result(conn)?)
}

/// Deletes every newsletter subscription of an address (compared without case), with their
/// deliveries, complaints and queued confirmation mails (the schema cascades).
pub fn delete_newsletter_subscriptions(conn: &mut SqliteConnection, email: &str) -> StoreResult<usize> {
    Ok(diesel::delete(
        newsletter_subscribers::table
            .filter(sql::<Bool>("lower(email) = lower(").bind::<diesel::sql_types::Text, _>(email).sql(")")),
    )
    .execute(conn)?)
}

/// Deletes queued or sent notifications whose target is one of `urls` (a newsletter's
/// Webmentions to a learner's posts).
pub fn delete_notifications_to(conn: &mut SqliteConnection, urls: &[String]) -> StoreResult<usize> {
    if urls.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(outbox::table.filter(outbox::target.eq_any(urls))).execute(conn)?)
}

/// (id, content) of every sent newsletter issue whose content holds one of `needles`
/// (compared without case).
pub fn issues_mentioning(conn: &mut SqliteConnection, needles: &[String]) -> StoreResult<Vec<(i64, String)>> {
    let mut found: Vec<(i64, String)> = Vec::new();
    for n in needles.iter().filter(|n| !n.is_empty()) {
        let cond = sql::<Bool>("instr(lower(content), lower(").bind::<diesel::sql_types::Text, _>(n).sql(")) > 0");
        let rows: Vec<(i64, String)> = newsletter_issues::table
            .filter(cond)
            .select((newsletter_issues::id, newsletter_issues::content))
            .load(conn)?;
        for r in rows {
            if !found.iter().any(|(id, _)| *id == r.0) {
                found.push(r);
            }
        }
    }
    Ok(found)
}

/// Replaces the stored content of a newsletter issue.
pub fn set_issue_content(conn: &mut SqliteConnection, id: i64, content: &str) -> StoreResult<()> {
    diesel::update(newsletter_issues::table.find(id)).set(newsletter_issues::content.eq(content)).execute(conn)?;
    Ok(())
}

/// The data directory: the folder of the database file (`None` for an in-memory database).
pub fn data_dir(conn: &mut SqliteConnection) -> StoreResult<Option<std::path::PathBuf>> {
    #[derive(QueryableByName)]
    struct Db {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        file: String,
    }
    let dbs: Vec<Db> = diesel::sql_query("PRAGMA database_list").load(conn)?;
    Ok(dbs
        .into_iter()
        .find(|d| d.name == "main" && !d.file.is_empty())
        .and_then(|d| std::path::Path::new(&d.file).parent().map(std::path::Path::to_path_buf)))
}

/// Deletes the record of confirmation mails sent to an address.
pub fn delete_join_mails(conn: &mut SqliteConnection, email: &str) -> StoreResult<usize> {
    Ok(diesel::delete(join_mails::table.filter(join_mails::email.eq(email))).execute(conn)?)
}

/// One erasure, as the audit keeps it.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = forget_events)]
pub struct ForgetEvent {
    pub id: i64,
    pub at: i64,
    pub actor: ForgetActor,
    pub instructor_id: Option<i64>,
    pub awards_withdrawn: i64,
    pub posts_deleted: i64,
}

/// Records an erasure in the audit.
pub fn record_forget(
    conn: &mut SqliteConnection,
    actor: ForgetActor,
    instructor_id: Option<i64>,
    awards_withdrawn: i64,
    posts_deleted: i64,
    now: i64,
) -> StoreResult<ForgetEvent> {
    Ok(diesel::insert_into(forget_events::table)
        .values((
            forget_events::at.eq(now),
            forget_events::actor.eq(actor),
            forget_events::instructor_id.eq(instructor_id),
            forget_events::awards_withdrawn.eq(awards_withdrawn),
            forget_events::posts_deleted.eq(posts_deleted),
        ))
        .returning(ForgetEvent::as_returning())
        .get_result(conn)?)
}

/// The audit, newest first.
pub fn forget_events(conn: &mut SqliteConnection, limit: i64) -> StoreResult<Vec<ForgetEvent>> {
    Ok(forget_events::table.order(forget_events::id.desc()).limit(limit).select(ForgetEvent::as_select()).load(conn)?)
}

/// Copies every committed page from the write-ahead log into the database file and empties
/// the log, so that earlier versions of erased rows no longer sit in it. Returns false when
/// a reader kept part of the log in use (it is emptied at a later checkpoint).
pub fn checkpoint(conn: &mut SqliteConnection) -> StoreResult<bool> {
    #[derive(QueryableByName)]
    struct Outcome {
        #[diesel(sql_type = BigInt)]
        busy: i64,
    }
    let o: Outcome = diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").get_result(conn)?;
    Ok(o.busy == 0)
}

/// How long the link of a learner's request to be forgotten works.
pub const FORGET_REQUEST_SECS: i64 = 48 * 3600;

/// Keeps a learner's request to be forgotten (the mailed token's hash), replacing any earlier
/// one of theirs and dropping expired ones.
pub fn store_forget_request(conn: &mut SqliteConnection, author_id: i64, hash: &str, now: i64) -> StoreResult<()> {
    diesel::delete(forget_requests::table.filter(
        forget_requests::author_id.eq(author_id).or(forget_requests::created_at.le(now - FORGET_REQUEST_SECS)),
    ))
    .execute(conn)?;
    diesel::insert_into(forget_requests::table)
        .values((
            forget_requests::token_hash.eq(hash),
            forget_requests::author_id.eq(author_id),
            forget_requests::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The author whose unexpired request the token hashing to `hash` confirms.
pub fn forget_request(conn: &mut SqliteConnection, hash: &str, now: i64) -> StoreResult<Option<i64>> {
    Ok(forget_requests::table
        .filter(forget_requests::token_hash.eq(hash))
        .filter(forget_requests::created_at.gt(now - FORGET_REQUEST_SECS))
        .select(forget_requests::author_id)
        .first(conn)
        .optional()?)
}

/// A harvested post, as a learner's export gives it.
#[derive(Debug, Clone, Queryable, serde::Serialize)]
pub struct ExportedPost {
    pub url: Option<String>,
    pub title: String,
    pub summary_html: String,
    pub categories: String,
    pub published_at: Option<i64>,
    pub harvested_at: i64,
}

/// An author's harvested posts, oldest first.
pub fn posts(conn: &mut SqliteConnection, author_id: i64) -> StoreResult<Vec<ExportedPost>> {
    Ok(links::table
        .filter(links::author_id.eq(author_id))
        .order(links::id)
        .select((
            links::url,
            links::title,
            links::summary_html,
            links::categories,
            links::published_at,
            links::harvested_at,
        ))
        .load(conn)?)
}

/// An author's feeds.
pub fn feeds_of(conn: &mut SqliteConnection, author_id: i64) -> StoreResult<Vec<super::feeds::Feed>> {
    Ok(feeds::table
        .filter(feeds::author_id.eq(author_id))
        .order(feeds::id)
        .select(super::feeds::Feed::as_select())
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forget_actors_round_trip() {
        crate::db::stored::assert_round_trip!(ForgetActor);
        crate::db::stored::assert_round_trip!(NameShown);
    }

    #[test]
    fn public_names_follow_the_choice() {
        assert_eq!(public_name("Grace Brewster Hopper", NameShown::Initials, None), "G. B. H.");
        assert_eq!(public_name("élise  dupont", NameShown::Initials, None), "É. D.");
        assert_eq!(public_name("Grace Hopper", NameShown::Pseudonym, Some("Amazing Grace")), "Amazing Grace");
        assert_eq!(public_name("Grace Hopper", NameShown::Pseudonym, None), "Grace Hopper");
        assert_eq!(public_name("Grace Hopper", NameShown::Given, Some("x")), "Grace Hopper");
    }
}
