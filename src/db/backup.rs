//! What a backup needs from the store: a consistent copy of the database while others write,
//! and the facts a restored copy is checked against (its counts, its schema, its keys) and
//! reported by (its instructors, API tokens and webhooks).

use std::path::Path;

use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel_migrations::MigrationHarness as _;

use super::schema::{api_tokens, authors, awards, blocks, chain_records, credential_keys, instructors, webhooks};
use super::{StoreError, StoreResult};

/// Writes a copy of the whole database to `dest` (which must not exist) with `VACUUM INTO`.
/// It reads in one transaction, so the copy holds exactly the commits made before it began,
/// and in WAL mode writers go on meanwhile.
pub fn snapshot(conn: &mut SqliteConnection, dest: &Path) -> StoreResult<()> {
    let dest = dest.to_str().ok_or_else(|| StoreError::Internal(anyhow::anyhow!("backup path is not UTF-8")))?;
    diesel::sql_query("VACUUM INTO ?").bind::<Text, _>(dest).execute(conn)?;
    Ok(())
}

/// What a backup counts, and a restore checks against the archive's manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub awards: i64,
    pub learners: i64,
    /// Main-chain blocks.
    pub blocks: i64,
    /// Chain records: pending or in a block, this institution's and relayed ones.
    pub records: i64,
}

pub fn counts(conn: &mut SqliteConnection) -> StoreResult<Counts> {
    Ok(Counts {
        awards: awards::table.count().get_result(conn)?,
        learners: authors::table.count().get_result(conn)?,
        blocks: blocks::table.filter(blocks::on_main.eq(true)).count().get_result(conn)?,
        records: chain_records::table.count().get_result(conn)?,
    })
}

/// The records this institution made for its own awards and revocations, as stored bytes.
pub fn own_records(conn: &mut SqliteConnection) -> StoreResult<Vec<Vec<u8>>> {
    Ok(chain_records::table.filter(chain_records::award_id.is_not_null()).select(chain_records::bytes).load(conn)?)
}

/// One row of `sqlite_master`: a table, index, view or trigger and the SQL that made it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, diesel::QueryableByName)]
pub struct SchemaObject {
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub table: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub sql: Option<String>,
}

/// Every object of the database's schema, sorted.
pub fn schema(conn: &mut SqliteConnection) -> StoreResult<Vec<SchemaObject>> {
    let mut rows: Vec<SchemaObject> = diesel::sql_query(
        "SELECT type AS kind, name, tbl_name AS \"table\", sql FROM sqlite_master ORDER BY type, name",
    )
    .load(conn)?;
    rows.sort();
    Ok(rows)
}

#[derive(diesel::QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The versions of the migrations the database says it has run (none for an empty file).
pub fn applied_migrations(conn: &mut SqliteConnection) -> StoreResult<Vec<String>> {
    let present: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '__diesel_schema_migrations'",
    )
    .get_result(conn)?;
    if present.n == 0 {
        return Ok(Vec::new());
    }
    let rows: Vec<Version> = diesel::sql_query("SELECT version FROM __diesel_schema_migrations").load(conn)?;
    Ok(rows.into_iter().map(|v| v.version).collect())
}

/// Where the database's schema stands against the migrations compiled into this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// The versions run, oldest first.
    pub applied: Vec<String>,
    /// Migrations of this build not yet run, by name, in the order they would run.
    pub pending: Vec<String>,
    /// Versions run that this build does not know (a newer build ran them).
    pub unknown: Vec<String>,
}

impl MigrationStatus {
    /// The schema version: the newest migration run.
    pub fn version(&self) -> Option<&str> {
        self.applied.last().map(String::as_str)
    }

    /// True when every migration of this build has run and no other.
    pub fn current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty()
    }
}

/// Compares the migrations the database has run with this build's, reading only.
pub fn migration_status(conn: &mut SqliteConnection) -> StoreResult<MigrationStatus> {
    let known = diesel::migration::MigrationSource::<diesel::sqlite::Sqlite>::migrations(&super::MIGRATIONS)
        .map_err(|e| StoreError::Internal(anyhow::anyhow!(e.to_string())))?;
    let mut applied = applied_migrations(conn)?;
    applied.sort();
    let versions: Vec<String> = known.iter().map(|m| m.name().version().to_string()).collect();
    let pending =
        known.iter().zip(&versions).filter(|(_, v)| !applied.contains(v)).map(|(m, _)| m.name().to_string()).collect();
    let unknown = applied.iter().filter(|v| !versions.contains(v)).cloned().collect();
    Ok(MigrationStatus { applied, pending, unknown })
}

/// The names of this build's migrations, in the order they run.
pub fn migration_names() -> StoreResult<Vec<String>> {
    let known = diesel::migration::MigrationSource::<diesel::sqlite::Sqlite>::migrations(&super::MIGRATIONS)
        .map_err(|e| StoreError::Internal(anyhow::anyhow!(e.to_string())))?;
    Ok(known.iter().map(|m| m.name().to_string()).collect())
}

