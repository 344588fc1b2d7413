//! The mails Cairn writes, as templates in `templates/mail/`, and sending the badge email of
//! a queued notification.

use askama::Template;

use super::Notifier;
use super::outbox::Delivery;
use crate::badges::ob;
use crate::db::outbox::{Kind, Notification, Status};
use crate::email::{Email, MailError};

/// What the award and revocation emails say, worked out once for both parts.
pub struct AwardView {
    /// The name the learner gave when they joined; `None` greets them without a name.
    pub name: Option<String>,
    pub issuer: String,
    /// The badge.
    pub title: String,
    /// "the course “A”" or "the courses “A” and “B”"; `None` when no course holds the task.
    pub courses: Option<String>,
    /// The instructor's comment, line by line.
    pub comment: Vec<String>,
    /// The post that earned the badge, and its title when known.
    pub post_url: Option<String>,
    pub post_title: Option<String>,
    /// The verification page.
    pub url: String,
    /// The learner's public page, when they have one they have not hidden.
    pub portfolio_url: Option<String>,
    /// The learner joined with a blog, so has a private subscription page.
    pub joined: bool,
    /// The page that mails the learner their private page's link again.
    pub lost_link_url: String,
    /// The reason given for a revocation, line by line.
    pub reason: Vec<String>,
    /// The Content-ID of the badge image in the HTML part.
    pub cid: String,
}

/// The badge email's plain-text body.
#[derive(Template)]
#[template(path = "mail/award.txt")]
pub struct AwardText<'a> {
    pub m: &'a AwardView,
}

/// The badge email's HTML body: the same words, escaped, with the badge image.
#[derive(Template)]
#[template(path = "mail/award.html")]
pub struct AwardHtml<'a> {
    pub m: &'a AwardView,
}

/// The revocation email's plain-text body.
#[derive(Template)]
#[template(path = "mail/revoked.txt")]
pub struct RevokedText<'a> {
    pub m: &'a AwardView,
}

/// The revocation email's HTML body.
#[derive(Template)]
#[template(path = "mail/revoked.html")]
pub struct RevokedHtml<'a> {
    pub m: &'a AwardView,
}

/// "the course “A”", "the courses “A” and “B”", "the courses “A”, “B” and “C”".
fn course_phrase(titles: &[String]) -> Option<String> {
    let quoted: Vec<String> = titles.iter().map(|t| format!("\u{201c}{t}\u{201d}")).collect();
    match quoted.as_slice() {
        [] => None,
        [one] => Some(format!("the course {one}")),
        [init @ .., last] => Some(format!("the courses {} and {last}", init.join(", "))),
    }
}

fn lines(text: Option<&str>) -> Vec<String> {
    text.map(|t| t.trim().lines().map(|l| l.trim_end().to_string()).collect()).unwrap_or_default()
}

impl AwardView {
    pub fn new(mail: &crate::db::outbox::AwardMail, base: &str) -> AwardView {
        AwardView {
            name: mail.given_name.clone(),
            issuer: mail.issuer.clone(),
            title: mail.title.clone(),
            courses: course_phrase(&mail.courses),
            comment: lines(mail.narrative.as_deref()),
            post_url: mail.evidence_url.clone(),
            post_title: mail.post_title.clone(),
            url: ob::assertion_url(base, &mail.public_id),
            portfolio_url: mail.portfolio.as_deref().map(|p| format!("{base}/learners/{p}")),
            joined: mail.joined,
            lost_link_url: format!("{base}/subscription"),
            reason: lines(mail.revocation_reason.as_deref()),
            cid: format!("badge-{}@cairn", mail.public_id),
        }
    }
}

/// The badge email for an award: text and HTML bodies, the baked PNG shown in the HTML part
/// (by its Content-ID) and attached to download.
pub fn award_email(mail: crate::db::outbox::AwardMail, png: Vec<u8>, base: &str) -> Result<Email, askama::Error> {
    let view = AwardView::new(&mail, base);
    let text = AwardText { m: &view }.render()?;
    let html = AwardHtml { m: &view }.render()?;
    Ok(Email {
        to: mail.to,
        subject: format!("You earned the badge \u{201c}{}\u{201d}", view.title),
        text,
        html: Some(html),
        attachments: vec![(format!("badge-{}.png", mail.public_id), "image/png".into(), png.clone())],
        inline: vec![(view.cid, "image/png".into(), png)],
    })
}

