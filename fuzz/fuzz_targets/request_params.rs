//! The small values clients put in queries and headers: a socket's `since`,
//! a ticket's `as_of`, paging's `limit` and `after` cursor, and `If-Match`.
//! The first byte picks the parser, the rest is the value.
//!
//! Beyond "no panic": whatever is accepted is in range and reads back the
//! same from its canonical form (a cursor from its number, a time from
//! RFC 3339, a version from `"n"` and `W/"n"`); whatever is refused is a
//! client error.

#![no_main]

use chrono::{Datelike, SecondsFormat};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use ticketflow_api::input::{parse_as_of, parse_if_match, PageQuery};
use ticketflow_app::ApiError;
use ticketflow_realtime::input::parse_since;
use ticketflow_store::AsOf;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, raw)) = data.split_first() else {
        return;
    };
    match choice % 4 {
        0 => since(raw),
        1 => as_of(raw, u64::from(choice >> 2)),
        2 => paging(raw),
        _ => if_match(raw),
    }
});

/// The value as a query string's decoded value: text.
fn text(raw: &[u8]) -> Option<&str> {
    std::str::from_utf8(raw).ok()
}

fn since(raw: &[u8]) {
    let Some(raw) = text(raw) else { return };
    match parse_since(Some(raw)) {
        Ok(Some(seq)) => {
            assert!(seq >= 0, "since {raw:?} read as {seq}");
            assert_eq!(ok(parse_since(Some(&seq.to_string()))), Some(Some(seq)));
        }
        Ok(None) => panic!("since {raw:?} read as absent"),
        Err(e) => client_error(&e),
    }
}

fn as_of(raw: &[u8], current: u64) {
    let Some(raw) = text(raw) else { return };
    match parse_as_of(raw, current) {
        Ok(AsOf::Version(v)) => {
            assert!(
                (1..=current).contains(&v),
                "as_of {raw:?} is version {v} of {current}"
            );
            assert_eq!(
                ok(parse_as_of(&v.to_string(), current)),
                Some(AsOf::Version(v))
            );
        }
        // RFC 3339 writes years 0000 to 9999 only; `0000-01-01T00:00:00+01:00`
        // is an instant of the year -1 that has no UTC form to read back.
        Ok(AsOf::Time(t)) if (0..=9999).contains(&t.year()) => {
            let canonical = t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
            assert_eq!(ok(parse_as_of(&canonical, current)), Some(AsOf::Time(t)));
        }
        Ok(AsOf::Time(_)) => {}
        Err(e) => client_error(&e),
    }
}

/// `limit` and `after`, split at the first newline.
fn paging(raw: &[u8]) {
    let Some(raw) = text(raw) else { return };
    let (limit, after) = raw.split_once('\n').unwrap_or((raw, ""));
    let query = PageQuery {
        limit: Some(limit.to_string()),
        after: Some(after.to_string()),
    };
    let after_alone = query.page_after_number();
    let page = match query.page() {
        Ok(page) => page,
        Err(e) => return client_error(&e),
    };
    assert!(
        (1..=200).contains(&page.limit),
        "limit {limit:?} read as {}",
        page.limit
    );
    match page.after_number() {
        Ok(n) => {
            assert!(n >= 0, "after {after:?} read as {n}");
            assert_eq!(ok(after_alone), Some(n), "the two readings of {after:?}");
            let canonical = PageQuery {
                after: Some(n.to_string()),
                ..PageQuery::default()
            };
            assert_eq!(ok(canonical.page_after_number()), Some(n));
        }
        Err(e) => {
            client_error(&e);
            assert!(after_alone.is_err(), "after {after:?} read one way only");
        }
    }
}

fn if_match(raw: &[u8]) {
    // What a client can send at all is what HTTP lets through as a value.
    let Ok(value) = HeaderValue::from_bytes(raw) else {
        return;
    };
    match parse_if_match(&if_match_header(value)) {
        Ok(Some(v)) => {
            for canonical in [format!("\"{v}\""), format!("W/\"{v}\"")] {
                let value = HeaderValue::from_str(&canonical).expect("a header value");
                let read = ok(parse_if_match(&if_match_header(value)));
                assert_eq!(read, Some(Some(v)), "{canonical}");
            }
        }
        Ok(None) => panic!("If-Match {raw:?} read as absent"),
        Err(e) => client_error(&e),
    }
}

fn if_match_header(value: HeaderValue) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::IF_MATCH, value);
    headers
}

fn ok<T>(result: Result<T, ApiError>) -> Option<T> {
    result.ok()
}

fn client_error(e: &ApiError) {
    assert!(
        [400, 422].contains(&e.status.as_u16()),
        "refused with {}: {e:?}",
        e.status
    );
    assert!(!e.message.is_empty());
}
