//! Where a course's issue of the day stands, as the instructor's page tells it.

use diesel::SqliteConnection;

use super::*;
use crate::config::NewsletterSettings;
use crate::db::StoreResult;
use crate::db::newsletter::{self as store, Issue, IssueStatus};

/// Today's issue of a course, on its local date.
#[derive(Debug, Clone)]
pub enum Today {
    /// It went out: built at `issue.created_at`, its copies (sent, waiting, failed).
    WentOut { issue: Issue, sent: i64, waiting: i64, failed: i64 },
    /// The scheduler built it at `at` and found nothing new and no note: nothing went out.
    Empty { at: i64 },
    /// The instructor skipped the day.
    Skipped,
    /// No confirmed reader: there is no one to send it to.
    NoReaders,
    /// The first reader arrived today: the first issue waits for tomorrow unless the
    /// instructor sends it now.
    FirstReaderToday,
    /// `[newsletter] enabled = false`: only "Send now" or the command line sends it.
    NotScheduled,
    /// Due at the hour; `late` once the hour has passed (the scheduler builds it within a minute).
    Due { late: bool },
}

impl Today {
    /// Whether "Send now" would send the day's issue (it has not gone out).
    pub fn can_send(&self) -> bool {
        !matches!(self, Today::WentOut { .. })
    }

    /// Readers the issue was queued to.
    pub fn readers(&self) -> i64 {
        match self {
            Today::WentOut { sent, waiting, failed, .. } => sent + waiting + failed,
            _ => 0,
        }
    }
}

/// The course's local date at `now` and where its issue of that day stands.
pub fn today(
    conn: &mut SqliteConnection,
    course_id: i64,
    schedule: NewsletterSettings,
    now: i64,
) -> StoreResult<(String, Today)> {
    let settings = store::settings(conn, course_id)?;
    let (date, hour) = local_day(&settings.time_zone, now);
    let state = match store::issue_on(conn, course_id, &date)? {
        Some(issue) if issue.status == IssueStatus::Sent => {
            let (sent, waiting, failed) = store::delivery_counts(conn, issue.id)?;
            Today::WentOut { issue, sent, waiting, failed }
        }
        Some(issue) if issue.status == IssueStatus::Empty => Today::Empty { at: issue.created_at },
        Some(_) => Today::Skipped,
        None if settings.skip_date.as_deref() == Some(date.as_str()) => Today::Skipped,
        None if store::count_confirmed(conn, course_id)? == 0 => Today::NoReaders,
        None if !schedule.enabled => Today::NotScheduled,
        None if first_reader_day(conn, course_id, &settings.time_zone)?.as_deref() == Some(date.as_str()) => {
            Today::FirstReaderToday
        }
        None => Today::Due { late: hour >= schedule.hour },
    };
    Ok((date, state))
}
