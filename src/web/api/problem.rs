//! The API's errors: RFC 9457 problem details (`application/problem+json`), each kind with a
//! stable `type` (a reference to its entry on the API reference page). A domain error becomes
//! a problem through the one mapping of `web/error.rs`: the kind, detail, field errors and
//! wait that a page would show, written as a problem document.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::award::HashtagAwardError;
use crate::app::tokens::{IdempotencyError, TokenError};
use crate::db::StoreError;
pub use crate::web::error::Kind;
use crate::web::error::{AppError, mark_final};

/// The media type of every API error.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem details document (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemDoc {
    /// Stable identifier of the kind of problem (a URI reference to its description).
    #[serde(rename = "type")]
    #[schema(format = "uri-reference")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    /// This occurrence, in words.
    pub detail: String,
    /// Rule violations by field, when the input broke rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<std::collections::BTreeMap<String, String>>,
}

/// An API error, ready to become a problem response.
#[derive(Debug)]
pub struct Problem {
    pub kind: Kind,
    pub detail: String,
    pub errors: Option<std::collections::BTreeMap<String, String>>,
    pub retry_after: Option<u64>,
    /// Our failure's cause, for the log only.
    pub(super) cause: Option<anyhow::Error>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.slug(), self.detail)
    }
}

impl Problem {
    pub fn new(kind: Kind, detail: impl Into<String>) -> Problem {
        Problem { kind, detail: detail.into(), errors: None, retry_after: None, cause: None }
    }

    /// Our own failure (or, when the cause says so, a database too busy to answer).
    pub fn internal(cause: anyhow::Error) -> Problem {
        AppError::Internal(cause).into()
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(Kind::BadRequest, detail)
    }

    pub fn invalid(field: &str, detail: impl Into<String>) -> Problem {
        let detail = detail.into();
        Problem {
            errors: Some([(field.to_string(), detail.clone())].into_iter().collect()),
            ..Problem::new(Kind::Invalid, format!("{field}: {detail}"))
        }
    }

    pub fn doc(&self) -> ProblemDoc {
        ProblemDoc {
            type_: self.kind.type_uri(),
            title: self.kind.title().to_string(),
            status: self.kind.status().as_u16(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
        }
    }

    /// The problem as JSON text.
    pub fn body(&self) -> String {
        serde_json::to_string(&self.doc()).unwrap_or_default()
    }
}

impl From<AppError> for Problem {
    fn from(e: AppError) -> Self {
        let kind = e.kind();
        let errors = e.field_errors().map(|errors| errors.iter().map(|(k, v)| (k.to_string(), v.clone())).collect());
        let (detail, retry_after) = (e.detail(), e.retry_after());
        let cause = match e {
            AppError::Internal(cause) => Some(cause),
            _ => None,
        };
        // The page says it in one sentence; a problem has the title for the first half.
        let detail = if kind.hides_cause() { "the problem has been logged".to_string() } else { detail };
        Problem { kind, detail, errors, retry_after, cause }
    }
}

/// Domain errors become problems through their one mapping to [`AppError`].
macro_rules! through_app_error {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for Problem {
            fn from(e: $error) -> Self {
                AppError::from(e).into()
            }
        }
    )*};
}

through_app_error!(StoreError, HashtagAwardError, TokenError, IdempotencyError, actix_web::error::BlockingError);

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.cause {
            if self.kind.hides_cause() {
                tracing::error!(error = format!("{cause:#}"), "API request failed");
            } else {
                tracing::warn!(
                    error = format!("{cause:#}"),
                    status = self.kind.status().as_u16(),
                    "API request refused"
                );
            }
        }
        let mut res = HttpResponse::build(self.kind.status()).content_type(PROBLEM_JSON).body(self.body());
        self.kind.add_headers(res.headers_mut(), self.retry_after);
        mark_final(&mut res);
        res
    }
}

/// A response made from a remembered (status, JSON body) pair.
pub fn stored_response(status: u16, body: String) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let kind = if status.is_success() { "application/json" } else { PROBLEM_JSON };
    let mut res = HttpResponse::build(status).content_type(kind).body(body);
    mark_final(&mut res);
    res
}

/// Extractor errors (JSON body, query, path) as problems.
pub fn json_error(e: actix_web::error::JsonPayloadError, _: &actix_web::HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    match e {
        J::Overflow { limit } | J::OverflowKnownLength { limit, .. } => {
            Problem::new(Kind::PayloadTooLarge, format!("the body is larger than {limit} bytes")).into()
        }
        e => Problem::bad_request(format!("the JSON body could not be read: {e}")).into(),
    }
}

pub fn query_error(e: actix_web::error::QueryPayloadError, _: &actix_web::HttpRequest) -> actix_web::Error {
    Problem::bad_request(format!("a query parameter could not be read: {e}")).into()
}

pub fn path_error(e: actix_web::error::PathError, _: &actix_web::HttpRequest) -> actix_web::Error {
    Problem::new(Kind::NotFound, format!("no such resource: {e}")).into()
}
