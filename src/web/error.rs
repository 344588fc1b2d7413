//! The web layer's error type and the one place where errors become HTTP responses.
//!
//! Every error a handler can meet is mapped here, once: each domain error becomes an
//! [`AppError`], and an `AppError` says its [`Kind`] (status, problem type, title), the detail a
//! client may read, the field errors, and how long to wait before trying again. Both answers
//! are made from that one mapping: the [`negotiate_errors`] middleware renders it as an HTML
//! page, or `{"error": {"status", "message"}}` when the client asked for JSON, and the API's
//! `Problem` (web/api/problem.rs) renders the same mapping as `application/problem+json`.
//! Adding an error variant is one arm in one `From` impl below.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::app::award::HashtagAwardError;
use crate::app::learners::RequestError;
use crate::app::newsletter::NewsletterError;
use crate::app::subscribe::SubscribeError;
use crate::app::tokens::{IdempotencyError, TokenError};
use crate::db::StoreError;
use crate::domain::FieldErrors;

/// The kinds of error a client can be answered with, each with its status and, for the API,
/// a stable problem `type` and title. The one table both error formats read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request could not be read (malformed JSON, a bad query parameter or path).
    BadRequest,
    /// No bearer token, or one that is unknown, revoked or expired.
    Unauthorized,
    /// The token lacks the scope the operation needs.
    InsufficientScope,
    /// The instructor's role (or the token's courses) does not allow this.
    Forbidden,
    /// A state-changing form without the session's CSRF token (pages only).
    Csrf,
    NotFound,
    MethodNotAllowed,
    /// The change conflicts with what is stored (an award already made or already revoked).
    Conflict,
    /// It existed, and is gone for good (pages only).
    Gone,
    /// The input breaks a rule (by field in `errors`).
    Invalid,
    /// An `Idempotency-Key` was reused with a different request.
    IdempotencyKeyReused,
    PayloadTooLarge,
    RateLimited,
    /// A queue or limit is full for now, or the database is busy: try again later.
    Busy,
    /// Not signed in: the page redirects to the login page (pages only).
    SignInRequired,
    Internal,
}

impl Kind {
    /// The kinds the API answers with, each described on the API reference page.
    pub const ALL: &'static [Kind] = &[
        Kind::BadRequest,
        Kind::Unauthorized,
        Kind::InsufficientScope,
        Kind::Forbidden,
        Kind::NotFound,
        Kind::MethodNotAllowed,
        Kind::Conflict,
        Kind::Invalid,
        Kind::IdempotencyKeyReused,
        Kind::PayloadTooLarge,
        Kind::RateLimited,
        Kind::Busy,
        Kind::Internal,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            Kind::BadRequest => "bad-request",
            Kind::Unauthorized => "unauthorized",
            Kind::InsufficientScope => "insufficient-scope",
            Kind::Forbidden => "forbidden",
            Kind::Csrf => "csrf",
            Kind::NotFound => "not-found",
            Kind::MethodNotAllowed => "method-not-allowed",
            Kind::Conflict => "conflict",
            Kind::Gone => "gone",
            Kind::Invalid => "invalid",
            Kind::IdempotencyKeyReused => "idempotency-key-reused",
            Kind::PayloadTooLarge => "payload-too-large",
            Kind::RateLimited => "rate-limited",
            Kind::Busy => "busy",
            Kind::SignInRequired => "sign-in-required",
            Kind::Internal => "internal",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Kind::BadRequest => "The request could not be read",
            Kind::Unauthorized => "A valid API token is needed",
            Kind::InsufficientScope => "The token lacks the scope this needs",
            Kind::Forbidden => "Your role does not allow this",
            Kind::Csrf => "The form did not come from Cairn",
            Kind::NotFound => "Not found",
            Kind::MethodNotAllowed => "Method not allowed",
            Kind::Conflict => "The change conflicts with what is stored",
            Kind::Gone => "Gone for good",
            Kind::Invalid => "The input breaks a rule",
            Kind::IdempotencyKeyReused => "The Idempotency-Key was used for another request",
            Kind::PayloadTooLarge => "The request body is too large",
            Kind::RateLimited => "Too many requests with this token",
            Kind::Busy => "Busy; try again later",
            Kind::SignInRequired => "Please sign in",
            Kind::Internal => "Something went wrong on our side",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Kind::BadRequest => StatusCode::BAD_REQUEST,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::InsufficientScope | Kind::Forbidden | Kind::Csrf => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::Gone => StatusCode::GONE,
            Kind::Invalid | Kind::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Kind::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Kind::SignInRequired => StatusCode::SEE_OTHER,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the client is told only that something failed, and the cause goes to the log.
    pub fn hides_cause(self) -> bool {
        self == Kind::Internal
    }

