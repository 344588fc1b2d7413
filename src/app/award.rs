//! Awarding and revoking badges: one code path for the Reader, bulk awards and the command
//! line. An award's images, chain record and credential are made and signed first, outside
//! any transaction; then the Assertion, record, credential and notifications are stored in
//! one transaction. A second award of the same Task's badge to the same address is refused.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use diesel::SqliteConnection;

use crate::app::access::{Actor, Role};
use crate::badges::award::{self as badge, Claim, Issuer};
use crate::badges::ob;
use crate::db::awards::{self, Award, NewAward};
use crate::db::courses::{self, Task};
use crate::db::links::Authorship;
use crate::db::{StoreError, StoreResult, links, write_tx};
use crate::domain::{Email, FieldErrors, Hashtag, Text};

/// A request to award a Task's badge.
#[derive(Debug, Clone, Default)]
pub struct AwardRequest {
    pub task_id: i64,
    pub recipient_email: String,
    pub recipient_name: Option<String>,
    pub evidence_url: Option<String>,
    pub narrative: Option<String>,
    pub link_id: Option<i64>,
    pub author_id: Option<i64>,
    pub awarded_by: Option<i64>,
    /// The instructor confirmed the evidence although Cairn found it posted elsewhere than on
    /// the recipient's own site (see [`check_authorship`]).
    pub allow_foreign_evidence: bool,
}

/// Longest name, narrative, evidence URL, recipient address and hashtag an award takes (they
/// are baked into its images and shown on its public page), the same on every surface.
pub const NAME_MAX: usize = 200;
pub const NARRATIVE_MAX: usize = 10_000;
pub const EVIDENCE_MAX: usize = 2048;
pub const RECIPIENT_MAX: usize = 254;
pub const TASK_MAX: usize = 65;

/// An award made ready outside any write transaction: its Assertion baked into both images,
/// its chain record and its credential signed. Storing it ([`commit`]) then takes the write
/// lock for a few inserts only, so concurrent awards, the miner and the senders are not held
/// up by image encoding and JSON-LD canonicalization.
pub struct Prepared {
    task: Task,
    email: Email,
    req: AwardRequest,
    expires: Option<i64>,
    issued_on: i64,
    baked: badge::Baked,
    record: cairn_chain::Record,
    credential: badge::SignedCredential,
    /// Who awards, for the audit trail, and the course whose role allowed it.
    actor: Option<(Actor, Option<i64>)>,
}

fn already_awarded(task: &Task, prev: &Award) -> StoreError {
    // The one style of dates people read (web::day's).
    let when = chrono::DateTime::from_timestamp(prev.issued_on, 0).unwrap_or_default().format("%-d %B %Y");
    StoreError::Conflict(format!(
        "This learner already has the badge for {} (awarded {when}); it was not awarded twice.",
        task.hashtag
    ))
}

/// What awards made together share, read once rather than per award: the credential key,
/// each Task and its design, and status list indexes reserved in one run. The web's Reader,
/// the API's batches and the command line all award through one.
pub struct Awarding<'i> {
    issuer: &'i Issuer<'i>,
    key: badge::CredentialKey,
    tasks: HashMap<String, Task>,
    designs: HashMap<(i64, i64), Arc<badge::Art>>,
    indexes: Range<i64>,
    /// How many awards are still expected: the size of the next run of indexes.
    expected: usize,
    /// Who awards: each Task's badge needs a reviewer (or above) of a course that includes
    /// it. `None`: the institution itself (Cairn's own jobs and tests).
    actor: Option<Actor>,
}

impl<'i> Awarding<'i> {
    /// Ready to prepare about `expected` awards (more or fewer is fine).
    pub fn new(conn: &mut SqliteConnection, issuer: &'i Issuer<'i>, expected: usize) -> StoreResult<Self> {
        crate::app::institution::ready_to_issue(conn)?;
        let key = badge::CredentialKey::read(conn, issuer)?;
        Ok(Awarding {
            issuer,
            key,
            tasks: HashMap::new(),
            designs: HashMap::new(),
            indexes: 0..0,
            expected,
            actor: None,
        })
    }

    /// Awards as `actor`, whose roles are checked for each Task and who is recorded in the
    /// audit trail.
    pub fn acting(mut self, actor: Option<Actor>) -> Self {
        self.actor = actor;
        self
    }

    /// Checks an award request and makes its documents, issued at `now`; nothing is awarded
    /// until [`commit`]. A Task already awarded to the address is refused here and again at
    /// commit.
    pub fn prepare(&mut self, conn: &mut SqliteConnection, req: &AwardRequest, now: i64) -> StoreResult<Prepared> {
        let (email, req) = checked(req)?;
        let task = courses::get_task(conn, req.task_id)?;
        self.prepare_for(conn, task, email, &req, now)
    }

    /// Prepares the award of the badge of the Task with a hashtag, by the Reader's rules (see
    /// [`Awarding::prepare`]); evidence posted elsewhere than on the recipient's site is refused.
    pub fn prepare_by_hashtag(
        &mut self,
        conn: &mut SqliteConnection,
        a: &HashtagAward,
        now: i64,
    ) -> Result<Prepared, HashtagAwardError> {
        self.prepare_by_hashtag_with(conn, a, false, now)
    }

