//! Internet checksum (RFC 1071), incremental update (RFC 1624), pseudo-headers, and CRC32c.
//!
//! Sums are accumulated unfolded in a `u32` ([`sum`], [`pseudo_v4`], [`pseudo_v6`]) and then
//! folded and complemented once ([`finish`]). Rewrites of a few header bytes use the
//! incremental forms ([`update16`], [`update32`], [`update_bytes`]), which never touch the
//! payload; equation 3 of RFC 1624 is used so that a checksum never becomes `-0` by accident.

/// Adds `data` (as big-endian 16-bit words, an odd trailing byte padded with zero) to `acc`.
#[inline]
pub fn sum_into(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = add(acc, u16::from_be_bytes([c[0], c[1]]) as u32);
    }
    if let [last] = chunks.remainder() {
        acc = add(acc, (*last as u32) << 8);
    }
    acc
}

/// Unfolded one's-complement sum of `data`.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    sum_into(0, data)
}

#[inline]
fn add(acc: u32, v: u32) -> u32 {
    // Fold eagerly enough that the accumulator can never overflow.
    let s = acc + v;
    (s & 0xffff) + (s >> 16)
}

/// Folds an unfolded sum to 16 bits (without complementing).
#[inline]
pub fn fold(s: u32) -> u16 {
    // Two rounds, without a loop or a branch, fold any 32-bit sum: the first leaves at most
    // 0xffff + 0xffff = 0x1fffe, and when that carries, its low half is at most 0xfffe.
    let s = (s & 0xffff) + (s >> 16);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// The checksum field value for an unfolded sum: the folded sum, complemented.
#[inline]
pub fn finish(s: u32) -> u16 {
    !fold(s)
}

/// The internet checksum of `data` (as stored in a header whose checksum field was zero).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data))
}

/// Unfolded sum of the IPv4 pseudo-header for an upper-layer packet of `len` bytes.
#[inline]
pub fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u32) -> u32 {
    let mut s = sum(&src);
    s = sum_into(s, &dst);
    s = add(s, proto as u32);
    add(add(s, len >> 16), len & 0xffff)
}

/// Unfolded sum of the IPv6 pseudo-header (RFC 8200 section 8.1).
#[inline]
pub fn pseudo_v6(src: &[u8; 16], dst: &[u8; 16], proto: u8, len: u32) -> u32 {
    let mut s = sum(src);
    s = sum_into(s, dst);
    s = add(s, proto as u32);
    add(add(s, len >> 16), len & 0xffff)
}

/// Incrementally updates checksum field value `csum` for a 16-bit word changing `old -> new`
/// (RFC 1624 equation 3: `HC' = ~(~HC + ~m + m')`).
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    let s = (!csum as u32) + (!old as u32) + new as u32;
    !fold(s)
}

/// Incrementally updates `csum` for a 32-bit value (two aligned words) changing `old -> new`.
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let c = update16(csum, (old >> 16) as u16, (new >> 16) as u16);
    update16(c, old as u16, new as u16)
}

/// Incrementally updates `csum` for a byte string changing `old -> new`.
///
/// Both slices must have the same length and start at an even offset from the start of the
/// checksummed data (an odd length is padded with zero, which is correct when the range ends
/// at the end of a 16-bit word that is otherwise unchanged or is the last byte of the data).
#[inline]
pub fn update_bytes(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    let mut s = !csum as u32;
    // Adding the complement of each old word is subtracting it.
    let mut o = old.chunks(2);
    let mut n = new.chunks(2);
    for (a, b) in (&mut o).zip(&mut n) {
        let ow = if a.len() == 2 {
            u16::from_be_bytes([a[0], a[1]])
        } else {
            (a[0] as u16) << 8
        };
        let nw = if b.len() == 2 {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            (b[0] as u16) << 8
        };
        s = add(s, !ow as u32);
        s = add(s, nw as u32);
    }
    !fold(s)
}

const fn crc32c_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC32C: [u32; 256] = crc32c_table();

/// CRC32c (Castagnoli), as used by SCTP, of the concatenation of `parts`.
pub fn crc32c_parts(parts: &[&[u8]]) -> u32 {
    let mut c = !0u32;
    for p in parts {
        for &b in *p {
            c = CRC32C[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
        }
    }
    !c
}

/// CRC32c (Castagnoli) of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_parts(&[data])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // The example of RFC 1071 section 3: sum 0xddf2 over these bytes.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d)), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c_parts(&[b"1234", b"56789"]), 0xe306_9283);
    }

    #[test]
    fn odd_length_pads() {
        assert_eq!(sum(&[0xab]), 0xab00);
    }

    /// One's-complement folding as defined: add the carries back until there are none.
    fn fold_by_definition(mut s: u32) -> u16 {
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn two_rounds_fold_the_extremes() {
        for s in [
            0,
            0xffff,
            0x1_0000,
            0x1_fffe,
            0x1_ffff,
            0xfffe_ffff,
            0xffff_0000,
            u32::MAX,
        ] {
            assert_eq!(fold(s), fold_by_definition(s), "{s:#x}");
        }
    }

    proptest! {
        #[test]
        fn two_rounds_fold_any_sum(s in any::<u32>()) {
            prop_assert_eq!(fold(s), fold_by_definition(s));
        }

        #[test]
        fn incremental_matches_full(mut data in proptest::collection::vec(any::<u8>(), 2..64),
                                    word in any::<prop::sample::Index>(), new in any::<u16>()) {
            let words = data.len() / 2;
            let w = word.index(words) * 2;
            let before = checksum(&data);
            let old = u16::from_be_bytes([data[w], data[w + 1]]);
            data[w..w + 2].copy_from_slice(&new.to_be_bytes());
            let full = checksum(&data);
            let inc = update16(before, old, new);
            // Both representations of zero are equivalent in one's complement.
            prop_assert!(inc == full || (inc ^ full == 0xffff && (inc == 0 || full == 0)), "{inc:#x} {full:#x}");
            let mut copy = data.clone();
            copy[w..w + 2].copy_from_slice(&old.to_be_bytes());
            let inc2 = update_bytes(before, &copy[w..w + 2], &data[w..w + 2]);
            prop_assert_eq!(inc2, inc);
        }
    }
}
