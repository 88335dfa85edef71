//! Labels: what a query result, a job, or an output may become.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How far a result may travel. Ordered: a job's label is the maximum of
/// everything it read, and it never goes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Label {
    /// Only columns classed public (open data).
    Public,
    /// Only host-verified aggregates whose groups meet the threshold.
    Aggregate,
    /// Row-level values of protected columns were read.
    RowLevel,
    /// Direct identifiers were read; never leaves the domain.
    Identifying,
}

impl Label {
    /// The label of a job that has read results with both labels.
    pub fn join(self, other: Label) -> Label {
        self.max(other)
    }

    /// The label's name as written in policies and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Public => "public",
            Label::Aggregate => "aggregate",
            Label::RowLevel => "row-level",
            Label::Identifying => "identifying",
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_never_goes_down() {
        assert_eq!(Label::Aggregate.join(Label::Public), Label::Aggregate);
        assert_eq!(Label::Public.join(Label::RowLevel), Label::RowLevel);
        assert_eq!(Label::Identifying.join(Label::Aggregate), Label::Identifying);
    }
}
