//! The demo learners' blogs (`cairn serve --demo` only; otherwise every page here is 404):
//! an index, each blog's home and feed (RSS, Atom or JSON Feed), post pages that advertise a
//! Webmention endpoint and show the mentions received, and that endpoint.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::{AppState, render};
use crate::badges::art::xml_escape;
use crate::db::demo::{self as store, FeedFormat, Learner, Post};
use crate::demo::DemoBlogs;
use crate::web::error::AppError;

/// Posts a blog's home and feed list.
const POSTS_LISTED: i64 = 30;

type Demo = web::Data<Option<DemoBlogs>>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/demo/blogs/", web::get().to(index))
        .route("/demo/blogs", web::get().to(index))
        .route("/demo/blogs/{blog}/", web::get().to(blog))
        .route("/demo/blogs/{blog}/webmention", web::post().to(receive))
        .route("/demo/blogs/{blog}/{file}", web::get().to(feed))
        .route("/demo/blogs/{blog}/{post}/", web::get().to(post));
}

fn demo(d: &Demo) -> Result<&DemoBlogs, AppError> {
    d.as_ref().as_ref().ok_or(AppError::NotFound("page"))
}

struct BlogLink {
    name: String,
    about: String,
    url: String,
    feed: String,
    format: &'static str,
}

#[derive(Template)]
#[template(path = "demo/blogs.html")]
struct IndexPage {
    title: String,
    blogs: Vec<BlogLink>,
}

async fn index(state: web::Data<AppState>, d: Demo) -> Result<HttpResponse, AppError> {
    let demo = demo(&d)?.clone();
    let learners = state.db(store::learners).await?;
    let blogs = learners
        .iter()
        .map(|l| BlogLink {
            name: l.name.clone(),
            about: l.about.clone(),
            url: demo.blog_url(&l.slug),
            feed: demo.feed_url(l),
            format: format_name(l.format),
        })
        .collect();
    render(&IndexPage { title: "Demo blogs".into(), blogs })
}

fn format_name(f: FeedFormat) -> &'static str {
    match f {
        FeedFormat::Rss => "RSS",
        FeedFormat::Atom => "Atom",
        FeedFormat::Json => "JSON",
    }
}

struct PostLink {
    title: String,
    url: String,
    published: String,
    day: String,
}

#[derive(Template)]
#[template(path = "demo/blog.html")]
struct BlogPage {
    title: String,
    name: String,
    about: String,
    feed: String,
    feed_type: &'static str,
    format: &'static str,
    posts: Vec<PostLink>,
}

async fn load_blog(state: &AppState, slug: String) -> Result<(Learner, Vec<Post>), AppError> {
    state
        .db(move |c| {
            let l = store::learner(c, &slug)?;
            let posts = store::posts_of(c, l.id, POSTS_LISTED)?;
            Ok((l, posts))
        })
        .await
}

async fn blog(state: web::Data<AppState>, d: Demo, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let demo = demo(&d)?.clone();
    let (l, posts) = load_blog(&state, path.into_inner()).await?;
    let posts = posts
        .iter()
        .map(|p| PostLink {
            title: p.title.clone(),
            url: demo.post_url(&l.slug, &p.slug),
            published: super::rfc3339(p.published_at),
            day: super::day(p.published_at),
        })
        .collect();
    render(&BlogPage {
        title: format!("{}'s blog", l.name),
        feed: demo.feed_url(&l),
        feed_type: l.format.content_type(),
        format: format_name(l.format),
        name: l.name,
        about: l.about,
        posts,
    })
}

