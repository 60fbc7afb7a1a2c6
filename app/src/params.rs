//! Query-string and header parameters, read one strict way by every route and
//! socket: an integer is ASCII digits only (no sign, space, decimal point or
//! exponent) within the parameter's range; a boolean is exactly `true` or
//! `false`. A parameter that is present with any other value, the empty one
//! included, is refused naming it: 422 `invalid_field` in a query string,
//! 400 `invalid_header` in a header.

use std::ops::RangeInclusive;

use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::wording::{self, Input};

/// Counts, positions, seqs and versions.
pub const NON_NEGATIVE: RangeInclusive<i64> = 0..=i64::MAX;

/// A parameter's value that does not fit: which parameter, and what it must be.
#[derive(Debug, PartialEq)]
pub struct BadParam {
    pub name: String,
    pub message: String,
}

impl BadParam {
    fn new(name: &str, must_be: &str) -> Self {
        Self {
            name: name.to_string(),
            message: format!("{name} must be {must_be}"),
        }
    }

    /// Refused in a query string (the contract's 422 for a bad field).
    pub fn in_query(self) -> ApiError {
        ApiError::invalid(&self.name, self.message)
    }

    /// Refused in a header.
    pub fn in_header(self) -> ApiError {
        ApiError::bad_header(&self.name, self.message)
    }
}

pub fn integer(name: &str, raw: &str, range: RangeInclusive<i64>) -> Result<i64, BadParam> {
    let digits = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| raw.parse::<i64>().ok())
        .flatten()
        .filter(|n| range.contains(n))
        .ok_or_else(|| BadParam::new(name, &describe(&range)))
}

pub fn boolean(name: &str, raw: &str) -> Result<bool, BadParam> {
    match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(BadParam::new(name, "true or false")),
    }
}

/// "an integer from 1 to 200", in the client's terms.
fn describe(range: &RangeInclusive<i64>) -> String {
    match (*range.start(), *range.end()) {
        (0, i64::MAX) => "a non-negative integer".to_string(),
        (low, i64::MAX) => format!("an integer of at least {low}"),
        (low, high) => format!("an integer from {low} to {high}"),
    }
}

/// An optional integer query parameter.
pub fn query_integer(
    name: &str,
    raw: Option<&str>,
    range: RangeInclusive<i64>,
) -> Result<Option<i64>, ApiError> {
    raw.map(|r| integer(name, r, range).map_err(BadParam::in_query))
        .transpose()
}

/// An optional boolean query parameter; absent is false.
pub fn query_flag(name: &str, raw: Option<&str>) -> Result<bool, ApiError> {
    raw.map_or(Ok(false), |r| boolean(name, r).map_err(BadParam::in_query))
}

/// A header's text: absent is `None`; bytes that are not visible ASCII are
/// refused rather than read as an empty or missing value.
pub fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| BadParam::new(name, "visible ASCII text").in_header())
        })
        .transpose()
}

/// An optional integer header.
pub fn header_integer(
    headers: &HeaderMap,
    name: &str,
    range: RangeInclusive<i64>,
) -> Result<Option<i64>, ApiError> {
    header_text(headers, name)?
        .map(|raw| integer(name, raw, range).map_err(BadParam::in_header))
        .transpose()
}

/// A query string into `T`, whose fields are the parameters as text (each
/// then read by the functions above). A repeated parameter is refused
/// naming it; parameters `T` does not know are ignored.
pub fn parse_query<T: DeserializeOwned>(query: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(query.unwrap_or_default()).map_err(|e| {
        let said = wording::reword(&e.to_string(), "", None, Input::Query);
        ApiError::invalid(&said.field, said.message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn integers_are_digits_in_range() {
        assert_eq!(integer("limit", "7", 1..=200), Ok(7));
        assert_eq!(integer("limit", "007", 1..=200), Ok(7));
        assert_eq!(integer("after", "0", NON_NEGATIVE), Ok(0));
        for bad in [
            "", " 7", "7 ", "+7", "-1", "1.5", "1e3", "abc", "0x10", "201", "0",
        ] {
            let refused = integer("limit", bad, 1..=200).unwrap_err();
            assert_eq!(refused.name, "limit");
            assert_eq!(refused.message, "limit must be an integer from 1 to 200");
        }
        let huge = "99999999999999999999999";
        let refused = integer("X-Min-Position", huge, NON_NEGATIVE).unwrap_err();
        assert_eq!(
            refused.message,
            "X-Min-Position must be a non-negative integer"
        );
    }

    #[test]
    fn booleans_are_exactly_true_or_false() {
        assert_eq!(boolean("follow", "true"), Ok(true));
        assert_eq!(boolean("follow", "false"), Ok(false));
        for bad in ["", "maybe", "1", "0", "True", "yes", "true "] {
            let refused = boolean("follow", bad).unwrap_err();
            assert_eq!(refused.message, "follow must be true or false", "{bad:?}");
        }
    }

    #[test]
    fn query_and_header_refusals_differ_only_in_status() {
        let query = query_flag("unread_only", Some("maybe")).unwrap_err();
        assert_eq!(query.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(query.extra["field"], "unread_only");
        let mut headers = HeaderMap::new();
        headers.insert("x-min-position", "-1".parse().unwrap());
        let header = header_integer(&headers, "X-Min-Position", NON_NEGATIVE).unwrap_err();
        assert_eq!(header.status, StatusCode::BAD_REQUEST);
        assert_eq!(header.extra["field"], "X-Min-Position");
        assert!(!query_flag("follow", None).unwrap());
        assert_eq!(query_integer("limit", None, 1..=200).unwrap(), None);
    }

    #[test]
    fn a_repeated_parameter_is_named() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Q {
            limit: Option<String>,
        }
        let refused = parse_query::<Q>(Some("limit=1&limit=2")).unwrap_err();
        assert_eq!(refused.extra["field"], "limit");
        assert_eq!(refused.message, "parameter `limit` is given more than once");
        assert!(parse_query::<Q>(Some("other=1")).is_ok());
    }
}
