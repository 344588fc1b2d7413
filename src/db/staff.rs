//! The teaching team's rows: course roles, invitations, and the courses an API token is
//! narrowed to. `app::access` and `app::staff` hold the rules.

use diesel::prelude::*;

use super::schema::{api_token_courses, course_staff, courses, instructors, invitations};
use super::{StoreError, StoreResult};

/// (course id, role) of every course role an instructor holds.
pub fn roles_of(conn: &mut SqliteConnection, instructor: i64) -> StoreResult<Vec<(i64, String)>> {
    course_staff::table
        .filter(course_staff::instructor_id.eq(instructor))
        .select((course_staff::course_id, course_staff::role))
        .load(conn)
        .map_err(Into::into)
}

/// Gives `instructor` `role` in `course`, replacing the role they held there.
pub fn grant(
    conn: &mut SqliteConnection,
    course: i64,
    instructor: i64,
    role: &str,
    by: Option<i64>,
    now: i64,
) -> StoreResult<()> {
    diesel::insert_into(course_staff::table)
        .values((
            course_staff::course_id.eq(course),
            course_staff::instructor_id.eq(instructor),
            course_staff::role.eq(role),
            course_staff::granted_at.eq(now),
            course_staff::granted_by.eq(by),
        ))
        .on_conflict((course_staff::course_id, course_staff::instructor_id))
        .do_update()
        .set((course_staff::role.eq(role), course_staff::granted_at.eq(now), course_staff::granted_by.eq(by)))
        .execute(conn)?;
    Ok(())
}

/// Takes `instructor`'s role in `course` away; returns the role they held.
pub fn revoke(conn: &mut SqliteConnection, course: i64, instructor: i64) -> StoreResult<Option<String>> {
    let held: Option<String> =
        course_staff::table.find((course, instructor)).select(course_staff::role).first(conn).optional()?;
    diesel::delete(course_staff::table.find((course, instructor))).execute(conn)?;
    Ok(held)
}

/// How many owners a course has.
pub fn owners(conn: &mut SqliteConnection, course: i64) -> StoreResult<i64> {
    course_staff::table
        .filter(course_staff::course_id.eq(course).and(course_staff::role.eq("owner")))
        .count()
        .get_result(conn)
        .map_err(Into::into)
}

/// One course role, as lists show it.
#[derive(Debug, Clone, Queryable, serde::Serialize)]
pub struct StaffRow {
    pub course_id: i64,
    pub course_slug: String,
    pub course_title: String,
    pub instructor_id: i64,
    pub email: String,
    pub role: String,
    pub granted_at: i64,
}

/// Every course role (of one course when given), by course then email.
pub fn list(conn: &mut SqliteConnection, course: Option<i64>) -> StoreResult<Vec<StaffRow>> {
    let mut q = course_staff::table
        .inner_join(courses::table)
        .inner_join(instructors::table)
        .select((
            course_staff::course_id,
            courses::slug,
            courses::title,
            course_staff::instructor_id,
            instructors::email,
            course_staff::role,
            course_staff::granted_at,
        ))
        .order((courses::position, courses::id, instructors::email))
        .into_boxed();
    if let Some(c) = course {
        q = q.filter(course_staff::course_id.eq(c));
    }
    q.load(conn).map_err(Into::into)
}

/// An invitation as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invitations)]
pub struct Invitation {
    pub id: i64,
    pub token_hash: String,
    pub email: String,
    pub course_id: Option<i64>,
    pub role: Option<String>,
    pub admin: bool,
    pub invited_by: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
}

/// What a new invitation holds.
pub struct NewInvitation<'a> {
    pub token_hash: &'a str,
    pub email: &'a str,
    pub course_id: Option<i64>,
    pub role: Option<&'a str>,
    pub admin: bool,
    pub invited_by: Option<i64>,
    pub expires_at: i64,
}

pub fn invite(conn: &mut SqliteConnection, i: &NewInvitation<'_>, now: i64) -> StoreResult<Invitation> {
    diesel::insert_into(invitations::table)
        .values((
            invitations::token_hash.eq(i.token_hash),
            invitations::email.eq(i.email),
            invitations::course_id.eq(i.course_id),
            invitations::role.eq(i.role),
            invitations::admin.eq(i.admin),
            invitations::invited_by.eq(i.invited_by),
            invitations::created_at.eq(now),
            invitations::expires_at.eq(i.expires_at),
        ))
        .returning(Invitation::as_returning())
        .get_result(conn)
        .map_err(Into::into)
}

