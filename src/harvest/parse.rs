//! Turning fetched bytes into feed items: character decoding, feed-rs parsing, a fallback
//! for documents feed-rs rejects or reads as empty, and normalisation (absolute URLs,
//! plain-text titles, sanitised HTML).

use std::borrow::Cow;

use url::Url;

use crate::domain::item::Item;
use crate::html::decode::{decode, decode_entities};
use crate::html::sanitize::{sanitize_with_text, truncate_html};
use crate::html::text::{collapse_ws, escape_html, html_to_text, truncate_chars};
use crate::html::xml::{DtdError, without_dtd};

/// Most characters of sanitised HTML kept per item.
const MAX_SUMMARY_CHARS: usize = 20_000;

/// A parsed feed.
#[derive(Debug, Clone)]
pub struct ParsedFeed {
    pub title: String,
    /// The site the feed belongs to (its HTML alternate), if given.
    pub site_url: Option<String>,
    /// "rss", "atom" or "json".
    pub format: &'static str,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ParseError {
    #[error("this is an HTML page, not a feed")]
    Html,
    #[error("the document is empty")]
    Empty,
    #[error("this is not a feed Cairn can read ({0})")]
    Malformed(String),
    #[error("{0}")]
    Dtd(#[from] DtdError),
}

/// Replaces the XML declaration (whose encoding no longer applies once decoded) by a UTF-8 one.
fn normalise_declaration(text: &str) -> String {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with("<?xml")
        && let Some(end) = t.find("?>")
    {
        return format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>{}", &t[end + 2..]);
    }
    t.to_string()
}

/// True when the text is an HTML page rather than a feed.
pub fn looks_like_html(text: &str) -> bool {
    let head: String = text.trim_start().chars().take(1024).collect::<String>().to_ascii_lowercase();
    let head = head.trim_start_matches("<?xml version=\"1.0\" encoding=\"utf-8\"?>").trim_start();
    head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || (head.starts_with("<!--") && head.contains("<html"))
}

/// Parses a feed document fetched from `base` (the final URL after redirects).
pub fn parse(body: &[u8], http_charset: Option<&str>, base: &Url) -> Result<ParsedFeed, ParseError> {
    let text = decode(body, http_charset);
    let text = normalise_declaration(&text);
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    if looks_like_html(&text) {
        return Err(ParseError::Html);
    }
    let text = without_dtd(&text)?;
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(base.as_str()))
        // No invented ids: an item without one is deduplicated by its URL instead.
        .id_generator(|_, _, _| String::new())
        .timestamp_parser(timestamp)
        .build();
    let has_items = text.contains("<item") || text.contains("<entry") || text.contains("\"items\"");
    // Relative links in content resolve against the document's xml:base, if it has one.
    let content_base = document_base(&text, base);
    match parser.parse(text.as_bytes()) {
        Ok(feed) if !feed.entries.is_empty() || !has_items => Ok(from_feed_rs(feed, &text, &content_base)),
        Ok(_) | Err(feed_rs::parser::ParseFeedError::ParseError(_)) if text.trim_start().starts_with('<') => {
            fallback::parse(&text, &content_base)
        }
        Ok(feed) => Ok(from_feed_rs(feed, &text, &content_base)),
        Err(e) => Err(ParseError::Malformed(describe(&e))),
    }
}

/// A feed's date as feed-rs's lenient parser reads it. That parser runs a series of
/// regular-expression repairs before each format it tries; a date that is already valid RFC
/// 3339 or RFC 2822 (nearly every one) comes out of them unchanged, so it is read directly.
fn timestamp(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = text.trim();
    match chrono::DateTime::parse_from_rfc3339(t).or_else(|_| chrono::DateTime::parse_from_rfc2822(t)) {
        Ok(d) => Some(d.with_timezone(&chrono::Utc)),
        Err(_) => lenient_timestamp(text),
    }
}

/// feed-rs's own reading of a broken date, reached through a one-item JSON Feed (whose
/// `date_modified` goes to it verbatim), as feed-rs does not export that parser.
fn lenient_timestamp(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let doc = serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": "",
        "items": [{ "id": "d", "date_modified": text }],
    });
    let feed = feed_rs::parser::parse(doc.to_string().as_bytes()).ok()?;
    feed.entries.into_iter().next()?.updated
}

