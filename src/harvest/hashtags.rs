//! Finding Task hashtags in harvested posts: whole tags only, case-insensitive.

use std::collections::BTreeSet;

/// Every `#tag` in `text`, lower-cased. A tag is `#` followed by letters, digits, `-` or `_`
/// (the longest run, so `#el30-database` never yields `#el30-data`), and must not be glued
/// to a preceding word or sit inside a URL (`page#el30-data`).
pub fn extract(text: &str) -> BTreeSet<String> {
    let mut tags = BTreeSet::new();
    let is_tag_char = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    let mut prev: Option<char> = None;
    let mut rest = text;
    while let Some(pos) = rest.find('#') {
        // The character before this '#'.
        let before = rest[..pos].chars().next_back().or(if pos == 0 { prev } else { None });
        let after = &rest[pos + 1..];
        let len: usize = after.chars().take_while(|c| is_tag_char(*c)).map(char::len_utf8).sum();
        let glued = before.is_some_and(|b| b.is_alphanumeric() || matches!(b, '/' | '&' | '#' | '_' | '-' | '=' | '?'));
        if !glued && len > 0 {
            let tag = after[..len].trim_end_matches('-').to_lowercase();
            if !tag.is_empty() {
                tags.insert(format!("#{tag}"));
            }
        }
        prev = Some(after[..len].chars().next_back().unwrap_or('#'));
        rest = &after[len..];
    }
    tags
}

/// Tags found in a post: in its text, and its categories (`el30-data` or `#el30-data`).
pub fn of_post(text: &str, categories: &[String]) -> BTreeSet<String> {
    let mut tags = extract(text);
    for c in categories {
        let c = c.trim().trim_start_matches('#').to_lowercase();
        if !c.is_empty() && !c.contains(char::is_whitespace) {
            tags.insert(format!("#{c}"));
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_tags_only_and_case_insensitive() {
        let t = extract("My post for #EL30-Data, not #el30-database. See page#el30-cloud and #el30-graph!");
        assert!(t.contains("#el30-data"));
        assert!(t.contains("#el30-database"));
        assert!(t.contains("#el30-graph"));
        assert!(!t.contains("#el30-cloud"), "inside a URL fragment");
        assert_eq!(t.len(), 3);
        assert!(extract("#el30-data_extra").contains("#el30-data_extra"));
        assert!(!extract("#el30-data_extra").contains("#el30-data"));
        assert!(extract("(#el30-agency)").contains("#el30-agency"));
        assert!(extract("trailing #el30-data-").contains("#el30-data"));
    }

    #[test]
    fn categories_count_with_or_without_the_hash() {
        let t = of_post("", &["EL30-Data".into(), "#el30-cloud".into(), "two words".into()]);
        assert_eq!(t.into_iter().collect::<Vec<_>>(), vec!["#el30-cloud", "#el30-data"]);
    }
}
