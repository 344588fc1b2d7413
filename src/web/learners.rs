//! The instructor's side of a learner's rights: forgetting a learner, behind a confirmation
//! page.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::{AppState, Page, redirect, render};
use crate::app::learners::{self, Requester, Who};
use crate::clock::system_now as now;
use crate::web::auth::{Acting, CsrfForm, flash};
use crate::web::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/learners/{id}/forget", web::get().to(forget_confirm))
        .route("/admin/learners/{id}/forget", web::post().to(forget));
}

#[derive(Template)]
#[template(path = "admin/learner_forget.html")]
struct ForgetPage {
    page: Page,
    id: i64,
    name: String,
    awards: usize,
    feeds: usize,
    posts: i64,
}

async fn forget_confirm(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    who.0.require_admin("forget a learner")?;
    let id = *id;
    let h = state.db(move |c| learners::preview(c, Who::Author(id))).await?;
    let name = h.author.map(|a| a.name).unwrap_or_default();
    render(&ForgetPage {
        page: Page::new(&session, format!("Forget {name}?")),
        id,
        name,
        awards: h.awards.len(),
        feeds: h.feeds.len(),
        posts: h.posts,
    })
}

async fn forget(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let (id, by, st) = (*id, Requester::Staff(who.0), state.clone());
    let done = state.db(move |c| learners::forget(c, &st.issuer(), Who::Author(id), by, now())).await?;
    // The revocation records wake the miner and the peers like a revocation does.
    state.awarded();
    tracing::info!(event = done.event.id, awards = done.awards_withdrawn, "learner forgotten");
    flash(
        &session,
        format!(
            "The learner was forgotten: {} award(s) withdrawn, {} post(s) deleted.",
            done.awards_withdrawn, done.posts_deleted
        ),
    );
    Ok(redirect("/admin/feeds"))
}
