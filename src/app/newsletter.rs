//! The course newsletter: anyone subscribes with a confirmation link (no account, no feed);
//! once a day, at the configured hour in the course's time zone, an issue gathers what the
//! course's learners wrote since the last one, grouped by Task, with the current module's Tasks,
//! the badges awarded and the instructor's note. An issue is built once per course and local
//! date and queued as one delivery per confirmed reader; the sender works through the queue
//! at the configured pace, so a crash resumes where it stopped without sending a copy twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use chrono::{Datelike as _, TimeZone as _, Timelike as _};
use diesel::SqliteConnection;
use serde::{Deserialize, Serialize};

use crate::config::NewsletterSettings;
use crate::db::newsletter::{self as store, Asked, DeliveryStatus, Imported, IssueStatus, NewIssue, Outcome};
use crate::db::{DbPool, StoreError, StoreResult};
use crate::domain::{Email, FieldErrors};
use crate::email::{ListHeaders, MailError, Mailer};
use crate::tokens::{random_token, token_hash};

/// How long a confirmation link works.
pub const CONFIRM_SECS: i64 = 48 * 3600;
/// Most posts one issue lists; the rest wait for the archive and the Reader.
pub const MAX_POSTS: i64 = 200;
/// Characters of a post's text excerpt.
pub const EXCERPT_CHARS: usize = 280;
/// Longest instructor's note.
pub const MAX_NOTE_CHARS: usize = 5000;
/// How long a sender holds a copy it is sending; longer than [`SEND_TIMEOUT`], so a lease never
/// runs out while its send may still complete.
pub const LEASE_SECS: i64 = 60;
/// The longest one copy's SMTP exchange may take before it is abandoned (and retried).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(40);
/// Copies sent at once, over the SMTP connection pool: as many as the pool keeps
/// connections (lettre's default), so no copy waits on a fresh connection. A copy spends most
/// of its time waiting on the mail server, so this, not the CPU, bounds the sending rate.
pub const CONCURRENCY: usize = 10;
/// Copies one pass claims.
const BATCH: i64 = 500;
/// Most copies one claim takes (fewer when the pace is slow, so the lease outlasts the wait).
const CLAIM_MAX: usize = 200;
/// Most outcomes recorded in one transaction.
const RECORD_BATCH: usize = 200;
/// How long the first outcome of a batch waits for others before the batch is recorded: the
/// copies a crash could send twice are those sent in this window.
const RECORD_LINGER: Duration = Duration::from_millis(50);

/// Why a newsletter operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum NewsletterError {
    #[error("{0}")]
    Invalid(FieldErrors),
    /// The address has had its confirmation mails for the day.
    #[error(
        "Cairn has already sent {limit} confirmation email(s) to this address today; check your inbox (and spam \
         folder), or try again in about {} hour(s)", (*.wait as u64).div_ceil(3600)
    )]
    MailLimit { limit: u32, wait: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for NewsletterError {
    fn from(e: diesel::result::Error) -> Self {
        NewsletterError::Store(e.into())
    }
}

// ---- what an issue holds ----

/// An issue, as stored (JSON) and rendered for the mail, the preview and the archive alike.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Content {
    pub course_title: String,
    pub course_slug: String,
    /// The course's local date, `YYYY-MM-DD`.
    pub date: String,
    pub note: String,
    pub groups: Vec<Group>,
    pub module: Option<ModuleTasks>,
    pub badges: Vec<BadgeCount>,
}

