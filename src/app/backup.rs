//! Backups of an instance, taken while it runs, and their restoration.
//!
//! A backup is one gzip-compressed tar archive holding a consistent copy of the database
//! (`VACUUM INTO`, so awards keep flowing meanwhile), `institution.key`, `session.key`, every
//! credential key file the database names, the effective settings with secrets redacted, and
//! a manifest listing every member with its size and SHA-256, signed with the institution's
//! key (`manifest.sig`). The manifest and its signature come last, so the database is read
//! once, hashed as it is written.
//!
//! A restore writes everything into a temporary directory beside the data dir and checks it
//! all there: the members (regular files, expected names, sizes and hashes), the signature,
//! the database's schema against what Cairn's migrations make, the counts, the chain, the
//! institution key against the chain's records and the credential keys. Only then are the
//! files moved into the data dir.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::Digest as _;

use crate::config::Settings;
use crate::db::DbPool;
use crate::db::backup::{Access, Counts, SchemaObject};
use crate::db::datadir::{create_private_dir, create_private_file, is_credential_key_name};

/// The archive's format version, in its manifest. Format 1 (unsigned, without credential
/// keys) is refused: nothing proves who made such an archive or that it is unchanged.
pub const FORMAT: u32 = 2;
const MANIFEST: &str = "manifest.json";
const SIGNATURE: &str = "manifest.sig";
const DATABASE: &str = "cairn.db";
const INSTITUTION_KEY: &str = "institution.key";
const SESSION_KEY: &str = "session.key";
const SETTINGS: &str = "settings.txt";
/// The fixed names an archive may hold, besides credential key files.
const NAMES: [&str; 6] = [MANIFEST, SIGNATURE, DATABASE, INSTITUTION_KEY, SESSION_KEY, SETTINGS];
/// What the institution key signs: this prefix, then the manifest's bytes (so that the
/// signature can never be taken for a chain record's or a credential's).
const SIGNED_PREFIX: &[u8] = b"cairn-backup-manifest-v2\n";
/// What a restore signs with the current credential key, to show that it works.
const TEST_MESSAGE: &[u8] = b"cairn restore: the credential key signs";

/// One member of an archive as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    pub name: String,
    pub size: u64,
    /// SHA-256 of the member's bytes, hex.
    pub sha256: String,
}

/// What an archive says about itself.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub created_at: i64,
    pub cairn_version: String,
    /// The institution's public key (hex): its identity on the chain.
    pub institution_id: String,
    /// The same key as a `did:key`.
    pub institution_did: String,
    /// The chain's settings, as the data dir stores them.
    pub network: String,
    pub records_per_block: u32,
    pub difficulty_bits: u32,
    #[serde(flatten)]
    pub counts: Counts,
    /// Every member but the manifest and its signature.
    pub members: Vec<Member>,
}

/// What a backup wrote.
#[derive(Debug)]
pub struct Written {
    pub manifest: Manifest,
    /// The archive's size in bytes.
    pub bytes: u64,
    /// Earlier credential keys the database names whose files are not in the data dir (their
    /// public keys stay in the database, so what they signed keeps verifying).
    pub missing_keys: Vec<String>,
}

/// The did:key of an Ed25519 public key.
pub fn did_key(key: &cairn_chain::VerifyingKey) -> String {
    format!("did:key:{}", crate::badges::did::multibase(key))
}

/// Reads the institution's key, never making one (a backup of a data dir without its key
/// would not be a backup of that institution).
fn read_institution_key(dir: &Path) -> anyhow::Result<cairn_chain::SigningKey> {
    let bytes = read(&dir.join(INSTITUTION_KEY))?;
    let seed: [u8; 32] =
        bytes.as_slice().try_into().map_err(|_| anyhow::anyhow!("{INSTITUTION_KEY} must hold 32 bytes"))?;
    Ok(cairn_chain::SigningKey::from_bytes(&seed))
}

