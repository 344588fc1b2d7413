//! Building and running the HTTP application: opening the store, binding the listener
//! (port 0 picks a free port, which tests rely on) and wiring middleware and routes.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use actix_session::SessionMiddleware;
use actix_session::config::CookieContentSecurity;
use actix_web::body::MessageBody;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{self, DefaultHeaders, Next};
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;

use crate::config::Settings;
use crate::db::{self, DbPool};
use crate::jobs::{Job, Pass, Runner};
use crate::web::AppState;
use crate::web::auth::{LoginThrottle, SessionBackend};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "cairn_session";
/// Largest URL-encoded form body accepted.
const FORM_LIMIT: usize = 256 * 1024;
/// Sign-ins through the identity provider a client address may start in ten minutes.
const SSO_STARTS_PER_WINDOW: u32 = 30;
/// Requests a client address may make to the peer endpoints per minute.
const PEER_REQUESTS_PER_MINUTE: u32 = 3000;

/// Refuses to serve where the instance's public address would be guessed wrong:
/// - on an unspecified address (`0.0.0.0`, `::`: every address of the machine) without
///   `base_url`, since links, badges, credentials and the DID would name an address no one
///   reaches, and signed credentials cannot be taken back;
/// - `serve --demo` on any address but loopback without `base_url`: the demo's instructor
///   signs in with a password printed on the console, so a demo reachable from elsewhere is
///   something to mean, with the address it is reached at.
pub fn check_bind(settings: &Settings) -> anyhow::Result<()> {
    let (bind, ip) = (settings.bind, settings.bind.ip());
    if settings.base_url.is_some() {
        return Ok(());
    }
    if settings.demo.enabled && !ip.is_loopback() {
        anyhow::bail!(
            "`serve --demo` on {bind} would be reachable beyond this machine, with a demo instructor whose \
             password is printed here: give the address people reach it at with --base-url URL (or \
             CAIRN_BASE_URL), or bind a loopback address (--bind 127.0.0.1:8080)"
        );
    }
    if ip.is_unspecified() {
        anyhow::bail!(
            "bind = {bind} listens on every address of this machine, so the address people reach Cairn at \
             cannot be told from it: set base_url (--base-url URL or CAIRN_BASE_URL). Links in mails, badges, \
             credentials and the DID all name it, so it is never guessed from {ip}"
        );
    }
    Ok(())
}

/// The warning `serve --demo` prints when it listens beyond loopback (with `base_url` set, as
/// [`check_bind`] requires).
pub fn demo_exposure_warning(settings: &Settings) -> Option<String> {
    (settings.demo.enabled && !settings.bind.ip().is_loopback()).then(|| {
        format!(
            "WARNING: this demo listens on {} and is reached at {}: anyone who reaches it can sign in as the \
             demo instructor {} with the password printed below and award badges. Stop it (Ctrl-C) when the \
             demonstration is over; `cairn demo --remove` takes the demo data away.",
            settings.bind,
            settings.public_base_url(settings.bind),
            crate::demo::DEMO_EMAIL
        )
    })
}

/// Opens the data dir and database, creating and migrating them on first use, and
/// makes sure the institution profile exists.
pub fn open_store(settings: &Settings) -> anyhow::Result<DbPool> {
    let pool = db::datadir::open_database(&settings.data_dir, &settings.database_path())?;
    let mut conn = pool.get()?;
    crate::app::institution::ensure(&mut conn, &settings.institution_name, crate::clock::system_now())?;
    // Peers listed in the configuration join the trust list (the peers page and
    // `cairn peer` manage the rest).
    for p in &settings.peers {
        let peer = crate::app::peers::Candidate {
            url: p.url.clone(),
            public_key: p.public_key.clone(),
            name: p.name.clone(),
            base_url: p.base_url.clone().unwrap_or_default(),
        };
        crate::app::peers::trust(
            &mut conn,
            &crate::app::access::Actor::institution(crate::app::access::Surface::System),
            None,
            &peer,
            crate::clock::system_now(),
        )
        .map_err(|e| anyhow::anyhow!("[[peers]] {}: {e}", p.url))?;
    }
    Ok(pool)
}

