//! Backups of an instance, taken while it runs, and their restoration.
//!
//! A backup is one gzip-compressed tar archive holding a consistent copy of the database
//! (`VACUUM INTO`, so awards keep flowing meanwhile), `institution.key`, `session.key`, the
//! effective settings with secrets redacted, and a manifest. Restoring writes them into an
//! empty data dir, then checks the chain by every rule and that the key is the one that signed
//! this institution's records.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::Settings;
use crate::db::DbPool;

/// The archive's format version, in its manifest.
pub const FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";
const DATABASE: &str = "cairn.db";
const INSTITUTION_KEY: &str = "institution.key";
const SESSION_KEY: &str = "session.key";
const SETTINGS: &str = "settings.txt";
/// Every name an archive may hold; anything else is refused on restore.
const NAMES: [&str; 5] = [MANIFEST, DATABASE, INSTITUTION_KEY, SESSION_KEY, SETTINGS];

/// What an archive says about itself.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub created_at: i64,
    pub cairn_version: String,
    /// The institution's public key (hex): its identity on the chain.
    pub institution_id: String,
    pub network: String,
    pub records_per_block: u32,
    pub difficulty_bits: u32,
    pub awards: i64,
    pub blocks: i64,
}

/// What a backup wrote.
#[derive(Debug)]
pub struct Written {
    pub manifest: Manifest,
    /// The archive's size in bytes.
    pub bytes: u64,
}

/// Writes a backup of the instance whose store is `pool` to `out`, at `now`. The archive
/// appears under its name only when complete (it is written beside it, then renamed), and
/// only its owner may read it: it holds the institution's key.
pub fn create(pool: &DbPool, settings: &Settings, out: &Path, now: i64) -> anyhow::Result<Written> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let work = tempfile::Builder::new()
        .prefix(".cairn-backup-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    let db_copy = work.path().join(DATABASE);
    crate::db::backup::snapshot(&mut *pool.get()?, &db_copy).context("copying the database")?;
    let (awards, blocks) = {
        let mut copy = crate::db::connect(&db_copy)?;
        crate::db::backup::counts(&mut copy)?
    };
    let key = crate::ledger::load_key(&settings.data_dir)?;
    let manifest = Manifest {
        format: FORMAT,
        created_at: now,
        cairn_version: env!("CARGO_PKG_VERSION").to_string(),
        institution_id: cairn_chain::to_hex(&key.verifying_key().to_bytes()),
        network: settings.chain.network.clone(),
        records_per_block: settings.chain.records_per_block,
        difficulty_bits: settings.chain.difficulty_bits,
        awards,
        blocks,
    };
    let partial = work.path().join("archive");
    {
        let file = private_file(&partial)?;
        // Fast compression: most of the bytes are PNG badges, which compress no further.
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
        let mut add = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o600);
            h.set_mtime(now.max(0) as u64);
            h.set_cksum();
            tar.append_data(&mut h, name, bytes).with_context(|| format!("writing {name} into the archive"))
        };
        add(MANIFEST, &serde_json::to_vec_pretty(&manifest)?)?;
        add(SETTINGS, format!("{settings:#?}\n").as_bytes())?;
        add(INSTITUTION_KEY, &read(&settings.data_dir.join(INSTITUTION_KEY))?)?;
        match std::fs::read(settings.data_dir.join(SESSION_KEY)) {
            Ok(k) => add(SESSION_KEY, &k)?,
            // Made by the first `cairn serve`; a data dir only ever used by commands has none.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context("cannot read session.key"),
        }
        let db = std::fs::File::open(&db_copy).context("reading the database copy")?;
        let mut h = tar::Header::new_gnu();
        h.set_size(db.metadata()?.len());
        h.set_mode(0o600);
        h.set_mtime(now.max(0) as u64);
        h.set_cksum();
        tar.append_data(&mut h, DATABASE, db).context("writing the database into the archive")?;
        let gz = tar.into_inner().context("finishing the archive")?;
        let file = gz.finish().context("finishing the archive")?;
        file.sync_all()?;
    }
    let bytes = std::fs::metadata(&partial)?.len();
    std::fs::rename(&partial, out).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(Written { manifest, bytes })
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path).with_context(|| format!("cannot create {}", path.display()))
}