/// Posts tied to one Task, or (`task` none) the learners' other posts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub task: Option<TaskRef>,
    pub posts: Vec<PostItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRef {
    pub title: String,
    /// Without `#`: the Task's page is `/tasks/{slug}`.
    pub slug: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostItem {
    pub link_id: i64,
    pub author: String,
    pub title: String,
    /// Plain text.
    pub excerpt: String,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleTasks {
    pub title: String,
    pub tasks: Vec<TaskRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BadgeCount {
    pub title: String,
    pub count: i64,
    /// The recipients' public names, for those whose choice of public name gives one.
    #[serde(default)]
    pub names: Vec<String>,
}

impl Content {
    /// Posts in all groups.
    pub fn post_count(&self) -> usize {
        self.groups.iter().map(|g| g.posts.len()).sum()
    }

    /// The addresses of the posts it includes, once each.
    pub fn post_urls(&self) -> Vec<String> {
        let mut urls: Vec<String> =
            self.groups.iter().flat_map(|g| g.posts.iter().filter_map(|p| p.url.clone())).collect();
        urls.sort();
        urls.dedup();
        urls
    }

    /// Nothing new: no post, no badge and no note.
    pub fn is_empty(&self) -> bool {
        self.post_count() == 0 && self.badges.is_empty() && self.note.trim().is_empty()
    }

    pub fn subject(&self) -> String {
        format!("{} — {}", self.course_title, self.date)
    }
}

/// The text of sanitised HTML (harvested summaries are sanitised when stored), whitespace
/// collapsed and cut at `max` characters on a word boundary.
pub fn excerpt(html: &str, max: usize) -> String {
    let mut text = String::with_capacity(html.len().min(4 * max));
    let mut in_tag = false;
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        if text.len() > 8 * max {
            break;
        }
        let step = c.len_utf8();
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            '&' if !in_tag => {
                let end = rest[..rest.len().min(12)].find(';');
                if let Some(decoded) = end.and_then(|e| entity(&rest[1..e])) {
                    text.push(decoded);
                    rest = &rest[end.unwrap_or(0) + 1..];
                    continue;
                }
                text.push('&');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
        rest = &rest[step..];
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = String::new();
    for w in words {
        if out.chars().count() + w.chars().count() + 1 > max {
            out.push('…');
            return out;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let n = name.strip_prefix('#')?;
            let code = match n.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => n.parse().ok()?,
            };
            char::from_u32(code).filter(|c| !c.is_control() || c.is_whitespace())
        }
    }
}

/// What the next issue of a course would hold if built at `now` for `date`, and the window of
/// harvest times it covers.
pub fn gather(conn: &mut SqliteConnection, course_id: i64, date: &str, now: i64) -> StoreResult<(Content, i64)> {
    let settings = store::settings(conn, course_id)?;
    let (slug, title) = store::course_names(conn, course_id)?;
    // The first issue covers the day before it.
    let since = store::last_until(conn, course_id)?.unwrap_or(now - 24 * 3600);
    let tasks = store::course_tasks(conn, course_id)?;
    let posts = store::posts_between(conn, course_id, since, now, MAX_POSTS)?;
    let mut groups: Vec<Group> = Vec::new();
    for task in &tasks {
        let of_task: Vec<PostItem> =
            posts.iter().filter(|p| p.task_ids.first() == Some(&task.id)).map(post_item).collect();
        if !of_task.is_empty() && !groups.iter().any(|g| g.task.as_ref().is_some_and(|t| t.slug == task.slug())) {
            groups.push(Group { task: Some(task_ref(task)), posts: of_task });
        }
    }
    let untied: Vec<PostItem> = posts
        .iter()
        .filter(|p| p.task_ids.first().is_none_or(|t| !tasks.iter().any(|k| k.id == *t)))
        .map(post_item)
        .collect();
    if !untied.is_empty() {
        groups.push(Group { task: None, posts: untied });
    }
    let module = store::current_module(conn, course_id)?
        .map(|(title, tasks)| ModuleTasks { title, tasks: tasks.iter().map(task_ref).collect() });
    let badges = store::badge_counts(conn, course_id, since, now)?
        .into_iter()
        .map(|t| BadgeCount { title: t.title, count: t.count, names: t.names })
        .collect();
    let content = Content {
        course_title: title,
        course_slug: slug,
        date: date.to_string(),
        note: settings.note.trim().to_string(),
        groups,
        module,
        badges,
    };
    Ok((content, since))
}

fn task_ref(t: &crate::db::courses::Task) -> TaskRef {
    TaskRef { title: t.title.clone(), slug: t.slug().to_string() }
}

fn post_item(p: &store::Post) -> PostItem {
    PostItem {
        link_id: p.link_id,
        author: p.author.clone(),
        title: if p.title.trim().is_empty() { "(untitled)".into() } else { p.title.clone() },
        excerpt: excerpt(&p.summary_html, EXCERPT_CHARS),
        url: p.url.clone().filter(|u| u.starts_with("https://") || u.starts_with("http://")),
    }
}

/// What building a day's issue led to.
#[derive(Debug)]
pub enum Built {
    /// Built now and queued to every confirmed reader.
    Queued { issue: store::Issue, readers: i64 },
    /// Nothing new and no note: nothing is sent.
    Empty,
    /// The instructor skipped the day.
    Skipped,
    /// The day already had its issue (sent, empty or skipped); nothing was built again.
    Exists(store::Issue),
}

/// Builds the course's issue for a local date, once: a second call for the same date (by the
/// scheduler, the command line or "send now") finds it and builds nothing. A sent issue queues,
/// in the same transaction, one Webmention from its archive page (under `base`) to each post
/// it includes, unless the instructor turned them off.
pub fn build_issue(
    conn: &mut SqliteConnection,
    course_id: i64,
    date: &str,
    base: &str,
    now: i64,
) -> StoreResult<Built> {
    if let Some(existing) = store::issue_on(conn, course_id, date)? {
        return Ok(Built::Exists(existing));
    }
    let settings = store::settings(conn, course_id)?;
    let (content, since) = gather(conn, course_id, date, now)?;
    let skipped = settings.skip_date.as_deref() == Some(date);
    let status = if skipped {
        IssueStatus::Skipped
    } else if content.is_empty() {
        IssueStatus::Empty
    } else {
        IssueStatus::Sent
    };
    let json = serde_json::to_string(&content).map_err(|e| StoreError::Internal(e.into()))?;
    let new = NewIssue {
        course_id,
        date,
        status,
        since,
        until: now,
        content: if status == IssueStatus::Sent { &json } else { "" },
        posts: content.post_count() as i64,
        takes_note: status == IssueStatus::Sent && !content.note.is_empty(),
    };
    let mentions = if settings.webmentions { content.post_urls() } else { Vec::new() };
    let source = archive_url(base, &content);
    let inserted = crate::db::write_tx(conn, |c| {
        let issue = store::insert_issue(c, &new, now)?;
        if let Some(i) = issue.as_ref().filter(|i| i.status == IssueStatus::Sent) {
            crate::db::outbox::enqueue_newsletter(c, i.id, &source, &mentions, now)?;
        }
        Ok::<_, StoreError>(issue)
    })?;
    let Some(issue) = inserted else {
        return store::issue_on(conn, course_id, date)?.map(Built::Exists).ok_or(StoreError::NotFound("issue"));
    };
    Ok(match status {
        IssueStatus::Skipped => Built::Skipped,
        IssueStatus::Empty => Built::Empty,
        IssueStatus::Sent => {
            let readers = store::delivery_counts(conn, issue.id)?.1;
            tracing::info!(course = course_id, date, readers, posts = new.posts, "newsletter issue queued");
            Built::Queued { issue, readers }
        }
    })
}

/// The issue a course's archive shows for a date (sent issues only).
pub fn archived(conn: &mut SqliteConnection, slug: &str, date: &str) -> StoreResult<(store::Issue, Content)> {
    let course = crate::db::courses::get_course_by_slug(conn, slug)?;
    let issue = store::issue_on(conn, course.id, date)?
        .filter(|i| i.status == IssueStatus::Sent)
        .ok_or(StoreError::NotFound("issue"))?;
    let content = parse_content(&issue)?;
    Ok((issue, content))
}

pub fn parse_content(issue: &store::Issue) -> StoreResult<Content> {
    serde_json::from_str(&issue.content)
        .map_err(|e| StoreError::Internal(anyhow::Error::new(e).context("reading a stored newsletter issue")))
}

// ---- time ----

/// A course's time zone by IANA name.
pub fn parse_zone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.trim().parse::<chrono_tz::Tz>().map_err(|_| format!("'{}' is not a time zone like Europe/Paris", name.trim()))
}

/// The local date (`YYYY-MM-DD`) and hour at `now` in `zone` (UTC when the name is unknown).
pub fn local_day(zone: &str, now: i64) -> (String, u32) {
    let tz = parse_zone(zone).unwrap_or(chrono_tz::UTC);
    let utc = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default().naive_utc();
    let t = tz.from_utc_datetime(&utc);
    (format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day()), t.hour())
}

/// A date as typed (`YYYY-MM-DD`), checked.
pub fn parse_date(raw: &str) -> Result<String, String> {
    chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| format!("'{}' is not a date like 2026-12-01", raw.trim()))
}

