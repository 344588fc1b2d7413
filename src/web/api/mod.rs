//! The JSON API under `/api/v1`, for scripts, LMSs and registrars: awards (one, a batch,
//! revoke, get, list), the course structure (read-only) and the Reader queue (tie, dismiss).
//!
//! Requests carry `Authorization: Bearer <token>` and nothing else: the session cookie is never
//! read here, so a browser signed in to the admin pages cannot be made to call the API, and a
//! token never opens an admin page (those read only the session). Each token has scopes and a
//! request budget per minute, reported in `RateLimit` / `RateLimit-Policy` headers. Errors are
//! problem details (`problem.rs`); writes run the same use cases as the Reader and the command
//! line; the OpenAPI document is generated from the handlers (`doc.rs`, with utoipa).

mod awards;
mod catalog;
mod doc;
mod idempotency;
mod problem;
mod reader;
pub mod tokens;
mod webhooks;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use diesel::SqliteConnection;

use super::AppState;
use crate::db::StoreResult;
use crate::db::tokens::{ApiToken, Scope};
pub use doc::openapi_json;
pub use problem::{Kind, Problem};

/// Largest JSON body: a batch of 500 awards with narratives.
const JSON_LIMIT: usize = 4 * 1024 * 1024;
/// Length of a rate-limit window.
const WINDOW_SECS: i64 = 60;
/// Tokens a limiter remembers at most; past it, finished windows are dropped.
const LIMITER_ENTRIES: usize = 100_000;

/// The API's shared state: each token's requests in the current window.
pub struct ApiState {
    per_minute: u32,
    windows: Mutex<HashMap<i64, (i64, u32)>>,
}

/// Where a token stands in its window, sent back in the rate-limit headers.
#[derive(Debug, Clone, Copy)]
struct Quota {
    limit: u32,
    remaining: u32,
    reset: i64,
}

impl ApiState {
    pub fn new(per_minute: u32) -> ApiState {
        ApiState { per_minute: per_minute.max(1), windows: Mutex::new(HashMap::new()) }
    }

    /// Counts a request of `token` at `now`: its quota, and whether it is over.
    fn count(&self, token: i64, now: i64) -> (Quota, bool) {
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() >= LIMITER_ENTRIES && !w.contains_key(&token) {
            w.retain(|_, (start, _)| now - *start < WINDOW_SECS);
        }
        let e = w.entry(token).or_insert((now, 0));
        if now - e.0 >= WINDOW_SECS {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
        let quota = Quota {
            limit: self.per_minute,
            remaining: self.per_minute.saturating_sub(e.1),
            reset: (e.0 + WINDOW_SECS - now).max(1),
        };
        (quota, e.1 > self.per_minute)
    }
}

/// The token a request was made with, checked, counted and within its budget.
pub struct Caller {
    pub token: ApiToken,
    /// The token's instructor with their roles, narrowed to the token's courses if it names
    /// some.
    pub actor: crate::app::access::Actor,
}

impl Caller {
    /// Refuses the request unless the token holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), Problem> {
        if self.token.has(scope) {
            Ok(())
        } else {
            Err(Problem::new(Kind::InsufficientScope, format!("this needs a token with the scope '{scope}'")))
        }
    }
}

/// The token of `Authorization: Bearer <token>`, if the header has that form.
fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string()).filter(|t| !t.is_empty())
}

impl FromRequest for Caller {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, Problem>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let Some(secret) = bearer(&req) else {
                return Err(Problem::new(Kind::Unauthorized, "send a token as Authorization: Bearer <token>"));
            };
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| Problem::internal(anyhow::anyhow!("the application state is missing")))?;
            let addr = state.client_ip(&req).map(|ip| ip.to_string());
            let now = crate::clock::system_now();
            let pool = state.pool.clone();
            let (token, actor) = web::block(move || {
                let mut conn = pool.get().map_err(|e| Problem::from(crate::db::StoreError::from(e)))?;
                let token = crate::app::tokens::authenticate(&mut conn, &secret, addr.as_deref(), now)
                    .map_err(Problem::from)?;
                let actor = crate::app::tokens::actor(&mut conn, &token, addr).map_err(Problem::from)?;
                Ok::<_, Problem>((token, actor))
            })
            .await??;
            let (quota, over) = state.api.count(token.id, now);
            req.extensions_mut().insert(quota);
            if over {
                return Err(Problem {
                    retry_after: Some(quota.reset as u64),
                    ..Problem::new(
                        Kind::RateLimited,
                        format!("this token may make {} requests a minute; wait {} s", quota.limit, quota.reset),
                    )
                });
            }
            Ok(Caller { token, actor })
        })
    }
}

