//! The course's own feeds: RSS 2.0, Atom 1.0 and JSON Feed 1.1 of the posts harvested for
//! a course or a task, crediting the original authors and linking to the original posts.

use actix_web::{HttpResponse, web};

use super::AppState;
use crate::badges::art::xml_escape;
use crate::db::courses;
use crate::db::links::{self, LinkView};
use crate::web::error::AppError;

/// Most items in a feed.
const FEED_ITEMS: i64 = 50;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/courses/{slug}/feed.{format}", web::get().to(course_feed))
        .route("/tasks/{tag}/feed.{format}", web::get().to(task_feed));
}

/// What a feed is about.
struct Channel {
    title: String,
    description: String,
    /// The HTML page.
    home: String,
    /// This feed's own URL.
    self_url: String,
}

async fn course_feed(state: web::Data<AppState>, path: web::Path<(String, String)>) -> Result<HttpResponse, AppError> {
    let (slug, format) = path.into_inner();
    let (outline, items) = state
        .db(move |c| {
            let course = courses::get_course_by_slug(c, &slug)?;
            let outline = courses::outline(c, course.id)?;
            let ids: Vec<i64> = outline.modules.iter().flat_map(|m| m.tasks.iter().map(|t| t.id)).collect();
            Ok((outline, links::recent(c, Some(&ids), FEED_ITEMS)?))
        })
        .await?;
    let home = format!("{}/courses/{}", state.base_url, outline.course.slug);
    let channel = Channel {
        title: format!("{} — learners' posts", outline.course.title),
        description: format!("Posts written by participants of {}, collected by Cairn.", outline.course.title),
        self_url: format!("{home}/feed.{format}"),
        home,
    };
    respond(&channel, &items, &format)
}

async fn task_feed(state: web::Data<AppState>, path: web::Path<(String, String)>) -> Result<HttpResponse, AppError> {
    let (tag, format) = path.into_inner();
    let (task, items) = state
        .db(move |c| {
            let task = courses::get_task_by_slug(c, &tag)?;
            let items = links::recent(c, Some(&[task.id]), FEED_ITEMS)?;
            Ok((task, items))
        })
        .await?;
    let home = format!("{}/tasks/{}", state.base_url, task.slug());
    let channel = Channel {
        title: format!("{} ({}) — learners' posts", task.title, task.hashtag),
        description: format!("Posts tagged {} by course participants, collected by Cairn.", task.hashtag),
        self_url: format!("{home}/feed.{format}"),
        home,
    };
    respond(&channel, &items, &format)
}

fn respond(channel: &Channel, items: &[LinkView], format: &str) -> Result<HttpResponse, AppError> {
    let (body, ctype) = match format {
        "rss" => (rss(channel, items), "application/rss+xml; charset=utf-8"),
        "atom" => (atom(channel, items), "application/atom+xml; charset=utf-8"),
        "json" => (json_feed(channel, items), "application/feed+json; charset=utf-8"),
        _ => return Err(AppError::NotFound("feed format (use .rss, .atom or .json)")),
    };
    Ok(HttpResponse::Ok().content_type(ctype).insert_header(("Access-Control-Allow-Origin", "*")).body(body))
}

fn when(v: &LinkView) -> i64 {
    v.link.published_at.unwrap_or(v.link.harvested_at)
}

fn date(t: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default()
}

/// A stable id for an item: the post's URL, else a URN naming the Link.
fn item_id(channel: &Channel, v: &LinkView) -> String {
    v.link.url.clone().unwrap_or_else(|| format!("{}#link-{}", channel.home, v.link.id))
}