// ---- readers ----

/// What subscribing needs besides the request.
pub struct Subscribing<'a> {
    pub pool: &'a DbPool,
    /// Confirmation mails one address may get in a day (shared with `/join`).
    pub mails_per_day: u32,
}

/// The email that asks a reader to confirm.
#[derive(Template)]
#[template(path = "mail/newsletter_confirm.txt")]
struct ConfirmText<'a> {
    course: &'a str,
    base: &'a str,
    confirm_url: &'a str,
}

/// Checks an address and name typed into a subscribe form.
pub fn check_reader(email: &str, name: &str) -> Result<(Email, String), FieldErrors> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(email));
    let name: String = name.trim().chars().filter(|c| !c.is_control()).collect();
    if name.chars().count() > 100 {
        errors.add("name", "at most 100 characters");
    }
    match email {
        Some(e) if errors.is_empty() => Ok((e, name)),
        _ => Err(errors),
    }
}

/// Asks a course's newsletter for `email`: a pending reader and, in the same transaction, a
/// confirmation mail queued in the outbox, within the per-address mail limit `/join` also
/// counts against. The notifier writes and sends the mail ([`confirmation_mail`]), retrying
/// while the mail server is away, so neither an outage nor a restart loses it; wake it after.
/// An address already reading gets no mail, and the caller cannot tell (the answer is the same).
pub async fn subscribe(
    ctx: &Subscribing<'_>,
    course_id: i64,
    email: &Email,
    name: &str,
    now: i64,
) -> Result<(), NewsletterError> {
    let (addr, who, limit) = (email.to_string(), name.to_string(), ctx.mails_per_day);
    let asked = crate::db::run(ctx.pool, move |c| {
        crate::db::write_tx(c, |c| {
            if let Err(wait) = crate::db::feeds::reserve_join_mail(c, &addr, limit, now)? {
                return Ok(Err(wait));
            }
            let asked = store::ask(c, course_id, &addr, &who, now + CONFIRM_SECS, now)?;
            if let Asked::Pending(id) = asked {
                crate::db::outbox::enqueue_confirmation(c, id, now)?;
            }
            Ok(Ok(()))
        })
    })
    .await?;
    asked.map_err(|wait| NewsletterError::MailLimit { limit, wait })
}

