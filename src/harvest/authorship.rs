//! Whose writing a harvested item is: the site rules (in [`crate::domain::sites`]) decide
//! whether an item's URL is on the learner's own blog; here is the test that keeps Cairn's own
//! pages and feeds out of anyone's subscription.

use url::Url;

/// True when `url` is under the instance's own public base URL: a Cairn page or syndication
/// feed, which is never a learner's blog. Same host, the same port (or both on a default port,
/// whatever the scheme), and a path under the base's path.
pub fn is_own_instance(url: &str, base_url: &str) -> bool {
    let (Ok(u), Ok(base)) = (Url::parse(url), Url::parse(base_url)) else { return false };
    let host = |x: &Url| x.host_str().map(|h| h.trim_end_matches('.').to_ascii_lowercase());
    if host(&u).is_none() || host(&u) != host(&base) {
        return false;
    }
    // The url crate keeps no port that is the scheme's default.
    let default = |x: &Url| x.port().is_none();
    let same_port = u.port_or_known_default() == base.port_or_known_default() || (default(&u) && default(&base));
    let prefix = base.path().trim_end_matches('/');
    let path = u.path();
    same_port && (prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/")))
}

/// Why an address cannot be a learner's feed, when it is one of Cairn's own.
pub fn own_instance_refusal(url: &str, base_url: &str) -> Option<String> {
    is_own_instance(url, base_url).then(|| {
        format!("{url} is a page or feed of this Cairn site, not your own blog: give the address of the blog you write")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cairns_own_pages_are_recognised_under_any_default_port() {
        let base = "https://cairn.example.edu";
        assert!(is_own_instance("https://cairn.example.edu/courses/el30/feed.rss", base));
        assert!(is_own_instance("http://CAIRN.example.edu/", base));
        assert!(!is_own_instance("https://cairn.example.edu:8443/x", base));
        assert!(!is_own_instance("https://blog.example.edu/feed", base));
        let sub = "http://127.0.0.1:8080/cairn/";
        assert!(is_own_instance("http://127.0.0.1:8080/cairn/courses/x/feed.rss", sub));
        assert!(is_own_instance("http://127.0.0.1:8080/cairn", sub));
        assert!(!is_own_instance("http://127.0.0.1:8080/cairnish/feed", sub));
        assert!(!is_own_instance("http://127.0.0.1:8081/cairn/feed", sub));
        assert!(own_instance_refusal("http://127.0.0.1:8080/cairn/x", sub).unwrap().contains("not your own blog"));
    }
}
