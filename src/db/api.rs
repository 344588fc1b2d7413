//! The queries only the JSON API makes: awards listed with filters and keyset pagination
//! (`id < cursor`, newest first), so a late page costs what the first does.

use diesel::prelude::*;

use super::StoreResult;
use super::awards::Award;
use super::courses::Task;
use super::schema::{awards, tasks};

pub use super::awards::AwardState;

/// Filters of the award list (all optional).
#[derive(Debug, Clone, Default)]
pub struct AwardFilter {
    pub task_id: Option<i64>,
    /// A normalised (lower-case) address.
    pub recipient: Option<String>,
    pub issued_after: Option<i64>,
    pub issued_before: Option<i64>,
    pub state: Option<AwardState>,
    /// Awards with internal ids below this.
    pub before_id: Option<i64>,
}

/// A page of awards with their Tasks.
pub struct AwardPage {
    pub rows: Vec<(Award, Task)>,
    /// The id to continue below when there is more.
    pub next: Option<i64>,
}

/// A page of awards matching `f`, newest first.
pub fn list_awards(conn: &mut SqliteConnection, f: &AwardFilter, now: i64, limit: i64) -> StoreResult<AwardPage> {
    let mut q = awards::table
        .inner_join(tasks::table)
        .select((Award::as_select(), Task::as_select()))
        .order(awards::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(t) = f.task_id {
        q = q.filter(awards::task_id.eq(t));
    }
    if let Some(r) = &f.recipient {
        q = q.filter(awards::recipient_email.eq(r.clone()));
    }
    if let Some(a) = f.issued_after {
        q = q.filter(awards::issued_on.ge(a));
    }
    if let Some(b) = f.issued_before {
        q = q.filter(awards::issued_on.lt(b));
    }
    if let Some(c) = f.before_id {
        q = q.filter(awards::id.lt(c));
    }
    match f.state {
        Some(AwardState::Revoked) => q = q.filter(awards::revoked_at.is_not_null()),
        Some(AwardState::Expired) => q = q.filter(awards::revoked_at.is_null().and(awards::expires.lt(now))),
        Some(AwardState::Valid) => {
            q = q.filter(awards::revoked_at.is_null().and(awards::expires.is_null().or(awards::expires.ge(now))))
        }
        None => {}
    }
    let mut rows: Vec<(Award, Task)> = q.load(conn)?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.0.id)
    } else {
        None
    };
    Ok(AwardPage { rows, next })
}

#[cfg(test)]
mod tests {
    #[test]
    fn state_words_round_trip() {
        crate::db::stored::assert_round_trip!(super::AwardState);
    }
}