/// The confirmation mail of a reader still waiting at `now`, with a new link (valid for
/// [`CONFIRM_SECS`]) whose token exists only in the mail: the store keeps its hash. `None`
/// when the reader no longer waits. A mail sent again replaces the link of the one before.
pub fn confirmation_mail(
    conn: &mut SqliteConnection,
    subscriber_id: i64,
    base: &str,
    now: i64,
) -> StoreResult<Option<crate::email::Email>> {
    let token = random_token();
    let Some(reader) = store::renew_confirmation(conn, subscriber_id, &token_hash(&token), now + CONFIRM_SECS, now)?
    else {
        return Ok(None);
    };
    let course = store::course_names(conn, reader.course_id)?.1;
    let confirm_url = format!("{base}/newsletter/confirm/{token}");
    let text = ConfirmText { course: &course, base, confirm_url: &confirm_url }
        .render()
        .map_err(|e| StoreError::Internal(anyhow::Error::new(e).context("rendering the confirmation email")))?;
    Ok(Some(crate::email::Email {
        to: reader.email,
        subject: format!("Confirm your subscription to {course}"),
        text,
        ..Default::default()
    }))
}

/// Confirms the reader whose emailed token is `token`; the course's slug and title when it worked.
pub fn confirm(conn: &mut SqliteConnection, token: &str, now: i64) -> StoreResult<Option<(String, String)>> {
    match store::confirm(conn, &token_hash(token), now)? {
        Some(s) => Ok(Some(store::course_names(conn, s.course_id)?)),
        None => Ok(None),
    }
}

/// The unsubscribe token of a reader: their id and a keyed hash of it, so that links work
/// without storing a token per reader and cannot be guessed for another reader.
pub fn unsubscribe_token(secret: &str, subscriber_id: i64) -> String {
    let mac = token_hash(&format!("{secret}:unsubscribe:{subscriber_id}"));
    format!("{subscriber_id}-{}", &mac[..32])
}

/// The reader an unsubscribe token names, when it is genuine.
pub fn token_reader(secret: &str, token: &str) -> Option<i64> {
    let (id, _) = token.split_once('-')?;
    let id: i64 = id.parse().ok()?;
    let expected = unsubscribe_token(secret, id);
    // Equal length by construction; compare without an early exit.
    (expected.len() == token.len() && expected.bytes().zip(token.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0)
        .then_some(id)
}

/// Takes the reader named by an unsubscribe token off the list: the course's title when the
/// token is genuine (also when they had already left).
pub fn unsubscribe(conn: &mut SqliteConnection, token: &str, now: i64) -> StoreResult<Option<String>> {
    let secret = store::secret(conn)?;
    let Some(id) = token_reader(&secret, token) else { return Ok(None) };
    let Ok(reader) = store::subscriber(conn, id) else { return Ok(None) };
    store::unsubscribe(conn, id, now)?;
    tracing::info!(subscriber = id, "newsletter reader unsubscribed");
    Ok(Some(store::course_names(conn, reader.course_id)?.1))
}

/// Records that the reader `subscriber_id` of a course complained about the newsletter (marked
/// it as spam): they are taken off the list, and the complaint is listed on the instructor's
/// page. True when recorded now, false when it already was; `NotFound` when the course has no
/// such reader.
pub fn complain(
    conn: &mut SqliteConnection,
    course_id: i64,
    subscriber_id: i64,
    source: store::ComplaintSource,
    now: i64,
) -> StoreResult<bool> {
    let reader = store::subscriber(conn, subscriber_id)?;
    if reader.course_id != course_id {
        return Err(StoreError::NotFound("reader"));
    }
    let recorded = store::record_complaint(conn, reader.id, source, now)?;
    if recorded {
        tracing::info!(subscriber = reader.id, course = course_id, %source, "newsletter complaint recorded");
    }
    Ok(recorded)
}

/// [`complain`] for the reader with address `email`.
pub fn complain_by_email(
    conn: &mut SqliteConnection,
    course_id: i64,
    email: &Email,
    source: store::ComplaintSource,
    now: i64,
) -> StoreResult<bool> {
    let reader = store::subscriber_by_email(conn, course_id, email.as_str())?;
    complain(conn, course_id, reader.id, source, now)
}

/// One row of an import and how it went.
#[derive(Debug)]
pub struct ImportRow {
    /// 1-based line of the file.
    pub line: usize,
    pub email: String,
    pub outcome: Result<Imported, String>,
}

/// Adds already-consented readers from CSV (`email,name`; a header row is allowed), each row
/// on its own: a bad row is reported and the others are still added.
pub fn import_csv(
    conn: &mut SqliteConnection,
    course_id: i64,
    reader: impl std::io::Read,
    now: i64,
) -> StoreResult<Vec<ImportRow>> {
    let mut rows = Vec::new();
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(reader);
    for (i, record) in csv.records().enumerate() {
        let line = i + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                rows.push(ImportRow { line, email: String::new(), outcome: Err(format!("unreadable row: {e}")) });
                continue;
            }
        };
        let email = record.get(0).unwrap_or("").to_string();
        let name = record.get(1).unwrap_or("");
        if line == 1 && email.eq_ignore_ascii_case("email") {
            continue;
        }
        let outcome = match check_reader(&email, name) {
            Ok((e, n)) => store::import(conn, course_id, e.as_str(), &n, now).map_err(|e| e.to_string()),
            Err(errors) => Err(errors.to_string()),
        };
        rows.push(ImportRow { line, email, outcome });
    }
    Ok(rows)
}

