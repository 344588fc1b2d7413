//! The instructor's Reader: read harvested posts, award a Task's badge in one click (or in
//! bulk), tie, dismiss, star, revoke; and each learner's award history. Every action is a
//! POST with a CSRF token; with JavaScript the page updates in place.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{AppState, Page, redirect, render, safe_back};
use crate::app::award::{self, BatchEntry, BatchOptions, LinkAward};
use crate::app::reader::{AwardDoubt, TaskChoices, TieGroup};
use crate::clock::system_now as now;
use crate::db::StoreError;
use crate::db::awards::Award;
use crate::db::courses::{self, Course, Module, Task};
use crate::db::feeds::{self, Author, Feed};
use crate::db::reader::{self, Entry, Filter, LinkFlag};
use crate::web::auth::{Acting, CsrfForm, flash};
use crate::web::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/reader", web::get().to(reader_page))
        .route("/admin/reader/award", web::post().to(award_one))
        .route("/admin/reader/bulk", web::post().to(award_bulk))
        .route("/admin/reader/flag", web::post().to(set_flag))
        .route("/admin/awards/{id}/revoke", web::post().to(revoke));
}

/// One Reader entry, rendered alone (also sent back to the page after an action).
#[derive(Template)]
#[template(path = "admin/reader_card.html")]
pub struct Card<'a> {
    pub e: &'a Entry,
    pub csrf: &'a str,
    pub back: &'a str,
    /// The Tasks by course, for the Tie select.
    pub choices: &'a TaskChoices,
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

    fn tie_groups(&self) -> Vec<TieGroup> {
        self.choices.tie_groups(&self.e.tasks, self.e.author_id)
    }

    fn has_default(&self, groups: &[TieGroup]) -> bool {
        TaskChoices::has_default(groups)
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
    /// The feed of the `feed` filter and its learner, when one is given.
    feed: Option<(Feed, Author)>,
    /// The learner of the `author` filter, when one is given.
    author: Option<Author>,
    /// Posts matching, and the positions of the first and last shown.
    total: i64,
    span: (i64, i64),
    next_url: Option<String>,
    first_url: Option<String>,
    back: String,
    choices: TaskChoices,
}

impl ReaderPage {
    /// The bulk award's task choices, grouped by course, none preselected.
    fn bulk_groups(&self) -> Vec<TieGroup> {
        self.choices.tie_groups(&[], 0)
    }

    fn sel(&self, current: &Option<i64>, id: &i64) -> bool {
        *current == Some(*id)
    }
    fn statuses(&self) -> &'static [&'static str] {
        reader::Status::WORDS
    }
    fn status_is(&self, s: &str) -> bool {
        self.filter.status.map(reader::Status::as_str) == Some(s)
    }
    fn text_of(&self, v: &Option<String>) -> String {
        v.clone().unwrap_or_default()
    }
}

fn filter_query(f: &Filter) -> String {
    serde_urlencoded::to_string(f).unwrap_or_default()
}

