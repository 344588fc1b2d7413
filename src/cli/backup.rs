//! `cairn backup` and `cairn restore`: one archive of an instance, taken while it runs.

use std::path::Path;

use crate::app::backup;
use crate::config::Settings;
use crate::startup::open_store;

pub fn backup(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    let pool = open_store(settings)?;
    let started = std::time::Instant::now();
    let w = backup::create(&pool, settings, file, crate::db::now())?;
    println!(
        "Backed up {} award(s) and {} block(s) of institution {} to {} ({} bytes) in {:.2} s.",
        w.manifest.awards,
        w.manifest.blocks,
        w.manifest.institution_id,
        file.display(),
        w.bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn restore(settings: &Settings, file: &Path, force: bool) -> anyhow::Result<()> {
    let r = backup::restore(file, settings, force, crate::db::now())?;
    println!(
        "Restored {} award(s) into {}. The chain is valid ({} block(s)), and institution.key ({}) signed all {} of \
         this institution's records.",
        r.manifest.awards,
        settings.data_dir.display(),
        r.blocks,
        r.manifest.institution_id,
        r.own_records
    );
    let s = &settings.chain;
    let m = &r.manifest;
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
