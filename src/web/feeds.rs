//! The instructor's Feeds page: add, pause, resume, edit, remove and poll feeds; OPML import
//! and export.

use actix_multipart::Multipart;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::multipart;
use super::pager::{self, Pager};
use super::{AppState, Page, redirect, render, render_status};
use crate::app::feeds::{self as use_feeds, AddFeed};
use crate::clock::system_now as now;
use crate::db::courses::{self, Course};
use crate::db::feeds::{self, Author, Feed, FeedQuery, FeedSort, FeedStatus};
use crate::db::listing::{Listed, MAX_PAGE, MAX_SEARCH};
use crate::domain::FieldErrors;
use crate::opml;
use crate::web::auth::{Acting, CsrfForm, flash};
use crate::web::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/feeds", web::get().to(feeds_page))
        .route("/admin/feeds", web::post().to(feed_add))
        .route("/admin/feeds/opml", web::get().to(opml_export))
        .route("/admin/feeds/opml", web::post().to(opml_import))
        .route("/admin/feeds/csv", web::post().to(csv_import))
        .route("/admin/feeds/{id}", web::post().to(feed_edit))
        .route("/admin/feeds/{id}/status", web::post().to(feed_status))
        .route("/admin/feeds/{id}/poll", web::post().to(feed_poll));
}

#[derive(Debug, Clone, Default, Deserialize)]
struct AddFeedForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    url: String,
}

/// The Feeds page's query string.
#[derive(Debug, Clone, Default, Deserialize)]
struct FeedsParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    course: Option<i64>,
    /// One learner's feeds (author id).
    learner: Option<i64>,
    /// One feed (the dashboard's link to a failing feed).
    feed: Option<i64>,
    #[serde(default)]
    sort: String,
    page: Option<i64>,
}

#[derive(Template)]
#[template(path = "admin/feeds.html")]
struct FeedsPage {
    page: Page,
    list: Listed<(Feed, Author)>,
    query: FeedQuery,
    courses: Vec<Course>,
    pager: Pager,
    mail_dir: Option<String>,
    form: AddFeedForm,
    errors: FieldErrors,
    now: i64,
}

impl FeedsPage {
    async fn load(state: &AppState, session: &Session, params: FeedsParams) -> Result<FeedsPage, AppError> {
        let query = FeedQuery {
            search: params.q.chars().take(MAX_SEARCH).collect(),
            state: feeds::parse_state(&params.status),
            course: params.course,
            learner: params.learner,
            feed: params.feed,
            sort: FeedSort::parse(&params.sort).unwrap_or_default(),
            page: params.page.unwrap_or(1).clamp(1, MAX_PAGE),
        };
        let q = query.clone();
        let (list, courses) = state.db(move |c| Ok((feeds::page_feeds(c, &q)?, courses::list_courses(c)?))).await?;
        let pairs = [
            ("q", query.search.clone()),
            ("status", query.state.unwrap_or_default().to_string()),
            ("course", query.course.map(|c| c.to_string()).unwrap_or_default()),
            ("learner", query.learner.map(|c| c.to_string()).unwrap_or_default()),
            ("feed", query.feed.map(|c| c.to_string()).unwrap_or_default()),
            ("sort", if query.sort == FeedSort::Newest { String::new() } else { query.sort.as_str().to_string() }),
        ];
        Ok(FeedsPage {
            page: Page::new(session, "Feeds"),
            pager: Pager::new("/admin/feeds", &pairs, list.page, list.pages()),
            list,
            query,
            courses,
            mail_dir: state.mailer.file_dir().map(|d| d.display().to_string()),
            form: AddFeedForm::default(),
            errors: FieldErrors::new(),
            now: now(),
        })
    }

    fn states(&self) -> [&'static str; 7] {
        feeds::STATE_WORDS
    }
    fn state_is(&self, s: &str) -> bool {
        self.query.state == Some(s)
    }
    fn course_is(&self, id: &i64) -> bool {
        self.query.course == Some(*id)
    }
    fn sorts(&self) -> [FeedSort; 3] {
        FeedSort::ALL
    }
    fn sort_is(&self, s: &FeedSort) -> bool {
        self.query.sort == *s
    }
    /// Whether any filter narrows the list.
    fn filtered(&self) -> bool {
        !self.query.search.trim().is_empty()
            || self.query.state.is_some()
            || self.query.course.is_some()
            || self.query.learner.is_some()
            || self.query.feed.is_some()
    }
}

