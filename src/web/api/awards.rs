//! Awards: award one, a batch, revoke, get one with its chain proof and notifications, list.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use diesel::SqliteConnection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::problem::{Problem, ProblemDoc, stored_response};
use super::{Caller, db, rfc3339, store};
use crate::app::award::{self, BatchEntry, BatchOptions, HashtagAward, HashtagAwardError, Prepared};
use crate::app::tokens::{self, Answer};
use crate::db::api::{AwardFilter, AwardState};
use crate::db::awards::Award;
use crate::db::courses::Task;
use crate::db::tokens::Scope;
use crate::db::{StoreError, StoreResult};
use crate::web::AppState;

/// Most awards in one batch.
pub const BATCH_MAX: usize = 500;
/// Awards a list page holds by default and at most.
const PAGE_DEFAULT: i64 = 50;
const PAGE_MAX: i64 = 200;

/// An award to make.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"task": "#el30-data", "recipient": "learner@example.edu",
    "evidence": "https://blog.example.org/my-data-post", "narrative": "A clear map of the course's data."}))]
pub struct AwardInput {
    /// The Task's hashtag, such as `#el30-data`.
    pub task: String,
    /// The recipient's email address (published only as a salted hash).
    pub recipient: String,
    /// The evidence: the URL of the learner's post (http or https).
    pub evidence: String,
    /// The recipient's name, shown on the verification page (at most 200 characters, one line, no control characters).
    #[serde(default)]
    pub name: Option<String>,
    /// Why the badge is awarded (at most 10,000 characters; line breaks but no other control characters).
    #[serde(default)]
    pub narrative: Option<String>,
    /// Award even when the evidence is a post Cairn harvested from the recipient's feed but
    /// found on another site ("posted elsewhere"); without it such an award is refused (409).
    /// Evidence that is another learner's post is refused all the same.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_foreign_evidence: bool,
}

/// An award's standing.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Valid,
    Revoked,
    Expired,
}

impl From<State> for AwardState {
    fn from(s: State) -> AwardState {
        match s {
            State::Valid => AwardState::Valid,
            State::Revoked => AwardState::Revoked,
            State::Expired => AwardState::Expired,
        }
    }
}

/// An award (an Open Badges Assertion).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AwardView {
    /// The award's id, the last segment of its URL.
    pub id: String,
    /// The assertion URL (its verification page for browsers).
    #[schema(format = "uri")]
    pub url: String,
    /// The Task's hashtag.
    pub task: String,
    pub task_id: i64,
    pub recipient: String,
    pub name: Option<String>,
    pub evidence: Option<String>,
    pub narrative: Option<String>,
    #[schema(format = "date-time")]
    pub issued_on: String,
    #[schema(format = "date-time")]
    pub expires: Option<String>,
    pub state: State,
    #[schema(format = "date-time")]
    pub revoked_at: Option<String>,
    pub revocation_reason: Option<String>,
}

impl AwardView {
    pub fn new(base: &str, a: &Award, task: &Task, now: i64) -> AwardView {
        let state = if a.is_revoked() {
            State::Revoked
        } else if a.is_expired(now) {
            State::Expired
        } else {
            State::Valid
        };
        AwardView {
            id: a.public_id.clone(),
            url: crate::badges::ob::assertion_url(base, &a.public_id),
            task: task.hashtag.clone(),
            task_id: task.id,
            recipient: a.recipient_email.clone(),
            name: a.recipient_name.clone(),
            evidence: a.evidence_url.clone(),
            narrative: a.narrative.clone(),
            issued_on: rfc3339(a.issued_on),
            expires: a.expires.map(rfc3339),
            state,
            revoked_at: a.revoked_at.map(rfc3339),
            revocation_reason: a.revocation_reason.clone(),
        }
    }
}

/// A notification of an award (a Webmention to the evidence, the badge email).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationView {
    /// `webmention` or `email`.
    pub kind: String,
    /// `queued`, `sent`, `no_endpoint`, `failed` or `gave_up`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    #[schema(format = "date-time")]
    pub updated_at: String,
}

/// An award with where it stands on the recognition chain and how its notifications went.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AwardDetail {
    pub award: AwardView,
    /// Where the award stands on the chain: `{"status": "none" | "pending"}` or
    /// `{"status": "recorded", "height", "hash", "depth", "final"}`.
    #[schema(value_type = Object)]
    pub chain: serde_json::Value,
    /// The chain proof (record, Merkle path, block header), as at `/assertions/{id}/proof`;
    /// null for awards made before the chain.
    #[schema(value_type = Option<Object>)]
    pub proof: Option<serde_json::Value>,
    pub notifications: Vec<NotificationView>,
}

/// Up to 500 awards to make together.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchInput {
    #[schema(max_items = 500)]
    pub awards: Vec<AwardInput>,
}

