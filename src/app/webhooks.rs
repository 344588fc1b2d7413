//! Webhooks: an instructor registers a URL that hears of awards (`award.created`,
//! `award.revoked`, `award.recorded`). Events are queued by the database in the changing
//! transaction; the notifier delivers them with retries under the outbound policy. Each message
//! is signed as Standard Webhooks says: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the secret
//! `whsec_<base64>` shown when the webhook is registered.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use diesel::SqliteConnection;
use rand::RngCore;

use crate::app::access::Actor;
use crate::db::webhooks::{self, Webhook};
use crate::db::{StoreError, StoreResult};
use crate::notify::webhooks::withdrawn_payload;

/// Webhooks one instructor may have at once.
pub const MAX_PER_INSTRUCTOR: i64 = 10;
/// Longest webhook URL.
const URL_MAX: usize = 2048;
pub use crate::notify::webhooks::SECRET_PREFIX;

/// How long the DNS check of a new webhook URL may take.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A webhook URL that passed [`check_url`]: the only kind [`register`] takes.
#[derive(Debug, Clone)]
pub struct CheckedUrl(url::Url);

impl CheckedUrl {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The scheme, host and port only: what the audit trail keeps (a webhook's path or query
    /// often carries a secret).
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }
}

fn refused(why: impl Into<String>) -> StoreError {
    StoreError::field("url", why.into())
}

/// Checks a webhook URL as the deliveries will be checked, before anything is stored:
/// an http(s) address without a user name or password; not a private, loopback, link-local
/// or otherwise internal address in any spelling (`0x7f.1`, `[::1]`, `169.254.169.254`, …),
/// nor a host name that resolves to one (or to nothing); and https, since every event names
/// a recipient. An origin listed in `allow_origins` is exempt from the address rules and may
/// use http.
pub async fn check_url(policy: &crate::net::OutboundPolicy, raw: &str) -> StoreResult<CheckedUrl> {
    let raw = raw.trim();
    let parsed = url::Url::parse(raw).map_err(|_| refused(format!("'{raw}' is not a web address")))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host().is_none()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || raw.len() > URL_MAX
    {
        return Err(refused("a webhook URL is an https address without a user name or password"));
    }
    if policy.allows_origin(&parsed) {
        return Ok(CheckedUrl(parsed));
    }
    policy.check_url(&parsed).map_err(|e| refused(e.to_string()))?;
    if parsed.scheme() != "https" {
        return Err(refused(
            "a webhook URL must use https: its events carry recipients' email addresses (plain http is allowed \
             only for an origin listed in allow_origins)",
        ));
    }
    if let Some(url::Host::Domain(host)) = parsed.host() {
        let host = host.trim_end_matches('.').to_string();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host.as_str(), port))).await;
        let addrs: Vec<std::net::SocketAddr> = match found {
            Ok(Ok(addrs)) => addrs.collect(),
            Ok(Err(_)) => Vec::new(),
            Err(_) => {
                return Err(refused(format!(
                    "{host} could not be resolved within {} seconds",
                    RESOLVE_TIMEOUT.as_secs()
                )));
            }
        };
        if addrs.is_empty() {
            return Err(refused(format!("{host} has no address")));
        }
        if let Some(a) = addrs.iter().find(|a| !crate::net::is_global(a.ip())) {
            return Err(refused(format!(
                "{host} resolves to {}, a private, loopback or otherwise internal address; Cairn does not send \
                 there",
                a.ip()
            )));
        }
    }
    Ok(CheckedUrl(parsed))
}

/// A webhook hears of every award of the institution: only an admin registers one.
pub fn may_register(actor: &Actor) -> StoreResult<()> {
    actor.require_admin("register a webhook, which hears of every award")
}

