//! Token secrets: how one is made, written and checked. A token is
//! `inl_<id>_<secret>`: the id finds the record, the SHA-256 of the whole
//! token is what the domain keeps, and the check compares hashes in
//! constant time so its duration says nothing about the stored hash.

use crate::error::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// The prefix every token starts with, so a leaked token is recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "inl_";

/// A new token: its id and the whole secret text.
pub(crate) struct NewSecret {
    pub(crate) id: String,
    pub(crate) token: String,
}

/// Makes a token from 32 random bytes, with a random 12-hex-digit id.
pub(crate) fn generate() -> Result<NewSecret> {
    let rng = SystemRandom::new();
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    rng.fill(&mut id)
        .and_then(|()| rng.fill(&mut secret))
        .map_err(|_| Error::Internal("the system random generator failed".into()))?;
    let id = hex::encode(id);
    let token = format!("{TOKEN_PREFIX}{id}_{}", URL_SAFE_NO_PAD.encode(secret));
    Ok(NewSecret { id, token })
}

/// The id a presented token claims, if it is shaped like one of ours.
pub(crate) fn claimed_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let shaped = id.len() == 12
        && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    shaped.then_some(id)
}

/// The SHA-256 of a token, as the domain stores it.
pub(crate) fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `token` hashes to `stored`, compared in constant time: every
/// byte is looked at, whatever the first difference (ring's own helper is
/// deprecated for outside use). Comparing hashes, not tokens, already means an
/// attacker cannot steer which byte differs first.
pub(crate) fn matches(token: &str, stored: &[u8]) -> bool {
    let presented = hash(token);
    if stored.len() != presented.len() {
        return false;
    }
    let diff = presented
        .iter()
        .zip(stored)
        .fold(0u8, |acc, (a, b)| acc | std::hint::black_box(a ^ b));
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_and_matches_only_its_own_hash() -> Result<()> {
        let a = generate()?;
        let b = generate()?;
        assert_eq!(claimed_id(&a.token), Some(a.id.as_str()));
        assert!(matches(&a.token, &hash(&a.token)));
        assert!(!matches(&b.token, &hash(&a.token)));
        assert_ne!(a.token, b.token);
        Ok(())
    }

    #[test]
    fn malformed_tokens_claim_no_id() {
        for t in [
            "",
            "inl_",
            "inl_abc_def",
            "Bearer x",
            "inl_ABCDEF012345_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(claimed_id(t), None, "{t}");
        }
    }
}
