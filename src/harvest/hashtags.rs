//! Finding Task hashtags in harvested posts: whole tags only, case-insensitive.

use std::collections::BTreeSet;

/// Every `#tag` in `text`, lower-cased. A tag is `#` followed by letters, digits, `-` or `_`
/// (the longest run, so `#el30-database` never yields `#el30-data`), and must not be glued
/// to a preceding word or sit inside a URL (`page#el30-data`).
pub fn extract(text: &str) -> BTreeSet<String> {
    let mut tags = BTreeSet::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '#' {
            let glued = i > 0
                && (chars[i - 1].is_alphanumeric() || matches!(chars[i - 1], '/' | '&' | '#' | '_' | '-' | '=' | '?'));
            let mut j = i + 1;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '-' || chars[j] == '_') {
                j += 1;
            }
            if !glued && j > i + 1 {
                let tag: String = chars[i + 1..j].iter().collect::<String>();
                let tag = tag.trim_end_matches('-').to_lowercase();
                if !tag.is_empty() {
                    tags.insert(format!("#{tag}"));
                }
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
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
