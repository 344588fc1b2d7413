//! The Posts page (`/admin/links`): harvested posts, and tying or untying them to Tasks by
//! hand (also from the Reader's cards).

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{AppState, Page, redirect, render, safe_back};
use crate::db::courses::{self, Task};
use crate::db::links::{self, LinkView};
use crate::web::auth::{CsrfForm, SignedIn, flash};
use crate::web::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/links", web::get().to(links_page)).route("/admin/links/{id}/tie", web::post().to(link_tie));
}

#[derive(Template)]
#[template(path = "admin/links.html")]
struct LinksPage {
    page: Page,
    links: Vec<LinkView>,
    tasks: Vec<Task>,
    task: Option<i64>,
    back: String,
}

impl LinksPage {
    fn selected(&self, id: impl std::borrow::Borrow<i64>) -> bool {
        self.task == Some(*id.borrow())
    }
}

#[derive(Deserialize)]
struct LinksQuery {
    task: Option<i64>,
}

async fn links_page(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    q: web::Query<LinksQuery>,
) -> Result<HttpResponse, AppError> {
    let task = q.task;
    let (links, tasks) = state
        .db(move |c| {
            let ids = task.map(|t| vec![t]);
            Ok((links::recent(c, ids.as_deref(), 200)?, courses::list_tasks(c)?))
        })
        .await?;
    let back = match task {
        Some(t) => format!("/admin/links?task={t}"),
        None => "/admin/links".into(),
    };
    render(&LinksPage { page: Page::new(&session, "Harvested posts"), links, tasks, task, back })
}

#[derive(Deserialize)]
struct TieForm {
    task_id: i64,
    /// "1" to tie, "0" to untie.
    tied: String,
    #[serde(default)]
    back: String,
}

/// Ties or unties a post and a Task; a script asking for JSON gets what happened and the
/// Reader's card of the post drawn again.
async fn link_tie(
    _: SignedIn,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<TieForm>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    let tied = form.tied == "1";
    let (task, now) = (form.task_id, crate::clock::system_now());
    let t = state
        .db(move |c| {
            links::set_tie(c, id, task, tied, now)?;
            courses::get_task(c, task)
        })
        .await?;
    let msg = if tied { format!("Tied to {}.", t.hashtag) } else { format!("Untied from {}.", t.hashtag) };
    if super::reader::wants_json(&req) {
        return super::reader::done(&req, &session, &state, id, msg.into(), &form.back).await;
    }
    flash(&session, msg);
    Ok(redirect(&safe_back(&form.back, "/admin/links")))
}