/// The name of this build's migration of `version`, if it has one.
pub fn migration_name(version: &str) -> StoreResult<Option<String>> {
    let known = diesel::migration::MigrationSource::<diesel::sqlite::Sqlite>::migrations(&super::MIGRATIONS)
        .map_err(|e| StoreError::Internal(anyhow::anyhow!(e.to_string())))?;
    Ok(known.iter().find(|m| m.name().version().to_string() == version).map(|m| m.name().to_string()))
}

/// The newest record of one of this institution's awards, as stored (none before the first award).
pub fn latest_own_record(conn: &mut SqliteConnection) -> StoreResult<Option<Vec<u8>>> {
    Ok(chain_records::table
        .filter(chain_records::award_id.is_not_null())
        .order(chain_records::id.desc())
        .select(chain_records::bytes)
        .first(conn)
        .optional()?)
}

/// The schema Cairn's own migrations make when exactly `versions` of them have run, built in a
/// new in-memory database. `Err` names a version this build does not know.
pub fn migrated_schema(versions: &[String]) -> StoreResult<Result<Vec<SchemaObject>, String>> {
    let internal = |e: String| StoreError::Internal(anyhow::anyhow!(e));
    let known = diesel::migration::MigrationSource::<diesel::sqlite::Sqlite>::migrations(&super::MIGRATIONS)
        .map_err(|e| internal(e.to_string()))?;
    let names: Vec<String> = known.iter().map(|m| m.name().version().to_string()).collect();
    if let Some(unknown) = versions.iter().find(|v| !names.contains(v)) {
        return Ok(Err(unknown.clone()));
    }
    let mut conn = SqliteConnection::establish(":memory:").map_err(|e| internal(e.to_string()))?;
    conn.batch_execute("PRAGMA foreign_keys = ON;")?;
    diesel::migration::MigrationConnection::setup(&mut conn)?;
    for (m, name) in known.iter().zip(&names) {
        if versions.contains(name) {
            conn.run_migration(&**m).map_err(|e| internal(format!("migration {name}: {e}")))?;
        }
    }
    if versions.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    Ok(Ok(schema(&mut conn)?))
}

/// A credential key as the database names it: its multibase, its file (none for the
/// institution's own key) and whether it still signs.
#[derive(Debug, Clone)]
pub struct CredentialKey {
    pub public_key: String,
    pub key_file: Option<String>,
    pub current: bool,
}

/// Every credential key, the signing one first.
pub fn credential_keys(conn: &mut SqliteConnection) -> StoreResult<Vec<CredentialKey>> {
    let rows: Vec<(String, Option<String>, Option<i64>)> = credential_keys::table
        .order((credential_keys::retired_at.is_not_null(), credential_keys::id.desc()))
        .select((credential_keys::public_key, credential_keys::key_file, credential_keys::retired_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(public_key, key_file, retired)| CredentialKey { public_key, key_file, current: retired.is_none() })
        .collect())
}

/// An API token as a restore reports it: never its secret or hash.
#[derive(Debug, Clone)]
pub struct TokenSummary {
    pub id: i64,
    pub name: String,
    pub instructor: String,
    pub scopes: String,
    pub revoked: bool,
    pub expires_at: Option<i64>,
}

/// A webhook as a restore reports it: never its secret.
#[derive(Debug, Clone)]
pub struct WebhookSummary {
    pub id: i64,
    pub url: String,
    pub instructor: String,
    pub removed: bool,
}

/// Who can act on the instance: instructors' emails, API tokens and webhooks.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub instructors: Vec<String>,
    pub tokens: Vec<TokenSummary>,
    pub webhooks: Vec<WebhookSummary>,
}

pub fn access(conn: &mut SqliteConnection) -> StoreResult<Access> {
    let people: Vec<(i64, String)> =
        instructors::table.order(instructors::id).select((instructors::id, instructors::email)).load(conn)?;
    let email = |id: i64| people.iter().find(|(i, _)| *i == id).map(|(_, e)| e.clone()).unwrap_or_default();
    let tokens = api_tokens::table
        .order(api_tokens::id)
        .select((
            api_tokens::id,
            api_tokens::name,
            api_tokens::instructor_id,
            api_tokens::scopes,
            api_tokens::revoked_at,
            api_tokens::expires_at,
        ))
        .load::<(i64, String, i64, String, Option<i64>, Option<i64>)>(conn)?
        .into_iter()
        .map(|(id, name, who, scopes, revoked, expires_at)| TokenSummary {
            id,
            name,
            instructor: email(who),
            scopes,
            revoked: revoked.is_some(),
            expires_at,
        })
        .collect();
    let webhooks = webhooks::table
        .order(webhooks::id)
        .select((webhooks::id, webhooks::url, webhooks::instructor_id, webhooks::removed_at))
        .load::<(i64, String, i64, Option<i64>)>(conn)?
        .into_iter()
        .map(|(id, url, who, removed)| WebhookSummary { id, url, instructor: email(who), removed: removed.is_some() })
        .collect();
    Ok(Access { instructors: people.into_iter().map(|(_, e)| e).collect(), tokens, webhooks })
}
