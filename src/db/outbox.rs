//! The outbox: notifications of awards (a Webmention to the learner's post, an email with the
//! baked badge) waiting to be delivered, with their delivery state, so that a restart loses
//! nothing.

use diesel::prelude::*;

use super::queue::{self, State};
use super::schema::{awards, outbox, tasks};
use super::{StoreResult, write_tx};

super::stored::stored_enum! {
    /// What a notification is.
    pub enum Kind {
        Webmention = "webmention",
        Email = "email",
        /// The mail that asks a newsletter reader to confirm (written when it is sent).
        NewsletterConfirmation = "newsletter_confirmation",
        /// The mail that tells the learner their badge was revoked, and why.
        RevocationEmail = "revocation_email",
        /// The mail that tells an instructor a token or webhook was made in their name.
        CredentialNotice = "credential_notice",
        /// The mail that asks a learner to confirm they want to be forgotten (written, with
        /// its link, when it is sent).
        ForgetConfirmation = "forget_confirmation",
        /// The mail that asks a learner to confirm a subscription (written, with its links,
        /// when it is sent).
        JoinConfirmation = "join_confirmation",
        /// The mail that gives a learner the private links of their subscriptions again (written,
        /// with new links, when it is sent).
        PrivateLinks = "private_links",
    }
}

super::stored::stored_enum! {
    /// Where a notification is in its delivery.
    pub enum Status {
        /// Waiting for its next attempt (`next_attempt_at`), or leased to a worker sending it.
        Queued = "queued",
        Sent = "sent",
        /// The post advertises no Webmention endpoint: nothing to send, not an error.
        NoEndpoint = "no_endpoint",
        /// Refused for good; not retried.
        Failed = "failed",
        /// Still failing when the retry period ran out.
        GaveUp = "gave_up",
    }
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = outbox)]
pub struct Notification {
    pub id: i64,
    pub kind: Kind,
    /// The award notified; `None` for a newsletter's Webmention.
    pub award_id: Option<i64>,
    pub source: Option<String>,
    pub target: Option<String>,
    pub status: Status,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub endpoint: Option<String>,
    pub location: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The newsletter issue whose archive page mentions the target, for a newsletter's Webmention.
    pub newsletter_issue_id: Option<i64>,
    /// The reader asked to confirm, for a newsletter's confirmation mail.
    pub newsletter_subscriber_id: Option<i64>,
    /// The instructor told, for a credential notice.
    #[serde(skip)]
    pub instructor_id: Option<i64>,
    /// What a credential notice tells (JSON, never a secret).
    #[serde(skip)]
    pub payload: Option<String>,
    /// The learner asked to confirm, for a forget confirmation.
    #[serde(skip)]
    pub author_id: Option<i64>,
    /// The subscription waiting for its confirmation, for a join confirmation.
    #[serde(skip)]
    pub feed_id: Option<i64>,
}

/// Queues the mail that asks a learner to confirm a subscription, in the caller's transaction.
/// `course` is the slug of the course whose page led to the join, so the mail can name it.
pub fn enqueue_join_confirmation(
    conn: &mut SqliteConnection,
    feed_id: i64,
    course: Option<&str>,
    now: i64,
) -> StoreResult<i64> {
    diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(Kind::JoinConfirmation),
            outbox::feed_id.eq(feed_id),
            outbox::payload.eq(course),
            outbox::status.eq(Status::Queued),
            outbox::next_attempt_at.eq(now),
            outbox::created_at.eq(now),
            outbox::updated_at.eq(now),
        ))
        .returning(outbox::id)
        .get_result(conn)
        .map_err(Into::into)
}

/// Queues the mail that asks a learner to confirm they want to be forgotten, in the caller's
/// transaction.
pub fn enqueue_forget_confirmation(conn: &mut SqliteConnection, author_id: i64, now: i64) -> StoreResult<i64> {
    enqueue_for_author(conn, Kind::ForgetConfirmation, author_id, now)
}

