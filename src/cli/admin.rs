//! `cairn admin`: instructor accounts and the institution profile.

use std::io::IsTerminal;

use clap::Subcommand;

use crate::app::access::Role;
use crate::app::staff::{self, Offer};
use crate::config::Settings;
use crate::db::StoreError;
use crate::startup::open_store;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an instructor account. The password is read from CAIRN_PASSWORD, or asked for.
    CreateInstructor {
        /// The instructor's email, used to sign in.
        #[arg(long, value_name = "EMAIL")]
        email: String,
    },
    /// Set a new password for an instructor, sign them out everywhere, revoke their API tokens
    /// and disable their webhooks. The password is read from CAIRN_PASSWORD, or asked for.
    ResetPassword {
        /// The instructor's email.
        #[arg(long, value_name = "EMAIL")]
        email: String,
    },
    /// API access tokens: create, list, revoke.
    #[command(subcommand)]
    Token(super::token::TokenCommand),
    /// Invite someone to the teaching team: a course role (--course and --role) or institution
    /// admin (--admin). The mail, with a single-use link valid for 7 days, is sent by the
    /// running server (or at its next start).
    Invite {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        /// The course, by slug.
        #[arg(long, value_name = "SLUG", required_unless_present = "admin", requires = "role")]
        course: Option<String>,
        /// owner, editor or reviewer.
        #[arg(long, value_name = "ROLE")]
        role: Option<String>,
        /// Invite as institution admin.
        #[arg(long, conflicts_with_all = ["course", "role"])]
        admin: bool,
    },
    /// Give an instructor a role in a course (replacing the one they held there), or make
    /// them an institution admin (--admin).
    Grant {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        #[arg(long, value_name = "SLUG", required_unless_present = "admin", requires = "role")]
        course: Option<String>,
        /// owner, editor or reviewer.
        #[arg(long, value_name = "ROLE")]
        role: Option<String>,
        #[arg(long, conflicts_with_all = ["course", "role"])]
        admin: bool,
    },
    /// Take an instructor's role in a course away, or their admin rights (--admin).
    RevokeRole {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        #[arg(long, value_name = "SLUG", required_unless_present = "admin")]
        course: Option<String>,
        #[arg(long, conflicts_with = "course")]
        admin: bool,
    },
    /// List the instructors, admins and course roles (of one course with --course).
    Staff {
        #[arg(long, value_name = "SLUG")]
        course: Option<String>,
    },
    /// Print the audit trail, newest first: who did what, when and from where.
    Audit {
        /// Only events on or after this day (YYYY-MM-DD, UTC).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// At most this many events.
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
    /// Show the institution profile (the issuer every badge names), or change the fields
    /// given. The first award waits until it has a name, a web address and a contact email.
    Institution {
        /// The institution's name.
        #[arg(long)]
        name: Option<String>,
        /// Its web address (http or https).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// The contact email shown to those who check a badge.
        #[arg(long, value_name = "EMAIL")]
        email: Option<String>,
        /// A short description.
        #[arg(long)]
        description: Option<String>,
    },
}

