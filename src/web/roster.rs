//! The learner roster: `/admin/learners` (the institution), `/admin/courses/{id}/learners` (one
//! course), a learner's page with the address the instructor can edit, and a course's progress
//! grid (`/admin/courses/{id}/progress`).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{AppState, Page, redirect, render, render_status};
use crate::db::awards::{self, Award};
use crate::db::courses::{self, Course, Outline, Task};
use crate::db::feeds::{self, Author};
use crate::db::roster::{self, Cell, FeedLine, RecentPost, Sort};
use crate::domain::FieldErrors;
use crate::web::auth::{Acting, CsrfForm, flash};
use crate::web::error::AppError;

/// Posts shown on a learner's page.
const RECENT_POSTS: i64 = 20;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/learners", web::get().to(institution_roster))
        .route("/admin/learners/{id}", web::get().to(learner))
        .route("/admin/learners/{id}/email", web::post().to(learner_email))
        .route("/admin/courses/{id}/learners", web::get().to(course_roster))
        .route("/admin/courses/{id}/progress", web::get().to(progress));
}

/// The roster's query string.
#[derive(Debug, Clone, Default, Deserialize)]
struct RosterParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    page: Option<i64>,
    /// The progress grid's "has not posted for this module".
    #[serde(default)]
    module: Option<i64>,
}

/// A link to one page of a list.
struct PageLink {
    number: i64,
    url: String,
    current: bool,
}

/// The query string of a roster page, with `page`.
fn query_string(q: &roster::Query, page: i64) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if !q.search.trim().is_empty() {
        s.append_pair("q", q.search.trim());
    }
    if q.sort != Sort::Name {
        s.append_pair("sort", q.sort.as_str());
    }
    if let Some(m) = q.not_posted_module {
        s.append_pair("module", &m.to_string());
    }
    if page > 1 {
        s.append_pair("page", &page.to_string());
    }
    let s = s.finish();
    if s.is_empty() { s } else { format!("?{s}") }
}

/// Links to the first, last and nearby pages.
fn page_links(path: &str, q: &roster::Query, p: &roster::Page) -> Vec<PageLink> {
    let last = p.pages();
    (1..=last)
        .filter(|n| *n == 1 || *n == last || (n - p.page).abs() <= 3)
        .map(|n| PageLink { number: n, url: format!("{path}{}", query_string(q, n)), current: n == p.page })
        .collect()
}

fn query_of(params: &RosterParams, course: Option<i64>) -> roster::Query {
    roster::Query {
        course,
        search: params.q.chars().take(roster::MAX_SEARCH).collect(),
        sort: Sort::parse(&params.sort).unwrap_or_default(),
        page: params.page.unwrap_or(1).clamp(1, 1_000_000),
        not_posted_module: None,
    }
}

#[derive(Template)]
#[template(path = "admin/roster.html")]
struct RosterPage {
    page: Page,
    /// The course, on a course's roster.
    course: Option<Course>,
    courses: Vec<Course>,
    query: roster::Query,
    list: roster::Page,
    links: Vec<PageLink>,
    /// This page's path, without the query.
    path: String,
    sorts: [Sort; 4],
    now: i64,
}

impl RosterPage {
    fn sort_is(&self, s: &Sort) -> bool {
        self.query.sort == *s
    }
    fn feeds_of(&self, id: &i64) -> &[FeedLine] {
        self.list.feeds_of(*id)
    }
}

async fn roster_page(
    session: Session,
    state: web::Data<AppState>,
    course: Option<i64>,
    params: RosterParams,
) -> Result<HttpResponse, AppError> {
    let query = query_of(&params, course);
    let q = query.clone();
    let (course, courses, list) = state
        .db(move |c| {
            let course = q.course.map(|id| courses::get_course(c, id)).transpose()?;
            let list = roster::page(c, &q)?;
            Ok((course, courses::list_courses(c)?, list))
        })
        .await?;
    let path = match &course {
        Some(c) => format!("/admin/courses/{}/learners", c.id),
        None => "/admin/learners".to_string(),
    };
    let title = match &course {
        Some(c) => format!("Learners of {}", c.title),
        None => "Learners".to_string(),
    };
    let links = page_links(&path, &query, &list);
    render(&RosterPage {
        page: Page::new(&session, title),
        course,
        courses,
        query,
        list,
        links,
        path,
        sorts: Sort::ALL,
        now: crate::clock::system_now(),
    })
}

async fn institution_roster(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    params: web::Query<RosterParams>,
) -> Result<HttpResponse, AppError> {
    crate::app::roster::may_read(&who.0)?;
    roster_page(session, state, None, params.into_inner()).await
}

async fn course_roster(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    params: web::Query<RosterParams>,
) -> Result<HttpResponse, AppError> {
    let course = *id;
    state.db(move |c| crate::app::roster::may_read_course(c, &who.0, course)).await?;
    roster_page(session, state, Some(*id), params.into_inner()).await
}

