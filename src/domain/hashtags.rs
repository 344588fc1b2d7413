//! Finding Task hashtags in harvested posts: whole tags only, case-insensitive.

use std::collections::BTreeSet;

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '_'
}

/// A tag without its `#`: tag characters only, and at least one letter, so that a footnote
/// or an issue number (`#12`) is not a hashtag.
fn is_tag(tag: &str) -> bool {
    !tag.is_empty() && tag.chars().all(is_tag_char) && tag.chars().any(char::is_alphabetic)
}

/// Every `#tag` in `text`, lower-cased. A tag is `#` followed by letters, digits, `-` or `_`
/// (the longest run, so `#el30-database` never yields `#el30-data`; a trailing `-` is
/// punctuation) holding at least one letter, and must not be glued to a preceding word
/// (`C#`) or sit inside a URL (`page#el30-data`).
pub fn extract(text: &str) -> BTreeSet<String> {
    let mut tags = BTreeSet::new();
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
            if is_tag(&tag) {
                tags.insert(format!("#{tag}"));
            }
        }
        prev = Some(after[..len].chars().next_back().unwrap_or('#'));
        rest = &after[len..];
    }
    tags
}

/// Tags found in a post: in its text, and its categories that are one whole tag with or
/// without the `#` (`el30-data` or `#el30-data`; not `C#`, `two words` or `2018`).
pub fn of_post(text: &str, categories: &[String]) -> BTreeSet<String> {
    let mut tags = extract(text);
    for c in categories {
        let c = c.trim();
        let c = c.strip_prefix('#').unwrap_or(c).to_lowercase();
        if is_tag(&c) {
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
    fn a_tag_holds_a_letter_and_is_not_glued_to_a_word() {
        let t = extract("See footnote #12 and issue #42; I write C# and F#, and #2024goals. #élan #_1 #1-2");
        assert_eq!(t.into_iter().collect::<Vec<_>>(), vec!["#2024goals", "#élan"]);
        let c = of_post("", &["C#".into(), "12".into(), "#42".into(), "##x".into(), "Ünï".into(), "a.b".into()]);
        assert_eq!(c.into_iter().collect::<Vec<_>>(), vec!["#ünï"]);
    }

    #[test]
    fn categories_count_with_or_without_the_hash() {
        let t = of_post("", &["EL30-Data".into(), "#el30-cloud".into(), "two words".into(), "2018".into()]);
        assert_eq!(t.into_iter().collect::<Vec<_>>(), vec!["#el30-cloud", "#el30-data"]);
    }
}