/// The email that tells the learner a badge was revoked, and why.
pub fn revocation_email(mail: crate::db::outbox::AwardMail, base: &str) -> Result<Email, askama::Error> {
    let view = AwardView::new(&mail, base);
    Ok(Email {
        to: mail.to,
        subject: format!("Your badge \u{201c}{}\u{201d} was revoked", view.title),
        text: RevokedText { m: &view }.render()?,
        html: Some(RevokedHtml { m: &view }.render()?),
        ..Default::default()
    })
}

impl Notifier {
    /// Writes and sends an award's email: the badge, or (for [`Kind::RevocationEmail`]) its
    /// revocation. A forgotten learner, or an award with no address, gets nothing.
    pub(super) async fn send_email(&self, note: &Notification) -> Delivery {
        let Some(id) = note.award_id else {
            return Delivery::Fail { error: "an email notification with no award".into(), endpoint: None };
        };
        let mail = match self.db(move |c| crate::db::outbox::award_mail(c, id)).await {
            Ok(m) => m,
            Err(e) => return Delivery::Fail { error: e.to_string(), endpoint: None },
        };
        if mail.withdrawn {
            return Delivery::Fail { error: "the learner was forgotten".into(), endpoint: None };
        }
        if crate::domain::Email::parse(&mail.to).is_err() {
            return Delivery::Fail { error: "the award has no email address".into(), endpoint: None };
        }
        let email = if note.kind == Kind::RevocationEmail {
            revocation_email(mail, &self.base)
        } else {
            let png = match crate::badges::award::baked_png_of(&mail.images) {
                Ok(p) => p,
                Err(e) => return Delivery::Fail { error: e.to_string(), endpoint: None },
            };
            award_email(mail, png, &self.base)
        };
        let email = match email {
            Ok(e) => e,
            Err(e) => return Delivery::Fail { error: format!("the email could not be written: {e}"), endpoint: None },
        };
        match self.mailer.send(email).await {
            Ok(()) => Delivery::Done { status: Status::Sent, endpoint: None, location: None },
            Err(MailError::Address(a)) => Delivery::Fail { error: format!("bad address {a}"), endpoint: None },
            Err(e) => Delivery::Retry { error: e.to_string(), after: None },
        }
    }
}

/// The email that asks a learner to confirm a subscription. Everything in it is Cairn's own
/// words but the greeting, so that the join form cannot send anyone's text to an address of
/// their choosing.
#[derive(Template)]
#[template(path = "mail/join_confirm.txt")]
pub struct JoinConfirmText<'a> {
    /// The name given on the form, already bounded and stripped of control characters.
    pub greeting: &'a str,
    /// This site's name (the institution's; its base URL while it has none) and base URL.
    pub site: &'a str,
    pub base: &'a str,
    pub confirm_url: &'a str,
    pub manage_url: &'a str,
    /// The course whose join page led here, named with its tasks' hashtags.
    pub course: Option<&'a crate::db::courses::JoinedCourse>,
}

/// The subject of the subscription confirmation email.
pub const JOIN_CONFIRM_SUBJECT: &str = "Confirm your course feed";

/// The subscription confirmation email to `to`; its subject names the course when there is one.
pub fn join_confirmation(to: &str, body: &JoinConfirmText<'_>) -> Result<Email, askama::Error> {
    let subject = match body.course {
        Some(c) => format!("Confirm your feed for {}", c.title),
        None => JOIN_CONFIRM_SUBJECT.into(),
    };
    Ok(Email { to: to.to_string(), subject, text: body.render()?, ..Default::default() })
}

/// The email that asks a learner to confirm that they want to be forgotten: Cairn's own words
/// only, sent only to the address on file.
#[derive(Template)]
#[template(path = "mail/forget_confirm.txt")]
pub struct ForgetConfirmText<'a> {
    pub base: &'a str,
    pub confirm_url: &'a str,
}

/// The subject of the forget confirmation email.
pub const FORGET_CONFIRM_SUBJECT: &str = "Confirm that Cairn should forget you";

/// The forget confirmation email to `to`.
pub fn forget_confirmation(to: &str, body: &ForgetConfirmText<'_>) -> Result<Email, askama::Error> {
    Ok(Email { to: to.to_string(), subject: FORGET_CONFIRM_SUBJECT.into(), text: body.render()?, ..Default::default() })
}

