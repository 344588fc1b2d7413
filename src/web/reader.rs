//! The instructor's Reader: read harvested posts, award a Task's badge in one click (or in
//! bulk), tie, dismiss, star, revoke; and each learner's award history. Every action is a
//! POST with a CSRF token; with JavaScript the page updates in place.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{AppState, Page, redirect, render, safe_back};
use crate::app::award::{self, BatchEntry, BatchOptions, LinkAward};
use crate::db::awards::{self, Award};
use crate::db::courses::{self, Course, Module, Task};
use crate::db::feeds::{self, Author, Feed};
use crate::db::reader::{self, Entry, Filter, LinkFlag};
use crate::db::{StoreError, now};
use crate::web::auth::{CsrfForm, SignedIn, flash};
use crate::web::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/reader", web::get().to(reader_page))
        .route("/admin/reader/award", web::post().to(award_one))
        .route("/admin/reader/bulk", web::post().to(award_bulk))
        .route("/admin/reader/flag", web::post().to(set_flag))
        .route("/admin/awards/{id}/revoke", web::post().to(revoke))
        .route("/admin/learners/{id}", web::get().to(learner_page));
}

/// One Reader entry, rendered alone (also sent back to the page after an action).
#[derive(Template)]
#[template(path = "admin/reader_card.html")]
pub struct Card<'a> {
    pub e: &'a Entry,
    pub csrf: &'a str,
    pub back: &'a str,
    pub all_tasks: &'a [Task],
    pub chain: &'a std::collections::HashMap<i64, crate::ledger::ChainStatus>,
    pub notes: &'a [crate::notify::Notification],
    /// The time the card is drawn at, for "3 h ago".
    pub now: i64,
}

impl Card<'_> {
    fn notes_of(&self, award_id: &i64) -> String {
        let parts: Vec<String> =
            self.notes.iter().filter(|n| n.award_id == Some(*award_id)).map(|n| n.describe()).collect();
        if parts.is_empty() { "none".into() } else { parts.join("; ") }
    }

    fn chain_of(&self, award_id: &i64) -> String {
        self.chain.get(award_id).map_or_else(|| "not on the chain".to_string(), |c| c.describe())
    }

    fn award_for(&self, task_id: &i64) -> Option<&Award> {
        self.e.award_for(*task_id)
    }
}

#[derive(Template)]
#[template(path = "admin/reader.html")]
struct ReaderPage {
    page: Page,
    cards: Vec<String>,
    filter: Filter,
    courses: Vec<Course>,
    modules: Vec<Module>,
    tasks: Vec<Task>,
    feeds: Vec<(Feed, Author)>,
    next_url: Option<String>,
    first_url: Option<String>,
    back: String,
}

impl ReaderPage {
    fn sel(&self, current: &Option<i64>, id: &i64) -> bool {
        *current == Some(*id)
    }
    fn statuses(&self) -> &'static [&'static str] {
        reader::Status::WORDS
    }
    fn status_is(&self, s: &str) -> bool {
        self.filter.status.map(reader::Status::as_str) == Some(s)
    }
}

fn filter_query(f: &Filter) -> String {
    serde_urlencoded::to_string(f).unwrap_or_default()
}