/// Queues a mail of `kind` to a learner (written when it is sent), in the caller's transaction.
fn enqueue_for_author(conn: &mut SqliteConnection, kind: Kind, author_id: i64, now: i64) -> StoreResult<i64> {
    diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(kind),
            outbox::author_id.eq(author_id),
            outbox::status.eq(Status::Queued),
            outbox::next_attempt_at.eq(now),
            outbox::created_at.eq(now),
            outbox::updated_at.eq(now),
        ))
        .returning(outbox::id)
        .get_result(conn)
        .map_err(Into::into)
}

/// Queues the mail that gives a learner their private links again, in the caller's transaction.
pub fn enqueue_private_links(conn: &mut SqliteConnection, author_id: i64, now: i64) -> StoreResult<i64> {
    enqueue_for_author(conn, Kind::PrivateLinks, author_id, now)
}

/// Queues the mail that tells an instructor something was made in their name, `payload` saying
/// what (never a secret), in the caller's transaction; returns its id.
pub fn enqueue_credential_notice(
    conn: &mut SqliteConnection,
    instructor_id: i64,
    payload: &str,
    now: i64,
) -> StoreResult<i64> {
    diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(Kind::CredentialNotice),
            outbox::instructor_id.eq(instructor_id),
            outbox::payload.eq(payload),
            outbox::status.eq(Status::Queued),
            outbox::next_attempt_at.eq(now),
            outbox::created_at.eq(now),
            outbox::updated_at.eq(now),
        ))
        .returning(outbox::id)
        .get_result(conn)
        .map_err(Into::into)
}

/// The notifications with these ids that are queued and due at `now`.
pub fn due_among(conn: &mut SqliteConnection, ids: &[i64], now: i64) -> StoreResult<Vec<Notification>> {
    outbox::table
        .filter(outbox::id.eq_any(ids))
        .filter(outbox::status.eq(Status::Queued).and(outbox::next_attempt_at.le(now)))
        .order(outbox::id)
        .select(Notification::as_select())
        .load(conn)
        .map_err(Into::into)
}

