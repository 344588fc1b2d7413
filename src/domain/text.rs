//! Free-text fields and the per-field errors a form shows next to its inputs.

/// Errors keyed by form field, shown next to the field when the form is re-rendered.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    /// Records the error of `result` under `field` and returns its value, if any.
    pub fn check<T>(&mut self, field: &'static str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The message for `field`, or an empty string (templates test `is_empty`).
    pub fn get(&self, field: &str) -> &str {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, m)| m.as_str()).unwrap_or("")
    }

    pub fn iter(&self) -> impl Iterator<Item = &(&'static str, String)> {
        self.0.iter()
    }

    /// The messages as plain sentences, one per field, for a page that shows them together:
    /// "Unknown scope 'x'; the scopes are … Choose at least one scope."
    pub fn sentences(&self) -> String {
        let sentences: Vec<String> = self
            .0
            .iter()
            .map(|(_, m)| {
                let m = m.trim().trim_end_matches('.');
                let mut chars = m.chars();
                chars.next().map(|c| format!("{}{}.", c.to_uppercase(), chars.as_str())).unwrap_or_default()
            })
            .filter(|s| !s.is_empty())
            .collect();
        sentences.join(" ")
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        f.write_str(&parts.join("; "))
    }
}

/// Bounds for a text field.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    pub label: &'static str,
    pub min: usize,
    pub max: usize,
}

impl Text {
    pub const TITLE: Text = Text { label: "title", min: 1, max: 200 };
    pub const DESCRIPTION: Text = Text { label: "description", min: 0, max: 10_000 };
    pub const CRITERIA: Text = Text { label: "criteria", min: 0, max: 20_000 };

    /// Trims `raw` and checks its length in characters.
    pub fn parse(&self, raw: &str) -> Result<String, String> {
        let s = raw.trim();
        let n = s.chars().count();
        if n < self.min {
            Err(format!("the {} is required", self.label))
        } else if n > self.max {
            Err(format!("the {} must have at most {} characters (it has {n})", self.label, self.max))
        } else {
            Ok(s.replace("\r\n", "\n"))
        }
    }

    /// [`Text::parse`], refusing control characters: all of them in a one-line field, all but
    /// line breaks (`\n`, or `\r\n`, kept as `\n`) when `line_breaks` is true.
    pub fn parse_clean(&self, raw: &str, line_breaks: bool) -> Result<String, String> {
        let s = self.parse(raw)?;
        if s.chars().any(|c| c.is_control() && !(line_breaks && c == '\n')) {
            return Err(if line_breaks {
                format!("the {} must not contain control characters (line breaks are fine)", self.label)
            } else {
                format!("the {} must not contain control characters or line breaks", self.label)
            });
        }
        Ok(s)
    }
}

/// A URL-safe slug: lowercase ASCII letters and digits joined by single hyphens.
pub fn slugify(title: &str) -> String {
    let mut out = String::new();
    let mut pending_dash = false;
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
        if out.len() >= 60 {
            break;
        }
    }
    if out.is_empty() { "course".to_string() } else { out }
}

/// True when `text` holds one of `needles` (compared without case) as a whole: not inside a
/// longer word, so that a name such as "Ann" does not match "Annual", nor a URL a longer one.
pub fn mentions_any(text: &str, needles: &[String]) -> bool {
    let hay = text.to_lowercase();
    needles.iter().map(|n| n.trim().to_lowercase()).filter(|n| !n.is_empty()).any(|n| {
        hay.match_indices(n.as_str()).any(|(i, m)| {
            let before = hay[..i].chars().next_back();
            let after = hay[i + m.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mention_is_a_whole_name_address_or_url() {
        let needles = ["Ann Lee".to_string(), "ann@example.edu".into(), "https://ann.example/p".into()];
        assert!(mentions_any("Hello ann lee,", &needles));
        assert!(mentions_any("To: <Ann@Example.edu>", &needles));
        assert!(mentions_any("see https://ann.example/p.", &needles));
        assert!(!mentions_any("Annual report by Ann Leeds", &needles));
        assert!(!mentions_any("see https://ann.example/post", &needles));
        assert!(!mentions_any("joann@example.edu", &needles));
    }

    #[test]
    fn slugs_are_url_safe() {
        assert_eq!(slugify("E-Learning 3.0"), "e-learning-3-0");
        assert_eq!(slugify("  ¡¿?! "), "course");
        assert_eq!(slugify("Données & Graphes"), "donn-es-graphes");
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(Text::TITLE.parse("  Hi "), Ok("Hi".into()));
        assert!(Text::TITLE.parse("   ").is_err());
        assert!(Text::TITLE.parse(&"x".repeat(201)).is_err());
    }

    #[test]
    fn clean_text_keeps_line_breaks_only_where_allowed() {
        let t = Text { label: "narrative", min: 0, max: 50 };
        assert_eq!(t.parse_clean(" a\r\nb ", true), Ok("a\nb".into()));
        assert!(t.parse_clean("a\rb", true).unwrap_err().contains("must not contain control characters"));
        assert!(t.parse_clean("a\u{7}b", true).is_err());
        assert!(t.parse_clean("Ann\r\nBcc: x", false).unwrap_err().contains("or line breaks"));
        assert!(t.parse_clean("a\u{85}b", false).is_err());
    }
}