    /// [`Awarding::prepare_by_hashtag`], taking evidence posted elsewhere than on the
    /// recipient's site when `allow_foreign_evidence` (`--allow-foreign-evidence`,
    /// `"allow_foreign_evidence": true`); another learner's post is refused all the same.
    pub fn prepare_by_hashtag_with(
        &mut self,
        conn: &mut SqliteConnection,
        a: &HashtagAward,
        allow_foreign_evidence: bool,
        now: i64,
    ) -> Result<Prepared, HashtagAwardError> {
        if a.task.chars().count() > TASK_MAX {
            return Err(HashtagAwardError::Hashtag(format!("the task is at most {TASK_MAX} characters")));
        }
        let tag = Hashtag::parse(&a.task).map_err(HashtagAwardError::Hashtag)?;
        let task = match self.tasks.get(tag.slug()) {
            Some(t) => t.clone(),
            None => {
                let t: Task =
                    courses::get_task_by_slug(conn, tag.slug()).map_err(|_| HashtagAwardError::NoTask(tag.clone()))?;
                self.tasks.insert(tag.slug().to_string(), t.clone());
                t
            }
        };
        let req = AwardRequest {
            task_id: task.id,
            recipient_email: a.recipient.clone(),
            recipient_name: a.name.clone().filter(|n| !n.trim().is_empty()),
            evidence_url: Some(a.evidence.trim().to_string()).filter(|e| !e.is_empty()),
            narrative: a.narrative.clone().filter(|n| !n.trim().is_empty()),
            allow_foreign_evidence,
            ..Default::default()
        };
        let (email, req) = checked(&req)?;
        Ok(self.prepare_for(conn, task, email, &req, now)?)
    }

    /// The next reserved status list index, reserving a run of them when none is left.
    fn next_index(&mut self, conn: &mut SqliteConnection, now: i64) -> StoreResult<i64> {
        if self.indexes.is_empty() {
            self.indexes = crate::db::credentials::reserve_indexes(conn, self.expected, now)?;
        }
        self.expected = self.expected.saturating_sub(1).max(1);
        self.indexes.next().ok_or_else(|| StoreError::Internal(anyhow::anyhow!("no status index was reserved")))
    }

    /// The Task's design, made once per version of the Task.
    fn design(&mut self, conn: &mut SqliteConnection, task: &Task) -> StoreResult<Arc<badge::Art>> {
        let version = (task.id, task.updated_at);
        if let Some(d) = self.designs.get(&version) {
            return Ok(d.clone());
        }
        let d = badge::design(conn, self.issuer, task)?;
        self.designs.insert(version, d.clone());
        Ok(d)
    }

    /// [`Awarding::prepare`] for a checked request whose Task the caller already read.
    fn prepare_for(
        &mut self,
        conn: &mut SqliteConnection,
        task: Task,
        email: Email,
        req: &AwardRequest,
        now: i64,
    ) -> StoreResult<Prepared> {
        let actor = match &self.actor {
            Some(a) => Some((a.clone(), a.require_task(conn, task.id, Role::Reviewer, "award this badge")?)),
            None => None,
        };
        if let Some(prev) = awards::existing(conn, task.id, email.as_str())? {
            return Err(already_awarded(&task, &prev));
        }
        check_authorship(conn, req, &email)?;
        let issuer = self.issuer;
        let art = self.design(conn, &task)?;
        let expires = task.expires_days.map(|d| now + d * 86_400);
        let claim = Claim {
            issued_on: now,
            expires,
            evidence_url: req.evidence_url.as_deref(),
            narrative: req.narrative.as_deref(),
        };
        let baked = badge::bake_new(issuer, &task, art, email.as_str(), &claim)?;
        let fields = crate::ledger::fields_for(
            cairn_chain::RecordKind::Award,
            issuer.base,
            &baked.url,
            &baked.badge_class,
            &baked.identity,
            crate::ledger::evidence_hash(req.evidence_url.as_deref(), &baked.salt),
            now,
        );
        let record = cairn_chain::Record::sign(fields, issuer.signer);
        // The signed credential states the record's id.
        let subject = badge::CredentialClaim {
            public_id: &baked.public_id,
            salt: &baked.salt,
            identity: &baked.identity,
            claim: &claim,
        };
        let index = self.next_index(conn, now)?;
        let credential = badge::sign_credential(issuer, &self.key, &task, &subject, &record.id(), index, now)?;
        Ok(Prepared { task, email, req: req.clone(), expires, issued_on: now, baked, record, credential, actor })
    }

    /// The public base URL awards are issued under.
    pub fn base(&self) -> &str {
        self.issuer.base
    }

    /// Awards the badge of the Task with a hashtag, by the Reader's rules (see
    /// [`Awarding::prepare_by_hashtag_with`] for `allow_foreign_evidence`).
    pub fn award_by_hashtag(
        &mut self,
        conn: &mut SqliteConnection,
        a: &HashtagAward,
        allow_foreign_evidence: bool,
        now: i64,
    ) -> Result<Award, HashtagAwardError> {
        let prepared = self.prepare_by_hashtag_with(conn, a, allow_foreign_evidence, now)?;
        Ok(write_tx(conn, |conn| commit(conn, &prepared, now))?)
    }

