//! What learners show of their badges: the verification page as Webmention receivers parse
//! it (mf2py, pinned in scripts/mf2/), link previews, the LinkedIn and embed links, and the
//! learner's public badges page with its Atom feed, which the learner can hide.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::Value;

use crate::helpers::repo;
use crate::helpers::{TestApp, spawn_app};

const EVIDENCE: &str = "https://lin.example.org/2026/11/my-data-post?ref=feed&x=1";
/// The demo Task `#el30-data`.
const TITLE: &str = "Open up a data source";
pub const MANAGE_TOKEN: &str = "manage-token-for-lin-0123456789abcdef";

/// A server with the demo course, a learner (Lin, subscribed with a feed) and an award of
/// `#el30-data` made out to her address under the name "Lin E."; returns the assertion's URL.
pub async fn app_with_learner() -> (TestApp, String) {
    let app = spawn_app().await;
    let mut c = app.pool.get().unwrap();
    cairn::demo::seed(&mut c).unwrap();
    let author = cairn::db::feeds::find_or_create_author(
        &mut c,
        "Lin Example-Realname",
        Some("lin@example.edu"),
        cairn::clock::system_now(),
    )
    .unwrap();
    // She chose to be shown by a pseudonym.
    cairn::db::learners::set_name_choice(&mut c, author.id, cairn::db::learners::NameShown::Pseudonym, Some("Lin E."))
        .unwrap();
    let hash = cairn::tokens::token_hash(MANAGE_TOKEN);
    cairn::db::feeds::create_feed(
        &mut c,
        cairn::db::feeds::NewFeed {
            author_id: author.id,
            url: "https://lin.example.org/feed.xml",
            title: "Lin's blog",
            site_url: None,
            status: cairn::db::feeds::FeedStatus::Active,
            confirm_token_hash: None,
            manage_token_hash: Some(&hash),
        },
        cairn::clock::system_now(),
    )
    .unwrap();
    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &app.address, raster: &raster, signer: app.ledger.key() };
    let req = cairn::app::award::HashtagAward {
        task: "#el30-data".into(),
        recipient: "lin@example.edu".into(),
        evidence: EVIDENCE.into(),
        name: Some("Lin E.".into()),
        narrative: Some("A careful post about data.".into()),
    };
    let award = cairn::app::award::award_by_hashtag(&mut c, &issuer, &req, cairn::clock::system_now()).unwrap();
    drop(c);
    let url = app.url(&format!("/assertions/{}", award.public_id));
    (app, url)
}

/// Runs `cmd` with `input` on stdin, killed after `limit`.
fn run_bounded(mut cmd: Command, input: &[u8], limit: Duration) -> std::process::Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{cmd:?} was still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    writer.join().unwrap().unwrap();
    child.wait_with_output().unwrap()
}

