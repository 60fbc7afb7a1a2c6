//! Ticket Create: validation, defaults, assignee, labels and mentions.
//!
//! Most rules are tables of named cases: alice (or another actor) creates a
//! ticket on a fresh aggregate, and it comes to one `TicketCreated` or to an
//! error. Each case is named after the rule it shows.

use cqrs_es::test::TestFramework;
use ticketflow_domain::{NewTicket, Priority, ProjectView, Ticket, TicketCommand, TicketPayload};
use ticketflow_testkit::prelude::*;
use uuid::Uuid;

fn framework() -> TestFramework<Ticket> {
    TestFramework::with(())
}

/// alice creates `ticket` on a fresh aggregate; it comes to `created`.
fn accepted(name: impl Into<String>, ticket: NewTicket, created: Created) -> Case<Ticket> {
    Case::new(
        name,
        vec![],
        create(ticket),
        Then::Events(vec![created.event()]),
    )
}

/// alice creates `ticket` on a fresh aggregate; it is refused for `field`.
fn refused(name: impl Into<String>, ticket: NewTicket, field: &'static str) -> Case<Ticket> {
    Case::new(name, vec![], create(ticket), Then::Invalid(field))
}

fn with_title(title: &str) -> NewTicket {
    NewTicket {
        title: title.into(),
        ..new_ticket()
    }
}

fn with_description(description: &str) -> NewTicket {
    NewTicket {
        description: description.into(),
        ..new_ticket()
    }
}

fn with_labels(labels: Vec<String>) -> NewTicket {
    NewTicket {
        labels,
        ..new_ticket()
    }
}

fn with_status(status_id: i64) -> NewTicket {
    NewTicket {
        status_id: Some(status_id),
        ..new_ticket()
    }
}

fn with_assignee(id: Uuid) -> NewTicket {
    NewTicket {
        assignee_id: Some(id),
        ..new_ticket()
    }
}

fn numbered_labels(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("label-{i}")).collect()
}

/// alice creates the plainest ticket against `project`.
fn create_in(project: ProjectView) -> TicketCommand {
    TicketCommand::Create {
        meta: meta(&alice()),
        project,
        ticket: new_ticket(),
    }
}

// ---- who may create, and when ----------------------------------------------

#[test]
fn create_preconditions() {
    check_all(vec![
        accepted(
            "create_emits_ticket_created_in_first_status_unassigned_reported_by_actor",
            new_ticket(),
            Created::default(),
        ),
        Case::new(
            "create_twice_conflicts",
            vec![ticket_created()],
            create(new_ticket()),
            Then::Conflict("ticket_exists"),
        ),
        Case::new(
            "create_by_non_member_is_forbidden",
            vec![],
            create_by(&dave(), new_ticket()),
            Then::Forbidden,
        ),
        Case::new(
            "membership_is_checked_before_fields",
            vec![],
            create_by(&dave(), with_title("")),
            Then::Forbidden,
        ),
    ]);
}

#[test]
fn create_leaves_number_and_key_for_the_store() {
    let events = framework()
        .given_no_previous_events()
        .when(create(new_ticket()))
        .inspect_result()
        .unwrap();
    let TicketPayload::TicketCreated {
        number,
        key,
        project_id,
        ..
    } = &events[0].payload
    else {
        panic!("not TicketCreated: {events:?}");
    };
    assert_eq!((*number, key.as_str(), *project_id), (0, "", PROJECT_ID));
}

#[test]
fn any_member_may_create() {
    let events = framework()
        .given_no_previous_events()
        .when(create_by(&bob(), new_ticket()))
        .inspect_result()
        .unwrap();
    let TicketPayload::TicketCreated { reporter, .. } = &events[0].payload else {
        panic!("not TicketCreated: {events:?}");
    };
    assert_eq!(reporter, &bob());
    assert_eq!(events[0].meta, meta(&bob()));
}

// ---- title -----------------------------------------------------------------

#[test]
fn title_rules() {
    let mut cases = vec![
        refused("empty_title_is_invalid", with_title(""), "title"),
        refused(
            "title_of_201_chars_is_invalid",
            with_title(&chars('t', 201)),
            "title",
        ),
        refused(
            "title_of_201_unicode_chars_is_invalid",
            with_title(&chars('é', 201)),
            "title",
        ),
        accepted(
            "title_is_kept_verbatim_with_surrounding_spaces",
            with_title("  padded  "),
            Created {
                title: "  padded  ".into(),
                ..Created::default()
            },
        ),
    ];
    for title in [" ", "   ", "\t\n", "\u{3000}"] {
        cases.push(refused(
            format!("whitespace_only_title_is_invalid: {title:?}"),
            with_title(title),
            "title",
        ));
    }
    for (name, title) in [
        ("title_of_one_and_200_chars_is_accepted: 1", "x".to_string()),
        (
            "title_of_one_and_200_chars_is_accepted: 200",
            chars('t', 200),
        ),
        (
            "title_length_counts_unicode_chars_not_bytes: é",
            chars('é', 200),
        ),
        (
            "title_length_counts_unicode_chars_not_bytes: 😀",
            chars('😀', 200),
        ),
        (
            "title_length_counts_unicode_chars_not_bytes: 日",
            chars('日', 200),
        ),
    ] {
        cases.push(accepted(
            name,
            with_title(&title),
            Created {
                title,
                ..Created::default()
            },
        ));
    }
    check_all(cases);
}

// ---- description -------------------------------------------------------------

