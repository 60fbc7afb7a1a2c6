//! Cursor paging shared by every list: `{"items": [...], "next_cursor": ...}`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use ticketflow_app::{params, ApiError};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// `?limit=&after=` as sent; parsed by [`PageQuery::page`].
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items at most (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page; exclusive.
    #[param(min_length = 1)]
    pub after: Option<String>,
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub items: Vec<T>,
    /// The `after` of the next page; null on the last one.
    #[schema(required)]
    pub next_cursor: Option<String>,
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
    pub fn respond<'a, T, R>(
        &self,
        items: &'a [T],
        render: impl Fn(&'a T) -> R,
        cursor: impl Fn(&T) -> String,
    ) -> List<R> {
        let shown = &items[..items.len().min(self.limit as usize)];
        let more = shown.len() < items.len();
        List {
            items: shown.iter().map(render).collect(),
            next_cursor: shown.last().filter(|_| more).map(cursor),
        }
    }

    /// Pages an in-memory list ordered by `cursor`.
    pub fn slice<'a, T, R>(
        &self,
        items: &'a [T],
        render: impl Fn(&'a T) -> R,
        cursor: impl Fn(&T) -> String,
    ) -> List<R> {
        let start = match &self.after {
            None => 0,
            Some(after) => items
                .iter()
                .position(|i| cursor(i) == *after)
                .map_or(items.len(), |p| p + 1),
        };
        let end = items.len().min(start + self.limit as usize + 1);
        self.respond(&items[start..end], render, cursor)
    }
}
