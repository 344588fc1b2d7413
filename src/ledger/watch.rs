//! The chain watcher: what other processes commit — a record pooled by `cairn award`, blocks
//! added by `cairn chain import` — reaches this process within a few tens of milliseconds.
//!
//! One connection of its own asks SQLite for `PRAGMA data_version` every [`WATCH_EVERY`]; the
//! number changes only when another connection commits, so an idle store costs one cheap
//! statement a look. Only when it changes are the chain's marks read (one statement on the
//! pending pool's index), and only when they moved is the miner woken or the chain cache
//! brought up to date. Between looks the cache counts as current, so readers of the chain
//! ([`Ledger::with_chain`]) skip the store entirely.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::SqliteConnection;

use super::Ledger;
use crate::db::{self, chain::ChainMarks};
use crate::jobs::Pass;

/// How often the watcher looks at the store.
pub const WATCH_EVERY: Duration = Duration::from_millis(25);

/// How long after the watcher's last look the cache counts as current. Well above
/// [`WATCH_EVERY`], so a busy machine does not send every reader to the store; when the
/// watcher is slower than this (or failing), readers ask the store themselves.
const FRESH_FOR: Duration = Duration::from_millis(250);

/// The watcher job's state; cloning shares it.
#[derive(Clone)]
pub struct Watcher {
    ledger: Arc<Ledger>,
    path: PathBuf,
    seen: Arc<Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    conn: Option<SqliteConnection>,
    version: Option<i64>,
    marks: Option<ChainMarks>,
}

impl Watcher {
    /// A watcher of the database at `path` (the ledger's own store).
    pub fn new(ledger: Arc<Ledger>, path: PathBuf) -> Watcher {
        Watcher { ledger, path, seen: Default::default() }
    }

    /// One look, on a blocking thread. Always idle: the job's tick is the poll interval.
    pub async fn pass(&self) -> anyhow::Result<Pass> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.look()).await??;
        Ok(Pass::Idle)
    }

    /// Stops vouching for the cache: readers ask the store again (the server is stopping).
    pub fn stop(&self) {
        self.ledger.watched_at.store(0, Ordering::Relaxed);
    }

    fn look(&self) -> anyhow::Result<()> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let looked = self.look_with(&mut seen);
        if looked.is_err() {
            // A new connection next time; meanwhile readers check the store themselves.
            *seen = Seen::default();
            self.stop();
        }
        looked
    }

    fn look_with(&self, seen: &mut Seen) -> anyhow::Result<()> {
        let conn = match &mut seen.conn {
            Some(c) => c,
            None => seen.conn.insert(db::connect(&self.path)?),
        };
        let version = db::data_version(conn)?;
        if seen.version != Some(version) {
            let marks = db::chain::marks(conn)?;
            // Blocks this process stored are already in the cache; only others' are read.
            if marks.newest_block != self.ledger.cached_rows() {
                self.ledger.catch_up()?;
            }
            let pool_moved =
                seen.marks.is_none_or(|m| (m.newest_pending, m.pending) != (marks.newest_pending, marks.pending));
            if pool_moved && marks.pending >= i64::from(self.ledger.params.records_per_block) {
                self.ledger.wake.notify_one();
            }
            seen.version = Some(version);
            seen.marks = Some(marks);
        }
        self.ledger.watched_now();
        Ok(())
    }
}

impl Ledger {
    /// True while the watcher vouches for the cache.
    pub(super) fn watch_is_fresh(&self) -> bool {
        let at = self.watched_at.load(Ordering::Relaxed);
        at != 0 && self.millis().saturating_sub(at) <= FRESH_FOR.as_millis() as u64
    }

    fn watched_now(&self) {
        // Never 0, which means "not watched".
        self.watched_at.store(self.millis().max(1), Ordering::Relaxed);
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt as _;

    /// Two ledgers over one database file stand for `cairn serve` and another process.
    #[test]
    fn what_another_process_commits_wakes_the_miner_and_reaches_the_cache_at_the_next_look() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.db");
        let mut chain = crate::config::Settings::defaults().chain;
        chain.difficulty_bits = 8;
        let here = Ledger::open(db::open(&path).unwrap(), &chain, dir.path()).unwrap();
        let there = Ledger::open(db::open(&path).unwrap(), &chain, dir.path()).unwrap();
        let watcher = Watcher::new(here.clone(), path.clone());
        let woken = || here.wake.notified().now_or_never().is_some();
        let tip_moved = || here.tip_changed.notified().now_or_never().is_some();
        assert!(!here.watch_is_fresh(), "nothing vouches for the cache before the first look");
        watcher.look().unwrap();
        assert!(here.watch_is_fresh());
        assert!(!woken(), "an empty pool wakes nothing");

        let now = crate::clock::system_now();
        let mut conn = there.pool.get().unwrap();
        let pool_one = |conn: &mut SqliteConnection, i: usize| {
            let url = format!("https://other.example/assertions/{i}");
            let fields = super::super::fields_for(
                cairn_chain::RecordKind::Award,
                "https://other.example",
                &url,
                "https://other.example/badges/el30-data",
                "sha256$00",
                cairn_chain::Hash::default(),
                now,
            );
            super::super::pool_record(conn, there.key(), fields, None).unwrap();
        };
        for i in 0..4 {
            pool_one(&mut conn, i);
        }
        watcher.look().unwrap();
        assert!(!woken(), "four records are not a block");
        pool_one(&mut conn, 4);
        watcher.look().unwrap();
        assert!(woken(), "the fifth record wakes the miner");
        watcher.look().unwrap();
        assert!(!woken(), "a look that finds nothing new wakes nothing");

        // The other process mines the block; this cache learns it at the next look, and the
        // search this process may have started is for a stale parent.
        assert!(there.mine_once(now).unwrap().is_some());
        assert_eq!(here.lock().chain.height(), 0);
        watcher.look().unwrap();
        assert_eq!(here.lock().chain.height(), 1);
        assert_eq!(here.lock().chain.tip().1, there.lock().chain.tip().1);
        assert!(tip_moved() && woken());

        watcher.stop();
        assert!(!here.watch_is_fresh(), "a stopped watcher no longer vouches for the cache");
    }

    #[test]
    fn blocks_added_elsewhere_reach_the_cache_one_catch_up_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.db");
        let mut chain = crate::config::Settings::defaults().chain;
        chain.difficulty_bits = 4;
        let here = Ledger::open(db::open(&path).unwrap(), &chain, dir.path()).unwrap();
        let there = Ledger::open(db::open(&path).unwrap(), &chain, dir.path()).unwrap();
        let now = crate::clock::system_now();
        let mut conn = there.pool.get().unwrap();
        for block in 0..3 {
            for i in 0..5 {
                let url = format!("https://other.example/assertions/{block}-{i}");
                let fields = super::super::fields_for(
                    cairn_chain::RecordKind::Award,
                    "https://other.example",
                    &url,
                    "https://other.example/badges/el30-data",
                    "sha256$00",
                    cairn_chain::Hash::default(),
                    now,
                );
                super::super::pool_record(&mut conn, there.key(), fields, None).unwrap();
            }
            assert!(there.mine_once(now).unwrap().is_some());
            let before = here.cached_rows();
            assert!(here.catch_up().unwrap(), "block {block} moves the tip");
            assert!(here.cached_rows() > before);
        }
        assert_eq!(here.lock().chain.height(), 3);
        assert_eq!(here.lock().chain.tip(), there.lock().chain.tip());
        assert!(!here.catch_up().unwrap(), "nothing new, nothing moves");
    }
}