async fn reader_page(
    _: SignedIn,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    // Empty fields from the filter form mean "any".
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let filter: Filter = serde_urlencoded::from_str(&serde_urlencoded::to_string(&pairs).unwrap_or_default())
        .map_err(|e| AppError::BadRequest(format!("bad filter: {e}")))?;
    let f = filter.clone();
    let (page_data, courses, modules, tasks, feeds) = state
        .db(move |c| {
            Ok((
                reader::page(c, &f, reader::PAGE)?,
                courses::list_courses(c)?,
                courses::list_modules(c)?,
                courses::list_tasks(c)?,
                feeds::list_feeds(c)?,
            ))
        })
        .await?;
    let award_ids: Vec<i64> = page_data.entries.iter().flat_map(|e| e.awards.iter().map(|a| a.id)).collect();
    let ledger = state.ledger.clone();
    let (chain, notes) =
        state.db(move |c| Ok((ledger.statuses(c, &award_ids)?, crate::notify::for_awards(c, &award_ids)?))).await?;
    let page = Page::new(&session, "Reader");
    let back = format!("/admin/reader?{}", req.query_string());
    let now = now();
    let cards = page_data
        .entries
        .iter()
        .map(|e| {
            Card { e, csrf: &page.csrf, back: &back, all_tasks: &tasks, chain: &chain, notes: &notes, now }
                .render()
                .map_err(|e| AppError::Internal(e.into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let next_url = page_data
        .next
        .map(|n| format!("/admin/reader?{}", filter_query(&Filter { before: Some(n), ..filter.clone() })));
    let first_url =
        filter.before.map(|_| format!("/admin/reader?{}", filter_query(&Filter { before: None, ..filter.clone() })));
    render(&ReaderPage { page, cards, filter, courses, modules, tasks, feeds, next_url, first_url, back })
}

fn wants_json(req: &HttpRequest) -> bool {
    crate::web::error::negotiate(req, crate::web::error::Format::Html) == crate::web::error::Format::Json
}

/// After an action: JSON with the re-rendered card for scripts, else a redirect back.
async fn done(
    req: &HttpRequest,
    session: &Session,
    state: &AppState,
    link_id: i64,
    message: String,
    back: &str,
) -> Result<HttpResponse, AppError> {
    if wants_json(req) {
        let ledger = state.ledger.clone();
        let (entry, tasks, chain, notes) = state
            .db(move |c| {
                let entry = reader::entry(c, link_id)?;
                let ids: Vec<i64> = entry.iter().flat_map(|e| e.awards.iter().map(|a| a.id)).collect();
                Ok((entry, courses::list_tasks(c)?, ledger.statuses(c, &ids)?, crate::notify::for_awards(c, &ids)?))
            })
            .await?;
        let csrf = crate::web::auth::csrf_token(session);
        let card = match &entry {
            Some(e) => Card { e, csrf: &csrf, back, all_tasks: &tasks, chain: &chain, notes: &notes, now: now() }
                .render()
                .map_err(|e| AppError::Internal(e.into()))?,
            None => String::new(),
        };
        return Ok(HttpResponse::Ok().json(serde_json::json!({"message": message, "card": card, "link_id": link_id})));
    }
    flash(session, message);
    Ok(redirect(&safe_back(back, "/admin/reader")))
}

#[derive(Deserialize)]
struct AwardForm {
    link_id: i64,
    task_id: i64,
    #[serde(default)]
    narrative: String,
    /// The confirmation that a post posted elsewhere than on the learner's site is theirs.
    #[serde(default)]
    allow_foreign_evidence: Option<String>,
    #[serde(default)]
    back: String,
}

async fn award_one(
    who: SignedIn,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<AwardForm>,
) -> Result<HttpResponse, AppError> {
    let (link, task) = (form.link_id, form.task_id);
    let request = LinkAward {
        link_id: link,
        task_id: task,
        narrative: Some(form.narrative.clone()),
        by: Some(who.instructor_id),
        allow_foreign_evidence: form.allow_foreign_evidence.as_deref().is_some_and(|v| !v.is_empty() && v != "0"),
    };
    let (st, now) = (state.clone(), now());
    let a = state.db(move |c| award::award_post(c, &st.issuer(), &request, now)).await?;
    tracing::info!(award = %a.public_id, link, task, "badge awarded");
    state.awarded();
    let msg = format!("Badge awarded: {}", crate::badges::ob::assertion_url(&state.base_url, &a.public_id));
    done(&req, &session, &state, form.link_id, msg, &form.back).await
}

async fn award_bulk(
    who: SignedIn,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    // Checkboxes repeat the `link_id` key, which a struct cannot hold: read the pairs.
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone()).unwrap_or_default();
    crate::web::auth::verify_csrf(&session, &get("csrf_token"))?;
    let link_ids: Vec<i64> = pairs.iter().filter(|(k, _)| k == "link_id").filter_map(|(_, v)| v.parse().ok()).collect();
    if link_ids.is_empty() {
        return Err(AppError::BadRequest("select at least one post".into()));
    }
    let task_id = get("task_id").parse().ok();
    let entries: Vec<BatchEntry> = link_ids.iter().map(|&link_id| BatchEntry::Post { link_id, task_id }).collect();
    let opts = BatchOptions { narrative: Some(get("narrative")), by: Some(who.instructor_id) };
    let (st, now) = (state.clone(), now());
    let outcome = state.db(move |c| award::award_batch(&st.pool, c, &st.issuer(), &entries, &opts, now)).await?;
    state.awarded();
    let awarded = outcome.iter().filter(|o| o.is_ok()).count();
    let refused: Vec<String> = link_ids
        .iter()
        .zip(&outcome)
        .filter_map(|(link, o)| o.as_ref().err().map(|e| format!("post {link}: {}", award::refusal_text(e))))
        .collect();
    let mut msg = format!("Awarded {awarded} badge(s).");
    if !refused.is_empty() {
        msg.push_str(&format!(" Not awarded: {}", refused.join("; ")));
    }
    let back = get("back");
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(serde_json::json!({"message": msg})));
    }
    flash(&session, msg);
    Ok(redirect(&safe_back(&back, "/admin/reader")))
}

#[derive(Deserialize)]
struct FlagForm {
    link_id: i64,
    flag: String,
    on: String,
    #[serde(default)]
    back: String,
}

async fn set_flag(
    _: SignedIn,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<FlagForm>,
) -> Result<HttpResponse, AppError> {
    let flag = LinkFlag::parse(&form.flag)
        .ok_or_else(|| StoreError::field("flag", format!("unknown flag '{}'", form.flag)))?;
    let (link, on) = (form.link_id, form.on == "1");
    state.db(move |c| reader::set_flag(c, link, flag, on)).await?;
    let msg = match (flag, on) {
        (LinkFlag::Dismissed, true) => "Post dismissed.",
        (LinkFlag::Dismissed, false) => "Post restored.",
        (LinkFlag::Starred, true) => "Post starred.",
        (LinkFlag::Starred, false) => "Star removed.",
    };
    done(&req, &session, &state, form.link_id, msg.into(), &form.back).await
}

#[derive(Deserialize)]
struct RevokeForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

async fn revoke(
    _: SignedIn,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<RevokeForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let reason = form.reason.clone();
    let (st, now) = (state.clone(), now());
    let a = state.db(move |c| award::revoke(c, &st.issuer(), &id, &reason, now)).await?;
    state.awarded();
    tracing::info!(award = %a.public_id, "badge revoked");
    let msg = "Badge revoked; its verification page now says so.".to_string();
    match a.link_id {
        Some(link) => done(&req, &session, &state, link, msg, &form.back).await,
        None => {
            flash(&session, msg);
            Ok(redirect(&safe_back(&form.back, "/admin/reader")))
        }
    }
}

#[derive(Template)]
#[template(path = "admin/learner.html")]
struct LearnerPage {
    page: Page,
    author: Author,
    awards: Vec<(Award, Task)>,
}

impl LearnerPage {
    fn day(&self, t: &i64) -> String {
        chrono::DateTime::from_timestamp(*t, 0).unwrap_or_default().format("%Y-%m-%d").to_string()
    }
}

async fn learner_page(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    let (author, awards) = state
        .db(move |c| {
            let a = feeds::get_author(c, id)?;
            let list = awards::for_learner(c, a.id, a.email.as_deref())?;
            Ok((a, list))
        })
        .await?;
    render(&LearnerPage { page: Page::new(&session, format!("{} — awards", author.name)), author, awards })
}
