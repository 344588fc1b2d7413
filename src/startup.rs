//! Building and running the HTTP application: opening the store, binding the listener
//! (port 0 picks a free port, which tests rely on) and wiring middleware and routes.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::Instant;

use actix_session::config::CookieContentSecurity;
use actix_session::{SessionMiddleware, storage::CookieSessionStore};
use actix_web::body::MessageBody;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{self, DefaultHeaders, Next};
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;

use crate::auth::LoginThrottle;
use crate::config::Settings;
use crate::db::{self, DbPool};
use crate::web::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "cairn_session";
/// Largest URL-encoded form body accepted.
const FORM_LIMIT: usize = 256 * 1024;
/// Requests a client address may make to the peer endpoints per minute.
const PEER_REQUESTS_PER_MINUTE: u32 = 3000;

/// Opens the data dir and database, creating and migrating them on first use, and
/// makes sure the institution profile exists.
pub fn open_store(settings: &Settings) -> anyhow::Result<DbPool> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create data directory {}", settings.data_dir.display()))?;
    let pool = db::open(&settings.database_path())?;
    let mut conn = pool.get()?;
    db::institution::ensure(&mut conn, &settings.institution_name)?;
    // Peers listed in the configuration join the trust list (the peers page and
    // `cairn peer` manage the rest).
    for p in &settings.peers {
        crate::peers::add(&mut conn, &p.url, &p.public_key, &p.name, p.base_url.as_deref().unwrap_or(""))
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
    harvester: crate::harvest::Harvester,
    harvest_enabled: bool,
    ledger: std::sync::Arc<crate::ledger::Ledger>,
    mining: bool,
    notifier: crate::notify::Notifier,
    peers: crate::peers::Peers,
}

impl Application {
    pub fn build(settings: &Settings) -> anyhow::Result<Application> {
        let pool = open_store(settings)?;
        Self::build_with_pool(settings, pool)
    }

    pub fn build_with_pool(settings: &Settings, pool: DbPool) -> anyhow::Result<Application> {
        let key = session_key(&settings.data_dir)?;
        let listener =
            TcpListener::bind(settings.bind).with_context(|| format!("cannot listen on {}", settings.bind))?;
        let addr = listener.local_addr()?;
        let base_url = settings.public_base_url(addr);
        let secure = base_url.starts_with("https://");
        let fetcher = crate::harvest::fetcher(&settings.harvest, &settings.allow_origins, &base_url)?;
        let harvester = crate::harvest::Harvester::new(pool.clone(), fetcher, settings.harvest.clone());
        let mailer = crate::email::Mailer::new(&settings.mail, &settings.data_dir)?;
        let ledger = crate::ledger::Ledger::open(pool.clone(), &settings.chain, &settings.data_dir)?;
        let peers = crate::peers::Peers::new(pool.clone(), ledger.clone())?;
        let notifier =
            crate::notify::Notifier::new(pool.clone(), harvester.fetcher().clone(), mailer.clone(), base_url.clone());
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
            issuer_email: settings
                .mail
                .from
                .parse::<lettre::message::Mailbox>()
                .map(|m| m.email.to_string())
                .unwrap_or_else(|_| "badges@localhost".into()),
        });

        let server = HttpServer::new(move || {
            let sessions = SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                .cookie_name(SESSION_COOKIE.to_string())
                .cookie_content_security(CookieContentSecurity::Signed)
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                .cookie_secure(secure)
                .build();
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(FORM_LIMIT))
                .wrap(middleware::from_fn(crate::error::negotiate_errors))
                .wrap(sessions)
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
                .configure(crate::web::configure)
        })
        .shutdown_timeout(5)
        .listen(listener)?
        .run();
        Ok(Application {
            server,
            addr,
            base_url,
            pool,
            harvester,
            harvest_enabled: settings.harvest.enabled,
            ledger,
            mining: settings.chain.mining,
            notifier,
            peers,
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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

    pub fn harvester(&self) -> crate::harvest::Harvester {
        self.harvester.clone()
    }

    /// Runs until the server is stopped (SIGINT/SIGTERM or a `ServerHandle`), with the
    /// harvester polling in the background when enabled. The harvester is supervised: if
    /// a pass panics it is logged and started again after a pause.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        if self.harvest_enabled {
            let harvester = self.harvester.clone();
            tokio::spawn(async move {
                loop {
                    let h = harvester.clone();
                    let rx = stop_rx.clone();
                    match tokio::spawn(h.run_forever(std::time::Duration::from_secs(30), rx)).await {
                        Ok(()) => return,
                        Err(e) => {
                            tracing::error!(error = %e, "the harvester stopped unexpectedly; restarting in 30 s");
                            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                        }
                    }
                }
            });
        }
        tokio::spawn(self.notifier.clone().run(stop_tx.subscribe()));
        tokio::spawn(self.peers.clone().run(stop_tx.subscribe()));
        if self.mining {
            tokio::spawn(self.ledger.clone().run_miner(stop_tx.subscribe()));
        }
        let result = self.server.await;
        self.ledger.cancel_mining();
        let _ = stop_tx.send(true);
        result
    }

    /// A handle that can stop the server.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_string();
    let res = next.call(req).await?;
    tracing::info!(%method, %path, status = res.status().as_u16(), ms = start.elapsed().as_millis() as u64, "request");
    Ok(res)
}
