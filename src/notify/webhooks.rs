//! Delivering webhook events: claiming what is due, fixing its body at the first attempt,
//! signing and POSTing it under the outbound policy, and recording the outcome with the
//! outbox's backoff (a minute doubling, `Retry-After` honoured, given up after two days), by
//! the engine every queue shares (`notify::queue`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use diesel::SqliteConnection;
use hmac::{KeyInit, Mac};

use super::Notifier;
use super::queue::{Deliver, Key, Sent};
use crate::db::queue::{self, Attempt, State};
use crate::db::webhooks::{self, Delivery, Event, Webhook};
use crate::db::{StoreError, StoreResult};
use crate::net::FetchError;

/// Due deliveries one pass looks at.
const BATCH: i64 = 200;

/// What a secret starts with (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";

/// The `webhook-signature` value of a message: `v1,` and the base64 HMAC-SHA256, keyed with
/// the secret's decoded bytes, of `id.timestamp.body`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> StoreResult<String> {
    let key = B64
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|e| StoreError::Internal(anyhow::anyhow!("a stored webhook secret is not base64: {e}")))?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key)
        .map_err(|e| StoreError::Internal(anyhow::anyhow!("webhook key: {e}")))?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// The message id of a delivery, the same on every attempt.
pub fn message_id(d: &Delivery) -> String {
    format!("msg_{}", d.id)
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The body of a delivery, built at its first attempt: `{"type", "timestamp", "data"}` with the
/// award as it then stands (and the block, for `award.recorded`).
pub fn payload(conn: &mut SqliteConnection, base: &str, d: &Delivery, now: i64) -> StoreResult<String> {
    let (a, task) = webhooks::award_with_task(conn, d.award_id)?;
    if a.is_withdrawn() {
        return Ok(withdrawn_payload(base, d.event, d.created_at, &a.public_id));
    }
    let state = if a.is_revoked() {
        "revoked"
    } else if a.is_expired(now) {
        "expired"
    } else {
        "valid"
    };
    let mut data = serde_json::json!({
        "id": a.public_id,
        "url": crate::badges::ob::assertion_url(base, &a.public_id),
        "task": task.hashtag,
        "recipient": a.recipient_email,
        "evidence": a.evidence_url,
        "issued_on": rfc3339(a.issued_on),
        "state": state,
        "revoked_at": a.revoked_at.map(rfc3339),
        "revocation_reason": a.revocation_reason,
    });
    if d.event == Event::Recorded
        && let Some((_, Some(hash))) = crate::db::chain::award_blocks(conn, &[a.id])?.into_iter().next()
    {
        data["block"] = serde_json::json!({ "hash": hash });
    }
    let doc = serde_json::json!({"type": d.event.as_str(), "timestamp": rfc3339(d.created_at), "data": data});
    Ok(doc.to_string())
}

/// The body of an event about an award withdrawn at its learner's request: its type and the
/// award's ids, nothing that names the learner.
pub fn withdrawn_payload(base: &str, event: Event, created_at: i64, public_id: &str) -> String {
    let data = serde_json::json!({
        "id": public_id,
        "url": crate::badges::ob::assertion_url(base, public_id),
        "state": "withdrawn",
    });
    serde_json::json!({"type": event.as_str(), "timestamp": rfc3339(created_at), "data": data}).to_string()
}

/// Webhook deliveries, as the engine sends them.
#[derive(Clone)]
struct Deliveries(Notifier);

impl Deliver for Deliveries {
    type Queue = queue::WebhookDeliveries;
    type Row = (Delivery, Webhook);
    type Extra = ();

    fn key((d, _): &(Delivery, Webhook)) -> Key {
        Key { id: d.id, attempts: d.attempts, created_at: d.created_at }
    }

    /// Fixes the body at the first attempt, then signs and sends it.
    async fn send(&self, (d, hook): (Delivery, Webhook)) -> StoreResult<Sent<()>> {
        let me = &self.0;
        let body = match d.payload.clone() {
            Some(p) => p,
            None => {
                let (base, delivery, now) = (me.base.clone(), d.clone(), me.now());
                // Built and stored in one transaction, so a forget committing in between
                // cannot leave a body that names the learner.
                me.db(move |c| {
                    crate::db::write_tx(c, |c| {
                        let p = payload(c, &base, &delivery, now)?;
                        webhooks::set_payload(c, delivery.id, &p)?;
                        Ok(p)
                    })
                })
                .await?
            }
        };
        Ok(me.send_webhook(&d, &hook, &body).await)
    }

    fn record(conn: &mut SqliteConnection, attempts: Vec<(Attempt, ())>, now: i64) -> StoreResult<()> {
        let attempts: Vec<Attempt> = attempts.into_iter().map(|(a, ())| a).collect();
        webhooks::settle_many(conn, &attempts, now)
    }
}

impl Notifier {
    /// Delivers every webhook event that is due; returns how many were handled. Each
    /// webhook's events go one after another, oldest first, so a receiver hears of an award
    /// before it hears the award was recorded or revoked; up to [`CONCURRENCY`](super::outbox::CONCURRENCY) webhooks are
    /// served at once.
    pub async fn deliver_webhooks(&self) -> StoreResult<usize> {
        let now = self.now();
        let due = self.db(move |c| webhooks::due(c, now, BATCH)).await?;
        let mut lanes: Vec<(i64, Vec<(Delivery, Webhook)>)> = Vec::new();
        for (d, hook) in due {
            match lanes.iter_mut().find(|(h, _)| *h == hook.id) {
                Some((_, q)) => q.push((d, hook)),
                None => lanes.push((hook.id, vec![(d, hook)])),
            }
        }
        let lanes = lanes.into_iter().map(|(_, lane)| lane).collect();
        self.engine().in_order(&Deliveries(self.clone()), lanes).await
    }

    async fn send_webhook(&self, d: &Delivery, hook: &Webhook, body: &str) -> Sent<()> {
        let Ok(url) = url::Url::parse(&hook.url) else {
            return Sent::Failed(format!("'{}' is not a web address", hook.url), ());
        };
        let (msg_id, timestamp) = (message_id(d), self.now());
        let signature = match sign(&hook.secret, &msg_id, timestamp, body) {
            Ok(s) => s,
            Err(e) => return Sent::Failed(e.to_string(), ()),
        };
        let headers =
            [("webhook-id", msg_id), ("webhook-timestamp", timestamp.to_string()), ("webhook-signature", signature)];
        match self.fetcher.post_json(&url, body, &headers).await {
            Ok(res) if res.status.is_success() => Sent::Done(State::Sent, ()),
            Ok(res) if res.status.as_u16() == 408 || res.status.as_u16() == 429 || res.status.is_server_error() => {
                Sent::Retry { error: format!("the receiver answered {}", res.status), after: res.retry_after() }
            }
            Ok(res) => Sent::Failed(format!("the receiver answered {}", res.status), ()),
            Err(e @ (FetchError::Timeout { .. } | FetchError::Connect { .. } | FetchError::Body { .. })) => {
                Sent::Retry { error: e.to_string(), after: None }
            }
            Err(e) => Sent::Failed(e.to_string(), ()),
        }
    }

    /// One webhook delivery pass for the job runner: more when any delivery was settled.
    pub async fn webhooks_pass(&self) -> anyhow::Result<crate::jobs::Pass> {
        Ok(super::busy_if(self.deliver_webhooks().await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification (spec/standard-webhooks.md).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