/// The Dublin Core namespace, whose `dc:subject` is a category that feed-rs does not read.
const DC_NS: &str = "http://purl.org/dc/elements/1.1/";

/// The `dc:subject`s of each item or entry of an XML document, in document order, with the
/// item's `<link>` text (or `rdf:about`) to pair it with feed-rs's entry. Read only when the
/// document names the namespace and has a subject at all, so other feeds pay one scan.
fn dc_subjects(text: &str) -> Vec<(Option<String>, Vec<String>)> {
    if !text.contains(DC_NS) || !text.contains("subject>") {
        return Vec::new();
    }
    let opts = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 2_000_000, ..Default::default() };
    let Ok(doc) = roxmltree::Document::parse_with_options(text, opts) else { return Vec::new() };
    doc.descendants()
        .filter(|n| n.is_element() && matches!(n.tag_name().name(), "item" | "entry"))
        .map(|n| {
            let link = n
                .children()
                .find(|c| c.is_element() && c.tag_name().name() == "link")
                .and_then(|l| l.attribute("href").map(str::to_string).or_else(|| l.text().map(str::to_string)))
                .or_else(|| n.attribute(("http://www.w3.org/1999/02/22-rdf-syntax-ns#", "about")).map(str::to_string))
                .map(|l| l.trim().to_string());
            let subjects = n
                .children()
                .filter(|c| {
                    c.is_element() && c.tag_name().name() == "subject" && c.tag_name().namespace() == Some(DC_NS)
                })
                .map(|c| c.children().filter_map(|t| t.text()).collect::<String>().trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
            (link, subjects)
        })
        .collect()
}

/// An author's name as feedparser reads it, never with an email address: `anna@example.org
/// (Anna Example)`, `Anna Example <anna@example.org>` and `Anna Example` all give `Anna
/// Example`; a bare address gives no name.
pub fn author_name(raw: &str) -> Option<String> {
    let mut name = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('@') {
        let local = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-');
        let start = rest[..at].rfind(|c: char| !local(c)).map_or(0, |i| i + 1);
        let domain_len = rest[at + 1..].find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-')));
        let end = at + 1 + domain_len.unwrap_or(rest.len() - at - 1);
        let domain = rest[at + 1..end].trim_end_matches('.');
        if start == at || !domain.contains('.') {
            name.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            continue;
        }
        let end = at + 1 + domain.len();
        let before = &rest[..start];
        name.push_str(before.strip_suffix("mailto:").unwrap_or(before));
        rest = &rest[end..];
    }
    name.push_str(rest);
    let name = name.replace("()", "").replace("<>", "");
    let name = name.trim();
    let name = name.strip_prefix('(').unwrap_or(name);
    let name = name.strip_suffix(')').unwrap_or(name);
    Some(collapse_ws(name)).filter(|n| !n.is_empty())
}

/// The `xml:base` of the document's root element resolved against `base`, when that gives an
/// http(s) address; else `base`. (A `javascript:` base would turn every relative link in the
/// feed into script.)
fn document_base(text: &str, base: &Url) -> Url {
    let mut rest = text;
    // Skip the declaration, processing instructions, comments and the doctype.
    loop {
        rest = rest.trim_start();
        if rest.starts_with("<?") || rest.starts_with("<!") {
            let end =
                if rest.starts_with("<!--") { rest.find("-->").map(|i| i + 3) } else { rest.find('>').map(|i| i + 1) };
            match end {
                Some(i) => rest = &rest[i..],
                None => return base.clone(),
            }
        } else {
            break;
        }
    }
    let Some(end) = rest.find('>') else { return base.clone() };
    let tag = &rest[..end];
    let Some(at) = tag.find("xml:base") else { return base.clone() };
    let value = tag[at + 8..].trim_start().strip_prefix('=').map(str::trim_start);
    let Some(value) = value else { return base.clone() };
    let Some(q) = value.chars().next().filter(|c| *c == '"' || *c == '\'') else { return base.clone() };
    let inner = &value[1..];
    let Some(close) = inner.find(q) else { return base.clone() };
    base.join(&decode_entities(&inner[..close]))
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .unwrap_or_else(|| base.clone())
}