    /// Awards a badge, issued at `now`. Refuses a second award of the same Task to the same
    /// address.
    pub fn award(&mut self, conn: &mut SqliteConnection, req: &AwardRequest, now: i64) -> StoreResult<Award> {
        let prepared = self.prepare(conn, req, now)?;
        write_tx(conn, |conn| commit(conn, &prepared, now))
    }
}

/// The request checked by the rules every surface shares (the Reader, bulk awards, the
/// command line and its CSV, the API and its batches): the recipient's address; the name (at
/// most [`NAME_MAX`] characters, one line), the narrative (at most [`NARRATIVE_MAX`], line
/// breaks allowed) and the evidence URL (at most [`EVIDENCE_MAX`], http or https), none with
/// control characters. Returns the address and the request with its texts trimmed.
pub fn checked(req: &AwardRequest) -> StoreResult<(Email, AwardRequest)> {
    let mut errors = FieldErrors::new();
    let email = if req.recipient_email.chars().count() > RECIPIENT_MAX {
        errors.add("recipient", format!("the recipient is at most {RECIPIENT_MAX} characters"));
        None
    } else {
        errors.check("recipient", Email::parse(&req.recipient_email))
    };
    let bound = |label: &'static str, max: usize| Text { label, min: 0, max };
    let name = req
        .recipient_name
        .as_deref()
        .and_then(|n| errors.check("name", bound("name", NAME_MAX).parse_clean(n, false)))
        .filter(|n| !n.is_empty());
    let narrative = req
        .narrative
        .as_deref()
        .and_then(|n| errors.check("narrative", bound("narrative", NARRATIVE_MAX).parse_clean(n, true)))
        .filter(|n| !n.is_empty());
    let evidence = req
        .evidence_url
        .as_deref()
        .and_then(|u| errors.check("evidence", bound("evidence", EVIDENCE_MAX).parse_clean(u, false)))
        .filter(|u| !u.is_empty());
    if let Some(url) = &evidence
        && !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        errors.add("evidence", format!("'{url}' is not a web address (http or https)"));
    }
    match email {
        Some(email) if errors.is_empty() => {
            Ok((email, AwardRequest { recipient_name: name, narrative, evidence_url: evidence, ..req.clone() }))
        }
        _ => Err(StoreError::Invalid(errors)),
    }
}

/// Refuses evidence that Cairn knows to be another learner's writing, and evidence posted
/// elsewhere than on the recipient's own site unless the instructor confirmed it
/// (`allow_foreign_evidence`):
/// - a URL whose first own-site copy came from another learner's feed is theirs: refused;
/// - a harvested post that is a duplicate of another learner's: refused;
/// - a post the recipient's feed delivered from another site ("posted elsewhere"): refused
///   without the confirmation (a post harvested before these rules is classified first);
/// - evidence Cairn never harvested, or harvested for no one as their own: allowed.
fn check_authorship(conn: &mut SqliteConnection, req: &AwardRequest, email: &Email) -> StoreResult<()> {
    let read = |conn: &mut SqliteConnection| -> StoreResult<_> {
        let link = req.link_id.map(|id| links::get_link(conn, id)).transpose()?;
        let claims = match req.evidence_url.as_deref() {
            Some(url) => links::claims(conn, url)?,
            None => Vec::new(),
        };
        Ok((link, claims))
    };
    let (mut link, mut claims) = read(conn)?;
    // Posts harvested before the authorship rules are classified now, if housekeeping has not
    // done it yet.
    let unchecked: Vec<i64> = link
        .iter()
        .filter(|l| l.authorship == Authorship::Unchecked)
        .map(|l| l.id)
        .chain(claims.iter().filter(|c| c.authorship == Authorship::Unchecked).map(|c| c.link_id))
        .collect();
    if !unchecked.is_empty() {
        links::classify_unchecked_of(conn, Some(&unchecked))?;
        (link, claims) = read(conn)?;
    }
    let is_recipient = |c: &links::Claim| {
        req.author_id == Some(c.author_id)
            || (req.author_id.is_none()
                && c.author_email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email.as_str())))
    };
    let shown = req.evidence_url.as_deref().unwrap_or("this post");
    let owner = claims.iter().find(|c| c.authorship == Authorship::Own);
    // Whose the post is can be told when the owner has an address on file, or the award
    // names its learner (the Reader's awards do).
    let owner_known = owner.is_some_and(|o| o.author_email.is_some() || req.author_id.is_some());
    if let Some(o) = owner.filter(|o| !is_recipient(o) && owner_known) {
        return Err(StoreError::Conflict(format!(
            "{shown} was harvested first from {}'s own site: it is their post, and cannot be evidence for another learner's badge.",
            o.author_name
        )));
    }
    let authorship = match &link {
        Some(l) => Some((l.authorship, l.duplicate_of)),
        None if claims.iter().any(|c| is_recipient(c) && c.authorship == Authorship::Own) => {
            Some((Authorship::Own, None))
        }
        None => claims.iter().find(|c| is_recipient(c)).map(|c| (c.authorship, None)),
    };
    let foreign = match authorship {
        Some((Authorship::Own, _)) => false,
        Some((Authorship::Duplicate, first)) if link.is_some() => {
            let first = match first {
                Some(id) => crate::db::learners::public_name_of(conn, id).unwrap_or_else(|_| "another learner".into()),
                None => "another learner".into(),
            };
            return Err(StoreError::Conflict(format!(
                "{shown} is a duplicate of {first}'s post (their feed delivered it first): it cannot be awarded to this learner."
            )));
        }
        Some(_) => true,
        // Someone owns it whose address is not on file: it may or may not be the recipient.
        None => owner.is_some() && !owner_known,
    };
    if foreign && !req.allow_foreign_evidence {
        return Err(StoreError::Conflict(format!(
            "{shown} was posted elsewhere: it is not on the recipient's own site, so Cairn cannot tell that they wrote it. \
             Award it only if you are sure: confirm in the Reader, or give --allow-foreign-evidence \
             (in the API, \"allow_foreign_evidence\": true)."
        )));
    }
    Ok(())
}

