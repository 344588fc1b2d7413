//! Feed discovery: the `<link rel="alternate">` feeds an HTML page advertises.

use url::Url;

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
    for tag in tags(html) {
        let (name, attrs) = tag;
        if name == "base" {
            if let Some(b) = attrs.iter().find(|(k, _)| k == "href").and_then(|(_, v)| base.join(v).ok()) {
                base = b;
            }
            continue;
        }
        if name != "link" {
            continue;
        }
        let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        let rel = get("rel").unwrap_or_default().to_ascii_lowercase();
        let kind = get("type").unwrap_or_default().to_ascii_lowercase();
        let kind = kind.split(';').next().unwrap_or("").trim().to_string();
        if !rel.split_whitespace().any(|r| r == "alternate") || !FEED_TYPES.contains(&kind.as_str()) {
            continue;
        }
        let Some(href) = get("href").filter(|h| !h.trim().is_empty()) else { continue };
        let Ok(url) = base.join(href.trim()) else { continue };
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        let title = get("title").map(|t| super::parse::decode_entities(&t));
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

/// A tiny tag scanner: `(name, attributes)` of each start tag in the document head and
/// body, enough for `<link>` and `<base>`. Comments and script/style contents are skipped.
pub(crate) fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let bytes = html.as_bytes();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        i += off;
        if html[i..].starts_with("<!--") {
            i = html[i..].find("-->").map_or(html.len(), |e| i + e + 3);
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < bytes.len() && (bytes[j].is_ascii_alphanumeric()) {
            j += 1;
        }
        let name = html[start..j].to_ascii_lowercase();
        // Find the end of the tag, respecting quotes.
        let mut k = j;
        let mut quote: Option<u8> = None;
        while k < bytes.len() {
            match (quote, bytes[k]) {
                (None, b'>') => break,
                (None, q @ (b'"' | b'\'')) => quote = Some(q),
                (Some(q), c) if c == q => quote = None,
                _ => {}
            }
            k += 1;
        }
        if name.is_empty() {
            i = start;
            continue;
        }
        let attrs = parse_attrs(&html[j..k.min(html.len())]);
        if name == "script" || name == "style" {
            let close = format!("</{name}");
            i = html[k.min(html.len())..].to_ascii_lowercase().find(&close).map_or(html.len(), |e| k + e);
        } else {
            i = (k + 1).min(html.len());
        }
        out.push((name, attrs));
        if i >= html.len() {
            break;
        }
    }
    out
}

fn parse_attrs(s: &str) -> Vec<(String, String)> {
    let mut attrs = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        let key = s[ks..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                i = vs;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = s[vs..i.min(s.len())].to_string();
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = s[vs..i].to_string();
            }
        }
        if !key.is_empty() {
            attrs.push((key, super::parse::decode_entities(&value)));
        }
    }
    attrs
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
}