/// The email that gives a learner the private links of their subscriptions again: Cairn's own
/// words and links only, sent only to the address on file.
#[derive(Template)]
#[template(path = "mail/private_links.txt")]
pub struct PrivateLinksText<'a> {
    /// The learner's name, stripped of control characters.
    pub greeting: &'a str,
    /// The site's name (the institution's) and its base URL.
    pub site: &'a str,
    pub base: &'a str,
    /// Each subscription's feed address and its new private link.
    pub links: &'a [(String, String)],
}

/// The private links email to `to`.
pub fn private_links(to: &str, body: &PrivateLinksText<'_>) -> Result<Email, askama::Error> {
    Ok(Email {
        to: to.to_string(),
        subject: format!("Your private link on {}", body.site),
        text: body.render()?,
        ..Default::default()
    })
}

/// The name the mails give this site: the institution's, or its address while it has none.
pub(crate) fn site_name(conn: &mut diesel::SqliteConnection, base: &str) -> crate::db::StoreResult<String> {
    let name = match crate::db::institution::get(conn) {
        Ok(i) => i.name.trim().to_string(),
        Err(crate::db::StoreError::NotFound(_)) => String::new(),
        Err(e) => return Err(e),
    };
    Ok(if name.is_empty() { base.to_string() } else { name })
}

impl Notifier {
    /// Writes a learner's private links mail: each confirmed subscription gets a new private
    /// link, whose token exists only in this mail (the store keeps its hash, and the link of
    /// any mail before stops working, as the mail says); sent to the address on file.
    pub(super) async fn send_private_links(&self, note: &Notification) -> Delivery {
        let Some(author) = note.author_id else {
            return Delivery::Fail { error: "a private links mail with no learner".into(), endpoint: None };
        };
        let (now, base) = (self.now(), self.base.clone());
        let stored = self
            .db(move |c| {
                crate::db::write_tx(c, |c| {
                    let learner = crate::db::feeds::get_author(c, author)?;
                    let Some(email) = learner.email else { return Ok(None) };
                    let mut links = vec![];
                    for feed in crate::db::feeds::owned_confirmed(c, author)? {
                        let token = crate::tokens::random_token();
                        crate::db::feeds::replace_manage_hash(c, feed.id, &crate::tokens::token_hash(&token), now)?;
                        links.push((feed.url, format!("{base}/subscription/{token}")));
                    }
                    let site = site_name(c, &base)?;
                    Ok(Some((email, learner.name, site, links)))
                })
            })
            .await;
        let (to, name, site, links) = match stored {
            Ok(Some(found)) if !found.3.is_empty() => found,
            Ok(_) => return Delivery::Fail { error: "no subscription to give a link to".into(), endpoint: None },
            Err(crate::db::StoreError::NotFound(_)) => {
                return Delivery::Fail { error: "the learner is gone".into(), endpoint: None };
            }
            Err(e) => return Delivery::Retry { error: e.to_string(), after: None },
        };
        let greeting: String = name.trim().chars().filter(|c| !c.is_control()).collect();
        let body = PrivateLinksText { greeting: &greeting, site: &site, base: &self.base, links: &links };
        self.send_written(private_links(&to, &body)).await
    }
}

impl Notifier {
    /// Writes a newsletter reader's confirmation mail, with a new link, and sends it; a reader
    /// who no longer waits for one gets nothing.
    pub(super) async fn send_newsletter_confirmation(&self, note: &Notification) -> Delivery {
        let Some(id) = note.newsletter_subscriber_id else {
            return Delivery::Fail { error: "a confirmation with no reader".into(), endpoint: None };
        };
        let (base, now) = (self.base.clone(), self.now());
        let email = match self.db(move |c| super::newsletter::confirmation_mail(c, id, &base, now)).await {
            Ok(Some(e)) => e,
            Ok(None) => {
                return Delivery::Fail {
                    error: "the reader no longer waits for a confirmation".into(),
                    endpoint: None,
                };
            }
            Err(e) => return Delivery::Retry { error: e.to_string(), after: None },
        };
        self.send_now(email).await
    }
}

/// What was made in an instructor's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    ApiToken,
    Webhook,
}

#[derive(Template)]
#[template(path = "mail/credential_created.txt")]
struct CredentialText<'a> {
    base: &'a str,
    what: &'a str,
    detail: &'a str,
    how: &'a str,
    manage: &'a str,
    when: &'a str,
}