    /// The problem's `type`: its entry on the reference page, the same on every instance.
    pub fn type_uri(self) -> String {
        format!("/api/v1/reference#problem-{}", self.slug())
    }

    /// Headers every answer of this kind carries, whatever its format: `Retry-After` when there
    /// is a wait, the bearer challenge with a 401.
    pub fn add_headers(self, headers: &mut header::HeaderMap, retry_after: Option<u64>) {
        if let Some(s) = retry_after {
            headers.insert(header::RETRY_AFTER, header::HeaderValue::from(s));
        }
        if self == Kind::Unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    BadRequest(String),
    /// Form input that breaks a rule, by field.
    #[error("{0}")]
    Invalid(FieldErrors),
    /// A state-changing request without a valid CSRF token.
    #[error(
        "this form has expired or did not come from Cairn (missing or wrong CSRF token); reload the page and try again"
    )]
    Csrf,
    #[error("{0}")]
    Conflict(String),
    /// A conflict resolved on another page: the error page links it (`href`, with the words
    /// `label`); a JSON answer gives its address in the message.
    #[error("{message} {label}: {href}")]
    ConflictFixedAt { message: String, href: &'static str, label: &'static str },
    /// The signed-in instructor's role does not allow this (403); the message says why.
    #[error("{0}")]
    Forbidden(String),
    /// Existed, and is gone for good (410).
    #[error("{0}")]
    Gone(String),
    /// A queue or limit is full for now (503 with Retry-After).
    #[error("{0}")]
    Busy(String),
    #[error("too many failed attempts; try again in {retry_after} seconds")]
    TooManyRequests { retry_after: u64 },
    /// A limit was reached; `message` says which, in words.
    #[error("{message}")]
    Limited { message: String, retry_after: u64 },
    /// Not signed in: redirect to the login page, then back to `next`.
    #[error("please sign in")]
    LoginRequired { next: String },
    /// An API token that is missing, unknown, revoked or expired (401).
    #[error("{0}")]
    Unauthorized(String),
    /// An `Idempotency-Key` sent again with a different request (422).
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// Our own failure; a pool that gave no connection in time or a database that stayed
    /// locked is a 503 (see [`crate::db::is_unavailable`]), anything else a 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Seconds a client is asked to wait after a [`AppError::Busy`].
const BUSY_RETRY_AFTER: u64 = 60;

/// Seconds a client is asked to wait when the database was busy.
const UNAVAILABLE_RETRY_AFTER: u64 = 5;

/// What a client reads about a failure of ours.
const INTERNAL_MESSAGE: &str = "something went wrong on our side; the problem has been logged";

