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

/// A record as the proof and the block page show it: every field, bytes in hex.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordDoc {
    pub id: String,
    pub kind: &'static str,
    pub assertion_url: String,
    pub badge_class_url: String,
    pub issuer_id: String,
    pub recipient_hash: String,
    pub evidence_hash: String,
    pub issued_at: i64,
    /// The recording institution's public key.
    pub institution: String,
    pub signature: String,
    /// The canonical bytes the signature and the record id cover.
    pub bytes_hex: String,
}

impl From<&Record> for RecordDoc {
    fn from(r: &Record) -> Self {
        RecordDoc {
            id: r.id().to_hex(),
            kind: StoredKind(r.fields.kind).as_str(),
            assertion_url: r.fields.assertion_url.clone(),
            badge_class_url: r.fields.badge_class_url.clone(),
            issuer_id: r.fields.issuer_id.clone(),
            recipient_hash: r.fields.recipient_hash.clone(),
            evidence_hash: r.fields.evidence_hash.to_hex(),
            issued_at: r.fields.issued_at,
            institution: cairn_chain::to_hex(&r.institution),
            signature: cairn_chain::to_hex(&r.signature),
            bytes_hex: cairn_chain::to_hex(&r.encode()),
        }
    }
}

/// One step of a Merkle path: the sibling hash and the side it is on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PathStep {
    pub side: &'static str,
    pub hash: String,
}

/// The block holding a recorded award: enough to check its header, work and signature.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BlockDoc {
    pub height: u64,
    pub hash: String,
    pub header_hex: String,
    pub merkle_root: String,
    pub timestamp: i64,
    pub miner: String,
    pub signature: String,
}

/// The proof document of an award (`/assertions/{id}/proof`, docs/peers.md).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Proof {
    Recorded {
        record: RecordDoc,
        merkle_path: Vec<PathStep>,
        block: BlockDoc,
        /// Equal to `confirmations`.
        depth: u64,
        confirmations: u64,
        #[serde(rename = "final")]
        is_final: bool,
        finality_depth: u64,
        network: String,
        genesis: String,
    },
    Pending {
        record: RecordDoc,
        /// Empty until recorded.
        merkle_path: Vec<PathStep>,
        /// Null until recorded.
        block: Option<BlockDoc>,
        depth: u64,
        confirmations: u64,
        #[serde(rename = "final")]
        is_final: bool,
        chain_status: ChainStatus,
    },
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

    /// The proof document of an award, `None` when it has no readable record.
    pub fn proof(&self, conn: &mut SqliteConnection, award_id: i64) -> StoreResult<Option<Proof>> {
        let Some((bytes, block_hash)) = store::award_record(conn, award_id)? else { return Ok(None) };
        let Ok(record) = Record::decode(&bytes) else { return Ok(None) };
        let doc = RecordDoc::from(&record);
        let status = self.status(conn, award_id)?;
        let Some(hash) = block_hash.and_then(|h| Hash::from_hex(&h)) else {
            return Ok(Some(pending(doc, status)));
        };
        Ok(Some(self.with_chain(|c| {
            let Some(b) = c.block(&hash).filter(|_| c.is_main(&hash)) else { return pending(doc, status) };
            let height = b.header.height;
            let merkle_path = b
                .proof(&record.id())
                .map(|p| {
                    p.path
                        .iter()
                        .map(|(side, h)| PathStep {
                            side: if *side == cairn_chain::Side::Left { "left" } else { "right" },
                            hash: h.to_hex(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Proof::Recorded {
                record: doc,
                merkle_path,
                block: BlockDoc {
                    height,
                    hash: b.hash().to_hex(),
                    header_hex: cairn_chain::to_hex(&b.header.encode()),
                    merkle_root: b.header.merkle_root.to_hex(),
                    timestamp: b.header.timestamp,
                    miner: cairn_chain::to_hex(&b.header.miner),
                    signature: cairn_chain::to_hex(&b.signature),
                },
                depth: c.confirmations(height),
                confirmations: c.confirmations(height),
                is_final: c.is_final(height),
                finality_depth: self.params.finality_depth,
                network: self.params.network.clone(),
                genesis: c.genesis_hash().to_hex(),
            }
        })))
    }
}

fn pending(record: RecordDoc, chain_status: ChainStatus) -> Proof {
    Proof::Pending {
        record,
        merkle_path: Vec::new(),
        block: None,
        depth: 0,
        confirmations: 0,
        is_final: false,
        chain_status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_proof_has_no_block_path_or_confirmations_yet() {
        let key = cairn_chain::SigningKey::from_bytes(&[7; 32]);
        let fields = super::super::fields_for(
            cairn_chain::RecordKind::Award,
            "https://cairn.example",
            "https://cairn.example/assertions/a1",
            "https://cairn.example/badges/el30-data",
            "sha256$00",
            super::super::evidence_hash(Some("https://blog.example/post"), "5a17"),
            1_700_000_000,
        );
        let record = Record::sign(fields, &key);
        let json = serde_json::to_value(pending(RecordDoc::from(&record), ChainStatus::Pending)).unwrap();
        assert_eq!(json["status"], "pending");
        assert_eq!((json["block"].is_null(), json["merkle_path"].as_array().map(Vec::len)), (true, Some(0)));
        assert_eq!((json["confirmations"].as_u64(), json["final"].as_bool()), (Some(0), Some(false)));
        assert_eq!(json["chain_status"]["status"], "pending");
        assert_eq!(json["record"]["kind"], "award");
        assert_eq!(json["record"]["id"], record.id().to_hex());
        assert_eq!(json["record"]["bytes_hex"], cairn_chain::to_hex(&record.encode()));
    }
}
