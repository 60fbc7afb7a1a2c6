//! Account rules: username, password and display name.

use ticketflow_domain::user::{
    is_username_char, validate_display_name, validate_new_password, validate_password,
    validate_username,
};
use ticketflow_domain::DomainError;
use ticketflow_testkit::builders::chars;

fn field_of(result: Result<(), DomainError>) -> &'static str {
    match result {
        Err(DomainError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn username_chars_are_lowercase_digits_underscore_dot_dash() {
    for c in ['a', 'z', '0', '9', '_', '.', '-'] {
        assert!(is_username_char(c), "{c:?}");
    }
    for c in ['A', 'Z', ' ', '@', '+', 'é', '日'] {
        assert!(!is_username_char(c), "{c:?}");
    }
}

#[test]
fn username_of_3_to_32_allowed_chars_is_valid() {
    for name in ["bob", "a_b.c-d", "123", &chars('x', 32)] {
        assert_eq!(validate_username(name), Ok(()), "{name:?}");
    }
}

#[test]
fn username_shorter_than_3_is_invalid() {
    for name in ["", "a", "ab"] {
        assert_eq!(field_of(validate_username(name)), "username", "{name:?}");
    }
}

#[test]
fn username_longer_than_32_is_invalid() {
    assert_eq!(field_of(validate_username(&chars('x', 33))), "username");
}

#[test]
fn username_with_other_chars_is_invalid() {
    for name in ["Bob", "bob smith", "bob@x", "bób", "bob\n", "日本語"] {
        assert_eq!(field_of(validate_username(name)), "username", "{name:?}");
    }
}

#[test]
fn password_of_8_to_128_chars_is_valid() {
    for password in [chars('p', 8), chars('p', 128), chars(' ', 8)] {
        assert_eq!(validate_password(&password), Ok(()));
    }
}

#[test]
fn password_shorter_than_8_is_invalid() {
    for password in ["", "1234567"] {
        assert_eq!(field_of(validate_password(password)), "password");
    }
}

#[test]
fn password_longer_than_128_is_invalid() {
    assert_eq!(field_of(validate_password(&chars('p', 129))), "password");
}

#[test]
fn password_length_counts_chars_not_bytes() {
    assert_eq!(validate_password(&chars('é', 8)), Ok(()));
    assert_eq!(validate_password(&chars('é', 128)), Ok(()));
    assert_eq!(field_of(validate_password(&chars('é', 7))), "password");
    assert_eq!(field_of(validate_password(&chars('😀', 129))), "password");
}

#[test]
fn a_new_password_follows_the_same_rule_under_its_own_field() {
    assert_eq!(validate_new_password(&chars('é', 8)), Ok(()));
    assert_eq!(validate_new_password(&chars('p', 128)), Ok(()));
    assert_eq!(
        field_of(validate_new_password(&chars('p', 7))),
        "new_password"
    );
    assert_eq!(
        field_of(validate_new_password(&chars('p', 129))),
        "new_password"
    );
}

#[test]
fn display_name_of_1_to_100_chars_is_valid() {
    for name in [
        "B".to_string(),
        chars('n', 100),
        chars('é', 100),
        "Bob Smith".into(),
    ] {
        assert_eq!(validate_display_name(&name), Ok(()));
    }
}

#[test]
fn empty_or_blank_display_name_is_invalid() {
    for name in ["", " ", "\t\n"] {
        assert_eq!(
            field_of(validate_display_name(name)),
            "display_name",
            "{name:?}"
        );
    }
}

#[test]
fn display_name_over_100_chars_is_invalid() {
    for name in [chars('n', 101), chars('é', 101)] {
        assert_eq!(field_of(validate_display_name(&name)), "display_name");
    }
}
