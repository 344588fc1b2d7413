//! Which site a URL is on, and so whether a harvested item is on the learner's own blog.
//!
//! A site is a registrable domain (the public suffix list, private section included, so
//! `ann.github.io` and `ann.blogspot.com` are sites of their own), except on the shared
//! hosting domains listed below, where each blog is a subdomain ([`BY_SUBDOMAIN`]) or a first
//! path segment ([`BY_PATH`], as `medium.com/@ann`). A feed's sites are those of its own
//! address, of the site it declares (its HTML alternate link) and of the address the learner
//! joined with; an item is the learner's own when its URL is on one of them.

use std::sync::LazyLock;

use publicsuffix::{List, Psl};
use url::Url;

/// Shared hosting where each blog is a subdomain: `ann.wordpress.com` is Ann's site, not the
/// site of everyone on `wordpress.com`. (Many of these are in the public suffix list's private
/// section already; they are listed here too so the rule does not depend on it.)
pub const BY_SUBDOMAIN: &[&str] = &[
    "wordpress.com",
    "blogspot.com",
    "blogger.com",
    "github.io",
    "gitlab.io",
    "substack.com",
    "tumblr.com",
    "medium.com",
    "ghost.io",
    "hashnode.dev",
    "bearblog.dev",
    "micro.blog",
    "neocities.org",
    "netlify.app",
    "pages.dev",
    "vercel.app",
    "wixsite.com",
    "weebly.com",
    "squarespace.com",
    "edublogs.org",
    "svbtle.com",
    "typepad.com",
    "livejournal.com",
    "dreamwidth.org",
    "write.as",
];

/// Shared hosting where each blog is the first path segment on the host itself:
/// `medium.com/@ann`, `dev.to/ann`. A feed address's leading `feed` segment is skipped
/// (`medium.com/feed/@ann` is `medium.com/@ann`).
pub const BY_PATH: &[&str] = &["medium.com", "dev.to", "write.as", "hashnode.com", "mataroa.blog", "tumblr.com"];

/// The public suffix list, as published at publicsuffix.org (MPL 2.0), read once.
static SUFFIXES: LazyLock<Option<List>> = LazyLock::new(|| include_str!("public_suffix_list.dat").parse().ok());

/// The registrable domain of a host name (lower case, no trailing dot), or the host itself
/// when the list gives none (an IP address, `localhost`, a bare suffix).
fn registrable(host: &str) -> String {
    SUFFIXES
        .as_ref()
        .and_then(|l| l.domain(host.as_bytes()))
        .and_then(|d| std::str::from_utf8(d.as_bytes()).ok().map(str::to_string))
        .unwrap_or_else(|| host.to_string())
}

/// The shared hosting domain `host` is on (itself or a subdomain of it), if any.
fn shared_domain<'a>(host: &str, list: &'a [&'a str]) -> Option<&'a str> {
    list.iter().copied().find(|d| host == *d || host.strip_suffix(d).is_some_and(|rest| rest.ends_with('.')))
}

/// The site a URL is on, as a key to compare: see the module's rules. `None` for a URL that
/// is not http(s) or has no host.
pub fn site_of(url: &Url) -> Option<String> {
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host).to_string();
    if matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))) {
        return Some(host);
    }
    if let Some(shared) = shared_domain(&host, BY_PATH)
        && host == shared
    {
        let mut segments = url.path_segments().into_iter().flatten().filter(|s| !s.is_empty());
        let first = match segments.next() {
            Some(s) if s.eq_ignore_ascii_case("feed") => segments.next(),
            s => s,
        };
        return Some(match first {
            Some(s) => format!("{shared}/{}", s.to_lowercase()),
            None => shared.to_string(),
        });
    }
    if shared_domain(&host, BY_SUBDOMAIN).is_some() {
        return Some(host);
    }
    Some(registrable(&host))
}

/// The sites a learner's feed speaks for.
#[derive(Debug, Clone, Default)]
pub struct Sites(Vec<String>);

impl Sites {
    /// The sites of a feed: its own address, the site it declares, and the address it was
    /// joined with (any may be absent or unreadable).
    pub fn of<'a>(addresses: impl IntoIterator<Item = Option<&'a str>>) -> Sites {
        let mut sites: Vec<String> =
            addresses.into_iter().flatten().filter_map(|a| Url::parse(a).ok()).filter_map(|u| site_of(&u)).collect();
        sites.sort();
        sites.dedup();
        Sites(sites)
    }

    /// True when `url` is on one of these sites.
    pub fn contains(&self, url: &str) -> bool {
        Url::parse(url).ok().and_then(|u| site_of(&u)).is_some_and(|s| self.0.contains(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(u: &str) -> String {
        site_of(&Url::parse(u).unwrap()).unwrap()
    }

    #[test]
    fn sites_are_registrable_domains_except_on_shared_hosts() {
        assert_eq!(site("https://www.blog.ada.example.co.uk/2018/post"), "example.co.uk");
        assert_eq!(site("https://ada.example.org/p"), "example.org");
        assert_eq!(site("https://ann.wordpress.com/2018/11/post/"), "ann.wordpress.com");
        assert_eq!(site("https://lee-example.blogspot.com/2018/x.html"), "lee-example.blogspot.com");
        assert_eq!(site("https://lee-example.blogspot.co.uk/2018/x.html"), "lee-example.blogspot.co.uk");
        assert_eq!(site("https://ann.github.io/notes/"), "ann.github.io");
        assert_eq!(site("https://medium.com/@ann/my-post-123?source=rss"), "medium.com/@ann");
        assert_eq!(site("https://medium.com/feed/@Ann"), "medium.com/@ann");
        assert_eq!(site("https://ann.medium.com/my-post"), "ann.medium.com");
        assert_eq!(site("https://dev.to/feed/ann"), "dev.to/ann");
        assert_eq!(site("http://127.0.0.1:8080/feed.xml"), "127.0.0.1");
        assert!(site_of(&Url::parse("mailto:ann@example.org").unwrap()).is_none());
    }

    #[test]
    fn an_item_is_own_only_on_the_feeds_sites() {
        let s = Sites::of([Some("https://feeds.example.net/ann"), Some("https://ann.example.org/"), None, Some("::")]);
        assert!(s.contains("https://blog.ann.example.org/2018/post"));
        assert!(s.contains("https://feeds.example.net/other"));
        assert!(!s.contains("https://noor.example.com/2018/post"));
        assert!(!s.contains("not a url"));
        let m = Sites::of([Some("https://medium.com/feed/@ann")]);
        assert!(m.contains("https://medium.com/@ann/post-1"));
        assert!(!m.contains("https://medium.com/@noor/post-1"));
        let w = Sites::of([Some("https://ann.wordpress.com/feed/")]);
        assert!(!w.contains("https://noor.wordpress.com/2018/post"));
    }
}