// ---- mail ----

/// Everything a rendering of an issue needs beside its content.
pub struct Links<'a> {
    pub base: &'a str,
    /// The issue's archive page.
    pub archive_url: &'a str,
    pub unsubscribe_url: &'a str,
}

#[derive(Template)]
#[template(path = "mail/newsletter.txt")]
pub struct IssueText<'a> {
    pub c: &'a Content,
    pub l: &'a Links<'a>,
}

#[derive(Template)]
#[template(path = "mail/newsletter.html")]
pub struct IssueHtml<'a> {
    pub c: &'a Content,
    pub l: &'a Links<'a>,
}

/// The archive page of an issue.
pub fn archive_url(base: &str, content: &Content) -> String {
    format!("{base}/courses/{}/newsletter/{}", content.course_slug, content.date)
}

/// The message of an issue to one reader: subject, text and HTML bodies.
pub fn render_mail(content: &Content, links: &Links<'_>) -> Result<(String, String, String), askama::Error> {
    let text = IssueText { c: content, l: links }.render()?;
    let html = IssueHtml { c: content, l: links }.render()?;
    Ok((content.subject(), text, html))
}

/// A reader's unsubscribe link.
pub fn unsubscribe_url(base: &str, token: &str) -> String {
    format!("{base}/newsletter/unsubscribe/{token}")
}

/// An issue's message rendered once for all its readers. Copies differ only in the reader's
/// unsubscribe token, so the templates run once per issue and each copy is the rendering cut
/// where the token goes and joined with it: the same bytes [`render_mail`] makes for that
/// reader, for a fraction of the work.
pub struct Rendered {
    subject: String,
    text: Vec<String>,
    html: Vec<String>,
}

impl Rendered {
    pub fn new(content: &Content, base: &str) -> Result<Rendered, askama::Error> {
        // A fresh random mark cannot occur in the issue, and its characters (like a token's)
        // are left alone by HTML escaping.
        let mark = format!("t{}", random_token());
        let unsubscribe = unsubscribe_url(base, &mark);
        let archive = archive_url(base, content);
        let links = Links { base, archive_url: &archive, unsubscribe_url: &unsubscribe };
        let (subject, text, html) = render_mail(content, &links)?;
        let cut = |body: &str| body.split(mark.as_str()).map(str::to_string).collect();
        Ok(Rendered { subject, text: cut(&text), html: cut(&html) })
    }

    /// Subject, text and HTML bodies of the copy whose unsubscribe token is `token`.
    pub fn copy(&self, token: &str) -> (String, String, String) {
        (self.subject.clone(), self.text.join(token), self.html.join(token))
    }
}

