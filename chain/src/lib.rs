//! `cairn-chain`: the recognition chain shared by Cairn institutions.
//!
//! Pure data and computation: no clock, no I/O, no web, database or async dependency. The
//! application passes time, records, keys and cancel flags in, and stores blocks itself.
//!
//! # Canonical encoding
//!
//! Everything that is hashed or signed is encoded the same way on every machine:
//! integers big-endian and fixed width, strings as a `u32` byte length then UTF-8 bytes,
//! hashes and keys as raw bytes, in the field order given below. JSON never takes part.
//!
//! * **Record** (`Record::encode`): `b"cairn-record-v1"`, kind `u8` (1 award, 2 revocation),
//!   assertion URL, BadgeClass URL, issuer id (strings), recipient hash (string,
//!   `sha256$…`, never an address), evidence hash (32 bytes, SHA-256 of the evidence URL),
//!   issued time (`i64`, Unix seconds), institution key (32 bytes, Ed25519 public key);
//!   then the 64-byte Ed25519 signature of all the preceding bytes.
//! * **Block header** (`BlockHeader::encode`, 124 bytes): version `u32`, height `u64`,
//!   previous block hash (32), Merkle root (32), timestamp `i64`, miner key (32), nonce `u64`.
//!   A block's hash is `SHA-256(header bytes)`; proof of work means that hash has at least
//!   `difficulty_bits` leading zero bits (16 bits = hex prefix `"0000"`).
//! * **Merkle tree**: leaf = `SHA-256(0x00 ‖ record bytes)` (the record id); node =
//!   `SHA-256(0x01 ‖ left ‖ right)`; a level with an odd count carries its last node up
//!   unchanged (nothing is duplicated). A proof lists the sibling hashes from leaf to root,
//!   each marked left or right.
//! * **Stored block** (`Block::encode_stored`): the block hash (32 bytes), then the header,
//!   a `u32` record count and each record as a `u32` length and its bytes. Reading it back
//!   checks the hash, so any changed byte is caught.
//! * **Genesis**: height 0, previous hash = `SHA-256(b"cairn-genesis-v1" ‖ network name ‖
//!   records per block u32 ‖ difficulty bits u32)`, zero Merkle root, time, miner and nonce.
//!   Every instance of one network derives the same genesis; another network's blocks do
//!   not link to it.

mod block;
mod chain;
mod encoding;
mod merkle;
mod mine;
mod record;

pub use block::{Block, BlockHeader, HEADER_LEN, genesis_header};
pub use chain::{AddOutcome, BlockStore, Chain, Params, Reorg, verify_chain, verify_chain_with_progress};
pub use merkle::{MerkleProof, Side, leaf, merkle_root};
pub use mine::{mine, mine_range};
pub use record::{Record, RecordFields, RecordKind};

pub use ed25519_dalek::{SigningKey, VerifyingKey};

use std::fmt;

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Hashes `bytes` with SHA-256.
    pub fn of(bytes: &[u8]) -> Self {
        Hash(Sha256::digest(bytes).into())
    }

    /// Lower-case hexadecimal form, 64 characters.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Parses 64 hexadecimal characters.
    pub fn from_hex(s: &str) -> Option<Hash> {
        let bytes = from_hex(s)?;
        Some(Hash(bytes.try_into().ok()?))
    }

    /// Number of leading zero bits: the proof-of-work measure ("0000" hex = 16 bits).
    pub fn leading_zero_bits(&self) -> u32 {
        let mut bits = 0;
        for b in self.0 {
            if b == 0 {
                bits += 8;
            } else {
                bits += b.leading_zeros();
                break;
            }
        }
        bits
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

/// Lower-case hex of any bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// Bytes from hex (either case); `None` if malformed.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Everything that can be wrong with a record, block or chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainError {
    /// Bytes that do not decode.
    Malformed(String),
    BadSignature,
    UntrustedSigner(String),
    WrongVersion(u32),
    WrongHeight {
        expected: u64,
        found: u64,
    },
    /// The previous hash is not the parent's (for height 1: another network's genesis).
    WrongPrevious {
        expected: Hash,
        found: Hash,
    },
    UnknownParent(Hash),
    BadMerkleRoot,
    InsufficientWork {
        needed: u32,
        found: u32,
    },
    WrongRecordCount {
        expected: u32,
        found: usize,
    },
    TimestampInFuture {
        timestamp: i64,
        limit: i64,
    },
    TimestampBeforeParent {
        timestamp: i64,
        parent: i64,
    },
    DuplicateRecord(Hash),
    /// A record already in this chain.
    RecordAlreadyInChain(Hash),
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::Malformed(m) => write!(f, "malformed data: {m}"),
            ChainError::BadSignature => f.write_str("a record signature does not verify"),
            ChainError::UntrustedSigner(k) => {
                write!(f, "a record is signed by an institution not in the trust list ({k})")
            }
            ChainError::WrongVersion(v) => write!(f, "unknown block version {v}"),
            ChainError::WrongHeight { expected, found } => write!(f, "wrong height {found}, expected {expected}"),
            ChainError::WrongPrevious { expected, found } => {
                write!(f, "previous hash {found} does not match {expected} (another chain or network)")
            }
            ChainError::UnknownParent(h) => write!(f, "the parent block {h} is unknown"),
            ChainError::BadMerkleRoot => f.write_str("the Merkle root does not match the records"),
            ChainError::InsufficientWork { needed, found } => {
                write!(f, "insufficient proof of work: {found} leading zero bits, {needed} needed")
            }
            ChainError::WrongRecordCount { expected, found } => write!(f, "{found} records, a block holds {expected}"),
            ChainError::TimestampInFuture { timestamp, limit } => {
                write!(f, "timestamp {timestamp} is too far in the future (limit {limit})")
            }
            ChainError::TimestampBeforeParent { timestamp, parent } => {
                write!(f, "timestamp {timestamp} is before its parent's {parent}")
            }
            ChainError::DuplicateRecord(h) => write!(f, "record {h} appears twice in the block"),
            ChainError::RecordAlreadyInChain(h) => write!(f, "record {h} is already recorded in this chain"),
        }
    }
}

impl std::error::Error for ChainError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input_matches_the_standard_vector() {
        assert_eq!(Hash::of(b"").to_hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn leading_zero_bits_counts_across_bytes() {
        let mut h = [0xffu8; 32];
        assert_eq!(Hash(h).leading_zero_bits(), 0);
        h[0] = 0;
        h[1] = 0x0f;
        assert_eq!(Hash(h).leading_zero_bits(), 12);
        h[1] = 0;
        assert_eq!(Hash(h).leading_zero_bits(), 16);
        assert!(Hash(h).to_hex().starts_with("0000"));
        assert_eq!(Hash::from_hex(&Hash(h).to_hex()), Some(Hash(h)));
        assert_eq!(Hash::from_hex("zz"), None);
    }
}