/// The mail that tells an instructor a token or webhook was made in their name: what (the
/// token's name and scopes, or the webhook's URL), when, through which surface, and how to
/// undo it. It never holds the token or the webhook's secret.
pub fn credential_notice(
    to: &str,
    base: &str,
    what: Credential,
    detail: &str,
    how: &str,
    now: i64,
) -> Result<crate::email::Email, askama::Error> {
    let (noun, manage) = match what {
        Credential::ApiToken => ("An API token", format!("{base}/admin/tokens")),
        Credential::Webhook => ("A webhook", format!("{base}/api/v1/webhooks")),
    };
    let when =
        chrono::DateTime::from_timestamp(now, 0).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = CredentialText { base, what: noun, detail, how, manage: &manage, when: &when }.render()?;
    Ok(crate::email::Email {
        to: to.to_string(),
        subject: format!("{noun} was created for your Cairn account"),
        text,
        html: None,
        attachments: vec![],
        inline: vec![],
    })
}

/// What a credential notice says beside its time, as the outbox keeps it until it is sent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CredentialNote {
    pub what: Credential,
    /// The token's name and scopes, or the webhook's URL: never a secret.
    pub detail: String,
    /// Through which surface it was made.
    pub how: String,
}

impl Notifier {
    /// Writes and sends a queued credential notice to its instructor; it says the time it was
    /// queued, which is when the thing was made.
    pub(super) async fn send_credential_notice(&self, note: &Notification) -> Delivery {
        let (Some(id), Some(payload)) = (note.instructor_id, note.payload.clone()) else {
            return Delivery::Fail { error: "a credential notice with no instructor".into(), endpoint: None };
        };
        let found = match self.db(move |c| crate::db::instructors::find(c, id)).await {
            Ok(found) => found,
            Err(e) => return Delivery::Retry { error: e.to_string(), after: None },
        };
        let Some(instructor) = found else {
            return Delivery::Fail { error: "the instructor is gone".into(), endpoint: None };
        };
        let told: CredentialNote = match serde_json::from_str(&payload) {
            Ok(t) => t,
            Err(e) => return Delivery::Fail { error: format!("an unreadable credential notice: {e}"), endpoint: None },
        };
        let email =
            match credential_notice(&instructor.email, &self.base, told.what, &told.detail, &told.how, note.created_at)
            {
                Ok(e) => e,
                Err(e) => {
                    return Delivery::Fail { error: format!("the email could not be written: {e}"), endpoint: None };
                }
            };
        self.send_now(email).await
    }
}

impl Notifier {
    /// Writes a learner's forget confirmation, with a new link whose token exists only in the
    /// mail (the store keeps its hash, replacing the link of any mail before), and sends it to
    /// the address on file; a learner with no address gets nothing.
    pub(super) async fn send_forget_confirmation(&self, note: &Notification) -> Delivery {
        let Some(author) = note.author_id else {
            return Delivery::Fail { error: "a forget confirmation with no learner".into(), endpoint: None };
        };
        let now = self.now();
        let token = crate::tokens::random_token();
        let hash = crate::tokens::token_hash(&token);
        let stored = self
            .db(move |c| {
                crate::db::write_tx(c, |c| {
                    let Some(email) = crate::db::feeds::get_author(c, author)?.email else { return Ok(None) };
                    crate::db::learners::store_forget_request(c, author, &hash, now)?;
                    Ok(Some(email))
                })
            })
            .await;
        let email = match stored {
            Ok(Some(email)) => email,
            Ok(None) => return Delivery::Fail { error: "no email address on file".into(), endpoint: None },
            Err(crate::db::StoreError::NotFound(_)) => {
                return Delivery::Fail { error: "the learner is gone".into(), endpoint: None };
            }
            Err(e) => return Delivery::Retry { error: e.to_string(), after: None },
        };
        let confirm_url = format!("{}/forget/{token}", self.base);
        let body = ForgetConfirmText { base: &self.base, confirm_url: &confirm_url };
        self.send_written(forget_confirmation(&email, &body)).await
    }
}

