//! A learner's right to erasure: forgetting a learner, one code path for the command line,
//! the instructor's button and the learner's own request.
//!
//! The chain holds only salted hashes of the recipient (and a hash of the evidence), so once
//! the salts and every personal row are gone its records can no longer be tied to the person,
//! and the chain itself is not touched: it stays valid. Each award stays as a row marked
//! withdrawn, so its URL can say so (410 Gone) and the revocation list can list it.

use diesel::SqliteConnection;

use crate::app::access::{Actor, Surface};
use crate::badges::award::Issuer;
use crate::badges::ob;
use crate::db::learners::{self, ForgetActor, ForgetEvent, Holdings};
use crate::db::{StoreError, StoreResult, courses, write_tx};
use crate::domain::{Email, mentions_any};

/// What a withdrawn award's URL answers (410 Gone), as a page and as JSON.
pub const WITHDRAWN: &str = "This badge was withdrawn at the learner's request.";
/// The revocation reason of a withdrawn award in the revocation list.
pub const WITHDRAWN_REASON: &str = "withdrawn";
/// Award ids a forget's audit entry names; the rest are counted.
const AUDIT_AWARDS: usize = 50;

/// The learner to forget.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    /// A harvested author, by id (the instructor's learner page).
    Author(i64),
    /// An address, with or without a feed (the command line).
    Email(&'a str),
}

/// Who asked.
#[derive(Debug, Clone)]
pub enum Requester {
    /// An institution admin, or the command line as the institution.
    Staff(Actor),
    /// The learner, through the link mailed to them.
    Learner,
}

/// What a forget did.
#[derive(Debug)]
pub struct Forgotten {
    /// The audit entry.
    pub event: ForgetEvent,
    pub awards_withdrawn: usize,
    pub posts_deleted: usize,
    /// Mail files (`<data dir>/mail/*.eml`, written when no SMTP server is set) deleted because
    /// they named the learner.
    pub mail_files_deleted: usize,
    /// False when a reader kept the write-ahead log busy: earlier versions of the erased rows
    /// stay in it until the next checkpoint.
    pub log_emptied: bool,
}

/// What forgetting `who` would erase, to show before asking for confirmation.
pub fn preview(conn: &mut SqliteConnection, who: Who) -> StoreResult<Holdings> {
    match who {
        Who::Author(id) => learners::holdings_of_author(conn, id),
        Who::Email(raw) => {
            let email = Email::parse(raw).map_err(|e| StoreError::field("email", e))?;
            learners::holdings_of_email(conn, email.as_str())
        }
    }
}

