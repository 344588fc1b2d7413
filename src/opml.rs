//! OPML 2.0 subscription lists: export every feed, import feeds from other tools.

use crate::badges::art::xml_escape;

/// A feed read from an OPML file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub url: String,
    pub title: String,
    /// The outline's text, used as the author's name.
    pub author: String,
    pub site_url: Option<String>,
}

/// Writes an OPML 2.0 document; each entry is (author, title, feed URL, site URL).
pub fn export(title: &str, feeds: &[(&str, &str, &str, Option<&str>)]) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">\n  <head><title>{}</title></head>\n  <body>\n",
        xml_escape(title)
    );
    for (author, feed_title, url, site) in feeds {
        out.push_str(&format!(
            "    <outline type=\"rss\" text=\"{}\" title=\"{}\" xmlUrl=\"{}\"{} />\n",
            xml_escape(author),
            xml_escape(feed_title),
            xml_escape(url),
            site.map(|s| format!(" htmlUrl=\"{}\"", xml_escape(s))).unwrap_or_default()
        ));
    }
    out.push_str("  </body>\n</opml>\n");
    out
}

/// Reads the feeds of an OPML document (nested outlines included). Outlines without an
/// http(s) `xmlUrl` are skipped.
pub fn parse(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let text = crate::html::decode::decode(bytes, None);
    let text = crate::html::xml::without_dtd(text.trim_start_matches('\u{feff}')).map_err(|e| e.to_string())?;
    // roxmltree's default refuses any DTD: none reaches it after `without_dtd` anyway.
    let doc = roxmltree::Document::parse(&text).map_err(|e| format!("this is not a readable OPML file ({e})"))?;
    if doc.root_element().tag_name().name() != "opml" {
        return Err("this is not an OPML file (its root element is not <opml>)".into());
    }
    let mut entries = Vec::new();
    for node in doc.descendants().filter(|n| n.has_tag_name("outline")) {
        let Some(url) = node.attribute("xmlUrl").map(str::trim) else { continue };
        let Ok(parsed) = url::Url::parse(url) else { continue };
        if !matches!(parsed.scheme(), "http" | "https") {
            continue;
        }
        let text = node.attribute("text").or(node.attribute("title")).unwrap_or("").trim().to_string();
        let title = node.attribute("title").or(node.attribute("text")).unwrap_or("").trim().to_string();
        entries.push(Entry {
            url: parsed.to_string(),
            author: if text.is_empty() { parsed.host_str().unwrap_or("unknown").to_string() } else { text },
            title,
            site_url: node.attribute("htmlUrl").map(str::to_string),
        });
    }
    if entries.is_empty() {
        return Err("the OPML file lists no feeds (no outline with an xmlUrl)".into());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_then_import_round_trips() {
        let doc = export(
            "Feeds",
            &[("Ada & co", "Ada's <blog>", "https://ada.example.org/feed", Some("https://ada.example.org/"))],
        );
        let entries = parse(doc.as_bytes()).unwrap();
        assert_eq!(
            entries,
            vec![Entry {
                url: "https://ada.example.org/feed".into(),
                title: "Ada's <blog>".into(),
                author: "Ada & co".into(),
                site_url: Some("https://ada.example.org/".into())
            }]
        );
        assert!(parse(b"<html/>").is_err());
        assert!(parse(b"<opml><body><outline text='x' xmlUrl='javascript:alert(1)'/></body></opml>").is_err());
        let bomb = "<!DOCTYPE opml [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>\
                    <opml><body><outline text='&b;' xmlUrl='https://x.example/feed'/></body></opml>";
        assert!(parse(bomb.as_bytes()).unwrap_err().contains("DTD"));
    }
}