/// The invitation whose token hashes to `hash`, if unused and not expired at `now`.
pub fn pending_invitation(conn: &mut SqliteConnection, hash: &str, now: i64) -> StoreResult<Option<Invitation>> {
    invitations::table
        .filter(invitations::token_hash.eq(hash))
        .filter(invitations::accepted_at.is_null())
        .filter(invitations::expires_at.gt(now))
        .select(Invitation::as_select())
        .first(conn)
        .optional()
        .map_err(Into::into)
}

/// Marks an invitation used; false when it was used meanwhile.
pub fn accept_invitation(conn: &mut SqliteConnection, id: i64, now: i64) -> StoreResult<bool> {
    let n = diesel::update(invitations::table.find(id).filter(invitations::accepted_at.is_null()))
        .set(invitations::accepted_at.eq(now))
        .execute(conn)?;
    Ok(n == 1)
}

/// Invitations not yet used nor expired, newest first.
pub fn open_invitations(conn: &mut SqliteConnection, now: i64) -> StoreResult<Vec<Invitation>> {
    invitations::table
        .filter(invitations::accepted_at.is_null().and(invitations::expires_at.gt(now)))
        .order(invitations::id.desc())
        .select(Invitation::as_select())
        .limit(200)
        .load(conn)
        .map_err(Into::into)
}

/// The courses an API token is narrowed to (none: not narrowed).
pub fn token_courses(conn: &mut SqliteConnection, token: i64) -> StoreResult<Vec<i64>> {
    api_token_courses::table
        .filter(api_token_courses::token_id.eq(token))
        .select(api_token_courses::course_id)
        .load(conn)
        .map_err(Into::into)
}

/// Narrows a token to `courses`.
pub fn set_token_courses(conn: &mut SqliteConnection, token: i64, courses: &[i64]) -> StoreResult<()> {
    for c in courses {
        diesel::insert_or_ignore_into(api_token_courses::table)
            .values((api_token_courses::token_id.eq(token), api_token_courses::course_id.eq(c)))
            .execute(conn)?;
    }
    Ok(())
}

/// An instructor by email, or why there is none.
pub fn instructor_by_email(conn: &mut SqliteConnection, email: &str) -> StoreResult<super::instructors::Instructor> {
    super::instructors::find_by_email(conn, email)?
        .ok_or_else(|| StoreError::field("email", format!("no instructor has the email {}", email.trim())))
}

/// What an invitation mail says: to whom, what is offered, by whom.
pub struct InvitationMail {
    pub to: String,
    /// "reviewer of Open Learning", or "institution admin".
    pub offer: String,
    pub inviter: Option<String>,
    pub expires_at: i64,
}

/// Gives a pending invitation a new link token (its hash) for the mail about to be written;
/// `None` when it was used or expired meanwhile.
pub fn renew_invitation_token(
    conn: &mut SqliteConnection,
    id: i64,
    hash: &str,
    now: i64,
) -> StoreResult<Option<InvitationMail>> {
    super::write_tx(conn, |c| {
        let inv: Option<Invitation> = invitations::table
            .find(id)
            .filter(invitations::accepted_at.is_null().and(invitations::expires_at.gt(now)))
            .select(Invitation::as_select())
            .first(c)
            .optional()?;
        let Some(inv) = inv else { return Ok(None) };
        diesel::update(invitations::table.find(id)).set(invitations::token_hash.eq(hash)).execute(c)?;
        let offer = match (inv.course_id, inv.role.as_deref(), inv.admin) {
            (_, _, true) => "institution admin".to_string(),
            (Some(course), Some(role), false) => {
                let title: String = courses::table.find(course).select(courses::title).first(c)?;
                format!("{role} of {title}")
            }
            _ => "member of the teaching team".to_string(),
        };
        let inviter = match inv.invited_by {
            Some(by) => instructors::table.find(by).select(instructors::email).first(c).optional()?,
            None => None,
        };
        Ok(Some(InvitationMail { to: inv.email, offer, inviter, expires_at: inv.expires_at }))
    })
}
