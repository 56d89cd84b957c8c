//! Status list allocation (draft-ietf-oauth-status-list §12.5 "Unlinkability"
//! / §13 privacy considerations, I-83): a token's index is drawn uniformly
//! at random among the free indices of the open list, so neighbouring
//! indices say nothing about issuance order. Pure functions over the
//! allocation bitmap the store keeps; no I/O.

/// Whether index `idx` is taken in `bitmap` (bit `idx % 8` of byte `idx / 8`,
/// least significant bit first as in the status list itself).
pub fn is_allocated(bitmap: &[u8], idx: u32) -> bool {
    bitmap
        .get((idx / 8) as usize)
        .is_some_and(|b| b >> (idx % 8) & 1 == 1)
}

/// Marks `idx` taken; false when it is outside the bitmap.
pub fn allocate(bitmap: &mut [u8], idx: u32) -> bool {
    match bitmap.get_mut((idx / 8) as usize) {
        Some(b) => {
            *b |= 1 << (idx % 8);
            true
        }
        None => false,
    }
}

/// The `k`-th free index (0-based) among the first `size` indices of
/// `bitmap`, or `None` when fewer than `k + 1` are free. With `k` uniform
/// in `0..free`, the result is uniform among the free indices. O(size / 8)
/// byte scans (popcounts), a few kilobytes for the default list.
pub fn nth_free(bitmap: &[u8], size: u32, k: u64) -> Option<u32> {
    let mut remaining = k;
    for (byte_index, byte) in bitmap.iter().enumerate() {
        let base = u32::try_from(byte_index).ok()?.checked_mul(8)?;
        if base >= size {
            return None;
        }
        let valid_bits = (size - base).min(8);
        let valid_mask: u8 = if valid_bits == 8 {
            0xff
        } else {
            (1u8 << valid_bits) - 1
        };
        let free = !byte & valid_mask;
        let count = u64::from(free.count_ones());
        if remaining < count {
            let mut f = free;
            for _ in 0..remaining {
                f &= f - 1; // clear the lowest free bit
            }
            return Some(base + f.trailing_zeros());
        }
        remaining -= count;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every free index is reachable and taken ones never are (I-83).
    #[test]
    fn i83_nth_free_enumerates_exactly_the_free_indices() {
        let size = 20u32;
        let mut bitmap = vec![0u8; 3];
        for i in [0, 3, 9, 15, 19] {
            assert!(allocate(&mut bitmap, i));
        }
        let free: Vec<u32> = (0..).map_while(|k| nth_free(&bitmap, size, k)).collect();
        let want: Vec<u32> = (0..size).filter(|i| !is_allocated(&bitmap, *i)).collect();
        assert_eq!(free, want);
        assert_eq!(free.len(), 15);
        assert!(!allocate(&mut bitmap, 24));
        // Bits beyond `size` in the last byte are never handed out.
        assert_eq!(nth_free(&bitmap, size, 15), None);
    }

    /// Uniform over the free indices: each of 16 free indices is drawn
    /// about equally often over 16 000 draws (a chi-square test would be
    /// stricter; the bound is loose on purpose).
    #[test]
    fn i83_random_allocation_does_not_follow_issuance_order() {
        use rand::Rng;
        let mut counts = [0u32; 16];
        let bitmap = [0u8; 2];
        let mut rng = rand::thread_rng();
        for _ in 0..16_000 {
            let k = rng.gen::<u64>() % 16;
            counts[nth_free(&bitmap, 16, k).unwrap() as usize] += 1;
        }
        assert!(counts.iter().all(|c| (700..1300).contains(c)), "{counts:?}");
    }
}
