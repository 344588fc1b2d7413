//! The web layer's error type and the one place where errors become HTTP responses.
//!
//! Handlers return [`AppError`]; its `ResponseError` impl picks the status and a JSON body.
//! The [`negotiate_errors`] middleware then renders every error response (ours or actix's
//! own, such as a malformed form) as an HTML page unless the client asked for JSON, so
//! browsers get a page and scripts get `{"error": {"status", "message"}}`.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::db::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    BadRequest(String),
    /// Form input that breaks a rule, by field.
    #[error("{0}")]
    Invalid(crate::domain::FieldErrors),
    /// A state-changing request without a valid CSRF token.
    #[error(
        "this form has expired or did not come from Cairn (missing or wrong CSRF token); reload the page and try again"
    )]
    Csrf,
    #[error("{0}")]
    Conflict(String),
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
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AppError::NotFound(what),
            StoreError::Invalid(errors) => AppError::Invalid(errors),
            StoreError::Conflict(msg) => AppError::Conflict(msg),
            StoreError::Busy(msg) => AppError::Busy(msg),
            StoreError::Gone(msg) => AppError::Gone(msg.to_string()),
            StoreError::Internal(e) => AppError::Internal(e),
            other => AppError::Internal(other.into()),
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
        match self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Gone(_) => StatusCode::GONE,
            AppError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::TooManyRequests { .. } | AppError::Limited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        match self {
            AppError::LoginRequired { next } => {
                let target = format!(
                    "/login?next={}",
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                HttpResponse::SeeOther().insert_header((header::LOCATION, target)).finish()
            }
            AppError::TooManyRequests { retry_after } | AppError::Limited { retry_after, .. } => {
                let mut res = json_error(self.status_code(), &self.to_string());
                res.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(*retry_after));
                res
            }
            AppError::Busy(message) => {
                let mut res = json_error(self.status_code(), message);
                res.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(BUSY_RETRY_AFTER));
                res
            }
            _ => json_error(self.status_code(), &public_message(self.status_code(), &self.to_string())),
        }
    }
}

/// The message a client may see: server errors never show their internals (a 503 says
/// which queue is full, in words written for clients).
fn public_message(status: StatusCode, message: &str) -> String {
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        "something went wrong on our side; the problem has been logged".to_string()
    } else {
        message.to_string()
    }
}

/// Seconds a client is asked to wait after a [`AppError::Busy`].
const BUSY_RETRY_AFTER: u64 = 60;

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
}

/// Middleware: renders error responses as HTML or JSON according to `Accept`, and logs
/// server errors with their cause chain.
pub async fn negotiate_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let res = next.call(req).await?;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || res.response().extensions().get::<Final>().is_some() {
        return Ok(res.map_into_left_body());
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
    let message = public_message(status, &raw);
    let json = prefers_json(res.request());
    let retry_after = res.headers().get(header::RETRY_AFTER).cloned();
    let mut res = res.map_body(|head, _old| {
        head.headers_mut().remove(header::CONTENT_LENGTH);
        if let Some(v) = retry_after {
            head.headers_mut().insert(header::RETRY_AFTER, v);
        }
        let body = if json {
            head.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
            json_error_body(status, &message)
        } else {
            head.headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/html; charset=utf-8"));
            ErrorPage {
                status: status.as_u16(),
                reason: status.canonical_reason().unwrap_or("Error"),
                message: &message,
            }
            .render()
            .unwrap_or_else(|_| format!("<!doctype html><title>{}</title><p>{}</p>", status.as_u16(), status))
        };
        EitherBody::right(BoxBody::new(body))
    });
    res.response_mut().extensions_mut().insert(Final);
    Ok(res)
}

/// Marks a response as final: the error middleware leaves its body alone.
pub fn mark_final(res: &mut HttpResponse) {
    res.extensions_mut().insert(Final);
}

#[cfg(test)]
mod tests {
    use super::{Format, negotiate_accept};

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