/// The stored chain settings (`network|records per block|difficulty bits`), parsed.
fn parse_network(stored: &str) -> Option<(String, u32, u32)> {
    let mut parts = stored.split('|');
    let network = parts.next()?.to_string();
    let rpb = parts.next()?.parse().ok()?;
    let bits = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((network, rpb, bits))
}

/// Writes a backup of the instance whose store is `pool` to `out`, at `now`. The archive
/// appears under its name only when complete (it is written beside it, then renamed), and
/// only its owner may read it: it holds the institution's keys. The chain settings are the
/// data dir's own; settings given to the command that differ are refused.
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
    let (counts, stored, keys) = {
        let mut copy = crate::db::connect(&db_copy)?;
        let counts = crate::db::backup::counts(&mut copy)?;
        let stored = crate::db::chain::meta(&mut copy, crate::db::chain::MetaKey::Network)?;
        (counts, stored, crate::db::backup::credential_keys(&mut copy)?)
    };
    let ours = &settings.chain;
    let (network, records_per_block, difficulty_bits) = match stored.as_deref() {
        // A data dir whose chain was never opened has no blocks; the command's settings fix nothing.
        None => (ours.network.clone(), ours.records_per_block, ours.difficulty_bits),
        Some(s) => {
            parse_network(s).ok_or_else(|| anyhow::anyhow!("the data dir's chain settings {s:?} cannot be read"))?
        }
    };
    if (network.as_str(), records_per_block, difficulty_bits)
        != (ours.network.as_str(), ours.records_per_block, ours.difficulty_bits)
    {
        anyhow::bail!(
            "the data dir's chain is network '{network}' with {records_per_block} records a block and \
             {difficulty_bits} bits of work, but this command was given network '{}' with {} records a block and {} \
             bits; run it with the data dir's chain settings ([chain] / CAIRN_CHAIN_*)",
            ours.network,
            ours.records_per_block,
            ours.difficulty_bits
        );
    }
    let key = read_institution_key(&settings.data_dir)?;
    let mut small: Vec<(String, Vec<u8>)> = vec![(SETTINGS.into(), format!("{settings:#?}\n").into_bytes())];
    small.push((INSTITUTION_KEY.into(), key.to_bytes().to_vec()));
    match std::fs::read(settings.data_dir.join(SESSION_KEY)) {
        Ok(k) => small.push((SESSION_KEY.into(), k)),
        // Made by the first `cairn serve`; a data dir only ever used by commands has none.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).context("cannot read session.key"),
    }
    let mut missing_keys = Vec::new();
    for k in &keys {
        let Some(file) = &k.key_file else { continue };
        if !is_credential_key_name(file) {
            anyhow::bail!("the database names a credential key file {file:?}, which is not a key file's name");
        }
        match std::fs::read(settings.data_dir.join(file)) {
            Ok(bytes) => {
                if credential_public(&bytes).as_deref() != Some(k.public_key.as_str()) {
                    anyhow::bail!("{file} does not hold the credential key {} the database names", k.public_key);
                }
                small.push((file.clone(), bytes));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !k.current => missing_keys.push(file.clone()),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot read {file}, the current credential key; if it is lost, `cairn identity rotate` \
                         makes a new one (what the lost one signed keeps verifying)"
                    )
                });
            }
        }
    }

    let partial = work.path().join("archive");
    let mut members = Vec::new();
    let manifest;
    {
        let file = create_private_file(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
        // Fast compression: most of the bytes are PNG badges, which compress no further.
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
        let header = |size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_size(size);
            h.set_mode(0o600);
            h.set_mtime(now.max(0) as u64);
            h.set_cksum();
            h
        };
        for (name, bytes) in &small {
            tar.append_data(&mut header(bytes.len() as u64), name, bytes.as_slice())
                .with_context(|| format!("writing {name} into the archive"))?;
            members.push(Member {
                name: name.clone(),
                size: bytes.len() as u64,
                sha256: cairn_chain::to_hex(&sha2::Sha256::digest(bytes)),
            });
        }
        let db = std::fs::File::open(&db_copy).context("reading the database copy")?;
        let size = db.metadata()?.len();
        let mut hashing = Hashing { inner: db, hasher: sha2::Sha256::new(), bytes: 0 };
        tar.append_data(&mut header(size), DATABASE, &mut hashing).context("writing the database into the archive")?;
        if hashing.bytes != size {
            anyhow::bail!("the database copy changed while it was archived");
        }
        members.push(Member { name: DATABASE.into(), size, sha256: cairn_chain::to_hex(&hashing.hasher.finalize()) });
        manifest = Manifest {
            format: FORMAT,
            created_at: now,
            cairn_version: env!("CARGO_PKG_VERSION").to_string(),
            institution_id: cairn_chain::to_hex(&key.verifying_key().to_bytes()),
            institution_did: did_key(&key.verifying_key()),
            network,
            records_per_block,
            difficulty_bits,
            counts,
            members,
        };
        let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
        let signature = key.sign(&signed(&manifest_bytes));
        tar.append_data(&mut header(manifest_bytes.len() as u64), MANIFEST, manifest_bytes.as_slice())
            .context("writing the manifest into the archive")?;
        let sig = cairn_chain::to_hex(&signature.to_bytes());
        tar.append_data(&mut header(sig.len() as u64), SIGNATURE, sig.as_bytes())
            .context("writing the signature into the archive")?;
        let gz = tar.into_inner().context("finishing the archive")?;
        let file = gz.finish().context("finishing the archive")?;
        file.sync_all()?;
    }
    let bytes = std::fs::metadata(&partial)?.len();
    std::fs::rename(&partial, out).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(Written { manifest, bytes, missing_keys })
}

