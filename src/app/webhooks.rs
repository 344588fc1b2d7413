//! Webhooks: an instructor registers a URL that hears of awards (`award.created`,
//! `award.revoked`, `award.recorded`). Events are queued by the database in the changing
//! transaction; the notifier delivers them with retries under the outbound policy. Each message
//! is signed as Standard Webhooks says: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the secret
//! `whsec_<base64>` shown when the webhook is registered.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use diesel::SqliteConnection;
use hmac::{KeyInit, Mac};
use rand::RngCore;

use crate::db::webhooks::{self, Delivery, Event, Webhook};
use crate::db::{StoreError, StoreResult};

/// Webhooks one instructor may have at once.
pub const MAX_PER_INSTRUCTOR: i64 = 10;
/// Longest webhook URL.
const URL_MAX: usize = 2048;
/// What a secret starts with (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";

/// Registers a webhook for an instructor; returns it with its new secret.
pub fn register(conn: &mut SqliteConnection, instructor_id: i64, url: &str, now: i64) -> StoreResult<Webhook> {
    let url = url.trim();
    let parsed = url::Url::parse(url).map_err(|_| StoreError::field("url", format!("'{url}' is not a web address")))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host().is_none()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || url.len() > URL_MAX
    {
        return Err(StoreError::field(
            "url",
            "a webhook URL is an http or https address without a user name or password",
        ));
    }
    crate::db::write_tx(conn, |conn| {
        if webhooks::count_for(conn, instructor_id)? >= MAX_PER_INSTRUCTOR {
            return Err(StoreError::Conflict(format!("an instructor may have at most {MAX_PER_INSTRUCTOR} webhooks")));
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let secret = format!("{SECRET_PREFIX}{}", B64.encode(key));
        webhooks::insert(conn, instructor_id, parsed.as_str(), &secret, now)
    })
}

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

/// Removes one of the instructor's webhooks.
pub fn remove(conn: &mut SqliteConnection, instructor_id: i64, id: i64, now: i64) -> StoreResult<()> {
    webhooks::remove(conn, instructor_id, id, now)
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
