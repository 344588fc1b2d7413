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
//!   `sha256$…`, never an address), evidence hash (32 bytes: the issuer's choice; Cairn puts SHA-256 of the
//!   evidence URL followed by the award's salt, so it too is unlinkable once the salt is gone),
//!   issued time (`i64`, Unix seconds), institution key (32 bytes, Ed25519 public key);
//!   then the 64-byte Ed25519 signature of all the preceding bytes.
//! * **Block header** (`BlockHeader::encode`, 124 bytes): version `u32` (2), height `u64`,
//!   previous block hash (32), Merkle root (32), timestamp `i64` (Unix seconds), miner key (32,
//!   the mining institution's Ed25519 public key), nonce `u64`. A block's hash is
//!   `SHA-256(header bytes)`; proof of work means that hash has at least `difficulty_bits`
//!   leading zero bits (16 bits = hex prefix `"0000"`).
//! * **Miner signature**: 64 bytes, the Ed25519 signature by the header's miner key of
//!   `b"cairn-block-v2" ‖ block hash` (46 bytes).
//! * **Merkle tree**: leaf = `SHA-256(0x00 ‖ record bytes)` (the record id); node =
//!   `SHA-256(0x01 ‖ left ‖ right)`; a level with an odd count carries its last node up
//!   unchanged (nothing is duplicated). A proof lists the sibling hashes from leaf to root,
//!   each marked left or right.
//! * **Block** (`Block::encode`): the header (124), the miner signature (64), a `u32` record
//!   count and each record as a `u32` length and its bytes.
//! * **Stored block** (`Block::encode_stored`): the block hash (32 bytes), then the block.
//!   Reading it back checks the hash, so any changed byte of the header is caught; a changed
//!   signature or record fails the signature or Merkle check.
//! * **Genesis**: version 2, height 0, previous hash = `SHA-256(b"cairn-genesis-v2" ‖ network
//!   name ‖ records per block u32 ‖ difficulty bits u32)`, zero Merkle root, time, miner and
//!   nonce. Every instance of one network derives the same genesis; another network's blocks,
//!   and chains of the earlier unsigned format (`cairn-genesis-v1`), do not link to it.
//!
//! # Rules
//!
//! A block is accepted ([`Chain::add`]) only when, checked in this order so that a stranger's
//! block costs a lookup and a hash, and a forged one a single signature check:
//!
//! 1. its version is 2 and its miner is a [`Members`] key;
//! 2. its hash has the network's proof of work;
//! 3. the miner's signature verifies;
//! 4. its parent is known and its height is the parent's plus one;
//! 5. it would not remove a final block: its branch meets the main chain at or above
//!    [`Chain::final_height`] (the tip height less `finality_depth`);
//! 6. its time is at most `max_future_secs` ahead of the validator's clock and later than
//!    the median time of the previous [`MEDIAN_SPAN`] blocks;
//! 7. it holds exactly `records_per_block` records, matching the Merkle root, none twice and
//!    none already in its branch;
//! 8. every record is signed by a member, its assertion, BadgeClass and issuer URLs lie under
//!    that member's base URL, and its signature verifies.
//!
//! Fork choice ([`better_tip`]) prefers the most cumulative work, then the lower tip hash.

mod block;
mod chain;
mod encoding;
mod merkle;
mod mine;
mod record;
mod sig;

pub use block::{BLOCK_VERSION, Block, BlockHeader, HEADER_LEN, genesis_header};
pub use chain::{
    AddOutcome, BlockStore, Chain, MEDIAN_SPAN, Members, Params, Reorg, better_tip, median_time, verify_chain,
    verify_chain_with_progress, verify_signatures,
};
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
    /// A record's signature does not verify.
    BadSignature,
    /// The block's miner signature does not verify.
    BadBlockSignature,
    /// The block's miner is not a member institution.
    UnknownMiner(String),
    /// A record is signed by an institution that is not a member.
    UntrustedSigner(String),
    /// A record's URL is not under its signer's base URL.
    RecordOutsideIssuer {
        url: String,
        base: String,
    },
    /// The block's branch leaves the main chain below the final height.
    WouldRemoveFinal {
        fork_height: u64,
        final_height: u64,
    },
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
    /// Not later than the median time of the previous blocks.
    TimestampNotAfterMedian {
        timestamp: i64,
        median: i64,
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
            ChainError::BadBlockSignature => f.write_str("the miner's signature of the block does not verify"),
            ChainError::UnknownMiner(k) => {
                write!(f, "the block is mined by {k}, which is not a member institution (not in the trust list)")
            }
            ChainError::UntrustedSigner(k) => {
                write!(f, "a record is signed by an institution not in the trust list ({k})")
            }
            ChainError::RecordOutsideIssuer { url, base } => {
                write!(f, "a record's URL {url} is not under its signer's base URL {base}")
            }
            ChainError::WouldRemoveFinal { fork_height, final_height } => write!(
                f,
                "the block's branch leaves the main chain at height {fork_height}, below the final height \
                 {final_height}: final blocks are never replaced"
            ),
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
            ChainError::TimestampNotAfterMedian { timestamp, median } => {
                write!(f, "timestamp {timestamp} is not later than the median {median} of the previous blocks")
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
