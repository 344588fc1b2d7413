//! Secret tokens: random ones to send, and the hash that is stored in their place. A leaf
//! module, so the use cases, the store and the web layer all take them from here.

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

/// Compares a submitted token with the expected one in time that depends only on their
/// length, so the comparison reveals nothing about how much of a guess was right. An empty
/// expected token matches nothing.
pub fn same(expected: &str, submitted: &str) -> bool {
    if expected.is_empty() || expected.len() != submitted.len() {
        return false;
    }
    expected.bytes().zip(submitted.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), a);
    }

    #[test]
    fn only_the_same_nonempty_token_is_the_same() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", ""));
    }
}
