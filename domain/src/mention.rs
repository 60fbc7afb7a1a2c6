//! `@username` mentions in free text.
//!
//! A mention is `@` at the start of the text or after a non-word character,
//! followed by a username; trailing dots end a sentence, not a name
//! (`@bob.` is bob, `x@bob.com` is nobody).

use crate::user::is_username_char;

/// The usernames mentioned in `text`, deduplicated, in order of first mention.
pub fn mentioned_usernames(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let at_boundary = prev.is_none_or(|p| !(p.is_alphanumeric() || p == '_'));
        prev = Some(c);
        if c != '@' || !at_boundary {
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while let Some(&(j, n)) = chars.peek() {
            if !is_username_char(n) {
                break;
            }
            end = j + n.len_utf8();
            prev = Some(n);
            chars.next();
        }
        let name = text[start..end].trim_end_matches('.');
        if name.len() >= 3 && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}
