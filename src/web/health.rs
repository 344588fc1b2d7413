//! `/healthz` (the process serves) and `/readyz` (it can do its work: see
//! [`crate::app::health`]). Neither is logged at info level per request (see
//! [`is_probe`]), since a load balancer asks every few seconds.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::AppState;

/// The paths load balancers and monitors poll: their requests are logged at debug level only.
pub const PROBES: [&str; 3] = ["/healthz", "/readyz", "/health"];

/// True for a request path of [`PROBES`].
pub fn is_probe(path: &str) -> bool {
    PROBES.contains(&path)
}

/// 200 while the process serves; touches nothing else.
pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(serde_json::json!({"status": "ok"}))
}

/// 200 when every readiness check holds, else 503; both with the checks as JSON.
pub(super) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let readiness = state.health.check(&state.pool, &state.ledger).await;
    let mut res = if readiness.ready { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    let mut res = res.insert_header((header::CACHE_CONTROL, "no-store")).json(&readiness);
    // The list of checks is the answer: the error pages must not replace it.
    super::error::mark_final(&mut res);
    res
}

#[cfg(test)]
mod tests {
    use super::is_probe;

    #[test]
    fn only_the_probe_paths_are_quiet() {
        for p in ["/healthz", "/readyz", "/health"] {
            assert!(is_probe(p), "{p}");
        }
        for p in ["/", "/healthz/x", "/readyz?x", "/admin", "/health/"] {
            assert!(!is_probe(p), "{p}");
        }
    }
}
