//! What an issue holds, as stored (JSON) and rendered for the mail, the preview and the archive
//! alike.

use serde::{Deserialize, Serialize};

use crate::db::newsletter as store;
use crate::db::{StoreError, StoreResult};

/// An issue, as stored (JSON) and rendered for the mail, the preview and the archive alike.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Content {
    pub course_title: String,
    pub course_slug: String,
    /// The course's local date, `YYYY-MM-DD`.
    pub date: String,
    pub note: String,
    pub groups: Vec<Group>,
    pub module: Option<ModuleTasks>,
    pub badges: Vec<BadgeCount>,
}

/// Posts tied to one Task, or (`task` none) the learners' other posts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub task: Option<TaskRef>,
    pub posts: Vec<PostItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRef {
    pub title: String,
    /// Without `#`: the Task's page is `/tasks/{slug}`.
    pub slug: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostItem {
    pub link_id: i64,
    pub author: String,
    pub title: String,
    /// Plain text.
    pub excerpt: String,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleTasks {
    pub title: String,
    pub tasks: Vec<TaskRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BadgeCount {
    pub title: String,
    pub count: i64,
    /// The recipients' public names, for those whose choice of public name gives one.
    #[serde(default)]
    pub names: Vec<String>,
}

impl Content {
    /// Posts in all groups.
    pub fn post_count(&self) -> usize {
        self.groups.iter().map(|g| g.posts.len()).sum()
    }

    /// The addresses of the posts it includes, once each.
    pub fn post_urls(&self) -> Vec<String> {
        let mut urls: Vec<String> =
            self.groups.iter().flat_map(|g| g.posts.iter().filter_map(|p| p.url.clone())).collect();
        urls.sort();
        urls.dedup();
        urls
    }

    /// Nothing new: no post, no badge and no note.
    pub fn is_empty(&self) -> bool {
        self.post_count() == 0 && self.badges.is_empty() && self.note.trim().is_empty()
    }

    pub fn subject(&self) -> String {
        format!("{} — {}", self.course_title, self.date)
    }
}

/// The text of sanitised HTML (harvested summaries are sanitised when stored), whitespace
/// collapsed and cut at `max` characters on a word boundary.
pub fn excerpt(html: &str, max: usize) -> String {
    let mut text = String::with_capacity(html.len().min(4 * max));
    let mut in_tag = false;
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        if text.len() > 8 * max {
            break;
        }
        let step = c.len_utf8();
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            '&' if !in_tag => {
                let end = rest[..rest.len().min(12)].find(';');
                if let Some(decoded) = end.and_then(|e| entity(&rest[1..e])) {
                    text.push(decoded);
                    rest = &rest[end.unwrap_or(0) + 1..];
                    continue;
                }
                text.push('&');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
        rest = &rest[step..];
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = String::new();
    for w in words {
        if out.chars().count() + w.chars().count() + 1 > max {
            out.push('…');
            return out;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let n = name.strip_prefix('#')?;
            let code = match n.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => n.parse().ok()?,
            };
            char::from_u32(code).filter(|c| !c.is_control() || c.is_whitespace())
        }
    }
}

pub fn parse_content(issue: &store::Issue) -> StoreResult<Content> {
    serde_json::from_str(&issue.content)
        .map_err(|e| StoreError::Internal(anyhow::Error::new(e).context("reading a stored newsletter issue")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_text_cut_on_a_word() {
        let html = "<p>Learning &amp; <em>networks</em>&#33;</p><p>More&nbsp;words here</p>";
        assert_eq!(excerpt(html, 100), "Learning & networks ! More words here");
        assert_eq!(excerpt(html, 20), "Learning & networks…");
        assert_eq!(excerpt("a &bogus; b", 50), "a &bogus; b");
    }
}
