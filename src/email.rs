//! Outgoing email through SMTP, or — with no SMTP host configured — as `.eml` files in
//! `<data dir>/mail/`, so that a fresh install works and instructors can read what would
//! have been sent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailSettings, SmtpTls};

#[derive(Clone)]
enum Backend {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(PathBuf),
}

/// Sends mail. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    backend: Backend,
    from: Mailbox,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("'{0}' is not an address mail can be sent to")]
    Address(String),
    #[error("the message could not be built: {0}")]
    Build(String),
    #[error("sending failed: {0}")]
    Send(String),
    /// The server refused the message for good (a 5xx answer): retrying will not help.
    #[error("refused: {0}")]
    Rejected(String),
}

/// Headers of a message sent to a mailing list (RFC 2369, 2919, 8058), and its Message-ID.
#[derive(Debug, Clone, Default)]
pub struct ListHeaders {
    /// (name, value) pairs, e.g. `List-Id`.
    pub headers: Vec<(&'static str, String)>,
    /// A Message-ID that stays the same if the message is sent again, so readers' mail
    /// programs can tell a repeat from a new message.
    pub message_id: Option<String>,
}

/// A message to send: plain text, with an optional HTML alternative and attachments.
#[derive(Default)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// (file name, MIME type, bytes)
    pub attachments: Vec<(String, String, Vec<u8>)>,
    /// Images the HTML part shows: (Content-ID, MIME type, bytes), referenced in the HTML as
    /// `cid:<Content-ID>` and sent beside it in a multipart/related part.
    pub inline: Vec<(String, String, Vec<u8>)>,
}

impl Mailer {
    pub fn new(settings: &MailSettings, data_dir: &Path) -> anyhow::Result<Mailer> {
        crate::net::install_crypto_provider();
        let from: Mailbox = settings.from.parse().map_err(|e| anyhow::anyhow!("mail.from: {e}"))?;
        let backend = match &settings.smtp_host {
            Some(host) => {
                let tls = match settings.smtp_tls {
                    SmtpTls::None => Tls::None,
                    SmtpTls::StartTls => Tls::Required(TlsParameters::new(host.clone())?),
                    SmtpTls::Tls => Tls::Wrapper(TlsParameters::new(host.clone())?),
                };
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
                    .port(settings.smtp_port)
                    .tls(tls)
                    .timeout(Some(Duration::from_secs(30)));
                if let (Some(u), Some(p)) = (&settings.smtp_username, &settings.smtp_password) {
                    b = b.credentials(Credentials::new(u.clone(), p.clone()));
                }
                Backend::Smtp(b.build())
            }
            None => Backend::File(data_dir.join("mail")),
        };
        Ok(Mailer { backend, from })
    }

    /// Where `.eml` files go when there is no SMTP server, else `None`.
    pub fn file_dir(&self) -> Option<&Path> {
        match &self.backend {
            Backend::File(p) => Some(p),
            Backend::Smtp(_) => None,
        }
    }

    pub async fn send(&self, email: Email) -> Result<(), MailError> {
        self.send_list(email, &ListHeaders::default()).await
    }

    /// Sends a message with list headers (see [`ListHeaders`]).
    pub async fn send_list(&self, email: Email, list: &ListHeaders) -> Result<(), MailError> {
        let to: Mailbox = email.to.parse().map_err(|_| MailError::Address(email.to.clone()))?;
        let mut builder = Message::builder().from(self.from.clone()).to(to).subject(email.subject);
        for (name, value) in &list.headers {
            let name = lettre::message::header::HeaderName::new_from_ascii(name.to_string())
                .map_err(|e| MailError::Build(e.to_string()))?;
            builder = builder.raw_header(lettre::message::header::HeaderValue::new(name, value.clone()));
        }
        if list.message_id.is_some() {
            builder = builder.message_id(list.message_id.clone());
        }
        let body = match email.html {
            Some(html) if !email.inline.is_empty() => {
                let mut related = MultiPart::related().singlepart(SinglePart::html(html));
                for (cid, mime, bytes) in email.inline {
                    let ct = ContentType::parse(&mime).map_err(|e| MailError::Build(e.to_string()))?;
                    related = related.singlepart(lettre::message::Attachment::new_inline(cid).body(bytes, ct));
                }
                MultiPart::alternative().singlepart(SinglePart::plain(email.text)).multipart(related)
            }
            Some(html) => MultiPart::alternative_plain_html(email.text, html),
            None => {
                MultiPart::mixed().singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(email.text))
            }
        };
        let message = if email.attachments.is_empty() {
            builder.multipart(body)
        } else {
            let mut mixed = MultiPart::mixed().multipart(body);
            for (name, mime, bytes) in email.attachments {
                let ct = ContentType::parse(&mime).map_err(|e| MailError::Build(e.to_string()))?;
                mixed = mixed.singlepart(lettre::message::Attachment::new(name).body(bytes, ct));
            }
            builder.multipart(mixed)
        }
        .map_err(|e| MailError::Build(e.to_string()))?;
        match &self.backend {
            Backend::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() { MailError::Rejected(e.to_string()) } else { MailError::Send(e.to_string()) }
            }),
            Backend::File(dir) => {
                // Mail holds learners' addresses and private links: owner-only, like the data dir.
                crate::db::datadir::create_private_dir(dir)
                    .map_err(|e| MailError::Send(format!("cannot create {}: {e}", dir.display())))?;
                let id = AsyncFileTransport::<Tokio1Executor>::new(dir)
                    .send(message)
                    .await
                    .map_err(|e| MailError::Send(e.to_string()))?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let path = dir.join(format!("{id}.eml"));
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| MailError::Send(format!("cannot protect {}: {e}", path.display())))?;
                }
                #[cfg(not(unix))]
                let _ = id;
                Ok(())
            }
        }
    }
}
