//! The mails Cairn writes, as templates in `templates/mail/`, and sending the badge email of
//! a queued notification.

use askama::Template;

use super::Notifier;
use super::outbox::Delivery;
use crate::badges::ob;
use crate::db::outbox::{Notification, Status};
use crate::email::{Email, MailError};

/// The badge email's plain-text body.
#[derive(Template)]
#[template(path = "mail/award.txt")]
pub struct AwardText<'a> {
    pub name: Option<&'a str>,
    pub issuer: &'a str,
    pub title: &'a str,
    /// The verification page.
    pub url: &'a str,
}

/// The badge email's HTML body: the same words, escaped.
#[derive(Template)]
#[template(path = "mail/award.html")]
pub struct AwardHtml<'a> {
    pub name: Option<&'a str>,
    pub issuer: &'a str,
    pub title: &'a str,
    pub url: &'a str,
}

/// The email that asks a learner to confirm a subscription. Everything in it is Cairn's own
/// words but the greeting, so that the join form cannot send anyone's text to an address of
/// their choosing.
#[derive(Template)]
#[template(path = "mail/join_confirm.txt")]
pub struct JoinConfirmText<'a> {
    /// The name given on the form, already bounded and stripped of control characters.
    pub greeting: &'a str,
    /// This site's base URL.
    pub base: &'a str,
    pub confirm_url: &'a str,
    pub manage_url: &'a str,
}

/// The subject of the subscription confirmation email.
pub const JOIN_CONFIRM_SUBJECT: &str = "Confirm your course feed";

/// The subscription confirmation email to `to`.
pub fn join_confirmation(to: &str, body: &JoinConfirmText<'_>) -> Result<Email, askama::Error> {
    Ok(Email {
        to: to.to_string(),
        subject: JOIN_CONFIRM_SUBJECT.into(),
        text: body.render()?,
        html: None,
        attachments: vec![],
    })
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
    Ok(Email {
        to: to.to_string(),
        subject: FORGET_CONFIRM_SUBJECT.into(),
        text: body.render()?,
        html: None,
        attachments: vec![],
    })
}

/// The badge email for an award: text and HTML bodies, and the baked PNG attached.
pub fn award_email(mail: crate::db::outbox::AwardMail, png: Vec<u8>, base: &str) -> Result<Email, askama::Error> {
    let url = ob::assertion_url(base, &mail.public_id);
    let (name, issuer, title) = (mail.name.as_deref(), mail.issuer.as_str(), mail.title.as_str());
    let text = AwardText { name, issuer, title, url: &url }.render()?;
    let html = AwardHtml { name, issuer, title, url: &url }.render()?;
    Ok(Email {
        to: mail.to,
        subject: format!("You earned the badge \u{201c}{title}\u{201d}"),
        text,
        html: Some(html),
        attachments: vec![(format!("badge-{}.png", mail.public_id), "image/png".into(), png)],
    })
}

impl Notifier {
    pub(super) async fn send_email(&self, note: &Notification) -> Delivery {
        let Some(id) = note.award_id else {
            return Delivery::Fail { error: "an email notification with no award".into(), endpoint: None };
        };
        let mail = match self.db(move |c| crate::db::outbox::award_mail(c, id)).await {
            Ok(m) => m,
            Err(e) => return Delivery::Fail { error: e.to_string(), endpoint: None },
        };
        let png = match crate::badges::award::baked_png_of(&mail.images) {
            Ok(p) => p,
            Err(e) => return Delivery::Fail { error: e.to_string(), endpoint: None },
        };
        let email = match award_email(mail, png, &self.base) {
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

impl Notifier {
    /// Writes a newsletter reader's confirmation mail, with a new link, and sends it; a reader
    /// who no longer waits for one gets nothing.
    pub(super) async fn send_newsletter_confirmation(&self, note: &Notification) -> Delivery {
        let Some(id) = note.newsletter_subscriber_id else {
            return Delivery::Fail { error: "a confirmation with no reader".into(), endpoint: None };
        };
        let (base, now) = (self.base.clone(), self.now());
        let email = match self.db(move |c| crate::app::newsletter::confirmation_mail(c, id, &base, now)).await {
            Ok(Some(e)) => e,
            Ok(None) => {
                return Delivery::Fail {
                    error: "the reader no longer waits for a confirmation".into(),
                    endpoint: None,
                };
            }
            Err(e) => return Delivery::Retry { error: e.to_string(), after: None },
        };
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
            name: name.map(Into::into),
            public_id: "abc".into(),
            title: "Data <& me>".into(),
            images: Default::default(),
            issuer: "Open U".into(),
        }
    }

    #[test]
    fn the_badge_email_says_hello_names_the_badge_and_links_its_page() {
        let e = award_email(award(Some("Ada")), vec![1, 2, 3], "https://cairn.example").unwrap();
        assert_eq!(
            e.text,
            "Hello Ada,\n\nOpen U has awarded you the badge \u{201c}Data <& me>\u{201d}.\n\n\
             Verify it, or share it: https://cairn.example/assertions/abc\n\n\
             The attached image carries the credential itself (an Open Badge); you can add it to a badge backpack.\n"
        );
        assert_eq!(e.subject, "You earned the badge \u{201c}Data <& me>\u{201d}");
        assert_eq!(e.attachments[0].0, "badge-abc.png");
        let anonymous = award_email(award(None), vec![1, 2, 3], "https://cairn.example").unwrap();
        assert!(anonymous.text.starts_with("Hello,\n\nOpen U"), "{}", anonymous.text);
    }

    #[test]
    fn the_html_body_escapes_what_learners_and_instructors_wrote() {
        let e = award_email(award(Some("<b>Ada</b>")), vec![1, 2, 3], "https://cairn.example").unwrap();
        let html = e.html.unwrap();
        assert!(html.contains("<p>Hello &#60;b&#62;Ada&#60;/b&#62;,</p>"), "{html}");
        assert!(html.contains("<strong>Data &#60;&#38; me&#62;</strong>"), "{html}");
        assert!(html.contains(r#"<a href="https://cairn.example/assertions/abc">"#), "{html}");
        assert!(!html.contains("<b>"), "{html}");
    }

    #[test]
    fn the_join_confirmation_is_cairns_own_words_around_the_links() {
        let body = JoinConfirmText {
            greeting: "Ada",
            base: "https://cairn.example",
            confirm_url: "https://cairn.example/join/confirm/t1",
            manage_url: "https://cairn.example/subscription/t2",
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
    }
}
