//! What the paged instructor lists (Feeds, Posts) share: their query strings read with empty
//! fields meaning "any", and the links to other pages that keep the filters.

use actix_web::HttpRequest;
use serde::de::DeserializeOwned;

use crate::web::error::AppError;

/// The query string as `T`, its empty fields left out (a filter form's "any").
pub fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, AppError> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    serde_urlencoded::from_str(&serde_urlencoded::to_string(&pairs).unwrap_or_default())
        .map_err(|e| AppError::BadRequest(format!("bad filter: {e}")))
}

/// A link to one page of a list.
pub struct PageLink {
    pub number: i64,
    pub url: String,
    pub current: bool,
}

/// The links of a list's pager: previous, next, and the first, last and nearby pages.
pub struct Pager {
    pub prev: Option<String>,
    pub next: Option<String>,
    pub pages: Vec<PageLink>,
}

impl Pager {
    /// For page `page` of `pages` at `path`, keeping the filters `pairs` (empty ones dropped).
    pub fn new(path: &str, pairs: &[(&str, String)], page: i64, pages: i64) -> Pager {
        let url = |n: i64| {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs.iter().filter(|(_, v)| !v.trim().is_empty()) {
                s.append_pair(k, v.trim());
            }
            if n > 1 {
                s.append_pair("page", &n.to_string());
            }
            let q = s.finish();
            if q.is_empty() { path.to_string() } else { format!("{path}?{q}") }
        };
        let last = pages.max(1);
        Pager {
            prev: (page > 1).then(|| url((page - 1).min(last))),
            next: (page < last).then(|| url(page + 1)),
            pages: (1..=last)
                .filter(|n| *n == 1 || *n == last || (n - page).abs() <= 2)
                .map(|n| PageLink { number: n, url: url(n), current: n == page })
                .collect(),
        }
    }

    /// Whether there is more than one page to go to.
    pub fn shown(&self) -> bool {
        self.prev.is_some() || self.next.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_keep_the_filters_and_skip_far_pages() {
        let p = Pager::new("/admin/feeds", &[("q", "a b".into()), ("status", String::new())], 10, 20);
        assert_eq!(p.prev.as_deref(), Some("/admin/feeds?q=a+b&page=9"));
        assert_eq!(p.next.as_deref(), Some("/admin/feeds?q=a+b&page=11"));
        let numbers: Vec<i64> = p.pages.iter().map(|l| l.number).collect();
        assert_eq!(numbers, vec![1, 8, 9, 10, 11, 12, 20]);
        assert_eq!(p.pages[0].url, "/admin/feeds?q=a+b");
        assert!(p.pages[3].current);
        let one = Pager::new("/admin/links", &[], 1, 1);
        assert!(!one.shown() && one.prev.is_none() && one.next.is_none());
        // Past the end: back to the last page.
        let past = Pager::new("/admin/links", &[], 9, 3);
        assert_eq!(past.prev.as_deref(), Some("/admin/links?page=3"));
        assert!(past.next.is_none());
    }
}
