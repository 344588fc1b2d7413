//! Where each award stands on the chain, and the proof document anyone can check it with:
//! the record, its Merkle path and the block header, with `confirmations` and `final`.

use cairn_chain::{Chain, Hash, Record};
use diesel::SqliteConnection;

use super::Ledger;
use crate::db::StoreResult;
use crate::db::chain::{self as store, StoredKind};

/// Where an award stands on the chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ChainStatus {
    /// Not recorded (awards made before the chain existed).
    None,
    Pending,
    Recorded {
        height: u64,
        hash: String,
        /// Confirmations: 1 for the tip, one more for each block on top.
        depth: u64,
        /// Buried under `finality_depth` blocks: no branch can remove it any more.
        #[serde(rename = "final")]
        is_final: bool,
    },
}

impl ChainStatus {
    /// In words, for pages.
    pub fn describe(&self) -> String {
        match self {
            ChainStatus::None => "not on the chain".into(),
            ChainStatus::Pending => "pending: waiting for a block".into(),
            ChainStatus::Recorded { height, hash, depth, is_final } => {
                let standing = match (*is_final, *depth) {
                    (true, _) => "final".to_string(),
                    (false, 1) => "1 confirmation".to_string(),
                    (false, n) => format!("{n} confirmations"),
                };
                format!("recorded in block #{height} ({}…), {standing}", &hash[..16.min(hash.len())])
            }
        }
    }

    /// The hash of the block holding the record, when recorded.
    pub fn block_hash(&self) -> Option<&str> {
        match self {
            ChainStatus::Recorded { hash, .. } => Some(hash),
            _ => None,
        }
    }
}

/// A main-chain block's standing for an award recorded in it.
fn recorded(c: &Chain, height: u64, hash: String) -> ChainStatus {
    ChainStatus::Recorded { height, hash, depth: c.confirmations(height), is_final: c.is_final(height) }
}

/// A record as JSON (all fields, hex for bytes).
pub fn record_json(r: &Record) -> serde_json::Value {
    serde_json::json!({
        "id": r.id().to_hex(),
        "kind": StoredKind(r.fields.kind).as_str(),
        "assertion_url": r.fields.assertion_url,
        "badge_class_url": r.fields.badge_class_url,
        "issuer_id": r.fields.issuer_id,
        "recipient_hash": r.fields.recipient_hash,
        "evidence_hash": r.fields.evidence_hash.to_hex(),
        "issued_at": r.fields.issued_at,
        "institution": cairn_chain::to_hex(&r.institution),
        "signature": cairn_chain::to_hex(&r.signature),
        "bytes_hex": cairn_chain::to_hex(&r.encode()),
    })
}

impl Ledger {
    /// The chain status of an award.
    pub fn status(&self, conn: &mut SqliteConnection, award_id: i64) -> StoreResult<ChainStatus> {
        Ok(match store::award_blocks(conn, &[award_id])?.into_iter().next().map(|(_, hash)| hash) {
            None => ChainStatus::None,
            Some(None) => ChainStatus::Pending,
            Some(Some(hash)) => self.with_chain(|c| {
                let h = Hash::from_hex(&hash).unwrap_or_default();
                match c.block(&h).filter(|_| c.is_main(&h)) {
                    Some(b) => recorded(c, b.header.height, hash),
                    None => ChainStatus::Pending,
                }
            }),
        })
    }

    /// Chain statuses of several awards at once (for the Reader).
    pub fn statuses(
        &self,
        conn: &mut SqliteConnection,
        award_ids: &[i64],
    ) -> StoreResult<std::collections::HashMap<i64, ChainStatus>> {
        let rows = store::award_blocks(conn, award_ids)?;
        Ok(self.with_chain(|c| {
            rows.into_iter()
                .map(|(a, h)| {
                    let status = match h.and_then(|h| Hash::from_hex(&h)) {
                        Some(hash) if c.is_main(&hash) => {
                            let height = c.block(&hash).map_or(0, |b| b.header.height);
                            recorded(c, height, hash.to_hex())
                        }
                        _ => ChainStatus::Pending,
                    };
                    (a, status)
                })
                .collect()
        }))
    }

    /// The proof document of an award (`/assertions/{id}/proof`).
    pub fn proof(&self, conn: &mut SqliteConnection, award_id: i64) -> StoreResult<Option<serde_json::Value>> {
        let Some((bytes, block_hash)) = store::award_record(conn, award_id)? else { return Ok(None) };
        let Ok(record) = Record::decode(&bytes) else { return Ok(None) };
        let rec = record_json(&record);
        let status = self.status(conn, award_id)?;
        let block = block_hash.and_then(|h| Hash::from_hex(&h)).and_then(|h| {
            self.with_chain(|c| {
                c.block(&h).filter(|_| c.is_main(&h)).map(|b| {
                    let height = b.header.height;
                    (b, c.confirmations(height), c.is_final(height))
                })
            })
        });
        Ok(Some(match block {
            Some((b, confirmations, is_final)) => {
                let proof = b.proof(&record.id());
                let path: Vec<serde_json::Value> = proof
                    .map(|p| {
                        p.path
                            .iter()
                            .map(|(side, h)| serde_json::json!({"side": if *side == cairn_chain::Side::Left { "left" } else { "right" }, "hash": h.to_hex()}))
                            .collect()
                    })
                    .unwrap_or_default();
                serde_json::json!({
                    "status": "recorded",
                    "record": rec,
                    "merkle_path": path,
                    "block": {
                        "height": b.header.height,
                        "hash": b.hash().to_hex(),
                        "header_hex": cairn_chain::to_hex(&b.header.encode()),
                        "merkle_root": b.header.merkle_root.to_hex(),
                        "timestamp": b.header.timestamp,
                        "miner": cairn_chain::to_hex(&b.header.miner),
                        "signature": cairn_chain::to_hex(&b.signature),
                    },
                    "depth": confirmations,
                    "confirmations": confirmations,
                    "final": is_final,
                    "finality_depth": self.params.finality_depth,
                    "network": self.params.network,
                    "genesis": self.with_chain(|c| c.genesis_hash().to_hex()),
                })
            }
            None => {
                serde_json::json!({"status": "pending", "record": rec, "merkle_path": [], "block": null, "depth": 0, "confirmations": 0, "final": false, "chain_status": status})
            }
        }))
    }
}