async fn feed(
    state: web::Data<AppState>,
    d: Demo,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let demo = demo(&d)?.clone();
    let (slug, file) = path.into_inner();
    let (l, posts) = load_blog(&state, slug).await?;
    if l.format.file() != file {
        return Err(AppError::NotFound("feed"));
    }
    let body = match l.format {
        FeedFormat::Rss => rss(&demo, &l, &posts),
        FeedFormat::Atom => atom(&demo, &l, &posts),
        FeedFormat::Json => json_feed(&demo, &l, &posts),
    };
    Ok(HttpResponse::Ok()
        .content_type(format!("{}; charset=utf-8", l.format.content_type()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body))
}

fn categories(p: &Post) -> impl Iterator<Item = &str> {
    p.categories.split_ascii_whitespace()
}

/// A post's text as HTML paragraphs (escaped).
fn content_html(p: &Post) -> String {
    p.body.split("\n\n").map(|para| format!("<p>{}</p>", xml_escape(para.trim()))).collect::<Vec<_>>().join("\n")
}

fn date(t: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default()
}

fn rss(demo: &DemoBlogs, l: &Learner, posts: &[Post]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\">\n<channel>\n");
    out.push_str(&format!(
        "<title>{} (demo blog)</title>\n<link>{}</link>\n<description>{}</description>\n",
        xml_escape(&l.name),
        xml_escape(&demo.blog_url(&l.slug)),
        xml_escape(&l.about)
    ));
    for p in posts {
        let url = demo.post_url(&l.slug, &p.slug);
        out.push_str("<item>\n");
        out.push_str(&format!("<title>{}</title>\n<link>{}</link>\n", xml_escape(&p.title), xml_escape(&url)));
        out.push_str(&format!("<guid isPermaLink=\"true\">{}</guid>\n", xml_escape(&url)));
        out.push_str(&format!("<pubDate>{}</pubDate>\n", date(p.published_at).to_rfc2822()));
        for c in categories(p) {
            out.push_str(&format!("<category>{}</category>\n", xml_escape(c)));
        }
        out.push_str(&format!("<description>{}</description>\n</item>\n", xml_escape(&content_html(p))));
    }
    out.push_str("</channel>\n</rss>\n");
    out
}

fn atom(demo: &DemoBlogs, l: &Learner, posts: &[Post]) -> String {
    let home = demo.blog_url(&l.slug);
    let updated = posts.iter().map(|p| p.published_at).max().unwrap_or(l.created_at);
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    out.push_str(&format!(
        "<title>{} (demo blog)</title>\n<id>{}</id>\n<link href=\"{}\"/>\n<link rel=\"self\" href=\"{}\"/>\n<updated>{}</updated>\n<author><name>{}</name></author>\n",
        xml_escape(&l.name),
        xml_escape(&home),
        xml_escape(&home),
        xml_escape(&demo.feed_url(l)),
        super::rfc3339(updated),
        xml_escape(&l.name)
    ));
    for p in posts {
        let url = demo.post_url(&l.slug, &p.slug);
        out.push_str("<entry>\n");
        out.push_str(&format!(
            "<title>{}</title>\n<id>{}</id>\n<link href=\"{}\"/>\n<published>{}</published>\n<updated>{}</updated>\n",
            xml_escape(&p.title),
            xml_escape(&url),
            xml_escape(&url),
            super::rfc3339(p.published_at),
            super::rfc3339(p.published_at)
        ));
        for c in categories(p) {
            out.push_str(&format!("<category term=\"{}\"/>\n", xml_escape(c)));
        }
        out.push_str(&format!("<content type=\"html\">{}</content>\n</entry>\n", xml_escape(&content_html(p))));
    }
    out.push_str("</feed>\n");
    out
}

