//! A selection of the log: which project, which event types, and a range
//! given by positions or times. The events feed and the export read through
//! it, and each backend turns it into one `WHERE` clause, so the database
//! skips what does not match instead of the reader.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use ticketflow_domain::event_types::{is_event_type, EVENT_TYPES};
use uuid::Uuid;

/// One end of a range of the log, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A global position.
    Position(i64),
    /// An `occurred_at` time.
    Time(DateTime<Utc>),
}

impl FromStr for Bound {
    type Err = String;

    /// ASCII digits are a position; anything else must be an RFC 3339 time.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        const MUST_BE: &str = "a position (digits) or an RFC 3339 time";
        if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
            return raw.parse().map(Bound::Position).map_err(|_| MUST_BE.into());
        }
        DateTime::parse_from_rfc3339(raw)
            .map(|t| Bound::Time(t.with_timezone(&Utc)))
            .map_err(|_| MUST_BE.into())
    }
}

/// A comma-separated list of event type names, each checked against the
/// known ones, duplicates dropped.
pub fn parse_types(raw: &str) -> Result<Vec<String>, String> {
    let mut types: Vec<String> = Vec::new();
    for name in raw.split(',') {
        if !is_event_type(name) {
            return Err(format!(
                "event type names, comma-separated, each one of {}; {name:?} is none",
                EVENT_TYPES.join(", ")
            ));
        }
        if !types.iter().any(|t| t == name) {
            types.push(name.to_string());
        }
    }
    Ok(types)
}

/// Events to read; every part left empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub project_id: Option<Uuid>,
    /// Event type names; empty for all.
    pub types: Vec<String>,
    /// The first position or time to include.
    pub since: Option<Bound>,
    /// The last position or time to include.
    pub until: Option<Bound>,
}

/// A value bound to a placeholder of [`EventFilter::clause`].
#[derive(Debug, Clone)]
pub(crate) enum SqlValue {
    Uuid(Uuid),
    Int(i64),
    Time(DateTime<Utc>),
    Text(String),
}

impl EventFilter {
    /// The rest of a `SELECT … FROM events WHERE` reading the matching events
    /// after `after`, in position order, at most `limit`; and the values of
    /// its placeholders, which `placeholder(n)` (1-based) writes.
    pub(crate) fn clause(
        &self,
        after: i64,
        limit: i64,
        placeholder: impl Fn(usize) -> String,
    ) -> (String, Vec<SqlValue>) {
        let mut values = vec![SqlValue::Int(after)];
        let mut sql = format!("position > {}", placeholder(1));
        let mut bind = |condition: &str, value: SqlValue| {
            values.push(value);
            sql.push_str(&format!(" AND {condition} {}", placeholder(values.len())));
        };
        if let Some(project_id) = self.project_id {
            bind("project_id =", SqlValue::Uuid(project_id));
        }
        for (bound, cmp) in [(self.since, ">="), (self.until, "<=")] {
            match bound {
                Some(Bound::Position(p)) => bind(&format!("position {cmp}"), SqlValue::Int(p)),
                Some(Bound::Time(t)) => bind(&format!("occurred_at {cmp}"), SqlValue::Time(t)),
                None => {}
            }
        }
        if !self.types.is_empty() {
            let first = values.len() + 1;
            let list: Vec<String> = (first..first + self.types.len())
                .map(&placeholder)
                .collect();
            sql.push_str(&format!(" AND event_type IN ({})", list.join(", ")));
            values.extend(self.types.iter().cloned().map(SqlValue::Text));
        }
        values.push(SqlValue::Int(limit));
        sql.push_str(&format!(
            " ORDER BY position LIMIT {}",
            placeholder(values.len())
        ));
        (sql, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_positions_or_times() {
        assert_eq!("42".parse(), Ok(Bound::Position(42)));
        let t = "2026-01-02T03:04:05.123456+01:00".parse::<Bound>();
        let utc = DateTime::parse_from_rfc3339("2026-01-02T02:04:05.123456Z").ok();
        assert_eq!(t.ok(), utc.map(|u| Bound::Time(u.with_timezone(&Utc))));
        for bad in [
            "",
            "-1",
            "+3",
            "1.5",
            "yesterday",
            "2026-01-02",
            "99999999999999999999",
        ] {
            assert!(bad.parse::<Bound>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn types_are_known_names() {
        assert_eq!(
            parse_types("TicketCreated,CommentAdded,TicketCreated"),
            Ok(vec![
                "TicketCreated".to_string(),
                "CommentAdded".to_string()
            ])
        );
        for bad in [
            "",
            "ticketcreated",
            "TicketCreated,",
            "TicketCreated, CommentAdded",
        ] {
            assert!(parse_types(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_clause_names_only_what_is_set() {
        let dollar = |n: usize| format!("${n}");
        let (sql, values) = EventFilter::default().clause(7, 10, dollar);
        assert_eq!(sql, "position > $1 ORDER BY position LIMIT $2");
        assert_eq!(values.len(), 2);
        let filter = EventFilter {
            project_id: Some(Uuid::nil()),
            types: vec!["TicketCreated".into(), "TicketDeleted".into()],
            since: Some(Bound::Position(3)),
            until: Some(Bound::Time(DateTime::UNIX_EPOCH)),
        };
        let (sql, values) = filter.clause(0, 5, dollar);
        assert_eq!(
            sql,
            "position > $1 AND project_id = $2 AND position >= $3 AND occurred_at <= $4 \
             AND event_type IN ($5, $6) ORDER BY position LIMIT $7"
        );
        assert_eq!(values.len(), 7);
    }
}
