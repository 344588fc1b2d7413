//! Outbound HTTP with a safety policy: every request Cairn makes on behalf of a learner or
//! instructor (feeds, feed discovery, later Webmention) goes through [`Fetcher`].
//!
//! The policy refuses private, loopback, link-local, unspecified and other non-global
//! addresses — for IP literals in any spelling (the URL parser normalises `2130706433`,
//! `0x7f.1`, `[::ffff:127.0.0.1]`, …) and for every address a host name resolves to —
//! before the first request and after every redirect. The only exceptions are exact
//! origins (`scheme://host:port`) listed in configuration or `CAIRN_ALLOW_ORIGINS`.
//! Redirects are followed by hand (at most [`MAX_REDIRECTS`]) so each hop is checked and
//! a permanent move can be reported. Bodies are read up to a cap (counted after gzip,
//! deflate or brotli are undone) and either refused beyond it or, where the first part is
//! all a reader needs, cut off there.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};

/// Most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;
/// Most 307/308 redirects a POST follows (each one re-sends the body).
pub const MAX_POST_REDIRECTS: usize = 3;
/// How long an idle connection is kept for reuse. Servers close idle keep-alive connections
/// after a few seconds (actix-web and Apache after 5, Cairn's own server included); a
/// connection reused just as its server closes it fails with no answer ("connection closed
/// before message completed"), which a Webmention takes for a transport error and retries a
/// minute later. Under load the two clocks drift and that race is common. Kept below the
/// shortest usual keep-alive, a pooled connection is never one its server is closing.
pub const POOL_IDLE: Duration = Duration::from_secs(2);

/// Why a fetch failed, in words an instructor can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("'{0}' is not a web address (http:// or https://)")]
    BadUrl(String),
    #[error("{0} is a private, loopback or otherwise internal address; Cairn does not fetch those")]
    Forbidden(String),
    #[error("cannot reach {url}: {message}")]
    Connect { url: String, message: String },
    #[error("{url} did not answer within {seconds} seconds")]
    Timeout { url: String, seconds: u64 },
    #[error("too many redirects (more than {MAX_REDIRECTS}) starting at {0}")]
    TooManyRedirects(String),
    #[error("too many redirects (more than {MAX_POST_REDIRECTS}) for a POST starting at {0}")]
    TooManyPostRedirects(String),
    #[error("{url} answered with a redirect but no usable Location header")]
    BadRedirect { url: String },
    #[error("the response from {url} is larger than {limit} bytes and was cut off")]
    TooLarge { url: String, limit: usize },
    #[error("{url} sent a broken response: {message}")]
    Body { url: String, message: String },
}

/// Exact origins exempt from the address checks.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    origins: HashSet<String>,
    hosts: HashSet<String>,
}

impl OutboundPolicy {
    /// Parses a list of origins such as `http://127.0.0.1:8081`; paths are not allowed.
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(origins: I) -> Result<OutboundPolicy, String> {
        let mut policy = OutboundPolicy::default();
        for raw in origins {
            let raw = raw.as_ref().trim();
            if raw.is_empty() {
                continue;
            }
            let url =
                Url::parse(raw).map_err(|e| format!("'{raw}' is not an origin like http://127.0.0.1:8081 ({e})"))?;
            if !matches!(url.scheme(), "http" | "https")
                || url.host_str().is_none()
                || url.path() != "/"
                || url.query().is_some()
            {
                return Err(format!(
                    "'{raw}' is not an origin like http://127.0.0.1:8081 (scheme, host and port only)"
                ));
            }
            policy.hosts.insert(url.host_str().unwrap_or_default().to_ascii_lowercase());
            policy.origins.insert(url.origin().ascii_serialization());
        }
        Ok(policy)
    }

    /// True when `url`'s exact origin is on the allow list.
    pub fn allows_origin(&self, url: &Url) -> bool {
        self.origins.contains(&url.origin().ascii_serialization())
    }

