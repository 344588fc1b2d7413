//! The metrics listener: `GET /metrics` in the Prometheus text format, on its own address
//! (`[metrics] bind`), never on the public one. The counted series come from
//! [`crate::metrics`]; the gauges — queues, the chain, peers, build info — are read from the
//! store at scrape time (`db::metrics`), within [`STORE_BOUND`]. A scrape whose store read
//! fails or runs out of time still answers, with `cairn_store_up 0` and without those gauges.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{App, HttpResponse, HttpServer, web};
use prometheus::{Encoder as _, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::db::{self, DbPool};

/// Longest a scrape waits for the store.
const STORE_BOUND: Duration = Duration::from_secs(5);
/// Connections the metrics listener holds at once.
const MAX_CONNECTIONS: usize = 16;

/// What a scrape reads from.
struct Scrape {
    pool: DbPool,
    clock: crate::clock::Clock,
}

/// Starts serving `/metrics` on `listener`, on one worker: the process's counters and the
/// store's gauges as they are at each scrape.
pub fn serve(listener: TcpListener, pool: DbPool, clock: crate::clock::Clock) -> std::io::Result<Server> {
    let scrape = web::Data::new(Scrape { pool, clock });
    Ok(HttpServer::new(move || App::new().app_data(scrape.clone()).route("/metrics", web::get().to(metrics)))
        .workers(1)
        .max_connections(MAX_CONNECTIONS)
        .shutdown_timeout(1)
        .listen(listener)?
        .run())
}

/// Counts a request of the public listener by its route's pattern, never its raw path.
pub async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = req.method().clone();
    let res = next.call(req).await?;
    let route = res.request().match_pattern();
    crate::metrics::http_request(route.as_deref(), method.as_str(), res.status().as_u16(), start.elapsed());
    Ok(res)
}

async fn metrics(st: web::Data<Scrape>) -> HttpResponse {
    let gauges = Registry::new();
    let store_up = gauge(&gauges, "cairn_store_up", "Whether this scrape could read the store (1) or not (0).");
    let build = gauge_vec(&gauges, "cairn_build_info", "The running version of Cairn, as a label.", &["version"]);
    build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    let pool = st.pool.clone();
    let read = db::run(&pool, |c| Ok((db::metrics::queues(c)?, db::metrics::chain(c)?, db::metrics::peers(c)?)));
    match tokio::time::timeout(STORE_BOUND, read).await {
        Ok(Ok((queues, chain, peers))) => {
            store_up.set(1);
            store_gauges(&gauges, st.clock.now(), &queues, chain, &peers);
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: the store could not be read"),
        Err(_) => tracing::warn!(secs = STORE_BOUND.as_secs(), "metrics: the store did not answer in time"),
    }
    let mut families = crate::metrics::registry().gather();
    families.extend(gauges.gather());
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&families, &mut body) {
        Ok(()) => HttpResponse::Ok().content_type(encoder.format_type()).body(body),
        Err(e) => {
            tracing::error!(error = %e, "metrics: could not encode the series");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// The gauges read from the store, as of `now`.
fn store_gauges(
    r: &Registry,
    now: i64,
    queues: &[db::metrics::Queue],
    chain: db::metrics::Chain,
    peers: &[db::metrics::Peer],
) {
    let age = |at: Option<i64>| at.map_or(0, |at| (now - at).max(0));
    let depth = gauge_vec(r, "cairn_queue_depth", "Items waiting in each queue.", &["queue"]);
    let oldest = gauge_vec(
        r,
        "cairn_queue_oldest_age_seconds",
        "Age of the oldest item waiting in each queue (0 when it is empty).",
        &["queue"],
    );
    for q in queues {
        depth.with_label_values(&[q.name]).set(q.depth);
        oldest.with_label_values(&[q.name]).set(age(q.oldest_at));
    }
    gauge(r, "cairn_chain_height", "Height of the newest block of the main chain.").set(chain.height);
    gauge(r, "cairn_chain_pending_records", "Records waiting for a block.").set(chain.pending);
    gauge(r, "cairn_chain_oldest_pending_age_seconds", "Age of the oldest record waiting for a block (0 when none).")
        .set(age(chain.oldest_pending_at));
    if chain.last_block_at.is_some() {
        gauge(r, "cairn_chain_last_block_age_seconds", "Time since the newest block of the main chain was mined.")
            .set(age(chain.last_block_at));
    }
    let synced = gauge_vec(
        r,
        "cairn_peer_last_sync_timestamp_seconds",
        "When each trusted peer last answered (unix time); absent for a peer never reached.",
        &["peer"],
    );
    let lag = gauge_vec(
        r,
        "cairn_peer_lag_blocks",
        "This chain's height less the height each trusted peer last reported: how far the peer is behind.",
        &["peer"],
    );
    for p in peers {
        if let Some(at) = p.last_contact_at {
            synced.with_label_values(&[p.label.as_str()]).set(at);
        }
        if let Some(h) = p.last_height {
            lag.with_label_values(&[p.label.as_str()]).set(chain.height - h);
        }
    }
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| unreachable!("{name}: {e}"));
    let _ = r.register(Box::new(g.clone()));
    g
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| unreachable!("{name}: {e}"));
    let _ = r.register(Box::new(g.clone()));
    g
}
