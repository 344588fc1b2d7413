//! Tokens sent by email or shown once, and the hash that is all the store keeps of them. A
//! leaf: the store, the senders and the use cases all make and check them.

use rand::RngCore;

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 (hex) of a token sent by email; only the hash is stored.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}
