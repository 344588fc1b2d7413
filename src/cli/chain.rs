//! `cairn chain` and `cairn identity`: the recognition chain.

use std::path::PathBuf;

use clap::Subcommand;

use super::bar;
use crate::config::Settings;
use crate::startup::open_store;

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

pub fn run(settings: &Settings, cmd: ChainCommand) -> anyhow::Result<()> {
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
                crate::clock::system_now(),
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
            let (count, added) = ledger.import(&file, crate::clock::system_now(), &|n| progress.set_position(n))?;
            progress.finish_and_clear();
            let (height, tip, _) = ledger.with_chain(|c| c.tip());
            println!("Imported {count} block(s) ({added} new); the chain is at height {height} (tip {tip}).");
            Ok(())
        }
    }
}

/// Prints this institution's chain identity.
pub fn identity(settings: &Settings) -> anyhow::Result<()> {
    let pool = open_store(settings)?;
    let ledger = crate::ledger::Ledger::open(pool, &settings.chain, &settings.data_dir)?;
    println!("institution id (Ed25519 public key): {}", ledger.institution_id());
    println!("institution DID (the same key): {}", crate::app::backup::did_key(&ledger.key().verifying_key()));
    println!(
        "network: {} ({} records a block, {} bits of work)",
        settings.chain.network, settings.chain.records_per_block, settings.chain.difficulty_bits
    );
    println!("genesis: {}", ledger.with_chain(|c| c.genesis_hash().to_hex()));
    Ok(())
}