/// Forgets a learner at `now`: deletes their name, address, feeds, posts, notifications,
/// the Webmentions received about their badges or from their site, their join-mail counts
/// and their newsletter subscriptions; withdraws each of their awards (a revocation record
/// enters the chain's pool for those not revoked yet, so peers hear of it); reduces the
/// webhook deliveries about their awards and the API's remembered idempotent answers that
/// name them to ids; takes their posts and name out of the stored newsletter issues; records
/// the audit entry. All of that in one transaction. Then it deletes the mail files under the
/// data dir that name them and empties the write-ahead log.
pub fn forget(
    conn: &mut SqliteConnection,
    issuer: &Issuer,
    who: Who,
    by: Requester,
    now: i64,
) -> StoreResult<Forgotten> {
    if let Requester::Staff(actor) = &by {
        actor.require_admin("forget a learner")?;
    }
    let (event, awards_withdrawn, posts_deleted, personal) = write_tx(conn, |conn| {
        let h = preview(conn, who)?;
        let pseudonym = match &h.author {
            Some(a) => learners::name_choice(conn, a.id)?.1,
            None => None,
        };
        let personal = personal_values(&h, pseudonym);
        let mut targets = Vec::with_capacity(h.awards.len());
        for a in &h.awards {
            let url = ob::assertion_url(issuer.base, &a.public_id);
            if !a.is_revoked() {
                let task = courses::get_task(conn, a.task_id)?;
                let fields = crate::ledger::fields_for(
                    cairn_chain::RecordKind::Revocation,
                    issuer.base,
                    &url,
                    &ob::badge_class_url(issuer.base, &task),
                    &a.identity,
                    crate::ledger::evidence_hash(a.evidence_url.as_deref(), &a.salt),
                    now,
                );
                crate::ledger::pool_record(conn, issuer.signer, fields, Some(a.id))?;
            }
            learners::withdraw_award(conn, a.id, WITHDRAWN_REASON, now)?;
            // The signed credential carries the salt too; its status bit says "revoked".
            crate::db::credentials::withdraw(conn, &a.public_id)?;
            targets.push(url);
        }
        let ids: Vec<i64> = h.awards.iter().map(|a| a.id).collect();
        learners::delete_notifications(conn, &ids)?;
        learners::delete_notifications_to(conn, &h.post_urls)?;
        let awards: Vec<(i64, String)> = h.awards.iter().map(|a| (a.id, a.public_id.clone())).collect();
        crate::app::webhooks::redact_deliveries(conn, issuer.base, &awards)?;
        let public_ids: Vec<String> = awards.into_iter().map(|(_, p)| p).collect();
        crate::app::tokens::redact_answers(conn, &public_ids, &personal)?;
        redact_newsletter_issues(conn, &h, &personal)?;
        let mut sources: Vec<String> = h.post_urls.clone();
        for (_, url, site) in &h.feeds {
            sources.push(url.clone());
            sources.extend(site.iter().filter(|s| is_own_site(s)).cloned());
        }
        sources.extend(h.awards.iter().filter_map(|a| a.evidence_url.clone()));
        learners::delete_mentions(conn, &targets, &sources)?;
        let posts = match &h.author {
            Some(author) => {
                let n = learners::delete_posts(conn, author.id)?;
                learners::delete_author(conn, author.id)?;
                n
            }
            None => 0,
        };
        if let Some(email) = &h.email {
            learners::delete_join_mails(conn, email)?;
            learners::delete_newsletter_subscriptions(conn, email)?;
        }
        let (kind, instructor) = match &by {
            Requester::Staff(a) if a.instructor_id.is_some() => (ForgetActor::Instructor, a.instructor_id),
            Requester::Staff(_) => (ForgetActor::Cli, None),
            Requester::Learner => (ForgetActor::Learner, None),
        };
        let event = learners::record_forget(conn, kind, instructor, ids.len() as i64, posts as i64, now)?;
        // The trail names the forget and the awards withdrawn by their ids, nothing personal.
        let actor = match &by {
            Requester::Staff(a) => a.clone(),
            Requester::Learner => Actor::someone("the learner, by their emailed link", Surface::Web),
        };
        let shown: Vec<&str> = h.awards.iter().take(AUDIT_AWARDS).map(|a| a.public_id.as_str()).collect();
        let more = h.awards.len().saturating_sub(AUDIT_AWARDS);
        let detail = format!(
            "{} award(s) withdrawn{}{}{}, {posts} post(s) deleted",
            ids.len(),
            if shown.is_empty() { "" } else { ": " },
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        );
        crate::app::audit::record(conn, &actor, "learner.forget", None, &format!("forget {}", event.id), &detail, now)?;
        Ok::<_, StoreError>((event, ids.len(), posts, personal))
    })?;
    let mail_files_deleted = match learners::data_dir(conn)? {
        Some(dir) => delete_mail_files(&dir.join(MAIL_DIR), &personal)?,
        None => 0,
    };
    let log_emptied = learners::checkpoint(conn)?;
    Ok(Forgotten { event, awards_withdrawn, posts_deleted, mail_files_deleted, log_emptied })
}

/// Where the mailer writes `.eml` files under the data dir when no SMTP server is set.
const MAIL_DIR: &str = "mail";
/// Mail files looked at by one forget at most (the folder is the instance's own outbox copy).
const MAIL_FILES_MAX: usize = 100_000;