fn describe(e: &feed_rs::parser::ParseFeedError) -> String {
    use feed_rs::parser::ParseFeedError as E;
    match e {
        E::ParseError(k) => format!("{k:?}").replace("NoFeedRoot", "no RSS, Atom or JSON Feed root element"),
        E::IoError(e) => e.to_string(),
        E::JsonSerde(e) => format!("invalid JSON: {e}"),
        E::JsonUnsupportedVersion(v) => format!("unsupported JSON Feed version {v}"),
        E::XmlReader(e) => format!("malformed XML: {e}"),
    }
}

fn from_feed_rs(feed: feed_rs::model::Feed, text: &str, base: &Url) -> ParsedFeed {
    let format = match feed.feed_type {
        feed_rs::model::FeedType::Atom => "atom",
        feed_rs::model::FeedType::JSON => "json",
        _ => "rss",
    };
    let person_name = |p: &feed_rs::model::Person| p.name.as_deref().and_then(author_name);
    let feed_author = feed.authors.iter().find_map(person_name);
    let site_url = pick_link(&feed.links, base);
    let mut subjects = dc_subjects(text);
    let by_order = subjects.len() == feed.entries.len();
    let items = feed
        .entries
        .into_iter()
        .enumerate()
        .map(|(n, mut e)| {
            let summary = e.summary.take().map(|t| (t.content, t.content_type.essence().to_string()));
            let content = e.content.take().and_then(|c| c.body.map(|b| (b, c.content_type.essence().to_string())));
            let id = Some(e.id.trim().to_string()).filter(|s| !s.is_empty());
            let url = pick_link(&e.links, base).or_else(|| id.as_deref().and_then(|i| permalink(i, base)));
            let title_raw = e.title.as_ref().map(|t| {
                if t.content_type.essence().to_string().contains("html") {
                    html_to_text(&t.content)
                } else {
                    t.content.clone()
                }
            });
            // feed-rs resolves links, the scan does not: pair them by position when both saw
            // the same items, else by the link as written.
            let subject_at = if by_order {
                Some(n)
            } else {
                subjects.iter().position(|(link, _)| {
                    link.as_deref().is_some_and(|l| {
                        e.links.iter().any(|el| el.href == l || base.join(l).is_ok_and(|u| u.as_str() == el.href))
                    })
                })
            };
            let dc_subjects = subject_at.map(|i| std::mem::take(&mut subjects[i].1)).unwrap_or_default();
            let categories = e
                .categories
                .iter()
                .map(|c| c.term.trim().to_string())
                .chain(e.categories.iter().filter_map(|c| c.label.clone()))
                .chain(dc_subjects)
                .filter(|c| !c.is_empty())
                .collect();
            // An entry without an author has the feed's (RFC 4287, section 4.2.1).
            let author =
                if e.authors.is_empty() { feed_author.clone() } else { e.authors.iter().find_map(person_name) };
            let media = e
                .media
                .iter()
                .filter_map(|m| m.description.as_ref())
                .map(|t| (t.content.clone(), t.content_type.essence().to_string()))
                .find(|(t, _)| !t.trim().is_empty());
            build_item(ItemParts {
                id,
                url,
                title: title_raw,
                author,
                published: e.published.or(e.updated).map(|d| d.timestamp()),
                updated: e.updated.map(|d| d.timestamp()),
                categories,
                summary,
                content,
                media,
                base: base.clone(),
            })
        })
        .collect();
    ParsedFeed {
        title: feed
            .title
            .map(|t| html_to_text(&t.content))
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| base.to_string()),
        site_url,
        format,
        items,
    }
}

