//! The `cairn` command line. Every subcommand reads the same settings (config file,
//! `CAIRN_*` environment, flags), so it can work on the data dir of a running server.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

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
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML with keys bind, data_dir, base_url, institution_name).
    /// Default: ./cairn.toml when it exists.
    #[arg(long, env = "CAIRN_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "CAIRN_BIND", global = true, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Data directory holding cairn.db and keys [default: ./data]
    #[arg(long, env = "CAIRN_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Public base URL; every Open Badges id derives from it [default: http:// + bind address]
    #[arg(long, env = "CAIRN_BASE_URL", global = true, value_name = "URL")]
    pub base_url: Option<String>,
    /// Institution name used when its profile is first created [default: Cairn Institution]
    #[arg(long, env = "CAIRN_INSTITUTION_NAME", global = true, value_name = "NAME")]
    pub institution_name: Option<String>,
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
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an instructor account. The password is read from CAIRN_PASSWORD, or asked for.
    CreateInstructor {
        /// The instructor's email, used to sign in.
        #[arg(long, value_name = "EMAIL")]
        email: String,
    },
}

impl GlobalArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            bind: self.bind.clone(),
            data_dir: self.data_dir.clone(),
            base_url: self.base_url.clone(),
            institution_name: self.institution_name.clone(),
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli) {
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
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(&cli.global.overrides())?;
    match cli.command {
        Command::Serve { demo } => serve(&settings, demo),
        Command::Demo => {
            let pool = open_store(&settings)?;
            let outcome = crate::demo::seed(&mut *pool.get()?)?;
            print_demo(&outcome);
            Ok(())
        }
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
    }
}

fn ask_password() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no password: set CAIRN_PASSWORD or run in a terminal to be asked");
    }
    let first = rpassword::prompt_password("Password (at least 10 characters): ")?;
    let second = rpassword::prompt_password("Password again: ")?;
    if first != second {
        anyhow::bail!("the two passwords differ; nothing was created");
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
