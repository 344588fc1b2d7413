//! Domain types parsed at the edge: once a value is a `Hashtag` or an `Email`, the rest
//! of Cairn can rely on it. No web or database types here.

pub mod hashtags;
pub mod item;
pub mod sites;
mod text;

pub use text::{FieldErrors, Text, mentions_any, slugify};

use std::fmt;

/// A Task's hashtag: `#` followed by 2–64 lowercase letters, digits and hyphens,
/// starting with a letter or digit and not ending with a hyphen (e.g. `#el30-week3`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hashtag(String);

impl Hashtag {
    pub const RULE: &'static str = "a hashtag is # followed by 2 to 64 lowercase letters, digits \
        or hyphens, starting with a letter or digit (for example #el30-week3)";

    pub fn parse(raw: &str) -> Result<Hashtag, String> {
        let raw = raw.trim();
        let Some(body) = raw.strip_prefix('#') else {
            return Err(format!("'{raw}' does not start with #: {}", Self::RULE));
        };
        let ok_chars = body.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ok_ends = body.bytes().next().is_some_and(|b| b != b'-') && !body.ends_with('-');
        if !(2..=64).contains(&body.len()) || !ok_chars || !ok_ends {
            return Err(format!("'{raw}' is not a valid hashtag: {}", Self::RULE));
        }
        Ok(Hashtag(raw.to_string()))
    }

    /// The hashtag with its `#`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hashtag without `#`, used in URLs (`/tasks/el30-data`).
    pub fn slug(&self) -> &str {
        &self.0[1..]
    }
}

impl fmt::Display for Hashtag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, checked for the shape `local@domain.tld` and normalised to
/// lower case (addresses compare case-insensitively in practice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        let s = raw.trim();
        let valid = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'))
            && match s.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && local.len() <= 64
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                        && !domain.contains("..")
                }
                None => false,
            };
        if valid {
            Ok(Email(s.to_lowercase()))
        } else {
            Err(format!("'{s}' is not an email address like name@example.edu"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Minimum length of an instructor password.
pub const MIN_PASSWORD_LEN: usize = 10;

/// Checks a new password against the length rule.
pub fn check_password(pw: &str) -> Result<(), String> {
    let n = pw.chars().count();
    if n < MIN_PASSWORD_LEN {
        Err(format!("the password must have at least {MIN_PASSWORD_LEN} characters"))
    } else if n > 1024 {
        Err("the password must have at most 1024 characters".into())
    } else {
        Ok(())
    }
}

/// An optional http(s) URL, such as the institution's home page.
pub fn parse_optional_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(String::new());
    }
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(u.to_string()),
        _ => Err(format!("'{raw}' is not a web address starting with http:// or https://")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashtags_follow_the_rule() {
        for ok in ["#el30-week3", "#el30-data", "#a1", "#2019"] {
            assert!(Hashtag::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["el30", "#", "#a", "#El30", "#el 30", "#el30_w", "#-el", "#el-", "#é30", "##el30"] {
            assert!(Hashtag::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Hashtag::parse(" #el30-data ").unwrap().slug(), "el30-data");
    }

    #[test]
    fn emails_are_checked_and_lowercased() {
        assert_eq!(Email::parse(" Ada@Example.EDU ").unwrap().as_str(), "ada@example.edu");
        for bad in ["", "ada", "ada@", "@x.org", "ada@x", "a b@x.org", "a@x..org", "a@b@x.org"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