/// What names a learner, as text to look for: their address, names (as joined, pseudonym,
/// and as each award was issued to) and evidence URLs. Names shorter than three characters
/// are left out: they would match too much to mean anything.
fn personal_values(h: &learners::Holdings, pseudonym: Option<String>) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    v.extend(h.email.clone());
    v.extend(pseudonym);
    if let Some(a) = &h.author {
        v.extend(a.email.clone());
        v.push(a.name.clone());
    }
    for a in &h.awards {
        v.push(a.recipient_email.clone());
        v.extend(a.recipient_name.clone());
        v.extend(a.evidence_url.clone());
    }
    v.extend(h.post_urls.iter().cloned());
    let mut out: Vec<String> = Vec::new();
    for s in v.into_iter().map(|s| s.trim().to_string()).filter(|s| s.chars().count() >= 3) {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&s)) {
            out.push(s);
        }
    }
    out
}

/// Takes a learner out of the stored (sent) newsletter issues: their posts leave the groups,
/// their name leaves the badge counts, and any other text that holds their address, name or
/// one of their URLs becomes empty. The archive pages then show the issue without them.
fn redact_newsletter_issues(
    conn: &mut SqliteConnection,
    h: &learners::Holdings,
    personal: &[String],
) -> StoreResult<usize> {
    let issues = learners::issues_mentioning(conn, personal)?;
    let post_ids = &h.post_ids;
    for (id, content) in &issues {
        let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(content) else {
            learners::set_issue_content(conn, *id, "")?;
            continue;
        };
        scrub(&mut doc, post_ids, personal);
        learners::set_issue_content(conn, *id, &doc.to_string())?;
    }
    Ok(issues.len())
}

/// See [`redact_newsletter_issues`]: drops array items that are one of the posts or a name,
/// and empties other strings that hold a personal value.
fn scrub(v: &mut serde_json::Value, post_ids: &[i64], personal: &[String]) {
    use serde_json::Value;
    let holds = |s: &str| mentions_any(s, personal);
    match v {
        Value::Array(items) => {
            items.retain(|item| match item {
                Value::Object(o) => {
                    !o.get("link_id").and_then(Value::as_i64).is_some_and(|id| post_ids.contains(&id))
                        && !o.get("url").and_then(Value::as_str).is_some_and(holds)
                }
                Value::String(s) => !holds(s),
                _ => true,
            });
            items.iter_mut().for_each(|i| scrub(i, post_ids, personal));
        }
        Value::Object(map) => map.values_mut().for_each(|c| scrub(c, post_ids, personal)),
        Value::String(s) if holds(s) => s.clear(),
        _ => {}
    }
}

/// Deletes the `.eml` files in `dir` that hold one of `personal` (compared without case, with
/// quoted-printable soft line breaks undone): copies of mail to or about the learner that
/// the mailer wrote when no SMTP server was set. Returns how many.
fn delete_mail_files(dir: &std::path::Path, personal: &[String]) -> StoreResult<usize> {
    let io = |e: std::io::Error| StoreError::Internal(anyhow::Error::new(e).context("erasing mail files"));
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(e)),
    };
    let mut n = 0;
    for entry in entries.take(MAIL_FILES_MAX) {
        let path = entry.map_err(io)?.path();
        if path.extension().is_none_or(|e| e != "eml") || !path.is_file() {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&path).map_err(io)?).into_owned();
        let unfolded = text.replace("=\r\n", "").replace("=\n", "");
        if mentions_any(&text, personal) || mentions_any(&unfolded, personal) {
            std::fs::remove_file(&path).map_err(io)?;
            n += 1;
        }
    }
    Ok(n)
}

