//! The buckets of one index key: a read-only hash table from a (normalised) key to the rule
//! positions filed under it.
//!
//! A lookup happens for almost every event and the keys are short (`devfs`, `0x046d`,
//! `ums`), so the table is built for that: a word-at-a-time hash, open addressing over a
//! power-of-two slot array, the full hash compared before any key byte, keys and lists in two
//! shared arrays, and an inline compare instead of a `memcmp` call.

use crate::casefold::word;

/// One key: its hash and where its bytes and its list are.
#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    key: (u32, u32),
    list: (u32, u32),
}

/// A frozen map from key bytes to a list of rule positions.
#[derive(Debug, Default)]
pub(crate) struct KeyTable {
    /// 0 = empty, else 1 + index in `entries`.
    slots: Box<[u32]>,
    /// log2 of the slot count.
    bits: u32,
    entries: Box<[Entry]>,
    keys: Box<[u8]>,
    lists: Box<[u32]>,
}

/// FxHash's constant: a multiply spreads each word over the high bits.
const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// One FxHash step: mix word `w` into the running hash `h`. Shared with the engine's
/// build-time maps.
#[inline]
pub(crate) fn fx_step(h: u64, w: u64) -> u64 {
    (h.rotate_left(5) ^ w).wrapping_mul(K)
}

/// Hash of a key after `fold` is applied to each of its words (`fold` must work byte by
/// byte, as ASCII lowercasing does), eight bytes per step. The last 1–7 bytes are read as one
/// word with overlapping loads rather than byte by byte; the length is mixed in first, and
/// a lookup compares whole keys anyway.
#[inline]
fn hash_folded(key: &[u8], fold: impl Fn(u64) -> u64) -> u64 {
    let n = key.len();
    let mut h = (n as u64).wrapping_mul(K);
    let mut words = key.chunks_exact(8);
    for w in &mut words {
        h = fx_step(h, fold(word(w)));
    }
    if !words.remainder().is_empty() {
        let u32_at = |i: usize| {
            u64::from(u32::from_le_bytes(
                key[i..i + 4].try_into().expect("4 bytes"),
            ))
        };
        let w = if n >= 8 {
            word(&key[n - 8..])
        } else if n >= 4 {
            u32_at(0) | (u32_at(n - 4) << 32)
        } else {
            u64::from(key[0]) | (u64::from(key[n / 2]) << 8) | (u64::from(key[n - 1]) << 16)
        };
        h = fx_step(h, fold(w));
    }
    h
}

#[inline]
fn hash(key: &[u8]) -> u64 {
    hash_folded(key, |w| w)
}

impl KeyTable {
    /// Freeze `(key, positions)` pairs (keys distinct).
    pub(crate) fn new(mut items: Vec<(Box<[u8]>, Vec<u32>)>) -> KeyTable {
        // Built in key order, so the layout does not depend on a hash map's iteration order.
        items.sort();
        let bits = (items.len() * 2)
            .next_power_of_two()
            .max(8)
            .trailing_zeros();
        let mut slots = vec![0u32; 1 << bits];
        let mut entries = Vec::with_capacity(items.len());
        let mut keys = Vec::new();
        let mut lists = Vec::new();
        for (key, list) in &items {
            let entry = Entry {
                hash: hash(key),
                key: (keys.len() as u32, key.len() as u32),
                list: (lists.len() as u32, list.len() as u32),
            };
            keys.extend_from_slice(key);
            lists.extend_from_slice(list);
            let mut slot = (entry.hash >> (64 - bits)) as usize;
            while slots[slot] != 0 {
                slot = (slot + 1) & (slots.len() - 1);
            }
            entries.push(entry);
            slots[slot] = entries.len() as u32;
        }
        KeyTable {
            slots: slots.into(),
            bits,
            entries: entries.into(),
            keys: keys.into(),
            lists: lists.into(),
        }
    }

    /// Number of keys.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The positions filed under `key`.
    #[inline]
    pub(crate) fn get(&self, key: &[u8]) -> Option<&[u32]> {
        self.find(key, hash(key), crate::casefold::eq_exact)
    }