/// The bytes the manifest's signature covers.
fn signed(manifest: &[u8]) -> Vec<u8> {
    [SIGNED_PREFIX, manifest].concat()
}

/// The multibase of the public key of a credential key file's bytes, if they are a key.
pub(crate) fn credential_public(bytes: &[u8]) -> Option<String> {
    let seed: [u8; 32] = bytes.try_into().ok()?;
    Some(crate::badges::did::multibase(&cairn_chain::SigningKey::from_bytes(&seed).verifying_key()))
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: sha2::Sha256,
    bytes: u64,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Why a restore was not made. Nothing in the data dir was changed unless the error says so.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} is not empty; add --force to replace its database and keys")]
    NotEmpty(PathBuf),
    #[error("{0}")]
    BadArchive(String),
    #[error("the archive's signature does not hold: {0}")]
    Signature(String),
    #[error("the archive is not of the expected institution: {0}")]
    OtherInstitution(String),
    #[error("the archive's database is not what Cairn's migrations make: {0}")]
    Schema(String),
    #[error("the archive's database does not hold what its manifest counts: {0}")]
    Counts(String),
    #[error("the restored chain is NOT valid: block {0}: {1}")]
    Chain(u64, String),
    #[error("the restored key does not match the chain: {0}")]
    Key(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<crate::db::StoreError> for RestoreError {
    fn from(e: crate::db::StoreError) -> Self {
        RestoreError::Other(anyhow::Error::new(e))
    }
}

/// What a restore found and wrote.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    /// Main-chain blocks verified.
    pub blocks: usize,
    /// This institution's records whose signature key was checked.
    pub own_records: usize,
    /// The files written into the data dir.
    pub files: Vec<String>,
    /// The credential key that signs from now on (multibase).
    pub credential_key: String,
    /// Earlier credential keys whose files were not in the archive.
    pub missing_keys: Vec<String>,
    /// Who can act on the restored instance.
    pub access: Access,
}

/// How to restore.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreOptions<'a> {
    /// Replace the database and keys of a non-empty data dir.
    pub force: bool,
    /// Refuse an archive of any other institution: its public key (hex) or `did:key`.
    pub expect_institution: Option<&'a str>,
}

