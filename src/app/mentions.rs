//! Received Webmentions: receiving one (checked, capped and queued for verification) and an
//! instructor's decision to show or hide one.

use std::net::IpAddr;

use diesel::SqliteConnection;

use crate::db::mentions::{self, Moderation, NewMention, PendingOf};
use crate::db::{StoreError, StoreResult};

/// Most pending received Webmentions; beyond it new ones are refused.
pub const MAX_PENDING_MENTIONS: i64 = 1000;
/// Pending received Webmentions one source page may have; it mentions few of our pages.
pub const MAX_PENDING_PER_SOURCE: i64 = 10;
/// Pending received Webmentions one of our pages may have.
pub const MAX_PENDING_PER_TARGET: i64 = 50;
/// Pending received Webmentions one client address may have, so that no one fills the global cap.
pub const MAX_PENDING_PER_CLIENT: i64 = 20;

/// Longest source or target URL accepted.
const MAX_URL_LEN: usize = 2048;

fn http_url(field: &'static str, v: &str) -> StoreResult<url::Url> {
    match url::Url::parse(v.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && v.len() <= MAX_URL_LEN => Ok(u),
        _ => Err(StoreError::field(field, format!("{field} must be an http(s) URL"))),
    }
}

fn origin_of(url: &str) -> Option<url::Origin> {
    url::Url::parse(url).ok().map(|u| u.origin()).filter(|o| o.is_tuple())
}

/// True when `source` is on the site of the learner whose award `target` is.
fn on_learners_site(conn: &mut SqliteConnection, base: &str, source: &url::Url, target: &str) -> StoreResult<bool> {
    let Some(rest) = target.strip_prefix(&format!("{base}/assertions/")) else { return Ok(false) };
    let public_id = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if public_id.is_empty() {
        return Ok(false);
    }
    let Some(sites) = mentions::learner_sites(conn, public_id)? else { return Ok(false) };
    let source = source.origin();
    Ok(sites.iter().filter_map(|s| origin_of(s)).any(|o| o == source))
}

/// Receives a Webmention from `client` at `now`: checks it, applies the caps (a full queue is
/// [`StoreError::Busy`]) and queues it for verification, noting whether it may be shown
/// without an instructor's approval.
pub fn receive(
    conn: &mut SqliteConnection,
    base: &str,
    source: &str,
    target: &str,
    client: Option<IpAddr>,
    now: i64,
) -> StoreResult<()> {
    let s = http_url("source", source)?;
    let t = http_url("target", target)?;
    if s == t {
        return Err(StoreError::field("source", "the source and target must differ"));
    }
    let ours =
        t.as_str().starts_with(&format!("{base}/assertions/")) || t.as_str().starts_with(&format!("{base}/courses/"));
    if !ours {
        return Err(StoreError::field("target", "the target is not a page of this site that accepts Webmentions"));
    }
    let client = client.map(|c| crate::notify::limit_key(c).to_string());
    crate::db::write_tx(conn, |conn| {
        let full = |what: &str| StoreError::Busy(format!("too many Webmentions {what} are waiting; try again later"));
        if mentions::count_pending(conn, PendingOf::All)? >= MAX_PENDING_MENTIONS {
            return Err(full("in all"));
        }
        if mentions::count_pending(conn, PendingOf::Source(s.as_str()))? >= MAX_PENDING_PER_SOURCE {
            return Err(full("from this source"));
        }
        if mentions::count_pending(conn, PendingOf::Target(t.as_str()))? >= MAX_PENDING_PER_TARGET {
            return Err(full("for this target"));
        }
        if let Some(c) = &client
            && mentions::count_pending(conn, PendingOf::Client(c))? >= MAX_PENDING_PER_CLIENT
        {
            return Err(full("from your address"));
        }
        let moderation =
            if on_learners_site(conn, base, &s, t.as_str())? { Moderation::OwnSite } else { Moderation::Pending };
        let mention = NewMention { source: s.as_str(), target: t.as_str(), client: client.as_deref(), moderation };
        mentions::insert(conn, &mention, now)
    })
}

/// Received mentions are shown on the badge pages of every course: an institution admin
/// moderates them.
pub fn may_moderate(actor: &crate::app::access::Actor) -> StoreResult<()> {
    actor.require_admin("moderate received mentions")
}

/// Approves a held mention: shown once its source is found to link to the target.
pub fn approve(conn: &mut SqliteConnection, id: i64) -> StoreResult<()> {
    mentions::set_moderation(conn, id, Moderation::Approved)
}

/// Rejects a held mention: never shown.
pub fn reject(conn: &mut SqliteConnection, id: i64) -> StoreResult<()> {
    mentions::set_moderation(conn, id, Moderation::Rejected)
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;

    use super::*;
    use crate::db::schema::mentions as m;

    const BASE: &str = "https://cairn.example";

    #[test]
    fn a_received_mention_is_queued_at_the_given_time_and_moderated_by_where_it_comes_from() {
        let (_dir, mut c, _) = crate::db::outbox::tests::db_with_award();
        let target = format!("{BASE}/assertions/abc");
        let t = 1_000_000;
        receive(&mut c, BASE, "https://ada.example/later-post", &target, None, t).unwrap();
        receive(&mut c, BASE, "https://elsewhere.example/p", &target, "192.0.2.1".parse().ok(), t + 1).unwrap();
        let rows: Vec<(String, i64, Moderation, Option<String>)> =
            m::table.order(m::id).select((m::source, m::received_at, m::moderation, m::client)).load(&mut c).unwrap();
        assert_eq!(rows[0], ("https://ada.example/later-post".into(), t, Moderation::OwnSite, None));
        assert_eq!(
            rows[1],
            ("https://elsewhere.example/p".into(), t + 1, Moderation::Pending, Some("192.0.2.1".into()))
        );

        let refused = receive(&mut c, BASE, "https://x.example/", "https://other.example/", None, t);
        assert!(matches!(refused, Err(StoreError::Invalid(_))), "{refused:?}");
        for i in 0..MAX_PENDING_PER_SOURCE {
            receive(&mut c, BASE, "https://one.example/", &format!("{BASE}/courses/c{i}"), None, t).unwrap();
        }
        let full = receive(&mut c, BASE, "https://one.example/", &format!("{BASE}/courses/more"), None, t);
        assert!(matches!(full, Err(StoreError::Busy(_))), "{full:?}");

        let held = mentions::held_for_moderation(&mut c, 100).unwrap();
        let foreign = held.iter().find(|h| h.source == "https://elsewhere.example/p").unwrap().id;
        approve(&mut c, foreign).unwrap();
        assert!(!mentions::held_for_moderation(&mut c, 100).unwrap().iter().any(|h| h.id == foreign));
        assert!(matches!(reject(&mut c, 999_999), Err(StoreError::NotFound("mention"))));
    }
}
