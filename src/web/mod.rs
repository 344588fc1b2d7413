//! HTTP: shared state, page context and the route table. Handlers are thin: they parse
//! input, call the store, and render a template or redirect.

mod admin;
pub mod api;
pub mod auth;
mod badges;
mod cache;
mod chain;
mod charts;
mod demo;
pub mod error;
mod feeds;
pub mod health;
mod join;
mod learners;
mod links;
pub mod login;
pub mod metrics;
mod multipart;
mod newsletter;
pub mod oidc;
mod pager;
mod peers;
mod portfolio;
mod public;
mod qr;
mod reader;
pub mod request_id;
mod roster;
mod syndication;

use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use diesel::SqliteConnection;

use crate::db::{DbPool, StoreResult};
use auth::LoginThrottle;
pub use cache::{DocCache, FRESH_FOR, after_changes};
use error::AppError;

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
    /// Proxies whose `X-Forwarded-For` names the client (see [`client_ip`]).
    pub trusted_proxies: crate::config::TrustedProxies,
    /// Password hashes computed at once; more wait briefly, then get 429.
    pub hashing: std::sync::Arc<tokio::sync::Semaphore>,
    /// Limits of the join form.
    pub join: crate::config::JoinSettings,
    /// Join attempts per client address (hourly).
    pub join_rate: crate::notify::RateLimit,
    /// The public Open Badges documents and verification pages, as sent.
    pub docs: DocCache,
    /// Builds and sends the course newsletters.
    pub newsletter: crate::app::newsletter::Newsletter,
    /// The JSON API's per-token request budgets.
    pub api: api::ApiState,
    /// The roster import running, one at a time.
    pub imports: crate::app::import::Running,
    /// Sign-in through the institution's OpenID Connect provider, when `[oidc]` is set.
    pub sso: Option<std::sync::Arc<crate::app::sso::Sso>>,
    /// Sign-ins through the provider started per client address (each keeps a flow in a session).
    pub sso_rate: crate::notify::RateLimit,
    /// Whether the email and password form signs in (`[auth] passwords`).
    pub passwords: bool,
    /// What `/readyz` checks beyond the pool and the ledger.
    pub health: crate::app::health::Probe,
}

/// How long a login waits for a free password-hashing slot before it is told to retry.
const HASH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A valid hash to verify against when the account does not exist, so that unknown and
/// known emails take the same time.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    crate::app::instructors::hash_password("not a real password, only for timing").unwrap_or_default()
});

impl AppState {
    /// The client's address, for per-client limits.
    pub fn client_ip(&self, req: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
        client_ip(req, &self.trusted_proxies)
    }

    /// Runs argon2 on a blocking thread, holding no database connection, at most
    /// `hashing` at a time.
    async fn hash_work<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
        let permit = tokio::time::timeout(HASH_WAIT, self.hashing.clone().acquire_owned())
            .await
            .map_err(|_| AppError::Limited {
                message: "the server is busy signing other people in; try again in a few seconds".into(),
                retry_after: 2,
            })?
            .map_err(|e| AppError::Internal(e.into()))?;
        let out = web::block(move || {
            let out = f();
            drop(permit);
            out
        })
        .await?;
        Ok(out)
    }

    /// Checks a password against a stored hash (or a dummy one when there is no account).
    pub async fn verify_password(&self, password: String, hash: Option<String>) -> Result<bool, AppError> {
        self.hash_work(move || {
            crate::app::instructors::verify_password(&password, hash.as_deref().unwrap_or(DUMMY_HASH.as_str()))
        })
        .await
    }

    /// Hashes a new password.
    pub async fn hash_password(&self, password: String) -> Result<String, AppError> {
        Ok(self.hash_work(move || crate::app::instructors::hash_password(&password)).await??)
    }
}