/// The public key `--expect-institution` names: hex (as `cairn identity` prints it) or a
/// `did:key`.
pub fn parse_institution(s: &str) -> Result<[u8; 32], String> {
    let s = s.trim();
    let key = if let Some(rest) = s.strip_prefix("did:key:") {
        let mb = rest.split('#').next().unwrap_or_default();
        crate::badges::did::key_from_multibase(mb).map(|k| k.to_bytes())
    } else if s.starts_with("did:") {
        return Err(format!(
            "{s} is not a key: give the institution's public key (hex, as `cairn identity` prints it) or its did:key \
             (a did:web names a host, which any archive can claim)"
        ));
    } else {
        cairn_chain::from_hex(s).and_then(|b| <[u8; 32]>::try_from(b).ok())
    };
    key.ok_or_else(|| format!("{s} is neither a hex Ed25519 public key nor a did:key"))
}

/// Restores the archive at `archive` into `settings.data_dir`, which must be empty (or
/// missing) unless `force`. Everything is written and checked in a temporary directory beside
/// the data dir first; the data dir is changed only when every check holds. The chain
/// settings of the check are the archive's.
pub fn restore(
    archive: &Path,
    settings: &Settings,
    opts: RestoreOptions<'_>,
    now: i64,
) -> Result<Restored, RestoreError> {
    let expected = opts
        .expect_institution
        .map(parse_institution)
        .transpose()
        .map_err(|e| RestoreError::Other(anyhow::anyhow!("--expect-institution: {e}")))?;
    let dir = &settings.data_dir;
    let non_empty = std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
    if non_empty && !opts.force {
        return Err(RestoreError::NotEmpty(dir.clone()));
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let stage = tempfile::Builder::new()
        .prefix(".cairn-restore-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    let found = extract(archive, stage.path())?;
    let manifest = check_manifest(&found, expected)?;
    let checked = check_staged(stage.path(), settings, &manifest, &found, now)?;
    let files = replace(stage.path(), dir, opts.force)?;
    Ok(Restored { manifest, files, ..checked })
}

/// What was read from an archive: the manifest, its signature, and every other member as it
/// was written into the stage.
struct Found {
    manifest: Option<Vec<u8>>,
    signature: Option<Vec<u8>>,
    members: Vec<Member>,
}

/// The manifest and signature are read into memory, at most this many bytes each; so are the
/// settings.
const SMALL_MEMBER: u64 = 1024 * 1024;
/// A key file holds 32 or 64 bytes.
const KEY_MEMBER: u64 = 1024;

/// Writes the archive's members into `stage` (settings, manifest and signature are kept in
/// memory), hashing each, and refuses any member that is not a regular file with a name a
/// backup holds.
fn extract(path: &Path, stage: &Path) -> Result<Found, RestoreError> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let bad = |e: std::io::Error| RestoreError::BadArchive(format!("{} is not a Cairn backup: {e}", path.display()));
    let mut found = Found { manifest: None, signature: None, members: Vec::new() };
    let mut seen: Vec<String> = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if !(NAMES.contains(&name.as_str()) || is_credential_key_name(&name)) || seen.contains(&name) {
            return Err(RestoreError::BadArchive(format!("unexpected member {name:?} in {}", path.display())));
        }
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            return Err(RestoreError::BadArchive(format!(
                "member {name} is not a regular file (tar type {:?}{})",
                kind.as_byte() as char,
                if kind.is_symlink() { ", a symbolic link" } else { "" }
            )));
        }
        seen.push(name.clone());
        let limit = match name.as_str() {
            MANIFEST | SIGNATURE | SETTINGS => Some(SMALL_MEMBER),
            DATABASE => None,
            _ => Some(KEY_MEMBER),
        };
        if let Some(limit) = limit
            && entry.size() > limit
        {
            return Err(RestoreError::BadArchive(format!(
                "member {name} is {} bytes, more than a backup holds",
                entry.size()
            )));
        }
        if name == MANIFEST || name == SIGNATURE || name == SETTINGS {
            let mut bytes = Vec::new();
            (&mut entry).take(SMALL_MEMBER).read_to_end(&mut bytes).map_err(bad)?;
            let member = Member {
                name: name.clone(),
                size: bytes.len() as u64,
                sha256: cairn_chain::to_hex(&sha2::Sha256::digest(&bytes)),
            };
            match name.as_str() {
                MANIFEST => found.manifest = Some(bytes),
                SIGNATURE => found.signature = Some(bytes),
                _ => found.members.push(member),
            }
            continue;
        }
        let mut out = create_private_file(&stage.join(&name)).with_context(|| format!("cannot write {name}"))?;
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        loop {
            let n = entry.read(&mut buf).map_err(bad)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).with_context(|| format!("cannot write {name}"))?;
            size += n as u64;
        }
        out.sync_all().with_context(|| format!("cannot write {name}"))?;
        found.members.push(Member { name, size, sha256: cairn_chain::to_hex(&hasher.finalize()) });
    }
    Ok(found)
}

