//! Sign-in and sign-out.

use std::time::Instant;

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{AppState, Page, redirect, render, render_status};
use crate::auth::{self, CsrfForm};
use crate::db::instructors;
use crate::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login_get))
        .route("/login", web::post().to(login_post))
        .route("/logout", web::post().to(logout_post));
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    page: Page,
    next: String,
    email: String,
    error: String,
}

#[derive(Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only local paths are followed after sign-in (no open redirect).
fn local_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_string()
    } else {
        "/admin".to_string()
    }
}

async fn login_get(session: Session, q: web::Query<NextQuery>) -> Result<HttpResponse, AppError> {
    if auth::instructor_id(&session).is_some() {
        return Ok(redirect(&local_next(&q.next)));
    }
    render(&LoginPage {
        page: Page::with_form(&session, "Sign in"),
        next: local_next(&q.next),
        email: String::new(),
        error: String::new(),
    })
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

/// A valid hash to verify against when the account does not exist, so that unknown and
/// known emails take the same time.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| instructors::hash_password("not a real password, only for timing"));

async fn login_post(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let addr = req.peer_addr().map(|a| a.ip());
    let now = Instant::now();
    if let Err(wait) = state.throttle.check(&form.email, addr, now) {
        return Err(AppError::TooManyRequests { retry_after: wait });
    }
    let email = form.email.clone();
    let password = form.password.clone();
    let found = state
        .db(move |conn| {
            let who = instructors::find_by_email(conn, &email)?;
            let hash = who.as_ref().map(|i| i.password_hash.as_str()).unwrap_or(DUMMY_HASH.as_str());
            let ok = instructors::verify_password(&password, hash);
            Ok(who.filter(|_| ok))
        })
        .await?;
    match found {
        Some(instructor) => {
            state.throttle.succeed(&form.email);
            auth::sign_in(&session, instructor.id);
            tracing::info!(instructor = instructor.id, "signed in");
            Ok(redirect(&local_next(&form.next)))
        }
        None => {
            let stall = state.throttle.fail(&form.email, addr, now);
            tokio::time::sleep(stall).await;
            tracing::warn!(email = %form.email, ?addr, "failed sign-in");
            render_status(
                &LoginPage {
                    page: Page::with_form(&session, "Sign in"),
                    next: local_next(&form.next),
                    email: form.email,
                    error: "That email and password do not match an instructor account.".into(),
                },
                actix_web::http::StatusCode::UNAUTHORIZED,
            )
        }
    }
}

async fn logout_post(session: Session, CsrfForm(_): CsrfForm<serde::de::IgnoredAny>) -> HttpResponse {
    auth::sign_out(&session);
    redirect("/")
}