/// The list headers of an issue to one reader: `List-Id`, `List-Unsubscribe` (the https link
/// and a mailto), `List-Unsubscribe-Post` for one-click (RFC 8058), and a Message-ID that is
/// the same if the copy is ever sent again.
pub fn list_headers(base: &str, content: &Content, unsubscribe_url: &str, issue_id: i64, reader: i64) -> ListHeaders {
    let host = url::Url::parse(base).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or("localhost".into());
    let list_id = format!("{}.newsletter.{host}", content.course_slug);
    ListHeaders {
        headers: vec![
            ("List-Id", format!("\"{}\" <{list_id}>", content.course_title.replace(['"', '\\', '\r', '\n'], ""))),
            (
                "List-Unsubscribe",
                format!("<{unsubscribe_url}>, <mailto:unsubscribe@{host}?subject=unsubscribe%20{list_id}>"),
            ),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
            ("List-Archive", format!("<{base}/courses/{}/newsletter>", content.course_slug)),
        ],
        message_id: Some(format!("<newsletter-{issue_id}-{reader}@{host}>")),
    }
}

// ---- the sender ----

/// Builds issues on schedule and sends them. Cheap to clone.
#[derive(Clone)]
pub struct Newsletter {
    pool: DbPool,
    mailer: Mailer,
    base: String,
    settings: NewsletterSettings,
    /// When the next copy may start, to keep to `max_per_minute`.
    pace: Arc<tokio::sync::Mutex<tokio::time::Instant>>,
    /// Copies in flight, shared by every pass of this process (the job's and "send now"), so
    /// that together they hold at most [`CONCURRENCY`] SMTP exchanges.
    slots: Arc<tokio::sync::Semaphore>,
    /// Wakes the sender (an issue was queued).
    pub wake: Arc<tokio::sync::Notify>,
}

impl Newsletter {
    pub fn new(pool: DbPool, mailer: Mailer, base: String, settings: NewsletterSettings) -> Newsletter {
        Newsletter {
            pool,
            mailer,
            base,
            settings,
            pace: Arc::new(tokio::sync::Mutex::new(tokio::time::Instant::now())),
            slots: Arc::new(tokio::sync::Semaphore::new(CONCURRENCY)),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Builds the day's issue of every course whose local hour has reached `[newsletter] hour`
    /// and that has none for its local date yet.
    pub async fn schedule(&self, now: i64) -> StoreResult<usize> {
        let (hour, base) = (self.settings.hour, self.base.clone());
        let built = crate::db::run(&self.pool, move |c| {
            let mut n = 0;
            for (course, zone) in store::courses_with_readers(c)? {
                let (date, local_hour) = local_day(&zone, now);
                if local_hour < hour || store::issue_on(c, course, &date)?.is_some() {
                    continue;
                }
                if matches!(build_issue(c, course, &date, &base, now)?, Built::Queued { .. }) {
                    n += 1;
                }
            }
            Ok(n)
        })
        .await?;
        Ok(built)
    }

    /// One pass for the job runner: schedule, then send what is due.
    pub async fn pass(&self) -> anyhow::Result<crate::jobs::Pass> {
        if self.settings.enabled {
            self.schedule(crate::db::now()).await?;
        }
        let sent = self.deliver_due().await?;
        Ok(if sent > 0 { crate::jobs::Pass::More } else { crate::jobs::Pass::Idle })
    }

    /// Sends the copies that are due, up to [`CONCURRENCY`] at once and at most
    /// `max_per_minute`; returns how many were attempted. Each issue is rendered once for
    /// the pass, and outcomes are recorded in batches ([`record`]).
    pub async fn deliver_due(&self) -> StoreResult<usize> {
        let now = crate::db::now();
        let due = crate::db::run(&self.pool, move |c| store::due(c, now, BATCH)).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut issues: Vec<i64> = due.iter().map(|d| d.issue_id).collect();
        issues.sort_unstable();
        issues.dedup();
        let base = self.base.clone();
        let (secret, issues) = crate::db::run(&self.pool, move |c| {
            let secret = store::secret(c)?;
            let mut map = HashMap::new();
            for id in issues {
                let content = parse_content(&store::issue(c, id)?)?;
                let rendered = Rendered::new(&content, &base).map_err(|e| e.to_string());
                map.insert(id, (content, rendered));
            }
            Ok((secret, map))
        })
        .await?;
        let (secret, issues) = (Arc::new(secret), Arc::new(issues));
        let (outcomes, recorded) = tokio::sync::mpsc::unbounded_channel();
        let recorder = tokio::spawn(record(self.pool.clone(), recorded));
        let mut set = tokio::task::JoinSet::new();
        let mut n = 0;
        // Claimed a few at a time, just before they are sent: a claim's lease must outlast
        // the wait its copies have for their turn.
        let chunk = (self.settings.max_per_minute as usize / 10).clamp(1, CLAIM_MAX);
        let mut due = due.into_iter().peekable();
        while due.peek().is_some() {
            let batch: Vec<store::Due> = due.by_ref().take(chunk).collect();
            let ids: Vec<i64> = batch.iter().map(|d| d.id).collect();
            let at = crate::db::now();
            let claimed = crate::db::run(&self.pool, move |c| store::claim(c, &ids, at, LEASE_SECS)).await?;
            for copy in batch.into_iter().filter(|d| claimed.contains(&d.id)) {
                n += 1;
                self.wait_turn().await;
                let permit = self.slots.clone().acquire_owned().await.map_err(|e| StoreError::Internal(e.into()))?;
                let (me, secret, issues, outcomes) = (self.clone(), secret.clone(), issues.clone(), outcomes.clone());
                set.spawn(async move {
                    let outcome = match issues.get(&copy.issue_id) {
                        Some((content, Ok(rendered))) => me.send_copy(&copy, content, rendered, &secret).await,
                        Some((_, Err(e))) => {
                            Outcome::Retry { status: DeliveryStatus::Queued, error: e.clone(), next_attempt_at: 0 }
                        }
                        None => Outcome::Bounced("the issue is missing".into()),
                    };
                    drop(permit);
                    let (attempts, now) = (copy.attempts + 1, crate::db::now());
                    let outcome = match outcome {
                        Outcome::Retry { error, .. } => {
                            let (status, next) =
                                crate::notify::outbox::retry_schedule(attempts, None, copy.created_at, now);
                            let status = if status == crate::db::outbox::Status::GaveUp {
                                DeliveryStatus::GaveUp
                            } else {
                                DeliveryStatus::Queued
                            };
                            Outcome::Retry { status, error, next_attempt_at: next }
                        }
                        o => o,
                    };
                    // The recorder outlives every sending task of the pass.
                    let _ = outcomes.send((copy.id, attempts, outcome));
                });
            }
        }
        drop(outcomes);
        while let Some(done) = set.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a newsletter send task failed");
            }
        }
        if let Err(e) = recorder.await {
            tracing::error!(error = %e, "the newsletter recorder failed");
        }
        Ok(n)
    }

