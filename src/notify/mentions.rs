//! Verifying received Webmentions: the source is fetched and must link to the target.

use super::Notifier;
use crate::db::StoreResult;
use crate::db::mentions::{self, PendingMention, Status};
use crate::net::Validators;

/// Received Webmentions verified at once: each holds one outbound fetch (bounded in time and
/// size by the fetcher) and one blocking scan.
const VERIFY_AT_ONCE: usize = 4;
/// Pending mentions one pass looks at.
const BATCH: i64 = 20;

impl Notifier {
    /// Verifies pending received Webmentions (the source must link to the target); returns how
    /// many were settled.
    pub async fn verify_mentions(&self) -> StoreResult<usize> {
        let pending = self.db(|c| mentions::pending(c, BATCH)).await?;
        let mut done = 0;
        // A few at a time, so one slow source delays only its own slot.
        let mut pending = pending.into_iter();
        let mut set = tokio::task::JoinSet::new();
        loop {
            while set.len() < VERIFY_AT_ONCE {
                let Some(mention) = pending.next() else { break };
                let me = self.clone();
                set.spawn(async move { me.verify_one(mention).await });
            }
            match set.join_next().await {
                Some(Ok(Err(e))) => tracing::error!(
                    error = format!("{:#}", anyhow::Error::new(e)),
                    "storing a Webmention's verification failed"
                ),
                Some(Err(e)) => tracing::error!(error = %e, "a Webmention verification stopped unexpectedly"),
                Some(Ok(Ok(()))) => done += 1,
                None => break,
            }
        }
        Ok(done)
    }

    async fn verify_one(&self, mention: PendingMention) -> StoreResult<()> {
        let PendingMention { id, source, target } = mention;
        let (status, reason) = match self.fetcher.get(&source, &Validators::default(), "text/html, */*;q=0.5").await {
            Ok(f) if f.status.as_u16() == 410 => (Status::Deleted, Some("the source is gone (410)".to_string())),
            Ok(f) if f.status.is_success() => {
                // Scanning a hostile page is CPU work: off the runtime.
                let (body, at) = (f.body, f.final_url);
                let scan = move || crate::webmention::links_to(&crate::html::decode::decode(&body, None), &at, &target);
                if tokio::task::spawn_blocking(scan).await.unwrap_or(false) {
                    (Status::Verified, None)
                } else {
                    (Status::Rejected, Some("the source does not link to the target".to_string()))
                }
            }
            Ok(f) => (Status::Rejected, Some(format!("the source answered {}", f.status.as_u16()))),
            Err(e) => (Status::Rejected, Some(e.to_string())),
        };
        let now = self.now();
        self.db(move |c| mentions::settle(c, id, status, reason.as_deref(), now)).await
    }
}