/// An item's parts before normalisation (shared by both parsers).
struct ItemParts {
    id: Option<String>,
    url: Option<String>,
    title: Option<String>,
    author: Option<String>,
    published: Option<i64>,
    updated: Option<i64>,
    categories: Vec<String>,
    /// (text, MIME type)
    summary: Option<(String, String)>,
    content: Option<(String, String)>,
    /// A `media:description` (YouTube's text of a video): searched for hashtags, and the
    /// summary when there is no other.
    media: Option<(String, String)>,
    base: Url,
}

fn build_item(p: ItemParts) -> Item {
    fn as_html((text, mime): &(String, String)) -> Cow<'_, str> {
        if mime.contains("html") || mime.is_empty() { Cow::Borrowed(text) } else { Cow::Owned(escape_html(text)) }
    }
    let summary_src =
        p.summary.as_ref().filter(|(t, _)| !t.trim().is_empty()).or(p.content.as_ref()).or(p.media.as_ref());
    let (summary_html, mut summary_text) = match summary_src {
        Some(s) => sanitize_with_text(&as_html(s), &p.base),
        None => (String::new(), None),
    };
    let mut text = String::new();
    for part in [p.summary.as_ref(), p.content.as_ref(), p.media.as_ref()].into_iter().flatten() {
        // The summary's text came with sanitising it.
        match summary_text.take_if(|_| summary_src.is_some_and(|s| std::ptr::eq(s, part))) {
            Some(t) => text.push_str(&t),
            None => text.push_str(&html_to_text(&as_html(part))),
        }
        text.push('\n');
    }
    let title = match p.title.map(|t| collapse_ws(&t)).filter(|t| !t.is_empty()) {
        Some(title) => {
            text.insert_str(0, &format!("{title}\n"));
            title
        }
        // A title made from the text is not searched again: cut short, it could end in half a
        // hashtag (`#el30-experien…`).
        None => {
            let t = collapse_ws(&text);
            if t.is_empty() { "(untitled)".to_string() } else { truncate_chars(&t, 80) }
        }
    };
    Item {
        id: p.id,
        url: p
            .url
            .and_then(|u| p.base.join(u.trim()).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(|u| u.to_string()),
        title: truncate_chars(&title, 500),
        author: p.author.map(|a| collapse_ws(&html_to_text(&a))).filter(|a| !a.is_empty()),
        published: p.published,
        updated: p.updated,
        categories: p.categories,
        summary_html: truncate_html(summary_html, MAX_SUMMARY_CHARS),
        text,
    }
}

/// The HTML alternate among `links`, else the first link without a non-alternate rel.
fn pick_link(links: &[feed_rs::model::Link], base: &Url) -> Option<String> {
    let alternate = |l: &&feed_rs::model::Link| l.rel.as_deref().is_none_or(|r| r == "alternate");
    let html = |l: &&feed_rs::model::Link| l.media_type.as_deref().is_none_or(|t| t.contains("html"));
    links
        .iter()
        .filter(alternate)
        .find(html)
        .or_else(|| links.iter().find(alternate))
        .and_then(|l| base.join(l.href.trim()).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| u.to_string())
}

/// An item id that is itself a web address (an RSS permalink guid).
fn permalink(id: &str, base: &Url) -> Option<String> {
    if id.starts_with("http://") || id.starts_with("https://") {
        base.join(id).ok().map(|u| u.to_string())
    } else {
        None
    }
}

/// A tolerant reader for well-formed XML feeds that feed-rs refuses (an `<rss>` without
/// a version it knows, RSS 0.90/0.93/0.94, stray roots) or reads as having no items.
mod fallback {
    use super::*;

    /// Media RSS, with or without its final slash.
    const MEDIA_NS: &str = "http://search.yahoo.com/mrss";

    fn child_text(node: roxmltree::Node, names: &[&str]) -> Option<String> {
        node.children()
            .filter(|c| c.is_element() && names.contains(&c.tag_name().name()))
            .map(|c| c.children().filter_map(|t| t.text()).collect::<String>())
            .find(|t| !t.trim().is_empty())
            .map(|t| t.trim().to_string())
    }

