//! Feed discovery: the `<link rel="alternate">` feeds an HTML page advertises.

use html5gum::Span;
use html5gum::emitters::callback::{CallbackEmitter, CallbackEvent};
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

/// A start tag as the HTML5 tokenizer saw it: lower-case name and the attributes Cairn
/// reads ([`WANTED`]), character references decoded (the first of duplicates wins).
pub(crate) struct StartTag {
    pub name: String,
    attrs: Vec<(&'static str, String)>,
}

impl StartTag {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

/// The only attributes discovery and verification look at; others are never copied.
const WANTED: [&str; 5] = ["href", "rel", "type", "title", "src"];

/// A tokenizer over an untrusted page, by [html5gum], calling `on_event` for each event.
///
/// html5gum is a WHATWG tokenizer (it passes html5lib's tokenizer tests) with no unsafe code
/// and no dependencies. It reads the input in one pass, and its callback interface lends
/// each name, value and text run without copying, so neither many `<` nor many attributes
/// make it quadratic or costly (html5ever's tokenizer checks duplicate attributes by a linear
/// search, and lol_html is a rewriter with far more machinery than finding a few tags needs).
/// Its naive state switching treats the content of `<title>`, `<textarea>`, `<script>`,
/// `<style>` and the like as text, as a browser does, so markup quoted there is never taken
/// for a tag.
pub(crate) fn tokenize<'a, T: 'a>(
    html: &'a str,
    on_event: impl FnMut(CallbackEvent<'_>) -> Option<T> + 'a,
) -> impl Iterator<Item = T> + 'a {
    let mut on_event = on_event;
    let mut emitter = CallbackEmitter::new(move |event: CallbackEvent<'_>, _: Span<()>| on_event(event));
    emitter.naively_switch_states(true);
    html5gum::Tokenizer::new_with_emitter(html, emitter).filter_map(Result::ok)
}

/// The start tags of an untrusted page, in document order.
pub(crate) fn start_tags(html: &str) -> impl Iterator<Item = StartTag> + '_ {
    let mut current: Option<StartTag> = None;
    // Where the value of the attribute being read goes, if it is wanted.
    let mut slot: Option<usize> = None;
    tokenize(html, move |event| {
        match event {
            CallbackEvent::OpenStartTag { name } => {
                current = Some(StartTag { name: String::from_utf8_lossy(name).into_owned(), attrs: Vec::new() });
                slot = None;
            }
            CallbackEvent::AttributeName { name } => {
                slot = None;
                if let Some(tag) = current.as_mut()
                    && let Some(key) = WANTED.iter().find(|w| w.as_bytes() == name)
                    && tag.attr(key).is_none()
                {
                    // A name without a value has the empty value.
                    tag.attrs.push((key, String::new()));
                    slot = Some(tag.attrs.len() - 1);
                }
            }
            CallbackEvent::AttributeValue { value } => {
                if let (Some(tag), Some(i)) = (current.as_mut(), slot.take()) {
                    tag.attrs[i].1 = String::from_utf8_lossy(value).into_owned();
                }
            }
            CallbackEvent::CloseStartTag { .. } => return current.take(),
            _ => {}
        }
        None
    })
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