/// The address of the client that sent `req`. The peer address is the client unless it is a
/// trusted proxy; then `X-Forwarded-For` is read from the right, skipping trusted proxies, and
/// the first other address is the client (left of it, anyone could have written anything).
/// Every per-client limit (login, join, Webmention, peers) goes through this.
pub fn client_ip(req: &actix_web::HttpRequest, trusted: &crate::config::TrustedProxies) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip().to_canonical())?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let mut client = peer;
    for value in req.headers().get_all("x-forwarded-for").collect::<Vec<_>>().into_iter().rev() {
        let Ok(value) = value.to_str() else { return Some(client) };
        for hop in value.rsplit(',') {
            let Ok(ip) = hop.trim().parse::<std::net::IpAddr>() else { return Some(client) };
            let ip = ip.to_canonical();
            if !trusted.contains(&ip) {
                return Some(ip);
            }
            client = ip;
        }
    }
    Some(client)
}

/// Where to go after signing in: `next` only when it is a path on this site, checked after
/// parsing it as a URL relative to the base URL; anything else goes to `/admin`. Control
/// characters, backslashes, `//` and schemes are refused outright, since browsers read them
/// in ways a parser may not.
pub fn local_next(base: &str, next: &str) -> String {
    const FALLBACK: &str = "/admin";
    let next = next.trim_matches(' ');
    if next.is_empty()
        || next.len() > 2048
        || !next.starts_with('/')
        || next.starts_with("//")
        || next.chars().any(|c| c.is_control() || c == '\\')
    {
        return FALLBACK.into();
    }
    let (Ok(base), Ok(joined)) = (url::Url::parse(base), url::Url::parse(base).and_then(|b| b.join(next))) else {
        return FALLBACK.into();
    };
    if joined.origin() != base.origin() || joined.username() != "" || joined.password().is_some() {
        return FALLBACK.into();
    }
    let mut out = joined.path().to_string();
    if let Some(q) = joined.query() {
        out.push('?');
        out.push_str(q);
    }
    if !out.starts_with('/') || out.starts_with("//") { FALLBACK.into() } else { out }
}

/// A request path fit for logs: secret segments (confirmation and subscription tokens) are
/// replaced by `[redacted]`.
pub fn redact_path(path: &str) -> String {
    const SECRET_AFTER: [&str; 6] = [
        "/join/confirm/",
        "/subscription/",
        "/forget/",
        "/newsletter/confirm/",
        "/newsletter/unsubscribe/",
        "/invitations/",
    ];
    for prefix in SECRET_AFTER {
        if let Some(rest) = path.strip_prefix(prefix) {
            let tail = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
            return format!("{prefix}[redacted]{tail}");
        }
    }
    path.to_string()
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
        // The request's span goes along, so that what the store logs carries its id.
        let span = tracing::Span::current();
        let result = web::block(move || -> StoreResult<T> {
            let _span = span.enter();
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
    /// Something the instructor should do, with where to do it (text, link, link text).
    pub notice: Option<(String, &'static str, &'static str)>,
}

impl Page {
    /// Asks for the issuer profile's missing fields, when it lacks any (`missing` as
    /// `app::institution::missing` gives them).
    pub fn ask_for_profile(mut self, missing: &[&'static str]) -> Page {
        if !missing.is_empty() {
            let list = crate::app::institution::in_words(missing);
            self.notice = Some((
                format!(
                    "The institution profile lacks {list}. Every badge names the institution as its issuer, and the \
                     first award waits until the profile is complete."
                ),
                crate::app::institution::PROFILE_FORM,
                "Complete the institution profile",
            ));
        }
        self
    }

    /// Context for a page. Anonymous visitors get no CSRF token (and so no cookie) unless
    /// the page has a form: see [`Page::with_form`].
    pub fn new(session: &Session, title: impl Into<String>) -> Page {
        let signed_in = auth::instructor_id(session).is_some();
        Page {
            title: title.into(),
            signed_in,
            csrf: if signed_in { auth::csrf_token(session) } else { String::new() },
            flash: auth::take_flash(session),
            notice: None,
        }
    }

    /// Context for a page with a form, whoever views it.
    pub fn with_form(session: &Session, title: impl Into<String>) -> Page {
        Page { csrf: auth::csrf_token(session), ..Page::new(session, title) }
    }
}

/// Seconds since the epoch as RFC 3339 (UTC, whole seconds), for feeds, JSON and `datetime`.
pub(crate) fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Seconds since the epoch as a day people read ("30 November 2026").
pub(crate) fn day(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().format("%-d %B %Y").to_string()
}

/// A day stored as `YYYY-MM-DD`, in the style of [`day`] ("7 December 2026"); anything else
/// as it is.
pub(crate) fn date(iso: &str) -> String {
    chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d")
        .map(|d| d.format("%-d %B %Y").to_string())
        .unwrap_or_else(|_| iso.to_string())
}

/// Seconds since the epoch as a day and a time people read ("7 December 2026, 21:58 UTC").
pub(crate) fn moment(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().format("%-d %B %Y, %H:%M UTC").to_string()
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
    crate::web::error::mark_final(&mut res);
    Ok(res)
}

/// 303 See Other to `to`.
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, to.to_string())).finish()
}