/// A learner's data as one JSON document: their subscription (name, email, feeds), their
/// harvested posts and their awards (with each Assertion as issued).
pub fn export(conn: &mut SqliteConnection, base: &str, author_id: i64, now: i64) -> StoreResult<serde_json::Value> {
    let author = crate::db::feeds::get_author(conn, author_id)?;
    let feeds = learners::feeds_of(conn, author_id)?;
    let posts = learners::posts(conn, author_id)?;
    let awards = crate::db::awards::for_learner(conn, author_id, author.email.as_deref())?;
    let day = |t: i64| chrono::DateTime::from_timestamp(t, 0).map(|d| d.to_rfc3339());
    let awards: Vec<serde_json::Value> = awards
        .iter()
        .filter(|(a, _)| !a.is_withdrawn())
        .map(|(a, t)| {
            serde_json::json!({
                "assertion_url": ob::assertion_url(base, &a.public_id),
                "task": t.title,
                "hashtag": t.hashtag,
                "issued_on": day(a.issued_on),
                "expires": a.expires.and_then(day),
                "revoked": a.is_revoked(),
                "revocation_reason": a.revocation_reason,
                "evidence_url": a.evidence_url,
                "narrative": a.narrative,
                "salt": a.salt,
                "identity": a.identity,
                "badge_png": format!("{}.png", a.public_id),
                "badge_svg": format!("{}.svg", a.public_id),
            })
        })
        .collect();
    let feeds: Vec<serde_json::Value> = feeds
        .iter()
        .map(|f| {
            serde_json::json!({
                "url": f.url, "site_url": f.site_url, "title": f.title, "status": f.status,
                "subscribed_on": day(f.created_at), "items_harvested": f.items_harvested,
            })
        })
        .collect();
    let posts: Vec<serde_json::Value> = posts
        .iter()
        .map(|p| {
            serde_json::json!({
                "url": p.url, "title": p.title, "summary_html": p.summary_html,
                "categories": serde_json::from_str::<serde_json::Value>(&p.categories).unwrap_or_default(),
                "published": p.published_at.and_then(day), "harvested": day(p.harvested_at),
            })
        })
        .collect();
    Ok(serde_json::json!({
        "exported_at": day(now),
        "subscription": {"name": author.name, "email": author.email, "joined": day(author.created_at), "feeds": feeds},
        "posts": posts,
        "awards": awards,
    }))
}

