//! The `cairn` command line. Every subcommand reads the same settings (config file,
//! `CAIRN_*` environment, flags), so it can work on the data dir of a running server.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{Overrides, Settings};
use crate::db::{StoreError, instructors};
use crate::startup::{Application, open_store};

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
    /// Seed the demo course "E-Learning 3.0" (once) and the demo instructor.
    Demo,
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
    /// Print this institution's chain identity (its Ed25519 public key) and network.
    Identity,
    /// Peer institutions sharing the chain (the trust list).
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Webmention tools for debugging a learner's site.
    #[command(subcommand)]
    Webmention(WebmentionCommand),
    /// Revoke an award, given its assertion URL (or id), with a reason.
    Revoke {
        /// The assertion URL, e.g. https://cairn.example.edu/assertions/3f2a…
        assertion: String,
        /// Why the badge is revoked (shown on the verification page).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Fetch URL's identity, show its fingerprint, and trust it after confirmation.
    Add {
        /// The peer's base URL, e.g. https://cairn.other.edu
        url: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// List trusted peers with their state.
    List,
    /// Stop trusting a peer.
    Remove { url: String },
}

#[derive(Debug, Subcommand)]
pub enum WebmentionCommand {
    /// Discover TARGET's Webmention endpoint and send SOURCE → TARGET once, with the same
    /// code, limits and outbound policy as the outbox. Prints what it did; exits non-zero
    /// when nothing was delivered.
    Send { source: String, target: String },
}

#[derive(Debug, Subcommand)]
pub enum ChainCommand {
    /// Check the stored chain from genesis by every rule (members, miner and record
    /// signatures, proof of work, links, times, Merkle roots), with a progress bar, and print a
    /// summary. Exits non-zero on a problem.
    Verify,
    /// Write the main chain to FILE (to move it to another machine).
    Export { file: PathBuf },
    /// Read a chain written by `export`, verify all of it by every rule, and add its blocks.
    Import { file: PathBuf },
    /// Move a data dir from the earlier, unsigned block format: set its blocks aside and
    /// return their records to the pending pool, to be mined again into signed blocks.
    /// Run it once, with the server stopped.
    Upgrade,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["task", "csv"])))]
