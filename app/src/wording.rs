//! serde's error messages reworded in the client's terms. serde speaks of
//! the Rust types a request is read into (`expected struct CreateTicket`,
//! `expected u64`, `unknown variant`); a client needs the field it sent
//! wrong, the JSON it should have sent and what it sent instead.

use serde_json::Value;

/// What was being read: a JSON body or a query string.
#[derive(Debug, Clone, Copy)]
pub enum Input {
    Body,
    Query,
}

impl Input {
    fn noun(self) -> &'static str {
        match self {
            Input::Body => "field",
            Input::Query => "parameter",
        }
    }

    fn whole(self) -> &'static str {
        match self {
            Input::Body => "body",
            Input::Query => "query",
        }
    }
}

/// The field an error is about (the top-level one, as the contract's
/// `field` names it) and the message to send.
#[derive(Debug, PartialEq)]
pub struct Said {
    pub field: String,
    pub message: String,
}

/// Rewords serde's `message` (without serde_json's position) about the
/// value at `path` ("" for the whole input; `labels[2]` for an item),
/// `found` being that value when it is known.
pub fn reword(message: &str, path: &str, found: Option<&Value>, input: Input) -> Said {
    let noun = input.noun();
    let named = ticked(message).unwrap_or_default();
    // serde points at the object holding a missing field, and at the field
    // itself when it is unknown.
    let inner = if path.is_empty() {
        named.to_string()
    } else if path == named || path.ends_with(&format!(".{named}")) {
        path.to_string()
    } else {
        format!("{path}.{named}")
    };
    let (subject, text) = if message.starts_with("missing field") {
        (inner.clone(), format!("{noun} `{inner}` is required"))
    } else if message.starts_with("duplicate field") {
        (
            inner.clone(),
            format!("{noun} `{inner}` is given more than once"),
        )
    } else if let Some(allowed) = message.strip_prefix("unknown field") {
        let allowed = allowed.split_once(", ").map_or("", |(_, tail)| tail);
        let text = format!("{noun} `{inner}` is not accepted here ({allowed})");
        (inner.clone(), text.replace(" ()", ""))
    } else if message.starts_with("unknown variant") {
        let allowed = message
            .split_once(", expected ")
            .map_or("", |(_, tail)| tail);
        let text = format!("{noun} `{path}`: `{named}` is not allowed, expected {allowed}");
        (path.to_string(), text)
    } else {
        let expected = message
            .rsplit_once(", expected ")
            .map_or("a valid value".to_string(), |(_, rust)| json_type(rust));
        let expected = if message.contains("UUID") {
            "a UUID string".to_string()
        } else if message == "expected value" {
            // serde_json's words for an enum (all strings here) given a
            // number, a boolean or an array.
            "a string".to_string()
        } else {
            expected
        };
        let got = found
            .map(describe)
            .map_or(String::new(), |d| format!(", got {d}"));
        let text = if path.is_empty() {
            format!("{} must be {expected}{got}", input.whole())
        } else {
            format!("{noun} `{path}`: expected {expected}{got}")
        };
        (path.to_string(), text)
    };
    let top = subject.split(['.', '[']).next().unwrap_or_default();
    let field = if top.is_empty() { input.whole() } else { top };
    Said {
        field: field.to_string(),
        message: text,
    }
}

/// The first name serde quotes in backticks.
fn ticked(message: &str) -> Option<&str> {
    message.split('`').nth(1)
}

/// What serde expected, as the JSON a client should send.
fn json_type(rust: &str) -> String {
    let bare = rust.trim_start_matches("a ").trim_start_matches("an ");
    let known = match bare {
        "string" | "borrowed string" | "char" => "a string",
        "boolean" => "true or false",
        "sequence" | "tuple" => "an array",
        "map" => "a JSON object",
        "f32" | "f64" => "a number",
        _ if bare.starts_with("struct ") => "a JSON object",
        // Every enum a request carries is a string.
        "variant identifier" => "a string",
        _ if bare.starts_with("enum ") => "a string",
        _ => return integer_range(bare).unwrap_or_else(|| "a valid value".to_string()),
    };
    known.to_string()
}

