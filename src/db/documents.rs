//! Whether the public Open Badges documents may have changed: the `doc_generation` counter,
//! bumped by triggers in every transaction that changes what a document or verification page
//! shows (revocations, task, course and institution edits, blocks, Webmentions), whichever
//! process commits it.

use std::path::Path;
use std::sync::Mutex;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::{StoreError, StoreResult};

// Declared here, not in `schema`: the counter is written only by triggers, and the pragma is
// SQLite's table-valued form of `PRAGMA data_version`. As tables, their queries are prepared
// once per connection and kept, which matters on the request path.
diesel::table! {
    doc_generation (id) {
        id -> BigInt,
        n -> BigInt,
    }
}

diesel::table! {
    pragma_data_version (data_version) {
        data_version -> BigInt,
    }
}

/// The current generation, read on any connection.
pub fn generation(conn: &mut SqliteConnection) -> StoreResult<i64> {
    Ok(doc_generation::table.select(doc_generation::n).find(1).first(conn)?)
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
    Ok(pragma_data_version::table.select(pragma_data_version::data_version).first(conn)?)
}
