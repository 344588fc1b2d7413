//! The JSON exchanged between institutions (docs/peers.md): what this instance serves under
//! `/chain/…` and what it reads from its peers are the same types.

use serde::{Deserialize, Serialize};

/// Blocks per page of `GET /chain/blocks`.
pub const PAGE: u64 = 200;

/// `GET /chain/identity`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub institution: String,
    pub public_key: String,
    pub name: String,
    pub network: String,
    pub genesis: String,
    /// The public base URL its assertions live under.
    #[serde(default)]
    pub base_url: String,
}

/// `GET /chain/head`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Head {
    pub height: u64,
    pub hash: String,
    pub work: u64,
}

/// `GET /chain/blocks?from=H&limit=N`: stored blocks (hex) from height H on the main chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlocksPage {
    pub from: u64,
    pub blocks: Vec<String>,
    pub height: u64,
}

/// Body of `POST /chain/blocks` (announce) and `POST /chain/records` (relay).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    /// Canonical bytes in hex: a stored block, or a record.
    pub data: String,
}

/// What became of an announced block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockOutcome {
    /// Already held.
    Known,
    /// Stored on a side branch; the main chain is unchanged.
    SideBranch,
    /// The main chain now ends with it (or its branch).
    NewTip,
}

/// The answer to `POST /chain/blocks` when the block was taken.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Announced {
    pub accepted: bool,
    pub outcome: BlockOutcome,
}

/// The answer to `POST /chain/records` when the record was taken (201 when `new`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Relayed {
    pub accepted: bool,
    pub new: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_outcomes_are_spelled_as_docs_peers_md_says() {
        for (outcome, word) in [
            (BlockOutcome::Known, "known"),
            (BlockOutcome::SideBranch, "side_branch"),
            (BlockOutcome::NewTip, "new_tip"),
        ] {
            let json = serde_json::to_value(Announced { accepted: true, outcome }).unwrap();
            assert_eq!(json, serde_json::json!({"accepted": true, "outcome": word}));
            assert_eq!(serde_json::from_value::<BlockOutcome>(serde_json::json!(word)).unwrap(), outcome);
        }
    }
}
