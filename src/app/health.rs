//! Readiness: whether this server can do its work now. A load balancer asks `/readyz`; each
//! check says in plain words what is wrong, never a secret. Every check is bounded: a database
//! that does not answer within [`BOUND`] is "not ready", and a check still running from an
//! earlier request is not started again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::SqliteConnection;
use diesel::connection::SimpleConnection as _;

use crate::db::DbPool;
use crate::ledger::Ledger;

/// How long the database checks may take before the database counts as not answering.
pub const BOUND: Duration = Duration::from_secs(2);

/// The names of the checks, in the order they are reported.
pub const CHECKS: [&str; 5] = ["database", "migrations", "chain", "keys", "jobs"];

/// One check's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Every check's outcome; ready when all are ok.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub checks: Vec<Check>,
}

/// What readiness looks at beyond the pool and the ledger: the data dir's key files and the
/// background jobs' status.
#[derive(Clone)]
pub struct Probe {
    data_dir: PathBuf,
    jobs: crate::jobs::Status,
    /// Held by the database checks in flight, so that probes of a stuck database do not pile
    /// up blocking threads.
    busy: Arc<tokio::sync::Mutex<()>>,
}

impl Probe {
    pub fn new(data_dir: PathBuf, jobs: crate::jobs::Status) -> Probe {
        Probe { data_dir, jobs, busy: Default::default() }
    }

    /// Runs every check, within [`BOUND`] (plus scheduling).
    pub async fn check(&self, pool: &DbPool, ledger: &Arc<Ledger>) -> Readiness {
        let mut checks = match self.busy.clone().try_lock_owned() {
            Ok(guard) => {
                let (pool, ledger, dir) = (pool.clone(), ledger.clone(), self.data_dir.clone());
                let work = tokio::task::spawn_blocking(move || {
                    let out = store_checks(&pool, &ledger, &dir);
                    drop(guard);
                    out
                });
                match tokio::time::timeout(BOUND, work).await {
                    Ok(Ok(checks)) => checks,
                    Ok(Err(e)) => unchecked(&format!("the check failed: {e}")),
                    Err(_) => unchecked(&format!("the database did not answer within {} s", BOUND.as_secs())),
                }
            }
            Err(_) => unchecked("an earlier check of the database has not finished: the database is slow to answer"),
        };
        checks.push(self.jobs_check());
        Readiness { ready: checks.iter().all(|c| c.ok), checks }
    }

    fn jobs_check(&self) -> Check {
        let (started, alive) = self.jobs.counts();
        let (ok, detail) = if started == 0 {
            (false, "the background jobs have not started".to_string())
        } else if alive < started {
            (false, format!("{} of {started} background jobs have stopped", started - alive))
        } else {
            (true, format!("{started} background jobs running"))
        };
        Check { name: "jobs", ok, detail }
    }
}

/// The database is taken as not answering; the checks that need it are not made.
fn unchecked(why: &str) -> Vec<Check> {
    let mut out = vec![Check { name: "database", ok: false, detail: why.to_string() }];
    for name in &CHECKS[1..4] {
        out.push(Check { name, ok: false, detail: "not checked: the database does not answer".into() });
    }
    out
}

/// The checks that read the store, on one connection: database, migrations, chain, keys.
fn store_checks(pool: &DbPool, ledger: &Ledger, data_dir: &Path) -> Vec<Check> {
    let mut conn = match pool.get_timeout(BOUND) {
        Ok(c) => c,
        Err(_) => return unchecked(&format!("no database connection was free within {} s", BOUND.as_secs())),
    };
    if let Err(e) = conn.batch_execute("SELECT 1") {
        return unchecked(&format!("the database does not answer: {e}"));
    }
    let mut out = vec![Check { name: "database", ok: true, detail: "answers".into() }];
    out.push(match crate::db::backup::migration_status(&mut conn) {
        Ok(s) if s.current() => Check {
            name: "migrations",
            ok: true,
            detail: format!("current (schema version {})", s.version().unwrap_or("none")),
        },
        Ok(s) => {
            let mut why = Vec::new();
            if !s.pending.is_empty() {
                why.push(format!("{} pending: {}", s.pending.len(), s.pending.join(", ")));
            }
            if !s.unknown.is_empty() {
                why.push(format!("run by a newer version of Cairn: {}", s.unknown.join(", ")));
            }
            Check { name: "migrations", ok: false, detail: why.join("; ") }
        }
        Err(e) => Check { name: "migrations", ok: false, detail: format!("cannot be read: {e}") },
    });
    out.push(match ledger.loaded_height() {
        Some(height) => Check { name: "chain", ok: true, detail: format!("loaded, height {height}") },
        None => Check { name: "chain", ok: false, detail: "the chain is not loaded from the store".into() },
    });
    out.push(match keys_match(&mut conn, data_dir, ledger.key()) {
        Ok(()) => Check { name: "keys", ok: true, detail: "the key files are the institution's".into() },
        Err(why) => Check { name: "keys", ok: false, detail: why },
    });
    out
}

/// The key files in the data dir are the institution's: `institution.key` is the key this
/// server signs with and the one its newest record on the chain was signed by, and the current
/// credential key's file holds the key the database names.
fn keys_match(conn: &mut SqliteConnection, data_dir: &Path, key: &cairn_chain::SigningKey) -> Result<(), String> {
    let ours = key.verifying_key().to_bytes();
    let on_disk = std::fs::read(data_dir.join("institution.key"))
        .map_err(|e| format!("institution.key cannot be read from the data dir: {e}"))?;
    let seed: [u8; 32] =
        on_disk.as_slice().try_into().map_err(|_| "institution.key does not hold a 32-byte key".to_string())?;
    if cairn_chain::SigningKey::from_bytes(&seed).verifying_key().to_bytes() != ours {
        return Err("institution.key in the data dir is not the key this server signs with".into());
    }
    let latest = crate::db::backup::latest_own_record(conn).map_err(|e| format!("cannot read the records: {e}"))?;
    if let Some(bytes) = latest {
        let record = cairn_chain::Record::decode(&bytes).map_err(|e| format!("a record is unreadable: {e}"))?;
        if record.institution != ours {
            return Err(format!(
                "the institution's newest record was signed by {}, not by institution.key ({})",
                cairn_chain::to_hex(&record.institution),
                cairn_chain::to_hex(&ours)
            ));
        }
    }
    let keys = crate::db::backup::credential_keys(conn).map_err(|e| format!("cannot read the credential keys: {e}"))?;
    if let Some(current) = keys.iter().find(|k| k.current)
        && let Some(file) = &current.key_file
    {
        if !crate::db::datadir::is_credential_key_name(file) {
            return Err(format!("the database names a credential key file {file:?}"));
        }
        let bytes = std::fs::read(data_dir.join(file))
            .map_err(|e| format!("the current credential key's file {file} cannot be read: {e}"))?;
        if crate::app::backup::credential_public(&bytes).as_deref() != Some(current.public_key.as_str()) {
            return Err(format!("{file} does not hold the current credential key {}", current.public_key));
        }
    }
    Ok(())
}
