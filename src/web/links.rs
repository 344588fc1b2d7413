//! The Posts page (`/admin/links`): harvested posts, and tying or untying them to Tasks by
//! hand (also from the Reader's cards).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::pager::{self, Pager};
use super::{AppState, Page, redirect, render, render_status, safe_back};
use crate::app::reader::{TaskChoices, TieGroup};
use crate::db::courses::{Course, Task};
use crate::db::listing::{Listed, MAX_PAGE, MAX_SEARCH};
use crate::db::reader::{self, Entry, Filter};
use crate::web::auth::{Acting, CsrfForm, flash};
use crate::web::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/links", web::get().to(links_page)).route("/admin/links/{id}/tie", web::post().to(link_tie));
}

/// The Posts page's query string.
#[derive(Debug, Clone, Default, Deserialize)]
struct LinksParams {
    /// Text in the title, address or summary of the post, or its learner's name or email.
    #[serde(default)]
    q: String,
    course: Option<i64>,
    task: Option<i64>,
    /// "1": only posts tied to no task.
    #[serde(default)]
    untied: String,
    page: Option<i64>,
}

impl LinksParams {
    fn untied(&self) -> bool {
        !self.untied.is_empty() && self.untied != "0"
    }

    fn pairs(&self) -> [(&'static str, String); 4] {
        [
            ("q", self.q.clone()),
            ("course", self.course.map(|c| c.to_string()).unwrap_or_default()),
            ("task", self.task.map(|t| t.to_string()).unwrap_or_default()),
            ("untied", if self.untied() { "1".into() } else { String::new() }),
        ]
    }
}

#[derive(Template)]
#[template(path = "admin/links.html")]
struct LinksPage {
    page: Page,
    list: Listed<Entry>,
    params: LinksParams,
    courses: Vec<Course>,
    tasks: Vec<Task>,
    choices: TaskChoices,
    pager: Pager,
    back: String,
    /// A tie refused, with the post it was for.
    tie_error: Option<(i64, String)>,
}

impl LinksPage {
    async fn load(
        state: &AppState,
        session: &Session,
        actor: &crate::app::access::Actor,
        params: LinksParams,
    ) -> Result<LinksPage, AppError> {
        let mut params = params;
        params.q = params.q.chars().take(MAX_SEARCH).collect();
        let filter = Filter {
            course: params.course,
            task: params.task,
            q: Some(params.q.clone()),
            untied: params.untied().then(|| "1".to_string()),
            within: crate::app::reader::scope(actor),
            ..Default::default()
        };
        let actor = actor.clone();
        let page = params.page.unwrap_or(1).clamp(1, MAX_PAGE);
        let (list, courses, tasks, choices) = state
            .db(move |c| {
                let list = reader::list(c, &filter, page)?;
                let learners: Vec<i64> = list.rows.iter().map(|e| e.author_id).collect();
                let choices = TaskChoices::load(c, &learners, filter.within.as_deref())?;
                let (courses, _, tasks) = crate::app::reader::filter_choices(c, &actor)?;
                Ok((list, courses, tasks, choices))
            })
            .await?;
        let pairs = params.pairs();
        let pager = Pager::new("/admin/links", &pairs, list.page, list.pages());
        let back = {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
                s.append_pair(k, v);
            }
            if list.page > 1 {
                s.append_pair("page", &list.page.to_string());
            }
            let q = s.finish();
            if q.is_empty() { "/admin/links".to_string() } else { format!("/admin/links?{q}") }
        };
        Ok(LinksPage {
            page: Page::new(session, "Harvested posts"),
            list,
            params,
            courses,
            tasks,
            choices,
            pager,
            back,
            tie_error: None,
        })
    }

    fn course_is(&self, id: &i64) -> bool {
        self.params.course == Some(*id)
    }
    fn task_is(&self, id: &i64) -> bool {
        self.params.task == Some(*id)
    }
    fn filtered(&self) -> bool {
        !self.params.q.trim().is_empty()
            || self.params.course.is_some()
            || self.params.task.is_some()
            || self.params.untied()
    }
    fn tie_groups(&self, e: &Entry) -> Vec<TieGroup> {
        self.choices.tie_groups(&e.tasks, e.author_id)
    }
    fn has_default(&self, groups: &[TieGroup]) -> bool {
        TaskChoices::has_default(groups)
    }
    /// The refusal of a tie of post `id`, if that was what was just tried.
    fn error_of(&self, id: &i64) -> Option<&str> {
        self.tie_error.as_ref().filter(|(l, _)| l == id).map(|(_, m)| m.as_str())
    }
}

async fn links_page(
    who: Acting,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let params: LinksParams = pager::query(&req)?;
    render(&LinksPage::load(&state, &session, &who.0, params).await?)
}

#[derive(Deserialize)]
struct TieForm {
    /// The Task's id ("" when none was chosen).
    #[serde(default)]
    task_id: String,
    /// "1" to tie, "0" to untie.
    tied: String,
    #[serde(default)]
    back: String,
}

/// Ties or unties a post and a Task; a script asking for JSON gets what happened and the
/// Reader's card of the post drawn again. A tie refused on the Posts page is shown there, next
/// to the post.
async fn link_tie(
    who: Acting,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<TieForm>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    let tied = form.tied == "1";
    let now = crate::clock::system_now();
    let done = match form.task_id.trim().parse::<i64>() {
        Err(_) => Err(AppError::BadRequest("choose a task to tie the post to".into())),
        Ok(task) => {
            let actor = who.0.clone();
            state.db(move |c| crate::app::reader::tie(c, &actor, id, task, tied, now)).await
        }
    };
    let t = match done {
        Ok(t) => t,
        Err(e @ (AppError::BadRequest(_) | AppError::Invalid(_)))
            if !super::reader::wants_json(&req)
                && (form.back == "/admin/links" || form.back.starts_with("/admin/links?")) =>
        {
            let message = match &e {
                AppError::BadRequest(m) => m.clone(),
                AppError::Invalid(errors) => errors.get("task_id").to_string(),
                _ => String::new(),
            };
            let query = form.back.split_once('?').map_or("", |(_, q)| q);
            let params: LinksParams = actix_web::web::Query::<LinksParams>::from_query(query)
                .map(actix_web::web::Query::into_inner)
                .unwrap_or_default();
            let mut page = LinksPage::load(&state, &session, &who.0, params).await?;
            page.tie_error = Some((id, message));
            return render_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(e) => return Err(e),
    };
    let msg = if tied { format!("Tied to {}.", t.hashtag) } else { format!("Untied from {}.", t.hashtag) };
    if super::reader::wants_json(&req) {
        return super::reader::done(&req, &session, &state, &who.0, id, msg.into(), &form.back).await;
    }
    flash(&session, msg);
    Ok(redirect(&safe_back(&form.back, "/admin/links")))
}