/// Why a restore was not made or did not check out.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} is not empty; add --force to replace its database and keys")]
    NotEmpty(PathBuf),
    #[error("{0}")]
    BadArchive(String),
    #[error("the restored chain is NOT valid: block {0}: {1}")]
    Chain(u64, String),
    #[error("the restored key does not match the chain: {0}")]
    Key(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What a restore found.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    /// Main-chain blocks verified.
    pub blocks: usize,
    /// This institution's records whose signature key was checked.
    pub own_records: usize,
}

/// Restores the archive at `archive` into `settings.data_dir`, which must be empty (or
/// missing) unless `force`, then checks it. The chain settings of the check are the archive's.
pub fn restore(archive: &Path, settings: &Settings, force: bool, now: i64) -> Result<Restored, RestoreError> {
    let dir = &settings.data_dir;
    let non_empty = std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
    if non_empty && !force {
        return Err(RestoreError::NotEmpty(dir.clone()));
    }
    crate::startup::create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let small = extract(archive, dir)?;
    let manifest: Manifest = serde_json::from_slice(files_get(&small, MANIFEST)?)
        .map_err(|e| RestoreError::BadArchive(format!("its manifest cannot be read: {e}")))?;
    if manifest.format != FORMAT {
        return Err(RestoreError::BadArchive(format!("archive format {} is not {FORMAT}", manifest.format)));
    }
    for name in [DATABASE, INSTITUTION_KEY] {
        if !staged(dir, name).exists() {
            return Err(RestoreError::BadArchive(format!("the archive has no {name}")));
        }
    }
    // A write-ahead log beside a replaced database would be applied to it: remove both first.
    for stale in ["cairn.db-wal", "cairn.db-shm"] {
        match std::fs::remove_file(dir.join(stale)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot remove {stale}")).into()),
        }
    }
    for name in [DATABASE, INSTITUTION_KEY, SESSION_KEY] {
        let from = staged(dir, name);
        if from.exists() {
            std::fs::rename(&from, dir.join(name)).with_context(|| format!("cannot write {name}"))?;
        }
    }
    check(settings, &manifest, now)
}

/// Where a member is written before it replaces the data dir's file.
fn staged(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.restoring"))
}

/// The manifest and settings are read into memory, at most this many bytes each.
const SMALL_MEMBER: u64 = 1024 * 1024;

/// Writes the archive's database and keys beside their places in `dir` (see [`staged`]) and
/// returns the small members, refusing any name a backup does not hold.
fn extract(path: &Path, dir: &Path) -> Result<Vec<(String, Vec<u8>)>, RestoreError> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let bad = |e: std::io::Error| RestoreError::BadArchive(format!("{} is not a Cairn backup: {e}", path.display()));
    let mut small: Vec<(String, Vec<u8>)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        if !NAMES.contains(&name.as_str()) || seen.contains(&name) {
            return Err(RestoreError::BadArchive(format!("unexpected member {name:?} in {}", path.display())));
        }
        seen.push(name.clone());
        if name == MANIFEST || name == SETTINGS {
            let mut bytes = Vec::new();
            (&mut entry).take(SMALL_MEMBER).read_to_end(&mut bytes).map_err(bad)?;
            small.push((name, bytes));
        } else {
            let to = staged(dir, &name);
            let _ = std::fs::remove_file(&to);
            let mut out = private_file(&to)?;
            std::io::copy(&mut entry, &mut out).map_err(bad)?;
            out.sync_all().with_context(|| format!("cannot write {name}"))?;
        }
    }
    Ok(small)
}

fn files_get<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> Result<&'a [u8], RestoreError> {
    files
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b.as_slice())
        .ok_or_else(|| RestoreError::BadArchive(format!("the archive has no {name}")))
}

