//! The `cairn` command line, one file per command group. Every subcommand reads the same
//! settings (config file, `CAIRN_*` environment, flags), so it can work on the data dir of a
//! running server. Commands parse, call a use case in `src/app/` (or a job), and print.

mod admin;
mod award;
mod backup;
mod chain;
mod credential;
mod db;
mod feeds;
mod learner;
mod newsletter;
mod peer;
mod serve;
mod token;
mod webmention;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{LogFormat, Overrides, Settings};

pub use admin::AdminCommand;
pub use award::AwardArgs;
pub use chain::ChainCommand;
pub use credential::{CredentialCommand, IdentityCommand};
pub use feeds::FeedCommand;
pub use learner::LearnerCommand;
pub use newsletter::NewsletterCommand;
pub use peer::PeerCommand;
pub use webmention::WebmentionCommand;

#[derive(Debug, Parser)]
#[command(
    name = "cairn",
    version,
    about = "Cairn: connectivist MOOCs with feed harvesting, Open Badges and a shared recognition chain",
    long_about = "Cairn runs connectivist courses: instructors lay out courses, modules and tasks; \
        learners' blog posts are harvested and recognised with Open Badges.\n\n\
        Settings come from an optional cairn.toml (or --config), then CAIRN_* environment \
        variables, then flags. Every command uses the same settings, so it can work on the data \
        directory of a running server."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Act as this instructor, with their roles (checked as on the web and the API, and
    /// recorded in the audit trail). Without it the command acts as the institution, with
    /// every right: whoever runs it holds the database. Commands that act for the
    /// institution alone (backup, chain, harvest, newsletter, webmention, serve…) need an
    /// admin here; restore takes no --as.
    #[arg(long = "as", global = true, env = "CAIRN_AS", value_name = "EMAIL")]
    pub acting_as: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (creates the data dir and database on first start).
    Serve {
        /// Seed the demo course if absent, create the demo instructor and print its password.
        #[arg(long)]
        demo: bool,
    },
    /// Administrative tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Seed the demo course "E-Learning 3.0" (once), its sample learners and the demo
    /// instructor; or, with --remove, take every demo row away.
    Demo {
        /// Remove the demo: its learners with their feeds, posts, awards and blogs, the demo
        /// instructor and the demo course (chain records stay: the chain is append-only).
        #[arg(long)]
        remove: bool,
    },
    /// Poll learners' feeds now: the feeds that are due (or one feed), with a progress bar.
    Harvest {
        /// One pass, then exit (default: keep polling until interrupted).
        #[arg(long)]
        once: bool,
        /// Poll only this feed (by id, as shown on the Feeds page), due or not; implies --once.
        #[arg(long, value_name = "ID")]
        feed: Option<i64>,
    },
    /// Feed tools for debugging a learner's feed.
    #[command(subcommand)]
    Feed(FeedCommand),
    /// Award a Task's badge (exactly as the Reader does) and print the assertion URL; or
    /// award in bulk from a CSV file with columns task,recipient,evidence,name,narrative.
    Award(AwardArgs),
    /// The recognition chain: verify, export, import.
    #[command(subcommand)]
    Chain(ChainCommand),
    /// Print this institution's chain identity (its Ed25519 public key) and network; or
    /// rotate the key Open Badges 3.0 credentials are signed with.
    Identity {
        #[command(subcommand)]
        action: Option<IdentityCommand>,
    },
    /// Peer institutions sharing the chain (the trust list).
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Webmention tools for debugging a learner's site.
    #[command(subcommand)]
    Webmention(WebmentionCommand),
    /// Open Badges 3.0 credentials: verify one.
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Write one signed archive of this instance (a consistent copy of the database,
    /// institution.key, session.key, every credential key, the effective settings without
    /// secrets), safely while the server runs.
    Backup {
        /// The archive to write (a .tar.gz); it appears only when complete.
        file: std::path::PathBuf,
    },
    /// Restore an archive made by `cairn backup` into the data dir (--data-dir). Everything is
    /// checked in a temporary directory beside it first (the manifest's signature and hashes,
    /// the database's schema and counts, the chain, the keys); the data dir is changed only
    /// when all of it holds. Refuses a non-empty dir.
    Restore {
        /// The archive.
        file: std::path::PathBuf,
        /// Replace the database and keys of a non-empty data dir.
        #[arg(long)]
        force: bool,
        /// Refuse an archive of any other institution: its public key (hex, as `cairn
        /// identity` prints it) or its did:key.
        #[arg(long, value_name = "KEY_OR_DID")]
        expect_institution: Option<String>,
    },
    /// A learner's rights over their data: forget a learner.
    #[command(subcommand)]
    Learner(LearnerCommand),
    /// A course's daily newsletter: send an issue now, import readers, list them.
    #[command(subcommand)]
    Newsletter(NewsletterCommand),
    /// The database: its schema version and pending migrations.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Revoke an award, given its assertion URL (or id), with a reason.
    Revoke {
        /// The assertion URL, e.g. https://cairn.example.edu/assertions/3f2a…
        assertion: String,
        /// Why the badge is revoked (shown on the verification page).
        #[arg(long)]
        reason: String,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let matches = command().get_matches();
    let flags = Overrides::from_matches(&matches);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Logging follows `[log] format`, so the settings are read before it starts; a bad
    // setting is reported as plain text, as any error before logging starts.
    let settings = match Settings::load(&flags) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cairn: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let format = settings.log.format;
    init_tracing(format);
    match run_with(cli, settings) {
        Ok(()) => ExitCode::SUCCESS,
        // A collector reading JSON lines gets the error as one of them.
        Err(e) if format == LogFormat::Json => {
            tracing::error!(error = format!("{e:#}"), "the command failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("cairn: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG`: text (coloured on a terminal) or one JSON object a
/// line, with the event's fields at the top level and the span's (a request's `request_id`)
/// under `span`.
fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,actix_server=warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
    };
}

/// The command line: the subcommands, plus the global flags and the settings list, both
/// generated from the declared settings.
pub fn command() -> clap::Command {
    Cli::command().args(crate::config::flag_args()).after_long_help(crate::config::settings_help())
}

pub fn run(cli: Cli, flags: &Overrides) -> anyhow::Result<()> {
    run_with(cli, Settings::load(flags)?)
}

/// [`run`] with the settings already read.
pub fn run_with(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    let acting = cli.acting_as.as_deref();
    // Commands that check roles themselves take `acting`; the others act for the institution,
    // so `--as` names an admin there.
    let institution_only = !matches!(
        cli.command,
        Command::Admin(_)
            | Command::Award(_)
            | Command::Revoke { .. }
            | Command::Identity { action: Some(IdentityCommand::Rotate) }
            | Command::Peer(_)
            | Command::Learner(_)
    );
    if let (Command::Restore { .. }, Some(_)) = (&cli.command, acting) {
        // Nothing is opened before a restore: it may be run on an empty data dir.
        anyhow::bail!("cairn restore acts for the institution, whoever holds the data dir: run it without --as");
    }
    if let (Command::Db(_), Some(_)) = (&cli.command, acting) {
        // Checking a role would open the store, which runs the migrations this reports on.
        anyhow::bail!("cairn db reads the database file, whoever holds the data dir: run it without --as");
    }
    if institution_only && let Some(email) = acting {
        let pool = crate::startup::open_store(&settings)?;
        let actor = actor(&mut *pool.get()?, Some(email))?;
        actor.require_admin("run this command").map_err(|e| anyhow::anyhow!("--as {email}: {e}"))?;
    }
    match cli.command {
        Command::Serve { demo } => serve::serve(&settings, demo),
        Command::Demo { remove: false } => serve::demo(&settings),
        Command::Demo { remove: true } => serve::remove_demo(&settings),
        Command::Admin(cmd) => admin::run(&settings, cmd, acting),
        Command::Harvest { once, feed } => feeds::harvest(&settings, once || feed.is_some(), feed),
        Command::Feed(cmd) => feeds::run(&settings, cmd),
        Command::Award(args) => award::award(&settings, args, acting),
        Command::Revoke { assertion, reason } => award::revoke(&settings, &assertion, &reason, acting),
        Command::Chain(cmd) => chain::run(&settings, cmd),
        Command::Identity { action: None } => chain::identity(&settings),
        Command::Identity { action: Some(IdentityCommand::Rotate) } => credential::rotate(&settings, acting),
        Command::Peer(cmd) => peer::run(&settings, cmd, acting),
        Command::Webmention(cmd) => webmention::run(&settings, cmd),
        Command::Credential(cmd) => credential::run(&settings, cmd),
        Command::Learner(cmd) => learner::run(&settings, cmd, acting),
        Command::Backup { file } => backup::backup(&settings, &file),
        Command::Restore { file, force, expect_institution } => {
            backup::restore(&settings, &file, force, expect_institution.as_deref())
        }
        Command::Newsletter(cmd) => newsletter::run(&settings, cmd),
        Command::Db(cmd) => db::run(&settings, cmd),
    }
}

/// Who a command acts as: the instructor named by `--as` with their roles, or the
/// institution itself.
pub(crate) fn actor(
    conn: &mut diesel::SqliteConnection,
    acting: Option<&str>,
) -> anyhow::Result<crate::app::access::Actor> {
    use crate::app::access::{Actor, Surface};
    match acting {
        None => Ok(Actor::institution(Surface::Cli)),
        Some(email) => {
            let who = crate::db::instructors::find_by_email(conn, email)?
                .ok_or_else(|| anyhow::anyhow!("--as {email}: no instructor has this email"))?;
            Ok(Actor::load(conn, &who, Surface::Cli, None)?)
        }
    }
}

/// A notifier for a command that sends a mail at once; make it inside the runtime that drives
/// it, since the SMTP pool lives there.
pub(crate) fn notifier(settings: &Settings, pool: &crate::db::DbPool) -> anyhow::Result<crate::notify::Notifier> {
    let base = settings.public_base_url(settings.bind);
    let mailer = crate::email::Mailer::new(&settings.mail, &settings.data_dir)?;
    let fetcher = crate::harvest::fetcher(&settings.harvest, &[], &base)?;
    Ok(crate::notify::Notifier::new(pool.clone(), fetcher, mailer, base))
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

pub(crate) fn rfc3339(t: Option<i64>) -> Option<String> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0)).map(|d| d.to_rfc3339())
}

pub(crate) fn bar(len: u64) -> indicatif::ProgressBar {
    if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(len);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} blocks [{elapsed}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    }
}
