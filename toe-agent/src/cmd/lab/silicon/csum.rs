//! The Internet checksum (RFC 1071): the one piece of arithmetic behind
//! every checksum the emulated NIC fills in or verifies.
//!
//! Sums here are ones'-complement sums folded to 16 bits and *not*
//! complemented, as the kernel's `csum_fold()` input is; a checksum field
//! holds the complement of such a sum, and a packet verifies when the sum
//! over its pseudo-header and its whole L4 segment (checksum included) is
//! 0xffff.

/// Ones'-complement sum of `data` read as big-endian 16-bit words, with an
/// odd last byte as the high half of a word (RFC 1071 section 4.1). `data`
/// is taken to start at an even offset of whatever it is part of; use [`at`]
/// for a part that starts at an odd one.
pub(super) fn sum(data: &[u8]) -> u16 {
    // 2^16 = 1 modulo 0xffff, so 32-bit big-endian words add up to the same
    // folded result as 16-bit ones: the 64-bit accumulator takes the
    // carries and cannot overflow for any frame.
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let mut tail = words.remainder().chunks_exact(2);
    for w in &mut tail {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = tail.remainder() {
        acc += u64::from(*last) << 8;
    }
    fold(acc)
}

/// Ones'-complement addition of two sums.
pub(super) fn add(a: u16, b: u16) -> u16 {
    fold(u64::from(a) + u64::from(b))
}

/// A part's sum as seen from the start of the whole: byte-swapped when the
/// part starts at an odd offset (RFC 1071 section 2(B); the kernel's
/// `csum_block_add()` in include/net/checksum.h does the same rotation).
pub(super) fn at(part: u16, offset: usize) -> u16 {
    if offset % 2 == 1 {
        part.swap_bytes()
    } else {
        part
    }
}

/// The value a checksum field gets: the complement of the sum. A result of
/// 0 is written as 0xffff (its ones'-complement equal), as the kernel's
/// `skb_checksum_help()` (net/core/dev.c) does, since 0 means "no checksum"
/// to UDP.
pub(super) fn finish(sum: u16) -> u16 {
    match !sum {
        0 => 0xffff,
        c => c,
    }
}

/// Sum of the pseudo-header TCP and UDP checksums cover: the addresses of
/// either IP version (4 or 16 bytes each), the protocol, and the L4 length
/// (RFC 793 section 3.1 for IPv4, RFC 8200 section 8.1 for IPv6, where the
/// length is 32 bits: for the sizes a tap carries, the same 16-bit word).
pub(super) fn pseudo(src: &[u8], dst: &[u8], proto: u8, l4_len: usize) -> u16 {
    add(
        add(sum(src), sum(dst)),
        add(u16::from(proto), len16(l4_len)),
    )
}

/// A length as its ones'-complement contribution (lengths past 64 KiB add
/// their high word, as the 32-bit IPv6 field would).
fn len16(len: usize) -> u16 {
    fold(len as u64)
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2.
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn parts_combine_at_odd_offsets() {
        let data: Vec<u8> = (0..=200u8).map(|i| i.wrapping_mul(37)).collect();
        for split in [0, 1, 2, 3, 77, 100, 201] {
            let (a, b) = data.split_at(split);
            assert_eq!(add(sum(a), at(sum(b), split)), sum(&data), "split {split}");
        }
    }
}