/// "in 5 min", "3 h ago", "just now" — and, more than a week away, the date as pages write
/// dates ("30 November 2026"), so that no page says "1071 d ago".
pub fn relative(t: impl std::borrow::Borrow<i64>, now: impl std::borrow::Borrow<i64>) -> String {
    let (t, now) = (*t.borrow(), *now.borrow());
    let d = t - now;
    let a = d.abs();
    if a >= 7 * 86400 {
        return super::day(t);
    }
    let amount = if a < 5 {
        return "just now".into();
    } else if a < 60 {
        format!("{a} s")
    } else if a < 3600 {
        format!("{} min", a / 60)
    } else if a < 86400 {
        format!("{} h", a / 3600)
    } else {
        format!("{} d", a / 86400)
    };
    if d >= 0 { format!("in {amount}") } else { format!("{amount} ago") }
}

async fn feeds_page(
    who: Acting,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    use_feeds::may_read(&who.0)?;
    let params: FeedsParams = pager::query(&req)?;
    render(&FeedsPage::load(&state, &session, params).await?)
}

async fn feed_add(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<AddFeedForm>,
) -> Result<HttpResponse, AppError> {
    use_feeds::may_manage(&who.0)?;
    let input = AddFeed { name: form.name.clone(), email: form.email.clone(), url: form.url.clone() };
    let errors = match use_feeds::add(&state.pool, &state.harvester, &state.base_url, &input, now()).await {
        Ok(feed) => {
            flash(&session, format!("Added {}; it will be polled shortly.", feed.url));
            return Ok(redirect("/admin/feeds"));
        }
        Err(crate::db::StoreError::Invalid(e)) => e,
        Err(e) => return Err(e.into()),
    };
    let mut page = FeedsPage::load(&state, &session, FeedsParams::default()).await?;
    page.form = form;
    page.errors = errors;
    render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
}

#[derive(Deserialize)]
struct EditFeedForm {
    url: String,
}

async fn feed_edit(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<EditFeedForm>,
) -> Result<HttpResponse, AppError> {
    use_feeds::may_manage(&who.0)?;
    let id = *id;
    use_feeds::change_url(&state.pool, &state.harvester, &state.base_url, id, &form.url, now()).await.map_err(|e| {
        match e {
            crate::db::StoreError::Invalid(e) => AppError::BadRequest(e.get("url").to_string()),
            e => e.into(),
        }
    })?;
    flash(&session, "Feed address changed.");
    Ok(redirect("/admin/feeds"))
}

#[derive(Deserialize)]
struct StatusForm {
    status: String,
}

async fn feed_status(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<StatusForm>,
) -> Result<HttpResponse, AppError> {
    use_feeds::may_manage(&who.0)?;
    let id = *id;
    // Pending and gone are the system's to set, not an instructor's.
    let new = match FeedStatus::parse(&form.status) {
        Some(s @ (FeedStatus::Active | FeedStatus::Paused | FeedStatus::Removed)) => s,
        _ => return Err(AppError::BadRequest(format!("unknown feed status '{}'", form.status))),
    };
    let now = now();
    state.db(move |c| feeds::set_status(c, id, new, now)).await?;
    flash(
        &session,
        match new {
            FeedStatus::Active => "Feed resumed.",
            FeedStatus::Paused => "Feed paused.",
            _ => "Feed removed; its Links are kept.",
        },
    );
    Ok(redirect("/admin/feeds"))
}

async fn feed_poll(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    use_feeds::may_read(&who.0)?;
    let id = *id;
    let feed = state.db(move |c| feeds::get_feed(c, id)).await?;
    let summary = state.harvester.poll_all(vec![feed], &|_, _| {}).await.map_err(AppError::from)?;
    let message = if summary.failed > 0 {
        "The feed could not be read; see its last error.".to_string()
    } else if summary.not_modified > 0 {
        "The feed has not changed since the last poll.".to_string()
    } else {
        format!("Polled: {} new and {} changed item(s).", summary.added, summary.updated)
    };
    flash(&session, message);
    Ok(redirect("/admin/feeds"))
}

