//! Proof-of-work mining on every core, cancellable at once.
//!
//! The nonce is the header's last field, so the SHA-256 state after the header's first
//! 64-byte block is computed once and cloned for every attempt: each attempt then costs
//! two compressions instead of the three a whole header needs.

use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::BlockHeader;
use crate::block::NONCE_OFFSET;

/// How many attempts pass between looks at the cancel flag.
const CHECK_EVERY: u64 = 1024;

fn leading_zero_bits(d: &[u8]) -> u32 {
    let mut bits = 0;
    for b in d {
        if *b == 0 {
            bits += 8;
        } else {
            return bits + b.leading_zeros();
        }
    }
    bits
}

/// Searches nonces `start, start + step, …` (wrapping) for a hash with `difficulty` leading
/// zero bits; stops when `stop` becomes true. Returns the nonce found.
pub fn mine_range(template: &BlockHeader, difficulty: u32, start: u64, step: u64, stop: &AtomicBool) -> Option<u64> {
    search(template, difficulty, start, step, &|| stop.load(Ordering::Relaxed))
}

fn search(
    template: &BlockHeader,
    difficulty: u32,
    start: u64,
    step: u64,
    should_stop: &dyn Fn() -> bool,
) -> Option<u64> {
    let bytes = template.encode();
    let mut midstate = Sha256::new();
    midstate.update(&bytes[..64]);
    let middle = &bytes[64..NONCE_OFFSET];
    let mut nonce = start;
    loop {
        for _ in 0..CHECK_EVERY {
            let mut h = midstate.clone();
            h.update(middle);
            h.update(nonce.to_be_bytes());
            if leading_zero_bits(&h.finalize()) >= difficulty {
                return Some(nonce);
            }
            nonce = nonce.wrapping_add(step);
        }
        if should_stop() {
            return None;
        }
    }
}

/// Mines `template` (its nonce is ignored) on `threads` threads. Returns the header with a
/// winning nonce, or `None` as soon as `cancel` is set (a competing block arrived).
pub fn mine(template: &BlockHeader, difficulty: u32, threads: usize, cancel: &AtomicBool) -> Option<BlockHeader> {
    let threads = threads.max(1) as u64;
    let done = AtomicBool::new(false);
    let found = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for i in 0..threads {
            let (done, found) = (&done, &found);
            s.spawn(move || {
                let stop = || done.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed);
                if let Some(n) = search(template, difficulty, i, threads, &stop) {
                    let mut f = found.lock().unwrap_or_else(|p| p.into_inner());
                    if f.is_none() {
                        *f = Some(n);
                    }
                    done.store(true, Ordering::Relaxed);
                }
            });
        }
    });
    let nonce = found.into_inner().unwrap_or_else(|p| p.into_inner())?;
    let mut h = *template;
    h.nonce = nonce;
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hash;

    #[test]
    fn mining_finds_a_valid_nonce_and_cancels_at_once() {
        let t = BlockHeader {
            version: crate::BLOCK_VERSION,
            height: 1,
            prev: Hash::of(b"p"),
            merkle_root: Hash::of(b"m"),
            timestamp: 5,
            miner: [7; 32],
            nonce: 0,
        };
        let never = AtomicBool::new(false);
        let h = mine(&t, 12, 2, &never).unwrap();
        assert!(h.hash().leading_zero_bits() >= 12);
        let cancelled = AtomicBool::new(true);
        let start = std::time::Instant::now();
        assert!(mine(&t, 64, 2, &cancelled).is_none());
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(mine_range(&t, 12, h.nonce, 1, &never), Some(h.nonce));
    }
}
