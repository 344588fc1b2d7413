//! The one supervisor of background work. Harvesting, delivering notifications, verifying
//! received Webmentions, exchanging with peers, mining and housekeeping are each a [`Job`]: a
//! pass function the runner calls again and again.
//!
//! - After a pass that did work ([`Pass::More`]) the next one starts at once.
//! - After an idle pass ([`Pass::Idle`]) or a failed one, the runner waits for one of the job's
//!   wake signals, its tick, or the stop signal, whichever comes first.
//! - A failed pass is logged with its whole cause chain; the job goes on.
//! - A pass that panics is logged and the job restarts after a pause that doubles with each
//!   panic in a row (from [`Backoff::first`] up to [`Backoff::max`]).
//! - [`Runner::stop`] signals every job, runs their stop hooks (a miner cancels its search),
//!   and waits a bounded time for passes in flight before abandoning them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// What a pass tells the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Work was done and more may be waiting: run again at once.
    More,
    /// Nothing left to do: wait for a wake signal or the tick.
    Idle,
}

/// How long a job pauses after a panic.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { first: Duration::from_secs(1), max: Duration::from_secs(60) }
    }
}

impl Backoff {
    /// The pause after `panics` panics in a row (1 or more).
    pub fn after(&self, panics: u32) -> Duration {
        let factor = 1u32.checked_shl(panics.saturating_sub(1).min(16)).unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// A background job's description: its name (for logs), how often it runs when idle, and the
/// signals that wake it early.
pub struct Job {
    name: &'static str,
    every: Duration,
    wakes: Vec<Arc<Notify>>,
    on_stop: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Job {
    pub fn new(name: &'static str, every: Duration) -> Job {
        Job { name, every, wakes: Vec::new(), on_stop: None }
    }

    /// Wakes the job when `signal` is notified (a permit left while a pass runs is kept, so a
    /// wake is never lost).
    pub fn wake_on(mut self, signal: Arc<Notify>) -> Job {
        self.wakes.push(signal);
        self
    }

    /// Called once when the runner stops, before it waits for the pass in flight.
    pub fn on_stop(mut self, hook: impl Fn() + Send + Sync + 'static) -> Job {
        self.on_stop = Some(Box::new(hook));
        self
    }
}

/// Whether a runner's jobs are running, cheap to ask (readiness asks it): a count of jobs
/// started and of supervisors still alive. A supervisor that ends, however it ends, counts
/// itself out.
#[derive(Debug, Clone, Default)]
pub struct Status(Arc<StatusCounts>);

#[derive(Debug, Default)]
struct StatusCounts {
    started: AtomicUsize,
    alive: AtomicUsize,
}

impl Status {
    /// Jobs started and jobs still running.
    pub fn counts(&self) -> (usize, usize) {
        (self.0.started.load(Ordering::Relaxed), self.0.alive.load(Ordering::Relaxed))
    }

    /// True when jobs were started and every one of them is still running.
    pub fn running(&self) -> bool {
        let (started, alive) = self.counts();
        started > 0 && alive == started
    }
}

/// Counts a supervisor out when its task ends (returns, panics or is aborted).
struct Alive(Status);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.0.alive.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs jobs until stopped.
pub struct Runner {
    stop: watch::Sender<bool>,
    backoff: Backoff,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    hooks: Vec<Box<dyn Fn() + Send + Sync>>,
    status: Status,
}

impl Default for Runner {
    fn default() -> Self {
        Runner::new(Backoff::default())
    }
}

impl Runner {
    pub fn new(backoff: Backoff) -> Runner {
        Runner {
            stop: watch::channel(false).0,
            backoff,
            tasks: Vec::new(),
            hooks: Vec::new(),
            status: Status::default(),
        }
    }

    /// Reports to `status` (shared with whoever asks whether the jobs run) rather than to
    /// a status of its own; call before spawning.
    pub fn reporting_to(mut self, status: Status) -> Runner {
        self.status = status;
        self
    }

    /// Whether this runner's jobs are running.
    pub fn status(&self) -> Status {
        self.status.clone()
    }

    /// Starts `job`, calling `pass` for each pass. Each pass runs as its own task, so a panic
    /// is caught, logged and followed by a restart.
    pub fn spawn<F, Fut>(&mut self, job: Job, pass: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<Pass>> + Send + 'static,
    {
        let Job { name, every, wakes, on_stop } = job;
        if let Some(hook) = on_stop {
            self.hooks.push(hook);
        }
        let stop = self.stop.subscribe();
        let backoff = self.backoff;
        self.status.0.started.fetch_add(1, Ordering::Relaxed);
        self.status.0.alive.fetch_add(1, Ordering::Relaxed);
        let alive = Alive(self.status.clone());
        let task = tokio::spawn(async move {
            let _alive = alive;
            supervise(name, every, wakes, backoff, stop, pass).await
        });
        self.tasks.push((name, task));
    }

    /// How many jobs are running.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Signals every job to stop, runs the stop hooks, and waits up to `grace` for the passes
    /// in flight; jobs still running then are aborted. Returns the names of those aborted.
    pub async fn stop(self, grace: Duration) -> Vec<&'static str> {
        let _ = self.stop.send(true);
        for hook in &self.hooks {
            hook();
        }
        let deadline = tokio::time::Instant::now() + grace;
        let mut abandoned = Vec::new();
        for (name, mut task) in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                tracing::warn!(job = name, "a background job did not stop in time and was abandoned");
                abandoned.push(name);
            }
        }
        abandoned
    }
}

async fn supervise<F, Fut>(
    name: &'static str,
    every: Duration,
    wakes: Vec<Arc<Notify>>,
    backoff: Backoff,
    mut stop: watch::Receiver<bool>,
    pass: F,
) where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Pass>> + Send + 'static,
{
    tracing::debug!(job = name, "background job started");
    let mut panics = 0u32;
    loop {
        if *stop.borrow() {
            break;
        }
        let outcome = tokio::spawn(pass()).await;
        let pause = match outcome {
            Ok(Ok(Pass::More)) => {
                panics = 0;
                // Lets the other tasks on this thread run between busy passes.
                tokio::task::yield_now().await;
                continue;
            }
            Ok(Ok(Pass::Idle)) => {
                panics = 0;
                Pause::Idle
            }
            Ok(Err(e)) => {
                panics = 0;
                tracing::error!(job = name, error = format!("{e:#}"), "a background pass failed");
                Pause::Idle
            }
            Err(e) => {
                panics += 1;
                let wait = backoff.after(panics);
                crate::metrics::job_restart(name);
                let what = if e.is_panic() { "panicked" } else { "was cancelled" };
                tracing::error!(job = name, error = %e, restart_in_ms = wait.as_millis() as u64,
                    "a background pass {what}; restarting after a pause");
                Pause::Backoff(wait)
            }
        };
        let stopped = match pause {
            Pause::Idle => wait_idle(every, &wakes, &mut stop).await,
            Pause::Backoff(d) => {
                tokio::select! {
                    _ = tokio::time::sleep(d) => false,
                    _ = stop.changed() => true,
                }
            }
        };
        if stopped {
            break;
        }
    }
    tracing::debug!(job = name, "background job stopped");
}

enum Pause {
    Idle,
    Backoff(Duration),
}

/// Waits for a wake signal, `every`, or stop; true when stopped.
async fn wait_idle(every: Duration, wakes: &[Arc<Notify>], stop: &mut watch::Receiver<bool>) -> bool {
    let woken = async {
        if wakes.is_empty() {
            std::future::pending::<()>().await;
        } else {
            futures_util::future::select_all(wakes.iter().map(|w| w.notified().boxed())).await;
        }
    };
    tokio::select! {
        _ = woken => false,
        _ = tokio::time::sleep(every) => false,
        r = stop.changed() => r.is_err() || *stop.borrow(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    const BOUND: Duration = Duration::from_secs(10);

    fn quick() -> Runner {
        Runner::new(Backoff { first: Duration::from_millis(5), max: Duration::from_millis(20) })
    }

    /// A job that reports each pass's number on a channel.
    fn counting(
        runner: &mut Runner,
        job: Job,
        outcome: impl Fn(u32) -> anyhow::Result<Pass> + Send + Sync + 'static,
    ) -> tokio::sync::mpsc::UnboundedReceiver<u32> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let n = Arc::new(AtomicU32::new(0));
        let outcome = Arc::new(outcome);
        runner.spawn(job, move || {
            let (tx, n, outcome) = (tx.clone(), n.clone(), outcome.clone());
            async move {
                let i = n.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = tx.send(i);
                outcome(i)
            }
        });
        rx
    }

    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<u32>) -> u32 {
        tokio::time::timeout(BOUND, rx.recv()).await.expect("a pass within the bound").expect("job alive")
    }

    #[tokio::test]
    async fn a_busy_job_runs_again_at_once_and_an_idle_one_waits_for_a_wake() {
        let mut runner = quick();
        let wake = Arc::new(Notify::new());
        // Three busy passes, then idle; the tick is far away, so only the wake can start pass 5.
        let mut rx = counting(&mut runner, Job::new("test", Duration::from_secs(3600)).wake_on(wake.clone()), |i| {
            Ok(if i < 4 { Pass::More } else { Pass::Idle })
        });
        for want in 1..=4 {
            assert_eq!(next(&mut rx).await, want);
        }
        assert!(rx.try_recv().is_err(), "an idle job must not run before it is woken");
        wake.notify_one();
        assert_eq!(next(&mut rx).await, 5);
        assert!(runner.stop(BOUND).await.is_empty());
    }

    #[tokio::test]
    async fn an_idle_job_runs_again_on_its_tick() {
        let mut runner = quick();
        let mut rx = counting(&mut runner, Job::new("test", Duration::from_millis(10)), |_| Ok(Pass::Idle));
        for want in 1..=3 {
            assert_eq!(next(&mut rx).await, want);
        }
        runner.stop(BOUND).await;
    }

    #[tokio::test]
    async fn a_failing_pass_is_logged_and_the_job_goes_on() {
        let mut runner = quick();
        let mut rx = counting(&mut runner, Job::new("test", Duration::from_millis(10)), |i| {
            if i == 1 { Err(anyhow::anyhow!("disk full")) } else { Ok(Pass::Idle) }
        });
        assert_eq!(next(&mut rx).await, 1);
        assert_eq!(next(&mut rx).await, 2);
        runner.stop(BOUND).await;
    }

    #[tokio::test]
    async fn a_panicking_pass_is_restarted_after_a_pause() {
        let mut runner = quick();
        // Idle passes would wait an hour: only the panic restart can bring passes 2 and 3.
        let mut rx = counting(&mut runner, Job::new("test", Duration::from_secs(3600)), |i| {
            if i < 3 {
                panic!("pass {i} panics");
            }
            Ok(Pass::Idle)
        });
        for want in 1..=3 {
            assert_eq!(next(&mut rx).await, want);
        }
        assert!(rx.try_recv().is_err());
        runner.stop(BOUND).await;
    }

    #[tokio::test]
    async fn stop_runs_the_hooks_and_abandons_a_pass_that_will_not_end() {
        let mut runner = quick();
        let stopped = Arc::new(AtomicU32::new(0));
        let s = stopped.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        runner.spawn(
            Job::new("stuck", Duration::from_secs(3600)).on_stop(move || {
                s.fetch_add(1, Ordering::SeqCst);
            }),
            move || {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(());
                    std::future::pending::<()>().await;
                    Ok(Pass::Idle)
                }
            },
        );
        tokio::time::timeout(BOUND, rx.recv()).await.expect("the pass started");
        let abandoned = runner.stop(Duration::from_millis(50)).await;
        assert_eq!(abandoned, vec!["stuck"]);
        assert_eq!(stopped.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_idle_job_stops_promptly() {
        let mut runner = quick();
        let mut rx = counting(&mut runner, Job::new("test", Duration::from_secs(3600)), |_| Ok(Pass::Idle));
        assert_eq!(next(&mut rx).await, 1);
        assert!(runner.stop(BOUND).await.is_empty());
    }

    #[tokio::test]
    async fn the_status_says_running_while_every_job_runs_and_not_after_stop() {
        let status = Status::default();
        assert!(!status.running(), "no job started yet");
        let mut runner = quick().reporting_to(status.clone());
        let mut a = counting(&mut runner, Job::new("a", Duration::from_secs(3600)), |_| Ok(Pass::Idle));
        let mut b = counting(&mut runner, Job::new("b", Duration::from_secs(3600)), |_| Ok(Pass::Idle));
        assert_eq!(next(&mut a).await, 1);
        assert_eq!(next(&mut b).await, 1);
        assert!(status.running());
        assert_eq!(status.counts(), (2, 2));
        assert!(runner.stop(BOUND).await.is_empty());
        assert_eq!(status.counts(), (2, 0));
        assert!(!status.running());
    }

    #[test]
    fn the_pause_doubles_up_to_the_maximum() {
        let b = Backoff { first: Duration::from_secs(1), max: Duration::from_secs(60) };
        let pauses: Vec<u64> = (1..=8).map(|n| b.after(n).as_secs()).collect();
        assert_eq!(pauses, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.after(1000), Duration::from_secs(60));
    }
}
