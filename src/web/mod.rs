//! HTTP: shared state, page context and the route table. Handlers are thin: they parse
//! input, call the store, and render a template or redirect.

mod admin;
mod badges;
mod chain;
mod feeds;
mod join;
mod login;
mod multipart;
mod peers;
mod public;
mod reader;
mod syndication;

use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use diesel::SqliteConnection;

use crate::auth::{self, LoginThrottle};
use crate::db::{DbPool, StoreResult};
use crate::error::AppError;

/// State shared by all handlers.
pub struct AppState {
    pub pool: DbPool,
    /// Public base URL without a trailing slash.
    pub base_url: String,
    pub throttle: LoginThrottle,
    pub harvester: crate::harvest::Harvester,
    pub mailer: crate::email::Mailer,
    /// Rasterised badge artwork, so an award does not redraw it.
    pub raster: crate::badges::bake::RasterCache,
    /// The Issuer's contact address when the institution profile has none.
    pub issuer_email: String,
    /// This institution's copy of the recognition chain.
    pub ledger: std::sync::Arc<crate::ledger::Ledger>,
    /// Delivers notifications (woken after an award).
    pub notifier: crate::notify::Notifier,
    /// Received Webmentions per client address.
    pub mention_rate: crate::notify::RateLimit,
    /// Requests from peers per client address.
    pub peer_rate: crate::notify::RateLimit,
    /// The peer worker (woken after an award).
    pub peers: crate::peers::Peers,
}

impl AppState {
    /// Wakes the background workers after an award or revocation.
    pub fn awarded(&self) {
        self.ledger.wake.notify_one();
        self.notifier.wake.notify_one();
        self.peers.wake.notify_one();
    }
}

impl AppState {
    /// What issuing a badge needs.
    pub fn issuer(&self) -> crate::badges::award::Issuer<'_> {
        crate::badges::award::Issuer { base: &self.base_url, raster: &self.raster, signer: self.ledger.key() }
    }
}

impl AppState {
    /// Runs a store function on a pooled connection off the async executor.
    pub async fn db<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        let result = web::block(move || -> StoreResult<T> {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await?;
        result.map_err(Into::into)
    }
}

/// What every page's layout needs.
pub struct Page {
    pub title: String,
    pub signed_in: bool,
    pub csrf: String,
    pub flash: Option<String>,
}

impl Page {
    /// Context for a page. Anonymous visitors get no CSRF token (and so no cookie) unless
    /// the page has a form: see [`Page::with_form`].
    pub fn new(session: &Session, title: impl Into<String>) -> Page {
        let signed_in = auth::instructor_id(session).is_some();
        Page {
            title: title.into(),
            signed_in,
            csrf: if signed_in { auth::csrf_token(session) } else { String::new() },
            flash: auth::take_flash(session),
        }
    }

    /// Context for a page with a form, whoever views it.
    pub fn with_form(session: &Session, title: impl Into<String>) -> Page {
        Page { csrf: auth::csrf_token(session), ..Page::new(session, title) }
    }
}

/// Renders a template as an HTML page.
pub fn render<T: Template>(t: &T) -> Result<HttpResponse, AppError> {
    render_status(t, StatusCode::OK)
}

/// Renders a template with a status; error statuses are left as rendered (a form shown
/// again with its errors), not replaced by the generic error page.
pub fn render_status<T: Template>(t: &T, status: StatusCode) -> Result<HttpResponse, AppError> {
    let body = t.render().map_err(|e| AppError::Internal(e.into()))?;
    let mut res = HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body);
    crate::error::mark_final(&mut res);
    Ok(res)
}

/// 303 See Other to `to`.
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, to.to_string())).finish()
}

/// A return path from a form: only local instructor pages are accepted.
pub fn safe_back(back: &str, fallback: &str) -> String {
    if back.starts_with("/admin") && !back.contains("//") && !back.contains('\\') {
        back.to_string()
    } else {
        fallback.to_string()
    }
}

const STYLE_CSS: &str = include_str!("../../static/style.css");
const APP_JS: &str = include_str!("../../static/app.js");

async fn style_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLE_CSS)
}

async fn app_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(APP_JS)
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound("page"))
}

/// Every route, in one place.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/static/style.css", web::get().to(style_css))
        .route("/static/app.js", web::get().to(app_js));
    login::configure(cfg);
    public::configure(cfg);
    syndication::configure(cfg);
    join::configure(cfg);
    admin::configure(cfg);
    feeds::configure(cfg);
    chain::configure(cfg);
    badges::configure(cfg);
    reader::configure(cfg);
    peers::configure(cfg);
    cfg.default_service(web::to(not_found));
}
