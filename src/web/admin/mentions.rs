//! Received Webmentions, approved or rejected by an instructor.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::web::auth::{Acting, CsrfForm, flash};
use crate::web::error::AppError;
use crate::web::{AppState, Page, redirect, render};

#[derive(Template)]
#[template(path = "admin/mentions.html")]
pub(super) struct MentionsPage {
    page: Page,
    held: Vec<crate::db::mentions::HeldMention>,
}

/// Mentions shown at most on the moderation page at once.
const MENTIONS_LISTED: i64 = 200;

pub(super) async fn mentions_list(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    crate::app::mentions::may_moderate(&who.0)?;
    let held = state.db(|c| crate::db::mentions::held_for_moderation(c, MENTIONS_LISTED)).await?;
    render(&MentionsPage { page: Page::new(&session, "Mentions to moderate"), held })
}

pub(super) async fn moderate(
    session: &Session,
    state: &AppState,
    id: i64,
    approve: bool,
) -> Result<HttpResponse, AppError> {
    if approve {
        state.db(move |c| crate::app::mentions::approve(c, id)).await?;
    } else {
        state.db(move |c| crate::app::mentions::reject(c, id)).await?;
    }
    flash(
        session,
        if approve { "Approved: the mention is shown once verified." } else { "Rejected: the mention is never shown." },
    );
    Ok(redirect("/admin/mentions"))
}

pub(super) async fn mention_approve(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    crate::app::mentions::may_moderate(&who.0)?;
    moderate(&session, &state, *id, true).await
}

pub(super) async fn mention_reject(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    crate::app::mentions::may_moderate(&who.0)?;
    moderate(&session, &state, *id, false).await
}
