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
//!
//! A savepoint that cannot be released or rolled back (SQLite ends the whole transaction on
//! some failures, such as a full disk) means the transaction can no longer be trusted: the
//! group is then rolled back whole, and the work not yet run is refused unrun, so that none
//! of it commits on its own outside the group.

use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::sqlite::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use super::{DbPool, StoreError, StoreResult};

/// Answers one caller, given whether the shared transaction committed.
type Reply = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// One caller's work, waiting for its group.
trait Job: Send {
    /// Runs the work in a savepoint of the group's transaction and returns its answer, to be
    /// sent once the transaction has ended. An error means the transaction can no longer be
    /// trusted and must be rolled back; the caller has then been answered already.
    fn run(self: Box<Self>, conn: &mut SqliteConnection) -> StoreResult<Reply>;
    /// Answers the caller with an error, without running the work.
    fn refuse(self: Box<Self>, error: &StoreError);
}

struct Pending<T, F> {
    work: F,
    answer: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut SqliteConnection) -> StoreResult<Reply> {
        let Pending { work, answer } = *self;
        let depth = AnsiTransactionManager::transaction_manager_status_mut(conn).transaction_depth().ok().flatten();
        if depth.map(|d| d.get()) != Some(1) {
            let e = StoreError::Internal(anyhow::anyhow!("the shared write transaction ended early"));
            let _ = answer.send(Err(not_committed(&e)));
            return Err(e);
        }
        // The work's own error is kept aside, so that Diesel's answer tells whether the
        // savepoint itself was rolled back cleanly.
        let mut own_error = None;
        let outcome = conn.transaction(|c| {
            work(c).map_err(|e| {
                own_error = Some(e);
                diesel::result::Error::RollbackTransaction
            })
        });
        match (outcome, own_error) {
            (Ok(value), _) => Ok(reply(answer, Ok(value))),
            // Rolled back to its savepoint; the rest of the group goes on.
            (Err(diesel::result::Error::RollbackTransaction), Some(e)) => Ok(reply(answer, Err(e))),
            (Err(savepoint), own_error) => {
                let savepoint = StoreError::from(savepoint);
                let _ = answer.send(Err(own_error.unwrap_or_else(|| not_committed(&savepoint))));
                Err(savepoint)
            }
        }
    }

    fn refuse(self: Box<Self>, error: &StoreError) {
        let _ = self.answer.send(Err(not_committed(error)));
    }
}

/// Holds `result` back until the group's transaction has ended.
fn reply<T: Send + 'static>(answer: oneshot::Sender<StoreResult<T>>, result: StoreResult<T>) -> Reply {
    Box::new(move |committed: Result<(), &StoreError>| {
        let _ = answer.send(match committed {
            Ok(()) => result,
            Err(e) => result.and_then(|_| Err(not_committed(e))),
        });
    })
}

/// A handle to a writer task that commits its callers' work in groups. Cheap to clone; the
/// task ends once every handle is dropped and the queued work is done.
#[derive(Clone)]
pub struct GroupWriter {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl GroupWriter {
    /// Starts a writer on the current Tokio runtime that commits up to `max_group` callers'
    /// work at a time: whatever is waiting when the previous commit ends, so a lone caller
    /// is never held back waiting for company.
    pub fn spawn(pool: DbPool, max_group: usize) -> GroupWriter {
        let max_group = max_group.max(1);
        let (jobs, mut queue) = mpsc::channel::<Box<dyn Job>>(max_group * 2);
        tokio::spawn(async move {
            let mut group = Vec::with_capacity(max_group);
            while queue.recv_many(&mut group, max_group).await > 0 {
                let jobs = std::mem::take(&mut group);
                let pool = pool.clone();
                let outcome = tokio::task::spawn_blocking(move || match pool.get() {
                    Ok(mut conn) => commit(&mut conn, jobs),
                    Err(e) => {
                        let e = StoreError::from(e);
                        jobs.into_iter().for_each(|job| job.refuse(&e));
                        Err(e)
                    }
                })
                .await;
                // A panicking job drops the answers of its group: those callers see the
                // writer's error below.
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "a group of database writes did not commit"),
                    Err(e) => tracing::error!(error = %e, "a group of database writes failed"),
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
        self.jobs.send(Box::new(Pending { work, answer })).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// Runs a group's jobs in one write transaction and answers each caller once it has ended.
/// Returns the transaction's own error, if any, for the log.
fn commit(conn: &mut SqliteConnection, jobs: Vec<Box<dyn Job>>) -> StoreResult<()> {
    let mut replies = Vec::with_capacity(jobs.len());
    let mut waiting = jobs.into_iter();
    let mut broken = None;
    let committed = super::write_tx(conn, |c| -> StoreResult<()> {
        for job in waiting.by_ref() {
            match job.run(c) {
                Ok(reply) => replies.push(reply),
                Err(e) => {
                    // Kept aside: rolling back a broken transaction may report something else.
                    broken = Some(e);
                    return Err(StoreError::Internal(anyhow::anyhow!("a savepoint failed")));
                }
            }
        }
        Ok(())
    });
    let committed = match broken {
        Some(cause) => Err(cause),
        None => committed,
    };
    let outcome = committed.as_ref().map(|_| ());
    if let Err(e) = outcome {
        waiting.for_each(|job| job.refuse(e));
    }
    for reply in replies {
        reply(outcome);
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

    /// When one caller's work ends the shared transaction itself, no work of the group
    /// commits: not the work before it, and not the work after it on its own.
    #[test]
    fn work_that_ends_the_transaction_takes_the_group_down_and_nothing_commits_alone() {
        let (_dir, pool) = pool();
        let mut c = pool.get().unwrap();
        for breaker_fails in [false, true] {
            let (answers, mut answered): (Vec<_>, Vec<_>) = (0..3).map(|_| oneshot::channel()).unzip();
            let mut answers = answers.into_iter();
            let breaker = move |c: &mut SqliteConnection| -> StoreResult<i64> {
                c.batch_execute("ROLLBACK")?;
                if breaker_fails { Err(StoreError::Conflict("broke it".into())) } else { Ok(2) }
            };
            let jobs: Vec<Box<dyn Job>> = vec![
                Box::new(Pending { work: insert(1), answer: answers.next().unwrap() }),
                Box::new(Pending { work: breaker, answer: answers.next().unwrap() }),
                Box::new(Pending { work: insert(3), answer: answers.next().unwrap() }),
            ];
            assert!(commit(&mut c, jobs).is_err());
            for (n, a) in answered.iter_mut().enumerate() {
                let answer = a.try_recv().expect("every caller is answered");
                assert!(answer.is_err(), "caller {n} was told its write was stored");
            }
            let stored: Count = diesel::sql_query("SELECT count(*) AS n FROM notes").get_result(&mut c).unwrap();
            assert_eq!(stored.n, 0, "breaker_fails = {breaker_fails}");
            // The connection is usable again afterwards.
            assert!(commit(&mut c, Vec::new()).is_ok());
        }
    }
}