    /// The name of a node's first `author` (its `name`, else its text) or `dc:creator`.
    fn author_of(node: roxmltree::Node) -> Option<String> {
        let a = node.children().find(|c| c.is_element() && matches!(c.tag_name().name(), "author" | "creator"))?;
        let raw = child_text(a, &["name"]).or_else(|| {
            let t: String = a.children().filter_map(|t| t.text()).collect();
            Some(t).filter(|t| !t.trim().is_empty())
        })?;
        author_name(&raw)
    }

    fn link_of(node: roxmltree::Node) -> Option<String> {
        let links: Vec<roxmltree::Node> =
            node.children().filter(|c| c.is_element() && c.tag_name().name() == "link").collect();
        for l in &links {
            if let Some(href) = l.attribute("href") {
                let rel_ok = l.attribute("rel").is_none_or(|r| r == "alternate");
                let type_ok = l.attribute("type").is_none_or(|t| t.contains("html"));
                if rel_ok && type_ok {
                    return Some(href.to_string());
                }
            }
        }
        links.iter().find_map(|l| {
            let t: String = l.children().filter_map(|t| t.text()).collect();
            Some(t.trim().to_string()).filter(|t| !t.is_empty())
        })
    }

    fn date_of(node: roxmltree::Node, names: &[&str]) -> Option<i64> {
        let raw = child_text(node, names)?;
        chrono::DateTime::parse_from_rfc2822(raw.trim())
            .or_else(|_| chrono::DateTime::parse_from_rfc3339(raw.trim()))
            .ok()
            .map(|d| d.timestamp())
    }

