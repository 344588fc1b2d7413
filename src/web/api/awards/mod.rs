//! Awards: award one, a batch, revoke, get one with its chain proof and notifications, list.

mod views;

pub use views::*;

use actix_web::{HttpRequest, HttpResponse, web};
use diesel::SqliteConnection;

use super::idempotency::{answer_response, idempotency_key, json_answer, request_hash, write_once};
use super::problem::Problem;
use super::{Caller, db, rfc3339, store};
use crate::app::award::{self, BatchEntry, BatchOptions, HashtagAward, HashtagAwardError, Prepared};
use crate::app::tokens::Answer;
use crate::db::StoreError;
use crate::db::api::AwardFilter;
use crate::db::tokens::Scope;
use crate::web::AppState;

/// Most awards in one batch.
pub const BATCH_MAX: usize = 500;
/// Awards a list page holds by default and at most.
const PAGE_DEFAULT: i64 = 50;
const PAGE_MAX: i64 = 200;

/// An item of the API as an entry of the award use case's batch: every rule of an award,
/// bounds included, is the use case's.
fn entry(input: &AwardInput) -> BatchEntry {
    let award = HashtagAward {
        task: input.task.clone(),
        recipient: input.recipient.clone(),
        evidence: input.evidence.clone(),
        name: input.name.clone(),
        narrative: input.narrative.clone(),
    };
    BatchEntry::Words { award, allow_foreign_evidence: input.allow_foreign_evidence }
}

/// Prepares the items outside any write transaction (see [`award::prepare_batch`]).
fn prepare(
    conn: &mut SqliteConnection,
    state: &AppState,
    actor: &crate::app::access::Actor,
    items: &[AwardInput],
    now: i64,
) -> Vec<Result<Prepared, HashtagAwardError>> {
    let entries: Vec<BatchEntry> = items.iter().map(entry).collect();
    let opts = BatchOptions { by: actor.instructor_id, actor: Some(actor.clone()), ..Default::default() };
    award::prepare_batch(&state.pool, conn, &state.issuer(), &entries, &opts, now)
}

#[utoipa::path(post, path = "/api/v1/awards", tag = "awards", operation_id = "createAward",
    request_body = AwardInput,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "A key of 1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer and awards nothing more; another body with the same key gets 422.")),
    responses((status = 201, description = "Awarded; `Location` is the assertion URL.", body = AwardView)),
    security(("bearer" = ["awards:write"])))]
/// Award a Task's badge, with the Reader's rules: a second award of a Task to the same address is refused (409).
pub async fn create(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<AwardInput>,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::AwardsWrite)?;
    let key = idempotency_key(&req)?;
    let input = body.into_inner();
    let hash = request_hash("award", &input);
    let actor = caller.actor.clone();
    let st = state.clone();
    let st2 = state.clone();
    let (answer, replayed) = write_once(
        &state,
        &caller,
        key,
        hash,
        move |c, now| prepare(c, &st, &actor, std::slice::from_ref(&input), now),
        move |c, now, prepared| match award::commit_batch(c, prepared, now)?.pop() {
            Some(Ok((a, task))) => json_answer(201, &AwardView::new(&st2.base_url, &a, &task, now)),
            Some(Err(refused)) => {
                let p = Problem::from(refused);
                Ok(Answer { status: p.kind.status().as_u16(), body: p.body() })
            }
            None => Err(StoreError::Internal(anyhow::anyhow!("no award was prepared"))),
        },
    )
    .await?;
    if answer.status == 201 && !replayed {
        state.awarded();
    }
    let location = (answer.status == 201)
        .then(|| serde_json::from_str::<serde_json::Value>(&answer.body).ok())
        .flatten()
        .and_then(|v| v["url"].as_str().map(str::to_string));
    Ok(answer_response(answer, replayed, location))
}

#[utoipa::path(post, path = "/api/v1/awards/batch", tag = "awards", operation_id = "createAwardBatch",
    request_body = BatchInput,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "As for a single award: the whole batch is made once under one key.")),
    responses((status = 200, description = "Each award's outcome, in request order; refused ones carry a problem.", body = BatchResult)),
    security(("bearer" = ["awards:write"])))]
/// Award up to 500 badges at once. Each follows the rules of a single award; a refused one does not stop the others.
pub async fn batch(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<BatchInput>,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::AwardsWrite)?;
    let key = idempotency_key(&req)?;
    let input = body.into_inner();
    if input.awards.is_empty() || input.awards.len() > BATCH_MAX {
        return Err(Problem::invalid("awards", format!("a batch holds 1 to {BATCH_MAX} awards")));
    }
    let hash = request_hash("batch", &input);
    let actor = caller.actor.clone();
    let st = state.clone();
    let st2 = state.clone();
    let (answer, replayed) = write_once(
        &state,
        &caller,
        key,
        hash,
        move |c, now| prepare(c, &st, &actor, &input.awards, now),
        move |c, now, prepared| {
            let made = award::commit_batch(c, prepared, now)?;
            let mut out = BatchResult { awarded: 0, refused: 0, results: Vec::with_capacity(made.len()) };
            for (index, item) in made.into_iter().enumerate() {
                match item {
                    Ok((a, task)) => {
                        out.awarded += 1;
                        let view = AwardView::new(&st2.base_url, &a, &task, now);
                        out.results.push(BatchItem { index, status: 201, award: Some(view), problem: None });
                    }
                    Err(refused) => {
                        out.refused += 1;
                        let p = Problem::from(refused);
                        let status = p.kind.status().as_u16();
                        out.results.push(BatchItem { index, status, award: None, problem: Some(p.doc()) });
                    }
                }
            }
            json_answer(200, &out)
        },
    )
    .await?;
    if !replayed && answer.body.contains("\"status\":201") {
        state.awarded();
    }
    Ok(answer_response(answer, replayed, None))
}

