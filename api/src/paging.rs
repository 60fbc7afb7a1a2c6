//! Cursor paging shared by every list: `{"items": [...], "next_cursor": ...}`.

use serde::Deserialize;
use serde_json::{json, Value};

use ticketflow_app::{params, ApiError};

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
            after: self.after.clone(),
        }
        .after_number()
    }

    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = params::query_integer("limit", self.limit.as_deref(), 1..=MAX_LIMIT)?;
        if self.after.as_deref() == Some("") {
            return Err(ApiError::invalid(
                "after",
                "after must be a cursor from next_cursor",
            ));
        }
        Ok(Page {
            limit: limit.unwrap_or(DEFAULT_LIMIT),
            after: self.after.clone(),
        })
    }
}

impl Page {
    /// The `after` cursor as an integer (positions, versions); 0 when absent.
    pub fn after_number(&self) -> Result<i64, ApiError> {
        let after = params::query_integer("after", self.after.as_deref(), params::NON_NEGATIVE);
        Ok(after?.unwrap_or(0))
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
