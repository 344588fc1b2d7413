//! `cairn db status`: the schema version and the migrations this build would run.

use clap::Subcommand;

use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Print the schema version (the newest migration run) and any pending migrations, without
    /// running them (`cairn serve` and the other commands run them when they open the store).
    Status,
}

pub fn run(settings: &Settings, cmd: DbCommand) -> anyhow::Result<()> {
    match cmd {
        DbCommand::Status => status(settings),
    }
}

fn status(settings: &Settings) -> anyhow::Result<()> {
    let path = settings.database_path();
    if !path.exists() {
        let all = crate::db::backup::migration_names()?;
        println!("database: none at {} yet", path.display());
        println!("schema version: none");
        println!("pending migrations ({}): all, run at the first start", all.len());
        return Ok(());
    }
    // Read only, and without migrating: that is what this command reports on.
    let mut conn = crate::db::connect(&path)?;
    let s = crate::db::backup::migration_status(&mut conn)?;
    println!("database: {}", path.display());
    match s.version() {
        Some(v) => println!(
            "schema version: {v}{}",
            crate::db::backup::migration_name(v)?.map(|n| format!(" ({n})")).unwrap_or_default()
        ),
        None => println!("schema version: none"),
    }
    println!("migrations applied: {}", s.applied.len());
    if s.pending.is_empty() {
        println!("pending migrations: none");
    } else {
        println!("pending migrations ({}):", s.pending.len());
        for name in &s.pending {
            println!("  {name}");
        }
    }
    if !s.unknown.is_empty() {
        println!("applied by a newer version of Cairn, unknown to this one ({}):", s.unknown.len());
        for v in &s.unknown {
            println!("  {v}");
        }
    }
    Ok(())
}
