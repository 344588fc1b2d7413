//! The public Open Badges documents (Issuer, BadgeClasses, Assertions, the revocation list)
//! and verification pages, kept in memory as the bytes sent, with their gzip form and a strong
//! ETag. An entry is served only while the store's document generation is the one it was
//! built at (see `db::documents`). A change made through this server (any request other than
//! GET, HEAD or OPTIONS) retires the entries before the next request is answered; a commit from
//! another process (`cairn revoke`, a job of another server on the same store) is seen by every
//! request that starts more than [`FRESH_FOR`] after it. Reading the generation costs a query,
//! so it is read at most once per [`FRESH_FOR`] rather than on every request.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::db::documents::Watch;

/// Bytes the cache holds in all (bodies, their gzip forms and a fixed charge per entry).
const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Charged per entry besides its bytes, so that the entry count is bounded too
/// (at most `MAX_BYTES / ENTRY_CHARGE`, 65,536).
const ENTRY_CHARGE: u64 = 1024;
/// Documents larger than this (a huge revocation list) are served but not kept.
const MAX_ENTRY: usize = 4 * 1024 * 1024;
/// How long one reading of the generation answers for: the most by which another process's
/// commit can be late (a verifier's shared cache may keep a document a minute anyway).
pub const FRESH_FOR: Duration = Duration::from_millis(2);

/// What a cached entry is.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum DocKey {
    Issuer,
    Revocations,
    BadgeClass(String),
    Assertion(String),
    /// The verification page as an anonymous visitor sees it.
    Page(String),
    /// An award's Open Badges 3.0 credential.
    Credential(String),
    /// A signed status list, by number.
    StatusList(i64),
    /// The institution's DID document.
    DidDocument,
}

/// How a kind of document may be kept by others.
#[derive(Clone, Copy)]
pub struct Policy {
    pub content_type: &'static str,
    pub cache_control: &'static str,
    pub vary: &'static str,
    /// Open to scripts of any origin (the JSON-LD documents verifiers fetch from browsers).
    pub cors: bool,
}

/// Assertions and the revocation list: a revocation must reach verifiers soon, so shared
/// caches may keep a copy one minute and must then ask again (a 304 when nothing changed).
pub const ASSERTION: Policy = Policy {
    content_type: "application/ld+json",
    cache_control: "public, max-age=60, must-revalidate",
    vary: "Accept, Accept-Encoding",
    cors: true,
};
/// The revocation list is not negotiated: one representation per encoding.
pub const REVOCATIONS: Policy = Policy { vary: "Accept-Encoding", ..ASSERTION };
/// BadgeClasses and the Issuer change only by an edit, and an edit revokes nothing.
pub const DESCRIPTION: Policy = Policy { cache_control: "public, max-age=300, must-revalidate", ..ASSERTION };
/// A signed credential never changes; it disappears only with its award.
pub const CREDENTIAL: Policy = Policy { content_type: "application/vc+ld+json", ..DESCRIPTION };
/// A status list changes with each revocation: kept as briefly as the revocation list.
pub const STATUS_LIST: Policy = Policy { content_type: "application/vc+ld+json", ..REVOCATIONS };
/// The DID document changes only when a key is rotated.
pub const DID_DOCUMENT: Policy =
    Policy { content_type: "application/did+ld+json", vary: "Accept-Encoding", ..DESCRIPTION };
/// The verification page carries the visitor's form token: only their browser may keep it,
/// and it asks again each time.
pub const PAGE: Policy = Policy {
    content_type: "text/html; charset=utf-8",
    cache_control: "private, no-cache",
    vary: "Accept, Accept-Encoding, Cookie",
    cors: false,
};

/// A document as sent.
pub struct Doc {
    /// `None` when the generation could not be read: such a document is never kept.
    generation: Option<i64>,
    /// Unix time from which the entry is out of date (a page that will say "expired").
    until: Option<i64>,
    /// The body; for a page, split where the visitor's form token goes.
    body: Bytes,
    tail: Option<Bytes>,
    gzip: Option<Bytes>,
    /// Hex SHA-256 of the body (of both halves for a page).
    hash: String,
    /// The ETags of a whole document, plain and gzip, made once.
    tags: Option<(HeaderValue, HeaderValue)>,
}

impl Doc {
    /// A whole document, made at `generation`.
    pub fn whole(generation: Option<i64>, until: Option<i64>, body: Vec<u8>) -> Doc {
        let hash = hex::encode(Sha256::digest(&body));
        let gzip = gzip(&body).map(Bytes::from);
        let tag = |suffix: &str| HeaderValue::from_str(&format!("\"{}{suffix}\"", &hash[..32])).ok();
        let tags = tag("").zip(tag("-gz"));
        Doc { generation, until, body: Bytes::from(body), tail: None, gzip, hash, tags }
    }