    /// Checks what can be checked without DNS: scheme, IP literals, allowed origins.
    pub fn check_url(&self, url: &Url) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::BadUrl(url.to_string()));
        }
        if self.allows_origin(url) {
            return Ok(());
        }
        match url.host() {
            None => Err(FetchError::BadUrl(url.to_string())),
            Some(url::Host::Ipv4(ip)) if !is_global(IpAddr::V4(ip)) => Err(FetchError::Forbidden(url.to_string())),
            Some(url::Host::Ipv6(ip)) if !is_global(IpAddr::V6(ip)) => Err(FetchError::Forbidden(url.to_string())),
            Some(url::Host::Domain(d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                // A host allowed for one origin is not allowed on other ports or schemes.
                if self.hosts.contains(&d) || d == "localhost" || d.ends_with(".localhost") {
                    Err(FetchError::Forbidden(url.to_string()))
                } else {
                    Ok(())
                }
            }
            Some(_) => Ok(()),
        }
    }
}

/// True for addresses on the public Internet.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_global_v4(v4);
            }
            let seg = v6.segments();
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local
                || (seg[0] & 0xffc0) == 0xfe80 // link-local
                || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || (seg[0] == 0x0064 && seg[1] == 0xff9b) // NAT64 can reach IPv4 internals
                || (seg[0] == 0x2002) // 6to4 embeds IPv4
                || (seg[0] == 0 && seg[1] == 0 && seg[2] == 0 && seg[3] == 0 && seg[4] == 0 && seg[5] == 0)) // IPv4-compatible
        }
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240) // reserved
}

/// DNS resolution that drops non-global addresses (unless the host is on the allow list).
struct SafeResolver {
    allowed_hosts: HashSet<String>,
}

impl reqwest::dns::Resolve for SafeResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let allowed = self.allowed_hosts.contains(&host);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let total = addrs.len();
            let kept: Vec<SocketAddr> = addrs.into_iter().filter(|a| allowed || is_global(a.ip())).collect();
            if kept.is_empty() {
                let msg = if total == 0 {
                    format!("{host} has no address")
                } else {
                    format!("{host} resolves only to private or internal addresses; Cairn does not fetch those")
                };
                return Err(msg.into());
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Limits and identity for outbound requests.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    pub user_agent: String,
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    pub max_body: usize,
    pub policy: OutboundPolicy,
}

/// What a successful exchange returned.
#[derive(Debug)]
pub struct Fetched {
    /// The URL asked for.
    pub requested: Url,
    /// The URL after redirects.
    pub final_url: Url,
    /// True when every redirect on the way was permanent (301/308): the new address
    /// should replace the stored one.
    pub moved_permanently: bool,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// True when the body went on past the cap and only its first part was kept.
    pub truncated: bool,
}

impl Fetched {
    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Retry-After in seconds (delta-seconds or an HTTP date), if given.
    pub fn retry_after(&self) -> Option<u64> {
        let v = self.header(header::RETRY_AFTER)?.trim();
        if let Ok(secs) = v.parse::<u64>() {
            return Some(secs);
        }
        let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
        let secs = when.timestamp() - chrono::Utc::now().timestamp();
        Some(secs.max(0) as u64)
    }
}

/// Conditional-GET validators from the last successful fetch.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// What to do with a body larger than the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Refuse,
    KeepFirstPart,
}

/// The outbound HTTP client. Cheap to clone.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    config: Arc<FetchConfig>,
}