impl Notifier {
    /// Writes a subscription's confirmation mail, with new links (a confirmation link and the
    /// private link to manage it, whose tokens exist only in the mail), and sends it; a
    /// subscription that no longer waits gets nothing.
    pub(super) async fn send_join_confirmation(&self, note: &Notification) -> Delivery {
        let Some(feed) = note.feed_id else {
            return Delivery::Fail { error: "a join confirmation with no subscription".into(), endpoint: None };
        };
        let (confirm, manage) = (crate::tokens::random_token(), crate::tokens::random_token());
        let hashes = (crate::tokens::token_hash(&confirm), crate::tokens::token_hash(&manage));
        let now = self.now();
        let renewed = self.db(move |c| crate::db::feeds::renew_join_tokens(c, feed, &hashes.0, &hashes.1, now)).await;
        let (to, name) = match renewed {
            Ok(Some(found)) => found,
            Ok(None) => {
                return Delivery::Fail {
                    error: "the subscription no longer waits for a confirmation".into(),
                    endpoint: None,
                };
            }
            Err(e) => return Delivery::Retry { error: e.to_string(), after: None },
        };
        let (slug, base) = (note.payload.clone().unwrap_or_default(), self.base.clone());
        let found = self.db(move |c| Ok((crate::db::courses::joined_course(c, &slug)?, site_name(c, &base)?))).await;
        let (course, site) = match found {
            Ok(found) => found,
            Err(e) => return Delivery::Retry { error: e.to_string(), after: None },
        };
        // The confirmation link carries the course and the private link's token, so the page
        // after confirming can name the course and give the private page.
        let confirm_url = {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            if let Some(c) = &course {
                query.append_pair("course", &c.slug);
            }
            query.append_pair("m", &manage);
            format!("{}/join/confirm/{confirm}?{}", self.base, query.finish())
        };
        let manage_url = format!("{}/subscription/{manage}", self.base);
        let greeting: String = name.trim().chars().filter(|c| !c.is_control()).collect();
        let body = JoinConfirmText {
            greeting: &greeting,
            site: &site,
            base: &self.base,
            confirm_url: &confirm_url,
            manage_url: &manage_url,
            course: course.as_ref(),
        };
        self.send_written(join_confirmation(&to, &body)).await
    }
}

impl Notifier {
    /// Sends a mail as written, or fails one that could not be written.
    async fn send_written<E: std::fmt::Display>(&self, written: Result<Email, E>) -> Delivery {
        match written {
            Ok(email) => self.send_now(email).await,
            Err(e) => Delivery::Fail { error: format!("the email could not be written: {e}"), endpoint: None },
        }
    }

