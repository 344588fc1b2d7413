//! The course newsletter on the web: subscribing from the course page, the confirmation and
//! unsubscribe links (one-click, RFC 8058), the public archive with its Atom feed, and the
//! instructor's newsletter page.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{AppState, Page, redirect, render, render_status};
use crate::app::newsletter::{self as nl, Built, Content, Links, Subscribing};
use crate::badges::art::xml_escape;
use crate::db::StoreError;
use crate::db::courses::{self, Course};
use crate::db::newsletter::{self as store, ComplaintSource, CourseSettings, Issue, Subscriber};
use crate::domain::FieldErrors;
use crate::web::auth::{Acting, CsrfForm, flash};
use crate::web::error::AppError;

/// Readers per page of the instructor's list.
const READERS_PER_PAGE: i64 = 50;
/// Issues in the archive, the feed and the instructor's page.
const ISSUES_SHOWN: i64 = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/courses/{slug}/newsletter", web::get().to(archive))
        .route("/courses/{slug}/newsletter", web::post().to(subscribe))
        .route("/courses/{slug}/newsletter.atom", web::get().to(feed))
        .route("/courses/{slug}/newsletter/{date}", web::get().to(issue_page))
        .route("/newsletter/confirm/{token}", web::get().to(confirm_page))
        .route("/newsletter/confirm/{token}", web::post().to(confirm))
        .route("/newsletter/unsubscribe/{token}", web::get().to(unsubscribe_get))
        .route("/newsletter/unsubscribe/{token}", web::post().to(unsubscribe_post))
        .route("/admin/courses/{id}/newsletter", web::get().to(admin_page))
        .route("/admin/courses/{id}/newsletter", web::post().to(admin_save))
        .route("/admin/courses/{id}/newsletter/send", web::post().to(admin_send))
        .route("/admin/courses/{id}/newsletter/skip", web::post().to(admin_skip))
        .route("/admin/courses/{id}/newsletter/readers/{reader}/complaint", web::post().to(admin_complaint));
}

/// The time by the application's clock, the one the newsletter's scheduler and sender read:
/// an issue queued here is due for the sender at once.
fn now(state: &AppState) -> i64 {
    state.newsletter.now()
}

/// A short page that says what happened.
#[derive(Template)]
#[template(path = "newsletter/message.html")]
struct MessagePage {
    page: Page,
    heading: String,
    message: String,
    /// A form that POSTs back here (the unsubscribe button), when there is one.
    action: Option<String>,
}

fn message(session: &Session, heading: &str, message: String) -> Result<HttpResponse, AppError> {
    render(&MessagePage { page: Page::new(session, heading), heading: heading.into(), message, action: None })
}

// ---- the public archive ----

#[derive(Template)]
#[template(path = "newsletter/archive.html")]
struct ArchivePage {
    page: Page,
    course: Course,
    issues: Vec<Issue>,
    form: SubscribeForm,
    errors: FieldErrors,
}

async fn archive_data(state: &AppState, slug: String) -> Result<(Course, Vec<Issue>), AppError> {
    state
        .db(move |c| {
            let course = courses::get_course_by_slug(c, &slug)?;
            let issues = store::sent_issues(c, course.id, ISSUES_SHOWN)?;
            Ok((course, issues))
        })
        .await
}

async fn archive(
    session: Session,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (course, issues) = archive_data(&state, slug.into_inner()).await?;
    render(&ArchivePage {
        page: Page::with_form(&session, format!("{} — newsletter", course.title)),
        course,
        issues,
        form: SubscribeForm::default(),
        errors: FieldErrors::new(),
    })
}

#[derive(Template)]
#[template(path = "newsletter/issue.html")]
struct IssuePage<'a> {
    page: Page,
    /// When the issue was built (RFC 3339).
    published: String,
    c: &'a Content,
    l: &'a Links<'a>,
    url: String,
}

async fn issue_page(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (slug, date) = path.into_inner();
    let (issue, content) = state.db(move |c| nl::archived(c, &slug, &date)).await?;
    let url = nl::archive_url(&state.base_url, &content);
    let archive = format!("{}/courses/{}/newsletter", state.base_url, content.course_slug);
    let links = Links { base: &state.base_url, archive_url: &url, unsubscribe_url: &archive };
    let mut res = render(&IssuePage {
        page: Page::new(&session, content.subject()),
        published: super::rfc3339(issue.created_at),
        c: &content,
        l: &links,
        url: url.clone(),
    })?;
    let (k, v) = super::webmention_link(&state.base_url);
    res.headers_mut().insert(k, v);
    Ok(res)
}

