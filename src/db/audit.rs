//! The audit trail's rows: appended, listed newest first with filters, never changed.

use diesel::prelude::*;

use super::StoreResult;
use super::schema::audit_events;

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = audit_events)]
pub struct Event {
    pub id: i64,
    pub at: i64,
    pub instructor_id: Option<i64>,
    pub actor: String,
    pub surface: String,
    pub client: Option<String>,
    pub action: String,
    pub course_id: Option<i64>,
    pub subject: String,
    pub detail: String,
}

/// What an event records.
pub struct NewEvent<'a> {
    pub instructor_id: Option<i64>,
    pub actor: &'a str,
    pub surface: &'a str,
    pub client: Option<&'a str>,
    pub action: &'a str,
    pub course_id: Option<i64>,
    pub subject: &'a str,
    pub detail: &'a str,
}

pub fn append(conn: &mut SqliteConnection, e: &NewEvent<'_>, now: i64) -> StoreResult<()> {
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::at.eq(now),
            audit_events::instructor_id.eq(e.instructor_id),
            audit_events::actor.eq(e.actor),
            audit_events::surface.eq(e.surface),
            audit_events::client.eq(e.client),
            audit_events::action.eq(e.action),
            audit_events::course_id.eq(e.course_id),
            audit_events::subject.eq(e.subject),
            audit_events::detail.eq(e.detail),
        ))
        .execute(conn)?;
    Ok(())
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since: Option<i64>,
    /// Only these courses' events (a course owner's view); `None`: every event.
    pub courses: Option<Vec<i64>>,
    /// Actions starting with this, such as `award.`.
    pub action: Option<String>,
    pub instructor: Option<i64>,
}

/// Events newest first: `limit` of them after skipping `offset`, and how many match in all.
pub fn list(conn: &mut SqliteConnection, f: &Filter, limit: i64, offset: i64) -> StoreResult<(Vec<Event>, i64)> {
    let query = || {
        let mut q = audit_events::table.into_boxed();
        if let Some(s) = f.since {
            q = q.filter(audit_events::at.ge(s));
        }
        if let Some(cs) = &f.courses {
            q = q.filter(audit_events::course_id.eq_any(cs.clone()));
        }
        if let Some(a) = &f.action {
            q = q.filter(audit_events::action.like(format!("{}%", a.replace(['%', '_'], ""))));
        }
        if let Some(i) = f.instructor {
            q = q.filter(audit_events::instructor_id.eq(i));
        }
        q
    };
    let total = query().count().get_result(conn)?;
    let rows =
        query().order(audit_events::id.desc()).limit(limit).offset(offset).select(Event::as_select()).load(conn)?;
    Ok((rows, total))
}