/// Stores a prepared award with its chain record, credential and notifications, all or
/// nothing; call it inside a write transaction (as [`award`] does).
pub fn commit(conn: &mut SqliteConnection, p: &Prepared, now: i64) -> StoreResult<Award> {
    let (req, baked) = (&p.req, &p.baked);
    if let Some(prev) = awards::existing(conn, p.task.id, p.email.as_str())? {
        return Err(already_awarded(&p.task, &prev));
    }
    awards::ensure_art(conn, &baked.art.sha256, baked.art.svg.as_bytes(), &baked.art.png, p.issued_on)?;
    let award = awards::insert(
        conn,
        &NewAward {
            public_id: &baked.public_id,
            task_id: p.task.id,
            link_id: req.link_id,
            author_id: req.author_id,
            recipient_email: p.email.as_str(),
            recipient_name: req.recipient_name.as_deref(),
            salt: &baked.salt,
            identity: &baked.identity,
            evidence_url: req.evidence_url.as_deref(),
            narrative: req.narrative.as_deref(),
            issued_on: p.issued_on,
            expires: p.expires,
            awarded_by: req.awarded_by,
            assertion_json: &baked.json,
            art_sha256: &baked.art.sha256,
        },
    )?;
    // The chain record enters the pool with the award: no award without it.
    crate::db::chain::insert_pending(conn, &p.record, Some(award.id), p.issued_on)?;
    badge::store_credential(conn, &award.public_id, &p.credential, now)?;
    // The learner hears of it without the award waiting: queued with it.
    crate::db::outbox::enqueue(conn, award.id, &baked.url, req.evidence_url.as_deref(), true, now)?;
    if let Some((actor, course)) = &p.actor {
        crate::app::audit::record(conn, actor, "award.create", *course, &award.public_id, &p.task.hashtag, now)?;
    }
    crate::metrics::award(p.actor.as_ref().map_or("system", |(a, _)| a.surface.as_str()));
    Ok(award)
}

/// Awards a badge, issued at `now`. Refuses a second award of the same Task to the same address.
pub fn award(conn: &mut SqliteConnection, issuer: &Issuer, req: &AwardRequest, now: i64) -> StoreResult<Award> {
    Awarding::new(conn, issuer, 1)?.award(conn, req, now)
}

/// A harvested post to award, as the Reader gives it.
#[derive(Debug, Clone, Default)]
pub struct LinkAward {
    pub link_id: i64,
    pub task_id: i64,
    pub narrative: Option<String>,
    pub by: Option<i64>,
    /// The instructor confirmed a post posted elsewhere than on the learner's site.
    pub allow_foreign_evidence: bool,
    /// Who awards (see [`Awarding::acting`]).
    pub actor: Option<Actor>,
}

/// Awards the badge of `task_id` for a harvested post, to the post's author; a post posted
/// elsewhere than on their site is refused (see [`award_post`] for the confirmation).
pub fn award_link(
    conn: &mut SqliteConnection,
    issuer: &Issuer,
    link_id: i64,
    task_id: i64,
    narrative: Option<String>,
    by: Option<i64>,
    now: i64,
) -> StoreResult<Award> {
    award_post(
        conn,
        issuer,
        &LinkAward { link_id, task_id, narrative, by, allow_foreign_evidence: false, actor: None },
        now,
    )
}

/// Awards the badge of a Task for a harvested post, to the post's author, as the Reader does.
pub fn award_post(conn: &mut SqliteConnection, issuer: &Issuer, a: &LinkAward, now: i64) -> StoreResult<Award> {
    Awarding::new(conn, issuer, 1)?.acting(a.actor.clone()).award_link(
        conn,
        a.link_id,
        a.task_id,
        a.narrative.clone(),
        a.by,
        a.allow_foreign_evidence,
        now,
    )
}