/// "an integer from 0 to 255" for an integer type's name; the 64-bit ones,
/// whose bounds no client means to reach, plainly.
fn integer_range(rust: &str) -> Option<String> {
    let (low, high): (i64, i64) = match rust {
        "u64" | "usize" => return Some("a non-negative integer".to_string()),
        "i64" | "isize" => return Some("an integer".to_string()),
        "u8" => (0, u8::MAX.into()),
        "u16" => (0, u16::MAX.into()),
        "u32" => (0, u32::MAX.into()),
        "i8" => (i8::MIN.into(), i8::MAX.into()),
        "i16" => (i16::MIN.into(), i16::MAX.into()),
        "i32" => (i32::MIN.into(), i32::MAX.into()),
        _ => return None,
    };
    Some(format!("an integer from {low} to {high}"))
}

/// A JSON value as a client would name it; strings are not echoed.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(_) => "a string".to_string(),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(message: &str, path: &str, found: Option<Value>) -> Said {
        reword(message, path, found.as_ref(), Input::Body)
    }

    fn said(field: &str, message: &str) -> Said {
        Said {
            field: field.to_string(),
            message: message.to_string(),
        }
    }

    #[test]
    fn type_errors_name_the_json_expected_and_found() {
        assert_eq!(
            body(
                "invalid type: integer `5`, expected a string",
                "title",
                Some(json!(5))
            ),
            said(
                "title",
                "field `title`: expected a string, got the number 5"
            )
        );
        assert_eq!(
            body(
                "invalid value: integer `-1`, expected u64",
                "version",
                Some(json!(-1))
            ),
            said(
                "version",
                "field `version`: expected a non-negative integer, got the number -1"
            )
        );
        assert_eq!(
            body(
                "invalid type: integer `1`, expected a string",
                "labels[1]",
                Some(json!(1))
            ),
            said(
                "labels",
                "field `labels[1]`: expected a string, got the number 1"
            )
        );
        assert_eq!(
            body(
                "UUID parsing failed: invalid character",
                "assignee_id",
                Some(json!("x"))
            ),
            said(
                "assignee_id",
                "field `assignee_id`: expected a UUID string, got a string"
            )
        );
    }

    #[test]
    fn integers_name_their_range() {
        assert_eq!(
            body(
                "invalid value: integer `300`, expected u8",
                "n",
                Some(json!(300))
            ),
            said(
                "n",
                "field `n`: expected an integer from 0 to 255, got the number 300"
            )
        );
        let message = "invalid type: integer `5`, expected variant identifier";
        assert_eq!(
            body(message, "priority", Some(json!(5))),
            said(
                "priority",
                "field `priority`: expected a string, got the number 5"
            )
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_says_so() {
        let message = "invalid length 1, expected struct CreateTicket with 6 elements";
        assert_eq!(
            body(message, "", Some(json!(["t"]))),
            said("body", "body must be a JSON object, got an array")
        );
        let message = "invalid type: null, expected struct CreateTicket";
        assert_eq!(
            body(message, "", Some(Value::Null)),
            said("body", "body must be a JSON object, got null")
        );
    }

    #[test]
    fn field_errors_name_the_field() {
        assert_eq!(
            body("missing field `title`", "", None),
            said("title", "field `title` is required")
        );
        assert_eq!(
            body(
                "unknown field `sev`, expected `title` or `body`",
                "sev",
                None
            ),
            said(
                "sev",
                "field `sev` is not accepted here (expected `title` or `body`)"
            )
        );
        assert_eq!(
            body(
                "unknown variant `huge`, expected one of `low`, `high`",
                "priority",
                None
            ),
            said(
                "priority",
                "field `priority`: `huge` is not allowed, expected one of `low`, `high`"
            )
        );
        assert_eq!(
            reword("duplicate field `limit`", "", None, Input::Query),
            said("limit", "parameter `limit` is given more than once")
        );
    }
}