    /// Waits until the pace allows another copy.
    async fn wait_turn(&self) {
        let gap = Duration::from_secs(60) / self.settings.max_per_minute.max(1);
        let mut next = self.pace.lock().await;
        let now = tokio::time::Instant::now();
        if *next > now {
            tokio::time::sleep_until(*next).await;
        }
        *next = (*next).max(now) + gap;
    }

    async fn send_copy(&self, copy: &store::Due, content: &Content, rendered: &Rendered, secret: &str) -> Outcome {
        let token = unsubscribe_token(secret, copy.subscriber_id);
        let (subject, text, html) = rendered.copy(&token);
        let headers =
            list_headers(&self.base, content, &unsubscribe_url(&self.base, &token), copy.issue_id, copy.subscriber_id);
        let mail = crate::email::Email {
            to: copy.email.clone(),
            subject,
            text,
            html: Some(html),
            attachments: vec![],
            inline: vec![],
        };
        match tokio::time::timeout(SEND_TIMEOUT, self.mailer.send_list(mail, &headers)).await {
            Ok(Ok(())) => Outcome::Sent,
            Ok(Err(e @ (MailError::Rejected(_) | MailError::Address(_)))) => Outcome::Bounced(e.to_string()),
            Ok(Err(e)) => Outcome::Retry { status: DeliveryStatus::Queued, error: e.to_string(), next_attempt_at: 0 },
            Err(_) => Outcome::Retry { status: DeliveryStatus::Queued, error: "timed out".into(), next_attempt_at: 0 },
        }
    }

    /// Builds (once) and sends the course's issue for a local date now, as the scheduler
    /// would, then sends every copy that is due; for the command line and "send now".
    pub async fn send_now(&self, course_id: i64, date: &str, now: i64) -> StoreResult<Built> {
        let (date, base) = (date.to_string(), self.base.clone());
        let built = crate::db::run(&self.pool, move |c| build_issue(c, course_id, &date, &base, now)).await?;
        while self.deliver_due().await? > 0 {}
        Ok(built)
    }
}

/// Records the outcomes of a pass's copies as they come, in batches: what arrives within
/// [`RECORD_LINGER`] of the first outcome (at most [`RECORD_BATCH`]) is written in one short
/// transaction. A batch that cannot be written is tried again; if it still fails, its copies
/// stay leased and are sent again when the lease runs out.
async fn record(pool: DbPool, mut outcomes: tokio::sync::mpsc::UnboundedReceiver<(i64, i64, Outcome)>) {
    while let Some(first) = outcomes.recv().await {
        let mut batch = vec![first];
        let linger = tokio::time::sleep(RECORD_LINGER);
        tokio::pin!(linger);
        while batch.len() < RECORD_BATCH {
            tokio::select! {
                next = outcomes.recv() => match next {
                    Some(o) => batch.push(o),
                    None => break,
                },
                () = &mut linger => break,
            }
        }
        for attempt in 1..=3 {
            let (rows, now) = (batch.clone(), crate::db::now());
            match crate::db::run(&pool, move |c| store::settle_many(c, rows, now)).await {
                Ok(()) => break,
                Err(e) => tracing::error!(
                    error = format!("{:#}", anyhow::Error::new(e)),
                    copies = batch.len(),
                    attempt,
                    "recording newsletter copies failed"
                ),
            }
        }
    }
}