/// Reads the manifest, refuses an older format, checks its signature by the key it names
/// (and that key against `expected`), and every member against it.
fn check_manifest(found: &Found, expected: Option<[u8; 32]>) -> Result<Manifest, RestoreError> {
    let bytes =
        found.manifest.as_deref().ok_or_else(|| RestoreError::BadArchive(format!("the archive has no {MANIFEST}")))?;
    let unreadable = |e: serde_json::Error| RestoreError::BadArchive(format!("its manifest cannot be read: {e}"));
    let any: serde_json::Value = serde_json::from_slice(bytes).map_err(unreadable)?;
    match any.get("format").and_then(|f| f.as_u64()) {
        Some(f) if f == u64::from(FORMAT) => {}
        Some(1) => {
            return Err(RestoreError::BadArchive(format!(
                "this archive is in format 1 (made by Cairn {}): it is not signed and holds no credential keys, so \
                 nothing shows who made it or that it is unchanged, and it is refused. Restore it with the Cairn \
                 version that made it, then take a new backup with this one",
                any.get("cairn_version").and_then(|v| v.as_str()).unwrap_or("?")
            )));
        }
        other => {
            return Err(RestoreError::BadArchive(format!(
                "archive format {} is not {FORMAT}",
                other.map(|f| f.to_string()).unwrap_or_else(|| "(none)".into())
            )));
        }
    }
    let manifest: Manifest = serde_json::from_slice(bytes).map_err(unreadable)?;
    let public: [u8; 32] = cairn_chain::from_hex(&manifest.institution_id)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| RestoreError::BadArchive("the manifest's institution id is not a public key".into()))?;
    let key = cairn_chain::VerifyingKey::from_bytes(&public)
        .map_err(|_| RestoreError::BadArchive("the manifest's institution id is not a public key".into()))?;
    let sig =
        found.signature.as_deref().ok_or_else(|| RestoreError::Signature(format!("the archive has no {SIGNATURE}")))?;
    let sig: [u8; 64] = std::str::from_utf8(sig)
        .ok()
        .and_then(|s| cairn_chain::from_hex(s.trim()))
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| RestoreError::Signature(format!("{SIGNATURE} is not an Ed25519 signature")))?;
    key.verify_strict(&signed(bytes), &ed25519_dalek::Signature::from_bytes(&sig)).map_err(|_| {
        RestoreError::Signature(format!(
            "the manifest is not signed by the institution key it names ({}): the archive was changed, or signed \
             with another key",
            manifest.institution_id
        ))
    })?;
    if let Some(want) = expected
        && want != public
    {
        return Err(RestoreError::OtherInstitution(format!(
            "it was made by {} ({}), not {}",
            manifest.institution_id,
            manifest.institution_did,
            cairn_chain::to_hex(&want)
        )));
    }
    for m in &found.members {
        match manifest.members.iter().find(|l| l.name == m.name) {
            None => return Err(RestoreError::BadArchive(format!("member {} is not in the manifest", m.name))),
            Some(l) if l.size != m.size || !l.sha256.eq_ignore_ascii_case(&m.sha256) => {
                return Err(RestoreError::BadArchive(format!(
                    "member {} was changed: the manifest lists {} bytes with SHA-256 {}, the archive holds {} bytes \
                     with SHA-256 {}",
                    m.name, l.size, l.sha256, m.size, m.sha256
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(l) = manifest.members.iter().find(|l| !found.members.iter().any(|m| m.name == l.name)) {
        return Err(RestoreError::BadArchive(format!("member {} of the manifest is not in the archive", l.name)));
    }
    for name in [DATABASE, INSTITUTION_KEY] {
        if !manifest.members.iter().any(|m| m.name == name) {
            return Err(RestoreError::BadArchive(format!("the archive has no {name}")));
        }
    }
    Ok(manifest)
}

/// Compares a database's schema with what this version's migrations make when the same
/// migrations have run; names every object that differs.
fn check_schema(conn: &mut SqliteConnection) -> Result<(), RestoreError> {
    let applied = crate::db::backup::applied_migrations(conn)
        .map_err(|e| RestoreError::BadArchive(format!("its database cannot be read: {e}")))?;
    if applied.is_empty() {
        return Err(RestoreError::Schema("it has no migrations: it is not a Cairn database".into()));
    }
    let want = crate::db::backup::migrated_schema(&applied)?.map_err(|v| {
        RestoreError::Schema(format!(
            "it has run migration {v}, which this version of Cairn does not know (is it newer?)"
        ))
    })?;
    let have = crate::db::backup::schema(conn)?;
    let describe = |o: &SchemaObject| {
        if o.name == o.table {
            format!("{} {:?}", o.kind, o.name)
        } else {
            format!("{} {:?} on {:?}", o.kind, o.name, o.table)
        }
    };
    let mut wrong: Vec<String> = Vec::new();
    for o in &have {
        match want.iter().find(|w| w.kind == o.kind && w.name == o.name) {
            None => wrong.push(format!("extra {}", describe(o))),
            Some(w) if w != o => wrong.push(format!("changed {}", describe(o))),
            Some(_) => {}
        }
    }
    for w in &want {
        if !have.iter().any(|o| o.kind == w.kind && o.name == w.name) {
            wrong.push(format!("missing {}", describe(w)));
        }
    }
    if wrong.is_empty() { Ok(()) } else { Err(RestoreError::Schema(wrong.join(", "))) }
}

/// What [`check_staged`] found.
type Checked = Restored;

/// Checks the staged database and keys: schema, counts, chain, institution key, credential
/// keys; lists who can act on the instance.
fn check_staged(
    stage: &Path,
    settings: &Settings,
    manifest: &Manifest,
    found: &Found,
    now: i64,
) -> Result<Checked, RestoreError> {
    let db_path = stage.join(DATABASE);
    {
        // Read only, and no function of the archive's schema runs while it is looked at.
        let url = db_path.to_str().context("the stage's path is not UTF-8")?;
        let mut conn = SqliteConnection::establish(url)
            .map_err(|e| RestoreError::BadArchive(format!("its database cannot be opened: {e}")))?;
        conn.batch_execute("PRAGMA trusted_schema = OFF; PRAGMA query_only = ON;")
            .map_err(|e| RestoreError::BadArchive(format!("its database cannot be read: {e}")))?;
        check_schema(&mut conn)?;
        let counts = crate::db::backup::counts(&mut conn)?;
        let m = manifest.counts;
        let mut wrong = Vec::new();
        for (what, have, want) in [
            ("awards", counts.awards, m.awards),
            ("learners", counts.learners, m.learners),
            ("blocks", counts.blocks, m.blocks),
            ("records", counts.records, m.records),
        ] {
            if have != want {
                wrong.push(format!("{have} {what}, the manifest says {want}"));
            }
        }
        if !wrong.is_empty() {
            return Err(RestoreError::Counts(wrong.join(", ")));
        }
    }
    let institution = read_institution_key(stage).map_err(|e| RestoreError::Key(format!("{e:#}")))?;
    if cairn_chain::to_hex(&institution.verifying_key().to_bytes()) != manifest.institution_id {
        return Err(RestoreError::Key(format!(
            "{INSTITUTION_KEY} is {} but the archive was made and signed for {}",
            cairn_chain::to_hex(&institution.verifying_key().to_bytes()),
            manifest.institution_id
        )));
    }
    let mut chain = settings.chain.clone();
    chain.network = manifest.network.clone();
    chain.records_per_block = manifest.records_per_block;
    chain.difficulty_bits = manifest.difficulty_bits;
    // The archive's store as it is: the peers of this command's settings are not trusted in it.
    let pool = crate::db::open(&db_path)?;
    let ledger = crate::ledger::Ledger::open(pool.clone(), &chain, stage)?;
    let blocks = ledger.main_blocks();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    cairn_chain::verify_chain_with_progress(ledger.params(), &ledger.members(), &blocks, now, true, threads, &|_| {})
        .map_err(|(h, e)| RestoreError::Chain(h, e.to_string()))?;
    let ours = ledger.key().verifying_key().to_bytes();
    let mut conn = pool.get().map_err(anyhow::Error::new)?;
    let records = crate::db::backup::own_records(&mut conn)?;
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
    let (credential_key, missing_keys) = check_credential_keys(&mut conn, stage, ledger.key(), found)?;
    let access = crate::db::backup::access(&mut conn)?;
    drop(conn);
    drop(ledger);
    drop(pool);
    Ok(Restored {
        manifest: manifest.clone(),
        blocks: blocks.len(),
        own_records: records.len(),
        files: Vec::new(),
        credential_key,
        missing_keys,
        access,
    })
}

/// Every credential key file in the stage is one the database names and holds that key; the
/// current one is there (unless it is the institution's own) and signs a test message that
/// its public key verifies. Returns the current key and the earlier ones without a file.
fn check_credential_keys(
    conn: &mut SqliteConnection,
    stage: &Path,
    institution: &cairn_chain::SigningKey,
    found: &Found,
) -> Result<(String, Vec<String>), RestoreError> {
    let keys = crate::db::backup::credential_keys(conn)?;
    for m in found.members.iter().filter(|m| is_credential_key_name(&m.name)) {
        if !keys.iter().any(|k| k.key_file.as_deref() == Some(m.name.as_str())) {
            return Err(RestoreError::BadArchive(format!("member {} is no credential key the database names", m.name)));
        }
    }
    let mut missing = Vec::new();
    for k in &keys {
        let Some(file) = &k.key_file else { continue };
        if !is_credential_key_name(file) {
            return Err(RestoreError::Key(format!("the database names a credential key file {file:?}")));
        }
        match std::fs::read(stage.join(file)) {
            Ok(bytes) if credential_public(&bytes).as_deref() == Some(k.public_key.as_str()) => {}
            Ok(_) => {
                return Err(RestoreError::Key(format!("{file} does not hold the credential key {}", k.public_key)));
            }
            Err(_) if k.current => {
                return Err(RestoreError::Key(format!(
                    "the current credential key's file {file} is not in the archive"
                )));
            }
            Err(_) => missing.push(file.clone()),
        }
    }
    let signer = crate::badges::award::credential_signer(conn, institution)?;
    let public = match keys.iter().find(|k| k.current) {
        Some(k) => k.public_key.clone(),
        None => crate::badges::did::multibase(&institution.verifying_key()),
    };
    let verifying = crate::badges::did::key_from_multibase(&public)
        .ok_or_else(|| RestoreError::Key(format!("the current credential key {public} is not an Ed25519 key")))?;
    let signature = signer.sign(TEST_MESSAGE);
    verifying
        .verify(TEST_MESSAGE, &signature)
        .map_err(|_| RestoreError::Key(format!("the current credential key's file does not sign for {public}")))?;
    Ok((public, missing))
}

/// Moves the checked files from `stage` into `dir` (created 0700 if missing): the keys first,
/// the database last. A replaced database's write-ahead log is removed first, as it would be
/// applied to the new one.
fn replace(stage: &Path, dir: &Path, force: bool) -> Result<Vec<String>, RestoreError> {
    create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", dir.display()))?;
    }
    if force {
        for stale in ["cairn.db-wal", "cairn.db-shm"] {
            match std::fs::remove_file(dir.join(stale)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot remove {stale}")).into()),
            }
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(stage)
        .with_context(|| format!("cannot read {}", stage.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        // SQLite removes the log when the last connection closes; an index is rebuilt.
        .filter(|n| n != "cairn.db-shm" && !(n == "cairn.db-wal" && is_empty(&stage.join(n))))
        .collect();
    names.sort_by_key(|n| (n.starts_with(DATABASE), n == DATABASE, n.clone()));
    for name in &names {
        move_file(&stage.join(name), dir, name).with_context(|| format!("cannot write {name}"))?;
    }
    Ok(names)
}

/// Moves `from` to `dir/name`, replacing it at once: a rename, or when the data dir is
/// another file system (a mount point), a private copy beside it, synced, then renamed.
fn move_file(from: &Path, dir: &Path, name: &str) -> std::io::Result<()> {
    let to = dir.join(name);
    match std::fs::rename(from, &to) {
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            let part = dir.join(format!(".{name}.restoring"));
            let _ = std::fs::remove_file(&part);
            let mut out = create_private_file(&part)?;
            std::io::copy(&mut std::fs::File::open(from)?, &mut out)?;
            out.sync_all()?;
            std::fs::rename(&part, &to)
        }
        other => other,
    }
}

fn is_empty(path: &Path) -> bool {
    std::fs::metadata(path).map(|m| m.len() == 0).unwrap_or(true)
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
    create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
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

/// How often the scheduled-backup job looks whether a backup is due.
pub const TICK: std::time::Duration = std::time::Duration::from_secs(600);

/// One pass of scheduled backups (`[backup]`): a new archive when one is due, old ones pruned.
/// Runs on a blocking thread: it copies the whole database.
pub async fn pass(
    pool: crate::db::DbPool,
    settings: crate::config::Settings,
    clock: crate::clock::Clock,
) -> anyhow::Result<crate::jobs::Pass> {
    let now = clock.now();
    let done = tokio::task::spawn_blocking(move || scheduled(&pool, &settings, now)).await??;
    if let Some((path, bytes)) = &done.written {
        tracing::info!(path = %path.display(), bytes, pruned = done.pruned, "scheduled backup written");
    }
    Ok(crate::jobs::Pass::Idle)
}

#[cfg(test)]
mod tests {
    use super::{did_key, parse_institution};

    #[test]
    fn an_institution_is_named_by_its_hex_key_or_its_did_key_and_never_by_a_host() {
        let key = cairn_chain::SigningKey::from_bytes(&[5u8; 32]).verifying_key();
        let raw = key.to_bytes();
        assert_eq!(parse_institution(&cairn_chain::to_hex(&raw)), Ok(raw));
        assert_eq!(parse_institution(&did_key(&key)), Ok(raw));
        assert_eq!(parse_institution(&format!("{}#key-1", did_key(&key))), Ok(raw));
        assert!(parse_institution("did:web:cairn.example.edu").unwrap_err().contains("names a host"));
        assert!(parse_institution("abcd").is_err());
        assert!(parse_institution("did:key:zNotAKey").is_err());
    }
}
