//! Feed discovery: the `<link rel="alternate">` feeds an HTML page advertises.

use url::Url;

use crate::html::tokenize::start_tags;

/// A feed advertised by a page.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FeedLink {
    pub url: String,
    pub title: Option<String>,
    /// MIME type as advertised.
    pub kind: String,
    /// A comments feed (listed after the others, and not offered as a choice).
    pub comments: bool,
}

const FEED_TYPES: [&str; 5] =
    ["application/rss+xml", "application/atom+xml", "application/feed+json", "application/json", "application/rdf+xml"];

/// The feeds a page advertises, in document order, made absolute against `base` (or the
/// page's `<base href>`). Comment feeds are listed after the others.
pub fn feed_links(html: &str, base: &Url) -> Vec<FeedLink> {
    let mut base = base.clone();
    let mut found = Vec::new();
    for tag in start_tags(html) {
        if tag.name == "base" {
            if let Some(b) = tag.attr("href").and_then(|v| base.join(v.trim()).ok())
                && matches!(b.scheme(), "http" | "https")
            {
                base = b;
            }
            continue;
        }
        if tag.name != "link" {
            continue;
        }
        let get = |k: &str| tag.attr(k).map(str::to_string);
        let rel = get("rel").unwrap_or_default().to_ascii_lowercase();
        let kind = get("type").unwrap_or_default().to_ascii_lowercase();
        let kind = kind.split(';').next().unwrap_or("").trim().to_string();
        if !rel.split_ascii_whitespace().any(|r| r == "alternate") || !FEED_TYPES.contains(&kind.as_str()) {
            continue;
        }
        let Some(href) = get("href").filter(|h| !h.trim().is_empty()) else { continue };
        let Ok(url) = base.join(href.trim()) else { continue };
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        let title = get("title");
        let comments =
            title.as_deref().is_some_and(|t| t.to_lowercase().contains("comment")) || url.path().contains("/comments/");
        let link = FeedLink { url: url.to_string(), title, kind, comments };
        if !found.iter().any(|f: &FeedLink| f.url == link.url) {
            found.push(link);
        }
    }
    let (mut main, comments): (Vec<_>, Vec<_>) = found.into_iter().partition(|f| !f.comments);
    main.extend(comments);
    main
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rss_atom_and_json_feeds_in_order() {
        let html = r#"<!doctype html><html><head>
            <!-- <link rel="alternate" type="application/rss+xml" href="/commented-out.xml"> -->
            <link rel="stylesheet" href="/style.css">
            <link rel="alternate" type="application/rss+xml" title="Comments" href="/comments/feed/">
            <link rel='alternate' type='application/atom+xml' title='Atom &amp; more' href='atom.xml'>
            <link href="https://other.example.org/feed.json" type="application/feed+json" rel="Alternate home">
            <script>var x = '<link rel="alternate" type="application/rss+xml" href="/in-script.xml">';</script>
            </head><body></body></html>"#;
        let base = Url::parse("https://blog.example.org/posts/").unwrap();
        let links = feed_links(html, &base);
        let urls: Vec<&str> = links.iter().map(|l| l.url.as_str()).collect();
        assert_eq!(
            urls,
            vec![
                "https://blog.example.org/posts/atom.xml",
                "https://other.example.org/feed.json",
                "https://blog.example.org/comments/feed/"
            ]
        );
        assert_eq!(links[0].title.as_deref(), Some("Atom & more"));
    }

    #[test]
    fn title_textarea_script_and_style_hold_text_not_markup() {
        let quoted = r#"<link rel="alternate" type="application/rss+xml" href="/quoted.xml">"#;
        let html = format!(
            "<html><head><title>{quoted}</title><style>{quoted}</style></head><body><textarea>{quoted}</textarea>\
             <script>{quoted}</script><noscript>{quoted}</noscript></body></html>"
        );
        assert!(feed_links(&html, &Url::parse("https://blog.example.org/").unwrap()).is_empty());
    }
}