/// The baked badges of a learner's awards (PNG and SVG, named by the award's id) as a zip.
pub fn badges_zip(conn: &mut SqliteConnection, author_id: i64) -> StoreResult<Vec<u8>> {
    use std::io::Write as _;
    let author = crate::db::feeds::get_author(conn, author_id)?;
    let awards = crate::db::awards::for_learner(conn, author_id, author.email.as_deref())?;
    let zipping = |e: &dyn std::fmt::Display| StoreError::Internal(anyhow::anyhow!("writing the badges zip: {e}"));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // The images are compressed already.
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (a, _) in awards.iter().filter(|(a, _)| !a.is_withdrawn()) {
        let stored = crate::db::awards::images(conn, &a.public_id)?;
        let (svg, png) = (crate::badges::award::baked_svg_of(&stored)?, crate::badges::award::baked_png_of(&stored)?);
        for (ext, bytes) in [("png", png), ("svg", svg)] {
            zip.start_file(format!("{}.{ext}", a.public_id), opts).map_err(|e| zipping(&e))?;
            zip.write_all(&bytes).map_err(|e| zipping(&e))?;
        }
        // The signed Open Badges 3.0 credential, for wallets and verifiers (awards made before
        // credentials were issued have none).
        match crate::db::credentials::json_of(conn, &a.public_id) {
            Ok(json) => {
                zip.start_file(format!("{}.credential.json", a.public_id), opts).map_err(|e| zipping(&e))?;
                zip.write_all(json.as_bytes()).map_err(|e| zipping(&e))?;
            }
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(zip.finish().map_err(|e| zipping(&e))?.into_inner())
}

/// Why a learner's own request to be forgotten was not sent.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("there is no email address on file to confirm with")]
    NoAddress,
    #[error(
        "Cairn has already sent {limit} email(s) to your address today; check your inbox (and spam folder), or try \
         again later"
    )]
    MailLimit { limit: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A learner asks, from their private link, to be forgotten: a confirmation link is mailed to
/// the address on file (counted against the daily mail limit of `/join`), and nothing is
/// erased until it is followed. The mail is queued in the outbox in the same transaction, then
/// written (with its link) and delivered at once; if the mail server is away it stays queued
/// and is retried.
pub async fn request_forget(
    ctx: &crate::app::subscribe::Joining<'_>,
    author_id: i64,
    now: i64,
) -> Result<(), RequestError> {
    let limit = ctx.mails_per_day;
    let mail = crate::db::run(ctx.pool, move |c| {
        write_tx(c, |c| {
            let author = crate::db::feeds::get_author(c, author_id)?;
            let Some(email) = author.email else { return Ok(Err(RequestError::NoAddress)) };
            if crate::db::feeds::reserve_join_mail(c, &email, limit, now)?.is_err() {
                return Ok(Err(RequestError::MailLimit { limit }));
            }
            Ok(Ok(crate::db::outbox::enqueue_forget_confirmation(c, author_id, now)?))
        })
    })
    .await??;
    ctx.deliver(mail).await;
    Ok(())
}

/// The learner whose emailed forget link carries `token`, if it is current at `now`.
pub fn requested(conn: &mut SqliteConnection, token: &str, now: i64) -> StoreResult<Holdings> {
    let author = learners::forget_request(conn, &crate::tokens::token_hash(token), now)?
        .ok_or(StoreError::NotFound("forget link (it may have expired or been used)"))?;
    learners::holdings_of_author(conn, author)
}

/// Only web addresses with a host count as the learner's site: a mention whose source starts
/// with one came from a page of theirs.
fn is_own_site(site: &str) -> bool {
    url::Url::parse(site).is_ok_and(|u| u.host_str().is_some() && matches!(u.scheme(), "http" | "https"))
}

/// `text` with every word that looks like an email address replaced by `[address]`, for log
/// lines that quote other systems' messages.
pub fn mask_addresses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let looks_like = word.find('@').is_some_and(|at| at > 0 && word[at + 1..].contains('.'));
        out.push_str(if looks_like { "[address]" } else { word.as_str() });
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '<' | '>' | '\'' | '"' | '(' | ')' | ',' | ';' | ':' | '[' | ']') {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::{mask_addresses, scrub};

    #[test]
    fn a_newsletter_issue_loses_the_learners_posts_and_name_and_still_reads() {
        let post = |id: i64, author: &str, url: &str| serde_json::json!({"link_id": id, "author": author, "title": "T", "excerpt": "E", "url": url});
        let mut doc = serde_json::json!({
            "course_title": "C", "course_slug": "c", "date": "2026-12-01",
            "note": "Well done, Grace Hopper!",
            "groups": [
                {"task": {"title": "Data", "slug": "el30-data"},
                 "posts": [post(7, "G. H.", "https://grace.example/a"), post(8, "Ada", "https://ada.example/b")]},
                {"task": null, "posts": [post(9, "Grace Hopper", "https://grace.example/c")]}
            ],
            "module": null,
            "badges": [{"title": "Data", "count": 2, "names": ["Grace Hopper", "Ada"]}]
        });
        let personal = ["Grace Hopper".to_string(), "grace@navy.example".into(), "https://grace.example/c".into()];
        scrub(&mut doc, &[7], &personal);
        let content: crate::app::newsletter::Content = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(content.note, "");
        assert_eq!(content.groups[0].posts.iter().map(|p| p.link_id).collect::<Vec<_>>(), [8]);
        assert!(content.groups[1].posts.is_empty());
        assert_eq!(content.badges[0].names, ["Ada"]);
        assert!(!doc.to_string().contains("Grace") && !doc.to_string().contains("grace.example"), "{doc}");
    }

    #[test]
    fn addresses_are_masked_in_log_text() {
        assert_eq!(mask_addresses("'ada@example.edu' is not an address"), "'[address]' is not an address");
        assert_eq!(
            mask_addresses("550 <Ada.L@Example.org>: mailbox unavailable"),
            "550 <[address]>: mailbox unavailable"
        );
        assert_eq!(mask_addresses("timed out after 20 s @ relay"), "timed out after 20 s @ relay");
    }
}