#[utoipa::path(post, path = "/api/v1/awards/{id}/revoke", tag = "awards", operation_id = "revokeAward",
    params(("id" = String, Path, description = "The award's id")),
    request_body = RevokeInput,
    responses((status = 200, description = "Revoked; its verification page and the revocation list say so.", body = AwardView)),
    security(("bearer" = ["awards:write"])))]
/// Revoke an award, with a reason.
pub async fn revoke(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<RevokeInput>,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::AwardsWrite)?;
    let (id, reason, st) = (id.into_inner(), body.into_inner().reason, state.clone());
    let actor = caller.actor.clone();
    let view = db(&state, move |c| {
        let now = crate::clock::system_now();
        let a = store(award::revoke_as(c, &st.issuer(), Some(&actor), &id, &reason, now))?;
        let task = store(crate::db::courses::get_task(c, a.task_id))?;
        Ok(AwardView::new(&st.base_url, &a, &task, now))
    })
    .await?;
    state.awarded();
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(get, path = "/api/v1/awards/{id}", tag = "awards", operation_id = "getAward",
    params(("id" = String, Path, description = "The award's id")),
    responses((status = 200, description = "The award, its chain standing and proof, and its notifications.", body = AwardDetail)),
    security(("bearer" = ["read"])))]
/// Get an award with its status, chain proof and notification state.
pub async fn get(caller: Caller, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Read)?;
    let (id, st) = (id.into_inner(), state.clone());
    let detail = db(&state, move |c| {
        let now = crate::clock::system_now();
        let (a, task) = store(crate::db::awards::with_task(c, &id))?;
        let chain = store(st.ledger.status(c, a.id))?;
        let proof = store(st.ledger.proof(c, a.id))?;
        let notes = store(crate::notify::for_awards(c, &[a.id]))?;
        Ok(AwardDetail {
            award: AwardView::new(&st.base_url, &a, &task, now),
            chain: serde_json::to_value(chain).unwrap_or_default(),
            proof: proof.and_then(|p| serde_json::to_value(p).ok()),
            notifications: notes
                .into_iter()
                .map(|n| NotificationView {
                    kind: n.kind.to_string(),
                    status: n.status.to_string(),
                    attempts: n.attempts,
                    last_error: n.last_error,
                    updated_at: rfc3339(n.updated_at),
                })
                .collect(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(detail))
}

fn parse_time(field: &str, value: Option<&str>) -> Result<Option<i64>, Problem> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v.trim()).map(|d| d.timestamp()).map_err(|_| {
                Problem::invalid(field, format!("'{v}' is not an RFC 3339 time like 2026-11-30T12:00:00Z"))
            })
        })
        .transpose()
}

#[utoipa::path(get, path = "/api/v1/awards", tag = "awards", operation_id = "listAwards",
    params(ListQuery),
    responses((status = 200, description = "A page of awards, newest first.", body = AwardList)),
    security(("bearer" = ["read"])))]
/// List awards, filtered by task, recipient, time and state, with cursor pagination.
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Read)?;
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(PAGE_DEFAULT);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(Problem::invalid("limit", format!("limit is 1 to {PAGE_MAX}")));
    }
    let before_id = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            Problem::invalid("cursor", "not a cursor this API gave (use next_cursor as it was sent)")
        })?),
    };
    let recipient = match q.recipient.as_deref() {
        None => None,
        Some(r) => {
            Some(crate::domain::Email::parse(r).map_err(|e| Problem::invalid("recipient", e))?.as_str().to_string())
        }
    };
    let mut filter = AwardFilter {
        recipient,
        issued_after: parse_time("issued_after", q.issued_after.as_deref())?,
        issued_before: parse_time("issued_before", q.issued_before.as_deref())?,
        state: q.state.map(Into::into),
        before_id,
        ..Default::default()
    };
    let (task, st) = (q.task.clone(), state.clone());
    let page = db(&state, move |c| {
        let now = crate::clock::system_now();
        if let Some(tag) = task {
            let tag = crate::domain::Hashtag::parse(&tag).map_err(|e| Problem::invalid("task", e))?;
            match crate::db::courses::get_task_by_slug(c, tag.slug()) {
                Ok(t) => filter.task_id = Some(t.id),
                Err(StoreError::NotFound(_)) => return Ok(AwardList { awards: vec![], next_cursor: None }),
                Err(e) => return Err(e.into()),
            }
        }
        let page = store(crate::db::api::list_awards(c, &filter, now, limit))?;
        Ok(AwardList {
            awards: page.rows.iter().map(|(a, t)| AwardView::new(&st.base_url, a, t, now)).collect(),
            next_cursor: page.next.map(|n| n.to_string()),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}
