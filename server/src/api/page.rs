//! Pagination of lists: `?limit=N&cursor=ID`, items in id order, and the
//! cursor of the next page when there is one.

use serde::Deserialize;
use utoipa::IntoParams;

/// The most items one page holds.
pub(crate) const MAX_LIMIT: u32 = 500;
const DEFAULT_LIMIT: u32 = 50;

/// Which page of a list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Items per page (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub(crate) limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Jobs of this organization only (operators: their own, the default).
    pub(crate) operator: Option<String>,
}

impl PageQuery {
    /// Refuses a limit outside 1 to [`MAX_LIMIT`], naming the range.
    pub(crate) fn check(&self) -> Result<(), crate::problem::Problem> {
        match self.limit {
            Some(n) if !(1..=MAX_LIMIT).contains(&n) => Err(crate::problem::Problem::bad_request(format!(
                "`limit` must be 1 to {MAX_LIMIT}"
            ))),
            _ => Ok(()),
        }
    }

    /// The items after the cursor, at most `limit` of them, and the next cursor.
    pub(crate) fn cut<T>(&self, mut items: Vec<(String, T)>) -> (Vec<T>, Option<String>) {
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize;
        let start = match &self.cursor {
            Some(c) => items.partition_point(|(id, _)| id.as_str() <= c.as_str()),
            None => 0,
        };
        let rest: Vec<(String, T)> = items.into_iter().skip(start).collect();
        let next = (rest.len() > limit).then(|| rest[limit - 1].0.clone());
        (rest.into_iter().take(limit).map(|(_, t)| t).collect(), next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let items: Vec<(String, u32)> = (0..7).map(|i| (format!("id{i}"), i)).collect();
        let mut q = PageQuery {
            limit: Some(3),
            ..Default::default()
        };
        let mut seen = Vec::new();
        loop {
            let (page, next) = q.cut(items.clone());
            seen.extend(page);
            match next {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
    }
}