impl Fetcher {
    pub fn new(config: FetchConfig) -> anyhow::Result<Fetcher> {
        install_crypto_provider();
        let resolver = SafeResolver { allowed_hosts: config.policy.hosts.clone() };
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            .timeout(config.total_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .pool_max_idle_per_host(4)
            .pool_idle_timeout(POOL_IDLE)
            .build()?;
        Ok(Fetcher { client, config: Arc::new(config) })
    }

    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// The same client, limits and policy, introducing itself as `user_agent`: each kind of
    /// request says what it is (harvesting, sending Webmentions) to the sites it reaches.
    pub fn with_user_agent(&self, user_agent: String) -> Fetcher {
        let config = FetchConfig { user_agent, ..(*self.config).clone() };
        Fetcher { client: self.client.clone(), config: Arc::new(config) }
    }

    fn user_agent(&self) -> HeaderValue {
        HeaderValue::from_str(&self.config.user_agent).unwrap_or_else(|_| HeaderValue::from_static("Cairn"))
    }

    /// GETs `url`, following up to [`MAX_REDIRECTS`] checked redirects, with conditional
    /// headers when validators are given. Any status is returned as `Fetched`; only
    /// transport problems, policy refusals and oversized bodies are errors.
    pub async fn get(&self, url: &str, validators: &Validators, accept: &str) -> Result<Fetched, FetchError> {
        self.get_with(url, validators, accept, Overflow::Refuse).await
    }

    /// Like [`Fetcher::get`], but a body past the cap is not an error: its first part (up to
    /// the cap) is returned with `truncated` set. For readers that only need the start of a
    /// page, such as the `<head>` where a Webmention endpoint is advertised.
    pub async fn get_first_part(&self, url: &str, accept: &str) -> Result<Fetched, FetchError> {
        self.get_with(url, &Validators::default(), accept, Overflow::KeepFirstPart).await
    }

    async fn get_with(
        &self,
        url: &str,
        validators: &Validators,
        accept: &str,
        overflow: Overflow,
    ) -> Result<Fetched, FetchError> {
        let requested = Url::parse(url.trim()).map_err(|_| FetchError::BadUrl(url.to_string()))?;
        let mut current = requested.clone();
        let mut permanent = true;
        for hop in 0..=MAX_REDIRECTS {
            self.config.policy.check_url(&current)?;
            let mut req = self
                .client
                .get(current.clone())
                .header(header::ACCEPT, accept)
                .header(header::USER_AGENT, self.user_agent());
            if let Some(etag) = &validators.etag {
                req = req.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &validators.last_modified {
                req = req.header(header::IF_MODIFIED_SINCE, lm);
            }
            let res = req.send().await.map_err(|e| self.transport_error(&current, e))?;
            let status = res.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let location = redirect_target(&res, &current)?;
                if hop == MAX_REDIRECTS {
                    return Err(FetchError::TooManyRedirects(requested.to_string()));
                }
                permanent &= matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT);
                current = location;
                continue;
            }
            let headers = res.headers().clone();
            let (body, truncated) = self.read_capped(&current, res, overflow).await?;
            let moved_permanently = permanent && current != requested;
            return Ok(Fetched { requested, final_url: current, moved_permanently, status, headers, body, truncated });
        }
        Err(FetchError::TooManyRedirects(requested.to_string()))
    }

    /// POSTs an URL-encoded form to `url` under the same policy and limits. A 307 or 308
    /// answer is followed by POSTing the same body to its `Location` (checked against the
    /// policy again), at most [`MAX_POST_REDIRECTS`] times: those two statuses promise the
    /// method and body are kept (RFC 9110, 15.4.8 and 15.4.9). Other redirects are returned
    /// as they came, with `final_url` the address that answered.
    pub async fn post_form(&self, url: &Url, form: &[(&str, &str)]) -> Result<Fetched, FetchError> {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut current = url.clone();
        for hop in 0..=MAX_POST_REDIRECTS {
            self.config.policy.check_url(&current)?;
            let res = self
                .client
                .post(current.clone())
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::USER_AGENT, self.user_agent())
                .body(body.clone())
                .send()
                .await
                .map_err(|e| self.transport_error(&current, e))?;
            let status = res.status();
            if matches!(status, StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT) {
                let location = redirect_target(&res, &current)?;
                if hop == MAX_POST_REDIRECTS {
                    break;
                }
                current = location;
                continue;
            }
            let headers = res.headers().clone();
            let (body, truncated) = self.read_capped(&current, res, Overflow::Refuse).await?;
            let (requested, final_url) = (url.clone(), current);
            return Ok(Fetched { requested, final_url, moved_permanently: false, status, headers, body, truncated });
        }
        Err(FetchError::TooManyPostRedirects(url.to_string()))
    }

    /// POSTs a JSON body with extra headers to `url` under the same policy and limits (a
    /// webhook delivery). Redirects are not followed: the answer is returned as it came.
    pub async fn post_json(&self, url: &Url, body: &str, headers: &[(&str, String)]) -> Result<Fetched, FetchError> {
        self.config.policy.check_url(url)?;
        let mut req = self
            .client
            .post(url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, self.user_agent())
            .body(body.to_string());
        for (name, value) in headers {
            req = req.header(*name, value.as_str());
        }
        let res = req.send().await.map_err(|e| self.transport_error(url, e))?;
        let (status, headers) = (res.status(), res.headers().clone());
        let (body, truncated) = self.read_capped(url, res, Overflow::KeepFirstPart).await?;
        Ok(Fetched {
            requested: url.clone(),
            final_url: url.clone(),
            moved_permanently: false,
            status,
            headers,
            body,
            truncated,
        })
    }

    /// Reads the body up to the cap. Chunks arrive already decompressed, so the cap bounds
    /// what a small gzip, deflate or brotli body inflates to, not only what crossed the wire.
    async fn read_capped(
        &self,
        url: &Url,
        mut res: reqwest::Response,
        overflow: Overflow,
    ) -> Result<(Vec<u8>, bool), FetchError> {
        let limit = self.config.max_body;
        let too_large = || FetchError::TooLarge { url: url.to_string(), limit };
        if overflow == Overflow::Refuse && res.content_length().is_some_and(|n| n as usize > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) => {
                    let room = limit - body.len();
                    if chunk.len() > room {
                        if overflow == Overflow::Refuse {
                            return Err(too_large());
                        }
                        // Dropping the response here closes the connection: the rest is never read.
                        body.extend_from_slice(&chunk[..room]);
                        return Ok((body, true));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok((body, false)),
                Err(e) => return Err(self.transport_error(url, e)),
            }
        }
    }

    fn transport_error(&self, url: &Url, e: reqwest::Error) -> FetchError {
        if e.is_timeout() {
            return FetchError::Timeout { url: url.to_string(), seconds: self.config.total_timeout.as_secs() };
        }
        // Walk the cause chain: the resolver's refusal sits a few levels down.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message = s.to_string();
            source = s.source();
        }
        if message.contains("private or internal addresses") {
            return FetchError::Forbidden(url.to_string());
        }
        if e.is_body() || e.is_decode() {
            return FetchError::Body { url: url.to_string(), message };
        }
        FetchError::Connect { url: url.to_string(), message }
    }
}

