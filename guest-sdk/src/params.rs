//! Typed access to the job's submission parameters.

use crate::Error;
use std::collections::BTreeMap;
use std::str::FromStr;

/// The `--param key=value` pairs given when the job was submitted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Builds parameters from pairs; a later pair for the same key wins.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Params(pairs.into_iter().collect())
    }

    /// The raw text of a parameter, if it was given.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Parses a parameter that must be given.
    pub fn require<T: FromStr>(&self, key: &str) -> Result<T, Error>
    where
        T::Err: std::fmt::Display,
    {
        let raw = self
            .raw(key)
            .ok_or_else(|| Error::Param(format!("`{key}` is required")))?;
        parse(key, raw)
    }

    /// Parses a parameter, or returns `default` when it was not given.
    pub fn get_or<T: FromStr>(&self, key: &str, default: T) -> Result<T, Error>
    where
        T::Err: std::fmt::Display,
    {
        match self.raw(key) {
            Some(raw) => parse(key, raw),
            None => Ok(default),
        }
    }

    /// Every parameter, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn parse<T: FromStr>(key: &str, raw: &str) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    raw.parse()
        .map_err(|e| Error::Param(format!("`{key}`={raw:?} does not parse: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params::from_pairs([("n".to_string(), "7".to_string()), ("x".to_string(), "abc".to_string())])
    }

    #[test]
    fn typed_get_parses_and_defaults() {
        let p = params();
        assert_eq!(p.require::<i64>("n"), Ok(7));
        assert_eq!(p.get_or::<i64>("missing", 3), Ok(3));
    }

    #[test]
    fn bad_or_missing_values_name_the_key() {
        let p = params();
        let err = p.require::<i64>("x").unwrap_err().to_string();
        assert!(err.contains("`x`"), "{err}");
        let err = p.require::<i64>("nope").unwrap_err().to_string();
        assert!(err.contains("`nope` is required"), "{err}");
    }
}