#[derive(Template)]
#[template(path = "admin/roster_learner.html")]
struct LearnerPage {
    page: Page,
    author: Author,
    public_name: String,
    feeds: Vec<FeedLine>,
    /// Feeds the learner claimed (an instructor added them): (feed id, when).
    claimed: Vec<(i64, i64)>,
    posts: Vec<RecentPost>,
    awards: Vec<(Award, Task)>,
    /// The address field as typed (after a refused edit) or as stored.
    email: String,
    errors: FieldErrors,
    now: i64,
}

impl LearnerPage {
    fn day(&self, t: &i64) -> String {
        super::day(*t)
    }

    /// The day the learner claimed feed `id`, if they did.
    fn claimed_on(&self, id: &i64) -> Option<String> {
        self.claimed.iter().find(|(f, _)| f == id).map(|(_, at)| super::day(*at))
    }

    async fn load(state: &AppState, session: &Session, id: i64) -> Result<LearnerPage, AppError> {
        let (author, public_name, (feeds, claimed), posts, awards) = state
            .db(move |c| {
                let a = feeds::get_author(c, id)?;
                let public = crate::db::learners::public_name_of(c, id)?;
                let feeds = roster::feeds_of(c, &[id])?.remove(&id).unwrap_or_default();
                let claimed = feeds::claims_of_author(c, id)?;
                let posts = roster::recent_posts(c, id, RECENT_POSTS)?;
                let list = awards::for_learner(c, a.id, a.email.as_deref())?;
                Ok((a, public, (feeds, claimed), posts, list))
            })
            .await?;
        Ok(LearnerPage {
            page: Page::new(session, author.name.clone()),
            email: author.email.clone().unwrap_or_default(),
            author,
            public_name,
            feeds,
            claimed,
            posts,
            awards,
            errors: FieldErrors::new(),
            now: crate::clock::system_now(),
        })
    }
}

async fn learner(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    crate::app::roster::may_read(&who.0)?;
    render(&LearnerPage::load(&state, &session, *id).await?)
}

#[derive(Debug, Clone, Deserialize)]
struct EmailForm {
    #[serde(default)]
    email: String,
}

async fn learner_email(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<EmailForm>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    let raw = form.email.clone();
    match state.db(move |c| crate::app::roster::set_email(c, &who.0, id, &raw)).await {
        Ok(_) => {
            flash(&session, "Email saved: this learner can now be awarded.");
            Ok(redirect(&format!("/admin/learners/{id}")))
        }
        Err(AppError::Invalid(errors)) => {
            let mut page = LearnerPage::load(&state, &session, id).await?;
            page.email = form.email.chars().take(300).collect();
            page.errors = errors;
            render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "admin/progress.html")]
struct ProgressPage {
    page: Page,
    outline: Outline,
    query: roster::Query,
    list: roster::Page,
    links: Vec<PageLink>,
    cells: std::collections::HashMap<(i64, i64), Cell>,
    path: String,
}

impl ProgressPage {
    fn cell(&self, author: &i64, task: &i64) -> Cell {
        self.cells.get(&(*author, *task)).copied().unwrap_or_default()
    }
    fn module_is(&self, id: &i64) -> bool {
        self.query.not_posted_module == Some(*id)
    }
    fn task_count(&self) -> usize {
        self.outline.modules.iter().map(|m| m.tasks.len()).sum()
    }
}

async fn progress(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    params: web::Query<RosterParams>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    state.db(move |c| crate::app::roster::may_read_course(c, &who.0, id)).await?;
    let params = params.into_inner();
    let mut query = query_of(&params, Some(id));
    let q = query.clone();
    let module = params.module;
    let (outline, query_module, list, cells) = state
        .db(move |c| {
            let outline = courses::outline(c, id)?;
            // Only a module of this course filters; any other is ignored.
            let module = module.filter(|m| outline.modules.iter().any(|o| o.module.id == *m));
            let q = roster::Query { not_posted_module: module, ..q };
            let list = roster::page(c, &q)?;
            let authors: Vec<(i64, Option<String>)> = list.rows.iter().map(|r| (r.id, r.email.clone())).collect();
            let task_ids: Vec<i64> = outline.modules.iter().flat_map(|m| m.tasks.iter().map(|t| t.id)).collect();
            let cells = roster::cells(c, &authors, &task_ids)?;
            Ok((outline, module, list, cells))
        })
        .await?;
    query.not_posted_module = query_module;
    let path = format!("/admin/courses/{id}/progress");
    let links = page_links(&path, &query, &list);
    render(&ProgressPage {
        page: Page::new(&session, format!("Progress in {}", outline.course.title)),
        outline,
        query,
        list,
        links,
        cells,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_keep_the_query_and_skip_far_pages() {
        let q = roster::Query { search: "a b".into(), sort: Sort::Posts, ..Default::default() };
        let list = roster::Page { rows: Vec::new(), feeds: Default::default(), total: 1000, page: 10 };
        let links = page_links("/admin/learners", &q, &list);
        let numbers: Vec<i64> = links.iter().map(|l| l.number).collect();
        assert_eq!(numbers, vec![1, 7, 8, 9, 10, 11, 12, 13, 20]);
        assert_eq!(links[1].url, "/admin/learners?q=a+b&sort=posts&page=7");
        assert_eq!(links[0].url, "/admin/learners?q=a+b&sort=posts");
        assert!(links[4].current);
    }
}
