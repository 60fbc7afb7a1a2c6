//! Rules for user accounts. Accounts are not event-sourced, but their rules are
//! domain rules all the same.

use crate::validate;
use crate::DomainError;

pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;
pub const DISPLAY_NAME_MAX: usize = 100;

/// Whether `c` may appear in a username (`[a-z0-9_.-]`).
pub fn is_username_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')
}

/// Usernames: `^[a-z0-9_.-]{3,32}$`.
pub fn validate_username(username: &str) -> Result<(), DomainError> {
    let len = username.chars().count();
    if (3..=32).contains(&len) && username.chars().all(is_username_char) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "username",
            "username must be 3 to 32 characters of a-z, 0-9, '_', '.' or '-'",
        ))
    }
}

pub fn validate_password(password: &str) -> Result<(), DomainError> {
    password_rule("password", password)
}

/// A password change's new password: the registration rule, under its own
/// field name.
pub fn validate_new_password(password: &str) -> Result<(), DomainError> {
    password_rule("new_password", password)
}

fn password_rule(field: &'static str, password: &str) -> Result<(), DomainError> {
    let len = password.chars().count();
    if (PASSWORD_MIN..=PASSWORD_MAX).contains(&len) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            format!("{field} must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"),
        ))
    }
}

pub fn validate_display_name(name: &str) -> Result<(), DomainError> {
    validate::text("display_name", name, 1, DISPLAY_NAME_MAX)
}
