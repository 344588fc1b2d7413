//! What learners show of their badges: their public page (`/learners/{public_id}`, an
//! `h-feed` with an Atom feed beside it), the snippet to paste into a blog, the oEmbed card of
//! a verification page, and the links that add a badge to a professional profile.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{AppState, Page, render};
use crate::badges::art::xml_escape;
use crate::badges::ob;
use crate::db::portfolios::{self, Portfolio, PortfolioBadge};
use crate::web::auth::CsrfForm;
use crate::web::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/learners/{public_id}", web::get().to(page))
        .route("/learners/{public_id}/feed.atom", web::get().to(feed))
        .route("/subscription/{token}/portfolio", web::post().to(set_visibility))
        .route("/oembed", web::get().to(oembed));
}

/// The URL of a learner's page.
pub fn url(base: &str, public_id: &str) -> String {
    format!("{base}/learners/{public_id}")
}

/// A visible page and its badges, or 404 (hidden pages too, so that hiding leaves no trace).
async fn visible(state: &AppState, public_id: String) -> Result<(Portfolio, Vec<PortfolioBadge>), AppError> {
    state
        .db(move |c| {
            let p = portfolios::by_public_id(c, &public_id)?
                .filter(|p| !p.hidden)
                .ok_or(crate::db::StoreError::NotFound("learner"))?;
            let badges = portfolios::badges(c, p.author_id)?;
            Ok((p, badges))
        })
        .await
}

/// The title of the first course each task belongs to (tasks in no course have none).
async fn course_of_tasks(
    state: &AppState,
    badges: &[PortfolioBadge],
) -> Result<std::collections::HashMap<i64, String>, AppError> {
    let mut tasks: Vec<i64> = badges.iter().map(|b| b.task_id).collect();
    tasks.sort_unstable();
    tasks.dedup();
    state
        .db(move |c| {
            let mut out = std::collections::HashMap::with_capacity(tasks.len());
            for t in tasks {
                if let Some((course, _)) = crate::db::courses::places_of_task(c, t)?.into_iter().next() {
                    out.insert(t, course.title);
                }
            }
            Ok(out)
        })
        .await
}

/// Badges of one course, as the page groups them.
struct Group {
    course: String,
    entries: Vec<Entry>,
}

/// One badge as the page lists it.
struct Entry {
    url: String,
    image: String,
    title: String,
    hashtag: String,
    published: String,
    day: String,
}

#[derive(Template)]
#[template(path = "portfolio.html")]
struct PortfolioPage {
    page: Page,
    name: String,
    url: String,
    feed_url: String,
    groups: Vec<Group>,
    embed: String,
}

async fn page(
    session: Session,
    state: web::Data<AppState>,
    public_id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (p, badges) = visible(&state, public_id.into_inner()).await?;
    let base = &state.base_url;
    let name = p.name.clone();
    let url = url(base, &p.public_id);
    let courses = course_of_tasks(&state, &badges).await?;
    let mut groups: Vec<Group> = Vec::new();
    for b in &badges {
        let course = courses.get(&b.task_id).cloned().unwrap_or_else(|| "Other badges".into());
        let entry = Entry {
            url: ob::assertion_url(base, &b.public_id),
            image: format!("{}/badge.png", ob::assertion_url(base, &b.public_id)),
            title: b.task_title.clone(),
            hashtag: b.hashtag.clone(),
            published: super::rfc3339(b.issued_on),
            day: super::day(b.issued_on),
        };
        // Newest first within a course, and courses in the order of their newest badge.
        match groups.iter_mut().find(|g| g.course == course) {
            Some(g) => g.entries.push(entry),
            None => groups.push(Group { course, entries: vec![entry] }),
        }
    }
    let embed = format!("<a href=\"{}\">Badges of {}</a>", xml_escape(&url), xml_escape(&name));
    render(&PortfolioPage {
        page: Page::new(&session, format!("Badges of {name}")),
        feed_url: format!("{url}/feed.atom"),
        name,
        url,
        groups,
        embed,
    })
}

async fn feed(state: web::Data<AppState>, public_id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let (p, badges) = visible(&state, public_id.into_inner()).await?;
    let base = &state.base_url;
    let (name, home) = (p.name.clone(), url(base, &p.public_id));
    let self_url = format!("{home}/feed.atom");
    let updated = badges.iter().map(|b| b.issued_on).max().unwrap_or(0);
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    out.push_str(&format!(
        "<id>{}</id>\n<title>Badges of {}</title>\n<updated>{}</updated>\n<author><name>{}</name></author>\n\
         <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>\n<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n\
         <generator>Cairn</generator>\n",
        xml_escape(&self_url),
        xml_escape(&name),
        super::rfc3339(updated),
        xml_escape(&name),
        xml_escape(&self_url),
        xml_escape(&home)
    ));
    for b in &badges {
        let url = ob::assertion_url(base, &b.public_id);
        out.push_str(&format!(
            "<entry>\n<id>{}</id>\n<title type=\"text\">{}</title>\n<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n\
             <published>{}</published>\n<updated>{}</updated>\n<category term=\"{}\"/>\n<summary type=\"text\">{}</summary>\n</entry>\n",
            xml_escape(&url),
            xml_escape(&b.task_title),
            xml_escape(&url),
            super::rfc3339(b.issued_on),
            super::rfc3339(b.issued_on),
            xml_escape(&b.hashtag),
            xml_escape(&b.task_description)
        ));
    }
    out.push_str("</feed>\n");
    Ok(HttpResponse::Ok().content_type("application/atom+xml; charset=utf-8").body(out))
}