/// What became of one award of a batch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchItem {
    /// Its position in the request, from 0.
    pub index: usize,
    /// 201 when awarded, else the status a single award would have had.
    pub status: u16,
    pub award: Option<AwardView>,
    pub problem: Option<ProblemDoc>,
}

/// A batch's outcome, item by item.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchResult {
    pub awarded: usize,
    pub refused: usize,
    pub results: Vec<BatchItem>,
}

/// Why an award is revoked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"reason": "The post was copied."}))]
pub struct RevokeInput {
    /// Shown on the verification page and in the revocation list.
    pub reason: String,
}

/// A page of awards, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AwardList {
    pub awards: Vec<AwardView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Filters of the award list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this Task's awards (its hashtag, such as `#el30-data`).
    pub task: Option<String>,
    /// Only awards to this email address.
    pub recipient: Option<String>,
    /// Only awards issued at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub issued_after: Option<String>,
    /// Only awards issued before this time (RFC 3339).
    #[param(format = DateTime)]
    pub issued_before: Option<String>,
    /// Only awards in this state.
    pub state: Option<State>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Awards per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// The `Idempotency-Key` header, checked.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, Problem> {
    let Some(v) = req.headers().get("idempotency-key") else { return Ok(None) };
    let key = v.to_str().map_err(|_| Problem::invalid("Idempotency-Key", "the key must be visible ASCII"))?;
    store(tokens::check_key(key))?;
    Ok(Some(key.to_string()))
}

/// The request's fingerprint for idempotency: the operation and its body, re-serialised so
/// that spacing and key order do not matter.
fn request_hash(op: &str, body: &impl Serialize) -> String {
    let value = serde_json::to_value(body).unwrap_or_default();
    hex::encode(Sha256::digest(format!("{op}\n{value}").as_bytes()))
}

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
    items: &[AwardInput],
    now: i64,
) -> Vec<Result<Prepared, HashtagAwardError>> {
    let entries: Vec<BatchEntry> = items.iter().map(entry).collect();
    award::prepare_batch(&state.pool, conn, &state.issuer(), &entries, &BatchOptions::default(), now)
}

fn json_answer(status: u16, body: &impl Serialize) -> StoreResult<Answer> {
    let body = serde_json::to_string(body).map_err(|e| StoreError::Internal(e.into()))?;
    Ok(Answer { status, body })
}

/// Runs `write` under the request's idempotency key, if it has one, with what `prepare` made
/// outside the write transaction. A retry whose answer is already stored skips both.
async fn write_once<P: Send + 'static>(
    state: &web::Data<AppState>,
    caller: &Caller,
    key: Option<String>,
    hash: String,
    prepare: impl FnOnce(&mut SqliteConnection, i64) -> P + Send + 'static,
    write: impl FnOnce(&mut SqliteConnection, i64, P) -> StoreResult<Answer> + Send + 'static,
) -> Result<(Answer, bool), Problem> {
    let (token_id, now) = (caller.token.id, crate::db::now());
    db(state, move |c| {
        if let Some(k) = &key
            && let Some(answer) = tokens::replay(c, token_id, k, &hash).map_err(Problem::from)?
        {
            return Ok((answer, true));
        }
        let prepared = prepare(c, now);
        match key {
            Some(k) => {
                tokens::idempotent(c, token_id, &k, &hash, now, |c| write(c, now, prepared)).map_err(Problem::from)
            }
            None => crate::db::write_tx(c, |c| write(c, now, prepared)).map(|a| (a, false)).map_err(Problem::from),
        }
    })
    .await
}

/// The response of a write's answer, marked when it is a replay.
fn answer_response(answer: Answer, replayed: bool, location: Option<String>) -> HttpResponse {
    let mut res = stored_response(answer.status, answer.body);
    if let Some(l) = location.and_then(|l| header::HeaderValue::from_str(&l).ok()) {
        res.headers_mut().insert(header::LOCATION, l);
    }
    if replayed {
        res.headers_mut()
            .insert(header::HeaderName::from_static("idempotent-replayed"), header::HeaderValue::from_static("true"));
    }
    res
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
    let st = state.clone();
    let st2 = state.clone();
    let (answer, replayed) = write_once(
        &state,
        &caller,
        key,
        hash,
        move |c, now| prepare(c, &st, std::slice::from_ref(&input), now),
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
    let st = state.clone();
    let st2 = state.clone();
    let (answer, replayed) = write_once(
        &state,
        &caller,
        key,
        hash,
        move |c, now| prepare(c, &st, &input.awards, now),
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
    let view = db(&state, move |c| {
        let now = crate::db::now();
        let a = store(award::revoke(c, &st.issuer(), &id, &reason, now))?;
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
        let now = crate::db::now();
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
        let now = crate::db::now();
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