/// Registers a webhook for an instructor; returns it with its new secret. Only an admin may
/// ([`may_register`]). Recorded in the audit trail.
pub fn register(
    conn: &mut SqliteConnection,
    actor: &Actor,
    instructor_id: i64,
    url: &CheckedUrl,
    now: i64,
) -> StoreResult<Webhook> {
    may_register(actor)?;
    crate::db::write_tx(conn, |conn| {
        if webhooks::count_for(conn, instructor_id)? >= MAX_PER_INSTRUCTOR {
            return Err(StoreError::Conflict(format!("an instructor may have at most {MAX_PER_INSTRUCTOR} webhooks")));
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let secret = format!("{SECRET_PREFIX}{}", B64.encode(key));
        let hook = webhooks::insert(conn, instructor_id, url.as_str(), &secret, now)?;
        crate::app::audit::record(
            conn,
            actor,
            "webhook.create",
            None,
            &url.origin(),
            &format!("webhook {}", hook.id),
            now,
        )?;
        Ok(hook)
    })
}

/// Reduces the stored bodies of every delivery about these awards, sent or not, to their
/// type and the award's ids (a forget's part; in the caller's transaction). A delivery not
/// yet attempted has no body: it is built from the withdrawn award, with ids only, too.
pub fn redact_deliveries(conn: &mut SqliteConnection, base: &str, awards: &[(i64, String)]) -> StoreResult<usize> {
    let mut n = 0;
    for (award_id, public_id) in awards {
        for (id, event, created_at) in webhooks::with_payload_for_award(conn, *award_id)? {
            webhooks::set_payload(conn, id, &withdrawn_payload(base, event, created_at, public_id))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Deletes the bodies of deliveries sent more than `keep_days` days before `now` (the
/// delivery rows stay, with their outcome); returns how many.
pub fn purge_delivered(conn: &mut SqliteConnection, keep_days: u32, now: i64) -> StoreResult<usize> {
    webhooks::purge_sent_payloads(conn, now - i64::from(keep_days) * 86_400)
}

/// Removes one of the instructor's webhooks. Recorded in the audit trail.
pub fn remove(conn: &mut SqliteConnection, actor: &Actor, instructor_id: i64, id: i64, now: i64) -> StoreResult<()> {
    crate::db::write_tx(conn, |conn| {
        webhooks::remove(conn, instructor_id, id, now)?;
        crate::app::audit::record(conn, actor, "webhook.remove", None, &format!("webhook {id}"), "", now)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::queue::{Outcome, State};
    use crate::db::webhooks::DeliveryStatus;
    use crate::notify::webhooks::payload;

    #[test]
    fn settled_bodies_age_out_and_a_withdrawn_award_is_told_by_its_ids_only() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&dir.path().join("cairn.db")).unwrap();
        let mut c = pool.get().unwrap();
        crate::db::institution::ensure(&mut c, "Test University", 0).unwrap();
        crate::demo::seed(&mut c).unwrap();
        let who = crate::app::instructors::create(&mut c, "ada@example.edu", "correct horse battery", 0).unwrap();
        let url = CheckedUrl(url::Url::parse("https://registrar.example.edu/hook").unwrap());
        let hook = register(&mut c, &Actor::institution(crate::app::access::Surface::Cli), who.id, &url, 0).unwrap();
        let (raster, key) = (crate::badges::bake::RasterCache::default(), crate::ledger::load_key(dir.path()).unwrap());
        let issuer = crate::badges::award::Issuer { base: "http://127.0.0.1:9", raster: &raster, signer: &key };
        let t = 1_700_000_000;
        let req = |to: &str| crate::app::award::HashtagAward {
            task: "#el30-data".into(),
            recipient: to.into(),
            evidence: "https://blog.example.org/data".into(),
            ..Default::default()
        };
        crate::app::award::award_by_hashtag(&mut c, &issuer, &req("sent@example.edu"), t).unwrap();
        crate::app::award::award_by_hashtag(&mut c, &issuer, &req("waiting@example.edu"), t).unwrap();
        let ds = webhooks::recent(&mut c, hook.id, 10).unwrap();
        assert_eq!(ds.len(), 2);
        for d in &ds {
            let body = payload(&mut c, issuer.base, d, t).unwrap();
            webhooks::set_payload(&mut c, d.id, &body).unwrap();
        }
        let (sent, waiting) = (&ds[1], &ds[0]);
        webhooks::settle(&mut c, sent.id, 1, Outcome::Done(State::Sent), t).unwrap();
        let retry = Outcome::Retry { state: State::Queued, error: "503".into(), next_attempt_at: t + 60 };
        webhooks::settle(&mut c, waiting.id, 1, retry, t).unwrap();

        let day = 86_400;
        assert_eq!(purge_delivered(&mut c, 30, t + 29 * day).unwrap(), 0, "kept 30 days");
        assert_eq!(purge_delivered(&mut c, 30, t + 31 * day).unwrap(), 1);
        let after = webhooks::recent(&mut c, hook.id, 10).unwrap();
        let find = |id: i64| after.iter().find(|d| d.id == id).unwrap().clone();
        assert_eq!((find(sent.id).payload, find(sent.id).status), (None, DeliveryStatus::Sent), "the outcome stays");
        assert!(find(waiting.id).payload.unwrap().contains("waiting@example.edu"), "a queued body is never purged");

        // Withdrawn: the stored body, and one built later, hold ids only.
        let (a, _) = webhooks::award_with_task(&mut c, waiting.award_id).unwrap();
        crate::db::learners::withdraw_award(&mut c, a.id, "withdrawn", t + 40 * day).unwrap();
        assert_eq!(redact_deliveries(&mut c, issuer.base, &[(a.id, a.public_id.clone())]).unwrap(), 1);
        let body = find(waiting.id).payload;
        let stored = webhooks::recent(&mut c, hook.id, 10).unwrap();
        assert_ne!(stored.iter().find(|d| d.id == waiting.id).unwrap().payload, body);
        for d in stored.iter().filter(|d| d.award_id == a.id) {
            let text = match &d.payload {
                Some(p) => p.clone(),
                None => payload(&mut c, issuer.base, d, t + 40 * day).unwrap(),
            };
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                doc["data"],
                serde_json::json!({"id": a.public_id, "state": "withdrawn",
                "url": crate::badges::ob::assertion_url(issuer.base, &a.public_id)}),
                "{text}"
            );
        }
    }
}
