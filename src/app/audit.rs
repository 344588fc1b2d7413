//! The audit trail: every award, revocation, course or task edit, role change, token or
//! webhook creation, peer trust, key rotation and forget, with who, when, what and from
//! where. It names staff and what they acted on (award public ids, hashtags, course slugs),
//! never a learner's personal data, so a forget leaves it whole.

use diesel::SqliteConnection;

use crate::app::access::{Actor, Role};
use crate::db::audit::{self, Event, Filter, NewEvent};
use crate::db::{StoreError, StoreResult};

/// Appends one event, in the caller's transaction.
pub fn record(
    conn: &mut SqliteConnection,
    actor: &Actor,
    action: &str,
    course: Option<i64>,
    subject: &str,
    detail: &str,
    now: i64,
) -> StoreResult<()> {
    audit::append(
        conn,
        &NewEvent {
            instructor_id: actor.instructor_id,
            actor: &actor.name,
            surface: actor.surface.as_str(),
            client: actor.client.as_deref(),
            action,
            course_id: course,
            subject,
            detail,
        },
        now,
    )
}

/// The start of a day given as `YYYY-MM-DD` (UTC), as the `since` filter takes it.
pub fn day_start(day: &str) -> Result<i64, String> {
    chrono::NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp())
        .map_err(|_| format!("{}: give a day as YYYY-MM-DD", day.trim()))
}

/// Events per page of `/admin/audit`.
pub const PAGE: i64 = 50;

/// The events `actor` may read: every one for an admin, their courses' for a course owner;
/// anyone else is refused. Page `page` (from 1) of [`PAGE`], and the total.
pub fn list(
    conn: &mut SqliteConnection,
    actor: &Actor,
    mut filter: Filter,
    page: i64,
    per_page: i64,
) -> StoreResult<(Vec<Event>, i64)> {
    if !(actor.admin && actor.courses_with(Role::Owner).is_none()) {
        let owned = actor.courses_with(Role::Owner).unwrap_or_default();
        if owned.is_empty() {
            return Err(StoreError::Forbidden(
                "only an institution admin, or a course's owner for their course, may read the audit trail".into(),
            ));
        }
        filter.courses = Some(match filter.courses {
            Some(wanted) => wanted.into_iter().filter(|c| owned.contains(c)).collect(),
            None => owned,
        });
    }
    audit::list(conn, &filter, per_page.clamp(1, 10_000), (page.max(1) - 1) * per_page)
}
