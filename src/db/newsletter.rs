//! The course newsletter: its readers (double opt-in), each course's settings, the issues and
//! one delivery row per reader per issue, whose unique key makes a resumed send skip those
//! already made.

use diesel::prelude::*;

use super::schema::{
    awards, course_modules, courses, link_tasks, links, module_tasks, modules, newsletter_complaints,
    newsletter_courses, newsletter_deliveries, newsletter_issues, newsletter_secret, newsletter_subscribers, tasks,
};
use super::{OptionalExt, StoreResult, write_tx};
use crate::db::courses::Task;

super::stored::stored_enum! {
    /// Where a reader is in the double opt-in.
    pub enum SubscriberStatus {
        /// Waiting for the emailed confirmation link; receives nothing.
        Pending = "pending",
        Confirmed = "confirmed",
        /// Left through an unsubscribe link (or one-click); receives nothing.
        Unsubscribed = "unsubscribed",
        /// The mail server refused the address for good; receives nothing.
        Bounced = "bounced",
    }
}

super::stored::stored_enum! {
    /// What became of a course's day.
    pub enum IssueStatus {
        /// Built and queued to every confirmed reader.
        Sent = "sent",
        /// Nothing new and no note: nothing sent.
        Empty = "empty",
        /// The instructor skipped the day; what it would have held waits for the next issue.
        Skipped = "skipped",
    }
}

super::stored::stored_enum! {
    /// Where one reader's copy of an issue is.
    pub enum DeliveryStatus {
        /// Waiting for its next attempt, or leased to the sender.
        Queued = "queued",
        Sent = "sent",
        /// Refused for good by the mail server (a bounce).
        Failed = "failed",
        /// Still failing when the retry period ran out.
        GaveUp = "gave_up",
    }
}

super::stored::stored_enum! {
    /// Who recorded a complaint (a reader marking the newsletter as spam).
    pub enum ComplaintSource {
        /// `cairn newsletter complaint`, e.g. from a mail provider's feedback-loop report.
        Cli = "cli",
        /// An instructor, with "Mark as complaint" on the newsletter page.
        Instructor = "instructor",
    }
}

/// A course's newsletter settings.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = newsletter_courses)]
pub struct CourseSettings {
    pub course_id: i64,
    /// An IANA zone name (`Europe/Paris`).
    pub time_zone: String,
    /// The instructor's note for the next issue; cleared when an issue carries it.
    pub note: String,
    /// A local date (`YYYY-MM-DD`) with no issue.
    pub skip_date: Option<String>,
    /// Whether each included post gets a Webmention from the issue's page.
    pub webmentions: bool,
    pub updated_at: i64,
}

impl CourseSettings {
    fn default_for(course_id: i64) -> CourseSettings {
        CourseSettings {
            course_id,
            time_zone: "UTC".into(),
            note: String::new(),
            skip_date: None,
            webmentions: true,
            updated_at: 0,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = newsletter_subscribers)]
pub struct Subscriber {
    pub id: i64,
    pub course_id: i64,
    pub email: String,
    pub name: String,
    pub status: SubscriberStatus,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = newsletter_issues)]
pub struct Issue {
    pub id: i64,
    pub course_id: i64,
    /// The course's local date, `YYYY-MM-DD`.
    pub date: String,
    pub status: IssueStatus,
    /// Posts harvested after `since` and up to `until` (Unix seconds) are in it.
    pub since: i64,
    pub until: i64,
    /// The issue as JSON (`crate::app::newsletter::Content`).
    pub content: String,
    pub posts: i64,
    pub created_at: i64,
}

/// The settings of a course's newsletter (the defaults until an instructor saves them).
pub fn settings(conn: &mut SqliteConnection, course_id: i64) -> StoreResult<CourseSettings> {
    Ok(newsletter_courses::table
        .find(course_id)
        .select(CourseSettings::as_select())
        .first(conn)
        .optional()?
        .unwrap_or_else(|| CourseSettings::default_for(course_id)))
}