/// Serves artwork with headers that keep an SVG inert even if opened directly.
pub fn image_response(bytes: Vec<u8>, mime: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(mime.to_string())
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; sandbox"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(bytes)
}

/// The `Link` header that advertises the Webmention endpoint.
pub fn webmention_link(base: &str) -> (header::HeaderName, header::HeaderValue) {
    let v = header::HeaderValue::from_str(&format!("<{base}/webmention>; rel=\"webmention\""))
        .unwrap_or(header::HeaderValue::from_static("</webmention>; rel=\"webmention\""));
    (header::LINK, v)
}

/// A page that confirms by a POST from its button, as the mail's link leads to: a GET only
/// shows the page, so a mail scanner following links confirms nothing.
#[derive(Template)]
#[template(path = "confirm_link.html")]
pub(crate) struct ConfirmLinkPage {
    pub page: Page,
    pub heading: &'static str,
    pub message: String,
    /// Where the button POSTs: the link itself.
    pub action: String,
    pub button: &'static str,
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

/// Answers HEAD exactly as GET, less the body, on every route: uptime monitors and link
/// checkers ask with HEAD. The request is routed as a GET; the HTTP layer knows it was HEAD and
/// sends the headers (length included) without the body.
pub async fn head_as_get(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    if req.method() == actix_web::http::Method::HEAD {
        req.head_mut().method = actix_web::http::Method::GET;
    }
    next.call(req).await
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
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/static/style.css", web::get().to(style_css))
        .route("/static/app.js", web::get().to(app_js));
    login::configure(cfg);
    oidc::configure(cfg);
    public::configure(cfg);
    syndication::configure(cfg);
    portfolio::configure(cfg);
    join::configure(cfg);
    admin::configure(cfg);
    roster::configure(cfg);
    feeds::configure(cfg);
    links::configure(cfg);
    chain::configure(cfg);
    badges::configure(cfg);
    reader::configure(cfg);
    peers::configure(cfg);
    learners::configure(cfg);
    newsletter::configure(cfg);
    api::configure(cfg);
    demo::configure(cfg);
    cfg.default_service(web::to(not_found));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_kept_only_for_same_site_paths() {
        let base = "http://127.0.0.1:8080";
        for ok in ["/admin/institution", "/admin/reader?page=2&task=3", "/tasks/el30-data"] {
            assert_eq!(local_next(base, ok), ok);
        }
        for bad in [
            "/\t/evil.example",
            "//evil",
            "/\\evil",
            "https://evil",
            "http://127.0.0.1:8080.evil.example/",
            "javascript:alert(1)",
            "/%2F/evil",
            "\\\\evil",
            "",
            "admin",
            "/a\r\nSet-Cookie: x=1",
        ] {
            let got = local_next(base, bad);
            assert!(got.starts_with('/') && !got.starts_with("//") && !got.contains('\\'), "{bad:?} -> {got}");
            assert!(got == "/admin" || got.starts_with("/%2F"), "{bad:?} -> {got}");
        }
    }

    #[test]
    fn token_paths_are_redacted() {
        assert_eq!(redact_path("/join/confirm/abc123"), "/join/confirm/[redacted]");
        assert_eq!(redact_path("/subscription/abc123/remove"), "/subscription/[redacted]/remove");
        assert_eq!(redact_path("/forget/abc123"), "/forget/[redacted]");
        assert_eq!(redact_path("/join"), "/join");
    }
}
