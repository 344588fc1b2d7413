//! `cairn harvest` and `cairn feed`: polling feeds and checking one.

use std::io::IsTerminal;

use clap::Subcommand;

use super::{rfc3339, runtime};
use crate::config::Settings;
use crate::startup::open_store;

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

pub fn run(settings: &Settings, cmd: FeedCommand) -> anyhow::Result<()> {
    match cmd {
        FeedCommand::Check { url, json } => feed_check(settings, &url, json),
    }
}

pub fn harvest(settings: &Settings, once: bool, feed: Option<i64>) -> anyhow::Result<()> {
    let pool = open_store(settings)?;
    let base = settings.public_base_url(settings.bind);
    let fetcher = crate::harvest::fetcher(&settings.harvest, &settings.allow_origins, &base)?;
    let clock = crate::clock::Clock::system();
    let harvester = crate::harvest::Harvester::new(pool, fetcher, settings.harvest.clone(), clock);
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
                    let found = crate::domain::hashtags::of_post(&i.text, &i.categories);
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
