//! The teaching team: course roles granted and taken away, admins named, invitations sent
//! and accepted. Each change is checked against the actor's own roles and recorded in the
//! audit trail.

use diesel::SqliteConnection;

use crate::app::access::{Actor, Role};
use crate::app::audit;
use crate::db::courses::{self, Course};
use crate::db::instructors::{self, Instructor};
use crate::db::staff::{self, Invitation, NewInvitation};
use crate::db::{StoreError, StoreResult, write_tx};
use crate::domain::Email;

/// How long an invitation link works: 7 days.
pub const INVITATION_DAYS: i64 = 7;

/// What an invitation offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// A role in a course.
    Course { course: i64, role: Role },
    /// Institution admin.
    Admin,
}

/// A course by slug, or a clear error naming it.
pub fn course_by_slug(conn: &mut SqliteConnection, slug: &str) -> StoreResult<Course> {
    let slug = slug.trim().trim_start_matches("/courses/");
    courses::get_course_by_slug(conn, slug).map_err(|e| match e {
        StoreError::NotFound(_) => StoreError::field("course", format!("no course has the slug {slug:?}")),
        e => e,
    })
}

/// Gives the instructor with `email` `role` in `course` (replacing the role they held
/// there). Needs the course's owner or an admin.
pub fn grant(
    conn: &mut SqliteConnection,
    actor: &Actor,
    email: &str,
    course: i64,
    role: Role,
    now: i64,
) -> StoreResult<Instructor> {
    actor.require_course(conn, course, Role::Owner, "change who works on the course")?;
    write_tx(conn, |c| {
        let who = staff::instructor_by_email(c, email)?;
        let slug = courses::get_course(c, course)?.slug;
        staff::grant(c, course, who.id, role.as_str(), actor.instructor_id, now)?;
        audit::record(c, actor, "role.grant", Some(course), &who.email, &format!("{} of {slug}", role.as_str()), now)?;
        Ok(who)
    })
}

/// Takes the role of the instructor with `email` in `course` away; returns the role they
/// held. A course keeps at least one owner unless an admin takes the last one away.
pub fn revoke_role(
    conn: &mut SqliteConnection,
    actor: &Actor,
    email: &str,
    course: i64,
    now: i64,
) -> StoreResult<Role> {
    actor.require_course(conn, course, Role::Owner, "change who works on the course")?;
    write_tx(conn, |c| {
        let who = staff::instructor_by_email(c, email)?;
        let held = staff::roles_of(c, who.id)?.into_iter().find(|(id, _)| *id == course).map(|(_, r)| r);
        let Some(held) = held else {
            return Err(StoreError::Conflict(format!("{} has no role in this course", who.email)));
        };
        if held == Role::Owner.as_str() && staff::owners(c, course)? <= 1 && !actor.admin {
            return Err(StoreError::Conflict(
                "this is the course's last owner; make someone else owner first (or ask an admin)".into(),
            ));
        }
        staff::revoke(c, course, who.id)?;
        let slug = courses::get_course(c, course)?.slug;
        audit::record(c, actor, "role.revoke", Some(course), &who.email, &format!("{held} of {slug}"), now)?;
        Role::parse(&held).map_err(|e| StoreError::Internal(anyhow::anyhow!(e)))
    })
}

/// Makes the instructor with `email` an institution admin, or no longer one. Needs an admin;
/// the last admin stays one.
pub fn set_admin(
    conn: &mut SqliteConnection,
    actor: &Actor,
    email: &str,
    on: bool,
    now: i64,
) -> StoreResult<Instructor> {
    actor.require_admin("name or remove admins")?;
    write_tx(conn, |c| {
        let who = staff::instructor_by_email(c, email)?;
        if who.admin && !on && instructors::admins(c)? <= 1 {
            return Err(StoreError::Conflict(format!("{} is the last admin; name another admin first", who.email)));
        }
        instructors::set_admin(c, who.id, on)?;
        let action = if on { "admin.grant" } else { "admin.revoke" };
        audit::record(c, actor, action, None, &who.email, "", now)?;
        Ok(Instructor { admin: on, ..who })
    })
}