/// The page parsed by mf2py as a receiver would: the pinned environment, set up by the
/// project's own script.
fn mf2(url: &str, html: &str) -> Value {
    let mut setup = Command::new("bash");
    setup.arg(repo("scripts/mf2/setup.sh"));
    let out = run_bounded(setup, b"", Duration::from_secs(900));
    assert!(out.status.success(), "scripts/mf2/setup.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    let python = String::from_utf8_lossy(&out.stdout).lines().last().expect("the python path").trim().to_string();
    let mut parse = Command::new(python);
    parse.arg(repo("scripts/mf2/parse.py")).arg(url);
    let out = run_bounded(parse, html.as_bytes(), Duration::from_secs(120));
    assert!(out.status.success(), "parse.py: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn first<'a>(item: &'a Value, property: &str) -> &'a Value {
    &item["properties"][property][0]
}

fn has_type(item: &Value, t: &str) -> bool {
    item["type"].as_array().is_some_and(|types| types.iter().any(|x| x == t))
}

async fn html(app: &TestApp, url: &str) -> String {
    let res = app.client.get(url).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    res.text().await.unwrap()
}

#[tokio::test]
async fn receivers_find_a_complete_h_entry_that_links_the_exact_post_from_its_content() {
    let (app, url) = app_with_learner().await;
    let page = html(&app, &url).await;
    let parsed = mf2(&url, &page);
    let entries: Vec<&Value> = parsed["items"].as_array().unwrap().iter().filter(|i| has_type(i, "h-entry")).collect();
    assert_eq!(entries.len(), 1, "{parsed}");
    let entry = entries[0];
    assert_eq!(first(entry, "name"), TITLE, "{entry}");
    assert_eq!(first(entry, "url"), url.as_str());
    assert!(first(entry, "published").as_str().unwrap().starts_with("20"), "{entry}");
    // The author is the institution, as an h-card with name, url and logo.
    let author = first(entry, "author");
    assert!(has_type(author, "h-card"), "{author}");
    assert_eq!(first(author, "url"), app.url("/institution").as_str());
    assert!(!first(author, "name").as_str().unwrap().is_empty(), "{author}");
    // The badge image and the post.
    let photo = first(entry, "photo");
    let photo = photo.get("value").unwrap_or(photo);
    assert_eq!(photo, &Value::from(format!("{url}/badge.png")));
    assert_eq!(first(entry, "mention-of"), EVIDENCE);
    // The content names the badge and the recipient's public name, and links the exact post.
    let content = first(entry, "content");
    let (text, html) = (content["value"].as_str().unwrap(), content["html"].as_str().unwrap());
    assert!(text.contains("Lin E.") && text.contains(TITLE), "{text}");
    assert!(!text.contains("Realname") && !text.contains("lin@example.edu"), "{text}");
    assert!(html.contains(&format!("href=\"{}\"", EVIDENCE.replace('&', "&amp;"))), "{html}");
    assert!(html.contains("u-photo"), "{html}");
}

#[tokio::test]
async fn the_logo_of_an_institution_that_has_one_is_the_h_card_logo() {
    let (app, url) = app_with_learner().await;
    app.login().await;
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", app.csrf().await)
        .text("name", "Open University of Cairns")
        .text("url", "https://cairns.example.edu")
        .text("email", "badges@cairns.example.edu")
        .text("description", "A university")
        .part("image", reqwest::multipart::Part::bytes(crate::helpers::png(64, 64)).file_name("logo.png"));
    let res = app.client.post(app.url("/admin/institution")).multipart(form).send().await.unwrap();
    assert!(res.status().is_success() || res.status().is_redirection(), "{}", res.status());
    let anonymous = reqwest::Client::new();
    let page = anonymous.get(&url).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    let parsed = mf2(&url, &page);
    let entry = parsed["items"].as_array().unwrap().iter().find(|i| has_type(i, "h-entry")).unwrap();
    let author = first(entry, "author");
    assert_eq!(first(author, "name"), "Open University of Cairns");
    let logo = first(author, "logo");
    assert_eq!(logo.get("value").unwrap_or(logo), &Value::from(app.url("/institution/image")));
}

fn meta<'a>(page: &'a str, key: &str) -> &'a str {
    let at = page.find(&format!("=\"{key}\" content=\"")).unwrap_or_else(|| panic!("no {key} in {page}"));
    let rest = &page[at + key.len() + 13..];
    &rest[..rest.find('"').unwrap()]
}

