//! The chain export file: a magic line, the network's parameters, then each main-chain
//! block's canonical bytes (length-prefixed). Importing verifies everything before storing.

use std::path::Path;

use anyhow::Context as _;
use cairn_chain::{AddOutcome, Block};

use super::{AcceptError, Ledger};

const EXPORT_MAGIC: &[u8] = b"CAIRN-CHAIN-1\n";

impl Ledger {
    /// Writes the main chain to `path`.
    pub fn export(&self, path: &Path) -> anyhow::Result<u64> {
        let blocks = self.main_blocks();
        let mut out = Vec::new();
        out.extend_from_slice(EXPORT_MAGIC);
        let net = self.params.network.as_bytes();
        out.extend_from_slice(&(net.len() as u32).to_be_bytes());
        out.extend_from_slice(net);
        out.extend_from_slice(&self.params.records_per_block.to_be_bytes());
        out.extend_from_slice(&self.params.difficulty_bits.to_be_bytes());
        out.extend_from_slice(&(blocks.len() as u64).to_be_bytes());
        for b in &blocks {
            let bytes = b.encode_stored();
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(&bytes);
        }
        let tmp = path.with_extension("part");
        std::fs::write(&tmp, &out).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path)?;
        Ok(blocks.len() as u64)
    }

    /// Reads an export, verifies it entirely by every rule (membership, miner and record
    /// signatures, work, links, times against the clock `now`, Merkle roots) and adds its
    /// blocks; fork choice and finality then decide the main chain. Nothing is stored unless
    /// all of it verifies.
    pub fn import(&self, path: &Path, now: i64, progress: &dyn Fn(u64)) -> anyhow::Result<(u64, u64)> {
        let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let bad = |m: &str| anyhow::anyhow!("{} is not a Cairn chain export: {m}", path.display());
        let rest = data.strip_prefix(EXPORT_MAGIC).ok_or_else(|| bad("wrong header"))?;
        let mut pos = 0usize;
        let mut take = |n: usize| -> anyhow::Result<&[u8]> {
            let s = rest.get(pos..pos + n).ok_or_else(|| bad("truncated"))?;
            pos += n;
            Ok(s)
        };
        let u32_of = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap_or([0; 4]));
        let net_len = u32_of(take(4)?) as usize;
        if net_len > 1000 {
            return Err(bad("network name too long"));
        }
        let network = String::from_utf8(take(net_len)?.to_vec()).map_err(|_| bad("network name"))?;
        let rpb = u32_of(take(4)?);
        let bits = u32_of(take(4)?);
        if (network.as_str(), rpb, bits)
            != (self.params.network.as_str(), self.params.records_per_block, self.params.difficulty_bits)
        {
            anyhow::bail!(
                "{} holds the chain of network '{network}' ({rpb} records a block, {bits} bits); this instance is on '{}' ({}, {})",
                path.display(),
                self.params.network,
                self.params.records_per_block,
                self.params.difficulty_bits
            );
        }
        let count = u64::from_be_bytes(take(8)?.try_into().unwrap_or([0; 8]));
        let mut blocks = Vec::new();
        for _ in 0..count {
            let len = u32_of(take(4)?) as usize;
            blocks.push(Block::decode_stored(take(len)?).map_err(|e| bad(&e.to_string()))?);
        }
        if pos != rest.len() {
            return Err(bad("trailing bytes"));
        }
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        cairn_chain::verify_chain_with_progress(&self.params, &self.members(), &blocks, now, true, threads, progress)
            .map_err(|(h, e)| anyhow::anyhow!("block {h} is invalid: {e}; nothing was imported"))?;
        let mut conn = self.pool.get()?;
        let mut added = 0;
        for b in blocks {
            match self.accept(&mut conn, b, now) {
                Ok(AddOutcome::Known) => {}
                Ok(_) => added += 1,
                Err(AcceptError::Invalid(e)) => anyhow::bail!("a block does not fit this chain: {e}"),
                Err(AcceptError::Store(e)) => return Err(e),
            }
        }
        Ok((count, added))
    }
}