fn json_feed(demo: &DemoBlogs, l: &Learner, posts: &[Post]) -> String {
    let items: Vec<serde_json::Value> = posts
        .iter()
        .map(|p| {
            let url = demo.post_url(&l.slug, &p.slug);
            serde_json::json!({
                "id": url,
                "url": url,
                "title": p.title,
                "content_html": content_html(p),
                "date_published": super::rfc3339(p.published_at),
                "tags": categories(p).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": format!("{} (demo blog)", l.name),
        "home_page_url": demo.blog_url(&l.slug),
        "feed_url": demo.feed_url(l),
        "description": l.about,
        "authors": [{"name": l.name}],
        "items": items,
    })
    .to_string()
}

struct MentionView {
    source: String,
    /// The badge, when the source is a verification page.
    badge: Option<String>,
}

#[derive(Template)]
#[template(path = "demo/post.html")]
struct PostPage {
    title: String,
    post: Post,
    name: String,
    blog: String,
    url: String,
    feed: String,
    feed_type: &'static str,
    endpoint: String,
    published: String,
    day: String,
    paragraphs: Vec<String>,
    categories: Vec<String>,
    mentions: Vec<MentionView>,
}

async fn post(
    state: web::Data<AppState>,
    d: Demo,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let demo = demo(&d)?.clone();
    let (slug, post_slug) = path.into_inner();
    let (l, p, mentions) = state
        .db(move |c| {
            let l = store::learner(c, &slug)?;
            let p = store::post(c, l.id, &post_slug)?;
            let m = store::verified_mentions(c, p.id)?;
            Ok((l, p, m))
        })
        .await?;
    let endpoint = format!("{}webmention", demo.blog_url(&l.slug));
    let page = PostPage {
        title: p.title.clone(),
        name: l.name.clone(),
        blog: demo.blog_url(&l.slug),
        url: demo.post_url(&l.slug, &p.slug),
        feed: demo.feed_url(&l),
        feed_type: l.format.content_type(),
        published: super::rfc3339(p.published_at),
        day: super::day(p.published_at),
        paragraphs: p.body.split("\n\n").map(|s| s.trim().to_string()).collect(),
        categories: categories(&p).map(str::to_string).collect(),
        mentions: mentions
            .into_iter()
            .map(|m| {
                let is_badge = url::Url::parse(&m.source).is_ok_and(|u| u.path().starts_with("/assertions/"));
                MentionView { badge: m.title.filter(|_| is_badge), source: m.source }
            })
            .collect(),
        endpoint: endpoint.clone(),
        post: p,
    };
    let mut res = render(&page)?;
    if let Ok(v) = header::HeaderValue::from_str(&format!("<{endpoint}>; rel=\"webmention\"")) {
        res.headers_mut().insert(header::LINK, v);
    }
    Ok(res)
}

#[derive(serde::Deserialize)]
struct MentionForm {
    #[serde(default)]
    source: String,
    #[serde(default)]
    target: String,
}

/// A demo blog's Webmention endpoint: checks the request, queues it and answers 202; the
/// source is fetched and checked by the demo's mention job.
async fn receive(
    req: HttpRequest,
    state: web::Data<AppState>,
    d: Demo,
    path: web::Path<String>,
    form: web::Form<MentionForm>,
) -> Result<HttpResponse, AppError> {
    let demo = demo(&d)?.clone();
    let (client, now) = (state.client_ip(&req), crate::clock::system_now());
    if let Err(wait) = state.mention_rate.check(client, now) {
        return Err(AppError::Limited {
            message: "too many Webmentions from your address; try again in a minute".into(),
            retry_after: wait,
        });
    }
    let (slug, form) = (path.into_inner(), form.into_inner());
    let source = form.source.trim().to_string();
    let source_ok = source.len() <= crate::demo::MAX_URL_LEN
        && url::Url::parse(&source).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if !source_ok {
        return Err(AppError::BadRequest("source must be an http(s) URL".into()));
    }
    let blog = demo.blog_url(&slug);
    let post_slug = form
        .target
        .trim()
        .strip_prefix(&blog)
        .and_then(|rest| rest.strip_suffix('/'))
        .filter(|s| !s.is_empty() && !s.contains(['/', '?', '#']))
        .map(str::to_string)
        .ok_or_else(|| AppError::BadRequest("the target is not a post of this blog".into()))?;
    if source == form.target.trim() {
        return Err(AppError::BadRequest("the source and target must differ".into()));
    }
    let queued = state
        .db(move |c| {
            let l = store::learner(c, &slug)?;
            let p = store::post(c, l.id, &post_slug)?;
            if store::count_pending_mentions(c)? >= crate::demo::MAX_PENDING
                || store::count_mentions_of(c, p.id)? >= crate::demo::MAX_PER_POST
            {
                return Ok(false);
            }
            store::receive_mention(c, p.id, &source, now)?;
            Ok(true)
        })
        .await;
    match queued {
        Ok(true) => {
            demo.wake.notify_one();
            Ok(HttpResponse::Accepted()
                .content_type("text/plain; charset=utf-8")
                .body("Accepted: the source will be checked for a link to the post.\n"))
        }
        Ok(false) => Err(AppError::Limited {
            message: "too many Webmentions are waiting; try again later".into(),
            retry_after: 60,
        }),
        // The Recommendation answers a target that is no post with 400.
        Err(AppError::NotFound(_)) => Err(AppError::BadRequest("the target is not a post of this blog".into())),
        Err(e) => Err(e),
    }
}
