//! W3C Webmention, sender side: endpoint discovery and sending, exactly as the
//! Recommendation says, under Cairn's outbound policy and limits.
//!
//! Discovery: the HTTP `Link` header first, then the first `<link>` or `<a>` element whose
//! `rel` (a space-separated list) contains `webmention`, in document order. A relative
//! endpoint resolves against the target's final URL after redirects; an empty `href` means
//! the target itself; a query string in the endpoint is kept; only http(s) endpoints count.
//! A target that answers 404 or 410 is no post: nothing is sent to it. A page past the body
//! cap is read up to the cap, which holds its `<head>`.
//! Sending: POST `application/x-www-form-urlencoded` with `source` and `target`; any 2xx is
//! success (a 201's `Location` is kept); a 307 or 308 is followed with the same POST.

use reqwest::{StatusCode, header};
use url::Url;

use crate::html::tokenize::start_tags;
use crate::net::{FetchError, Fetcher};

/// What sending did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Outcome {
    /// The receiver accepted it (2xx).
    Sent { endpoint: String, status: u16, location: Option<String> },
    /// The target advertises no Webmention endpoint (not an error: nothing to do).
    NoEndpoint,
    /// The target answered 404 or 410: there is no post to mention, whatever its error page
    /// advertises. Refused for good.
    NotATarget { status: u16 },
    /// The endpoint refused or failed; `retry` for timeouts, 429 and 5xx.
    Failed { endpoint: Option<String>, status: Option<u16>, reason: String, retry: bool, retry_after: Option<u64> },
}

/// The User-Agent of requests made to send a Webmention (discovery and the POST), naming
/// the instance as the Recommendation's senders do.
pub fn user_agent(base_url: &str) -> String {
    format!("Cairn/{} (Webmention sender; +{base_url})", env!("CARGO_PKG_VERSION"))
}

/// The outbound client as a Webmention sender: the same limits and policy, its own
/// User-Agent. The outbox and `cairn webmention send` both send through one.
#[derive(Clone)]
pub struct Sender {
    fetcher: Fetcher,
}

impl Sender {
    pub fn new(fetcher: &Fetcher, base_url: &str) -> Sender {
        Sender { fetcher: fetcher.with_user_agent(user_agent(base_url)) }
    }
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
    let text = crate::html::decode::decode(body, None);
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

/// What fetching a target found.
enum Discovery {
    Endpoint(Url),
    NoEndpoint,
    /// 404 or 410.
    Missing(StatusCode),
    /// 429 or 5xx: the target may be there later.
    Unavailable(StatusCode, Option<u64>),
}

const ACCEPT_HTML: &str = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5";

/// Fetches the target (following redirects under the outbound policy) and finds its endpoint.
/// A page past the body cap is read up to the cap: the endpoint is advertised in the `Link`
/// header or the `<head>`, which come first.
async fn discover_at(fetcher: &Fetcher, target: &str) -> Result<Discovery, FetchError> {
    let fetched = fetcher.get_first_part(target, ACCEPT_HTML).await?;
    let status = fetched.status;
    if matches!(status, StatusCode::NOT_FOUND | StatusCode::GONE) {
        return Ok(Discovery::Missing(status));
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Ok(Discovery::Unavailable(status, fetched.retry_after()));
    }
    // Reading a page is CPU work: keep it off the async runtime.
    let scan = move || endpoint_in(&fetched.final_url, &fetched.headers, &fetched.body);
    Ok(tokio::task::spawn_blocking(scan).await.unwrap_or(None).map_or(Discovery::NoEndpoint, Discovery::Endpoint))
}

/// Discovers the target's endpoint (following redirects under the outbound policy); `None`
/// when it advertises none or is not there.
pub async fn discover(fetcher: &Fetcher, target: &str) -> Result<Option<Url>, FetchError> {
    Ok(match discover_at(fetcher, target).await? {
        Discovery::Endpoint(url) => Some(url),
        _ => None,
    })
}

/// Why nothing is sent to a target that answered `status` (404 or 410).
pub fn not_a_target(status: u16) -> String {
    let words = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
    format!("the target answered {status} {words}: there is no post to mention, so nothing was sent")
}

fn status_words(status: StatusCode) -> String {
    format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")).trim().to_string()
}

fn retryable(e: &FetchError) -> bool {
    matches!(e, FetchError::Timeout { .. } | FetchError::Connect { .. })
}

/// Discovers and sends one Webmention: one attempt, no waiting. Retrying is the caller's
/// ([`crate::notify::outbox`] schedules it, in the queue or in the foreground).
pub async fn send(sender: &Sender, source: &str, target: &str) -> Outcome {
    let fetcher = &sender.fetcher;
    let endpoint = match discover_at(fetcher, target).await {
        Ok(Discovery::Endpoint(e)) => e,
        Ok(Discovery::NoEndpoint) => return Outcome::NoEndpoint,
        Ok(Discovery::Missing(status)) => return Outcome::NotATarget { status: status.as_u16() },
        Ok(Discovery::Unavailable(status, retry_after)) => {
            return Outcome::Failed {
                endpoint: None,
                status: Some(status.as_u16()),
                reason: format!("the target answered {}", status_words(status)),
                retry: true,
                retry_after,
            };
        }
        Err(e) => {
            return Outcome::Failed {
                endpoint: None,
                status: None,
                reason: format!("discovery failed: {e}"),
                retry: retryable(&e),
                retry_after: None,
            };
        }
    };
    match fetcher.post_form(&endpoint, &[("source", source), ("target", target)]).await {
        // After a 307/308 the receiver is the address that answered.
        Ok(r) if r.status.is_success() => Outcome::Sent {
            endpoint: r.final_url.to_string(),
            status: r.status.as_u16(),
            location: r.header(header::LOCATION).and_then(|l| r.final_url.join(l).ok()).map(|u| u.to_string()),
        },
        Ok(r) if r.status.is_redirection() => {
            // 301, 302 and 303 let a client turn the POST into a GET (RFC 9110, 15.4.2-4), which
            // would not deliver the Webmention; the Recommendation asks for no more. Sending
            // it elsewhere is left to a person who can check the new address.
            let to = r.header(header::LOCATION).unwrap_or("nowhere").to_string();
            Outcome::Failed {
                endpoint: Some(r.final_url.to_string()),
                status: Some(r.status.as_u16()),
                reason: format!(
                    "the endpoint answered {} (to {to}); only 307 and 308 are followed with the same POST",
                    status_words(r.status)
                ),
                retry: false,
                retry_after: None,
            }
        }
        Ok(r) => {
            let s = r.status.as_u16();
            Outcome::Failed {
                endpoint: Some(r.final_url.to_string()),
                status: Some(s),
                reason: format!("the endpoint answered {}", status_words(r.status)),
                retry: s == 429 || r.status.is_server_error(),
                retry_after: r.retry_after(),
            }
        }
        Err(e) => Outcome::Failed {
            endpoint: Some(endpoint.to_string()),
            status: None,
            retry: retryable(&e),
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

    #[test]
    fn markup_inside_title_and_textarea_is_text_not_an_endpoint() {
        let quoted = r#"<link rel="webmention" href="/quoted"><a rel="webmention" href="/quoted-a">x</a>"#;
        let only_text = format!("<html><head><title>{quoted}</title></head><body><textarea>{quoted}</textarea>");
        assert_eq!(find(&[], &only_text), None);
        let then_real = format!("{only_text}<link rel=\"webmention\" href=\"/real\"></body></html>");
        assert_eq!(find(&[], &then_real).as_deref(), Some("https://blog.example.org/real"));
    }
}