async fn reader_page(
    who: Acting,
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
    let mut filter = filter;
    filter.q = filter.q.map(|q| q.chars().take(crate::db::listing::MAX_SEARCH).collect());
    filter.learner = filter.learner.map(|q| q.chars().take(crate::db::listing::MAX_SEARCH).collect());
    filter.within = crate::app::reader::scope(&who.0);
    let f = filter.clone();
    let (page_data, (courses, modules, tasks), feed, author, choices) = state
        .db(move |c| {
            let page = reader::page(c, &f, reader::PAGE)?;
            let learners: Vec<i64> = page.entries.iter().map(|e| e.author_id).collect();
            let choices = TaskChoices::load(c, &learners, f.within.as_deref())?;
            let feed = match f.feed {
                Some(id) => match feeds::get_feed(c, id) {
                    Ok(feed) => {
                        let a = feeds::get_author(c, feed.author_id)?;
                        Some((feed, a))
                    }
                    Err(StoreError::NotFound(_)) => None,
                    Err(e) => return Err(e),
                },
                None => None,
            };
            let author = match f.author {
                Some(id) => match feeds::get_author(c, id) {
                    Ok(a) => Some(a),
                    Err(StoreError::NotFound(_)) => None,
                    Err(e) => return Err(e),
                },
                None => None,
            };
            Ok((page, crate::app::reader::filter_choices(c, &who.0)?, feed, author, choices))
        })
        .await?;
    let award_ids: Vec<i64> = page_data.entries.iter().flat_map(|e| e.awards.iter().map(|a| a.id)).collect();
    let ledger = state.ledger.clone();
    let (chain, notes) =
        state.db(move |c| Ok((ledger.statuses(c, &award_ids)?, crate::notify::for_awards(c, &award_ids)?))).await?;
    let page = Page::new(&session, "Reader").ask_for_profile(&state.db(crate::app::institution::missing).await?);
    let back = format!("/admin/reader?{}", req.query_string());
    let now = now();
    let cards = page_data
        .entries
        .iter()
        .map(|e| {
            Card { e, csrf: &page.csrf, back: &back, choices: &choices, chain: &chain, notes: &notes, now }
                .render()
                .map_err(|e| AppError::Internal(e.into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let next_url = page_data
        .next
        .map(|n| format!("/admin/reader?{}", filter_query(&Filter { before: Some(n), ..filter.clone() })));
    let first_url =
        filter.before.map(|_| format!("/admin/reader?{}", filter_query(&Filter { before: None, ..filter.clone() })));
    render(&ReaderPage {
        page,
        cards,
        filter,
        courses,
        modules,
        tasks,
        feed,
        author,
        total: page_data.total,
        span: page_data.span(),
        next_url,
        first_url,
        back,
        choices,
    })
}

pub(crate) fn wants_json(req: &HttpRequest) -> bool {
    crate::web::error::negotiate(req, crate::web::error::Format::Html) == crate::web::error::Format::Json
}

/// What an action says it did: `message` in the JSON answer, `flash` (when given) in the
/// redirect's flash instead. A flash is kept in the session store until shown, so it names no
/// learner: forgetting a learner must not leave their name in a session row.
pub(crate) struct Said {
    pub message: String,
    pub flash: Option<String>,
}

impl From<String> for Said {
    fn from(message: String) -> Said {
        Said { message, flash: None }
    }
}

/// After an action on a post: JSON with what happened and the re-rendered card for scripts,
/// else the message flashed and a redirect back.
pub(crate) async fn done(
    req: &HttpRequest,
    session: &Session,
    state: &AppState,
    actor: &crate::app::access::Actor,
    link_id: i64,
    said: Said,
    back: &str,
) -> Result<HttpResponse, AppError> {
    let Said { message, flash: flashed } = said;
    if wants_json(req) {
        let ledger = state.ledger.clone();
        let within = crate::app::reader::scope(actor);
        let (entry, choices, chain, notes) = state
            .db(move |c| {
                let entry = reader::entry(c, link_id)?;
                let ids: Vec<i64> = entry.iter().flat_map(|e| e.awards.iter().map(|a| a.id)).collect();
                let learners: Vec<i64> = entry.iter().map(|e| e.author_id).collect();
                Ok((
                    entry,
                    TaskChoices::load(c, &learners, within.as_deref())?,
                    ledger.statuses(c, &ids)?,
                    crate::notify::for_awards(c, &ids)?,
                ))
            })
            .await?;
        let csrf = crate::web::auth::csrf_token(session);
        let card = match &entry {
            Some(e) => Card { e, csrf: &csrf, back, choices: &choices, chain: &chain, notes: &notes, now: now() }
                .render()
                .map_err(|e| AppError::Internal(e.into()))?,
            None => String::new(),
        };
        return Ok(HttpResponse::Ok()
            .json(serde_json::json!({"ok": true, "message": message, "card": card, "link_id": link_id})));
    }
    flash(session, flashed.unwrap_or(message));
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
    /// "1": the instructor confirmed an award of a Task the post is not tied to.
    #[serde(default)]
    confirm: Option<String>,
    #[serde(default)]
    back: String,
}

fn is_yes(v: Option<&str>) -> bool {
    v.is_some_and(|v| !v.is_empty() && v != "0")
}

/// The page that asks to confirm unusual awards before making them; it posts the same form
/// again with `confirm=1`.
#[derive(Template)]
#[template(path = "admin/reader_confirm.html")]
struct ConfirmPage {
    page: Page,
    doubts: Vec<AwardDoubt>,
    action: &'static str,
    fields: Vec<(String, String)>,
    back: String,
}

/// Asks to confirm the awards of `doubts`: JSON naming each post, learner, badge and why for
/// scripts (which ask and post again with `confirm=1`), else a page with the form to confirm.
fn ask_to_confirm(
    req: &HttpRequest,
    session: &Session,
    doubts: Vec<AwardDoubt>,
    action: &'static str,
    pairs: &[(String, String)],
    back: &str,
) -> Result<HttpResponse, AppError> {
    let lines: Vec<String> = doubts
        .iter()
        .map(|d| format!("{} to {} for \u{201c}{}\u{201d}: {}", d.badge, d.learner, post_title(&d.post), d.why))
        .collect();
    let message = format!("Confirm before awarding — {}", lines.join(" "));
    if wants_json(req) {
        return Ok(HttpResponse::Ok().json(serde_json::json!({
            "ok": false,
            "needs_confirmation": true,
            "message": message,
            "awards": doubts,
        })));
    }
    let fields = pairs.iter().filter(|(k, _)| k != "csrf_token" && k != "confirm").cloned().collect();
    let back = safe_back(back, "/admin/reader");
    render(&ConfirmPage { page: Page::new(session, "Confirm the award"), doubts, action, fields, back })
}

impl ConfirmPage {
    fn title<'s>(&self, t: &'s str) -> &'s str {
        post_title(t)
    }
}

fn post_title(t: &str) -> &str {
    if t.trim().is_empty() { "an untitled post" } else { t }
}

async fn award_one(
    who: Acting,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let token = pairs.iter().find(|(k, _)| k == "csrf_token").map(|(_, v)| v.as_str()).unwrap_or_default();
    crate::web::auth::verify_csrf(&session, token)?;
    let form: AwardForm = serde_urlencoded::from_bytes(&body)
        .map_err(|e| AppError::BadRequest(format!("the form could not be read: {e}")))?;
    let (link, task) = (form.link_id, form.task_id);
    if !is_yes(form.confirm.as_deref())
        && let Some(doubt) = {
            let actor = who.0.clone();
            state
                .db(move |c| {
                    // Nothing is said of a post to whoever may not award its badge.
                    actor.require_task(c, task, crate::app::access::Role::Reviewer, "award this task's badge")?;
                    crate::app::reader::award_doubt(c, link, task)
                })
                .await?
        }
    {
        return ask_to_confirm(&req, &session, vec![doubt], "/admin/reader/award", &pairs, &form.back);
    }
    let request = LinkAward {
        link_id: link,
        task_id: task,
        narrative: Some(form.narrative.clone()),
        by: Some(who.instructor_id()),
        allow_foreign_evidence: is_yes(form.allow_foreign_evidence.as_deref()),
        actor: Some(who.0.clone()),
    };
    let (st, now) = (state.clone(), now());
    let (a, t, learner) = state
        .db(move |c| {
            let a = award::award_post(c, &st.issuer(), &request, now)?;
            let t = courses::get_task(c, a.task_id)?;
            let learner = crate::db::links::poster(c, link)?.2;
            Ok((a, t, learner))
        })
        .await?;
    tracing::info!(award = %a.public_id, link, task, "badge awarded");
    state.awarded();
    let url = crate::badges::ob::assertion_url(&state.base_url, &a.public_id);
    let said = Said {
        message: format!("Badge {} awarded to {learner}: {url}", t.hashtag),
        flash: Some(format!("Badge {} awarded: {url}", t.hashtag)),
    };
    done(&req, &session, &state, &who.0, form.link_id, said, &form.back).await
}

/// One line of a bulk award's results.
#[derive(Debug, serde::Serialize)]
struct BulkResult {
    link_id: i64,
    post: String,
    learner: String,
    /// The learner's page in the Reader's admin.
    learner_url: String,
    badge: Option<String>,
    /// The assertion's URL, when awarded.
    assertion_url: Option<String>,
    /// Why it was not awarded.
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/reader_bulk.html")]
struct BulkPage {
    page: Page,
    summary: String,
    results: Vec<BulkResult>,
    back: String,
}

async fn award_bulk(
    who: Acting,
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
    let task_id: Option<i64> = get("task_id").parse().ok();
    let back = get("back");
    // A Task chosen for all: posts not tied to it are confirmed first.
    if let Some(task) = task_id
        && !is_yes(Some(&get("confirm")))
    {
        let ids = link_ids.clone();
        let doubts = state
            .db(move |c| {
                let mut out = Vec::new();
                for link in ids {
                    match crate::app::reader::award_doubt(c, link, task) {
                        Ok(doubt) => out.extend(doubt),
                        // A post gone meanwhile: the batch lists it as not awarded.
                        Err(StoreError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(out)
            })
            .await?;
        if !doubts.is_empty() {
            return ask_to_confirm(&req, &session, doubts, "/admin/reader/bulk", &pairs, &back);
        }
    }
    let entries: Vec<BatchEntry> = link_ids.iter().map(|&link_id| BatchEntry::Post { link_id, task_id }).collect();
    let opts = BatchOptions { narrative: Some(get("narrative")), by: Some(who.instructor_id()), actor: Some(who.0) };
    let (st, now) = (state.clone(), now());
    let ids = link_ids.clone();
    let (outcome, posters, chosen) = state
        .db(move |c| {
            let outcome = award::award_batch(&st.pool, c, &st.issuer(), &entries, &opts, now)?;
            let mut posters = Vec::with_capacity(ids.len());
            for &link in &ids {
                // A post gone meanwhile is still listed, as such.
                posters.push(match (crate::db::links::get_link(c, link), crate::db::links::poster(c, link)) {
                    (Ok(l), Ok((_, author_id, name, _))) => Some((l.title, author_id, name)),
                    (Err(StoreError::NotFound(_)), _) | (_, Err(StoreError::NotFound(_))) => None,
                    (Err(e), _) | (_, Err(e)) => return Err(e),
                });
            }
            let chosen = task_id.map(|t| courses::get_task(c, t)).transpose()?;
            Ok((outcome, posters, chosen))
        })
        .await?;
    state.awarded();
    let results: Vec<BulkResult> = link_ids
        .iter()
        .zip(&outcome)
        .zip(posters)
        .map(|((&link_id, o), poster)| {
            let (post, learner, learner_url) = match poster {
                Some((post, author_id, learner)) => {
                    (post_title(&post).to_string(), learner, format!("/admin/learners/{author_id}"))
                }
                None => ("a post no longer harvested".to_string(), "no learner".to_string(), String::new()),
            };
            let (badge, assertion_url, error) = match o {
                Ok((a, t)) => (
                    Some(t.hashtag.clone()),
                    Some(crate::badges::ob::assertion_url(&state.base_url, &a.public_id)),
                    None,
                ),
                Err(e) => (chosen.as_ref().map(|t| t.hashtag.clone()), None, Some(award::refusal_text(e))),
            };
            BulkResult { link_id, post, learner, learner_url, badge, assertion_url, error }
        })
        .collect();
    let awarded = results.iter().filter(|r| r.error.is_none()).count();
    let refused = results.len() - awarded;
    let mut summary = format!("Awarded {awarded} badge(s).");
    if refused > 0 {
        summary.push_str(&format!(" Not awarded: {refused}."));
    }
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(serde_json::json!({"ok": true, "message": summary, "results": results})));
    }
    let back = safe_back(&back, "/admin/reader");
    render(&BulkPage { page: Page::new(&session, "Bulk award"), summary, results, back })
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
    who: Acting,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<FlagForm>,
) -> Result<HttpResponse, AppError> {
    let flag = LinkFlag::parse(&form.flag)
        .ok_or_else(|| StoreError::field("flag", format!("unknown flag '{}'", form.flag)))?;
    let (link, on) = (form.link_id, form.on == "1");
    let actor = who.0.clone();
    state.db(move |c| crate::app::reader::set_flag(c, &actor, link, flag, on)).await?;
    let msg = match (flag, on) {
        (LinkFlag::Dismissed, true) => "Post dismissed.",
        (LinkFlag::Dismissed, false) => "Post restored.",
        (LinkFlag::Starred, true) => "Post starred.",
        (LinkFlag::Starred, false) => "Star removed.",
    };
    done(&req, &session, &state, &who.0, form.link_id, msg.to_string().into(), &form.back).await
}

#[derive(Deserialize)]
struct RevokeForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

async fn revoke(
    who: Acting,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<RevokeForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let reason = form.reason.clone();
    let (st, now, actor) = (state.clone(), now(), who.0.clone());
    let (a, task) = state
        .db(move |c| {
            let a = award::revoke_as(c, &st.issuer(), Some(&actor), &id, &reason, now)?;
            let t = courses::get_task(c, a.task_id)?;
            Ok((a, t))
        })
        .await?;
    state.awarded();
    tracing::info!(award = %a.public_id, "badge revoked");
    let learner = a.recipient_name.clone().unwrap_or_else(|| "the learner".into());
    let said = Said {
        message: format!(
            "Badge {} revoked from {learner}; its verification page now says so, and {learner} is told why.",
            task.hashtag
        ),
        flash: Some(format!(
            "Badge {} revoked; its verification page now says so, and the learner is told why.",
            task.hashtag
        )),
    };
    match a.link_id {
        Some(link) => done(&req, &session, &state, &who.0, link, said, &form.back).await,
        None => {
            flash(&session, said.flash.unwrap_or(said.message));
            Ok(redirect(&safe_back(&form.back, "/admin/reader")))
        }
    }
}
