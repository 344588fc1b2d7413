//! `cairn admin token`: an instructor's API access tokens.

use clap::Subcommand;

use crate::config::Settings;
use crate::db::StoreError;
use crate::startup::open_store;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make an API token for an instructor. The token is printed once, alone on the last line;
    /// only its hash is kept.
    Create {
        /// The instructor's email.
        #[arg(long, value_name = "EMAIL")]
        email: String,
        /// Comma-separated scopes: read, awards:write, reader:write, webhooks:write.
        #[arg(long, value_name = "SCOPES")]
        scope: String,
        /// Days until the token expires (default: never; it works until revoked).
        #[arg(long, value_name = "DAYS")]
        expires: Option<i64>,
        /// A name to tell the token by.
        #[arg(long, value_name = "NAME", default_value = "API token")]
        name: String,
        /// Narrow the token to this course (by slug; repeat for several). The token acts with
        /// its instructor's roles, and only in these courses.
        #[arg(long = "course", value_name = "SLUG")]
        courses: Vec<String>,
    },
    /// List an instructor's tokens (never the tokens themselves).
    List {
        #[arg(long, value_name = "EMAIL")]
        email: String,
    },
    /// Revoke one of an instructor's tokens, by the id `list` shows.
    Revoke {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        /// The token's id.
        id: i64,
    },
}

pub fn run(settings: &Settings, cmd: TokenCommand, acting: Option<&str>) -> anyhow::Result<()> {
    let words = |e: StoreError| match e {
        StoreError::Invalid(errors) => anyhow::anyhow!("{errors}"),
        e => e.into(),
    };
    let pool = open_store(settings)?;
    let mut conn = pool.get()?;
    let now = crate::clock::system_now();
    let actor = super::actor(&mut conn, acting)?;
    let instructor = |conn: &mut diesel::SqliteConnection, email: &str| {
        crate::db::instructors::find_by_email(conn, email)?
            .ok_or_else(|| anyhow::anyhow!("no instructor has the email {email}"))
    };
    match cmd {
        TokenCommand::Create { email, scope, expires, name, courses } => {
            let scopes = crate::app::tokens::parse_scopes(&scope).map_err(words)?;
            let who = instructor(&mut conn, &email)?;
            let courses = courses
                .iter()
                .map(|slug| crate::app::staff::course_by_slug(&mut conn, slug))
                .collect::<Result<Vec<_>, _>>()
                .map_err(words)?;
            let made =
                crate::app::tokens::create(&mut conn, &actor, who.id, &name, &scopes, expires, now).map_err(words)?;
            let ids: Vec<i64> = courses.iter().map(|c| c.id).collect();
            crate::app::tokens::narrow(&mut conn, made.token.id, &ids)?;
            if !courses.is_empty() {
                let slugs: Vec<&str> = courses.iter().map(|c| c.slug.as_str()).collect();
                println!("The token acts only in: {}.", slugs.join(", "));
            }
            let until = super::rfc3339(made.token.expires_at).unwrap_or_else(|| "until revoked".into());
            println!(
                "Created token {} \"{}\" for {} ({}), valid {until}.",
                made.token.id, made.token.name, who.email, made.token.scopes
            );
            println!("It is shown only now; keep it secret. Use it as: Authorization: Bearer <token>");
            println!("{}", made.secret);
            let detail = format!("\"{}\" with the scopes {}", made.token.name, made.token.scopes);
            let what = crate::app::instructors::Credential::ApiToken;
            let how = "with cairn admin token create";
            // The token is made already: a notice that cannot be queued is logged, not an error.
            let queued = crate::app::instructors::queue_credential_notice(&mut conn, who.id, what, detail, how, now);
            drop(conn);
            let queued = match queued {
                Ok(id) => id,
                Err(e) => {
                    tracing::error!(error = %e, instructor = who.id, "queueing the credential notice failed");
                    return Ok(());
                }
            };
            // No delivery job runs here: the notice is delivered now, and stays queued for the
            // server's if the mail server is away. The SMTP pool lives on the runtime: made and
            // dropped inside it.
            super::runtime()?.block_on(async {
                let notifier = super::notifier(settings, &pool)?;
                if let Err(e) = notifier.deliver_now(vec![queued]).await {
                    tracing::error!(error = %e, "delivering the credential notice failed; it stays queued");
                }
                anyhow::Ok(())
            })?;
            Ok(())
        }
        TokenCommand::List { email } => {
            let who = instructor(&mut conn, &email)?;
            for t in crate::db::tokens::list_for(&mut conn, who.id)? {
                let state = match (t.revoked_at, t.is_live(now)) {
                    (Some(r), _) => format!("revoked {}", super::rfc3339(Some(r)).unwrap_or_default()),
                    (None, false) => "expired".to_string(),
                    (None, true) => "live".to_string(),
                };
                let used = match (t.last_used_at, t.last_used_addr.as_deref()) {
                    (Some(at), addr) => {
                        format!(
                            "last used {} from {}",
                            super::rfc3339(Some(at)).unwrap_or_default(),
                            addr.unwrap_or("?")
                        )
                    }
                    (None, _) => "never used".to_string(),
                };
                println!("{}\t{}\t{}\t{state}\t{used}", t.id, t.name, t.scopes);
            }
            Ok(())
        }
        TokenCommand::Revoke { email, id } => {
            let who = instructor(&mut conn, &email)?;
            let t = crate::app::tokens::revoke(&mut conn, &actor, who.id, id, now).map_err(words)?;
            println!("Revoked token {} \"{}\".", t.id, t.name);
            Ok(())
        }
    }
}
