//! The public "Join the course" flow: a learner gives a name, an email and a blog or feed
//! address; Cairn finds and reads the feed, emails a confirmation link, and after
//! confirmation gives the learner a private link to edit or remove the subscription.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{AppState, Page, render, render_status};
use crate::auth::{CsrfForm, random_token, token_hash};
use crate::db::feeds::{self, Feed, NewFeed, status};
use crate::domain::{Email, FieldErrors};
use crate::email;
use crate::error::AppError;
use crate::harvest::{self, discover::FeedLink};

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

async fn join_get(session: Session) -> Result<HttpResponse, AppError> {
    render(&JoinPage {
        page: Page::with_form(&session, "Join the course"),
        form: JoinForm::default(),
        errors: FieldErrors::new(),
        choices: vec![],
    })
}

/// Adds `https://` to an address typed without a scheme.
pub fn normalise_address(raw: &str) -> String {
    let t = raw.trim();
    if t.contains("://") { t.to_string() } else { format!("https://{t}") }
}

fn check_person(form: &JoinForm, errors: &mut FieldErrors) -> Option<(String, Email)> {
    let name = form.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add("name", "please give your name (at most 100 characters)");
    }
    let email = errors.check("email", Email::parse(&form.email));
    if form.url.trim().is_empty() {
        errors.add("url", "please give the address of your blog or its feed");
    }
    match email {
        Some(e) if errors.is_empty() => Some((name, e)),
        _ => None,
    }
}

/// Refuses a join past the per-client or per-address limits, before any outbound request.
async fn check_join_limits(state: &AppState, req: &HttpRequest, email: &Email) -> Result<(), AppError> {
    let now = crate::db::now();
    if let Err(wait) = state.join_rate.check(state.client_ip(req), now) {
        return Err(AppError::Limited {
            message: format!(
                "too many join requests from your address; try again in about {} minute(s)",
                wait.div_ceil(60)
            ),
            retry_after: wait,
        });
    }
    let (addr, limit) = (email.to_string(), state.join.mails_per_address_per_day);
    match state.db(move |c| feeds::join_mail_wait(c, &addr, limit, now)).await? {
        Some(wait) => Err(mail_limit(limit, wait)),
        None => Ok(()),
    }
}

fn mail_limit(limit: u32, wait: i64) -> AppError {
    AppError::Limited {
        message: format!(
            "Cairn has already sent {limit} confirmation email(s) to this address today; check your inbox \
             (and spam folder), or try again in about {} hour(s)",
            (wait as u64).div_ceil(3600)
        ),
        retry_after: wait as u64,
    }
}