impl AppError {
    /// The kind of answer: status, problem type and title.
    pub fn kind(&self) -> Kind {
        match self {
            AppError::NotFound(_) => Kind::NotFound,
            AppError::BadRequest(_) => Kind::BadRequest,
            AppError::Invalid(_) => Kind::Invalid,
            AppError::Csrf => Kind::Csrf,
            AppError::Conflict(_) | AppError::ConflictFixedAt { .. } => Kind::Conflict,
            AppError::Forbidden(_) => Kind::Forbidden,
            AppError::Gone(_) => Kind::Gone,
            AppError::Busy(_) => Kind::Busy,
            AppError::TooManyRequests { .. } | AppError::Limited { .. } => Kind::RateLimited,
            AppError::LoginRequired { .. } => Kind::SignInRequired,
            AppError::Unauthorized(_) => Kind::Unauthorized,
            AppError::IdempotencyKeyReused(_) => Kind::IdempotencyKeyReused,
            AppError::Internal(e) if e.chain().any(crate::db::is_unavailable) => Kind::Busy,
            AppError::Internal(_) => Kind::Internal,
        }
    }

    /// This occurrence in words a client may read; a failure of ours shows none of its
    /// internals.
    pub fn detail(&self) -> String {
        match self {
            AppError::Internal(_) if self.kind() == Kind::Busy => {
                "the database is busy; try again in a few seconds".to_string()
            }
            AppError::Internal(_) => INTERNAL_MESSAGE.to_string(),
            other => other.to_string(),
        }
    }

    /// Seconds to wait before trying again (`Retry-After`).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::TooManyRequests { retry_after } | AppError::Limited { retry_after, .. } => Some(*retry_after),
            AppError::Busy(_) => Some(BUSY_RETRY_AFTER),
            AppError::Internal(_) if self.kind() == Kind::Busy => Some(UNAVAILABLE_RETRY_AFTER),
            _ => None,
        }
    }

    /// The page that resolves this error, as the error page links it: the message without the
    /// address, the address, and the link's words.
    pub fn fixed_at(&self) -> Option<(&str, &'static str, &'static str)> {
        match self {
            AppError::ConflictFixedAt { message, href, label } => Some((message, href, label)),
            _ => None,
        }
    }

    /// The rule violations by field, when the input broke rules.
    pub fn field_errors(&self) -> Option<&FieldErrors> {
        match self {
            AppError::Invalid(errors) => Some(errors),
            _ => None,
        }
    }

    /// One field's rule violation.
    pub fn field(field: &'static str, message: impl Into<String>) -> AppError {
        let mut e = FieldErrors::new();
        e.add(field, message);
        AppError::Invalid(e)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AppError::NotFound(what),
            StoreError::Invalid(errors) => AppError::Invalid(errors),
            StoreError::Conflict(msg) => AppError::Conflict(msg),
            StoreError::ConflictFixedAt { message, href, label } => AppError::ConflictFixedAt { message, href, label },
            StoreError::Forbidden(msg) => AppError::Forbidden(msg),
            StoreError::Busy(msg) => AppError::Busy(msg),
            StoreError::Gone(msg) => AppError::Gone(msg.to_string()),
            StoreError::Internal(e) => AppError::Internal(e),
            other @ (StoreError::Db(_) | StoreError::Pool(_)) => AppError::Internal(other.into()),
        }
    }
}

impl From<SubscribeError> for AppError {
    fn from(e: SubscribeError) -> Self {
        match e {
            SubscribeError::MailLimit { wait, .. } => {
                AppError::Limited { message: e.to_string(), retry_after: wait as u64 }
            }
            SubscribeError::Invalid(errors) => AppError::Invalid(errors),
            SubscribeError::Busy(e) => AppError::Busy(e.to_string()),
            SubscribeError::Store(e) => e.into(),
        }
    }
}

impl From<NewsletterError> for AppError {
    fn from(e: NewsletterError) -> Self {
        match e {
            NewsletterError::MailLimit { wait, .. } => {
                AppError::Limited { message: e.to_string(), retry_after: wait as u64 }
            }
            NewsletterError::Invalid(errors) => AppError::Invalid(errors),
            NewsletterError::Store(e) => e.into(),
        }
    }
}

impl From<RequestError> for AppError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::MailLimit { .. } => AppError::Limited { message: e.to_string(), retry_after: 3600 },
            RequestError::NoAddress => AppError::Conflict(e.to_string()),
            RequestError::Store(e) => e.into(),
        }
    }
}