pub fn run(settings: &Settings, cmd: AdminCommand, acting: Option<&str>) -> anyhow::Result<()> {
    let words = |e: StoreError| match e {
        StoreError::Invalid(errors) => anyhow::anyhow!("{errors}"),
        StoreError::Forbidden(why) => anyhow::anyhow!("refused: {why}"),
        e => e.into(),
    };
    let role = |r: Option<String>| -> anyhow::Result<Role> {
        Role::parse(r.as_deref().unwrap_or_default()).map_err(|e| anyhow::anyhow!(e))
    };
    match cmd {
        AdminCommand::Invite { email, course, role: r, admin } => {
            let pool = open_store(settings)?;
            let mut conn = pool.get()?;
            let actor = super::actor(&mut conn, acting)?;
            let now = crate::clock::system_now();
            let offer = match (admin, course) {
                (true, _) => Offer::Admin,
                (false, Some(slug)) => {
                    let course = staff::course_by_slug(&mut conn, &slug).map_err(words)?;
                    Offer::Course { course: course.id, role: role(r)? }
                }
                (false, None) => anyhow::bail!("give --course and --role, or --admin"),
            };
            let inv = staff::invite(&mut conn, &actor, &email, offer, now).map_err(words)?;
            drop(conn);
            // The mail is written and sent now; the SMTP pool lives on the runtime.
            let sent = super::runtime()?
                .block_on(async { anyhow::Ok(super::notifier(settings, &pool)?.send_invitation(inv.id).await) })?;
            match sent {
                Ok(()) => println!(
                    "Invited {}; the mail holds a link that works once, for {} days.",
                    inv.email,
                    staff::INVITATION_DAYS
                ),
                Err(e) => anyhow::bail!(
                    "the invitation to {} is made, but its mail could not be sent ({e}); invite again to send a new link",
                    inv.email
                ),
            }
            Ok(())
        }
        AdminCommand::Grant { email, course, role: r, admin } => {
            let pool = open_store(settings)?;
            let mut conn = pool.get()?;
            let actor = super::actor(&mut conn, acting)?;
            let now = crate::clock::system_now();
            if admin {
                let who = staff::set_admin(&mut conn, &actor, &email, true, now).map_err(words)?;
                println!("{} is an institution admin.", who.email);
            } else {
                let slug = course.unwrap_or_default();
                let course = staff::course_by_slug(&mut conn, &slug).map_err(words)?;
                let r = role(r)?;
                let who = staff::grant(&mut conn, &actor, &email, course.id, r, now).map_err(words)?;
                println!("{} is {} of {} ({}).", who.email, r.as_str(), course.title, course.slug);
            }
            Ok(())
        }
        AdminCommand::RevokeRole { email, course, admin } => {
            let pool = open_store(settings)?;
            let mut conn = pool.get()?;
            let actor = super::actor(&mut conn, acting)?;
            let now = crate::clock::system_now();
            if admin {
                let who = staff::set_admin(&mut conn, &actor, &email, false, now).map_err(words)?;
                println!("{} is no longer an institution admin.", who.email);
            } else {
                let slug = course.unwrap_or_default();
                let course = staff::course_by_slug(&mut conn, &slug).map_err(words)?;
                let held = staff::revoke_role(&mut conn, &actor, &email, course.id, now).map_err(words)?;
                println!("{email} is no longer {} of {} ({}).", held.as_str(), course.title, course.slug);
            }
            Ok(())
        }
        AdminCommand::Staff { course } => {
            let pool = open_store(settings)?;
            let mut conn = pool.get()?;
            let course = course.map(|slug| staff::course_by_slug(&mut conn, &slug)).transpose().map_err(words)?;
            if course.is_none() {
                for i in crate::db::instructors::list(&mut conn)? {
                    println!("{}{}", i.email, if i.admin { "  (institution admin)" } else { "" });
                }
                println!();
            }
            let rows = crate::db::staff::list(&mut conn, course.map(|c| c.id))?;
            if rows.is_empty() {
                println!("No course roles.");
            }
            for r in rows {
                println!("{:<24} {:<9} {}", r.course_slug, r.role, r.email);
            }
            Ok(())
        }
        AdminCommand::Audit { since, json, limit } => {
            let pool = open_store(settings)?;
            let mut conn = pool.get()?;
            let actor = super::actor(&mut conn, acting)?;
            let since = since
                .map(|d| crate::app::audit::day_start(&d).map_err(|e| anyhow::anyhow!("--since {e}")))
                .transpose()?;
            let filter = crate::db::audit::Filter { since, ..Default::default() };
            let (events, total) =
                crate::app::audit::list(&mut conn, &actor, filter, 1, limit.clamp(1, 100_000)).map_err(words)?;
            for e in &events {
                if json {
                    println!("{}", serde_json::to_string(e)?);
                } else {
                    let when = super::rfc3339(Some(e.at)).unwrap_or_default();
                    let from = e.client.as_deref().map(|c| format!(" from {c}")).unwrap_or_default();
                    println!(
                        "{when}  {:<18} {} ({}{from}): {}{}",
                        e.action,
                        e.actor,
                        e.surface,
                        e.subject,
                        if e.detail.is_empty() { String::new() } else { format!(" — {}", e.detail) }
                    );
                }
            }
            if !json && (events.len() as i64) < total {
                eprintln!("{} of {total} event(s) shown; use --limit or --since.", events.len());
            }
            Ok(())
        }
        AdminCommand::Token(cmd) => super::token::run(settings, cmd, acting),
        AdminCommand::Institution { name, url, email, description } => {
            let pool = open_store(settings)?;
            let mut conn = pool.get()?;
            let now = crate::clock::system_now();
            let current = crate::db::institution::get(&mut conn)?;
            if name.is_some() || url.is_some() || email.is_some() || description.is_some() {
                let actor = super::actor(&mut conn, acting)?;
                actor.require_admin("change the institution profile").map_err(words)?;
                let form = crate::app::institution::InstitutionForm {
                    name: name.unwrap_or(current.name),
                    url: url.unwrap_or(current.url),
                    email: email.unwrap_or(current.email),
                    description: description.unwrap_or(current.description),
                };
                crate::app::institution::update(&mut conn, &form, None, now).map_err(words)?;
                crate::app::audit::record(&mut conn, &actor, "institution.update", None, "profile", "", now)?;
            }
            let inst = crate::db::institution::get(&mut conn)?;
            let shown = |v: &str| if v.is_empty() { "(none)".to_string() } else { v.to_string() };
            println!("Name:        {}", shown(&inst.name));
            println!("Web address: {}", shown(&inst.url));
            println!("Email:       {}", shown(&inst.email));
            println!("Description: {}", shown(&inst.description));
            let missing = crate::app::institution::missing_for_issuing(&inst);
            if !missing.is_empty() {
                println!("Before the first award, give it {}.", crate::app::institution::in_words(&missing));
            }
            Ok(())
        }
        AdminCommand::CreateInstructor { email } => {
            let password = password()?;
            let pool = open_store(settings)?;
            let instructor =
                crate::app::instructors::create(&mut *pool.get()?, &email, &password, crate::clock::system_now())
                    .map_err(words)?;
            println!("Created instructor {} (id {}).", instructor.email, instructor.id);
            Ok(())
        }
        AdminCommand::ResetPassword { email } => {
            let pool = open_store(settings)?;
            let mut conn = pool.get()?;
            if crate::db::instructors::find_by_email(&mut conn, &email)?.is_none() {
                anyhow::bail!("no instructor has the email {email}");
            }
            let password = password()?;
            let (instructor, ended) =
                crate::app::instructors::reset_password(&mut conn, &email, &password, crate::clock::system_now())
                    .map_err(words)?;
            println!("Reset the password of {}; {ended}.", instructor.email);
            Ok(())
        }
    }
}

/// The password from `CAIRN_PASSWORD`, or asked for twice on a terminal.
fn password() -> anyhow::Result<String> {
    match std::env::var("CAIRN_PASSWORD") {
        Ok(p) => Ok(p),
        Err(_) => ask_password(),
    }
}

fn ask_password() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no password: set CAIRN_PASSWORD or run in a terminal to be asked");
    }
    let first = rpassword::prompt_password("Password (at least 10 characters): ")?;
    let second = rpassword::prompt_password("Password again: ")?;
    if first != second {
        anyhow::bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}