    pub fn parse(text: &str, base: &Url) -> Result<ParsedFeed, ParseError> {
        let opts = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 2_000_000, ..Default::default() };
        let doc = roxmltree::Document::parse_with_options(text, opts)
            .map_err(|e| ParseError::Malformed(format!("malformed XML: {e}")))?;
        let root = doc.root_element();
        let root_name = root.tag_name().name();
        if !matches!(root_name, "rss" | "RDF" | "feed" | "channel") {
            return Err(ParseError::Malformed(format!("unknown root element <{root_name}>")));
        }
        let channel = root.descendants().find(|n| n.is_element() && n.tag_name().name() == "channel").unwrap_or(root);
        let title = child_text(channel, &["title"]).map(|t| html_to_text(&t)).unwrap_or_else(|| base.to_string());
        let site_url = link_of(channel).and_then(|l| base.join(&l).ok()).map(|u| u.to_string());
        // An entry without an author has the feed's (RFC 4287 for Atom 1.0, and read so for
        // Atom 0.3): the channel's, else the root's.
        let feed_author = author_of(channel).or_else(|| author_of(root));
        let items = root
            .descendants()
            .filter(|n| n.is_element() && matches!(n.tag_name().name(), "item" | "entry"))
            .map(|n| {
                let id = child_text(n, &["guid", "id"]);
                let url = link_of(n).or_else(|| id.as_deref().and_then(|i| permalink(i, base)));
                let summary = child_text(n, &["description", "summary"]).map(|s| (s, "text/html".to_string()));
                let content = child_text(n, &["encoded", "content"]).map(|s| (s, "text/html".to_string()));
                let categories = n
                    .children()
                    .filter(|c| c.is_element() && matches!(c.tag_name().name(), "category" | "subject"))
                    .filter_map(|c| {
                        c.attribute("term").map(str::to_string).or_else(|| c.text().map(|t| t.trim().to_string()))
                    })
                    .filter(|c| !c.is_empty())
                    .collect();
                let author = author_of(n).or_else(|| feed_author.clone());
                let is_media = |c: &roxmltree::Node, name: &str| {
                    c.is_element()
                        && c.tag_name().name() == name
                        && c.tag_name().namespace().is_some_and(|ns| ns.starts_with(MEDIA_NS))
                };
                let media = n
                    .children()
                    .filter(|c| is_media(c, "group"))
                    .chain(std::iter::once(n))
                    .flat_map(|g| g.children().filter(|c| is_media(c, "description")))
                    .map(|c| c.children().filter_map(|t| t.text()).collect::<String>())
                    .find(|t| !t.trim().is_empty())
                    .map(|t| (t.trim().to_string(), "text/plain".to_string()));
                build_item(ItemParts {
                    id,
                    url,
                    title: child_text(n, &["title"]).map(|t| html_to_text(&t)),
                    author,
                    published: date_of(
                        n,
                        &["pubDate", "published", "issued", "date", "created", "modified", "updated"],
                    ),
                    updated: date_of(n, &["updated", "modified"]),
                    categories,
                    summary,
                    content,
                    media,
                    base: base.clone(),
                })
            })
            .collect();
        Ok(ParsedFeed { title, site_url, format: if root_name == "feed" { "atom" } else { "rss" }, items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://blog.example.org/feed/").unwrap()
    }

    #[test]
    fn rss_items_get_absolute_urls_plain_titles_and_clean_html() {
        let feed = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title><link>https://blog.example.org/</link>
            <item><title>Hello &amp; &lt;b&gt;welcome&lt;/b&gt;</title><link>/2019/hello</link><guid isPermaLink="false">p-1</guid>
            <description>&lt;p onclick="x()"&gt;Hi &lt;script&gt;alert(1)&lt;/script&gt;&lt;a href="/about"&gt;me&lt;/a&gt; #el30-data&lt;/p&gt;</description>
            <category>el30-cloud</category><pubDate>Mon, 15 Oct 2018 10:00:00 GMT</pubDate></item>
            <item><guid>https://blog.example.org/2019/permalink</guid><description>No title here, just words.</description></item>
            </channel></rss>"#;
        let f = parse(feed.as_bytes(), None, &base()).unwrap();
        assert_eq!(f.items.len(), 2);
        let a = &f.items[0];
        assert_eq!(a.url.as_deref(), Some("https://blog.example.org/2019/hello"));
        assert_eq!(a.id.as_deref(), Some("p-1"));
        assert!(!a.summary_html.contains("script") && !a.summary_html.contains("onclick"), "{}", a.summary_html);
        assert!(a.summary_html.contains("https://blog.example.org/about"));
        assert!(a.text.contains("#el30-data"));
        assert_eq!(a.categories, vec!["el30-cloud"]);
        assert_eq!(a.published, Some(1539597600));
        let b = &f.items[1];
        assert_eq!(b.url.as_deref(), Some("https://blog.example.org/2019/permalink"), "guid permalink used as link");
        assert_eq!(b.title, "No title here, just words.");
    }

    #[test]
    fn html_pages_and_garbage_are_reported() {
        assert_eq!(parse(b"<!DOCTYPE html><html><body>hi</body></html>", None, &base()).unwrap_err(), ParseError::Html);
        assert!(matches!(parse(b"<rss><channel><item>", None, &base()), Err(ParseError::Malformed(_))));
        assert!(matches!(parse(b"just text", None, &base()), Err(ParseError::Malformed(_))));
        assert_eq!(parse(b"  ", None, &base()).unwrap_err(), ParseError::Empty);
    }

    #[test]
    fn a_declared_dtd_is_refused_and_an_external_doctype_is_dropped() {
        let bomb = format!(
            "<?xml version=\"1.0\"?><!-- hi --><!DOCTYPE rss [<!ENTITY a \"{}\">]><rss version=\"2.0\"><channel>{}</channel></rss>",
            "x".repeat(100),
            "&a;".repeat(10_000)
        );
        assert_eq!(parse(bomb.as_bytes(), None, &base()).unwrap_err(), ParseError::Dtd(DtdError));
        let quoted = r#"<!DOCTYPE rss SYSTEM "x[y" [ ]><rss/>"#;
        assert_eq!(without_dtd(quoted), Err(DtdError));
        let old = r#"<?xml version="1.0"?>
            <!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "http://my.netscape.com/publish/formats/rss-0.91.dtd">
            <rss version="0.91"><channel><title>Old</title><item><title>One</title><link>https://o.example/1</link></item></channel></rss>"#;
        assert!(!without_dtd(old).unwrap().contains("DOCTYPE"));
        assert_eq!(parse(old.as_bytes(), None, &base()).unwrap().items.len(), 1);
    }

    #[test]
    fn a_script_base_never_makes_a_script_link() {
        let feed = r#"<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" xml:base="javascript://x/%0aalert(1)//">
            <title>T</title><link href="rel/site"/><entry><title>E</title><id>e1</id><link href="post/1"/>
            <summary type="html">&lt;a href="relative/x"&gt;a&lt;/a&gt; &lt;a href="JavaScript:alert(2)"&gt;b&lt;/a&gt;
            &lt;a href="mailto:a@b.example"&gt;c&lt;/a&gt; &lt;img src="data:image/png;base64,AAAA"&gt;</summary></entry></feed>"#;
        let f = parse(feed.as_bytes(), None, &base()).unwrap();
        let item = &f.items[0];
        assert!(!item.summary_html.to_ascii_lowercase().contains("javascript"), "{}", item.summary_html);
        assert!(!item.summary_html.contains("data:"), "{}", item.summary_html);
        assert!(
            item.summary_html.contains("href=\"https://blog.example.org/feed/relative/x\""),
            "{}",
            item.summary_html
        );
        assert!(item.summary_html.contains("mailto:a@b.example"));
        assert!(item.url.as_deref().is_none_or(|u| u.starts_with("https://")), "{:?}", item.url);
        assert!(f.site_url.as_deref().is_none_or(|u| u.starts_with("https://")), "{:?}", f.site_url);
    }

    #[test]
    fn author_names_come_without_their_email() {
        for (raw, want) in [
            ("anna@example.org (Anna Example)", Some("Anna Example")),
            ("Anna Example <anna@example.org>", Some("Anna Example")),
            ("Anna Example (mailto:anna@example.org)", Some("Anna Example")),
            ("  Anna   Example ", Some("Anna Example")),
            ("anna@example.org", None),
            ("<anna@example.org>", None),
            ("@anna@social.example", Some("@")),
            ("Anna @ home", Some("Anna @ home")),
            ("", None),
        ] {
            assert_eq!(author_name(raw).as_deref(), want, "{raw:?}");
        }
        // Linear: a run of `@` and one of address characters are each read once.
        let started = std::time::Instant::now();
        author_name(&"a@".repeat(1 << 18));
        author_name(&format!("{}@{}", "a".repeat(1 << 20), "b.".repeat(1 << 19)));
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    }

    #[test]
    fn a_derived_title_is_not_searched_for_half_a_hashtag() {
        let words = "word ".repeat(15);
        let feed = format!(
            r#"<rss version="2.0"><channel><title>T</title><item><link>https://a.example/1</link>
            <description>{words}#el30-experience</description></item></channel></rss>"#
        );
        let item = &parse(feed.as_bytes(), None, &base()).unwrap().items[0];
        assert!(item.title.ends_with("#el30…"), "{}", item.title);
        assert!(!item.text.contains('…'), "{}", item.text);
        assert_eq!(crate::domain::hashtags::extract(&item.text).into_iter().collect::<Vec<_>>(), ["#el30-experience"]);
    }

    #[test]
    fn dates_read_directly_match_the_lenient_reading() {
        for raw in [
            "Mon, 15 Oct 2018 10:00:00 GMT",
            " Mon, 15 Oct 2018 10:00:00 +0200 ",
            "15 Oct 2018 10:00:00 -0000",
            "2018-10-15T10:00:00Z",
            "2018-10-15T10:00:00.5+02:00",
            "Thurs, 13 Jul 2011 07:38:00 GMT",
            "Sat, 16 Dec 2023 19:02:33 UTC",
            "Wed, 25 Aug 2012 10:00:00 GMT",
            "Monday, 15 October 2018 9:00:00 GMT",
            "2018-10-15T10:00:00+0200",
            "2018-10-15",
            "Tue, 15 Nov 2022 20:15:04 Z",
            "yesterday",
            "",
        ] {
            assert_eq!(timestamp(raw), lenient_timestamp(raw), "{raw:?}");
        }
        assert_eq!(timestamp("Mon, 15 Oct 2018 10:00:00 GMT").map(|d| d.timestamp()), Some(1539597600));
        assert!(lenient_timestamp("Thurs, 13 Jul 2011 07:38:00 GMT").is_some());
        assert_eq!(lenient_timestamp("yesterday"), None);
    }
}
