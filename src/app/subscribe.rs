//! Joining a course: a learner gives a name, an email and a blog or feed address; the feed is
//! found and read once, the subscription waits for the emailed confirmation link, and a
//! private link lets the learner change or remove it later. A learner whose feed an instructor
//! added claims it the same way. Each rule of who may take which feed lives here, once.

use crate::db::feeds::{self, Author, Feed, FeedStatus, NewClaim, NewFeed};
use crate::db::learners::NameShown;
use crate::db::{DbPool, StoreError, StoreResult};
use crate::domain::{Email, FieldErrors};
use crate::email::Mailer;
use crate::harvest::authorship::{is_own_instance, own_instance_refusal};
use crate::harvest::discover::FeedLink;
use crate::harvest::{FeedError, Harvester};
use crate::tokens::{random_token, token_hash};

/// What joining needs besides the request.
pub struct Joining<'a> {
    pub pool: &'a DbPool,
    /// Finds and reads the learner's feed, with the limits for addresses typed by anyone.
    pub harvester: &'a Harvester,
    pub mailer: &'a Mailer,
    /// Public base URL, no trailing slash: the emailed links start with it.
    pub base_url: &'a str,
    /// Confirmation mails one address may get in a day.
    pub mails_per_day: u32,
    /// Delivers the confirmation mails this queues in the outbox.
    pub notifier: &'a crate::notify::Notifier,
}

impl Joining<'_> {
    /// Delivers a confirmation mail just queued in the outbox now, as the request's answer
    /// says it was sent; if the mail server is away it stays queued, and the delivery job
    /// retries it.
    pub async fn deliver(&self, mail: i64) {
        if let Err(e) = self.notifier.deliver_now(vec![mail]).await {
            tracing::error!(error = %e, "delivering a confirmation mail failed; it stays queued");
        }
    }
}

/// The learner, as checked.
#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub email: Email,
    /// How the name appears publicly, and the pseudonym when that is the choice.
    pub shown: NameShown,
    pub pseudonym: Option<String>,
}

/// A join as typed.
#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    pub name: String,
    pub email: String,
    /// A blog or feed address, perhaps without a scheme.
    pub url: String,
    /// The feed chosen when a page advertises several; empty until then.
    pub feed: String,
    /// How the name appears publicly: `given` (also when empty), `initials` or `pseudonym`.
    pub shown: String,
    /// The pseudonym, when `shown` is `pseudonym`.
    pub pseudonym: String,
    /// The slug of the course whose page led here, or empty: the mail names it.
    pub course: String,
}

/// Why a join or a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// The input breaks a rule, or the feed is taken; said by form field.
    #[error("{0}")]
    Invalid(FieldErrors),
    /// Too many feeds are being discovered at once; trying later may succeed.
    #[error("{0}")]
    Busy(FeedError),
    /// The address has had its confirmation mails for the day.
    #[error(
        "Cairn has already sent {limit} confirmation email(s) to this address today; check your inbox \
         (and spam folder), or try again in about {} hour(s)",
        hours(.wait)
    )]
    MailLimit { limit: u32, wait: i64 },
    #[error(transparent)]
    Store(StoreError),
}

/// Whole hours, rounded up, of a wait in seconds.
fn hours(wait: &i64) -> u64 {
    (*wait as u64).div_ceil(3600)
}

impl From<StoreError> for SubscribeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(errors) => SubscribeError::Invalid(errors),
            e => SubscribeError::Store(e),
        }
    }
}

impl From<diesel::result::Error> for SubscribeError {
    fn from(e: diesel::result::Error) -> Self {
        SubscribeError::Store(e.into())
    }
}

impl SubscribeError {
    fn url(message: impl Into<String>) -> SubscribeError {
        let mut e = FieldErrors::new();
        e.add("url", message);
        SubscribeError::Invalid(e)
    }
}

