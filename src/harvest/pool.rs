//! A small bounded pool for reading documents that anonymous visitors make Cairn fetch
//! (the Join page's discovery). Parsing runs on blocking threads, never on the async
//! runtime; at most `workers` documents are read at once and at most `queued` more wait,
//! each for a bounded time, so a flood of hostile pages costs at most a share of the CPU and
//! is answered "busy" instead of piling up.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("Cairn is busy reading other pages; please try again in a minute")]
    Busy,
    #[error("reading the document failed")]
    Failed,
}

/// Cheap to clone; clones share the limits.
#[derive(Clone)]
pub struct BoundedPool {
    workers: Arc<Semaphore>,
    /// Running plus waiting jobs.
    admitted: Arc<Semaphore>,
    wait: Duration,
}

impl BoundedPool {
    pub fn new(workers: usize, queued: usize, wait: Duration) -> BoundedPool {
        let workers = workers.max(1);
        BoundedPool {
            workers: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(Semaphore::new(workers + queued)),
            wait,
        }
    }

    /// Half the cores (at least one), eight waiting, five seconds' wait: one attacker can
    /// never take every core from the harvester, the notifier, the miner and the web server.
    pub fn for_untrusted() -> BoundedPool {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        BoundedPool::new(cores / 2, 8, Duration::from_secs(5))
    }

    /// Runs `job` on a blocking thread once a worker is free; `Busy` when the queue is full
    /// or no worker freed up in time.
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolError> {
        let admitted = self.admitted.clone().try_acquire_owned().map_err(|_| PoolError::Busy)?;
        let worker = tokio::time::timeout(self.wait, self.workers.clone().acquire_owned())
            .await
            .map_err(|_| PoolError::Busy)?
            .map_err(|_| PoolError::Busy)?;
        // The permits travel with the job: a caller that gives up does not free a worker
        // that is still busy.
        tokio::task::spawn_blocking(move || {
            let _held = (admitted, worker);
            job()
        })
        .await
        .map_err(|_| PoolError::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let pool = BoundedPool::new(1, 1, Duration::from_millis(200));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let g = gate.clone();
        let running = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(move || g.lock().map(|r| r.recv_timeout(Duration::from_secs(10))).is_ok()).await }
        });
        // Wait (bounded) until the first job holds the worker.
        for _ in 0..200 {
            if pool.workers.available_permits() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(pool.workers.available_permits(), 0);
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(|| 2).await }
        });
        for _ in 0..200 {
            if pool.admitted.available_permits() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = std::time::Instant::now();
        assert_eq!(pool.run(|| 3).await, Err(PoolError::Busy), "the queue is full");
        assert!(started.elapsed() < Duration::from_millis(100));
        assert_eq!(waiting.await.unwrap(), Err(PoolError::Busy), "no worker freed up within the wait");
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(true));
        assert_eq!(pool.run(|| 4).await, Ok(4));
    }
}
