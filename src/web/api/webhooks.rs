//! Webhooks: register a URL to hear of awards, list them, remove one.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Caller, Problem, db, rfc3339, store};
use crate::db::tokens::Scope;
use crate::db::webhooks::{Event, Webhook};
use crate::web::AppState;

/// A URL to register.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"url": "https://registrar.example.edu/cairn-events"}))]
pub struct WebhookInput {
    /// Where events are POSTed (http or https; checked against the outbound address policy).
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
}

impl WebhookView {
    fn new(w: &Webhook, with_secret: bool) -> WebhookView {
        WebhookView {
            id: w.id,
            url: w.url.clone(),
            events: Event::WORDS.iter().map(|e| e.to_string()).collect(),
            created_at: rfc3339(w.created_at),
            secret: with_secret.then(|| w.secret.clone()),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "createWebhook",
    request_body = WebhookInput,
    responses((status = 201, description = "Registered; the answer carries the signing secret, shown only now.", body = WebhookView)),
    security(("bearer" = ["webhooks:write"])))]
/// Register a URL that receives `award.created`, `award.revoked` and `award.recorded` events, signed as Standard Webhooks says.
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<WebhookInput>,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::WebhooksWrite)?;
    let (who, url, now) = (caller.token.instructor_id, body.into_inner().url, crate::db::now());
    let hook = db(&state, move |c| store(crate::app::webhooks::register(c, who, &url, now))).await?;
    Ok(HttpResponse::Created().json(WebhookView::new(&hook, true)))
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "listWebhooks",
    responses((status = 200, description = "The token owner's webhooks (without their secrets).", body = WebhookList)),
    security(("bearer" = ["read"])))]
/// List your webhooks.
pub async fn list(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Read)?;
    let who = caller.token.instructor_id;
    let hooks = db(&state, move |c| store(crate::db::webhooks::list_for(c, who))).await?;
    Ok(HttpResponse::Ok().json(WebhookList { webhooks: hooks.iter().map(|w| WebhookView::new(w, false)).collect() }))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "deleteWebhook",
    params(("id" = i64, Path, description = "The webhook's id")),
    responses((status = 204, description = "Removed; its queued events are dropped.")),
    security(("bearer" = ["webhooks:write"])))]
/// Remove a webhook.
pub async fn delete(caller: Caller, state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, Problem> {
    caller.require(Scope::WebhooksWrite)?;
    let (who, id, now) = (caller.token.instructor_id, id.into_inner(), crate::db::now());
    db(&state, move |c| store(crate::app::webhooks::remove(c, who, id, now))).await?;
    Ok(HttpResponse::NoContent().finish())
}
