//! The course newsletter: its readers (double opt-in), each course's settings, the issues and
//! one delivery row per reader per issue, whose unique key makes a resumed send skip those
//! already made. Here: the states, the rows and each course's settings; [`readers`], [`issues`],
//! what an issue holds ([`content`]) and [`delivery`] each have their file.

use diesel::prelude::*;

use super::StoreResult;
use crate::db::courses::Task;
use crate::db::schema::{newsletter_courses, newsletter_issues, newsletter_subscribers};

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
    /// The issue as JSON (`crate::notify::newsletter::Content`).
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

/// When the course's first reader confirmed (Unix seconds), of those who ever did; `None`
/// before anyone has.
pub fn first_confirmed_at(conn: &mut SqliteConnection, course_id: i64) -> StoreResult<Option<i64>> {
    Ok(newsletter_subscribers::table
        .filter(newsletter_subscribers::course_id.eq(course_id))
        .select(diesel::dsl::min(newsletter_subscribers::confirmed_at))
        .first(conn)?)
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

pub mod content;
pub mod delivery;
pub mod issues;
pub mod readers;

pub use content::*;
pub use delivery::*;
pub use issues::*;
pub use readers::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema::newsletter_deliveries;

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
