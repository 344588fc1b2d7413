//! The newsletter's mails: an issue rendered once and cut into each reader's copy, with its list
//! headers and unsubscribe link, and the mail that asks a reader to confirm.

use askama::Template;
use diesel::SqliteConnection;

use super::content::Content;
use crate::db::newsletter as store;
use crate::db::{StoreError, StoreResult};
use crate::email::ListHeaders;
use crate::tokens::{random_token, token_hash};

/// How long a confirmation link works.
pub const CONFIRM_SECS: i64 = 48 * 3600;

/// Everything a rendering of an issue needs beside its content.
pub struct Links<'a> {
    pub base: &'a str,
    /// The issue's archive page.
    pub archive_url: &'a str,
    pub unsubscribe_url: &'a str,
}

#[derive(Template)]
#[template(path = "mail/newsletter.txt")]
pub struct IssueText<'a> {
    pub c: &'a Content,
    pub l: &'a Links<'a>,
}

#[derive(Template)]
#[template(path = "mail/newsletter.html")]
pub struct IssueHtml<'a> {
    pub c: &'a Content,
    pub l: &'a Links<'a>,
}

/// The archive page of an issue.
pub fn archive_url(base: &str, content: &Content) -> String {
    format!("{base}/courses/{}/newsletter/{}", content.course_slug, content.date)
}

/// The message of an issue to one reader: subject, text and HTML bodies.
pub fn render_mail(content: &Content, links: &Links<'_>) -> Result<(String, String, String), askama::Error> {
    let text = IssueText { c: content, l: links }.render()?;
    let html = IssueHtml { c: content, l: links }.render()?;
    Ok((content.subject(), text, html))
}

/// A reader's unsubscribe link.
pub fn unsubscribe_url(base: &str, token: &str) -> String {
    format!("{base}/newsletter/unsubscribe/{token}")
}

/// An issue's message rendered once for all its readers. Copies differ only in the reader's
/// unsubscribe token, so the templates run once per issue and each copy is the rendering cut
/// where the token goes and joined with it: the same bytes [`render_mail`] makes for that
/// reader, for a fraction of the work.
pub struct Rendered {
    subject: String,
    text: Vec<String>,
    html: Vec<String>,
}

impl Rendered {
    pub fn new(content: &Content, base: &str) -> Result<Rendered, askama::Error> {
        // A fresh random mark cannot occur in the issue, and its characters (like a token's)
        // are left alone by HTML escaping.
        let mark = format!("t{}", random_token());
        let unsubscribe = unsubscribe_url(base, &mark);
        let archive = archive_url(base, content);
        let links = Links { base, archive_url: &archive, unsubscribe_url: &unsubscribe };
        let (subject, text, html) = render_mail(content, &links)?;
        let cut = |body: &str| body.split(mark.as_str()).map(str::to_string).collect();
        Ok(Rendered { subject, text: cut(&text), html: cut(&html) })
    }

    /// Subject, text and HTML bodies of the copy whose unsubscribe token is `token`.
    pub fn copy(&self, token: &str) -> (String, String, String) {
        (self.subject.clone(), self.text.join(token), self.html.join(token))
    }
}

/// The list headers of an issue to one reader: `List-Id`, `List-Unsubscribe` (the https link
/// and a mailto), `List-Unsubscribe-Post` for one-click (RFC 8058), and a Message-ID that is
/// the same if the copy is ever sent again.
pub fn list_headers(base: &str, content: &Content, unsubscribe_url: &str, issue_id: i64, reader: i64) -> ListHeaders {
    let host = url::Url::parse(base).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or("localhost".into());
    let list_id = format!("{}.newsletter.{host}", content.course_slug);
    ListHeaders {
        headers: vec![
            ("List-Id", format!("\"{}\" <{list_id}>", content.course_title.replace(['"', '\\', '\r', '\n'], ""))),
            (
                "List-Unsubscribe",
                format!("<{unsubscribe_url}>, <mailto:unsubscribe@{host}?subject=unsubscribe%20{list_id}>"),
            ),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
            ("List-Archive", format!("<{base}/courses/{}/newsletter>", content.course_slug)),
        ],
        message_id: Some(format!("<newsletter-{issue_id}-{reader}@{host}>")),
    }
}

/// The unsubscribe token of a reader: their id and a keyed hash of it, so that links work
/// without storing a token per reader and cannot be guessed for another reader.
pub fn unsubscribe_token(secret: &str, subscriber_id: i64) -> String {
    let mac = token_hash(&format!("{secret}:unsubscribe:{subscriber_id}"));
    format!("{subscriber_id}-{}", &mac[..32])
}