impl From<HashtagAwardError> for AppError {
    fn from(e: HashtagAwardError) -> Self {
        match e {
            HashtagAwardError::Hashtag(msg) => AppError::field("task", msg),
            e @ HashtagAwardError::NoTask(_) => AppError::field("task", e.to_string()),
            HashtagAwardError::Invalid(errors) => AppError::Invalid(errors),
            HashtagAwardError::Store(e) => e.into(),
        }
    }
}

impl From<TokenError> for AppError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Store(e) => e.into(),
            // One answer for every refused token: which tokens exist is nobody's business.
            TokenError::Unknown | TokenError::Revoked | TokenError::Expired => {
                AppError::Unauthorized("the bearer token is unknown, revoked or expired".into())
            }
        }
    }
}

impl From<IdempotencyError> for AppError {
    fn from(e: IdempotencyError) -> Self {
        match e {
            e @ IdempotencyError::Mismatch => AppError::IdempotencyKeyReused(e.to_string()),
            IdempotencyError::Store(e) => e.into(),
        }
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        AppError::Internal(anyhow::anyhow!("background task failed: {e}"))
    }
}

/// Marker placed in responses whose body is already in its final form.
#[derive(Clone, Copy)]
struct Final;

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.kind().status()
    }

    /// The JSON form; [`negotiate_errors`] makes it a page when the client wants one.
    fn error_response(&self) -> HttpResponse<BoxBody> {
        let kind = self.kind();
        if let AppError::LoginRequired { next } = self {
            let target =
                format!("/login?next={}", url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>());
            return HttpResponse::SeeOther().insert_header((header::LOCATION, target)).finish();
        }
        if matches!(self, AppError::Internal(e) if e.chain().any(crate::db::is_unavailable)) {
            crate::metrics::db_busy();
        }
        let mut res = json_error(kind.status(), &self.detail());
        kind.add_headers(res.headers_mut(), self.retry_after());
        res
    }
}

/// The message a client may see of an error that is not ours to map (actix's own): server
/// errors never show their internals (a 503 says why in words written for clients).
fn public_message(status: StatusCode, message: &str) -> String {
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        INTERNAL_MESSAGE.to_string()
    } else {
        message.to_string()
    }
}

/// The one JSON error body: `{"error": {"status": 409, "message": "..."}}`.
pub fn json_error_body(status: StatusCode, message: &str) -> String {
    serde_json::json!({"error": {"status": status.as_u16(), "message": message}}).to_string()
}

/// A JSON error response with [`json_error_body`].
pub fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).content_type("application/json").body(json_error_body(status, message))
}

/// What a client asked for in `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Json,
}

/// The one Accept negotiation: HTML or JSON (any `json` type, such as `application/ld+json`),
/// by quality and then by order; `default` when the header names neither (or is absent).
pub fn negotiate(req: &actix_web::HttpRequest, default: Format) -> Format {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    negotiate_accept(accept, default)
}

fn negotiate_accept(accept: &str, default: Format) -> Format {
    let mut best: Option<(Format, f32)> = None;
    for part in accept.split(',') {
        let mut fields = part.split(';');
        let media = fields.next().unwrap_or("").trim().to_ascii_lowercase();
        let format = if media == "text/html" || media == "application/xhtml+xml" {
            Format::Html
        } else if media.ends_with("/json") || media.ends_with("+json") {
            Format::Json
        } else {
            continue;
        };
        let q = fields
            .filter_map(|f| f.trim().strip_prefix("q=").and_then(|v| v.trim().parse::<f32>().ok()))
            .next()
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((format, q));
        }
    }
    best.map_or(default, |(f, _)| f)
}

/// True when the client asked for JSON rather than a page.
pub fn prefers_json(req: &actix_web::HttpRequest) -> bool {
    negotiate(req, Format::Html) == Format::Json
}