/// Why a join for an address that is already subscribed is refused.
enum Taken {
    Mine(&'static str),
    Other(String),
    MailLimit(i64),
}

/// The discovery pool is full: 503 with Retry-After, the form kept and the reason by its field.
fn busy(form: JoinForm, e: harvest::FeedError, session: &Session) -> Result<HttpResponse, AppError> {
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
    let mut errors = FieldErrors::new();
    let again = |form: JoinForm, errors: FieldErrors, choices: Vec<FeedLink>, session: &Session| {
        render_status(
            &JoinPage { page: Page::with_form(session, "Join the course"), form, errors, choices },
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let Some((name, email)) = check_person(&form, &mut errors) else {
        return again(form, errors, vec![], &session);
    };
    check_join_limits(&state, &req, &email).await?;
    let target = if form.feed.trim().is_empty() { normalise_address(&form.url) } else { form.feed.trim().to_string() };
    let resolved = match state.harvester.resolve_untrusted(&target).await {
        Ok(r) => r,
        Err(e @ harvest::FeedError::Busy(_)) => return busy(form, e, &session),
        Err(e) => {
            errors.add("url", e.to_string());
            return again(form, errors, vec![], &session);
        }
    };
    let choices: Vec<FeedLink> = resolved.alternatives.iter().filter(|f| !f.comments).cloned().collect();
    if choices.len() > 1 && form.feed.trim().is_empty() {
        // Let the learner choose; the first usable feed is preselected.
        let mut form = form;
        form.feed = resolved.feed_url.clone();
        return render(&JoinPage { page: Page::with_form(&session, "Choose your feed"), form, errors, choices });
    }
    let confirm_token = random_token();
    let manage_token = random_token();
    let (ch, mh) = (token_hash(&confirm_token), token_hash(&manage_token));
    let feed_url = resolved.feed_url.clone();
    let title = resolved.feed.title.clone();
    let site = resolved.feed.site_url.clone();
    let email_addr = email.to_string();
    let mail_limit_n = state.join.mails_per_address_per_day;
    let created = state
        .db(move |c| {
            let now = crate::db::now();
            feeds::purge_unconfirmed(c, now)?;
            crate::db::write_tx(c, |c| {
                let existing = feeds::find_by_url(c, &feed_url)?;
                let author = feeds::author_by_email(c, &email_addr)?;
                let mine = |f: &Feed| author.as_ref().is_some_and(|a| a.id == f.author_id);
                if let Some(f) = existing.as_ref() {
                    let refusal = match f.status.as_str() {
                        status::REMOVED if mine(f) => None,
                        status::PENDING if mine(f) => Some(Taken::Mine(
                            "this feed is waiting for your confirmation: use the link in the email Cairn sent you",
                        )),
                        status::PENDING => Some(Taken::Other(format!(
                            "{feed_url} is waiting for another learner's confirmation; if it is yours, contact the course's instructor"
                        ))),
                        _ if mine(f) => Some(Taken::Mine(
                            "you are already subscribed with this feed; the private link in your confirmation email lets you change it",
                        )),
                        _ => Some(Taken::Other(format!(
                            "{feed_url} is already followed for another learner; if it is yours, contact the course's instructor"
                        ))),
                    };
                    if let Some(r) = refusal {
                        return Ok(Err(r));
                    }
                }
                if let Err(wait) = feeds::reserve_join_mail(c, &email_addr, mail_limit_n, now)? {
                    return Ok(Err(Taken::MailLimit(wait)));
                }
                // An existing learner keeps their name until they confirm.
                let author = match author {
                    Some(a) => a,
                    None => feeds::find_or_create_author(c, &name, Some(&email_addr))?,
                };
                let feed = match existing {
                    // A subscription its owner removed may be taken up again (its Links are kept).
                    Some(removed) => feeds::resubscribe(c, removed.id, author.id, &ch, &mh)?,
                    None => feeds::create_feed(
                        c,
                        NewFeed {
                            author_id: author.id,
                            url: &feed_url,
                            title: &title,
                            site_url: site.as_deref(),
                            status: status::PENDING,
                            confirm_token_hash: Some(&ch),
                            manage_token_hash: Some(&mh),
                        },
                    )?,
                };
                if author.name != name {
                    feeds::set_pending_name(c, feed.id, &name)?;
                }
                Ok(Ok(feed))
            })
        })
        .await;
    let feed = match created {
        Ok(Ok(f)) => f,
        Ok(Err(Taken::MailLimit(wait))) => return Err(mail_limit(mail_limit_n, wait)),
        Ok(Err(Taken::Mine(m))) => {
            errors.add("url", m);
            return again(form, errors, vec![], &session);
        }
        Ok(Err(Taken::Other(m))) => {
            errors.add("url", m);
            return again(form, errors, vec![], &session);
        }
        Err(AppError::Invalid(e)) => return again(form, e, vec![], &session),
        Err(e) => return Err(e),
    };
    let confirm_url = format!("{}/join/confirm/{confirm_token}", state.base_url);
    let manage_url = format!("{}/subscription/{manage_token}", state.base_url);
    // Everything here is Cairn's own words but the (bounded) name: the form must not let
    // anyone send their text to an address of their choosing.
    let greeting: String = form.name.trim().chars().filter(|c| !c.is_control()).collect();
    let text = format!(
        "Hello {greeting},\n\nSomeone, probably you, asked {base} to collect the posts of a blog for its courses \
         and gave this email address.\n\nConfirm here (the link works for 48 hours):\n{confirm_url}\n\n\
         Keep this private link to change or remove your subscription later:\n{manage_url}\n\n\
         If you did not ask for this, ignore this message and nothing will happen.\n",
        base = state.base_url,
    );
    if let Err(e) = state
        .mailer
        .send(email::Email {
            to: email.to_string(),
            subject: "Confirm your course feed".into(),
            text,
            html: None,
            attachments: vec![],
        })
        .await
    {
        tracing::error!(error = %e, feed = feed.id, "confirmation email failed");
        return Err(AppError::Internal(anyhow::anyhow!("the confirmation email could not be sent: {e}")));
    }
    tracing::info!(feed = feed.id, "subscription awaiting confirmation");
    render(&JoinDonePage {
        page: Page::new(&session, "Check your email"),
        heading: "Check your email".into(),
        message: format!(
            "We found your feed \u{201c}{}\u{201d} with {} post(s). We sent a confirmation link to {}; your posts are collected once you confirm.",
            resolved.feed.title,
            resolved.feed.items.len(),
            email
        ),
        link: None,
    })
}

async fn confirm(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let hash = token_hash(&token);
    match state.db(move |c| feeds::confirm(c, &hash)).await? {
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
    let hash = token_hash(token);
    state.db(move |c| feeds::by_manage_token(c, &hash)).await?.ok_or(AppError::NotFound("subscription"))
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
        feed: String::new(),
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
    let mut errors = FieldErrors::new();
    let name = form.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add("name", "please give your name (at most 100 characters)");
    }
    let mut new_url = None;
    if errors.is_empty() && normalise_address(&form.url) != feed.url {
        match state.harvester.resolve_untrusted(&normalise_address(&form.url)).await {
            Ok(r) => new_url = Some(r.feed_url),
            Err(e) => errors.add("url", e.to_string()),
        }
    }
    if errors.is_empty() {
        let (fid, aid) = (feed.id, author.id);
        let r = state
            .db(move |c| {
                feeds::set_author_name(c, aid, &name)?;
                if let Some(u) = new_url {
                    feeds::set_url(c, fid, &u)?;
                }
                Ok(())
            })
            .await;
        match r {
            Ok(()) => {
                crate::auth::flash(&session, "Your subscription was updated.");
                return Ok(super::redirect(&format!("/subscription/{token}")));
            }
            Err(AppError::Invalid(e)) => errors = e,
            Err(e) => return Err(e),
        }
    }
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
    state.db(move |c| feeds::set_status(c, id, status::REMOVED)).await?;
    render(&JoinDonePage {
        page: Page::new(&session, "Subscription removed"),
        heading: "Your subscription is removed".into(),
        message: format!("Cairn no longer follows {}. Posts already collected stay with the course.", feed.url),
        link: Some("/join".into()),
    })
}
