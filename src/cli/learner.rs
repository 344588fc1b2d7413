//! `cairn learner`: a learner's rights over their data.

use std::io::{BufRead as _, IsTerminal, Write as _};

use clap::Subcommand;

use crate::app::learners::{self, Requester, Who};
use crate::config::Settings;
use crate::db::StoreError;
use crate::startup::open_store;

#[derive(Debug, Subcommand)]
pub enum LearnerCommand {
    /// Forget a learner: delete their name, email, feeds, harvested posts, notifications and
    /// the Webmentions about them; withdraw their awards (their URLs then answer 410 Gone and
    /// the revocation list says "withdrawn"). The chain stays valid and can no longer be tied
    /// to them. Asks for confirmation on a terminal.
    Forget {
        /// The learner's email.
        email: String,
        /// Do not ask; needed when not on a terminal.
        #[arg(long)]
        yes: bool,
    },
}

pub fn run(settings: &Settings, cmd: LearnerCommand, acting: Option<&str>) -> anyhow::Result<()> {
    match cmd {
        LearnerCommand::Forget { email, yes } => forget(settings, &email, yes, acting),
    }
}

fn forget(settings: &Settings, email: &str, yes: bool, acting: Option<&str>) -> anyhow::Result<()> {
    let words = |e: StoreError| match e {
        StoreError::Invalid(errors) => anyhow::anyhow!("{errors}"),
        StoreError::NotFound(_) => anyhow::anyhow!("Cairn holds nothing about that address"),
        e => e.into(),
    };
    let pool = open_store(settings)?;
    let mut conn = pool.get()?;
    let actor = super::actor(&mut conn, acting)?;
    // Refused before anything is asked or shown.
    actor.require_admin("forget a learner").map_err(words)?;
    let h = learners::preview(&mut conn, Who::Email(email)).map_err(words)?;
    if !yes {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!("not on a terminal: add --yes to forget the learner without being asked");
        }
        let name = h.author.as_ref().map_or("(no feed)", |a| a.name.as_str());
        println!(
            "Forget {name} <{email}>: {} award(s) will be withdrawn, {} feed(s) and {} post(s) deleted. \
             This cannot be undone.",
            h.awards.len(),
            h.feeds.len(),
            h.posts
        );
        print!("Type yes to forget them: ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            anyhow::bail!("not confirmed; nothing was changed");
        }
    }
    let base = settings.public_base_url(settings.bind);
    let raster = crate::badges::bake::RasterCache::default();
    let key = crate::ledger::load_key(&settings.data_dir)?;
    let issuer = crate::badges::award::Issuer { base: &base, raster: &raster, signer: &key };
    let done =
        learners::forget(&mut conn, &issuer, Who::Email(email), Requester::Staff(actor), crate::clock::system_now())
            .map_err(words)?;
    println!(
        "Forgotten: {} award(s) withdrawn, {} post(s) deleted, {} mail file(s) deleted (audit entry {}).",
        done.awards_withdrawn, done.posts_deleted, done.mail_files_deleted, done.event.id
    );
    if !done.log_emptied {
        println!(
            "The database's write-ahead log was in use; older copies of the erased rows leave it at the next \
             checkpoint (at the latest when the server stops)."
        );
    }
    Ok(())
}
