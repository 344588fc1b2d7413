//! `cairn admin`: instructor accounts and the institution profile.

use std::io::IsTerminal;

use clap::Subcommand;

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

pub fn run(settings: &Settings, cmd: AdminCommand) -> anyhow::Result<()> {
    let words = |e: StoreError| match e {
        StoreError::Invalid(errors) => anyhow::anyhow!("{errors}"),
        e => e.into(),
    };
    match cmd {
        AdminCommand::Token(cmd) => super::token::run(settings, cmd),
        AdminCommand::Institution { name, url, email, description } => {
            let pool = open_store(settings)?;
            let mut conn = pool.get()?;
            let now = crate::clock::system_now();
            let current = crate::db::institution::get(&mut conn)?;
            if name.is_some() || url.is_some() || email.is_some() || description.is_some() {
                let form = crate::app::institution::InstitutionForm {
                    name: name.unwrap_or(current.name),
                    url: url.unwrap_or(current.url),
                    email: email.unwrap_or(current.email),
                    description: description.unwrap_or(current.description),
                };
                crate::app::institution::update(&mut conn, &form, None, now).map_err(words)?;
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
