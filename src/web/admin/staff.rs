//! The teaching team's pages: `/admin/staff` (who holds which role; invitations, grants and
//! removals), `/admin/audit` (the audit trail), and `/invitations/{token}` where an invitee
//! accepts. The rules are in `app::staff`, `app::access` and `app::audit`.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::app::access::Role;
use crate::app::staff::{self, Accepting, Offer};
use crate::db::audit::{Event, Filter};
use crate::db::courses::Course;
use crate::db::instructors::Instructor;
use crate::db::staff::{Invitation, StaffRow};
use crate::domain::FieldErrors;
use crate::web::auth::{self, Acting, CsrfForm, flash};
use crate::web::error::AppError;
use crate::web::{AppState, Page, redirect, render, render_status};

#[derive(Template)]
#[template(path = "admin/staff.html")]
pub(super) struct StaffPage {
    page: Page,
    /// Every instructor, for an admin; empty for a course owner.
    instructors: Vec<Instructor>,
    rows: Vec<StaffRow>,
    /// The courses this instructor may staff (owner or admin).
    courses: Vec<Course>,
    invitations: Vec<Invitation>,
    admin: bool,
    form: InviteForm,
    errors: FieldErrors,
    roles: [Role; 3],
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct InviteForm {
    #[serde(default)]
    email: String,
    /// A course id, or "admin".
    #[serde(default)]
    target: String,
    #[serde(default)]
    role: String,
}

async fn staff_page(state: &AppState, session: &Session, who: &Acting) -> Result<StaffPage, AppError> {
    let actor = who.0.clone();
    let now = crate::clock::system_now();
    let (instructors, rows, courses, invitations) = state
        .db(move |c| {
            let owned = actor.courses_with(Role::Owner);
            let courses: Vec<Course> = crate::db::courses::list_courses(c)?
                .into_iter()
                .filter(|course| owned.as_ref().is_none_or(|o| o.contains(&course.id)))
                .collect();
            if courses.is_empty() && !actor.admin {
                return Err(crate::db::StoreError::Forbidden(
                    "only an institution admin, or a course's owner, may manage staff".into(),
                ));
            }
            let rows: Vec<StaffRow> = crate::db::staff::list(c, None)?
                .into_iter()
                .filter(|r| owned.as_ref().is_none_or(|o| o.contains(&r.course_id)))
                .collect();
            let instructors = if actor.admin { crate::db::instructors::list(c)? } else { Vec::new() };
            let invitations = crate::db::staff::open_invitations(c, now)?
                .into_iter()
                .filter(|i| match i.course_id {
                    Some(course) => owned.as_ref().is_none_or(|o| o.contains(&course)),
                    None => actor.admin,
                })
                .collect();
            Ok((instructors, rows, courses, invitations))
        })
        .await?;
    Ok(StaffPage {
        page: Page::new(session, "Staff"),
        instructors,
        rows,
        courses,
        invitations,
        admin: who.0.admin,
        form: InviteForm::default(),
        errors: FieldErrors::new(),
        roles: Role::ALL,
    })
}

impl StaffPage {
    fn course_title(&self, id: &Option<i64>) -> String {
        id.and_then(|id| self.courses.iter().find(|c| c.id == id)).map(|c| c.title.clone()).unwrap_or_default()
    }