    /// Sends a mail: an address that is bad or refused fails for good; anything else is tried
    /// again later.
    async fn send_now(&self, email: Email) -> Delivery {
        match self.mailer.send(email).await {
            Ok(()) => Delivery::Done { status: Status::Sent, endpoint: None, location: None },
            Err(e @ (MailError::Address(_) | MailError::Rejected(_))) => {
                Delivery::Fail { error: e.to_string(), endpoint: None }
            }
            Err(e) => Delivery::Retry { error: e.to_string(), after: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn award(name: Option<&str>) -> crate::db::outbox::AwardMail {
        crate::db::outbox::AwardMail {
            to: "ada@example.edu".into(),
            given_name: name.map(Into::into),
            public_id: "abc".into(),
            title: "Data <& me>".into(),
            courses: vec!["E-learning 3.0".into()],
            narrative: Some("Clear and <i>well</i> argued.\nKeep going.".into()),
            evidence_url: Some("https://ada.example/post".into()),
            post_title: Some("Data & me".into()),
            portfolio: Some("p1".into()),
            joined: true,
            revocation_reason: None,
            withdrawn: false,
            images: Default::default(),
            issuer: "Open U".into(),
        }
    }

    #[test]
    fn the_badge_email_names_the_course_post_and_comment_and_links_every_page() {
        let e = award_email(award(Some("Ada Lovelace")), vec![1, 2, 3], "https://cairn.example").unwrap();
        assert_eq!(
            e.text,
            "Hello Ada Lovelace,\n\nOpen U has awarded you the badge \u{201c}Data <& me>\u{201d} in the course \
             \u{201c}E-learning 3.0\u{201d}.\n\n\
             It was earned by your post \u{201c}Data & me\u{201d} (https://ada.example/post).\n\n\
             Your instructor's comment:\n> Clear and <i>well</i> argued.\n> Keep going.\n\n\
             Verify it, or share it: https://cairn.example/assertions/abc\n\n\
             All your badges, on your public page: https://cairn.example/learners/p1\n\n\
             Your private page, where you choose how your name appears, hide your public page or download your \
             data and badges, is the private link in the email you received when you joined. Lost it? Get it \
             again at https://cairn.example/subscription\n\n\
             The attached image carries the credential itself (an Open Badge); you can add it to a badge backpack.\n"
        );
        assert_eq!(e.subject, "You earned the badge \u{201c}Data <& me>\u{201d}");
        assert_eq!(e.attachments[0].0, "badge-abc.png");
        assert_eq!(e.inline, vec![("badge-abc@cairn".to_string(), "image/png".to_string(), vec![1, 2, 3])]);
    }

    #[test]
    fn a_learner_without_name_post_comment_or_pages_gets_the_short_mail() {
        let mut m = award(None);
        (m.courses, m.narrative, m.evidence_url, m.post_title, m.portfolio, m.joined) =
            (vec![], None, None, None, None, false);
        let e = award_email(m, vec![1], "https://cairn.example").unwrap();
        assert_eq!(
            e.text,
            "Hello,\n\nOpen U has awarded you the badge \u{201c}Data <& me>\u{201d}.\n\n\
             Verify it, or share it: https://cairn.example/assertions/abc\n\n\
             The attached image carries the credential itself (an Open Badge); you can add it to a badge backpack.\n"
        );
        let mut m = award(Some("Ada"));
        (m.courses, m.post_title) = (vec!["A".into(), "B".into(), "C".into()], None);
        let e = award_email(m, vec![1], "https://cairn.example").unwrap();
        assert!(
            e.text.contains("in the courses \u{201c}A\u{201d}, \u{201c}B\u{201d} and \u{201c}C\u{201d}."),
            "{}",
            e.text
        );
        assert!(e.text.contains("by your post https://ada.example/post.\n"), "{}", e.text);
    }

    #[test]
    fn the_html_body_escapes_what_learners_and_instructors_wrote_and_shows_the_badge() {
        let e = award_email(award(Some("<b>Ada</b>")), vec![1, 2, 3], "https://cairn.example").unwrap();
        let html = e.html.unwrap();
        assert!(html.contains("<p>Hello &#60;b&#62;Ada&#60;/b&#62;,</p>"), "{html}");
        assert!(html.contains("<strong>Data &#60;&#38; me&#62;</strong>"), "{html}");
        assert!(html.contains(r#"<img src="cid:badge-abc@cairn""#), "{html}");
        assert!(
            html.contains("<blockquote>Clear and &#60;i&#62;well&#60;/i&#62; argued.<br>Keep going.</blockquote>"),
            "{html}"
        );
        assert!(html.contains(r#"<a href="https://ada.example/post">Data &#38; me</a>"#), "{html}");
        assert!(html.contains(r#"<a href="https://cairn.example/assertions/abc">"#), "{html}");
        assert!(html.contains(r#"<a href="https://cairn.example/learners/p1">"#), "{html}");
        assert!(
            html.contains(r#"<a href="https://cairn.example/subscription">Get your private link again</a>"#),
            "{html}"
        );
        assert!(!html.contains("<b>") && !html.contains("<i>"), "{html}");
    }

    #[test]
    fn the_revocation_email_gives_the_reason_badge_course_and_page() {
        let mut m = award(Some("Ada"));
        m.revocation_reason = Some("Wrong <post>.\nSorry.".into());
        let e = revocation_email(m, "https://cairn.example").unwrap();
        assert_eq!(e.subject, "Your badge \u{201c}Data <& me>\u{201d} was revoked");
        assert_eq!(
            e.text,
            "Hello Ada,\n\nOpen U has revoked your badge \u{201c}Data <& me>\u{201d} in the course \
             \u{201c}E-learning 3.0\u{201d}.\n\nThe reason given:\n> Wrong <post>.\n> Sorry.\n\n\
             Its verification page now says that it is revoked: https://cairn.example/assertions/abc\n\n\
             If you think this is a mistake, write to your instructor.\n"
        );
        let html = e.html.unwrap();
        assert!(html.contains("<blockquote>Wrong &#60;post&#62;.<br>Sorry.</blockquote>"), "{html}");
        assert!(html.contains("E-learning 3.0") && html.contains("https://cairn.example/assertions/abc"), "{html}");
        assert!(e.attachments.is_empty() && e.inline.is_empty());
    }

    #[test]
    fn the_private_links_mail_gives_each_link_and_says_the_old_ones_stop_working() {
        let links =
            vec![("https://ada.example/feed.xml".to_string(), "https://cairn.example/subscription/t1".to_string())];
        let body = PrivateLinksText { greeting: "Ada", site: "Open U", base: "https://cairn.example", links: &links };
        let e = private_links("ada@example.edu", &body).unwrap();
        assert_eq!((e.subject.as_str(), e.to.as_str()), ("Your private link on Open U", "ada@example.edu"));
        assert_eq!(
            e.text,
            "Hello Ada,\n\nSomeone, probably you, asked Open U (https://cairn.example) for the private link of your \
             subscription.\n\n\
             Your private page for https://ada.example/feed.xml:\nhttps://cairn.example/subscription/t1\n\n\
             On your private page you change your name or your blog's address, choose how your name appears, see \
             your posts and badges, download your data or remove your subscription.\n\n\
             This link replaces the private link of the emails you received before: that one no longer works. Keep \
             this email, and share the link with no one.\n\n\
             If you did not ask for this, you need do nothing: only the link above works now, and it was sent only \
             to you.\n"
        );
    }

    #[test]
    fn the_join_confirmation_is_cairns_own_words_around_the_links() {
        let body = JoinConfirmText {
            greeting: "Ada",
            site: "https://cairn.example",
            base: "https://cairn.example",
            confirm_url: "https://cairn.example/join/confirm/t1",
            manage_url: "https://cairn.example/subscription/t2",
            course: None,
        };
        let e = join_confirmation("ada@example.edu", &body).unwrap();
        assert_eq!(
            e.text,
            "Hello Ada,\n\nSomeone, probably you, asked https://cairn.example to collect the posts of a blog for \
             its courses and gave this email address.\n\nTo confirm, open this link (it works for 48 hours) and press the \
             button on the page:\n\
             https://cairn.example/join/confirm/t1\n\n\
             Keep this private link to change or remove your subscription later:\n\
             https://cairn.example/subscription/t2\n\n\
             If you did not ask for this, ignore this message and nothing will happen.\n"
        );
        assert_eq!(
            (e.subject.as_str(), e.to.as_str(), e.html.is_none()),
            (JOIN_CONFIRM_SUBJECT, "ada@example.edu", true)
        );
        let named = JoinConfirmText { site: "Open U", ..body };
        let text = join_confirmation("ada@example.edu", &named).unwrap().text;
        assert!(text.contains("asked Open U (https://cairn.example) to collect"), "{text}");
    }
}

/// The mail that invites someone to the teaching team: Cairn's own words around the offer and
/// the link.
#[derive(Template)]
#[template(path = "mail/invitation.txt")]
struct InvitationText<'a> {
    base: &'a str,
    offer: &'a str,
    inviter: Option<&'a str>,
    until: &'a str,
    accept_url: &'a str,
}

impl Notifier {
    /// Writes an invitation mail with a new single-use link (the store keeps only its hash,
    /// replacing the link of any mail before) and sends it now; an invitation used or expired
    /// meanwhile gets nothing. Sending again gives a new link and voids the earlier one.
    pub async fn send_invitation(&self, id: i64) -> Result<(), String> {
        match self.invitation_delivery(id).await {
            Delivery::Done { .. } => Ok(()),
            Delivery::Fail { error, .. } | Delivery::Retry { error, .. } => Err(error),
        }
    }

    async fn invitation_delivery(&self, id: i64) -> Delivery {
        let token = crate::tokens::random_token();
        let hash = crate::tokens::token_hash(&token);
        let now = self.now();
        let mail = match self.db(move |c| crate::db::staff::renew_invitation_token(c, id, &hash, now)).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                return Delivery::Fail { error: "the invitation was used or expired".into(), endpoint: None };
            }
            Err(e) => return Delivery::Retry { error: e.to_string(), after: None },
        };
        let accept_url = format!("{}/invitations/{token}", self.base);
        let until = chrono::DateTime::from_timestamp(mail.expires_at, 0)
            .map(|d| d.format("%-d %B %Y, %H:%M UTC").to_string())
            .unwrap_or_default();
        let body = InvitationText {
            base: &self.base,
            offer: &mail.offer,
            inviter: mail.inviter.as_deref(),
            until: &until,
            accept_url: &accept_url,
        };
        let text = match body.render() {
            Ok(t) => t,
            Err(e) => return Delivery::Fail { error: format!("the email could not be written: {e}"), endpoint: None },
        };
        let email = Email {
            to: mail.to,
            subject: format!("You are invited to the teaching team as {}", mail.offer),
            text,
            ..Default::default()
        };
        self.send_now(email).await
    }
}
