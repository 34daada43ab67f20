//! The proxy-wasm wire format of a header map, read without trusting it: the Wasm backend gets
//! maps this way, and the host's tests can check the reader.

/// The host's serialized map: a count, then (key size, value size) per pair, then the keys and
/// values, each followed by a NUL. Anything malformed ends the list where it goes wrong.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn deserialize_pairs(bytes: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let word = |at: usize| -> Option<usize> {
        let raw = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
    };
    // The bytes from `at`, `size` long, and where the next field starts (after a NUL).
    let field = |at: usize, size: usize| -> Option<(Vec<u8>, usize)> {
        let end = at.checked_add(size)?;
        Some((bytes.get(at..end)?.to_vec(), end.checked_add(1)?))
    };
    let Some(count) = word(0) else {
        return Vec::new();
    };
    let mut pairs = Vec::with_capacity(count.min(1024));
    let Some(mut at) = count.checked_mul(8).and_then(|n| n.checked_add(4)) else {
        return pairs;
    };
    for n in 0..count {
        let sizes = (word(4 + n * 8), word(8 + n * 8));
        let (Some(key_size), Some(value_size)) = sizes else {
            break;
        };
        let Some((key, next)) = field(at, key_size) else {
            break;
        };
        let Some((value, next)) = field(next, value_size) else {
            break;
        };
        pairs.push((key, value));
        at = next;
    }
    pairs
}

/// `pairs` in the same format, for the host.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn serialize_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let size = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let mut bytes = size(pairs.len()).to_vec();
    for (key, value) in pairs {
        bytes.extend(size(key.as_ref().len()));
        bytes.extend(size(value.as_ref().len()));
    }
    for (key, value) in pairs {
        bytes.extend_from_slice(key.as_ref());
        bytes.push(0);
        bytes.extend_from_slice(value.as_ref());
        bytes.push(0);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::{deserialize_pairs, serialize_pairs as serialize};

    #[test]
    fn pairs_come_back_as_bytes_even_when_not_utf8() {
        let map = serialize(&[(&b":path"[..], &b"/"[..]), (b"x-raw", b"\xff\xfe")]);
        let pairs = deserialize_pairs(&map);
        assert_eq!(pairs[0], (b":path".to_vec(), b"/".to_vec()));
        assert_eq!(pairs[1], (b"x-raw".to_vec(), vec![0xff, 0xfe]));
    }

    #[test]
    fn a_malformed_map_ends_where_it_goes_wrong() {
        assert!(deserialize_pairs(&[]).is_empty());
        assert!(deserialize_pairs(&[9, 0, 0]).is_empty());
        let mut map = serialize(&[("a", "1"), ("b", "2")]);
        map.truncate(map.len() - 3);
        assert_eq!(deserialize_pairs(&map).len(), 1);
        let huge = 0xffff_ffffu32.to_le_bytes();
        assert!(deserialize_pairs(&huge).is_empty());
    }
}
