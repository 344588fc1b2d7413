//! `cairn-chain`: the recognition chain shared by Cairn institutions.
//!
//! This crate is pure data and computation: no clock, no I/O, no web, database
//! or async dependency. The application passes time, records and cancel flags in.
//! Today it defines the hash type every later part builds on.

use std::fmt;

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Hashes `bytes` with SHA-256.
    pub fn of(bytes: &[u8]) -> Self {
        Hash(Sha256::digest(bytes).into())
    }

    /// Lower-case hexadecimal form, 64 characters.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(DIGITS[(b >> 4) as usize] as char);
            s.push(DIGITS[(b & 0xf) as usize] as char);
        }
        s
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
    }
}
