//! The identifier index: keyed hashes (HMAC-SHA256 under a domain key,
//! truncated to 128 bits) of every value of every direct-identifier column in
//! the domain. It answers "is this cell some person's identifier?" without
//! ever holding the plain values.

use ring::hmac;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// A keyed hash of one identifier value.
pub type Digest = [u8; 16];

/// The shape of a value: its length in bytes and whether it is all digits.
/// Only cells with a shape some identifier has are hashed, which keeps the
/// check fast on large numeric tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    /// Length in bytes.
    pub len: u32,
    /// All ASCII digits.
    pub digits: bool,
}

impl Shape {
    /// The shape of a value.
    pub fn of(value: &str) -> Shape {
        Shape {
            len: value.len() as u32,
            digits: !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
        }
    }
}

/// The index, as stored: digests and shapes, never values.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredIndex {
    /// Keyed hashes of identifier values.
    pub digests: Vec<Digest>,
    /// Shapes identifier values have.
    pub shapes: Vec<Shape>,
}

/// The identifier index in memory.
pub struct KeyedIndex {
    key: hmac::Key,
    digests: HashSet<Digest>,
    shapes: HashSet<Shape>,
}

impl KeyedIndex {
    /// An empty index under a domain key.
    pub fn new(key: &[u8; 32]) -> KeyedIndex {
        KeyedIndex {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            digests: HashSet::new(),
            shapes: HashSet::new(),
        }
    }

    /// Loads a stored index under the key it was built with.
    pub fn from_stored(key: &[u8; 32], stored: StoredIndex) -> KeyedIndex {
        KeyedIndex {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            digests: stored.digests.into_iter().collect(),
            shapes: stored.shapes.into_iter().collect(),
        }
    }

    /// What to store.
    pub fn to_stored(&self) -> StoredIndex {
        let mut digests: Vec<Digest> = self.digests.iter().copied().collect();
        digests.sort_unstable();
        let mut shapes: Vec<Shape> = self.shapes.iter().copied().collect();
        shapes.sort_unstable_by_key(|s| (s.len, s.digits));
        StoredIndex { digests, shapes }
    }

    fn digest(&self, value: &str) -> Digest {
        let tag = hmac::sign(&self.key, value.as_bytes());
        let mut d = [0u8; 16];
        d.copy_from_slice(&tag.as_ref()[..16]);
        d
    }

    /// Adds an identifier value. Values shorter than 2 bytes are too common to mean anything.
    pub fn insert(&mut self, value: &str) {
        let value = value.trim();
        if value.len() < 2 {
            return;
        }
        self.shapes.insert(Shape::of(value));
        let d = self.digest(value);
        self.digests.insert(d);
    }

    /// Whether a value is one of the indexed identifiers.
    pub fn contains(&self, value: &str) -> bool {
        let value = value.trim();
        if !self.shapes.contains(&Shape::of(value)) {
            return false;
        }
        self.digests.contains(&self.digest(value))
    }

    /// How many distinct values are indexed.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_values_it_holds_and_stores_no_plain_text() {
        let mut idx = KeyedIndex::new(&[7; 32]);
        idx.insert("张三丰");
        idx.insert("13812345678");
        assert!(idx.contains("张三丰"));
        assert!(idx.contains(" 13812345678 "));
        assert!(!idx.contains("张三"));
        assert!(!idx.contains("13812345679"));
        let stored = idx.to_stored();
        let bytes = format!("{stored:?}");
        assert!(!bytes.contains("13812345678"));
        let again = KeyedIndex::from_stored(&[7; 32], stored.clone());
        assert!(again.contains("张三丰"));
        // Another key cannot use the digests.
        assert!(!KeyedIndex::from_stored(&[8; 32], stored).contains("张三丰"));
    }
}
