//! W3C Webmention, sender side: endpoint discovery and sending, exactly as the
//! Recommendation says, under Cairn's outbound policy and limits.
//!
//! Discovery: the HTTP `Link` header first, then the first `<link>` or `<a>` element whose
//! `rel` (a space-separated list) contains `webmention`, in document order. A relative
//! endpoint resolves against the target's final URL after redirects; an empty `href` means
//! the target itself; a query string in the endpoint is kept; only http(s) endpoints count.
//! Sending: POST `application/x-www-form-urlencoded` with `source` and `target`; any 2xx is
//! success (a 201's `Location` is kept).

use reqwest::header;
use url::Url;

use crate::harvest::discover::start_tags;
use crate::net::{FetchError, Fetcher, Validators};

/// What sending did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Outcome {
    /// The receiver accepted it (2xx).
    Sent { endpoint: String, status: u16, location: Option<String> },
    /// The target advertises no Webmention endpoint (not an error: nothing to do).
    NoEndpoint,
    /// The endpoint refused or failed; `retry` for timeouts, 429 and 5xx.
    Failed { endpoint: Option<String>, status: Option<u16>, reason: String, retry: bool, retry_after: Option<u64> },
}

/// `(uri, rels)` pairs of a `Link` header value.
pub fn parse_link_header(value: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(lt) = rest.find('<') {
        let Some(gt) = rest[lt..].find('>') else { break };
        let uri = rest[lt + 1..lt + gt].trim().to_string();
        let after = &rest[lt + gt + 1..];
        // Parameters run until the next link (a comma outside quotes).
        let mut end = after.len();
        let mut quoted = false;
        for (i, c) in after.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let params = &after[..end];
        let mut rels = Vec::new();
        for p in params.split(';') {
            let p = p.trim();
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("rel")
            {
                rels.extend(v.trim().trim_matches('"').split_whitespace().map(|r| r.to_ascii_lowercase()));
            }
        }
        out.push((uri, rels));
        rest = &after[end..];
    }
    out
}

fn usable(endpoint: Url) -> Option<Url> {
    matches!(endpoint.scheme(), "http" | "https").then_some(endpoint)
}

/// Finds the endpoint in a fetched target: headers first, then the document.
pub fn endpoint_in(final_url: &Url, headers: &header::HeaderMap, body: &[u8]) -> Option<Url> {
    for value in headers.get_all(header::LINK).iter().filter_map(|v| v.to_str().ok()) {
        for (uri, rels) in parse_link_header(value) {
            if rels.iter().any(|r| r == "webmention") {
                return final_url.join(&uri).ok().and_then(usable);
            }
        }
    }
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.to_ascii_lowercase().contains("html"));
    if !is_html {
        return None;
    }
    let text = crate::harvest::parse::decode(body, None);
    let tag =
        start_tags(&text).filter(|t| t.name == "link" || t.name == "a").filter(|t| t.attr("href").is_some()).find(
            |t| t.attr("rel").is_some_and(|r| r.split_ascii_whitespace().any(|r| r.eq_ignore_ascii_case("webmention"))),
        )?;
    let href = tag.attr("href").unwrap_or_default().trim();
    // An empty href is the target itself.
    if href.is_empty() { usable(final_url.clone()) } else { final_url.join(href).ok().and_then(usable) }
}

/// True when the page `html`, fetched from `final_url`, links to `target` from an `<a>`,
/// `<link>`, `<img>` or `<area>` (what verifying a received Webmention looks for).
pub fn links_to(html: &str, final_url: &Url, target: &str) -> bool {
    start_tags(html).any(|t| {
        matches!(t.name.as_str(), "a" | "link" | "img" | "area")
            && ["href", "src"]
                .iter()
                .filter_map(|k| t.attr(k))
                .any(|v| final_url.join(v.trim()).is_ok_and(|u| u.as_str() == target))
    })
}