    /// The positions filed under `value` lowercased (ASCII), when every key was lowercased
    /// when filed: no lowercased copy of the value is made.
    #[inline]
    pub(crate) fn get_ignore_case(&self, value: &[u8]) -> Option<&[u32]> {
        let h = hash_folded(value, crate::casefold::lower_word);
        self.find(value, h, crate::casefold::eq_lower)
    }

    /// The entry of hash `h` whose key `same(key, probe)` accepts.
    #[inline]
    fn find(&self, probe: &[u8], h: u64, same: impl Fn(&[u8], &[u8]) -> bool) -> Option<&[u32]> {
        if self.entries.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut slot = (h >> (64 - self.bits)) as usize;
        loop {
            let e = match self.slots[slot] {
                0 => return None,
                i => &self.entries[i as usize - 1],
            };
            let (start, len) = (e.key.0 as usize, e.key.1 as usize);
            if e.hash == h && len == probe.len() && same(&self.keys[start..start + len], probe) {
                let (start, len) = (e.list.0 as usize, e.list.1 as usize);
                return Some(&self.lists[start..start + len]);
            }
            slot = (slot + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_each_key_and_nothing_else() {
        let t = KeyTable::new(vec![
            (b"devfs"[..].into(), vec![1, 4]),
            (b"0x046d"[..].into(), vec![2]),
            (b""[..].into(), vec![3]),
            (b"a-key-longer-than-eight"[..].into(), vec![5]),
        ]);
        assert_eq!(t.len(), 4);
        assert_eq!(t.get(b"devfs"), Some(&[1, 4][..]));
        assert_eq!(t.get(b"0x046d"), Some(&[2][..]));
        assert_eq!(t.get(b""), Some(&[3][..]));
        assert_eq!(t.get(b"a-key-longer-than-eight"), Some(&[5][..]));
        assert_eq!(t.get(b"devf"), None);
        assert_eq!(t.get(b"devfs\0"), None);
        assert_eq!(t.get(b"a-key-longer-than-eighT"), None);
        assert_eq!(KeyTable::default().get(b"x"), None);
    }

    proptest! {
        /// The table answers exactly what a map answers, for keys that share prefixes, differ
        /// only in padding bytes (`\0`) or only past the first word.
        #[test]
        fn agrees_with_a_map(
            keys in prop::collection::btree_set(prop::collection::vec(prop::sample::select(vec![0u8, b'a', b'b', 0xff]), 0..20), 0..40),
            probes in prop::collection::vec(prop::collection::vec(prop::sample::select(vec![0u8, b'a', b'b', 0xff]), 0..20), 0..40),
        ) {
            let items: Vec<(Box<[u8]>, Vec<u32>)> = keys.iter().enumerate().map(|(i, k)| (k.clone().into(), vec![i as u32, 1000])).collect();
            let map: std::collections::BTreeMap<Vec<u8>, Vec<u32>> = items.iter().map(|(k, v)| (k.to_vec(), v.clone())).collect();
            let t = KeyTable::new(items);
            for k in keys.iter().chain(&probes) {
                prop_assert_eq!(t.get(k), map.get(k).map(Vec::as_slice));
            }
        }

        /// Looking a value up ignoring case finds the key it lowercases to, when the keys
        /// were filed lowercase.
        #[test]
        fn ignoring_case_finds_the_lowercased_key(
            keys in prop::collection::btree_set("[a-c0-9.]{0,20}", 0..30),
            probes in prop::collection::vec("[a-cA-C0-9.\\[@]{0,20}", 0..30),
        ) {
            let items: Vec<(Box<[u8]>, Vec<u32>)> = keys.iter().enumerate().map(|(i, k)| (k.as_bytes().into(), vec![i as u32])).collect();
            let t = KeyTable::new(items.clone());
            for p in keys.iter().map(|k| k.to_ascii_uppercase()).chain(keys.iter().cloned()).chain(probes) {
                let lowered = p.to_ascii_lowercase();
                prop_assert_eq!(t.get_ignore_case(p.as_bytes()), t.get(lowered.as_bytes()), "{}", p);
            }
        }
    }
}