/// What a join led to.
#[derive(Debug)]
pub enum Joined {
    /// The page advertises several feeds: the learner chooses (`feed_url` is preselected).
    Choose { feed_url: String, choices: Vec<FeedLink> },
    /// The subscription (or the claim of a feed an instructor added) waits for the emailed
    /// confirmation. `on_file`: the mail went to the address the instructor has on file for
    /// the feed's learner, not to the one given.
    Pending { feed_title: String, items: usize, on_file: bool },
}

/// Adds `https://` to an address typed without a scheme.
pub fn normalise_address(raw: &str) -> String {
    let t = raw.trim();
    if t.contains("://") { t.to_string() } else { format!("https://{t}") }
}

/// A learner's name: 1 to 100 characters.
fn check_name(raw: &str, errors: &mut FieldErrors) -> String {
    let name = raw.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add("name", "please give your name (at most 100 characters)");
    }
    name
}

/// The choice of public name: `given` (or nothing), `initials`, or `pseudonym` with a
/// pseudonym of 1 to 100 characters.
pub fn check_name_choice(shown: &str, pseudonym: &str, errors: &mut FieldErrors) -> (NameShown, Option<String>) {
    let shown = match shown.trim() {
        "" => NameShown::Given,
        word => NameShown::parse(word).unwrap_or_else(|| {
            errors.add("shown", "choose how your name appears: as given, initials or a pseudonym");
            NameShown::Given
        }),
    };
    let pseudonym = pseudonym.trim().chars().filter(|c| !c.is_control()).collect::<String>();
    if shown != NameShown::Pseudonym {
        return (shown, None);
    }
    if pseudonym.is_empty() || pseudonym.chars().count() > 100 {
        errors.add("pseudonym", "type the pseudonym to show (at most 100 characters)");
    }
    (shown, Some(pseudonym))
}

/// Checks the name, email and address of a join before anything is fetched or stored.
pub fn check_person(req: &JoinRequest) -> Result<Person, FieldErrors> {
    let mut errors = FieldErrors::new();
    let name = check_name(&req.name, &mut errors);
    let (shown, pseudonym) = check_name_choice(&req.shown, &req.pseudonym, &mut errors);
    let email = errors.check("email", Email::parse(&req.email));
    if req.url.trim().is_empty() {
        errors.add("url", "please give the address of your blog or its feed");
    }
    match email {
        Some(email) if errors.is_empty() => Ok(Person { name, email, shown, pseudonym }),
        _ => Err(errors),
    }
}

/// Why a feed already known cannot be taken by this learner, if it cannot.
fn refusal(existing: &Feed, mine: bool, feed_url: &str) -> Option<String> {
    match existing.status {
        // Removed by its learner or an instructor: free to join again, as a new subscription.
        FeedStatus::Removed => None,
        FeedStatus::Pending if mine => {
            Some("this feed is waiting for your confirmation: use the link in the email Cairn sent you".into())
        }
        FeedStatus::Pending => Some(format!(
            "{feed_url} is waiting for another learner's confirmation; if it is yours, contact the course's instructor"
        )),
        _ if mine => Some(
            "you are already subscribed with this feed; the private link in your confirmation email lets you change it \
             (lost it? /subscription mails it to you again)"
                .into(),
        ),
        _ => Some(format!(
            "{feed_url} is already followed for another learner; if it is yours, contact the course's instructor"
        )),
    }
}

