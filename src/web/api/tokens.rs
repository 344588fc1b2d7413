//! The instructor page for API tokens: make one (shown once), list them with their last use,
//! revoke one. An HTML page like the other admin pages: it takes the session, never a token.

use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::app::access::{Actor, Surface};
use crate::db::tokens::{ApiToken, Scope};
use crate::web::auth::{Acting, CsrfForm, SignedIn, flash};
use crate::web::error::AppError;
use crate::web::{AppState, Page, redirect, render_status};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/tokens", web::get().to(tokens_page))
        .route("/admin/tokens", web::post().to(create))
        .route("/admin/tokens/{id}/revoke", web::post().to(revoke));
}

#[derive(Template)]
#[template(path = "admin/tokens.html")]
struct TokensPage {
    page: Page,
    tokens: Vec<ApiToken>,
    now: i64,
    form: FormState,
}

/// What the form shows: a token just made (shown this once), or the input and its error.
#[derive(Default)]
struct FormState {
    created: Option<String>,
    name: String,
    expires: String,
    error: String,
}

impl TokensPage {
    fn scopes(&self) -> &'static [&'static str] {
        Scope::WORDS
    }

    fn when(&self, t: &i64) -> String {
        crate::web::feeds::relative(*t, self.now)
    }

    fn live(&self, t: &ApiToken) -> bool {
        t.is_live(self.now)
    }
}

async fn page(
    state: &AppState,
    session: &Session,
    who: SignedIn,
    form: FormState,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let tokens = state.db(move |c| crate::db::tokens::list_for(c, who.instructor_id)).await?;
    let now = crate::clock::system_now();
    let mut res = render_status(&TokensPage { page: Page::new(session, "API tokens"), tokens, now, form }, status)?;
    // The page may hold a token shown once: no cache may keep it.
    res.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(res)
}

async fn tokens_page(who: SignedIn, session: Session, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    page(&state, &session, who, FormState::default(), StatusCode::OK).await
}

async fn create(
    who: SignedIn,
    req: actix_web::HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    // Checkboxes repeat the `scope` key, which a struct cannot hold: read the pairs.
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone()).unwrap_or_default();
    crate::web::auth::verify_csrf(&session, &get("csrf_token"))?;
    let scopes: Vec<String> = pairs.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
    let (name, expires) = (get("name"), get("expires"));
    // A session alone does not make a token: whoever stole one must also know the password.
    if let Err(error) = confirm_password(&state, &req, who.instructor_id, get("current")).await? {
        let form = FormState { created: None, name, expires, error };
        return page(&state, &session, who, form, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let days = match expires.trim() {
        "" => Ok(None),
        d => d.parse::<i64>().map(Some).map_err(|_| format!("'{d}' is not a number of days")),
    };
    let made = match (crate::app::tokens::parse_scopes(&scopes.join(",")), days) {
        (Err(crate::db::StoreError::Invalid(e)), _) => Err(e.sentences()),
        (Err(e), _) => Err(e.to_string()),
        (_, Err(e)) => Err(e),
        (Ok(scopes), Ok(days)) => {
            let (n, now) = (name.clone(), crate::clock::system_now());
            let client = state.client_ip(&req).map(|ip| ip.to_string());
            let made = state.db(move |c| {
                let actor = Actor::load_id(c, who.instructor_id, Surface::Web, client)?;
                crate::app::tokens::create(c, &actor, who.instructor_id, &n, &scopes, days, now)
            });
            match made.await {
                Ok(made) => Ok(made),
                Err(AppError::Invalid(e)) => Err(e.sentences()),
                Err(e) => return Err(e),
            }
        }
    };
    match made {
        Ok(made) => {
            tracing::info!(token = made.token.id, instructor = who.instructor_id, "API token created");
            let detail = format!("\"{}\" with the scopes {}", made.token.name, made.token.scopes);
            // Queued in the outbox: a slow or absent mail server does not hold the page.
            let (id, what, now) =
                (who.instructor_id, crate::app::instructors::Credential::ApiToken, crate::clock::system_now());
            let how = "on the API tokens page";
            let queued =
                state.db(move |c| crate::app::instructors::queue_credential_notice(c, id, what, detail, how, now));
            match queued.await {
                Ok(_) => state.notifier.wake.notify_one(),
                Err(e) => tracing::error!(error = %e, instructor = id, "queueing the credential notice failed"),
            }
            let form = FormState { created: Some(made.secret), ..FormState::default() };
            page(&state, &session, who, form, StatusCode::OK).await
        }
        Err(error) => {
            let form = FormState { created: None, name, expires, error };
            page(&state, &session, who, form, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

/// Checks the signed-in instructor's current password, under the sign-in throttle (a stolen
/// session must not become a way to guess it): `Ok(Err(words))` when it is wrong.
pub async fn confirm_password(
    state: &AppState,
    req: &actix_web::HttpRequest,
    instructor_id: i64,
    password: String,
) -> Result<Result<(), String>, AppError> {
    let me = state
        .db(move |c| crate::db::instructors::find(c, instructor_id))
        .await?
        .ok_or(AppError::NotFound("instructor"))?;
    let ip = state.client_ip(req);
    if let Err(wait) = state.throttle.attempt(&me.email, ip, std::time::Instant::now()) {
        return Err(AppError::TooManyRequests { retry_after: wait });
    }
    if password.is_empty() || !state.verify_password(password, Some(me.password_hash.clone())).await? {
        return Ok(Err("that is not your current password; it is asked again before a token is made".into()));
    }
    state.throttle.succeed(&me.email, ip);
    Ok(Ok(()))
}

#[derive(Deserialize)]
struct Empty {}

async fn revoke(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    let (id, now) = (id.into_inner(), crate::clock::system_now());
    let me = who.instructor_id();
    let t = state.db(move |c| crate::app::tokens::revoke(c, &who.0, me, id, now)).await?;
    tracing::info!(token = t.id, "API token revoked");
    flash(&session, format!("Token \"{}\" revoked; it no longer works.", t.name));
    Ok(redirect("/admin/tokens"))
}
