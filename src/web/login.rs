//! Sign-in and sign-out.

use std::time::Instant;

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{AppState, Page, local_next, redirect, render, render_status};
use crate::db::instructors;
use crate::web::auth::{self, CsrfForm};
use crate::web::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login_get))
        .route("/login", web::post().to(login_post))
        .route("/logout", web::post().to(logout_post));
}

/// The address that starts a sign-in through the identity provider (`/login/oidc`) and returns
/// to `next` (a local path, checked again by [`local_next`]) once signed in: for links such as
/// an invitation's "sign in through your institution". Also `web::oidc::start_url`.
pub fn start_url(next: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish();
    format!("/login/oidc?{query}")
}

#[derive(Template)]
#[template(path = "login.html")]
pub(super) struct LoginPage {
    page: Page,
    next: String,
    email: String,
    error: String,
    /// Whether the email and password form is offered (`[auth] passwords`).
    passwords: bool,
    /// The identity provider's name, when `[oidc]` is set.
    provider: Option<String>,
    /// Where its button leads.
    provider_url: String,
}

impl LoginPage {
    pub(super) fn new(state: &AppState, session: &Session, next: String, email: String, error: String) -> LoginPage {
        LoginPage {
            page: Page::with_form(session, "Sign in"),
            provider: state.sso.as_ref().map(|s| s.name().to_string()),
            provider_url: start_url(&next),
            passwords: state.passwords,
            next,
            email,
            error,
        }
    }
}

#[derive(Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

async fn login_get(
    session: Session,
    state: web::Data<AppState>,
    q: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let next = local_next(&state.base_url, &q.next);
    if auth::instructor_id(&session).is_some() {
        return Ok(redirect(&next));
    }
    render(&LoginPage::new(&state, &session, next, String::new(), String::new()))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

async fn login_post(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<HttpResponse, AppError> {
    if !state.passwords {
        let next = local_next(&state.base_url, &form.next);
        let error = "Password sign-in is turned off here: sign in through the identity provider.".to_string();
        return render_status(
            &LoginPage::new(&state, &session, next, String::new(), error),
            actix_web::http::StatusCode::FORBIDDEN,
        );
    }
    let addr = state.client_ip(&req);
    if let Err(wait) = state.throttle.attempt(&form.email, addr, Instant::now()) {
        return Err(AppError::TooManyRequests { retry_after: wait });
    }
    let email = form.email.clone();
    let who = state.db(move |conn| instructors::find_by_email(conn, &email)).await?;
    // The connection is back in the pool before argon2 starts.
    let ok = state.verify_password(form.password.clone(), who.as_ref().map(|i| i.password_hash.clone())).await?;
    match who.filter(|_| ok) {
        Some(instructor) => {
            state.throttle.succeed(&form.email, addr);
            auth::sign_in(&session, instructor.id);
            tracing::info!(instructor = instructor.id, "signed in");
            Ok(redirect(&local_next(&state.base_url, &form.next)))
        }
        None => {
            tracing::warn!(?addr, "failed sign-in");
            let next = local_next(&state.base_url, &form.next);
            let error = "That email and password do not match an instructor account.".to_string();
            render_status(
                &LoginPage::new(&state, &session, next, form.email, error),
                actix_web::http::StatusCode::UNAUTHORIZED,
            )
        }
    }
}

async fn logout_post(session: Session, CsrfForm(_): CsrfForm<serde::de::IgnoredAny>) -> HttpResponse {
    auth::sign_out(&session);
    redirect("/")
}
