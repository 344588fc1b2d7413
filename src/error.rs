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
            _ => json_error(self.status_code(), &public_message(self.status_code(), &self.to_string())),
        }
    }
}

/// The message a client may see: server errors never show their internals.
fn public_message(status: StatusCode, message: &str) -> String {
    if status.is_server_error() {
        "something went wrong on our side; the problem has been logged".to_string()
    } else {
        message.to_string()
    }
}

fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(serde_json::json!({"error": {"status": status.as_u16(), "message": message}}).to_string())
}

/// True when the client asked for JSON rather than a page.
pub fn prefers_json(req: &actix_web::HttpRequest) -> bool {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.contains("json") && !accept.contains("text/html")
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
        tracing::error!(status = status.as_u16(), %path, error = %raw, "request failed");
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
            serde_json::json!({"error": {"status": status.as_u16(), "message": message}}).to_string()
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