/// The message and whole cause chain of an error, for the log.
fn cause_chain(e: &actix_web::Error) -> String {
    match e.as_error::<AppError>() {
        Some(AppError::Internal(inner)) => format!("{inner:#}"),
        Some(other) => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
        None => e.to_string(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
    /// The page that resolves the error, and the link's words.
    link: Option<(&'a str, &'a str)>,
}

/// Middleware: renders error responses as HTML or JSON according to `Accept`, and logs
/// server errors with their cause chain.
pub async fn negotiate_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let json = prefers_json(req.request());
    // The session middleware fails the request when its store fails, keeping the error only
    // in its Debug form: a busy database there is a 503 like anywhere else.
    let res = match next.call(req).await {
        Ok(res) => res,
        Err(e) if format!("{e:?}").contains(&crate::db::Unavailable.to_string()) => {
            return Err(SessionsBusy { json }.into());
        }
        Err(e) => return Err(e),
    };
    Ok(render_error(res))
}

/// The answer when the session store's database is busy, in the format the client prefers.
#[derive(Debug, thiserror::Error)]
#[error("the database is busy; try again in a few seconds")]
struct SessionsBusy {
    json: bool,
}

impl ResponseError for SessionsBusy {
    fn status_code(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let busy = AppError::Internal(anyhow::Error::new(crate::db::Unavailable));
        let (status, message) = (busy.kind().status(), busy.detail());
        let (content_type, body) = error_body(status, &message, None, self.json);
        let mut res = HttpResponse::build(status).body(body);
        res.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
        busy.kind().add_headers(res.headers_mut(), busy.retry_after());
        res.extensions_mut().insert(Final);
        res
    }
}

/// An error's body in the client's format, with its content type.
fn error_body(status: StatusCode, message: &str, link: Option<(&str, &str)>, json: bool) -> (&'static str, String) {
    if json {
        ("application/json", json_error_body(status, message))
    } else {
        let reason = status.canonical_reason().unwrap_or("Error");
        let page = ErrorPage { status: status.as_u16(), reason, message, link }
            .render()
            .unwrap_or_else(|_| format!("<!doctype html><title>{}</title><p>{}</p>", status.as_u16(), status));
        ("text/html; charset=utf-8", page)
    }
}

/// [`negotiate_errors`] on a response.
fn render_error<B: MessageBody + 'static>(res: ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || res.response().extensions().get::<Final>().is_some() {
        return res.map_into_left_body();
    }
    let raw = match res.response().error() {
        Some(e) => e.to_string(),
        None => status.canonical_reason().unwrap_or("error").to_string(),
    };
    if status.is_server_error() {
        let path = crate::web::redact_path(res.request().path());
        let error = res.response().error().map_or_else(|| raw.clone(), cause_chain);
        tracing::error!(status = status.as_u16(), %path, %error, "request failed");
    }
    let json = prefers_json(res.request());
    let app_error = res.response().error().and_then(|e| e.as_error::<AppError>());
    // A page links where the error is resolved; JSON says the address in its message.
    let (message, link) = match app_error {
        Some(e) => match e.fixed_at() {
            Some((message, href, label)) if !json => (message.to_string(), Some((href, label))),
            _ => (e.detail(), None),
        },
        None => (public_message(status, &raw), None),
    };
    let retry_after = res.headers().get(header::RETRY_AFTER).cloned();
    let mut res = res.map_body(|head, _old| {
        head.headers_mut().remove(header::CONTENT_LENGTH);
        if let Some(v) = retry_after {
            head.headers_mut().insert(header::RETRY_AFTER, v);
        }
        let (content_type, body) = error_body(status, &message, link, json);
        head.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
        EitherBody::right(BoxBody::new(body))
    });
    res.response_mut().extensions_mut().insert(Final);
    res
}

/// Marks a response as final: the error middleware leaves its body alone.
pub fn mark_final(res: &mut HttpResponse) {
    res.extensions_mut().insert(Final);
}

#[cfg(test)]
mod tests {
    use super::{AppError, Format, Kind, negotiate_accept};
    use crate::db::StoreError;
    use crate::web::api::Problem;
    use actix_web::ResponseError;

