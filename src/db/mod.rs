//! The SQLite store: connection pool, per-connection pragmas and embedded migrations.

pub mod schema;

use std::path::Path;
use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// Migrations compiled into the binary from `migrations/`.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Milliseconds a connection waits for a lock before reporting "database is locked".
pub const BUSY_TIMEOUT_MS: u32 = 5_000;

pub type DbPool = Pool<ConnectionManager<SqliteConnection>>;
pub type DbConn = PooledConnection<ConnectionManager<SqliteConnection>>;

/// Sets the pragmas every connection needs. `busy_timeout` comes first so that the
/// others wait for a lock rather than fail while another process holds it. `secure_delete`
/// zeroes what a delete or update frees, so erased personal data does not linger in free
/// space of the file.
#[derive(Debug)]
struct Pragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&init_statements()).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Counts the waits for a pooled connection (see [`crate::metrics::pool_wait`]).
#[derive(Debug)]
struct PoolWaits;

impl diesel::r2d2::HandleEvent for PoolWaits {
    fn handle_checkout(&self, event: diesel::r2d2::event::CheckoutEvent) {
        crate::metrics::pool_wait(event.duration(), false);
    }

    fn handle_timeout(&self, event: diesel::r2d2::event::TimeoutEvent) {
        crate::metrics::pool_wait(event.timeout(), true);
    }
}

fn init_statements() -> String {
    format!(
        "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA foreign_keys = ON; \
         PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16000; PRAGMA temp_store = MEMORY; \
         PRAGMA secure_delete = ON;"
    )
}

/// Opens (creating if needed) the database at `path`, switches it to WAL, runs pending
/// migrations and returns a pool whose connections all carry the pragmas.
pub fn open(path: &Path) -> anyhow::Result<DbPool> {
    use anyhow::Context as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    let url = path.to_str().context("database path is not valid UTF-8")?;
    {
        // One connection first: WAL is a property of the file, set once, and migrations
        // run before any pooled connection exists.
        let mut conn =
            SqliteConnection::establish(url).with_context(|| format!("cannot open database {}", path.display()))?;
        conn.batch_execute(&format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL;"))?;
        conn.run_pending_migrations(MIGRATIONS).map_err(|e| anyhow::anyhow!("database migration failed: {e}"))?;
    }
    Pool::builder()
        .max_size(8)
        .connection_timeout(Duration::from_secs(10))
        .connection_customizer(Box::new(Pragmas))
        .event_handler(Box::new(PoolWaits))
        .build(ConnectionManager::<SqliteConnection>::new(url))
        .context("cannot open database pool")
}

/// Opens one connection outside the pool, with the pragmas pooled connections carry, for a
/// job that keeps its own connection (the chain watcher holds one for as long as it runs).
pub fn connect(path: &Path) -> anyhow::Result<SqliteConnection> {
    use anyhow::Context as _;
    let url = path.to_str().context("database path is not valid UTF-8")?;
    let mut conn =
        SqliteConnection::establish(url).with_context(|| format!("cannot open database {}", path.display()))?;
    conn.batch_execute(&init_statements())?;
    Ok(conn)
}

/// SQLite's `PRAGMA data_version` on this connection: it changes when another connection (of
/// this process or another) commits, and not for this connection's own writes. Values mean
/// something only when compared with earlier ones from the same connection.
pub fn data_version(conn: &mut SqliteConnection) -> diesel::QueryResult<i64> {
    use diesel::RunQueryDsl as _;
    #[derive(diesel::QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        data_version: i64,
    }
    diesel::sql_query("PRAGMA data_version").get_result::<Version>(conn).map(|v| v.data_version)
}

/// Runs a store function on a pooled connection on tokio's blocking threads (the
/// background workers' counterpart of the web layer's `AppState::db`).
pub async fn run<T, F>(pool: &DbPool, f: F) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
{
    let pool = pool.clone();
    // The caller's span (a request's, with its id) goes along to what the store logs.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| f(&mut *pool.get()?)))
        .await
        .map_err(|e| StoreError::Internal(anyhow::Error::new(e).context("database task failed")))?
}

pub mod api;
pub mod audit;
pub mod awards;
pub mod backup;
pub mod chain;
pub mod courses;
pub mod credentials;
pub mod dashboard;
pub mod datadir;
pub mod demo;
pub mod documents;
pub mod feeds;
pub mod group;
pub mod institution;
pub mod instructors;
pub mod learners;
pub mod links;
pub mod listing;
pub mod mentions;
pub mod metrics;
pub mod newsletter;
pub mod outbox;
pub mod peers;
pub mod portfolios;
pub mod queue;
pub mod reader;
pub mod roster;
pub mod sessions;
pub mod staff;
pub mod stored;
pub mod tokens;
pub mod webhooks;

