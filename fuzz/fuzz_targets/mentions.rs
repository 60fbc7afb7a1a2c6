//! `@username` mentions in free text (ticket descriptions, comments).
//!
//! Beyond "no panic": every name found is made of username characters, written
//! after an `@` in the text, found once, never ending in a sentence's dot;
//! saying the text twice mentions the same people in the same order; and a
//! project's mentions are members other than the writer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ticketflow_domain::mention::mentioned_usernames;
use ticketflow_domain::user::is_username_char;
use ticketflow_domain::{Actor, ProjectView};
use ticketflow_testkit::prelude::*;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let names = mentioned_usernames(text);
    for (i, name) in names.iter().enumerate() {
        // Longer than a username may be (32): it then matches no member.
        let well_formed = name.chars().count() >= 3 && name.chars().all(is_username_char);
        assert!(well_formed, "{name:?} is no username");
        assert!(!name.ends_with('.'), "{name:?} kept a sentence's dot");
        assert!(
            text.contains(&format!("@{name}")),
            "{name:?} not in {text:?}"
        );
        assert!(!names[..i].contains(name), "{name:?} twice");
    }
    assert_eq!(mentioned_usernames(&format!("{text} {text}")), names);

    let writer = bob();
    let members: Vec<Actor> = names
        .iter()
        .take(3)
        .enumerate()
        .map(|(n, name)| Actor {
            id: uuid::Uuid::from_u128(100 + n as u128),
            username: name.clone(),
        })
        .chain([alice(), writer.clone()])
        .collect();
    let project = ProjectView {
        members: members.clone(),
        ..view()
    };
    for mentioned in project.mentions(text, &writer) {
        assert_ne!(mentioned.id, writer.id, "the writer mentions themself");
        assert!(members.contains(&mentioned), "{mentioned:?} is no member");
        assert!(names.contains(&mentioned.username));
    }
});
