//! Building a course's issue for a local date, once, and reading it back for the archive and
//! the preview.

use diesel::SqliteConnection;

use super::*;
use crate::db::newsletter::{self as store, IssueStatus, NewIssue};
use crate::db::{StoreError, StoreResult};

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
    // "This module": the course's current module on the issue's date, by the course page's rule.
    let outline = crate::db::courses::outline(conn, course_id)?;
    let module = crate::app::courses::current_module(&outline, date)
        .and_then(|(i, _)| outline.modules.get(i))
        .map(|m| ModuleTasks { title: m.module.title.clone(), tasks: m.tasks.iter().map(task_ref).collect() });
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
    build(conn, course_id, date, base, now, true)
}

/// The instructor's "Send now" (and `cairn newsletter send`): builds and queues the course's
/// issue for `date` whenever that day's issue has not gone out — also on the day the first
/// reader arrived (when the scheduler waits), after the scheduler found the day empty (a note
/// written since goes in this issue, not the next) and on a skipped day. A day whose issue went
/// out is never sent twice ([`Built::Exists`]).
pub fn send_requested(
    conn: &mut SqliteConnection,
    course_id: i64,
    date: &str,
    base: &str,
    now: i64,
) -> StoreResult<Built> {
    if let Some(existing) = store::issue_on(conn, course_id, date)? {
        if existing.status == IssueStatus::Sent {
            return Ok(Built::Exists(existing));
        }
        // An empty or skipped day has no copies: it is built again, from the same start.
        store::discard_unsent(conn, existing.id)?;
    }
    build(conn, course_id, date, base, now, false)
}

/// The local date (`YYYY-MM-DD`, in `zone`) on which the course's first reader confirmed.
pub fn first_reader_day(conn: &mut SqliteConnection, course_id: i64, zone: &str) -> StoreResult<Option<String>> {
    Ok(store::first_confirmed_at(conn, course_id)?.map(|at| local_day(zone, at).0))
}

/// Builds and stores a day's issue; `honour_skip` is false when the instructor asked for it.
fn build(
    conn: &mut SqliteConnection,
    course_id: i64,
    date: &str,
    base: &str,
    now: i64,
    honour_skip: bool,
) -> StoreResult<Built> {
    let settings = store::settings(conn, course_id)?;
    let (content, since) = gather(conn, course_id, date, now)?;
    let skipped = honour_skip && settings.skip_date.as_deref() == Some(date);
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