fn rss(channel: &Channel, items: &[LinkView]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\n<channel>\n");
    out.push_str(&format!(
        "<title>{}</title>\n<link>{}</link>\n<description>{}</description>\n<atom:link href=\"{}\" rel=\"self\" type=\"application/rss+xml\"/>\n<generator>Cairn</generator>\n",
        xml_escape(&channel.title),
        xml_escape(&channel.home),
        xml_escape(&channel.description),
        xml_escape(&channel.self_url)
    ));
    if let Some(latest) = items.iter().map(when).max() {
        out.push_str(&format!("<lastBuildDate>{}</lastBuildDate>\n", date(latest).to_rfc2822()));
    }
    for v in items {
        out.push_str("<item>\n");
        out.push_str(&format!("<title>{}</title>\n", xml_escape(&v.link.title)));
        if let Some(u) = &v.link.url {
            out.push_str(&format!(
                "<link>{}</link>\n<guid isPermaLink=\"true\">{}</guid>\n",
                xml_escape(u),
                xml_escape(u)
            ));
        } else {
            out.push_str(&format!("<guid isPermaLink=\"false\">{}</guid>\n", xml_escape(&item_id(channel, v))));
        }
        out.push_str(&format!(
            "<dc:creator>{}</dc:creator>\n",
            xml_escape(v.link.author_name.as_deref().unwrap_or(&v.author))
        ));
        out.push_str(&format!("<pubDate>{}</pubDate>\n", date(when(v)).to_rfc2822()));
        for t in &v.tasks {
            out.push_str(&format!("<category>{}</category>\n", xml_escape(&t.hashtag)));
        }
        out.push_str(&format!("<description>{}</description>\n", xml_escape(&v.link.summary_html)));
        out.push_str("</item>\n");
    }
    out.push_str("</channel>\n</rss>\n");
    out
}

fn atom(channel: &Channel, items: &[LinkView]) -> String {
    let updated = items.iter().map(when).max().unwrap_or(0);
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    out.push_str(&format!(
        "<id>{}</id>\n<title>{}</title>\n<subtitle>{}</subtitle>\n<updated>{}</updated>\n<link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>\n<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n<generator>Cairn</generator>\n",
        xml_escape(&channel.self_url),
        xml_escape(&channel.title),
        xml_escape(&channel.description),
        date(updated).to_rfc3339(),
        xml_escape(&channel.self_url),
        xml_escape(&channel.home)
    ));
    for v in items {
        out.push_str("<entry>\n");
        out.push_str(&format!(
            "<id>{}</id>\n<title type=\"text\">{}</title>\n",
            xml_escape(&item_id(channel, v)),
            xml_escape(&v.link.title)
        ));
        if let Some(u) = &v.link.url {
            out.push_str(&format!("<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n", xml_escape(u)));
        }
        out.push_str(&format!(
            "<author><name>{}</name></author>\n<published>{}</published>\n<updated>{}</updated>\n",
            xml_escape(v.link.author_name.as_deref().unwrap_or(&v.author)),
            date(when(v)).to_rfc3339(),
            date(v.link.updated_at.unwrap_or(when(v))).to_rfc3339()
        ));
        for t in &v.tasks {
            out.push_str(&format!("<category term=\"{}\"/>\n", xml_escape(&t.hashtag)));
        }
        out.push_str(&format!("<summary type=\"html\">{}</summary>\n", xml_escape(&v.link.summary_html)));
        out.push_str("</entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

fn json_feed(channel: &Channel, items: &[LinkView]) -> String {
    let items: Vec<serde_json::Value> = items
        .iter()
        .map(|v| {
            let mut item = serde_json::json!({
                "id": item_id(channel, v),
                "title": v.link.title,
                "content_html": v.link.summary_html,
                "date_published": date(when(v)).to_rfc3339(),
                "authors": [{"name": v.link.author_name.as_deref().unwrap_or(&v.author)}],
                "tags": v.tasks.iter().map(|t| t.hashtag.clone()).collect::<Vec<_>>(),
            });
            if let Some(u) = &v.link.url {
                item["url"] = serde_json::Value::String(u.clone());
            }
            item
        })
        .collect();
    serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": channel.title,
        "description": channel.description,
        "home_page_url": channel.home,
        "feed_url": channel.self_url,
        "items": items,
    })
    .to_string()
}
