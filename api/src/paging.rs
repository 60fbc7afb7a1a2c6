//! Cursor paging shared by every list: `{"items": [...], "next_cursor": ...}`.

use serde::Deserialize;
use serde_json::{json, Value};

use ticketflow_app::ApiError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// `?limit=&after=` as sent; parsed by [`PageQuery::page`].
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub limit: i64,
    pub after: Option<String>,
}

impl PageQuery {
    /// The `after` cursor as an integer, without judging `limit`.
    pub fn page_after_number(&self) -> Result<i64, ApiError> {
        Page {
            limit: DEFAULT_LIMIT,
            after: self.after.clone().filter(|a| !a.is_empty()),
        }
        .after_number()
    }

    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = match &self.limit {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| {
                    ApiError::invalid("limit", format!("limit must be 1 to {MAX_LIMIT}"))
                })?,
        };
        let after = self.after.clone().filter(|a| !a.is_empty());
        Ok(Page { limit, after })
    }
}

impl Page {
    /// The `after` cursor as an integer (positions, versions); 0 when absent.
    pub fn after_number(&self) -> Result<i64, ApiError> {
        match &self.after {
            None => Ok(0),
            Some(raw) => raw.parse().ok().filter(|n: &i64| *n >= 0).ok_or_else(|| {
                ApiError::invalid("after", "after must be a cursor from next_cursor")
            }),
        }
    }

    /// Takes a page from items already ordered and past the cursor: one more
    /// than `limit` was fetched to learn whether another page exists.
    pub fn respond<T>(
        &self,
        mut items: Vec<T>,
        render: impl Fn(&T) -> Value,
        cursor: impl Fn(&T) -> String,
    ) -> Value {
        let more = items.len() as i64 > self.limit;
        items.truncate(self.limit as usize);
        let next = if more {
            items.last().map(&cursor)
        } else {
            None
        };
        json!({ "items": items.iter().map(render).collect::<Vec<_>>(), "next_cursor": next })
    }

    /// Pages an in-memory list ordered by `cursor`.
    pub fn slice<T>(
        &self,
        items: Vec<T>,
        render: impl Fn(&T) -> Value,
        cursor: impl Fn(&T) -> String,
    ) -> Value {
        let start = match &self.after {
            None => 0,
            Some(after) => items
                .iter()
                .position(|i| cursor(i) == *after)
                .map_or(items.len(), |p| p + 1),
        };
        let rest: Vec<T> = items
            .into_iter()
            .skip(start)
            .take(self.limit as usize + 1)
            .collect();
        self.respond(rest, render, cursor)
    }
}