/// Opens the restored store (running newer migrations), verifies the chain by every rule
/// and checks that the key signed this institution's records and is the manifest's.
fn check(settings: &Settings, manifest: &Manifest, now: i64) -> Result<Restored, RestoreError> {
    let mut chain = settings.chain.clone();
    chain.network = manifest.network.clone();
    chain.records_per_block = manifest.records_per_block;
    chain.difficulty_bits = manifest.difficulty_bits;
    let pool = crate::startup::open_store(settings)?;
    let ledger = crate::ledger::Ledger::open(pool.clone(), &chain, &settings.data_dir)?;
    if ledger.institution_id() != manifest.institution_id {
        return Err(RestoreError::Key(format!(
            "institution.key is {} but the archive was made for {}",
            ledger.institution_id(),
            manifest.institution_id
        )));
    }
    let blocks = ledger.main_blocks();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    cairn_chain::verify_chain_with_progress(ledger.params(), &ledger.members(), &blocks, now, true, threads, &|_| {})
        .map_err(|(h, e)| RestoreError::Chain(h, e.to_string()))?;
    let ours = ledger.key().verifying_key().to_bytes();
    let records =
        crate::db::backup::own_records(&mut *pool.get().map_err(anyhow::Error::new)?).map_err(anyhow::Error::new)?;
    for bytes in &records {
        let r = cairn_chain::Record::decode(bytes)
            .map_err(|e| RestoreError::Key(format!("a record is unreadable: {e}")))?;
        if r.institution != ours {
            return Err(RestoreError::Key(format!(
                "record {} of one of this institution's awards was signed by {}",
                r.id().to_hex(),
                cairn_chain::to_hex(&r.institution)
            )));
        }
    }
    Ok(Restored { manifest: manifest.clone(), blocks: blocks.len(), own_records: records.len() })
}

/// Scheduled archives are named `cairn-backup-` + the UTC time + `.tar.gz`, so that names sort
/// by age.
const SCHEDULED_PREFIX: &str = "cairn-backup-";
const SCHEDULED_SUFFIX: &str = ".tar.gz";
const STAMP: &str = "%Y%m%dT%H%M%SZ";

/// What a scheduled pass did.
#[derive(Debug, Default)]
pub struct Scheduled {
    /// The archive written, if one was due.
    pub written: Option<(PathBuf, u64)>,
    /// Older archives deleted.
    pub pruned: usize,
}

/// Takes a backup into `[backup] dir` when the newest one there is `interval_hours` old (or
/// there is none), then keeps only the newest `keep`. Does nothing without a directory.
pub fn scheduled(pool: &DbPool, settings: &Settings, now: i64) -> anyhow::Result<Scheduled> {
    let Some(dir) = &settings.backup.dir else { return Ok(Scheduled::default()) };
    crate::startup::create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut out = Scheduled::default();
    let newest = archives(dir)?.last().map(|(t, _)| *t);
    let interval = settings.backup.interval_hours.saturating_mul(3600) as i64;
    if newest.is_none_or(|t| now - t >= interval) {
        let stamp = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default().format(STAMP);
        let path = dir.join(format!("{SCHEDULED_PREFIX}{stamp}{SCHEDULED_SUFFIX}"));
        let w = create(pool, settings, &path, now)?;
        out.written = Some((path, w.bytes));
    }
    let all = archives(dir)?;
    let extra = all.len().saturating_sub(settings.backup.keep as usize);
    for (_, path) in all.into_iter().take(extra) {
        std::fs::remove_file(&path).with_context(|| format!("cannot delete {}", path.display()))?;
        out.pruned += 1;
    }
    Ok(out)
}

/// The scheduled archives in `dir`, oldest first, with the time their names give.
fn archives(dir: &Path) -> anyhow::Result<Vec<(i64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(stamp) = name.strip_prefix(SCHEDULED_PREFIX).and_then(|n| n.strip_suffix(SCHEDULED_SUFFIX)) else {
            continue;
        };
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(stamp, STAMP) {
            found.push((t.and_utc().timestamp(), path));
        }
    }
    found.sort();
    Ok(found)
}