/// The issues as an Atom feed, each entry the issue's page.
async fn feed(state: web::Data<AppState>, slug: web::Path<String>) -> Result<HttpResponse, AppError> {
    let slug = slug.into_inner();
    let (course, issues) = archive_data(&state, slug).await?;
    let home = format!("{}/courses/{}/newsletter", state.base_url, course.slug);
    let updated = issues.first().map_or(course.updated_at, |i| i.created_at);
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    out.push_str(&format!(
        "<title>{} — newsletter</title>\n<id>{}</id>\n<link rel=\"alternate\" href=\"{}\"/>\n<link rel=\"self\" href=\"{}.atom\"/>\n<updated>{}</updated>\n",
        xml_escape(&course.title),
        xml_escape(&home),
        xml_escape(&home),
        xml_escape(&home),
        super::rfc3339(updated)
    ));
    for issue in &issues {
        let Ok(content) = nl::parse_content(issue) else { continue };
        let url = nl::archive_url(&state.base_url, &content);
        let links = Links { base: &state.base_url, archive_url: &url, unsubscribe_url: &home };
        let body = nl::IssueHtml { c: &content, l: &links }.render().map_err(|e| AppError::Internal(e.into()))?;
        out.push_str(&format!(
            "<entry>\n<title>{}</title>\n<id>{}</id>\n<link rel=\"alternate\" href=\"{}\"/>\n<updated>{}</updated>\n<author><name>{}</name></author>\n<content type=\"html\">{}</content>\n</entry>\n",
            xml_escape(&content.subject()),
            xml_escape(&url),
            xml_escape(&url),
            super::rfc3339(issue.created_at),
            xml_escape(&course.title),
            xml_escape(&body)
        ));
    }
    out.push_str("</feed>\n");
    Ok(HttpResponse::Ok().content_type("application/atom+xml; charset=utf-8").body(out))
}

// ---- readers ----

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SubscribeForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
}

impl AppState {
    fn subscribing(&self) -> Subscribing<'_> {
        Subscribing { pool: &self.pool, mails_per_day: self.join.mails_per_address_per_day }
    }
}