/// Discovers the target's endpoint (following redirects under the outbound policy).
pub async fn discover(fetcher: &Fetcher, target: &str) -> Result<Option<Url>, FetchError> {
    let fetched =
        fetcher.get(target, &Validators::default(), "text/html, application/xhtml+xml;q=0.9, */*;q=0.5").await?;
    // Reading a page is CPU work: keep it off the async runtime.
    let scan = move || endpoint_in(&fetched.final_url, &fetched.headers, &fetched.body);
    Ok(tokio::task::spawn_blocking(scan).await.unwrap_or(None))
}

/// Discovers and sends one Webmention.
pub async fn send(fetcher: &Fetcher, source: &str, target: &str) -> Outcome {
    let endpoint = match discover(fetcher, target).await {
        Ok(Some(e)) => e,
        Ok(None) => return Outcome::NoEndpoint,
        Err(e) => {
            let retry = matches!(e, FetchError::Timeout { .. } | FetchError::Connect { .. });
            return Outcome::Failed {
                endpoint: None,
                status: None,
                reason: format!("discovery failed: {e}"),
                retry,
                retry_after: None,
            };
        }
    };
    match fetcher.post_form(&endpoint, &[("source", source), ("target", target)]).await {
        Ok(r) if r.status.is_success() => Outcome::Sent {
            endpoint: endpoint.to_string(),
            status: r.status.as_u16(),
            location: r.header(header::LOCATION).and_then(|l| endpoint.join(l).ok()).map(|u| u.to_string()),
        },
        Ok(r) => {
            let s = r.status.as_u16();
            Outcome::Failed {
                endpoint: Some(endpoint.to_string()),
                status: Some(s),
                reason: format!("the endpoint answered {} {}", s, r.status.canonical_reason().unwrap_or(""))
                    .trim()
                    .to_string(),
                retry: s == 429 || r.status.is_server_error(),
                retry_after: r.retry_after(),
            }
        }
        Err(e) => Outcome::Failed {
            endpoint: Some(endpoint.to_string()),
            status: None,
            retry: matches!(e, FetchError::Timeout { .. } | FetchError::Connect { .. }),
            reason: e.to_string(),
            retry_after: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(headers: &[(&str, &str)], body: &str) -> Option<String> {
        let mut h = header::HeaderMap::new();
        for (k, v) in headers {
            h.append(header::HeaderName::from_bytes(k.as_bytes()).unwrap(), header::HeaderValue::from_str(v).unwrap());
        }
        endpoint_in(&Url::parse("https://blog.example.org/posts/1?x=1").unwrap(), &h, body.as_bytes())
            .map(|u| u.to_string())
    }

    #[test]
    fn the_link_header_comes_first_and_rel_is_a_list() {
        let html = r#"<link rel="webmention" href="/from-html">"#;
        assert_eq!(
            find(&[("link", r#"<https://a.example/x>; rel="other", </wm?k=v>; rel="nofollow webmention""#)], html)
                .as_deref(),
            Some("https://blog.example.org/wm?k=v")
        );
        assert_eq!(find(&[("content-type", "text/html")], html).as_deref(), Some("https://blog.example.org/from-html"));
    }

    #[test]
    fn document_order_relative_and_empty_hrefs() {
        let html = r#"<!-- <link rel="webmention" href="/commented"> --><a rel="me webmention" href="endpoint">x</a><link rel="webmention" href="/later">"#;
        assert_eq!(find(&[], html).as_deref(), Some("https://blog.example.org/posts/endpoint"));
        assert_eq!(
            find(&[], r#"<link rel="webmention" href="">"#).as_deref(),
            Some("https://blog.example.org/posts/1?x=1")
        );
        assert_eq!(find(&[], r#"<link rel="webmention">"#), None, "no href: skipped");
        assert_eq!(find(&[], r#"<link rel="webmention" href="mailto:x@y">"#), None);
        assert_eq!(find(&[], r#"<link rel="webmentions" href="/nope">"#), None);
        assert_eq!(find(&[("content-type", "application/json")], r#"<link rel="webmention" href="/x">"#), None);
    }
}
