//! The process's Prometheus series that count events as they happen: HTTP requests, awards and
//! revocations, harvest passes, database pool waits and busy answers, job restarts. One
//! registry for the process, written to by a few calls at the places that already count or log
//! these events; `cairn serve` exposes it, with the gauges read from the store at scrape time,
//! on the `[metrics] bind` listener (see `web::metrics`).
//!
//! The `prometheus` crate (the Prometheus text format 0.0.4, as `promtool check metrics`
//! reads it) keeps the series: lock-free counters and histograms, and label values checked for
//! number by each vector. Every label here has a bounded set of values: route patterns (never
//! raw paths), methods, statuses, surfaces, outcomes and job names.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

/// The label value of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// Buckets of request durations, in seconds: from a cached document (sub-millisecond) to a
/// slow batch award.
const HTTP_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Buckets of harvest pass durations, in seconds.
const PASS_BUCKETS: &[f64] = &[0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0];
/// Buckets of waits for a pooled database connection, in seconds.
const POOL_BUCKETS: &[f64] = &[0.0001, 0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 10.0];

/// The series counted as events happen.
struct Series {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    awards: IntCounterVec,
    revocations: IntCounterVec,
    harvest_passes: IntCounter,
    harvest_feeds: IntCounterVec,
    harvest_duration: Histogram,
    pool_wait: Histogram,
    pool_timeouts: IntCounter,
    db_busy: IntCounter,
    job_restarts: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| unreachable!("{name}: {e}"));
    let _ = registry.register(Box::new(c.clone()));
    c
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| unreachable!("{name}: {e}"));
    let _ = registry.register(Box::new(c.clone()));
    c
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        .unwrap_or_else(|e| unreachable!("{name}: {e}"));
    let _ = registry.register(Box::new(h.clone()));
    h
}

static SERIES: LazyLock<Series> = LazyLock::new(|| {
    let r = Registry::new();
    let http_duration = HistogramVec::new(
        HistogramOpts::new("cairn_http_request_duration_seconds", "Time from a request's arrival to its response.")
            .buckets(HTTP_BUCKETS.to_vec()),
        &["route", "method"],
    )
    .unwrap_or_else(|e| unreachable!("{e}"));
    let _ = r.register(Box::new(http_duration.clone()));
    Series {
        http_requests: counter_vec(
            &r,
            "cairn_http_requests_total",
            "HTTP requests answered on the public listener, by route pattern, method and status.",
            &["route", "method", "status"],
        ),
        http_duration,
        awards: counter_vec(&r, "cairn_awards_total", "Awards stored by this process, by surface.", &["surface"]),
        revocations: counter_vec(
            &r,
            "cairn_revocations_total",
            "Revocations stored by this process, by surface.",
            &["surface"],
        ),
        harvest_passes: counter(&r, "cairn_harvest_passes_total", "Background harvest passes run."),
        harvest_feeds: counter_vec(
            &r,
            "cairn_harvest_feeds_polled_total",
            "Feeds polled by background harvest passes, by outcome (stored, not_modified, gone, failed).",
            &["outcome"],
        ),
        harvest_duration: histogram(
            &r,
            "cairn_harvest_pass_duration_seconds",
            "How long a background harvest pass took.",
            PASS_BUCKETS,
        ),
        pool_wait: histogram(
            &r,
            "cairn_db_pool_wait_seconds",
            "How long taking a connection from the database pool waited.",
            POOL_BUCKETS,
        ),
        pool_timeouts: counter(
            &r,
            "cairn_db_pool_timeouts_total",
            "Waits for a database connection that ran out of time.",
        ),
        db_busy: counter(
            &r,
            "cairn_db_busy_total",
            "Requests answered 503 because the database stayed busy or locked past its timeout.",
        ),
        job_restarts: counter_vec(
            &r,
            "cairn_job_restarts_total",
            "Background passes that panicked and were restarted, by job.",
            &["job"],
        ),
        registry: r,
    }
});

/// The registry of the counted series, to gather at scrape time.
pub fn registry() -> &'static Registry {
    &SERIES.registry
}

/// A method as a label: the standard ones by name, anything else as `other`.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

/// Counts a request answered on the public listener: `route` is the matched route's pattern
/// (such as `/assertions/{id}`), `None` when no route matched.
pub fn http_request(route: Option<&str>, method: &str, status: u16, took: Duration) {
    let (route, method) = (route.unwrap_or(UNMATCHED), method_label(method));
    let status = status.to_string();
    SERIES.http_requests.with_label_values(&[route, method, status.as_str()]).inc();
    SERIES.http_duration.with_label_values(&[route, method]).observe(took.as_secs_f64());
}

/// Counts an award stored, made through `surface` (`web`, `api`, `cli` or `system`).
pub fn award(surface: &'static str) {
    SERIES.awards.with_label_values(&[surface]).inc();
}

/// Counts a revocation stored, made through `surface`.
pub fn revocation(surface: &'static str) {
    SERIES.revocations.with_label_values(&[surface]).inc();
}

/// What one background harvest pass did: how many feeds ended in each outcome, and its length.
#[derive(Debug, Clone, Copy, Default)]
pub struct HarvestPass {
    pub stored: u64,
    pub not_modified: u64,
    pub gone: u64,
    pub failed: u64,
    pub took: Duration,
}

/// Counts a background harvest pass.
pub fn harvest_pass(p: HarvestPass) {
    SERIES.harvest_passes.inc();
    for (outcome, n) in [("stored", p.stored), ("not_modified", p.not_modified), ("gone", p.gone), ("failed", p.failed)]
    {
        SERIES.harvest_feeds.with_label_values(&[outcome]).inc_by(n);
    }
    SERIES.harvest_duration.observe(p.took.as_secs_f64());
}

/// Counts a wait for a pooled database connection (`timed_out`: it got none).
pub fn pool_wait(took: Duration, timed_out: bool) {
    SERIES.pool_wait.observe(took.as_secs_f64());
    if timed_out {
        SERIES.pool_timeouts.inc();
    }
}

/// Counts a request answered 503 because the database was busy.
pub fn db_busy() {
    SERIES.db_busy.inc();
}

/// Counts a background pass restarted after a panic.
pub fn job_restart(job: &'static str) {
    SERIES.job_restarts.with_label_values(&[job]).inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("BREW"), "other");
    }

    #[test]
    fn every_series_is_registered_and_counts() {
        http_request(Some("/assertions/{id}"), "GET", 200, Duration::from_millis(3));
        award("web");
        job_restart("test");
        let names: Vec<String> = registry().gather().iter().map(|f| f.name().to_string()).collect();
        for name in [
            "cairn_http_requests_total",
            "cairn_http_request_duration_seconds",
            "cairn_awards_total",
            "cairn_job_restarts_total",
            "cairn_harvest_pass_duration_seconds",
            "cairn_db_pool_wait_seconds",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
        }
    }
}
