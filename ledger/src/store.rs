//! The ledger's entry file: append-only records `len (u32 LE) | entry | leaf hash`.
//! A record is whole or it is the torn tail of a crash; the leaf hash lets a
//! reader check every record on its own.

use super::merkle::{Hash, leaf_hash};

/// Bytes around each entry: the length before it, the leaf hash after it.
pub(crate) const FRAME: usize = 4 + 32;
/// Largest entry accepted, so a corrupt length cannot make a reader allocate without bound.
pub(crate) const MAX_ENTRY: usize = 16 << 20;

/// Frames one entry.
pub(crate) fn encode(entry: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entry.len() + FRAME);
    out.extend_from_slice(&(entry.len() as u32).to_le_bytes());
    out.extend_from_slice(entry);
    out.extend_from_slice(&leaf_hash(entry));
    out
}

/// One record as found in the file.
pub(crate) struct Record<'a> {
    /// The entry bytes.
    pub(crate) entry: &'a [u8],
    /// The leaf hash stored after it.
    pub(crate) stored: Hash,
}

/// What stops a scan.
pub(crate) enum Stop {
    /// The file ends in the middle of a record: a torn write or a truncation.
    Incomplete { offset: usize },
    /// A record's stored hash does not match its entry.
    Altered { offset: usize },
}

/// Splits a file into records, stopping at the first one that is incomplete
/// or whose hash does not match.
pub(crate) fn scan(bytes: &[u8]) -> (Vec<Record<'_>>, Option<Stop>) {
    let mut records = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if rest.len() < 4 {
            return (records, Some(Stop::Incomplete { offset }));
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > MAX_ENTRY {
            return (records, Some(Stop::Altered { offset }));
        }
        if rest.len() < len + FRAME {
            return (records, Some(Stop::Incomplete { offset }));
        }
        let entry = &rest[4..4 + len];
        let mut stored = [0u8; 32];
        stored.copy_from_slice(&rest[4 + len..4 + len + 32]);
        if leaf_hash(entry) != stored {
            return (records, Some(Stop::Altered { offset }));
        }
        records.push(Record { entry, stored });
        offset += len + FRAME;
    }
    (records, None)
}

/// The roots of the perfect subtrees that make up a tree, left to right, with
/// their heights: appending is O(log n) and the root is their fold.
#[derive(Debug, Clone, Default)]
pub(crate) struct Frontier {
    nodes: Vec<(u32, Hash)>,
    size: u64,
}

impl Frontier {
    pub(crate) fn push(&mut self, leaf: Hash) {
        self.nodes.push((0, leaf));
        self.size += 1;
        while self.nodes.len() >= 2 {
            let (h2, right) = self.nodes[self.nodes.len() - 1];
            let (h1, left) = self.nodes[self.nodes.len() - 2];
            if h1 != h2 {
                break;
            }
            self.nodes.truncate(self.nodes.len() - 2);
            self.nodes.push((h1 + 1, super::merkle::node_hash(&left, &right)));
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some((_, last)) = iter.next() else {
            return super::merkle::empty_root();
        };
        iter.fold(*last, |acc, (_, left)| super::merkle::node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_root_matches_the_recursive_root() {
        let mut f = Frontier::default();
        let mut leaves = Vec::new();
        assert_eq!(f.root(), super::super::merkle::empty_root());
        for i in 0..100u32 {
            let l = leaf_hash(&i.to_le_bytes());
            leaves.push(l);
            f.push(l);
            assert_eq!(f.root(), super::super::merkle::root(&leaves), "size {}", i + 1);
        }
    }

    #[test]
    fn scan_stops_at_a_torn_or_altered_record() {
        let mut file = Vec::new();
        for e in [&b"one"[..], b"two", b"three"] {
            file.extend(encode(e));
        }
        let (records, stop) = scan(&file);
        assert_eq!(records.len(), 3);
        assert!(stop.is_none());
        let (records, stop) = scan(&file[..file.len() - 5]);
        assert_eq!(records.len(), 2);
        assert!(matches!(stop, Some(Stop::Incomplete { .. })));
        let mut altered = file.clone();
        altered[4 + 3 + 32 + 4] ^= 1;
        let (records, stop) = scan(&altered);
        assert_eq!(records.len(), 1);
        assert!(matches!(stop, Some(Stop::Altered { .. })));
    }
}