/// Installs the process-wide rustls crypto provider (ring) once; reqwest and lettre need it.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An `Accept` header for feeds, preferring feed types over HTML.
pub const ACCEPT_FEEDS: &str = "application/atom+xml, application/rss+xml, application/feed+json, application/json;q=0.9, \
     application/xml;q=0.9, text/xml;q=0.9, text/html;q=0.7, */*;q=0.5";

/// Header value helper.
pub fn header_value(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

/// The absolute address a redirect answer points to, resolved against the URL that answered.
fn redirect_target(res: &reqwest::Response, current: &Url) -> Result<Url, FetchError> {
    res.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| current.join(l).ok())
        .ok_or_else(|| FetchError::BadRedirect { url: current.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: &OutboundPolicy, url: &str) -> Result<(), FetchError> {
        policy.check_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn internal_addresses_are_refused_in_every_spelling() {
        let p = OutboundPolicy::default();
        for url in [
            "http://127.0.0.1/",
            "http://localhost/",
            "http://LOCALHOST./x",
            "http://foo.localhost/",
            "http://0.0.0.0/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://017700000001/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://100.64.0.1/",
            "http://[::]/",
        ] {
            assert!(matches!(check(&p, url), Err(FetchError::Forbidden(_))), "{url}");
        }
        for url in ["ftp://example.org/", "file:///etc/passwd", "gopher://x/"] {
            assert!(matches!(check(&p, url), Err(FetchError::BadUrl(_))), "{url}");
        }
        assert!(check(&p, "https://example.org/feed").is_ok());
        assert!(check(&p, "http://93.184.215.14/").is_ok());
    }

    #[test]
    fn only_the_exact_allowed_origin_is_exempt() {
        let p = OutboundPolicy::new(["http://127.0.0.1:8081", "http://localhost:9000"]).unwrap();
        assert!(check(&p, "http://127.0.0.1:8081/feed.xml").is_ok());
        assert!(check(&p, "http://localhost:9000/x").is_ok());
        assert!(check(&p, "http://127.0.0.1:8082/").is_err());
        assert!(check(&p, "https://127.0.0.1:8081/").is_err());
        assert!(check(&p, "http://localhost:9001/").is_err());
        assert!(OutboundPolicy::new(["http://x.org/path"]).is_err());
        assert!(OutboundPolicy::new(["not an origin"]).is_err());
    }
}
