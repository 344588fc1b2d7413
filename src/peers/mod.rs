//! Peer institutions sharing the chain (the protocol is documented in docs/peers.md).
//!
//! Each peer is an administrator-given URL and public key (the trust list, in
//! [`crate::db::peers`]). A supervised job ([`Peers::round`], in [`sync`]) relays our pending
//! records to every peer, announces our new tips, and asks each peer for its head, fetching
//! and validating the blocks it lacks; fork choice then decides. The same module receives
//! what peers send. [`client`] is the bounded HTTP client; [`wire`] the JSON both sides
//! speak. A failing peer is retried with backoff and never blocks awarding.

pub mod client;
pub mod sync;
pub mod wire;

use std::sync::Arc;

use cairn_chain::Hash;
use diesel::SqliteConnection;

use crate::db::DbPool;
use crate::ledger::Ledger;

pub use crate::db::peers::Peer;
pub use sync::{Refusal, receive_block, receive_record};

/// A peer URL without a trailing slash; http(s) only.
pub fn normalise(url: &str) -> Result<String, String> {
    let u = url::Url::parse(url.trim()).map_err(|_| format!("'{url}' is not a URL"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(format!("'{url}' must be an http(s) URL"));
    }
    Ok(u.as_str().trim_end_matches('/').to_string())
}

/// True for an Ed25519 public key in hex (64 hexadecimal characters).
pub fn is_public_key(hex: &str) -> bool {
    cairn_chain::from_hex(hex).is_some_and(|k| k.len() == 32)
}

/// A short fingerprint of a public key for people to compare: groups of its SHA-256.
pub fn fingerprint(public_key_hex: &str) -> String {
    let h = Hash::of(&cairn_chain::from_hex(public_key_hex).unwrap_or_default()).to_hex();
    h.as_bytes()[..24].chunks(4).map(|c| String::from_utf8_lossy(c).to_string()).collect::<Vec<_>>().join(":")
}

/// The peer worker.
#[derive(Clone)]
pub struct Peers {
    pool: DbPool,
    ledger: Arc<Ledger>,
    client: client::Client,
    pub wake: Arc<tokio::sync::Notify>,
    announced: Arc<std::sync::Mutex<Option<Hash>>>,
}

impl Peers {
    pub fn new(pool: DbPool, ledger: Arc<Ledger>) -> anyhow::Result<Peers> {
        Ok(Peers {
            pool,
            ledger,
            client: client::Client::new()?,
            wake: Arc::new(tokio::sync::Notify::new()),
            announced: Default::default(),
        })
    }

    /// The trust list changed in this process: the ledger takes the new members at once and
    /// the exchange runs now rather than at its next tick.
    pub fn trust_changed(&self, conn: &mut SqliteConnection) {
        if let Err(e) = self.ledger.refresh_trust_on(conn) {
            tracing::error!(error = format!("{e:#}"), "cannot reload the trust list");
        }
        self.wake.notify_one();
    }
}