    /// A page whose form token is where `marker` is; `None` unless it occurs exactly once.
    pub fn page(generation: Option<i64>, until: Option<i64>, body: &str, marker: &str) -> Option<Doc> {
        if body.matches(marker).count() != 1 {
            return None;
        }
        let at = body.find(marker)?;
        let (head, tail) = (&body[..at], &body[at + marker.len()..]);
        let mut h = Sha256::new();
        h.update(head.as_bytes());
        h.update([0]);
        h.update(tail.as_bytes());
        Some(Doc {
            generation,
            until,
            body: Bytes::copy_from_slice(head.as_bytes()),
            tail: Some(Bytes::copy_from_slice(tail.as_bytes())),
            gzip: None,
            hash: hex::encode(h.finalize()),
            tags: None,
        })
    }

    fn weight(&self) -> u32 {
        let n = self.body.len() + self.tail.as_ref().map_or(0, Bytes::len) + self.gzip.as_ref().map_or(0, Bytes::len);
        u32::try_from(n as u64 + ENTRY_CHARGE).unwrap_or(u32::MAX)
    }

    fn len(&self) -> usize {
        self.body.len() + self.tail.as_ref().map_or(0, Bytes::len)
    }

    /// The response to `req`: 304 when its `If-None-Match` names this representation, else
    /// the body (gzip when the client accepts it). `token` fills a page's form.
    pub fn respond(&self, req: &HttpRequest, policy: &Policy, token: Option<&str>) -> HttpResponse {
        let zipped = accepts_gzip(req);
        let etag = match (&self.tags, &self.tail, token) {
            (Some((plain, gz)), _, _) => {
                if zipped {
                    gz.clone()
                } else {
                    plain.clone()
                }
            }
            // The token is part of the bytes sent, so it is part of the validator.
            (None, Some(_), Some(t)) => {
                let tag = hex::encode(&Sha256::digest(format!("{}{t}", self.hash))[..16]);
                tagged(&tag, zipped)
            }
            _ => tagged(&self.hash[..32], zipped),
        };
        let mut res = if if_none_match(req, etag.to_str().unwrap_or_default()) {
            HttpResponse::NotModified().finish()
        } else {
            let body = match &self.tail {
                Some(tail) => {
                    let mut b = Vec::with_capacity(self.len() + 64);
                    b.extend_from_slice(&self.body);
                    b.extend_from_slice(token.unwrap_or_default().as_bytes());
                    b.extend_from_slice(tail);
                    Bytes::from(b)
                }
                None => self.body.clone(),
            };
            let mut b = HttpResponse::Ok();
            b.content_type(policy.content_type);
            match (zipped, &self.gzip) {
                (true, Some(z)) => b.insert_header((header::CONTENT_ENCODING, "gzip")).body(z.clone()),
                (true, None) => match gzip(&body) {
                    Some(z) => b.insert_header((header::CONTENT_ENCODING, "gzip")).body(z),
                    None => b.body(body),
                },
                // Set so that the compression middleware leaves the body (and so the ETag) as is.
                (false, _) => b.insert_header((header::CONTENT_ENCODING, "identity")).body(body),
            }
        };
        let h = res.headers_mut();
        h.insert(header::ETAG, etag);
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy.cache_control));
        h.insert(header::VARY, HeaderValue::from_static(policy.vary));
        if policy.cors {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
        crate::web::error::mark_final(&mut res);
        res
    }
}

/// Tells the cache after every request that may have changed something (any method but GET,
/// HEAD and OPTIONS), so that the next request reads the generation whatever it changed.
pub async fn after_changes(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let state = if safe { None } else { req.app_data::<web::Data<super::AppState>>().cloned() };
    let res = next.call(req).await;
    if let Some(state) = state {
        state.docs.changed();
    }
    res
}

/// A strong ETag; `-gz` marks the gzip representation.
fn tagged(hash: &str, zipped: bool) -> HeaderValue {
    let tag = format!("\"{hash}{}\"", if zipped { "-gz" } else { "" });
    HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"-\""))
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut z = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 3 + 64), flate2::Compression::fast());
    z.write_all(body).ok()?;
    z.finish().ok()
}

/// Whether the client takes gzip (`Accept-Encoding` names it, or `*`, with a non-zero weight).
fn accepts_gzip(req: &HttpRequest) -> bool {
    let Some(v) = req.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()) else { return false };
    let mut star = false;
    for part in v.split(',') {
        let mut it = part.split(';');
        let coding = it.next().unwrap_or_default().trim();
        let zero = it.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")).and_then(|q| q.trim().parse::<f32>().ok())
                == Some(0.0)
        });
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return !zero;
        }
        star |= coding == "*" && !zero;
    }
    star
}