/// The reader an unsubscribe token names, when it is genuine.
pub fn token_reader(secret: &str, token: &str) -> Option<i64> {
    let (id, _) = token.split_once('-')?;
    let id: i64 = id.parse().ok()?;
    let expected = unsubscribe_token(secret, id);
    // Equal length by construction; compare without an early exit.
    (expected.len() == token.len() && expected.bytes().zip(token.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0)
        .then_some(id)
}

/// The email that asks a reader to confirm.
#[derive(Template)]
#[template(path = "mail/newsletter_confirm.txt")]
struct ConfirmText<'a> {
    course: &'a str,
    base: &'a str,
    confirm_url: &'a str,
}

/// The confirmation mail of a reader still waiting at `now`, with a new link (valid for
/// [`CONFIRM_SECS`]) whose token exists only in the mail: the store keeps its hash. `None`
/// when the reader no longer waits. A mail sent again replaces the link of the one before.
pub fn confirmation_mail(
    conn: &mut SqliteConnection,
    subscriber_id: i64,
    base: &str,
    now: i64,
) -> StoreResult<Option<crate::email::Email>> {
    let token = random_token();
    let Some(reader) = store::renew_confirmation(conn, subscriber_id, &token_hash(&token), now + CONFIRM_SECS, now)?
    else {
        return Ok(None);
    };
    let course = store::course_names(conn, reader.course_id)?.1;
    let confirm_url = format!("{base}/newsletter/confirm/{token}");
    let text = ConfirmText { course: &course, base, confirm_url: &confirm_url }
        .render()
        .map_err(|e| StoreError::Internal(anyhow::Error::new(e).context("rendering the confirmation email")))?;
    Ok(Some(crate::email::Email {
        to: reader.email,
        subject: format!("Confirm your subscription to {course}"),
        text,
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::newsletter::content::{BadgeCount, Group, ModuleTasks, PostItem, TaskRef};

    #[test]
    fn a_copy_cut_from_the_issue_rendered_once_is_the_copy_rendered_for_its_reader() {
        let post = |id: i64, title: &str| PostItem {
            link_id: id,
            author: "Ada <ada> & \"Co\"".into(),
            title: title.into(),
            excerpt: "1 < 2 & 3 > 2 — 'quoted'".into(),
            url: Some(format!("https://blog.example/p?a={id}&b=<x>")),
        };
        let content = Content {
            course_title: "Networks & <Learning>".into(),
            course_slug: "el30".into(),
            date: "2026-12-01".into(),
            note: "Read <b>this</b> & that".into(),
            groups: vec![
                Group {
                    task: Some(TaskRef { title: "Data & \"you\"".into(), slug: "el30-data".into() }),
                    posts: vec![post(1, "One & <two>")],
                },
                Group { task: None, posts: vec![post(2, "")] },
            ],
            module: Some(ModuleTasks {
                title: "Week 1".into(),
                tasks: vec![TaskRef { title: "T".into(), slug: "el30-t".into() }],
            }),
            badges: vec![BadgeCount { title: "Data".into(), count: 2, names: vec!["O'Brien & Co".into()] }],
        };
        let base = "https://cairn.example/a&b";
        let rendered = Rendered::new(&content, base).unwrap();
        for reader in [1, 42, 1_000_000] {
            let token = unsubscribe_token("s3cret", reader);
            let unsubscribe = unsubscribe_url(base, &token);
            let archive = archive_url(base, &content);
            let links = Links { base, archive_url: &archive, unsubscribe_url: &unsubscribe };
            let whole = render_mail(&content, &links).unwrap();
            let cut = rendered.copy(&token);
            assert_eq!(cut, whole, "reader {reader}");
            assert!(cut.1.contains(&token) && cut.2.contains(&token), "the link is in both bodies");
        }
    }

    #[test]
    fn unsubscribe_tokens_name_one_reader_and_cannot_be_forged() {
        let t = unsubscribe_token("s3cret", 42);
        assert_eq!(token_reader("s3cret", &t), Some(42));
        assert_eq!(token_reader("other", &t), None);
        let forged = t.replacen("42-", "43-", 1);
        assert_eq!(token_reader("s3cret", &forged), None);
        assert_eq!(token_reader("s3cret", "42"), None);
    }
}