impl Awarding<'_> {
    /// Awards the badge of `task_id` for a harvested post, to the post's author; a post
    /// posted elsewhere than on their site needs `allow_foreign_evidence` (the Reader's
    /// confirmation), and a duplicate of another learner's post is refused.
    #[allow(clippy::too_many_arguments)]
    pub fn award_link(
        &mut self,
        conn: &mut SqliteConnection,
        link_id: i64,
        task_id: i64,
        narrative: Option<String>,
        by: Option<i64>,
        allow_foreign_evidence: bool,
        now: i64,
    ) -> StoreResult<Award> {
        let a = LinkAward { link_id, task_id, narrative, by, allow_foreign_evidence, actor: None };
        let prepared = self.prepare_link(conn, &a, now)?;
        write_tx(conn, |conn| commit(conn, &prepared, now))
    }

    /// Prepares the award of a harvested post to the post's author (see
    /// [`Awarding::award_link`]); nothing is awarded until [`commit`].
    pub fn prepare_link(&mut self, conn: &mut SqliteConnection, a: &LinkAward, now: i64) -> StoreResult<Prepared> {
        let (url, author_id, name, email) = links::poster(conn, a.link_id)?;
        let email = email.ok_or_else(|| {
            StoreError::Conflict(format!(
                "{name} has no email address on file, so no badge can be issued to them; add one on the Feeds page."
            ))
        })?;
        // Public documents and pages carry the name the learner chose to show.
        let shown = crate::db::learners::public_name_of(conn, author_id)?;
        self.prepare(
            conn,
            &AwardRequest {
                task_id: a.task_id,
                recipient_email: email,
                recipient_name: Some(shown),
                evidence_url: url,
                narrative: a.narrative.clone().filter(|n| !n.trim().is_empty()),
                link_id: Some(a.link_id),
                author_id: Some(author_id),
                awarded_by: a.by,
                allow_foreign_evidence: a.allow_foreign_evidence,
            },
            now,
        )
    }
}

// ---- batches: the Reader's bulk award, `cairn award --csv`, the API's batch ----

/// One award of a batch, as a surface gives it.
#[derive(Debug, Clone)]
pub enum BatchEntry {
    /// A harvested post, to its author: the badge of `task_id`, or of the one Task the post is
    /// tied to. A post posted elsewhere than on the learner's site is confirmed one at a
    /// time, never in a batch.
    Post { link_id: i64, task_id: Option<i64> },
    /// An award given as words (a CSV row, an item of the API's batch), taking evidence
    /// posted elsewhere when `allow_foreign_evidence`.
    Words { award: HashtagAward, allow_foreign_evidence: bool },
}

/// What the awards of a batch share.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// The narrative of each post's award (an award given as words carries its own).
    pub narrative: Option<String>,
    /// The instructor awarding, when one is signed in.
    pub by: Option<i64>,
    /// Who awards (see [`Awarding::acting`]).
    pub actor: Option<Actor>,
}

/// What became of one entry of a batch: the award and its Task, or why it was not made.
pub type BatchOutcome = Result<(Award, Task), HashtagAwardError>;

/// True when an award was not made because of our own failure (the database, the pool, a
/// bug), not a rule: such a failure ends the batch rather than being one entry's outcome.
pub fn is_failure(e: &StoreError) -> bool {
    matches!(e, StoreError::Db(_) | StoreError::Pool(_) | StoreError::Internal(_) | StoreError::Busy(_))
}

impl Awarding<'_> {
    /// Prepares one entry of a batch.
    fn prepare_entry(
        &mut self,
        conn: &mut SqliteConnection,
        entry: &BatchEntry,
        opts: &BatchOptions,
        now: i64,
    ) -> Result<Prepared, HashtagAwardError> {
        match entry {
            BatchEntry::Post { link_id, task_id } => {
                let task_id = match task_id {
                    Some(t) => *t,
                    None => match links::tasks_of_link(conn, *link_id).map_err(HashtagAwardError::Store)?.as_slice() {
                        [only] => only.id,
                        _ => {
                            return Err(HashtagAwardError::Hashtag(
                                "choose a task (it is tied to none or several)".into(),
                            ));
                        }
                    },
                };
                let a = LinkAward {
                    link_id: *link_id,
                    task_id,
                    narrative: opts.narrative.clone(),
                    by: opts.by,
                    allow_foreign_evidence: false,
                    actor: None,
                };
                Ok(self.prepare_link(conn, &a, now)?)
            }
            BatchEntry::Words { award, allow_foreign_evidence } => {
                self.prepare_by_hashtag_with(conn, award, *allow_foreign_evidence, now)
            }
        }
    }
}

/// Prepares entries in order on one connection, sharing what they can read once.
fn prepare_run(
    conn: &mut SqliteConnection,
    issuer: &Issuer,
    entries: &[BatchEntry],
    opts: &BatchOptions,
    now: i64,
) -> Vec<Result<Prepared, HashtagAwardError>> {
    match Awarding::new(conn, issuer, entries.len()).map(|a| a.acting(opts.actor.clone())) {
        Ok(mut awarding) => entries.iter().map(|e| awarding.prepare_entry(conn, e, opts, now)).collect(),
        Err(e) => {
            // The first entry says what went wrong; the batch stops there.
            let said = e.to_string();
            let mut first = Some(HashtagAwardError::Store(e));
            entries
                .iter()
                .map(|_| {
                    Err(first
                        .take()
                        .unwrap_or_else(|| HashtagAwardError::Store(StoreError::Internal(anyhow::anyhow!("{said}")))))
                })
                .collect()
        }
    }
}