/// Errors of the store and domain layer; the web layer maps them to responses in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The input breaks a rule; errors are keyed by form field.
    #[error("invalid input: {0}")]
    Invalid(crate::domain::FieldErrors),
    /// The change is refused because of the current state (e.g. a non-empty module, an award
    /// already revoked). Only for real conflicts: a client can resolve them.
    #[error("{0}")]
    Conflict(String),
    /// A conflict resolved on another page: the message, and that page (`href`, and `label`
    /// as the words of a link to it).
    #[error("{message} {label}: {href}")]
    ConflictFixedAt { message: String, href: &'static str, label: &'static str },
    /// The acting instructor's role does not allow the change; the message says which role
    /// it needs, and where.
    #[error("{0}")]
    Forbidden(String),
    /// A queue or limit is full for now; trying later may succeed. The message says which.
    #[error("{0}")]
    Busy(String),
    /// The thing existed and is gone for good (a withdrawn award); the message says why.
    #[error("{0}")]
    Gone(&'static str),
    /// Something failed on our side (drawing, baking, a background task); the cause is kept
    /// for the log and never shown to clients.
    #[error(transparent)]
    Internal(anyhow::Error),
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
}

impl StoreError {
    /// An `Invalid` error for one field.
    pub fn field(field: &'static str, message: impl Into<String>) -> StoreError {
        let mut e = crate::domain::FieldErrors::new();
        e.add(field, message);
        StoreError::Invalid(e)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Marks a failure as the database being busy where the error itself cannot travel, such as
/// through the session middleware: [`is_unavailable`] recognises it.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the session store's database is busy")]
pub struct Unavailable;

/// True when `e` says the database could not be had in time: the pool gave no connection
/// within its timeout, or SQLite stayed locked past the busy timeout. Trying again later may
/// succeed. Looks at `e` itself; walk a cause chain with it.
pub fn is_unavailable(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.is::<Unavailable>() {
        return true;
    }
    if e.is::<diesel::r2d2::PoolError>() {
        return true;
    }
    if let Some(diesel::result::Error::DatabaseError(_, info)) = e.downcast_ref::<diesel::result::Error>() {
        // SQLITE_BUSY and SQLITE_LOCKED, as SQLite words them.
        let message = info.message();
        return message.starts_with("database is locked") || message.starts_with("database table is locked");
    }
    match e.downcast_ref::<StoreError>() {
        Some(StoreError::Db(e)) => is_unavailable(e),
        Some(StoreError::Pool(_)) => true,
        Some(StoreError::Internal(e)) => e.chain().any(is_unavailable),
        _ => false,
    }
}

/// Turns "no row" into `StoreError::NotFound(what)`.
pub trait OptionalExt<T> {
    fn found(self, what: &'static str) -> StoreResult<T>;
}

impl<T> OptionalExt<T> for Result<T, diesel::result::Error> {
    fn found(self, what: &'static str) -> StoreResult<T> {
        match self {
            Ok(v) => Ok(v),
            Err(diesel::result::Error::NotFound) => Err(StoreError::NotFound(what)),
            Err(e) => Err(e.into()),
        }
    }
}

/// Runs `f` in a write transaction. At the top level it is `BEGIN IMMEDIATE`, so that a
/// transaction that reads before writing waits for the write lock (busy timeout) instead of
/// failing with "database is locked"; inside another transaction it is a savepoint.
pub fn write_tx<T, E, F>(conn: &mut SqliteConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut SqliteConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let depth = AnsiTransactionManager::transaction_manager_status_mut(conn).transaction_depth().ok().flatten();
    if depth.is_some() { conn.transaction(f) } else { conn.immediate_transaction(f) }
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;

    /// `.cargo/config.toml` builds SQLite with the query planner stability guarantee, so that
    /// statements with a bound LIMIT (every `.first()`) are prepared once, not on every run;
    /// in multi-thread mode, without per-connection mutexes; and without allocation counts.
    #[test]
    fn sqlite_is_built_as_configured() {
        #[derive(QueryableByName)]
        struct Opt {
            #[diesel(sql_type = diesel::sql_types::Text)]
            compile_options: String,
        }
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        let opts: Vec<String> = diesel::sql_query("SELECT compile_options FROM pragma_compile_options")
            .load::<Opt>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|o| o.compile_options)
            .collect();
        for wanted in ["ENABLE_QPSG", "THREADSAFE=2", "DEFAULT_MEMSTATUS=0"] {
            assert!(opts.iter().any(|o| o == wanted), "{wanted} not in {opts:?}");
        }
    }
}
