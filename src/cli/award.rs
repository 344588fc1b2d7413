//! `cairn award` and `cairn revoke`: the Reader's award and revocation, from the command line.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::app::award::{self, BatchEntry, BatchOptions, HashtagAward};
use crate::clock;
use crate::config::Settings;
use crate::db::StoreError;
use crate::startup::open_store;

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
    /// Award even when the evidence was posted elsewhere than on the recipient's own site
    /// (a post Cairn harvested from their feed but found on another site). Evidence that is
    /// another learner's post is refused all the same.
    #[arg(long)]
    pub allow_foreign_evidence: bool,
}

/// Awards a CSV file's rows this many at a time: each run is prepared on several threads and
/// stored in one transaction, and memory stays bounded however long the file.
const CSV_RUN: usize = 500;

/// One award given as words, through the batch engine the Reader and the API use.
fn entry(
    task: &str,
    recipient: &str,
    evidence: &str,
    (name, narrative): (Option<String>, Option<String>),
    allow_foreign_evidence: bool,
) -> BatchEntry {
    let award = HashtagAward {
        task: task.to_string(),
        recipient: recipient.to_string(),
        evidence: evidence.to_string(),
        name,
        narrative,
    };
    BatchEntry::Words { award, allow_foreign_evidence }
}

pub fn award(settings: &Settings, args: AwardArgs, acting: Option<&str>) -> anyhow::Result<()> {
    let pool = open_store(settings)?;
    let mut conn = pool.get()?;
    let actor = super::actor(&mut conn, acting)?;
    let opts = BatchOptions { by: actor.instructor_id, actor: Some(actor), ..Default::default() };
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
        let mut records = reader.records().enumerate().peekable();
        while records.peek().is_some() {
            // Each row's line, and its entry or why it could not be read.
            let run: Vec<(usize, Result<BatchEntry, csv::Error>)> = records
                .by_ref()
                .take(CSV_RUN)
                .map(|(i, row)| {
                    let row = row.map(|row| {
                        let get = |c: Option<usize>| c.and_then(|c| row.get(c)).unwrap_or("").to_string();
                        let texts = (Some(get(n)), Some(get(nr)));
                        entry(&get(Some(t)), &get(Some(r)), &get(Some(e)), texts, args.allow_foreign_evidence)
                    });
                    (i + 2, row)
                })
                .collect();
            let entries: Vec<BatchEntry> = run.iter().filter_map(|(_, r)| r.as_ref().ok().cloned()).collect();
            let mut outcomes =
                award::award_batch(&pool, &mut conn, &issuer, &entries, &opts, clock::system_now())?.into_iter();
            for (line, row) in run {
                match row.map(|_| outcomes.next()) {
                    Err(err) => {
                        println!("row {line}: unreadable: {err}");
                        failed += 1;
                    }
                    Ok(Some(Ok((a, _)))) => {
                        println!("row {line}: awarded {}", crate::badges::ob::assertion_url(&base, &a.public_id));
                        ok += 1;
                    }
                    Ok(Some(Err(msg))) => {
                        println!("row {line}: not awarded: {msg}");
                        failed += 1;
                    }
                    Ok(None) => anyhow::bail!("row {line}: no outcome was reported"),
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
    let one = [entry(&task, &recipient, &evidence, (args.name, args.narrative), args.allow_foreign_evidence)];
    let outcome = award::award_batch(&pool, &mut conn, &issuer, &one, &opts, clock::system_now())?.pop();
    match outcome {
        Some(Ok((a, _))) => {
            println!("{}", crate::badges::ob::assertion_url(&base, &a.public_id));
            Ok(())
        }
        Some(Err(msg)) => anyhow::bail!("not awarded: {msg}"),
        None => anyhow::bail!("not awarded: no outcome was reported"),
    }
}

pub fn revoke(settings: &Settings, assertion: &str, reason: &str, acting: Option<&str>) -> anyhow::Result<()> {
    let pool = open_store(settings)?;
    let actor = super::actor(&mut *pool.get()?, acting)?;
    let id = crate::badges::award::public_id_of(assertion);
    let base = settings.public_base_url(settings.bind);
    let raster = crate::badges::bake::RasterCache::default();
    let key = crate::ledger::load_key(&settings.data_dir)?;
    let issuer = crate::badges::award::Issuer { base: &base, raster: &raster, signer: &key };
    let a =
        award::revoke_as(&mut *pool.get()?, &issuer, Some(&actor), &id, reason, clock::system_now()).map_err(|e| {
            match e {
                StoreError::NotFound(_) => anyhow::anyhow!("no award {assertion}"),
                StoreError::Invalid(errors) => anyhow::anyhow!("{errors}"),
                e => e.into(),
            }
        })?;
    println!("Revoked {}", crate::badges::ob::assertion_url(&settings.public_base_url(settings.bind), &a.public_id));
    Ok(())
}
