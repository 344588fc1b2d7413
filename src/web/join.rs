//! The public "Join the course" flow: a learner gives a name, an email and a blog or feed
//! address; Cairn finds and reads the feed, emails a confirmation link, and after
//! confirmation gives the learner a private link to edit or remove the subscription.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{AppState, Page, render, render_status};
use crate::app::subscribe::{self, Joined, Joining, SubscribeError};
use crate::auth::CsrfForm;
use crate::db::feeds::Feed;
use crate::db::now;
use crate::domain::FieldErrors;
use crate::error::AppError;
use crate::harvest::discover::FeedLink;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/join", web::get().to(join_get))
        .route("/join", web::post().to(join_post))
        .route("/join/confirm/{token}", web::get().to(confirm))
        .route("/subscription/{token}", web::get().to(manage_get))
        .route("/subscription/{token}", web::post().to(manage_post))
        .route("/subscription/{token}/remove", web::post().to(manage_remove));
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct JoinForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub url: String,
    /// The feed chosen when a page advertises several.
    #[serde(default)]
    pub feed: String,
    /// The course whose page led here (its slug), for the newsletter option.
    #[serde(default)]
    pub course: String,
    /// "Also subscribe to the course newsletter": present when checked.
    #[serde(default)]
    pub newsletter: Option<String>,
}

#[derive(Template)]
#[template(path = "join.html")]
struct JoinPage {
    page: Page,
    form: JoinForm,
    errors: FieldErrors,
    choices: Vec<FeedLink>,
}

#[derive(Template)]
#[template(path = "join_done.html")]
struct JoinDonePage {
    page: Page,
    heading: String,
    message: String,
    link: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct JoinQuery {
    #[serde(default)]
    course: String,
}

async fn join_get(session: Session, q: web::Query<JoinQuery>) -> Result<HttpResponse, AppError> {
    // The newsletter option starts checked.
    let course = q.into_inner().course.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(200).collect();
    render(&JoinPage {
        page: Page::with_form(&session, "Join the course"),
        form: JoinForm { course, newsletter: Some("on".into()), ..JoinForm::default() },
        errors: FieldErrors::new(),
        choices: vec![],
    })
}

impl JoinForm {
    fn request(&self) -> subscribe::JoinRequest {
        subscribe::JoinRequest {
            name: self.name.clone(),
            email: self.email.clone(),
            url: self.url.clone(),
            feed: self.feed.clone(),
        }
    }
}

impl AppState {
    fn joining(&self) -> Joining<'_> {
        Joining {
            pool: &self.pool,
            harvester: &self.harvester,
            mailer: &self.mailer,
            base_url: &self.base_url,
            mails_per_day: self.join.mails_per_address_per_day,
        }
    }
}