/// The preview of the next issue, rendered exactly as a reader's copy would be (with a
/// sample unsubscribe link).
pub fn preview(
    conn: &mut SqliteConnection,
    course_id: i64,
    base: &str,
    now: i64,
) -> StoreResult<(Content, String, String)> {
    let zone = store::settings(conn, course_id)?.time_zone;
    let (date, _) = local_day(&zone, now);
    let (content, _) = gather(conn, course_id, &date, now)?;
    let archive = archive_url(base, &content);
    let unsubscribe = unsubscribe_url(base, "…");
    let links = Links { base, archive_url: &archive, unsubscribe_url: &unsubscribe };
    let (_, text, html) = render_mail(&content, &links).map_err(|e| StoreError::Internal(e.into()))?;
    Ok((content, text, html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_text_cut_on_a_word() {
        let html = "<p>Learning &amp; <em>networks</em>&#33;</p><p>More&nbsp;words here</p>";
        assert_eq!(excerpt(html, 100), "Learning & networks ! More words here");
        assert_eq!(excerpt(html, 20), "Learning & networks…");
        assert_eq!(excerpt("a &bogus; b", 50), "a &bogus; b");
    }

    #[test]
    fn a_copy_cut_from_the_issue_rendered_once_is_the_copy_rendered_for_its_reader() {
        let post = |id: i64, title: &str| PostItem {
            link_id: id,
            author: "Ada <ada> & \"Co\"".into(),
            title: title.into(),
            excerpt: "1 < 2 & 3 > 2 — 'quoted'".into(),
            url: Some(format!("https://blog.example/p?a={id}&b=<x>")),
        };
        let content = Content {
            course_title: "Networks & <Learning>".into(),
            course_slug: "el30".into(),
            date: "2026-12-01".into(),
            note: "Read <b>this</b> & that".into(),
            groups: vec![
                Group {
                    task: Some(TaskRef { title: "Data & \"you\"".into(), slug: "el30-data".into() }),
                    posts: vec![post(1, "One & <two>")],
                },
                Group { task: None, posts: vec![post(2, "")] },
            ],
            module: Some(ModuleTasks {
                title: "Week 1".into(),
                tasks: vec![TaskRef { title: "T".into(), slug: "el30-t".into() }],
            }),
            badges: vec![BadgeCount { title: "Data".into(), count: 2, names: vec!["O'Brien & Co".into()] }],
        };
        let base = "https://cairn.example/a&b";
        let rendered = Rendered::new(&content, base).unwrap();
        for reader in [1, 42, 1_000_000] {
            let token = unsubscribe_token("s3cret", reader);
            let unsubscribe = unsubscribe_url(base, &token);
            let archive = archive_url(base, &content);
            let links = Links { base, archive_url: &archive, unsubscribe_url: &unsubscribe };
            let whole = render_mail(&content, &links).unwrap();
            let cut = rendered.copy(&token);
            assert_eq!(cut, whole, "reader {reader}");
            assert!(cut.1.contains(&token) && cut.2.contains(&token), "the link is in both bodies");
        }
    }

    #[test]
    fn unsubscribe_tokens_name_one_reader_and_cannot_be_forged() {
        let t = unsubscribe_token("s3cret", 42);
        assert_eq!(token_reader("s3cret", &t), Some(42));
        assert_eq!(token_reader("other", &t), None);
        let forged = t.replacen("42-", "43-", 1);
        assert_eq!(token_reader("s3cret", &forged), None);
        assert_eq!(token_reader("s3cret", "42"), None);
    }

    #[test]
    fn local_days_follow_the_course_time_zone() {
        // 2026-12-01 23:30 UTC is already the 2nd in Paris (UTC+1), still the 1st in New York.
        let t = 1_796_167_800;
        assert_eq!(local_day("UTC", t), ("2026-12-01".to_string(), 23));
        assert_eq!(local_day("Europe/Paris", t), ("2026-12-02".to_string(), 0));
        assert_eq!(local_day("America/New_York", t).0, "2026-12-01");
        assert!(parse_zone("Mars/Olympus").is_err());
        assert_eq!(parse_date("2026-1-5").unwrap(), "2026-01-05");
        assert!(parse_date("yesterday").is_err());
    }
}