    fn day(&self, t: &i64) -> String {
        chrono::DateTime::from_timestamp(*t, 0).map(|d| d.format("%-d %B %Y").to_string()).unwrap_or_default()
    }
}

pub(super) async fn staff_get(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    render(&staff_page(&state, &session, &who).await?)
}

/// The offer a form names: a course role or admin.
fn offer_of(target: &str, role: &str) -> Result<Offer, FieldErrors> {
    let mut errors = FieldErrors::new();
    if target == "admin" {
        return Ok(Offer::Admin);
    }
    let course = target.parse::<i64>().ok();
    if course.is_none() {
        errors.add("target", "choose a course, or institution admin");
    }
    let role = errors.check("role", Role::parse(role));
    match (course, role) {
        (Some(course), Some(role)) => Ok(Offer::Course { course, role }),
        _ => Err(errors),
    }
}

pub(super) async fn staff_invite(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<InviteForm>,
) -> Result<HttpResponse, AppError> {
    let result = match offer_of(&form.target, &form.role) {
        Ok(offer) => {
            let (actor, email) = (who.0.clone(), form.email.clone());
            state.db(move |c| staff::invite(c, &actor, &email, offer, crate::clock::system_now())).await
        }
        Err(errors) => Err(AppError::Invalid(errors)),
    };
    match result {
        Ok(inv) => {
            match state.notifier.send_invitation(inv.id).await {
                Ok(()) => flash(
                    &session,
                    format!(
                        "Invitation sent to {}; its link works once, for {} days.",
                        inv.email,
                        staff::INVITATION_DAYS
                    ),
                ),
                Err(e) => {
                    tracing::warn!(invitation = inv.id, error = %e, "an invitation mail could not be sent");
                    flash(
                        &session,
                        format!(
                            "The invitation to {} is made, but its mail could not be sent ({e}); invite again to send a new link.",
                            inv.email
                        ),
                    );
                }
            }
            Ok(redirect("/admin/staff"))
        }
        Err(AppError::Invalid(errors)) => {
            let mut page = staff_page(&state, &session, &who).await?;
            page.form = form;
            page.errors = errors;
            render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RoleForm {
    email: String,
    #[serde(default)]
    course: Option<i64>,
    #[serde(default)]
    role: String,
    /// "grant" or "revoke".
    action: String,
}

pub(super) async fn staff_role(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> Result<HttpResponse, AppError> {
    let actor = who.0;
    let now = crate::clock::system_now();
    let said = state
        .db(move |c| match (form.action.as_str(), form.course) {
            ("grant", Some(course)) => {
                let role = Role::parse(&form.role).map_err(|e| crate::db::StoreError::field("role", e))?;
                let who = staff::grant(c, &actor, &form.email, course, role, now)?;
                Ok(format!("{} is now {} of the course.", who.email, role.as_str()))
            }
            ("revoke", Some(course)) => {
                let held = staff::revoke_role(c, &actor, &form.email, course, now)?;
                Ok(format!("{} is no longer {} of the course.", form.email, held.as_str()))
            }
            ("grant", None) => {
                let who = staff::set_admin(c, &actor, &form.email, true, now)?;
                Ok(format!("{} is now an institution admin.", who.email))
            }
            ("revoke", None) => {
                let who = staff::set_admin(c, &actor, &form.email, false, now)?;
                Ok(format!("{} is no longer an institution admin.", who.email))
            }
            _ => Err(crate::db::StoreError::field("action", "unknown action")),
        })
        .await?;
    flash(&session, said);
    Ok(redirect("/admin/staff"))
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
pub(super) struct AuditPage {
    page: Page,
    events: Vec<Event>,
    total: i64,
    number: i64,
    pages: i64,
    query: AuditQuery,
    courses: Vec<Course>,
}

impl AuditPage {
    fn when(&self, t: &i64) -> String {
        crate::web::moment(*t)
    }

    fn course_title(&self, id: &Option<i64>) -> String {
        id.and_then(|id| self.courses.iter().find(|c| c.id == id)).map(|c| c.title.clone()).unwrap_or_default()
    }

    fn page_url(&self, n: i64) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(s) = &self.query.since {
            q.append_pair("since", s);
        }
        if let Some(c) = self.query.course {
            q.append_pair("course", &c.to_string());
        }
        if let Some(a) = &self.query.action {
            q.append_pair("action", a);
        }
        q.append_pair("page", &n.to_string());
        format!("/admin/audit?{}", q.finish())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct AuditQuery {
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    course: Option<i64>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    page: Option<i64>,
}

pub(super) async fn audit_get(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let query = q.into_inner();
    let since = match query.since.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(d) => Some(crate::app::audit::day_start(d).map_err(|e| AppError::BadRequest(format!("since={e}")))?),
        None => None,
    };
    let filter = Filter {
        since,
        courses: query.course.map(|c| vec![c]),
        action: query.action.clone().filter(|a| !a.trim().is_empty()),
        instructor: None,
    };
    let number = query.page.unwrap_or(1).max(1);
    let actor = who.0;
    let (events, total, courses) = state
        .db(move |c| {
            let (events, total) = crate::app::audit::list(c, &actor, filter, number, crate::app::audit::PAGE)?;
            Ok((events, total, crate::db::courses::list_courses(c)?))
        })
        .await?;
    render(&AuditPage {
        page: Page::new(&session, "Audit trail"),
        events,
        total,
        number,
        pages: (total + crate::app::audit::PAGE - 1) / crate::app::audit::PAGE,
        query,
        courses,
    })
}

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage {
    page: Page,
    token: String,
    email: String,
    offer: String,
    signed_in_as: Option<String>,
    /// The identity provider's name and the link that signs in through it and comes back here.
    sso: Option<(String, String)>,
    /// Whether passwords sign in here (`[auth] passwords`).
    passwords: bool,
    errors: FieldErrors,
}

/// What an invitation offers, in words.
fn offer_words(c: &mut diesel::SqliteConnection, inv: &Invitation) -> String {
    match (inv.admin, inv.course_id, inv.role.as_deref()) {
        (true, _, _) => "institution admin".into(),
        (false, Some(course), Some(role)) => {
            let title = crate::db::courses::get_course(c, course).map(|c| c.title).unwrap_or_default();
            format!("{role} of {title}")
        }
        _ => "member of the teaching team".into(),
    }
}

async fn invitation_page(
    state: &AppState,
    session: &Session,
    token: String,
    errors: FieldErrors,
) -> Result<InvitationPage, AppError> {
    let me = auth::instructor_id(session);
    let now = crate::clock::system_now();
    let t = token.clone();
    let (inv, offer, signed_in_as) = state
        .db(move |c| {
            let inv = staff::pending(c, &t, now)?.ok_or(crate::db::StoreError::NotFound(
                "invitation (the link may have been used already, or expired)",
            ))?;
            let offer = offer_words(c, &inv);
            let me = match me {
                Some(id) => crate::db::instructors::find(c, id)?.map(|i| i.email),
                None => None,
            };
            Ok((inv, offer, me))
        })
        .await?;
    let sso = state
        .sso
        .as_ref()
        .map(|s| (s.name().to_string(), crate::web::login::start_url(&format!("/invitations/{token}"))));
    Ok(InvitationPage {
        page: Page::with_form(session, "Join the teaching team"),
        sso,
        passwords: state.passwords,
        token,
        email: inv.email,
        offer,
        signed_in_as,
        errors,
    })
}

/// `GET /invitations/{token}`: what the invitation offers, and how to accept it. Looking
/// accepts nothing.
pub(super) async fn invitation_get(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    render(&invitation_page(&state, &session, token.into_inner(), FieldErrors::new()).await?)
}

#[derive(Debug, Deserialize)]
pub(super) struct AcceptForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    again: String,
    /// "signed-in" to accept as the signed-in instructor.
    #[serde(default)]
    how: String,
}

/// `POST /invitations/{token}`: accepts with a new password, or as the signed-in instructor.
pub(super) async fn invitation_post(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
    CsrfForm(form): CsrfForm<AcceptForm>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let me = auth::instructor_id(&session);
    if form.how != "signed-in" && !state.passwords {
        return Err(AppError::Forbidden("passwords do not sign in here: accept through the identity provider".into()));
    }
    if form.how != "signed-in" && form.password != form.again {
        let mut errors = FieldErrors::new();
        errors.add("again", "the two passwords differ");
        let page = invitation_page(&state, &session, token, errors).await?;
        return render_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (t, password, how) = (token.clone(), form.password.clone(), form.how.clone());
    let now = crate::clock::system_now();
    let accepted = state
        .db(move |c| {
            let who = match (how.as_str(), me) {
                ("signed-in", Some(id)) => Accepting::SignedIn(id),
                _ => Accepting::Password(&password),
            };
            staff::accept(c, &t, who, now)
        })
        .await;
    match accepted {
        Ok(instructor) => {
            if me != Some(instructor.id) {
                auth::sign_in(&session, instructor.id);
            }
            tracing::info!(instructor = instructor.id, "invitation accepted");
            flash(&session, "Welcome to the teaching team.");
            Ok(redirect("/admin"))
        }
        Err(AppError::Invalid(errors)) => {
            let page = invitation_page(&state, &session, token, errors).await?;
            render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e),
    }
}
