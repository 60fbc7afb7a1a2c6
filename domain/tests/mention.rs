//! `mention::mentioned_usernames`: where a mention starts, where it ends.

use ticketflow_domain::mention::mentioned_usernames;

fn names(text: &str) -> Vec<String> {
    mentioned_usernames(text)
}

#[test]
fn mention_at_start_of_text() {
    assert_eq!(names("@bob please look"), ["bob"]);
}

#[test]
fn whole_text_is_a_mention() {
    assert_eq!(names("@bob"), ["bob"]);
}

#[test]
fn mention_after_space_newline_or_tab() {
    assert_eq!(names("hi @bob"), ["bob"]);
    assert_eq!(names("hi\n@bob"), ["bob"]);
    assert_eq!(names("hi\t@bob"), ["bob"]);
}

#[test]
fn mention_after_punctuation() {
    for text in ["(@bob)", ",@bob", "\"@bob\"", "-@bob", ".@bob", "@@bob"] {
        assert_eq!(names(text), ["bob"], "in {text:?}");
    }
}

#[test]
fn mention_after_non_word_unicode() {
    assert_eq!(names("😀@bob"), ["bob"]);
    assert_eq!(names("\u{a0}@bob"), ["bob"]);
}

#[test]
fn trailing_dot_ends_the_sentence_not_the_name() {
    assert_eq!(names("ask @bob."), ["bob"]);
    assert_eq!(names("ask @bob..."), ["bob"]);
}

#[test]
fn inner_dots_belong_to_the_name() {
    assert_eq!(names("@bob.smith."), ["bob.smith"]);
}

#[test]
fn email_address_is_no_mention() {
    assert!(names("x@bob.com").is_empty());
    assert!(names("write to alice@example.org").is_empty());
}

#[test]
fn at_after_a_word_char_is_no_mention() {
    for text in ["a@bob", "1@bob", "_@bob", "Z@bob"] {
        assert!(names(text).is_empty(), "in {text:?}");
    }
}

#[test]
fn at_after_a_unicode_letter_is_no_mention() {
    assert!(names("é@bob").is_empty());
    assert!(names("日@bob").is_empty());
}

#[test]
fn name_stops_at_the_first_non_username_char() {
    assert_eq!(names("@bob, hi"), ["bob"]);
    assert_eq!(names("@bob's"), ["bob"]);
    assert_eq!(names("@bob!"), ["bob"]);
    assert_eq!(names("@bob\nnext"), ["bob"]);
}

#[test]
fn username_punctuation_is_part_of_the_name() {
    assert_eq!(names("@a_b-c.d"), ["a_b-c.d"]);
}

#[test]
fn uppercase_is_not_a_username_char() {
    assert!(names("@Bob").is_empty());
}

#[test]
fn name_shorter_than_three_chars_is_no_mention() {
    assert!(names("@ab").is_empty());
    assert!(names("@ab.").is_empty());
    assert_eq!(names("@abc"), ["abc"]);
}

#[test]
fn bare_at_is_no_mention() {
    assert!(names("@").is_empty());
    assert!(names("@ bob").is_empty());
    assert!(names("").is_empty());
}

#[test]
fn several_mentions_in_order_of_appearance() {
    assert_eq!(names("@carol, @bob and @dave"), ["carol", "bob", "dave"]);
}

#[test]
fn repeated_mentions_are_deduplicated_keeping_first_place() {
    assert_eq!(names("@bob @carol @bob. @carol"), ["bob", "carol"]);
}

#[test]
fn mention_glued_to_a_previous_mention_is_no_mention() {
    assert_eq!(names("@bob@carol"), ["bob"]);
}

#[test]
fn mention_after_a_sentence_ending_dot() {
    assert_eq!(names("@bob.@carol"), ["bob", "carol"]);
}