/// Checks a batch's entries and makes their documents, outside any write transaction: the
/// signing and image work is spread over up to four threads, each with its own connection
/// from `pool` (the first uses `conn`), while nothing holds the write lock. One outcome per
/// entry, in order.
pub fn prepare_batch(
    pool: &crate::db::DbPool,
    conn: &mut SqliteConnection,
    issuer: &Issuer,
    entries: &[BatchEntry],
    opts: &BatchOptions,
    now: i64,
) -> Vec<Result<Prepared, HashtagAwardError>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
    let chunk = entries.len().div_ceil(threads).max(1);
    let mut chunks = entries.chunks(chunk);
    let first = chunks.next().unwrap_or_default();
    std::thread::scope(|s| {
        let others: Vec<_> = chunks
            .map(|part| {
                s.spawn(move || match pool.get() {
                    Ok(mut c) => prepare_run(&mut c, issuer, part, opts, now),
                    Err(e) => part
                        .iter()
                        .map(|_| Err(HashtagAwardError::Store(StoreError::Internal(anyhow::anyhow!("{e}")))))
                        .collect(),
                })
            })
            .collect();
        let mut out = prepare_run(conn, issuer, first, opts, now);
        for h in others {
            match h.join() {
                Ok(part) => out.extend(part),
                Err(_) => out.push(Err(HashtagAwardError::Store(StoreError::Internal(anyhow::anyhow!(
                    "preparing awards failed"
                ))))),
            }
        }
        out
    })
}

/// Stores a batch's prepared awards in order, inside the caller's write transaction. An
/// entry refused by a rule — when prepared, or only now, such as an award made meanwhile —
/// keeps its refusal and the others go on; a failure of our own ends the whole batch.
pub fn commit_batch(
    conn: &mut SqliteConnection,
    prepared: Vec<Result<Prepared, HashtagAwardError>>,
    now: i64,
) -> StoreResult<Vec<BatchOutcome>> {
    let mut out = Vec::with_capacity(prepared.len());
    for p in prepared {
        let made = p.and_then(|p| Ok((commit(conn, &p, now)?, p.task)));
        match made {
            Err(HashtagAwardError::Store(e)) if is_failure(&e) => return Err(e),
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Awards a batch: [`prepare_batch`], then [`commit_batch`] in one write transaction. The
/// Reader's bulk award, `cairn award --csv` and the API's batch all award through it.
pub fn award_batch(
    pool: &crate::db::DbPool,
    conn: &mut SqliteConnection,
    issuer: &Issuer,
    entries: &[BatchEntry],
    opts: &BatchOptions,
    now: i64,
) -> StoreResult<Vec<BatchOutcome>> {
    let prepared = prepare_batch(pool, conn, issuer, entries, opts, now);
    write_tx(conn, |c| commit_batch(c, prepared, now))
}

/// An award given as words, as on the command line or a CSV row.
#[derive(Debug, Clone, Default)]
pub struct HashtagAward {
    /// The Task's hashtag, such as `#el30-data`.
    pub task: String,
    pub recipient: String,
    /// The evidence URL; empty for none.
    pub evidence: String,
    pub name: Option<String>,
    pub narrative: Option<String>,
}

/// Why an award given by hashtag was not made.
#[derive(Debug, thiserror::Error)]
pub enum HashtagAwardError {
    #[error("{0}")]
    Hashtag(String),
    #[error("no task has the hashtag {0}")]
    NoTask(Hashtag),
    /// The input breaks a rule (said by field, without the "invalid input" prefix).
    #[error("{0}")]
    Invalid(crate::domain::FieldErrors),
    #[error(transparent)]
    Store(StoreError),
}

/// A refusal in words, as the Reader and the command line print it.
pub fn refusal_text(e: &HashtagAwardError) -> String {
    match e {
        HashtagAwardError::Invalid(errors) => StoreError::Invalid(errors.clone()).to_string(),
        e => e.to_string(),
    }
}

impl Prepared {
    /// The Task whose badge is being awarded.
    pub fn task(&self) -> &Task {
        &self.task
    }
}

impl From<StoreError> for HashtagAwardError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(e) => HashtagAwardError::Invalid(e),
            e => HashtagAwardError::Store(e),
        }
    }
}

/// Prepares the award of the badge of the Task with a hashtag, by the Reader's rules (see
/// [`Awarding::prepare`]).
pub fn prepare_by_hashtag(
    conn: &mut SqliteConnection,
    issuer: &Issuer,
    a: &HashtagAward,
    now: i64,
) -> Result<Prepared, HashtagAwardError> {
    Awarding::new(conn, issuer, 1)?.prepare_by_hashtag(conn, a, now)
}

/// Awards the badge of the Task with a hashtag: the command line's award, by the Reader's rules.
pub fn award_by_hashtag(
    conn: &mut SqliteConnection,
    issuer: &Issuer,
    a: &HashtagAward,
    now: i64,
) -> Result<Award, HashtagAwardError> {
    Awarding::new(conn, issuer, 1)?.award_by_hashtag(conn, a, false, now)
}