/// A checked join: refused past the address's mail limit before any outbound request; the
/// feed is found and read; it is stored pending confirmation and the confirmation is mailed.
pub async fn join(ctx: &Joining<'_>, person: &Person, req: &JoinRequest, now: i64) -> Result<Joined, SubscribeError> {
    let (addr, limit) = (person.email.to_string(), ctx.mails_per_day);
    if let Some(wait) = crate::db::run(ctx.pool, move |c| feeds::join_mail_wait(c, &addr, limit, now)).await? {
        return Err(SubscribeError::MailLimit { limit, wait });
    }
    let target = if req.feed.trim().is_empty() { normalise_address(&req.url) } else { req.feed.trim().to_string() };
    let joined = normalise_address(&req.url);
    // Cairn's own pages and feeds hold other learners' posts: never anyone's blog.
    for address in [&joined, &target] {
        if let Some(r) = own_instance_refusal(address, ctx.base_url) {
            return Err(SubscribeError::url(r));
        }
    }
    let resolved = match ctx.harvester.resolve_untrusted(&target).await {
        Ok(r) => r,
        Err(e @ FeedError::Busy(_)) => return Err(SubscribeError::Busy(e)),
        Err(e) => return Err(SubscribeError::url(e.to_string())),
    };
    if let Some(r) = own_instance_refusal(&resolved.feed_url, ctx.base_url) {
        return Err(SubscribeError::url(r));
    }
    let choices: Vec<FeedLink> = resolved
        .alternatives
        .iter()
        .filter(|f| !f.comments && !is_own_instance(&f.url, ctx.base_url))
        .cloned()
        .collect();
    if choices.len() > 1 && req.feed.trim().is_empty() {
        return Ok(Joined::Choose { feed_url: resolved.feed_url.clone(), choices });
    }
    // Placeholders until the confirmation mail is written: it is given the tokens then, and
    // the store their hashes.
    let pending = Pending {
        name: person.name.clone(),
        email: person.email.to_string(),
        feed_url: resolved.feed_url.clone(),
        joined_url: joined,
        title: resolved.feed.title.clone(),
        site_url: resolved.feed.site_url.clone(),
        confirm_hash: token_hash(&random_token()),
        manage_hash: token_hash(&random_token()),
        mails_per_day: limit,
        shown: person.shown,
        pseudonym: person.pseudonym.clone(),
        course: Some(req.course.trim().to_string()).filter(|c| !c.is_empty() && c.len() <= 200),
    };
    let (feed, mail, on_file) = crate::db::run(ctx.pool, move |c| Ok(store_pending(c, &pending, now))).await??;
    ctx.deliver(mail).await;
    tracing::info!(feed = feed.id, "subscription awaiting confirmation");
    Ok(Joined::Pending { feed_title: resolved.feed.title, items: resolved.feed.items.len(), on_file })
}

/// A join ready to store.
struct Pending {
    name: String,
    email: String,
    feed_url: String,
    /// The address the learner typed (a blog page or the feed itself).
    joined_url: String,
    title: String,
    site_url: Option<String>,
    confirm_hash: String,
    manage_hash: String,
    mails_per_day: u32,
    shown: NameShown,
    pseudonym: Option<String>,
    /// The course whose page led here (its slug), named in the mail.
    course: Option<String>,
}

