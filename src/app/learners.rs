//! A learner's right to erasure: forgetting a learner, one code path for the command line,
//! the instructor's button and the learner's own request.
//!
//! The chain holds only salted hashes of the recipient (and a hash of the evidence), so once
//! the salts and every personal row are gone its records can no longer be tied to the person,
//! and the chain itself is not touched: it stays valid. Each award stays as a row marked
//! withdrawn, so its URL can say so (410 Gone) and the revocation list can list it.

use diesel::SqliteConnection;

use crate::badges::award::Issuer;
use crate::badges::ob;
use crate::db::learners::{self, ForgetActor, ForgetEvent, Holdings};
use crate::db::{StoreError, StoreResult, courses, write_tx};
use crate::domain::Email;

/// What a withdrawn award's URL answers (410 Gone), as a page and as JSON.
pub const WITHDRAWN: &str = "This badge was withdrawn at the learner's request.";
/// The revocation reason of a withdrawn award in the revocation list.
pub const WITHDRAWN_REASON: &str = "withdrawn";

/// The learner to forget.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    /// A harvested author, by id (the instructor's learner page).
    Author(i64),
    /// An address, with or without a feed (the command line).
    Email(&'a str),
}

/// Who asked.
#[derive(Debug, Clone, Copy)]
pub enum Requester {
    Cli,
    Instructor(i64),
    Learner,
}

/// What a forget did.
#[derive(Debug)]
pub struct Forgotten {
    /// The audit entry.
    pub event: ForgetEvent,
    pub awards_withdrawn: usize,
    pub posts_deleted: usize,
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
/// the Webmentions received about their badges or from their site and their join-mail
/// counts; withdraws each of their awards (a revocation record enters the chain's pool for
/// those not revoked yet, so peers hear of it); records the audit entry.
pub fn forget(
    conn: &mut SqliteConnection,
    issuer: &Issuer,
    who: Who,
    by: Requester,
    now: i64,
) -> StoreResult<Forgotten> {
    let (event, awards_withdrawn, posts_deleted) = write_tx(conn, |conn| {
        let h = preview(conn, who)?;
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
                    a.evidence_url.as_deref(),
                    now,
                );
                crate::ledger::pool_record(conn, issuer.signer, fields, Some(a.id))?;
            }
            learners::withdraw_award(conn, a.id, WITHDRAWN_REASON, now)?;
            targets.push(url);
        }
        let ids: Vec<i64> = h.awards.iter().map(|a| a.id).collect();
        learners::delete_notifications(conn, &ids)?;
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
        }
        let (actor, instructor) = match by {
            Requester::Cli => (ForgetActor::Cli, None),
            Requester::Instructor(id) => (ForgetActor::Instructor, Some(id)),
            Requester::Learner => (ForgetActor::Learner, None),
        };
        let event = learners::record_forget(conn, actor, instructor, ids.len() as i64, posts as i64, now)?;
        Ok::<_, StoreError>((event, ids.len(), posts))
    })?;
    let log_emptied = learners::checkpoint(conn)?;
    Ok(Forgotten { event, awards_withdrawn, posts_deleted, log_emptied })
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
    use super::mask_addresses;

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