/// `If-None-Match` by the weak comparison RFC 9110 prescribes for it.
fn if_none_match(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').map(str::trim).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag))
}

/// The cache, and the watch that says whether its entries still hold.
pub struct DocCache {
    entries: moka::sync::Cache<DocKey, Arc<Doc>>,
    watch: Watch,
    /// The newest generation seen; entries of older ones are dropped when it moves.
    seen: AtomicI64,
    /// Times below are nanoseconds since `epoch` (never 0 once set).
    epoch: Instant,
    /// When the reading behind `seen` began: it holds every commit made before then.
    checked: AtomicU64,
    /// When this server last finished a change; a reading begun before it does not count.
    changed: AtomicU64,
}

impl DocCache {
    pub fn open(db_path: &std::path::Path) -> anyhow::Result<DocCache> {
        let entries =
            moka::sync::Cache::builder().max_capacity(MAX_BYTES).weigher(|_: &DocKey, d: &Arc<Doc>| d.weight()).build();
        Ok(DocCache {
            entries,
            watch: Watch::open(db_path)?,
            seen: AtomicI64::new(i64::MIN),
            epoch: Instant::now(),
            checked: AtomicU64::new(0),
            changed: AtomicU64::new(0),
        })
    }

    fn clock(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1)
    }

    /// The document generation now, or `None` when it cannot be read at once (then nothing is
    /// served from or kept in the cache).
    pub fn generation(&self) -> Option<i64> {
        let now = self.clock();
        let checked = self.checked.load(Ordering::Acquire);
        let fresh_for = u64::try_from(FRESH_FOR.as_nanos()).unwrap_or(u64::MAX);
        if checked > self.changed.load(Ordering::Acquire) && now.saturating_sub(checked) < fresh_for {
            let g = self.seen.load(Ordering::Acquire);
            if g != i64::MIN {
                return Some(g);
            }
        }
        match self.watch.current() {
            Ok(g) => {
                // Readings may finish out of order; the generation only grows.
                if self.seen.fetch_max(g, Ordering::AcqRel) < g {
                    self.entries.invalidate_all();
                }
                self.checked.fetch_max(now, Ordering::AcqRel);
                Some(g)
            }
            Err(e) => {
                tracing::debug!(error = %e, "document generation unavailable; serving from the store");
                None
            }
        }
    }

    /// Says that this server has just committed a change: the next request reads the generation.
    pub fn changed(&self) {
        self.changed.fetch_max(self.clock(), Ordering::AcqRel);
    }

    /// The entry for `key` if it was made at `generation` and is not out of date at `now`.
    pub fn get(&self, key: &DocKey, generation: Option<i64>, now: i64) -> Option<Arc<Doc>> {
        let g = generation?;
        self.entries.get(key).filter(|d| d.generation == Some(g) && d.until.is_none_or(|u| now < u))
    }

    /// Keeps `doc` (made at the generation read before its data was loaded) and returns it.
    pub fn put(&self, key: DocKey, doc: Doc) -> Arc<Doc> {
        let doc = Arc::new(doc);
        if doc.len() <= MAX_ENTRY && doc.generation == Some(self.seen.load(Ordering::Acquire)) {
            self.entries.insert(key, doc.clone());
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn req(headers: &[(&str, &str)]) -> HttpRequest {
        let mut r = TestRequest::default();
        for h in headers {
            r = r.insert_header(*h);
        }
        r.to_http_request()
    }

    #[test]
    fn gzip_is_sent_only_when_accepted_with_a_weight() {
        for (value, want) in [
            ("gzip", true),
            ("br, GZIP;q=0.5", true),
            ("*", true),
            ("gzip;q=0", false),
            ("gzip; q=0, *", false),
            ("identity", false),
            ("br, deflate", false),
        ] {
            assert_eq!(accepts_gzip(&req(&[("accept-encoding", value)])), want, "{value}");
        }
        assert!(!accepts_gzip(&req(&[])));
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_star() {
        let tag = "\"abc\"";
        for (value, want) in
            [("\"abc\"", true), ("W/\"abc\"", true), ("\"x\", \"abc\"", true), ("*", true), ("\"abcd\"", false)]
        {
            assert_eq!(if_none_match(&req(&[("if-none-match", value)]), tag), want, "{value}");
        }
    }

    #[test]
    fn a_page_is_split_only_at_a_single_token() {
        assert!(Doc::page(Some(1), None, "<p>T</p><p>T</p>", "T").is_none());
        let d = Doc::page(Some(1), None, "<input value=\"T\">", "T").unwrap();
        let res = d.respond(&req(&[]), &PAGE, Some("tok"));
        assert_eq!(res.status(), 200);
        assert!(res.headers().get(header::ETAG).unwrap().to_str().unwrap().starts_with('"'));
    }
}