/// Revokes an award at `now` with a reason; a revocation record enters the chain's pool.
pub fn revoke(
    conn: &mut SqliteConnection,
    issuer: &Issuer,
    public_id: &str,
    reason: &str,
    now: i64,
) -> StoreResult<Award> {
    revoke_as(conn, issuer, None, public_id, reason, now)
}

/// [`revoke`] as `actor`, who needs an editor's role (or above) in a course that includes the
/// award's Task; the revocation is recorded in the audit trail (its reason is not: it may
/// name the learner).
pub fn revoke_as(
    conn: &mut SqliteConnection,
    issuer: &Issuer,
    actor: Option<&Actor>,
    public_id: &str,
    reason: &str,
    now: i64,
) -> StoreResult<Award> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(StoreError::field("reason", "give a reason for the revocation"));
    }
    write_tx(conn, |conn| {
        let a = awards::by_public_id(conn, public_id)?;
        let course = match actor {
            Some(actor) => Some(actor.require_task(conn, a.task_id, Role::Editor, "revoke this award")?),
            None => None,
        };
        if a.is_revoked() {
            return Err(StoreError::Conflict("This award was already revoked.".into()));
        }
        awards::set_revoked(conn, a.id, now, reason)?;
        crate::db::credentials::set_revoked(conn, &a.public_id)?;
        let task = courses::get_task(conn, a.task_id)?;
        let url = ob::assertion_url(issuer.base, &a.public_id);
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
        // The Webmention is sent again so the learner's site sees the page now says revoked.
        crate::db::outbox::enqueue(conn, a.id, &url, a.evidence_url.as_deref(), false, now)?;
        // The learner is told why, when there is an address to tell (a forgotten learner's
        // award keeps none).
        if !a.is_withdrawn() && Email::parse(&a.recipient_email).is_ok() {
            crate::db::outbox::enqueue_revocation(conn, a.id, now)?;
        }
        if let (Some(actor), Some(course)) = (actor, course) {
            crate::app::audit::record(conn, actor, "award.revoke", course, &a.public_id, &task.hashtag, now)?;
        }
        crate::metrics::revocation(actor.map_or("system", |a| a.surface.as_str()));
        awards::by_public_id(conn, public_id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::courses::{self as authoring, TaskForm, TitledForm};

    /// A fresh store with one Task, `#el30-data`, whose badge expires after 30 days.
    fn store() -> (tempfile::TempDir, crate::db::DbPool, i64) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&dir.path().join("cairn.db")).unwrap();
        let mut c = pool.get().unwrap();
        crate::db::institution::ensure(&mut c, "Test University", 0).unwrap();
        let profile = crate::app::institution::InstitutionForm {
            name: "Test University".into(),
            url: "https://test.example.edu/".into(),
            email: "badges@test.example.edu".into(),
            description: String::new(),
        };
        crate::app::institution::update(&mut c, &profile, None, 0).unwrap();
        let course =
            authoring::create_course(&mut c, &TitledForm { title: "C".into(), description: String::new() }, 0).unwrap();
        let module = authoring::create_module(
            &mut c,
            course.id,
            &TitledForm { title: "M".into(), description: String::new() },
            0,
        )
        .unwrap();
        let task = authoring::create_task(
            &mut c,
            module.id,
            &TaskForm {
                title: "Data".into(),
                description: String::new(),
                criteria: "A post.".into(),
                hashtag: "#el30-data".into(),
                expires_days: "30".into(),
            },
            None,
            0,
        )
        .unwrap();
        (dir, pool, task.id)
    }

    /// What an `Issuer` borrows: a raster cache and the store's signing key.
    fn issuing(dir: &tempfile::TempDir) -> (crate::badges::bake::RasterCache, cairn_chain::SigningKey) {
        (crate::badges::bake::RasterCache::default(), crate::ledger::load_key(dir.path()).unwrap())
    }

    #[test]
    fn awards_and_revocations_happen_at_the_time_they_are_given() {
        let (dir, pool, task_id) = store();
        let mut c = pool.get().unwrap();
        let (raster, key) = issuing(&dir);
        let issuer = Issuer { base: "http://127.0.0.1:9", raster: &raster, signer: &key };
        let then = 1_600_000_000;
        let req = HashtagAward {
            task: "#el30-data".into(),
            recipient: "Ada@Example.edu".into(),
            evidence: "https://ada.example.org/post".into(),
            ..Default::default()
        };
        let a = award_by_hashtag(&mut c, &issuer, &req, then).unwrap();
        assert_eq!((a.task_id, a.issued_on, a.expires), (task_id, then, Some(then + 30 * 86_400)));
        assert_eq!(a.recipient_email, "ada@example.edu");
        let doc =
            crate::badges::award::assertion_document(issuer.base, &a, &courses::get_task(&mut c, task_id).unwrap());
        assert_eq!(doc["issuedOn"], "2020-09-13T12:26:40Z");
        // The chain record hashes the evidence with the award's salt: the post's URL alone
        // does not find it.
        let (bytes, _) = crate::db::chain::award_record(&mut c, a.id).unwrap().unwrap();
        let record = cairn_chain::Record::decode(&bytes).unwrap();
        let post = "https://ada.example.org/post";
        assert_eq!(record.fields.evidence_hash, cairn_chain::Hash::of(format!("{post}{}", a.salt).as_bytes()));
        assert_ne!(record.fields.evidence_hash, cairn_chain::Hash::of(post.as_bytes()));

        let again = award_by_hashtag(&mut c, &issuer, &req, then + 60).unwrap_err();
        assert!(
            again.to_string().contains("already has the badge for #el30-data (awarded 13 September 2020)"),
            "{again}"
        );
        let unknown = HashtagAward { task: "#el30-none".into(), ..req.clone() };
        assert_eq!(
            award_by_hashtag(&mut c, &issuer, &unknown, then).unwrap_err().to_string(),
            "no task has the hashtag #el30-none"
        );

        assert!(matches!(revoke(&mut c, &issuer, &a.public_id, "  ", then), Err(StoreError::Invalid(_))));
        let r = revoke(&mut c, &issuer, &a.public_id, "copied", then + 3600).unwrap();
        assert_eq!((r.revoked_at, r.revocation_reason.as_deref()), (Some(then + 3600), Some("copied")));
        let twice = revoke(&mut c, &issuer, &a.public_id, "copied", then + 7200).unwrap_err();
        assert!(matches!(twice, StoreError::Conflict(_)), "{twice}");
    }

    #[test]
    fn a_batch_keeps_each_refusal_in_its_place_and_awards_the_rest_once() {
        let (dir, pool, task_id) = store();
        let mut c = pool.get().unwrap();
        let (raster, key) = issuing(&dir);
        let issuer = Issuer { base: "http://127.0.0.1:9", raster: &raster, signer: &key };
        let words = |task: &str, recipient: &str| BatchEntry::Words {
            award: HashtagAward { task: task.into(), recipient: recipient.into(), ..Default::default() },
            allow_foreign_evidence: false,
        };
        let entries: Vec<BatchEntry> = (0..9)
            .map(|n| words("#el30-data", &format!("learner{n}@example.edu")))
            .chain([
                words("#no-such-task", "ada@example.edu"),
                // The same learner twice in one batch: both are prepared, the second is refused
                // when stored.
                words("#el30-data", "learner0@example.edu"),
                words("#el30-data", "not an address"),
            ])
            .collect();
        let out = award_batch(&pool, &mut c, &issuer, &entries, &BatchOptions::default(), 1_700_000_000).unwrap();
        assert_eq!(out.len(), entries.len());
        for (n, o) in out.iter().take(9).enumerate() {
            let (a, task) = o.as_ref().unwrap();
            assert_eq!((a.recipient_email.as_str(), task.id), (format!("learner{n}@example.edu").as_str(), task_id));
        }
        assert!(matches!(&out[9], Err(HashtagAwardError::NoTask(_))), "{:?}", out[9].as_ref().err());
        let dup = refusal_text(out[10].as_ref().unwrap_err());
        assert!(dup.contains("already has the badge"), "{dup}");
        assert!(matches!(&out[11], Err(HashtagAwardError::Invalid(_))));
        assert_eq!(awards::count(&mut c).unwrap(), 9);
    }

    #[test]
    fn awards_prepared_together_share_a_run_of_status_indexes_that_no_one_else_gets() {
        let (dir, pool, _) = store();
        let mut c = pool.get().unwrap();
        let (raster, key) = issuing(&dir);
        let issuer = Issuer { base: "http://127.0.0.1:9", raster: &raster, signer: &key };
        let req = |n: usize| HashtagAward {
            task: "#el30-data".into(),
            recipient: format!("learner{n}@example.edu"),
            ..Default::default()
        };
        // Two batches interleave, as two threads of one API batch do; a lone award comes between.
        let mut a = Awarding::new(&mut c, &issuer, 3).unwrap();
        let mut b = Awarding::new(&mut c, &issuer, 3).unwrap();
        let mut indexes = Vec::new();
        for n in 0..3 {
            indexes.push(a.prepare_by_hashtag(&mut c, &req(n), 1).unwrap().credential.status_index);
            indexes.push(b.prepare_by_hashtag(&mut c, &req(10 + n), 1).unwrap().credential.status_index);
        }
        indexes.push(prepare_by_hashtag(&mut c, &issuer, &req(20), 1).unwrap().credential.status_index);
        // More than expected: another run.
        indexes.push(a.prepare_by_hashtag(&mut c, &req(3), 1).unwrap().credential.status_index);
        let mut distinct = indexes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), indexes.len(), "no index twice: {indexes:?}");
        assert_eq!(&indexes[..6], &[0, 3, 1, 4, 2, 5].map(|i| indexes[0] + i), "each batch its own run");
        assert_eq!(indexes[6], indexes[0] + 6, "the lone award takes the next one");
        assert!(indexes[7] > indexes[6]);
        // A refused award takes no index; the design and Task were read once and are reused.
        let prepared = a.prepare_by_hashtag(&mut c, &req(4), 1).unwrap();
        let again = a.prepare_by_hashtag(&mut c, &HashtagAward { task: "#el30-none".into(), ..req(5) }, 1);
        assert!(matches!(again, Err(HashtagAwardError::NoTask(_))));
        assert_eq!(a.designs.len(), 1);
        assert!(Arc::ptr_eq(&prepared.baked.art, a.designs.values().next().unwrap()));
    }
}