#[test]
fn description_rules() {
    let mut cases = vec![refused(
        "description_over_20000_chars_is_invalid",
        with_description(&chars('d', 20_001)),
        "description",
    )];
    for (name, description) in [
        (
            "description_of_20000_chars_is_accepted: d",
            chars('d', 20_000),
        ),
        (
            "description_of_20000_chars_is_accepted: é",
            chars('é', 20_000),
        ),
        (
            "empty_or_blank_description_is_accepted: empty",
            String::new(),
        ),
        (
            "empty_or_blank_description_is_accepted: blank",
            "   ".into(),
        ),
    ] {
        cases.push(accepted(
            name,
            with_description(&description),
            Created {
                description,
                ..Created::default()
            },
        ));
    }
    check_all(cases);
}

// ---- priority ------------------------------------------------------------------

#[test]
fn priority_is_recorded() {
    let cases = [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Urgent,
    ]
    .into_iter()
    .map(|priority| {
        accepted(
            format!("priority_is_recorded: {priority:?}"),
            NewTicket {
                priority,
                ..new_ticket()
            },
            Created {
                priority,
                ..Created::default()
            },
        )
    })
    .collect();
    check_all(cases);
}

#[test]
fn priority_defaults_to_medium() {
    assert_eq!(Priority::default(), Priority::Medium);
}

// ---- labels --------------------------------------------------------------------

#[test]
fn label_rules() {
    let mut twenty_and_a_repeat = numbered_labels(20);
    twenty_and_a_repeat.push("label-1".into());
    let labelled = |labels: Vec<String>| Created {
        labels,
        ..Created::default()
    };
    check_all(vec![
        accepted(
            "twenty_labels_are_accepted",
            with_labels(numbered_labels(20)),
            labelled(numbered_labels(20)),
        ),
        refused(
            "more_than_twenty_labels_is_invalid",
            with_labels(numbered_labels(21)),
            "labels",
        ),
        accepted(
            "label_limit_counts_labels_after_deduplication",
            with_labels(twenty_and_a_repeat),
            labelled(numbered_labels(20)),
        ),
        refused(
            "empty_label_is_invalid",
            with_labels(strings(&["ok", ""])),
            "labels",
        ),
        refused(
            "blank_label_is_invalid",
            with_labels(strings(&["  "])),
            "labels",
        ),
        refused(
            "label_of_51_chars_is_invalid",
            with_labels(vec![chars('l', 51)]),
            "labels",
        ),
        accepted(
            "label_of_50_unicode_chars_is_accepted",
            with_labels(vec![chars('l', 50), chars('é', 50)]),
            labelled(vec![chars('l', 50), chars('é', 50)]),
        ),
        accepted(
            "duplicate_labels_are_removed_keeping_first_order",
            with_labels(strings(&["bug", "ui", "bug", "api", "ui"])),
            labelled(strings(&["bug", "ui", "api"])),
        ),
        accepted(
            "labels_are_case_sensitive",
            with_labels(strings(&["Bug", "bug"])),
            labelled(strings(&["Bug", "bug"])),
        ),
    ]);
}

// ---- status --------------------------------------------------------------------

#[test]
fn status_rules() {
    let mut reversed = view();
    reversed.statuses.reverse();
    let mut cases = vec![
        accepted(
            "given_status_is_used",
            with_status(3),
            Created {
                status: status(3),
                ..Created::default()
            },
        ),
        Case::new(
            "default_status_is_the_projects_first_status",
            vec![],
            create_in(reversed),
            Then::Events(vec![Created {
                status: status(3),
                ..Created::default()
            }
            .event()]),
        ),
        Case::new(
            "project_without_statuses_refuses_default_status",
            vec![],
            create_in(ProjectView {
                statuses: vec![],
                ..view()
            }),
            Then::Invalid("status_id"),
        ),
    ];
    for status_id in [0, 4, -1] {
        cases.push(refused(
            format!("unknown_status_is_invalid: {status_id}"),
            with_status(status_id),
            "status_id",
        ));
    }
    check_all(cases);
}

// ---- assignee ------------------------------------------------------------------

#[test]
fn assignee_rules() {
    check_all(vec![
        accepted(
            "member_assignee_is_inside_ticket_created",
            with_assignee(bob().id),
            Created {
                assignee: Some(bob()),
                ..Created::default()
            },
        ),
        accepted(
            "actor_may_assign_themself",
            with_assignee(alice().id),
            Created {
                assignee: Some(alice()),
                ..Created::default()
            },
        ),
        refused(
            "non_member_assignee_is_invalid: dave",
            with_assignee(dave().id),
            "assignee_id",
        ),
        refused(
            "non_member_assignee_is_invalid: nil id",
            with_assignee(Uuid::nil()),
            "assignee_id",
        ),
    ]);
}

// ---- mentions ------------------------------------------------------------------

#[test]
fn mention_rules() {
    let mentioning = |description: &str, mentions| {
        (
            with_description(description),
            Created {
                description: description.into(),
                mentions,
                ..Created::default()
            },
        )
    };
    let mut cases = vec![accepted(
        "mentions_in_title_are_ignored",
        with_title("ask @bob"),
        Created {
            title: "ask @bob".into(),
            ..Created::default()
        },
    )];
    for (name, (ticket, created)) in [
        (
            "description_mentions_members_in_order",
            mentioning("ping @carol and @bob", vec![carol(), bob()]),
        ),
        (
            "description_mentions_exclude_actor_and_non_members",
            mentioning("@alice @dave @bob @nobody", vec![bob()]),
        ),
        (
            "repeated_mention_is_recorded_once",
            mentioning("@bob, again @bob.", vec![bob()]),
        ),
    ] {
        cases.push(accepted(name, ticket, created));
    }
    check_all(cases);
}