async fn subscribe(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    slug: web::Path<String>,
    CsrfForm(form): CsrfForm<SubscribeForm>,
) -> Result<HttpResponse, AppError> {
    let (course, issues) = archive_data(&state, slug.into_inner()).await?;
    let (email, name) = match nl::check_reader(&form.email, &form.name) {
        Ok(v) => v,
        Err(errors) => {
            let page = Page::with_form(&session, format!("{} — newsletter", course.title));
            return render_status(
                &ArchivePage { page, course, issues, form, errors },
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let now = now(&state);
    // Per client, as on /join (the same hourly allowance); the per-address limit is the use case's.
    if let Err(wait) = state.join_rate.check(state.client_ip(&req), now) {
        return Err(AppError::Limited {
            message: format!("too many requests from your address; try again in about {} minute(s)", wait.div_ceil(60)),
            retry_after: wait,
        });
    }
    match nl::subscribe(&state.subscribing(), course.id, &email, &name, now).await {
        Ok(()) => {
            state.notifier.wake.notify_one();
            message(
                &session,
                "Check your email",
                format!(
                    "If {email} is not already subscribed, a confirmation link for the newsletter of {} is on its way.",
                    course.title
                ),
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// The newsletter option of `/join`: subscribes the joining learner to the course's newsletter
/// (with its own confirmation link); returns a sentence for the page, empty when nothing was done.
pub(super) async fn also_subscribe(
    state: &AppState,
    slug: &str,
    email: &crate::domain::Email,
    name: &str,
    now: i64,
) -> String {
    let slug = slug.to_string();
    let Ok(course) = state.db(move |c| courses::get_course_by_slug(c, &slug)).await else { return String::new() };
    match nl::subscribe(&state.subscribing(), course.id, email, name, now).await {
        Ok(()) => {
            state.notifier.wake.notify_one();
            format!(" A second link confirms your subscription to the newsletter of {}.", course.title)
        }
        Err(e) => {
            tracing::warn!(error = %e, "the newsletter option of a join was not applied");
            format!(" The newsletter subscription was not made ({e}); you can subscribe from the course page.")
        }
    }
}

/// The confirmation link of a reader's mail: a page with one button, so that a mail scanner
/// following links confirms nothing.
async fn confirm_page(session: Session, token: web::Path<String>) -> Result<HttpResponse, AppError> {
    render(&super::ConfirmLinkPage {
        page: Page::new(&session, "Confirm the newsletter"),
        heading: "Confirm the newsletter",
        message: "Press the button to start receiving the course newsletter at this address.".into(),
        action: format!("/newsletter/confirm/{}", token.into_inner()),
        button: "Confirm my subscription",
    })
}

/// Confirms: the button of the page above; the secret token in the path is the authority.
async fn confirm(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (token, now) = (token.into_inner(), now(&state));
    match state.db(move |c| nl::confirm(c, &token, now)).await? {
        Some((_, title)) => message(&session, "Subscribed", format!("You will receive the newsletter of {title}.")),
        None => Err(AppError::NotFound("confirmation link (it may have been used already or expired)")),
    }
}

/// The unsubscribe link of a mail: a page with one button, so that a mail scanner following
/// links does not unsubscribe anyone; the button works without JavaScript or signing in.
async fn unsubscribe_get(session: Session, token: web::Path<String>) -> Result<HttpResponse, AppError> {
    render(&MessagePage {
        page: Page::new(&session, "Unsubscribe"),
        heading: "Unsubscribe".into(),
        message: "Press the button to stop receiving this newsletter.".into(),
        action: Some(format!("/newsletter/unsubscribe/{}", token.into_inner())),
    })
}

/// Unsubscribes: the button of the page above, or a mail program's one-click POST
/// (`List-Unsubscribe=One-Click`, RFC 8058), which carries no cookie or CSRF token; the
/// secret token in the path is the authority.
async fn unsubscribe_post(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (token, now) = (token.into_inner(), now(&state));
    match state.db(move |c| nl::unsubscribe(c, &token, now)).await? {
        Some(title) => {
            message(&session, "Unsubscribed", format!("You will no longer receive the newsletter of {title}."))
        }
        None => Err(AppError::NotFound("unsubscribe link")),
    }
}

// ---- the instructor's page ----

#[derive(Template)]
#[template(path = "newsletter/admin.html")]
struct AdminPage {
    page: Page,
    course: Course,
    settings: CourseSettings,
    errors: FieldErrors,
    today: String,
    /// Where today's issue stands.
    day: nl::Today,
    /// When today's issue was built (`HH:MM`, course time), if it was.
    built_at: String,
    /// When the day's issue is due (`HH:MM`, course time).
    due_at: String,
    /// The course's time zone as saved (the form may show another, mistyped).
    zone: String,
    preview_html: String,
    preview_text: String,
    empty: bool,
    confirmed: i64,
    readers: Vec<Subscriber>,
    total: i64,
    page_no: i64,
    pages: i64,
    bounces: Vec<(String, String)>,
    /// (reader, address, who recorded it, day).
    complaints: Vec<(i64, String, &'static str, String)>,
    issues: Vec<(Issue, (i64, i64, i64))>,
}

impl AdminPage {
    fn has_complained(&self, reader: &i64) -> bool {
        self.complaints.iter().any(|c| c.0 == *reader)
    }
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    #[serde(default)]
    page: Option<i64>,
}

async fn admin_page(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let course = *id;
    state.db(move |c| nl::may_manage(c, &who.0, course)).await?;
    let page_no = q.page.unwrap_or(1).max(1);
    admin_render(&session, &state, id.into_inner(), page_no, None, FieldErrors::new()).await
}

async fn admin_render(
    session: &Session,
    state: &AppState,
    id: i64,
    page_no: i64,
    typed: Option<CourseSettings>,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let base = state.base_url.clone();
    let now = now(state);
    let schedule = state.newsletter.settings();
    let (course, settings, (today, day), preview, confirmed, (readers, total), (bounces, complaints), issues) = state
        .db(move |c| {
            let course = courses::get_course(c, id)?;
            let settings = store::settings(c, id)?;
            let day = nl::today(c, id, schedule, now)?;
            let preview = nl::preview(c, id, &base, now)?;
            let confirmed = store::count_confirmed(c, id)?;
            let readers = store::list_subscribers(c, id, (page_no - 1) * READERS_PER_PAGE, READERS_PER_PAGE)?;
            let bounces = (store::bounces(c, id, 50)?, store::complaints(c, id, 200)?);
            let mut issues = Vec::new();
            for issue in store::sent_issues(c, id, ISSUES_SHOWN)? {
                let counts = store::delivery_counts(c, issue.id)?;
                issues.push((issue, counts));
            }
            Ok((course, settings, day, preview, confirmed, readers, bounces, issues))
        })
        .await?;
    let (content, preview_text, preview_html) = preview;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let zone = settings.time_zone.clone();
    let built_at = match &day {
        nl::Today::WentOut { issue, .. } => nl::local_time(&settings.time_zone, issue.created_at),
        nl::Today::Empty { at } => nl::local_time(&settings.time_zone, *at),
        _ => String::new(),
    };
    render_status(
        &AdminPage {
            page: Page::new(session, format!("{} — newsletter", course.title)),
            course,
            settings: typed.unwrap_or(settings),
            errors,
            today,
            day,
            built_at,
            due_at: format!("{:02}:00", schedule.hour),
            zone,
            empty: content.is_empty(),
            preview_html,
            preview_text,
            confirmed,
            readers,
            total,
            page_no,
            pages: (total + READERS_PER_PAGE - 1) / READERS_PER_PAGE,
            bounces,
            complaints: complaints
                .into_iter()
                .map(|c| {
                    let by = match c.source {
                        ComplaintSource::Cli => "recorded on the command line",
                        ComplaintSource::Instructor => "marked by an instructor",
                    };
                    (c.subscriber_id, c.email, by, super::day(c.created_at))
                })
                .collect(),
            issues,
        },
        status,
    )
}

#[derive(Debug, Deserialize)]
struct SettingsForm {
    #[serde(default)]
    note: String,
    #[serde(default)]
    time_zone: String,
    /// A checkbox: present when checked.
    #[serde(default)]
    webmentions: Option<String>,
}

async fn admin_save(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<SettingsForm>,
) -> Result<HttpResponse, AppError> {
    let course = *id;
    state.db(move |c| nl::may_manage(c, &who.0, course)).await?;
    let id = id.into_inner();
    let webmentions = form.webmentions.is_some();
    let input = nl::SettingsInput { time_zone: form.time_zone.clone(), note: form.note.clone(), webmentions };
    let now = now(&state);
    match state.db(move |c| Ok(nl::save_settings(c, id, &input, now))).await? {
        Ok(()) => {}
        Err(StoreError::Invalid(errors)) => {
            let typed = CourseSettings {
                course_id: id,
                time_zone: form.time_zone,
                note: form.note,
                skip_date: None,
                webmentions,
                updated_at: 0,
            };
            return admin_render(&session, &state, id, 1, Some(typed), errors).await;
        }
        Err(e) => return Err(e.into()),
    }
    // A note is for the next issue: say which, so that one written after today's went out
    // is not mistaken for today's.
    let schedule = state.newsletter.settings();
    let (_, day) = state.db(move |c| nl::today(c, id, schedule, now)).await?;
    flash(
        &session,
        if form.note.trim().is_empty() || day.can_send() {
            "Newsletter settings saved."
        } else {
            "Newsletter settings saved. Today's issue has gone out: the note will be in tomorrow's."
        },
    );
    Ok(redirect(&format!("/admin/courses/{id}/newsletter")))
}

async fn admin_send(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let course = *id;
    state.db(move |c| nl::may_manage(c, &who.0, course)).await?;
    let (id, now) = (id.into_inner(), now(&state));
    let zone = state.db(move |c| store::settings(c, id)).await?.time_zone;
    let date = nl::local_day(&zone, now).0;
    let (d, base) = (date.clone(), state.base_url.clone());
    let built = state.db(move |c| nl::send_requested(c, id, &d, &base, now)).await?;
    state.newsletter.wake.notify_one();
    state.notifier.wake.notify_one();
    flash(
        &session,
        match built {
            Built::Queued { readers, .. } => format!("The issue of {date} is being sent to {readers} reader(s)."),
            Built::Empty => format!("Nothing new for {date} and no note: nothing was sent."),
            Built::Skipped => format!("{date} is skipped: nothing was sent."),
            Built::Exists(_) => format!("{date} already has its issue; it is not sent twice."),
        },
    );
    Ok(redirect(&format!("/admin/courses/{id}/newsletter")))
}

async fn admin_skip(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let course = *id;
    state.db(move |c| nl::may_manage(c, &who.0, course)).await?;
    let (id, now) = (id.into_inner(), now(&state));
    let zone = state.db(move |c| store::settings(c, id)).await?.time_zone;
    let date = nl::local_day(&zone, now).0;
    let d = date.clone();
    state.db(move |c| store::set_skip(c, id, Some(&d), now)).await?;
    flash(&session, format!("No issue will be sent on {date}; its posts wait for the next one."));
    Ok(redirect(&format!("/admin/courses/{id}/newsletter")))
}

/// "Mark as complaint" on a reader: for a complaint that reached the instructor some other way
/// (a forwarded spam report). The reader is unsubscribed.
async fn admin_complaint(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let course = path.0;
    state.db(move |c| nl::may_manage(c, &who.0, course)).await?;
    let ((id, reader), now) = (path.into_inner(), now(&state));
    let recorded = state.db(move |c| nl::complain(c, id, reader, ComplaintSource::Instructor, now)).await?;
    flash(
        &session,
        if recorded {
            "Complaint recorded; the reader is unsubscribed."
        } else {
            "A complaint from this reader was already recorded."
        },
    );
    Ok(redirect(&format!("/admin/courses/{id}/newsletter")))
}
