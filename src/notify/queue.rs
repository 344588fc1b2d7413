//! The one shape of a sender over a leased queue ([`crate::db::queue`]): the outbox, webhook
//! deliveries and newsletter copies are each a [`Deliver`] — which table, what a due row is,
//! how one is sent, how its outcome is stored — and an [`Engine`] does the rest the same way
//! for all three: claim just before sending (so a lease runs from when its row's turn comes),
//! keep to a pace and a number of sends in flight, turn each failure into its retry time, and
//! record outcomes in short batched transactions.
//!
//! Rows are sent either each on its own ([`Engine::each`]: mails, Webmentions, copies) or in
//! lanes that keep their order ([`Engine::in_order`]: one webhook's events, where a receiver
//! must hear of an award before its revocation). Time comes from the engine's clock.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use diesel::SqliteConnection;

use crate::clock::Clock;
use crate::db::queue::{self, Attempt, Leased, Outcome, State};
use crate::db::{DbPool, StoreError, StoreResult};

/// Most outcomes recorded in one transaction.
const RECORD_BATCH: usize = 200;
/// How long the first outcome of a batch waits for others before the batch is recorded: the
/// rows a crash could send twice are those sent in this window.
const RECORD_LINGER: Duration = Duration::from_millis(50);

/// How sending one row went, before the retry schedule turns it into an [`Outcome`].
pub(crate) enum Sent<X> {
    /// Delivered ([`State::Sent`]), or nothing to deliver ([`State::NoEndpoint`]), with what
    /// the table keeps of it.
    Done(State, X),
    /// Refused for good.
    Failed(String, X),
    /// Failed in a way that may pass: retried on [`queue::retry_schedule`], not before `after`
    /// seconds when the receiver asked for that.
    Retry { error: String, after: Option<u64> },
}

/// What the engine reads of a due row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    pub id: i64,
    /// Attempts made before this one.
    pub attempts: i64,
    pub created_at: i64,
}

/// One kind of thing sent from a leased queue.
pub(crate) trait Deliver: Clone + Send + Sync + 'static {
    /// The table.
    type Queue: Leased;
    /// A due row, as the table's own `due` query loads it.
    type Row: Send + 'static;
    /// What the table keeps of an attempt beside its outcome (nothing, for most).
    type Extra: Default + Clone + Send + 'static;

    fn key(row: &Self::Row) -> Key;

    /// Sends one claimed row. An error leaves the row leased (it is tried again when the
    /// lease runs out) and, in a lane, holds back the rest of the lane.
    fn send(&self, row: Self::Row) -> impl Future<Output = StoreResult<Sent<Self::Extra>>> + Send;

    /// Records a batch of outcomes in one transaction.
    fn record(conn: &mut SqliteConnection, attempts: Vec<(Attempt, Self::Extra)>, now: i64) -> StoreResult<()>;
}

/// At most so many starts a minute, shared by every pass that holds a clone.
#[derive(Clone)]
pub(crate) struct Pace {
    gap: Duration,
    next: Arc<tokio::sync::Mutex<tokio::time::Instant>>,
}

impl Pace {
    pub(crate) fn per_minute(n: u32) -> Pace {
        Pace {
            gap: Duration::from_secs(60) / n.max(1),
            next: Arc::new(tokio::sync::Mutex::new(tokio::time::Instant::now())),
        }
    }

    /// Waits until the pace allows another start.
    async fn wait(&self) {
        let mut next = self.next.lock().await;
        let now = tokio::time::Instant::now();
        if *next > now {
            tokio::time::sleep_until(*next).await;
        }
        *next = (*next).max(now) + self.gap;
    }
}

/// Claims, sends and records the rows of one queue.
#[derive(Clone)]
pub(crate) struct Engine {
    pub pool: DbPool,
    pub clock: Clock,
    /// How long a claim holds a row: longer than a send may take.
    pub lease_secs: i64,
    /// Sends in flight (rows, or lanes for [`Engine::in_order`]).
    pub slots: Arc<tokio::sync::Semaphore>,
    /// Rows claimed in one statement by [`Engine::each`] (at least one).
    pub claim_chunk: usize,
    pub pace: Option<Pace>,
}

