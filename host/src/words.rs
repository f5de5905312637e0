//! Byte classes tested eight bytes at a time ("SWAR": SIMD within a register).
//!
//! The hot checks on every request ask whether a run of bytes holds *any* byte of a small class: a control
//! byte in a response field value, a byte the access log must escape. One table lookup per byte costs
//! three or four instructions a byte; these tests cost about two instructions a byte on whole words, and
//! the rare word that holds a candidate is then looked at byte by byte by the caller's exact rule.
//!
//! Each test is exact for "any byte in the word": borrows between bytes can only happen after a byte
//! that already matched (the classic bit tricks, e.g. Hacker's Delight §6.1).

/// `0x01` in every byte.
const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
/// `0x80` in every byte.
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Whether any byte of `word` is below `n` (`n` at most 0x80).
#[inline]
pub fn has_below(word: u64, n: u8) -> bool {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS != 0
}

/// Whether any byte of `word` is below `low` or above `high` (`low` at most 0x80, `high` below 0x80): a
/// byte at or above 0x80 is caught by its own high bit, the others by a borrow or a carry into it.
#[inline]
pub fn has_outside(word: u64, low: u8, high: u8) -> bool {
    (word.wrapping_sub(ONES * u64::from(low))
        | word.wrapping_add(ONES * u64::from(127 - high))
        | word)
        & HIGHS
        != 0
}

/// Whether any byte of `word` equals `byte`.
#[inline]
pub fn has_byte(word: u64, byte: u8) -> bool {
    has_below(word ^ (ONES * u64::from(byte)), 1)
}

/// The bytes of `bytes` as whole words, and the bytes after the last whole word.
#[inline]
pub fn words(bytes: &[u8]) -> (impl Iterator<Item = u64> + '_, &[u8]) {
    let chunks = bytes.chunks_exact(8);
    let rest = chunks.remainder();
    let words = chunks.map(|chunk| {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        u64::from_ne_bytes(word)
    });
    (words, rest)
}

/// The eight bytes of `bytes` from `at`, as a word.
#[inline(always)]
pub fn load(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_ne_bytes(word)
}

/// Writes `word` as the eight bytes of `bytes` from `at`.
#[inline(always)]
pub fn store(bytes: &mut [u8], at: usize, word: u64) {
    bytes[at..at + 8].copy_from_slice(&word.to_ne_bytes());
}

/// The four bytes of `bytes` from `at`, as a half word (for values shorter than a word).
#[inline(always)]
pub fn load4(bytes: &[u8], at: usize) -> u32 {
    let mut half = [0u8; 4];
    half.copy_from_slice(&bytes[at..at + 4]);
    u32::from_ne_bytes(half)
}

/// Writes `half` as the four bytes of `bytes` from `at`.
#[inline(always)]
pub fn store4(bytes: &mut [u8], at: usize, half: u32) {
    bytes[at..at + 4].copy_from_slice(&half.to_ne_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every test against its byte-by-byte meaning, for each byte value at each position of a word
    /// whose other bytes are each of a few fillers.
    #[test]
    fn word_tests_agree_with_byte_tests() {
        for filler in [0x00u8, 0x20, 0x41, 0x7f, 0x80, 0xff] {
            for byte in 0..=255u8 {
                for at in 0..8 {
                    let mut bytes = [filler; 8];
                    bytes[at] = byte;
                    let word = u64::from_ne_bytes(bytes);
                    for n in [0x01, 0x20, 0x22, 0x7f, 0x80] {
                        assert_eq!(has_below(word, n), bytes.iter().any(|&b| b < n));
                    }
                    for (low, high) in [(0x20, 0x7e), (0x01, 0x7f), (0x30, 0x39)] {
                        assert_eq!(
                            has_outside(word, low, high),
                            bytes.iter().any(|&b| b < low || b > high)
                        );
                    }
                    for wanted in [0x00, b'"', b'\\', 0x7f, 0xff] {
                        assert_eq!(has_byte(word, wanted), bytes.contains(&wanted));
                    }
                }
            }
        }
    }

    #[test]
    fn words_cover_every_byte_once() {
        let bytes: Vec<u8> = (0..19).collect();
        let (words, rest) = words(&bytes);
        let mut seen: Vec<u8> = words.flat_map(u64::to_ne_bytes).collect();
        seen.extend_from_slice(rest);
        assert_eq!(seen, bytes);
    }
}
