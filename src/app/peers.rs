//! Trusting a peer institution, in two steps: fetch the identity it presents and check it
//! (nothing is trusted yet; a person compares its fingerprint with the one the other
//! institution gives by another channel), then trust exactly the key that was confirmed.
//! Removing a peer, too. The peers page, `cairn peer` and the `[[peers]]` setting all come here.

use diesel::SqliteConnection;

use crate::db::peers::TrustedPeer;
use crate::db::{self, StoreError, StoreResult};
use crate::peers::{self, Peers};

/// A peer as presented, waiting to be confirmed (or as configured).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Candidate {
    pub url: String,
    pub public_key: String,
    #[serde(default)]
    pub name: String,
    /// Where its assertions live; empty: the same as `url`.
    #[serde(default)]
    pub base_url: String,
}

impl Candidate {
    /// What people compare before trusting it.
    pub fn fingerprint(&self) -> String {
        peers::fingerprint(&self.public_key)
    }
}

/// Why a peer's identity cannot be offered for trust.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0}")]
    BadUrl(String),
    #[error("cannot fetch {url}/chain/identity: {cause:#}")]
    Unreachable { url: String, cause: anyhow::Error },
    #[error("{url} is on the network '{theirs}', this instance on '{ours}'")]
    OtherNetwork { url: String, theirs: String, ours: String },
    #[error("{url} presents a malformed public key")]
    MalformedKey { url: String },
}

impl IdentityError {
    /// The error as a sentence for a page: what happened and what to try, without the
    /// technical cause (which the log keeps).
    pub fn sentence(&self) -> String {
        match self {
            IdentityError::Unreachable { url, .. } => format!(
                "Cairn could not read the identity of {url}: the address did not answer as a Cairn institution does. \
                 Check the address (it is the other institution's base URL, such as https://badges.example.edu) and \
                 that it is online, then try again."
            ),
            other => format!("{}.", other.to_string().trim_end_matches('.')),
        }
    }
}

/// First step: fetches the identity at `url` and checks that it is on `network` with a
/// well-formed key. Nothing is stored.
pub async fn fetch_candidate(
    client: &peers::client::Client,
    url: &str,
    network: &str,
) -> Result<Candidate, IdentityError> {
    let url = peers::normalise(url).map_err(IdentityError::BadUrl)?;
    let id = match client.identity(&url).await {
        Ok(id) => id,
        Err(cause) => return Err(IdentityError::Unreachable { url, cause }),
    };
    if id.network != network {
        return Err(IdentityError::OtherNetwork { url, theirs: id.network, ours: network.to_string() });
    }
    if !peers::is_public_key(&id.public_key) {
        return Err(IdentityError::MalformedKey { url });
    }
    let base_url = if id.base_url.is_empty() { url.clone() } else { id.base_url };
    Ok(Candidate { url, public_key: id.public_key.to_ascii_lowercase(), name: id.name, base_url })
}

/// Second step: trusts exactly this key at this URL (or updates the peer listed there). In a
/// running server (`live`) the ledger takes the new member at once and the exchange starts.
pub fn trust(
    conn: &mut SqliteConnection,
    actor: &crate::app::access::Actor,
    live: Option<&Peers>,
    candidate: &Candidate,
    now: i64,
) -> StoreResult<TrustedPeer> {
    actor.require_admin("trust peers")?;
    let url = peers::normalise(&candidate.url).map_err(|e| StoreError::field("url", e))?;
    let base_url = if candidate.base_url.trim().is_empty() {
        url.clone()
    } else {
        peers::normalise(&candidate.base_url).map_err(|e| StoreError::field("base_url", e))?
    };
    if !peers::is_public_key(&candidate.public_key) {
        return Err(StoreError::field("public_key", "a public key is 64 hexadecimal characters"));
    }
    let peer = TrustedPeer {
        url,
        public_key: candidate.public_key.to_ascii_lowercase(),
        name: candidate.name.clone(),
        base_url,
    };
    crate::db::write_tx(conn, |c| {
        db::peers::upsert(c, &peer, now)?;
        crate::app::audit::record(c, actor, "peer.trust", None, &peer.url, &peer.name, now)
    })?;
    if let Some(live) = live {
        live.trust_changed(conn);
    }
    Ok(peer)
}

/// Stops trusting the peer at `url`.
pub fn remove(
    conn: &mut SqliteConnection,
    actor: &crate::app::access::Actor,
    live: Option<&Peers>,
    url: &str,
    now: i64,
) -> StoreResult<()> {
    actor.require_admin("remove peers")?;
    let url = peers::normalise(url).map_err(|e| StoreError::field("url", e))?;
    crate::db::write_tx(conn, |c| {
        if !db::peers::remove(c, &url)? {
            return Err(StoreError::NotFound("peer"));
        }
        crate::app::audit::record(c, actor, "peer.remove", None, &url, "", now)
    })?;
    if let Some(live) = live {
        live.trust_changed(conn);
    }
    Ok(())
}
