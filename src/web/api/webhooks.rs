//! Webhooks: register a URL to hear of awards, list them, remove one.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::problem::ProblemDoc;
use super::{Caller, Problem, db, rfc3339, store};
use crate::db::tokens::Scope;
use crate::db::webhooks::{Delivery, Event, Webhook};
use crate::web::AppState;

/// A URL to register.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"url": "https://registrar.example.edu/cairn-events"}))]
pub struct WebhookInput {
    /// Where events are POSTed: an https address that is not private, loopback, link-local
    /// or otherwise internal, in any spelling, and whose host name resolves only to public
    /// addresses. An origin listed in the instance's `allow_origins` is exempt and may use http.
    pub url: String,
}

/// A registered webhook.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: i64,
    #[schema(format = "uri")]
    pub url: String,
    /// The events it receives.
    pub events: Vec<String>,
    #[schema(format = "date-time")]
    pub created_at: String,
    /// The signing secret (`whsec_` and base64), shown only in the answer to registering.
    pub secret: Option<String>,
    /// The outcome of the latest delivery attempted, if any was (absent when registering).
    pub last_delivery: Option<LastDelivery>,
}

/// How the latest attempted delivery of a webhook went.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LastDelivery {
    /// The event's type, e.g. `award.created`.
    pub event: String,
    /// `sent`; `queued` (it failed and will be tried again); `failed` (refused for good: the
    /// receiver answered 4xx other than 408 and 429, or the address is not allowed); or
    /// `gave_up` (still failing when the retry period ran out).
    #[schema(example = "sent")]
    pub status: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// When the latest attempt was made.
    #[schema(format = "date-time")]
    pub at: String,
    /// Why the latest attempt failed, if it did.
    pub error: Option<String>,
}

impl LastDelivery {
    fn new(d: &Delivery) -> LastDelivery {
        LastDelivery {
            event: d.event.as_str().to_string(),
            status: d.status.as_str().to_string(),
            attempts: d.attempts,
            at: rfc3339(d.updated_at),
            error: d.last_error.clone(),
        }
    }
}

impl WebhookView {
    fn new(w: &Webhook, with_secret: bool, last: Option<&Delivery>) -> WebhookView {
        WebhookView {
            id: w.id,
            url: w.url.clone(),
            events: Event::WORDS.iter().map(|e| e.to_string()).collect(),
            created_at: rfc3339(w.created_at),
            secret: with_secret.then(|| w.secret.clone()),
            last_delivery: last.map(LastDelivery::new),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "createWebhook",
    request_body = WebhookInput,
    responses(
        (status = 201, description = "Registered; the answer carries the signing secret, shown only now. The token's owner is mailed that a webhook was created.", body = WebhookView),
        (status = 422, description = "The URL is refused, with the reason: not https (unless its origin is in `allow_origins`), a private, loopback, link-local or otherwise internal address in any spelling, or a host name that resolves to one or to nothing.", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:write"])))]
/// Register a URL that receives `award.created`, `award.revoked` and `award.recorded` events, signed as Standard Webhooks says. The URL is checked against the outbound address rules (and its host name resolved) before it is stored. Changing or resetting the owner's password disables every webhook of theirs.
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<WebhookInput>,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::WebhooksWrite)?;
    // Refused before the address is looked up.
    store(crate::app::webhooks::may_register(&caller.actor))?;
    let (who, now) = (caller.token.instructor_id, crate::clock::system_now());
    let policy = state.harvester.fetcher().config().policy.clone();
    let url = store(crate::app::webhooks::check_url(&policy, &body.into_inner().url).await)?;
    let actor = caller.actor.clone();
    let hook = db(&state, move |c| store(crate::app::webhooks::register(c, &actor, who, &url, now))).await?;
    tracing::info!(webhook = hook.id, instructor = who, token = caller.token.id, "webhook registered");
    // Queued in the outbox: a slow or absent mail server does not hold the request.
    let detail = format!("{} (id {}), registered with the API token \"{}\"", hook.url, hook.id, caller.token.name);
    let what = crate::app::instructors::Credential::Webhook;
    let queued = state
        .db(move |c| crate::app::instructors::queue_credential_notice(c, who, what, detail, "through the API", now));
    match queued.await {
        Ok(_) => state.notifier.wake.notify_one(),
        Err(e) => tracing::error!(error = %e, instructor = who, "queueing the credential notice failed"),
    }
    Ok(HttpResponse::Created().json(WebhookView::new(&hook, true, None)))
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "listWebhooks",
    responses((status = 200, description = "The token owner's webhooks in use (without their secrets), each with the outcome and error of its latest attempted delivery.", body = WebhookList)),
    security(("bearer" = ["read"])))]
/// List your webhooks.
pub async fn list(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Read)?;
    let who = caller.token.instructor_id;
    let views = db(&state, move |c| {
        let mut views = Vec::new();
        for w in store(crate::db::webhooks::list_for(c, who))? {
            let last = store(crate::db::webhooks::last_attempted(c, w.id))?;
            views.push(WebhookView::new(&w, false, last.as_ref()));
        }
        Ok(views)
    })
    .await?;
    Ok(HttpResponse::Ok().json(WebhookList { webhooks: views }))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "deleteWebhook",
    params(("id" = i64, Path, description = "The webhook's id")),
    responses((status = 204, description = "Removed; its queued events are dropped.")),
    security(("bearer" = ["webhooks:write"])))]
/// Remove a webhook.
pub async fn delete(caller: Caller, state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, Problem> {
    caller.require(Scope::WebhooksWrite)?;
    let (who, id, now) = (caller.token.instructor_id, id.into_inner(), crate::clock::system_now());
    let actor = caller.actor.clone();
    db(&state, move |c| store(crate::app::webhooks::remove(c, &actor, who, id, now))).await?;
    Ok(HttpResponse::NoContent().finish())
}
