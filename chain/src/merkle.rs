//! Merkle roots and inclusion proofs over a block's records.

use sha2::{Digest, Sha256};

use crate::Hash;

/// Leaf hash: `SHA-256(0x00 ‖ record bytes)`.
pub fn leaf(record_bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(record_bytes);
    Hash(h.finalize().into())
}

/// Node hash: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// The root over leaf hashes; an odd node is carried up unchanged. Empty: all zeros.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return Hash::default();
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = level.chunks(2).map(|p| if p.len() == 2 { node(&p[0], &p[1]) } else { p[0] }).collect();
    }
    level[0]
}

/// Which side the sibling is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

/// The path from a leaf to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleProof {
    pub leaf: Hash,
    pub path: Vec<(Side, Hash)>,
}

impl MerkleProof {
    /// The proof for leaf `index` among `leaves`.
    pub fn for_leaf(leaves: &[Hash], index: usize) -> Option<MerkleProof> {
        let leaf = *leaves.get(index)?;
        let mut path = Vec::new();
        let mut level = leaves.to_vec();
        let mut i = index;
        while level.len() > 1 {
            let sibling = i ^ 1;
            if sibling < level.len() {
                path.push((if sibling < i { Side::Left } else { Side::Right }, level[sibling]));
            }
            level = level.chunks(2).map(|p| if p.len() == 2 { node(&p[0], &p[1]) } else { p[0] }).collect();
            i /= 2;
        }
        Some(MerkleProof { leaf, path })
    }

    /// The root this proof leads to.
    pub fn root(&self) -> Hash {
        self.path.iter().fold(self.leaf, |acc, (side, h)| match side {
            Side::Left => node(h, &acc),
            Side::Right => node(&acc, h),
        })
    }

    /// True when the proof leads to `root` (take it from the block header).
    pub fn verify(&self, root: &Hash) -> bool {
        self.root() == *root
    }
}