#[derive(Deserialize)]
struct Visibility {
    /// "hide" or "show".
    portfolio: String,
}

/// Hides or shows the learner's page, from their private subscription link.
async fn set_visibility(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: CsrfForm<Visibility>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let hidden = match form.0.portfolio.as_str() {
        "hide" => true,
        "show" => false,
        _ => return Err(AppError::BadRequest("portfolio must be \"hide\" or \"show\"".into())),
    };
    let t = token.clone();
    state
        .db(move |c| {
            let (_, author) = crate::app::subscribe::managed(c, &t)?;
            portfolios::set_hidden(c, author.id, hidden)
        })
        .await?;
    crate::web::auth::flash(
        &session,
        if hidden {
            "Your badges page is hidden: its address now answers “not found”."
        } else {
            "Your badges page is shown."
        },
    );
    Ok(super::redirect(&format!("/subscription/{token}")))
}

#[derive(Deserialize)]
struct OembedQuery {
    url: String,
    format: Option<String>,
    maxwidth: Option<u32>,
}

/// oEmbed (rich type) for a verification page: the embed snippet as a card.
async fn oembed(state: web::Data<AppState>, q: web::Query<OembedQuery>) -> Result<HttpResponse, AppError> {
    let q = q.into_inner();
    if q.format.as_deref().is_some_and(|f| f != "json") {
        return Ok(HttpResponse::NotImplemented().body("only format=json is offered"));
    }
    let prefix = format!("{}/assertions/", state.base_url);
    let id = q
        .url
        .strip_prefix(&prefix)
        .filter(|id| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .ok_or(AppError::NotFound("badge"))?
        .to_string();
    let base = state.base_url.clone();
    let (award, task, inst) = state
        .db(move |c| {
            let a = crate::db::awards::by_public_id(c, &id)?;
            let t = crate::db::courses::get_task(c, a.task_id)?;
            Ok((a, t, crate::db::institution::get(c)?))
        })
        .await?;
    if award.is_revoked() {
        return Err(AppError::NotFound("badge"));
    }
    let size = q.maxwidth.unwrap_or(120).clamp(40, 400);
    let share = Share::new(&base, &award, &task, &inst);
    Ok(HttpResponse::Ok().insert_header(("Access-Control-Allow-Origin", "*")).json(serde_json::json!({
        "version": "1.0",
        "type": "rich",
        "title": format!("{} — {}", task.title, inst.name),
        "provider_name": inst.name,
        "provider_url": base,
        "html": share.embed_sized(size),
        "width": size,
        "height": size,
        "thumbnail_url": share.image,
        "thumbnail_width": 400,
        "thumbnail_height": 400,
    })))
}

/// The ways to show one badge elsewhere: the embed snippet and the profile and share links.
pub struct Share {
    pub url: String,
    /// The baked PNG.
    pub image: String,
    alt: String,
    /// LinkedIn's "add to profile" link for a certification.
    pub linkedin: String,
    /// LinkedIn's plain share of the page.
    pub linkedin_share: String,
    /// A mail with the link.
    pub mail: String,
}

impl Share {
    pub fn new(
        base: &str,
        award: &crate::db::awards::Award,
        task: &crate::db::courses::Task,
        inst: &crate::db::institution::Institution,
    ) -> Share {
        let url = ob::assertion_url(base, &award.public_id);
        let issued = chrono::DateTime::from_timestamp(award.issued_on, 0).unwrap_or_default();
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        {
            use chrono::Datelike as _;
            q.append_pair("startTask", "CERTIFICATION_NAME")
                .append_pair("name", &task.title)
                .append_pair("organizationName", &inst.name)
                .append_pair("issueYear", &issued.year().to_string())
                .append_pair("issueMonth", &issued.month().to_string());
            if let Some(e) = award.expires.and_then(|e| chrono::DateTime::from_timestamp(e, 0)) {
                q.append_pair("expirationYear", &e.year().to_string())
                    .append_pair("expirationMonth", &e.month().to_string());
            }
            q.append_pair("certUrl", &url).append_pair("certId", &award.public_id);
        }
        let linkedin = format!("https://www.linkedin.com/profile/add?{}", q.finish());
        let linkedin_share = format!(
            "https://www.linkedin.com/sharing/share-offsite/?{}",
            url::form_urlencoded::Serializer::new(String::new()).append_pair("url", &url).finish()
        );
        let mail =
            format!("mailto:?subject={}&body={}", uri_escape(&format!("My badge: {}", task.title)), uri_escape(&url));
        let alt = match &award.recipient_name {
            Some(n) => format!("Badge: {}, from {}, awarded to {n}", task.title, inst.name),
            None => format!("Badge: {}, from {}", task.title, inst.name),
        };
        Share { image: format!("{url}/badge.png"), url, alt, linkedin, linkedin_share, mail }
    }

    /// The snippet for a blog: the baked badge linking its verification page; no script.
    pub fn embed(&self) -> String {
        self.embed_sized(120)
    }

    fn embed_sized(&self, size: u32) -> String {
        format!(
            "<a href=\"{}\"><img src=\"{}\" alt=\"{}\" width=\"{size}\" height=\"{size}\"></a>",
            xml_escape(&self.url),
            xml_escape(&self.image),
            xml_escape(&self.alt)
        )
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters (a space is `%20`, as mail
/// clients expect in a `mailto:` link).
fn uri_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
