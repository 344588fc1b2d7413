//! Batched Ed25519 verification of block and record signatures.
//!
//! A chain has few signers (its members), so decompressed public keys are cached: decoding a
//! key costs about as much as a third of a verification.

use std::collections::HashMap;

use ed25519_dalek::{Signature, VerifyingKey};

use crate::ChainError;
use crate::block::{Block, SIGNED_LEN, signed_message};
use crate::record::Record;

/// Public keys already decoded, by their bytes.
#[derive(Default)]
pub(crate) struct KeyCache(HashMap<[u8; 32], VerifyingKey>);

impl KeyCache {
    fn get(&mut self, bytes: &[u8; 32], bad: ChainError) -> Result<VerifyingKey, ChainError> {
        if let Some(k) = self.0.get(bytes) {
            return Ok(*k);
        }
        let k = VerifyingKey::from_bytes(bytes).map_err(|_| bad)?;
        if self.0.len() < 1024 {
            self.0.insert(*bytes, k);
        }
        Ok(k)
    }
}

/// Verifies the miners' signatures of `blocks` in one batch.
pub(crate) fn verify_blocks(blocks: &[Block], keys: &mut KeyCache) -> Result<(), ChainError> {
    if blocks.is_empty() {
        return Ok(());
    }
    let messages: Vec<[u8; SIGNED_LEN]> = blocks.iter().map(|b| signed_message(&b.hash())).collect();
    let refs: Vec<&[u8]> = messages.iter().map(|m| &m[..]).collect();
    let sigs: Vec<Signature> = blocks.iter().map(|b| Signature::from_bytes(&b.signature)).collect();
    let vks = blocks
        .iter()
        .map(|b| keys.get(&b.header.miner, ChainError::BadBlockSignature))
        .collect::<Result<Vec<_>, _>>()?;
    ed25519_dalek::verify_batch(&refs, &sigs, &vks).map_err(|_| ChainError::BadBlockSignature)
}

/// Verifies many record signatures in one batch.
pub(crate) fn verify_records(records: &[&Record], keys: &mut KeyCache) -> Result<(), ChainError> {
    if records.is_empty() {
        return Ok(());
    }
    let messages: Vec<Vec<u8>> = records.iter().map(|r| r.signed_bytes()).collect();
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let sigs: Vec<Signature> = records.iter().map(|r| Signature::from_bytes(&r.signature)).collect();
    let vks =
        records.iter().map(|r| keys.get(&r.institution, ChainError::BadSignature)).collect::<Result<Vec<_>, _>>()?;
    ed25519_dalek::verify_batch(&refs, &sigs, &vks).map_err(|_| ChainError::BadSignature)
}
