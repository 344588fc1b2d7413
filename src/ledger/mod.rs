//! This institution's copy of the recognition chain: its signing key, the pending pool and
//! the blocks (both in SQLite, so each step is one transaction), the in-memory chain used
//! for fork choice ([`store`]), the miner that turns every five pending records into a block
//! ([`miner`]), each award's standing and proof ([`proof`]) and the export file ([`export`]).
//!
//! Crash safety: a record enters the pool in the award's own transaction; a mined block and
//! the marking of its records are stored in one transaction; mining itself keeps no state,
//! so a process killed at any moment restarts with the same pool and chain and mines again.

mod export;
mod miner;
mod proof;
mod store;
mod watch;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use cairn_chain::{Chain, Hash, Members, Params, Record, RecordFields, RecordKind, SigningKey};
use diesel::SqliteConnection;

use crate::config::ChainSettings;
use crate::db::{self, DbPool, StoreResult};

pub use proof::{BlockDoc, ChainStatus, PathStep, Proof, RecordDoc};
pub use store::{AcceptError, PendingRecord, upgrade};
pub use watch::{WATCH_EVERY, Watcher};

/// Loads the institution's Ed25519 key from the data dir, creating it on first start.
pub fn load_key(data_dir: &Path) -> anyhow::Result<SigningKey> {
    let path = data_dir.join("institution.key");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let seed: [u8; 32] =
                bytes.as_slice().try_into().map_err(|_| anyhow::anyhow!("{} must hold 32 bytes", path.display()))?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use rand::RngCore;
            use std::io::Write;
            std::fs::create_dir_all(data_dir)?;
            let mut seed = [0u8; 32];
            rand::rng().fill_bytes(&mut seed);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            opts.open(&path).with_context(|| format!("cannot create {}", path.display()))?.write_all(&seed)?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Signs a record and puts it in the pending pool, inside the caller's transaction. It is
/// pooled at the time it was issued (`fields.issued_at`, the caller's clock).
pub fn pool_record(
    conn: &mut SqliteConnection,
    key: &SigningKey,
    fields: RecordFields,
    award_id: Option<i64>,
) -> StoreResult<Record> {
    let at = fields.issued_at;
    let record = Record::sign(fields, key);
    db::chain::insert_pending(conn, &record, award_id, at)?;
    Ok(record)
}

/// The hash a record carries for an award's evidence: SHA-256 of the evidence URL followed by
/// the award's salt, as the recipient's identity hash is made. Whoever holds the Assertion
/// can check it; once a forgotten learner's salt is deleted, knowing the post's URL no longer
/// finds the record. Zero when there is no evidence.
pub fn evidence_hash(evidence: Option<&str>, salt: &str) -> Hash {
    evidence.map(|e| Hash::of(format!("{e}{salt}").as_bytes())).unwrap_or_default()
}

/// The fields of an award's (or revocation's) record; `evidence` from [`evidence_hash`].
pub fn fields_for(
    kind: RecordKind,
    base: &str,
    assertion_url: &str,
    badge_class_url: &str,
    identity: &str,
    evidence: Hash,
    at: i64,
) -> RecordFields {
    RecordFields {
        kind,
        assertion_url: assertion_url.to_string(),
        badge_class_url: badge_class_url.to_string(),
        issuer_id: crate::badges::ob::issuer_url(base),
        recipient_hash: identity.to_string(),
        evidence_hash: evidence,
        issued_at: at,
    }
}

/// The chain as this instance holds it.
pub struct Ledger {
    pool: DbPool,
    key: SigningKey,
    params: Params,
    loaded: Mutex<store::Loaded>,
    /// Wakes the miner (an award was made).
    pub wake: Arc<tokio::sync::Notify>,
    /// Signalled when the main chain's tip changes (peers announce it).
    pub tip_changed: Arc<tokio::sync::Notify>,
    cancel: AtomicBool,
    /// The member institutions (this one and the trusted peers), with their base URLs.
    members: std::sync::RwLock<Members>,
    /// When the chain watcher last found the cache current, in milliseconds after `opened`
    /// (0: no watcher is running).
    watched_at: std::sync::atomic::AtomicU64,
    opened: std::time::Instant,
    /// The time blocks are mined at and peers' blocks are checked against.
    clock: crate::clock::Clock,
}

fn params_of(s: &ChainSettings) -> Params {
    Params {
        records_per_block: s.records_per_block,
        difficulty_bits: s.difficulty_bits,
        finality_depth: s.finality_depth,
        ..Params::new(s.network.clone())
    }
}

impl Ledger {
    /// Opens the ledger: key, network parameters (fixed once stored), blocks.
    pub fn open(pool: DbPool, settings: &ChainSettings, data_dir: &Path) -> anyhow::Result<Arc<Ledger>> {
        Ledger::open_with_clock(pool, settings, data_dir, crate::clock::Clock::system())
    }

    /// [`Ledger::open`], reading the time from `clock`.
    pub fn open_with_clock(
        pool: DbPool,
        settings: &ChainSettings,
        data_dir: &Path,
        clock: crate::clock::Clock,
    ) -> anyhow::Result<Arc<Ledger>> {
        let key = load_key(data_dir)?;
        let params = params_of(settings);
        store::check_network(&mut *pool.get()?, &params)?;
        store::check_format(&mut *pool.get()?)?;
        let ledger = Ledger {
            pool,
            key,
            loaded: Mutex::new(store::Loaded::empty(params.clone())),
            params,
            wake: Arc::new(tokio::sync::Notify::new()),
            tip_changed: Arc::new(tokio::sync::Notify::new()),
            cancel: AtomicBool::new(false),
            members: Default::default(),
            watched_at: Default::default(),
            opened: std::time::Instant::now(),
            clock,
        };
        ledger.refresh_trust()?;
        ledger.reload()?;
        Ok(Arc::new(ledger))
    }

    /// The clock the ledger and the peer exchange read.
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.clock
    }

    /// Reloads the members: this institution plus every peer in the trust list, each bound to
    /// the base URL its identity gave when it was trusted.
    pub fn refresh_trust(&self) -> anyhow::Result<()> {
        self.refresh_trust_on(&mut *self.pool.get()?)
    }

    /// [`Ledger::refresh_trust`] on a connection the caller holds.
    pub fn refresh_trust_on(&self, conn: &mut SqliteConnection) -> anyhow::Result<()> {
        let mut members = Members::new();
        for (key, base) in db::peers::keys(conn)? {
            if let Some(key) = cairn_chain::from_hex(&key).and_then(|k| <[u8; 32]>::try_from(k).ok()) {
                members.insert(key, &base);
            }
        }
        // Our own records are signed only by this code, under whatever base URL it had then.
        members.insert_unbound(self.key.verifying_key().to_bytes());
        *self.members.write().unwrap_or_else(|p| p.into_inner()) = members;
        Ok(())
    }

    /// A copy of the member list.
    pub fn members(&self) -> Members {
        self.members.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// True when `key` belongs to a member institution.
    pub fn trusts(&self, key: &[u8; 32]) -> bool {
        self.members.read().unwrap_or_else(|p| p.into_inner()).contains(key)
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The institution's id on the chain: its public key, in hex.
    pub fn institution_id(&self) -> String {
        cairn_chain::to_hex(&self.key.verifying_key().to_bytes())
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// A copy of what the chain looks like now.
    pub fn with_chain<T>(&self, f: impl FnOnce(&Chain) -> T) -> T {
        let _ = self.reload();
        f(&self.lock().chain)
    }
}
