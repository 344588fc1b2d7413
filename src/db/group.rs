//! Group commit: the writes of many concurrent callers share one SQLite transaction.
//!
//! A transaction's fixed costs are paid per commit: taking the write lock, writing the WAL
//! frames of every page it touched, and the checkpoints those frames lead to. Neighbouring
//! writes share pages (a table's last leaf, its indexes, running totals), and within one
//! commit such a page is written once rather than once per caller. The harvester stores the
//! feeds of a pass this way.
//!
//! Each caller's work runs in a savepoint of its own, so one that fails is rolled back alone
//! and the others still commit. A caller is answered only once the shared transaction has
//! committed, and with an error if it did not: no one is told "stored" for a write that
//! was lost.

use diesel::sqlite::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use super::{DbPool, StoreError, StoreResult};

/// Answers one caller, given whether the shared transaction committed.
type Reply = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;
/// One caller's work, run inside the shared transaction.
type Job = Box<dyn FnOnce(&mut SqliteConnection) -> Reply + Send>;

/// A handle to a writer task that commits its callers' work in groups. Cheap to clone; the
/// task ends once every handle is dropped and the queued work is done.
#[derive(Clone)]
pub struct GroupWriter {
    jobs: mpsc::Sender<Job>,
}

impl GroupWriter {
    /// Starts a writer on the current Tokio runtime that commits up to `max_group` callers'
    /// work at a time: whatever is waiting when the previous commit ends, so a lone caller
    /// is never held back waiting for company.
    pub fn spawn(pool: DbPool, max_group: usize) -> GroupWriter {
        let max_group = max_group.max(1);
        let (jobs, mut queue) = mpsc::channel::<Job>(max_group * 2);
        tokio::spawn(async move {
            let mut group = Vec::with_capacity(max_group);
            while queue.recv_many(&mut group, max_group).await > 0 {
                let jobs = std::mem::take(&mut group);
                let outcome = super::run(&pool, move |c| Ok(commit(c, jobs))).await;
                // Jobs a failed connection or task never ran are dropped with their reply
                // channels, and their callers see the writer's error below.
                if let Ok(Err(e)) | Err(e) = outcome {
                    tracing::error!(error = %e, "a group of database writes did not commit");
                }
            }
        });
        GroupWriter { jobs }
    }

    /// Runs `work` in the next group's transaction, in a savepoint of its own, and returns
    /// its result once that transaction has committed.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job = job(work, answer);
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// `work` as a job: run in a savepoint, its result held back until the group's transaction
/// has ended, and then sent to `answer`.
fn job<T, F>(work: F, answer: oneshot::Sender<StoreResult<T>>) -> Job
where
    T: Send + 'static,
    F: FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
{
    Box::new(move |c| {
        let result = super::write_tx(c, work);
        Box::new(move |committed: Result<(), &StoreError>| {
            let _ = answer.send(match committed {
                Ok(()) => result,
                Err(e) => result.and_then(|_| Err(not_committed(e))),
            });
        })
    })
}

/// Runs a group's jobs in one write transaction and answers each caller after it ends.
/// Returns the transaction's own error, if any, for the log.
fn commit(conn: &mut SqliteConnection, jobs: Vec<Job>) -> StoreResult<()> {
    let mut replies = Vec::with_capacity(jobs.len());
    let committed = super::write_tx(conn, |c| -> StoreResult<()> {
        replies.extend(jobs.into_iter().map(|job| job(c)));
        Ok(())
    });
    for reply in replies {
        reply(committed.as_ref().map(|_| ()));
    }
    committed
}

fn not_committed(e: &StoreError) -> StoreError {
    StoreError::Internal(anyhow::anyhow!("the shared write transaction did not commit: {e}"))
}

fn stopped() -> StoreError {
    StoreError::Internal(anyhow::anyhow!("the database writer stopped before the write was done"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn pool() -> (tempfile::TempDir, DbPool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&dir.path().join("cairn.db")).unwrap();
        diesel::sql_query("CREATE TABLE notes (n INTEGER NOT NULL UNIQUE)").execute(&mut pool.get().unwrap()).unwrap();
        (dir, pool)
    }

    fn insert(n: i64) -> impl FnOnce(&mut SqliteConnection) -> StoreResult<i64> + Send + 'static {
        move |c| {
            diesel::sql_query("INSERT INTO notes (n) VALUES (?)").bind::<BigInt, _>(n).execute(c)?;
            Ok(n)
        }
    }

    /// Concurrent writers share commits, a failing one is rolled back alone, and every
    /// caller gets its own answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_share_commits_and_a_failure_stays_its_own() {
        let (_dir, pool) = pool();
        let writer = GroupWriter::spawn(pool.clone(), 8);
        let mut calls = tokio::task::JoinSet::new();
        // 40 distinct notes, and note 7 a second time: that insert breaks UNIQUE.
        for n in (0..40).chain([7]) {
            let w = writer.clone();
            calls.spawn(async move { (n, w.write(insert(n)).await) });
        }
        let (mut ok, mut failed) = (0, 0);
        while let Some(done) = calls.join_next().await {
            match done.unwrap() {
                (n, Ok(m)) => {
                    assert_eq!(n, m);
                    ok += 1;
                }
                (7, Err(StoreError::Db(_))) => failed += 1,
                (n, Err(e)) => panic!("note {n} failed: {e}"),
            }
        }
        assert_eq!((ok, failed), (40, 1));
        let stored: Count =
            diesel::sql_query("SELECT count(*) AS n FROM notes").get_result(&mut pool.get().unwrap()).unwrap();
        assert_eq!(stored.n, 40);
    }

    /// Work done before a failed commit is reported as failed, not as stored.
    #[test]
    fn no_caller_is_told_stored_when_the_group_does_not_commit() {
        let (_dir, pool) = pool();
        let mut c = pool.get().unwrap();
        let (answer, answered) = oneshot::channel();
        let kept = job(insert(1), answer);
        // A second job that ends the shared transaction itself, so that its COMMIT fails.
        let breaker: Job = Box::new(|c| {
            c.batch_execute("ROLLBACK").unwrap();
            Box::new(|_| {})
        });
        assert!(commit(&mut c, vec![kept, breaker]).is_err());
        let answer = answered.blocking_recv().unwrap();
        assert!(
            answer.as_ref().is_err_and(|e| e.to_string().contains("did not commit")),
            "{:?}",
            answer.map_err(|e| e.to_string())
        );
        let stored: Count = diesel::sql_query("SELECT count(*) AS n FROM notes").get_result(&mut c).unwrap();
        assert_eq!(stored.n, 0);
    }
}