/// Stores a join pending confirmation, in one transaction with the mail count, so parallel
/// joins can neither take one feed twice nor pass the mail limit together. Returns the feed,
/// the confirmation mail queued, and whether it goes to the address on file (a claim).
fn store_pending(
    conn: &mut diesel::SqliteConnection,
    p: &Pending,
    now: i64,
) -> Result<(Feed, i64, bool), SubscribeError> {
    feeds::purge_unconfirmed(conn, now)?;
    crate::db::write_tx(conn, |c| {
        let existing = feeds::find_by_url(c, &p.feed_url)?;
        let author = feeds::author_by_email(c, &p.email)?;
        if let Some(f) = existing.as_ref() {
            if claimable(c, f)? {
                return claim(c, f, author, p, now);
            }
            let mine = author.as_ref().is_some_and(|a| a.id == f.author_id);
            if let Some(r) = refusal(f, mine, &p.feed_url) {
                return Err(SubscribeError::url(r));
            }
        }
        if let Err(wait) = feeds::reserve_join_mail(c, &p.email, p.mails_per_day, now)? {
            return Err(SubscribeError::MailLimit { limit: p.mails_per_day, wait });
        }
        // An existing learner keeps their name (and its public form) until they confirm, and
        // changes the public form from their private link.
        let author = match author {
            Some(a) => a,
            None => {
                let a = feeds::find_or_create_author(c, &p.name, Some(&p.email), now)?;
                crate::db::learners::set_name_choice(c, a.id, p.shown, p.pseudonym.as_deref())?;
                a
            }
        };
        let feed = match existing {
            // A subscription its owner removed may be taken up again (its Links are kept).
            Some(removed) => feeds::resubscribe(c, removed.id, author.id, &p.confirm_hash, &p.manage_hash, now)?,
            None => feeds::create_feed(
                c,
                NewFeed {
                    author_id: author.id,
                    url: &p.feed_url,
                    title: &p.title,
                    site_url: p.site_url.as_deref(),
                    status: FeedStatus::Pending,
                    confirm_token_hash: Some(&p.confirm_hash),
                    manage_token_hash: Some(&p.manage_hash),
                },
                now,
            )?,
        };
        if author.name != p.name {
            feeds::set_pending_name(c, feed.id, &p.name)?;
        }
        feeds::set_joined_url(c, feed.id, &p.joined_url)?;
        // The confirmation mail waits in the outbox, written (with its links) when it is sent.
        let mail = crate::db::outbox::enqueue_join_confirmation(c, feed.id, p.course.as_deref(), now)?;
        Ok((feed, mail, false))
    })
}

/// Whether a learner may claim feed `f`: an instructor added it (by hand, OPML or CSV), no
/// learner holds its private link, and it is not removed (a removed feed is joined anew).
fn claimable(c: &mut diesel::SqliteConnection, f: &Feed) -> StoreResult<bool> {
    Ok(matches!(f.status, FeedStatus::Active | FeedStatus::Paused | FeedStatus::Gone)
        && !feeds::learner_owned(c, f.id)?)
}

/// Claims feed `f` for the learner it was added for, pending the mailed confirmation; the feed
/// goes on being read meanwhile. The confirmation goes to the address given when the learner
/// has none on file (or the same one), and the name and choice given apply on confirmation.
/// When the learner already has another address, the mail goes to that address and nothing
/// typed applies: whoever typed someone else's blog cannot take their awards.
fn claim(
    c: &mut diesel::SqliteConnection,
    f: &Feed,
    given: Option<Author>,
    p: &Pending,
    now: i64,
) -> Result<(Feed, i64, bool), SubscribeError> {
    let learner = feeds::get_author(c, f.author_id)?;
    let (to, adopt) = match learner.email.as_deref() {
        Some(on_file) if on_file.eq_ignore_ascii_case(&p.email) => (on_file.to_string(), true),
        Some(on_file) => (on_file.to_string(), false),
        None if given.as_ref().is_some_and(|a| a.id != learner.id) => {
            let mut e = FieldErrors::new();
            e.add(
                "email",
                format!(
                    "{} is already the address of another learner; if this blog is also yours, ask the course's \
                     instructor to add it to your subscription",
                    p.email
                ),
            );
            return Err(SubscribeError::Invalid(e));
        }
        None => (p.email.clone(), true),
    };
    if let Err(wait) = feeds::reserve_join_mail(c, &to, p.mails_per_day, now)? {
        return Err(SubscribeError::MailLimit { limit: p.mails_per_day, wait });
    }
    feeds::put_claim(
        c,
        &NewClaim {
            feed_id: f.id,
            email: &to,
            name: &p.name,
            shown: p.shown,
            pseudonym: p.pseudonym.as_deref(),
            adopt,
            confirm_hash: &p.confirm_hash,
            manage_hash: &p.manage_hash,
        },
        now,
    )?;
    let mail = crate::db::outbox::enqueue_join_confirmation(c, f.id, p.course.as_deref(), now)?;
    Ok((f.clone(), mail, !adopt))
}

