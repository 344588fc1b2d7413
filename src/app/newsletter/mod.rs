//! The course newsletter: anyone subscribes with a confirmation link (no account, no feed);
//! once a day, at the configured hour in the course's time zone, an issue gathers what the
//! course's learners wrote since the last one, grouped by Task, with the current module's Tasks,
//! the badges awarded and the instructor's note. An issue is built once per course and local
//! date and queued as one delivery per confirmed reader; the sender works through the queue
//! at the configured pace, so a crash resumes where it stopped without sending a copy twice.
//!
//! Here: the rules and their errors. [`issues`] builds and reads issues, [`readers`] holds the
//! readers' use cases, [`time`] the course's local day, [`schedule`] the job and [`today`]
//! where the day's issue stands; what an issue holds, its mails and the sender are in
//! [`crate::notify::newsletter`].

pub mod issues;
pub mod readers;
pub mod schedule;
pub mod time;
pub mod today;

pub use crate::notify::newsletter::{
    BadgeCount, CONCURRENCY, CONFIRM_SECS, Content, Group, IssueHtml, IssueText, LEASE_SECS, Links, ModuleTasks,
    PostItem, Rendered, SEND_TIMEOUT, TaskRef, archive_url, excerpt, list_headers, parse_content, render_mail,
    token_reader, unsubscribe_token, unsubscribe_url,
};
pub use issues::*;
pub use readers::*;
pub use schedule::*;
pub use time::*;
pub use today::*;

use crate::db::StoreError;
use crate::domain::FieldErrors;

/// A course's newsletter (its settings, its readers' addresses, sending and skipping an
/// issue) is its owners' to run, or an admin's.
pub fn may_manage(
    conn: &mut diesel::SqliteConnection,
    actor: &crate::app::access::Actor,
    course: i64,
) -> crate::db::StoreResult<()> {
    actor.require_course(conn, course, crate::app::access::Role::Owner, "run this course's newsletter")
}

/// Most posts one issue lists; the rest wait for the archive and the Reader.
pub const MAX_POSTS: i64 = 200;

/// Characters of a post's text excerpt.
pub const EXCERPT_CHARS: usize = 280;

/// Longest instructor's note.
pub const MAX_NOTE_CHARS: usize = 5000;

/// A course's newsletter settings as the instructor typed them.
#[derive(Debug, Clone, Default)]
pub struct SettingsInput {
    pub time_zone: String,
    pub note: String,
    pub webmentions: bool,
}

/// Checks and saves a course's newsletter settings at `now`: a time zone the tz database
/// knows and a note of at most [`MAX_NOTE_CHARS`] characters; every problem at once.
pub fn save_settings(
    conn: &mut diesel::SqliteConnection,
    course_id: i64,
    input: &SettingsInput,
    now: i64,
) -> Result<(), StoreError> {
    let mut errors = FieldErrors::new();
    let zone = errors.check("time_zone", parse_zone(&input.time_zone)).map(|z| z.name().to_string());
    if input.note.chars().count() > MAX_NOTE_CHARS {
        errors.add("note", format!("at most {MAX_NOTE_CHARS} characters"));
    }
    let (Some(zone), true) = (zone, errors.is_empty()) else {
        return Err(StoreError::Invalid(errors));
    };
    crate::db::newsletter::save_settings(conn, course_id, &zone, input.note.trim(), input.webmentions, now)
}

/// Why a newsletter operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum NewsletterError {
    #[error("{0}")]
    Invalid(FieldErrors),
    /// The address has had its confirmation mails for the day.
    #[error(
        "Cairn has already sent {limit} confirmation email(s) to this address today; check your inbox (and spam \
         folder), or try again in about {} hour(s)", (*.wait as u64).div_ceil(3600)
    )]
    MailLimit { limit: u32, wait: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for NewsletterError {
    fn from(e: diesel::result::Error) -> Self {
        NewsletterError::Store(e.into())
    }
}
