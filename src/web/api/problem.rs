//! The API's errors: RFC 9457 problem details (`application/problem+json`), each kind with a
//! stable `type` (a reference to its entry on the API reference page). Every domain error
//! becomes a problem here and nowhere else.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::award::HashtagAwardError;
use crate::app::tokens::{IdempotencyError, TokenError};
use crate::db::StoreError;

/// The media type of every API error.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The kinds of problem, each with its status and stable `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request could not be read (malformed JSON, a bad query parameter or path).
    BadRequest,
    /// No bearer token, or one that is unknown, revoked or expired.
    Unauthorized,
    /// The token lacks the scope the operation needs.
    InsufficientScope,
    NotFound,
    MethodNotAllowed,
    /// The change conflicts with what is stored (an award already made or already revoked).
    Conflict,
    /// The input breaks a rule (by field in `errors`).
    Invalid,
    /// An `Idempotency-Key` was reused with a different request.
    IdempotencyKeyReused,
    PayloadTooLarge,
    RateLimited,
    /// A queue or limit is full for now.
    Busy,
    Internal,
}

impl Kind {
    pub const ALL: &'static [Kind] = &[
        Kind::BadRequest,
        Kind::Unauthorized,
        Kind::InsufficientScope,
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
            Kind::NotFound => "not-found",
            Kind::MethodNotAllowed => "method-not-allowed",
            Kind::Conflict => "conflict",
            Kind::Invalid => "invalid",
            Kind::IdempotencyKeyReused => "idempotency-key-reused",
            Kind::PayloadTooLarge => "payload-too-large",
            Kind::RateLimited => "rate-limited",
            Kind::Busy => "busy",
            Kind::Internal => "internal",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Kind::BadRequest => "The request could not be read",
            Kind::Unauthorized => "A valid API token is needed",
            Kind::InsufficientScope => "The token lacks the scope this needs",
            Kind::NotFound => "Not found",
            Kind::MethodNotAllowed => "Method not allowed",
            Kind::Conflict => "The change conflicts with what is stored",
            Kind::Invalid => "The input breaks a rule",
            Kind::IdempotencyKeyReused => "The Idempotency-Key was used for another request",
            Kind::PayloadTooLarge => "The request body is too large",
            Kind::RateLimited => "Too many requests with this token",
            Kind::Busy => "Busy; try again later",
            Kind::Internal => "Something went wrong on our side",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Kind::BadRequest => StatusCode::BAD_REQUEST,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::InsufficientScope => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::Invalid | Kind::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Kind::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem's `type`: its entry on the reference page, the same on every instance.
    pub fn type_uri(self) -> String {
        format!("/api/v1/reference#problem-{}", self.slug())
    }
}

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

    pub fn internal(cause: anyhow::Error) -> Problem {
        Problem { cause: Some(cause), ..Problem::new(Kind::Internal, "the problem has been logged") }
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

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Problem::new(Kind::NotFound, format!("{what} not found")),
            StoreError::Invalid(errors) => Problem {
                errors: Some(errors.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()),
                ..Problem::new(Kind::Invalid, errors.to_string())
            },
            StoreError::Conflict(msg) => Problem::new(Kind::Conflict, msg),
            StoreError::Busy(msg) => Problem { retry_after: Some(60), ..Problem::new(Kind::Busy, msg) },
            StoreError::Internal(e) => Problem::internal(e),
            other => Problem::internal(other.into()),
        }
    }
}

impl From<HashtagAwardError> for Problem {
    fn from(e: HashtagAwardError) -> Self {
        match e {
            HashtagAwardError::Hashtag(msg) => Problem::invalid("task", msg),
            e @ HashtagAwardError::NoTask(_) => Problem::invalid("task", e.to_string()),
            HashtagAwardError::Invalid(errors) => StoreError::Invalid(errors).into(),
            HashtagAwardError::Store(e) => e.into(),
        }
    }
}

impl From<TokenError> for Problem {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Store(e) => e.into(),
            // One answer for every refused token: which tokens exist is nobody's business.
            _ => Problem::new(Kind::Unauthorized, "the bearer token is unknown, revoked or expired"),
        }
    }
}

impl From<IdempotencyError> for Problem {
    fn from(e: IdempotencyError) -> Self {
        match e {
            e @ IdempotencyError::Mismatch => Problem::new(Kind::IdempotencyKeyReused, e.to_string()),
            IdempotencyError::Store(e) => e.into(),
        }
    }
}

impl From<actix_web::error::BlockingError> for Problem {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Problem::internal(anyhow::anyhow!("background task failed: {e}"))
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.cause {
            tracing::error!(error = format!("{cause:#}"), "API request failed");
        }
        let mut res = HttpResponse::build(self.kind.status()).content_type(PROBLEM_JSON).body(self.body());
        if let Some(s) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(s));
        }
        if self.kind == Kind::Unauthorized {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        crate::web::error::mark_final(&mut res);
        res
    }
}

/// A response made from a remembered (status, JSON body) pair.
pub fn stored_response(status: u16, body: String) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let kind = if status.is_success() { "application/json" } else { PROBLEM_JSON };
    let mut res = HttpResponse::build(status).content_type(kind).body(body);
    crate::web::error::mark_final(&mut res);
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
