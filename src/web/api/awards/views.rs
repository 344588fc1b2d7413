//! The JSON the award endpoints take and give, with their OpenAPI schemas.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::super::problem::ProblemDoc;
use super::super::rfc3339;
use crate::db::api::AwardState;
use crate::db::awards::Award;
use crate::db::courses::Task;

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
        let state = match a.state_at(now) {
            AwardState::Valid => State::Valid,
            AwardState::Revoked => State::Revoked,
            AwardState::Expired => State::Expired,
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
