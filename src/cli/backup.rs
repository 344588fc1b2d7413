//! `cairn backup` and `cairn restore`: one signed archive of an instance, taken while it runs.

use std::path::Path;

use crate::app::backup;
use crate::config::Settings;
use crate::startup::open_store;

pub fn backup(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    let pool = open_store(settings)?;
    let started = std::time::Instant::now();
    let w = backup::create(&pool, settings, file, crate::clock::system_now())?;
    let keys = w.manifest.members.iter().filter(|m| m.name.ends_with(".key")).count();
    println!(
        "Backed up {} award(s), {} learner(s) and {} block(s) of institution {} with {keys} key file(s) to {} ({} \
         bytes, manifest signed) in {:.2} s.",
        w.manifest.counts.awards,
        w.manifest.counts.learners,
        w.manifest.counts.blocks,
        w.manifest.institution_id,
        file.display(),
        w.bytes,
        started.elapsed().as_secs_f64()
    );
    for missing in &w.missing_keys {
        println!(
            "Note: {missing}, an earlier credential key, is not in the data dir; its public key stays in the \
             database, so what it signed keeps verifying."
        );
    }
    Ok(())
}

pub fn restore(settings: &Settings, file: &Path, force: bool, expect: Option<&str>) -> anyhow::Result<()> {
    let opts = backup::RestoreOptions { force, expect_institution: expect };
    let r = backup::restore(file, settings, opts, crate::clock::system_now())?;
    let m = &r.manifest;
    println!(
        "Restored {} award(s), {} learner(s) and {} record(s) into {}: {}.",
        m.counts.awards,
        m.counts.learners,
        m.counts.records,
        settings.data_dir.display(),
        r.files.join(", ")
    );
    println!(
        "The chain is valid ({} block(s)), and institution.key ({}) signed all {} of this institution's records; the \
         archive's signature, hashes and counts hold, and its database has exactly the schema of Cairn's migrations.",
        r.blocks, m.institution_id, r.own_records
    );
    println!("Credentials are signed with {} (checked with a test signature).", r.credential_key);
    for missing in &r.missing_keys {
        println!(
            "Note: {missing}, an earlier credential key, was not in the archive (what it signed keeps verifying)."
        );
    }
    let a = &r.access;
    println!("Instructors ({}): {}", a.instructors.len(), list(a.instructors.iter().cloned()));
    println!(
        "API tokens ({}): {}",
        a.tokens.len(),
        list(a.tokens.iter().map(|t| {
            let state = if t.revoked { ", revoked" } else { "" };
            format!("#{} {:?} of {} [{}]{state}", t.id, t.name, t.instructor, t.scopes)
        }))
    );
    println!(
        "Webhooks ({}): {}",
        a.webhooks.len(),
        list(a.webhooks.iter().map(|w| {
            let state = if w.removed { ", removed" } else { "" };
            format!("#{} to {} of {}{state}", w.id, origin(&w.url), w.instructor)
        }))
    );
    let s = &settings.chain;
    if (s.network.as_str(), s.records_per_block, s.difficulty_bits)
        != (m.network.as_str(), m.records_per_block, m.difficulty_bits)
    {
        println!(
            "Note: the backup's chain settings are network {}, {} records a block, {} bits; run the restored \
             instance with those.",
            m.network, m.records_per_block, m.difficulty_bits
        );
    }
    Ok(())
}

fn list(items: impl Iterator<Item = String>) -> String {
    let all: Vec<String> = items.collect();
    if all.is_empty() { "none".into() } else { all.join("; ") }
}

/// A webhook's scheme, host and port only: its path may carry a secret.
fn origin(url: &str) -> String {
    url::Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_else(|_| "(an unreadable URL)".into())
}
