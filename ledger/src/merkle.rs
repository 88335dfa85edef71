//! The Merkle tree of RFC 9162 §2.1: hashes, roots, inclusion and
//! consistency proofs, and their verification. Pure functions over hashes,
//! so a regulator can verify proofs with nothing but this module.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The inputs cannot describe a valid proof (sizes, indices, lengths).
    #[error("malformed proof: {0}")]
    Malformed(String),
    /// The proof is well formed but does not lead to the given root(s).
    #[error("the proof does not match the root")]
    Mismatch,
}

/// The leaf hash of an entry: SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The root of the tree over `leaves` (MTH of RFC 9162).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The inclusion proof (audit path) of leaf `index` in the tree over `leaves`.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    fn walk(leaves: &[Hash], index: usize, path: &mut Vec<Hash>) {
        let n = leaves.len();
        if n <= 1 {
            return;
        }
        let k = split(n);
        if index < k {
            walk(&leaves[..k], index, path);
            path.push(root(&leaves[k..]));
        } else {
            walk(&leaves[k..], index - k, path);
            path.push(root(&leaves[..k]));
        }
    }
    walk(leaves, index, &mut path);
    Some(path)
}

/// The consistency proof between the first `old_size` leaves and all of `leaves`.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Option<Vec<Hash>> {
    if old_size == 0 || old_size > leaves.len() {
        return None;
    }
    fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
        let n = leaves.len();
        if m == n {
            if !complete {
                out.push(root(leaves));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            subproof(m, &leaves[..k], complete, out);
            out.push(root(&leaves[k..]));
        } else {
            subproof(m - k, &leaves[k..], false, out);
            out.push(root(&leaves[..k]));
        }
    }
    let mut out = Vec::new();
    subproof(old_size, leaves, true, &mut out);
    Some(out)
}

fn as_hash(bytes: &[u8], what: &str) -> Result<Hash, ProofError> {
    bytes
        .try_into()
        .map_err(|_| ProofError::Malformed(format!("{what} is {} bytes, not 32", bytes.len())))
}

/// Verifies that `leaf` is entry `index` of the tree of `size` leaves with root `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &[u8], proof: &[Vec<u8>], root: &[u8]) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Malformed(format!(
            "leaf index {index} is not below tree size {size}"
        )));
    }
    let leaf = as_hash(leaf, "the leaf hash")?;
    let root = as_hash(root, "the root")?;
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = leaf;
    for p in proof {
        let p = as_hash(p, "a proof hash")?;
        if sn == 0 {
            return Err(ProofError::Malformed(
                "the proof is longer than the tree is deep".into(),
            ));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(&p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, &p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Malformed(
            "the proof is shorter than the tree is deep".into(),
        ));
    }
    if r == root { Ok(()) } else { Err(ProofError::Mismatch) }
}

/// Verifies that the tree of `size2` leaves with `root2` extends the tree of
/// `size1` leaves with `root1` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Vec<u8>],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    if size1 == 0 {
        return Err(ProofError::Malformed(
            "a consistency proof from the empty tree proves nothing".into(),
        ));
    }
    if size2 < size1 {
        return Err(ProofError::Malformed(format!(
            "the new size {size2} is below the old size {size1}"
        )));
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::Malformed("equal sizes need an empty proof".into()));
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::Malformed("the proof is empty".into()));
    }
    let root1 = as_hash(root1, "the old root")?;
    let root2 = as_hash(root2, "the new root")?;
    let mut path: Vec<Hash> = proof
        .iter()
        .map(|p| as_hash(p, "a proof hash"))
        .collect::<Result<_, _>>()?;
    if size1.is_power_of_two() {
        path.insert(0, root1);
    }
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::Malformed(
                "the proof is longer than the tree is deep".into(),
            ));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Malformed(
            "the proof is shorter than the tree is deep".into(),
        ));
    }
    if fr == root1 && sr == root2 {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("entry {i}").as_bytes())).collect()
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_wrong_leaf_does_not() {
        for n in 1..=33 {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let proof: Vec<Vec<u8>> = inclusion_proof(&l, i).unwrap().iter().map(|h| h.to_vec()).collect();
                verify_inclusion(i as u64, n as u64, &l[i], &proof, &r).unwrap();
                let other = leaf_hash(b"forged");
                assert_eq!(
                    verify_inclusion(i as u64, n as u64, &other, &proof, &r),
                    Err(ProofError::Mismatch)
                );
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_rewritten_history_does_not() {
        for n in 1..=33 {
            let l = leaves(n);
            let r2 = root(&l);
            for m in 1..=n {
                let r1 = root(&l[..m]);
                let proof: Vec<Vec<u8>> = consistency_proof(&l, m).unwrap().iter().map(|h| h.to_vec()).collect();
                verify_consistency(m as u64, n as u64, &proof, &r1, &r2).unwrap();
                if m < n {
                    let mut forged = l.clone();
                    forged[m - 1] = leaf_hash(b"rewritten");
                    let f1 = root(&forged[..m]);
                    assert!(verify_consistency(m as u64, n as u64, &proof, &f1, &r2).is_err());
                }
            }
        }
    }
}
