//! Names of the things a domain holds. Each kind has one rule, checked in one
//! place, so a name that reaches a path, a SQL identifier or a record is
//! always one the domain chose to allow.

use std::fmt;

/// What a name names; each kind has its own rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NameKind {
    /// A dataset: a plain SQL identifier (lower-case letters, digits and `_`,
    /// starting with a letter, at most 63), so it needs no quoting in SQL.
    Dataset,
    /// An output table: 1 to 64 ASCII letters, digits, `_` or `-` (it names a file).
    Output,
    /// An operator: 1 to 64 ASCII letters, digits, `-`, `_` or `.`.
    Operator,
    /// A reviewer: 1 to 64 letters (any script), digits, `_`, `-` or `.`.
    Reviewer,
}

impl NameKind {
    fn word(self) -> &'static str {
        match self {
            NameKind::Dataset => "dataset",
            NameKind::Output => "output",
            NameKind::Operator => "operator",
            NameKind::Reviewer => "reviewer",
        }
    }

    fn rule(self) -> &'static str {
        match self {
            NameKind::Dataset => "lower-case letters, digits and `_`, starting with a letter (at most 63)",
            NameKind::Output => "1 to 64 letters, digits, `_` or `-`",
            NameKind::Operator => "1 to 64 letters, digits, `-`, `_` or `.`",
            NameKind::Reviewer => "1 to 64 letters, digits, `_`, `-` or `.`",
        }
    }

    fn allows(self, name: &str) -> bool {
        match self {
            NameKind::Dataset => {
                !name.is_empty()
                    && name.len() <= 63
                    && name.starts_with(|c: char| c.is_ascii_lowercase())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            }
            NameKind::Output => {
                (1..=64).contains(&name.len())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
            }
            NameKind::Operator => {
                (1..=64).contains(&name.len())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            }
            NameKind::Reviewer => {
                (1..=64).contains(&name.len())
                    && name
                        .chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
            }
        }
    }
}

/// A name that was refused, and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} name {name:?} is not allowed: use {}", kind.word(), kind.rule())]
pub struct NameError {
    /// What it was to name.
    pub kind: NameKind,
    /// The name as given.
    pub name: String,
}

/// A checked name of a dataset, output, operator or reviewer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name {
    kind: NameKind,
    text: String,
}

impl Name {
    /// Checks `name` against the rule of its kind.
    pub fn parse(kind: NameKind, name: &str) -> Result<Name, NameError> {
        if kind.allows(name) {
            Ok(Name {
                kind,
                text: name.to_string(),
            })
        } else {
            Err(NameError {
                kind,
                name: name.to_string(),
            })
        }
    }

    /// What it names.
    pub fn kind(&self) -> NameKind {
        self.kind
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_keeps_its_rule() {
        fn ok(k: NameKind, n: &str) -> bool {
            Name::parse(k, n).is_ok()
        }
        assert!(ok(NameKind::Dataset, "residents_2026"));
        assert!(
            !ok(NameKind::Dataset, "Residents"),
            "upper case would need quoting in SQL"
        );
        assert!(!ok(NameKind::Dataset, "2026_residents"));
        assert!(!ok(NameKind::Dataset, &"a".repeat(64)));
        assert!(ok(NameKind::Output, "district-stats_2"));
        assert!(!ok(NameKind::Output, "../escape"), "an output name becomes a file name");
        assert!(!ok(NameKind::Output, "a.b"));
        assert!(ok(NameKind::Operator, "city-data.ops_1"));
        assert!(!ok(NameKind::Operator, "城市数据"));
        assert!(ok(NameKind::Reviewer, "审核员-li"));
        assert!(!ok(NameKind::Reviewer, "li/../x"));
        for k in [
            NameKind::Dataset,
            NameKind::Output,
            NameKind::Operator,
            NameKind::Reviewer,
        ] {
            assert!(!ok(k, ""), "{k:?} refuses the empty name");
        }
    }

    #[test]
    fn a_refusal_names_the_kind_and_the_rule() {
        let e = Name::parse(NameKind::Output, "a/b").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("output name \"a/b\" is not allowed: use 1 to 64 letters, digits, `_` or `-`")
        );
    }
}
