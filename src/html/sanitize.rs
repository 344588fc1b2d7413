//! Sanitising untrusted HTML: no scripts, styles or event handlers, links resolved and
//! checked, and bounds on what one hostile fragment can cost.

use std::borrow::Cow;

use ammonia::UrlRelative;
use url::Url;

use super::text::push_escaped;

/// Most bytes of an item's HTML given to the sanitiser: far more than a summary keeps, and a
/// bound on what one hostile item can cost.
const MAX_SANITISE_BYTES: usize = 256 * 1024;
/// The only URL schemes a summary may link to, checked after relative links are resolved.
const SUMMARY_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

/// Sanitises untrusted HTML: no scripts, styles, event handlers; relative links made
/// absolute against `base`, and then every link that is not http, https or mailto dropped.
pub fn sanitize_html(html: &str, base: &Url) -> String {
    sanitize_with_text(html, base).0
}

/// [`sanitize_html`], and the plain text of `html` as
/// [`html_to_text`](super::text::html_to_text) gives it when `html` is short enough to be
/// sanitised whole; one tokenizer pass serves both.
pub(crate) fn sanitize_with_text(html: &str, base: &Url) -> (String, Option<String>) {
    // Building the sanitiser's tables is costly: keep one per thread and only change the base.
    thread_local! {
        static CLEANER: std::cell::RefCell<ammonia::Builder<'static>> = std::cell::RefCell::new({
            let mut b = ammonia::Builder::default();
            b.link_rel(Some("noopener noreferrer nofollow ugc"));
            b.url_schemes(SUMMARY_SCHEMES.into_iter().collect());
            b
        });
    }
    if !html.contains('<') && !html.contains('&') {
        return (html.to_string(), Some(html.to_string()));
    }
    let whole = html.len() <= MAX_SANITISE_BYTES;
    let (html, text) = retokenize(cut_at_char(html, MAX_SANITISE_BYTES));
    let base = base.clone();
    let clean = CLEANER.with(|c| {
        let mut b = c.borrow_mut();
        // ammonia checks the scheme of absolute URLs only; a relative one is resolved here
        // and its result checked too, so no base can turn it into `javascript:`.
        b.url_relative(UrlRelative::Custom(Box::new(ResolveAllowed(base))));
        b.clean(&html).to_string()
    });
    (clean, whole.then_some(text))
}

/// Most attributes kept on one tag before sanitising.
const MAX_ATTRIBUTES: usize = 32;
/// Deepest nesting kept before sanitising.
const MAX_DEPTH: usize = 100;
const VOID_ELEMENTS: [&[u8]; 13] =
    [b"area", b"base", b"br", b"col", b"embed", b"hr", b"img", b"input", b"link", b"meta", b"source", b"track", b"wbr"];

