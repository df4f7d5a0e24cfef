//! Byte compares eight bytes at a time, for the short strings every event compares: names,
//! and (mostly) case-insensitive values (`match "system" "IFNET"` against `system=ifnet`).
//! Only `A`–`Z` fold, as in devd's `REG_ICASE` in the C locale; every other byte, ASCII or
//! not, compares exactly.

const ONES: u64 = 0x0101_0101_0101_0101;

/// `x` with each byte in `A`–`Z` lowercased. Per byte, without carries between bytes: the
/// low seven bits plus a bias set bit 7 when the byte is at least `A`, or above `Z`.
#[inline]
pub(crate) fn lower_word(x: u64) -> u64 {
    let low7 = x & (0x7f * ONES);
    let at_least_a = low7 + (0x80 - u64::from(b'A')) * ONES;
    let above_z = low7 + (0x80 - u64::from(b'Z') - 1) * ONES;
    let upper = at_least_a & !above_z & !x & (0x80 * ONES);
    x | (upper >> 2)
}

/// Eight bytes as a little-endian word.
#[inline]
pub(crate) fn word(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

/// Whether `a` equals `b` with `fold` applied to `b`'s words (and `fold_byte` to its bytes,
/// the same mapping): eight bytes per step, the tail as the last eight bytes (overlapping the
/// previous word); strings under eight bytes byte by byte, since most short compares fail at
/// the first byte.
#[inline(always)]
fn eq_folded(a: &[u8], b: &[u8], fold: impl Fn(u64) -> u64, fold_byte: impl Fn(u8) -> u8) -> bool {
    let n = a.len();
    if b.len() != n {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).all(|(&x, &y)| x == fold_byte(y));
    }
    let (mut x, mut y) = (a.chunks_exact(8), b.chunks_exact(8));
    for (p, q) in (&mut x).zip(&mut y) {
        if word(p) != fold(word(q)) {
            return false;
        }
    }
    x.remainder().is_empty() || word(&a[n - 8..]) == fold(word(&b[n - 8..]))
}

/// Whether `value` equals `lower` (already lowercase) ignoring ASCII case.
#[inline]
pub(crate) fn eq_lower(lower: &[u8], value: &[u8]) -> bool {
    eq_folded(lower, value, lower_word, |b| b.to_ascii_lowercase())
}

/// Byte equality, a word at a time: for the short names and keys compared per event, an
/// inline compare costs less than a call to `memcmp`.
#[inline]
pub(crate) fn eq_exact(a: &[u8], b: &[u8]) -> bool {
    eq_folded(a, b, |w| w, |b| b)
}

/// Whether `value` starts with `lower` (already lowercase) ignoring ASCII case.
#[inline]
pub(crate) fn starts_with_lower(lower: &[u8], value: &[u8]) -> bool {
    value.len() >= lower.len() && eq_lower(lower, &value[..lower.len()])
}

/// Write `value` lowercased into `out` (of the same length).
#[inline]
pub(crate) fn lower_into(value: &[u8], out: &mut [u8]) {
    let mut src = value.chunks_exact(8);
    let mut dst = out.chunks_exact_mut(8);
    for (s, d) in (&mut src).zip(&mut dst) {
        d.copy_from_slice(&lower_word(word(s)).to_le_bytes());
    }
    for (s, d) in src.remainder().iter().zip(dst.into_remainder()) {
        *d = s.to_ascii_lowercase();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_byte_folds_like_std() {
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b, b'Z', b'@', b'[', b, 0xc1, b'a', b'`']);
            let expected: Vec<u8> = w.to_le_bytes().iter().map(u8::to_ascii_lowercase).collect();
            assert_eq!(lower_word(w).to_le_bytes()[..], expected[..], "byte {b:#x}");
        }
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop::sample::select(vec![
                b'a', b'A', b'z', b'Z', b'@', b'[', b'`', b'{', 0xc1, 0xe1, 0,
            ]),
            0..24,
        )
    }

    proptest! {
        #[test]
        fn agrees_with_std(a in bytes(), b in bytes()) {
            let lower = a.to_ascii_lowercase();
            prop_assert_eq!(eq_lower(&lower, &b), lower.eq_ignore_ascii_case(&b));
            prop_assert_eq!(eq_lower(&lower, &a), true);
            prop_assert_eq!(
                starts_with_lower(&lower, &b),
                b.len() >= lower.len() && b[..lower.len()].eq_ignore_ascii_case(&lower)
            );
            prop_assert_eq!(eq_exact(&a, &b), a == b);
            let mut out = vec![0; b.len()];
            lower_into(&b, &mut out);
            prop_assert_eq!(out, b.to_ascii_lowercase());
        }
    }
}