/// Middleware: adds the token's `RateLimit` and `RateLimit-Policy` headers to every answer.
async fn rate_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let quota = res.request().extensions().get::<Quota>().copied();
    if let Some(q) = quota {
        let h = res.headers_mut();
        let policy = format!("\"per-token\";q={};w={WINDOW_SECS}", q.limit);
        let now = format!("\"per-token\";r={};t={}", q.remaining, q.reset);
        if let (Ok(p), Ok(n)) = (HeaderValue::from_str(&policy), HeaderValue::from_str(&now)) {
            h.insert(header::HeaderName::from_static("ratelimit-policy"), p);
            h.insert(header::HeaderName::from_static("ratelimit"), n);
        }
    }
    Ok(res)
}

/// Runs a store function on a pooled connection off the async executor.
async fn db<T, F>(state: &AppState, f: F) -> Result<T, Problem>
where
    T: Send + 'static,
    F: FnOnce(&mut SqliteConnection) -> Result<T, Problem> + Send + 'static,
{
    let pool = state.pool.clone();
    web::block(move || {
        let mut conn = pool.get().map_err(|e| Problem::from(crate::db::StoreError::from(e)))?;
        f(&mut conn)
    })
    .await?
}

/// A store function's result as a problem.
fn store<T>(r: StoreResult<T>) -> Result<T, Problem> {
    r.map_err(Problem::from)
}

async fn not_found() -> Result<actix_web::HttpResponse, Problem> {
    Err(Problem::new(Kind::NotFound, "no such API resource"))
}

async fn method_not_allowed() -> Result<actix_web::HttpResponse, Problem> {
    Err(Problem::new(Kind::MethodNotAllowed, "this resource does not answer that method"))
}

/// An API resource at `path` whose other methods get 405.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

use super::rfc3339;

/// The API's routes, under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .app_data(web::JsonConfig::default().limit(JSON_LIMIT).error_handler(problem::json_error))
            .app_data(web::QueryConfig::default().error_handler(problem::query_error))
            .app_data(web::PathConfig::default().error_handler(problem::path_error))
            .wrap(actix_web::middleware::from_fn(rate_headers))
            .service(resource("/openapi.json").route(web::get().to(doc::openapi)))
            .service(resource("/reference").route(web::get().to(doc::reference)))
            .service(resource("/awards").route(web::post().to(awards::create)).route(web::get().to(awards::list)))
            .service(resource("/awards/batch").route(web::post().to(awards::batch)))
            .service(resource("/awards/{id}").route(web::get().to(awards::get)))
            .service(resource("/awards/{id}/revoke").route(web::post().to(awards::revoke)))
            .service(resource("/courses").route(web::get().to(catalog::courses)))
            .service(resource("/courses/{id}").route(web::get().to(catalog::course)))
            .service(resource("/modules").route(web::get().to(catalog::modules)))
            .service(resource("/tasks").route(web::get().to(catalog::tasks)))
            .service(resource("/reader").route(web::get().to(reader::queue)))
            .service(resource("/reader/{link_id}/tie").route(web::post().to(reader::tie)))
            .service(resource("/reader/{link_id}/dismiss").route(web::post().to(reader::dismiss)))
            .service(resource("/webhooks").route(web::post().to(webhooks::create)).route(web::get().to(webhooks::list)))
            .service(resource("/webhooks/{id}").route(web::delete().to(webhooks::delete)))
            .default_service(web::to(not_found)),
    );
    tokens::configure(cfg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_limited_per_window_and_told_when_it_resets() {
        let s = ApiState::new(2);
        assert_eq!(s.count(1, 100).0.remaining, 1);
        assert!(!s.count(1, 110).1);
        let (q, over) = s.count(1, 120);
        assert!(over);
        assert_eq!((q.remaining, q.reset), (0, 40));
        assert!(!s.count(2, 120).1, "another token has its own budget");
        assert!(!s.count(1, 160).1, "a new window starts afresh");
    }
}