/// Queues the mail that asks a newsletter reader to confirm, in the caller's transaction.
pub fn enqueue_confirmation(conn: &mut SqliteConnection, subscriber_id: i64, now: i64) -> StoreResult<()> {
    diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(Kind::NewsletterConfirmation),
            outbox::newsletter_subscriber_id.eq(subscriber_id),
            outbox::status.eq(Status::Queued),
            outbox::next_attempt_at.eq(now),
            outbox::created_at.eq(now),
            outbox::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The confirmation mails queued for a newsletter reader, oldest first.
pub fn for_newsletter_reader(conn: &mut SqliteConnection, subscriber_id: i64) -> StoreResult<Vec<Notification>> {
    outbox::table
        .filter(outbox::newsletter_subscriber_id.eq(subscriber_id))
        .order(outbox::id)
        .select(Notification::as_select())
        .load(conn)
        .map_err(Into::into)
}

/// Queues a Webmention from a newsletter issue's archive page (`source`) to each post it
/// included, once per post and issue (a unique key), in the caller's transaction.
pub fn enqueue_newsletter(
    conn: &mut SqliteConnection,
    issue_id: i64,
    source: &str,
    targets: &[String],
    now: i64,
) -> StoreResult<usize> {
    write_tx(conn, |conn| {
        let mut n = 0;
        for target in targets {
            n += diesel::insert_into(outbox::table)
                .values((
                    outbox::kind.eq(Kind::Webmention),
                    outbox::newsletter_issue_id.eq(issue_id),
                    outbox::source.eq(source),
                    outbox::target.eq(target),
                    outbox::status.eq(Status::Queued),
                    outbox::next_attempt_at.eq(now),
                    outbox::created_at.eq(now),
                    outbox::updated_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute(conn)?;
        }
        Ok(n)
    })
}

/// The Webmentions of a newsletter issue, oldest first.
pub fn for_newsletter_issue(conn: &mut SqliteConnection, issue_id: i64) -> StoreResult<Vec<Notification>> {
    outbox::table
        .filter(outbox::newsletter_issue_id.eq(issue_id))
        .order(outbox::id)
        .select(Notification::as_select())
        .load(conn)
        .map_err(Into::into)
}

/// Queues an award's notifications: a Webmention from `source` to the evidence when there is
/// one, and the email when `email`. Runs inside the caller's transaction when there is one.
pub fn enqueue(
    conn: &mut SqliteConnection,
    award_id: i64,
    source: &str,
    evidence: Option<&str>,
    email: bool,
    now: i64,
) -> StoreResult<()> {
    write_tx(conn, |conn| {
        if let Some(target) = evidence {
            diesel::insert_into(outbox::table)
                .values((
                    outbox::kind.eq(Kind::Webmention),
                    outbox::award_id.eq(award_id),
                    outbox::source.eq(source),
                    outbox::target.eq(target),
                    outbox::status.eq(Status::Queued),
                    outbox::next_attempt_at.eq(now),
                    outbox::created_at.eq(now),
                    outbox::updated_at.eq(now),
                ))
                .execute(conn)?;
        }
        if email {
            queue_for_award(conn, Kind::Email, award_id, now)?;
        }
        Ok(())
    })
}

/// Queues the mail that tells the learner an award was revoked, in the caller's transaction.
pub fn enqueue_revocation(conn: &mut SqliteConnection, award_id: i64, now: i64) -> StoreResult<()> {
    queue_for_award(conn, Kind::RevocationEmail, award_id, now)
}

/// Queues one notification of `kind` about an award, due at once.
fn queue_for_award(conn: &mut SqliteConnection, kind: Kind, award_id: i64, now: i64) -> StoreResult<()> {
    diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(kind),
            outbox::award_id.eq(award_id),
            outbox::status.eq(Status::Queued),
            outbox::next_attempt_at.eq(now),
            outbox::created_at.eq(now),
            outbox::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Notifications of the given awards, oldest first.
pub fn for_awards(conn: &mut SqliteConnection, award_ids: &[i64]) -> StoreResult<Vec<Notification>> {
    outbox::table
        .filter(outbox::award_id.eq_any(award_ids.iter().map(|id| Some(*id))))
        .order(outbox::id)
        .select(Notification::as_select())
        .load(conn)
        .map_err(Into::into)
}

/// Queued notifications whose next attempt is due at `now`, earliest first, at most `limit`.
pub fn due(conn: &mut SqliteConnection, now: i64, limit: i64) -> StoreResult<Vec<Notification>> {
    outbox::table
        .filter(outbox::status.eq(Status::Queued).and(outbox::next_attempt_at.le(now)))
        .order(outbox::next_attempt_at)
        .limit(limit)
        .select(Notification::as_select())
        .load(conn)
        .map_err(Into::into)
}

/// Claims a due notification for `lease_secs`: true when this caller got it
/// ([`super::queue::claim`]).
pub fn claim(conn: &mut SqliteConnection, id: i64, now: i64, lease_secs: i64) -> StoreResult<bool> {
    queue::claim_one::<queue::Outbox>(conn, id, now, lease_secs)
}

/// How one delivery attempt ended, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Nothing more to do (`Sent` or `NoEndpoint`).
    Done { status: Status, endpoint: Option<String>, location: Option<String> },
    /// Refused for good.
    Failed { error: String, endpoint: Option<String> },
    /// Try again at `next_attempt_at`, or give up (`status` is `Queued` or `GaveUp`).
    Retry { status: Status, error: String, next_attempt_at: i64 },
}

impl From<Status> for State {
    fn from(s: Status) -> State {
        match s {
            Status::Queued => State::Queued,
            Status::Sent => State::Sent,
            Status::NoEndpoint => State::NoEndpoint,
            Status::Failed => State::Failed,
            Status::GaveUp => State::GaveUp,
        }
    }
}

impl Settled {
    /// The outcome as any queue stores it, and what only the outbox keeps: the Webmention
    /// endpoint and the receiver's `Location`.
    fn split(self) -> (queue::Outcome, Option<String>, Option<String>) {
        match self {
            Settled::Done { status, endpoint, location } => (queue::Outcome::Done(status.into()), endpoint, location),
            Settled::Failed { error, endpoint } => (queue::Outcome::Failed(error), endpoint, None),
            Settled::Retry { status, error, next_attempt_at } => {
                (queue::Outcome::Retry { state: status.into(), error, next_attempt_at }, None, None)
            }
        }
    }
}

/// Records the outcome of a claimed notification's attempt number `attempts`.
pub fn settle(conn: &mut SqliteConnection, id: i64, attempts: i64, outcome: Settled, now: i64) -> StoreResult<()> {
    settle_many(conn, vec![(id, attempts, outcome)], now)
}

/// Records the outcomes of claimed notifications' attempts, `(id, attempt number, outcome)`,
/// in one write transaction.
pub fn settle_many(conn: &mut SqliteConnection, outcomes: Vec<(i64, i64, Settled)>, now: i64) -> StoreResult<()> {
    let attempts = outcomes
        .into_iter()
        .map(|(id, number, settled)| {
            let (outcome, endpoint, location) = settled.split();
            (queue::Attempt { id, number, outcome }, Reached { endpoint, location })
        })
        .collect();
    record(conn, attempts, now)
}

/// What only the outbox keeps of an attempt: the Webmention endpoint it reached, and the
/// `Location` the receiver gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reached {
    pub endpoint: Option<String>,
    pub location: Option<String>,
}

/// Records attempts with what each reached, in one write transaction ([`super::queue::settle`]).
pub fn record(conn: &mut SqliteConnection, attempts: Vec<(queue::Attempt, Reached)>, now: i64) -> StoreResult<()> {
    let (attempts, reached): (Vec<queue::Attempt>, Vec<Reached>) = attempts.into_iter().unzip();
    write_tx(conn, |c| {
        queue::settle::<queue::Outbox>(c, &attempts, now)?;
        for (a, r) in attempts.iter().zip(reached) {
            if r != Reached::default() {
                diesel::update(outbox::table.find(a.id))
                    .set((outbox::endpoint.eq(r.endpoint), outbox::location.eq(r.location)))
                    .execute(c)?;
            }
        }
        Ok(())
    })
}

/// What the badge email (and the revocation email) of an award says and carries.
#[derive(Debug, Clone)]
pub struct AwardMail {
    pub to: String,
    /// The learner's name as they gave it when they joined (private: never the public form
    /// shown on badges); `None` when the award has no learner on file.
    pub given_name: Option<String>,
    pub public_id: String,
    /// The badge: its task's title.
    pub title: String,
    /// The titles of the courses that hold the badge's task, in course order, each once.
    pub courses: Vec<String>,
    /// The instructor's comment.
    pub narrative: Option<String>,
    /// The post that earned the badge, and its title when it is known.
    pub evidence_url: Option<String>,
    pub post_title: Option<String>,
    /// The public id of the learner's portfolio, when they have one and it is not hidden.
    pub portfolio: Option<String>,
    /// The learner joined with a blog, so has a private subscription page.
    pub joined: bool,
    pub revocation_reason: Option<String>,
    /// The learner was forgotten: the award keeps no recipient, and nothing is sent.
    pub withdrawn: bool,
    /// The award's images, to attach the baked PNG.
    pub images: super::awards::StoredImages,
    pub issuer: String,
}

type MailRow = (
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

/// The badge email's content for an award.
pub fn award_mail(conn: &mut SqliteConnection, award_id: i64) -> StoreResult<AwardMail> {
    use super::schema::{authors, feeds, links};
    let (to, public_id, task_id, title, narrative, evidence_url, link_id, author_id, revocation_reason, withdrawn_at): MailRow =
        awards::table
            .inner_join(tasks::table)
            .filter(awards::id.eq(award_id))
            .select((
                awards::recipient_email,
                awards::public_id,
                awards::task_id,
                tasks::title,
                awards::narrative,
                awards::evidence_url,
                awards::link_id,
                awards::author_id,
                awards::revocation_reason,
                awards::withdrawn_at,
            ))
            .first(conn)?;
    let mut courses: Vec<String> = Vec::new();
    for (course, _) in super::courses::places_of_task(conn, task_id)? {
        if !courses.contains(&course.title) {
            courses.push(course.title);
        }
    }
    let post_title = match link_id {
        Some(id) => links::table.find(id).select(links::title).first::<String>(conn).optional()?,
        None => None,
    }
    .map(|t| t.trim().to_string())
    .filter(|t| !t.is_empty());
    let author = match author_id {
        Some(id) => Some(id),
        None => authors::table.filter(authors::email.eq(&to)).select(authors::id).first(conn).optional()?,
    };
    let given_name = match author {
        Some(id) => authors::table.find(id).select(authors::name).first::<String>(conn).optional()?,
        None => None,
    }
    .map(|n| n.trim().to_string())
    .filter(|n| !n.is_empty());
    // A learner who joined holds a private link (only its hash is stored) to manage their feed.
    let joined = match author {
        Some(id) => diesel::select(diesel::dsl::exists(
            feeds::table.filter(feeds::author_id.eq(id).and(feeds::manage_token_hash.is_not_null())),
        ))
        .get_result(conn)?,
        None => false,
    };
    let portfolio = super::portfolios::of_award(conn, author_id, &to)?.filter(|p| !p.hidden).map(|p| p.public_id);
    let images = super::awards::images(conn, &public_id)?;
    let issuer = super::institution::get(conn)?.name;
    Ok(AwardMail {
        to,
        given_name,
        public_id,
        title,
        courses,
        narrative: narrative.filter(|n| !n.trim().is_empty()),
        evidence_url,
        post_title,
        portfolio,
        joined,
        revocation_reason,
        withdrawn: withdrawn_at.is_some(),
        images,
        issuer,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh database file holding one task and one award; returns the award's id.
    pub(crate) fn db_with_award() -> (tempfile::TempDir, SqliteConnection, i64) {
        use crate::db::schema::tasks;
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&dir.path().join("cairn.db")).unwrap();
        drop(pool);
        let mut conn = SqliteConnection::establish(dir.path().join("cairn.db").to_str().unwrap()).unwrap();
        crate::db::institution::ensure(&mut conn, "Open U", 0).unwrap();
        let task: i64 = diesel::insert_into(tasks::table)
            .values((
                tasks::title.eq("Data"),
                tasks::description.eq(""),
                tasks::criteria.eq(""),
                tasks::hashtag.eq("el30-data"),
                tasks::created_at.eq(0),
                tasks::updated_at.eq(0),
            ))
            .returning(tasks::id)
            .get_result(&mut conn)
            .unwrap();
        let award: i64 = diesel::insert_into(awards::table)
            .values((
                awards::public_id.eq("abc"),
                awards::task_id.eq(task),
                awards::recipient_email.eq("ada@example.edu"),
                awards::salt.eq("s"),
                awards::identity.eq("sha256$00"),
                awards::evidence_url.eq("https://ada.example/post"),
                awards::issued_on.eq(0),
                awards::assertion_json.eq("{}"),
                awards::baked_svg.eq(Vec::<u8>::new()),
                awards::baked_png.eq(vec![0x89u8]),
            ))
            .returning(awards::id)
            .get_result(&mut conn)
            .unwrap();
        (dir, conn, award)
    }

    #[test]
    fn claims_leases_and_retries_follow_the_time_they_are_given() {
        let (_dir, mut c, award) = db_with_award();
        let t = 1_000_000;
        enqueue(&mut c, award, "https://cairn.example/assertions/abc", Some("https://ada.example/post"), true, t)
            .unwrap();
        assert!(due(&mut c, t - 1, 10).unwrap().is_empty(), "nothing is due before it was queued");
        let queued = due(&mut c, t, 10).unwrap();
        assert_eq!(queued.iter().map(|n| n.kind).collect::<Vec<_>>(), [Kind::Webmention, Kind::Email]);
        let id = queued[0].id;
        assert!(claim(&mut c, id, t, 300).unwrap());
        assert!(!claim(&mut c, id, t + 299, 300).unwrap(), "a leased row is not claimed twice");
        assert_eq!(due(&mut c, t + 299, 10).unwrap().len(), 1, "only the email is due while the lease holds");
        assert!(claim(&mut c, id, t + 300, 300).unwrap(), "an expired lease makes the row due again");

        let (state, next) = queue::retry_schedule(1, Some(120), t, t + 300);
        let status = if state == State::GaveUp { Status::GaveUp } else { Status::Queued };
        settle(&mut c, id, 1, Settled::Retry { status, error: "503".into(), next_attempt_at: next }, t + 300).unwrap();
        let row = &for_awards(&mut c, &[award]).unwrap()[0];
        assert_eq!(
            (row.status, row.attempts, row.next_attempt_at, row.updated_at),
            (Status::Queued, 1, t + 420, t + 300)
        );
        settle(&mut c, id, 2, Settled::Done { status: Status::Sent, endpoint: None, location: None }, t + 500).unwrap();
        let row = &for_awards(&mut c, &[award]).unwrap()[0];
        assert_eq!((row.status, row.last_error.as_deref(), row.updated_at), (Status::Sent, None, t + 500));
        let mail = award_mail(&mut c, award).unwrap();
        assert_eq!(
            (mail.title.as_str(), mail.issuer.as_str(), mail.to.as_str()),
            ("Data", "Open U", "ada@example.edu")
        );
    }

    #[test]
    fn the_mail_greets_by_the_given_name_and_links_only_a_visible_portfolio() {
        let (_dir, mut c, award) = db_with_award();
        let m = award_mail(&mut c, award).unwrap();
        assert_eq!((m.given_name, m.portfolio, m.joined, m.courses.len()), (None, None, false, 0));
        assert_eq!(m.evidence_url.as_deref(), Some("https://ada.example/post"));
        // The learner on file by the award's address: her name as given, never its public form.
        let author = crate::db::feeds::find_or_create_author(
            &mut c,
            " Ada Lovelace ",
            Some("ada@example.edu"),
            crate::clock::system_now(),
        )
        .unwrap();
        crate::db::learners::set_name_choice(&mut c, author.id, crate::db::learners::NameShown::Initials, None)
            .unwrap();
        let m = award_mail(&mut c, award).unwrap();
        let page = crate::db::portfolios::of_author(&mut c, author.id).unwrap().unwrap().public_id;
        assert_eq!((m.given_name.as_deref(), m.portfolio.as_deref()), (Some("Ada Lovelace"), Some(page.as_str())));
        crate::db::portfolios::set_hidden(&mut c, author.id, true).unwrap();
        assert_eq!(award_mail(&mut c, award).unwrap().portfolio, None, "a hidden page is not linked");
        assert!(!award_mail(&mut c, award).unwrap().withdrawn);
        crate::db::learners::withdraw_award(&mut c, award, "withdrawn", 5).unwrap();
        assert!(award_mail(&mut c, award).unwrap().withdrawn);
    }

    #[test]
    fn every_state_round_trips_through_its_stored_string() {
        crate::db::stored::assert_round_trip!(Status);
        crate::db::stored::assert_round_trip!(Kind);
        let stored: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(stored, ["queued", "sent", "no_endpoint", "failed", "gave_up"]);
        assert!("delivered".parse::<Status>().is_err());
        assert_eq!(serde_json::to_value(Status::GaveUp).unwrap(), serde_json::json!("gave_up"));
    }
}
