//! Field rules shared by commands. Lengths count Unicode characters.

use crate::DomainError;

/// Checks that `value` has `min..=max` characters and is not blank when `min > 0`.
pub fn text(field: &'static str, value: &str, min: usize, max: usize) -> Result<(), DomainError> {
    let len = value.chars().count();
    if min > 0 && value.trim().is_empty() {
        return Err(DomainError::invalid(
            field,
            format!("{field} must not be blank"),
        ));
    }
    if len < min || len > max {
        return Err(DomainError::invalid(
            field,
            format!("{field} must be {min} to {max} characters"),
        ));
    }
    Ok(())
}

pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 20_000;
pub const COMMENT_MAX: usize = 10_000;
pub const PROJECT_NAME_MAX: usize = 100;
pub const LABELS_MAX: usize = 20;
pub const LABEL_MAX: usize = 50;
/// Announcements' and operator notices' titles (as ticket titles).
pub const NOTICE_TITLE_MAX: usize = TITLE_MAX;
/// Announcements' and operator notices' messages.
pub const NOTICE_MESSAGE_MAX: usize = 2_000;

/// A custom notification's title and message: 1..=[`NOTICE_TITLE_MAX`] and
/// 1..=[`NOTICE_MESSAGE_MAX`] characters, not blank.
pub fn notice_text(title: &str, message: &str) -> Result<(), DomainError> {
    text("title", title, 1, NOTICE_TITLE_MAX)?;
    text("message", message, 1, NOTICE_MESSAGE_MAX)
}

/// Validates labels and removes duplicates, keeping the first occurrence's place.
pub fn labels(labels: &[String]) -> Result<Vec<String>, DomainError> {
    let mut unique: Vec<String> = Vec::with_capacity(labels.len());
    for label in labels {
        text("labels", label, 1, LABEL_MAX)?;
        if !unique.contains(label) {
            unique.push(label.clone());
        }
    }
    if unique.len() > LABELS_MAX {
        return Err(DomainError::invalid(
            "labels",
            format!("at most {LABELS_MAX} labels"),
        ));
    }
    Ok(unique)
}

/// Project keys: `^[A-Z][A-Z0-9]{1,9}$`.
pub fn project_key(key: &str) -> Result<(), DomainError> {
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase());
    let rest_ok = chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let len = key.chars().count();
    if first_ok && rest_ok && (2..=10).contains(&len) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "key",
            "key must be an uppercase letter followed by 1 to 9 uppercase letters or digits",
        ))
    }
}