async fn opml_export(who: Acting, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    use_feeds::may_manage(&who.0)?;
    let list = state.db(feeds::export_list).await?;
    let body = opml::export(
        "Cairn feeds",
        &list
            .iter()
            .map(|(f, a)| (a.name.as_str(), f.title.as_str(), f.url.as_str(), f.site_url.as_deref()))
            .collect::<Vec<_>>(),
    );
    Ok(HttpResponse::Ok()
        .content_type("text/x-opml; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"cairn-feeds.opml\""))
        .body(body))
}

async fn opml_import(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    use_feeds::may_manage(&who.0)?;
    let upload = multipart::read(payload, &session, "opml").await?;
    let Some(bytes) = upload.file else {
        return Err(AppError::BadRequest("choose an OPML file to import".into()));
    };
    let entries = opml::parse(&bytes).map_err(AppError::BadRequest)?;
    let now = now();
    let base = state.base_url.clone();
    let done = state.db(move |c| use_feeds::import_opml(c, &base, &entries, now)).await?;
    let mut message = format!("Imported {} feed(s); {} already present.", done.added, done.skipped);
    if !done.refused.is_empty() {
        message.push_str(&format!(" Not imported: {}", done.refused.join("; ")));
    }
    if !done.without_email.is_empty() {
        /// Names listed in the message; the rest are counted.
        const NAMED: usize = 20;
        let mut names = done.without_email.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", ");
        if done.without_email.len() > NAMED {
            names.push_str(&format!(" and {} more", done.without_email.len() - NAMED));
        }
        message.push_str(&format!(
            " {} of the learners have no email address (OPML carries none), so no badge can be issued to them \
             until you add one: {names}. The Learners page marks them \u{201c}no email\u{201d}, and each learner's \
             page has the form.",
            done.without_email.len()
        ));
    }
    flash(&session, message);
    Ok(redirect("/admin/feeds"))
}

#[derive(Template)]
#[template(path = "admin/feeds_import.html")]
struct ImportPage {
    page: Page,
    result: Option<crate::app::import::RosterImport>,
    /// Why the whole file was refused, next to the form.
    error: String,
}

/// Imports a roster CSV (`name,email,blog`) and answers with what it did: counts, each row
/// with a problem by line and why, and the learners still without an email, above the form.
async fn csv_import(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    use_feeds::may_manage(&who.0)?;
    use crate::app::import;
    let upload = multipart::read_limited(payload, &session, "csv", import::MAX_BYTES + 1).await?;
    let refused = |error: String| {
        let page = ImportPage { page: Page::new(&session, "Roster import"), result: None, error };
        render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
    };
    let Some(bytes) = upload.file else {
        return refused("choose a CSV file to import".into());
    };
    let rows = match import::parse(&bytes) {
        Ok(rows) => rows,
        Err(e) => return refused(e),
    };
    let done = import::import_csv(
        &state.imports,
        &state.pool,
        &state.harvester,
        &state.base_url,
        rows,
        Default::default(),
        now(),
    )
    .await?;
    tracing::info!(added = done.added, skipped = done.skipped, failed = done.failed.len(), "roster imported");
    render(&ImportPage { page: Page::new(&session, "Roster import"), result: Some(done), error: String::new() })
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_near_read_as_durations_and_far_ones_as_dates() {
        let now = 1_800_000_000;
        assert_eq!(super::relative(now, now), "just now");
        assert_eq!(super::relative(now + 2, now), "just now");
        assert_eq!(super::relative(now - 30, now), "30 s ago");
        assert_eq!(super::relative(now + 600, now), "in 10 min");
        assert_eq!(super::relative(now - 3 * 86400, now), "3 d ago");
        // A week or more away: the date, as every page writes it.
        assert_eq!(super::relative(now - 1071 * 86400, now), super::super::day(now - 1071 * 86400));
        assert_eq!(super::relative(now + 8 * 86400, now), super::super::day(now + 8 * 86400));
    }
}