/// The join form again, with what was typed and why it was refused.
fn again(form: JoinForm, errors: FieldErrors, session: &Session) -> Result<HttpResponse, AppError> {
    render_status(
        &JoinPage { page: Page::with_form(session, "Join the course"), form, errors, choices: vec![] },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

/// The discovery pool is full: 503 with Retry-After, the form kept and the reason by its field.
fn busy(form: JoinForm, e: crate::harvest::FeedError, session: &Session) -> Result<HttpResponse, AppError> {
    let mut errors = FieldErrors::new();
    errors.add("url", e.to_string());
    let page = JoinPage { page: Page::with_form(session, "Join the course"), form, errors, choices: vec![] };
    let mut res = render_status(&page, StatusCode::SERVICE_UNAVAILABLE)?;
    res.headers_mut().insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from(30));
    Ok(res)
}

async fn join_post(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<JoinForm>,
) -> Result<HttpResponse, AppError> {
    let join = form.request();
    let person = match subscribe::check_person(&join) {
        Ok(p) => p,
        Err(errors) => return again(form, errors, &session),
    };
    // Per client, before any outbound request; the per-address limit is the use case's.
    let now = now();
    if let Err(wait) = state.join_rate.check(state.client_ip(&req), now) {
        return Err(AppError::Limited {
            message: format!(
                "too many join requests from your address; try again in about {} minute(s)",
                wait.div_ceil(60)
            ),
            retry_after: wait,
        });
    }
    match subscribe::join(&state.joining(), &person, &join, now).await {
        Ok(Joined::Choose { feed_url, choices }) => {
            // Let the learner choose; the first usable feed is preselected.
            let form = JoinForm { feed: feed_url, ..form };
            let errors = FieldErrors::new();
            render(&JoinPage { page: Page::with_form(&session, "Choose your feed"), form, errors, choices })
        }
        Ok(Joined::Pending { feed_title, items }) => {
            let newsletter = if form.newsletter.is_some() && !form.course.is_empty() {
                super::newsletter::also_subscribe(&state, &form.course, &person.email, &person.name, now).await
            } else {
                String::new()
            };
            render(&JoinDonePage {
                page: Page::new(&session, "Check your email"),
                heading: "Check your email".into(),
                message: format!(
                    "We found your feed \u{201c}{}\u{201d} with {} post(s). We sent a confirmation link to {}; your posts are collected once you confirm.{newsletter}",
                    feed_title, items, person.email
                ),
                link: None,
            })
        }
        Err(SubscribeError::Invalid(errors)) => again(form, errors, &session),
        Err(SubscribeError::Busy(e)) => busy(form, e, &session),
        Err(e) => Err(refused(e)),
    }
}

/// A refusal that is not about the form's fields.
fn refused(e: SubscribeError) -> AppError {
    match e {
        SubscribeError::MailLimit { wait, .. } => {
            AppError::Limited { message: e.to_string(), retry_after: wait as u64 }
        }
        SubscribeError::Invalid(errors) => AppError::Invalid(errors),
        SubscribeError::Busy(e) => AppError::Busy(e.to_string()),
        SubscribeError::Mail(_) => AppError::Internal(anyhow::Error::new(e)),
        SubscribeError::Store(e) => e.into(),
    }
}

async fn confirm(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (token, now) = (token.into_inner(), now());
    match state.db(move |c| subscribe::confirm(c, &token, now)).await? {
        Some(feed) => render(&JoinDonePage {
            page: Page::new(&session, "Subscribed"),
            heading: "You are subscribed".into(),
            message: format!(
                "Cairn now follows {}. Tag your posts with a task's hashtag and they will be found.",
                feed.url
            ),
            link: None,
        }),
        None => Err(AppError::NotFound("confirmation link (it may have been used already)")),
    }
}

#[derive(Template)]
#[template(path = "subscription.html")]
struct ManagePage {
    page: Page,
    token: String,
    feed: Feed,
    form: JoinForm,
    errors: FieldErrors,
    badges: Vec<(crate::db::awards::Award, crate::db::courses::Task)>,
}

/// The learner's badges, for their private page.
async fn badges_of(
    state: &AppState,
    author: &crate::db::feeds::Author,
) -> Result<Vec<(crate::db::awards::Award, crate::db::courses::Task)>, AppError> {
    let (id, email) = (author.id, author.email.clone());
    state.db(move |c| crate::db::awards::for_learner(c, id, email.as_deref())).await
}

async fn load_managed(state: &AppState, token: &str) -> Result<(Feed, crate::db::feeds::Author), AppError> {
    let token = token.to_string();
    state.db(move |c| subscribe::managed(c, &token)).await
}

async fn manage_get(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (feed, author) = load_managed(&state, &token).await?;
    let badges = badges_of(&state, &author).await?;
    let form = JoinForm {
        name: author.name,
        email: author.email.unwrap_or_default(),
        url: feed.url.clone(),
        ..JoinForm::default()
    };
    render(&ManagePage {
        page: Page::with_form(&session, "Your subscription"),
        token: token.into_inner(),
        feed,
        form,
        errors: FieldErrors::new(),
        badges,
    })
}

async fn manage_post(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
    CsrfForm(form): CsrfForm<JoinForm>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let (feed, author) = load_managed(&state, &token).await?;
    let errors = match subscribe::change(&state.joining(), &feed, &author, &form.name, &form.url, now()).await {
        Ok(()) => {
            crate::auth::flash(&session, "Your subscription was updated.");
            return Ok(super::redirect(&format!("/subscription/{token}")));
        }
        Err(SubscribeError::Invalid(errors)) => errors,
        Err(e) => return Err(refused(e)),
    };
    let badges = badges_of(&state, &author).await?;
    render_status(
        &ManagePage { page: Page::with_form(&session, "Your subscription"), token, feed, form, errors, badges },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

async fn manage_remove(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let (feed, _) = load_managed(&state, &token).await?;
    let id = feed.id;
    let now = now();
    state.db(move |c| subscribe::remove(c, id, now)).await?;
    render(&JoinDonePage {
        page: Page::new(&session, "Subscription removed"),
        heading: "Your subscription is removed".into(),
        message: format!("Cairn no longer follows {}. Posts already collected stay with the course.", feed.url),
        link: Some("/join".into()),
    })
}