impl Engine {
    /// Claims, sends and records `rows`, each on its own, up to the engine's slots at once and
    /// at its pace; returns how many this caller claimed. Claimed a chunk at a time, just
    /// before they are sent: a claim's lease must outlast the wait its rows have for their turn.
    pub(crate) async fn each<D: Deliver>(&self, d: &D, rows: Vec<D::Row>) -> StoreResult<usize> {
        let (outcomes, recorder) = self.recorder::<D>();
        let mut set = tokio::task::JoinSet::new();
        let mut n = 0;
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let batch: Vec<D::Row> = rows.by_ref().take(self.claim_chunk.max(1)).collect();
            let ids: Vec<i64> = batch.iter().map(|r| D::key(r).id).collect();
            let (at, lease) = (self.clock.now(), self.lease_secs);
            let claimed = crate::db::run(&self.pool, move |c| queue::claim::<D::Queue>(c, &ids, at, lease)).await?;
            for row in batch.into_iter().filter(|r| claimed.contains(&D::key(r).id)) {
                n += 1;
                if let Some(pace) = &self.pace {
                    pace.wait().await;
                }
                let permit = self.slots.clone().acquire_owned().await.map_err(|e| StoreError::Internal(e.into()))?;
                let (d, clock, outcomes) = (d.clone(), self.clock.clone(), outcomes.clone());
                set.spawn(async move {
                    let key = D::key(&row);
                    let sent = d.send(row).await;
                    drop(permit);
                    match sent {
                        // The recorder outlives every sending task of the pass.
                        Ok(sent) => drop(outcomes.send(attempt(key, sent, clock.now()))),
                        Err(e) => failed_send::<D>(e),
                    }
                });
            }
        }
        drop(outcomes);
        while let Some(done) = set.join_next().await {
            if let Err(e) = done {
                tracing::error!(queue = D::Queue::TABLE, error = %e, "a send task failed");
            }
        }
        finish_recording::<D>(recorder).await;
        Ok(n)
    }

    /// Claims, sends and records each lane's rows one after another, oldest first, up to the
    /// engine's slots of lanes at once; a lane whose row was not taken stops there, and its
    /// rest waits for the next pass. Returns how many rows were claimed.
    pub(crate) async fn in_order<D: Deliver>(&self, d: &D, lanes: Vec<Vec<D::Row>>) -> StoreResult<usize> {
        let (outcomes, recorder) = self.recorder::<D>();
        let mut set = tokio::task::JoinSet::new();
        for lane in lanes {
            let permit = self.slots.clone().acquire_owned().await.map_err(|e| StoreError::Internal(e.into()))?;
            let (me, d, outcomes) = (self.clone(), d.clone(), outcomes.clone());
            set.spawn(async move {
                let mut handled = 0;
                for row in lane {
                    let (key, at, lease) = (D::key(&row), me.clock.now(), me.lease_secs);
                    if !crate::db::run(&me.pool, move |c| queue::claim_one::<D::Queue>(c, key.id, at, lease)).await? {
                        continue;
                    }
                    handled += 1;
                    if let Some(pace) = &me.pace {
                        pace.wait().await;
                    }
                    let sent = d.send(row).await?;
                    let taken = matches!(sent, Sent::Done(..));
                    drop(outcomes.send(attempt(key, sent, me.clock.now())));
                    // A receiver that did not take this row would likely not take the next
                    // either: the rest wait for the next pass rather than each its timeout.
                    if !taken {
                        break;
                    }
                }
                drop(permit);
                StoreResult::Ok(handled)
            });
        }
        drop(outcomes);
        let mut n = 0;
        while let Some(done) = set.join_next().await {
            match done {
                Ok(Ok(handled)) => n += handled,
                Ok(Err(e)) => failed_send::<D>(e),
                Err(e) => tracing::error!(queue = D::Queue::TABLE, error = %e, "a send task failed"),
            }
        }
        finish_recording::<D>(recorder).await;
        Ok(n)
    }

    fn recorder<D: Deliver>(&self) -> (Outcomes<D::Extra>, tokio::task::JoinHandle<()>) {
        let (outcomes, recorded) = tokio::sync::mpsc::unbounded_channel();
        (outcomes, tokio::spawn(record::<D>(self.pool.clone(), self.clock.clone(), recorded)))
    }
}

type Outcomes<X> = tokio::sync::mpsc::UnboundedSender<(Attempt, X)>;

/// The attempt a send made of the row `key`, ended at `now`.
fn attempt<X: Default>(key: Key, sent: Sent<X>, now: i64) -> (Attempt, X) {
    let number = key.attempts + 1;
    let (outcome, extra) = match sent {
        Sent::Done(state, extra) => (Outcome::Done(state), extra),
        Sent::Failed(error, extra) => (Outcome::Failed(error), extra),
        Sent::Retry { error, after } => (Outcome::retry(error, number, after, key.created_at, now), X::default()),
    };
    (Attempt { id: key.id, number, outcome }, extra)
}

fn failed_send<D: Deliver>(e: StoreError) {
    tracing::error!(queue = D::Queue::TABLE, error = format!("{:#}", anyhow::Error::new(e)), "a send failed");
}

async fn finish_recording<D: Deliver>(recorder: tokio::task::JoinHandle<()>) {
    if let Err(e) = recorder.await {
        tracing::error!(queue = D::Queue::TABLE, error = %e, "the recorder failed");
    }
}

/// Records outcomes as they come, in batches: what arrives within [`RECORD_LINGER`] of the
/// first outcome (at most [`RECORD_BATCH`]) is written in one short transaction. A batch that
/// cannot be written is tried again; if it still fails, its rows stay leased and are sent
/// again when the lease runs out.
async fn record<D: Deliver>(
    pool: DbPool,
    clock: Clock,
    mut outcomes: tokio::sync::mpsc::UnboundedReceiver<(Attempt, D::Extra)>,
) {
    while let Some(first) = outcomes.recv().await {
        let mut batch = vec![first];
        let linger = tokio::time::sleep(RECORD_LINGER);
        tokio::pin!(linger);
        while batch.len() < RECORD_BATCH {
            tokio::select! {
                next = outcomes.recv() => match next {
                    Some(o) => batch.push(o),
                    None => break,
                },
                () = &mut linger => break,
            }
        }
        for attempt in 1..=3 {
            let (rows, now) = (batch.clone(), clock.now());
            match crate::db::run(&pool, move |c| D::record(c, rows, now)).await {
                Ok(()) => break,
                Err(e) => tracing::error!(
                    queue = D::Queue::TABLE,
                    error = format!("{:#}", anyhow::Error::new(e)),
                    rows = batch.len(),
                    attempt,
                    "recording outcomes failed"
                ),
            }
        }
    }
}
