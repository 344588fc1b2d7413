//! A harvested item: what the harvest reads from a feed, and the store keeps as a Link.

/// One harvested item, normalised.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Item {
    /// The feed's own id for the item (guid, Atom id, JSON Feed id), if it has one.
    pub id: Option<String>,
    /// Absolute URL of the post.
    pub url: Option<String>,
    /// Plain text.
    pub title: String,
    pub author: Option<String>,
    /// Unix seconds.
    pub published: Option<i64>,
    pub updated: Option<i64>,
    pub categories: Vec<String>,
    /// Sanitised HTML summary (or content when there is no summary).
    pub summary_html: String,
    /// Plain text of title, summary and content, for hashtag matching.
    #[serde(skip)]
    pub text: String,
}