/// A learner lost their private link: when `email` is the address of a learner with a
/// confirmed subscription, and the address's daily mail limit (shared with the join
/// confirmations) allows it, a mail with new private links is queued and sent in the
/// background. Whatever the address, nothing is said: the caller answers the same either way,
/// and sooner than a mail server would, so the answer tells no one whether the address is known.
pub async fn send_private_links(ctx: &Joining<'_>, email: &Email, now: i64) -> StoreResult<()> {
    let (addr, limit) = (email.to_string(), ctx.mails_per_day);
    let queued = crate::db::run(ctx.pool, move |c| {
        crate::db::write_tx(c, |c| {
            let Some(author) = feeds::author_by_email(c, &addr)? else { return Ok(None) };
            if feeds::owned_confirmed(c, author.id)?.is_empty() {
                return Ok(None);
            }
            if feeds::reserve_join_mail(c, &addr, limit, now)?.is_err() {
                return Ok(None);
            }
            Ok(Some(crate::db::outbox::enqueue_private_links(c, author.id, now)?))
        })
    })
    .await?;
    if let Some(mail) = queued {
        let notifier = ctx.notifier.clone();
        tokio::spawn(async move {
            if let Err(e) = notifier.deliver_now(vec![mail]).await {
                tracing::error!(error = %e, "delivering a private links mail failed; it stays queued");
            }
        });
    }
    Ok(())
}

/// The subscription a confirmation link would confirm, if the link is still good, and whether
/// it is the claim of a feed an instructor added; confirms nothing.
pub fn pending(conn: &mut diesel::SqliteConnection, token: &str, now: i64) -> StoreResult<Option<(Feed, bool)>> {
    let hash = token_hash(token);
    if let Some(f) = feeds::pending_by_confirm_hash(conn, &hash, now)? {
        return Ok(Some((f, false)));
    }
    let Some(claim) = feeds::claim_by_confirm_hash(conn, &hash, now)? else { return Ok(None) };
    let feed = feeds::get_feed(conn, claim.feed_id)?;
    let learner = feeds::get_author(conn, feed.author_id)?;
    Ok(claim_holds(conn, &claim, &feed, &learner)?.then_some((feed, true)))
}

/// Whether a waiting claim can still be confirmed: the feed is still claimable, and the address
/// on file is the one the mail went to (or none, for a claim that brings one) — an instructor
/// who set or changed it meanwhile voids the claim.
fn claim_holds(
    c: &mut diesel::SqliteConnection,
    claim: &feeds::Claim,
    feed: &Feed,
    learner: &Author,
) -> StoreResult<bool> {
    let address_holds = match learner.email.as_deref() {
        Some(on_file) => on_file.eq_ignore_ascii_case(&claim.email),
        None => claim.adopt,
    };
    Ok(address_holds && claimable(c, feed)?)
}

/// Confirms the subscription (or claim) whose emailed token is `token`, unless used or expired
/// at `now`.
pub fn confirm(conn: &mut diesel::SqliteConnection, token: &str, now: i64) -> StoreResult<Option<Feed>> {
    let hash = token_hash(token);
    if let Some(f) = feeds::confirm(conn, &hash, now)? {
        return Ok(Some(f));
    }
    confirm_claim(conn, &hash, now)
}

