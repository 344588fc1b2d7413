//! Whether the public Open Badges documents may have changed: the `doc_generation` counter,
//! bumped by triggers in every transaction that changes what a document or verification page
//! shows (revocations, task, course and institution edits, blocks, Webmentions), whichever
//! process commits it.

use std::path::Path;
use std::sync::Mutex;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::sqlite::SqliteConnection;

use super::{StoreError, StoreResult};

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = BigInt)]
    data_version: i64,
}

#[derive(QueryableByName)]
struct Generation {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The current generation, read on any connection.
pub fn generation(conn: &mut SqliteConnection) -> StoreResult<i64> {
    Ok(diesel::sql_query("SELECT n FROM doc_generation WHERE id = 1").get_result::<Generation>(conn)?.n)
}

/// Watches the generation through a connection of its own. `PRAGMA data_version` on that
/// connection changes exactly when another connection (of this or any other process) has
/// committed; it reads the WAL index in shared memory, so the counter itself is read only then.
pub struct Watch {
    /// (connection, data_version last seen, generation then).
    inner: Mutex<(SqliteConnection, i64, i64)>,
}

impl Watch {
    /// Opens the watch connection on the database the pool serves.
    pub fn open(path: &Path) -> anyhow::Result<Watch> {
        use anyhow::Context as _;
        let url = path.to_str().context("database path is not valid UTF-8")?;
        let mut conn = SqliteConnection::establish(url)?;
        // Called on the request path: a reader in WAL mode is almost never refused, and when
        // it is, the caller serves from the store rather than wait.
        conn.batch_execute("PRAGMA busy_timeout = 0; PRAGMA query_only = ON;")?;
        let version = data_version(&mut conn)?;
        let generation = generation(&mut conn)?;
        Ok(Watch { inner: Mutex::new((conn, version, generation)) })
    }

    /// The generation as of now: every commit made before this call is counted.
    pub fn current(&self) -> StoreResult<i64> {
        let mut guard = self.inner.lock().map_err(|_| StoreError::Internal(anyhow::anyhow!("watch lock poisoned")))?;
        let (conn, seen, n) = &mut *guard;
        let version = data_version(conn)?;
        if version != *seen {
            *n = generation(conn)?;
            *seen = version;
        }
        Ok(*n)
    }
}

fn data_version(conn: &mut SqliteConnection) -> StoreResult<i64> {
    Ok(diesel::sql_query("PRAGMA data_version").get_result::<Version>(conn)?.data_version)
}