/// Saves a course's settings (the skip date is kept).
pub fn save_settings(
    conn: &mut SqliteConnection,
    course_id: i64,
    time_zone: &str,
    note: &str,
    webmentions: bool,
    now: i64,
) -> StoreResult<()> {
    diesel::insert_into(newsletter_courses::table)
        .values((
            newsletter_courses::course_id.eq(course_id),
            newsletter_courses::time_zone.eq(time_zone),
            newsletter_courses::note.eq(note),
            newsletter_courses::webmentions.eq(webmentions),
            newsletter_courses::updated_at.eq(now),
        ))
        .on_conflict(newsletter_courses::course_id)
        .do_update()
        .set((
            newsletter_courses::time_zone.eq(time_zone),
            newsletter_courses::note.eq(note),
            newsletter_courses::webmentions.eq(webmentions),
            newsletter_courses::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Marks a local date as skipped (or clears the skip with `None`).
pub fn set_skip(conn: &mut SqliteConnection, course_id: i64, date: Option<&str>, now: i64) -> StoreResult<()> {
    let s = settings(conn, course_id)?;
    save_settings(conn, course_id, &s.time_zone, &s.note, s.webmentions, now)?;
    diesel::update(newsletter_courses::table.find(course_id))
        .set(newsletter_courses::skip_date.eq(date))
        .execute(conn)?;
    Ok(())
}

/// Every course id with its settings, for the scheduler.
pub fn courses_with_readers(conn: &mut SqliteConnection) -> StoreResult<Vec<(i64, String)>> {
    let ids: Vec<i64> = newsletter_subscribers::table
        .filter(newsletter_subscribers::status.eq(SubscriberStatus::Confirmed))
        .select(newsletter_subscribers::course_id)
        .distinct()
        .load(conn)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push((id, settings(conn, id)?.time_zone));
    }
    Ok(out)
}

// ---- readers ----

/// What asking to subscribe led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// A confirmation is due to the reader with this id (a new or renewed pending row).
    Pending(i64),
    /// The address already reads the newsletter: no mail.
    AlreadyConfirmed,
}

/// Records a request to subscribe, pending until confirmed by `expires_at`. The link comes
/// with the mail ([`renew_confirmation`]); a link mailed earlier keeps working until then.
pub fn ask(
    conn: &mut SqliteConnection,
    course_id: i64,
    email: &str,
    name: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<Asked> {
    let existing: Option<Subscriber> = newsletter_subscribers::table
        .filter(newsletter_subscribers::course_id.eq(course_id).and(newsletter_subscribers::email.eq(email)))
        .select(Subscriber::as_select())
        .first(conn)
        .optional()?;
    match existing {
        Some(s) if s.status == SubscriberStatus::Confirmed => Ok(Asked::AlreadyConfirmed),
        Some(s) => {
            diesel::update(newsletter_subscribers::table.find(s.id))
                .set((
                    newsletter_subscribers::status.eq(SubscriberStatus::Pending),
                    newsletter_subscribers::name.eq(name),
                    newsletter_subscribers::confirm_expires_at.eq(expires_at),
                    newsletter_subscribers::updated_at.eq(now),
                ))
                .execute(conn)?;
            Ok(Asked::Pending(s.id))
        }
        None => {
            let id = diesel::insert_into(newsletter_subscribers::table)
                .values((
                    newsletter_subscribers::course_id.eq(course_id),
                    newsletter_subscribers::email.eq(email),
                    newsletter_subscribers::name.eq(name),
                    newsletter_subscribers::status.eq(SubscriberStatus::Pending),
                    newsletter_subscribers::confirm_expires_at.eq(expires_at),
                    newsletter_subscribers::created_at.eq(now),
                    newsletter_subscribers::updated_at.eq(now),
                ))
                .returning(newsletter_subscribers::id)
                .get_result(conn)?;
            Ok(Asked::Pending(id))
        }
    }
}

/// Gives a reader still waiting for confirmation at `now` the link whose token hashes to
/// `confirm_hash`, valid until `expires_at`, just before it is mailed; `None` when they no
/// longer wait (confirmed, gone, or their request expired).
pub fn renew_confirmation(
    conn: &mut SqliteConnection,
    id: i64,
    confirm_hash: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<Option<Subscriber>> {
    Ok(diesel::update(
        newsletter_subscribers::table
            .find(id)
            .filter(newsletter_subscribers::status.eq(SubscriberStatus::Pending))
            .filter(newsletter_subscribers::confirm_expires_at.ge(now)),
    )
    .set((
        newsletter_subscribers::confirm_token_hash.eq(confirm_hash),
        newsletter_subscribers::confirm_expires_at.eq(expires_at),
    ))
    .returning(Subscriber::as_returning())
    .get_result(conn)
    .optional()?)
}

/// Confirms the pending reader whose token hashes to `hash`, unless it expired at `now`.
pub fn confirm(conn: &mut SqliteConnection, hash: &str, now: i64) -> StoreResult<Option<Subscriber>> {
    write_tx(conn, |c| {
        let found: Option<Subscriber> = newsletter_subscribers::table
            .filter(newsletter_subscribers::confirm_token_hash.eq(hash))
            .filter(newsletter_subscribers::status.eq(SubscriberStatus::Pending))
            .filter(newsletter_subscribers::confirm_expires_at.ge(now))
            .select(Subscriber::as_select())
            .first(c)
            .optional()?;
        let Some(s) = found else { return Ok(None) };
        diesel::update(newsletter_subscribers::table.find(s.id))
            .set((
                newsletter_subscribers::status.eq(SubscriberStatus::Confirmed),
                newsletter_subscribers::confirm_token_hash.eq(None::<String>),
                newsletter_subscribers::confirmed_at.eq(now),
                newsletter_subscribers::updated_at.eq(now),
            ))
            .execute(c)?;
        Ok(Some(Subscriber { status: SubscriberStatus::Confirmed, confirmed_at: Some(now), ..s }))
    })
}

/// How one imported reader went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    Added,
    /// Already a confirmed reader.
    AlreadySubscribed,
    /// Was pending: now confirmed.
    Confirmed,
    /// Left the list (or bounced) before: an import does not bring them back.
    KeptOut(SubscriberStatus),
}

/// Adds a reader who already consented elsewhere: confirmed at once.
pub fn import(conn: &mut SqliteConnection, course_id: i64, email: &str, name: &str, now: i64) -> StoreResult<Imported> {
    write_tx(conn, |c| {
        let existing: Option<Subscriber> = newsletter_subscribers::table
            .filter(newsletter_subscribers::course_id.eq(course_id).and(newsletter_subscribers::email.eq(email)))
            .select(Subscriber::as_select())
            .first(c)
            .optional()?;
        match existing.map(|s| (s.id, s.status)) {
            Some((_, SubscriberStatus::Confirmed)) => Ok(Imported::AlreadySubscribed),
            Some((_, status @ (SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced))) => {
                Ok(Imported::KeptOut(status))
            }
            Some((id, SubscriberStatus::Pending)) => {
                diesel::update(newsletter_subscribers::table.find(id))
                    .set((
                        newsletter_subscribers::status.eq(SubscriberStatus::Confirmed),
                        newsletter_subscribers::confirm_token_hash.eq(None::<String>),
                        newsletter_subscribers::confirmed_at.eq(now),
                        newsletter_subscribers::updated_at.eq(now),
                    ))
                    .execute(c)?;
                Ok(Imported::Confirmed)
            }
            None => {
                diesel::insert_into(newsletter_subscribers::table)
                    .values((
                        newsletter_subscribers::course_id.eq(course_id),
                        newsletter_subscribers::email.eq(email),
                        newsletter_subscribers::name.eq(name),
                        newsletter_subscribers::status.eq(SubscriberStatus::Confirmed),
                        newsletter_subscribers::created_at.eq(now),
                        newsletter_subscribers::confirmed_at.eq(now),
                        newsletter_subscribers::updated_at.eq(now),
                    ))
                    .execute(c)?;
                Ok(Imported::Added)
            }
        }
    })
}

pub fn subscriber(conn: &mut SqliteConnection, id: i64) -> StoreResult<Subscriber> {
    newsletter_subscribers::table.find(id).select(Subscriber::as_select()).first(conn).found("subscriber")
}

/// Deletes requests to subscribe whose confirmation link expired unused, so that anonymous
/// sign-ups never confirmed do not pile up.
pub fn purge_unconfirmed(conn: &mut SqliteConnection, now: i64) -> StoreResult<usize> {
    Ok(diesel::delete(
        newsletter_subscribers::table
            .filter(newsletter_subscribers::status.eq(SubscriberStatus::Pending))
            .filter(newsletter_subscribers::confirm_expires_at.lt(now)),
    )
    .execute(conn)?)
}

/// Takes a reader off the list; true when they were on it (pending or confirmed).
pub fn unsubscribe(conn: &mut SqliteConnection, id: i64, now: i64) -> StoreResult<bool> {
    let n = diesel::update(
        newsletter_subscribers::table
            .find(id)
            .filter(newsletter_subscribers::status.eq_any([SubscriberStatus::Confirmed, SubscriberStatus::Pending])),
    )
    .set((
        newsletter_subscribers::status.eq(SubscriberStatus::Unsubscribed),
        newsletter_subscribers::confirm_token_hash.eq(None::<String>),
        newsletter_subscribers::updated_at.eq(now),
    ))
    .execute(conn)?;
    // Copies not yet made are not made.
    diesel::delete(
        newsletter_deliveries::table
            .filter(newsletter_deliveries::subscriber_id.eq(id))
            .filter(newsletter_deliveries::status.eq(DeliveryStatus::Queued)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// Confirmed readers of a course.
pub fn count_confirmed(conn: &mut SqliteConnection, course_id: i64) -> StoreResult<i64> {
    Ok(newsletter_subscribers::table
        .filter(newsletter_subscribers::course_id.eq(course_id))
        .filter(newsletter_subscribers::status.eq(SubscriberStatus::Confirmed))
        .count()
        .get_result(conn)?)
}

/// A page of a course's readers, newest first, and how many there are in all.
pub fn list_subscribers(
    conn: &mut SqliteConnection,
    course_id: i64,
    offset: i64,
    limit: i64,
) -> StoreResult<(Vec<Subscriber>, i64)> {
    let all = newsletter_subscribers::table.filter(newsletter_subscribers::course_id.eq(course_id));
    let total = all.count().get_result(conn)?;
    let page = all
        .order(newsletter_subscribers::id.desc())
        .offset(offset)
        .limit(limit)
        .select(Subscriber::as_select())
        .load(conn)?;
    Ok((page, total))
}

/// Readers whose address the mail server refused for good, with the refusal.
pub fn bounces(conn: &mut SqliteConnection, course_id: i64, limit: i64) -> StoreResult<Vec<(String, String)>> {
    Ok(newsletter_deliveries::table
        .inner_join(newsletter_subscribers::table)
        .filter(newsletter_subscribers::course_id.eq(course_id))
        .filter(newsletter_deliveries::status.eq_any([DeliveryStatus::Failed, DeliveryStatus::GaveUp]))
        .order(newsletter_deliveries::updated_at.desc())
        .limit(limit)
        .select((newsletter_subscribers::email, newsletter_deliveries::last_error.assume_not_null()))
        .load(conn)?)
}

/// A reader of a course by address (as [`crate::domain::Email`] stores it, in lower case).
pub fn subscriber_by_email(conn: &mut SqliteConnection, course_id: i64, email: &str) -> StoreResult<Subscriber> {
    newsletter_subscribers::table
        .filter(newsletter_subscribers::course_id.eq(course_id))
        .filter(newsletter_subscribers::email.eq(email))
        .select(Subscriber::as_select())
        .first(conn)
        .found("reader")
}

/// Records that a reader complained and takes them off the list, in one transaction; false
/// when a complaint about them was already recorded (nothing changes then).
pub fn record_complaint(
    conn: &mut SqliteConnection,
    subscriber_id: i64,
    source: ComplaintSource,
    now: i64,
) -> StoreResult<bool> {
    write_tx(conn, |c| {
        let known: i64 = newsletter_complaints::table
            .filter(newsletter_complaints::subscriber_id.eq(subscriber_id))
            .count()
            .get_result(c)?;
        if known > 0 {
            return Ok(false);
        }
        unsubscribe(c, subscriber_id, now)?;
        diesel::insert_into(newsletter_complaints::table)
            .values((
                newsletter_complaints::subscriber_id.eq(subscriber_id),
                newsletter_complaints::source.eq(source),
                newsletter_complaints::created_at.eq(now),
            ))
            .execute(c)?;
        Ok(true)
    })
}

/// A complaint as the instructor's page lists it.
#[derive(Debug, Clone, Queryable)]
pub struct Complaint {
    pub subscriber_id: i64,
    pub email: String,
    pub source: ComplaintSource,
    pub created_at: i64,
}

/// A course's complaints, newest first, at most `limit`.
pub fn complaints(conn: &mut SqliteConnection, course_id: i64, limit: i64) -> StoreResult<Vec<Complaint>> {
    Ok(newsletter_complaints::table
        .inner_join(newsletter_subscribers::table)
        .filter(newsletter_subscribers::course_id.eq(course_id))
        .order((newsletter_complaints::created_at.desc(), newsletter_complaints::id.desc()))
        .limit(limit)
        .select((
            newsletter_complaints::subscriber_id,
            newsletter_subscribers::email,
            newsletter_complaints::source,
            newsletter_complaints::created_at,
        ))
        .load(conn)?)
}

/// The secret unsubscribe links are derived from, made on first use.
pub fn secret(conn: &mut SqliteConnection) -> StoreResult<String> {
    if let Some(s) = newsletter_secret::table.select(newsletter_secret::secret).first(conn).optional()? {
        return Ok(s);
    }
    let fresh = crate::tokens::random_token();
    diesel::insert_into(newsletter_secret::table)
        .values((newsletter_secret::id.eq(1), newsletter_secret::secret.eq(&fresh)))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(newsletter_secret::table.select(newsletter_secret::secret).first(conn)?)
}

// ---- issues ----

/// Where the next issue starts: the end of the last one built (sent or empty), else `None`.
pub fn last_until(conn: &mut SqliteConnection, course_id: i64) -> StoreResult<Option<i64>> {
    Ok(newsletter_issues::table
        .filter(newsletter_issues::course_id.eq(course_id))
        .filter(newsletter_issues::status.ne(IssueStatus::Skipped))
        .select(diesel::dsl::max(newsletter_issues::until))
        .first(conn)?)
}

/// The course's issue (of any status) for a local date.
pub fn issue_on(conn: &mut SqliteConnection, course_id: i64, date: &str) -> StoreResult<Option<Issue>> {
    Ok(newsletter_issues::table
        .filter(newsletter_issues::course_id.eq(course_id).and(newsletter_issues::date.eq(date)))
        .select(Issue::as_select())
        .first(conn)
        .optional()?)
}

/// A new issue row. Returned `None` when the date already has one (another process built it).
pub struct NewIssue<'a> {
    pub course_id: i64,
    pub date: &'a str,
    pub status: IssueStatus,
    pub since: i64,
    pub until: i64,
    pub content: &'a str,
    pub posts: i64,
    /// Clears the course's note (the issue carries it).
    pub takes_note: bool,
}

/// Stores an issue and, when it is sent, queues one delivery per confirmed reader, all in one
/// transaction; `None` when the date already had an issue.
pub fn insert_issue(conn: &mut SqliteConnection, new: &NewIssue<'_>, now: i64) -> StoreResult<Option<Issue>> {
    write_tx(conn, |c| {
        if issue_on(c, new.course_id, new.date)?.is_some() {
            return Ok(None);
        }
        let issue: Issue = diesel::insert_into(newsletter_issues::table)
            .values((
                newsletter_issues::course_id.eq(new.course_id),
                newsletter_issues::date.eq(new.date),
                newsletter_issues::status.eq(new.status),
                newsletter_issues::since.eq(new.since),
                newsletter_issues::until.eq(new.until),
                newsletter_issues::content.eq(new.content),
                newsletter_issues::posts.eq(new.posts),
                newsletter_issues::created_at.eq(now),
            ))
            .returning(Issue::as_returning())
            .get_result(c)?;
        if new.status == IssueStatus::Sent {
            diesel::sql_query(
                "INSERT INTO newsletter_deliveries (issue_id, subscriber_id, status, next_attempt_at, created_at, \
                 updated_at) SELECT ?, id, 'queued', ?, ?, ? FROM newsletter_subscribers \
                 WHERE course_id = ? AND status = 'confirmed' ON CONFLICT (issue_id, subscriber_id) DO NOTHING",
            )
            .bind::<diesel::sql_types::BigInt, _>(issue.id)
            .bind::<diesel::sql_types::BigInt, _>(now)
            .bind::<diesel::sql_types::BigInt, _>(now)
            .bind::<diesel::sql_types::BigInt, _>(now)
            .bind::<diesel::sql_types::BigInt, _>(new.course_id)
            .execute(c)?;
        }
        if new.takes_note {
            diesel::update(newsletter_courses::table.find(new.course_id))
                .set(newsletter_courses::note.eq(""))
                .execute(c)?;
        }
        Ok(Some(issue))
    })
}

/// A course's sent issues, newest first.
pub fn sent_issues(conn: &mut SqliteConnection, course_id: i64, limit: i64) -> StoreResult<Vec<Issue>> {
    Ok(newsletter_issues::table
        .filter(newsletter_issues::course_id.eq(course_id).and(newsletter_issues::status.eq(IssueStatus::Sent)))
        .order(newsletter_issues::date.desc())
        .limit(limit)
        .select(Issue::as_select())
        .load(conn)?)
}

/// How the copies of an issue stand: (sent, queued, failed or given up).
pub fn delivery_counts(conn: &mut SqliteConnection, issue_id: i64) -> StoreResult<(i64, i64, i64)> {
    let rows: Vec<(DeliveryStatus, i64)> = newsletter_deliveries::table
        .filter(newsletter_deliveries::issue_id.eq(issue_id))
        .group_by(newsletter_deliveries::status)
        .select((newsletter_deliveries::status, diesel::dsl::count_star()))
        .load(conn)?;
    let of = |s: &[DeliveryStatus]| rows.iter().filter(|(st, _)| s.contains(st)).map(|(_, n)| n).sum();
    Ok((
        of(&[DeliveryStatus::Sent]),
        of(&[DeliveryStatus::Queued]),
        of(&[DeliveryStatus::Failed, DeliveryStatus::GaveUp]),
    ))
}

// ---- what an issue holds ----

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
    (String, super::learners::NameShown, Option<String>),
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

/// The Tasks of the course's current module: the module most recently added to the course.
pub fn current_module(conn: &mut SqliteConnection, course_id: i64) -> StoreResult<Option<(String, Vec<Task>)>> {
    let module: Option<(i64, String)> = course_modules::table
        .inner_join(modules::table)
        .filter(course_modules::course_id.eq(course_id))
        .order((modules::created_at.desc(), modules::id.desc()))
        .select((modules::id, modules::title))
        .first(conn)
        .optional()?;
    let Some((id, title)) = module else { return Ok(None) };
    Ok(Some((title, crate::db::courses::tasks_of_module(conn, id)?)))
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
    use super::schema::authors;
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
                .filter(|a| !a.trim().is_empty() && shown == super::learners::NameShown::Given)
                .unwrap_or_else(|| super::learners::public_name(&name, shown, pseudonym.as_deref())),
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
type AwardRow = (i64, String, Option<String>, Option<super::learners::NameShown>, Option<String>);

/// Badges of the course's Tasks awarded in `(since, until]` and not revoked, per Task.
pub fn badge_counts(
    conn: &mut SqliteConnection,
    course_id: i64,
    since: i64,
    until: i64,
) -> StoreResult<Vec<BadgeTally>> {
    use super::learners::public_name;
    use super::schema::authors;
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

// ---- delivery ----

/// A copy due to be sent.
#[derive(Debug, Clone, Queryable)]
pub struct Due {
    pub id: i64,
    pub issue_id: i64,
    pub subscriber_id: i64,
    pub attempts: i64,
    pub created_at: i64,
    pub email: String,
    pub name: String,
}

/// Queued copies whose next attempt is due at `now`, earliest first, at most `limit`, to
/// readers still confirmed.
pub fn due(conn: &mut SqliteConnection, now: i64, limit: i64) -> StoreResult<Vec<Due>> {
    Ok(newsletter_deliveries::table
        .inner_join(newsletter_subscribers::table)
        .filter(newsletter_deliveries::status.eq(DeliveryStatus::Queued))
        .filter(newsletter_deliveries::next_attempt_at.le(now))
        .filter(newsletter_subscribers::status.eq(SubscriberStatus::Confirmed))
        .order((newsletter_deliveries::next_attempt_at, newsletter_deliveries::id))
        .limit(limit)
        .select((
            newsletter_deliveries::id,
            newsletter_deliveries::issue_id,
            newsletter_deliveries::subscriber_id,
            newsletter_deliveries::attempts,
            newsletter_deliveries::created_at,
            newsletter_subscribers::email,
            newsletter_subscribers::name,
        ))
        .load(conn)?)
}

/// Claims due copies for `lease_secs`, in one statement per batch: returns the ids this caller
/// got. A copy whose sender died is due again when its lease runs out.
pub fn claim(conn: &mut SqliteConnection, ids: &[i64], now: i64, lease_secs: i64) -> StoreResult<Vec<i64>> {
    Ok(diesel::update(
        newsletter_deliveries::table
            .filter(newsletter_deliveries::id.eq_any(ids))
            .filter(newsletter_deliveries::status.eq(DeliveryStatus::Queued))
            .filter(newsletter_deliveries::next_attempt_at.le(now)),
    )
    .set(newsletter_deliveries::next_attempt_at.eq(now + lease_secs))
    .returning(newsletter_deliveries::id)
    .get_results(conn)?)
}

/// How one attempt at a copy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Refused for good: the reader is marked bounced.
    Bounced(String),
    /// Try again at `next_attempt_at`, or give up (`status` `Queued` or `GaveUp`).
    Retry {
        status: DeliveryStatus,
        error: String,
        next_attempt_at: i64,
    },
}

/// Records the outcome of a claimed copy's attempt number `attempts`.
pub fn settle(conn: &mut SqliteConnection, id: i64, attempts: i64, outcome: Outcome, now: i64) -> StoreResult<()> {
    let row = newsletter_deliveries::table.find(id);
    match outcome {
        Outcome::Sent => diesel::update(row)
            .set((
                newsletter_deliveries::status.eq(DeliveryStatus::Sent),
                newsletter_deliveries::attempts.eq(attempts),
                newsletter_deliveries::last_error.eq(None::<String>),
                newsletter_deliveries::updated_at.eq(now),
            ))
            .execute(conn)?,
        Outcome::Bounced(error) => write_tx(conn, |c| {
            let sub: i64 = row.select(newsletter_deliveries::subscriber_id).first(c)?;
            diesel::update(newsletter_subscribers::table.find(sub))
                .set((
                    newsletter_subscribers::status.eq(SubscriberStatus::Bounced),
                    newsletter_subscribers::updated_at.eq(now),
                ))
                .execute(c)?;
            diesel::update(row)
                .set((
                    newsletter_deliveries::status.eq(DeliveryStatus::Failed),
                    newsletter_deliveries::attempts.eq(attempts),
                    newsletter_deliveries::last_error.eq(error),
                    newsletter_deliveries::updated_at.eq(now),
                ))
                .execute(c)
        })?,
        Outcome::Retry { status, error, next_attempt_at } => diesel::update(row)
            .set((
                newsletter_deliveries::status.eq(status),
                newsletter_deliveries::attempts.eq(attempts),
                newsletter_deliveries::next_attempt_at.eq(next_attempt_at),
                newsletter_deliveries::last_error.eq(error),
                newsletter_deliveries::updated_at.eq(now),
            ))
            .execute(conn)?,
    };
    Ok(())
}

/// Records the outcomes of several claimed copies' attempts, `(id, attempt number, outcome)`,
/// in one short write transaction: the sender holds the write lock once per batch, not once
/// per copy, so that requests waiting for it (awards) are not queued behind every message.
pub fn settle_many(conn: &mut SqliteConnection, outcomes: Vec<(i64, i64, Outcome)>, now: i64) -> StoreResult<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    write_tx(conn, |c| {
        // Nearly every copy is sent at its first attempt: one statement per attempt number.
        let mut sent: Vec<(i64, Vec<i64>)> = Vec::new();
        for (id, attempts, outcome) in outcomes {
            match outcome {
                Outcome::Sent => match sent.iter_mut().find(|(a, _)| *a == attempts) {
                    Some((_, ids)) => ids.push(id),
                    None => sent.push((attempts, vec![id])),
                },
                other => settle(c, id, attempts, other, now)?,
            }
        }
        for (attempts, ids) in sent {
            for chunk in ids.chunks(500) {
                diesel::update(newsletter_deliveries::table.filter(newsletter_deliveries::id.eq_any(chunk)))
                    .set((
                        newsletter_deliveries::status.eq(DeliveryStatus::Sent),
                        newsletter_deliveries::attempts.eq(attempts),
                        newsletter_deliveries::last_error.eq(None::<String>),
                        newsletter_deliveries::updated_at.eq(now),
                    ))
                    .execute(c)?;
            }
        }
        Ok(())
    })
}

/// An issue by id.
pub fn issue(conn: &mut SqliteConnection, id: i64) -> StoreResult<Issue> {
    newsletter_issues::table.find(id).select(Issue::as_select()).first(conn).found("issue")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_stored_string() {
        crate::db::stored::assert_round_trip!(SubscriberStatus);
        crate::db::stored::assert_round_trip!(IssueStatus);
        crate::db::stored::assert_round_trip!(DeliveryStatus);
        crate::db::stored::assert_round_trip!(ComplaintSource);
        // The bulk queueing statement spells two of them.
        assert_eq!((SubscriberStatus::Confirmed.as_str(), DeliveryStatus::Queued.as_str()), ("confirmed", "queued"));
    }

    #[test]
    fn a_batch_of_outcomes_is_recorded_in_one_go_each_copy_as_it_ended() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&dir.path().join("cairn.db")).unwrap();
        let c = &mut *pool.get().unwrap();
        crate::demo::seed(c).unwrap();
        let course = crate::db::courses::get_course_by_slug(c, crate::demo::DEMO_SLUG).unwrap().id;
        for i in 0..6 {
            import(c, course, &format!("r{i}@example.org"), "", 0).unwrap();
        }
        let new = NewIssue {
            course_id: course,
            date: "2026-12-01",
            status: IssueStatus::Sent,
            since: 0,
            until: 10,
            content: "{}",
            posts: 0,
            takes_note: false,
        };
        let issue = insert_issue(c, &new, 10).unwrap().unwrap();
        let ids: Vec<i64> = due(c, 10, 100).unwrap().iter().map(|d| d.id).collect();
        assert_eq!(ids.len(), 6);
        assert_eq!(claim(c, &ids, 10, 60).unwrap().len(), 6);
        let retry = Outcome::Retry { status: DeliveryStatus::Queued, error: "421 busy".into(), next_attempt_at: 500 };
        let outcomes = vec![
            (ids[0], 1, Outcome::Sent),
            (ids[1], 1, Outcome::Sent),
            (ids[2], 2, Outcome::Sent),
            (ids[3], 1, Outcome::Bounced("550 no such user".into())),
            (ids[4], 1, retry),
            (ids[5], 1, Outcome::Sent),
        ];
        settle_many(c, outcomes, 20).unwrap();
        settle_many(c, Vec::new(), 20).unwrap();
        let rows: Vec<(i64, DeliveryStatus, i64, i64, Option<String>)> = newsletter_deliveries::table
            .filter(newsletter_deliveries::issue_id.eq(issue.id))
            .order(newsletter_deliveries::id)
            .select((
                newsletter_deliveries::id,
                newsletter_deliveries::status,
                newsletter_deliveries::attempts,
                newsletter_deliveries::next_attempt_at,
                newsletter_deliveries::last_error,
            ))
            .load(c)
            .unwrap();
        let of = |id: i64| rows.iter().find(|r| r.0 == id).unwrap().clone();
        assert_eq!(of(ids[0]), (ids[0], DeliveryStatus::Sent, 1, 70, None));
        assert_eq!((of(ids[2]).1, of(ids[2]).2), (DeliveryStatus::Sent, 2), "each copy keeps its attempt number");
        assert_eq!(of(ids[3]).1, DeliveryStatus::Failed);
        let bounced = due_reader(c, ids[3]);
        assert_eq!(subscriber(c, bounced).unwrap().status, SubscriberStatus::Bounced);
        assert_eq!(of(ids[4]), (ids[4], DeliveryStatus::Queued, 1, 500, Some("421 busy".into())));
        assert_eq!(delivery_counts(c, issue.id).unwrap(), (4, 1, 1));
        assert_eq!(due(c, 499, 100).unwrap().len(), 0, "the retry waits for its time");
        assert_eq!(due(c, 500, 100).unwrap().iter().map(|d| d.id).collect::<Vec<_>>(), [ids[4]]);
    }

    fn due_reader(c: &mut SqliteConnection, delivery: i64) -> i64 {
        newsletter_deliveries::table.find(delivery).select(newsletter_deliveries::subscriber_id).first(c).unwrap()
    }

    #[test]
    fn only_requests_whose_link_expired_unused_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&dir.path().join("cairn.db")).unwrap();
        let c = &mut *pool.get().unwrap();
        crate::demo::seed(c).unwrap();
        let course = crate::db::courses::get_course_by_slug(c, crate::demo::DEMO_SLUG).unwrap().id;
        let Asked::Pending(old) = ask(c, course, "old@example.org", "Old", 100, 0).unwrap() else { panic!() };
        crate::db::outbox::enqueue_confirmation(c, old, 0).unwrap();
        ask(c, course, "new@example.org", "New", 10_000, 0).unwrap();
        let Asked::Pending(yes) = ask(c, course, "yes@example.org", "Yes", 100, 0).unwrap() else { panic!() };
        assert!(renew_confirmation(c, yes, "h-yes", 100, 10).unwrap().is_some());
        assert!(confirm(c, "h-yes", 50).unwrap().is_some());
        assert_eq!(purge_unconfirmed(c, 1_000).unwrap(), 1);
        let left: Vec<String> = newsletter_subscribers::table
            .order(newsletter_subscribers::email)
            .select(newsletter_subscribers::email)
            .load(c)
            .unwrap();
        assert_eq!(left, ["new@example.org", "yes@example.org"]);
        assert!(crate::db::outbox::for_newsletter_reader(c, old).unwrap().is_empty(), "its queued mail went with it");
    }
}
