//! The Reader queue: harvested posts, filtered as in the Reader; tie a post to a Task, dismiss it.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Caller, Problem, db, rfc3339, store};
use crate::db::reader::{self, Entry, Filter, LinkFlag, Status};
use crate::db::tokens::Scope;
use crate::web::AppState;

/// Posts a page holds at most.
const PAGE_MAX: i64 = 100;

/// Which posts the queue shows.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueueStatus {
    /// Neither dismissed nor awarded.
    New,
    Awarded,
    Dismissed,
    Starred,
}

impl From<QueueStatus> for Status {
    fn from(s: QueueStatus) -> Status {
        match s {
            QueueStatus::New => Status::New,
            QueueStatus::Awarded => Status::Awarded,
            QueueStatus::Dismissed => Status::Dismissed,
            QueueStatus::Starred => Status::Starred,
        }
    }
}

/// The Reader's filters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// Posts tied to a task of this course.
    pub course: Option<i64>,
    /// Posts tied to a task of this module.
    pub module: Option<i64>,
    /// Posts tied to this task.
    pub task: Option<i64>,
    /// Posts by this learner (author id).
    pub author: Option<i64>,
    /// Posts from this feed.
    pub feed: Option<i64>,
    pub status: Option<QueueStatus>,
    /// Text in the title, summary or address of the post, or its learner's name or email.
    pub q: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Posts per page, 1 to 100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskRef {
    pub id: i64,
    pub hashtag: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AwardRef {
    /// The award's id.
    pub id: String,
    pub task_id: i64,
    #[schema(format = "uri")]
    pub url: String,
    pub revoked: bool,
}

/// A harvested post as the Reader shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueEntry {
    /// The post's id (a Link).
    pub id: i64,
    pub title: String,
    pub url: Option<String>,
    pub author: String,
    pub author_id: i64,
    pub feed_id: i64,
    pub feed_title: String,
    #[schema(format = "date-time")]
    pub published_at: Option<String>,
    #[schema(format = "date-time")]
    pub harvested_at: String,
    /// Sanitised HTML.
    pub summary_html: String,
    pub dismissed: bool,
    pub starred: bool,
    /// The tasks the post is tied to.
    pub tasks: Vec<TaskRef>,
    /// Awards made for the post.
    pub awards: Vec<AwardRef>,
}

impl QueueEntry {
    fn new(base: &str, e: &Entry) -> QueueEntry {
        QueueEntry {
            id: e.link.id,
            title: e.link.title.clone(),
            url: e.link.url.clone(),
            author: e.author.clone(),
            author_id: e.author_id,
            feed_id: e.link.feed_id,
            feed_title: e.feed_title.clone(),
            published_at: e.link.published_at.map(rfc3339),
            harvested_at: rfc3339(e.link.harvested_at),
            summary_html: e.link.summary_html.clone(),
            dismissed: e.link.dismissed,
            starred: e.link.starred,
            tasks: e.tasks.iter().map(|t| TaskRef { id: t.id, hashtag: t.hashtag.clone() }).collect(),
            awards: e
                .awards
                .iter()
                .map(|a| AwardRef {
                    id: a.public_id.clone(),
                    task_id: a.task_id,
                    url: crate::badges::ob::assertion_url(base, &a.public_id),
                    revoked: a.is_revoked(),
                })
                .collect(),
        }
    }
}

/// A page of the queue, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Queue {
    pub entries: Vec<QueueEntry>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<i64>,
}

/// Tie a post to a task, or untie it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct TieInput {
    pub task_id: i64,
    /// False unties; later harvests keep the choice either way. Default true.
    #[serde(default = "yes")]
    pub tied: bool,
}

/// Dismiss a post from the "new" list, or restore it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct DismissInput {
    /// False restores the post. Default true.
    #[serde(default = "yes")]
    pub dismissed: bool,
}

fn yes() -> bool {
    true
}

#[utoipa::path(get, path = "/api/v1/reader", tag = "reader", operation_id = "readerQueue",
    params(QueueQuery),
    responses((status = 200, description = "A page of harvested posts, newest first.", body = Queue)),
    security(("bearer" = ["read"])))]
/// The Reader queue of harvested posts, filtered as in the Reader.
pub async fn queue(
    caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<QueueQuery>,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Read)?;
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(reader::PAGE);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(Problem::invalid("limit", format!("limit is 1 to {PAGE_MAX}")));
    }
    let filter = Filter {
        course: q.course,
        module: q.module,
        task: q.task,
        author: q.author,
        feed: q.feed,
        status: q.status.map(Into::into),
        q: q.q,
        before: q.cursor,
        within: crate::app::reader::scope(&caller.actor),
        ..Default::default()
    };
    let base = state.base_url.clone();
    let page = db(&state, move |c| store(reader::page(c, &filter, limit))).await?;
    Ok(HttpResponse::Ok().json(Queue {
        entries: page.entries.iter().map(|e| QueueEntry::new(&base, e)).collect(),
        next_cursor: page.next,
    }))
}

/// The post as it now stands.
async fn entry_response(state: &web::Data<AppState>, link_id: i64) -> Result<HttpResponse, Problem> {
    let base = state.base_url.clone();
    let entry = db(state, move |c| store(reader::entry(c, link_id))).await?;
    let entry = entry.ok_or_else(|| Problem::from(crate::db::StoreError::NotFound("post")))?;
    Ok(HttpResponse::Ok().json(QueueEntry::new(&base, &entry)))
}

#[utoipa::path(post, path = "/api/v1/reader/{link_id}/tie", tag = "reader", operation_id = "tiePost",
    params(("link_id" = i64, Path, description = "The post's id")),
    request_body = TieInput,
    responses((status = 200, description = "The post with its ties.", body = QueueEntry)),
    security(("bearer" = ["reader:write"])))]
/// Tie a post to a task (or untie it), as on the Feeds and Reader pages.
pub async fn tie(
    caller: Caller,
    state: web::Data<AppState>,
    link_id: web::Path<i64>,
    body: web::Json<TieInput>,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::ReaderWrite)?;
    let (link, input, now) = (link_id.into_inner(), body.into_inner(), crate::clock::system_now());
    let actor = caller.actor.clone();
    db(&state, move |c| store(crate::app::reader::tie(c, &actor, link, input.task_id, input.tied, now))).await?;
    entry_response(&state, link).await
}

#[utoipa::path(post, path = "/api/v1/reader/{link_id}/dismiss", tag = "reader", operation_id = "dismissPost",
    params(("link_id" = i64, Path, description = "The post's id")),
    request_body = DismissInput,
    responses((status = 200, description = "The post.", body = QueueEntry)),
    security(("bearer" = ["reader:write"])))]
/// Dismiss a post from the queue (or restore it), as the Reader's Dismiss button does.
pub async fn dismiss(
    caller: Caller,
    state: web::Data<AppState>,
    link_id: web::Path<i64>,
    body: web::Json<DismissInput>,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::ReaderWrite)?;
    let (link, on) = (link_id.into_inner(), body.into_inner().dismissed);
    let actor = caller.actor.clone();
    db(&state, move |c| store(crate::app::reader::set_flag(c, &actor, link, LinkFlag::Dismissed, on))).await?;
    entry_response(&state, link).await
}