    /// SQLite's answer when another writer holds the lock past the busy timeout.
    fn locked() -> diesel::result::Error {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new("database is locked".to_string()),
        )
    }

    /// The database could not be had: a pool that gave no connection in time, or SQLite locked.
    fn unavailable() -> Vec<StoreError> {
        use diesel::r2d2::{ConnectionManager, Pool};
        let pool = Pool::builder()
            .max_size(1)
            .connection_timeout(std::time::Duration::from_millis(10))
            .build(ConnectionManager::<diesel::SqliteConnection>::new(":memory:"))
            .unwrap();
        let _held = pool.get().unwrap();
        let timeout = pool.get().map(|_| ()).unwrap_err();
        vec![StoreError::Pool(timeout), StoreError::Db(locked())]
    }

    #[test]
    fn a_busy_database_is_503_with_retry_after_in_both_formats() {
        for e in unavailable() {
            let page = AppError::from(e);
            assert_eq!((page.kind(), page.status_code().as_u16()), (Kind::Busy, 503), "{page:?}");
            assert_eq!(page.retry_after(), Some(5));
            assert!(!page.detail().contains("pool") && !page.detail().contains("locked"), "{}", page.detail());
            let problem = Problem::from(page);
            assert_eq!((problem.kind, problem.retry_after), (Kind::Busy, Some(5)));
        }
        let chained = AppError::Internal(anyhow::Error::new(StoreError::Db(locked())).context("a job"));
        assert_eq!(chained.kind(), Kind::Busy, "found anywhere in the cause chain");
        let other = diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new("disk I/O error".to_string()),
        );
        assert_eq!(AppError::from(StoreError::Db(other)).kind(), Kind::Internal);
    }

    #[test]
    fn a_page_and_a_problem_share_status_detail_and_wait() {
        let mut invalid = crate::domain::FieldErrors::new();
        invalid.add("title", "too long");
        let errors = vec![
            AppError::NotFound("course"),
            AppError::BadRequest("unreadable".into()),
            AppError::Invalid(invalid),
            AppError::Conflict("already".into()),
            AppError::Busy("the queue is full".into()),
            AppError::Limited { message: "slow down".into(), retry_after: 7 },
            AppError::Unauthorized("no token".into()),
            AppError::IdempotencyKeyReused("reused".into()),
            AppError::Internal(anyhow::anyhow!("secret detail")),
        ];
        for e in errors {
            let (status, detail, wait) = (e.status_code(), e.detail(), e.retry_after());
            let page = e.error_response();
            assert_eq!(page.status(), status);
            assert_eq!(page.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap()), wait);
            let problem = Problem::from(e);
            assert_eq!(problem.kind.status(), status);
            assert_eq!(problem.retry_after, wait);
            if !problem.kind.hides_cause() {
                assert_eq!(problem.detail, detail);
            }
            assert!(!problem.body().contains("secret detail") && !detail.contains("secret detail"));
        }
    }

    #[test]
    fn accept_negotiation_weighs_quality_then_order() {
        assert_eq!(negotiate_accept("", Format::Html), Format::Html);
        assert_eq!(negotiate_accept("", Format::Json), Format::Json);
        assert_eq!(negotiate_accept("application/json", Format::Html), Format::Json);
        assert_eq!(negotiate_accept("application/ld+json", Format::Html), Format::Json);
        assert_eq!(negotiate_accept("text/html,application/xhtml+xml,*/*;q=0.8", Format::Json), Format::Html);
        assert_eq!(negotiate_accept("application/json;q=0.5, text/html", Format::Json), Format::Html);
        assert_eq!(negotiate_accept("text/html;q=0.4, application/json", Format::Html), Format::Json);
        assert_eq!(negotiate_accept("text/html;q=0, application/json;q=0.1", Format::Html), Format::Json);
        assert_eq!(negotiate_accept("image/png, */*", Format::Json), Format::Json);
    }
}
