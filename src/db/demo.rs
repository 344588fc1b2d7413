//! The offline demo's own tables (`demo_*`): sample learners, the posts their blogs serve and
//! the Webmentions those posts received; and taking every demo row away again.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel::{QueryDsl, SqliteConnection};

use super::schema::{
    authors, awards, chain_records, course_modules, courses, credentials, demo_learners, demo_mentions, demo_posts,
    demo_state, feeds, instructors, join_mails, link_tasks, links, mentions, module_tasks, modules, outbox, tasks,
    webhook_deliveries,
};
use super::{StoreError, StoreResult, write_tx};

super::stored::stored_enum! {
    /// A demo blog's received Webmention.
    pub enum MentionStatus {
        /// Not checked yet.
        Pending = "pending",
        /// The source links to the post: shown on it.
        Verified = "verified",
        /// The source could not be read or does not link to the post.
        Rejected = "rejected",
    }
}

super::stored::stored_enum! {
    /// The format of a demo learner's feed.
    pub enum FeedFormat {
        Rss = "rss",
        Atom = "atom",
        Json = "json",
    }
}

impl FeedFormat {
    /// The feed's file name under the blog.
    pub fn file(self) -> &'static str {
        match self {
            FeedFormat::Rss => "feed.xml",
            FeedFormat::Atom => "atom.xml",
            FeedFormat::Json => "feed.json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            FeedFormat::Rss => "application/rss+xml",
            FeedFormat::Atom => "application/atom+xml",
            FeedFormat::Json => "application/feed+json",
        }
    }
}

/// The path under which the demo blogs are served.
pub const BLOGS_PATH: &str = "/demo/blogs/";
/// Key of [`demo_state`] holding the id of the course the demo created.
pub const STATE_COURSE: &str = "course_id";
/// Key of [`demo_state`] holding the number of posts the learners have published since seeding.
pub const STATE_PUBLISHED: &str = "published";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = demo_learners)]
pub struct Learner {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub email: String,
    pub format: FeedFormat,
    pub about: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = demo_posts)]
pub struct Post {
    pub id: i64,
    pub learner_id: i64,
    pub slug: String,
    pub title: String,
    pub body: String,
    pub categories: String,
    pub published_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = demo_mentions)]
pub struct Mention {
    pub id: i64,
    pub post_id: i64,
    pub source: String,
    pub status: MentionStatus,
    pub title: Option<String>,
    pub reason: Option<String>,
    pub received_at: i64,
    pub checked_at: Option<i64>,
}

/// A learner to seed.
pub struct NewLearner<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub format: FeedFormat,
    pub about: &'a str,
}

/// A post to publish.
pub struct NewPost<'a> {
    pub slug: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub categories: &'a str,
    pub published_at: i64,
}

pub fn state(conn: &mut SqliteConnection, key: &str) -> StoreResult<Option<String>> {
    Ok(demo_state::table.find(key).select(demo_state::value).first(conn).optional()?)
}

pub fn set_state(conn: &mut SqliteConnection, key: &str, value: &str) -> StoreResult<()> {
    diesel::replace_into(demo_state::table)
        .values((demo_state::key.eq(key), demo_state::value.eq(value)))
        .execute(conn)?;
    Ok(())
}

