//! A course's issues: one per local date, stored once, with the copies queued to its readers.

use diesel::prelude::*;

use super::*;
use crate::db::schema::{newsletter_courses, newsletter_deliveries, newsletter_issues};
use crate::db::{StoreResult, write_tx};

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

/// Deletes a day's issue that did not go out (empty or skipped: it has no copies and no
/// Webmentions), so that the instructor's "Send now" can build the day again; a sent issue
/// is never deleted. Whether one was deleted.
pub fn discard_unsent(conn: &mut SqliteConnection, issue_id: i64) -> StoreResult<bool> {
    let n =
        diesel::delete(newsletter_issues::table.find(issue_id).filter(newsletter_issues::status.ne(IssueStatus::Sent)))
            .execute(conn)?;
    Ok(n > 0)
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
