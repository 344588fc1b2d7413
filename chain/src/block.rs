//! Block headers and blocks.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::encoding::{Reader, Writer};
use crate::merkle::{MerkleProof, merkle_root};
use crate::record::Record;
use crate::{ChainError, Hash, Params};

/// The block format this crate reads and writes. Version 1 (unsigned blocks) is gone.
pub const BLOCK_VERSION: u32 = 2;
/// Domain of the miner's signature: `b"cairn-block-v2" ‖ block hash`.
const SIGNATURE_DOMAIN: &[u8] = b"cairn-block-v2";
/// Length of the miner's signed message.
pub(crate) const SIGNED_LEN: usize = SIGNATURE_DOMAIN.len() + 32;

/// Encoded header length in bytes.
pub const HEADER_LEN: usize = 124;
/// Offset of the nonce (the last field) in the encoded header.
pub(crate) const NONCE_OFFSET: usize = HEADER_LEN - 8;
/// Largest record accepted when decoding a block.
const MAX_RECORD: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockHeader {
    pub version: u32,
    pub height: u64,
    pub prev: Hash,
    pub merkle_root: Hash,
    pub timestamp: i64,
    /// The mining institution's public key.
    pub miner: [u8; 32],
    pub nonce: u64,
}

impl BlockHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&self.version.to_be_bytes());
        out[4..12].copy_from_slice(&self.height.to_be_bytes());
        out[12..44].copy_from_slice(&self.prev.0);
        out[44..76].copy_from_slice(&self.merkle_root.0);
        out[76..84].copy_from_slice(&self.timestamp.to_be_bytes());
        out[84..116].copy_from_slice(&self.miner);
        out[116..124].copy_from_slice(&self.nonce.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<BlockHeader, ChainError> {
        let mut r = Reader::new(bytes);
        let h = BlockHeader {
            version: r.u32()?,
            height: r.u64()?,
            prev: Hash(r.array()?),
            merkle_root: Hash(r.array()?),
            timestamp: r.i64()?,
            miner: r.array()?,
            nonce: r.u64()?,
        };
        r.done()?;
        Ok(h)
    }

    /// `SHA-256` of the encoded header.
    pub fn hash(&self) -> Hash {
        Hash::of(&self.encode())
    }
}

/// The genesis header of a network: derived from its name and parameters only.
pub fn genesis_header(params: &Params) -> BlockHeader {
    let mut w = Writer::default();
    w.bytes(b"cairn-genesis-v2").str(&params.network).u32(params.records_per_block).u32(params.difficulty_bits);
    BlockHeader {
        version: BLOCK_VERSION,
        height: 0,
        prev: Hash::of(&w.0),
        merkle_root: Hash::default(),
        timestamp: 0,
        miner: [0; 32],
        nonce: 0,
    }
}

/// The message a miner signs: the domain tag, then the block hash.
pub(crate) fn signed_message(hash: &Hash) -> [u8; SIGNED_LEN] {
    let mut m = [0u8; SIGNED_LEN];
    m[..SIGNATURE_DOMAIN.len()].copy_from_slice(SIGNATURE_DOMAIN);
    m[SIGNATURE_DOMAIN.len()..].copy_from_slice(&hash.0);
    m
}

/// A block: its header, the miner's signature of the header's hash, and its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub header: BlockHeader,
    /// Ed25519 signature by `header.miner` of `b"cairn-block-v2" ‖ hash`.
    pub signature: [u8; 64],
    pub records: Vec<Record>,
}

impl Block {
    /// A mined header and its records, signed by the miner. `key` must be the header's miner.
    pub fn seal(header: BlockHeader, records: Vec<Record>, key: &SigningKey) -> Block {
        let signature = key.sign(&signed_message(&header.hash())).to_bytes();
        Block { header, signature, records }
    }

    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Checks the miner's signature (one Ed25519 verification).
    pub fn verify_signature(&self) -> Result<(), ChainError> {
        let key = VerifyingKey::from_bytes(&self.header.miner).map_err(|_| ChainError::BadBlockSignature)?;
        key.verify_strict(&signed_message(&self.hash()), &Signature::from_bytes(&self.signature))
            .map_err(|_| ChainError::BadBlockSignature)
    }

    /// Record ids (Merkle leaves) in block order.
    pub fn record_ids(&self) -> Vec<Hash> {
        self.records.iter().map(Record::id).collect()
    }

    /// The Merkle root of the records (what the header must carry).
    pub fn computed_root(&self) -> Hash {
        merkle_root(&self.record_ids())
    }

    /// The inclusion proof of record `id`, if the block holds it.
    pub fn proof(&self, id: &Hash) -> Option<MerkleProof> {
        let ids = self.record_ids();
        let index = ids.iter().position(|r| r == id)?;
        MerkleProof::for_leaf(&ids, index)
    }

    /// Header, miner signature, record count, then each record with its length.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(&self.header.encode()).bytes(&self.signature).u32(self.records.len() as u32);
        for r in &self.records {
            let b = r.encode();
            w.u32(b.len() as u32).bytes(&b);
        }
        w.0
    }

    /// The stored form: the block's hash, then its encoding. Reading it back checks one
    /// against the other, so any changed byte is caught — even one that leaves a block
    /// with enough work (another nonce can satisfy the target).
    pub fn encode_stored(&self) -> Vec<u8> {
        let mut out = self.hash().0.to_vec();
        out.extend_from_slice(&self.encode());
        out
    }

    pub fn decode_stored(bytes: &[u8]) -> Result<Block, ChainError> {
        if bytes.len() < 32 {
            return Err(ChainError::Malformed("truncated".into()));
        }
        let block = Block::decode(&bytes[32..])?;
        if block.hash().0[..] != bytes[..32] {
            return Err(ChainError::Malformed("the stored hash does not match the block".into()));
        }
        Ok(block)
    }

    pub fn decode(bytes: &[u8]) -> Result<Block, ChainError> {
        let mut r = Reader::new(bytes);
        let header = BlockHeader::decode(r.take(HEADER_LEN)?)?;
        if header.version != BLOCK_VERSION {
            return Err(ChainError::WrongVersion(header.version));
        }
        let signature = r.array()?;
        let n = r.u32()? as usize;
        if n > 1024 {
            return Err(ChainError::Malformed(format!("{n} records in one block")));
        }
        let mut records = Vec::with_capacity(n);
        for _ in 0..n {
            let len = r.u32()? as usize;
            if len > MAX_RECORD {
                return Err(ChainError::Malformed(format!("a record of {len} bytes")));
            }
            records.push(Record::decode(r.take(len)?)?);
        }
        r.done()?;
        Ok(Block { header, signature, records })
    }
}
