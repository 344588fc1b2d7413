//! Changing the signed-in instructor's password.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::domain::FieldErrors;
use crate::web::auth::{CsrfForm, SignedIn};
use crate::web::error::AppError;
use crate::web::{AppState, Page, render, render_status};

#[derive(Template)]
#[template(path = "admin/password.html")]
pub(super) struct PasswordPage {
    page: Page,
    errors: FieldErrors,
    /// What the change ended, once it is made.
    done: Option<crate::app::instructors::Ended>,
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    again: String,
}

pub(super) async fn password_edit(_: SignedIn, session: Session) -> Result<HttpResponse, AppError> {
    render(&PasswordPage { page: Page::new(&session, "Change your password"), errors: FieldErrors::new(), done: None })
}

/// Changes the signed-in instructor's password and signs them out everywhere, this browser
/// included: whoever else held a session must now know the new password.
pub(super) async fn password_update(
    who: SignedIn,
    req: actix_web::HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let id = who.instructor_id;
    let me = state.db(move |c| crate::db::instructors::find(c, id)).await?.ok_or(AppError::NotFound("instructor"))?;
    // A stolen session must not become a way to guess the password.
    if let Err(wait) = state.throttle.attempt(&me.email, state.client_ip(&req), std::time::Instant::now()) {
        return Err(AppError::TooManyRequests { retry_after: wait });
    }
    let mut errors = FieldErrors::new();
    if !state.verify_password(form.current.clone(), Some(me.password_hash.clone())).await? {
        errors.add("current", "that is not your current password");
    }
    if let Err(e) = crate::domain::check_password(&form.new) {
        errors.add("new", e);
    } else if form.new != form.again {
        errors.add("again", "the two new passwords differ");
    }
    if !errors.is_empty() {
        return render_status(
            &PasswordPage { page: Page::new(&session, "Change your password"), errors, done: None },
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    state.throttle.succeed(&me.email, state.client_ip(&req));
    let hash = state.hash_password(form.new).await?;
    let now = crate::clock::system_now();
    let ended = state.db(move |c| crate::app::instructors::replace_password(c, id, &hash, now)).await?;
    tracing::info!(
        instructor = id,
        sessions = ended.sessions,
        tokens = ended.tokens,
        webhooks = ended.webhooks,
        "password changed; every session signed out, tokens revoked, webhooks disabled"
    );
    session.purge();
    let page = Page::new(&session, "Password changed");
    render(&PasswordPage { page, errors: FieldErrors::new(), done: Some(ended) })
}