pub struct AwardArgs {
    /// The Task's hashtag, e.g. #el30-data.
    #[arg(long, requires_all = ["recipient", "evidence"])]
    pub task: Option<String>,
    /// The recipient's email (published only as a salted hash).
    #[arg(long)]
    pub recipient: Option<String>,
    /// The evidence: the URL of the learner's post.
    #[arg(long)]
    pub evidence: Option<String>,
    /// The recipient's name, shown on the verification page.
    #[arg(long)]
    pub name: Option<String>,
    /// Why the badge is awarded.
    #[arg(long)]
    pub narrative: Option<String>,
    /// A CSV file with a header row: task,recipient,evidence,name,narrative (name and narrative may be empty).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["task", "recipient", "evidence", "name", "narrative"])]
    pub csv: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum FeedCommand {
    /// Fetch and parse one feed (or discover it from a page) exactly as the harvester would,
    /// store nothing, and print what would be stored. Exits non-zero when the feed cannot be
    /// fetched or parsed.
    Check {
        /// The feed's address, or a blog page that advertises its feed.
        url: String,
        /// Print one JSON document: {"feed": {...}, "items": [...], "error": null | "..."}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an instructor account. The password is read from CAIRN_PASSWORD, or asked for.
    CreateInstructor {
        /// The instructor's email, used to sign in.
        #[arg(long, value_name = "EMAIL")]
        email: String,
    },
    /// Set a new password for an instructor and sign them out everywhere. The password is read
    /// from CAIRN_PASSWORD, or asked for.
    ResetPassword {
        /// The instructor's email.
        #[arg(long, value_name = "EMAIL")]
        email: String,
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
    init_tracing();
    match run(cli, &flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cairn: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,actix_server=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// The command line: the subcommands, plus the global flags and the settings list, both
/// generated from the declared settings.
pub fn command() -> clap::Command {
    Cli::command().args(crate::config::flag_args()).after_long_help(crate::config::settings_help())
}

pub fn run(cli: Cli, flags: &Overrides) -> anyhow::Result<()> {
    let settings = Settings::load(flags)?;
    match cli.command {
        Command::Serve { demo } => serve(&settings, demo),
        Command::Demo => {
            let pool = open_store(&settings)?;
            let outcome = crate::demo::seed(&mut *pool.get()?)?;
            print_demo(&outcome);
            Ok(())
        }
        Command::Harvest { once, feed } => harvest(&settings, once || feed.is_some(), feed),
        Command::Award(args) => award(&settings, args),
        Command::Chain(cmd) => chain(&settings, cmd),
        Command::Peer(cmd) => peer(&settings, cmd),
        Command::Webmention(WebmentionCommand::Send { source, target }) => {
            let base = settings.public_base_url(settings.bind);
            let fetcher = crate::harvest::fetcher(&settings.harvest, &settings.allow_origins, &base)?;
            match runtime()?.block_on(crate::webmention::send(&fetcher, &source, &target)) {
                crate::webmention::Outcome::Sent { endpoint, status, location } => {
                    println!("endpoint: {endpoint}");
                    println!("status: {status} (accepted)");
                    if let Some(l) = location {
                        println!("status page: {l}");
                    }
                    Ok(())
                }
                crate::webmention::Outcome::NoEndpoint => {
                    println!("endpoint: none ({target} advertises no Webmention endpoint)");
                    anyhow::bail!("nothing was sent")
                }
                crate::webmention::Outcome::Failed { endpoint, reason, retry, .. } => {
                    println!("endpoint: {}", endpoint.as_deref().unwrap_or("not found"));
                    anyhow::bail!("{reason}{}", if retry { " (the outbox would retry this)" } else { "" })
                }
            }
        }
        Command::Identity => {
            let pool = open_store(&settings)?;
            let ledger = crate::ledger::Ledger::open(pool, &settings.chain, &settings.data_dir)?;
            println!("institution id (Ed25519 public key): {}", ledger.institution_id());
            println!(
                "network: {} ({} records a block, {} bits of work)",
                settings.chain.network, settings.chain.records_per_block, settings.chain.difficulty_bits
            );
            println!("genesis: {}", ledger.with_chain(|c| c.genesis_hash().to_hex()));
            Ok(())
        }
        Command::Revoke { assertion, reason } => revoke(&settings, &assertion, &reason),
        Command::Feed(FeedCommand::Check { url, json }) => feed_check(&settings, &url, json),
        Command::Admin(AdminCommand::CreateInstructor { email }) => {
            let password = match std::env::var("CAIRN_PASSWORD") {
                Ok(p) => p,
                Err(_) => ask_password()?,
            };
            let pool = open_store(&settings)?;
            let instructor = instructors::create(&mut *pool.get()?, &email, &password).map_err(|e| match e {
                StoreError::Invalid(errors) => anyhow::anyhow!("{errors}"),
                e => e.into(),
            })?;
            println!("Created instructor {} (id {}).", instructor.email, instructor.id);
            Ok(())
        }
        Command::Admin(AdminCommand::ResetPassword { email }) => {
            let pool = open_store(&settings)?;
            let mut conn = pool.get()?;
            let Some(instructor) = instructors::find_by_email(&mut conn, &email)? else {
                anyhow::bail!("no instructor has the email {email}");
            };
            let password = match std::env::var("CAIRN_PASSWORD") {
                Ok(p) => p,
                Err(_) => ask_password()?,
            };
            let ended = crate::db::write_tx(&mut conn, |c| {
                instructors::set_password(c, instructor.id, &password)?;
                crate::auth::revoke_sessions(c, instructor.id)
            })
            .map_err(|e| match e {
                StoreError::Invalid(errors) => anyhow::anyhow!("{errors}"),
                e => e.into(),
            })?;
            println!("Reset the password of {}; {ended} session(s) signed out.", instructor.email);
            Ok(())
        }
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

fn print_demo(outcome: &crate::demo::DemoOutcome) {
    if outcome.created_course {
        println!("Seeded the demo course \"E-Learning 3.0\".");
    } else {
        println!("The demo course \"E-Learning 3.0\" is already there; left as it is.");
    }
    println!("Demo instructor: {}  password: {}", outcome.email, outcome.password);
}

fn serve(settings: &Settings, demo: bool) -> anyhow::Result<()> {
    let system = actix_web::rt::System::new();
    system.block_on(async {
        let pool = open_store(settings)?;
        let demo_outcome = if demo { Some(crate::demo::seed(&mut *pool.get()?)?) } else { None };
        let app = Application::build_with_pool(settings, pool)?;
        let url = format!("{}/", app.base_url());
        println!("Cairn is running at {url} (listening on {}, data in {})", app.addr(), settings.data_dir.display());
        if let Some(outcome) = &demo_outcome {
            print_demo(outcome);
            println!("Sign in at {url}login");
        }
        std::io::stdout().flush().ok();
        app.run_until_stopped().await.context("server stopped with an error")
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn harvest(settings: &Settings, once: bool, feed: Option<i64>) -> anyhow::Result<()> {
    let pool = open_store(settings)?;
    let base = settings.public_base_url(settings.bind);
    let fetcher = crate::harvest::fetcher(&settings.harvest, &settings.allow_origins, &base)?;
    let harvester = crate::harvest::Harvester::new(pool, fetcher, settings.harvest.clone());
    runtime()?.block_on(async move {
        if !once {
            let mut jobs = crate::jobs::Runner::default();
            jobs.spawn(crate::jobs::Job::new("harvest", crate::startup::HARVEST_TICK), move || {
                let h = harvester.clone();
                async move { h.pass().await }
            });
            eprintln!("Harvesting every due feed; Ctrl-C stops.");
            let _ = tokio::signal::ctrl_c().await;
            jobs.stop(std::time::Duration::from_secs(10)).await;
            return Ok(());
        }
        let bar = if std::io::stderr().is_terminal() {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {pos} feeds polled [{elapsed}] {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            b
        } else {
            indicatif::ProgressBar::hidden()
        };
        let progress = |f: &crate::db::feeds::Feed, o: &crate::harvest::PollOutcome| {
            bar.inc(1);
            bar.set_message(f.url.clone());
            if let crate::harvest::PollOutcome::Failed(e) = o {
                bar.println(format!("feed {}: {e}", f.id));
            }
        };
        let summary = harvester.run_pass(feed, &progress).await?;
        bar.finish_and_clear();
        println!(
            "Polled {} feed(s): {} new and {} changed item(s), {} unchanged (304), {} gone, {} failed.",
            summary.feeds, summary.added, summary.updated, summary.not_modified, summary.gone, summary.failed
        );
        Ok(())
    })
}

fn rfc3339(t: Option<i64>) -> Option<String> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0)).map(|d| d.to_rfc3339())
}

fn feed_check(settings: &Settings, url: &str, json: bool) -> anyhow::Result<()> {
    let base = settings.public_base_url(settings.bind);
    let fetcher = crate::harvest::fetcher(&settings.harvest, &settings.allow_origins, &base)?;
    // Task hashtags come from the database when there is one; nothing is written.
    let tags = if settings.database_path().exists() {
        let pool = crate::db::open(&settings.database_path())?;
        crate::db::links::task_tags(&mut *pool.get()?)?
    } else {
        Default::default()
    };
    let result = runtime()?.block_on(crate::harvest::resolve(&fetcher, url));
    let doc = match &result {
        Ok(r) => {
            let items: Vec<serde_json::Value> = r
                .feed
                .items
                .iter()
                .map(|i| {
                    let found = crate::harvest::hashtags::of_post(&i.text, &i.categories);
                    let matched: Vec<&String> = found.iter().filter(|t| tags.contains_key(*t)).collect();
                    serde_json::json!({
                        "id": i.id,
                        "title": i.title,
                        "url": i.url,
                        "author": i.author,
                        "published": rfc3339(i.published),
                        "updated": rfc3339(i.updated),
                        "categories": i.categories,
                        "hashtags": matched,
                        "all_hashtags": found,
                    })
                })
                .collect();
            serde_json::json!({
                "feed": {"title": r.feed.title, "url": r.feed_url, "site_url": r.feed.site_url, "format": r.feed.format},
                "alternatives": r.alternatives,
                "items": items,
                "error": null,
            })
        }
        Err(e) => serde_json::json!({"feed": null, "alternatives": [], "items": [], "error": e.to_string()}),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        match &result {
            Ok(r) => {
                println!("Feed: {} ({})", r.feed.title, r.feed.format);
                println!("URL:  {}", r.feed_url);
                if r.alternatives.len() > 1 {
                    println!("The page advertises {} feeds; the first usable one was read:", r.alternatives.len());
                    for a in &r.alternatives {
                        println!("  - {} {}", a.url, a.title.as_deref().unwrap_or(""));
                    }
                }
                println!("{} item(s):", r.feed.items.len());
                for item in doc["items"].as_array().into_iter().flatten() {
                    println!();
                    println!("  {}", item["title"].as_str().unwrap_or(""));
                    println!("    url:       {}", item["url"].as_str().unwrap_or("(none)"));
                    println!("    id:        {}", item["id"].as_str().unwrap_or("(none)"));
                    println!("    author:    {}", item["author"].as_str().unwrap_or("(none)"));
                    println!("    published: {}", item["published"].as_str().unwrap_or("(none)"));
                    let tags: Vec<&str> =
                        item["hashtags"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
                    println!(
                        "    hashtags:  {}",
                        if tags.is_empty() { "(none matching a task)".to_string() } else { tags.join(" ") }
                    );
                }
            }
            Err(e) => eprintln!("cairn: {e}"),
        }
    }
    match result {
        Ok(_) => Ok(()),
        Err(_) => std::process::exit(1),
    }
}

/// One award from the command line, through the same code as the Reader.
fn award_row(
    conn: &mut diesel::SqliteConnection,
    issuer: &crate::badges::award::Issuer,
    task: &str,
    recipient: &str,
    evidence: &str,
    name: Option<String>,
    narrative: Option<String>,
) -> Result<String, String> {
    let req = crate::app::award::HashtagAward {
        task: task.to_string(),
        recipient: recipient.to_string(),
        evidence: evidence.to_string(),
        name,
        narrative,
    };
    crate::app::award::award_by_hashtag(conn, issuer, &req, crate::db::now())
        .map(|a| crate::badges::ob::assertion_url(issuer.base, &a.public_id))
        .map_err(|e| e.to_string())
}

fn award(settings: &Settings, args: AwardArgs) -> anyhow::Result<()> {
    let pool = open_store(settings)?;
    let mut conn = pool.get()?;
    let base = settings.public_base_url(settings.bind);
    let raster = crate::badges::bake::RasterCache::default();
    let key = crate::ledger::load_key(&settings.data_dir)?;
    let issuer = crate::badges::award::Issuer { base: &base, raster: &raster, signer: &key };
    if let Some(path) = args.csv {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_path(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let headers: Vec<String> = reader.headers()?.iter().map(|h| h.to_ascii_lowercase()).collect();
        let col = |name: &str| headers.iter().position(|h| h == name);
        let (Some(t), Some(r), Some(e)) = (col("task"), col("recipient"), col("evidence")) else {
            anyhow::bail!(
                "{}: the header row must name the columns task, recipient and evidence (name and narrative are optional)",
                path.display()
            );
        };
        let (n, nr) = (col("name"), col("narrative"));
        let (mut ok, mut failed) = (0, 0);
        for (i, row) in reader.records().enumerate() {
            let line = i + 2;
            let row = match row {
                Ok(r) => r,
                Err(err) => {
                    println!("row {line}: unreadable: {err}");
                    failed += 1;
                    continue;
                }
            };
            let get = |c: Option<usize>| c.and_then(|c| row.get(c)).unwrap_or("").to_string();
            match award_row(
                &mut conn,
                &issuer,
                &get(Some(t)),
                &get(Some(r)),
                &get(Some(e)),
                Some(get(n)),
                Some(get(nr)),
            ) {
                Ok(url) => {
                    println!("row {line}: awarded {url}");
                    ok += 1;
                }
                Err(msg) => {
                    println!("row {line}: not awarded: {msg}");
                    failed += 1;
                }
            }
        }
        println!("{ok} awarded, {failed} not awarded.");
        if failed > 0 {
            std::process::exit(1);
        }
        return Ok(());
    }
    let (Some(task), Some(recipient), Some(evidence)) = (args.task, args.recipient, args.evidence) else {
        anyhow::bail!("--task, --recipient and --evidence are required (or --csv FILE)");
    };
    match award_row(&mut conn, &issuer, &task, &recipient, &evidence, args.name, args.narrative) {
        Ok(url) => {
            println!("{url}");
            Ok(())
        }
        Err(msg) => anyhow::bail!("not awarded: {msg}"),
    }
}

fn revoke(settings: &Settings, assertion: &str, reason: &str) -> anyhow::Result<()> {
    let pool = open_store(settings)?;
    let id = crate::badges::award::public_id_of(assertion);
    let base = settings.public_base_url(settings.bind);
    let raster = crate::badges::bake::RasterCache::default();
    let key = crate::ledger::load_key(&settings.data_dir)?;
    let issuer = crate::badges::award::Issuer { base: &base, raster: &raster, signer: &key };
    let a =
        crate::app::award::revoke(&mut *pool.get()?, &issuer, &id, reason, crate::db::now()).map_err(|e| match e {
            StoreError::NotFound(_) => anyhow::anyhow!("no award {assertion}"),
            StoreError::Invalid(errors) => anyhow::anyhow!("{errors}"),
            e => e.into(),
        })?;
    println!("Revoked {}", crate::badges::ob::assertion_url(&settings.public_base_url(settings.bind), &a.public_id));
    Ok(())
}

fn bar(len: u64) -> indicatif::ProgressBar {
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

fn chain(settings: &Settings, cmd: ChainCommand) -> anyhow::Result<()> {
    let pool = open_store(settings)?;
    if let ChainCommand::Upgrade = cmd {
        let (blocks, records) = crate::ledger::upgrade(&pool)?;
        if blocks == 0 && records == 0 {
            println!("The chain is already in the current format; nothing to do.");
        } else {
            println!(
                "Set aside {blocks} unsigned block(s); {records} record(s) are back in the pending pool and will be \
                 mined into signed blocks when `cairn serve` starts."
            );
        }
        return Ok(());
    }
    let ledger = crate::ledger::Ledger::open(pool, &settings.chain, &settings.data_dir)?;
    match cmd {
        ChainCommand::Verify => {
            let blocks = ledger.main_blocks();
            let records: usize = blocks.iter().map(|b| b.records.len()).sum();
            let progress = bar(blocks.len() as u64);
            let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            let started = std::time::Instant::now();
            progress.set_message("headers, members, times, work, Merkle roots, then signatures");
            let members = ledger.members();
            let result = cairn_chain::verify_chain_with_progress(
                ledger.params(),
                &members,
                &blocks,
                crate::db::now(),
                true,
                threads,
                &|n| progress.set_position(n),
            );
            progress.set_position(blocks.len() as u64);
            progress.finish_and_clear();
            let (height, tip, _) = ledger.with_chain(|c| c.tip());
            match result {
                Ok(()) => {
                    println!(
                        "The chain is valid: {} block(s) from genesis to height {height} (tip {tip}), {records} record(s); membership, miner and record signatures, proof of work, links, times and Merkle roots all hold. Checked in {:.2} s.",
                        blocks.len(),
                        started.elapsed().as_secs_f64()
                    );
                    Ok(())
                }
                Err((h, e)) => anyhow::bail!("the chain is NOT valid: block {h}: {e}"),
            }
        }
        ChainCommand::Export { file } => {
            let n = ledger.export(&file)?;
            println!("Exported {n} block(s) to {}.", file.display());
            Ok(())
        }
        ChainCommand::Upgrade => Ok(()),
        ChainCommand::Import { file } => {
            let progress = bar(0);
            let (count, added) = ledger.import(&file, crate::db::now(), &|n| progress.set_position(n))?;
            progress.finish_and_clear();
            let (height, tip, _) = ledger.with_chain(|c| c.tip());
            println!("Imported {count} block(s) ({added} new); the chain is at height {height} (tip {tip}).");
            Ok(())
        }
    }
}

fn peer(settings: &Settings, cmd: PeerCommand) -> anyhow::Result<()> {
    let pool = open_store(settings)?;
    let mut conn = pool.get()?;
    match cmd {
        PeerCommand::Add { url, yes } => {
            let client = crate::peers::client::Client::new()?;
            let candidate =
                runtime()?.block_on(crate::app::peers::fetch_candidate(&client, &url, &settings.chain.network))?;
            println!("Peer {}: {}", candidate.url, candidate.name);
            println!("base URL:    {}", candidate.base_url);
            println!("public key:  {}", candidate.public_key);
            println!("fingerprint: {}", candidate.fingerprint());
            if !yes {
                if !std::io::stdin().is_terminal() {
                    anyhow::bail!("not confirmed: run in a terminal to confirm, or pass --yes");
                }
                print!("Trust this institution? Compare the fingerprint with theirs. [y/N] ");
                std::io::stdout().flush()?;
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    anyhow::bail!("not added");
                }
            }
            let peer = crate::app::peers::trust(&mut conn, None, &candidate, crate::db::now())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("Added {} to the trust list.", peer.url);
            Ok(())
        }
        PeerCommand::List => {
            let list = crate::db::peers::list(&mut conn)?;
            if list.is_empty() {
                println!("No peers.");
            }
            for p in list {
                println!(
                    "{}  {}  fingerprint {}  height {}  relayed {}  last contact {}{}{}",
                    p.url,
                    p.name,
                    crate::peers::fingerprint(&p.public_key),
                    p.last_height.map_or("?".into(), |h| h.to_string()),
                    p.records_relayed,
                    rfc3339(p.last_contact_at).unwrap_or_else(|| "never".into()),
                    p.last_error.map(|e| format!("  last error: {e}")).unwrap_or_default(),
                    if p.finality_refusals > 0 {
                        format!(
                            "  refused {} branch(es) it mined that would remove final blocks (last: {})",
                            p.finality_refusals,
                            p.last_refusal.unwrap_or_default()
                        )
                    } else {
                        String::new()
                    }
                );
            }
            Ok(())
        }
        PeerCommand::Remove { url } => {
            crate::app::peers::remove(&mut conn, None, &url).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("Removed {url} from the trust list.");
            Ok(())
        }
    }
}