/// Adds a learner unless one with the slug is there; returns it either way.
pub fn ensure_learner(conn: &mut SqliteConnection, l: &NewLearner, now: i64) -> StoreResult<(Learner, bool)> {
    let n = diesel::insert_or_ignore_into(demo_learners::table)
        .values((
            demo_learners::slug.eq(l.slug),
            demo_learners::name.eq(l.name),
            demo_learners::email.eq(l.email),
            demo_learners::format.eq(l.format),
            demo_learners::about.eq(l.about),
            demo_learners::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok((learner(conn, l.slug)?, n > 0))
}

pub fn learner(conn: &mut SqliteConnection, slug: &str) -> StoreResult<Learner> {
    demo_learners::table
        .filter(demo_learners::slug.eq(slug))
        .select(Learner::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("demo blog"))
}

pub fn learners(conn: &mut SqliteConnection) -> StoreResult<Vec<Learner>> {
    Ok(demo_learners::table.order(demo_learners::id).select(Learner::as_select()).load(conn)?)
}

/// Publishes a post (a post with the same slug on the blog is left as it is).
pub fn publish(conn: &mut SqliteConnection, learner_id: i64, p: &NewPost) -> StoreResult<bool> {
    let n = diesel::insert_or_ignore_into(demo_posts::table)
        .values((
            demo_posts::learner_id.eq(learner_id),
            demo_posts::slug.eq(p.slug),
            demo_posts::title.eq(p.title),
            demo_posts::body.eq(p.body),
            demo_posts::categories.eq(p.categories),
            demo_posts::published_at.eq(p.published_at),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

/// A blog's newest posts, newest first.
pub fn posts_of(conn: &mut SqliteConnection, learner_id: i64, limit: i64) -> StoreResult<Vec<Post>> {
    Ok(demo_posts::table
        .filter(demo_posts::learner_id.eq(learner_id))
        .order((demo_posts::published_at.desc(), demo_posts::id.desc()))
        .limit(limit)
        .select(Post::as_select())
        .load(conn)?)
}

pub fn post(conn: &mut SqliteConnection, learner_id: i64, slug: &str) -> StoreResult<Post> {
    demo_posts::table
        .filter(demo_posts::learner_id.eq(learner_id).and(demo_posts::slug.eq(slug)))
        .select(Post::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("demo post"))
}

/// When the newest demo post was published.
pub fn latest_post_at(conn: &mut SqliteConnection) -> StoreResult<Option<i64>> {
    Ok(demo_posts::table.select(diesel::dsl::max(demo_posts::published_at)).first(conn)?)
}

pub fn count_posts(conn: &mut SqliteConnection) -> StoreResult<i64> {
    Ok(demo_posts::table.count().get_result(conn)?)
}

/// Pending mentions in all.
pub fn count_pending_mentions(conn: &mut SqliteConnection) -> StoreResult<i64> {
    Ok(demo_mentions::table.filter(demo_mentions::status.eq(MentionStatus::Pending)).count().get_result(conn)?)
}

/// Mentions one post holds.
pub fn count_mentions_of(conn: &mut SqliteConnection, post_id: i64) -> StoreResult<i64> {
    Ok(demo_mentions::table.filter(demo_mentions::post_id.eq(post_id)).count().get_result(conn)?)
}

/// Queues a received mention for checking; one sent again (the same source) is checked again.
pub fn receive_mention(conn: &mut SqliteConnection, post_id: i64, source: &str, now: i64) -> StoreResult<()> {
    diesel::insert_into(demo_mentions::table)
        .values((
            demo_mentions::post_id.eq(post_id),
            demo_mentions::source.eq(source),
            demo_mentions::status.eq(MentionStatus::Pending),
            demo_mentions::received_at.eq(now),
        ))
        .on_conflict((demo_mentions::post_id, demo_mentions::source))
        .do_update()
        .set((demo_mentions::status.eq(MentionStatus::Pending), demo_mentions::received_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

/// A pending mention with the address of the post it names.
#[derive(Debug, Clone)]
pub struct PendingMention {
    pub id: i64,
    pub source: String,
    pub blog: String,
    pub post: String,
}

pub fn pending_mentions(conn: &mut SqliteConnection, limit: i64) -> StoreResult<Vec<PendingMention>> {
    let rows: Vec<(i64, String, String, String)> = demo_mentions::table
        .inner_join(demo_posts::table.inner_join(demo_learners::table))
        .filter(demo_mentions::status.eq(MentionStatus::Pending))
        .order(demo_mentions::id)
        .limit(limit)
        .select((demo_mentions::id, demo_mentions::source, demo_learners::slug, demo_posts::slug))
        .load(conn)?;
    Ok(rows.into_iter().map(|(id, source, blog, post)| PendingMention { id, source, blog, post }).collect())
}

pub fn settle_mention(
    conn: &mut SqliteConnection,
    id: i64,
    status: MentionStatus,
    title: Option<&str>,
    reason: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    diesel::update(demo_mentions::table.find(id))
        .set((
            demo_mentions::status.eq(status),
            demo_mentions::title.eq(title),
            demo_mentions::reason.eq(reason),
            demo_mentions::checked_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// A post's verified mentions, oldest first.
pub fn verified_mentions(conn: &mut SqliteConnection, post_id: i64) -> StoreResult<Vec<Mention>> {
    Ok(demo_mentions::table
        .filter(demo_mentions::post_id.eq(post_id).and(demo_mentions::status.eq(MentionStatus::Verified)))
        .order(demo_mentions::id)
        .select(Mention::as_select())
        .load(conn)?)
}

/// What [`remove`] took away.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub learners: usize,
    pub feeds: usize,
    pub posts: usize,
    pub awards: usize,
    pub blog_posts: usize,
    pub course: bool,
    /// Why the course stayed, when it did.
    pub course_kept: Option<String>,
    pub instructor: bool,
}

/// Takes every demo row away: the demo learners with their authors, feeds, harvested posts,
/// awards (with their notifications, credentials and the Webmentions about them), the demo
/// blogs' posts and mentions, the demo instructor (`instructor_email`) and the demo course if
/// the demo created it and no one else's award or post refers to it. Records in the chain
/// stay, unlinked from the deleted awards: the chain is append-only.
pub fn remove(conn: &mut SqliteConnection, instructor_email: &str) -> StoreResult<Removed> {
    write_tx(conn, |conn| {
        let mut out = Removed::default();
        let emails: Vec<String> = demo_learners::table.select(demo_learners::email).load(conn)?;
        let author_ids: Vec<i64> =
            authors::table.filter(authors::email.eq_any(&emails)).select(authors::id).load(conn)?;
        let theirs: Vec<(i64, String)> = awards::table
            .filter(awards::author_id.eq_any(&author_ids).or(awards::recipient_email.eq_any(&emails)))
            .select((awards::id, awards::public_id))
            .load(conn)?;
        let award_ids: Vec<i64> = theirs.iter().map(|(id, _)| *id).collect();
        // The chain keeps its records; they no longer point at a row.
        diesel::update(chain_records::table.filter(chain_records::award_id.eq_any(&award_ids)))
            .set(chain_records::award_id.eq(None::<i64>))
            .execute(conn)?;
        diesel::delete(outbox::table.filter(outbox::award_id.eq_any(&award_ids))).execute(conn)?;
        diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::award_id.eq_any(&award_ids)))
            .execute(conn)?;
        for (_, public_id) in &theirs {
            // A credential's row is its index in the status lists, never reused: emptied, not deleted.
            diesel::update(credentials::table.filter(credentials::public_id.eq(public_id)))
                .set((
                    credentials::public_id.eq(sql::<Text>("'removed:' || status_index")),
                    credentials::credential_json.eq(""),
                    credentials::revoked.eq(true),
                ))
                .execute(conn)?;
            let about = format!("/assertions/{public_id}");
            // instr() rather than LIKE, so that no character of the id is a wildcard.
            let cond = sql::<Bool>("instr(target, ").bind::<Text, _>(about).sql(") > 0");
            diesel::delete(mentions::table.filter(cond)).execute(conn)?;
        }
        let from_blogs = sql::<Bool>("instr(source, ").bind::<Text, _>(BLOGS_PATH).sql(") > 0");
        diesel::delete(mentions::table.filter(from_blogs)).execute(conn)?;
        out.awards = diesel::delete(awards::table.filter(awards::id.eq_any(&award_ids))).execute(conn)?;
        let feed_ids: Vec<i64> =
            feeds::table.filter(feeds::author_id.eq_any(&author_ids)).select(feeds::id).load(conn)?;
        out.posts = diesel::delete(
            links::table.filter(links::author_id.eq_any(&author_ids).or(links::feed_id.eq_any(&feed_ids))),
        )
        .execute(conn)?;
        out.feeds = diesel::delete(feeds::table.filter(feeds::id.eq_any(&feed_ids))).execute(conn)?;
        diesel::delete(authors::table.filter(authors::id.eq_any(&author_ids))).execute(conn)?;
        diesel::delete(join_mails::table.filter(join_mails::email.eq_any(&emails))).execute(conn)?;
        diesel::delete(demo_mentions::table).execute(conn)?;
        out.blog_posts = diesel::delete(demo_posts::table).execute(conn)?;
        out.learners = diesel::delete(demo_learners::table).execute(conn)?;

        if let Some(course_id) = state(conn, STATE_COURSE)?.and_then(|v| v.parse::<i64>().ok()) {
            match remove_course(conn, course_id)? {
                None => out.course = true,
                Some(why) => out.course_kept = Some(why),
            }
        }
        // Sessions, API tokens and webhooks go with the account; awards it made keep no author.
        out.instructor =
            diesel::delete(instructors::table.filter(instructors::email.eq(instructor_email))).execute(conn)? > 0;
        diesel::delete(demo_state::table).execute(conn)?;
        // The demo's badge designs go with its awards.
        super::awards::delete_unused_art(conn)?;
        Ok(out)
    })
}

/// Deletes the demo course with its modules and tasks unless someone else's award or post
/// refers to one of its tasks; then says why it stays.
fn remove_course(conn: &mut SqliteConnection, course_id: i64) -> StoreResult<Option<String>> {
    if courses::table.find(course_id).count().get_result::<i64>(conn)? == 0 {
        return Ok(None);
    }
    let module_ids: Vec<i64> = course_modules::table
        .filter(course_modules::course_id.eq(course_id))
        .select(course_modules::module_id)
        .load(conn)?;
    let task_ids: Vec<i64> = module_tasks::table
        .filter(module_tasks::module_id.eq_any(&module_ids))
        .select(module_tasks::task_id)
        .load(conn)?;
    let awarded: i64 = awards::table.filter(awards::task_id.eq_any(&task_ids)).count().get_result(conn)?;
    if awarded > 0 {
        return Ok(Some(format!("{awarded} award(s) to learners outside the demo refer to its tasks")));
    }
    // Modules or tasks shared with another course stay with it.
    let shared_modules: Vec<i64> = course_modules::table
        .filter(course_modules::module_id.eq_any(&module_ids).and(course_modules::course_id.ne(course_id)))
        .select(course_modules::module_id)
        .load(conn)?;
    let own_modules: Vec<i64> = module_ids.iter().copied().filter(|m| !shared_modules.contains(m)).collect();
    let shared_tasks: Vec<i64> = module_tasks::table
        .filter(module_tasks::task_id.eq_any(&task_ids).and(module_tasks::module_id.ne_all(&own_modules)))
        .select(module_tasks::task_id)
        .load(conn)?;
    let own_tasks: Vec<i64> = task_ids.iter().copied().filter(|t| !shared_tasks.contains(t)).collect();
    diesel::delete(course_modules::table.filter(course_modules::course_id.eq(course_id))).execute(conn)?;
    diesel::delete(module_tasks::table.filter(module_tasks::module_id.eq_any(&own_modules))).execute(conn)?;
    diesel::delete(link_tasks::table.filter(link_tasks::task_id.eq_any(&own_tasks))).execute(conn)?;
    diesel::delete(tasks::table.filter(tasks::id.eq_any(&own_tasks))).execute(conn)?;
    diesel::delete(modules::table.filter(modules::id.eq_any(&own_modules))).execute(conn)?;
    diesel::delete(courses::table.find(course_id)).execute(conn)?;
    // The demo's trail goes with it: what was done in the demo course.
    diesel::delete(
        crate::db::schema::audit_events::table.filter(crate::db::schema::audit_events::course_id.eq(course_id)),
    )
    .execute(conn)?;
    Ok(None)
}