/// Re-writes untrusted HTML through the linear tokenizer with at most [`MAX_ATTRIBUTES`]
/// attributes a tag and [`MAX_DEPTH`] levels of nesting. The sanitiser's tree builder
/// checks duplicate attributes and open elements by linear searches, so thousands of
/// either in one item would cost it quadratic time; comments and doctypes go here too.
/// Returns the HTML, and the text [`html_to_text`](super::text::html_to_text) would give.
fn retokenize(html: &str) -> (String, String) {
    use html5gum::emitters::callback::CallbackEvent;
    let mut out = String::with_capacity(html.len() + html.len() / 8);
    let mut text = String::with_capacity(html.len());
    let mut hidden = false;
    let name_ok =
        |n: &[u8]| !n.is_empty() && n.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':' | b'_'));
    let mut depth = 0usize;
    // The start tag being written: None while skipping one.
    let mut open: Option<(String, usize)> = None;
    let mut value_wanted = false;
    // Everything is written into `out` and `text`; the tokenizer's items are only driven.
    super::tokenize::tokenize(html, |event| match event {
        CallbackEvent::String { value } => {
            let value = String::from_utf8_lossy(value);
            push_escaped(&mut out, &value);
            if !hidden {
                text.push_str(&value);
            }
            None::<()>
        }
        CallbackEvent::OpenStartTag { name } => {
            hidden = matches!(name, b"script" | b"style");
            text.push(' ');
            open = name_ok(name).then(|| (format!("<{}", String::from_utf8_lossy(name)), 0));
            value_wanted = false;
            None
        }
        CallbackEvent::AttributeName { name } => {
            value_wanted = false;
            if let Some((tag, count)) = open.as_mut()
                && *count < MAX_ATTRIBUTES
                && name_ok(name)
            {
                tag.push(' ');
                tag.push_str(&String::from_utf8_lossy(name));
                tag.push_str("=\"\"");
                *count += 1;
                value_wanted = true;
            }
            None
        }
        CallbackEvent::AttributeValue { value } => {
            if std::mem::take(&mut value_wanted)
                && let Some((tag, _)) = open.as_mut()
            {
                tag.pop();
                push_escaped(tag, &String::from_utf8_lossy(value).replace('"', "&quot;"));
                tag.push('"');
            }
            None
        }
        CallbackEvent::CloseStartTag { self_closing } => {
            let (mut tag, _) = open.take()?;
            let name = tag[1..].split(' ').next().unwrap_or("").as_bytes();
            if !(self_closing || VOID_ELEMENTS.contains(&name)) {
                if depth >= MAX_DEPTH {
                    return None;
                }
                depth += 1;
            }
            tag.push('>');
            out.push_str(&tag);
            None
        }
        CallbackEvent::EndTag { name } => {
            hidden = false;
            text.push(' ');
            if name_ok(name) {
                depth = depth.saturating_sub(1);
                out.push_str("</");
                out.push_str(&String::from_utf8_lossy(name));
                out.push('>');
            }
            None
        }
        _ => None,
    })
    .for_each(drop);
    (out, text)
}

/// Resolves a relative URL against the base and keeps it only when the result is allowed.
struct ResolveAllowed(Url);

impl<'a> ammonia::UrlRelativeEvaluate<'a> for ResolveAllowed {
    fn evaluate<'url>(&self, rel: &'url str) -> Option<Cow<'url, str>> {
        let url = self.0.join(rel).ok().filter(|u| SUMMARY_SCHEMES.contains(&u.scheme()))?;
        Some(Cow::Owned(url.to_string()))
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `html`, sanitised already, cut to at most `max_chars` characters (and an ellipsis), with
/// any tag left open closed.
pub(crate) fn truncate_html(html: String, max_chars: usize) -> String {
    if html.chars().count() <= max_chars {
        return html;
    }
    // Cut on a character boundary, then let the sanitiser close any open tags. Every URL
    // left is already absolute and allowed.
    let cut: String = html.chars().take(max_chars).collect();
    let cut = match cut.rfind('<') {
        Some(i) if !cut[i..].contains('>') => cut[..i].to_string(),
        _ => cut,
    };
    ammonia::Builder::default()
        .url_schemes(SUMMARY_SCHEMES.into_iter().collect())
        .url_relative(UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer nofollow ugc"))
        .clean(&format!("{cut}…"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::decode::decode_entities;
    use crate::html::text::html_to_text;

    fn base() -> Url {
        Url::parse("https://blog.example.org/feed/").unwrap()
    }

    #[test]
    fn hostile_markup_is_read_in_linear_time() {
        let started = std::time::Instant::now();
        let lt = "<".repeat(1 << 20);
        html_to_text(&lt);
        decode_entities(&"&".repeat(1 << 20));
        sanitize_html(&format!("<p>{lt}"), &base());
        let attrs: String = (0..20_000).map(|i| format!(" a{i}=x")).collect();
        let clean = sanitize_html(&format!("<p{attrs}>hi</p>"), &base());
        assert_eq!(clean, "<p>hi</p>");
        let deep = sanitize_html(&format!("{}#el30-data", "<div>".repeat(40_000)), &base());
        assert!(deep.contains("#el30-data") && deep.matches("<div>").count() == MAX_DEPTH, "{}", deep.len());
        // Quadratic work on these inputs takes hours; linear work well under a second.
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
    }
}