/// Confirms a claim: the learner the feed was added for now holds its private link, with their
/// posts and awards as they were; the address, name and choice given apply when the claim says
/// so. A feed taken meanwhile (claimed, or joined after a removal) voids the claim.
fn confirm_claim(conn: &mut diesel::SqliteConnection, hash: &str, now: i64) -> StoreResult<Option<Feed>> {
    crate::db::write_tx(conn, |c| {
        let Some(claim) = feeds::claim_by_confirm_hash(c, hash, now)? else { return Ok(None) };
        let feed = feeds::get_feed(c, claim.feed_id)?;
        let learner = feeds::get_author(c, feed.author_id)?;
        let still = claim_holds(c, &claim, &feed, &learner)?;
        let Some(manage) = claim.manage_token_hash.as_deref().filter(|_| still) else {
            feeds::drop_claim(c, feed.id)?;
            return Ok(None);
        };
        if claim.adopt {
            if learner.email.is_none() {
                crate::db::roster::set_email(c, learner.id, &claim.email).map_err(|e| match e {
                    StoreError::Invalid(_) => StoreError::Conflict(
                        "another learner took this address meanwhile; ask the course's instructor to add it".into(),
                    ),
                    e => e,
                })?;
            }
            feeds::set_author_name(c, learner.id, &claim.name)?;
            crate::db::learners::set_name_choice(c, learner.id, claim.name_shown, claim.pseudonym.as_deref())?;
        }
        feeds::complete_claim(c, feed.id, manage, now)?;
        tracing::info!(feed = feed.id, "feed claimed by its learner");
        feeds::get_feed(c, feed.id).map(Some)
    })
}

/// The subscription (and its learner) whose private link carries `token`.
pub fn managed(conn: &mut diesel::SqliteConnection, token: &str) -> StoreResult<(Feed, Author)> {
    feeds::by_manage_token(conn, &token_hash(token))?.ok_or(StoreError::NotFound("subscription"))
}

/// Changes a subscription's name and address from its private page; a new address is found
/// and read first, with the limits for addresses typed by anyone.
pub async fn change(
    ctx: &Joining<'_>,
    feed: &Feed,
    author: &Author,
    name: &str,
    (shown, pseudonym): (&str, &str),
    url: &str,
    now: i64,
) -> Result<(), SubscribeError> {
    let mut errors = FieldErrors::new();
    let name = check_name(name, &mut errors);
    let (shown, pseudonym) = check_name_choice(shown, pseudonym, &mut errors);
    let mut new_url = None;
    let typed = normalise_address(url);
    if errors.is_empty() && typed != feed.url {
        if let Some(r) = own_instance_refusal(&typed, ctx.base_url) {
            errors.add("url", r);
        } else {
            match ctx.harvester.resolve_untrusted(&typed).await {
                Ok(r) => match own_instance_refusal(&r.feed_url, ctx.base_url) {
                    Some(refused) => errors.add("url", refused),
                    None => new_url = Some((r.feed_url, typed)),
                },
                Err(e) => errors.add("url", e.to_string()),
            }
        }
    }
    if !errors.is_empty() {
        return Err(SubscribeError::Invalid(errors));
    }
    let (fid, aid) = (feed.id, author.id);
    crate::db::run(ctx.pool, move |c| {
        feeds::set_author_name(c, aid, &name)?;
        // Only awards made from now on carry the new public name.
        crate::db::learners::set_name_choice(c, aid, shown, pseudonym.as_deref())?;
        if let Some((u, joined)) = new_url {
            feeds::set_url(c, fid, &u, now)?;
            feeds::set_joined_url(c, fid, &joined)?;
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// Removes a subscription from its private page; its Links stay with the course.
pub fn remove(conn: &mut diesel::SqliteConnection, feed_id: i64, now: i64) -> StoreResult<()> {
    feeds::set_status(conn, feed_id, FeedStatus::Removed, now)
}

pub use crate::db::courses::JoinedCourse;

/// The course `slug` names, if any (an unknown or empty slug names none).
pub fn joined_course(conn: &mut diesel::SqliteConnection, slug: &str) -> StoreResult<Option<JoinedCourse>> {
    crate::db::courses::joined_course(conn, slug)
}

/// Whether `manage` is the private link token of `feed` (the confirmation link carries it,
/// so the "subscribed" page can give the learner their private page).
pub fn is_private_link_of(conn: &mut diesel::SqliteConnection, feed: i64, manage: &str) -> StoreResult<bool> {
    if manage.is_empty() {
        return Ok(false);
    }
    Ok(feeds::by_manage_token(conn, &token_hash(manage))?.is_some_and(|(f, _)| f.id == feed))
}
