//! Calendar dates (UTC) as the agreements write them: `YYYY-MM-DD`. The
//! calendar arithmetic is chrono's; this type keeps the domain's rules
//! (four-digit years from 1900, the strict format, serde as text).

use crate::error::{Error, Result};
use chrono::{Datelike, Months, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Date(NaiveDate);

/// The first and last years an agreement may name.
const YEARS: std::ops::RangeInclusive<i32> = 1900..=9999;

fn epoch() -> NaiveDate {
    NaiveDate::default()
}

impl Date {
    /// A date, if it exists in the calendar.
    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        YEARS
            .contains(&year)
            .then(|| NaiveDate::from_ymd_opt(year, month, day))
            .flatten()
            .map(Date)
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Date> {
        let bad = || Error::Invalid(format!("`{s}` is not a date: write YYYY-MM-DD"));
        let t = s.trim();
        let shape = t.len() == 10 && t.bytes().enumerate().all(|(i, b)| matches!(i, 4 | 7) == (b == b'-'));
        if !shape || !t.bytes().all(|b| b == b'-' || b.is_ascii_digit()) {
            return Err(bad());
        }
        let d = NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| bad())?;
        Date::new(d.year(), d.month(), d.day()).ok_or_else(bad)
    }

    /// Today, in UTC.
    pub fn today() -> Date {
        Date(Utc::now().date_naive())
    }

    /// The date `days` days after 1970-01-01 (saturating at chrono's range).
    pub fn from_days(days: i64) -> Date {
        let date = TimeDelta::try_days(days)
            .and_then(|d| epoch().checked_add_signed(d))
            .unwrap_or(if days < 0 { NaiveDate::MIN } else { NaiveDate::MAX });
        Date(date)
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.0.year()
    }

    /// The month, 1 to 12.
    pub fn month(self) -> u32 {
        self.0.month()
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i64 {
        self.0.signed_duration_since(epoch()).num_days()
    }

    /// The same day `n` years later (29 February becomes 28 February).
    pub fn add_years(self, n: i32) -> Date {
        let months = Months::new(n.unsigned_abs().saturating_mul(12));
        let moved = if n >= 0 {
            self.0.checked_add_months(months)
        } else {
            self.0.checked_sub_months(months)
        };
        Date(moved.unwrap_or(self.0))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl TryFrom<String> for Date {
    type Error = Error;
    fn try_from(s: String) -> Result<Date> {
        Date::parse(&s)
    }
}

impl From<Date> for String {
    fn from(d: Date) -> String {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_formats_and_rejects() {
        assert_eq!(Date::parse("2026-02-28").unwrap().to_string(), "2026-02-28");
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-1-01",
            "26-01-01",
            "2026-01-01-01",
            "tomorrow",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_days(20_784).to_string(), "2026-11-27");
        assert_eq!(
            Date::parse("2024-02-29").unwrap().add_years(5).to_string(),
            "2029-02-28"
        );
    }
}