#[tokio::test]
async fn link_previews_and_the_linkedin_and_share_links_carry_the_badge() {
    let (app, url) = app_with_learner().await;
    let page = html(&app, &url).await;
    assert!(meta(&page, "og:title").starts_with(&format!("{TITLE} — a badge from")), "{page}");
    assert_eq!(meta(&page, "og:image"), format!("{url}/badge.png"));
    assert_eq!(meta(&page, "og:url"), url);
    assert!(!meta(&page, "og:description").is_empty());
    assert_eq!(meta(&page, "twitter:card"), "summary");
    assert_eq!(meta(&page, "twitter:image"), format!("{url}/badge.png"));
    assert!(meta(&page, "twitter:title").starts_with(TITLE));
    // The preview image is the PNG.
    let png = app.client.get(format!("{url}/badge.png")).send().await.unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");

    // LinkedIn's add-to-profile link, its parameters URL-encoded.
    let href = page
        .split("href=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .find(|h| h.starts_with("https://www.linkedin.com/profile/add?"))
        .expect("an Add to LinkedIn profile link")
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let link = url::Url::parse(&href).unwrap();
    let q: std::collections::HashMap<String, String> = link.query_pairs().into_owned().collect();
    let id = url.rsplit('/').next().unwrap();
    let inst: Value = app.client.get(app.url("/issuer")).send().await.unwrap().json().await.unwrap();
    let year = chrono::Utc::now().format("%Y").to_string();
    let month = chrono::Utc::now().format("%-m").to_string();
    for (k, v) in [
        ("startTask", "CERTIFICATION_NAME"),
        ("name", TITLE),
        ("organizationName", inst["name"].as_str().unwrap()),
        ("issueYear", year.as_str()),
        ("issueMonth", month.as_str()),
        ("certUrl", url.as_str()),
        ("certId", id),
    ] {
        assert_eq!(q.get(k).map(String::as_str), Some(v), "{k} in {href}");
    }
    // Encoded, not raw: the certificate URL's own '/' and ':' are escaped in the query.
    assert!(href.contains("certUrl=http%3A%2F%2F127.0.0.1"), "{href}");
    assert!(page.contains("https://www.linkedin.com/sharing/share-offsite/?url="), "a plain share link");
}

#[tokio::test]
async fn the_embed_snippet_renders_the_badge_linked_to_its_page_in_a_browser() {
    let (app, url) = app_with_learner().await;
    let page = html(&app, &url).await;
    let raw = page.split("<textarea id=\"embed-code\" readonly rows=\"3\">").nth(1).unwrap();
    let snippet = raw[..raw.find("</textarea>").unwrap()]
        .replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    assert!(!snippet.contains("<script"), "{snippet}");
    // A blog page with nothing but the snippet, served from another origin.
    let server = crate::feedserver::FeedServer::start().await;
    let blog = format!("<!doctype html><html lang=\"en\"><title>Blog</title><p>{snippet}</p></html>");
    server.set("/index.html", crate::feedserver::Reply::typed(blog, "text/html; charset=utf-8"));
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    let result = async {
        browser.goto(&server.url("/index.html")).await?;
        let img = browser.find(Locator::Css("a > img")).await?;
        let loaded = browser
            .execute("const i = document.querySelector('a > img'); return i.complete && i.naturalWidth > 0;", vec![])
            .await?;
        let href = browser.find(Locator::Css("a")).await?.attr("href").await?;
        Ok::<_, fantoccini::error::CmdError>((img.attr("src").await?, loaded, href))
    }
    .await;
    let _ = browser.close().await;
    let (src, loaded, href) = result.expect("browser");
    assert_eq!(src.as_deref(), Some(format!("{url}/badge.png").as_str()));
    assert_eq!(loaded, Value::Bool(true), "the badge image loaded");
    assert_eq!(href.as_deref(), Some(url.as_str()));
}

#[tokio::test]
async fn the_portfolio_lists_the_badges_under_the_public_name_and_hides_on_request() {
    let (app, url) = app_with_learner().await;
    let page = html(&app, &url).await;
    let portfolio = page
        .split("href=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .find(|h| h.contains("/learners/"))
        .expect("the verification page links the learner's page")
        .to_string();
    let public_id = portfolio.rsplit('/').next().unwrap();
    assert!(public_id.len() >= 24 && public_id.bytes().all(|b| b.is_ascii_hexdigit()), "{public_id}");
    assert!(!portfolio.contains("lin") && !portfolio.contains("example"), "{portfolio}");

    let mine = html(&app, &portfolio).await;
    assert!(!mine.contains("Realname") && !mine.contains("lin@example.edu"), "{mine}");
    let parsed = mf2(&portfolio, &mine);
    let feed = parsed["items"].as_array().unwrap().iter().find(|i| has_type(i, "h-feed")).expect("an h-feed");
    assert_eq!(first(feed, "name"), "Badges of Lin E.");
    assert_eq!(first(first(feed, "author"), "name"), "Lin E.");
    // Cards grouped under their course; the name is shown once.
    let main = &mine[mine.find("<section class=\"h-feed").unwrap()..mine.find("<section class=\"card narrow").unwrap()];
    assert_eq!(main.matches("Lin E.").count(), 1, "{main}");
    assert!(
        main.contains("<h2 id=\"course-1\">E-Learning 3.0</h2>") && main.contains("class=\"h-entry badge-card\""),
        "{main}"
    );
    let entries = feed["children"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{feed}");
    assert_eq!(first(&entries[0], "url"), url.as_str());
    assert_eq!(first(&entries[0], "name"), TITLE);
    // The Atom feed beside it.
    let atom = app.client.get(format!("{portfolio}/feed.atom")).send().await.unwrap();
    assert_eq!(atom.status(), 200);
    assert!(atom.headers()["content-type"].to_str().unwrap().starts_with("application/atom+xml"));
    let atom = atom.text().await.unwrap();
    assert!(atom.contains(&format!("href=\"{url}\"")) && atom.contains("Badges of Lin E."), "{atom}");

    // Hidden from the private link: the page and its feed answer 404, and the verification
    // page no longer links it.
    let form = app.get_html(&format!("/subscription/{MANAGE_TOKEN}")).await;
    assert!(form.contains(&portfolio), "the private page shows the public page's address");
    let res = app.post_form(&format!("/subscription/{MANAGE_TOKEN}/portfolio"), &[("portfolio", "hide")]).await;
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(crate::helpers::location(&res), format!("/subscription/{MANAGE_TOKEN}"));
    assert_eq!(app.client.get(&portfolio).send().await.unwrap().status(), 404);
    assert_eq!(app.client.get(format!("{portfolio}/feed.atom")).send().await.unwrap().status(), 404);
    assert!(!html(&app, &url).await.contains("/learners/"));
    assert!(app.get_html(&format!("/subscription/{MANAGE_TOKEN}")).await.contains("Show my badges page"));
    // A wrong token changes nothing.
    let res = app.post_form("/subscription/not-a-token/portfolio", &[("portfolio", "show")]).await;
    assert_eq!(res.status(), 404);
    assert_eq!(app.client.get(&portfolio).send().await.unwrap().status(), 404);
    // Shown again.
    app.post_form(&format!("/subscription/{MANAGE_TOKEN}/portfolio"), &[("portfolio", "show")]).await;
    assert_eq!(app.client.get(&portfolio).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn oembed_gives_a_rich_card_for_a_verification_page_only() {
    let (app, url) = app_with_learner().await;
    let oembed = |target: &str| {
        let q = url::form_urlencoded::Serializer::new(String::new()).append_pair("url", target).finish();
        app.url(&format!("/oembed?{q}&format=json"))
    };
    let res = app.client.get(oembed(&url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let card: Value = res.json().await.unwrap();
    assert_eq!((card["version"].as_str(), card["type"].as_str()), (Some("1.0"), Some("rich")));
    let html = card["html"].as_str().unwrap();
    assert!(html.starts_with(&format!("<a href=\"{url}\"><img src=\"{url}/badge.png\"")), "{html}");
    assert!(!html.contains("<script"));
    let other = app.client.get(oembed("https://evil.example/assertions/x")).send().await;
    assert_eq!(other.unwrap().status(), 404);
}
