//! Sign-in through the institution's OpenID Connect provider (`[oidc]`): `/login/oidc` starts
//! it and `/login/oidc/callback` (the redirect URI registered at the provider) completes it.
//! The rules are in [`crate::app::sso`]; this module keeps the started flows in the
//! server-side session (at most [`MAX_FLOWS`], each used once and for [`sso::FLOW_SECS`] at
//! most) and answers every bad callback with the sign-in page and a 400, 403 or 502.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::login::LoginPage;
use super::{AppState, local_next, redirect, render_status};
use crate::app::sso::{self, SsoError};
use crate::web::auth;
use crate::web::error::AppError;

/// Started sign-ins one session keeps; a new one pushes out the oldest.
const MAX_FLOWS: usize = 3;
const SESSION_FLOWS: &str = "oidc_flows";
/// Longest query parameter read from the callback.
const MAX_PARAM: usize = 4096;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login/oidc", web::get().to(start)).route(sso::CALLBACK_PATH, web::get().to(callback));
}

pub use super::login::start_url;

/// A started sign-in and where to go after it.
#[derive(Serialize, Deserialize)]
struct Flow {
    pending: sso::Pending,
    next: String,
}

#[derive(Deserialize)]
struct StartQuery {
    #[serde(default)]
    next: String,
}

async fn start(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    q: web::Query<StartQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(provider) = state.sso.clone() else { return Err(AppError::NotFound("page")) };
    let next = local_next(&state.base_url, &q.next);
    if auth::instructor_id(&session).is_some() {
        return Ok(redirect(&next));
    }
    let now = crate::clock::system_now();
    // Each start keeps a flow in a session: a client may start only so many.
    if let Err(retry_after) = state.sso_rate.check(state.client_ip(&req), now) {
        return Err(AppError::Limited {
            message: "too many sign-ins were started from your address; wait a little".into(),
            retry_after,
        });
    }
    match provider.begin(now).await {
        Ok(begun) => {
            let mut flows = session.get::<Vec<Flow>>(SESSION_FLOWS).ok().flatten().unwrap_or_default();
            flows.retain(|f| now - f.pending.created <= sso::FLOW_SECS);
            flows.push(Flow { pending: begun.pending, next });
            let excess = flows.len().saturating_sub(MAX_FLOWS);
            flows.drain(..excess);
            session.insert(SESSION_FLOWS, &flows).map_err(|e| AppError::Internal(e.into()))?;
            Ok(redirect(&begun.url))
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not start a sign-in through the identity provider");
            failed(&state, &session, &next, &e)
        }
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

async fn callback(
    session: Session,
    state: web::Data<AppState>,
    q: Result<web::Query<CallbackQuery>, actix_web::Error>,
) -> Result<HttpResponse, AppError> {
    let Some(provider) = state.sso.clone() else { return Err(AppError::NotFound("page")) };
    let bad = |message: &str| page(&state, &session, "/admin", message.to_string(), StatusCode::BAD_REQUEST);
    let Ok(q) = q else { return bad("This sign-in answer could not be read. Start again.") };
    let long = [&q.state, &q.code, &q.iss, &q.error].into_iter().flatten().any(|p| p.len() > MAX_PARAM);
    let Some(given) = q.state.as_deref().filter(|_| !long) else {
        return bad("This sign-in answer is incomplete or too long. Start again.");
    };
    // The flow is taken out of the session whatever follows: a state is good for one callback.
    let mut flows = session.get::<Vec<Flow>>(SESSION_FLOWS).ok().flatten().unwrap_or_default();
    let found = flows.iter().position(|f| crate::tokens::same(&f.pending.state, given));
    let flow = found.map(|i| flows.remove(i));
    if flows.is_empty() {
        session.remove(SESSION_FLOWS);
    } else {
        session.insert(SESSION_FLOWS, &flows).map_err(|e| AppError::Internal(e.into()))?;
    }
    let Some(Flow { pending, next }) = flow else {
        return bad("This sign-in was not started here, has already been used, or has expired. Start again.");
    };
    if let Some(error) = &q.error {
        let error: String = error.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
        tracing::info!(%error, "the identity provider did not sign someone in");
        return page(
            &state,
            &session,
            &next,
            format!("{} did not sign you in ({error}).", provider.name()),
            StatusCode::FORBIDDEN,
        );
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return bad("This sign-in answer carries no code. Start again.");
    };
    let now = crate::clock::system_now();
    let identity = match provider.finish(pending, code, q.iss.as_deref(), now).await {
        Ok(identity) => identity,
        Err(e) => {
            tracing::warn!(error = %e, "a sign-in through the identity provider failed");
            return failed(&state, &session, &next, &e);
        }
    };
    let rules = provider.rules.clone();
    let admitted = state
        .db(move |conn| {
            Ok(sso::admit(conn, &rules, &identity, now).map_err(|e| match e {
                SsoError::Store(s) => Err(s),
                other => Ok(other),
            }))
        })
        .await?;
    match admitted {
        Ok(a) => {
            auth::sign_in(&session, a.instructor_id);
            tracing::info!(
                instructor = a.instructor_id,
                provisioned = a.provisioned,
                made_admin = a.promoted,
                "signed in through the identity provider"
            );
            Ok(redirect(&next))
        }
        Err(Err(store)) => Err(store.into()),
        Err(Ok(refused)) => {
            tracing::info!(reason = refused_kind(&refused), "the identity provider's sign-in was refused");
            failed(&state, &session, &next, &refused)
        }
    }
}

/// A word for the log, which never carries an email address.
fn refused_kind(e: &SsoError) -> &'static str {
    match e {
        SsoError::Email(_) => "no verified email",
        SsoError::NoAccount(_) => "no instructor account",
        _ => "other",
    }
}

/// The sign-in page with what went wrong: 502 when the provider failed, 400 for an old or
/// reused sign-in, 403 when the sign-in was refused.
fn failed(state: &AppState, session: &Session, next: &str, e: &SsoError) -> Result<HttpResponse, AppError> {
    let status = match e {
        SsoError::Provider(_) => StatusCode::BAD_GATEWAY,
        SsoError::Stale => StatusCode::BAD_REQUEST,
        SsoError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::FORBIDDEN,
    };
    let message = match e {
        SsoError::Provider(_) => "The identity provider could not be reached or answered wrongly; try again later, \
                                  or tell an admin if it goes on."
            .to_string(),
        other => format!("Sign-in refused: {other}."),
    };
    page(state, session, next, message, status)
}

fn page(
    state: &AppState,
    session: &Session,
    next: &str,
    error: String,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    render_status(&LoginPage::new(state, session, next.to_string(), String::new(), error), status)
}