/// Invites `email`: an invitation row (the link's token is made when the mail is written, by
/// `Notifier::send_invitation`, and only its hash kept). Needs the course's owner, or an admin
/// for admin.
pub fn invite(
    conn: &mut SqliteConnection,
    actor: &Actor,
    email: &str,
    offer: Offer,
    now: i64,
) -> StoreResult<Invitation> {
    let email = Email::parse(email).map_err(|e| StoreError::field("email", e))?;
    match offer {
        Offer::Course { course, .. } => {
            actor.require_course(conn, course, Role::Owner, "invite staff to the course")?
        }
        Offer::Admin => actor.require_admin("invite admins")?,
    }
    write_tx(conn, |c| {
        let (course, role, what) = match offer {
            Offer::Course { course, role } => {
                let slug = courses::get_course(c, course)?.slug;
                (Some(course), Some(role.as_str()), format!("{} of {slug}", role.as_str()))
            }
            Offer::Admin => (None, None, "admin".to_string()),
        };
        // A placeholder hash until the mail is written: the link exists only in the mail.
        let placeholder = crate::tokens::token_hash(&crate::tokens::random_token());
        let inv = staff::invite(
            c,
            &NewInvitation {
                token_hash: &placeholder,
                email: email.as_str(),
                course_id: course,
                role,
                admin: offer == Offer::Admin,
                invited_by: actor.instructor_id,
                expires_at: now + INVITATION_DAYS * 86_400,
            },
            now,
        )?;
        audit::record(c, actor, "invitation.create", course, email.as_str(), &what, now)?;
        Ok(inv)
    })
}

/// An invitation link's invitation, if it is unused and not expired.
pub fn pending(conn: &mut SqliteConnection, token: &str, now: i64) -> StoreResult<Option<Invitation>> {
    staff::pending_invitation(conn, &crate::tokens::token_hash(token), now)
}

/// Who accepts an invitation.
pub enum Accepting<'a> {
    /// A new account with this password (the invitation's email).
    Password(&'a str),
    /// The signed-in instructor, whose (verified) email must be the invitation's.
    SignedIn(i64),
}

/// Accepts an invitation: the account made or matched, the role or admin given, the link
/// used up. Refused when the link is unknown, used or expired, or when the signed-in
/// instructor is someone else.
pub fn accept(conn: &mut SqliteConnection, token: &str, who: Accepting<'_>, now: i64) -> StoreResult<Instructor> {
    let hash = crate::tokens::token_hash(token);
    // An unknown, used or expired link costs a look-up, never a password hash.
    if staff::pending_invitation(conn, &hash, now)?.is_none() {
        return Err(StoreError::NotFound("invitation (the link may have been used already, or expired)"));
    }
    // Hashing a password is slow: before the write transaction.
    let password_hash = match who {
        Accepting::Password(p) => {
            crate::domain::check_password(p).map_err(|e| StoreError::field("password", e))?;
            Some(crate::app::instructors::hash_password(p)?)
        }
        Accepting::SignedIn(_) => None,
    };
    write_tx(conn, |c| {
        let inv = staff::pending_invitation(c, &hash, now)?
            .ok_or(StoreError::NotFound("invitation (the link may have been used already, or expired)"))?;
        let instructor = match (&who, &password_hash) {
            (Accepting::SignedIn(id), _) => {
                let me = instructors::find(c, *id)?.ok_or(StoreError::NotFound("instructor"))?;
                if !me.email.eq_ignore_ascii_case(&inv.email) {
                    return Err(StoreError::Forbidden(format!(
                        "this invitation is for {}, and you are signed in as {}; sign out and open the link again",
                        inv.email, me.email
                    )));
                }
                me
            }
            (Accepting::Password(_), Some(h)) => match instructors::find_by_email(c, &inv.email)? {
                Some(_) => {
                    return Err(StoreError::Conflict(format!(
                        "{} already has an account: sign in, then open the link again",
                        inv.email
                    )));
                }
                None => instructors::create(c, &inv.email, h, false, now)?,
            },
            (Accepting::Password(_), None) => return Err(StoreError::Internal(anyhow::anyhow!("no password hash"))),
        };
        if !staff::accept_invitation(c, inv.id, now)? {
            return Err(StoreError::NotFound("invitation (the link was used meanwhile)"));
        }
        if inv.admin {
            instructors::set_admin(c, instructor.id, true)?;
        }
        if let (Some(course), Some(role)) = (inv.course_id, inv.role.as_deref()) {
            staff::grant(c, course, instructor.id, role, inv.invited_by, now)?;
        }
        let actor = Actor::load(c, &instructor, crate::app::access::Surface::Web, None)?;
        let what = match (&inv.role, inv.admin) {
            (_, true) => "admin".to_string(),
            (Some(r), _) => r.clone(),
            (None, false) => String::new(),
        };
        audit::record(c, &actor, "invitation.accept", inv.course_id, &instructor.email, &what, now)?;
        Ok(Instructor { admin: instructor.admin || inv.admin, ..instructor })
    })
}