/// Loads the session signing key from the data dir, creating it on first start, so that
/// sessions survive a restart.
fn session_key(data_dir: &Path) -> anyhow::Result<Key> {
    let path = data_dir.join("session.key");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 64 => Ok(Key::from(&bytes)),
        Ok(bytes) => {
            anyhow::bail!("{} holds {} bytes, expected 64; delete it to make a new one", path.display(), bytes.len())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Key::generate();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&path).with_context(|| format!("cannot create {}", path.display()))?;
            f.write_all(key.master())?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// A built, bound application, ready to run.
pub struct Application {
    server: Server,
    addr: SocketAddr,
    base_url: String,
    pool: DbPool,
    db_path: std::path::PathBuf,
    harvester: crate::harvest::Harvester,
    harvest_enabled: bool,
    ledger: std::sync::Arc<crate::ledger::Ledger>,
    mining: bool,
    notifier: crate::notify::Notifier,
    peers: crate::peers::Peers,
    session_life: crate::config::SessionSettings,
    webhooks: crate::config::WebhookSettings,
    /// The settings scheduled backups are taken with, when `[backup] dir` is set.
    backups: Option<Settings>,
    newsletter: crate::app::newsletter::Newsletter,
    /// The demo blogs, with `cairn serve --demo`.
    demo: Option<crate::demo::DemoBlogs>,
    demo_post_every: u64,
    /// Whether the background jobs run, as `/readyz` reports it.
    jobs_status: crate::jobs::Status,
    /// The metrics listener and its address, when `[metrics] bind` is set.
    metrics: Option<(Server, SocketAddr)>,
}

impl Application {
    pub fn build(settings: &Settings) -> anyhow::Result<Application> {
        let pool = open_store(settings)?;
        Self::build_with_pool(settings, pool)
    }

    pub fn build_with_pool(settings: &Settings, pool: DbPool) -> anyhow::Result<Application> {
        Self::build_with_clock(settings, pool, crate::clock::Clock::system())
    }

    /// The application with every background worker — harvest, notifications, the
    /// newsletter, the ledger and peers — reading the time from `clock`.
    pub fn build_with_clock(
        settings: &Settings,
        pool: DbPool,
        clock: crate::clock::Clock,
    ) -> anyhow::Result<Application> {
        check_bind(settings)?;
        let key = session_key(&settings.data_dir)?;
        let listener =
            TcpListener::bind(settings.bind).with_context(|| format!("cannot listen on {}", settings.bind))?;
        let addr = listener.local_addr()?;
        let base_url = settings.public_base_url(addr);
        let secure = base_url.starts_with("https://");
        let mut allow_origins = settings.allow_origins.clone();
        if settings.demo.enabled {
            // The demo blogs are served by this server: its own origin, exactly, and only in
            // demo mode; never an unspecified address's, which would stand for every address
            // of this machine (check_bind and the base_url rules make that impossible).
            let own = url::Url::parse(&base_url)?;
            let unspecified = match own.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_unspecified(),
                Some(url::Host::Ipv6(ip)) => ip.is_unspecified(),
                _ => false,
            };
            anyhow::ensure!(!unspecified, "the demo cannot exempt {base_url} from the outbound rules");
            allow_origins.push(own.origin().ascii_serialization());
        }
        let fetcher = crate::harvest::fetcher(&settings.harvest, &allow_origins, &base_url)?;
        let harvester = crate::harvest::Harvester::new(pool.clone(), fetcher, settings.harvest.clone(), clock.clone());
        let mailer = crate::email::Mailer::new(&settings.mail, &settings.data_dir)?;
        let ledger =
            crate::ledger::Ledger::open_with_clock(pool.clone(), &settings.chain, &settings.data_dir, clock.clone())?;
        let peers = crate::peers::Peers::new(pool.clone(), ledger.clone())?;
        let notifier =
            crate::notify::Notifier::new(pool.clone(), harvester.fetcher().clone(), mailer.clone(), base_url.clone())
                .with_clock(clock.clone());
        let newsletter = crate::app::newsletter::Newsletter::with_clock(
            pool.clone(),
            mailer.clone(),
            base_url.clone(),
            settings.newsletter,
            clock.clone(),
        );
        let demo = settings.demo.enabled.then(|| {
            crate::demo::DemoBlogs::new(pool.clone(), harvester.clone(), &base_url, settings.demo.post_every_secs)
        });
        let demo_data = web::Data::new(demo.clone());
        let sso = crate::app::sso::Sso::from_settings(&settings.oidc, &base_url, &settings.allow_origins)
            .map_err(|e| anyhow::anyhow!("single sign-on: {e}"))?
            .map(std::sync::Arc::new);
        if !settings.auth.passwords && sso.is_none() {
            anyhow::bail!(
                "[auth] passwords = false turns password sign-in off, but no identity provider is set up, so no \
                 one could sign in: configure [oidc] issuer, client_id and client_secret (or client_secret_file), \
                 or set [auth] passwords = true"
            );
        }
        let sessions = SessionBackend::new(pool.clone(), settings.sessions);
        let jobs_status = crate::jobs::Status::default();
        let metrics = match settings.metrics.bind {
            Some(bind) => {
                if !bind.ip().is_loopback() {
                    tracing::warn!(
                        %bind,
                        "metrics are served beyond loopback: let only the monitoring server reach this address"
                    );
                }
                let listener =
                    TcpListener::bind(bind).with_context(|| format!("cannot listen on {bind} for metrics"))?;
                let addr = listener.local_addr()?;
                Some((crate::web::metrics::serve(listener, pool.clone(), clock.clone())?, addr))
            }
            None => None,
        };
        let count_requests = metrics.is_some();
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            base_url: base_url.clone(),
            throttle: LoginThrottle::default(),
            harvester: harvester.clone(),
            mailer,
            raster: Default::default(),
            ledger: ledger.clone(),
            notifier: notifier.clone(),
            mention_rate: crate::notify::RateLimit::new(crate::notify::MENTIONS_PER_MINUTE),
            peer_rate: crate::notify::RateLimit::new(PEER_REQUESTS_PER_MINUTE),
            peers: peers.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
            hashing: std::sync::Arc::new(tokio::sync::Semaphore::new(2 * cores)),
            join: settings.join,
            join_rate: crate::notify::RateLimit::per_window(settings.join.per_client_per_hour, 3600),
            docs: crate::web::DocCache::open(&settings.database_path())?,
            newsletter: newsletter.clone(),
            api: crate::web::api::ApiState::new(settings.api.requests_per_minute),
            imports: Default::default(),
            sso,
            sso_rate: crate::notify::RateLimit::per_window(SSO_STARTS_PER_WINDOW, 600),
            passwords: settings.auth.passwords,
            health: crate::app::health::Probe::new(settings.data_dir.clone(), jobs_status.clone()),
            issuer_email: settings
                .mail
                .from
                .parse::<lettre::message::Mailbox>()
                .map(|m| m.email.to_string())
                .unwrap_or_else(|_| "badges@localhost".into()),
        });

        let server = HttpServer::new(move || {
            let sessions = SessionMiddleware::builder(sessions.clone(), key.clone())
                .cookie_name(SESSION_COOKIE.to_string())
                .cookie_content_security(CookieContentSecurity::Signed)
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                .cookie_secure(secure)
                .build();
            App::new()
                .app_data(state.clone())
                .app_data(demo_data.clone())
                .app_data(web::PayloadConfig::new(FORM_LIMIT))
                .wrap(middleware::from_fn(crate::web::head_as_get))
                .wrap(middleware::from_fn(crate::web::after_changes))
                .wrap(sessions)
                // Outside the sessions, so that a session store's failure is answered as any
                // other error is.
                .wrap(middleware::from_fn(crate::web::error::negotiate_errors))
                .wrap(
                    DefaultHeaders::new()
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("Referrer-Policy", "strict-origin-when-cross-origin"))
                        .add(("X-Frame-Options", "DENY"))
                        .add((
                            "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                             frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
                        )),
                )
                .wrap(middleware::Compress::default())
                .wrap(middleware::from_fn(log_requests))
                .wrap(middleware::Condition::new(
                    count_requests,
                    middleware::from_fn(crate::web::metrics::count_requests),
                ))
                .configure(crate::web::configure)
        })
        .shutdown_timeout(5)
        // A response written in two parts would otherwise wait for the client's delayed ACK
        // (~40 ms on Linux) before its second part leaves.
        .tcp_nodelay(true)
        .listen(listener)?
        .run();
        db::datadir::secure(&settings.data_dir);
        Ok(Application {
            server,
            addr,
            base_url,
            pool,
            db_path: settings.database_path(),
            harvester,
            harvest_enabled: settings.harvest.enabled,
            ledger,
            mining: settings.chain.mining,
            notifier,
            peers,
            session_life: settings.sessions,
            webhooks: settings.webhooks,
            backups: settings.backup.dir.is_some().then(|| settings.clone()),
            newsletter,
            demo,
            demo_post_every: settings.demo.post_every_secs,
            jobs_status,
            metrics,
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the metrics listener bound, when `[metrics] bind` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, addr)| *addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Public base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn pool(&self) -> DbPool {
        self.pool.clone()
    }

    pub fn ledger(&self) -> std::sync::Arc<crate::ledger::Ledger> {
        self.ledger.clone()
    }

    pub fn notifier(&self) -> crate::notify::Notifier {
        self.notifier.clone()
    }

    pub fn newsletter(&self) -> crate::app::newsletter::Newsletter {
        self.newsletter.clone()
    }

    pub fn harvester(&self) -> crate::harvest::Harvester {
        self.harvester.clone()
    }

    /// Starts the background jobs of `cairn serve` under one [`Runner`]: harvesting (when
    /// enabled), notification delivery, Webmention verification, peer exchange, watching the
    /// store for other processes' chain changes, mining (when enabled) and housekeeping.
    pub fn start_jobs(&self) -> Runner {
        let mut jobs = Runner::default().reporting_to(self.jobs_status.clone());
        if self.harvest_enabled {
            let h = self.harvester.clone();
            jobs.spawn(Job::new("harvest", HARVEST_TICK), move || {
                let h = h.clone();
                async move { h.pass().await }
            });
        }
        let n = self.notifier.clone();
        jobs.spawn(Job::new("notify", NOTIFY_TICK).wake_on(n.wake.clone()), move || {
            let n = n.clone();
            async move { n.deliver_pass().await }
        });
        let n = self.notifier.clone();
        // Events are queued by database triggers, whichever process made the change, so this
        // job polls (one indexed query) rather than waiting for a wake signal.
        jobs.spawn(Job::new("webhooks", WEBHOOK_TICK), move || {
            let n = n.clone();
            async move { n.webhooks_pass().await }
        });
        let n = self.notifier.clone();
        jobs.spawn(Job::new("mentions", NOTIFY_TICK).wake_on(n.mentions_wake.clone()), move || {
            let n = n.clone();
            async move { n.verify_pass().await }
        });
        let nl = self.newsletter.clone();
        jobs.spawn(Job::new("newsletter", NEWSLETTER_TICK).wake_on(nl.wake.clone()), move || {
            let nl = nl.clone();
            async move { nl.pass().await }
        });
        let p = self.peers.clone();
        let peers_job = Job::new("peers", PEERS_TICK).wake_on(p.wake.clone()).wake_on(self.ledger.tip_changed.clone());
        jobs.spawn(peers_job, move || {
            let p = p.clone();
            async move {
                p.round().await?;
                Ok(Pass::Idle)
            }
        });
        // Records pooled and blocks stored by other processes (`cairn award`, `cairn chain
        // import`) reach the miner and the chain cache within a few polls.
        let watcher = crate::ledger::Watcher::new(self.ledger.clone(), self.db_path.clone());
        let unwatch = watcher.clone();
        jobs.spawn(Job::new("chain-watch", crate::ledger::WATCH_EVERY).on_stop(move || unwatch.stop()), move || {
            let w = watcher.clone();
            async move { w.pass().await }
        });
        if self.mining {
            let l = self.ledger.clone();
            let cancel = self.ledger.clone();
            let miner = Job::new("miner", MINER_TICK).wake_on(l.wake.clone()).on_stop(move || cancel.cancel_mining());
            jobs.spawn(miner, move || l.clone().mine_pass());
        }
        let (pool, life, hooks) = (self.pool.clone(), self.session_life, self.webhooks);
        let first = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        jobs.spawn(Job::new("housekeeping", HOUSEKEEPING_EVERY), move || {
            let once = first.swap(false, std::sync::atomic::Ordering::Relaxed);
            housekeeping(pool.clone(), life, hooks, once)
        });
        if let Some(demo) = self.demo.clone() {
            let tick = Duration::from_secs(self.demo_post_every.clamp(1, 30));
            let d = demo.clone();
            jobs.spawn(Job::new("demo", tick), move || {
                let d = d.clone();
                async move { d.pass().await }
            });
            jobs.spawn(Job::new("demo-mentions", NOTIFY_TICK).wake_on(demo.wake.clone()), move || {
                let d = demo.clone();
                async move { d.verify_pass().await }
            });
        }
        if let Some(settings) = self.backups.clone() {
            let (pool, clock) = (self.pool.clone(), self.ledger.clock().clone());
            jobs.spawn(Job::new("backup", crate::app::backup::TICK), move || {
                crate::app::backup::pass(pool.clone(), settings.clone(), clock.clone())
            });
        }
        jobs
    }

    /// Runs until the server is stopped (SIGINT/SIGTERM or a `ServerHandle`), with the
    /// background jobs running beside it under one supervisor.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let jobs = self.start_jobs();
        let metrics = self.metrics.map(|(server, _)| {
            let handle = server.handle();
            (tokio::spawn(server), handle)
        });
        let result = self.server.await;
        jobs.stop(JOBS_GRACE).await;
        if let Some((task, handle)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        result
    }

    /// Serves without the background jobs until stopped, for a store whose work another
    /// process does; `/readyz` then reports the jobs not running.
    pub async fn run_without_jobs(self) -> std::io::Result<()> {
        self.server.await
    }

    /// A handle that can stop the server.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// Logs each request (at debug level for the health probes, which are polled) inside a span
/// that carries its request id, and returns the id in `X-Request-Id`.
async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use tracing::Instrument as _;
    let start = Instant::now();
    let method = req.method().clone();
    // Tokens in paths (confirmation, subscription links) are secrets: never log them.
    let path = crate::web::redact_path(req.path());
    let probe = crate::web::health::is_probe(req.path());
    let id = {
        let (peer, given) = (req.peer_addr().map(|a| a.ip()), req.headers().get(crate::web::request_id::HEADER));
        let given = given.map(|v| v.as_bytes());
        match req.app_data::<web::Data<AppState>>() {
            Some(state) => crate::web::request_id::choose(peer, given, &state.trusted_proxies),
            None => crate::web::request_id::choose(peer, given, &Default::default()),
        }
    };
    // At error level, so that the id is there whenever any line of the request is written.
    let span = tracing::error_span!("request", request_id = %id);
    let mut res = next.call(req).instrument(span.clone()).await?;
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(actix_web::http::header::HeaderName::from_static(crate::web::request_id::HEADER), value);
    }
    let (status, ms) = (res.status().as_u16(), start.elapsed().as_millis() as u64);
    span.in_scope(|| {
        if probe {
            tracing::debug!(%method, %path, status, ms, "request");
        } else {
            tracing::info!(%method, %path, status, ms, "request");
        }
    });
    Ok(res)
}

/// How often `cairn serve` drops expired sessions, unconfirmed subscriptions, old mail counts
/// and the bodies of old webhook deliveries.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);
/// How often the harvester looks for due feeds.
pub const HARVEST_TICK: Duration = Duration::from_secs(30);
/// How often deliveries and mention checks run when nothing wakes them.
const NOTIFY_TICK: Duration = Duration::from_secs(5);
/// How often the newsletter job looks for a course whose hour has come.
const NEWSLETTER_TICK: Duration = Duration::from_secs(30);
/// How often queued webhook events are looked for.
const WEBHOOK_TICK: Duration = Duration::from_secs(1);
/// How often peers are asked for news when nothing wakes the exchange.
const PEERS_TICK: Duration = Duration::from_secs(2);
/// How often the miner looks at the pool when nothing wakes it.
const MINER_TICK: Duration = Duration::from_secs(2);
/// How long a stop waits for passes in flight.
const JOBS_GRACE: Duration = Duration::from_secs(10);

/// Drops what has expired. The first pass also re-sanitises stored summaries whose links an
/// older release allowed, and classifies posts harvested before the authorship rules.
async fn housekeeping(
    pool: DbPool,
    life: crate::config::SessionSettings,
    hooks: crate::config::WebhookSettings,
    first: bool,
) -> anyhow::Result<Pass> {
    if first {
        match db::run(&pool, crate::harvest::resanitize_unsafe_summaries).await? {
            0 => {}
            n => tracing::warn!(summaries = n, "stored summaries with disallowed links were sanitised again"),
        }
        match db::run(&pool, db::links::classify_unchecked).await? {
            0 => {}
            n => tracing::info!(links = n, "posts harvested before the authorship rules were classified"),
        }
    }
    let (sessions, feeds) = db::run(&pool, move |c| {
        let now = crate::clock::system_now();
        let sessions = db::sessions::purge_expired(c, life, now)?;
        let feeds = db::feeds::purge_unconfirmed(c, now)? + db::newsletter::purge_unconfirmed(c, now)?;
        db::feeds::forget_join_mails(c, now)?;
        crate::app::tokens::forget_old_answers(c, now)?;
        crate::app::webhooks::purge_delivered(c, hooks.keep_delivered_days, now)?;
        Ok((sessions, feeds))
    })
    .await?;
    if sessions + feeds > 0 {
        tracing::info!(sessions, feeds, "expired sessions and subscriptions removed");
    }
    Ok(Pass::Idle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{HttpResponse, test};
    use std::sync::{Arc, Mutex};

    /// Log output kept in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[actix_web::test]
    async fn an_error_line_carries_the_request_id_and_its_cause_and_probes_stay_below_info() {
        let logs = Captured::default();
        let w = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .wrap(middleware::from_fn(crate::web::error::negotiate_errors))
                .wrap(middleware::from_fn(log_requests))
                .route(
                    "/fails",
                    web::get().to(|| async {
                        Err::<HttpResponse, _>(crate::web::error::AppError::Internal(
                            anyhow::anyhow!("the disk is on fire").context("cannot save the award"),
                        ))
                    }),
                )
                .route("/healthz", web::get().to(|| async { HttpResponse::Ok().finish() }))
                // A 503 as `/readyz` answers it: marked final, so not an error to log either.
                .route(
                    "/readyz",
                    web::get().to(|| async {
                        let mut res = HttpResponse::ServiceUnavailable().finish();
                        crate::web::error::mark_final(&mut res);
                        res
                    }),
                ),
        )
        .await;
        let res = test::call_service(&app, test::TestRequest::get().uri("/fails").to_request()).await;
        assert_eq!(res.status(), 500);
        let id = res.headers().get("x-request-id").unwrap().to_str().unwrap().to_string();
        for probe in ["/healthz", "/readyz"] {
            let res = test::call_service(&app, test::TestRequest::get().uri(probe).to_request()).await;
            assert!(res.headers().contains_key("x-request-id"));
        }
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let failed = text.lines().find(|l| l.contains("request failed")).unwrap_or_else(|| panic!("{text}"));
        assert!(failed.contains(&format!("request_id={id}")), "{failed}");
        assert!(failed.contains("the disk is on fire") && failed.contains("cannot save the award"), "{failed}");
        let line = text.lines().find(|l| l.contains(" INFO ") && l.contains("path=/fails"));
        let line = line.unwrap_or_else(|| panic!("no info line for the request: {text}"));
        assert!(line.contains(&format!("request_id={id}")) && line.contains("status=500"), "{line}");
        assert!(!text.contains("/healthz") && !text.contains("/readyz"), "probes logged at info: {text}");
    }
}
